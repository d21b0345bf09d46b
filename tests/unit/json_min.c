/*
 * json_min.c - a tiny recursive-descent JSON reader for the unit tests.
 * Enough for the Wycheproof vector files: objects, arrays, strings with all
 * escapes (\uXXXX incl. surrogate pairs), numbers, true/false/null. Depth is
 * capped; any syntax error fails the whole parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_min.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_FILE (64L * 1024 * 1024)

struct parser {
	const char *p;
	const char *end;
};

static int parse_value(struct parser *ps, struct json_node *n, int depth);

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	    (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int
hex4(const char *s, unsigned *v)
{
	unsigned r = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];

		r <<= 4;
		if (c >= '0' && c <= '9')
			r |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			r |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			r |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*v = r;
	return 0;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Parses a string at ps->p (on the opening quote) into a malloc'd buffer. */
static int
parse_string(struct parser *ps, char **out, size_t *out_len)
{
	const char *s;
	char *buf, *o;
	unsigned cp, lo;

	if (ps->p >= ps->end || *ps->p != '"')
		return -1;
	s = ++ps->p;
	/* decoded output is never longer than the source */
	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\')
			ps->p++;
		ps->p++;
	}
	if (ps->p >= ps->end)
		return -1;
	if ((buf = malloc((size_t)(ps->p - s) + 1)) == NULL)
		return -1;
	o = buf;
	while (s < ps->p) {
		if ((unsigned char)*s < 0x20)
			goto fail;
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case '"': *o++ = '"'; s++; break;
		case '\\': *o++ = '\\'; s++; break;
		case '/': *o++ = '/'; s++; break;
		case 'b': *o++ = '\b'; s++; break;
		case 'f': *o++ = '\f'; s++; break;
		case 'n': *o++ = '\n'; s++; break;
		case 'r': *o++ = '\r'; s++; break;
		case 't': *o++ = '\t'; s++; break;
		case 'u':
			if (ps->p - s < 5 || hex4(s + 1, &cp) != 0)
				goto fail;
			s += 5;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->p - s < 6 || s[0] != '\\' || s[1] != 'u' ||
				    hex4(s + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
					goto fail;
				s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				goto fail;
			}
			if (cp == 0)
				goto fail;
			o += put_utf8(o, cp);
			break;
		default:
			goto fail;
		}
	}
	*o = '\0';
	ps->p++;        /* closing quote */
	*out = buf;
	*out_len = (size_t)(o - buf);
	return 0;
fail:
	free(buf);
	return -1;
}

static int
parse_number(struct parser *ps, struct json_node *n)
{
	char tmp[64];
	size_t len = 0;
	char *endp;

	while (ps->p + len < ps->end && len < sizeof(tmp) - 1 &&
	    strchr("+-0123456789.eE", ps->p[len]) != NULL && ps->p[len] != '\0')
		len++;
	if (len == 0)
		return -1;
	memcpy(tmp, ps->p, len);
	tmp[len] = '\0';
	n->num = strtod(tmp, &endp);
	if (*endp != '\0')
		return -1;
	n->type = JSON_NUMBER;
	ps->p += len;
	return 0;
}

static int
parse_literal(struct parser *ps, const char *lit)
{
	size_t l = strlen(lit);

	if ((size_t)(ps->end - ps->p) < l || memcmp(ps->p, lit, l) != 0)
		return -1;
	ps->p += l;
	return 0;
}

/* Parses the elements of an array or members of an object. */
static int
parse_container(struct parser *ps, struct json_node *n, int is_obj, int depth)
{
	struct json_node **tail = &n->child, *c;
	char close = is_obj ? '}' : ']';

	n->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		*tail = c;
		tail = &c->next;
		skip_ws(ps);
		if (is_obj) {
			size_t klen;

			if (parse_string(ps, &c->key, &klen) != 0)
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return -1;
			ps->p++;
		}
		if (parse_value(ps, c, depth + 1) != 0)
			return -1;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return -1;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return 0;
		}
		return -1;
	}
}

static int
parse_value(struct parser *ps, struct json_node *n, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return -1;
	skip_ws(ps);
	if (ps->p >= ps->end)
		return -1;
	switch (*ps->p) {
	case '{':
		return parse_container(ps, n, 1, depth);
	case '[':
		return parse_container(ps, n, 0, depth);
	case '"':
		n->type = JSON_STRING;
		return parse_string(ps, &n->str, &n->str_len);
	case 't':
		n->type = JSON_BOOL;
		n->boolean = 1;
		return parse_literal(ps, "true");
	case 'f':
		n->type = JSON_BOOL;
		return parse_literal(ps, "false");
	case 'n':
		n->type = JSON_NULL;
		return parse_literal(ps, "null");
	default:
		return parse_number(ps, n);
	}
}

int
json_parse(const char *text, size_t len, struct json_node **out)
{
	struct parser ps = { text, text + len };
	struct json_node *root;

	if ((root = calloc(1, sizeof(*root))) == NULL)
		return -1;
	if (parse_value(&ps, root, 0) != 0)
		goto fail;
	skip_ws(&ps);
	if (ps.p != ps.end)
		goto fail;
	*out = root;
	return 0;
fail:
	json_free(root);
	return -1;
}

int
json_load_file(const char *path, struct json_node **out)
{
	FILE *f = NULL;
	char *buf = NULL;
	long sz;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || sz > JSON_MAX_FILE ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc((size_t)sz + 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)sz, f) != (size_t)sz)
		goto out;
	rc = json_parse(buf, (size_t)sz, out);
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

void
json_free(struct json_node *n)
{
	struct json_node *next;

	while (n != NULL) {
		next = n->next;
		json_free(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

const struct json_node *
json_get(const struct json_node *obj, const char *key)
{
	const struct json_node *c;

	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (c = obj->child; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

const char *
json_get_str(const struct json_node *obj, const char *key)
{
	const struct json_node *n = json_get(obj, key);

	return n != NULL && n->type == JSON_STRING ? n->str : NULL;
}

size_t
json_count(const struct json_node *n)
{
	const struct json_node *c;
	size_t k = 0;

	if (n == NULL || (n->type != JSON_ARRAY && n->type != JSON_OBJECT))
		return 0;
	for (c = n->child; c != NULL; c = c->next)
		k++;
	return k;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
json_hex_decode(const char *hex, uint8_t **out, size_t *out_len)
{
	size_t len, i;
	uint8_t *buf;
	int hi, lo;

	if (hex == NULL)
		return -1;
	len = strlen(hex);
	if (len % 2 != 0)
		return -1;
	if ((buf = malloc(len / 2 + 1)) == NULL)
		return -1;
	for (i = 0; i < len / 2; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(buf);
			return -1;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = buf;
	*out_len = len / 2;
	return 0;
}
