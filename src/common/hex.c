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

/*
 * Each byte's digit value + 1 (0: not a digit), with UPPER set for 'A'..'F':
 * the audit log's start-up check decodes a hash per record, so no branches.
 */
#define UPPER 0x40
#define D(v) (uint8_t)((v) + 1)
static const uint8_t digit_tab[256] = {
	['0'] = D(0), ['1'] = D(1), ['2'] = D(2), ['3'] = D(3), ['4'] = D(4),
	['5'] = D(5), ['6'] = D(6), ['7'] = D(7), ['8'] = D(8), ['9'] = D(9),
	['a'] = D(10), ['b'] = D(11), ['c'] = D(12), ['d'] = D(13), ['e'] = D(14), ['f'] = D(15),
	['A'] = UPPER | D(10), ['B'] = UPPER | D(11), ['C'] = UPPER | D(12),
	['D'] = UPPER | D(13), ['E'] = UPPER | D(14), ['F'] = UPPER | D(15),
};
#undef D

int
bs_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)in;
	unsigned bad = 0, refuse = (flags & BS_HEX_LOWER) != 0 ? UPPER : 0;
	size_t i;

	if (outlen > SIZE_MAX / 2 || inlen != 2 * outlen)
		return BS_ERR_INVALID;
	for (i = 0; i < inlen; i++) {
		unsigned t = digit_tab[u[i]];

		bad |= (t == 0) | (t & refuse);
	}
	if (bad != 0)
		return BS_ERR_INVALID;
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(((digit_tab[u[2 * i]] & 0x1fu) - 1) << 4 |
		    ((digit_tab[u[2 * i + 1]] & 0x1fu) - 1));
	return 0;
}
