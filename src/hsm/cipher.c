/*
 * cipher.c - secret keys on the token for envelope encryption: generate an
 * AES-256 key-encryption key or an HMAC key (sensitive, never extractable,
 * allowed one use), AES-256-GCM encrypt and decrypt with a key-encryption
 * key, and the token's random generator.
 *
 * SoftHSM quirks handled here: CK_GCM_PARAMS must be the 48-byte structure
 * with ulIvBits (PKCS#11 v2.40 errata and 3.0 headers), and ulTagBits = 0
 * yields ciphertext without a tag, so the tag length is always 128 and every
 * output length is checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm/hsm_int.h"

#define GCM_INPUT_MAX (1u << 20)   /* far above the envelope's 4 KiB payloads */

int
hsm_generate_secret(struct hsm_session *s, enum bs_alg alg, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, unsigned flags, hsm_handle *key_out)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BBOOL enc = CK_FALSE, sign = CK_FALSE;
	CK_ULONG len = HSM_SECRET_LEN;
	CK_KEY_TYPE ktype;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE, *found = NULL;
	CK_ATTRIBUTE id_t[1];
	size_t label_len, nfound = 0;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (s == NULL || id == NULL || label == NULL || key_out == NULL)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	label_len = strnlen(label, HSM_LABEL_MAX + 1);
	if (label_len == 0 || label_len > HSM_LABEL_MAX)
		return BS_ERR_INVALID;
	switch (alg) {
	case BS_ALG_AES_256_GCM:
		mech.mechanism = CKM_AES_KEY_GEN;
		ktype = CKK_AES;
		enc = CK_TRUE;
		break;
	case BS_ALG_HMAC_SHA256:
		mech.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
		ktype = CKK_GENERIC_SECRET;
		sign = CK_TRUE;
		break;
	default:
		return BS_ERR_UNSUPPORTED;
	}
	memcpy(idbuf, id, HSM_KEY_ID_LEN);
	if (!(flags & HSM_GEN_NEW_ID)) {
		id_t[0] = (CK_ATTRIBUTE){ CKA_ID, idbuf, HSM_KEY_ID_LEN };
		ret = hsm_find_objects(s, id_t, 1, HSM_FIND_BATCH, &found, &nfound);
		free(found);
		if (ret == BS_ERR_TOO_BIG || (ret == 0 && nfound != 0))
			return BS_ERR_EXISTS;
		if (ret != 0)
			return ret;
	}

	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &ktype, sizeof(ktype) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &enc, sizeof(enc) },
		{ CKA_DECRYPT, &enc, sizeof(enc) },
		{ CKA_SIGN, &sign, sizeof(sign) },
		{ CKA_VERIFY, &sign, sizeof(sign) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_ID, idbuf, HSM_KEY_ID_LEN },
		{ CKA_LABEL, (void *)(uintptr_t)label, label_len },
	};

	rv = s->h->fl->C_GenerateKey(s->sh, &mech, t, sizeof(t) / sizeof(t[0]), &key);
	if (rv != CKR_OK)
		return hsm_fail_rv(s, rv);
	if ((ret = hsm_check_key_flags(s, key)) != 0) {
		(void)hsm_destroy_object(s, key);
		return ret;
	}
	*key_out = key;
	return 0;
}

/* Checks that key is an AES key, and starts a GCM operation (encrypt or decrypt) with it. */
static int
gcm_init(struct hsm_session *s, hsm_handle key, CK_GCM_PARAMS *p, int encrypt)
{
	CK_MECHANISM mech = { CKM_AES_GCM, p, sizeof(*p) };
	CK_FUNCTION_LIST *fl = s->h->fl;
	CK_KEY_TYPE ktype = 0;
	CK_RV rv;
	int ret;

	/* SoftHSM crashes on some mechanism/key mismatches: check the type first */
	if ((ret = hsm_key_type(s, key, &ktype)) != 0)
		return ret;
	if (ktype != CKK_AES) {
		s->last_rv = CKR_KEY_TYPE_INCONSISTENT;
		return BS_ERR_INVALID;
	}
	rv = encrypt ? fl->C_EncryptInit(s->sh, &mech, key) : fl->C_DecryptInit(s->sh, &mech, key);
	if (rv == CKR_OPERATION_ACTIVE && hsm_session_reset(s) == 0)
		rv = encrypt ? fl->C_EncryptInit(s->sh, &mech, key) :
		    fl->C_DecryptInit(s->sh, &mech, key);
	return rv == CKR_OK ? 0 : hsm_fail_rv(s, rv);
}

int
hsm_aes_gcm_encrypt(struct hsm_session *s, hsm_handle key, const uint8_t nonce[HSM_GCM_NONCE],
    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
	CK_BYTE iv[HSM_GCM_NONCE];
	CK_GCM_PARAMS p = { iv, HSM_GCM_NONCE, HSM_GCM_NONCE * 8, (CK_BYTE_PTR)(uintptr_t)aad,
	    (CK_ULONG)aad_len, HSM_GCM_TAG * 8 };
	CK_ULONG out_len = (CK_ULONG)(pt_len + HSM_GCM_TAG);
	CK_RV rv;
	int ret;

	if (s == NULL || nonce == NULL || (aad == NULL && aad_len > 0) || pt == NULL || out == NULL ||
	    pt_len > GCM_INPUT_MAX || aad_len > GCM_INPUT_MAX)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	memcpy(iv, nonce, sizeof(iv));
	if ((ret = gcm_init(s, key, &p, 1)) != 0)
		return ret;
	rv = s->h->fl->C_Encrypt(s->sh, (CK_BYTE_PTR)(uintptr_t)pt, (CK_ULONG)pt_len, out, &out_len);
	if (rv != CKR_OK) {
		(void)hsm_session_reset(s);
		return hsm_fail_rv(s, rv);
	}
	if (out_len != pt_len + HSM_GCM_TAG) {
		/* no tag (or a short one): never hand out unauthenticated ciphertext */
		OPENSSL_cleanse(out, pt_len + HSM_GCM_TAG);
		return hsm_fail_rv(s, CKR_ENCRYPTED_DATA_LEN_RANGE);
	}
	return 0;
}

int
hsm_aes_gcm_decrypt(struct hsm_session *s, hsm_handle key, const uint8_t nonce[HSM_GCM_NONCE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out)
{
	CK_BYTE iv[HSM_GCM_NONCE];
	CK_GCM_PARAMS p = { iv, HSM_GCM_NONCE, HSM_GCM_NONCE * 8, (CK_BYTE_PTR)(uintptr_t)aad,
	    (CK_ULONG)aad_len, HSM_GCM_TAG * 8 };
	uint8_t *buf = NULL;
	CK_ULONG out_len;
	CK_RV rv;
	int ret;

	if (s == NULL || nonce == NULL || (aad == NULL && aad_len > 0) || in == NULL || out == NULL ||
	    in_len < HSM_GCM_TAG || in_len > GCM_INPUT_MAX + HSM_GCM_TAG || aad_len > GCM_INPUT_MAX)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	memcpy(iv, nonce, sizeof(iv));
	/* a module may want room for the whole input: decrypt into our own buffer */
	if ((buf = malloc(in_len)) == NULL)
		return BS_ERR_NOMEM;
	out_len = (CK_ULONG)in_len;
	if ((ret = gcm_init(s, key, &p, 0)) != 0)
		goto out;
	rv = s->h->fl->C_Decrypt(s->sh, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)in_len, buf, &out_len);
	/*
	 * A tag that does not match: CKR_AEAD_DECRYPT_FAILED (PKCS#11 3.0),
	 * CKR_ENCRYPTED_DATA_INVALID (2.40), and SoftHSM 2.6's CKR_GENERAL_ERROR,
	 * taken for a refusal only while the session still answers.
	 */
	if (rv == CKR_AEAD_DECRYPT_FAILED || rv == CKR_ENCRYPTED_DATA_INVALID ||
	    rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
	    ((rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) && hsm_session_alive(s))) {
		s->last_rv = rv;
		ret = BS_ERR_SIG_INVALID;    /* a refusal, not a failure of the token */
		goto out;
	}
	if (rv != CKR_OK) {
		(void)hsm_session_reset(s);
		ret = hsm_fail_rv(s, rv);
		goto out;
	}
	if (out_len != in_len - HSM_GCM_TAG) {
		ret = hsm_fail_rv(s, CKR_ENCRYPTED_DATA_LEN_RANGE);
		goto out;
	}
	memcpy(out, buf, out_len);
	ret = 0;
out:
	OPENSSL_clear_free(buf, in_len);
	return ret;
}

int
hsm_random(struct hsm_session *s, uint8_t *buf, size_t len)
{
	CK_RV rv;

	if (s == NULL || buf == NULL || len == 0 || len > 4096)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	rv = s->h->fl->C_GenerateRandom(s->sh, buf, (CK_ULONG)len);
	return rv == CKR_OK ? 0 : hsm_fail_rv(s, rv);
}
