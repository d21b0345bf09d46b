/*
 * test_wipe_alloc.c - unit tests of the wiping allocator (src/common/
 * wipe_alloc.c) that libevent and nghttp2 use in the daemon: blocks keep
 * their contents through realloc (growing and shrinking), calloc zeroes and
 * refuses an overflowing size, free(NULL) and realloc(NULL) behave as the C
 * library's, and every block is accounted for (no block lost on any path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/wipe_alloc.h"

static void
test_blocks(void **state)
{
	size_t base = bs_wipe_live();
	uint8_t *p, *q, *z;

	(void)state;
	p = bs_wipe_malloc(100);
	assert_non_null(p);
	assert_true(((uintptr_t)p % 16) == 0);
	memset(p, 0xab, 100);
	q = bs_wipe_realloc(p, 5000);
	assert_non_null(q);
	for (int i = 0; i < 100; i++)
		assert_int_equal(q[i], 0xab);
	q = bs_wipe_realloc(q, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(q[i], 0xab);
	assert_int_equal(bs_wipe_live(), base + 1);
	z = bs_wipe_calloc(7, 9);
	assert_non_null(z);
	for (int i = 0; i < 63; i++)
		assert_int_equal(z[i], 0);
	assert_null(bs_wipe_calloc(SIZE_MAX / 2, 4));
	assert_null(bs_wipe_malloc(SIZE_MAX - 8));
	assert_int_equal(bs_wipe_live(), base + 2);
	bs_wipe_free(z);
	assert_null(bs_wipe_realloc(q, 0));            /* frees, as realloc(p, 0) may */
	bs_wipe_free(NULL);
	p = bs_wipe_realloc(NULL, 3);
	assert_non_null(p);
	bs_wipe_free(p);
	assert_int_equal(bs_wipe_live(), base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
