/*
 * ota.c - boltseal.v1.OtaService: TUF metadata signed with HSM keys of
 * purpose OTA, rollbacks refused on the server (docs/ota.md).
 *
 * CreateRepository: the four top-level roles' keys (catalog keys of
 * purpose OTA, ECDSA P-256 or Ed25519, their current versions) become root
 * metadata version 1 (key objects and ids per tuf_meta.h), signed by every
 * root key; the repository's configuration and the root's high-water mark
 * are stored in one transaction before the answer.
 *
 * SignMetadata (targets, snapshot, timestamp): the signed part is parsed
 * strictly and checked (type, spec_version, version, expires within the
 * role's configured lifetime), its canonical form hashed; the stored mark
 * decides: higher version, sign; same version and bytes, the stored file
 * again; lower, or same version with other bytes, FAILED_PRECONDITION. A
 * snapshot or timestamp must still list every file the last one listed, at
 * no lower version. Every key of the role signs; the new mark (and file) is
 * stored by compare-and-set before the answer, so of two racing signers of
 * one version only one wins. Uptane (formats/uptane.h): a Director's
 * streams are per vehicle and its targets name their ECUs; an image
 * repository's release counters may not decrease per target name (rows
 * "rc/REPO/SHA256(name)", written with the mark).
 *
 * RotateRoot: root N+1 (the stored configuration with the request's roles
 * replaced) signed by root N's keys that can sign (at least its threshold)
 * and by root N+1's; configuration (compare-and-set), root file and mark
 * stored in one transaction. GetRepository: the configuration, the four
 * marks and every root file, for publishing tools and bootstrapping clients.
 * SetDelegation: a delegated targets role's keys, threshold and paths (row
 * "deleg/REPO", an array in delegation order); SignMetadata signs its
 * metadata like the top-level targets, with its own mark.
 *
 * Flow of a call: loop (checks) -> work queue (store read: the marks, or
 * for a new repository that its name and keys are free) -> key door (one
 * SIGN per key) -> work queue (store write) -> loop (answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/hex.h"

#include "boltseal/v1/ota.pb-c.h"
#include "common/log.h"
#include "exec/workq.h"
#include "formats/ecdsa_sig.h"
#include "formats/tuf_json.h"
#include "formats/tuf_meta.h"
#include "formats/uptane.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/ota/ota_state.h"
#include "services/services.h"
#include "store/store.h"

#define OTA_KEYS_MAX 8            /* keys per role */
#define OTA_SIGNERS_MAX (2 * OTA_KEYS_MAX)  /* a rotated root: the old root keys and the new */
#define OTA_SIG_MAX 80            /* DER ECDSA P-256 or Ed25519 */
#define LISTING_KEEP_MAX (56 * 1024)  /* snapshot/timestamp: canonical bytes, so the file fits a row */
#define OTA_SPEC_VERSION "1.0.31"
#define DAY 86400
#define DELEG_NAME_MAX 128         /* a delegated role's name, so its mark id fits a row id */
#define DELEG_MAX 32              /* delegated roles per repository */
#define DELEG_PATHS_MAX 64
#define CLOCK_SKEW 300            /* s: a signer's clock ahead of ours still fits the lifetime */

/* The "ota" configuration section: each role's longest lifetime. */
static const struct rpc_setting settings[] = {
	{ "root_max_days", 1, 3650, 365, 0 },
	{ "targets_max_days", 1, 3650, 90, 0 },
	{ "snapshot_max_days", 1, 3650, 7, 0 },
	{ "timestamp_max_hours", 1, 8760, 24, 0 },
};

struct ota_settings {
	int64_t max_lifetime[4];      /* seconds, by enum tuf_role */
};

struct role_key {
	char name[CATALOG_NAME_MAX + 1];
	uint32_t version;
};

struct role_cfg {
	struct role_key keys[OTA_KEYS_MAX];
	size_t nkeys;
	unsigned threshold;
};

/* RepositoryKind, as stored in the repository's row. */
static const char *const kind_names[3] = { "tuf", "uptane-image", "uptane-director" };
enum { KIND_TUF, KIND_IMAGE, KIND_DIRECTOR };
/* enum tuf_canon, as stored. */
static const char *const dialect_names[2] = { "tuf", "aktualizr" };

enum ota_op {
	OP_SIGN,                      /* SignMetadata */
	OP_CREATE,                    /* CreateRepository */
	OP_ROTATE,                    /* RotateRoot */
	OP_GET,                       /* GetRepository */
	OP_DELEGATE,                  /* SetDelegation */
};

/* One call in flight. job first: the work queue hands it back. */
struct ota_call {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	enum ota_op op;
	char repo[65];
	char mark_id[OTA_MARK_ID_MAX + 1];
	enum tuf_role role;
	char role_name[DELEG_NAME_MAX + 1];  /* a top-level role's or a delegated role's name */
	struct role_cfg cfg[4];       /* the stored configuration, by enum tuf_role */
	json_t *delegs;               /* the stored delegated roles (an array; see deleg_load) */
	uint64_t deleg_row_version;
	json_t *deleg_entry;          /* delegate: the role to store; sign: the role found */
	struct role_cfg deleg;        /* delegate, sign: that role's keys */
	char *deleg_obj;              /* delegate, get: the TUF "delegations" object */
	int kind;                     /* the stored kind (KIND_*) */
	enum tuf_canon dialect;       /* the repository's (create, rotate, get) or the request's (sign) */
	enum tuf_canon repo_dialect;  /* sign: the stored one */
	char vehicle[65];             /* Director: the vehicle signed for or read */
	char refuse_err[300];         /* found on the worker: a release counter that would drop,
	                               * a listing of what was not signed (FAILED_PRECONDITION) */
	uint64_t cfg_row_version;     /* its store row's version */
	struct role_cfg next[4];      /* create, rotate: the configuration to store */
	int changed[4];               /* rotate: the roles the request changes */
	int64_t life;                 /* create, rotate: the new root's lifetime (s) */
	char *cfg_json;               /* create, rotate: next, encoded for its row;
	                               * delegate: the new delegated roles' row */
	struct role_key signers[OTA_SIGNERS_MAX];
	size_t nsigners;
	json_t *signed_part;
	char *canon;
	size_t canon_len;
	uint8_t sha[32];
	int64_t version;
	struct ota_mark mark;
	int repo_missing;
	int resign;                   /* same version, file not kept: sign again, store nothing */
	/* signing */
	size_t nsigs, pending;
	struct tuf_signature sigs[OTA_SIGNERS_MAX];
	uint8_t sigbuf[OTA_SIGNERS_MAX][OTA_SIG_MAX];
	/* get: the four roles' marks and every root file */
	struct ota_mark marks[4];
	struct ota_mark *deleg_marks; /* get: one per stored delegated role */
	uint8_t **roots;
	size_t *root_lens;
	size_t nroots;
	int sign_rc;
	char *file;
	size_t file_len;
	int rc;
	char err[256];
};

static const struct catalog_version *role_key_version(struct ota_call *o,
    const struct role_key *rk, const struct catalog_key **kp);

static void
ota_call_free(struct ota_call *o)
{
	json_decref(o->signed_part);
	for (size_t i = 0; o->deleg_marks != NULL && i < json_array_size(o->delegs); i++)
		ota_mark_clear(&o->deleg_marks[i]);
	free(o->deleg_marks);
	json_decref(o->delegs);
	json_decref(o->deleg_entry);
	free(o->deleg_obj);
	free(o->canon);
	free(o->cfg_json);
	free(o->file);
	ota_mark_clear(&o->mark);
	for (size_t i = 0; i < 4; i++)
		ota_mark_clear(&o->marks[i]);
	for (size_t i = 0; i < o->nroots; i++)
		free(o->roots[i]);
	free(o->roots);
	free(o->root_lens);
	free(o);
}

static int
ota_init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct ota_settings *st;

	(void)env;
	(void)err;
	(void)errlen;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return BS_ERR_NOMEM;
	st->max_lifetime[TUF_ROLE_ROOT] = (int64_t)values[0] * DAY;
	st->max_lifetime[TUF_ROLE_TARGETS] = (int64_t)values[1] * DAY;
	st->max_lifetime[TUF_ROLE_SNAPSHOT] = (int64_t)values[2] * DAY;
	st->max_lifetime[TUF_ROLE_TIMESTAMP] = (int64_t)values[3] * 3600;
	*state = st;
	return 0;
}

static void
ota_fini(void *state)
{
	free(state);
}

/* ---- repository configuration (a JSON row) ------------------------------------- */

static const char *const top_roles[4] = { "root", "targets", "snapshot", "timestamp" };

/* One role's keys and threshold as stored: {"keys":[{"name","version"},...],"threshold"}. */
static json_t *
role_cfg_encode(const struct role_cfg *rc)
{
	json_t *keys = json_array();

	for (size_t j = 0; keys != NULL && j < rc->nkeys; j++)
		if (json_array_append_new(keys, json_pack("{s:s, s:I}", "name", rc->keys[j].name,
		    "version", (json_int_t)rc->keys[j].version)) != 0) {
			json_decref(keys);
			return NULL;
		}
	return keys == NULL ? NULL : json_pack("{s:o, s:I}", "keys", keys, "threshold",
	    (json_int_t)rc->threshold);
}

/* The inverse of role_cfg_encode; BS_ERR_INVALID for what it did not write. */
static int
role_cfg_decode(const json_t *r, struct role_cfg *rc)
{
	const json_t *keys = json_object_get(r, "keys"), *k;
	size_t j;

	memset(rc, 0, sizeof(*rc));
	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    json_array_size(keys) > OTA_KEYS_MAX || !json_is_integer(json_object_get(r, "threshold")))
		return BS_ERR_INVALID;
	rc->threshold = (unsigned)json_integer_value(json_object_get(r, "threshold"));
	json_array_foreach(keys, j, k) {
		const char *name = json_string_value(json_object_get(k, "name"));

		if (name == NULL || !catalog_name_valid(name) ||
		    !json_is_integer(json_object_get(k, "version")))
			return BS_ERR_INVALID;
		snprintf(rc->keys[j].name, sizeof(rc->keys[j].name), "%s", name);
		rc->keys[j].version = (uint32_t)json_integer_value(json_object_get(k, "version"));
	}
	rc->nkeys = json_array_size(keys);
	return 0;
}

static char *
cfg_encode(const struct role_cfg cfg[4], int kind, enum tuf_canon dialect)
{
	json_t *o = json_object();
	char *out = NULL;
	size_t i;

	if (o == NULL || json_object_set_new(o, "kind", json_string(kind_names[kind])) != 0 ||
	    json_object_set_new(o, "dialect", json_string(dialect_names[dialect])) != 0)
		goto out;
	for (i = 0; i < 4; i++)
		if (json_object_set_new(o, top_roles[i], role_cfg_encode(&cfg[i])) != 0)
			goto out;
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(o);
	return out;
}

static int
cfg_decode(const uint8_t *data, size_t len, struct role_cfg cfg[4], int *kind,
    enum tuf_canon *dialect)
{
	char err[128];
	json_t *o = NULL;
	const char *kn;
	size_t i;
	int rc = BS_ERR_INVALID;

	if (tuf_json_parse(data, len, STORE_DATA_MAX, &o, err, sizeof(err)) != 0)
		return BS_ERR_INVALID;
	memset(cfg, 0, 4 * sizeof(*cfg));
	/* rows written before kinds existed are plain TUF */
	kn = json_string_value(json_object_get(o, "kind"));
	for (*kind = KIND_TUF; kn != NULL && *kind < 3 && strcmp(kn, kind_names[*kind]) != 0;
	    (*kind)++)
		;
	if (*kind == 3)
		goto out;
	kn = json_string_value(json_object_get(o, "dialect"));
	*dialect = kn != NULL && strcmp(kn, dialect_names[TUF_CANON_AKTUALIZR]) == 0 ?
	    TUF_CANON_AKTUALIZR : TUF_CANON_OLPC;
	if (kn != NULL && strcmp(kn, dialect_names[*dialect]) != 0)
		goto out;
	for (i = 0; i < 4; i++)
		if (role_cfg_decode(json_object_get(o, top_roles[i]), &cfg[i]) != 0)
			goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static void
repo_row_id(const char *repo, char id[OTA_MARK_ID_MAX + 1])
{
	snprintf(id, OTA_MARK_ID_MAX + 1, "repo/%s", repo);
}

/* Every root version's file is kept: a client holding root N walks N+1, N+2, ... */
static void
root_row_id(const char *repo, int64_t version, char id[OTA_MARK_ID_MAX + 1])
{
	snprintf(id, OTA_MARK_ID_MAX + 1, "root/%s/%lld", repo, (long long)version);
}

/*
 * Reads the repository's configuration row into o->cfg and
 * o->cfg_row_version; a missing row sets o->repo_missing.
 */
static int
cfg_load(struct store_txn *tx, struct ota_call *o)
{
	char id[OTA_MARK_ID_MAX + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	repo_row_id(o->repo, id);
	rc = store_row_get(tx, OTA_STORE_NS, id, &data, &len, &o->cfg_row_version);
	if (rc == BS_ERR_NOT_FOUND) {
		o->repo_missing = 1;
		return 0;
	}
	if (rc == 0)
		rc = cfg_decode(data, len, o->cfg, &o->kind, &o->repo_dialect);
	free(data);
	return rc;
}

/*
 * A key signs for one repository only: TUF metadata does not name its
 * repository, so a signature made for one would be valid in the other,
 * past its policy and its high-water marks. Checks (and with claim,
 * records) that key name is free or already this repository's: 0, or
 * BS_ERR_EXISTS with the name in o->err, or the store's error.
 */
static int
keyuse_check(struct store_txn *tx, struct ota_call *o, const char *name, int claim)
{
	char id[OTA_MARK_ID_MAX + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t rowv;
	int rc, mine;

	snprintf(id, sizeof(id), "keyuse/%s", name);
	rc = store_row_get(tx, OTA_STORE_NS, id, &data, &len, &rowv);
	mine = rc == 0 && len == strlen(o->repo) && memcmp(data, o->repo, len) == 0;
	free(data);
	if (rc == 0 && !mine) {
		snprintf(o->err, sizeof(o->err), "%s", name);
		return BS_ERR_EXISTS;
	}
	if (rc == BS_ERR_NOT_FOUND && claim)
		return store_row_put(tx, OTA_STORE_NS, id, 0, (const uint8_t *)o->repo,
		    strlen(o->repo), NULL);
	return rc == BS_ERR_NOT_FOUND ? 0 : rc;
}

/* keyuse_check for every key of the n roles of cfg that matter (all, or those changed). */
static int
keyuse_check_all(struct store_txn *tx, struct ota_call *o, const struct role_cfg *cfg, size_t n,
    const int *only, int claim)
{
	int rc = 0;

	for (size_t r = 0; r < n && rc == 0; r++)
		for (size_t k = 0; k < cfg[r].nkeys && rc == 0 && (only == NULL || only[r]); k++)
			rc = keyuse_check(tx, o, cfg[r].keys[k].name, claim);
	return rc;
}

/* ---- delegated targets roles: a JSON array in the row "deleg/REPO" ----------------- */

/*
 * Each element: {"name", "keys":[{"name","version"}], "threshold", "paths":
 * [...], "terminating"}, in delegation order (TUF clients search the roles
 * in that order).
 */
static void
deleg_row_id(const char *repo, char id[OTA_MARK_ID_MAX + 1])
{
	snprintf(id, OTA_MARK_ID_MAX + 1, "deleg/%s", repo);
}

/* Worker: the repository's delegated roles into o->delegs (an empty array when none). */
static int
deleg_load(struct store_txn *tx, struct ota_call *o)
{
	char id[OTA_MARK_ID_MAX + 1], err[128];
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	deleg_row_id(o->repo, id);
	rc = store_row_get(tx, OTA_STORE_NS, id, &data, &len, &o->deleg_row_version);
	if (rc == BS_ERR_NOT_FOUND) {
		o->deleg_row_version = 0;
		o->delegs = json_array();
		return o->delegs != NULL ? 0 : BS_ERR_NOMEM;
	}
	if (rc != 0)
		return rc;
	if (tuf_json_parse(data, len, STORE_DATA_MAX, &o->delegs, err, sizeof(err)) != 0 ||
	    !json_is_array(o->delegs))
		rc = BS_ERR_INVALID;
	free(data);
	return rc;
}

/* The index of the stored role named name, or -1. */
static ssize_t
deleg_find(const json_t *delegs, const char *name)
{
	const json_t *e;
	size_t i;

	json_array_foreach(delegs, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n != NULL && strcmp(n, name) == 0)
			return (ssize_t)i;
	}
	return -1;
}

/*
 * The repository's TUF "delegations" object for o->delegs, in o->dialect:
 * {"keys": {KEYID: key object}, "roles": [{"name", "keyids", "threshold",
 * "paths", "terminating"}]}. NULL (o->err says why) when a key cannot be
 * used any more.
 */
static json_t *
deleg_object(struct ota_call *o)
{
	json_t *keys = json_object(), *roles = json_array(), *out, *e, *keyids, *obj;
	const struct catalog_key *k;
	const struct catalog_version *v;
	struct role_cfg rc;
	char keyid[TUF_KEYID_HEX_LEN + 1], kerr[128];
	size_t i, j;

	out = json_pack("{s:o, s:o}", "keys", keys, "roles", roles);
	if (out == NULL)
		return NULL;
	json_array_foreach(o->delegs, i, e) {
		if (role_cfg_decode(e, &rc) != 0 || (keyids = json_array()) == NULL)
			goto fail;
		for (j = 0; j < rc.nkeys; j++) {
			if ((v = role_key_version(o, &rc.keys[j], &k)) == NULL ||
			    tuf_key_object(v->spki, v->spki_len, o->dialect, &obj, keyid, kerr,
			    sizeof(kerr)) != 0 || json_object_set_new(keys, keyid, obj) != 0 ||
			    json_array_append_new(keyids, json_string(keyid)) != 0) {
				json_decref(keyids);
				goto fail;
			}
		}
		if (json_array_append_new(roles, json_pack("{s:O, s:o, s:O, s:O, s:O}", "name",
		    json_object_get(e, "name"), "keyids", keyids, "threshold",
		    json_object_get(e, "threshold"), "paths", json_object_get(e, "paths"),
		    "terminating", json_object_get(e, "terminating"))) != 0)
			goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* ---- answers --------------------------------------------------------------------- */

/* The audit record's ota.* fields: repository and role as soon as they are known... */
static void
audit_names(struct ota_call *o)
{
	/* best effort: a field that cannot be added (out of memory) is left out */
	if (rpc_call_audit_field(o->call, "ota.repository", o->repo) != 0)
		return;
	(void)!rpc_call_audit_field(o->call, "ota.role", o->role_name);
}

/* ...and the version once it is. */
static void
audit_version(struct ota_call *o)
{
	char v[24];

	snprintf(v, sizeof(v), "%lld", (long long)o->version);
	(void)!rpc_call_audit_field(o->call, "ota.version", v);
}

/* The keys that signed (name@version, ...) and the SHA-256 of the bytes they signed. */
static int
audit_signers(struct ota_call *o)
{
	char list[OTA_SIGNERS_MAX * (CATALOG_NAME_MAX + 16)];
	size_t i, n = 0;

	list[0] = '\0';
	for (i = 0; i < o->nsigners && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s@%u", i > 0 ? "," : "",
		    o->signers[i].name, (unsigned)o->signers[i].version);
	rpc_call_audit_key(o->call, o->signers[0].name, o->signers[0].version);
	if (rpc_call_audit_field(o->call, "ota.keys", list) != 0)
		return BS_ERR_NOMEM;
	return rpc_call_audit_payload(o->call, o->sha);
}

static void
answer(struct ota_call *o, const uint8_t *file, size_t len, int repeated)
{
	if (o->op == OP_CREATE) {
		Boltseal__V1__CreateRepositoryResponse r = BOLTSEAL__V1__CREATE_REPOSITORY_RESPONSE__INIT;

		r.root.data = (uint8_t *)file;
		r.root.len = len;
		rpc_call_finish_pb(o->call, &r.base);
	} else if (o->op == OP_DELEGATE) {
		Boltseal__V1__SetDelegationResponse r = BOLTSEAL__V1__SET_DELEGATION_RESPONSE__INIT;

		r.delegations.data = (uint8_t *)o->deleg_obj;
		r.delegations.len = strlen(o->deleg_obj);
		rpc_call_finish_pb(o->call, &r.base);
	} else if (o->op == OP_ROTATE) {
		Boltseal__V1__RotateRootResponse r = BOLTSEAL__V1__ROTATE_ROOT_RESPONSE__INIT;

		r.root.data = (uint8_t *)file;
		r.root.len = len;
		r.version = (uint64_t)o->version;
		rpc_call_finish_pb(o->call, &r.base);
	} else {
		Boltseal__V1__SignMetadataResponse r = BOLTSEAL__V1__SIGN_METADATA_RESPONSE__INIT;

		r.metadata.data = (uint8_t *)file;
		r.metadata.len = len;
		r.version = (uint64_t)o->version;
		r.repeated = repeated;
		rpc_call_finish_pb(o->call, &r.base);
	}
	ota_call_free(o);
}

static void
fail(struct ota_call *o, int status, const char *msg)
{
	rpc_call_fail(o->call, status, "%s", msg);
	ota_call_free(o);
}

/* ---- the store, on the work queue ------------------------------------------------ */

static void stored(struct workq_job *job);
static void sign_all(struct ota_call *o);

/* ---- Uptane release counters (image repositories) ---------------------------------- */

/* A target's counter row: "rc/REPO/" and the SHA-256 of the target's name (names may be long). */
static void
counter_row_id(const char *repo, const char *target, char id[OTA_MARK_ID_MAX + 1])
{
	uint8_t h[32];
	char hx[65];

	SHA256((const uint8_t *)target, strlen(target), h);
	bs_hex_encode(h, sizeof(h), hx);
	snprintf(id, OTA_MARK_ID_MAX + 1, "rc/%s/%s", repo, hx);
}

/* The stored counter of target: 1 and *c (*rowv its row's version), 0 none, or an error < 0. */
static int
counter_get(struct store_txn *tx, const struct ota_call *o, const char *target, int64_t *c,
    uint64_t *rowv)
{
	char id[OTA_MARK_ID_MAX + 1], num[24];
	uint8_t *data = NULL;
	size_t len = 0;
	char *end;
	int rc;

	counter_row_id(o->repo, target, id);
	rc = store_row_get(tx, OTA_STORE_NS, id, &data, &len, rowv);
	if (rc == BS_ERR_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = BS_ERR_INVALID;
	if (len > 0 && len < sizeof(num)) {
		memcpy(num, data, len);
		num[len] = '\0';
		*c = strtoll(num, &end, 10);
		if (*end == '\0' && *c >= 0)
			rc = 1;
	}
	free(data);
	return rc;
}

/*
 * Worker: each listed target's release counter against the one stored for
 * its name (Uptane: a counter may not decrease, and once a target has one
 * it keeps one); the first that would drop goes to o->refuse_err.
 */
static int
counters_check(struct store_txn *tx, struct ota_call *o)
{
	const json_t *t;
	const char *name;
	int64_t old = 0, now = 0;
	uint64_t rowv;
	int rc, has;

	json_object_foreach(json_object_get(o->signed_part, "targets"), name, t) {
		if ((rc = counter_get(tx, o, name, &old, &rowv)) < 0)
			return rc;
		if (rc == 0)
			continue;
		has = uptane_release_counter(t, &now);
		if (!has || now < old) {
			char to[24] = "none";

			if (has)
				snprintf(to, sizeof(to), "%lld", (long long)now);
			snprintf(o->refuse_err, sizeof(o->refuse_err), "refused rollback: the release "
			    "counter of target '%.64s' would go from %lld to %s", name, (long long)old,
			    to);
			return 0;
		}
	}
	return 0;
}

/* Worker, in the transaction that moves the mark: the new counters. */
static int
counters_store(struct store_txn *tx, struct ota_call *o)
{
	const json_t *t;
	const char *name;
	char id[OTA_MARK_ID_MAX + 1], num[24];
	int64_t old = 0, now = 0;
	uint64_t rowv = 0;
	int rc;

	json_object_foreach(json_object_get(o->signed_part, "targets"), name, t) {
		if (!uptane_release_counter(t, &now))
			continue;
		if ((rc = counter_get(tx, o, name, &old, &rowv)) < 0)
			return rc;
		if (rc == 1 && old == now)
			continue;
		counter_row_id(o->repo, name, id);
		snprintf(num, sizeof(num), "%lld", (long long)now);
		if ((rc = store_row_put(tx, OTA_STORE_NS, id, rc == 1 ? rowv : 0, (const uint8_t *)num,
		    strlen(num), NULL)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Worker: what a snapshot or timestamp lists must have been signed here. A
 * snapshot lists targets.json and delegated roles (NAME.json) at versions
 * no higher than their marks; a timestamp lists snapshot.json at a version
 * no higher than its mark and, for the version of the mark, with the
 * length and SHA-256 of the file that was returned. A file that does not
 * exist can only break clients (or, signed later with other content, be
 * the one that differs from what they were told). The first mismatch goes
 * to o->refuse_err; names that are no role of the repository are
 * BS_ERR_INVALID with o->err.
 */
static int
listing_check(struct store_txn *tx, struct ota_call *o)
{
	const json_t *meta = json_object_get(o->signed_part, "meta"), *e, *hashes;
	const char *file;
	char role[DELEG_NAME_MAX + 8], id[OTA_MARK_ID_MAX + 1], hex[65];
	struct ota_mark m;
	uint8_t sha[32];
	size_t n;
	int64_t v;
	int rc = 0;

	if (o->role == TUF_ROLE_SNAPSHOT && o->delegs == NULL && (rc = deleg_load(tx, o)) != 0)
		return rc;
	json_object_foreach((json_t *)meta, file, e) {
		n = strlen(file);
		if (n < 6 || n - 5 >= sizeof(role) || strcmp(file + n - 5, ".json") != 0)
			goto unknown;
		memcpy(role, file, n - 5);
		role[n - 5] = '\0';
		if (o->role == TUF_ROLE_TIMESTAMP ? strcmp(role, "snapshot") != 0 :
		    strcmp(role, "targets") != 0 && deleg_find(o->delegs, role) < 0)
			goto unknown;
		v = json_integer_value(json_object_get(e, "version"));
		if (ota_mark_id(o->repo, role, o->kind == KIND_DIRECTOR ? o->vehicle : NULL, id) != 0)
			goto unknown;
		memset(&m, 0, sizeof(m));
		if ((rc = ota_mark_get(tx, id, &m)) != 0)
			return rc;
		if (!m.hw.present || v > m.hw.version) {
			snprintf(o->refuse_err, sizeof(o->refuse_err), "refused: %s lists %s version "
			    "%lld, which was not signed (the last is %lld)", o->role_name, file,
			    (long long)v, (long long)(m.hw.present ? m.hw.version : 0));
		} else if (o->role == TUF_ROLE_TIMESTAMP && v == m.hw.version && m.metadata != NULL) {
			hashes = json_object_get(e, "hashes");
			SHA256(m.metadata, m.metadata_len, sha);
			bs_hex_encode(sha, sizeof(sha), hex);
			if ((json_object_get(e, "length") != NULL &&
			    json_integer_value(json_object_get(e, "length")) !=
			    (json_int_t)m.metadata_len) ||
			    (json_object_get(hashes, "sha256") != NULL &&
			    strcmp(json_string_value(json_object_get(hashes, "sha256")) != NULL ?
			    json_string_value(json_object_get(hashes, "sha256")) : "", hex) != 0))
				snprintf(o->refuse_err, sizeof(o->refuse_err), "refused: timestamp lists "
				    "snapshot.json version %lld with a length or SHA-256 that is not the "
				    "file signed", (long long)v);
		}
		ota_mark_clear(&m);
		if (o->refuse_err[0] != '\0')
			return 0;
	}
	return 0;
unknown:
	snprintf(o->err, sizeof(o->err), "$.meta[\"%.100s\"]: %s", file, o->role ==
	    TUF_ROLE_TIMESTAMP ? "a timestamp lists snapshot.json only" : "no role of this "
	    "repository (targets.json or a delegated role's NAME.json)");
	return BS_ERR_INVALID;
}

/*
 * Worker, SignMetadata once the repository's kind is known: a vehicle for
 * a Director and only there, the stream's mark id, the kind's rules on
 * targets. 0, or BS_ERR_INVALID with the reason in o->err.
 */
static int
kind_checks(struct ota_call *o)
{
	char err[256];

	if (o->kind == KIND_DIRECTOR && o->vehicle[0] == '\0') {
		snprintf(o->err, sizeof(o->err), "vehicle_id: required (repository '%s' is an Uptane "
		    "Director, whose metadata is signed per vehicle)", o->repo);
		return BS_ERR_INVALID;
	}
	if (o->kind != KIND_DIRECTOR && o->vehicle[0] != '\0') {
		snprintf(o->err, sizeof(o->err), "vehicle_id: only for Uptane Director repositories "
		    "('%s' is of kind %s)", o->repo, kind_names[o->kind]);
		return BS_ERR_INVALID;
	}
	if (o->dialect != o->repo_dialect) {
		snprintf(o->err, sizeof(o->err), "repository '%s' is written in the %s dialect: _type "
		    "must be \"%s\"", o->repo, o->repo_dialect == TUF_CANON_AKTUALIZR ? "aktualizr" :
		    "TUF", tuf_role_type(o->role, o->repo_dialect));
		return BS_ERR_INVALID;
	}
	if (o->kind == KIND_DIRECTOR && o->role == TUF_ROLE_DELEGATED) {
		snprintf(o->err, sizeof(o->err), "role '%s': an Uptane Director does not delegate",
		    o->role_name);
		return BS_ERR_INVALID;
	}
	if (ota_mark_id(o->repo, o->role_name, o->kind == KIND_DIRECTOR ? o->vehicle : NULL,
	    o->mark_id) != 0) {
		snprintf(o->err, sizeof(o->err), "bad repository, role or vehicle name");
		return BS_ERR_INVALID;
	}
	if (o->role != TUF_ROLE_TARGETS && o->role != TUF_ROLE_DELEGATED)
		return 0;
	if ((o->kind == KIND_DIRECTOR && uptane_director_targets_check(o->signed_part, o->vehicle,
	    err, sizeof(err)) != 0) ||
	    (o->kind == KIND_IMAGE && uptane_image_targets_check(o->signed_part, err,
	    sizeof(err)) != 0)) {
		snprintf(o->err, sizeof(o->err), "%s", err);
		return BS_ERR_INVALID;
	}
	return 0;
}

/* ---- the store, on the work queue (continued) ------------------------------------- */

/*
 * SignMetadata and RotateRoot: the repository's configuration and the
 * role's mark. CreateRepository, before any key signs: the name is free
 * and no key is bound to another repository (store_work checks both
 * again, atomically).
 */
static void
load_work(struct workq_job *job, void *ctx)
{
	struct ota_call *o = (struct ota_call *)job;
	struct store_txn *tx = NULL;

	(void)ctx;
	if ((o->rc = store_begin(o->svc->store, &tx)) != 0)
		return;
	o->rc = cfg_load(tx, o);
	if (o->op == OP_DELEGATE) {
		if (o->rc == 0 && !o->repo_missing)
			o->rc = deleg_load(tx, o);
		if (o->rc == 0 && !o->repo_missing && o->kind != KIND_DIRECTOR)
			o->rc = keyuse_check_all(tx, o, &o->deleg, 1, NULL, 0);
		store_rollback(tx);
		return;
	}
	if (o->rc == 0 && !o->repo_missing && o->op == OP_SIGN && o->role == TUF_ROLE_DELEGATED) {
		ssize_t i = -1;

		if ((o->rc = deleg_load(tx, o)) == 0 && (i = deleg_find(o->delegs, o->role_name)) < 0) {
			snprintf(o->err, sizeof(o->err), "repository '%.64s' has no delegated role "
			    "'%.100s' (SetDelegation registers one)", o->repo, o->role_name);
			o->rc = BS_ERR_NOT_FOUND;
		} else if (o->rc == 0) {
			o->rc = role_cfg_decode(json_array_get(o->delegs, (size_t)i), &o->deleg);
		}
	}
	if (o->op == OP_CREATE) {
		if (o->rc == 0)
			o->rc = o->repo_missing ? keyuse_check_all(tx, o, o->next, 4, NULL, 0) :
			    BS_ERR_EXISTS;
		store_rollback(tx);
		return;
	}
	if (o->rc == 0 && !o->repo_missing && o->op == OP_SIGN)
		o->rc = kind_checks(o);
	if (o->rc == 0 && !o->repo_missing)
		o->rc = ota_mark_get(tx, o->mark_id, &o->mark);
	if (o->rc == 0 && !o->repo_missing && o->op == OP_SIGN && o->kind == KIND_IMAGE &&
	    (o->role == TUF_ROLE_TARGETS || o->role == TUF_ROLE_DELEGATED))
		o->rc = counters_check(tx, o);
	if (o->rc == 0 && !o->repo_missing && o->op == OP_SIGN &&
	    (o->role == TUF_ROLE_SNAPSHOT || o->role == TUF_ROLE_TIMESTAMP))
		o->rc = listing_check(tx, o);
	/* rotate: the keys the request brings in are free (store_work checks again) */
	if (o->rc == 0 && !o->repo_missing && o->op == OP_ROTATE)
		o->rc = keyuse_check_all(tx, o, o->next, 4, o->changed, 0);
	store_rollback(tx);
}

/* Create and rotate: the configuration, its keys' use, the root file; all: the new mark. */
static void
store_work(struct workq_job *job, void *ctx)
{
	struct ota_call *o = (struct ota_call *)job;
	struct store_txn *tx = NULL;
	char id[OTA_MARK_ID_MAX + 1];

	(void)ctx;
	if ((o->rc = store_begin(o->svc->store, &tx)) != 0)
		return;
	if (o->op == OP_CREATE || o->op == OP_ROTATE) {
		/* rotate: compare-and-set, so two racing rotations cannot both land */
		repo_row_id(o->repo, id);
		o->rc = store_row_put(tx, OTA_STORE_NS, id, o->op == OP_CREATE ? 0 :
		    o->cfg_row_version, (const uint8_t *)o->cfg_json, strlen(o->cfg_json), NULL);
		if (o->rc == 0)
			o->rc = keyuse_check_all(tx, o, o->next, 4, NULL, 1);
		/* a repository made before root files had rows: keep root N's from its mark */
		root_row_id(o->repo, o->version - 1, id);
		if (o->rc == 0 && o->op == OP_ROTATE && o->mark.metadata != NULL) {
			o->rc = store_row_put(tx, OTA_STORE_NS, id, 0, o->mark.metadata,
			    o->mark.metadata_len, NULL);
			if (o->rc == BS_ERR_EXISTS)
				o->rc = 0;
		}
		root_row_id(o->repo, o->version, id);
		if (o->rc == 0)
			o->rc = store_row_put(tx, OTA_STORE_NS, id, 0, (const uint8_t *)o->file,
			    o->file_len, NULL);
		if (o->rc == BS_ERR_EXISTS && o->op == OP_ROTATE && o->err[0] == '\0')
			o->rc = BS_ERR_PRECONDITION;   /* another rotation wrote this version */
	}
	if (o->op == OP_DELEGATE) {
		deleg_row_id(o->repo, id);
		o->rc = store_row_put(tx, OTA_STORE_NS, id, o->deleg_row_version,
		    (const uint8_t *)o->cfg_json, strlen(o->cfg_json), NULL);
		if (o->rc == 0)
			o->rc = keyuse_check_all(tx, o, &o->deleg, 1, NULL, 1);
		if (o->rc != 0) {
			store_rollback(tx);
			return;
		}
		o->rc = store_commit(tx);
		return;
	}
	if (o->rc == 0 && o->op == OP_SIGN && o->kind == KIND_IMAGE &&
	    (o->role == TUF_ROLE_TARGETS || o->role == TUF_ROLE_DELEGATED))
		o->rc = counters_store(tx, o);
	if (o->rc == 0)
		o->rc = ota_mark_put(tx, o->mark_id, &o->mark, o->version, o->sha,
		    (const uint8_t *)o->file, o->file_len);
	if (o->rc != 0) {
		store_rollback(tx);
		return;
	}
	o->rc = store_commit(tx);
}

static int
submit(struct ota_call *o, void (*work)(struct workq_job *, void *), void (*done)(struct workq_job *))
{
	o->job.work = work;
	o->job.done = done;
	return o->svc->work == NULL ? BS_ERR_UNAVAILABLE : workq_submit(o->svc->work, &o->job);
}

static void
stored(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;
	char msg[384];

	if (o->rc == BS_ERR_EXISTS && o->op != OP_SIGN && o->err[0] != '\0') {
		snprintf(msg, sizeof(msg), "key '%.64s' already signs for another repository (a key "
		    "serves one repository only)", o->err);
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	if (o->rc == BS_ERR_EXISTS && o->op == OP_CREATE) {
		snprintf(msg, sizeof(msg), "repository '%s' already exists", o->repo);
		fail(o, GRPC_STATUS_ALREADY_EXISTS, msg);
		return;
	}
	if (o->rc == BS_ERR_PRECONDITION && o->op != OP_SIGN) {
		snprintf(msg, sizeof(msg), "another call changed repository '%s' meanwhile; retry",
		    o->repo);
		fail(o, GRPC_STATUS_ABORTED, msg);
		return;
	}
	if (o->rc == BS_ERR_PRECONDITION) {
		snprintf(msg, sizeof(msg), "another call signed %s of repository '%s' meanwhile; "
		    "read the current version and retry", o->role_name, o->repo);
		fail(o, GRPC_STATUS_ABORTED, msg);
		return;
	}
	if (o->rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot store OTA state", "repository", o->repo, "error",
		    bs_strerror(o->rc), NULL);
		fail(o, GRPC_STATUS_UNAVAILABLE, "cannot store the repository state");
		return;
	}
	answer(o, (const uint8_t *)o->file, o->file_len, 0);
}

static void sign_all(struct ota_call *o);

/* The signers of a role's metadata: every key of the role. */
static void
signers_of(struct ota_call *o, const struct role_cfg *rc)
{
	memcpy(o->signers, rc->keys, rc->nkeys * sizeof(rc->keys[0]));
	o->nsigners = rc->nkeys;
}

/* Loop: the name and the keys are free (sign), or say why not (stored's messages). */
static void
create_checked(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;

	if (o->rc != 0) {
		stored(job);
		return;
	}
	signers_of(o, &o->next[TUF_ROLE_ROOT]);
	sign_all(o);
}

/* ---- signing ------------------------------------------------------------------- */

struct sign_slot {
	struct ota_call *o;
	size_t i;
	enum bs_alg alg;
};

static void
signed_one(void *arg, struct keyop_answer *a)
{
	struct sign_slot *sl = arg;
	struct ota_call *o = sl->o;
	size_t i = sl->i, n;
	int rc = a->rc;

	if (rc == 0 && (a->nsigs != 1 || a->sigs[0].rc != 0))
		rc = a->nsigs == 1 ? a->sigs[0].rc : BS_ERR_HSM;
	if (rc == 0 && sl->alg == BS_ALG_ECDSA_P256_SHA256) {
		/* TUF's ecdsa-sha2-nistp256 signatures are DER */
		n = 0;
		rc = a->sigs[0].sig_len == ECDSA_P256_RAW_LEN ? ecdsa_sig_raw_to_der(a->sigs[0].sig,
		    o->sigbuf[i], OTA_SIG_MAX, &n) : BS_ERR_HSM;
		if (rc == 0)
			o->sigs[i].sig_len = n;
	} else if (rc == 0) {
		if (a->sigs[0].sig_len > OTA_SIG_MAX)
			rc = BS_ERR_HSM;
		else {
			memcpy(o->sigbuf[i], a->sigs[0].sig, a->sigs[0].sig_len);
			o->sigs[i].sig_len = a->sigs[0].sig_len;
		}
	}
	o->sigs[i].sig = o->sigbuf[i];
	o->sigs[i].method = sl->alg == BS_ALG_ED25519 ? "ed25519" : "ecdsa-sha2-nistp256";
	if (rc != 0 && o->sign_rc == 0)
		o->sign_rc = rc;
	svc_note_hsm_result(o->svc, rc);
	free(sl);
	if (--o->pending > 0)
		return;
	if (o->sign_rc != 0) {
		fail(o, GRPC_STATUS_UNAVAILABLE, "the HSM could not sign");
		return;
	}
	if (audit_signers(o) != 0) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (tuf_meta_envelope(o->signed_part, o->sigs, o->nsigs, o->dialect, &o->file,
	    &o->file_len) != 0) {
		fail(o, GRPC_STATUS_INTERNAL, "cannot assemble the metadata file");
		return;
	}
	if (o->resign) {
		/* the version signed last, too big to have been kept: the same content again */
		answer(o, (const uint8_t *)o->file, o->file_len, 1);
		return;
	}
	if (submit(o, store_work, stored) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/*
 * The catalog version a role's key signs with: the key must still be of
 * purpose OTA and the version recorded for the repository still enabled.
 */
static const struct catalog_version *
role_key_version(struct ota_call *o, const struct role_key *rk, const struct catalog_key **kp)
{
	const struct catalog_key *k = catalog_find(o->svc->catalog, rk->name);
	const struct catalog_version *v;

	if (k == NULL || k->purpose != BS_PURPOSE_OTA ||
	    (k->alg != BS_ALG_ECDSA_P256_SHA256 && k->alg != BS_ALG_ED25519)) {
		snprintf(o->err, sizeof(o->err), "key '%s' is not an ECDSA P-256 or Ed25519 key of "
		    "purpose ota", rk->name);
		return NULL;
	}
	v = catalog_key_version(k, rk->version);
	if (v == NULL || !catalog_version_usable(k, v)) {
		snprintf(o->err, sizeof(o->err), "version %u of key '%s' is not enabled",
		    (unsigned)rk->version, rk->name);
		return NULL;
	}
	*kp = k;
	return v;
}

/* Every key of o->signers signs o->canon; signed_one finishes. */
static void
sign_all(struct ota_call *o)
{
	struct keyop_input in[OTA_SIGNERS_MAX];
	struct keyop_request r;
	const struct catalog_key *k = NULL;
	const struct catalog_version *v;
	json_t *obj;
	char kerr[128];
	size_t i;

	o->nsigs = o->nsigners;
	o->pending = o->nsigners;
	for (i = 0; i < o->nsigners; i++) {
		if ((v = role_key_version(o, &o->signers[i], &k)) == NULL ||
		    tuf_key_object(v->spki, v->spki_len, o->dialect, &obj, o->sigs[i].keyid, kerr,
		    sizeof(kerr)) != 0) {
			if (v != NULL)
				snprintf(o->err, sizeof(o->err), "key '%s': %s", o->signers[i].name, kerr);
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->err);
			return;
		}
		json_decref(obj);
	}
	for (i = 0; i < o->nsigners; i++) {
		struct sign_slot *sl = calloc(1, sizeof(*sl));

		(void)role_key_version(o, &o->signers[i], &k);
		v = catalog_key_version(k, o->signers[i].version);
		memset(&in[i], 0, sizeof(in[i]));
		/* TUF: ECDSA signs SHA-256 of the canonical bytes (DER), Ed25519 the bytes */
		if (k->alg == BS_ALG_ECDSA_P256_SHA256) {
			in[i].is_digest = 1;
			in[i].data = o->sha;
			in[i].len = sizeof(o->sha);
		} else {
			in[i].data = (const uint8_t *)o->canon;
			in[i].len = o->canon_len;
		}
		memset(&r, 0, sizeof(r));
		r.type = KEYOP_SIGN;
		snprintf(r.key.name, sizeof(r.key.name), "%s", k->name);
		r.key.version = v->version;
		memcpy(r.id, v->hsm_id, KEYOPS_ID_LEN);
		r.alg = k->alg;
		r.inputs = &in[i];
		r.ninputs = 1;
		if (sl != NULL) {
			sl->o = o;
			sl->i = i;
			sl->alg = k->alg;
		}
		if (sl == NULL || o->svc->keys == NULL ||
		    keyclient_submit(o->svc->keys, &r, signed_one, sl, NULL) != 0) {
			/* only the i already submitted will answer (later, never in submit) */
			free(sl);
			o->sign_rc = BS_ERR_UNAVAILABLE;
			o->pending = i;
			if (i == 0)
				fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
			return;
		}
	}
}

/* ---- SignMetadata ----------------------------------------------------------------- */

static void
loaded(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;
	json_t *prev = NULL, *prev_signed;
	char msg[400], err[300];

	if (o->rc == BS_ERR_INVALID && o->err[0] != '\0') {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, o->err);
		return;
	}
	if (o->rc == BS_ERR_NOT_FOUND && o->err[0] != '\0') {
		fail(o, GRPC_STATUS_NOT_FOUND, o->err);
		return;
	}
	if (o->rc != 0) {
		fail(o, GRPC_STATUS_UNAVAILABLE, "cannot read the repository state");
		return;
	}
	if (o->repo_missing) {
		snprintf(msg, sizeof(msg), "repository '%s' not found", o->repo);
		fail(o, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	switch (tuf_meta_order(&o->mark.hw, o->version, o->sha)) {
	case TUF_ORDER_SAME:
		if (o->mark.metadata != NULL) {
			answer(o, o->mark.metadata, o->mark.metadata_len, 1);
			return;
		}
		o->resign = 1;   /* not kept (too big): sign the same bytes again, store nothing */
		break;
	case TUF_ORDER_ROLLBACK:
		snprintf(msg, sizeof(msg), "refused rollback: %s version %lld is lower than version "
		    "%lld signed before", o->role_name, (long long)o->version,
		    (long long)o->mark.hw.version);
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	case TUF_ORDER_FORK:
		snprintf(msg, sizeof(msg), "refused: %s version %lld was signed before with other "
		    "content", o->role_name, (long long)o->version);
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	case TUF_ORDER_NEW:
		if (o->refuse_err[0] != '\0') {
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->refuse_err);
			return;
		}
		break;
	}
	if ((o->role == TUF_ROLE_SNAPSHOT || o->role == TUF_ROLE_TIMESTAMP) &&
	    o->mark.metadata != NULL) {
		if (tuf_json_parse(o->mark.metadata, o->mark.metadata_len, STORE_DATA_MAX, &prev, err,
		    sizeof(err)) != 0 || (prev_signed = json_object_get(prev, "signed")) == NULL) {
			json_decref(prev);
			fail(o, GRPC_STATUS_INTERNAL, "the stored metadata cannot be read");
			return;
		}
		if (tuf_meta_listed_versions(prev_signed, o->signed_part, o->role, err,
		    sizeof(err)) != 0) {
			json_decref(prev);
			snprintf(msg, sizeof(msg), "refused rollback: %s", err);
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
			return;
		}
		json_decref(prev);
	} else if ((o->role == TUF_ROLE_SNAPSHOT || o->role == TUF_ROLE_TIMESTAMP) &&
	    o->mark.hw.present) {
		/* never expected (such files are kept whole, see sign_metadata): fail closed */
		fail(o, GRPC_STATUS_INTERNAL, "the last signed file of this role was not kept; its "
		    "listing cannot be checked");
		return;
	}
	signers_of(o, o->role == TUF_ROLE_DELEGATED ? &o->deleg : &o->cfg[o->role]);
	sign_all(o);
}

/*
 * 0 if name is a top-level role's or a delegated role's name of at most
 * DELEG_NAME_MAX bytes without '/': TUF allows a '/' (clients then request
 * "V.a%2Fb.json"), but static web servers decode %2F into a directory, so
 * such a role's files could not be served as written.
 */
static int
deleg_name_check(const char *name)
{
	enum tuf_role r;

	return tuf_role_parse(name, &r) == 0 && strlen(name) <= DELEG_NAME_MAX &&
	    strchr(name, '/') == NULL ? 0 : -1;
}

static int
name_ok(const char *s)
{
	char id[OTA_MARK_ID_MAX + 1];

	return ota_mark_id(s, "root", NULL, id) == 0;
}

/*
 * The start every handler shares: the service is up and repo is a valid
 * repository name. Returns the call's state, or NULL (answered).
 */
static struct ota_call *
ota_call_start(struct rpc_call *call, const char *repo, const char *what)
{
	const struct svc_ctx *svc = rpc_call_svc(call);
	struct ota_call *o;

	if (rpc_call_service_state(call) == NULL || svc->store == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "OTA service not started");
		return NULL;
	}
	if (!name_ok(repo)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s: 1..64 of [A-Za-z0-9._-], "
		    "starting alphanumeric", what);
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	o->call = call;
	o->svc = rpc_call_svc(call);
	snprintf(o->repo, sizeof(o->repo), "%s", repo);
	return o;
}

/*
 * The request's vehicle_id (may be empty) into o->vehicle and the audit
 * record; whether the repository wants one is known once it is read.
 * 0, or answered (o freed) and -1.
 */
static int
vehicle_set(struct ota_call *o, const char *vehicle)
{
	char id[OTA_MARK_ID_MAX + 1];

	if (vehicle[0] != '\0' && ota_mark_id(o->repo, "targets", vehicle, id) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "vehicle_id: 1..64 of [A-Za-z0-9._-], starting "
		    "alphanumeric");
		return -1;
	}
	snprintf(o->vehicle, sizeof(o->vehicle), "%s", vehicle);
	if (vehicle[0] != '\0')
		(void)!rpc_call_audit_field(o->call, "ota.vehicle_id", vehicle);
	return 0;
}

/* The policy's verdict on o with its request attributes; 0: refused, answered, o freed. */
static int
ota_authorize(struct ota_call *o, const char *role)
{
	char v[24];

	snprintf(v, sizeof(v), "%lld", (long long)o->version);
	{
		struct policy_attr attrs[] = {
			{ "request.repository", o->repo },
			{ "request.role", role },
			{ "request.version", o->version > 0 ? v : NULL },
			{ "request.vehicle_id", o->vehicle[0] != '\0' ? o->vehicle : NULL },
		};

		if (rpc_call_authorize(o->call, NULL, "ota", attrs, 4))
			return 1;
	}
	ota_call_free(o);
	return 0;
}

static void
sign_metadata(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SignMetadataRequest *r = (const Boltseal__V1__SignMetadataRequest *)msg;
	const struct ota_settings *st = rpc_call_service_state(call);
	struct tuf_meta_info info;
	struct ota_call *o;
	enum tuf_role life_role;
	const char *type;
	char err[300];
	int rc;

	if (strcmp(r->role, "root") == 0 || deleg_name_check(r->role) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "role must be targets, snapshot, "
		    "timestamp or a delegated role's name (root metadata comes from "
		    "CreateRepository and RotateRoot)");
		return;
	}
	if ((o = ota_call_start(call, r->repository, "repository")) == NULL)
		return;
	if (tuf_role_parse(r->role, &o->role) != 0 ||
	    ota_mark_id(o->repo, r->role, NULL, o->mark_id) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "bad repository or role name");
		return;
	}
	snprintf(o->role_name, sizeof(o->role_name), "%s", r->role);
	life_role = o->role == TUF_ROLE_DELEGATED ? TUF_ROLE_TARGETS : o->role;
	audit_names(o);
	if (vehicle_set(o, r->vehicle_id) != 0)
		return;
	if ((rc = tuf_json_parse(r->signed_.data, r->signed_.len, r->signed_.len + 1,
	    &o->signed_part, err, sizeof(err))) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, err);
		return;
	}
	/* the dialect the caller writes in; the repository's must match (kind_checks) */
	type = json_string_value(json_object_get(o->signed_part, "_type"));
	o->dialect = type != NULL && strcmp(type, tuf_role_type(o->role, TUF_CANON_AKTUALIZR)) == 0 ?
	    TUF_CANON_AKTUALIZR : TUF_CANON_OLPC;
	if (tuf_meta_check(o->signed_part, o->role, o->dialect, time(NULL),
	    st->max_lifetime[life_role] + CLOCK_SKEW, &info, err, sizeof(err)) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, err);
		return;
	}
	o->version = info.version;
	audit_version(o);
	if (!ota_authorize(o, r->role))
		return;
	if (tuf_json_canonical(o->signed_part, o->dialect, &o->canon, &o->canon_len) != 0) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	/*
	 * A snapshot or timestamp file is kept whole (a store row holds 64 KiB)
	 * so that the next one's listing can be checked against it.
	 */
	if ((o->role == TUF_ROLE_SNAPSHOT || o->role == TUF_ROLE_TIMESTAMP) &&
	    o->canon_len > LISTING_KEEP_MAX) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "snapshot and timestamp metadata over 56 KiB "
		    "are not supported yet");
		return;
	}
	SHA256((const uint8_t *)o->canon, o->canon_len, o->sha);
	if (submit(o, load_work, loaded) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- CreateRepository and RotateRoot --------------------------------------------- */

/* The root metadata's signed part for cfg, at version, expiring at exp. */
static json_t *
root_signed(struct ota_call *o, const struct role_cfg cfg[4], int64_t version, time_t exp)
{
	json_t *sp, *keys, *roles, *keyids, *obj;
	const struct catalog_key *k;
	const struct catalog_version *v;
	char expires[32], keyid[TUF_KEYID_HEX_LEN + 1], kerr[128];
	struct tm tm;
	size_t i, j;

	gmtime_r(&exp, &tm);
	strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	keys = json_object();
	roles = json_object();
	sp = json_pack("{s:s, s:s, s:I, s:s, s:b, s:o, s:o}", "_type",
	    tuf_role_type(TUF_ROLE_ROOT, o->dialect), "spec_version",
	    OTA_SPEC_VERSION, "version", (json_int_t)version, "expires", expires,
	    "consistent_snapshot", 1, "keys", keys, "roles", roles);
	if (sp == NULL)
		return NULL;
	for (i = 0; i < 4; i++) {
		if ((keyids = json_array()) == NULL)
			goto fail;
		for (j = 0; j < cfg[i].nkeys; j++) {
			if ((v = role_key_version(o, &cfg[i].keys[j], &k)) == NULL ||
			    tuf_key_object(v->spki, v->spki_len, o->dialect, &obj, keyid, kerr,
			    sizeof(kerr)) != 0) {
				json_decref(keyids);
				goto fail;
			}
			if (json_object_set_new(keys, keyid, obj) != 0 ||
			    json_array_append_new(keyids, json_string(keyid)) != 0) {
				json_decref(keyids);
				goto fail;
			}
		}
		if (json_object_set_new(roles, top_roles[i], json_pack("{s:o, s:I}", "keyids", keyids,
		    "threshold", (json_int_t)cfg[i].threshold)) != 0)
			goto fail;
	}
	return sp;
fail:
	json_decref(sp);
	return NULL;
}

/*
 * The request's RoleKeys into o->next, each key at its current version;
 * o->changed marks the roles given. 0, or answered (o freed) and -1.
 */
static int
role_keys_parse(struct ota_call *o, Boltseal__V1__RoleKeys *const *roles, size_t n)
{
	const struct catalog_key *k;
	enum tuf_role role;
	size_t i, j;
	int status = GRPC_STATUS_INVALID_ARGUMENT;

	for (i = 0; i < n; i++) {
		const Boltseal__V1__RoleKeys *rk = roles[i];
		struct role_cfg *rc;

		if (tuf_role_parse(rk->role, &role) != 0 || role == TUF_ROLE_DELEGATED ||
		    o->changed[role]++) {
			snprintf(o->err, sizeof(o->err), "roles: '%.64s' is not one of root, targets, "
			    "snapshot, timestamp, or is given twice", rk->role);
			goto fail;
		}
		/* RotateRoot: no key names keeps the role's keys (rotate_loaded checks the threshold) */
		if (rk->n_key_names == 0 && o->op == OP_ROTATE && rk->threshold >= 1 &&
		    rk->threshold <= OTA_KEYS_MAX) {
			o->next[role].threshold = rk->threshold;
			continue;
		}
		if (rk->n_key_names == 0 || rk->n_key_names > OTA_KEYS_MAX || rk->threshold < 1 ||
		    rk->threshold > rk->n_key_names) {
			snprintf(o->err, sizeof(o->err), "role %s: 1..%d keys and a threshold of 1..the "
			    "number of keys", rk->role, OTA_KEYS_MAX);
			goto fail;
		}
		rc = &o->next[role];
		for (j = 0; j < rk->n_key_names; j++) {
			k = catalog_find(o->svc->catalog, rk->key_names[j]);
			if (k == NULL || catalog_key_primary(k) == NULL) {
				snprintf(o->err, sizeof(o->err), "role %s: key '%.64s' not found", rk->role,
				    rk->key_names[j]);
				status = GRPC_STATUS_NOT_FOUND;
				goto fail;
			}
			for (size_t m = 0; m < j; m++)
				if (strcmp(rk->key_names[m], rk->key_names[j]) == 0) {
					snprintf(o->err, sizeof(o->err), "role %s: key '%.64s' given twice",
					    rk->role, rk->key_names[j]);
					goto fail;
				}
			snprintf(rc->keys[j].name, sizeof(rc->keys[j].name), "%s", k->name);
			rc->keys[j].version = catalog_key_primary(k)->version;
		}
		rc->nkeys = rk->n_key_names;
		rc->threshold = rk->threshold;
	}
	return 0;
fail:
	fail(o, status, o->err);
	return -1;
}

/*
 * The aktualizr dialect has no ECDSA key type or method that aktualizr
 * verifies: its repositories take Ed25519 keys only. 0, or answered and -1.
 */
static int
dialect_keys_check(struct ota_call *o)
{
	const struct catalog_key *k;

	if (o->dialect != TUF_CANON_AKTUALIZR)
		return 0;
	for (size_t r = 0; r < 4; r++)
		for (size_t i = 0; i < o->next[r].nkeys; i++) {
			k = catalog_find(o->svc->catalog, o->next[r].keys[i].name);
			if (k != NULL && k->alg != BS_ALG_ED25519) {
				snprintf(o->err, sizeof(o->err), "role %s: key '%s' is not Ed25519 (a "
				    "repository in the aktualizr dialect takes Ed25519 keys only)",
				    top_roles[r], k->name);
				fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->err);
				return -1;
			}
		}
	return 0;
}

/* A new root's lifetime from the request's days (0: the maximum); -1: answered. */
static int
root_life(struct ota_call *o, const struct ota_settings *st, uint32_t days, const char *field)
{
	o->life = days == 0 ? st->max_lifetime[TUF_ROLE_ROOT] : (int64_t)days * DAY;
	if (o->life > st->max_lifetime[TUF_ROLE_ROOT]) {
		snprintf(o->err, sizeof(o->err), "%s: at most %lld (ota.root_max_days)", field,
		    (long long)(st->max_lifetime[TUF_ROLE_ROOT] / DAY));
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, o->err);
		return -1;
	}
	return 0;
}

/* Root version o->version from o->next: signed part, canonical bytes, row; -1: answered. */
static int
root_prepare(struct ota_call *o)
{
	if ((o->signed_part = root_signed(o, o->next, o->version, time(NULL) + o->life)) == NULL) {
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->err[0] != '\0' ? o->err :
		    "cannot build the root metadata");
		return -1;
	}
	if ((o->cfg_json = cfg_encode(o->next, o->kind, o->dialect)) == NULL ||
	    tuf_json_canonical(o->signed_part, o->dialect, &o->canon, &o->canon_len) != 0) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return -1;
	}
	SHA256((const uint8_t *)o->canon, o->canon_len, o->sha);
	return 0;
}

static void
create_repository(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__CreateRepositoryRequest *r =
	    (const Boltseal__V1__CreateRepositoryRequest *)msg;
	const struct ota_settings *st = rpc_call_service_state(call);
	struct ota_call *o;
	size_t i;

	if ((o = ota_call_start(call, r->name, "name")) == NULL)
		return;
	o->op = OP_CREATE;
	o->role = TUF_ROLE_ROOT;
	snprintf(o->role_name, sizeof(o->role_name), "root");
	o->version = 1;
	if (r->kind != BOLTSEAL__V1__REPOSITORY_KIND__TUF &&
	    r->kind != BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_IMAGE &&
	    r->kind != BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_DIRECTOR) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "kind: TUF, UPTANE_IMAGE or UPTANE_DIRECTOR");
		return;
	}
	o->kind = r->kind == BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_IMAGE ? KIND_IMAGE :
	    r->kind == BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_DIRECTOR ? KIND_DIRECTOR : KIND_TUF;
	if (r->dialect != BOLTSEAL__V1__METADATA_DIALECT__TUF_STANDARD &&
	    r->dialect != BOLTSEAL__V1__METADATA_DIALECT__AKTUALIZR) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "dialect: TUF_STANDARD or AKTUALIZR");
		return;
	}
	o->dialect = r->dialect == BOLTSEAL__V1__METADATA_DIALECT__AKTUALIZR ? TUF_CANON_AKTUALIZR :
	    TUF_CANON_OLPC;
	audit_names(o);
	audit_version(o);
	/* before any key is looked up: no oracle of key names for the unauthorised */
	if (!ota_authorize(o, "root"))
		return;
	if (role_keys_parse(o, r->roles, r->n_roles) != 0 || dialect_keys_check(o) != 0)
		return;
	for (i = 0; i < 4; i++) {
		if (!o->changed[i]) {
			snprintf(o->err, sizeof(o->err), "roles: %s is missing (all four top-level roles "
			    "are needed)", top_roles[i]);
			fail(o, GRPC_STATUS_INVALID_ARGUMENT, o->err);
			return;
		}
	}
	if (root_life(o, st, r->root_expires_days, "root_expires_days") != 0 ||
	    root_prepare(o) != 0)
		return;
	if (ota_mark_id(o->repo, "root", NULL, o->mark_id) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "bad repository name");
		return;
	}
	if (submit(o, load_work, create_checked) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/*
 * RotateRoot and SetDelegation, on the loop once the repository is read:
 * 0 to go on, or answered (o freed) and -1 — a key of the request serves
 * another repository (stored() says so), the store failed, or there is no
 * such repository.
 */
static int
changes_loaded(struct ota_call *o)
{
	char msg[160];

	if (o->rc == BS_ERR_EXISTS) {
		stored(&o->job);
		return -1;
	}
	if (o->rc != 0) {
		fail(o, GRPC_STATUS_UNAVAILABLE, "cannot read the repository state");
		return -1;
	}
	if (o->repo_missing || (o->op == OP_ROTATE && !o->mark.hw.present)) {
		snprintf(msg, sizeof(msg), "repository '%s' not found", o->repo);
		fail(o, GRPC_STATUS_NOT_FOUND, msg);
		return -1;
	}
	return 0;
}

/*
 * Loop, the repository read: root N+1 from the stored configuration with
 * the request's changes, signed by version N's root keys that can still
 * sign (at least its threshold: TUF clients check the new root against the
 * old one's keys and threshold) and by the new root keys.
 */
static void
rotate_loaded(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;
	const struct role_cfg *old = &o->cfg[TUF_ROLE_ROOT], *neu;
	const struct catalog_key *k;
	size_t i, j, usable = 0;
	char msg[400];

	if (changes_loaded(o) != 0)
		return;
	if (o->version != 0 && o->version != o->mark.hw.version + 1) {
		snprintf(msg, sizeof(msg), "root version %lld is the current one: the next is %lld, "
		    "not %lld", (long long)o->mark.hw.version, (long long)o->mark.hw.version + 1,
		    (long long)o->version);
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	o->version = o->mark.hw.version + 1;
	audit_version(o);
	o->dialect = o->repo_dialect;
	for (i = 0; i < 4; i++) {
		if (o->changed[i] && o->next[i].nkeys == 0) {
			/* the threshold only: the keys stay, at the versions recorded */
			unsigned th = o->next[i].threshold;

			if (th > o->cfg[i].nkeys) {
				snprintf(msg, sizeof(msg), "role %s: threshold %u is more than its %zu keys",
				    top_roles[i], th, o->cfg[i].nkeys);
				fail(o, GRPC_STATUS_INVALID_ARGUMENT, msg);
				return;
			}
			o->next[i] = o->cfg[i];
			o->next[i].threshold = th;
		} else if (!o->changed[i]) {
			o->next[i] = o->cfg[i];
		}
	}
	if (dialect_keys_check(o) != 0)
		return;
	for (i = 0; i < old->nkeys; i++)
		if (role_key_version(o, &old->keys[i], &k) != NULL)
			o->signers[o->nsigners++] = old->keys[i];
	if (o->nsigners < old->threshold) {
		snprintf(msg, sizeof(msg), "only %zu of root version %lld's keys can sign, and its "
		    "threshold is %u (%s)", o->nsigners, (long long)o->mark.hw.version,
		    old->threshold, o->err);
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	usable = o->nsigners;
	neu = &o->next[TUF_ROLE_ROOT];
	for (i = 0; i < neu->nkeys; i++) {
		for (j = 0; j < usable; j++)
			if (strcmp(o->signers[j].name, neu->keys[i].name) == 0 &&
			    o->signers[j].version == neu->keys[i].version)
				break;
		if (j == usable)
			o->signers[o->nsigners++] = neu->keys[i];
	}
	o->err[0] = '\0';
	if (root_prepare(o) != 0)
		return;
	sign_all(o);
}

static void
rotate_root(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RotateRootRequest *r = (const Boltseal__V1__RotateRootRequest *)msg;
	const struct ota_settings *st = rpc_call_service_state(call);
	struct ota_call *o;

	if ((o = ota_call_start(call, r->repository, "repository")) == NULL)
		return;
	o->op = OP_ROTATE;
	o->role = TUF_ROLE_ROOT;
	snprintf(o->role_name, sizeof(o->role_name), "root");
	o->version = (int64_t)(r->version > INT64_MAX ? 0 : r->version);
	if (r->version > (uint64_t)INT64_MAX) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "version: out of range");
		return;
	}
	audit_names(o);
	if (!ota_authorize(o, "root"))
		return;
	if (role_keys_parse(o, r->roles, r->n_roles) != 0 ||
	    root_life(o, st, r->expires_days, "expires_days") != 0)
		return;
	if (ota_mark_id(o->repo, "root", NULL, o->mark_id) != 0) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "bad repository name");
		return;
	}
	if (submit(o, load_work, rotate_loaded) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- GetRepository ----------------------------------------------------------------- */

/* Worker: the configuration, the four marks, every root file. */
static void
get_work(struct workq_job *job, void *ctx)
{
	struct ota_call *o = (struct ota_call *)job;
	struct store_txn *tx = NULL;
	char id[OTA_MARK_ID_MAX + 1];
	uint64_t rowv;
	int64_t v, n;

	(void)ctx;
	if ((o->rc = store_begin(o->svc->store, &tx)) != 0)
		return;
	o->rc = cfg_load(tx, o);
	if (o->rc == 0 && !o->repo_missing && o->vehicle[0] != '\0' && o->kind != KIND_DIRECTOR) {
		snprintf(o->err, sizeof(o->err), "vehicle_id: only for Uptane Director repositories "
		    "('%s' is of kind %s)", o->repo, kind_names[o->kind]);
		o->rc = BS_ERR_INVALID;
	}
	for (size_t i = 0; i < 4 && o->rc == 0 && !o->repo_missing; i++) {
		o->rc = ota_mark_id(o->repo, top_roles[i], i == TUF_ROLE_ROOT || o->vehicle[0] == '\0' ?
		    NULL : o->vehicle, id);
		if (o->rc == 0)
			o->rc = ota_mark_get(tx, id, &o->marks[i]);
	}
	if (o->rc == 0 && !o->repo_missing)
		o->rc = deleg_load(tx, o);
	if (o->rc == 0 && !o->repo_missing && json_array_size(o->delegs) > 0) {
		const json_t *e;
		size_t i;

		if ((o->deleg_marks = calloc(json_array_size(o->delegs),
		    sizeof(*o->deleg_marks))) == NULL)
			o->rc = BS_ERR_NOMEM;
		json_array_foreach(o->delegs, i, e) {
			if (o->rc != 0)
				break;
			o->rc = ota_mark_id(o->repo, json_string_value(json_object_get(e, "name")), NULL,
			    id);
			if (o->rc == 0)
				o->rc = ota_mark_get(tx, id, &o->deleg_marks[i]);
		}
	}
	n = o->rc == 0 && !o->repo_missing ? o->marks[TUF_ROLE_ROOT].hw.version : 0;
	if (n > 0) {
		o->roots = calloc((size_t)n, sizeof(*o->roots));
		o->root_lens = calloc((size_t)n, sizeof(*o->root_lens));
		if (o->roots == NULL || o->root_lens == NULL)
			o->rc = BS_ERR_NOMEM;
	}
	for (v = 1; v <= n && o->rc == 0; v++) {
		root_row_id(o->repo, v, id);
		o->rc = store_row_get(tx, OTA_STORE_NS, id, &o->roots[v - 1], &o->root_lens[v - 1],
		    &rowv);
		/* a repository made before root files had rows: its only root is in the mark */
		if (o->rc == BS_ERR_NOT_FOUND && v == n && o->marks[TUF_ROLE_ROOT].metadata != NULL) {
			o->root_lens[v - 1] = o->marks[TUF_ROLE_ROOT].metadata_len;
			o->roots[v - 1] = malloc(o->root_lens[v - 1]);
			o->rc = o->roots[v - 1] == NULL ? BS_ERR_NOMEM : 0;
			if (o->rc == 0)
				memcpy(o->roots[v - 1], o->marks[TUF_ROLE_ROOT].metadata,
				    o->root_lens[v - 1]);
		}
		if (o->rc == 0)
			o->nroots++;
	}
	store_rollback(tx);
}

/* One role of GetRepository's answer and the storage its fields point into. */
struct got_role {
	Boltseal__V1__RoleState rs;
	struct role_cfg rc;
	char names[OTA_KEYS_MAX][CATALOG_NAME_MAX + 16];
	char *ptrs[OTA_KEYS_MAX];
};

static void
got_role_fill(struct got_role *g, const char *role, const struct ota_mark *m)
{
	boltseal__v1__role_state__init(&g->rs);
	g->rs.role = (char *)role;
	for (size_t j = 0; j < g->rc.nkeys; j++) {
		snprintf(g->names[j], sizeof(g->names[j]), "%s@%u", g->rc.keys[j].name,
		    (unsigned)g->rc.keys[j].version);
		g->ptrs[j] = g->names[j];
	}
	g->rs.key_names = g->ptrs;
	g->rs.n_key_names = g->rc.nkeys;
	g->rs.threshold = g->rc.threshold;
	g->rs.version = m->hw.present ? (uint64_t)m->hw.version : 0;
	g->rs.metadata.data = m->metadata;
	g->rs.metadata.len = m->metadata != NULL ? m->metadata_len : 0;
}

static void
got(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;
	Boltseal__V1__GetRepositoryResponse r = BOLTSEAL__V1__GET_REPOSITORY_RESPONSE__INIT;
	size_t nd = o->delegs != NULL ? json_array_size(o->delegs) : 0, i;
	ProtobufCBinaryData *roots = calloc(o->nroots + 1, sizeof(*roots));
	struct got_role *g = calloc(4 + nd, sizeof(*g));
	Boltseal__V1__RoleState **rsp = calloc(4 + nd, sizeof(*rsp));
	json_t *obj = NULL;
	char msg[160];

	if ((roots == NULL || g == NULL || rsp == NULL) && o->rc == 0)
		o->rc = BS_ERR_NOMEM;
	for (i = 0; i < nd && o->rc == 0; i++)
		o->rc = role_cfg_decode(json_array_get(o->delegs, i), &g[4 + i].rc);
	if (o->rc == 0 && nd > 0) {
		o->dialect = o->repo_dialect;
		if ((obj = deleg_object(o)) == NULL) {
			/* a delegated role's key can no longer be used (o->err says which) */
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->err[0] != '\0' ? o->err :
			    "cannot build the delegations");
			goto out;
		}
		if ((o->deleg_obj = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
			o->rc = BS_ERR_NOMEM;
		json_decref(obj);
	}
	if (o->rc == BS_ERR_INVALID && o->err[0] != '\0') {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, o->err);
		goto out;
	}
	if (o->rc != 0 || o->repo_missing) {
		snprintf(msg, sizeof(msg), "repository '%s' not found", o->repo);
		if (o->rc != 0)
			bs_log(BS_LOG_ERROR, "cannot read OTA state", "repository", o->repo, "error",
			    bs_strerror(o->rc), NULL);
		fail(o, o->rc != 0 ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_NOT_FOUND,
		    o->rc != 0 ? "cannot read the repository state" : msg);
		goto out;
	}
	for (i = 0; i < 4 + nd; i++) {
		if (i < 4) {
			g[i].rc = o->cfg[i];
			got_role_fill(&g[i], top_roles[i], &o->marks[i]);
		} else {
			got_role_fill(&g[i], json_string_value(json_object_get(json_array_get(o->delegs,
			    i - 4), "name")), &o->deleg_marks[i - 4]);
		}
		rsp[i] = &g[i].rs;
	}
	for (i = 0; i < o->nroots; i++) {
		roots[i].data = o->roots[i];
		roots[i].len = o->root_lens[i];
	}
	r.name = o->repo;
	r.roles = rsp;
	r.n_roles = 4;
	r.delegated = rsp + 4;
	r.n_delegated = nd;
	if (o->deleg_obj != NULL) {
		r.delegations.data = (uint8_t *)o->deleg_obj;
		r.delegations.len = strlen(o->deleg_obj);
	}
	r.roots = roots;
	r.n_roots = o->nroots;
	r.dialect = o->repo_dialect == TUF_CANON_AKTUALIZR ?
	    BOLTSEAL__V1__METADATA_DIALECT__AKTUALIZR : BOLTSEAL__V1__METADATA_DIALECT__TUF_STANDARD;
	r.kind = o->kind == KIND_IMAGE ? BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_IMAGE :
	    o->kind == KIND_DIRECTOR ? BOLTSEAL__V1__REPOSITORY_KIND__UPTANE_DIRECTOR :
	    BOLTSEAL__V1__REPOSITORY_KIND__TUF;
	rpc_call_finish_pb(o->call, &r.base);
	ota_call_free(o);
out:
	free(roots);
	free(g);
	free(rsp);
}

static void
get_repository(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetRepositoryRequest *r = (const Boltseal__V1__GetRepositoryRequest *)msg;
	struct ota_call *o;

	if ((o = ota_call_start(call, r->name, "name")) == NULL)
		return;
	o->op = OP_GET;
	(void)!rpc_call_audit_field(o->call, "ota.repository", o->repo);
	if (vehicle_set(o, r->vehicle_id) != 0)
		return;
	if (!ota_authorize(o, NULL))
		return;
	if (submit(o, get_work, got) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- SetDelegation ------------------------------------------------------------------ */

/*
 * Loop, the repository read: the role replaces the one of its name or is
 * appended; the new "delegations" object is built (every key must still
 * be usable) before anything is stored.
 */
static void
deleg_loaded(struct workq_job *job)
{
	struct ota_call *o = (struct ota_call *)job;
	const struct catalog_key *k;
	json_t *obj;
	ssize_t at;
	char msg[400];
	int rc;

	if (changes_loaded(o) != 0)
		return;
	if (o->kind == KIND_DIRECTOR) {
		fail(o, GRPC_STATUS_FAILED_PRECONDITION, "an Uptane Director does not delegate");
		return;
	}
	o->dialect = o->repo_dialect;
	for (size_t i = 0; i < o->deleg.nkeys; i++) {
		if (role_key_version(o, &o->deleg.keys[i], &k) == NULL) {
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, o->err);
			return;
		}
		if (o->dialect == TUF_CANON_AKTUALIZR && k->alg != BS_ALG_ED25519) {
			snprintf(msg, sizeof(msg), "key '%s' is not Ed25519 (a repository in the "
			    "aktualizr dialect takes Ed25519 keys only)", k->name);
			fail(o, GRPC_STATUS_FAILED_PRECONDITION, msg);
			return;
		}
	}
	at = deleg_find(o->delegs, o->role_name);
	if (at < 0 && json_array_size(o->delegs) >= DELEG_MAX) {
		snprintf(msg, sizeof(msg), "repository '%s' has %d delegated roles, the most it may "
		    "have", o->repo, DELEG_MAX);
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return;
	}
	rc = at < 0 ? json_array_append(o->delegs, o->deleg_entry) :
	    json_array_set(o->delegs, (size_t)at, o->deleg_entry);
	if (rc == 0 && (o->cfg_json = json_dumps(o->delegs, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		rc = -1;
	if (rc == 0 && strlen(o->cfg_json) > STORE_DATA_MAX) {
		snprintf(msg, sizeof(msg), "repository '%s': its delegated roles would take more than "
		    "%d bytes (fewer or shorter paths)", o->repo, STORE_DATA_MAX);
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return;
	}
	if (rc != 0 || (obj = deleg_object(o)) == NULL) {
		fail(o, rc != 0 ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_FAILED_PRECONDITION,
		    rc != 0 ? "out of memory" : o->err);
		return;
	}
	o->deleg_obj = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (o->deleg_obj == NULL) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (submit(o, store_work, stored) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

static void
set_delegation(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetDelegationRequest *r = (const Boltseal__V1__SetDelegationRequest *)msg;
	struct ota_call *o;
	json_t *paths;
	size_t i;

	if ((o = ota_call_start(call, r->repository, "repository")) == NULL)
		return;
	o->op = OP_DELEGATE;
	if (deleg_name_check(r->name) != 0 || tuf_role_parse(r->name, &o->role) != 0 ||
	    o->role != TUF_ROLE_DELEGATED) {
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, "name: 1..128 of [A-Za-z0-9._-], not a "
		    "top-level role's, no leading '.', no \"..\"");
		return;
	}
	snprintf(o->role_name, sizeof(o->role_name), "%s", r->name);
	audit_names(o);
	if (!ota_authorize(o, o->role_name))
		return;
	if (r->n_paths == 0 || r->n_paths > DELEG_PATHS_MAX) {
		snprintf(o->err, sizeof(o->err), "paths: 1..%d path patterns", DELEG_PATHS_MAX);
		fail(o, GRPC_STATUS_INVALID_ARGUMENT, o->err);
		return;
	}
	if ((paths = json_array()) == NULL) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (i = 0; i < r->n_paths; i++) {
		if (r->paths[i][0] == '\0' || strlen(r->paths[i]) > 255 ||
		    json_array_append_new(paths, json_string(r->paths[i])) != 0) {
			json_decref(paths);
			fail(o, GRPC_STATUS_INVALID_ARGUMENT, "paths: each 1..255 bytes of UTF-8");
			return;
		}
	}
	{
		Boltseal__V1__RoleKeys rk = BOLTSEAL__V1__ROLE_KEYS__INIT, *rkp = &rk;

		rk.role = (char *)"targets";   /* parsed as a role's keys; stored in o->next[targets] */
		rk.key_names = r->key_names;
		rk.n_key_names = r->n_key_names;
		rk.threshold = r->threshold;
		if (role_keys_parse(o, &rkp, 1) != 0) {
			json_decref(paths);
			return;
		}
	}
	o->deleg = o->next[TUF_ROLE_TARGETS];
	o->deleg_entry = role_cfg_encode(&o->deleg);
	if (o->deleg_entry == NULL ||
	    json_object_set_new(o->deleg_entry, "name", json_string(o->role_name)) != 0 ||
	    json_object_set_new(o->deleg_entry, "paths", paths) != 0 ||
	    json_object_set_new(o->deleg_entry, "terminating", json_boolean(r->terminating)) != 0) {
		fail(o, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (submit(o, load_work, deleg_loaded) != 0)
		fail(o, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

static const struct rpc_method methods[] = {
	{ "CreateRepository", &boltseal__v1__create_repository_request__descriptor,
	    &boltseal__v1__create_repository_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    create_repository },
	{ "SignMetadata", &boltseal__v1__sign_metadata_request__descriptor,
	    &boltseal__v1__sign_metadata_response__descriptor, RPC_AUTHZ_POLICY, 0, sign_metadata },
	{ "RotateRoot", &boltseal__v1__rotate_root_request__descriptor,
	    &boltseal__v1__rotate_root_response__descriptor, RPC_AUTHZ_POLICY, 0, rotate_root },
	{ "GetRepository", &boltseal__v1__get_repository_request__descriptor,
	    &boltseal__v1__get_repository_response__descriptor, RPC_AUTHZ_POLICY, 0, get_repository },
	{ "SetDelegation", &boltseal__v1__set_delegation_request__descriptor,
	    &boltseal__v1__set_delegation_response__descriptor, RPC_AUTHZ_POLICY, 0, set_delegation },
};

const struct rpc_service ota_service = {
	.name = "boltseal.v1.OtaService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "ota",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = ota_init,
	.fini = ota_fini,
};
