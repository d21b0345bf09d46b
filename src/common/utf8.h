/*
 * utf8.h - the one strict UTF-8 decoder of boltseal: overlong forms,
 * surrogates and code points above U+10FFFF are invalid (the rules of
 * Go's utf8.DecodeRune and of RFC 3629). Used by the log escaper, the
 * protobuf string check, the signed-note parser and the audit verifier.
 */
#ifndef BS_UTF8_H
#define BS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the sequence at p (n bytes available, n > 0). Returns its length
 * 1..4 and the code point in *cp (cp may be NULL), or 0 if the bytes there
 * are not a valid sequence (*cp untouched).
 */
size_t bs_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp);

#endif
