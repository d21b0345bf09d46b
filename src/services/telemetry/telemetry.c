/*
 * telemetry.c - TelemetryService (telemetry.proto, docs/telemetry.md):
 * verdicts on vehicle-signed telemetry batches, one (VerifyTelemetryBatch)
 * or many of many vehicles (VerifyTelemetryBatches, a gateway's form).
 *
 * One call is one work-queue job, all on a worker thread:
 *   1. each token decoded (formats/tlm_batch.h), its window and clock checked;
 *   2. in one read transaction, each vehicle's registry record read once
 *      (registry.h); per batch: the vehicle active, the kid one of its
 *      identity keys, the signature (OpenSSL, formats/sigverify.h; the
 *      parsed keys cached by key id, which is their hash), the identity
 *      valid and not revoked at the window, the samples' hash;
 *   3. in one write transaction, the sequence numbers of the batches that
 *      passed: each vehicle's replay window (store row "seq/VID" of namespace
 *      "telemetry": the highest sequence seen and a bitmap of the 64 below
 *      it), so a batch is accepted once, and one more than 64 behind the
 *      highest is refused as too old.
 * Then the loop answers. A refused batch is a verdict; the call fails only
 * when the store does (UNAVAILABLE: nothing accepted, nothing consumed).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "boltseal/v1/telemetry.pb-c.h"
#include "common/b64.h"
#include "common/hex.h"
#include "exec/workq.h"
#include "formats/sigverify.h"
#include "formats/tlm_batch.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/services.h"
#include "services/vehicles/registry.h"
#include "store/store.h"

#define TLM_NS "telemetry"
#define REPLAY_WINDOW 64
#define SPKI_MAX 512
#define KEY_CACHE_SLOTS 4096        /* identity keys kept parsed, direct-mapped by key id */

/*
 * A parsed identity key. The key id is the SHA-256 of the key's DER SPKI,
 * so a slot can never hold another key under an id: no invalidation is
 * needed (validity and revocation are read from the registry every time).
 */
struct key_slot {
	uint8_t kid[TLM_KID_LEN];
	EVP_PKEY *pkey;                 /* NULL: empty */
	enum bs_alg alg;
};

struct tlm_state {
	struct svc_ctx *svc;
	int64_t max_skew_ms;
	int64_t max_window_ms;
	size_t batch_max;
	pthread_mutex_t cache_lock;     /* the worker threads share the cache */
	struct key_slot *cache;
};

/* One batch's verdict in the making. */
struct item {
	const Boltseal__V1__TelemetryBatch *in;     /* the request's (borrowed) */
	struct tlm_batch b;
	int decoded;
	Boltseal__V1__TelemetryVerdictCode code;    /* 0 while undecided */
	char reason[200];
	char key_id[2 * TLM_KID_LEN + 1];
	size_t vehicle;                             /* index into the job's vehicles */
};

/* A vehicle of the call: its record, read once. */
struct vehicle {
	const char *id;                             /* an item's b.vehicle_id */
	json_t *rec;                                /* NULL: not registered */
	uint64_t high, bitmap;                      /* the replay window (step 3) */
	uint64_t row_version;
	int touched;
};

struct tjob {
	struct workq_job job;                       /* first */
	struct rpc_call *call;
	struct tlm_state *st;
	int single;                                 /* VerifyTelemetryBatch */
	struct item *items;
	size_t n;
	struct vehicle *veh;
	size_t nveh;
	int64_t now_ms;
	int rc;                                     /* the store's failure */
};

static void
tjob_free(struct tjob *j)
{
	for (size_t i = 0; i < j->nveh; i++)
		json_decref(j->veh[i].rec);
	free(j->veh);
	free(j->items);
	free(j);
}

static void refuse(struct item *it, Boltseal__V1__TelemetryVerdictCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
refuse(struct item *it, Boltseal__V1__TelemetryVerdictCode code, const char *fmt, ...)
{
	va_list ap;

	it->code = code;
	va_start(ap, fmt);
	(void)vsnprintf(it->reason, sizeof(it->reason), fmt, ap);
	va_end(ap);
}

/* ---- step 1: the token, the window, the clock ---------------------------------------------- */

static void
decode(struct tjob *j, struct item *it)
{
	const char *why = NULL;
	int64_t off;

	if (tlm_batch_decode(it->in->token.data, it->in->token.len, &it->b, &why) != 0) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__MALFORMED, "%s",
		    why != NULL ? why : "the token does not decode");
		return;
	}
	it->b.w.vehicle_id = it->b.vehicle_id;
	it->decoded = 1;
	bs_hex_encode(it->b.kid, TLM_KID_LEN, it->key_id);
	if (it->b.w.end_ms - it->b.w.start_ms > j->st->max_window_ms) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__WINDOW_INVALID, "the window is %" PRId64
		    " ms long, more than telemetry.max_window_s allows",
		    it->b.w.end_ms - it->b.w.start_ms);
		return;
	}
	off = it->b.w.end_ms - j->now_ms;
	if (off > j->st->max_skew_ms || -off > j->st->max_skew_ms)
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__CLOCK_SKEW, "the window ends %" PRId64
		    " ms %s the server's clock, more than telemetry.max_skew_s",
		    off > 0 ? off : -off, off > 0 ? "after" : "before");
}

/* ---- step 2: the registry, the signature, the identity at the window ----------------------- */

/* The vehicle's index in j->veh, reading its record on first sight. -1 on a store error. */
static int
vehicle_index(struct tjob *j, struct store_txn *tx, const char *id, size_t *out)
{
	uint64_t rv;
	int rc;

	for (size_t i = 0; i < j->nveh; i++)
		if (strcmp(j->veh[i].id, id) == 0) {
			*out = i;
			return 0;
		}
	/* j->veh has room for one per item */
	j->veh[j->nveh].id = id;
	rc = vehicle_read(tx, id, 0, &j->veh[j->nveh].rec, &rv);
	if (rc != 0 && rc != BS_ERR_NOT_FOUND)
		return rc;
	*out = j->nveh++;
	return 0;
}

/* The identity of rec whose key_id is kid (hex), or NULL. */
static const json_t *
identity_of(const json_t *rec, const char *kid)
{
	const json_t *id;
	size_t i;

	json_array_foreach(json_object_get(rec, "identities"), i, id) {
		const char *k = json_string_value(json_object_get(id, "key_id"));

		if (k != NULL && strcmp(k, kid) == 0)
			return id;
	}
	return NULL;
}

/*
 * The parsed key of identity kid, whose base64 SPKI the registry holds: from
 * the cache, or parsed and cached. *pkey is a reference (EVP_PKEY_free it).
 * 0 or BS_ERR_INVALID (not a usable key, or not the key kid names).
 */
static int
key_get(struct tlm_state *st, const uint8_t kid[TLM_KID_LEN], const char *b64, EVP_PKEY **pkey,
    enum bs_alg *alg)
{
	struct key_slot *slot = &st->cache[(kid[0] | (size_t)kid[1] << 8) % KEY_CACHE_SLOTS];
	uint8_t spki[SPKI_MAX], h[SHA256_DIGEST_LENGTH];
	size_t len = 0;
	EVP_PKEY *k = NULL, *old;

	pthread_mutex_lock(&st->cache_lock);
	if (slot->pkey != NULL && memcmp(slot->kid, kid, TLM_KID_LEN) == 0 &&
	    EVP_PKEY_up_ref(slot->pkey) == 1) {
		*pkey = slot->pkey;
		*alg = slot->alg;
		pthread_mutex_unlock(&st->cache_lock);
		return 0;
	}
	pthread_mutex_unlock(&st->cache_lock);
	if (b64 == NULL || bs_b64_decode(b64, strlen(b64), 0, spki, sizeof(spki), &len) != 0 ||
	    len > sizeof(spki))
		return BS_ERR_INVALID;
	SHA256(spki, len, h);
	if (memcmp(h, kid, TLM_KID_LEN) != 0 || sigverify_key_parse(spki, len, &k, alg) != 0)
		return BS_ERR_INVALID;
	if (EVP_PKEY_up_ref(k) != 1) {
		EVP_PKEY_free(k);
		return BS_ERR_NOMEM;
	}
	pthread_mutex_lock(&st->cache_lock);
	old = slot->pkey;
	memcpy(slot->kid, kid, TLM_KID_LEN);
	slot->pkey = k;
	slot->alg = *alg;
	pthread_mutex_unlock(&st->cache_lock);
	EVP_PKEY_free(old);
	*pkey = k;
	return 0;
}

static void
check_identity(struct tjob *j, struct item *it)
{
	const struct vehicle *v = &j->veh[it->vehicle];
	const struct tlm_window *w = &it->b.w;
	const json_t *id;
	uint8_t h[SHA256_DIGEST_LENGTH];
	int64_t nb, na, rv;
	EVP_PKEY *key = NULL;
	enum bs_alg alg = BS_ALG_NONE;
	int rc;

	if (v->rec == NULL) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__UNKNOWN_VEHICLE, "vehicle '%s' is not "
		    "registered", w->vehicle_id);
		return;
	}
	if (vehicle_status_of(v->rec) != VEHICLE_ACTIVE) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__VEHICLE_NOT_ACTIVE, "vehicle '%s' is %s",
		    w->vehicle_id, json_string_value(json_object_get(v->rec, "status")));
		return;
	}
	if ((id = identity_of(v->rec, it->key_id)) == NULL) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__UNKNOWN_KEY, "key %.16s... is not an "
		    "identity key of vehicle '%s'", it->key_id, w->vehicle_id);
		return;
	}
	if (key_get(j->st, it->b.kid, json_string_value(json_object_get(id, "public_key")), &key,
	    &alg) != 0 ||
	    alg != (it->b.alg == TLM_ALG_ES256 ? BS_ALG_ECDSA_P256_SHA256 : BS_ALG_ED25519)) {
		EVP_PKEY_free(key);
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__BAD_SIGNATURE, "the token's alg does "
		    "not fit the identity key's type");
		return;
	}
	rc = sigverify_verify_key(key, alg, 0, it->b.tbs, it->b.tbs_len, it->b.sig, TLM_SIG_LEN,
	    BS_SIGFMT_RAW);
	EVP_PKEY_free(key);
	if (rc != 0) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__BAD_SIGNATURE, "the signature does not "
		    "verify with identity key %.16s...", it->key_id);
		return;
	}
	nb = json_integer_value(json_object_get(id, "not_before"));
	na = json_integer_value(json_object_get(id, "not_after"));
	rv = json_integer_value(json_object_get(id, "revoked_at"));
	if (nb != 0 && w->start_ms < nb * 1000) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__KEY_NOT_YET_VALID, "the window starts "
		    "before the identity's certificate was valid (notBefore %" PRId64 ")", nb);
		return;
	}
	if (na != 0 && w->end_ms > na * 1000) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__KEY_EXPIRED, "the window ends after the "
		    "identity's certificate expired (notAfter %" PRId64 ")", na);
		return;
	}
	if (rv != 0 && rv * 1000 <= w->end_ms) {
		refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__KEY_REVOKED, "the identity was revoked "
		    "at %" PRId64 ", before the window's end (%s)", rv,
		    json_string_value(json_object_get(id, "revoked_reason")));
		return;
	}
	if (it->in->samples.len > 0) {
		SHA256(it->in->samples.data, it->in->samples.len, h);
		if (memcmp(h, w->samples_sha256, sizeof(h)) != 0)
			refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__SAMPLES_MISMATCH, "the samples "
			    "sent (%zu bytes) do not hash to the token's h", it->in->samples.len);
	}
}

/* ---- step 3: sequence numbers ------------------------------------------------------------------ */

static int
window_read(struct store_txn *tx, struct vehicle *v)
{
	char row[STORE_ID_MAX + 1];
	uint8_t *d = NULL;
	size_t len = 0;
	int rc;

	snprintf(row, sizeof(row), "seq/%s", v->id);
	rc = store_row_get(tx, TLM_NS, row, &d, &len, &v->row_version);
	if (rc == BS_ERR_NOT_FOUND) {
		v->row_version = 0;
		v->high = v->bitmap = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (len != 16) {
		free(d);
		return BS_ERR_INTERNAL;
	}
	v->high = v->bitmap = 0;
	for (int i = 0; i < 8; i++) {
		v->high = v->high << 8 | d[i];
		v->bitmap = v->bitmap << 8 | d[8 + i];
	}
	free(d);
	return 0;
}

static int
window_write(struct store_txn *tx, const struct vehicle *v)
{
	char row[STORE_ID_MAX + 1];
	uint8_t d[16];

	for (int i = 0; i < 8; i++) {
		d[i] = (uint8_t)(v->high >> (56 - 8 * i));
		d[8 + i] = (uint8_t)(v->bitmap >> (56 - 8 * i));
	}
	snprintf(row, sizeof(row), "seq/%s", v->id);
	return store_row_put(tx, TLM_NS, row, v->row_version, d, sizeof(d), NULL);
}

/* Sliding window (bit k: high - k seen): 1 if seq is fresh (and now seen), 0 if not. */
static int
window_take(struct vehicle *v, uint64_t seq)
{
	uint64_t back;

	if (seq > v->high) {
		back = seq - v->high;
		v->bitmap = back >= REPLAY_WINDOW ? 0 : v->bitmap << back;
		v->bitmap |= 1;
		v->high = seq;
		return 1;
	}
	back = v->high - seq;
	if (back >= REPLAY_WINDOW || (v->bitmap >> back & 1))
		return 0;
	v->bitmap |= UINT64_C(1) << back;
	return 1;
}

static int
sequences(struct tjob *j)
{
	struct store_txn *tx;
	int rc;

	if ((rc = store_begin(j->st->svc->store, &tx)) != 0)
		return rc;
	for (size_t i = 0; i < j->n; i++) {
		struct item *it = &j->items[i];
		struct vehicle *v;

		if (it->code != 0)
			continue;
		v = &j->veh[it->vehicle];
		if (!v->touched) {
			if ((rc = window_read(tx, v)) != 0)
				goto fail;
			v->touched = 1;
		}
		if (!window_take(v, it->b.w.seq)) {
			refuse(it, BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__REPLAYED, "sequence %" PRIu64
			    " of vehicle '%s' was seen already, or is more than %d behind the highest "
			    "seen (%" PRIu64 ")", it->b.w.seq, v->id, REPLAY_WINDOW, v->high);
			continue;
		}
		it->code = BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__ACCEPTED;
	}
	for (size_t i = 0; i < j->nveh; i++)
		if (j->veh[i].touched && (rc = window_write(tx, &j->veh[i])) != 0)
			goto fail;
	return store_commit(tx);
fail:
	store_rollback(tx);
	return rc;
}

static void
work(struct workq_job *job, void *ctx)
{
	struct tjob *j = (struct tjob *)job;
	struct store_txn *tx;
	size_t i;
	int rc;

	(void)ctx;
	for (i = 0; i < j->n; i++)
		decode(j, &j->items[i]);
	if ((rc = store_begin_read(j->st->svc->store, &tx)) != 0) {
		j->rc = rc;
		return;
	}
	for (i = 0; i < j->n; i++) {
		struct item *it = &j->items[i];

		if (it->code != 0)
			continue;
		if ((rc = vehicle_index(j, tx, it->b.vehicle_id, &it->vehicle)) != 0) {
			store_rollback(tx);
			j->rc = rc;
			return;
		}
	}
	store_rollback(tx);
	for (i = 0; i < j->n; i++)
		if (j->items[i].code == 0)
			check_identity(j, &j->items[i]);
	j->rc = sequences(j);
	/* the store failed: nothing was consumed, so nothing is accepted */
	for (i = 0; j->rc != 0 && i < j->n; i++)
		if (j->items[i].code == BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__ACCEPTED)
			j->items[i].code = 0;
}

/* ---- the answer -------------------------------------------------------------------------------- */

static void
verdict_of(const struct item *it, Boltseal__V1__TelemetryVerdict *v)
{
	boltseal__v1__telemetry_verdict__init(v);
	v->code = it->code;
	v->reason = (char *)it->reason;
	v->vehicle_id = (char *)it->b.vehicle_id;
	v->key_id = (char *)it->key_id;
	if (it->decoded) {
		v->seq = it->b.w.seq;
		v->window_start_ms = it->b.w.start_ms;
		v->window_end_ms = it->b.w.end_ms;
		v->samples = it->b.w.samples;
	}
}

static void
done(struct workq_job *job)
{
	struct tjob *j = (struct tjob *)job;
	const struct item *first = NULL;
	Boltseal__V1__TelemetryVerdict *vs = NULL, **vp = NULL;
	char na[24], nr[24];
	size_t accepted = 0;

	if (j->rc != 0) {
		rpc_call_fail(j->call, rpc_status_from_err(j->rc), "cannot read or keep the vehicles' "
		    "state: %s; no batch was accepted", bs_strerror(j->rc));
		tjob_free(j);
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		if (j->items[i].code == BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__ACCEPTED)
			accepted++;
		else if (first == NULL)
			first = &j->items[i];
	}
	snprintf(na, sizeof(na), "%zu", accepted);
	snprintf(nr, sizeof(nr), "%zu", j->n - accepted);
	if (rpc_call_audit_field(j->call, "accepted", na) != 0 ||
	    rpc_call_audit_field(j->call, "refused", nr) != 0 ||
	    (first != NULL && rpc_call_audit_field(j->call, "first_refusal",
	    protobuf_c_enum_descriptor_get_value(&boltseal__v1__telemetry_verdict_code__descriptor,
	    first->code)->name) != 0)) {
		rpc_call_fail(j->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		tjob_free(j);
		return;
	}
	if (j->single) {
		Boltseal__V1__TelemetryVerdict v;

		verdict_of(&j->items[0], &v);
		rpc_call_finish_pb(j->call, &v.base);
	} else if ((vs = calloc(j->n > 0 ? j->n : 1, sizeof(*vs))) == NULL ||
	    (vp = calloc(j->n > 0 ? j->n : 1, sizeof(*vp))) == NULL) {
		rpc_call_fail(j->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		Boltseal__V1__VerifyTelemetryBatchesResponse r =
		    BOLTSEAL__V1__VERIFY_TELEMETRY_BATCHES_RESPONSE__INIT;

		for (size_t i = 0; i < j->n; i++) {
			verdict_of(&j->items[i], &vs[i]);
			vp[i] = &vs[i];
		}
		r.verdicts = vp;
		r.n_verdicts = j->n;
		r.accepted = (uint32_t)accepted;
		rpc_call_finish_pb(j->call, &r.base);
	}
	free(vp);
	free(vs);
	tjob_free(j);
}

/* ---- the RPCs ---------------------------------------------------------------------------------- */

static void
start(struct rpc_call *call, Boltseal__V1__TelemetryBatch *const *batches, size_t n, int single)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct tlm_state *st = rpc_call_service_state(call);
	struct tjob *j;

	if (svc->store == NULL || svc->work == NULL || st == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "telemetry service not started");
		return;
	}
	if (n == 0 || n > st->batch_max) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "batches: 1 to %zu in one call "
		    "(telemetry.batch_max)", st->batch_max);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (batches[i] == NULL) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "batch %zu is missing", i);
			return;
		}
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->items = calloc(n, sizeof(*j->items))) == NULL ||
	    (j->veh = calloc(n, sizeof(*j->veh))) == NULL) {
		if (j != NULL)
			tjob_free(j);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->call = call;
	j->st = st;
	j->single = single;
	j->n = n;
	j->now_ms = (int64_t)time(NULL) * 1000;
	for (size_t i = 0; i < n; i++)
		j->items[i].in = batches[i];
	j->job.work = work;
	j->job.done = done;
	if (workq_submit(svc->work, &j->job) != 0) {
		tjob_free(j);
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "server busy");
	}
}

static void
verify_one(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__VerifyTelemetryBatchRequest *r =
	    (const Boltseal__V1__VerifyTelemetryBatchRequest *)msg;

	start(call, &r->batch, r->batch != NULL ? 1 : 0, 1);
}

static void
verify_many(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__VerifyTelemetryBatchesRequest *r =
	    (const Boltseal__V1__VerifyTelemetryBatchesRequest *)msg;

	start(call, r->batches, r->n_batches, 0);
}

static const struct rpc_method methods[] = {
	{ "VerifyTelemetryBatch", &boltseal__v1__verify_telemetry_batch_request__descriptor,
	    &boltseal__v1__telemetry_verdict__descriptor, RPC_AUTHZ_POLICY, 0, verify_one },
	{ "VerifyTelemetryBatches", &boltseal__v1__verify_telemetry_batches_request__descriptor,
	    &boltseal__v1__verify_telemetry_batches_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    verify_many },
};

/* telemetry.* settings, in this order (values[] of init). */
static const struct rpc_setting settings[] = {
	/* how far a window's end may be from the server's clock, either way */
	{ "max_skew_s", 1, 86400, 300, 0 },
	/* the longest sampling window */
	{ "max_window_s", 1, 86400, 3600, 0 },
	/* batches in one VerifyTelemetryBatches call */
	{ "batch_max", 1, 10000, 1000, 0 },
};

static int
init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct tlm_state *st = calloc(1, sizeof(*st));

	if (st == NULL || (st->cache = calloc(KEY_CACHE_SLOTS, sizeof(*st->cache))) == NULL ||
	    pthread_mutex_init(&st->cache_lock, NULL) != 0) {
		if (st != NULL)
			free(st->cache);
		free(st);
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	st->svc = env;
	st->max_skew_ms = (int64_t)values[0] * 1000;
	st->max_window_ms = (int64_t)values[1] * 1000;
	st->batch_max = values[2];
	*state = st;
	return 0;
}

static void
fini(void *state)
{
	struct tlm_state *st = state;

	for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
		EVP_PKEY_free(st->cache[i].pkey);
	free(st->cache);
	pthread_mutex_destroy(&st->cache_lock);
	free(st);
}

const struct rpc_service telemetry_service = {
	.name = "boltseal.v1.TelemetryService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "telemetry",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = init,
	.fini = fini,
};
