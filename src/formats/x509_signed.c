/*
 * x509_signed.c - certificates signed outside OpenSSL (see x509_signed.h).
 * The signature algorithm fields are set by signing once with a throwaway
 * P-256 key (OpenSSL offers no other way to set them in the TBS); the outer
 * SEQUENCE is written with OpenSSL's ASN.1 helpers; certificates and CRLs differ
 * only in the OpenSSL functions of struct signed_kind.
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

/* What differs between a certificate and a CRL: signing with a key, the TBS's DER. */
struct signed_kind {
	int (*sign)(void *obj, EVP_PKEY *k);
	int (*i2d_tbs)(void *obj, unsigned char **out);
	void *(*d2i)(const unsigned char **p, long len);
	int (*verify)(void *obj, EVP_PKEY *k);
	void (*free_obj)(void *obj);
};

static int
cert_sign(void *o, EVP_PKEY *k)
{
	return X509_sign(o, k, EVP_sha256());
}

static int
cert_i2d_tbs(void *o, unsigned char **out)
{
	return i2d_re_X509_tbs(o, out);
}

static void *
cert_d2i(const unsigned char **p, long len)
{
	return d2i_X509(NULL, p, len);
}

static int
cert_verify(void *o, EVP_PKEY *k)
{
	return X509_verify(o, k);
}

static void
cert_free(void *o)
{
	X509_free(o);
}

static int
crl_sign(void *o, EVP_PKEY *k)
{
	return X509_CRL_sign(o, k, EVP_sha256());
}

static int
crl_i2d_tbs(void *o, unsigned char **out)
{
	return i2d_re_X509_CRL_tbs(o, out);
}

static void *
crl_d2i(const unsigned char **p, long len)
{
	return d2i_X509_CRL(NULL, p, len);
}

static int
crl_verify(void *o, EVP_PKEY *k)
{
	return X509_CRL_verify(o, k);
}

static void
crl_free(void *o)
{
	X509_CRL_free(o);
}

static const struct signed_kind CERT = { cert_sign, cert_i2d_tbs, cert_d2i, cert_verify,
	cert_free };
static const struct signed_kind CRL = { crl_sign, crl_i2d_tbs, crl_d2i, crl_verify, crl_free };

/* The TBS of obj with ecdsa-with-SHA256 set, by signing once with a throwaway key. */
static int
tbs_ecdsa(const struct signed_kind *kind, void *obj, uint8_t **tbs, size_t *len)
{
	EVP_PKEY *tmp = NULL;
	unsigned char *der = NULL;
	int n, rc = BS_ERR_CRYPTO;

	*tbs = NULL;
	*len = 0;
	if ((tmp = EVP_EC_gen("P-256")) == NULL)
		return BS_ERR_CRYPTO;
	if (kind->sign(obj, tmp) <= 0)
		goto out;
	if ((n = kind->i2d_tbs(obj, &der)) <= 0)
		goto out;
	*tbs = der;
	*len = (size_t)n;
	rc = 0;
out:
	EVP_PKEY_free(tmp);
	return rc;
}

int
x509_tbs_ecdsa(X509 *x, uint8_t **tbs, size_t *len)
{
	return tbs_ecdsa(&CERT, x, tbs, len);
}

int
x509_crl_tbs_ecdsa(X509_CRL *crl, uint8_t **tbs, size_t *len)
{
	return tbs_ecdsa(&CRL, crl, tbs, len);
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

/* Wrapped, parsed (the whole of it), its signature checked with issuer_key. */
static int
signed_obj(const struct signed_kind *kind, const uint8_t *tbs, size_t tbslen, const uint8_t *sig,
    size_t siglen, EVP_PKEY *issuer_key, void **out)
{
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	void *obj;
	int rc;

	*out = NULL;
	if ((rc = x509_signed_wrap(tbs, tbslen, sig, siglen, &der, &len)) != 0)
		return rc;
	p = der;
	obj = kind->d2i(&p, (long)len);
	rc = obj == NULL || (size_t)(p - der) != len ? BS_ERR_INVALID :
	    kind->verify(obj, issuer_key) == 1 ? 0 : BS_ERR_SIG_INVALID;
	OPENSSL_free(der);
	if (rc != 0) {
		if (obj != NULL)
			kind->free_obj(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

int
x509_signed_cert(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509 **out)
{
	void *o = NULL;
	int rc = signed_obj(&CERT, tbs, tbslen, sig, siglen, issuer_key, &o);

	*out = o;
	return rc;
}

int
x509_signed_crl(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509_CRL **out)
{
	void *o = NULL;
	int rc = signed_obj(&CRL, tbs, tbslen, sig, siglen, issuer_key, &o);

	*out = o;
	return rc;
}
