/*
 * hsm.h - the PKCS#11 token behind boltseal: module loading through p11-kit,
 * token selection by PKCS#11 URI, login, and the typed key operations the
 * daemon is allowed to ask for (generate, find, read public key, sign).
 *
 * Thread model: one struct hsm per process; each worker thread opens its own
 * logged-in session with hsm_session_open() and only uses it from that
 * thread. Object handles are valid in every session of the process.
 * Nothing here parses network bytes; inputs are typed and already checked.
 */
#ifndef BS_HSM_H
#define BS_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/sigverify.h"

struct hsm;          /* opaque: the loaded module and the chosen slot */
struct hsm_session;  /* opaque: one logged-in session, used by one thread */

typedef unsigned long hsm_handle;  /* CK_OBJECT_HANDLE */

#define HSM_KEY_ID_LEN 16          /* CKA_ID bytes, random per key version */
#define HSM_ERR_LEN 256

/*
 * Loads module (an absolute path to a PKCS#11 .so, or the name of a module
 * registered with p11-kit), calls C_Initialize with CKF_OS_LOCKING_OK, finds
 * the one slot whose token matches token_uri, and logs in a first session
 * as CKU_USER with pin (pin_len bytes; the caller wipes it afterwards).
 * On failure returns BS_ERR_HSM/BS_ERR_NOT_FOUND/BS_ERR_INVALID and writes
 * a message naming the module, the token and the PKCS#11 return code (never
 * the PIN) into err.
 */
int hsm_open(const char *module, const char *token_uri, const uint8_t *pin, size_t pin_len,
    struct hsm **out, char err[HSM_ERR_LEN]) BS_WUR;

/* Closes and frees every session it still tracks (so free pools first),
 * C_Finalize, unloads. NULL is a no-op. A second hsm_open of a token this
 * process is already logged in to fails (SoftHSM would skip the PIN check). */
void hsm_close(struct hsm *h);

/* Human description of the token ("label (manufacturer model, serial)"). */
const char *hsm_token_desc(const struct hsm *h);

/* Opens a new read-write session (the token is already logged in). */
int hsm_session_open(struct hsm *h, struct hsm_session **out) BS_WUR;
void hsm_session_close(struct hsm_session *s);

/* 1 if the token still answers (C_GetSessionInfo on s succeeds), else 0. */
int hsm_session_alive(struct hsm_session *s);

/* Last PKCS#11 CK_RV seen on this session (for messages). */
unsigned long hsm_session_last_rv(const struct hsm_session *s);

/* PKCS#11 return-value name, e.g. "CKR_PIN_INCORRECT". */
const char *hsm_rv_name(unsigned long rv);

/*
 * Generates a key pair of alg on the token: private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_SIGN true; public key
 * CKA_VERIFY. Both carry CKA_ID = id and CKA_LABEL = label. After creation
 * reads CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE back and fails
 * (destroying both objects) unless both are true. Writes the public key as
 * DER SubjectPublicKeyInfo into *spki_out (malloc'd, caller frees).
 * BS_ERR_EXISTS if an object with this CKA_ID is already on the token
 * (searched for unless flags has HSM_GEN_NEW_ID: the caller, which lists
 * the token's objects once, knows the id is new).
 */
#define HSM_GEN_NEW_ID 0x1u
int hsm_generate_keypair(struct hsm_session *s, enum bs_alg alg, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, unsigned flags, hsm_handle *priv_out, uint8_t **spki_out,
    size_t *spki_len_out) BS_WUR;

/*
 * Generates a secret key of alg on the token: AES_256_GCM an AES-256 key
 * (CKM_AES_KEY_GEN) with CKA_ENCRYPT and CKA_DECRYPT only; HMAC_SHA256 a
 * 32-byte generic secret (CKM_GENERIC_SECRET_KEY_GEN) with CKA_SIGN and
 * CKA_VERIFY only. Both CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
 * non-extractable, never wrap, unwrap or derive, CKA_ID = id, CKA_LABEL =
 * label, their protection attributes read back. BS_ERR_EXISTS if an
 * object with this CKA_ID is on the token (flags as for
 * hsm_generate_keypair), BS_ERR_UNSUPPORTED for another algorithm.
 */
int hsm_generate_secret(struct hsm_session *s, enum bs_alg alg, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, unsigned flags, hsm_handle *key_out) BS_WUR;

#define HSM_GCM_NONCE 12
#define HSM_GCM_TAG 16

/*
 * AES-256-GCM with the secret key key (CKM_AES_GCM, a 96-bit nonce, a
 * 128-bit tag: SoftHSM returns no tag at all if asked for 0 bits, so the
 * tag length is always given and the output length checked).
 * Encrypt: out (capacity pt_len + HSM_GCM_TAG) receives ciphertext || tag.
 * Decrypt: in is ciphertext || tag (in_len >= HSM_GCM_TAG); out (capacity
 * in_len - HSM_GCM_TAG) receives the plaintext; a wrong tag is
 * BS_ERR_SIG_INVALID (nothing is written to out then).
 * Inputs of at most HSM_SIGN_MAX_INPUT bytes. Also BS_ERR_INVALID (not an
 * AES key), BS_ERR_HSM.
 */
int hsm_aes_gcm_encrypt(struct hsm_session *s, hsm_handle key, const uint8_t nonce[HSM_GCM_NONCE],
    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out) BS_WUR;
int hsm_aes_gcm_decrypt(struct hsm_session *s, hsm_handle key, const uint8_t nonce[HSM_GCM_NONCE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out) BS_WUR;

/* len bytes of the token's random generator (C_GenerateRandom). 0 or BS_ERR_HSM. */
int hsm_random(struct hsm_session *s, uint8_t *buf, size_t len) BS_WUR;

/*
 * Finds the private key (or else the secret key) with CKA_ID = id (exactly
 * one). Returns 0,
 * BS_ERR_NOT_FOUND, BS_ERR_EXISTS (two objects share the id), or BS_ERR_HSM.
 */
int hsm_find_private_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN],
    hsm_handle *out) BS_WUR;

/*
 * Finds the private (or else secret) key whose CKA_LABEL is label (exactly one) and reads its
 * CKA_ID into id. Returns 0, BS_ERR_NOT_FOUND, BS_ERR_EXISTS (several
 * objects), or BS_ERR_HSM (a CKA_ID that is not HSM_KEY_ID_LEN bytes, a
 * PKCS#11 failure).
 */
int hsm_find_private_key_by_label(struct hsm_session *s, const char *label, hsm_handle *out,
    uint8_t id[HSM_KEY_ID_LEN]) BS_WUR;

/* One private or secret key object of the token, as hsm_list_key_objects reads it. */
#define HSM_OBJ_LABEL_MAX 128
struct hsm_key_object {
	hsm_handle handle;
	char label[HSM_OBJ_LABEL_MAX + 1];   /* NUL-terminated */
	uint8_t id[HSM_KEY_ID_LEN];
	int secret;                          /* a secret key (else a private key) */
};

/*
 * Every private and secret key object whose CKA_LABEL starts with
 * label_prefix and whose CKA_ID is HSM_KEY_ID_LEN bytes (others are
 * skipped): one search per class and one C_GetAttributeValue per object. A
 * search reads every object of the token (SoftHSM): list once and look up
 * in memory rather than search per key. *out is malloc'd (NULL when n is
 * 0). Returns 0, BS_ERR_HSM, BS_ERR_NOMEM, BS_ERR_TOO_BIG (over a million
 * objects).
 */
int hsm_list_key_objects(struct hsm_session *s, const char *label_prefix,
    struct hsm_key_object **out, size_t *n_out) BS_WUR;

/* Destroys the private, public and secret key objects with CKA_ID = id. */
int hsm_destroy_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN]) BS_WUR;

/*
 * Signs with the private key priv of algorithm alg:
 *   ECDSA P-256: data must be a 32-byte SHA-256 digest; output raw r||s (64).
 *   Ed25519:     data is the message; output 64 bytes.
 *   RSA-PSS:     data must be a 32-byte SHA-256 digest (CKM_RSA_PKCS_PSS,
 *                MGF1-SHA256, salt 32); output the modulus length.
 *   HMAC-SHA256: priv is a generic secret key; data is the message; output
 *                32 bytes (CKM_SHA256_HMAC, RFC 2104).
 * sig (capacity *sig_len) receives the signature; *sig_len is updated.
 * The key's class and type are checked first (SoftHSM crashes on a
 * mechanism/key mismatch). Returns 0, BS_ERR_INVALID (wrong input length or
 * key type), BS_ERR_TOO_BIG (buffer too small, Ed25519 message > 16 MiB),
 * BS_ERR_HSM.
 */
int hsm_sign(struct hsm_session *s, hsm_handle priv, enum bs_alg alg, const uint8_t *data,
    size_t data_len, uint8_t *sig, size_t *sig_len) BS_WUR;

#endif
