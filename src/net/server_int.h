/*
 * server_int.h - what the files of the gRPC transport share (not a public
 * header): struct server (listener.c), struct conn (conn.c: TLS and the
 * HTTP/2 session of one TCP connection) and struct stream (stream.c: one
 * HTTP/2 request stream driving one RPC call). Event loop thread only.
 */
#ifndef BS_SERVER_INT_H
#define BS_SERVER_INT_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "common/bytebuf.h"
#include "net/grpc_frame.h"
#include "net/server.h"
#include "net/tls.h"
#include "rpc/rpc.h"

#define OUTPUT_HIGH_WATER (64 * 1024)

struct conn;
struct evconnlistener;

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
	int compressed_encoding;      /* grpc-encoding names a coding the daemon does not decode */
	int accepts_gzip;             /* grpc-accept-encoding names gzip */
	int gzip_reply;               /* the request came gzip'd and gzip is accepted: answer so */
	uint8_t *zmsg;                /* the gzip'd answer (owned), or NULL */
	int have_timeout;
	int64_t timeout_us;
	struct event *request_timer;  /* request_timeout_ms: the request must be complete by then */
	size_t buffered;              /* request bytes held by rd (counted in conn->buffered) */

	int admitted;                 /* the RPC layer wants the message */
	int request_done;             /* the message was handed over (a request stream: ended) */
	int req_stream;               /* the method takes a request stream (bidirectional) */
	struct grpc_lpm_reader rd;
	struct event *deadline;

	/* the answer: prefix + message (borrowed from the call) */
	int answered;
	int grpc_status;
	uint8_t prefix[GRPC_LPM_HEADER_LEN];
	const uint8_t *msg;
	size_t msg_len;
	size_t off;                   /* bytes of prefix + message sent */
	/* a server-streaming answer: framed messages waiting for the peer's window */
	int streaming;                /* its headers are out; answer() only ends it */
	int final;                    /* answer() came: trailers after the last message */
	struct bytebuf out;
	size_t out_off;
	char message[RPC_MESSAGE_MAX * 3 + 1];  /* percent-encoded grpc-message */
};

struct conn {
	LIST_ENTRY(conn) link;        /* server's conns: every connection */
	TAILQ_ENTRY(conn) startup;    /* server's startups, oldest first, until established */
	struct server *srv;
	struct bufferevent *bev;
	SSL *ssl;
	nghttp2_session *h2;
	char host[48];                /* peer address without the port (per-source cap) */
	uint64_t accepted_ms;         /* conn_now_ms() at accept */
	char peer[64];
	char identity[TLS_IDENTITY_MAX];
	uint8_t cert_sha256[32];
	int established;
	int closing;
	int in_recv;                  /* inside nghttp2_session_mem_recv: no send */
	int goaway;                   /* GOAWAY sent: closes when its streams are done */
	unsigned goaway_grace_ms;     /* after the final GOAWAY, before the close */
	struct event *timer;          /* handshake deadline, then connection age, then grace */
	struct event *stall_timer;    /* write stall check while answers wait */
	uint64_t bytes_queued;        /* bytes nghttp2 handed to the bufferevent, ever */
	uint64_t answer_bytes;        /* of which HEADERS and DATA frames (not PING acks) */
	uint64_t stall_progress;      /* progress (conn_progress) at stall_since */
	uint64_t stall_since_ms;
	size_t buffered;              /* request bytes held by this connection's streams */
	LIST_HEAD(, stream) streams;
};

/*
 * A source address whose handshakes were dropped as stale or timed out:
 * its new connections are closed at accept until until_ms (OpenSSH's
 * PerSourcePenalties). A small fixed table: a flood of addresses only
 * overwrites entries, it never grows memory.
 */
#define PENALTY_SLOTS 1024
#define PENALTY_PROBE 8
struct penalty {
	char host[48];
	uint64_t until_ms;
};

struct server {
	struct event_base *base;
	SSL_CTX *ctx;
	struct server_limits lim;
	struct rpc_dispatcher *disp;
	struct evconnlistener *listener;
	struct event *accept_resume;  /* re-enables the listener after a burst (conn.c) */
	unsigned accept_burst;        /* connections accepted since the listener was last paused */
	LIST_HEAD(, conn) conns;
	unsigned nconns;              /* every connection */
	TAILQ_HEAD(, conn) startups;  /* connections in the handshake, oldest first */
	unsigned nstartups;
	uint64_t startups_dropped;    /* oldest handshakes dropped to make room */
	uint64_t per_source_refused;  /* connections refused by max_startups_per_source */
	uint64_t drop_logged_ms[4];   /* per kind of drop (conn.c note_drop) */
	uint64_t penalised_refused;   /* connections refused while their address was penalised */
	uint64_t young_refused;       /* newcomers refused: every handshake too young to drop */
	uint64_t accepted;            /* connections accepted (server_stats) */
	uint64_t handshakes_failed;   /* connections that ended before the handshake completed */
	uint64_t max_conn_refused;    /* established over max_connections, closed */
	uint64_t untrusted_closed;    /* closed: the client certificate no longer verifies */
	struct server_limit_counts limits;  /* refusals by transport limit (server_stats) */
	void (*untrusted)(void *, const char *, const uint8_t[32], const char *, const char *);
	void *untrusted_arg;
	struct penalty *penalties;    /* PENALTY_SLOTS entries */
	int shutting_down;
	struct event *grace_timer;
	void (*drained)(void *);
	void *drained_arg;
	int drained_called;
};

/* listener.c: the server is done shutting down when no call and no connection is left. */
void server_check_drained(struct server *s);

/* conn.c */
void conn_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg);
/* The accept_resume timer: the listener accepts again. */
void conn_accept_resume_cb(evutil_socket_t fd, short what, void *arg);
/* Sends what nghttp2 has queued; closes the connection when it is done (may free c). */
void conn_flush(struct conn *c);
/* Closes c: every stream detached from its call, the session and TLS torn down. */
void conn_free(struct conn *c);
/*
 * Graceful GOAWAY on c (a notice, then the final GOAWAY a moment later):
 * no new streams; c closes once its streams are done, or grace_ms after
 * the notice at the latest (calls still running are cancelled).
 */
void conn_goaway(struct conn *c, unsigned grace_ms);
/*
 * GOAWAY now, no new frames read: c closes once its output is flushed, a
 * second from now at the latest; its calls are cancelled.
 */
void conn_close_now(struct conn *c);
/* Arms the write stall check if answers are waiting on the peer. */
void conn_watch_output(struct conn *c);
/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t conn_now_ms(void);

/* stream.c */
/* Registers the request-stream callbacks of a server session. */
void stream_set_callbacks(nghttp2_session_callbacks *cbs);
/* The stream is gone: its call is detached (and frees itself when done). */
void stream_free(struct stream *st);

#endif
