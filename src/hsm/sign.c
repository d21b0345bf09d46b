/*
 * sign.c - hsm_sign: one signature with a private key on the token (or one
 * HMAC with a secret key), the key's type checked against the algorithm first (SoftHSM crashes on a
 * mechanism/key mismatch).
 */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm/hsm_int.h"

int
hsm_sign(struct hsm_session *s, hsm_handle priv, enum bs_alg alg, const uint8_t *data,
    size_t data_len, uint8_t *sig, size_t *sig_len)
{
	CK_FUNCTION_LIST *fl;
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, HSM_DIGEST_LEN };
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_ULONG out_len = 0;
	uint8_t buf[HSM_SIG_MAX];
	size_t want = 0;  /* exact length for fixed-size signatures, else 0 */
	CK_KEY_TYPE ktype = 0, want_ktype = 0;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (s == NULL || data == NULL || sig == NULL || sig_len == NULL)
		goto out;
	s->last_rv = CKR_OK;
	fl = s->h->fl;
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		if (data_len != HSM_DIGEST_LEN)
			goto out;
		mech.mechanism = CKM_ECDSA;
		want_ktype = CKK_EC;
		want = HSM_P256_SIG_LEN;
		break;
	case BS_ALG_ED25519:
		if (data_len > HSM_SIGN_MAX_INPUT) {
			ret = BS_ERR_TOO_BIG;
			goto out;
		}
		mech.mechanism = CKM_EDDSA;
		want_ktype = CKK_EC_EDWARDS;
		want = HSM_ED25519_SIG_LEN;
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		if (data_len != HSM_DIGEST_LEN)
			goto out;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		want_ktype = CKK_RSA;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		break;
	case BS_ALG_HMAC_SHA256:
		if (data_len > HSM_SIGN_MAX_INPUT) {
			ret = BS_ERR_TOO_BIG;
			goto out;
		}
		mech.mechanism = CKM_SHA256_HMAC;
		want_ktype = CKK_GENERIC_SECRET;
		want = HSM_DIGEST_LEN;
		break;
	case BS_ALG_AES_256_GCM:
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		goto out;
	}
	if (want != 0 && *sig_len < want) {
		ret = BS_ERR_TOO_BIG;
		goto out;
	}

	/*
	 * The key must be a private key of the type alg names: SoftHSM 2.6.1
	 * crashes on CKM_RSA_PKCS_PSS with an EC key instead of refusing it.
	 */
	if ((ret = hsm_key_type(s, priv, &ktype)) != 0)
		goto out;
	if (ktype != want_ktype) {
		s->last_rv = CKR_KEY_TYPE_INCONSISTENT;
		ret = BS_ERR_INVALID;
		goto out;
	}

	rv = fl->C_SignInit(s->sh, &mech, priv);
	if (rv == CKR_OPERATION_ACTIVE && hsm_session_reset(s) == 0)
		rv = fl->C_SignInit(s->sh, &mech, priv);
	if (rv != CKR_OK) {
		ret = hsm_fail_rv(s, rv);
		goto out;
	}
	/*
	 * One call into a buffer larger than any signature we make. Should the
	 * operation stay active (CKR_BUFFER_TOO_SMALL, or a module that does
	 * not end it on error), the session is replaced.
	 */
	out_len = sizeof(buf);
	rv = fl->C_Sign(s->sh, (CK_BYTE_PTR)(uintptr_t)data, (CK_ULONG)data_len, buf, &out_len);
	if (rv != CKR_OK) {
		ret = hsm_fail_rv(s, rv);
		(void)hsm_session_reset(s);
		goto out;
	}
	if (out_len == 0 || out_len > sizeof(buf) || (want != 0 && out_len != want)) {
		ret = hsm_fail_rv(s, CKR_SIGNATURE_LEN_RANGE);
		goto out;
	}
	if (out_len > *sig_len) {
		ret = BS_ERR_TOO_BIG;
		goto out;
	}
	memcpy(sig, buf, out_len);
	*sig_len = out_len;
	ret = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}
