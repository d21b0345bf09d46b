/*
 * keyd.c - the key side (see keyd.h): handle cache, and the execution of
 * SIGN, GENERATE, DESTROY, PROBE, ENCRYPT and DECRYPT on a worker's PKCS#11
 * session.
 *
 * The cache is an index of the token: before the first operation the key
 * side lists every labelled key object once (hsm_list_key_objects) and from
 * then on keeps the cache in step with what it creates and destroys, so no
 * operation searches the token by label (SoftHSM reads every object per
 * search: at 10,000 keys one search costs as much as a thousand signatures).
 * If the listing fails the key side falls back to searching, as it would
 * without an index.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "hsm/hsm.h"
#include "keyd/keyd.h"

#define NBUCKETS 1024
#define LABEL_MAX (sizeof(KEYD_LABEL_PREFIX) + KEYOPS_NAME_MAX + 16)

struct entry {
	struct entry *next;
	char name[KEYOPS_NAME_MAX + 1];
	uint32_t version;
	hsm_handle handle;
	uint8_t id[HSM_KEY_ID_LEN];
	int dup;                         /* the listing found the label on several objects */
};

struct keyd {
	pthread_mutex_t gen_mu;          /* one GENERATE at a time: label check + create */
	pthread_mutex_t mu;              /* guards buckets and n */
	pthread_mutex_t index_mu;        /* one listing of the token */
	_Atomic int indexed;             /* 0 not yet, 1 the cache holds every labelled key, -1 failed */
	struct entry *buckets[NBUCKETS];
	size_t n;
};

int
keyd_new(struct keyd **out)
{
	struct keyd *kd = calloc(1, sizeof(*kd));

	if (kd == NULL)
		return BS_ERR_NOMEM;
	if (pthread_mutex_init(&kd->mu, NULL) != 0) {
		free(kd);
		return BS_ERR_INTERNAL;
	}
	if (pthread_mutex_init(&kd->gen_mu, NULL) != 0) {
		pthread_mutex_destroy(&kd->mu);
		free(kd);
		return BS_ERR_INTERNAL;
	}
	if (pthread_mutex_init(&kd->index_mu, NULL) != 0) {
		pthread_mutex_destroy(&kd->gen_mu);
		pthread_mutex_destroy(&kd->mu);
		free(kd);
		return BS_ERR_INTERNAL;
	}
	*out = kd;
	return 0;
}

void
keyd_free(struct keyd *kd)
{
	struct entry *e, *next;

	if (kd == NULL)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (e = kd->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&kd->index_mu);
	pthread_mutex_destroy(&kd->gen_mu);
	pthread_mutex_destroy(&kd->mu);
	free(kd);
}

size_t
keyd_cached(struct keyd *kd)
{
	size_t n;

	pthread_mutex_lock(&kd->mu);
	n = kd->n;
	pthread_mutex_unlock(&kd->mu);
	return n;
}

/* FNV-1a over the name and the version. */
static size_t
bucket(const struct keyop_key *k)
{
	uint32_t h = 2166136261u;

	for (const char *p = k->name; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(k->version >> (8 * i))) * 16777619u;
	return h % NBUCKETS;
}

/* kd->mu held. */
static struct entry **
slot(struct keyd *kd, const struct keyop_key *k)
{
	struct entry **pe = &kd->buckets[bucket(k)];

	for (; *pe != NULL; pe = &(*pe)->next)
		if ((*pe)->version == k->version && strcmp((*pe)->name, k->name) == 0)
			break;
	return pe;
}

static void
cache_put(struct keyd *kd, const struct keyop_key *k, hsm_handle h, const uint8_t id[HSM_KEY_ID_LEN])
{
	struct entry **pe, *e;

	pthread_mutex_lock(&kd->mu);
	pe = slot(kd, k);
	if (*pe == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		memcpy(e->name, k->name, sizeof(e->name));
		e->version = k->version;
		*pe = e;
		kd->n++;
	}
	if (*pe != NULL) {
		(*pe)->handle = h;
		memcpy((*pe)->id, id, HSM_KEY_ID_LEN);
	}
	pthread_mutex_unlock(&kd->mu);
}

/* Drops the cached handle of k if it is the object with CKA_ID id. */
static void
cache_drop(struct keyd *kd, const struct keyop_key *k, const uint8_t id[HSM_KEY_ID_LEN])
{
	struct entry **pe, *e;

	pthread_mutex_lock(&kd->mu);
	pe = slot(kd, k);
	if ((e = *pe) != NULL && memcmp(e->id, id, HSM_KEY_ID_LEN) == 0) {
		*pe = e->next;
		free(e);
		kd->n--;
	}
	pthread_mutex_unlock(&kd->mu);
}

static void
label_of(const struct keyop_key *k, char label[LABEL_MAX])
{
	snprintf(label, LABEL_MAX, "%s%s/v%u", KEYD_LABEL_PREFIX, k->name, k->version);
}

/* The key a label names ("boltseal/<name>/v<version>", as label_of writes it); -1 if none. */
static int
key_of_label(const char *label, struct keyop_key *k)
{
	const char *name = label + strlen(KEYD_LABEL_PREFIX), *v = strrchr(name, '/');
	size_t nlen;
	char *end;
	unsigned long ver;

	if (v == NULL || v[1] != 'v' || v[2] < '1' || v[2] > '9')
		return -1;
	nlen = (size_t)(v - name);
	errno = 0;
	ver = strtoul(v + 2, &end, 10);
	if (nlen == 0 || nlen > KEYOPS_NAME_MAX || *end != '\0' || errno != 0 || ver > UINT32_MAX)
		return -1;
	memset(k, 0, sizeof(*k));
	memcpy(k->name, name, nlen);
	k->version = (uint32_t)ver;
	return 0;
}

/*
 * Fills the cache from a listing of the token (kd->index_mu held). A label
 * on several objects is marked: its operations search, and fail, as
 * before. 0, or -1 out of memory (the index is then incomplete: search as
 * without one).
 */
static int
index_from(struct keyd *kd, const struct hsm_key_object *v, size_t n)
{
	struct keyop_key k;
	struct entry **pe;

	for (size_t i = 0; i < n; i++) {
		struct entry *e;

		if (key_of_label(v[i].label, &k) != 0)
			continue;
		pthread_mutex_lock(&kd->mu);
		pe = slot(kd, &k);
		if (*pe != NULL) {
			if ((*pe)->handle != v[i].handle)
				(*pe)->dup = 1;
		} else if ((e = calloc(1, sizeof(*e))) != NULL) {
			memcpy(e->name, k.name, sizeof(e->name));
			e->version = k.version;
			e->handle = v[i].handle;
			memcpy(e->id, v[i].id, HSM_KEY_ID_LEN);
			*pe = e;
			kd->n++;
		} else {
			pthread_mutex_unlock(&kd->mu);
			return -1;
		}
		pthread_mutex_unlock(&kd->mu);
	}
	return 0;
}

/*
 * The cache filled from one listing of the token, before the first
 * operation (every worker's first operation waits for it), unless
 * keyd_seed_index() gave it one.
 */
static void
ensure_index(struct keyd *kd, struct hsm_session *s)
{
	struct hsm_key_object *v = NULL;
	size_t n = 0;

	if (atomic_load(&kd->indexed) != 0)
		return;
	pthread_mutex_lock(&kd->index_mu);
	if (atomic_load(&kd->indexed) != 0) {
		pthread_mutex_unlock(&kd->index_mu);
		return;
	}
	if (hsm_list_key_objects(s, KEYD_LABEL_PREFIX, &v, &n) != 0) {
		atomic_store(&kd->indexed, -1);
		pthread_mutex_unlock(&kd->index_mu);
		return;
	}
	atomic_store(&kd->indexed, index_from(kd, v, n) == 0 ? 1 : -1);
	free(v);
	pthread_mutex_unlock(&kd->index_mu);
}

int
keyd_seed_index(struct keyd *kd, const struct hsm_key_object *v, size_t n)
{
	int rc = 0;

	if (kd == NULL || (v == NULL && n > 0))
		return BS_ERR_INVALID;
	pthread_mutex_lock(&kd->index_mu);
	if (atomic_load(&kd->indexed) == 0) {
		rc = index_from(kd, v, n) == 0 ? 0 : BS_ERR_NOMEM;
		atomic_store(&kd->indexed, rc == 0 ? 1 : -1);
	}
	pthread_mutex_unlock(&kd->index_mu);
	return rc;
}

/* 1 if some cached key has CKA_ID id (kd->mu held). */
static int
id_cached(struct keyd *kd, const uint8_t id[HSM_KEY_ID_LEN])
{
	for (size_t b = 0; b < NBUCKETS; b++)
		for (const struct entry *e = kd->buckets[b]; e != NULL; e = e->next)
			if (memcmp(e->id, id, HSM_KEY_ID_LEN) == 0)
				return 1;
	return 0;
}

/*
 * The private key object of k: from the cache, else (not indexed, or
 * search) by its label, then cached.
 */
static int
resolve(struct keyd *kd, struct hsm_session *s, const struct keyop_key *k, int search,
    hsm_handle *h, uint8_t id[HSM_KEY_ID_LEN])
{
	char label[LABEL_MAX];
	struct entry *e;
	int rc, dup = 0;

	pthread_mutex_lock(&kd->mu);
	if ((e = *slot(kd, k)) != NULL) {
		*h = e->handle;
		memcpy(id, e->id, HSM_KEY_ID_LEN);
		dup = e->dup;
	}
	pthread_mutex_unlock(&kd->mu);
	if (e != NULL && !dup)
		return 0;
	/* the index is the token: a key it lacks is not there */
	if (e == NULL && !search && atomic_load(&kd->indexed) == 1)
		return BS_ERR_NOT_FOUND;
	label_of(k, label);
	if ((rc = hsm_find_private_key_by_label(s, label, h, id)) != 0)
		return rc == BS_ERR_EXISTS ? BS_ERR_HSM : rc;   /* several: the token is broken */
	cache_put(kd, k, *h, id);
	return 0;
}

/*
 * One signature: the payload's SHA-256 (the digest as given for a digest
 * input), then C_Sign of the digest (ECDSA, RSA-PSS) or the message (Ed25519).
 */
static void
sign_one(struct hsm_session *s, hsm_handle h, enum bs_alg alg, const struct keyop_input *in,
    struct keyop_sig *out)
{
	const uint8_t *data = in->data;
	size_t len = in->len;
	int is_digest = in->is_digest;

	out->sig_len = sizeof(out->sig);
	if (is_digest && (alg == BS_ALG_ED25519 || alg == BS_ALG_HMAC_SHA256 ||
	    len != SHA256_DIGEST_LENGTH)) {
		out->rc = BS_ERR_INVALID;
		out->sig_len = 0;
		return;
	}
	if (is_digest)
		memcpy(out->payload_sha256, data, SHA256_DIGEST_LENGTH);
	else
		SHA256(data, len, out->payload_sha256);
	/* ECDSA and RSA-PSS sign the digest; Ed25519 and HMAC the message itself */
	if (alg != BS_ALG_ED25519 && alg != BS_ALG_HMAC_SHA256) {
		data = out->payload_sha256;
		len = SHA256_DIGEST_LENGTH;
	}
	out->rc = hsm_sign(s, h, alg, data, len, out->sig, &out->sig_len);
	if (out->rc != 0)
		out->sig_len = 0;
}

/* The object of the request's key version, checked against the CKA_ID it names. */
static int
resolve_checked(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    hsm_handle *h)
{
	uint8_t id[HSM_KEY_ID_LEN];
	int rc;

	if ((rc = resolve(kd, s, &r->key, 0, h, id)) != 0)
		return rc;
	if (memcmp(id, r->id, HSM_KEY_ID_LEN) != 0) {
		/* a stale cache entry (objects re-created), or a token that drifted: search */
		cache_drop(kd, &r->key, id);
		if ((rc = resolve(kd, s, &r->key, 1, h, id)) != 0)
			return rc;
		if (memcmp(id, r->id, HSM_KEY_ID_LEN) != 0)
			return BS_ERR_MISMATCH;
	}
	return 0;
}

static int
do_sign(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a)
{
	hsm_handle h;
	int rc;

	if ((rc = resolve_checked(kd, s, r, &h)) != 0)
		return rc;
	if ((a->sigs = calloc(r->ninputs, sizeof(*a->sigs))) == NULL)
		return BS_ERR_NOMEM;
	a->nsigs = r->ninputs;
	for (size_t i = 0; i < r->ninputs; i++)
		sign_one(s, h, r->alg, &r->inputs[i], &a->sigs[i]);
	return 0;
}

static int
do_generate(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a)
{
	char label[LABEL_MAX];
	uint8_t id[HSM_KEY_ID_LEN];
	hsm_handle h;
	unsigned flags = 0;
	int rc, indexed = atomic_load(&kd->indexed) == 1;

	label_of(&r->key, label);
	/* two workers must not both find the label free and both create it */
	pthread_mutex_lock(&kd->gen_mu);
	if (indexed) {
		/* the index knows every label and id of the token: no search */
		pthread_mutex_lock(&kd->mu);
		rc = *slot(kd, &r->key) != NULL ? 0 : BS_ERR_NOT_FOUND;
		pthread_mutex_unlock(&kd->mu);
	} else {
		rc = hsm_find_private_key_by_label(s, label, &h, id);
	}
	if (rc != BS_ERR_NOT_FOUND) {
		/* taken (once or several times), or the token failed: never a second object */
		rc = rc == 0 ? BS_ERR_EXISTS : rc;
		goto out;
	}
	if (RAND_bytes(a->id, HSM_KEY_ID_LEN) != 1) {
		rc = BS_ERR_CRYPTO;
		goto out;
	}
	if (indexed) {
		pthread_mutex_lock(&kd->mu);
		rc = id_cached(kd, a->id);
		pthread_mutex_unlock(&kd->mu);
		if (rc != 0) {   /* 2^-128: refuse rather than search */
			rc = BS_ERR_EXISTS;
			goto out;
		}
		flags = HSM_GEN_NEW_ID;
	}
	if (bs_alg_is_symmetric(r->alg))
		rc = hsm_generate_secret(s, r->alg, a->id, label, flags, &h);
	else
		rc = hsm_generate_keypair(s, r->alg, a->id, label, flags, &h, &a->spki,
		    &a->spki_len);
	if (rc == 0)
		cache_put(kd, &r->key, h, a->id);
out:
	pthread_mutex_unlock(&kd->gen_mu);
	return rc;
}

/* One ENCRYPT item: the plaintext (drawn from the token if asked) sealed under h. */
static void
encrypt_one(struct hsm_session *s, hsm_handle h, const struct keyop_item *it,
    struct keyop_cipher *out)
{
	uint8_t dk[KEYOPS_DATAKEY_LEN];
	const uint8_t *pt = it->data;
	size_t len = it->len;

	if (it->generate) {
		if ((out->rc = hsm_random(s, dk, sizeof(dk))) != 0)
			goto out;
		pt = dk;
		len = sizeof(dk);
		if ((out->key = malloc(sizeof(dk))) == NULL) {
			out->rc = BS_ERR_NOMEM;
			goto out;
		}
		memcpy(out->key, dk, sizeof(dk));
		out->key_len = sizeof(dk);
	}
	if ((out->data = malloc(len + KEYOPS_TAG_LEN)) == NULL) {
		out->rc = BS_ERR_NOMEM;
		goto out;
	}
	out->len = len + KEYOPS_TAG_LEN;
	out->rc = hsm_aes_gcm_encrypt(s, h, it->nonce, it->aad, it->aad_len, pt, len, out->data);
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	if (out->rc != 0) {
		OPENSSL_clear_free(out->key, out->key_len);
		free(out->data);
		out->key = out->data = NULL;
		out->key_len = out->len = 0;
	}
}

/* One DECRYPT item: the plaintext of ct || tag under h, or BS_ERR_SIG_INVALID. */
static void
decrypt_one(struct hsm_session *s, hsm_handle h, const struct keyop_item *it,
    struct keyop_cipher *out)
{
	size_t len = it->len - KEYOPS_TAG_LEN;

	if ((out->data = malloc(len > 0 ? len : 1)) == NULL) {
		out->rc = BS_ERR_NOMEM;
		return;
	}
	out->rc = hsm_aes_gcm_decrypt(s, h, it->nonce, it->aad, it->aad_len, it->data, it->len,
	    out->data);
	if (out->rc != 0) {
		OPENSSL_clear_free(out->data, len > 0 ? len : 1);
		out->data = NULL;
		return;
	}
	out->len = len;
}

static int
do_cipher(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a)
{
	hsm_handle h;
	int rc;

	if ((rc = resolve_checked(kd, s, r, &h)) != 0)
		return rc;
	if ((a->ciphers = calloc(r->nitems, sizeof(*a->ciphers))) == NULL)
		return BS_ERR_NOMEM;
	a->nciphers = r->nitems;
	for (size_t i = 0; i < r->nitems; i++) {
		if (r->type == KEYOP_ENCRYPT)
			encrypt_one(s, h, &r->items[i], &a->ciphers[i]);
		else
			decrypt_one(s, h, &r->items[i], &a->ciphers[i]);
	}
	return 0;
}

/* The objects with the request's CKA_ID (only those: never another generation's). */
static int
do_destroy(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r)
{
	hsm_handle h;

	if (hsm_find_private_key(s, r->id, &h) != 0)
		return BS_ERR_NOT_FOUND;
	cache_drop(kd, &r->key, r->id);
	return hsm_destroy_key(s, r->id);
}

void
keyd_execute(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->type = r->type;
	ensure_index(kd, s);
	switch (r->type) {
	case KEYOP_SIGN:
		a->rc = do_sign(kd, s, r, a);
		break;
	case KEYOP_GENERATE:
		a->rc = do_generate(kd, s, r, a);
		break;
	case KEYOP_DESTROY:
		a->rc = do_destroy(kd, s, r);
		break;
	case KEYOP_PROBE:
		a->alive = hsm_session_alive(s);
		a->rc = 0;
		break;
	case KEYOP_ENCRYPT:
	case KEYOP_DECRYPT:
		a->rc = do_cipher(kd, s, r, a);
		break;
	default:
		a->rc = BS_ERR_INVALID;
		break;
	}
	if (a->rc != 0) {
		int rc = a->rc;

		/* an error answer carries nothing else */
		keyop_answer_clear(a);
		a->type = r->type;
		a->rc = rc;
	}
}

int
keyd_serve(struct keyd *kd, struct hsm_session *s, const uint8_t *req, size_t len,
    uint8_t **ans, size_t *anslen)
{
	struct keyop_request r;
	struct keyop_answer a;
	int rc;

	if ((rc = keyops_request_decode(req, len, &r)) != 0)
		return rc;
	keyd_execute(kd, s, &r, &a);
	rc = keyops_answer_encode(&a, ans, anslen);
	keyop_answer_clear(&a);
	keyop_request_clear(&r);
	return rc;
}
