/*
 * registry.c - the vehicle registry's records in the store (see
 * registry.h): validation of ids, attribute names and identity keys, the
 * current and history rows, immutable fields, and the scan behind a
 * paginated listing.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "common/strhash.h"
#include "services/vehicles/registry.h"

static const char *const status_names[] = { NULL, "active", "suspended", "decommissioned" };

int
vehicle_id_valid(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > VEHICLE_ID_MAX || !isalnum((unsigned char)id[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && strchr("._-", id[i]) == NULL)
			return 0;
	return 1;
}

int
vehicle_attr_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	/* "status" is reserved: the policy sees the vehicle's status as vehicle.status */
	if (n == 0 || n > VEHICLE_ATTR_NAME_MAX || !islower((unsigned char)name[0]) ||
	    strcmp(name, "status") == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
		    strchr("_.-", name[i]) == NULL)
			return 0;
	return 1;
}

const char *
vehicle_status_name(int status)
{
	return status >= VEHICLE_ACTIVE && status <= VEHICLE_DECOMMISSIONED ?
	    status_names[status] : NULL;
}

int
vehicle_status_of(const json_t *rec)
{
	const char *s = json_string_value(json_object_get(rec, "status"));

	for (int i = VEHICLE_ACTIVE; s != NULL && i <= VEHICLE_DECOMMISSIONED; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return 0;
}

int
vehicle_identity_new(const uint8_t *spki, size_t len, const char *cert_sha256,
    int64_t not_before, int64_t not_after, json_t **out, char *err, size_t errlen)
{
	const uint8_t *p = spki;
	EVP_PKEY *pk = NULL;
	uint8_t h[32], tmp[32];
	char kid[65], *b64 = NULL;
	int type, ok, canonical = 0;

	*out = NULL;
	if (len == 0 || len > 512 || (pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL ||
	    p != spki + len) {
		EVP_PKEY_free(pk);
		snprintf(err, errlen, "public_key: not a DER SubjectPublicKeyInfo");
		return BS_ERR_INVALID;
	}
	type = EVP_PKEY_get_base_id(pk);
	ok = type == EVP_PKEY_ED25519 || (type == EVP_PKEY_EC && EVP_PKEY_get_bits(pk) == 256 &&
	    EVP_PKEY_is_a(pk, "EC"));
	if (ok && type == EVP_PKEY_EC) {
		char group[32];
		size_t glen = 0;

		ok = EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen) == 1 &&
		    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) &&
		    EVP_PKEY_set_utf8_string_param(pk, "point-format", "uncompressed") == 1;
	}
	/*
	 * One key, one key_id: only the canonical encoding (named curve,
	 * uncompressed point) is taken, so the same key cannot be added twice
	 * under two encodings, and one revoked while the other stays.
	 */
	if (ok) {
		uint8_t *der = NULL;
		int dn = i2d_PUBKEY(pk, &der);

		canonical = dn > 0 && (size_t)dn == len && memcmp(der, spki, len) == 0;
		OPENSSL_free(der);
	}
	EVP_PKEY_free(pk);
	if (ok && !canonical) {
		snprintf(err, errlen, "public_key: use the standard encoding (named curve, "
		    "uncompressed point)");
		return BS_ERR_INVALID;
	}
	if (!ok) {
		snprintf(err, errlen, "public_key: an ECDSA P-256 or Ed25519 key is needed");
		return BS_ERR_INVALID;
	}
	if (cert_sha256 == NULL)
		cert_sha256 = "";
	if (cert_sha256[0] != '\0' && (strlen(cert_sha256) != 64 ||
	    bs_hex_decode(cert_sha256, 64, tmp, sizeof(tmp), 0) != 0)) {
		snprintf(err, errlen, "cert_sha256: 64 hex digits, or empty");
		return BS_ERR_INVALID;
	}
	if (not_before < 0 || not_after < 0 || (not_after != 0 && not_after <= not_before)) {
		snprintf(err, errlen, "validity: 0 <= not_before < not_after (0 = unbounded)");
		return BS_ERR_INVALID;
	}
	SHA256(spki, len, h);
	bs_hex_encode(h, sizeof(h), kid);
	if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return BS_ERR_NOMEM;
	EVP_EncodeBlock((unsigned char *)b64, spki, (int)len);
	*out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "public_key", b64, "key_id", kid,
	    "cert_sha256", cert_sha256, "not_before", (json_int_t)not_before, "not_after",
	    (json_int_t)not_after, "revoked_at", (json_int_t)0, "revoked_reason", "");
	free(b64);
	return *out != NULL ? 0 : BS_ERR_NOMEM;
}

int
vehicle_note_certificate(json_t *rec, const uint8_t *spki, size_t len, const char *cert_sha256,
    int64_t not_before, int64_t not_after, int64_t now, char *why, size_t whylen)
{
	json_t *ids = json_object_get(rec, "identities"), *nid = NULL, *id;
	size_t i;
	int rc;

	if (!json_is_array(ids)) {
		snprintf(why, whylen, "the vehicle's record has no identities");
		return BS_ERR_INVALID;
	}
	if ((rc = vehicle_identity_new(spki, len, cert_sha256, not_before, not_after, &nid, why,
	    whylen)) != 0)
		return rc;
	/* the key known already: its entry now names the newest certificate */
	json_array_foreach(ids, i, id) {
		if (!json_equal(json_object_get(id, "key_id"), json_object_get(nid, "key_id")))
			continue;
		json_decref(nid);
		if (json_integer_value(json_object_get(id, "revoked_at")) != 0) {
			snprintf(why, whylen, "the identity key %.16s... of this vehicle is revoked",
			    json_string_value(json_object_get(id, "key_id")));
			return BS_ERR_PRECONDITION;
		}
		return json_object_set_new(id, "cert_sha256", json_string(cert_sha256)) != 0 ||
		    json_object_set_new(id, "not_before", json_integer(not_before)) != 0 ||
		    json_object_set_new(id, "not_after", json_integer(not_after)) != 0 ?
		    BS_ERR_NOMEM : 0;
	}
	/* room: certificates' identities that have expired go (the first identity stays) */
	for (i = json_array_size(ids); i-- > 1;) {
		int64_t na;

		id = json_array_get(ids, i);
		na = json_integer_value(json_object_get(id, "not_after"));
		if (json_string_length(json_object_get(id, "cert_sha256")) > 0 && na != 0 && na <= now)
			(void)json_array_remove(ids, i);
	}
	if (json_array_size(ids) >= VEHICLE_IDENTITIES_MAX) {
		json_decref(nid);
		snprintf(why, whylen, "the vehicle has %d identities in force, the most it may have",
		    VEHICLE_IDENTITIES_MAX);
		return BS_ERR_PRECONDITION;
	}
	return json_array_append_new(ids, nid) != 0 ? BS_ERR_NOMEM : 0;
}

int
vehicle_note_revocation(json_t *rec, const char *cert_sha256, const char *key_id, int64_t now,
    const char *reason)
{
	json_t *id;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(rec, "identities"), i, id) {
		const char *cs = json_string_value(json_object_get(id, "cert_sha256"));
		const char *kid = json_string_value(json_object_get(id, "key_id"));

		if (json_integer_value(json_object_get(id, "revoked_at")) != 0 ||
		    !((cs != NULL && strcmp(cs, cert_sha256) == 0) ||
		    (key_id != NULL && kid != NULL && strcmp(kid, key_id) == 0)))
			continue;
		if (json_object_set_new(id, "revoked_at", json_integer(now)) != 0 ||
		    json_object_set_new(id, "revoked_reason", json_string(reason)) != 0)
			return BS_ERR_NOMEM;
		n++;
	}
	return n;
}

static void
current_id(const char *id, char out[STORE_ID_MAX + 1])
{
	snprintf(out, STORE_ID_MAX + 1, "v/%s", id);
}

static void
history_id(const char *id, uint64_t version, char out[STORE_ID_MAX + 1])
{
	snprintf(out, STORE_ID_MAX + 1, "h/%s/%020" PRIu64, id, version);
}

/* A record as stored: an object with the fields vehicle_write sets. */
static int
record_parse(const uint8_t *data, size_t len, json_t **rec)
{
	json_error_t e;

	*rec = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &e);
	if (*rec == NULL || !json_is_object(*rec) ||
	    !json_is_string(json_object_get(*rec, "id")) ||
	    !json_is_object(json_object_get(*rec, "attributes")) ||
	    !json_is_array(json_object_get(*rec, "identities")) || vehicle_status_of(*rec) == 0) {
		json_decref(*rec);
		*rec = NULL;
		return BS_ERR_INVALID;
	}
	return 0;
}

/* Generations by a hash of the vehicle id: a change to one vehicle disturbs few others. */
#define GEN_SHARDS 1024
static _Atomic uint64_t registry_generation[GEN_SHARDS];

static size_t
gen_shard(const char *id)
{
	return (size_t)(bs_strhash(id) % GEN_SHARDS);
}

uint64_t
vehicle_registry_generation(const char *id)
{
	return atomic_load(&registry_generation[gen_shard(id)]);
}

void
vehicle_registry_changed(const char *id)
{
	atomic_fetch_add(&registry_generation[gen_shard(id)], 1);
}

int
vehicle_row_version(struct store_txn *tx, const char *id, uint64_t *row_version)
{
	char row[STORE_ID_MAX + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0;
	int rc;

	current_id(id, row);
	if ((rc = store_row_get(tx, VEHICLE_NS, row, &data, &len, &v)) != 0)
		return rc;
	free(data);
	*row_version = v;
	return 0;
}

int
vehicle_read(struct store_txn *tx, const char *id, uint64_t version, json_t **rec,
    uint64_t *row_version)
{
	char row[STORE_ID_MAX + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0, hv;
	int rc;

	*rec = NULL;
	current_id(id, row);
	if ((rc = store_row_get(tx, VEHICLE_NS, row, &data, &len, &v)) != 0)
		return rc;
	*row_version = v;
	if (version == 0 || version == v) {
		rc = record_parse(data, len, rec);
		free(data);
		return rc;
	}
	free(data);
	if (version > v)
		return BS_ERR_NOT_FOUND;
	history_id(id, version, row);
	if ((rc = store_row_get(tx, VEHICLE_NS, row, &data, &len, &hv)) != 0)
		return rc;
	rc = record_parse(data, len, rec);
	free(data);
	return rc;
}

/* 1 if a and b have the same value at key (both absent counts as the same). */
static int
same_member(const json_t *a, const json_t *b, const char *key)
{
	const json_t *x = json_object_get(a, key), *y = json_object_get(b, key);

	return (x == NULL && y == NULL) || json_equal(x, y);
}

int
vehicle_write(struct store_txn *tx, const json_t *prev, json_t *rec, uint64_t row_version,
    int64_t now)
{
	char row[STORE_ID_MAX + 1], *text;
	const char *id = json_string_value(json_object_get(rec, "id"));
	const json_t *p0, *r0;
	uint64_t v = row_version + 1, nv = 0;
	int rc;

	if (id == NULL || !vehicle_id_valid(id))
		return BS_ERR_INVALID;
	if (prev != NULL) {
		p0 = json_array_get(json_object_get(prev, "identities"), 0);
		r0 = json_array_get(json_object_get(rec, "identities"), 0);
		if (!same_member(prev, rec, "id") || !same_member(prev, rec, "provisioned_at") ||
		    !same_member(p0, r0, "public_key") || !same_member(p0, r0, "key_id"))
			return BS_ERR_INVALID;
	}
	if (json_object_set_new(rec, "version", json_integer((json_int_t)v)) != 0 ||
	    json_object_set_new(rec, "updated_at", json_integer((json_int_t)now)) != 0 ||
	    (text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return BS_ERR_NOMEM;
	current_id(id, row);
	rc = store_row_put(tx, VEHICLE_NS, row, row_version, (const uint8_t *)text, strlen(text),
	    &nv);
	if (rc == 0 && nv != v)
		rc = BS_ERR_INVALID;    /* the row's version and the record's must agree */
	history_id(id, v, row);
	if (rc == 0)
		rc = store_row_put(tx, VEHICLE_NS, row, 0, (const uint8_t *)text, strlen(text), NULL);
	free(text);
	return rc;
}

struct scan {
	vehicle_cb cb;
	void *arg;
	char *last;
	int stopped;
};

static int
scan_row(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct scan *s = arg;
	json_t *rec = NULL;
	int rc;

	(void)version;
	snprintf(s->last, VEHICLE_ID_MAX + 1, "%s", id + 2);
	if ((rc = record_parse(data, len, &rec)) != 0)
		return rc;
	rc = s->cb(s->arg, rec);
	json_decref(rec);
	if (rc == 1)
		s->stopped = 1;
	return rc;
}

int
vehicle_scan(struct store_txn *tx, const char *after, size_t scan_max, vehicle_cb cb,
    void *arg, char last[VEHICLE_ID_MAX + 1])
{
	struct scan s = { cb, arg, last, 0 };
	char from[STORE_ID_MAX + 1];
	int rc;

	last[0] = '\0';
	from[0] = '\0';
	if (after != NULL && after[0] != '\0')
		current_id(after, from);
	if (scan_max < 1 || scan_max > STORE_LIST_MAX)
		return BS_ERR_INVALID;
	rc = store_row_foreach(tx, VEHICLE_NS, "v/", from, scan_max, scan_row, &s);
	return rc == 1 && s.stopped ? 0 : rc;
}
