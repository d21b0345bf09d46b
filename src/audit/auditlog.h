/*
 * auditlog.h - the tamper-evident audit log: one JSON object per line in
 * <dir>/audit.jsonl, each line a leaf of an RFC 6962 Merkle tree, made
 * durable (write + fdatasync, group commit) before its caller is told.
 *
 * Every line starts {"seq":N,"prev":"<hex>" where N is the line's index and
 * prev the leaf hash of line N-1 (64 zeros for line 0); the leaf data is the
 * line without its newline. docs/audit.md documents the schema.
 *
 * Threads: audit_log_append() and the done callbacks run on the event loop
 * thread; one writer thread owns the file; the tree getters lock and may be
 * called from any thread. If a write fails (ENOSPC, EIO) the log turns
 * unhealthy: waiting callers get BS_ERR_UNAVAILABLE at once, their records
 * are kept (marked "response withheld") and written first when a retry
 * succeeds, so nothing that happened is lost and nothing acknowledged is
 * missing.
 *
 * Key lifecycle records never meet a full queue: past queue_max only
 * reserved places are given out (audit_log_reserve), and a key change
 * takes its place before it starts, writes its record into it before the
 * change commits, and commits only once that record is durable.
 */
#ifndef BS_AUDITLOG_H
#define BS_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "common/histogram.h"
#include "formats/merkle.h"

struct event_base;
struct audit_log;

enum audit_type {
	AUDIT_RPC = 1,       /* one call answered (allowed or refused) */
	AUDIT_START,         /* daemon started */
	AUDIT_STOP,          /* daemon stopping */
	AUDIT_RELOAD,        /* SIGHUP reload applied or refused */
	AUDIT_RECOVERY,      /* the log repaired itself (torn tail, unrecorded refusals) */
	AUDIT_KEY,           /* key lifecycle change made by the daemon itself */
	AUDIT_POLICY,        /* the policy file became a new policy version */
};

/* A service-defined field of a record (see docs/audit.md, "fields"). */
struct audit_field {
	const char *name;
	const char *value;
};

/*
 * One record as the caller describes it. Every pointer is borrowed for the
 * duration of audit_log_append() only; NULL (or key_version < 0) leaves the
 * field null in the JSON. Never put a secret here.
 */
struct audit_record {
	enum audit_type type;
	const char *request_id;
	const char *principal_id;
	const char *identity;                /* URI SAN of the client certificate */
	const uint8_t *cert_sha256;          /* 32 bytes or NULL */
	const char *method;
	const char *key;
	int64_t key_version;
	const char *target;
	const char *result;                  /* gRPC status name, "OK", ... */
	const char *reason;
	const char *event;                   /* "key_created", "key_rotated", ... */
	const uint8_t (*payload_sha256)[32];
	size_t npayload;
	const struct audit_field *fields;    /* written as "fields":{...} when nfields > 0 */
	size_t nfields;
};

/* rc 0: the record is durable. BS_ERR_UNAVAILABLE: it could not be written (yet). */
typedef void (*audit_done_fn)(void *arg, int rc);

/* A place in the queue held for one record (audit_log_reserve). */
struct audit_slot;

#define AUDIT_RESERVE_DEFAULT 64

struct audit_log_opts {
	unsigned queue_max;                  /* records waiting, incl. withheld ones */
	unsigned reserve;                    /* places past queue_max for reservations only;
	                                        0: AUDIT_RESERVE_DEFAULT */
	unsigned grow_every;                 /* call on_grow after this many new records */
	void (*on_grow)(void *arg, uint64_t size);   /* event loop thread; may be NULL */
	void *grow_arg;
	size_t prealloc_chunk;               /* the file grows by this many bytes of zeros
	                                        (while 64 MiB stay free), so that a sync has
	                                        no metadata to commit; 0:
	                                        AUDIT_PREALLOC_DEFAULT, 1: none (each write
	                                        grows the file) */
};

#define AUDIT_PREALLOC_DEFAULT (1u << 20)

/*
 * Opens (creating dir 0700 and the file 0600 if needed) the log in dir,
 * re-reads every line to rebuild the tree, and checks the seq/prev chain: a
 * mismatch is BS_ERR_MISMATCH naming the record in err (the daemon refuses
 * to start; `boltseal audit verify` tells more). The records end at the
 * first NUL (the zeros the file is preallocated with, cut off again by
 * audit_log_close()). A torn last line (no newline), or bytes other than
 * zeros after the records, are cut off and a recovery record saying so is
 * appended. Then
 * starts the writer thread, whose completions reach base.
 * Returns 0, BS_ERR_IO, BS_ERR_MISMATCH or BS_ERR_NOMEM (err says why).
 */
int audit_log_open(const char *dir, struct event_base *base, const struct audit_log_opts *o,
    struct audit_log **out, char *err, size_t errlen) BS_WUR;

/*
 * Drains: waits until every queued record was written or definitively
 * failed, runs the remaining callbacks on the calling thread, stops the
 * writer. NULL is a no-op.
 */
void audit_log_close(struct audit_log *l);

/*
 * Queues r (copied). done(arg, rc) runs exactly once later on the loop
 * thread. Returns 0, or BS_ERR_QUEUE_FULL (queue_max records waiting or
 * reserved: in practice only while the log cannot be written or cannot keep
 * up; the record is counted and the count written in one recovery record
 * once writing works) or BS_ERR_NOMEM; on error done is never called.
 */
int audit_log_append(struct audit_log *l, const struct audit_record *r, audit_done_fn done,
    void *arg) BS_WUR;

/*
 * Holds a place in the queue for one record to be given later with
 * audit_log_commit_reserved() (a key change takes its places before it
 * starts, so that its record can never be refused). Ordinary appends stop
 * at queue_max; reservations may also use the opts.reserve places past it,
 * which nothing else can take. Loop thread. Refusals are not counted.
 * Returns 0 (*out set), BS_ERR_UNAVAILABLE (the log cannot be written now,
 * or it is closing), BS_ERR_QUEUE_FULL (queue_max + reserve places taken),
 * BS_ERR_NOMEM. Every place taken must be committed or released before
 * audit_log_close().
 */
int audit_log_reserve(struct audit_log *l, struct audit_slot **out) BS_WUR;

/*
 * Queues r (copied) in the place s, which is used up whatever the result.
 * done(arg, rc) runs exactly once later on the loop thread, as for
 * audit_log_append(); done NULL: nobody waits, the record is just written.
 * rc != 0 means the record is not durable: it is kept and written when the
 * log works again, marked "not carried out" for a key record (type
 * AUDIT_KEY), so the caller must then not make the change it describes.
 * Returns 0, or BS_ERR_NOMEM (nothing queued, done never called).
 */
int audit_log_commit_reserved(struct audit_log *l, struct audit_slot *s,
    const struct audit_record *r, audit_done_fn done, void *arg) BS_WUR;

/* Gives the place s back unused. NULL is a no-op. */
void audit_log_release(struct audit_log *l, struct audit_slot *s);

/*
 * Writes r in a reserved place and blocks the calling thread until it is
 * durable or its write failed; needs no event loop (for start-up, before
 * the loop runs; never on the loop thread while it serves). Returns 0, or
 * an audit_log_reserve() error, or BS_ERR_UNAVAILABLE (the write failed;
 * the record is kept and written later, marked as for a failed commit).
 */
int audit_log_write_wait(struct audit_log *l, const struct audit_record *r) BS_WUR;

/*
 * n more events went unrecorded (beyond the one a refused append counts
 * itself), for the next "unrecorded_refusals" recovery record: a refused
 * summary record stands for n events, not one.
 */
void audit_log_count_dropped(struct audit_log *l, uint64_t n);

/* What the log did, for the metrics. Any thread. */
struct audit_log_stats {
	struct bs_hist sync;          /* write(2) + fdatasync(2) of each group of records */
	struct bs_hist lag;           /* from append to durable, per record */
	uint64_t refused;             /* appends refused: queue_max records were waiting */
};
void audit_log_stats(const struct audit_log *l, struct audit_log_stats *st);

/* 1 while writes succeed, 0 after a failed write until a retry succeeds. */
int audit_log_healthy(const struct audit_log *l);

/* Durable records (the tree size). Any thread. */
uint64_t audit_log_size(const struct audit_log *l);

/* Tree queries over the durable records; see merkle.h for the errors. */
int audit_log_root(const struct audit_log *l, uint64_t size, uint8_t root[MERKLE_HASH_LEN]) BS_WUR;
int audit_log_leaf(const struct audit_log *l, uint64_t index, uint8_t leaf[MERKLE_HASH_LEN]) BS_WUR;
int audit_log_inclusion(const struct audit_log *l, uint64_t index, uint64_t size,
    uint8_t proof[][MERKLE_HASH_LEN], size_t *nproof) BS_WUR;
int audit_log_consistency(const struct audit_log *l, uint64_t size1, uint64_t size2,
    uint8_t proof[][MERKLE_HASH_LEN], size_t *nproof) BS_WUR;

/*
 * Reads durable records [start, start+count) (any thread; blocking file
 * I/O, so not on the loop): calls fn(arg, index, line, len) for each (line
 * without its newline, borrowed for the call) until max_bytes would be
 * exceeded (at least one record is returned; count 0 reads nothing and
 * returns 0). *nread gets the number read.
 * Returns 0, BS_ERR_NOT_FOUND (start >= size), BS_ERR_IO, BS_ERR_NOMEM.
 */
int audit_log_read(struct audit_log *l, uint64_t start, uint64_t count, size_t max_bytes,
    int (*fn)(void *arg, uint64_t index, const uint8_t *line, size_t len), void *arg,
    uint64_t *nread) BS_WUR;

/* The file path (for messages). */
const char *audit_log_path(const struct audit_log *l);

#endif
