/*
 * hex.c - lower-case hex encoding and strict decoding (see hex.h).
 */
#include "common/hex.h"

void
bs_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int
bs_hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of digit c under flags, or -1. */
static int
digit(char c, unsigned flags)
{
	if ((flags & BS_HEX_LOWER) != 0 && c >= 'A' && c <= 'F')
		return -1;
	return bs_hex_digit_value((unsigned char)c);
}

int
bs_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen, unsigned flags)
{
	size_t i;

	if (outlen > SIZE_MAX / 2 || inlen != 2 * outlen)
		return BS_ERR_INVALID;
	for (i = 0; i < inlen; i++)
		if (digit(in[i], flags) < 0)
			return BS_ERR_INVALID;
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(digit(in[2 * i], flags) << 4 | digit(in[2 * i + 1], flags));
	return 0;
}
