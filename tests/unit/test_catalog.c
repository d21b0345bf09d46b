/*
 * test_catalog.c - unit tests for the key catalog (src/keys/catalog.c):
 * persistence across close/open, name rules, the EXISTS / PRECONDITION
 * rules of catalog_db_add_version, ordering and pagination, a catalog over
 * a borrowed store, concurrent writers, file mode, and reconciliation
 * against a token.
 *
 * The token is faked: this file defines hsm_find_private_key and
 * hsm_list_key_objects itself, so the static library's hsm.o is never
 * linked and no PKCS#11 module is needed.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys/catalog.h"
#include "store/store.h"

/* --- fake token -------------------------------------------------------------- */

#define FAKE_MAX 64

static uint8_t fake_ids[FAKE_MAX][HSM_KEY_ID_LEN];
static size_t fake_n;
static int fake_list_rc;
static int fake_find_calls;
static char fake_prefix_seen[64];

int
hsm_find_private_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN], hsm_handle *out)
{
	size_t i;

	size_t found = 0;

	(void)s;
	fake_find_calls++;
	for (i = 0; i < fake_n; i++) {
		if (memcmp(fake_ids[i], id, HSM_KEY_ID_LEN) == 0) {
			*out = 1000 + i;
			found++;
		}
	}
	/* as the real one: several objects with one CKA_ID are BS_ERR_EXISTS */
	return found == 0 ? BS_ERR_NOT_FOUND : found == 1 ? 0 : BS_ERR_EXISTS;
}

int
hsm_list_key_objects(struct hsm_session *s, const char *label_prefix,
    struct hsm_key_object **out, size_t *n_out)
{
	struct hsm_key_object *v;

	(void)s;
	snprintf(fake_prefix_seen, sizeof(fake_prefix_seen), "%s", label_prefix);
	if (fake_list_rc != 0)
		return fake_list_rc;
	if ((v = calloc(fake_n + 1, sizeof(*v))) == NULL)
		return BS_ERR_NOMEM;
	for (size_t i = 0; i < fake_n; i++) {
		v[i].handle = 1000 + i;
		snprintf(v[i].label, sizeof(v[i].label), "%sfake/v%zu", label_prefix, i + 1);
		memcpy(v[i].id, fake_ids[i], HSM_KEY_ID_LEN);
	}
	*out = v;
	*n_out = fake_n;
	return 0;
}

/* --- helpers ----------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char path[128];
	struct catalog *c;
};

static void
make_id(uint8_t id[HSM_KEY_ID_LEN], unsigned a, unsigned b)
{
	size_t i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++)
		id[i] = (uint8_t)(0x5a ^ (i * 7));
	id[0] = (uint8_t)(a >> 8);
	id[1] = (uint8_t)a;
	id[2] = (uint8_t)(b >> 8);
	id[3] = (uint8_t)b;
}

static void
make_key(struct catalog_key *k, const char *name, enum bs_purpose p, enum bs_alg alg)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->purpose = p;
	k->alg = alg;
	k->state = BS_KEY_ENABLED;
	k->created = 1700000000;
}

/* spki storage for make_version: the catalog copies it. */
static uint8_t spki_buf[8][32];

static void
make_version(struct catalog_version *v, uint32_t ver, unsigned a, enum bs_key_state st)
{
	uint8_t *spki = spki_buf[ver % 8];
	size_t i;

	memset(v, 0, sizeof(*v));
	v->version = ver;
	v->state = st;
	v->created = 1700000000 + ver;
	make_id(v->hsm_id, a, ver);
	for (i = 0; i < 32; i++)
		spki[i] = (uint8_t)(a + ver + i);
	v->spki = spki;
	v->spki_len = 20 + ver % 8;
}

/* Adds (k, v) durably and to memory, as the daemon does. */
static void
add_both(struct catalog *c, const struct catalog_key *k, const struct catalog_version *v)
{
	assert_int_equal(catalog_db_add_version(c, k, v), 0);
	assert_int_equal(catalog_mem_add_version(c, k, v), 0);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bs-cat-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/catalog.db", f->dir);
	umask(022);
	if (catalog_open(f->path, &f->c, err, sizeof(err)) != 0) {
		fprintf(stderr, "catalog_open: %s\n", err);
		return -1;
	}
	fake_n = 0;
	fake_list_rc = 0;
	fake_find_calls = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[512];
	DIR *d;
	struct dirent *de;

	catalog_close(f->c);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fixture *f)
{
	char err[256] = "";

	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(catalog_open(f->path, &f->c, err, sizeof(err)), 0);
	assert_non_null(f->c);
}

/* --- tests ------------------------------------------------------------------- */

static void
test_purpose_names(void **state)
{
	static const char *const names[] = { "generic", "ota", "checkpoint", "command",
		"envelope", "audit", "admin", "ca" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(bs_purpose_name((enum bs_purpose)(i + 1)), names[i]);
		assert_int_equal(bs_purpose_from_name(names[i]), (int)(i + 1));
	}
	assert_string_equal(bs_purpose_name(BS_PURPOSE_NONE), "none");
	assert_string_equal(bs_purpose_name((enum bs_purpose)99), "none");
	assert_string_equal(bs_purpose_name((enum bs_purpose)-1), "none");
	assert_int_equal(bs_purpose_from_name("none"), BS_PURPOSE_NONE);
	assert_int_equal(bs_purpose_from_name("OTA"), BS_PURPOSE_NONE);
	assert_int_equal(bs_purpose_from_name(""), BS_PURPOSE_NONE);
	assert_int_equal(bs_purpose_from_name(NULL), BS_PURPOSE_NONE);
}

static void
test_name_valid(void **state)
{
	static const char *const good[] = { "a", "Z", "0", "key-1", "ota.fw_v2", "A.b-c_d",
		"1234567890123456789012345678901234567890123456789012345678901234" /* 64 */ };
	static const char *const bad[] = { "", "-a", ".a", "_a", "a b", "a/b", "a:b", "a\n",
		"caf\xc3\xa9", "a\tb", "a*", "..",
		"12345678901234567890123456789012345678901234567890123456789012345" /* 65 */ };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!catalog_name_valid(good[i]))
			fail_msg("good name rejected: '%s'", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (catalog_name_valid(bad[i]))
			fail_msg("bad name accepted: '%s'", bad[i]);
	}
	assert_false(catalog_name_valid(NULL));
}

static void
test_file_mode(void **state)
{
	struct fixture *f = *state;
	struct catalog_key k;
	struct catalog_version v;
	char p[256];
	struct stat st;

	make_key(&k, "mode", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 1, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	if (stat(p, &st) == 0)
		assert_int_equal(st.st_mode & 077, 0);

	/* An existing file with loose permissions is tightened on open. */
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(chmod(f->path, 0644), 0);
	reopen(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct catalog *c = (struct catalog *)0x1;
	char err[256] = "", p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/no/such/dir/catalog.db", f->dir);
	assert_int_equal(catalog_open(p, &c, err, sizeof(err)), BS_ERR_IO);
	assert_ptr_equal(c, (struct catalog *)0x1);
	assert_non_null(strstr(err, p));

	/* Not a database. */
	snprintf(p, sizeof(p), "%s/garbage.db", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, not at all, no.............................\n"
	      "................................................................................\n",
	    fp);
	fclose(fp);
	err[0] = '\0';
	assert_int_equal(catalog_open(p, &c, err, sizeof(err)), BS_ERR_IO);
	assert_ptr_equal(c, (struct catalog *)0x1);
	assert_true(err[0] != '\0');
}

static void
test_persist(void **state)
{
	struct fixture *f = *state;
	struct catalog_key k1, k2;
	struct catalog_version v;
	const struct catalog_key *k;
	const struct catalog_version *cv;
	uint8_t id[HSM_KEY_ID_LEN];
	uint32_t i;
	size_t j;

	make_key(&k1, "ota-signer", BS_PURPOSE_OTA, BS_ALG_ECDSA_P256_SHA256);
	k1.created = 1711111111;
	make_key(&k2, "audit.log", BS_PURPOSE_AUDIT, BS_ALG_RSA_3072_PSS_SHA256);
	k2.state = BS_KEY_DISABLED;
	for (i = 1; i <= 3; i++) {
		make_version(&v, i, 10, i == 2 ? BS_KEY_DISABLED : BS_KEY_ENABLED);
		add_both(f->c, &k1, &v);
	}
	make_version(&v, 1, 20, BS_KEY_ENABLED);
	add_both(f->c, &k2, &v);
	/* Written to disk but never mirrored: must appear after reopening. */
	make_version(&v, 2, 20, BS_KEY_DISABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k2, &v), 0);
	assert_int_equal(catalog_key_primary(catalog_find(f->c, "audit.log"))->version, 1);

	reopen(f);

	assert_int_equal(catalog_count(f->c), 2);
	k = catalog_find(f->c, "ota-signer");
	assert_non_null(k);
	assert_string_equal(k->name, "ota-signer");
	assert_int_equal(k->purpose, BS_PURPOSE_OTA);
	assert_int_equal(k->alg, BS_ALG_ECDSA_P256_SHA256);
	assert_int_equal(k->state, BS_KEY_ENABLED);
	assert_int_equal(k->created, 1711111111);
	assert_int_equal(k->nversions, 3);
	for (i = 1; i <= 3; i++) {
		cv = catalog_key_version(k, i);
		assert_non_null(cv);
		assert_int_equal(cv->version, i);
		assert_int_equal(cv->state, i == 2 ? BS_KEY_DISABLED : BS_KEY_ENABLED);
		assert_int_equal(cv->created, 1700000000 + i);
		make_id(id, 10, i);
		assert_memory_equal(cv->hsm_id, id, HSM_KEY_ID_LEN);
		assert_int_equal(cv->spki_len, 20 + i % 8);
		for (j = 0; j < cv->spki_len; j++)
			assert_int_equal(cv->spki[j], (uint8_t)(10 + i + j));
	}
	assert_null(catalog_key_version(k, 0));
	assert_null(catalog_key_version(k, 4));
	assert_int_equal(catalog_key_primary(k)->version, 3);

	k = catalog_find(f->c, "audit.log");
	assert_non_null(k);
	assert_int_equal(k->purpose, BS_PURPOSE_AUDIT);
	assert_int_equal(k->alg, BS_ALG_RSA_3072_PSS_SHA256);
	assert_int_equal(k->state, BS_KEY_DISABLED);
	assert_int_equal(k->nversions, 2);
	assert_int_equal(catalog_key_primary(k)->version, 1);
	assert_null(catalog_find(f->c, "audit"));
	assert_null(catalog_find(f->c, "audit.log2"));

	/* The reloaded catalog accepts the next rotation, and persists it. */
	make_version(&v, 4, 10, BS_KEY_ENABLED);
	add_both(f->c, &k1, &v);
	reopen(f);
	assert_int_equal(catalog_find(f->c, "ota-signer")->nversions, 4);
}

/* Envelope keys: secret-key versions (no SPKI), and the minimum decryption version. */
static void
test_secret_keys_and_min_decrypt(void **state)
{
	struct fixture *f = *state;
	struct catalog_key kek, sig;
	struct catalog_version v;
	const struct catalog_key *k;

	make_key(&kek, "tlm-kek", BS_PURPOSE_ENVELOPE, BS_ALG_AES_256_GCM);
	make_version(&v, 1, 30, BS_KEY_ENABLED);
	/* a secret key has no public key: an SPKI is refused, none is taken */
	assert_int_equal(catalog_db_add_version(f->c, &kek, &v), BS_ERR_INVALID);
	v.spki = NULL;
	v.spki_len = 0;
	add_both(f->c, &kek, &v);
	make_version(&v, 2, 30, BS_KEY_ENABLED);
	v.spki = NULL;
	v.spki_len = 0;
	add_both(f->c, &kek, &v);
	/* and a key pair needs its public key */
	make_key(&sig, "sig", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 31, BS_KEY_ENABLED);
	v.spki_len = 0;
	assert_int_equal(catalog_db_add_version(f->c, &sig, &v), BS_ERR_INVALID);

	assert_int_equal(catalog_find(f->c, "tlm-kek")->min_decrypt, 0);
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "tlm-kek", 3), BS_ERR_INVALID);
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "tlm-kek", 0), BS_ERR_INVALID);
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "nope", 1), BS_ERR_NOT_FOUND);
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "tlm-kek", 2), 0);
	catalog_mem_set_min_decrypt(f->c, "tlm-kek", 2);
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "tlm-kek", 2), 0);   /* the same */
	assert_int_equal(catalog_db_raise_min_decrypt(f->c, "tlm-kek", 1), BS_ERR_PRECONDITION);
	catalog_mem_set_min_decrypt(f->c, "tlm-kek", 1);                        /* never down */
	assert_int_equal(catalog_find(f->c, "tlm-kek")->min_decrypt, 2);

	reopen(f);
	k = catalog_find(f->c, "tlm-kek");
	assert_non_null(k);
	assert_int_equal(k->alg, BS_ALG_AES_256_GCM);
	assert_int_equal(k->nversions, 2);
	assert_int_equal(k->versions[1].spki_len, 0);
	assert_int_equal(k->min_decrypt, 2);
}

/* Applies a change durably and mirrors it, as the key service does. */
static int
change(struct fixture *f, const char *name, uint32_t v, enum catalog_change what, int64_t when)
{
	struct catalog_states s;
	int rc = catalog_db_change_state(f->c, name, v, what, when, &s);

	if (rc == 0) {
		catalog_mem_set_states(f->c, name, &s);
		catalog_states_clear(&s);
	}
	return rc;
}

static void
test_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct catalog_key k;
	struct catalog_version v;
	const struct catalog_key *ck;
	struct catalog_states old;

	make_key(&k, "life", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	for (uint32_t i = 1; i <= 3; i++) {
		make_version(&v, i, 40, BS_KEY_ENABLED);
		add_both(f->c, &k, &v);
	}
	ck = catalog_find(f->c, "life");
	assert_true(catalog_version_usable(ck, &ck->versions[2]));
	/* unknown targets */
	assert_int_equal(change(f, "nope", 0, CATALOG_DISABLE, 0), BS_ERR_NOT_FOUND);
	assert_int_equal(change(f, "life", 4, CATALOG_DISABLE, 0), BS_ERR_NOT_FOUND);
	assert_string_equal(catalog_change_refusal(ck, 4, CATALOG_DISABLE, 0), "no such version");

	/* a version: disable, no-op, enable; the primary skips a disabled newest version */
	assert_int_equal(change(f, "life", 3, CATALOG_DISABLE, 0), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->versions[2].state, BS_KEY_DISABLED);
	assert_false(catalog_version_usable(ck, &ck->versions[2]));
	assert_int_equal(catalog_key_primary(ck)->version, 2);
	assert_int_equal(change(f, "life", 3, CATALOG_DISABLE, 0), 0);
	assert_int_equal(change(f, "life", 3, CATALOG_ENABLE, 0), 0);
	assert_int_equal(catalog_find(f->c, "life")->versions[2].state, BS_KEY_ENABLED);

	/* the key: disabled holds every version */
	assert_int_equal(change(f, "life", 0, CATALOG_DISABLE, 0), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->state, BS_KEY_DISABLED);
	assert_false(catalog_version_usable(ck, &ck->versions[0]));
	assert_int_equal(change(f, "life", 0, CATALOG_ENABLE, 0), 0);

	/* scheduling a version; not due before its time; cancel leaves it disabled */
	assert_int_equal(change(f, "life", 1, CATALOG_SCHEDULE_DESTRUCTION, 5000), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->versions[0].state, BS_KEY_PENDING_DESTRUCTION);
	assert_int_equal(ck->versions[0].destroy_at, 5000);
	assert_int_equal(change(f, "life", 1, CATALOG_SCHEDULE_DESTRUCTION, 6000),
	    BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 1, CATALOG_ENABLE, 0), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 1, CATALOG_DISABLE, 0), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 1, CATALOG_DESTROYED, 4999), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 1, CATALOG_CANCEL_DESTRUCTION, 0), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->versions[0].state, BS_KEY_DISABLED);
	assert_int_equal(ck->versions[0].destroy_at, 0);
	assert_int_equal(change(f, "life", 1, CATALOG_CANCEL_DESTRUCTION, 0), BS_ERR_PRECONDITION);

	/* destroyed when due, and final */
	assert_int_equal(change(f, "life", 1, CATALOG_SCHEDULE_DESTRUCTION, 5000), 0);
	assert_int_equal(change(f, "life", 1, CATALOG_DESTROYED, 5000), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->versions[0].state, BS_KEY_DESTROYED);
	assert_int_equal(ck->versions[0].destroy_at, 5000);
	assert_int_equal(change(f, "life", 1, CATALOG_ENABLE, 0), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 1, CATALOG_CANCEL_DESTRUCTION, 0), BS_ERR_PRECONDITION);

	/* the whole key: the key pending, its versions as they were; the key only after them */
	assert_int_equal(change(f, "life", 3, CATALOG_DISABLE, 0), 0);
	assert_int_equal(change(f, "life", 0, CATALOG_SCHEDULE_DESTRUCTION, 7000), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->state, BS_KEY_PENDING_DESTRUCTION);
	assert_int_equal(ck->versions[1].state, BS_KEY_ENABLED);
	assert_false(catalog_version_usable(ck, &ck->versions[1]));
	assert_int_equal(change(f, "life", 2, CATALOG_CANCEL_DESTRUCTION, 0), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 2, CATALOG_DESTROYED, 6999), BS_ERR_PRECONDITION);
	assert_int_equal(change(f, "life", 0, CATALOG_DESTROYED, 7000), BS_ERR_PRECONDITION);
	/* cancelling the key: the key disabled, a version disabled before stays so */
	assert_int_equal(change(f, "life", 0, CATALOG_CANCEL_DESTRUCTION, 0), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->state, BS_KEY_DISABLED);
	assert_int_equal(ck->versions[1].state, BS_KEY_ENABLED);
	assert_int_equal(ck->versions[2].state, BS_KEY_DISABLED);
	assert_int_equal(ck->versions[0].state, BS_KEY_DESTROYED);
	assert_int_equal(change(f, "life", 0, CATALOG_SCHEDULE_DESTRUCTION, 7000), 0);
	/* due with the key: enabled and disabled versions alike */
	assert_int_equal(change(f, "life", 2, CATALOG_DESTROYED, 7000), 0);
	assert_int_equal(change(f, "life", 3, CATALOG_DESTROYED, 7000), 0);
	assert_int_equal(change(f, "life", 0, CATALOG_DESTROYED, 7000), 0);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->state, BS_KEY_DESTROYED);
	assert_null(catalog_key_primary(ck));
	assert_string_equal(catalog_change_refusal(ck, 0, CATALOG_ENABLE, 0),
	    "the key is destroyed");

	/* an older snapshot never overwrites a newer one */
	assert_int_equal(catalog_db_change_state(f->c, "life", 0, CATALOG_DISABLE, 0, &old),
	    BS_ERR_PRECONDITION);
	memset(&old, 0, sizeof(old));
	old.gen = 1;
	old.key_state = BS_KEY_ENABLED;
	catalog_mem_set_states(f->c, "life", &old);
	assert_int_equal(catalog_find(f->c, "life")->state, BS_KEY_DESTROYED);

	/* the states survive a restart */
	reopen(f);
	ck = catalog_find(f->c, "life");
	assert_int_equal(ck->state, BS_KEY_DESTROYED);
	assert_int_equal(ck->destroy_at, 7000);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(ck->versions[i].state, BS_KEY_DESTROYED);
	assert_true(ck->state_gen > 1);
}

static void
test_primary(void **state)
{
	struct fixture *f = *state;
	struct catalog_key k;
	struct catalog_version v;

	make_key(&k, "p", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 3, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);
	make_version(&v, 2, 3, BS_KEY_DISABLED);
	add_both(f->c, &k, &v);
	assert_int_equal(catalog_key_primary(catalog_find(f->c, "p"))->version, 1);
	make_version(&v, 3, 3, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);
	assert_int_equal(catalog_key_primary(catalog_find(f->c, "p"))->version, 3);
	assert_null(catalog_key_primary(NULL));

	make_key(&k, "q", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 4, BS_KEY_DISABLED);
	add_both(f->c, &k, &v);
	assert_null(catalog_key_primary(catalog_find(f->c, "q")));
}

static void
test_exists_and_precondition(void **state)
{
	struct fixture *f = *state;
	struct catalog_key k, other;
	struct catalog_version v;

	make_key(&k, "dup", BS_PURPOSE_COMMAND, BS_ALG_ED25519);
	make_version(&v, 1, 5, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);

	/* Same name again, whatever the other fields. */
	make_key(&other, "dup", BS_PURPOSE_OTA, BS_ALG_ECDSA_P256_SHA256);
	make_version(&v, 1, 6, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &other, &v), BS_ERR_EXISTS);

	/* Skipping ahead, or re-adding an existing number. */
	make_version(&v, 3, 5, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), BS_ERR_PRECONDITION);
	make_version(&v, 2, 5, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), 0);
	make_version(&v, 2, 7, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), BS_ERR_PRECONDITION);

	/* Rotating a key that does not exist. */
	make_key(&other, "ghost", BS_PURPOSE_OTA, BS_ALG_ED25519);
	make_version(&v, 2, 8, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &other, &v), BS_ERR_NOT_FOUND);

	/* Invalid arguments never reach the database. */
	make_key(&other, "bad name", BS_PURPOSE_OTA, BS_ALG_ED25519);
	make_version(&v, 1, 9, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &other, &v), BS_ERR_INVALID);
	assert_int_equal(catalog_mem_add_version(f->c, &other, &v), BS_ERR_INVALID);
	make_version(&v, 0, 9, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), BS_ERR_INVALID);
	make_version(&v, 3, 9, BS_KEY_ENABLED);
	v.spki_len = 0;
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), BS_ERR_INVALID);

	/* Memory side: a duplicate version is refused. */
	make_version(&v, 1, 5, BS_KEY_ENABLED);
	assert_int_equal(catalog_mem_add_version(f->c, &k, &v), BS_ERR_EXISTS);

	/* None of the failures left anything behind. */
	reopen(f);
	assert_int_equal(catalog_count(f->c), 1);
	assert_int_equal(catalog_find(f->c, "dup")->nversions, 2);
	assert_int_equal(catalog_find(f->c, "dup")->purpose, BS_PURPOSE_COMMAND);
	assert_null(catalog_find(f->c, "ghost"));
}

static void
test_order_and_pagination(void **state)
{
	struct fixture *f = *state;
	static const char *const insert[] = { "b", "a", "c", "a-1", "B", "a.0", "0" };
	static const char *const sorted[] = { "0", "B", "a", "a-1", "a.0", "b", "c" };
	struct catalog_key k;
	struct catalog_version v;
	size_t i, n = sizeof(insert) / sizeof(insert[0]);
	int pass;

	for (i = 0; i < n; i++) {
		make_key(&k, insert[i], BS_PURPOSE_GENERIC, BS_ALG_ED25519);
		make_version(&v, 1, (unsigned)(100 + i), BS_KEY_ENABLED);
		add_both(f->c, &k, &v);
	}
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(catalog_count(f->c), n);
		for (i = 0; i < n; i++)
			assert_string_equal(catalog_at(f->c, i)->name, sorted[i]);
		assert_null(catalog_at(f->c, n));
		assert_int_equal(catalog_index_after(f->c, ""), 0);
		assert_int_equal(catalog_index_after(f->c, NULL), 0);
		assert_int_equal(catalog_index_after(f->c, "0"), 1);
		assert_int_equal(catalog_index_after(f->c, "A"), 1);
		assert_int_equal(catalog_index_after(f->c, "a"), 3);
		assert_int_equal(catalog_index_after(f->c, "a-0"), 3);
		assert_int_equal(catalog_index_after(f->c, "a-1"), 4);
		assert_int_equal(catalog_index_after(f->c, "c"), n);
		assert_int_equal(catalog_index_after(f->c, "zzz"), n);
		for (i = 0; i < n; i++)
			assert_ptr_equal(catalog_find(f->c, sorted[i]), catalog_at(f->c, i));
		/* Same order after a reload from SQLite. */
		reopen(f);
	}

	/* Walk pages of 3 with a continuation token. */
	{
		char after[CATALOG_NAME_MAX + 1] = "";
		size_t seen = 0, start, j;

		do {
			start = catalog_index_after(f->c, after);
			for (j = start; j < start + 3 && j < catalog_count(f->c); j++) {
				assert_string_equal(catalog_at(f->c, j)->name, sorted[seen]);
				seen++;
				snprintf(after, sizeof(after), "%s", catalog_at(f->c, j)->name);
			}
		} while (j < catalog_count(f->c));
		assert_int_equal(seen, n);
	}
}

/* A catalog over a store it borrows: the store outlives it and stays open. */
static void
test_open_store(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	struct catalog *c = NULL;
	struct catalog_key k;
	struct catalog_version v;
	char p[256], err[256] = "";

	snprintf(p, sizeof(p), "%s/shared.db", f->dir);
	assert_int_equal(store_open(p, &st, err, sizeof(err)), 0);
	assert_int_equal(catalog_open_store(st, &c, err, sizeof(err)), 0);
	make_key(&k, "borrowed", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 50, BS_KEY_ENABLED);
	add_both(c, &k, &v);
	catalog_close(c);
	c = NULL;
	assert_int_equal(catalog_open_store(st, &c, err, sizeof(err)), 0);
	assert_non_null(catalog_find(c, "borrowed"));
	assert_int_equal(catalog_count(c), 1);
	catalog_close(c);
	store_close(st);
	assert_int_equal(catalog_open_store(NULL, &c, err, sizeof(err)), BS_ERR_INVALID);
}

/* --- concurrency ---------------------------------------------------------- */

#define NTHREADS 4
#define OWN_KEYS 15
#define SHARED_VERSIONS 30

struct worker_arg {
	struct catalog *c;
	unsigned t;
	unsigned wins;
	int bad;
};

static void *
worker(void *p)
{
	struct worker_arg *a = p;
	struct catalog_key k, shared;
	struct catalog_version v;
	uint8_t spki[24];
	unsigned i, ver;
	int rc;

	memset(spki, (int)(0xa0 + a->t), sizeof(spki));
	make_key(&shared, "shared", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	for (i = 0; i < OWN_KEYS; i++) {
		memset(&k, 0, sizeof(k));
		snprintf(k.name, sizeof(k.name), "t%u-key%02u", a->t, i);
		k.purpose = BS_PURPOSE_GENERIC;
		k.alg = BS_ALG_ED25519;
		k.state = BS_KEY_ENABLED;
		memset(&v, 0, sizeof(v));
		v.version = 1;
		v.state = BS_KEY_ENABLED;
		make_id(v.hsm_id, 1000 + a->t, i);
		v.spki = spki;
		v.spki_len = sizeof(spki);
		if (catalog_db_add_version(a->c, &k, &v) != 0)
			a->bad++;

		/* Every thread races for each version of "shared", in order. */
		ver = 2 + i * SHARED_VERSIONS / OWN_KEYS;
		for (; ver < 2 + (i + 1) * SHARED_VERSIONS / OWN_KEYS; ver++) {
			memset(&v, 0, sizeof(v));
			v.version = ver;
			v.state = BS_KEY_ENABLED;
			make_id(v.hsm_id, 2000 + a->t, ver);
			v.spki = spki;
			v.spki_len = sizeof(spki);
			rc = catalog_db_add_version(a->c, &shared, &v);
			if (rc == 0)
				a->wins++;
			else if (rc != BS_ERR_PRECONDITION)
				a->bad++;
		}
	}
	return NULL;
}

static void
test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct worker_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	struct catalog_key k;
	struct catalog_version v;
	const struct catalog_key *ck;
	unsigned t, i, wins = 0;
	char name[32];

	make_key(&k, "shared", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 1, BS_KEY_ENABLED);
	assert_int_equal(catalog_db_add_version(f->c, &k, &v), 0);

	for (t = 0; t < NTHREADS; t++) {
		args[t].c = f->c;
		args[t].t = t;
		args[t].wins = 0;
		args[t].bad = 0;
		assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
	}
	for (t = 0; t < NTHREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(args[t].bad, 0);
		wins += args[t].wins;
	}
	/* Each version of "shared" was won by exactly one thread. */
	assert_int_equal(wins, SHARED_VERSIONS);

	reopen(f);
	assert_int_equal(catalog_count(f->c), NTHREADS * OWN_KEYS + 1);
	for (t = 0; t < NTHREADS; t++) {
		for (i = 0; i < OWN_KEYS; i++) {
			snprintf(name, sizeof(name), "t%u-key%02u", t, i);
			ck = catalog_find(f->c, name);
			assert_non_null(ck);
			assert_int_equal(ck->nversions, 1);
		}
	}
	ck = catalog_find(f->c, "shared");
	assert_non_null(ck);
	assert_int_equal(ck->nversions, SHARED_VERSIONS + 1);
	for (i = 0; i < ck->nversions; i++)
		assert_int_equal(ck->versions[i].version, i + 1);
}

/* --- reconciliation -------------------------------------------------------- */

/* Two keys, three versions; the fake token holds exactly their ids. */
static void
reconcile_setup(struct fixture *f)
{
	struct catalog_key k;
	struct catalog_version v;

	make_key(&k, "alpha", BS_PURPOSE_GENERIC, BS_ALG_ED25519);
	make_version(&v, 1, 40, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);
	make_version(&v, 2, 40, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);
	make_key(&k, "beta", BS_PURPOSE_OTA, BS_ALG_ECDSA_P256_SHA256);
	make_version(&v, 1, 41, BS_KEY_ENABLED);
	add_both(f->c, &k, &v);

	fake_n = 0;
	make_id(fake_ids[fake_n++], 41, 1);
	make_id(fake_ids[fake_n++], 40, 2);
	make_id(fake_ids[fake_n++], 40, 1);
}

static void
hex16(const uint8_t *id, char *out)
{
	size_t i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
test_reconcile_clean(void **state)
{
	struct fixture *f = *state;
	char *report = (char *)0x1;
	const struct catalog_key *k;

	reconcile_setup(f);
	assert_int_equal(catalog_reconcile(f->c, (struct hsm_session *)f, &report), 0);
	assert_null(report);
	assert_int_equal(fake_find_calls, 0);   /* the token is listed once, never searched per version */
	assert_string_equal(fake_prefix_seen, CATALOG_LABEL_PREFIX);
	k = catalog_find(f->c, "alpha");
	assert_non_null(catalog_key_version(k, 2));

	/* An empty catalog and an empty token agree too. */
	{
		struct catalog *empty = NULL;
		char p[256], err[256];

		snprintf(p, sizeof(p), "%s/empty.db", f->dir);
		assert_int_equal(catalog_open(p, &empty, err, sizeof(err)), 0);
		fake_n = 0;
		report = (char *)0x1;
		assert_int_equal(catalog_reconcile(empty, NULL, &report), 0);
		assert_null(report);
		catalog_close(empty);
	}
}

static void
test_reconcile_missing(void **state)
{
	struct fixture *f = *state;
	char *report = NULL, hex[33], want[200];
	uint8_t id[HSM_KEY_ID_LEN];

	reconcile_setup(f);
	/* Drop alpha v2 from the token. */
	fake_n = 1;
	make_id(fake_ids[fake_n++], 40, 1);
	assert_int_equal(catalog_reconcile(f->c, NULL, &report), BS_ERR_MISMATCH);
	assert_non_null(report);
	make_id(id, 40, 2);
	hex16(id, hex);
	snprintf(want, sizeof(want),
	    "key 'alpha' version 2: private key object CKA_ID=%s missing from token\n", hex);
	assert_string_equal(report, want);
	free(report);
}

/* The daemon's form: a listing made once, given to the reconciliation (and to the key side). */
static void
test_reconcile_listed(void **state)
{
	struct fixture *f = *state;
	struct hsm_key_object *objs = NULL;
	char *report = (char *)0x1, hex[33], want[200];
	size_t n = 0;

	reconcile_setup(f);
	assert_int_equal(hsm_list_key_objects(NULL, CATALOG_LABEL_PREFIX, &objs, &n), 0);
	assert_int_equal(catalog_reconcile_listed(f->c, objs, n, &report), 0);
	assert_null(report);
	/* alpha v2's object gone from the listing: the same report as catalog_reconcile's */
	for (size_t i = 0; i < n; i++) {
		uint8_t id[HSM_KEY_ID_LEN];

		make_id(id, 40, 2);
		if (memcmp(objs[i].id, id, HSM_KEY_ID_LEN) == 0) {
			objs[i] = objs[n - 1];
			n--;
			hex16(id, hex);
			break;
		}
	}
	assert_int_equal(catalog_reconcile_listed(f->c, objs, n, &report), BS_ERR_MISMATCH);
	snprintf(want, sizeof(want),
	    "key 'alpha' version 2: private key object CKA_ID=%s missing from token\n", hex);
	assert_string_equal(report, want);
	free(report);
	assert_int_equal(catalog_reconcile_listed(f->c, NULL, 1, &report), BS_ERR_INVALID);
	free(objs);
	assert_int_equal(fake_find_calls, 0);
}

static void
test_reconcile_duplicate(void **state)
{
	struct fixture *f = *state;
	char *report = NULL, hex[33], want[200];
	uint8_t id[HSM_KEY_ID_LEN];

	reconcile_setup(f);
	/* A second object with alpha v2's CKA_ID. */
	make_id(id, 40, 2);
	memcpy(fake_ids[fake_n++], id, HSM_KEY_ID_LEN);
	assert_int_equal(catalog_reconcile(f->c, NULL, &report), BS_ERR_MISMATCH);
	hex16(id, hex);
	snprintf(want, sizeof(want), "key 'alpha' version 2: more than one private key object "
	    "CKA_ID=%s on token\n", hex);
	assert_string_equal(report, want);
	free(report);
}

static void
test_reconcile_extra(void **state)
{
	struct fixture *f = *state;
	char *report = NULL, hex[33], want[200];

	reconcile_setup(f);
	make_id(fake_ids[fake_n], 99, 9);
	hex16(fake_ids[fake_n], hex);
	fake_n++;
	assert_int_equal(catalog_reconcile(f->c, NULL, &report), BS_ERR_MISMATCH);
	assert_non_null(report);
	snprintf(want, sizeof(want),
	    "token object CKA_ID=%s (label boltseal/...) is not in the catalog\n", hex);
	assert_string_equal(report, want);
	free(report);
}

static void
test_reconcile_both_and_hsm_error(void **state)
{
	struct fixture *f = *state;
	char *report = NULL;

	reconcile_setup(f);
	make_id(fake_ids[0], 77, 7);  /* beta v1 missing, one stranger */
	assert_int_equal(catalog_reconcile(f->c, NULL, &report), BS_ERR_MISMATCH);
	assert_non_null(report);
	assert_int_equal(count_lines(report), 2);
	assert_non_null(strstr(report, "key 'beta' version 1: "));
	assert_non_null(strstr(report, "is not in the catalog\n"));
	free(report);

	/* The token failing to list is not a mismatch. */
	report = (char *)0x1;
	fake_list_rc = BS_ERR_HSM;
	assert_int_equal(catalog_reconcile(f->c, NULL, &report), BS_ERR_HSM);
	assert_ptr_equal(report, (char *)0x1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_purpose_names),
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_keys_and_min_decrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exists_and_precondition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_and_pagination, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_extra, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_both_and_hsm_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
