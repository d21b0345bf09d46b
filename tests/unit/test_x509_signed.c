/*
 * test_x509_signed.c - certificates whose signature is made outside
 * OpenSSL (formats/x509_signed.h), with a software key standing in for the
 * HSM: the assembled DER is byte for byte what OpenSSL's own X509_sign
 * writes for the same TBS and signature; a self-signed CA and a leaf it
 * issues verify as a chain (X509_verify_cert, what `openssl verify` does);
 * a wrong key or a flipped signature bit is refused; bad input is refused;
 * a CRL, the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "formats/x509_signed.h"

/* A v3 certificate of subject CN=cn, issued by issuer (NULL: itself), holding key's public half. */
static X509 *
make_cert(const char *cn, X509 *issuer, EVP_PKEY *key, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"));
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
	    ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"));
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	X509_NAME_free(n);
	return x;
}

/* Signs SHA-256 of tbs with key ("the HSM"): a DER ECDSA-Sig-Value. */
static size_t
hsm_sign(EVP_PKEY *key, const uint8_t *tbs, size_t len, uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	size_t n = cap;

	assert_non_null(m);
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(m, sig, &n, tbs, len), 1);
	EVP_MD_CTX_free(m);
	return n;
}

/* x signed by signer (outside OpenSSL's X509_sign); returns the finished certificate. */
static X509 *
sign_outside(X509 *x, EVP_PKEY *signer, EVP_PKEY *check, int *rc)
{
	uint8_t *tbs = NULL, sig[80];
	size_t len = 0, n;
	X509 *out = NULL;

	assert_int_equal(x509_tbs_ecdsa(x, &tbs, &len), 0);
	n = hsm_sign(signer, tbs, len, sig, sizeof(sig));
	*rc = x509_signed_cert(tbs, len, sig, n, check, &out);
	OPENSSL_free(tbs);
	return out;
}

static void
test_same_der_as_openssl(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x;
	const ASN1_BIT_STRING *sig;
	unsigned char *tbs = NULL, *want = NULL;
	uint8_t *got = NULL;
	size_t glen = 0;
	int tlen, wlen;

	(void)state;
	assert_non_null(k);
	x = make_cert("openssl", NULL, k, 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_get0_signature(&sig, NULL, x);
	assert_true((tlen = i2d_re_X509_tbs(x, &tbs)) > 0);
	assert_true((wlen = i2d_X509(x, &want)) > 0);
	assert_int_equal(x509_signed_wrap(tbs, (size_t)tlen, ASN1_STRING_get0_data(sig),
	    (size_t)ASN1_STRING_length(sig), &got, &glen), 0);
	assert_int_equal(glen, (size_t)wlen);
	assert_memory_equal(got, want, glen);
	OPENSSL_free(tbs);
	OPENSSL_free(want);
	OPENSSL_free(got);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_chain_verifies(void **state)
{
	EVP_PKEY *cak = EVP_EC_gen("P-256"), *leafk = EVP_EC_gen("P-256");
	X509 *ca, *leaf, *tmpl;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	(void)state;
	assert_non_null(cak);
	assert_non_null(leafk);
	tmpl = make_cert("hsm ca", NULL, cak, 1);
	ca = sign_outside(tmpl, cak, cak, &rc);
	assert_int_equal(rc, 0);
	X509_free(tmpl);
	assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
	tmpl = make_cert("vehicle", ca, leafk, 0);
	leaf = sign_outside(tmpl, cak, cak, &rc);
	assert_int_equal(rc, 0);
	X509_free(tmpl);
	assert_int_equal(X509_STORE_add_cert(st, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(leafk);
	EVP_PKEY_free(cak);
}

static void
test_wrong_key_or_bad_signature_refused(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	X509 *x = make_cert("ca", NULL, k, 1), *out = NULL;
	uint8_t *tbs = NULL, sig[80];
	size_t len = 0, n;
	int rc = 0;

	(void)state;
	/* signed by another key than the one it is checked with */
	assert_null(sign_outside(x, other, k, &rc));
	assert_int_equal(rc, BS_ERR_SIG_INVALID);
	/* one bit of the signature flipped */
	assert_int_equal(x509_tbs_ecdsa(x, &tbs, &len), 0);
	n = hsm_sign(k, tbs, len, sig, sizeof(sig));
	sig[n - 1] ^= 0x01;
	rc = x509_signed_cert(tbs, len, sig, n, k, &out);
	assert_true(rc == BS_ERR_SIG_INVALID || rc == BS_ERR_INVALID);
	assert_null(out);
	/* a TBS that is not one */
	sig[n - 1] ^= 0x01;
	assert_int_equal(x509_signed_cert(sig, n, sig, n, k, &out), BS_ERR_INVALID);
	assert_null(out);
	/* empty input */
	assert_int_equal(x509_signed_cert(tbs, 0, sig, n, k, &out), BS_ERR_INVALID);
	assert_int_equal(x509_signed_cert(tbs, len, sig, 0, k, &out), BS_ERR_INVALID);
	OPENSSL_free(tbs);
	X509_free(x);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

/* A CRL: the same bytes as OpenSSL's own signing; then made outside and checked. */
static void
test_crl(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	X509 *ca = make_cert("crl ca", NULL, k, 1);
	X509_CRL *crl = X509_CRL_new(), *out = NULL;
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	ASN1_TIME *t = ASN1_TIME_new();
	const ASN1_BIT_STRING *sig;
	unsigned char *tbs = NULL, *want = NULL;
	uint8_t *got = NULL, *tbs2 = NULL, s2[80];
	size_t glen = 0, len2 = 0, n;
	int tlen, wlen;

	(void)state;
	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
	assert_non_null(X509_gmtime_adj(t, 0));
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_non_null(X509_gmtime_adj(t, 86400));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	assert_int_equal(ASN1_INTEGER_set(serial, 4242), 1);
	assert_int_equal(X509_REVOKED_set_serialNumber(rv, serial), 1);
	assert_non_null(X509_gmtime_adj(t, -60));
	assert_int_equal(X509_REVOKED_set_revocationDate(rv, t), 1);
	assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
	assert_int_equal(X509_CRL_sort(crl), 1);
	/* OpenSSL's own signature, wrapped again: the same DER */
	assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
	X509_CRL_get0_signature(crl, &sig, NULL);
	assert_true((tlen = i2d_re_X509_CRL_tbs(crl, &tbs)) > 0);
	assert_true((wlen = i2d_X509_CRL(crl, &want)) > 0);
	assert_int_equal(x509_signed_wrap(tbs, (size_t)tlen, ASN1_STRING_get0_data(sig),
	    (size_t)ASN1_STRING_length(sig), &got, &glen), 0);
	assert_int_equal(glen, (size_t)wlen);
	assert_memory_equal(got, want, glen);
	/* made outside: checked with the right key only */
	assert_int_equal(x509_crl_tbs_ecdsa(crl, &tbs2, &len2), 0);
	n = hsm_sign(k, tbs2, len2, s2, sizeof(s2));
	assert_int_equal(x509_signed_crl(tbs2, len2, s2, n, other, &out), BS_ERR_SIG_INVALID);
	assert_null(out);
	assert_int_equal(x509_signed_crl(tbs2, len2, s2, n, k, &out), 0);
	assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(
	    sk_X509_REVOKED_value(X509_CRL_get_REVOKED(out), 0))), 4242);
	X509_CRL_free(out);
	OPENSSL_free(tbs);
	OPENSSL_free(tbs2);
	OPENSSL_free(want);
	OPENSSL_free(got);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(serial);
	X509_CRL_free(crl);
	X509_free(ca);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_der_as_openssl),
		cmocka_unit_test(test_chain_verifies),
		cmocka_unit_test(test_wrong_key_or_bad_signature_refused),
		cmocka_unit_test(test_crl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
