/*
 * checkpoints.c - boltseal.v1.CheckpointService: transparency-log
 * checkpoints (C2SP tlog-checkpoint) signed as C2SP signed notes with an
 * HSM Ed25519 key of purpose checkpoint, only when the log stayed
 * append-only (docs/checkpoints.md).
 *
 * A log is a store row (namespace "checkpoints", id "log/" + hex SHA-256 of
 * its origin): origin, key, and the last signed checkpoint (size, root,
 * note). SignCheckpoint, in steps:
 *   1. loop: the request's form (origin, 32-byte root, extension lines,
 *      at most 64 proof hashes);
 *   2. work queue: the log's row, from a store snapshot;
 *   3. loop: the policy on the log's key with request.origin; the key an
 *      enabled Ed25519 key of purpose checkpoint; then the history: a
 *      smaller size, the same size with another root, or a consistency
 *      proof (RFC 9162 2.1.4.2) from the stored checkpoint that does not
 *      verify is refused (FAILED_PRECONDITION, audited as a possible split
 *      view with both roots); the same checkpoint again is answered with
 *      the stored note;
 *   4. key door: Ed25519 over the checkpoint body; loop: the note;
 *   5. work queue: the new state written by compare-and-set on the row's
 *      version read in 2 (another checkpoint stored meanwhile: ABORTED, the
 *      note is dropped), committed before the answer.
 * CosignCheckpoint is the same for a log registered with its own verifier
 * key (this service its witness, C2SP tlog-witness): the log's note is
 * opened with that key and its body parsed in 3, and the signature in 4 is
 * a C2SP tlog-cosignature/v1 over "cosignature/v1\ntime T\n" and the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "audit/checkpoint.h"
#include "boltseal/v1/checkpoints.pb-c.h"
#include "common/b64.h"
#include "common/hex.h"
#include "exec/workq.h"
#include "formats/merkle.h"
#include "formats/signed_note.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/services.h"
#include "store/store.h"

#define CKPT_NS "checkpoints"
#define EXT_LINES_MAX 16
#define EXT_LINE_MAX 256
#define BODY_MAX (CHECKPOINT_BODY_MAX + EXT_LINES_MAX * (EXT_LINE_MAX + 1))
#define NOTE_MAX (BODY_MAX + 1 + NOTE_SIG_LINE_MAX)
#define ROW_ID_LEN (4 + BS_HEX_LEN(32))

enum op { OP_REGISTER, OP_SIGN, OP_STATUS, OP_COSIGN };

#define COSIG_NOTE_MAX 16384          /* a witnessed log's note */

/* One call in flight. job first: the work queue hands it back. */
struct lcall {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	enum op op;
	char origin[NOTE_NAME_MAX + 1];
	char row[ROW_ID_LEN + 1];
	char key[CATALOG_NAME_MAX + 1];
	int64_t now;
	/* SignCheckpoint */
	uint64_t size;
	uint8_t root[MERKLE_HASH_LEN];
	char *ext;                    /* the extension lines, each ending "\n" */
	size_t ext_len;
	uint8_t (*proof)[MERKLE_HASH_LEN];
	size_t nproof;
	/* the row read (or written) */
	json_t *rec;
	uint64_t rowv;
	uint64_t old_size;            /* 0: nothing signed yet */
	uint8_t old_root[MERKLE_HASH_LEN];
	/* a witnessed log: its verifier key, this witness's name, the note it sent */
	int witness;
	char log_vkey[NOTE_VKEY_PARSE_MAX + 1];
	char witness_name[NOTE_NAME_MAX + 1];
	uint8_t *msg;
	size_t msg_len;
	uint64_t ts;                  /* the cosignature's time */
	char cosig[NOTE_COSIG_LINE_MAX];
	/* the key and the note */
	uint32_t key_version;
	uint8_t key_id[NOTE_KEY_ID_LEN];
	char vkey[NOTE_VKEY_MAX + 1];
	char body[BODY_MAX + 1];
	size_t body_len;
	uint8_t *note;
	size_t note_len;
	int rc;
};

static void
lcall_free(struct lcall *l)
{
	free(l->ext);
	free(l->proof);
	json_decref(l->rec);
	free(l->note);
	free(l->msg);
	free(l);
}

static void
fail(struct lcall *l, int status, const char *msg)
{
	rpc_call_fail(l->call, status, "%s", msg);
	lcall_free(l);
}

static int
submit(struct lcall *l, void (*work)(struct workq_job *, void *), void (*done)(struct workq_job *))
{
	l->job.work = work;
	l->job.done = done;
	return workq_submit(l->svc->work, &l->job);
}

/* "log/" + hex SHA-256 of the origin: any origin, a row id of fixed form. */
static void
row_of(const char *origin, char out[ROW_ID_LEN + 1])
{
	uint8_t h[32];

	SHA256((const uint8_t *)origin, strlen(origin), h);
	memcpy(out, "log/", 4);
	bs_hex_encode(h, sizeof(h), out + 4);
}

/* A new call for origin, or NULL (answered). */
static struct lcall *
lcall_start(struct rpc_call *call, enum op op, const char *origin)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct lcall *l;

	if (svc->store == NULL || svc->work == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "checkpoint service not started");
		return NULL;
	}
	if (!note_name_valid(origin)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "origin: 1..%d bytes of UTF-8, no "
		    "spaces, '+' or control characters (a C2SP signed-note key name)", NOTE_NAME_MAX);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	l->call = call;
	l->svc = svc;
	l->op = op;
	l->now = (int64_t)time(NULL);
	snprintf(l->origin, sizeof(l->origin), "%s", origin);
	row_of(origin, l->row);
	rpc_call_audit_target(call, origin);
	(void)!rpc_call_audit_field(call, "checkpoint.origin", origin);
	return l;
}

/* ---- the stored log ---------------------------------------------------------------- */

/* l->rec's signed state into old_size/old_root. 0, or -1 for a row this module did not write. */
static int
read_state(struct lcall *l)
{
	const char *key = json_string_value(json_object_get(l->rec, "key"));
	const char *root = json_string_value(json_object_get(l->rec, "root"));
	json_t *size = json_object_get(l->rec, "size");

	if (key == NULL || !catalog_name_valid(key) || root == NULL || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		return -1;
	snprintf(l->key, sizeof(l->key), "%s", key);
	l->witness = json_is_string(json_object_get(l->rec, "log_vkey"));
	if (l->witness) {
		const char *wn = json_string_value(json_object_get(l->rec, "witness_name"));

		if (wn == NULL || !note_name_valid(wn))
			return -1;
		snprintf(l->log_vkey, sizeof(l->log_vkey), "%s",
		    json_string_value(json_object_get(l->rec, "log_vkey")));
		snprintf(l->witness_name, sizeof(l->witness_name), "%s", wn);
	}
	l->old_size = (uint64_t)json_integer_value(size);
	if (l->old_size == 0)
		return root[0] == '\0' ? 0 : -1;
	return bs_hex_decode(root, strlen(root), l->old_root, sizeof(l->old_root), 0) == 0 ? 0 : -1;
}

static void
read_work(struct workq_job *job, void *ctx)
{
	struct lcall *l = (struct lcall *)job;
	struct store_txn *tx = NULL;
	uint8_t *data = NULL;
	size_t len = 0;

	(void)ctx;
	if ((l->rc = store_begin_read(l->svc->store, &tx)) != 0)
		return;
	l->rc = store_row_get(tx, CKPT_NS, l->row, &data, &len, &l->rowv);
	store_rollback(tx);
	if (l->rc != 0)
		return;
	l->rec = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	free(data);
	if (l->rec == NULL || read_state(l) != 0)
		l->rc = BS_ERR_INVALID;
}

/*
 * The key of the log as the policy sees it, then the key itself: an
 * enabled Ed25519 key of purpose checkpoint, its key id and vkey under the
 * origin. 0, or the call is answered.
 */
static int
check_key(struct lcall *l, const struct catalog_key *k)
{
	const struct catalog_version *v;
	uint8_t pub[32];
	char msg[300];

	if (k == NULL) {
		snprintf(msg, sizeof(msg), "key '%s' not found", l->key);
		fail(l, GRPC_STATUS_NOT_FOUND, msg);
		return -1;
	}
	if (k->purpose != BS_PURPOSE_CHECKPOINT || k->alg != BS_ALG_ED25519 ||
	    (v = catalog_key_primary(k)) == NULL || !catalog_version_usable(k, v) ||
	    checkpoint_ed25519_raw(v->spki, v->spki_len, pub) != 0 ||
	    (l->witness ? note_cosig_key_id(l->witness_name, pub, l->key_id) != 0 ||
	    note_cosig_vkey_format(l->witness_name, pub, l->vkey, sizeof(l->vkey)) != 0 :
	    note_key_id_ed25519(l->origin, pub, l->key_id) != 0 ||
	    note_vkey_format(l->origin, pub, l->vkey, sizeof(l->vkey)) != 0)) {
		snprintf(msg, sizeof(msg), "key '%s' is not an enabled Ed25519 key of purpose "
		    "checkpoint", l->key);
		fail(l, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return -1;
	}
	l->key_version = v->version;
	return 0;
}

/* The LogStatus of l (its row as read or written). */
static void
answer_status(struct lcall *l)
{
	Boltseal__V1__LogStatus r = BOLTSEAL__V1__LOG_STATUS__INIT;
	const char *note = json_string_value(json_object_get(l->rec, "note"));
	uint8_t *raw = NULL;
	size_t n = 0;

	if (note != NULL && note[0] != '\0') {
		if ((raw = malloc(strlen(note))) == NULL ||
		    bs_b64_decode(note, strlen(note), 0, raw, strlen(note), &n) != 0) {
			free(raw);
			fail(l, GRPC_STATUS_INTERNAL, "the log's stored note cannot be read");
			return;
		}
	}
	r.origin = l->origin;
	r.key_name = l->key;
	r.verifier_key = l->vkey;
	r.size = l->old_size;
	if (l->old_size > 0) {
		r.root_hash.data = l->old_root;
		r.root_hash.len = sizeof(l->old_root);
	}
	r.note.data = raw;
	r.note.len = n;
	if (l->witness) {
		r.log_verifier_key = l->log_vkey;
		r.witness_name = l->witness_name;
	}
	r.registered_at = (int64_t)json_integer_value(json_object_get(l->rec, "registered_at"));
	r.updated_at = (int64_t)json_integer_value(json_object_get(l->rec, "updated_at"));
	rpc_call_finish_pb(l->call, &r.base);
	free(raw);
	lcall_free(l);
}

/* ---- RegisterLog ---------------------------------------------------------------------- */

static void
register_work(struct workq_job *job, void *ctx)
{
	struct lcall *l = (struct lcall *)job;
	struct store_txn *tx = NULL;
	char *text;

	(void)ctx;
	if ((text = json_dumps(l->rec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		l->rc = BS_ERR_NOMEM;
		return;
	}
	if ((l->rc = store_begin(l->svc->store, &tx)) == 0) {
		l->rc = store_row_put(tx, CKPT_NS, l->row, 0, (const uint8_t *)text, strlen(text),
		    &l->rowv);
		if (l->rc == 0)
			l->rc = store_commit(tx);
		else
			store_rollback(tx);
	}
	free(text);
}

static void
register_done(struct workq_job *job)
{
	struct lcall *l = (struct lcall *)job;
	char msg[400];

	if (l->rc == BS_ERR_EXISTS) {
		snprintf(msg, sizeof(msg), "log '%s' is already registered", l->origin);
		fail(l, GRPC_STATUS_ALREADY_EXISTS, msg);
		return;
	}
	if (l->rc != 0) {
		fail(l, GRPC_STATUS_UNAVAILABLE, "cannot store the log");
		return;
	}
	answer_status(l);
}

static void
register_log(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RegisterLogRequest *r = (const Boltseal__V1__RegisterLogRequest *)msg;
	const struct catalog_key *k;
	struct policy_attr attr;
	struct lcall *l;

	if ((l = lcall_start(call, OP_REGISTER, r->origin)) == NULL)
		return;
	if (!catalog_name_valid(r->key_name)) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "key_name: not a key name");
		return;
	}
	snprintf(l->key, sizeof(l->key), "%s", r->key_name);
	if (r->log_verifier_key[0] != '\0' || r->witness_name[0] != '\0') {
		struct note_verifier nv;

		if (strlen(r->log_verifier_key) > NOTE_VKEY_PARSE_MAX ||
		    note_vkey_parse(r->log_verifier_key, &nv) != 0) {
			fail(l, GRPC_STATUS_INVALID_ARGUMENT, "log_verifier_key: not an Ed25519 note "
			    "verifier key (<name>+<key id>+<base64>)");
			return;
		}
		if (!note_name_valid(r->witness_name)) {
			fail(l, GRPC_STATUS_INVALID_ARGUMENT, "witness_name: required with "
			    "log_verifier_key, a C2SP key name");
			return;
		}
		l->witness = 1;
		snprintf(l->log_vkey, sizeof(l->log_vkey), "%s", r->log_verifier_key);
		snprintf(l->witness_name, sizeof(l->witness_name), "%s", r->witness_name);
	}
	k = catalog_find(l->svc->catalog, l->key);
	attr = (struct policy_attr){ "request.origin", l->origin };
	if (!rpc_call_authorize(call, l->key, k != NULL ? bs_purpose_name(k->purpose) : NULL, &attr,
	    1)) {
		lcall_free(l);
		return;
	}
	if (check_key(l, k) != 0)
		return;
	rpc_call_audit_key(call, l->key, l->key_version);
	if ((l->rec = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "origin", l->origin, "key",
	    l->key, "registered_at", (json_int_t)l->now, "updated_at", (json_int_t)l->now, "size",
	    (json_int_t)0, "root", "", "note", "")) == NULL) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (l->witness && (json_object_set_new(l->rec, "log_vkey", json_string(l->log_vkey)) != 0 ||
	    json_object_set_new(l->rec, "witness_name", json_string(l->witness_name)) != 0)) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (submit(l, register_work, register_done) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- SignCheckpoint ------------------------------------------------------------------- */

static void
store_work(struct workq_job *job, void *ctx)
{
	struct lcall *l = (struct lcall *)job;
	struct store_txn *tx = NULL;
	char hx[BS_HEX_LEN(32)], *b64 = NULL, *text = NULL;

	(void)ctx;
	bs_hex_encode(l->root, sizeof(l->root), hx);
	if ((b64 = malloc(BS_B64_ENCODED_LEN(l->note_len) + 1)) == NULL) {
		l->rc = BS_ERR_NOMEM;
		return;
	}
	(void)bs_b64_encode(l->note, l->note_len, b64);
	if (json_object_set_new(l->rec, "size", json_integer((json_int_t)l->size)) != 0 ||
	    json_object_set_new(l->rec, "root", json_string(hx)) != 0 ||
	    json_object_set_new(l->rec, "note", json_string(b64)) != 0 ||
	    json_object_set_new(l->rec, "updated_at", json_integer((json_int_t)l->now)) != 0 ||
	    (l->op == OP_COSIGN ? json_object_set_new(l->rec, "cosig", json_string(l->cosig)) != 0 ||
	    json_object_set_new(l->rec, "cosig_time", json_integer((json_int_t)l->ts)) != 0 : 0) ||
	    (text = json_dumps(l->rec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		free(b64);
		l->rc = BS_ERR_NOMEM;
		return;
	}
	/* compare-and-set on the version the history was judged against */
	if ((l->rc = store_begin(l->svc->store, &tx)) == 0) {
		l->rc = store_row_put(tx, CKPT_NS, l->row, l->rowv, (const uint8_t *)text,
		    strlen(text), NULL);
		if (l->rc == 0)
			l->rc = store_commit(tx);
		else
			store_rollback(tx);
	}
	free(b64);
	free(text);
}

static void
answer_note(struct lcall *l, const uint8_t *note, size_t len, uint64_t previous)
{
	Boltseal__V1__SignCheckpointResponse r = BOLTSEAL__V1__SIGN_CHECKPOINT_RESPONSE__INIT;

	r.note.data = (uint8_t *)(uintptr_t)note;
	r.note.len = len;
	r.size = l->size;
	r.root_hash.data = l->root;
	r.root_hash.len = sizeof(l->root);
	r.previous_size = previous;
	rpc_call_finish_pb(l->call, &r.base);
	lcall_free(l);
}

static void
answer_cosig(struct lcall *l, const char *line, uint64_t ts, uint64_t previous)
{
	Boltseal__V1__CosignCheckpointResponse r = BOLTSEAL__V1__COSIGN_CHECKPOINT_RESPONSE__INIT;

	r.cosignature = (char *)(uintptr_t)line;
	r.size = l->size;
	r.root_hash.data = l->root;
	r.root_hash.len = sizeof(l->root);
	r.previous_size = previous;
	r.timestamp = ts;
	rpc_call_finish_pb(l->call, &r.base);
	lcall_free(l);
}

static void
store_done(struct workq_job *job)
{
	struct lcall *l = (struct lcall *)job;

	if (l->rc == BS_ERR_PRECONDITION || l->rc == BS_ERR_NOT_FOUND) {
		/* the note just signed is dropped: it was never stored, so never given */
		fail(l, GRPC_STATUS_ABORTED, "another checkpoint of this log was stored meanwhile; "
		    "ask again with a proof from it");
		return;
	}
	if (l->rc != 0) {
		fail(l, GRPC_STATUS_UNAVAILABLE, "cannot store the checkpoint");
		return;
	}
	if (l->op == OP_COSIGN)
		answer_cosig(l, l->cosig, l->ts, l->old_size);
	else
		answer_note(l, l->note, l->note_len, l->old_size);
}

static void
signed_cb(void *arg, struct keyop_answer *a)
{
	struct lcall *l = arg;
	char line[NOTE_SIG_LINE_MAX];
	size_t n;
	int rc = a->rc;

	if (rc == 0 && (a->nsigs != 1 || a->sigs[0].rc != 0 ||
	    a->sigs[0].sig_len != NOTE_ED25519_SIG_LEN))
		rc = a->nsigs == 1 && a->sigs[0].rc != 0 ? a->sigs[0].rc : BS_ERR_HSM;
	svc_note_hsm_result(l->svc, rc);
	if (rc != 0) {
		fail(l, GRPC_STATUS_UNAVAILABLE, "the HSM could not sign");
		return;
	}
	if (rpc_call_audit_payload(l->call, a->sigs[0].payload_sha256) != 0) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (l->op == OP_COSIGN) {
		/* the cosignature line; the note kept is the log's with it added */
		if (note_cosig_line(l->witness_name, l->key_id, l->ts, a->sigs[0].sig, l->cosig,
		    sizeof(l->cosig)) != 0 || (l->note = malloc(l->msg_len + strlen(l->cosig))) ==
		    NULL) {
			fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		memcpy(l->note, l->msg, l->msg_len);
		memcpy(l->note + l->msg_len, l->cosig, strlen(l->cosig));
		l->note_len = l->msg_len + strlen(l->cosig);
	} else {
		if (note_signature_line(l->origin, l->key_id, a->sigs[0].sig, line, sizeof(line))
		    != 0) {
			fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		/* the note: the body, a blank line, the signature line */
		n = l->body_len + 1 + strlen(line);
		if ((l->note = malloc(n)) == NULL) {
			fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		memcpy(l->note, l->body, l->body_len);
		l->note[l->body_len] = '\n';
		memcpy(l->note + l->body_len + 1, line, strlen(line));
		l->note_len = n;
	}
	if (submit(l, store_work, store_done) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* A refusal that a split view would cause: audited with both checkpoints. */
static void
refuse_history(struct lcall *l, const char *why)
{
	char hx[BS_HEX_LEN(32)], sz[24];

	rpc_call_audit_event(l->call, "possible_split_view");
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)l->old_size);
	(void)!rpc_call_audit_field(l->call, "checkpoint.signed_size", sz);
	bs_hex_encode(l->old_root, sizeof(l->old_root), hx);
	(void)!rpc_call_audit_field(l->call, "checkpoint.signed_root", l->old_size > 0 ? hx : "");
	fail(l, GRPC_STATUS_FAILED_PRECONDITION, why);
}

/* The stored note of the same checkpoint, for a retry. */
static void
answer_stored(struct lcall *l)
{
	const char *note = json_string_value(json_object_get(l->rec, "note"));
	const char *cosig = json_string_value(json_object_get(l->rec, "cosig"));
	uint8_t *raw;
	size_t n = 0;

	if (l->op == OP_COSIGN) {
		if (cosig == NULL) {
			fail(l, GRPC_STATUS_INTERNAL, "the log's stored cosignature cannot be read");
			return;
		}
		snprintf(l->cosig, sizeof(l->cosig), "%s", cosig);
		answer_cosig(l, l->cosig, (uint64_t)json_integer_value(json_object_get(l->rec,
		    "cosig_time")), l->old_size);
		return;
	}

	if (note == NULL || (raw = malloc(strlen(note) + 1)) == NULL) {
		fail(l, GRPC_STATUS_INTERNAL, "the log's stored note cannot be read");
		return;
	}
	if (bs_b64_decode(note, strlen(note), 0, raw, strlen(note) + 1, &n) != 0) {
		free(raw);
		fail(l, GRPC_STATUS_INTERNAL, "the log's stored note cannot be read");
		return;
	}
	answer_note(l, raw, n, l->old_size);
	free(raw);
}

/* Ed25519 over data (copied by the key door) with the log's key; signed_cb goes on. */
static void
sign_bytes(struct lcall *l, const struct catalog_key *k, const uint8_t *data, size_t len)
{
	struct keyop_input in;
	struct keyop_request r;

	memset(&in, 0, sizeof(in));
	in.data = data;
	in.len = len;
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_SIGN;
	snprintf(r.key.name, sizeof(r.key.name), "%s", l->key);
	r.key.version = l->key_version;
	memcpy(r.id, catalog_key_primary(k)->hsm_id, KEYOPS_ID_LEN);
	r.alg = BS_ALG_ED25519;
	r.inputs = &in;
	r.ninputs = 1;
	if (l->svc->keys == NULL || keyclient_submit(l->svc->keys, &r, signed_cb, l, NULL) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/*
 * A witnessed log's note: opened with the log's verifier key (its
 * signature must verify), its body parsed, for the origin registered.
 * Sets size, root, body_len (the body is msg[0..body_len)). 0, or the call
 * is answered.
 */
static int
open_log_note(struct lcall *l)
{
	struct note_verifier nv;
	char origin[NOTE_NAME_MAX + 1], hx[BS_HEX_LEN(32)], sz[24];
	size_t text_len = 0;
	int rc;

	if (note_vkey_parse(l->log_vkey, &nv) != 0) {
		fail(l, GRPC_STATUS_INTERNAL, "the log's stored verifier key cannot be read");
		return -1;
	}
	if ((rc = note_open(l->msg, l->msg_len, &nv, 1, &text_len)) != 0) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, rc == BS_ERR_SIG_INVALID ? "note: the log's "
		    "signature does not verify" : "note: not a signed note with a signature by the "
		    "log's key");
		return -1;
	}
	if (checkpoint_body_parse(l->msg, text_len, origin, sizeof(origin), &l->size, l->root) != 0 ||
	    strcmp(origin, l->origin) != 0 || l->size == 0) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "note: not a checkpoint of this origin "
		    "(origin, size >= 1, base64 root)");
		return -1;
	}
	if (text_len > BODY_MAX) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "note: the checkpoint body is too long");
		return -1;
	}
	l->body_len = text_len;
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)l->size);
	bs_hex_encode(l->root, sizeof(l->root), hx);
	(void)!rpc_call_audit_field(l->call, "checkpoint.size", sz);
	(void)!rpc_call_audit_field(l->call, "checkpoint.root", hx);
	return 0;
}

static void
sign_read_done(struct workq_job *job)
{
	struct lcall *l = (struct lcall *)job;
	const struct catalog_key *k;
	struct policy_attr attr;
	char msg[400];
	size_t n;

	if (l->rc != 0 && l->rc != BS_ERR_NOT_FOUND) {
		fail(l, l->rc == BS_ERR_INVALID ? GRPC_STATUS_INTERNAL : GRPC_STATUS_UNAVAILABLE,
		    l->rc == BS_ERR_INVALID ? "the log's record cannot be read" :
		    "cannot read the logs");
		return;
	}
	/* the policy before anything is said of the log: no oracle for the unauthorised */
	k = l->rc == 0 ? catalog_find(l->svc->catalog, l->key) : NULL;
	attr = (struct policy_attr){ "request.origin", l->origin };
	if (!rpc_call_authorize(l->call, l->rc == 0 ? l->key : NULL, k != NULL ?
	    bs_purpose_name(k->purpose) : NULL, &attr, 1)) {
		lcall_free(l);
		return;
	}
	if (l->rc == BS_ERR_NOT_FOUND) {
		snprintf(msg, sizeof(msg), "log '%s' is not registered", l->origin);
		fail(l, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	if (check_key(l, k) != 0)
		return;
	rpc_call_audit_key(l->call, l->key, l->key_version);
	if (l->op == OP_STATUS) {
		answer_status(l);
		return;
	}
	if (l->witness != (l->op == OP_COSIGN)) {
		snprintf(msg, sizeof(msg), l->witness ? "log '%s' is witnessed: its checkpoints are "
		    "cosigned (CosignCheckpoint)" : "log '%s' is signed here: its checkpoints are "
		    "signed (SignCheckpoint)", l->origin);
		fail(l, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	if (l->op == OP_COSIGN && open_log_note(l) != 0)
		return;
	/* the history: only a proved extension of what was signed */
	switch (merkle_judge_history(l->old_size, l->old_root, l->size, l->root,
	    (const uint8_t (*)[MERKLE_HASH_LEN])l->proof, l->nproof)) {
	case MERKLE_HISTORY_FIRST:
	case MERKLE_HISTORY_EXTENDS:
		break;
	case MERKLE_HISTORY_SAME:
		answer_stored(l);
		return;
	case MERKLE_HISTORY_SMALLER:
		snprintf(msg, sizeof(msg), "size %llu is smaller than the last signed checkpoint's "
		    "(%llu): a log only grows", (unsigned long long)l->size,
		    (unsigned long long)l->old_size);
		refuse_history(l, msg);
		return;
	case MERKLE_HISTORY_FORK:
		snprintf(msg, sizeof(msg), "size %llu was signed with another root hash: "
		    "refusing a second history", (unsigned long long)l->size);
		refuse_history(l, msg);
		return;
	case MERKLE_HISTORY_UNPROVED:
	default:
		snprintf(msg, sizeof(msg), "the consistency proof does not prove that size %llu "
		    "extends the last signed checkpoint (size %llu)", (unsigned long long)l->size,
		    (unsigned long long)l->old_size);
		refuse_history(l, msg);
		return;
	}
	if (l->op == OP_COSIGN) {
		/* cosignature/v1 over the log's whole body (extension lines included) */
		uint8_t *m = NULL;
		size_t mlen = 0;

		l->ts = (uint64_t)l->now;
		if (note_cosig_message(l->msg, l->body_len, l->ts, &m, &mlen) != 0) {
			fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		sign_bytes(l, k, m, mlen);
		free(m);
		return;
	}
	/* the body: the checkpoint and its extension lines */
	if (checkpoint_body_format(l->origin, l->size, l->root, l->body, sizeof(l->body), &n) != 0 ||
	    n + l->ext_len > BODY_MAX) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "the checkpoint body is too long");
		return;
	}
	if (l->ext_len > 0)
		memcpy(l->body + n, l->ext, l->ext_len);
	l->body_len = n + l->ext_len;
	l->body[l->body_len] = '\0';
	sign_bytes(l, k, (const uint8_t *)l->body, l->body_len);
}

/* 1 if s is 1..EXT_LINE_MAX bytes without control characters. */
static int
ext_line_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > EXT_LINE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The request's consistency proof into l: 0, or the call is answered. */
static int
take_proof(struct lcall *l, const ProtobufCBinaryData *p, size_t n)
{
	if (n > MERKLE_MAX_PROOF) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "consistency_proof: at most 64 hashes");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (p[i].len != MERKLE_HASH_LEN) {
			fail(l, GRPC_STATUS_INVALID_ARGUMENT, "consistency_proof: each hash 32 bytes");
			return -1;
		}
	if (n > 0 && (l->proof = calloc(n, MERKLE_HASH_LEN)) == NULL) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		memcpy(l->proof[i], p[i].data, MERKLE_HASH_LEN);
	l->nproof = n;
	return 0;
}

static void
sign_checkpoint(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SignCheckpointRequest *r =
	    (const Boltseal__V1__SignCheckpointRequest *)msg;
	char hx[BS_HEX_LEN(32)], sz[24];
	struct lcall *l;
	size_t i, off = 0;

	if ((l = lcall_start(call, OP_SIGN, r->origin)) == NULL)
		return;
	if (r->root_hash.len != MERKLE_HASH_LEN) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "root_hash: 32 bytes (SHA-256)");
		return;
	}
	if (r->size == 0) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "size: at least 1 (an empty log has no "
		    "checkpoint to sign)");
		return;
	}
	if (take_proof(l, r->consistency_proof, r->n_consistency_proof) != 0)
		return;
	if (r->n_extensions > EXT_LINES_MAX) {
		fail(l, GRPC_STATUS_INVALID_ARGUMENT, "extensions: at most 16 lines");
		return;
	}
	for (i = 0; i < r->n_extensions; i++)
		if (!ext_line_ok(r->extensions[i])) {
			fail(l, GRPC_STATUS_INVALID_ARGUMENT, "extensions: each line 1..256 bytes "
			    "without control characters");
			return;
		}
	l->size = r->size;
	memcpy(l->root, r->root_hash.data, MERKLE_HASH_LEN);
	if (r->n_extensions > 0 && (l->ext = malloc(EXT_LINES_MAX * (EXT_LINE_MAX + 1))) == NULL) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (i = 0; i < r->n_extensions; i++) {
		size_t n = strlen(r->extensions[i]);

		memcpy(l->ext + off, r->extensions[i], n);
		l->ext[off + n] = '\n';
		off += n + 1;
	}
	l->ext_len = off;
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)l->size);
	bs_hex_encode(l->root, sizeof(l->root), hx);
	(void)!rpc_call_audit_field(call, "checkpoint.size", sz);
	(void)!rpc_call_audit_field(call, "checkpoint.root", hx);
	if (submit(l, read_work, sign_read_done) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- CosignCheckpoint ------------------------------------------------------------------ */

static void
cosign_checkpoint(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__CosignCheckpointRequest *r =
	    (const Boltseal__V1__CosignCheckpointRequest *)msg;
	char origin[NOTE_NAME_MAX + 1];
	const uint8_t *nl;
	struct lcall *l;
	size_t n;

	if (r->note.len == 0 || r->note.len > COSIG_NOTE_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "note: 1..%d bytes", COSIG_NOTE_MAX);
		return;
	}
	/* the origin, to find the log: the first line, trusted only once the note is opened */
	nl = memchr(r->note.data, '\n', r->note.len);
	n = nl != NULL ? (size_t)(nl - r->note.data) : 0;
	if (n == 0 || n > NOTE_NAME_MAX || memchr(r->note.data, '\0', n) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "note: the first line is not an "
		    "origin");
		return;
	}
	memcpy(origin, r->note.data, n);
	origin[n] = '\0';
	if ((l = lcall_start(call, OP_COSIGN, origin)) == NULL)
		return;
	if (take_proof(l, r->consistency_proof, r->n_consistency_proof) != 0)
		return;
	if ((l->msg = malloc(r->note.len)) == NULL) {
		fail(l, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(l->msg, r->note.data, r->note.len);
	l->msg_len = r->note.len;
	if (submit(l, read_work, sign_read_done) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- GetLogStatus --------------------------------------------------------------------- */

static void
get_log_status(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetLogStatusRequest *r = (const Boltseal__V1__GetLogStatusRequest *)msg;
	struct lcall *l;

	if ((l = lcall_start(call, OP_STATUS, r->origin)) == NULL)
		return;
	if (submit(l, read_work, sign_read_done) != 0)
		fail(l, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

#define METHOD(name, req, resp, fn) { name, &boltseal__v1__##req##__descriptor, \
	&boltseal__v1__##resp##__descriptor, RPC_AUTHZ_POLICY, 0, fn }

static const struct rpc_method methods[] = {
	METHOD("RegisterLog", register_log_request, log_status, register_log),
	METHOD("SignCheckpoint", sign_checkpoint_request, sign_checkpoint_response,
	    sign_checkpoint),
	METHOD("GetLogStatus", get_log_status_request, log_status, get_log_status),
	METHOD("CosignCheckpoint", cosign_checkpoint_request, cosign_checkpoint_response,
	    cosign_checkpoint),
};

const struct rpc_service checkpoint_service = {
	.name = "boltseal.v1.CheckpointService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
};
