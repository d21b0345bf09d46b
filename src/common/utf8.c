/*
 * utf8.c - strict UTF-8 decoding (see utf8.h).
 */
#include "common/utf8.h"

size_t
bs_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t b = p[0], lo = 0x80, hi = 0xbf;
	size_t len, i;
	uint32_t v;

	if (b < 0x80) {
		len = 1;
		v = b;
		goto out;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		v = b & 0x1fu;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		v = b & 0x0fu;
		if (b == 0xe0)
			lo = 0xa0;      /* no overlongs */
		else if (b == 0xed)
			hi = 0x9f;      /* no surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		v = b & 0x07u;
		if (b == 0xf0)
			lo = 0x90;      /* no overlongs */
		else if (b == 0xf4)
			hi = 0x8f;      /* <= U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		uint8_t c = p[i];

		if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
			return 0;
		v = (v << 6) | (c & 0x3fu);
	}
out:
	if (cp != NULL)
		*cp = v;
	return len;
}
