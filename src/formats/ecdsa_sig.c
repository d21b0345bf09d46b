/*
 * ecdsa_sig.c - ECDSA P-256 signature encodings: raw r||s (IEEE P1363, what
 * PKCS#11 CKM_ECDSA returns) <-> DER ECDSA-Sig-Value (X9.62):
 *
 *   ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
 *
 * Hand-written and strict: for P-256 the content is at most 70 bytes, so
 * every DER length is in short form; anything BER allows but DER does not
 * (long-form or indefinite lengths, non-minimal or negative integers,
 * trailing bytes) is rejected, as are zero and values wider than 32 bytes.
 */
#include <string.h>

#include "formats/ecdsa_sig.h"

#define SCALAR_LEN 32
#define ASN1_SEQUENCE 0x30
#define ASN1_INTEGER 0x02

/*
 * Writes one INTEGER for the 32-byte big-endian unsigned v into out (room
 * for 35 bytes). Returns the bytes written, or 0 if v is zero.
 */
static size_t
put_integer(uint8_t *out, const uint8_t *v)
{
	size_t skip = 0, n, w = 0;

	while (skip < SCALAR_LEN && v[skip] == 0)
		skip++;
	if (skip == SCALAR_LEN)
		return 0;
	n = SCALAR_LEN - skip;
	out[w++] = ASN1_INTEGER;
	if (v[skip] & 0x80) {
		out[w++] = (uint8_t)(n + 1);
		out[w++] = 0x00;
	} else {
		out[w++] = (uint8_t)n;
	}
	memcpy(out + w, v + skip, n);
	return w + n;
}

int
ecdsa_sig_raw_to_der(const uint8_t raw[ECDSA_P256_RAW_LEN], uint8_t *out, size_t cap,
    size_t *out_len)
{
	uint8_t buf[ECDSA_P256_DER_MAX];
	size_t rn, sn;

	if (raw == NULL || out == NULL || out_len == NULL)
		return BS_ERR_INVALID;
	rn = put_integer(buf + 2, raw);
	if (rn == 0)
		return BS_ERR_INVALID;
	sn = put_integer(buf + 2 + rn, raw + SCALAR_LEN);
	if (sn == 0)
		return BS_ERR_INVALID;
	buf[0] = ASN1_SEQUENCE;
	buf[1] = (uint8_t)(rn + sn);    /* <= 70: short form */
	if (cap < 2 + rn + sn)
		return BS_ERR_TOO_BIG;
	memcpy(out, buf, 2 + rn + sn);
	*out_len = 2 + rn + sn;
	return 0;
}

/*
 * Reads one strict-DER positive INTEGER of at most 32 significant bytes at
 * *pos (before end) into the 32-byte big-endian dst. Returns 0 or
 * BS_ERR_INVALID.
 */
static int
get_integer(const uint8_t *der, size_t *pos, size_t end, uint8_t dst[SCALAR_LEN])
{
	size_t p = *pos, len;

	if (end - p < 2 || der[p] != ASN1_INTEGER)
		return BS_ERR_INVALID;
	len = der[p + 1];
	p += 2;
	if (len & 0x80)                 /* long form is never minimal here */
		return BS_ERR_INVALID;
	if (len == 0 || len > end - p)
		return BS_ERR_INVALID;
	if (der[p] & 0x80)              /* negative */
		return BS_ERR_INVALID;
	if (der[p] == 0x00) {
		if (len == 1)           /* zero */
			return BS_ERR_INVALID;
		if ((der[p + 1] & 0x80) == 0)   /* unneeded leading zero */
			return BS_ERR_INVALID;
		p++;
		len--;
	}
	if (len > SCALAR_LEN)
		return BS_ERR_INVALID;
	memset(dst, 0, SCALAR_LEN - len);
	memcpy(dst + SCALAR_LEN - len, der + p, len);
	*pos = p + len;
	return 0;
}

int
ecdsa_sig_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[ECDSA_P256_RAW_LEN])
{
	uint8_t tmp[ECDSA_P256_RAW_LEN];
	size_t pos, end;
	int rc = BS_ERR_INVALID;

	if (der == NULL || raw == NULL || der_len < 2 || der_len > ECDSA_P256_DER_MAX)
		goto out;
	if (der[0] != ASN1_SEQUENCE || (der[1] & 0x80) != 0)
		goto out;
	/* exactly one SEQUENCE, nothing after it */
	if ((size_t)der[1] != der_len - 2)
		goto out;
	pos = 2;
	end = der_len;
	if (get_integer(der, &pos, end, tmp) != 0)
		goto out;
	if (get_integer(der, &pos, end, tmp + SCALAR_LEN) != 0)
		goto out;
	if (pos != end)
		goto out;
	memcpy(raw, tmp, sizeof(tmp));
	rc = 0;
out:
	return rc;
}
