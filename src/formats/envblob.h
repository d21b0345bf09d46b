/*
 * envblob.h - the ciphertext blob of envelope encryption (issue 12's
 * EnvelopeService: data keys and small payloads encrypted with AES-256-GCM
 * under an HSM key-encryption key), and the canonical form of the
 * encryption context that the GCM tag binds. Pure: bytes in, bytes out.
 *
 * Blob, version 1 (all integers big-endian):
 *   offset  size  field
 *   0       1     format version, 0x01
 *   1       1     n, the KEK's name length, 1..64
 *   2       n     the KEK's name ([A-Za-z0-9._-], starting with a letter or digit)
 *   2+n     4     the KEK's version, >= 1
 *   6+n     12    the GCM nonce (96 bits, random per encryption)
 *   18+n    4     L, the ciphertext length, 1..ENVBLOB_DATA_MAX
 *   22+n    L     the ciphertext
 *   22+n+L  16    the GCM tag (128 bits)
 * The header is bytes 0 .. 22+n (everything before the ciphertext).
 *
 * Additional authenticated data of the GCM operation:
 *   "boltseal envelope v1\n" || header || canonical context
 * so the tag covers the format version, which key and version, the nonce,
 * the length, and the exact context.
 *
 * Canonical context: u16 count, then per entry, sorted by key (bytewise,
 * shorter first on a common prefix): u16 key length, key, u16 value length,
 * value. 1..ENVCTX_MAX entries; keys 1..64 bytes, values 1..256 bytes, both
 * valid UTF-8 without control characters; no key twice. A map: the order
 * the caller gives does not matter, anything else changed does.
 */
#ifndef BS_ENVBLOB_H
#define BS_ENVBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define ENVBLOB_VERSION 1
#define ENVBLOB_NAME_MAX 64
#define ENVBLOB_NONCE_LEN 12
#define ENVBLOB_TAG_LEN 16
#define ENVBLOB_DATA_MAX 4096         /* a data key or a small payload */
#define ENVBLOB_MAX (22 + ENVBLOB_NAME_MAX + ENVBLOB_DATA_MAX + ENVBLOB_TAG_LEN)
#define ENVBLOB_AAD_PREFIX "boltseal envelope v1\n"

#define ENVCTX_MAX 32
#define ENVCTX_KEY_MAX 64
#define ENVCTX_VALUE_MAX 256

/* A blob's fields. From envblob_decode, ct points into the decoded input (borrowed). */
struct envblob {
	char kek[ENVBLOB_NAME_MAX + 1];
	uint32_t kek_version;
	uint8_t nonce[ENVBLOB_NONCE_LEN];
	const uint8_t *ct;
	size_t ct_len;
	uint8_t tag[ENVBLOB_TAG_LEN];
};

/* One entry of an encryption context (borrowed, NUL-terminated strings). */
struct envctx_entry {
	const char *key;
	const char *value;
};

/*
 * Writes b as a version-1 blob into *out (malloc'd, *out_len bytes; the
 * caller frees). 0, BS_ERR_INVALID (a field out of the rules above),
 * BS_ERR_NOMEM.
 */
int envblob_encode(const struct envblob *b, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * Decodes untrusted bytes: exactly one version-1 blob, nothing after it.
 * 0 and *out (ct borrowed from in); BS_ERR_INVALID (*out zeroed) for
 * anything else: another version, a length out of range, a name not of the
 * catalog's form, version 0, a truncated or over-long input.
 */
int envblob_decode(const uint8_t *in, size_t len, struct envblob *out) BS_WUR;

/* The header's length for b's KEK name (bytes before the ciphertext). */
size_t envblob_header_len(const struct envblob *b);

/*
 * The canonical context of the n entries e (in any order) into *out
 * (malloc'd). 0, BS_ERR_INVALID (empty, too many, a key or value out of the
 * rules, a key twice), BS_ERR_NOMEM.
 */
int envctx_canonical(const struct envctx_entry *e, size_t n, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * The GCM additional data for blob b (its header, from the fields: ct_len
 * counts, ct may still be NULL) and the canonical context ctx into *out
 * (malloc'd). 0, BS_ERR_INVALID, BS_ERR_NOMEM.
 */
int envblob_aad(const struct envblob *b, const uint8_t *ctx, size_t ctx_len, uint8_t **out,
    size_t *out_len) BS_WUR;

#endif
