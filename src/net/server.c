/*
 * server.c - gRPC over HTTP/2 over TLS 1.3, on libevent (see server.h).
 *
 * One struct conn per TCP connection (a bufferevent_openssl and an nghttp2
 * server session); one struct stream per HTTP/2 request stream, which
 * drives one call of the RPC layer (rpc/rpc.h). This file knows HTTP/2 and
 * gRPC framing; who may call what, decoding, handlers and audit belong to
 * the RPC layer.
 *
 * Flow of a request: HEADERS (POST, content-type, header list size and
 * grpc-timeout checked at the end of the header block; then
 * rpc_call_admit: unknown method, unmapped certificate or ungranted method
 * are answered at once, and nothing of their DATA is kept) -> DATA (length
 * prefix checked against the cap before allocation) -> END_STREAM
 * (rpc_call_request with the complete message) -> the answer callback
 * (response HEADERS, one DATA, trailers; or Trailers-Only for errors).
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
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

#include "common/hex.h"
#include "common/log.h"
#include "net/grpc_frame.h"
#include "net/server.h"
#include "net/tls.h"
#include "rpc/rpc.h"

#define OUTPUT_HIGH_WATER (64 * 1024)

struct conn;

struct stream {
	LIST_ENTRY(stream) link;
	struct conn *conn;
	int32_t stream_id;
	struct rpc_call *call;        /* owned by the RPC layer; detached in stream_free */

	/* request headers */
	char path[RPC_PATH_MAX];
	size_t header_bytes;
	int is_post;
	int ct_ok;
	int timeout_bad;
	int compressed_encoding;      /* grpc-encoding names a real coding */
	int have_timeout;
	int64_t timeout_us;

	int admitted;                 /* the RPC layer wants the message */
	int request_done;             /* the message was handed over */
	struct grpc_lpm_reader rd;
	struct event *deadline;

	/* the answer: prefix + message (borrowed from the call) */
	int answered;
	int grpc_status;
	uint8_t prefix[GRPC_LPM_HEADER_LEN];
	const uint8_t *msg;
	size_t msg_len;
	size_t off;                   /* bytes of prefix + message sent */
	char message[RPC_MESSAGE_MAX * 3 + 1];  /* percent-encoded grpc-message */
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
	LIST_HEAD(, stream) streams;
};

struct server {
	struct event_base *base;
	SSL_CTX *ctx;
	struct server_limits lim;
	struct rpc_dispatcher *disp;
	struct evconnlistener *listener;
	LIST_HEAD(, conn) conns;
	unsigned nconns;
	int shutting_down;
	struct event *grace_timer;
	void (*drained)(void *);
	void *drained_arg;
	int drained_called;
};

static void conn_free(struct conn *c);
static void conn_flush(struct conn *c);

/*
 * Shutdown is complete when no call is alive and every connection has
 * flushed its last responses and closed (after GOAWAY, nghttp2 stops wanting
 * to read once its streams are done, and conn_flush closes the connection
 * when its output buffer is empty).
 */
static void
check_drained(struct server *s)
{
	if (s->shutting_down && rpc_dispatcher_calls(s->disp) == 0 && s->nconns == 0 &&
	    !s->drained_called && s->drained != NULL) {
		s->drained_called = 1;
		s->drained(s->drained_arg);
	}
}

static void
call_freed(void *arg)
{
	check_drained(arg);
}

/* ---- answers ------------------------------------------------------------- */

#define MAKE_NV(n, v, vlen) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), \
	  NGHTTP2_NV_FLAG_NONE }

static ssize_t
resp_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct stream *st = source->ptr;
	size_t total = GRPC_LPM_HEADER_LEN + st->msg_len, n = 0, k;
	char status[16];
	int slen;

	while (n < length && st->off < total) {
		if (st->off < GRPC_LPM_HEADER_LEN) {
			k = GRPC_LPM_HEADER_LEN - st->off;
			if (k > length - n)
				k = length - n;
			memcpy(buf + n, st->prefix + st->off, k);
		} else {
			k = total - st->off;
			if (k > length - n)
				k = length - n;
			memcpy(buf + n, st->msg + (st->off - GRPC_LPM_HEADER_LEN), k);
		}
		n += k;
		st->off += k;
	}
	if (st->off == total) {
		nghttp2_nv trailers[] = { MAKE_NV("grpc-status", status, 0) };

		slen = snprintf(status, sizeof(status), "%d", st->grpc_status);
		trailers[0].valuelen = (size_t)slen;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(h2, stream_id, trailers, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/*
 * The RPC layer's answer: headers, the message, and trailers; or
 * Trailers-Only when there is no message. http_status != 200 answers a
 * non-gRPC request (no grpc-status).
 */
static void
stream_answer(void *arg, const struct rpc_answer *a)
{
	struct stream *st = arg;
	struct conn *c = st->conn;
	char status[16], hstatus[8];
	nghttp2_nv nva[5];
	size_t n = 0;
	nghttp2_data_provider prd;
	int rv;

	st->answered = 1;
	st->grpc_status = a->grpc_status;
	if (st->deadline != NULL)
		event_del(st->deadline);
	snprintf(hstatus, sizeof(hstatus), "%d", a->http_status);
	nva[n++] = (nghttp2_nv)MAKE_NV(":status", hstatus, strlen(hstatus));
	nva[n++] = (nghttp2_nv)MAKE_NV("content-type", "application/grpc+proto",
	    sizeof("application/grpc+proto") - 1);
	if (a->http_status != 200) {
		rv = nghttp2_submit_response(c->h2, st->stream_id, nva, 1, NULL);
	} else if (a->grpc_status == GRPC_STATUS_OK) {
		st->msg = a->msg;
		st->msg_len = a->msg_len;
		grpc_lpm_write_header(st->prefix, (uint32_t)a->msg_len);
		prd.source.ptr = st;
		prd.read_callback = resp_read_cb;
		rv = nghttp2_submit_response(c->h2, st->stream_id, nva, n, &prd);
	} else {
		snprintf(status, sizeof(status), "%d", a->grpc_status);
		nva[n++] = (nghttp2_nv)MAKE_NV("grpc-status", status, strlen(status));
		(void)grpc_message_encode(st->message, sizeof(st->message), a->message);
		if (st->message[0] != '\0')
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-message", st->message,
			    strlen(st->message));
		if (a->grpc_status == GRPC_STATUS_UNIMPLEMENTED)
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-accept-encoding", "identity", 8);
		rv = nghttp2_submit_response(c->h2, st->stream_id, nva, n, NULL);
	}
	if (rv != 0) {
		bs_log(BS_LOG_ERROR, "cannot submit response", "request_id",
		    rpc_call_request_id(st->call), "error", nghttp2_strerror(rv), NULL);
		(void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->stream_id,
		    NGHTTP2_INTERNAL_ERROR);
	}
	conn_flush(c); /* may free c and st */
}

static const struct rpc_transport h2_transport = { stream_answer };

/* ---- stream lifecycle ------------------------------------------------------ */

/* The stream is gone (closed, reset, or its connection died). */
static void
stream_free(struct stream *st)
{
	LIST_REMOVE(st, link);
	if (st->deadline != NULL)
		event_free(st->deadline);
	grpc_lpm_reader_free(&st->rd);
	rpc_call_detach(st->call);
	free(st);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	rpc_call_deadline(st->call); /* the answer may free st */
}

static struct stream *
stream_new(struct conn *c, int32_t stream_id)
{
	struct server *s = c->srv;
	struct rpc_peer peer = { c->identity, c->cert_sha256, c->peer };
	struct stream *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->conn = c;
	st->stream_id = stream_id;
	if (rpc_call_new(s->disp, &peer, &h2_transport, st, &st->call) != 0) {
		free(st);
		return NULL;
	}
	grpc_lpm_reader_init(&st->rd, s->lim.max_message_bytes);
	LIST_INSERT_HEAD(&c->streams, st, link);
	return st;
}

/*
 * End of the request header block: transport checks, then admission by the
 * RPC layer. Only an admitted stream's DATA is read.
 */
static void
stream_headers_done(struct stream *st)
{
	struct server *s = st->conn->srv;
	struct timeval tv;

	if (!st->is_post) {
		rpc_call_refuse(st->call, 405, GRPC_STATUS_UNIMPLEMENTED, "only POST is supported");
		return;
	}
	if (!st->ct_ok) {
		rpc_call_refuse(st->call, 415, GRPC_STATUS_INTERNAL,
		    "content-type must be application/grpc");
		return;
	}
	if (st->header_bytes > s->lim.max_header_list_bytes) {
		rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "request header list too large");
		return;
	}
	if (st->timeout_bad) {
		rpc_call_refuse(st->call, 200, GRPC_STATUS_INVALID_ARGUMENT, "malformed grpc-timeout");
		return;
	}
	if (s->shutting_down) {
		rpc_call_refuse(st->call, 200, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
		return;
	}
	if (!rpc_call_admit(st->call, st->path))
		return;
	st->admitted = 1;
	if (st->have_timeout) {
		tv.tv_sec = (time_t)(st->timeout_us / 1000000);
		tv.tv_usec = (suseconds_t)(st->timeout_us % 1000000);
		st->deadline = event_new(s->base, -1, 0, deadline_cb, st);
		if (st->deadline == NULL || event_add(st->deadline, &tv) != 0)
			rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "cannot arm deadline");
	}
}

/* 1 while the stream's DATA is wanted. */
static int
stream_reading(const struct stream *st)
{
	return st->admitted && !st->request_done && !rpc_call_decided(st->call);
}

/* The client finished sending: hand the complete message to the RPC layer. */
static void
stream_request_done(struct stream *st)
{
	const uint8_t *msg = NULL;
	size_t len = 0;

	if (!stream_reading(st))
		return;
	st->request_done = 1;
	if (grpc_lpm_reader_finish(&st->rd, &msg, &len) != 0) {
		rpc_call_refuse(st->call, 200, GRPC_STATUS_INVALID_ARGUMENT,
		    "request message truncated (stream ended before the announced length)");
		return;
	}
	rpc_call_request(st->call, msg, len);
	grpc_lpm_reader_free(&st->rd); /* decoded: the raw bytes are not needed any more */
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
	struct stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = stream_new(c, frame->hd.stream_id);
	if (st == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, st);
	return 0;
}

#define HDR_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

static int
on_header_cb(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	struct conn *c = user_data;
	struct stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (st == NULL)
		return 0;
	st->header_bytes += namelen + valuelen + 32;
	if (st->header_bytes > c->srv->lim.max_header_list_bytes)
		return 0; /* answered at the end of the block; keep nothing more */
	if (HDR_IS(":path")) {
		if (valuelen >= sizeof(st->path))
			valuelen = 0; /* too long: becomes an unknown method "" */
		memcpy(st->path, value, valuelen);
		st->path[valuelen] = '\0';
	} else if (HDR_IS(":method")) {
		st->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (HDR_IS("content-type")) {
		st->ct_ok = grpc_content_type_ok((const char *)value, valuelen);
	} else if (HDR_IS("grpc-timeout")) {
		if (grpc_timeout_parse((const char *)value, valuelen, &st->timeout_us) == 0)
			st->have_timeout = 1;
		else
			st->timeout_bad = 1;
	} else if (HDR_IS("grpc-encoding")) {
		/* only identity is supported; a compressed message is refused when it arrives */
		st->compressed_encoding = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
	}
	return 0;
}

static int
on_data_chunk_recv_cb(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
    size_t len, void *user_data)
{
	struct conn *c = user_data;
	struct stream *st = nghttp2_session_get_stream_user_data(h2, stream_id);
	char msg[RPC_MESSAGE_MAX];
	int rc;

	/* a refused or answered stream's DATA is dropped, never buffered */
	if (st == NULL || !stream_reading(st))
		return 0;
	rc = grpc_lpm_reader_feed(&st->rd, data, len);
	switch (rc) {
	case 0:
		return 0;
	case BS_ERR_TOO_BIG:
		snprintf(msg, sizeof(msg), "request message larger than the limit of %u bytes",
		    c->srv->lim.max_message_bytes);
		rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		break;
	case BS_ERR_UNSUPPORTED:
		if (st->compressed_encoding)
			rpc_call_refuse(st->call, 200, GRPC_STATUS_UNIMPLEMENTED,
			    "compressed messages are not supported (grpc-encoding identity only)");
		else
			rpc_call_refuse(st->call, 200, GRPC_STATUS_INTERNAL,
			    "compressed flag set without a grpc-encoding");
		break;
	case BS_ERR_NOMEM:
		rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		break;
	default:
		rpc_call_refuse(st->call, 200, GRPC_STATUS_INVALID_ARGUMENT,
		    "malformed gRPC framing (one uncompressed message expected)");
		break;
	}
	grpc_lpm_reader_free(&st->rd);
	return 0;
}

static int
on_frame_recv_cb(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (st == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		stream_headers_done(st);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		stream_request_done(st);
	return 0;
}

static int
on_stream_close_cb(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *user_data)
{
	struct stream *st = nghttp2_session_get_stream_user_data(h2, stream_id);

	if (st == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
	stream_free(st);
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
		bs_hex_encode(c->cert_sha256, 32, sha);
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
		if (c->established && !LIST_EMPTY(&c->streams)) {
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
	struct stream *st;

	if (c->closing)
		return;
	c->closing = 1;
	while ((st = LIST_FIRST(&c->streams)) != NULL) {
		if (c->h2 != NULL)
			nghttp2_session_set_stream_user_data(c->h2, st->stream_id, NULL);
		stream_free(st);
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
	LIST_INIT(&c->streams);
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
    struct rpc_dispatcher *disp, struct server **out)
{
	struct server *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return BS_ERR_NOMEM;
	s->base = base;
	s->ctx = ctx;
	s->lim = *lim;
	s->disp = disp;
	LIST_INIT(&s->conns);
	rpc_dispatcher_on_call_freed(disp, call_freed, s);
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

	snprintf(n, sizeof(n), "%u", rpc_dispatcher_calls(s->disp));
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
	rpc_dispatcher_on_call_freed(s->disp, NULL, NULL);
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	if (s->grace_timer != NULL)
		event_free(s->grace_timer);
	free(s);
}

unsigned
server_active_calls(const struct server *s)
{
	return rpc_dispatcher_calls(s->disp);
}
