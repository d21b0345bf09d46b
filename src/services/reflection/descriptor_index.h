/*
 * descriptor_index.h - the symbols of a FileDescriptorSet (protoc -o), for
 * gRPC server reflection: which file defines a service, method, message,
 * enum or field, which files a file imports, and each file's serialized
 * FileDescriptorProto exactly as protoc wrote it.
 *
 * Built once from trusted, build-time bytes (the daemon's embedded set);
 * read-only afterwards, so any thread may look up.
 */
#ifndef BS_DESCRIPTOR_INDEX_H
#define BS_DESCRIPTOR_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

struct dindex;

/* Files one answer may carry: the file asked for and its imports, transitively. */
#define DINDEX_CLOSURE_MAX 64

/*
 * Indexes the FileDescriptorSet set (len bytes, copied). Returns 0, BS_ERR_INVALID (not a descriptor set, a file
 * without a name, a symbol defined twice, an import of a file not in the
 * set), BS_ERR_NOMEM.
 */
int dindex_new(const uint8_t *set, size_t len, struct dindex **out) BS_WUR;

/* NULL is a no-op. */
void dindex_free(struct dindex *ix);

/* The index of the file named name ("boltseal/v1/keys.proto"), or -1. */
int dindex_file_by_name(const struct dindex *ix, const char *name);

/*
 * The index of the file defining the fully-qualified symbol sym
 * ("boltseal.v1.KeyService", "boltseal.v1.KeyService.Sign",
 * "boltseal.v1.SignRequest", "boltseal.v1.SignRequest.key"), or -1. A
 * leading '.' is accepted.
 */
int dindex_file_by_symbol(const struct dindex *ix, const char *sym);

/* The index of the file extending message type with field number, or -1. */
int dindex_file_by_extension(const struct dindex *ix, const char *type, int32_t number);

/*
 * The extension field numbers of message type into nums (the first max
 * found, ascending; *n is how many there are). Returns 0, or BS_ERR_NOT_FOUND when type
 * is not a message of the set.
 */
int dindex_extension_numbers(const struct dindex *ix, const char *type, int32_t *nums,
    size_t max, size_t *n) BS_WUR;

/*
 * File and every file it imports, transitively, each once, file first, as
 * indexes into out (up to DINDEX_CLOSURE_MAX). Returns how many.
 */
size_t dindex_closure(const struct dindex *ix, int file, int out[DINDEX_CLOSURE_MAX]);

/* File i's serialized FileDescriptorProto and its name (borrowed from the index). */
const uint8_t *dindex_file_bytes(const struct dindex *ix, int i, size_t *len);
const char *dindex_file_name(const struct dindex *ix, int i);

/* How many files the set holds. */
size_t dindex_files(const struct dindex *ix);

#endif
