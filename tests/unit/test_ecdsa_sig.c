/*
 * test_ecdsa_sig.c - unit tests for src/formats/ecdsa_sig.c: hand-made
 * DER/BER edge cases, raw<->DER round trips, and every vector of the
 * Wycheproof ECDSA P-256 SHA-256 files (DER and P1363) pushed through the
 * codec and then verified with OpenSSL, each with its expected result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/ecdsa_sig.h"
#include "json_min.h"

#define WYCHEPROOF_DIR BS_SRCDIR "/tests/data/wycheproof/"

/* ---- hand-made cases -------------------------------------------------- */

static void
fill(uint8_t *p, size_t n, uint8_t v)
{
	memset(p, v, n);
}

static void
test_raw_to_der_shapes(void **state)
{
	uint8_t raw[64], der[ECDSA_P256_DER_MAX], back[64];
	size_t n = 0;

	(void)state;
	/* both high bits set: 33-byte integers, maximal 72-byte encoding */
	fill(raw, 64, 0xff);
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), 0);
	assert_int_equal(n, 72);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 70);
	assert_int_equal(der[2], 0x02);
	assert_int_equal(der[3], 33);
	assert_int_equal(der[4], 0x00);
	assert_int_equal(der[5], 0xff);
	assert_int_equal(der[37], 0x02);
	assert_int_equal(der[38], 33);
	assert_int_equal(ecdsa_sig_der_to_raw(der, n, back), 0);
	assert_memory_equal(back, raw, 64);

	/* cap too small by one: TOO_BIG, out_len untouched */
	n = 1234;
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, 71, &n), BS_ERR_TOO_BIG);
	assert_int_equal(n, 1234);

	/* r = 1, s = 0x7f..: minimal lengths, no padding byte */
	memset(raw, 0, 64);
	raw[31] = 1;
	fill(raw + 32, 32, 0x7f);
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), 0);
	assert_int_equal(n, 2 + 3 + 34);
	{
		static const uint8_t head[] = { 0x30, 37, 0x02, 0x01, 0x01, 0x02, 0x20, 0x7f };

		assert_memory_equal(der, head, sizeof(head));
	}
	assert_int_equal(ecdsa_sig_der_to_raw(der, n, back), 0);
	assert_memory_equal(back, raw, 64);

	/* leading zero bytes in raw are stripped; 0x80 needs the pad */
	memset(raw, 0, 64);
	raw[30] = 0x80;
	raw[63] = 0x05;
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), 0);
	{
		static const uint8_t want[] = { 0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x00,
			0x02, 0x01, 0x05 };

		assert_int_equal(n, sizeof(want));
		assert_memory_equal(der, want, sizeof(want));
	}

	/* zero r or s cannot be encoded */
	memset(raw, 0, 64);
	raw[63] = 1;
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), BS_ERR_INVALID);
	memset(raw, 0, 64);
	raw[0] = 1;
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), BS_ERR_INVALID);
}

struct der_case {
	const char *name;
	const char *hex;
	int ok;
};

static void
test_der_strictness(void **state)
{
	static const struct der_case cases[] = {
		{ "minimal", "3006020101020102", 1 },
		{ "padded high bit", "30080202008002020080", 1 },
		{ "long-form seq len", "308106020101020102", 0 },
		{ "long-form int len", "300702810101020102", 0 },
		{ "indefinite seq", "3080020101020102" "0000", 0 },
		{ "unneeded leading zero", "30070202000102020102", 0 },
		{ "unneeded leading zero s", "3007020101020200" "01", 0 },
		{ "negative r", "3006020181020101", 0 },
		{ "negative s", "30060201010201ff", 0 },
		{ "zero r", "3006020100020101", 0 },
		{ "zero s", "3006020101020100", 0 },
		{ "empty int", "30050200020101", 0 },
		{ "trailing garbage", "300602010102010200", 0 },
		{ "trailing inside seq", "3009020101020101020101", 0 },
		{ "seq len too short", "3005020101020101", 0 },
		{ "seq len too long", "3007020101020101", 0 },
		{ "int len overruns", "3006020101020201", 0 },
		{ "wrong outer tag", "3106020101020101", 0 },
		{ "wrong int tag", "3006030101020101", 0 },
		{ "missing s", "3003020101", 0 },
		{ "empty seq", "3000", 0 },
		{ "empty input", "", 0 },
		{ "only tag", "30", 0 },
		{ "r 33 bytes without pad", "302602" "21" "01"
		    "0000000000000000000000000000000000000000000000000000000000000000"
		    "020101", 0 },
		{ "r 32 bytes max", "302502" "20"
		    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "020101", 1 },
		{ "r 33 bytes padded", "302602" "21" "00"
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "020101", 1 },
		{ "r 33 significant bytes", "302702" "22" "0080"
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "020101", 0 },
	};
	uint8_t raw[64], der2[ECDSA_P256_DER_MAX];
	uint8_t *der;
	size_t i, n, n2;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		assert_int_equal(json_hex_decode(cases[i].hex, &der, &n), 0);
		memset(raw, 0xee, sizeof(raw));
		rc = ecdsa_sig_der_to_raw(der, n, raw);
		if (rc != (cases[i].ok ? 0 : BS_ERR_INVALID))
			fail_msg("case '%s': rc %d", cases[i].name, rc);
		if (cases[i].ok) {
			/* strict DER is canonical: re-encoding gives the same bytes */
			assert_int_equal(ecdsa_sig_raw_to_der(raw, der2, sizeof(der2), &n2), 0);
			assert_int_equal(n2, n);
			assert_memory_equal(der2, der, n);
		} else {
			size_t j;

			/* output untouched on failure */
			for (j = 0; j < sizeof(raw); j++)
				assert_int_equal(raw[j], 0xee);
		}
		free(der);
	}
	assert_int_equal(ecdsa_sig_der_to_raw(NULL, 8, raw), BS_ERR_INVALID);
}

static void
test_roundtrip_random(void **state)
{
	uint8_t raw[64], der[ECDSA_P256_DER_MAX], back[64];
	size_t n, i;
	unsigned seed = 12345;

	(void)state;
	for (i = 0; i < 5000; i++) {
		size_t j;

		for (j = 0; j < 64; j++) {
			seed = seed * 1103515245u + 12345u;
			raw[j] = (uint8_t)(seed >> 16);
		}
		/* vary the number of leading zero bytes of r and s (never 0 unless 32) */
		raw[31] |= 1;
		raw[63] |= 1;
		memset(raw, 0, i % 33);
		memset(raw + 32, 0, (i / 33) % 33);
		if (i % 33 == 32 || (i / 33) % 33 == 32) {
			assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n),
			    BS_ERR_INVALID);
			continue;
		}
		assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), 0);
		assert_true(n <= ECDSA_P256_DER_MAX);
		assert_int_equal(ecdsa_sig_der_to_raw(der, n, back), 0);
		assert_memory_equal(back, raw, 64);
	}
}

/* ---- Wycheproof --------------------------------------------------------- */

static EVP_PKEY *
load_spki(const char *hex)
{
	uint8_t *der;
	const unsigned char *p;
	size_t n;
	EVP_PKEY *pk;

	assert_int_equal(json_hex_decode(hex, &der, &n), 0);
	p = der;
	pk = d2i_PUBKEY(NULL, &p, (long)n);
	assert_non_null(pk);
	free(der);
	return pk;
}

/* 1 if OpenSSL verifies DER sig over msg with SHA-256, else 0. */
static int
openssl_verify(EVP_PKEY *pk, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
    size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

struct counts {
	size_t run, valid, invalid, acceptable;
	size_t rej_decoder, rej_verify;
};

enum expect { EXP_VALID, EXP_INVALID, EXP_ACCEPTABLE };

static enum expect
expected(const struct json_node *t)
{
	const char *r = json_get_str(t, "result");

	assert_non_null(r);
	if (strcmp(r, "valid") == 0)
		return EXP_VALID;
	if (strcmp(r, "invalid") == 0)
		return EXP_INVALID;
	assert_string_equal(r, "acceptable");
	return EXP_ACCEPTABLE;
}

static void
check_result(const char *file, const struct json_node *t, enum expect e, int accepted,
    struct counts *c)
{
	const struct json_node *id = json_get(t, "tcId");
	int tc = id != NULL ? (int)id->num : -1;

	c->run++;
	switch (e) {
	case EXP_VALID:
		c->valid++;
		if (!accepted)
			fail_msg("%s tcId %d (%s): valid vector rejected", file, tc,
			    json_get_str(t, "comment"));
		break;
	case EXP_INVALID:
		c->invalid++;
		if (accepted)
			fail_msg("%s tcId %d (%s): invalid vector accepted", file, tc,
			    json_get_str(t, "comment"));
		break;
	case EXP_ACCEPTABLE:
	default:
		c->acceptable++;
		break;
	}
}

typedef int (*vector_fn)(EVP_PKEY *pk, const uint8_t *msg, size_t msg_len,
    const uint8_t *sig, size_t sig_len, struct counts *c);

/* DER file: decode strictly, re-encode, round-trip, verify over the re-encoding. */
static int
vector_der(EVP_PKEY *pk, const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
    struct counts *c)
{
	uint8_t raw[64], der[ECDSA_P256_DER_MAX], back[64];
	size_t n;

	if (ecdsa_sig_der_to_raw(sig, sig_len, raw) != 0) {
		c->rej_decoder++;
		return 0;
	}
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &n), 0);
	/* accepted input is canonical DER */
	assert_int_equal(n, sig_len);
	assert_memory_equal(der, sig, n);
	assert_int_equal(ecdsa_sig_der_to_raw(der, n, back), 0);
	assert_memory_equal(back, raw, 64);
	if (!openssl_verify(pk, msg, msg_len, der, n)) {
		c->rej_verify++;
		return 0;
	}
	return 1;
}

/* P1363 file: exactly 64 bytes, raw -> DER -> verify, and back to raw. */
static int
vector_p1363(EVP_PKEY *pk, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
    size_t sig_len, struct counts *c)
{
	uint8_t der[ECDSA_P256_DER_MAX], back[64];
	size_t n;

	if (sig_len != ECDSA_P256_RAW_LEN || ecdsa_sig_raw_to_der(sig, der, sizeof(der), &n) != 0) {
		c->rej_decoder++;
		return 0;
	}
	assert_int_equal(ecdsa_sig_der_to_raw(der, n, back), 0);
	assert_memory_equal(back, sig, 64);
	if (!openssl_verify(pk, msg, msg_len, der, n)) {
		c->rej_verify++;
		return 0;
	}
	return 1;
}

static void
run_file(const char *name, vector_fn fn, size_t min_tests)
{
	char path[1024];
	struct json_node *root = NULL;
	const struct json_node *groups, *g, *tests, *t, *num;
	struct counts c;

	memset(&c, 0, sizeof(c));
	snprintf(path, sizeof(path), "%s%s", WYCHEPROOF_DIR, name);
	if (json_load_file(path, &root) != 0)
		fail_msg("cannot read or parse %s", path);
	groups = json_get(root, "testGroups");
	assert_non_null(groups);
	for (g = groups->child; g != NULL; g = g->next) {
		EVP_PKEY *pk = load_spki(json_get_str(g, "publicKeyDer"));

		assert_string_equal(json_get_str(g, "sha"), "SHA-256");
		tests = json_get(g, "tests");
		assert_non_null(tests);
		for (t = tests->child; t != NULL; t = t->next) {
			uint8_t *msg, *sig;
			size_t msg_len, sig_len;
			int accepted;

			assert_int_equal(json_hex_decode(json_get_str(t, "msg"), &msg, &msg_len), 0);
			assert_int_equal(json_hex_decode(json_get_str(t, "sig"), &sig, &sig_len), 0);
			accepted = fn(pk, msg, msg_len, sig, sig_len, &c);
			check_result(name, t, expected(t), accepted, &c);
			free(msg);
			free(sig);
		}
		EVP_PKEY_free(pk);
	}
	num = json_get(root, "numberOfTests");
	assert_non_null(num);
	assert_int_equal(c.run, (size_t)num->num);
	assert_true(c.run >= min_tests);
	assert_true(c.valid > 0 && c.invalid > 0);
	printf("# %s: %zu vectors run (valid %zu, invalid %zu, acceptable %zu); "
	    "rejected by codec %zu, by verification %zu\n", name, c.run, c.valid, c.invalid,
	    c.acceptable, c.rej_decoder, c.rej_verify);
	json_free(root);
}

static void
test_wycheproof_der(void **state)
{
	(void)state;
	run_file("ecdsa_secp256r1_sha256_test.json", vector_der, 400);
}

static void
test_wycheproof_p1363(void **state)
{
	(void)state;
	run_file("ecdsa_secp256r1_sha256_p1363_test.json", vector_p1363, 200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_to_der_shapes),
		cmocka_unit_test(test_der_strictness),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_wycheproof_der),
		cmocka_unit_test(test_wycheproof_p1363),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
