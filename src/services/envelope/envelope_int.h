/*
 * envelope_int.h - what the files of boltseal.v1.EnvelopeService share: one
 * call's state (struct ecall, its items) and the steps every operation is
 * made of (docs/envelope.md):
 *   1. loop: the request's form: each item's context checked and made
 *      canonical (formats/envblob.h), blobs decoded;
 *   2. work queue, only when a context names a vehicle ("vehicle_id") or
 *      the call is for a vehicle: the vehicles' records, from a store
 *      snapshot (envelope_vehicle.c);
 *   3. loop: the policy, per item, with request.context.<name> and the
 *      vehicle's attributes; the KEK checked (purpose envelope, AES-256-GCM,
 *      the version present, enabled and not below the minimum decryption
 *      version);
 *   4. key door: ENCRYPT (data keys drawn from the HSM's generator) or
 *      DECRYPT, one operation per KEK version;
 *   5. loop: the answer; every plaintext wiped once it is packed (the RPC
 *      layer wipes the packed answer after sending).
 */
#ifndef BS_ENVELOPE_INT_H
#define BS_ENVELOPE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/workq.h"
#include "formats/envblob.h"
#include "keyops/keyops.h"
#include "policy/policy.h"
#include "rpc/rpc_service.h"
#include "services/services.h"
#include "services/vehicles/registry.h"

#define ENV_BATCH_DEFAULT 1000
#define ENV_DATAKEY_LEN 32
#define ENV_MSG_MAX 200
/* request.context.<64 bytes>, vehicle.<64 bytes> */
#define ENV_ATTR_NAME_MAX (sizeof("request.context.") + ENVCTX_KEY_MAX)
#define ENV_ATTRS_MAX (ENVCTX_MAX + VEHICLE_ATTRS_MAX + 4)

enum env_op {
	ENV_GENERATE,            /* GenerateDataKey */
	ENV_GENERATE_NOPT,       /* GenerateDataKeyWithoutPlaintext */
	ENV_GENERATE_BATCH,
	ENV_ENCRYPT,
	ENV_DECRYPT,
	ENV_DECRYPT_BATCH,
	ENV_REENCRYPT,
	ENV_FOR_VEHICLE,
};

/* An encryption context as given (borrowed strings) and in canonical form. */
struct env_ctx {
	struct envctx_entry e[ENVCTX_MAX];
	size_t n;
	uint8_t *canon;          /* owned */
	size_t canon_len;
};

/* One item of a call: a data key, a payload, or a blob to open. */
struct env_item {
	int status;              /* gRPC status of this item (0 while it goes on) */
	char msg[ENV_MSG_MAX];
	struct env_ctx ctx;      /* the context (ReEncrypt: the source's) */
	const char *vehicle;     /* the context's vehicle_id entry, or NULL */
	json_t *veh;             /* its registry record (NULL: none, or not read) */
	/* the KEK version this item is encrypted (or decrypted) with */
	char kek[ENVBLOB_NAME_MAX + 1];
	uint32_t kek_version;
	uint8_t hsm_id[KEYOPS_ID_LEN];
	struct envblob blob;     /* the blob: decoded from the request, or being made */
	const uint8_t *in;       /* the request's blob (borrowed), for the audit record's hash */
	size_t in_len;
	uint8_t *aad;            /* owned */
	size_t aad_len;
	const uint8_t *pt;       /* Encrypt: the request's plaintext (borrowed) */
	size_t pt_len;
	uint8_t *plain;          /* a data key or decrypted payload: owned, wiped */
	size_t plain_len;
	uint8_t *out;            /* the blob made: owned */
	size_t out_len;
};

struct env_state {
	unsigned batch_max;
};

struct ecall {
	struct workq_job job;    /* first: the vehicle read */
	struct rpc_call *call;
	struct svc_ctx *svc;
	struct env_state *st;
	enum env_op op;
	struct env_item *items;
	size_t nitems;
	size_t pending;          /* key-door operations outstanding */
	int rc;                  /* the vehicle read's */
	/* ENCRYPT side: the KEK named by the request (ReEncrypt: the destination) */
	char kek[ENVBLOB_NAME_MAX + 1];
	struct env_ctx dst_ctx;  /* ReEncrypt: the destination context (n == 0: the source's) */
	int stage2;              /* ReEncrypt: decrypted, now encrypting */
	char src_kek[ENVBLOB_NAME_MAX + 1];   /* ReEncrypt: the blob's key version */
	uint32_t src_version;
	int no_plaintext;        /* GenerateDataKeyBatch without_plaintext */
	/* GenerateDataKeyForVehicle */
	char vehicle[VEHICLE_ID_MAX + 1];
	const char *key_id;      /* the identity asked for ("" any), borrowed */
	char *jwe;
	char vehicle_kid[96];
	uint8_t *veh_spki;       /* the identity's public key (owned) */
	size_t veh_spki_len;
	const char *ctx_keys[ENVCTX_MAX + 1];   /* its context with vehicle_id added */
	const char *ctx_values[ENVCTX_MAX + 1];
};

/* ---- envelope_items.c: contexts, blobs, policy attributes ------------------ */

/*
 * Fills c from n entries (keys[i], values[i], borrowed) and makes its
 * canonical form. 0, or -1 with a message for the caller in msg.
 */
int env_ctx_set(struct env_ctx *c, size_t n, const char *const *keys,
    const char *const *values, char msg[ENV_MSG_MAX]);
void env_ctx_clear(struct env_ctx *c);
/* The context as a compact JSON object with sorted keys (malloc'd; NULL on error). */
char *env_ctx_json(const struct env_ctx *c);

/*
 * The policy attributes of item it: request.context.<key> for each entry,
 * vehicle.status and vehicle.<attribute> when its vehicle's record was
 * read. names holds the attribute names. Returns the count.
 */
size_t env_item_attrs(const struct env_item *it, const struct env_ctx *ctx,
    struct policy_attr *attrs, char names[][ENV_ATTR_NAME_MAX], size_t max);

/*
 * Sets it's blob header for an encryption under (kek, version) of len
 * bytes with a fresh random nonce, and its aad over ctx. 0 or an error.
 */
int env_item_seal_prepare(struct env_item *it, const char *kek, uint32_t version,
    const uint8_t hsm_id[KEYOPS_ID_LEN], size_t len, const struct env_ctx *ctx) BS_WUR;
/* Encodes the blob from it->blob and ct || tag (ENCRYPT's answer) into it->out. */
int env_item_seal_finish(struct env_item *it, const uint8_t *ct_tag, size_t len) BS_WUR;

/* Frees what items own, wiping plaintexts. */
void env_items_free(struct env_item *items, size_t n);

/* ---- envelope.c ----------------------------------------------------------- */

/* Answers the call with status (not OK) and msg, and frees c. */
void env_fail(struct ecall *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ecall_free(struct ecall *c);
/* A new call of n items; NULL with the call answered (out of memory). */
struct ecall *ecall_new(struct rpc_call *call, enum env_op op, size_t nitems);
/* The request's KEK name into c->kek; -1 (answered) when it is not a key name. */
int env_set_kek(struct ecall *c, const char *name);
/*
 * Item i's context from a map field's n entries; a refusal fails the item
 * (batch) or the call (-1, answered, c freed).
 */
int env_item_ctx(struct ecall *c, size_t i, size_t n, void *const *entries, int batch);
/* The same from parallel arrays of borrowed strings. */
int env_item_ctx_arrays(struct ecall *c, size_t i, size_t n, const char *const *keys,
    const char *const *values);
/* Steps 2 to 5 of a call whose items are ready. */
void env_go(struct ecall *c);
/* Step 3 on: policy, keys, the key door (after the vehicle read, or at once). */
void env_authorize_and_run(struct ecall *c);

/* ---- envelope_vehicle.c --------------------------------------------------- */

/* Step 2: reads the records of the vehicles the items name, then env_authorize_and_run. */
void env_read_vehicles(struct ecall *c);
/* The handler of GenerateDataKeyForVehicle. */
void env_generate_for_vehicle(struct rpc_call *call, const ProtobufCMessage *msg);
/*
 * ForVehicle after its data key: the JWE to the vehicle's identity (c->jwe).
 * 0, or -1 with the call answered.
 */
int env_vehicle_jwe(struct ecall *c, const uint8_t *dk, size_t dk_len);
/* The identity check before any key work: 0, or -1 with the call answered. */
int env_vehicle_check(struct ecall *c);

/* ---- envelope_tokenize.c -------------------------------------------------- */

void env_tokenize(struct rpc_call *call, const ProtobufCMessage *msg);

#endif
