/*
 * reflection.c - grpc.reflection.v1.ServerReflection and its v1alpha twin
 * (https://github.com/grpc/grpc/blob/master/doc/server-reflection.md), so
 * that grpcurl-style tools list and call boltsealed's methods without a
 * copy of its .proto files.
 *
 * One bidirectional stream per client; each request gets one response, in
 * order: the services served (list_services), a file by name or by a symbol
 * it defines (with every file it imports, transitively, as the protocol
 * allows), extension numbers of a message. What is not found is an
 * ErrorResponse in the stream (NOT_FOUND, INVALID_ARGUMENT), not the end of
 * the call. The files are protoc's own encoding, embedded at build time
 * (proto/descriptor_set.c, made by `protoc -o --include_imports`); the two
 * protocol versions are the same wire format, so both decode with v1's
 * messages.
 *
 * Any caller whose certificate maps to a principal may reflect (like
 * health): the schema is public, the keys and what the policy grants are
 * not in it. One audit record per stream, at its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "rpc/rpc_status.h"
#include "services/reflection/descriptor_index.h"
#include "services/reflection/reflection.h"
#include "services/services.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp;

/* At most this many extension numbers in one answer (the set defines none today). */
#define EXT_NUMBERS_MAX 1024
/* Bytes of an ErrorResponse's message, NUL included (the name asked for is cut to half). */
#define ERROR_MESSAGE_MAX 512

static int
reflection_init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct dindex *ix = NULL;
	int rc;

	(void)env;
	(void)values;
	if ((rc = dindex_new(bs_descriptor_set, bs_descriptor_set_len, &ix)) != 0) {
		snprintf(err, errlen, "the embedded descriptor set cannot be indexed: %s",
		    bs_strerror(rc));
		return rc;
	}
	*state = ix;
	return 0;
}

static void
reflection_fini(void *state)
{
	dindex_free(state);
}

/* Sends resp; a stream that cannot take it ends the call. */
static void
send_resp(struct rpc_call *call, refl_resp *resp)
{
	int rc = rpc_call_send_pb(call, &resp->base);

	if (rc == BS_ERR_NOMEM)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	else if (rc != 0)
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "the response stream is gone");
}

/* An ErrorResponse: code (a gRPC status) and "what: name". */
static void
send_error(struct rpc_call *call, refl_resp *resp, int code, const char *what, const char *name)
{
	Grpc__Reflection__V1__ErrorResponse e = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	char msg[ERROR_MESSAGE_MAX];

	snprintf(msg, sizeof(msg), "%s%s%.*s", what, name != NULL ? ": " : "",
	    (int)(sizeof(msg) / 2), name != NULL ? name : "");
	e.error_code = code;
	e.error_message = msg;
	resp->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	resp->error_response = &e;
	send_resp(call, resp);
}

/* file and the files it imports, transitively; file < 0 is NOT_FOUND ("what: name"). */
static void
send_files(struct rpc_call *call, refl_resp *resp, const struct dindex *ix, int file,
    const char *what, const char *name)
{
	Grpc__Reflection__V1__FileDescriptorResponse fr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	ProtobufCBinaryData files[DINDEX_CLOSURE_MAX];
	int idx[DINDEX_CLOSURE_MAX];
	size_t n;

	if (file < 0) {
		send_error(call, resp, GRPC_STATUS_NOT_FOUND, what, name);
		return;
	}
	n = dindex_closure(ix, file, idx);
	for (size_t i = 0; i < n; i++)
		files[i].data = (uint8_t *)dindex_file_bytes(ix, idx[i], &files[i].len);
	fr.n_file_descriptor_proto = n;
	fr.file_descriptor_proto = files;
	resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	resp->file_descriptor_response = &fr;
	send_resp(call, resp);
}

/* The services the daemon serves, reflection included. */
static void
send_services(struct rpc_call *call, refl_resp *resp)
{
	const struct rpc_registry *reg = rpc_call_svc(call)->registry;
	Grpc__Reflection__V1__ListServiceResponse ls = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse *items = NULL, **ptrs = NULL;
	size_t n = reg != NULL ? rpc_registry_service_count(reg) : 0;

	if (n > 0 && ((items = calloc(n, sizeof(*items))) == NULL ||
	    (ptrs = calloc(n, sizeof(*ptrs))) == NULL)) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		grpc__reflection__v1__service_response__init(&items[i]);
		items[i].name = (char *)rpc_registry_service_name(reg, i);
		ptrs[i] = &items[i];
	}
	ls.n_service = n;
	ls.service = ptrs;
	resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
	resp->list_services_response = &ls;
	send_resp(call, resp);
out:
	free(ptrs);
	free(items);
}

static void
send_extension_numbers(struct rpc_call *call, refl_resp *resp, const struct dindex *ix,
    const char *type)
{
	Grpc__Reflection__V1__ExtensionNumberResponse er =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	int32_t nums[EXT_NUMBERS_MAX];
	size_t n = 0;

	if (dindex_extension_numbers(ix, type, nums, EXT_NUMBERS_MAX, &n) != 0) {
		send_error(call, resp, GRPC_STATUS_NOT_FOUND, "message type not found", type);
		return;
	}
	er.base_type_name = (char *)(type[0] == '.' ? type + 1 : type);
	er.n_extension_number = n < EXT_NUMBERS_MAX ? n : EXT_NUMBERS_MAX;
	er.extension_number = nums;
	resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
	resp->all_extension_numbers_response = &er;
	send_resp(call, resp);
}

/* One request of the stream: its response, echoing it as the protocol asks. */
static void
reflection_info(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const refl_req *req = (const refl_req *)msg;
	const struct dindex *ix = rpc_call_service_state(call);
	refl_resp resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	const Grpc__Reflection__V1__ExtensionRequest *ext;
	char num[16];

	resp.valid_host = req->host;
	resp.original_request = (refl_req *)req;
	switch (req->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		send_services(call, &resp);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		send_files(call, &resp, ix, dindex_file_by_name(ix, req->file_by_filename), "file not found",
		    req->file_by_filename);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		send_files(call, &resp, ix, dindex_file_by_symbol(ix, req->file_containing_symbol),
		    "symbol not found", req->file_containing_symbol);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		ext = req->file_containing_extension;
		snprintf(num, sizeof(num), "%d", ext != NULL ? (int)ext->extension_number : 0);
		send_files(call, &resp, ix, ext == NULL ? -1 : dindex_file_by_extension(ix,
		    ext->containing_type, ext->extension_number), "extension not found", num);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		send_extension_numbers(call, &resp, ix, req->all_extension_numbers_of_type);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET:
	default:
		send_error(call, &resp, GRPC_STATUS_INVALID_ARGUMENT,
		    "the request asks for nothing (no message_request field set)", NULL);
		break;
	}
}

static const struct rpc_method methods[] = {
	{ "ServerReflectionInfo", &grpc__reflection__v1__server_reflection_request__descriptor,
	  &grpc__reflection__v1__server_reflection_response__descriptor, RPC_AUTHZ_ANY_PRINCIPAL,
	  RPC_F_STREAM | RPC_F_REQUEST_STREAM, reflection_info },
};

const struct rpc_service reflection_v1_service = {
	.name = "grpc.reflection.v1.ServerReflection",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.init = reflection_init,
	.fini = reflection_fini,
};

const struct rpc_service reflection_v1alpha_service = {
	.name = "grpc.reflection.v1alpha.ServerReflection",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.init = reflection_init,
	.fini = reflection_fini,
};
