/*
 * test_hex.c - unit tests for src/common/hex.c: lower-case encoding, strict
 * decoding of an exact number of digits (either case, or lower-case only),
 * digit values; wrong lengths, non-digits and upper case under
 * BS_HEX_LOWER are refused without touching the output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/hex.h"

static void
test_encode(void **state)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[BS_HEX_LEN(sizeof(in))];

	(void)state;
	memset(out, 'x', sizeof(out));
	bs_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	bs_hex_encode(in, 0, out);
	assert_string_equal(out, "");
	assert_int_equal(BS_HEX_LEN(32), 65);
}

static void
test_decode(void **state)
{
	uint8_t out[4];

	(void)state;
	assert_int_equal(bs_hex_decode("00a0FFfe", 8, out, 4, 0), 0);
	assert_memory_equal(out, "\x00\xa0\xff\xfe", 4);
	assert_int_equal(bs_hex_decode("deadbeef", 8, out, 4, BS_HEX_LOWER), 0);
	assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
	/* the length is counted, no NUL needed */
	assert_int_equal(bs_hex_decode("0102zz", 4, out, 2, 0), 0);
	assert_memory_equal(out, "\x01\x02", 2);
	assert_int_equal(bs_hex_decode("", 0, out, 0, 0), 0);
}

static void
test_decode_refused(void **state)
{
	static const char *bad[] = { "0g", "g0", " 0", "0 ", "0x", "-1", "\0\0", ":0" };
	uint8_t out[4] = { 0x55, 0x55, 0x55, 0x55 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bs_hex_decode(bad[i], 2, out, 1, 0), BS_ERR_INVALID);
	/* wrong lengths: odd, short, long */
	assert_int_equal(bs_hex_decode("abc", 3, out, 1, 0), BS_ERR_INVALID);
	assert_int_equal(bs_hex_decode("ab", 2, out, 2, 0), BS_ERR_INVALID);
	assert_int_equal(bs_hex_decode("abcdef", 6, out, 2, 0), BS_ERR_INVALID);
	/* upper case where the format is lower case only */
	assert_int_equal(bs_hex_decode("abCd", 4, out, 2, BS_HEX_LOWER), BS_ERR_INVALID);
	assert_int_equal(bs_hex_decode("A0", 2, out, 1, BS_HEX_LOWER), BS_ERR_INVALID);
	/* a bad digit late in the text leaves the output as it was */
	assert_int_equal(bs_hex_decode("0102030x", 8, out, 4, 0), BS_ERR_INVALID);
	assert_memory_equal(out, "\x55\x55\x55\x55", 4);
}

static void
test_digit_value(void **state)
{
	int c;

	(void)state;
	assert_int_equal(bs_hex_digit_value('0'), 0);
	assert_int_equal(bs_hex_digit_value('9'), 9);
	assert_int_equal(bs_hex_digit_value('a'), 10);
	assert_int_equal(bs_hex_digit_value('F'), 15);
	for (c = -1; c < 256; c++) {
		int want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F');

		assert_int_equal(bs_hex_digit_value(c) >= 0, want);
	}
}

/* Every byte value round-trips. */
/* Every byte value in either place of a pair, both flag sets, against bs_hex_digit_value. */
static void
test_decode_every_byte(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		for (int pos = 0; pos < 2; pos++) {
			for (int lower = 0; lower < 2; lower++) {
				char in[2] = { '7', '7' };
				uint8_t out = 0xaa;
				int v = bs_hex_digit_value(c);
				int ok = v >= 0 && !(lower && c >= 'A' && c <= 'F');
				int rc;

				in[pos] = (char)c;
				rc = bs_hex_decode(in, 2, &out, 1, lower ? BS_HEX_LOWER : 0);
				if (!ok) {
					assert_int_equal(rc, BS_ERR_INVALID);
					assert_int_equal(out, 0xaa);   /* untouched */
					continue;
				}
				assert_int_equal(rc, 0);
				assert_int_equal(out, pos == 0 ? (v << 4 | 7) : (7 << 4 | v));
			}
		}
	}
}

static void
test_round_trip(void **state)
{
	uint8_t in[256], back[256];
	char text[BS_HEX_LEN(256)];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	bs_hex_encode(in, sizeof(in), text);
	assert_int_equal(strlen(text), 512);
	assert_int_equal(bs_hex_decode(text, 512, back, sizeof(back), BS_HEX_LOWER), 0);
	assert_memory_equal(in, back, sizeof(in));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_refused),
		cmocka_unit_test(test_digit_value),
		cmocka_unit_test(test_decode_every_byte),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
