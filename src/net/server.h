/*
 * server.h - the gRPC transport: libevent listener, TLS (bufferevent_openssl),
 * HTTP/2 (nghttp2) and gRPC framing, driving the calls of an RPC dispatcher
 * (rpc/rpc.h). Event loop thread only.
 *
 * Limits enforced here (docs/configuration.md gives each one's default and
 * reason): before authentication, connections still in the TLS handshake
 * have their own pool (max_startups, with random early drop of the oldest
 * from max_startups_begin, and a per-source-address cap) and an absolute
 * handshake deadline, so that they never take an authenticated client's
 * slot; after it, established connections, concurrent streams, header list
 * size, message size (from the length prefix, before allocation), request
 * bytes buffered per connection, the time a request's DATA may take, a peer
 * that stops reading, idle time, connection age, grpc-timeout deadlines.
 */
#ifndef BS_SERVER_H
#define BS_SERVER_H

#include <openssl/ssl.h>

#include "common/bs_error.h"
#include "rpc/rpc.h"

struct event_base;
struct server;

struct server_limits {
	unsigned max_message_bytes;
	unsigned max_concurrent_streams;
	unsigned max_connections;        /* established (authenticated) connections */
	unsigned max_header_list_bytes;
	unsigned handshake_timeout_ms;   /* absolute, from accept to a verified peer */
	unsigned idle_timeout_ms;
	unsigned max_startups;           /* connections in the handshake */
	unsigned max_startups_begin;     /* random early drop of the oldest from here */
	unsigned max_startups_per_source;
	unsigned handshake_penalty_ms;   /* per dropped or timed-out handshake; 0: off */
	unsigned request_timeout_ms;     /* HEADERS to the request's END_STREAM */
	unsigned max_buffered_request_bytes; /* per connection */
	unsigned write_stall_timeout_ms; /* answers waiting, nothing read by the peer */
	unsigned max_connection_age_ms;  /* 0: no limit */
	unsigned max_connection_age_grace_ms;
};

/*
 * Creates a server on base whose requests are calls of disp (the server
 * borrows ctx and disp; disp must outlive it). Returns 0 or BS_ERR_NOMEM.
 */
int server_new(struct event_base *base, SSL_CTX *ctx, const struct server_limits *lim,
    struct rpc_dispatcher *disp, struct server **out) BS_WUR;

/* Binds and listens on "host:port" or "[v6]:port". err gets the reason. */
int server_listen(struct server *s, const char *addr, char *err, size_t errlen) BS_WUR;

/*
 * The same in two steps, so that the socket can be bound before the
 * process gives up root (a port below 1024) and served later:
 * server_bind makes a listening socket (close-on-exec, non-blocking) in
 * *fd; server_listen_fd serves it (s owns it from then on, even on error).
 */
int server_bind(const char *addr, int *fd, char *err, size_t errlen) BS_WUR;
int server_listen_fd(struct server *s, int fd, char *err, size_t errlen) BS_WUR;

/*
 * Graceful stop: stops accepting, sends GOAWAY on every connection, lets the
 * in-flight calls finish, and calls drained(arg) once no call is in flight
 * (at most grace_ms later: remaining calls are then cancelled).
 */
void server_shutdown(struct server *s, unsigned grace_ms, void (*drained)(void *arg), void *arg);

/*
 * New connections use ctx from now on (borrowed); established ones keep the
 * SSL_CTX they were accepted with (SSL_new holds a reference).
 */
void server_set_tls_ctx(struct server *s, SSL_CTX *ctx);

/*
 * fn(arg, identity, certificate SHA-256, peer address, reason) is called for
 * each connection closed because its client certificate no longer verifies
 * (server_reverify, or a handshake that straddled a trust change).
 */
void server_on_untrusted(struct server *s,
    void (*fn)(void *arg, const char *identity, const uint8_t cert_sha256[32],
    const char *peer, const char *reason), void *arg);

/*
 * Trust changed (SIGHUP, new CRLs): verifies every established
 * connection's peer chain again against ctx's store (CAs, CRLs, the client
 * certificate rules of tls.h), connections in GOAWAY included. One that no
 * longer verifies gets GOAWAY, stops being read, has its calls cancelled
 * and is closed within a second (the untrusted hook is called first). A
 * handshake in progress finishes against the material it started with and
 * is verified again against the server's current SSL_CTX when it
 * completes. Returns the number of connections closed.
 */
unsigned server_reverify(struct server *s, SSL_CTX *ctx);

/* Connections now: established and still in the handshake (for logs and tests). */
void server_conn_counts(const struct server *s, unsigned *established, unsigned *startups);

/* What the metrics endpoint reports of the listener (counters since start). */
/* Requests and connections a limit of the transport refused or closed (the configuration's names). */
struct server_limit_counts {
	uint64_t max_message_bytes;           /* a request message over the cap (inflated too) */
	uint64_t max_buffered_request_bytes;  /* a connection holding too many request bytes */
	uint64_t max_header_list_bytes;       /* a request header list over the cap */
	uint64_t request_timeout_ms;          /* a request not received in full in time */
	uint64_t write_stall_timeout_ms;      /* a connection that read nothing while answers waited */
	uint64_t stream_buffer;               /* a streaming call reset: 1 MiB waited for its reader */
};

struct server_stats {
	unsigned established, startups;       /* connections now */
	uint64_t accepted;                    /* TCP connections accepted */
	uint64_t handshakes_failed;           /* ended before the TLS handshake completed */
	uint64_t startups_dropped;            /* handshakes dropped for newcomers (max_startups) */
	uint64_t per_source_refused;          /* refused by max_startups_per_source */
	uint64_t penalised_refused;           /* refused while their address was penalised */
	uint64_t young_refused;               /* refused: max_startups full of young handshakes */
	uint64_t max_conn_refused;            /* closed over max_connections */
	uint64_t untrusted_closed;            /* closed: the certificate no longer verifies */
	struct server_limit_counts limits;
};
void server_stats(const struct server *s, struct server_stats *st);

/* Closes every connection and frees. NULL is a no-op. */
void server_free(struct server *s);

/* Calls in flight (for logs). */
unsigned server_active_calls(const struct server *s);

#endif
