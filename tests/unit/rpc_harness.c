/*
 * rpc_harness.c - the fake transport and helpers of rpc_harness.h.
 */
#define _XOPEN_SOURCE 700          /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <time.h>

#include <event2/event.h>

#include "audit/auditlog.h"
#include "policy/policy.h"
#include "rpc/rpc_service.h"
#include "types/types.h"
#include "rpc_harness.h"

struct audit_log *harness_audit_log;

static void
fake_answer(void *arg, const struct rpc_answer *a)
{
	struct fake_stream *fs = arg;

	fs->answers++;
	fs->a = *a;
	snprintf(fs->message, sizeof(fs->message), "%s", a->message);
	assert_true(a->msg_len <= sizeof(fs->msg));
	if (a->msg_len > 0)
		memcpy(fs->msg, a->msg, a->msg_len);
	fs->records_at_answer = harness_audit_log != NULL ? audit_log_size(harness_audit_log) : 0;
	if (fs->detach_on_answer) {
		rpc_call_detach(fs->call);
		fs->call = NULL;
	}
}

static void
fake_send(void *arg, const uint8_t *msg, size_t len)
{
	struct fake_stream *fs = arg;

	(void)msg;
	assert_int_equal(fs->answers, 0);      /* never after the answer */
	fs->sent++;
	fs->sent_len = len;
}

const struct rpc_transport fake_transport = { fake_answer, fake_send };

struct rpc_call *
harness_begin(struct rpc_dispatcher *d, const char *uri, struct fake_stream *fs)
{
	static const uint8_t cert[32] = { 0xab, 0xab, 0xab };
	struct rpc_peer peer = { uri, cert, "127.0.0.1:1" };
	struct rpc_call *call = NULL;

	memset(fs, 0, sizeof(*fs));
	assert_int_equal(rpc_call_new(d, &peer, &fake_transport, fs, &call), 0);
	fs->call = call;
	return call;
}

void
harness_send(struct rpc_call *call, const char *path, const uint8_t *msg, size_t len)
{
	if (rpc_call_admit(call, path))
		rpc_call_request(call, msg, len);
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * One loop turn that waits (at most 2 ms) even when nothing else is
 * pending, so that a bound in time is a bound in turns too: work done on
 * other threads (an fsync on the work queue) has time to finish.
 */
static void
turn(struct event_base *base)
{
	struct timeval tv = { 0, 2000 };
	struct event *t = evtimer_new(base, tick, NULL);

	assert_non_null(t);
	assert_int_equal(evtimer_add(t, &tv), 0);
	(void)event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

int
harness_pump(struct event_base *base, const int *flag)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!*flag && ms_since(&t0) < 10000)
		turn(base);
	return *flag;
}

void
harness_pump_idle(struct event_base *base, struct rpc_dispatcher *d)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rpc_dispatcher_calls(d) > 0 && ms_since(&t0) < 10000)
		turn(base);
}

struct policy *
harness_policy(const char *dir, const char *text, const struct rpc_registry *reg)
{
	const char *methods[128];
	struct policy_schema schema;
	struct policy *p = NULL;
	char path[512], err[2048];
	size_t n = rpc_registry_count(reg);
	FILE *fp;

	assert_true(n <= 128);
	for (size_t i = 0; i < n; i++)
		methods[i] = rpc_registry_name(reg, i);
	schema.methods = methods;
	schema.nmethods = n;
	schema.purposes = bs_purpose_names(&schema.npurposes);
	snprintf(path, sizeof(path), "%s/policy.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	if (policy_load(path, &schema, &p, err, sizeof(err)) != 0)
		fail_msg("policy_load: %s", err);
	return p;
}

void
harness_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/bs-unit-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void
harness_rmdir(const char *dir)
{
	(void)nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
