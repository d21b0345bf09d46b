/*
 * fuzz_grpc_frame.c - fuzz target of the gRPC framing decoders
 * (src/net/grpc_frame.c): the length-prefixed-message reader fed the input
 * in one piece and in pieces cut where the input's own bytes say must agree
 * on the outcome and on the message; grpc-timeout parsing of the input
 * must never give a negative deadline.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/grpc_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096

/* Feeds data in one call (step 0) or in chunks of 1..step bytes; outcome as a code. */
static int
reassemble(const uint8_t *data, size_t size, size_t step, uint8_t **msg, size_t *len)
{
	struct grpc_lpm_reader r;
	const uint8_t *m = NULL;
	size_t off = 0, n;
	int rc = 0;

	*msg = NULL;
	*len = 0;
	grpc_lpm_reader_init(&r, CAP);
	while (off < size && rc == 0) {
		n = step == 0 ? size - off : 1 + data[off] % step;
		if (n > size - off)
			n = size - off;
		rc = grpc_lpm_reader_feed(&r, data + off, n);
		off += n;
	}
	if (rc == 0 && (rc = grpc_lpm_reader_finish(&r, &m, len)) == 0) {
		if ((*msg = malloc(*len + 1)) == NULL)
			abort();
		memcpy(*msg, m, *len);
	}
	grpc_lpm_reader_free(&r);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *a, *b;
	size_t alen, blen;
	int64_t us;
	int ra, rb;

	ra = reassemble(data, size, 0, &a, &alen);
	rb = reassemble(data, size, 7, &b, &blen);
	/* an error may come from a later chunk in the split feed, never a different success */
	if ((ra == 0) != (rb == 0) || (ra == 0 && (alen != blen || memcmp(a, b, alen) != 0)))
		abort();
	free(a);
	free(b);
	if (grpc_timeout_parse((const char *)data, size, &us) == 0 && us < 0)
		abort();
	return 0;
}
