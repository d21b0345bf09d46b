/*
 * wipe_alloc.c - the wiping allocator of wipe_alloc.h: malloc with a 16-byte
 * header holding the block's size, OPENSSL_cleanse of the whole block before
 * free, realloc as allocate, copy, wipe and free (so that no copy of the old
 * contents is left behind where realloc would have moved it).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/wipe_alloc.h"

#define HDR 16                      /* keeps the malloc alignment (max_align_t) */

static _Atomic size_t live;

void *
bs_wipe_malloc(size_t n)
{
	uint8_t *b;

	if (n > SIZE_MAX - HDR || (b = malloc(n + HDR)) == NULL)
		return NULL;
	memcpy(b, &n, sizeof(n));
	atomic_fetch_add(&live, 1);
	return b + HDR;
}

void
bs_wipe_free(void *p)
{
	uint8_t *b;
	size_t n;

	if (p == NULL)
		return;
	b = (uint8_t *)p - HDR;
	memcpy(&n, b, sizeof(n));
	OPENSSL_cleanse(b, n + HDR);
	free(b);
	atomic_fetch_sub(&live, 1);
}

void *
bs_wipe_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return bs_wipe_malloc(n);
	if (n == 0) {
		bs_wipe_free(p);
		return NULL;
	}
	memcpy(&old, (uint8_t *)p - HDR, sizeof(old));
	if ((q = bs_wipe_malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	bs_wipe_free(p);
	return q;
}

void *
bs_wipe_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	if ((p = bs_wipe_malloc(n * size)) != NULL)
		memset(p, 0, n * size);
	return p;
}

size_t
bs_wipe_live(void)
{
	return atomic_load(&live);
}
