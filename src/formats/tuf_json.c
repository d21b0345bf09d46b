/*
 * tuf_json.c - strict parsing of TUF metadata JSON (json_strict, on
 * jansson) and its canonical encodings; see tuf_json.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/hex.h"
#include "formats/json_strict.h"
#include "formats/tuf_json.h"

/* ---- strict parsing ------------------------------------------------------- */

int
tuf_json_parse(const uint8_t *buf, size_t len, size_t max_len, json_t **out, char *err,
    size_t errlen)
{
	struct json_strict_limits lim = { .max_len = max_len, .max_depth = TUF_JSON_DEPTH_MAX };

	return json_strict_parse(buf, len, &lim, out, err, errlen);
}

/* ---- canonical encoding --------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	size_t ncap;
	char *np;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap == 0 ? 256 : b->cap;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
put_string(struct buf *b, const char *s, size_t n, enum tuf_canon form)
{
	size_t i, run = 0;
	char esc[8];

	put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		const char *e = NULL;

		if (ch == '"')
			e = "\\\"";
		else if (ch == '\\')
			e = "\\\\";
		else if (form == TUF_CANON_AKTUALIZR && ch < 0x20) {
			switch (ch) {
			case '\b': e = "\\b"; break;
			case '\f': e = "\\f"; break;
			case '\n': e = "\\n"; break;
			case '\r': e = "\\r"; break;
			case '\t': e = "\\t"; break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", ch);
				e = esc;
			}
		}
		if (e == NULL) {
			run++;
			continue;
		}
		put(b, s + i - run, run);
		run = 0;
		put(b, e, strlen(e));
	}
	put(b, s + n - run, run);
	put(b, "\"", 1);
}

static int
cmp_keys(const void *a, const void *b)
{
	/* UTF-8 byte order is code point order (Python's sorted() over str) */
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
encode(struct buf *b, const json_t *v, enum tuf_canon form, unsigned depth)
{
	char num[32];
	const char **keys;
	const char *key;
	json_t *child;
	size_t i, n;
	int rc = 0;

	/* one level more than the parser allows: a parsed document wrapped in an envelope */
	if (depth > TUF_JSON_DEPTH_MAX + 1)
		return BS_ERR_INVALID;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		n = json_object_size(v);
		if ((keys = calloc(n + 1, sizeof(*keys))) == NULL)
			return BS_ERR_NOMEM;
		i = 0;
		json_object_foreach((json_t *)v, key, child)
			keys[i++] = key;
		qsort(keys, n, sizeof(*keys), cmp_keys);
		put(b, "{", 1);
		for (i = 0; i < n && rc == 0; i++) {
			if (i > 0)
				put(b, ",", 1);
			put_string(b, keys[i], strlen(keys[i]), form);
			put(b, ":", 1);
			rc = encode(b, json_object_get(v, keys[i]), form, depth + 1);
		}
		put(b, "}", 1);
		free(keys);
		return rc;
	case JSON_ARRAY:
		put(b, "[", 1);
		json_array_foreach(v, i, child) {
			if (i > 0)
				put(b, ",", 1);
			if ((rc = encode(b, child, form, depth + 1)) != 0)
				return rc;
		}
		put(b, "]", 1);
		return 0;
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v), form);
		return 0;
	case JSON_INTEGER:
		n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		put(b, num, n);
		return 0;
	case JSON_TRUE:
		put(b, "true", 4);
		return 0;
	case JSON_FALSE:
		put(b, "false", 5);
		return 0;
	case JSON_NULL:
		put(b, "null", 4);
		return 0;
	case JSON_REAL:
	default:
		return BS_ERR_INVALID;
	}
}

int
tuf_json_canonical(const json_t *v, enum tuf_canon form, char **out, size_t *len)
{
	struct buf b = { NULL, 0, 0, 0 };
	int rc;

	*out = NULL;
	*len = 0;
	if (v == NULL)
		return BS_ERR_INVALID;
	rc = encode(&b, v, form, 0);
	if (rc == 0 && b.failed)
		rc = BS_ERR_NOMEM;
	if (rc == 0 && b.p == NULL)
		rc = BS_ERR_INTERNAL;
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int
tuf_json_keyid(const json_t *key, char hex[TUF_KEYID_HEX_LEN + 1])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char *canon;
	size_t len;
	int rc;

	if (key == NULL || !json_is_object(key))
		return BS_ERR_INVALID;
	if ((rc = tuf_json_canonical(key, TUF_CANON_OLPC, &canon, &len)) != 0)
		return rc;
	SHA256((const uint8_t *)canon, len, md);
	free(canon);
	bs_hex_encode(md, sizeof(md), hex);
	return 0;
}
