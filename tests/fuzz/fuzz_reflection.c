/*
 * fuzz_reflection.c - fuzz target of what gRPC server reflection does with
 * a client's bytes (src/services/reflection/): the input is decoded as a
 * ServerReflectionRequest, as the RPC layer does, and every name in it is
 * looked up in the daemon's embedded descriptor set, with the closure of a
 * file found; the input is also indexed as a descriptor set of its own
 * (the indexer reads build-time bytes, but must refuse, not crash on, any).
 */
#include <stdint.h>
#include <stdlib.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "services/reflection/descriptor_index.h"
#include "services/reflection/reflection.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dindex *embedded;

static void
lookup(const char *name)
{
	int idx[DINDEX_CLOSURE_MAX];
	int32_t nums[8];
	size_t n;
	int f;

	if (name == NULL)
		return;
	f = dindex_file_by_symbol(embedded, name);
	if (f >= 0 && (dindex_closure(embedded, f, idx) == 0 || idx[0] != f))
		abort();
	f = dindex_file_by_name(embedded, name);
	if (f >= 0 && dindex_closure(embedded, f, idx) == 0)
		abort();
	if (dindex_extension_numbers(embedded, name, nums, 8, &n) == 0 && n > 0)
		abort();   /* the served set extends nothing */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__Reflection__V1__ServerReflectionRequest *req;
	struct dindex *ix = NULL;

	if (embedded == NULL && dindex_new(bs_descriptor_set, bs_descriptor_set_len, &embedded) != 0)
		abort();
	req = grpc__reflection__v1__server_reflection_request__unpack(NULL, size, data);
	if (req != NULL) {
		switch (req->message_request_case) {
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
			lookup(req->file_by_filename);   /* the union's string */
			break;
		case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
			if (req->file_containing_extension != NULL &&
			    dindex_file_by_extension(embedded,
			    req->file_containing_extension->containing_type,
			    req->file_containing_extension->extension_number) >= 0)
				abort();
			break;
		default:
			break;
		}
		lookup(req->host);
		grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
	}
	if (dindex_new(data, size, &ix) == 0)
		dindex_free(ix);
	return 0;
}
