/*
 * x509_signed.c - certificates signed outside OpenSSL (see x509_signed.h).
 * The signature algorithm fields are set by signing once with a throwaway
 * P-256 key (OpenSSL offers no other way to set them in the TBS); the outer
 * SEQUENCE is written with OpenSSL's ASN.1 helpers.
 */
#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/x509_signed.h"

#define WRAP_MAX (1u << 20)

/* AlgorithmIdentifier { ecdsa-with-SHA256 (1.2.840.10045.4.3.2) }, parameters absent (RFC 5758 3.2). */
static const uint8_t ALG_ECDSA_SHA256[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
};

int
x509_tbs_ecdsa(X509 *x, uint8_t **tbs, size_t *len)
{
	EVP_PKEY *tmp = NULL;
	unsigned char *der = NULL;
	int n, rc = BS_ERR_CRYPTO;

	*tbs = NULL;
	*len = 0;
	if ((tmp = EVP_EC_gen("P-256")) == NULL)
		return BS_ERR_CRYPTO;
	if (X509_sign(x, tmp, EVP_sha256()) <= 0)
		goto out;
	if ((n = i2d_re_X509_tbs(x, &der)) <= 0)
		goto out;
	*tbs = der;
	*len = (size_t)n;
	rc = 0;
out:
	EVP_PKEY_free(tmp);
	return rc;
}

int
x509_signed_wrap(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    uint8_t **out, size_t *outlen)
{
	size_t bitlen = siglen + 1, inner;
	int bithdr, total;
	unsigned char *buf, *p;

	*out = NULL;
	*outlen = 0;
	if (tbs == NULL || sig == NULL || tbslen == 0 || siglen == 0 || tbslen > WRAP_MAX ||
	    siglen > WRAP_MAX)
		return BS_ERR_INVALID;
	bithdr = ASN1_object_size(0, (long)bitlen, V_ASN1_BIT_STRING);
	inner = tbslen + sizeof(ALG_ECDSA_SHA256) + (size_t)bithdr;
	if (bithdr <= 0 || inner > INT_MAX ||
	    (total = ASN1_object_size(1, (long)inner, V_ASN1_SEQUENCE)) <= 0)
		return BS_ERR_INVALID;
	if ((buf = OPENSSL_malloc((size_t)total)) == NULL)
		return BS_ERR_NOMEM;
	p = buf;
	ASN1_put_object(&p, 1, (long)inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, tbs, tbslen);
	p += tbslen;
	memcpy(p, ALG_ECDSA_SHA256, sizeof(ALG_ECDSA_SHA256));
	p += sizeof(ALG_ECDSA_SHA256);
	ASN1_put_object(&p, 0, (long)bitlen, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL);
	*p++ = 0x00;   /* no unused bits */
	memcpy(p, sig, siglen);
	p += siglen;
	*out = buf;
	*outlen = (size_t)(p - buf);
	return 0;
}

int
x509_signed_cert(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509 **out)
{
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	X509 *x;
	int rc;

	*out = NULL;
	if ((rc = x509_signed_wrap(tbs, tbslen, sig, siglen, &der, &len)) != 0)
		return rc;
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	rc = x == NULL || (size_t)(p - der) != len ? BS_ERR_INVALID :
	    X509_verify(x, issuer_key) == 1 ? 0 : BS_ERR_SIG_INVALID;
	OPENSSL_free(der);
	if (rc != 0) {
		X509_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

int
x509_crl_tbs_ecdsa(X509_CRL *crl, uint8_t **tbs, size_t *len)
{
	EVP_PKEY *tmp = NULL;
	unsigned char *der = NULL;
	int n, rc = BS_ERR_CRYPTO;

	*tbs = NULL;
	*len = 0;
	if ((tmp = EVP_EC_gen("P-256")) == NULL)
		return BS_ERR_CRYPTO;
	if (X509_CRL_sign(crl, tmp, EVP_sha256()) <= 0)
		goto out;
	if ((n = i2d_re_X509_CRL_tbs(crl, &der)) <= 0)
		goto out;
	*tbs = der;
	*len = (size_t)n;
	rc = 0;
out:
	EVP_PKEY_free(tmp);
	return rc;
}

int
x509_signed_crl(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509_CRL **out)
{
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	X509_CRL *crl;
	int rc;

	*out = NULL;
	if ((rc = x509_signed_wrap(tbs, tbslen, sig, siglen, &der, &len)) != 0)
		return rc;
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	rc = crl == NULL || (size_t)(p - der) != len ? BS_ERR_INVALID :
	    X509_CRL_verify(crl, issuer_key) == 1 ? 0 : BS_ERR_SIG_INVALID;
	OPENSSL_free(der);
	if (rc != 0) {
		X509_CRL_free(crl);
		return rc;
	}
	*out = crl;
	return 0;
}
