/*
 * test_vehicle_registry.c - unit tests for src/services/vehicles/registry.c
 * on a real SQLite store in a temporary directory: ids and attribute names;
 * identity keys (P-256 and Ed25519 accepted with their key id, RSA, P-384
 * and garbage refused, thumbprint and validity checked); a record written,
 * changed (the next version, compare-and-set) and read back at every
 * version; the immutable fields refused by vehicle_write; a scan in pages;
 * certificates noted on identities (the same key's entry updated, expired
 * entries dropped for room, never the first, a revoked key refused, the cap)
 * and revocations (by thumbprint, or every entry of a compromised key).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "services/vehicles/registry.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bs-veh-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[256];
	static const char *const files[] = { "state.db", "state.db-wal", "state.db-shm" };

	store_close(f->st);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A fresh key's DER SPKI (type "EC" with group, "ED25519", "RSA"); *len bytes, malloc'd. */
static uint8_t *
new_spki(const char *type, const char *group, size_t *len)
{
	EVP_PKEY *pk = group != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, type, group) :
	    strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, type);
	uint8_t *der = NULL;
	int n;

	assert_non_null(pk);
	n = i2d_PUBKEY(pk, &der);
	assert_true(n > 0);
	EVP_PKEY_free(pk);
	*len = (size_t)n;
	return der;
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(vehicle_id_valid("truck-001"));
	assert_true(vehicle_id_valid("T.1_a"));
	assert_false(vehicle_id_valid(""));
	assert_false(vehicle_id_valid("-truck"));
	assert_false(vehicle_id_valid("truck 1"));
	assert_false(vehicle_id_valid("truck/1"));
	assert_true(vehicle_attr_name_valid("carrier_id"));
	assert_true(vehicle_attr_name_valid("x.y-z9"));
	assert_false(vehicle_attr_name_valid("Carrier"));
	assert_false(vehicle_attr_name_valid("9lives"));
	assert_false(vehicle_attr_name_valid(""));
	assert_false(vehicle_attr_name_valid("status"));   /* reserved: vehicle.status */
	assert_string_equal(vehicle_status_name(VEHICLE_SUSPENDED), "suspended");
	assert_null(vehicle_status_name(0));
	assert_null(vehicle_status_name(4));
}

static void
test_identities(void **state)
{
	char err[160];
	json_t *id = NULL;
	uint8_t *k;
	size_t n;

	(void)state;
	k = new_spki("EC", "P-256", &n);
	assert_int_equal(vehicle_identity_new(k, n, "", 0, 0, &id, err, sizeof(err)), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(id, "key_id"))), 64);
	json_decref(id);
	/* thumbprint and validity */
	assert_int_equal(vehicle_identity_new(k, n, "zz", 0, 0, &id, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_non_null(strstr(err, "cert_sha256"));
	assert_int_equal(vehicle_identity_new(k, n, "", 10, 10, &id, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_non_null(strstr(err, "validity"));
	/* trailing bytes after the SPKI */
	assert_int_equal(vehicle_identity_new(k, n - 1, "", 0, 0, &id, err, sizeof(err)),
	    BS_ERR_INVALID);
	OPENSSL_free(k);
	k = new_spki("ED25519", NULL, &n);
	assert_int_equal(vehicle_identity_new(k, n, "", 0, 0, &id, err, sizeof(err)), 0);
	json_decref(id);
	OPENSSL_free(k);
	/* the same P-256 key with a compressed point: refused (one key, one key_id) */
	{
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		uint8_t *der = NULL;
		int dn;

		assert_non_null(pk);
		assert_int_equal(EVP_PKEY_set_utf8_string_param(pk, "point-format", "compressed"), 1);
		dn = i2d_PUBKEY(pk, &der);
		assert_true(dn > 0 && dn < 91);
		assert_int_equal(vehicle_identity_new(der, (size_t)dn, "", 0, 0, &id, err,
		    sizeof(err)), BS_ERR_INVALID);
		assert_non_null(strstr(err, "standard encoding"));
		OPENSSL_free(der);
		EVP_PKEY_free(pk);
	}
	k = new_spki("EC", "P-384", &n);
	assert_int_equal(vehicle_identity_new(k, n, "", 0, 0, &id, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_non_null(strstr(err, "P-256 or Ed25519"));
	OPENSSL_free(k);
	k = new_spki("RSA", NULL, &n);
	assert_int_equal(vehicle_identity_new(k, n, "", 0, 0, &id, err, sizeof(err)),
	    BS_ERR_INVALID);
	OPENSSL_free(k);
	assert_int_equal(vehicle_identity_new((const uint8_t *)"junk", 4, "", 0, 0, &id, err,
	    sizeof(err)), BS_ERR_INVALID);
	assert_null(id);
}

/* A registered record for id (identity a fresh P-256 key). */
static json_t *
new_record(const char *id)
{
	char err[160];
	json_t *ident = NULL;
	uint8_t *k;
	size_t n;

	k = new_spki("EC", "P-256", &n);
	assert_int_equal(vehicle_identity_new(k, n, "", 0, 0, &ident, err, sizeof(err)), 0);
	OPENSSL_free(k);
	return json_pack("{s:s, s:{s:s}, s:[o], s:s, s:s, s:I}", "id", id, "attributes",
	    "carrier_id", "acme", "identities", ident, "status", "active", "status_reason", "",
	    "provisioned_at", (json_int_t)1700000000);
}

static void
test_versions_and_immutables(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = NULL;
	json_t *rec = new_record("truck-1"), *got = NULL, *prev;
	uint64_t rowv = 0;

	assert_int_equal(store_begin(f->st, &tx), 0);
	assert_int_equal(vehicle_write(tx, NULL, rec, 0, 1700000001), 0);
	assert_int_equal(vehicle_write(tx, NULL, rec, 0, 1700000001), BS_ERR_EXISTS);
	store_rollback(tx);
	assert_int_equal(store_begin(f->st, &tx), 0);
	assert_int_equal(vehicle_write(tx, NULL, rec, 0, 1700000001), 0);
	assert_int_equal(store_commit(tx), 0);

	/* the next version by compare-and-set; a stale one loses */
	assert_int_equal(store_begin(f->st, &tx), 0);
	assert_int_equal(vehicle_read(tx, "truck-1", 0, &got, &rowv), 0);
	assert_int_equal(rowv, 1);
	prev = json_deep_copy(got);
	json_object_set_new(json_object_get(got, "attributes"), "carrier_id", json_string("blue"));
	assert_int_equal(vehicle_write(tx, prev, got, rowv, 1700000002), 0);
	assert_int_equal(json_integer_value(json_object_get(got, "version")), 2);
	assert_int_equal(vehicle_write(tx, prev, got, rowv, 1700000003), BS_ERR_PRECONDITION);
	store_rollback(tx);
	assert_int_equal(store_begin(f->st, &tx), 0);
	assert_int_equal(vehicle_write(tx, prev, got, rowv, 1700000002), 0);
	/* immutable: provisioning time, id, first key */
	json_object_set_new(got, "provisioned_at", json_integer(1));
	assert_int_equal(vehicle_write(tx, prev, got, 2, 1700000003), BS_ERR_INVALID);
	json_object_set(got, "provisioned_at", json_object_get(prev, "provisioned_at"));
	json_object_set_new(json_array_get(json_object_get(got, "identities"), 0), "key_id",
	    json_string("00"));
	assert_int_equal(vehicle_write(tx, prev, got, 2, 1700000003), BS_ERR_INVALID);
	assert_int_equal(store_commit(tx), 0);
	json_decref(got);
	json_decref(prev);

	/* every version readable; the current one is 2 */
	assert_int_equal(store_begin(f->st, &tx), 0);
	assert_int_equal(vehicle_read(tx, "truck-1", 1, &got, &rowv), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(got, "attributes"),
	    "carrier_id")), "acme");
	json_decref(got);
	assert_int_equal(vehicle_read(tx, "truck-1", 0, &got, &rowv), 0);
	assert_int_equal(rowv, 2);
	assert_int_equal(json_integer_value(json_object_get(got, "updated_at")), 1700000002);
	json_decref(got);
	assert_int_equal(vehicle_read(tx, "truck-1", 3, &got, &rowv), BS_ERR_NOT_FOUND);
	assert_int_equal(vehicle_read(tx, "truck-9", 0, &got, &rowv), BS_ERR_NOT_FOUND);
	store_rollback(tx);
	json_decref(rec);
}

static int
collect(void *arg, json_t *rec)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%s;", json_string_value(json_object_get(rec, "id")));
	return strlen(out) >= 12 ? 1 : 0;      /* three ids of 4 bytes: the page is full */
}

static void
test_scan(void **state)
{
	struct fixture *f = *state;
	struct store_txn *tx = NULL;
	char out[256] = "", last[VEHICLE_ID_MAX + 1];
	const char *ids[] = { "v-c", "v-a", "v-e", "v-b", "v-d" };

	assert_int_equal(store_begin(f->st, &tx), 0);
	for (size_t i = 0; i < 5; i++) {
		json_t *r = new_record(ids[i]);

		assert_int_equal(vehicle_write(tx, NULL, r, 0, 1), 0);
		json_decref(r);
	}
	assert_int_equal(vehicle_scan(tx, NULL, 100, collect, out, last), 0);
	assert_string_equal(out, "v-a;v-b;v-c;");
	assert_string_equal(last, "v-c");
	out[0] = '\0';
	assert_int_equal(vehicle_scan(tx, "v-c", 100, collect, out, last), 0);
	assert_string_equal(out, "v-d;v-e;");
	out[0] = '\0';
	assert_int_equal(vehicle_scan(tx, "v-a", 1, collect, out, last), 0);
	assert_string_equal(out, "v-b;");
	assert_string_equal(last, "v-b");
	store_rollback(tx);
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static const json_t *
ident_at(const json_t *rec, size_t i)
{
	return json_array_get(json_object_get(rec, "identities"), i);
}

/*
 * A record with VEHICLE_IDENTITIES_MAX identities: the registered one, then
 * certificates' (the first of which ends at 200, the others at 1000).
 */
static json_t *
full_record(void)
{
	json_t *rec = new_record("TRUCK-2");
	char why[160], sha[65];
	uint8_t *k;
	size_t n;

	for (size_t i = 1; i < VEHICLE_IDENTITIES_MAX; i++) {
		k = new_spki("EC", "P-256", &n);
		snprintf(sha, sizeof(sha), "%064zx", i);
		assert_int_equal(vehicle_note_certificate(rec, k, n, sha, 100, i == 1 ? 200 : 1000,
		    150, why, sizeof(why)), 0);
		OPENSSL_free(k);
	}
	return rec;
}

static void
test_certificates_noted(void **state)
{
	json_t *rec = new_record("TRUCK-1");
	char why[160];
	uint8_t *k;
	size_t n, i;
	const char *kid;

	(void)state;
	k = new_spki("EC", "P-256", &n);
	/* a new key: a new entry; the same key again: its entry names the newer certificate */
	assert_int_equal(vehicle_note_certificate(rec, k, n, SHA_A, 100, 200, 150, why, sizeof(why)), 0);
	assert_int_equal(json_array_size(json_object_get(rec, "identities")), 2);
	assert_int_equal(vehicle_note_certificate(rec, k, n, SHA_B, 190, 400, 195, why, sizeof(why)), 0);
	assert_int_equal(json_array_size(json_object_get(rec, "identities")), 2);
	assert_string_equal(json_string_value(json_object_get(ident_at(rec, 1), "cert_sha256")), SHA_B);
	assert_int_equal(json_integer_value(json_object_get(ident_at(rec, 1), "not_after")), 400);
	/* revocation by thumbprint: only the current entry names SHA_B */
	assert_int_equal(vehicle_note_revocation(rec, SHA_A, NULL, 300, "x"), 0);
	assert_int_equal(vehicle_note_revocation(rec, SHA_B, NULL, 300, "certificate 01 revoked"), 1);
	assert_int_equal(json_integer_value(json_object_get(ident_at(rec, 1), "revoked_at")), 300);
	assert_int_equal(vehicle_note_revocation(rec, SHA_B, NULL, 301, "again"), 0);
	/* a revoked key gets no new certificate */
	assert_int_equal(vehicle_note_certificate(rec, k, n, SHA_C, 300, 500, 310, why, sizeof(why)),
	    BS_ERR_PRECONDITION);
	assert_non_null(strstr(why, "is revoked"));
	json_decref(rec);

	/* the cap: 8 in force; expired certificates' entries make room (never the first) */
	rec = full_record();
	assert_int_equal(vehicle_note_certificate(rec, k, n, SHA_C, 150, 900, 150, why, sizeof(why)),
	    BS_ERR_PRECONDITION);
	assert_non_null(strstr(why, "identities in force"));
	json_decref(rec);
	rec = full_record();
	/* at 250 the first certificate (not_after 200) has expired: its entry goes */
	assert_int_equal(vehicle_note_certificate(rec, k, n, SHA_C, 250, 900, 250, why, sizeof(why)), 0);
	assert_int_equal(json_array_size(json_object_get(rec, "identities")), VEHICLE_IDENTITIES_MAX);
	assert_string_equal(json_string_value(json_object_get(ident_at(rec, 0), "cert_sha256")), "");
	for (i = 0; i < VEHICLE_IDENTITIES_MAX; i++)
		assert_int_not_equal(json_integer_value(json_object_get(ident_at(rec, i), "not_after")),
		    200);
	/* key compromise: every entry of the key, whatever its certificate */
	kid = json_string_value(json_object_get(ident_at(rec, VEHICLE_IDENTITIES_MAX - 1), "key_id"));
	assert_int_equal(vehicle_note_revocation(rec, "none", kid, 260, "key compromise"), 1);
	json_decref(rec);
	OPENSSL_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_certificates_noted),
		cmocka_unit_test_setup_teardown(test_versions_and_immutables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
