/*
 * csr.h - the public key of a PKCS#10 certificate request (RFC 2986), the
 * one thing boltseal's CA takes from a CSR: the request must parse (PEM),
 * its self-signature must verify with its own key (proof of possession),
 * and the key must be ECDSA P-256 (as the named curve, RFC 5480) or
 * Ed25519. Its subject, attributes and
 * requested extensions are never read.
 */
#ifndef BS_CSR_H
#define BS_CSR_H

#include <stddef.h>

#include <openssl/evp.h>

#include "common/bs_error.h"

#define CSR_PEM_MAX (16 * 1024)

/*
 * The key of the CSR in pem[0..len) into *out (EVP_PKEY_free it). Returns
 * 0, or BS_ERR_INVALID with *why saying what is wrong (a static string):
 * not a PEM certificate request (or over CSR_PEM_MAX), a signature that
 * does not verify, another kind of key.
 */
int csr_public_key(const char *pem, size_t len, EVP_PKEY **out, const char **why) BS_WUR;

#endif
