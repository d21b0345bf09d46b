/*
 * conn.c - one TCP connection of the gRPC transport: accepted into the
 * pool of connections still in the handshake (max_startups: random early
 * drop of a stale handshake past max_startups_begin, one always dropped
 * when it is full, a per-source-address cap, an absolute handshake
 * deadline, and a penalty on the addresses whose handshakes were dropped
 * or timed out), TLS 1.3
 * over bufferevent_openssl (client certificate required; ALPN h2 and a
 * verified URI SAN, or the connection is closed), then, under the
 * established-connection limit, an nghttp2 server session (SETTINGS:
 * concurrent streams, header list size, windows); idle timeout, write stall
 * check, maximum age with GOAWAY and a grace period; teardown.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/wipe_alloc.h"
#include "net/server_int.h"

#define RST_RATE_BURST 1000
#define RST_RATE_PER_S 33
#define MAX_CONTINUATIONS 8

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
	c->bytes_queued += length;
	return (ssize_t)length;
}

/* ---- nghttp2's memory: its frame buffers hold answers in plaintext ---------- */

static void *
h2_malloc(size_t n, void *ud)
{
	(void)ud;
	return bs_wipe_malloc(n);
}

static void
h2_free(void *p, void *ud)
{
	(void)ud;
	bs_wipe_free(p);
}

static void *
h2_calloc(size_t n, size_t size, void *ud)
{
	(void)ud;
	return bs_wipe_calloc(n, size);
}

static void *
h2_realloc(void *p, size_t n, void *ud)
{
	(void)ud;
	return bs_wipe_realloc(p, n);
}

static nghttp2_mem wiping_mem = { NULL, h2_malloc, h2_free, h2_calloc, h2_realloc };

/* ---- timers --------------------------------------------------------------- */

uint64_t
conn_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
ms_to_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* (Re)arms c->timer to call cb in ms. */
static void
conn_set_timer(struct conn *c, unsigned ms, event_callback_fn cb)
{
	struct timeval tv;

	ms_to_tv(ms, &tv);
	if (c->timer == NULL)
		return;
	event_del(c->timer);
	event_assign(c->timer, c->srv->base, -1, 0, cb, c);
	event_add(c->timer, &tv);
}

static void penalise(struct server *s, const char *host, uint64_t step);

static void
handshake_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	bs_log(BS_LOG_INFO, "handshake timed out", "peer", c->peer, NULL);
	penalise(c->srv, c->host, c->srv->lim.handshake_penalty_ms);
	conn_free(c);
}

static void
grace_over_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	bs_log(BS_LOG_INFO, "connection closed after GOAWAY", "peer", c->peer, "identity",
	    c->identity, NULL);
	conn_free(c);
}

/* Phase 2 of a graceful GOAWAY: the real last stream id, then the grace period. */
static void
goaway_final_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->h2 == NULL) {
		conn_free(c);
		return;
	}
	(void)nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR, NULL, 0);
	conn_set_timer(c, c->goaway_grace_ms, grace_over_cb);
	conn_flush(c); /* may free c */
}

void
conn_goaway(struct conn *c, unsigned grace_ms)
{
	unsigned notice_ms = grace_ms < 2000 ? grace_ms / 2 : 1000;

	if (c->closing || c->goaway)
		return;
	if (c->h2 == NULL) {
		conn_free(c);
		return;
	}
	/*
	 * gRPC's graceful GOAWAY: first a notice (last stream id 2^31-1: the
	 * client opens no new stream here but loses none in flight), the final
	 * GOAWAY a round trip later.
	 */
	c->goaway = 1;
	c->goaway_grace_ms = grace_ms - notice_ms;
	(void)nghttp2_submit_shutdown_notice(c->h2);
	conn_set_timer(c, notice_ms, goaway_final_cb);
	conn_flush(c); /* may free c */
}

void
conn_close_now(struct conn *c)
{
	struct stream *st;

	if (c->closing)
		return;
	if (c->h2 == NULL) {
		conn_free(c);
		return;
	}
	c->goaway = 1;
	/* nothing more is read, and the calls in flight are cancelled now */
	bufferevent_disable(c->bev, EV_READ);
	while ((st = LIST_FIRST(&c->streams)) != NULL) {
		nghttp2_session_set_stream_user_data(c->h2, st->stream_id, NULL);
		stream_free(st);
	}
	(void)nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
	conn_set_timer(c, 1000, grace_over_cb);
	conn_flush(c); /* may free c */
}

static void
max_age_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	bs_log(BS_LOG_INFO, "connection reached its maximum age: GOAWAY", "peer", c->peer,
	    "identity", c->identity, NULL);
	conn_goaway(c, c->srv->lim.max_connection_age_grace_ms);
}

/*
 * Answer bytes (HEADERS and DATA frames) that have left the output buffer
 * towards the socket: stops growing when the peer neither reads (TCP
 * window closed: the buffer stays full and nghttp2 stops handing frames
 * over) nor opens its HTTP/2 flow-control windows (nghttp2 holds the DATA
 * back). PING and SETTINGS acks do not count, so a peer cannot keep a
 * stalled connection alive by pinging it.
 */
static uint64_t
conn_progress(struct conn *c)
{
	size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));

	return c->answer_bytes > queued ? c->answer_bytes - queued : 0;
}

/* 1 while an answer is waiting for the peer. */
static int
conn_output_waiting(struct conn *c)
{
	struct stream *st;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return 1;
	LIST_FOREACH(st, &c->streams, link)
		if (st->answered && st->msg != NULL && st->off < GRPC_LPM_HEADER_LEN + st->msg_len)
			return 1;
	return 0;
}

static unsigned
stall_tick_ms(const struct conn *c)
{
	unsigned ms = c->srv->lim.write_stall_timeout_ms / 4;

	return ms < 50 ? 50 : ms > 1000 ? 1000 : ms;
}

static void
stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint64_t now = conn_now_ms(), p;
	struct timeval tv;

	if (c->closing || !conn_output_waiting(c))
		return;
	p = conn_progress(c);
	if (p != c->stall_progress) {
		c->stall_progress = p;
		c->stall_since_ms = now;
	} else if (now - c->stall_since_ms >= c->srv->lim.write_stall_timeout_ms) {
		bs_log(BS_LOG_WARN, "connection closed: the peer reads nothing while answers wait",
		    "peer", c->peer, "identity", c->identity, NULL);
		c->srv->limits.write_stall_timeout_ms++;
		conn_free(c);
		return;
	}
	ms_to_tv(stall_tick_ms(c), &tv);
	evtimer_add(c->stall_timer, &tv);
}

void
conn_watch_output(struct conn *c)
{
	struct timeval tv;

	if (c->closing || c->stall_timer == NULL || evtimer_pending(c->stall_timer, NULL) ||
	    !conn_output_waiting(c))
		return;
	c->stall_progress = conn_progress(c);
	c->stall_since_ms = conn_now_ms();
	ms_to_tv(stall_tick_ms(c), &tv);
	evtimer_add(c->stall_timer, &tv);
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
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_free(c);
		return;
	}
	conn_watch_output(c);
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
	/*
	 * Rapid reset (CVE-2023-44487): a client may reset RST_RATE_BURST
	 * streams at once and RST_RATE_PER_S a second after that, or the
	 * session ends with GOAWAY. CONTINUATION floods (CVE-2024-27316 class):
	 * at most MAX_CONTINUATIONS after a HEADERS frame. nghttp2's defaults,
	 * set here so that a library update cannot loosen them unnoticed.
	 */
	nghttp2_option_set_stream_reset_rate_limit(opt, RST_RATE_BURST, RST_RATE_PER_S);
	nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
	rv = nghttp2_session_server_new3(&c->h2, cbs, c, opt, &wiping_mem);
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

/* Handshake done: into the established pool, or closed when it is full. */
static void
conn_established(struct conn *c)
{
	struct server *s = c->srv;
	const struct server_limits *lim = &s->lim;
	char sha[65];
	unsigned age;

	TAILQ_REMOVE(&s->startups, c, startup);
	s->nstartups--;
	c->established = 1;
	if (c->timer != NULL)
		event_del(c->timer);
	if (!tls_alpn_is_h2(c->ssl)) {
		bs_log(BS_LOG_WARN, "connection refused: ALPN h2 not negotiated", "peer", c->peer,
		    NULL);
		conn_free(c);
		return;
	}
	if (tls_peer_identity(c->ssl, c->identity, c->cert_sha256) != 0) {
		bs_log(BS_LOG_WARN, "connection refused: no verified URI SAN", "peer", c->peer, NULL);
		conn_free(c);
		return;
	}
	if (SSL_get_SSL_CTX(c->ssl) != s->ctx) {
		/*
		 * The trust material changed during the handshake, which was
		 * verified against the old CAs and CRLs: verify it again now.
		 */
		char why[256];

		if (tls_peer_reverify(c->ssl, s->ctx, c->cert_sha256, why, sizeof(why)) != 0) {
			bs_log(BS_LOG_WARN, "connection closed: its client certificate no longer "
			    "verifies", "peer", c->peer, "identity", c->identity, "reason", why, NULL);
			s->untrusted_closed++;
			if (s->untrusted != NULL)
				s->untrusted(s->untrusted_arg, c->identity, c->cert_sha256, c->peer, why);
			conn_free(c);
			return;
		}
	}
	if (s->nconns - s->nstartups > lim->max_connections) {
		s->max_conn_refused++;
		bs_log(BS_LOG_WARN, "connection refused: limit reached", "peer", c->peer, "identity",
		    c->identity, NULL);
		conn_free(c);
		return;
	}
	bs_hex_encode(c->cert_sha256, 32, sha);
	set_read_timeout(c, lim->idle_timeout_ms);
	if (lim->max_connection_age_ms > 0) {
		/* up to 10% earlier, so that clients connected together do not all reconnect together */
		age = lim->max_connection_age_ms;
		age -= arc4random_uniform(age / 10 + 1);
		conn_set_timer(c, age, max_age_cb);
	}
	bs_log(BS_LOG_INFO, "connection established", "peer", c->peer, "identity", c->identity,
	    "cert_sha256", sha, NULL);
	if (conn_start_h2(c) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start HTTP/2 session", "peer", c->peer, NULL);
		conn_free(c);
		return;
	}
	conn_flush(c);
}

static void
eventcb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;

	if (events & BEV_EVENT_CONNECTED) {
		conn_established(c);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT) {
		/* the read timeout is only armed once established: the idle timeout */
		if (!LIST_EMPTY(&c->streams)) {
			/* calls still running (each bounded by request_timeout_ms and its deadline) */
			bufferevent_enable(bev, EV_READ);
			return;
		}
		bs_log(BS_LOG_INFO, "idle connection closed", "peer", c->peer, "identity",
		    c->identity, NULL);
		if (c->h2 != NULL) {
			(void)nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
			(void)nghttp2_session_send(c->h2);
		}
		conn_free(c);
		return;
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->established) {
			c->srv->handshakes_failed++;
			log_tls_errors(c, "TLS handshake failed");
		}
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
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->stall_timer != NULL)
		event_free(c->stall_timer);
	if (!c->established) {
		TAILQ_REMOVE(&s->startups, c, startup);
		s->nstartups--;
	}
	LIST_REMOVE(c, link);
	s->nconns--;
	/* bufferevent_free may only schedule the close: defer the SSL teardown to it */
	bufferevent_free(c->bev);
	free(c);
	server_check_drained(s);
}

/* ---- per-source penalties ------------------------------------------------- */

static size_t
penalty_slot(const char *host)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (; *host != '\0'; host++)
		h = (h ^ (uint8_t)*host) * 16777619u;
	return h % PENALTY_SLOTS;
}

/* 1 while host is penalised. */
static int
penalised(const struct server *s, const char *host, uint64_t now)
{
	size_t i, k = penalty_slot(host);

	for (i = 0; i < PENALTY_PROBE; i++) {
		const struct penalty *p = &s->penalties[(k + i) % PENALTY_SLOTS];

		if (strcmp(p->host, host) == 0)
			return p->until_ms > now;
	}
	return 0;
}

/*
 * Adds step ms to host's penalty (counted from now if it had none left),
 * up to 30 times handshake_penalty_ms: a handshake dropped as stale or
 * timed out adds handshake_penalty_ms; a connection made while penalised
 * adds a twentieth of it, so that an address that keeps hammering stays
 * out while a client retrying with gRPC's back-off (a second and more
 * between attempts) gets back in.
 */
static void
penalise(struct server *s, const char *host, uint64_t step)
{
	uint64_t now = conn_now_ms(), cap = (uint64_t)s->lim.handshake_penalty_ms * 30;
	struct penalty *p, *use = NULL;
	size_t i, k = penalty_slot(host);

	if (step == 0)
		return;
	for (i = 0; i < PENALTY_PROBE; i++) {
		p = &s->penalties[(k + i) % PENALTY_SLOTS];
		if (strcmp(p->host, host) == 0) {
			use = p;
			break;
		}
		if (use == NULL || p->until_ms < use->until_ms)
			use = p;   /* the entry expiring first (or expired) makes room */
	}
	if (strcmp(use->host, host) != 0 || use->until_ms < now) {
		snprintf(use->host, sizeof(use->host), "%s", host);
		use->until_ms = now;
	}
	use->until_ms += step;
	if (use->until_ms > now + cap)
		use->until_ms = now + cap;
}

/* Handshakes in progress from host. */
static unsigned
startups_from(const struct server *s, const char *host)
{
	const struct conn *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &s->startups, startup)
		if (strcmp(c->host, host) == 0)
			n++;
	return n;
}

enum drop_kind {
	DROP_STALE,         /* a stale handshake dropped to make room */
	DROP_PER_SOURCE,    /* newcomer refused: max_startups_per_source */
	DROP_PENALISED,     /* newcomer refused: its address is penalised */
	DROP_YOUNG,         /* newcomer refused: the pool is full of fresh handshakes */
	DROP_KINDS
};

/*
 * Counts what the startup limits dropped and logs it, one line per kind at
 * most once a second with the running total (under a flood, one line per
 * connection would be a flood of its own).
 */
static void
note_drop(struct server *s, enum drop_kind kind, const char *host)
{
	static const char *const msg[DROP_KINDS] = {
		"handshake pool under pressure: stale handshakes dropped",
		"connection refused: too many handshakes from this address",
		"connection refused: address penalised for dropped or timed-out handshakes",
		"connection refused: handshake pool full of fresh or proceeding handshakes",
	};
	uint64_t now = conn_now_ms(), *count[DROP_KINDS] = {
		&s->startups_dropped, &s->per_source_refused, &s->penalised_refused,
		&s->young_refused,
	};
	char n[24];

	(*count[kind])++;
	bs_log(BS_LOG_DEBUG, msg[kind], "peer", host, NULL);
	if (s->drop_logged_ms[kind] != 0 && now - s->drop_logged_ms[kind] < 1000)
		return;
	s->drop_logged_ms[kind] = now;
	snprintf(n, sizeof(n), "%llu", (unsigned long long)*count[kind]);
	bs_log(BS_LOG_WARN, msg[kind], "peer", host, "total", n, NULL);
}

/*
 * The handshake to drop to make room: the oldest one that has not sent a
 * ClientHello (OpenSSL has processed none, and no byte is waiting in the
 * socket: an idle socket, or a ClientHello being dripped), at least
 * VICTIM_MIN_AGE_MS old unless any_age. A real client sends its ClientHello
 * right after connecting; once it is in the socket, even unread while a
 * flood is being accepted, the connection is safe. The age guard leaves a
 * client whose ClientHello is still on the wire a moment to send it; a
 * newcomer whose own ClientHello has begun to arrive at accept (a whole TLS
 * record header: content type handshake, version 3.x) outranks that guess
 * and may displace a silent handshake of any age (else a burst of accepted
 * silent sockets, all younger than the guard, would refuse it); such a
 * young victim is not penalised, since it may be a real client whose
 * ClientHello was late.
 * A handshake past its ClientHello is never dropped (it ends by its
 * deadline at the latest, and making many of them costs their sender a key
 * exchange each). NULL when there is none.
 */
#define VICTIM_MIN_AGE_MS 10

static int
bytes_waiting(evutil_socket_t fd)
{
	int pending = 0;

	if (ioctl(fd, FIONREAD, &pending) != 0)
		return 1;       /* unknown: treat as spoken, never drop it on a guess */
	return pending > 0;
}

/*
 * 1 if a TLS handshake record has begun to arrive on fd (its 5-byte header
 * is waiting: type 22, version 3.1-3.4, as every ClientHello starts). An
 * error is 0: the newcomer gets no privilege on a guess.
 */
static int
client_hello_waiting(evutil_socket_t fd)
{
	unsigned char h[5];

	return recv(fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof(h) &&
	    h[0] == 22 && h[1] == 3 && h[2] >= 1 && h[2] <= 4;
}

static int
nothing_sent(struct conn *c)
{
	if (SSL_get_state(c->ssl) != TLS_ST_BEFORE)   /* a ClientHello was processed */
		return 0;
	return !bytes_waiting(bufferevent_getfd(c->bev));
}

static struct conn *
startups_victim(struct server *s, uint64_t now, int any_age)
{
	struct conn *c;

	TAILQ_FOREACH(c, &s->startups, startup) {
		if (!any_age && now - c->accepted_ms < VICTIM_MIN_AGE_MS)
			break;  /* oldest first: the rest are younger still */
		if (nothing_sent(c))
			return c;
	}
	return NULL;
}

/*
 * Makes room for one more handshake (OpenSSH's MaxStartups, applied to a
 * stale handshake rather than to the newcomer when there is one): below
 * max_startups_begin nothing happens; from there a handshake chosen by
 * startups_victim() is dropped with a probability rising linearly to 1 at
 * max_startups, and its address penalised. A flood of sockets that never
 * speak thus only ever displaces its own kind. spoke: the newcomer's
 * ClientHello has begun to arrive (see startups_victim()).
 * Returns 0, or -1 when the pool is full and nothing in it may be dropped:
 * then the newcomer is refused.
 */
static int
startups_make_room(struct server *s, int spoke)
{
	const struct server_limits *lim = &s->lim;
	uint64_t now = conn_now_ms();
	unsigned span, over;
	struct conn *old;

	if (s->nstartups < lim->max_startups_begin)
		return 0;
	if (s->nstartups < lim->max_startups) {
		span = lim->max_startups - lim->max_startups_begin + 1;
		over = s->nstartups - lim->max_startups_begin + 1;
		if (arc4random_uniform(span) >= over)
			return 0;
	}
	old = startups_victim(s, now, 0);
	if (old == NULL && spoke && s->nstartups >= lim->max_startups)
		old = startups_victim(s, now, 1);
	if (old == NULL)
		return s->nstartups < lim->max_startups ? 0 : -1;
	note_drop(s, DROP_STALE, old->host);
	if (now - old->accepted_ms >= VICTIM_MIN_AGE_MS)
		penalise(s, old->host, s->lim.handshake_penalty_ms);
	conn_free(old);
	return 0;
}

/*
 * libevent's listener accepts until accept(2) would block. A flood that
 * reconnects as fast as it is refused never lets that happen, and the loop
 * would do nothing else: no handshake would progress, no client would be
 * served. So after ACCEPT_BURST connections the listener pauses until the
 * next turn of the loop (a zero timer), and everything else that is ready
 * runs in between.
 */
#define ACCEPT_BURST 32

void
conn_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	s->accept_burst = 0;
	if (!s->shutting_down && s->listener != NULL)
		evconnlistener_enable(s->listener);
}

static void
accept_pace(struct server *s, struct evconnlistener *l)
{
	struct timeval zero = { 0, 0 };

	if (++s->accept_burst < ACCEPT_BURST || s->accept_resume == NULL)
		return;
	if (evconnlistener_disable(l) == 0 && evtimer_add(s->accept_resume, &zero) != 0)
		(void)evconnlistener_enable(l);
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
	struct timeval tv;

	accept_pace(s, l);

	if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	if (s->shutting_down) {
		evutil_closesocket(fd);
		return;
	}
	if (penalised(s, host, conn_now_ms())) {
		note_drop(s, DROP_PENALISED, host);
		penalise(s, host, s->lim.handshake_penalty_ms / 20);
		evutil_closesocket(fd);
		return;
	}
	if (startups_from(s, host) >= s->lim.max_startups_per_source) {
		note_drop(s, DROP_PER_SOURCE, host);
		evutil_closesocket(fd);
		return;
	}
	if (startups_make_room(s, client_hello_waiting(fd)) != 0) {
		note_drop(s, DROP_YOUNG, host);
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
	c->accepted_ms = conn_now_ms();
	LIST_INIT(&c->streams);
	snprintf(c->host, sizeof(c->host), "%s", host);
	if (sa->sa_family == AF_INET)
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
		    ntohs(((struct sockaddr_in *)sa)->sin_port));
	else
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
		    ntohs(((struct sockaddr_in6 *)sa)->sin6_port));
	c->timer = evtimer_new(s->base, handshake_deadline_cb, c);
	c->stall_timer = evtimer_new(s->base, stall_cb, c);
	if (c->timer == NULL || c->stall_timer == NULL)
		goto fail;
	c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		goto fail;
	ssl = NULL; /* owned by the bufferevent now */
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->nconns++;
	s->accepted++;
	TAILQ_INSERT_TAIL(&s->startups, c, startup);
	s->nstartups++;
	bufferevent_setcb(c->bev, readcb, writecb, eventcb, c);
	/* an absolute deadline (not an inactivity timer: a dripped ClientHello does not reset it) */
	ms_to_tv(s->lim.handshake_timeout_ms, &tv);
	evtimer_add(c->timer, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return;
fail:
	bs_log(BS_LOG_ERROR, "cannot set up connection", "peer", host, NULL);
	SSL_free(ssl);
	if (c != NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->stall_timer != NULL)
			event_free(c->stall_timer);
	}
	free(c);
	evutil_closesocket(fd);
}
