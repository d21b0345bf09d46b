/*
 * test_metrics.c - unit tests of the Prometheus exposition
 * (src/daemon/metrics.c) without a daemon: calls observed by method and
 * status; cumulative histogram buckets, +Inf, _sum and _count; paths the
 * registry does not serve all counted as method "other"; the build info;
 * the shared latency histogram (src/common/histogram.c) at its bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/histogram.h"
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
	    "Sign\",le=\"10\"} 3"));
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

/* The shared histogram: each bound is inclusive, past the last is only in the count. */
static void
test_histogram(void **state)
{
	struct bs_hist h;
	struct timespec t;

	(void)state;
	memset(&h, 0, sizeof(h));
	bs_hist_add(&h, -5);                       /* counts as 0: the first bucket */
	bs_hist_add(&h, 50);                       /* on the first bound */
	bs_hist_add(&h, 51);
	bs_hist_add(&h, bs_hist_bounds_us[BS_HIST_BUCKETS - 1]);
	bs_hist_add(&h, bs_hist_bounds_us[BS_HIST_BUCKETS - 1] + 1);
	assert_int_equal(h.bucket[0], 2);
	assert_int_equal(h.bucket[1], 1);
	assert_int_equal(h.bucket[BS_HIST_BUCKETS - 1], 1);
	assert_int_equal(h.count, 5);
	assert_int_equal(h.sum_us, 50 + 51 + 2 * bs_hist_bounds_us[BS_HIST_BUCKETS - 1] + 1);
	for (size_t b = 1; b < BS_HIST_BUCKETS; b++)
		assert_true(bs_hist_bounds_us[b] > bs_hist_bounds_us[b - 1]);
	clock_gettime(CLOCK_MONOTONIC, &t);
	assert_true(bs_elapsed_us(&t) >= 0);
	t.tv_sec -= 2;
	assert_true(bs_elapsed_us(&t) >= 2000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
