/*
 * b64.c - base64 through OpenSSL, behind a strict (or, on request, the
 * CLI's lax) check of the text (see b64.h).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/b64.h"

#define ENC_CHUNK (3u * 1024 * 1024)    /* input bytes per EVP_EncodeBlock call */
#define DEC_QUADS 64                    /* 4-character groups per EVP_DecodeBlock call */

size_t
bs_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t w = 0, k;

	out[0] = '\0';
	while (n > 0) {
		k = n < ENC_CHUNK ? n : ENC_CHUNK;
		w += (size_t)EVP_EncodeBlock((unsigned char *)out + w, in, (int)k);
		in += k;
		n -= k;
	}
	return w;
}

/* 0..63 for an alphabet character, else -1. */
static int
value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The white space of C's isspace() in the C locale. */
static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Strict check of in[0..n); *ndata gets the number of data characters. */
static int
check_strict(const unsigned char *in, size_t n, size_t *ndata)
{
	size_t pad = 0, i;

	if (n % 4 != 0)
		return BS_ERR_INVALID;
	if (n > 0 && in[n - 1] == '=') {
		pad = 1;
		if (in[n - 2] == '=')
			pad = 2;
	}
	for (i = 0; i < n - pad; i++)
		if (value(in[i]) < 0)
			return BS_ERR_INVALID;
	/* the bits the padding leaves unused must be zero */
	if ((pad == 1 && (value(in[n - 2]) & 0x03) != 0) ||
	    (pad == 2 && (value(in[n - 3]) & 0x0f) != 0))
		return BS_ERR_INVALID;
	*ndata = n - pad;
	return 0;
}

/* Lax check of in[0..n) (see BS_B64_LAX); *ndata as for check_strict. */
static int
check_lax(const unsigned char *in, size_t n, size_t *ndata)
{
	size_t i, m = 0, pad = 0;

	for (i = 0; i < n; i++) {
		if (is_space(in[i]))
			continue;
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || value(in[i]) < 0)
			return BS_ERR_INVALID;
		m++;
	}
	if (m % 4 == 1 || pad > 2)
		return BS_ERR_INVALID;
	*ndata = m;
	return 0;
}

/* Data characters waiting for EVP_DecodeBlock, and where the bytes go. */
struct dec {
	char q[4 * DEC_QUADS];
	size_t nq;
	uint8_t *out;
	size_t cap;
	size_t done;                    /* bytes decoded so far */
	size_t total;
};

/*
 * Decodes the waiting characters (a final partial group is completed with
 * 'A', zero bits) and copies what is wanted of them. 0 or BS_ERR_CRYPTO.
 */
static int
flush(struct dec *d)
{
	uint8_t b[3 * DEC_QUADS];
	size_t i, n;
	int r;

	while (d->nq % 4 != 0)
		d->q[d->nq++] = 'A';
	r = EVP_DecodeBlock(b, (const unsigned char *)d->q, (int)d->nq);
	if (r < 0 || (size_t)r != d->nq / 4 * 3)
		return BS_ERR_CRYPTO;
	n = (size_t)r < d->total - d->done ? (size_t)r : d->total - d->done;
	for (i = 0; i < n && d->done < d->cap; i++)
		d->out[d->done++] = b[i];
	d->nq = 0;
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

int
bs_b64_decode(const char *in, size_t n, unsigned flags, uint8_t *out, size_t cap,
    size_t *total)
{
	const unsigned char *p = (const unsigned char *)in;
	struct dec d;
	size_t ndata = 0, i;
	int rc;

	rc = (flags & BS_B64_LAX) != 0 ? check_lax(p, n, &ndata) : check_strict(p, n, &ndata);
	if (rc != 0)
		return rc;
	d.nq = 0;
	d.out = out;
	d.cap = cap;
	d.done = 0;
	d.total = ndata / 4 * 3 + (ndata % 4 == 0 ? 0 : ndata % 4 - 1);
	for (i = 0; i < n && d.done < d.cap && d.done < d.total; i++) {
		if (p[i] == '=' || is_space(p[i]))      /* only these are left to skip */
			continue;
		d.q[d.nq++] = (char)p[i];
		if (d.nq == sizeof(d.q) && (rc = flush(&d)) != 0)
			goto out;
	}
	if (d.nq > 0 && (rc = flush(&d)) != 0)
		goto out;
	*total = d.total;
out:
	OPENSSL_cleanse(d.q, sizeof(d.q));
	return rc;
}
