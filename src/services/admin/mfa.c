/*
 * mfa.c - the second factor of each principal (TOTP, RFC 6238; the codes
 * are formats/totp.c's): enrolment, activation, status and reset, and the
 * checker of the x-boltseal-otp codes the RPC layer hands over.
 *
 * A principal's factor is one versioned store row (namespace "mfa", id the
 * principal id):
 *   u8 format (1), u8 state, u32 failures, u64 enrolled, u64 last_used,
 *   u64 last_step (big-endian, as bytebuf writes), then the sealed seed:
 *   an envelope blob (formats/envblob.h) of the key ADMIN_MFA_KEY, whose
 *   AES-256-GCM additional data binds the context {principal, use}.
 * The seed is drawn by the HSM's random generator inside the ENCRYPT that
 * seals it (KEYOP_ENCRYPT with generate), so the daemon holds it in the
 * clear only to show the otpauth URI once and, later, for each check
 * (decrypted through the key door, wiped at once). Every change is a
 * compare-and-set of the row: a code is accepted only by the write that
 * raises last_step, so a replay racing the first use loses; failures are
 * counted the same way and lock the factor at admin.mfa_max_failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/bytebuf.h"
#include "common/log.h"
#include "formats/envblob.h"
#include "formats/totp.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/admin/admin_int.h"
#include "services/services.h"
#include "store/store.h"

#define REC_FORMAT 1
#define ISSUER "boltseal"

enum { MFA_NONE = 0, MFA_PENDING = 1, MFA_ACTIVE = 2, MFA_LOCKED = 3 };

static const char *
state_name(int s)
{
	switch (s) {
	case MFA_PENDING: return "pending";
	case MFA_ACTIVE: return "active";
	case MFA_LOCKED: return "locked";
	case MFA_NONE:
	default: return "none";
	}
}

struct mfa_rec {
	int state;
	uint32_t failures;
	int64_t enrolled;
	int64_t last_used;
	uint64_t last_step;
	uint8_t *blob;                  /* sealed seed, owned */
	size_t blob_len;
};

static void
rec_clear(struct mfa_rec *r)
{
	free(r->blob);
	memset(r, 0, sizeof(*r));
}

static void
put_u64(struct bytebuf *b, uint64_t v)
{
	bytebuf_put_u32(b, (uint32_t)(v >> 32));
	bytebuf_put_u32(b, (uint32_t)v);
}

static int
get_u64(struct byteread *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (byteread_u32(r, &hi) != 0 || byteread_u32(r, &lo) != 0)
		return BS_ERR_TRUNCATED;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
rec_encode(const struct mfa_rec *r, uint8_t **out, size_t *len)
{
	struct bytebuf b = BYTEBUF_INIT;

	bytebuf_put_u8(&b, REC_FORMAT);
	bytebuf_put_u8(&b, (uint8_t)r->state);
	bytebuf_put_u32(&b, r->failures);
	put_u64(&b, (uint64_t)r->enrolled);
	put_u64(&b, (uint64_t)r->last_used);
	put_u64(&b, r->last_step);
	bytebuf_put(&b, r->blob, r->blob_len);
	if (bytebuf_error(&b) != 0) {
		bytebuf_free(&b);
		return BS_ERR_NOMEM;
	}
	*out = bytebuf_steal(&b, len);
	return *out != NULL ? 0 : BS_ERR_NOMEM;
}

static int
rec_decode(const uint8_t *p, size_t len, struct mfa_rec *r)
{
	struct byteread rd;
	uint8_t fmt, state;
	uint64_t en, used;
	const uint8_t *blob;
	size_t rest;

	memset(r, 0, sizeof(*r));
	byteread_init(&rd, p, len);
	if (byteread_u8(&rd, &fmt) != 0 || fmt != REC_FORMAT || byteread_u8(&rd, &state) != 0 ||
	    state < MFA_PENDING || state > MFA_LOCKED || byteread_u32(&rd, &r->failures) != 0 ||
	    get_u64(&rd, &en) != 0 || get_u64(&rd, &used) != 0 ||
	    get_u64(&rd, &r->last_step) != 0 || en > INT64_MAX || used > INT64_MAX)
		return BS_ERR_IO;
	rest = len - rd.off;
	if (rest == 0 || rest > ENVBLOB_MAX || byteread_bytes(&rd, rest, &blob) != 0)
		return BS_ERR_IO;
	if ((r->blob = malloc(rest)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(r->blob, blob, rest);
	r->blob_len = rest;
	r->state = state;
	r->enrolled = (int64_t)en;
	r->last_used = (int64_t)used;
	return 0;
}

/* Worker: reads principal's row into *r and *ver (BS_ERR_NOT_FOUND: none). */
static int
rec_read(struct store *st, const char *principal, struct mfa_rec *r, uint64_t *ver)
{
	struct store_txn *tx = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = store_begin_read(st, &tx)) != 0)
		return rc;
	rc = store_row_get(tx, ADMIN_NS_MFA, principal, &data, &len, ver);
	store_rollback(tx);
	if (rc == 0) {
		rc = rec_decode(data, len, r);
		if (rc != 0)
			rec_clear(r);
	}
	free(data);
	return rc;
}

/* Worker: writes r as principal's row if its version is still expected (0: new). */
static int
rec_write(struct store *st, const char *principal, const struct mfa_rec *r, uint64_t expected)
{
	struct store_txn *tx = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = rec_encode(r, &data, &len)) != 0)
		return rc;
	if ((rc = store_begin(st, &tx)) == 0) {
		rc = store_row_put(tx, ADMIN_NS_MFA, principal, expected, data, len, NULL);
		if (rc == 0)
			rc = store_commit(tx);
		else
			store_rollback(tx);
	}
	free(data);
	return rc;
}

/* Worker: deletes principal's row at version expected. */
static int
rec_delete(struct store *st, const char *principal, uint64_t expected)
{
	struct store_txn *tx = NULL;
	int rc;

	if ((rc = store_begin(st, &tx)) != 0)
		return rc;
	rc = store_row_delete(tx, ADMIN_NS_MFA, principal, expected);
	if (rc == 0)
		return store_commit(tx);
	store_rollback(tx);
	return rc;
}

/* The AES-GCM additional data of principal's sealed seed (blob's header fields set). */
static int
seed_aad(const struct envblob *b, const char *principal, uint8_t **aad, size_t *aad_len)
{
	const struct envctx_entry ctx[] = { { "principal", principal }, { "use", "totp-seed" } };
	uint8_t *canon = NULL;
	size_t canon_len = 0;
	int rc;

	if ((rc = envctx_canonical(ctx, 2, &canon, &canon_len)) != 0)
		return rc;
	rc = envblob_aad(b, canon, canon_len, aad, aad_len);
	free(canon);
	return rc;
}

/* ---- one operation on a factor: read, HSM, write ----------------------------- */

enum mfa_op { OP_ENROLL, OP_ACTIVATE, OP_CHECK, OP_GET, OP_RESET };

struct mfa {
	struct admin_job aj;            /* first */
	enum mfa_op op;
	char principal[POLICY_ID_MAX + 1];
	char code[TOTP_DIGITS + 2];     /* ACTIVATE, CHECK: what was sent (wiped) */
	int64_t now;
	struct mfa_rec rec;
	uint64_t ver;                   /* the row's version read (0: none) */
	int found;
	/* after the HSM */
	int verdict;                    /* CHECK/ACTIVATE: totp_check's result */
	uint64_t step;
	char *uri;                      /* ENROLL: the otpauth URI (secret: wiped) */
	char *qr;
	struct envblob hdr;             /* ENROLL: the new blob's header (ct unset) */
	int stage;                      /* 0: read, 1: write */
	int accepted;                   /* CHECK/ACTIVATE: the code was accepted */
	char msg[256];                  /* CHECK/ACTIVATE: why not */
};

static void
mfa_free(struct mfa *m)
{
	OPENSSL_cleanse(m->code, sizeof(m->code));
	if (m->uri != NULL)
		OPENSSL_clear_free(m->uri, strlen(m->uri));
	if (m->qr != NULL)
		OPENSSL_clear_free(m->qr, strlen(m->qr));
	rec_clear(&m->rec);
	free(m);
}

static void mfa_step(struct admin_job *j);

static void
mfa_work(struct admin_job *j)
{
	struct mfa *m = (struct mfa *)j;
	struct store *st = j->st->svc->store;

	if (m->stage == 0) {
		j->rc = rec_read(st, m->principal, &m->rec, &m->ver);
		m->found = j->rc == 0;
		if (j->rc == BS_ERR_NOT_FOUND) {
			j->rc = 0;
			m->ver = 0;
		}
		return;
	}
	if (m->op == OP_RESET)
		j->rc = rec_delete(st, m->principal, m->ver);
	else
		j->rc = rec_write(st, m->principal, &m->rec, m->ver);
}

/* Answers the operation (or the check's verdict) and frees m. */
static void
mfa_end(struct mfa *m, int status, const char *msg)
{
	struct rpc_call *call = m->aj.call;
	Boltseal__V1__SecondFactorStatus s = BOLTSEAL__V1__SECOND_FACTOR_STATUS__INIT;

	if (m->op == OP_CHECK) {
		char reason[256];

		snprintf(reason, sizeof(reason), "second factor of principal '%s': %s",
		    m->principal, msg != NULL ? msg : "accepted");
		rpc_call_second_factor_done(call, status == GRPC_STATUS_OK, status, msg, reason);
		mfa_free(m);
		return;
	}
	if (status != GRPC_STATUS_OK) {
		rpc_call_fail(call, status, "%s", msg);
		mfa_free(m);
		return;
	}
	s.principal = m->principal;
	s.state = (char *)state_name(m->op == OP_RESET ? MFA_NONE : m->found || m->stage ?
	    m->rec.state : MFA_NONE);
	s.failures = m->rec.failures;
	s.enrolled_unix = m->rec.enrolled;
	s.last_used_unix = m->rec.last_used;
	if (m->op == OP_ENROLL) {
		Boltseal__V1__EnrollSecondFactorResponse r =
		    BOLTSEAL__V1__ENROLL_SECOND_FACTOR_RESPONSE__INIT;

		r.principal = m->principal;
		r.otpauth_uri = m->uri;
		r.qr_text = m->qr;
		rpc_call_audit_event(call, "mfa_enrolled");
		rpc_call_finish_pb(call, &r.base);
	} else if (m->op == OP_ACTIVATE) {
		Boltseal__V1__ActivateSecondFactorResponse r =
		    BOLTSEAL__V1__ACTIVATE_SECOND_FACTOR_RESPONSE__INIT;

		r.status = &s;
		rpc_call_audit_event(call, "mfa_activated");
		rpc_call_finish_pb(call, &r.base);
	} else if (m->op == OP_RESET) {
		Boltseal__V1__ResetSecondFactorResponse r =
		    BOLTSEAL__V1__RESET_SECOND_FACTOR_RESPONSE__INIT;

		r.status = &s;
		rpc_call_audit_event(call, "mfa_reset");
		bs_log(BS_LOG_INFO, "second factor reset", "principal", m->principal, "by",
		    rpc_call_principal(call), NULL);
		rpc_call_finish_pb(call, &r.base);
	} else {
		Boltseal__V1__GetSecondFactorResponse r = BOLTSEAL__V1__GET_SECOND_FACTOR_RESPONSE__INIT;

		r.status = &s;
		rpc_call_finish_pb(call, &r.base);
	}
	mfa_free(m);
}

/* Applies the check's verdict to the record (m->accepted, m->msg). 1 if it must be written. */
static int
judge(struct mfa *m)
{
	struct mfa_rec *r = &m->rec;

	if (m->verdict == 0) {
		m->accepted = 1;
		r->last_step = m->step;
		r->last_used = m->now;
		r->failures = 0;
		if (m->op == OP_ACTIVATE)
			r->state = MFA_ACTIVE;
		return 1;
	}
	if (m->verdict == BS_ERR_INVALID) {
		/* no guess was made: not counted */
		snprintf(m->msg, sizeof(m->msg), "second factor: malformed code (send the %d "
		    "digits your authenticator shows)", TOTP_DIGITS);
		return 0;
	}
	if (m->verdict != BS_ERR_SIG_INVALID && m->verdict != BS_ERR_PRECONDITION) {
		snprintf(m->msg, sizeof(m->msg), "second factor: cannot be checked now (%s)",
		    bs_strerror(m->verdict));
		return 0;
	}
	if (m->op == OP_ACTIVATE) {
		/* a pending factor is not locked: its holder may enrol again anyway */
		snprintf(m->msg, sizeof(m->msg), "second factor: wrong code; the factor stays "
		    "pending");
		return 0;
	}
	r->failures++;
	if (r->failures >= m->aj.st->mfa_max_failures)
		r->state = MFA_LOCKED;
	if (m->verdict == BS_ERR_PRECONDITION)
		snprintf(m->msg, sizeof(m->msg), "second factor: this code was used already; wait "
		    "for the next one%s", r->state == MFA_LOCKED ? " (the factor is now locked)" : "");
	else
		snprintf(m->msg, sizeof(m->msg), "second factor: wrong code (%u of %u failures%s)",
		    r->failures, m->aj.st->mfa_max_failures, r->state == MFA_LOCKED ?
		    "; the factor is now locked: ask for a reset" : " before the factor locks");
	return 1;
}

/* Writes m's record (stage 1), or answers if the queue refuses. */
static void
mfa_write(struct mfa *m)
{
	m->stage = 1;
	(void)admin_submit(&m->aj);
}

/* Loop: the key door sealed a new seed (ENROLL) or opened the stored one. */
static void
mfa_door_done(void *arg, struct keyop_answer *a)
{
	struct mfa *m = arg;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int rc = a->rc;

	rpc_call_on_cancel(m->aj.call, NULL, NULL);
	svc_note_hsm_result(m->aj.st->svc, rc);
	if (rc == 0 && a->nciphers != 1)
		rc = BS_ERR_INTERNAL;
	if (rc == 0)
		rc = a->ciphers[0].rc;
	if (rc != 0) {
		mfa_end(m, rc == BS_ERR_SIG_INVALID ? GRPC_STATUS_INTERNAL : rpc_status_from_err(rc),
		    rc == BS_ERR_SIG_INVALID ? "the stored second factor does not open (tampered "
		    "with?)" : "the second factor's seed cannot be used now (HSM); retry later");
		return;
	}
	if (m->op == OP_ENROLL) {
		const struct keyop_cipher *c = &a->ciphers[0];

		if (c->key == NULL || c->len != c->key_len + ENVBLOB_TAG_LEN) {
			mfa_end(m, GRPC_STATUS_INTERNAL, "cannot seal the seed");
			return;
		}
		m->hdr.ct = c->data;
		m->hdr.ct_len = c->key_len;
		memcpy(m->hdr.tag, c->data + c->key_len, ENVBLOB_TAG_LEN);
		if (envblob_encode(&m->hdr, &blob, &blob_len) != 0 ||
		    totp_uri(ISSUER, m->principal, c->key, c->key_len, &m->uri) != 0 ||
		    totp_qr_text(m->uri, &m->qr) != 0) {
			free(blob);
			mfa_end(m, GRPC_STATUS_INTERNAL, "cannot make the enrolment URI");
			return;
		}
		rec_clear(&m->rec);
		m->rec.state = MFA_PENDING;
		m->rec.enrolled = m->now;
		m->rec.blob = blob;
		m->rec.blob_len = blob_len;
		mfa_write(m);
		return;
	}
	m->verdict = totp_check(a->ciphers[0].data, a->ciphers[0].len, m->code, m->now,
	    m->op == OP_ACTIVATE ? 1 : m->aj.st->mfa_window,
	    m->op == OP_ACTIVATE ? 0 : m->rec.last_step, &m->step);
	OPENSSL_cleanse(m->code, sizeof(m->code));
	if (judge(m))
		mfa_write(m);
	else
		mfa_end(m, GRPC_STATUS_UNAUTHENTICATED, m->msg);
}

/* Sends the seal (ENROLL) or the opening of m's seed through the key door. */
static void
mfa_door(struct mfa *m)
{
	struct svc_ctx *svc = m->aj.st->svc;
	const struct catalog_key *k = catalog_find(svc->catalog, ADMIN_MFA_KEY);
	const struct catalog_version *v = NULL;
	struct keyop_request r;
	struct keyop_item item;
	struct envblob b;
	uint8_t *aad = NULL;
	size_t aad_len = 0;
	int rc;

	memset(&item, 0, sizeof(item));
	if (m->op == OP_ENROLL) {
		v = k != NULL ? catalog_key_primary(k) : NULL;
		memset(&m->hdr, 0, sizeof(m->hdr));
		snprintf(m->hdr.kek, sizeof(m->hdr.kek), "%s", ADMIN_MFA_KEY);
		m->hdr.kek_version = v != NULL ? v->version : 0;
		m->hdr.ct_len = KEYOPS_DATAKEY_LEN;
		if (RAND_bytes(m->hdr.nonce, sizeof(m->hdr.nonce)) != 1) {
			mfa_end(m, GRPC_STATUS_INTERNAL, "no randomness");
			return;
		}
		b = m->hdr;
		item.generate = 1;
	} else if (envblob_decode(m->rec.blob, m->rec.blob_len, &b) != 0 ||
	    strcmp(b.kek, ADMIN_MFA_KEY) != 0 || (v = catalog_key_version(k, b.kek_version)) == NULL) {
		mfa_end(m, GRPC_STATUS_INTERNAL, "the stored second factor is unreadable");
		return;
	} else {
		item.data = b.ct;            /* ct || tag: contiguous in the blob */
		item.len = b.ct_len + ENVBLOB_TAG_LEN;
	}
	if (v == NULL || !catalog_version_usable(k, v)) {
		mfa_end(m, GRPC_STATUS_UNAVAILABLE, "the key that seals second factors ("
		    ADMIN_MFA_KEY ") is not usable");
		return;
	}
	if (seed_aad(&b, m->principal, &aad, &aad_len) != 0) {
		mfa_end(m, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(item.nonce, b.nonce, sizeof(item.nonce));
	item.aad = aad;
	item.aad_len = aad_len;
	memset(&r, 0, sizeof(r));
	r.type = m->op == OP_ENROLL ? KEYOP_ENCRYPT : KEYOP_DECRYPT;
	snprintf(r.key.name, sizeof(r.key.name), "%s", ADMIN_MFA_KEY);
	r.key.version = v->version;
	r.alg = BS_ALG_AES_256_GCM;
	memcpy(r.id, v->hsm_id, KEYOPS_ID_LEN);
	r.items = &item;
	r.nitems = 1;
	rc = svc->keys != NULL && !svc->shutting_down ?
	    keyclient_submit(svc->keys, &r, mfa_door_done, m, NULL) : BS_ERR_UNAVAILABLE;
	free(aad);
	if (rc != 0)
		mfa_end(m, rc == BS_ERR_QUEUE_FULL ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_UNAVAILABLE, "the HSM cannot take the work now; retry later");
}

/* Loop, after each store step: stage 0 (read) -> checks -> [key door] -> stage 1 (write). */
static void
mfa_step(struct admin_job *j)
{
	struct mfa *m = (struct mfa *)j;
	int stale = j->rc == BS_ERR_PRECONDITION || j->rc == BS_ERR_EXISTS ||
	    j->rc == BS_ERR_NOT_FOUND;

	if (j->rc != 0) {
		mfa_end(m, stale ? GRPC_STATUS_ABORTED : rpc_status_from_err(j->rc), stale ?
		    "second factor: changed concurrently; retry with a new code" :
		    "second factor: the state store failed; retry later");
		return;
	}
	if (m->stage == 1) {
		if ((m->op == OP_CHECK || m->op == OP_ACTIVATE) && !m->accepted)
			mfa_end(m, GRPC_STATUS_UNAUTHENTICATED, m->msg);
		else
			mfa_end(m, GRPC_STATUS_OK, NULL);
		return;
	}
	switch (m->op) {
	case OP_GET:
		mfa_end(m, GRPC_STATUS_OK, NULL);
		return;
	case OP_RESET:
		if (!m->found)
			mfa_end(m, GRPC_STATUS_NOT_FOUND, "no second factor is enrolled for that "
			    "principal");
		else
			mfa_write(m);
		return;
	case OP_ENROLL:
		if (m->found && m->rec.state != MFA_PENDING) {
			snprintf(m->msg, sizeof(m->msg), "principal '%s' has a second factor already "
			    "(%s): a new one needs a reset first (AdminService/ResetSecondFactor)",
			    m->principal, state_name(m->rec.state));
			mfa_end(m, GRPC_STATUS_FAILED_PRECONDITION, m->msg);
			return;
		}
		mfa_door(m);
		return;
	case OP_CHECK:
	case OP_ACTIVATE:
		if (!m->found) {
			mfa_end(m, m->op == OP_CHECK ? GRPC_STATUS_UNAUTHENTICATED :
			    GRPC_STATUS_NOT_FOUND, "second factor: none is enrolled for this "
			    "principal (AdminService/EnrollSecondFactor)");
		} else if (m->rec.state == MFA_LOCKED) {
			mfa_end(m, GRPC_STATUS_UNAUTHENTICATED, "second factor: locked after too many "
			    "wrong codes; ask for a reset (AdminService/ResetSecondFactor)");
		} else if (m->op == OP_CHECK && m->rec.state != MFA_ACTIVE) {
			mfa_end(m, GRPC_STATUS_UNAUTHENTICATED, "second factor: enrolled but not "
			    "activated yet (AdminService/ActivateSecondFactor)");
		} else if (m->op == OP_ACTIVATE && m->rec.state != MFA_PENDING) {
			mfa_end(m, GRPC_STATUS_FAILED_PRECONDITION, "second factor: already active");
		} else {
			mfa_door(m);
		}
		return;
	default:
		mfa_end(m, GRPC_STATUS_INTERNAL, "unknown operation");
		return;
	}
}

/* Starts op for principal (code: ACTIVATE/CHECK). Answers itself on failure. */
static void
mfa_start(struct rpc_call *call, struct admin_state *st, enum mfa_op op, const char *principal,
    const char *code)
{
	struct mfa *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		if (op == OP_CHECK)
			rpc_call_second_factor_done(call, 0, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "out of memory", NULL);
		else
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	m->aj.call = call;
	m->aj.st = st;
	m->aj.work = mfa_work;
	m->aj.done = mfa_step;
	m->op = op;
	m->now = (int64_t)time(NULL);
	snprintf(m->principal, sizeof(m->principal), "%s", principal);
	if (code != NULL && strlen(code) < sizeof(m->code))
		memcpy(m->code, code, strlen(code) + 1);
	else if (code != NULL)
		snprintf(m->code, sizeof(m->code), "x");   /* malformed: totp_check refuses it */
	(void)admin_submit(&m->aj);
}

/* ---- the RPCs ---------------------------------------------------------------- */

/* The caller's principal, or NULL (answered). */
static const char *
caller(struct rpc_call *call)
{
	const char *p = rpc_call_principal(call);

	if (p == NULL || p[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "permission denied");
		return NULL;
	}
	return p;
}

void
admin_enroll_second_factor(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const char *me;

	(void)msg;
	if ((me = caller(call)) == NULL || !rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	rpc_call_audit_target(call, me);
	mfa_start(call, rpc_call_service_state(call), OP_ENROLL, me, NULL);
}

void
admin_activate_second_factor(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ActivateSecondFactorRequest *r =
	    (const Boltseal__V1__ActivateSecondFactorRequest *)msg;
	const char *me;

	if ((me = caller(call)) == NULL || !rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	rpc_call_audit_target(call, me);
	mfa_start(call, rpc_call_service_state(call), OP_ACTIVATE, me, r->code);
}

/* GET and RESET: a principal named by the request (GET: default the caller). */
static void
about(struct rpc_call *call, const char *named, enum mfa_op op)
{
	const char *me = caller(call);
	const char *who;
	struct policy_attr a[2];

	if (me == NULL)
		return;
	who = named[0] != '\0' ? named : op == OP_GET ? me : "";
	if (who[0] == '\0' || strlen(who) > POLICY_ID_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "principal must be 1 to %d "
		    "characters", POLICY_ID_MAX);
		return;
	}
	a[0] = (struct policy_attr){ "request.principal", who };
	a[1] = (struct policy_attr){ "request.self", strcmp(who, me) == 0 ? "true" : "false" };
	rpc_call_audit_target(call, who);
	if (!rpc_call_authorize(call, NULL, NULL, a, 2))
		return;
	mfa_start(call, rpc_call_service_state(call), op, who, NULL);
}

void
admin_get_second_factor(struct rpc_call *call, const ProtobufCMessage *msg)
{
	about(call, ((const Boltseal__V1__GetSecondFactorRequest *)msg)->principal, OP_GET);
}

void
admin_reset_second_factor(struct rpc_call *call, const ProtobufCMessage *msg)
{
	about(call, ((const Boltseal__V1__ResetSecondFactorRequest *)msg)->principal, OP_RESET);
}

void
admin_check_second_factor(void *arg, struct rpc_call *call, const char *principal,
    const char *code)
{
	if (principal == NULL || principal[0] == '\0') {
		rpc_call_second_factor_done(call, 0, GRPC_STATUS_UNAUTHENTICATED,
		    "second factor: this certificate maps to no principal", NULL);
		return;
	}
	mfa_start(call, arg, OP_CHECK, principal, code);
}
