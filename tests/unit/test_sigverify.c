/*
 * test_sigverify.c - unit tests for src/formats/sigverify.c: every vector of
 * the Wycheproof ECDSA P-256 (DER and P1363), Ed25519 and RSA-PSS-2048
 * SHA-256/MGF1-SHA-256/salt-32 files through sigverify_verify with each
 * group's publicKeyDer (message mode, and digest mode for ECDSA and RSA),
 * plus key classification, algorithm names, PEM export and bad input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "formats/ecdsa_sig.h"
#include "formats/sigverify.h"
#include "json_min.h"

#define WYCHEPROOF_DIR BS_SRCDIR "/tests/data/wycheproof/"

#define FILE_ECDSA "ecdsa_secp256r1_sha256_test.json"
#define FILE_P1363 "ecdsa_secp256r1_sha256_p1363_test.json"
#define FILE_ED25519 "ed25519_test.json"
#define FILE_RSAPSS "rsa_pss_2048_sha256_mgf1_32_test.json"

static struct json_node *
load(const char *name)
{
	char path[1024];
	struct json_node *root = NULL;

	snprintf(path, sizeof(path), "%s%s", WYCHEPROOF_DIR, name);
	if (json_load_file(path, &root) != 0)
		fail_msg("cannot read or parse %s", path);
	return root;
}

static uint8_t *
hex(const char *s, size_t *len)
{
	uint8_t *b = NULL;

	assert_non_null(s);
	assert_int_equal(json_hex_decode(s, &b, len), 0);
	return b;
}

struct counts {
	size_t run, valid, invalid, acceptable, digest_run;
};

/*
 * Runs every test of file through sigverify_verify in message mode and,
 * if digest, also in digest mode over SHA-256(msg). valid must return 0,
 * invalid BS_ERR_SIG_INVALID; acceptable either.
 */
static void
run_file(const char *name, enum bs_alg alg, enum bs_sig_format fmt, int digest, size_t min_tests)
{
	struct json_node *root = load(name);
	const struct json_node *groups, *g, *t, *num;
	struct counts c;

	memset(&c, 0, sizeof(c));
	groups = json_get(root, "testGroups");
	assert_non_null(groups);
	for (g = groups->child; g != NULL; g = g->next) {
		size_t klen;
		uint8_t *key = hex(json_get_str(g, "publicKeyDer"), &klen);
		enum bs_alg kalg = BS_ALG_NONE;

		assert_int_equal(sigverify_spki_alg(key, klen, &kalg), 0);
		assert_int_equal(kalg, alg);
		for (t = json_get(g, "tests")->child; t != NULL; t = t->next) {
			size_t mlen, slen;
			uint8_t *msg = hex(json_get_str(t, "msg"), &mlen);
			uint8_t *sig = hex(json_get_str(t, "sig"), &slen);
			const char *res = json_get_str(t, "result");
			int tc = (int)json_get(t, "tcId")->num;
			int rc, rcd = 0;
			uint8_t md[32];
			unsigned mdlen = 0;

			rc = sigverify_verify(key, klen, alg, 0, msg, mlen, sig, slen, fmt);
			if (digest) {
				assert_int_equal(EVP_Digest(msg, mlen, md, &mdlen, EVP_sha256(), NULL), 1);
				assert_int_equal(mdlen, 32);
				rcd = sigverify_verify(key, klen, alg, 1, md, 32, sig, slen, fmt);
				c.digest_run++;
			}
			c.run++;
			if (strcmp(res, "valid") == 0) {
				c.valid++;
				if (rc != 0 || rcd != 0)
					fail_msg("%s tcId %d (%s): valid, got %d / digest %d", name, tc,
					    json_get_str(t, "comment"), rc, rcd);
			} else if (strcmp(res, "invalid") == 0) {
				c.invalid++;
				if (rc != BS_ERR_SIG_INVALID ||
				    (digest && rcd != BS_ERR_SIG_INVALID))
					fail_msg("%s tcId %d (%s): invalid, got %d / digest %d", name, tc,
					    json_get_str(t, "comment"), rc, rcd);
			} else {
				assert_string_equal(res, "acceptable");
				c.acceptable++;
				assert_true(rc == 0 || rc == BS_ERR_SIG_INVALID);
				assert_true(rcd == 0 || rcd == BS_ERR_SIG_INVALID);
			}
			free(msg);
			free(sig);
		}
		free(key);
	}
	num = json_get(root, "numberOfTests");
	assert_non_null(num);
	assert_int_equal(c.run, (size_t)num->num);
	assert_true(c.run >= min_tests);
	assert_true(c.valid > 0 && c.invalid > 0);
	printf("# %s: %zu vectors run (valid %zu, invalid %zu, acceptable %zu), "
	    "%zu also in digest mode\n", name, c.run, c.valid, c.invalid, c.acceptable,
	    c.digest_run);
	json_free(root);
}

static void
test_wycheproof_ecdsa_der(void **state)
{
	(void)state;
	run_file(FILE_ECDSA, BS_ALG_ECDSA_P256_SHA256, BS_SIGFMT_DER, 1, 400);
}

static void
test_wycheproof_ecdsa_p1363(void **state)
{
	(void)state;
	run_file(FILE_P1363, BS_ALG_ECDSA_P256_SHA256, BS_SIGFMT_RAW, 1, 200);
}

static void
test_wycheproof_ed25519(void **state)
{
	(void)state;
	run_file(FILE_ED25519, BS_ALG_ED25519, BS_SIGFMT_DER, 0, 100);
}

static void
test_wycheproof_rsa_pss(void **state)
{
	(void)state;
	run_file(FILE_RSAPSS, BS_ALG_RSA_3072_PSS_SHA256, BS_SIGFMT_DER, 1, 80);
}

/* First test with result "valid" of the first group of file. */
struct vec {
	uint8_t *key, *msg, *sig;
	size_t klen, mlen, slen;
	const char *pem;
	struct json_node *root;
};

static void
first_valid(const char *name, struct vec *v)
{
	const struct json_node *g, *t;

	memset(v, 0, sizeof(*v));
	v->root = load(name);
	g = json_get(v->root, "testGroups")->child;
	for (t = json_get(g, "tests")->child; t != NULL; t = t->next)
		if (strcmp(json_get_str(t, "result"), "valid") == 0)
			break;
	assert_non_null(t);
	v->key = hex(json_get_str(g, "publicKeyDer"), &v->klen);
	v->msg = hex(json_get_str(t, "msg"), &v->mlen);
	v->sig = hex(json_get_str(t, "sig"), &v->slen);
	v->pem = json_get_str(g, "publicKeyPem");
}

static void
vec_free(struct vec *v)
{
	free(v->key);
	free(v->msg);
	free(v->sig);
	json_free(v->root);
}

static void
test_ecdsa_formats_and_digest(void **state)
{
	struct vec v;
	uint8_t raw[64], md[32], ber[80];
	unsigned mdlen;
	const enum bs_alg A = BS_ALG_ECDSA_P256_SHA256;

	(void)state;
	first_valid(FILE_ECDSA, &v);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, v.sig, v.slen,
	    BS_SIGFMT_DER), 0);
	/* the known-good vector verifies in digest mode too */
	assert_int_equal(EVP_Digest(v.msg, v.mlen, md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 1, md, 32, v.sig, v.slen,
	    BS_SIGFMT_DER), 0);
	/* a wrong digest does not */
	md[0] ^= 1;
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 1, md, 32, v.sig, v.slen,
	    BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	md[0] ^= 1;
	/* digest must be 32 bytes */
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 1, md, 31, v.sig, v.slen,
	    BS_SIGFMT_DER), BS_ERR_INVALID);
	/* same signature as raw r||s */
	assert_int_equal(ecdsa_sig_der_to_raw(v.sig, v.slen, raw), 0);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, raw, 64,
	    BS_SIGFMT_RAW), 0);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 1, md, 32, raw, 64, BS_SIGFMT_RAW), 0);
	/* raw of the wrong length, DER given as raw, raw given as DER */
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, raw, 63,
	    BS_SIGFMT_RAW), BS_ERR_SIG_INVALID);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, v.sig, v.slen,
	    BS_SIGFMT_RAW), BS_ERR_SIG_INVALID);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, raw, 64,
	    BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	/* BER (long-form sequence length) of the same valid signature is refused */
	assert_true(v.slen + 1 <= sizeof(ber) && v.sig[1] < 0x80);
	ber[0] = 0x30;
	ber[1] = 0x81;
	memcpy(ber + 2, v.sig + 1, v.slen - 1);
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, v.msg, v.mlen, ber, v.slen + 1,
	    BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	/* wrong message */
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, (const uint8_t *)"x", 1, v.sig,
	    v.slen, BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	/* algorithm that does not match the key */
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_ED25519, 0, v.msg, v.mlen, v.sig,
	    v.slen, BS_SIGFMT_DER), BS_ERR_INVALID);
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_NONE, 0, v.msg, v.mlen, v.sig,
	    v.slen, BS_SIGFMT_DER), BS_ERR_INVALID);
	/* key with trailing garbage, truncated key, no key */
	{
		uint8_t *k2 = malloc(v.klen + 1);

		assert_non_null(k2);
		memcpy(k2, v.key, v.klen);
		k2[v.klen] = 0;
		assert_int_equal(sigverify_verify(k2, v.klen + 1, A, 0, v.msg, v.mlen, v.sig, v.slen,
		    BS_SIGFMT_DER), BS_ERR_INVALID);
		assert_int_equal(sigverify_verify(k2, v.klen - 1, A, 0, v.msg, v.mlen, v.sig, v.slen,
		    BS_SIGFMT_DER), BS_ERR_INVALID);
		free(k2);
	}
	assert_int_equal(sigverify_verify(NULL, 0, A, 0, v.msg, v.mlen, v.sig, v.slen,
	    BS_SIGFMT_DER), BS_ERR_INVALID);
	/* NULL data with a length */
	assert_int_equal(sigverify_verify(v.key, v.klen, A, 0, NULL, 5, v.sig, v.slen,
	    BS_SIGFMT_DER), BS_ERR_INVALID);
	vec_free(&v);
}

static void
test_ed25519_rules(void **state)
{
	struct vec v;
	uint8_t md[32];

	(void)state;
	first_valid(FILE_ED25519, &v);
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_ED25519, 0, v.msg, v.mlen, v.sig,
	    v.slen, BS_SIGFMT_DER), 0);
	/* the signature format is ignored for Ed25519 */
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_ED25519, 0, v.msg, v.mlen, v.sig,
	    v.slen, BS_SIGFMT_RAW), 0);
	/* digest mode does not exist for pure Ed25519 */
	memset(md, 0, sizeof(md));
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_ED25519, 1, md, 32, v.sig, v.slen,
	    BS_SIGFMT_DER), BS_ERR_INVALID);
	/* an empty signature is just invalid */
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_ED25519, 0, v.msg, v.mlen, NULL, 0,
	    BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	vec_free(&v);
}

static void
test_rsa_pss_rules(void **state)
{
	struct vec v;
	uint8_t md[32];
	unsigned mdlen;

	(void)state;
	first_valid(FILE_RSAPSS, &v);
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_RSA_3072_PSS_SHA256, 0, v.msg,
	    v.mlen, v.sig, v.slen, BS_SIGFMT_DER), 0);
	assert_int_equal(EVP_Digest(v.msg, v.mlen, md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_RSA_3072_PSS_SHA256, 1, md, 32,
	    v.sig, v.slen, BS_SIGFMT_DER), 0);
	v.sig[v.slen - 1] ^= 0x01;
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_RSA_3072_PSS_SHA256, 0, v.msg,
	    v.mlen, v.sig, v.slen, BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	assert_int_equal(sigverify_verify(v.key, v.klen, BS_ALG_RSA_3072_PSS_SHA256, 0, v.msg,
	    v.mlen, v.sig, v.slen - 1, BS_SIGFMT_DER), BS_ERR_SIG_INVALID);
	vec_free(&v);
}

/* Signs with a fresh RSA-2048 key using PSS salt len; returns 0 from sigverify. */
static int
rsa_salt_case(int saltlen)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t sig[512], *spki = NULL;
	size_t slen = sizeof(sig);
	int klen, rc;

	assert_non_null(pk);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pk), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
	assert_int_equal(EVP_DigestSign(ctx, sig, &slen, (const uint8_t *)"hello", 5), 1);
	klen = i2d_PUBKEY(pk, &spki);
	assert_true(klen > 0);
	rc = sigverify_verify(spki, (size_t)klen, BS_ALG_RSA_3072_PSS_SHA256, 0,
	    (const uint8_t *)"hello", 5, sig, slen, BS_SIGFMT_DER);
	OPENSSL_free(spki);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

static void
test_rsa_pss_salt_exact(void **state)
{
	(void)state;
	assert_int_equal(rsa_salt_case(32), 0);
	assert_int_equal(rsa_salt_case(20), BS_ERR_SIG_INVALID);
	assert_int_equal(rsa_salt_case(64), BS_ERR_SIG_INVALID);
}

static uint8_t *
gen_spki(EVP_PKEY *pk, size_t *len)
{
	uint8_t *der = NULL;
	int n;

	assert_non_null(pk);
	n = i2d_PUBKEY(pk, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	EVP_PKEY_free(pk);
	return der;
}

/* An RSA public key (no private half) with a random odd modulus of bits bits and exponent e. */
static EVP_PKEY *
rsa_pub(int bits, unsigned long e)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_new(), *eb = BN_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	OSSL_PARAM *params;
	EVP_PKEY *pk = NULL;

	assert_non_null(bld);
	assert_int_equal(BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	assert_int_equal(BN_set_word(eb, e), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, eb), 1);
	assert_non_null(params = OSSL_PARAM_BLD_to_param(bld));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(eb);
	return pk;
}

/* A caller's RSA key bounds the work: 2048..4096 bits, e = 65537. */
static void
test_spki_alg_rsa_bounds(void **state)
{
	static const struct {
		int bits;
		unsigned long e;
		int rc;
	} cases[] = {
		{ 2048, 65537, 0 }, { 4096, 65537, 0 }, { 2047, 65537, BS_ERR_UNSUPPORTED },
		{ 4097, 65537, BS_ERR_UNSUPPORTED }, { 8192, 65537, BS_ERR_UNSUPPORTED },
		{ 2048, 3, BS_ERR_UNSUPPORTED }, { 3072, 0x100000001UL, BS_ERR_UNSUPPORTED },
	};
	enum bs_alg alg;
	uint8_t *der;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		alg = BS_ALG_NONE;
		der = gen_spki(rsa_pub(cases[i].bits, cases[i].e), &n);
		assert_int_equal(sigverify_spki_alg(der, n, &alg), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(alg, BS_ALG_RSA_3072_PSS_SHA256);
		OPENSSL_free(der);
	}
}

static void
test_spki_alg(void **state)
{
	static const char *curves[] = { "P-384", "P-521", "secp256k1" };
	enum bs_alg alg = BS_ALG_NONE;
	uint8_t *der;
	size_t n, i;
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

	(void)state;
	der = gen_spki(EVP_EC_gen("P-256"), &n);
	assert_int_equal(sigverify_spki_alg(der, n, &alg), 0);
	assert_int_equal(alg, BS_ALG_ECDSA_P256_SHA256);
	OPENSSL_free(der);

	der = gen_spki(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), &n);
	assert_int_equal(sigverify_spki_alg(der, n, &alg), 0);
	assert_int_equal(alg, BS_ALG_ED25519);
	OPENSSL_free(der);

	der = gen_spki(EVP_RSA_gen(3072), &n);
	assert_int_equal(sigverify_spki_alg(der, n, &alg), 0);
	assert_int_equal(alg, BS_ALG_RSA_3072_PSS_SHA256);
	OPENSSL_free(der);

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		alg = BS_ALG_NONE;
		der = gen_spki(EVP_EC_gen(curves[i]), &n);
		assert_int_equal(sigverify_spki_alg(der, n, &alg), BS_ERR_UNSUPPORTED);
		assert_int_equal(alg, BS_ALG_NONE);
		OPENSSL_free(der);
	}
	der = gen_spki(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), &n);
	assert_int_equal(sigverify_spki_alg(der, n, &alg), BS_ERR_UNSUPPORTED);
	OPENSSL_free(der);
	der = gen_spki(EVP_RSA_gen(1024), &n);
	assert_int_equal(sigverify_spki_alg(der, n, &alg), BS_ERR_UNSUPPORTED);
	OPENSSL_free(der);

	assert_int_equal(sigverify_spki_alg(junk, sizeof(junk), &alg), BS_ERR_INVALID);
	assert_int_equal(sigverify_spki_alg(junk, 0, &alg), BS_ERR_INVALID);
	assert_int_equal(sigverify_spki_alg(NULL, 10, &alg), BS_ERR_INVALID);
	assert_int_equal(alg, BS_ALG_NONE);
}

static void
test_spki_to_pem(void **state)
{
	static const char *files[] = { FILE_ECDSA, FILE_ED25519, FILE_RSAPSS };
	struct vec v;
	char *pem = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		first_valid(files[i], &v);
		assert_non_null(v.pem);
		pem = NULL;
		assert_int_equal(sigverify_spki_to_pem(v.key, v.klen, &pem), 0);
		assert_non_null(pem);
		assert_string_equal(pem, v.pem);
		free(pem);
		vec_free(&v);
	}
	pem = NULL;
	assert_int_equal(sigverify_spki_to_pem((const uint8_t *)"\x30\x00", 2, &pem),
	    BS_ERR_INVALID);
	assert_null(pem);
}

static void
test_alg_names(void **state)
{
	static const enum bs_alg algs[] = { BS_ALG_ECDSA_P256_SHA256, BS_ALG_ED25519,
		BS_ALG_RSA_3072_PSS_SHA256 };
	size_t i;

	(void)state;
	assert_string_equal(bs_alg_name(BS_ALG_ECDSA_P256_SHA256), "ecdsa-p256-sha256");
	assert_string_equal(bs_alg_name(BS_ALG_ED25519), "ed25519");
	assert_string_equal(bs_alg_name(BS_ALG_RSA_3072_PSS_SHA256), "rsa-3072-pss-sha256");
	assert_string_equal(bs_alg_name(BS_ALG_NONE), "none");
	assert_string_equal(bs_alg_name((enum bs_alg)99), "none");
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		assert_int_equal(bs_alg_from_name(bs_alg_name(algs[i])), algs[i]);
	assert_int_equal(bs_alg_from_name("none"), BS_ALG_NONE);
	assert_int_equal(bs_alg_from_name("ED25519"), BS_ALG_NONE);
	assert_int_equal(bs_alg_from_name(""), BS_ALG_NONE);
	assert_int_equal(bs_alg_from_name(NULL), BS_ALG_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wycheproof_ecdsa_der),
		cmocka_unit_test(test_wycheproof_ecdsa_p1363),
		cmocka_unit_test(test_wycheproof_ed25519),
		cmocka_unit_test(test_wycheproof_rsa_pss),
		cmocka_unit_test(test_ecdsa_formats_and_digest),
		cmocka_unit_test(test_ed25519_rules),
		cmocka_unit_test(test_rsa_pss_rules),
		cmocka_unit_test(test_rsa_pss_salt_exact),
		cmocka_unit_test(test_spki_alg),
		cmocka_unit_test(test_spki_alg_rsa_bounds),
		cmocka_unit_test(test_spki_to_pem),
		cmocka_unit_test(test_alg_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
