/*
 * evidence.c - evidence bundles (evidence.h): the files, the MANIFEST, the
 * tar archive (libarchive, pax format) and the offline verification, which
 * blames exactly one file for each way a bundle can be wrong:
 *
 *   vkey and checkpoint  are checked on their own (the vkey's key id is a
 *                        hash of its name and key, so a changed byte never
 *                        yields another valid key)
 *   proofs.jsonl         each proof must reach the signed root from the
 *                        leaf hash it states, so after this step the leaf
 *                        hashes are trusted
 *   seal.json, records   each line must hash to its proof's leaf
 *   MANIFEST             must hash to what the (now trusted) seal says
 *   every other file     must hash to what the (now trusted) MANIFEST says
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit_verify.h"
#include "audit/evidence.h"
#include "common/bytebuf.h"
#include "common/hex.h"
#include "common/utctime.h"
#include "formats/merkle.h"

#define EVIDENCE_PROOF_LINE_MAX 8192

/* Files not listed in MANIFEST: it, and what is made after the seal. */
static const char *const unsealed[] = { "MANIFEST", "seal.json", "proofs.jsonl", "checkpoint",
	"vkey" };
static const char *const fixed_names[] = { "README", "records.jsonl" };
static const char *const subdirs[] = { "certs/", "crls/", "keys/" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void
evidence_init(struct evidence_bundle *b)
{
	memset(b, 0, sizeof(*b));
}

void
evidence_free(struct evidence_bundle *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->files[i].name);
		free(b->files[i].data);
	}
	free(b->files);
	evidence_init(b);
}

static int
is_unsealed(const char *name)
{
	for (size_t i = 0; i < NELEM(unsealed); i++)
		if (strcmp(name, unsealed[i]) == 0)
			return 1;
	return 0;
}

int
evidence_name_valid(const char *name)
{
	size_t i, len, pre = 0;

	if (name == NULL || (len = strlen(name)) == 0 || len > EVIDENCE_NAME_MAX)
		return 0;
	if (is_unsealed(name))
		return 1;
	for (i = 0; i < NELEM(fixed_names); i++)
		if (strcmp(name, fixed_names[i]) == 0)
			return 1;
	for (i = 0; i < NELEM(subdirs); i++)
		if (strncmp(name, subdirs[i], strlen(subdirs[i])) == 0)
			pre = strlen(subdirs[i]);
	if (pre == 0 || name[pre] == '\0' || name[pre] == '.')
		return 0;
	for (i = pre; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
evidence_ts_unix(const char *s, int64_t *unix_s)
{
	time_t t;

	if (bs_utc_parse_ms(s, &t) != 0)
		return -1;
	if (unix_s != NULL)
		*unix_s = (int64_t)t;
	return 0;
}

int
evidence_ts_valid(const char *s)
{
	return evidence_ts_unix(s, NULL) == 0;
}

int
evidence_vehicle_valid(const char *s)
{
	size_t len;

	if (s == NULL || (len = strlen(s)) == 0 || len > EVIDENCE_VEHICLE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

int
evidence_add(struct evidence_bundle *b, const char *name, const void *data, size_t len)
{
	struct evidence_file *f;

	if (!evidence_name_valid(name))
		return BS_ERR_INVALID;
	if (evidence_find(b, name) != NULL)
		return BS_ERR_EXISTS;
	if (b->n >= EVIDENCE_MAX_FILES || len > EVIDENCE_MAX_FILE ||
	    len > EVIDENCE_MAX_TOTAL - b->total)
		return BS_ERR_TOO_BIG;
	if (b->n == b->cap) {
		size_t cap = b->cap == 0 ? 16 : 2 * b->cap;

		f = realloc(b->files, cap * sizeof(*f));
		if (f == NULL)
			return BS_ERR_NOMEM;
		b->files = f;
		b->cap = cap;
	}
	f = &b->files[b->n];
	f->name = strdup(name);
	f->data = malloc(len > 0 ? len : 1);
	if (f->name == NULL || f->data == NULL) {
		free(f->name);
		free(f->data);
		return BS_ERR_NOMEM;
	}
	if (len > 0)
		memcpy(f->data, data, len);
	f->len = len;
	b->n++;
	b->total += len;
	return 0;
}

const struct evidence_file *
evidence_find(const struct evidence_bundle *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->files[i].name, name) == 0)
			return &b->files[i];
	return NULL;
}

static int
sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
	return EVP_Digest(p, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : BS_ERR_CRYPTO;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(const struct evidence_file *const *)a)->name,
	    (*(const struct evidence_file *const *)b)->name);
}

/* Pointers to b's files in name order (malloc'd), or NULL. */
static const struct evidence_file **
sorted(const struct evidence_bundle *b)
{
	const struct evidence_file **v = calloc(b->n > 0 ? b->n : 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < b->n; i++)
		v[i] = &b->files[i];
	qsort(v, b->n, sizeof(*v), by_name);
	return v;
}

int
evidence_make_manifest(struct evidence_bundle *b, uint8_t sha[32])
{
	const struct evidence_file **v = sorted(b);
	struct bytebuf m = BYTEBUF_INIT;
	uint8_t h[32];
	char hex[BS_HEX_LEN(32)];
	int rc = 0;

	if (v == NULL)
		return BS_ERR_NOMEM;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		if (is_unsealed(v[i]->name))
			continue;
		if ((rc = sha256(v[i]->data, v[i]->len, h)) != 0)
			break;
		bs_hex_encode(h, sizeof(h), hex);
		bytebuf_printf(&m, "%s  %s\n", hex, v[i]->name);
	}
	free(v);
	if (rc == 0)
		rc = bytebuf_error(&m);
	if (rc == 0)
		rc = sha256(m.p != NULL ? m.p : (const uint8_t *)"", m.len, sha);
	if (rc == 0)
		rc = evidence_add(b, "MANIFEST", m.p != NULL ? m.p : (const uint8_t *)"", m.len);
	bytebuf_free(&m);
	return rc;
}

/* ---- tar ------------------------------------------------------------------- */

static la_ssize_t
tar_write_cb(struct archive *a, void *arg, const void *p, size_t n)
{
	struct bytebuf *out = arg;

	(void)a;
	bytebuf_put(out, p, n);
	return bytebuf_error(out) == 0 ? (la_ssize_t)n : -1;
}

int
evidence_write_tar(const struct evidence_bundle *b, int64_t mtime, uint8_t **out, size_t *outlen)
{
	const struct evidence_file **v = sorted(b);
	struct bytebuf buf = BYTEBUF_INIT;
	struct archive_entry *e = NULL;
	struct archive *a = archive_write_new();
	int rc = BS_ERR_NOMEM;

	*out = NULL;
	*outlen = 0;
	if (v == NULL || a == NULL || (e = archive_entry_new()) == NULL)
		goto out;
	rc = BS_ERR_IO;
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, &buf, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, v[i]->name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)v[i]->len);
		archive_entry_set_mtime(e, (time_t)mtime, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK ||
		    (v[i]->len > 0 &&
		    archive_write_data(a, v[i]->data, v[i]->len) != (la_ssize_t)v[i]->len))
			goto out;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		goto out;
	if ((rc = bytebuf_error(&buf)) != 0)
		goto out;
	*outlen = buf.len;
	*out = bytebuf_steal(&buf, outlen);
	rc = *out != NULL ? 0 : BS_ERR_NOMEM;
out:
	if (e != NULL)
		archive_entry_free(e);
	if (a != NULL)
		archive_write_free(a);
	bytebuf_free(&buf);
	free(v);
	return rc;
}

int
evidence_read_tar(const uint8_t *buf, size_t len, struct evidence_bundle *b, char *msg,
    size_t msglen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	uint8_t *data = NULL;
	const char *name;
	int64_t size;
	int r, rc = BS_ERR_INVALID;

	evidence_init(b);
	snprintf(msg, msglen, "%s", "");
	if (a == NULL) {
		snprintf(msg, msglen, "out of memory");
		return BS_ERR_NOMEM;
	}
	if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		snprintf(msg, msglen, "not a tar archive: %.200s", archive_error_string(a) != NULL ?
		    archive_error_string(a) : "unknown format");
		goto out;
	}
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			snprintf(msg, msglen, "not a well-formed tar archive: %.200s",
			    archive_error_string(a) != NULL ? archive_error_string(a) : "read error");
			goto out;
		}
		name = archive_entry_pathname(e);
		if (name == NULL) {
			snprintf(msg, msglen, "a member without a name");
			goto out;
		}
		if (strncmp(name, "./", 2) == 0)
			name += 2;
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(e) != AE_IFREG) {
			snprintf(msg, msglen, "%.100s: not a regular file", name);
			goto out;
		}
		if (!evidence_name_valid(name)) {
			snprintf(msg, msglen, "%.100s: not a name an evidence bundle holds", name);
			goto out;
		}
		size = archive_entry_size(e);
		if (!archive_entry_size_is_set(e) || size < 0 || (uint64_t)size > EVIDENCE_MAX_FILE ||
		    (uint64_t)size > EVIDENCE_MAX_TOTAL - b->total) {
			snprintf(msg, msglen, "%.100s: larger than a bundle may hold", name);
			goto out;
		}
		if ((data = malloc(size > 0 ? (size_t)size : 1)) == NULL) {
			rc = BS_ERR_NOMEM;
			snprintf(msg, msglen, "out of memory");
			goto out;
		}
		if (size > 0 && archive_read_data(a, data, (size_t)size) != (la_ssize_t)size) {
			snprintf(msg, msglen, "%.100s: truncated", name);
			goto out;
		}
		r = evidence_add(b, name, data, (size_t)size);
		free(data);
		data = NULL;
		if (r != 0) {
			rc = r == BS_ERR_NOMEM ? r : BS_ERR_INVALID;
			snprintf(msg, msglen, "%.100s: %s", name, r == BS_ERR_EXISTS ?
			    "twice in the archive" : r == BS_ERR_TOO_BIG ?
			    "over the bundle's limits" : "cannot be added");
			goto out;
		}
	}
	rc = 0;
out:
	free(data);
	archive_read_free(a);
	if (rc != 0)
		evidence_free(b);
	return rc;
}

/* ---- verification ---------------------------------------------------------- */

/* One line of proofs.jsonl. */
struct proof_line {
	uint64_t seq;
	uint8_t leaf[MERKLE_HASH_LEN];
	uint8_t (*hashes)[MERKLE_HASH_LEN];
	size_t n;
};

static int
fail(struct evidence_report *r, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct evidence_report *r, const char *file, const char *fmt, ...)
{
	va_list ap;

	r->ok = 0;
	snprintf(r->file, sizeof(r->file), "%s", file);
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return 0;
}

/* The next line of f from *off: sets *p, *len (without "\n"). 1, or 0 at the end. */
static int
next_line(const struct evidence_file *f, size_t *off, const uint8_t **p, size_t *len, int *torn)
{
	const uint8_t *nl;

	*torn = 0;
	if (*off >= f->len)
		return 0;
	*p = f->data + *off;
	nl = memchr(*p, '\n', f->len - *off);
	if (nl == NULL) {
		*torn = 1;
		*len = f->len - *off;
		*off = f->len;
		return 1;
	}
	*len = (size_t)(nl - *p);
	*off += *len + 1;
	return 1;
}

static int
hex32(const json_t *s, uint8_t out[32])
{
	const char *v = json_string_value(s);

	return v != NULL && json_string_length(s) == 64 &&
	    bs_hex_decode(v, 64, out, 32, BS_HEX_LOWER) == 0;
}

/* Parses one proof line; 0 or -1 with why. */
static int
proof_parse(const uint8_t *p, size_t len, struct proof_line *pl, char *why, size_t whylen)
{
	json_t *o = NULL, *seq, *leaf, *hashes;
	json_error_t je;
	size_t i;
	int rc = -1;

	memset(pl, 0, sizeof(*pl));
	if (len > EVIDENCE_PROOF_LINE_MAX) {
		snprintf(why, whylen, "line too long");
		return -1;
	}
	o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o) || json_object_size(o) != 3) {
		snprintf(why, whylen, "not an object {\"seq\",\"leaf\",\"hashes\"}");
		goto out;
	}
	seq = json_object_get(o, "seq");
	leaf = json_object_get(o, "leaf");
	hashes = json_object_get(o, "hashes");
	if (!json_is_integer(seq) || json_integer_value(seq) < 0 || !hex32(leaf, pl->leaf) ||
	    !json_is_array(hashes) || json_array_size(hashes) > MERKLE_MAX_PROOF) {
		snprintf(why, whylen, "seq, leaf (64 hex) or hashes (at most %d) malformed",
		    MERKLE_MAX_PROOF);
		goto out;
	}
	pl->seq = (uint64_t)json_integer_value(seq);
	pl->n = json_array_size(hashes);
	pl->hashes = calloc(pl->n > 0 ? pl->n : 1, MERKLE_HASH_LEN);
	if (pl->hashes == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	for (i = 0; i < pl->n; i++)
		if (!hex32(json_array_get(hashes, i), pl->hashes[i])) {
			snprintf(why, whylen, "hashes[%zu] is not 64 lower-case hex digits", i);
			goto out;
		}
	rc = 0;
out:
	json_decref(o);
	if (rc != 0) {
		free(pl->hashes);
		pl->hashes = NULL;
	}
	return rc;
}

/* A string member of o, or NULL when absent, null or not a string. */
static const char *
str_of(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int
evidence_record_of_vehicle(const uint8_t *line, size_t len, const char *vehicle)
{
	json_t *o = json_loadb((const char *)line, len, 0, NULL);
	const char *t, *id;
	size_t il, vl = strlen(vehicle);
	int yes = 0;

	if (o == NULL)
		return 0;
	t = str_of(o, "target");
	id = str_of(o, "identity");
	if (t != NULL && strcmp(t, vehicle) == 0)
		yes = 1;
	else if (id != NULL && (il = strlen(id)) > vl && id[il - vl - 1] == '/' &&
	    strcmp(id + il - vl, vehicle) == 0)
		yes = 1;
	json_decref(o);
	return yes;
}

/* What the seal record says. */
struct seal {
	uint8_t manifest[32];
	uint64_t records;
};

/* Checks seal.json's line and what it says; 0 or fail(). */
static int
check_seal(const uint8_t *p, size_t len, struct seal *s, struct evidence_report *r)
{
	json_t *o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL), *fields;
	const char *m, *from, *to, *veh, *n;
	char *end;
	int rc = 0;

	if (o == NULL || !json_is_object(o)) {
		rc = fail(r, "seal.json", "not a JSON object");
		goto out;
	}
	fields = json_object_get(o, "fields");
	m = str_of(fields, "evidence.manifest_sha256");
	from = str_of(fields, "evidence.from");
	to = str_of(fields, "evidence.to");
	veh = str_of(fields, "evidence.vehicle");
	n = str_of(fields, "evidence.records");
	if (str_of(o, "method") == NULL || strcmp(str_of(o, "method"), EVIDENCE_SEAL_METHOD) != 0 ||
	    str_of(o, "result") == NULL || strcmp(str_of(o, "result"), "OK") != 0 ||
	    str_of(o, "event") == NULL || strcmp(str_of(o, "event"), "evidence_sealed") != 0) {
		rc = fail(r, "seal.json", "not the record of an answered %s call",
		    EVIDENCE_SEAL_METHOD);
		goto out;
	}
	if (m == NULL || strlen(m) != 64 || bs_hex_decode(m, 64, s->manifest, 32, BS_HEX_LOWER) != 0 ||
	    !evidence_ts_valid(from) || !evidence_ts_valid(to) || veh == NULL ||
	    (veh[0] != '\0' && !evidence_vehicle_valid(veh)) || n == NULL || n[0] < '0' ||
	    n[0] > '9') {
		rc = fail(r, "seal.json", "the evidence.* fields are missing or malformed");
		goto out;
	}
	s->records = strtoull(n, &end, 10);
	if (*end != '\0') {
		rc = fail(r, "seal.json", "evidence.records is not a number");
		goto out;
	}
	snprintf(r->from, sizeof(r->from), "%s", from);
	snprintf(r->to, sizeof(r->to), "%s", to);
	snprintf(r->vehicle, sizeof(r->vehicle), "%s", veh);
	rc = 1;
out:
	json_decref(o);
	return rc;
}

/* Checks vkey and checkpoint; 1 when both are fine (size, root set), else 0 (failed). */
static int
check_checkpoint(const struct evidence_bundle *b, const struct note_verifier *v, size_t nv,
    uint64_t *size, uint8_t root[MERKLE_HASH_LEN], struct evidence_report *r)
{
	const struct evidence_file *vk = evidence_find(b, "vkey"), *cp = evidence_find(b, "checkpoint");
	struct note_verifier own;
	char msg[400];
	size_t i;

	if (audit_verify_vkey_parse(vk->data, vk->len, &own) != 0)
		return fail(r, "vkey", "not an Ed25519 note verifier key (NAME+HASH+BASE64)");
	if (nv == 0) {
		r->trust_from_bundle = 1;
		v = &own;
		nv = 1;
	} else {
		for (i = 0; i < nv; i++)
			if (strcmp(v[i].name, own.name) == 0 &&
			    memcmp(v[i].key_id, own.key_id, sizeof(own.key_id)) == 0 &&
			    memcmp(v[i].pub, own.pub, sizeof(own.pub)) == 0)
				break;
		if (i == nv)
			return fail(r, "vkey", "%.100s is not the trusted verifier key", own.name);
	}
	if (audit_verify_checkpoint_open(cp->data, cp->len, v, nv, size, root, msg, sizeof(msg)) != 0)
		return fail(r, "checkpoint", "%s", msg);
	snprintf(r->signer, sizeof(r->signer), "%s", own.name);
	r->tree_size = *size;
	return 1;
}

/* The index of the file called name in sorted v (n entries), or -1. */
static long
find_sorted(const struct evidence_file **v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid]->name, name);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * Checks MANIFEST against the seal, and the sealed files (v: b's files in
 * name order) against MANIFEST: each listed once, each hash right, none
 * left out. 1, or 0 (failed) / BS_ERR_NOMEM.
 */
static int
check_manifest(const struct evidence_bundle *b, const struct evidence_file **v,
    const struct seal *s, struct evidence_report *r)
{
	const struct evidence_file *m = evidence_find(b, "MANIFEST");
	const uint8_t *p;
	uint8_t h[32], want[32];
	char name[EVIDENCE_NAME_MAX + 1], *seen;
	size_t off = 0, len, i, line = 0;
	long k;
	int torn, rc = 0;

	if (sha256(m->data, m->len, h) != 0)
		return BS_ERR_CRYPTO;
	if (memcmp(h, s->manifest, 32) != 0)
		return fail(r, "MANIFEST", "its SHA-256 is not the one sealed in seal.json");
	if ((seen = calloc(b->n > 0 ? b->n : 1, 1)) == NULL)
		return BS_ERR_NOMEM;
	while (next_line(m, &off, &p, &len, &torn)) {
		line++;
		if (torn || len < 67 || len - 66 > EVIDENCE_NAME_MAX || p[64] != ' ' || p[65] != ' ' ||
		    bs_hex_decode((const char *)p, 64, want, 32, BS_HEX_LOWER) != 0) {
			rc = fail(r, "MANIFEST", "line %zu is not \"SHA256HEX  NAME\"", line);
			goto out;
		}
		memcpy(name, p + 66, len - 66);
		name[len - 66] = '\0';
		if (!evidence_name_valid(name) || is_unsealed(name)) {
			rc = fail(r, "MANIFEST", "line %zu names %.100s, which it cannot list", line,
			    name);
			goto out;
		}
		if ((k = find_sorted(v, b->n, name)) < 0) {
			rc = fail(r, name, "listed in MANIFEST but not in the bundle");
			goto out;
		}
		if (seen[k]) {
			rc = fail(r, "MANIFEST", "lists %.100s twice", name);
			goto out;
		}
		seen[k] = 1;
		if ((rc = sha256(v[k]->data, v[k]->len, h)) != 0)
			goto out;
		if (memcmp(h, want, 32) != 0) {
			rc = fail(r, name, "its SHA-256 is not the one in MANIFEST");
			goto out;
		}
	}
	for (i = 0; i < b->n; i++)
		if (!seen[i] && !is_unsealed(v[i]->name)) {
			rc = fail(r, v[i]->name, "not listed in MANIFEST (added after the seal)");
			goto out;
		}
	rc = 1;
out:
	free(seen);
	return rc;
}

/*
 * Checks one record line against its (verified) proof and the seal; 1 or
 * 0 (failed). Its timestamp must be in the window when the bundle is of a
 * vehicle (each record was chosen by it) or when edge (the first or last
 * record of a window: records are stamped just before they are queued, so
 * one inside a window may be stamped a few ms outside it).
 */
static int
check_record(const uint8_t *p, size_t len, size_t line, const struct proof_line *pl,
    int64_t prev_seq, int edge, struct evidence_report *r)
{
	uint8_t leaf[MERKLE_HASH_LEN];
	json_t *o, *seq;
	const char *ts;
	int ok = 0;

	merkle_leaf_hash(p, len, leaf);
	if (memcmp(leaf, pl->leaf, sizeof(leaf)) != 0)
		return fail(r, "records.jsonl", "line %zu is not the record the log holds at seq "
		    "%llu (its hash is not the proven leaf)", line, (unsigned long long)pl->seq);
	o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
	seq = json_object_get(o, "seq");
	ts = str_of(o, "timestamp");
	if (o == NULL || !json_is_integer(seq) || (uint64_t)json_integer_value(seq) != pl->seq) {
		fail(r, "records.jsonl", "line %zu: its seq is not %llu", line,
		    (unsigned long long)pl->seq);
	} else if (prev_seq >= 0 && (r->vehicle[0] != '\0' ? pl->seq <= (uint64_t)prev_seq :
	    pl->seq != (uint64_t)prev_seq + 1)) {
		fail(r, "records.jsonl", "line %zu: seq %llu after %lld (records %s)", line,
		    (unsigned long long)pl->seq, (long long)prev_seq, r->vehicle[0] != '\0' ?
		    "must be in log order" : "of a window are consecutive");
	} else if (ts == NULL || ((r->vehicle[0] != '\0' || edge) &&
	    (strcmp(ts, r->from) < 0 || strcmp(ts, r->to) > 0))) {
		fail(r, "records.jsonl", "line %zu: seq %llu is outside the sealed window %s to %s",
		    line, (unsigned long long)pl->seq, r->from, r->to);
	} else if (r->vehicle[0] != '\0' && !evidence_record_of_vehicle(p, len, r->vehicle)) {
		fail(r, "records.jsonl", "line %zu: seq %llu is not about vehicle %s", line,
		    (unsigned long long)pl->seq, r->vehicle);
	} else {
		ok = 1;
	}
	json_decref(o);
	return ok;
}

/* Parses and checks proofs.jsonl against the root; 1 (*pls, *npl set) or 0 / error. */
static int
check_proofs(const struct evidence_file *f, uint64_t size, const uint8_t root[MERKLE_HASH_LEN],
    struct proof_line **pls, size_t *npl, struct evidence_report *r)
{
	struct proof_line *v = NULL, *t;
	const uint8_t *p;
	size_t off = 0, len, n = 0, cap = 0;
	char why[200];
	int torn;

	*pls = NULL;
	*npl = 0;
	while (next_line(f, &off, &p, &len, &torn)) {
		if (n == cap) {
			cap = cap == 0 ? 64 : 2 * cap;
			if ((t = realloc(v, cap * sizeof(*v))) == NULL)
				goto nomem;
			v = t;
		}
		if (torn) {
			fail(r, "proofs.jsonl", "line %zu does not end with a newline", n + 1);
			goto bad;
		}
		if (proof_parse(p, len, &v[n], why, sizeof(why)) != 0) {
			fail(r, "proofs.jsonl", "line %zu: %s", n + 1, why);
			goto bad;
		}
		n++;
		if (v[n - 1].seq >= size || merkle_verify_inclusion(v[n - 1].seq, size, v[n - 1].leaf,
		    (const uint8_t (*)[MERKLE_HASH_LEN])v[n - 1].hashes, v[n - 1].n, root) != 0) {
			fail(r, "proofs.jsonl", "line %zu: no path from leaf %llu to the checkpoint's "
			    "root (tree size %llu)", n, (unsigned long long)v[n - 1].seq,
			    (unsigned long long)size);
			goto bad;
		}
	}
	if (n == 0) {
		fail(r, "proofs.jsonl", "empty: it needs at least the seal's proof");
		goto bad;
	}
	*pls = v;
	*npl = n;
	return 1;
nomem:
	for (size_t i = 0; i < n; i++)
		free(v[i].hashes);
	free(v);
	return BS_ERR_NOMEM;
bad:
	for (size_t i = 0; i < n; i++)
		free(v[i].hashes);
	free(v);
	return 0;
}

int
evidence_verify(const struct evidence_bundle *b, const struct note_verifier *v, size_t nv,
    struct evidence_report *r)
{
	static const char *const required[] = { "vkey", "checkpoint", "proofs.jsonl", "seal.json",
		"MANIFEST", "records.jsonl", "README" };
	const struct evidence_file **sv = NULL, *f;
	struct proof_line *pls = NULL;
	uint8_t root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
	struct seal seal;
	const uint8_t *p;
	uint64_t size;
	size_t i, npl = 0, off, len, line;
	int64_t prev = -1;
	int torn, rc;

	if (b == NULL || r == NULL || (nv > 0 && v == NULL))
		return BS_ERR_INVALID;
	memset(r, 0, sizeof(*r));
	memset(&seal, 0, sizeof(seal));
	for (i = 0; i < NELEM(required); i++)
		if (evidence_find(b, required[i]) == NULL)
			return fail(r, required[i], "missing from the bundle");
	if ((rc = check_checkpoint(b, v, nv, &size, root, r)) != 1)
		return rc < 0 ? rc : 0;
	if ((rc = check_proofs(evidence_find(b, "proofs.jsonl"), size, root, &pls, &npl, r)) != 1)
		return rc < 0 ? rc : 0;
	/* seal.json: exactly one line, the last proof's leaf */
	f = evidence_find(b, "seal.json");
	off = 0;
	if (!next_line(f, &off, &p, &len, &torn) || torn || off != f->len) {
		fail(r, "seal.json", "not exactly one line ending with a newline");
		goto done;
	}
	merkle_leaf_hash(p, len, leaf);
	if (memcmp(leaf, pls[npl - 1].leaf, sizeof(leaf)) != 0) {
		fail(r, "seal.json", "not the record the log holds at seq %llu (its hash is not the "
		    "proven leaf)", (unsigned long long)pls[npl - 1].seq);
		goto done;
	}
	if ((rc = check_seal(p, len, &seal, r)) != 1)
		goto done;
	r->seal_seq = pls[npl - 1].seq;
	if ((sv = sorted(b)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto done;
	}
	if ((rc = check_manifest(b, sv, &seal, r)) != 1)
		goto done;
	/* the records: one per proof before the seal's, each before the seal */
	f = evidence_find(b, "records.jsonl");
	off = 0;
	line = 0;
	while (next_line(f, &off, &p, &len, &torn)) {
		line++;
		if (torn) {
			rc = fail(r, "records.jsonl", "line %zu does not end with a newline", line);
			goto done;
		}
		if (line > npl - 1) {
			rc = fail(r, "records.jsonl", "line %zu: more records than proofs", line);
			goto done;
		}
		if ((rc = check_record(p, len, line, &pls[line - 1], prev,
		    line == 1 || off == f->len, r)) != 1)
			goto done;
		prev = (int64_t)pls[line - 1].seq;
		if (line == 1)
			r->first_seq = pls[0].seq;
		r->last_seq = pls[line - 1].seq;
	}
	if (line != npl - 1) {
		rc = fail(r, "records.jsonl", "%zu records for %zu proofs (and the seal's)", line,
		    npl - 1);
		goto done;
	}
	if (line != seal.records) {
		rc = fail(r, "records.jsonl", "%zu records; the seal says %llu", line,
		    (unsigned long long)seal.records);
		goto done;
	}
	if (line > 0 && r->last_seq >= r->seal_seq) {
		rc = fail(r, "records.jsonl", "seq %llu is not before the seal (%llu)",
		    (unsigned long long)r->last_seq, (unsigned long long)r->seal_seq);
		goto done;
	}
	r->records = line;
	for (i = 0; i < b->n; i++) {
		r->certs += strncmp(b->files[i].name, "certs/", 6) == 0;
		r->crls += strncmp(b->files[i].name, "crls/", 5) == 0;
		r->keys += strncmp(b->files[i].name, "keys/", 5) == 0;
	}
	r->ok = 1;
	rc = 1;
done:
	for (i = 0; i < npl; i++)
		free(pls[i].hashes);
	free(pls);
	free(sv);
	return rc < 0 ? rc : 0;
}
