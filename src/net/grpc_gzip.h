/*
 * grpc_gzip.h - gRPC message compression with gzip (the "grpc-encoding:
 * gzip" of the gRPC over HTTP/2 protocol; RFC 1952 members through zlib).
 * The daemon accepts gzip-compressed requests, bounded after inflation by
 * the same message cap as uncompressed ones (so a small compressed request
 * cannot become a large allocation), and compresses its answer with gzip
 * when the request came compressed and the client accepts gzip.
 */
#ifndef BS_GRPC_GZIP_H
#define BS_GRPC_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/* What the daemon decodes, for grpc-accept-encoding. */
#define GRPC_ACCEPT_ENCODING "identity,gzip"

/*
 * Inflates one gzip member in[0..inlen) (untrusted) into *out (*outlen
 * bytes; from bs_wipe_malloc: free it with bs_wipe_free, which wipes it, as
 * every buffer here is), refusing more than max bytes of output. Returns 0;
 * BS_ERR_TOO_BIG (inflates past max), BS_ERR_INVALID (not one complete
 * gzip member, trailing bytes, bad checksum), BS_ERR_NOMEM.
 */
int grpc_gzip_inflate(const uint8_t *in, size_t inlen, size_t max, uint8_t **out,
    size_t *outlen) BS_WUR;

/* Compresses in[0..inlen) as one gzip member into *out (free with bs_wipe_free). 0 or BS_ERR_NOMEM. */
int grpc_gzip_deflate(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen) BS_WUR;

/*
 * 1 if the header value v[0..len) (grpc-accept-encoding: a comma-separated
 * list, blanks allowed) names gzip, else 0.
 */
int grpc_accepts_gzip(const char *v, size_t len);

#endif
