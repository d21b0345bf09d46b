/*
 * test_b64.c - unit tests for src/common/b64.c: RFC 4648 vectors both ways,
 * strict decoding refusing white space, wrong or missing padding, padding
 * inside the text, non-zero unused bits, other alphabets and trailing
 * garbage; decoding into a short buffer (measure, cut); round trips through
 * several EVP_DecodeBlock chunks; and the CLI's lax mode (white space
 * skipped, padding optional, over-padding and unused bits tolerated).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64.h"

static const struct {
	const char *raw, *b64;
} rfc4648[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

/* Decodes s (strlen) under flags into out; returns the rc, *n the length. */
static int
dec(const char *s, unsigned flags, uint8_t *out, size_t cap, size_t *n)
{
	return bs_b64_decode(s, strlen(s), flags, out, cap, n);
}

static void
test_vectors(void **state)
{
	char text[16];
	uint8_t raw[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t rl = strlen(rfc4648[i].raw);

		assert_int_equal(bs_b64_encode((const uint8_t *)rfc4648[i].raw, rl, text),
		    strlen(rfc4648[i].b64));
		assert_string_equal(text, rfc4648[i].b64);
		assert_int_equal(BS_B64_ENCODED_LEN(rl), strlen(rfc4648[i].b64));
		n = 99;
		assert_int_equal(dec(rfc4648[i].b64, 0, raw, sizeof(raw), &n), 0);
		assert_int_equal(n, rl);
		assert_memory_equal(raw, rfc4648[i].raw, rl);
		n = 99;
		assert_int_equal(dec(rfc4648[i].b64, BS_B64_LAX, raw, sizeof(raw), &n), 0);
		assert_int_equal(n, rl);
		assert_memory_equal(raw, rfc4648[i].raw, rl);
	}
}

static void
test_strict_refused(void **state)
{
	static const char *bad[] = {
		"Zg=", "Zg", "Zm9vY", "Zm9vYg",         /* length not a multiple of 4 */
		"Zh==", "Zm9=",                         /* unused bits not zero */
		"Z===", "====", "=Zg=", "Zg=a",         /* padding where it cannot be */
		"Zg==Zg==",                             /* padding inside the text */
		"Zm9v\n", " Zm9v", "Zm9v Zm9v", "Zm9v\r\n", "Zm\t9v", /* white space */
		"Zm9vYg==x", "Zm9vYg==\n", "Zm9v!",     /* trailing garbage */
		"Zm-_", "Zm9v.A==", "Zm*v",             /* other alphabets */
	};
	uint8_t out[8] = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55 };
	size_t i, n = 77;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dec(bad[i], 0, out, sizeof(out), &n) != BS_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* a NUL inside the counted length */
	assert_int_equal(bs_b64_decode("Zm\0v", 4, 0, out, sizeof(out), &n), BS_ERR_INVALID);
	/* outputs untouched */
	assert_int_equal(n, 77);
	assert_memory_equal(out, "\x55\x55\x55\x55\x55\x55\x55\x55", 8);
}

static void
test_short_buffer(void **state)
{
	uint8_t out[8];
	size_t n = 0;

	(void)state;
	/* measuring only */
	assert_int_equal(dec("Zm9vYmFy", 0, NULL, 0, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(dec("Zm9vYmE=", 0, NULL, 0, &n), 0);
	assert_int_equal(n, 5);
	/* the first cap bytes, and the whole length */
	memset(out, 0, sizeof(out));
	assert_int_equal(dec("Zm9vYmFy", 0, out, 2, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "fo\0\0", 4);
	assert_int_equal(dec("Zm9vYmE=", 0, out, 4, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "foob\0", 5);
	/* measuring still checks the whole text */
	assert_int_equal(dec("Zm9vYmE", 0, NULL, 0, &n), BS_ERR_INVALID);
	assert_int_equal(dec("Zm9vYh==", 0, out, 1, &n), BS_ERR_INVALID);
}

/* Lengths around the chunk sizes, every byte value. */
static void
test_round_trip(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 190, 191, 192, 193, 194, 4000, 100001 };
	uint8_t *raw, *back;
	char *text;
	size_t i, k, n, tl;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		raw = malloc(sizes[i]);
		back = malloc(sizes[i] + 1);
		text = malloc(BS_B64_ENCODED_LEN(sizes[i]) + 1);
		assert_non_null(raw);
		assert_non_null(back);
		assert_non_null(text);
		for (k = 0; k < sizes[i]; k++)
			raw[k] = (uint8_t)(k * 7 + i);
		tl = bs_b64_encode(raw, sizes[i], text);
		assert_int_equal(tl, BS_B64_ENCODED_LEN(sizes[i]));
		assert_int_equal(strlen(text), tl);
		assert_int_equal(bs_b64_decode(text, tl, 0, back, sizes[i] + 1, &n), 0);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(raw, back, n);
		/* cut somewhere in the middle of a chunk */
		memset(back, 0, sizes[i]);
		assert_int_equal(bs_b64_decode(text, tl, 0, back, sizes[i] / 2, &n), 0);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(raw, back, sizes[i] / 2);
		free(raw);
		free(back);
		free(text);
	}
}

static void
test_lax(void **state)
{
	static const struct {
		const char *in, *raw;
	} good[] = {
		{ "Zm9v\nYmFy\n", "foobar" },
		{ "Zm9vYg", "foob" },                   /* padding left out */
		{ "Zm9vYmE", "fooba" },
		{ " Zm9vYg = = \r\n", "foob" },
		{ "\tZg\v\f", "f" },
		{ "Zm9v==", "foo" },                    /* over-padded: always accepted */
		{ "Zh==", "f" },                        /* unused bits ignored */
	};
	static const char *bad[] = {
		"Zm9vY",                                /* 1 data character in the last group */
		"Zm9vYg===",                            /* three '=' */
		"Zg==x", "Zg= =Zg",                     /* data after '=' */
		"Zm9v!", "Zm-_", "Zm\xc3\xa9v",         /* outside the alphabet */
	};
	uint8_t out[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (dec(good[i].in, BS_B64_LAX, out, sizeof(out), &n) != 0)
			fail_msg("refused \"%s\"", good[i].in);
		assert_int_equal(n, strlen(good[i].raw));
		assert_memory_equal(out, good[i].raw, n);
		/* none of them is strict base64 */
		assert_int_equal(dec(good[i].in, 0, out, sizeof(out), &n), BS_ERR_INVALID);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dec(bad[i], BS_B64_LAX, out, sizeof(out), &n) != BS_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* nothing, or only white space and padding: zero bytes (the caller decides) */
	assert_int_equal(dec(" \n==", BS_B64_LAX, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_strict_refused),
		cmocka_unit_test(test_short_buffer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_lax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
