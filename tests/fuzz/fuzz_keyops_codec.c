/*
 * fuzz_keyops_codec.c - fuzz target of the key door's decoders
 * (src/keyops/codec.c): any bytes, as a request and as an answer. A message
 * that decodes must encode again to the very same bytes (the codec has one
 * encoding per message), and nothing may crash or leak. Built for libFuzzer
 * (tests/fuzz/README.md) and, with replay.c, run over its seed corpus by
 * make check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyops/keyops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyop_request r;
	struct keyop_answer a;
	uint8_t *out = NULL;
	size_t len = 0;

	if (keyops_request_decode(data, size, &r) == 0) {
		if (keyops_request_encode(&r, &out, &len) != 0 || len != size ||
		    memcmp(out, data, size) != 0)
			abort();
		free(out);
		keyop_request_clear(&r);
	}
	if (keyops_answer_decode(data, size, &a) == 0) {
		if (keyops_answer_encode(&a, &out, &len) != 0 || len != size ||
		    memcmp(out, data, size) != 0)
			abort();
		free(out);
		keyop_answer_clear(&a);
	}
	return 0;
}
