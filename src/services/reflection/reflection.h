/*
 * reflection.h - gRPC server reflection (grpc.reflection.v1 and v1alpha,
 * the same protocol under two package names): the service descriptors the
 * daemon registers (services/registry.c) and, for tests, the descriptor set
 * it serves.
 */
#ifndef BS_REFLECTION_H
#define BS_REFLECTION_H

#include <stddef.h>

#include "rpc/rpc_service.h"

extern const struct rpc_service reflection_v1_service;
extern const struct rpc_service reflection_v1alpha_service;

/* The FileDescriptorSet of every served .proto, embedded at build time (proto/descriptor_set.c). */
extern const unsigned char bs_descriptor_set[];
extern const size_t bs_descriptor_set_len;

#endif
