/*
 * test_keyservice.c - unit tests of boltseal.v1.KeyService's handlers
 * (src/services/keys) without sockets and without an HSM: the RPC layer's
 * dispatcher with a fake transport (rpc_harness.h), a real catalog on a
 * temporary store, a real policy and work queue, and a fake key side behind
 * the real key door codec (keyclient_new_serve). The fake key side signs
 * with OpenSSL software keys, so every signature the service returns is
 * checked with OpenSSL against the key's public key. Covers: Sign (DER and
 * raw, message and digest), the verdict before any key operation, purpose
 * and input checks that never reach the key side, the key side's errors
 * mapped to statuses, SignBatch split into one SIGN per worker slice with
 * refused items kept in place, CreateKey through GENERATE and the catalog,
 * Verify on the work queue, health through PROBE, callers that leave
 * while a key operation or a catalog write is under way, and key changes
 * against a real audit log: recorded before they are made or answered even
 * when the queue is full of ordinary records, not made when their record
 * cannot be written or queued.
 */
#define _GNU_SOURCE                  /* getline */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "audit/auditlog.h"
#include "boltseal/v1/keys.pb-c.h"
#include "daemon/bs_config.h"
#include "exec/workq.h"
#include "formats/ecdsa_sig.h"
#include "formats/sigverify.h"
#include "grpc/health/v1/health.pb-c.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_service.h"
#include "services/services.h"
#include "rpc_harness.h"
#include "fsync_gate.h"

#define OK_URI "spiffe://t.example/ci"
#define KS "/boltseal.v1.KeyService/"

extern const struct rpc_service keyservice_service;
extern const struct rpc_service health_service;
extern const struct rpc_service auditservice_service;

static const char policy_text[] =
    "principal ci\n"
    "    uri " OK_URI "\n"
    "    roles signer\n"
    "role signer\n"
    "    grant\n"
    "        methods boltseal.v1.KeyService/*\n"
    "        keys t-*\n"
    "    grant\n"
    "        methods boltseal.v1.KeyService/ListKeys\n";

/* ---- the fake key side ------------------------------------------------------ */

#define FAKE_KEYS 8

struct fake_key {
	char name[KEYOPS_NAME_MAX + 1];
	uint32_t version;
	EVP_PKEY *pkey;
};

/* A call the fake key side detaches when it serves the second SIGN (a client leaving mid-batch). */
static struct rpc_call *detach_at_second_sign;

static struct fake_side {
	struct fake_key keys[FAKE_KEYS];
	size_t nkeys;
	int calls[KEYOP_PROBE + 1];      /* operations seen, by type */
	size_t last_ninputs;
	int fail_rc;                     /* answer every operation with this rc */
	int dead;                        /* PROBE says not alive */
} fk;

static struct fake_key *
fake_find(const struct keyop_key *k)
{
	for (size_t i = 0; i < fk.nkeys; i++)
		if (fk.keys[i].version == k->version && strcmp(fk.keys[i].name, k->name) == 0)
			return &fk.keys[i];
	return NULL;
}

static EVP_PKEY *
new_p256(void)
{
	EVP_PKEY *p = EVP_EC_gen("P-256");

	assert_non_null(p);
	return p;
}

/* DER SPKI of p, malloc'd. */
static uint8_t *
spki_of(EVP_PKEY *p, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(p, &der);
	uint8_t *out;

	assert_true(n > 0);
	out = malloc((size_t)n);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*len = (size_t)n;
	return out;
}

/* SIGN the way the key side does: digest (given or SHA-256), ECDSA, raw r||s. */
static void
fake_sign(EVP_PKEY *p, const struct keyop_input *in, struct keyop_sig *out)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(p, NULL);
	uint8_t der[128];
	size_t dlen = sizeof(der);

	if (in->is_digest)
		memcpy(out->payload_sha256, in->data, 32);
	else
		assert_int_equal(EVP_Digest(in->data, in->len, out->payload_sha256, NULL,
		    EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, der, &dlen, out->payload_sha256, 32), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(ecdsa_sig_der_to_raw(der, dlen, out->sig), 0);
	out->sig_len = ECDSA_P256_RAW_LEN;
}

static int
fake_serve(void *arg, const uint8_t *req, size_t len, uint8_t **ans, size_t *anslen)
{
	struct keyop_request r;
	struct keyop_answer a;
	struct fake_key *k;
	int rc;

	(void)arg;
	if ((rc = keyops_request_decode(req, len, &r)) != 0)
		return rc;
	memset(&a, 0, sizeof(a));
	a.type = r.type;
	fk.calls[r.type]++;
	if (r.type == KEYOP_SIGN && fk.calls[KEYOP_SIGN] == 2 && detach_at_second_sign != NULL) {
		struct rpc_call *c = detach_at_second_sign;

		detach_at_second_sign = NULL;
		rpc_call_detach(c);
	}
	if (fk.fail_rc != 0) {
		a.rc = fk.fail_rc;
	} else if (r.type == KEYOP_SIGN) {
		fk.last_ninputs = r.ninputs;
		if ((k = fake_find(&r.key)) == NULL || r.alg != BS_ALG_ECDSA_P256_SHA256) {
			a.rc = BS_ERR_NOT_FOUND;
		} else {
			a.sigs = calloc(r.ninputs, sizeof(*a.sigs));
			a.nsigs = r.ninputs;
			for (size_t i = 0; i < r.ninputs; i++)
				fake_sign(k->pkey, &r.inputs[i], &a.sigs[i]);
		}
	} else if (r.type == KEYOP_GENERATE) {
		assert_true(fk.nkeys < FAKE_KEYS);
		k = &fk.keys[fk.nkeys++];
		snprintf(k->name, sizeof(k->name), "%s", r.key.name);
		k->version = r.key.version;
		k->pkey = new_p256();
		memset(a.id, (int)fk.nkeys, sizeof(a.id));
		a.spki = spki_of(k->pkey, &a.spki_len);
	} else if (r.type == KEYOP_PROBE) {
		a.alive = !fk.dead;
	}
	rc = keyops_answer_encode(&a, ans, anslen);
	keyop_answer_clear(&a);
	keyop_request_clear(&r);
	return rc;
}

/* ---- fixture -------------------------------------------------------------------- */

struct fixture {
	char tmp[64];
	struct event_base *base;
	struct rpc_registry *reg;
	struct policy *pol;
	struct rpc_dispatcher *d;
	struct catalog *cat;
	struct workq *work;
	struct bs_config cfg;
	struct svc_ctx svc;
	uint8_t *spki;                   /* of t-sign v1 */
	size_t spki_len;
	char audit_path[160];            /* setup_audit: the log file */
	struct fake_stream afs[2];       /* begin_call's streams (outlive a failed test) */
	struct rpc_call *open_calls[2];  /* begin_call: still attached (end_call) */
};

/* A catalog key backed by a fake key side key. */
static void
add_key(struct fixture *f, const char *name, enum bs_purpose purpose)
{
	struct catalog_key k;
	struct catalog_version v;
	struct fake_key *fkey = &fk.keys[fk.nkeys++];

	snprintf(fkey->name, sizeof(fkey->name), "%s", name);
	fkey->version = 1;
	fkey->pkey = new_p256();
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	snprintf(k.name, sizeof(k.name), "%s", name);
	k.purpose = purpose;
	k.alg = BS_ALG_ECDSA_P256_SHA256;
	k.state = BS_KEY_ENABLED;
	k.created = 1700000000;
	v.version = 1;
	v.state = BS_KEY_ENABLED;
	v.created = k.created;
	memset(v.hsm_id, (int)fk.nkeys + 100, sizeof(v.hsm_id));
	v.spki = spki_of(fkey->pkey, &v.spki_len);
	assert_int_equal(catalog_db_add_version(f->cat, &k, &v), 0);
	assert_int_equal(catalog_mem_add_version(f->cat, &k, &v), 0);
	if (strcmp(name, "t-sign") == 0) {
		f->spki = v.spki;
		f->spki_len = v.spki_len;
	} else {
		free(v.spki);
	}
}

static int
setup(void **state)
{
	const struct rpc_service *svcs[] = { &keyservice_service, &health_service,
		&auditservice_service };
	struct workq_opts wo = { 2, 64, NULL, NULL, NULL, "work" };
	struct rpc_dispatcher_opts o;
	struct fixture *f = calloc(1, sizeof(*f));
	char err[1024], path[256];

	assert_non_null(f);
	memset(&fk, 0, sizeof(fk));
	harness_tmpdir(f->tmp, sizeof(f->tmp));
	assert_non_null(f->base = event_base_new());
	assert_int_equal(rpc_registry_new(svcs, 3, &f->reg, err, sizeof(err)), 0);
	f->pol = harness_policy(f->tmp, policy_text, f->reg);
	snprintf(path, sizeof(path), "%s/catalog.db", f->tmp);
	if (catalog_open(path, &f->cat, err, sizeof(err)) != 0)
		fail_msg("catalog_open: %s", err);
	assert_int_equal(workq_new(f->base, &wo, &f->work), 0);
	f->cfg.sign_batch_max = 100;
	f->svc.catalog = f->cat;
	f->svc.cfg = &f->cfg;
	f->svc.registry = f->reg;
	f->svc.work = f->work;
	f->svc.nworkers = 2;
	f->svc.hsm_healthy = 1;
	f->svc.tls_ready = 1;
	assert_int_equal(keyclient_new_serve(f->base, fake_serve, NULL, &f->svc.keys), 0);
	o.registry = f->reg;
	o.env = &f->svc;
	o.audit = NULL;
	assert_int_equal(rpc_dispatcher_new(&o, &f->d), 0);
	rpc_dispatcher_set_policy(f->d, f->pol);
	add_key(f, "t-sign", BS_PURPOSE_GENERIC);
	add_key(f, "t-ota", BS_PURPOSE_OTA);
	add_key(f, "x-other", BS_PURPOSE_GENERIC);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	harness_pump_idle(f->base, f->d);
	assert_int_equal(rpc_dispatcher_calls(f->d), 0);
	rpc_dispatcher_free(f->d);
	workq_free(f->work);
	keyclient_free(f->svc.keys);
	catalog_close(f->cat);
	policy_free(f->pol);
	rpc_registry_free(f->reg);
	event_base_free(f->base);
	for (size_t i = 0; i < fk.nkeys; i++)
		EVP_PKEY_free(fk.keys[i].pkey);
	free(f->spki);
	harness_rmdir(f->tmp);
	free(f);
	return 0;
}

/* Calls path with msg as OK_URI and waits for the answer. */
static void
call(struct fixture *f, const char *path, const ProtobufCMessage *msg, struct fake_stream *fs)
{
	uint8_t buf[4096];
	size_t n = protobuf_c_message_get_packed_size(msg);
	struct rpc_call *c;

	assert_true(n <= sizeof(buf));
	(void)protobuf_c_message_pack(msg, buf);
	c = harness_begin(f->d, OK_URI, fs);
	harness_send(c, path, buf, n);
	assert_true(harness_pump(f->base, &fs->answers));
	rpc_call_detach(c);
}

/* ---- Sign ------------------------------------------------------------------------- */

static void
test_sign_der_and_raw(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[] = "firmware 1.2.3";
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	Boltseal__V1__SignResponse *resp;
	struct fake_stream fs;

	r.key_name = "t-sign";
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = msg;
	r.message.len = sizeof(msg) - 1;
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	resp = boltseal__v1__sign_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_string_equal(resp->key_name, "t-sign");
	assert_int_equal(resp->key_version, 1);
	assert_int_equal(resp->algorithm, BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256);
	assert_int_equal(sigverify_verify(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256, 0, msg,
	    sizeof(msg) - 1, resp->signature.data, resp->signature.len, BS_SIGFMT_DER), 0);
	boltseal__v1__sign_response__free_unpacked(resp, NULL);

	r.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__RAW;
	call(f, KS "Sign", &r.base, &fs);
	resp = boltseal__v1__sign_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_int_equal(resp->signature.len, 64);
	assert_int_equal(sigverify_verify(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256, 0, msg,
	    sizeof(msg) - 1, resp->signature.data, resp->signature.len, BS_SIGFMT_RAW), 0);
	boltseal__v1__sign_response__free_unpacked(resp, NULL);
	assert_int_equal(fk.calls[KEYOP_SIGN], 2);
}

static void
test_sign_refusals_never_reach_the_key_side(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[] = "x", short_digest[31];
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	struct fake_stream fs;

	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = msg;
	r.message.len = 1;
	r.key_name = "x-other";              /* no grant: denied */
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
	r.key_name = "t-missing";            /* granted name, no such key */
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_NOT_FOUND);
	r.key_name = "t-ota";                /* purpose ota: not for Sign */
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_FAILED_PRECONDITION);
	r.key_name = "t-sign";
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
	r.digest.data = short_digest;
	r.digest.len = sizeof(short_digest);
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(fs.message, "digest must be a 32-byte SHA-256 digest");
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.signature_format = (Boltseal__V1__SignatureFormat)7;
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(fk.calls[KEYOP_SIGN], 0);
}

static void
test_key_side_errors_become_statuses(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[] = "x";
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	struct fake_stream fs;

	r.key_name = "t-sign";
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = msg;
	r.message.len = 1;
	fk.fail_rc = BS_ERR_HSM;
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(fs.message, "signing failed"));
	assert_int_equal(f->svc.hsm_healthy, 0);
	fk.fail_rc = 0;
	call(f, KS "Sign", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(f->svc.hsm_healthy, 1);
}

/* ---- SignBatch ---------------------------------------------------------------------- */

static void
test_sign_batch_slices_and_item_order(void **state)
{
	struct fixture *f = *state;
	static uint8_t msgs[5][8] = { "m0", "m1", "m2", "m3", "m4" };
	Boltseal__V1__SignBatchRequest r = BOLTSEAL__V1__SIGN_BATCH_REQUEST__INIT;
	Boltseal__V1__SignBatchItem items[5], *ptrs[5];
	Boltseal__V1__SignBatchResponse *resp;
	struct fake_stream fs;

	for (int i = 0; i < 5; i++) {
		boltseal__v1__sign_batch_item__init(&items[i]);
		items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_MESSAGE;
		items[i].message.data = msgs[i];
		items[i].message.len = 2;
		ptrs[i] = &items[i];
	}
	items[2].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;   /* 2 bytes: refused */
	items[2].digest.data = msgs[2];
	items[2].digest.len = 2;
	r.key_name = "t-sign";
	r.items = ptrs;
	r.n_items = 5;
	call(f, KS "SignBatch", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	/* two workers: two slices, one SIGN each; the refused item never went */
	assert_int_equal(fk.calls[KEYOP_SIGN], 2);
	resp = boltseal__v1__sign_batch_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_int_equal(resp->n_results, 5);
	for (int i = 0; i < 5; i++) {
		if (i == 2) {
			assert_int_equal(resp->results[i]->status_code, GRPC_STATUS_INVALID_ARGUMENT);
			continue;
		}
		assert_int_equal(resp->results[i]->status_code, 0);
		assert_int_equal(sigverify_verify(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256, 0,
		    msgs[i], 2, resp->results[i]->signature.data, resp->results[i]->signature.len,
		    BS_SIGFMT_DER), 0);
	}
	boltseal__v1__sign_batch_response__free_unpacked(resp, NULL);

	/* every item refused on its own: answered without the key side */
	for (int i = 0; i < 5; i++)
		items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT__NOT_SET;
	call(f, KS "SignBatch", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fk.calls[KEYOP_SIGN], 2);
	r.n_items = 0;
	call(f, KS "SignBatch", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
}

/* ---- CreateKey, Verify, health ------------------------------------------------------ */

static void
test_create_key_through_generate(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__CreateKeyRequest r = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	Boltseal__V1__CreateKeyResponse *resp;
	const struct catalog_key *k;
	struct fake_stream fs;

	r.name = "t-new";
	r.algorithm = BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256;
	r.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	call(f, KS "CreateKey", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fk.calls[KEYOP_GENERATE], 1);
	resp = boltseal__v1__create_key_response__unpack(NULL, fs.a.msg_len, fs.msg);
	assert_non_null(resp);
	assert_string_equal(resp->key->name, "t-new");
	assert_int_equal(resp->key->primary_version, 1);
	boltseal__v1__create_key_response__free_unpacked(resp, NULL);
	assert_non_null(k = catalog_find(f->cat, "t-new"));
	assert_true(catalog_key_primary(k)->spki_len > 0);
	/* and it signs through the door at once */
	{
		static uint8_t msg[] = "new";
		Boltseal__V1__SignRequest s = BOLTSEAL__V1__SIGN_REQUEST__INIT;

		s.key_name = "t-new";
		s.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
		s.message.data = msg;
		s.message.len = 3;
		call(f, KS "Sign", &s.base, &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	}
	/* the same name again: refused before the key side */
	call(f, KS "CreateKey", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(fk.calls[KEYOP_GENERATE], 1);
	/* the key side refuses: nothing in the catalog */
	r.name = "t-fail";
	fk.fail_rc = BS_ERR_HSM;
	call(f, KS "CreateKey", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_UNAVAILABLE);
	assert_null(catalog_find(f->cat, "t-fail"));
	fk.fail_rc = 0;
}

static void
test_verify_on_the_work_queue(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[] = "verify me";
	Boltseal__V1__SignRequest s = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	Boltseal__V1__VerifyRequest v = BOLTSEAL__V1__VERIFY_REQUEST__INIT;
	Boltseal__V1__SignResponse *sr;
	Boltseal__V1__VerifyResponse *vr;
	struct fake_stream fs;
	uint8_t sig[128];
	size_t sig_len;

	s.key_name = "t-sign";
	s.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	s.message.data = msg;
	s.message.len = sizeof(msg) - 1;
	call(f, KS "Sign", &s.base, &fs);
	assert_non_null(sr = boltseal__v1__sign_response__unpack(NULL, fs.a.msg_len, fs.msg));
	sig_len = sr->signature.len;
	memcpy(sig, sr->signature.data, sig_len);
	boltseal__v1__sign_response__free_unpacked(sr, NULL);
	v.key_case = BOLTSEAL__V1__VERIFY_REQUEST__KEY_KEY_NAME;
	v.key_name = "t-sign";
	v.input_case = BOLTSEAL__V1__VERIFY_REQUEST__INPUT_MESSAGE;
	v.message.data = msg;
	v.message.len = sizeof(msg) - 1;
	v.signature.data = sig;
	v.signature.len = sig_len;
	call(f, KS "Verify", &v.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_non_null(vr = boltseal__v1__verify_response__unpack(NULL, fs.a.msg_len, fs.msg));
	assert_true(vr->valid);
	boltseal__v1__verify_response__free_unpacked(vr, NULL);
	sig[10] ^= 1;
	call(f, KS "Verify", &v.base, &fs);
	assert_non_null(vr = boltseal__v1__verify_response__unpack(NULL, fs.a.msg_len, fs.msg));
	assert_false(vr->valid);
	boltseal__v1__verify_response__free_unpacked(vr, NULL);
	assert_int_equal(fk.calls[KEYOP_SIGN], 1);    /* Verify never touches the key side */
}

static void
test_health_probes_the_key_side(void **state)
{
	struct fixture *f = *state;
	Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp;
	struct fake_stream fs;

	r.service = "boltseal.v1.KeyService";
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_non_null(resp = grpc__health__v1__health_check_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(resp->status,
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	fk.dead = 1;
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_non_null(resp = grpc__health__v1__health_check_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(resp->status,
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	assert_int_equal(fk.calls[KEYOP_PROBE], 2);
	/* the audit service's own say: no audit log here, so it does not serve */
	fk.dead = 0;
	r.service = "boltseal.v1.AuditService";
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_non_null(resp = grpc__health__v1__health_check_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(resp->status,
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	r.service = "";                       /* the server as a whole still serves */
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_non_null(resp = grpc__health__v1__health_check_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(resp->status,
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	r.service = "boltseal.v1.KeyService";
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_non_null(resp = grpc__health__v1__health_check_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(resp->status,
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	r.service = "boltseal.v1.NoSuchService";
	call(f, "/grpc.health.v1.Health/Check", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_NOT_FOUND);
}

/* ---- callers that leave at awkward moments (run under ASan by ./scripts/check) -------- */

static void
test_client_leaves_during_the_catalog_write(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__CreateKeyRequest r = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	uint8_t buf[256];
	size_t n;
	struct fake_stream fs;
	struct rpc_call *c;

	r.name = "t-left";
	r.algorithm = BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256;
	r.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	n = protobuf_c_message_get_packed_size(&r.base);
	(void)protobuf_c_message_pack(&r.base, buf);
	c = harness_begin(f->d, OK_URI, &fs);
	harness_send(c, KS "CreateKey", buf, n);
	(void)event_base_loop(f->base, EVLOOP_NONBLOCK);   /* GENERATE answered, its op freed */
	assert_int_equal(fk.calls[KEYOP_GENERATE], 1);
	rpc_call_detach(c);                                 /* during the catalog write */
	harness_pump_idle(f->base, f->d);
	assert_int_equal(fs.answers, 0);
	/* the key was made and recorded all the same: nothing is half done */
	assert_non_null(catalog_find(f->cat, "t-left"));
}

static void
test_client_leaves_between_batch_slices(void **state)
{
	struct fixture *f = *state;
	static uint8_t msgs[4][8] = { "m0", "m1", "m2", "m3" };
	Boltseal__V1__SignBatchRequest r = BOLTSEAL__V1__SIGN_BATCH_REQUEST__INIT;
	Boltseal__V1__SignBatchItem items[4], *ptrs[4];
	uint8_t buf[512];
	size_t n;
	struct fake_stream fs;
	struct rpc_call *c;

	for (int i = 0; i < 4; i++) {
		boltseal__v1__sign_batch_item__init(&items[i]);
		items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_MESSAGE;
		items[i].message.data = msgs[i];
		items[i].message.len = 2;
		ptrs[i] = &items[i];
	}
	r.key_name = "t-sign";
	r.items = ptrs;
	r.n_items = 4;
	n = protobuf_c_message_get_packed_size(&r.base);
	(void)protobuf_c_message_pack(&r.base, buf);
	c = harness_begin(f->d, OK_URI, &fs);
	detach_at_second_sign = c;
	harness_send(c, KS "SignBatch", buf, n);
	harness_pump_idle(f->base, f->d);
	assert_int_equal(fs.answers, 0);
	assert_int_equal(fk.calls[KEYOP_SIGN], 2);
}

static void
test_cancelled_probe_says_nothing_about_the_hsm(void **state)
{
	struct fixture *f = *state;
	Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	uint8_t buf[64];
	size_t n;
	struct fake_stream fs;
	struct rpc_call *c;

	n = protobuf_c_message_get_packed_size(&r.base);
	(void)protobuf_c_message_pack(&r.base, buf);
	c = harness_begin(f->d, OK_URI, &fs);
	harness_send(c, "/grpc.health.v1.Health/Check", buf, n);
	rpc_call_detach(c);          /* the client gives up before the probe ran */
	harness_pump_idle(f->base, f->d);
	assert_int_equal(fk.calls[KEYOP_PROBE], 0);
	assert_int_equal(f->svc.hsm_healthy, 1);
}

/* ---- key changes and the audit log ---------------------------------------------------- */

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs base for ms milliseconds, or until *flag (NULL: no flag) is set. Returns *flag. */
static int
pump_for(struct event_base *base, long ms, const int *flag)
{
	struct timespec t0, now;
	struct timeval tv = { 0, 2000 };
	struct event *t = evtimer_new(base, tick, NULL);

	assert_non_null(t);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (flag != NULL && *flag)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			break;
		assert_int_equal(evtimer_add(t, &tv), 0);
		(void)event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(t);
	return flag != NULL ? *flag : 0;
}

#define AQMAX 16                     /* the smallest audit_queue_max the config allows */

/* The fixture with a real audit log of queue_max AQMAX and reserve places (0: default). */
static int
setup_audit_reserve(void **state, unsigned reserve)
{
	struct fixture *f;
	struct audit_log_opts ao;
	struct rpc_dispatcher_opts o;
	char err[512] = "", dir[128];

	if (setup(state) != 0)
		return -1;
	f = *state;
	rpc_dispatcher_free(f->d);
	memset(&ao, 0, sizeof(ao));
	ao.queue_max = AQMAX;
	ao.reserve = reserve;
	snprintf(dir, sizeof(dir), "%s/audit", f->tmp);
	if (audit_log_open(dir, f->base, &ao, &f->svc.audit, err, sizeof(err)) != 0)
		fail_msg("audit_log_open: %s", err);
	snprintf(f->audit_path, sizeof(f->audit_path), "%s/audit.jsonl", dir);
	assert_int_equal(fsync_gate_watch(f->audit_path), 0);
	o.registry = f->reg;
	o.env = &f->svc;
	o.audit = f->svc.audit;
	assert_int_equal(rpc_dispatcher_new(&o, &f->d), 0);
	rpc_dispatcher_set_policy(f->d, f->pol);
	harness_audit_log = f->svc.audit;
	return 0;
}

static int
setup_audit(void **state)
{
	return setup_audit_reserve(state, 0);
}

static int
setup_audit_tiny_reserve(void **state)
{
	return setup_audit_reserve(state, 1);
}

static int
teardown_audit(void **state)
{
	struct fixture *f = *state;

	fsync_gate_set(0, 0);                  /* a failed test may have left the writer held */
	for (size_t i = 0; i < 2; i++)
		if (f->open_calls[i] != NULL)
			rpc_call_detach(f->open_calls[i]);
	harness_pump_idle(f->base, f->d);
	assert_int_equal(rpc_dispatcher_calls(f->d), 0);   /* so no record is owed to a call */
	audit_log_close(f->svc.audit);
	f->svc.audit = NULL;
	harness_audit_log = NULL;
	fsync_gate_reset();
	return teardown(state);
}

static void
filler_done(void *arg, int rc)
{
	(void)arg;
	(void)rc;
}

/*
 * Holds the audit writer in its fdatasync and fills the queue with
 * ordinary records until one is refused. Returns how many were queued.
 */
static unsigned
fill_audit_queue(struct fixture *f)
{
	struct audit_record r;
	unsigned n = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	r.type = AUDIT_RPC;
	r.key_version = -1;
	r.method = "boltseal.v1.KeyService/Sign";
	r.result = "OK";
	r.reason = "filler";
	fsync_gate_set(1, 0);
	assert_int_equal(audit_log_append(f->svc.audit, &r, filler_done, NULL), 0);
	n++;
	assert_true(fsync_gate_wait_held(10));   /* the writer holds it, at the gate */
	while ((rc = audit_log_append(f->svc.audit, &r, filler_done, NULL)) == 0)
		n++;
	assert_int_equal(rc, BS_ERR_QUEUE_FULL);
	return n;
}

/* The line of the audit file with all of needles, its index in *idx; NULL if none (caller frees). */
static char *
audit_line(struct fixture *f, const char *const *needles, size_t nneedles, size_t *idx)
{
	FILE *fp = fopen(f->audit_path, "r");
	char *line = NULL;
	size_t cap = 0, i = 0;
	ssize_t n;

	assert_non_null(fp);
	while ((n = getline(&line, &cap, fp)) > 0) {
		size_t k;

		for (k = 0; k < nneedles && strstr(line, needles[k]) != NULL; k++)
			;
		if (k == nneedles) {
			fclose(fp);
			*idx = i;
			return line;
		}
		i++;
	}
	free(line);
	fclose(fp);
	return NULL;
}

/* The value of "name":"..." in line, copied into out. */
static void
json_str(const char *line, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	assert_non_null(p = strstr(line, pat));
	p += strlen(pat);
	assert_non_null(e = strchr(p, '"'));
	assert_true((size_t)(e - p) < cap);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

/* Starts call i (0 or 1) of path with msg, answering into f->afs[i], which it returns. */
static struct fake_stream *
begin_call(struct fixture *f, size_t i, const char *path, const ProtobufCMessage *msg)
{
	uint8_t buf[512];
	size_t n = protobuf_c_message_get_packed_size(msg);
	struct fake_stream *fs = &f->afs[i];

	assert_true(i < 2 && f->open_calls[i] == NULL);
	assert_true(n <= sizeof(buf));
	(void)protobuf_c_message_pack(msg, buf);
	f->open_calls[i] = harness_begin(f->d, OK_URI, fs);
	harness_send(fs->call, path, buf, n);
	return fs;
}

/* The transport drops the stream of call i (answered or not). */
static void
end_call(struct fixture *f, size_t i)
{
	struct rpc_call *c = f->open_calls[i];

	f->open_calls[i] = NULL;
	rpc_call_detach(c);
}

/*
 * Issue 8: "a created or rotated key is durable and usable before its audit
 * record is queued, and a full audit queue drops that record into a count".
 * The audit queue is full of ordinary records (the writer held, the log
 * healthy) when a CreateKey and a RotateKey come: both changes must wait
 * for their records (no answer, not in the catalog while the writer is
 * held), and once it goes on, the log must hold a "key" record for each,
 * written before the change was answered.
 */
static void
test_key_changes_recorded_when_the_audit_queue_is_full(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__CreateKeyRequest cr = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	Boltseal__V1__RotateKeyRequest rr = BOLTSEAL__V1__ROTATE_KEY_REQUEST__INIT;
	struct fake_stream *cfs, *rfs;
	const char *want_created[] = { "\"type\":\"key\"", "\"key\":\"t-new\",\"key_version\":1,",
		"\"result\":\"OK\",\"reason\":null,\"event\":\"key_created\"",
		"\"method\":\"boltseal.v1.KeyService/CreateKey\"", "\"principal_id\":\"ci\"",
		"\"identity\":\"" OK_URI "\"", "\"fields\":{\"algorithm\":\"ecdsa-p256-sha256\",\"purpose\":\"generic\"" };
	const char *want_rotated[] = { "\"type\":\"key\"", "\"key\":\"t-sign\",\"key_version\":2,",
		"\"event\":\"key_rotated\"", "\"result\":\"OK\"" };
	char *line, rid[64], spki_hex[65], want_spki[96], want_rid[96];
	const char *want_rpc[3];
	const struct catalog_key *k;
	const struct catalog_version *v;
	uint8_t sha[32];
	size_t key_idx, rpc_idx, rot_idx;
	unsigned filled;

	filled = fill_audit_queue(f);
	assert_int_equal(filled, AQMAX);
	cr.name = "t-new";
	cr.algorithm = BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256;
	cr.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	cfs = begin_call(f, 0, KS "CreateKey", &cr.base);
	rr.name = "t-sign";
	rfs = begin_call(f, 1, KS "RotateKey", &rr.base);
	(void)pump_for(f->base, 300, NULL);
	assert_int_equal(fk.calls[KEYOP_GENERATE], 2);
	if (cfs->answers != 0 || rfs->answers != 0)
		fail_msg("a key change was answered (CreateKey status %d, RotateKey %d) before its "
		    "audit record could be written", cfs->answers ? cfs->a.grpc_status : -1,
		    rfs->answers ? rfs->a.grpc_status : -1);
	if (catalog_find(f->cat, "t-new") != NULL)
		fail_msg("the new key is usable before its audit record is durable");
	assert_int_equal(catalog_find(f->cat, "t-sign")->nversions, 1);

	fsync_gate_set(0, 0);
	assert_true(harness_pump(f->base, &cfs->answers));
	assert_true(harness_pump(f->base, &rfs->answers));
	end_call(f, 0);
	end_call(f, 1);
	harness_pump_idle(f->base, f->d);
	assert_int_equal(cfs->a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(rfs->a.grpc_status, GRPC_STATUS_OK);
	assert_non_null(k = catalog_find(f->cat, "t-new"));
	assert_non_null(v = catalog_key_primary(k));
	assert_int_equal(catalog_find(f->cat, "t-sign")->nversions, 2);

	line = audit_line(f, want_created, sizeof(want_created) / sizeof(want_created[0]),
	    &key_idx);
	if (line == NULL)
		fail_msg("no \"key_created\" record for t-new in %s", f->audit_path);
	/* it names the public key that was made */
	SHA256(v->spki, v->spki_len, sha);
	for (size_t i = 0; i < 32; i++)
		snprintf(spki_hex + 2 * i, 3, "%02x", sha[i]);
	snprintf(want_spki, sizeof(want_spki), "\"spki_sha256\":\"%s\"", spki_hex);
	assert_non_null(strstr(line, want_spki));
	json_str(line, "request_id", rid, sizeof(rid));
	free(line);
	/* the call's own record, same request id, after it; the answer came after both */
	snprintf(want_rid, sizeof(want_rid), "\"request_id\":\"%s\"", rid);
	want_rpc[0] = "\"type\":\"rpc\"";
	want_rpc[1] = want_rid;
	want_rpc[2] = "\"result\":\"OK\"";
	line = audit_line(f, want_rpc, 3, &rpc_idx);
	if (line == NULL)
		fail_msg("no rpc record for the CreateKey call %s", rid);
	free(line);
	assert_true(rpc_idx > key_idx);
	assert_true(cfs->records_at_answer > rpc_idx);
	line = audit_line(f, want_rotated, sizeof(want_rotated) / sizeof(want_rotated[0]),
	    &rot_idx);
	if (line == NULL)
		fail_msg("no \"key_rotated\" record for t-sign v2 in %s", f->audit_path);
	free(line);
	assert_true(rfs->records_at_answer > rot_idx);
}

/*
 * The key record cannot be written (EIO on its fdatasync): the change is
 * not made (the new objects are destroyed, nothing in the catalog), the
 * caller gets UNAVAILABLE, and once the log works again the record says
 * the change was not carried out.
 */
static void
test_key_change_refused_when_its_record_fails(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__CreateKeyRequest cr = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	struct fake_stream *fs;
	const char *want[] = { "\"type\":\"key\"", "\"key\":\"t-eio\",\"key_version\":1,",
		"\"result\":\"UNAVAILABLE\",\"reason\":\"not carried out: the audit log could not be "
		"written before the change was due; outcome would have been OK\","
		"\"event\":\"key_created\"" };
	char *line;
	size_t idx;

	fsync_gate_set(0, 1);
	cr.name = "t-eio";
	cr.algorithm = BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256;
	cr.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	fs = begin_call(f, 0, KS "CreateKey", &cr.base);
	assert_true(harness_pump(f->base, &fs->answers));
	end_call(f, 0);
	assert_int_equal(fk.calls[KEYOP_GENERATE], 1);
	assert_int_equal(fs->a.grpc_status, GRPC_STATUS_UNAVAILABLE);
	if (catalog_find(f->cat, "t-eio") != NULL)
		fail_msg("the key was made although its audit record could not be written");
	harness_pump_idle(f->base, f->d);
	(void)pump_for(f->base, 2000, NULL);             /* the writer retries every 200 ms */
	assert_int_equal(fk.calls[KEYOP_DESTROY], 1);
	assert_int_equal(audit_log_healthy(f->svc.audit), 1);
	line = audit_line(f, want, sizeof(want) / sizeof(want[0]), &idx);
	if (line == NULL)
		fail_msg("no \"not carried out\" key record for t-eio in %s", f->audit_path);
	free(line);
}

/*
 * No place left even in the reserve (one place, a key change needs two):
 * the change is refused before the key side is asked, so nothing happened
 * that would need a record.
 */
static void
test_key_change_refused_without_room(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__CreateKeyRequest cr = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	struct fake_stream *fs;

	(void)fill_audit_queue(f);
	cr.name = "t-full";
	cr.algorithm = BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256;
	cr.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	fs = begin_call(f, 0, KS "CreateKey", &cr.base);
	/* the refusal's own record cannot be queued either: answered UNAVAILABLE at once */
	assert_true(pump_for(f->base, 2000, &fs->answers));
	end_call(f, 0);
	assert_int_not_equal(fs->a.grpc_status, GRPC_STATUS_OK);
	assert_int_equal(fk.calls[KEYOP_GENERATE], 0);
	assert_null(catalog_find(f->cat, "t-full"));
	fsync_gate_set(0, 0);
	harness_pump_idle(f->base, f->d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sign_der_and_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_refusals_never_reach_the_key_side, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_side_errors_become_statuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_batch_slices_and_item_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_key_through_generate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_on_the_work_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_probes_the_key_side, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_leaves_during_the_catalog_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_leaves_between_batch_slices, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_probe_says_nothing_about_the_hsm, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_changes_recorded_when_the_audit_queue_is_full,
		    setup_audit, teardown_audit),
		cmocka_unit_test_setup_teardown(test_key_change_refused_when_its_record_fails,
		    setup_audit, teardown_audit),
		cmocka_unit_test_setup_teardown(test_key_change_refused_without_room,
		    setup_audit_tiny_reserve, teardown_audit),
	};

	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
