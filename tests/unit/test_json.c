/*
 * test_json.c - unit tests for src/common/json.c: the escaper (rules,
 * cutting, measured length) and the writer over a struct bytebuf
 * (separators, nesting, every value kind, NULL strings, raw values),
 * misuse (a key where none belongs and the reverse, closing the wrong
 * container or nothing, nesting too deep, containers left open) and a
 * full fixed buffer (bytebuf_init_fixed), all reported by bs_json_error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"

/* b's bytes as a C string in out. */
static const char *
text(const struct bytebuf *b, char *out, size_t cap)
{
	assert_true(b->len < cap);
	memcpy(out, b->p, b->len);
	out[b->len] = '\0';
	return out;
}

static void
test_escape(void **state)
{
	static const char *in[] = {
		"plain", "q\"b\\s/", "\b\f\n\r\t\x01\x1f\x7f", "\xc3\xa9\xf0\x9f\x94\x91",
		"a\x80\xff", "\xed\xa0\x80", "",
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_int_equal(bs_json_escaped_len(in[i]),
		    bs_json_escape(out, sizeof(out), in[i]));
	bs_json_escape(out, sizeof(out), "\b\f\n\r\t\x01\x1f\x7f");
	assert_string_equal(out, "\\b\\f\\n\\r\\t\\u0001\\u001f\x7f");
	assert_int_equal(bs_json_escaped_len(NULL), 0);
	assert_int_equal(bs_json_escaped_len("a\xff"), 7);
	/* cut before an escape that does not fit whole */
	assert_int_equal(bs_json_escape(out, 7, "ab\x01"), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(bs_json_escape(out, 9, "ab\x01"), 8);
	assert_string_equal(out, "ab\\u0001");
}

static void
test_writer(void **state)
{
	struct bytebuf b = BYTEBUF_INIT;
	struct bs_json j;
	char out[512];

	(void)state;
	bs_json_init(&j, &b);
	bs_json_begin_object(&j, NULL);
	bs_json_put_uint(&j, "seq", UINT64_MAX);
	bs_json_put_int(&j, "neg", INT64_MIN);
	bs_json_put_string(&j, "s", "a\"\n\xff");
	bs_json_put_string(&j, "nul", NULL);
	bs_json_put_null(&j, "n");
	bs_json_put_bool(&j, "t", 7);
	bs_json_put_bool(&j, "f", 0);
	bs_json_begin_array(&j, "empty");
	bs_json_end_array(&j);
	bs_json_begin_object(&j, "o");
	bs_json_end_object(&j);
	bs_json_begin_array(&j, "a");
	bs_json_put_string(&j, NULL, "x");
	bs_json_put_int(&j, NULL, -1);
	bs_json_begin_object(&j, NULL);
	bs_json_put_raw(&j, "raw", "[1,2]", 5);
	bs_json_end_object(&j);
	bs_json_begin_array(&j, NULL);
	bs_json_end_array(&j);
	bs_json_end_array(&j);
	bs_json_put_string(&j, "k\"\x01", "v");
	bs_json_end_object(&j);
	assert_int_equal(bs_json_error(&j), 0);
	assert_string_equal(text(&b, out, sizeof(out)),
	    "{\"seq\":18446744073709551615,\"neg\":-9223372036854775808,"
	    "\"s\":\"a\\\"\\n\\ufffd\",\"nul\":null,\"n\":null,\"t\":true,\"f\":false,"
	    "\"empty\":[],\"o\":{},\"a\":[\"x\",-1,{\"raw\":[1,2]},[]],\"k\\\"\\u0001\":\"v\"}");
	bytebuf_free(&b);

	/* a top-level array and a top-level scalar */
	bs_json_init(&j, &b);
	bs_json_begin_array(&j, NULL);
	bs_json_end_array(&j);
	bs_json_put_string(&j, NULL, "");
	assert_int_equal(bs_json_error(&j), 0);
	assert_string_equal(text(&b, out, sizeof(out)), "[]\"\"");
	bytebuf_free(&b);
}

/* Each misuse sets BS_ERR_INVALID; later calls write nothing. */
static void
test_misuse(void **state)
{
	struct bytebuf b = BYTEBUF_INIT;
	struct bs_json j;
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 7; i++) {
		bs_json_init(&j, &b);
		switch (i) {
		case 0:         /* a key at the top level */
			bs_json_put_int(&j, "k", 1);
			break;
		case 1:         /* a member without a key */
			bs_json_begin_object(&j, NULL);
			bs_json_put_int(&j, NULL, 1);
			break;
		case 2:         /* an array element with a key */
			bs_json_begin_array(&j, NULL);
			bs_json_put_int(&j, "k", 1);
			break;
		case 3:         /* the wrong closer */
			bs_json_begin_array(&j, NULL);
			bs_json_end_object(&j);
			break;
		case 4:         /* nothing to close */
			bs_json_end_array(&j);
			break;
		case 5:         /* left open */
			bs_json_begin_object(&j, NULL);
			break;
		default:        /* too deep */
			for (int d = 0; d <= BS_JSON_DEPTH_MAX; d++)
				bs_json_begin_array(&j, NULL);
			break;
		}
		assert_int_equal(bs_json_error(&j), BS_ERR_INVALID);
		len = b.len;
		bs_json_put_string(&j, NULL, "more");
		bs_json_end_object(&j);
		assert_int_equal(b.len, len);
		bytebuf_free(&b);
	}
	/* nesting up to the maximum is fine */
	bs_json_init(&j, &b);
	for (i = 0; i < BS_JSON_DEPTH_MAX; i++)
		bs_json_begin_array(&j, NULL);
	for (i = 0; i < BS_JSON_DEPTH_MAX; i++)
		bs_json_end_array(&j);
	assert_int_equal(bs_json_error(&j), 0);
	assert_int_equal(b.len, 2 * BS_JSON_DEPTH_MAX);
	bytebuf_free(&b);
}

/* A fixed buffer that fills up: the buffer's error, nothing past its end. */
static void
test_fixed_full(void **state)
{
	char mem[16], out[32];
	struct bytebuf b;
	struct bs_json j;
	size_t len;

	(void)state;
	memset(mem, '#', sizeof(mem));
	bytebuf_init_fixed(&b, mem, 12);
	bs_json_init(&j, &b);
	bs_json_begin_object(&j, NULL);
	bs_json_put_string(&j, "k", "v");       /* {"k":"v" is 8 bytes */
	assert_int_equal(bytebuf_error(&b), 0);
	bs_json_put_string(&j, "long", "value");
	bs_json_end_object(&j);
	assert_int_equal(bs_json_error(&j), BS_ERR_TOO_BIG);
	assert_true(b.len <= 12);
	assert_memory_equal(mem + 12, "####", 4);
	assert_ptr_equal(b.p, (uint8_t *)mem);
	assert_null(bytebuf_steal(&b, &len));
	assert_int_equal(len, 0);
	bytebuf_free(&b);                       /* wipes, keeps the memory */
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.p, (uint8_t *)mem);
	bs_json_init(&j, &b);
	bs_json_put_bool(&j, NULL, 1);
	assert_int_equal(bs_json_error(&j), 0);
	assert_string_equal(text(&b, out, sizeof(out)), "true");
	/* a fixed buffer of nothing takes nothing */
	bytebuf_init_fixed(&b, mem, 0);
	bytebuf_put(&b, "x", 1);
	assert_int_equal(bytebuf_error(&b), BS_ERR_TOO_BIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_fixed_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
