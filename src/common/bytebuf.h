/*
 * bytebuf.h - a growable byte buffer that wipes what it frees, and a
 * bounded reader of untrusted bytes with typed getters that ends with
 * "nothing left" (after OpenSSH's sshbuf and OpenSMTPD's m_get_* / m_end).
 *
 * Writers set a sticky error instead of failing each call: put as many
 * fields as needed, then check bytebuf_error() once. Readers return 0 or
 * BS_ERR_TRUNCATED and never read past the end. Integers are big-endian.
 */
#ifndef BS_BYTEBUF_H
#define BS_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

struct bytebuf {
	uint8_t *p;
	size_t len, cap;
	size_t max;                 /* refuse to grow past this (0 = SIZE_MAX / 2) */
	int err;                    /* first error (BS_ERR_NOMEM, BS_ERR_TOO_BIG) or 0 */
	int fixed;                  /* p is the caller's memory (bytebuf_init_fixed) */
};

#define BYTEBUF_INIT { NULL, 0, 0, 0, 0, 0 }

/*
 * Makes b an empty buffer over the caller's mem[0..cap) (a stack buffer
 * where allocating is not wanted): it never grows (a put past cap is
 * BS_ERR_TOO_BIG), bytebuf_free only wipes it, bytebuf_steal is refused.
 */
void bytebuf_init_fixed(struct bytebuf *b, void *mem, size_t cap);

void bytebuf_put(struct bytebuf *b, const void *data, size_t n);
void bytebuf_put_u8(struct bytebuf *b, uint8_t v);
void bytebuf_put_u16(struct bytebuf *b, uint16_t v);
void bytebuf_put_u32(struct bytebuf *b, uint32_t v);
/*
 * Appends printf-formatted text, keeping a NUL after the contents (not
 * counted in len), so that bytebuf_steal hands out a C string.
 */
void bytebuf_printf(struct bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 or the first error of any put since init. */
int bytebuf_error(const struct bytebuf *b);
/*
 * Hands the contents to the caller (who frees; *len set) and resets b.
 * NULL (and *len 0, b unchanged) for a fixed buffer.
 */
uint8_t *bytebuf_steal(struct bytebuf *b, size_t *len);
/* Wipes and frees the contents (a fixed buffer: wipes them); b is empty again. */
void bytebuf_free(struct bytebuf *b);

struct byteread {
	const uint8_t *p;
	size_t len, off;
};

void byteread_init(struct byteread *r, const uint8_t *p, size_t len);
int byteread_u8(struct byteread *r, uint8_t *v) BS_WUR;
int byteread_u16(struct byteread *r, uint16_t *v) BS_WUR;
int byteread_u32(struct byteread *r, uint32_t *v) BS_WUR;
/* n bytes: *out points into the buffer. */
int byteread_bytes(struct byteread *r, size_t n, const uint8_t **out) BS_WUR;
/* 0 if every byte was read, else BS_ERR_INVALID (trailing bytes). */
int byteread_end(const struct byteread *r) BS_WUR;

#endif
