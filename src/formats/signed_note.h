/*
 * signed_note.h - C2SP signed notes (c2sp.org/signed-note) with Ed25519
 * signatures (signature type 0x01) and tlog checkpoint bodies
 * (c2sp.org/tlog-checkpoint), compatible with golang.org/x/mod/sumdb/note.
 * Pure: no I/O. Signing is not done here (the HSM signs); this module
 * formats the pieces around a signature and verifies notes.
 *
 *   note     = text "\n" 1*("— " name " " base64(key_id[4] || sig) "\n")
 *   key_id   = SHA-256(name || "\n" || 0x01 || pub[32])[:4]
 *   vkey     = name "+" hex8(key_id) "+" base64(0x01 || pub[32])
 *   signed bytes = the note text including its final "\n"
 *
 * Base64 is RFC 4648 standard with padding. Decoding is strict: besides
 * Go's rules it rejects non-zero unused bits in the last group (Go accepts
 * them), so every accepted value has exactly one encoding.
 *
 * Names (note_name_valid): non-empty, at most NOTE_NAME_MAX bytes, valid
 * UTF-8, no Unicode white space, no '+', no control characters (C0, DEL,
 * C1). That is stricter than Go's isValidName (which allows DEL, C1 and
 * any length); note_open uses Go's rule for names on signature lines so it
 * accepts the same notes Go does (a longer name simply matches no verifier).
 */
#ifndef BS_SIGNED_NOTE_H
#define BS_SIGNED_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define NOTE_KEY_ID_LEN 4
#define NOTE_ED25519_SIG_LEN 64
#define NOTE_ED25519_PUB_LEN 32
#define NOTE_ALG_ED25519 0x01
#define NOTE_ALG_COSIG_V1 0x04         /* C2SP tlog-cosignature: Ed25519 cosignature/v1 */
#define NOTE_NAME_MAX 255               /* bytes, without the NUL */
#define NOTE_MAX_SIGS 100               /* signature lines, as Go's Open */
/* "<name>+<8 hex>+<44 base64>" and NUL */
#define NOTE_VKEY_MAX (NOTE_NAME_MAX + 1 + 8 + 1 + 44 + 1)
/* longest vkey string note_vkey_parse looks at */
#define NOTE_VKEY_PARSE_MAX 2048
/* "— <name> <92 base64>\n" and NUL; the em dash is 3 bytes */
#define NOTE_SIG_LINE_MAX (3 + 1 + NOTE_NAME_MAX + 1 + 92 + 1 + 1)
/* "<origin>\n<20 digits>\n<44 base64>\n" and NUL */
#define CHECKPOINT_BODY_MAX (NOTE_NAME_MAX + 1 + 20 + 1 + 44 + 1 + 1)

/* A trusted Ed25519 note key, as parsed from a vkey. name is NUL-terminated. */
struct note_verifier {
	char name[256];
	uint8_t key_id[NOTE_KEY_ID_LEN];
	uint8_t pub[NOTE_ED25519_PUB_LEN];
};

/* Returns 1 if name (NUL-terminated) is a valid key name (rules above), else 0. NULL gives 0. */
int note_name_valid(const char *name);

/*
 * id = SHA-256(name || "\n" || 0x01 || pub)[:4]. Returns 0, BS_ERR_INVALID
 * (bad name, NULL argument) or BS_ERR_CRYPTO.
 */
int note_key_id_ed25519(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN]) BS_WUR;

/*
 * Writes the NUL-terminated vkey "<name>+<8 lower-hex key id>+<base64(0x01
 * || pub)>" into out (outlen bytes including the NUL; NOTE_VKEY_MAX is
 * always enough). Returns 0, BS_ERR_INVALID (bad name), BS_ERR_TOO_BIG (out
 * too small; out untouched) or BS_ERR_CRYPTO.
 */
int note_vkey_format(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN], char *out,
    size_t outlen) BS_WUR;

/*
 * Parses a NUL-terminated vkey strictly (as Go's NewVerifier, and
 * stricter): valid name, exactly 8 lower-case hex digits that equal the key
 * id computed from name and key, strict base64 of 0x01 || 32-byte key, no
 * trailing bytes (not even "\n"), at most NOTE_VKEY_PARSE_MAX bytes. As in
 * Go the hash is SHA-256(name || "\n" || decoded key)[:4] and is checked
 * before the type byte. Returns 0 and fills *out; BS_ERR_INVALID
 * (malformed, hash mismatch, Ed25519 key not 32 bytes); BS_ERR_UNSUPPORTED
 * (well-formed, hash matches, but the type is not 0x01); BS_ERR_CRYPTO.
 */
int note_vkey_parse(const char *vkey, struct note_verifier *out) BS_WUR;

/*
 * Writes the NUL-terminated signature line "— <name> <base64(key_id ||
 * sig)>\n" (em dash U+2014) into out (outlen includes the NUL;
 * NOTE_SIG_LINE_MAX is always enough). Returns 0, BS_ERR_INVALID (bad
 * name), BS_ERR_TOO_BIG (out untouched) or BS_ERR_CRYPTO.
 */
int note_signature_line(const char *name, const uint8_t key_id[NOTE_KEY_ID_LEN],
    const uint8_t sig[NOTE_ED25519_SIG_LEN], char *out, size_t outlen) BS_WUR;

/*
 * C2SP tlog-cosignature (cosignature/v1, Ed25519, signature type 0x04):
 * the key id SHA-256(name || "\n" || 0x04 || pub)[:4]; the cosigner's vkey
 * "<name>+<key id>+<base64(0x04 || pub)>"; the signed message
 * "cosignature/v1\ntime <ts>\n" followed by the whole checkpoint body
 * (ending in "\n"; *out malloc'd); the line "— <name>
 * <base64(key id || ts (8 bytes, big-endian) || signature)>\n". ts at most
 * 2^63 - 1. Each returns 0, BS_ERR_INVALID, BS_ERR_TOO_BIG (out too small)
 * or BS_ERR_NOMEM / BS_ERR_CRYPTO.
 */
#define NOTE_COSIG_LINE_MAX (4 + NOTE_NAME_MAX + 1 + 104 + 1 + 1)
int note_cosig_key_id(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN]) BS_WUR;
int note_cosig_vkey_format(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN], char *out,
    size_t outlen) BS_WUR;
int note_cosig_message(const uint8_t *body, size_t body_len, uint64_t ts, uint8_t **out,
    size_t *out_len) BS_WUR;
int note_cosig_line(const char *name, const uint8_t key_id[NOTE_KEY_ID_LEN], uint64_t ts,
    const uint8_t sig[NOTE_ED25519_SIG_LEN], char *out, size_t outlen) BS_WUR;

/*
 * Opens the signed note msg[0..len) against the nv trusted verifiers v
 * (borrowed; normally from note_vkey_parse), like Go's note.Open: the whole
 * message is valid UTF-8 with no control character but "\n"; it splits at
 * the LAST "\n\n"; the signature block is non-empty, ends in "\n", and
 * every line is "— <name> <base64>" with a Go-valid name and a decoded
 * value of at least 5 bytes; at most NOTE_MAX_SIGS lines. Lines whose
 * (name, key id) match no verifier are ignored. Every line that matches one
 * is verified (stricter than Go, which skips a repeated line of the same
 * key), and at least one must be. On success sets *text_len to the length
 * of the signed text including its final "\n" (msg[0..*text_len)).
 *
 * Returns 0;
 *   BS_ERR_INVALID      malformed note, no line from a known key, two
 *                       verifiers with the same name and key id (ambiguous),
 *                       or a NULL argument;
 *   BS_ERR_SIG_INVALID  a signature from a known key did not verify (or is
 *                       not 64 bytes);
 *   BS_ERR_NOMEM / BS_ERR_CRYPTO  OpenSSL failure.
 */
int note_open(const uint8_t *msg, size_t len, const struct note_verifier *v, size_t nv,
    size_t *text_len) BS_WUR;

/*
 * Writes the checkpoint body "<origin>\n<size>\n<base64 root>\n" into out
 * and a NUL after it (outlen includes the NUL; CHECKPOINT_BODY_MAX is
 * always enough); *outlen_used gets the body length without the NUL (the
 * bytes to sign). origin must be note_name_valid (its signer's key name
 * should equal it). Returns 0, BS_ERR_INVALID, BS_ERR_TOO_BIG (out and
 * *outlen_used untouched) or BS_ERR_CRYPTO.
 */
int checkpoint_body_format(const char *origin, uint64_t size, const uint8_t root[32], char *out,
    size_t outlen, size_t *outlen_used) BS_WUR;

/*
 * Parses a checkpoint body text[0..len) (the note text, ending in "\n"):
 * line 1 the origin (non-empty, at most NOTE_NAME_MAX bytes, valid UTF-8,
 * no control characters; spaces are allowed because C2SP only says SHOULD
 * and Rekor's origins have them), line 2 the size in decimal without
 * leading zeros ("0" ok, must fit in 64 bits), line 3 exactly 44 characters
 * of strict base64 of a 32-byte root; then any number of non-empty
 * extension lines, which are ignored. The origin is copied NUL-terminated
 * into origin (originlen bytes including the NUL). Returns 0 and sets
 * origin, *size and root; BS_ERR_INVALID (malformed) or BS_ERR_TOO_BIG
 * (origin buffer too small); outputs untouched on error.
 */
int checkpoint_body_parse(const uint8_t *text, size_t len, char *origin, size_t originlen,
    uint64_t *size, uint8_t root[32]) BS_WUR;

#endif
