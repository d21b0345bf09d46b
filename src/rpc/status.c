/*
 * status.c - gRPC status names and the mapping of BS_ERR_* codes to the
 * status a client sees (see rpc_status.h).
 */
#include "common/bs_error.h"
#include "rpc/rpc_status.h"

const char *
grpc_status_name(int status)
{
	switch (status) {
	case GRPC_STATUS_OK: return "OK";
	case GRPC_STATUS_CANCELLED: return "CANCELLED";
	case GRPC_STATUS_UNKNOWN: return "UNKNOWN";
	case GRPC_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
	case GRPC_STATUS_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
	case GRPC_STATUS_NOT_FOUND: return "NOT_FOUND";
	case GRPC_STATUS_ALREADY_EXISTS: return "ALREADY_EXISTS";
	case GRPC_STATUS_PERMISSION_DENIED: return "PERMISSION_DENIED";
	case GRPC_STATUS_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
	case GRPC_STATUS_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
	case GRPC_STATUS_ABORTED: return "ABORTED";
	case GRPC_STATUS_OUT_OF_RANGE: return "OUT_OF_RANGE";
	case GRPC_STATUS_UNIMPLEMENTED: return "UNIMPLEMENTED";
	case GRPC_STATUS_INTERNAL: return "INTERNAL";
	case GRPC_STATUS_UNAVAILABLE: return "UNAVAILABLE";
	case GRPC_STATUS_DATA_LOSS: return "DATA_LOSS";
	case GRPC_STATUS_UNAUTHENTICATED: return "UNAUTHENTICATED";
	default: return "UNKNOWN";
	}
}

int
rpc_status_from_err(int err)
{
	switch (err) {
	case BS_OK: return GRPC_STATUS_OK;
	case BS_ERR_INVALID:
	case BS_ERR_UNSUPPORTED:
	case BS_ERR_TRUNCATED: return GRPC_STATUS_INVALID_ARGUMENT;
	case BS_ERR_NOT_FOUND: return GRPC_STATUS_NOT_FOUND;
	case BS_ERR_EXISTS: return GRPC_STATUS_ALREADY_EXISTS;
	case BS_ERR_PRECONDITION: return GRPC_STATUS_FAILED_PRECONDITION;
	case BS_ERR_TOO_BIG:
	case BS_ERR_QUEUE_FULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case BS_ERR_HSM:
	case BS_ERR_UNAVAILABLE:
	case BS_ERR_IO: return GRPC_STATUS_UNAVAILABLE;
	case BS_ERR_CANCELLED: return GRPC_STATUS_CANCELLED;
	default: return GRPC_STATUS_INTERNAL;
	}
}
