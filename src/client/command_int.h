/*
 * command_int.h - the stages of the vehicle-side token verifier
 * (src/client/command_verify.c), exposed for its unit tests and fuzz
 * target: the pinned key, the JWS layer (structure and signature), the
 * header, the claims. Not installed; bs_cmd_verify runs them in order.
 * Every function that takes detail/dlen writes a one-line reason there on
 * failure (when detail is not NULL) and returns a BS_CMD_ERR_*.
 */
#ifndef BS_CLIENT_COMMAND_INT_H
#define BS_CLIENT_COMMAND_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "boltseal/command.h"

enum cmd_keytype {
	CMD_KEY_P256 = 1,
	CMD_KEY_ED25519 = 2,
};

enum cmd_alg {
	CMD_ALG_ES256 = 1,
	CMD_ALG_EDDSA = 2,   /* "EdDSA" and its RFC 9864 name "Ed25519" */
};

/* A pinned key, loaded. */
struct cmd_key {
	EVP_PKEY *pkey;
	enum cmd_keytype type;
	char thumb[BS_CMD_THUMBPRINT_LEN + 1];
};

/* A compact JWS split at its dots, each part decoded. */
struct cmd_jws {
	uint8_t *buf;                  /* one allocation holding the three decoded parts */
	const uint8_t *header, *payload, *sig;
	size_t header_len, payload_len, sig_len;
	size_t signing_input_len;      /* bytes of the token before the second '.' */
};

/*
 * Loads a DER SubjectPublicKeyInfo (P-256 or Ed25519; DER exactly as
 * OpenSSL writes it back) into *k with its thumbprint. 0, BS_CMD_ERR_KEY,
 * BS_CMD_ERR_NOMEM, BS_CMD_ERR_CRYPTO. cmd_key_clear in every case.
 */
int cmd_key_load(const uint8_t *spki, size_t len, struct cmd_key *k) __attribute__((warn_unused_result));
void cmd_key_clear(struct cmd_key *k);

/*
 * Splits token into *j: exactly two dots, three non-empty parts of strict
 * base64url (no padding, alphabet only, zero unused bits). 0,
 * BS_CMD_ERR_TOO_BIG, BS_CMD_ERR_MALFORMED, BS_CMD_ERR_NOMEM.
 * cmd_jws_free in every case.
 */
int cmd_jws_split(const char *token, size_t len, struct cmd_jws *j, char *detail, size_t dlen)
    __attribute__((warn_unused_result));
void cmd_jws_free(struct cmd_jws *j);

/*
 * Checks sig over the signing input si with k for alg: 64 bytes r||s over
 * SHA-256 (ES256) or 64 bytes pure Ed25519 (EdDSA). 0,
 * BS_CMD_ERR_KEY_MISMATCH (alg does not fit k), BS_CMD_ERR_SIGNATURE,
 * BS_CMD_ERR_NOMEM, BS_CMD_ERR_CRYPTO.
 */
int cmd_jws_sig_check(const struct cmd_key *k, enum cmd_alg alg, const uint8_t *si, size_t silen,
    const uint8_t *sig, size_t siglen, char *detail, size_t dlen) __attribute__((warn_unused_result));

/*
 * The JWS layer alone, for test vectors: structure, the header's "alg"
 * (nothing else of the header is checked), the signature with the key
 * spki. 0 or a BS_CMD_ERR_* as in bs_cmd_verify.
 */
int cmd_jws_verify(const char *token, size_t len, const uint8_t *spki, size_t spki_len)
    __attribute__((warn_unused_result));

/*
 * Checks the decoded header against the pinned key k; sets *alg and
 * c->alg, c->kid. 0, BS_CMD_ERR_HEADER, BS_CMD_ERR_ALG,
 * BS_CMD_ERR_KEY_MISMATCH, BS_CMD_ERR_NOMEM.
 */
int cmd_header_check(const uint8_t *hdr, size_t len, const struct cmd_key *k, enum cmd_alg *alg,
    struct bs_cmd_claims *c, char *detail, size_t dlen) __attribute__((warn_unused_result));

/*
 * Reads and checks the decoded claims against opts (which must be valid:
 * see bs_cmd_verify); fills the claim fields of *c (c->args malloc'd, NULL
 * on failure). 0, BS_CMD_ERR_CLAIMS, BS_CMD_ERR_MISSING_CLAIM, the value
 * checks' codes, BS_CMD_ERR_NOMEM.
 */
int cmd_claims_check(const uint8_t *payload, size_t len, const struct bs_cmd_verify_opts *opts,
    struct bs_cmd_claims *c, char *detail, size_t dlen) __attribute__((warn_unused_result));

#endif
