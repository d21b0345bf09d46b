/*
 * registry.h - the vehicle registry's records and their storage (store
 * namespace "vehicles"; worker threads only, like every store call).
 *
 * A record is a JSON object (jansson):
 *   {"id", "attributes": {NAME: VALUE}, "identities": [{"public_key": B64 SPKI,
 *    "key_id": HEX SHA-256(SPKI), "cert_sha256", "not_before", "not_after",
 *    "revoked_at", "revoked_reason"}], "status": "active"|"suspended"|
 *    "decommissioned", "status_reason", "provisioned_at", "updated_at",
 *    "version"}
 * The current record is the row "v/ID", whose store version is the record's
 * "version"; every version is also kept as "h/ID/VERSION" (20 digits), so
 * the history can be read back and never changes. The id, the provisioning
 * time and the first identity's key are immutable: vehicle_write refuses a
 * record that changes them.
 */
#ifndef BS_VEHICLE_REGISTRY_H
#define BS_VEHICLE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"
#include "store/store.h"

#define VEHICLE_NS "vehicles"
#define VEHICLE_ID_MAX 64
#define VEHICLE_ATTRS_MAX 32
#define VEHICLE_ATTR_NAME_MAX 64
#define VEHICLE_ATTR_VALUE_MAX 256
#define VEHICLE_IDENTITIES_MAX 8
#define VEHICLE_REASON_MAX 256

enum vehicle_status {
	VEHICLE_ACTIVE = 1,
	VEHICLE_SUSPENDED = 2,
	VEHICLE_DECOMMISSIONED = 3,
};

/* 1..64 of [A-Za-z0-9._-], starting alphanumeric. */
int vehicle_id_valid(const char *id);
/* Attribute names: 1..64 of [a-z0-9_.-], starting with a letter. */
int vehicle_attr_name_valid(const char *name);

/* "active", "suspended", "decommissioned"; NULL for anything else. */
const char *vehicle_status_name(int status);
/* The inverse; 0 for an unknown name. */
int vehicle_status_of(const json_t *rec);

/*
 * A new identity object for a DER SubjectPublicKeyInfo (ECDSA P-256 or
 * Ed25519), an optional certificate thumbprint (64 hex digits or "") and a
 * validity (0 = unbounded). BS_ERR_INVALID with the reason in err.
 */
int vehicle_identity_new(const uint8_t *spki, size_t len, const char *cert_sha256,
    int64_t not_before, int64_t not_after, json_t **out, char *err, size_t errlen) BS_WUR;

/*
 * A certificate issued to the vehicle of rec (CertificateService) for the
 * key spki, noted in its identities: the key's entry names the certificate
 * (thumbprint, validity) if the key is known, else a new entry is added,
 * after the entries of certificates expired by now are dropped (never the
 * first identity). 0; BS_ERR_PRECONDITION (the key's identity is revoked,
 * or VEHICLE_IDENTITIES_MAX are in force) or BS_ERR_INVALID (spki), with
 * why; BS_ERR_NOMEM. After a failure rec may be changed: discard it.
 */
int vehicle_note_certificate(json_t *rec, const uint8_t *spki, size_t len, const char *cert_sha256,
    int64_t not_before, int64_t not_after, int64_t now, char *why, size_t whylen) BS_WUR;

/*
 * A revoked certificate noted in rec: every identity not yet revoked whose
 * cert_sha256 is cert_sha256, or (key_id not NULL: the key is compromised)
 * whose key_id is key_id, gets revoked_at = now and reason. The number
 * marked (0: none), or BS_ERR_NOMEM.
 */
int vehicle_note_revocation(json_t *rec, const char *cert_sha256, const char *key_id, int64_t now,
    const char *reason) BS_WUR;

/*
 * Reads a vehicle: the current record (version 0) or that version's. 0 and
 * *rec (json_decref it) and *row_version (the current row's, for
 * vehicle_write); BS_ERR_NOT_FOUND; BS_ERR_INVALID for a row this module
 * did not write; the store's errors.
 */
int vehicle_read(struct store_txn *tx, const char *id, uint64_t version, json_t **rec,
    uint64_t *row_version) BS_WUR;

/*
 * The registry's generation for vehicle id: raised by
 * vehicle_registry_changed(id) after every committed change of that vehicle
 * (before its answer), so that a reader who saw generation g before reading
 * the record knows it is still current while the generation is g. Kept per
 * shard of ids (a change may raise other vehicles' too: they re-check, no
 * harm). In this process only: the store admits one process (store_open).
 */
uint64_t vehicle_registry_generation(const char *id);
void vehicle_registry_changed(const char *id);

/*
 * The current row's version only (nothing parsed): 0 and *row_version,
 * BS_ERR_NOT_FOUND, the store's errors.
 */
int vehicle_row_version(struct store_txn *tx, const char *id, uint64_t *row_version) BS_WUR;

/*
 * Writes rec as the vehicle's next version: row_version 0 registers it
 * (BS_ERR_EXISTS if the id is taken), else the current row must still be
 * at row_version (BS_ERR_PRECONDITION otherwise: another change won). Sets
 * rec's "version" and "updated_at" (now). prev (NULL at registration) is
 * the record read: a change of an immutable field is BS_ERR_INVALID.
 * BS_ERR_TOO_BIG when the record passes a row's size.
 */
int vehicle_write(struct store_txn *tx, const json_t *prev, json_t *rec, uint64_t row_version,
    int64_t now) BS_WUR;

/*
 * Calls cb for each current record whose id sorts after `after` (NULL or
 * "": from the first), in id order, reading at most scan_max rows; cb
 * returns 0 to go on, 1 to stop (the page is full), or an error. *last
 * gets the id of the last row read ("" when none). 0 or an error.
 */
typedef int (*vehicle_cb)(void *arg, json_t *rec);
int vehicle_scan(struct store_txn *tx, const char *after, size_t scan_max, vehicle_cb cb,
    void *arg, char last[VEHICLE_ID_MAX + 1]) BS_WUR;

#endif
