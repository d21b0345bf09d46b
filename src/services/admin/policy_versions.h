/*
 * policy_versions.h - the versions of the authorization policy kept in the
 * store, and the unified diff between two of them.
 *
 * Layout (namespace "policy"): one row per version, id "v" followed by the
 * version in 20 decimal digits, holding a packed boltseal.v1.PolicyVersion;
 * the counter "current" is the newest version (the one in force). Versions
 * are never changed or deleted. Rows are at most STORE_DATA_MAX bytes, so a
 * stored text is at most POLICY_STORED_TEXT_MAX bytes; SetPolicy takes at
 * most POLICY_API_TEXT_MAX (it must also fit in a proposal).
 *
 * The store functions run on a worker thread, or on the main thread before
 * the event loop runs (start-up). policy_diff and policy_sha256_hex run
 * anywhere.
 */
#ifndef BS_POLICY_VERSIONS_H
#define BS_POLICY_VERSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "boltseal/v1/admin.pb-c.h"
#include "common/bs_error.h"

struct store;

#define POLICY_VERSIONS_NS "policy"
#define POLICY_API_TEXT_MAX 24000u
#define POLICY_STORED_TEXT_MAX (60u * 1024u)
#define POLICY_DIFF_MAX (16u * 1024u)      /* bytes of a diff kept in an answer or a record */
#define POLICY_ANY_BASE UINT64_MAX         /* policy_versions_append: whatever is current */
#define POLICY_SHA_HEX 64

/* The hex SHA-256 of text (len bytes) into out (65 bytes, NUL-terminated). */
void policy_sha256_hex(const char *text, size_t len, char out[POLICY_SHA_HEX + 1]);

/*
 * Reads one version (0: the current one) into *out (free it with
 * policy_version_free) and the current version into *current (0 when
 * nothing is stored; may be NULL). Returns 0; BS_ERR_NOT_FOUND (no such
 * version; *out NULL); BS_ERR_INTERNAL if the row does not unpack; the
 * store's errors.
 */
int policy_versions_get(struct store *st, uint64_t version, Boltseal__V1__PolicyVersion **out,
    uint64_t *current) BS_WUR;

/*
 * Stores v as the next version, in one transaction: when base is not
 * POLICY_ANY_BASE and the current version is not base, nothing is written
 * and BS_ERR_PRECONDITION is returned. Sets v->version; an empty
 * v->file_sha256 is copied from the version before into file_sha and
 * pointed there. *prev (may be NULL)
 * gets the version before (NULL for the first; free with
 * policy_version_free) and *current the current version after the call
 * (also on BS_ERR_PRECONDITION). Returns 0 once durable; BS_ERR_TOO_BIG
 * (the row would pass STORE_DATA_MAX); BS_ERR_INTERNAL (a row that does not
 * unpack); the store's errors.
 */
int policy_versions_append(struct store *st, uint64_t base, Boltseal__V1__PolicyVersion *v,
    char file_sha[POLICY_SHA_HEX + 1], Boltseal__V1__PolicyVersion **prev,
    uint64_t *current) BS_WUR;

/* Frees what policy_versions_get/append returned. NULL is a no-op. */
void policy_version_free(Boltseal__V1__PolicyVersion *v);

/*
 * The unified diff (3 lines of context) from text a (version av) to text b
 * (version bv), with "--- policy vAV" / "+++ policy vBV" headers: "" when
 * they are equal. Longer than max bytes: cut at a line boundary, ending with
 * "... (diff cut at MAX bytes)\n". Returns a malloc'd string, or NULL (out
 * of memory, or the diff library failed).
 */
char *policy_diff(const char *a, size_t alen, uint64_t av, const char *b, size_t blen,
    uint64_t bv, size_t max);

#endif
