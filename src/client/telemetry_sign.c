/*
 * telemetry_sign.c - bs_tlm_sign (include/boltseal/telemetry.h): the
 * window's bytes from the shared encoder (formats/tlm_encode.h), signed
 * with OpenSSL (ECDSA P-256 over SHA-256, converted to r||s; or Ed25519).
 */
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "boltseal/telemetry.h"
#include "formats/tlm_encode.h"

/* The key id: SHA-256 of the DER SubjectPublicKeyInfo. 0 or -1. */
static int
key_id(EVP_PKEY *key, uint8_t kid[TLM_KID_LEN])
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(key, &der);

	if (n <= 0)
		return -1;
	SHA256(der, (size_t)n, kid);
	OPENSSL_free(der);
	return 0;
}

/* sig (64 bytes) over tbs with key; 0 or a bs_tlm_result. */
static int
sign(EVP_PKEY *key, int ed, const uint8_t *tbs, size_t tbs_len, uint8_t sig[TLM_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t dlen = sizeof(der);
	const uint8_t *p = der;
	ECDSA_SIG *es = NULL;
	int rc = BS_TLM_ERR_CRYPTO;

	if (ctx == NULL)
		return rc;
	if (ed) {
		size_t slen = TLM_SIG_LEN;

		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestSign(ctx, sig, &slen, tbs, tbs_len) == 1 && slen == TLM_SIG_LEN)
			rc = BS_TLM_OK;
	} else if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(ctx, der, &dlen, tbs, tbs_len) == 1 &&
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) != NULL &&
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32) {
		rc = BS_TLM_OK;
	}
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
bs_tlm_sign(const struct bs_tlm_window *bw, EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len)
{
	struct tlm_window w;
	uint8_t kid[TLM_KID_LEN], prot[TLM_PROTECTED_MAX], payload[TLM_PAYLOAD_MAX];
	uint8_t tbs[TLM_TBS_MAX], sig[TLM_SIG_LEN];
	size_t plen, paylen, tlen, n;
	int ed, rc;

	if (bw == NULL || key == NULL || out == NULL || len == NULL)
		return BS_TLM_ERR_ARG;
	w.vehicle_id = bw->vehicle_id;
	w.seq = bw->seq;
	w.start_ms = bw->start_ms;
	w.end_ms = bw->end_ms;
	w.samples = bw->samples;
	memcpy(w.samples_sha256, bw->samples_sha256, sizeof(w.samples_sha256));
	if (!tlm_window_valid(&w))
		return BS_TLM_ERR_ARG;
	ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
	if (!ed && !(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) == 256))
		return BS_TLM_ERR_KEY;
	if (key_id(key, kid) != 0)
		return BS_TLM_ERR_KEY;
	plen = tlm_protected_encode(ed ? TLM_ALG_EDDSA : TLM_ALG_ES256, kid, prot, sizeof(prot));
	paylen = tlm_payload_encode(&w, payload, sizeof(payload));
	tlen = tlm_tbs_encode(prot, plen, payload, paylen, tbs, sizeof(tbs));
	if (plen == 0 || paylen == 0 || tlen == 0)
		return BS_TLM_ERR_ARG;
	if ((rc = sign(key, ed, tbs, tlen, sig)) != BS_TLM_OK)
		return rc;
	if ((n = tlm_token_encode(prot, plen, payload, paylen, sig, sizeof(sig), out, cap)) == 0)
		return BS_TLM_ERR_ARG;
	*len = n;
	return BS_TLM_OK;
}

const char *
bs_tlm_strerror(int result)
{
	switch (result) {
	case BS_TLM_OK:
		return "ok";
	case BS_TLM_ERR_ARG:
		return "invalid argument (a NULL pointer, or a window the format does not allow)";
	case BS_TLM_ERR_KEY:
		return "the key is not an EC P-256 or Ed25519 private key";
	case BS_TLM_ERR_CRYPTO:
		return "OpenSSL failed to sign";
	default:
		return "unknown result";
	}
}
