/*
 * spki.c - DER SubjectPublicKeyInfo from raw public key material (an EC
 * P-256 point, an Ed25519 key, an RSA modulus and exponent), built and
 * checked with OpenSSL. Pure: no I/O, no PKCS#11.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "formats/spki.h"

#define SPKI_RSA_BITS 3072          /* the only RSA size boltseal generates */

/*
 * Returns the EC point inside CKA_EC_POINT: DER OCTET STRING (the
 * standard) or, from some modules, the raw point. want is the point length.
 */
int
spki_ec_point_unwrap(const uint8_t *v, size_t len, size_t want, const uint8_t **pt_out)
{
	if (want < 0x80 && len == want + 2 && v[0] == 0x04 && v[1] == want) {
		*pt_out = v + 2;
		return 0;
	}
	if (len == want) {
		*pt_out = v;
		return 0;
	}
	return BS_ERR_INVALID;
}

static int
pkey_to_spki(EVP_PKEY *pkey, uint8_t **spki_out, size_t *spki_len_out)
{
	uint8_t *der = NULL, *p;
	int n, ret;

	n = i2d_PUBKEY(pkey, NULL);
	if (n <= 0) {
		ret = BS_ERR_CRYPTO;
		goto out;
	}
	if ((der = malloc((size_t)n)) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(pkey, &p) != n) {
		ret = BS_ERR_CRYPTO;
		goto out;
	}
	*spki_out = der;
	*spki_len_out = (size_t)n;
	der = NULL;
	ret = 0;
out:
	free(der);
	return ret;
}

int
spki_from_ec_p256(const uint8_t *pt, size_t pt_len, uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	char group[] = "prime256v1";
	OSSL_PARAM params[3];
	int ret = BS_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    (void *)(uintptr_t)pt, pt_len);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* The point must lie on the curve. */
	if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(chk) != 1) {
		ret = BS_ERR_INVALID;
		goto out;
	}
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ret;
}

int
spki_from_ed25519(const uint8_t *pt, size_t pt_len, uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY *pkey;
	int ret;

	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, pt_len);
	if (pkey == NULL)
		return BS_ERR_CRYPTO;
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
	EVP_PKEY_free(pkey);
	return ret;
}

int
spki_from_rsa(const uint8_t *n_be, size_t n_len, const uint8_t *e_be, size_t e_len,
    uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int ret = BS_ERR_CRYPTO;

	if ((n = BN_bin2bn(n_be, (int)n_len, NULL)) == NULL ||
	    (e = BN_bin2bn(e_be, (int)e_len, NULL)) == NULL)
		goto out;
	if (BN_num_bits(n) != SPKI_RSA_BITS || !BN_is_word(e, 65537)) {
		ret = BS_ERR_INVALID;
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return ret;
}
