/*
 * store.h - the one interface to durable state: the key catalog rows,
 * monotonic counters, insert-if-absent records with expiry (nonces) and
 * versioned opaque rows, all inside transactions. store_sqlite.c implements
 * it on an SQLite file in the state directory (the embedded default); a
 * PostgreSQL backend (store_pg.c, for replicas) can implement the same
 * prototypes, which is why nothing here names a backend type.
 *
 * Namespaces: every primitive takes a namespace (ns) so that services never
 * collide: "keys" for the catalog, "tuf", "checkpoint", "commands", ...
 * A namespace is 1..STORE_NS_MAX characters of [a-z0-9._-] starting with a
 * letter or digit.
 *
 * Versioned rows, (ns, id) -> opaque bytes with an optimistic version, are
 * the shape for the state that several requests update at once:
 *  - approvals: ns "approvals", id the (random, never reused) operation id,
 *    data the proposal and the approvers so far; each approval is get, add
 *    the approver, put-if-version, so two admins approving at once cannot
 *    lose each other's vote.
 *  - second-factor state: ns "totp", id the principal, data its last
 *    accepted time step and failure count; a code is accepted only by a
 *    put-if-version that raises the step, so a replay racing the first use
 *    loses.
 *  - certificate serials: ns "cert-serials", id the serial in hex, data
 *    what was issued; created with expected version 0, so a serial is
 *    issued at most once (BS_ERR_EXISTS), and revoked by a versioned put.
 *
 * Threads and locking: a store may be used by any number of threads; a
 * transaction is used only by the thread that began it, which also ends it
 * (any other thread gets BS_ERR_INVALID). The SQLite backend has one
 * connection and one mutex: store_begin() takes the mutex and
 * store_commit()/store_rollback() release it, so the transactions of one
 * store run one at a time (SQLite has one writer anyway) and store_begin()
 * waits while another thread's transaction is open. A thread that begins a
 * second transaction of the same store before ending the first gets
 * BS_ERR_PRECONDITION instead of a deadlock. Read-only work uses
 * store_begin_read() instead: a snapshot on a connection of its own, which
 * does not wait for the writer (SQLite's WAL mode). Another process cannot
 * open the same store (store_open); other programs reading the file
 * (sqlite3, a backup) are held off by BEGIN IMMEDIATE with a 10 s busy
 * timeout. Because
 * store_begin() can wait on the disk and on other threads, the event loop
 * thread uses the store only at start-up; later work goes to worker threads.
 *
 * Durability: store_commit() returns 0 only once the transaction is durable
 * (SQLite: WAL journal with synchronous=FULL, so the WAL is fsynced at
 * every commit); a response that depends on a write is sent after that.
 *
 * Errors common to every primitive (listed once here, not again below):
 * BS_ERR_INVALID if tx is NULL, already ended or not the calling thread's,
 * or ns or another argument is malformed (nothing is done); BS_ERR_IO if
 * the database failed, after which the transaction is poisoned: every
 * later primitive returns BS_ERR_IO and store_commit() rolls back and
 * returns BS_ERR_IO. The other codes a primitive lists (NOT_FOUND, EXISTS,
 * PRECONDITION) change nothing and leave the transaction usable.
 */
#ifndef BS_STORE_H
#define BS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "types/types.h"

#define STORE_NS_MAX 64              /* namespace length */
#define STORE_ID_MAX 255             /* counter name / row id length */
#define STORE_NONCE_MAX 255          /* nonce key bytes */
#define STORE_DATA_MAX (64 * 1024)   /* versioned row data bytes */
#define STORE_KEY_NAME_MAX 64        /* key name length */
#define STORE_KEY_ID_LEN 16          /* hsm_id bytes of a key version */
#define STORE_SPKI_MAX (16 * 1024)   /* DER public key bytes */
#define STORE_VALUE_MAX ((uint64_t)INT64_MAX) /* counters and row versions */
#define STORE_COUNTER_ABSENT UINT64_MAX /* "expected" of a counter not yet created */

/* The namespace of the key catalog; rows of a schema-1 catalog.db land here. */
#define STORE_NS_KEYS "keys"

struct store;
struct store_txn;

/*
 * Opens the store at path, creating the file (mode 0600; an existing file
 * is tightened to 0600) and the schema if needed, and migrating an older
 * schema in place. One process at a time: an exclusive flock() on
 * PATH.lock is held until store_close (another holder is waited for up to
 * 10 s, then BS_ERR_IO "in use by another process"); the services may keep
 * what they know of the store in memory between calls. Returns 0 and sets *out (free with store_close), or
 * BS_ERR_INVALID (NULL argument), BS_ERR_NOMEM, BS_ERR_INTERNAL (mutex),
 * or BS_ERR_IO with a message naming path in err: cannot create or open the
 * file, not a database, no WAL, a schema newer than this build, a failed
 * migration (rolled back: the file keeps its old schema and rows).
 */
int store_open(const char *path, struct store **out, char *err, size_t errlen) BS_WUR;

/* Closes st; no transaction may be open. NULL is a no-op. */
void store_close(struct store *st);

/*
 * Begins a transaction (waiting for another thread's to end, see above).
 * Returns 0 and sets *out, borrowed until store_commit/store_rollback;
 * BS_ERR_INVALID (NULL argument); BS_ERR_PRECONDITION if this thread already
 * has a transaction of st open; BS_ERR_IO if the database cannot start one
 * (another process kept it locked past the busy timeout); BS_ERR_INTERNAL.
 */
int store_begin(struct store *st, struct store_txn **out) BS_WUR;

/*
 * Begins a read transaction: a consistent snapshot of what was committed
 * when it first reads, on a connection of its own, so that it neither waits
 * for the write transaction nor holds it up (it waits only while every
 * reader slot, 4, is taken). Reads only: a primitive that would write gets
 * BS_ERR_INVALID and changes nothing. Ended with store_rollback (or
 * store_commit, the same). A thread may hold one read and one write
 * transaction at once. Returns 0 and sets *out; BS_ERR_INVALID (NULL
 * argument); BS_ERR_PRECONDITION if this thread already has a read
 * transaction of st open; BS_ERR_IO if the database cannot be opened or
 * read.
 */
int store_begin_read(struct store *st, struct store_txn **out) BS_WUR;

/*
 * Commits tx and ends it; returns 0 only when the changes are durable.
 * BS_ERR_INVALID: tx NULL, ended or not this thread's (tx untouched).
 * BS_ERR_IO: tx was poisoned, or the commit failed; either way it was
 * rolled back and is ended.
 */
int store_commit(struct store_txn *tx) BS_WUR;

/* Rolls tx back and ends it. NULL, an ended tx or another thread's: no-op. */
void store_rollback(struct store_txn *tx);

/* --- key catalog rows ------------------------------------------------------- */

struct store_key {
	char name[STORE_KEY_NAME_MAX + 1]; /* NUL-terminated, 1..64 chars */
	enum bs_purpose purpose;
	enum bs_alg alg;
	enum bs_key_state state;
	int64_t created;                   /* unix seconds */
};

struct store_key_version {
	uint32_t version;                  /* >= 1 */
	enum bs_key_state state;
	int64_t created;                   /* unix seconds */
	uint8_t hsm_id[STORE_KEY_ID_LEN];  /* unique over the whole store */
	const uint8_t *spki;               /* DER, 0..STORE_SPKI_MAX bytes (0: a secret key), borrowed */
	size_t spki_len;
};

/* Inserts key row k. Returns 0, or BS_ERR_EXISTS if (ns, k->name) exists. */
int store_key_insert(struct store_txn *tx, const char *ns, const struct store_key *k) BS_WUR;

/*
 * Inserts version v of key name (any number; density is the caller's rule).
 * Returns 0; BS_ERR_NOT_FOUND if the key row does not exist; BS_ERR_EXISTS
 * if that version number exists or another version has the same hsm_id.
 */
int store_key_version_insert(struct store_txn *tx, const char *ns, const char *name,
    const struct store_key_version *v) BS_WUR;

/*
 * Sets *out to the highest version number of key name (0 if it has none).
 * Returns 0, or BS_ERR_NOT_FOUND if the key row does not exist.
 */
int store_key_version_latest(struct store_txn *tx, const char *ns, const char *name,
    uint32_t *out) BS_WUR;

/*
 * Calls cb for every key row of ns in name order (bytewise, as strcmp), or
 * for every version row of ns in (name, version) order. Rows are borrowed
 * for the duration of the call only; cb must not use the store. A nonzero
 * return from cb stops the walk and is returned. Otherwise 0, or BS_ERR_IO
 * (also for a malformed stored row).
 */
typedef int (*store_key_cb)(void *arg, const struct store_key *k);
typedef int (*store_key_version_cb)(void *arg, const char *name,
    const struct store_key_version *v);
int store_key_foreach(struct store_txn *tx, const char *ns, store_key_cb cb, void *arg) BS_WUR;
int store_key_version_foreach(struct store_txn *tx, const char *ns, store_key_version_cb cb,
    void *arg) BS_WUR;

/* --- monotonic counters ------------------------------------------------------ */
/*
 * Counters (TUF versions, checkpoint sizes, command sequence numbers) are
 * named by (ns, name), name 1..STORE_ID_MAX printable ASCII characters
 * without spaces, and hold 0..STORE_VALUE_MAX. They never go backwards and
 * are never deleted.
 */

/* Sets *out to the value. Returns 0, or BS_ERR_NOT_FOUND if never created. */
int store_counter_get(struct store_txn *tx, const char *ns, const char *name,
    uint64_t *out) BS_WUR;

/*
 * Compare-and-set: the counter goes from expected to newv. expected ==
 * STORE_COUNTER_ABSENT creates it (any newv). Returns 0; BS_ERR_EXISTS if
 * expected is STORE_COUNTER_ABSENT and the counter exists; BS_ERR_NOT_FOUND
 * if expected is a value and the counter does not exist; BS_ERR_PRECONDITION
 * if the value is not expected (someone else moved it: re-read) or newv <=
 * expected (a counter never goes backwards nor stands still);
 * BS_ERR_INVALID if newv or expected is over STORE_VALUE_MAX (and not
 * STORE_COUNTER_ABSENT).
 */
int store_counter_cas(struct store_txn *tx, const char *ns, const char *name, uint64_t expected,
    uint64_t newv) BS_WUR;

/* --- insert-if-absent records with expiry (nonces) ------------------------- */
/*
 * A record is (ns, key bytes) with an expiry in unix seconds; it is expired
 * when expires <= now. The caller passes now, so every replica of a shared
 * store judges by the same clock reading it was given.
 */

/*
 * Inserts (ns, key) expiring at expires. Returns 0 (also when an expired
 * record with that key was replaced); BS_ERR_EXISTS if an unexpired one
 * exists (a replay); BS_ERR_INVALID if keylen is 0 or over STORE_NONCE_MAX or
 * expires <= now.
 */
int store_nonce_insert(struct store_txn *tx, const char *ns, const uint8_t *key, size_t keylen,
    int64_t now, int64_t expires) BS_WUR;

/*
 * Deletes the expired records of ns (of every namespace if ns is NULL) and
 * sets *purged (if not NULL) to how many. Returns 0.
 */
int store_nonce_purge(struct store_txn *tx, const char *ns, int64_t now, uint64_t *purged) BS_WUR;

/* --- versioned rows ------------------------------------------------------------ */
/*
 * (ns, id) -> 0..STORE_DATA_MAX opaque bytes with a version, 1 when created
 * and one higher at each put. id is 1..STORE_ID_MAX printable ASCII
 * characters without spaces. A deleted row that is created again starts at
 * version 1, so ids whose rows are deleted should not be reused.
 */

/*
 * Reads (ns, id): *data (malloc'd, at least one byte, the caller frees; wipe
 * it first if it matters), *len and *version. Returns 0, BS_ERR_NOT_FOUND,
 * or BS_ERR_NOMEM (the transaction stays usable).
 */
int store_row_get(struct store_txn *tx, const char *ns, const char *id, uint8_t **data,
    size_t *len, uint64_t *version) BS_WUR;

/*
 * Writes (ns, id) if its version is expected (0: the row must not exist)
 * and sets *new_version (if not NULL). Returns 0; BS_ERR_EXISTS if expected
 * is 0 and the row exists; BS_ERR_NOT_FOUND if expected is not 0 and the
 * row does not exist; BS_ERR_PRECONDITION if the row's version is not
 * expected (stale: re-read); BS_ERR_TOO_BIG if len > STORE_DATA_MAX or the
 * version would pass STORE_VALUE_MAX. data may be NULL only if len is 0.
 */
int store_row_put(struct store_txn *tx, const char *ns, const char *id, uint64_t expected,
    const uint8_t *data, size_t len, uint64_t *new_version) BS_WUR;

/*
 * Calls cb for the rows of ns whose id starts with prefix and sorts after
 * `after` (NULL or "": from the first), in byte order of id, at most limit
 * of them (1..STORE_LIST_MAX): cb gets the id, the bytes (valid during the
 * call only) and the version; a non-zero return from cb stops the walk and
 * is returned. Returns 0 when the walk ends, or the store's errors.
 */
#define STORE_LIST_MAX 1000
typedef int (*store_row_cb)(void *arg, const char *id, const uint8_t *data, size_t len,
    uint64_t version);
int store_row_foreach(struct store_txn *tx, const char *ns, const char *prefix, const char *after,
    size_t limit, store_row_cb cb, void *arg) BS_WUR;

/*
 * Deletes (ns, id) if its version is expected (>= 1). Returns 0;
 * BS_ERR_NOT_FOUND; BS_ERR_PRECONDITION if the version is not expected.
 */
int store_row_delete(struct store_txn *tx, const char *ns, const char *id,
    uint64_t expected) BS_WUR;

#endif
