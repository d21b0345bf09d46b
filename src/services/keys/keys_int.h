/*
 * keys_int.h - what the files of the KeyService share (not a public
 * header): the handlers the descriptor in keyservice.c lists, and the
 * helpers every handler uses (errors, the key door, key lookup and checks,
 * protobuf Key messages). Event loop thread only.
 */
#ifndef BS_KEYS_INT_H
#define BS_KEYS_INT_H

#include <stddef.h>

#include "boltseal/v1/keys.pb-c.h"
#include "keyops/keyclient.h"
#include "rpc/rpc_service.h"
#include "types/types.h"

#define SIG_MAX 512            /* RSA-3072: 384 bytes */

struct catalog_key;
struct catalog_version;
struct policy_attr;
struct svc_ctx;
struct event;

/* The handlers (keys_manage.c, keys_sign.c, keys_verify.c). */
void keysvc_create_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_rotate_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_get_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_list_keys(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_get_public_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_sign(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_sign_batch(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_verify(struct rpc_call *call, const ProtobufCMessage *msg);
/* keys_lifecycle.c */
void keysvc_disable_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_enable_key(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_schedule_key_destruction(struct rpc_call *call, const ProtobufCMessage *msg);
void keysvc_cancel_key_destruction(struct rpc_call *call, const ProtobufCMessage *msg);

/* The service's state (its "keys" settings and the destroyer's timer). */
struct keysvc_state {
	struct svc_ctx *svc;
	unsigned min_pending_days;      /* keys.min_pending_days */
	unsigned long check_ms;         /* keys.destruction_check_ms */
	struct event *timer;
	unsigned busy;                  /* destructions in flight */
	int due;                        /* a pass is wanted */
};
/* Arms the destroyer (keys_lifecycle.c) and removes leftover objects. 0 or an error (err). */
int keysvc_destroyer_start(struct keysvc_state *st, char *err, size_t errlen);
void keysvc_destroyer_stop(struct keysvc_state *st);

/* Fails call with the gRPC status err maps to and "what: description". */
void keysvc_fail_err(struct rpc_call *call, int err, const char *what);

/*
 * Sends r through the key door; done(arg, answer) runs later on the loop.
 * Registers the cancellation with call. Returns 0 or the submit error.
 */
int keysvc_submit(struct rpc_call *call, struct svc_ctx *svc, const struct keyop_request *r,
    keyclient_done_fn done, void *arg);
/* Answers a key-door submit error (queue full, pool stopped). */
void keysvc_fail_submit(struct rpc_call *call, int rc);
/* Cancel hook and submit-error answer for jobs on the work queue. */
void keysvc_work_cancel(void *arg);
void keysvc_fail_work_submit(struct rpc_call *call, int rc);

/*
 * Looks name up and asks the policy (with extra attributes); answers
 * INVALID_ARGUMENT, PERMISSION_DENIED or NOT_FOUND itself and returns NULL.
 */
const struct catalog_key *keysvc_lookup_key_attrs(struct rpc_call *call, const char *name,
    const struct policy_attr *extra, size_t nextra);
const struct catalog_key *keysvc_lookup_key(struct rpc_call *call, const char *name);

/* NULL, or why a sign/verify input of len bytes is not acceptable for alg. */
const char *keysvc_input_problem(enum bs_alg alg, int is_digest, size_t len);
/* The request's signature format, or INVALID_ARGUMENT answered (-1). */
int keysvc_sig_format(struct rpc_call *call, Boltseal__V1__SignatureFormat f,
    enum bs_sig_format *out);

/*
 * The enabled primary version of k for Sign/SignBatch (purpose generic);
 * answers the error itself and returns NULL.
 */
const struct catalog_version *keysvc_signing_version(struct rpc_call *call,
    const struct catalog_key *k);
/* A SIGN of version v of k with the inputs (borrowed). */
void keysvc_sign_request(struct keyop_request *r, const struct catalog_key *k,
    const struct catalog_version *v, struct keyop_input *inputs, size_t n);
/* The key side's signature (raw r||s for ECDSA) in format fmt, into out (SIG_MAX bytes). */
int keysvc_encode_sig(enum bs_alg alg, enum bs_sig_format fmt, const struct keyop_sig *ks,
    uint8_t *out, size_t *out_len);

/* A heap-allocated protobuf Key for k (NULL: no memory); free with keysvc_key_pb_free. */
Boltseal__V1__Key *keysvc_key_pb_new(const struct catalog_key *k);
void keysvc_key_pb_free(Boltseal__V1__Key *pb);

#endif
