/*
 * catalog.c - the key catalog: a SQLite database in the state directory
 * (one row per key, one row per key version) mirrored in a sorted in-memory
 * array that the event loop reads without locks.
 *
 * Durability: the database runs in WAL mode with synchronous=FULL and every
 * catalog_db_add_version() is one IMMEDIATE transaction, so a version that
 * was reported durable survives a crash or power loss. The database file is
 * created mode 0600 (SQLite gives its -wal and -shm files the same mode).
 *
 * Threads: catalog_db_* may run on worker threads; they only touch the
 * SQLite connection, under db_mu. Everything else (the in-memory array and
 * the cached handles) belongs to the event loop thread. The algorithm is
 * stored as the integer value of enum bs_alg.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "keys/catalog.h"

#define CATALOG_SCHEMA_VERSION 1
#define CATALOG_BUSY_TIMEOUT_MS 10000

struct catalog {
	sqlite3 *db;
	pthread_mutex_t db_mu;       /* serialises every use of db */
	struct catalog_key *keys;    /* sorted by name (strcmp), owned */
	size_t nkeys;
	size_t cap;
};

static const char schema_sql[] =
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

static int
name_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int
catalog_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || !name_char_ok(name[0]))
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= CATALOG_NAME_MAX)
			return 0;
		if (!name_char_ok(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return 0;
	}
	return 1;
}

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

static void
key_free_versions(struct catalog_key *k)
{
	size_t i;

	for (i = 0; i < k->nversions; i++)
		free(k->versions[i].spki);
	free(k->versions);
	k->versions = NULL;
	k->nversions = 0;
}

static void
keys_free(struct catalog_key *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		key_free_versions(&keys[i]);
	free(keys);
}

/* Index of the first key whose name is >= name. */
static size_t
lower_bound(const struct catalog *c, const char *name)
{
	size_t lo = 0, hi = c->nkeys, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(c->keys[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct catalog_key *
find_mut(const struct catalog *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	i = lower_bound(c, name);
	if (i < c->nkeys && strcmp(c->keys[i].name, name) == 0)
		return &c->keys[i];
	return NULL;
}

static int
exec_sql(sqlite3 *db, const char *sql, const char *path, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_err(err, errlen, "catalog %s: %s", path, msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return BS_ERR_IO;
	}
	return 0;
}

/* Creates the file with mode 0600 if missing; tightens the mode of an existing one. */
static int
create_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		set_err(err, errlen, "catalog %s: cannot open: %s", path, strerror(errno));
		return BS_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		set_err(err, errlen, "catalog %s: not a regular file", path);
		close(fd);
		return BS_ERR_IO;
	}
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
		set_err(err, errlen, "catalog %s: cannot chmod 0600: %s", path, strerror(errno));
		close(fd);
		return BS_ERR_IO;
	}
	close(fd);
	return 0;
}

static int
setup_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int uv, rc = BS_ERR_IO;

	/* journal_mode returns the resulting mode; it must really be WAL. */
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		set_err(err, errlen, "catalog %s: journal_mode: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		set_err(err, errlen, "catalog %s: cannot enable WAL journal mode", path);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = exec_sql(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", path, err,
	    errlen)) != 0)
		goto out;
	rc = BS_ERR_IO;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		set_err(err, errlen, "catalog %s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	uv = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (uv == 0) {
		if ((rc = exec_sql(db, "BEGIN IMMEDIATE", path, err, errlen)) != 0)
			goto out;
		if ((rc = exec_sql(db, schema_sql, path, err, errlen)) != 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto out;
		}
		if ((rc = exec_sql(db, "COMMIT", path, err, errlen)) != 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto out;
		}
	} else if (uv != CATALOG_SCHEMA_VERSION) {
		set_err(err, errlen, "catalog %s: schema version %d is not supported (expected %d)",
		    path, uv, CATALOG_SCHEMA_VERSION);
		rc = BS_ERR_IO;
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
grow_keys(struct catalog *c)
{
	struct catalog_key *nk;
	size_t ncap;

	if (c->nkeys < c->cap)
		return 0;
	ncap = c->cap == 0 ? 16 : c->cap * 2;
	if (ncap > SIZE_MAX / sizeof(*nk))
		return BS_ERR_NOMEM;
	nk = realloc(c->keys, ncap * sizeof(*nk));
	if (nk == NULL)
		return BS_ERR_NOMEM;
	c->keys = nk;
	c->cap = ncap;
	return 0;
}

static int
load_keys(struct catalog *c, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct catalog_key *k;
	const unsigned char *name;
	int step, rc = BS_ERR_IO;

	if (sqlite3_prepare_v2(c->db,
	    "SELECT name, purpose, alg, state, created FROM keys ORDER BY name", -1, &st,
	    NULL) != SQLITE_OK) {
		set_err(err, errlen, "catalog %s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		name = sqlite3_column_text(st, 0);
		if (name == NULL || !catalog_name_valid((const char *)name)) {
			set_err(err, errlen, "catalog %s: invalid key name in database", path);
			goto out;
		}
		if (c->nkeys > 0 && strcmp(c->keys[c->nkeys - 1].name, (const char *)name) >= 0) {
			set_err(err, errlen, "catalog %s: keys out of order in database", path);
			goto out;
		}
		if ((rc = grow_keys(c)) != 0)
			goto out;
		rc = BS_ERR_IO;
		k = &c->keys[c->nkeys];
		memset(k, 0, sizeof(*k));
		memcpy(k->name, name, strlen((const char *)name) + 1);
		k->purpose = (enum bs_purpose)sqlite3_column_int(st, 1);
		k->alg = (enum bs_alg)sqlite3_column_int(st, 2);
		k->state = (enum bs_key_state)sqlite3_column_int(st, 3);
		k->created = sqlite3_column_int64(st, 4);
		c->nkeys++;
	}
	if (step != SQLITE_DONE) {
		set_err(err, errlen, "catalog %s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
load_versions(struct catalog *c, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct catalog_key *k;
	struct catalog_version *nv, *v;
	const unsigned char *name;
	const void *blob;
	sqlite3_int64 ver;
	int step, n, rc = BS_ERR_IO;

	if (sqlite3_prepare_v2(c->db,
	    "SELECT key_name, version, state, created, hsm_id, spki FROM key_versions "
	    "ORDER BY key_name, version", -1, &st, NULL) != SQLITE_OK) {
		set_err(err, errlen, "catalog %s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		name = sqlite3_column_text(st, 0);
		k = name != NULL ? find_mut(c, (const char *)name) : NULL;
		if (k == NULL) {
			set_err(err, errlen, "catalog %s: key version without a key", path);
			goto out;
		}
		ver = sqlite3_column_int64(st, 1);
		if (ver < 1 || ver > UINT32_MAX ||
		    (k->nversions > 0 && k->versions[k->nversions - 1].version >= ver)) {
			set_err(err, errlen, "catalog %s: key '%s': bad version number", path, k->name);
			goto out;
		}
		if (sqlite3_column_bytes(st, 4) != HSM_KEY_ID_LEN ||
		    (blob = sqlite3_column_blob(st, 4)) == NULL) {
			set_err(err, errlen, "catalog %s: key '%s': bad hsm_id", path, k->name);
			goto out;
		}
		nv = realloc(k->versions, (k->nversions + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		k->versions = nv;
		v = &nv[k->nversions];
		memset(v, 0, sizeof(*v));
		v->version = (uint32_t)ver;
		v->state = (enum bs_key_state)sqlite3_column_int(st, 2);
		v->created = sqlite3_column_int64(st, 3);
		memcpy(v->hsm_id, blob, HSM_KEY_ID_LEN);
		n = sqlite3_column_bytes(st, 5);
		blob = sqlite3_column_blob(st, 5);
		if (n <= 0 || blob == NULL) {
			set_err(err, errlen, "catalog %s: key '%s': empty public key", path, k->name);
			goto out;
		}
		if ((v->spki = malloc((size_t)n)) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		memcpy(v->spki, blob, (size_t)n);
		v->spki_len = (size_t)n;
		k->nversions++;
	}
	if (step != SQLITE_DONE) {
		set_err(err, errlen, "catalog %s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
catalog_open(const char *path, struct catalog **out, char *err, size_t errlen)
{
	struct catalog *c = NULL;
	int rc;

	if (path == NULL || out == NULL) {
		set_err(err, errlen, "catalog: no path");
		return BS_ERR_INVALID;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return BS_ERR_NOMEM;
	if (pthread_mutex_init(&c->db_mu, NULL) != 0) {
		free(c);
		return BS_ERR_INTERNAL;
	}
	if ((rc = create_file(path, err, errlen)) != 0)
		goto out;
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
	    NULL) != SQLITE_OK) {
		set_err(err, errlen, "catalog %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : "cannot open");
		rc = BS_ERR_IO;
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, CATALOG_BUSY_TIMEOUT_MS);
	if ((rc = setup_schema(c->db, path, err, errlen)) != 0)
		goto out;
	if ((rc = load_keys(c, path, err, errlen)) != 0)
		goto out;
	if ((rc = load_versions(c, path, err, errlen)) != 0)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	catalog_close(c);
	return rc;
}

void
catalog_close(struct catalog *c)
{
	if (c == NULL)
		return;
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->db_mu);
	keys_free(c->keys, c->nkeys);
	free(c);
}

const struct catalog_key *
catalog_find(const struct catalog *c, const char *name)
{
	return find_mut(c, name);
}

const struct catalog_version *
catalog_key_primary(const struct catalog_key *k)
{
	size_t i;

	if (k == NULL)
		return NULL;
	for (i = k->nversions; i > 0; i--) {
		if (k->versions[i - 1].state == BS_KEY_ENABLED)
			return &k->versions[i - 1];
	}
	return NULL;
}

const struct catalog_version *
catalog_key_version(const struct catalog_key *k, uint32_t v)
{
	size_t lo = 0, hi, mid;

	if (k == NULL)
		return NULL;
	hi = k->nversions;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (k->versions[mid].version == v)
			return &k->versions[mid];
		if (k->versions[mid].version < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t
catalog_count(const struct catalog *c)
{
	return c != NULL ? c->nkeys : 0;
}

const struct catalog_key *
catalog_at(const struct catalog *c, size_t i)
{
	if (c == NULL || i >= c->nkeys)
		return NULL;
	return &c->keys[i];
}

size_t
catalog_index_after(const struct catalog *c, const char *after)
{
	size_t lo = 0, hi, mid;

	if (c == NULL)
		return 0;
	hi = c->nkeys;
	if (after == NULL || after[0] == '\0')
		return 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(c->keys[mid].name, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
check_args(const struct catalog *c, const struct catalog_key *k, const struct catalog_version *v)
{
	if (c == NULL || k == NULL || v == NULL)
		return BS_ERR_INVALID;
	if (memchr(k->name, '\0', sizeof(k->name)) == NULL || !catalog_name_valid(k->name))
		return BS_ERR_INVALID;
	if (v->version < 1 || v->spki == NULL || v->spki_len == 0 || v->spki_len > INT32_MAX)
		return BS_ERR_INVALID;
	return 0;
}

/* Maps a failed step of an INSERT to a catalog error. */
static int
insert_error(sqlite3 *db, int dup_rc)
{
	int ext = sqlite3_extended_errcode(db);

	if (ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return dup_rc;
	return BS_ERR_IO;
}

static int
db_add_version_locked(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v)
{
	sqlite3_stmt *st = NULL;
	int rc = BS_ERR_IO;
	sqlite3_int64 max;

	if (v->version == 1) {
		if (sqlite3_prepare_v2(c->db, "INSERT INTO keys (name, purpose, alg, state, created) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL) != SQLITE_OK)
			goto out;
		if (sqlite3_bind_text(st, 1, k->name, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int(st, 2, (int)k->purpose) != SQLITE_OK ||
		    sqlite3_bind_int(st, 3, (int)k->alg) != SQLITE_OK ||
		    sqlite3_bind_int(st, 4, (int)k->state) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 5, k->created) != SQLITE_OK)
			goto out;
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = insert_error(c->db, BS_ERR_EXISTS);
			goto out;
		}
	} else {
		/* The key must exist and its newest version must be v - 1. */
		if (sqlite3_prepare_v2(c->db, "SELECT (SELECT count(*) FROM keys WHERE name = ?1), "
		    "(SELECT coalesce(max(version), 0) FROM key_versions WHERE key_name = ?1)", -1,
		    &st, NULL) != SQLITE_OK)
			goto out;
		if (sqlite3_bind_text(st, 1, k->name, -1, SQLITE_STATIC) != SQLITE_OK)
			goto out;
		if (sqlite3_step(st) != SQLITE_ROW)
			goto out;
		if (sqlite3_column_int(st, 0) == 0) {
			rc = BS_ERR_NOT_FOUND;
			goto out;
		}
		max = sqlite3_column_int64(st, 1);
		if (max != (sqlite3_int64)v->version - 1) {
			rc = BS_ERR_PRECONDITION;
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(c->db, "INSERT INTO key_versions "
	    "(key_name, version, state, created, hsm_id, spki) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
	    &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_text(st, 1, k->name, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, v->version) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, (int)v->state) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, v->created) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 5, v->hsm_id, HSM_KEY_ID_LEN, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 6, v->spki, (int)v->spki_len, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_DONE) {
		/* (key_name, version) cannot clash after the check above; a
		 * clash on hsm_id means a reused CKA_ID, which is a bug. */
		rc = sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE ?
		    BS_ERR_INTERNAL : insert_error(c->db, BS_ERR_PRECONDITION);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
catalog_db_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v)
{
	int rc;

	if ((rc = check_args(c, k, v)) != 0)
		return rc;
	pthread_mutex_lock(&c->db_mu);
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = BS_ERR_IO;
		goto out;
	}
	rc = db_add_version_locked(c, k, v);
	if (rc == 0 && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = BS_ERR_IO;
	if (rc != 0)
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
out:
	pthread_mutex_unlock(&c->db_mu);
	return rc;
}

int
catalog_mem_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v)
{
	struct catalog_key *key;
	struct catalog_version *nv;
	uint8_t *spki = NULL;
	size_t ki, vi;
	int rc;

	if ((rc = check_args(c, k, v)) != 0)
		return rc;
	key = find_mut(c, k->name);
	if (key != NULL && catalog_key_version(key, v->version) != NULL)
		return BS_ERR_EXISTS;

	/* Every allocation happens before anything visible changes. */
	if ((spki = malloc(v->spki_len)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(spki, v->spki, v->spki_len);
	if (key == NULL) {
		if ((rc = grow_keys(c)) != 0)
			goto out;
		if ((nv = malloc(sizeof(*nv))) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		ki = lower_bound(c, k->name);
		memmove(&c->keys[ki + 1], &c->keys[ki], (c->nkeys - ki) * sizeof(c->keys[0]));
		key = &c->keys[ki];
		memset(key, 0, sizeof(*key));
		memcpy(key->name, k->name, strlen(k->name) + 1);
		key->purpose = k->purpose;
		key->alg = k->alg;
		key->state = k->state;
		key->created = k->created;
		key->versions = nv;
		c->nkeys++;
	} else {
		if (key->nversions >= SIZE_MAX / sizeof(*nv) - 1) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		nv = realloc(key->versions, (key->nversions + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		key->versions = nv;
	}
	/* Keep versions ascending even if they arrive out of order. */
	for (vi = key->nversions; vi > 0 && key->versions[vi - 1].version > v->version; vi--)
		;
	memmove(&key->versions[vi + 1], &key->versions[vi],
	    (key->nversions - vi) * sizeof(key->versions[0]));
	key->versions[vi] = *v;
	key->versions[vi].spki = spki;
	key->nversions++;
	spki = NULL;
	rc = 0;
out:
	free(spki);
	return rc;
}

void
catalog_mem_set_handle(struct catalog *c, const char *name, uint32_t version, hsm_handle h)
{
	struct catalog_key *k = find_mut(c, name);
	struct catalog_version *v;

	if (k == NULL)
		return;
	v = (struct catalog_version *)catalog_key_version(k, version);
	if (v != NULL)
		v->handle = h;
}

/* --- reconciliation ------------------------------------------------------- */

struct strbuf {
	char *s;
	size_t len;
	size_t cap;
	int failed;
};

static void
sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t need, ncap;
	char *ns;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	need = b->len + (size_t)n + 1;
	if (need > b->cap) {
		ncap = b->cap == 0 ? 256 : b->cap;
		while (ncap < need)
			ncap *= 2;
		if ((ns = realloc(b->s, ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void
hex_id(const uint8_t id[HSM_KEY_ID_LEN], char out[2 * HSM_KEY_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 0x0f];
	}
	out[2 * HSM_KEY_ID_LEN] = '\0';
}

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, HSM_KEY_ID_LEN);
}

static int
id_is_zero(const uint8_t *id)
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++)
		acc |= id[i];
	return acc == 0;
}

int
catalog_reconcile(struct catalog *c, struct hsm_session *s, char **report)
{
	struct strbuf b = { NULL, 0, 0, 0 };
	uint8_t *known = NULL, *ids = NULL;
	size_t nknown = 0, nids = 0, i, j;
	struct catalog_key *k;
	struct catalog_version *v;
	char hex[2 * HSM_KEY_ID_LEN + 1];
	hsm_handle h;
	int rc, ndiff = 0;

	if (c == NULL || report == NULL)
		return BS_ERR_INVALID;
	for (i = 0; i < c->nkeys; i++)
		nknown += c->keys[i].nversions;
	if (nknown > 0) {
		if (nknown > SIZE_MAX / HSM_KEY_ID_LEN ||
		    (known = malloc(nknown * HSM_KEY_ID_LEN)) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
	}

	nknown = 0;
	for (i = 0; i < c->nkeys; i++) {
		k = &c->keys[i];
		for (j = 0; j < k->nversions; j++) {
			v = &k->versions[j];
			memcpy(known + nknown * HSM_KEY_ID_LEN, v->hsm_id, HSM_KEY_ID_LEN);
			nknown++;
			rc = hsm_find_private_key(s, v->hsm_id, &h);
			if (rc == 0) {
				v->handle = h;
				continue;
			}
			v->handle = 0;
			hex_id(v->hsm_id, hex);
			if (rc == BS_ERR_NOT_FOUND) {
				sb_printf(&b, "key '%s' version %u: private key object CKA_ID=%s "
				    "missing from token\n", k->name, (unsigned)v->version, hex);
			} else if (rc == BS_ERR_EXISTS) {
				sb_printf(&b, "key '%s' version %u: more than one private key object "
				    "CKA_ID=%s on token\n", k->name, (unsigned)v->version, hex);
			} else {
				rc = BS_ERR_HSM;
				goto out;
			}
			ndiff++;
		}
	}
	if (nknown > 0)
		qsort(known, nknown, HSM_KEY_ID_LEN, id_cmp);

	if ((rc = hsm_list_private_key_ids(s, CATALOG_LABEL_PREFIX, &ids, &nids)) != 0) {
		rc = rc == BS_ERR_NOMEM ? rc : BS_ERR_HSM;
		ids = NULL;
		goto out;
	}
	for (i = 0; i < nids; i++) {
		const uint8_t *id = ids + i * HSM_KEY_ID_LEN;

		if (nknown > 0 && bsearch(id, known, nknown, HSM_KEY_ID_LEN, id_cmp) != NULL)
			continue;
		if (id_is_zero(id)) {
			sb_printf(&b, "token object with a CKA_ID that is not %d bytes (label "
			    CATALOG_LABEL_PREFIX "...) is not in the catalog\n", HSM_KEY_ID_LEN);
		} else {
			hex_id(id, hex);
			sb_printf(&b, "token object CKA_ID=%s (label " CATALOG_LABEL_PREFIX
			    "...) is not in the catalog\n", hex);
		}
		ndiff++;
	}

	if (b.failed) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (ndiff > 0) {
		*report = b.s;
		b.s = NULL;
		rc = BS_ERR_MISMATCH;
		goto out;
	}
	*report = NULL;
	rc = 0;
out:
	free(b.s);
	free(known);
	free(ids);
	return rc;
}
