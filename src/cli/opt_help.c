/*
 * opt_help.c - one line of help per option, for `boltseal ... --help`
 * (opt_help.h). An option means the same in every command that takes it
 * unless a row names the command words; those rows come first and win.
 * tests/integration/test_cli.py checks that every option of every command
 * has a line.
 */
#include <string.h>

#include "cli/opt_help.h"

struct opt_line {
	const char *words;    /* "keys public-key", or NULL: every command */
	const char *name;
	const char *help;
};

static const struct opt_line lines[] = {
	/* options whose meaning depends on the command */
	{ "keys public-key", "version", "the key version (default: the primary one)" },
	{ "keys verify", "version", "verify with this key version (default: any enabled one)" },
	{ "keys disable", "version", "only this key version (default: the whole key)" },
	{ "keys enable", "version", "only this key version (default: the whole key)" },
	{ "keys schedule-destruction", "version", "only this key version (default: the whole key)" },
	{ "keys cancel-destruction", "version", "only this key version (default: the whole key)" },
	{ "propose keys", "version", "only this key version (default: the whole key)" },
	{ "policy show", "version", "this policy version (default: the one in force)" },
	{ "vehicles get", "version", "the registry entry as it was at this version" },
	{ "ota rotate-root", "version", "the new root's version (default: the next one)" },
	{ "keys sign", "out", "write the signature (raw bytes) to FILE instead of printing it" },
	{ "ca show", "out", "write the CA certificate (PEM) to FILE" },
	{ "ca crl", "out", "write the CRL (PEM) to FILE" },
	{ "ca issue", "out", "write the certificate (PEM) to FILE" },
	{ "ca renew", "out", "write the new certificate (PEM) to FILE" },
	{ "ota init", "out", "the directory for the signed root metadata" },
	{ "ota rotate-root", "out", "the directory for the new root metadata" },
	{ "ota sign", "out", "write the signed metadata to FILE" },
	{ "ota publish", "out", "the metadata directory to write (targets, snapshot, timestamp)" },
	{ "ota refresh-timestamp", "out", "the metadata directory whose timestamp is renewed" },
	{ "audit bundle", "out", "the tar archive to write" },
	{ "telemetry sign", "out", "write the signed batch (COSE_Sign1) to FILE" },
	{ "ota sign", "vehicle", "the vehicle an Uptane director targets file is for" },
	{ "audit bundle", "vehicle", "only the records about this vehicle (target or identity)" },
	{ "telemetry sign", "vehicle", "the vehicle id the batch is signed for" },
	{ "commands verify", "vehicle", "the vehicle the token must be addressed to" },
	{ "ca profile", "ca", "the CA key that signs under this profile" },
	{ "propose profile-set", "ca", "the CA key that signs under this profile" },
	{ "ca list", "ca", "only certificates of this CA key" },
	{ "commands verify", "key", "the public key (PEM) the token must be signed with" },
	{ "vehicles register", "key", "the vehicle's identity public key (PEM file)" },
	{ "vehicles add-key", "key", "the added identity public key (PEM file)" },
	{ "envelope decrypt", "key", "the key-encryption key (default: the one the blob names)" },
	{ "commands sign", "valid", "seconds the command stays valid (default 300)" },
	{ "ota delegate", "keys", "the keys of the delegated role, comma-separated" },
	{ "ota delegate", "threshold", "signatures the delegated role needs (default 1)" },
	{ "telemetry verify", "samples", "the samples file whose hash the batch must carry" },
	{ "telemetry sign", "samples", "the samples file whose SHA-256 the batch carries" },
	{ "proposals reject", "reason", "why, recorded with the vote" },
	{ "ca revoke", "reason", "the RFC 5280 reason (default unspecified)" },
	{ "checkpoint sign", "proof", "a consistency proof from the last signed size (FILE or -)" },
	{ "checkpoint cosign", "proof", "a consistency proof from the last cosigned size (FILE or -)" },
	{ "ca issue", "hours", "lifetime in hours (default: the profile's maximum)" },
	{ "checkpoint sign", "root", "the tree's root hash, 64 hex digits" },
	{ "ota publish", "targets", "the directory of the target files to publish" },
	{ "ca renew", "hours", "lifetime in hours (default: the profile's maximum)" },

	/* the same everywhere */
	{ NULL, "alg", "the key's algorithm (one of those in the usage line)" },
	{ NULL, "all", "every page, not only the first" },
	{ NULL, "allow-tail", "accept up to N records after the last checkpoint (default 0)" },
	{ NULL, "args", "the command's arguments: a JSON object, or - to read it from stdin" },
	{ NULL, "attr", "a NAME=VALUE attribute (repeatable)" },
	{ NULL, "audience", "the audience (aud) the token must name" },
	{ NULL, "base-version", "the policy version the new one replaces (refused if not in force)" },
	{ NULL, "ca-out", "write the issuing CA's certificate (PEM) to FILE" },
	{ NULL, "cert-sha256", "SHA-256 (hex) of the certificate that goes with the key" },
	{ NULL, "checkpoint", "a checkpoint kept from an earlier audit; the log must extend it" },
	{ NULL, "code", "the first code of the authenticator (asked for when missing)" },
	{ NULL, "common-name", "the CA certificate's common name" },
	{ NULL, "context", "an encryption context pair NAME=VALUE (repeatable)" },
	{ NULL, "cose", "a COSE_Sign1 token instead of a JWS" },
	{ NULL, "count", "how many samples the batch covers" },
	{ NULL, "csr", "the PKCS#10 request (PEM) with the subject's public key" },
	{ NULL, "days", "days from now" },
	{ NULL, "der-out", "write the public key as DER to FILE" },
	{ NULL, "description", "a note for the approvers" },
	{ NULL, "dialect", "the metadata dialect: tuf or aktualizr" },
	{ NULL, "diff", "print the change from the version before" },
	{ NULL, "digest", "a SHA-256 digest to sign, 64 hex digits" },
	{ NULL, "digests-file", "a file of SHA-256 digests, one hex per line" },
	{ NULL, "dir", "the copy of the audit directory to check" },
	{ NULL, "end-ms", "the end of the sampling window (Unix milliseconds)" },
	{ NULL, "expected-version", "refuse unless the entry is at this version" },
	{ NULL, "expired", "also expired certificates" },
	{ NULL, "expires-days", "days until the new root expires" },
	{ NULL, "ext", "an extension line of the checkpoint (repeatable)" },
	{ NULL, "from", "start of the window (UTC; a date or a full timestamp)" },
	{ NULL, "hash", "the request SHA-256 you read in 'proposals show'" },
	{ NULL, "hours", "lifetime in hours" },
	{ NULL, "issuer", "the issuer (iss) the token must name" },
	{ NULL, "key", "the key's name" },
	{ NULL, "key-name", "the name of the signing key" },
	{ NULL, "key-version", "the tokenization key version (default: the primary one)" },
	{ NULL, "kind", "the kind (one of those in the usage line)" },
	{ NULL, "last-seq", "the last sequence number the vehicle accepted (replay check)" },
	{ NULL, "log-vkey", "the log's own verifier key (to cosign as a witness)" },
	{ NULL, "max-hours", "the longest lifetime in hours" },
	{ NULL, "max-scan", "how many of the newest records to search (default 1000000)" },
	{ NULL, "message", "the message to sign or verify, as given" },
	{ NULL, "message-file", "the message, read from FILE (- for stdin)" },
	{ NULL, "namespace", "the tokenization namespace (tokens of two namespaces never match)" },
	{ NULL, "no-plaintext", "only the wrapped data key (GenerateDataKeyWithoutPlaintext)" },
	{ NULL, "not-after", "the key is valid until T (RFC 3339 or Unix seconds)" },
	{ NULL, "not-before", "the key is valid from T (RFC 3339 or Unix seconds)" },
	{ NULL, "now", "verify as at time T (Unix seconds; default: now)" },
	{ NULL, "origin", "the log's origin line" },
	{ NULL, "otp", "the second-factor code for this call" },
	{ NULL, "out", "write the result to FILE" },
	{ NULL, "page-size", "at most N per page" },
	{ NULL, "page-token", "the next_page_token of the page before" },
	{ NULL, "paths", "the target path patterns the role may sign, comma-separated" },
	{ NULL, "proof", "a consistency proof (FILE or -)" },
	{ NULL, "public-key-file", "verify with this public key (PEM) instead of a catalog key" },
	{ NULL, "purpose", "what the key may be used for (default generic)" },
	{ NULL, "raw", "signatures as raw r||s (IEEE P1363) instead of DER" },
	{ NULL, "reason", "why, recorded in the audit log" },
	{ NULL, "remove", "attribute names to remove, comma-separated" },
	{ NULL, "root", "root role keys, comma-separated key names" },
	{ NULL, "root-expires-days", "days until the root metadata expires" },
	{ NULL, "root-threshold", "signatures the root role needs (default 1)" },
	{ NULL, "samples", "the samples file" },
	{ NULL, "seq", "the batch's sequence number" },
	{ NULL, "signature", "the signature, base64" },
	{ NULL, "signature-file", "the signature, raw bytes from FILE" },
	{ NULL, "signing-key", "the vehicle's private key (PEM)" },
	{ NULL, "size", "the tree size" },
	{ NULL, "skew", "clock skew tolerated, seconds" },
	{ NULL, "snapshot", "snapshot role keys, comma-separated" },
	{ NULL, "snapshot-days", "days until the snapshot expires" },
	{ NULL, "snapshot-threshold", "signatures the snapshot role needs (default 1)" },
	{ NULL, "start-ms", "the start of the sampling window (Unix milliseconds)" },
	{ NULL, "status", "only vehicles in this status" },
	{ NULL, "subject", "only certificates of this subject id" },
	{ NULL, "targets", "targets role keys, comma-separated key names" },
	{ NULL, "targets-days", "days until the targets metadata expires" },
	{ NULL, "targets-out", "copy the targets under their hashed names into DIR" },
	{ NULL, "targets-threshold", "signatures the targets role needs (default 1)" },
	{ NULL, "terminating", "a terminating delegation (no later role is asked)" },
	{ NULL, "threshold", "signatures needed" },
	{ NULL, "timestamp", "timestamp role keys, comma-separated" },
	{ NULL, "timestamp-hours", "hours until the timestamp expires" },
	{ NULL, "timestamp-threshold", "signatures the timestamp role needs (default 1)" },
	{ NULL, "to", "end of the window (UTC; a date covers its whole day)" },
	{ NULL, "to-key", "re-wrap under this key-encryption key" },
	{ NULL, "ttl", "seconds the proposal stays open" },
	{ NULL, "uri-out", "write the otpauth:// URI to FILE (mode 0600) instead of the terminal" },
	{ NULL, "uri-prefix", "the URI SAN prefix; the subject id follows it" },
	{ NULL, "valid", "seconds it stays valid" },
	{ NULL, "vehicle", "the vehicle id" },
	{ NULL, "version", "the version" },
	{ NULL, "vkey", "a trusted verifier key NAME+HASH+BASE64 (repeatable)" },
	{ NULL, "vkey-file", "the trusted verifier key, read from FILE (kept off the host)" },
	{ NULL, "wait", "seconds to wait for a checkpoint that covers the seal (default 60)" },
	{ NULL, "witness-name", "this server's name as the log's witness" },
	{ NULL, "json", "print one JSON object instead of text" },
	{ NULL, "help", "this help" },
};

const char *
opt_help(const char *words, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (lines[i].words != NULL && words != NULL && strcmp(lines[i].words, words) == 0 &&
		    strcmp(lines[i].name, name) == 0)
			return lines[i].help;
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (lines[i].words == NULL && strcmp(lines[i].name, name) == 0)
			return lines[i].help;
	return NULL;
}
