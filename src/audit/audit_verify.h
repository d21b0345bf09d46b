/*
 * audit_verify.h - offline verification of a boltseal audit directory
 * (<dir>/audit.jsonl and <dir>/checkpoints/<20 digits>.note, written by
 * auditlog.c and checkpoint.c) against a trusted note verifier key. Used by
 * `boltseal audit verify`; needs no daemon, HSM or network.
 *
 * It checks every line (UTF-8, no control characters, the exact
 * {"seq":<index>,"prev":"<64 hex>" prefix, a well-formed JSON object), the
 * seq/prev hash chain, every checkpoint's signature, origin and size, each
 * checkpoint's root against the root of the first <size> records, and the
 * consistency of consecutive checkpoints, and names the FIRST bad record
 * (0-based). How a tamper maps to a record index is explained at the top
 * of audit_verify.c.
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
#include "formats/signed_note.h"

/* The verdict. Filled by audit_verify_dir / audit_verify_files. */
struct audit_verify_report {
	uint64_t records;            /* complete lines (a torn last line is not counted) */
	size_t checkpoints;          /* checkpoint files found (<20 digits>.note) */
	uint64_t latest_size;        /* largest size of a checkpoint that verified, 0 if none */
	int ok;                      /* 1: everything verified */
	int64_t first_bad_record;    /* -1: none; else the first bad record (0-based) */
	uint64_t bad_checkpoint;     /* size of the first bad checkpoint, if has_bad_checkpoint */
	int has_bad_checkpoint;      /* a checkpoint failed on its own (signature, origin, format) */
	/*
	 * Why, NUL-terminated, without the "record N: " location: the location
	 * is first_bad_record if >= 0, else bad_checkpoint. Empty when ok. Also
	 * says why when the verification could not run.
	 */
	char error[512];
};

/*
 * Verifies <audit_dir>/audit.jsonl and <audit_dir>/checkpoints against the
 * trusted key v (borrowed; from note_vkey_parse). See audit_verify_files.
 */
int audit_verify_dir(const char *audit_dir, const struct note_verifier *v,
    struct audit_verify_report *rep) BS_WUR;

/*
 * Verifies the log file log_path and the checkpoint notes in
 * checkpoints_dir (a missing checkpoints directory means no checkpoint)
 * against v (borrowed). *rep is always overwritten.
 *
 * Returns 0 when the verification ran: rep->ok is the verdict, and when it
 * is 0, rep->first_bad_record / rep->bad_checkpoint and rep->error say
 * where and why. A record problem, ordered by record index, is reported in
 * preference to a checkpoint that failed on its own (bad signature,
 * unknown signer, wrong origin, malformed); has_bad_checkpoint is set for
 * the latter in either case.
 *
 * Returns BS_ERR_IO (log file missing or unreadable, checkpoints directory
 * unreadable; rep->error says which), BS_ERR_NOMEM, BS_ERR_CRYPTO (an
 * OpenSSL failure) or BS_ERR_INVALID (NULL argument) when it could not
 * run; then rep->ok is 0 and rep->first_bad_record is -1.
 */
int audit_verify_files(const char *log_path, const char *checkpoints_dir,
    const struct note_verifier *v, struct audit_verify_report *rep) BS_WUR;

/*
 * 1 if line[0..len) is exactly one well-formed JSON value of RFC 8259
 * (objects, arrays, strings with escapes, numbers, true/false/null, JSON
 * white space between tokens), nesting at most 64 deep, else 0. Exposed
 * for the unit test.
 */
int audit_verify_json_valid(const uint8_t *p, size_t len);

#endif
