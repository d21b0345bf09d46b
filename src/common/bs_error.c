/*
 * bs_error.c - descriptions of the BS_ERR_* codes.
 */
#include "common/bs_error.h"

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
