/*
 * services.h - the contract between the gRPC server (net/server.c) and the
 * service handlers (the files of services/).
 *
 * The server parses HTTP/2 and gRPC framing, checks limits, and calls a
 * method's handler on the event loop thread with the complete, size-capped
 * request message. A handler answers exactly once with rpc_call_finish*(),
 * either before returning or later (after HSM work). If the client goes away
 * first (RST_STREAM, deadline, connection loss), the server calls the
 * cancel hook the handler registered; rpc_call_finish*() on such a call is
 * still required (it only frees). Nothing below services/ knows about gRPC.
 */
#ifndef BS_SERVICES_H
#define BS_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct rpc_call;
struct hsm_pool;
struct catalog;
struct bs_config;
struct policy;
struct policy_attr;
struct audit_log;
struct checkpointer;

typedef void (*rpc_handler_fn)(struct rpc_call *call, const uint8_t *req, size_t req_len);

struct rpc_method {
	const char *path;          /* "/boltseal.v1.KeyService/Sign" */
	rpc_handler_fn handler;
	/* request type: the server refuses a message whose string fields hold
	 * NUL bytes or invalid UTF-8 before the handler sees it */
	const ProtobufCMessageDescriptor *request;
	/* 1: any mapped principal may call it (health); else the policy decides */
	int policy_exempt;
};

/* Shared state the handlers use; owned by main, loop thread only. */
struct svc_ctx {
	struct hsm_pool *pool;
	struct catalog *catalog;
	const struct bs_config *cfg;
	unsigned nworkers;
	int hsm_healthy;           /* last known HSM state: 1 usable, 0 not */
	int shutting_down;
	struct policy *policy;     /* current policy; replaced whole on SIGHUP */
	unsigned policy_gen;       /* bumped on every policy swap */
	struct audit_log *audit;   /* NULL when audit = off */
	struct checkpointer *checkpointer;   /* NULL when audit = off */
	int tls_ready;             /* every CRL present and current */
};

/* Finishes call with grpc status and (for status OK) the serialized message. */
void rpc_call_finish(struct rpc_call *call, int grpc_status, const char *message,
    const uint8_t *resp, size_t resp_len);
/* Finishes with OK and msg packed with protobuf-c. */
void rpc_call_finish_pb(struct rpc_call *call, const ProtobufCMessage *msg);
/* Finishes with an error status and message (status != OK). */
void rpc_call_fail(struct rpc_call *call, int grpc_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Registers fn(arg) to run if the call is abandoned while the handler works. */
void rpc_call_on_cancel(struct rpc_call *call, void (*fn)(void *arg), void *arg);
/* 1 if the call was abandoned (the answer will be dropped). */
int rpc_call_abandoned(const struct rpc_call *call);

/* Verified caller identity (URI SAN) and the server-assigned request id. */
const char *rpc_call_identity(const struct rpc_call *call);
/* The principal the caller's certificate maps to. */
const char *rpc_call_principal(const struct rpc_call *call);

/*
 * Asks the policy whether the call may act on key (NULL for calls that name
 * no key) of purpose, given the request attributes. 1: allowed, go on.
 * 0: denied; the call was answered PERMISSION_DENIED (the precise reason
 * goes to the audit log only), so the handler must just return. Every
 * handler calls this before any HSM work; a handler that answers OK
 * without it gets INTERNAL instead.
 */
int rpc_call_authorize(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs);
/*
 * The verdict for the same caller on method ("boltseal.v1.KeyService/GetKey";
 * NULL = this call's) without answering (ListKeys filters with it).
 */
int rpc_call_may(struct rpc_call *call, const char *method, const char *key,
    const char *purpose, const struct policy_attr *attrs, size_t nattrs);

/* What the call's audit record names: key and version (-1 none), target, event. */
void rpc_call_audit_key(struct rpc_call *call, const char *key, int64_t version);
void rpc_call_audit_target(struct rpc_call *call, const char *target);
void rpc_call_audit_event(struct rpc_call *call, const char *event);
/* Adds the SHA-256 of one payload signed for the caller. 0 or BS_ERR_NOMEM. */
int rpc_call_audit_payload(struct rpc_call *call, const uint8_t sha256[32]);
const char *rpc_call_request_id(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
struct svc_ctx *rpc_call_svc(const struct rpc_call *call);

/* Method tables, each terminated by { NULL, NULL, NULL }. */
extern const struct rpc_method keyservice_methods[];
extern const struct rpc_method health_methods[];
extern const struct rpc_method auditservice_methods[];

/* Maps a hsm/catalog error seen by a job to the service's health flag. */
void svc_note_hsm_result(struct svc_ctx *svc, int err);

#endif
