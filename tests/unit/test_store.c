/*
 * test_store.c - unit tests for the store (src/store/store_sqlite.c) on a
 * real SQLite file in a temporary directory: transactions (rollback,
 * nesting, poisoning, the owning thread), key rows (and malformed ones
 * written behind the store's back), counters (CAS, never backwards),
 * nonces (replay, expiry, purge), versioned rows (stale puts and deletes),
 * durability across reopen, two threads at once, and the in-place
 * migration of a schema-1 catalog.db.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bs-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/catalog.db", f->dir);
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[512];
	DIR *d;
	struct dirent *de;

	store_close(f->st);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fixture *f)
{
	char err[256] = "";

	store_close(f->st);
	f->st = NULL;
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
}

static struct store_txn *
begin(struct store *st)
{
	struct store_txn *tx = NULL;

	assert_int_equal(store_begin(st, &tx), 0);
	assert_non_null(tx);
	return tx;
}

/* Runs sql on its own connection to path (the test's view of the file). */
static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("sql: %s", msg != NULL ? msg : "?");
	sqlite3_close(db);
}

static int
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void
make_key(struct store_key *k, const char *name, enum bs_purpose p)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->purpose = p;
	k->alg = BS_ALG_ED25519;
	k->state = BS_KEY_ENABLED;
	k->created = 1700000000;
}

static const uint8_t spki_bytes[] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70 };

static void
make_version(struct store_key_version *v, uint32_t ver, uint8_t idbyte)
{
	memset(v, 0, sizeof(*v));
	v->version = ver;
	v->state = BS_KEY_ENABLED;
	v->created = 1700000000 + ver;
	memset(v->hsm_id, idbyte, sizeof(v->hsm_id));
	v->spki = spki_bytes;
	v->spki_len = sizeof(spki_bytes);
}

/* --- key rows ------------------------------------------------------------------ */

struct seen {
	char names[8][STORE_KEY_NAME_MAX + 1];
	uint32_t versions[8];
	uint8_t idbytes[8];
	size_t n;
	int stop_at;     /* return 42 on that row (1-based), 0 never */
};

static int
see_key(void *arg, const struct store_key *k)
{
	struct seen *s = arg;

	if (s->n >= 8)
		return -1;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", k->name);
	s->n++;
	return s->stop_at != 0 && (size_t)s->stop_at == s->n ? 42 : 0;
}

static int
see_version(void *arg, const char *name, const struct store_key_version *v)
{
	struct seen *s = arg;

	if (s->n >= 8 || v->spki_len != sizeof(spki_bytes) ||
	    memcmp(v->spki, spki_bytes, v->spki_len) != 0)
		return -1;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->versions[s->n] = v->version;
	s->idbytes[s->n] = v->hsm_id[0];
	s->n++;
	return 0;
}

static void
test_keys(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	struct store_key k;
	struct store_key_version v;
	struct seen s;
	uint32_t latest = 99;

	make_key(&k, "zeta", BS_PURPOSE_OTA);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), 0);
	make_key(&k, "alpha", BS_PURPOSE_AUDIT);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), 0);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), BS_ERR_EXISTS);
	/* Another namespace has its own names. */
	assert_int_equal(store_key_insert(tx, "other", &k), 0);

	assert_int_equal(store_key_version_latest(tx, STORE_NS_KEYS, "alpha", &latest), 0);
	assert_int_equal(latest, 0);
	make_version(&v, 1, 0x11);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "alpha", &v), 0);
	make_version(&v, 2, 0x12);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "alpha", &v), 0);
	make_version(&v, 1, 0x21);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "zeta", &v), 0);
	assert_int_equal(store_key_version_latest(tx, STORE_NS_KEYS, "alpha", &latest), 0);
	assert_int_equal(latest, 2);

	/* Duplicate number, duplicate hsm_id (even in another key), missing key. */
	make_version(&v, 2, 0x13);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "alpha", &v), BS_ERR_EXISTS);
	make_version(&v, 2, 0x11);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "zeta", &v), BS_ERR_EXISTS);
	make_version(&v, 1, 0x31);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "ghost", &v),
	    BS_ERR_NOT_FOUND);
	assert_int_equal(store_key_version_latest(tx, STORE_NS_KEYS, "ghost", &latest),
	    BS_ERR_NOT_FOUND);
	assert_int_equal(store_key_version_latest(tx, "nothing", "alpha", &latest),
	    BS_ERR_NOT_FOUND);

	/* Malformed arguments (an empty SPKI is a secret key's, and fine). */
	v.spki = NULL;
	v.spki_len = 1;
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "zeta", &v), BS_ERR_INVALID);
	make_version(&v, 0, 0x32);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "zeta", &v), BS_ERR_INVALID);
	make_version(&v, 3, 0x33);
	v.spki_len = STORE_SPKI_MAX + 1;
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "zeta", &v), BS_ERR_INVALID);
	make_key(&k, "", BS_PURPOSE_OTA);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), BS_ERR_INVALID);
	make_key(&k, "a b", BS_PURPOSE_OTA);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), BS_ERR_INVALID);
	memset(k.name, 'x', sizeof(k.name));
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), BS_ERR_INVALID);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, NULL), BS_ERR_INVALID);
	assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, NULL, NULL), BS_ERR_INVALID);

	/* The failures above left the transaction usable. */
	assert_int_equal(store_commit(tx), 0);

	reopen(f);
	tx = begin(f->st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, see_key, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "alpha");
	assert_string_equal(s.names[1], "zeta");
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, see_key, &s), 42);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_version_foreach(tx, STORE_NS_KEYS, see_version, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.names[0], "alpha");
	assert_int_equal(s.versions[0], 1);
	assert_int_equal(s.idbytes[0], 0x11);
	assert_int_equal(s.versions[1], 2);
	assert_string_equal(s.names[2], "zeta");
	assert_int_equal(s.idbytes[2], 0x21);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_foreach(tx, "other", see_key, &s), 0);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_version_foreach(tx, "other", see_version, &s), 0);
	assert_int_equal(s.n, 0);
	store_rollback(tx);
}

/* --- counters -------------------------------------------------------------------- */

static void
test_counters(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	char longname[STORE_ID_MAX + 2];
	uint64_t v = 0;

	assert_int_equal(store_counter_get(tx, "tuf", "root", &v), BS_ERR_NOT_FOUND);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 4, 5), BS_ERR_NOT_FOUND);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", STORE_COUNTER_ABSENT, 5), 0);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", STORE_COUNTER_ABSENT, 7),
	    BS_ERR_EXISTS);
	assert_int_equal(store_counter_get(tx, "tuf", "root", &v), 0);
	assert_int_equal(v, 5);

	/* Standing still or going backwards, with the right expected value. */
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 5, 5), BS_ERR_PRECONDITION);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 5, 4), BS_ERR_PRECONDITION);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 5, 0), BS_ERR_PRECONDITION);
	/* A stale expected value, forwards or not. */
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 4, 9), BS_ERR_PRECONDITION);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 6, 9), BS_ERR_PRECONDITION);
	assert_int_equal(store_counter_get(tx, "tuf", "root", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 5, 6), 0);
	assert_int_equal(store_counter_cas(tx, "tuf", "root", 6, STORE_VALUE_MAX), 0);
	assert_int_equal(store_counter_get(tx, "tuf", "root", &v), 0);
	assert_true(v == STORE_VALUE_MAX);

	/* Namespaces are separate; a counter may start at 0. */
	assert_int_equal(store_counter_get(tx, "checkpoint", "root", &v), BS_ERR_NOT_FOUND);
	assert_int_equal(store_counter_cas(tx, "checkpoint", "root", STORE_COUNTER_ABSENT, 0), 0);
	assert_int_equal(store_counter_get(tx, "checkpoint", "root", &v), 0);
	assert_int_equal(v, 0);

	/* Malformed arguments. */
	assert_int_equal(store_counter_cas(tx, "tuf", "x", STORE_COUNTER_ABSENT,
	    STORE_VALUE_MAX + 1), BS_ERR_INVALID);
	assert_int_equal(store_counter_cas(tx, "tuf", "x", STORE_VALUE_MAX + 1, 1),
	    BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "", "x", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "Tuf", "x", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "-tuf", "x", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "tu f", "x", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, NULL, "x", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "tuf", "", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "tuf", "a b", &v), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "tuf", "x", NULL), BS_ERR_INVALID);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(store_counter_get(tx, "tuf", longname, &v), BS_ERR_INVALID);
	longname[STORE_ID_MAX] = '\0';
	assert_int_equal(store_counter_get(tx, "tuf", longname, &v), BS_ERR_NOT_FOUND);
	assert_int_equal(store_commit(tx), 0);

	reopen(f);
	tx = begin(f->st);
	assert_int_equal(store_counter_get(tx, "tuf", "root", &v), 0);
	assert_true(v == STORE_VALUE_MAX);
	assert_int_equal(store_counter_get(tx, "checkpoint", "root", &v), 0);
	assert_int_equal(v, 0);
	store_rollback(tx);
}

/* --- nonces -------------------------------------------------------------------- */

static void
test_nonces(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	static const uint8_t n1[] = { 0x00, 0x01, 0x02 }, n1b[] = { 0x00, 0x01, 0x03 };
	uint8_t big[STORE_NONCE_MAX + 1];
	uint64_t purged = 99;

	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1000, 1100), 0);
	/* A replay before expiry, even with a later expiry asked for. */
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1050, 2000), BS_ERR_EXISTS);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1099, 1200), BS_ERR_EXISTS);
	/* Other key bytes, other namespace. */
	assert_int_equal(store_nonce_insert(tx, "jws", n1b, sizeof(n1b), 1000, 1100), 0);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, 2, 1000, 1100), 0);
	assert_int_equal(store_nonce_insert(tx, "cmd", n1, sizeof(n1), 1000, 1100), 0);
	/* Expired (expires <= now): replaced, and the new expiry holds. */
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1100, 1300), 0);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1299, 1400), BS_ERR_EXISTS);

	/* Malformed. */
	assert_int_equal(store_nonce_insert(tx, "jws", n1, 0, 1000, 1100), BS_ERR_INVALID);
	assert_int_equal(store_nonce_insert(tx, "jws", NULL, 3, 1000, 1100), BS_ERR_INVALID);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 1000, 1000),
	    BS_ERR_INVALID);
	memset(big, 7, sizeof(big));
	assert_int_equal(store_nonce_insert(tx, "jws", big, sizeof(big), 1000, 1100),
	    BS_ERR_INVALID);
	assert_int_equal(store_nonce_insert(tx, "jws", big, sizeof(big) - 1, 1000, 1100), 0);
	assert_int_equal(store_nonce_purge(tx, "J", 1000, &purged), BS_ERR_INVALID);

	/* Purge: at 1100, n1b, the 2-byte one and big expire in "jws"; "cmd" is separate. */
	assert_int_equal(store_nonce_purge(tx, "jws", 1099, &purged), 0);
	assert_int_equal(purged, 0);
	assert_int_equal(store_nonce_purge(tx, "jws", 1100, &purged), 0);
	assert_int_equal(purged, 3);
	assert_int_equal(store_nonce_insert(tx, "cmd", n1, sizeof(n1), 1200, 1300), 0);
	assert_int_equal(store_nonce_purge(tx, NULL, 5000, NULL), 0);
	assert_int_equal(store_commit(tx), 0);

	tx = begin(f->st);
	assert_int_equal(store_nonce_purge(tx, NULL, 5000, &purged), 0);
	assert_int_equal(purged, 0);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 5000, 5100), 0);
	assert_int_equal(store_commit(tx), 0);

	/* The record survives a reopen. */
	reopen(f);
	tx = begin(f->st);
	assert_int_equal(store_nonce_insert(tx, "jws", n1, sizeof(n1), 5050, 6000), BS_ERR_EXISTS);
	store_rollback(tx);
}

/* --- versioned rows ------------------------------------------------------------- */

static void
expect_row(struct store_txn *tx, const char *ns, const char *id, const char *want, uint64_t ver)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0;

	assert_int_equal(store_row_get(tx, ns, id, &data, &len, &v), 0);
	assert_non_null(data);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	assert_int_equal(v, ver);
	free(data);
}

/* store_row_foreach's callback: "id=data;" appended to a string; stops at "stop". */
struct walk {
	char out[256];
	int calls;
};

static int
walk_cb(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct walk *w = arg;
	size_t n = strlen(w->out);

	w->calls++;
	snprintf(w->out + n, sizeof(w->out) - n, "%s=%.*s@%llu;", id, (int)len,
	    (const char *)data, (unsigned long long)version);
	return strcmp(id, "v/stop") == 0 ? 42 : 0;
}

static void
test_row_foreach(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	struct walk w;
	const char *ids[] = { "v/b", "v/a", "v/c", "w/a", "v%", "v_x" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_int_equal(store_row_put(tx, "vehicles", ids[i], 0, (const uint8_t *)"x", 1,
		    &v), 0);
	assert_int_equal(store_row_put(tx, "other", "v/z", 0, (const uint8_t *)"y", 1, &v), 0);
	assert_int_equal(store_row_put(tx, "vehicles", "v/a", 1, (const uint8_t *)"A", 1, &v), 0);

	/* by prefix, in id order, from the start; the namespace is respected */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_row_foreach(tx, "vehicles", "v/", NULL, 10, walk_cb, &w), 0);
	assert_string_equal(w.out, "v/a=A@2;v/b=x@1;v/c=x@1;");
	/* after an id, and a limit: a page */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_row_foreach(tx, "vehicles", "v/", "v/a", 1, walk_cb, &w), 0);
	assert_string_equal(w.out, "v/b=x@1;");
	/* wildcards of LIKE are plain bytes in a prefix */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_row_foreach(tx, "vehicles", "v%", "", 10, walk_cb, &w), 0);
	assert_string_equal(w.out, "v%=x@1;");
	/* an empty prefix lists the namespace */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_row_foreach(tx, "vehicles", "", NULL, 10, walk_cb, &w), 0);
	assert_int_equal(w.calls, 6);
	/* the callback stops the walk with its value */
	assert_int_equal(store_row_put(tx, "vehicles", "v/stop", 0, (const uint8_t *)"s", 1, &v), 0);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_row_foreach(tx, "vehicles", "v/", "v/c", 10, walk_cb, &w), 42);
	assert_string_equal(w.out, "v/stop=s@1;");
	/* bad arguments */
	assert_int_equal(store_row_foreach(tx, "vehicles", "v/", NULL, 0, walk_cb, &w),
	    BS_ERR_INVALID);
	store_rollback(tx);
	tx = begin(f->st);
	assert_int_equal(store_row_foreach(tx, "vehicles", "v/", NULL, STORE_LIST_MAX + 1, walk_cb,
	    &w), BS_ERR_INVALID);
	store_rollback(tx);
}

static void
test_rows(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	uint8_t *data = (uint8_t *)0x1, *big;
	size_t len = 7;
	uint64_t v = 0;

	assert_int_equal(store_row_get(tx, "approvals", "op-1", &data, &len, &v),
	    BS_ERR_NOT_FOUND);
	assert_ptr_equal(data, (uint8_t *)0x1);
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 1, (const uint8_t *)"a", 1, &v),
	    BS_ERR_NOT_FOUND);
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 0, (const uint8_t *)"a", 1, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 0, (const uint8_t *)"b", 1, &v),
	    BS_ERR_EXISTS);
	/* Stale and future versions. */
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 2, (const uint8_t *)"b", 1, &v),
	    BS_ERR_PRECONDITION);
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 1, (const uint8_t *)"ab", 2, NULL),
	    0);
	assert_int_equal(store_row_put(tx, "approvals", "op-1", 1, (const uint8_t *)"x", 1, &v),
	    BS_ERR_PRECONDITION);
	expect_row(tx, "approvals", "op-1", "ab", 2);
	/* The same id in another namespace is another row. */
	assert_int_equal(store_row_get(tx, "totp", "op-1", &data, &len, &v), BS_ERR_NOT_FOUND);

	/* Empty data. */
	assert_int_equal(store_row_put(tx, "totp", "spiffe://x/admin/alice", 0, NULL, 0, &v), 0);
	expect_row(tx, "totp", "spiffe://x/admin/alice", "", 1);

	/* Deletes: missing, stale, right. */
	assert_int_equal(store_row_delete(tx, "approvals", "op-2", 1), BS_ERR_NOT_FOUND);
	assert_int_equal(store_row_delete(tx, "approvals", "op-1", 1), BS_ERR_PRECONDITION);
	assert_int_equal(store_row_delete(tx, "approvals", "op-1", 3), BS_ERR_PRECONDITION);
	expect_row(tx, "approvals", "op-1", "ab", 2);
	assert_int_equal(store_row_delete(tx, "approvals", "op-1", 2), 0);
	assert_int_equal(store_row_get(tx, "approvals", "op-1", &data, &len, &v),
	    BS_ERR_NOT_FOUND);

	/* Sizes and malformed arguments. */
	big = calloc(1, STORE_DATA_MAX + 1);
	assert_non_null(big);
	assert_int_equal(store_row_put(tx, "cert-serials", "01", 0, big, STORE_DATA_MAX + 1, &v),
	    BS_ERR_TOO_BIG);
	assert_int_equal(store_row_put(tx, "cert-serials", "01", STORE_VALUE_MAX, big, 1, &v),
	    BS_ERR_TOO_BIG);
	assert_int_equal(store_row_put(tx, "cert-serials", "01", 0, big, STORE_DATA_MAX, &v), 0);
	assert_int_equal(store_row_get(tx, "cert-serials", "01", &data, &len, &v), 0);
	assert_int_equal(len, STORE_DATA_MAX);
	free(data);
	free(big);
	assert_int_equal(store_row_put(tx, "cert-serials", "02", 0, NULL, 1, &v), BS_ERR_INVALID);
	assert_int_equal(store_row_put(tx, "cert-serials", "0 2", 0, NULL, 0, &v), BS_ERR_INVALID);
	assert_int_equal(store_row_put(tx, "cert-serials", "", 0, NULL, 0, &v), BS_ERR_INVALID);
	assert_int_equal(store_row_put(tx, "Cert", "02", 0, NULL, 0, &v), BS_ERR_INVALID);
	assert_int_equal(store_row_put(tx, "cert-serials", "02", STORE_VALUE_MAX + 1, NULL, 0, &v),
	    BS_ERR_INVALID);
	assert_int_equal(store_row_delete(tx, "cert-serials", "01", 0), BS_ERR_INVALID);
	assert_int_equal(store_row_get(tx, "cert-serials", "01", NULL, &len, &v), BS_ERR_INVALID);
	assert_int_equal(store_commit(tx), 0);

	reopen(f);
	tx = begin(f->st);
	expect_row(tx, "totp", "spiffe://x/admin/alice", "", 1);
	assert_int_equal(store_row_get(tx, "approvals", "op-1", &data, &len, &v),
	    BS_ERR_NOT_FOUND);
	store_rollback(tx);
}

/* --- transactions ---------------------------------------------------------------- */

static void
test_rollback(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st);
	struct store_key k;
	struct store_key_version kv;
	struct seen s;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0;
	static const uint8_t n[] = { 9, 9 };

	make_key(&k, "gone", BS_PURPOSE_GENERIC);
	assert_int_equal(store_key_insert(tx, STORE_NS_KEYS, &k), 0);
	make_version(&kv, 1, 0x44);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "gone", &kv), 0);
	assert_int_equal(store_counter_cas(tx, "seq", "veh-1", STORE_COUNTER_ABSENT, 1), 0);
	assert_int_equal(store_nonce_insert(tx, "jws", n, sizeof(n), 10, 20), 0);
	assert_int_equal(store_row_put(tx, "approvals", "op", 0, n, sizeof(n), &v), 0);
	store_rollback(tx);

	/* An ended transaction refuses everything. */
	assert_int_equal(store_commit(tx), BS_ERR_INVALID);
	assert_int_equal(store_counter_get(tx, "seq", "veh-1", &v), BS_ERR_INVALID);
	store_rollback(tx);
	store_rollback(NULL);
	assert_int_equal(store_commit(NULL), BS_ERR_INVALID);

	for (int pass = 0; pass < 2; pass++) {
		tx = begin(f->st);
		memset(&s, 0, sizeof(s));
		assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, see_key, &s), 0);
		assert_int_equal(s.n, 0);
		assert_int_equal(store_key_version_foreach(tx, STORE_NS_KEYS, see_version, &s), 0);
		assert_int_equal(s.n, 0);
		assert_int_equal(store_counter_get(tx, "seq", "veh-1", &v), BS_ERR_NOT_FOUND);
		assert_int_equal(store_nonce_insert(tx, "jws", n, sizeof(n), 10, 20), 0);
		assert_int_equal(store_row_get(tx, "approvals", "op", &data, &len, &v),
		    BS_ERR_NOT_FOUND);
		store_rollback(tx);
		reopen(f);
	}
}

static void
test_txn_rules(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = begin(f->st), *tx2 = NULL;
	struct stat sb;
	uint64_t v = 0;

	assert_int_equal(store_begin(NULL, &tx2), BS_ERR_INVALID);
	assert_int_equal(store_begin(f->st, NULL), BS_ERR_INVALID);
	/* Nested on one thread: refused, not a deadlock; the first one still works. */
	assert_int_equal(store_begin(f->st, &tx2), BS_ERR_PRECONDITION);
	assert_null(tx2);
	assert_int_equal(store_counter_cas(tx, "seq", "a", STORE_COUNTER_ABSENT, 3), 0);
	assert_int_equal(store_commit(tx), 0);
	tx = begin(f->st);
	assert_int_equal(store_counter_get(tx, "seq", "a", &v), 0);
	assert_int_equal(v, 3);
	store_rollback(tx);

	/* The file is 0600, and a loose mode is tightened on open. */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(chmod(f->path, 0644), 0);
	reopen(f);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
}

/* A database failure poisons the transaction: nothing of it is committed. */
static void
test_poisoned(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0;

	raw_exec(f->path, "DROP TABLE counters");
	tx = begin(f->st);
	assert_int_equal(store_row_put(tx, "approvals", "op", 0, NULL, 0, &v), 0);
	assert_int_equal(store_counter_get(tx, "seq", "a", &v), BS_ERR_IO);
	assert_int_equal(store_row_get(tx, "approvals", "op", &data, &len, &v), BS_ERR_IO);
	assert_int_equal(store_row_put(tx, "approvals", "p", 0, NULL, 0, &v), BS_ERR_IO);
	assert_int_equal(store_commit(tx), BS_ERR_IO);
	/* The store is usable again and the row was not written. */
	tx = begin(f->st);
	assert_int_equal(store_row_get(tx, "approvals", "op", &data, &len, &v), BS_ERR_NOT_FOUND);
	store_rollback(tx);
}

/* A row written behind the store's back that breaks its rules is refused. */
static void
test_malformed_row(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx;
	struct seen s;

	raw_exec(f->path, "INSERT INTO keys VALUES ('keys', 'a b', 1, 1, 1, 1);"
	    "INSERT INTO keys VALUES ('other', 'ok', 1, 1, 1, 1);"
	    "INSERT INTO key_versions VALUES ('other', 'ok', 4294967296, 1, 1,"
	    " x'41414141414141414141414141414141', x'');");
	tx = begin(f->st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, see_key, &s), BS_ERR_IO);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_commit(tx), BS_ERR_IO);
	tx = begin(f->st);
	assert_int_equal(store_key_foreach(tx, "other", see_key, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(store_key_version_foreach(tx, "other", see_version, &s), BS_ERR_IO);
	store_rollback(tx);
}

struct other_thread {
	struct store_txn *tx;
	int get_rc, commit_rc;
};

static void *
use_foreign_txn(void *p)
{
	struct other_thread *o = p;
	uint64_t v;

	o->get_rc = store_counter_get(o->tx, "seq", "a", &v);
	o->commit_rc = store_commit(o->tx);
	store_rollback(o->tx);
	return NULL;
}

static void
test_txn_owner(void **state)
{
	struct fixture *f = *state;
	struct other_thread o;
	pthread_t th;
	uint64_t v = 0;

	o.tx = begin(f->st);
	assert_int_equal(store_counter_cas(o.tx, "seq", "a", STORE_COUNTER_ABSENT, 1), 0);
	assert_int_equal(pthread_create(&th, NULL, use_foreign_txn, &o), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(o.get_rc, BS_ERR_INVALID);
	assert_int_equal(o.commit_rc, BS_ERR_INVALID);
	/* Still ours, still open. */
	assert_int_equal(store_counter_get(o.tx, "seq", "a", &v), 0);
	assert_int_equal(store_commit(o.tx), 0);
}

/* --- read transactions ------------------------------------------------------------ */

struct reader_thread {
	struct store *st;
	uint64_t seen;
	int rc;
};

/* Another thread's read while the test thread holds the write transaction. */
static void *
read_while_writing(void *p)
{
	struct reader_thread *r = p;
	struct store_txn *rt = NULL;

	if ((r->rc = store_begin_read(r->st, &rt)) == 0) {
		r->rc = store_counter_get(rt, "seq", "a", &r->seen);
		store_rollback(rt);
	}
	return NULL;
}

/* A thread that holds a read transaction until told to let it go. */
struct holder {
	struct store *st;
	sem_t held, release;
	int rc;
};

static void *
hold_reader(void *p)
{
	struct holder *h = p;
	struct store_txn *t = NULL;

	h->rc = store_begin_read(h->st, &t);
	sem_post(&h->held);
	sem_wait(&h->release);
	if (h->rc == 0)
		store_rollback(t);
	return NULL;
}

static void
test_read_txn(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx, *rt[2];
	struct reader_thread r = { f->st, 0, -1 };
	struct holder h[4];
	pthread_t hth[4];
	pthread_t th;
	uint64_t v = 0;
	uint8_t *data = NULL;
	size_t len = 0;
	uint8_t n[2] = { 1, 2 };

	tx = begin(f->st);
	assert_int_equal(store_counter_cas(tx, "seq", "a", STORE_COUNTER_ABSENT, 5), 0);
	assert_int_equal(store_row_put(tx, "rows", "r1", 0, (const uint8_t *)"x", 1, &v), 0);
	assert_int_equal(store_commit(tx), 0);
	/* a snapshot: what was committed, and it does not see a later commit */
	assert_int_equal(store_begin_read(f->st, &rt[0]), 0);
	assert_int_equal(store_counter_get(rt[0], "seq", "a", &v), 0);
	assert_int_equal(v, 5);
	tx = begin(f->st);            /* the writer is not held up by the reader */
	assert_int_equal(store_counter_cas(tx, "seq", "a", 5, 6), 0);
	assert_int_equal(store_commit(tx), 0);
	assert_int_equal(store_counter_get(rt[0], "seq", "a", &v), 0);
	assert_int_equal(v, 5);
	/* writes are refused, and change nothing */
	assert_int_equal(store_counter_cas(rt[0], "seq", "a", 5, 7), BS_ERR_INVALID);
	assert_int_equal(store_row_put(rt[0], "rows", "r2", 0, (const uint8_t *)"y", 1, &v),
	    BS_ERR_INVALID);
	assert_int_equal(store_nonce_insert(rt[0], "race", n, sizeof(n), 0, 100), BS_ERR_INVALID);
	assert_int_equal(store_row_delete(rt[0], "rows", "r1", 1), BS_ERR_INVALID);
	assert_int_equal(store_row_get(rt[0], "rows", "r1", &data, &len, &v), 0);
	assert_int_equal(len, 1);
	free(data);
	store_rollback(rt[0]);
	/* a new snapshot sees the commit; a thread may hold a read and the write at once */
	tx = begin(f->st);
	assert_int_equal(store_begin_read(f->st, &rt[0]), 0);
	assert_int_equal(store_counter_get(rt[0], "seq", "a", &v), 0);
	assert_int_equal(v, 6);
	assert_int_equal(store_begin_read(f->st, &rt[1]), BS_ERR_PRECONDITION);   /* one each */
	assert_int_equal(store_commit(rt[0]), 0);        /* the same as a rollback */
	assert_int_equal(store_counter_cas(tx, "seq", "a", 6, 8), 0);
	/* another thread reads the last commit while this one's write is open */
	assert_int_equal(pthread_create(&th, NULL, read_while_writing, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.seen, 6);
	assert_int_equal(store_commit(tx), 0);
	/* four slots, held by four threads; a fifth thread waits until one is freed */
	for (int i = 0; i < 4; i++) {
		h[i].st = f->st;
		assert_int_equal(sem_init(&h[i].held, 0, 0), 0);
		assert_int_equal(sem_init(&h[i].release, 0, 0), 0);
		assert_int_equal(pthread_create(&hth[i], NULL, hold_reader, &h[i]), 0);
		assert_int_equal(sem_wait(&h[i].held), 0);
		assert_int_equal(h[i].rc, 0);
	}
	r.rc = -1;
	r.seen = 0;
	assert_int_equal(pthread_create(&th, NULL, read_while_writing, &r), 0);
	usleep(200 * 1000);
	assert_int_equal(r.rc, -1);                      /* still waiting */
	assert_int_equal(sem_post(&h[3].release), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.seen, 8);
	for (int i = 0; i < 4; i++) {
		if (i < 3)
			assert_int_equal(sem_post(&h[i].release), 0);
		assert_int_equal(pthread_join(hth[i], NULL), 0);
		sem_destroy(&h[i].held);
		sem_destroy(&h[i].release);
	}
	/* an ended read transaction is refused like an ended write one */
	assert_int_equal(store_counter_get(rt[0], "seq", "a", &v), BS_ERR_INVALID);
	assert_int_equal(store_begin_read(NULL, &rt[0]), BS_ERR_INVALID);
}

/* One process per store: a second store_open on the same path waits (10 s), then fails. */
static void
test_one_opener(void **state)
{
	struct fixture *f = *state;
	struct store *second = NULL;
	char err[256] = "";
	time_t t0 = time(NULL);

	assert_int_equal(store_open(f->path, &second, err, sizeof(err)), BS_ERR_IO);
	assert_null(second);
	assert_non_null(strstr(err, "in use by another process"));
	assert_true(time(NULL) - t0 >= 9);
	/* once the first is closed, it opens */
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), 0);
}

/* --- two threads ----------------------------------------------------------------- */

#define ROUNDS 200

struct racer {
	struct store *st;
	unsigned t;
	unsigned nonce_wins;
	int bad;
};

/* Each round: counter += 1 by get + CAS, and one shared nonce both threads try. */
static void *
racer(void *p)
{
	struct racer *r = p;
	struct store_txn *tx;
	uint64_t v;
	uint8_t nonce[4];
	unsigned i;
	int rc;

	for (i = 0; i < ROUNDS; i++) {
		if (store_begin(r->st, &tx) != 0) {
			r->bad++;
			continue;
		}
		if (store_counter_get(tx, "seq", "shared", &v) != 0 ||
		    store_counter_cas(tx, "seq", "shared", v, v + 1) != 0)
			r->bad++;
		nonce[0] = (uint8_t)(i >> 8);
		nonce[1] = (uint8_t)i;
		nonce[2] = nonce[3] = 0xee;
		rc = store_nonce_insert(tx, "race", nonce, sizeof(nonce), 0, 100);
		if (rc == 0)
			r->nonce_wins++;
		else if (rc != BS_ERR_EXISTS)
			r->bad++;
		if (store_commit(tx) != 0)
			r->bad++;
	}
	return NULL;
}

static void
test_two_threads(void **state)
{
	struct fixture *f = *state;
	struct racer r[2];
	pthread_t th[2];
	struct store_txn *tx = begin(f->st);
	uint64_t v = 0;
	unsigned t;

	assert_int_equal(store_counter_cas(tx, "seq", "shared", STORE_COUNTER_ABSENT, 0), 0);
	assert_int_equal(store_commit(tx), 0);
	for (t = 0; t < 2; t++) {
		memset(&r[t], 0, sizeof(r[t]));
		r[t].st = f->st;
		r[t].t = t;
		assert_int_equal(pthread_create(&th[t], NULL, racer, &r[t]), 0);
	}
	for (t = 0; t < 2; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	assert_int_equal(r[0].bad, 0);
	assert_int_equal(r[1].bad, 0);
	/* Every nonce was won exactly once. */
	assert_int_equal(r[0].nonce_wins + r[1].nonce_wins, ROUNDS);

	reopen(f);
	tx = begin(f->st);
	assert_int_equal(store_counter_get(tx, "seq", "shared", &v), 0);
	assert_int_equal(v, 2 * ROUNDS);
	store_rollback(tx);
}

/* --- open and migration ------------------------------------------------------- */

/* The schema catalog.c created before the store existed, verbatim. */
static const char schema_v1_sql[] =
    "CREATE TABLE IF NOT EXISTS keys ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " purpose INTEGER NOT NULL,"
    " alg INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS key_versions ("
    " key_name TEXT NOT NULL REFERENCES keys(name),"
    " version INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " hsm_id BLOB NOT NULL CHECK (length(hsm_id) = 16),"
    " spki BLOB NOT NULL,"
    " PRIMARY KEY (key_name, version));"
    "CREATE UNIQUE INDEX IF NOT EXISTS key_versions_hsm_id ON key_versions(hsm_id);"
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (1);"
    "PRAGMA user_version = 1;";

/* Rows as the old catalog wrote them (spki_bytes is 302a300506032b6570). */
static const char rows_v1_sql[] =
    "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
    "INSERT INTO keys VALUES ('ota-root', 2, 1, 1, 1711111111);"
    "INSERT INTO keys VALUES ('audit', 6, 2, 2, 1700000000);"
    "INSERT INTO key_versions VALUES ('ota-root', 1, 2, 1711111112,"
    " x'11111111111111111111111111111111', x'302a300506032b6570');"
    "INSERT INTO key_versions VALUES ('ota-root', 2, 1, 1711111113,"
    " x'12121212121212121212121212121212', x'302a300506032b6570');"
    "INSERT INTO key_versions VALUES ('audit', 1, 1, 1700000001,"
    " x'21212121212121212121212121212121', x'302a300506032b6570');";

struct key_rows {
	struct store_key k[4];
	size_t n;
};

static int
copy_key(void *arg, const struct store_key *k)
{
	struct key_rows *r = arg;

	if (r->n >= 4)
		return -1;
	r->k[r->n++] = *k;
	return 0;
}

static void
check_migrated(struct fixture *f)
{
	struct store_txn *tx = begin(f->st);
	struct key_rows kr;
	struct seen s;
	struct store_key_version v;
	uint32_t latest = 0;
	uint64_t c = 0;

	memset(&kr, 0, sizeof(kr));
	assert_int_equal(store_key_foreach(tx, STORE_NS_KEYS, copy_key, &kr), 0);
	assert_int_equal(kr.n, 2);
	assert_string_equal(kr.k[0].name, "audit");
	assert_int_equal(kr.k[0].purpose, BS_PURPOSE_AUDIT);
	assert_int_equal(kr.k[0].alg, BS_ALG_ED25519);
	assert_int_equal(kr.k[0].state, BS_KEY_DISABLED);
	assert_int_equal(kr.k[0].created, 1700000000);
	assert_string_equal(kr.k[1].name, "ota-root");
	assert_int_equal(kr.k[1].purpose, BS_PURPOSE_OTA);
	assert_int_equal(kr.k[1].alg, BS_ALG_ECDSA_P256_SHA256);
	assert_int_equal(kr.k[1].created, 1711111111);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_key_version_foreach(tx, STORE_NS_KEYS, see_version, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.names[0], "audit");
	assert_int_equal(s.idbytes[0], 0x21);
	assert_string_equal(s.names[2], "ota-root");
	assert_int_equal(s.versions[2], 2);
	assert_int_equal(s.idbytes[2], 0x12);
	assert_int_equal(store_key_version_latest(tx, STORE_NS_KEYS, "ota-root", &latest), 0);
	assert_int_equal(latest, 2);

	/* The constraints came along: unique hsm_id, versions need their key. */
	make_version(&v, 3, 0x11);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "ota-root", &v),
	    BS_ERR_EXISTS);
	make_version(&v, 1, 0x77);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "nope", &v),
	    BS_ERR_NOT_FOUND);
	make_version(&v, 3, 0x13);
	assert_int_equal(store_key_version_insert(tx, STORE_NS_KEYS, "ota-root", &v), 0);
	/* And the new tables exist. */
	assert_int_equal(store_counter_cas(tx, "tuf", "targets", STORE_COUNTER_ABSENT, 1), 0);
	assert_int_equal(store_counter_get(tx, "tuf", "targets", &c), 0);
	store_rollback(tx);
}

static void
test_migrate_v1(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	store_close(f->st);
	f->st = NULL;
	unlink(f->path);
	raw_exec(f->path, schema_v1_sql);
	raw_exec(f->path, rows_v1_sql);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);

	assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), 0);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 2);
	assert_int_equal(raw_int(f->path, "SELECT version FROM schema_version"), 2);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_version"), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master "
	    "WHERE name LIKE '%_v1'"), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM key_versions "
	    "WHERE ns = 'keys'"), 3);
	check_migrated(f);
	/* A second open finds schema 2 and changes nothing. */
	reopen(f);
	check_migrated(f);
}

static void
test_migrate_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st = (struct store *)0x1;
	char err[256] = "", p[256];
	FILE *fp;

	/* A schema-1 file whose rows break a foreign key: left at schema 1, rows and all. */
	snprintf(p, sizeof(p), "%s/broken.db", f->dir);
	raw_exec(p, schema_v1_sql);
	raw_exec(p, "INSERT INTO key_versions VALUES ('orphan', 1, 1, 1,"
	    " x'31313131313131313131313131313131', x'30');");
	assert_int_equal(store_open(p, &st, err, sizeof(err)), BS_ERR_IO);
	assert_ptr_equal(st, (struct store *)0x1);
	assert_non_null(strstr(err, p));
	assert_int_equal(raw_int(p, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(p, "SELECT count(*) FROM key_versions WHERE key_name = 'orphan'"),
	    1);
	assert_int_equal(raw_int(p, "SELECT count(*) FROM sqlite_master WHERE name = 'counters'"),
	    0);

	/* A newer schema than this build knows. */
	snprintf(p, sizeof(p), "%s/newer.db", f->dir);
	raw_exec(p, "PRAGMA user_version = 99");
	err[0] = '\0';
	assert_int_equal(store_open(p, &st, err, sizeof(err)), BS_ERR_IO);
	assert_non_null(strstr(err, "99"));

	/* Not a database; no such directory; no path. */
	snprintf(p, sizeof(p), "%s/garbage.db", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	for (int i = 0; i < 40; i++)
		fputs("this is not an SQLite database\n", fp);
	fclose(fp);
	err[0] = '\0';
	assert_int_equal(store_open(p, &st, err, sizeof(err)), BS_ERR_IO);
	assert_true(err[0] != '\0');
	snprintf(p, sizeof(p), "%s/no/such/dir.db", f->dir);
	assert_int_equal(store_open(p, &st, err, sizeof(err)), BS_ERR_IO);
	assert_non_null(strstr(err, p));
	assert_int_equal(store_open(NULL, &st, err, sizeof(err)), BS_ERR_INVALID);
	assert_int_equal(store_open(p, NULL, err, sizeof(err)), BS_ERR_INVALID);
	assert_ptr_equal(st, (struct store *)0x1);
	store_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_foreach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poisoned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_opener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
