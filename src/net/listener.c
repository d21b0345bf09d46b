/*
 * listener.c - the gRPC server (see server.h): the listening socket,
 * graceful shutdown (GOAWAY, grace period, drained once no call and no
 * connection is left), TLS material swaps. Connections are conn.c's,
 * request streams stream.c's.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "common/log.h"
#include "net/server_int.h"

/*
 * Shutdown is complete when no call is alive and every connection has
 * flushed its last responses and closed (after GOAWAY, nghttp2 stops wanting
 * to read once its streams are done, and conn_flush closes the connection
 * when its output buffer is empty).
 */
void
server_check_drained(struct server *s)
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
	server_check_drained(arg);
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
	s->penalties = calloc(PENALTY_SLOTS, sizeof(*s->penalties));
	if (s->penalties == NULL) {
		free(s);
		return BS_ERR_NOMEM;
	}
	s->base = base;
	s->ctx = ctx;
	s->lim = *lim;
	s->disp = disp;
	LIST_INIT(&s->conns);
	TAILQ_INIT(&s->startups);
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
server_bind(const char *addr, int *fd, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen, one = 1, sfd;

	*fd = -1;
	if (parse_addr(addr, &ss, &sslen) != 0) {
		snprintf(err, errlen, "cannot parse listen address '%s'", addr);
		return BS_ERR_CONFIG;
	}
	sfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		return BS_ERR_IO;
	}
	if (setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(sfd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(sfd, 128) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		(void)close(sfd);
		return BS_ERR_IO;
	}
	*fd = sfd;
	return 0;
}

int
server_listen_fd(struct server *s, int fd, char *err, size_t errlen)
{
	/* backlog 0: the socket is listening already */
	s->listener = evconnlistener_new(s->base, conn_accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (s->listener == NULL) {
		snprintf(err, errlen, "cannot serve the listening socket: %s", strerror(errno));
		(void)close(fd);
		return BS_ERR_IO;
	}
	if (s->accept_resume == NULL &&
	    (s->accept_resume = evtimer_new(s->base, conn_accept_resume_cb, s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	return 0;
}

int
server_listen(struct server *s, const char *addr, char *err, size_t errlen)
{
	int fd, rc;

	if ((rc = server_bind(addr, &fd, err, errlen)) != 0)
		return rc;
	return server_listen_fd(s, fd, err, errlen);
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
	server_check_drained(s);
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
	if (s->accept_resume != NULL)
		event_free(s->accept_resume);
	if (s->grace_timer != NULL)
		event_free(s->grace_timer);
	free(s->penalties);
	free(s);
}

void
server_on_untrusted(struct server *s,
    void (*fn)(void *, const char *, const uint8_t[32], const char *, const char *), void *arg)
{
	s->untrusted = fn;
	s->untrusted_arg = arg;
}

unsigned
server_reverify(struct server *s, SSL_CTX *ctx)
{
	struct conn *c, *next;
	char why[256];
	unsigned n = 0;

	for (c = LIST_FIRST(&s->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (!c->established || c->closing)
			continue;
		if (tls_peer_reverify(c->ssl, ctx, c->cert_sha256, why, sizeof(why)) == 0)
			continue;
		bs_log(BS_LOG_WARN, "connection closed: its client certificate no longer verifies",
		    "peer", c->peer, "identity", c->identity, "reason", why, NULL);
		s->untrusted_closed++;
		if (s->untrusted != NULL)
			s->untrusted(s->untrusted_arg, c->identity, c->cert_sha256, c->peer, why);
		n++;
		conn_close_now(c); /* may free c; next was taken before */
	}
	return n;
}

void
server_conn_counts(const struct server *s, unsigned *established, unsigned *startups)
{
	*established = s->nconns - s->nstartups;
	*startups = s->nstartups;
}

void
server_stats(const struct server *s, struct server_stats *st)
{
	st->established = s->nconns - s->nstartups;
	st->startups = s->nstartups;
	st->accepted = s->accepted;
	st->handshakes_failed = s->handshakes_failed;
	st->startups_dropped = s->startups_dropped;
	st->per_source_refused = s->per_source_refused;
	st->penalised_refused = s->penalised_refused;
	st->young_refused = s->young_refused;
	st->max_conn_refused = s->max_conn_refused;
	st->untrusted_closed = s->untrusted_closed;
	st->limits = s->limits;
}

unsigned
server_active_calls(const struct server *s)
{
	return rpc_dispatcher_calls(s->disp);
}
