/*
 * test_json_lite.c - unit tests for src/client/json_lite.c, the strict JSON
 * reader of the vehicle-side verifier: escapes and surrogate pairs decode
 * to UTF-8, every malformed string form is refused, depth and size limits
 * hold at their bounds, duplicate keys are found (also when spelled with
 * escapes, also nested), numbers are int64 integers in one spelling, and
 * nothing may follow the object.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/json_lite.h"

static struct json_lite_obj obj;

static int
parse(const char *s)
{
	size_t off;

	return json_lite_parse((const uint8_t *)s, strlen(s), &obj, &off);
}

/* The decoded string value of member "a" of s. */
static const char *
str_a(const char *s)
{
	static char out[512];
	const struct json_lite_member *m;

	assert_int_equal(parse(s), 0);
	assert_non_null(m = json_lite_get(&obj, "a"));
	assert_int_equal(json_lite_string(&obj, m, out, sizeof(out), NULL), 0);
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
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i]);

		if (rc != JSON_LITE_ERR_STRING)
			fail_msg("case %zu: %d", i, rc);
		assert_int_equal(obj.n, 0);
	}
	/* unterminated strings and escapes are syntax errors */
	assert_int_equal(parse("{\"a\":\"abc"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":\"abc\\"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":\"\\u12"), JSON_LITE_ERR_STRING);
}

static void
test_depth(void **state)
{
	char buf[256];
	size_t n = 0, i;

	(void)state;
	/* the top-level object is level 1: 15 more levels are fine, 16 more are not */
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"a\":");
	for (i = 0; i < 14; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, i % 2 ? "[" : "{\"b\":");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[]");
	for (i = 14; i-- > 0;)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, i % 2 ? "]" : "}");
	snprintf(buf + n, sizeof(buf) - n, "}");
	assert_int_equal(parse(buf), 0);
	assert_int_equal(obj.m[0].type, JSON_LITE_OBJECT);

	n = (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
	for (i = 0; i < 15; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[]");
	for (i = 0; i < 15; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]");
	snprintf(buf + n, sizeof(buf) - n, "}");
	assert_int_equal(parse(buf), JSON_LITE_ERR_DEPTH);
}

static void
test_duplicates(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\":1,\"b\":2,\"a\":3}"), JSON_LITE_ERR_DUPLICATE);
	assert_int_equal(parse("{\"alg\":1,\"\\u0061lg\":2}"), JSON_LITE_ERR_DUPLICATE);
	assert_int_equal(parse("{\"a\":{\"x\":1,\"y\":{},\"x\":2}}"), JSON_LITE_ERR_DUPLICATE);
	assert_int_equal(parse("{\"a\":[{\"x\":1},{\"x\":1,\"x\":1}]}"), JSON_LITE_ERR_DUPLICATE);
	/* the same key in different objects is fine */
	assert_int_equal(parse("{\"x\":{\"x\":{\"x\":1}},\"y\":[{\"x\":1},{\"x\":2}]}"), 0);
	assert_int_equal(obj.n, 2);
	/* found by its decoded name */
	assert_int_equal(parse("{\"\\u0061lg\":\"ES256\"}"), 0);
	assert_non_null(json_lite_get(&obj, "alg"));
	assert_null(json_lite_get(&obj, "al"));
}

static void
test_numbers(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1.0}", "{\"a\":1e3}", "{\"a\":1E3}", "{\"a\":0.5}", "{\"a\":-0}",
		"{\"a\":01}", "{\"a\":-01}", "{\"a\":9223372036854775808}",
		"{\"a\":-9223372036854775809}", "{\"a\":99999999999999999999999}",
	};
	size_t i;

	(void)state;
	assert_int_equal(parse("{\"a\":0,\"b\":-1,\"c\":9223372036854775807,"
	    "\"d\":-9223372036854775808,\"e\":1700000000}"), 0);
	assert_int_equal(obj.n, 5);
	assert_int_equal(obj.m[0].num, 0);
	assert_int_equal(obj.m[1].num, -1);
	assert_true(obj.m[2].num == INT64_MAX);
	assert_true(obj.m[3].num == INT64_MIN);
	assert_int_equal(obj.m[4].num, 1700000000);
	assert_int_equal(obj.m[4].type, JSON_LITE_INT);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != JSON_LITE_ERR_NUMBER)
			fail_msg("case %s", bad[i]);
	assert_int_equal(parse("{\"a\":+1}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":.5}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":-}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":[1,2.5]}"), JSON_LITE_ERR_NUMBER);
}

static void
test_structure(void **state)
{
	(void)state;
	assert_int_equal(parse(" \r\n\t{ \"a\" : true , \"b\":false,\"c\":null } \n"), 0);
	assert_int_equal(obj.n, 3);
	assert_int_equal(obj.m[0].type, JSON_LITE_TRUE);
	assert_int_equal(obj.m[1].type, JSON_LITE_FALSE);
	assert_int_equal(obj.m[2].type, JSON_LITE_NULL);
	assert_int_equal(parse("{}"), 0);
	assert_int_equal(obj.n, 0);
	assert_int_equal(parse("{} x"), JSON_LITE_ERR_TRAILING);
	assert_int_equal(parse("{}{}"), JSON_LITE_ERR_TRAILING);
	assert_int_equal(parse("{}\0"), 0);  /* strlen stops: the NUL is not part of the input */
	assert_int_equal(json_lite_parse((const uint8_t *)"{}\0", 3, &obj, NULL),
	    JSON_LITE_ERR_TRAILING);
	assert_int_equal(parse("[]"), JSON_LITE_ERR_NOT_OBJECT);
	assert_int_equal(parse("\"a\""), JSON_LITE_ERR_NOT_OBJECT);
	assert_int_equal(parse("\xef\xbb\xbf{}"), JSON_LITE_ERR_NOT_OBJECT);
	assert_int_equal(parse(""), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("   "), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":1,}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":[1,]}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\" 1}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{'a':1}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{a:1}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":TRUE}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":tru}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":[1 2]}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":1 \"b\":2}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":}"), JSON_LITE_ERR_SYNTAX);
	assert_int_equal(parse("{\"a\":1}}"), JSON_LITE_ERR_TRAILING);
	assert_int_equal(json_lite_parse(NULL, 0, &obj, NULL), JSON_LITE_ERR_SYNTAX);
}

static void
test_spans(void **state)
{
	const char *s = "{\"args\": {\"door\" : \"left\", \"n\":[1,{\"x\":null}]} , \"s\":\"a\\nb\"}";
	const struct json_lite_member *m;
	char out[8];
	size_t n;

	(void)state;
	assert_int_equal(parse(s), 0);
	assert_non_null(m = json_lite_get(&obj, "args"));
	assert_int_equal(m->type, JSON_LITE_OBJECT);
	assert_int_equal(m->val_len, strlen("{\"door\" : \"left\", \"n\":[1,{\"x\":null}]}"));
	assert_memory_equal(s + m->val_off, "{\"door\" : \"left\", \"n\":[1,{\"x\":null}]}",
	    m->val_len);
	assert_int_equal(json_lite_string(&obj, m, out, sizeof(out), NULL), JSON_LITE_ERR_ARG);
	assert_non_null(m = json_lite_get(&obj, "s"));
	assert_int_equal(json_lite_string(&obj, m, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out, "a\nb");
	/* a buffer one byte short: refused and cleared */
	assert_int_equal(json_lite_string(&obj, m, out, 3, &n), JSON_LITE_ERR_LIMIT);
	assert_int_equal(out[0], 0);
	assert_int_equal(json_lite_string(&obj, m, out, 4, &n), 0);
}

static void
test_limits(void **state)
{
	char *buf = malloc(JSON_LITE_MAX_INPUT + 16);
	size_t n = 0, i;

	(void)state;
	assert_non_null(buf);
	/* JSON_LITE_MAX_MEMBERS members: fine; one more: refused */
	n = (size_t)sprintf(buf, "{");
	for (i = 0; i < JSON_LITE_MAX_MEMBERS; i++)
		n += (size_t)sprintf(buf + n, "%s\"k%zu\":%zu", i ? "," : "", i, i);
	sprintf(buf + n, "}");
	assert_int_equal(parse(buf), 0);
	assert_int_equal(obj.n, JSON_LITE_MAX_MEMBERS);
	sprintf(buf + n, ",\"last\":1}");
	assert_int_equal(parse(buf), JSON_LITE_ERR_LIMIT);
	/* nested objects have the same limit */
	memmove(buf + 6, buf, strlen(buf) + 1);
	memcpy(buf, "{\"a\":", 5);
	buf[5] = ' ';
	strcat(buf, "}");
	assert_int_equal(parse(buf), JSON_LITE_ERR_LIMIT);
	/* a key of JSON_LITE_MAX_KEY bytes: fine; one more: refused */
	n = (size_t)sprintf(buf, "{\"");
	memset(buf + n, 'k', JSON_LITE_MAX_KEY);
	n += JSON_LITE_MAX_KEY;
	sprintf(buf + n, "\":1}");
	assert_int_equal(parse(buf), 0);
	sprintf(buf + n, "k\":1}");
	assert_int_equal(parse(buf), JSON_LITE_ERR_LIMIT);
	/* the document size */
	memset(buf, ' ', JSON_LITE_MAX_INPUT + 1);
	memcpy(buf, "{}", 2);
	assert_int_equal(json_lite_parse((uint8_t *)buf, JSON_LITE_MAX_INPUT, &obj, NULL), 0);
	assert_int_equal(json_lite_parse((uint8_t *)buf, JSON_LITE_MAX_INPUT + 1, &obj, NULL),
	    JSON_LITE_ERR_LIMIT);
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
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
