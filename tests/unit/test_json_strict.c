/*
 * test_json_strict.c - unit tests for src/formats/json_strict.c, the strict
 * JSON reader (jansson with checks on top) of TUF metadata, command
 * arguments and the vehicle-side command verifier: escapes and surrogate
 * pairs decode to UTF-8, every malformed string form is refused, numbers
 * are int64 integers (no fraction, exponent or leading zero), duplicate keys
 * are found at any depth and when spelled with escapes, nothing may follow
 * the value, and the depth, member, key and size limits hold at their
 * bounds, with the error naming where.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/json_strict.h"

/* The limits of the vehicle-side verifier (docs/commands.md, "Strict JSON"). */
static const struct json_strict_limits vehicle = {
	.max_len = 64 * 1024, .max_depth = 15, .max_members = 64, .max_key = 256, .object = 1,
};
static char err[256];

static int
parse_with(const struct json_strict_limits *lim, const char *s, size_t len, json_t **out)
{
	json_t *v = NULL;
	int rc;

	err[0] = '\0';
	rc = json_strict_parse((const uint8_t *)s, len, lim, &v, err, sizeof(err));
	if (rc != 0)
		assert_null(v);
	if (out != NULL)
		*out = v;
	else
		json_decref(v);
	return rc;
}

static int
parse(const char *s)
{
	return parse_with(&vehicle, s, strlen(s), NULL);
}

/* The decoded string value of member "a" of s (static buffer). */
static const char *
str_a(const char *s)
{
	static char out[512];
	json_t *v;

	assert_int_equal(parse_with(&vehicle, s, strlen(s), &v), 0);
	assert_true(json_is_string(json_object_get(v, "a")));
	snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(v, "a")));
	json_decref(v);
	return out;
}

static void
test_escapes(void **state)
{
	(void)state;
	assert_string_equal(str_a("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"), "\"\\/\b\f\n\r\t");
	assert_string_equal(str_a("{\"a\":\"x\\u0041\\u00e9\\u20AC\"}"), "xA\xc3\xa9\xe2\x82\xac");
	assert_string_equal(str_a("{\"a\":\"\\ud83d\\ude00!\"}"), "\xf0\x9f\x98\x80!");
	assert_string_equal(str_a("{\"a\":\"\\uDBFF\\uDFFF\"}"), "\xf4\x8f\xbf\xbf");
	assert_string_equal(str_a("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"}"),
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f");
	assert_string_equal(str_a("{\"a\":\"\"}"), "");
}

static void
test_bad_strings(void **state)
{
	static const char *const bad[] = {
		"{\"a\":\"\\ud83d\"}",             /* high surrogate alone */
		"{\"a\":\"\\ud83dx\"}",
		"{\"a\":\"\\ud83d\\u0041\"}",      /* high + not a low */
		"{\"a\":\"\\ud83d\\ud83d\"}",
		"{\"a\":\"\\ude00\"}",             /* low surrogate alone */
		"{\"a\":\"\\u0000\"}",             /* would cut a C string */
		"{\"a\":\"\\u12g4\"}",
		"{\"a\":\"\\u12\"}",
		"{\"a\":\"\\x41\"}",
		"{\"a\":\"\\'\"}",
		"{\"a\":\"\x01\"}",                /* raw control characters */
		"{\"a\":\"\t\"}",
		"{\"a\":\"\n\"}",
		"{\"a\":\"\xc0\x80\"}",            /* overlong */
		"{\"a\":\"\xe0\x80\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}",        /* a surrogate in UTF-8 */
		"{\"a\":\"\xf4\x90\x80\x80\"}",    /* above U+10FFFF */
		"{\"a\":\"\xf5\x80\x80\x80\"}",
		"{\"a\":\"\xe2\x82\"}",            /* truncated sequence */
		"{\"a\":\"\x80\"}",                /* a lone continuation byte */
		"{\"a\":\"\xff\"}",
		"{\"\xc0\xae\":1}",                /* keys too */
		"{\"a\":\"abc", "{\"a\":\"abc\\",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i]) != BS_ERR_INVALID)
			fail_msg("case %zu accepted", i);
		assert_non_null(strstr(err, "not valid JSON at line 1"));
	}
}

static void
test_depth(void **state)
{
	char buf[256];
	size_t n = 0, i;

	(void)state;
	/* the top-level object is level 0 here (1 in docs/commands.md): 15 more are fine */
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"a\":");
	for (i = 0; i < 14; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, i % 2 ? "[" : "{\"b\":");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[]");
	for (i = 14; i-- > 0;)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, i % 2 ? "]" : "}");
	snprintf(buf + n, sizeof(buf) - n, "}");
	assert_int_equal(parse(buf), 0);

	n = (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
	for (i = 0; i < 15; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[]");
	for (i = 0; i < 15; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]");
	snprintf(buf + n, sizeof(buf) - n, "}");
	assert_int_equal(parse(buf), BS_ERR_INVALID);
	assert_string_equal(err, "nested deeper than 15 levels at $.a[0][0][0][0][0][0][0][0][0][0]"
	    "[0][0][0][0][0]");
}

static void
test_duplicates(void **state)
{
	json_t *v;

	(void)state;
	assert_int_equal(parse("{\"a\":1,\"b\":2,\"a\":3}"), BS_ERR_INVALID);
	assert_non_null(strstr(err, "duplicate object key"));
	assert_int_equal(parse("{\"alg\":1,\"\\u0061lg\":2}"), BS_ERR_INVALID);
	assert_int_equal(parse("{\"a\":{\"x\":1,\"y\":{},\"x\":2}}"), BS_ERR_INVALID);
	assert_int_equal(parse("{\"a\":[{\"x\":1},{\"x\":1,\"x\":1}]}"), BS_ERR_INVALID);
	/* the same key in different objects is fine */
	assert_int_equal(parse("{\"x\":{\"x\":{\"x\":1}},\"y\":[{\"x\":1},{\"x\":2}]}"), 0);
	/* found by its decoded name */
	assert_int_equal(parse_with(&vehicle, "{\"\\u0061lg\":\"ES256\"}",
	    strlen("{\"\\u0061lg\":\"ES256\"}"), &v), 0);
	assert_non_null(json_object_get(v, "alg"));
	json_decref(v);
}

static void
test_numbers(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1.0}", "{\"a\":1e3}", "{\"a\":1E3}", "{\"a\":0.5}", "{\"a\":01}",
		"{\"a\":-01}", "{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}",
		"{\"a\":99999999999999999999999}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":-}",
		"{\"a\":[1,2.5]}",
	};
	const char *nums = "{\"a\":0,\"b\":-1,\"c\":9223372036854775807,"
	    "\"d\":-9223372036854775808,\"e\":1700000000}";
	json_t *v;

	(void)state;
	assert_int_equal(parse_with(&vehicle, nums, strlen(nums), &v), 0);
	assert_true(json_integer_value(json_object_get(v, "c")) == INT64_MAX);
	assert_true(json_integer_value(json_object_get(v, "d")) == INT64_MIN);
	assert_int_equal(json_integer_value(json_object_get(v, "e")), 1700000000);
	json_decref(v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != BS_ERR_INVALID)
			fail_msg("case %s accepted", bad[i]);
	assert_int_equal(parse("{\"a\":{\"b\":[0, 1e3]}}"), BS_ERR_INVALID);
	assert_string_equal(err, "floating-point number at $.a.b[1] (integers only)");
	/* jansson reads -0 as the integer 0 */
	assert_int_equal(parse_with(&vehicle, "{\"a\":-0}", 8, &v), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "a")), 0);
	json_decref(v);
}

static void
test_structure(void **state)
{
	static const char *const bad[] = {
		"{} x", "{}{}", "[]", "\"a\"", "\xef\xbb\xbf{}", "", "   ", "{", "{\"a\":1,}",
		"{\"a\":[1,]}", "{\"a\" 1}", "{'a':1}", "{a:1}", "{\"a\":TRUE}", "{\"a\":tru}",
		"{\"a\":[1 2]}", "{\"a\":1 \"b\":2}", "{\"a\":}", "{\"a\":1}}",
	};
	struct json_strict_limits any = vehicle;

	(void)state;
	assert_int_equal(parse(" \r\n\t{ \"a\" : true , \"b\":false,\"c\":null } \n"), 0);
	assert_int_equal(parse("{}"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != BS_ERR_INVALID)
			fail_msg("case %zu accepted", i);
	assert_int_equal(parse_with(&vehicle, "{}\0", 3, NULL), BS_ERR_INVALID);
	assert_int_equal(parse("[]"), BS_ERR_INVALID);
	assert_string_equal(err, "not a JSON object");
	/* without .object any value is a document */
	any.object = 0;
	assert_int_equal(parse_with(&any, "[1]", 3, NULL), 0);
	assert_int_equal(parse_with(&any, "\"a\"", 3, NULL), 0);
}

static void
test_limits(void **state)
{
	char *buf = malloc(64 * 1024 + 16);
	size_t n = 0, i;

	(void)state;
	assert_non_null(buf);
	/* 64 members: fine; one more: refused, nested objects alike */
	n = (size_t)sprintf(buf, "{");
	for (i = 0; i < 64; i++)
		n += (size_t)sprintf(buf + n, "%s\"k%zu\":%zu", i ? "," : "", i, i);
	sprintf(buf + n, "}");
	assert_int_equal(parse(buf), 0);
	sprintf(buf + n, ",\"last\":1}");
	assert_int_equal(parse(buf), BS_ERR_INVALID);
	assert_string_equal(err, "the object at $ has more than 64 members");
	memmove(buf + 5, buf, strlen(buf) + 1);
	memcpy(buf, "{\"a\":", 5);
	strcat(buf, "}");
	assert_int_equal(parse(buf), BS_ERR_INVALID);
	assert_string_equal(err, "the object at $.a has more than 64 members");
	/* a key of 256 bytes: fine; one more: refused */
	n = (size_t)sprintf(buf, "{\"");
	memset(buf + n, 'k', 256);
	n += 256;
	sprintf(buf + n, "\":1}");
	assert_int_equal(parse(buf), 0);
	sprintf(buf + n, "k\":1}");
	assert_int_equal(parse(buf), BS_ERR_INVALID);
	assert_string_equal(err, "a key of the object at $ is longer than 256 bytes");
	/* the document size */
	memset(buf, ' ', 64 * 1024 + 1);
	memcpy(buf, "{}", 2);
	assert_int_equal(parse_with(&vehicle, buf, 64 * 1024, NULL), 0);
	assert_int_equal(parse_with(&vehicle, buf, 64 * 1024 + 1, NULL), BS_ERR_TOO_BIG);
	assert_string_equal(err, "the document is 65537 bytes, more than the limit of 65536");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
