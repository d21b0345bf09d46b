/*
 * audit_verify.c - offline verifier of the audit log and its signed
 * checkpoints (see audit_verify.h). Reads files only; the formats are those
 * of auditlog.c (serialize(), check_prefix()) and checkpoint.c (store).
 *
 * How a tamper is pinned to the FIRST bad record (0-based), assuming one
 * tamper (with several, the smallest index found is reported):
 *
 *  - Every line is checked on its own: valid UTF-8, no byte below 0x20, the
 *    exact prefix {"seq":<digits>,"prev":"<64 lower-case hex>", a final '}',
 *    a well-formed JSON object, and seq equal to the line's index. A deleted
 *    record k makes line k carry seq k+1; records k and k+1 swapped make
 *    line k carry seq k+1: both are reported at k. A torn last line (no
 *    "\n") is reported at its index.
 *
 *  - The chain: link i is "record i's prev equals the leaf hash of record
 *    i-1" (64 zeros for record 0). Changing the CONTENT of record k changes
 *    only its leaf hash, so only link k+1 breaks. Changing record k's PREV
 *    field breaks link k (prev no longer matches k-1) and link k+1 (k's leaf
 *    hash changed with it). So when link i is the first broken link: if
 *    link i+1 is broken too, record i's prev was changed (bad = i); if link
 *    i+1 holds, record i-1's content was changed (bad = i-1). If i is the
 *    last record there is no link i+1; then record i's prev is the ORIGINAL
 *    leaf hash of record i-1 if record i-1 was edited, which a verified
 *    checkpoint covering record i-1 can confirm: substitute it and compare
 *    roots (match: bad = i-1, else bad = i). With no such checkpoint the two
 *    cases look the same and the earlier one, i-1, is reported. Lines are
 *    examined in index order and a line's own format/seq problem is
 *    reported before its link, so a deleted record (whose successor's prev
 *    no longer matches) is reported at its own index, not one earlier.
 *
 *  - Checkpoints (every <20 digits>.note, ascending): the note must verify
 *    with the trusted key, the body must parse, the origin must be the
 *    key's name and the size the file name's. Those failures belong to the
 *    checkpoint, not to a record. A checkpoint larger than the log means
 *    the log was truncated: bad = the number of records present (the first
 *    missing one). A root that differs from the root of the first <size>
 *    records with no problem among them: an edit of any record below
 *    size-1 would have broken a link inside [0, size), so it is record
 *    size-1 (whose link to record <size> is outside). If record <size>
 *    exists and its link to record size-1 HOLDS although the root differs,
 *    the chain itself was rewritten from some record on; then the first
 *    record not vouched for by a matching checkpoint is reported.
 *
 * Consecutive checkpoints that both match the recomputed tree are also
 * checked with a consistency proof computed from that tree and
 * merkle_verify_consistency: belt and braces, since two roots of one tree
 * are consistent by construction; it guards against a bug in the tree code.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "audit/audit_verify.h"
#include "audit/checkpoint.h"
#include "formats/merkle.h"

#define READ_CHUNK (256 * 1024)
#define LINE_MAX_BYTES (1024 * 1024)    /* as auditlog.c: a line must fit in 2 MiB */
#define JSON_MAX_DEPTH 64
#define MSG_MAX 512

/* What is kept of one record. */
struct rec {
	uint8_t leaf[MERKLE_HASH_LEN];  /* SHA-256(0x00 || line) */
	uint8_t prev[MERKLE_HASH_LEN];  /* its prev field, if prev_valid */
	uint8_t prev_valid;
};

/* One checkpoint file. */
struct cp {
	uint64_t size;
	uint8_t root[MERKLE_HASH_LEN];
	int valid;                      /* signature, body, origin and size checked */
};

struct vstate {
	struct rec *recs;
	uint64_t n, cap;
	struct merkle_tree *tree;
	int64_t line_bad;               /* first line with a problem of its own, -1 none */
	char line_msg[MSG_MAX];
	struct cp *cps;
	size_t ncp;
	int64_t cp_bad;                 /* index into cps of the first failed checkpoint */
	char cp_msg[MSG_MAX];
};

/* ---- text and JSON ---------------------------------------------------------- */

static void
json_ws(const uint8_t *p, size_t n, size_t *i)
{
	while (*i < n && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' || p[*i] == '\r'))
		(*i)++;
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* A string starting at p[*i] == '"'. 0 and *i past it, or -1. */
static int
json_string(const uint8_t *p, size_t n, size_t *i)
{
	size_t k = *i + 1, l;
	uint8_t u[2];

	while (k < n) {
		uint8_t c = p[k];

		if (c == '"') {
			*i = k + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (k + 1 >= n)
				return -1;
			switch (p[k + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				k += 2;
				break;
			case 'u':
				/* \uXXXX: four hex digits, either case */
				if (k + 6 > n ||
				    bs_hex_decode((const char *)p + k + 2, 4, u, sizeof(u), 0) != 0)
					return -1;
				k += 6;
				break;
			default:
				return -1;
			}
			continue;
		}
		if ((l = bs_utf8_decode(p + k, n - k, NULL)) == 0)
			return -1;
		k += l;
	}
	return -1;
}

static int
json_number(const uint8_t *p, size_t n, size_t *i)
{
	size_t k = *i;

	if (k < n && p[k] == '-')
		k++;
	if (k < n && p[k] == '0') {
		k++;
	} else if (k < n && p[k] >= '1' && p[k] <= '9') {
		while (k < n && is_digit(p[k]))
			k++;
	} else {
		return -1;
	}
	if (k < n && p[k] == '.') {
		k++;
		if (k >= n || !is_digit(p[k]))
			return -1;
		while (k < n && is_digit(p[k]))
			k++;
	}
	if (k < n && (p[k] == 'e' || p[k] == 'E')) {
		k++;
		if (k < n && (p[k] == '+' || p[k] == '-'))
			k++;
		if (k >= n || !is_digit(p[k]))
			return -1;
		while (k < n && is_digit(p[k]))
			k++;
	}
	*i = k;
	return 0;
}

static int
json_literal(const uint8_t *p, size_t n, size_t *i, const char *lit, size_t litlen)
{
	if (n - *i < litlen || memcmp(p + *i, lit, litlen) != 0)
		return -1;
	*i += litlen;
	return 0;
}

static int json_value(const uint8_t *p, size_t n, size_t *i, int depth);

/* An object or array starting at p[*i]. */
static int
json_container(const uint8_t *p, size_t n, size_t *i, int depth)
{
	uint8_t close = p[*i] == '{' ? '}' : ']';
	int is_obj = close == '}';

	if (depth >= JSON_MAX_DEPTH)
		return -1;
	(*i)++;
	json_ws(p, n, i);
	if (*i < n && p[*i] == close) {
		(*i)++;
		return 0;
	}
	for (;;) {
		if (is_obj) {
			if (*i >= n || p[*i] != '"' || json_string(p, n, i) != 0)
				return -1;
			json_ws(p, n, i);
			if (*i >= n || p[*i] != ':')
				return -1;
			(*i)++;
			json_ws(p, n, i);
		}
		if (json_value(p, n, i, depth + 1) != 0)
			return -1;
		json_ws(p, n, i);
		if (*i >= n)
			return -1;
		if (p[*i] == close) {
			(*i)++;
			return 0;
		}
		if (p[*i] != ',')
			return -1;
		(*i)++;
		json_ws(p, n, i);
	}
}

static int
json_value(const uint8_t *p, size_t n, size_t *i, int depth)
{
	if (*i >= n)
		return -1;
	switch (p[*i]) {
	case '{':
	case '[':
		return json_container(p, n, i, depth);
	case '"':
		return json_string(p, n, i);
	case 't':
		return json_literal(p, n, i, "true", 4);
	case 'f':
		return json_literal(p, n, i, "false", 5);
	case 'n':
		return json_literal(p, n, i, "null", 4);
	default:
		return json_number(p, n, i);
	}
}

int
audit_verify_json_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (p == NULL)
		return 0;
	json_ws(p, len, &i);
	if (json_value(p, len, &i, 0) != 0)
		return 0;
	json_ws(p, len, &i);
	return i == len;
}

/* ---- one line ----------------------------------------------------------------- */

/*
 * Parses the prefix {"seq":<decimal, no leading zero>,"prev":"<64 lower hex>"
 * of line p[0..n). 0 and *seq, prev; -1 if it is not exactly that.
 */
static int
parse_prefix(const uint8_t *p, size_t n, uint64_t *seq, uint8_t prev[MERKLE_HASH_LEN])
{
	static const char head[] = "{\"seq\":", mid[] = ",\"prev\":\"";
	size_t k = sizeof(head) - 1, start;
	uint64_t v = 0;

	if (n < k || memcmp(p, head, k) != 0)
		return -1;
	start = k;
	while (k < n && is_digit(p[k])) {
		uint64_t d = (uint64_t)(p[k] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		k++;
	}
	if (k == start || (p[start] == '0' && k - start > 1))
		return -1;
	if (n - k < sizeof(mid) - 1 + 2 * MERKLE_HASH_LEN + 1 ||
	    memcmp(p + k, mid, sizeof(mid) - 1) != 0)
		return -1;
	k += sizeof(mid) - 1;
	if (bs_hex_decode((const char *)p + k, 2 * MERKLE_HASH_LEN, prev, MERKLE_HASH_LEN,
	    BS_HEX_LOWER) != 0 || p[k + 2 * MERKLE_HASH_LEN] != '"')
		return -1;
	*seq = v;
	return 0;
}

/* Records line i's own problem, if it is the first one. */
static void
line_problem(struct vstate *st, uint64_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
line_problem(struct vstate *st, uint64_t i, const char *fmt, ...)
{
	va_list ap;

	if (st->line_bad >= 0)
		return;
	st->line_bad = (int64_t)i;
	va_start(ap, fmt);
	vsnprintf(st->line_msg, sizeof(st->line_msg), fmt, ap);
	va_end(ap);
}

/* Checks line i = p[0..n) (no newline) on its own (only until the first problem). */
static void
check_line(struct vstate *st, uint64_t i, const uint8_t *p, size_t n, int prefix_ok, uint64_t seq)
{
	size_t k, l;

	for (k = 0; k < n; k += l) {
		if (p[k] < 0x20) {
			line_problem(st, i, "control character 0x%02x at byte %zu", p[k], k);
			return;
		}
		if ((l = bs_utf8_decode(p + k, n - k, NULL)) == 0) {
			line_problem(st, i, "invalid UTF-8 at byte %zu", k);
			return;
		}
	}
	if (!prefix_ok) {
		line_problem(st, i, "does not start with {\"seq\":%" PRIu64 ",\"prev\":\"<64 "
		    "lower-case hex digits>\"", i);
		return;
	}
	if (n == 0 || p[n - 1] != '}') {
		line_problem(st, i, "does not end with '}'");
		return;
	}
	if (!audit_verify_json_valid(p, n)) {
		line_problem(st, i, "not a well-formed JSON object");
		return;
	}
	if (seq != i)
		line_problem(st, i, "record %" PRIu64 " is missing or out of order: found seq %"
		    PRIu64, i, seq);
}

/* Adds line p[0..n) as the next record. 0, BS_ERR_NOMEM or BS_ERR_CRYPTO. */
static int
add_line(struct vstate *st, const uint8_t *p, size_t n)
{
	struct rec *r;
	uint64_t seq = 0;
	int prefix_ok, rc;

	if (st->n == st->cap) {
		uint64_t ncap = st->cap == 0 ? 1024 : st->cap * 2;
		struct rec *nr;

		if (ncap > SIZE_MAX / sizeof(*nr))
			return BS_ERR_NOMEM;
		if ((nr = realloc(st->recs, (size_t)ncap * sizeof(*nr))) == NULL)
			return BS_ERR_NOMEM;
		st->recs = nr;
		st->cap = ncap;
	}
	r = &st->recs[st->n];
	memset(r, 0, sizeof(*r));
	merkle_leaf_hash(p, n, r->leaf);
	prefix_ok = parse_prefix(p, n, &seq, r->prev) == 0;
	r->prev_valid = (uint8_t)prefix_ok;
	if ((rc = merkle_tree_append(st->tree, r->leaf)) != 0)
		return rc;
	if (st->line_bad < 0)
		check_line(st, st->n, p, n, prefix_ok, seq);
	st->n++;
	return 0;
}

/* Reads the log. 0, BS_ERR_IO (msg in err), BS_ERR_NOMEM, BS_ERR_CRYPTO. */
static int
read_log(struct vstate *st, const char *path, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t have = 0, cap = READ_CHUNK;
	int fd, rc = BS_ERR_IO;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %.300s: %s", path, strerror(errno));
		return BS_ERR_IO;
	}
	if ((buf = malloc(cap)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t nr;
		size_t pos = 0;

		if (have == cap) {
			uint8_t *nb;

			if (cap >= LINE_MAX_BYTES * 2) {
				line_problem(st, st->n, "longer than %d bytes", LINE_MAX_BYTES * 2);
				break;  /* nothing after it can be attributed */
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		nr = read(fd, buf + have, cap - have);
		if (nr < 0 && errno == EINTR)
			continue;
		if (nr < 0) {
			snprintf(err, errlen, "cannot read %.300s: %s", path, strerror(errno));
			goto out;
		}
		if (nr == 0) {
			if (have > 0)
				line_problem(st, st->n, "torn last record (no newline)");
			break;
		}
		have += (size_t)nr;
		for (;;) {
			uint8_t *nl = memchr(buf + pos, '\n', have - pos);
			size_t len;

			if (nl == NULL)
				break;
			len = (size_t)(nl - (buf + pos));
			if ((rc = add_line(st, buf + pos, len)) != 0)
				goto out;
			pos += len + 1;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

/* Lists the stored checkpoints into st->cps (ascending). 0, BS_ERR_IO, BS_ERR_NOMEM. */
static int
list_cps(struct vstate *st, const char *dir, char *err, size_t errlen)
{
	uint64_t *sizes = NULL;
	size_t n = 0;
	int rc;

	if ((rc = checkpoint_store_list(dir, &sizes, &n)) != 0) {
		snprintf(err, errlen, "cannot list %s: %s", dir, bs_strerror(rc));
		return rc;
	}
	if (n > 0 && (st->cps = calloc(n, sizeof(*st->cps))) == NULL) {
		free(sizes);
		return BS_ERR_NOMEM;
	}
	for (size_t k = 0; k < n; k++)
		st->cps[k].size = sizes[k];
	st->ncp = n;
	free(sizes);
	return 0;
}

/*
 * 1 if some signature line of note msg[0..len) names v and starts with v's
 * key id (whether or not the signature verifies), else 0. Only used to word
 * the error when note_open finds no known signer.
 */
static int
note_names_key(const uint8_t *msg, size_t len, const struct note_verifier *v)
{
	static const char dash[] = "\xe2\x80\x94 ";
	size_t namelen = strlen(v->name), i, start = 0;
	const uint8_t *p, *end = msg + len, *nl;
	uint8_t dec[6];
	char id[8];
	size_t total;

	for (i = len; i >= 2; i--) {
		if (msg[i - 2] == '\n' && msg[i - 1] == '\n') {
			start = i;
			break;
		}
	}
	if (start == 0)
		return 0;
	for (p = msg + start; p < end; p = nl + 1) {
		size_t ll;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		ll = (size_t)(nl - p);
		if (ll < 4 + namelen + 1 + 8 || memcmp(p, dash, 4) != 0 ||
		    memcmp(p + 4, v->name, namelen) != 0 || p[4 + namelen] != ' ')
			continue;
		/* the key id is in the first 8 characters; '=' there reads as zero bits */
		for (i = 0; i < sizeof(id); i++) {
			uint8_t c = p[4 + namelen + 1 + i];

			id[i] = c == '=' ? 'A' : (char)c;
		}
		if (bs_b64_decode(id, sizeof(id), 0, dec, sizeof(dec), &total) != 0)
			continue;
		if (memcmp(dec, v->key_id, NOTE_KEY_ID_LEN) == 0)
			return 1;
	}
	return 0;
}

static void
cp_problem(struct vstate *st, size_t k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
cp_problem(struct vstate *st, size_t k, const char *fmt, ...)
{
	va_list ap;

	if (st->cp_bad >= 0)
		return;
	st->cp_bad = (int64_t)k;
	va_start(ap, fmt);
	vsnprintf(st->cp_msg, sizeof(st->cp_msg), fmt, ap);
	va_end(ap);
}

static void
key_desc(const struct note_verifier *v, char out[300])
{
	char hx[BS_HEX_LEN(NOTE_KEY_ID_LEN)];

	bs_hex_encode(v->key_id, NOTE_KEY_ID_LEN, hx);
	snprintf(out, 300, "%s+%s", v->name, hx);
}

/* Opens and parses every checkpoint; marks the good ones valid. */
static int
check_cps(struct vstate *st, const char *dir, const struct note_verifier *v, char *err,
    size_t errlen)
{
	uint8_t *buf = NULL;
	char origin[NOTE_NAME_MAX + 1], kd[300];
	int rc = 0;

	key_desc(v, kd);
	for (size_t k = 0; k < st->ncp; k++) {
		struct cp *c = &st->cps[k];
		size_t len = 0, tlen = 0;
		uint64_t size;
		int r;

		free(buf);
		buf = NULL;
		r = checkpoint_store_read(dir, c->size, &buf, &len);
		if (r == BS_ERR_TOO_BIG) {
			cp_problem(st, k, "larger than %d bytes", CHECKPOINT_NOTE_MAX);
			continue;
		}
		if (r != 0) {
			snprintf(err, errlen, "cannot read checkpoint %" PRIu64 " in %.300s: %s",
			    c->size, dir, bs_strerror(r));
			rc = r;
			goto out;
		}
		r = note_open(buf, len, v, 1, &tlen);
		if (r == BS_ERR_SIG_INVALID) {
			cp_problem(st, k, "the signature by %s does not verify", kd);
			continue;
		}
		if (r == BS_ERR_INVALID) {
			if (note_names_key(buf, len, v))
				cp_problem(st, k, "malformed signed note");
			else
				cp_problem(st, k, "no known signer: the note carries no signature "
				    "by %s", kd);
			continue;
		}
		if (r != 0) {
			snprintf(err, errlen, "cannot verify checkpoint %" PRIu64 ": %s", c->size,
			    bs_strerror(r));
			rc = r;
			goto out;
		}
		if (checkpoint_body_parse(buf, tlen, origin, sizeof(origin), &size, c->root) != 0) {
			cp_problem(st, k, "malformed checkpoint body");
			continue;
		}
		if (strcmp(origin, v->name) != 0) {
			cp_problem(st, k, "origin '%s' is not the key name '%s'", origin, v->name);
			continue;
		}
		if (size != c->size) {
			cp_problem(st, k, "the file name says size %" PRIu64 " but the note says %"
			    PRIu64, c->size, size);
			continue;
		}
		c->valid = 1;
	}
out:
	free(buf);
	return rc;
}

/* ---- the verdict ------------------------------------------------------------------ */

static int
link_ok(const struct vstate *st, uint64_t i)
{
	static const uint8_t zeros[MERKLE_HASH_LEN];

	if (!st->recs[i].prev_valid)
		return 1;       /* its own line problem is reported instead */
	return memcmp(st->recs[i].prev, i == 0 ? zeros : st->recs[i - 1].leaf,
	    MERKLE_HASH_LEN) == 0;
}

/*
 * Root of the first size records with record j's leaf hash replaced by
 * leaf. 0, BS_ERR_NOMEM, BS_ERR_CRYPTO.
 */
static int
root_with(const struct vstate *st, uint64_t size, uint64_t j, const uint8_t leaf[MERKLE_HASH_LEN],
    uint8_t root[MERKLE_HASH_LEN])
{
	struct merkle_tree *t = merkle_tree_new();
	int rc = BS_ERR_NOMEM;

	if (t == NULL)
		return BS_ERR_NOMEM;
	for (uint64_t i = 0; i < size; i++)
		if ((rc = merkle_tree_append(t, i == j ? leaf : st->recs[i].leaf)) != 0)
			goto out;
	rc = merkle_tree_root(t, size, root);
out:
	merkle_tree_free(t);
	return rc;
}

/*
 * The first record problem in index order: a line's own problem, or a
 * broken link attributed as explained at the top. *bad = -1 if none.
 */
static int
scan_records(const struct vstate *st, int64_t *bad, char *msg, size_t msglen)
{
	uint64_t i;

	*bad = -1;
	for (i = 0; i < st->n; i++) {
		const struct cp *c = NULL;
		uint8_t root[MERKLE_HASH_LEN];
		int rc;

		if (st->line_bad >= 0 && (uint64_t)st->line_bad == i)
			break;
		if (link_ok(st, i))
			continue;
		if (i == 0) {
			*bad = 0;
			snprintf(msg, msglen, "record 0's prev is not 64 zeros: its prev field was "
			    "changed");
			return 0;
		}
		if (i + 1 < st->n) {
			if (st->recs[i + 1].prev_valid && !link_ok(st, i + 1)) {
				*bad = (int64_t)i;
				snprintf(msg, msglen, "record %" PRIu64 "'s prev does not match the "
				    "leaf hash of record %" PRIu64 ", and record %" PRIu64 "'s prev does "
				    "not match record %" PRIu64 "'s: record %" PRIu64 "'s prev field was "
				    "changed", i, i - 1, i + 1, i, i);
			} else {
				*bad = (int64_t)(i - 1);
				snprintf(msg, msglen, "record %" PRIu64 "'s prev does not match the "
				    "leaf hash of record %" PRIu64 ": record %" PRIu64 " was changed",
				    i, i - 1, i - 1);
			}
			return 0;
		}
		/* i is the last record: ask the first verified checkpoint covering i-1 */
		for (size_t k = 0; k < st->ncp; k++) {
			if (st->cps[k].valid && st->cps[k].size >= i && st->cps[k].size <= st->n) {
				c = &st->cps[k];
				break;
			}
		}
		if (c == NULL) {
			*bad = (int64_t)(i - 1);
			snprintf(msg, msglen, "record %" PRIu64 "'s prev does not match the leaf "
			    "hash of record %" PRIu64 ": record %" PRIu64 " was changed, or record %"
			    PRIu64 "'s prev field (no checkpoint covers record %" PRIu64 " to tell "
			    "which)", i, i - 1, i - 1, i, i - 1);
			return 0;
		}
		if ((rc = root_with(st, c->size, i - 1, st->recs[i].prev, root)) != 0)
			return rc;
		if (memcmp(root, c->root, MERKLE_HASH_LEN) == 0) {
			*bad = (int64_t)(i - 1);
			snprintf(msg, msglen, "record %" PRIu64 "'s prev does not match the leaf "
			    "hash of record %" PRIu64 ": record %" PRIu64 " was changed (checkpoint %"
			    PRIu64 " matches its original leaf hash)", i, i - 1, i - 1, c->size);
		} else {
			*bad = (int64_t)i;
			snprintf(msg, msglen, "record %" PRIu64 "'s prev does not match the leaf "
			    "hash of record %" PRIu64 ", which checkpoint %" PRIu64 " vouches for: "
			    "record %" PRIu64 "'s prev field was changed", i, i - 1, c->size, i);
		}
		return 0;
	}
	if (st->line_bad >= 0) {
		*bad = st->line_bad;
		snprintf(msg, msglen, "%s", st->line_msg);
	}
	return 0;
}

/*
 * Compares every verified checkpoint with the log. *bad gets the smallest
 * record index a checkpoint points at (-1 none); a consistency failure is
 * a checkpoint problem. rbad is the record problem scan_records found (-1
 * none): a root mismatch above it is explained by it.
 */
static int
scan_cps(struct vstate *st, int64_t rbad, int64_t *bad, char *msg, size_t msglen)
{
	const struct cp *prev_ok = NULL;
	uint8_t root[MERKLE_HASH_LEN], proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	size_t nproof;
	int rc;

	*bad = -1;
	for (size_t k = 0; k < st->ncp; k++) {
		const struct cp *c = &st->cps[k];
		uint64_t s = c->size, from = prev_ok != NULL ? prev_ok->size : 0;
		int64_t at;
		char m[MSG_MAX];

		if (!c->valid)
			continue;
		if (s > st->n) {
			at = (int64_t)st->n;
			snprintf(m, sizeof(m), "log truncated: checkpoint %" PRIu64 " covers records "
			    "up to %" PRIu64 " but the file has %" PRIu64, s, s - 1, st->n);
		} else {
			if ((rc = merkle_tree_root(st->tree, s, root)) != 0)
				return rc;
			if (memcmp(root, c->root, MERKLE_HASH_LEN) == 0) {
				if (prev_ok != NULL && prev_ok->size > 0) {
					/* belt and braces: equal roots of one tree are consistent */
					if ((rc = merkle_tree_consistency_proof(st->tree, prev_ok->size, s,
					    proof, &nproof)) != 0)
						return rc;
					rc = merkle_verify_consistency(prev_ok->size, s, prev_ok->root,
					    c->root, proof, nproof);
					if (rc == BS_ERR_NOMEM || rc == BS_ERR_CRYPTO)
						return rc;
					if (rc != 0)
						cp_problem(st, k, "not consistent with checkpoint %" PRIu64,
						    prev_ok->size);
				}
				prev_ok = c;
				continue;
			}
			if (s == 0) {
				cp_problem(st, k, "the root of an empty log is wrong");
				continue;
			}
			if (rbad >= 0 && (uint64_t)rbad < s)
				continue;       /* a record below s was already found bad */
			if (s < st->n && st->recs[s].prev_valid && link_ok(st, s)) {
				at = (int64_t)from;
				snprintf(m, sizeof(m), "records %" PRIu64 " to %" PRIu64 " do not match "
				    "checkpoint %" PRIu64 " although their hash chain holds: the chain "
				    "was rewritten from one of them on; record %" PRIu64 " is the first "
				    "not vouched for by a matching checkpoint", from, s - 1, s, from);
			} else {
				at = (int64_t)(s - 1);
				snprintf(m, sizeof(m), "record %" PRIu64 " does not match checkpoint %"
				    PRIu64 " (the root of the first %" PRIu64 " records differs; an "
				    "edit of an earlier record would have broken the hash chain)",
				    s - 1, s, s);
			}
		}
		if (*bad < 0 || at < *bad) {
			*bad = at;
			snprintf(msg, msglen, "%s", m);
		}
	}
	return 0;
}

int
audit_verify_files(const char *log_path, const char *checkpoints_dir,
    const struct note_verifier *v, struct audit_verify_report *rep)
{
	struct vstate st;
	char rmsg[MSG_MAX], cmsg[MSG_MAX];
	int64_t rbad = -1, cbad = -1;
	int rc;

	if (rep == NULL)
		return BS_ERR_INVALID;
	memset(rep, 0, sizeof(*rep));
	rep->first_bad_record = -1;
	if (log_path == NULL || checkpoints_dir == NULL || v == NULL) {
		snprintf(rep->error, sizeof(rep->error), "missing argument");
		return BS_ERR_INVALID;
	}
	memset(&st, 0, sizeof(st));
	st.line_bad = -1;
	st.cp_bad = -1;
	rmsg[0] = cmsg[0] = '\0';
	if ((st.tree = merkle_tree_new()) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if ((rc = read_log(&st, log_path, rep->error, sizeof(rep->error))) != 0 ||
	    (rc = list_cps(&st, checkpoints_dir, rep->error, sizeof(rep->error))) != 0 ||
	    (rc = check_cps(&st, checkpoints_dir, v, rep->error, sizeof(rep->error))) != 0 ||
	    (rc = scan_records(&st, &rbad, rmsg, sizeof(rmsg))) != 0 ||
	    (rc = scan_cps(&st, rbad, &cbad, cmsg, sizeof(cmsg))) != 0)
		goto out;

	rep->records = st.n;
	rep->checkpoints = st.ncp;
	for (size_t k = 0; k < st.ncp; k++)
		if (st.cps[k].valid)
			rep->latest_size = st.cps[k].size;
	if (st.cp_bad >= 0) {
		rep->has_bad_checkpoint = 1;
		rep->bad_checkpoint = st.cps[st.cp_bad].size;
	}
	/* the first problem by record index wins; a tie goes to the record's own */
	if (rbad >= 0 && (cbad < 0 || rbad <= cbad)) {
		rep->first_bad_record = rbad;
		snprintf(rep->error, sizeof(rep->error), "%s", rmsg);
	} else if (cbad >= 0) {
		rep->first_bad_record = cbad;
		snprintf(rep->error, sizeof(rep->error), "%s", cmsg);
	} else if (st.cp_bad >= 0) {
		snprintf(rep->error, sizeof(rep->error), "%s", st.cp_msg);
	} else {
		rep->ok = 1;
	}
	rc = 0;
out:
	if (rc != 0) {
		if (rep->error[0] == '\0')
			snprintf(rep->error, sizeof(rep->error), "%s", bs_strerror(rc));
		rep->ok = 0;
		rep->first_bad_record = -1;
	}
	merkle_tree_free(st.tree);
	free(st.recs);
	free(st.cps);
	return rc;
}

int
audit_verify_dir(const char *audit_dir, const struct note_verifier *v,
    struct audit_verify_report *rep)
{
	char log_path[4096], cps[4096];

	if (rep == NULL)
		return BS_ERR_INVALID;
	if (audit_dir == NULL ||
	    (size_t)snprintf(log_path, sizeof(log_path), "%s/audit.jsonl", audit_dir) >=
	    sizeof(log_path) ||
	    (size_t)snprintf(cps, sizeof(cps), "%s/checkpoints", audit_dir) >= sizeof(cps)) {
		memset(rep, 0, sizeof(*rep));
		rep->first_bad_record = -1;
		snprintf(rep->error, sizeof(rep->error), "audit directory path too long or missing");
		return BS_ERR_INVALID;
	}
	return audit_verify_files(log_path, cps, v, rep);
}
