/*
 * fuzz_csr.c - fuzz target of the CSR check of the certificate service
 * (src/formats/csr.c): any bytes as the PEM a client sends. Checks: a key
 * comes back exactly when the answer is 0, and then it is P-256 or
 * Ed25519 and the reason is NULL; a refusal always says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "formats/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *k = NULL;
	const char *why = NULL;
	int rc, id;

	rc = csr_public_key((const char *)data, size, &k, &why);
	if (rc == 0) {
		if (k == NULL || why != NULL)
			abort();
		id = EVP_PKEY_get_base_id(k);
		if (id != EVP_PKEY_EC && id != EVP_PKEY_ED25519)
			abort();
	} else if (k != NULL || rc != BS_ERR_INVALID || why == NULL || why[0] == '\0') {
		abort();
	}
	EVP_PKEY_free(k);
	return 0;
}
