/*
 * server.c - gRPC over HTTP/2 over TLS 1.3, on libevent (see server.h).
 *
 * One struct conn per TCP connection (a bufferevent_openssl and an nghttp2
 * server session); one struct rpc_call per HTTP/2 stream. A call lives
 * while its stream is open or its handler has not answered, whichever is
 * longer: if the client resets the stream or the deadline passes while an
 * HSM job runs, the call is detached and freed when the handler finishes.
 *
 * Flow of a request: HEADERS (path, content-type, grpc-timeout checked at
 * the end of the header block; unknown method answered at once) -> DATA
 * (length prefix checked against the cap before allocation) -> END_STREAM
 * (message complete: handler called) -> rpc_call_finish (response HEADERS,
 * one DATA, trailers; or Trailers-Only for errors).
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "audit/auditlog.h"
#include "common/log.h"
#include "formats/pb_strings.h"
#include "net/grpc_frame.h"
#include "net/grpc_status.h"
#include "net/server.h"
#include "net/tls.h"
#include "policy/policy.h"

#define OUTPUT_HIGH_WATER (64 * 1024)
#define PATH_MAX_LEN 128
#define MESSAGE_MAX_LEN 512

struct conn;

struct rpc_call {
	LIST_ENTRY(rpc_call) link;
	struct conn *conn;            /* NULL once detached from its stream */
	struct server *srv;
	int32_t stream_id;
	char path[PATH_MAX_LEN];
	const struct rpc_method *method;
	char request_id[24];
	struct timespec start;

	/* request headers */
	size_t header_bytes;
	int is_post;
	int ct_ok;
	int te_bad;
	int timeout_bad;
	int compressed_encoding;      /* grpc-encoding names a real coding */
	int have_timeout;
	int64_t timeout_us;

	struct grpc_lpm_reader rd;
	struct event *deadline;

	int stream_open;              /* still attached to an HTTP/2 stream */
	int handler_pending;          /* handler called, not finished */
	int answered;                 /* response submitted */
	int abandoned;                /* client gone or deadline passed */
	void (*cancel_fn)(void *);
	void *cancel_arg;

	/* who asked, and what the audit record says */
	char principal[POLICY_ID_MAX + 1];  /* "" = not mapped */
	const struct policy_principal *pr;  /* mapping under policy generation pr_gen */
	unsigned pr_gen;
	int pr_known;
	int authorized;               /* policy allowed the call (or it is exempt) */
	int decided;                  /* an answer is chosen (maybe waiting for the log) */
	int http_status;              /* of the chosen answer */
	unsigned audit_inflight;      /* records of this call not yet durable */
	char reason[POLICY_REASON_MAX];  /* precise reason for the log ("" = message) */
	char audit_key[128];
	int64_t audit_version;
	char audit_target[128];
	char audit_event[32];
	uint8_t (*payload)[32];
	size_t npayload;

	/* response */
	int status;
	uint8_t *resp;                /* LPM prefix + message */
	size_t resp_len;
	size_t resp_off;
	char message[MESSAGE_MAX_LEN * 3 + 1];  /* percent-encoded for grpc-message */
	char text[MESSAGE_MAX_LEN];             /* the same, plain, for the log */

	/* the caller, copied: late audit records outlive the connection */
	char identity[TLS_IDENTITY_MAX];
	uint8_t cert_sha256[32];
};

struct conn {
	LIST_ENTRY(conn) link;
	struct server *srv;
	struct bufferevent *bev;
	SSL *ssl;
	nghttp2_session *h2;
	char peer[64];
	char identity[TLS_IDENTITY_MAX];
	uint8_t cert_sha256[32];
	int established;
	int closing;
	int in_recv;                  /* inside nghttp2_session_mem_recv: no send */
	LIST_HEAD(, rpc_call) calls;
};

struct server {
	struct event_base *base;
	SSL_CTX *ctx;
	struct server_limits lim;
	const struct rpc_method *const *tables;
	struct svc_ctx *svc;
	struct evconnlistener *listener;
	LIST_HEAD(, conn) conns;
	unsigned nconns;
	unsigned ncalls;
	uint32_t boot_id;
	uint64_t next_id;
	int shutting_down;
	struct event *grace_timer;
	void (*drained)(void *);
	void *drained_arg;
	int drained_called;
};

static void conn_free(struct conn *c);
static void call_free(struct rpc_call *call);
static void conn_flush(struct conn *c);

static int64_t
elapsed_us(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
	    (now.tv_nsec - start->tv_nsec) / 1000;
}

/*
 * Shutdown is complete when no call is in flight and every connection has
 * flushed its last responses and closed (after GOAWAY, nghttp2 stops wanting
 * to read once its streams are done, and conn_flush closes the connection
 * when its output buffer is empty).
 */
static void
check_drained(struct server *s)
{
	if (s->shutting_down && s->ncalls == 0 && s->nconns == 0 && !s->drained_called &&
	    s->drained != NULL) {
		s->drained_called = 1;
		s->drained(s->drained_arg);
	}
}

/* ---- response submission ------------------------------------------------ */


#define MAKE_NV(n, v, vlen) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), \
	  NGHTTP2_NV_FLAG_NONE }

static ssize_t
resp_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct rpc_call *call = source->ptr;
	size_t n = call->resp_len - call->resp_off;
	char status[16];
	int slen;

	if (n > length)
		n = length;
	memcpy(buf, call->resp + call->resp_off, n);
	call->resp_off += n;
	if (call->resp_off == call->resp_len) {
		nghttp2_nv trailers[] = { MAKE_NV("grpc-status", status, 0) };

		slen = snprintf(status, sizeof(status), "%d", call->status);
		trailers[0].valuelen = (size_t)slen;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(h2, stream_id, trailers, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

static void
log_call(const struct rpc_call *call)
{
	char status[16], dur[32];
	const struct conn *c = call->conn;
	enum bs_log_level lvl = call->status == GRPC_STATUS_OK ? BS_LOG_INFO : BS_LOG_WARN;

	if (!bs_log_enabled(lvl))
		return;
	snprintf(status, sizeof(status), "%d", call->status);
	snprintf(dur, sizeof(dur), "%" PRId64, elapsed_us(&call->start));
	bs_log(lvl, "rpc",
	    "request_id", call->request_id,
	    "method", call->path,
	    "identity", c != NULL ? c->identity : "",
	    "peer", c != NULL ? c->peer : "",
	    "grpc_status", status,
	    "status_name", grpc_status_name(call->status),
	    "duration_us", dur,
	    "detail", call->message,
	    NULL);
}

/*
 * Submits the answer on the still-open stream: headers, the message, and
 * trailers; or Trailers-Only when there is no message. http_status != 200
 * answers a non-gRPC request (no grpc-status).
 */
static void
call_submit(struct rpc_call *call, int http_status)
{
	struct conn *c = call->conn;
	char status[16], hstatus[8];
	nghttp2_nv nva[5];
	size_t n = 0;
	nghttp2_data_provider prd;
	int rv;

	call->answered = 1;
	if (call->deadline != NULL)
		event_del(call->deadline);
	snprintf(hstatus, sizeof(hstatus), "%d", http_status);
	nva[n++] = (nghttp2_nv)MAKE_NV(":status", hstatus, strlen(hstatus));
	nva[n++] = (nghttp2_nv)MAKE_NV("content-type", "application/grpc+proto",
	    sizeof("application/grpc+proto") - 1);
	log_call(call);
	if (http_status != 200) {
		rv = nghttp2_submit_response(c->h2, call->stream_id, nva, 1, NULL);
	} else if (call->status == GRPC_STATUS_OK && call->resp != NULL) {
		prd.source.ptr = call;
		prd.read_callback = resp_read_cb;
		rv = nghttp2_submit_response(c->h2, call->stream_id, nva, n, &prd);
	} else {
		snprintf(status, sizeof(status), "%d", call->status);
		nva[n++] = (nghttp2_nv)MAKE_NV("grpc-status", status, strlen(status));
		if (call->message[0] != '\0')
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-message", call->message,
			    strlen(call->message));
		if (call->status == GRPC_STATUS_UNIMPLEMENTED)
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-accept-encoding", "identity", 8);
		rv = nghttp2_submit_response(c->h2, call->stream_id, nva, n, NULL);
	}
	if (rv != 0) {
		bs_log(BS_LOG_ERROR, "cannot submit response", "request_id", call->request_id,
		    "error", nghttp2_strerror(rv), NULL);
		(void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
		    NGHTTP2_INTERNAL_ERROR);
	}
}

static void
set_message(struct rpc_call *call, const char *msg)
{
	(void)grpc_message_encode(call->message, sizeof(call->message), msg != NULL ? msg : "");
	snprintf(call->text, sizeof(call->text), "%s", msg != NULL ? msg : "");
}

static void
call_maybe_free(struct rpc_call *call)
{
	if (!call->stream_open && !call->handler_pending && call->audit_inflight == 0)
		call_free(call);
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
	rc = audit_log_append(call->srv->svc->audit, &r, done, call);
	if (rc == 0)
		call->audit_inflight++;
	return rc;
}

/* The answer's record is durable (rc 0) or cannot be written: send it now. */
static void
answer_logged(void *arg, int rc)
{
	struct rpc_call *call = arg;
	struct conn *c = call->conn;
	int http_status = call->http_status;

	if (rc != 0) {
		free(call->resp);
		call->resp = NULL;
		call->resp_len = 0;
		call->status = GRPC_STATUS_UNAVAILABLE;
		set_message(call, "audit log unavailable: the result is withheld; retry later");
		http_status = 200;
	}
	if (call->stream_open && c != NULL && !call->answered) {
		call_submit(call, http_status);
		conn_flush(c); /* may close the stream: audit_inflight keeps call alive */
	}
	call->audit_inflight--;
	call_maybe_free(call);
}

static void
late_logged(void *arg, int rc)
{
	struct rpc_call *call = arg;

	(void)rc;
	call->audit_inflight--;
	call_maybe_free(call);
}

/*
 * Chooses the answer already set in call (status, message, resp) and sends
 * it once its audit record is durable: a response never precedes its record.
 */
static void
call_answer(struct rpc_call *call, int http_status)
{
	call->decided = 1;
	call->http_status = http_status;
	if (call->srv->svc->audit == NULL) {
		call_submit(call, http_status);
		return;
	}
	if (call->method != NULL && call->method->policy_exempt) {
		/*
		 * Health acts on nothing, and must be able to say NOT_SERVING
		 * while the log cannot be written: its record is queued (which
		 * also keeps call alive) but not waited for.
		 */
		if (call_audit(call, call->status, call->reason[0] != '\0' ? call->reason :
		    call->text, late_logged) != 0)
			bs_log(BS_LOG_WARN, "health check not recorded: audit backlog", NULL);
		call_submit(call, http_status);
		return;
	}
	if (call_audit(call, call->status, call->reason[0] != '\0' ? call->reason : call->text,
	    answer_logged) != 0) {
		/* not even queued (backlog while the log is failing): refuse, unrecorded */
		free(call->resp);
		call->resp = NULL;
		call->resp_len = 0;
		call->status = GRPC_STATUS_UNAVAILABLE;
		set_message(call, "audit log unavailable; retry later");
		call_submit(call, 200);
	}
}


/* Answers an error on the open stream (server-side checks). */
static void
call_error(struct rpc_call *call, int status, const char *msg)
{
	call->status = status;
	set_message(call, msg);
	call_answer(call, 200);
}

/* Same, with a precise reason for the audit log that the client does not see. */
static void
call_refuse(struct rpc_call *call, int status, const char *msg, const char *reason)
{
	snprintf(call->reason, sizeof(call->reason), "%s", reason);
	call_error(call, status, msg);
}

void
rpc_call_finish(struct rpc_call *call, int grpc_status, const char *message, const uint8_t *resp,
    size_t resp_len)
{
	struct conn *c = call->conn;
	char why[MESSAGE_MAX_LEN + 96];

	call->handler_pending = 0;
	if (grpc_status == GRPC_STATUS_OK && !call->authorized) {
		/* a handler bug: never let an unchecked success through */
		bs_log(BS_LOG_ERROR, "handler answered without an authorization check; refused",
		    "method", call->path, "request_id", call->request_id, NULL);
		grpc_status = GRPC_STATUS_INTERNAL;
		message = "internal error";
		resp_len = 0;
	}
	if (call->stream_open && !call->decided && c != NULL) {
		call->status = grpc_status;
		set_message(call, message);
		if (grpc_status == GRPC_STATUS_OK) {
			call->resp = malloc(GRPC_LPM_HEADER_LEN + resp_len);
			if (call->resp == NULL) {
				call->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
				set_message(call, "out of memory");
			} else {
				grpc_lpm_write_header(call->resp, (uint32_t)resp_len);
				if (resp_len > 0)
					memcpy(call->resp + GRPC_LPM_HEADER_LEN, resp, resp_len);
				call->resp_len = GRPC_LPM_HEADER_LEN + resp_len;
			}
		}
		call_answer(call, 200);
		conn_flush(c);
		return;
	}
	/* nobody to answer (deadline passed or caller gone): record the outcome */
	if (call->srv->svc->audit != NULL) {
		snprintf(why, sizeof(why), "result dropped: the caller was already answered or "
		    "left%s%s", message != NULL && message[0] != '\0' ? "; " : "",
		    message != NULL ? message : "");
		if (call_audit(call, grpc_status, why, late_logged) != 0)
			bs_log(BS_LOG_ERROR, "cannot queue an audit record", "request_id",
			    call->request_id, NULL);
	}
	call_maybe_free(call);
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
		free(buf);
}

void
rpc_call_fail(struct rpc_call *call, int grpc_status, const char *fmt, ...)
{
	char msg[MESSAGE_MAX_LEN];
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

const char *
rpc_call_principal(const struct rpc_call *call)
{
	return call->principal;
}

/*
 * The principal of call under the current policy: mapped once per policy
 * generation (a SIGHUP reload bumps it), NULL if the certificate maps to none.
 */
static const struct policy_principal *
call_principal(struct rpc_call *call)
{
	struct svc_ctx *svc = call->srv->svc;

	if (!call->pr_known || call->pr_gen != svc->policy_gen) {
		call->pr = svc->policy != NULL ?
		    policy_map(svc->policy, call->identity, call->cert_sha256) : NULL;
		call->pr_gen = svc->policy_gen;
		call->pr_known = 1;
	}
	return call->pr;
}

/* The policy's verdict on (key, purpose, attrs) for call; reason on denial. */
static int
call_check(struct rpc_call *call, const char *method, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, char reason[POLICY_REASON_MAX])
{
	struct svc_ctx *svc = call->srv->svc;
	const struct policy_principal *pr;
	struct policy_request req;

	pr = call_principal(call);
	if (pr == NULL) {
		snprintf(reason, POLICY_REASON_MAX, "certificate no longer maps to a principal");
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.method = method != NULL ? method : call->path + 1;
	req.key = key;
	req.key_purpose = purpose;
	req.attrs = attrs;
	req.nattrs = nattrs;
	return policy_authorize(svc->policy, pr, call->identity, &req, reason);
}

int
rpc_call_authorize(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs)
{
	if (key != NULL && call->audit_key[0] == '\0')
		snprintf(call->audit_key, sizeof(call->audit_key), "%s", key);
	if (call_check(call, NULL, key, purpose, attrs, nattrs, call->reason)) {
		call->reason[0] = '\0';
		call->authorized = 1;
		return 1;
	}
	rpc_call_finish(call, GRPC_STATUS_PERMISSION_DENIED, "permission denied", NULL, 0);
	return 0;
}

int
rpc_call_may(struct rpc_call *call, const char *method, const char *key,
    const char *purpose, const struct policy_attr *attrs, size_t nattrs)
{
	char reason[POLICY_REASON_MAX];

	return call_check(call, method, key, purpose, attrs, nattrs, reason);
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

struct svc_ctx *
rpc_call_svc(const struct rpc_call *call)
{
	return call->srv->svc;
}

/* ---- call lifecycle ------------------------------------------------------ */

static void
call_abandon(struct rpc_call *call)
{
	if (call->abandoned)
		return;
	call->abandoned = 1;
	if (call->handler_pending && call->cancel_fn != NULL)
		call->cancel_fn(call->cancel_arg);
}

static void
call_free(struct rpc_call *call)
{
	struct server *s = call->srv;

	if (call->deadline != NULL)
		event_free(call->deadline);
	grpc_lpm_reader_free(&call->rd);
	free(call->resp);
	free(call->payload);
	free(call);
	s->ncalls--;
	check_drained(s);
}

/* The stream is gone (closed, reset, or its connection died). */
static void
call_detach(struct rpc_call *call)
{
	if (call->conn != NULL) {
		LIST_REMOVE(call, link);
		call->conn = NULL;
	}
	call->stream_open = 0;
	if (call->deadline != NULL)
		event_del(call->deadline);
	if (call->handler_pending)
		call_abandon(call); /* freed once rpc_call_finish ran */
	call_maybe_free(call);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_call *call = arg;
	struct conn *c = call->conn;

	if (call->decided || c == NULL)
		return;
	call_abandon(call);
	call_error(call, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
	conn_flush(c);
}

static struct rpc_call *
call_new(struct conn *c, int32_t stream_id)
{
	struct server *s = c->srv;
	const struct policy_principal *pr;
	struct rpc_call *call;

	call = calloc(1, sizeof(*call));
	if (call == NULL)
		return NULL;
	call->conn = c;
	call->srv = s;
	call->stream_id = stream_id;
	call->stream_open = 1;
	call->audit_version = -1;
	memcpy(call->identity, c->identity, sizeof(call->identity));
	memcpy(call->cert_sha256, c->cert_sha256, sizeof(call->cert_sha256));
	/* for the records of calls refused before admission (unknown method...) */
	if ((pr = call_principal(call)) != NULL)
		snprintf(call->principal, sizeof(call->principal), "%s", policy_principal_id(pr));
	clock_gettime(CLOCK_MONOTONIC, &call->start);
	snprintf(call->request_id, sizeof(call->request_id), "%08" PRIx32 "%08" PRIx64, s->boot_id,
	    ++s->next_id);
	grpc_lpm_reader_init(&call->rd, s->lim.max_message_bytes);
	LIST_INSERT_HEAD(&c->calls, call, link);
	s->ncalls++;
	return call;
}

static const struct rpc_method *
find_method(const struct server *s, const char *path)
{
	for (size_t t = 0; s->tables[t] != NULL; t++)
		for (const struct rpc_method *m = s->tables[t]; m->path != NULL; m++)
			if (strcmp(m->path, path) == 0)
				return m;
	return NULL;
}

/* End of the request header block: decide whether the call may proceed. */
static void
call_headers_done(struct rpc_call *call)
{
	struct server *s = call->srv;
	char msg[MESSAGE_MAX_LEN];

	if (!call->is_post) {
		call->status = GRPC_STATUS_UNIMPLEMENTED;
		set_message(call, "only POST is supported");
		call_answer(call, 405);
		return;
	}
	if (!call->ct_ok) {
		call->status = GRPC_STATUS_INTERNAL;
		set_message(call, "content-type must be application/grpc");
		call_answer(call, 415);
		return;
	}
	if (call->header_bytes > s->lim.max_header_list_bytes) {
		call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "request header list too large");
		return;
	}
	if (call->timeout_bad) {
		call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed grpc-timeout");
		return;
	}
	call->method = find_method(s, call->path);
	if (call->method == NULL) {
		snprintf(msg, sizeof(msg), "unknown method %s", call->path);
		call_error(call, GRPC_STATUS_UNIMPLEMENTED, msg);
		return;
	}
	if (s->shutting_down) {
		call_error(call, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
		return;
	}
	if (call->have_timeout) {
		struct timeval tv;

		tv.tv_sec = (time_t)(call->timeout_us / 1000000);
		tv.tv_usec = (suseconds_t)(call->timeout_us % 1000000);
		call->deadline = event_new(s->base, -1, 0, deadline_cb, call);
		if (call->deadline == NULL || event_add(call->deadline, &tv) != 0) {
			call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot arm deadline");
			return;
		}
	}
}

/*
 * Before any handler work: the log must be writable, the certificate must
 * map to a principal, and some role of it must name the method (handlers
 * then check keys and attributes with rpc_call_authorize). 1 = go on.
 */
static int
call_admit(struct rpc_call *call)
{
	struct svc_ctx *svc = call->srv->svc;
	const struct policy_principal *pr;
	char reason[POLICY_REASON_MAX], roles[256], sha[65];

	if (svc->audit != NULL && !audit_log_healthy(svc->audit) && !call->method->policy_exempt) {
		call_error(call, GRPC_STATUS_UNAVAILABLE, "audit log unavailable; retry later");
		return 0;
	}
	pr = call_principal(call);
	if (pr == NULL) {
		call->principal[0] = '\0';
		for (size_t i = 0; i < 32; i++)
			snprintf(sha + 2 * i, 3, "%02x", call->cert_sha256[i]);
		snprintf(reason, sizeof(reason), "certificate %s (URI SAN %.300s) maps to no principal",
		    sha, call->identity);
		call_refuse(call, GRPC_STATUS_UNAUTHENTICATED,
		    "client certificate is not mapped to a principal", reason);
		return 0;
	}
	snprintf(call->principal, sizeof(call->principal), "%s", policy_principal_id(pr));
	if (call->method->policy_exempt) {
		call->authorized = 1;
		return 1;
	}
	if (!policy_may_call(svc->policy, pr, call->path + 1)) {
		policy_principal_roles(pr, roles, sizeof(roles));
		snprintf(reason, sizeof(reason), "no role of principal '%s' (%s) grants %s",
		    call->principal, roles, call->path + 1);
		call_refuse(call, GRPC_STATUS_PERMISSION_DENIED, "permission denied", reason);
		return 0;
	}
	return 1;
}

/* The client finished sending: run the handler on the complete message. */
static void
call_request_done(struct rpc_call *call)
{
	const uint8_t *msg = NULL;
	size_t len = 0;
	uint32_t field = 0;
	int rc;

	if (call->decided || call->method == NULL)
		return;
	rc = grpc_lpm_reader_finish(&call->rd, &msg, &len);
	if (rc != 0) {
		call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "request message truncated (stream ended before the announced length)");
		return;
	}
	if (pb_strings_check(call->method->request, msg, len, &field) != 0) {
		char text[MESSAGE_MAX_LEN];

		snprintf(text, sizeof(text), "malformed request: field %u is not valid UTF-8 "
		    "without NUL bytes, or the message is not valid protobuf", field);
		call_error(call, GRPC_STATUS_INVALID_ARGUMENT, text);
		return;
	}
	if (!call_admit(call))
		return;
	call->handler_pending = 1;
	call->method->handler(call, msg, len);
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static ssize_t
send_cb(nghttp2_session *h2, const uint8_t *data, size_t length, int flags, void *user_data)
{
	struct conn *c = user_data;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (evbuffer_get_length(out) >= OUTPUT_HIGH_WATER)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (bufferevent_write(c->bev, data, length) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)length;
}

static int
on_begin_headers_cb(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct conn *c = user_data;
	struct rpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = call_new(c, frame->hd.stream_id);
	if (call == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, call);
	return 0;
}

#define HDR_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

static int
on_header_cb(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	struct rpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	call->header_bytes += namelen + valuelen + 32;
	if (call->header_bytes > call->srv->lim.max_header_list_bytes)
		return 0; /* answered at the end of the block; keep nothing more */
	if (HDR_IS(":path")) {
		if (valuelen >= sizeof(call->path))
			valuelen = 0; /* too long: becomes an unknown method "" */
		memcpy(call->path, value, valuelen);
		call->path[valuelen] = '\0';
	} else if (HDR_IS(":method")) {
		call->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (HDR_IS("content-type")) {
		call->ct_ok = grpc_content_type_ok((const char *)value, valuelen);
	} else if (HDR_IS("grpc-timeout")) {
		if (grpc_timeout_parse((const char *)value, valuelen, &call->timeout_us) == 0)
			call->have_timeout = 1;
		else
			call->timeout_bad = 1;
	} else if (HDR_IS("grpc-encoding")) {
		/* only identity is supported; a compressed message is refused when it arrives */
		call->compressed_encoding = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
	}
	return 0;
}

static int
on_data_chunk_recv_cb(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
    size_t len, void *user_data)
{
	struct rpc_call *call = nghttp2_session_get_stream_user_data(h2, stream_id);
	char msg[MESSAGE_MAX_LEN];
	int rc;

	if (call == NULL || call->decided || call->handler_pending)
		return 0;
	rc = grpc_lpm_reader_feed(&call->rd, data, len);
	switch (rc) {
	case 0:
		return 0;
	case BS_ERR_TOO_BIG:
		snprintf(msg, sizeof(msg), "request message larger than the limit of %u bytes",
		    call->srv->lim.max_message_bytes);
		call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		break;
	case BS_ERR_UNSUPPORTED:
		if (call->compressed_encoding)
			call_error(call, GRPC_STATUS_UNIMPLEMENTED,
			    "compressed messages are not supported (grpc-encoding identity only)");
		else
			call_error(call, GRPC_STATUS_INTERNAL,
			    "compressed flag set without a grpc-encoding");
		break;
	case BS_ERR_NOMEM:
		call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		break;
	default:
		call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "malformed gRPC framing (one uncompressed message expected)");
		break;
	}
	return 0;
}

static int
on_frame_recv_cb(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		call_headers_done(call);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		call_request_done(call);
	return 0;
}

static int
on_stream_close_cb(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *user_data)
{
	struct rpc_call *call = nghttp2_session_get_stream_user_data(h2, stream_id);

	if (call == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
	call_detach(call);
	return 0;
}

/* ---- connection I/O ----------------------------------------------------- */

static void
conn_flush(struct conn *c)
{
	int rv;

	if (c->h2 == NULL || c->closing || c->in_recv)
		return;
	rv = nghttp2_session_send(c->h2);
	if (rv != 0) {
		bs_log(BS_LOG_WARN, "http2 send failed", "peer", c->peer, "error", nghttp2_strerror(rv),
		    NULL);
		conn_free(c);
		return;
	}
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static void
readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	unsigned char *data;
	ssize_t n;

	if (c->h2 == NULL || len == 0)
		return;
	data = evbuffer_pullup(in, -1);
	c->in_recv = 1;
	n = nghttp2_session_mem_recv(c->h2, data, len);
	c->in_recv = 0;
	if (n < 0) {
		bs_log(BS_LOG_WARN, "http2 protocol error", "peer", c->peer, "identity", c->identity,
		    "error", nghttp2_strerror((int)n), NULL);
		conn_free(c);
		return;
	}
	evbuffer_drain(in, (size_t)n);
	conn_flush(c);
}

static void
writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->h2 == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	conn_flush(c);
}

static int
conn_start_h2(struct conn *c)
{
	const struct server_limits *lim = &c->srv->lim;
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[3];
	int rv;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -1;
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		return -1;
	}
	/* Refuse streams over the limit even before the client acks SETTINGS. */
	nghttp2_option_set_max_reserved_remote_streams(opt, 0);
	rv = nghttp2_session_server_new2(&c->h2, cbs, c, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (rv != 0)
		return -1;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = lim->max_concurrent_streams;
	iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
	iv[1].value = lim->max_header_list_bytes;
	iv[2].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[2].value = 1024 * 1024;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 3) != 0)
		return -1;
	/* connection-level window to match */
	(void)nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 4 * 1024 * 1024);
	return 0;
}

static void
set_read_timeout(struct conn *c, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	bufferevent_set_timeouts(c->bev, &tv, NULL);
}

static void
log_tls_errors(struct conn *c, const char *what)
{
	unsigned long e;
	char buf[256];
	long vr = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;

	e = bufferevent_get_openssl_error(c->bev);
	if (e == 0)
		e = ERR_peek_last_error();
	ERR_error_string_n(e, buf, sizeof(buf));
	bs_log(BS_LOG_WARN, what, "peer", c->peer,
	    "tls_error", e != 0 ? buf : "connection closed",
	    "verify_result", vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "ok", NULL);
	ERR_clear_error();
}

static void
eventcb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;
	char sha[65];

	if (events & BEV_EVENT_CONNECTED) {
		if (!tls_alpn_is_h2(c->ssl)) {
			bs_log(BS_LOG_WARN, "connection refused: ALPN h2 not negotiated", "peer", c->peer,
			    NULL);
			conn_free(c);
			return;
		}
		if (tls_peer_identity(c->ssl, c->identity, c->cert_sha256) != 0) {
			bs_log(BS_LOG_WARN, "connection refused: no verified URI SAN", "peer", c->peer,
			    NULL);
			conn_free(c);
			return;
		}
		for (int i = 0; i < 32; i++)
			snprintf(sha + 2 * i, 3, "%02x", c->cert_sha256[i]);
		c->established = 1;
		set_read_timeout(c, c->srv->lim.idle_timeout_ms);
		bs_log(BS_LOG_INFO, "connection established", "peer", c->peer, "identity",
		    c->identity, "cert_sha256", sha, NULL);
		if (conn_start_h2(c) != 0) {
			bs_log(BS_LOG_ERROR, "cannot start HTTP/2 session", "peer", c->peer, NULL);
			conn_free(c);
			return;
		}
		conn_flush(c);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT) {
		if (c->established && !LIST_EMPTY(&c->calls)) {
			/* calls still running: the client is waiting, not idle */
			bufferevent_enable(bev, EV_READ);
			return;
		}
		bs_log(BS_LOG_INFO, c->established ? "idle connection closed" :
		    "handshake timed out", "peer", c->peer, "identity", c->identity, NULL);
		if (c->h2 != NULL) {
			(void)nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
			(void)nghttp2_session_send(c->h2);
		}
		conn_free(c);
		return;
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->established)
			log_tls_errors(c, "TLS handshake failed");
		else
			bs_log(BS_LOG_DEBUG, "connection closed", "peer", c->peer, NULL);
		conn_free(c);
	}
}

static void
conn_free(struct conn *c)
{
	struct server *s = c->srv;
	struct rpc_call *call;

	if (c->closing)
		return;
	c->closing = 1;
	while ((call = LIST_FIRST(&c->calls)) != NULL) {
		if (c->h2 != NULL)
			nghttp2_session_set_stream_user_data(c->h2, call->stream_id, NULL);
		call_detach(call);
	}
	if (c->h2 != NULL)
		nghttp2_session_del(c->h2);
	c->h2 = NULL;
	LIST_REMOVE(c, link);
	s->nconns--;
	/* bufferevent_free may only schedule the close: defer the SSL teardown to it */
	bufferevent_free(c->bev);
	free(c);
	check_drained(s);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;
	struct conn *c = NULL;
	SSL *ssl = NULL;
	int one = 1;
	char host[48] = "?";

	if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	if (s->shutting_down || s->nconns >= s->lim.max_connections) {
		bs_log(BS_LOG_WARN, "connection refused: limit reached", "peer", host, NULL);
		evutil_closesocket(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	ssl = SSL_new(s->ctx);
	if (c == NULL || ssl == NULL)
		goto fail;
	c->srv = s;
	c->ssl = ssl;
	LIST_INIT(&c->calls);
	if (sa->sa_family == AF_INET)
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
		    ntohs(((struct sockaddr_in *)sa)->sin_port));
	else
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
		    ntohs(((struct sockaddr_in6 *)sa)->sin6_port));
	c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		goto fail;
	ssl = NULL; /* owned by the bufferevent now */
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->nconns++;
	bufferevent_setcb(c->bev, readcb, writecb, eventcb, c);
	set_read_timeout(c, s->lim.handshake_timeout_ms);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return;
fail:
	bs_log(BS_LOG_ERROR, "cannot set up connection", "peer", host, NULL);
	SSL_free(ssl);
	free(c);
	evutil_closesocket(fd);
}

/* ---- server -------------------------------------------------------------- */

void
server_set_tls_ctx(struct server *s, SSL_CTX *ctx)
{
	s->ctx = ctx;
}

int
server_new(struct event_base *base, SSL_CTX *ctx, const struct server_limits *lim,
    const struct rpc_method *const *tables, struct svc_ctx *svc, struct server **out)
{
	struct server *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return BS_ERR_NOMEM;
	s->base = base;
	s->ctx = ctx;
	s->lim = *lim;
	s->tables = tables;
	s->svc = svc;
	LIST_INIT(&s->conns);
	if (RAND_bytes((unsigned char *)&s->boot_id, sizeof(s->boot_id)) != 1) {
		free(s);
		return BS_ERR_CRYPTO;
	}
	*out = s;
	return 0;
}

static int
parse_addr(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
	int len = (int)sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)ss, &len) != 0)
		return BS_ERR_CONFIG;
	*sslen = len;
	return 0;
}

int
server_listen(struct server *s, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen;

	if (parse_addr(addr, &ss, &sslen) != 0) {
		snprintf(err, errlen, "cannot parse listen address '%s'", addr);
		return BS_ERR_CONFIG;
	}
	s->listener = evconnlistener_new_bind(s->base, accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
	    (struct sockaddr *)&ss, sslen);
	if (s->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		return BS_ERR_IO;
	}
	return 0;
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct conn *c;
	char n[16];

	snprintf(n, sizeof(n), "%u", s->ncalls);
	bs_log(BS_LOG_WARN, "shutdown grace period over, cancelling calls", "calls", n, NULL);
	while ((c = LIST_FIRST(&s->conns)) != NULL)
		conn_free(c);
	/* abandoned calls whose HSM jobs are still running are freed by the pool drain */
	if (!s->drained_called && s->drained != NULL) {
		s->drained_called = 1;
		s->drained(s->drained_arg);
	}
}

void
server_shutdown(struct server *s, unsigned grace_ms, void (*drained)(void *), void *arg)
{
	struct conn *c, *next;
	struct timeval tv = { (time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000 };

	if (s->shutting_down)
		return;
	s->shutting_down = 1;
	s->drained = drained;
	s->drained_arg = arg;
	if (s->listener != NULL)
		evconnlistener_disable(s->listener);
	for (c = LIST_FIRST(&s->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (c->h2 == NULL) {
			conn_free(c);
			continue;
		}
		(void)nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR, NULL, 0);
		conn_flush(c);
	}
	s->grace_timer = evtimer_new(s->base, grace_cb, s);
	if (s->grace_timer != NULL)
		evtimer_add(s->grace_timer, &tv);
	check_drained(s);
}

void
server_free(struct server *s)
{
	struct conn *c;

	if (s == NULL)
		return;
	while ((c = LIST_FIRST(&s->conns)) != NULL)
		conn_free(c);
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	if (s->grace_timer != NULL)
		event_free(s->grace_timer);
	free(s);
}

unsigned
server_active_calls(const struct server *s)
{
	return s->ncalls;
}
