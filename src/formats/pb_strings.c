/*
 * pb_strings.c - string-field validation of serialized protobuf messages
 * (see pb_strings.h).
 */
#include "common/utf8.h"
#include "formats/pb_strings.h"

#define MAX_DEPTH 32

int
pb_utf8_valid_nonul(const uint8_t *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (s[i] == 0 || (n = bs_utf8_decode(s + i, len - i, NULL)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Reads a base-128 varint at *pos; 0 or BS_ERR_INVALID. */
static int
read_varint(const uint8_t *data, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift;

	for (shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*pos >= len)
			return BS_ERR_INVALID;
		b = data[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return BS_ERR_INVALID;
}

int
pb_wire_next(const uint8_t *data, size_t len, size_t *pos, struct pb_wire_field *f)
{
	uint64_t key = 0, v;

	f->number = 0;
	f->payload = NULL;
	f->payload_len = 0;
	if (read_varint(data, len, pos, &key) != 0)
		return BS_ERR_INVALID;
	f->number = (uint32_t)(key >> 3);
	f->wire_type = (unsigned)(key & 7);
	if ((key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return BS_ERR_INVALID;
	switch (f->wire_type) {
	case 0: /* varint */
		return read_varint(data, len, pos, &v);
	case 1: /* 64-bit */
		if (len - *pos < 8)
			return BS_ERR_INVALID;
		*pos += 8;
		return 0;
	case 5: /* 32-bit */
		if (len - *pos < 4)
			return BS_ERR_INVALID;
		*pos += 4;
		return 0;
	case 2: /* length-delimited */
		if (read_varint(data, len, pos, &v) != 0 || v > len - *pos)
			return BS_ERR_INVALID;
		f->payload = data + *pos;
		f->payload_len = (size_t)v;
		*pos += (size_t)v;
		return 0;
	default: /* groups (3, 4) are not used by proto3; 6, 7 are invalid */
		return BS_ERR_INVALID;
	}
}

static int
check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, uint32_t *field,
    int depth)
{
	const ProtobufCFieldDescriptor *fd;
	struct pb_wire_field f;
	size_t pos = 0;

	if (depth > MAX_DEPTH)
		return BS_ERR_INVALID;
	while (pos < len) {
		if (pb_wire_next(data, len, &pos, &f) != 0)
			goto bad;
		if (f.wire_type != 2)
			continue;
		fd = protobuf_c_message_descriptor_get_field(desc, f.number);
		if (fd != NULL && fd->type == PROTOBUF_C_TYPE_STRING &&
		    !pb_utf8_valid_nonul(f.payload, f.payload_len))
			goto bad;
		if (fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
		    check(fd->descriptor, f.payload, f.payload_len, field, depth + 1) != 0)
			return BS_ERR_INVALID;
		continue;
bad:
		if (field != NULL)
			*field = f.number;
		return BS_ERR_INVALID;
	}
	return 0;
}

int
pb_strings_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    uint32_t *field)
{
	return check(desc, data, len, field, 0);
}
