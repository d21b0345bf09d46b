/*
 * pb_scan.c - field counts of serialized protobuf messages against caps
 * (see pb_scan.h). Fields are read with pb_strings.h's pb_wire_next, so
 * the grammar is the string checker's own; same depth limit.
 */
#include "formats/pb_strings.h"
#include "rpc/pb_scan.h"

struct scan {
	uint64_t max_fields, max_unknown;
	struct rpc_pb_count n;
};

/* 1 if protobuf-c decodes a length-delimited occurrence of fd as packed scalars. */
static int
is_packed(const ProtobufCFieldDescriptor *fd)
{
	if (fd->label != PROTOBUF_C_LABEL_REPEATED)
		return 0;
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return 0;
	default:
		return 1;
	}
}

/*
 * Elements of a packed run of type t in p (n bytes), counted the way
 * protobuf-c sizes its array: fixed-width types by width, varints by their
 * last bytes, bools by bytes. protobuf-c refuses what does not divide.
 */
static uint64_t
packed_elements(ProtobufCType t, const uint8_t *p, size_t n)
{
	uint64_t c = 0;

	switch (t) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return n / 4;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return n / 8;
	case PROTOBUF_C_TYPE_BOOL:
		return n;
	default:
		for (size_t i = 0; i < n; i++)
			if ((p[i] & 0x80) == 0)
				c++;
		return c;
	}
}

/* Adds k fields (u of them unknown); BS_ERR_TOO_BIG once a cap is passed. */
static int
count(struct scan *s, uint64_t k, uint64_t u)
{
	if (k > s->max_fields - s->n.fields) {
		s->n.fields = s->max_fields + 1;
		return BS_ERR_TOO_BIG;
	}
	s->n.fields += k;
	if (u > s->max_unknown - s->n.unknown) {
		s->n.unknown = s->max_unknown + 1;
		return BS_ERR_TOO_BIG;
	}
	s->n.unknown += u;
	return 0;
}

static int
walk(struct scan *s, const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    int depth)
{
	const ProtobufCFieldDescriptor *fd;
	struct pb_wire_field f;
	size_t pos = 0;
	uint64_t k;
	int rc;

	if (depth > RPC_PB_SCAN_MAX_DEPTH)
		return BS_ERR_INVALID;
	while (pos < len) {
		if (pb_wire_next(data, len, &pos, &f) != 0)
			return BS_ERR_INVALID;
		fd = protobuf_c_message_descriptor_get_field(desc, f.number);
		if (f.wire_type == 2 && fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			if ((rc = count(s, 1, 0)) != 0 ||
			    (rc = walk(s, fd->descriptor, f.payload, f.payload_len, depth + 1)) != 0)
				return rc;
			continue;
		}
		if (f.wire_type == 2 && fd != NULL && is_packed(fd)) {
			/* an empty run is still one scanned member */
			k = packed_elements(fd->type, f.payload, f.payload_len);
			if ((rc = count(s, k > 0 ? k : 1, 0)) != 0)
				return rc;
			continue;
		}
		if ((rc = count(s, 1, fd == NULL ? 1 : 0)) != 0)
			return rc;
	}
	return 0;
}

int
rpc_pb_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    uint64_t max_fields, uint64_t max_unknown, struct rpc_pb_count *out)
{
	struct scan s;
	int rc;

	s.max_fields = max_fields;
	s.max_unknown = max_unknown;
	s.n.fields = s.n.unknown = 0;
	rc = walk(&s, desc, data, len, 0);
	if (rc == 0 || rc == BS_ERR_TOO_BIG)
		*out = s.n;
	return rc;
}
