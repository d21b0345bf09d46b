/*
 * test_pb_strings.c - unit tests of the protobuf string-field check: NUL
 * bytes and invalid UTF-8 in string fields (top level and nested) are
 * refused, bytes fields may hold anything, malformed wire data is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boltseal/v1/keys.pb-c.h"
#include "formats/pb_strings.h"

static size_t
pack_sign(const char *name, const uint8_t *msg, size_t msglen, uint8_t *out)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;

	r.key_name = (char *)name;
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = (uint8_t *)msg;
	r.message.len = msglen;
	return protobuf_c_message_pack(&r.base, out);
}

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int ok;
	} cases[] = {
		{ "", 0, 1 },
		{ "demo-ecdsa", 10, 1 },
		{ "caf\xc3\xa9", 5, 1 },
		{ "\xe2\x80\x94", 3, 1 },            /* em dash */
		{ "\xf0\x9f\x9a\x9a", 4, 1 },        /* U+1F69A */
		{ "nul\0x", 5, 0 },
		{ "\xc0\xaf", 2, 0 },                /* overlong '/' */
		{ "\xe0\x80\xaf", 3, 0 },            /* overlong */
		{ "\xed\xa0\x80", 3, 0 },            /* surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },        /* > U+10FFFF */
		{ "\xff", 1, 0 },
		{ "\xc3", 1, 0 },                    /* truncated */
		{ "\xe2\x80", 2, 0 },
		{ "\x80", 1, 0 },                    /* lone continuation */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(pb_utf8_valid_nonul((const uint8_t *)cases[i].s, cases[i].len),
		    cases[i].ok);
}

static void
test_top_level_string(void **state)
{
	uint8_t buf[256];
	uint32_t field = 0;
	size_t n;

	n = pack_sign("demo", (const uint8_t *)"x", 1, buf);
	assert_int_equal(pb_strings_check(&boltseal__v1__sign_request__descriptor, buf, n, &field), 0);

	/* protobuf-c itself would turn "nul\0x" into "nul" */
	memcpy(buf, "\x0a\x05nul\0x", 7);
	assert_int_equal(pb_strings_check(&boltseal__v1__sign_request__descriptor, buf, 7, &field),
	    BS_ERR_INVALID);
	assert_int_equal(field, 1);

	memcpy(buf, "\x0a\x02\xc3\x28", 4);
	assert_int_equal(pb_strings_check(&boltseal__v1__sign_request__descriptor, buf, 4, &field),
	    BS_ERR_INVALID);
}

static void
test_bytes_field_is_free(void **state)
{
	uint8_t buf[256];
	size_t n;

	n = pack_sign("demo", (const uint8_t *)"\0\xff\xc0", 3, buf);
	assert_int_equal(pb_strings_check(&boltseal__v1__sign_request__descriptor, buf, n, NULL), 0);
}

static void
test_nested_string(void **state)
{
	/* ListKeysResponse.keys[0].name (field 1 of the nested Key) with a NUL */
	static const uint8_t good[] = { 0x0a, 0x03, 0x0a, 0x01, 'k' };
	static const uint8_t bad[] = { 0x0a, 0x03, 0x0a, 0x01, 0x00 };
	uint32_t field = 0;

	assert_int_equal(pb_strings_check(&boltseal__v1__list_keys_response__descriptor, good,
	    sizeof(good), &field), 0);
	assert_int_equal(pb_strings_check(&boltseal__v1__list_keys_response__descriptor, bad,
	    sizeof(bad), &field), BS_ERR_INVALID);
	assert_int_equal(field, 1);
}

static void
test_malformed_wire(void **state)
{
	static const uint8_t overlong_len[] = { 0x0a, 0x05, 'a' };          /* length past the end */
	static const uint8_t bad_varint[] = { 0x10, 0xff, 0xff };           /* unterminated varint */
	static const uint8_t field_zero[] = { 0x02, 0x00 };                 /* field number 0 */
	static const uint8_t group[] = { 0x0b };                            /* wire type 3 */
	static const uint8_t fixed64_short[] = { 0x09, 1, 2, 3 };
	static const uint8_t unknown_ok[] = { 0xa8, 0x1f, 0x01, 0xfd, 0x1f, 1, 2, 3, 4 };
	const ProtobufCMessageDescriptor *d = &boltseal__v1__sign_request__descriptor;

	assert_int_equal(pb_strings_check(d, overlong_len, sizeof(overlong_len), NULL), BS_ERR_INVALID);
	assert_int_equal(pb_strings_check(d, bad_varint, sizeof(bad_varint), NULL), BS_ERR_INVALID);
	assert_int_equal(pb_strings_check(d, field_zero, sizeof(field_zero), NULL), BS_ERR_INVALID);
	assert_int_equal(pb_strings_check(d, group, sizeof(group), NULL), BS_ERR_INVALID);
	assert_int_equal(pb_strings_check(d, fixed64_short, sizeof(fixed64_short), NULL),
	    BS_ERR_INVALID);
	/* unknown fields of valid wire types are skipped */
	assert_int_equal(pb_strings_check(d, unknown_ok, sizeof(unknown_ok), NULL), 0);
	assert_int_equal(pb_strings_check(d, NULL, 0, NULL), 0);
}

static void
test_two_levels(void **state)
{
	/* ListKeysResponse{keys: Key{versions: KeyVersion{version: 1}}} */
	static const uint8_t two_levels[] = { 0x0a, 0x04, 0x32, 0x02, 0x08, 0x01 };
	/* the same with the inner length running past its parent */
	static const uint8_t overrun[] = { 0x0a, 0x04, 0x32, 0x05, 0x08, 0x01 };

	assert_int_equal(pb_strings_check(&boltseal__v1__list_keys_response__descriptor, two_levels,
	    sizeof(two_levels), NULL), 0);
	assert_int_equal(pb_strings_check(&boltseal__v1__list_keys_response__descriptor, overrun,
	    sizeof(overrun), NULL), BS_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_top_level_string),
		cmocka_unit_test(test_bytes_field_is_free),
		cmocka_unit_test(test_nested_string),
		cmocka_unit_test(test_malformed_wire),
		cmocka_unit_test(test_two_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
