/*
 * catalog.c - the key catalog: key and key version rows kept through the
 * store (store/store.h, namespace "keys") and mirrored in a sorted
 * in-memory array that the event loop reads without locks.
 *
 * Durability: every catalog_db_add_version() is one store transaction, and
 * a store commit returns only once it is durable, so a version that was
 * reported durable survives a crash or power loss.
 *
 * Threads: catalog_db_* may run on worker threads; they only use the store,
 * which serialises its transactions itself. Everything else (the in-memory
 * array) belongs to the event loop thread. Object handles are the key
 * side's (keyd/), not the catalog's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "keys/catalog.h"
#include "keys/catalog_int.h"
#include "store/store.h"

_Static_assert(HSM_KEY_ID_LEN == STORE_KEY_ID_LEN, "hsm_id sizes differ");
_Static_assert(CATALOG_NAME_MAX == STORE_KEY_NAME_MAX, "key name sizes differ");


static int
name_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int
catalog_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || !name_char_ok(name[0]))
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= CATALOG_NAME_MAX)
			return 0;
		if (!name_char_ok(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return 0;
	}
	return 1;
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
key_free_versions(struct catalog_key *k)
{
	size_t i;

	for (i = 0; i < k->nversions; i++)
		free(k->versions[i].spki);
	free(k->versions);
	k->versions = NULL;
	k->nversions = 0;
}

static void
keys_free(struct catalog_key *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		key_free_versions(&keys[i]);
	free(keys);
}

/* Index of the first key whose name is >= name. */
static size_t
lower_bound(const struct catalog *c, const char *name)
{
	size_t lo = 0, hi = c->nkeys, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(c->keys[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct catalog_key *
catalog_find_mut(const struct catalog *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	i = lower_bound(c, name);
	if (i < c->nkeys && strcmp(c->keys[i].name, name) == 0)
		return &c->keys[i];
	return NULL;
}

static int
grow_keys(struct catalog *c)
{
	struct catalog_key *nk;
	size_t ncap;

	if (c->nkeys < c->cap)
		return 0;
	ncap = c->cap == 0 ? 16 : c->cap * 2;
	if (ncap > SIZE_MAX / sizeof(*nk))
		return BS_ERR_NOMEM;
	nk = realloc(c->keys, ncap * sizeof(*nk));
	if (nk == NULL)
		return BS_ERR_NOMEM;
	c->keys = nk;
	c->cap = ncap;
	return 0;
}

/* State of a load from the store; err is set for BS_ERR_IO. */
struct load {
	struct catalog *c;
	const char *where;
	char *err;
	size_t errlen;
};

static int
load_key(void *arg, const struct store_key *sk)
{
	struct load *l = arg;
	struct catalog *c = l->c;
	struct catalog_key *k;
	int rc;

	if (!catalog_name_valid(sk->name)) {
		set_err(l->err, l->errlen, "catalog %s: invalid key name in database", l->where);
		return BS_ERR_IO;
	}
	if (c->nkeys > 0 && strcmp(c->keys[c->nkeys - 1].name, sk->name) >= 0) {
		set_err(l->err, l->errlen, "catalog %s: keys out of order in database", l->where);
		return BS_ERR_IO;
	}
	if ((rc = grow_keys(c)) != 0)
		return rc;
	k = &c->keys[c->nkeys];
	memset(k, 0, sizeof(*k));
	memcpy(k->name, sk->name, strlen(sk->name) + 1);
	k->purpose = sk->purpose;
	k->alg = sk->alg;
	k->state = sk->state;
	k->created = sk->created;
	c->nkeys++;
	return 0;
}

static int
load_version(void *arg, const char *name, const struct store_key_version *sv)
{
	struct load *l = arg;
	struct catalog_key *k = catalog_find_mut(l->c, name);
	struct catalog_version *nv, *v;

	if (k == NULL) {
		set_err(l->err, l->errlen, "catalog %s: key version without a key", l->where);
		return BS_ERR_IO;
	}
	if (k->nversions > 0 && k->versions[k->nversions - 1].version >= sv->version) {
		set_err(l->err, l->errlen, "catalog %s: key '%s': bad version number", l->where,
		    k->name);
		return BS_ERR_IO;
	}
	nv = realloc(k->versions, (k->nversions + 1) * sizeof(*nv));
	if (nv == NULL)
		return BS_ERR_NOMEM;
	k->versions = nv;
	v = &nv[k->nversions];
	memset(v, 0, sizeof(*v));
	if ((v->spki = malloc(sv->spki_len > 0 ? sv->spki_len : 1)) == NULL)
		return BS_ERR_NOMEM;
	if (sv->spki_len > 0)
		memcpy(v->spki, sv->spki, sv->spki_len);
	v->spki_len = sv->spki_len;
	v->version = sv->version;
	v->state = sv->state;
	v->created = sv->created;
	memcpy(v->hsm_id, sv->hsm_id, HSM_KEY_ID_LEN);
	k->nversions++;
	return 0;
}

#define MIN_DECRYPT_PREFIX "min-decrypt/"

/* The store counter that holds key name's minimum decryption version. */
static void
min_decrypt_counter(const char *name, char out[sizeof(MIN_DECRYPT_PREFIX) + CATALOG_NAME_MAX])
{
	snprintf(out, sizeof(MIN_DECRYPT_PREFIX) + CATALOG_NAME_MAX, "%s%s", MIN_DECRYPT_PREFIX,
	    name);
}

/* Reads every key's minimum decryption version (a counter exists only once raised). */
static int
load_min_decrypt(struct catalog *c, struct store_txn *tx)
{
	char cname[sizeof(MIN_DECRYPT_PREFIX) + CATALOG_NAME_MAX];
	uint64_t v;
	int rc;

	for (size_t i = 0; i < c->nkeys; i++) {
		if (c->keys[i].purpose != BS_PURPOSE_ENVELOPE)
			continue;
		min_decrypt_counter(c->keys[i].name, cname);
		rc = store_counter_get(tx, STORE_NS_KEYS, cname, &v);
		if (rc == BS_ERR_NOT_FOUND)
			continue;
		if (rc != 0)
			return rc;
		if (v > UINT32_MAX)
			return BS_ERR_IO;
		c->keys[i].min_decrypt = (uint32_t)v;
	}
	return 0;
}

int
catalog_db_raise_min_decrypt(struct catalog *c, const char *name, uint32_t v)
{
	char cname[sizeof(MIN_DECRYPT_PREFIX) + CATALOG_NAME_MAX];
	struct store_txn *tx = NULL;
	uint32_t latest = 0;
	uint64_t cur = 0;
	int rc, absent;

	if (c == NULL || !catalog_name_valid(name) || v == 0)
		return BS_ERR_INVALID;
	min_decrypt_counter(name, cname);
	if ((rc = store_begin(c->st, &tx)) != 0)
		return rc;
	if ((rc = store_key_version_latest(tx, STORE_NS_KEYS, name, &latest)) != 0)
		goto fail;
	if (v > latest) {
		rc = BS_ERR_INVALID;
		goto fail;
	}
	rc = store_counter_get(tx, STORE_NS_KEYS, cname, &cur);
	absent = rc == BS_ERR_NOT_FOUND;
	if (rc != 0 && !absent)
		goto fail;
	if (!absent && v < cur) {
		rc = BS_ERR_PRECONDITION;
		goto fail;
	}
	if (!absent && v == cur) {
		store_rollback(tx);
		return 0;
	}
	if ((rc = store_counter_cas(tx, STORE_NS_KEYS, cname,
	    absent ? STORE_COUNTER_ABSENT : cur, v)) != 0)
		goto fail;
	return store_commit(tx);
fail:
	store_rollback(tx);
	return rc;
}

void
catalog_mem_set_min_decrypt(struct catalog *c, const char *name, uint32_t v)
{
	struct catalog_key *k = catalog_find_mut(c, name);

	if (k != NULL && v > k->min_decrypt)
		k->min_decrypt = v;
}

/* Loads every key and version of the store into a new catalog over st. */
static int
load_catalog(struct store *st, const char *where, struct catalog **out, char *err,
    size_t errlen)
{
	struct catalog *c = NULL;
	struct store_txn *tx = NULL;
	struct load l;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return BS_ERR_NOMEM;
	c->st = st;
	l.c = c;
	l.where = where;
	l.err = err;
	l.errlen = errlen;
	if ((rc = store_begin(st, &tx)) != 0)
		goto out;
	if ((rc = store_key_foreach(tx, STORE_NS_KEYS, load_key, &l)) == 0)
		rc = store_key_version_foreach(tx, STORE_NS_KEYS, load_version, &l);
	if (rc == 0)
		rc = load_min_decrypt(c, tx);
	if (rc == 0)
		rc = catalog_load_states(c, tx, where, err, errlen);
	store_rollback(tx);
out:
	if (rc == BS_ERR_IO && err != NULL && errlen > 0 && err[0] == '\0')
		set_err(err, errlen, "catalog %s: cannot read the key rows", where);
	if (rc != 0) {
		catalog_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
catalog_open(const char *path, struct catalog **out, char *err, size_t errlen)
{
	struct store *st = NULL;
	struct catalog *c = NULL;
	int rc;

	if (path == NULL || out == NULL) {
		set_err(err, errlen, "catalog: no path");
		return BS_ERR_INVALID;
	}
	if ((rc = store_open(path, &st, err, errlen)) != 0)
		return rc;
	if ((rc = load_catalog(st, path, &c, err, errlen)) != 0) {
		store_close(st);
		return rc;
	}
	c->own_st = 1;
	*out = c;
	return 0;
}

int
catalog_open_store(struct store *st, struct catalog **out, char *err, size_t errlen)
{
	if (st == NULL || out == NULL) {
		set_err(err, errlen, "catalog: no store");
		return BS_ERR_INVALID;
	}
	return load_catalog(st, "store", out, err, errlen);
}

void
catalog_close(struct catalog *c)
{
	if (c == NULL)
		return;
	if (c->own_st)
		store_close(c->st);
	keys_free(c->keys, c->nkeys);
	free(c);
}

const struct catalog_key *
catalog_find(const struct catalog *c, const char *name)
{
	return catalog_find_mut(c, name);
}

const struct catalog_version *
catalog_key_primary(const struct catalog_key *k)
{
	size_t i;

	if (k == NULL)
		return NULL;
	for (i = k->nversions; i > 0; i--) {
		if (k->versions[i - 1].state == BS_KEY_ENABLED)
			return &k->versions[i - 1];
	}
	return NULL;
}

const struct catalog_version *
catalog_key_version(const struct catalog_key *k, uint32_t v)
{
	size_t lo = 0, hi, mid;

	if (k == NULL)
		return NULL;
	hi = k->nversions;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (k->versions[mid].version == v)
			return &k->versions[mid];
		if (k->versions[mid].version < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t
catalog_count(const struct catalog *c)
{
	return c != NULL ? c->nkeys : 0;
}

const struct catalog_key *
catalog_at(const struct catalog *c, size_t i)
{
	if (c == NULL || i >= c->nkeys)
		return NULL;
	return &c->keys[i];
}

size_t
catalog_index_after(const struct catalog *c, const char *after)
{
	size_t lo = 0, hi, mid;

	if (c == NULL)
		return 0;
	hi = c->nkeys;
	if (after == NULL || after[0] == '\0')
		return 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(c->keys[mid].name, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
check_args(const struct catalog *c, const struct catalog_key *k, const struct catalog_version *v)
{
	if (c == NULL || k == NULL || v == NULL)
		return BS_ERR_INVALID;
	if (memchr(k->name, '\0', sizeof(k->name)) == NULL || !catalog_name_valid(k->name))
		return BS_ERR_INVALID;
	if (v->version < 1 || v->spki_len > INT32_MAX || (v->spki == NULL && v->spki_len > 0))
		return BS_ERR_INVALID;
	/* a key pair has its public key; a secret key has none */
	if ((v->spki_len == 0) != (bs_alg_is_symmetric(k->alg) != 0))
		return BS_ERR_INVALID;
	return 0;
}

int
catalog_db_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v)
{
	struct store_txn *tx = NULL;
	struct store_key sk;
	struct store_key_version sv;
	uint32_t latest;
	int rc;

	if ((rc = check_args(c, k, v)) != 0)
		return rc;
	memset(&sk, 0, sizeof(sk));
	memcpy(sk.name, k->name, strlen(k->name) + 1);
	sk.purpose = k->purpose;
	sk.alg = k->alg;
	sk.state = k->state;
	sk.created = k->created;
	memset(&sv, 0, sizeof(sv));
	sv.version = v->version;
	sv.state = v->state;
	sv.created = v->created;
	memcpy(sv.hsm_id, v->hsm_id, HSM_KEY_ID_LEN);
	sv.spki = v->spki;
	sv.spki_len = v->spki_len;

	if ((rc = store_begin(c->st, &tx)) != 0)
		return rc;
	/* A new key brings its row; a rotation needs the key at exactly v - 1. */
	if (v->version == 1)
		rc = store_key_insert(tx, STORE_NS_KEYS, &sk);
	else if ((rc = store_key_version_latest(tx, STORE_NS_KEYS, k->name, &latest)) == 0 &&
	    latest != v->version - 1)
		rc = BS_ERR_PRECONDITION;
	if (rc == 0) {
		rc = store_key_version_insert(tx, STORE_NS_KEYS, k->name, &sv);
		/* The number is free (checked above): a clash is a reused CKA_ID, a bug. */
		if (rc == BS_ERR_EXISTS || rc == BS_ERR_NOT_FOUND)
			rc = BS_ERR_INTERNAL;
	}
	if (rc != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx);
}

int
catalog_mem_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v)
{
	struct catalog_key *key;
	struct catalog_version *nv;
	uint8_t *spki = NULL;
	size_t ki, vi;
	int rc;

	if ((rc = check_args(c, k, v)) != 0)
		return rc;
	key = catalog_find_mut(c, k->name);
	if (key != NULL && catalog_key_version(key, v->version) != NULL)
		return BS_ERR_EXISTS;

	/* Every allocation happens before anything visible changes. */
	if ((spki = malloc(v->spki_len > 0 ? v->spki_len : 1)) == NULL)
		return BS_ERR_NOMEM;
	if (v->spki_len > 0)
		memcpy(spki, v->spki, v->spki_len);
	if (key == NULL) {
		if ((rc = grow_keys(c)) != 0)
			goto out;
		if ((nv = malloc(sizeof(*nv))) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		ki = lower_bound(c, k->name);
		memmove(&c->keys[ki + 1], &c->keys[ki], (c->nkeys - ki) * sizeof(c->keys[0]));
		key = &c->keys[ki];
		memset(key, 0, sizeof(*key));
		memcpy(key->name, k->name, strlen(k->name) + 1);
		key->purpose = k->purpose;
		key->alg = k->alg;
		key->state = k->state;
		key->created = k->created;
		key->versions = nv;
		c->nkeys++;
	} else {
		if (key->nversions >= SIZE_MAX / sizeof(*nv) - 1) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		nv = realloc(key->versions, (key->nversions + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		key->versions = nv;
	}
	/* Keep versions ascending even if they arrive out of order. */
	for (vi = key->nversions; vi > 0 && key->versions[vi - 1].version > v->version; vi--)
		;
	memmove(&key->versions[vi + 1], &key->versions[vi],
	    (key->nversions - vi) * sizeof(key->versions[0]));
	key->versions[vi] = *v;
	key->versions[vi].spki = spki;
	key->nversions++;
	spki = NULL;
	rc = 0;
out:
	free(spki);
	return rc;
}
