/*
 * wipe_alloc.c - the wiping allocator of wipe_alloc.h: malloc, with
 * OPENSSL_cleanse of the whole block (malloc_usable_size(3): no header of
 * our own, which every libevent and nghttp2 allocation of every connection
 * would carry) before free, realloc as allocate, copy, wipe and free (so
 * that no copy of the old contents is left behind where realloc would have
 * moved it).
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/wipe_alloc.h"

static _Atomic size_t live;

void *
bs_wipe_malloc(size_t n)
{
	void *b;

	if (n > PTRDIFF_MAX)   /* no object is that large; refused before malloc sees it */
		return NULL;
	if ((b = malloc(n > 0 ? n : 1)) != NULL)
		atomic_fetch_add(&live, 1);
	return b;
}

void
bs_wipe_free(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
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
	old = malloc_usable_size(p);
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
