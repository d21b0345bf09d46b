/*
 * rpc.h - the RPC layer as the transport sees it: gRPC calls without
 * sockets. The only header of the layers above that net/ includes.
 *
 * A transport (net/: TLS, HTTP/2, gRPC framing) drives each call
 * through a fixed sequence, on the event loop thread:
 *
 *   rpc_call_new()      a request's HEADERS begin (request id assigned)
 *   rpc_call_refuse()   the transport rejects the request itself (not POST,
 *                       bad content-type, framing, size cap, shutting down)
 *   rpc_call_admit()    end of the HEADERS: the principal's rate limits,
 *                       method known, audit log writable, certificate ->
 *                       principal, method granted.
 *                       Runs before any DATA is buffered; a refused call is
 *                       answered at once and the transport buffers nothing.
 *   rpc_call_request()  the complete request message: its fields counted
 *                       against the caps, decoded once, then the
 *                       method's handler runs (see rpc_service.h), which
 *                       asks the policy for its verdict before any key work
 *                       (a request stream: once per message, then
 *                       rpc_call_request_end() when the client ends it)
 *   rpc_call_deadline() the grpc-timeout passed
 *   rpc_call_detach()   the stream is gone; the call is freed once its
 *                       handler and audit record are done
 *
 * Every answer, refusals included, is given to the transport only after its
 * audit record is durable (the health method excepted, see
 * RPC_F_AUDIT_NOWAIT; calls over a rate limit have no record of their own,
 * only their principal's summary). The transport gets it through its answer
 * callback.
 */
#ifndef BS_RPC_H
#define BS_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "rpc/rpc_status.h"

struct rpc_call;
struct rpc_dispatcher;
struct rpc_registry;
struct policy;
struct audit_log;
struct event_base;

#define RPC_IDENTITY_MAX 512    /* bytes of a caller's URI SAN, NUL included (= TLS_IDENTITY_MAX) */
#define RPC_PATH_MAX 128        /* bytes of a :path, NUL included */
#define RPC_MESSAGE_MAX 512     /* bytes of a status message, NUL included */

/* The verified caller of a connection; borrowed by rpc_call_new (copied). */
struct rpc_peer {
	const char *identity;          /* URI SAN of the verified client certificate */
	const uint8_t *cert_sha256;    /* SHA-256 of the leaf certificate (32 bytes) */
	const char *addr;              /* "127.0.0.1:5555", for logs */
};

/*
 * One answer. http_status is 200 for every gRPC answer; 405 and 415 answer
 * requests that are not gRPC at all (no grpc-status). msg (the serialized
 * response message, without the gRPC length prefix) is set only for
 * grpc_status OK. message is plain text ("" for none); the transport
 * encodes it for grpc-message. All pointers stay valid until
 * rpc_call_detach().
 */
struct rpc_answer {
	int http_status;
	int grpc_status;
	const char *message;
	const uint8_t *msg;
	size_t msg_len;
	int no_message;   /* a server-streaming call's end: trailers only, no message */
};

struct rpc_transport {
	/*
	 * Sends a on stream (and flushes). Called at most once per call, only
	 * while the call is attached; may be called from inside any rpc_call_*
	 * function or later from the loop (after HSM work or an audit write).
	 * It may detach the call (rpc_call_detach) before returning.
	 */
	void (*answer)(void *stream, const struct rpc_answer *a);
	/*
	 * A server-streaming call's next message (msg copied): the response
	 * headers go with the first; answer() then ends the stream with the
	 * trailers. Only while the call is attached and not answered; NULL for
	 * a transport without streams (the call is then refused).
	 */
	void (*send)(void *stream, const uint8_t *msg, size_t len);
};

struct rpc_dispatcher_opts {
	const struct rpc_registry *registry;   /* borrowed, outlives the dispatcher */
	void *env;                             /* services' shared state (rpc_call_env) */
	struct audit_log *audit;               /* NULL: audit off */
};

/* The field caps until rpc_dispatcher_set_limits says otherwise (rate limits: off). */
#define RPC_DEFAULT_MAX_REQUEST_FIELDS 100000
#define RPC_DEFAULT_MAX_UNKNOWN_FIELDS 64

/* Bounded work per request (rpc_dispatcher_set_limits). Zero-initialise, then set. */
struct rpc_dispatcher_limits {
	/*
	 * Fields of one request message, counted through nested messages
	 * (each element of a packed repeated field counts): more is answered
	 * RESOURCE_EXHAUSTED before it is decoded. 0: the default,
	 * RPC_DEFAULT_MAX_REQUEST_FIELDS.
	 */
	unsigned max_request_fields;
	/* Fields of unknown number in one request, at any depth; more: as above. 0: none allowed. */
	unsigned max_unknown_fields;
	/*
	 * Calls per second of one principal (every certificate mapped to no
	 * principal shares one more budget), and audit records per second its
	 * calls may cause; at most 10^7 each, 0: no such limit. A call over
	 * either is answered RESOURCE_EXHAUSTED at admission, and such calls
	 * get one summary audit record per principal per second (event
	 * "rate_limited"), not one record each.
	 */
	unsigned rate_limit_calls;
	unsigned rate_limit_audit_records;
	/* Runs the timer that writes those summaries; NULL: see rpc_dispatcher_flush. */
	struct event_base *base;
	/* CLOCK_MONOTONIC in nanoseconds for the rate limits; NULL: the real clock (tests set theirs). */
	uint64_t (*clock_ns)(void);
};

/*
 * Sets a function told of every answered call (the metrics): its method
 * (the registered path without the leading '/', or NULL for a path the
 * registry does not serve), gRPC status and time from arrival to answer.
 * Runs on the loop thread; fn NULL: none.
 */
void rpc_dispatcher_observe(struct rpc_dispatcher *d,
    void (*fn)(void *arg, const char *method, int status, int64_t dur_us), void *arg);

/* Calls the RPC layer refused by a limit, by limit (the configuration's names). */
struct rpc_dispatcher_stats {
	uint64_t rate_limit_calls;          /* over a principal's calls per second */
	uint64_t rate_limit_audit_records;  /* over a principal's audit records per second */
	uint64_t max_request_fields;        /* a request with too many fields */
	uint64_t max_unknown_fields;        /* a request with too many unknown fields */
};
void rpc_dispatcher_stats(const struct rpc_dispatcher *d, struct rpc_dispatcher_stats *st);

/* Creates a dispatcher. Returns 0, BS_ERR_NOMEM, BS_ERR_CRYPTO or BS_ERR_INVALID. */
int rpc_dispatcher_new(const struct rpc_dispatcher_opts *o, struct rpc_dispatcher **out) BS_WUR;

/*
 * Uses l (copied) from now on. Pending rate-limit summaries are written
 * first and the buckets start full again. Returns 0 or BS_ERR_NOMEM (the
 * limits in force stay).
 */
int rpc_dispatcher_set_limits(struct rpc_dispatcher *d, const struct rpc_dispatcher_limits *l)
    BS_WUR;

/*
 * Writes the pending rate-limit summaries now, due or not (without a base,
 * summaries are otherwise written only when the next call arrives after
 * their second is over). The daemon calls it before closing the audit log.
 */
void rpc_dispatcher_flush(struct rpc_dispatcher *d);

/*
 * Frees d; every call must be gone (rpc_dispatcher_calls() == 0). Summaries
 * not yet flushed are only logged (the audit log may be closed by then).
 * NULL is a no-op.
 */
void rpc_dispatcher_free(struct rpc_dispatcher *d);

/*
 * Uses p (borrowed; NULL refuses every caller) for calls from now on: each
 * call maps its certificate to a principal again under a new policy.
 */
void rpc_dispatcher_set_policy(struct rpc_dispatcher *d, const struct policy *p);

/* Calls alive: attached to a stream, waiting for a handler or an audit record. */
unsigned rpc_dispatcher_calls(const struct rpc_dispatcher *d);

/* fn(arg) runs after each call is freed (the transport checks for drain). */
void rpc_dispatcher_on_call_freed(struct rpc_dispatcher *d, void (*fn)(void *arg), void *arg);

/*
 * A request begins. peer is copied; t and stream are borrowed until
 * rpc_call_detach. Returns 0 or BS_ERR_NOMEM.
 */
int rpc_call_new(struct rpc_dispatcher *d, const struct rpc_peer *peer,
    const struct rpc_transport *t, void *stream, struct rpc_call **out) BS_WUR;

/*
 * The transport refuses the request (status != OK): the answer goes out
 * (after its audit record). A call not yet admitted whose principal is over
 * a rate limit is answered RESOURCE_EXHAUSTED instead, with no record of
 * its own. No-op if the call is already decided.
 */
void rpc_call_refuse(struct rpc_call *call, int http_status, int grpc_status, const char *msg);

/*
 * End of the request headers: path is the :path (borrowed). Returns 1 when
 * the call is admitted (the transport now reads the message), 0 when it was
 * refused and answered (RESOURCE_EXHAUSTED over a rate limit, UNIMPLEMENTED,
 * UNAVAILABLE, UNAUTHENTICATED, PERMISSION_DENIED): the transport must not
 * buffer its DATA.
 */
int rpc_call_admit(struct rpc_call *call, const char *path) BS_WUR;

/*
 * The complete request message (borrowed for the call only): checked
 * (RESOURCE_EXHAUSTED over a field cap, INVALID_ARGUMENT if malformed),
 * decoded once, and handed to the method's handler. Only after admission.
 */
void rpc_call_request(struct rpc_call *call, const uint8_t *msg, size_t len);

/*
 * 1 when the admitted call's method takes a request stream
 * (RPC_F_REQUEST_STREAM): the transport then hands over each request
 * message with rpc_call_request as soon as it is complete, and calls
 * rpc_call_request_end when the client ends its stream.
 */
int rpc_call_streams_requests(const struct rpc_call *call);
void rpc_call_request_end(struct rpc_call *call);

/*
 * The request's x-boltseal-otp header (len bytes at value, borrowed): the
 * caller's second-factor code. When a checker is registered
 * (rpc_dispatcher_set_second_factor) it is checked after the decode and
 * before the handler runs; the handler then sees the factor verified, or
 * the call is refused. Codes longer than RPC_OTP_MAX are kept as given but
 * malformed (the checker refuses them). Wiped when no longer needed.
 */
#define RPC_OTP_MAX 16
void rpc_call_set_otp(struct rpc_call *call, const char *value, size_t len);

/* The call's deadline passed: the handler is cancelled, DEADLINE_EXCEEDED answered. */
void rpc_call_deadline(struct rpc_call *call);

/*
 * The client's deadline (grpc-timeout) is usec from now. A handler that
 * answers after it (before the transport's timer fired) gets its answer
 * replaced by DEADLINE_EXCEEDED, recorded as such with what it would have
 * been: the caller never sees OK for a call it gave up on.
 */
void rpc_call_set_deadline(struct rpc_call *call, int64_t usec);

/* 1 once an answer is chosen (sent or waiting for its audit record). */
int rpc_call_decided(const struct rpc_call *call);

/* The stream is gone: no answer is sent any more; the call frees itself when done. */
void rpc_call_detach(struct rpc_call *call);

/* "0a1b2c3d00000001" (borrowed from the call). */
const char *rpc_call_request_id(const struct rpc_call *call);

#endif
