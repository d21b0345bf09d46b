/*
 * envblob.c - envelope-encryption blobs and canonical encryption contexts
 * (see envblob.h for the byte layout).
 */
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "formats/envblob.h"

/* The catalog's key names: 1..64 of [A-Za-z0-9._-], starting with a letter or digit. */
static int
kek_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ENVBLOB_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

static void
put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t
envblob_header_len(const struct envblob *b)
{
	return 22 + strlen(b->kek);
}

/* The header of b into out (envblob_header_len bytes). */
static void
header(const struct envblob *b, uint8_t *out)
{
	size_t n = strlen(b->kek);

	out[0] = ENVBLOB_VERSION;
	out[1] = (uint8_t)n;
	memcpy(out + 2, b->kek, n);
	put_u32(out + 2 + n, b->kek_version);
	memcpy(out + 6 + n, b->nonce, ENVBLOB_NONCE_LEN);
	put_u32(out + 18 + n, (uint32_t)b->ct_len);
}

/* b's header fields within the rules (and, when need_ct, its ciphertext there). */
static int
fields_ok(const struct envblob *b, int need_ct)
{
	size_t n = strnlen(b->kek, sizeof(b->kek));

	return n < sizeof(b->kek) && kek_name_ok(b->kek, n) && b->kek_version >= 1 &&
	    b->ct_len >= 1 && b->ct_len <= ENVBLOB_DATA_MAX && (!need_ct || b->ct != NULL);
}

int
envblob_encode(const struct envblob *b, uint8_t **out, size_t *out_len)
{
	uint8_t *p;
	size_t h, total;

	if (b == NULL || out == NULL || out_len == NULL || !fields_ok(b, 1))
		return BS_ERR_INVALID;
	h = envblob_header_len(b);
	total = h + b->ct_len + ENVBLOB_TAG_LEN;
	if ((p = malloc(total)) == NULL)
		return BS_ERR_NOMEM;
	header(b, p);
	memcpy(p + h, b->ct, b->ct_len);
	memcpy(p + h + b->ct_len, b->tag, ENVBLOB_TAG_LEN);
	*out = p;
	*out_len = total;
	return 0;
}

int
envblob_decode(const uint8_t *in, size_t len, struct envblob *out)
{
	struct envblob b;
	size_t n, ct_len;

	if (out == NULL)
		return BS_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	if (in == NULL || len < 2 || in[0] != ENVBLOB_VERSION)
		return BS_ERR_INVALID;
	n = in[1];
	if (n == 0 || n > ENVBLOB_NAME_MAX || len < 22 + n)
		return BS_ERR_INVALID;
	if (!kek_name_ok((const char *)in + 2, n))
		return BS_ERR_INVALID;
	memset(&b, 0, sizeof(b));
	memcpy(b.kek, in + 2, n);
	b.kek_version = get_u32(in + 2 + n);
	memcpy(b.nonce, in + 6 + n, ENVBLOB_NONCE_LEN);
	ct_len = get_u32(in + 18 + n);
	if (b.kek_version == 0 || ct_len == 0 || ct_len > ENVBLOB_DATA_MAX ||
	    len != 22 + n + ct_len + ENVBLOB_TAG_LEN)
		return BS_ERR_INVALID;
	b.ct = in + 22 + n;
	b.ct_len = ct_len;
	memcpy(b.tag, in + 22 + n + ct_len, ENVBLOB_TAG_LEN);
	*out = b;
	return 0;
}

/* 1 if s is lo..hi bytes of valid UTF-8 without control characters. */
static int
text_ok(const char *s, size_t lo, size_t hi)
{
	size_t n, i, k;
	uint32_t cp;

	if (s == NULL)
		return 0;
	n = strnlen(s, hi + 1);
	if (n < lo || n > hi)
		return 0;
	for (i = 0; i < n; i += k) {
		if ((k = bs_utf8_decode((const uint8_t *)s + i, n - i, &cp)) == 0 || cp < 0x20 ||
		    (cp >= 0x7f && cp < 0xa0))
			return 0;
	}
	return 1;
}

/* Bytewise order of keys; a common prefix puts the shorter first. */
static int
entry_cmp(const void *a, const void *b)
{
	const struct envctx_entry *x = a, *y = b;
	size_t nx = strlen(x->key), ny = strlen(y->key);
	int c = memcmp(x->key, y->key, nx < ny ? nx : ny);

	if (c != 0)
		return c;
	return nx < ny ? -1 : nx > ny ? 1 : 0;
}

int
envctx_canonical(const struct envctx_entry *e, size_t n, uint8_t **out, size_t *out_len)
{
	struct envctx_entry *s = NULL;
	uint8_t *p = NULL;
	size_t i, total = 2, w;
	int rc = BS_ERR_INVALID;

	if (e == NULL || out == NULL || out_len == NULL || n == 0 || n > ENVCTX_MAX)
		return BS_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (!text_ok(e[i].key, 1, ENVCTX_KEY_MAX) || !text_ok(e[i].value, 1, ENVCTX_VALUE_MAX))
			return BS_ERR_INVALID;
		total += 4 + strlen(e[i].key) + strlen(e[i].value);
	}
	if ((s = malloc(n * sizeof(*s))) == NULL || (p = malloc(total)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	memcpy(s, e, n * sizeof(*s));
	qsort(s, n, sizeof(*s), entry_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(s[i - 1].key, s[i].key) == 0)
			goto out;                 /* a key twice */
	put_u16(p, n);
	w = 2;
	for (i = 0; i < n; i++) {
		size_t kl = strlen(s[i].key), vl = strlen(s[i].value);

		put_u16(p + w, kl);
		memcpy(p + w + 2, s[i].key, kl);
		w += 2 + kl;
		put_u16(p + w, vl);
		memcpy(p + w + 2, s[i].value, vl);
		w += 2 + vl;
	}
	*out = p;
	*out_len = w;
	p = NULL;
	rc = 0;
out:
	free(s);
	free(p);
	return rc;
}

int
envblob_aad(const struct envblob *b, const uint8_t *ctx, size_t ctx_len, uint8_t **out,
    size_t *out_len)
{
	const size_t pre = sizeof(ENVBLOB_AAD_PREFIX) - 1;
	uint8_t *p;
	size_t h;

	if (b == NULL || out == NULL || out_len == NULL || (ctx == NULL && ctx_len > 0) ||
	    !fields_ok(b, 0))
		return BS_ERR_INVALID;
	h = envblob_header_len(b);
	if ((p = malloc(pre + h + ctx_len)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(p, ENVBLOB_AAD_PREFIX, pre);
	header(b, p + pre);
	if (ctx_len > 0)
		memcpy(p + pre + h, ctx, ctx_len);
	*out = p;
	*out_len = pre + h + ctx_len;
	return 0;
}
