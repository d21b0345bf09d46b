/*
 * boltseal/client.h - a small gRPC-over-HTTP/2 client for boltsealed, over
 * mutual TLS 1.3 (OpenSSL + nghttp2). Used by the `boltseal` CLI and the
 * benchmark tool; other programs may use any stock gRPC client instead.
 *
 * The client is single-threaded and blocking from the caller's point of
 * view; several calls may be in flight on one connection (async API).
 * Message bodies are opaque serialized protobuf bytes.
 */
#ifndef BOLTSEAL_CLIENT_H
#define BOLTSEAL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_client bs_client;

struct bs_client_opts {
	const char *host;         /* "127.0.0.1" */
	const char *port;         /* "7443" */
	const char *server_name;  /* SNI and name to verify; NULL = host */
	const char *ca_file;      /* CA bundle the server must chain to */
	const char *cert_file;    /* client certificate (PEM) */
	const char *key_file;     /* client private key (PEM) */
	int timeout_ms;           /* per call grpc-timeout and I/O bound; 0 = 30000 */
};

/* Transport errors (negative); a completed call reports its gRPC status separately. */
#define BS_CLIENT_OK 0
#define BS_CLIENT_ERR_CONNECT (-1)  /* TCP connect failed */
#define BS_CLIENT_ERR_TLS (-2)      /* handshake or verification failed */
#define BS_CLIENT_ERR_HTTP2 (-3)    /* protocol error, connection lost */
#define BS_CLIENT_ERR_TIMEOUT (-4)  /* no progress within timeout_ms */
#define BS_CLIENT_ERR_NOMEM (-5)
#define BS_CLIENT_ERR_ARG (-6)

/*
 * Connects, handshakes (TLS 1.3, ALPN h2, server cert verified against
 * ca_file and server_name), sends the HTTP/2 preface. Returns 0 and *out,
 * or a BS_CLIENT_ERR_* with a message in err (errlen bytes).
 */
int bs_client_connect(const struct bs_client_opts *o, bs_client **out, char *err, size_t errlen);

/* Sends GOAWAY, closes, frees. Calls still pending are dropped without their
 * callback. NULL is a no-op. */
void bs_client_free(bs_client *c);

/* Result of one call. resp is malloc'd (caller frees); message may be NULL. */
struct bs_call_result {
	int grpc_status;          /* -1 if the call did not complete */
	char *grpc_message;       /* decoded grpc-message or NULL; caller frees */
	uint8_t *resp;            /* the response message (without LPM prefix) */
	size_t resp_len;
};

/*
 * Unary call: path is "/boltseal.v1.KeyService/Sign". Blocks until the
 * trailers arrive. Returns 0 when the call completed (see res->grpc_status),
 * or a BS_CLIENT_ERR_* with res->grpc_status -1 and the reason in
 * res->grpc_message.
 */
int bs_client_unary(bs_client *c, const char *path, const uint8_t *req, size_t req_len,
    struct bs_call_result *res);

/*
 * Custom request metadata (gRPC "custom metadata": ASCII headers, e.g. the
 * second-factor code x-boltseal-otp). name: lowercase letters, digits, '-',
 * '_' or '.', not starting with "grpc-" and not a header the client sets
 * itself; value: printable ASCII. At most BS_CLIENT_MD_MAX per call. Each is
 * sent as a never-indexed literal (RFC 7541, section 6.2.3), so a secret
 * value is kept out of both sides' HPACK tables.
 */
#define BS_CLIENT_MD_MAX 8
struct bs_metadata {
	const char *name;
	const char *value;
};

/* bs_client_unary with n metadata entries md (copied before this returns). */
int bs_client_unary_md(bs_client *c, const char *path, const struct bs_metadata *md, size_t n,
    const uint8_t *req, size_t req_len, struct bs_call_result *res);

/* Frees what res holds (not res itself); the answer's bytes are wiped first. */
void bs_call_result_clear(struct bs_call_result *res);

/*
 * Async API: bs_client_start queues a unary call and returns at once; cb is
 * called from bs_client_run when it completes (res is owned by the client
 * and cleared after cb returns). req is copied: the caller may free it when
 * this returns. cb may start new calls. After a connection error or GOAWAY
 * this fails at once: reconnect. Returns 0 or a BS_CLIENT_ERR_*.
 */
typedef void (*bs_call_cb)(void *arg, const struct bs_call_result *res);
int bs_client_start(bs_client *c, const char *path, const uint8_t *req, size_t req_len,
    bs_call_cb cb, void *arg);

/* bs_client_start with n metadata entries md (see bs_client_unary_md). */
int bs_client_start_md(bs_client *c, const char *path, const struct bs_metadata *md, size_t n,
    const uint8_t *req, size_t req_len, bs_call_cb cb, void *arg);

/*
 * Runs I/O until no call is pending, or until at least one call completed
 * when once is non-zero. Returns 0 or a BS_CLIENT_ERR_* (pending calls then
 * complete with grpc_status -1).
 */
int bs_client_run(bs_client *c, int once);

/* Number of calls started and not yet completed. */
size_t bs_client_pending(const bs_client *c);

#ifdef __cplusplus
}
#endif

#endif
