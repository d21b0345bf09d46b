/*
 * keyops.h - the one door to the keys: operations on HSM keys as plain data,
 * and their strict wire codec.
 *
 * An operation names its key by (name, version), never by PKCS#11 handle
 * or function pointer, so that the key side (keyd/) can run in another
 * process later, as OpenSSH's monitor does. Today every request and answer
 * still crosses the door as bytes: the in-process client (keyclient.h)
 * encodes, the key side decodes, executes and encodes the answer, the
 * client decodes it. The codec is strict in the manner of OpenSMTPD's
 * imsg readers: each field read typed and bounded, enums and booleans
 * checked, and nothing may be left over.
 *
 * Operations now: SIGN (1..KEYOPS_SIGN_MAX inputs with one key), GENERATE
 * (a key pair for (name, version) of an algorithm), DESTROY (the objects
 * GENERATE made for (name, version), named by their CKA_ID too, so that a
 * rollback can never remove another generation's objects), PROBE (is the
 * token answering), ENCRYPT and DECRYPT (AES-256-GCM with an envelope
 * key-encryption key, 1..KEYOPS_SIGN_MAX items; ENCRYPT can have the key
 * side draw the plaintext, a data key, from the token's random generator).
 * SIGN with HMAC_SHA256 is an HMAC with a secret key.
 *
 * Wire format (all integers big-endian):
 *   request : u8 KEYOPS_WIRE_VERSION, u8 type, then per type
 *     SIGN      str name, u32 version, u8 alg, 16 bytes CKA_ID, u32 n,
 *               n x (u8 is_digest, bytes32 input)
 *     GENERATE  str name, u32 version, u8 alg
 *     DESTROY   str name, u32 version, 16 bytes CKA_ID
 *     PROBE     (nothing)
 *     ENCRYPT   str name, u32 version, u8 alg, 16 bytes CKA_ID, u32 n,
 *     DECRYPT     n x (u8 generate, 12 bytes nonce, bytes32 aad, bytes32 data)
 *   answer  : u8 KEYOPS_WIRE_VERSION, u8 type, i32 rc, then if rc == 0
 *     SIGN      u32 n, n x (i32 rc, bytes16 sig, 32 bytes payload SHA-256)
 *     GENERATE  16 bytes CKA_ID, bytes16 spki
 *     DESTROY   (nothing)
 *     PROBE     u8 alive
 *     ENCRYPT   u32 n, n x (i32 rc, bytes32 data, u8 length + generated key)
 *     DECRYPT     (data: ciphertext || tag, or the plaintext; a key only for
 *                 an ENCRYPT item with generate = 1; nothing but rc on error)
 *   str = u8 length (1..KEYOPS_NAME_MAX) + bytes; bytes16/bytes32 = u16/u32
 *   length + bytes.
 */
#ifndef BS_KEYOPS_H
#define BS_KEYOPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "types/types.h"

#define KEYOPS_WIRE_VERSION 1
#define KEYOPS_NAME_MAX 64               /* = CATALOG_NAME_MAX */
#define KEYOPS_SIGN_MAX 1000             /* inputs of one SIGN */
#define KEYOPS_INPUT_MAX (64u << 20)     /* bytes of one input */
#define KEYOPS_SIG_MAX 512               /* RSA-3072: 384 */
#define KEYOPS_SPKI_MAX 4096
#define KEYOPS_ID_LEN 16                 /* CKA_ID of a key version (= HSM_KEY_ID_LEN) */
#define KEYOPS_NONCE_LEN 12              /* AES-GCM nonce */
#define KEYOPS_TAG_LEN 16                /* AES-GCM tag */
#define KEYOPS_DATAKEY_LEN 32            /* a generated data key (AES-256) */
#define KEYOPS_CIPHER_MAX (64u << 10)    /* bytes of one item's data or aad */

enum keyop_type {
	KEYOP_SIGN = 1,
	KEYOP_GENERATE = 2,
	KEYOP_DESTROY = 3,
	KEYOP_PROBE = 4,
	KEYOP_ENCRYPT = 5,
	KEYOP_DECRYPT = 6,
};

struct keyop_key {
	char name[KEYOPS_NAME_MAX + 1];
	uint32_t version;                /* >= 1 */
};

struct keyop_input {
	int is_digest;                   /* data is a SHA-256 digest (not for Ed25519) */
	const uint8_t *data;             /* borrowed (encode) or into the decoded buffer */
	size_t len;
};

/* One ENCRYPT or DECRYPT item. Pointers borrowed (encode) or into the decoded buffer. */
struct keyop_item {
	int generate;                    /* ENCRYPT: plaintext = KEYOPS_DATAKEY_LEN random bytes */
	uint8_t nonce[KEYOPS_NONCE_LEN];
	const uint8_t *aad;
	size_t aad_len;
	const uint8_t *data;             /* ENCRYPT: plaintext (none if generate); DECRYPT: ct || tag */
	size_t len;
};

struct keyop_request {
	enum keyop_type type;
	struct keyop_key key;            /* SIGN, GENERATE, DESTROY */
	enum bs_alg alg;                 /* SIGN (checked against the token), GENERATE */
	/*
	 * SIGN: the CKA_ID the catalog records for the version (the key side
	 * refuses an object with another, BS_ERR_MISMATCH); DESTROY: the CKA_ID
	 * GENERATE answered.
	 */
	uint8_t id[KEYOPS_ID_LEN];
	struct keyop_input *inputs;      /* SIGN: n inputs */
	size_t ninputs;
	struct keyop_item *items;        /* ENCRYPT, DECRYPT: n items */
	size_t nitems;
};

struct keyop_sig {
	int rc;                          /* 0 or BS_ERR_* for this input */
	uint8_t sig[KEYOPS_SIG_MAX];     /* ECDSA: raw r||s */
	size_t sig_len;
	uint8_t payload_sha256[32];      /* SHA-256 of the message, or the digest as given */
};

/* One ENCRYPT or DECRYPT result; data and key are owned and wiped by keyop_answer_clear. */
struct keyop_cipher {
	int rc;                          /* 0 or BS_ERR_* (BS_ERR_SIG_INVALID: wrong tag) */
	uint8_t *data;                   /* ENCRYPT: ciphertext || tag; DECRYPT: plaintext */
	size_t len;
	uint8_t *key;                    /* ENCRYPT with generate: the data key drawn */
	size_t key_len;
};

struct keyop_answer {
	enum keyop_type type;
	int rc;                          /* 0 or BS_ERR_* for the whole operation */
	struct keyop_sig *sigs;          /* SIGN: nsigs, owned (keyop_answer_clear) */
	size_t nsigs;
	uint8_t id[KEYOPS_ID_LEN];       /* GENERATE: CKA_ID of the new objects */
	uint8_t *spki;                   /* GENERATE: DER SubjectPublicKeyInfo (none for a secret key), owned */
	size_t spki_len;
	int alive;                       /* PROBE */
	struct keyop_cipher *ciphers;    /* ENCRYPT, DECRYPT: nciphers, owned */
	size_t nciphers;
};

/*
 * Encodes r into a malloc'd buffer (*out, *outlen; caller frees, and wipes:
 * inputs may be secret later). Returns 0, BS_ERR_INVALID (a field out of its
 * bounds: name, version 0, unknown type or algorithm, too many inputs),
 * BS_ERR_NOMEM.
 */
int keyops_request_encode(const struct keyop_request *r, uint8_t **out, size_t *outlen) BS_WUR;

/*
 * Decodes buf into r. Inputs point into buf (which must outlive r); r->inputs
 * is malloc'd (keyop_request_clear). Returns 0 or BS_ERR_INVALID /
 * BS_ERR_TRUNCATED (every malformed message, trailing bytes included),
 * BS_ERR_NOMEM. r is cleared on error.
 */
int keyops_request_decode(const uint8_t *buf, size_t len, struct keyop_request *r) BS_WUR;
void keyop_request_clear(struct keyop_request *r);

/* As for requests; the answer owns its sigs and spki (copied out of buf). */
int keyops_answer_encode(const struct keyop_answer *a, uint8_t **out, size_t *outlen) BS_WUR;
int keyops_answer_decode(const uint8_t *buf, size_t len, struct keyop_answer *a) BS_WUR;
/* Frees what a owns and zeroes it. */
void keyop_answer_clear(struct keyop_answer *a);

/* 1 if name is a key name the door accepts (1..64 of [A-Za-z0-9._-], first alnum). */
int keyops_name_valid(const char *name);

#endif
