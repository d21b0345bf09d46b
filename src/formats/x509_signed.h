/*
 * x509_signed.h - X.509 certificates (RFC 5280) whose signature is made
 * elsewhere: by a CA key in the HSM, which OpenSSL cannot use directly.
 * The certificate is built with OpenSSL's X509 API; x509_tbs_ecdsa gives
 * the DER of its TBSCertificate with ecdsa-with-SHA256 as the signature
 * algorithm (RFC 5758, section 3.2), the HSM signs its SHA-256, and
 * x509_signed_wrap puts TBS, algorithm and signature together
 * (Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue }; a CertificateList, the CRL, has the same outer shape
 * and is made the same way).
 */
#ifndef BS_X509_SIGNED_H
#define BS_X509_SIGNED_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/bs_error.h"

/*
 * Sets ecdsa-with-SHA256 as x's signature algorithm (in the TBS and outside
 * it) and returns the DER of its TBSCertificate in *tbs (*len bytes; the
 * caller frees it with OPENSSL_free). x's own signature is a placeholder
 * until it is replaced by x509_signed_wrap's result. Returns 0,
 * BS_ERR_NOMEM or BS_ERR_CRYPTO.
 */
int x509_tbs_ecdsa(X509 *x, uint8_t **tbs, size_t *len) BS_WUR;

/*
 * The DER of SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING sig } into *out
 * (*outlen bytes; the caller frees it with OPENSSL_free). sig is a DER
 * ECDSA-Sig-Value (RFC 5480 / RFC 3279 ECDSA-Sig-Value). Returns 0,
 * BS_ERR_INVALID (an empty or over-long input) or BS_ERR_NOMEM.
 */
int x509_signed_wrap(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    uint8_t **out, size_t *outlen) BS_WUR;

/*
 * x509_signed_wrap, then parsed as a certificate and its signature checked
 * with issuer_key (the CA's public key): *out is the finished certificate.
 * Returns 0, BS_ERR_NOMEM, BS_ERR_INVALID (the result does not parse as a
 * certificate), or BS_ERR_SIG_INVALID (the signature does not verify: a
 * wrong key or a corrupted answer); nothing is returned then.
 */
int x509_signed_cert(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509 **out) BS_WUR;

/* x509_tbs_ecdsa for a CRL (TBSCertList, RFC 5280 section 5.1). */
int x509_crl_tbs_ecdsa(X509_CRL *crl, uint8_t **tbs, size_t *len) BS_WUR;

/* x509_signed_cert for a CRL: wrapped, parsed, its signature checked with issuer_key. */
int x509_signed_crl(const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen,
    EVP_PKEY *issuer_key, X509_CRL **out) BS_WUR;

#endif
