/*
 * test_hsm_pool.c - tests of the HSM layer (hsm.c) and the worker pool
 * (pool.c) against a real SoftHSM token.
 *
 * Run under tests/unit/with-softhsm, which provides a fresh token through
 * BS_TEST_MODULE, BS_TEST_TOKEN_URI and BS_TEST_PIN_FILE; without them the
 * test is skipped (exit 77). Covers: login errors (wrong PIN, wrong or
 * invalid URI, bad module), key generation for the three algorithms with the
 * protection attributes checked through raw PKCS#11, signatures verified by
 * OpenSSL against the returned SubjectPublicKeyInfo, length checks, list,
 * find and destroy, and the pool: completions on the loop thread, the
 * bounded queue, cancellation and draining stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"
#include "hsm/p11uri.h"
#include "hsm/pool.h"

#define PIN_MAX 256

static const char *g_module;
static const char *g_uri;
static uint8_t g_pin[PIN_MAX];
static size_t g_pin_len;

/* ---- helpers --------------------------------------------------------- */

static struct hsm *
open_hsm(void)
{
	struct hsm *h = NULL;
	char err[HSM_ERR_LEN];
	int ret;

	ret = hsm_open(g_module, g_uri, g_pin, g_pin_len, &h, err);
	if (ret != 0)
		fail_msg("hsm_open: %d: %s", ret, err);
	assert_non_null(h);
	return h;
}

static void
sha256(const uint8_t *msg, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	assert_int_equal(EVP_Digest(msg, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
}

/*
 * Verifies sig over data (a SHA-256 digest for ECDSA and RSA-PSS, the
 * message for Ed25519) with OpenSSL. Returns 1 if valid, 0 if not.
 */
static int
verify_sig(const uint8_t *spki, size_t spki_len, enum bs_alg alg, const uint8_t *data,
    size_t data_len, const uint8_t *sig, size_t sig_len)
{
	const uint8_t *p = spki;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int derlen, ok = 0;

	assert_non_null(pkey);
	assert_ptr_equal(p, spki + spki_len);
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		if (sig_len != 64)
			goto out;
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		es = ECDSA_SIG_new();
		assert_true(r != NULL && s != NULL && es != NULL);
		assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
		r = s = NULL;
		derlen = i2d_ECDSA_SIG(es, &der);
		assert_true(derlen > 0);
		ctx = EVP_PKEY_CTX_new(pkey, NULL);
		assert_non_null(ctx);
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
		ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, data, data_len) == 1;
		break;
	case BS_ALG_ED25519:
		mctx = EVP_MD_CTX_new();
		assert_non_null(mctx);
		assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey), 1);
		ok = EVP_DigestVerify(mctx, sig, sig_len, data, data_len) == 1;
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		ctx = EVP_PKEY_CTX_new(pkey, NULL);
		assert_non_null(ctx);
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32), 1);
		ok = EVP_PKEY_verify(ctx, sig, sig_len, data, data_len) == 1;
		break;
	case BS_ALG_NONE:
	default:
		fail_msg("bad alg");
	}
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok;
}

/* Checks that spki is a key of the expected algorithm and size. */
static void
check_spki_type(const uint8_t *spki, size_t spki_len, enum bs_alg alg)
{
	const uint8_t *p = spki;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	char group[64];
	size_t glen = 0;

	assert_non_null(pkey);
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		assert_true(EVP_PKEY_is_a(pkey, "EC"));
		assert_int_equal(EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen), 1);
		assert_string_equal(group, "prime256v1");
		break;
	case BS_ALG_ED25519:
		assert_true(EVP_PKEY_is_a(pkey, "ED25519"));
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		assert_true(EVP_PKEY_is_a(pkey, "RSA"));
		assert_int_equal(EVP_PKEY_get_bits(pkey), 3072);
		break;
	case BS_ALG_NONE:
	default:
		fail_msg("bad alg");
	}
	EVP_PKEY_free(pkey);
}

/* ---- raw PKCS#11 view of the same token, to check what hsm.c created --- */

struct raw {
	CK_FUNCTION_LIST *fl;
	CK_SESSION_HANDLE sh;
};

static void
raw_open(struct raw *r)
{
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_TOKEN_INFO ti;
	struct p11uri u;
	CK_RV rv;
	int found = 0;

	memset(r, 0, sizeof(*r));
	assert_int_equal(p11uri_parse(g_uri, &u), 0);
	r->fl = p11_kit_module_load(g_module, 0);
	assert_non_null(r->fl);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	assert_int_equal(r->fl->C_Initialize(&args), CKR_OK);
	assert_int_equal(r->fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n && !found; i++) {
		if (r->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED) ||
		    !p11uri_field_matches(u.token, ti.label, sizeof(ti.label)))
			continue;
		assert_int_equal(r->fl->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION,
		    NULL, NULL, &r->sh), CKR_OK);
		found = 1;
	}
	assert_true(found);
	/* An open struct hsm already holds the login. */
	rv = r->fl->C_Login(r->sh, CKU_USER, g_pin, g_pin_len);
	assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
}

static void
raw_close(struct raw *r)
{
	(void)r->fl->C_CloseSession(r->sh);
	(void)r->fl->C_Finalize(NULL);
	p11_kit_module_release(r->fl);
}

/* Handles of objects of class cls with CKA_ID id; returns how many (<= 4). */
static CK_ULONG
raw_find(struct raw *r, CK_OBJECT_CLASS cls, const uint8_t id[HSM_KEY_ID_LEN],
    CK_OBJECT_HANDLE out[4])
{
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, idbuf, sizeof(idbuf) },
	};
	CK_ULONG n = 0;

	memcpy(idbuf, id, sizeof(idbuf));
	assert_int_equal(r->fl->C_FindObjectsInit(r->sh, t, 2), CKR_OK);
	assert_int_equal(r->fl->C_FindObjects(r->sh, out, 4, &n), CKR_OK);
	assert_int_equal(r->fl->C_FindObjectsFinal(r->sh), CKR_OK);
	return n;
}

static CK_BBOOL
raw_bool(struct raw *r, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0x5a;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_int_equal(r->fl->C_GetAttributeValue(r->sh, o, &a, 1), CKR_OK);
	assert_true(v == CK_TRUE || v == CK_FALSE);
	return v;
}

/* Checks the attributes of the key pair with CKA_ID id as hsm.c promises. */
static void
raw_check_keypair(const uint8_t id[HSM_KEY_ID_LEN], enum bs_alg alg, const char *label,
    hsm_handle priv_expected)
{
	struct raw r;
	CK_OBJECT_HANDLE priv[4], pub[4];
	uint8_t buf[1024];
	CK_ATTRIBUTE a;
	char lbl[128];

	raw_open(&r);
	assert_int_equal(raw_find(&r, CKO_PRIVATE_KEY, id, priv), 1);
	assert_int_equal(raw_find(&r, CKO_PUBLIC_KEY, id, pub), 1);
	assert_int_equal(priv[0], priv_expected);

	/* The private part cannot be read. */
	a = (CK_ATTRIBUTE){ alg == BS_ALG_RSA_3072_PSS_SHA256 ? CKA_PRIVATE_EXPONENT : CKA_VALUE,
		buf, sizeof(buf) };
	assert_int_equal(r.fl->C_GetAttributeValue(r.sh, priv[0], &a, 1),
	    CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	if (alg == BS_ALG_RSA_3072_PSS_SHA256) {
		a = (CK_ATTRIBUTE){ CKA_PRIME_1, buf, sizeof(buf) };
		assert_int_equal(r.fl->C_GetAttributeValue(r.sh, priv[0], &a, 1),
		    CKR_ATTRIBUTE_SENSITIVE);
	}

	assert_int_equal(raw_bool(&r, priv[0], CKA_TOKEN), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_PRIVATE), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_ALWAYS_SENSITIVE), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_NEVER_EXTRACTABLE), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_SIGN), CK_TRUE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_DECRYPT), CK_FALSE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_UNWRAP), CK_FALSE);
	assert_int_equal(raw_bool(&r, priv[0], CKA_DERIVE), CK_FALSE);
	assert_int_equal(raw_bool(&r, pub[0], CKA_TOKEN), CK_TRUE);
	assert_int_equal(raw_bool(&r, pub[0], CKA_VERIFY), CK_TRUE);
	assert_int_equal(raw_bool(&r, pub[0], CKA_ENCRYPT), CK_FALSE);
	assert_int_equal(raw_bool(&r, pub[0], CKA_WRAP), CK_FALSE);

	memset(lbl, 0, sizeof(lbl));
	a = (CK_ATTRIBUTE){ CKA_LABEL, lbl, sizeof(lbl) - 1 };
	assert_int_equal(r.fl->C_GetAttributeValue(r.sh, priv[0], &a, 1), CKR_OK);
	assert_string_equal(lbl, label);
	memset(lbl, 0, sizeof(lbl));
	a = (CK_ATTRIBUTE){ CKA_LABEL, lbl, sizeof(lbl) - 1 };
	assert_int_equal(r.fl->C_GetAttributeValue(r.sh, pub[0], &a, 1), CKR_OK);
	assert_string_equal(lbl, label);
	raw_close(&r);
}

static size_t
raw_count_id(const uint8_t id[HSM_KEY_ID_LEN])
{
	struct raw r;
	CK_OBJECT_HANDLE o[4];
	size_t n;

	raw_open(&r);
	n = raw_find(&r, CKO_PRIVATE_KEY, id, o) + raw_find(&r, CKO_PUBLIC_KEY, id, o);
	raw_close(&r);
	return n;
}

/* ---- hsm_open errors ------------------------------------------------- */

static void
test_open_wrong_pin(void **state)
{
	static const char wrong[] = "wrong-pin-5a17c3e9";
	struct hsm *h = NULL;
	char err[HSM_ERR_LEN];
	char real[PIN_MAX + 1];

	(void)state;
	memset(err, 0, sizeof(err));
	assert_int_equal(hsm_open(g_module, g_uri, (const uint8_t *)wrong, strlen(wrong), &h, err),
	    BS_ERR_HSM);
	assert_null(h);
	assert_non_null(strstr(err, "CKR_PIN_INCORRECT"));
	assert_non_null(strstr(err, g_module));
	assert_non_null(strstr(err, "boltseal-test"));
	assert_null(strstr(err, wrong));
	memcpy(real, g_pin, g_pin_len);
	real[g_pin_len] = '\0';
	assert_null(strstr(err, real));

	/* Empty PIN is refused before the token sees it. */
	assert_int_equal(hsm_open(g_module, g_uri, g_pin, 0, &h, err), BS_ERR_INVALID);
	assert_null(h);
}

static void
test_open_wrong_uri(void **state)
{
	struct hsm *h = NULL;
	char err[HSM_ERR_LEN];

	(void)state;
	assert_int_equal(hsm_open(g_module, "pkcs11:token=no-such-token", g_pin, g_pin_len, &h,
	    err), BS_ERR_NOT_FOUND);
	assert_null(h);
	assert_non_null(strstr(err, "pkcs11:token=no-such-token"));
	assert_non_null(strstr(err, g_module));

	/* Right label, wrong serial. */
	assert_int_equal(hsm_open(g_module, "pkcs11:token=boltseal-test;serial=0000000000000000",
	    g_pin, g_pin_len, &h, err), BS_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "serial=0000000000000000"));

	/* A URI carrying a PIN is refused and not echoed. */
	assert_int_equal(hsm_open(g_module, "pkcs11:token=boltseal-test?pin-value=S3CRETPIN",
	    g_pin, g_pin_len, &h, err), BS_ERR_INVALID);
	assert_null(strstr(err, "S3CRETPIN"));
	assert_null(h);

	/* Module errors name the module. */
	assert_int_equal(hsm_open("/nonexistent/libnothing.so", g_uri, g_pin, g_pin_len, &h, err),
	    BS_ERR_HSM);
	assert_non_null(strstr(err, "/nonexistent/libnothing.so"));
	assert_int_equal(hsm_open("no-such-p11-module", g_uri, g_pin, g_pin_len, &h, err),
	    BS_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "no-such-p11-module"));
	assert_int_equal(hsm_open("relative/lib.so", g_uri, g_pin, g_pin_len, &h, err),
	    BS_ERR_INVALID);
	assert_null(h);
}

static void
test_open_ok(void **state)
{
	struct hsm *h = NULL, *h2 = NULL;
	struct hsm_session *s = NULL;
	char err[HSM_ERR_LEN];

	(void)state;
	h = open_hsm();
	assert_non_null(strstr(hsm_token_desc(h), "boltseal-test"));
	assert_non_null(strstr(hsm_token_desc(h), "SoftHSM"));
	assert_int_equal(hsm_session_open(h, &s), 0);
	assert_int_equal(hsm_session_alive(s), 1);
	assert_int_equal(hsm_session_last_rv(s), CKR_OK);

	/*
	 * A second struct hsm in the same process would find the token
	 * already logged in and its PIN unchecked: refused, and the failure
	 * must not log out the first one.
	 */
	assert_int_equal(hsm_open(g_module, g_uri, (const uint8_t *)"bad", 3, &h2, err),
	    BS_ERR_HSM);
	assert_null(h2);
	assert_non_null(strstr(err, "CKR_USER_ALREADY_LOGGED_IN"));
	assert_int_equal(hsm_session_alive(s), 1);

	hsm_session_close(s);
	/* hsm_close closes sessions it still tracks. */
	assert_int_equal(hsm_session_open(h, &s), 0);
	hsm_close(h);
	hsm_close(NULL);

	/* After close the token can be opened again, also by p11-kit name. */
	h = open_hsm();
	hsm_close(h);
	h = NULL;
	if (hsm_open("softhsm2", g_uri, g_pin, g_pin_len, &h, err) != 0)
		fail_msg("open by p11-kit module name: %s", err);
	hsm_close(h);
}

/* ---- keys ------------------------------------------------------------ */

static void
gen_sign_verify(enum bs_alg alg, const char *label)
{
	struct hsm *h = open_hsm();
	struct hsm_session *s = NULL;
	uint8_t id[HSM_KEY_ID_LEN], *spki = NULL, *spki2 = NULL;
	size_t spki_len = 0, spki2_len = 0, sig_len;
	hsm_handle priv = 0, found = 0, priv2 = 0;
	static const uint8_t msg[] = "boltseal test message";
	uint8_t digest[32], sig[512];
	const uint8_t *data;
	size_t data_len, want;

	assert_int_equal(hsm_session_open(h, &s), 0);
	assert_int_equal(RAND_bytes(id, sizeof(id)), 1);
	assert_int_equal(hsm_generate_keypair(s, alg, id, label, 0, &priv, &spki, &spki_len), 0);
	assert_non_null(spki);
	check_spki_type(spki, spki_len, alg);
	raw_check_keypair(id, alg, label, priv);

	/* Same id again: refused, nothing created. */
	assert_int_equal(hsm_generate_keypair(s, alg, id, label, 0, &priv2, &spki2, &spki2_len),
	    BS_ERR_EXISTS);
	assert_null(spki2);
	assert_int_equal(raw_count_id(id), 2);

	assert_int_equal(hsm_find_private_key(s, id, &found), 0);
	assert_int_equal(found, priv);

	sha256(msg, sizeof(msg) - 1, digest);
	if (alg == BS_ALG_ED25519) {
		data = msg;
		data_len = sizeof(msg) - 1;
		want = 64;
	} else {
		data = digest;
		data_len = sizeof(digest);
		want = alg == BS_ALG_RSA_3072_PSS_SHA256 ? 384 : 64;
	}

	/* Output buffer one byte short: refused, and the session stays usable. */
	sig_len = want - 1;
	assert_int_equal(hsm_sign(s, priv, alg, data, data_len, sig, &sig_len), BS_ERR_TOO_BIG);
	assert_int_equal(sig_len, want - 1);

	sig_len = sizeof(sig);
	assert_int_equal(hsm_sign(s, priv, alg, data, data_len, sig, &sig_len), 0);
	assert_int_equal(sig_len, want);
	assert_true(verify_sig(spki, spki_len, alg, data, data_len, sig, sig_len));
	/* The verifier is not a rubber stamp. */
	sig[sig_len / 2] ^= 0x01;
	assert_false(verify_sig(spki, spki_len, alg, data, data_len, sig, sig_len));
	if (alg == BS_ALG_ED25519) {
		uint8_t other[sizeof(msg)];

		sig[sig_len / 2] ^= 0x01;
		memcpy(other, msg, sizeof(msg));
		other[0] ^= 0x20;
		assert_false(verify_sig(spki, spki_len, alg, other, data_len, sig, sig_len));
		/* Ed25519 signs messages of any length, including empty. */
		sig_len = sizeof(sig);
		assert_int_equal(hsm_sign(s, priv, alg, msg, 0, sig, &sig_len), 0);
		assert_true(verify_sig(spki, spki_len, alg, msg, 0, sig, sig_len));
	} else {
		/* Digest-based algorithms take exactly 32 bytes. */
		sig_len = sizeof(sig);
		assert_int_equal(hsm_sign(s, priv, alg, digest, 31, sig, &sig_len), BS_ERR_INVALID);
		assert_int_equal(hsm_sign(s, priv, alg, digest, 33, sig, &sig_len), BS_ERR_INVALID);
		assert_int_equal(hsm_sign(s, priv, alg, msg, sizeof(msg) - 1, sig, &sig_len),
		    BS_ERR_INVALID);
	}

	/*
	 * Another algorithm's mechanism on this key is refused before the
	 * token sees it (SoftHSM crashes on RSA-PSS with an EC key).
	 */
	for (enum bs_alg other = BS_ALG_ECDSA_P256_SHA256; other <= BS_ALG_RSA_3072_PSS_SHA256;
	    other++) {
		if (other == alg)
			continue;
		sig_len = sizeof(sig);
		assert_int_equal(hsm_sign(s, priv, other, digest, sizeof(digest), sig, &sig_len),
		    BS_ERR_INVALID);
		assert_string_equal(hsm_rv_name(hsm_session_last_rv(s)),
		    "CKR_KEY_TYPE_INCONSISTENT");
	}
	/* The public key's handle is not a signing key. */
	{
		struct raw r;
		CK_OBJECT_HANDLE pub[4];

		raw_open(&r);
		assert_int_equal(raw_find(&r, CKO_PUBLIC_KEY, id, pub), 1);
		raw_close(&r);
		sig_len = sizeof(sig);
		assert_int_equal(hsm_sign(s, pub[0], alg, data, data_len, sig, &sig_len),
		    BS_ERR_INVALID);
	}
	/* A handle that is not a key is an HSM error with its code. */
	sig_len = sizeof(sig);
	assert_int_equal(hsm_sign(s, 0x7fff0000UL, alg, data, data_len, sig, &sig_len),
	    BS_ERR_HSM);
	assert_string_equal(hsm_rv_name(hsm_session_last_rv(s)), "CKR_OBJECT_HANDLE_INVALID");

	/* And after all that the session still signs. */
	sig_len = sizeof(sig);
	if (hsm_sign(s, priv, alg, data, data_len, sig, &sig_len) != 0)
		fail_msg("sign after a failed sign: %s", hsm_rv_name(hsm_session_last_rv(s)));
	assert_true(verify_sig(spki, spki_len, alg, data, data_len, sig, sig_len));
	assert_int_equal(hsm_session_last_rv(s), CKR_OK);

	if (hsm_destroy_key(s, id) != 0)
		fail_msg("hsm_destroy_key: %s", hsm_rv_name(hsm_session_last_rv(s)));
	assert_int_equal(raw_count_id(id), 0);
	assert_int_equal(hsm_find_private_key(s, id, &found), BS_ERR_NOT_FOUND);
	sig_len = sizeof(sig);
	assert_int_equal(hsm_sign(s, priv, alg, data, data_len, sig, &sig_len), BS_ERR_HSM);
	free(spki);
	hsm_session_close(s);
	hsm_close(h);
}

static void
test_ecdsa_p256(void **state)
{
	(void)state;
	gen_sign_verify(BS_ALG_ECDSA_P256_SHA256, "bs-test:ecdsa");
}

static void
test_ed25519(void **state)
{
	(void)state;
	gen_sign_verify(BS_ALG_ED25519, "bs-test:ed25519");
}

static void
test_rsa_pss(void **state)
{
	(void)state;
	gen_sign_verify(BS_ALG_RSA_3072_PSS_SHA256, "bs-test:rsa");
}

static void
test_bad_args(void **state)
{
	struct hsm *h = open_hsm();
	struct hsm_session *s = NULL;
	uint8_t id[HSM_KEY_ID_LEN] = { 1 }, *spki = NULL, sig[64], d[32] = { 0 };
	size_t spki_len = 0, sig_len = sizeof(sig);
	hsm_handle priv = 0;
	char longlabel[200];

	(void)state;
	assert_int_equal(hsm_session_open(h, &s), 0);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_NONE, id, "x", 0, &priv, &spki, &spki_len),
	    BS_ERR_UNSUPPORTED);
	assert_int_equal(hsm_generate_keypair(s, (enum bs_alg)99, id, "x", 0, &priv, &spki,
	    &spki_len), BS_ERR_UNSUPPORTED);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ED25519, id, "", 0, &priv, &spki, &spki_len),
	    BS_ERR_INVALID);
	memset(longlabel, 'a', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = '\0';
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ED25519, id, longlabel, 0, &priv, &spki,
	    &spki_len), BS_ERR_INVALID);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ED25519, id, NULL, 0, &priv, &spki, &spki_len),
	    BS_ERR_INVALID);
	assert_null(spki);
	assert_int_equal(raw_count_id(id), 0);
	assert_int_equal(hsm_sign(s, 0, BS_ALG_NONE, d, sizeof(d), sig, &sig_len),
	    BS_ERR_UNSUPPORTED);
	assert_int_equal(hsm_sign(s, 0, BS_ALG_ECDSA_P256_SHA256, NULL, 32, sig, &sig_len),
	    BS_ERR_INVALID);
	assert_int_equal(hsm_destroy_key(s, id), BS_ERR_NOT_FOUND);
	assert_int_equal(hsm_find_private_key(s, id, &priv), BS_ERR_NOT_FOUND);
	hsm_session_close(s);
	hsm_close(h);
}

static int
has_id(const struct hsm_key_object *o, size_t n, const uint8_t id[HSM_KEY_ID_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(o[i].id, id, HSM_KEY_ID_LEN) == 0)
			return 1;
	return 0;
}

static void
test_list_find_destroy(void **state)
{
	struct hsm *h = open_hsm();
	struct hsm_session *s = NULL;
	uint8_t a[HSM_KEY_ID_LEN], b[HSM_KEY_ID_LEN], c[HSM_KEY_ID_LEN];
	uint8_t *spki = NULL;
	struct hsm_key_object *ids = NULL;
	size_t spki_len, n = 0;
	hsm_handle ha, hb, hc, f;

	(void)state;
	assert_int_equal(hsm_session_open(h, &s), 0);
	assert_int_equal(RAND_bytes(a, sizeof(a)), 1);
	assert_int_equal(RAND_bytes(b, sizeof(b)), 1);
	assert_int_equal(RAND_bytes(c, sizeof(c)), 1);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ECDSA_P256_SHA256, a, "bs-list:a", 0, &ha,
	    &spki, &spki_len), 0);
	free(spki);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ED25519, b, "bs-list:b", 0, &hb, &spki,
	    &spki_len), 0);
	free(spki);
	assert_int_equal(hsm_generate_keypair(s, BS_ALG_ECDSA_P256_SHA256, c, "other:c", 0, &hc,
	    &spki, &spki_len), 0);
	free(spki);

	assert_int_equal(hsm_list_key_objects(s, "bs-list:", &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_true(has_id(ids, n, a));
	assert_true(has_id(ids, n, b));
	assert_false(has_id(ids, n, c));
	free(ids);
	ids = NULL;
	assert_int_equal(hsm_list_key_objects(s, "", &ids, &n), 0);
	assert_int_equal(n, 3);
	free(ids);
	ids = NULL;
	assert_int_equal(hsm_list_key_objects(s, "nothing-has-this-prefix", &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	ids = NULL;
	{
		/* the same listing with each object's handle and label (the key side's index) */
		struct hsm_key_object *o = NULL;
		size_t no = 0;

		assert_int_equal(hsm_list_key_objects(s, "bs-list:", &o, &no), 0);
		assert_int_equal(no, 2);
		for (size_t i = 0; i < no; i++) {
			assert_false(o[i].secret);
			if (memcmp(o[i].id, a, sizeof(a)) == 0) {
				assert_string_equal(o[i].label, "bs-list:a");
				assert_true(o[i].handle == ha);
			} else {
				assert_memory_equal(o[i].id, b, sizeof(b));
				assert_string_equal(o[i].label, "bs-list:b");
				assert_true(o[i].handle == hb);
			}
		}
		free(o);
		assert_int_equal(hsm_list_key_objects(s, "nothing-has-this-prefix", &o, &no), 0);
		assert_int_equal(no, 0);
		assert_null(o);
	}

	assert_int_equal(hsm_find_private_key(s, a, &f), 0);
	assert_int_equal(f, ha);
	assert_int_equal(hsm_find_private_key(s, b, &f), 0);
	assert_int_equal(f, hb);
	assert_int_equal(hsm_find_private_key(s, c, &f), 0);
	assert_int_equal(f, hc);

	assert_int_equal(hsm_destroy_key(s, a), 0);
	assert_int_equal(hsm_find_private_key(s, a, &f), BS_ERR_NOT_FOUND);
	assert_int_equal(raw_count_id(a), 0);
	assert_int_equal(raw_count_id(b), 2);
	assert_int_equal(hsm_destroy_key(s, a), BS_ERR_NOT_FOUND);
	assert_int_equal(hsm_list_key_objects(s, "bs-list:", &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_true(has_id(ids, n, b));
	free(ids);

	assert_int_equal(hsm_destroy_key(s, b), 0);
	assert_int_equal(hsm_destroy_key(s, c), 0);
	assert_int_equal(raw_count_id(c), 0);
	hsm_session_close(s);
	hsm_close(h);
}

/* ---- pool ------------------------------------------------------------ */

struct sign_job {
	struct hsm_job job;       /* first: the pool hands back &job */
	struct pool_ctx *ctx;
	hsm_handle key;
	uint8_t digest[32];
	uint8_t sig[64];
	size_t sig_len;
	int ret;
	int gate;                 /* wait for the gate before signing */
	int saw_cancel;
	int worked;
	int done_calls;
	pthread_t work_thread;
	int work_had_session;
};

struct pool_ctx {
	struct event_base *base;
	pthread_t loop_thread;
	int ndone;
	int want;
	int done_off_loop;        /* done() seen on another thread */
};

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static int gate_waiting;

static void
sign_work(struct hsm_job *job, struct hsm_session *s)
{
	struct sign_job *j = (struct sign_job *)job;

	j->work_thread = pthread_self();
	j->work_had_session = s != NULL;
	if (j->gate) {
		pthread_mutex_lock(&gate_mu);
		gate_waiting++;
		pthread_cond_broadcast(&gate_cv);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_mu);
		pthread_mutex_unlock(&gate_mu);
	}
	if (hsm_job_cancelled(job)) {
		j->saw_cancel = 1;
		j->ret = BS_ERR_CANCELLED;
		return;
	}
	j->worked = 1;
	j->sig_len = sizeof(j->sig);
	j->ret = hsm_sign(s, j->key, BS_ALG_ECDSA_P256_SHA256, j->digest, sizeof(j->digest),
	    j->sig, &j->sig_len);
}

static void
sign_done(struct hsm_job *job)
{
	struct sign_job *j = (struct sign_job *)job;
	struct pool_ctx *c = j->ctx;

	j->done_calls++;
	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->done_off_loop = 1;
	if (++c->ndone == c->want && c->base != NULL)
		event_base_loopbreak(c->base);
}

static void
init_jobs(struct sign_job *jobs, size_t n, struct pool_ctx *ctx, hsm_handle key)
{
	memset(jobs, 0, n * sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		jobs[i].job.work = sign_work;
		jobs[i].job.done = sign_done;
		jobs[i].ctx = ctx;
		jobs[i].key = key;
		jobs[i].ret = 1;
		assert_int_equal(RAND_bytes(jobs[i].digest, 32), 1);
	}
}

static void
run_loop(struct pool_ctx *ctx)
{
	struct timeval tmo = { 30, 0 };

	assert_int_equal(event_base_loopexit(ctx->base, &tmo), 0);
	assert_int_equal(event_base_dispatch(ctx->base), 0);
	if (ctx->ndone != ctx->want)
		fail_msg("loop ended with %d of %d done() calls", ctx->ndone, ctx->want);
}

struct pool_fixture {
	struct hsm *h;
	struct hsm_session *s;
	struct event_base *base;
	uint8_t id[HSM_KEY_ID_LEN];
	hsm_handle key;
	uint8_t *spki;
	size_t spki_len;
};

static int
pool_setup(void **state)
{
	struct pool_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->h = open_hsm();
	assert_int_equal(hsm_session_open(f->h, &f->s), 0);
	assert_int_equal(RAND_bytes(f->id, sizeof(f->id)), 1);
	assert_int_equal(hsm_generate_keypair(f->s, BS_ALG_ECDSA_P256_SHA256, f->id, "bs-pool", 0,
	    &f->key, &f->spki, &f->spki_len), 0);
	f->base = event_base_new();
	assert_non_null(f->base);
	*state = f;
	return 0;
}

static int
pool_teardown(void **state)
{
	struct pool_fixture *f = *state;

	if (f == NULL)
		return 0;
	assert_int_equal(hsm_destroy_key(f->s, f->id), 0);
	free(f->spki);
	event_base_free(f->base);
	hsm_session_close(f->s);
	hsm_close(f->h);
	free(f);
	return 0;
}

static void
test_pool_basic(void **state)
{
	struct pool_fixture *f = *state;
	struct hsm_pool *p = NULL;
	struct sign_job jobs[16];
	struct pool_ctx ctx = { f->base, pthread_self(), 0, 16, 0 };
	size_t i;

	assert_int_equal(hsm_pool_new(f->h, f->base, 0, 4, &p), BS_ERR_INVALID);
	assert_int_equal(hsm_pool_new(f->h, f->base, 2, 0, &p), BS_ERR_INVALID);
	assert_null(p);
	assert_int_equal(hsm_pool_new(f->h, f->base, 3, 16, &p), 0);
	assert_int_equal(hsm_pool_inflight(p), 0);
	init_jobs(jobs, 16, &ctx, f->key);
	for (i = 0; i < 16; i++)
		assert_int_equal(hsm_pool_submit(p, &jobs[i].job), 0);
	assert_true(hsm_pool_inflight(p) > 0);
	run_loop(&ctx);
	assert_int_equal(ctx.done_off_loop, 0);
	for (i = 0; i < 16; i++) {
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].ret, 0);
		assert_true(jobs[i].work_had_session);
		assert_false(pthread_equal(jobs[i].work_thread, ctx.loop_thread));
		assert_int_equal(jobs[i].sig_len, 64);
		assert_true(verify_sig(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256,
		    jobs[i].digest, 32, jobs[i].sig, 64));
	}
	assert_int_equal(hsm_pool_inflight(p), 0);
	hsm_pool_free(p);
}

static void
test_pool_queue_full_and_cancel(void **state)
{
	struct pool_fixture *f = *state;
	struct hsm_pool *p = NULL;
	struct sign_job jobs[6];
	struct pool_ctx ctx = { f->base, pthread_self(), 0, 5, 0 };
	size_t i;

	assert_int_equal(hsm_pool_new(f->h, f->base, 2, 3, &p), 0);
	init_jobs(jobs, 6, &ctx, f->key);
	gate_open = 0;
	gate_waiting = 0;
	/* Two jobs block both workers... */
	jobs[0].gate = jobs[1].gate = 1;
	assert_int_equal(hsm_pool_submit(p, &jobs[0].job), 0);
	assert_int_equal(hsm_pool_submit(p, &jobs[1].job), 0);
	pthread_mutex_lock(&gate_mu);
	while (gate_waiting < 2)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	/* ...so three more fill the queue and the next is refused at once. */
	for (i = 2; i < 5; i++)
		assert_int_equal(hsm_pool_submit(p, &jobs[i].job), 0);
	assert_int_equal(hsm_pool_inflight(p), 5);
	assert_int_equal(hsm_pool_submit(p, &jobs[5].job), BS_ERR_QUEUE_FULL);
	assert_int_equal(hsm_pool_submit(p, NULL), BS_ERR_INVALID);
	/* A queued job whose caller went away. */
	hsm_job_cancel(&jobs[3].job);

	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	run_loop(&ctx);
	assert_int_equal(ctx.done_off_loop, 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(jobs[i].done_calls, 1);
		if (i == 3) {
			assert_true(jobs[i].saw_cancel);
			assert_false(jobs[i].worked);
			assert_int_equal(jobs[i].ret, BS_ERR_CANCELLED);
		} else {
			assert_false(jobs[i].saw_cancel);
			assert_int_equal(jobs[i].ret, 0);
			assert_true(verify_sig(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256,
			    jobs[i].digest, 32, jobs[i].sig, 64));
		}
	}
	/* The refused job was never touched. */
	assert_int_equal(jobs[5].done_calls, 0);
	assert_int_equal(jobs[5].ret, 1);
	assert_int_equal(hsm_pool_inflight(p), 0);
	/* Now there is room again. */
	ctx.want = 6;
	assert_int_equal(hsm_pool_submit(p, &jobs[5].job), 0);
	run_loop(&ctx);
	assert_int_equal(jobs[5].ret, 0);
	hsm_pool_free(p);
}

static void
test_pool_stop_drains(void **state)
{
	struct pool_fixture *f = *state;
	struct hsm_pool *p = NULL;
	struct sign_job jobs[12], late;
	struct pool_ctx ctx = { NULL, pthread_self(), 0, 12, 0 };
	size_t i;

	assert_int_equal(hsm_pool_new(f->h, f->base, 2, 12, &p), 0);
	init_jobs(jobs, 12, &ctx, f->key);
	for (i = 0; i < 12; i++)
		assert_int_equal(hsm_pool_submit(p, &jobs[i].job), 0);
	/* No loop runs: stop must finish the queue and call every done() here. */
	hsm_pool_stop(p);
	assert_int_equal(ctx.ndone, 12);
	assert_int_equal(ctx.done_off_loop, 0);
	for (i = 0; i < 12; i++) {
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].ret, 0);
		assert_true(verify_sig(f->spki, f->spki_len, BS_ALG_ECDSA_P256_SHA256,
		    jobs[i].digest, 32, jobs[i].sig, 64));
	}
	assert_int_equal(hsm_pool_inflight(p), 0);
	init_jobs(&late, 1, &ctx, f->key);
	assert_int_equal(hsm_pool_submit(p, &late.job), BS_ERR_UNAVAILABLE);
	hsm_pool_stop(p);  /* idempotent */
	hsm_pool_free(p);
	assert_int_equal(late.done_calls, 0);
	/* The loop has nothing left to run for this pool (its event is gone). */
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(ctx.ndone, 12);
}

/* ---- main ------------------------------------------------------------ */

static int
read_pin(const char *path)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, g_pin, sizeof(g_pin));
	close(fd);
	if (n <= 0 || (size_t)n >= sizeof(g_pin))
		return -1;
	while (n > 0 && (g_pin[n - 1] == '\n' || g_pin[n - 1] == '\r'))
		n--;
	g_pin_len = (size_t)n;
	return g_pin_len > 0 ? 0 : -1;
}

int
main(void)
{
	const char *pin_file;
	const struct CMUnitTest open_tests[] = {
		cmocka_unit_test(test_open_wrong_pin),
		cmocka_unit_test(test_open_wrong_uri),
		cmocka_unit_test(test_open_ok),
		cmocka_unit_test(test_ecdsa_p256),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_rsa_pss),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_list_find_destroy),
	};
	const struct CMUnitTest pool_tests[] = {
		cmocka_unit_test(test_pool_basic),
		cmocka_unit_test(test_pool_queue_full_and_cancel),
		cmocka_unit_test(test_pool_stop_drains),
	};
	int fails;

	g_module = getenv("BS_TEST_MODULE");
	g_uri = getenv("BS_TEST_TOKEN_URI");
	pin_file = getenv("BS_TEST_PIN_FILE");
	if (g_module == NULL || g_uri == NULL || pin_file == NULL) {
		fprintf(stderr, "SKIP: BS_TEST_MODULE, BS_TEST_TOKEN_URI or BS_TEST_PIN_FILE "
		    "not set; run under tests/unit/with-softhsm\n");
		return 77;
	}
	if (read_pin(pin_file) != 0) {
		fprintf(stderr, "cannot read PIN file %s: %s\n", pin_file, strerror(errno));
		return 1;
	}
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	fails = cmocka_run_group_tests_name("hsm", open_tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("pool", pool_tests, pool_setup, pool_teardown);
	OPENSSL_cleanse(g_pin, sizeof(g_pin));
	libevent_global_shutdown();
	return fails == 0 ? 0 : 1;
}
