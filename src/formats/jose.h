/*
 * jose.h - the pieces of JOSE boltseal's command tokens need: base64url
 * without padding (RFC 7515 section 2, RFC 4648 section 5) and the JWK
 * thumbprint (RFC 7638) of a P-256 or Ed25519 public key, used as "kid".
 */
#ifndef BS_JOSE_H
#define BS_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/* Characters of the unpadded base64url text of n bytes (NUL excluded). */
#define JOSE_B64URL_LEN(n) (((n) * 4 + 2) / 3)
#define JOSE_THUMBPRINT_LEN 43    /* base64url of a SHA-256 */

/*
 * Writes the base64url text of in[0..n) (no padding) and a NUL to out,
 * which holds outlen bytes. Returns the characters written, or -1 when
 * out is too small.
 */
int jose_b64url(const uint8_t *in, size_t n, char *out, size_t outlen);

/*
 * Decodes the base64url text in[0..n) (no padding; RFC 7515 section 2):
 * only the URL-safe alphabet, no '=', no white space, the unused bits of
 * the last character zero, n % 4 != 1, n <= JOSE_B64URL_MAX. 0 and *out
 * (malloc'd, *out_len bytes; free()), BS_ERR_INVALID, BS_ERR_NOMEM.
 */
#define JOSE_B64URL_MAX 65536
int jose_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * The RFC 7638 thumbprint of a DER SubjectPublicKeyInfo: SHA-256 of
 * {"crv":"P-256","kty":"EC","x":..,"y":..} or {"crv":"Ed25519","kty":"OKP",
 * "x":..}, base64url. 0, or BS_ERR_UNSUPPORTED for other keys,
 * BS_ERR_INVALID for bytes that are not an SPKI.
 */
int jose_thumbprint(const uint8_t *spki, size_t len, char out[JOSE_THUMBPRINT_LEN + 1]) BS_WUR;

#endif
