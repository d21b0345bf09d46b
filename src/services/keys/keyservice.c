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
#include "hsm/pool.h"
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
job_cancel_cb(void *arg)
{
	hsm_job_cancel(arg);
}

static int
submit_job(struct rpc_call *call, struct svc_ctx *svc, struct hsm_job *job)
{
	int rc;

	if (svc->shutting_down)
		return BS_ERR_UNAVAILABLE;
	rc = hsm_pool_submit(svc->pool, job);
	if (rc != 0)
		return rc;
	rpc_call_on_cancel(call, job_cancel_cb, job);
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
 * Worker side of one signature: hash if needed, C_Sign, encode. sig has
 * SIG_MAX bytes; payload_sha256 gets the SHA-256 of what was signed.
 * Returns 0 or a BS_ERR_*.
 */
static int
sign_one(struct hsm_session *s, enum bs_alg alg, hsm_handle h, int is_digest, const uint8_t *data,
    size_t len, enum bs_sig_format fmt, uint8_t *sig, size_t *sig_len,
    uint8_t payload_sha256[SHA256_DIGEST_LENGTH])
{
	uint8_t raw[SIG_MAX];
	size_t raw_len = sizeof(raw);
	int rc;

	/* the audit record names the payload by its SHA-256 (a digest input is one) */
	if (is_digest && len == SHA256_DIGEST_LENGTH)
		memcpy(payload_sha256, data, SHA256_DIGEST_LENGTH);
	else
		SHA256(data, len, payload_sha256);
	if (alg == BS_ALG_ED25519) {
		*sig_len = SIG_MAX;
		return hsm_sign(s, h, alg, data, len, sig, sig_len);
	}
	if (!is_digest) {
		data = payload_sha256;
		len = SHA256_DIGEST_LENGTH;
	}
	if (alg == BS_ALG_ECDSA_P256_SHA256 && fmt == BS_SIGFMT_DER) {
		rc = hsm_sign(s, h, alg, data, len, raw, &raw_len);
		if (rc == 0 && raw_len != ECDSA_P256_RAW_LEN)
			rc = BS_ERR_HSM;
		if (rc == 0)
			rc = ecdsa_sig_raw_to_der(raw, sig, SIG_MAX, sig_len);
		return rc;
	}
	*sig_len = SIG_MAX;
	return hsm_sign(s, h, alg, data, len, sig, sig_len);
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

struct keygen_job {
	struct hsm_job job;         /* first: the pool hands this pointer back */
	struct rpc_call *call;
	struct svc_ctx *svc;
	int rotate;
	struct catalog_key key;     /* versions unused */
	struct catalog_version ver; /* ver.spki owned */
	int rc;
};

static void
keygen_work(struct hsm_job *job, struct hsm_session *s)
{
	struct keygen_job *j = (struct keygen_job *)job;
	char label[CATALOG_NAME_MAX + 32];
	int rc;

	if (hsm_job_cancelled(job)) {
		j->rc = BS_ERR_CANCELLED;
		return;
	}
	if (RAND_bytes(j->ver.hsm_id, HSM_KEY_ID_LEN) != 1) {
		j->rc = BS_ERR_CRYPTO;
		return;
	}
	snprintf(label, sizeof(label), "%s%s/v%u", CATALOG_LABEL_PREFIX, j->key.name, j->ver.version);
	rc = hsm_generate_keypair(s, j->key.alg, j->ver.hsm_id, label, &j->ver.handle, &j->ver.spki,
	    &j->ver.spki_len);
	if (rc == 0) {
		rc = catalog_db_add_version(j->svc->catalog, &j->key, &j->ver);
		if (rc != 0 && hsm_destroy_key(s, j->ver.hsm_id) != 0)
			bs_log(BS_LOG_ERROR, "cannot remove key objects after a catalog failure",
			    "key", j->key.name, NULL);
	}
	j->rc = rc;
}

static void
keygen_done(struct hsm_job *job)
{
	struct keygen_job *j = (struct keygen_job *)job;
	struct svc_ctx *svc = j->svc;
	const struct catalog_key *k;
	Boltseal__V1__Key *pb = NULL;
	char ver[16];
	int rc = j->rc;

	svc_note_hsm_result(svc, rc);
	if (rc == 0) {
		/* durable on disk: mirror it in memory even if the caller left */
		rc = catalog_mem_add_version(svc->catalog, &j->key, &j->ver);
		rpc_call_audit_key(j->call, j->key.name, j->ver.version);
		rpc_call_audit_event(j->call, j->rotate ? "key_rotated" : "key_created");
		snprintf(ver, sizeof(ver), "%u", j->ver.version);
		bs_log(BS_LOG_INFO, j->rotate ? "key rotated" : "key created", "key", j->key.name,
		    "version", ver, "algorithm", bs_alg_name(j->key.alg), "purpose",
		    bs_purpose_name(j->key.purpose), "identity", rpc_call_identity(j->call),
		    "request_id", rpc_call_request_id(j->call), NULL);
	}
	if (rc == BS_ERR_EXISTS) {
		rpc_call_fail(j->call, GRPC_STATUS_ALREADY_EXISTS, "key '%s' already exists", j->key.name);
	} else if (rc == BS_ERR_PRECONDITION) {
		rpc_call_fail(j->call, GRPC_STATUS_ABORTED,
		    "key '%s' was rotated concurrently; retry", j->key.name);
	} else if (rc != 0) {
		fail_err(j->call, rc, j->rotate ? "key rotation failed" : "key creation failed");
	} else if ((k = catalog_find(svc->catalog, j->key.name)) == NULL ||
	    (pb = key_pb_new(k)) == NULL) {
		rpc_call_fail(j->call, GRPC_STATUS_INTERNAL, "key vanished from the catalog");
	} else if (j->rotate) {
		Boltseal__V1__RotateKeyResponse resp = BOLTSEAL__V1__ROTATE_KEY_RESPONSE__INIT;

		resp.key = pb;
		resp.new_version = j->ver.version;
		rpc_call_finish_pb(j->call, &resp.base);
	} else {
		Boltseal__V1__CreateKeyResponse resp = BOLTSEAL__V1__CREATE_KEY_RESPONSE__INIT;

		resp.key = pb;
		rpc_call_finish_pb(j->call, &resp.base);
	}
	key_pb_free(pb);
	free(j->ver.spki);
	free(j);
}

static void
submit_keygen(struct rpc_call *call, const char *name, enum bs_purpose purpose, enum bs_alg alg,
    uint32_t version, int rotate)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct keygen_job *j;
	int rc;

	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->job.work = keygen_work;
	j->job.done = keygen_done;
	j->call = call;
	j->svc = svc;
	j->rotate = rotate;
	snprintf(j->key.name, sizeof(j->key.name), "%s", name);
	j->key.purpose = purpose;
	j->key.alg = alg;
	j->key.state = BS_KEY_ENABLED;
	j->key.created = (int64_t)time(NULL);
	j->ver.version = version;
	j->ver.state = BS_KEY_ENABLED;
	j->ver.created = j->key.created;
	rc = submit_job(call, svc, &j->job);
	if (rc != 0) {
		free(j);
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
	if (v->handle == 0) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "key '%s' version %u is not loaded", k->name,
		    v->version);
		return NULL;
	}
	return v;
}

struct sign_job {
	struct hsm_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	hsm_handle handle;
	uint32_t version;
	enum bs_sig_format fmt;
	int is_digest;
	size_t data_len;
	int rc;
	size_t sig_len;
	uint8_t sig[SIG_MAX];
	uint8_t payload_sha256[SHA256_DIGEST_LENGTH];
	uint8_t data[];             /* copied input */
};

static void
sign_work(struct hsm_job *job, struct hsm_session *s)
{
	struct sign_job *j = (struct sign_job *)job;

	if (hsm_job_cancelled(job)) {
		j->rc = BS_ERR_CANCELLED;
		return;
	}
	j->rc = sign_one(s, j->alg, j->handle, j->is_digest, j->data, j->data_len, j->fmt, j->sig,
	    &j->sig_len, j->payload_sha256);
}

static void
sign_done(struct hsm_job *job)
{
	struct sign_job *j = (struct sign_job *)job;
	Boltseal__V1__SignResponse resp = BOLTSEAL__V1__SIGN_RESPONSE__INIT;

	svc_note_hsm_result(j->svc, j->rc);
	rpc_call_audit_key(j->call, j->key_name, j->version);
	if (j->rc != 0) {
		fail_err(j->call, j->rc, "signing failed");
	} else if (rpc_call_audit_payload(j->call, j->payload_sha256) != 0) {
		rpc_call_fail(j->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		resp.signature.data = j->sig;
		resp.signature.len = j->sig_len;
		resp.key_name = j->key_name;
		resp.key_version = j->version;
		resp.algorithm = bs_alg_to_pb(j->alg);
		rpc_call_finish_pb(j->call, &resp.base);
	}
	OPENSSL_cleanse(j->data, j->data_len);
	free(j);
}

static void
sign(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__SignRequest *r = (const Boltseal__V1__SignRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	const ProtobufCBinaryData *in;
	const char *problem;
	struct sign_job *j;
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
	j = calloc(1, sizeof(*j) + in->len);
	if (j == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->job.work = sign_work;
	j->job.done = sign_done;
	j->call = call;
	j->svc = svc;
	memcpy(j->key_name, k->name, sizeof(j->key_name));
	j->alg = k->alg;
	j->handle = v->handle;
	j->version = v->version;
	j->fmt = fmt;
	j->is_digest = is_digest;
	j->data_len = in->len;
	if (in->len > 0)
		memcpy(j->data, in->data, in->len);
	rc = submit_job(call, svc, &j->job);
	if (rc != 0) {
		free(j);
		fail_submit(call, rc);
	}
}

/* ---- SignBatch ------------------------------------------------------------------ */

struct batch_item {
	int is_digest;
	const uint8_t *data;        /* points into batch->arena */
	size_t len;
	int rc;                     /* BS_ERR_* or 0 */
	const char *problem;        /* set when refused before signing */
	size_t sig_len;
	uint8_t sig[SIG_MAX];
	uint8_t payload_sha256[SHA256_DIGEST_LENGTH];
};

struct batch;

struct batch_job {
	struct hsm_job job;
	struct batch *b;
	size_t from, to;
};

struct batch {
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	hsm_handle handle;
	uint32_t version;
	enum bs_sig_format fmt;
	size_t nitems;
	struct batch_item *items;
	size_t njobs, nsubmitted, ndone;
	struct batch_job *jobs;
	uint8_t *arena;
	size_t arena_len;
};

static void
batch_free(struct batch *b)
{
	if (b->arena != NULL)
		OPENSSL_cleanse(b->arena, b->arena_len);
	free(b->arena);
	free(b->items);
	free(b->jobs);
	free(b);
}

static void
batch_cancel_cb(void *arg)
{
	struct batch *b = arg;

	for (size_t i = 0; i < b->nsubmitted; i++)
		hsm_job_cancel(&b->jobs[i].job);
}

static void
batch_work(struct hsm_job *job, struct hsm_session *s)
{
	struct batch_job *bj = (struct batch_job *)job;
	struct batch *b = bj->b;

	for (size_t i = bj->from; i < bj->to; i++) {
		struct batch_item *it = &b->items[i];

		if (it->problem != NULL)
			continue;
		if (hsm_job_cancelled(job)) {
			it->rc = BS_ERR_CANCELLED;
			continue;
		}
		it->rc = sign_one(s, b->alg, b->handle, it->is_digest, it->data, it->len, b->fmt,
		    it->sig, &it->sig_len, it->payload_sha256);
	}
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

static void
batch_done(struct hsm_job *job)
{
	struct batch_job *bj = (struct batch_job *)job;
	struct batch *b = bj->b;

	if (++b->ndone < b->nsubmitted)
		return;
	batch_respond(b);
	batch_free(b);
}

/* Copies the items of r into b (inputs into one arena), checking each. */
static int
batch_load(struct batch *b, const Boltseal__V1__SignBatchRequest *r)
{
	size_t total = 0, off = 0;

	for (size_t i = 0; i < r->n_items; i++) {
		const Boltseal__V1__SignBatchItem *it = r->items[i];

		total += it->input_case == BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST ?
		    it->digest.len : it->message.len;
	}
	b->items = calloc(r->n_items > 0 ? r->n_items : 1, sizeof(*b->items));
	b->arena = malloc(total > 0 ? total : 1);
	if (b->items == NULL || b->arena == NULL)
		return BS_ERR_NOMEM;
	b->arena_len = total;
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
		if (it->problem != NULL)
			continue;
		if (in->len > 0)
			memcpy(b->arena + off, in->data, in->len);
		it->data = b->arena + off;
		it->len = in->len;
		off += in->len;
	}
	return 0;
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
		goto out;
	if (r->n_items == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "a batch needs at least one item");
		goto out;
	}
	if (r->n_items > svc->cfg->sign_batch_max) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "batch of %zu items exceeds the limit of %u", r->n_items, svc->cfg->sign_batch_max);
		goto out;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	b->call = call;
	b->svc = svc;
	b->alg = k->alg;
	if (batch_load(b, r) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	memcpy(b->key_name, k->name, sizeof(b->key_name));
	b->handle = v->handle;
	b->version = v->version;
	b->fmt = fmt;
	/* one slice per worker so every HSM session works on the batch */
	b->njobs = svc->nworkers < b->nitems ? svc->nworkers : b->nitems;
	if (b->njobs == 0)
		b->njobs = 1;
	b->jobs = calloc(b->njobs, sizeof(*b->jobs));
	if (b->jobs == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	per = (b->nitems + b->njobs - 1) / b->njobs;
	for (i = 0; i < b->njobs; i++) {
		struct batch_job *bj = &b->jobs[i];

		bj->job.work = batch_work;
		bj->job.done = batch_done;
		bj->b = b;
		bj->from = i * per;
		bj->to = bj->from + per < b->nitems ? bj->from + per : b->nitems;
		rc = svc->shutting_down ? BS_ERR_UNAVAILABLE : hsm_pool_submit(svc->pool, &bj->job);
		if (rc != 0) {
			if (b->nsubmitted == 0) {
				fail_submit(call, rc);
				goto out;
			}
			/* the rest of the batch waits for no one: mark it refused */
			for (size_t x = bj->from; x < b->nitems; x++)
				b->items[x].rc = rc;
			break;
		}
		b->nsubmitted++;
	}
	rpc_call_on_cancel(call, batch_cancel_cb, b);
	b = NULL; /* freed by the last batch_done */
out:
	if (b != NULL)
		batch_free(b);
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
