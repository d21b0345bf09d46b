/*
 * fuzz_audit_json.c - fuzz target of what the offline audit verifier reads
 * from files an attacker may have edited (src/audit/audit_verify.c): every
 * line of the log (audit_verify_json_valid), a pinned checkpoint note
 * (audit_verify_checkpoint_open) and a vkey file (audit_verify_vkey_parse).
 */
#include <stdint.h>
#include <stdlib.h>

#include "audit/audit_verify.h"
#include "common/bs_error.h"
#include "formats/signed_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A verifier for "fuzz.example/log" with a fixed Ed25519 public key. */
static const char vkey[] =
    "fuzz.example/log+b6ecec97+AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct note_verifier fixed, got;
	uint8_t root[MERKLE_HASH_LEN];
	uint64_t tree_size = 0;
	char msg[256];
	int ok = audit_verify_json_valid(data, size), rc;

	if (ok != 0 && ok != 1)
		abort();
	if (note_vkey_parse(vkey, &fixed) != 0)
		abort();
	rc = audit_verify_checkpoint_open(data, size, &fixed, 1, &tree_size, root, msg, sizeof(msg));
	if (rc != 0 && rc != BS_ERR_SIG_INVALID && rc != BS_ERR_NOT_FOUND && rc != BS_ERR_INVALID &&
	    rc != BS_ERR_NOMEM && rc != BS_ERR_CRYPTO)
		abort();
	rc = audit_verify_vkey_parse(data, size, &got);
	if (rc == 0 && !note_name_valid(got.name))
		abort();
	return 0;
}
