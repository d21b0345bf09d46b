/*
 * test_metrics.c - unit tests of the Prometheus exposition
 * (src/daemon/metrics.c) without a daemon: calls observed by method and
 * status; cumulative histogram buckets, +Inf, _sum and _count; paths the
 * registry does not serve all counted as method "other"; the build info.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/metrics.h"

static int
has(const struct bytebuf *o, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr((const char *)o->p, want) != NULL;   /* o ends with a NUL */
}

static void
test_render(void **state)
{
	struct metrics *m;
	struct bytebuf o = BYTEBUF_INIT;

	(void)state;
	assert_int_equal(metrics_new(NULL, &m), 0);
	metrics_observe(m, "boltseal.v1.KeyService/Sign", 0, 200);      /* <= 250 us */
	metrics_observe(m, "boltseal.v1.KeyService/Sign", 0, 700);      /* <= 1 ms */
	metrics_observe(m, "boltseal.v1.KeyService/Sign", 5, 9000000);  /* past every bucket */
	metrics_observe(m, NULL, 12, 10);
	metrics_observe(m, NULL, 12, 10);
	metrics_observe(m, "x", 99, 10);                                /* not a gRPC code */
	metrics_render(m, &o);
	assert_int_equal(bytebuf_error(&o), 0);
	bytebuf_put(&o, "", 1);
	assert_true(has(&o, "boltseal_rpc_calls_total{method=\"boltseal.v1.KeyService/Sign\","
	    "code=\"OK\"} 2"));
	assert_true(has(&o, "boltseal_rpc_calls_total{method=\"boltseal.v1.KeyService/Sign\","
	    "code=\"NOT_FOUND\"} 1"));
	assert_true(has(&o, "boltseal_rpc_calls_total{method=\"other\",code=\"UNIMPLEMENTED\"} 2"));
	assert_true(has(&o, "boltseal_rpc_calls_total{method=\"x\",code=\"INVALID\"} 1"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_bucket{method=\"boltseal.v1.KeyService/"
	    "Sign\",le=\"0.00025\"} 1"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_bucket{method=\"boltseal.v1.KeyService/"
	    "Sign\",le=\"0.001\"} 2"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_bucket{method=\"boltseal.v1.KeyService/"
	    "Sign\",le=\"5\"} 2"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_bucket{method=\"boltseal.v1.KeyService/"
	    "Sign\",le=\"+Inf\"} 3"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_count{method=\"boltseal.v1.KeyService/"
	    "Sign\"} 3"));
	assert_true(has(&o, "boltseal_rpc_duration_seconds_sum{method=\"boltseal.v1.KeyService/"
	    "Sign\"} 9.000900"));
	assert_true(has(&o, "# TYPE boltseal_rpc_duration_seconds histogram"));
	assert_non_null(strstr((const char *)o.p, "boltseal_build_info{version=\""));
	/* no server or services given: no such families */
	assert_null(strstr((const char *)o.p, "boltseal_connections"));
	bytebuf_free(&o);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
