/*
 * test_ota_state.c - unit tests for src/services/ota/ota_state.c on a real
 * SQLite store in a temporary directory: stream ids and their refusals; a
 * mark advanced and read back after the store is reopened (durable); a
 * lower or equal version refused as the last line; two signers racing from
 * the same read (the second loses with BS_ERR_PRECONDITION); metadata too
 * big for a row kept as a hash only; a row this module did not write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "services/ota/ota_state.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
};

static void
open_store(struct fixture *f)
{
	char err[256] = "";

	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bs-ota-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	open_store(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[256];
	static const char *const files[] = { "state.db", "state.db-wal", "state.db-shm" };

	store_close(f->st);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store_txn *
begin(struct fixture *f)
{
	struct store_txn *tx = NULL;

	assert_int_equal(store_begin(f->st, &tx), 0);
	return tx;
}

static void
test_ids(void **state)
{
	char id[OTA_MARK_ID_MAX + 1];

	(void)state;
	assert_int_equal(ota_mark_id("trucks-eu", "targets", NULL, id), 0);
	assert_string_equal(id, "mark/trucks-eu/targets");
	assert_int_equal(ota_mark_id("director", "timestamp", "VIN123", id), 0);
	assert_string_equal(id, "mark/director/timestamp@VIN123");
	assert_int_equal(ota_mark_id("r", "supplier/acme", NULL, id), 0);
	assert_int_equal(ota_mark_id("", "targets", NULL, id), BS_ERR_INVALID);
	assert_int_equal(ota_mark_id("a/b", "targets", NULL, id), BS_ERR_INVALID);
	assert_int_equal(ota_mark_id("r", "../x", NULL, id), BS_ERR_INVALID);
	assert_int_equal(ota_mark_id("r", "targets", "v@1", id), BS_ERR_INVALID);
	assert_int_equal(ota_mark_id("r", "targets", "", id), BS_ERR_INVALID);
}

static void
test_advance_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct ota_mark m, again;
	struct store_txn *tx;
	uint8_t a[32], b[32];
	static const char meta[] = "{\"signatures\":[],\"signed\":{\"version\":9}}";
	const char *id = "mark/r/targets";

	memset(a, 0xaa, 32);
	memset(b, 0xbb, 32);
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &m), 0);
	assert_int_equal(m.hw.present, 0);
	assert_int_equal(m.row_version, 0);
	assert_int_equal(ota_mark_put(tx, id, &m, 9, a, (const uint8_t *)meta, strlen(meta)), 0);
	assert_int_equal(store_commit(tx), 0);
	ota_mark_clear(&m);

	/* durable: a new connection to the file sees it */
	store_close(f->st);
	open_store(f);
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &m), 0);
	assert_int_equal(m.hw.present, 1);
	assert_int_equal(m.hw.version, 9);
	assert_memory_equal(m.hw.sha256, a, 32);
	assert_int_equal(m.metadata_len, strlen(meta));
	assert_memory_equal(m.metadata, meta, strlen(meta));
	assert_int_equal(tuf_meta_order(&m.hw, 9, a), TUF_ORDER_SAME);
	assert_int_equal(tuf_meta_order(&m.hw, 9, b), TUF_ORDER_FORK);
	assert_int_equal(tuf_meta_order(&m.hw, 8, a), TUF_ORDER_ROLLBACK);
	/* the last line: never back, never the same version twice */
	assert_int_equal(ota_mark_put(tx, id, &m, 8, b, NULL, 0), BS_ERR_PRECONDITION);
	assert_int_equal(ota_mark_put(tx, id, &m, 9, b, NULL, 0), BS_ERR_PRECONDITION);
	assert_int_equal(ota_mark_put(tx, id, &m, 10, b, NULL, 0), 0);
	assert_int_equal(store_commit(tx), 0);

	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &again), 0);
	assert_int_equal(again.hw.version, 10);
	assert_null(again.metadata);
	store_rollback(tx);
	ota_mark_clear(&again);
	ota_mark_clear(&m);
}

static void
test_race(void **state)
{
	struct fixture *f = *state;
	struct ota_mark first, second;
	struct store_txn *tx;
	uint8_t a[32] = { 1 }, b[32] = { 2 };
	const char *id = "mark/r/timestamp";

	/* both signers read "nothing yet" */
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &first), 0);
	store_rollback(tx);
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &second), 0);
	store_rollback(tx);
	/* the first commits version 1; the second, from its stale read, loses */
	tx = begin(f);
	assert_int_equal(ota_mark_put(tx, id, &first, 1, a, NULL, 0), 0);
	assert_int_equal(store_commit(tx), 0);
	tx = begin(f);
	assert_int_equal(ota_mark_put(tx, id, &second, 1, b, NULL, 0), BS_ERR_PRECONDITION);
	store_rollback(tx);
	/* and after reading again, it must go higher */
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, id, &second), 0);
	assert_int_equal(ota_mark_put(tx, id, &second, 2, b, NULL, 0), 0);
	assert_int_equal(store_commit(tx), 0);
	ota_mark_clear(&first);
	ota_mark_clear(&second);
}

static void
test_big_and_foreign(void **state)
{
	struct fixture *f = *state;
	struct ota_mark m;
	struct store_txn *tx;
	uint8_t a[32] = { 3 }, *big = calloc(1, STORE_DATA_MAX);
	static const uint8_t junk[] = "not a mark";

	assert_non_null(big);
	tx = begin(f);
	assert_int_equal(ota_mark_get(tx, "mark/r/snapshot", &m), 0);
	assert_int_equal(ota_mark_put(tx, "mark/r/snapshot", &m, 1, a, big, STORE_DATA_MAX), 0);
	ota_mark_clear(&m);
	assert_int_equal(ota_mark_get(tx, "mark/r/snapshot", &m), 0);
	assert_int_equal(m.hw.version, 1);
	assert_null(m.metadata);   /* too big to keep: the hash still guards the version */
	ota_mark_clear(&m);
	assert_int_equal(store_row_put(tx, OTA_STORE_NS, "mark/r/root", 0, junk, sizeof(junk),
	    NULL), 0);
	assert_int_equal(ota_mark_get(tx, "mark/r/root", &m), BS_ERR_INVALID);
	assert_int_equal(store_commit(tx), 0);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test_setup_teardown(test_advance_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_and_foreign, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
