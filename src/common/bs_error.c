/*
 * bs_error.c - descriptions of the BS_ERR_* codes and their gRPC statuses.
 */
#include "common/bs_error.h"
#include "net/grpc_status.h"

const char *
bs_strerror(int err)
{
	switch (err) {
	case BS_OK: return "success";
	case BS_ERR_INTERNAL: return "internal error";
	case BS_ERR_NOMEM: return "out of memory";
	case BS_ERR_INVALID: return "invalid argument";
	case BS_ERR_NOT_FOUND: return "not found";
	case BS_ERR_EXISTS: return "already exists";
	case BS_ERR_PRECONDITION: return "failed precondition";
	case BS_ERR_TOO_BIG: return "too big";
	case BS_ERR_QUEUE_FULL: return "queue full";
	case BS_ERR_HSM: return "HSM error";
	case BS_ERR_UNAVAILABLE: return "unavailable";
	case BS_ERR_IO: return "I/O error";
	case BS_ERR_CONFIG: return "configuration error";
	case BS_ERR_CRYPTO: return "cryptographic library error";
	case BS_ERR_UNSUPPORTED: return "unsupported";
	case BS_ERR_CANCELLED: return "cancelled";
	case BS_ERR_MISMATCH: return "catalog and token disagree";
	case BS_ERR_TRUNCATED: return "truncated input";
	case BS_ERR_SIG_INVALID: return "signature invalid";
	default: return "unknown error";
	}
}

int
bs_err_grpc_status(int err)
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
