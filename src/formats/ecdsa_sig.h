/*
 * ecdsa_sig.h - ECDSA P-256 signature encodings: raw r||s (IEEE P1363, what
 * PKCS#11 CKM_ECDSA returns) <-> DER ECDSA-Sig-Value (X9.62). Pure, no I/O.
 *
 * The DER decoder is strict: BER (long-form lengths for short values,
 * leading zero bytes, negative integers, trailing data, wrong tags) is
 * rejected, as Wycheproof expects.
 */
#ifndef BS_ECDSA_SIG_H
#define BS_ECDSA_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define ECDSA_P256_RAW_LEN 64
#define ECDSA_P256_DER_MAX 72

/*
 * Encodes raw (64 bytes, r then s, big-endian) as DER into out (cap >= 72).
 * Returns 0 and sets *out_len, or BS_ERR_INVALID (r or s zero), BS_ERR_TOO_BIG.
 */
int ecdsa_sig_raw_to_der(const uint8_t raw[ECDSA_P256_RAW_LEN], uint8_t *out, size_t cap,
    size_t *out_len) BS_WUR;

/*
 * Decodes strict DER into raw r||s (64 bytes). r and s must be positive and
 * fit in 32 bytes. Returns 0 or BS_ERR_INVALID.
 */
int ecdsa_sig_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[ECDSA_P256_RAW_LEN]) BS_WUR;

#endif
