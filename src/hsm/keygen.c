/*
 * keygen.c - key objects on the token: generate a non-extractable signing
 * key pair (ECDSA P-256, Ed25519, RSA-3072) with its private flags read
 * back, its public key returned as DER SubjectPublicKeyInfo (formats/spki),
 * and find, list and destroy keys by CKA_ID or label.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/spki.h"
#include "hsm/hsm_int.h"

/* DER OIDs for CKA_EC_PARAMS: prime256v1 and id-Ed25519 (1.3.101.112). */
static const CK_BYTE oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const CK_BYTE oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const CK_BYTE rsa_e65537[] = { 0x01, 0x00, 0x01 };

/* Builds the DER SubjectPublicKeyInfo of the public key object pub. */
static int
read_spki(struct hsm_session *s, CK_OBJECT_HANDLE pub, enum bs_alg alg, uint8_t **spki_out,
    size_t *spki_len_out)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	const uint8_t *pt;
	int ret;

	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		if ((ret = hsm_get_attr_alloc(s, pub, CKA_EC_POINT, HSM_ATTR_MAX, &a, &alen)) != 0)
			goto out;
		if ((ret = spki_ec_point_unwrap(a, alen, 65, &pt)) != 0)
			goto out;
		ret = spki_from_ec_p256(pt, 65, spki_out, spki_len_out);
		break;
	case BS_ALG_ED25519:
		if ((ret = hsm_get_attr_alloc(s, pub, CKA_EC_POINT, HSM_ATTR_MAX, &a, &alen)) != 0)
			goto out;
		if ((ret = spki_ec_point_unwrap(a, alen, 32, &pt)) != 0)
			goto out;
		ret = spki_from_ed25519(pt, 32, spki_out, spki_len_out);
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		if ((ret = hsm_get_attr_alloc(s, pub, CKA_MODULUS, HSM_ATTR_MAX, &a, &alen)) != 0 ||
		    (ret = hsm_get_attr_alloc(s, pub, CKA_PUBLIC_EXPONENT, 16, &b, &blen)) != 0)
			goto out;
		ret = spki_from_rsa(a, alen, b, blen, spki_out, spki_len_out);
		break;
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		break;
	}
out:
	free(a);
	free(b);
	return ret;
}

/* Reads the four boolean protection attributes of a new private or secret key. */
int
hsm_check_key_flags(struct hsm_session *s, CK_OBJECT_HANDLE priv)
{
	CK_BBOOL always = CK_FALSE, never = CK_FALSE, sens = CK_FALSE, extr = CK_TRUE;
	CK_ATTRIBUTE a[] = {
		{ CKA_ALWAYS_SENSITIVE, &always, sizeof(always) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
	};
	CK_RV rv;

	rv = s->h->fl->C_GetAttributeValue(s->sh, priv, a, sizeof(a) / sizeof(a[0]));
	if (rv != CKR_OK)
		return hsm_fail_rv(s, rv);
	if (always != CK_TRUE || never != CK_TRUE || sens != CK_TRUE || extr != CK_FALSE)
		return hsm_fail_rv(s, CKR_TEMPLATE_INCONSISTENT);
	return 0;
}

int
hsm_generate_keypair(struct hsm_session *s, enum bs_alg alg, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, unsigned flags, hsm_handle *priv_out, uint8_t **spki_out,
    size_t *spki_len_out)
{
	CK_FUNCTION_LIST *fl;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = HSM_RSA_BITS;
	CK_BYTE ec_params[sizeof(oid_p256)], exponent[sizeof(rsa_e65537)];
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE, *found = NULL;
	CK_ATTRIBUTE pub_t[10], priv_t[12], id_t[1];
	CK_ULONG npub = 0, npriv = 0;
	size_t label_len, nfound = 0;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (s == NULL || id == NULL || label == NULL || priv_out == NULL || spki_out == NULL ||
	    spki_len_out == NULL)
		goto out;
	s->last_rv = CKR_OK;
	fl = s->h->fl;
	label_len = strnlen(label, HSM_LABEL_MAX + 1);
	if (label_len == 0 || label_len > HSM_LABEL_MAX)
		goto out;
	memcpy(idbuf, id, HSM_KEY_ID_LEN);

	/* Refuse to create a second object with the same CKA_ID (unless the caller knows). */
	if (!(flags & HSM_GEN_NEW_ID)) {
		id_t[0] = (CK_ATTRIBUTE){ CKA_ID, idbuf, HSM_KEY_ID_LEN };
		ret = hsm_find_objects(s, id_t, 1, HSM_FIND_BATCH, &found, &nfound);
		if (ret == BS_ERR_TOO_BIG || (ret == 0 && nfound != 0)) {
			ret = BS_ERR_EXISTS;
			goto out;
		}
		if (ret != 0)
			goto out;
	}

#define ADD(t, n, type, ptr, len) ((t)[(n)++] = (CK_ATTRIBUTE){ (type), (ptr), (len) })
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		memcpy(ec_params, oid_p256, sizeof(oid_p256));
		ADD(pub_t, npub, CKA_EC_PARAMS, ec_params, sizeof(oid_p256));
		break;
	case BS_ALG_ED25519:
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		memcpy(ec_params, oid_ed25519, sizeof(oid_ed25519));
		ADD(pub_t, npub, CKA_EC_PARAMS, ec_params, sizeof(oid_ed25519));
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		memcpy(exponent, rsa_e65537, sizeof(rsa_e65537));
		ADD(pub_t, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ADD(pub_t, npub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
		break;
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		goto out;
	}
	ADD(pub_t, npub, CKA_TOKEN, &yes, sizeof(yes));
	ADD(pub_t, npub, CKA_VERIFY, &yes, sizeof(yes));
	ADD(pub_t, npub, CKA_ENCRYPT, &no, sizeof(no));
	ADD(pub_t, npub, CKA_WRAP, &no, sizeof(no));
	ADD(pub_t, npub, CKA_DERIVE, &no, sizeof(no));
	ADD(pub_t, npub, CKA_ID, idbuf, HSM_KEY_ID_LEN);
	ADD(pub_t, npub, CKA_LABEL, (void *)(uintptr_t)label, label_len);

	ADD(priv_t, npriv, CKA_TOKEN, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_PRIVATE, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_SIGN, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_DECRYPT, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_UNWRAP, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_DERIVE, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_ID, idbuf, HSM_KEY_ID_LEN);
	ADD(priv_t, npriv, CKA_LABEL, (void *)(uintptr_t)label, label_len);
#undef ADD

	rv = fl->C_GenerateKeyPair(s->sh, &mech, pub_t, npub, priv_t, npriv, &pub, &priv);
	if (rv != CKR_OK) {
		pub = priv = CK_INVALID_HANDLE;
		ret = hsm_fail_rv(s, rv);
		goto out;
	}
	if ((ret = hsm_check_key_flags(s, priv)) != 0)
		goto out;
	if ((ret = read_spki(s, pub, alg, &spki, &spki_len)) != 0)
		goto out;

	*priv_out = priv;
	*spki_out = spki;
	*spki_len_out = spki_len;
	spki = NULL;
	pub = priv = CK_INVALID_HANDLE;  /* kept on the token */
	ret = 0;
out:
	if (priv != CK_INVALID_HANDLE)
		(void)hsm_destroy_object(s, priv);
	if (pub != CK_INVALID_HANDLE)
		(void)hsm_destroy_object(s, pub);
	free(found);
	free(spki);
	return ret;
}

/*
 * The one key object (a private key, or else a secret key: an envelope
 * key) matching attr: BS_ERR_NOT_FOUND if none, BS_ERR_EXISTS if several.
 */
static int
find_one_private_key(struct hsm_session *s, CK_ATTRIBUTE *attr, hsm_handle *out)
{
	static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_SECRET_KEY };
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE t[2];
	CK_OBJECT_HANDLE *v = NULL;
	size_t n = 0;
	int ret = BS_ERR_NOT_FOUND;

	s->last_rv = CKR_OK;
	for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]) && n == 0; c++) {
		cls = classes[c];
		t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
		t[1] = *attr;
		free(v);
		v = NULL;
		ret = hsm_find_objects(s, t, 2, 2, &v, &n);
		if (ret == BS_ERR_TOO_BIG)
			ret = BS_ERR_EXISTS;  /* more than one key matches */
		if (ret != 0)
			goto out;
	}
	if (n == 0) {
		ret = BS_ERR_NOT_FOUND;
		goto out;
	}
	if (n != 1) {
		ret = BS_ERR_EXISTS;
		goto out;
	}
	*out = v[0];
	ret = 0;
out:
	free(v);
	return ret;
}

int
hsm_find_private_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN], hsm_handle *out)
{
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE a;

	if (s == NULL || id == NULL || out == NULL)
		return BS_ERR_INVALID;
	memcpy(idbuf, id, sizeof(idbuf));
	a = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	return find_one_private_key(s, &a, out);
}

int
hsm_find_private_key_by_label(struct hsm_session *s, const char *label, hsm_handle *out,
    uint8_t id[HSM_KEY_ID_LEN])
{
	uint8_t *idv = NULL;
	size_t idlen = 0;
	hsm_handle h;
	CK_ATTRIBUTE a;
	int ret;

	if (s == NULL || label == NULL || out == NULL || id == NULL)
		return BS_ERR_INVALID;
	a = (CK_ATTRIBUTE){ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) };
	if ((ret = find_one_private_key(s, &a, &h)) != 0)
		return ret;
	if ((ret = hsm_get_attr_alloc(s, h, CKA_ID, HSM_ATTR_MAX, &idv, &idlen)) != 0)
		return ret;
	if (idlen != HSM_KEY_ID_LEN) {
		free(idv);
		return BS_ERR_HSM;   /* not one of ours */
	}
	memcpy(id, idv, HSM_KEY_ID_LEN);
	free(idv);
	*out = h;
	return 0;
}

/* Appends every object of class cls labelled label_prefix* with a 16-byte CKA_ID to *v. */
static int
list_class(struct hsm_session *s, CK_OBJECT_CLASS cls, const char *label_prefix,
    struct hsm_key_object **v, size_t *nv)
{
	CK_ATTRIBUTE t[1], a[2];
	CK_OBJECT_HANDLE *h = NULL;
	struct hsm_key_object *grown;
	size_t n = 0, plen = strlen(label_prefix);
	CK_RV rv;
	int ret;

	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if ((ret = hsm_find_objects(s, t, 1, HSM_LIST_MAX, &h, &n)) != 0)
		goto out;
	if (n > 0 && (grown = realloc(*v, (*nv + n) * sizeof(**v))) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	} else if (n > 0) {
		*v = grown;
	}
	for (size_t i = 0; i < n; i++) {
		struct hsm_key_object *o = &(*v)[*nv];

		memset(o, 0, sizeof(*o));
		a[0] = (CK_ATTRIBUTE){ CKA_LABEL, o->label, HSM_OBJ_LABEL_MAX };
		a[1] = (CK_ATTRIBUTE){ CKA_ID, o->id, HSM_KEY_ID_LEN };
		rv = s->h->fl->C_GetAttributeValue(s->sh, h[i], a, 2);
		if (rv == CKR_BUFFER_TOO_SMALL)
			continue;   /* a longer label or id: not one of ours */
		if (rv != CKR_OK) {
			ret = hsm_fail_rv(s, rv);
			goto out;
		}
		if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[0].ulValueLen < plen ||
		    memcmp(o->label, label_prefix, plen) != 0 || a[1].ulValueLen != HSM_KEY_ID_LEN)
			continue;
		o->label[a[0].ulValueLen] = '\0';
		o->handle = h[i];
		o->secret = cls == CKO_SECRET_KEY;
		(*nv)++;
	}
	ret = 0;
out:
	free(h);
	return ret;
}

int
hsm_list_key_objects(struct hsm_session *s, const char *label_prefix,
    struct hsm_key_object **out, size_t *n_out)
{
	struct hsm_key_object *v = NULL;
	size_t n = 0;
	int ret;

	if (s == NULL || label_prefix == NULL || out == NULL || n_out == NULL)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	if ((ret = list_class(s, CKO_PRIVATE_KEY, label_prefix, &v, &n)) != 0 ||
	    (ret = list_class(s, CKO_SECRET_KEY, label_prefix, &v, &n)) != 0) {
		free(v);
		return ret;
	}
	if (n == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n_out = n;
	return 0;
}

int
hsm_destroy_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN])
{
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE t[1];
	CK_OBJECT_HANDLE *v = NULL;
	size_t n = 0, i, ndestroyed = 0;
	CK_RV rv;
	int ret;

	if (s == NULL || id == NULL)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	memcpy(idbuf, id, sizeof(idbuf));
	t[0] = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	if ((ret = hsm_find_objects(s, t, 1, 64, &v, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		CK_OBJECT_CLASS cls = 0;
		CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof(cls) };

		rv = s->h->fl->C_GetAttributeValue(s->sh, v[i], &a, 1);
		if (rv != CKR_OK) {
			ret = hsm_fail_rv(s, rv);
			goto out;
		}
		if (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY && cls != CKO_SECRET_KEY)
			continue;
		rv = hsm_destroy_object(s, v[i]);
		if (rv != CKR_OK) {
			ret = hsm_fail_rv(s, rv);
			goto out;
		}
		ndestroyed++;
	}
	ret = ndestroyed > 0 ? 0 : BS_ERR_NOT_FOUND;
out:
	free(v);
	return ret;
}
