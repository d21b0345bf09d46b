/*
 * jwe.c - JWE compact serialization with ECDH-ES+A256KW and A256GCM to a
 * P-256 public key (RFC 7516, RFC 7518 sections 4.4, 4.6 and 5.3), and the
 * Concat KDF of NIST SP 800-56A under it (see jwe.h for the exact header).
 *
 * The steps of RFC 7516 section 5.1 in order: an ephemeral P-256 key and
 * ECDH with the recipient's key give Z; the Concat KDF turns Z into the
 * 256-bit key-encryption key (RFC 7518 section 4.6.2, AlgorithmID "alg");
 * a random content-encryption key is wrapped under it with AES Key Wrap;
 * the protected header (with the ephemeral key as "epk") is encoded, and
 * its base64url text is the additional data of AES-256-GCM over the
 * plaintext with a random 96-bit IV. Every secret (Z, KEK, CEK, the
 * ephemeral private key) lives only inside jwe_encrypt_ecdh_es_a256kw and
 * is wiped on every path out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "formats/jose.h"
#include "formats/jwe.h"

#define COORD_LEN 32                  /* a P-256 coordinate, left-padded */
#define HEADER_MAX 1024               /* the fixed members, epk, kid and cty fit */

static void
put_u32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
jwe_concat_kdf(const uint8_t *z, size_t z_len, const char *alg_id, const uint8_t *apu,
    size_t apu_len, const uint8_t *apv, size_t apv_len, size_t keydatalen, uint8_t *out)
{
	uint8_t info[4 + JWE_KDF_ALG_MAX + 4 + JWE_KDF_PARTY_MAX + 4 + JWE_KDF_PARTY_MAX + 4];
	OSSL_PARAM params[4];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	size_t alg_len, w = 0;
	int rc = BS_ERR_CRYPTO;

	if (z == NULL || z_len == 0 || z_len > JWE_KDF_Z_MAX || alg_id == NULL || out == NULL ||
	    (apu == NULL && apu_len != 0) || apu_len > JWE_KDF_PARTY_MAX ||
	    (apv == NULL && apv_len != 0) || apv_len > JWE_KDF_PARTY_MAX ||
	    keydatalen == 0 || keydatalen % 8 != 0 || keydatalen > JWE_KDF_MAX_BITS)
		return BS_ERR_INVALID;
	alg_len = strnlen(alg_id, JWE_KDF_ALG_MAX + 1);
	if (alg_len == 0 || alg_len > JWE_KDF_ALG_MAX)
		return BS_ERR_INVALID;

	/* OtherInfo, SP 800-56A 5.8.1.2.1 with RFC 7518 4.6.2's fields (all u32 BE lengths) */
	put_u32(info + w, alg_len);
	memcpy(info + w + 4, alg_id, alg_len);
	w += 4 + alg_len;
	put_u32(info + w, apu_len);
	if (apu_len > 0)
		memcpy(info + w + 4, apu, apu_len);
	w += 4 + apu_len;
	put_u32(info + w, apv_len);
	if (apv_len > 0)
		memcpy(info + w + 4, apv, apv_len);
	w += 4 + apv_len;
	put_u32(info + w, keydatalen);      /* SuppPubInfo: keydatalen in bits */
	w += 4;

	/*
	 * OpenSSL's "SSKDF" is the one-step KDF of SP 800-56C with a hash,
	 * H(counter || Z || FixedInfo) with a 32-bit big-endian counter from 1:
	 * the Concat KDF of SP 800-56A 5.8.1, FixedInfo being OtherInfo.
	 */
	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SSKDF, NULL)) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, z_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, w);
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, keydatalen / 8, params) != 1)
		goto out;
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);         /* frees its copy of Z wiped */
	EVP_KDF_free(kdf);
	return rc;
}

/* 1 if s is NULL or 1..JWE_PARAM_MAX of 0x20..0x7e without '"' and '\'. */
static int
param_ok(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return 1;
	n = strnlen(s, JWE_PARAM_MAX + 1);
	if (n == 0 || n > JWE_PARAM_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

/* The recipient key: exactly one DER SPKI of a valid P-256 point. 0 or BS_ERR_INVALID. */
static int
load_p256(const uint8_t *spki, size_t len, EVP_PKEY **out)
{
	const uint8_t *p = spki;
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	char group[64];
	size_t glen = 0;
	int rc = BS_ERR_INVALID;

	if (len == 0 || len > JWE_SPKI_MAX)
		return BS_ERR_INVALID;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len)
		goto out;
	if (!EVP_PKEY_is_a(pk, "EC") ||
	    EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) != 1 ||
	    OBJ_sn2nid(group) != NID_X9_62_prime256v1)
		goto out;
	/* on the curve, not the point at infinity, in the prime-order group */
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_public_check(ctx) != 1)
		goto out;
	*out = pk;
	pk = NULL;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

/*
 * RFC 7518 4.6: a fresh P-256 key pair, its public coordinates (32 bytes
 * each, left-padded) into x and y, and Z = ECDH(ephemeral, peer) into z.
 * The ephemeral private key is freed here (OpenSSL clears it on free).
 * 0 or BS_ERR_CRYPTO.
 */
static int
ecdh_ephemeral(EVP_PKEY *peer, uint8_t z[COORD_LEN], uint8_t x[COORD_LEN], uint8_t y[COORD_LEN])
{
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bx = NULL, *by = NULL;
	size_t zlen = COORD_LEN;
	int rc = BS_ERR_CRYPTO;

	if ((eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
	    EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1 ||
	    BN_bn2binpad(bx, x, COORD_LEN) != COORD_LEN || BN_bn2binpad(by, y, COORD_LEN) != COORD_LEN)
		goto out;
	/* ECDH's output is the x-coordinate of the shared point, field-size bytes */
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, z, &zlen) != 1 || zlen != COORD_LEN)
		goto out;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(eph);
	BN_free(bx);
	BN_free(by);
	return rc;
}

/* AES-256 Key Wrap (RFC 3394, default IV A6A6A6A6A6A6A6A6) of cek under kek. 0 or BS_ERR_CRYPTO. */
static int
aes256_kw(const uint8_t kek[JWE_CEK_LEN], const uint8_t cek[JWE_CEK_LEN],
    uint8_t out[JWE_WRAPPED_LEN])
{
	EVP_CIPHER_CTX *c = NULL;
	int n = 0, m = 0, rc = BS_ERR_CRYPTO;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_EncryptInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL) != 1 ||
	    EVP_EncryptUpdate(c, out, &n, cek, JWE_CEK_LEN) != 1 || n != JWE_WRAPPED_LEN ||
	    EVP_EncryptFinal_ex(c, out + n, &m) != 1 || m != 0)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);         /* clears the key schedule */
	return rc;
}

/* AES-256-GCM of pt (pt_len <= JWE_PLAINTEXT_MAX) with aad into ct and tag. 0 or BS_ERR_CRYPTO. */
static int
a256gcm_seal(const uint8_t key[JWE_CEK_LEN], const uint8_t iv[JWE_IV_LEN], const char *aad,
    size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct, uint8_t tag[JWE_TAG_LEN])
{
	EVP_CIPHER_CTX *c = NULL;
	int n = 0, m = 0, rc = BS_ERR_CRYPTO;

	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, JWE_IV_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)aad_len) != 1)
		goto out;
	n = 0;
	if (pt_len > 0 && (EVP_EncryptUpdate(c, ct, &n, pt, (int)pt_len) != 1 ||
	    (size_t)n != pt_len))
		goto out;
	if (EVP_EncryptFinal_ex(c, ct + n, &m) != 1 || m != 0 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, JWE_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* The protected header (see jwe.h) into hdr[HEADER_MAX]; returns its length, or 0. */
static size_t
header_json(const uint8_t x[COORD_LEN], const uint8_t y[COORD_LEN], const char *kid,
    const char *cty, char hdr[HEADER_MAX])
{
	char xs[JOSE_B64URL_LEN(COORD_LEN) + 1], ys[JOSE_B64URL_LEN(COORD_LEN) + 1];
	int n;

	if (jose_b64url(x, COORD_LEN, xs, sizeof(xs)) < 0 ||
	    jose_b64url(y, COORD_LEN, ys, sizeof(ys)) < 0)
		return 0;
	/* kid and cty passed param_ok: nothing in them needs escaping */
	n = snprintf(hdr, HEADER_MAX,
	    "{\"alg\":\"" JWE_ALG "\",\"enc\":\"" JWE_ENC "\",\"epk\":{\"kty\":\"EC\","
	    "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}%s%s%s%s%s%s}",
	    xs, ys, kid ? ",\"kid\":\"" : "", kid ? kid : "", kid ? "\"" : "",
	    cty ? ",\"cty\":\"" : "", cty ? cty : "", cty ? "\"" : "");
	return n > 0 && n < HEADER_MAX ? (size_t)n : 0;
}

/* Appends '.' (unless first) and the base64url of in[0..n) at *w in out[0..cap). */
static int
append_b64(char *out, size_t cap, size_t *w, int first, const uint8_t *in, size_t n)
{
	int k;

	if (!first) {
		if (*w + 1 >= cap)
			return BS_ERR_INTERNAL;
		out[(*w)++] = '.';
	}
	if ((k = jose_b64url(in, n, out + *w, cap - *w)) < 0)
		return BS_ERR_INTERNAL;
	*w += (size_t)k;
	return 0;
}

int
jwe_encrypt_ecdh_es_a256kw(const uint8_t *spki, size_t spki_len, const char *kid,
    const char *cty, const uint8_t *pt, size_t pt_len, char **out)
{
	EVP_PKEY *peer = NULL;
	uint8_t z[COORD_LEN], kek[JWE_CEK_LEN], cek[JWE_CEK_LEN];
	uint8_t x[COORD_LEN], y[COORD_LEN], wrapped[JWE_WRAPPED_LEN], iv[JWE_IV_LEN];
	uint8_t tag[JWE_TAG_LEN], *ct = NULL;
	char hdr[HEADER_MAX], *s = NULL;
	size_t hlen, h64, cap, w = 0;
	int rc;

	if (spki == NULL || out == NULL || (pt == NULL && pt_len != 0) || !param_ok(kid) ||
	    !param_ok(cty))
		return BS_ERR_INVALID;
	if (pt_len > JWE_PLAINTEXT_MAX)
		return BS_ERR_TOO_BIG;
	if ((rc = load_p256(spki, spki_len, &peer)) != 0)
		return rc;

	/* RFC 7518 4.6.2: Z -> KEK; 4.4: the CEK wrapped; 5.3: a 96-bit IV */
	if ((rc = ecdh_ephemeral(peer, z, x, y)) != 0 ||
	    (rc = jwe_concat_kdf(z, sizeof(z), JWE_ALG, NULL, 0, NULL, 0, 8 * JWE_CEK_LEN, kek)) != 0)
		goto out;
	rc = BS_ERR_CRYPTO;
	if (RAND_bytes(cek, sizeof(cek)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1)
		goto out;
	if ((rc = aes256_kw(kek, cek, wrapped)) != 0)
		goto out;

	rc = BS_ERR_INTERNAL;
	if ((hlen = header_json(x, y, kid, cty, hdr)) == 0)
		goto out;
	h64 = JOSE_B64URL_LEN(hlen);
	cap = h64 + 1 + JOSE_B64URL_LEN(JWE_WRAPPED_LEN) + 1 + JOSE_B64URL_LEN(JWE_IV_LEN) + 1 +
	    JOSE_B64URL_LEN(pt_len) + 1 + JOSE_B64URL_LEN(JWE_TAG_LEN) + 1;
	rc = BS_ERR_NOMEM;
	if ((s = malloc(cap)) == NULL || (ct = malloc(pt_len > 0 ? pt_len : 1)) == NULL)
		goto out;
	/* RFC 7516 5.1 step 14: the AAD is the ASCII of the encoded protected header */
	if ((rc = append_b64(s, cap, &w, 1, (const uint8_t *)hdr, hlen)) != 0)
		goto out;
	if ((rc = a256gcm_seal(cek, iv, s, h64, pt, pt_len, ct, tag)) != 0)
		goto out;
	if ((rc = append_b64(s, cap, &w, 0, wrapped, sizeof(wrapped))) != 0 ||
	    (rc = append_b64(s, cap, &w, 0, iv, sizeof(iv))) != 0 ||
	    (rc = append_b64(s, cap, &w, 0, ct, pt_len)) != 0 ||
	    (rc = append_b64(s, cap, &w, 0, tag, sizeof(tag))) != 0)
		goto out;
	*out = s;
	s = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(cek, sizeof(cek));
	EVP_PKEY_free(peer);
	free(ct);
	free(s);
	return rc;
}
