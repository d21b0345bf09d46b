/*
 * tuf_meta.h - the rules of TUF metadata (theupdateframework.io
 * specification 1.0) that do not need a key or a store, for the OTA
 * service: roles, key objects made from a public key, the checks on the
 * "signed" part a caller sends, the version order that refuses rollbacks,
 * and the signed envelope. Pure: no I/O, no HSM; the JSON is tuf_json's.
 *
 * Dialects (tuf_json.h): TUF_CANON_OLPC is the TUF specification's form
 * (python-tuf, go-tuf, tuf-js); TUF_CANON_AKTUALIZR is aktualizr /
 * OTA-Connect's (capitalised _type, no scheme in keys, key id = SHA-256 of
 * the DER SubjectPublicKeyInfo, "method" and base64 in signatures).
 */
#ifndef BS_TUF_META_H
#define BS_TUF_META_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/bs_error.h"
#include "formats/tuf_json.h"

enum tuf_role {
	TUF_ROLE_ROOT = 0,
	TUF_ROLE_TARGETS,
	TUF_ROLE_SNAPSHOT,
	TUF_ROLE_TIMESTAMP,
	TUF_ROLE_DELEGATED,    /* a delegated targets role: _type "targets" */
};

/*
 * The role a name designates: the four top-level names, else a delegated
 * targets role when name is a valid role name (1..255 bytes of
 * [A-Za-z0-9._/-], not starting with '.' or '/', no "..", no "//").
 * BS_ERR_INVALID otherwise.
 */
int tuf_role_parse(const char *name, enum tuf_role *out) BS_WUR;

/* The "_type" the role's metadata carries in a dialect ("targets" / "Targets"). */
const char *tuf_role_type(enum tuf_role r, enum tuf_canon dialect);

/*
 * The TUF key object of a public key (DER SubjectPublicKeyInfo): Ed25519
 * ({"keytype":"ed25519","scheme":"ed25519","keyval":{"public":HEX}}) or
 * ECDSA P-256 ({"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256",
 * "keyval":{"public":PEM}}); in the aktualizr dialect {"keytype":"ED25519"|
 * "ECPRIME256V1","keyval":{"public":HEX|PEM}}. keyid gets its key id (TUF:
 * SHA-256 of the key object's canonical form; aktualizr: SHA-256 of the
 * SPKI). *key is new (json_decref it). BS_ERR_UNSUPPORTED for other keys,
 * BS_ERR_INVALID for bytes that are not an SPKI; err says why.
 */
int tuf_key_object(const uint8_t *spki, size_t len, enum tuf_canon dialect, json_t **key,
    char keyid[TUF_KEYID_HEX_LEN + 1], char *err, size_t errlen) BS_WUR;

/* What tuf_meta_check found in a role's "signed" part. */
struct tuf_meta_info {
	int64_t version;
	time_t expires;
};

/*
 * Checks signed, the "signed" part of role's metadata, before it is
 * signed: an object; "_type" the role's (tuf_role_type); in the TUF
 * dialect "spec_version" "1.<minor>.<patch>" (digits); "version" an
 * integer >= 1; "expires" "YYYY-MM-DDTHH:MM:SSZ", a real UTC time later
 * than now and no later than now + max_lifetime seconds. 0 and *info, or
 * BS_ERR_INVALID with a message naming the field (e.g. "expires
 * 2031-01-01T00:00:00Z is more than 86400 s away (the role's maximum
 * lifetime)").
 */
int tuf_meta_check(const json_t *signed_part, enum tuf_role role, enum tuf_canon dialect,
    time_t now, int64_t max_lifetime, struct tuf_meta_info *info, char *err,
    size_t errlen) BS_WUR;

/* The highest version signed so far for a role, and its canonical bytes' SHA-256. */
struct tuf_high_water {
	int present;
	int64_t version;
	uint8_t sha256[32];
};

enum tuf_order {
	TUF_ORDER_NEW = 0,     /* nothing signed yet, or a higher version: sign */
	TUF_ORDER_SAME,        /* the version signed last, same bytes: answer it again */
	TUF_ORDER_ROLLBACK,    /* a lower version: refuse */
	TUF_ORDER_FORK,        /* the version signed last with other bytes: refuse */
};

/* Where version (with canonical bytes hashing to sha256) stands against hw. */
enum tuf_order tuf_meta_order(const struct tuf_high_water *hw, int64_t version,
    const uint8_t sha256[32]);

/*
 * The rollback rules between two snapshot (or timestamp) signed parts, the
 * last one signed (prev) and the one about to be (next), as TUF clients
 * apply them (specification 5.5.5 and 5.4.3): every file prev lists under
 * "meta" is still listed by next, with a "version" no lower. 0, or
 * BS_ERR_INVALID with the file and both versions in err ("snapshot would
 * list targets.json version 3, lower than version 5 listed before").
 * Malformed "meta" (not an object of objects with integer versions) is
 * BS_ERR_INVALID too.
 */
int tuf_meta_listed_versions(const json_t *prev, const json_t *next, enum tuf_role role,
    char *err, size_t errlen) BS_WUR;

/* One signature of the envelope: its key id and raw signature bytes. */
struct tuf_signature {
	char keyid[TUF_KEYID_HEX_LEN + 1];
	const char *method;          /* aktualizr only: "ed25519", "ecdsa-sha256"... */
	const uint8_t *sig;
	size_t sig_len;
};

/*
 * The metadata file: {"signatures":[...],"signed":signed_part} as
 * ordinary JSON (sorted keys, no white space, standard escaping: the
 * aktualizr form, which every JSON parser reads; OLPC's raw control
 * characters are only for the bytes signed), signatures in the order given, each {"keyid",
 * "sig": hex} (aktualizr: {"keyid","method","sig": base64}). Key ids must
 * be distinct. *out malloc'd, NUL-terminated. BS_ERR_INVALID or
 * BS_ERR_NOMEM.
 */
int tuf_meta_envelope(const json_t *signed_part, const struct tuf_signature *sigs, size_t nsigs,
    enum tuf_canon dialect, char **out, size_t *len) BS_WUR;

#endif
