/*
 * test_audit_verify.c - unit tests for src/audit/audit_verify.c, the
 * offline verifier behind `boltseal audit verify`.
 *
 * A 40-record log is written in a mkdtemp directory in the daemon's exact
 * line format (serialised here, with a correct seq/prev chain and varied
 * fields: nulls, numbers, escapes, raw UTF-8, payload lists), plus
 * checkpoints at sizes 10, 25 and 40 signed with an Ed25519 key made with
 * OpenSSL. Then: the clean log verifies; for EVERY record k, a byte flipped
 * inside a string value, a byte flip that breaks the JSON, a hex digit of
 * k's prev changed, record k deleted, records k and k+1 swapped, and the
 * log cut to k records are each reported at exactly record k; a torn last
 * line; a flipped signature byte, a checkpoint of another key, a wrong
 * origin and a file name that disagrees with the note are reported as bad
 * checkpoints; an edit of the last record is caught by the checkpoint that
 * covers it (and, as documented, not without one); a chain rewritten after
 * an edit is caught by the next checkpoint; plus the JSON checker alone and
 * the errors when the verification cannot run.
 *
 * Trust and coverage (issue 8): the records after the newest valid
 * checkpoint (the uncovered tail; every record when there is no
 * checkpoint) fail the verification unless allowed; a pinned checkpoint
 * the log must extend; the rewrite of the finding (checkpoints deleted,
 * record 10 edited, records deleted, the chain recomputed) fails; a key
 * file inside the directory is refused as a trust source; a replaced
 * <dir>/vkey is reported and never used; the daemon's start-up check
 * (audit_verify_startup) with one or several keys of the audit key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/audit_verify.h"
#include "formats/merkle.h"
#include "formats/signed_note.h"

#define NREC 40
#define ORIGIN "boltseal.test/audit"
#define LINE_CAP 2048

struct fx {
	char dir[64];
	char log[128];
	char cpdir[128];
	char *line[NREC];
	size_t len[NREC];
	EVP_PKEY *key, *other;
	uint8_t pub[32], other_pub[32];
	struct note_verifier v, other_v;
	char vk[NOTE_VKEY_MAX], other_vk[NOTE_VKEY_MAX];
};

static struct fx F;

/* verify(): the records after the last checkpoint accepted (tests reset it to 0) */
static uint64_t allow;

static const uint64_t cp_sizes[] = { 10, 25, 40 };

/* ---- building the log -------------------------------------------------------- */

static void
hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* JSON string value or null (v is already JSON-escaped). */
static const char *
js(char *buf, size_t cap, const char *v)
{
	if (v == NULL)
		return "null";
	snprintf(buf, cap, "\"%s\"", v);
	return buf;
}

/* Serialises record i as auditlog.c's serialize() does (no newline). */
static size_t
make_line(char *out, size_t cap, uint64_t i, const uint8_t prev[32])
{
	static const char *const types[] = { "rpc", "start", "stop", "reload", "recovery", "key" };
	static const char *const results[] = { "OK", "PERMISSION_DENIED", "UNAVAILABLE",
		"INVALID_ARGUMENT" };
	char ph[65], ts[40], rid[40], cert[65], kv[24], pay[200], b[8][300];
	const char *type = types[i % 6];
	int rpc = strcmp(type, "rpc") == 0;
	uint8_t c[32];
	int n;

	hex(prev, 32, ph);
	snprintf(ts, sizeof(ts), "2026-11-21T04:%02u:%02u.%03uZ", (unsigned)(i / 60),
	    (unsigned)(i % 60), (unsigned)(i * 37 % 1000));
	snprintf(rid, sizeof(rid), "req-%04u", (unsigned)i);
	memset(c, (int)i, sizeof(c));
	hex(c, 32, cert);
	if (i % 3 == 0)
		snprintf(kv, sizeof(kv), "%u", (unsigned)(i + 1));
	else
		snprintf(kv, sizeof(kv), "null");
	pay[0] = '\0';
	for (uint64_t k = 0; k < i % 3; k++) {
		char h[65];

		memset(c, (int)(i * 7 + k), sizeof(c));
		hex(c, 32, h);
		snprintf(pay + strlen(pay), sizeof(pay) - strlen(pay), "%s\"%s\"", k ? "," : "", h);
	}
	n = snprintf(out, cap,
	    "{\"seq\":%u,\"prev\":\"%s\",\"timestamp\":\"%s\",\"type\":\"%s\",\"request_id\":%s,"
	    "\"principal_id\":%s,\"identity\":%s,\"cert_sha256\":%s,\"method\":%s,\"key\":%s,"
	    "\"key_version\":%s,\"target\":%s,\"result\":%s,\"reason\":%s,\"event\":%s,"
	    "\"payload_sha256\":[%s]}",
	    (unsigned)i, ph, ts, type, js(b[0], 300, rpc ? rid : NULL),
	    js(b[1], 300, rpc ? "ci-ota-release" : NULL),
	    js(b[2], 300, rpc ? "spiffe://fleet.example/ci/ota-release" : NULL),
	    rpc ? js(b[3], 300, cert) : "null",
	    js(b[4], 300, rpc ? "boltseal.v1.KeyService/Sign" : NULL),
	    js(b[5], 300, i % 2 ? "release-2026" : NULL), kv, js(b[6], 300, NULL),
	    js(b[7], 300, results[i % 4]),
	    i % 5 == 0 ? "\"quote \\\" backslash \\\\ newline \\n caf\xc3\xa9 \\u0001\"" : "null",
	    i % 6 == 1 ? "\"start\"" : "null", pay);
	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* Sets record i's prev field (at its fixed offset) to hex(prev). */
static void
set_prev(char *line, const uint8_t prev[32])
{
	char *p = strstr(line, "\"prev\":\"");
	char h[65];

	assert_non_null(p);
	hex(prev, 32, h);
	memcpy(p + 8, h, 64);
}

static void
ed_sign(EVP_PKEY *k, const uint8_t *m, size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t sl = 64;

	assert_non_null(c);
	assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &sl, m, n), 1);
	assert_int_equal(sl, 64);
	EVP_MD_CTX_free(c);
}

static EVP_PKEY *
ed_key(uint8_t pub[32])
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	size_t pl = 32;

	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &pl), 1);
	assert_int_equal(pl, 32);
	return k;
}

/* Root of the first size records of the original log. */
static void
orig_root(uint64_t size, uint8_t root[32])
{
	struct merkle_tree *t = merkle_tree_new();
	uint8_t leaf[32];

	assert_non_null(t);
	for (uint64_t i = 0; i < size; i++) {
		merkle_leaf_hash((const uint8_t *)F.line[i], F.len[i], leaf);
		assert_int_equal(merkle_tree_append(t, leaf), 0);
	}
	assert_int_equal(merkle_tree_root(t, size, root), 0);
	merkle_tree_free(t);
}

/*
 * The checkpoint note of the original log's first size records: body
 * origin `origin`, signed by key under key name `name`, into note (cap
 * bytes); returns its length. flip_sig: flip one base64 character of the
 * signature.
 */
static size_t
make_note(uint64_t size, const char *origin, const char *name, EVP_PKEY *key,
    const uint8_t pub[32], int flip_sig, char *note, size_t cap)
{
	char body[CHECKPOINT_BODY_MAX], sl[NOTE_SIG_LINE_MAX];
	uint8_t root[32], sig[64], id[4];
	size_t blen, nlen;

	orig_root(size, root);
	assert_int_equal(checkpoint_body_format(origin, size, root, body, sizeof(body), &blen), 0);
	ed_sign(key, (const uint8_t *)body, blen, sig);
	assert_int_equal(note_key_id_ed25519(name, pub, id), 0);
	assert_int_equal(note_signature_line(name, id, sig, sl, sizeof(sl)), 0);
	nlen = (size_t)snprintf(note, cap, "%s\n%s", body, sl);
	assert_true(nlen < cap);
	if (flip_sig) {
		/* a character in the middle of the signature's base64 (past the key id) */
		char *p = note + nlen - 1 - 40;

		*p = *p == 'A' ? 'B' : 'A';
	}
	return nlen;
}

/* Writes make_note(size, ...) as file <file_size>.note. */
static void
write_cp(uint64_t size, uint64_t file_size, const char *origin, const char *name, EVP_PKEY *key,
    const uint8_t pub[32], int flip_sig)
{
	char path[256], note[1024];
	size_t nlen = make_note(size, origin, name, key, pub, flip_sig, note, sizeof(note));
	FILE *f;

	snprintf(path, sizeof(path), "%s/%020llu.note", F.cpdir, (unsigned long long)file_size);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(note, 1, nlen, f), nlen);
	assert_int_equal(fclose(f), 0);
}

static void
clear_cps(void)
{
	DIR *d = opendir(F.cpdir);
	struct dirent *de;
	char path[512];

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", F.cpdir, de->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
}

static void
std_cps(void)
{
	clear_cps();
	for (size_t i = 0; i < sizeof(cp_sizes) / sizeof(cp_sizes[0]); i++)
		write_cp(cp_sizes[i], cp_sizes[i], ORIGIN, ORIGIN, F.key, F.pub, 0);
}

/* A log being built for one case: borrowed or owned line copies. */
struct log {
	char *l[NREC + 1];
	size_t n;
};

static void
log_orig(struct log *g)
{
	for (size_t i = 0; i < NREC; i++)
		g->l[i] = strdup(F.line[i]);
	g->n = NREC;
}

static void
log_free(struct log *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->l[i]);
	g->n = 0;
}

static void
log_delete(struct log *g, size_t k)
{
	free(g->l[k]);
	memmove(&g->l[k], &g->l[k + 1], (g->n - k - 1) * sizeof(g->l[0]));
	g->n--;
}

/* Writes the lines; the last one without "\n" if torn. */
static void
log_write(const struct log *g, int torn)
{
	FILE *f = fopen(F.log, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < g->n; i++) {
		size_t n = strlen(g->l[i]);

		assert_int_equal(fwrite(g->l[i], 1, n, f), n);
		if (!(torn && i + 1 == g->n))
			assert_int_equal(fputc('\n', f), '\n');
	}
	assert_int_equal(fclose(f), 0);
}

static void
verify(struct audit_verify_report *rep)
{
	struct audit_verify_opts o;

	memset(&o, 0, sizeof(o));
	o.max_uncovered = allow;
	assert_int_equal(audit_verify_dir(F.dir, &F.v, 1, &o, rep), 0);
}

/* Writes g, verifies, and asserts the first bad record is want (message contains sub). */
static void
expect_bad(const struct log *g, int torn, int64_t want, const char *sub)
{
	struct audit_verify_report rep;

	log_write(g, torn);
	verify(&rep);
	if (rep.ok || rep.first_bad_record != want || (sub != NULL && strstr(rep.error, sub) == NULL))
		print_error("want record %lld (%s), got ok=%d record %lld: %s\n", (long long)want,
		    sub != NULL ? sub : "", rep.ok, (long long)rep.first_bad_record, rep.error);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, want);
	if (sub != NULL)
		assert_non_null(strstr(rep.error, sub));
}

/* Pointer to the first byte of the value of "name": in line. */
static char *
field(char *line, const char *name)
{
	char pat[64];
	char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", name);
	p = strstr(line, pat);
	assert_non_null(p);
	return p + strlen(pat);
}

/* Changes one lower-case hex digit into another. */
static void
flip_hex(char *p)
{
	*p = *p == '0' ? '1' : '0';
}

/* ---- setup --------------------------------------------------------------------- */

static int
setup(void **state)
{
	uint8_t prev[32] = { 0 };
	char buf[LINE_CAP], path[128];
	FILE *f;

	(void)state;
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/bs-audit-verify-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	snprintf(F.log, sizeof(F.log), "%s/audit.jsonl", F.dir);
	snprintf(F.cpdir, sizeof(F.cpdir), "%s/checkpoints", F.dir);
	if (mkdir(F.cpdir, 0700) != 0)
		return -1;
	for (uint64_t i = 0; i < NREC; i++) {
		F.len[i] = make_line(buf, sizeof(buf), i, prev);
		F.line[i] = strdup(buf);
		if (F.line[i] == NULL)
			return -1;
		merkle_leaf_hash((const uint8_t *)buf, F.len[i], prev);
	}
	F.key = ed_key(F.pub);
	F.other = ed_key(F.other_pub);
	if (note_vkey_format(ORIGIN, F.pub, F.vk, sizeof(F.vk)) != 0 ||
	    note_vkey_parse(F.vk, &F.v) != 0 ||
	    note_vkey_format(ORIGIN, F.other_pub, F.other_vk, sizeof(F.other_vk)) != 0 ||
	    note_vkey_parse(F.other_vk, &F.other_v) != 0)
		return -1;
	/* the daemon's vkey file, for trying the CLI by hand on a kept directory */
	snprintf(path, sizeof(path), "%s/vkey", F.dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "%s\n", F.vk);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	char path[128];

	(void)state;
	clear_cps();
	rmdir(F.cpdir);
	unlink(F.log);
	snprintf(path, sizeof(path), "%s/vkey", F.dir);
	unlink(path);
	rmdir(F.dir);
	for (size_t i = 0; i < NREC; i++)
		free(F.line[i]);
	EVP_PKEY_free(F.key);
	EVP_PKEY_free(F.other);
	return 0;
}

/* ---- tests ---------------------------------------------------------------------- */

static void
test_clean(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	std_cps();
	log_orig(&g);
	log_write(&g, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.records, NREC);
	assert_int_equal(rep.checkpoints, 3);
	assert_int_equal(rep.latest_size, 40);
	assert_int_equal(rep.first_bad_record, -1);
	assert_int_equal(rep.has_bad_checkpoint, 0);
	assert_string_equal(rep.error, "");

	assert_int_equal(rep.covered, 40);
	assert_int_equal(rep.uncovered, 0);
	assert_int_equal(rep.tail_refused, 0);

	/* no checkpoint at all: the chain alone proves nothing (test_no_checkpoint) */
	clear_cps();
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(rep.checkpoints, 0);
	assert_int_equal(rep.latest_size, 0);

	/* an empty log with no checkpoint is valid; .tmp and other names are ignored */
	g.n = 0;
	log_write(&g, 0);
	g.n = NREC;
	write_cp(10, 10, ORIGIN, ORIGIN, F.key, F.pub, 0);
	{
		char from[256], to[256];

		snprintf(from, sizeof(from), "%s/%020d.note", F.cpdir, 10);
		snprintf(to, sizeof(to), "%s/%020d.note.tmp", F.cpdir, 10);
		assert_int_equal(rename(from, to), 0);
	}
	verify(&rep);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.records, 0);
	assert_int_equal(rep.checkpoints, 0);
	assert_int_equal(rep.uncovered, 0);
	log_free(&g);
}

static void
test_flip_string_byte(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k < NREC; k++) {
		struct log g;
		char *p;

		log_orig(&g);
		/* first digit of the year inside the timestamp string: JSON stays valid */
		p = field(g.l[k], "timestamp");
		assert_int_equal(p[1], '2');
		p[1] = '3';
		expect_bad(&g, 0, (int64_t)k, NULL);
		log_free(&g);

		/* a byte of the result string */
		log_orig(&g);
		p = field(g.l[k], "result");
		p[1] ^= 0x20;           /* 'O' -> 'o', 'P' -> 'p', ... */
		expect_bad(&g, 0, (int64_t)k, NULL);
		log_free(&g);
	}
}

static void
test_flip_breaks_json(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k < NREC; k++) {
		struct log g;
		char *p;

		log_orig(&g);
		p = field(g.l[k], "type");
		p[-1] = '=';            /* "type"= */
		expect_bad(&g, 0, (int64_t)k, "JSON");
		log_free(&g);

		/* the closing brace */
		log_orig(&g);
		g.l[k][strlen(g.l[k]) - 1] = ']';
		expect_bad(&g, 0, (int64_t)k, "'}'");
		log_free(&g);

		/* a raw control character and an invalid UTF-8 byte in a string */
		log_orig(&g);
		field(g.l[k], "timestamp")[5] = '\x01';
		expect_bad(&g, 0, (int64_t)k, "control character 0x01");
		log_free(&g);
		log_orig(&g);
		field(g.l[k], "timestamp")[5] = '\xff';
		expect_bad(&g, 0, (int64_t)k, "UTF-8");
		log_free(&g);

		/* the seq digits and the prefix */
		log_orig(&g);
		g.l[k][2] = 'S';        /* {"Seq": */
		expect_bad(&g, 0, (int64_t)k, "does not start with");
		log_free(&g);
	}
}

static void
test_flip_prev(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k < NREC; k++) {
		struct log g;
		char *p;

		log_orig(&g);
		p = field(g.l[k], "prev") + 1 + 10;     /* a hex digit of the prev value */
		flip_hex(p);
		expect_bad(&g, 0, (int64_t)k, "prev");
		log_free(&g);

		/* an upper-case hex digit is not the daemon's format either */
		log_orig(&g);
		p = field(g.l[k], "prev") + 1 + 20;
		*p = 'A';
		expect_bad(&g, 0, (int64_t)k, NULL);
		log_free(&g);
	}
}

static void
test_delete(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k < NREC; k++) {
		struct log g;

		log_orig(&g);
		log_delete(&g, k);
		expect_bad(&g, 0, (int64_t)k, k + 1 < NREC ? "missing or out of order" :
		    "log truncated");
		log_free(&g);
	}
}

static void
test_swap(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k + 1 < NREC; k++) {
		struct log g;
		char *t;

		log_orig(&g);
		t = g.l[k];
		g.l[k] = g.l[k + 1];
		g.l[k + 1] = t;
		expect_bad(&g, 0, (int64_t)k, "missing or out of order");
		log_free(&g);
	}
	/* a record moved far down */
	{
		struct log g;
		char *t;

		log_orig(&g);
		t = g.l[3];
		memmove(&g.l[3], &g.l[4], 30 * sizeof(g.l[0]));
		g.l[33] = t;
		expect_bad(&g, 0, 3, "found seq 4");
		log_free(&g);
	}
}

static void
test_truncate(void **state)
{
	(void)state;
	std_cps();
	for (size_t k = 0; k < NREC; k++) {
		struct log g;

		log_orig(&g);
		while (g.n > k)
			log_delete(&g, g.n - 1);
		expect_bad(&g, 0, (int64_t)k, "log truncated: checkpoint");
		log_free(&g);
	}
}

/* Appends n zeros, then tail (may be NULL), to the log file. */
static void
log_append_zeros(size_t n, const char *tail)
{
	FILE *f = fopen(F.log, "ab");

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fputc(0, f), 0);
	if (tail != NULL)
		assert_int_equal(fputs(tail, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A running daemon's log: its records, then the zeros it preallocated. */
static void
test_zero_tail(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	std_cps();
	log_orig(&g);
	log_write(&g, 0);
	log_append_zeros(3 * (256 * 1024) + 17, NULL);   /* past the verifier's 256 KiB reads */
	verify(&rep);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.records, NREC);

	/* anything but zeros after them is reported after the last record */
	log_write(&g, 0);
	log_append_zeros(100, "{\"seq\":40}\n");
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, NREC);
	assert_non_null(strstr(rep.error, "bytes other than zeros after the records"));

	/* the same far past the first read */
	log_write(&g, 0);
	log_append_zeros(2 * (256 * 1024), "x");
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, NREC);

	/* a record torn among the zeros is a bad record at its index */
	log_write(&g, 0);
	{
		FILE *f = fopen(F.log, "ab");

		assert_non_null(f);
		assert_int_equal(fputs("{\"seq\":40,\"prev\":\"01", f) >= 0, 1);
		assert_int_equal(fclose(f), 0);
	}
	log_append_zeros(50, NULL);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, NREC);
	log_free(&g);
}

static void
test_torn(void **state)
{
	struct log g;

	(void)state;
	std_cps();
	/* the last line lost its newline */
	log_orig(&g);
	expect_bad(&g, 1, NREC - 1, "torn last record (no newline)");
	log_free(&g);

	/* a half-written 41st line */
	log_orig(&g);
	g.l[NREC] = strdup("{\"seq\":40,\"prev\":\"0123");
	g.n = NREC + 1;
	expect_bad(&g, 1, NREC, "torn last record (no newline)");
	log_free(&g);

	/* a torn line below a checkpoint: the record problem is at the same index */
	clear_cps();
	write_cp(10, 10, ORIGIN, ORIGIN, F.key, F.pub, 0);
	log_orig(&g);
	while (g.n > 5)
		log_delete(&g, g.n - 1);
	expect_bad(&g, 1, 4, "torn");
	log_free(&g);
}

static void
test_bad_checkpoints(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	log_orig(&g);
	log_write(&g, 0);

	/* a flipped signature byte */
	std_cps();
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 1);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, -1);
	assert_int_equal(rep.has_bad_checkpoint, 1);
	assert_int_equal(rep.bad_checkpoint, 25);
	assert_non_null(strstr(rep.error, "does not verify"));
	assert_int_equal(rep.latest_size, 40);

	/* signed by another key with the same name */
	std_cps();
	write_cp(10, 10, ORIGIN, ORIGIN, F.other, F.other_pub, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.has_bad_checkpoint, 1);
	assert_int_equal(rep.bad_checkpoint, 10);
	assert_int_equal(rep.first_bad_record, -1);
	assert_non_null(strstr(rep.error, "no known signer"));

	/* a well-signed note whose body names another origin */
	std_cps();
	write_cp(40, 40, "other.example/log", ORIGIN, F.key, F.pub, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.bad_checkpoint, 40);
	assert_non_null(strstr(rep.error, "origin"));
	assert_int_equal(rep.latest_size, 25);

	/* the note of size 25 stored under the name of size 26 */
	std_cps();
	write_cp(25, 26, ORIGIN, ORIGIN, F.key, F.pub, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.bad_checkpoint, 26);
	assert_non_null(strstr(rep.error, "file name"));

	/* garbage */
	std_cps();
	{
		char path[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%020d.note", F.cpdir, 30);
		f = fopen(path, "wb");
		assert_non_null(f);
		fputs("not a note\n", f);
		fclose(f);
	}
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.bad_checkpoint, 30);
	assert_int_equal(rep.checkpoints, 4);

	/* a record problem is reported first, the bad checkpoint is still flagged */
	std_cps();
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 1);
	field(g.l[7], "timestamp")[1] = '3';
	expect_bad(&g, 0, 7, NULL);
	verify(&rep);
	assert_int_equal(rep.has_bad_checkpoint, 1);
	assert_int_equal(rep.bad_checkpoint, 25);
	log_free(&g);
}

static void
test_last_record(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	/* only a checkpoint covering it can catch an edit of the last record */
	clear_cps();
	write_cp(40, 40, ORIGIN, ORIGIN, F.key, F.pub, 0);
	log_orig(&g);
	field(g.l[NREC - 1], "timestamp")[1] = '3';
	expect_bad(&g, 0, NREC - 1, "does not match checkpoint 40");
	log_free(&g);

	/* its prev field: the checkpoint vouches for record 38, so 39 is the bad one */
	log_orig(&g);
	flip_hex(field(g.l[NREC - 1], "prev") + 5);
	expect_bad(&g, 0, NREC - 1, "prev field was changed");
	log_free(&g);

	/* record 38 changed: the checkpoint matches record 39's prev as 38's original hash */
	log_orig(&g);
	field(g.l[NREC - 2], "timestamp")[1] = '3';
	expect_bad(&g, 0, NREC - 2, "record 38 was changed");
	log_free(&g);

	/* without a checkpoint covering it, as documented: undetectable edit of the last record */
	clear_cps();
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 0);
	log_orig(&g);
	field(g.l[NREC - 1], "timestamp")[1] = '3';
	log_write(&g, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);            /* strict: records 25..39 are not covered */
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(rep.first_bad_record, 25);
	allow = NREC - 25;                      /* accepted: then the edit goes unseen */
	verify(&rep);
	allow = 0;
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.uncovered, NREC - 25);
	log_free(&g);
	/* and a changed prev of the last record cannot be told from an edit of 38 */
	log_orig(&g);
	flip_hex(field(g.l[NREC - 1], "prev") + 5);
	expect_bad(&g, 0, NREC - 2, "to tell which");
	log_free(&g);
}

static void
test_rewritten_chain(void **state)
{
	struct log g;
	uint8_t leaf[32];

	(void)state;
	std_cps();
	/* record 20 edited and every later prev recomputed: only checkpoint 25 sees it */
	log_orig(&g);
	field(g.l[20], "timestamp")[1] = '3';
	for (size_t i = 21; i < NREC; i++) {
		merkle_leaf_hash((const uint8_t *)g.l[i - 1], strlen(g.l[i - 1]), leaf);
		set_prev(g.l[i], leaf);
	}
	expect_bad(&g, 0, 10, "rewritten");
	log_free(&g);

	/* the same below the first checkpoint: nothing before it is vouched for */
	log_orig(&g);
	field(g.l[3], "timestamp")[1] = '3';
	for (size_t i = 4; i < NREC; i++) {
		merkle_leaf_hash((const uint8_t *)g.l[i - 1], strlen(g.l[i - 1]), leaf);
		set_prev(g.l[i], leaf);
	}
	expect_bad(&g, 0, 0, "rewritten");
	log_free(&g);
}

static void
test_json_checker(void **state)
{
	static const char *const good[] = {
		"{}", "[]", "{\"a\":1}", " { \"a\" : [ 1 , -2.5e+3 , 0 , 0.0 , 1E9 ] } ",
		"{\"a\":{\"b\":[true,false,null,\"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]}}",
		"\"caf\xc3\xa9\"", "0", "-0", "[[[[]]]]", "{\"\":\"\"}",
	};
	static const char *const bad[] = {
		"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{a:1}", "{'a':1}",
		"01", "1.", ".5", "1e", "-", "+1", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12g4\"",
		"{\"a\":1}x", "{\"a\":1}{}", "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"", "{\"a\":1 \"b\":2}", "[1 2]", "NaN", "{\"a\":true false}",
	};
	char deep[200];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!audit_verify_json_valid((const uint8_t *)good[i], strlen(good[i])))
			print_error("rejected: %s\n", good[i]);
		assert_true(audit_verify_json_valid((const uint8_t *)good[i], strlen(good[i])));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (audit_verify_json_valid((const uint8_t *)bad[i], strlen(bad[i])))
			print_error("accepted: %s\n", bad[i]);
		assert_false(audit_verify_json_valid((const uint8_t *)bad[i], strlen(bad[i])));
	}
	/* an embedded NUL is not JSON */
	assert_false(audit_verify_json_valid((const uint8_t *)"{\"a\":\"\0\"}", 9));
	/* nesting: 64 levels accepted, 65 refused */
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	assert_true(audit_verify_json_valid((const uint8_t *)deep, 128));
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	assert_false(audit_verify_json_valid((const uint8_t *)deep, 130));
	/* every line of the generated log is valid */
	for (size_t i = 0; i < NREC; i++)
		assert_true(audit_verify_json_valid((const uint8_t *)F.line[i], F.len[i]));
}

static void
test_cannot_run(void **state)
{
	struct audit_verify_report rep;
	char missing[160];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/nope", F.dir);
	assert_int_equal(audit_verify_dir(missing, &F.v, 1, NULL, &rep), BS_ERR_IO);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, -1);
	assert_non_null(strstr(rep.error, "audit.jsonl"));
	/* a trusted key is required: there is no default (never <dir>/vkey) */
	assert_int_equal(audit_verify_dir(F.dir, NULL, 1, NULL, &rep), BS_ERR_INVALID);
	assert_int_equal(audit_verify_dir(F.dir, &F.v, 0, NULL, &rep), BS_ERR_INVALID);
	assert_int_equal(audit_verify_dir(F.dir, &F.v, AUDIT_VERIFY_MAX_KEYS + 1, NULL, &rep),
	    BS_ERR_INVALID);
	assert_int_equal(audit_verify_dir(F.dir, &F.v, 1, NULL, NULL), BS_ERR_INVALID);
	assert_int_equal(audit_verify_files(F.log, F.cpdir, &F.v, 1, NULL, NULL), BS_ERR_INVALID);
}

static void
test_seq_format(void **state)
{
	struct log g;
	char buf[LINE_CAP];

	(void)state;
	std_cps();
	/* seq written with a leading zero */
	log_orig(&g);
	snprintf(buf, sizeof(buf), "{\"seq\":05%s", g.l[5] + strlen("{\"seq\":5"));
	free(g.l[5]);
	g.l[5] = strdup(buf);
	expect_bad(&g, 0, 5, "does not start with");
	log_free(&g);

	/* an empty line */
	log_orig(&g);
	free(g.l[12]);
	g.l[12] = strdup("");
	expect_bad(&g, 0, 12, NULL);
	log_free(&g);

	/* a duplicated record */
	log_orig(&g);
	free(g.l[NREC - 1]);
	g.l[NREC - 1] = strdup(g.l[NREC - 2]);
	expect_bad(&g, 0, NREC - 1, "found seq 38");
	log_free(&g);
}

/* ---- trust and coverage (issue 8) ------------------------------------------------ */

/* Deletes records [from, from + count) of g (a plain loop: see log_delete). */
static void
log_cut(struct log *g, size_t from, size_t count)
{
	for (size_t i = from; i < from + count; i++)
		free(g->l[i]);
	for (size_t i = from; i + count < g->n; i++)
		g->l[i] = g->l[i + count];
	g->n -= count;
}

/* Rewrites every line's seq and prev so that g is a well-chained log again. */
static void
rechain(struct log *g)
{
	uint8_t prev[32] = { 0 };
	char buf[LINE_CAP], h[65];

	for (size_t i = 0; i < g->n; i++) {
		const char *rest = strstr(g->l[i], ",\"timestamp\"");

		assert_non_null(rest);
		hex(prev, 32, h);
		snprintf(buf, sizeof(buf), "{\"seq\":%u,\"prev\":\"%s\"%s", (unsigned)i, h, rest);
		free(g->l[i]);
		g->l[i] = strdup(buf);
		assert_non_null(g->l[i]);
		merkle_leaf_hash((const uint8_t *)buf, strlen(buf), prev);
	}
}

static void
test_no_checkpoint(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	clear_cps();
	log_orig(&g);
	log_write(&g, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(rep.first_bad_record, 0);
	assert_int_equal(rep.covered, 0);
	assert_int_equal(rep.uncovered, NREC);
	assert_non_null(strstr(rep.error, "no checkpoint: none of the 40 records"));
	/* one short of the allowance still fails; the whole log allowed passes */
	allow = NREC - 1;
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_non_null(strstr(rep.error, "at most 39"));
	allow = NREC;
	verify(&rep);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.uncovered, NREC);
	allow = 0;
	/* checkpoints/ deleted altogether: the same */
	assert_int_equal(rmdir(F.cpdir), 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(mkdir(F.cpdir, 0700), 0);
	log_free(&g);
}

static void
test_uncovered_tail(void **state)
{
	struct audit_verify_report rep;
	struct log g;

	(void)state;
	clear_cps();
	write_cp(10, 10, ORIGIN, ORIGIN, F.key, F.pub, 0);
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 0);
	log_orig(&g);
	log_write(&g, 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(rep.first_bad_record, 25);
	assert_int_equal(rep.covered, 25);
	assert_int_equal(rep.uncovered, 15);
	assert_non_null(strstr(rep.error, "15 records after the last checkpoint (25) are not "
	    "covered by a signature (records 25 to 39; at most 0"));
	allow = 14;
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	allow = 15;
	verify(&rep);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.uncovered, 15);
	assert_string_equal(rep.error, "");
	allow = 0;

	/* a record problem below the tail is the finding, not the tail */
	field(g.l[3], "timestamp")[1] = '3';
	expect_bad(&g, 0, 3, NULL);
	verify(&rep);
	assert_int_equal(rep.tail_refused, 0);
	assert_int_equal(rep.covered, 0);       /* neither checkpoint matches the edited log */
	assert_int_equal(rep.uncovered, NREC);
	log_free(&g);

	/* a bad checkpoint does not count as covering: 40 is forged, so 25..39 are the tail */
	write_cp(40, 40, ORIGIN, ORIGIN, F.key, F.pub, 1);
	log_orig(&g);
	log_write(&g, 0);
	allow = 15;
	verify(&rep);
	allow = 0;
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.has_bad_checkpoint, 1);
	assert_int_equal(rep.covered, 25);
	log_free(&g);
}

static void
verify_pinned(const char *note, size_t len, struct audit_verify_report *rep, int want_rc)
{
	struct audit_verify_opts o;

	memset(&o, 0, sizeof(o));
	o.max_uncovered = allow;
	o.pinned = (const uint8_t *)note;
	o.pinned_len = len;
	assert_int_equal(audit_verify_dir(F.dir, &F.v, 1, &o, rep), want_rc);
}

static void
test_pinned(void **state)
{
	struct audit_verify_report rep;
	struct log g;
	char note[1024];
	size_t n;

	(void)state;
	std_cps();
	log_orig(&g);
	log_write(&g, 0);

	/* consistent: the log extends the pinned checkpoint */
	n = make_note(25, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.pinned, 1);
	assert_int_equal(rep.pinned_size, 25);
	assert_int_equal(rep.checkpoints, 3);   /* files only */

	/* with checkpoints/ emptied the pinned one alone covers its records */
	clear_cps();
	n = make_note(NREC, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 1);
	assert_int_equal(rep.covered, NREC);
	n = make_note(30, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.tail_refused, 1);
	assert_int_equal(rep.first_bad_record, 30);

	/* inconsistent: the log was cut below the pinned size */
	write_cp(10, 10, ORIGIN, ORIGIN, F.key, F.pub, 0);
	while (g.n > 30)
		log_delete(&g, g.n - 1);
	log_write(&g, 0);
	n = make_note(NREC, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, 30);
	assert_non_null(strstr(rep.error, "log truncated: pinned checkpoint 40"));
	log_free(&g);

	/* inconsistent: record 12 edited and the chain recomputed; no file checkpoint sees it */
	log_orig(&g);
	field(g.l[12], "timestamp")[1] = '3';
	rechain(&g);
	log_write(&g, 0);
	allow = NREC;
	verify(&rep);
	assert_int_equal(rep.ok, 1);            /* only checkpoint 10: below the edit */
	n = make_note(25, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	allow = 0;
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.first_bad_record, 10);
	assert_non_null(strstr(rep.error, "pinned checkpoint 25"));
	assert_non_null(strstr(rep.error, "rewritten"));
	log_free(&g);

	/* a pinned note the trusted key did not sign: the verification does not run */
	log_orig(&g);
	log_write(&g, 0);
	n = make_note(25, ORIGIN, ORIGIN, F.other, F.other_pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, BS_ERR_NOT_FOUND);
	assert_int_equal(rep.ok, 0);
	assert_non_null(strstr(rep.error, "pinned checkpoint does not verify"));
	assert_non_null(strstr(rep.error, "no known signer"));
	n = make_note(25, ORIGIN, ORIGIN, F.key, F.pub, 1, note, sizeof(note));
	verify_pinned(note, n, &rep, BS_ERR_SIG_INVALID);
	assert_int_equal(rep.ok, 0);
	n = make_note(25, "other.example/log", ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, BS_ERR_INVALID);
	assert_non_null(strstr(rep.error, "origin"));
	verify_pinned("not a note\n", 11, &rep, BS_ERR_INVALID);
	log_free(&g);
}

/*
 * The finding of issue 8: checkpoints/ deleted, record 10 edited, records
 * 20..29 deleted (of 40 here; 20..99 in the issue) and the chain
 * recomputed. The result is a well-formed chain, and must not verify.
 */
static void
test_rewrite_finding(void **state)
{
	struct audit_verify_report rep;
	struct log g;
	char note[1024];
	size_t n;

	(void)state;
	log_orig(&g);
	field(g.l[10], "result")[1] ^= 0x20;
	log_cut(&g, 20, 10);
	rechain(&g);
	log_write(&g, 0);
	assert_int_equal(rmdir(F.cpdir) == 0 || errno == ENOTEMPTY, 1);
	clear_cps();
	assert_int_equal(rmdir(F.cpdir), 0);
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.records, 30);
	assert_int_equal(rep.first_bad_record, 0);
	assert_non_null(strstr(rep.error, "no checkpoint"));

	/* with the checkpoint an auditor kept: the log does not extend it */
	n = make_note(NREC, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 0);
	n = make_note(20, ORIGIN, ORIGIN, F.key, F.pub, 0, note, sizeof(note));
	verify_pinned(note, n, &rep, 0);
	assert_int_equal(rep.ok, 0);
	assert_non_null(strstr(rep.error, "pinned checkpoint 20"));
	/* with checkpoints the attacker re-signed with a key of their own: no known signer */
	assert_int_equal(mkdir(F.cpdir, 0700), 0);
	{
		/* the attacker's checkpoint of the rewritten log, signed by F.other */
		char body[CHECKPOINT_BODY_MAX], sl[NOTE_SIG_LINE_MAX], path[256];
		struct merkle_tree *t = merkle_tree_new();
		uint8_t leaf[32], root[32], sig[64], id[4];
		size_t blen;
		FILE *f;

		assert_non_null(t);
		for (size_t i = 0; i < g.n; i++) {
			merkle_leaf_hash((const uint8_t *)g.l[i], strlen(g.l[i]), leaf);
			assert_int_equal(merkle_tree_append(t, leaf), 0);
		}
		assert_int_equal(merkle_tree_root(t, g.n, root), 0);
		merkle_tree_free(t);
		assert_int_equal(checkpoint_body_format(ORIGIN, g.n, root, body, sizeof(body),
		    &blen), 0);
		ed_sign(F.other, (const uint8_t *)body, blen, sig);
		assert_int_equal(note_key_id_ed25519(ORIGIN, F.other_pub, id), 0);
		assert_int_equal(note_signature_line(ORIGIN, id, sig, sl, sizeof(sl)), 0);
		snprintf(path, sizeof(path), "%s/%020zu.note", F.cpdir, g.n);
		f = fopen(path, "wb");
		assert_non_null(f);
		fprintf(f, "%s\n%s", body, sl);
		assert_int_equal(fclose(f), 0);
	}
	verify(&rep);
	assert_int_equal(rep.ok, 0);
	assert_int_equal(rep.has_bad_checkpoint, 1);
	assert_non_null(strstr(rep.error, "no known signer"));
	/* ... which is exactly what a verifier trusting the attacker's key would accept */
	{
		struct audit_verify_opts o;

		memset(&o, 0, sizeof(o));
		assert_int_equal(audit_verify_dir(F.dir, &F.other_v, 1, &o, &rep), 0);
		assert_int_equal(rep.ok, 1);
	}
	clear_cps();
	log_free(&g);
}

/* Writes text to <F.dir>/vkey. */
static void
put_dir_vkey(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vkey", F.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
test_trust_sources(void **state)
{
	char msg[400], path[256], out[128], vkf[128];
	struct note_verifier got;
	const char *vk;
	int fd;

	(void)state;
	/* a key file inside the directory is refused as a source of trust */
	snprintf(vkf, sizeof(vkf), "%s/vkey", F.dir);
	assert_int_equal(audit_verify_path_inside(F.dir, vkf, msg, sizeof(msg)), 1);
	snprintf(path, sizeof(path), "%s/checkpoints/../vkey", F.dir);
	assert_int_equal(audit_verify_path_inside(F.dir, path, msg, sizeof(msg)), 1);
	snprintf(path, sizeof(path), "/tmp/../%s/audit.jsonl", F.dir);
	assert_int_equal(audit_verify_path_inside(F.dir, path, msg, sizeof(msg)), 1);
	assert_int_equal(audit_verify_path_inside(F.dir, F.dir, msg, sizeof(msg)), 1);
	/* the dir given through a symbolic link, and a link from outside into it */
	snprintf(out, sizeof(out), "%s.link", F.dir);
	assert_int_equal(symlink(F.dir, out), 0);
	assert_int_equal(audit_verify_path_inside(out, vkf, msg, sizeof(msg)), 1);
	assert_int_equal(unlink(out), 0);
	assert_int_equal(symlink(vkf, out), 0);
	assert_int_equal(audit_verify_path_inside(F.dir, out, msg, sizeof(msg)), 1);
	assert_int_equal(unlink(out), 0);
	/* a hard link of <dir>/vkey placed outside is the same file */
	assert_int_equal(link(vkf, out), 0);
	assert_int_equal(audit_verify_path_inside(F.dir, out, msg, sizeof(msg)), 1);
	assert_int_equal(unlink(out), 0);
	/* a copy outside is fine; a name that merely starts like the dir is outside */
	snprintf(out, sizeof(out), "%s-copy", F.dir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, F.vk, strlen(F.vk)), (ssize_t)strlen(F.vk));
	close(fd);
	assert_int_equal(audit_verify_path_inside(F.dir, out, msg, sizeof(msg)), 0);
	assert_int_equal(unlink(out), 0);
	assert_int_equal(audit_verify_path_inside(F.dir, out, msg, sizeof(msg)), BS_ERR_IO);
	assert_non_null(strstr(msg, "cannot resolve"));

	/* a vkey file's contents: one trailing newline (or CRLF), nothing else */
	vk = F.vk;
	assert_int_equal(audit_verify_vkey_parse((const uint8_t *)vk, strlen(vk), &got), 0);
	assert_memory_equal(got.pub, F.pub, 32);
	snprintf(msg, sizeof(msg), "%s\r\n", vk);
	assert_int_equal(audit_verify_vkey_parse((const uint8_t *)msg, strlen(msg), &got), 0);
	snprintf(msg, sizeof(msg), "%s\n\n", vk);
	assert_int_not_equal(audit_verify_vkey_parse((const uint8_t *)msg, strlen(msg), &got), 0);
	assert_int_not_equal(audit_verify_vkey_parse((const uint8_t *)vk, strlen(vk) + 1, &got), 0);
	assert_int_not_equal(audit_verify_vkey_parse((const uint8_t *)"", 0, &got), 0);

	/* <dir>/vkey: the trusted key, replaced, garbage, missing */
	assert_int_equal(audit_verify_dir_vkey(F.dir, &F.v, 1, msg, sizeof(msg)), 0);
	snprintf(msg, sizeof(msg), "%s\n", F.other_vk);
	put_dir_vkey(msg);
	assert_int_equal(audit_verify_dir_vkey(F.dir, &F.v, 1, msg, sizeof(msg)), BS_ERR_MISMATCH);
	assert_non_null(strstr(msg, "holds the key " ORIGIN "+"));
	assert_non_null(strstr(msg, "not the trusted key"));
	{
		/* the verification itself never reads it: the log still verifies with F.v */
		struct audit_verify_report rep;
		struct log g;

		std_cps();
		log_orig(&g);
		log_write(&g, 0);
		verify(&rep);
		assert_int_equal(rep.ok, 1);
		log_free(&g);
	}
	put_dir_vkey("garbage\n");
	assert_int_equal(audit_verify_dir_vkey(F.dir, &F.v, 1, msg, sizeof(msg)), BS_ERR_INVALID);
	assert_int_equal(unlink(vkf), 0);
	assert_int_equal(audit_verify_dir_vkey(F.dir, &F.v, 1, msg, sizeof(msg)), BS_ERR_NOT_FOUND);
	snprintf(msg, sizeof(msg), "%s\n", F.vk);
	put_dir_vkey(msg);
}

/* Leaves handed in by the daemon's log: the original lines' hashes, one of them wrong if asked. */
struct given {
	size_t calls;
	int64_t wrong;      /* index whose leaf is given wrong, -1 none */
	int refuse;         /* answer nonzero: the verifier hashes itself */
};

static int
given_leaf(void *arg, uint64_t i, uint8_t out[32])
{
	struct given *g = arg;

	g->calls++;
	if (g->refuse)
		return -1;
	merkle_leaf_hash((const uint8_t *)F.line[i], F.len[i], out);
	if ((int64_t)i == g->wrong)
		out[0] ^= 1;
	return 0;
}

/* audit_verify_startup_leaves takes the leaves it is given, and only those it is given. */
static void
test_startup_leaves(void **state)
{
	struct audit_verify_report rep;
	struct given gv = { 0, -1, 0 };
	char err[2048];
	struct log g;

	(void)state;
	std_cps();
	log_orig(&g);
	log_write(&g, 0);
	/* the first 30 given: the same verdict, and 30 leaves taken */
	assert_int_equal(audit_verify_startup_leaves(F.dir, &F.v, 1, 0, given_leaf, &gv, 30, &rep,
	    err, sizeof(err)), 0);
	assert_int_equal(rep.records, NREC);
	assert_int_equal(gv.calls, 30);
	/* a wrong leaf is used as given: a checkpoint over it no longer matches */
	gv = (struct given){ 0, 5, 0 };
	assert_int_equal(audit_verify_startup_leaves(F.dir, &F.v, 1, 0, given_leaf, &gv, NREC, &rep,
	    err, sizeof(err)), BS_ERR_MISMATCH);
	assert_int_equal(rep.ok, 0);
	/* a leaf not given (nonzero answer) is hashed from the file */
	gv = (struct given){ 0, -1, 1 };
	assert_int_equal(audit_verify_startup_leaves(F.dir, &F.v, 1, 0, given_leaf, &gv, NREC, &rep,
	    err, sizeof(err)), 0);
	assert_int_equal(gv.calls, NREC);
	log_free(&g);
}

static void
test_startup(void **state)
{
	struct audit_verify_report rep;
	struct note_verifier both[2];
	char err[2048], empty[80], sub[128];
	struct log g;

	(void)state;
	/* a new install: no log, no checkpoints */
	snprintf(empty, sizeof(empty), "/tmp/bs-audit-empty-XXXXXX");
	assert_non_null(mkdtemp(empty));
	assert_int_equal(audit_verify_startup(empty, &F.v, 1, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.records, 0);
	assert_int_equal(rmdir(empty), 0);

	/* every record covered */
	std_cps();
	log_orig(&g);
	log_write(&g, 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.uncovered, 0);

	/* a tail within the limit starts; beyond it, the message says how to recover */
	clear_cps();
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 15, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.uncovered, 15);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 14, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	assert_non_null(strstr(err, "record 25: 15 records after the last checkpoint"));
	assert_non_null(strstr(err, "--allow-tail 15"));
	assert_non_null(strstr(err, "--accept-audit-tail 15"));
	assert_non_null(strstr(err, F.vk));
	assert_non_null(strstr(err, "audit_uncovered_max is 14"));

	/* no checkpoint at all, and the rewrite of the finding */
	clear_cps();
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 39, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	assert_non_null(strstr(err, "no checkpoint"));
	log_free(&g);
	log_orig(&g);
	field(g.l[10], "result")[1] ^= 0x20;
	log_cut(&g, 20, 10);
	rechain(&g);
	log_write(&g, 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 10, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	log_free(&g);

	/* a tampered record is never a tail: no --accept-audit-tail in the advice */
	std_cps();
	log_orig(&g);
	field(g.l[5], "timestamp")[1] = '3';
	log_write(&g, 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 1000, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	snprintf(sub, sizeof(sub), "%s: record 5: ", F.dir);
	assert_non_null(strstr(err, sub));
	assert_non_null(strstr(err, "altered"));
	assert_null(strstr(err, "--accept-audit-tail"));
	log_free(&g);

	/* the log removed while checkpoints remain: truncated to nothing */
	assert_int_equal(unlink(F.log), 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 1000, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	assert_non_null(strstr(err, "log truncated"));

	/* the audit key rotated: older checkpoints are signed by its older version */
	log_orig(&g);
	log_write(&g, 0);
	clear_cps();
	write_cp(10, 10, ORIGIN, ORIGIN, F.other, F.other_pub, 0);
	write_cp(25, 25, ORIGIN, ORIGIN, F.key, F.pub, 0);
	write_cp(40, 40, ORIGIN, ORIGIN, F.key, F.pub, 0);
	assert_int_equal(audit_verify_startup(F.dir, &F.v, 1, 0, &rep, err, sizeof(err)),
	    BS_ERR_MISMATCH);
	assert_non_null(strstr(err, "checkpoint 10: no known signer"));
	both[0] = F.other_v;
	both[1] = F.v;
	assert_int_equal(audit_verify_startup(F.dir, both, 2, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.covered, 40);
	log_free(&g);
	std_cps();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_flip_string_byte),
		cmocka_unit_test(test_flip_breaks_json),
		cmocka_unit_test(test_flip_prev),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_swap),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_torn),
		cmocka_unit_test(test_zero_tail),
		cmocka_unit_test(test_bad_checkpoints),
		cmocka_unit_test(test_last_record),
		cmocka_unit_test(test_rewritten_chain),
		cmocka_unit_test(test_json_checker),
		cmocka_unit_test(test_cannot_run),
		cmocka_unit_test(test_seq_format),
		cmocka_unit_test(test_no_checkpoint),
		cmocka_unit_test(test_uncovered_tail),
		cmocka_unit_test(test_pinned),
		cmocka_unit_test(test_rewrite_finding),
		cmocka_unit_test(test_trust_sources),
		cmocka_unit_test(test_startup),
		cmocka_unit_test(test_startup_leaves),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
