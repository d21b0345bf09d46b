/*
 * envelope.c - boltseal.v1.EnvelopeService (docs/envelope.md): data keys
 * generated, encrypted, decrypted and re-encrypted under HSM key-encryption
 * keys (AES-256-GCM, purpose envelope), the encryption context bound as
 * additional data; small payloads encrypted directly; batches; the minimum
 * decryption version of a KEK. The steps of a call are in envelope_int.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "boltseal/v1/envelope.pb-c.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/envelope/envelope_int.h"

#define PAYLOAD_MAX 4096

/*
 * Every map<string, string> field's entry type protobuf-c generates has this
 * layout: the message base, then key and value.
 */
struct pb_map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};
_Static_assert(sizeof(struct pb_map_entry) ==
    sizeof(Boltseal__V1__GenerateDataKeyRequest__ContextEntry), "map entry layout");

/* One key-door operation of a call: which items its answers belong to. */
struct env_sub {
	struct ecall *c;
	size_t *idx;
	size_t n;
};

static void run_keydoor(struct ecall *c);
static void answer(struct ecall *c);

/* ---- call lifetime ----------------------------------------------------------------- */

void
ecall_free(struct ecall *c)
{
	if (c == NULL)
		return;
	env_items_free(c->items, c->nitems);
	env_ctx_clear(&c->dst_ctx);
	if (c->jwe != NULL)
		OPENSSL_clear_free(c->jwe, strlen(c->jwe));
	free(c->veh_spki);
	free(c);
}

void
env_fail(struct ecall *c, int status, const char *fmt, ...)
{
	char msg[RPC_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_call_fail(c->call, status, "%s", msg);
	ecall_free(c);
}

struct ecall *
ecall_new(struct rpc_call *call, enum env_op op, size_t nitems)
{
	struct ecall *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->items = calloc(nitems > 0 ? nitems : 1, sizeof(*c->items))) == NULL) {
		free(c);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	c->call = call;
	c->svc = rpc_call_svc(call);
	c->st = rpc_call_service_state(call);
	c->op = op;
	c->nitems = nitems;
	return c;
}

/* The context of a protobuf map field into ctx; -1 with msg on a refusal. */
static int
ctx_from_map(struct env_ctx *ctx, size_t n, void *const *entries, char msg[ENV_MSG_MAX])
{
	const char *keys[ENVCTX_MAX], *values[ENVCTX_MAX];

	if (n > ENVCTX_MAX)
		return env_ctx_set(ctx, n, NULL, NULL, msg);   /* refused for its size */
	for (size_t i = 0; i < n; i++) {
		const struct pb_map_entry *e = entries[i];

		keys[i] = e->key;
		values[i] = e->value;
	}
	return env_ctx_set(ctx, n, keys, values, msg);
}

/* A context's vehicle_id entry, or NULL. */
static const char *
ctx_vehicle(const struct env_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n; i++)
		if (strcmp(ctx->e[i].key, "vehicle_id") == 0)
			return ctx->e[i].value;
	return NULL;
}

/* The item's vehicle: its context's vehicle_id entry, if it can be a vehicle id. */
static void
item_find_vehicle(struct env_item *it)
{
	const char *v = ctx_vehicle(&it->ctx);

	if (v != NULL && vehicle_id_valid(v))
		it->vehicle = v;
}

/* Item i's context; a refusal fails the item (batch) or the call (-1, answered). */
int
env_item_ctx(struct ecall *c, size_t i, size_t n, void *const *entries, int batch)
{
	struct env_item *it = &c->items[i];

	if (ctx_from_map(&it->ctx, n, entries, it->msg) != 0) {
		if (!batch) {
			env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s", it->msg);
			return -1;
		}
		it->status = GRPC_STATUS_INVALID_ARGUMENT;
		return 0;
	}
	item_find_vehicle(it);
	return 0;
}

int
env_item_ctx_arrays(struct ecall *c, size_t i, size_t n, const char *const *keys,
    const char *const *values)
{
	struct env_item *it = &c->items[i];

	if (env_ctx_set(&it->ctx, n, keys, values, it->msg) != 0) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s", it->msg);
		return -1;
	}
	item_find_vehicle(it);
	return 0;
}

/*
 * Step 2 when a context names a vehicle whose record matters (the call is
 * for a vehicle, or a grant for this method tests vehicle.*), else step 3
 * at once: the registry read costs about as much as the HSM's part of a
 * unary call (docs/benchmarks.md).
 */
void
env_go(struct ecall *c)
{
	if (c->op != ENV_FOR_VEHICLE && !rpc_call_policy_tests(c->call, "vehicle.")) {
		env_authorize_and_run(c);
		return;
	}
	for (size_t i = 0; i < c->nitems; i++)
		if (c->items[i].status == 0 && c->items[i].vehicle != NULL) {
			env_read_vehicles(c);
			return;
		}
	env_authorize_and_run(c);
}

/* ---- step 3: policy and keys -------------------------------------------------------- */

static const char *
purpose_of(const struct catalog_key *k)
{
	return k != NULL ? bs_purpose_name(k->purpose) : NULL;
}

/*
 * The policy's verdict on item it for key (ctx: the context it is judged
 * by). Unary calls: a refusal answers the call (-1). Batches: it fails the item.
 */
static int
authorize(struct ecall *c, struct env_item *it, const char *key, const struct env_ctx *ctx,
    int batch)
{
	struct policy_attr attrs[ENV_ATTRS_MAX];
	char names[ENV_ATTRS_MAX][ENV_ATTR_NAME_MAX];
	const struct catalog_key *k = catalog_find(c->svc->catalog, key);
	size_t n;
	int status;

	n = env_item_attrs(it, ctx, attrs, names, ENV_ATTRS_MAX - 1);
	if (c->op == ENV_FOR_VEHICLE)
		attrs[n++] = (struct policy_attr){ "request.vehicle_id", c->vehicle };
	if (!batch) {
		if (!rpc_call_authorize(c->call, key, purpose_of(k), attrs, n)) {
			ecall_free(c);
			return -1;
		}
		return 0;
	}
	if (!rpc_call_authorize_item(c->call, key, purpose_of(k), attrs, n, &status)) {
		it->status = status;
		snprintf(it->msg, sizeof(it->msg), status == GRPC_STATUS_PERMISSION_DENIED ?
		    "permission denied" : status == GRPC_STATUS_UNAUTHENTICATED ? "this item "
		    "requires a second factor (x-boltseal-otp)" : "this item needs approvals");
	}
	return 0;
}

/*
 * ReEncrypt's destination: the policy on the destination key with the
 * destination context. Its vehicle attributes are the source vehicle's
 * only when both contexts name the same vehicle; a destination naming
 * another one is judged without them (conditions on vehicle.* fail).
 */
static int
authorize_destination(struct ecall *c, struct env_item *it)
{
	const struct env_ctx *dst = c->dst_ctx.n > 0 ? &c->dst_ctx : &it->ctx;
	const char *a = ctx_vehicle(&it->ctx), *b = ctx_vehicle(dst);
	struct env_item view;

	memset(&view, 0, sizeof(view));
	if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0))
		view.veh = it->veh;
	return authorize(c, &view, c->kek, dst, 0);
}

/* A refusal of item it (status, message); for a unary call, the call's. */
static void
refuse(struct env_item *it, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
refuse(struct env_item *it, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
	va_end(ap);
	it->status = status;
}

/* The KEK key named for encryption: its primary version into it; else refuses it. */
static void
check_seal_key(struct ecall *c, struct env_item *it, const char *name, size_t len,
    const struct env_ctx *ctx)
{
	const struct catalog_key *k = catalog_find(c->svc->catalog, name);
	const struct catalog_version *v;

	if (k == NULL) {
		refuse(it, GRPC_STATUS_NOT_FOUND, "key '%s' not found", name);
		return;
	}
	if (k->purpose != BS_PURPOSE_ENVELOPE || k->alg != BS_ALG_AES_256_GCM) {
		refuse(it, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is not a key-encryption key "
		    "(purpose %s, algorithm %s; envelope keys are purpose envelope, aes-256-gcm)",
		    name, bs_purpose_name(k->purpose), bs_alg_name(k->alg));
		return;
	}
	if (k->state != BS_KEY_ENABLED) {
		refuse(it, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is %s", name,
		    bs_key_state_name(k->state));
		return;
	}
	if ((v = catalog_key_primary(k)) == NULL) {
		refuse(it, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' has no enabled version", name);
		return;
	}
	if (env_item_seal_prepare(it, name, v->version, v->hsm_id, len, ctx) != 0)
		refuse(it, GRPC_STATUS_INTERNAL, "cannot prepare the encryption");
}

/* The KEK version a decoded blob names: present, enabled, not below the minimum. */
static void
check_open_key(struct ecall *c, struct env_item *it)
{
	const struct catalog_key *k = catalog_find(c->svc->catalog, it->blob.kek);
	const struct catalog_version *v;

	if (k == NULL) {
		refuse(it, GRPC_STATUS_NOT_FOUND, "the blob's key '%s' not found", it->blob.kek);
		return;
	}
	if (k->purpose != BS_PURPOSE_ENVELOPE || k->alg != BS_ALG_AES_256_GCM) {
		refuse(it, GRPC_STATUS_INVALID_ARGUMENT, "the blob names key '%s', which is not a "
		    "key-encryption key", it->blob.kek);
		return;
	}
	if ((v = catalog_key_version(k, it->blob.kek_version)) == NULL) {
		refuse(it, GRPC_STATUS_INVALID_ARGUMENT, "the blob names version %u of key '%s', "
		    "which does not exist", it->blob.kek_version, it->blob.kek);
		return;
	}
	if (k->min_decrypt > it->blob.kek_version) {
		refuse(it, GRPC_STATUS_FAILED_PRECONDITION, "version %u of key '%s' is below its "
		    "minimum decryption version %u: blobs of it no longer decrypt",
		    it->blob.kek_version, it->blob.kek, k->min_decrypt);
		return;
	}
	if (!catalog_version_usable(k, v)) {
		refuse(it, GRPC_STATUS_FAILED_PRECONDITION, "version %u of key '%s' is %s",
		    it->blob.kek_version, it->blob.kek, bs_key_state_name(k->state != BS_KEY_ENABLED ?
		    k->state : v->state));
		return;
	}
	snprintf(it->kek, sizeof(it->kek), "%s", it->blob.kek);
	it->kek_version = v->version;
	memcpy(it->hsm_id, v->hsm_id, KEYOPS_ID_LEN);
	if (envblob_aad(&it->blob, it->ctx.canon, it->ctx.canon_len, &it->aad, &it->aad_len) != 0)
		refuse(it, GRPC_STATUS_INTERNAL, "cannot prepare the decryption");
}

static int
is_batch(const struct ecall *c)
{
	return c->op == ENV_GENERATE_BATCH || c->op == ENV_DECRYPT_BATCH;
}

static int
is_open(const struct ecall *c)
{
	return c->op == ENV_DECRYPT || c->op == ENV_DECRYPT_BATCH ||
	    (c->op == ENV_REENCRYPT && !c->stage2);
}

/* The size of what an item encrypts. */
static size_t
seal_len(const struct ecall *c, const struct env_item *it)
{
	if (c->op == ENV_ENCRYPT)
		return it->pt_len;
	if (c->op == ENV_REENCRYPT)
		return it->plain_len;
	return ENV_DATAKEY_LEN;
}

void
env_authorize_and_run(struct ecall *c)
{
	int batch = is_batch(c);

	for (size_t i = 0; i < c->nitems; i++) {
		struct env_item *it = &c->items[i];

		if (it->status != 0)
			continue;
		/* before anything is said of the key: no oracle for the unauthorised */
		if (authorize(c, it, is_open(c) ? it->blob.kek : c->kek, &it->ctx, batch) != 0)
			return;
		if (c->op == ENV_REENCRYPT && authorize_destination(c, it) != 0)
			return;
		if (it->status != 0)
			continue;
		if (is_open(c))
			check_open_key(c, it);
		else
			check_seal_key(c, it, c->kek, seal_len(c, it), &it->ctx);
		if (it->status != 0 && !batch) {
			env_fail(c, it->status, "%s", it->msg);
			return;
		}
	}
	if (c->op == ENV_FOR_VEHICLE && env_vehicle_check(c) != 0)
		return;
	if (batch) {
		size_t ok = 0;

		for (size_t i = 0; i < c->nitems; i++)
			ok += c->items[i].status == 0;
		if (ok == 0) {
			/* no item goes on: the call fails with the first item's status */
			env_fail(c, c->items[0].status, "item 0: %s", c->items[0].msg);
			return;
		}
	}
	run_keydoor(c);
}

/* ---- step 4: the key door ------------------------------------------------------------ */

static void
sub_free(struct env_sub *s)
{
	if (s != NULL)
		free(s->idx);
	free(s);
}

static const char *
open_error(int rc)
{
	if (rc == BS_ERR_SIG_INVALID)
		return "the blob does not decrypt with this encryption context (a different "
		    "context, a changed blob, or a blob of another key)";
	return "the HSM could not decrypt";
}

static void
keydoor_done(void *arg, struct keyop_answer *a)
{
	struct env_sub *s = arg;
	struct ecall *c = s->c;

	svc_note_hsm_result(c->svc, a->rc);
	for (size_t j = 0; j < s->n; j++) {
		struct env_item *it = &c->items[s->idx[j]];
		struct keyop_cipher *kc = a->rc == 0 && j < a->nciphers ? &a->ciphers[j] : NULL;
		int rc = kc != NULL ? kc->rc : a->rc != 0 ? a->rc : BS_ERR_INTERNAL;

		if (rc != 0) {
			if (is_open(c) && rc == BS_ERR_SIG_INVALID)
				refuse(it, GRPC_STATUS_INVALID_ARGUMENT, "%s", open_error(rc));
			else
				refuse(it, rc == BS_ERR_QUEUE_FULL ? GRPC_STATUS_RESOURCE_EXHAUSTED :
				    GRPC_STATUS_UNAVAILABLE, "the HSM operation failed (%s)",
				    bs_strerror(rc));
			continue;
		}
		if (is_open(c)) {
			/* take the plaintext: the answer is wiped when cleared */
			it->plain = kc->data;
			it->plain_len = kc->len;
			kc->data = NULL;
			kc->len = 0;
			continue;
		}
		if (kc->key_len > 0) {
			it->plain = kc->key;
			it->plain_len = kc->key_len;
			kc->key = NULL;
			kc->key_len = 0;
		}
		if (env_item_seal_finish(it, kc->data, kc->len) != 0)
			refuse(it, GRPC_STATUS_INTERNAL, "cannot encode the blob");
	}
	sub_free(s);
	if (--c->pending > 0)
		return;
	if (c->op == ENV_REENCRYPT && !c->stage2 && c->items[0].status == 0) {
		/* decrypted: now under the destination key and context */
		struct env_item *it = &c->items[0];
		const struct env_ctx *dst = c->dst_ctx.n > 0 ? &c->dst_ctx : &it->ctx;

		c->stage2 = 1;
		snprintf(c->src_kek, sizeof(c->src_kek), "%s", it->kek);
		c->src_version = it->kek_version;
		check_seal_key(c, it, c->kek, it->plain_len, dst);
		if (it->status != 0) {
			env_fail(c, it->status, "%s", it->msg);
			return;
		}
		run_keydoor(c);
		return;
	}
	answer(c);
}

/*
 * Submits one operation for the items still going whose key version is
 * that of item first (ENCRYPT: every item has the same). Returns 0 or an
 * error (nothing submitted).
 */
static int
submit_group(struct ecall *c, size_t first, unsigned char *taken)
{
	struct env_item *f = &c->items[first];
	struct keyop_request r;
	struct env_sub *s = NULL;
	int rc = BS_ERR_NOMEM;

	memset(&r, 0, sizeof(r));
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->idx = calloc(c->nitems, sizeof(*s->idx))) ==
	    NULL || (r.items = calloc(c->nitems, sizeof(*r.items))) == NULL)
		goto out;
	s->c = c;
	for (size_t i = first; i < c->nitems; i++) {
		struct env_item *it = &c->items[i];
		struct keyop_item *ki = &r.items[s->n];

		if (taken[i] || it->status != 0 || it->kek_version != f->kek_version ||
		    strcmp(it->kek, f->kek) != 0)
			continue;
		taken[i] = 1;
		memcpy(ki->nonce, it->blob.nonce, KEYOPS_NONCE_LEN);
		ki->aad = it->aad;
		ki->aad_len = it->aad_len;
		if (is_open(c)) {
			/* the blob's ct || tag: the tag follows the ciphertext in the blob */
			ki->data = it->blob.ct;
			ki->len = it->blob.ct_len + ENVBLOB_TAG_LEN;
		} else if (c->op == ENV_ENCRYPT) {
			ki->data = it->pt;
			ki->len = it->pt_len;
		} else if (c->op == ENV_REENCRYPT) {
			ki->data = it->plain;
			ki->len = it->plain_len;
		} else {
			ki->generate = 1;
		}
		s->idx[s->n++] = i;
	}
	r.type = is_open(c) ? KEYOP_DECRYPT : KEYOP_ENCRYPT;
	snprintf(r.key.name, sizeof(r.key.name), "%s", f->kek);
	r.key.version = f->kek_version;
	r.alg = BS_ALG_AES_256_GCM;
	memcpy(r.id, f->hsm_id, KEYOPS_ID_LEN);
	r.nitems = s->n;
	if (c->svc->shutting_down || c->svc->keys == NULL) {
		rc = BS_ERR_UNAVAILABLE;
		goto out;
	}
	if ((rc = keyclient_submit(c->svc->keys, &r, keydoor_done, s, NULL)) != 0)
		goto out;
	c->pending++;
	s = NULL;
out:
	free(r.items);
	sub_free(s);
	return rc;
}

static void
run_keydoor(struct ecall *c)
{
	unsigned char *taken = calloc(c->nitems, 1);
	int rc = taken == NULL ? BS_ERR_NOMEM : 0;

	/* one operation per KEK version (a decrypt batch may name several) */
	c->pending = 1;     /* held until every group is submitted */
	for (size_t i = 0; rc == 0 && i < c->nitems; i++)
		if (!taken[i] && c->items[i].status == 0)
			rc = submit_group(c, i, taken);
	free(taken);
	if (rc != 0) {
		for (size_t i = 0; i < c->nitems; i++)
			if (c->items[i].status == 0 && c->items[i].out == NULL &&
			    c->items[i].plain == NULL)
				refuse(&c->items[i], rc == BS_ERR_QUEUE_FULL ?
				    GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAVAILABLE,
				    rc == BS_ERR_QUEUE_FULL ? "HSM work queue is full, retry later" :
				    "HSM worker pool unavailable");
	}
	if (--c->pending > 0)
		return;
	/* nothing was submitted (or everything failed at once) */
	if (c->op == ENV_REENCRYPT && c->items[0].status != 0) {
		env_fail(c, c->items[0].status, "%s", c->items[0].msg);
		return;
	}
	answer(c);
}

/* ---- step 5: answers ------------------------------------------------------------------- */

/* Adds the SHA-256 of len bytes at p to the call's payload hashes (nothing for none). */
static int
audit_hash(struct ecall *c, const uint8_t *p, size_t len)
{
	uint8_t h[SHA256_DIGEST_LENGTH];

	if (p == NULL || len == 0)
		return 0;
	SHA256(p, len, h);
	return rpc_call_audit_payload(c->call, h);
}

/*
 * The audit record's fields: the key version, the context(s), the blobs'
 * hashes (each item's blob given, then the one made). 0, or BS_ERR_NOMEM
 * (the call cannot be recorded as it should be).
 */
static int
audit_items(struct ecall *c)
{
	const struct env_item *named = NULL;
	json_t *arr = NULL;
	char *s = NULL;
	int rc = BS_ERR_NOMEM;

	for (size_t i = 0; i < c->nitems; i++) {
		struct env_item *it = &c->items[i];

		if (it->status != 0)
			continue;
		if (named == NULL && it->kek[0] != '\0')
			named = it;
		if (audit_hash(c, it->in, it->in_len) != 0 ||
		    audit_hash(c, it->out, it->out_len) != 0)
			return BS_ERR_NOMEM;
	}
	/* the key of the first item that went through (a decrypt batch may name several) */
	if (named != NULL)
		rpc_call_audit_key(c->call, named->kek, named->kek_version);
	if (!is_batch(c)) {
		if ((s = env_ctx_json(&c->items[0].ctx)) == NULL ||
		    rpc_call_audit_field(c->call, "context", s) != 0)
			goto out;
		free(s);
		s = NULL;
		if (c->op == ENV_REENCRYPT) {
			char src[ENVBLOB_NAME_MAX + 16];

			snprintf(src, sizeof(src), "%s/v%u", c->src_kek, c->src_version);
			if (rpc_call_audit_field(c->call, "source_key", src) != 0)
				goto out;
		}
		if (c->op == ENV_REENCRYPT && c->dst_ctx.n > 0 &&
		    ((s = env_ctx_json(&c->dst_ctx)) == NULL ||
		    rpc_call_audit_field(c->call, "destination_context", s) != 0))
			goto out;
		rc = 0;
		goto out;
	}
	if ((arr = json_array()) == NULL)
		goto out;
	for (size_t i = 0; i < c->nitems; i++) {
		json_t *o = json_null();    /* an item whose context was refused */

		if (c->items[i].ctx.n > 0) {
			if ((s = env_ctx_json(&c->items[i].ctx)) == NULL)
				goto out;
			o = json_loads(s, 0, NULL);
			free(s);
			s = NULL;
		}
		if (o == NULL || json_array_append_new(arr, o) != 0)
			goto out;
	}
	if ((s = json_dumps(arr, JSON_COMPACT)) == NULL ||
	    rpc_call_audit_field(c->call, "contexts", s) != 0)
		goto out;
	rc = 0;
out:
	free(s);
	json_decref(arr);
	return rc;
}

static void
answer_batch_generate(struct ecall *c)
{
	Boltseal__V1__GenerateDataKeyBatchResponse r =
	    BOLTSEAL__V1__GENERATE_DATA_KEY_BATCH_RESPONSE__INIT;
	Boltseal__V1__DataKeyResult *res = calloc(c->nitems, sizeof(*res));
	Boltseal__V1__DataKeyResult **pp = calloc(c->nitems, sizeof(*pp));

	if (res == NULL || pp == NULL) {
		free(res);
		free(pp);
		env_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->nitems; i++) {
		struct env_item *it = &c->items[i];

		boltseal__v1__data_key_result__init(&res[i]);
		res[i].status_code = (uint32_t)it->status;
		res[i].error_message = it->status != 0 ? it->msg : (char *)"";
		if (it->status == 0) {
			if (!c->no_plaintext) {
				res[i].plaintext.data = it->plain;
				res[i].plaintext.len = it->plain_len;
			}
			res[i].ciphertext_blob.data = it->out;
			res[i].ciphertext_blob.len = it->out_len;
			if (r.key_version == 0) {
				r.key_version = it->kek_version;
				r.key_name = it->kek;
			}
		}
		pp[i] = &res[i];
	}
	if (r.key_name == NULL)
		r.key_name = c->kek;
	r.results = pp;
	r.n_results = c->nitems;
	rpc_call_finish_pb(c->call, &r.base);
	free(res);
	free(pp);
	ecall_free(c);
}

static void
answer_batch_decrypt(struct ecall *c)
{
	Boltseal__V1__DecryptBatchResponse r = BOLTSEAL__V1__DECRYPT_BATCH_RESPONSE__INIT;
	Boltseal__V1__DecryptResult *res = calloc(c->nitems, sizeof(*res));
	Boltseal__V1__DecryptResult **pp = calloc(c->nitems, sizeof(*pp));

	if (res == NULL || pp == NULL) {
		free(res);
		free(pp);
		env_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->nitems; i++) {
		struct env_item *it = &c->items[i];

		boltseal__v1__decrypt_result__init(&res[i]);
		res[i].status_code = (uint32_t)it->status;
		res[i].error_message = it->status != 0 ? it->msg : (char *)"";
		res[i].key_name = (char *)"";
		if (it->status == 0) {
			res[i].plaintext.data = it->plain;
			res[i].plaintext.len = it->plain_len;
			res[i].key_name = it->kek;
			res[i].key_version = it->kek_version;
		}
		pp[i] = &res[i];
	}
	r.results = pp;
	r.n_results = c->nitems;
	rpc_call_finish_pb(c->call, &r.base);
	free(res);
	free(pp);
	ecall_free(c);
}

static void
answer(struct ecall *c)
{
	struct env_item *it = &c->items[0];

	if (audit_items(c) != 0) {
		env_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (c->op == ENV_GENERATE_BATCH) {
		answer_batch_generate(c);
		return;
	}
	if (c->op == ENV_DECRYPT_BATCH) {
		answer_batch_decrypt(c);
		return;
	}
	if (it->status != 0) {
		env_fail(c, it->status, "%s", it->msg);
		return;
	}
	switch (c->op) {
	case ENV_GENERATE:
	case ENV_GENERATE_NOPT: {
		Boltseal__V1__GenerateDataKeyResponse r = BOLTSEAL__V1__GENERATE_DATA_KEY_RESPONSE__INIT;

		if (c->op == ENV_GENERATE) {
			r.plaintext.data = it->plain;
			r.plaintext.len = it->plain_len;
		}
		r.ciphertext_blob.data = it->out;
		r.ciphertext_blob.len = it->out_len;
		r.key_name = it->kek;
		r.key_version = it->kek_version;
		rpc_call_finish_pb(c->call, &r.base);
		break;
	}
	case ENV_ENCRYPT: {
		Boltseal__V1__EncryptResponse r = BOLTSEAL__V1__ENCRYPT_RESPONSE__INIT;

		r.ciphertext_blob.data = it->out;
		r.ciphertext_blob.len = it->out_len;
		r.key_name = it->kek;
		r.key_version = it->kek_version;
		rpc_call_finish_pb(c->call, &r.base);
		break;
	}
	case ENV_DECRYPT: {
		Boltseal__V1__DecryptResponse r = BOLTSEAL__V1__DECRYPT_RESPONSE__INIT;

		r.plaintext.data = it->plain;
		r.plaintext.len = it->plain_len;
		r.key_name = it->kek;
		r.key_version = it->kek_version;
		rpc_call_finish_pb(c->call, &r.base);
		break;
	}
	case ENV_REENCRYPT: {
		Boltseal__V1__ReEncryptResponse r = BOLTSEAL__V1__RE_ENCRYPT_RESPONSE__INIT;

		r.ciphertext_blob.data = it->out;
		r.ciphertext_blob.len = it->out_len;
		r.key_name = it->kek;
		r.key_version = it->kek_version;
		r.source_key_name = c->src_kek;
		r.source_key_version = c->src_version;
		rpc_call_finish_pb(c->call, &r.base);
		break;
	}
	case ENV_FOR_VEHICLE: {
		Boltseal__V1__GenerateDataKeyForVehicleResponse r =
		    BOLTSEAL__V1__GENERATE_DATA_KEY_FOR_VEHICLE_RESPONSE__INIT;

		/* the JWE of the data key, then the plaintext is gone */
		if (env_vehicle_jwe(c, it->plain, it->plain_len) != 0)
			return;
		r.ciphertext_blob.data = it->out;
		r.ciphertext_blob.len = it->out_len;
		r.key_name = it->kek;
		r.key_version = it->kek_version;
		r.jwe = c->jwe;
		r.vehicle_key_id = c->vehicle_kid;
		rpc_call_finish_pb(c->call, &r.base);
		break;
	}
	default:
		rpc_call_fail(c->call, GRPC_STATUS_INTERNAL, "unknown operation");
		break;
	}
	ecall_free(c);
}

/* ---- handlers -------------------------------------------------------------------------- */

/* The request's KEK name into c->kek; -1 (answered) when it is not a key name. */
int
env_set_kek(struct ecall *c, const char *name)
{
	if (!catalog_name_valid(name)) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "key name must be 1-64 characters of "
		    "[A-Za-z0-9._-] starting with a letter or digit");
		return -1;
	}
	snprintf(c->kek, sizeof(c->kek), "%s", name);
	return 0;
}

static void
generate_common(struct rpc_call *call, const ProtobufCMessage *msg, enum env_op op)
{
	const Boltseal__V1__GenerateDataKeyRequest *r =
	    (const Boltseal__V1__GenerateDataKeyRequest *)msg;
	struct ecall *c;

	if ((c = ecall_new(call, op, 1)) == NULL || env_set_kek(c, r->key_name) != 0 ||
	    env_item_ctx(c, 0, r->n_context, (void *const *)r->context, 0) != 0)
		return;
	env_go(c);
}

static void
generate_data_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	generate_common(call, msg, ENV_GENERATE);
}

static void
generate_data_key_nopt(struct rpc_call *call, const ProtobufCMessage *msg)
{
	generate_common(call, msg, ENV_GENERATE_NOPT);
}

static void
encrypt(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__EncryptRequest *r = (const Boltseal__V1__EncryptRequest *)msg;
	struct ecall *c;

	if ((c = ecall_new(call, ENV_ENCRYPT, 1)) == NULL || env_set_kek(c, r->key_name) != 0)
		return;
	if (r->plaintext.len == 0 || r->plaintext.len > PAYLOAD_MAX) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "plaintext must be 1..%d bytes (encrypt "
		    "larger data locally with a data key)", PAYLOAD_MAX);
		return;
	}
	if (env_item_ctx(c, 0, r->n_context, (void *const *)r->context, 0) != 0)
		return;
	c->items[0].pt = r->plaintext.data;
	c->items[0].pt_len = r->plaintext.len;
	env_go(c);
}

/* Decodes item i's blob (borrowed from the request); refuses the item if malformed. */
static void
item_blob(struct ecall *c, size_t i, const ProtobufCBinaryData *blob)
{
	struct env_item *it = &c->items[i];

	if (it->status != 0)
		return;
	if (blob->len == 0)
		refuse(it, GRPC_STATUS_INVALID_ARGUMENT, "ciphertext_blob is required");
	else if (envblob_decode(blob->data, blob->len, &it->blob) != 0)
		refuse(it, GRPC_STATUS_INVALID_ARGUMENT, "ciphertext_blob is not a boltseal "
		    "envelope blob (version 1, docs/envelope.md): malformed or truncated");
	it->in = blob->data;
	it->in_len = blob->len;
}

static void
decrypt(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__DecryptRequest *r = (const Boltseal__V1__DecryptRequest *)msg;
	struct ecall *c;

	if ((c = ecall_new(call, ENV_DECRYPT, 1)) == NULL ||
	    env_item_ctx(c, 0, r->n_context, (void *const *)r->context, 0) != 0)
		return;
	item_blob(c, 0, &r->ciphertext_blob);
	if (c->items[0].status != 0) {
		env_fail(c, c->items[0].status, "%s", c->items[0].msg);
		return;
	}
	if (r->key_name[0] != '\0' && strcmp(r->key_name, c->items[0].blob.kek) != 0) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the blob is under key '%s', not '%.64s'",
		    c->items[0].blob.kek, r->key_name);
		return;
	}
	env_go(c);
}

static void
reencrypt(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ReEncryptRequest *r = (const Boltseal__V1__ReEncryptRequest *)msg;
	struct ecall *c;
	char m[ENV_MSG_MAX];

	if ((c = ecall_new(call, ENV_REENCRYPT, 1)) == NULL ||
	    env_item_ctx(c, 0, r->n_source_context, (void *const *)r->source_context, 0) != 0)
		return;
	item_blob(c, 0, &r->ciphertext_blob);
	if (c->items[0].status != 0) {
		env_fail(c, c->items[0].status, "%s", c->items[0].msg);
		return;
	}
	if (env_set_kek(c, r->destination_key_name[0] != '\0' ? r->destination_key_name :
	    c->items[0].blob.kek) != 0)
		return;
	if (r->n_destination_context > 0 && ctx_from_map(&c->dst_ctx, r->n_destination_context,
	    (void *const *)r->destination_context, m) != 0) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "destination %s", m);
		return;
	}
	env_go(c);
}

static int
batch_size_ok(struct ecall *c, size_t n)
{
	if (n == 0 || n > c->st->batch_max) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "a batch has 1..%u items (envelope.batch_max)",
		    c->st->batch_max);
		return 0;
	}
	return 1;
}

static void
generate_batch(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GenerateDataKeyBatchRequest *r =
	    (const Boltseal__V1__GenerateDataKeyBatchRequest *)msg;
	struct ecall *c;

	if ((c = ecall_new(call, ENV_GENERATE_BATCH, r->n_contexts)) == NULL ||
	    !batch_size_ok(c, r->n_contexts) || env_set_kek(c, r->key_name) != 0)
		return;
	for (size_t i = 0; i < r->n_contexts; i++)
		(void)env_item_ctx(c, i, r->contexts[i]->n_entries, (void *const *)r->contexts[i]->entries,
		    1);
	c->no_plaintext = r->without_plaintext;
	env_go(c);
}

static void
decrypt_batch(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__DecryptBatchRequest *r = (const Boltseal__V1__DecryptBatchRequest *)msg;
	struct ecall *c;

	if ((c = ecall_new(call, ENV_DECRYPT_BATCH, r->n_items)) == NULL ||
	    !batch_size_ok(c, r->n_items))
		return;
	for (size_t i = 0; i < r->n_items; i++) {
		(void)env_item_ctx(c, i, r->items[i]->n_context, (void *const *)r->items[i]->context, 1);
		item_blob(c, i, &r->items[i]->ciphertext_blob);
	}
	env_go(c);
}

/* ---- SetMinDecryptionVersion ---------------------------------------------------------- */

struct mincall {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key[CATALOG_NAME_MAX + 1];
	uint32_t v;
	int rc;
};

static void
min_work(struct workq_job *job, void *ctx)
{
	struct mincall *m = (struct mincall *)job;

	(void)ctx;
	m->rc = catalog_db_raise_min_decrypt(m->svc->catalog, m->key, m->v);
}

static void
min_done(struct workq_job *job)
{
	struct mincall *m = (struct mincall *)job;
	Boltseal__V1__SetMinDecryptionVersionResponse r =
	    BOLTSEAL__V1__SET_MIN_DECRYPTION_VERSION_RESPONSE__INIT;
	const struct catalog_key *k;

	if (m->rc == 0) {
		catalog_mem_set_min_decrypt(m->svc->catalog, m->key, m->v);
		k = catalog_find(m->svc->catalog, m->key);
		r.key_name = m->key;
		r.min_decryption_version = k != NULL ? k->min_decrypt : m->v;
		rpc_call_audit_event(m->call, "min_decryption_version_raised");
		rpc_call_finish_pb(m->call, &r.base);
	} else if (m->rc == BS_ERR_PRECONDITION) {
		k = catalog_find(m->svc->catalog, m->key);
		rpc_call_fail(m->call, GRPC_STATUS_FAILED_PRECONDITION, "the minimum decryption "
		    "version of key '%s' is %u: it is never lowered", m->key,
		    k != NULL ? k->min_decrypt : 0);
	} else if (m->rc == BS_ERR_INVALID) {
		rpc_call_fail(m->call, GRPC_STATUS_INVALID_ARGUMENT, "key '%s' has no version %u",
		    m->key, m->v);
	} else {
		rpc_call_fail(m->call, GRPC_STATUS_UNAVAILABLE, "cannot write the key catalog (%s)",
		    bs_strerror(m->rc));
	}
	free(m);
}

static void
set_min_decrypt(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetMinDecryptionVersionRequest *r =
	    (const Boltseal__V1__SetMinDecryptionVersionRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	const struct catalog_key *k;
	struct mincall *m;
	char ver[16];
	struct policy_attr attr = { "request.min_decryption_version", ver };

	if (!catalog_name_valid(r->key_name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "key name must be 1-64 characters "
		    "of [A-Za-z0-9._-] starting with a letter or digit");
		return;
	}
	snprintf(ver, sizeof(ver), "%u", r->min_decryption_version);
	k = catalog_find(svc->catalog, r->key_name);
	rpc_call_audit_key(call, r->key_name, r->min_decryption_version);
	if (!rpc_call_authorize(call, r->key_name, purpose_of(k), &attr, 1))
		return;
	if (k == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' not found", r->key_name);
		return;
	}
	if (k->purpose != BS_PURPOSE_ENVELOPE || k->alg != BS_ALG_AES_256_GCM) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is not a "
		    "key-encryption key (purpose envelope, aes-256-gcm)", r->key_name);
		return;
	}
	if (r->min_decryption_version == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "min_decryption_version must be "
		    "1..the key's newest version");
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	m->job.work = min_work;
	m->job.done = min_done;
	m->call = call;
	m->svc = svc;
	snprintf(m->key, sizeof(m->key), "%s", r->key_name);
	m->v = r->min_decryption_version;
	if (workq_submit(svc->work, &m->job) != 0) {
		free(m);
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "work queue full or unavailable");
	}
}

/* ---- the service ------------------------------------------------------------------------ */

static const struct rpc_setting settings[] = {
	{ "batch_max", 1, KEYOPS_SIGN_MAX, ENV_BATCH_DEFAULT, 0 },
};

static int
init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct env_state *st = calloc(1, sizeof(*st));

	(void)env;
	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	st->batch_max = (unsigned)values[0];
	*state = st;
	return 0;
}

static void
fini(void *state)
{
	free(state);
}

#define METHOD(name, req, resp, fn) { name, &boltseal__v1__##req##__descriptor, \
	&boltseal__v1__##resp##__descriptor, RPC_AUTHZ_POLICY, 0, fn }

static const struct rpc_method methods[] = {
	METHOD("GenerateDataKey", generate_data_key_request, generate_data_key_response,
	    generate_data_key),
	METHOD("GenerateDataKeyWithoutPlaintext", generate_data_key_request,
	    generate_data_key_response, generate_data_key_nopt),
	METHOD("Decrypt", decrypt_request, decrypt_response, decrypt),
	METHOD("ReEncrypt", re_encrypt_request, re_encrypt_response, reencrypt),
	METHOD("Encrypt", encrypt_request, encrypt_response, encrypt),
	METHOD("GenerateDataKeyBatch", generate_data_key_batch_request,
	    generate_data_key_batch_response, generate_batch),
	METHOD("DecryptBatch", decrypt_batch_request, decrypt_batch_response, decrypt_batch),
	METHOD("GenerateDataKeyForVehicle", generate_data_key_for_vehicle_request,
	    generate_data_key_for_vehicle_response, env_generate_for_vehicle),
	METHOD("Tokenize", tokenize_request, tokenize_response, env_tokenize),
	METHOD("SetMinDecryptionVersion", set_min_decryption_version_request,
	    set_min_decryption_version_response, set_min_decrypt),
};

const struct rpc_service envelope_service = {
	.name = "boltseal.v1.EnvelopeService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "envelope",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = init,
	.fini = fini,
};
