/*
 * jose.c - base64url and RFC 7638 JWK thumbprints for command tokens
 * (see jose.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/b64.h"
#include "formats/jose.h"

int
jose_b64url(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	char buf[BS_B64_ENCODED_LEN(512) + 1];
	size_t i, len;

	if (JOSE_B64URL_LEN(n) + 1 > outlen)
		return -1;
	/* in chunks of 384 bytes (a multiple of 3: no padding inside) */
	for (len = 0; n > 0; ) {
		size_t take = n > 384 ? 384 : n;
		size_t w = bs_b64_encode(in, take, buf);

		for (i = 0; i < w && buf[i] != '='; i++)
			out[len++] = buf[i] == '+' ? '-' : buf[i] == '/' ? '_' : buf[i];
		in += take;
		n -= take;
	}
	out[len] = '\0';
	return (int)len;
}

int
jose_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *out_len)
{
	char *std = NULL;
	uint8_t *buf = NULL;
	size_t i, total = 0, padded = (n + 3) / 4 * 4;
	int rc = BS_ERR_INVALID;

	if (in == NULL || out == NULL || out_len == NULL || n % 4 == 1 || n > JOSE_B64URL_MAX)
		return BS_ERR_INVALID;
	if ((std = malloc(padded + 1)) == NULL || (buf = malloc(padded / 4 * 3 + 1)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		/* the URL-safe alphabet only: '+', '/' and '=' are not base64url */
		if (in[i] == '+' || in[i] == '/' || in[i] == '=')
			goto out;
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	}
	for (; i < padded; i++)
		std[i] = '=';
	/* strict: the alphabet, and the unused bits of the last character zero */
	if ((rc = bs_b64_decode(std, padded, 0, buf, padded / 4 * 3 + 1, &total)) != 0)
		goto out;
	*out = buf;
	*out_len = total;
	buf = NULL;
out:
	free(std);
	free(buf);
	return rc;
}

int
jose_thumbprint(const uint8_t *spki, size_t len, char out[JOSE_THUMBPRINT_LEN + 1])
{
	const uint8_t *p = spki;
	EVP_PKEY *pk;
	uint8_t pub[65], h[32];
	char x[48], y[48], json[160];
	size_t plen = 0;
	int n, rc = BS_ERR_UNSUPPORTED;

	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len) {
		EVP_PKEY_free(pk);
		return BS_ERR_INVALID;
	}
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		plen = sizeof(pub);     /* in: the room; out: the length */
		if (EVP_PKEY_get_raw_public_key(pk, pub, &plen) == 1 && plen == 32 &&
		    jose_b64url(pub, 32, x, sizeof(x)) > 0) {
			n = snprintf(json, sizeof(json), "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}",
			    x);
			rc = 0;
		}
	} else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC && EVP_PKEY_get_bits(pk) == 256) {
		if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
		    &plen) == 1 && plen == 65 && pub[0] == 0x04 &&
		    jose_b64url(pub + 1, 32, x, sizeof(x)) > 0 &&
		    jose_b64url(pub + 33, 32, y, sizeof(y)) > 0) {
			n = snprintf(json, sizeof(json), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
			    "\"y\":\"%s\"}", x, y);
			rc = 0;
		}
	}
	EVP_PKEY_free(pk);
	if (rc != 0)
		return rc;
	SHA256((const uint8_t *)json, (size_t)n, h);
	return jose_b64url(h, sizeof(h), out, JOSE_THUMBPRINT_LEN + 1) == JOSE_THUMBPRINT_LEN ? 0 :
	    BS_ERR_INVALID;
}
