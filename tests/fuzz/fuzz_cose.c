/*
 * fuzz_cose.c - fuzz target of the COSE_Sign1 and CWT claims decoders
 * (src/formats/cose.c), both fed every input. Checks what it can: a
 * refusal leaves the output all zero (or untouched) with one of the
 * documented codes, BS_ERR_TOO_BIG exactly when the input is over
 * COSE_TOKEN_MAX; an accepted token encodes back to exactly its bytes
 * (only the deterministic form is accepted) and its protected header to
 * exactly its bytes from alg and kid, and its payload goes through the
 * claims decoder too; accepted claims have the ten JWS claim names with
 * their types and bounds, and encode back, through a cose_claims filled
 * here from the JSON, to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "formats/cose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
text(const json_t *o, const char *key, size_t max)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > max)
		abort();
	return json_string_value(v);
}

static int64_t
integer(const json_t *o, const char *key, int64_t min, int64_t max)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		abort();
	return (int64_t)json_integer_value(v);
}

static void
claims(const uint8_t *data, size_t size)
{
	json_t *sentinel = json_null(), *j = sentinel;
	struct cose_claims c;
	const char *jti;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc;

	rc = cose_claims_decode(data, size, &j);
	if (rc != 0) {
		if (j != sentinel || (rc != BS_ERR_INVALID && rc != BS_ERR_NOMEM))
			abort();
		return;
	}
	if (!json_is_object(j) || json_object_size(j) != 10)
		abort();
	memset(&c, 0, sizeof(c));
	c.iss = text(j, "iss", COSE_CLAIM_TEXT_MAX);
	c.sub = text(j, "sub", COSE_CLAIM_TEXT_MAX);
	c.aud = text(j, "aud", COSE_CLAIM_TEXT_MAX);
	c.cmd = text(j, "cmd", COSE_CLAIM_CMD_MAX);
	c.iat = integer(j, "iat", 0, COSE_CLAIM_TIME_MAX);
	c.nbf = integer(j, "nbf", 0, COSE_CLAIM_TIME_MAX);
	c.exp = integer(j, "exp", 0, COSE_CLAIM_TIME_MAX);
	c.seq = (uint64_t)integer(j, "seq", 1, INT64_MAX);
	jti = text(j, "jti", 2 * COSE_CTI_LEN);
	if (strlen(jti) != 2 * COSE_CTI_LEN ||
	    bs_hex_decode(jti, 2 * COSE_CTI_LEN, c.cti, COSE_CTI_LEN, BS_HEX_LOWER) != 0)
		abort();
	c.args = json_object_get(j, "args");
	if (!json_is_object(c.args))
		abort();
	if (cose_claims_encode(&c, &out, &out_len) != 0 || out_len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	free(out);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cose_sign1 zero;
	struct cose_sign1 s;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc;

	memset(&s, 0x5a, sizeof(s));
	rc = cose_sign1_decode(data, size, &s);
	if (rc != 0) {
		if (memcmp(&s, &zero, sizeof(s)) != 0 ||
		    (rc != BS_ERR_INVALID && rc != BS_ERR_NOMEM && rc != BS_ERR_TOO_BIG) ||
		    (rc == BS_ERR_TOO_BIG) != (size > COSE_TOKEN_MAX))
			abort();
	} else {
		if (size > COSE_TOKEN_MAX || s.prot == NULL || s.payload == NULL || s.sig == NULL ||
		    (s.kid == NULL) != (s.kid_len == 0))
			abort();
		if (cose_sign1_encode(s.prot, s.prot_len, s.payload, s.payload_len, s.sig, s.sig_len,
		    &out, &out_len) != 0 || out_len != size || memcmp(out, data, size) != 0)
			abort();
		free(out);
		out = NULL;
		if (cose_protected_encode(s.alg, s.kid, s.kid_len, &out, &out_len) != 0 ||
		    out_len != s.prot_len || memcmp(out, s.prot, out_len) != 0)
			abort();
		free(out);
		claims(s.payload, s.payload_len);
		cose_sign1_free(&s);
		if (memcmp(&s, &zero, sizeof(s)) != 0)
			abort();
	}
	claims(data, size);
	return 0;
}
