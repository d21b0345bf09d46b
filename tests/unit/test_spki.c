/*
 * test_spki.c - unit tests for src/formats/spki.c: SubjectPublicKeyInfo
 * built from raw public key material equals OpenSSL's own encoding of the
 * same key; points off the curve, wrong lengths and RSA keys of another
 * size are refused; CKA_EC_POINT unwrapping accepts the DER OCTET STRING
 * and the raw point and nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/spki.h"

static void
der_of(EVP_PKEY *p, uint8_t **out, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(p, &der);

	assert_true(n > 0);
	*out = der;
	*len = (size_t)n;
}

static void
test_ec_p256(void **state)
{
	EVP_PKEY *p = EVP_EC_gen("P-256");
	uint8_t pt[65], wrapped[67], *want, *got = NULL;
	const uint8_t *inner;
	size_t ptlen = 0, wlen, glen;

	(void)state;
	assert_non_null(p);
	assert_int_equal(EVP_PKEY_get_octet_string_param(p, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
	    &ptlen), 1);
	assert_int_equal(ptlen, 65);
	der_of(p, &want, &wlen);
	assert_int_equal(spki_from_ec_p256(pt, ptlen, &got, &glen), 0);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	/* CKA_EC_POINT: DER OCTET STRING or raw */
	wrapped[0] = 0x04;
	wrapped[1] = 65;
	memcpy(wrapped + 2, pt, 65);
	assert_int_equal(spki_ec_point_unwrap(wrapped, 67, 65, &inner), 0);
	assert_ptr_equal(inner, wrapped + 2);
	assert_int_equal(spki_ec_point_unwrap(pt, 65, 65, &inner), 0);
	assert_ptr_equal(inner, pt);
	assert_int_not_equal(spki_ec_point_unwrap(wrapped, 66, 65, &inner), 0);
	wrapped[1] = 64;
	assert_int_not_equal(spki_ec_point_unwrap(wrapped, 67, 65, &inner), 0);
	/* a point off the curve */
	pt[64] ^= 1;
	got = NULL;
	assert_int_not_equal(spki_from_ec_p256(pt, ptlen, &got, &glen), 0);
	assert_null(got);
	assert_int_not_equal(spki_from_ec_p256(pt, 64, &got, &glen), 0);
	OPENSSL_free(want);
	EVP_PKEY_free(p);
}

static void
test_ed25519(void **state)
{
	EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t raw[32], *want, *got = NULL;
	size_t rlen = sizeof(raw), wlen, glen;

	(void)state;
	assert_non_null(p);
	assert_int_equal(EVP_PKEY_get_raw_public_key(p, raw, &rlen), 1);
	der_of(p, &want, &wlen);
	assert_int_equal(spki_from_ed25519(raw, rlen, &got, &glen), 0);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	got = NULL;
	assert_int_not_equal(spki_from_ed25519(raw, 31, &got, &glen), 0);
	assert_null(got);
	OPENSSL_free(want);
	EVP_PKEY_free(p);
}

static void
test_rsa(void **state)
{
	static const uint8_t e[] = { 1, 0, 1 }, e3[] = { 3 };
	EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	BIGNUM *n = NULL;
	uint8_t nbe[512], *want, *got = NULL;
	size_t wlen, glen;
	int nlen;

	(void)state;
	assert_non_null(p);
	assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	nlen = BN_bn2bin(n, nbe);
	der_of(p, &want, &wlen);
	assert_int_equal(spki_from_rsa(nbe, (size_t)nlen, e, sizeof(e), &got, &glen), 0);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	got = NULL;
	assert_int_equal(spki_from_rsa(nbe, (size_t)nlen, e3, sizeof(e3), &got, &glen),
	    BS_ERR_INVALID);
	BN_free(n);
	n = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	nlen = BN_bn2bin(n, nbe);
	assert_int_equal(spki_from_rsa(nbe, (size_t)nlen, e, sizeof(e), &got, &glen),
	    BS_ERR_INVALID);
	assert_null(got);
	BN_free(n);
	OPENSSL_free(want);
	EVP_PKEY_free(p);
	EVP_PKEY_free(small);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ec_p256),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_rsa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
