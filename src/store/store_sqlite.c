/*
 * store_sqlite.c - the SQLite backend of store.h: one database file in the
 * state directory (catalog.db): one connection for the writer behind one
 * mutex, and up to STORE_READERS read-only connections for snapshot reads.
 *
 * Durability: the database runs in WAL mode with synchronous=FULL, so the
 * WAL is fsynced at every COMMIT; every transaction is BEGIN IMMEDIATE (the
 * write lock is taken up front, so no reader ever has to be upgraded). The
 * file is created mode 0600 and SQLite gives its -wal and -shm files the
 * same mode.
 *
 * Schema (PRAGMA user_version and the schema_version table both say which):
 *  1  what the key catalog created before the store existed: keys(name,
 *     ...), key_versions(key_name, version, ...).
 *  2  keys and key_versions gain a leading ns column (rows of schema 1 go
 *     to namespace "keys"), plus counters, nonces and versioned_rows.
 * store_open() migrates 1 to 2 in place in one transaction: the old tables
 * are renamed, the new ones created and filled from them, the old ones
 * dropped; foreign keys are checked before the commit.
 *
 * Threads: see store.h. The write transaction of a store lives inside it
 * (there is only ever one); the mutex is an error-checking one, so a nested
 * store_begin() on one thread is refused instead of deadlocking. A read
 * transaction (store_begin_read) takes a free reader slot, each with its
 * own read-only connection opened on first use; in WAL mode its snapshot
 * neither waits for nor blocks the writer. A statement that would write is
 * refused in it (sqlite3_stmt_readonly).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "store/store.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_READERS 4
#define STORE_LOCK_POLL_MS 50

#define STR_(x) #x
#define STR(x) STR_(x)

struct store_txn {
	struct store *st;
	sqlite3 *db;                 /* the writer's connection, or a reader's */
	int reader;                  /* 1: a read transaction (a reader slot's) */
	pthread_t owner;
	int active;
	int poisoned;
};

/* A reader slot: its connection (read-only, opened on first use) and transaction. */
struct reader {
	sqlite3 *db;
	struct store_txn txn;
	int busy;                    /* guarded by the store's rmu */
};

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;          /* held from store_begin to commit/rollback */
	int mu_ok;
	char *path;
	struct store_txn txn;        /* the one transaction, valid while mu is held */
	pthread_mutex_t rmu;         /* guards the readers' busy flags */
	pthread_cond_t rcv;          /* signalled when a reader slot is freed */
	int rmu_ok;
	struct reader readers[STORE_READERS];
	int lock_fd;                 /* PATH.lock, flock()ed: one process per store */
};

/* --- schema ------------------------------------------------------------------ */

/* The key tables of schema 2; the migration from 1 creates them again. */
static const char key_tables_sql[] =
    "CREATE TABLE keys ("
    " ns TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " purpose INTEGER NOT NULL,"
    " alg INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " PRIMARY KEY (ns, name));"
    "CREATE TABLE key_versions ("
    " ns TEXT NOT NULL,"
    " key_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " hsm_id BLOB NOT NULL CHECK (length(hsm_id) = 16),"
    " spki BLOB NOT NULL,"
    " PRIMARY KEY (ns, key_name, version),"
    " FOREIGN KEY (ns, key_name) REFERENCES keys (ns, name));"
    "CREATE UNIQUE INDEX key_versions_hsm_id ON key_versions (hsm_id);";

/* The tables schema 2 adds, and its version stamp. */
static const char state_tables_sql[] =
    "CREATE TABLE counters ("
    " ns TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " value INTEGER NOT NULL CHECK (value >= 0),"
    " PRIMARY KEY (ns, name));"
    "CREATE TABLE nonces ("
    " ns TEXT NOT NULL,"
    " nonce BLOB NOT NULL,"
    " expires INTEGER NOT NULL,"
    " PRIMARY KEY (ns, nonce));"
    "CREATE INDEX nonces_expires ON nonces (expires);"
    "CREATE TABLE versioned_rows ("
    " ns TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " data BLOB NOT NULL,"
    " PRIMARY KEY (ns, id));"
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "DELETE FROM schema_version;"
    "INSERT INTO schema_version (version) VALUES (" STR(STORE_SCHEMA_VERSION) ");"
    "PRAGMA user_version = " STR(STORE_SCHEMA_VERSION) ";";

/* Schema 1 -> 2, part one: move the old key tables aside. */
static const char migrate_1_aside_sql[] =
    "ALTER TABLE key_versions RENAME TO key_versions_v1;"
    "ALTER TABLE keys RENAME TO keys_v1;"
    "DROP INDEX key_versions_hsm_id;";

/* Part two, after key_tables_sql: copy every row into namespace "keys". */
static const char migrate_1_copy_sql[] =
    "INSERT INTO keys (ns, name, purpose, alg, state, created)"
    " SELECT '" STORE_NS_KEYS "', name, purpose, alg, state, created FROM keys_v1;"
    "INSERT INTO key_versions (ns, key_name, version, state, created, hsm_id, spki)"
    " SELECT '" STORE_NS_KEYS "', key_name, version, state, created, hsm_id, spki"
    " FROM key_versions_v1;"
    "DROP TABLE key_versions_v1;"
    "DROP TABLE keys_v1;";

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
exec_sql(sqlite3 *db, const char *sql, const char *path, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_err(err, errlen, "store %s: %s", path, msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return BS_ERR_IO;
	}
	return 0;
}

/* Runs a one-row, one-column integer query (a pragma). */
static int
query_int(sqlite3 *db, const char *sql, int *out, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = BS_ERR_IO;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		set_err(err, errlen, "store %s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	*out = sqlite3_column_int(s, 0);
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

/*
 * The store's one writer process: an exclusive flock() on PATH.lock (a file
 * of its own: closing any descriptor of the database itself would drop
 * SQLite's POSIX locks), held until store_close. Another process holding it
 * is waited for up to the busy timeout (a daemon being restarted), then
 * refused. The services rely on it: what they remember between calls (the
 * vehicle registry's generation, reserved sequence numbers) is this
 * process's.
 */
static int
lock_store(const char *path, int *fd_out, char *err, size_t errlen)
{
	char lp[4096];
	int fd, waited = 0;

	if (snprintf(lp, sizeof(lp), "%s.lock", path) >= (int)sizeof(lp)) {
		set_err(err, errlen, "store %s: path too long", path);
		return BS_ERR_IO;
	}
	fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		set_err(err, errlen, "store %s: cannot open %s: %s", path, lp, strerror(errno));
		return BS_ERR_IO;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || waited >= STORE_BUSY_TIMEOUT_MS) {
			set_err(err, errlen, "store %s: in use by another process (another boltsealed "
			    "on this state directory?): %s", path, strerror(errno));
			close(fd);
			return BS_ERR_IO;
		}
		usleep(STORE_LOCK_POLL_MS * 1000);
		waited += STORE_LOCK_POLL_MS;
	}
	*fd_out = fd;
	return 0;
}

/* Creates the file with mode 0600 if missing; tightens the mode of an existing one. */
static int
create_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		set_err(err, errlen, "store %s: cannot open: %s", path, strerror(errno));
		return BS_ERR_IO;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		set_err(err, errlen, "store %s: not a regular file", path);
		close(fd);
		return BS_ERR_IO;
	}
	if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
		set_err(err, errlen, "store %s: cannot chmod 0600: %s", path, strerror(errno));
		close(fd);
		return BS_ERR_IO;
	}
	close(fd);
	return 0;
}

static int
set_pragmas(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *mode;
	int rc = BS_ERR_IO;

	/* journal_mode returns the resulting mode; it must really be WAL. */
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		set_err(err, errlen, "store %s: journal_mode: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	mode = sqlite3_column_text(s, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		set_err(err, errlen, "store %s: cannot enable WAL journal mode", path);
		goto out;
	}
	rc = exec_sql(db, "PRAGMA synchronous=FULL; PRAGMA legacy_alter_table=OFF;", path, err,
	    errlen);
out:
	sqlite3_finalize(s);
	return rc;
}

/* Inside the migration transaction: no row may have lost its key. */
static int
foreign_keys_intact(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int step;

	if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK) {
		set_err(err, errlen, "store %s: %s", path, sqlite3_errmsg(db));
		return BS_ERR_IO;
	}
	step = sqlite3_step(s);
	sqlite3_finalize(s);
	if (step != SQLITE_DONE) {
		set_err(err, errlen, "store %s: migration: %s", path, step == SQLITE_ROW ?
		    "a key version without its key" : sqlite3_errmsg(db));
		return BS_ERR_IO;
	}
	return 0;
}

/* In one IMMEDIATE transaction: creates schema 2 or migrates schema 1 to it. */
static int
schema_txn(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int uv, rc;

	if ((rc = exec_sql(db, "BEGIN IMMEDIATE", path, err, errlen)) != 0)
		return rc;
	/* Read under the write lock: another process may have just migrated. */
	if ((rc = query_int(db, "PRAGMA user_version", &uv, path, err, errlen)) != 0)
		goto out;
	switch (uv) {
	case 0:
		if ((rc = exec_sql(db, key_tables_sql, path, err, errlen)) != 0 ||
		    (rc = exec_sql(db, state_tables_sql, path, err, errlen)) != 0)
			goto out;
		break;
	case 1:
		if ((rc = exec_sql(db, migrate_1_aside_sql, path, err, errlen)) != 0 ||
		    (rc = exec_sql(db, key_tables_sql, path, err, errlen)) != 0 ||
		    (rc = exec_sql(db, migrate_1_copy_sql, path, err, errlen)) != 0 ||
		    (rc = exec_sql(db, state_tables_sql, path, err, errlen)) != 0 ||
		    (rc = foreign_keys_intact(db, path, err, errlen)) != 0)
			goto out;
		bs_log(BS_LOG_INFO, "store: migrated schema 1 to " STR(STORE_SCHEMA_VERSION),
		    "path", path, NULL);
		break;
	case STORE_SCHEMA_VERSION:
		break;
	default:
		set_err(err, errlen, "store %s: schema version %d is not supported (expected %d "
		    "or older)", path, uv, STORE_SCHEMA_VERSION);
		rc = BS_ERR_IO;
		goto out;
	}
	rc = exec_sql(db, "COMMIT", path, err, errlen);
out:
	if (rc != 0 && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
setup_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int rc;

	/* Foreign keys stay off while tables are rebuilt (it cannot change inside BEGIN). */
	if ((rc = exec_sql(db, "PRAGMA foreign_keys=OFF", path, err, errlen)) != 0)
		return rc;
	rc = schema_txn(db, path, err, errlen);
	if (rc == 0)
		rc = exec_sql(db, "PRAGMA foreign_keys=ON", path, err, errlen);
	return rc;
}

/* --- open, close, transactions --------------------------------------------- */

int
store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	struct store *st = NULL;
	pthread_mutexattr_t attr;
	int rc;

	if (path == NULL || out == NULL) {
		set_err(err, errlen, "store: no path");
		return BS_ERR_INVALID;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		return BS_ERR_NOMEM;
	}
	st->lock_fd = -1;
	if (pthread_mutexattr_init(&attr) != 0) {
		rc = BS_ERR_INTERNAL;
		goto out;
	}
	if (pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK) == 0 &&
	    pthread_mutex_init(&st->mu, &attr) == 0)
		st->mu_ok = 1;
	pthread_mutexattr_destroy(&attr);
	if (!st->mu_ok) {
		rc = BS_ERR_INTERNAL;
		goto out;
	}
	if (pthread_mutex_init(&st->rmu, NULL) != 0) {
		rc = BS_ERR_INTERNAL;
		goto out;
	}
	if (pthread_cond_init(&st->rcv, NULL) != 0) {
		pthread_mutex_destroy(&st->rmu);
		rc = BS_ERR_INTERNAL;
		goto out;
	}
	st->rmu_ok = 1;
	if ((rc = lock_store(path, &st->lock_fd, err, errlen)) != 0 ||
	    (rc = create_file(path, err, errlen)) != 0)
		goto out;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
	    NULL) != SQLITE_OK) {
		set_err(err, errlen, "store %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : "cannot open");
		rc = BS_ERR_IO;
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if ((rc = set_pragmas(st->db, path, err, errlen)) != 0 ||
	    (rc = setup_schema(st->db, path, err, errlen)) != 0)
		goto out;
	*out = st;
	st = NULL;
	rc = 0;
out:
	store_close(st);
	return rc;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < STORE_READERS; i++)
		sqlite3_close(st->readers[i].db);
	sqlite3_close(st->db);
	if (st->mu_ok)
		pthread_mutex_destroy(&st->mu);
	if (st->rmu_ok) {
		pthread_mutex_destroy(&st->rmu);
		pthread_cond_destroy(&st->rcv);
	}
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->path);
	free(st);
}

/* Logs the database's last error and poisons tx. */
static int
db_fail(struct store_txn *tx, const char *what)
{
	bs_log(BS_LOG_ERROR, "store: database error", "path", tx->st->path, "op", what, "error",
	    sqlite3_errmsg(tx->db), NULL);
	tx->poisoned = 1;
	return BS_ERR_IO;
}

static int
txn_check(const struct store_txn *tx)
{
	if (tx == NULL || !tx->active || !pthread_equal(tx->owner, pthread_self()))
		return BS_ERR_INVALID;
	return tx->poisoned ? BS_ERR_IO : 0;
}

/* Bad arguments: the transaction's own state wins, then code. */
static int
refuse(const struct store_txn *tx, int code)
{
	int rc = txn_check(tx);

	return rc != 0 ? rc : code;
}

static void
txn_end(struct store_txn *tx)
{
	struct store *st = tx->st;

	if (!sqlite3_get_autocommit(tx->db))
		sqlite3_exec(tx->db, "ROLLBACK", NULL, NULL, NULL);
	tx->active = 0;
	tx->poisoned = 0;
	if (!tx->reader) {
		pthread_mutex_unlock(&st->mu);
		return;
	}
	pthread_mutex_lock(&st->rmu);
	((struct reader *)((char *)tx - offsetof(struct reader, txn)))->busy = 0;
	pthread_cond_signal(&st->rcv);
	pthread_mutex_unlock(&st->rmu);
}

int
store_begin(struct store *st, struct store_txn **out)
{
	int e;

	if (st == NULL || out == NULL)
		return BS_ERR_INVALID;
	if ((e = pthread_mutex_lock(&st->mu)) != 0)
		return e == EDEADLK ? BS_ERR_PRECONDITION : BS_ERR_INTERNAL;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		bs_log(BS_LOG_ERROR, "store: cannot begin a transaction", "path", st->path,
		    "error", sqlite3_errmsg(st->db), NULL);
		pthread_mutex_unlock(&st->mu);
		return BS_ERR_IO;
	}
	st->txn.st = st;
	st->txn.db = st->db;
	st->txn.reader = 0;
	st->txn.owner = pthread_self();
	st->txn.active = 1;
	st->txn.poisoned = 0;
	*out = &st->txn;
	return 0;
}

int
store_begin_read(struct store *st, struct store_txn **out)
{
	struct reader *r = NULL;
	int rc;

	if (st == NULL || out == NULL)
		return BS_ERR_INVALID;
	pthread_mutex_lock(&st->rmu);
	/* one read transaction per thread: a second could wait forever for a slot */
	for (size_t i = 0; i < STORE_READERS; i++)
		if (st->readers[i].busy && pthread_equal(st->readers[i].txn.owner, pthread_self())) {
			pthread_mutex_unlock(&st->rmu);
			return BS_ERR_PRECONDITION;
		}
	for (;;) {
		for (size_t i = 0; i < STORE_READERS && r == NULL; i++)
			if (!st->readers[i].busy)
				r = &st->readers[i];
		if (r != NULL)
			break;
		pthread_cond_wait(&st->rcv, &st->rmu);
	}
	r->busy = 1;
	r->txn.owner = pthread_self();
	pthread_mutex_unlock(&st->rmu);
	r->txn.st = st;
	r->txn.db = r->db;
	r->txn.reader = 1;
	r->txn.active = 1;
	r->txn.poisoned = 0;
	if (r->db == NULL) {
		rc = sqlite3_open_v2(st->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
		r->txn.db = r->db;
		if (rc != SQLITE_OK) {
			bs_log(BS_LOG_ERROR, "store: cannot open a reader", "path", st->path, "error",
			    r->db != NULL ? sqlite3_errmsg(r->db) : "out of memory", NULL);
			sqlite3_close(r->db);
			r->db = NULL;
			r->txn.db = NULL;
			r->txn.active = 0;
			pthread_mutex_lock(&st->rmu);
			r->busy = 0;
			pthread_cond_signal(&st->rcv);
			pthread_mutex_unlock(&st->rmu);
			return BS_ERR_IO;
		}
		sqlite3_extended_result_codes(r->db, 1);
		sqlite3_busy_timeout(r->db, STORE_BUSY_TIMEOUT_MS);
	}
	/* deferred: the snapshot is taken at the first read, and never blocks the writer */
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		bs_log(BS_LOG_ERROR, "store: cannot begin a read transaction", "path", st->path,
		    "error", sqlite3_errmsg(r->db), NULL);
		txn_end(&r->txn);
		return BS_ERR_IO;
	}
	*out = &r->txn;
	return 0;
}

int
store_commit(struct store_txn *tx)
{
	int rc;

	if ((rc = txn_check(tx)) == BS_ERR_INVALID)
		return rc;
	if (rc == 0 && sqlite3_exec(tx->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_fail(tx, "commit");
	txn_end(tx);
	return rc;
}

void
store_rollback(struct store_txn *tx)
{
	if (txn_check(tx) != BS_ERR_INVALID)
		txn_end(tx);
}

/* --- statement helpers ----------------------------------------------------- */

/* 1 if s is lo..hi characters of printable ASCII without spaces. */
static int
printable_ok(const char *s, size_t lo, size_t hi)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= hi || s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	}
	return i >= lo;
}

static int
ns_ok(const char *ns)
{
	size_t i;
	char c;

	if (ns == NULL)
		return 0;
	for (i = 0; ns[i] != '\0'; i++) {
		c = ns[i];
		if (i >= STORE_NS_MAX)
			return 0;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i == 0 || (c != '.' && c != '_' && c != '-'))
			return 0;
	}
	return i > 0;
}

/* Common checks, then a prepared statement with ?1 bound to ns (if not NULL). */
static int
prepare(struct store_txn *tx, const char *ns, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = txn_check(tx)) != 0)
		return rc;
	if (sqlite3_prepare_v2(tx->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(tx, "prepare");
	if (tx->reader && !sqlite3_stmt_readonly(s)) {
		sqlite3_finalize(s);
		return BS_ERR_INVALID;        /* a write in a read transaction */
	}
	if (ns != NULL && sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(s);
		return db_fail(tx, "bind");
	}
	*out = s;
	return 0;
}

static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) != SQLITE_OK;
}

static int
bind_i64(sqlite3_stmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(s, i, (sqlite3_int64)v) != SQLITE_OK;
}

/* An empty blob is bound as a zero-length blob, never as NULL. */
static int
bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n)
{
	if (n == 0)
		return sqlite3_bind_zeroblob(s, i, 0) != SQLITE_OK;
	return sqlite3_bind_blob(s, i, p, (int)n, SQLITE_STATIC) != SQLITE_OK;
}

/* Steps a write: 0, BS_ERR_EXISTS (unique), BS_ERR_NOT_FOUND (foreign key), or poisons. */
static int
step_write(struct store_txn *tx, sqlite3_stmt *s, const char *what)
{
	if (sqlite3_step(s) == SQLITE_DONE)
		return 0;
	switch (sqlite3_extended_errcode(tx->db)) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return BS_ERR_EXISTS;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return BS_ERR_NOT_FOUND;
	default:
		return db_fail(tx, what);
	}
}

/* Steps a write whose effect is judged by the number of changed rows. */
static int
step_changes(struct store_txn *tx, sqlite3_stmt *s, const char *what, int *changes)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(tx, what);
	*changes = sqlite3_changes(tx->db);
	return 0;
}

/* Steps a query expected to give at most one row: 1 row, 0 none, or BS_ERR_IO. */
static int
step_row(struct store_txn *tx, sqlite3_stmt *s, const char *what)
{
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		return 1;
	case SQLITE_DONE:
		return 0;
	default:
		return db_fail(tx, what);
	}
}

/* A stored row that breaks the schema's rules: the file is damaged; poisons tx. */
static int
malformed(struct store_txn *tx, const char *table)
{
	bs_log(BS_LOG_ERROR, "store: malformed row", "path", tx->st->path, "table", table, NULL);
	tx->poisoned = 1;
	return BS_ERR_IO;
}

/* --- key catalog rows ------------------------------------------------------- */

static int
key_name_ok(const char *name)
{
	return name != NULL && memchr(name, '\0', STORE_KEY_NAME_MAX + 1) != NULL &&
	    printable_ok(name, 1, STORE_KEY_NAME_MAX);
}

int
store_key_insert(struct store_txn *tx, const char *ns, const struct store_key *k)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (!ns_ok(ns) || k == NULL || !key_name_ok(k->name))
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "INSERT INTO keys (ns, name, purpose, alg, state, created) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != 0)
		return rc;
	if (bind_text(s, 2, k->name) || bind_i64(s, 3, k->purpose) || bind_i64(s, 4, k->alg) ||
	    bind_i64(s, 5, k->state) || bind_i64(s, 6, k->created))
		rc = db_fail(tx, "bind");
	else
		rc = step_write(tx, s, "insert key");
	sqlite3_finalize(s);
	return rc;
}

int
store_key_version_insert(struct store_txn *tx, const char *ns, const char *name,
    const struct store_key_version *v)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (!ns_ok(ns) || !key_name_ok(name) || v == NULL || v->version < 1 ||
	    (v->spki == NULL && v->spki_len > 0) || v->spki_len > STORE_SPKI_MAX)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "INSERT INTO key_versions "
	    "(ns, key_name, version, state, created, hsm_id, spki) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s)) != 0)
		return rc;
	if (bind_text(s, 2, name) || bind_i64(s, 3, v->version) || bind_i64(s, 4, v->state) ||
	    bind_i64(s, 5, v->created) || bind_blob(s, 6, v->hsm_id, STORE_KEY_ID_LEN) ||
	    bind_blob(s, 7, v->spki, v->spki_len))
		rc = db_fail(tx, "bind");
	else
		rc = step_write(tx, s, "insert key version");
	sqlite3_finalize(s);
	return rc;
}

int
store_key_version_latest(struct store_txn *tx, const char *ns, const char *name, uint32_t *out)
{
	sqlite3_stmt *s = NULL;
	sqlite3_int64 max;
	int rc;

	if (!ns_ok(ns) || !key_name_ok(name) || out == NULL)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "SELECT "
	    "(SELECT count(*) FROM keys WHERE ns = ?1 AND name = ?2), "
	    "(SELECT coalesce(max(version), 0) FROM key_versions WHERE ns = ?1 AND key_name = ?2)",
	    &s)) != 0)
		return rc;
	if (bind_text(s, 2, name)) {
		rc = db_fail(tx, "bind");
		goto out;
	}
	if ((rc = step_row(tx, s, "latest version")) != 1) {
		rc = rc == 0 ? db_fail(tx, "latest version") : rc;
		goto out;
	}
	if (sqlite3_column_int64(s, 0) == 0) {
		rc = BS_ERR_NOT_FOUND;
		goto out;
	}
	max = sqlite3_column_int64(s, 1);
	if (max < 0 || max > UINT32_MAX) {
		rc = malformed(tx, "key_versions");
		goto out;
	}
	*out = (uint32_t)max;
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

/* Copies a stored key name into name (STORE_KEY_NAME_MAX + 1 bytes); 0 or -1. */
static int
column_name(sqlite3_stmt *s, int col, char *name)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);

	if (t == NULL || n < 1 || n > STORE_KEY_NAME_MAX)
		return -1;
	memcpy(name, t, (size_t)n);
	name[n] = '\0';
	return key_name_ok(name) ? 0 : -1;
}

int
store_key_foreach(struct store_txn *tx, const char *ns, store_key_cb cb, void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_key k;
	int rc;

	if (!ns_ok(ns) || cb == NULL)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "SELECT name, purpose, alg, state, created FROM keys "
	    "WHERE ns = ?1 ORDER BY name", &s)) != 0)
		return rc;
	while ((rc = step_row(tx, s, "list keys")) == 1) {
		memset(&k, 0, sizeof(k));
		if (column_name(s, 0, k.name) != 0) {
			rc = malformed(tx, "keys");
			break;
		}
		k.purpose = (enum bs_purpose)sqlite3_column_int(s, 1);
		k.alg = (enum bs_alg)sqlite3_column_int(s, 2);
		k.state = (enum bs_key_state)sqlite3_column_int(s, 3);
		k.created = sqlite3_column_int64(s, 4);
		if ((rc = cb(arg, &k)) != 0)
			break;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_key_version_foreach(struct store_txn *tx, const char *ns, store_key_version_cb cb,
    void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_key_version v;
	char name[STORE_KEY_NAME_MAX + 1];
	sqlite3_int64 ver;
	int rc, n;

	if (!ns_ok(ns) || cb == NULL)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "SELECT key_name, version, state, created, hsm_id, spki "
	    "FROM key_versions WHERE ns = ?1 ORDER BY key_name, version", &s)) != 0)
		return rc;
	while ((rc = step_row(tx, s, "list key versions")) == 1) {
		memset(&v, 0, sizeof(v));
		ver = sqlite3_column_int64(s, 1);
		n = sqlite3_column_bytes(s, 5);
		v.spki = sqlite3_column_blob(s, 5);
		if (column_name(s, 0, name) != 0 || ver < 1 || ver > UINT32_MAX ||
		    sqlite3_column_bytes(s, 4) != STORE_KEY_ID_LEN ||
		    sqlite3_column_blob(s, 4) == NULL || (v.spki == NULL && n > 0) || n < 0 ||
		    n > STORE_SPKI_MAX) {
			rc = malformed(tx, "key_versions");
			break;
		}
		v.version = (uint32_t)ver;
		v.state = (enum bs_key_state)sqlite3_column_int(s, 2);
		v.created = sqlite3_column_int64(s, 3);
		memcpy(v.hsm_id, sqlite3_column_blob(s, 4), STORE_KEY_ID_LEN);
		v.spki_len = (size_t)n;
		if ((rc = cb(arg, name, &v)) != 0)
			break;
	}
	sqlite3_finalize(s);
	return rc;
}

/* --- monotonic counters ------------------------------------------------------ */

int
store_counter_get(struct store_txn *tx, const char *ns, const char *name, uint64_t *out)
{
	sqlite3_stmt *s = NULL;
	sqlite3_int64 val;
	int rc;

	if (!ns_ok(ns) || !printable_ok(name, 1, STORE_ID_MAX) || out == NULL)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "SELECT value FROM counters WHERE ns = ?1 AND name = ?2",
	    &s)) != 0)
		return rc;
	if (bind_text(s, 2, name)) {
		rc = db_fail(tx, "bind");
		goto out;
	}
	if ((rc = step_row(tx, s, "get counter")) != 1) {
		rc = rc == 0 ? BS_ERR_NOT_FOUND : rc;
		goto out;
	}
	if ((val = sqlite3_column_int64(s, 0)) < 0) {
		rc = malformed(tx, "counters");
		goto out;
	}
	*out = (uint64_t)val;
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
store_counter_cas(struct store_txn *tx, const char *ns, const char *name, uint64_t expected,
    uint64_t newv)
{
	sqlite3_stmt *s = NULL;
	uint64_t cur;
	int rc, changes = 0, create = expected == STORE_COUNTER_ABSENT;

	if (!ns_ok(ns) || !printable_ok(name, 1, STORE_ID_MAX) || newv > STORE_VALUE_MAX ||
	    (!create && expected > STORE_VALUE_MAX))
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, create ?
	    "INSERT INTO counters (ns, name, value) VALUES (?1, ?2, ?3) "
	    "ON CONFLICT (ns, name) DO NOTHING" :
	    "UPDATE counters SET value = ?3 WHERE ns = ?1 AND name = ?2 AND value = ?4 "
	    "AND ?3 > ?4", &s)) != 0)
		return rc;
	if (bind_text(s, 2, name) || bind_i64(s, 3, (int64_t)newv) ||
	    (!create && bind_i64(s, 4, (int64_t)expected)))
		rc = db_fail(tx, "bind");
	else
		rc = step_changes(tx, s, "set counter", &changes);
	sqlite3_finalize(s);
	if (rc != 0 || changes == 1)
		return rc;
	if (create)
		return BS_ERR_EXISTS;
	/* Nothing changed: absent, moved by someone else, or not forward. */
	if ((rc = store_counter_get(tx, ns, name, &cur)) != 0)
		return rc;
	return BS_ERR_PRECONDITION;
}

/* --- insert-if-absent records with expiry ---------------------------------- */

int
store_nonce_insert(struct store_txn *tx, const char *ns, const uint8_t *key, size_t keylen,
    int64_t now, int64_t expires)
{
	sqlite3_stmt *s = NULL;
	int rc, changes = 0;

	if (!ns_ok(ns) || key == NULL || keylen == 0 || keylen > STORE_NONCE_MAX ||
	    expires <= now)
		return refuse(tx, BS_ERR_INVALID);
	/* An existing record is replaced only if it has expired. */
	if ((rc = prepare(tx, ns, "INSERT INTO nonces (ns, nonce, expires) VALUES (?1, ?2, ?3) "
	    "ON CONFLICT (ns, nonce) DO UPDATE SET expires = excluded.expires "
	    "WHERE nonces.expires <= ?4", &s)) != 0)
		return rc;
	if (bind_blob(s, 2, key, keylen) || bind_i64(s, 3, expires) || bind_i64(s, 4, now))
		rc = db_fail(tx, "bind");
	else
		rc = step_changes(tx, s, "insert nonce", &changes);
	sqlite3_finalize(s);
	if (rc == 0 && changes != 1)
		rc = BS_ERR_EXISTS;
	return rc;
}

int
store_nonce_purge(struct store_txn *tx, const char *ns, int64_t now, uint64_t *purged)
{
	sqlite3_stmt *s = NULL;
	int rc, changes = 0;

	if (ns != NULL && !ns_ok(ns))
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, ns != NULL ?
	    "DELETE FROM nonces WHERE ns = ?1 AND expires <= ?2" :
	    "DELETE FROM nonces WHERE expires <= ?2", &s)) != 0)
		return rc;
	if (bind_i64(s, 2, now))
		rc = db_fail(tx, "bind");
	else
		rc = step_changes(tx, s, "purge nonces", &changes);
	sqlite3_finalize(s);
	if (rc == 0 && purged != NULL)
		*purged = (uint64_t)changes;
	return rc;
}

/* --- versioned rows ------------------------------------------------------------ */

/* Reads (ns, id): version and, if data is not NULL, a malloc'd copy of the bytes. */
static int
row_read(struct store_txn *tx, const char *ns, const char *id, uint64_t *version,
    uint8_t **data, size_t *len)
{
	sqlite3_stmt *s = NULL;
	sqlite3_int64 ver;
	const void *blob;
	uint8_t *copy;
	int rc, n;

	if ((rc = prepare(tx, ns, "SELECT version, data FROM versioned_rows "
	    "WHERE ns = ?1 AND id = ?2", &s)) != 0)
		return rc;
	if (bind_text(s, 2, id)) {
		rc = db_fail(tx, "bind");
		goto out;
	}
	if ((rc = step_row(tx, s, "get row")) != 1) {
		rc = rc == 0 ? BS_ERR_NOT_FOUND : rc;
		goto out;
	}
	ver = sqlite3_column_int64(s, 0);
	blob = sqlite3_column_blob(s, 1);
	n = sqlite3_column_bytes(s, 1);
	if (ver < 1 || n < 0 || n > STORE_DATA_MAX || (n > 0 && blob == NULL)) {
		rc = malformed(tx, "versioned_rows");
		goto out;
	}
	if (data != NULL) {
		if ((copy = malloc(n > 0 ? (size_t)n : 1)) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		if (n > 0)
			memcpy(copy, blob, (size_t)n);
		*data = copy;
		*len = (size_t)n;
	}
	*version = (uint64_t)ver;
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
store_row_get(struct store_txn *tx, const char *ns, const char *id, uint8_t **data,
    size_t *len, uint64_t *version)
{
	if (!ns_ok(ns) || !printable_ok(id, 1, STORE_ID_MAX) || data == NULL || len == NULL ||
	    version == NULL)
		return refuse(tx, BS_ERR_INVALID);
	return row_read(tx, ns, id, version, data, len);
}

int
store_row_foreach(struct store_txn *tx, const char *ns, const char *prefix, const char *after,
    size_t limit, store_row_cb cb, void *arg)
{
	sqlite3_stmt *s = NULL;
	char id[STORE_ID_MAX + 1], upper[STORE_ID_MAX + 2];
	sqlite3_int64 ver;
	const void *blob;
	size_t plen;
	int rc, n;

	if (!ns_ok(ns) || prefix == NULL || (plen = strlen(prefix)) > STORE_ID_MAX ||
	    (prefix[0] != '\0' && !printable_ok(prefix, 1, STORE_ID_MAX)) ||
	    (after != NULL && after[0] != '\0' && !printable_ok(after, 1, STORE_ID_MAX)) ||
	    limit < 1 || limit > STORE_LIST_MAX || cb == NULL)
		return refuse(tx, BS_ERR_INVALID);
	/*
	 * The prefix as a range of the primary key, [prefix, prefix's successor)
	 * (ids are printable ASCII, so the successor of the last byte exists and
	 * "\x7f" bounds everything), so the walk starts at the prefix, not at
	 * the namespace's first row; matched on bytes, not with LIKE's wildcards.
	 */
	memcpy(upper, prefix, plen);
	if (plen > 0)
		upper[plen - 1]++;
	else
		upper[plen++] = 0x7f;
	upper[plen] = '\0';
	if ((rc = prepare(tx, ns, "SELECT id, version, data FROM versioned_rows "
	    "WHERE ns = ?1 AND id >= ?2 AND id < ?3 AND id > ?4 ORDER BY id LIMIT ?5", &s)) != 0)
		return rc;
	if (bind_text(s, 2, prefix) || bind_text(s, 3, upper) ||
	    bind_text(s, 4, after != NULL ? after : "") || bind_i64(s, 5, (int64_t)limit)) {
		rc = db_fail(tx, "bind");
		goto out;
	}
	while ((rc = step_row(tx, s, "list rows")) == 1) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		ver = sqlite3_column_int64(s, 1);
		blob = sqlite3_column_blob(s, 2);
		n = sqlite3_column_bytes(s, 2);
		if (t == NULL || strlen((const char *)t) > STORE_ID_MAX || ver < 1 || n < 0 ||
		    n > STORE_DATA_MAX || (n > 0 && blob == NULL)) {
			rc = malformed(tx, "versioned_rows");
			break;
		}
		memcpy(id, t, strlen((const char *)t) + 1);
		if ((rc = cb(arg, id, n > 0 ? blob : (const void *)"", (size_t)n,
		    (uint64_t)ver)) != 0)
			break;
	}
out:
	sqlite3_finalize(s);
	return rc;
}

/* After a versioned write or delete changed nothing: NOT_FOUND or PRECONDITION. */
static int
row_conflict(struct store_txn *tx, const char *ns, const char *id)
{
	uint64_t cur;
	int rc;

	if ((rc = row_read(tx, ns, id, &cur, NULL, NULL)) != 0)
		return rc;
	return BS_ERR_PRECONDITION;
}

int
store_row_put(struct store_txn *tx, const char *ns, const char *id, uint64_t expected,
    const uint8_t *data, size_t len, uint64_t *new_version)
{
	sqlite3_stmt *s = NULL;
	int rc, changes = 0, create = expected == 0;

	if (!ns_ok(ns) || !printable_ok(id, 1, STORE_ID_MAX) || (data == NULL && len > 0) ||
	    expected > STORE_VALUE_MAX)
		return refuse(tx, BS_ERR_INVALID);
	if (len > STORE_DATA_MAX || expected == STORE_VALUE_MAX)
		return refuse(tx, BS_ERR_TOO_BIG);
	if ((rc = prepare(tx, ns, create ?
	    "INSERT INTO versioned_rows (ns, id, version, data) VALUES (?1, ?2, 1, ?3) "
	    "ON CONFLICT (ns, id) DO NOTHING" :
	    "UPDATE versioned_rows SET version = version + 1, data = ?3 "
	    "WHERE ns = ?1 AND id = ?2 AND version = ?4", &s)) != 0)
		return rc;
	if (bind_text(s, 2, id) || bind_blob(s, 3, data, len) ||
	    (!create && bind_i64(s, 4, (int64_t)expected)))
		rc = db_fail(tx, "bind");
	else
		rc = step_changes(tx, s, "put row", &changes);
	sqlite3_finalize(s);
	if (rc != 0)
		return rc;
	if (changes != 1)
		return create ? BS_ERR_EXISTS : row_conflict(tx, ns, id);
	if (new_version != NULL)
		*new_version = expected + 1;
	return 0;
}

int
store_row_delete(struct store_txn *tx, const char *ns, const char *id, uint64_t expected)
{
	sqlite3_stmt *s = NULL;
	int rc, changes = 0;

	if (!ns_ok(ns) || !printable_ok(id, 1, STORE_ID_MAX) || expected < 1 ||
	    expected > STORE_VALUE_MAX)
		return refuse(tx, BS_ERR_INVALID);
	if ((rc = prepare(tx, ns, "DELETE FROM versioned_rows "
	    "WHERE ns = ?1 AND id = ?2 AND version = ?3", &s)) != 0)
		return rc;
	if (bind_text(s, 2, id) || bind_i64(s, 3, (int64_t)expected))
		rc = db_fail(tx, "bind");
	else
		rc = step_changes(tx, s, "delete row", &changes);
	sqlite3_finalize(s);
	if (rc == 0 && changes != 1)
		rc = row_conflict(tx, ns, id);
	return rc;
}
