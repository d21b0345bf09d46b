/*
 * sigverify.h - public-key signature verification with OpenSSL (no HSM: a
 * public key is public). Used by KeyService.Verify and by tests.
 *
 * Algorithms match boltseal.v1.Algorithm: ECDSA P-256 over SHA-256 (DER or
 * raw r||s), Ed25519 (pure), RSA-PSS with SHA-256, MGF1-SHA-256, salt 32.
 */
#ifndef BS_SIGVERIFY_H
#define BS_SIGVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/bs_error.h"
#include "types/types.h"

/*
 * Determines the algorithm of a DER SubjectPublicKeyInfo: EC P-256, Ed25519
 * or RSA of 2048..4096 bits with e = 65537 (treated as RSA-PSS-SHA256; other
 * sizes and exponents are refused, so that a caller's key bounds the work).
 * Returns 0 or
 * BS_ERR_INVALID / BS_ERR_UNSUPPORTED.
 */
int sigverify_spki_alg(const uint8_t *spki, size_t spki_len, enum bs_alg *alg_out) BS_WUR;

/*
 * Verifies sig over data. If is_digest, data is a 32-byte SHA-256 digest
 * (not allowed for Ed25519: BS_ERR_INVALID); otherwise data is the message.
 * fmt applies to ECDSA only. Returns 0 if valid, BS_ERR_SIG_INVALID if not
 * (including a malformed signature), BS_ERR_INVALID for a bad key or input,
 * BS_ERR_CRYPTO on library failure.
 */
int sigverify_verify(const uint8_t *spki, size_t spki_len, enum bs_alg alg, int is_digest,
    const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len,
    enum bs_sig_format fmt) BS_WUR;

/*
 * The two halves of sigverify_verify, for a caller that verifies many
 * signatures of one key: the DER SPKI parsed once into *pkey (EVP_PKEY_free
 * it; safe to share between threads for verifying) with its algorithm (0,
 * BS_ERR_INVALID, BS_ERR_UNSUPPORTED as sigverify_spki_alg), then each
 * signature checked with it (the results of sigverify_verify; alg must be
 * the key's).
 */
int sigverify_key_parse(const uint8_t *spki, size_t spki_len, EVP_PKEY **pkey,
    enum bs_alg *alg) BS_WUR;
int sigverify_verify_key(EVP_PKEY *pkey, enum bs_alg alg, int is_digest, const uint8_t *data,
    size_t data_len, const uint8_t *sig, size_t sig_len, enum bs_sig_format fmt) BS_WUR;

/*
 * Converts DER SPKI to PEM ("-----BEGIN PUBLIC KEY-----"). *pem_out is
 * malloc'd and NUL-terminated; caller frees. Returns 0 or an error.
 */
int sigverify_spki_to_pem(const uint8_t *spki, size_t spki_len, char **pem_out) BS_WUR;

#endif
