/*
 * fuzz_envblob.c - fuzz target of the envelope blob decoder
 * (src/formats/envblob.c). A refusal leaves the output all zero; an
 * accepted blob has its fields within the format's bounds, its ciphertext
 * inside the input, and encodes back to exactly the input (one spelling
 * per blob); its AAD with an empty context is the prefix and the header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/envblob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct envblob zero;
	struct envblob b;
	uint8_t *out = NULL, *aad = NULL;
	size_t out_len = 0, aad_len = 0, h;

	if (envblob_decode(data, size, &b) != 0) {
		if (memcmp(&b, &zero, sizeof(b)) != 0)
			abort();
		return 0;
	}
	h = envblob_header_len(&b);
	if (b.kek_version == 0 || b.ct_len == 0 || b.ct_len > ENVBLOB_DATA_MAX ||
	    strlen(b.kek) == 0 || strlen(b.kek) > ENVBLOB_NAME_MAX || b.ct != data + h ||
	    h + b.ct_len + ENVBLOB_TAG_LEN != size)
		abort();
	if (envblob_encode(&b, &out, &out_len) != 0 || out_len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	if (envblob_aad(&b, NULL, 0, &aad, &aad_len) != 0 ||
	    aad_len != strlen(ENVBLOB_AAD_PREFIX) + h ||
	    memcmp(aad + strlen(ENVBLOB_AAD_PREFIX), data, h) != 0)
		abort();
	free(out);
	free(aad);
	return 0;
}
