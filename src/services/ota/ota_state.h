/*
 * ota_state.h - the durable high-water marks of the OTA service (TUF and
 * Uptane metadata signing): for each metadata stream (a repository's role,
 * or a director repository's role for one vehicle) the highest version
 * signed, the SHA-256 of its canonical signed part and, when it fits, the
 * metadata file that was returned, so that a retried call gets the same
 * bytes. Kept in the store (namespace "tuf", one versioned row per stream)
 * and written with compare-and-set, so two signers racing for the same
 * version cannot both win. Store rules apply: worker threads only.
 */
#ifndef BS_OTA_STATE_H
#define BS_OTA_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/tuf_meta.h"
#include "store/store.h"

#define OTA_STORE_NS "tuf"
#define OTA_MARK_ID_MAX STORE_ID_MAX

/* One stream's mark as read. */
struct ota_mark {
	struct tuf_high_water hw;   /* hw.present 0: nothing signed yet */
	uint64_t row_version;       /* the store row's version; 0 when there is none */
	uint8_t *metadata;          /* the file returned for hw.version, or NULL (too big to keep) */
	size_t metadata_len;
};

/*
 * The row id of a stream: "mark/REPO/ROLE" or "mark/REPO/ROLE@VEHICLE".
 * repo and vehicle: 1..64 of [A-Za-z0-9._-] starting alphanumeric; role:
 * tuf_role_parse's names. BS_ERR_INVALID (nothing written) otherwise.
 */
int ota_mark_id(const char *repo, const char *role, const char *vehicle,
    char id[OTA_MARK_ID_MAX + 1]) BS_WUR;

/*
 * Reads the stream's mark into *m (cleared first; ota_mark_clear frees it).
 * No row yet is 0 with m->hw.present 0. BS_ERR_INVALID for a row this
 * module did not write; the store's errors otherwise.
 */
int ota_mark_get(struct store_txn *tx, const char *id, struct ota_mark *m) BS_WUR;

/*
 * Advances the stream from prev (as ota_mark_get read it in this or an
 * earlier transaction) to version, whose canonical signed part hashes to
 * sha256, keeping metadata (len bytes) when it fits in a row. Refused with
 * BS_ERR_PRECONDITION when version is not above prev (the caller checks
 * tuf_meta_order first; this is the last line) or when the row changed
 * since prev was read (another signer won: read again). Durable once the
 * transaction commits.
 */
int ota_mark_put(struct store_txn *tx, const char *id, const struct ota_mark *prev,
    int64_t version, const uint8_t sha256[32], const uint8_t *metadata, size_t len) BS_WUR;

/* Frees what ota_mark_get allocated. */
void ota_mark_clear(struct ota_mark *m);

#endif
