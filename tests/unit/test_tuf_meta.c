/*
 * test_tuf_meta.c - unit tests for src/formats/tuf_meta.c: role names; key
 * objects of python-tuf's Ed25519 targets key (its key id as
 * securesystemslib computes it for {keytype, scheme, keyval}) and of a
 * fresh P-256 key (PEM that parses back to the same key), in both
 * dialects; the checks on a role's signed part (type, spec_version,
 * version, expires and the role's lifetime, impossible dates); the version
 * order; the envelope, byte for byte, and its refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "formats/tuf_meta.h"

#define ED_PUB "89f28bd4ede5ec3786ab923fd154f39588d20881903e69c7b08fb504c6750815"
#define ED_SPKI_PREFIX "302a300506032b6570032100"
/* securesystemslib: sha256(encode_canonical({"keytype","scheme","keyval"})) */
#define ED_KEYID "0452eb851e3259d536f00bb3ad51a97d33a548ac04feb3d4a66e94b8720d4044"
/* sha256 of the DER SPKI (aktualizr) */
#define ED_SPKI_SHA "4c6ed36e536767a7f418bc3831b68d2d017dd2dacc7a369fab15f949969d486c"
#define NOW ((time_t)1893456000)   /* 2030-01-01T00:00:00Z */

static void
test_roles(void **state)
{
	enum tuf_role r;

	(void)state;
	assert_int_equal(tuf_role_parse("root", &r), 0);
	assert_int_equal(r, TUF_ROLE_ROOT);
	assert_int_equal(tuf_role_parse("timestamp", &r), 0);
	assert_int_equal(r, TUF_ROLE_TIMESTAMP);
	assert_int_equal(tuf_role_parse("supplier/acme-ecu_1.2", &r), 0);
	assert_int_equal(r, TUF_ROLE_DELEGATED);
	assert_string_equal(tuf_role_type(r, TUF_CANON_OLPC), "targets");
	assert_string_equal(tuf_role_type(TUF_ROLE_SNAPSHOT, TUF_CANON_AKTUALIZR), "Snapshot");
	assert_int_equal(tuf_role_parse("", &r), BS_ERR_INVALID);
	assert_int_equal(tuf_role_parse("../x", &r), BS_ERR_INVALID);
	assert_int_equal(tuf_role_parse("/abs", &r), BS_ERR_INVALID);
	assert_int_equal(tuf_role_parse("a//b", &r), BS_ERR_INVALID);
	assert_int_equal(tuf_role_parse("a b", &r), BS_ERR_INVALID);
}

static void
test_ed25519_key(void **state)
{
	uint8_t spki[44];
	char keyid[TUF_KEYID_HEX_LEN + 1], err[128], *c;
	size_t len;
	json_t *k;

	(void)state;
	assert_int_equal(bs_hex_decode(ED_SPKI_PREFIX ED_PUB, 88, spki, 44, 0), 0);
	assert_int_equal(tuf_key_object(spki, 44, TUF_CANON_OLPC, &k, keyid, err, sizeof(err)), 0);
	assert_string_equal(keyid, ED_KEYID);
	assert_int_equal(tuf_json_canonical(k, TUF_CANON_OLPC, &c, &len), 0);
	assert_string_equal(c, "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"" ED_PUB
	    "\"},\"scheme\":\"ed25519\"}");
	free(c);
	json_decref(k);
	assert_int_equal(tuf_key_object(spki, 44, TUF_CANON_AKTUALIZR, &k, keyid, err, sizeof(err)),
	    0);
	assert_string_equal(keyid, ED_SPKI_SHA);
	assert_int_equal(tuf_json_canonical(k, TUF_CANON_AKTUALIZR, &c, &len), 0);
	assert_string_equal(c, "{\"keytype\":\"ED25519\",\"keyval\":{\"public\":\"" ED_PUB "\"}}");
	free(c);
	json_decref(k);
	/* trailing bytes, truncation: not an SPKI */
	assert_int_equal(tuf_key_object(spki, 43, TUF_CANON_OLPC, &k, keyid, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_null(k);
}

static void
test_p256_key(void **state)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256"), *back;
	uint8_t *der = NULL;
	char keyid[TUF_KEYID_HEX_LEN + 1], err[128];
	const char *pem;
	json_t *k;
	BIO *b;
	int n;

	(void)state;
	assert_non_null(pk);
	n = i2d_PUBKEY(pk, &der);
	assert_true(n > 0);
	assert_int_equal(tuf_key_object(der, (size_t)n, TUF_CANON_OLPC, &k, keyid, err,
	    sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(k, "keytype")), "ecdsa");
	assert_string_equal(json_string_value(json_object_get(k, "scheme")), "ecdsa-sha2-nistp256");
	pem = json_string_value(json_object_get(json_object_get(k, "keyval"), "public"));
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----\n"));
	b = BIO_new_mem_buf(pem, -1);
	back = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(pk, back), 1);
	EVP_PKEY_free(back);
	BIO_free(b);
	assert_int_equal(strlen(keyid), 64);
	json_decref(k);
	assert_int_equal(tuf_key_object(der, (size_t)n, TUF_CANON_AKTUALIZR, &k, keyid, err,
	    sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(k, "keytype")), "ECPRIME256V1");
	assert_null(json_object_get(k, "scheme"));
	json_decref(k);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);

	/* RSA is not a TUF key here */
	pk = EVP_RSA_gen(2048);
	der = NULL;
	n = i2d_PUBKEY(pk, &der);
	assert_int_equal(tuf_key_object(der, (size_t)n, TUF_CANON_OLPC, &k, keyid, err,
	    sizeof(err)), BS_ERR_UNSUPPORTED);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
}

static json_t *
doc(const char *text)
{
	char err[128];
	json_t *v;

	if (tuf_json_parse((const uint8_t *)text, strlen(text), 65536, &v, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	return v;
}

static void
check_refused(const char *text, enum tuf_role role, enum tuf_canon d, int64_t life,
    const char *want)
{
	struct tuf_meta_info info;
	char err[256] = "";
	json_t *v = doc(text);

	if (tuf_meta_check(v, role, d, NOW, life, &info, err, sizeof(err)) != BS_ERR_INVALID ||
	    strstr(err, want) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", text, err, want);
	json_decref(v);
}

static void
test_check(void **state)
{
	struct tuf_meta_info info;
	char err[256];
	json_t *v;

	(void)state;
	v = doc("{\"_type\":\"timestamp\",\"spec_version\":\"1.0.31\",\"version\":7,"
	    "\"expires\":\"2030-01-01T12:00:00Z\",\"meta\":{}}");
	assert_int_equal(tuf_meta_check(v, TUF_ROLE_TIMESTAMP, TUF_CANON_OLPC, NOW, 86400, &info,
	    err, sizeof(err)), 0);
	assert_int_equal(info.version, 7);
	assert_int_equal(info.expires, NOW + 43200);
	json_decref(v);
	v = doc("{\"_type\":\"Targets\",\"version\":1,\"expires\":\"2030-01-02T00:00:00Z\"}");
	assert_int_equal(tuf_meta_check(v, TUF_ROLE_TARGETS, TUF_CANON_AKTUALIZR, NOW, 86400,
	    &info, err, sizeof(err)), 0);
	json_decref(v);

	check_refused("[]", TUF_ROLE_ROOT, TUF_CANON_OLPC, 86400, "must be a JSON object");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":1,"
	    "\"expires\":\"2030-01-01T01:00:00Z\"}", TUF_ROLE_SNAPSHOT, TUF_CANON_OLPC, 86400,
	    "_type must be \"snapshot\" for this role (got \"targets\")");
	check_refused("{\"_type\":\"targets\",\"version\":1,\"expires\":\"2030-01-01T01:00:00Z\"}",
	    TUF_ROLE_TARGETS, TUF_CANON_AKTUALIZR, 86400, "_type must be \"Targets\"");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"2.0.0\",\"version\":1,"
	    "\"expires\":\"2030-01-01T01:00:00Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "spec_version must be");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0\",\"version\":1,"
	    "\"expires\":\"2030-01-01T01:00:00Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "spec_version must be");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":0,"
	    "\"expires\":\"2030-01-01T01:00:00Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "version must be an integer of at least 1");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":\"3\","
	    "\"expires\":\"2030-01-01T01:00:00Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "version must be an integer");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":1,"
	    "\"expires\":\"2030-02-30T00:00:00Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 1 << 30,
	    "expires must be a UTC time");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":1,"
	    "\"expires\":\"2030-01-01T01:00:00+00:00\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "expires must be a UTC time");
	check_refused("{\"_type\":\"targets\",\"spec_version\":\"1.0.0\",\"version\":1,"
	    "\"expires\":\"2029-12-31T23:59:59Z\"}", TUF_ROLE_TARGETS, TUF_CANON_OLPC, 86400,
	    "is not in the future");
	check_refused("{\"_type\":\"timestamp\",\"spec_version\":\"1.0.0\",\"version\":1,"
	    "\"expires\":\"2030-01-02T00:00:01Z\"}", TUF_ROLE_TIMESTAMP, TUF_CANON_OLPC, 86400,
	    "expires 2030-01-02T00:00:01Z is more than 86400 s away (the role's maximum lifetime)");
}

static void
test_order(void **state)
{
	struct tuf_high_water hw = { 0, 0, { 0 } };
	uint8_t a[32], b[32];

	(void)state;
	memset(a, 0xaa, 32);
	memset(b, 0xbb, 32);
	assert_int_equal(tuf_meta_order(&hw, 1, a), TUF_ORDER_NEW);
	hw.present = 1;
	hw.version = 9;
	memcpy(hw.sha256, a, 32);
	assert_int_equal(tuf_meta_order(&hw, 10, b), TUF_ORDER_NEW);
	assert_int_equal(tuf_meta_order(&hw, 9, a), TUF_ORDER_SAME);
	assert_int_equal(tuf_meta_order(&hw, 9, b), TUF_ORDER_FORK);
	assert_int_equal(tuf_meta_order(&hw, 7, a), TUF_ORDER_ROLLBACK);
}

static void
test_listed_versions(void **state)
{
	json_t *prev = doc("{\"meta\":{\"targets.json\":{\"version\":5},"
	    "\"role1.json\":{\"version\":2}}}");
	json_t *same = doc("{\"meta\":{\"targets.json\":{\"version\":5},"
	    "\"role1.json\":{\"version\":2}}}");
	json_t *up = doc("{\"meta\":{\"targets.json\":{\"version\":6},"
	    "\"role1.json\":{\"version\":2},\"role2.json\":{\"version\":1}}}");
	json_t *down = doc("{\"meta\":{\"targets.json\":{\"version\":3},"
	    "\"role1.json\":{\"version\":2}}}");
	json_t *gone = doc("{\"meta\":{\"targets.json\":{\"version\":6}}}");
	json_t *bad = doc("{\"meta\":{\"targets.json\":{\"version\":\"6\"}}}");
	json_t *nometa = doc("{\"version\":1}");
	char err[256];

	(void)state;
	assert_int_equal(tuf_meta_listed_versions(NULL, prev, TUF_ROLE_SNAPSHOT, err,
	    sizeof(err)), 0);
	assert_int_equal(tuf_meta_listed_versions(prev, same, TUF_ROLE_SNAPSHOT, err,
	    sizeof(err)), 0);
	assert_int_equal(tuf_meta_listed_versions(prev, up, TUF_ROLE_SNAPSHOT, err, sizeof(err)),
	    0);
	assert_int_equal(tuf_meta_listed_versions(prev, down, TUF_ROLE_SNAPSHOT, err,
	    sizeof(err)), BS_ERR_INVALID);
	assert_string_equal(err, "snapshot would list targets.json version 3, lower than version 5 "
	    "listed before");
	assert_int_equal(tuf_meta_listed_versions(prev, gone, TUF_ROLE_SNAPSHOT, err,
	    sizeof(err)), BS_ERR_INVALID);
	assert_string_equal(err, "snapshot would no longer list role1.json (listed before at "
	    "version 2)");
	assert_int_equal(tuf_meta_listed_versions(prev, bad, TUF_ROLE_TIMESTAMP, err,
	    sizeof(err)), BS_ERR_INVALID);
	assert_string_equal(err, "timestamp lists targets.json without a version of at least 1");
	assert_int_equal(tuf_meta_listed_versions(prev, nometa, TUF_ROLE_SNAPSHOT, err,
	    sizeof(err)), BS_ERR_INVALID);
	json_decref(prev);
	json_decref(same);
	json_decref(up);
	json_decref(down);
	json_decref(gone);
	json_decref(bad);
	json_decref(nometa);
}

static void
test_envelope(void **state)
{
	json_t *sp = doc("{\"_type\":\"targets\",\"version\":2,\"s\":\"a\\nb\"}");
	static const uint8_t s1[] = { 0x01, 0x02, 0xff }, s2[] = { 0xfb, 0xff };
	struct tuf_signature sigs[2] = {
		{ "bb", "ed25519", s1, sizeof(s1) },
		{ "aa", "ecdsa", s2, sizeof(s2) },
	};
	char *out;
	size_t len;

	(void)state;
	assert_int_equal(tuf_meta_envelope(sp, sigs, 2, TUF_CANON_OLPC, &out, &len), 0);
	assert_string_equal(out, "{\"signatures\":[{\"keyid\":\"bb\",\"sig\":\"0102ff\"},"
	    "{\"keyid\":\"aa\",\"sig\":\"fbff\"}],\"signed\":{\"_type\":\"targets\",\"s\":\"a\\nb\","
	    "\"version\":2}}");
	assert_int_equal(len, strlen(out));
	free(out);
	assert_int_equal(tuf_meta_envelope(sp, sigs, 2, TUF_CANON_AKTUALIZR, &out, &len), 0);
	assert_string_equal(out, "{\"signatures\":[{\"keyid\":\"bb\",\"method\":\"ed25519\","
	    "\"sig\":\"AQL/\"},{\"keyid\":\"aa\",\"method\":\"ecdsa\",\"sig\":\"+/8=\"}],"
	    "\"signed\":{\"_type\":\"targets\",\"s\":\"a\\nb\",\"version\":2}}");
	free(out);
	/* the signed part is shared, not taken */
	assert_int_equal(json_object_size(sp), 3);
	strcpy(sigs[1].keyid, "bb");
	assert_int_equal(tuf_meta_envelope(sp, sigs, 2, TUF_CANON_OLPC, &out, &len),
	    BS_ERR_INVALID);
	assert_int_equal(tuf_meta_envelope(sp, sigs, 0, TUF_CANON_OLPC, &out, &len),
	    BS_ERR_INVALID);
	json_decref(sp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_ed25519_key),
		cmocka_unit_test(test_p256_key),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_listed_versions),
		cmocka_unit_test(test_envelope),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
