/*
 * test_csr.c - the CSR check of the certificate service (formats/csr.h):
 * P-256 and Ed25519 requests give their key; a P-384 key, a P-256 key
 * with explicit curve parameters, a
 * signature that does not verify (proof of possession), garbage, an empty
 * or over-long input are refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "formats/csr.h"

/* A PEM CSR of key, signed by signer (the key itself for a proper one). */
static char *
make_csr(EVP_PKEY *key, EVP_PKEY *signer)
{
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m = NULL;
	char *out;
	int ed = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519;

	assert_non_null(r);
	assert_non_null(b);
	assert_int_equal(X509_REQ_set_pubkey(r, key), 1);
	assert_true(X509_REQ_sign(r, signer, ed ? NULL : EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(b, r), 1);
	assert_int_equal(BIO_get_mem_ptr(b, &m), 1);
	out = strndup(m->data, m->length);
	assert_non_null(out);
	BIO_free(b);
	X509_REQ_free(r);
	return out;
}

/* A P-256 key whose encoding carries the explicit curve parameters. */
static EVP_PKEY *
explicit_p256(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	OSSL_PARAM p[3];

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
	    (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0);
	p[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, p), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static void
want(const char *pem, size_t len, int ok, const char *reason)
{
	EVP_PKEY *k = NULL;
	const char *why = NULL;
	int rc = csr_public_key(pem, len, &k, &why);

	if (ok) {
		assert_int_equal(rc, 0);
		assert_non_null(k);
		assert_null(why);
	} else {
		assert_int_equal(rc, BS_ERR_INVALID);
		assert_null(k);
		assert_non_null(why);
		assert_non_null(strstr(why, reason));
	}
	EVP_PKEY_free(k);
}

static void
test_csr(void **state)
{
	EVP_PKEY *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *other = EVP_EC_gen("P-256"), *explicit;
	char *pem, *big;

	(void)state;
	pem = make_csr(p256, p256);
	want(pem, strlen(pem), 1, NULL);
	free(pem);
	pem = make_csr(ed, ed);
	want(pem, strlen(pem), 1, NULL);
	free(pem);
	pem = make_csr(p384, p384);
	want(pem, strlen(pem), 0, "ECDSA P-256 or Ed25519");
	free(pem);
	/* P-256 with its parameters spelled out instead of the named curve (RFC 5480) */
	explicit = explicit_p256();
	pem = make_csr(explicit, explicit);
	want(pem, strlen(pem), 0, "ECDSA P-256 or Ed25519");
	free(pem);
	EVP_PKEY_free(explicit);
	/* signed by another key than the one it carries */
	pem = make_csr(p256, other);
	want(pem, strlen(pem), 0, "proof of possession");
	free(pem);
	want("garbage", 7, 0, "not a PEM");
	want("", 0, 0, "not a PEM");
	big = calloc(1, CSR_PEM_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', CSR_PEM_MAX + 1);
	want(big, CSR_PEM_MAX + 1, 0, "not a PEM");
	free(big);
	EVP_PKEY_free(other);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p256);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
