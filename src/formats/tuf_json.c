/*
 * tuf_json.c - strict parsing of TUF metadata JSON (jansson) and its
 * canonical encodings; see tuf_json.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/hex.h"
#include "formats/tuf_json.h"

/* ---- strict parsing ------------------------------------------------------- */

#define PATH_MAX_SHOWN 160

/* Appends ".key" or "[i]" to path (truncated with "..." past PATH_MAX_SHOWN). */
static void
path_push(char *path, size_t cap, const char *key, size_t index)
{
	size_t n = strlen(path);

	if (n >= PATH_MAX_SHOWN) {
		if (n < cap - 4 && strcmp(path + n - 3, "...") != 0)
			strcat(path, "...");
		return;
	}
	if (key != NULL)
		snprintf(path + n, cap - n, ".%.*s", (int)(PATH_MAX_SHOWN - n), key);
	else
		snprintf(path + n, cap - n, "[%zu]", index);
}

/* 0 if v holds no real number and is at most TUF_JSON_DEPTH_MAX deep; else err says where. */
static int
check_tree(const json_t *v, unsigned depth, char *path, size_t cap, char *err, size_t errlen)
{
	const char *key;
	json_t *child;
	size_t i, n = strlen(path);
	int rc = 0;

	if (depth > TUF_JSON_DEPTH_MAX) {
		snprintf(err, errlen, "nested deeper than %d levels at %s", TUF_JSON_DEPTH_MAX, path);
		return BS_ERR_INVALID;
	}
	switch (json_typeof(v)) {
	case JSON_REAL:
		snprintf(err, errlen, "floating-point number at %s (TUF metadata has integers only)",
		    path);
		return BS_ERR_INVALID;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, child) {
			path_push(path, cap, key, 0);
			rc = check_tree(child, depth + 1, path, cap, err, errlen);
			path[n] = '\0';
			if (rc != 0)
				return rc;
		}
		return 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, child) {
			path_push(path, cap, NULL, i);
			rc = check_tree(child, depth + 1, path, cap, err, errlen);
			path[n] = '\0';
			if (rc != 0)
				return rc;
		}
		return 0;
	default:
		return 0;
	}
}

int
tuf_json_parse(const uint8_t *buf, size_t len, size_t max_len, json_t **out, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *v;
	char path[PATH_MAX_SHOWN + 8] = "$";
	int rc;

	*out = NULL;
	if (len > max_len) {
		snprintf(err, errlen, "metadata is %zu bytes, more than the limit of %zu", len,
		    max_len);
		return BS_ERR_TOO_BIG;
	}
	v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (v == NULL) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return BS_ERR_NOMEM;
		snprintf(err, errlen, "not valid JSON at line %d, column %d: %s", je.line, je.column,
		    je.text);
		return BS_ERR_INVALID;
	}
	if ((rc = check_tree(v, 0, path, sizeof(path), err, errlen)) != 0) {
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
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
