/*
 * rpc_service.h - the RPC layer as a service sees it: method and service
 * descriptors, the registry, and the request context handed to handlers.
 *
 * A service is one folder under services/ exporting one struct rpc_service
 * (listed once in services/registry.c). Its handlers run on the event loop
 * thread with the decoded request; by then the caller's certificate mapped
 * to a principal and some role of it grants the method (admission, at
 * HEADERS). A handler asks for the policy's verdict on what the request
 * names (rpc_call_authorize) before any key work, and answers exactly once
 * with rpc_call_finish*()/rpc_call_fail(), before returning or later. The
 * RPC layer makes the call's audit record durable before the answer leaves.
 * Handlers never see sockets, HTTP/2 or gRPC framing.
 */
#ifndef BS_RPC_SERVICE_H
#define BS_RPC_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/bs_error.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"

struct rpc_call;
struct rpc_registry;
struct policy_attr;

/*
 * Runs a method on its decoded request (owned by the call, valid until the
 * call is freed, so a handler that answers later may keep pointers into it).
 */
typedef void (*rpc_handler_fn)(struct rpc_call *call, const ProtobufCMessage *req);

/* How a method is authorized at admission. */
enum rpc_authz {
	RPC_AUTHZ_POLICY = 0,       /* a role must grant the method; the handler asks for the verdict */
	RPC_AUTHZ_ANY_PRINCIPAL,    /* any mapped principal (health): authorized at admission */
};

/* The answer does not wait for the audit record (health must answer while the log is down). */
#define RPC_F_AUDIT_NOWAIT 0x1u
/*
 * Server streaming: the handler sends messages with rpc_call_send_pb (none
 * to many) and ends the call with rpc_call_finish (no message; a status).
 * Its audit record is written when it ends.
 */
#define RPC_F_STREAM 0x2u
/*
 * Request streaming too (bidirectional, with RPC_F_STREAM; any-principal
 * methods only): the handler runs once per request message as it arrives,
 * the request valid only while it runs; it sends none to many messages and
 * may end the call (rpc_call_finish). When the client ends its stream the
 * call ends OK, unless a handler ended it; a client that leaves first is
 * recorded CANCELLED. One audit record per call, at its end. No second
 * factor is checked.
 */
#define RPC_F_REQUEST_STREAM 0x4u

struct rpc_method {
	const char *name;                              /* "Sign" */
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *response;
	enum rpc_authz authz;
	unsigned flags;                                /* RPC_F_* */
	rpc_handler_fn handler;
};

/*
 * One setting of a service's configuration section: the line
 * "<section>.<name> = N" of boltsealed.conf, a decimal number in [min, max];
 * def when the line is absent.
 */
#define RPC_SETTING_NAME_MAX 64

struct rpc_setting {
	const char *name;                              /* "max_text" */
	unsigned long min, max, def;
	/*
	 * 1: also lines "<section>.<name>.<NAME> = N", NAME 1..64 of
	 * [a-z0-9_.-] (CommandService: a maximum per command), each in
	 * [min, max] and handed to the service's named() after init.
	 */
	int per_name;
};

struct rpc_service {
	const char *name;                              /* "boltseal.v1.KeyService" */
	const struct rpc_method *methods;
	size_t nmethods;
	int test_only;                                 /* served only with test_services = on */
	const char *section;                           /* "echo": its settings; NULL: none */
	const struct rpc_setting *settings;
	size_t nsettings;
	/*
	 * Optional, at start (before the first call): values holds the
	 * section's settings in declaration order (borrowed for the call);
	 * *state becomes what rpc_call_service_state() gives the handlers.
	 * Returns 0 or an error (err says why; the daemon does not start).
	 */
	int (*init)(void *env, const unsigned long *values, void **state, char *err,
	    size_t errlen);
	/*
	 * Optional (required with a per_name setting): after init, once per
	 * "<section>.<setting>.<NAME> = N" line, in file order (setting: its
	 * index in settings). 0 or an error (err says why; the daemon does not
	 * start). Also called with state NULL when the configuration is read
	 * (rpc_registry_configure, boltsealed -n): a check of the name and
	 * value alone, whose refusal is reported with the line.
	 */
	int (*named)(void *state, size_t setting, const char *name, unsigned long value,
	    char *err, size_t errlen);
	void (*fini)(void *state);                     /* optional, at stop */
	/*
	 * Optional: the service's contribution to grpc.health.v1: 1 while it
	 * can serve (given the shared env and its state), 0 otherwise.
	 */
	int (*serving)(void *env, void *state);
};

/* A "<section>.<name> = value" line as the configuration file has it (borrowed). */
struct rpc_setting_line {
	const char *key;
	const char *value;
	unsigned line;
};

/* ---- registry ------------------------------------------------------------ */

/*
 * Builds the registry of the n services (borrowed, must outlive it).
 * Returns 0, BS_ERR_NOMEM, or BS_ERR_INVALID (err names the problem: a
 * method without handler or request type, a path served twice).
 */
int rpc_registry_new(const struct rpc_service *const *services, size_t n,
    struct rpc_registry **out, char *err, size_t errlen) BS_WUR;

/*
 * Stops (if started) and frees. NULL is a no-op.
 */
void rpc_registry_free(struct rpc_registry *r);

/*
 * Checks the settings lines of the configuration file (named file in
 * messages) against the sections of the served services and keeps their
 * values (defaults for absent lines). Every problem is one "FILE:LINE:
 * message" line in err (cut at a line boundary): a section no served
 * service has, a setting its service does not declare, a value that is not
 * a decimal number or is out of range. Returns 0, BS_ERR_CONFIG or
 * BS_ERR_NOMEM.
 */
int rpc_registry_configure(struct rpc_registry *r, const struct rpc_setting_line *lines,
    size_t n, const char *file, char *err, size_t errlen) BS_WUR;

/*
 * Runs each service's init with env and its settings, in registry order.
 * If one fails, those started are stopped again and its error is returned
 * (err names the service). 0 or that error.
 */
int rpc_registry_start(struct rpc_registry *r, void *env, char *err, size_t errlen) BS_WUR;

/* Runs each started service's fini, in reverse order. */
void rpc_registry_stop(struct rpc_registry *r);

/*
 * 1 if the service called name (NULL: every service) says it can serve
 * (services without a serving hook always can), 0 if not, -1 if no service
 * of that name is served.
 */
int rpc_registry_serving(const struct rpc_registry *r, const char *name, void *env);

/* The method served at path ("/boltseal.v1.KeyService/Sign"), or NULL. */
const struct rpc_method *rpc_registry_find(const struct rpc_registry *r, const char *path);
/* The state of the service that serves m (NULL: none, or not started). */
void *rpc_registry_state(const struct rpc_registry *r, const struct rpc_method *m);

/* The served services: how many, and the name of the i-th ("grpc.health.v1.Health"). */
size_t rpc_registry_service_count(const struct rpc_registry *r);
const char *rpc_registry_service_name(const struct rpc_registry *r, size_t i);
/* 1 if the registry serves a service of that name ("boltseal.v1.KeyService"). */
int rpc_registry_has_service(const struct rpc_registry *r, const char *name);

/* Number of methods, and the i-th full name "boltseal.v1.KeyService/Sign" (for the policy). */
size_t rpc_registry_count(const struct rpc_registry *r);
const char *rpc_registry_name(const struct rpc_registry *r, size_t i);

/*
 * The names a policy served by r may use (policy_parse's schema): every
 * method r serves (names borrowed from r) and every key purpose. Returns 0,
 * or BS_ERR_TOO_BIG if r serves more than RPC_SCHEMA_METHODS_MAX methods.
 */
#define RPC_SCHEMA_METHODS_MAX 256
struct rpc_policy_schema {
	const char *methods[RPC_SCHEMA_METHODS_MAX];
	struct policy_schema schema;    /* points into methods */
};
int rpc_registry_policy_schema(const struct rpc_registry *r, struct rpc_policy_schema *out) BS_WUR;

/* ---- the request context ------------------------------------------------- */

/* Finishes call with a gRPC status and, for OK, the serialized response. */
void rpc_call_finish(struct rpc_call *call, int grpc_status, const char *message,
    const uint8_t *resp, size_t resp_len);
/* Finishes with OK and msg packed with protobuf-c. */
void rpc_call_finish_pb(struct rpc_call *call, const ProtobufCMessage *msg);
/* Finishes with an error status (!= OK) and a message for the client. */
void rpc_call_fail(struct rpc_call *call, int grpc_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Registers fn(arg) to run if the call is abandoned while the handler works. */
void rpc_call_on_cancel(struct rpc_call *call, void (*fn)(void *arg), void *arg);
/* 1 if the call was abandoned (the answer will be dropped). */
int rpc_call_abandoned(const struct rpc_call *call);

/* Verified caller identity (URI SAN), its principal, the request id and :path. */
const char *rpc_call_identity(const struct rpc_call *call);
const char *rpc_call_principal(const struct rpc_call *call);
const char *rpc_call_request_id(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);
/* SHA-256 of the caller's verified leaf certificate (32 bytes, owned by the call). */
const uint8_t *rpc_call_cert_sha256(const struct rpc_call *call);

/* The services' shared state given to the dispatcher (rpc_dispatcher_opts.env). */
void *rpc_call_env(const struct rpc_call *call);
/* The state the call's service's init made (NULL: none). */
void *rpc_call_service_state(const struct rpc_call *call);

/*
 * Asks the policy for its verdict on key (NULL for calls that name no key)
 * of purpose, given the request attributes. 1: allowed, go on. 0: refused
 * and answered, so the handler must just return: PERMISSION_DENIED (no grant
 * matches), UNAUTHENTICATED RPC_SF_NEEDED_MESSAGE (only grants that
 * require a second factor match, and the call has none verified) or
 * FAILED_PRECONDITION "this call needs N approvals of role R" (only grants
 * with approvals match, and the call is not an approved one carrying
 * enough: see rpc_call_spawn). The precise
 * reason goes to the audit log only. A handler that answers OK without an
 * allowed verdict gets INTERNAL instead.
 */
int rpc_call_authorize(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs);
/*
 * The same, counting only grants with a condition on attribute tested
 * (NULL: all): CommandService asks so for a vehicle that is not active, so
 * that only grants naming vehicle.status reach it.
 */
int rpc_call_authorize_tested(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, const char *tested);
/*
 * One item of a batch: the verdict on key for the item's attributes,
 * without answering the call. 1: allowed (the call counts as authorized,
 * so it may answer OK with the other items' refusals). 0: refused, and
 * *grpc_status is the item's status (PERMISSION_DENIED, UNAUTHENTICATED for
 * a second factor, FAILED_PRECONDITION for approvals); the first refusal's
 * reason goes to the call's audit record.
 */
int rpc_call_authorize_item(struct rpc_call *call, const char *key, const char *purpose,
    const struct policy_attr *attrs, size_t nattrs, int *grpc_status) BS_WUR;
/*
 * 0 when no grant the caller's roles have for this call's method tests an
 * attribute starting with prefix ("vehicle."): the handler need not read
 * what would only feed those attributes. 1 otherwise (and when unsure).
 */
int rpc_call_policy_tests(struct rpc_call *call, const char *prefix);
/*
 * The verdict for the same caller on method ("boltseal.v1.KeyService/GetKey";
 * NULL = this call's) without answering (ListKeys filters with it).
 */
int rpc_call_may(struct rpc_call *call, const char *method, const char *key,
    const char *purpose, const struct policy_attr *attrs, size_t nattrs);

/*
 * 1 if some role of the caller names method ("boltseal.v1.KeyService/Sign")
 * at all, whatever its keys, conditions and requirements (AdminService
 * takes proposals only of methods the proposer is granted).
 */
int rpc_call_granted(struct rpc_call *call, const char *method);

/* ---- second factor and approvals ---------------------------------------------- */

/* The message of UNAUTHENTICATED when a grant needs a second factor the call lacks. */
#define RPC_SF_NEEDED_MESSAGE "this call requires a second factor: send your current TOTP " \
	"code in the x-boltseal-otp request metadata"

struct rpc_dispatcher;

/*
 * A checker of second-factor codes (AdminService registers one at start).
 * check runs on the loop for a call that sent x-boltseal-otp (principal:
 * the caller's principal id, "" if none; code: what was sent, "" when
 * malformed; both borrowed for the call only), before its handler, and must
 * end, now or later, with exactly one rpc_call_second_factor_done.
 */
struct rpc_second_factor {
	void (*check)(void *arg, struct rpc_call *call, const char *principal, const char *code);
	void *arg;
};
/* Registers sf (copied; NULL: none, and codes are ignored). */
void rpc_dispatcher_set_second_factor(struct rpc_dispatcher *d, const struct rpc_second_factor *sf);
/*
 * The checker's verdict: ok 1 runs the handler with the factor verified
 * (grants that 'require mfa' then allow); ok 0 answers grpc_status with
 * message for the client and reason for the audit record (NULL: message).
 */
void rpc_call_second_factor_done(struct rpc_call *call, int ok, int grpc_status,
    const char *message, const char *reason);
/* 1 if this call's second factor was verified. */
int rpc_call_second_factor_verified(const struct rpc_call *call);
/* 1 if the call sent an x-boltseal-otp header. */
int rpc_call_second_factor_given(const struct rpc_call *call);

/*
 * Runs method path ("/boltseal.v1.KeyService/ScheduleKeyDestruction") on
 * the serialized request msg (len bytes, borrowed for the call only) as a
 * call of parent's caller, carrying the approvals of proposal (its id) by
 * the principals approvers (n ids, copied): AdminService executes an
 * approved proposal so. The call is admitted, decoded, handled and audited
 * like any other (its record names the proposal and the approvers that
 * counted); a verdict "needs N approvals of ROLE" is met when at least N
 * distinct approvers, other than the caller's principal, hold ROLE in the
 * policy in force now. A second factor verified for parent counts for it.
 * done(arg, answer, authorized) runs exactly once with its answer (borrowed
 * for the callback), possibly before rpc_call_spawn returns; authorized is
 * 0 when the call was refused before its handler did any work (admission,
 * decode, or a verdict it did not meet: too few approvals, no second
 * factor), 1 when the policy let it through. 0, or BS_ERR_NOMEM (done is
 * not called).
 */
struct rpc_answer;
int rpc_call_spawn(struct rpc_call *parent, const char *path, const uint8_t *msg, size_t len,
    const char *proposal, const char *const *approvers, size_t n,
    void (*done)(void *arg, const struct rpc_answer *a, int authorized), void *arg) BS_WUR;

/*
 * The next message of a server-streaming call (RPC_F_STREAM), before
 * rpc_call_finish. Returns 0; BS_ERR_UNAVAILABLE (the caller is gone, the
 * call was answered, or the transport cannot stream: finish the call),
 * BS_ERR_PRECONDITION (not a streaming method, or not authorized),
 * BS_ERR_NOMEM.
 */
int rpc_call_send_pb(struct rpc_call *call, const ProtobufCMessage *msg) BS_WUR;

/* What the call's audit record names: key and version (-1 none), target, event. */
void rpc_call_audit_key(struct rpc_call *call, const char *key, int64_t version);
void rpc_call_audit_target(struct rpc_call *call, const char *target);
void rpc_call_audit_event(struct rpc_call *call, const char *event);
/* Adds the SHA-256 of one payload signed for the caller. 0 or BS_ERR_NOMEM. */
int rpc_call_audit_payload(struct rpc_call *call, const uint8_t sha256[32]) BS_WUR;
/*
 * Sets a service-defined field of the audit record (written under
 * "fields"; name is [a-z0-9_.]{1,32}, value any UTF-8, both copied; setting
 * a name again replaces its value). Never pass a secret.
 * Returns 0, BS_ERR_INVALID (bad name, or more than RPC_AUDIT_FIELDS_MAX),
 * BS_ERR_NOMEM.
 */
#define RPC_AUDIT_FIELDS_MAX 16
int rpc_call_audit_field(struct rpc_call *call, const char *name, const char *value) BS_WUR;

#endif
