/*
 * tlm_batch.c - decoding a signed telemetry batch (tlm_batch.h): the
 * COSE_Sign1 envelope by cose_sign1_decode, the payload by libcbor after
 * cose_cbor_load's strict walk, each member typed, and the whole payload
 * encoded again (tlm_payload_encode) and compared, so that only the
 * deterministic encoding passes.
 */
#include <string.h>

#include <cbor.h>

#include "formats/cose.h"
#include "formats/tlm_batch.h"

#define NMEMBERS 7

/* A uint item's value in *v (any width); 0 if it is not a uint. */
static int
uint_of(const cbor_item_t *it, uint64_t *v)
{
	if (!cbor_isa_uint(it))
		return 0;
	*v = cbor_get_int(it);
	return 1;
}

static int
key_is(const cbor_item_t *k, const char *name)
{
	size_t n = strlen(name);

	return cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == n &&
	    memcmp(cbor_string_handle(k), name, n) == 0;
}

/* The payload's members into b (all seven, each once, of its type). */
static int
payload_parse(const cbor_item_t *map, struct tlm_batch *b, const char **why)
{
	struct cbor_pair *pr;
	unsigned seen = 0;
	uint64_t v, version = 0;

	if (!cbor_isa_map(map) || !cbor_map_is_definite(map) || cbor_map_size(map) != NMEMBERS) {
		*why = "payload: not a map of the 7 members h, n, v, end, seq, vid, start";
		return BS_ERR_INVALID;
	}
	pr = cbor_map_handle(map);
	for (size_t i = 0; i < NMEMBERS; i++) {
		const cbor_item_t *k = pr[i].key, *val = pr[i].value;
		unsigned bit;

		if (key_is(k, "h") && cbor_isa_bytestring(val) &&
		    cbor_bytestring_is_definite(val) && cbor_bytestring_length(val) == TLM_HASH_LEN) {
			memcpy(b->w.samples_sha256, cbor_bytestring_handle(val), TLM_HASH_LEN);
			bit = 1;
		} else if (key_is(k, "n") && uint_of(val, &v)) {
			b->w.samples = v;
			bit = 2;
		} else if (key_is(k, "v") && uint_of(val, &version)) {
			bit = 4;
		} else if (key_is(k, "end") && uint_of(val, &v) && v <= (uint64_t)TLM_TIME_MAX_MS) {
			b->w.end_ms = (int64_t)v;
			bit = 8;
		} else if (key_is(k, "seq") && uint_of(val, &v)) {
			b->w.seq = v;
			bit = 16;
		} else if (key_is(k, "vid") && cbor_isa_string(val) && cbor_string_is_definite(val) &&
		    cbor_string_length(val) <= TLM_VEHICLE_ID_MAX) {
			memcpy(b->vehicle_id, cbor_string_handle(val), cbor_string_length(val));
			b->vehicle_id[cbor_string_length(val)] = '\0';
			bit = 32;
		} else if (key_is(k, "start") && uint_of(val, &v) && v <= (uint64_t)TLM_TIME_MAX_MS) {
			b->w.start_ms = (int64_t)v;
			bit = 64;
		} else {
			*why = "payload: an unknown member, or a member of the wrong type or size";
			return BS_ERR_INVALID;
		}
		if (seen & bit) {
			*why = "payload: a member twice";
			return BS_ERR_INVALID;
		}
		seen |= bit;
	}
	if (version != TLM_VERSION) {
		*why = "payload: v is not 1 (an unknown format version)";
		return BS_ERR_INVALID;
	}
	b->w.vehicle_id = b->vehicle_id;
	if (!tlm_window_valid(&b->w)) {
		*why = "payload: vid, seq, start, end or n out of the format's range (start <= end)";
		return BS_ERR_INVALID;
	}
	return 0;
}

int
tlm_batch_decode(const uint8_t *in, size_t len, struct tlm_batch *out, const char **why)
{
	struct cose_sign1 s;
	struct cbor_item_t *map = NULL;
	uint8_t again[TLM_PAYLOAD_MAX];
	size_t n;
	int rc;

	*why = "not a COSE_Sign1 in deterministic CBOR";
	memset(out, 0, sizeof(*out));
	if (len > TLM_TOKEN_MAX) {
		*why = "longer than a batch token can be";
		return BS_ERR_TOO_BIG;
	}
	if ((rc = cose_sign1_decode(in, len, &s)) != 0)
		return rc == BS_ERR_NOMEM ? rc : BS_ERR_INVALID;
	rc = BS_ERR_INVALID;
	if (s.alg != TLM_ALG_ES256 && s.alg != TLM_ALG_EDDSA) {
		*why = "protected header: alg is not ES256 (-7) or EdDSA (-8)";
		goto out;
	}
	if (s.kid_len != TLM_KID_LEN) {
		*why = "protected header: kid is not the 32-byte key id";
		goto out;
	}
	if (s.sig_len != TLM_SIG_LEN) {
		*why = "signature: not 64 bytes";
		goto out;
	}
	if (s.payload_len > TLM_PAYLOAD_MAX || (rc = cose_cbor_load(s.payload, s.payload_len, &map))
	    != 0) {
		*why = "payload: not one item of deterministic CBOR";
		rc = rc == BS_ERR_NOMEM ? rc : BS_ERR_INVALID;
		goto out;
	}
	if ((rc = payload_parse(map, out, why)) != 0)
		goto out;
	rc = BS_ERR_INVALID;
	n = tlm_payload_encode(&out->w, again, sizeof(again));
	if (n == 0 || n != s.payload_len || memcmp(again, s.payload, n) != 0) {
		*why = "payload: not in its deterministic encoding";
		goto out;
	}
	out->tbs_len = tlm_tbs_encode(s.prot, s.prot_len, s.payload, s.payload_len, out->tbs,
	    sizeof(out->tbs));
	if (out->tbs_len == 0) {
		*why = "too long to be signed as a batch";
		goto out;
	}
	out->alg = s.alg;
	memcpy(out->kid, s.kid, TLM_KID_LEN);
	memcpy(out->sig, s.sig, TLM_SIG_LEN);
	*why = NULL;
	rc = 0;
out:
	if (map != NULL)
		cbor_decref(&map);
	cose_sign1_free(&s);
	if (rc != 0) {
		const char *keep = *why;

		memset(out, 0, sizeof(*out));
		*why = keep;
	}
	return rc;
}
