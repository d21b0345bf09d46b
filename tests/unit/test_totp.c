/*
 * test_totp.c - unit tests for src/formats/totp.c: the SHA-1 vectors of
 * RFC 6238 Appendix B (the last 6 of their 8 digits) through totp_code and
 * totp_check, the HOTP values of RFC 4226 Appendix D through totp_code;
 * the acceptance window, replay refusal against the last accepted step, the
 * highest step winning when a code matches two steps (two collisions found
 * offline for the RFC seed), malformed codes and arguments; the
 * Key-Uri-Format URI (its own example, percent-encoding, unpadded base32,
 * refused labels); and the terminal QR drawing decoded back into modules
 * and compared with libqrencode's matrix.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <qrencode.h>

#include "formats/totp.h"

/* RFC 6238 Appendix B / RFC 4226 Appendix D: the ASCII of "12345678901234567890" */
static const uint8_t rfc_seed[] = "12345678901234567890";
#define RFC_SEED_LEN 20

static void
test_rfc6238_vectors(void **state)
{
	static const struct {
		int64_t t;
		const char *code8;
	} v[] = {
		{ 59, "94287082" },
		{ 1111111109, "07081804" },
		{ 1111111111, "14050471" },
		{ 1234567890, "89005924" },
		{ 2000000000, "69279037" },
		{ 20000000000LL, "65353130" },
	};
	char code[TOTP_DIGITS + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *want = v[i].code8 + 2;      /* the last 6 digits */
		uint64_t step = totp_step(v[i].t), got = 0;

		assert_int_equal(step, (uint64_t)v[i].t / 30);
		assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, step, code), 0);
		assert_string_equal(code, want);
		assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, want, v[i].t, 0, 0, &got), 0);
		assert_int_equal(got, step);
		assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, want, v[i].t, 1, 0, &got), 0);
		assert_int_equal(got, step);
	}
	assert_int_equal(totp_step(0), 0);
	assert_int_equal(totp_step(29), 0);
	assert_int_equal(totp_step(30), 1);
	assert_int_equal(totp_step(-1), 0);
}

static void
test_rfc4226_hotp(void **state)
{
	static const char *const want[10] = {
		"755224", "287082", "359152", "969429", "338314",
		"254676", "287922", "162583", "399871", "520489",
	};
	char code[TOTP_DIGITS + 1];
	uint64_t c;

	(void)state;
	for (c = 0; c < 10; c++) {
		memset(code, 'x', sizeof(code));
		assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, c, code), 0);
		assert_string_equal(code, want[c]);
	}
}

static void
test_window(void **state)
{
	const int64_t now = 1111111111;
	uint64_t s = totp_step(now), got;
	char c[5][TOTP_DIGITS + 1];    /* steps s-2 .. s+2 */
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, s - 2 + (uint64_t)i, c[i]), 0);

	/* window 0: only the current step */
	got = 0;
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[2], now, 0, 0, &got), 0);
	assert_int_equal(got, s);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[1], now, 0, 0, &got),
	    BS_ERR_SIG_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[3], now, 0, 0, &got),
	    BS_ERR_SIG_INVALID);
	/* window 1: +-1 accepted, +-2 refused */
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[1], now, 1, 0, &got), 0);
	assert_int_equal(got, s - 1);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[3], now, 1, 0, &got), 0);
	assert_int_equal(got, s + 1);
	got = 7;
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[0], now, 1, 0, &got),
	    BS_ERR_SIG_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[4], now, 1, 0, &got),
	    BS_ERR_SIG_INVALID);
	assert_int_equal(got, 7);               /* untouched on failure */
	/* window 2: +-2 accepted */
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[0], now, 2, 0, &got), 0);
	assert_int_equal(got, s - 2);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, c[4], now, 2, 0, &got), 0);
	assert_int_equal(got, s + 2);
	/* a wrong code */
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "000000", now, 2, 0, &got),
	    BS_ERR_SIG_INVALID);
	/* near the epoch the window does not go below step 0 */
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "287082", 0, 2, 0, &got), 0);
	assert_int_equal(got, 1);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "755224", 0, 2, 0, &got),
	    BS_ERR_PRECONDITION);                 /* step 0 is never newer than "none yet" */
}

static void
test_replay(void **state)
{
	const int64_t now = 1234567890;
	uint64_t s = totp_step(now), got = 0;
	char cur[TOTP_DIGITS + 1], next[TOTP_DIGITS + 1];

	(void)state;
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, s, cur), 0);
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, s + 1, next), 0);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, cur, now, 1, s - 1, &got), 0);
	assert_int_equal(got, s);
	got = 0;
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, cur, now, 1, s, &got),
	    BS_ERR_PRECONDITION);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, cur, now, 1, s + 1, &got),
	    BS_ERR_PRECONDITION);
	assert_int_equal(got, 0);
	/* after s was used, the next step's code still works, then not again */
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, next, now, 1, s, &got), 0);
	assert_int_equal(got, s + 1);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, next, now, 1, s + 1, &got),
	    BS_ERR_PRECONDITION);
}

/*
 * Codes that match two steps of a window (found by search with the RFC
 * seed): 186519 at steps 37079356 and 37079357, 137227 at 37353814 and
 * 37353816. The highest step wins; a replay of the lower one does not hide
 * the higher.
 */
static void
test_highest_match(void **state)
{
	char a[TOTP_DIGITS + 1], b[TOTP_DIGITS + 1];
	uint64_t got = 0;

	(void)state;
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, 37079356, a), 0);
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, 37079357, b), 0);
	assert_string_equal(a, "186519");
	assert_string_equal(b, "186519");
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "186519", 37079356LL * 30, 1, 0, &got),
	    0);
	assert_int_equal(got, 37079357);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "186519", 37079357LL * 30, 1, 0, &got),
	    0);
	assert_int_equal(got, 37079357);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "186519", 37079356LL * 30, 1, 37079356,
	    &got), 0);
	assert_int_equal(got, 37079357);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "186519", 37079356LL * 30, 1, 37079357,
	    &got), BS_ERR_PRECONDITION);

	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, 37353814, a), 0);
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, 37353816, b), 0);
	assert_string_equal(a, "137227");
	assert_string_equal(b, "137227");
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "137227", 37353815LL * 30 + 29, 1, 0,
	    &got), 0);
	assert_int_equal(got, 37353816);
}

static void
test_bad_input(void **state)
{
	char hundred[101], code[TOTP_DIGITS + 1];
	uint8_t big[TOTP_SEED_MAX + 1];
	const int64_t now = 1111111111;
	static const char *const bad[] = {
		"12345", "1234567", "abcdef", "12345a", "", " 12345", "12345 ", "+12345",
		"-12345", "12345\n", "\xef\xbc\x91\xef\xbc\x92", "\xff\xff\xff\xff\xff\xff",
	};
	uint64_t got = 5;
	size_t i;

	(void)state;
	memset(hundred, '1', 100);
	hundred[100] = '\0';
	memset(big, 0x42, sizeof(big));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, bad[i], now, 1, 0, &got),
		    BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, hundred, now, 1, 0, &got),
	    BS_ERR_INVALID);
	assert_int_equal(got, 5);

	/* arguments */
	assert_int_equal(totp_check(NULL, RFC_SEED_LEN, "123456", now, 1, 0, &got), BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, NULL, now, 1, 0, &got), BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "123456", now, 1, 0, NULL),
	    BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "123456", -1, 1, 0, &got),
	    BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "123456", now, -1, 0, &got),
	    BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, RFC_SEED_LEN, "123456", now, TOTP_WINDOW_MAX + 1, 0,
	    &got), BS_ERR_INVALID);
	assert_int_equal(totp_check(rfc_seed, TOTP_SEED_MIN - 1, "123456", now, 1, 0, &got),
	    BS_ERR_INVALID);
	assert_int_equal(totp_check(big, TOTP_SEED_MAX + 1, "123456", now, 1, 0, &got),
	    BS_ERR_INVALID);
	assert_int_equal(got, 5);
	assert_int_equal(totp_code(NULL, RFC_SEED_LEN, 0, code), BS_ERR_INVALID);
	assert_int_equal(totp_code(rfc_seed, RFC_SEED_LEN, 0, NULL), BS_ERR_INVALID);
	assert_int_equal(totp_code(rfc_seed, TOTP_SEED_MIN - 1, 0, code), BS_ERR_INVALID);
	assert_int_equal(totp_code(big, TOTP_SEED_MAX + 1, 0, code), BS_ERR_INVALID);
	/* the range's ends work */
	assert_int_equal(totp_code(big, TOTP_SEED_MAX, 0, code), 0);
	assert_int_equal(totp_code(rfc_seed, TOTP_SEED_MIN, 0, code), 0);
}

static void
uri_is(const char *issuer, const char *account, const uint8_t *seed, size_t seedlen,
    const char *want)
{
	char *uri = NULL;

	assert_int_equal(totp_uri(issuer, account, seed, seedlen, &uri), 0);
	assert_non_null(uri);
	assert_string_equal(uri, want);
	OPENSSL_cleanse(uri, strlen(uri));
	free(uri);
}

static void
uri_refused(const char *issuer, const char *account)
{
	char *uri = (char *)"untouched";

	assert_int_equal(totp_uri(issuer, account, rfc_seed, RFC_SEED_LEN, &uri), BS_ERR_INVALID);
	assert_string_equal(uri, "untouched");
}

static void
test_uri(void **state)
{
	static const uint8_t hello[] = "Hello!\xde\xad\xbe\xef";
	static const uint8_t hello11[] = "Hello!\xde\xad\xbe\xef!";
	char label[TOTP_LABEL_MAX + 2];
	char *uri = NULL;

	(void)state;
	/* the Key-Uri-Format's example: '@' is percent-encoded */
	uri_is("Example", "alice@google.com", hello, 10,
	    "otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
	    "&algorithm=SHA1&digits=6&period=30");
	/* a space is %20 in the label and the issuer parameter */
	uri_is("ACME Co", "john.doe@email.com", hello, 10,
	    "otpauth://totp/ACME%20Co:john.doe%40email.com?secret=JBSWY3DPEHPK3PXP"
	    "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30");
	/* 11 bytes: liboath gives "JBSWY3DPEHPK3PXPEE======", the padding goes */
	uri_is("a", "b", hello11, 11,
	    "otpauth://totp/a:b?secret=JBSWY3DPEHPK3PXPEE&issuer=a&algorithm=SHA1&digits=6"
	    "&period=30");
	uri_is("boltseal", "ops", rfc_seed, RFC_SEED_LEN,
	    "otpauth://totp/boltseal:ops?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=boltseal"
	    "&algorithm=SHA1&digits=6&period=30");
	/* unreserved kept, reserved and UTF-8 encoded byte by byte */
	uri_is("A-z.0_9~", "jos\xc3\xa9/&?=#%+", hello, 10,
	    "otpauth://totp/A-z.0_9~:jos%C3%A9%2F%26%3F%3D%23%25%2B?secret=JBSWY3DPEHPK3PXP"
	    "&issuer=A-z.0_9~&algorithm=SHA1&digits=6&period=30");

	/* refused labels */
	uri_refused("Ex:ample", "alice");
	uri_refused("Example", "alice:bob");
	uri_refused("", "alice");
	uri_refused("Example", "");
	uri_refused(NULL, "alice");
	uri_refused("Example", NULL);
	uri_refused("Exa\nmple", "alice");
	uri_refused("Example", "al\x7f" "ice");
	uri_refused("Example", "al\xff" "ice");         /* not UTF-8 */
	uri_refused("Example", "al\xc3");               /* truncated sequence */
	uri_refused("Example", "\xc0\xba");             /* overlong ':' */
	memset(label, 'x', sizeof(label));
	label[TOTP_LABEL_MAX] = '\0';
	assert_int_equal(totp_uri(label, "a", rfc_seed, RFC_SEED_LEN, &uri), 0);
	OPENSSL_cleanse(uri, strlen(uri));
	free(uri);
	label[TOTP_LABEL_MAX] = 'x';
	label[TOTP_LABEL_MAX + 1] = '\0';
	uri_refused(label, "a");
	uri_refused("a", label);
	/* seeds and out */
	assert_int_equal(totp_uri("a", "b", NULL, 10, &uri), BS_ERR_INVALID);
	assert_int_equal(totp_uri("a", "b", hello, TOTP_SEED_MIN - 1, &uri), BS_ERR_INVALID);
	assert_int_equal(totp_uri("a", "b", hello, 10, NULL), BS_ERR_INVALID);
}

/* Reads one UTF-8 character of the drawing: its top and bottom module. */
static size_t
half_block(const char *p, int *top, int *bottom)
{
	if (p[0] == ' ') {
		*top = *bottom = 0;
		return 1;
	}
	if (strncmp(p, "\xe2\x96\x88", 3) == 0) {
		*top = *bottom = 1;
		return 3;
	}
	if (strncmp(p, "\xe2\x96\x80", 3) == 0) {
		*top = 1;
		*bottom = 0;
		return 3;
	}
	if (strncmp(p, "\xe2\x96\x84", 3) == 0) {
		*top = 0;
		*bottom = 1;
		return 3;
	}
	fail_msg("unexpected byte 0x%02x in the drawing", (unsigned char)p[0]);
	return 0;
}

/* Draws text, decodes the drawing and compares it with libqrencode's matrix plus the quiet zone. */
static void
qr_round_trip(const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	char *out = NULL;
	const char *p;
	int side, lines, x, y, line;
	int *m;

	assert_non_null(qr);
	side = qr->width + 4;
	lines = (side + 1) / 2;
	assert_int_equal(totp_qr_text(text, &out), 0);
	assert_non_null(out);
	m = calloc((size_t)side * (size_t)(lines * 2), sizeof(*m));
	assert_non_null(m);

	p = out;
	for (line = 0; line < lines; line++) {
		for (x = 0; x < side; x++) {
			int top = 0, bottom = 0;

			assert_true(*p != '\0' && *p != '\n');
			p += half_block(p, &top, &bottom);
			m[(2 * line) * side + x] = top;
			m[(2 * line + 1) * side + x] = bottom;
		}
		assert_int_equal(*p, '\n');             /* exactly side characters */
		p++;
	}
	assert_int_equal(*p, '\0');                     /* exactly lines lines */

	for (y = 0; y < 2 * lines; y++)
		for (x = 0; x < side; x++) {
			int want = 0, qx = x - 2, qy = y - 2;

			if (qx >= 0 && qy >= 0 && qx < qr->width && qy < qr->width)
				want = qr->data[qy * qr->width + qx] & 1;
			assert_int_equal(m[y * side + x], want);
		}
	free(m);
	OPENSSL_cleanse(out, strlen(out));
	free(out);
	QRcode_free(qr);
}

static void
test_qr(void **state)
{
	char *out = (char *)"untouched", *big;

	(void)state;
	qr_round_trip("hello");
	qr_round_trip("otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP"
	    "&issuer=Example&algorithm=SHA1&digits=6&period=30");
	qr_round_trip("Mixed Case 123 \xc3\xa9");

	assert_int_equal(totp_qr_text(NULL, &out), BS_ERR_INVALID);
	assert_int_equal(totp_qr_text("", &out), BS_ERR_INVALID);
	assert_int_equal(totp_qr_text("x", NULL), BS_ERR_INVALID);
	/* too long for any QR symbol at level M (2331 bytes in 8-bit mode), and over the cap */
	big = malloc(TOTP_QR_TEXT_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', 3000);
	big[3000] = '\0';
	assert_int_equal(totp_qr_text(big, &out), BS_ERR_INVALID);
	memset(big, 'a', TOTP_QR_TEXT_MAX + 1);
	big[TOTP_QR_TEXT_MAX + 1] = '\0';
	assert_int_equal(totp_qr_text(big, &out), BS_ERR_INVALID);
	assert_string_equal(out, "untouched");
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_rfc4226_hotp),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_highest_match),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_qr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
