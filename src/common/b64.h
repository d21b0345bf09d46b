/*
 * b64.h - the one base64 codec of boltseal: RFC 4648 standard alphabet,
 * padded output, through OpenSSL (EVP_EncodeBlock / EVP_DecodeBlock).
 *
 * OpenSSL's decoder alone is too lenient for formats with one valid
 * spelling (it skips white space, reads '=' anywhere as zero bits and does
 * not check unused bits), so every input is checked here first. Strict
 * decoding (signed notes, checkpoints) takes exactly one spelling per byte
 * string. BS_B64_LAX is for text a person pastes (the CLI's --signature),
 * and accepts what that has always accepted.
 */
#ifndef BS_B64_H
#define BS_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/* Characters of the base64 text of n bytes, padding included, NUL excluded. */
#define BS_B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/*
 * bs_b64_decode flags. Without any (strict): the length is a multiple of
 * 4, '=' appears only as one or two final pad characters, the bits the
 * padding leaves unused are zero, and nothing but the 64 alphabet
 * characters and that padding is allowed (no white space, no line breaks,
 * nothing after the padding).
 *
 * BS_B64_LAX: C white space (" \t\n\v\f\r") anywhere is skipped; the
 * padding is optional: up to two '=' may follow the last data character
 * (then only white space), whether or not that is the right number; unused
 * bits are ignored; a number of data characters that leaves one over a
 * multiple of 4 is refused.
 */
#define BS_B64_LAX 0x1u

/*
 * Writes the base64 text of in[0..n) and a NUL to out, which holds
 * BS_B64_ENCODED_LEN(n) + 1 bytes. Returns the characters written, NUL
 * excluded.
 */
size_t bs_b64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes in[0..n) under flags. *total gets the decoded length; the first
 * min(*total, cap) bytes are written to out (out may be NULL when cap is
 * 0, which only checks the text and measures it). Returns 0, BS_ERR_INVALID
 * (malformed; out and *total untouched) or BS_ERR_CRYPTO (OpenSSL refused
 * text checked as valid: a bug).
 */
int bs_b64_decode(const char *in, size_t n, unsigned flags, uint8_t *out, size_t cap,
    size_t *total) BS_WUR;

#endif
