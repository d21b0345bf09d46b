/*
 * test_keyd.c - unit tests of the key side (src/keyd) and the in-process
 * client of the key door (src/keyops/keyclient.c) on a real SoftHSM token
 * (run under tests/unit/with-softhsm; skipped, exit 77, without it).
 * Every operation crosses the door as bytes. Signatures are checked with
 * OpenSSL (formats/sigverify). Covers: GENERATE then SIGN for the three
 * algorithms, a second GENERATE of the same version refused, unknown keys,
 * inputs the key cannot take, a fresh key side finding keys by label (as
 * after a restart) from one listing of the token (a label on two objects
 * refused, labels naming no version left out), DESTROY, PROBE, and the asynchronous client on a
 * worker pool with its answer on the event loop thread; envelope secret
 * keys: an AES-256-GCM key's ENCRYPT (a given plaintext, and data keys drawn
 * from the token) checked against OpenSSL's own AES-GCM decryption is
 * impossible without the key, so ENCRYPT then DECRYPT round-trip and every
 * change of nonce, aad or ciphertext is refused (BS_ERR_SIG_INVALID); an
 * HMAC key's SIGN is deterministic and 32 bytes; neither key signs or
 * encrypts the other's way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "formats/sigverify.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "keyd/keyd.h"
#include "keyops/keyclient.h"

static struct hsm *g_hsm;
static struct hsm_session *g_s;

/* The CKA_ID GENERATE answered for the key last made by gen() (SIGN names it). */
static uint8_t last_id[KEYOPS_ID_LEN];

static void
gen(struct keyd *kd, const char *name, uint32_t version, enum bs_alg alg, struct keyop_answer *a)
{
	struct keyop_request r;

	memset(&r, 0, sizeof(r));
	r.type = KEYOP_GENERATE;
	snprintf(r.key.name, sizeof(r.key.name), "%s", name);
	r.key.version = version;
	r.alg = alg;
	assert_int_equal(keyclient_call(kd, g_s, &r, a), 0);
	if (a->rc == 0)
		memcpy(last_id, a->id, sizeof(last_id));
}

static void
sign(struct keyd *kd, const char *name, uint32_t version, enum bs_alg alg, int is_digest,
    const uint8_t *data, size_t len, struct keyop_answer *a)
{
	struct keyop_input in = { is_digest, data, len };
	struct keyop_request r;

	memset(&r, 0, sizeof(r));
	r.type = KEYOP_SIGN;
	snprintf(r.key.name, sizeof(r.key.name), "%s", name);
	r.key.version = version;
	memcpy(r.id, last_id, sizeof(r.id));
	r.alg = alg;
	r.inputs = &in;
	r.ninputs = 1;
	assert_int_equal(keyclient_call(kd, g_s, &r, a), 0);
}

static void
test_generate_sign_verify(void **state)
{
	static const enum bs_alg algs[] = { BS_ALG_ECDSA_P256_SHA256, BS_ALG_ED25519,
		BS_ALG_RSA_3072_PSS_SHA256 };
	static const uint8_t msg[] = "release metadata v9";
	struct keyd *kd = NULL;
	struct keyop_answer g, s;
	char name[32];
	uint8_t digest[32];

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "kd-gen-%zu", i);
		gen(kd, name, 1, algs[i], &g);
		assert_int_equal(g.rc, 0);
		assert_true(g.spki_len > 0);
		sign(kd, name, 1, algs[i], 0, msg, sizeof(msg) - 1, &s);
		assert_int_equal(s.rc, 0);
		assert_int_equal(s.nsigs, 1);
		assert_int_equal(s.sigs[0].rc, 0);
		SHA256(msg, sizeof(msg) - 1, digest);
		assert_memory_equal(s.sigs[0].payload_sha256, digest, 32);
		assert_int_equal(sigverify_verify(g.spki, g.spki_len, algs[i], 0, msg, sizeof(msg) - 1,
		    s.sigs[0].sig, s.sigs[0].sig_len, BS_SIGFMT_RAW), 0);
		keyop_answer_clear(&s);
		if (algs[i] != BS_ALG_ED25519) {
			/* a digest input is signed as given and recorded as given */
			sign(kd, name, 1, algs[i], 1, digest, 32, &s);
			assert_int_equal(s.sigs[0].rc, 0);
			assert_memory_equal(s.sigs[0].payload_sha256, digest, 32);
			assert_int_equal(sigverify_verify(g.spki, g.spki_len, algs[i], 1, digest, 32,
			    s.sigs[0].sig, s.sigs[0].sig_len, BS_SIGFMT_RAW), 0);
			keyop_answer_clear(&s);
		}
		keyop_answer_clear(&g);
	}
	assert_int_equal(keyd_cached(kd), 3);
	keyd_free(kd);
}

static void
test_refusals(void **state)
{
	static const uint8_t msg[] = "x";
	struct keyd *kd = NULL;
	struct keyop_answer a;

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "kd-ref", 1, BS_ALG_ECDSA_P256_SHA256, &a);
	assert_int_equal(a.rc, 0);
	keyop_answer_clear(&a);
	/* the same version again */
	gen(kd, "kd-ref", 1, BS_ALG_ECDSA_P256_SHA256, &a);
	assert_int_equal(a.rc, BS_ERR_EXISTS);
	assert_null(a.spki);
	keyop_answer_clear(&a);
	/* unknown key, unknown version */
	sign(kd, "kd-none", 1, BS_ALG_ECDSA_P256_SHA256, 0, msg, 1, &a);
	assert_int_equal(a.rc, BS_ERR_NOT_FOUND);
	assert_int_equal(a.nsigs, 0);
	keyop_answer_clear(&a);
	sign(kd, "kd-ref", 2, BS_ALG_ECDSA_P256_SHA256, 0, msg, 1, &a);
	assert_int_equal(a.rc, BS_ERR_NOT_FOUND);
	keyop_answer_clear(&a);
	/* the object is not the one the catalog names */
	last_id[0] ^= 1;
	sign(kd, "kd-ref", 1, BS_ALG_ECDSA_P256_SHA256, 0, msg, 1, &a);
	assert_int_equal(a.rc, BS_ERR_MISMATCH);
	keyop_answer_clear(&a);
	last_id[0] ^= 1;
	/* an ECDSA key asked for Ed25519, a short digest: per-input refusals */
	sign(kd, "kd-ref", 1, BS_ALG_ED25519, 0, msg, 1, &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.sigs[0].rc, BS_ERR_INVALID);
	assert_int_equal(a.sigs[0].sig_len, 0);
	keyop_answer_clear(&a);
	sign(kd, "kd-ref", 1, BS_ALG_ECDSA_P256_SHA256, 1, msg, 1, &a);
	assert_int_equal(a.sigs[0].rc, BS_ERR_INVALID);
	keyop_answer_clear(&a);
	keyd_free(kd);
}

static void
test_fresh_key_side_finds_by_label_and_destroy(void **state)
{
	static const uint8_t msg[] = "after restart";
	struct keyd *kd = NULL, *kd2 = NULL;
	struct keyop_request r;
	struct keyop_answer a, g;
	size_t n;

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "kd-life", 3, BS_ALG_ED25519, &g);
	assert_int_equal(g.rc, 0);
	keyd_free(kd);
	assert_int_equal(keyd_new(&kd2), 0);
	assert_int_equal(keyd_cached(kd2), 0);
	sign(kd2, "kd-life", 3, BS_ALG_ED25519, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(sigverify_verify(g.spki, g.spki_len, BS_ALG_ED25519, 0, msg,
	    sizeof(msg) - 1, a.sigs[0].sig, a.sigs[0].sig_len, BS_SIGFMT_RAW), 0);
	keyop_answer_clear(&a);
	/* the first operation listed the token: every labelled key of it is cached */
	n = keyd_cached(kd2);
	assert_true(n >= 1);
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_DESTROY;
	strcpy(r.key.name, "kd-life");
	r.key.version = 3;
	/* another generation's id destroys nothing */
	memset(r.id, 0x77, sizeof(r.id));
	assert_int_equal(keyclient_call(kd2, g_s, &r, &a), 0);
	assert_int_equal(a.rc, BS_ERR_NOT_FOUND);
	assert_int_equal(keyd_cached(kd2), n);
	memcpy(r.id, g.id, sizeof(r.id));
	assert_int_equal(keyclient_call(kd2, g_s, &r, &a), 0);
	assert_int_equal(a.rc, 0);
	assert_int_equal(keyd_cached(kd2), n - 1);
	assert_int_equal(keyclient_call(kd2, g_s, &r, &a), 0);
	assert_int_equal(a.rc, BS_ERR_NOT_FOUND);
	sign(kd2, "kd-life", 3, BS_ALG_ED25519, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, BS_ERR_NOT_FOUND);
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_PROBE;
	assert_int_equal(keyclient_call(kd2, g_s, &r, &a), 0);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.alive, 1);
	keyop_answer_clear(&g);
	keyd_free(kd2);
}

/*
 * A fresh key side lists the token once: keys it finds sign without a
 * search, a label on two objects is refused as before (the token is broken),
 * labels that do not name a key version are left out, and a GENERATE of a
 * version the listing knows is refused without creating anything.
 */
static void
test_index_of_the_token(void **state)
{
	static const uint8_t msg[] = "indexed";
	struct keyd *kd = NULL;
	struct keyop_answer a, g;
	uint8_t id1[HSM_KEY_ID_LEN], id2[HSM_KEY_ID_LEN], id3[HSM_KEY_ID_LEN];
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	hsm_handle h;

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "kd-idx", 1, BS_ALG_ECDSA_P256_SHA256, &g);
	assert_int_equal(g.rc, 0);
	keyd_free(kd);
	/* two objects labelled as one version, and one label naming no version */
	memset(id1, 0x31, sizeof(id1));
	memset(id2, 0x32, sizeof(id2));
	memset(id3, 0x33, sizeof(id3));
	assert_int_equal(hsm_generate_keypair(g_s, BS_ALG_ECDSA_P256_SHA256, id1,
	    KEYD_LABEL_PREFIX "kd-twice/v1", 0, &h, &spki, &spki_len), 0);
	free(spki);
	assert_int_equal(hsm_generate_keypair(g_s, BS_ALG_ECDSA_P256_SHA256, id2,
	    KEYD_LABEL_PREFIX "kd-twice/v1", 0, &h, &spki, &spki_len), 0);
	free(spki);
	assert_int_equal(hsm_generate_keypair(g_s, BS_ALG_ECDSA_P256_SHA256, id3,
	    KEYD_LABEL_PREFIX "no-version", 0, &h, &spki, &spki_len), 0);
	free(spki);

	assert_int_equal(keyd_new(&kd), 0);
	memcpy(last_id, g.id, sizeof(last_id));
	sign(kd, "kd-idx", 1, BS_ALG_ECDSA_P256_SHA256, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(sigverify_verify(g.spki, g.spki_len, BS_ALG_ECDSA_P256_SHA256, 0, msg,
	    sizeof(msg) - 1, a.sigs[0].sig, a.sigs[0].sig_len, BS_SIGFMT_RAW), 0);
	keyop_answer_clear(&a);
	memcpy(last_id, id1, sizeof(last_id));
	sign(kd, "kd-twice", 1, BS_ALG_ECDSA_P256_SHA256, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, BS_ERR_HSM);
	keyop_answer_clear(&a);
	gen(kd, "kd-idx", 1, BS_ALG_ECDSA_P256_SHA256, &a);
	assert_int_equal(a.rc, BS_ERR_EXISTS);
	keyop_answer_clear(&a);
	/* a new version: created without a search, then signs */
	gen(kd, "kd-idx", 2, BS_ALG_ECDSA_P256_SHA256, &a);
	assert_int_equal(a.rc, 0);
	keyop_answer_clear(&a);
	sign(kd, "kd-idx", 2, BS_ALG_ECDSA_P256_SHA256, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, 0);
	keyop_answer_clear(&a);
	keyop_answer_clear(&g);
	keyd_free(kd);
	assert_int_equal(hsm_destroy_key(g_s, id1), 0);
	assert_int_equal(hsm_destroy_key(g_s, id2), 0);
	assert_int_equal(hsm_destroy_key(g_s, id3), 0);
}

/*
 * The daemon's start-up: one listing made on a session of its own seeds the
 * key side's index (no listing of its own), and the key signs through it.
 */
static void
test_seeded_index(void **state)
{
	static const uint8_t msg[] = "seeded";
	struct hsm_key_object *v = NULL;
	struct keyd *kd = NULL;
	struct keyop_answer a, g;
	size_t n = 0, labelled = 0;

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "kd-seed", 1, BS_ALG_ECDSA_P256_SHA256, &g);
	assert_int_equal(g.rc, 0);
	keyd_free(kd);

	assert_int_equal(hsm_list_key_objects(g_s, KEYD_LABEL_PREFIX, &v, &n), 0);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++)
		labelled += strchr(v[i].label + strlen(KEYD_LABEL_PREFIX), '/') != NULL;
	assert_int_equal(keyd_new(&kd), 0);
	assert_int_equal(keyd_cached(kd), 0);
	assert_int_equal(keyd_seed_index(kd, NULL, 1), BS_ERR_INVALID);
	assert_int_equal(keyd_seed_index(kd, v, n), 0);
	assert_int_equal(keyd_cached(kd), labelled);       /* the index, before any operation */
	assert_int_equal(keyd_seed_index(kd, v, 0), 0);    /* once indexed: a no-op */
	assert_int_equal(keyd_cached(kd), labelled);
	free(v);
	memcpy(last_id, g.id, sizeof(last_id));
	sign(kd, "kd-seed", 1, BS_ALG_ECDSA_P256_SHA256, 0, msg, sizeof(msg) - 1, &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(sigverify_verify(g.spki, g.spki_len, BS_ALG_ECDSA_P256_SHA256, 0, msg,
	    sizeof(msg) - 1, a.sigs[0].sig, a.sigs[0].sig_len, BS_SIGFMT_RAW), 0);
	keyop_answer_clear(&a);
	keyd_free(kd);
	assert_int_equal(hsm_destroy_key(g_s, g.id), 0);
	keyop_answer_clear(&g);
}

/* keyd_serve refuses a malformed request outright. */
/* One ENCRYPT or DECRYPT item through the door with the key last made. */
static void
cipher(struct keyd *kd, const char *name, enum keyop_type type, const struct keyop_item *it,
    struct keyop_answer *a)
{
	struct keyop_request r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	snprintf(r.key.name, sizeof(r.key.name), "%s", name);
	r.key.version = 1;
	r.alg = BS_ALG_AES_256_GCM;
	memcpy(r.id, last_id, KEYOPS_ID_LEN);
	r.items = (struct keyop_item *)it;
	r.nitems = 1;
	assert_int_equal(keyclient_call(kd, g_s, &r, a), 0);
}

static void
test_envelope_secret_keys(void **state)
{
	static const uint8_t pt[] = "telemetry record", aad[] = "context";
	struct keyop_item it;
	struct keyop_answer a, b, g;
	struct keyd *kd = NULL;
	uint8_t ct[sizeof(pt) + KEYOPS_TAG_LEN], aes_id[KEYOPS_ID_LEN];
	uint8_t mac[32];

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "env-kek", 1, BS_ALG_AES_256_GCM, &g);
	assert_int_equal(g.rc, 0);
	assert_null(g.spki);          /* a secret key has no public key */
	memcpy(aes_id, last_id, sizeof(aes_id));
	keyop_answer_clear(&g);

	memset(&it, 0, sizeof(it));
	memset(it.nonce, 0x01, sizeof(it.nonce));
	it.aad = aad;
	it.aad_len = sizeof(aad);
	it.data = pt;
	it.len = sizeof(pt);
	cipher(kd, "env-kek", KEYOP_ENCRYPT, &it, &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.nciphers, 1);
	assert_int_equal(a.ciphers[0].rc, 0);
	assert_int_equal(a.ciphers[0].len, sizeof(ct));   /* ciphertext and a 16-byte tag */
	assert_null(a.ciphers[0].key);
	memcpy(ct, a.ciphers[0].data, sizeof(ct));
	assert_memory_not_equal(ct, pt, sizeof(pt));
	keyop_answer_clear(&a);

	it.data = ct;
	it.len = sizeof(ct);
	cipher(kd, "env-kek", KEYOP_DECRYPT, &it, &b);
	assert_int_equal(b.ciphers[0].rc, 0);
	assert_int_equal(b.ciphers[0].len, sizeof(pt));
	assert_memory_equal(b.ciphers[0].data, pt, sizeof(pt));
	keyop_answer_clear(&b);
	/* a changed ciphertext, tag, nonce or aad: refused, not a token failure */
	for (int k = 0; k < 4; k++) {
		uint8_t t[sizeof(ct)];
		uint8_t saved_nonce = it.nonce[0];

		memcpy(t, ct, sizeof(t));
		it.data = t;
		it.aad_len = sizeof(aad);
		if (k == 0)
			t[0] ^= 1;
		else if (k == 1)
			t[sizeof(t) - 1] ^= 1;
		else if (k == 2)
			it.nonce[0] ^= 1;
		else
			it.aad_len = sizeof(aad) - 1;
		cipher(kd, "env-kek", KEYOP_DECRYPT, &it, &b);
		assert_int_equal(b.rc, 0);
		assert_int_equal(b.ciphers[0].rc, BS_ERR_SIG_INVALID);
		assert_null(b.ciphers[0].data);
		keyop_answer_clear(&b);
		it.nonce[0] = saved_nonce;
	}
	assert_int_equal(hsm_session_alive(g_s), 1);

	/* a data key drawn from the token's generator, sealed in the same operation */
	memset(&it, 0, sizeof(it));
	it.generate = 1;
	cipher(kd, "env-kek", KEYOP_ENCRYPT, &it, &a);
	assert_int_equal(a.ciphers[0].rc, 0);
	assert_int_equal(a.ciphers[0].key_len, KEYOPS_DATAKEY_LEN);
	assert_int_equal(a.ciphers[0].len, KEYOPS_DATAKEY_LEN + KEYOPS_TAG_LEN);
	it.generate = 0;
	it.data = a.ciphers[0].data;
	it.len = a.ciphers[0].len;
	cipher(kd, "env-kek", KEYOP_DECRYPT, &it, &b);
	assert_int_equal(b.ciphers[0].rc, 0);
	assert_memory_equal(b.ciphers[0].data, a.ciphers[0].key, KEYOPS_DATAKEY_LEN);
	keyop_answer_clear(&a);
	keyop_answer_clear(&b);

	/* HMAC-SHA-256: 32 bytes, deterministic, over the message itself */
	gen(kd, "env-tok", 1, BS_ALG_HMAC_SHA256, &g);
	assert_int_equal(g.rc, 0);
	keyop_answer_clear(&g);
	sign(kd, "env-tok", 1, BS_ALG_HMAC_SHA256, 0, pt, sizeof(pt), &a);
	assert_int_equal(a.sigs[0].rc, 0);
	assert_int_equal(a.sigs[0].sig_len, 32);
	memcpy(mac, a.sigs[0].sig, 32);
	keyop_answer_clear(&a);
	sign(kd, "env-tok", 1, BS_ALG_HMAC_SHA256, 0, pt, sizeof(pt), &a);
	assert_memory_equal(a.sigs[0].sig, mac, 32);
	keyop_answer_clear(&a);
	sign(kd, "env-tok", 1, BS_ALG_HMAC_SHA256, 0, pt, sizeof(pt) - 1, &a);
	assert_memory_not_equal(a.sigs[0].sig, mac, 32);
	keyop_answer_clear(&a);
	/* a digest input is not an HMAC's; the AES key does not sign */
	sign(kd, "env-tok", 1, BS_ALG_HMAC_SHA256, 1, mac, 32, &a);
	assert_int_equal(a.sigs[0].rc, BS_ERR_INVALID);
	keyop_answer_clear(&a);
	memcpy(last_id, aes_id, sizeof(aes_id));
	sign(kd, "env-kek", 1, BS_ALG_HMAC_SHA256, 0, pt, sizeof(pt), &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.sigs[0].rc, BS_ERR_INVALID);   /* CKK_AES is not a generic secret */
	keyop_answer_clear(&a);
	keyd_free(kd);
}

static void
test_serve_malformed(void **state)
{
	/* SIGN whose one input announces 2 bytes and has 1 */
	static const uint8_t junk[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 1, 0, 0, 0, 0, 2, 'a' };
	struct keyd *kd = NULL;
	uint8_t *ans = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(keyd_new(&kd), 0);
	assert_int_not_equal(keyd_serve(kd, g_s, junk, sizeof(junk), &ans, &len), 0);
	assert_null(ans);
	keyd_free(kd);
}

struct async_result {
	int done;
	int rc;
	size_t sig_len;
	pthread_t thread;
};

static void
async_done(void *arg, struct keyop_answer *a)
{
	struct async_result *res = arg;

	res->done = 1;
	res->rc = a->rc;
	res->sig_len = a->nsigs == 1 ? a->sigs[0].sig_len : 0;
	res->thread = pthread_self();
}

static void
test_async_client(void **state)
{
	static const uint8_t msg[] = "async";
	struct keyd *kd = NULL;
	struct keyclient *kc = NULL;
	struct hsm_pool *pool = NULL;
	struct event_base *base;
	struct keyop_answer g;
	struct keyop_input in = { 0, msg, sizeof(msg) - 1 };
	struct keyop_request r;
	struct async_result res;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_int_equal(keyd_new(&kd), 0);
	gen(kd, "kd-async", 1, BS_ALG_ECDSA_P256_SHA256, &g);
	assert_int_equal(g.rc, 0);
	keyop_answer_clear(&g);
	assert_int_equal(hsm_pool_new(g_hsm, base, 2, 16, &pool), 0);
	assert_int_equal(keyclient_new(kd, pool, &kc), 0);
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_SIGN;
	strcpy(r.key.name, "kd-async");
	r.key.version = 1;
	r.alg = BS_ALG_ECDSA_P256_SHA256;
	memcpy(r.id, last_id, sizeof(r.id));
	r.inputs = &in;
	r.ninputs = 1;
	memset(&res, 0, sizeof(res));
	assert_int_equal(keyclient_submit(kc, &r, async_done, &res, NULL), 0);
	for (int i = 0; i < 2000 && !res.done; i++) {
		struct timeval tv = { 0, 5000 };

		(void)event_base_loopexit(base, &tv);
		(void)event_base_dispatch(base);
	}
	assert_true(res.done);
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.sig_len, 64);
	assert_true(pthread_equal(res.thread, pthread_self()));
	/* a request that cannot be encoded never reaches the pool */
	r.ninputs = 0;
	assert_int_equal(keyclient_submit(kc, &r, async_done, &res, NULL), BS_ERR_INVALID);
	hsm_pool_free(pool);
	keyclient_free(kc);
	keyd_free(kd);
	event_base_free(base);
}

static int
read_pin(const char *path, uint8_t *pin, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	*len = fread(pin, 1, cap, f);
	fclose(f);
	return *len > 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_sign_verify),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_fresh_key_side_finds_by_label_and_destroy),
		cmocka_unit_test(test_index_of_the_token),
		cmocka_unit_test(test_seeded_index),
		cmocka_unit_test(test_envelope_secret_keys),
		cmocka_unit_test(test_serve_malformed),
		cmocka_unit_test(test_async_client),
	};
	const char *module = getenv("BS_TEST_MODULE"), *uri = getenv("BS_TEST_TOKEN_URI");
	const char *pin_file = getenv("BS_TEST_PIN_FILE");
	uint8_t pin[256];
	size_t pin_len = 0;
	char err[HSM_ERR_LEN];
	int fails;

	if (module == NULL || uri == NULL || pin_file == NULL) {
		fprintf(stderr, "SKIP: run under tests/unit/with-softhsm\n");
		return 77;
	}
	if (read_pin(pin_file, pin, sizeof(pin), &pin_len) != 0 || evthread_use_pthreads() != 0)
		return 1;
	if (hsm_open(module, uri, pin, pin_len, &g_hsm, err) != 0) {
		fprintf(stderr, "hsm_open: %s\n", err);
		return 1;
	}
	OPENSSL_cleanse(pin, sizeof(pin));
	if (hsm_session_open(g_hsm, &g_s) != 0)
		return 1;
	fails = cmocka_run_group_tests(tests, NULL, NULL);
	hsm_session_close(g_s);
	hsm_close(g_hsm);
	return fails == 0 ? 0 : 1;
}
