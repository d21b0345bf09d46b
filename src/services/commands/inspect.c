/*
 * inspect.c - CommandService.InspectCommand: forensics of a command token
 * this service issued (docs/commands.md, "Forensics").
 *
 * Given a JWS compact token or a COSE_Sign1:
 *   1. loop: the token's form, and its kid, read before anything is
 *      trusted; the key: every version of every key of purpose command
 *      whose RFC 7638 thumbprint is that kid (the catalog is the loop's);
 *   2. work queue: the signature and the claims, verified with that key
 *      version (a JWS by the vehicle-side verifier itself, as a vehicle
 *      would have at iat; a COSE_Sign1 over its RFC 9052 Sig_structure);
 *      the vehicle's registry record in force at iat (the last version
 *      updated by then, found by bisection of its history) and now; the
 *      audit record of the SignCommand call that issued it (bisection of
 *      the log on time to iat - 5 s, then a forward scan for the jti);
 *   3. loop: the answer.
 * A token that is malformed or does not verify is INVALID_ARGUMENT; a kid
 * no key of ours has is NOT_FOUND.
 */
#define _GNU_SOURCE           /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <openssl/sha.h>

#include "audit/auditlog.h"
#include "common/hex.h"
#include "boltseal/command.h"
#include "boltseal/v1/commands.pb-c.h"
#include "exec/workq.h"
#include "formats/cose.h"
#include "formats/jose.h"
#include "formats/sigverify.h"
#include "keys/catalog.h"
#include "rpc/rpc_status.h"
#include "services/commands/commands_int.h"
#include "services/services.h"
#include "services/vehicles/registry.h"

#define AUDIT_BEFORE 5          /* seconds before iat where the search starts */
#define AUDIT_AFTER 600         /* ... and after iat where it gives up */
#define AUDIT_SCAN_MAX 2000000  /* records read at most after the bisection */
#define AUDIT_CHUNK 512

/* InspectCommand calls in the work queue (loop thread): one at a time, so a
 * long audit scan holds one work thread at most */
static int inspecting;

struct icall {
	struct workq_job job;         /* first: the work queue hands it back */
	struct rpc_call *call;
	struct svc_ctx *svc;
	uint8_t *token;
	size_t len;
	int cose;
	struct cose_sign1 cs;         /* COSE: decoded on the loop */
	char sub[VEHICLE_ID_MAX + 1]; /* JWS: read before verification, checked by it */
	int64_t iat_claimed;
	/* the key version whose thumbprint is the kid */
	char kid[JOSE_THUMBPRINT_LEN + 1];
	char key[CATALOG_NAME_MAX + 1];
	uint32_t version;
	enum bs_alg alg;
	int64_t key_created;
	int key_enabled;
	uint8_t *spki;
	size_t spki_len;
	/* the work's results */
	char what_signed[BS_HEX_LEN(32)];   /* hex SHA-256 of what was signed (the audit's payload) */
	int status;                   /* a gRPC status, 0 = OK */
	char why[400];
	json_t *claims;               /* verified, with the JWS claim names */
	uint64_t veh_then;
	char status_then[16], status_now[16];
	int audit_found;
	uint64_t audit_index;
	uint8_t *audit_rec;
	size_t audit_len;
};

static void
icall_free(struct icall *ic)
{
	free(ic->token);
	cose_sign1_free(&ic->cs);
	free(ic->spki);
	json_decref(ic->claims);
	free(ic->audit_rec);
	free(ic);
}

static void
ifail(struct icall *ic, int status, const char *msg)
{
	rpc_call_fail(ic->call, status, "%s", msg);
	icall_free(ic);
}

/* ---- 1. the form and the key -------------------------------------------------------- */

/*
 * JWS: the kid from the header and sub and iat from the claims, read
 * without trusting them (the verifier checks them all again). 0 or -1
 * with why.
 */
static int
jws_peek(struct icall *ic)
{
	const char *t = (const char *)ic->token, *d1, *d2;
	uint8_t *raw = NULL;
	size_t n;
	json_t *h = NULL, *p = NULL;
	json_error_t e;
	int ok = 0;

	for (size_t i = 0; i < ic->len; i++)
		if (ic->token[i] < 0x21 || ic->token[i] > 0x7e) {
			snprintf(ic->why, sizeof(ic->why), "token: neither a COSE_Sign1 nor a JWS "
			    "compact token (a byte outside printable ASCII)");
			return -1;
		}
	if ((d1 = memchr(t, '.', ic->len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', ic->len - (size_t)(d1 + 1 - t))) == NULL) {
		snprintf(ic->why, sizeof(ic->why), "token: a JWS compact token has three parts");
		return -1;
	}
	if (jose_b64url_decode(t, (size_t)(d1 - t), &raw, &n) == 0)
		h = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &e);
	free(raw);
	raw = NULL;
	if (jose_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &raw, &n) == 0)
		p = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &e);
	free(raw);
	if (!json_is_string(json_object_get(h, "kid")) ||
	    strlen(json_string_value(json_object_get(h, "kid"))) != JOSE_THUMBPRINT_LEN) {
		snprintf(ic->why, sizeof(ic->why), "token: the JWS header has no kid of this "
		    "service's form (an RFC 7638 thumbprint)");
	} else if (!json_is_string(json_object_get(p, "sub")) ||
	    !vehicle_id_valid(json_string_value(json_object_get(p, "sub"))) ||
	    !json_is_integer(json_object_get(p, "iat")) ||
	    json_integer_value(json_object_get(p, "iat")) < 0 ||
	    json_integer_value(json_object_get(p, "iat")) > BS_CMD_MAX_TIME) {
		snprintf(ic->why, sizeof(ic->why), "token: the JWS claims have no vehicle id "
		    "(sub) or no iat of this service's form");
	} else {
		snprintf(ic->kid, sizeof(ic->kid), "%s", json_string_value(json_object_get(h, "kid")));
		snprintf(ic->sub, sizeof(ic->sub), "%s", json_string_value(json_object_get(p, "sub")));
		ic->iat_claimed = (int64_t)json_integer_value(json_object_get(p, "iat"));
		ok = 1;
	}
	json_decref(h);
	json_decref(p);
	return ok ? 0 : -1;
}

static int
cose_peek(struct icall *ic)
{
	int rc = cose_sign1_decode(ic->token, ic->len, &ic->cs);

	if (rc != 0) {
		snprintf(ic->why, sizeof(ic->why), "token: not a COSE_Sign1 of this service's form "
		    "(%s)", bs_strerror(rc));
		return -1;
	}
	if (ic->cs.kid_len != JOSE_THUMBPRINT_LEN ||
	    memchr(ic->cs.kid, '\0', ic->cs.kid_len) != NULL) {
		snprintf(ic->why, sizeof(ic->why), "token: the COSE_Sign1 has no kid of this "
		    "service's form (an RFC 7638 thumbprint)");
		return -1;
	}
	memcpy(ic->kid, ic->cs.kid, JOSE_THUMBPRINT_LEN);
	ic->kid[JOSE_THUMBPRINT_LEN] = '\0';
	return 0;
}

/* The key version whose thumbprint is ic->kid, among the keys of purpose command. */
static int
find_key(struct icall *ic)
{
	const struct catalog *cat = ic->svc->catalog;
	char tp[JOSE_THUMBPRINT_LEN + 1];

	for (size_t i = 0; i < catalog_count(cat); i++) {
		const struct catalog_key *k = catalog_at(cat, i);

		if (k->purpose != BS_PURPOSE_COMMAND)
			continue;
		for (size_t j = 0; j < k->nversions; j++) {
			const struct catalog_version *v = &k->versions[j];

			if (v->spki == NULL || commands_kid_of(ic->call, k, v, tp) != 0 ||
			    strcmp(tp, ic->kid) != 0)
				continue;
			if ((ic->spki = malloc(v->spki_len)) == NULL)
				return BS_ERR_NOMEM;
			memcpy(ic->spki, v->spki, v->spki_len);
			ic->spki_len = v->spki_len;
			snprintf(ic->key, sizeof(ic->key), "%s", k->name);
			ic->version = v->version;
			ic->alg = k->alg;
			ic->key_created = v->created;
			ic->key_enabled = catalog_version_usable(k, v);
			return 0;
		}
	}
	return BS_ERR_NOT_FOUND;
}

/* ---- 2. the signature, the claims, the vehicle, the audit record ----------------------- */

static void
verify_jws(struct icall *ic)
{
	struct bs_cmd_verify_opts o;
	struct bs_cmd_claims c;
	char detail[256] = "";
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	o.vehicle_id = ic->sub;
	o.audience = CMD_AUDIENCE;
	o.issuer = CMD_ISSUER;
	o.now = ic->iat_claimed;      /* as a vehicle would have seen it when it was issued */
	rc = bs_cmd_verify_detail((const char *)ic->token, ic->len, ic->spki, ic->spki_len, &o, &c,
	    detail, sizeof(detail));
	if (rc == BS_CMD_ERR_NOMEM) {
		ic->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(ic->why, sizeof(ic->why), "out of memory");
		return;
	}
	if (rc != BS_CMD_OK) {
		ic->status = GRPC_STATUS_INVALID_ARGUMENT;
		snprintf(ic->why, sizeof(ic->why), "the token does not verify with key '%s' version "
		    "%u: %s: %s", ic->key, ic->version, bs_cmd_result_name(rc), detail);
		return;
	}
	{
		/* the signing input: the text before the second '.' (the verifier checked the form) */
		const uint8_t *d1 = memchr(ic->token, '.', ic->len);
		const uint8_t *d2 = d1 != NULL ? memchr(d1 + 1, '.', ic->len -
		    (size_t)(d1 + 1 - ic->token)) : NULL;
		uint8_t h[32];

		if (d2 == NULL) {             /* cannot be: the verifier read three parts */
			ic->status = GRPC_STATUS_INTERNAL;
			snprintf(ic->why, sizeof(ic->why), "the token's parts are gone");
			return;
		}
		SHA256(ic->token, (size_t)(d2 - ic->token), h);
		bs_hex_encode(h, sizeof(h), ic->what_signed);
	}
	ic->claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:o}", "iss", c.iss,
	    "sub", c.sub, "aud", c.aud, "iat", (json_int_t)c.iat, "nbf", (json_int_t)c.nbf, "exp",
	    (json_int_t)c.exp, "jti", c.jti, "seq", (json_int_t)c.seq, "cmd", c.cmd, "args",
	    json_loadb(c.args, c.args_len, 0, NULL));
	bs_cmd_claims_free(&c);
	if (ic->claims == NULL || json_object_get(ic->claims, "args") == NULL) {
		ic->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(ic->why, sizeof(ic->why), "out of memory");
	}
}

static void
verify_cose(struct icall *ic)
{
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	int want = ic->alg == BS_ALG_ED25519 ? COSE_ALG_EDDSA : COSE_ALG_ES256, rc;
	const char *iss, *aud;

	ic->status = GRPC_STATUS_INVALID_ARGUMENT;
	if (ic->cs.alg != want) {
		snprintf(ic->why, sizeof(ic->why), "the token's alg %lld does not fit key '%s' (%s)",
		    (long long)ic->cs.alg, ic->key, bs_alg_name(ic->alg));
		return;
	}
	if ((rc = cose_sig_structure(ic->cs.prot, ic->cs.prot_len, NULL, 0, ic->cs.payload,
	    ic->cs.payload_len, &tbs, &tbs_len)) != 0 ||
	    (rc = sigverify_verify(ic->spki, ic->spki_len, ic->alg, 0, tbs, tbs_len, ic->cs.sig,
	    ic->cs.sig_len, BS_SIGFMT_RAW)) != 0) {
		free(tbs);
		if (rc == BS_ERR_NOMEM)
			ic->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(ic->why, sizeof(ic->why), "the token does not verify with key '%s' version "
		    "%u: %s", ic->key, ic->version, rc == BS_ERR_SIG_INVALID ? "bad signature" :
		    bs_strerror(rc));
		return;
	}
	{
		uint8_t h[32];

		SHA256(tbs, tbs_len, h);
		bs_hex_encode(h, sizeof(h), ic->what_signed);
	}
	free(tbs);
	if ((rc = cose_claims_decode(ic->cs.payload, ic->cs.payload_len, &ic->claims)) != 0) {
		snprintf(ic->why, sizeof(ic->why), "the token's claims are not this service's: %s",
		    bs_strerror(rc));
		return;
	}
	iss = json_string_value(json_object_get(ic->claims, "iss"));
	aud = json_string_value(json_object_get(ic->claims, "aud"));
	if (iss == NULL || aud == NULL || strcmp(iss, CMD_ISSUER) != 0 ||
	    strcmp(aud, CMD_AUDIENCE) != 0 ||
	    !vehicle_id_valid(json_string_value(json_object_get(ic->claims, "sub")))) {
		snprintf(ic->why, sizeof(ic->why), "the token's iss, aud or sub are not this "
		    "service's");
		return;
	}
	ic->status = 0;
}

static int64_t
rec_int(const json_t *rec, const char *name)
{
	return (int64_t)json_integer_value(json_object_get(rec, name));
}

/*
 * The vehicle's record the command was issued on: exactly `exact` when the
 * audit record named it (command.vehicle_version: the version the policy
 * judged), else the last version whose updated_at is at or before iat, by
 * bisection (updated_at is the second the change was asked for: a change in
 * the same second as the command is taken as before it); and its status
 * now. 0 or a store error.
 */
static int
vehicle_at(struct icall *ic, const char *id, int64_t iat, uint64_t exact)
{
	struct store_txn *tx = NULL;
	json_t *rec = NULL;
	uint64_t rowv = 0, lo = 1, hi, best = 0;
	const char *st;
	int rc;

	if ((rc = store_begin_read(ic->svc->store, &tx)) != 0)
		return rc;
	rc = vehicle_read(tx, id, 0, &rec, &rowv);
	if (rc == BS_ERR_NOT_FOUND) {
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto out;
	st = vehicle_status_name(vehicle_status_of(rec));
	snprintf(ic->status_now, sizeof(ic->status_now), "%s", st != NULL ? st : "");
	hi = (uint64_t)rec_int(rec, "version");
	json_decref(rec);
	rec = NULL;
	if (exact > 0 && exact <= hi) {
		best = exact;
		lo = hi + 1;                  /* no bisection */
	}
	while (lo <= hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if ((rc = vehicle_read(tx, id, mid, &rec, &rowv)) != 0)
			goto out;
		if (rec_int(rec, "updated_at") <= iat) {
			best = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
		json_decref(rec);
		rec = NULL;
	}
	if (best > 0) {
		if ((rc = vehicle_read(tx, id, best, &rec, &rowv)) != 0)
			goto out;
		st = vehicle_status_name(vehicle_status_of(rec));
		snprintf(ic->status_then, sizeof(ic->status_then), "%s", st != NULL ? st : "");
		ic->veh_then = best;
	}
out:
	json_decref(rec);
	store_rollback(tx);
	return rc;
}

/* ---- the audit record ---- */

struct aprobe {
	char ts[32];                  /* the record's "timestamp" (ISO 8601, UTC, ms) */
};

static int
probe_cb(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct aprobe *p = arg;
	json_t *r = json_loadb((const char *)line, len, 0, NULL);
	const char *ts = json_string_value(json_object_get(r, "timestamp"));

	(void)index;
	snprintf(p->ts, sizeof(p->ts), "%s", ts != NULL ? ts : "");
	json_decref(r);
	return 0;
}

struct ascan {
	struct icall *ic;
	const char *jti;
	char until[32];               /* stop at a record later than this */
	int stop;
	int rc;
};

/*
 * The record is this token's: the same key and version, sequence number,
 * vehicle, and what was signed (payload_sha256). A record with the jti but
 * not these is not taken (a damaged log, or a jti not unique after all).
 */
static int
record_is_token(const struct icall *ic, const json_t *r)
{
	const json_t *f = json_object_get(r, "fields");
	const char *key = json_string_value(json_object_get(r, "key"));
	const char *seq = json_string_value(json_object_get(f, "command.seq"));
	const char *veh = json_string_value(json_object_get(f, "command.vehicle_id"));
	const char *pay = json_string_value(json_array_get(json_object_get(r, "payload_sha256"), 0));
	char want[24];

	snprintf(want, sizeof(want), "%llu", (unsigned long long)json_integer_value(
	    json_object_get(ic->claims, "seq")));
	return key != NULL && strcmp(key, ic->key) == 0 &&
	    json_integer_value(json_object_get(r, "key_version")) == (json_int_t)ic->version &&
	    seq != NULL && strcmp(seq, want) == 0 && veh != NULL &&
	    strcmp(veh, json_string_value(json_object_get(ic->claims, "sub"))) == 0 &&
	    pay != NULL && strcmp(pay, ic->what_signed) == 0;
}

static int
scan_cb(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct ascan *s = arg;
	json_t *r, *f;
	const char *ts, *m, *res, *jti;

	if (s->stop)
		return 0;
	/* the jti is 32 random hex digits: only lines holding it are parsed */
	if (memmem(line, len, s->jti, strlen(s->jti)) == NULL) {
		/* "timestamp" is near the start of every record, after seq and prev */
		const uint8_t *t = memmem(line, len > 200 ? 200 : len, "\"timestamp\":\"", 13);

		if (t != NULL && (size_t)(line + len - t) > 13 + 24 &&
		    memcmp(t + 13, s->until, 24) > 0)
			s->stop = 1;
		return 0;
	}
	r = json_loadb((const char *)line, len, 0, NULL);
	f = json_object_get(r, "fields");
	ts = json_string_value(json_object_get(r, "timestamp"));
	m = json_string_value(json_object_get(r, "method"));
	res = json_string_value(json_object_get(r, "result"));
	jti = json_string_value(json_object_get(f, "command.jti"));
	if (m != NULL && strcmp(m, CMD_METHOD_SIGN) == 0 && res != NULL && strcmp(res, "OK") == 0 &&
	    jti != NULL && strcmp(jti, s->jti) == 0 && record_is_token(s->ic, r)) {
		if ((s->ic->audit_rec = malloc(len > 0 ? len : 1)) == NULL) {
			s->rc = BS_ERR_NOMEM;
		} else {
			memcpy(s->ic->audit_rec, line, len);
			s->ic->audit_len = len;
			s->ic->audit_found = 1;
			s->ic->audit_index = index;
		}
		s->stop = 1;
	} else if (ts != NULL && strcmp(ts, s->until) > 0) {
		s->stop = 1;
	}
	json_decref(r);
	return 0;
}

static void
iso(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)(t < 0 ? 0 : t);

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* The SignCommand record carrying jti, issued at iat. 0 or an audit read error. */
static int
audit_find(struct icall *ic, const char *jti, int64_t iat)
{
	struct audit_log *l = ic->svc->audit;
	struct aprobe p;
	struct ascan s;
	char from[32];
	uint64_t lo = 0, hi, n, scanned = 0;
	int rc;

	if (l == NULL)
		return 0;
	hi = audit_log_size(l);
	iso(iat - AUDIT_BEFORE, from);
	/* the first record at or after iat - 5 s: records are appended in time order */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		p.ts[0] = '\0';
		if ((rc = audit_log_read(l, mid, 1, 1 << 20, probe_cb, &p, &n)) != 0)
			return rc;
		if (strcmp(p.ts, from) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memset(&s, 0, sizeof(s));
	s.ic = ic;
	s.jti = jti;
	iso(iat + AUDIT_AFTER, s.until);
	while (!s.stop && s.rc == 0 && scanned < AUDIT_SCAN_MAX && lo < audit_log_size(l)) {
		rc = audit_log_read(l, lo, AUDIT_CHUNK, 1 << 22, scan_cb, &s, &n);
		if (rc == BS_ERR_NOT_FOUND)
			break;
		if (rc != 0)
			return rc;
		lo += n;
		scanned += n;
	}
	return s.rc;
}

static void
inspect_work(struct workq_job *job, void *ctx)
{
	struct icall *ic = (struct icall *)job;
	const char *sub, *jti;
	uint64_t exact = 0;
	int64_t iat;
	int rc;

	(void)ctx;
	if (ic->cose)
		verify_cose(ic);
	else
		verify_jws(ic);
	if (ic->status != 0)
		return;
	sub = json_string_value(json_object_get(ic->claims, "sub"));
	jti = json_string_value(json_object_get(ic->claims, "jti"));
	iat = (int64_t)json_integer_value(json_object_get(ic->claims, "iat"));
	if ((rc = audit_find(ic, jti, iat)) != 0) {
		ic->status = rc == BS_ERR_NOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_UNAVAILABLE;
		snprintf(ic->why, sizeof(ic->why), "cannot read the audit log: %s", bs_strerror(rc));
		return;
	}
	if (ic->audit_found) {
		json_t *r = json_loadb((const char *)ic->audit_rec, ic->audit_len, 0, NULL);
		const char *v = json_string_value(json_object_get(json_object_get(r, "fields"),
		    "command.vehicle_version"));

		exact = v != NULL ? strtoull(v, NULL, 10) : 0;
		json_decref(r);
	}
	if ((rc = vehicle_at(ic, sub, iat, exact)) != 0) {
		ic->status = GRPC_STATUS_UNAVAILABLE;
		snprintf(ic->why, sizeof(ic->why), "cannot read the vehicle registry: %s",
		    bs_strerror(rc));
	}
}

/* ---- 3. the answer -------------------------------------------------------------------- */

static void
inspect_done(struct workq_job *job)
{
	struct icall *ic = (struct icall *)job;
	Boltseal__V1__InspectCommandResponse r = BOLTSEAL__V1__INSPECT_COMMAND_RESPONSE__INIT;
	const json_t *c = ic->claims;
	char *args = NULL, seq[24];

	inspecting--;
	if (ic->status != 0) {
		ifail(ic, ic->status, ic->why);
		return;
	}
	if ((args = json_dumps(json_object_get(c, "args"), JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		ifail(ic, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r.format = ic->cose ? BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE :
	    BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_JWS;
	r.key_name = ic->key;
	r.key_version = ic->version;
	r.kid = ic->kid;
	r.key_created = ic->key_created;
	r.vehicle_id = (char *)(uintptr_t)json_string_value(json_object_get(c, "sub"));
	r.command = (char *)(uintptr_t)json_string_value(json_object_get(c, "cmd"));
	r.args.data = (uint8_t *)args;
	r.args.len = strlen(args);
	r.seq = (uint64_t)json_integer_value(json_object_get(c, "seq"));
	r.jti = (char *)(uintptr_t)json_string_value(json_object_get(c, "jti"));
	r.issued_at = (int64_t)json_integer_value(json_object_get(c, "iat"));
	r.not_before = (int64_t)json_integer_value(json_object_get(c, "nbf"));
	r.expires = (int64_t)json_integer_value(json_object_get(c, "exp"));
	/* keys cannot be disabled yet: created by iat and enabled now is valid at iat */
	r.key_valid_at_issue = ic->key_created <= r.issued_at && ic->key_enabled;
	r.vehicle_version_at_issue = ic->veh_then;
	r.vehicle_status_at_issue = ic->status_then;
	r.vehicle_status_now = ic->status_now;
	r.audit_found = ic->audit_found;
	r.audit_index = ic->audit_index;
	r.audit_record.data = ic->audit_rec;
	r.audit_record.len = ic->audit_len;
	rpc_call_audit_target(ic->call, r.vehicle_id);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)r.seq);
	(void)!rpc_call_audit_field(ic->call, "command.vehicle_id", r.vehicle_id);
	(void)!rpc_call_audit_field(ic->call, "command.inspected_jti", r.jti);
	(void)!rpc_call_audit_field(ic->call, "command.seq", seq);
	rpc_call_finish_pb(ic->call, &r.base);
	free(args);
	icall_free(ic);
}

void
commands_inspect(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__InspectCommandRequest *rq =
	    (const Boltseal__V1__InspectCommandRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	struct icall *ic;
	char why[400];
	int rc;

	/* an auditor's call: granted by method, no key named */
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if (svc->store == NULL || svc->work == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "command service not started");
		return;
	}
	if (rq->token.len == 0 || rq->token.len > COSE_TOKEN_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "token: 1..%d bytes",
		    COSE_TOKEN_MAX);
		return;
	}
	if ((ic = calloc(1, sizeof(*ic))) == NULL || (ic->token = malloc(rq->token.len)) == NULL) {
		free(ic);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(ic->token, rq->token.data, rq->token.len);
	ic->len = rq->token.len;
	ic->call = call;
	ic->svc = svc;
	/* a COSE_Sign1 starts with tag 18 (0xd2); a JWS with base64url text */
	ic->cose = ic->token[0] == 0xd2;
	if ((ic->cose ? cose_peek(ic) : jws_peek(ic)) != 0) {
		snprintf(why, sizeof(why), "%s", ic->why);
		ifail(ic, GRPC_STATUS_INVALID_ARGUMENT, why);
		return;
	}
	if ((rc = find_key(ic)) != 0) {
		snprintf(why, sizeof(why), rc == BS_ERR_NOMEM ? "out of memory" : "no key of purpose "
		    "command of this service has the token's kid '%s'", ic->kid);
		ifail(ic, rc == BS_ERR_NOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_NOT_FOUND,
		    why);
		return;
	}
	rpc_call_audit_key(call, ic->key, ic->version);
	if (inspecting > 0) {
		ifail(ic, GRPC_STATUS_UNAVAILABLE, "another InspectCommand is running; try again");
		return;
	}
	ic->job.work = inspect_work;
	ic->job.done = inspect_done;
	if (workq_submit(svc->work, &ic->job) != 0) {
		ifail(ic, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
		return;
	}
	inspecting++;
}
