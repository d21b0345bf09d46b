/*
 * totp.h - time-based one-time passwords for a second factor: TOTP
 * (RFC 6238) over HOTP (RFC 4226) with one fixed profile, HMAC-SHA1,
 * 6 digits, 30-second steps from T0 = 0; the otpauth:// URI of the
 * Google Authenticator Key-Uri-Format that enrols a seed in an
 * authenticator app; and that URI as a QR code for a terminal.
 * Pure: bytes in, strings out; liboath computes the codes, libqrencode the
 * QR symbol; no I/O, no clock (the caller passes `now`), no state (the
 * caller stores the last accepted step per seed).
 *
 * Seeds are TOTP_SEED_MIN..TOTP_SEED_MAX bytes everywhere. boltseal
 * generates TOTP_SEED_LEN; the minimum is below RFC 4226's 128 bits
 * (section 4, R6) only so that 80-bit seeds enrolled elsewhere (the
 * Key-Uri-Format's own example) still work.
 */
#ifndef BS_TOTP_H
#define BS_TOTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define TOTP_SEED_LEN 20        /* bytes of a seed boltseal generates (160 bits, RFC 4226 §4) */
#define TOTP_SEED_MIN 10        /* 80 bits: see above */
#define TOTP_SEED_MAX 64        /* one HMAC-SHA1 block; longer keys would only be hashed */
#define TOTP_PERIOD 30          /* seconds; T0 = 0 (RFC 6238) */
#define TOTP_DIGITS 6
#define TOTP_WINDOW_MAX 2       /* steps either side of now that totp_check may accept */
#define TOTP_LABEL_MAX 128      /* issuer and account: bytes before percent-encoding */
#define TOTP_QR_TEXT_MAX 4096   /* bytes; a QR symbol holds at most 2331 of them at level M */

/* The time step of unix time `now` (floor(now / 30)); now >= 0 (a negative now gives 0). */
uint64_t totp_step(int64_t now);

/*
 * Checks `code` (a NUL-terminated string from the peer: exactly 6 ASCII
 * digits, else BS_ERR_INVALID; at most 7 bytes of it are read) against
 * seed[0..seedlen) (borrowed) for the steps totp_step(now) - window ..
 * totp_step(now) + window (window 0..TOTP_WINDOW_MAX, steps below 0 left
 * out). Each candidate code is computed and compared in constant time
 * (CRYPTO_memcmp), and every step of the window is evaluated even after a
 * match.
 *
 * last_step is the last step accepted for this seed (0 = none yet).
 * 0 and *step_out = the matching step (the highest if several) when that
 * step is > last_step: the caller stores it as the new last_step.
 * BS_ERR_PRECONDITION: the code matches, but only on a step <= last_step
 * (a replay); *step_out untouched.
 * BS_ERR_SIG_INVALID: no step of the window matches.
 * BS_ERR_INVALID: a NULL argument, seedlen out of range, now < 0, window
 * out of range, a malformed code.
 * BS_ERR_CRYPTO: liboath failed.
 * Every candidate code is wiped before return.
 */
int totp_check(const uint8_t *seed, size_t seedlen, const char *code, int64_t now, int window,
    uint64_t last_step, uint64_t *step_out) BS_WUR;

/*
 * The 6-digit code of seed[0..seedlen) (borrowed) for a step (HOTP with the
 * step as the counter): out, caller-owned, gets TOTP_DIGITS digits and a
 * NUL; it is set only on success. For tests and the CLI's self-test.
 * 0, BS_ERR_INVALID (a NULL argument, seedlen out of range), BS_ERR_CRYPTO
 * (liboath failed).
 */
int totp_code(const uint8_t *seed, size_t seedlen, uint64_t step, char out[TOTP_DIGITS + 1]) BS_WUR;

/*
 * The enrolment URI of the Key-Uri-Format:
 *   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * BASE32 is seed[0..seedlen) (borrowed) in RFC 4648 base32 without '='
 * padding. ISSUER and ACCOUNT are percent-encoded: the unreserved
 * characters of RFC 3986 (A-Z a-z 0-9 - . _ ~) stay as they are, every
 * other byte becomes %XX (upper-case hex), '@' and ' ' included
 * ("alice%40google.com", "ACME%20Co"). Each of issuer and account must be
 * 1..TOTP_LABEL_MAX bytes of valid UTF-8 without control characters
 * (U+0000..U+001F, U+007F) and without ':' (the label's separator).
 *
 * 0 and *out: the URI, NUL-terminated, malloc'd. It holds the secret: the
 * caller wipes it (OPENSSL_cleanse over strlen(*out)) and frees it.
 * BS_ERR_INVALID (a NULL argument, seedlen out of range, a bad issuer or
 * account), BS_ERR_NOMEM. The intermediate base32 text is wiped.
 */
int totp_uri(const char *issuer, const char *account, const uint8_t *seed, size_t seedlen,
    char **out) BS_WUR;

/*
 * text (NUL-terminated, borrowed) as a QR code for a terminal: libqrencode's
 * QRcode_encodeString (smallest version, level M, 8-bit mode,
 * case-sensitive), surrounded by a quiet zone of 2 light modules on every
 * side, drawn with UTF-8 half blocks, each line covering two module rows:
 * dark = block (U+2588 both rows dark, U+2580 only the upper one, U+2584
 * only the lower one, ' ' both light). A symbol of width w gives
 * (w + 4 + 1) / 2 lines of w + 4 characters, each ending in '\n' (the last
 * line's lower row is light when w + 4 is odd). Dark is drawn in the
 * terminal's foreground colour: on light-on-dark terminals the symbol
 * appears inverted, which not every scanner reads.
 *
 * 0 and *out: the drawing, NUL-terminated, malloc'd. It holds the text (the
 * secret when text is a totp_uri): the caller wipes (OPENSSL_cleanse over
 * strlen(*out)) and frees it. BS_ERR_INVALID (NULL or empty text, over
 * TOTP_QR_TEXT_MAX, too long for a QR symbol at level M), BS_ERR_NOMEM.
 * The module matrix is wiped before it is freed; libqrencode's own
 * intermediate buffers are not (it frees them unwiped).
 */
int totp_qr_text(const char *text, char **out) BS_WUR;

#endif
