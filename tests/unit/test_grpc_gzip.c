/*
 * test_grpc_gzip.c - unit tests of gRPC gzip compression
 * (src/net/grpc_gzip.c): a member made by Python's gzip module inflates to
 * its text; deflate/inflate round trips; a "bomb" (1 MiB of zeros in about
 * 1 KiB) is refused past the cap without allocating past it; truncated,
 * corrupt (CRC), trailing-garbage and non-gzip input are refused; the
 * grpc-accept-encoding list parser; every buffer is the wiping allocator's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hex.h"
#include "common/wipe_alloc.h"
#include "net/grpc_gzip.h"

/* gzip.compress(b"hello grpc", mtime=0) (CPython 3.11) */
static const char PY_GZIP[] = "1f8b0800000000000203cb48cdc9c957482f2a48060067d37fce0a000000";

static void
test_python_member(void **state)
{
	uint8_t in[64], *out;
	size_t n = strlen(PY_GZIP) / 2, len;

	(void)state;
	assert_int_equal(bs_hex_decode(PY_GZIP, 2 * n, in, n, 0), 0);
	assert_int_equal(grpc_gzip_inflate(in, n, 100, &out, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(out, "hello grpc", 10);
	bs_wipe_free(out);
	/* exactly at the cap is fine, one below is not */
	assert_int_equal(grpc_gzip_inflate(in, n, 10, &out, &len), 0);
	bs_wipe_free(out);
	assert_int_equal(grpc_gzip_inflate(in, n, 9, &out, &len), BS_ERR_TOO_BIG);
	assert_null(out);
	/* truncated, trailing bytes, a flipped CRC byte, not gzip */
	assert_int_equal(grpc_gzip_inflate(in, n - 1, 100, &out, &len), BS_ERR_INVALID);
	assert_int_equal(grpc_gzip_inflate(in, 10, 100, &out, &len), BS_ERR_INVALID);
	in[n] = 0;
	assert_int_equal(grpc_gzip_inflate(in, n + 1, 100, &out, &len), BS_ERR_INVALID);
	in[n - 6] ^= 1;
	assert_int_equal(grpc_gzip_inflate(in, n, 100, &out, &len), BS_ERR_INVALID);
	assert_int_equal(grpc_gzip_inflate((const uint8_t *)"hello", 5, 100, &out, &len),
	    BS_ERR_INVALID);
	assert_int_equal(grpc_gzip_inflate(in, 0, 100, &out, &len), BS_ERR_INVALID);
}

static void
test_round_trip_and_bomb(void **state)
{
	static uint8_t big[1024 * 1024];
	uint8_t *z, *out;
	size_t zlen, len;

	(void)state;
	for (size_t i = 0; i < 4096; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(grpc_gzip_deflate(big, sizeof(big), &z, &zlen), 0);
	assert_true(zlen < 8192);
	assert_int_equal(grpc_gzip_inflate(z, zlen, sizeof(big), &out, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(out, big, len);
	bs_wipe_free(out);
	/* the cap holds whatever the ratio */
	assert_int_equal(grpc_gzip_inflate(z, zlen, 4 * 1024 * 1024 / 8, &out, &len),
	    BS_ERR_TOO_BIG);
	assert_null(out);
	bs_wipe_free(z);
	/* the empty message */
	assert_int_equal(grpc_gzip_deflate(big, 0, &z, &zlen), 0);
	assert_int_equal(grpc_gzip_inflate(z, zlen, 0, &out, &len), 0);
	assert_int_equal(len, 0);
	bs_wipe_free(out);
	bs_wipe_free(z);
	/* every buffer, zlib's own included, came from (and went back to) the wiping allocator */
	assert_int_equal(bs_wipe_live(), 0);
}

static void
test_accept_encoding(void **state)
{
	(void)state;
	assert_true(grpc_accepts_gzip("gzip", 4));
	assert_true(grpc_accepts_gzip("identity,deflate,gzip", 21));
	assert_true(grpc_accepts_gzip("identity, gzip ", 15));
	assert_false(grpc_accepts_gzip("identity,deflate", 16));
	assert_false(grpc_accepts_gzip("gzipx,xgzip", 11));
	assert_false(grpc_accepts_gzip("", 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_python_member),
		cmocka_unit_test(test_round_trip_and_bomb),
		cmocka_unit_test(test_accept_encoding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
