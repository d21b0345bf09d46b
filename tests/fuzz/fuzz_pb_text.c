/*
 * fuzz_pb_text.c - fuzz target of the field-by-field rendering an approver
 * reads (src/formats/pb_text.c). The first byte picks a request type that
 * can be proposed for approval, the rest is the serialized request, decoded
 * by protobuf-c as the service decodes it. Checks: rendering never fails on
 * a decoded message except for size (BS_ERR_TOO_BIG); the text has no NUL
 * before its end, ends with '\n' unless empty, holds no raw control byte
 * but '\n', and is valid UTF-8 (hidden characters are escaped); rendering
 * again gives the same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/v1/admin.pb-c.h"
#include "boltseal/v1/envelope.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "boltseal/v1/ota.pb-c.h"
#include "common/utf8.h"
#include "formats/pb_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536

static const ProtobufCMessageDescriptor *const types[] = {
	&boltseal__v1__schedule_key_destruction_request__descriptor,
	&boltseal__v1__set_key_state_request__descriptor,
	&boltseal__v1__reset_second_factor_request__descriptor,
	&boltseal__v1__rotate_root_request__descriptor,
	&boltseal__v1__generate_data_key_batch_request__descriptor,
	&boltseal__v1__sign_batch_request__descriptor,
	&boltseal__v1__proposal__descriptor,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;
	char *a = NULL, *b = NULL;
	size_t n;
	int rc;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if ((m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1)) == NULL)
		return 0;
	rc = pb_text_render(m, &a);
	if (rc != 0 && rc != BS_ERR_TOO_BIG)
		abort();
	if (rc == 0) {
		n = strlen(a);
		if (n > PB_TEXT_MAX_LEN || (n > 0 && a[n - 1] != '\n'))
			abort();
		for (size_t i = 0; i < n; i++)
			if (((unsigned char)a[i] < 0x20 && a[i] != '\n') || a[i] == 0x7f)
				abort();
		for (size_t i = 0, k; i < n; i += k)
			if ((k = bs_utf8_decode((const uint8_t *)a + i, n - i, NULL)) == 0)
				abort();
		if (pb_text_render(m, &b) != 0 || strcmp(a, b) != 0)
			abort();
	}
	free(a);
	free(b);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
