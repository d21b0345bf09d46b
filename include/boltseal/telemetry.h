/*
 * boltseal/telemetry.h - the vehicle side of verified telemetry: signs one
 * sampling window (a batch of samples) as a COSE_Sign1 token (RFC 9052)
 * that boltsealed's TelemetryService checks (VerifyTelemetryBatch). For an
 * ECU or a gateway's vehicle simulator: it needs OpenSSL and nothing else,
 * does no I/O and keeps no state (the caller keeps the sequence number).
 * Format, checks and test vectors: docs/telemetry.md.
 */
#ifndef BOLTSEAL_TELEMETRY_H
#define BOLTSEAL_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_TLM_TOKEN_MAX 320        /* a token is never longer */
#define BS_TLM_VEHICLE_ID_MAX 64

enum bs_tlm_result {
	BS_TLM_OK = 0,
	BS_TLM_ERR_ARG = -1,        /* a NULL argument, or the window breaks the format's rules */
	BS_TLM_ERR_KEY = -2,        /* not an EC P-256 or Ed25519 private key */
	BS_TLM_ERR_CRYPTO = -3,     /* OpenSSL failed */
};

/* One sampling window. */
struct bs_tlm_window {
	const char *vehicle_id;     /* the registry's id: 1..64 of [A-Za-z0-9._-], starting alphanumeric */
	uint64_t seq;               /* 1..2^63-1, one more for every batch the vehicle sends */
	int64_t start_ms, end_ms;   /* the window, Unix milliseconds, start <= end */
	uint64_t samples;           /* how many samples */
	uint8_t samples_sha256[32]; /* SHA-256 of the samples' bytes, as sent with the token */
};

/*
 * Signs w with key, the private key of one of the vehicle's identities in
 * the registry (ECDSA P-256: ES256, r||s; Ed25519: EdDSA). The token's kid
 * is that key's id, the SHA-256 of its DER SubjectPublicKeyInfo. Writes
 * the token into out (cap >= BS_TLM_TOKEN_MAX is always enough) and its
 * length into *len. Returns BS_TLM_OK or an error above.
 */
int bs_tlm_sign(const struct bs_tlm_window *w, EVP_PKEY *key, uint8_t *out, size_t cap,
    size_t *len);

/* A short English description of a bs_tlm_result. */
const char *bs_tlm_strerror(int result);

#ifdef __cplusplus
}
#endif

#endif
