/*
 * test_rpc_dispatch.c - unit tests of the RPC layer (src/rpc): the
 * registry, and the fixed order in which the dispatcher runs a call, with a
 * fake transport and no sockets:
 *   admission at HEADERS (unknown method, unmapped certificate, method not
 *   granted are answered by rpc_call_admit, before any message exists, and
 *   no handler runs) -> one decode (a malformed message never reaches a
 *   handler) -> the policy's verdict before any key work (a handler that
 *   answers OK without it gets INTERNAL) -> the audit record durable ->
 *   the answer. The audit tests use a real audit log in a temporary
 *   directory and a real libevent loop; the policy is a real policy file.
 * Also: cancellation on detach and on deadline, late answers dropped but
 * recorded, service-defined audit fields; bounded work per request: the
 * caps on fields and unknown fields (checked before any decode), and the
 * per-principal rate limits with their summary records (a fake clock).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "audit/auditlog.h"
#include "boltseal/test/v1/echo.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "policy/policy.h"
#include "rpc/pb_scan.h"
#include "rpc/ratelimit.h"
#include "rpc/rpc.h"
#include "rpc/rpc_service.h"
#include "rpc_harness.h"

#define OK_URI "spiffe://t.example/ok"
#define NOGRANT_URI "spiffe://t.example/nogrant"
#define UNMAPPED_URI "spiffe://t.example/stranger"
#define PUMP_TIMEOUT_MS 10000

/* ---- a test service ------------------------------------------------------------ */

static int handler_runs;             /* handlers entered */
static int key_work_runs;            /* "key operations" a handler started */
static int cancels;                  /* cancel hooks run */
static struct rpc_call *parked;      /* a call whose handler answers later */
static char seen_text[64];

/* Authorizes on the key named by the text, then does its "key work" and answers. */
static void
h_sign(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__Test__V1__EchoRequest *r = (const Boltseal__Test__V1__EchoRequest *)msg;
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	handler_runs++;
	snprintf(seen_text, sizeof(seen_text), "%s", r->text);
	if (!rpc_call_authorize(call, r->text, "generic", NULL, 0))
		return;
	key_work_runs++;
	if (rpc_call_audit_field(call, "test.text", r->text) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "audit field");
		return;
	}
	resp.text = r->text;
	resp.principal = (char *)rpc_call_principal(call);
	rpc_call_finish_pb(call, &resp.base);
}

/* A handler bug: answers OK without asking the policy. */
static void
h_unchecked(struct rpc_call *call, const ProtobufCMessage *msg)
{
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	(void)msg;
	handler_runs++;
	rpc_call_finish_pb(call, &resp.base);
}

static void
on_cancel(void *arg)
{
	(void)arg;
	cancels++;
}

/* Authorizes, then parks the call (as a handler waiting for the HSM would). */
static void
h_park(struct rpc_call *call, const ProtobufCMessage *msg)
{
	(void)msg;
	handler_runs++;
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	rpc_call_on_cancel(call, on_cancel, NULL);
	parked = call;
}

/* Any mapped principal; the answer does not wait for its record. */
static void
h_health(struct rpc_call *call, const ProtobufCMessage *msg)
{
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	(void)msg;
	handler_runs++;
	rpc_call_finish_pb(call, &resp.base);
}

/* Server streaming: two messages, then the end; a unary method may not stream. */
static void
h_stream(struct rpc_call *call, const ProtobufCMessage *msg)
{
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	(void)msg;
	handler_runs++;
	resp.text = "one";
	assert_int_equal(rpc_call_send_pb(call, &resp.base), 0);
	resp.text = "two";
	assert_int_equal(rpc_call_send_pb(call, &resp.base), 0);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL, NULL, 0);
	assert_int_equal(rpc_call_send_pb(call, &resp.base), BS_ERR_UNAVAILABLE);
}

static void
h_unary_streams(struct rpc_call *call, const ProtobufCMessage *msg)
{
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	(void)msg;
	handler_runs++;
	assert_int_equal(rpc_call_send_pb(call, &resp.base), BS_ERR_PRECONDITION);
	rpc_call_finish_pb(call, &resp.base);
}

/* A request stream: each message echoed as it comes; "stop" ends the call INVALID_ARGUMENT. */
static void
h_chat(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__Test__V1__EchoRequest *req = (const Boltseal__Test__V1__EchoRequest *)msg;
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	handler_runs++;
	if (strcmp(req->text, "stop") == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "stopped");
		return;
	}
	resp.text = req->text;
	assert_int_equal(rpc_call_send_pb(call, &resp.base), 0);
}

static const struct rpc_method t_methods[] = {
	{ "Sign", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_POLICY, 0, h_sign },
	{ "Unchecked", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_POLICY, 0, h_unchecked },
	{ "Park", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_POLICY, 0, h_park },
	{ "Health", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL,
	    RPC_F_AUDIT_NOWAIT, h_health },
	/* a request type with nested messages (SignBatchRequest.items) */
	{ "Batch", &boltseal__v1__sign_batch_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL, 0,
	    h_health },
	{ "Stream", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL,
	    RPC_F_AUDIT_NOWAIT | RPC_F_STREAM, h_stream },
	{ "UnaryStreams", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL, 0,
	    h_unary_streams },
	{ "Chat", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL,
	    RPC_F_STREAM | RPC_F_REQUEST_STREAM, h_chat },
};

/* The test-only EchoService (src/services/echo), the model of a new service. */
extern const struct rpc_service echo_service;

static const struct rpc_service t_service = {
	.name = "t.v1.T",
	.methods = t_methods,
	.nmethods = sizeof(t_methods) / sizeof(t_methods[0]),
};

static const char policy_text[] =
    "principal tester\n"
    "    uri " OK_URI "\n"
    "    roles signer\n"
    "principal approver1\n"
    "    uri spiffe://t.example/a1\n"
    "    roles signer\n"
    "principal approver2\n"
    "    uri spiffe://t.example/a2\n"
    "    roles signer\n"
    "principal bystander\n"
    "    uri " NOGRANT_URI "\n"
    "    roles health-only\n"
    "role signer\n"
    "    grant\n"
    "        methods t.v1.T/Sign\n"
    "        keys allowed-*\n"
    "    grant\n"
    "        methods t.v1.T/Sign\n"
    "        keys mfa-*\n"
    "        require mfa\n"
    "    grant\n"
    "        methods t.v1.T/Sign\n"
    "        keys quorum-*\n"
    "        require approvals 2 of signer\n"
    "    grant\n"
    "        methods t.v1.T/Unchecked t.v1.T/Park boltseal.test.v1.EchoService/Echo\n"
    "role health-only\n";

/* ---- fixture ---------------------------------------------------------------------- */

/* The limits the next setup gives its dispatcher (setup_common clears them after use). */
static struct rpc_dispatcher_limits next_limits;
static int next_limits_set;

/* The fake CLOCK_MONOTONIC of the rate-limit tests, in ns. */
static uint64_t fake_now;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

struct fixture {
	char tmp[64];
	struct event_base *base;
	struct event *tick;
	struct rpc_registry *reg;
	struct policy *pol;
	struct audit_log *log;
	struct rpc_dispatcher *d;
};

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
reset_counters(void)
{
	handler_runs = key_work_runs = cancels = 0;
	parked = NULL;
	seen_text[0] = '\0';
}

static int
setup_common(void **state, int with_audit)
{
	const struct rpc_service *svcs[] = { &t_service, &echo_service };
	struct rpc_dispatcher_opts o;
	struct rpc_dispatcher_limits lim = next_limits;
	int with_limits = next_limits_set;
	struct audit_log_opts ao;
	struct fixture *f = calloc(1, sizeof(*f));
	struct timeval tv = { 0, 5000 };
	char err[1024], dir[128];

	assert_non_null(f);
	reset_counters();
	harness_tmpdir(f->tmp, sizeof(f->tmp));
	assert_non_null(f->base = event_base_new());
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
	assert_int_equal(event_add(f->tick, &tv), 0);
	assert_int_equal(rpc_registry_new(svcs, 2, &f->reg, err, sizeof(err)), 0);
	f->pol = harness_policy(f->tmp, policy_text, f->reg);
	if (with_audit) {
		memset(&ao, 0, sizeof(ao));
		ao.queue_max = 64;
		snprintf(dir, sizeof(dir), "%s/audit", f->tmp);
		if (audit_log_open(dir, f->base, &ao, &f->log, err, sizeof(err)) != 0)
			fail_msg("audit_log_open: %s", err);
	}
	harness_audit_log = f->log;
	memset(&o, 0, sizeof(o));
	o.registry = f->reg;
	o.env = f;
	o.audit = f->log;
	assert_int_equal(rpc_dispatcher_new(&o, &f->d), 0);
	memset(&next_limits, 0, sizeof(next_limits));
	next_limits_set = 0;
	if (with_limits) {
		lim.base = f->base;
		assert_int_equal(rpc_dispatcher_set_limits(f->d, &lim), 0);
	}
	rpc_dispatcher_set_policy(f->d, f->pol);
	assert_int_equal(rpc_registry_start(f->reg, f, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_common(state, 0);
}

static int
setup_audit(void **state)
{
	return setup_common(state, 1);
}

/* Audit on; the dispatcher's field caps lowered (50 fields, 4 unknown). */
static int
setup_caps(void **state)
{
	next_limits.max_request_fields = 50;
	next_limits.max_unknown_fields = 4;
	next_limits_set = 1;
	return setup_common(state, 1);
}

/* Audit on; 5 calls per second per principal, on the fake clock. */
static int
setup_rate(void **state)
{
	fake_now = 1000 * RPC_RL_INTERVAL_NS;
	next_limits.max_unknown_fields = RPC_DEFAULT_MAX_UNKNOWN_FIELDS;
	next_limits.rate_limit_calls = 5;
	next_limits.clock_ns = fake_clock;
	next_limits_set = 1;
	return setup_common(state, 1);
}

/* Audit on; 3 audit records per second per principal, no call limit, fake clock. */
static int
setup_rate_records(void **state)
{
	fake_now = 1000 * RPC_RL_INTERVAL_NS;
	next_limits.max_unknown_fields = RPC_DEFAULT_MAX_UNKNOWN_FIELDS;
	next_limits.rate_limit_audit_records = 3;
	next_limits.clock_ns = fake_clock;
	next_limits_set = 1;
	return setup_common(state, 1);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rpc_dispatcher_calls(f->d), 0);
	rpc_dispatcher_flush(f->d);
	rpc_dispatcher_free(f->d);
	audit_log_close(f->log);
	harness_audit_log = NULL;
	policy_free(f->pol);
	rpc_registry_free(f->reg);
	event_free(f->tick);
	event_base_free(f->base);
	harness_rmdir(f->tmp);
	free(f);
	return 0;
}

static void
pump_until_answered(struct fixture *f, struct fake_stream *fs)
{
	assert_true(harness_pump(f->base, &fs->answers));
	assert_int_equal(fs->answers, 1);
}

/* Drains the log's pending completions (late records) so teardown sees no call. */
static void
pump_until_idle(struct fixture *f)
{
	harness_pump_idle(f->base, f->d);
}

static struct rpc_call *
begin(struct fixture *f, const char *uri, struct fake_stream *fs)
{
	return harness_begin(f->d, uri, fs);
}

/* Packs an EchoRequest with text into buf; returns its length. */
static size_t
pack_req(const char *text, uint8_t *buf, size_t cap)
{
	Boltseal__Test__V1__EchoRequest r = BOLTSEAL__TEST__V1__ECHO_REQUEST__INIT;
	size_t n;

	r.text = (char *)text;
	n = boltseal__test__v1__echo_request__get_packed_size(&r);
	assert_true(n <= cap);
	(void)boltseal__test__v1__echo_request__pack(&r, buf);
	return n;
}

/* Sends text to path as caller uri; the stream is detached once answered. */
static void
run_call(struct fixture *f, const char *uri, const char *path, const char *text,
    struct fake_stream *fs)
{
	struct rpc_call *call = begin(f, uri, fs);
	uint8_t buf[512];
	size_t n = pack_req(text, buf, sizeof(buf));

	if (rpc_call_admit(call, path))
		rpc_call_request(call, buf, n);
	if (f->log != NULL)
		pump_until_answered(f, fs);
	assert_int_equal(fs->answers, 1);
	rpc_call_detach(call);
	pump_until_idle(f);
}

/* ---- registry ---------------------------------------------------------------------- */

static void
test_registry(void **state)
{
	const struct rpc_service *twice[] = { &t_service, &t_service };
	struct fixture *f = *state;
	struct rpc_registry *r = NULL;
	char err[256] = "";

	assert_ptr_equal(rpc_registry_find(f->reg, "/t.v1.T/Sign"), &t_methods[0]);
	assert_null(rpc_registry_find(f->reg, "/t.v1.T/Nope"));
	assert_null(rpc_registry_find(f->reg, "t.v1.T/Sign"));
	assert_int_equal(rpc_registry_count(f->reg), 9);
	assert_string_equal(rpc_registry_name(f->reg, 0), "t.v1.T/Sign");
	assert_string_equal(rpc_registry_name(f->reg, 8), "boltseal.test.v1.EchoService/Echo");
	assert_null(rpc_registry_name(f->reg, 9));
	assert_int_equal(rpc_registry_service_count(f->reg), 2);
	assert_string_equal(rpc_registry_service_name(f->reg, 1), "boltseal.test.v1.EchoService");
	assert_null(rpc_registry_service_name(f->reg, 2));
	assert_true(rpc_registry_has_service(f->reg, "boltseal.test.v1.EchoService"));
	assert_true(rpc_registry_has_service(f->reg, "t.v1.T"));
	assert_false(rpc_registry_has_service(f->reg, "t.v1"));
	assert_int_equal(rpc_registry_new(twice, 2, &r, err, sizeof(err)), BS_ERR_INVALID);
	assert_null(r);
	assert_string_equal(err, "/t.v1.T/Sign is served twice");
}

static void
test_registry_rejects_incomplete_method(void **state)
{
	static const struct rpc_method bad[] = {
		{ "NoHandler", &boltseal__test__v1__echo_request__descriptor, NULL,
		    RPC_AUTHZ_POLICY, 0, NULL },
	};
	static const struct rpc_service bad_svc = { .name = "bad.v1.B", .methods = bad, .nmethods = 1 };
	const struct rpc_service *svcs[] = { &bad_svc };
	struct rpc_registry *r = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(rpc_registry_new(svcs, 1, &r, err, sizeof(err)), BS_ERR_INVALID);
	assert_non_null(strstr(err, "no name, handler or request type"));
}

/* ---- admission -------------------------------------------------------------------- */

static int send_raw(struct fixture *f, const char *uri, const char *path, const uint8_t *msg,
    size_t len, struct fake_stream *fs);

static void
test_server_streaming(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;

	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Stream", (const uint8_t *)"", 0, &fs),
	    GRPC_STATUS_OK);
	assert_int_equal(fs.sent, 2);
	assert_true(fs.sent_len > 0);
	assert_true(fs.a.no_message);          /* the end: trailers only */
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/UnaryStreams", (const uint8_t *)"", 0, &fs),
	    GRPC_STATUS_OK);
	assert_int_equal(fs.sent, 0);
	assert_false(fs.a.no_message);
}

static void last_record(struct fixture *f, char *buf, size_t cap);

/*
 * A request stream: each message reaches the handler as it is handed over,
 * the call ends OK when the client ends its stream, a handler may end it
 * early, a malformed message ends it, and a unary method does not stream.
 */
static void
test_request_streaming(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[64];
	size_t n;

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Chat"), 1);
	assert_true(rpc_call_streams_requests(call));
	for (int i = 0; i < 3; i++) {
		n = pack_req("hello", buf, sizeof(buf));
		rpc_call_request(call, buf, n);
		assert_int_equal(handler_runs, i + 1);
		assert_int_equal(fs.sent, i + 1);
		assert_int_equal(fs.answers, 0);
	}
	rpc_call_request_end(call);
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_true(fs.a.no_message);
	rpc_call_detach(call);
	pump_until_idle(f);

	/* the handler ends it: later messages and the end change nothing */
	reset_counters();
	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Chat"), 1);
	n = pack_req("stop", buf, sizeof(buf));
	rpc_call_request(call, buf, n);
	n = pack_req("more", buf, sizeof(buf));
	rpc_call_request(call, buf, n);
	rpc_call_request_end(call);
	pump_until_answered(f, &fs);
	assert_int_equal(handler_runs, 1);
	assert_int_equal(fs.answers, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(fs.message, "stopped");
	rpc_call_detach(call);
	pump_until_idle(f);

	/* a malformed message: INVALID_ARGUMENT, the handler never sees it */
	reset_counters();
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Chat", (const uint8_t *)"\x0a\xff", 2, &fs),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(handler_runs, 0);

	/* a unary method: no request stream, and request_end is a no-op */
	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Health"), 1);
	assert_false(rpc_call_streams_requests(call));
	rpc_call_request_end(call);
	assert_int_equal(fs.answers, 0);
	rpc_call_detach(call);
	pump_until_idle(f);
}

/* A request stream the client leaves (or that ends with no message) is recorded. */
static void
test_request_stream_left_is_recorded(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[64];
	size_t n = pack_req("hi", buf, sizeof(buf));
	char line[4096];

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Chat"), 1);
	rpc_call_request(call, buf, n);
	rpc_call_detach(call);                        /* the client left mid-stream */
	pump_until_idle(f);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"result\":\"CANCELLED\""));
	assert_non_null(strstr(line, "the client left before ending its request stream"));

	/* an empty stream ends OK, recorded */
	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Chat"), 1);
	rpc_call_request_end(call);
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fs.sent, 0);
	rpc_call_detach(call);
	pump_until_idle(f);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"method\":\"t.v1.T/Chat\""));
	assert_non_null(strstr(line, "\"result\":\"OK\""));
}

/* A request stream only with a response stream, and only for any principal. */
static void
test_registry_rejects_request_stream_misuse(void **state)
{
	static const struct rpc_method bad[] = {
		{ "NoResponseStream", &boltseal__test__v1__echo_request__descriptor,
		    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL,
		    RPC_F_REQUEST_STREAM, h_chat },
		{ "Policy", &boltseal__test__v1__echo_request__descriptor,
		    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_POLICY,
		    RPC_F_STREAM | RPC_F_REQUEST_STREAM, h_chat },
	};
	for (size_t i = 0; i < 2; i++) {
		struct rpc_service svc = { .name = "bad.v1.B", .methods = &bad[i], .nmethods = 1 };
		const struct rpc_service *svcs[] = { &svc };
		struct rpc_registry *r = NULL;
		char err[256] = "";

		(void)state;
		assert_int_equal(rpc_registry_new(svcs, 1, &r, err, sizeof(err)), BS_ERR_INVALID);
		assert_non_null(strstr(err, "a request stream needs a response stream"));
	}
}

static void
test_unknown_method_refused_at_admission(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Missing"), 0);
	assert_int_equal(fs.answers, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNIMPLEMENTED);
	assert_string_equal(fs.message, "unknown method /t.v1.T/Missing");
	assert_true(rpc_call_decided(call));
	rpc_call_detach(call);
}

static void
test_unmapped_certificate_refused_before_any_message(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, UNMAPPED_URI, &fs);
	uint8_t buf[64];
	size_t n = pack_req("allowed-1", buf, sizeof(buf));

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 0);
	assert_int_equal(fs.answers, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(fs.message, "client certificate is not mapped to a principal");
	/* a transport that hands over a message anyway changes nothing */
	rpc_call_request(call, buf, n);
	assert_int_equal(handler_runs, 0);
	assert_int_equal(fs.answers, 1);
	rpc_call_detach(call);
}

static void
test_method_not_granted_refused_at_admission(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, NOGRANT_URI, &fs);

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 0);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
	assert_true(strncmp(fs.message, "permission denied (request id ", 29) == 0);
	assert_int_equal(handler_runs, 0);
	rpc_call_detach(call);
}

static void
test_any_principal_method_admitted(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;

	run_call(f, NOGRANT_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(handler_runs, 1);
	/* but an unmapped certificate is refused even there */
	run_call(f, UNMAPPED_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(handler_runs, 1);
}

static void
test_policy_swap_remaps(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);

	/* admitted under the policy, then the policy goes away before the message */
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_dispatcher_set_policy(f->d, NULL);
	{
		uint8_t buf[64];
		size_t n = pack_req("allowed-1", buf, sizeof(buf));

		rpc_call_request(call, buf, n);
	}
	assert_int_equal(handler_runs, 1);
	assert_int_equal(key_work_runs, 0);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
	rpc_call_detach(call);
	rpc_dispatcher_set_policy(f->d, f->pol);
}

/* ---- decode, verdict ------------------------------------------------------------ */

static void
test_malformed_message_never_reaches_handler(void **state)
{
	static const uint8_t truncated[] = { 0x0a, 0x05, 'a', 'b' };     /* field 1, len 5, 2 bytes */
	static const uint8_t bad_utf8[] = { 0x0a, 0x02, 0xc3, 0x28 };
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call;

	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_call_request(call, truncated, sizeof(truncated));
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	rpc_call_detach(call);

	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_call_request(call, bad_utf8, sizeof(bad_utf8));
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(fs.message, "field 1 is not valid UTF-8"));
	rpc_call_detach(call);
	assert_int_equal(handler_runs, 0);
}

static void
test_decoded_once_and_handler_answers(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	Boltseal__Test__V1__EchoResponse *resp;
	uint8_t buf[64];
	size_t n = pack_req("allowed-7", buf, sizeof(buf));

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_call_request(call, buf, n);
	/* a second message on the same call is ignored: one decode, one handler run */
	rpc_call_request(call, buf, n);
	assert_int_equal(handler_runs, 1);
	assert_string_equal(seen_text, "allowed-7");
	assert_int_equal(fs.answers, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fs.a.http_status, 200);
	resp = boltseal__test__v1__echo_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_string_equal(resp->text, "allowed-7");
	assert_string_equal(resp->principal, "tester");
	boltseal__test__v1__echo_response__free_unpacked(resp, NULL);
	rpc_call_detach(call);
}

static void
test_verdict_denies_before_key_work(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;

	run_call(f, OK_URI, "/t.v1.T/Sign", "other-key", &fs);
	assert_int_equal(handler_runs, 1);
	assert_int_equal(key_work_runs, 0);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
	assert_true(strncmp(fs.message, "permission denied (request id ", 29) == 0);
}

static void
test_verdicts_with_requirements_are_refused_distinctly(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;

	run_call(f, OK_URI, "/t.v1.T/Sign", "mfa-key", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(fs.message, RPC_SF_NEEDED_MESSAGE);
	run_call(f, OK_URI, "/t.v1.T/Sign", "quorum-key", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(fs.message, "this call needs 2 approvals of role signer: submit it as a "
	    "proposal (boltseal.v1.AdminService/Propose)");
	assert_int_equal(handler_runs, 2);
	assert_int_equal(key_work_runs, 0);
}

/* ---- second factor and approved calls ---------------------------------------------- */

static int sf_checks;
static char sf_principal[64];

/* A checker that accepts "123456" only; answers at once. */
static void
fake_check(void *arg, struct rpc_call *call, const char *principal, const char *code)
{
	(void)arg;
	sf_checks++;
	snprintf(sf_principal, sizeof(sf_principal), "%s", principal);
	if (strcmp(code, "123456") == 0)
		rpc_call_second_factor_done(call, 1, 0, NULL, NULL);
	else
		rpc_call_second_factor_done(call, 0, GRPC_STATUS_UNAUTHENTICATED,
		    "second factor: wrong code", "second factor of the test: wrong");
}

/* Sends text to path as uri with an x-boltseal-otp code (NULL: none). */
static void
run_otp_call(struct fixture *f, const char *uri, const char *path, const char *text,
    const char *otp, struct fake_stream *fs)
{
	struct rpc_call *call = begin(f, uri, fs);
	uint8_t buf[512];
	size_t n = pack_req(text, buf, sizeof(buf));

	if (otp != NULL)
		rpc_call_set_otp(call, otp, strlen(otp));
	if (rpc_call_admit(call, path))
		rpc_call_request(call, buf, n);
	assert_int_equal(fs->answers, 1);
	rpc_call_detach(call);
	pump_until_idle(f);
}

static void
test_second_factor_checked_before_the_handler(void **state)
{
	struct fixture *f = *state;
	struct rpc_second_factor sf = { fake_check, NULL };
	struct fake_stream fs;

	sf_checks = 0;
	rpc_dispatcher_set_second_factor(f->d, &sf);
	/* a valid code: the grant that requires mfa allows */
	run_otp_call(f, OK_URI, "/t.v1.T/Sign", "mfa-key", "123456", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(sf_checks, 1);
	assert_string_equal(sf_principal, "tester");
	assert_int_equal(key_work_runs, 1);
	/* a wrong one: refused before the handler runs */
	run_otp_call(f, OK_URI, "/t.v1.T/Sign", "mfa-key", "000000", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(fs.message, "second factor: wrong code");
	assert_int_equal(handler_runs, 1);
	/* none: the grant's requirement answers */
	run_otp_call(f, OK_URI, "/t.v1.T/Sign", "mfa-key", NULL, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(fs.message, RPC_SF_NEEDED_MESSAGE);
	assert_int_equal(sf_checks, 2);
	/* a code too long is handed over as malformed (""), never cut to fit */
	run_otp_call(f, OK_URI, "/t.v1.T/Sign", "mfa-key", "12345678901234567890", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	/* the health-like method is not checked; a second factor never opens approvals */
	run_otp_call(f, OK_URI, "/t.v1.T/Health", "x", "123456", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(sf_checks, 3);
	run_otp_call(f, OK_URI, "/t.v1.T/Sign", "quorum-key", "123456", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(key_work_runs, 1);
}

static int spawn_answers, spawn_authorized, spawn_status;
static char spawn_message[RPC_MESSAGE_MAX];

static void
spawn_done(void *arg, const struct rpc_answer *a, int authorized)
{
	(void)arg;
	spawn_answers++;
	spawn_authorized = authorized;
	spawn_status = a->grpc_status;
	snprintf(spawn_message, sizeof(spawn_message), "%s", a->message);
}

/* Runs Sign(text) as parked's caller with the approvers; returns its status. */
static int
spawn_sign(struct fixture *f, const char *text, const char *const *who, size_t n)
{
	uint8_t buf[512];
	size_t len = pack_req(text, buf, sizeof(buf));
	int before = spawn_answers;

	assert_int_equal(rpc_call_spawn(parked, "/t.v1.T/Sign", buf, len, "p-1", who, n,
	    spawn_done, NULL), 0);
	assert_int_equal(spawn_answers, before + 1);
	return spawn_status;
}

static void
test_spawned_call_counts_distinct_approvers_of_the_role(void **state)
{
	struct fixture *f = *state;
	const char *self_and_bystander[] = { "tester", "bystander" };
	const char *one_twice[] = { "approver1", "approver1" };
	const char *two[] = { "approver1", "approver2" };
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[64];
	size_t n = pack_req("", buf, sizeof(buf));

	/* the parent: a call of tester's that is still open */
	assert_true(rpc_call_admit(call, "/t.v1.T/Park"));
	rpc_call_request(call, buf, n);
	assert_non_null(parked);
	spawn_answers = 0;

	/* the caller and a principal without the role do not count */
	assert_int_equal(spawn_sign(f, "quorum-key", self_and_bystander, 2),
	    GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(spawn_authorized, 0);
	assert_non_null(strstr(spawn_message, "proposal p-1 has 0 that count"));
	/* one person twice counts once */
	assert_int_equal(spawn_sign(f, "quorum-key", one_twice, 2),
	    GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(spawn_message, "has 1 that count"));
	assert_int_equal(key_work_runs, 0);
	/* two members of the role: it runs */
	assert_int_equal(spawn_sign(f, "quorum-key", two, 2), GRPC_STATUS_OK);
	assert_int_equal(spawn_authorized, 1);
	assert_int_equal(key_work_runs, 1);
	/* approvals never open what the policy denies */
	assert_int_equal(spawn_sign(f, "other-key", two, 2), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(spawn_authorized, 0);
	rpc_call_finish(parked, GRPC_STATUS_OK, "", NULL, 0);
	rpc_call_detach(call);
	pump_until_idle(f);
}

static void
test_unchecked_success_becomes_internal(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;

	run_call(f, OK_URI, "/t.v1.T/Unchecked", "", &fs);
	assert_int_equal(handler_runs, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INTERNAL);
	assert_int_equal(fs.a.msg_len, 0);
}

static void
test_transport_refusal(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);

	rpc_call_refuse(call, 415, GRPC_STATUS_INTERNAL, "content-type must be application/grpc");
	assert_int_equal(fs.a.http_status, 415);
	/* decided: admission and a second refusal change nothing */
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 0);
	rpc_call_refuse(call, 200, GRPC_STATUS_UNAVAILABLE, "x");
	assert_int_equal(fs.answers, 1);
	rpc_call_detach(call);
}

/* ---- cancellation ------------------------------------------------------------------- */

static void
test_detach_cancels_and_late_answer_is_dropped(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_request(call, buf, n);
	assert_ptr_equal(parked, call);
	assert_int_equal(fs.answers, 0);
	rpc_call_detach(call);
	assert_int_equal(cancels, 1);
	assert_true(rpc_call_abandoned(parked));
	assert_int_equal(rpc_dispatcher_calls(f->d), 1);   /* kept for its handler */
	rpc_call_finish(parked, GRPC_STATUS_OK, NULL, NULL, 0);
	assert_int_equal(fs.answers, 0);
	pump_until_idle(f);
	assert_int_equal(rpc_dispatcher_calls(f->d), 0);
}

static void
test_deadline_answers_and_cancels(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_request(call, buf, n);
	rpc_call_deadline(call);
	assert_int_equal(cancels, 1);
	assert_int_equal(fs.answers, 1);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_DEADLINE_EXCEEDED);
	rpc_call_finish(parked, GRPC_STATUS_OK, NULL, NULL, 0);   /* dropped */
	assert_int_equal(fs.answers, 1);
	rpc_call_detach(call);
	pump_until_idle(f);
}

/* ---- audit ---------------------------------------------------------------------------- */

/* The durable log's last line, into buf. */
static void
last_record(struct fixture *f, char *buf, size_t cap);

struct last {
	char *buf;
	size_t cap;
};

static int
keep_line(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct last *l = arg;

	(void)index;
	snprintf(l->buf, l->cap, "%.*s", (int)len, (const char *)line);
	return 0;
}

static void
last_record(struct fixture *f, char *buf, size_t cap)
{
	struct last l = { buf, cap };
	uint64_t size = audit_log_size(f->log), nread = 0;

	assert_true(size > 0);
	assert_int_equal(audit_log_read(f->log, size - 1, 1, 1 << 20, keep_line, &l, &nread), 0);
	assert_int_equal(nread, 1);
}

static void
test_answer_waits_for_durable_record(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint64_t before = audit_log_size(f->log);
	uint8_t buf[64];
	size_t n = pack_req("allowed-2", buf, sizeof(buf));
	char line[4096];

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_call_request(call, buf, n);
	assert_int_equal(key_work_runs, 1);
	assert_int_equal(fs.answers, 0);               /* not before its record */
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fs.records_at_answer, before + 1);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"principal_id\":\"tester\""));
	assert_non_null(strstr(line, "\"method\":\"t.v1.T/Sign\""));
	assert_non_null(strstr(line, "\"key\":\"allowed-2\""));
	assert_non_null(strstr(line, "\"result\":\"OK\""));
	assert_non_null(strstr(line, "\"payload_sha256\":[],\"fields\":{\"test.text\":\"allowed-2\"}}"));
	rpc_call_detach(call);
}

static void
test_refusal_at_admission_is_recorded_first(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, UNMAPPED_URI, &fs);
	uint64_t before = audit_log_size(f->log);
	char line[4096];

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 0);
	assert_int_equal(fs.answers, 0);
	assert_true(rpc_call_decided(call));
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(fs.records_at_answer, before + 1);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"principal_id\":null"));
	assert_non_null(strstr(line, "maps to no principal"));
	assert_non_null(strstr(line, "\"identity\":\"" UNMAPPED_URI "\""));
	assert_null(strstr(line, "\"fields\""));
	rpc_call_detach(call);
}

static void
test_denial_reason_only_in_record(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	char line[4096];

	run_call(f, NOGRANT_URI, "/t.v1.T/Sign", "", &fs);
	assert_true(strncmp(fs.message, "permission denied (request id ", 29) == 0);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "no role of principal 'bystander' (health-only) grants "
	    "t.v1.T/Sign"));
}

static void
test_nowait_method_answers_before_record(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint64_t before = audit_log_size(f->log);
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Health"), 1);
	rpc_call_request(call, buf, n);
	assert_int_equal(fs.answers, 1);              /* at once */
	assert_int_equal(fs.records_at_answer, before);
	rpc_call_detach(call);
	pump_until_idle(f);                           /* the record is still written */
	assert_int_equal(audit_log_size(f->log), before + 1);
}

static void
test_transport_detaches_inside_answer(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[64];
	size_t n = pack_req("allowed-3", buf, sizeof(buf));

	fs.detach_on_answer = 1;
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Sign"), 1);
	rpc_call_request(call, buf, n);
	pump_until_answered(f, &fs);
	assert_null(fs.call);
	pump_until_idle(f);
	assert_int_equal(rpc_dispatcher_calls(f->d), 0);
}

static void
test_late_outcome_recorded(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));
	char line[4096];

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_request(call, buf, n);
	rpc_call_detach(call);                        /* client gone */
	rpc_call_fail(parked, GRPC_STATUS_UNAVAILABLE, "hsm busy");
	pump_until_idle(f);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "result dropped: the caller was already answered or left; "
	    "hsm busy"));
}

/* An answer that comes after the caller's deadline is DEADLINE_EXCEEDED, recorded with what it was. */
static void
test_answer_after_deadline(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	struct timespec ms = { 0, 3000000 };
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));
	char line[4096];

	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_set_deadline(call, 1000);            /* 1 ms */
	rpc_call_request(call, buf, n);
	nanosleep(&ms, NULL);                         /* the HSM was slow; no timer fired yet */
	rpc_call_finish(parked, GRPC_STATUS_OK, NULL, NULL, 0);
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_DEADLINE_EXCEEDED);
	assert_int_equal(fs.a.msg_len, 0);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"result\":\"DEADLINE_EXCEEDED\""));
	assert_non_null(strstr(line, "after the caller's deadline; its result was OK"));
	rpc_call_detach(call);
	/* within the deadline nothing changes */
	call = begin(f, OK_URI, &fs);
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_set_deadline(call, 10 * 1000000);
	rpc_call_request(call, buf, n);
	rpc_call_finish(parked, GRPC_STATUS_OK, NULL, NULL, 0);
	pump_until_answered(f, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	rpc_call_detach(call);
}

/* The EchoService's handler: the text back, the principal, the text in the record. */
static void
test_echo_service(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	Boltseal__Test__V1__EchoResponse *resp;
	char line[4096], longtext[300];

	run_call(f, OK_URI, "/boltseal.test.v1.EchoService/Echo", "ping \"1\"", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	resp = boltseal__test__v1__echo_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_string_equal(resp->text, "ping \"1\"");
	assert_string_equal(resp->principal, "tester");
	boltseal__test__v1__echo_response__free_unpacked(resp, NULL);
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"fields\":{\"echo.text\":\"ping \\\"1\\\"\"}}"));
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	run_call(f, OK_URI, "/boltseal.test.v1.EchoService/Echo", longtext, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	run_call(f, NOGRANT_URI, "/boltseal.test.v1.EchoService/Echo", "x", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
}

/* ---- service settings, init and fini ------------------------------------------- */

static int inits, finis, fail_init;

static int
s_init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	(void)env;
	if (fail_init) {
		snprintf(err, errlen, "no luck");
		return BS_ERR_UNAVAILABLE;
	}
	inits++;
	*state = (void *)(uintptr_t)values[1];
	return 0;
}

static void
s_fini(void *state)
{
	(void)state;
	finis++;
}

static char named_seen[256];
static int fail_named;

static int
s_named(void *st, size_t setting, const char *name, unsigned long value, char *err,
    size_t errlen)
{
	size_t n = strlen(named_seen);

	if (strcmp(name, "never") == 0) {         /* refused by the check too */
		snprintf(err, errlen, "never allowed");
		return BS_ERR_CONFIG;
	}
	if (st == NULL)                             /* the configuration check */
		return 0;
	if (fail_named && strcmp(name, "bad") == 0) {
		snprintf(err, errlen, "no such thing");
		return BS_ERR_CONFIG;
	}
	snprintf(named_seen + n, sizeof(named_seen) - n, "%zu:%s=%lu;", setting, name, value);
	return 0;
}

static const struct rpc_setting s_settings[] = {
	{ "alpha", 0, 10, 3, 0 },
	{ "beta", 5, 500, 50, 1 },
};

static const struct rpc_service s_service = {
	.name = "s.v1.S",
	.methods = t_methods,      /* the same handlers under another service name */
	.nmethods = 1,
	.section = "s",
	.settings = s_settings,
	.nsettings = 2,
	.init = s_init,
	.named = s_named,
	.fini = s_fini,
};

/* A per_name setting: "<section>.<setting>.<NAME> = N" lines reach named() after init. */
static void
test_settings_per_name(void **state)
{
	static const struct rpc_setting_line good[] = {
		{ "s.beta.route.override", "60", 1 },
		{ "s.beta", "77", 2 },
		{ "s.beta.safe_stop", "500", 3 },
	};
	static const struct rpc_setting_line bad[] = {
		{ "s.alpha.x", "1", 2 },                /* alpha takes no name */
		{ "s.beta.Route", "60", 3 },            /* not [a-z0-9_.-] */
		{ "s.beta.x", "4", 4 },                 /* out of range */
		{ "s.beta.y", "6", 5 },
		{ "s.beta.y", "7", 6 },                 /* twice */
		{ "s.betax.y", "6", 7 },
		{ "s.beta.never", "6", 8 },             /* the service's check, with the line */
	};
	static const struct rpc_setting_line failing[] = {
		{ "s.beta.bad", "6", 9 },
	};
	const struct rpc_service *svcs[] = { &s_service };
	struct rpc_registry *r = NULL;
	char err[2048] = "";

	(void)state;
	inits = finis = fail_init = fail_named = 0;
	named_seen[0] = '\0';
	assert_int_equal(rpc_registry_new(svcs, 1, &r, err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_configure(r, bad, 7, "b.conf", err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_non_null(strstr(err, "b.conf:8: s.beta.never: never allowed"));
	assert_non_null(strstr(err, "b.conf:2: unknown key 's.alpha.x' (s has no such setting)"));
	assert_non_null(strstr(err, "b.conf:3: s.beta.Route: 'Route' is not a name"));
	assert_non_null(strstr(err, "b.conf:4: s.beta.x: 4 is out of range (5..500)"));
	assert_non_null(strstr(err, "b.conf:6: s.beta.y is set twice (first on line 5)"));
	assert_non_null(strstr(err, "b.conf:7: unknown key 's.betax.y'"));
	rpc_registry_free(r);
	r = NULL;
	assert_int_equal(rpc_registry_new(svcs, 1, &r, err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_configure(r, good, 3, "g.conf", err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_start(r, NULL, err, sizeof(err)), 0);
	assert_string_equal(named_seen, "1:route.override=60;1:safe_stop=500;");
	assert_ptr_equal(rpc_registry_state(r, &t_methods[0]), (void *)(uintptr_t)77);
	rpc_registry_free(r);
	assert_int_equal(finis, 1);
	/* named() refusing stops the service again, and the error names the line's key */
	r = NULL;
	fail_named = 1;
	assert_int_equal(rpc_registry_new(svcs, 1, &r, err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_configure(r, failing, 1, "f.conf", err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_start(r, NULL, err, sizeof(err)), BS_ERR_CONFIG);
	assert_string_equal(err, "s.v1.S: s.beta.bad: no such thing");
	assert_int_equal(finis, 2);
	assert_null(rpc_registry_state(r, &t_methods[0]));
	rpc_registry_free(r);
	assert_int_equal(finis, 2);
	fail_named = 0;
}

static void
test_settings_init_and_fini(void **state)
{
	static const struct rpc_setting_line good[] = {
		{ "s.beta", "77", 4 },
	};
	static const struct rpc_setting_line bad[] = {
		{ "nope.x", "1", 2 },
		{ "s.gamma", "1", 3 },
		{ "s.alpha", "abc", 5 },
		{ "s.alpha", "11", 6 },
		{ "s.beta", "-1", 7 },
		{ "s.beta", "99999999999999999999999", 8 },
	};
	const struct rpc_service *svcs[] = { &s_service, &echo_service };
	struct rpc_registry *r = NULL;
	char err[2048] = "";

	(void)state;
	inits = finis = fail_init = 0;
	assert_int_equal(rpc_registry_new(svcs, 2, &r, err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_configure(r, bad, 6, "b.conf", err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_non_null(strstr(err, "b.conf:2: unknown key 'nope.x' (no service served here has "
	    "a section 'nope')"));
	assert_non_null(strstr(err, "b.conf:3: unknown key 's.gamma' (s has no such setting)"));
	assert_non_null(strstr(err, "b.conf:5: s.alpha: 'abc' is not a decimal number"));
	assert_non_null(strstr(err, "b.conf:6: s.alpha: 11 is out of range (0..10)"));
	assert_non_null(strstr(err, "b.conf:7: s.beta: '-1' is not a decimal number"));
	assert_non_null(strstr(err, "b.conf:8: s.beta:"));
	/* defaults, then one line */
	assert_int_equal(rpc_registry_start(r, NULL, err, sizeof(err)), 0);
	assert_int_equal(inits, 1);
	assert_ptr_equal(rpc_registry_state(r, &t_methods[0]), (void *)(uintptr_t)50);
	rpc_registry_stop(r);
	assert_int_equal(finis, 1);
	assert_null(rpc_registry_state(r, &t_methods[0]));
	assert_int_equal(rpc_registry_configure(r, good, 1, "g.conf", err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_start(r, NULL, err, sizeof(err)), 0);
	assert_ptr_equal(rpc_registry_state(r, &t_methods[0]), (void *)(uintptr_t)77);
	assert_int_equal(rpc_registry_serving(r, "s.v1.S", NULL), 1);
	assert_int_equal(rpc_registry_serving(r, NULL, NULL), 1);
	assert_int_equal(rpc_registry_serving(r, "nope.v1.N", NULL), -1);
	rpc_registry_free(r);          /* stops what is started */
	assert_int_equal(finis, 2);
	/* a failing init: nothing stays started, the error names the service */
	r = NULL;
	assert_int_equal(rpc_registry_new(svcs, 2, &r, err, sizeof(err)), 0);
	fail_init = 1;
	assert_int_equal(rpc_registry_start(r, NULL, err, sizeof(err)), BS_ERR_UNAVAILABLE);
	assert_string_equal(err, "s.v1.S: no luck");
	rpc_registry_free(r);
	assert_int_equal(finis, 2);
}

static void
test_echo_setting(void **state)
{
	static const struct rpc_setting_line lines[] = {
		{ "echo.max_text", "4", 9 },
	};
	struct fixture *f = *state;
	struct fake_stream fs;
	char err[512];

	rpc_registry_stop(f->reg);
	assert_int_equal(rpc_registry_configure(f->reg, lines, 1, "e.conf", err, sizeof(err)), 0);
	assert_int_equal(rpc_registry_start(f->reg, f, err, sizeof(err)), 0);
	run_call(f, OK_URI, "/boltseal.test.v1.EchoService/Echo", "abcd", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	run_call(f, OK_URI, "/boltseal.test.v1.EchoService/Echo", "abcde", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(fs.message, "text longer than 4 bytes");
}

static void
test_audit_field_names(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	char name[40];

	assert_int_equal(rpc_call_audit_field(call, "", "v"), BS_ERR_INVALID);
	assert_int_equal(rpc_call_audit_field(call, "Upper", "v"), BS_ERR_INVALID);
	assert_int_equal(rpc_call_audit_field(call, "a\"b", "v"), BS_ERR_INVALID);
	memset(name, 'a', 33);
	name[33] = '\0';
	assert_int_equal(rpc_call_audit_field(call, name, "v"), BS_ERR_INVALID);
	name[32] = '\0';
	assert_int_equal(rpc_call_audit_field(call, name, "v"), 0);
	assert_int_equal(rpc_call_audit_field(call, name, "replaced"), 0);
	for (int i = 1; i < RPC_AUDIT_FIELDS_MAX; i++) {
		char nm[8];

		snprintf(nm, sizeof(nm), "f%d", i);
		assert_int_equal(rpc_call_audit_field(call, nm, "x"), 0);
	}
	assert_int_equal(rpc_call_audit_field(call, "one.too.many", "x"), BS_ERR_INVALID);
	rpc_call_detach(call);
}


/* ---- bounded work per request: field caps --------------------------------------- */

/* n unknown fields of 2 bytes (field 15, varint 0) after the text field "t"; returns the length. */
static size_t
unknown_fields(uint8_t *buf, size_t cap, size_t n)
{
	size_t len = 0;

	assert_true(3 + 2 * n <= cap);
	buf[len++] = 0x0a;
	buf[len++] = 0x01;
	buf[len++] = 't';
	for (size_t i = 0; i < n; i++) {
		buf[len++] = 0x78;
		buf[len++] = 0x00;
	}
	return len;
}

/*
 * A SignBatchRequest with key_name "k" (if with_name), then n items: each a
 * SignBatchItem holding message "x", or, if unknown, field 15 (unknown to it).
 */
static size_t
batch(uint8_t *buf, size_t cap, int with_name, size_t n, int unknown)
{
	size_t len = 0;

	assert_true(3 + 5 * n <= cap);
	if (with_name) {
		buf[len++] = 0x0a;
		buf[len++] = 0x01;
		buf[len++] = 'k';
	}
	for (size_t i = 0; i < n; i++) {
		buf[len++] = 0x12;
		if (unknown) {
			buf[len++] = 0x02;
			buf[len++] = 0x78;
			buf[len++] = 0x00;
		} else {
			buf[len++] = 0x03;
			buf[len++] = 0x0a;
			buf[len++] = 0x01;
			buf[len++] = 'x';
		}
	}
	return len;
}

/* Sends msg to path as uri; returns the status (the stream detached, the loop drained). */
static int
send_raw(struct fixture *f, const char *uri, const char *path, const uint8_t *msg, size_t len,
    struct fake_stream *fs)
{
	struct rpc_call *call = begin(f, uri, fs);

	harness_send(call, path, msg, len);
	if (f->log != NULL)
		pump_until_answered(f, fs);
	assert_int_equal(fs->answers, 1);
	rpc_call_detach(call);
	pump_until_idle(f);
	return fs->a.grpc_status;
}

/* The default cap: 64 unknown fields pass, the 65th is refused before any decode. */
static void
test_unknown_field_cap(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	static uint8_t buf[65536];
	size_t n;

	n = unknown_fields(buf, sizeof(buf), 64);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, n, &fs), GRPC_STATUS_OK);
	assert_int_equal(handler_runs, 1);
	n = unknown_fields(buf, sizeof(buf), 65);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, n, &fs),
	    GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(fs.message, "request has more than 64 unknown fields");
	/* the flood of the finding, at the unit's scale: 32 K fields in 64 KiB */
	n = unknown_fields(buf, sizeof(buf), (sizeof(buf) - 3) / 2);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, n, &fs),
	    GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(handler_runs, 1);
	/* malformed is still malformed, with the message it had */
	n = unknown_fields(buf, sizeof(buf), 3);
	buf[n - 1] = 0x80;
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, n, &fs),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(fs.message, "is not valid protobuf"));
}

/* Lowered caps: fields and unknown fields counted through nested messages; refusals recorded. */
static void
test_field_caps_nested_and_recorded(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	uint8_t buf[1024];
	char line[4096];
	size_t n;

	/* 25 items of one field each: 50 fields */
	n = batch(buf, sizeof(buf), 0, 25, 0);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Batch", buf, n, &fs), GRPC_STATUS_OK);
	n = batch(buf, sizeof(buf), 1, 25, 0);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Batch", buf, n, &fs),
	    GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(fs.message, "request has more than 50 fields");
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "\"result\":\"RESOURCE_EXHAUSTED\""));
	assert_non_null(strstr(line, "\"reason\":\"request has more than 50 fields\""));
	assert_non_null(strstr(line, "\"method\":\"t.v1.T/Batch\""));
	/* unknown fields inside nested messages count */
	n = batch(buf, sizeof(buf), 1, 4, 1);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Batch", buf, n, &fs), GRPC_STATUS_OK);
	n = batch(buf, sizeof(buf), 1, 5, 1);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Batch", buf, n, &fs),
	    GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(fs.message, "request has more than 4 unknown fields");
	last_record(f, line, sizeof(line));
	assert_non_null(strstr(line, "request has more than 4 unknown fields"));
	assert_int_equal(handler_runs, 2);
}

/* max_unknown_fields 0: no unknown field at all. */
static void
test_no_unknown_fields(void **state)
{
	struct fixture *f = *state;
	struct rpc_dispatcher_limits l;
	struct fake_stream fs;
	uint8_t buf[64];
	size_t n = unknown_fields(buf, sizeof(buf), 1);

	memset(&l, 0, sizeof(l));
	assert_int_equal(rpc_dispatcher_set_limits(f->d, &l), 0);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, 3, &fs), GRPC_STATUS_OK);
	assert_int_equal(send_raw(f, OK_URI, "/t.v1.T/Health", buf, n, &fs),
	    GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(fs.message, "request has unknown fields (none are accepted)");
}

/* The scanner itself: counts, early stop, malformed input. */
static void
test_pb_scan_counts(void **state)
{
	const ProtobufCMessageDescriptor *bd = &boltseal__v1__sign_batch_request__descriptor;
	static const uint8_t bad_len[] = { 0x12, 0x05, 0x0a };
	static const uint8_t bad_depth_ok[] = { 0x12, 0x02, 0x78, 0x00 };
	struct rpc_pb_count c;
	uint8_t buf[256];
	size_t n;

	(void)state;
	n = batch(buf, sizeof(buf), 1, 3, 0);
	assert_int_equal(rpc_pb_scan(bd, buf, n, UINT64_MAX, UINT64_MAX, &c), 0);
	assert_int_equal(c.fields, 7);
	assert_int_equal(c.unknown, 0);
	assert_int_equal(rpc_pb_scan(bd, buf, n, 7, 0, &c), 0);
	assert_int_equal(rpc_pb_scan(bd, buf, n, 6, 0, &c), BS_ERR_TOO_BIG);
	assert_int_equal(c.fields, 7);
	n = batch(buf, sizeof(buf), 0, 3, 1);
	assert_int_equal(rpc_pb_scan(bd, buf, n, UINT64_MAX, UINT64_MAX, &c), 0);
	assert_int_equal(c.fields, 6);
	assert_int_equal(c.unknown, 3);
	assert_int_equal(rpc_pb_scan(bd, buf, n, UINT64_MAX, 2, &c), BS_ERR_TOO_BIG);
	assert_int_equal(c.unknown, 3);
	assert_int_equal(rpc_pb_scan(bd, bad_len, sizeof(bad_len), UINT64_MAX, UINT64_MAX, &c),
	    BS_ERR_INVALID);
	assert_int_equal(rpc_pb_scan(bd, bad_depth_ok, sizeof(bad_depth_ok), 2, 1, &c), 0);
	assert_int_equal(rpc_pb_scan(bd, NULL, 0, 0, 0, &c), 0);
	assert_int_equal(c.fields, 0);
}

/* ---- bounded work per request: rate limits --------------------------------------- */

struct count_ctx {
	const char *needle[2];
	unsigned hits;
};

static int
count_line(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct count_ctx *c = arg;
	char buf[4096];

	(void)index;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)line);
	if (strstr(buf, c->needle[0]) != NULL && (c->needle[1] == NULL ||
	    strstr(buf, c->needle[1]) != NULL))
		c->hits++;
	return 0;
}

/* Runs the loop until the log holds at least n durable records (bounded: 5 s). */
static void
pump_until_records(struct fixture *f, uint64_t n)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		(void)event_base_loop(f->base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (audit_log_size(f->log) < n && t.tv_sec - t0.tv_sec < 5);
	assert_true(audit_log_size(f->log) >= n);
}

/* Durable records holding a (and b, if not NULL). */
static unsigned
count_records(struct fixture *f, const char *a, const char *b)
{
	struct count_ctx c = { { a, b }, 0 };
	uint64_t size = audit_log_size(f->log), nread = 0;

	if (size == 0)
		return 0;
	assert_int_equal(audit_log_read(f->log, 0, size, 1 << 24, count_line, &c, &nread), 0);
	assert_int_equal(nread, size);
	return c.hits;
}

#define TESTER_LIMITED "rate limit exceeded: principal 'tester' may make 5 calls per second; " \
	"retry later"

/* 5 calls a second: 5 pass, the rest are refused unrecorded, one summary, then recovery. */
static void
test_rate_limit_calls(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	uint64_t before = audit_log_size(f->log);

	for (int i = 0; i < 5; i++) {
		run_call(f, OK_URI, "/t.v1.T/Health", "", &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	}
	for (int i = 0; i < 7; i++) {
		run_call(f, OK_URI, i % 2 ? "/t.v1.T/Sign" : "/t.v1.T/Health", "allowed-1", &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
		assert_string_equal(fs.message, TESTER_LIMITED);
	}
	assert_int_equal(handler_runs, 5);
	/* another principal has its own budget */
	run_call(f, NOGRANT_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	pump_until_idle(f);
	/* no record for a refused call, and no summary before its second is over */
	assert_int_equal(audit_log_size(f->log), before + 6);
	assert_int_equal(count_records(f, "rate_limited", NULL), 0);
	/* 0.1 s later: half a token, still refused (and counted) */
	fake_now += RPC_RL_INTERVAL_NS / 10;
	run_call(f, OK_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	/* a second after the first refusal: recovered, and the summary is written */
	fake_now += RPC_RL_INTERVAL_NS * 9 / 10;
	run_call(f, OK_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	pump_until_idle(f);
	assert_int_equal(count_records(f, "\"event\":\"rate_limited\"", NULL), 1);
	assert_int_equal(count_records(f, "\"event\":\"rate_limited\"",
	    "\"principal_id\":\"tester\""), 1);
	assert_int_equal(count_records(f, "\"rate.refused\":\"8\"", "\"rate.over_calls\":\"8\""), 1);
	assert_int_equal(count_records(f, "\"result\":\"RESOURCE_EXHAUSTED\"", NULL), 1);
	assert_int_equal(audit_log_size(f->log), before + 8);
	assert_int_equal(handler_runs, 7);
}

/* Unmapped certificates share one budget; their refusals are summarised with no principal. */
static void
test_rate_limit_unmapped(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	uint64_t before;

	for (int i = 0; i < 5; i++) {
		run_call(f, UNMAPPED_URI, "/t.v1.T/Health", "", &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAUTHENTICATED);
	}
	run_call(f, UNMAPPED_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(fs.message, "client certificates mapped to no principal"));
	/* mapped principals are not affected */
	run_call(f, OK_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	/* the transport's own refusals count too, and are answered over the limit the same way */
	{
		struct rpc_call *call = begin(f, UNMAPPED_URI, &fs);

		rpc_call_refuse(call, 415, GRPC_STATUS_INTERNAL, "content-type must be application/grpc");
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
		rpc_call_detach(call);
	}
	before = audit_log_size(f->log);
	rpc_dispatcher_flush(f->d);     /* due or not */
	pump_until_records(f, before + 1);
	assert_int_equal(count_records(f, "\"event\":\"rate_limited\"", "\"principal_id\":null"), 1);
	assert_int_equal(count_records(f, "\"rate.refused\":\"2\"", "\"identity\":\"" UNMAPPED_URI
	    "\""), 1);
}

/* 3 audit records a second: a call's extra records count, then calls are refused. */
static void
test_rate_limit_audit_records(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	struct rpc_call *call = begin(f, OK_URI, &fs);
	uint8_t buf[16];
	size_t n = pack_req("", buf, sizeof(buf));
	uint64_t before;

	/* two records: the deadline's answer, then the late outcome */
	assert_int_equal(rpc_call_admit(call, "/t.v1.T/Park"), 1);
	rpc_call_request(call, buf, n);
	rpc_call_deadline(call);
	rpc_call_finish(parked, GRPC_STATUS_OK, NULL, NULL, 0);
	rpc_call_detach(call);
	pump_until_idle(f);
	run_call(f, OK_URI, "/t.v1.T/Sign", "allowed-1", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	run_call(f, OK_URI, "/t.v1.T/Sign", "allowed-1", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(fs.message, "rate limit exceeded: principal 'tester' may make 3 "
	    "audited calls per second; retry later");
	before = audit_log_size(f->log);
	rpc_dispatcher_flush(f->d);
	pump_until_records(f, before + 1);
	assert_int_equal(count_records(f, "\"rate.over_audit_records\":\"1\"",
	    "\"rate.over_calls\":\"0\""), 1);
}

/* Without further calls, the timer writes the summary once its second is over. */
static void
test_rate_limit_summary_timer(void **state)
{
	struct fixture *f = *state;
	struct fake_stream fs;
	uint64_t before;

	for (int i = 0; i < 6; i++)
		run_call(f, OK_URI, "/t.v1.T/Health", "", &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	before = audit_log_size(f->log);
	fake_now += RPC_RL_INTERVAL_NS;
	pump_until_records(f, before + 1);
	assert_int_equal(count_records(f, "\"event\":\"rate_limited\"", "\"rate.refused\":\"1\""),
	    1);
}

/* The limiter alone: burst, refill, and memory held only for keys in use. */
static void
test_ratelimit_buckets(void **state)
{
	struct rpc_ratelimit *rl = NULL;
	uint64_t t = 5 * RPC_RL_INTERVAL_NS;
	char key[16];

	(void)state;
	assert_int_equal(rpc_rl_new(5, 0, &rl), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rpc_rl_admit(rl, "a", t, "id", "u", NULL), RPC_RL_OK);
	assert_int_equal(rpc_rl_admit(rl, "a", t, "id", "u", NULL), RPC_RL_OVER_CALLS);
	assert_int_equal(rpc_rl_admit(rl, "b", t, "id", "u", NULL), RPC_RL_OK);
	assert_int_equal(rpc_rl_admit(rl, "a", t + RPC_RL_INTERVAL_NS / 5, "id", "u", NULL),
	    RPC_RL_OK);
	assert_int_equal(rpc_rl_admit(rl, "a", t + RPC_RL_INTERVAL_NS / 5, "id", "u", NULL),
	    RPC_RL_OVER_CALLS);
	assert_int_equal(rpc_rl_pending(rl), 2);
	assert_int_equal(rpc_rl_next_due(rl), t + RPC_RL_INTERVAL_NS);
	/* 2000 keys seen, 1000 of them more than a second ago: those are dropped */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		assert_int_equal(rpc_rl_admit(rl, key, t, "id", "u", NULL), RPC_RL_OK);
	}
	assert_true(rpc_rl_entries(rl) >= 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "q%d", i);
		assert_int_equal(rpc_rl_admit(rl, key, t + 2 * RPC_RL_INTERVAL_NS, "id", "u", NULL),
		    RPC_RL_OK);
	}
	assert_true(rpc_rl_entries(rl) < 1100);
	rpc_rl_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
		cmocka_unit_test(test_registry_rejects_incomplete_method),
		cmocka_unit_test_setup_teardown(test_server_streaming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_streaming, setup_audit, teardown),
		cmocka_unit_test_setup_teardown(test_request_stream_left_is_recorded, setup_audit,
		    teardown),
		cmocka_unit_test(test_registry_rejects_request_stream_misuse),
		cmocka_unit_test_setup_teardown(test_unknown_method_refused_at_admission, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unmapped_certificate_refused_before_any_message,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_method_not_granted_refused_at_admission, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_any_principal_method_admitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_swap_remaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_message_never_reaches_handler, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_decoded_once_and_handler_answers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_verdict_denies_before_key_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdicts_with_requirements_are_refused_distinctly,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_factor_checked_before_the_handler, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spawned_call_counts_distinct_approvers_of_the_role,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchecked_success_becomes_internal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_transport_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_cancels_and_late_answer_is_dropped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deadline_answers_and_cancels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_waits_for_durable_record, setup_audit,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusal_at_admission_is_recorded_first,
		    setup_audit, teardown),
		cmocka_unit_test_setup_teardown(test_denial_reason_only_in_record, setup_audit,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nowait_method_answers_before_record, setup_audit,
		    teardown),
		cmocka_unit_test_setup_teardown(test_transport_detaches_inside_answer, setup_audit,
		    teardown),
		cmocka_unit_test_setup_teardown(test_late_outcome_recorded, setup_audit, teardown),
		cmocka_unit_test_setup_teardown(test_answer_after_deadline, setup_audit, teardown),
		cmocka_unit_test_setup_teardown(test_audit_field_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_service, setup_audit, teardown),
		cmocka_unit_test(test_settings_init_and_fini),
		cmocka_unit_test(test_settings_per_name),
		cmocka_unit_test_setup_teardown(test_echo_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_field_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_field_caps_nested_and_recorded, setup_caps,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_unknown_fields, setup, teardown),
		cmocka_unit_test(test_pb_scan_counts),
		cmocka_unit_test_setup_teardown(test_rate_limit_calls, setup_rate, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_unmapped, setup_rate, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_audit_records, setup_rate_records,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_summary_timer, setup_rate, teardown),
		cmocka_unit_test(test_ratelimit_buckets),
	};

	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
