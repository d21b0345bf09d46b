/*
 * fuzz_pb_scan.c - fuzz target of the request field counter
 * (src/rpc/pb_scan.c). The first byte picks a message type, the rest is
 * the message. Checks:
 *   - it agrees with pb_strings_check on what is malformed (the dispatcher
 *     relies on it: malformed input passes the counter and pb_strings_check
 *     refuses it with its own message);
 *   - the caps are exact: the counts found pass as caps, one less is
 *     BS_ERR_TOO_BIG with the count at cap + 1;
 *   - when protobuf-c decodes the message, the unknown fields it keeps are
 *     no more than the counter found (it allocates one per unknown field on
 *     the wire, then may drop some when it merges a repeated singular
 *     message or replaces a oneof), and its encoding of what it kept counts
 *     the same unknown fields and no more fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/test/v1/echo.pb-c.h"
#include "boltseal/v1/audit.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "formats/pb_strings.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/pb_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536

static const ProtobufCMessageDescriptor *const types[] = {
	&boltseal__test__v1__echo_request__descriptor,
	&grpc__health__v1__health_check_request__descriptor,
	&boltseal__v1__sign_batch_request__descriptor,
	&boltseal__v1__verify_request__descriptor,
	&boltseal__v1__get_key_response__descriptor,
	&boltseal__v1__list_keys_response__descriptor,
	&boltseal__v1__sign_batch_response__descriptor,
	&boltseal__v1__read_records_request__descriptor,
};

/* Unknown fields protobuf-c kept in m and every message under it. */
static uint64_t
unknown_kept(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	uint64_t n = m->n_unknown_fields;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m;

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(const void *)(base + fd->quantifier_offset) != fd->id)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t k = *(const size_t *)(const void *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *arr =
			    *(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);

			for (size_t j = 0; j < k; j++)
				n += unknown_kept(arr[j]);
		} else {
			const ProtobufCMessage *sub =
			    *(const ProtobufCMessage *const *)(const void *)(base + fd->offset);

			if (sub != NULL && sub != fd->default_value)
				n += unknown_kept(sub);
		}
	}
	return n;
}

static void
check_decoder(const ProtobufCMessageDescriptor *desc, const uint8_t *msg, size_t len,
    const struct rpc_pb_count *all)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, msg);
	struct rpc_pb_count again;
	uint8_t *buf;
	size_t plen;
	uint64_t kept;

	if (m == NULL)
		return;
	kept = unknown_kept(m);
	if (kept > all->unknown)
		abort();
	plen = protobuf_c_message_get_packed_size(m);
	if ((buf = malloc(plen > 0 ? plen : 1)) == NULL)
		abort();
	if (protobuf_c_message_pack(m, buf) != plen)
		abort();
	if (rpc_pb_scan(desc, buf, plen, UINT64_MAX, UINT64_MAX, &again) != 0 ||
	    again.unknown != kept || again.fields > all->fields)
		abort();
	free(buf);
	protobuf_c_message_free_unpacked(m, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	struct rpc_pb_count all, c;
	const uint8_t *msg;
	size_t len;
	int rc, rs;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	desc = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	msg = data + 1;
	len = size - 1;
	rc = rpc_pb_scan(desc, msg, len, UINT64_MAX, UINT64_MAX, &all);
	rs = pb_strings_check(desc, msg, len, NULL);
	if (rc != 0 && rc != BS_ERR_INVALID)
		abort();
	if ((rc == BS_ERR_INVALID && rs == 0) || (rs == 0 && rc != 0))
		abort();
	if (rc != 0)
		return 0;
	if (rpc_pb_scan(desc, msg, len, all.fields, all.unknown, &c) != 0 ||
	    c.fields != all.fields || c.unknown != all.unknown)
		abort();
	if (all.fields > 0 && (rpc_pb_scan(desc, msg, len, all.fields - 1, UINT64_MAX, &c) !=
	    BS_ERR_TOO_BIG || c.fields != all.fields))
		abort();
	if (all.unknown > 0 && (rpc_pb_scan(desc, msg, len, UINT64_MAX, all.unknown - 1, &c) !=
	    BS_ERR_TOO_BIG || c.unknown != all.unknown))
		abort();
	/* what the dispatcher decodes: well-formed, valid strings */
	if (rs == 0)
		check_decoder(desc, msg, len, &all);
	return 0;
}
