/*
 * totp.c - TOTP (RFC 6238) with HMAC-SHA1, 6 digits and 30-second steps,
 * the Key-Uri-Format's otpauth:// enrolment URI, and a QR code of it for a
 * terminal (see totp.h for the contracts).
 *
 * A TOTP code is the HOTP value (RFC 4226 section 5.3) with the time step
 * floor(now / 30) as the counter, so every code here comes from liboath's
 * oath_hotp_generate with the step as the moving factor. liboath's own
 * validators compare with strcmp and stop at the first match; totp_check
 * instead computes the code of every step of the window and compares each
 * with CRYPTO_memcmp, folding the result in without a branch on the match.
 * liboath computes the HMAC with its built-in SHA-1 and does not wipe its
 * stack; what is ours (candidate codes, base32 text, module matrix) is
 * wiped on every path out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <qrencode.h>

#include "common/utf8.h"
#include "formats/totp.h"

#define URI_PREFIX "otpauth://totp/"
#define URI_SECRET "?secret="
#define URI_ISSUER "&issuer="
#define URI_SUFFIX "&algorithm=SHA1&digits=6&period=30"
#define QR_QUIET 2                    /* light modules around the symbol on every side */
#define QR_UPPER "\xe2\x96\x80"       /* U+2580 UPPER HALF BLOCK */
#define QR_LOWER "\xe2\x96\x84"       /* U+2584 LOWER HALF BLOCK */
#define QR_FULL "\xe2\x96\x88"        /* U+2588 FULL BLOCK */
#define QR_BLOCK_LEN 3                /* bytes of each block in UTF-8 */

uint64_t
totp_step(int64_t now)
{
	if (now < 0)
		return 0;
	return (uint64_t)now / TOTP_PERIOD;
}

static bool
seed_ok(const uint8_t *seed, size_t seedlen)
{
	return seed != NULL && seedlen >= TOTP_SEED_MIN && seedlen <= TOTP_SEED_MAX;
}

/*
 * The code of one step into out (TOTP_DIGITS + 1 bytes). oath_init only
 * initialises liboath's crypto backend (the built-in one on Debian: a
 * no-op), may be called any number of times and is cheap, so it is called
 * here rather than from a global init; oath_done is never needed.
 */
static int
hotp(const uint8_t *seed, size_t seedlen, uint64_t step, char *out)
{
	if (oath_init() != OATH_OK)
		return BS_ERR_CRYPTO;
	if (oath_hotp_generate((const char *)seed, seedlen, step, TOTP_DIGITS, false,
	    OATH_HOTP_DYNAMIC_TRUNCATION, out) != OATH_OK)
		return BS_ERR_CRYPTO;
	return 0;
}

int
totp_code(const uint8_t *seed, size_t seedlen, uint64_t step, char out[TOTP_DIGITS + 1])
{
	char buf[TOTP_DIGITS + 1];
	int rc;

	if (!seed_ok(seed, seedlen) || out == NULL)
		return BS_ERR_INVALID;
	if ((rc = hotp(seed, seedlen, step, buf)) != 0)
		goto out;
	memcpy(out, buf, sizeof(buf));
	out[TOTP_DIGITS] = '\0';
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* 1 if code is exactly TOTP_DIGITS ASCII digits; reads at most TOTP_DIGITS + 1 bytes. */
static bool
code_ok(const char *code)
{
	size_t i;

	if (strnlen(code, TOTP_DIGITS + 1) != TOTP_DIGITS)
		return false;
	for (i = 0; i < TOTP_DIGITS; i++)
		if (code[i] < '0' || code[i] > '9')
			return false;
	return true;
}

int
totp_check(const uint8_t *seed, size_t seedlen, const char *code, int64_t now, int window,
    uint64_t last_step, uint64_t *step_out)
{
	char cand[TOTP_DIGITS + 1];
	uint64_t now_step, first, last, step, best = 0, found = 0;
	int rc;

	if (!seed_ok(seed, seedlen) || code == NULL || step_out == NULL || now < 0 ||
	    window < 0 || window > TOTP_WINDOW_MAX)
		return BS_ERR_INVALID;
	if (!code_ok(code))
		return BS_ERR_INVALID;
	now_step = totp_step(now);
	first = now_step >= (uint64_t)window ? now_step - (uint64_t)window : 0;
	last = now_step + (uint64_t)window;     /* now / 30 + 2 cannot wrap */

	for (step = first; step <= last; step++) {
		uint64_t eq, mask;

		if ((rc = hotp(seed, seedlen, step, cand)) != 0)
			goto out;
		/* eq is 1 on a match, 0 otherwise; steps ascend, so the last match is the highest */
		eq = (uint64_t)(CRYPTO_memcmp(cand, code, TOTP_DIGITS) == 0);
		mask = (uint64_t)0 - eq;
		best = (best & ~mask) | (step & mask);
		found |= eq;
	}
	if (!found)
		rc = BS_ERR_SIG_INVALID;
	else if (best <= last_step)
		rc = BS_ERR_PRECONDITION;
	else {
		*step_out = best;
		rc = 0;
	}
out:
	OPENSSL_cleanse(cand, sizeof(cand));
	return rc;
}

static bool
unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * Checks a label part (issuer or account) and gives its percent-encoded
 * length in *enc_len. 0 or BS_ERR_INVALID.
 */
static int
label_check(const char *s, size_t *len, size_t *enc_len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, n, e = 0;

	if (s == NULL)
		return BS_ERR_INVALID;
	n = strnlen(s, TOTP_LABEL_MAX + 1);
	if (n == 0 || n > TOTP_LABEL_MAX)
		return BS_ERR_INVALID;
	while (i < n) {
		uint32_t cp = 0;
		size_t k = bs_utf8_decode(p + i, n - i, &cp);

		if (k == 0 || cp < 0x20 || cp == 0x7f || cp == ':')
			return BS_ERR_INVALID;
		e += (k == 1 && unreserved(p[i])) ? 1 : 3 * k;
		i += k;
	}
	*len = n;
	*enc_len = e;
	return 0;
}

static char *
put(char *w, const char *s, size_t n)
{
	memcpy(w, s, n);
	return w + n;
}

static char *
put_pct(char *w, const char *s, size_t n)
{
	static const char hexdig[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (unreserved(c)) {
			*w++ = (char)c;
		} else {
			*w++ = '%';
			*w++ = hexdig[c >> 4];
			*w++ = hexdig[c & 0x0f];
		}
	}
	return w;
}

int
totp_uri(const char *issuer, const char *account, const uint8_t *seed, size_t seedlen,
    char **out)
{
	char *b32 = NULL, *uri = NULL, *w;
	size_t ilen = 0, ienc = 0, alen = 0, aenc = 0, b32len = 0, b32raw = 0, total;
	int rc;

	if (!seed_ok(seed, seedlen) || out == NULL)
		return BS_ERR_INVALID;
	if ((rc = label_check(issuer, &ilen, &ienc)) != 0 ||
	    (rc = label_check(account, &alen, &aenc)) != 0)
		return rc;

	/* base32 of at most TOTP_SEED_MAX bytes cannot overflow: only malloc can fail */
	if (oath_base32_encode((const char *)seed, seedlen, &b32, &b32raw) != OATH_OK ||
	    b32 == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	b32len = b32raw;
	while (b32len > 0 && b32[b32len - 1] == '=')   /* liboath pads to a multiple of 8 */
		b32len--;

	total = sizeof(URI_PREFIX) - 1 + ienc + 1 + aenc + sizeof(URI_SECRET) - 1 + b32len +
	    sizeof(URI_ISSUER) - 1 + ienc + sizeof(URI_SUFFIX) - 1;
	if ((uri = malloc(total + 1)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	w = put(uri, URI_PREFIX, sizeof(URI_PREFIX) - 1);
	w = put_pct(w, issuer, ilen);
	*w++ = ':';
	w = put_pct(w, account, alen);
	w = put(w, URI_SECRET, sizeof(URI_SECRET) - 1);
	w = put(w, b32, b32len);
	w = put(w, URI_ISSUER, sizeof(URI_ISSUER) - 1);
	w = put_pct(w, issuer, ilen);
	w = put(w, URI_SUFFIX, sizeof(URI_SUFFIX) - 1);
	*w = '\0';
	*out = uri;
	uri = NULL;
	rc = 0;
out:
	if (b32 != NULL) {
		OPENSSL_cleanse(b32, b32raw);
		free(b32);
	}
	return rc;
}

/* 1 if the module at (x, y) of the quiet-zoned drawing is dark. */
static bool
dark(const QRcode *qr, int x, int y)
{
	x -= QR_QUIET;
	y -= QR_QUIET;
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return (qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1) != 0;
}

int
totp_qr_text(const char *text, char **out)
{
	QRcode *qr = NULL;
	char *buf = NULL, *w;
	size_t n, side, lines, cap;
	int rc, x, y;

	if (text == NULL || out == NULL)
		return BS_ERR_INVALID;
	n = strnlen(text, TOTP_QR_TEXT_MAX + 1);
	if (n == 0 || n > TOTP_QR_TEXT_MAX)
		return BS_ERR_INVALID;

	errno = 0;
	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1)) == NULL) {
		/* ERANGE: too long for any version; EINVAL: refused input */
		rc = errno == ENOMEM ? BS_ERR_NOMEM : BS_ERR_INVALID;
		goto out;
	}
	if (qr->width <= 0 || qr->data == NULL) {
		rc = BS_ERR_INVALID;
		goto out;
	}
	side = (size_t)qr->width + 2 * QR_QUIET;    /* at most 177 + 4 */
	lines = (side + 1) / 2;
	cap = lines * (side * QR_BLOCK_LEN + 1) + 1;
	if ((buf = malloc(cap)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	w = buf;
	for (y = 0; y < (int)side; y += 2) {
		for (x = 0; x < (int)side; x++) {
			bool top = dark(qr, x, y), bottom = dark(qr, x, y + 1);

			if (top && bottom)
				w = put(w, QR_FULL, QR_BLOCK_LEN);
			else if (top)
				w = put(w, QR_UPPER, QR_BLOCK_LEN);
			else if (bottom)
				w = put(w, QR_LOWER, QR_BLOCK_LEN);
			else
				*w++ = ' ';
		}
		*w++ = '\n';
	}
	*w = '\0';
	*out = buf;
	rc = 0;
out:
	if (qr != NULL) {
		if (qr->data != NULL && qr->width > 0)
			OPENSSL_cleanse(qr->data, (size_t)qr->width * (size_t)qr->width);
		QRcode_free(qr);
	}
	return rc;
}
