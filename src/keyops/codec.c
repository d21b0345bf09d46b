/*
 * codec.c - the strict wire codec of key operations (format in keyops.h).
 * Encoders refuse what a decoder would refuse, so a message that leaves one
 * side is always accepted by the other; decoders read every field typed
 * and bounded and refuse trailing bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/bytebuf.h"
#include "keyops/keyops.h"

#define GUARD(x) do { if ((rc = (x)) != 0) goto out; } while (0)
#define ENSURE(c) do { if (!(c)) { rc = BS_ERR_INVALID; goto out; } } while (0)

int
keyops_name_valid(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (i >= KEYOPS_NAME_MAX || (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))))
			return 0;
	}
	return i > 0;
}

static int
alg_valid(unsigned a)
{
	return a == BS_ALG_ECDSA_P256_SHA256 || a == BS_ALG_ED25519 ||
	    a == BS_ALG_RSA_3072_PSS_SHA256 || a == BS_ALG_AES_256_GCM || a == BS_ALG_HMAC_SHA256;
}

/* The algorithm a request of type t may carry (GENERATE: any). */
static int
alg_fits(enum keyop_type t, unsigned a)
{
	if (!alg_valid(a))
		return 0;
	if (t == KEYOP_SIGN)
		return a != BS_ALG_AES_256_GCM;
	if (t == KEYOP_ENCRYPT || t == KEYOP_DECRYPT)
		return a == BS_ALG_AES_256_GCM;
	return 1;
}

static int
type_valid(unsigned t)
{
	return t >= KEYOP_SIGN && t <= KEYOP_DECRYPT;
}

static int
is_cipher(enum keyop_type t)
{
	return t == KEYOP_ENCRYPT || t == KEYOP_DECRYPT;
}

static int
has_key(enum keyop_type t)
{
	return t == KEYOP_SIGN || t == KEYOP_GENERATE || t == KEYOP_DESTROY || is_cipher(t);
}

/* A request with an algorithm byte. */
static int
has_alg(enum keyop_type t)
{
	return t == KEYOP_SIGN || t == KEYOP_GENERATE || is_cipher(t);
}

/* A request that names the key's objects by CKA_ID. */
static int
has_id(enum keyop_type t)
{
	return t == KEYOP_SIGN || t == KEYOP_DESTROY || is_cipher(t);
}

/* The rules of one ENCRYPT/DECRYPT item, on both sides of the wire. */
static int
item_valid(enum keyop_type t, const struct keyop_item *it)
{
	if (it->aad_len > KEYOPS_CIPHER_MAX || it->len > KEYOPS_CIPHER_MAX)
		return 0;
	if (it->generate != 0 && it->generate != 1)
		return 0;
	if (t == KEYOP_DECRYPT)
		return !it->generate && it->len >= KEYOPS_TAG_LEN;
	/* ENCRYPT: a plaintext of its own, or one drawn by the key side */
	return it->generate ? it->len == 0 : it->len > 0;
}

/* ---- requests ---------------------------------------------------------------- */

int
keyops_request_encode(const struct keyop_request *r, uint8_t **out, size_t *outlen)
{
	struct bytebuf b = BYTEBUF_INIT;
	size_t nlen;

	if (!type_valid(r->type))
		return BS_ERR_INVALID;
	if (has_key(r->type) && (!keyops_name_valid(r->key.name) || r->key.version == 0))
		return BS_ERR_INVALID;
	if (has_alg(r->type) && !alg_fits(r->type, r->alg))
		return BS_ERR_INVALID;
	if (is_cipher(r->type)) {
		if (r->nitems == 0 || r->nitems > KEYOPS_SIGN_MAX)
			return BS_ERR_INVALID;
		for (size_t i = 0; i < r->nitems; i++)
			if (!item_valid(r->type, &r->items[i]))
				return BS_ERR_INVALID;
	}
	if (r->type == KEYOP_SIGN) {
		if (r->ninputs == 0 || r->ninputs > KEYOPS_SIGN_MAX)
			return BS_ERR_INVALID;
		for (size_t i = 0; i < r->ninputs; i++)
			if (r->inputs[i].len > KEYOPS_INPUT_MAX || (r->inputs[i].is_digest != 0 &&
			    r->inputs[i].is_digest != 1))
				return BS_ERR_INVALID;
	}
	bytebuf_put_u8(&b, KEYOPS_WIRE_VERSION);
	bytebuf_put_u8(&b, (uint8_t)r->type);
	if (has_key(r->type)) {
		nlen = strlen(r->key.name);
		bytebuf_put_u8(&b, (uint8_t)nlen);
		bytebuf_put(&b, r->key.name, nlen);
		bytebuf_put_u32(&b, r->key.version);
	}
	if (has_alg(r->type))
		bytebuf_put_u8(&b, (uint8_t)r->alg);
	if (has_id(r->type))
		bytebuf_put(&b, r->id, KEYOPS_ID_LEN);
	if (is_cipher(r->type)) {
		bytebuf_put_u32(&b, (uint32_t)r->nitems);
		for (size_t i = 0; i < r->nitems; i++) {
			const struct keyop_item *it = &r->items[i];

			bytebuf_put_u8(&b, (uint8_t)it->generate);
			bytebuf_put(&b, it->nonce, KEYOPS_NONCE_LEN);
			bytebuf_put_u32(&b, (uint32_t)it->aad_len);
			bytebuf_put(&b, it->aad, it->aad_len);
			bytebuf_put_u32(&b, (uint32_t)it->len);
			bytebuf_put(&b, it->data, it->len);
		}
	}
	if (r->type == KEYOP_SIGN) {
		bytebuf_put_u32(&b, (uint32_t)r->ninputs);
		for (size_t i = 0; i < r->ninputs; i++) {
			bytebuf_put_u8(&b, (uint8_t)r->inputs[i].is_digest);
			bytebuf_put_u32(&b, (uint32_t)r->inputs[i].len);
			bytebuf_put(&b, r->inputs[i].data, r->inputs[i].len);
		}
	}
	if (bytebuf_error(&b) != 0) {
		int rc = bytebuf_error(&b);

		bytebuf_free(&b);
		return rc;
	}
	*out = bytebuf_steal(&b, outlen);
	return 0;
}

void
keyop_request_clear(struct keyop_request *r)
{
	free(r->inputs);
	free(r->items);
	memset(r, 0, sizeof(*r));
}

/* Reads str name + u32 version into k. */
static int
read_key(struct byteread *rd, struct keyop_key *k)
{
	const uint8_t *p;
	uint8_t n;
	int rc;

	GUARD(byteread_u8(rd, &n));
	ENSURE(n >= 1 && n <= KEYOPS_NAME_MAX);
	GUARD(byteread_bytes(rd, n, &p));
	ENSURE(memchr(p, '\0', n) == NULL);
	memcpy(k->name, p, n);
	k->name[n] = '\0';
	ENSURE(keyops_name_valid(k->name));
	GUARD(byteread_u32(rd, &k->version));
	ENSURE(k->version >= 1);
out:
	return rc;
}

static int
read_alg(struct byteread *rd, enum keyop_type t, enum bs_alg *alg)
{
	uint8_t a;
	int rc;

	GUARD(byteread_u8(rd, &a));
	ENSURE(alg_fits(t, a));
	*alg = (enum bs_alg)a;
out:
	return rc;
}

/* Reads "u8 version, u8 type" and checks both. */
static int
read_head(struct byteread *rd, enum keyop_type *type)
{
	uint8_t v, t;
	int rc;

	GUARD(byteread_u8(rd, &v));
	ENSURE(v == KEYOPS_WIRE_VERSION);
	GUARD(byteread_u8(rd, &t));
	ENSURE(type_valid(t));
	*type = (enum keyop_type)t;
out:
	return rc;
}

/* The u32 n and n ENCRYPT/DECRYPT items of r. */
static int
read_items(struct byteread *rd, struct keyop_request *r)
{
	const uint8_t *p;
	uint32_t n, l;
	uint8_t gen;
	int rc;

	GUARD(byteread_u32(rd, &n));
	ENSURE(n >= 1 && n <= KEYOPS_SIGN_MAX);
	/* each item needs at least 1 + 12 + 4 + 4 bytes: refuse before allocating */
	ENSURE((size_t)n * 21 <= rd->len - rd->off);
	if ((r->items = calloc(n, sizeof(*r->items))) == NULL)
		return BS_ERR_NOMEM;
	for (r->nitems = 0; r->nitems < n; r->nitems++) {
		struct keyop_item *it = &r->items[r->nitems];

		GUARD(byteread_u8(rd, &gen));
		ENSURE(gen <= 1);
		it->generate = gen;
		GUARD(byteread_bytes(rd, KEYOPS_NONCE_LEN, &p));
		memcpy(it->nonce, p, KEYOPS_NONCE_LEN);
		GUARD(byteread_u32(rd, &l));
		ENSURE(l <= KEYOPS_CIPHER_MAX);
		GUARD(byteread_bytes(rd, l, &it->aad));
		it->aad_len = l;
		GUARD(byteread_u32(rd, &l));
		ENSURE(l <= KEYOPS_CIPHER_MAX);
		GUARD(byteread_bytes(rd, l, &it->data));
		it->len = l;
		ENSURE(item_valid(r->type, it));
	}
out:
	return rc;
}

int
keyops_request_decode(const uint8_t *buf, size_t len, struct keyop_request *r)
{
	struct byteread rd;
	const uint8_t *p;
	uint32_t n, ilen;
	uint8_t dig;
	int rc;

	memset(r, 0, sizeof(*r));
	byteread_init(&rd, buf, len);
	GUARD(read_head(&rd, &r->type));
	if (has_key(r->type))
		GUARD(read_key(&rd, &r->key));
	if (has_alg(r->type))
		GUARD(read_alg(&rd, r->type, &r->alg));
	if (has_id(r->type)) {
		GUARD(byteread_bytes(&rd, KEYOPS_ID_LEN, &p));
		memcpy(r->id, p, KEYOPS_ID_LEN);
	}
	if (r->type == KEYOP_SIGN) {
		GUARD(byteread_u32(&rd, &n));
		ENSURE(n >= 1 && n <= KEYOPS_SIGN_MAX);
		/* each input needs at least its 5-byte head: refuse before allocating */
		ENSURE((size_t)n * 5 <= len - rd.off);
		if ((r->inputs = calloc(n, sizeof(*r->inputs))) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		for (r->ninputs = 0; r->ninputs < n; r->ninputs++) {
			GUARD(byteread_u8(&rd, &dig));
			ENSURE(dig <= 1);
			r->inputs[r->ninputs].is_digest = dig;
			GUARD(byteread_u32(&rd, &ilen));
			ENSURE(ilen <= KEYOPS_INPUT_MAX);
			GUARD(byteread_bytes(&rd, ilen, &r->inputs[r->ninputs].data));
			r->inputs[r->ninputs].len = ilen;
		}
	}
	if (is_cipher(r->type))
		GUARD(read_items(&rd, r));
	GUARD(byteread_end(&rd));
out:
	if (rc != 0)
		keyop_request_clear(r);
	return rc;
}

/* ---- answers ----------------------------------------------------------------- */

/* The i32 rc of the wire: 0 or a negative BS_ERR_* in range. */
static int
rc_valid(int32_t v)
{
	return v <= 0 && v >= BS_ERR_SIG_INVALID;
}

int
keyops_answer_encode(const struct keyop_answer *a, uint8_t **out, size_t *outlen)
{
	struct bytebuf b = BYTEBUF_INIT;
	int rc;

	if (!type_valid(a->type) || !rc_valid(a->rc))
		return BS_ERR_INVALID;
	if (a->rc == 0 && a->type == KEYOP_SIGN) {
		if (a->nsigs == 0 || a->nsigs > KEYOPS_SIGN_MAX)
			return BS_ERR_INVALID;
		for (size_t i = 0; i < a->nsigs; i++)
			if (!rc_valid(a->sigs[i].rc) || a->sigs[i].sig_len > KEYOPS_SIG_MAX ||
			    (a->sigs[i].rc == 0 && a->sigs[i].sig_len == 0))
				return BS_ERR_INVALID;
	}
	if (a->rc == 0 && a->type == KEYOP_GENERATE && a->spki_len > KEYOPS_SPKI_MAX)
		return BS_ERR_INVALID;
	if (a->rc == 0 && is_cipher(a->type)) {
		if (a->nciphers == 0 || a->nciphers > KEYOPS_SIGN_MAX)
			return BS_ERR_INVALID;
		for (size_t i = 0; i < a->nciphers; i++) {
			const struct keyop_cipher *c = &a->ciphers[i];

			if (!rc_valid(c->rc) || c->len > KEYOPS_CIPHER_MAX + KEYOPS_TAG_LEN ||
			    c->key_len > 255 || (c->rc != 0 && (c->len != 0 || c->key_len != 0)) ||
			    (a->type == KEYOP_DECRYPT && c->key_len != 0))
				return BS_ERR_INVALID;
		}
	}
	bytebuf_put_u8(&b, KEYOPS_WIRE_VERSION);
	bytebuf_put_u8(&b, (uint8_t)a->type);
	bytebuf_put_u32(&b, (uint32_t)a->rc);
	if (a->rc == 0) {
		switch (a->type) {
		case KEYOP_SIGN:
			bytebuf_put_u32(&b, (uint32_t)a->nsigs);
			for (size_t i = 0; i < a->nsigs; i++) {
				const struct keyop_sig *s = &a->sigs[i];
				size_t sl = s->rc == 0 ? s->sig_len : 0;

				bytebuf_put_u32(&b, (uint32_t)s->rc);
				bytebuf_put_u16(&b, (uint16_t)sl);
				bytebuf_put(&b, s->sig, sl);
				bytebuf_put(&b, s->payload_sha256, 32);
			}
			break;
		case KEYOP_GENERATE:
			bytebuf_put(&b, a->id, KEYOPS_ID_LEN);
			bytebuf_put_u16(&b, (uint16_t)a->spki_len);
			bytebuf_put(&b, a->spki, a->spki_len);
			break;
		case KEYOP_PROBE:
			bytebuf_put_u8(&b, a->alive ? 1 : 0);
			break;
		case KEYOP_ENCRYPT:
		case KEYOP_DECRYPT:
			bytebuf_put_u32(&b, (uint32_t)a->nciphers);
			for (size_t i = 0; i < a->nciphers; i++) {
				const struct keyop_cipher *c = &a->ciphers[i];

				bytebuf_put_u32(&b, (uint32_t)c->rc);
				bytebuf_put_u32(&b, (uint32_t)c->len);
				bytebuf_put(&b, c->data, c->len);
				bytebuf_put_u8(&b, (uint8_t)c->key_len);
				bytebuf_put(&b, c->key, c->key_len);
			}
			break;
		case KEYOP_DESTROY:
		default:
			break;
		}
	}
	if ((rc = bytebuf_error(&b)) != 0) {
		bytebuf_free(&b);
		return rc;
	}
	*out = bytebuf_steal(&b, outlen);
	return 0;
}

void
keyop_answer_clear(struct keyop_answer *a)
{
	if (a->sigs != NULL)
		OPENSSL_clear_free(a->sigs, a->nsigs * sizeof(*a->sigs));
	free(a->spki);
	for (size_t i = 0; a->ciphers != NULL && i < a->nciphers; i++) {
		OPENSSL_clear_free(a->ciphers[i].data, a->ciphers[i].len);
		OPENSSL_clear_free(a->ciphers[i].key, a->ciphers[i].key_len);
	}
	free(a->ciphers);
	memset(a, 0, sizeof(*a));
}

static int read_rc(struct byteread *rd, int *out);

/* A malloc'd copy of n bytes at p (at least one byte allocated), or NULL. */
static uint8_t *
dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n > 0 ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

/* The u32 n and n ENCRYPT/DECRYPT results of a. */
static int
read_ciphers(struct byteread *rd, struct keyop_answer *a)
{
	const uint8_t *p;
	uint32_t n, l;
	uint8_t kl;
	int rc;

	GUARD(byteread_u32(rd, &n));
	ENSURE(n >= 1 && n <= KEYOPS_SIGN_MAX);
	ENSURE((size_t)n * 9 <= rd->len - rd->off);   /* 4 + 4 + 1 bytes at least each */
	if ((a->ciphers = calloc(n, sizeof(*a->ciphers))) == NULL)
		return BS_ERR_NOMEM;
	/* all n counted at once: on an error, keyop_answer_clear frees the one half read too */
	a->nciphers = n;
	for (uint32_t i = 0; i < n; i++) {
		struct keyop_cipher *c = &a->ciphers[i];

		GUARD(read_rc(rd, &c->rc));
		GUARD(byteread_u32(rd, &l));
		ENSURE(l <= KEYOPS_CIPHER_MAX + KEYOPS_TAG_LEN && (c->rc == 0 || l == 0));
		GUARD(byteread_bytes(rd, l, &p));
		if (l > 0) {
			if ((c->data = dup_bytes(p, l)) == NULL)
				return BS_ERR_NOMEM;
			c->len = l;
		}
		GUARD(byteread_u8(rd, &kl));
		ENSURE((c->rc == 0 || kl == 0) && (a->type == KEYOP_ENCRYPT || kl == 0));
		GUARD(byteread_bytes(rd, kl, &p));
		if (kl > 0) {
			if ((c->key = dup_bytes(p, kl)) == NULL)
				return BS_ERR_NOMEM;
			c->key_len = kl;
		}
	}
out:
	return rc;
}

static int
read_rc(struct byteread *rd, int *out)
{
	uint32_t v;
	int rc;

	GUARD(byteread_u32(rd, &v));
	ENSURE(rc_valid((int32_t)v));
	*out = (int32_t)v;
out:
	return rc;
}

int
keyops_answer_decode(const uint8_t *buf, size_t len, struct keyop_answer *a)
{
	struct byteread rd;
	const uint8_t *p;
	uint32_t n;
	uint16_t l;
	uint8_t alive;
	int rc;

	memset(a, 0, sizeof(*a));
	byteread_init(&rd, buf, len);
	GUARD(read_head(&rd, &a->type));
	GUARD(read_rc(&rd, &a->rc));
	if (a->rc == 0) {
		switch (a->type) {
		case KEYOP_SIGN:
			GUARD(byteread_u32(&rd, &n));
			ENSURE(n >= 1 && n <= KEYOPS_SIGN_MAX);
			ENSURE((size_t)n * 38 <= len - rd.off);   /* 4 + 2 + 32 bytes at least each */
			if ((a->sigs = calloc(n, sizeof(*a->sigs))) == NULL) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			for (a->nsigs = 0; a->nsigs < n; a->nsigs++) {
				struct keyop_sig *s = &a->sigs[a->nsigs];

				GUARD(read_rc(&rd, &s->rc));
				GUARD(byteread_u16(&rd, &l));
				/* a signature exactly when its rc is 0 */
				ENSURE(l <= KEYOPS_SIG_MAX && (s->rc == 0) == (l > 0));
				GUARD(byteread_bytes(&rd, l, &p));
				memcpy(s->sig, p, l);
				s->sig_len = l;
				GUARD(byteread_bytes(&rd, 32, &p));
				memcpy(s->payload_sha256, p, 32);
			}
			break;
		case KEYOP_GENERATE:
			GUARD(byteread_bytes(&rd, KEYOPS_ID_LEN, &p));
			memcpy(a->id, p, KEYOPS_ID_LEN);
			GUARD(byteread_u16(&rd, &l));
			ENSURE(l <= KEYOPS_SPKI_MAX);    /* 0: a secret key */
			GUARD(byteread_bytes(&rd, l, &p));
			if (l > 0) {
				if ((a->spki = malloc(l)) == NULL) {
					rc = BS_ERR_NOMEM;
					goto out;
				}
				memcpy(a->spki, p, l);
				a->spki_len = l;
			}
			break;
		case KEYOP_ENCRYPT:
		case KEYOP_DECRYPT:
			GUARD(read_ciphers(&rd, a));
			break;
		case KEYOP_PROBE:
			GUARD(byteread_u8(&rd, &alive));
			ENSURE(alive <= 1);
			a->alive = alive;
			break;
		case KEYOP_DESTROY:
		default:
			break;
		}
	}
	GUARD(byteread_end(&rd));
out:
	if (rc != 0)
		keyop_answer_clear(a);
	return rc;
}
