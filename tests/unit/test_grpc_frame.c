/*
 * test_grpc_frame.c - unit tests for src/net/grpc_frame.c (LPM reassembly,
 * grpc-timeout, content-type, grpc-message encoding, status names) and for
 * the JSON-lines logger in src/common/log.c (escaping, line shape, levels).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/json.h"
#include "common/log.h"
#include "net/grpc_frame.h"
#include "rpc/rpc_status.h"

/* ---- LPM reader ------------------------------------------------------- */

static size_t
make_lpm(uint8_t *out, uint8_t flag, uint32_t len, const uint8_t *body)
{
	grpc_lpm_write_header(out, len);
	out[0] = flag;
	if (len > 0)
		memcpy(out + GRPC_LPM_HEADER_LEN, body, len);
	return GRPC_LPM_HEADER_LEN + len;
}

/*
 * A request stream: three messages back to back (one empty, one
 * compressed), fed whole and byte by byte, each taken as it completes;
 * next keeps allow_compressed; bytes after a message are left over.
 */
static void
test_lpm_stream(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[64];
	const uint8_t *msg = NULL;
	size_t n = 0, used, mlen, off, step;
	const char *want[] = { "one", "", "three" };

	(void)state;
	n += make_lpm(buf + n, 0, 3, (const uint8_t *)"one");
	n += make_lpm(buf + n, 0, 0, NULL);
	n += make_lpm(buf + n, 1, 5, (const uint8_t *)"three");
	for (step = 1; step <= n; step += n - 1) {
		size_t got = 0;

		grpc_lpm_reader_init(&r, 64);
		r.allow_compressed = 1;
		for (off = 0; off < n;) {
			size_t k = step < n - off ? step : n - off;

			assert_int_equal(grpc_lpm_reader_feed_some(&r, buf + off, k, &used), 0);
			assert_true(used <= k);
			off += used;
			if (!r.complete) {
				assert_int_equal(used, k);
				continue;
			}
			assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
			assert_int_equal(mlen, strlen(want[got]));
			assert_memory_equal(msg, want[got], mlen);
			assert_int_equal(r.compressed, got == 2);
			got++;
			grpc_lpm_reader_next(&r);
			assert_true(r.allow_compressed);
		}
		assert_int_equal(got, 3);
		assert_int_equal(r.hdr_have, 0);          /* ends between messages */
		grpc_lpm_reader_free(&r);
	}
	/* the unary feed refuses the second message */
	grpc_lpm_reader_init(&r, 64);
	r.allow_compressed = 1;
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), BS_ERR_INVALID);
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_whole(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[64];
	const uint8_t *msg = NULL;
	size_t n, mlen = 0;

	(void)state;
	n = make_lpm(buf, 0, 5, (const uint8_t *)"hello");
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), 0);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
	assert_int_equal(mlen, 5);
	assert_memory_equal(msg, "hello", 5);
	grpc_lpm_reader_free(&r);
	grpc_lpm_reader_free(&r);      /* idempotent */
}

static void
test_lpm_byte_by_byte(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[300], body[295];
	const uint8_t *msg = NULL;
	size_t n, i, mlen = 0;

	(void)state;
	for (i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7);
	n = make_lpm(buf, 0, sizeof(body), body);
	grpc_lpm_reader_init(&r, sizeof(body));     /* exactly at the cap */
	for (i = 0; i < n; i++) {
		assert_int_equal(grpc_lpm_reader_feed(&r, buf + i, 1), 0);
		if (i + 1 < n)
			assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), BS_ERR_TRUNCATED);
		/* the body is not allocated before the prefix is complete */
		if (i + 1 < GRPC_LPM_HEADER_LEN)
			assert_null(r.body);
	}
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
	assert_int_equal(mlen, sizeof(body));
	assert_memory_equal(msg, body, sizeof(body));
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_odd_chunks(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[1100], body[1000];
	const uint8_t *msg = NULL;
	size_t n, off = 0, step = 1, mlen = 0;

	(void)state;
	memset(body, 0xab, sizeof(body));
	n = make_lpm(buf, 0, sizeof(body), body);
	grpc_lpm_reader_init(&r, GRPC_DEFAULT_MAX_MESSAGE);
	while (off < n) {
		size_t k = step < n - off ? step : n - off;

		assert_int_equal(grpc_lpm_reader_feed(&r, buf + off, k), 0);
		off += k;
		step = step * 3 + 1;
	}
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
	assert_int_equal(mlen, sizeof(body));
	assert_memory_equal(msg, body, sizeof(body));
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_zero_length(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[8];
	const uint8_t *msg = NULL;
	size_t n, mlen = 99;

	(void)state;
	n = make_lpm(buf, 0, 0, NULL);
	grpc_lpm_reader_init(&r, 0);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), 0);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
	assert_non_null(msg);
	assert_int_equal(mlen, 0);
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_too_big_before_alloc(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t hdr[GRPC_LPM_HEADER_LEN];

	(void)state;
	/* 4 GiB - 1 announced: must fail from the prefix alone */
	grpc_lpm_write_header(hdr, 0xffffffffu);
	grpc_lpm_reader_init(&r, GRPC_DEFAULT_MAX_MESSAGE);
	assert_int_equal(grpc_lpm_reader_feed(&r, hdr, 4), 0);
	assert_int_equal(grpc_lpm_reader_feed(&r, hdr + 4, 1), BS_ERR_TOO_BIG);
	assert_null(r.body);
	grpc_lpm_reader_free(&r);

	/* one over the cap */
	grpc_lpm_write_header(hdr, 17);
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, hdr, sizeof(hdr)), BS_ERR_TOO_BIG);
	assert_null(r.body);
	grpc_lpm_reader_free(&r);

	/* the default cap itself is accepted, one more is not */
	grpc_lpm_write_header(hdr, GRPC_DEFAULT_MAX_MESSAGE + 1);
	grpc_lpm_reader_init(&r, GRPC_DEFAULT_MAX_MESSAGE);
	assert_int_equal(grpc_lpm_reader_feed(&r, hdr, sizeof(hdr)), BS_ERR_TOO_BIG);
	grpc_lpm_reader_free(&r);
	grpc_lpm_write_header(hdr, GRPC_DEFAULT_MAX_MESSAGE);
	grpc_lpm_reader_init(&r, GRPC_DEFAULT_MAX_MESSAGE);
	assert_int_equal(grpc_lpm_reader_feed(&r, hdr, sizeof(hdr)), 0);
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_flags(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[16];
	size_t n;
	unsigned f;

	(void)state;
	n = make_lpm(buf, 1, 3, (const uint8_t *)"abc");
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), BS_ERR_UNSUPPORTED);
	grpc_lpm_reader_free(&r);

	/* the flag is judged from its own byte, before the length arrives */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, 1), BS_ERR_UNSUPPORTED);
	grpc_lpm_reader_free(&r);

	for (f = 2; f <= 0xff; f++) {
		n = make_lpm(buf, (uint8_t)f, 3, (const uint8_t *)"abc");
		grpc_lpm_reader_init(&r, 16);
		assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), BS_ERR_INVALID);
		assert_null(r.body);
		grpc_lpm_reader_free(&r);
	}
}

static void
test_lpm_second_message(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[32];
	const uint8_t *msg = NULL;
	size_t n, mlen = 0;

	(void)state;
	n = make_lpm(buf, 0, 2, (const uint8_t *)"hi");
	n += make_lpm(buf + n, 0, 2, (const uint8_t *)"yo");
	/* both in one chunk */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n), BS_ERR_INVALID);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), BS_ERR_INVALID);
	grpc_lpm_reader_free(&r);
	/* second message in a later chunk, even a single byte of it */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, 7), 0);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf + 7, 1), BS_ERR_INVALID);
	assert_int_equal(r.extra, 1);
	grpc_lpm_reader_free(&r);
	/* an empty feed after completion is fine */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, 7), 0);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, 0), 0);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), 0);
	assert_int_equal(mlen, 2);
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_truncated(void **state)
{
	struct grpc_lpm_reader r;
	uint8_t buf[32];
	const uint8_t *msg = NULL;
	size_t n, mlen = 0;

	(void)state;
	/* nothing sent */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), BS_ERR_TRUNCATED);
	grpc_lpm_reader_free(&r);
	/* inside the prefix */
	n = make_lpm(buf, 0, 4, (const uint8_t *)"abcd");
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, 3), 0);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), BS_ERR_TRUNCATED);
	grpc_lpm_reader_free(&r);
	/* inside the body */
	grpc_lpm_reader_init(&r, 16);
	assert_int_equal(grpc_lpm_reader_feed(&r, buf, n - 1), 0);
	assert_int_equal(grpc_lpm_reader_finish(&r, &msg, &mlen), BS_ERR_TRUNCATED);
	assert_null(msg);
	assert_int_equal(mlen, 0);
	grpc_lpm_reader_free(&r);
}

static void
test_lpm_write_header(void **state)
{
	uint8_t h[GRPC_LPM_HEADER_LEN];
	static const uint8_t want[] = { 0x00, 0x12, 0x34, 0x56, 0x78 };

	(void)state;
	grpc_lpm_write_header(h, 0x12345678u);
	assert_memory_equal(h, want, sizeof(want));
}

/* ---- grpc-timeout ----------------------------------------------------- */

static int
timeout(const char *s, int64_t *us)
{
	return grpc_timeout_parse(s, strlen(s), us);
}

static void
test_timeout_valid(void **state)
{
	static const struct {
		const char *in;
		int64_t usec;
	} ok[] = {
		{ "0n", 0 }, { "1n", 1 }, { "999n", 1 }, { "1000n", 1 }, { "1001n", 2 },
		{ "50000000n", 50000 }, { "1u", 1 }, { "1000000u", 1000000 }, { "7m", 7000 },
		{ "1S", 1000000 }, { "2M", 120000000 }, { "1H", 3600000000LL },
		{ "99999999H", 99999999LL * 3600000000LL }, { "00000001S", 1000000 },
		{ "0H", 0 }, { "99999999n", 100000 },
	};
	size_t i;
	int64_t us;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		us = -1;
		assert_int_equal(timeout(ok[i].in, &us), 0);
		assert_true(us == ok[i].usec);
	}
	/* len bounds the parse: trailing bytes past len are ignored */
	us = -1;
	assert_int_equal(grpc_timeout_parse("5Sxyz", 2, &us), 0);
	assert_true(us == 5000000);
}

static void
test_timeout_invalid(void **state)
{
	static const char *bad[] = {
		"", "S", "1", "12", "123456789S", "1s", "1h", "1x", "-1S", "+1S", " 1S", "1S ",
		"1.5S", "1 S", "0x1S", "1SS", "1Sn", "abc",
	};
	size_t i;
	int64_t us = 42;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(timeout(bad[i], &us), BS_ERR_INVALID);
		assert_true(us == 42);      /* untouched on failure */
	}
	assert_int_equal(grpc_timeout_parse(NULL, 0, &us), BS_ERR_INVALID);
	/* an embedded NUL is not a digit */
	assert_int_equal(grpc_timeout_parse("1\0S", 3, &us), BS_ERR_INVALID);
}

/* ---- content-type ----------------------------------------------------- */

static void
test_content_type(void **state)
{
	static const char *good[] = {
		"application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8",
		"application/grpc+proto;foo=bar", "application/grpc+json",
	};
	static const char *bad[] = {
		"", "application/grp", "application/grpcx", "application/grpc+", "application/grpc-web",
		"text/plain", "application/json", "Application/grpc", " application/grpc",
		"application/grpc/proto", "application/grpc proto",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(grpc_content_type_ok(good[i], strlen(good[i])), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(grpc_content_type_ok(bad[i], strlen(bad[i])), 0);
	/* the length, not a NUL, bounds the value */
	assert_int_equal(grpc_content_type_ok("application/grpcx", 16), 1);
	assert_int_equal(grpc_content_type_ok("application/grpc", 15), 0);
	assert_int_equal(grpc_content_type_ok(NULL, 0), 0);
}

/* ---- grpc-message ----------------------------------------------------- */

static void
test_message_encode(void **state)
{
	char out[128];
	size_t n;

	(void)state;
	n = grpc_message_encode(out, sizeof(out), "key not found: a/b");
	assert_string_equal(out, "key not found: a/b");
	assert_int_equal(n, strlen(out));

	n = grpc_message_encode(out, sizeof(out), "100% sure\n\t\x7f\x01");
	assert_string_equal(out, "100%25 sure%0A%09%7F%01");
	assert_int_equal(n, strlen(out));

	/* UTF-8 bytes escaped one by one, upper-case hex; '&' (0x26) and '$' (0x24) kept */
	n = grpc_message_encode(out, sizeof(out), "caf\xc3\xa9 $&~ ");
	assert_string_equal(out, "caf%C3%A9 $&~ ");

	/* truncation never splits an escape */
	n = grpc_message_encode(out, 5, "ab%cd");
	assert_string_equal(out, "ab");
	assert_int_equal(n, 2);
	n = grpc_message_encode(out, 6, "ab%cd");
	assert_string_equal(out, "ab%25");
	assert_int_equal(n, 5);
	n = grpc_message_encode(out, 7, "ab%cd");
	assert_string_equal(out, "ab%25c");
	assert_int_equal(n, 6);
	n = grpc_message_encode(out, 1, "abc");
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
	assert_int_equal(grpc_message_encode(out, 0, "abc"), 0);
	n = grpc_message_encode(out, sizeof(out), "");
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
}

static void
test_status_name(void **state)
{
	(void)state;
	assert_string_equal(grpc_status_name(GRPC_STATUS_OK), "OK");
	assert_string_equal(grpc_status_name(GRPC_STATUS_NOT_FOUND), "NOT_FOUND");
	assert_string_equal(grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
	assert_string_equal(grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(grpc_status_name(GRPC_STATUS_UNIMPLEMENTED), "UNIMPLEMENTED");
	assert_string_equal(grpc_status_name(17), "UNKNOWN");
	assert_string_equal(grpc_status_name(-1), "UNKNOWN");
}

/* ---- log -------------------------------------------------------------- */

static void
test_json_escape(void **state)
{
	char out[128];
	size_t n;

	(void)state;
	n = bs_json_escape(out, sizeof(out), "plain");
	assert_string_equal(out, "plain");
	assert_int_equal(n, 5);
	bs_json_escape(out, sizeof(out), "a\"b\\c/d");
	assert_string_equal(out, "a\\\"b\\\\c/d");
	bs_json_escape(out, sizeof(out), "\n\r\t\b\f\x01\x1f\x7f");
	assert_string_equal(out, "\\n\\r\\t\\b\\f\\u0001\\u001f\x7f");
	/* valid UTF-8 kept (2, 3, 4 bytes) */
	bs_json_escape(out, sizeof(out), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91");
	assert_string_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91");
	/* invalid: lone continuation, 0xff, overlong, surrogate, truncated seq, > U+10FFFF */
	bs_json_escape(out, sizeof(out), "a\x80" "b\xff");
	assert_string_equal(out, "a\\ufffdb\\ufffd");
	bs_json_escape(out, sizeof(out), "\xc0\xaf");
	assert_string_equal(out, "\\ufffd\\ufffd");
	bs_json_escape(out, sizeof(out), "\xed\xa0\x80");
	assert_string_equal(out, "\\ufffd\\ufffd\\ufffd");
	bs_json_escape(out, sizeof(out), "x\xe2\x82");
	assert_string_equal(out, "x\\ufffd\\ufffd");
	bs_json_escape(out, sizeof(out), "\xf4\x90\x80\x80");
	assert_string_equal(out, "\\ufffd\\ufffd\\ufffd\\ufffd");
	/* truncation: NUL-terminated, whole escapes / sequences only */
	n = bs_json_escape(out, 4, "ab\"c");
	assert_string_equal(out, "ab");
	assert_int_equal(n, 2);
	n = bs_json_escape(out, 4, "a\xe2\x82\xac");
	assert_string_equal(out, "a");
	assert_int_equal(n, 1);
	n = bs_json_escape(out, 1, "abc");
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
	assert_int_equal(bs_json_escape(out, 0, "abc"), 0);
	bs_json_escape(out, sizeof(out), NULL);
	assert_string_equal(out, "");
}

/* Runs fn with stderr redirected to a temp file; returns its malloc'd content. */
static char *
capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/bs-test-log-XXXXXX";
	int fd, saved;
	char *buf;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	n = read(fd, buf, 65535);
	assert_true(n >= 0);
	close(fd);
	return buf;
}

static void
log_basic(void)
{
	bs_log_set_level(BS_LOG_INFO);
	bs_log(BS_LOG_INFO, "listening", "addr", "127.0.0.1:7443", "note", "q\"\n\xff", NULL);
	bs_log(BS_LOG_DEBUG, "dropped", NULL);
	bs_logf(BS_LOG_ERROR, "code %d: %s", 42, "bad\tthing");
	bs_log_set_level(BS_LOG_ERROR);
	bs_log(BS_LOG_WARN, "dropped too", NULL);
	bs_log_set_level(BS_LOG_DEBUG);
	bs_log(BS_LOG_DEBUG, "debug now", NULL);
	bs_log_set_level(BS_LOG_INFO);
	/* numeric fields holding integers are numbers; anything else stays a string */
	bs_log(BS_LOG_INFO, "rpc", "grpc_status", "7", "duration_us", "874", "version", "0.1.0",
	    "tree_size", "007", "count", "-3", "records", "1e3", "peer", "42", NULL);
}

/* Checks the "ts":"YYYY-MM-DDTHH:MM:SS.mmmZ" prefix of line. */
static void
check_ts(const char *line)
{
	const char *t = line + strlen("{\"ts\":\"");
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ\"";
	size_t i;

	assert_memory_equal(line, "{\"ts\":\"", 7);
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd')
			assert_true(t[i] >= '0' && t[i] <= '9');
		else
			assert_int_equal(t[i], shape[i]);
	}
}

static void
test_log_lines(void **state)
{
	char *out, *line, *save = NULL;
	const char *want[] = {
		",\"level\":\"info\",\"msg\":\"listening\",\"addr\":\"127.0.0.1:7443\","
		"\"note\":\"q\\\"\\n\\ufffd\"}",
		",\"level\":\"error\",\"msg\":\"code 42: bad\\tthing\"}",
		",\"level\":\"debug\",\"msg\":\"debug now\"}",
		",\"level\":\"info\",\"msg\":\"rpc\",\"grpc_status\":7,\"duration_us\":874,"
		"\"version\":\"0.1.0\",\"tree_size\":\"007\",\"count\":-3,\"records\":\"1e3\","
		"\"peer\":\"42\"}",
	};
	size_t nl = 0, i;

	(void)state;
	out = capture_stderr(log_basic);
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '\n')
			nl++;
	assert_int_equal(nl, 4);
	i = 0;
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *rest = line + 7 + 24 + 1;   /* after {"ts":"...Z" */

		assert_true(i < 4);
		check_ts(line);
		assert_string_equal(rest, want[i]);
		i++;
	}
	assert_int_equal(i, 4);
	free(out);
}

static void
log_huge(void)
{
	static char big[20000];

	memset(big, 'x', sizeof(big) - 1);
	big[100] = '"';
	bs_log(BS_LOG_WARN, "big field", "small", "kept", "huge", big, "after", "kept too", NULL);
	bs_log(BS_LOG_WARN, big, NULL);
}

static void
test_log_truncation(void **state)
{
	char *out, *l2;
	size_t len1;

	(void)state;
	out = capture_stderr(log_huge);
	l2 = strchr(out, '\n');
	assert_non_null(l2);
	len1 = (size_t)(l2 - out);
	l2++;
	/* the oversized field is dropped whole; the others stay; line marked */
	assert_non_null(strstr(out, "\"small\":\"kept\""));
	assert_non_null(strstr(out, "\"after\":\"kept too\""));
	assert_null(strstr(out, "\"huge\""));
	assert_true(len1 <= 8192);
	assert_memory_equal(out + len1 - 18, ",\"truncated\":true}", 18);
	/* an oversized message is cut but the line still closes properly */
	assert_non_null(strstr(l2, "\"msg\":\"xxx"));
	assert_true(strlen(l2) <= 8193);
	assert_memory_equal(l2 + strlen(l2) - 20, "\",\"truncated\":true}\n", 20);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lpm_whole),
		cmocka_unit_test(test_lpm_stream),
		cmocka_unit_test(test_lpm_byte_by_byte),
		cmocka_unit_test(test_lpm_odd_chunks),
		cmocka_unit_test(test_lpm_zero_length),
		cmocka_unit_test(test_lpm_too_big_before_alloc),
		cmocka_unit_test(test_lpm_flags),
		cmocka_unit_test(test_lpm_second_message),
		cmocka_unit_test(test_lpm_truncated),
		cmocka_unit_test(test_lpm_write_header),
		cmocka_unit_test(test_timeout_valid),
		cmocka_unit_test(test_timeout_invalid),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_message_encode),
		cmocka_unit_test(test_status_name),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_log_truncation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
