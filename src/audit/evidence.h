/*
 * evidence.h - evidence bundles: one tar archive (POSIX pax) that lets an
 * auditor or insurer check, offline and with standard tools, what boltseal
 * recorded in a time window (docs/audit.md, "Evidence bundles").
 *
 * Files (flat names; certs/, crls/ and keys/ one level deep):
 *   README          how to verify by hand (sha256sum, a Go note verifier, openssl)
 *   records.jsonl   the audit records of the window, byte for byte, one per line
 *   certs/NAME.pem  CA certificates (ca-NAME.pem) and issued certificates in force
 *   crls/NAME.pem   each CA's newest CRL
 *   keys/NAME.pem   the public keys (NAME-vVERSION.pem) the records name
 *   MANIFEST        "SHA256HEX  NAME" per file above, sorted (sha256sum -c)
 *   seal.json       the audit record of the SealEvidence call that holds
 *                   SHA-256(MANIFEST) in fields."evidence.manifest_sha256"
 *   proofs.jsonl    {"seq":N,"leaf":"HEX","hashes":["HEX",...]} per record of
 *                   records.jsonl, in order, then one for seal.json: RFC 6962
 *                   inclusion proofs in the checkpoint's tree
 *   checkpoint      a C2SP tlog-checkpoint signed note covering the seal
 *   vkey            its verifier key (NAME+HASH+BASE64)
 *
 * The signed checkpoint vouches for seal.json and the records (through the
 * proofs), the seal for MANIFEST, MANIFEST for every other file: a changed
 * byte anywhere fails the verification, which names the file.
 */
#ifndef BS_AUDIT_EVIDENCE_H
#define BS_AUDIT_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/signed_note.h"

#define EVIDENCE_MAX_FILES 20000
#define EVIDENCE_MAX_FILE (128u * 1024 * 1024)    /* one file */
#define EVIDENCE_MAX_TOTAL (256u * 1024 * 1024)   /* every file */
#define EVIDENCE_NAME_MAX 100
#define EVIDENCE_VEHICLE_MAX 128
#define EVIDENCE_TS_LEN 24                        /* 2026-11-21T04:26:30.172Z */
#define EVIDENCE_SEAL_METHOD "boltseal.v1.AuditService/SealEvidence"

struct evidence_file {
	char *name;
	uint8_t *data;
	size_t len;
};

/* The files of a bundle, in the order added. */
struct evidence_bundle {
	struct evidence_file *files;
	size_t n, cap;
	size_t total;           /* bytes of every file */
};

void evidence_init(struct evidence_bundle *b);
void evidence_free(struct evidence_bundle *b);

/*
 * Adds a copy of data[0..len) as name. Returns 0; BS_ERR_INVALID (a name
 * evidence_name_valid refuses), BS_ERR_EXISTS (that name is there),
 * BS_ERR_TOO_BIG (a limit above), BS_ERR_NOMEM.
 */
int evidence_add(struct evidence_bundle *b, const char *name, const void *data, size_t len) BS_WUR;

/* The file called name, or NULL. */
const struct evidence_file *evidence_find(const struct evidence_bundle *b, const char *name);

/*
 * 1 if name is one of the fixed names above, or certs/X, crls/X or keys/X
 * with X of [A-Za-z0-9._-], 1 to EVIDENCE_NAME_MAX bytes in all, not
 * starting with '.'; else 0.
 */
int evidence_name_valid(const char *name);

/* 1 if s is exactly a record timestamp, YYYY-MM-DDTHH:MM:SS.mmmZ, of a real date. */
int evidence_ts_valid(const char *s);
/* The same check; 0 and *unix_s (its second; unix_s may be NULL), or -1. */
int evidence_ts_unix(const char *s, int64_t *unix_s);

/* 1 if s is 1..EVIDENCE_VEHICLE_MAX printable ASCII characters without '"' or '\\'. */
int evidence_vehicle_valid(const char *s);

/*
 * Makes MANIFEST from every file that is not MANIFEST, seal.json,
 * proofs.jsonl, checkpoint or vkey, adds it, and sets sha to its SHA-256.
 * Returns 0 or an error of evidence_add.
 */
int evidence_make_manifest(struct evidence_bundle *b, uint8_t sha[32]) BS_WUR;

/*
 * The bundle as a pax tar archive, members in name order, mode 0644,
 * owner 0, time mtime. *out is malloc'd. 0, BS_ERR_NOMEM or BS_ERR_IO.
 */
int evidence_write_tar(const struct evidence_bundle *b, int64_t mtime, uint8_t **out,
    size_t *outlen) BS_WUR;

/*
 * Reads a tar archive buf[0..len) (untrusted bytes) into b (initialised by
 * the call): regular files only (directories are skipped), names as
 * evidence_name_valid (a leading "./" is dropped), no name twice, within
 * the limits above. Returns 0; BS_ERR_INVALID (msg says why, and names
 * the member), BS_ERR_NOMEM. On error b is empty.
 */
int evidence_read_tar(const uint8_t *buf, size_t len, struct evidence_bundle *b, char *msg,
    size_t msglen) BS_WUR;

/* The verdict of evidence_verify. */
struct evidence_report {
	int ok;
	char file[EVIDENCE_NAME_MAX + 1];  /* the file at fault ("" when ok) */
	char error[600];                   /* why ("" when ok) */
	int trust_from_bundle;             /* no trusted key given: the bundled vkey was used */
	char signer[NOTE_NAME_MAX + 1];    /* the checkpoint's origin */
	uint64_t tree_size;                /* the checkpoint's size */
	uint64_t records, first_seq, last_seq, seal_seq;
	char from[EVIDENCE_TS_LEN + 1], to[EVIDENCE_TS_LEN + 1];
	char vehicle[EVIDENCE_VEHICLE_MAX + 1];
	size_t certs, crls, keys;
};

/*
 * Verifies bundle b (untrusted) against the nv trusted verifier keys v
 * (nv may be 0: then the bundle's own vkey is used and trust_from_bundle
 * is set; the caller must say so). In order: vkey (parses; one of v),
 * checkpoint (signed by it, a checkpoint of its name), proofs.jsonl (one
 * proof per record plus the seal, each leading to the checkpoint's root),
 * seal.json and records.jsonl (each line's leaf hash is its proof's; seal:
 * an OK SealEvidence record naming SHA-256(MANIFEST)), MANIFEST (well
 * formed, lists exactly the other files, each hash right), the records
 * (inside the sealed window, of the sealed vehicle, seq increasing, and
 * consecutive when no vehicle was given; as many as sealed).
 * Returns 0 when the verification ran (r->ok is the verdict; when 0,
 * r->file and r->error say where and why), BS_ERR_NOMEM or BS_ERR_INVALID
 * (NULL argument) when it could not.
 */
int evidence_verify(const struct evidence_bundle *b, const struct note_verifier *v, size_t nv,
    struct evidence_report *r) BS_WUR;

/*
 * 1 if the audit record line[0..len) belongs to vehicle: its "target" is
 * vehicle, or its "identity" ends in "/" vehicle (a vehicle's URI SAN);
 * 0 if not or the line is not a JSON object.
 */
int evidence_record_of_vehicle(const uint8_t *line, size_t len, const char *vehicle);

#endif
