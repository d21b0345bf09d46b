/*
 * client.c - the boltseal gRPC client library (include/boltseal/client.h).
 *
 * One TCP connection, mutual TLS 1.3 (OpenSSL), ALPN "h2", one nghttp2 client
 * session. Unary gRPC calls only: each call sends HEADERS, one
 * Length-Prefixed-Message and END_STREAM, and collects DATA and trailers.
 * Several calls may be in flight at once (bs_client_start / bs_client_run);
 * bs_client_unary is start + run until that call completes.
 *
 * I/O model: the socket is non-blocking; bs_client_run polls it, feeds
 * everything SSL_read returns to nghttp2_session_mem_recv, and flushes what
 * nghttp2 produces through a write buffer (send_callback appends to it,
 * SSL_write drains it). Completions are queued inside nghttp2 callbacks and
 * the user callbacks run afterwards, so a callback may start a new call.
 *
 * Per call the hot path allocates nothing once warm: call records, request
 * and response buffers are recycled through a free list. The library never
 * prints; errors go into err buffers and results.
 *
 * Timeouts: timeout_ms is sent as grpc-timeout on every call, so the server
 * reports DEADLINE_EXCEEDED itself; the transport gives up (BS_CLIENT_ERR_TIMEOUT)
 * when the socket makes no progress for timeout_ms plus a 1 s grace, so that
 * the server's own DEADLINE_EXCEEDED normally wins the race.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/grpc_frame.h"
#include "boltseal/client.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 30000
#define CLIENT_IO_GRACE_MS 1000
#define CLIENT_MAX_RESPONSE (4u * 1024u * 1024u)  /* gRPC default receive cap */
#define CLIENT_MAX_GRPC_MESSAGE 8192              /* bytes of grpc-message kept */
#define CLIENT_LPM_HDR GRPC_LPM_HEADER_LEN
#define CLIENT_RBUF_SIZE 32768
#define CLIENT_WBUF_SIZE 65536
#define CLIENT_STREAM_WINDOW (1 << 20)          /* 1 MiB per stream */
#define CLIENT_CONN_WINDOW (16 << 20)           /* 16 MiB per connection */
#define CLIENT_USER_AGENT "boltseal-client/0.1"

/* gRPC status values used here (doc/statuscodes.md). */
#define ST_OK 0
#define ST_CANCELLED 1
#define ST_UNKNOWN 2
#define ST_RESOURCE_EXHAUSTED 8
#define ST_PERMISSION_DENIED 7
#define ST_UNIMPLEMENTED 12
#define ST_INTERNAL 13
#define ST_UNAVAILABLE 14
#define ST_UNAUTHENTICATED 16

struct call {
	struct call *next;        /* free list or completion queue */
	struct call *all_next;    /* list of calls in flight */
	struct call *all_prev;
	int32_t stream_id;
	bs_call_cb cb;
	void *arg;
	/* request: LPM prefix + message */
	uint8_t *req;
	size_t req_len;
	size_t req_cap;
	size_t req_off;
	/* response DATA, raw (prefix included) */
	uint8_t *data;
	size_t data_len;
	size_t data_cap;
	int too_big;
	int http_status;
	int have_grpc_status;
	int grpc_status;
	char *grpc_message;
	/* filled at completion */
	struct bs_call_result res;
};

struct bs_client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	nghttp2_session *h2;
	int timeout_ms;
	int io_timeout_ms;
	int broken;               /* BS_CLIENT_ERR_* once the connection is unusable */
	int goaway;
	int got_frame;            /* any frame received (else a close hints at a refused cert) */
	char broken_msg[256];
	char authority[300];
	char grpc_timeout[16];
	size_t pending;
	struct call *free_calls;
	struct call *all;         /* in flight */
	struct call *done_head;   /* completed, callback not yet run */
	struct call *done_tail;
	uint8_t *wbuf;
	size_t wlen;
	size_t woff;
	size_t wcap;
	int want_pollout;         /* SSL needs the socket writable */
	uint8_t rbuf[CLIENT_RBUF_SIZE];
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Appends the OpenSSL error queue's last reason to buf (and clears the queue). */
static void
ssl_reason(char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0) {
		snprintf(buf, len, "unknown TLS error");
		return;
	}
	ERR_error_string_n(last, buf, len);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
remaining_ms(int64_t deadline)
{
	int64_t r = deadline - now_ms();

	if (r < 0)
		return 0;
	if (r > INT_MAX)
		return INT_MAX;
	return (int)r;
}

/* ---- small wire helpers -------------------------------------------------- */

static int
hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * Percent-decodes a grpc-message value (wire-formats.md 1.3) into a new
 * NUL-terminated string; never fails on bad escapes (they stay as they are),
 * and leaves "%00" encoded so the result stays a C string. Caps at
 * CLIENT_MAX_GRPC_MESSAGE input bytes. Returns NULL only on allocation failure.
 */
static char *
percent_decode(const uint8_t *v, size_t len)
{
	char *out;
	size_t i, o = 0;

	if (len > CLIENT_MAX_GRPC_MESSAGE)
		len = CLIENT_MAX_GRPC_MESSAGE;
	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (v[i] == '%' && i + 2 < len) {
			int hi = hexval(v[i + 1]), lo = hexval(v[i + 2]);

			if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
				out[o++] = (char)(hi << 4 | lo);
				i += 2;
				continue;
			}
		}
		out[o++] = (char)v[i];
	}
	out[o] = '\0';
	return out;
}

/* Parses a grpc-status value: 1-5 decimal digits. Returns -1 if malformed. */
static int
parse_status(const uint8_t *v, size_t len)
{
	size_t i;
	int n = 0;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

/* Client-side mapping of an HTTP status without grpc-status (1.3). */
static int
http_to_grpc(int http)
{
	switch (http) {
	case 400:
	case 431:
		return ST_INTERNAL;
	case 401:
		return ST_UNAUTHENTICATED;
	case 403:
		return ST_PERMISSION_DENIED;
	case 404:
		return ST_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return ST_UNAVAILABLE;
	default:
		return ST_UNKNOWN;
	}
}

/* RST_STREAM error code received -> gRPC status (1.5); -1 for STREAM_CLOSED. */
static int
rst_to_grpc(uint32_t code)
{
	switch (code) {
	case NGHTTP2_STREAM_CLOSED:
		return -1;
	case NGHTTP2_REFUSED_STREAM:
		return ST_UNAVAILABLE;
	case NGHTTP2_CANCEL:
		return ST_CANCELLED;
	case NGHTTP2_ENHANCE_YOUR_CALM:
		return ST_RESOURCE_EXHAUSTED;
	case NGHTTP2_INADEQUATE_SECURITY:
		return ST_PERMISSION_DENIED;
	default:
		return ST_INTERNAL;
	}
}

/* ---- call records ------------------------------------------------------------ */

static struct call *
call_get(bs_client *c)
{
	struct call *k = c->free_calls;

	if (k != NULL) {
		c->free_calls = k->next;
	} else if ((k = calloc(1, sizeof(*k))) == NULL) {
		return NULL;
	}
	k->next = k->all_next = k->all_prev = NULL;
	k->stream_id = 0;
	k->cb = NULL;
	k->arg = NULL;
	k->req_len = k->req_off = 0;
	k->data_len = 0;
	k->too_big = 0;
	k->http_status = 0;
	k->have_grpc_status = 0;
	k->grpc_status = -1;
	k->grpc_message = NULL;
	memset(&k->res, 0, sizeof(k->res));
	return k;
}

static void
call_put(bs_client *c, struct call *k)
{
	free(k->grpc_message);
	k->grpc_message = NULL;
	free(k->res.grpc_message);
	k->res.grpc_message = NULL;
	/* drop unusually large buffers instead of keeping them around */
	if (k->data_cap > 65536) {
		free(k->data);
		k->data = NULL;
		k->data_cap = 0;
	}
	if (k->req_cap > 65536) {
		free(k->req);
		k->req = NULL;
		k->req_cap = 0;
	}
	k->next = c->free_calls;
	c->free_calls = k;
}

static void
call_destroy(struct call *k)
{
	free(k->req);
	free(k->data);
	free(k->grpc_message);
	free(k->res.grpc_message);
	free(k);
}

static void
all_link(bs_client *c, struct call *k)
{
	k->all_prev = NULL;
	k->all_next = c->all;
	if (c->all != NULL)
		c->all->all_prev = k;
	c->all = k;
}

static void
all_unlink(bs_client *c, struct call *k)
{
	if (k->all_prev != NULL)
		k->all_prev->all_next = k->all_next;
	else
		c->all = k->all_next;
	if (k->all_next != NULL)
		k->all_next->all_prev = k->all_prev;
	k->all_next = k->all_prev = NULL;
}

/* Moves a finished call (res filled) from the in-flight list to the completion queue. */
static void
call_complete(bs_client *c, struct call *k)
{
	all_unlink(c, k);
	k->next = NULL;
	if (c->done_tail != NULL)
		c->done_tail->next = k;
	else
		c->done_head = k;
	c->done_tail = k;
}

static void
call_fail(struct call *k, int status, const char *msg)
{
	k->res.grpc_status = status;
	k->res.grpc_message = msg != NULL ? strdup(msg) : NULL;
	k->res.resp = NULL;
	k->res.resp_len = 0;
}

/*
 * Builds k->res from what the stream received. On OK the response message
 * must be exactly one uncompressed LPM; res.resp then points into k->data
 * (owned by the call record).
 */
static void
call_finish(struct call *k, uint32_t error_code, int goaway)
{
	char msg[96];
	uint32_t mlen;

	if (k->too_big) {
		call_fail(k, ST_RESOURCE_EXHAUSTED, "response message larger than 4 MiB");
		return;
	}
	if (!k->have_grpc_status) {
		if (error_code == NGHTTP2_REFUSED_STREAM && goaway) {
			call_fail(k, ST_UNAVAILABLE, "server sent GOAWAY before handling the call");
		} else if (error_code != NGHTTP2_NO_ERROR) {
			snprintf(msg, sizeof(msg), "stream reset by server (HTTP/2 error %u)",
			    (unsigned)error_code);
			call_fail(k, rst_to_grpc(error_code), msg);
		} else {
			snprintf(msg, sizeof(msg), "response without grpc-status (HTTP %d)",
			    k->http_status);
			call_fail(k, http_to_grpc(k->http_status), msg);
		}
		return;
	}
	k->res.grpc_status = k->grpc_status;
	k->res.grpc_message = k->grpc_message;
	k->grpc_message = NULL;
	if (k->grpc_status != ST_OK)
		return;
	if (k->data_len < CLIENT_LPM_HDR) {
		free(k->res.grpc_message);
		call_fail(k, ST_INTERNAL, "OK status without a response message");
		return;
	}
	mlen = (uint32_t)k->data[1] << 24 | (uint32_t)k->data[2] << 16 |
	    (uint32_t)k->data[3] << 8 | (uint32_t)k->data[4];
	if (k->data[0] != 0) {
		free(k->res.grpc_message);
		call_fail(k, ST_INTERNAL, "compressed response message (not negotiated)");
		return;
	}
	if ((size_t)mlen != k->data_len - CLIENT_LPM_HDR) {
		free(k->res.grpc_message);
		call_fail(k, ST_INTERNAL, "response message length does not match its prefix");
		return;
	}
	k->res.resp = k->data + CLIENT_LPM_HDR;
	k->res.resp_len = mlen;
}

/* ---- nghttp2 callbacks ------------------------------------------------------ */

static ssize_t
cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
	bs_client *c = ud;
	uint8_t *nb;

	if (c->woff > 0 && c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->wlen + len > c->wcap) {
		if (c->wlen > 0)
			return NGHTTP2_ERR_WOULDBLOCK;  /* drain first */
		if ((nb = realloc(c->wbuf, len)) == NULL)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		c->wbuf = nb;
		c->wcap = len;
	}
	memcpy(c->wbuf + c->wlen, data, len);
	c->wlen += len;
	return (ssize_t)len;
}

static int
cb_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	return 0;
}

static int
cb_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct call *k;
	int v;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (k == NULL)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		v = parse_status(value, valuelen);
		k->http_status = v < 0 ? 0 : v;
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		v = parse_status(value, valuelen);
		k->have_grpc_status = 1;
		k->grpc_status = v < 0 ? ST_UNKNOWN : v;
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		free(k->grpc_message);
		k->grpc_message = percent_decode(value, valuelen);
	}
	return 0;
}

static int
cb_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
    size_t len, void *ud)
{
	struct call *k;
	size_t need, ncap;
	uint8_t *nb;

	k = nghttp2_session_get_stream_user_data(s, stream_id);
	if (k == NULL || k->too_big)
		return 0;
	need = k->data_len + len;
	if (need > (size_t)CLIENT_MAX_RESPONSE + CLIENT_LPM_HDR) {
		k->too_big = 1;
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
		return 0;
	}
	if (need > k->data_cap) {
		ncap = k->data_cap ? k->data_cap : 1024;
		while (ncap < need)
			ncap *= 2;
		if ((nb = realloc(k->data, ncap)) == NULL) {
			k->too_big = 1;  /* reported as RESOURCE_EXHAUSTED */
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
			return 0;
		}
		k->data = nb;
		k->data_cap = ncap;
	}
	memcpy(k->data + k->data_len, data, len);
	k->data_len += len;
	return 0;
}

static int
cb_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	bs_client *c = ud;

	if (f->hd.type == NGHTTP2_GOAWAY)
		c->goaway = 1;
	c->got_frame = 1;
	return 0;
}

static int
cb_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
	bs_client *c = ud;
	struct call *k;

	k = nghttp2_session_get_stream_user_data(s, stream_id);
	if (k == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(s, stream_id, NULL);
	call_finish(k, error_code, c->goaway);
	call_complete(c, k);
	return 0;
}

static ssize_t
cb_read_req(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
    uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
	struct call *k = src->ptr;
	size_t n = k->req_len - k->req_off;

	if (n > len)
		n = len;
	memcpy(buf, k->req + k->req_off, n);
	k->req_off += n;
	if (k->req_off == k->req_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* ---- I/O ----------------------------------------------------------------------- */

/*
 * Marks the connection broken and fails every in-flight call with status -1.
 * Keeps the first error.
 */
static void
conn_break(bs_client *c, int code, const char *msg)
{
	struct call *k;

	if (!c->broken) {
		c->broken = code;
		snprintf(c->broken_msg, sizeof(c->broken_msg), "%s", msg);
	}
	while ((k = c->all) != NULL) {
		if (k->stream_id > 0 && c->h2 != NULL)
			nghttp2_session_set_stream_user_data(c->h2, k->stream_id, NULL);
		free(k->res.grpc_message);
		call_fail(k, -1, c->broken_msg);
		call_complete(c, k);
	}
}

/*
 * Writes what nghttp2 has to send. Returns 0 (possibly with data left, then
 * c->want_pollout or more buffered) or a BS_CLIENT_ERR_*.
 */
static int
conn_flush(bs_client *c)
{
	char reason[160];
	int n, e, rv;

	c->want_pollout = 0;
	for (;;) {
		if (c->woff < c->wlen) {
			ERR_clear_error();
			n = SSL_write(c->ssl, c->wbuf + c->woff,
			    (int)(c->wlen - c->woff > INT_MAX ? INT_MAX : c->wlen - c->woff));
			if (n > 0) {
				c->woff += (size_t)n;
				continue;
			}
			e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				c->want_pollout = 1;
				return 0;
			}
			if (e == SSL_ERROR_SYSCALL)
				snprintf(reason, sizeof(reason), "write: %s%s",
				    errno ? strerror(errno) : "connection closed",
				    c->got_frame ? "" : " (client certificate refused?)");
			else
				ssl_reason(reason, sizeof(reason));
			conn_break(c, BS_CLIENT_ERR_HTTP2, reason);
			return BS_CLIENT_ERR_HTTP2;
		}
		c->woff = c->wlen = 0;
		if (!nghttp2_session_want_write(c->h2))
			return 0;
		rv = nghttp2_session_send(c->h2);
		if (rv != 0) {
			snprintf(reason, sizeof(reason), "HTTP/2: %s", nghttp2_strerror(rv));
			conn_break(c, BS_CLIENT_ERR_HTTP2, reason);
			return BS_CLIENT_ERR_HTTP2;
		}
		if (c->wlen == 0)
			return 0;
	}
}

/* Reads everything the socket has and feeds it to nghttp2. */
static int
conn_read(bs_client *c)
{
	char reason[160];
	ssize_t rv;
	int n, e;

	for (;;) {
		ERR_clear_error();
		n = SSL_read(c->ssl, c->rbuf, (int)sizeof(c->rbuf));
		if (n > 0) {
			rv = nghttp2_session_mem_recv(c->h2, c->rbuf, (size_t)n);
			if (rv < 0) {
				snprintf(reason, sizeof(reason), "HTTP/2: %s",
				    nghttp2_strerror((int)rv));
				conn_break(c, BS_CLIENT_ERR_HTTP2, reason);
				return BS_CLIENT_ERR_HTTP2;
			}
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->want_pollout = 1;
			return 0;
		}
		if ((e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) &&
		    !c->got_frame)
			snprintf(reason, sizeof(reason), "connection closed by server before "
			    "any HTTP/2 frame (client certificate refused?)");
		else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
			snprintf(reason, sizeof(reason), "connection closed by server");
		else if (e == SSL_ERROR_SYSCALL)
			snprintf(reason, sizeof(reason), "read: %s", strerror(errno));
		else
			ssl_reason(reason, sizeof(reason));
		conn_break(c, BS_CLIENT_ERR_HTTP2, reason);
		return BS_CLIENT_ERR_HTTP2;
	}
}

/* Runs the callbacks of completed calls; returns how many completed. */
static size_t
dispatch_done(bs_client *c)
{
	struct call *k;
	size_t n = 0;

	while ((k = c->done_head) != NULL) {
		c->done_head = k->next;
		if (c->done_head == NULL)
			c->done_tail = NULL;
		c->pending--;
		n++;
		if (k->cb != NULL)
			k->cb(k->arg, &k->res);
		call_put(c, k);
	}
	return n;
}

/* ---- socket BIO ----------------------------------------------------------------
 * OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the
 * server has gone; a library must not kill its host, so this BIO uses
 * send(MSG_NOSIGNAL) instead. Otherwise it behaves like BIO_s_socket on a
 * non-blocking descriptor (the BIO does not own the descriptor).
 */

static BIO_METHOD *nosig_meth;

static int
nosig_write(BIO *b, const char *buf, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	do {
		n = send((int)BIO_get_fd(b, NULL), buf, (size_t)len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
nosig_read(BIO *b, char *buf, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (buf == NULL || len <= 0)
		return 0;
	do {
		n = recv((int)BIO_get_fd(b, NULL), buf, (size_t)len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	if (n == 0)
		errno = 0;
	return (int)n;
}

static int
nosig_puts(BIO *b, const char *str)
{
	return nosig_write(b, str, (int)strlen(str));
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	switch (cmd) {
	case BIO_C_SET_FD:
		BIO_set_data(b, (void *)(intptr_t)(*(int *)ptr));
		BIO_set_init(b, 1);
		return 1;
	case BIO_C_GET_FD:
		if (!BIO_get_init(b))
			return -1;
		if (ptr != NULL)
			*(int *)ptr = (int)(intptr_t)BIO_get_data(b);
		return (long)(intptr_t)BIO_get_data(b);
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP:
		return 1;
	default:
		return 0;
	}
}

static int
nosig_create(BIO *b)
{
	BIO_set_data(b, (void *)(intptr_t)-1);
	BIO_set_init(b, 0);
	return 1;
}

static int
nosig_destroy(BIO *b)
{
	return 1;
}

static void
nosig_meth_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
	    BIO_TYPE_DESCRIPTOR, "boltseal-socket");

	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, nosig_write) != 1 || BIO_meth_set_read(m, nosig_read) != 1 ||
	    BIO_meth_set_puts(m, nosig_puts) != 1 || BIO_meth_set_ctrl(m, nosig_ctrl) != 1 ||
	    BIO_meth_set_create(m, nosig_create) != 1 ||
	    BIO_meth_set_destroy(m, nosig_destroy) != 1) {
		BIO_meth_free(m);
		return;
	}
	nosig_meth = m;  /* kept for the life of the process */
}

/* Returns a new BIO over fd (not owned), or NULL. Thread-safe. */
static BIO *
nosig_bio_new(int fd)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	(void)pthread_once(&once, nosig_meth_init);
	if (nosig_meth == NULL || (b = BIO_new(nosig_meth)) == NULL)
		return NULL;
	BIO_set_fd(b, fd, BIO_NOCLOSE);
	return b;
}

/* ---- connect --------------------------------------------------------------------- */

static int
tcp_connect(const struct bs_client_opts *o, int64_t deadline, int *fd_out, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd pfd;
	socklen_t sl;
	int fd = -1, rv, soerr = 0, one = 1, ret = BS_CLIENT_ERR_CONNECT;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rv = getaddrinfo(o->host, o->port, &hints, &res);
	if (rv != 0) {
		seterr(err, errlen, "cannot resolve %s port %s: %s", o->host, o->port,
		    gai_strerror(rv));
		goto out;
	}
	seterr(err, errlen, "cannot connect to %s port %s", o->host, o->port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			soerr = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		soerr = errno;
		if (soerr == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			do {
				rv = poll(&pfd, 1, remaining_ms(deadline));
			} while (rv < 0 && errno == EINTR);
			if (rv == 0) {
				soerr = ETIMEDOUT;
			} else if (rv < 0) {
				soerr = errno;
			} else {
				sl = sizeof(soerr);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
					soerr = errno;
				if (soerr == 0)
					break;
			}
		}
		close(fd);
		fd = -1;
		if (soerr == ETIMEDOUT && remaining_ms(deadline) == 0)
			break;
	}
	if (fd < 0) {
		if (soerr == ETIMEDOUT) {
			seterr(err, errlen, "connect to %s port %s: timed out", o->host, o->port);
			ret = BS_CLIENT_ERR_TIMEOUT;
		} else {
			seterr(err, errlen, "connect to %s port %s: %s", o->host, o->port,
			    strerror(soerr));
		}
		goto out;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd_out = fd;
	ret = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return ret;
}

static int
is_ip_literal(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

static int
tls_setup(bs_client *c, const struct bs_client_opts *o, const char *name, char *err,
    size_t errlen)
{
	static const unsigned char alpn[] = { 2, 'h', '2' };
	char reason[200];
	X509_VERIFY_PARAM *vp;
	BIO *bio;

	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c->ctx, TLS1_3_VERSION) != 1)
		goto fail;
	if (o->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1) {
			ssl_reason(reason, sizeof(reason));
			seterr(err, errlen, "cannot load CA file %s: %s", o->ca_file, reason);
			return BS_CLIENT_ERR_TLS;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		goto fail;
	}
	if (o->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1) {
			ssl_reason(reason, sizeof(reason));
			seterr(err, errlen, "cannot load client certificate %s: %s", o->cert_file,
			    reason);
			return BS_CLIENT_ERR_TLS;
		}
		if (SSL_CTX_use_PrivateKey_file(c->ctx,
		        o->key_file != NULL ? o->key_file : o->cert_file, SSL_FILETYPE_PEM) != 1) {
			ssl_reason(reason, sizeof(reason));
			seterr(err, errlen, "cannot load client key %s: %s",
			    o->key_file != NULL ? o->key_file : o->cert_file, reason);
			return BS_CLIENT_ERR_TLS;
		}
		if (SSL_CTX_check_private_key(c->ctx) != 1) {
			ERR_clear_error();
			seterr(err, errlen, "client key does not match the client certificate");
			return BS_CLIENT_ERR_TLS;
		}
	} else if (o->key_file != NULL) {
		seterr(err, errlen, "client key given without a client certificate");
		return BS_CLIENT_ERR_ARG;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof(alpn)) != 0)
		goto fail;
	if ((c->ssl = SSL_new(c->ctx)) == NULL)
		goto fail;
	if ((bio = nosig_bio_new(c->fd)) == NULL)
		goto fail;
	SSL_set_bio(c->ssl, bio, bio);
	if (is_ip_literal(name)) {
		vp = SSL_get0_param(c->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			goto fail;
	} else {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(c->ssl, name) != 1 ||
		    SSL_set_tlsext_host_name(c->ssl, name) != 1)
			goto fail;
	}
	return 0;
fail:
	ssl_reason(reason, sizeof(reason));
	seterr(err, errlen, "TLS setup failed: %s", reason);
	return BS_CLIENT_ERR_TLS;
}

static int
tls_handshake(bs_client *c, const char *name, int64_t deadline, char *err, size_t errlen)
{
	char reason[200];
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	struct pollfd pfd;
	long vr;
	int n, e, rv;

	for (;;) {
		ERR_clear_error();
		n = SSL_connect(c->ssl);
		if (n == 1)
			break;
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			pfd.fd = c->fd;
			pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
			pfd.revents = 0;
			do {
				rv = poll(&pfd, 1, remaining_ms(deadline));
			} while (rv < 0 && errno == EINTR);
			if (rv == 0) {
				seterr(err, errlen, "TLS handshake with %s timed out", name);
				return BS_CLIENT_ERR_TIMEOUT;
			}
			if (rv < 0) {
				seterr(err, errlen, "poll: %s", strerror(errno));
				return BS_CLIENT_ERR_TLS;
			}
			continue;
		}
		vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK) {
			ERR_clear_error();
			seterr(err, errlen, "server certificate verification failed for %s: %s",
			    name, X509_verify_cert_error_string(vr));
		} else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			seterr(err, errlen, "TLS handshake with %s failed: %s", name,
			    errno ? strerror(errno) : "connection closed by server");
		} else {
			ssl_reason(reason, sizeof(reason));
			seterr(err, errlen, "TLS handshake with %s failed: %s", name, reason);
		}
		return BS_CLIENT_ERR_TLS;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK || SSL_get0_peer_certificate(c->ssl) == NULL) {
		seterr(err, errlen, "server certificate not verified");
		return BS_CLIENT_ERR_TLS;
	}
	if (SSL_version(c->ssl) != TLS1_3_VERSION) {
		seterr(err, errlen, "server did not negotiate TLS 1.3");
		return BS_CLIENT_ERR_TLS;
	}
	SSL_get0_alpn_selected(c->ssl, &proto, &plen);
	if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
		seterr(err, errlen, "server did not select ALPN protocol h2");
		return BS_CLIENT_ERR_TLS;
	}
	return 0;
}

static int
h2_setup(bs_client *c, char *err, size_t errlen)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_settings_entry iv[3];
	int rv, ret = BS_CLIENT_ERR_NOMEM;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		goto out;
	nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
	if (nghttp2_session_client_new(&c->h2, cbs, c) != 0)
		goto out;
	iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
	iv[0].value = 0;
	iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[1].value = CLIENT_STREAM_WINDOW;
	iv[2].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
	iv[2].value = 16384;
	rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 3);
	if (rv == 0)
		rv = nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
		    CLIENT_CONN_WINDOW);
	if (rv != 0) {
		seterr(err, errlen, "HTTP/2 setup: %s", nghttp2_strerror(rv));
		ret = BS_CLIENT_ERR_HTTP2;
		goto out;
	}
	if ((rv = conn_flush(c)) != 0) {
		seterr(err, errlen, "%s", c->broken_msg);
		ret = rv;
		goto out;
	}
	ret = 0;
out:
	if (ret == BS_CLIENT_ERR_NOMEM)
		seterr(err, errlen, "out of memory");
	nghttp2_session_callbacks_del(cbs);
	return ret;
}

int
bs_client_connect(const struct bs_client_opts *o, bs_client **out, char *err, size_t errlen)
{
	bs_client *c = NULL;
	const char *name;
	int64_t deadline;
	int ret;

	if (o == NULL || out == NULL || o->host == NULL || o->port == NULL || o->host[0] == '\0' ||
	    o->port[0] == '\0' || o->timeout_ms < 0) {
		seterr(err, errlen, "invalid client options");
		return BS_CLIENT_ERR_ARG;
	}
	name = o->server_name != NULL && o->server_name[0] != '\0' ? o->server_name : o->host;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		seterr(err, errlen, "out of memory");
		return BS_CLIENT_ERR_NOMEM;
	}
	c->fd = -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->io_timeout_ms = c->timeout_ms > INT_MAX - CLIENT_IO_GRACE_MS ? INT_MAX :
	    c->timeout_ms + CLIENT_IO_GRACE_MS;
	if (c->timeout_ms <= 99999999)
		snprintf(c->grpc_timeout, sizeof(c->grpc_timeout), "%dm", c->timeout_ms);
	else
		snprintf(c->grpc_timeout, sizeof(c->grpc_timeout), "%dS",
		    (c->timeout_ms + 999) / 1000);
	if (strchr(name, ':') != NULL)
		ret = snprintf(c->authority, sizeof(c->authority), "[%s]:%s", name, o->port);
	else
		ret = snprintf(c->authority, sizeof(c->authority), "%s:%s", name, o->port);
	if (ret < 0 || (size_t)ret >= sizeof(c->authority)) {
		seterr(err, errlen, "server name too long");
		ret = BS_CLIENT_ERR_ARG;
		goto out;
	}
	if ((c->wbuf = malloc(CLIENT_WBUF_SIZE)) == NULL) {
		seterr(err, errlen, "out of memory");
		ret = BS_CLIENT_ERR_NOMEM;
		goto out;
	}
	c->wcap = CLIENT_WBUF_SIZE;
	deadline = now_ms() + c->timeout_ms;
	if ((ret = tcp_connect(o, deadline, &c->fd, err, errlen)) != 0)
		goto out;
	if ((ret = tls_setup(c, o, name, err, errlen)) != 0)
		goto out;
	if ((ret = tls_handshake(c, name, deadline, err, errlen)) != 0)
		goto out;
	if ((ret = h2_setup(c, err, errlen)) != 0)
		goto out;
	*out = c;
	c = NULL;
	ret = 0;
out:
	if (c != NULL) {
		c->broken = ret;  /* no GOAWAY, no close_notify */
		bs_client_free(c);
	}
	return ret;
}

void
bs_client_free(bs_client *c)
{
	struct call *k;

	if (c == NULL)
		return;
	if (c->h2 != NULL && c->ssl != NULL && !c->broken) {
		/* best effort GOAWAY; never blocks */
		if (nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR) == 0)
			(void)conn_flush(c);
	}
	while ((k = c->all) != NULL) {
		all_unlink(c, k);
		call_destroy(k);
	}
	while ((k = c->done_head) != NULL) {
		c->done_head = k->next;
		call_destroy(k);
	}
	while ((k = c->free_calls) != NULL) {
		c->free_calls = k->next;
		call_destroy(k);
	}
	if (c->ssl != NULL) {
		if (!c->broken)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	nghttp2_session_del(c->h2);
	if (c->fd >= 0)
		close(c->fd);
	free(c->wbuf);
	free(c);
}

/* ---- calls --------------------------------------------------------------------- */

#define NV_STATIC(n, v) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, \
	  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE }

/*
 * Whether md[0..n) is metadata a caller may add (see bs_metadata in
 * client.h): names the gRPC protocol or this client owns are refused.
 */
static int
md_valid(const struct bs_metadata *md, size_t n)
{
	static const char *const own[] = { "te", "content-type", "user-agent", "host",
		"content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding",
		"upgrade", NULL };
	const unsigned char *p;
	size_t i, j;

	if (n > BS_CLIENT_MD_MAX || (n > 0 && md == NULL))
		return 0;
	for (i = 0; i < n; i++) {
		if (md[i].name == NULL || md[i].value == NULL || md[i].name[0] == '\0' ||
		    strncmp(md[i].name, "grpc-", 5) == 0)
			return 0;
		for (j = 0; own[j] != NULL; j++)
			if (strcmp(md[i].name, own[j]) == 0)
				return 0;
		for (p = (const unsigned char *)md[i].name; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			    *p == '_' || *p == '.'))
				return 0;
		for (p = (const unsigned char *)md[i].value; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				return 0;
		/* no leading or trailing space (RFC 9113 section 8.2.1) */
		p = (const unsigned char *)md[i].value;
		if (p[0] == ' ' || (p[0] != '\0' && p[strlen(md[i].value) - 1] == ' '))
			return 0;
	}
	return 1;
}

int
bs_client_start(bs_client *c, const char *path, const uint8_t *req, size_t req_len,
    bs_call_cb cb, void *arg)
{
	return bs_client_start_md(c, path, NULL, 0, req, req_len, cb, arg);
}

int
bs_client_start_md(bs_client *c, const char *path, const struct bs_metadata *md, size_t n,
    const uint8_t *req, size_t req_len, bs_call_cb cb, void *arg)
{
	nghttp2_nv nv[9 + BS_CLIENT_MD_MAX] = {
		NV_STATIC(":method", "POST"),
		NV_STATIC(":scheme", "https"),
		NV_STATIC(":path", ""),
		NV_STATIC(":authority", ""),
		NV_STATIC("grpc-timeout", ""),
		NV_STATIC("te", "trailers"),
		NV_STATIC("content-type", "application/grpc+proto"),
		NV_STATIC("user-agent", CLIENT_USER_AGENT),
		NV_STATIC("grpc-accept-encoding", "identity"),
	};
	nghttp2_data_provider dp;
	struct call *k;
	size_t plen, need;
	uint8_t *nb;
	int32_t sid;

	size_t nnv = 9, i;

	if (c == NULL || path == NULL || path[0] != '/' || (req == NULL && req_len > 0) ||
	    req_len > UINT32_MAX || !md_valid(md, n))
		return BS_CLIENT_ERR_ARG;
	if (c->broken)
		return c->broken;
	if (c->goaway)
		return BS_CLIENT_ERR_HTTP2;
	plen = strlen(path);
	if ((k = call_get(c)) == NULL)
		return BS_CLIENT_ERR_NOMEM;
	need = req_len + CLIENT_LPM_HDR;
	if (need > k->req_cap) {
		if ((nb = realloc(k->req, need)) == NULL) {
			call_put(c, k);
			return BS_CLIENT_ERR_NOMEM;
		}
		k->req = nb;
		k->req_cap = need;
	}
	grpc_lpm_write_header(k->req, (uint32_t)req_len);
	if (req_len > 0)
		memcpy(k->req + CLIENT_LPM_HDR, req, req_len);
	k->req_len = need;
	k->req_off = 0;
	k->cb = cb;
	k->arg = arg;

	nv[2].value = (uint8_t *)(uintptr_t)path;
	nv[2].valuelen = plen;
	nv[2].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;  /* nghttp2 copies the path */
	nv[3].value = (uint8_t *)c->authority;
	nv[3].valuelen = strlen(c->authority);
	nv[4].value = (uint8_t *)c->grpc_timeout;
	nv[4].valuelen = strlen(c->grpc_timeout);
	for (i = 0; i < n; i++, nnv++) {
		/* nghttp2 copies both; never indexed: the value may be a secret */
		nv[nnv].name = (uint8_t *)(uintptr_t)md[i].name;
		nv[nnv].namelen = strlen(md[i].name);
		nv[nnv].value = (uint8_t *)(uintptr_t)md[i].value;
		nv[nnv].valuelen = strlen(md[i].value);
		nv[nnv].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
	dp.source.ptr = k;
	dp.read_callback = cb_read_req;
	sid = nghttp2_submit_request(c->h2, NULL, nv, nnv, &dp, k);
	if (sid < 0) {
		call_put(c, k);
		return sid == NGHTTP2_ERR_NOMEM ? BS_CLIENT_ERR_NOMEM : BS_CLIENT_ERR_HTTP2;
	}
	k->stream_id = sid;
	all_link(c, k);
	c->pending++;
	return 0;
}

int
bs_client_run(bs_client *c, int once)
{
	struct pollfd pfd;
	size_t completed = 0;
	int rv;

	if (c == NULL)
		return BS_CLIENT_ERR_ARG;
	for (;;) {
		completed += dispatch_done(c);
		if (c->pending == 0 || (once && completed > 0))
			return c->broken;
		if (c->broken)
			continue;  /* conn_break queued every call; dispatch them */
		if ((rv = conn_flush(c)) != 0)
			continue;
		if (c->done_head != NULL)
			continue;  /* sending (e.g. our RST_STREAM) closed a stream */
		if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
		    c->woff == c->wlen) {
			conn_break(c, BS_CLIENT_ERR_HTTP2, "HTTP/2 session ended");
			continue;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (c->want_pollout || c->woff < c->wlen)
			pfd.events |= POLLOUT;
		pfd.revents = 0;
		rv = poll(&pfd, 1, c->io_timeout_ms);
		if (rv < 0) {
			if (errno == EINTR)
				continue;
			conn_break(c, BS_CLIENT_ERR_HTTP2, "poll failed");
			continue;
		}
		if (rv == 0) {
			conn_break(c, BS_CLIENT_ERR_TIMEOUT, "timed out waiting for the server");
			continue;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			(void)conn_read(c);
	}
}

struct unary_ctx {
	struct bs_call_result *res;
	int done;
	int nomem;
};

static void
unary_cb(void *arg, const struct bs_call_result *r)
{
	struct unary_ctx *u = arg;

	u->done = 1;
	u->res->grpc_status = r->grpc_status;
	u->res->grpc_message = r->grpc_message != NULL ? strdup(r->grpc_message) : NULL;
	u->res->resp = NULL;
	u->res->resp_len = 0;
	if (r->resp_len > 0) {
		if ((u->res->resp = malloc(r->resp_len)) == NULL) {
			u->nomem = 1;
			return;
		}
		memcpy(u->res->resp, r->resp, r->resp_len);
		u->res->resp_len = r->resp_len;
	}
}

int
bs_client_unary(bs_client *c, const char *path, const uint8_t *req, size_t req_len,
    struct bs_call_result *res)
{
	return bs_client_unary_md(c, path, NULL, 0, req, req_len, res);
}

int
bs_client_unary_md(bs_client *c, const char *path, const struct bs_metadata *md, size_t n,
    const uint8_t *req, size_t req_len, struct bs_call_result *res)
{
	struct unary_ctx u;
	int rv;

	if (res == NULL)
		return BS_CLIENT_ERR_ARG;
	memset(res, 0, sizeof(*res));
	res->grpc_status = -1;
	u.res = res;
	u.done = 0;
	u.nomem = 0;
	if ((rv = bs_client_start_md(c, path, md, n, req, req_len, unary_cb, &u)) != 0) {
		if (c != NULL && c->broken)
			res->grpc_message = strdup(c->broken_msg);
		else if (rv == BS_CLIENT_ERR_HTTP2 && c != NULL && c->goaway)
			res->grpc_message = strdup("server sent GOAWAY");
		return rv;
	}
	rv = 0;
	while (!u.done && rv == 0)
		rv = bs_client_run(c, 1);
	if (u.nomem) {
		bs_call_result_clear(res);
		res->grpc_status = -1;
		return BS_CLIENT_ERR_NOMEM;
	}
	if (res->grpc_status == -1)
		return rv != 0 ? rv : BS_CLIENT_ERR_HTTP2;
	return 0;
}

void
bs_call_result_clear(struct bs_call_result *res)
{
	if (res == NULL)
		return;
	free(res->grpc_message);
	/* answers may carry secrets (EnvelopeService: data keys, plaintexts) */
	if (res->resp != NULL)
		OPENSSL_clear_free(res->resp, res->resp_len);
	res->grpc_message = NULL;
	res->resp = NULL;
	res->resp_len = 0;
}

size_t
bs_client_pending(const bs_client *c)
{
	return c != NULL ? c->pending : 0;
}
