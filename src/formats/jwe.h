/*
 * jwe.h - JSON Web Encryption (RFC 7516) to a recipient's P-256 public key,
 * compact serialization, one algorithm pair only:
 *   "alg":"ECDH-ES+A256KW"  ephemeral-static ECDH on P-256, the Concat KDF
 *                           of NIST SP 800-56A (section 5.8.1) as RFC 7518
 *                           section 4.6.2 profiles it, and AES-256 Key Wrap
 *                           (RFC 3394, default IV; RFC 7518 section 4.4) of
 *                           a random content-encryption key;
 *   "enc":"A256GCM"         AES-256-GCM, 96-bit random IV, 128-bit tag
 *                           (RFC 7518 section 5.3).
 * Pure: bytes in, a string out; OpenSSL 3 underneath, no I/O, no state.
 *
 * The protected header is exactly
 *   {"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256",
 *    "x":X,"y":Y}[,"kid":KID][,"cty":CTY]}
 * (one line, no white space), X and Y the base64url of the ephemeral key's
 * 32-byte, left-padded coordinates. No "apu"/"apv": PartyUInfo and
 * PartyVInfo are empty. The GCM additional data is the ASCII of the
 * base64url protected header (RFC 7516 section 5.1 step 14).
 */
#ifndef BS_JWE_H
#define BS_JWE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define JWE_ALG "ECDH-ES+A256KW"
#define JWE_ENC "A256GCM"
#define JWE_CEK_LEN 32                /* A256GCM key, also the A256KW KEK */
#define JWE_WRAPPED_LEN 40            /* RFC 3394: the key plus 8 bytes */
#define JWE_IV_LEN 12
#define JWE_TAG_LEN 16
#define JWE_PARAM_MAX 256             /* "kid" and "cty": characters */
#define JWE_PLAINTEXT_MAX (1024 * 1024)
#define JWE_SPKI_MAX 1024

/* Concat KDF limits (jwe_concat_kdf). */
#define JWE_KDF_MAX_BITS 512          /* keydatalen: A256CBC-HS512 is the largest JWA needs */
#define JWE_KDF_Z_MAX 132             /* P-521's Z (66 bytes) with room */
#define JWE_KDF_ALG_MAX 64
#define JWE_KDF_PARTY_MAX 1024

/*
 * Encrypts pt[0..pt_len) to the P-256 key in the DER SubjectPublicKeyInfo
 * spki[0..spki_len) (borrowed; the whole input must be one SPKI). kid and
 * cty, each NULL (left out) or 1..JWE_PARAM_MAX characters of printable
 * ASCII (0x20..0x7e) other than '"' and '\', go into the protected header
 * as they are. pt may be NULL when pt_len is 0.
 *
 * 0 and *out: "header.encrypted_key.iv.ciphertext.tag", each part
 * base64url without padding, NUL-terminated, malloc'd (the caller frees).
 * BS_ERR_INVALID (not a P-256 public key, trailing bytes, a bad kid or
 * cty, a NULL argument), BS_ERR_TOO_BIG (pt_len over JWE_PLAINTEXT_MAX),
 * BS_ERR_NOMEM, BS_ERR_CRYPTO (an OpenSSL failure, RAND_bytes included).
 * The ephemeral private key, the shared secret, the KEK and the content
 * key are wiped before return.
 */
int jwe_encrypt_ecdh_es_a256kw(const uint8_t *spki, size_t spki_len, const char *kid,
    const char *cty, const uint8_t *pt, size_t pt_len, char **out) BS_WUR;

/*
 * The Concat KDF of NIST SP 800-56A section 5.8.1 with SHA-256, as RFC 7518
 * section 4.6.2 uses it: out = the first keydatalen bits of
 *   SHA-256(counter || Z || OtherInfo), counter = 1, 2, ... (u32 BE)
 *   OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo
 * where AlgorithmID = u32 BE length || alg_id (the "alg" value for key
 * agreement with key wrapping, the "enc" value for direct key agreement),
 * PartyUInfo = u32 BE apu_len || apu, PartyVInfo = u32 BE apv_len || apv
 * (the decoded "apu"/"apv"; empty: length 0), SuppPubInfo = u32 BE
 * keydatalen; SuppPrivInfo empty.
 *
 * z: 1..JWE_KDF_Z_MAX bytes; alg_id: NUL-terminated, 1..JWE_KDF_ALG_MAX
 * bytes; apu, apv: 0..JWE_KDF_PARTY_MAX bytes each (NULL when 0);
 * keydatalen in bits, a multiple of 8 in 8..JWE_KDF_MAX_BITS; out holds
 * keydatalen / 8 bytes (caller-owned; the caller wipes it).
 * 0, BS_ERR_INVALID, BS_ERR_NOMEM, BS_ERR_CRYPTO.
 */
int jwe_concat_kdf(const uint8_t *z, size_t z_len, const char *alg_id, const uint8_t *apu,
    size_t apu_len, const uint8_t *apv, size_t apv_len, size_t keydatalen, uint8_t *out) BS_WUR;

#endif
