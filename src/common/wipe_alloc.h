/*
 * wipe_alloc.h - an allocator that wipes every block it frees, for the
 * libraries whose buffers carry request and answer bytes in plaintext
 * (libevent's evbuffers between TLS and HTTP/2, nghttp2's frame buffers):
 * installed with event_set_mem_functions() and nghttp2_session_server_new3()
 * so that a data key or a decrypted payload does not outlive its buffer in
 * freed heap memory. The block's size is malloc_usable_size(3)'s (glibc):
 * no header of its own.
 */
#ifndef BS_WIPE_ALLOC_H
#define BS_WIPE_ALLOC_H

#include <stddef.h>

/* malloc, realloc and free with the same contracts, free wiping the block first. */
void *bs_wipe_malloc(size_t n);
void *bs_wipe_realloc(void *p, size_t n);
void bs_wipe_free(void *p);
void *bs_wipe_calloc(size_t n, size_t size);

/* Live blocks (tests). */
size_t bs_wipe_live(void);

#endif
