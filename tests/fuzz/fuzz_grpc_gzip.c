/*
 * fuzz_grpc_gzip.c - fuzz target of the inflation of gzip-compressed gRPC
 * requests (src/net/grpc_gzip.c): any bytes as a compressed message, with
 * a 64 KiB cap. Checks: the cap holds; what inflates deflates and inflates
 * back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wipe_alloc.h"
#include "net/grpc_gzip.h"

#define CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out, *z, *back;
	size_t len, zlen, blen;
	int rc = grpc_gzip_inflate(data, size, CAP, &out, &len);

	if (rc != 0) {
		if (out != NULL || (rc != BS_ERR_INVALID && rc != BS_ERR_TOO_BIG && rc != BS_ERR_NOMEM))
			abort();
		return 0;
	}
	if (len > CAP || grpc_gzip_deflate(out, len, &z, &zlen) != 0)
		abort();
	if (grpc_gzip_inflate(z, zlen, CAP, &back, &blen) != 0 || blen != len ||
	    memcmp(back, out, len) != 0)
		abort();
	bs_wipe_free(out);
	bs_wipe_free(z);
	bs_wipe_free(back);
	return 0;
}
