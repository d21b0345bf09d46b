/*
 * rpc_status.h - gRPC status codes (grpc/grpc doc/statuscodes.md), their
 * names, and the mapping from boltseal's error codes. The one place where a
 * BS_ERR_* becomes what a client sees.
 */
#ifndef BS_RPC_STATUS_H
#define BS_RPC_STATUS_H

enum grpc_status {
	GRPC_STATUS_OK = 0,
	GRPC_STATUS_CANCELLED = 1,
	GRPC_STATUS_UNKNOWN = 2,
	GRPC_STATUS_INVALID_ARGUMENT = 3,
	GRPC_STATUS_DEADLINE_EXCEEDED = 4,
	GRPC_STATUS_NOT_FOUND = 5,
	GRPC_STATUS_ALREADY_EXISTS = 6,
	GRPC_STATUS_PERMISSION_DENIED = 7,
	GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
	GRPC_STATUS_FAILED_PRECONDITION = 9,
	GRPC_STATUS_ABORTED = 10,
	GRPC_STATUS_OUT_OF_RANGE = 11,
	GRPC_STATUS_UNIMPLEMENTED = 12,
	GRPC_STATUS_INTERNAL = 13,
	GRPC_STATUS_UNAVAILABLE = 14,
	GRPC_STATUS_DATA_LOSS = 15,
	GRPC_STATUS_UNAUTHENTICATED = 16,
};

/* Returns the canonical upper-case name ("NOT_FOUND"), "UNKNOWN" if out of range. */
const char *grpc_status_name(int status);

/* Maps a BS_ERR_* code to a gRPC status (0 for BS_OK, INTERNAL for unknown). */
int rpc_status_from_err(int err);

#endif
