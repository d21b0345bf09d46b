/*
 * test_evidence.c - unit tests of evidence bundles (src/audit/evidence.c):
 * names, timestamps and vehicle ids; MANIFEST in sha256sum's format; the
 * tar round trip and the reader's refusals (not tar, a symbolic link, a
 * path outside the bundle, the same name twice); and the verification of
 * a bundle built here from a real Merkle tree and a checkpoint signed with
 * an Ed25519 key: it verifies, with the bundle's key or the trusted one;
 * a changed byte in each file names that file; another trusted key, a
 * missing, an added or an unlisted file, a seal of another call, a gap in
 * the records, a record outside the window each fail with their file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/evidence.h"
#include "common/hex.h"
#include "formats/merkle.h"
#include "formats/signed_note.h"

#define ORIGIN "ev.test/log"
#define NREC 6          /* records 0..5 in the log; the bundle holds 1..3, the seal is 5 */

static void
test_names(void **state)
{
	(void)state;
	assert_true(evidence_name_valid("README"));
	assert_true(evidence_name_valid("records.jsonl"));
	assert_true(evidence_name_valid("vkey"));
	assert_true(evidence_name_valid("certs/ca-ca-1.pem"));
	assert_true(evidence_name_valid("keys/ota_fw-v2.pem"));
	assert_false(evidence_name_valid("other"));
	assert_false(evidence_name_valid("certs/"));
	assert_false(evidence_name_valid("certs/.hidden"));
	assert_false(evidence_name_valid("certs/../vkey"));
	assert_false(evidence_name_valid("certs/a/b"));
	assert_false(evidence_name_valid("/etc/passwd"));
	assert_false(evidence_name_valid("crls/a b"));
	assert_true(evidence_ts_valid("2026-11-21T04:26:30.172Z"));
	assert_true(evidence_ts_valid("2024-02-29T23:59:59.999Z"));
	assert_false(evidence_ts_valid("2026-02-29T00:00:00.000Z"));
	assert_false(evidence_ts_valid("2026-11-21T24:00:00.000Z"));
	assert_false(evidence_ts_valid("2026-11-21T04:26:30Z"));
	assert_false(evidence_ts_valid("2026-11-21 04:26:30.172Z"));
	assert_true(evidence_vehicle_valid("TRUCK-7"));
	assert_false(evidence_vehicle_valid(""));
	assert_false(evidence_vehicle_valid("a\"b"));
	assert_false(evidence_vehicle_valid("a b"));
}

static void
test_manifest_and_tar(void **state)
{
	struct evidence_bundle b, r;
	const struct evidence_file *m;
	uint8_t sha[32], h[32], *tar;
	size_t len;
	char msg[300], hex[65], want[400];

	(void)state;
	evidence_init(&b);
	assert_int_equal(evidence_add(&b, "README", "hi\n", 3), 0);
	assert_int_equal(evidence_add(&b, "certs/a.pem", "", 0), 0);
	assert_int_equal(evidence_add(&b, "vkey", "k\n", 2), 0);
	assert_int_equal(evidence_add(&b, "README", "x", 1), BS_ERR_EXISTS);
	assert_int_equal(evidence_add(&b, "../x", "x", 1), BS_ERR_INVALID);
	assert_int_equal(evidence_make_manifest(&b, sha), 0);
	m = evidence_find(&b, "MANIFEST");
	assert_non_null(m);
	/* sha256sum's format, in byte order ("README" < "certs/"), without vkey */
	EVP_Digest("hi\n", 3, h, NULL, EVP_sha256(), NULL);
	bs_hex_encode(h, 32, hex);
	snprintf(want, sizeof(want), "%s  README\n", hex);
	EVP_Digest("", 0, h, NULL, EVP_sha256(), NULL);
	bs_hex_encode(h, 32, hex);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s  certs/a.pem\n", hex);
	assert_int_equal(m->len, strlen(want));
	assert_memory_equal(m->data, want, m->len);
	EVP_Digest(m->data, m->len, h, NULL, EVP_sha256(), NULL);
	assert_memory_equal(h, sha, 32);

	assert_int_equal(evidence_write_tar(&b, 1700000000, &tar, &len), 0);
	assert_int_equal(evidence_read_tar(tar, len, &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.n, 4);
	for (size_t i = 0; i < b.n; i++) {
		const struct evidence_file *f = evidence_find(&r, b.files[i].name);

		assert_non_null(f);
		assert_int_equal(f->len, b.files[i].len);
		assert_memory_equal(f->data, b.files[i].data, f->len);
	}
	evidence_free(&r);
	/* a truncated archive */
	assert_int_equal(evidence_read_tar(tar, 700, &r, msg, sizeof(msg)), BS_ERR_INVALID);
	assert_int_equal(r.n, 0);
	free(tar);
	assert_int_equal(evidence_read_tar((const uint8_t *)"hello", 5, &r, msg, sizeof(msg)),
	    BS_ERR_INVALID);
	assert_non_null(strstr(msg, "tar"));
	evidence_free(&b);
}

/* A tar archive of one member made with libarchive directly. */
static size_t
odd_tar(const char *name, int type, const char *name2, uint8_t *out, size_t cap)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	size_t used = 0;

	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
	for (int k = 0; k < (name2 != NULL ? 2 : 1); k++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, k == 0 ? name : name2);
		archive_entry_set_filetype(e, (unsigned)type);
		archive_entry_set_perm(e, 0644);
		if (type == AE_IFLNK)
			archive_entry_set_symlink(e, "/etc/passwd");
		archive_entry_set_size(e, type == AE_IFREG ? 1 : 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (type == AE_IFREG)
			assert_int_equal(archive_write_data(a, "x", 1), 1);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
	return used;
}

static void
test_reader_refusals(void **state)
{
	static uint8_t buf[64 * 1024];
	struct evidence_bundle r;
	char msg[300];
	size_t n;

	(void)state;
	n = odd_tar("certs/x.pem", AE_IFLNK, NULL, buf, sizeof(buf));
	assert_int_equal(evidence_read_tar(buf, n, &r, msg, sizeof(msg)), BS_ERR_INVALID);
	assert_non_null(strstr(msg, "not a regular file"));
	n = odd_tar("../README", AE_IFREG, NULL, buf, sizeof(buf));
	assert_int_equal(evidence_read_tar(buf, n, &r, msg, sizeof(msg)), BS_ERR_INVALID);
	assert_non_null(strstr(msg, "not a name"));
	n = odd_tar("README", AE_IFREG, "./README", buf, sizeof(buf));
	assert_int_equal(evidence_read_tar(buf, n, &r, msg, sizeof(msg)), BS_ERR_INVALID);
	assert_non_null(strstr(msg, "twice"));
	n = odd_tar("./README", AE_IFREG, NULL, buf, sizeof(buf));
	assert_int_equal(evidence_read_tar(buf, n, &r, msg, sizeof(msg)), 0);
	assert_non_null(evidence_find(&r, "README"));
	evidence_free(&r);
}

/* ---- a whole bundle, signed here ---------------------------------------------- */

struct fixture {
	EVP_PKEY *key;
	char vkey[NOTE_VKEY_MAX];
	struct note_verifier v;
	char lines[NREC][800];
	struct merkle_tree *t;
};

static void
fixture_init(struct fixture *f, const char *tamper_seal_method, int gap, const char *late_ts)
{
	uint8_t pub[32], leaf[32], prev[32];
	size_t plen = sizeof(pub);
	char ph[65];

	memset(f, 0, sizeof(*f));
	f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(f->key);
	assert_int_equal(EVP_PKEY_get_raw_public_key(f->key, pub, &plen), 1);
	assert_int_equal(note_vkey_format(ORIGIN, pub, f->vkey, sizeof(f->vkey)), 0);
	assert_int_equal(note_vkey_parse(f->vkey, &f->v), 0);
	f->t = merkle_tree_new();
	memset(prev, 0, sizeof(prev));
	for (int i = 0; i < NREC; i++) {
		bs_hex_encode(prev, 32, ph);
		if (i == 5)
			snprintf(f->lines[i], sizeof(f->lines[i]), "{\"seq\":5,\"prev\":\"%s\","
			    "\"timestamp\":\"2026-12-01T10:00:09.000Z\",\"type\":\"rpc\","
			    "\"request_id\":\"r5\",\"method\":\"%s\",\"result\":\"OK\","
			    "\"event\":\"evidence_sealed\",\"fields\":{"
			    "\"evidence.manifest_sha256\":\"@MANIFEST@\","
			    "\"evidence.from\":\"2026-12-01T10:00:00.000Z\","
			    "\"evidence.to\":\"2026-12-01T10:00:05.000Z\",\"evidence.vehicle\":\"\","
			    "\"evidence.records\":\"3\"}}", ph, tamper_seal_method);
		else
			snprintf(f->lines[i], sizeof(f->lines[i]), "{\"seq\":%d,\"prev\":\"%s\","
			    "\"timestamp\":\"%s\",\"type\":\"rpc\",\"target\":\"V-%d\"}", i, ph,
			    i == 3 && late_ts != NULL ? late_ts : i == 4 ? "2026-12-01T10:00:07.000Z" :
			    "2026-12-01T10:00:01.000Z", i);
		(void)gap;
		merkle_leaf_hash((const uint8_t *)f->lines[i], strlen(f->lines[i]), leaf);
		memcpy(prev, leaf, 32);
	}
}

/*
 * The bundle of records 1..3 (1, 3 when gap) sealed by record 5, whose
 * MANIFEST hash is filled in before the tree is made.
 */
static void
make_bundle(struct fixture *f, struct evidence_bundle *b, int gap)
{
	uint8_t sha[32], leaf[32], root[32], proof[MERKLE_MAX_PROOF][32], sig[64];
	char body[CHECKPOINT_BODY_MAX], sigline[NOTE_SIG_LINE_MAX], note[1024], hex[65], recs[1200];
	char vk[NOTE_VKEY_MAX + 1], *at, proofs[8192];
	size_t blen, slen = sizeof(sig), np, used = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t want[4] = { 1, 2, 3, 5 };
	size_t nwant = 4;

	if (gap) {
		want[1] = 3;
		want[2] = 5;
		nwant = 3;
	}
	evidence_init(b);
	recs[0] = '\0';
	for (size_t i = 0; i + 1 < nwant; i++)
		snprintf(recs + strlen(recs), sizeof(recs) - strlen(recs), "%s\n",
		    f->lines[want[i]]);
	assert_int_equal(evidence_add(b, "records.jsonl", recs, strlen(recs)), 0);
	assert_int_equal(evidence_add(b, "README", "read me\n", 8), 0);
	assert_int_equal(evidence_add(b, "certs/ca-x.pem", "pem\n", 4), 0);
	assert_int_equal(evidence_make_manifest(b, sha), 0);
	bs_hex_encode(sha, 32, hex);
	at = strstr(f->lines[5], "@MANIFEST@");
	assert_non_null(at);
	memmove(at + 64, at + 10, strlen(at + 10) + 1);
	memcpy(at, hex, 64);
	for (int i = 0; i < NREC; i++) {
		merkle_leaf_hash((const uint8_t *)f->lines[i], strlen(f->lines[i]), leaf);
		assert_int_equal(merkle_tree_append(f->t, leaf), 0);
	}
	snprintf(recs, sizeof(recs), "%s\n", f->lines[5]);
	assert_int_equal(evidence_add(b, "seal.json", recs, strlen(recs)), 0);
	proofs[0] = '\0';
	for (size_t i = 0; i < nwant; i++) {
		assert_int_equal(merkle_tree_leaf(f->t, want[i], leaf), 0);
		assert_int_equal(merkle_tree_inclusion_proof(f->t, want[i], NREC, proof, &np), 0);
		bs_hex_encode(leaf, 32, hex);
		used = strlen(proofs);
		snprintf(proofs + used, sizeof(proofs) - used, "{\"seq\":%llu,\"leaf\":\"%s\","
		    "\"hashes\":[", (unsigned long long)want[i], hex);
		for (size_t k = 0; k < np; k++) {
			bs_hex_encode(proof[k], 32, hex);
			used = strlen(proofs);
			snprintf(proofs + used, sizeof(proofs) - used, "%s\"%s\"", k ? "," : "", hex);
		}
		used = strlen(proofs);
		snprintf(proofs + used, sizeof(proofs) - used, "]}\n");
	}
	assert_int_equal(evidence_add(b, "proofs.jsonl", proofs, strlen(proofs)), 0);
	assert_int_equal(merkle_tree_root(f->t, NREC, root), 0);
	assert_int_equal(checkpoint_body_format(ORIGIN, NREC, root, body, sizeof(body), &blen), 0);
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, f->key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, (const uint8_t *)body, blen), 1);
	EVP_MD_CTX_free(md);
	assert_int_equal(note_signature_line(ORIGIN, f->v.key_id, sig, sigline, sizeof(sigline)), 0);
	snprintf(note, sizeof(note), "%.*s\n%s", (int)blen, body, sigline);
	assert_int_equal(evidence_add(b, "checkpoint", note, strlen(note)), 0);
	snprintf(vk, sizeof(vk), "%s\n", f->vkey);
	assert_int_equal(evidence_add(b, "vkey", vk, strlen(vk)), 0);
}

static void
fixture_free(struct fixture *f)
{
	EVP_PKEY_free(f->key);
	merkle_tree_free(f->t);
}

/* Verifies b against f's key (or the bundle's own); returns r.ok. */
static int
verify(const struct evidence_bundle *b, const struct fixture *f, int trusted,
    struct evidence_report *r)
{
	assert_int_equal(evidence_verify(b, trusted ? &f->v : NULL, trusted ? 1 : 0, r), 0);
	return r->ok;
}

/*
 * With BS_EVIDENCE_SEED=FILE set, writes the good bundle as a tar archive
 * there: how tests/fuzz/corpus/evidence/good.tar was made.
 */
static void
write_seed(const struct evidence_bundle *b)
{
	const char *path = getenv("BS_EVIDENCE_SEED");
	uint8_t *tar;
	size_t len;
	FILE *fp;

	if (path == NULL)
		return;
	assert_int_equal(evidence_write_tar(b, 1764583200, &tar, &len), 0);
	assert_non_null(fp = fopen(path, "wb"));
	assert_int_equal(fwrite(tar, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	free(tar);
}

static void
test_verify_good_and_flips(void **state)
{
	struct fixture f;
	struct evidence_bundle b;
	struct evidence_report r;

	(void)state;
	fixture_init(&f, EVIDENCE_SEAL_METHOD, 0, NULL);
	make_bundle(&f, &b, 0);
	assert_true(verify(&b, &f, 1, &r));
	assert_int_equal(r.records, 3);
	assert_int_equal(r.first_seq, 1);
	assert_int_equal(r.last_seq, 3);
	assert_int_equal(r.seal_seq, 5);
	assert_int_equal(r.tree_size, NREC);
	assert_int_equal(r.certs, 1);
	assert_false(r.trust_from_bundle);
	assert_string_equal(r.from, "2026-12-01T10:00:00.000Z");
	assert_true(verify(&b, &f, 0, &r));
	assert_true(r.trust_from_bundle);
	/* every byte of every file: the verification fails and names the file */
	for (size_t i = 0; i < b.n; i++) {
		struct evidence_file *fl = &b.files[i];

		for (size_t pos = 0; pos < fl->len; pos++) {
			fl->data[pos] ^= 0x20;
			assert_false(verify(&b, &f, 1, &r));
			if (strcmp(r.file, fl->name) != 0)
				fail_msg("byte %zu of %s: blamed %s: %s", pos, fl->name, r.file, r.error);
			fl->data[pos] ^= 0x20;
		}
	}
	assert_true(verify(&b, &f, 1, &r));
	write_seed(&b);
	evidence_free(&b);
	fixture_free(&f);
}

static void
test_verify_refusals(void **state)
{
	struct fixture f, g;
	struct evidence_bundle b, c;
	struct evidence_report r;

	(void)state;
	fixture_init(&f, EVIDENCE_SEAL_METHOD, 0, NULL);
	make_bundle(&f, &b, 0);
	/* another trusted key */
	fixture_init(&g, EVIDENCE_SEAL_METHOD, 0, NULL);
	assert_false(verify(&b, &g, 1, &r));
	assert_string_equal(r.file, "vkey");
	fixture_free(&g);
	/* an added file */
	assert_int_equal(evidence_add(&b, "keys/k-v1.pem", "k", 1), 0);
	assert_false(verify(&b, &f, 1, &r));
	assert_string_equal(r.file, "keys/k-v1.pem");
	assert_non_null(strstr(r.error, "not listed"));
	/* a missing one */
	evidence_init(&c);
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(b.files[i].name, "certs/ca-x.pem") != 0 &&
		    strcmp(b.files[i].name, "keys/k-v1.pem") != 0)
			assert_int_equal(evidence_add(&c, b.files[i].name, b.files[i].data,
			    b.files[i].len), 0);
	assert_false(verify(&c, &f, 1, &r));
	assert_string_equal(r.file, "certs/ca-x.pem");
	evidence_free(&c);
	evidence_free(&b);
	fixture_free(&f);

	/* the seal of another method, with a valid proof */
	fixture_init(&f, "boltseal.v1.KeyService/Sign", 0, NULL);
	make_bundle(&f, &b, 0);
	assert_false(verify(&b, &f, 1, &r));
	assert_string_equal(r.file, "seal.json");
	evidence_free(&b);
	fixture_free(&f);
	/* a gap in a window without a vehicle (records 1, 3) */
	fixture_init(&f, EVIDENCE_SEAL_METHOD, 1, NULL);
	make_bundle(&f, &b, 1);
	assert_false(verify(&b, &f, 1, &r));
	assert_string_equal(r.file, "records.jsonl");
	evidence_free(&b);
	fixture_free(&f);
	/* a record stamped after the window */
	fixture_init(&f, EVIDENCE_SEAL_METHOD, 0, "2026-12-01T10:00:06.000Z");
	make_bundle(&f, &b, 0);
	assert_false(verify(&b, &f, 1, &r));
	assert_string_equal(r.file, "records.jsonl");
	assert_non_null(strstr(r.error, "outside the sealed window"));
	evidence_free(&b);
	fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_manifest_and_tar),
		cmocka_unit_test(test_reader_refusals),
		cmocka_unit_test(test_verify_good_and_flips),
		cmocka_unit_test(test_verify_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
