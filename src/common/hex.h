/*
 * hex.h - the one hexadecimal codec of boltseal: lower-case encoding of
 * bytes (hashes, key ids and certificate fingerprints in logs, messages and
 * the audit log) and strict decoding of an exact number of digits.
 */
#ifndef BS_HEX_H
#define BS_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/* Characters bs_hex_encode writes for n bytes, NUL included. */
#define BS_HEX_LEN(n) (2 * (n) + 1)

/* bs_hex_decode flags */
#define BS_HEX_LOWER 0x1u       /* refuse 'A'-'F' (formats that are lower-case only) */

/*
 * Writes the 2n lower-case hex digits of in[0..n) and a NUL to out, which
 * holds BS_HEX_LEN(n) bytes.
 */
void bs_hex_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes exactly inlen hex digits in[0..inlen) (no prefix, no separator,
 * no NUL needed) into out[0..outlen); inlen must be 2 * outlen. Digits may
 * be of either case unless flags has BS_HEX_LOWER. Returns 0, or
 * BS_ERR_INVALID (wrong length or a non-digit; out is then untouched).
 */
int bs_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen,
    unsigned flags) BS_WUR;

/* The value 0..15 of the hex digit c (either case), or -1. */
int bs_hex_digit_value(int c);

#endif
