/*
 * fuzz_grpc_frame.c - fuzz target of the gRPC framing decoders
 * (src/net/grpc_frame.c): the length-prefixed-message reader fed the input
 * in one piece and in pieces cut where the input's own bytes say must agree
 * on the outcome and on the message, and so must the messages of a request
 * stream taken one by one as they complete; grpc-timeout parsing of the input
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

/*
 * A request stream: every message of data, fed in one call (step 0) or in
 * chunks, each taken as it completes (feed_some, finish, next). The
 * outcome code; *count and *sum (FNV-1a over the messages, each prefixed by
 * its length) describe what was read.
 */
static int
split_stream(const uint8_t *data, size_t size, size_t step, size_t *count, uint64_t *sum)
{
	struct grpc_lpm_reader r;
	const uint8_t *m;
	size_t off = 0, n, used, len;
	int rc = 0;

	*count = 0;
	*sum = 1469598103934665603ull;
	grpc_lpm_reader_init(&r, CAP);
	r.allow_compressed = 1;
	while (off < size && rc == 0) {
		n = step == 0 ? size - off : 1 + data[off] % step;
		if (n > size - off)
			n = size - off;
		while (n > 0 && rc == 0) {
			if ((rc = grpc_lpm_reader_feed_some(&r, data + off, n, &used)) != 0)
				break;
			if (used > n)
				abort();
			off += used;
			n -= used;
			if (!r.complete)
				break;
			if (grpc_lpm_reader_finish(&r, &m, &len) != 0)
				abort();
			*sum = (*sum ^ len) * 1099511628211ull;
			for (size_t i = 0; i < len; i++)
				*sum = (*sum ^ m[i]) * 1099511628211ull;
			(*count)++;
			grpc_lpm_reader_next(&r);
			if (!r.allow_compressed || r.hdr_have != 0 || r.body != NULL)
				abort();
		}
	}
	grpc_lpm_reader_free(&r);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ca, cb;
	uint64_t sa, sb;
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
	/* a request stream: the same messages however the bytes are cut */
	ra = split_stream(data, size, 0, &ca, &sa);
	rb = split_stream(data, size, 5, &cb, &sb);
	if ((ra == 0) != (rb == 0) || (ra == 0 && (ca != cb || sa != sb)))
		abort();
	if (grpc_timeout_parse((const char *)data, size, &us) == 0 && us < 0)
		abort();
	return 0;
}
