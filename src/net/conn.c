/*
 * conn.c - one TCP connection of the gRPC transport: accepted under the
 * connection limit, TLS 1.3 over bufferevent_openssl (client certificate
 * required; ALPN h2 and a verified URI SAN, or the connection is closed),
 * then an nghttp2 server session (SETTINGS: concurrent streams, header list
 * size, windows); handshake and idle timeouts; teardown.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "common/hex.h"
#include "common/log.h"
#include "net/server_int.h"

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

/* ---- connection I/O ----------------------------------------------------- */

void
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
	stream_set_callbacks(cbs);
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

void
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
	server_check_drained(s);
}

void
conn_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
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
