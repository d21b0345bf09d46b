/*
 * server.h - the gRPC transport: libevent listener, TLS (bufferevent_openssl),
 * HTTP/2 (nghttp2) and gRPC framing, driving the calls of an RPC dispatcher
 * (rpc/rpc.h). Event loop thread only.
 *
 * Limits enforced here: connections, concurrent streams, header list size,
 * message size (from the length prefix, before allocation), handshake and
 * idle time, grpc-timeout deadlines.
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
	unsigned max_connections;
	unsigned max_header_list_bytes;
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;
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

/* Closes every connection and frees. NULL is a no-op. */
void server_free(struct server *s);

/* Calls in flight (for logs). */
unsigned server_active_calls(const struct server *s);

#endif
