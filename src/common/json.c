/*
 * json.c - JSON string escaping and the compact JSON writer (see json.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"
#include "common/json.h"
#include "common/utf8.h"

#define ESC_MAX 8               /* longest escape (\u00XX, \ufffd) and bs_hex_encode's NUL */

/*
 * The JSON form of the character at p (avail > 0 bytes there): an escape
 * written to esc (its length returned, *used = 1 input byte), or 0 when the
 * *used bytes at p are a valid UTF-8 sequence that stands for itself.
 */
static size_t
escape_one(const unsigned char *p, size_t avail, char esc[ESC_MAX], size_t *used)
{
	size_t n;

	*used = 1;
	if (*p == '"' || *p == '\\') {
		esc[0] = '\\';
		esc[1] = (char)*p;
		return 2;
	}
	if (*p < 0x20) {
		esc[0] = '\\';
		switch (*p) {
		case '\b': esc[1] = 'b'; return 2;
		case '\f': esc[1] = 'f'; return 2;
		case '\n': esc[1] = 'n'; return 2;
		case '\r': esc[1] = 'r'; return 2;
		case '\t': esc[1] = 't'; return 2;
		default:
			memcpy(esc, "\\u00", 4);
			bs_hex_encode(p, 1, esc + 4);
			return 6;
		}
	}
	n = bs_utf8_decode(p, avail, NULL);
	if (n == 0) {
		memcpy(esc, "\\ufffd", 6);
		return 6;
	}
	*used = n;
	return 0;
}

size_t
bs_json_escape(char *out, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0, avail, n, used;
	char esc[ESC_MAX];

	if (cap == 0)
		return 0;
	avail = s != NULL ? strlen(s) : 0;
	while (avail > 0) {
		n = escape_one(p, avail, esc, &used);
		/* whole escapes and sequences only, and room for the NUL */
		if (cap - w < (n > 0 ? n : used) + 1)
			break;
		memcpy(out + w, n > 0 ? esc : (const char *)p, n > 0 ? n : used);
		w += n > 0 ? n : used;
		p += used;
		avail -= used;
	}
	out[w] = '\0';
	return w;
}

size_t
bs_json_escaped_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0, avail, n, used;
	char esc[ESC_MAX];

	avail = s != NULL ? strlen(s) : 0;
	while (avail > 0) {
		n = escape_one(p, avail, esc, &used);
		len += n > 0 ? n : used;
		p += used;
		avail -= used;
	}
	return len;
}

/* Appends s escaped, copying runs that need no escape in one put. */
static void
put_escaped(struct bytebuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;
	size_t avail = strlen(s), n, used;
	char esc[ESC_MAX];

	while (avail > 0) {
		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			p++;   /* plain ASCII, most of what the audit writer escapes */
			avail--;
			continue;
		}
		n = escape_one(p, avail, esc, &used);
		if (n > 0) {
			bytebuf_put(b, run, (size_t)(p - run));
			bytebuf_put(b, esc, n);
			run = p + used;
		}
		p += used;
		avail -= used;
	}
	bytebuf_put(b, run, (size_t)(p - run));
}

void
bs_json_init(struct bs_json *j, struct bytebuf *b)
{
	j->b = b;
	j->depth = 0;
	j->is_array = 0;
	j->more = 0;
	j->err = 0;
}

/*
 * Writes what comes before a value: the separator and "key":. 0, or -1
 * after a misuse or an earlier error (nothing is written then).
 */
static int
member(struct bs_json *j, const char *key)
{
	uint32_t bit;
	int in_object;

	if (j->err != 0 || bytebuf_error(j->b) != 0)
		return -1;
	if (j->depth == 0) {
		if (key != NULL)
			goto misuse;
		return 0;
	}
	bit = UINT32_C(1) << (j->depth - 1);
	in_object = (j->is_array & bit) == 0;
	if (in_object != (key != NULL))
		goto misuse;
	if ((j->more & bit) != 0)
		bytebuf_put(j->b, ",", 1);
	j->more |= bit;
	if (key != NULL) {
		bytebuf_put(j->b, "\"", 1);
		put_escaped(j->b, key);
		bytebuf_put(j->b, "\":", 2);
	}
	return 0;
misuse:
	j->err = BS_ERR_INVALID;
	return -1;
}

static void
begin(struct bs_json *j, const char *key, int array)
{
	uint32_t bit;

	if (j->depth >= BS_JSON_DEPTH_MAX) {
		j->err = BS_ERR_INVALID;
		return;
	}
	if (member(j, key) != 0)
		return;
	bit = UINT32_C(1) << j->depth;
	if (array)
		j->is_array |= bit;
	else
		j->is_array &= ~bit;
	j->more &= ~bit;
	j->depth++;
	bytebuf_put(j->b, array ? "[" : "{", 1);
}

static void
end(struct bs_json *j, int array)
{
	uint32_t bit;

	if (j->err != 0 || bytebuf_error(j->b) != 0)
		return;
	if (j->depth == 0)
		goto misuse;
	bit = UINT32_C(1) << (j->depth - 1);
	if (((j->is_array & bit) != 0) != (array != 0))
		goto misuse;
	j->depth--;
	bytebuf_put(j->b, array ? "]" : "}", 1);
	return;
misuse:
	j->err = BS_ERR_INVALID;
}

void
bs_json_begin_object(struct bs_json *j, const char *key)
{
	begin(j, key, 0);
}

void
bs_json_end_object(struct bs_json *j)
{
	end(j, 0);
}

void
bs_json_begin_array(struct bs_json *j, const char *key)
{
	begin(j, key, 1);
}

void
bs_json_end_array(struct bs_json *j)
{
	end(j, 1);
}

void
bs_json_put_string(struct bs_json *j, const char *key, const char *s)
{
	if (member(j, key) != 0)
		return;
	if (s == NULL) {
		bytebuf_put(j->b, "null", 4);
		return;
	}
	bytebuf_put(j->b, "\"", 1);
	put_escaped(j->b, s);
	bytebuf_put(j->b, "\"", 1);
}

void
bs_json_put_int(struct bs_json *j, const char *key, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	bs_json_put_raw(j, key, num, (size_t)n);
}

void
bs_json_put_uint(struct bs_json *j, const char *key, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	bs_json_put_raw(j, key, num, (size_t)n);
}

void
bs_json_put_null(struct bs_json *j, const char *key)
{
	if (member(j, key) == 0)
		bytebuf_put(j->b, "null", 4);
}

void
bs_json_put_bool(struct bs_json *j, const char *key, int v)
{
	if (member(j, key) == 0)
		bytebuf_put(j->b, v ? "true" : "false", v ? 4 : 5);
}

void
bs_json_put_raw(struct bs_json *j, const char *key, const char *json, size_t n)
{
	if (member(j, key) == 0)
		bytebuf_put(j->b, json, n);
}

int
bs_json_error(const struct bs_json *j)
{
	if (j->err != 0)
		return j->err;
	if (bytebuf_error(j->b) != 0)
		return bytebuf_error(j->b);
	return j->depth == 0 ? 0 : BS_ERR_INVALID;
}
