/*
 * test_seqcache.c - unit tests for src/services/commands/seqcache.c: a
 * block hands out each number once and in order, only while the registry
 * generation and the record version it was checked against hold; a new
 * block replaces what was left; records are kept by generation, an older
 * read never replacing a newer one; waiters come back in order; the cache
 * stops growing at its maximum.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "services/commands/seqcache.h"

static void
test_blocks(void **state)
{
	struct seqcache *sc = NULL;
	struct seqcache_entry *e;
	uint64_t seq = 0;

	(void)state;
	assert_int_equal(seqcache_new(0, &sc), BS_ERR_INVALID);
	assert_int_equal(seqcache_new(SEQCACHE_MAX + 1, &sc), BS_ERR_INVALID);
	assert_int_equal(seqcache_new(8, &sc), 0);
	assert_null(seqcache_get(sc, "truck-1"));
	e = seqcache_add(sc, "truck-1");
	assert_non_null(e);
	assert_ptr_equal(seqcache_add(sc, "truck-1"), e);
	assert_ptr_equal(seqcache_get(sc, "truck-1"), e);
	/* no block yet */
	assert_int_equal(seqcache_take(e, 1, 1, &seq), 0);
	e->reserver = &seq;
	seqcache_put_block(e, 3, 6, 7, 10);          /* 3, 4, 5: checked at version 7, gen 10 */
	assert_ptr_equal(e->reserver, &seq);         /* the reserver's to clear, not the block's */
	assert_int_equal(seqcache_take(e, 10, 7, &seq), 1);
	assert_int_equal(seq, 3);
	/* another generation or another version: nothing, and nothing used up */
	assert_int_equal(seqcache_take(e, 11, 7, &seq), 0);
	assert_int_equal(seqcache_take(e, 10, 8, &seq), 0);
	assert_int_equal(seqcache_take(e, 10, 7, &seq), 1);
	assert_int_equal(seq, 4);
	assert_int_equal(seqcache_take(e, 10, 7, &seq), 1);
	assert_int_equal(seq, 5);
	assert_int_equal(seqcache_take(e, 10, 7, &seq), 0);   /* used up */
	assert_int_equal(seq, 5);
	/* a new block replaces the old one (what was left is a gap) */
	seqcache_put_block(e, 70, 72, 8, 12);
	assert_int_equal(seqcache_take(e, 12, 7, &seq), 0);
	assert_int_equal(seqcache_take(e, 12, 8, &seq), 1);
	assert_int_equal(seq, 70);
	seqcache_free(sc);
	seqcache_free(NULL);
}

static void
test_records(void **state)
{
	struct seqcache *sc = NULL;
	struct seqcache_entry *e;
	json_t *a = json_pack("{s:s}", "status", "active");
	json_t *b = json_pack("{s:s}", "status", "suspended");
	uint64_t v = 0;

	(void)state;
	assert_int_equal(seqcache_new(8, &sc), 0);
	e = seqcache_add(sc, "truck-2");
	assert_null(seqcache_record(e, 1, &v));
	seqcache_put_record(e, a, 3, 5);
	assert_ptr_equal(seqcache_record(e, 5, &v), a);
	assert_int_equal(v, 3);
	assert_null(seqcache_record(e, 6, &v));         /* the registry changed since */
	seqcache_put_record(e, b, 4, 7);
	assert_ptr_equal(seqcache_record(e, 7, &v), b);
	assert_int_equal(v, 4);
	seqcache_put_record(e, a, 3, 6);                /* an older read does not win */
	assert_ptr_equal(seqcache_record(e, 7, &v), b);
	seqcache_forget_record(e);
	assert_null(seqcache_record(e, 7, &v));
	seqcache_put_record(e, b, 4, 7);
	/* the cache holds its own references */
	json_decref(a);
	json_decref(b);
	assert_string_equal(json_string_value(json_object_get(seqcache_record(e, 7, &v),
	    "status")), "suspended");
	seqcache_free(sc);
}

struct call {
	int id;
	struct seqcache_waiter w;
};

static void
test_waiters_and_capacity(void **state)
{
	struct seqcache *sc = NULL;
	struct seqcache_entry *e;
	struct call c[3] = { { 1, { NULL } }, { 2, { NULL } }, { 3, { NULL } } };
	struct seqcache_waiter *w;
	char id[16];
	int n = 0;

	(void)state;
	assert_int_equal(seqcache_new(4, &sc), 0);
	e = seqcache_add(sc, "truck-3");
	assert_null(seqcache_waiters(e));
	for (int i = 0; i < 3; i++)
		seqcache_wait(e, &c[i].w);
	for (w = seqcache_waiters(e); w != NULL; w = w->next) {
		struct call *k = (struct call *)(void *)((char *)w - offsetof(struct call, w));

		assert_int_equal(k->id, ++n);
	}
	assert_int_equal(n, 3);
	assert_null(seqcache_waiters(e));
	/* the list is usable again */
	seqcache_wait(e, &c[1].w);
	assert_ptr_equal(seqcache_waiters(e), &c[1].w);
	/* four vehicles at most: the fifth is not remembered */
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "v-%d", i);
		assert_non_null(seqcache_add(sc, id));
	}
	assert_int_equal(seqcache_count(sc), 4);
	assert_null(seqcache_add(sc, "v-9"));
	assert_non_null(seqcache_add(sc, "v-1"));      /* those it has it still finds */
	assert_int_equal(seqcache_count(sc), 4);
	seqcache_free(sc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_waiters_and_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
