/*
 * p11uri.c - parser for the subset of PKCS#11 URIs (RFC 7512) that names a
 * token: "pkcs11:" followed by ';'-separated path attributes token,
 * manufacturer, serial, model and slot-id, with percent-encoded values.
 * "object", "id" and "type" are accepted and ignored; anything else, a
 * query ('?', where pin-value would live) or a fragment is rejected. Pure
 * string code, no I/O.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/hex.h"
#include "hsm/p11uri.h"

#define P11URI_MAX_LEN 1024
#define P11URI_SCHEME "pkcs11:"
#define P11URI_SCHEME_LEN (sizeof(P11URI_SCHEME) - 1)
#define P11URI_MAX_VALUE 64  /* decoded bytes; larger than any field we keep */

/*
 * Characters allowed unencoded in a path attribute value (RFC 7512
 * pk11-pchar: unreserved, ":[]@!$'()*+,=" and "&"). '%' is handled apart.
 */
static int
is_path_char(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return strchr("-._~:[]@!$'()*+,=&", c) != NULL && c != '\0';
}

/*
 * Percent-decodes src[0..len) into dst (capacity cap, NUL-terminated).
 * Rejects bad escapes, disallowed characters, decoded NULs and values that
 * do not fit. Returns the decoded length or -1.
 */
static int
decode_value(const char *src, size_t len, char *dst, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			uint8_t b;

			if (len - i < 3 || bs_hex_decode(src + i + 1, 2, &b, 1, 0) != 0)
				return -1;
			c = (char)b;
			if (c == '\0')
				return -1;
			i += 2;
		} else if (!is_path_char(c))
			return -1;
		if (n + 1 >= cap)
			return -1;
		dst[n++] = c;
	}
	dst[n] = '\0';
	return (int)n;
}

static int
parse_slot_id(const char *v, long *out)
{
	long n = 0;
	size_t i;

	if (v[0] == '\0')
		return -1;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9' || i >= 18)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

static int
name_is(const char *name, size_t name_len, const char *want)
{
	return strlen(want) == name_len && memcmp(name, want, name_len) == 0;
}

int
p11uri_parse(const char *uri, struct p11uri *out)
{
	struct p11uri u;
	const char *p, *end;
	char value[P11URI_MAX_VALUE + 1];
	unsigned seen = 0;
	size_t len;

	if (uri == NULL || out == NULL)
		return BS_ERR_INVALID;
	len = strnlen(uri, P11URI_MAX_LEN + 1);
	if (len > P11URI_MAX_LEN || len < P11URI_SCHEME_LEN)
		return BS_ERR_INVALID;
	if (strncasecmp(uri, P11URI_SCHEME, P11URI_SCHEME_LEN) != 0)
		return BS_ERR_INVALID;
	/* No query (pin-value, pin-source, module-path...) and no fragment. */
	if (memchr(uri, '?', len) != NULL || memchr(uri, '#', len) != NULL)
		return BS_ERR_INVALID;

	memset(&u, 0, sizeof(u));
	u.slot_id = -1;
	p = uri + P11URI_SCHEME_LEN;
	end = uri + len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *attr_end = semi != NULL ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(attr_end - p));
		size_t name_len, vlen;
		unsigned bit;
		int n;

		if (eq == NULL || eq == p)
			return BS_ERR_INVALID;
		name_len = (size_t)(eq - p);
		vlen = (size_t)(attr_end - eq - 1);
		if (vlen == 0)
			return BS_ERR_INVALID;
		if ((n = decode_value(eq + 1, vlen, value, sizeof(value))) < 0)
			return BS_ERR_INVALID;

		if (name_is(p, name_len, "token")) {
			bit = 1u << 0;
			if ((size_t)n >= sizeof(u.token))
				return BS_ERR_INVALID;
			memcpy(u.token, value, (size_t)n + 1);
		} else if (name_is(p, name_len, "manufacturer")) {
			bit = 1u << 1;
			if ((size_t)n >= sizeof(u.manufacturer))
				return BS_ERR_INVALID;
			memcpy(u.manufacturer, value, (size_t)n + 1);
		} else if (name_is(p, name_len, "serial")) {
			bit = 1u << 2;
			if ((size_t)n >= sizeof(u.serial))
				return BS_ERR_INVALID;
			memcpy(u.serial, value, (size_t)n + 1);
		} else if (name_is(p, name_len, "model")) {
			bit = 1u << 3;
			if ((size_t)n >= sizeof(u.model))
				return BS_ERR_INVALID;
			memcpy(u.model, value, (size_t)n + 1);
		} else if (name_is(p, name_len, "slot-id")) {
			bit = 1u << 4;
			if (parse_slot_id(value, &u.slot_id) != 0)
				return BS_ERR_INVALID;
		} else if (name_is(p, name_len, "object")) {
			bit = 1u << 5;
		} else if (name_is(p, name_len, "id")) {
			bit = 1u << 6;
		} else if (name_is(p, name_len, "type")) {
			bit = 1u << 7;
		} else
			return BS_ERR_INVALID;
		if (seen & bit)
			return BS_ERR_INVALID;  /* repeated attribute */
		seen |= bit;

		if (semi == NULL)
			break;
		p = semi + 1;
		if (p == end)
			return BS_ERR_INVALID;  /* trailing ';' */
	}
	*out = u;
	return 0;
}

int
p11uri_field_matches(const char *want, const unsigned char *fld, size_t fld_len)
{
	size_t wlen, i;

	if (want == NULL || want[0] == '\0')
		return 1;
	if (fld == NULL)
		return 0;
	wlen = strnlen(want, fld_len + 1);
	if (wlen > fld_len || memcmp(fld, want, wlen) != 0)
		return 0;
	/* The rest is padding: blanks per PKCS#11, NULs from some tools. */
	for (i = wlen; i < fld_len; i++)
		if (fld[i] != ' ' && fld[i] != '\0')
			return 0;
	return 1;
}
