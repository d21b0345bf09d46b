/*
 * tlm_batch.h - the daemon's strict decoder of signed telemetry batches
 * (format: tlm_encode.h, docs/telemetry.md). Untrusted bytes: the token is
 * a COSE_Sign1 in its only deterministic form (cose_sign1_decode), its
 * protected header names ES256 or EdDSA and a 32-byte kid, its signature
 * has 64 bytes, and its payload is the window record, which must encode
 * back to exactly its bytes. The signature itself is checked by the
 * caller against the key the kid names (the vehicle registry's).
 */
#ifndef BS_TLM_BATCH_H
#define BS_TLM_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/tlm_encode.h"

/* A decoded batch: every field a copy (no pointer into the input). */
struct tlm_batch {
	char vehicle_id[TLM_VEHICLE_ID_MAX + 1];
	struct tlm_window w;        /* w.vehicle_id points at vehicle_id */
	int64_t alg;                /* TLM_ALG_ES256 or TLM_ALG_EDDSA */
	uint8_t kid[TLM_KID_LEN];
	uint8_t sig[TLM_SIG_LEN];
	uint8_t tbs[TLM_TBS_MAX];   /* the Sig_structure the signature covers */
	size_t tbs_len;
};

/*
 * Decodes in[0..len) into *out. 0; BS_ERR_TOO_BIG (over TLM_TOKEN_MAX);
 * BS_ERR_INVALID with *why (a static string: what is wrong, for the
 * verdict); BS_ERR_NOMEM.
 */
int tlm_batch_decode(const uint8_t *in, size_t len, struct tlm_batch *out, const char **why) BS_WUR;

#endif
