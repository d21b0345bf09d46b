/*
 * checkpoint.h - signed checkpoints of the audit log.
 *
 * A checkpoint is a C2SP tlog-checkpoint ("<origin>\n<size>\n<b64 root>\n")
 * wrapped in a C2SP signed note whose one signature is Ed25519 by the HSM
 * key of purpose "audit" (key name in the note = the origin). Each one is
 * stored as <audit dir>/checkpoints/<size, 20 digits>.note, written
 * atomically (temporary file, fsync, rename, fsync of the directory).
 *
 * The store functions do blocking file I/O (worker threads, start-up, the
 * CLI). The checkpointer schedules signing on the event loop: after
 * audit_checkpoint_records new records or every audit_checkpoint_interval_ms
 * when the log grew, it submits one HSM job (never two at once) that signs
 * and stores; the latest checkpoint is then served from memory.
 */
#ifndef BS_CHECKPOINT_H
#define BS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/merkle.h"

struct event_base;
struct keyclient;
struct workq;
struct catalog;
struct audit_log;
struct checkpointer;

#define CHECKPOINT_NOTE_MAX 4096

/* Stores note (len bytes) as the checkpoint of size. 0 or BS_ERR_IO. */
int checkpoint_store_write(const char *dir, uint64_t size, const uint8_t *note, size_t len) BS_WUR;

/*
 * Lists the stored checkpoint sizes, ascending (*sizes malloc'd, caller
 * frees; *n may be 0). 0, BS_ERR_IO, BS_ERR_NOMEM.
 */
int checkpoint_store_list(const char *dir, uint64_t **sizes, size_t *n) BS_WUR;

/* Reads the checkpoint of size (*note malloc'd). 0, BS_ERR_NOT_FOUND, BS_ERR_IO, BS_ERR_TOO_BIG. */
int checkpoint_store_read(const char *dir, uint64_t size, uint8_t **note, size_t *len) BS_WUR;

/*
 * Raw Ed25519 public key from its DER SubjectPublicKeyInfo (44 bytes).
 * 0 or BS_ERR_INVALID.
 */
int checkpoint_ed25519_raw(const uint8_t *spki, size_t spki_len, uint8_t pub[32]) BS_WUR;

/*
 * Starts a checkpointer (event loop thread) signing with the primary
 * version of key key_name (purpose audit, Ed25519) from the catalog through
 * the key door (keys), storing under dir from the work queue (work). Reads
 * the latest stored checkpoint, if any. Borrowed: base, keys, work, catalog,
 * log. The latest stored checkpoint must
 * match the log (size within it, same root at that size), else
 * BS_ERR_MISMATCH: records were removed or altered. Also 0,
 * BS_ERR_NOT_FOUND (no such key), BS_ERR_INVALID (wrong purpose or
 * algorithm), BS_ERR_IO, BS_ERR_NOMEM; err says why.
 */
int checkpointer_new(struct event_base *base, struct keyclient *keys, struct workq *work,
    struct catalog *cat, struct audit_log *log, const char *dir, const char *origin, const char *key_name,
    unsigned interval_ms, struct checkpointer **out, char *err, size_t errlen) BS_WUR;

/* Asks for a checkpoint now if the log grew since the last one. */
void checkpointer_poke(struct checkpointer *cp);

/*
 * No new checkpoint starts after this (pokes, flushes and the timer do
 * nothing); a signing job in flight still finishes. Call it before the work
 * queue and the key door are stopped, so their last callbacks start nothing.
 */
void checkpointer_stop(struct checkpointer *cp);

/*
 * Signs a checkpoint over every durable record, then calls fn(arg) (also
 * when there is nothing new to sign or signing failed: at shutdown, so the
 * stop record is covered and no unsigned tail is left behind).
 */
void checkpointer_flush(struct checkpointer *cp, void (*fn)(void *arg), void *arg);

/*
 * The latest checkpoint (borrowed until the next loop iteration): its note,
 * tree size, and the vkey ("<name>+<hash>+<b64>") of the key that signed
 * it. BS_ERR_NOT_FOUND before the first.
 */
int checkpointer_latest(const struct checkpointer *cp, const uint8_t **note, size_t *len,
    uint64_t *size, const char **vkey) BS_WUR;

/* The audit key's current vkey (for the docs, the CLI and GetCheckpoint). */
const char *checkpointer_vkey(const struct checkpointer *cp);

/*
 * Frees, with a signing job the key door dropped unanswered. Call it after
 * the work queue and the key door are freed (a job in flight points here).
 */
void checkpointer_free(struct checkpointer *cp);

#endif
