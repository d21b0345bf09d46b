/*
 * spki.h - DER SubjectPublicKeyInfo from raw public key material, as the
 * HSM hands it out (CKA_EC_POINT, CKA_VALUE of an EdDSA key, CKA_MODULUS
 * and CKA_PUBLIC_EXPONENT). Every key is checked by OpenSSL before it is
 * encoded. Outputs are malloc'd (caller frees) and set only on success.
 */
#ifndef BS_SPKI_H
#define BS_SPKI_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/*
 * The point inside a CKA_EC_POINT value v: a DER OCTET STRING (the
 * standard) or, from some modules, the raw point; want is the point's
 * length. *pt_out points into v. 0 or BS_ERR_INVALID.
 */
int spki_ec_point_unwrap(const uint8_t *v, size_t len, size_t want, const uint8_t **pt_out) BS_WUR;

/* An uncompressed P-256 point (65 bytes). 0, BS_ERR_INVALID (not on the curve), BS_ERR_CRYPTO. */
int spki_from_ec_p256(const uint8_t *pt, size_t pt_len, uint8_t **spki_out,
    size_t *spki_len_out) BS_WUR;

/* A 32-byte Ed25519 public key. 0, BS_ERR_INVALID, BS_ERR_CRYPTO. */
int spki_from_ed25519(const uint8_t *pt, size_t pt_len, uint8_t **spki_out,
    size_t *spki_len_out) BS_WUR;

/* RSA-3072, e = 65537, from big-endian modulus and exponent. 0, BS_ERR_INVALID, BS_ERR_CRYPTO. */
int spki_from_rsa(const uint8_t *n_be, size_t n_len, const uint8_t *e_be, size_t e_len,
    uint8_t **spki_out, size_t *spki_len_out) BS_WUR;

#endif
