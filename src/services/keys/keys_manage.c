/*
 * keys_manage.c - KeyService key lifecycle and reads: CreateKey and
 * RotateKey (GENERATE through the key door, the key record made durable in
 * the audit log, then the catalog row written durably on the work queue,
 * the objects destroyed again if either cannot be),
 * GetKey, ListKeys (filtered by what the caller may see) and GetPublicKey.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "audit/auditlog.h"
#include "boltseal/v1/keys.pb-c.h"
#include "common/hex.h"
#include "common/log.h"
#include "daemon/bs_config.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/keys/keys_int.h"
#include "services/services.h"

#define LIST_DEFAULT_PAGE 100
#define LIST_MAX_PAGE 1000

/* ---- CreateKey / RotateKey -------------------------------------------------- */

/*
 * CreateKey and RotateKey write ahead, so that no key change is usable or
 * acknowledged without a durable record of it (docs/audit.md, "Key changes"):
 *  1. two places are reserved in the audit queue (audit_log_reserve); when
 *     the log cannot give them the call is refused before anything is done;
 *  2. GENERATE through the key door;
 *  3. the key record (type "key", event key_created or key_rotated) goes
 *     into the first place and is made durable;
 *  4. only then is the catalog row written durably on the work queue (disk,
 *     never on an HSM thread), mirrored in memory and the call answered
 *     (whose own "rpc" record follows, as for every call).
 * If the key record cannot be written (disk error) the change is not made:
 * the new objects are destroyed through the door and the caller gets
 * UNAVAILABLE (the record is written later, marked "not carried out"). If
 * the catalog row cannot be written after the record was, the second place
 * takes a record saying so and the objects are destroyed. A crash between
 * 3 and 4 leaves a record of a change that was not made, never the reverse.
 * With audit = off, steps 1 and 3 are skipped.
 */
struct keygen {
	struct workq_job job;       /* first: the catalog write */
	struct rpc_call *call;
	struct svc_ctx *svc;
	int rotate;
	struct catalog_key key;     /* versions unused */
	struct catalog_version ver; /* ver.spki owned */
	struct audit_slot *slot_rec;   /* the key record's place (NULL once used) */
	struct audit_slot *slot_undo;  /* the place of "undone" if the catalog fails */
	int recorded;               /* the key record is durable */
	int unrecorded;             /* the key record could not be written */
	int rc;
};
static void
keygen_free(struct keygen *g)
{
	free(g->ver.spki);
	free(g);
}
/* Gives back the places not used (before the answer: the log may close after it). */
static void
keygen_release_slots(struct keygen *g)
{
	if (g->svc->audit == NULL)
		return;
	audit_log_release(g->svc->audit, g->slot_rec);
	audit_log_release(g->svc->audit, g->slot_undo);
	g->slot_rec = g->slot_undo = NULL;
}
static void
destroyed(void *arg, struct keyop_answer *a)
{
	struct keygen *g = arg;

	if (a->rc != 0)
		bs_log(BS_LOG_ERROR, "cannot remove key objects after a failed key change", "key",
		    g->key.name, "error", bs_strerror(a->rc), NULL);
	keygen_free(g);
}
/* The status a failed change (rc != 0) is answered with. */
static int
keygen_fail_status(const struct keygen *g, int rc)
{
	if (g->unrecorded)
		return GRPC_STATUS_UNAVAILABLE;
	if (rc == BS_ERR_EXISTS && !g->rotate)
		return GRPC_STATUS_ALREADY_EXISTS;
	if (rc == BS_ERR_PRECONDITION || rc == BS_ERR_EXISTS)
		return GRPC_STATUS_ABORTED;
	return rpc_status_from_err(rc);
}
static void
keygen_answer(struct keygen *g)
{
	struct svc_ctx *svc = g->svc;
	const struct catalog_key *k;
	Boltseal__V1__Key *pb = NULL;
	char ver[16];
	int rc = g->rc;

	keygen_release_slots(g);
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
	if (g->unrecorded) {
		rpc_call_fail(g->call, GRPC_STATUS_UNAVAILABLE, "audit log unavailable: the key "
		    "change was not made; retry later");
	} else if (rc != 0 && keygen_fail_status(g, rc) == GRPC_STATUS_ALREADY_EXISTS) {
		rpc_call_fail(g->call, GRPC_STATUS_ALREADY_EXISTS, "key '%s' already exists",
		    g->key.name);
	} else if (rc != 0 && keygen_fail_status(g, rc) == GRPC_STATUS_ABORTED) {
		rpc_call_fail(g->call, GRPC_STATUS_ABORTED,
		    "key '%s' was rotated concurrently; retry", g->key.name);
	} else if (rc != 0) {
		keysvc_fail_err(g->call, rc, g->rotate ? "key rotation failed" : "key creation failed");
	} else if ((k = catalog_find(svc->catalog, g->key.name)) == NULL ||
	    (pb = keysvc_key_pb_new(k)) == NULL) {
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
	keysvc_key_pb_free(pb);
}
/* The change failed after GENERATE: answer, then destroy the new objects. */
static void
keygen_abort(struct keygen *g)
{
	struct keyop_request r;

	keygen_answer(g);
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_DESTROY;
	snprintf(r.key.name, sizeof(r.key.name), "%s", g->key.name);
	r.key.version = g->ver.version;
	memcpy(r.id, g->ver.hsm_id, HSM_KEY_ID_LEN);
	/* at shutdown the key door may be gone already (svc->keys NULL) */
	if (g->svc->keys == NULL || keyclient_submit(g->svc->keys, &r, destroyed, g, NULL) != 0) {
		bs_log(BS_LOG_ERROR, "cannot remove key objects after a failed key change", "key",
		    g->key.name, NULL);
		keygen_free(g);
	}
}
/*
 * Queues the key record of g into place *slot (used up): event, result and
 * reason as given. done NULL: not waited for.
 */
static int
keygen_record(struct keygen *g, struct audit_slot **slot, const char *event, const char *result,
    const char *reason, audit_done_fn done)
{
	uint8_t sha[SHA256_DIGEST_LENGTH];
	char sha_hex[BS_HEX_LEN(SHA256_DIGEST_LENGTH)];
	const char *principal = rpc_call_principal(g->call);
	const char *method = rpc_call_method(g->call);
	struct audit_field fields[] = {
		{ "algorithm", bs_alg_name(g->key.alg) },
		{ "purpose", bs_purpose_name(g->key.purpose) },
		{ "spki_sha256", sha_hex },
	};
	struct audit_record r;
	struct audit_slot *s = *slot;

	*slot = NULL;
	SHA256(g->ver.spki, g->ver.spki_len, sha);
	bs_hex_encode(sha, sizeof(sha), sha_hex);
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_KEY;
	r.request_id = rpc_call_request_id(g->call);
	r.principal_id = principal != NULL && principal[0] != '\0' ? principal : NULL;
	r.identity = rpc_call_identity(g->call);
	r.cert_sha256 = rpc_call_cert_sha256(g->call);
	r.method = method[0] == '/' ? method + 1 : method;
	r.key = g->key.name;
	r.key_version = g->ver.version;
	r.result = result;
	r.reason = reason;
	r.event = event;
	r.fields = fields;
	r.nfields = sizeof(fields) / sizeof(fields[0]);
	if (g->ver.spki_len == 0)
		r.nfields--;          /* a secret key: no public key to name (spki_sha256 is last) */
	return audit_log_commit_reserved(g->svc->audit, s, &r, done, g);
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
	char reason[256];

	if (g->rc == 0) {
		keygen_answer(g);
		keygen_free(g);
		return;
	}
	if (g->recorded) {
		/* the record says the change was made: say that it was not after all */
		snprintf(reason, sizeof(reason), "the key catalog could not be written (%s): the "
		    "change recorded by request %s was not made and its key objects are destroyed",
		    bs_strerror(g->rc), rpc_call_request_id(g->call));
		if (keygen_record(g, &g->slot_undo, g->rotate ? "key_rotation_undone" :
		    "key_creation_undone", grpc_status_name(keygen_fail_status(g, g->rc)), reason,
		    NULL) != 0)
			bs_log(BS_LOG_ERROR, "cannot record that a key change was undone", "key",
			    g->key.name, "request_id", rpc_call_request_id(g->call), NULL);
	}
	keygen_abort(g);
}
/* The key change itself: the catalog row on the work queue. */
static void
keygen_commit(struct keygen *g)
{
	int rc;

	g->job.work = keygen_store;
	g->job.done = keygen_stored;
	/* at shutdown the work queue may be gone already (svc->work NULL) */
	if (g->svc->work == NULL)
		rc = BS_ERR_UNAVAILABLE;
	else
		rc = workq_submit(g->svc->work, &g->job);
	if (rc != 0) {
		g->rc = rc;
		keygen_stored(&g->job);
	}
}
/* Loop: the key record is durable (rc 0), or not, and then the change is not made. */
static void
keygen_recorded(void *arg, int rc)
{
	struct keygen *g = arg;

	if (rc != 0) {
		g->unrecorded = 1;
		g->rc = BS_ERR_UNAVAILABLE;
		keygen_abort(g);
		return;
	}
	g->recorded = 1;
	keygen_commit(g);
}
/* Loop: the key pair exists (or not); now its record, then the catalog row. */
static void
keygen_generated(void *arg, struct keyop_answer *a)
{
	struct keygen *g = arg;
	int rc = a->rc;

	/* the key-door operation is over (and freed after this): no cancel hook on it */
	rpc_call_on_cancel(g->call, NULL, NULL);
	svc_note_hsm_result(g->svc, rc);
	if (rc != 0) {
		g->rc = rc;
		keygen_answer(g);
		keygen_free(g);
		return;
	}
	memcpy(g->ver.hsm_id, a->id, HSM_KEY_ID_LEN);
	g->ver.spki = a->spki;
	g->ver.spki_len = a->spki_len;
	a->spki = NULL;
	if (g->svc->audit == NULL) {
		keygen_commit(g);
		return;
	}
	if ((rc = keygen_record(g, &g->slot_rec, g->rotate ? "key_rotated" : "key_created", "OK",
	    NULL, keygen_recorded)) != 0) {
		g->rc = rc;
		keygen_abort(g);
	}
}
/* Takes the key change's places in the audit queue; answers and returns -1 if it cannot. */
static int
keygen_reserve(struct rpc_call *call, struct keygen *g)
{
	struct audit_log *audit = g->svc->audit;
	int rc;

	if (audit == NULL)
		return 0;
	if ((rc = audit_log_reserve(audit, &g->slot_rec)) == 0 &&
	    (rc = audit_log_reserve(audit, &g->slot_undo)) == 0)
		return 0;
	keygen_release_slots(g);
	if (rc == BS_ERR_QUEUE_FULL)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "the audit log cannot take the "
		    "record of a key change now; nothing was changed, retry later");
	else if (rc == BS_ERR_UNAVAILABLE)
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "audit log unavailable; nothing was "
		    "changed, retry later");
	else
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return -1;
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
	if (keygen_reserve(call, g) != 0) {
		free(g);
		return;
	}
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
	if ((rc = keysvc_submit(call, svc, &r, keygen_generated, g)) != 0) {
		keygen_release_slots(g);
		free(g);
		keysvc_fail_submit(call, rc);
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
void
keysvc_create_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__CreateKeyRequest *r = (const Boltseal__V1__CreateKeyRequest *)msg;
	enum bs_purpose purpose;
	enum bs_alg alg;

	if (!catalog_name_valid(r->name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "key name must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
	} else if (bs_alg_from_pb(r->algorithm, &alg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "algorithm must be ECDSA_P256_SHA256, ED25519, RSA_3072_PSS_SHA256, AES_256_GCM "
		    "or HMAC_SHA256");
	} else if (bs_purpose_from_pb(r->purpose, &purpose) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "purpose must be set");
	} else if (!bs_alg_fits_purpose(alg, purpose)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "purpose %s does not take %s: "
		    "ENVELOPE keys are AES_256_GCM or HMAC_SHA256, CA keys ECDSA_P256_SHA256, every "
		    "other purpose a signature algorithm", bs_purpose_name(purpose), bs_alg_name(alg));
	} else if (!authorize_create(call, r->name, purpose, alg)) {
		/* answered */
	} else if (catalog_find(rpc_call_svc(call)->catalog, r->name) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_ALREADY_EXISTS, "key '%s' already exists", r->name);
	} else {
		submit_keygen(call, r->name, purpose, alg, 1, 0);
	}
}
void
keysvc_rotate_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RotateKeyRequest *r = (const Boltseal__V1__RotateKeyRequest *)msg;
	const struct catalog_key *k;

	{
		const struct catalog_key *peek = catalog_name_valid(r->name) ?
		    catalog_find(rpc_call_svc(call)->catalog, r->name) : NULL;
		struct policy_attr attrs[] = {
			{ "request.purpose", peek != NULL ? bs_purpose_name(peek->purpose) : "none" },
		};

		k = keysvc_lookup_key_attrs(call, r->name, attrs, peek != NULL ? 1 : 0);
	}
	if (k != NULL && (k->state == BS_KEY_PENDING_DESTRUCTION || k->state == BS_KEY_DESTROYED)) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is %s: it takes no new "
		    "version", k->name, bs_key_state_name(k->state));
	} else if (k != NULL) {
		uint32_t next = k->nversions > 0 ? k->versions[k->nversions - 1].version + 1 : 1;

		rpc_call_audit_key(call, k->name, next);

		submit_keygen(call, k->name, k->purpose, k->alg, next, 1);
	}
}
/* ---- GetKey / ListKeys / GetPublicKey (answered from memory) --------------- */

void
keysvc_get_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetKeyRequest *r = (const Boltseal__V1__GetKeyRequest *)msg;
	Boltseal__V1__GetKeyResponse resp = BOLTSEAL__V1__GET_KEY_RESPONSE__INIT;
	const struct catalog_key *k;

	k = keysvc_lookup_key(call, r->name);
	if (k != NULL) {
		resp.key = keysvc_key_pb_new(k);
		if (resp.key == NULL)
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		else
			rpc_call_finish_pb(call, &resp.base);
		keysvc_key_pb_free(resp.key);
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
void
keysvc_list_keys(struct rpc_call *call, const ProtobufCMessage *msg)
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
		keys[i] = keysvc_key_pb_new(ck);
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
		keysvc_key_pb_free(keys[i]);
	free(keys);
}
void
keysvc_get_public_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetPublicKeyRequest *r = (const Boltseal__V1__GetPublicKeyRequest *)msg;
	Boltseal__V1__GetPublicKeyResponse resp = BOLTSEAL__V1__GET_PUBLIC_KEY_RESPONSE__INIT;
	const struct catalog_key *k;
	const struct catalog_version *v;
	char *pem = NULL;

	k = keysvc_lookup_key(call, r->name);
	if (k == NULL)
		goto out;
	v = r->version == 0 ? catalog_key_primary(k) : catalog_key_version(k, r->version);
	if (v == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' has no version %u", k->name,
		    r->version);
		goto out;
	}
	if (bs_alg_is_symmetric(k->alg)) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is a secret key (%s): "
		    "it has no public key", k->name, bs_alg_name(k->alg));
		goto out;
	}
	if (!catalog_version_usable(k, v)) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' version %u is %s",
		    k->name, v->version, bs_key_state_name(k->state != BS_KEY_ENABLED ? k->state :
		    v->state));
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
