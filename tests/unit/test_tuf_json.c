/*
 * test_tuf_json.c - unit tests for src/formats/tuf_json.c: securesystemslib's
 * encode_canonical doctests; python-tuf's signed targets.json (its
 * canonical "signed" is 1067 bytes with a known SHA-256, and the Ed25519
 * signature in the file verifies over our bytes with OpenSSL); the key ids
 * of python-tuf's keys (unknown fields included in the hash); strings in
 * both dialects (quotes, backslashes, control characters, non-ASCII, a PEM
 * key); and the strict parser's refusals (floats, duplicate keys, NUL,
 * invalid UTF-8, depth, size, trailing garbage, big integers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/hex.h"
#include "formats/tuf_json.h"

#define SAMPLE BS_SRCDIR "/tests/data/tuf/python-tuf-targets.json"
#define SAMPLE_CANON_LEN 1067
#define SAMPLE_CANON_SHA256 "14d397544fd58921883cd44e259a676d335554b962b0092b89f2692ec79d95ac"
#define TARGETS_PUB "89f28bd4ede5ec3786ab923fd154f39588d20881903e69c7b08fb504c6750815"

static json_t *
parse_ok(const char *text)
{
	char err[256] = "";
	json_t *v = NULL;

	if (tuf_json_parse((const uint8_t *)text, strlen(text), 1 << 20, &v, err, sizeof(err)) != 0)
		fail_msg("refused %s: %s", text, err);
	return v;
}

static void
assert_canon(const char *in, enum tuf_canon form, const char *want)
{
	json_t *v = parse_ok(in);
	char *out;
	size_t len;

	assert_int_equal(tuf_json_canonical(v, form, &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
	json_decref(v);
}

static void
test_doctests(void **state)
{
	(void)state;
	assert_canon("{\"x\": 3, \"y\": 2}", TUF_CANON_OLPC, "{\"x\":3,\"y\":2}");
	assert_canon("[]", TUF_CANON_OLPC, "[]");
	assert_canon("{}", TUF_CANON_OLPC, "{}");
	assert_canon("[true, false, null, -7, 0, 9223372036854775807]", TUF_CANON_OLPC,
	    "[true,false,null,-7,0,9223372036854775807]");
	/* keys sorted by code point: "B" < "a" < "é" (U+00E9) < "€" (U+20AC) */
	assert_canon("{\"\xe2\x82\xac\":1,\"a\":2,\"\xc3\xa9\":3,\"B\":4}", TUF_CANON_OLPC,
	    "{\"B\":4,\"a\":2,\"\xc3\xa9\":3,\"\xe2\x82\xac\":1}");
}

static void
test_strings(void **state)
{
	static const char in[] =
	    "{\"s\":\"q\\\"b\\\\n\\nt\\tc\\u0001d\\u001fe\\u007f\\u00e9/\"}";

	(void)state;
	/* OLPC: only " and \ escaped, everything else raw */
	assert_canon(in, TUF_CANON_OLPC,
	    "{\"s\":\"q\\\"b\\\\n\nt\tc\x01" "d\x1f" "e\x7f\xc3\xa9/\"}");
	/* aktualizr: standard JSON escaping, lower-case \u00XX, DEL and non-ASCII raw */
	assert_canon(in, TUF_CANON_AKTUALIZR,
	    "{\"s\":\"q\\\"b\\\\n\\nt\\tc\\u0001d\\u001fe\x7f\xc3\xa9/\"}");
	assert_canon("\"\\b\\f\\r\"", TUF_CANON_AKTUALIZR, "\"\\b\\f\\r\"");
	assert_canon("\"\\b\\f\\r\"", TUF_CANON_OLPC, "\"\b\f\r\"");
	/* a PEM key: literal newlines in OLPC, \n in the aktualizr dialect */
	assert_canon("{\"public\":\"-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n\"}",
	    TUF_CANON_OLPC,
	    "{\"public\":\"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n\"}");
	assert_canon("{\"public\":\"-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n\"}",
	    TUF_CANON_AKTUALIZR,
	    "{\"public\":\"-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n\"}");
}

static char *
read_sample(size_t *len)
{
	FILE *f = fopen(SAMPLE, "rb");
	char *buf = malloc(1 << 16);

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static void
test_python_tuf_sample(void **state)
{
	char err[256], *canon, hex[65], keyid[TUF_KEYID_HEX_LEN + 1];
	uint8_t md[32], pub[32], sig[64];
	size_t len, clen;
	char *text = read_sample(&len);
	json_t *doc = NULL, *signed_, *sigs, *dkey;
	EVP_PKEY *pk;
	EVP_MD_CTX *mctx;

	(void)state;
	assert_int_equal(tuf_json_parse((const uint8_t *)text, len, 1 << 20, &doc, err,
	    sizeof(err)), 0);
	signed_ = json_object_get(doc, "signed");
	assert_int_equal(tuf_json_canonical(signed_, TUF_CANON_OLPC, &canon, &clen), 0);
	assert_int_equal(clen, SAMPLE_CANON_LEN);
	SHA256((const uint8_t *)canon, clen, md);
	bs_hex_encode(md, 32, hex);
	assert_string_equal(hex, SAMPLE_CANON_SHA256);
	assert_memory_equal(canon, "{\"_type\":\"targets\",\"delegations\":{\"keys\":{\"c8022fa1", 48);

	/* the file's Ed25519 signature verifies over these bytes */
	sigs = json_object_get(doc, "signatures");
	assert_int_equal(bs_hex_decode(TARGETS_PUB, 64, pub, sizeof(pub), 0), 0);
	assert_int_equal(bs_hex_decode(json_string_value(json_object_get(json_array_get(sigs, 0),
	    "sig")), 128, sig, sizeof(sig), BS_HEX_LOWER), 0);
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	assert_non_null(pk);
	mctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(mctx, sig, 64, (const uint8_t *)canon, clen), 1);
	sig[0] ^= 1;
	assert_int_not_equal(EVP_DigestVerify(mctx, sig, 64, (const uint8_t *)canon, clen), 1);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pk);

	/* the delegated key's id is the hash of its canonical form, unknown fields included */
	dkey = json_object_get(json_object_get(json_object_get(signed_, "delegations"), "keys"),
	    "c8022fa1e9b9cb239a6b362bbdffa9649e61ad2cb699d2e4bc4fdf7930a0e64a");
	assert_non_null(dkey);
	assert_int_equal(tuf_json_keyid(dkey, keyid), 0);
	assert_string_equal(keyid, "c8022fa1e9b9cb239a6b362bbdffa9649e61ad2cb699d2e4bc4fdf7930a0e64a");
	json_object_del(dkey, "keyid_hash_algorithms");
	assert_int_equal(tuf_json_keyid(dkey, keyid), 0);
	assert_string_not_equal(keyid,
	    "c8022fa1e9b9cb239a6b362bbdffa9649e61ad2cb699d2e4bc4fdf7930a0e64a");

	free(canon);
	json_decref(doc);
	free(text);
}

#define SZ ((size_t)-1)   /* assert_refused: the length of the NUL-terminated text */

static void
assert_refused(const char *text, size_t len, size_t max, int want_rc, const char *want_msg)
{
	char err[256] = "";
	json_t *v = (json_t *)1;
	int rc;

	if (len == SZ)
		len = strlen(text);
	rc = tuf_json_parse((const uint8_t *)text, len, max, &v, err, sizeof(err));

	if (rc != want_rc)
		fail_msg("'%.*s': rc %d, wanted %d (%s)", (int)len, text, rc, want_rc, err);
	assert_null(v);
	if (strstr(err, want_msg) == NULL)
		fail_msg("'%.*s': \"%s\" lacks \"%s\"", (int)len, text, err, want_msg);
}

static void
test_strict(void **state)
{
	static const char nul[] = "{\"a\":\"x\\u0000y\"}";
	static const char badutf8[] = "{\"a\":\"\xc3\x28\"}";
	char deep[256];
	size_t i;

	(void)state;
	assert_refused("{\"signed\":{\"version\":1.0}}", SZ, 1024, BS_ERR_INVALID,
	    "floating-point number at $.signed.version");
	assert_refused("{\"a\":[1,2,3e2]}", SZ, 1024, BS_ERR_INVALID,
	    "floating-point number at $.a[2]");
	assert_refused("{\"a\":1,\"a\":2}", SZ, 1024, BS_ERR_INVALID, "duplicate object key");
	assert_refused(nul, strlen(nul), 1024, BS_ERR_INVALID, "not valid JSON");
	assert_refused(badutf8, strlen(badutf8), 1024, BS_ERR_INVALID, "not valid JSON");
	assert_refused("{\"a\":1} x", SZ, 1024, BS_ERR_INVALID, "not valid JSON");
	assert_refused("{\"a\":99999999999999999999}", SZ, 1024, BS_ERR_INVALID,
	    "not valid JSON");
	assert_refused("", 0, 1024, BS_ERR_INVALID, "not valid JSON");
	assert_refused("{\"a\":1}", SZ, 6, BS_ERR_TOO_BIG, "more than the limit of 6");
	for (i = 0; i < TUF_JSON_DEPTH_MAX + 2; i++)
		deep[i] = '[';
	for (; i < 2 * (TUF_JSON_DEPTH_MAX + 2); i++)
		deep[i] = ']';
	assert_refused(deep, i, 1024, BS_ERR_INVALID, "nested deeper than");
	/* exactly the limit is fine */
	for (i = 0; i < TUF_JSON_DEPTH_MAX + 1; i++)
		deep[i] = '[';
	for (; i < 2 * (TUF_JSON_DEPTH_MAX + 1); i++)
		deep[i] = ']';
	deep[i] = '\0';
	json_decref(parse_ok(deep));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doctests),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_python_tuf_sample),
		cmocka_unit_test(test_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
