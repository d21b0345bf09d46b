/*
 * test_auditlog.c - unit tests for src/audit/auditlog.c (the append-only,
 * hash-chained JSON-lines audit log with its RFC 6962 tree) and the
 * checkpoint store of src/audit/checkpoint.c.
 *
 * The log tests run a real libevent loop (evthread pthreads) in bounded
 * loops and read the file back byte for byte: a strict JSON checker written
 * here validates every line (syntax, UTF-8, escapes, the 16 fields in their
 * order), the seq/prev chain is recomputed with merkle_leaf_hash, the roots
 * with merkle_tree_* and with a naive recursive MTH, and every inclusion and
 * consistency proof the log hands out is verified. Also: group commit of 200
 * records, close/reopen (chain continues, close drains), a torn tail cut
 * and recorded, altered/swapped/deleted lines refused with the index of the
 * first record whose chain breaks, audit_log_read ranges and byte limits,
 * write failures made real with RLIMIT_FSIZE (callers get UNAVAILABLE, the
 * records are written later as "response withheld"), and queue_max with
 * the "unrecorded_refusals" summary, and the places reserved for key
 * records past queue_max (a writer held in fdatasync(2) by an interposed
 * fdatasync keeps the queue full; an injected EIO makes a key record's
 * write fail). The checkpoint store tests cover
 * write/list/read, file names and modes, and checkpoint_ed25519_raw on
 * real OpenSSL SPKIs.
 */
#define _GNU_SOURCE                  /* memmem, strptime, timegm */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "formats/merkle.h"
#include "fsync_gate.h"

#define H MERKLE_HASH_LEN
#define PUMP_TIMEOUT_MS 10000
#define PUMP_MAX_ITER 100000
#define MAX_LINES 4096
#define WITHHELD_PREFIX "response withheld: the audit log could not be written; outcome was "

static const char *const field_order[] = {
	"seq", "prev", "timestamp", "type", "request_id", "principal_id", "identity",
	"cert_sha256", "method", "key", "key_version", "target", "result", "reason", "event",
	"payload_sha256",
};
#define NFIELDS (sizeof(field_order) / sizeof(field_order[0]))

/* ---- a strict JSON checker for one record line --------------------------- */

#define JMAX_MEMBERS 32
#define JMAX_ELEMS 64

struct jmember {
	char *key;
	char type;                   /* 'n' null, 'b' bool, 'd' number, 's' string, 'a' array */
	char *str;                   /* 's': decoded UTF-8; 'd': the number's text */
	size_t len;
	char *elems[JMAX_ELEMS];     /* 'a': decoded strings (arrays of strings only) */
	size_t nelems;
};

struct jobj {
	struct jmember m[JMAX_MEMBERS];
	size_t n;
};

struct jp {
	const unsigned char *p, *end;
};

static void
jobj_free(struct jobj *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->m[i].key);
		free(o->m[i].str);
		for (size_t j = 0; j < o->m[i].nelems; j++)
			free(o->m[i].elems[j]);
	}
	memset(o, 0, sizeof(*o));
}

static void
jskip_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
		j->p++;
}

static int
jhex4(const unsigned char *s, unsigned *v)
{
	unsigned r = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		r = r << 4 | d;
	}
	*v = r;
	return 0;
}

static size_t
jput_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid (RFC 3629) UTF-8 sequence at p, or 0. */
static size_t
jutf8_len(const unsigned char *p, size_t avail)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Parses a JSON string at j->p into a malloc'd decoded buffer. 0 or -1. */
static int
jstring(struct jp *j, char **out, size_t *outlen)
{
	char *buf, *o;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	if ((buf = malloc((size_t)(j->end - j->p) + 1)) == NULL)
		return -1;
	o = buf;
	for (;;) {
		unsigned c, cp, lo;
		size_t n;

		if (j->p >= j->end)
			goto fail;
		c = *j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20)
			goto fail;           /* raw control characters are not JSON */
		if (c != '\\') {
			if ((n = jutf8_len(j->p, (size_t)(j->end - j->p))) == 0)
				goto fail;
			memcpy(o, j->p, n);
			o += n;
			j->p += n;
			continue;
		}
		if (j->end - j->p < 2)
			goto fail;
		c = j->p[1];
		j->p += 2;
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (j->end - j->p < 4 || jhex4(j->p, &cp) != 0)
				goto fail;
			j->p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto fail;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
				    jhex4(j->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
					goto fail;
				j->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += jput_utf8(o, cp);
			break;
		default:
			goto fail;
		}
	}
	*o = '\0';
	*out = buf;
	*outlen = (size_t)(o - buf);
	return 0;
fail:
	free(buf);
	return -1;
}

static int
jnumber(struct jp *j, char **out, size_t *outlen)
{
	const unsigned char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end)
		return -1;
	if (*j->p == '0') {
		j->p++;
	} else if (*j->p >= '1' && *j->p <= '9') {
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	} else {
		return -1;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	*outlen = (size_t)(j->p - s);
	if ((*out = malloc(*outlen + 1)) == NULL)
		return -1;
	memcpy(*out, s, *outlen);
	(*out)[*outlen] = '\0';
	return 0;
}

static int
jliteral(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

/*
 * Parses one line (exactly len bytes) as a JSON object whose member values
 * are null, booleans, numbers, strings or arrays of strings (the record
 * schema has nothing else). Duplicate keys are rejected. 0 or -1.
 */
static int
jparse_record(const char *line, size_t len, struct jobj *o)
{
	struct jp j = { (const unsigned char *)line, (const unsigned char *)line + len };

	memset(o, 0, sizeof(*o));
	jskip_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return -1;
	j.p++;
	jskip_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
		goto tail;
	}
	for (;;) {
		struct jmember *m;
		size_t klen;

		if (o->n == JMAX_MEMBERS)
			goto fail;
		m = &o->m[o->n];
		jskip_ws(&j);
		if (jstring(&j, &m->key, &klen) != 0)
			goto fail;
		o->n++;
		if (strlen(m->key) != klen)
			goto fail;
		for (size_t i = 0; i + 1 < o->n; i++)
			if (strcmp(o->m[i].key, m->key) == 0)
				goto fail;
		jskip_ws(&j);
		if (j.p >= j.end || *j.p != ':')
			goto fail;
		j.p++;
		jskip_ws(&j);
		if (j.p >= j.end)
			goto fail;
		if (*j.p == '"') {
			m->type = 's';
			if (jstring(&j, &m->str, &m->len) != 0)
				goto fail;
		} else if (*j.p == 'n') {
			m->type = 'n';
			if (jliteral(&j, "null") != 0)
				goto fail;
		} else if (*j.p == 't' || *j.p == 'f') {
			m->type = 'b';
			if (jliteral(&j, "true") != 0 && jliteral(&j, "false") != 0)
				goto fail;
		} else if (*j.p == '[') {
			m->type = 'a';
			j.p++;
			jskip_ws(&j);
			if (j.p < j.end && *j.p == ']') {
				j.p++;
			} else {
				for (;;) {
					size_t elen;

					if (m->nelems == JMAX_ELEMS)
						goto fail;
					jskip_ws(&j);
					if (jstring(&j, &m->elems[m->nelems], &elen) != 0)
						goto fail;
					m->nelems++;
					jskip_ws(&j);
					if (j.p < j.end && *j.p == ',') {
						j.p++;
						continue;
					}
					if (j.p < j.end && *j.p == ']') {
						j.p++;
						break;
					}
					goto fail;
				}
			}
		} else {
			m->type = 'd';
			if (jnumber(&j, &m->str, &m->len) != 0)
				goto fail;
		}
		jskip_ws(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (j.p < j.end && *j.p == '}') {
			j.p++;
			break;
		}
		goto fail;
	}
tail:
	jskip_ws(&j);
	if (j.p != j.end)
		goto fail;
	return 0;
fail:
	jobj_free(o);
	return -1;
}

static const struct jmember *
jget(const struct jobj *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->m[i].key, key) == 0)
			return &o->m[i];
	return NULL;
}

/* The checker itself must accept and reject the right things. */
static void
test_json_checker(void **state)
{
	static const char *const good[] = {
		"{}", "{\"a\":null,\"b\":1,\"c\":\"x\",\"d\":[],\"e\":[\"p\",\"q\"],\"f\":-0.5e+3}",
		"{\"s\":\"\\u00e9\\ud834\\udd1e \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
		"{\"u\":\"\xc3\xa9\xe2\x9c\x93\xf0\x9d\x84\x9e\"}",
	};
	static const char *const bad[] = {
		"", "{", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":01}", "{\"a\":1.}",
		"{\"a\":\"x\ny\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud834\"}",
		"{\"a\":\"\\udd1e\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}", "{\"a\":1,\"a\":2}", "{\"a\":1}x", "{\"a\":[1]}",
		"{\"a\":\"unterminated}", "{\"a\":nul}", "[]",
	};
	struct jobj o;
	const struct jmember *m;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (jparse_record(good[i], strlen(good[i]), &o) != 0)
			fail_msg("checker rejected valid JSON %s", good[i]);
		jobj_free(&o);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (jparse_record(bad[i], strlen(bad[i]), &o) == 0)
			fail_msg("checker accepted invalid JSON #%zu", i);
	}
	assert_int_equal(jparse_record(good[2], strlen(good[2]), &o), 0);
	m = jget(&o, "s");
	assert_non_null(m);
	assert_int_equal(m->len, strlen("\xc3\xa9\xf0\x9d\x84\x9e \" \\ / \b\f\n\r\t"));
	assert_memory_equal(m->str, "\xc3\xa9\xf0\x9d\x84\x9e \" \\ / \b\f\n\r\t", m->len);
	jobj_free(&o);
}

/* ---- files and directories ------------------------------------------------ */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_rf(const char *dir)
{
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads a whole file (malloc'd, NUL-terminated after len). Fails the test on error. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	*len = have;
	return buf;
}

static void
put_file(const char *path, const void *data, size_t len, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
	size_t off = 0;

	assert_true(fd >= 0);
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(close(fd), 0);
}

struct lines {
	char *buf;
	size_t len;
	size_t n;
	const char *p[MAX_LINES];
	size_t l[MAX_LINES];
	size_t partial;             /* bytes after the last newline */
	size_t zeros;               /* the preallocated tail (NULs) after the records */
};

static void
lines_load(const char *path, struct lines *ls)
{
	size_t pos = 0;

	memset(ls, 0, sizeof(*ls));
	ls->buf = slurp(path, &ls->len);
	/* the records end at the preallocated zeros, which must be zeros to the end */
	{
		const char *z = memchr(ls->buf, '\0', ls->len);

		if (z != NULL) {
			size_t zoff = (size_t)(z - ls->buf);

			for (size_t i = zoff; i < ls->len; i++)
				if (ls->buf[i] != '\0')
					fail_msg("byte %zu after the zeros at %zu is not zero", i, zoff);
			ls->zeros = ls->len - zoff;
			ls->len = zoff;
		}
	}
	while (pos < ls->len) {
		const char *nl = memchr(ls->buf + pos, '\n', ls->len - pos);

		if (nl == NULL) {
			ls->partial = ls->len - pos;
			break;
		}
		assert_true(ls->n < MAX_LINES);
		ls->p[ls->n] = ls->buf + pos;
		ls->l[ls->n] = (size_t)(nl - (ls->buf + pos));
		ls->n++;
		pos = (size_t)(nl - ls->buf) + 1;
	}
}

static void
lines_free(struct lines *ls)
{
	free(ls->buf);
	ls->buf = NULL;
}

/* ---- Merkle helpers --------------------------------------------------------- */

static void
tohex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Naive RFC 6962 MTH over leaf hashes [lo, hi). */
static void
naive_mth(const uint8_t (*leaves)[H], size_t lo, size_t hi, uint8_t out[H])
{
	size_t n = hi - lo, k = 1;
	uint8_t l[H], r[H];

	if (n == 0) {
		SHA256((const unsigned char *)"", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[lo], H);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	naive_mth(leaves, lo, lo + k, l);
	naive_mth(leaves, lo + k, hi, r);
	merkle_node_hash(l, r, out);
}

/*
 * Checks the tree queries of l against the file lines: size, every leaf,
 * every root (merkle_tree_* and the naive MTH for the full size), the
 * inclusion proofs of every leaf at several sizes and every consistency
 * proof (exhaustive up to exhaustive_max).
 */
static void
check_tree(const struct audit_log *l, const struct lines *ls, size_t exhaustive_max)
{
	struct merkle_tree *t = merkle_tree_new();
	uint8_t (*leaves)[H] = calloc(ls->n + 1, H);
	uint8_t (*roots)[H] = calloc(ls->n + 1, H);
	uint8_t got[H], naive[H];
	uint8_t proof[MERKLE_MAX_PROOF][H];
	size_t n = ls->n, np;

	assert_non_null(t);
	assert_non_null(leaves);
	assert_non_null(roots);
	assert_int_equal(audit_log_size(l), n);
	for (size_t i = 0; i < n; i++) {
		merkle_leaf_hash((const uint8_t *)ls->p[i], ls->l[i], leaves[i]);
		assert_int_equal(merkle_tree_append(t, leaves[i]), 0);
		assert_int_equal(audit_log_leaf(l, i, got), 0);
		assert_memory_equal(got, leaves[i], H);
	}
	assert_int_not_equal(audit_log_leaf(l, n, got), 0);
	for (size_t s = 0; s <= n; s++) {
		assert_int_equal(merkle_tree_root(t, s, roots[s]), 0);
		assert_int_equal(audit_log_root(l, s, got), 0);
		if (memcmp(got, roots[s], H) != 0)
			fail_msg("audit_log_root(%zu) differs from the root recomputed from the file", s);
	}
	naive_mth((const uint8_t (*)[H])leaves, 0, n, naive);
	assert_memory_equal(naive, roots[n], H);
	assert_int_not_equal(audit_log_root(l, n + 1, got), 0);

	for (size_t s = 1; s <= n; s++) {
		if (s > exhaustive_max && s != n && s != n / 2 && s != 1)
			continue;
		for (size_t i = 0; i < s; i++) {
			assert_int_equal(audit_log_inclusion(l, i, s, proof, &np), 0);
			if (merkle_verify_inclusion(i, s, leaves[i], (const uint8_t (*)[H])proof, np,
			    roots[s]) != 0)
				fail_msg("inclusion proof of %zu in %zu does not verify", i, s);
		}
		for (size_t s1 = 1; s1 <= s; s1++) {
			if (s > exhaustive_max && s1 != 1 && s1 != s && s1 != s / 2 && s1 != s - 1)
				continue;
			assert_int_equal(audit_log_consistency(l, s1, s, proof, &np), 0);
			if (merkle_verify_consistency(s1, s, roots[s1], roots[s],
			    (const uint8_t (*)[H])proof, np) != 0)
				fail_msg("consistency proof %zu -> %zu does not verify", s1, s);
		}
	}
	if (n > 0)
		assert_int_not_equal(audit_log_inclusion(l, n, n, proof, &np), 0);
	merkle_tree_free(t);
	free(leaves);
	free(roots);
}

/* ---- record checks ------------------------------------------------------------ */

/* A record to append and what its line must say. */
struct trec {
	struct audit_record r;
	char request_id[32], key[32], reason_buf[4096];
	uint8_t cert[32];
	uint8_t payload[3][32];
	const char *want_reason;     /* decoded reason expected in the file (NULL = r.reason) */
	const char *want_result;     /* NULL = r.result */
};

static const char *
type_str(enum audit_type t)
{
	switch (t) {
	case AUDIT_RPC: return "rpc";
	case AUDIT_START: return "start";
	case AUDIT_STOP: return "stop";
	case AUDIT_RELOAD: return "reload";
	case AUDIT_RECOVERY: return "recovery";
	case AUDIT_KEY: return "key";
	default: return "?";
	}
}

static void
want_str(const struct jobj *o, const char *name, const char *want, size_t idx)
{
	const struct jmember *m = jget(o, name);

	assert_non_null(m);
	if (want == NULL) {
		if (m->type != 'n')
			fail_msg("record %zu: %s should be null", idx, name);
		return;
	}
	if (m->type != 's' || m->len != strlen(want) || memcmp(m->str, want, m->len) != 0)
		fail_msg("record %zu: %s is %s, want \"%s\"", idx, name,
		    m->type == 's' ? m->str : "(not a string)", want);
}

static void
want_hex(const struct jobj *o, const char *name, const uint8_t *bytes, size_t idx)
{
	char hx[65];

	if (bytes == NULL) {
		want_str(o, name, NULL, idx);
		return;
	}
	tohex(bytes, 32, hx);
	want_str(o, name, hx, idx);
}

/* Timestamp "YYYY-MM-DDTHH:MM:SS.mmmZ" within 10 minutes of now. */
static void
want_timestamp(const struct jobj *o, size_t idx)
{
	const struct jmember *m = jget(o, "timestamp");
	struct tm tm;
	const char *end;
	time_t t, now = time(NULL);

	assert_non_null(m);
	assert_int_equal(m->type, 's');
	if (m->len != 24)
		fail_msg("record %zu: timestamp %s has length %zu", idx, m->str, m->len);
	for (size_t i = 0; i < 24; i++) {
		char c = m->str[i];
		int digit = c >= '0' && c <= '9';

		switch (i) {
		case 4: case 7: assert_int_equal(c, '-'); break;
		case 10: assert_int_equal(c, 'T'); break;
		case 13: case 16: assert_int_equal(c, ':'); break;
		case 19: assert_int_equal(c, '.'); break;
		case 23: assert_int_equal(c, 'Z'); break;
		default: assert_true(digit); break;
		}
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(m->str, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	t = timegm(&tm);
	if (t < now - 600 || t > now + 600)
		fail_msg("record %zu: timestamp %s is not near now", idx, m->str);
}

/*
 * Checks line idx: valid JSON, exactly the 16 fields in order, seq == idx,
 * prev == hex(prev). Leaves the parsed object in o (caller frees).
 */
static void
check_line_frame(const char *line, size_t len, size_t idx, const uint8_t prev[H], struct jobj *o)
{
	char want[32], hx[65];
	const struct jmember *m;

	if (jparse_record(line, len, o) != 0)
		fail_msg("record %zu is not valid JSON: %.*s", idx, (int)len, line);
	if (o->n != NFIELDS)
		fail_msg("record %zu has %zu fields, want %zu", idx, o->n, NFIELDS);
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(o->m[i].key, field_order[i]) != 0)
			fail_msg("record %zu: field %zu is \"%s\", want \"%s\"", idx, i, o->m[i].key,
			    field_order[i]);
	/* the prefix is literal: {"seq":N,"prev":" (the chain check at open relies on it) */
	snprintf(want, sizeof(want), "{\"seq\":%zu,\"prev\":\"", idx);
	assert_true(len > strlen(want));
	assert_memory_equal(line, want, strlen(want));
	m = jget(o, "seq");
	assert_int_equal(m->type, 'd');
	snprintf(want, sizeof(want), "%zu", idx);
	assert_string_equal(m->str, want);
	tohex(prev, H, hx);
	want_str(o, "prev", hx, idx);
	want_timestamp(o, idx);
	m = jget(o, "payload_sha256");
	assert_int_equal(m->type, 'a');
	m = jget(o, "key_version");
	assert_true(m->type == 'n' || m->type == 'd');
}

/* Checks every field of a parsed record against t. */
static void
check_fields(const struct jobj *o, const struct trec *t, size_t idx)
{
	const struct audit_record *r = &t->r;
	const struct jmember *m;
	char num[32];

	want_str(o, "type", type_str(r->type), idx);
	want_str(o, "request_id", r->request_id, idx);
	want_str(o, "principal_id", r->principal_id, idx);
	want_str(o, "identity", r->identity, idx);
	want_hex(o, "cert_sha256", r->cert_sha256, idx);
	want_str(o, "method", r->method, idx);
	want_str(o, "key", r->key, idx);
	m = jget(o, "key_version");
	if (r->key_version < 0) {
		assert_int_equal(m->type, 'n');
	} else {
		assert_int_equal(m->type, 'd');
		snprintf(num, sizeof(num), "%" PRId64, r->key_version);
		assert_string_equal(m->str, num);
	}
	want_str(o, "target", r->target, idx);
	want_str(o, "result", t->want_result != NULL ? t->want_result : r->result, idx);
	want_str(o, "reason", t->want_reason != NULL ? t->want_reason : r->reason, idx);
	want_str(o, "event", r->event, idx);
	m = jget(o, "payload_sha256");
	assert_int_equal(m->type, 'a');
	if (m->nelems != r->npayload)
		fail_msg("record %zu: %zu payload hashes, want %zu", idx, m->nelems, r->npayload);
	for (size_t i = 0; i < r->npayload; i++) {
		char hx[65];

		tohex(r->payload_sha256[i], 32, hx);
		assert_string_equal(m->elems[i], hx);
	}
}

/* Checks the frame and the chain of every line; fails on a partial tail. */
static void
check_chain(const struct lines *ls)
{
	uint8_t prev[H] = { 0 };
	struct jobj o;

	assert_int_equal(ls->partial, 0);
	for (size_t i = 0; i < ls->n; i++) {
		check_line_frame(ls->p[i], ls->l[i], i, prev, &o);
		jobj_free(&o);
		merkle_leaf_hash((const uint8_t *)ls->p[i], ls->l[i], prev);
	}
}

static const char REASON_NASTY[] = "quote \" backslash \\ nl \n cr \r tab \t bs \b ff \f "
    "ctl \x01\x1f" " del \x7f" " slash / utf8 \xc3\xa9 \xe2\x9c\x93 \xf0\x9d\x84\x9e end";
/* invalid UTF-8 bytes each become U+FFFD */
static const char REASON_BAD_UTF8[] = "bad \xff\xfe mid \xc3( trunc \xed\xa0\x80 tail \xc3";
static const char REASON_BAD_UTF8_DECODED[] = "bad \xef\xbf\xbd\xef\xbf\xbd mid \xef\xbf\xbd( "
    "trunc \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd tail \xef\xbf\xbd";

/* Fills t with record number i: every field varies, some NULL. */
static void
trec_make(struct trec *t, size_t i, const char *tag)
{
	static const char *const results[] = { "OK", "PERMISSION_DENIED", "UNAVAILABLE",
		"INVALID_ARGUMENT", "OK", "NOT_FOUND", "OK", NULL };
	static const char *const events[] = { NULL, "key_created", NULL, "key_rotated", "start",
		NULL };
	struct audit_record *r = &t->r;

	memset(t, 0, sizeof(*t));
	r->type = (enum audit_type)(AUDIT_RPC + (int)(i % 6));
	if (i % 4 != 1) {
		snprintf(t->request_id, sizeof(t->request_id), "%s-%zu", tag, i);
		r->request_id = t->request_id;
	}
	r->principal_id = i % 3 == 0 ? NULL : "ci-ota-release";
	r->identity = i % 3 == 0 ? NULL : "spiffe://fleet.example/ci/ota-release";
	if (i % 2 == 0) {
		for (size_t k = 0; k < 32; k++)
			t->cert[k] = (uint8_t)(i * 7 + k * 13);
		r->cert_sha256 = t->cert;
	}
	r->method = i % 5 == 4 ? NULL : "boltseal.v1.KeyService/Sign";
	if (i % 2 == 1) {
		snprintf(t->key, sizeof(t->key), "fw-key-%zu", i);
		r->key = t->key;
	}
	r->key_version = i % 3 == 0 ? -1 : (int64_t)i;
	if (i == 4)
		r->key_version = 0;
	if (i == 5)
		r->key_version = INT64_C(9007199254740993);   /* not exact as a double */
	r->target = i % 7 == 3 ? "projects/x/targets/\"q\"" : NULL;
	r->result = results[i % 8];
	switch (i) {
	case 2:
		r->reason = REASON_NASTY;
		break;
	case 6:
		r->reason = REASON_BAD_UTF8;
		t->want_reason = REASON_BAD_UTF8_DECODED;
		break;
	case 9:
		/* long enough to grow the writer's buffer */
		for (size_t k = 0; k + 1 < sizeof(t->reason_buf); k++)
			t->reason_buf[k] = (char)('a' + k % 26);
		r->reason = t->reason_buf;
		break;
	case 10:
		r->reason = "";
		break;
	default:
		r->reason = i % 2 == 0 ? "no role of principal 'x' grants it" : NULL;
		break;
	}
	r->event = events[i % 6];
	r->npayload = i % 4 == 3 ? 0 : i % 4;
	for (size_t k = 0; k < r->npayload; k++) {
		char msg[64];

		snprintf(msg, sizeof(msg), "payload-%s-%zu-%zu", tag, i, k);
		SHA256((const unsigned char *)msg, strlen(msg), t->payload[k]);
	}
	r->payload_sha256 = (const uint8_t (*)[32])t->payload;
}

/* ---- event loop and callbacks ------------------------------------------------- */

struct cb {
	int calls;
	int rc;
	int wrong_thread;
};

static pthread_t main_thread;

static void
done_cb(void *arg, int rc)
{
	struct cb *c = arg;

	c->calls++;
	c->rc = rc;
	if (!pthread_equal(pthread_self(), main_thread))
		c->wrong_thread = 1;
}

struct fixture {
	char tmp[256];
	char dir[512];               /* tmp/audit (not created) */
	struct event_base *base;
	struct event *tick;
	struct audit_log *log;
	struct cb *cbs;              /* heap: callbacks may run in teardown's close */
	size_t ncbs;
	struct rlimit saved_fsize;
	int fsize_changed;
	size_t prealloc;             /* audit_log_opts.prealloc_chunk of the next open */
};

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct timeval tv = { 0, 5000 };

	if (f == NULL)
		return -1;
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/bs-auditlog-XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/audit", f->tmp);
	if ((f->base = event_base_new()) == NULL)
		return -1;
	/* a heartbeat so EVLOOP_ONCE never spins when nothing is pending */
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
	if (f->tick == NULL || event_add(f->tick, &tv) != 0)
		return -1;
	if (getrlimit(RLIMIT_FSIZE, &f->saved_fsize) != 0)
		return -1;
	f->cbs = calloc(1024, sizeof(*f->cbs));
	f->ncbs = 1024;
	if (f->cbs == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fsize_changed)
		(void)setrlimit(RLIMIT_FSIZE, &f->saved_fsize);
	fsync_gate_reset();                    /* a failed test may have left the writer held */
	audit_log_close(f->log);
	event_free(f->tick);
	event_base_free(f->base);
	rm_rf(f->tmp);
	free(f->cbs);
	free(f);
	return 0;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs the loop until pred(arg) or timeout_ms (bounded in count too). Returns pred. */
static int
pump(struct fixture *f, int (*pred)(struct fixture *, void *), void *arg, long timeout_ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < PUMP_MAX_ITER; i++) {
		if (pred(f, arg))
			return 1;
		if (ms_since(&t0) > timeout_ms)
			break;
		(void)event_base_loop(f->base, EVLOOP_ONCE);
	}
	return pred(f, arg);
}

static int
never(struct fixture *f, void *arg)
{
	(void)f;
	(void)arg;
	return 0;
}

struct range {
	size_t from, to;
};

/* Callbacks [from, to) all ran at least once. */
static int
all_called(struct fixture *f, void *arg)
{
	const struct range *r = arg;

	for (size_t i = r->from; i < r->to; i++)
		if (f->cbs[i].calls == 0)
			return 0;
	return 1;
}

struct size_want {
	uint64_t size;
	int healthy;
};

static int
reached(struct fixture *f, void *arg)
{
	const struct size_want *w = arg;

	return audit_log_healthy(f->log) == w->healthy && audit_log_size(f->log) >= w->size;
}

/* Pumps until callbacks [from, to) ran, then a little more; each must have run once with rc. */
static void
expect_callbacks(struct fixture *f, size_t from, size_t to, int rc)
{
	struct range r = { from, to };

	if (!pump(f, all_called, &r, PUMP_TIMEOUT_MS))
		fail_msg("not every callback ran within %d ms", PUMP_TIMEOUT_MS);
	(void)pump(f, never, NULL, 60);
	for (size_t i = from; i < to; i++) {
		if (f->cbs[i].calls != 1)
			fail_msg("callback %zu ran %d times", i, f->cbs[i].calls);
		if (f->cbs[i].rc != rc)
			fail_msg("callback %zu got %d (%s), want %d", i, f->cbs[i].rc,
			    bs_strerror(f->cbs[i].rc), rc);
		assert_int_equal(f->cbs[i].wrong_thread, 0);
	}
}

static void
open_log_reserve(struct fixture *f, unsigned queue_max, unsigned reserve)
{
	struct audit_log_opts o;
	char err[512] = "";
	int rc;

	memset(&o, 0, sizeof(o));
	o.queue_max = queue_max;
	o.reserve = reserve;
	o.prealloc_chunk = f->prealloc;
	rc = audit_log_open(f->dir, f->base, &o, &f->log, err, sizeof(err));
	if (rc != 0)
		fail_msg("audit_log_open: %s (%s)", bs_strerror(rc), err);
	assert_non_null(f->log);
}

static void
open_log(struct fixture *f, unsigned queue_max)
{
	open_log_reserve(f, queue_max, 0);
}

static void
close_log(struct fixture *f)
{
	audit_log_close(f->log);
	f->log = NULL;
}

static void
append(struct fixture *f, const struct audit_record *r, size_t cbi)
{
	int rc;

	assert_true(cbi < f->ncbs);
	rc = audit_log_append(f->log, r, done_cb, &f->cbs[cbi]);
	if (rc != 0)
		fail_msg("audit_log_append #%zu: %s", cbi, bs_strerror(rc));
}

static void
log_path(const struct fixture *f, char *out, size_t cap)
{
	snprintf(out, cap, "%s/audit.jsonl", f->dir);
}

/* Appends n simple records tagged tag, callbacks [cb0, cb0+n), and waits for rc 0. */
static void
append_simple(struct fixture *f, size_t n, size_t cb0, const char *tag)
{
	struct trec *t = malloc(sizeof(*t));

	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		trec_make(t, i + 11, tag);     /* 11+: no 4 KB reason */
		append(f, &t->r, cb0 + i);
	}
	free(t);
	expect_callbacks(f, cb0, cb0 + n, 0);
}

/* ---- log tests ------------------------------------------------------------------- */

#define N_BASIC 37

static void
test_append_basic(void **state)
{
	struct fixture *f = *state;
	struct trec *t = calloc(N_BASIC, sizeof(*t));
	struct lines *ls = malloc(sizeof(*ls));
	char path[600];
	const char *p;
	struct stat st;
	uint8_t prev[H] = { 0 }, root[H], empty[H];

	assert_non_null(t);
	assert_non_null(ls);
	open_log(f, 65536);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	log_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 0);
	p = audit_log_path(f->log);
	assert_string_equal(p, path);
	assert_int_equal(audit_log_size(f->log), 0);
	assert_int_equal(audit_log_healthy(f->log), 1);
	assert_int_equal(audit_log_root(f->log, 0, root), 0);
	SHA256((const unsigned char *)"", 0, empty);
	assert_memory_equal(root, empty, H);

	for (size_t i = 0; i < N_BASIC; i++) {
		trec_make(&t[i], i, "basic");
		append(f, &t[i].r, i);
		/* the record is a copy: clobber the caller's buffers at once */
		if (t[i].r.request_id != NULL)
			memset(t[i].request_id, 'Z', strlen(t[i].request_id));
		if (i % 3 == 0)
			(void)pump(f, never, NULL, 3);
	}
	/* restore what the file must say */
	for (size_t i = 0; i < N_BASIC; i++)
		if (t[i].r.request_id != NULL)
			snprintf(t[i].request_id, sizeof(t[i].request_id), "basic-%zu", i);
	expect_callbacks(f, 0, N_BASIC, 0);
	assert_int_equal(audit_log_size(f->log), N_BASIC);

	lines_load(path, ls);
	assert_int_equal(ls->partial, 0);
	assert_int_equal(ls->n, N_BASIC);
	for (size_t i = 0; i < N_BASIC; i++) {
		struct jobj o;

		check_line_frame(ls->p[i], ls->l[i], i, prev, &o);
		check_fields(&o, &t[i], i);
		jobj_free(&o);
		merkle_leaf_hash((const uint8_t *)ls->p[i], ls->l[i], prev);
	}
	/* the nasty reason round-trips exactly and no raw control byte reached the file */
	for (size_t k = 0; k < ls->len; k++) {
		unsigned char c = (unsigned char)ls->buf[k];

		if (c < 0x20 && c != '\n')
			fail_msg("raw control byte 0x%02x in the file at offset %zu", c, k);
	}
	check_tree(f->log, ls, 12);
	lines_free(ls);
	free(ls);
	free(t);
}

/* 200 records queued before the loop runs at all. */
static void
test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = malloc(sizeof(*t));
	char path[600], want[64];

	assert_non_null(ls);
	assert_non_null(t);
	open_log(f, 65536);
	for (size_t i = 0; i < 200; i++) {
		trec_make(t, i + 11, "gc");
		snprintf(t->request_id, sizeof(t->request_id), "gc-%zu", i);
		t->r.request_id = t->request_id;
		append(f, &t->r, i);
	}
	expect_callbacks(f, 0, 200, 0);
	assert_int_equal(audit_log_size(f->log), 200);
	{
		/* the metrics' figures: every record's lag, one sync per group (fewer than records) */
		struct audit_log_stats st;

		audit_log_stats(f->log, &st);
		assert_int_equal(st.lag.count, 200);
		assert_true(st.sync.count >= 1 && st.sync.count <= 200);
		assert_int_equal(st.refused, 0);
	}
	log_path(f, path, sizeof(path));
	lines_load(path, ls);
	assert_int_equal(ls->n, 200);
	check_chain(ls);
	for (size_t i = 0; i < 200; i++) {
		struct jobj o;

		assert_int_equal(jparse_record(ls->p[i], ls->l[i], &o), 0);
		snprintf(want, sizeof(want), "gc-%zu", i);
		want_str(&o, "request_id", want, i);   /* append order kept */
		jobj_free(&o);
	}
	check_tree(f->log, ls, 0);
	lines_free(ls);
	free(ls);
	free(t);
}

/* on_grow: called on the loop thread after grow_every new records. */
struct grow_rec {
	int calls;
	uint64_t sizes[256];
};

static void
grow_cb(void *arg, uint64_t size)
{
	struct grow_rec *g = arg;

	if (g->calls < 256)
		g->sizes[g->calls] = size;
	g->calls++;
}

static void
test_on_grow(void **state)
{
	struct fixture *f = *state;
	struct audit_log_opts o;
	struct grow_rec g;
	struct trec *t = malloc(sizeof(*t));
	char err[512] = "";
	uint64_t last = 0;

	assert_non_null(t);
	memset(&g, 0, sizeof(g));
	memset(&o, 0, sizeof(o));
	o.queue_max = 65536;
	o.grow_every = 10;
	o.on_grow = grow_cb;
	o.grow_arg = &g;
	if (audit_log_open(f->dir, f->base, &o, &f->log, err, sizeof(err)) != 0)
		fail_msg("audit_log_open: %s", err);
	for (size_t i = 0; i < 55; i++) {
		trec_make(t, i + 11, "grow");
		append(f, &t->r, i);
		(void)pump(f, never, NULL, 1);
	}
	free(t);
	expect_callbacks(f, 0, 55, 0);
	if (g.calls < 1)
		fail_msg("on_grow never called for 55 records with grow_every 10");
	assert_true(g.calls <= 5);
	for (int i = 0; i < g.calls; i++) {
		assert_true(g.sizes[i] >= last + 10);
		assert_true(g.sizes[i] <= 55);
		last = g.sizes[i];
	}
}

static void
test_reopen_continues(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = malloc(sizeof(*t));
	char path[600];
	uint8_t root1[H], root2[H], leaf9[H];
	struct jobj o;
	char hx[65];

	assert_non_null(ls);
	assert_non_null(t);
	open_log(f, 65536);
	append_simple(f, 10, 0, "ro");
	assert_int_equal(audit_log_root(f->log, 10, root1), 0);
	assert_int_equal(audit_log_leaf(f->log, 9, leaf9), 0);
	close_log(f);

	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), 10);
	assert_int_equal(audit_log_root(f->log, 10, root2), 0);
	assert_memory_equal(root1, root2, H);
	append_simple(f, 1, 10, "ro2");
	log_path(f, path, sizeof(path));
	lines_load(path, ls);
	assert_int_equal(ls->n, 11);
	check_chain(ls);
	assert_int_equal(jparse_record(ls->p[10], ls->l[10], &o), 0);
	assert_string_equal(jget(&o, "seq")->str, "10");
	tohex(leaf9, H, hx);
	want_str(&o, "prev", hx, 10);
	jobj_free(&o);
	check_tree(f->log, ls, 11);
	lines_free(ls);

	/* close drains: records queued just before close are written, callbacks run in close */
	for (size_t i = 0; i < 5; i++) {
		trec_make(t, i + 11, "drain");
		append(f, &t->r, 11 + i);
	}
	close_log(f);
	for (size_t i = 11; i < 16; i++) {
		if (f->cbs[i].calls != 1 || f->cbs[i].rc != 0)
			fail_msg("callback %zu after close: %d calls, rc %d", i, f->cbs[i].calls,
			    f->cbs[i].rc);
	}
	lines_load(path, ls);
	assert_int_equal(ls->n, 16);
	check_chain(ls);
	lines_free(ls);
	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), 16);
	free(ls);
	free(t);
}

static void
check_torn_repair(struct fixture *f, const char *partial, size_t nlines_before)
{
	struct lines *ls = malloc(sizeof(*ls));
	char path[600], reason[256];
	struct stat st;
	struct jobj o;
	off_t before;

	assert_non_null(ls);
	log_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	before = st.st_size;
	put_file(path, partial, strlen(partial), O_APPEND);

	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), nlines_before + 1);
	lines_load(path, ls);
	assert_int_equal(ls->partial, 0);
	assert_int_equal(ls->n, nlines_before + 1);
	if (memmem(ls->buf, ls->len, partial, strlen(partial)) != NULL)
		fail_msg("the torn bytes are still in the file");
	/* everything before the torn bytes is untouched */
	assert_true((size_t)(ls->p[nlines_before] - ls->buf) == (size_t)before);
	check_chain(ls);
	assert_int_equal(jparse_record(ls->p[nlines_before], ls->l[nlines_before], &o), 0);
	want_str(&o, "type", "recovery", nlines_before);
	want_str(&o, "event", "torn_tail_repaired", nlines_before);
	want_str(&o, "result", "OK", nlines_before);
	want_str(&o, "request_id", NULL, nlines_before);
	snprintf(reason, sizeof(reason), "torn last record removed: %zu bytes without a newline "
	    "at offset %jd", strlen(partial), (intmax_t)before);
	want_str(&o, "reason", reason, nlines_before);
	assert_int_equal(jget(&o, "payload_sha256")->nelems, 0);
	jobj_free(&o);
	check_tree(f->log, ls, 0);
	lines_free(ls);
	free(ls);
}

static void
test_torn_tail(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	char path[600];

	assert_non_null(ls);
	open_log(f, 65536);
	append_simple(f, 5, 0, "torn");
	close_log(f);
	check_torn_repair(f, "{\"seq\":5,\"prev\":\"0123456789abcdef", 5);
	/* the chain goes on after the recovery record */
	append_simple(f, 2, 5, "after");
	close_log(f);
	log_path(f, path, sizeof(path));
	lines_load(path, ls);
	assert_int_equal(ls->n, 8);
	check_chain(ls);
	lines_free(ls);
	/* a second torn write, this time one that looks complete but lacks "\n" */
	check_torn_repair(f, "{\"seq\":8,\"prev\":\"00\",\"x\":1}", 8);
	close_log(f);
	free(ls);
}

/* Appends n zero bytes to path (what a preallocated log holds after its records). */
static void
put_zeros(const char *path, size_t n)
{
	char *z = calloc(1, n);

	assert_non_null(z);
	put_file(path, z, n, O_APPEND);
	free(z);
}

/*
 * The file grows by whole chunks of zeros, the records end where they
 * begin, a close cuts them off, and a log left with its zeros (a crash)
 * opens without a recovery record and goes on right after its records.
 */
static void
test_prealloc_tail(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	char path[600];
	struct stat st;
	size_t rlen;

	assert_non_null(ls);
	f->prealloc = 64 * 1024;
	open_log(f, 65536);
	append_simple(f, 5, 0, "pre");
	log_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 64 * 1024);
	lines_load(path, ls);
	assert_int_equal(ls->n, 5);
	assert_int_equal(ls->len + ls->zeros, 64 * 1024);
	check_chain(ls);
	rlen = ls->len;
	lines_free(ls);
	close_log(f);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, rlen);

	/* left as a crash leaves it: records, then zeros */
	put_zeros(path, 100000);
	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), 5);
	append_simple(f, 1, 5, "after");
	lines_load(path, ls);
	assert_int_equal(ls->n, 6);
	assert_int_equal(ls->len + ls->zeros, (size_t)(rlen + 100000));  /* no new chunk needed */
	check_chain(ls);
	lines_free(ls);
	/* a group that crosses the end of the zeros grows the file by whole chunks */
	append_simple(f, 300, 6, "grow");
	lines_load(path, ls);
	assert_int_equal(ls->n, 306);
	assert_int_equal((ls->len + ls->zeros) % (64 * 1024), 0);
	assert_true(ls->len + ls->zeros > rlen + 100000);
	check_chain(ls);
	lines_free(ls);
	close_log(f);
	free(ls);
}

/*
 * A write that never completed among the zeros (bytes after a NUL: blocks
 * of one group that reached the disk out of order) is cut off and recorded.
 */
static void
test_prealloc_torn(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	char path[600], reason[256];
	static const char part1[] = "{\"seq\":5,\"prev\":\"0123", part2[] = "7\"}\n{\"seq\":6";
	struct stat st;
	struct jobj o;
	size_t rlen;

	assert_non_null(ls);
	open_log(f, 65536);
	append_simple(f, 5, 0, "torn");
	close_log(f);
	log_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	rlen = (size_t)st.st_size;
	put_file(path, part1, strlen(part1), O_APPEND);
	put_zeros(path, 5000);
	put_file(path, part2, strlen(part2), O_APPEND);
	put_zeros(path, 7000);

	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), 6);
	lines_load(path, ls);
	assert_int_equal(ls->n, 6);
	check_chain(ls);
	assert_true((size_t)(ls->p[5] - ls->buf) == rlen);
	assert_int_equal(jparse_record(ls->p[5], ls->l[5], &o), 0);
	want_str(&o, "event", "torn_tail_repaired", 5);
	snprintf(reason, sizeof(reason), "torn last write removed: %zu bytes among the "
	    "preallocated zeros at offset %zu", strlen(part1) + 5000 + strlen(part2), rlen);
	want_str(&o, "reason", reason, 5);
	jobj_free(&o);
	if (memmem(ls->buf, ls->len, part2, strlen(part2)) != NULL)
		fail_msg("the torn bytes are still in the file");
	lines_free(ls);
	close_log(f);
	free(ls);
}

/* A file holding nothing but a torn first record. */
static void
test_torn_only(void **state)
{
	struct fixture *f = *state;
	char path[600];

	assert_int_equal(mkdir(f->dir, 0700), 0);
	log_path(f, path, sizeof(path));
	put_file(path, "", 0, O_TRUNC);
	check_torn_repair(f, "{\"seq\":0,\"prev\":\"ZZ", 0);
}

/* Rewrites the file with the lines of ls in the given order (indices into ls). */
static void
write_lines(const char *path, const struct lines *ls, const size_t *order, size_t n)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(write(fd, ls->p[order[i]], ls->l[order[i]]), (ssize_t)ls->l[order[i]]);
		assert_int_equal(write(fd, "\n", 1), 1);
	}
	assert_int_equal(close(fd), 0);
}

static void
expect_refused(struct fixture *f, const char *needle)
{
	struct audit_log_opts o;
	struct audit_log *l = NULL;
	char err[1024] = "", path[600];
	char *before, *after;
	size_t blen, alen;
	int rc;

	log_path(f, path, sizeof(path));
	before = slurp(path, &blen);
	memset(&o, 0, sizeof(o));
	o.queue_max = 64;
	rc = audit_log_open(f->dir, f->base, &o, &l, err, sizeof(err));
	if (rc != BS_ERR_MISMATCH) {
		audit_log_close(l);
		fail_msg("open of an altered log: %d (%s), want BS_ERR_MISMATCH; err: %s", rc,
		    bs_strerror(rc), err);
	}
	assert_null(l);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
	assert_non_null(strstr(err, path));
	after = slurp(path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);     /* a refused open changes nothing */
	free(before);
	free(after);
}

static void
test_tamper_refused(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	char path[600], *orig, *pos;
	size_t olen, order[8];

	assert_non_null(ls);
	open_log(f, 65536);
	append_simple(f, 8, 0, "tm");
	close_log(f);
	log_path(f, path, sizeof(path));
	orig = slurp(path, &olen);

	/* one character of a string value in record 3: the chain breaks at record 4 */
	lines_load(path, ls);
	pos = memmem(ls->p[3], ls->l[3], "\"principal_id\":\"ci-ota", 22);
	assert_non_null(pos);
	pos[17] = 'x';               /* "ci-ota-release" -> "xi-ota-release" */
	for (size_t i = 0; i < 8; i++)
		order[i] = i;
	write_lines(path, ls, order, 8);
	expect_refused(f, "record 4 (line 5)");
	lines_free(ls);

	/* records 2 and 3 swapped: position 2 holds seq 3 */
	put_file(path, orig, olen, O_TRUNC);
	lines_load(path, ls);
	order[2] = 3;
	order[3] = 2;
	write_lines(path, ls, order, 8);
	expect_refused(f, "record 2 (line 3)");

	/* record 5 deleted: position 5 holds seq 6 */
	for (size_t i = 0; i < 7; i++)
		order[i] = i < 5 ? i : i + 1;
	write_lines(path, ls, order, 7);
	expect_refused(f, "record 5 (line 6)");

	/* prev of record 0 not all zeros */
	for (size_t i = 0; i < 8; i++)
		order[i] = i;
	write_lines(path, ls, order, 8);
	{
		char *b;
		size_t blen;

		b = slurp(path, &blen);
		b[strlen("{\"seq\":0,\"prev\":\"")] = '1';
		put_file(path, b, blen, O_TRUNC);
		free(b);
	}
	expect_refused(f, "record 0 (line 1)");
	lines_free(ls);

	/* the original opens again */
	put_file(path, orig, olen, O_TRUNC);
	open_log(f, 65536);
	assert_int_equal(audit_log_size(f->log), 8);
	free(orig);
	free(ls);
}

struct reads {
	uint64_t idx[64];
	char *line[64];
	size_t len[64];
	size_t n;
	size_t stop_after;           /* 0: never */
};

static int
read_fn(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct reads *r = arg;

	if (r->n >= 64)
		return BS_ERR_TOO_BIG;
	r->idx[r->n] = index;
	r->line[r->n] = malloc(len + 1);
	if (r->line[r->n] == NULL)
		return BS_ERR_NOMEM;
	memcpy(r->line[r->n], line, len);
	r->len[r->n] = len;
	r->n++;
	if (r->stop_after != 0 && r->n == r->stop_after)
		return BS_ERR_CANCELLED;
	return 0;
}

static void
reads_reset(struct reads *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->line[i]);
	memset(r, 0, sizeof(*r));
}

/* Reads [start, start+count) under max_bytes; checks against the file; returns nread. */
static uint64_t
do_read(struct fixture *f, const struct lines *ls, uint64_t start, uint64_t count, size_t max_bytes)
{
	struct reads r;
	uint64_t nread = 12345;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = audit_log_read(f->log, start, count, max_bytes, read_fn, &r, &nread);
	if (rc != 0)
		fail_msg("audit_log_read(%" PRIu64 ", %" PRIu64 ", %zu): %s", start, count, max_bytes,
		    bs_strerror(rc));
	assert_int_equal(nread, r.n);
	assert_true(nread >= 1);
	for (size_t i = 0; i < r.n; i++) {
		assert_int_equal(r.idx[i], start + i);
		assert_int_equal(r.len[i], ls->l[start + i]);
		assert_memory_equal(r.line[i], ls->p[start + i], r.len[i]);
	}
	reads_reset(&r);
	return nread;
}

static void
test_read(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct reads r;
	char path[600];
	size_t two;
	uint64_t nread;

	assert_non_null(ls);
	open_log(f, 65536);
	append_simple(f, 12, 0, "rd");
	log_path(f, path, sizeof(path));
	lines_load(path, ls);
	assert_int_equal(ls->n, 12);

	assert_int_equal(do_read(f, ls, 0, 12, SIZE_MAX), 12);
	assert_int_equal(do_read(f, ls, 0, 1000, SIZE_MAX), 12);
	assert_int_equal(do_read(f, ls, 3, 4, SIZE_MAX), 4);
	assert_int_equal(do_read(f, ls, 10, 100, SIZE_MAX), 2);
	assert_int_equal(do_read(f, ls, 11, 1, SIZE_MAX), 1);

	/* max_bytes counts each line with its newline; at least one record */
	two = ls->l[3] + 1 + ls->l[4] + 1;
	assert_int_equal(do_read(f, ls, 3, 10, two), 2);
	assert_int_equal(do_read(f, ls, 3, 10, two + ls->l[5]), 2);
	assert_int_equal(do_read(f, ls, 3, 10, two + ls->l[5] + 1), 3);
	assert_int_equal(do_read(f, ls, 3, 10, two - 1), 1);
	assert_int_equal(do_read(f, ls, 3, 10, 1), 1);
	assert_int_equal(do_read(f, ls, 3, 10, 0), 1);
	assert_int_equal(do_read(f, ls, 11, 10, 1), 1);

	/* start at or beyond the end */
	memset(&r, 0, sizeof(r));
	nread = 777;
	assert_int_equal(audit_log_read(f->log, 12, 1, SIZE_MAX, read_fn, &r, &nread),
	    BS_ERR_NOT_FOUND);
	assert_int_equal(audit_log_read(f->log, 1000, 5, SIZE_MAX, read_fn, &r, &nread),
	    BS_ERR_NOT_FOUND);
	assert_int_equal(audit_log_read(f->log, UINT64_MAX, UINT64_MAX, SIZE_MAX, read_fn, &r,
	    &nread), BS_ERR_NOT_FOUND);
	assert_int_equal(r.n, 0);
	assert_int_equal(nread, 777);

	/* a callback error stops the read and is returned */
	r.stop_after = 2;
	assert_int_equal(audit_log_read(f->log, 0, 12, SIZE_MAX, read_fn, &r, &nread),
	    BS_ERR_CANCELLED);
	assert_int_equal(r.n, 2);
	assert_int_equal(nread, 777);
	reads_reset(&r);

	/* reads see records appended later; after a reopen too */
	append_simple(f, 3, 12, "rd2");
	lines_free(ls);
	lines_load(path, ls);
	assert_int_equal(do_read(f, ls, 10, 100, SIZE_MAX), 5);
	close_log(f);
	open_log(f, 65536);
	assert_int_equal(do_read(f, ls, 0, 100, SIZE_MAX), 15);
	lines_free(ls);
	free(ls);
}

/*
 * Sets a soft RLIMIT_FSIZE of limit bytes (SIGXFSZ ignored) and checks that
 * it bites: a write past it fails with EFBIG. Returns 0, or -1 (and restores
 * the limit) when the environment does not enforce it.
 */
static int
limit_fsize(struct fixture *f, rlim_t limit, char *why, size_t whylen)
{
	struct rlimit rl = f->saved_fsize;
	char probe[600];
	char buf[4096];
	ssize_t n;
	int fd, ok = 0;

	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < limit) {
		snprintf(why, whylen, "hard RLIMIT_FSIZE %ju is below %ju", (uintmax_t)rl.rlim_max,
		    (uintmax_t)limit);
		return -1;
	}
	signal(SIGXFSZ, SIG_IGN);
	rl.rlim_cur = limit;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
		snprintf(why, whylen, "setrlimit(RLIMIT_FSIZE): %s", strerror(errno));
		return -1;
	}
	f->fsize_changed = 1;
	snprintf(probe, sizeof(probe), "%s/probe", f->tmp);
	memset(buf, 'p', sizeof(buf));
	fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		size_t total = 0;

		for (int i = 0; i < 1000 && total <= (size_t)limit; i++) {
			n = write(fd, buf, sizeof(buf));
			if (n < 0) {
				ok = errno == EFBIG;
				break;
			}
			total += (size_t)n;
		}
		close(fd);
		(void)unlink(probe);
	}
	if (!ok) {
		(void)setrlimit(RLIMIT_FSIZE, &f->saved_fsize);
		f->fsize_changed = 0;
		snprintf(why, whylen, "a write past a soft RLIMIT_FSIZE of %ju bytes did not fail "
		    "with EFBIG here", (uintmax_t)limit);
		return -1;
	}
	return 0;
}

static void
unlimit_fsize(struct fixture *f)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &f->saved_fsize), 0);
	f->fsize_changed = 0;
}

/*
 * The zeros cannot be written (a file size limit just past the records):
 * the group's own write fails too, the file is cut back to its records, and
 * once the limit is gone the records land and the zeros follow.
 */
static void
test_prealloc_failure(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	char path[600], why[256];
	struct stat st;
	struct size_want w;
	struct trec t;
	size_t rlen;

	assert_non_null(ls);
	f->prealloc = 64 * 1024;
	open_log(f, 65536);
	append_simple(f, 2, 0, "pf");
	close_log(f);
	log_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	rlen = (size_t)st.st_size;
	open_log(f, 65536);
	if (limit_fsize(f, (rlim_t)rlen + 10, why, sizeof(why)) != 0) {
		free(ls);
		print_message("skipping the preallocation-failure test: %s\n", why);
		skip();
	}
	trec_make(&t, 2, "pf");
	append(f, &t.r, 2);
	expect_callbacks(f, 2, 3, BS_ERR_UNAVAILABLE);
	assert_int_equal(audit_log_healthy(f->log), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, rlen);

	unlimit_fsize(f);
	w.size = 3;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms", PUMP_TIMEOUT_MS);
	lines_load(path, ls);
	assert_int_equal(ls->n, 3);
	assert_true(ls->zeros > 0);
	assert_int_equal((ls->len + ls->zeros) % (64 * 1024), 0);
	check_chain(ls);
	lines_free(ls);
	close_log(f);
	free(ls);
}

static void
test_write_failure(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = calloc(5, sizeof(*t));
	char path[600], why[256], reason[5][512];
	struct stat st;
	struct size_want w;
	char *before;
	size_t blen;

	assert_non_null(ls);
	assert_non_null(t);
	f->prealloc = 1;   /* each write grows the file: the next one fails */
	open_log(f, 65536);
	append_simple(f, 5, 0, "wf");
	log_path(f, path, sizeof(path));
	before = slurp(path, &blen);
	/* room for a few bytes of the next record only: a short write, then EFBIG */
	if (limit_fsize(f, (rlim_t)blen + 10, why, sizeof(why)) != 0) {
		free(before);
		free(ls);
		free(t);
		print_message("skipping the write-failure test: %s\n", why);
		skip();
	}
	for (size_t i = 0; i < 3; i++) {
		trec_make(&t[i], i + 11, "withheld");
		t[i].r.type = AUDIT_RPC;
	}
	t[0].r.result = "OK";
	t[0].r.reason = "signed";
	t[1].r.result = "PERMISSION_DENIED";
	t[1].r.reason = NULL;
	t[2].r.result = NULL;
	t[2].r.reason = "odd \"q\"";
	for (size_t i = 0; i < 3; i++)
		append(f, &t[i].r, 5 + i);
	expect_callbacks(f, 5, 8, BS_ERR_UNAVAILABLE);
	assert_int_equal(audit_log_healthy(f->log), 0);
	assert_int_equal(audit_log_size(f->log), 5);
	/* the failed write was cut back: the file is exactly what it was */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, blen);
	{
		size_t alen;
		char *after = slurp(path, &alen);

		assert_int_equal(alen, blen);
		assert_memory_equal(after, before, blen);
		free(after);
	}
	/* while unhealthy, new callers are told at once */
	for (size_t i = 3; i < 5; i++) {
		trec_make(&t[i], i + 11, "withheld");
		t[i].r.result = "OK";
		t[i].r.reason = NULL;
		append(f, &t[i].r, 5 + i);
	}
	expect_callbacks(f, 8, 10, BS_ERR_UNAVAILABLE);
	assert_int_equal(audit_log_healthy(f->log), 0);
	assert_int_equal(audit_log_size(f->log), 5);

	unlimit_fsize(f);
	w.size = 10;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms (size %" PRIu64 ", healthy %d)",
		    PUMP_TIMEOUT_MS, audit_log_size(f->log), audit_log_healthy(f->log));
	(void)pump(f, never, NULL, 60);
	assert_int_equal(audit_log_size(f->log), 10);
	for (size_t i = 5; i < 10; i++)
		assert_int_equal(f->cbs[i].calls, 1);      /* never told twice */

	lines_load(path, ls);
	assert_int_equal(ls->n, 10);
	assert_memory_equal(ls->buf, before, blen);
	check_chain(ls);
	snprintf(reason[0], sizeof(reason[0]), WITHHELD_PREFIX "OK: signed");
	snprintf(reason[1], sizeof(reason[1]), WITHHELD_PREFIX "PERMISSION_DENIED");
	snprintf(reason[2], sizeof(reason[2]), WITHHELD_PREFIX "?: odd \"q\"");
	snprintf(reason[3], sizeof(reason[3]), WITHHELD_PREFIX "OK");
	snprintf(reason[4], sizeof(reason[4]), WITHHELD_PREFIX "OK");
	for (size_t i = 0; i < 5; i++) {
		struct jobj o;

		t[i].want_result = "UNAVAILABLE";
		t[i].want_reason = reason[i];
		assert_int_equal(jparse_record(ls->p[5 + i], ls->l[5 + i], &o), 0);
		check_fields(&o, &t[i], 5 + i);
		jobj_free(&o);
	}
	check_tree(f->log, ls, 10);
	lines_free(ls);

	/* and it takes new records normally */
	append_simple(f, 2, 10, "wf-after");
	assert_int_equal(audit_log_size(f->log), 12);
	assert_int_equal(audit_log_healthy(f->log), 1);
	lines_load(path, ls);
	check_chain(ls);
	lines_free(ls);
	free(before);
	free(ls);
	free(t);
}

/* Finds the "unrecorded_refusals" records from line from on; returns their count and summed N. */
static size_t
refusal_notes(const struct lines *ls, size_t from, uint64_t *sum)
{
	static const char tail[] = " calls refused because the audit log could not take their "
	    "records (write failure or backlog) were not recorded one by one";
	size_t notes = 0;

	*sum = 0;
	for (size_t i = from; i < ls->n; i++) {
		struct jobj o;
		const struct jmember *ev, *rs;
		char *end;
		unsigned long long v;

		assert_int_equal(jparse_record(ls->p[i], ls->l[i], &o), 0);
		ev = jget(&o, "event");
		if (ev->type == 's' && strcmp(ev->str, "unrecorded_refusals") == 0) {
			want_str(&o, "type", "recovery", i);
			want_str(&o, "result", "OK", i);
			rs = jget(&o, "reason");
			assert_int_equal(rs->type, 's');
			errno = 0;
			v = strtoull(rs->str, &end, 10);
			assert_true(end != rs->str && errno == 0);
			if (strcmp(end, tail) != 0)
				fail_msg("record %zu: reason \"%s\"", i, rs->str);
			*sum += v;
			notes++;
		}
		jobj_free(&o);
	}
	return notes;
}

#define QMAX 4

static void
test_queue_full(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = malloc(sizeof(*t));
	char path[600], why[256];
	struct size_want w;
	uint64_t sum;
	size_t notes, blen;
	char *before;
	int rc;

	assert_non_null(ls);
	assert_non_null(t);
	f->prealloc = 1;   /* each write grows the file: the next one fails */
	open_log(f, QMAX);
	append_simple(f, 3, 0, "qf");
	log_path(f, path, sizeof(path));
	before = slurp(path, &blen);
	free(before);
	if (limit_fsize(f, (rlim_t)blen + 10, why, sizeof(why)) != 0) {
		free(ls);
		free(t);
		print_message("skipping the queue_max test: %s\n", why);
		skip();
	}
	/* QMAX records are kept (withheld) ... */
	for (size_t i = 0; i < QMAX; i++) {
		trec_make(t, i + 11, "qf-held");
		append(f, &t->r, 3 + i);
	}
	expect_callbacks(f, 3, 3 + QMAX, BS_ERR_UNAVAILABLE);
	assert_int_equal(audit_log_healthy(f->log), 0);
	/* ... beyond that, refused at once and never called back */
	for (size_t i = 0; i < 7; i++) {
		trec_make(t, i + 11, "qf-refused");
		rc = audit_log_append(f->log, &t->r, done_cb, &f->cbs[100 + i]);
		assert_int_equal(rc, BS_ERR_QUEUE_FULL);
	}
	(void)pump(f, never, NULL, 50);
	unlimit_fsize(f);
	w.size = 3 + QMAX + 1;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms", PUMP_TIMEOUT_MS);
	(void)pump(f, never, NULL, 60);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(f->cbs[100 + i].calls, 0);
	{
		struct audit_log_stats st;

		audit_log_stats(f->log, &st);
		assert_int_equal(st.refused, 7);   /* a counter: the recovery note does not reset it */
	}
	lines_load(path, ls);
	check_chain(ls);
	notes = refusal_notes(ls, 3, &sum);
	assert_true(notes >= 1);
	assert_int_equal(sum, 7);
	assert_int_equal(ls->n, 3 + QMAX + notes);
	check_tree(f->log, ls, 0);
	lines_free(ls);

	/* the queue has room again */
	append_simple(f, QMAX, 10, "qf-after");
	free(ls);
	free(t);
}

/*
 * Refusals spread over several retry periods (the writer retries every
 * 200 ms) are still one summary: the header promises the refused calls are
 * "summarised in a recovery record", and queue_max bounds the records kept
 * while unhealthy, so the summaries must not pile up one per retry.
 */
static void
test_refusals_summarised_once(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = malloc(sizeof(*t));
	char path[600], why[256];
	struct size_want w;
	uint64_t sum;
	size_t notes, blen;
	char *before;

	assert_non_null(ls);
	assert_non_null(t);
	f->prealloc = 1;   /* each write grows the file: the next one fails */
	open_log(f, QMAX);
	append_simple(f, 1, 0, "rs");
	log_path(f, path, sizeof(path));
	before = slurp(path, &blen);
	free(before);
	if (limit_fsize(f, (rlim_t)blen + 10, why, sizeof(why)) != 0) {
		free(ls);
		free(t);
		print_message("skipping the refusal-summary test: %s\n", why);
		skip();
	}
	for (size_t i = 0; i < QMAX; i++) {
		trec_make(t, i + 11, "rs-held");
		append(f, &t->r, 1 + i);
	}
	expect_callbacks(f, 1, 1 + QMAX, BS_ERR_UNAVAILABLE);
	for (size_t i = 0; i < 4; i++) {
		trec_make(t, i + 11, "rs-refused");
		assert_int_equal(audit_log_append(f->log, &t->r, done_cb, &f->cbs[100 + i]),
		    BS_ERR_QUEUE_FULL);
		(void)pump(f, never, NULL, 450);      /* two retry periods */
	}
	unlimit_fsize(f);
	w.size = 1 + QMAX + 1;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms", PUMP_TIMEOUT_MS);
	(void)pump(f, never, NULL, 60);
	lines_load(path, ls);
	check_chain(ls);
	notes = refusal_notes(ls, 1, &sum);
	lines_free(ls);
	free(ls);
	free(t);
	assert_int_equal(sum, 4);
	if (notes != 1)
		fail_msg("%zu \"unrecorded_refusals\" records for 4 refusals spread over several "
		    "retries; want one record stating 4 (each failed retry adds one more kept "
		    "record, beyond queue_max)", notes);
}

/* ---- places reserved for key records ---------------------------------------- */

/* A key record as the KeyService writes it. */
static void
key_record(struct audit_record *r, const char *event, const char *key, int64_t version)
{
	memset(r, 0, sizeof(*r));
	r->type = AUDIT_KEY;
	r->request_id = "00000001000000000000002a";
	r->principal_id = "admin";
	r->identity = "spiffe://t.example/admin";
	r->method = "boltseal.v1.KeyService/CreateKey";
	r->key = key;
	r->key_version = version;
	r->result = "OK";
	r->event = event;
}

/* The index of the line whose event is event and key is key, or -1 (each checked on the way). */
static long
find_key_line(const struct lines *ls, const char *event, const char *key)
{
	long found = -1;

	for (size_t i = 0; i < ls->n; i++) {
		struct jobj o;
		const struct jmember *ev, *k;

		assert_int_equal(jparse_record(ls->p[i], ls->l[i], &o), 0);
		ev = jget(&o, "event");
		k = jget(&o, "key");
		if (ev != NULL && ev->type == 's' && strcmp(ev->str, event) == 0 && k != NULL &&
		    k->type == 's' && strcmp(k->str, key) == 0) {
			if (found >= 0)
				fail_msg("two \"%s\" records for %s", event, key);
			found = (long)i;
		}
		jobj_free(&o);
	}
	return found;
}

#define RQMAX 4
#define RRESERVE 2

/*
 * The queue is full of ordinary records (the writer held in fdatasync, the
 * log healthy): ordinary appends are refused and counted, but reservations
 * still get the RRESERVE places past queue_max, and what is committed there
 * is written. Without the reserve, the key records would have been refused
 * like the ordinary ones (one more count in "unrecorded_refusals").
 */
static void
test_reserve_past_queue_max(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct trec *t = malloc(sizeof(*t));
	struct audit_slot *s1 = NULL, *s2 = NULL, *s3 = NULL;
	struct audit_record kr;
	struct size_want w;
	char path[600];
	uint64_t sum;
	long at;

	assert_non_null(ls);
	assert_non_null(t);
	open_log_reserve(f, RQMAX, RRESERVE);
	log_path(f, path, sizeof(path));
	assert_int_equal(fsync_gate_watch(path), 0);
	fsync_gate_set(1, 0);
	/* the writer takes the first record and is held in its fdatasync */
	trec_make(t, 11, "rq");
	append(f, &t->r, 0);
	if (!fsync_gate_wait_held(10))
		fail_msg("the audit writer never reached fdatasync");
	for (size_t i = 1; i < RQMAX; i++) {
		trec_make(t, i + 11, "rq");
		append(f, &t->r, i);
	}
	/* ordinary records: full at queue_max */
	trec_make(t, 20, "rq-refused");
	assert_int_equal(audit_log_append(f->log, &t->r, done_cb, &f->cbs[100]), BS_ERR_QUEUE_FULL);
	/* reservations: RRESERVE more places, then full too */
	assert_int_equal(audit_log_reserve(f->log, &s1), 0);
	assert_int_equal(audit_log_reserve(f->log, &s2), 0);
	assert_int_equal(audit_log_reserve(f->log, &s3), BS_ERR_QUEUE_FULL);
	assert_null(s3);
	/* a place given back can be taken again, but never by an ordinary record */
	audit_log_release(f->log, s2);
	s2 = NULL;
	assert_int_equal(audit_log_append(f->log, &t->r, done_cb, &f->cbs[101]), BS_ERR_QUEUE_FULL);
	assert_int_equal(audit_log_reserve(f->log, &s2), 0);
	key_record(&kr, "key_created", "k-new", 1);
	assert_int_equal(audit_log_commit_reserved(f->log, s1, &kr, done_cb, &f->cbs[10]), 0);
	key_record(&kr, "key_rotated", "k-old", 2);
	assert_int_equal(audit_log_commit_reserved(f->log, s2, &kr, NULL, NULL), 0);
	(void)pump(f, never, NULL, 50);
	assert_int_equal(f->cbs[10].calls, 0);          /* held: nothing is durable yet */
	assert_int_equal(audit_log_size(f->log), 0);

	fsync_gate_set(0, 0);
	expect_callbacks(f, 0, RQMAX, 0);
	expect_callbacks(f, 10, 11, 0);
	w.size = RQMAX + 2 + 1;                          /* + the refusal count */
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("not everything was written (size %" PRIu64 ")", audit_log_size(f->log));
	assert_int_equal(f->cbs[100].calls, 0);
	assert_int_equal(f->cbs[101].calls, 0);
	lines_load(path, ls);
	check_chain(ls);
	assert_int_equal(ls->n, RQMAX + 2 + 1);
	at = find_key_line(ls, "key_created", "k-new");
	if (at < 0)
		fail_msg("the key record committed in a reserved place is not in the log");
	{
		struct jobj o;

		assert_int_equal(jparse_record(ls->p[at], ls->l[at], &o), 0);
		want_str(&o, "type", "key", (size_t)at);
		want_str(&o, "result", "OK", (size_t)at);
		want_str(&o, "reason", NULL, (size_t)at);
		want_str(&o, "principal_id", "admin", (size_t)at);
		jobj_free(&o);
	}
	assert_true(find_key_line(ls, "key_rotated", "k-old") > at);
	assert_int_equal(refusal_notes(ls, 0, &sum), 1);
	assert_int_equal(sum, 2);                        /* the two ordinary refusals only */
	check_tree(f->log, ls, 0);
	lines_free(ls);

	/* drained: every place is free again */
	assert_int_equal(audit_log_reserve(f->log, &s1), 0);
	assert_int_equal(audit_log_reserve(f->log, &s2), 0);
	audit_log_release(f->log, s1);
	audit_log_release(f->log, s2);
	audit_log_release(f->log, NULL);
	append_simple(f, RQMAX, 20, "rq-after");
	free(ls);
	free(t);
}

/*
 * A key record whose write fails: its caller is told (and must not make
 * the change), reservations are refused while the log cannot be written,
 * and the record is written on the retry marked "not carried out".
 */
static void
test_reserved_write_failure(void **state)
{
	static const char want[] = "not carried out: the audit log could not be written before "
	    "the change was due; outcome would have been OK";
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct audit_slot *s = NULL;
	struct audit_record kr;
	struct size_want w;
	char path[600];
	long at;

	assert_non_null(ls);
	open_log(f, 16);
	log_path(f, path, sizeof(path));
	assert_int_equal(fsync_gate_watch(path), 0);
	fsync_gate_set(0, 1);                                  /* the next fdatasync fails (EIO) */
	assert_int_equal(audit_log_reserve(f->log, &s), 0);
	key_record(&kr, "key_created", "k-fail", 1);
	assert_int_equal(audit_log_commit_reserved(f->log, s, &kr, done_cb, &f->cbs[0]), 0);
	expect_callbacks(f, 0, 1, BS_ERR_UNAVAILABLE);
	if (audit_log_healthy(f->log)) {
		/* the 200 ms retry already succeeded: only the refusal below is untestable */
		print_message("the retry came before the check; skipping the refused reservation\n");
	} else {
		s = NULL;
		assert_int_equal(audit_log_reserve(f->log, &s), BS_ERR_UNAVAILABLE);
		assert_null(s);
	}
	w.size = 1;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms", PUMP_TIMEOUT_MS);
	assert_int_equal(f->cbs[0].calls, 1);            /* never told twice */
	lines_load(path, ls);
	check_chain(ls);
	assert_int_equal(ls->n, 1);
	at = find_key_line(ls, "key_created", "k-fail");
	assert_int_equal(at, 0);
	{
		struct jobj o;

		assert_int_equal(jparse_record(ls->p[0], ls->l[0], &o), 0);
		want_str(&o, "type", "key", 0);
		want_str(&o, "result", "UNAVAILABLE", 0);
		want_str(&o, "reason", want, 0);
		jobj_free(&o);
	}
	lines_free(ls);
	free(ls);
}

/* audit_log_write_wait: durable when it returns, without running the loop. */
static void
test_write_wait(void **state)
{
	struct fixture *f = *state;
	struct lines *ls = malloc(sizeof(*ls));
	struct audit_record kr;
	struct size_want w;
	char path[600];

	assert_non_null(ls);
	open_log(f, 16);
	log_path(f, path, sizeof(path));
	key_record(&kr, "key_created", "audit-log", 1);
	kr.request_id = NULL;
	kr.principal_id = NULL;
	kr.identity = NULL;
	kr.method = NULL;
	assert_int_equal(audit_log_write_wait(f->log, &kr), 0);
	assert_int_equal(audit_log_size(f->log), 1);
	lines_load(path, ls);
	assert_int_equal(ls->n, 1);
	assert_int_equal(find_key_line(ls, "key_created", "audit-log"), 0);
	lines_free(ls);
	/* a failed write is reported; the record is kept and written on the retry */
	assert_int_equal(fsync_gate_watch(path), 0);
	fsync_gate_set(0, 1);
	key_record(&kr, "key_creation_undone", "audit-log", 1);
	assert_int_equal(audit_log_write_wait(f->log, &kr), BS_ERR_UNAVAILABLE);
	w.size = 2;
	w.healthy = 1;
	if (!pump(f, reached, &w, PUMP_TIMEOUT_MS))
		fail_msg("the log did not recover within %d ms", PUMP_TIMEOUT_MS);
	lines_load(path, ls);
	check_chain(ls);
	assert_int_equal(ls->n, 2);
	assert_int_equal(find_key_line(ls, "key_creation_undone", "audit-log"), 1);
	lines_free(ls);
	free(ls);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct audit_log_opts o;
	struct audit_log *l = NULL;
	char err[512] = "", bad[600];
	int rc;

	memset(&o, 0, sizeof(o));
	o.queue_max = 16;
	/* the parent does not exist */
	snprintf(bad, sizeof(bad), "%s/no/such/dir", f->tmp);
	rc = audit_log_open(bad, f->base, &o, &l, err, sizeof(err));
	assert_int_equal(rc, BS_ERR_IO);
	assert_null(l);
	assert_non_null(strstr(err, bad));

	/* a line that is not a record at all */
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(bad, sizeof(bad), "%s/audit.jsonl", f->dir);
	put_file(bad, "hello\n", 6, O_TRUNC);
	err[0] = '\0';
	rc = audit_log_open(f->dir, f->base, &o, &l, err, sizeof(err));
	assert_int_equal(rc, BS_ERR_MISMATCH);
	assert_null(l);
	assert_non_null(strstr(err, "record 0 (line 1)"));
}

/* ---- checkpoint store ---------------------------------------------------------- */

static void
test_checkpoint_store(void **state)
{
	struct fixture *f = *state;
	char dir[600], path[700];
	static const uint64_t sizes[] = { 5, 17, 3 };
	uint8_t notes[3][64], big[CHECKPOINT_NOTE_MAX + 1];
	uint64_t *list = NULL;
	size_t n = 99, len;
	uint8_t *got = NULL;
	DIR *d;
	struct dirent *de;
	struct stat st;
	int names = 0;

	snprintf(dir, sizeof(dir), "%s/checkpoints", f->tmp);
	/* a missing directory lists as empty */
	assert_int_equal(checkpoint_store_list(dir, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	list = NULL;

	for (size_t i = 0; i < 3; i++) {
		for (size_t k = 0; k < sizeof(notes[i]); k++)
			notes[i][k] = (uint8_t)(i * 31 + k * 7);   /* includes 0x00 bytes */
		assert_int_equal(checkpoint_store_write(dir, sizes[i], notes[i],
		    sizeof(notes[i]) - i), 0);
	}
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* foreign names are ignored by list */
	snprintf(path, sizeof(path), "%s/garbage.note", dir);
	put_file(path, "x", 1, O_TRUNC);
	snprintf(path, sizeof(path), "%s/123.note", dir);
	put_file(path, "x", 1, O_TRUNC);
	snprintf(path, sizeof(path), "%s/0000000000000000000a.note", dir);
	put_file(path, "x", 1, O_TRUNC);
	snprintf(path, sizeof(path), "%s/00000000000000000009.note.tmp", dir);
	put_file(path, "x", 1, O_TRUNC);
	snprintf(path, sizeof(path), "%s/000000000000000000009.note", dir);
	put_file(path, "x", 1, O_TRUNC);

	assert_int_equal(checkpoint_store_list(dir, &list, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0], 3);
	assert_int_equal(list[1], 5);
	assert_int_equal(list[2], 17);
	free(list);
	list = NULL;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(checkpoint_store_read(dir, sizes[i], &got, &len), 0);
		assert_int_equal(len, sizeof(notes[i]) - i);
		assert_memory_equal(got, notes[i], len);
		free(got);
		got = NULL;
	}
	len = 4242;
	assert_int_equal(checkpoint_store_read(dir, 4, &got, &len), BS_ERR_NOT_FOUND);
	assert_null(got);
	assert_int_equal(len, 4242);
	assert_int_equal(checkpoint_store_read(dir, 0, &got, &len), BS_ERR_NOT_FOUND);
	snprintf(path, sizeof(path), "%s/nope", f->tmp);
	assert_int_equal(checkpoint_store_read(path, 5, &got, &len), BS_ERR_NOT_FOUND);

	/* the files: <20 digits>.note, mode 0600, no temporary left */
	snprintf(path, sizeof(path), "%s/00000000000000000017.note", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, sizeof(notes[1]) - 1);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		const char *s = de->d_name;
		size_t sl = strlen(s);

		if (strcmp(s, "00000000000000000009.note.tmp") == 0)
			continue;            /* ours */
		if (sl > 4 && strcmp(s + sl - 4, ".tmp") == 0)
			fail_msg("temporary file %s left behind", s);
		if (strcmp(s, "00000000000000000003.note") == 0 ||
		    strcmp(s, "00000000000000000005.note") == 0 ||
		    strcmp(s, "00000000000000000017.note") == 0)
			names++;
	}
	closedir(d);
	assert_int_equal(names, 3);

	/* rewrite replaces; a large size keeps 20 digits */
	assert_int_equal(checkpoint_store_write(dir, 5, (const uint8_t *)"new", 3), 0);
	assert_int_equal(checkpoint_store_read(dir, 5, &got, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(got, "new", 3);
	free(got);
	got = NULL;
	assert_int_equal(checkpoint_store_write(dir, UINT64_C(10000000000000000000),
	    (const uint8_t *)"big", 3), 0);
	snprintf(path, sizeof(path), "%s/10000000000000000000.note", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(checkpoint_store_list(dir, &list, &n), 0);
	assert_int_equal(n, 4);
	assert_true(list[3] == UINT64_C(10000000000000000000));
	free(list);
	list = NULL;

	/* size cap on read: CHECKPOINT_NOTE_MAX fits, one more byte does not */
	memset(big, 'b', sizeof(big));
	assert_int_equal(checkpoint_store_write(dir, 100, big, CHECKPOINT_NOTE_MAX), 0);
	assert_int_equal(checkpoint_store_read(dir, 100, &got, &len), 0);
	assert_int_equal(len, CHECKPOINT_NOTE_MAX);
	free(got);
	got = NULL;
	assert_int_equal(checkpoint_store_write(dir, 101, big, sizeof(big)), 0);
	assert_int_equal(checkpoint_store_read(dir, 101, &got, &len), BS_ERR_TOO_BIG);
	assert_null(got);
	/* empty note */
	assert_int_equal(checkpoint_store_write(dir, 102, big, 0), 0);
	assert_int_equal(checkpoint_store_read(dir, 102, &got, &len), 0);
	assert_int_equal(len, 0);
	free(got);

	/* a directory that cannot be created */
	snprintf(path, sizeof(path), "%s/no/such/dir", f->tmp);
	assert_int_equal(checkpoint_store_write(path, 1, big, 1), BS_ERR_IO);
}

/*
 * The largest sizes: what checkpoint_store_write stores, checkpoint_store_list
 * must list (20 digits hold every uint64_t up to UINT64_MAX).
 */
static void
test_checkpoint_store_max_size(void **state)
{
	struct fixture *f = *state;
	static const uint64_t big[] = { UINT64_C(18446744073709551609),
		UINT64_C(18446744073709551610), UINT64_C(18446744073709551615) };
	char dir[600];
	uint64_t *list = NULL;
	size_t n = 0, len = 0;
	uint8_t *got = NULL;

	snprintf(dir, sizeof(dir), "%s/checkpoints", f->tmp);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(checkpoint_store_write(dir, big[i], (const uint8_t *)"n", 1), 0);
		assert_int_equal(checkpoint_store_read(dir, big[i], &got, &len), 0);
		assert_int_equal(len, 1);
		free(got);
		got = NULL;
	}
	assert_int_equal(checkpoint_store_list(dir, &list, &n), 0);
	if (n != 3) {
		free(list);
		fail_msg("checkpoint_store_list lists %zu of the 3 stored sizes 18446744073709551609, "
		    "...610, ...615 (UINT64_MAX): its overflow check rejects valid 20-digit names", n);
	}
	for (size_t i = 0; i < 3; i++)
		assert_true(list[i] == big[i]);
	free(list);
}

static EVP_PKEY *
keygen(const char *alg, const char *param)
{
	EVP_PKEY *k = param != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, alg, param) :
	    EVP_PKEY_Q_keygen(NULL, NULL, alg);

	assert_non_null(k);
	return k;
}

static int
spki_of(EVP_PKEY *k, uint8_t **der)
{
	int n;

	*der = NULL;
	n = i2d_PUBKEY(k, der);
	assert_true(n > 0);
	return n;
}

static void
test_ed25519_raw(void **state)
{
	EVP_PKEY *ed = keygen("ED25519", NULL), *ec = keygen("EC", "P-256"), *x = keygen("X25519", NULL);
	uint8_t *der = NULL, *ecder = NULL, *xder = NULL, want[32], pub[32], sentinel[32];
	size_t wlen = sizeof(want);
	int n, en, xn;

	(void)state;
	n = spki_of(ed, &der);
	assert_int_equal(n, 44);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, want, &wlen), 1);
	assert_int_equal(wlen, 32);
	assert_int_equal(checkpoint_ed25519_raw(der, (size_t)n, pub), 0);
	assert_memory_equal(pub, want, 32);

	memset(sentinel, 0xa5, sizeof(sentinel));
	/* truncated, extended, altered OID, altered lengths: rejected, pub untouched */
	for (size_t cut = 0; cut < (size_t)n; cut++) {
		memcpy(pub, sentinel, 32);
		assert_int_equal(checkpoint_ed25519_raw(der, cut, pub), BS_ERR_INVALID);
		assert_memory_equal(pub, sentinel, 32);
	}
	{
		uint8_t longer[45];

		memcpy(longer, der, 44);
		longer[44] = 0;
		memcpy(pub, sentinel, 32);
		assert_int_equal(checkpoint_ed25519_raw(longer, 45, pub), BS_ERR_INVALID);
		assert_memory_equal(pub, sentinel, 32);
	}
	for (size_t i = 0; i < 12; i++) {
		uint8_t alt[44];

		memcpy(alt, der, 44);
		alt[i] ^= 0x01;
		memcpy(pub, sentinel, 32);
		if (checkpoint_ed25519_raw(alt, 44, pub) != BS_ERR_INVALID)
			fail_msg("SPKI with byte %zu of the header changed was accepted", i);
		assert_memory_equal(pub, sentinel, 32);
	}
	/* ECDSA P-256 and X25519 (same 44-byte length, other OID) */
	en = spki_of(ec, &ecder);
	memcpy(pub, sentinel, 32);
	assert_int_equal(checkpoint_ed25519_raw(ecder, (size_t)en, pub), BS_ERR_INVALID);
	assert_int_equal(checkpoint_ed25519_raw(ecder, 44, pub), BS_ERR_INVALID);
	xn = spki_of(x, &xder);
	assert_int_equal(xn, 44);
	assert_int_equal(checkpoint_ed25519_raw(xder, (size_t)xn, pub), BS_ERR_INVALID);
	assert_memory_equal(pub, sentinel, 32);

	OPENSSL_free(der);
	OPENSSL_free(ecder);
	OPENSSL_free(xder);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_checker),
		cmocka_unit_test_setup_teardown(test_append_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_summarised_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_past_queue_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_store_max_size, setup, teardown),
		cmocka_unit_test(test_ed25519_raw),
	};

	main_thread = pthread_self();
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
