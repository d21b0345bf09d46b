/*
 * keyservice.c - boltseal.v1.KeyService: key lifecycle, signing and
 * verification (see proto/boltseal/v1/keys.proto for the contract).
 *
 * Handlers run on the event loop thread: they decode and check the request,
 * look the key up in the in-memory catalog, and hand a typed job with copied
 * inputs to the HSM worker pool. The job's done() callback (loop thread
 * again) builds the response. Hashing, signing, verification and catalog
 * writes all happen on workers, so the loop never waits for the HSM, the
 * CPU-heavy crypto or the disk.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "boltseal/v1/keys.pb-c.h"
#include "common/log.h"
#include "daemon/bs_config.h"
#include "formats/ecdsa_sig.h"
#include "formats/sigverify.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "rpc/rpc_status.h"
#include "policy/policy.h"
#include "services/services.h"

#define SIG_MAX 512            /* RSA-3072: 384 bytes */
#define LIST_DEFAULT_PAGE 100
#define LIST_MAX_PAGE 1000

/* ---- shared helpers --------------------------------------------------------- */

/* Fails call with the gRPC status err maps to and a message. */
static void
fail_err(struct rpc_call *call, int err, const char *what)
{
	rpc_call_fail(call, rpc_status_from_err(err), "%s: %s", what, bs_strerror(err));
}

static void
op_cancel_cb(void *arg)
{
	keyclient_cancel(arg);
}

/*
 * Sends r through the key door; done(arg, answer) runs later on the loop.
 * Registers the cancellation with call. Returns 0 or the submit error.
 */
static int
keys_submit(struct rpc_call *call, struct svc_ctx *svc, const struct keyop_request *r,
    keyclient_done_fn done, void *arg)
{
	struct keyclient_op *op = NULL;
	int rc;

	if (svc->shutting_down)
		return BS_ERR_UNAVAILABLE;
	if ((rc = keyclient_submit(svc->keys, r, done, arg, &op)) != 0)
		return rc;
	rpc_call_on_cancel(call, op_cancel_cb, op);
	return 0;
}

static void
work_cancel_cb(void *arg)
{
	workq_job_cancel(arg);
}

static void
fail_work_submit(struct rpc_call *call, int rc)
{
	if (rc == BS_ERR_QUEUE_FULL)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "work queue is full, retry later");
	else
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "work queue unavailable");
}

static void
fail_submit(struct rpc_call *call, int rc)
{
	if (rc == BS_ERR_QUEUE_FULL)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "HSM work queue is full, retry later");
	else
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "HSM worker pool unavailable");
}

/* Looks a key up; answers NOT_FOUND/INVALID_ARGUMENT itself and returns NULL. */
/*
 * Looks up key name and asks the policy whether the caller may use it for
 * this method (attributes key.algorithm plus extra). The policy is asked
 * before "not found" is said, so a caller learns nothing of keys it may not
 * use. Answers the call and returns NULL on any refusal.
 */
static const struct catalog_key *
lookup_key_attrs(struct rpc_call *call, const char *name, const struct policy_attr *extra,
    size_t nextra)
{
	struct policy_attr attrs[8];
	const struct catalog_key *k;
	size_t n = 0;

	if (name == NULL || !catalog_name_valid(name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "key name must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
		return NULL;
	}
	k = catalog_find(rpc_call_svc(call)->catalog, name);
	if (k != NULL)
		attrs[n++] = (struct policy_attr){ "key.algorithm", bs_alg_name(k->alg) };
	for (size_t i = 0; i < nextra && n < sizeof(attrs) / sizeof(attrs[0]); i++)
		attrs[n++] = extra[i];
	if (!rpc_call_authorize(call, name, k != NULL ? bs_purpose_name(k->purpose) : NULL, attrs, n))
		return NULL;
	if (k == NULL)
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' not found", name);
	return k;
}

static const struct catalog_key *
lookup_key(struct rpc_call *call, const char *name)
{
	return lookup_key_attrs(call, name, NULL, 0);
}

/*
 * Checks a sign/verify input: is_digest with a 32-byte SHA-256 digest for
 * ECDSA and RSA; messages for everything. Returns NULL or the problem.
 */
static const char *
input_problem(enum bs_alg alg, int is_digest, size_t len)
{
	if (!is_digest)
		return NULL;
	if (alg == BS_ALG_ED25519)
		return "Ed25519 signs messages, not digests: send message";
	if (len != SHA256_DIGEST_LENGTH)
		return "digest must be a 32-byte SHA-256 digest";
	return NULL;
}

/*
 * The signature the key side made (raw r||s for ECDSA) in the requested
 * format, into out (SIG_MAX bytes). Returns 0 or the signature's error.
 */
static int
encode_sig(enum bs_alg alg, enum bs_sig_format fmt, const struct keyop_sig *ks, uint8_t *out,
    size_t *out_len)
{
	if (ks->rc != 0)
		return ks->rc;
	if (alg == BS_ALG_ECDSA_P256_SHA256 && fmt == BS_SIGFMT_DER) {
		if (ks->sig_len != ECDSA_P256_RAW_LEN)
			return BS_ERR_HSM;
		return ecdsa_sig_raw_to_der(ks->sig, out, SIG_MAX, out_len);
	}
	if (ks->sig_len > SIG_MAX)
		return BS_ERR_HSM;
	memcpy(out, ks->sig, ks->sig_len);
	*out_len = ks->sig_len;
	return 0;
}

/* A SIGN of key k version v, with inputs (borrowed). */
static void
sign_request(struct keyop_request *r, const struct catalog_key *k, uint32_t version,
    struct keyop_input *inputs, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->type = KEYOP_SIGN;
	snprintf(r->key.name, sizeof(r->key.name), "%s", k->name);
	r->key.version = version;
	r->alg = k->alg;
	r->inputs = inputs;
	r->ninputs = n;
}

/* The request's signature format, or INVALID_ARGUMENT answered (-1). */
static int
sig_format(struct rpc_call *call, Boltseal__V1__SignatureFormat f, enum bs_sig_format *out)
{
	if (bs_sig_format_from_pb(f, out) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "signature_format must be DER or RAW");
		return -1;
	}
	return 0;
}

/* Fills pb (and its versions array, vbuf/vptr of k->nversions) from k. */
static void
key_to_pb(const struct catalog_key *k, Boltseal__V1__Key *pb, Boltseal__V1__KeyVersion *vbuf,
    Boltseal__V1__KeyVersion **vptr)
{
	const struct catalog_version *primary = catalog_key_primary(k);

	boltseal__v1__key__init(pb);
	pb->name = (char *)k->name;
	pb->purpose = bs_purpose_to_pb(k->purpose);
	pb->algorithm = bs_alg_to_pb(k->alg);
	pb->state = bs_key_state_to_pb(k->state);
	pb->primary_version = primary != NULL ? primary->version : 0;
	pb->create_time_unix = k->created;
	for (size_t i = 0; i < k->nversions; i++) {
		boltseal__v1__key_version__init(&vbuf[i]);
		vbuf[i].version = k->versions[i].version;
		vbuf[i].state = bs_key_state_to_pb(k->versions[i].state);
		vbuf[i].create_time_unix = k->versions[i].created;
		vptr[i] = &vbuf[i];
	}
	pb->n_versions = k->nversions;
	pb->versions = vptr;
}

/* A heap-allocated protobuf Key for k; free with key_pb_free. */
static Boltseal__V1__Key *
key_pb_new(const struct catalog_key *k)
{
	size_t n = k->nversions;
	size_t sz = sizeof(Boltseal__V1__Key) + n * (sizeof(Boltseal__V1__KeyVersion) +
	    sizeof(Boltseal__V1__KeyVersion *));
	uint8_t *mem = calloc(1, sz);
	Boltseal__V1__KeyVersion *vbuf;

	if (mem == NULL)
		return NULL;
	vbuf = (Boltseal__V1__KeyVersion *)(mem + sizeof(Boltseal__V1__Key));
	key_to_pb(k, (Boltseal__V1__Key *)mem, vbuf, (Boltseal__V1__KeyVersion **)(vbuf + n));
	return (Boltseal__V1__Key *)mem;
}

static void
key_pb_free(Boltseal__V1__Key *pb)
{
	free(pb);
}

/* ---- CreateKey / RotateKey -------------------------------------------------- */

/*
 * CreateKey and RotateKey: GENERATE through the key door, then the catalog
 * row written on the work queue (disk, never on an HSM thread) and made
 * durable before the answer; if the row cannot be written, the new objects
 * are destroyed again through the door.
 */
struct keygen {
	struct workq_job job;       /* first: the catalog write */
	struct rpc_call *call;
	struct svc_ctx *svc;
	int rotate;
	struct catalog_key key;     /* versions unused */
	struct catalog_version ver; /* ver.spki owned */
	int rc;
};

static void
keygen_free(struct keygen *g)
{
	free(g->ver.spki);
	free(g);
}

static void
destroyed(void *arg, struct keyop_answer *a)
{
	struct keygen *g = arg;

	if (a->rc != 0)
		bs_log(BS_LOG_ERROR, "cannot remove key objects after a catalog failure", "key",
		    g->key.name, "error", bs_strerror(a->rc), NULL);
	keygen_free(g);
}

static void
keygen_answer(struct keygen *g)
{
	struct svc_ctx *svc = g->svc;
	const struct catalog_key *k;
	Boltseal__V1__Key *pb = NULL;
	char ver[16];
	int rc = g->rc;

	if (rc == 0) {
		/* durable on disk: mirror it in memory even if the caller left */
		rc = catalog_mem_add_version(svc->catalog, &g->key, &g->ver);
		rpc_call_audit_key(g->call, g->key.name, g->ver.version);
		rpc_call_audit_event(g->call, g->rotate ? "key_rotated" : "key_created");
		snprintf(ver, sizeof(ver), "%u", g->ver.version);
		bs_log(BS_LOG_INFO, g->rotate ? "key rotated" : "key created", "key", g->key.name,
		    "version", ver, "algorithm", bs_alg_name(g->key.alg), "purpose",
		    bs_purpose_name(g->key.purpose), "identity", rpc_call_identity(g->call),
		    "request_id", rpc_call_request_id(g->call), NULL);
	}
	if (rc == BS_ERR_EXISTS) {
		rpc_call_fail(g->call, GRPC_STATUS_ALREADY_EXISTS, "key '%s' already exists",
		    g->key.name);
	} else if (rc == BS_ERR_PRECONDITION) {
		rpc_call_fail(g->call, GRPC_STATUS_ABORTED,
		    "key '%s' was rotated concurrently; retry", g->key.name);
	} else if (rc != 0) {
		fail_err(g->call, rc, g->rotate ? "key rotation failed" : "key creation failed");
	} else if ((k = catalog_find(svc->catalog, g->key.name)) == NULL ||
	    (pb = key_pb_new(k)) == NULL) {
		rpc_call_fail(g->call, GRPC_STATUS_INTERNAL, "key vanished from the catalog");
	} else if (g->rotate) {
		Boltseal__V1__RotateKeyResponse resp = BOLTSEAL__V1__ROTATE_KEY_RESPONSE__INIT;

		resp.key = pb;
		resp.new_version = g->ver.version;
		rpc_call_finish_pb(g->call, &resp.base);
	} else {
		Boltseal__V1__CreateKeyResponse resp = BOLTSEAL__V1__CREATE_KEY_RESPONSE__INIT;

		resp.key = pb;
		rpc_call_finish_pb(g->call, &resp.base);
	}
	key_pb_free(pb);
}

/* Work queue: the catalog row, durably. */
static void
keygen_store(struct workq_job *job, void *ctx)
{
	struct keygen *g = (struct keygen *)job;

	(void)ctx;
	g->rc = catalog_db_add_version(g->svc->catalog, &g->key, &g->ver);
}

static void
keygen_stored(struct workq_job *job)
{
	struct keygen *g = (struct keygen *)job;
	struct keyop_request r;

	keygen_answer(g);
	if (g->rc == 0) {
		keygen_free(g);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_DESTROY;
	snprintf(r.key.name, sizeof(r.key.name), "%s", g->key.name);
	r.key.version = g->ver.version;
	if (keyclient_submit(g->svc->keys, &r, destroyed, g, NULL) != 0) {
		bs_log(BS_LOG_ERROR, "cannot remove key objects after a catalog failure", "key",
		    g->key.name, NULL);
		keygen_free(g);
	}
}

/* Loop: the key pair exists (or not); now the catalog row. */
static void
keygen_generated(void *arg, struct keyop_answer *a)
{
	struct keygen *g = arg;
	int rc = a->rc;

	svc_note_hsm_result(g->svc, rc);
	if (rc == 0) {
		memcpy(g->ver.hsm_id, a->id, HSM_KEY_ID_LEN);
		g->ver.spki = a->spki;
		g->ver.spki_len = a->spki_len;
		a->spki = NULL;
		g->job.work = keygen_store;
		g->job.done = keygen_stored;
		rc = workq_submit(g->svc->work, &g->job);
		if (rc == 0)
			return;
		/* not written: the objects must go again */
		g->rc = rc;
		keygen_stored(&g->job);
		return;
	}
	g->rc = rc;
	keygen_answer(g);
	keygen_free(g);
}

static void
submit_keygen(struct rpc_call *call, const char *name, enum bs_purpose purpose, enum bs_alg alg,
    uint32_t version, int rotate)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct keyop_request r;
	struct keygen *g;
	int rc;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	g->call = call;
	g->svc = svc;
	g->rotate = rotate;
	snprintf(g->key.name, sizeof(g->key.name), "%s", name);
	g->key.purpose = purpose;
	g->key.alg = alg;
	g->key.state = BS_KEY_ENABLED;
	g->key.created = (int64_t)time(NULL);
	g->ver.version = version;
	g->ver.state = BS_KEY_ENABLED;
	g->ver.created = g->key.created;
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_GENERATE;
	snprintf(r.key.name, sizeof(r.key.name), "%s", name);
	r.key.version = version;
	r.alg = alg;
	if ((rc = keys_submit(call, svc, &r, keygen_generated, g)) != 0) {
		free(g);
		fail_submit(call, rc);
	}
}

static int
authorize_create(struct rpc_call *call, const char *name, enum bs_purpose p, enum bs_alg a)
{
	const char *purpose = bs_purpose_name(p);
	const char *alg = bs_alg_name(a);
	struct policy_attr attrs[] = {
		{ "request.purpose", purpose },
		{ "request.algorithm", alg },
		{ "key.algorithm", alg },
	};

	rpc_call_audit_key(call, name, 1);
	return rpc_call_authorize(call, name, purpose, attrs, sizeof(attrs) / sizeof(attrs[0]));
}

static void
create_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__CreateKeyRequest *r = (const Boltseal__V1__CreateKeyRequest *)msg;
	enum bs_purpose purpose;
	enum bs_alg alg;

	if (!catalog_name_valid(r->name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "key name must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
	} else if (bs_alg_from_pb(r->algorithm, &alg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "algorithm must be ECDSA_P256_SHA256, ED25519 or RSA_3072_PSS_SHA256");
	} else if (bs_purpose_from_pb(r->purpose, &purpose) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "purpose must be set");
	} else if (!authorize_create(call, r->name, purpose, alg)) {
		/* answered */
	} else if (catalog_find(rpc_call_svc(call)->catalog, r->name) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_ALREADY_EXISTS, "key '%s' already exists", r->name);
	} else {
		submit_keygen(call, r->name, purpose, alg, 1, 0);
	}
}

static void
rotate_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RotateKeyRequest *r = (const Boltseal__V1__RotateKeyRequest *)msg;
	const struct catalog_key *k;

	{
		const struct catalog_key *peek = catalog_name_valid(r->name) ?
		    catalog_find(rpc_call_svc(call)->catalog, r->name) : NULL;
		struct policy_attr attrs[] = {
			{ "request.purpose", peek != NULL ? bs_purpose_name(peek->purpose) : "none" },
		};

		k = lookup_key_attrs(call, r->name, attrs, peek != NULL ? 1 : 0);
	}
	if (k != NULL) {
		uint32_t next = k->nversions > 0 ? k->versions[k->nversions - 1].version + 1 : 1;

		rpc_call_audit_key(call, k->name, next);

		submit_keygen(call, k->name, k->purpose, k->alg, next, 1);
	}
}

/* ---- GetKey / ListKeys / GetPublicKey (answered from memory) --------------- */

static void
get_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetKeyRequest *r = (const Boltseal__V1__GetKeyRequest *)msg;
	Boltseal__V1__GetKeyResponse resp = BOLTSEAL__V1__GET_KEY_RESPONSE__INIT;
	const struct catalog_key *k;

	k = lookup_key(call, r->name);
	if (k != NULL) {
		resp.key = key_pb_new(k);
		if (resp.key == NULL)
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		else
			rpc_call_finish_pb(call, &resp.base);
		key_pb_free(resp.key);
	}
}

/* ListKeys shows a key to callers whose policy lets them GetKey it. */
static int
may_see(struct rpc_call *call, const struct catalog_key *k)
{
	struct policy_attr attr = { "key.algorithm", bs_alg_name(k->alg) };

	return rpc_call_may(call, "boltseal.v1.KeyService/GetKey", k->name,
	    bs_purpose_name(k->purpose), &attr, 1);
}

static void
list_keys(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct catalog *cat = rpc_call_svc(call)->catalog;
	const Boltseal__V1__ListKeysRequest *r = (const Boltseal__V1__ListKeysRequest *)msg;
	Boltseal__V1__ListKeysResponse resp = BOLTSEAL__V1__LIST_KEYS_RESPONSE__INIT;
	Boltseal__V1__Key **keys = NULL;
	size_t start, n, total, i, page, scanned;
	int ok = 1;

	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		goto out;
	if (r->page_token[0] != '\0' && !catalog_name_valid(r->page_token)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid page_token");
		goto out;
	}
	page = r->page_size == 0 ? LIST_DEFAULT_PAGE : r->page_size;
	if (page > LIST_MAX_PAGE)
		page = LIST_MAX_PAGE;
	total = catalog_count(cat);
	start = catalog_index_after(cat, r->page_token);
	n = total - start < page ? total - start : page;
	keys = calloc(n + 1, sizeof(*keys));
	if (keys == NULL)
		ok = 0;
	/* a page holds only keys the caller may see (GetKey on that key) */
	for (i = 0, scanned = 0; ok && i < n && start + scanned < total; scanned++) {
		const struct catalog_key *ck = catalog_at(cat, start + scanned);

		if (!may_see(call, ck))
			continue;
		keys[i] = key_pb_new(ck);
		if (keys[i] == NULL)
			ok = 0;
		else
			i++;
	}
	n = i;
	if (!ok) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	resp.n_keys = n;
	resp.keys = keys;
	resp.next_page_token = (char *)"";
	if (start + scanned < total && n > 0)
		resp.next_page_token = keys[n - 1]->name;
	rpc_call_finish_pb(call, &resp.base);
out:
	for (i = 0; keys != NULL && keys[i] != NULL; i++)
		key_pb_free(keys[i]);
	free(keys);
}

static void
get_public_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetPublicKeyRequest *r = (const Boltseal__V1__GetPublicKeyRequest *)msg;
	Boltseal__V1__GetPublicKeyResponse resp = BOLTSEAL__V1__GET_PUBLIC_KEY_RESPONSE__INIT;
	const struct catalog_key *k;
	const struct catalog_version *v;
	char *pem = NULL;

	k = lookup_key(call, r->name);
	if (k == NULL)
		goto out;
	v = r->version == 0 ? catalog_key_primary(k) : catalog_key_version(k, r->version);
	if (v == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' has no version %u", k->name,
		    r->version);
		goto out;
	}
	if (sigverify_spki_to_pem(v->spki, v->spki_len, &pem) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "cannot encode the public key");
		goto out;
	}
	resp.name = (char *)k->name;
	resp.version = v->version;
	resp.algorithm = bs_alg_to_pb(k->alg);
	resp.pem = pem;
	resp.der.data = v->spki;
	resp.der.len = v->spki_len;
	rpc_call_finish_pb(call, &resp.base);
out:
	free(pem);
}

/* ---- Sign ---------------------------------------------------------------------- */

/*
 * The key Sign/SignBatch use: purpose GENERIC (keys of other purposes belong
 * to their own services, so one cannot be made to sign arbitrary bytes) and
 * an enabled primary version with a cached handle. Answers the error itself.
 */
static const struct catalog_version *
signing_version(struct rpc_call *call, const struct catalog_key *k)
{
	const struct catalog_version *v;

	if (k->purpose != BS_PURPOSE_GENERIC) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
		    "key '%s' has purpose %s; KeyService signs only with generic keys", k->name,
		    bs_purpose_name(k->purpose));
		return NULL;
	}
	v = catalog_key_primary(k);
	if (k->state != BS_KEY_ENABLED || v == NULL) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' has no enabled version",
		    k->name);
		return NULL;
	}
	return v;
}

struct sign_op {
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	uint32_t version;
	enum bs_sig_format fmt;
};

static void
sign_answered(void *arg, struct keyop_answer *a)
{
	struct sign_op *o = arg;
	Boltseal__V1__SignResponse resp = BOLTSEAL__V1__SIGN_RESPONSE__INIT;
	uint8_t sig[SIG_MAX];
	size_t sig_len = 0;
	int rc = a->rc;

	if (rc == 0)
		rc = encode_sig(o->alg, o->fmt, &a->sigs[0], sig, &sig_len);
	svc_note_hsm_result(o->svc, rc);
	rpc_call_audit_key(o->call, o->key_name, o->version);
	if (rc != 0) {
		fail_err(o->call, rc, "signing failed");
	} else if (rpc_call_audit_payload(o->call, a->sigs[0].payload_sha256) != 0) {
		rpc_call_fail(o->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		resp.signature.data = sig;
		resp.signature.len = sig_len;
		resp.key_name = o->key_name;
		resp.key_version = o->version;
		resp.algorithm = bs_alg_to_pb(o->alg);
		rpc_call_finish_pb(o->call, &resp.base);
	}
	free(o);
}

static void
sign(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__SignRequest *r = (const Boltseal__V1__SignRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	const ProtobufCBinaryData *in;
	struct keyop_request req;
	struct keyop_input input;
	const char *problem;
	struct sign_op *o;
	int rc, is_digest;
	enum bs_sig_format fmt;

	if (sig_format(call, r->signature_format, &fmt) != 0)
		return;
	if ((k = lookup_key(call, r->key_name)) == NULL || (v = signing_version(call, k)) == NULL)
		return;
	if (r->input_case == BOLTSEAL__V1__SIGN_REQUEST__INPUT__NOT_SET) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "one of message or digest is required");
		return;
	}
	is_digest = r->input_case == BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
	in = is_digest ? &r->digest : &r->message;
	if ((problem = input_problem(k->alg, is_digest, in->len)) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", problem);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	o->call = call;
	o->svc = svc;
	memcpy(o->key_name, k->name, sizeof(o->key_name));
	o->alg = k->alg;
	o->version = v->version;
	o->fmt = fmt;
	input.is_digest = is_digest;
	input.data = in->data;
	input.len = in->len;
	sign_request(&req, k, v->version, &input, 1);
	if ((rc = keys_submit(call, svc, &req, sign_answered, o)) != 0) {
		free(o);
		fail_submit(call, rc);
	}
}

/* ---- SignBatch ------------------------------------------------------------------ */

struct batch_item {
	int is_digest;
	const uint8_t *data;        /* points into the decoded request (owned by the call) */
	size_t len;
	int rc;                     /* BS_ERR_* or 0 */
	const char *problem;        /* set when refused before signing */
	size_t sig_len;
	uint8_t sig[SIG_MAX];
	uint8_t payload_sha256[SHA256_DIGEST_LENGTH];
};

struct batch;

/* One slice of the batch: one SIGN through the key door. */
struct batch_slice {
	struct batch *b;
	size_t from, to;
	struct keyclient_op *op;
};

struct batch {
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	uint32_t version;
	enum bs_sig_format fmt;
	size_t nitems;
	struct batch_item *items;
	size_t nslices, nsubmitted, ndone;
	struct batch_slice *slices;
};

static void
batch_free(struct batch *b)
{
	if (b->items != NULL)
		OPENSSL_clear_free(b->items, b->nitems * sizeof(*b->items));
	free(b->slices);
	free(b);
}

static void
batch_cancel_cb(void *arg)
{
	struct batch *b = arg;

	for (size_t i = 0; i < b->nsubmitted; i++)
		keyclient_cancel(b->slices[i].op);
}

static void
batch_respond(struct batch *b)
{
	Boltseal__V1__SignBatchResponse resp = BOLTSEAL__V1__SIGN_BATCH_RESPONSE__INIT;
	Boltseal__V1__SignBatchResult *res = NULL, **ptrs = NULL;
	int hsm_rc = 0;

	res = calloc(b->nitems, sizeof(*res));
	ptrs = calloc(b->nitems, sizeof(*ptrs));
	if (b->nitems > 0 && (res == NULL || ptrs == NULL)) {
		rpc_call_fail(b->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->nitems; i++) {
		struct batch_item *it = &b->items[i];

		boltseal__v1__sign_batch_result__init(&res[i]);
		ptrs[i] = &res[i];
		if (it->problem != NULL) {
			res[i].status_code = GRPC_STATUS_INVALID_ARGUMENT;
			res[i].error_message = (char *)it->problem;
		} else if (it->rc != 0) {
			res[i].status_code = (uint32_t)rpc_status_from_err(it->rc);
			res[i].error_message = (char *)bs_strerror(it->rc);
			if (it->rc == BS_ERR_HSM)
				hsm_rc = it->rc;
		} else {
			res[i].signature.data = it->sig;
			res[i].signature.len = it->sig_len;
			if (rpc_call_audit_payload(b->call, it->payload_sha256) != 0) {
				rpc_call_fail(b->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
				goto out;
			}
		}
	}
	rpc_call_audit_key(b->call, b->key_name, b->version);
	svc_note_hsm_result(b->svc, hsm_rc);
	resp.n_results = b->nitems;
	resp.results = ptrs;
	resp.key_name = b->key_name;
	resp.key_version = b->version;
	resp.algorithm = bs_alg_to_pb(b->alg);
	rpc_call_finish_pb(b->call, &resp.base);
out:
	free(res);
	free(ptrs);
}

/* Loop: one slice's signatures, in the order of its signable items. */
static void
batch_slice_answered(void *arg, struct keyop_answer *a)
{
	struct batch_slice *sl = arg;
	struct batch *b = sl->b;
	size_t k = 0;

	for (size_t i = sl->from; i < sl->to; i++) {
		struct batch_item *it = &b->items[i];

		if (it->problem != NULL)
			continue;
		if (a->rc != 0 || k >= a->nsigs)
			it->rc = a->rc != 0 ? a->rc : BS_ERR_INTERNAL;
		else
			it->rc = encode_sig(b->alg, b->fmt, &a->sigs[k], it->sig, &it->sig_len);
		if (a->rc == 0 && k < a->nsigs) {
			memcpy(it->payload_sha256, a->sigs[k].payload_sha256, SHA256_DIGEST_LENGTH);
			k++;
		}
	}
	if (++b->ndone < b->nsubmitted)
		return;
	batch_respond(b);
	batch_free(b);
}

/* Points the items of b at the inputs of r, checking each. */
static int
batch_load(struct batch *b, const Boltseal__V1__SignBatchRequest *r)
{
	b->items = calloc(r->n_items > 0 ? r->n_items : 1, sizeof(*b->items));
	if (b->items == NULL)
		return BS_ERR_NOMEM;
	b->nitems = r->n_items;
	for (size_t i = 0; i < r->n_items; i++) {
		const Boltseal__V1__SignBatchItem *src = r->items[i];
		struct batch_item *it = &b->items[i];
		const ProtobufCBinaryData *in;

		if (src->input_case == BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT__NOT_SET) {
			it->problem = "one of message or digest is required";
			continue;
		}
		it->is_digest = src->input_case == BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
		in = it->is_digest ? &src->digest : &src->message;
		it->problem = input_problem(b->alg, it->is_digest, in->len);
		it->data = in->data;
		it->len = in->len;
	}
	return 0;
}

/*
 * Submits slice sl: a SIGN of its signable items (those without a problem).
 * Returns 0 (submitted; its answer comes later on the loop), 1 (nothing in
 * it to sign), or the submit error.
 */
static int
batch_submit_slice(struct batch *b, const struct catalog_key *k, struct batch_slice *sl)
{
	struct keyop_input inputs[KEYOPS_SIGN_MAX];
	struct keyop_request req;
	size_t n = 0;

	for (size_t i = sl->from; i < sl->to; i++)
		if (b->items[i].problem == NULL) {
			inputs[n].is_digest = b->items[i].is_digest;
			inputs[n].data = b->items[i].data;
			inputs[n].len = b->items[i].len;
			n++;
		}
	if (n == 0)
		return 1;
	if (b->svc->shutting_down)
		return BS_ERR_UNAVAILABLE;
	sign_request(&req, k, b->version, inputs, n);
	return keyclient_submit(b->svc->keys, &req, batch_slice_answered, sl, &sl->op);
}

static void
sign_batch(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__SignBatchRequest *r = (const Boltseal__V1__SignBatchRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	struct batch *b = NULL;
	size_t per, i;
	int rc;
	enum bs_sig_format fmt;

	if (sig_format(call, r->signature_format, &fmt) != 0)
		return;
	if ((k = lookup_key(call, r->key_name)) == NULL || (v = signing_version(call, k)) == NULL)
		return;
	if (r->n_items == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "a batch needs at least one item");
		return;
	}
	if (r->n_items > svc->cfg->sign_batch_max || r->n_items > KEYOPS_SIGN_MAX) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "batch of %zu items exceeds the limit of %u", r->n_items, svc->cfg->sign_batch_max);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	b->call = call;
	b->svc = svc;
	b->alg = k->alg;
	memcpy(b->key_name, k->name, sizeof(b->key_name));
	b->version = v->version;
	b->fmt = fmt;
	/* one slice per worker so every HSM session works on the batch */
	b->nslices = svc->nworkers < r->n_items ? svc->nworkers : r->n_items;
	if (b->nslices == 0)
		b->nslices = 1;
	if (batch_load(b, r) != 0 || (b->slices = calloc(b->nslices, sizeof(*b->slices))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		batch_free(b);
		return;
	}
	per = (b->nitems + b->nslices - 1) / b->nslices;
	for (i = 0; i < b->nslices; i++) {
		struct batch_slice *sl = &b->slices[i];

		sl->b = b;
		sl->from = i * per;
		sl->to = sl->from + per < b->nitems ? sl->from + per : b->nitems;
		rc = batch_submit_slice(b, k, sl);
		if (rc == 1)
			continue;
		if (rc != 0) {
			if (b->nsubmitted == 0) {
				fail_submit(call, rc);
				batch_free(b);
				return;
			}
			/* the rest of the batch waits for no one: mark it refused */
			for (size_t x = sl->from; x < b->nitems; x++)
				if (b->items[x].problem == NULL)
					b->items[x].rc = rc;
			break;
		}
		b->nsubmitted++;
	}
	if (b->nsubmitted == 0) {
		/* nothing needed the HSM: every item was refused on its own */
		batch_respond(b);
		batch_free(b);
		return;
	}
	rpc_call_on_cancel(call, batch_cancel_cb, b);
	/* freed by the last batch_slice_answered */
}

/* ---- Verify --------------------------------------------------------------------- */

struct verify_cand {
	uint32_t version;
	uint8_t *spki;              /* copied */
	size_t spki_len;
};

struct verify_job {
	struct workq_job job;        /* first; on the general work queue, not an HSM thread */
	struct rpc_call *call;
	enum bs_alg alg;
	int is_digest;
	enum bs_sig_format fmt;
	struct verify_cand *cands;
	size_t ncands;
	uint8_t *data;
	size_t data_len;
	uint8_t *sig;
	size_t sig_len;
	int rc;
	int valid;
	uint32_t valid_version;
};

static void
verify_work(struct workq_job *job, void *ctx)
{
	struct verify_job *j = (struct verify_job *)job;

	(void)ctx;
	j->rc = 0;
	for (size_t i = 0; i < j->ncands && !workq_job_cancelled(job); i++) {
		int rc = sigverify_verify(j->cands[i].spki, j->cands[i].spki_len, j->alg, j->is_digest,
		    j->data, j->data_len, j->sig, j->sig_len, j->fmt);

		if (rc == 0) {
			j->valid = 1;
			j->valid_version = j->cands[i].version;
			return;
		}
		if (rc != BS_ERR_SIG_INVALID) {
			j->rc = rc;
			return;
		}
	}
}

static void
verify_job_free(struct verify_job *j)
{
	for (size_t i = 0; i < j->ncands; i++)
		free(j->cands[i].spki);
	free(j->cands);
	free(j->data);
	free(j->sig);
	free(j);
}

static void
verify_done(struct workq_job *job)
{
	struct verify_job *j = (struct verify_job *)job;
	Boltseal__V1__VerifyResponse resp = BOLTSEAL__V1__VERIFY_RESPONSE__INIT;

	if (j->rc != 0) {
		fail_err(j->call, j->rc, "verification failed");
	} else {
		resp.valid = j->valid;
		resp.key_version = j->valid_version;
		rpc_call_finish_pb(j->call, &resp.base);
	}
	verify_job_free(j);
}

static int
add_cand(struct verify_job *j, uint32_t version, const uint8_t *spki, size_t len)
{
	struct verify_cand *c = &j->cands[j->ncands];

	c->spki = malloc(len > 0 ? len : 1);
	if (c->spki == NULL)
		return BS_ERR_NOMEM;
	memcpy(c->spki, spki, len);
	c->spki_len = len;
	c->version = version;
	j->ncands++;
	return 0;
}

static void *
dup_bytes(const ProtobufCBinaryData *b)
{
	uint8_t *p = malloc(b->len > 0 ? b->len : 1);

	if (p != NULL && b->len > 0)
		memcpy(p, b->data, b->len);
	return p;
}

/* Collects the candidate keys of r into j; answers errors itself (returns -1). */
static int
verify_collect(struct rpc_call *call, const Boltseal__V1__VerifyRequest *r, struct verify_job *j)
{
	const struct catalog_key *k;
	int rc = 0;

	if (r->key_case == BOLTSEAL__V1__VERIFY_REQUEST__KEY_PUBLIC_KEY_DER) {
		if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
			return -1;
		rc = sigverify_spki_alg(r->public_key_der.data, r->public_key_der.len, &j->alg);
		if (rc != 0) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "public_key_der must be a DER SubjectPublicKeyInfo of ECDSA P-256, Ed25519 or RSA >= 2048 bits");
			return -1;
		}
		j->cands = calloc(1, sizeof(*j->cands));
		if (j->cands == NULL ||
		    add_cand(j, 0, r->public_key_der.data, r->public_key_der.len) != 0)
			goto nomem;
		return 0;
	}
	if (r->key_case != BOLTSEAL__V1__VERIFY_REQUEST__KEY_KEY_NAME) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "one of key_name or public_key_der is required");
		return -1;
	}
	if ((k = lookup_key(call, r->key_name)) == NULL)
		return -1;
	j->alg = k->alg;
	j->cands = calloc(k->nversions > 0 ? k->nversions : 1, sizeof(*j->cands));
	if (j->cands == NULL)
		goto nomem;
	if (r->key_version != 0) {
		const struct catalog_version *v = catalog_key_version(k, r->key_version);

		if (v == NULL) {
			rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' has no version %u", k->name,
			    r->key_version);
			return -1;
		}
		if (v->state != BS_KEY_ENABLED) {
			rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			    "key '%s' version %u is disabled", k->name, r->key_version);
			return -1;
		}
		if (add_cand(j, v->version, v->spki, v->spki_len) != 0)
			goto nomem;
		return 0;
	}
	/* newest first: the likeliest signer */
	for (size_t i = k->nversions; i-- > 0;) {
		const struct catalog_version *v = &k->versions[i];

		if (v->state == BS_KEY_ENABLED && add_cand(j, v->version, v->spki, v->spki_len) != 0)
			goto nomem;
	}
	return 0;
nomem:
	rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return -1;
}

static void
verify(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__VerifyRequest *r = (const Boltseal__V1__VerifyRequest *)msg;
	struct verify_job *j = NULL;
	const ProtobufCBinaryData *in;
	const char *problem;
	int rc;
	enum bs_sig_format fmt;

	if (sig_format(call, r->signature_format, &fmt) != 0)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (verify_collect(call, r, j) != 0)
		goto out;
	if (r->input_case == BOLTSEAL__V1__VERIFY_REQUEST__INPUT__NOT_SET) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "one of message or digest is required");
		goto out;
	}
	j->is_digest = r->input_case == BOLTSEAL__V1__VERIFY_REQUEST__INPUT_DIGEST;
	in = j->is_digest ? &r->digest : &r->message;
	if ((problem = input_problem(j->alg, j->is_digest, in->len)) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", problem);
		goto out;
	}
	j->data = dup_bytes(in);
	j->data_len = in->len;
	j->sig = dup_bytes(&r->signature);
	j->sig_len = r->signature.len;
	if (j->data == NULL || j->sig == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	j->fmt = fmt;
	j->job.work = verify_work;
	j->job.done = verify_done;
	j->call = call;
	rc = svc->shutting_down ? BS_ERR_UNAVAILABLE : workq_submit(svc->work, &j->job);
	if (rc != 0) {
		fail_work_submit(call, rc);
		goto out;
	}
	rpc_call_on_cancel(call, work_cancel_cb, &j->job);
	j = NULL; /* freed by verify_done */
out:
	if (j != NULL)
		verify_job_free(j);
}

void
svc_note_hsm_result(struct svc_ctx *svc, int err)
{
	if (err == BS_ERR_HSM && svc->hsm_healthy) {
		svc->hsm_healthy = 0;
		bs_log(BS_LOG_ERROR, "HSM operation failed; health is NOT_SERVING until a probe succeeds",
		    NULL);
	} else if (err == 0 && !svc->hsm_healthy) {
		svc->hsm_healthy = 1;
		bs_log(BS_LOG_INFO, "HSM usable again", NULL);
	}
}

static const struct rpc_method methods[] = {
	{ "CreateKey", &boltseal__v1__create_key_request__descriptor,
	    &boltseal__v1__create_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, create_key },
	{ "GetKey", &boltseal__v1__get_key_request__descriptor,
	    &boltseal__v1__get_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_key },
	{ "ListKeys", &boltseal__v1__list_keys_request__descriptor,
	    &boltseal__v1__list_keys_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, list_keys },
	{ "RotateKey", &boltseal__v1__rotate_key_request__descriptor,
	    &boltseal__v1__rotate_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, rotate_key },
	{ "GetPublicKey", &boltseal__v1__get_public_key_request__descriptor,
	    &boltseal__v1__get_public_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_public_key },
	{ "Sign", &boltseal__v1__sign_request__descriptor, &boltseal__v1__sign_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, sign },
	{ "Verify", &boltseal__v1__verify_request__descriptor,
	    &boltseal__v1__verify_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, verify },
	{ "SignBatch", &boltseal__v1__sign_batch_request__descriptor,
	    &boltseal__v1__sign_batch_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, sign_batch },
};

const struct rpc_service keyservice_service = {
	"boltseal.v1.KeyService", methods, sizeof(methods) / sizeof(methods[0]), 0,
};
