/*
 * test_jwe.c - unit tests for src/formats/jwe.c: the Concat KDF against
 * RFC 7518 Appendix C (Z from the example's keys through OpenSSL's ECDH,
 * then "A128GCM" with apu "Alice", apv "Bob" gives VqqN6vgjbSBcIijNcacQGg)
 * and a two-round output checked with python3-cryptography's ConcatKDFHash;
 * a round trip through a decrypter written here (split the compact form,
 * check every header member, ECDH with the static key, KDF, AES key
 * unwrap, AES-256-GCM with the encoded header as AAD); tampering with the
 * header, encrypted key, IV, ciphertext or tag is caught at the stage that
 * should catch it; non-P-256 and malformed keys, bad kid/cty values and
 * oversized input are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "formats/jose.h"
#include "formats/jwe.h"

/* RFC 7518 Appendix C: Alice's ephemeral key, Bob's key, and Z */
#define ALICE_X "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"
#define ALICE_Y "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"
#define ALICE_D "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"
#define BOB_X "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ"
#define BOB_Y "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"
#define BOB_D "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"
static const uint8_t rfc_z[32] = {
	158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156,
	251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
};

/* How jwe_open fails: which stage refused. */
enum { OPEN_OK = 0, OPEN_FORMAT = -1, OPEN_UNWRAP = -2, OPEN_GCM = -3 };

static uint8_t *
b64d(const char *s, size_t n, size_t *len)
{
	uint8_t *p = NULL;

	if (jose_b64url_decode(s, n, &p, len) != 0)
		return NULL;
	return p;
}

/* A P-256 key from base64url x, y and (optional) d. */
static EVP_PKEY *
p256_from(const char *x64, const char *y64, const char *d64)
{
	uint8_t pub[65], *x, *y, *d = NULL;
	size_t xl = 0, yl = 0, dl = 0;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	BIGNUM *bn = NULL;

	x = b64d(x64, strlen(x64), &xl);
	y = b64d(y64, strlen(y64), &yl);
	assert_true(x != NULL && y != NULL && xl == 32 && yl == 32);
	pub[0] = 0x04;
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	assert_non_null(bld);
	assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
	    1);
	assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65), 1);
	if (d64 != NULL) {
		d = b64d(d64, strlen(d64), &dl);
		assert_true(d != NULL && dl == 32);
		assert_non_null(bn = BN_bin2bn(d, (int)dl, NULL));
		assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn), 1);
	}
	assert_non_null(params = OSSL_PARAM_BLD_to_param(bld));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, d64 ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_clear_free(bn);
	free(x);
	free(y);
	free(d);
	return pk;
}

/* ECDH(priv, peer) into z; its length. */
static size_t
ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t *z, size_t cap)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	size_t n = cap;

	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, z, &n) != 1)
		n = 0;
	EVP_PKEY_CTX_free(ctx);
	return n;
}

/* A fresh key of type name/param and its DER SPKI (OPENSSL_free). */
static EVP_PKEY *
keygen(const char *type, const char *curve, uint8_t **spki, size_t *spki_len)
{
	EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve) :
	    EVP_PKEY_Q_keygen(NULL, NULL, type);
	int n;

	assert_non_null(pk);
	*spki = NULL;
	n = i2d_PUBKEY(pk, spki);
	assert_true(n > 0);
	*spki_len = (size_t)n;
	return pk;
}

/* The header member name as a string, or NULL. */
static const char *
hstr(json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/*
 * The decrypter of the tests (RFC 7516 section 5.2, for this one algorithm
 * pair): 0 with the parsed header and the plaintext, or the stage that
 * refused. A well-formed header has exactly alg, enc, epk and, when given,
 * kid and cty; epk exactly kty, crv, x, y.
 */
static int
jwe_open(const char *jwe, EVP_PKEY *priv, json_t **hdr_out, uint8_t **pt_out, size_t *pt_len)
{
	const char *part[5];
	size_t plen[5], len[5], i, k = 0, zl, want;
	uint8_t *bin[5] = { NULL }, z[32], kek[32], cek[32], *pt = NULL;
	json_t *hdr = NULL, *epk;
	EVP_PKEY *eph = NULL;
	EVP_CIPHER_CTX *c = NULL;
	int n = 0, m = 0, rc = OPEN_FORMAT;

	part[0] = jwe;
	for (i = 0; jwe[i] != '\0'; i++) {
		if (jwe[i] == '.') {
			if (k == 4)
				return OPEN_FORMAT;
			plen[k] = (size_t)(jwe + i - part[k]);
			part[++k] = jwe + i + 1;
		}
	}
	if (k != 4)
		return OPEN_FORMAT;
	plen[4] = (size_t)(jwe + i - part[4]);
	for (i = 0; i < 5; i++)
		if ((bin[i] = b64d(part[i], plen[i], &len[i])) == NULL)
			goto out;
	if (len[1] != 40 || len[2] != 12 || len[4] != 16)
		goto out;
	if ((hdr = json_loadb((const char *)bin[0], len[0], JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(hdr))
		goto out;
	want = 3 + (size_t)(json_object_get(hdr, "kid") != NULL) +
	    (size_t)(json_object_get(hdr, "cty") != NULL);
	epk = json_object_get(hdr, "epk");
	if (json_object_size(hdr) != want || !json_is_object(epk) || json_object_size(epk) != 4 ||
	    hstr(hdr, "alg") == NULL || strcmp(hstr(hdr, "alg"), "ECDH-ES+A256KW") != 0 ||
	    hstr(hdr, "enc") == NULL || strcmp(hstr(hdr, "enc"), "A256GCM") != 0 ||
	    hstr(epk, "kty") == NULL || strcmp(hstr(epk, "kty"), "EC") != 0 ||
	    hstr(epk, "crv") == NULL || strcmp(hstr(epk, "crv"), "P-256") != 0 ||
	    hstr(epk, "x") == NULL || strlen(hstr(epk, "x")) != 43 ||
	    hstr(epk, "y") == NULL || strlen(hstr(epk, "y")) != 43 ||
	    (json_object_get(hdr, "kid") && !json_is_string(json_object_get(hdr, "kid"))) ||
	    (json_object_get(hdr, "cty") && !json_is_string(json_object_get(hdr, "cty"))))
		goto out;

	/* RFC 7518 4.6.2 on the recipient's side */
	eph = p256_from(hstr(epk, "x"), hstr(epk, "y"), NULL);
	zl = ecdh(priv, eph, z, sizeof(z));
	assert_int_equal(zl, 32);
	assert_int_equal(jwe_concat_kdf(z, zl, "ECDH-ES+A256KW", NULL, 0, NULL, 0, 256, kek), 0);

	/* RFC 3394 unwrap: its integrity check catches a wrong key or a changed encrypted key */
	rc = OPEN_UNWRAP;
	assert_non_null(c = EVP_CIPHER_CTX_new());
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_DecryptInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL) != 1 ||
	    EVP_DecryptUpdate(c, cek, &n, bin[1], 40) != 1 || n != 32 ||
	    EVP_DecryptFinal_ex(c, cek + n, &m) != 1 || m != 0)
		goto out;
	EVP_CIPHER_CTX_free(c);

	/* A256GCM, AAD = the encoded header as it is in the compact form */
	rc = OPEN_GCM;
	assert_non_null(c = EVP_CIPHER_CTX_new());
	assert_non_null(pt = malloc(len[3] + 1));
	n = 0;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, cek, bin[2]) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)part[0], (int)plen[0]) != 1)
		goto out;
	n = 0;
	if ((len[3] > 0 && EVP_DecryptUpdate(c, pt, &n, bin[3], (int)len[3]) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, bin[4]) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + n, &m) != 1)
		goto out;
	assert_int_equal((size_t)n + (size_t)m, len[3]);
	*hdr_out = hdr;
	hdr = NULL;
	*pt_out = pt;
	*pt_len = len[3];
	pt = NULL;
	rc = OPEN_OK;
out:
	EVP_CIPHER_CTX_free(c);
	EVP_PKEY_free(eph);
	json_decref(hdr);
	free(pt);
	for (i = 0; i < 5; i++)
		free(bin[i]);
	return rc;
}

static void
test_concat_kdf_rfc7518_appendix_c(void **state)
{
	EVP_PKEY *alice = p256_from(ALICE_X, ALICE_Y, ALICE_D);
	EVP_PKEY *bob = p256_from(BOB_X, BOB_Y, BOB_D);
	EVP_PKEY *alice_pub = p256_from(ALICE_X, ALICE_Y, NULL);
	EVP_PKEY *bob_pub = p256_from(BOB_X, BOB_Y, NULL);
	uint8_t z[32], z2[32], k[64], want[64];
	char s[32];

	(void)state;
	/* Z both ways equals the RFC's */
	assert_int_equal(ecdh(alice, bob_pub, z, sizeof(z)), 32);
	assert_int_equal(ecdh(bob, alice_pub, z2, sizeof(z2)), 32);
	assert_memory_equal(z, rfc_z, 32);
	assert_memory_equal(z2, rfc_z, 32);
	/* "enc" A128GCM, apu "Alice", apv "Bob", keydatalen 128 */
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", (const uint8_t *)"Alice", 5,
	    (const uint8_t *)"Bob", 3, 128, k), 0);
	assert_int_equal(jose_b64url(k, 16, s, sizeof(s)), 22);
	assert_string_equal(s, "VqqN6vgjbSBcIijNcacQGg");
	/* two hash rounds (counter 1 and 2), empty apu/apv: python3-cryptography's ConcatKDFHash */
	assert_int_equal(bs_hex_decode("3f02e7784c78bf16a7ea9d5d62347bd600bf2478e497a159ef564b4d2e4ba128"
	    "736c3ce31028ae5ae14793c36d7378ee70062ac7d86feaccbf2ed2e5ebdf502d", 128, want, 64, 0), 0);
	assert_int_equal(jwe_concat_kdf(z, 32, "A256CBC-HS512", NULL, 0, NULL, 0, 512, k), 0);
	assert_memory_equal(k, want, 64);
	/* a shorter output is a prefix of the longer one only when SuppPubInfo agrees: it does not */
	assert_int_equal(jwe_concat_kdf(z, 32, "A256CBC-HS512", NULL, 0, NULL, 0, 256, k), 0);
	assert_memory_not_equal(k, want, 32);
	/* refusals */
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", NULL, 0, NULL, 0, 0, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", NULL, 0, NULL, 0, 127, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", NULL, 0, NULL, 0, 520, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "", NULL, 0, NULL, 0, 128, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, NULL, NULL, 0, NULL, 0, 128, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 0, "A128GCM", NULL, 0, NULL, 0, 128, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(NULL, 32, "A128GCM", NULL, 0, NULL, 0, 128, k),
	    BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", NULL, 1, NULL, 0, 128, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", NULL, 0, NULL, 1, 128, k), BS_ERR_INVALID);
	assert_int_equal(jwe_concat_kdf(z, 32, "A128GCM", z, JWE_KDF_PARTY_MAX + 1, NULL, 0, 128, k),
	    BS_ERR_INVALID);
	EVP_PKEY_free(alice);
	EVP_PKEY_free(bob);
	EVP_PKEY_free(alice_pub);
	EVP_PKEY_free(bob_pub);
}

/* Encrypts pt to key, checks the compact form's shape, opens it and compares. */
static void
round_trip(EVP_PKEY *key, const uint8_t *spki, size_t spki_len, const char *kid, const char *cty,
    const uint8_t *pt, size_t pt_len)
{
	char *jwe = NULL;
	json_t *hdr = NULL;
	uint8_t *got = NULL;
	size_t got_len = 0, dots = 0, i;

	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, kid, cty, pt, pt_len, &jwe), 0);
	assert_non_null(jwe);
	for (i = 0; jwe[i] != '\0'; i++) {
		assert_true((jwe[i] >= 'A' && jwe[i] <= 'Z') || (jwe[i] >= 'a' && jwe[i] <= 'z') ||
		    (jwe[i] >= '0' && jwe[i] <= '9') || jwe[i] == '-' || jwe[i] == '_' || jwe[i] == '.');
		dots += jwe[i] == '.';
	}
	assert_int_equal(dots, 4);
	assert_int_equal(jwe_open(jwe, key, &hdr, &got, &got_len), OPEN_OK);
	assert_int_equal(got_len, pt_len);
	if (pt_len > 0)
		assert_memory_equal(got, pt, pt_len);
	if (kid != NULL)
		assert_string_equal(hstr(hdr, "kid"), kid);
	else
		assert_null(json_object_get(hdr, "kid"));
	if (cty != NULL)
		assert_string_equal(hstr(hdr, "cty"), cty);
	else
		assert_null(json_object_get(hdr, "cty"));
	json_decref(hdr);
	free(got);
	free(jwe);
}

static void
test_round_trip(void **state)
{
	uint8_t *spki = NULL, big[5000];
	size_t spki_len = 0, i;
	EVP_PKEY *key = keygen("EC", "P-256", &spki, &spki_len);
	char kid[JWE_PARAM_MAX + 1], *a = NULL, *b = NULL;
	static const char msg[] = "Live long and prosper.";

	(void)state;
	round_trip(key, spki, spki_len, NULL, NULL, (const uint8_t *)msg, strlen(msg));
	round_trip(key, spki, spki_len, "vehicle-key-7", NULL, (const uint8_t *)msg, strlen(msg));
	round_trip(key, spki, spki_len, NULL, "JWT", (const uint8_t *)msg, strlen(msg));
	round_trip(key, spki, spki_len, "k 1/+=~!", "application/json", (const uint8_t *)msg,
	    strlen(msg));
	round_trip(key, spki, spki_len, NULL, NULL, NULL, 0);      /* empty plaintext */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	for (i = 1; i <= 17; i++)                                    /* every length mod 3, mod 16 */
		round_trip(key, spki, spki_len, "k", NULL, big, i);
	round_trip(key, spki, spki_len, NULL, NULL, big, sizeof(big));
	/* the longest kid and cty */
	memset(kid, 'k', JWE_PARAM_MAX);
	kid[JWE_PARAM_MAX] = '\0';
	round_trip(key, spki, spki_len, kid, kid, big, 100);
	/* a fresh ephemeral key, CEK and IV every time */
	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, NULL, NULL, big, 32, &a), 0);
	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, NULL, NULL, big, 32, &b), 0);
	assert_true(strchr(a, '.') - a == strchr(b, '.') - b);
	assert_true(strcmp(a, b) != 0);
	assert_true(memcmp(a, b, (size_t)(strchr(a, '.') - a)) != 0);          /* epk differs */
	free(a);
	free(b);
	OPENSSL_free(spki);
	EVP_PKEY_free(key);
}

/* A copy of jwe with the first character of part p changed within the alphabet. */
static char *
flip(const char *jwe, int p)
{
	char *s = strdup(jwe), *q = s;

	assert_non_null(s);
	for (; p > 0; p--)
		q = strchr(q, '.') + 1;
	*q = *q == 'A' ? 'B' : 'A';
	return s;
}

static void
test_tampering(void **state)
{
	uint8_t *spki = NULL, *hdr = NULL, *got = NULL;
	size_t spki_len = 0, hdr_len = 0, got_len = 0;
	EVP_PKEY *key = keygen("EC", "P-256", &spki, &spki_len);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *jwe = NULL, *t, *dot, *kidp, h64[1024];
	json_t *h = NULL;
	static const char msg[] = "attack at dawn";
	size_t n;

	(void)state;
	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, "kid-1", NULL,
	    (const uint8_t *)msg, strlen(msg), &jwe), 0);
	assert_int_equal(jwe_open(jwe, key, &h, &got, &got_len), OPEN_OK);
	json_decref(h);
	free(got);
	/* another recipient's key: the KEK differs and the unwrap's check fails */
	assert_int_equal(jwe_open(jwe, other, &h, &got, &got_len), OPEN_UNWRAP);
	/* the encrypted key changed */
	t = flip(jwe, 1);
	assert_int_equal(jwe_open(t, key, &h, &got, &got_len), OPEN_UNWRAP);
	free(t);
	/* IV, ciphertext, tag changed: GCM refuses */
	for (int p = 2; p <= 4; p++) {
		t = flip(jwe, p);
		assert_int_equal(jwe_open(t, key, &h, &got, &got_len), OPEN_GCM);
		free(t);
	}
	/*
	 * The header changed but epk kept: the same KEK unwraps the CEK, and
	 * only the AAD (the encoded header) catches it. "kid-1" -> "kid-2".
	 */
	dot = strchr(jwe, '.');
	assert_int_equal(jose_b64url_decode(jwe, (size_t)(dot - jwe), &hdr, &hdr_len), 0);
	for (n = 0, kidp = NULL; n + 5 <= hdr_len && kidp == NULL; n++)
		if (memcmp(hdr + n, "kid-1", 5) == 0)
			kidp = (char *)hdr + n;
	assert_non_null(kidp);
	kidp[4] = '2';
	assert_true(jose_b64url(hdr, hdr_len, h64, sizeof(h64)) > 0);
	n = strlen(h64) + strlen(dot) + 1;
	assert_non_null(t = malloc(n));
	memcpy(t, h64, strlen(h64));
	memcpy(t + strlen(h64), dot, strlen(dot) + 1);
	assert_int_equal(jwe_open(t, key, &h, &got, &got_len), OPEN_GCM);
	free(t);
	free(hdr);
	/* a part dropped, a part added */
	*strrchr(jwe, '.') = '\0';
	assert_int_equal(jwe_open(jwe, key, &h, &got, &got_len), OPEN_FORMAT);
	free(jwe);
	OPENSSL_free(spki);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void
refuse(const uint8_t *spki, size_t len, const char *kid, const char *cty, const uint8_t *pt,
    size_t pt_len, int want)
{
	char *out = (char *)"untouched";

	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, len, kid, cty, pt, pt_len, &out), want);
	assert_string_equal(out, "untouched");
}

static void
test_refusals(void **state)
{
	uint8_t *spki = NULL, *ed = NULL, *p384 = NULL, *x25519 = NULL, bad[200];
	size_t spki_len = 0, ed_len = 0, p384_len = 0, x25519_len = 0;
	EVP_PKEY *key = keygen("EC", "P-256", &spki, &spki_len);
	EVP_PKEY *edk = keygen("ED25519", NULL, &ed, &ed_len);
	EVP_PKEY *k384 = keygen("EC", "P-384", &p384, &p384_len);
	EVP_PKEY *kx = keygen("X25519", NULL, &x25519, &x25519_len);
	const uint8_t *pt = (const uint8_t *)"x";
	char kid[JWE_PARAM_MAX + 2], *out = NULL;

	(void)state;
	/* not P-256 */
	refuse(ed, ed_len, NULL, NULL, pt, 1, BS_ERR_INVALID);
	refuse(p384, p384_len, NULL, NULL, pt, 1, BS_ERR_INVALID);
	refuse(x25519, x25519_len, NULL, NULL, pt, 1, BS_ERR_INVALID);
	/* not one SPKI: junk, truncated, a trailing byte, empty, NULL */
	refuse((const uint8_t *)"junk", 4, NULL, NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len - 1, NULL, NULL, pt, 1, BS_ERR_INVALID);
	assert_true(spki_len < sizeof(bad));
	memcpy(bad, spki, spki_len);
	bad[spki_len] = 0;
	refuse(bad, spki_len + 1, NULL, NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, 0, NULL, NULL, pt, 1, BS_ERR_INVALID);
	refuse(NULL, spki_len, NULL, NULL, pt, 1, BS_ERR_INVALID);
	/* a point off the curve (the last byte of y changed) */
	bad[spki_len - 1] ^= 1;
	refuse(bad, spki_len, NULL, NULL, pt, 1, BS_ERR_INVALID);
	/* kid and cty: printable ASCII without '"' and '\', 1..JWE_PARAM_MAX */
	refuse(spki, spki_len, "", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "a\"b", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "a\\b", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "a\nb", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "a\tb", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "a\x7f", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, "caf\xc3\xa9", NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, NULL, "", pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, NULL, "x\"", pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, NULL, "\x01", pt, 1, BS_ERR_INVALID);
	memset(kid, 'k', JWE_PARAM_MAX + 1);
	kid[JWE_PARAM_MAX + 1] = '\0';
	refuse(spki, spki_len, kid, NULL, pt, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, NULL, kid, pt, 1, BS_ERR_INVALID);
	/* plaintext: NULL with a length, over the cap */
	refuse(spki, spki_len, NULL, NULL, NULL, 1, BS_ERR_INVALID);
	refuse(spki, spki_len, NULL, NULL, pt, (size_t)JWE_PLAINTEXT_MAX + 1, BS_ERR_TOO_BIG);
	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, NULL, NULL, pt, 1, NULL),
	    BS_ERR_INVALID);
	/* and the good key still works */
	assert_int_equal(jwe_encrypt_ecdh_es_a256kw(spki, spki_len, NULL, NULL, pt, 1, &out), 0);
	free(out);
	OPENSSL_free(spki);
	OPENSSL_free(ed);
	OPENSSL_free(p384);
	OPENSSL_free(x25519);
	EVP_PKEY_free(key);
	EVP_PKEY_free(edk);
	EVP_PKEY_free(k384);
	EVP_PKEY_free(kx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concat_kdf_rfc7518_appendix_c),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
