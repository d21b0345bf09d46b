/*
 * tlm_encode.h - the bytes of a signed telemetry batch (docs/telemetry.md):
 * a COSE_Sign1 (RFC 9052 section 4.2) over a deterministic CBOR (RFC 8949
 * section 4.2.1) sampling-window record. Pure C: no allocation, no library,
 * so that the vehicle-side client library (include/boltseal/telemetry.h)
 * and the daemon's decoder (formats/tlm_batch.h) share one encoder.
 *
 *   token     = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr ])
 *   protected = bstr .cbor { 1: alg (-7 ES256 | -8 EdDSA), 4: kid (bstr 32) }
 *   payload   = bstr .cbor { "h": bstr 32, "n": uint, "v": 1, "end": uint, "seq": uint,
 *                            "vid": text, "start": uint }
 *   to be signed = [ "Signature1", protected, h'', payload ]
 *
 * kid is the vehicle identity's key id (SHA-256 of its DER
 * SubjectPublicKeyInfo, as the vehicle registry keeps it); "vid" the
 * vehicle id; "seq" the batch's sequence number (1..2^63-1, increasing);
 * "start" and "end" the sampling window in Unix milliseconds; "n" the
 * number of samples and "h" the SHA-256 of their bytes; "v" the format
 * version. The signature is ECDSA P-256 r||s (64 bytes) or Ed25519.
 */
#ifndef BS_TLM_ENCODE_H
#define BS_TLM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#define TLM_VERSION 1
#define TLM_ALG_ES256 (-7)
#define TLM_ALG_EDDSA (-8)
#define TLM_KID_LEN 32
#define TLM_HASH_LEN 32
#define TLM_SIG_LEN 64
#define TLM_VEHICLE_ID_MAX 64
#define TLM_TIME_MAX_MS INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */
#define TLM_PROTECTED_MAX 40
#define TLM_PAYLOAD_MAX 192
#define TLM_TBS_MAX 256
#define TLM_TOKEN_MAX 320

/* A sampling window's record. */
struct tlm_window {
	const char *vehicle_id;     /* 1..64 of [A-Za-z0-9._-], starting alphanumeric */
	uint64_t seq;               /* 1..INT64_MAX */
	int64_t start_ms, end_ms;   /* 0 <= start <= end <= TLM_TIME_MAX_MS */
	uint64_t samples;           /* 0..INT64_MAX */
	uint8_t samples_sha256[TLM_HASH_LEN];
};

/* 1 if w holds what the format allows (the rules above). */
int tlm_window_valid(const struct tlm_window *w);

/*
 * Each writes its bytes into out (cap bytes) and returns their length, or
 * 0 when an input breaks the format's rules or cap is too small.
 */
size_t tlm_payload_encode(const struct tlm_window *w, uint8_t *out, size_t cap);
size_t tlm_protected_encode(int64_t alg, const uint8_t kid[TLM_KID_LEN], uint8_t *out, size_t cap);
size_t tlm_tbs_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
    size_t payload_len, uint8_t *out, size_t cap);
size_t tlm_token_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len, uint8_t *out, size_t cap);

#endif
