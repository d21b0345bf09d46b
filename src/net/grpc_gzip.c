/*
 * grpc_gzip.c - gzip for gRPC messages (grpc_gzip.h), with zlib.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/wipe_alloc.h"
#include "net/grpc_gzip.h"

#define GZIP_WINDOW (15 + 16)      /* zlib: a gzip wrapper, no zlib or raw */
#define INFLATE_CHUNK 16384

/*
 * zlib's own buffers (its window holds the plaintext) come from the wiping
 * allocator too: a message may carry a data key or a decrypted payload.
 */
static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return bs_wipe_calloc(items, size);
}

static void
z_free(voidpf opaque, voidpf p)
{
	(void)opaque;
	bs_wipe_free(p);
}

int
grpc_gzip_inflate(const uint8_t *in, size_t inlen, size_t max, uint8_t **out, size_t *outlen)
{
	z_stream z;
	uint8_t *buf = NULL, *t;
	size_t cap = 0, have = 0;
	int zr, rc;

	*out = NULL;
	*outlen = 0;
	if (inlen > UINT32_MAX)
		return BS_ERR_TOO_BIG;
	memset(&z, 0, sizeof(z));
	z.zalloc = z_alloc;
	z.zfree = z_free;
	if (inflateInit2(&z, GZIP_WINDOW) != Z_OK)
		return BS_ERR_NOMEM;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	for (;;) {
		if (have == cap) {
			size_t ncap = cap == 0 ? INFLATE_CHUNK : 2 * cap;

			if (cap >= max + 1) {
				rc = BS_ERR_TOO_BIG;
				goto out;
			}
			if (ncap > max + 1)
				ncap = max + 1;   /* one byte past max tells "too big" */
			if ((t = bs_wipe_realloc(buf, ncap)) == NULL) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			buf = t;
			cap = ncap;
		}
		z.next_out = buf + have;
		z.avail_out = (uInt)(cap - have);
		zr = inflate(&z, Z_NO_FLUSH);
		have = cap - z.avail_out;
		if (have > max) {
			rc = BS_ERR_TOO_BIG;
			goto out;
		}
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_MEM_ERROR) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		/* progress needs room (avail_out 0) or input; neither left: truncated */
		if ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_out == 0)
			continue;
		if (zr == Z_OK && z.avail_in > 0)
			continue;
		rc = BS_ERR_INVALID;     /* corrupt, or the input ended inside the member */
		goto out;
	}
	if (z.avail_in != 0) {
		rc = BS_ERR_INVALID;             /* bytes after the member */
		goto out;
	}
	*out = buf != NULL ? buf : bs_wipe_malloc(1);
	if (*out == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	buf = NULL;
	*outlen = have;
	rc = 0;
out:
	inflateEnd(&z);
	bs_wipe_free(buf);
	return rc;
}

int
grpc_gzip_deflate(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	z_stream z;
	uint8_t *buf;
	uLong bound;

	*out = NULL;
	*outlen = 0;
	if (inlen > UINT32_MAX)
		return BS_ERR_TOO_BIG;
	memset(&z, 0, sizeof(z));
	z.zalloc = z_alloc;
	z.zfree = z_free;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return BS_ERR_NOMEM;
	bound = deflateBound(&z, (uLong)inlen);
	if ((buf = bs_wipe_malloc(bound > 0 ? bound : 1)) == NULL) {
		deflateEnd(&z);
		return BS_ERR_NOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	z.next_out = buf;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		bs_wipe_free(buf);
		return BS_ERR_NOMEM;
	}
	*outlen = z.total_out;
	*out = buf;
	deflateEnd(&z);
	return 0;
}

int
grpc_accepts_gzip(const char *v, size_t len)
{
	size_t i = 0, s, e;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == 4 && memcmp(v + s, "gzip", 4) == 0)
			return 1;
	}
	return 0;
}
