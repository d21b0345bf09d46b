/*
 * fuzz_tlm_batch.c - fuzz target of the daemon's decoder of signed
 * telemetry batches (src/formats/tlm_batch.c): any bytes as a token.
 * Checks: a refusal always says why; an accepted token has a window the
 * format allows and a known alg, and encoding its parts again
 * (src/formats/tlm_encode.c) gives exactly the input: one byte form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/tlm_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlm_batch b;
	const char *why = NULL;
	uint8_t prot[TLM_PROTECTED_MAX], payload[TLM_PAYLOAD_MAX], tok[TLM_TOKEN_MAX];
	size_t plen, paylen, n;
	int rc = tlm_batch_decode(data, size, &b, &why);

	if (rc != 0) {
		if (why == NULL || (rc != BS_ERR_INVALID && rc != BS_ERR_TOO_BIG && rc != BS_ERR_NOMEM))
			abort();
		return 0;
	}
	if (why != NULL || !tlm_window_valid(&b.w) || b.w.vehicle_id != b.vehicle_id ||
	    (b.alg != TLM_ALG_ES256 && b.alg != TLM_ALG_EDDSA) || b.tbs_len == 0)
		abort();
	plen = tlm_protected_encode(b.alg, b.kid, prot, sizeof(prot));
	paylen = tlm_payload_encode(&b.w, payload, sizeof(payload));
	n = tlm_token_encode(prot, plen, payload, paylen, b.sig, TLM_SIG_LEN, tok, sizeof(tok));
	if (plen == 0 || paylen == 0 || n != size || memcmp(tok, data, size) != 0)
		abort();
	return 0;
}
