/*
 * pb_strings.h - checks the string fields of a serialized protobuf message
 * before protobuf-c unpacks it, with a reader of the wire format's fields.
 *
 * protobuf-c copies a string field into a NUL-terminated C string without
 * looking at its bytes, so "nul\0x" would silently become "nul", and invalid
 * UTF-8 (which proto3 forbids in strings) would pass. This walks the wire
 * format with the message descriptor (nested messages included) and refuses
 * both. Pure, no allocation.
 */
#ifndef BS_PB_STRINGS_H
#define BS_PB_STRINGS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/bs_error.h"

/*
 * Returns 0 if every string field of the message (of type desc) in data is
 * valid UTF-8 without NUL bytes; BS_ERR_INVALID with the offending field
 * number in *field (if field is not NULL) otherwise, or when the wire format
 * is malformed or nested deeper than 32 levels.
 */
int pb_strings_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    uint32_t *field) BS_WUR;

/* One field of the protobuf wire format. */
struct pb_wire_field {
	uint32_t number;            /* the field number (as read, even when invalid) */
	unsigned wire_type;         /* 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit */
	const uint8_t *payload;     /* wire type 2: its bytes (borrowed from data) */
	size_t payload_len;
};

/*
 * Reads the field at data[*pos..len) and moves *pos past it: the one
 * reader of the wire grammar (pb_strings_check, the RPC layer's field
 * counter). 0, or BS_ERR_INVALID: a varint of more than 10 bytes or cut
 * short, field number 0 or above 2^32-1, a length past the end, wire types
 * 3 and 4 (groups, not used by proto3), 6 and 7.
 */
int pb_wire_next(const uint8_t *data, size_t len, size_t *pos, struct pb_wire_field *f) BS_WUR;

/* 1 if s (len bytes) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF) with no NUL. */
int pb_utf8_valid_nonul(const uint8_t *s, size_t len);

#endif
