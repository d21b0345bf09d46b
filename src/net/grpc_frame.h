/*
 * grpc_frame.h - pure gRPC-over-HTTP/2 framing helpers (no I/O).
 *
 * Length-Prefixed-Message reassembly across DATA frames with a size cap that
 * is enforced from the 5-byte prefix before any allocation; grpc-timeout
 * parsing; grpc-message percent-encoding; content-type checks; LPM framing
 * of responses (grpc/grpc doc/PROTOCOL-HTTP2.md).
 */
#ifndef BS_GRPC_FRAME_H
#define BS_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define GRPC_LPM_HEADER_LEN 5
#define GRPC_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)

/*
 * Reassembles exactly one request message (unary RPCs), or one at a time
 * (request streams: grpc_lpm_reader_feed_some). Feed DATA bytes in
 * any chunking; the message body is allocated only once its prefix has been
 * read and its length checked against max_len.
 */
struct grpc_lpm_reader {
	uint8_t hdr[GRPC_LPM_HEADER_LEN];
	size_t hdr_have;
	uint8_t *body;      /* owned; NULL until the prefix is complete */
	size_t body_len;    /* from the prefix */
	size_t body_have;
	size_t max_len;
	int complete;       /* one full message read */
	int allow_compressed;  /* set by the caller: the stream's grpc-encoding is one it decodes */
	int compressed;     /* the message's compressed flag was set (allowed) */
	int extra;          /* bytes arrived after the message */
};

/* Initialises r with cap max_len. */
void grpc_lpm_reader_init(struct grpc_lpm_reader *r, size_t max_len);

/*
 * Consumes len bytes. Returns 0, or
 *   BS_ERR_TOO_BIG      the prefix announces more than max_len
 *   BS_ERR_UNSUPPORTED  compressed flag set without allow_compressed
 *   BS_ERR_INVALID      flag byte other than 0/1, or a second message
 *   BS_ERR_NOMEM
 * After an error the reader must not be fed again.
 */
int grpc_lpm_reader_feed(struct grpc_lpm_reader *r, const uint8_t *data, size_t len) BS_WUR;

/*
 * Consumes bytes of data until one message is complete (r->complete) or
 * data ends; *used says how many. Errors as grpc_lpm_reader_feed's, but
 * bytes after the message are left to the caller: a request stream takes
 * the message (grpc_lpm_reader_finish), calls grpc_lpm_reader_next, and
 * feeds the rest.
 */
int grpc_lpm_reader_feed_some(struct grpc_lpm_reader *r, const uint8_t *data, size_t len,
    size_t *used) BS_WUR;

/* Frees the message read and makes ready for the next (max_len and allow_compressed kept). */
void grpc_lpm_reader_next(struct grpc_lpm_reader *r);

/*
 * At END_STREAM: returns 0 and the borrowed message (valid until
 * grpc_lpm_reader_free) when exactly one complete message was read;
 * BS_ERR_TRUNCATED if the stream ended inside a prefix or body or sent
 * nothing.
 */
int grpc_lpm_reader_finish(struct grpc_lpm_reader *r, const uint8_t **msg, size_t *msg_len) BS_WUR;

/* Frees the body. */
void grpc_lpm_reader_free(struct grpc_lpm_reader *r);

/* Writes the 5-byte uncompressed prefix for a message of len bytes into out. */
void grpc_lpm_write_header(uint8_t out[GRPC_LPM_HEADER_LEN], uint32_t len);

/*
 * Parses a grpc-timeout value (1-8 ASCII digits then H, M, S, m, u or n)
 * into microseconds, rounding nanoseconds up, clamping to INT64_MAX.
 * "0n" is valid (0). Returns 0 or BS_ERR_INVALID.
 */
int grpc_timeout_parse(const char *v, size_t len, int64_t *usec_out) BS_WUR;

/* 1 if the content-type value is application/grpc or application/grpc+proto
 * (optionally followed by ";params"), else 0. */
int grpc_content_type_ok(const char *v, size_t len);

/*
 * Percent-encodes msg for grpc-message into out (capacity cap, NUL-terminated,
 * truncated at a whole escape). Returns bytes written.
 */
size_t grpc_message_encode(char *out, size_t cap, const char *msg);

#endif
