/*
 * fuzz_evidence.c - fuzz target of the evidence bundle reader and verifier
 * (src/audit/evidence.c): any bytes as a bundle file, read as a tar
 * archive and verified against its own vkey. Checks: a refused archive
 * says why and leaves nothing; every file read has a name a bundle may
 * hold; the verification always runs (no error return for a bundle) and a
 * failure names a file and a reason.
 */
#include <stdint.h>
#include <stdlib.h>

#include "audit/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evidence_bundle b;
	struct evidence_report r;
	char msg[300];
	int rc = evidence_read_tar(data, size, &b, msg, sizeof(msg));

	if (rc != 0) {
		if (msg[0] == '\0' || b.n != 0 || (rc != BS_ERR_INVALID && rc != BS_ERR_NOMEM))
			abort();
		return 0;
	}
	for (size_t i = 0; i < b.n; i++)
		if (!evidence_name_valid(b.files[i].name))
			abort();
	rc = evidence_verify(&b, NULL, 0, &r);
	if (rc != 0 && rc != BS_ERR_NOMEM)
		abort();
	if (rc == 0 && !r.ok && (r.file[0] == '\0' || r.error[0] == '\0'))
		abort();
	evidence_free(&b);
	return 0;
}
