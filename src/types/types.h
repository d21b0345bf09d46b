/*
 * types.h - the shared vocabulary of keys: algorithm, purpose, signature
 * format and key state, each defined once with its names (as the policy,
 * the CLI and the logs spell them) and its mapping to and from the protobuf
 * enums of boltseal.v1 (no casts between internal and generated enums).
 */
#ifndef BS_TYPES_H
#define BS_TYPES_H

#include <stddef.h>

#include "common/bs_error.h"

enum bs_alg {
	BS_ALG_NONE = 0,
	BS_ALG_ECDSA_P256_SHA256 = 1,
	BS_ALG_ED25519 = 2,
	BS_ALG_RSA_3072_PSS_SHA256 = 3,
	BS_ALG_AES_256_GCM = 4,          /* secret key: encrypt/decrypt only */
	BS_ALG_HMAC_SHA256 = 5,          /* secret key: HMAC (sign) only */
};

enum bs_purpose {
	BS_PURPOSE_NONE = 0,
	BS_PURPOSE_GENERIC = 1,
	BS_PURPOSE_OTA = 2,
	BS_PURPOSE_CHECKPOINT = 3,
	BS_PURPOSE_COMMAND = 4,
	BS_PURPOSE_ENVELOPE = 5,
	BS_PURPOSE_AUDIT = 6,
	BS_PURPOSE_ADMIN = 7,
	BS_PURPOSE_CA = 8,               /* X.509 certificate authority (CertificateService) */
};

enum bs_sig_format { BS_SIGFMT_DER = 0, BS_SIGFMT_RAW = 1 };

enum bs_key_state {
	BS_KEY_STATE_NONE = 0,
	BS_KEY_ENABLED = 1,
	BS_KEY_DISABLED = 2,
	BS_KEY_PENDING_DESTRUCTION = 3,  /* unusable; destroyed when due unless cancelled */
	BS_KEY_DESTROYED = 4,            /* HSM objects gone; final */
};

/*
 * "ecdsa-p256-sha256", "ed25519", "rsa-3072-pss-sha256", "aes-256-gcm",
 * "hmac-sha256"; "none" otherwise.
 */
const char *bs_alg_name(enum bs_alg alg);
/* Inverse of bs_alg_name; BS_ALG_NONE if unknown (or NULL). */
enum bs_alg bs_alg_from_name(const char *name);
/* 1 for a secret-key algorithm (no public key, no signature to verify). */
int bs_alg_is_symmetric(enum bs_alg alg);
/*
 * 1 if a key of purpose p may have algorithm alg: envelope keys are the
 * secret-key algorithms, admin keys any algorithm (the daemon seals
 * second-factor seeds with one), ca keys ECDSA P-256 only, every other
 * purpose the signature algorithms.
 */
int bs_alg_fits_purpose(enum bs_alg alg, enum bs_purpose p);

/*
 * "generic", "ota", "checkpoint", "command", "envelope", "audit", "admin",
 * "ca"; "none" otherwise.
 */
const char *bs_purpose_name(enum bs_purpose p);
/* Inverse; BS_PURPOSE_NONE if unknown (or NULL). */
enum bs_purpose bs_purpose_from_name(const char *name);
/* Every purpose name, in enum order (for the policy schema); *n gets the count. */
const char *const *bs_purpose_names(size_t *n);

/* "der", "raw". */
const char *bs_sig_format_name(enum bs_sig_format f);

/* "enabled", "disabled", "pending_destruction", "destroyed"; "none" otherwise. */
const char *bs_key_state_name(enum bs_key_state s);
/* Inverse of bs_key_state_name; BS_KEY_STATE_NONE if unknown (or NULL). */
enum bs_key_state bs_key_state_from_name(const char *name);

/*
 * Mappings to and from the protobuf enums (values of Boltseal__V1__Algorithm,
 * __KeyPurpose, __SignatureFormat, __KeyState, passed as int so that this
 * header needs no generated code). *_from_pb return 0 and set *out, or
 * BS_ERR_INVALID for an unspecified or unknown value (*out untouched).
 * *_to_pb of NONE gives the protobuf's UNSPECIFIED (0).
 */
int bs_alg_from_pb(int pb, enum bs_alg *out) BS_WUR;
int bs_alg_to_pb(enum bs_alg alg);
int bs_purpose_from_pb(int pb, enum bs_purpose *out) BS_WUR;
int bs_purpose_to_pb(enum bs_purpose p);
/* DER is the default: UNSPECIFIED and DER map to BS_SIGFMT_DER. */
int bs_sig_format_from_pb(int pb, enum bs_sig_format *out) BS_WUR;
int bs_sig_format_to_pb(enum bs_sig_format f);
int bs_key_state_to_pb(enum bs_key_state s);

#endif
