/*
 * fuzz_audit_json.c - fuzz target of the audit verifier's JSON checker
 * (src/audit/audit_verify.c, audit_verify_json_valid), which reads every
 * line of an audit log an attacker may have edited.
 */
#include <stdint.h>
#include <stdlib.h>

#include "audit/audit_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ok = audit_verify_json_valid(data, size);

	if (ok != 0 && ok != 1)
		abort();
	return 0;
}
