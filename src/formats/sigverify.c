/*
 * sigverify.c - public-key signature verification with OpenSSL 3 EVP (no
 * HSM: a public key is public). Used by KeyService.Verify and by tests.
 *
 * ECDSA P-256 with SHA-256 (signature in strict DER, re-encoded and compared
 * byte for byte, or raw r||s of exactly 64 bytes), Ed25519 (pure, message
 * only), RSA-PSS with SHA-256, MGF1-SHA-256 and a salt of exactly 32 bytes.
 * In digest mode the caller passes the 32-byte SHA-256 of the message.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "formats/ecdsa_sig.h"
#include "formats/sigverify.h"

#define SHA256_LEN 32
#define PSS_SALT_LEN 32
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 4096          /* and e = 65537: verification work is bounded */

/* Decodes a DER SPKI with nothing after it. Returns 0 or BS_ERR_INVALID. */
static int
spki_parse(const uint8_t *spki, size_t spki_len, EVP_PKEY **pkey_out)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey;

	if (spki == NULL || spki_len == 0 || spki_len > (size_t)LONG_MAX)
		return BS_ERR_INVALID;
	pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (pkey == NULL) {
		ERR_clear_error();
		return BS_ERR_INVALID;
	}
	if (p != spki + spki_len) {
		EVP_PKEY_free(pkey);
		return BS_ERR_INVALID;
	}
	*pkey_out = pkey;
	return 0;
}

/* Classifies a decoded key. Returns 0 or BS_ERR_UNSUPPORTED. */
static int
pkey_alg(EVP_PKEY *pkey, enum bs_alg *alg_out)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), &glen) != 1) {
			ERR_clear_error();
			return BS_ERR_UNSUPPORTED;
		}
		if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
			return BS_ERR_UNSUPPORTED;
		*alg_out = BS_ALG_ECDSA_P256_SHA256;
		return 0;
	case EVP_PKEY_ED25519:
		*alg_out = BS_ALG_ED25519;
		return 0;
	case EVP_PKEY_RSA: {
		/*
		 * Bounded work: a caller's RSA key is 2048..4096 bits with e = 65537
		 * (a 16384-bit key with a 64-bit exponent costs ~100 verifies).
		 */
		BIGNUM *e = NULL;
		int ok;

		if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS || EVP_PKEY_get_bits(pkey) > RSA_MAX_BITS)
			return BS_ERR_UNSUPPORTED;
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
			ERR_clear_error();
			return BS_ERR_UNSUPPORTED;
		}
		ok = BN_is_word(e, 65537);
		BN_free(e);
		if (!ok)
			return BS_ERR_UNSUPPORTED;
		*alg_out = BS_ALG_RSA_3072_PSS_SHA256;
		return 0;
	}
	default:
		return BS_ERR_UNSUPPORTED;
	}
}

int
sigverify_spki_alg(const uint8_t *spki, size_t spki_len, enum bs_alg *alg_out)
{
	EVP_PKEY *pkey = NULL;
	int rc;

	if ((rc = sigverify_key_parse(spki, spki_len, &pkey, alg_out)) == 0)
		EVP_PKEY_free(pkey);
	return rc;
}

/* Sets PSS, salt 32, MGF1-SHA-256 on an RSA verify context. */
static int
set_pss(EVP_PKEY_CTX *pctx)
{
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
		return BS_ERR_CRYPTO;
	return 0;
}

/* Verifies over the message (md NULL for Ed25519). */
static int
verify_message(EVP_PKEY *pkey, enum bs_alg alg, const uint8_t *msg, size_t msg_len,
    const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = alg == BS_ALG_ED25519 ? NULL : EVP_sha256();
	int rc = BS_ERR_CRYPTO;

	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) != 1)
		goto out;
	if (alg == BS_ALG_RSA_3072_PSS_SHA256 && set_pss(pctx) != 0)
		goto out;
	rc = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1 ? 0 : BS_ERR_SIG_INVALID;
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* Verifies over a 32-byte SHA-256 digest (ECDSA, RSA-PSS). */
static int
verify_digest(EVP_PKEY *pkey, enum bs_alg alg, const uint8_t *dgst, const uint8_t *sig,
    size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;
	int rc = BS_ERR_CRYPTO;

	if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_verify_init(pctx) != 1)
		goto out;
	if (EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) <= 0)
		goto out;
	if (alg == BS_ALG_RSA_3072_PSS_SHA256 && set_pss(pctx) != 0)
		goto out;
	rc = EVP_PKEY_verify(pctx, sig, sig_len, dgst, SHA256_LEN) == 1 ? 0 : BS_ERR_SIG_INVALID;
out:
	EVP_PKEY_CTX_free(pctx);
	return rc;
}

/*
 * Brings an ECDSA signature to strict DER in der (72 bytes). Returns 0 or
 * BS_ERR_SIG_INVALID for a malformed signature.
 */
static int
ecdsa_to_der(const uint8_t *sig, size_t sig_len, enum bs_sig_format fmt,
    uint8_t der[ECDSA_P256_DER_MAX], size_t *der_len)
{
	uint8_t raw[ECDSA_P256_RAW_LEN];
	size_t n;

	switch (fmt) {
	case BS_SIGFMT_RAW:
		if (sig_len != ECDSA_P256_RAW_LEN)
			return BS_ERR_SIG_INVALID;
		if (ecdsa_sig_raw_to_der(sig, der, ECDSA_P256_DER_MAX, der_len) != 0)
			return BS_ERR_SIG_INVALID;
		return 0;
	case BS_SIGFMT_DER:
		if (ecdsa_sig_der_to_raw(sig, sig_len, raw) != 0)
			return BS_ERR_SIG_INVALID;
		if (ecdsa_sig_raw_to_der(raw, der, ECDSA_P256_DER_MAX, &n) != 0)
			return BS_ERR_SIG_INVALID;
		/* only the one canonical encoding is accepted */
		if (n != sig_len || memcmp(der, sig, n) != 0)
			return BS_ERR_SIG_INVALID;
		*der_len = n;
		return 0;
	default:
		return BS_ERR_INVALID;
	}
}

int
sigverify_key_parse(const uint8_t *spki, size_t spki_len, EVP_PKEY **pkey, enum bs_alg *alg)
{
	EVP_PKEY *k = NULL;
	int rc;

	if (pkey == NULL || alg == NULL)
		return BS_ERR_INVALID;
	if ((rc = spki_parse(spki, spki_len, &k)) != 0 || (rc = pkey_alg(k, alg)) != 0) {
		EVP_PKEY_free(k);
		ERR_clear_error();
		return rc;
	}
	*pkey = k;
	return 0;
}

int
sigverify_verify_key(EVP_PKEY *pkey, enum bs_alg alg, int is_digest, const uint8_t *data,
    size_t data_len, const uint8_t *sig, size_t sig_len, enum bs_sig_format fmt)
{
	static const uint8_t empty[1];
	uint8_t der[ECDSA_P256_DER_MAX];
	size_t der_len = 0;
	int rc;

	if (pkey == NULL || (data == NULL && data_len > 0) || (sig == NULL && sig_len > 0))
		return BS_ERR_INVALID;
	if (data == NULL)
		data = empty;
	if (sig == NULL)
		sig = empty;
	if (is_digest && (alg == BS_ALG_ED25519 || data_len != SHA256_LEN))
		return BS_ERR_INVALID;
	if (alg == BS_ALG_ECDSA_P256_SHA256) {
		if ((rc = ecdsa_to_der(sig, sig_len, fmt, der, &der_len)) != 0)
			return rc;
		sig = der;
		sig_len = der_len;
	}
	if (is_digest)
		rc = verify_digest(pkey, alg, data, sig, sig_len);
	else
		rc = verify_message(pkey, alg, data, data_len, sig, sig_len);
	ERR_clear_error();
	return rc;
}

int
sigverify_verify(const uint8_t *spki, size_t spki_len, enum bs_alg alg, int is_digest,
    const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len,
    enum bs_sig_format fmt)
{
	EVP_PKEY *pkey = NULL;
	enum bs_alg key_alg = BS_ALG_NONE;
	int rc;

	if ((data == NULL && data_len > 0) || (sig == NULL && sig_len > 0))
		return BS_ERR_INVALID;
	if (sigverify_key_parse(spki, spki_len, &pkey, &key_alg) != 0)
		return BS_ERR_INVALID;
	rc = key_alg != alg ? BS_ERR_INVALID :
	    sigverify_verify_key(pkey, alg, is_digest, data, data_len, sig, sig_len, fmt);
	EVP_PKEY_free(pkey);
	return rc;
}

int
sigverify_spki_to_pem(const uint8_t *spki, size_t spki_len, char **pem_out)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *data = NULL, *pem = NULL;
	long n;
	int rc;

	if (pem_out == NULL)
		return BS_ERR_INVALID;
	if ((rc = spki_parse(spki, spki_len, &pkey)) != 0)
		goto out;
	rc = BS_ERR_CRYPTO;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (PEM_write_bio_PUBKEY(bio, pkey) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL)
		goto out;
	if ((pem = malloc((size_t)n + 1)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';
	*pem_out = pem;
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return rc;
}
