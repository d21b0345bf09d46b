/*
 * stream.c - one HTTP/2 request stream of the gRPC transport, driving one
 * call of the RPC layer (rpc/rpc.h): the request headers are checked at the
 * end of the header block, then rpc_call_admit (an unknown method, an
 * unmapped certificate or an ungranted method are answered at once, and
 * none of their DATA is kept); DATA is reassembled with the size cap
 * checked on the length prefix before allocation; END_STREAM hands the
 * message over (a request stream's messages go over one by one as they
 * complete, END_STREAM ends it); the RPC layer's answer goes out as
 * HEADERS, one DATA and trailers, or Trailers-Only (a server stream: HEADERS
 * with the first message, DATA per message, trailers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "common/log.h"
#include "common/wipe_alloc.h"
#include "net/grpc_gzip.h"
#include "net/server_int.h"

/* ---- answers ------------------------------------------------------------- */

#define MAKE_NV(n, v, vlen) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), \
	  NGHTTP2_NV_FLAG_NONE }

/* The trailers that end a stream: grpc-status and, when there is one, grpc-message. */
static int
submit_trailers(nghttp2_session *h2, struct stream *st)
{
	char status[16];
	nghttp2_nv t[2] = { MAKE_NV("grpc-status", status, 0) };
	size_t n = 1;

	t[0].valuelen = (size_t)snprintf(status, sizeof(status), "%d", st->grpc_status);
	if (st->message[0] != '\0')
		t[n++] = (nghttp2_nv)MAKE_NV("grpc-message", st->message, strlen(st->message));
	return nghttp2_submit_trailer(h2, st->stream_id, t, n);
}

static ssize_t
resp_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct stream *st = source->ptr;
	size_t total = GRPC_LPM_HEADER_LEN + st->msg_len, n = 0, k;

	(void)stream_id;

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
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_trailers(h2, st) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/*
 * DATA of a server-streaming answer: what is queued; when nothing is and
 * the answer has come, the trailers; else wait (resumed by the next send).
 */
static ssize_t
stream_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct stream *st = source->ptr;
	size_t n = st->out.len - st->out_off;

	(void)stream_id;
	(void)user_data;
	if (n > length)
		n = length;
	if (n > 0) {
		memcpy(buf, st->out.p + st->out_off, n);
		st->out_off += n;
		if (st->out_off == st->out.len)
			st->out.len = st->out_off = 0;   /* all sent: reuse the buffer */
		return (ssize_t)n;
	}
	if (!st->final)
		return NGHTTP2_ERR_DEFERRED;
	*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	if (submit_trailers(h2, st) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

/* More than this queued for a slow reader: the stream is reset (a watcher that does not read). */
#define STREAM_OUT_MAX (1024 * 1024)

/* The transport's send: one more message of a server-streaming answer. */
static void
stream_send(void *arg, const uint8_t *msg, size_t len)
{
	struct stream *st = arg;
	struct conn *c = st->conn;
	uint8_t prefix[GRPC_LPM_HEADER_LEN];
	nghttp2_nv nva[3];
	nghttp2_data_provider prd;
	int rv;

	if (st->answered || len > UINT32_MAX)
		return;
	if (st->out.len - st->out_off + len > STREAM_OUT_MAX) {
		c->srv->limits.stream_buffer++;
		(void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->stream_id,
		    NGHTTP2_CANCEL);
		conn_flush(c);
		return;
	}
	grpc_lpm_write_header(prefix, (uint32_t)len);
	bytebuf_put(&st->out, prefix, sizeof(prefix));
	bytebuf_put(&st->out, msg, len);
	if (bytebuf_error(&st->out) != 0)
		return;
	if (!st->streaming) {
		st->streaming = 1;
		if (st->request_timer != NULL)
			event_del(st->request_timer);
		nva[0] = (nghttp2_nv)MAKE_NV(":status", "200", 3);
		nva[1] = (nghttp2_nv)MAKE_NV("content-type", "application/grpc+proto",
		    sizeof("application/grpc+proto") - 1);
		nva[2] = (nghttp2_nv)MAKE_NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING,
		    sizeof(GRPC_ACCEPT_ENCODING) - 1);
		prd.source.ptr = st;
		prd.read_callback = stream_read_cb;
		rv = nghttp2_submit_response(c->h2, st->stream_id, nva, 3, &prd);
	} else {
		rv = nghttp2_session_resume_data(c->h2, st->stream_id);
	}
	if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT)
		bs_log(BS_LOG_ERROR, "cannot send a streamed message", "request_id",
		    rpc_call_request_id(st->call), "error", nghttp2_strerror(rv), NULL);
	conn_flush(c); /* may free c and st */
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
	nghttp2_nv nva[6];
	size_t n = 0, zlen = 0;
	nghttp2_data_provider prd;
	int rv;

	st->answered = 1;
	st->grpc_status = a->grpc_status;
	if (st->deadline != NULL)
		event_del(st->deadline);
	if (st->request_timer != NULL)
		event_del(st->request_timer);
	if (st->streaming) {
		/* the headers and messages are out: the trailers follow the last one */
		(void)grpc_message_encode(st->message, sizeof(st->message), a->message);
		st->final = 1;
		(void)nghttp2_session_resume_data(c->h2, st->stream_id);
		conn_flush(c); /* may free c and st */
		return;
	}
	snprintf(hstatus, sizeof(hstatus), "%d", a->http_status);
	nva[n++] = (nghttp2_nv)MAKE_NV(":status", hstatus, strlen(hstatus));
	nva[n++] = (nghttp2_nv)MAKE_NV("content-type", "application/grpc+proto",
	    sizeof("application/grpc+proto") - 1);
	if (a->http_status != 200) {
		rv = nghttp2_submit_response(c->h2, st->stream_id, nva, 1, NULL);
	} else if (a->grpc_status == GRPC_STATUS_OK && !a->no_message) {
		st->msg = a->msg;
		st->msg_len = a->msg_len;
		nva[n++] = (nghttp2_nv)MAKE_NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING,
		    sizeof(GRPC_ACCEPT_ENCODING) - 1);
		/* a gzip'd request that accepts gzip gets a gzip'd answer (else identity) */
		if (st->gzip_reply && grpc_gzip_deflate(a->msg, a->msg_len, &st->zmsg, &zlen) == 0 &&
		    zlen <= UINT32_MAX) {
			st->msg = st->zmsg;
			st->msg_len = zlen;
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-encoding", "gzip", 4);
		}
		grpc_lpm_write_header(st->prefix, (uint32_t)st->msg_len);
		if (st->zmsg != NULL && st->msg == st->zmsg)
			st->prefix[0] = 1;      /* the compressed flag */
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
			nva[n++] = (nghttp2_nv)MAKE_NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING,
			    sizeof(GRPC_ACCEPT_ENCODING) - 1);
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

static const struct rpc_transport h2_transport = { stream_answer, stream_send };

/* ---- stream lifecycle ------------------------------------------------------ */

/* Drops the request bytes the stream holds (decoded, refused or gone). */
static void
stream_release_request(struct stream *st)
{
	grpc_lpm_reader_free(&st->rd);
	st->conn->buffered -= st->buffered;
	st->buffered = 0;
}

/* The stream is gone (closed, reset, or its connection died). */
void
stream_free(struct stream *st)
{
	LIST_REMOVE(st, link);
	if (st->deadline != NULL)
		event_free(st->deadline);
	if (st->request_timer != NULL)
		event_free(st->request_timer);
	stream_release_request(st);
	rpc_call_detach(st->call);
	bs_wipe_free(st->zmsg);
	bytebuf_free(&st->out);
	free(st);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	rpc_call_deadline(st->call); /* the answer may free st */
}

/*
 * The request did not arrive in full within request_timeout_ms of its
 * HEADERS (a client that sent part of a message and stopped): the call is
 * refused, which also resets the stream.
 */
static void
request_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	char msg[RPC_MESSAGE_MAX];

	if (st->request_done || st->answered)
		return;
	snprintf(msg, sizeof(msg), "request not received in full within %u ms",
	    st->conn->srv->lim.request_timeout_ms);
	st->conn->srv->limits.request_timeout_ms++;
	bs_log(BS_LOG_INFO, "request timed out", "peer", st->conn->peer, "identity",
	    st->conn->identity, "request_id", rpc_call_request_id(st->call), NULL);
	stream_release_request(st);
	rpc_call_refuse(st->call, 200, GRPC_STATUS_DEADLINE_EXCEEDED, msg); /* may free st */
}

static struct stream *
stream_new(struct conn *c, int32_t stream_id)
{
	struct server *s = c->srv;
	struct rpc_peer peer = { c->identity, c->cert_sha256, c->peer };
	struct stream *st;
	struct timeval tv = { (time_t)(s->lim.request_timeout_ms / 1000),
	    (suseconds_t)(s->lim.request_timeout_ms % 1000) * 1000 };

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->conn = c;
	st->stream_id = stream_id;
	st->request_timer = evtimer_new(s->base, request_timeout_cb, st);
	if (st->request_timer == NULL || evtimer_add(st->request_timer, &tv) != 0) {
		if (st->request_timer != NULL)
			event_free(st->request_timer);
		free(st);
		return NULL;
	}
	if (rpc_call_new(s->disp, &peer, &h2_transport, st, &st->call) != 0) {
		event_free(st->request_timer);
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
		s->limits.max_header_list_bytes++;
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
	st->req_stream = rpc_call_streams_requests(st->call);
	if (st->have_timeout) {
		rpc_call_set_deadline(st->call, st->timeout_us);
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

/*
 * Hands the complete message the reader holds to the RPC layer (inflated
 * first when it came compressed), then drops the raw bytes.
 */
static void
stream_deliver(struct stream *st)
{
	const uint8_t *msg = NULL;
	size_t len = 0;
	uint8_t *plain = NULL;
	size_t plen = 0;
	int rc;

	if (grpc_lpm_reader_finish(&st->rd, &msg, &len) != 0) {
		stream_release_request(st);
		rpc_call_refuse(st->call, 200, GRPC_STATUS_INVALID_ARGUMENT,
		    "request message truncated (stream ended before the announced length)");
		return;
	}
	if (!st->rd.compressed) {
		rpc_call_request(st->call, msg, len);
		stream_release_request(st); /* decoded: the raw bytes are not needed any more */
		return;
	}
	rc = grpc_gzip_inflate(msg, len, st->conn->srv->lim.max_message_bytes, &plain, &plen);
	stream_release_request(st);
	if (rc != 0) {
		char why[RPC_MESSAGE_MAX];

		if (rc == BS_ERR_TOO_BIG)
			st->conn->srv->limits.max_message_bytes++;
		snprintf(why, sizeof(why), rc == BS_ERR_TOO_BIG ? "request message larger "
		    "than the limit of %u bytes once decompressed" : rc == BS_ERR_NOMEM ?
		    "out of memory" : "the gzip-compressed request cannot be decompressed",
		    st->conn->srv->lim.max_message_bytes);
		rpc_call_refuse(st->call, 200, rc == BS_ERR_INVALID ? GRPC_STATUS_INTERNAL :
		    GRPC_STATUS_RESOURCE_EXHAUSTED, why);
		return;
	}
	st->gzip_reply = st->accepts_gzip;
	rpc_call_request(st->call, plain, plen);
	bs_wipe_free(plain);
}

/*
 * The client finished sending: a unary call's message goes to the RPC
 * layer; a request stream ends (refused if it stopped inside a message).
 */
static void
stream_request_done(struct stream *st)
{
	if (!stream_reading(st))
		return;
	st->request_done = 1;
	if (st->request_timer != NULL)
		event_del(st->request_timer);
	if (!st->req_stream) {
		stream_deliver(st);
		return;
	}
	if (st->rd.hdr_have > 0) {
		stream_release_request(st);
		rpc_call_refuse(st->call, 200, GRPC_STATUS_INVALID_ARGUMENT,
		    "request message truncated (stream ended before the announced length)");
		return;
	}
	rpc_call_request_end(st->call);
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
	} else if (HDR_IS("x-boltseal-otp")) {
		rpc_call_set_otp(st->call, (const char *)value, valuelen);
	} else if (HDR_IS("grpc-encoding")) {
		/* identity and gzip; a message compressed otherwise is refused when it arrives */
		if (valuelen == 4 && memcmp(value, "gzip", 4) == 0)
			st->rd.allow_compressed = 1;
		else
			st->compressed_encoding = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
	} else if (HDR_IS("grpc-accept-encoding")) {
		st->accepts_gzip = grpc_accepts_gzip((const char *)value, valuelen);
	}
	return 0;
}

/*
 * Charges the bytes the reader holds to the connection's buffer cap: 0, or
 * the call was refused (over the cap).
 */
static int
stream_charge(struct stream *st)
{
	struct conn *c = st->conn;
	char msg[RPC_MESSAGE_MAX];
	/* charged as allocated: the whole announced body as soon as its prefix is in */
	size_t now = st->rd.hdr_have + (st->rd.body != NULL ? st->rd.body_len : 0);

	if (now > st->buffered && now - st->buffered > c->srv->lim.max_buffered_request_bytes -
	    c->buffered) {
		snprintf(msg, sizeof(msg), "too many request bytes buffered on this connection "
		    "(limit %u)", c->srv->lim.max_buffered_request_bytes);
		c->srv->limits.max_buffered_request_bytes++;
		stream_release_request(st);
		rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return -1;
	}
	c->buffered = c->buffered - st->buffered + now;
	st->buffered = now;
	return 0;
}

/* The reader refused the DATA (rc from grpc_lpm_reader_feed*): so is the call. */
static void
stream_framing_error(struct stream *st, int rc)
{
	char msg[RPC_MESSAGE_MAX];

	switch (rc) {
	case BS_ERR_TOO_BIG:
		st->conn->srv->limits.max_message_bytes++;
		snprintf(msg, sizeof(msg), "request message larger than the limit of %u bytes",
		    st->conn->srv->lim.max_message_bytes);
		rpc_call_refuse(st->call, 200, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		break;
	case BS_ERR_UNSUPPORTED:
		if (st->compressed_encoding)
			rpc_call_refuse(st->call, 200, GRPC_STATUS_UNIMPLEMENTED,
			    "this grpc-encoding is not supported (identity and gzip are)");
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
	stream_release_request(st);
}

/*
 * DATA of a request stream: each message goes to the RPC layer as soon as
 * it is complete (its handler may answer before the next arrives).
 */
static void
stream_feed_messages(struct stream *st, const uint8_t *data, size_t len)
{
	size_t used;
	int rc;

	while (len > 0 && stream_reading(st)) {
		if ((rc = grpc_lpm_reader_feed_some(&st->rd, data, len, &used)) != 0) {
			stream_framing_error(st, rc);
			return;
		}
		if (stream_charge(st) != 0 || !st->rd.complete)
			return;
		data += used;
		len -= used;
		/* a whole message came: the stream may now idle between messages */
		if (st->request_timer != NULL)
			event_del(st->request_timer);
		stream_deliver(st);
		grpc_lpm_reader_next(&st->rd);
	}
}

static int
on_data_chunk_recv_cb(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
    size_t len, void *user_data)
{
	struct stream *st = nghttp2_session_get_stream_user_data(h2, stream_id);
	int rc;

	/* a refused or answered stream's DATA is dropped, never buffered */
	if (st == NULL || !stream_reading(st))
		return 0;
	if (st->req_stream) {
		stream_feed_messages(st, data, len);
		return 0;
	}
	if ((rc = grpc_lpm_reader_feed(&st->rd, data, len)) != 0)
		stream_framing_error(st, rc);
	else
		(void)stream_charge(st);
	return 0;
}

/*
 * Our END_STREAM went out before the client finished its request (a
 * refusal, a timeout): reset the stream with NO_ERROR (RFC 9113, 8.1) so
 * that it does not stay half-open, holding a stream slot, for DATA nobody
 * will read.
 */
static int
on_frame_send_cb(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct conn *c = user_data;

	/* a GOAWAY nghttp2 sent on its own (a connection error the peer caused): say why */
	if (frame->hd.type == NGHTTP2_GOAWAY && !c->goaway && !c->closing &&
	    frame->goaway.error_code != NGHTTP2_NO_ERROR)
		bs_log(BS_LOG_WARN, "HTTP/2 connection error: GOAWAY sent", "peer", c->peer,
		    "identity", c->identity, "error", nghttp2_http2_strerror(frame->goaway.error_code),
		    NULL);
	/* answers moving (not PING or SETTINGS acks): what the write stall check watches */
	if (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)
		c->answer_bytes += 9 + frame->hd.length;   /* 9: the frame header */
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if (nghttp2_session_get_stream_remote_close(h2, frame->hd.stream_id) == 0)
		(void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
		    NGHTTP2_NO_ERROR);
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

void
stream_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send_cb);
}
