/*
 * fuzz_command_verify.c - fuzz target of the vehicle-side command token
 * verifier (src/client/command_verify.c) and the strict JSON reader it uses
 * (src/formats/json_strict.c). The first byte picks what the rest is:
 *   0, 1  a token, verified against a pinned Ed25519 (0) or P-256 (1) key
 *         (the RFC 8037 and RFC 7515 A.3 keys; the seeds are signed by them);
 *   2     the claims JSON, checked as after a good signature;
 *   3     a JSON document for the strict reader alone, with the token's limits.
 * Checks: a refusal leaves the claims all zero with a reason; accepted
 * claims are within their bounds and satisfy every time and seq rule;
 * args is itself a strict JSON object; what the reader accepts is an object
 * within the limits that reads back the same from its compact form.
 *
 * tests/fuzz/run-fuzz builds the sources under src/ but not src/client/,
 * so the verifier (and, for the automake build, the reader) is compiled
 * into this target here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/command_verify.c"
#include "formats/json_strict.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t ed_spki[] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
	0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};

static const uint8_t ec_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
	0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
	0x7f, 0xcd, 0xce, 0x27, 0x70, 0xf6, 0xc4, 0x5d, 0x41, 0x83, 0xcb, 0xee, 0x6f, 0xdb, 0x4b, 0x7b,
	0x58, 0x07, 0x33, 0x35, 0x7b, 0xe9, 0xef, 0x13, 0xba, 0xcf, 0x6e, 0x3c, 0x7b, 0xd1, 0x54, 0x45,
	0xc7, 0xf1, 0x44, 0xcd, 0x1b, 0xbd, 0x9b, 0x7e, 0x87, 0x2c, 0xdf, 0xed, 0xb9, 0xee, 0xb9, 0xf4,
	0xb3, 0x69, 0x5d, 0x6e, 0xa9, 0x0b, 0x24, 0xad, 0x8a, 0x46, 0x23, 0x28, 0x85, 0x88, 0xe5, 0xad,
};

static const struct bs_cmd_verify_opts fz_opts = {
	"VIN1", "tcu.example", "boltseal", 1700000100, 5, 6,
};

static int
zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void
check_str(const char *s, size_t max, int may_be_empty)
{
	size_t n = strnlen(s, max + 1);

	if (n > max || (n == 0 && !may_be_empty))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

/* What accepted claims must satisfy. */
static void
check_claims(const struct bs_cmd_claims *c)
{
	const struct bs_cmd_verify_opts *op = &fz_opts;
	char err[JSON_ERR_MAX];
	json_t *args = NULL;

	check_str(c->iss, BS_CMD_ID_MAX, 0);
	check_str(c->sub, BS_CMD_ID_MAX, 0);
	check_str(c->aud, BS_CMD_ID_MAX, 0);
	check_str(c->cmd, BS_CMD_CMD_MAX, 0);
	if (strcmp(c->sub, op->vehicle_id) != 0 || strcmp(c->aud, op->audience) != 0 ||
	    strcmp(c->iss, op->issuer) != 0 || strlen(c->jti) != BS_CMD_JTI_LEN)
		abort();
	if (c->seq <= op->last_seq || c->nbf > op->now + op->skew || c->iat > op->now + op->skew ||
	    op->now >= c->exp + op->skew || c->exp <= c->nbf)
		abort();
	if (c->args == NULL || strlen(c->args) != c->args_len ||
	    json_strict_parse((const uint8_t *)c->args, c->args_len, &token_json, &args, err,
	    sizeof(err)) != 0)
		abort();
	json_decref(args);
}

static void
fuzz_token(const uint8_t *spki, size_t spki_len, const uint8_t *data, size_t size, int ed)
{
	struct bs_cmd_claims c;
	char detail[256];
	int rc;

	rc = bs_cmd_verify_detail((const char *)data, size, spki, spki_len, &fz_opts, &c, detail,
	    sizeof(detail));
	if (rc != 0) {
		if (!zero(&c, sizeof(c)) || rc > 0 || rc < BS_CMD_ERR_REPLAYED || detail[0] == '\0' ||
		    memchr(detail, '\0', sizeof(detail)) == NULL)
			abort();
		return;
	}
	check_claims(&c);
	if (strcmp(c.alg, ed ? "EdDSA" : "ES256") != 0 && strcmp(c.alg, "Ed25519") != 0)
		abort();
	bs_cmd_claims_free(&c);
}

static void
fuzz_claims(const uint8_t *data, size_t size)
{
	struct bs_cmd_claims c;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = cmd_claims_check(data, size, &fz_opts, &c, NULL, 0);
	if (rc != 0) {
		if (c.args != NULL)
			abort();
		return;
	}
	check_claims(&c);
	bs_cmd_claims_free(&c);
}

/* What the strict reader accepts: an object within the token limits, the same after a round trip. */
static void
fuzz_json(const uint8_t *data, size_t size)
{
	json_t *j = NULL, *again = NULL;
	char err[JSON_ERR_MAX], *text;

	if (json_strict_parse(data, size, &token_json, &j, err, sizeof(err)) != 0) {
		if (j != NULL || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			abort();
		return;
	}
	if (!json_is_object(j) || json_object_size(j) > token_json.max_members)
		abort();
	if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
		abort();
	if (json_strict_parse((const uint8_t *)text, strlen(text), &token_json, &again, err,
	    sizeof(err)) != 0 || !json_equal(j, again))
		abort();
	free(text);
	json_decref(again);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_token(ed_spki, sizeof(ed_spki), data + 1, size - 1, 1);
		break;
	case 1:
		fuzz_token(ec_spki, sizeof(ec_spki), data + 1, size - 1, 0);
		break;
	case 2:
		fuzz_claims(data + 1, size - 1);
		break;
	default:
		fuzz_json(data + 1, size - 1);
		break;
	}
	return 0;
}
