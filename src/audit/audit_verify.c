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
 *
 * A pinned checkpoint (one the auditor kept off the host) joins the list of
 * checkpoints once it verified with the trusted keys, and is checked like
 * the others: the log must be at least its size and have its root there.
 *
 * Coverage: whoever can write audit.jsonl can recompute the whole hash
 * chain after an edit (or delete checkpoints/), so the chain alone proves
 * nothing. Only a checkpoint signed by a trusted key vouches for records:
 * covered is the largest size of a valid checkpoint that matches the log,
 * and the records after it are the uncovered tail. A tail longer than
 * max_uncovered fails the verification at record <covered> when nothing
 * else is wrong (a lower-index problem is more precise and wins).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/fileio.h"
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

/* One checkpoint file, or the pinned checkpoint. */
struct cp {
	uint64_t size;
	uint8_t root[MERKLE_HASH_LEN];
	int valid;                      /* signature, body, origin and size checked */
	int pinned;                     /* the pinned checkpoint, not a file */
	int matches;                    /* valid, size <= records, root = the log's root */
};

struct vstate {
	struct rec *recs;
	uint64_t n, cap;
	struct merkle_tree *tree;
	int64_t line_bad;               /* first line with a problem of its own, -1 none */
	char line_msg[MSG_MAX];
	const struct note_verifier *v;  /* the trusted keys (borrowed) */
	size_t nv;
	const struct audit_verify_opts *o;
	struct cp *cps;
	size_t ncp;                     /* entries of cps, the pinned one included */
	size_t nfiles;                  /* checkpoint files among them */
	int64_t cp_bad;                 /* index into cps of the first failed checkpoint */
	char cp_msg[MSG_MAX];
};

/* ---- text and JSON ---------------------------------------------------------- */
/*
 * A validating scan, not a parser: every record is checked at each daemon
 * start. Measured on one 500-byte record, 200,000 times: this scan 2.1 us
 * per record, jansson's json_loadb (and a depth walk) 10.5 us, so a log of
 * a million records would add 8 s to every start. Hence not jansson here.
 */

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
		if (c < 0x80) {
			k++;   /* ASCII other than '"', '\\' and controls */
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
		if (p[k] < 0x80) {
			l = 1;   /* ASCII: most of a record, and a whole code point */
			continue;
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
	if (st->o->leaf == NULL || st->n >= st->o->nleaves ||
	    st->o->leaf(st->o->leaf_arg, st->n, r->leaf) != 0)
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

/*
 * After the records: p[0..n) must be the daemon's preallocated zeros. 0, or
 * -1 with the problem recorded at the record after the last.
 */
static int
zeros_after(struct vstate *st, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0) {
			line_problem(st, st->n, "bytes other than zeros after the records");
			return -1;
		}
	}
	return 0;
}

/*
 * Reads the log. The records end at the first line that starts with a NUL:
 * a running daemon preallocates the file with zeros (cut off when it
 * stops), and everything after must be zeros. 0, BS_ERR_IO (msg in err),
 * BS_ERR_NOMEM, BS_ERR_CRYPTO.
 */
static int
read_log(struct vstate *st, const char *path, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t have = 0, cap = READ_CHUNK;
	int fd, rc = BS_ERR_IO, zeros = 0;

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
			if (have > 0 && !zeros)
				line_problem(st, st->n, "torn last record (no newline)");
			break;
		}
		have += (size_t)nr;
		if (zeros) {
			if (zeros_after(st, buf, have) != 0)
				break;
			have = 0;
			continue;
		}
		for (;;) {
			uint8_t *nl = memchr(buf + pos, '\n', have - pos);
			size_t len;

			if (pos < have && buf[pos] == '\0') {
				zeros = 1;   /* the records end where the zeros begin */
				break;
			}
			if (nl == NULL)
				break;
			len = (size_t)(nl - (buf + pos));
			if ((rc = add_line(st, buf + pos, len)) != 0)
				goto out;
			pos += len + 1;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		if (zeros) {
			if (zeros_after(st, buf, have) != 0)
				break;
			have = 0;
		}
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

static int
cmp_cp(const void *a, const void *b)
{
	const struct cp *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return y->pinned - x->pinned;   /* the pinned one first among equal sizes */
}

/*
 * Lists the stored checkpoints into st->cps (ascending), with room for the
 * pinned one if pinned. 0, BS_ERR_IO, BS_ERR_NOMEM.
 */
static int
list_cps(struct vstate *st, const char *dir, int pinned, char *err, size_t errlen)
{
	uint64_t *sizes = NULL;
	size_t n = 0, room;
	int rc;

	if ((rc = checkpoint_store_list(dir, &sizes, &n)) != 0) {
		snprintf(err, errlen, "cannot list %s: %s", dir, bs_strerror(rc));
		return rc;
	}
	room = n + (pinned ? 1 : 0);
	if (room > 0 && (st->cps = calloc(room, sizeof(*st->cps))) == NULL) {
		free(sizes);
		return BS_ERR_NOMEM;
	}
	for (size_t k = 0; k < n; k++)
		st->cps[k].size = sizes[k];
	st->ncp = st->nfiles = n;
	free(sizes);
	return 0;
}

/*
 * 1 if some signature line of note msg[0..len) names one of the nv keys v
 * and starts with its key id (whether or not the signature verifies), else
 * 0. Only used to word the error when note_open finds no known signer.
 */
static int
note_names_key(const uint8_t *msg, size_t len, const struct note_verifier *v, size_t nv)
{
	static const char dash[] = "\xe2\x80\x94 ";
	size_t i, start = 0;
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
		for (size_t k = 0; k < nv; k++) {
			size_t namelen = strlen(v[k].name);

			if (ll < 4 + namelen + 1 + 8 || memcmp(p, dash, 4) != 0 ||
			    memcmp(p + 4, v[k].name, namelen) != 0 || p[4 + namelen] != ' ')
				continue;
			/* the key id is in the first 8 characters; '=' there reads as zero bits */
			for (i = 0; i < sizeof(id); i++) {
				uint8_t c = p[4 + namelen + 1 + i];

				id[i] = c == '=' ? 'A' : (char)c;
			}
			if (bs_b64_decode(id, sizeof(id), 0, dec, sizeof(dec), &total) != 0)
				continue;
			if (memcmp(dec, v[k].key_id, NOTE_KEY_ID_LEN) == 0)
				return 1;
		}
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

/* "NAME+<key id hex>" of v[0], and how many other keys there are. */
static void
key_desc(const struct note_verifier *v, size_t nv, char out[320])
{
	char hx[BS_HEX_LEN(NOTE_KEY_ID_LEN)];

	bs_hex_encode(v[0].key_id, NOTE_KEY_ID_LEN, hx);
	if (nv > 1)
		snprintf(out, 320, "%s+%s or %zu other trusted keys", v[0].name, hx, nv - 1);
	else
		snprintf(out, 320, "%s+%s", v[0].name, hx);
}

/*
 * 1 if the text of note msg[0..len) (up to its last blank line) is a
 * checkpoint body: then a note_open failure without a line of a trusted key
 * is "no known signer" rather than "malformed". Only for the wording.
 */
static int
body_is_checkpoint(const uint8_t *msg, size_t len)
{
	char origin[NOTE_NAME_MAX + 1];
	uint8_t root[MERKLE_HASH_LEN];
	uint64_t size;
	size_t i;

	for (i = len; i >= 2; i--)
		if (msg[i - 2] == '\n' && msg[i - 1] == '\n')
			break;
	if (i < 2)
		return 0;
	return checkpoint_body_parse(msg, i - 1, origin, sizeof(origin), &size, root) == 0;
}

int
audit_verify_checkpoint_open(const uint8_t *note, size_t len, const struct note_verifier *v,
    size_t nv, uint64_t *size, uint8_t root[MERKLE_HASH_LEN], char *msg, size_t msglen)
{
	char origin[NOTE_NAME_MAX + 1], kd[320];
	uint8_t r[MERKLE_HASH_LEN];
	uint64_t sz;
	size_t tlen = 0, k;
	int rc;

	if (note == NULL || v == NULL || nv == 0 || size == NULL || root == NULL || msg == NULL) {
		if (msg != NULL && msglen > 0)
			snprintf(msg, msglen, "missing argument");
		return BS_ERR_INVALID;
	}
	key_desc(v, nv, kd);
	rc = note_open(note, len, v, nv, &tlen);
	if (rc == BS_ERR_SIG_INVALID) {
		snprintf(msg, msglen, "the signature by %s does not verify", kd);
		return rc;
	}
	if (rc == BS_ERR_INVALID) {
		if (note_names_key(note, len, v, nv) || !body_is_checkpoint(note, len)) {
			snprintf(msg, msglen, "malformed signed note");
			return rc;
		}
		snprintf(msg, msglen, "no known signer: the note carries no signature by %s", kd);
		return BS_ERR_NOT_FOUND;
	}
	if (rc != 0) {
		snprintf(msg, msglen, "cannot verify the note: %s", bs_strerror(rc));
		return rc;
	}
	if (checkpoint_body_parse(note, tlen, origin, sizeof(origin), &sz, r) != 0) {
		snprintf(msg, msglen, "malformed checkpoint body");
		return BS_ERR_INVALID;
	}
	for (k = 0; k < nv; k++)
		if (strcmp(origin, v[k].name) == 0)
			break;
	if (k == nv) {
		snprintf(msg, msglen, "origin '%s' is not the key name '%s'", origin, v[0].name);
		return BS_ERR_INVALID;
	}
	*size = sz;
	memcpy(root, r, MERKLE_HASH_LEN);
	return 0;
}

/* Opens and parses every checkpoint file; marks the good ones valid. */
static int
check_cps(struct vstate *st, const char *dir, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	char m[MSG_MAX];
	int rc = 0;

	for (size_t k = 0; k < st->ncp; k++) {
		struct cp *c = &st->cps[k];
		size_t len = 0;
		uint64_t size;
		int r;

		if (c->pinned)
			continue;       /* verified before it was added */
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
		r = audit_verify_checkpoint_open(buf, len, st->v, st->nv, &size, c->root, m,
		    sizeof(m));
		if (r == BS_ERR_SIG_INVALID || r == BS_ERR_INVALID || r == BS_ERR_NOT_FOUND) {
			cp_problem(st, k, "%s", m);
			continue;
		}
		if (r != 0) {
			snprintf(err, errlen, "cannot verify checkpoint %" PRIu64 ": %.300s", c->size, m);
			rc = r;
			goto out;
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

/*
 * Verifies the pinned checkpoint and adds it to st->cps (list_cps left room
 * for it). 0, or an error of audit_verify_checkpoint_open with err saying
 * why.
 */
static int
add_pinned(struct vstate *st, const uint8_t *note, size_t len, char *err, size_t errlen)
{
	struct cp *c = &st->cps[st->ncp];
	char m[MSG_MAX];
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = audit_verify_checkpoint_open(note, len, st->v, st->nv, &c->size, c->root, m,
	    sizeof(m))) != 0) {
		snprintf(err, errlen, "the pinned checkpoint does not verify with the trusted key: %.300s",
		    m);
		return rc;
	}
	c->valid = 1;
	c->pinned = 1;
	st->ncp++;
	qsort(st->cps, st->ncp, sizeof(*st->cps), cmp_cp);
	return 0;
}

/* "checkpoint" or "pinned checkpoint", for messages. */
static const char *
cp_label(const struct cp *c)
{
	return c->pinned ? "pinned checkpoint" : "checkpoint";
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
			    "hash of record %" PRIu64 ", which %s %" PRIu64 " vouches for: "
			    "record %" PRIu64 "'s prev field was changed", i, i - 1, cp_label(c),
			    c->size, i);
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
		struct cp *c = &st->cps[k];
		const char *lab = cp_label(c);
		uint64_t s = c->size, from = prev_ok != NULL ? prev_ok->size : 0;
		int64_t at;
		char m[MSG_MAX];

		if (!c->valid)
			continue;
		if (s > st->n) {
			at = (int64_t)st->n;
			snprintf(m, sizeof(m), "log truncated: %s %" PRIu64 " covers records up to %"
			    PRIu64 " but the file has %" PRIu64, lab, s, s - 1, st->n);
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
						cp_problem(st, k, "not consistent with %s %" PRIu64,
						    cp_label(prev_ok), prev_ok->size);
				}
				c->matches = 1;
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
				    "%s %" PRIu64 " although their hash chain holds: the chain was "
				    "rewritten from one of them on; record %" PRIu64 " is the first not "
				    "vouched for by a matching checkpoint", from, s - 1, lab, s, from);
			} else {
				at = (int64_t)(s - 1);
				snprintf(m, sizeof(m), "record %" PRIu64 " does not match %s %" PRIu64
				    " (the root of the first %" PRIu64 " records differs; an edit of an "
				    "earlier record would have broken the hash chain)", s - 1, lab, s, s);
			}
		}
		if (*bad < 0 || at < *bad) {
			*bad = at;
			snprintf(msg, msglen, "%s", m);
		}
	}
	return 0;
}

/* Fills rep->covered/uncovered from the checkpoints scan_cps matched. */
static void
coverage(const struct vstate *st, struct audit_verify_report *rep)
{
	rep->covered = 0;
	for (size_t k = 0; k < st->ncp; k++)
		if (st->cps[k].matches && st->cps[k].size > rep->covered)
			rep->covered = st->cps[k].size;
	rep->uncovered = st->n > rep->covered ? st->n - rep->covered : 0;
}

/* The uncovered tail is longer than allowed: the verdict and its message. */
static void
refuse_tail(const struct vstate *st, uint64_t max, struct audit_verify_report *rep)
{
	rep->tail_refused = 1;
	rep->first_bad_record = (int64_t)rep->covered;
	if (rep->covered == 0 && st->nfiles == 0 && !rep->pinned)
		snprintf(rep->error, sizeof(rep->error), "no checkpoint: none of the %" PRIu64
		    " records is covered by a signature, only by the hash chain, which anyone "
		    "who can write the file can recompute (at most %" PRIu64 " uncovered records "
		    "allowed)", rep->uncovered, max);
	else
		snprintf(rep->error, sizeof(rep->error), "%" PRIu64 " records after the last "
		    "checkpoint (%" PRIu64 ") are not covered by a signature (records %" PRIu64
		    " to %" PRIu64 "; at most %" PRIu64 " uncovered records allowed)", rep->uncovered,
		    rep->covered, rep->covered, st->n - 1, max);
}

int
audit_verify_files(const char *log_path, const char *checkpoints_dir,
    const struct note_verifier *v, size_t nv, const struct audit_verify_opts *o,
    struct audit_verify_report *rep)
{
	static const struct audit_verify_opts strict;
	struct vstate st;
	char rmsg[MSG_MAX], cmsg[MSG_MAX];
	int64_t rbad = -1, cbad = -1;
	int rc;

	if (rep == NULL)
		return BS_ERR_INVALID;
	memset(rep, 0, sizeof(*rep));
	rep->first_bad_record = -1;
	if (log_path == NULL || checkpoints_dir == NULL || v == NULL || nv == 0 ||
	    nv > AUDIT_VERIFY_MAX_KEYS) {
		snprintf(rep->error, sizeof(rep->error), "missing argument");
		return BS_ERR_INVALID;
	}
	if (o == NULL)
		o = &strict;
	memset(&st, 0, sizeof(st));
	st.line_bad = -1;
	st.cp_bad = -1;
	st.v = v;
	st.nv = nv;
	st.o = o;
	rmsg[0] = cmsg[0] = '\0';
	if ((st.tree = merkle_tree_new()) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if ((rc = list_cps(&st, checkpoints_dir, o->pinned != NULL, rep->error,
	    sizeof(rep->error))) != 0)
		goto out;
	if (o->pinned != NULL) {
		if ((rc = add_pinned(&st, o->pinned, o->pinned_len, rep->error,
		    sizeof(rep->error))) != 0)
			goto out;
		rep->pinned = 1;
		for (size_t k = 0; k < st.ncp; k++)
			if (st.cps[k].pinned)
				rep->pinned_size = st.cps[k].size;
	}
	if ((rc = read_log(&st, log_path, rep->error, sizeof(rep->error))) != 0 ||
	    (rc = check_cps(&st, checkpoints_dir, rep->error, sizeof(rep->error))) != 0 ||
	    (rc = scan_records(&st, &rbad, rmsg, sizeof(rmsg))) != 0 ||
	    (rc = scan_cps(&st, rbad, &cbad, cmsg, sizeof(cmsg))) != 0)
		goto out;

	rep->records = st.n;
	rep->checkpoints = st.nfiles;
	for (size_t k = 0; k < st.ncp; k++)
		if (st.cps[k].valid && st.cps[k].size > rep->latest_size)
			rep->latest_size = st.cps[k].size;
	coverage(&st, rep);
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
	} else if (rep->uncovered > o->max_uncovered) {
		refuse_tail(&st, o->max_uncovered, rep);
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

/* <dir>/<name> into out. 0 or -1 (too long). */
static int
dir_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
audit_verify_dir(const char *audit_dir, const struct note_verifier *v, size_t nv,
    const struct audit_verify_opts *o, struct audit_verify_report *rep)
{
	char log_path[PATH_MAX], cps[PATH_MAX];

	if (rep == NULL)
		return BS_ERR_INVALID;
	if (audit_dir == NULL || dir_path(log_path, sizeof(log_path), audit_dir, "audit.jsonl") ||
	    dir_path(cps, sizeof(cps), audit_dir, "checkpoints")) {
		memset(rep, 0, sizeof(*rep));
		rep->first_bad_record = -1;
		snprintf(rep->error, sizeof(rep->error), "audit directory path too long or missing");
		return BS_ERR_INVALID;
	}
	return audit_verify_files(log_path, cps, v, nv, o, rep);
}

/* ---- where the trusted key comes from --------------------------------------------- */

int
audit_verify_vkey_parse(const uint8_t *buf, size_t len, struct note_verifier *v)
{
	char s[NOTE_VKEY_PARSE_MAX + 1];

	if (buf == NULL || v == NULL)
		return BS_ERR_INVALID;
	/* the daemon writes the vkey followed by one newline */
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || len > NOTE_VKEY_PARSE_MAX || memchr(buf, '\0', len) != NULL)
		return BS_ERR_INVALID;
	memcpy(s, buf, len);
	s[len] = '\0';
	return note_vkey_parse(s, v);
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int
audit_verify_path_inside(const char *audit_dir, const char *path, char *msg, size_t msglen)
{
	char *rd = NULL, *rp = NULL, vk[PATH_MAX + 8];
	struct stat a, b;
	int rc = BS_ERR_IO, have_vkey;
	size_t n;

	if (audit_dir == NULL || path == NULL || msg == NULL)
		return BS_ERR_INVALID;
	if ((rd = realpath(audit_dir, NULL)) == NULL) {
		snprintf(msg, msglen, "cannot resolve %.300s: %s", audit_dir, strerror(errno));
		goto out;
	}
	snprintf(vk, sizeof(vk), "%s/vkey", rd);
	have_vkey = stat(vk, &b) == 0;
	if (strcmp(path, "-") == 0) {
		/* standard input: only a redirection of <dir>/vkey itself can be told */
		rc = have_vkey && fstat(STDIN_FILENO, &a) == 0 && same_file(&a, &b);
		goto out;
	}
	if ((rp = realpath(path, NULL)) == NULL) {
		snprintf(msg, msglen, "cannot resolve %.300s: %s", path, strerror(errno));
		goto out;
	}
	n = strlen(rd);
	if (strcmp(rd, "/") == 0 || (strncmp(rp, rd, n) == 0 && (rp[n] == '\0' || rp[n] == '/'))) {
		rc = 1;
		goto out;
	}
	rc = have_vkey && stat(rp, &a) == 0 && same_file(&a, &b);
out:
	free(rd);
	free(rp);
	return rc;
}

int
audit_verify_dir_vkey(const char *audit_dir, const struct note_verifier *v, size_t nv,
    char *msg, size_t msglen)
{
	struct note_verifier got;
	char path[PATH_MAX], *buf = NULL, hx[BS_HEX_LEN(NOTE_KEY_ID_LEN)];
	size_t len = 0;
	int fd, rc;

	if (audit_dir == NULL || v == NULL || nv == 0 || msg == NULL)
		return BS_ERR_INVALID;
	if (dir_path(path, sizeof(path), audit_dir, "vkey") != 0) {
		snprintf(msg, msglen, "path too long");
		return BS_ERR_INVALID;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		if (errno == ENOENT) {
			snprintf(msg, msglen, "%.300s does not exist", path);
			return BS_ERR_NOT_FOUND;
		}
		snprintf(msg, msglen, "cannot open %.300s: %s", path, strerror(errno));
		return BS_ERR_IO;
	}
	rc = bs_read_fd_capped(fd, NOTE_VKEY_PARSE_MAX + 2, &buf, &len);
	close(fd);
	if (rc == BS_ERR_NOMEM)
		return rc;
	if (rc == BS_ERR_IO) {
		snprintf(msg, msglen, "cannot read %.300s: %s", path, strerror(errno));
		return rc;
	}
	if (rc != 0 || audit_verify_vkey_parse((const uint8_t *)buf, len, &got) != 0) {
		snprintf(msg, msglen, "%.300s is not a verifier key", path);
		free(buf);
		return BS_ERR_INVALID;
	}
	free(buf);
	for (size_t k = 0; k < nv; k++) {
		if (strcmp(got.name, v[k].name) == 0 &&
		    memcmp(got.key_id, v[k].key_id, NOTE_KEY_ID_LEN) == 0 &&
		    memcmp(got.pub, v[k].pub, NOTE_ED25519_PUB_LEN) == 0) {
			snprintf(msg, msglen, "%.300s is the trusted key", path);
			return 0;
		}
	}
	bs_hex_encode(got.key_id, NOTE_KEY_ID_LEN, hx);
	snprintf(msg, msglen, "%.300s holds the key %s+%s, not the trusted key", path, got.name, hx);
	return BS_ERR_MISMATCH;
}

/* ---- the daemon's start-up check ---------------------------------------------------- */

int
audit_verify_startup(const char *audit_dir, const struct note_verifier *v, size_t nv,
    uint64_t max_uncovered, struct audit_verify_report *r, char *err, size_t errlen)
{
	return audit_verify_startup_leaves(audit_dir, v, nv, max_uncovered, NULL, NULL, 0, r, err,
	    errlen);
}

int
audit_verify_startup_leaves(const char *audit_dir, const struct note_verifier *v, size_t nv,
    uint64_t max_uncovered, int (*leaf)(void *, uint64_t, uint8_t[32]), void *leaf_arg,
    uint64_t nleaves, struct audit_verify_report *r, char *err, size_t errlen)
{
	struct audit_verify_opts o;
	char log_path[PATH_MAX], cps[PATH_MAX], vk[NOTE_VKEY_MAX], where[64];
	const char *lp = log_path;
	struct stat sb;
	int rc;

	if (r == NULL || err == NULL || errlen == 0)
		return BS_ERR_INVALID;
	if (audit_dir == NULL || dir_path(log_path, sizeof(log_path), audit_dir, "audit.jsonl") ||
	    dir_path(cps, sizeof(cps), audit_dir, "checkpoints")) {
		memset(r, 0, sizeof(*r));
		r->first_bad_record = -1;
		snprintf(err, errlen, "audit directory path too long or missing");
		return BS_ERR_INVALID;
	}
	/* a new install has no log yet: an empty one (checkpoints must then be absent too) */
	if (stat(log_path, &sb) != 0 && errno == ENOENT)
		lp = "/dev/null";
	memset(&o, 0, sizeof(o));
	o.max_uncovered = max_uncovered;
	o.leaf = leaf;
	o.leaf_arg = leaf_arg;
	o.nleaves = nleaves;
	if ((rc = audit_verify_files(lp, cps, v, nv, &o, r)) != 0) {
		snprintf(err, errlen, "cannot verify the audit log in %s: %s", audit_dir, r->error);
		return rc;
	}
	if (r->ok)
		return 0;
	if (note_vkey_format(v[nv - 1].name, v[nv - 1].pub, vk, sizeof(vk)) != 0)
		snprintf(vk, sizeof(vk), "NAME+HASH+KEY");
	if (r->first_bad_record >= 0)
		snprintf(where, sizeof(where), "record %" PRId64, r->first_bad_record);
	else
		snprintf(where, sizeof(where), "checkpoint %" PRIu64, r->bad_checkpoint);
	if (r->tail_refused)
		snprintf(err, errlen, "audit log in %s: %s: %s. If that is expected (a crash, or a "
		    "long run without checkpoints), inspect a copy of the directory with `boltseal "
		    "audit verify --dir COPY --vkey '%s' --allow-tail %" PRIu64 "`, then start once "
		    "with --accept-audit-tail %" PRIu64 " (recorded in the audit log); "
		    "audit_uncovered_max is %" PRIu64, audit_dir, where, r->error, vk, r->uncovered,
		    r->uncovered, max_uncovered);
	else
		snprintf(err, errlen, "audit log in %s: %s: %s. The log or its checkpoints were "
		    "altered or damaged; inspect a copy of the directory with `boltseal audit verify "
		    "--dir COPY --vkey '%s'`", audit_dir, where, r->error, vk);
	return BS_ERR_MISMATCH;
}
