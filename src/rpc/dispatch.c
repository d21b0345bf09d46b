/*
 * dispatch.c - the life of one gRPC call, without sockets (see rpc.h and
 * rpc_service.h): admission at HEADERS (the principal's rate limits,
 * certificate -> principal, method granted), the request's field counts
 * against their caps, one decode with a wiping allocator, the handler, the
 * policy verdict it asks for, the audit record made durable, then the
 * answer handed to the transport.
 *
 * Calls over a rate limit (ratelimit.h) are answered at once without a
 * record or log line of their own; each principal's refusals get one
 * summary record per second, written by a timer (or at the next call, or
 * by rpc_dispatcher_flush).
 *
 * A call is freed when four things are over: the transport detached it
 * (stream closed), its handler answered, every audit record of it is
 * written, and no rpc_call_* function of this file is running on it (the
 * transport's answer callback may detach it in the middle of one: such
 * functions pin the call with hold++ and let go through unpin()).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "audit/auditlog.h"
#include "common/hex.h"
#include "common/histogram.h"
#include "common/log.h"
#include "common/wipe_alloc.h"
#include "formats/pb_strings.h"
#include "policy/policy.h"
#include "rpc/pb_scan.h"
#include "rpc/ratelimit.h"
#include "rpc/rpc.h"
#include "rpc/rpc_service.h"

#define AUDIT_FIELD_NAME_MAX 32

/* rpc_call.rl: how the call stands with the rate limiter */
enum {
	RL_NONE = 0,        /* not checked yet (or limits off) */
	RL_KEYED,           /* admitted: charged to rl_key (or to the unmapped budget) */
	RL_REFUSED,         /* over a limit: no record of its own */
};

struct rpc_dispatcher {
	const struct rpc_registry *reg;
	void *env;
	struct audit_log *audit;
	const struct policy *policy;
	unsigned policy_gen;          /* bumped by every rpc_dispatcher_set_policy */
	uint32_t boot_id;
	uint64_t next_id;
	unsigned ncalls;
	void (*freed_fn)(void *);
	void *freed_arg;
	void (*observe)(void *, const char *, int, int64_t);
	void *observe_arg;

	/* bounded work per request */
	uint64_t max_fields, max_unknown;
	unsigned rate_calls, rate_records;
	struct rpc_ratelimit *rl;          /* NULL: no rate limit */
	struct event *rl_timer;            /* writes due summaries; NULL without a base */
	uint64_t (*clock_ns)(void);

	struct rpc_second_factor sf;       /* sf.check NULL: no checker registered */
	struct rpc_dispatcher_stats stats; /* refusals by limit (metrics) */
};

struct rpc_call {
	struct rpc_dispatcher *d;
	const struct rpc_transport *t;   /* NULL once detached */
	void *stream;
	const struct rpc_method *m;      /* set at admission */
	char path[RPC_PATH_MAX];
	char request_id[24];
	struct timespec start;
	int have_deadline;
	struct timespec deadline;        /* CLOCK_MONOTONIC */
	char identity[RPC_IDENTITY_MAX];
	uint8_t cert_sha256[32];
	char peer[64];

	/* the caller's principal, mapped once per policy generation */
	char principal[POLICY_ID_MAX + 1];  /* "" = not mapped */
	const struct policy_principal *pr;
	unsigned pr_gen;
	int pr_known;

	ProtobufCMessage *req;           /* decoded request (wiping allocator) */
	unsigned hold;                   /* rpc_call_* functions running on it */
	int handler_pending;             /* handler called, not finished */
	int authorized;                  /* the policy allowed it (or admission did) */
	int decided;                     /* an answer is chosen */
	int answered;                    /* handed to the transport */
	int finished;                    /* rpc_call_finish ran (an answer or a late record) */
	int abandoned;                   /* client gone or deadline passed */
	int quiet;                       /* no log line of its own (rate-limited) */
	unsigned audit_inflight;         /* records of this call not yet durable */

	/* the rate limiter: RL_*, the key charged ("" with rl_mapped 0: unmapped) */
	int rl;
	int rl_mapped;
	int rl_reserved;                 /* the record token taken at admission is unused */
	char rl_key[POLICY_ID_MAX + 1];
	void (*cancel_fn)(void *);
	void *cancel_arg;

	/* the answer */
	int http_status;
	int status;
	char text[RPC_MESSAGE_MAX];
	char reason[POLICY_REASON_MAX];  /* precise reason for the record ("" = text) */
	uint8_t *resp;
	size_t resp_len;

	/* the second factor: the x-boltseal-otp header, and whether it was verified */
	char otp[RPC_OTP_MAX + 1];
	int otp_given;                   /* the header was sent (maybe malformed) */
	int otp_bad;                     /* longer than RPC_OTP_MAX */
	int sf_pending;                  /* the checker runs; the handler waits */
	int sf_ok;                       /* verified for this call */

	/* an approved call (rpc_call_spawn): its approvers' principal ids */
	char **approvers;
	size_t napprovers;
	char proposal[64];

	/* what the audit record names */
	char audit_key[128];
	int64_t audit_version;
	char audit_target[128];
	char audit_event[32];
	uint8_t (*payload)[32];
	size_t npayload;
	struct audit_field fields[RPC_AUDIT_FIELDS_MAX];
	size_t nfields;
};

/* ---- protobuf-c allocator that wipes what it frees ------------------------ */

static void *
wipe_alloc(void *unused, size_t size)
{
	(void)unused;
	return bs_wipe_malloc(size);
}

static void
wipe_free(void *unused, void *ptr)
{
	(void)unused;
	bs_wipe_free(ptr);
}

static ProtobufCAllocator wiping_allocator = { wipe_alloc, wipe_free, NULL };

/* ---- rate-limit summaries -------------------------------------------------- */

static uint64_t
real_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
summary_logged(void *arg, int rc)
{
	(void)arg;
	if (rc != 0)
		bs_log(BS_LOG_WARN, "a rate-limit summary record could not be written", NULL);
}

/* One summary: an audit record (event "rate_limited") and one log line. */
static void
write_summary(void *arg, const struct rpc_rl_summary *s)
{
	struct rpc_dispatcher *d = arg;
	struct audit_field f[7];
	struct audit_record r;
	char total[24], calls[24], recs[24], ms[24], reason[POLICY_REASON_MAX + 96];
	char who[POLICY_ID_MAX + 64];
	uint64_t n;
	int rc;

	if (s->key != NULL)
		snprintf(who, sizeof(who), "principal '%s'", s->key);
	else
		snprintf(who, sizeof(who), "client certificates mapped to no principal");
	snprintf(total, sizeof(total), "%" PRIu64, s->over_calls + s->over_records);
	snprintf(calls, sizeof(calls), "%" PRIu64, s->over_calls);
	snprintf(recs, sizeof(recs), "%" PRIu64, s->over_records);
	snprintf(ms, sizeof(ms), "%" PRIu64, s->window_ns / 1000000u);
	snprintf(reason, sizeof(reason), "%s calls of %s refused over its rate limits in %s ms "
	    "(%s over %u calls per second, %s over %u audit records per second); not recorded one "
	    "by one", total, who, ms, calls, d->rate_calls, recs, d->rate_records);
	bs_log(BS_LOG_WARN, "calls refused over a rate limit", "principal",
	    s->key != NULL ? s->key : "", "refused", total, "window_ms", ms, "first_request_id",
	    s->first_request_id, "last_request_id", s->last_request_id, NULL);
	if (d->audit == NULL)
		return;
	f[0] = (struct audit_field){ "rate.refused", total };
	f[1] = (struct audit_field){ "rate.over_calls", calls };
	f[2] = (struct audit_field){ "rate.over_audit_records", recs };
	f[3] = (struct audit_field){ "rate.window_ms", ms };
	f[4] = (struct audit_field){ "rate.first_request_id", s->first_request_id };
	f[5] = (struct audit_field){ "rate.last_request_id", s->last_request_id };
	f[6] = (struct audit_field){ "rate.certificates", s->several_certs ? "several" : "one" };
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_RPC;
	r.principal_id = s->key;
	/* the first refused call's certificate (the only one unless rate.certificates says several) */
	r.identity = s->identity[0] != '\0' ? s->identity : NULL;
	r.cert_sha256 = s->cert_sha256;
	r.key_version = -1;
	r.result = grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED);
	r.reason = reason;
	r.event = "rate_limited";
	r.fields = f;
	r.nfields = sizeof(f) / sizeof(f[0]);
	if ((rc = audit_log_append(d->audit, &r, summary_logged, NULL)) != 0) {
		bs_log(BS_LOG_WARN, "a rate-limit summary record could not be queued", "principal",
		    s->key != NULL ? s->key : "", "refused", total, NULL);
		/* a full queue counted one event; the summary stood for all of them */
		n = s->over_calls + s->over_records;
		if (rc == BS_ERR_QUEUE_FULL && n > 1)
			audit_log_count_dropped(d->audit, n - 1);
		else if (rc != BS_ERR_QUEUE_FULL)
			audit_log_count_dropped(d->audit, n);
	}
}

/* Arms the summary timer for the earliest pending summary (if any and not armed). */
static void
arm_summary_timer(struct rpc_dispatcher *d, uint64_t now, int rearm)
{
	uint64_t due = rpc_rl_next_due(d->rl), wait;
	struct timeval tv;

	if (d->rl_timer == NULL || due == 0 || (!rearm && evtimer_pending(d->rl_timer, NULL)))
		return;
	wait = due > now ? due - now : 0;
	/* a millisecond late rather than early: the summary is due by then */
	wait += 1000000u;
	tv.tv_sec = (time_t)(wait / 1000000000u);
	tv.tv_usec = (suseconds_t)(wait % 1000000000u / 1000u);
	if (evtimer_add(d->rl_timer, &tv) != 0)
		bs_log(BS_LOG_WARN, "cannot arm the rate-limit summary timer", NULL);
}

static void
summary_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_dispatcher *d = arg;
	uint64_t now = d->clock_ns();

	(void)fd;
	(void)what;
	(void)rpc_rl_flush(d->rl, now, 0, write_summary, d);
	arm_summary_timer(d, now, 1);
}

void
rpc_dispatcher_flush(struct rpc_dispatcher *d)
{
	if (d == NULL || d->rl == NULL)
		return;
	(void)rpc_rl_flush(d->rl, d->clock_ns(), 1, write_summary, d);
	if (d->rl_timer != NULL)
		(void)evtimer_del(d->rl_timer);
}

/* ---- dispatcher ------------------------------------------------------------ */

int
rpc_dispatcher_new(const struct rpc_dispatcher_opts *o, struct rpc_dispatcher **out)
{
	struct rpc_dispatcher *d;

	if (o == NULL || o->registry == NULL)
		return BS_ERR_INVALID;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return BS_ERR_NOMEM;
	d->reg = o->registry;
	d->env = o->env;
	d->audit = o->audit;
	d->max_fields = RPC_DEFAULT_MAX_REQUEST_FIELDS;
	d->max_unknown = RPC_DEFAULT_MAX_UNKNOWN_FIELDS;
	d->clock_ns = real_clock_ns;
	if (RAND_bytes((unsigned char *)&d->boot_id, sizeof(d->boot_id)) != 1) {
		free(d);
		return BS_ERR_CRYPTO;
	}
	*out = d;
	return 0;
}

int
rpc_dispatcher_set_limits(struct rpc_dispatcher *d, const struct rpc_dispatcher_limits *l)
{
	/* without an audit log there are no records to limit */
	unsigned calls = l->rate_limit_calls;
	unsigned records = d->audit != NULL ? l->rate_limit_audit_records : 0;
	struct rpc_ratelimit *rl = NULL;
	struct event *timer = NULL;

	if ((calls > 0 || records > 0) && (rpc_rl_new(calls, records, &rl) != 0 ||
	    (l->base != NULL && (timer = evtimer_new(l->base, summary_timer_cb, d)) == NULL))) {
		rpc_rl_free(rl);
		return BS_ERR_NOMEM;
	}
	rpc_dispatcher_flush(d);
	if (d->rl_timer != NULL)
		event_free(d->rl_timer);
	rpc_rl_free(d->rl);
	d->rl = rl;
	d->rl_timer = timer;
	d->rate_calls = calls;
	d->rate_records = records;
	d->clock_ns = l->clock_ns != NULL ? l->clock_ns : real_clock_ns;
	d->max_fields = l->max_request_fields != 0 ? l->max_request_fields :
	    RPC_DEFAULT_MAX_REQUEST_FIELDS;
	d->max_unknown = l->max_unknown_fields;
	return 0;
}

void
rpc_dispatcher_free(struct rpc_dispatcher *d)
{
	char n[24];

	if (d == NULL)
		return;
	if (d->rl != NULL && rpc_rl_pending(d->rl) > 0) {
		snprintf(n, sizeof(n), "%" PRIu64, rpc_rl_pending(d->rl));
		bs_log(BS_LOG_WARN, "rate-limited calls left out of the audit log's summaries",
		    "refused", n, NULL);
	}
	if (d->rl_timer != NULL)
		event_free(d->rl_timer);
	rpc_rl_free(d->rl);
	free(d);
}

void
rpc_dispatcher_set_policy(struct rpc_dispatcher *d, const struct policy *p)
{
	d->policy = p;
	d->policy_gen++;
}

unsigned
rpc_dispatcher_calls(const struct rpc_dispatcher *d)
{
	return d->ncalls;
}

void
rpc_dispatcher_on_call_freed(struct rpc_dispatcher *d, void (*fn)(void *), void *arg)
{
	d->freed_fn = fn;
	d->freed_arg = arg;
}

/* ---- call lifetime --------------------------------------------------------- */

static void
call_free(struct rpc_call *call)
{
	struct rpc_dispatcher *d = call->d;

	if (call->req != NULL)
		protobuf_c_message_free_unpacked(call->req, &wiping_allocator);
	OPENSSL_clear_free(call->resp, call->resp_len);
	OPENSSL_cleanse(call->otp, sizeof(call->otp));
	for (size_t i = 0; i < call->napprovers; i++)
		free(call->approvers[i]);
	free(call->approvers);
	free(call->payload);
	for (size_t i = 0; i < call->nfields; i++) {
		free((char *)call->fields[i].name);
		free((char *)call->fields[i].value);
	}
	free(call);
	d->ncalls--;
	if (d->freed_fn != NULL)
		d->freed_fn(d->freed_arg);
}

static void
unpin(struct rpc_call *call)
{
	call->hold--;
	if (call->hold == 0 && call->t == NULL && !call->handler_pending &&
	    call->audit_inflight == 0)
		call_free(call);
}

static void
log_call(const struct rpc_call *call)
{
	char status[16], dur[32];
	enum bs_log_level lvl = call->status == GRPC_STATUS_OK ? BS_LOG_INFO : BS_LOG_WARN;

	if (!bs_log_enabled(lvl))
		return;
	snprintf(status, sizeof(status), "%d", call->status);
	snprintf(dur, sizeof(dur), "%" PRId64, bs_elapsed_us(&call->start));
	bs_log(lvl, "rpc",
	    "request_id", call->request_id,
	    "method", call->path,
	    "identity", call->identity,
	    "peer", call->peer,
	    "grpc_status", status,
	    "status_name", grpc_status_name(call->status),
	    "duration_us", dur,
	    "detail", call->text,
	    NULL);
}

void
rpc_dispatcher_stats(const struct rpc_dispatcher *d, struct rpc_dispatcher_stats *st)
{
	*st = d->stats;
}

void
rpc_dispatcher_observe(struct rpc_dispatcher *d,
    void (*fn)(void *arg, const char *method, int status, int64_t dur_us), void *arg)
{
	d->observe = fn;
	d->observe_arg = arg;
}

/* Hands the chosen answer to the transport, if it still listens. Pinned callers only. */
static void
deliver(struct rpc_call *call)
{
	struct rpc_answer a;

	if (call->t == NULL || call->answered)
		return;
	call->answered = 1;
	if (!call->quiet)
		log_call(call);
	if (call->d->observe != NULL)
		call->d->observe(call->d->observe_arg, call->m != NULL ||
		    rpc_registry_find(call->d->reg, call->path) != NULL ? call->path + 1 : NULL,
		    call->status, bs_elapsed_us(&call->start));
	a.http_status = call->http_status;
	a.grpc_status = call->status;
	a.message = call->text;
	a.msg = call->status == GRPC_STATUS_OK ? call->resp : NULL;
	a.msg_len = call->status == GRPC_STATUS_OK ? call->resp_len : 0;
	a.no_message = call->m != NULL && (call->m->flags & RPC_F_STREAM) != 0;
	call->t->answer(call->stream, &a);
}

static void
set_text(struct rpc_call *call, const char *msg)
{
	snprintf(call->text, sizeof(call->text), "%s", msg != NULL ? msg : "");
}

static void
drop_resp(struct rpc_call *call)
{
	OPENSSL_clear_free(call->resp, call->resp_len);
	call->resp = NULL;
	call->resp_len = 0;
}

/*
 * One more record of call for its principal's audit-record budget: the
 * first after admission uses the token reserved then.
 */
static void
charge_record(struct rpc_call *call)
{
	struct rpc_dispatcher *d = call->d;

	if (d->rl == NULL || call->rl == RL_REFUSED)
		return;
	if (call->rl == RL_KEYED && call->rl_reserved) {
		call->rl_reserved = 0;
		return;
	}
	if (call->rl == RL_KEYED)
		rpc_rl_charge(d->rl, call->rl_mapped ? call->rl_key : NULL, d->clock_ns());
	else
		rpc_rl_charge(d->rl, call->principal[0] != '\0' ? call->principal : NULL,
		    d->clock_ns());
}

/*
 * Queues the audit record of call with result status and reason; done runs
 * when it is durable (or cannot be written). Returns 0 or the append error.
 */
static int
call_audit(struct rpc_call *call, int status, const char *reason, audit_done_fn done)
{
	struct audit_record r;
	int rc;

	charge_record(call);
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_RPC;
	r.request_id = call->request_id;
	r.principal_id = call->principal[0] != '\0' ? call->principal : NULL;
	r.identity = call->identity[0] != '\0' ? call->identity : NULL;
	r.cert_sha256 = call->cert_sha256;
	r.method = call->path[0] == '/' ? call->path + 1 : call->path;
	r.key = call->audit_key[0] != '\0' ? call->audit_key : NULL;
	r.key_version = call->audit_version;
	r.target = call->audit_target[0] != '\0' ? call->audit_target : NULL;
	r.result = grpc_status_name(status);
	r.reason = reason != NULL && reason[0] != '\0' ? reason : NULL;
	r.event = call->audit_event[0] != '\0' ? call->audit_event : NULL;
	r.payload_sha256 = (const uint8_t (*)[32])call->payload;
	r.npayload = call->npayload;
	r.fields = call->fields;
	r.nfields = call->nfields;
	rc = audit_log_append(call->d->audit, &r, done, call);
	if (rc == 0)
		call->audit_inflight++;
	return rc;
}

static const char *
record_reason(const struct rpc_call *call)
{
	return call->reason[0] != '\0' ? call->reason : call->text;
}

/* The answer's record is durable (rc 0) or cannot be written: send it now. */
static void
answer_logged(void *arg, int rc)
{
	struct rpc_call *call = arg;

	call->hold++;
	call->audit_inflight--;
	if (rc != 0) {
		drop_resp(call);
		call->status = GRPC_STATUS_UNAVAILABLE;
		call->http_status = 200;
		set_text(call, "audit log unavailable: the result is withheld; retry later");
	}
	deliver(call);
	unpin(call);
}

static void
late_logged(void *arg, int rc)
{
	struct rpc_call *call = arg;

	(void)rc;
	call->hold++;
	call->audit_inflight--;
	unpin(call);
}

/*
 * The answer set in call (status, text, resp) is final: send it once its
 * audit record is durable, so that a response never precedes its record.
 * Pinned callers only.
 */
static void
decide(struct rpc_call *call, int http_status)
{
	call->decided = 1;
	call->http_status = http_status;
	if (call->d->audit == NULL) {
		deliver(call);
		return;
	}
	if (call->m != NULL && (call->m->flags & RPC_F_AUDIT_NOWAIT)) {
		if (call_audit(call, call->status, record_reason(call), late_logged) != 0)
			bs_log(BS_LOG_WARN, "call not recorded: audit backlog", "request_id",
			    call->request_id, NULL);
		deliver(call);
		return;
	}
	if (call_audit(call, call->status, record_reason(call), answer_logged) != 0) {
		/* not even queued (backlog while the log is failing): refuse, unrecorded */
		drop_resp(call);
		call->status = GRPC_STATUS_UNAVAILABLE;
		call->http_status = 200;
		set_text(call, "audit log unavailable; retry later");
		deliver(call);
	}
}

/* Refuses with a message for the client and a precise reason for the record. */
static void
refuse(struct rpc_call *call, int http_status, int status, const char *msg, const char *reason)
{
	if (call->decided)
		return;
	call->status = status;
	set_text(call, msg);
	snprintf(call->reason, sizeof(call->reason), "%s", reason != NULL ? reason : "");
	decide(call, http_status);
}

/*
 * The message of every PERMISSION_DENIED: generic (the precise reason is
 * for the audit log only), with the request id an auditor looks it up by
 * (`boltseal audit explain ID`).
 */
static const char *
denied_message(const struct rpc_call *call, char *buf, size_t len)
{
	snprintf(buf, len, "permission denied (request id %s: the reason is in the audit log)",
	    call->request_id);
	return buf;
}

static void
call_abandon(struct rpc_call *call)
{
	if (call->abandoned)
		return;
	call->abandoned = 1;
	if (call->handler_pending && call->cancel_fn != NULL)
		call->cancel_fn(call->cancel_arg);
}

/*
 * The principal of call under the current policy: mapped once per policy
 * generation, NULL if the certificate maps to none.
 */
static const struct policy_principal *
call_principal(struct rpc_call *call)
{
	struct rpc_dispatcher *d = call->d;

	if (!call->pr_known || call->pr_gen != d->policy_gen) {
		call->pr = d->policy != NULL ?
		    policy_map(d->policy, call->identity, call->cert_sha256) : NULL;
		call->pr_gen = d->policy_gen;
		call->pr_known = 1;
	}
	return call->pr;
}

/*
 * The rate limits, once per call, before anything else is done for it:
 * 1 if the call may go on (charged to its principal, or to the unmapped
 * callers' budget), 0 if it was answered RESOURCE_EXHAUSTED, with no record
 * or log line of its own (its principal's summary counts it). Pinned.
 */
static int
rate_check(struct rpc_call *call)
{
	struct rpc_dispatcher *d = call->d;
	const struct policy_principal *pr;
	char msg[RPC_MESSAGE_MAX];
	uint64_t now;
	int v;

	if (d->rl == NULL || call->rl != RL_NONE)
		return 1;
	pr = call_principal(call);
	call->rl_mapped = pr != NULL;
	snprintf(call->rl_key, sizeof(call->rl_key), "%s", pr != NULL ? policy_principal_id(pr) : "");
	now = d->clock_ns();
	if (rpc_rl_next_due(d->rl) != 0 && now >= rpc_rl_next_due(d->rl))
		(void)rpc_rl_flush(d->rl, now, 0, write_summary, d);
	v = rpc_rl_admit(d->rl, pr != NULL ? call->rl_key : NULL, now, call->request_id,
	    call->identity, call->cert_sha256);
	if (v == RPC_RL_OK || v < 0) {
		/* out of memory for a new principal's entry: not a reason to refuse */
		call->rl = RL_KEYED;
		call->rl_reserved = v == RPC_RL_OK && d->rate_records > 0;
		return 1;
	}
	call->rl = RL_REFUSED;
	if (v == RPC_RL_OVER_CALLS)
		d->stats.rate_limit_calls++;
	else
		d->stats.rate_limit_audit_records++;
	arm_summary_timer(d, now, 0);
	if (pr != NULL)
		snprintf(msg, sizeof(msg), "rate limit exceeded: principal '%s' may make %u %s per "
		    "second; retry later", call->rl_key,
		    v == RPC_RL_OVER_CALLS ? d->rate_calls : d->rate_records,
		    v == RPC_RL_OVER_CALLS ? "calls" : "audited calls");
	else
		snprintf(msg, sizeof(msg), "rate limit exceeded: client certificates mapped to no "
		    "principal may make %u %s per second together; retry later",
		    v == RPC_RL_OVER_CALLS ? d->rate_calls : d->rate_records,
		    v == RPC_RL_OVER_CALLS ? "calls" : "audited calls");
	call->decided = 1;
	call->quiet = 1;
	call->http_status = 200;
	call->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
	set_text(call, msg);
	deliver(call);
	return 0;
}

/* ---- transport side -------------------------------------------------------- */

int
rpc_call_new(struct rpc_dispatcher *d, const struct rpc_peer *peer, const struct rpc_transport *t,
    void *stream, struct rpc_call **out)
{
	const struct policy_principal *pr;
	struct rpc_call *call;

	if ((call = calloc(1, sizeof(*call))) == NULL)
		return BS_ERR_NOMEM;
	call->d = d;
	call->t = t;
	call->stream = stream;
	call->audit_version = -1;
	snprintf(call->identity, sizeof(call->identity), "%s",
	    peer->identity != NULL ? peer->identity : "");
	if (peer->cert_sha256 != NULL)
		memcpy(call->cert_sha256, peer->cert_sha256, sizeof(call->cert_sha256));
	snprintf(call->peer, sizeof(call->peer), "%s", peer->addr != NULL ? peer->addr : "");
	/* named in the records of calls refused before admission too */
	if ((pr = call_principal(call)) != NULL)
		snprintf(call->principal, sizeof(call->principal), "%s", policy_principal_id(pr));
	clock_gettime(CLOCK_MONOTONIC, &call->start);
	snprintf(call->request_id, sizeof(call->request_id), "%08" PRIx32 "%08" PRIx64, d->boot_id,
	    ++d->next_id);
	d->ncalls++;
	*out = call;
	return 0;
}

void
rpc_call_refuse(struct rpc_call *call, int http_status, int grpc_status, const char *msg)
{
	call->hold++;
	if (!call->decided && rate_check(call))
		refuse(call, http_status, grpc_status, msg, NULL);
	unpin(call);
}

/* Admission proper; 1 = admitted. Pinned. */
static int
admit(struct rpc_call *call)
{
	struct rpc_dispatcher *d = call->d;
	const struct policy_principal *pr;
	char msg[RPC_MESSAGE_MAX], reason[POLICY_REASON_MAX], roles[256], sha[65];

	if (!rate_check(call))
		return 0;
	call->m = rpc_registry_find(d->reg, call->path);
	if (call->m == NULL) {
		snprintf(msg, sizeof(msg), "unknown method %s", call->path);
		refuse(call, 200, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
		return 0;
	}
	if (d->audit != NULL && !audit_log_healthy(d->audit) && !(call->m->flags & RPC_F_AUDIT_NOWAIT)) {
		refuse(call, 200, GRPC_STATUS_UNAVAILABLE, "audit log unavailable; retry later", NULL);
		return 0;
	}
	pr = call_principal(call);
	if (pr == NULL) {
		call->principal[0] = '\0';
		bs_hex_encode(call->cert_sha256, 32, sha);
		snprintf(reason, sizeof(reason), "certificate %s (URI SAN %.300s) maps to no principal",
		    sha, call->identity);
		refuse(call, 200, GRPC_STATUS_UNAUTHENTICATED,
		    "client certificate is not mapped to a principal", reason);
		return 0;
	}
	snprintf(call->principal, sizeof(call->principal), "%s", policy_principal_id(pr));
	if (call->m->authz == RPC_AUTHZ_ANY_PRINCIPAL) {
		call->authorized = 1;
		return 1;
	}
	if (!policy_may_call(d->policy, pr, call->path + 1)) {
		policy_principal_roles(pr, roles, sizeof(roles));
		snprintf(reason, sizeof(reason), "no role of principal '%s' (%s) grants %s",
		    call->principal, roles, call->path + 1);
		refuse(call, 200, GRPC_STATUS_PERMISSION_DENIED, denied_message(call, msg, sizeof(msg)),
		    reason);
		return 0;
	}
	return 1;
}

int
rpc_call_admit(struct rpc_call *call, const char *path)
{
	size_t len = strlen(path);
	int ok;

	if (call->decided)
		return 0;
	/* too long: becomes the unknown method "" */
	if (len >= sizeof(call->path))
		len = 0;
	memcpy(call->path, path, len);
	call->path[len] = '\0';
	call->hold++;
	ok = admit(call);
	unpin(call);
	return ok;
}

/*
 * The request's field counts against the caps: 0, or the call was refused
 * (RESOURCE_EXHAUSTED). Malformed wire data passes here: pb_strings_check
 * refuses it next with its own message. Pinned.
 */
static int
check_field_caps(struct rpc_call *call, const uint8_t *msg, size_t len)
{
	struct rpc_dispatcher *d = call->d;
	struct rpc_pb_count n;
	char text[RPC_MESSAGE_MAX];

	if (rpc_pb_scan(call->m->request, msg, len, d->max_fields, d->max_unknown, &n) !=
	    BS_ERR_TOO_BIG)
		return 0;
	if (n.unknown > d->max_unknown)
		d->stats.max_unknown_fields++;
	else
		d->stats.max_request_fields++;
	if (n.unknown > d->max_unknown && d->max_unknown == 0)
		snprintf(text, sizeof(text), "request has unknown fields (none are accepted)");
	else if (n.unknown > d->max_unknown)
		snprintf(text, sizeof(text), "request has more than %" PRIu64 " unknown fields",
		    d->max_unknown);
	else
		snprintf(text, sizeof(text), "request has more than %" PRIu64 " fields",
		    d->max_fields);
	refuse(call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, text, NULL);
	return BS_ERR_TOO_BIG;
}

/*
 * The request message checked against the caps and decoded: the message
 * (wiping allocator), or NULL once the call was refused. Pinned.
 */
static ProtobufCMessage *
decode_request(struct rpc_call *call, const uint8_t *msg, size_t len)
{
	char text[RPC_MESSAGE_MAX];
	uint32_t field = 0;
	ProtobufCMessage *req;

	if (check_field_caps(call, msg, len) != 0)
		return NULL;
	if (pb_strings_check(call->m->request, msg, len, &field) != 0) {
		snprintf(text, sizeof(text), "malformed request: field %u is not valid UTF-8 "
		    "without NUL bytes, or the message is not valid protobuf", field);
		refuse(call, 200, GRPC_STATUS_INVALID_ARGUMENT, text, NULL);
		return NULL;
	}
	req = protobuf_c_message_unpack(call->m->request, &wiping_allocator, len, msg);
	if (req == NULL) {
		snprintf(text, sizeof(text), "malformed %s", call->m->request->short_name);
		refuse(call, 200, GRPC_STATUS_INVALID_ARGUMENT, text, NULL);
	}
	return req;
}

/* A request stream whose client left without ending it: recorded CANCELLED. Pinned. */
static void
stream_left(struct rpc_call *call)
{
	if (!call->decided && !call->finished && call->authorized)
		rpc_call_finish(call, GRPC_STATUS_CANCELLED,
		    "the client left before ending its request stream", NULL, 0);
}

/* One message of a request stream: its handler runs on it, then it is freed. Pinned. */
static void
request_stream_next(struct rpc_call *call, const uint8_t *msg, size_t len)
{
	ProtobufCMessage *req = decode_request(call, msg, len);

	if (req == NULL)
		return;
	call->handler_pending = 1;
	call->m->handler(call, req);
	call->handler_pending = 0;
	protobuf_c_message_free_unpacked(req, &wiping_allocator);
	if (call->t == NULL)
		stream_left(call);   /* the stream went while the handler ran */
}

int
rpc_call_streams_requests(const struct rpc_call *call)
{
	return call->m != NULL && (call->m->flags & RPC_F_REQUEST_STREAM) != 0;
}

void
rpc_call_request_end(struct rpc_call *call)
{
	if (call->decided || !rpc_call_streams_requests(call))
		return;
	call->hold++;
	rpc_call_finish(call, GRPC_STATUS_OK, NULL, NULL, 0);
	unpin(call);
}

void
rpc_call_request(struct rpc_call *call, const uint8_t *msg, size_t len)
{
	if (call->decided || call->m == NULL || call->handler_pending || call->req != NULL)
		return;
	call->hold++;
	if (call->m->flags & RPC_F_REQUEST_STREAM) {
		request_stream_next(call, msg, len);
		goto out;
	}
	if ((call->req = decode_request(call, msg, len)) == NULL)
		goto out;
	call->handler_pending = 1;
	if (call->otp_given && call->d->sf.check != NULL && !call->sf_ok &&
	    call->m->authz == RPC_AUTHZ_POLICY) {
		/* the caller sent a code: checked before the handler runs */
		call->sf_pending = 1;
		call->d->sf.check(call->d->sf.arg, call, call->principal,
		    call->otp_bad ? "" : call->otp);
		goto out;
	}
	call->m->handler(call, call->req);
out:
	unpin(call);
}

void
rpc_call_set_otp(struct rpc_call *call, const char *value, size_t len)
{
	call->otp_given = 1;
	call->otp_bad = len > RPC_OTP_MAX || memchr(value, '\0', len) != NULL;
	if (!call->otp_bad) {
		memcpy(call->otp, value, len);
		call->otp[len] = '\0';
	}
}

void
rpc_dispatcher_set_second_factor(struct rpc_dispatcher *d, const struct rpc_second_factor *sf)
{
	if (sf != NULL)
		d->sf = *sf;
	else
		memset(&d->sf, 0, sizeof(d->sf));
}

void
rpc_call_second_factor_done(struct rpc_call *call, int ok, int grpc_status, const char *message,
    const char *reason)
{
	if (!call->sf_pending)
		return;
	call->hold++;
	call->sf_pending = 0;
	OPENSSL_cleanse(call->otp, sizeof(call->otp));
	if (ok && !call->abandoned && !call->decided) {
		call->sf_ok = 1;
		call->m->handler(call, call->req);
	} else {
		/* the handler never runs: the call is over once answered */
		call->handler_pending = 0;
		if (!call->decided)
			refuse(call, 200, ok ? GRPC_STATUS_CANCELLED : grpc_status,
			    ok ? "cancelled" : message, reason);
	}
	unpin(call);
}

int
rpc_call_second_factor_verified(const struct rpc_call *call)
{
	return call->sf_ok;
}

int
rpc_call_second_factor_given(const struct rpc_call *call)
{
	return call->otp_given;
}

/* ---- approved calls ------------------------------------------------------------ */

struct spawn_ctx {
	void (*done)(void *arg, const struct rpc_answer *a, int authorized);
	void *arg;
	struct rpc_call *call;
};

static void
spawn_answer(void *stream, const struct rpc_answer *a)
{
	struct spawn_ctx *sc = stream;
	struct rpc_call *call = sc->call;

	sc->done(sc->arg, a, call->authorized);
	free(sc);
	rpc_call_detach(call);
}

static const struct rpc_transport spawn_transport = { spawn_answer, NULL };

int
rpc_call_spawn(struct rpc_call *parent, const char *path, const uint8_t *msg, size_t len,
    const char *proposal, const char *const *approvers, size_t n,
    void (*done)(void *arg, const struct rpc_answer *a, int authorized), void *arg)
{
	struct rpc_peer peer = { parent->identity, parent->cert_sha256, parent->peer };
	struct spawn_ctx *sc;
	struct rpc_call *sub = NULL;

	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return BS_ERR_NOMEM;
	sc->done = done;
	sc->arg = arg;
	if (rpc_call_new(parent->d, &peer, &spawn_transport, sc, &sub) != 0) {
		free(sc);
		return BS_ERR_NOMEM;
	}
	sc->call = sub;
	sub->sf_ok = parent->sf_ok;
	snprintf(sub->proposal, sizeof(sub->proposal), "%s", proposal != NULL ? proposal : "");
	if (n > 0 && (sub->approvers = calloc(n, sizeof(*sub->approvers))) == NULL)
		n = 0;      /* no approvals counted: the call is refused if it needs them */
	for (size_t i = 0; i < n; i++) {
		if ((sub->approvers[i] = strdup(approvers[i])) == NULL)
			break;
		sub->napprovers++;
	}
	/* the answer (refusals included) reaches done through spawn_answer */
	sub->hold++;
	if (rpc_call_admit(sub, path))
		rpc_call_request(sub, msg, len);
	unpin(sub);
	return 0;
}

/*
 * The approvals of call that count for role: distinct approvers, other than
 * the caller's principal, who hold role in the policy in force. Their ids go
 * to names (comma separated).
 */
static unsigned
count_approvals(struct rpc_call *call, const char *role, char *names, size_t nameslen)
{
	const struct policy_principal *pr = call_principal(call);
	const char *self = pr != NULL ? policy_principal_id(pr) : "";
	unsigned n = 0;
	size_t used = 0;

	if (nameslen > 0)
		names[0] = '\0';
	for (size_t i = 0; i < call->napprovers; i++) {
		const char *id = call->approvers[i];
		int dup = 0;

		for (size_t j = 0; j < i; j++)
			dup |= strcmp(call->approvers[j], id) == 0;
		if (dup || strcmp(id, self) == 0 ||
		    !policy_principal_has_role(call->d->policy, id, role))
			continue;
		n++;
		if (used < nameslen) {
			int w = snprintf(names + used, nameslen - used, "%s%s", used > 0 ? "," : "", id);

			used += w > 0 ? (size_t)w : 0;
		}
	}
	return n;
}

void
rpc_call_set_deadline(struct rpc_call *call, int64_t usec)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (usec < 0)
		usec = 0;
	call->deadline.tv_sec = now.tv_sec + (time_t)(usec / 1000000);
	call->deadline.tv_nsec = now.tv_nsec + (long)(usec % 1000000) * 1000;
	if (call->deadline.tv_nsec >= 1000000000L) {
		call->deadline.tv_sec++;
		call->deadline.tv_nsec -= 1000000000L;
	}
	call->have_deadline = 1;
}

/* 1 if the call has a deadline and it has passed. */
static int
deadline_passed(const struct rpc_call *call)
{
	struct timespec now;

	if (!call->have_deadline)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > call->deadline.tv_sec || (now.tv_sec == call->deadline.tv_sec &&
	    now.tv_nsec >= call->deadline.tv_nsec);
}

void
rpc_call_deadline(struct rpc_call *call)
{
	if (call->decided || call->t == NULL)
		return;
	call->hold++;
	call_abandon(call);
	refuse(call, 200, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded", NULL);
	unpin(call);
}

int
rpc_call_decided(const struct rpc_call *call)
{
	return call->decided;
}

void
rpc_call_detach(struct rpc_call *call)
{
	call->hold++;
	call->t = NULL;
	call->stream = NULL;
	if (call->handler_pending)
		call_abandon(call); /* freed once rpc_call_finish ran */
	else if (rpc_call_streams_requests(call))
		stream_left(call);
	unpin(call);
}

/* ---- service side ------------------------------------------------------------ */

void
rpc_call_finish(struct rpc_call *call, int grpc_status, const char *message, const uint8_t *resp,
    size_t resp_len)
{
	char why[RPC_MESSAGE_MAX + 96];

	call->hold++;
	call->handler_pending = 0;
	call->finished = 1;
	if (grpc_status == GRPC_STATUS_OK && !call->authorized) {
		/* a handler bug: never let an unchecked success through */
		bs_log(BS_LOG_ERROR, "handler answered without an authorization check; refused",
		    "method", call->path, "request_id", call->request_id, NULL);
		grpc_status = GRPC_STATUS_INTERNAL;
		message = "internal error";
		resp_len = 0;
	}
	if (call->t != NULL && !call->decided && deadline_passed(call)) {
		/* too late for the caller, whatever the handler did: say so, and record both */
		snprintf(call->reason, sizeof(call->reason), "the operation finished after the "
		    "caller's deadline; its result was %s%s%s", grpc_status_name(grpc_status),
		    message != NULL && message[0] != '\0' ? ": " : "", message != NULL ? message : "");
		call->status = GRPC_STATUS_DEADLINE_EXCEEDED;
		set_text(call, "deadline exceeded");
		decide(call, 200);
	} else if (call->t != NULL && !call->decided) {
		call->status = grpc_status;
		set_text(call, message);
		if (grpc_status == GRPC_STATUS_OK && resp_len > 0) {
			if ((call->resp = malloc(resp_len)) == NULL) {
				call->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
				set_text(call, "out of memory");
			} else {
				memcpy(call->resp, resp, resp_len);
				call->resp_len = resp_len;
			}
		}
		decide(call, 200);
	} else if (call->d->audit != NULL) {
		/* nobody to answer (deadline passed or caller gone): record the outcome */
		snprintf(why, sizeof(why), "result dropped: the caller was already answered or "
		    "left%s%s", message != NULL && message[0] != '\0' ? "; " : "",
		    message != NULL ? message : "");
		if (call_audit(call, grpc_status, why, late_logged) != 0)
			bs_log(BS_LOG_ERROR, "cannot queue an audit record", "request_id",
			    call->request_id, NULL);
	}
	unpin(call);
}

void
rpc_call_finish_pb(struct rpc_call *call, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stackbuf[512];
	uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);

	if (buf == NULL) {
		rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
		return;
	}
	(void)protobuf_c_message_pack(msg, buf);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL, buf, len);
	if (buf != stackbuf)
		OPENSSL_clear_free(buf, len);
	else
		OPENSSL_cleanse(stackbuf, len);
}

int
rpc_call_send_pb(struct rpc_call *call, const ProtobufCMessage *msg)
{
	size_t len;
	uint8_t *buf;

	if (call->m == NULL || !(call->m->flags & RPC_F_STREAM) || !call->authorized)
		return BS_ERR_PRECONDITION;
	if (call->t == NULL || call->t->send == NULL || call->decided || call->abandoned)
		return BS_ERR_UNAVAILABLE;
	len = protobuf_c_message_get_packed_size(msg);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return BS_ERR_NOMEM;
	(void)protobuf_c_message_pack(msg, buf);
	call->t->send(call->stream, buf, len);
	free(buf);
	return 0;
}

void
rpc_call_fail(struct rpc_call *call, int grpc_status, const char *fmt, ...)
{
	char msg[RPC_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_call_finish(call, grpc_status, msg, NULL, 0);
}

void
rpc_call_on_cancel(struct rpc_call *call, void (*fn)(void *), void *arg)
{
	call->cancel_fn = fn;
	call->cancel_arg = arg;
}

int
rpc_call_abandoned(const struct rpc_call *call)
{
	return call->abandoned;
}

const char *
rpc_call_identity(const struct rpc_call *call)
{
	return call->identity;
}

const uint8_t *
rpc_call_cert_sha256(const struct rpc_call *call)
{
	return call->cert_sha256;
}

const char *
rpc_call_principal(const struct rpc_call *call)
{
	return call->principal;
}

const char *
rpc_call_request_id(const struct rpc_call *call)
{
	return call->request_id;
}

const char *
rpc_call_method(const struct rpc_call *call)
{
	return call->path;
}

void *
rpc_call_env(const struct rpc_call *call)
{
	return call->d->env;
}

void *
rpc_call_service_state(const struct rpc_call *call)
{
	return call->m != NULL ? rpc_registry_state(call->d->reg, call->m) : NULL;
}

/* The policy's verdict on (key, purpose, attrs) for call. */
static enum policy_decision
call_check(struct rpc_call *call, const char *method, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, const char *tested,
    struct policy_verdict *v)
{
	const struct policy_principal *pr;
	struct policy_request req;

	pr = call_principal(call);
	if (pr == NULL) {
		v->decision = POLICY_DENY;
		v->approvals = 0;
		snprintf(v->reason, sizeof(v->reason), "certificate no longer maps to a principal");
		return POLICY_DENY;
	}
	memset(&req, 0, sizeof(req));
	req.method = method != NULL ? method : call->path + 1;
	req.key = key;
	req.key_purpose = purpose;
	req.attrs = attrs;
	req.nattrs = nattrs;
	req.tested_attr = tested;
	return policy_evaluate(call->d->policy, pr, call->identity, &req, v);
}

/* A verdict that needs approvals: 1 if this (spawned) call carries enough, else answered. */
static int
approvals_met(struct rpc_call *call, const struct policy_verdict *v)
{
	char names[512];
	unsigned n = count_approvals(call, v->approver_role, names, sizeof(names));

	if (v->mfa && !call->sf_ok) {
		snprintf(call->reason, sizeof(call->reason), "%s", v->reason);
		rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED, RPC_SF_NEEDED_MESSAGE, NULL, 0);
		return 0;
	}
	if (call->proposal[0] != '\0' && n >= v->approvals) {
		if (rpc_call_audit_field(call, "proposal", call->proposal) != 0 ||
		    rpc_call_audit_field(call, "approvals", names) != 0) {
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return 0;
		}
		call->reason[0] = '\0';
		call->authorized = 1;
		return 1;
	}
	if (snprintf(call->reason, sizeof(call->reason), "%s%s", v->reason,
	    call->proposal[0] != '\0' ? " (approvals that count fall short)" : "") < 0)
		call->reason[0] = '\0';
	if (call->proposal[0] != '\0')
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "this call needs %u approvals "
		    "of role %s; proposal %s has %u that count (distinct principals other than the "
		    "proposer who hold that role now)", v->approvals, v->approver_role,
		    call->proposal, n);
	else
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "this call needs %u approvals "
		    "of role %s: submit it as a proposal (boltseal.v1.AdminService/Propose)",
		    v->approvals, v->approver_role);
	return 0;
}

int
rpc_call_authorize(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs)
{
	return rpc_call_authorize_tested(call, key, purpose, attrs, nattrs, NULL);
}

int
rpc_call_authorize_tested(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, const char *tested)
{
	struct policy_verdict v;
	char msg[RPC_MESSAGE_MAX];

	if (key != NULL && call->audit_key[0] == '\0')
		snprintf(call->audit_key, sizeof(call->audit_key), "%s", key);
	switch (call_check(call, NULL, key, purpose, attrs, nattrs, tested, &v)) {
	case POLICY_ALLOW:
		call->reason[0] = '\0';
		call->authorized = 1;
		return 1;
	case POLICY_NEEDS_SECOND_FACTOR:
		if (call->sf_ok) {
			call->reason[0] = '\0';
			call->authorized = 1;
			return 1;
		}
		snprintf(call->reason, sizeof(call->reason), "%s", v.reason);
		rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED, RPC_SF_NEEDED_MESSAGE, NULL, 0);
		return 0;
	case POLICY_NEEDS_APPROVALS:
		return approvals_met(call, &v);
	case POLICY_DENY:
	default:
		snprintf(call->reason, sizeof(call->reason), "%s", v.reason);
		rpc_call_finish(call, GRPC_STATUS_PERMISSION_DENIED, denied_message(call, msg,
		    sizeof(msg)), NULL, 0);
		return 0;
	}
}

int
rpc_call_authorize_item(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, int *grpc_status)
{
	struct policy_verdict v;

	switch (call_check(call, NULL, key, purpose, attrs, nattrs, NULL, &v)) {
	case POLICY_ALLOW:
		call->authorized = 1;
		return 1;
	case POLICY_NEEDS_SECOND_FACTOR:
		if (call->sf_ok) {
			call->authorized = 1;
			return 1;
		}
		*grpc_status = GRPC_STATUS_UNAUTHENTICATED;
		break;
	case POLICY_NEEDS_APPROVALS:
		*grpc_status = GRPC_STATUS_FAILED_PRECONDITION;
		break;
	case POLICY_DENY:
	default:
		*grpc_status = GRPC_STATUS_PERMISSION_DENIED;
		break;
	}
	/* the call's record keeps the first refusal's reason */
	if (call->reason[0] == '\0')
		snprintf(call->reason, sizeof(call->reason), "%s", v.reason);
	return 0;
}

int
rpc_call_granted(struct rpc_call *call, const char *method)
{
	return policy_may_call(call->d->policy, call_principal(call), method);
}

int
rpc_call_policy_tests(struct rpc_call *call, const char *prefix)
{
	return policy_method_tests(call->d->policy, call_principal(call), call->path + 1, prefix);
}

int
rpc_call_may(struct rpc_call *call, const char *method, const char *key,
    const char *purpose, const struct policy_attr *attrs, size_t nattrs)
{
	struct policy_verdict v;
	enum policy_decision dec = call_check(call, method, key, purpose, attrs, nattrs, NULL, &v);

	return dec == POLICY_ALLOW || (dec == POLICY_NEEDS_SECOND_FACTOR && call->sf_ok);
}

void
rpc_call_audit_key(struct rpc_call *call, const char *key, int64_t version)
{
	snprintf(call->audit_key, sizeof(call->audit_key), "%s", key != NULL ? key : "");
	call->audit_version = version;
}

void
rpc_call_audit_target(struct rpc_call *call, const char *target)
{
	snprintf(call->audit_target, sizeof(call->audit_target), "%s", target != NULL ? target : "");
}

void
rpc_call_audit_event(struct rpc_call *call, const char *event)
{
	snprintf(call->audit_event, sizeof(call->audit_event), "%s", event != NULL ? event : "");
}

int
rpc_call_audit_payload(struct rpc_call *call, const uint8_t sha256[32])
{
	uint8_t (*np)[32] = realloc(call->payload, (call->npayload + 1) * 32);

	if (np == NULL)
		return BS_ERR_NOMEM;
	call->payload = np;
	memcpy(call->payload[call->npayload++], sha256, 32);
	return 0;
}

static int
field_name_ok(const char *name)
{
	size_t n = 0;

	for (const char *p = name; *p != '\0'; p++, n++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		    *p == '.'))
			return 0;
	return n >= 1 && n <= AUDIT_FIELD_NAME_MAX;
}

int
rpc_call_audit_field(struct rpc_call *call, const char *name, const char *value)
{
	struct audit_field *f = NULL;
	char *v;

	if (name == NULL || value == NULL || !field_name_ok(name))
		return BS_ERR_INVALID;
	for (size_t i = 0; i < call->nfields; i++)
		if (strcmp(call->fields[i].name, name) == 0)
			f = &call->fields[i];
	if (f == NULL && call->nfields == RPC_AUDIT_FIELDS_MAX)
		return BS_ERR_INVALID;
	if ((v = strdup(value)) == NULL)
		return BS_ERR_NOMEM;
	if (f != NULL) {
		free((char *)f->value);
		f->value = v;
		return 0;
	}
	f = &call->fields[call->nfields];
	if ((f->name = strdup(name)) == NULL) {
		free(v);
		return BS_ERR_NOMEM;
	}
	f->value = v;
	call->nfields++;
	return 0;
}
