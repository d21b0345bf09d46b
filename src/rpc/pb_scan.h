/*
 * pb_scan.h - counts the fields of a serialized protobuf request before
 * protobuf-c decodes it.
 *
 * protobuf_c_message_unpack() allocates per field: a ScannedMember for every
 * tag, a ProtobufCMessageUnknownField and a copy of its bytes for every field
 * whose number the message type does not know, a sub-message for every
 * nested message. A 4 MiB message of 2-byte unknown fields makes it
 * allocate about 200 MB. This walk costs no allocation, follows the wire
 * format (https://protobuf.dev/programming-guides/encoding/) with the message
 * descriptor, and stops as soon as a count passes its cap, so the decoder
 * only ever sees requests whose field counts are bounded. Pure.
 */
#ifndef BS_RPC_PB_SCAN_H
#define BS_RPC_PB_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/bs_error.h"

/* Nesting deeper than this is malformed (as for pb_strings_check). */
#define RPC_PB_SCAN_MAX_DEPTH 32

struct rpc_pb_count {
	/*
	 * Every field on the wire, at every depth: a nested message is one
	 * field plus its own; each element of a packed repeated scalar field
	 * counts as one (protobuf-c decodes each into an array slot).
	 */
	uint64_t fields;
	/* Fields whose number the descriptor of their message does not know, at every depth. */
	uint64_t unknown;
};

/*
 * Counts the fields of data (len bytes, a message of type desc, borrowed).
 * The walk stops at the first field that takes fields past max_fields or
 * unknown past max_unknown (UINT64_MAX: no cap).
 * Returns 0 (*out holds both counts), BS_ERR_TOO_BIG (a cap was passed: *out
 * holds the counts when the walk stopped, so exactly one of them is its cap
 * plus one), or BS_ERR_INVALID (the wire format is malformed: a truncated or
 * over-long varint, a length past the end, field number 0 or > 2^32-1, wire
 * type 3, 4, 6 or 7, nesting deeper than RPC_PB_SCAN_MAX_DEPTH; *out is not
 * set). Every input pb_strings_check() accepts is well-formed here, and every
 * input refused here as malformed it refuses too.
 */
int rpc_pb_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    uint64_t max_fields, uint64_t max_unknown, struct rpc_pb_count *out) BS_WUR;

#endif
