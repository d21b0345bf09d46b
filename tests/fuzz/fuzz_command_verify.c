/*
 * fuzz_command_verify.c - fuzz target of the vehicle-side command token
 * verifier (src/client/command_verify.c) and its strict JSON reader
 * (src/client/json_lite.c). The first byte picks what the rest is:
 *   0, 1  a token, verified against a pinned Ed25519 (0) or P-256 (1) key
 *         (the RFC 8037 and RFC 7515 A.3 keys; the seeds are signed by them);
 *   2     the claims JSON, checked as after a good signature;
 *   3     a JSON document for json_lite alone.
 * Checks: a refusal leaves the claims all zero with a reason; accepted
 * claims are within their bounds and satisfy every time and seq rule;
 * args is itself a strict JSON object; what json_lite accepts, jansson
 * (JSON_REJECT_DUPLICATES) accepts with the same members and values.
 *
 * tests/fuzz/run-fuzz builds the sources under src/ but not src/client/,
 * so the two sources are compiled into this target here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/command_verify.c"
#include "client/json_lite.c"

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
	struct json_lite_obj *o = malloc(sizeof(*o));
	const struct bs_cmd_verify_opts *op = &fz_opts;

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
	if (o == NULL)
		return;
	if (c->args == NULL || strlen(c->args) != c->args_len ||
	    json_lite_parse((const uint8_t *)c->args, c->args_len, o, NULL) != 0)
		abort();
	free(o);
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

/* json_lite accepts only what jansson accepts, with the same members and values. */
static void
fuzz_json(const uint8_t *data, size_t size)
{
	struct json_lite_obj *o = malloc(sizeof(*o));
	char k[JSON_LITE_MAX_KEY + 1], *v = NULL;
	const struct json_lite_member *m;
	json_error_t err;
	json_t *j, *jv;
	size_t i, n;

	if (o == NULL)
		return;
	if (json_lite_parse(data, size, o, NULL) != 0) {
		if (o->n != 0 || o->buf != NULL)
			abort();
		free(o);
		return;
	}
	if ((j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err)) == NULL ||
	    !json_is_object(j) || json_object_size(j) != o->n)
		abort();
	for (i = 0; i < o->n; i++) {
		m = &o->m[i];
		if (json_lite_key(o, m, k, sizeof(k), NULL) != 0 || json_lite_get(o, k) != m ||
		    (jv = json_object_get(j, k)) == NULL)
			abort();
		switch (m->type) {
		case JSON_LITE_STRING:
			if ((v = malloc(m->val_len + 1)) == NULL ||
			    json_lite_string(o, m, v, m->val_len + 1, &n) != 0 || !json_is_string(jv) ||
			    json_string_length(jv) != n || memcmp(json_string_value(jv), v, n) != 0)
				abort();
			free(v);
			break;
		case JSON_LITE_INT:
			if (!json_is_integer(jv) || json_integer_value(jv) != m->num)
				abort();
			break;
		case JSON_LITE_OBJECT:
			if (!json_is_object(jv))
				abort();
			break;
		case JSON_LITE_ARRAY:
			if (!json_is_array(jv))
				abort();
			break;
		case JSON_LITE_TRUE:
		case JSON_LITE_FALSE:
			if (!json_is_boolean(jv) || json_is_true(jv) != (m->type == JSON_LITE_TRUE))
				abort();
			break;
		case JSON_LITE_NULL:
			if (!json_is_null(jv))
				abort();
			break;
		default:
			abort();
		}
	}
	json_decref(j);
	free(o);
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
