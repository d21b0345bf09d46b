/*
 * audit_verify.h - offline verification of a boltseal audit directory
 * (<dir>/audit.jsonl and <dir>/checkpoints/<20 digits>.note, written by
 * auditlog.c and checkpoint.c) against TRUSTED note verifier keys. Used by
 * `boltseal audit verify` (keys the auditor brought from outside the
 * directory) and by the daemon at start-up (the keys of its own HSM audit
 * key); needs no daemon, HSM or network.
 *
 * It checks every line (UTF-8, no control characters, the exact
 * {"seq":<index>,"prev":"<64 hex>" prefix, a well-formed JSON object), the
 * seq/prev hash chain, every checkpoint's signature, origin and size, each
 * checkpoint's root against the root of the first <size> records, the
 * consistency of consecutive checkpoints, an optional pinned checkpoint
 * (one kept off the host from an earlier audit: the log must extend it),
 * and COVERAGE: the records after the newest valid checkpoint that matches
 * the log (the "uncovered tail") are protected by the hash chain only,
 * which anyone who can write the file can recompute, so more than
 * max_uncovered of them fail the verification; a log with records and no
 * valid checkpoint at all is an uncovered tail of every record. It names
 * the FIRST bad record (0-based). How a tamper maps to a record index is
 * explained at the top of audit_verify.c.
 *
 * <dir>/vkey is never read by the verification itself: a key stored next
 * to the log proves nothing about the log. audit_verify_dir_vkey compares
 * it with the trusted key (a different one means it was replaced).
 *
 * Memory: about 100 bytes per record (leaf hash, prev hash, Merkle tree).
 * Run it on a copy of the directory, or while the daemon is stopped: a line
 * being written at that moment would look like a torn last record.
 */
#ifndef BS_AUDIT_VERIFY_H
#define BS_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/merkle.h"
#include "formats/signed_note.h"

/* Trusted keys one verification takes at most (versions of the audit key). */
#define AUDIT_VERIFY_MAX_KEYS 64

/* What the verification accepts. All zero (or a NULL pointer) is the strictest. */
struct audit_verify_opts {
	/* records after the newest valid checkpoint that are acceptable */
	uint64_t max_uncovered;
	/*
	 * A checkpoint note kept elsewhere (borrowed, pinned_len bytes), or
	 * NULL. It must verify with the trusted keys (else the verification
	 * does not run: see audit_verify_files) and the log must
	 * extend it; it counts as a checkpoint that covers its size.
	 */
	const uint8_t *pinned;
	size_t pinned_len;
	/*
	 * Leaf hashes already made by a reader of the same file (the daemon's
	 * audit log, which read it just before): leaf(leaf_arg, i, out) gives
	 * record i's for i < nleaves (0, or nonzero: hashed here); the others
	 * are hashed here. NULL: every record is hashed here.
	 */
	int (*leaf)(void *leaf_arg, uint64_t i, uint8_t out[32]);
	void *leaf_arg;
	uint64_t nleaves;
};

/* The verdict. Filled by audit_verify_dir / audit_verify_files. */
struct audit_verify_report {
	uint64_t records;            /* complete lines (a torn last line is not counted) */
	size_t checkpoints;          /* checkpoint files found (<20 digits>.note) */
	uint64_t latest_size;        /* largest size of a checkpoint that verified, 0 if none */
	/*
	 * covered: the largest size of a valid checkpoint (file or pinned)
	 * whose root is the log's root at that size, 0 if none; uncovered:
	 * records - covered (0 if covered >= records).
	 */
	uint64_t covered;
	uint64_t uncovered;
	int ok;                      /* 1: everything verified */
	int64_t first_bad_record;    /* -1: none; else the first bad record (0-based) */
	uint64_t bad_checkpoint;     /* size of the first bad checkpoint, if has_bad_checkpoint */
	int has_bad_checkpoint;      /* a checkpoint failed on its own (signature, origin, format) */
	/*
	 * 1: the log verified except that uncovered > max_uncovered; then
	 * first_bad_record is covered (the first record no signature vouches
	 * for) and error says how many records and what was allowed.
	 */
	int tail_refused;
	int pinned;                  /* a pinned checkpoint was given (and verified) */
	uint64_t pinned_size;        /* its tree size */
	/*
	 * Why, NUL-terminated, without the "record N: " location: the location
	 * is first_bad_record if >= 0, else bad_checkpoint. Empty when ok. Also
	 * says why when the verification could not run.
	 */
	char error[512];
};

/*
 * Verifies <audit_dir>/audit.jsonl and <audit_dir>/checkpoints against the
 * nv trusted keys v (borrowed; from note_vkey_parse). See audit_verify_files.
 */
int audit_verify_dir(const char *audit_dir, const struct note_verifier *v, size_t nv,
    const struct audit_verify_opts *o, struct audit_verify_report *rep) BS_WUR;

/*
 * Verifies the log file log_path and the checkpoint notes in
 * checkpoints_dir (a missing checkpoints directory means no checkpoint)
 * against the nv trusted keys v (borrowed; 1 <= nv <= AUDIT_VERIFY_MAX_KEYS;
 * a note signed by any of them is accepted, its origin must be the name of
 * one of them). o may be NULL (strictest). *rep is always overwritten.
 *
 * Returns 0 when the verification ran: rep->ok is the verdict, and when it
 * is 0, rep->first_bad_record / rep->bad_checkpoint and rep->error say
 * where and why. A record problem, ordered by record index, is reported in
 * preference to a checkpoint that failed on its own (bad signature,
 * unknown signer, wrong origin, malformed); has_bad_checkpoint is set for
 * the latter in either case. An uncovered tail longer than o->max_uncovered
 * is reported (tail_refused) only when nothing else is wrong; rep->covered
 * and rep->uncovered are filled in every case.
 *
 * Returns BS_ERR_IO (log file missing or unreadable, checkpoints directory
 * unreadable; rep->error says which), BS_ERR_SIG_INVALID, BS_ERR_NOT_FOUND
 * or BS_ERR_INVALID (the pinned checkpoint does not verify with v, or is
 * not a checkpoint of their name: see audit_verify_checkpoint_open;
 * rep->error says why), BS_ERR_NOMEM, BS_ERR_CRYPTO (an
 * OpenSSL failure) or BS_ERR_INVALID (NULL argument, nv out of range) when
 * it could not run; then rep->ok is 0 and rep->first_bad_record is -1.
 */
int audit_verify_files(const char *log_path, const char *checkpoints_dir,
    const struct note_verifier *v, size_t nv, const struct audit_verify_opts *o,
    struct audit_verify_report *rep) BS_WUR;

/*
 * Opens the checkpoint note[0..len) (untrusted bytes) with the nv trusted
 * keys v: a signed note (note_open) whose body is a checkpoint
 * (checkpoint_body_parse) with the name of one of the keys as its origin.
 * Sets *size and root. Returns 0; BS_ERR_SIG_INVALID (a signature by a
 * trusted key does not verify); BS_ERR_NOT_FOUND (a well-formed note with
 * no signature line of a trusted key: "no known signer"); BS_ERR_INVALID
 * (malformed note or body, another origin, NULL argument); BS_ERR_NOMEM /
 * BS_ERR_CRYPTO. On error msg (msglen bytes) says why.
 */
int audit_verify_checkpoint_open(const uint8_t *note, size_t len, const struct note_verifier *v,
    size_t nv, uint64_t *size, uint8_t root[MERKLE_HASH_LEN], char *msg, size_t msglen) BS_WUR;

/*
 * Parses the contents of a vkey file, buf[0..len) (untrusted bytes): one
 * vkey, optionally followed by "\n" or "\r\n" (as the daemon writes
 * <dir>/vkey), no NUL byte. Returns 0 and *v; BS_ERR_INVALID,
 * BS_ERR_UNSUPPORTED (not an Ed25519 key), BS_ERR_CRYPTO (note_vkey_parse).
 */
int audit_verify_vkey_parse(const uint8_t *buf, size_t len, struct note_verifier *v) BS_WUR;

/*
 * Whether path names a file inside audit_dir, which must not be the source
 * of the trust that checks audit_dir: 1 if its resolved path
 * (realpath(3): symbolic links and ".." followed) is audit_dir's or below
 * it, or it is the same file (device and inode) as <audit_dir>/vkey (a
 * hard link); "-" (standard input) is compared by inode only. 0 if not.
 * BS_ERR_IO when path or audit_dir cannot be resolved (msg says which),
 * BS_ERR_INVALID for a NULL argument.
 */
int audit_verify_path_inside(const char *audit_dir, const char *path, char *msg,
    size_t msglen) BS_WUR;

/*
 * Compares <audit_dir>/vkey with the trusted keys v (nv of them). Returns
 * 0 (it is one of them), BS_ERR_NOT_FOUND (no such file), BS_ERR_MISMATCH
 * (a valid vkey, but none of v: it was replaced, or the audit key rotated
 * past the keys given), BS_ERR_INVALID (not a verifier key), BS_ERR_IO
 * (unreadable), BS_ERR_NOMEM. msg (msglen bytes) says what was found.
 */
int audit_verify_dir_vkey(const char *audit_dir, const struct note_verifier *v, size_t nv,
    char *msg, size_t msglen) BS_WUR;

/*
 * The daemon's start-up check of its own audit directory, after
 * audit_log_open (which cut a torn last line) and checkpointer_new, before
 * anything else is appended. v: the verifier keys of every version of the
 * HSM audit key (trusted: the daemon holds the key), nv of them.
 * max_uncovered: the configured audit_uncovered_max (or more when the
 * operator accepted a longer tail for this start). A missing audit.jsonl
 * is an empty log (a new install is fine).
 *
 * Returns 0 when the whole log verifies and at most max_uncovered records
 * follow the newest valid checkpoint (*r says how many: r->uncovered);
 * BS_ERR_MISMATCH when not: err (errlen bytes) says which record or
 * checkpoint and why, and how to inspect and recover (the exact
 * `boltseal audit verify` command); or an error of audit_verify_files when
 * it could not run (err says why). r is always filled.
 */
int audit_verify_startup(const char *audit_dir, const struct note_verifier *v, size_t nv,
    uint64_t max_uncovered, struct audit_verify_report *r, char *err, size_t errlen) BS_WUR;

/*
 * The same, taking the first nleaves records' leaf hashes from leaf() (see
 * audit_verify_opts) instead of hashing them again: the daemon's log has
 * just read and hashed the same file.
 */
int audit_verify_startup_leaves(const char *audit_dir, const struct note_verifier *v, size_t nv,
    uint64_t max_uncovered, int (*leaf)(void *, uint64_t, uint8_t[32]), void *leaf_arg,
    uint64_t nleaves, struct audit_verify_report *r, char *err, size_t errlen) BS_WUR;

/*
 * 1 if line[0..len) is exactly one well-formed JSON value of RFC 8259
 * (objects, arrays, strings with escapes, numbers, true/false/null, JSON
 * white space between tokens), nesting at most 64 deep, else 0. Exposed
 * for the unit test.
 */
int audit_verify_json_valid(const uint8_t *p, size_t len);

#endif
