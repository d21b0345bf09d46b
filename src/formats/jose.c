/*
 * jose.c - base64url and RFC 7638 JWK thumbprints for command tokens
 * (see jose.h).
 */
#include <stdio.h>
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
