/*
 * json_lite.c - the strict JSON reader of the client library (json_lite.h):
 * recursive descent over a bounded buffer, depth-limited, no allocation but
 * the parse context (which holds the key spans of every open object, for
 * the duplicate check). Every byte is read through an index checked
 * against the length; no C string function touches the input.
 */
#include <stdlib.h>
#include <string.h>

#include "client/json_lite.h"

struct span {
	size_t off, len;
};

struct ctx {
	const uint8_t *b;
	size_t len, pos;
	int depth;
	struct json_lite_obj *top;
	struct span keys[JSON_LITE_MAX_DEPTH][JSON_LITE_MAX_MEMBERS];
	uint8_t k1[JSON_LITE_MAX_KEY + 1], k2[JSON_LITE_MAX_KEY + 1];
};

static int parse_value(struct ctx *c, enum json_lite_type *type, int64_t *num);

static int
hexval(uint8_t h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	if (h >= 'A' && h <= 'F')
		return h - 'A' + 10;
	return -1;
}

/* Four hex digits at s[i..i+3] (n bytes in s) into *v. 0 or -1. */
static int
hex4(const uint8_t *s, size_t n, size_t i, uint32_t *v)
{
	size_t k;
	int h;

	if (i > n || n - i < 4)
		return -1;
	*v = 0;
	for (k = 0; k < 4; k++) {
		if ((h = hexval(s[i + k])) < 0)
			return -1;
		*v = (*v << 4) | (uint32_t)h;
	}
	return 0;
}

/* Length of the valid multi-byte UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t need, k;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;          /* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;          /* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;          /* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;          /* above U+10FFFF */
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (k = 2; k < need; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return need;
}

/* UTF-8 of code point cp (not a surrogate, <= U+10FFFF) into e; its length. */
static size_t
utf8_put(uint32_t cp, uint8_t e[4])
{
	if (cp < 0x80) {
		e[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		e[0] = (uint8_t)(0xc0 | (cp >> 6));
		e[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		e[0] = (uint8_t)(0xe0 | (cp >> 12));
		e[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		e[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	e[0] = (uint8_t)(0xf0 | (cp >> 18));
	e[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	e[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	e[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The code point of the \uXXXX escape at s[*i] (the backslash), a surrogate
 * pair joined; *i moves past it (both halves).
 */
static int
unicode_escape(const uint8_t *s, size_t n, size_t *i, uint32_t *cp)
{
	uint32_t hi, lo;

	if (hex4(s, n, *i + 2, &hi) != 0)
		return JSON_LITE_ERR_STRING;
	*i += 6;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return JSON_LITE_ERR_STRING;  /* a low surrogate alone */
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (*i + 1 >= n || s[*i] != '\\' || s[*i + 1] != 'u' ||
		    hex4(s, n, *i + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
			return JSON_LITE_ERR_STRING;  /* a high surrogate alone */
		*i += 6;
		hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (hi == 0)
		return JSON_LITE_ERR_STRING;      /* \u0000 would cut a C string */
	*cp = hi;
	return 0;
}

/*
 * Reads the string whose text starts at s (just after the opening quote; n
 * bytes available) up to its closing quote. *end is the offset of the
 * closing quote (of the error on failure). With out != NULL the decoded
 * bytes and a NUL go there (outsz bytes at most). *outlen: decoded length.
 */
static int
str_decode(const uint8_t *s, size_t n, size_t *end, uint8_t *out, size_t outsz, size_t *outlen)
{
	size_t i = 0, o = 0, elen;
	uint8_t e[4];
	uint32_t cp;
	int rc = 0;

	for (;;) {
		if (i >= n) {
			rc = JSON_LITE_ERR_SYNTAX;      /* unterminated */
			goto out;
		}
		if (s[i] == '"')
			break;
		if (s[i] < 0x20) {
			rc = JSON_LITE_ERR_STRING;
			goto out;
		}
		if (s[i] == '\\') {
			if (i + 1 >= n) {
				rc = JSON_LITE_ERR_SYNTAX;
				goto out;
			}
			if (s[i + 1] == 'u') {
				if ((rc = unicode_escape(s, n, &i, &cp)) != 0)
					goto out;
				elen = utf8_put(cp, e);
			} else {
				switch (s[i + 1]) {
				case '"': case '\\': case '/':
					e[0] = s[i + 1];
					break;
				case 'b':
					e[0] = '\b';
					break;
				case 'f':
					e[0] = '\f';
					break;
				case 'n':
					e[0] = '\n';
					break;
				case 'r':
					e[0] = '\r';
					break;
				case 't':
					e[0] = '\t';
					break;
				default:
					rc = JSON_LITE_ERR_STRING;
					goto out;
				}
				elen = 1;
				i += 2;
			}
		} else if (s[i] < 0x80) {
			e[0] = s[i++];
			elen = 1;
		} else {
			if ((elen = utf8_seq(s + i, n - i)) == 0) {
				rc = JSON_LITE_ERR_STRING;
				goto out;
			}
			memcpy(e, s + i, elen);
			i += elen;
		}
		if (out != NULL) {
			if (outsz - o <= elen) {
				rc = JSON_LITE_ERR_LIMIT;
				goto out;
			}
			memcpy(out + o, e, elen);
		}
		o += elen;
	}
	if (out != NULL)
		out[o] = '\0';
	*outlen = o;
out:
	*end = i;
	return rc;
}

static void
skip_ws(struct ctx *c)
{
	while (c->pos < c->len && (c->b[c->pos] == ' ' || c->b[c->pos] == '\t' ||
	    c->b[c->pos] == '\n' || c->b[c->pos] == '\r'))
		c->pos++;
}

/* A string at c->pos (its opening quote); decoded into out if not NULL. */
static int
parse_string(struct ctx *c, uint8_t *out, size_t outsz, size_t *outlen)
{
	size_t end = 0, dlen = 0;
	int rc;

	rc = str_decode(c->b + c->pos + 1, c->len - c->pos - 1, &end, out, outsz, &dlen);
	c->pos += 1 + end;
	if (rc != 0)
		return rc;
	c->pos++;  /* the closing quote */
	if (outlen != NULL)
		*outlen = dlen;
	return 0;
}

static int
parse_number(struct ctx *c, int64_t *num)
{
	const uint64_t max = (uint64_t)INT64_MAX;
	uint64_t v = 0, d;
	int neg = 0;

	if (c->b[c->pos] == '-') {
		neg = 1;
		c->pos++;
	}
	if (c->pos >= c->len || c->b[c->pos] < '0' || c->b[c->pos] > '9')
		return JSON_LITE_ERR_SYNTAX;
	if (c->b[c->pos] == '0') {
		c->pos++;
		if (c->pos < c->len && c->b[c->pos] >= '0' && c->b[c->pos] <= '9')
			return JSON_LITE_ERR_NUMBER;  /* leading zero */
	} else {
		while (c->pos < c->len && c->b[c->pos] >= '0' && c->b[c->pos] <= '9') {
			d = (uint64_t)(c->b[c->pos] - '0');
			if (v > (max + (uint64_t)neg - d) / 10)
				return JSON_LITE_ERR_NUMBER;  /* out of int64 range */
			v = v * 10 + d;
			c->pos++;
		}
	}
	if (c->pos < c->len && (c->b[c->pos] == '.' || c->b[c->pos] == 'e' || c->b[c->pos] == 'E'))
		return JSON_LITE_ERR_NUMBER;          /* not an integer */
	if (neg && v == 0)
		return JSON_LITE_ERR_NUMBER;          /* -0 */
	if (!neg)
		*num = (int64_t)v;
	else if (v == max + 1)
		*num = INT64_MIN;
	else
		*num = -(int64_t)v;
	return 0;
}

static int
parse_literal(struct ctx *c, const char *lit, size_t n)
{
	if (c->len - c->pos < n || memcmp(c->b + c->pos, lit, n) != 0)
		return JSON_LITE_ERR_SYNTAX;
	c->pos += n;
	return 0;
}

static int
enter(struct ctx *c)
{
	if (c->depth >= JSON_LITE_MAX_DEPTH)
		return JSON_LITE_ERR_DEPTH;
	c->depth++;
	c->pos++;  /* '{' or '[' */
	return 0;
}

/* Is the key just read into c->k1 (klen bytes) one of the first nk keys of this object? */
static int
is_duplicate(struct ctx *c, const struct span *keys, size_t nk, size_t klen)
{
	size_t k, end, len;

	for (k = 0; k < nk; k++) {
		if (str_decode(c->b + keys[k].off, keys[k].len + 1, &end, c->k2, sizeof(c->k2),
		    &len) != 0)
			continue;  /* cannot happen: it was read before */
		if (len == klen && memcmp(c->k1, c->k2, len) == 0)
			return 1;
	}
	return 0;
}

static int
parse_object(struct ctx *c)
{
	struct span *keys;
	struct json_lite_member *m = NULL;
	size_t nk = 0, koff, klen;
	int rc, top;

	if ((rc = enter(c)) != 0)
		return rc;
	top = c->depth == 1;
	keys = c->keys[c->depth - 1];
	skip_ws(c);
	if (c->pos < c->len && c->b[c->pos] == '}') {
		c->pos++;
		c->depth--;
		return 0;
	}
	for (;;) {
		if (c->pos >= c->len || c->b[c->pos] != '"')
			return JSON_LITE_ERR_SYNTAX;
		koff = c->pos + 1;
		if ((rc = parse_string(c, c->k1, sizeof(c->k1), &klen)) != 0)
			return rc;
		if (nk == JSON_LITE_MAX_MEMBERS) {
			c->pos = koff - 1;
			return JSON_LITE_ERR_LIMIT;
		}
		if (is_duplicate(c, keys, nk, klen)) {
			c->pos = koff - 1;
			return JSON_LITE_ERR_DUPLICATE;
		}
		keys[nk].off = koff;
		keys[nk].len = c->pos - 1 - koff;
		if (top) {
			m = &c->top->m[nk];
			m->key_off = koff;
			m->key_len = keys[nk].len;
		}
		nk++;
		skip_ws(c);
		if (c->pos >= c->len || c->b[c->pos] != ':')
			return JSON_LITE_ERR_SYNTAX;
		c->pos++;
		skip_ws(c);
		if (top) {
			m->val_off = c->pos;
			if ((rc = parse_value(c, &m->type, &m->num)) != 0)
				return rc;
			m->val_len = c->pos - m->val_off;
			if (m->type == JSON_LITE_STRING) {
				m->val_off++;
				m->val_len -= 2;
			}
			c->top->n = nk;
		} else {
			enum json_lite_type t;
			int64_t v;

			if ((rc = parse_value(c, &t, &v)) != 0)
				return rc;
		}
		skip_ws(c);
		if (c->pos >= c->len)
			return JSON_LITE_ERR_SYNTAX;
		if (c->b[c->pos] == '}')
			break;
		if (c->b[c->pos] != ',')
			return JSON_LITE_ERR_SYNTAX;
		c->pos++;
		skip_ws(c);
	}
	c->pos++;
	c->depth--;
	return 0;
}

static int
parse_array(struct ctx *c)
{
	enum json_lite_type t;
	int64_t v;
	int rc;

	if ((rc = enter(c)) != 0)
		return rc;
	skip_ws(c);
	if (c->pos < c->len && c->b[c->pos] == ']') {
		c->pos++;
		c->depth--;
		return 0;
	}
	for (;;) {
		if ((rc = parse_value(c, &t, &v)) != 0)
			return rc;
		skip_ws(c);
		if (c->pos >= c->len)
			return JSON_LITE_ERR_SYNTAX;
		if (c->b[c->pos] == ']')
			break;
		if (c->b[c->pos] != ',')
			return JSON_LITE_ERR_SYNTAX;
		c->pos++;
		skip_ws(c);
	}
	c->pos++;
	c->depth--;
	return 0;
}

static int
parse_value(struct ctx *c, enum json_lite_type *type, int64_t *num)
{
	*num = 0;
	if (c->pos >= c->len)
		return JSON_LITE_ERR_SYNTAX;
	switch (c->b[c->pos]) {
	case '{':
		*type = JSON_LITE_OBJECT;
		return parse_object(c);
	case '[':
		*type = JSON_LITE_ARRAY;
		return parse_array(c);
	case '"':
		*type = JSON_LITE_STRING;
		return parse_string(c, NULL, 0, NULL);
	case 't':
		*type = JSON_LITE_TRUE;
		return parse_literal(c, "true", 4);
	case 'f':
		*type = JSON_LITE_FALSE;
		return parse_literal(c, "false", 5);
	case 'n':
		*type = JSON_LITE_NULL;
		return parse_literal(c, "null", 4);
	default:
		if (c->b[c->pos] == '-' || (c->b[c->pos] >= '0' && c->b[c->pos] <= '9')) {
			*type = JSON_LITE_INT;
			return parse_number(c, num);
		}
		return JSON_LITE_ERR_SYNTAX;
	}
}

int
json_lite_parse(const uint8_t *buf, size_t len, struct json_lite_obj *o, size_t *err_off)
{
	struct ctx *c = NULL;
	int rc;

	memset(o, 0, sizeof(*o));
	if (err_off != NULL)
		*err_off = 0;
	if (buf == NULL)
		return JSON_LITE_ERR_SYNTAX;
	if (len > JSON_LITE_MAX_INPUT)
		return JSON_LITE_ERR_LIMIT;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return JSON_LITE_ERR_NOMEM;
	c->b = buf;
	c->len = len;
	c->top = o;
	skip_ws(c);
	if (c->pos >= c->len)
		rc = JSON_LITE_ERR_SYNTAX;
	else if (c->b[c->pos] != '{')
		rc = JSON_LITE_ERR_NOT_OBJECT;
	else if ((rc = parse_object(c)) == 0) {
		skip_ws(c);
		if (c->pos != c->len)
			rc = JSON_LITE_ERR_TRAILING;
	}
	if (rc != 0) {
		if (err_off != NULL)
			*err_off = c->pos;
		memset(o, 0, sizeof(*o));
	} else {
		o->buf = buf;
		o->len = len;
	}
	free(c);
	return rc;
}

/* Decodes the string at buf[off] (len raw bytes) into out; see json_lite_string. */
static int
decode_span(const uint8_t *buf, size_t off, size_t len, char *out, size_t outsz, size_t *outlen)
{
	size_t end = 0, dlen = 0;
	int rc;

	if (outsz == 0)
		return JSON_LITE_ERR_LIMIT;
	/* len + 1: the closing quote is part of what str_decode reads */
	rc = str_decode(buf + off, len + 1, &end, (uint8_t *)out, outsz, &dlen);
	if (rc == 0 && end != len)
		rc = JSON_LITE_ERR_ARG;
	if (rc != 0) {
		memset(out, 0, outsz);
		return rc;
	}
	if (outlen != NULL)
		*outlen = dlen;
	return 0;
}

int
json_lite_string(const struct json_lite_obj *o, const struct json_lite_member *m, char *out,
    size_t outsz, size_t *outlen)
{
	if (m->type != JSON_LITE_STRING) {
		if (outsz > 0)
			memset(out, 0, outsz);
		return JSON_LITE_ERR_ARG;
	}
	return decode_span(o->buf, m->val_off, m->val_len, out, outsz, outlen);
}

int
json_lite_key(const struct json_lite_obj *o, const struct json_lite_member *m, char *out,
    size_t outsz, size_t *outlen)
{
	return decode_span(o->buf, m->key_off, m->key_len, out, outsz, outlen);
}

const struct json_lite_member *
json_lite_get(const struct json_lite_obj *o, const char *key)
{
	char k[JSON_LITE_MAX_KEY + 1];
	size_t i, klen, want = strlen(key);

	for (i = 0; i < o->n; i++)
		if (json_lite_key(o, &o->m[i], k, sizeof(k), &klen) == 0 && klen == want &&
		    memcmp(k, key, klen) == 0)
			return &o->m[i];
	return NULL;
}

const char *
json_lite_strerror(int rc)
{
	switch (rc) {
	case JSON_LITE_OK:
		return "ok";
	case JSON_LITE_ERR_SYNTAX:
		return "not valid JSON";
	case JSON_LITE_ERR_NOT_OBJECT:
		return "not a JSON object";
	case JSON_LITE_ERR_TRAILING:
		return "bytes after the object";
	case JSON_LITE_ERR_DEPTH:
		return "nested too deeply";
	case JSON_LITE_ERR_DUPLICATE:
		return "duplicate key";
	case JSON_LITE_ERR_NUMBER:
		return "a number that is not an int64 integer in its one spelling";
	case JSON_LITE_ERR_STRING:
		return "a bad string (escape, surrogate, \\u0000, control character or UTF-8)";
	case JSON_LITE_ERR_LIMIT:
		return "over a size limit";
	case JSON_LITE_ERR_NOMEM:
		return "out of memory";
	case JSON_LITE_ERR_ARG:
		return "not a string";
	default:
		return "unknown error";
	}
}

const char *
json_lite_type_name(enum json_lite_type t)
{
	switch (t) {
	case JSON_LITE_NULL:
		return "null";
	case JSON_LITE_FALSE:
	case JSON_LITE_TRUE:
		return "boolean";
	case JSON_LITE_INT:
		return "integer";
	case JSON_LITE_STRING:
		return "string";
	case JSON_LITE_ARRAY:
		return "array";
	case JSON_LITE_OBJECT:
		return "object";
	default:
		return "unknown";
	}
}
