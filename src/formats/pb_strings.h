/*
 * pb_strings.h - checks the string fields of a serialized protobuf message
 * before protobuf-c unpacks it.
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

/* 1 if s (len bytes) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF) with no NUL. */
int pb_utf8_valid_nonul(const uint8_t *s, size_t len);

#endif
