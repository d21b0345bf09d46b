/*
 * bytebuf.c - growable wiping byte buffer and bounded reader (bytebuf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/bytebuf.h"

static int
reserve(struct bytebuf *b, size_t more)
{
	size_t max = b->max != 0 ? b->max : SIZE_MAX / 2, ncap;
	uint8_t *np;

	if (b->err != 0)
		return -1;
	if (b->fixed)
		max = b->cap;
	if (more > max - b->len) {
		b->err = BS_ERR_TOO_BIG;
		return -1;
	}
	if (b->len + more <= b->cap)
		return 0;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < b->len + more)
		ncap = ncap > max / 2 ? max : ncap * 2;
	/* grow by copying, so the old block can be wiped */
	if ((np = malloc(ncap)) == NULL) {
		b->err = BS_ERR_NOMEM;
		return -1;
	}
	if (b->len > 0)
		memcpy(np, b->p, b->len);
	OPENSSL_clear_free(b->p, b->cap);
	b->p = np;
	b->cap = ncap;
	return 0;
}

void
bytebuf_put(struct bytebuf *b, const void *data, size_t n)
{
	if (n == 0 || reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void
bytebuf_put_u8(struct bytebuf *b, uint8_t v)
{
	bytebuf_put(b, &v, 1);
}

void
bytebuf_put_u16(struct bytebuf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	bytebuf_put(b, x, 2);
}

void
bytebuf_put_u32(struct bytebuf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	bytebuf_put(b, x, 4);
}

void
bytebuf_printf(struct bytebuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (b->err == 0)
			b->err = BS_ERR_INVALID;
		return;
	}
	if (reserve(b, (size_t)n + 1) != 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int
bytebuf_error(const struct bytebuf *b)
{
	return b->err;
}

void
bytebuf_init_fixed(struct bytebuf *b, void *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
	b->max = cap;
	b->err = 0;
	b->fixed = 1;
}

uint8_t *
bytebuf_steal(struct bytebuf *b, size_t *len)
{
	uint8_t *p = b->p;

	if (b->fixed) {
		*len = 0;
		return NULL;
	}
	*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = 0;
	return p;
}

void
bytebuf_free(struct bytebuf *b)
{
	if (b->fixed) {
		OPENSSL_cleanse(b->p, b->len);
		b->len = 0;
		b->err = 0;
		return;
	}
	OPENSSL_clear_free(b->p, b->cap);
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void
byteread_init(struct byteread *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

int
byteread_bytes(struct byteread *r, size_t n, const uint8_t **out)
{
	if (n > r->len - r->off)
		return BS_ERR_TRUNCATED;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}

int
byteread_u8(struct byteread *r, uint8_t *v)
{
	const uint8_t *p;

	if (byteread_bytes(r, 1, &p) != 0)
		return BS_ERR_TRUNCATED;
	*v = p[0];
	return 0;
}

int
byteread_u16(struct byteread *r, uint16_t *v)
{
	const uint8_t *p;

	if (byteread_bytes(r, 2, &p) != 0)
		return BS_ERR_TRUNCATED;
	*v = (uint16_t)(p[0] << 8 | p[1]);
	return 0;
}

int
byteread_u32(struct byteread *r, uint32_t *v)
{
	const uint8_t *p;

	if (byteread_bytes(r, 4, &p) != 0)
		return BS_ERR_TRUNCATED;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int
byteread_end(const struct byteread *r)
{
	return r->off == r->len ? 0 : BS_ERR_INVALID;
}
