/*
 * csr.c - a CSR's public key, after proof of possession (see csr.h).
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "formats/csr.h"

int
csr_public_key(const char *pem, size_t len, EVP_PKEY **out, const char **why)
{
	X509_REQ *req = NULL;
	EVP_PKEY *k = NULL;
	char group[32], enc[32];
	size_t glen = 0;
	BIO *b;

	*out = NULL;
	*why = "csr_pem: not a PEM certificate request";
	if (len == 0 || len > CSR_PEM_MAX || (b = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return BS_ERR_INVALID;
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	if (req == NULL || (k = X509_REQ_get_pubkey(req)) == NULL)
		goto bad;
	*why = "csr_pem: its signature does not verify with its key (no proof of possession)";
	if (X509_REQ_verify(req, k) != 1)
		goto bad;
	*why = "csr_pem: the key must be ECDSA P-256 or Ed25519";
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ||
	    (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) == 1 &&
	    strcmp(group, "prime256v1") == 0 &&
	    /* the named curve, not its parameters spelled out (RFC 5480 2.1.1) */
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
	    NULL) == 1 && strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0)) {
		X509_REQ_free(req);
		*out = k;
		*why = NULL;
		return 0;
	}
bad:
	EVP_PKEY_free(k);
	X509_REQ_free(req);
	return BS_ERR_INVALID;
}
