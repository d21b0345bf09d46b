/*
 * policy_versions.c - the stored versions of the authorization policy
 * (see policy_versions.h) and their diffs, made with libgit2's diff of two
 * buffers (no repository involved).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <openssl/sha.h>

#include "common/hex.h"
#include "services/admin/policy_versions.h"
#include "store/store.h"

#define CURRENT "current"
#define ROW_ID_LEN 21                   /* "v" + 20 digits */

void
policy_sha256_hex(const char *text, size_t len, char out[POLICY_SHA_HEX + 1])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)text, len, md);
	bs_hex_encode(md, sizeof(md), out);
}

static void
row_id(uint64_t version, char id[ROW_ID_LEN + 1])
{
	snprintf(id, ROW_ID_LEN + 1, "v%020" PRIu64, version);
}

void
policy_version_free(Boltseal__V1__PolicyVersion *v)
{
	if (v != NULL)
		boltseal__v1__policy_version__free_unpacked(v, NULL);
}

/* The current version in tx (0 when none is stored). */
static int
current_of(struct store_txn *tx, uint64_t *cur)
{
	int rc = store_counter_get(tx, POLICY_VERSIONS_NS, CURRENT, cur);

	if (rc == BS_ERR_NOT_FOUND) {
		*cur = 0;
		return 0;
	}
	return rc;
}

/* Reads version v (>= 1) in tx into *out. */
static int
row_read(struct store_txn *tx, uint64_t v, Boltseal__V1__PolicyVersion **out)
{
	char id[ROW_ID_LEN + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t rv;
	int rc;

	*out = NULL;
	row_id(v, id);
	if ((rc = store_row_get(tx, POLICY_VERSIONS_NS, id, &data, &len, &rv)) != 0)
		return rc;
	*out = boltseal__v1__policy_version__unpack(NULL, len, data);
	free(data);
	if (*out == NULL || (*out)->version != v)
		return BS_ERR_INTERNAL;
	return 0;
}

int
policy_versions_get(struct store *st, uint64_t version, Boltseal__V1__PolicyVersion **out,
    uint64_t *current)
{
	struct store_txn *tx;
	uint64_t cur = 0;
	int rc;

	*out = NULL;
	if ((rc = store_begin_read(st, &tx)) != 0)
		return rc;
	if ((rc = current_of(tx, &cur)) == 0) {
		if (version == 0)
			version = cur;
		rc = version == 0 || version > cur ? BS_ERR_NOT_FOUND : row_read(tx, version, out);
	}
	store_rollback(tx);
	if (rc != 0) {
		policy_version_free(*out);
		*out = NULL;
	}
	if (current != NULL)
		*current = cur;
	return rc;
}

int
policy_versions_append(struct store *st, uint64_t base, Boltseal__V1__PolicyVersion *v,
    char file_sha[POLICY_SHA_HEX + 1], Boltseal__V1__PolicyVersion **prev, uint64_t *current)
{
	Boltseal__V1__PolicyVersion *before = NULL;
	struct store_txn *tx;
	char id[ROW_ID_LEN + 1];
	uint8_t *buf = NULL;
	uint64_t cur = 0;
	size_t n;
	int rc;

	if (prev != NULL)
		*prev = NULL;
	if ((rc = store_begin(st, &tx)) != 0)
		return rc;
	if ((rc = current_of(tx, &cur)) != 0)
		goto fail;
	if (base != POLICY_ANY_BASE && base != cur) {
		rc = BS_ERR_PRECONDITION;
		goto fail;
	}
	if (cur > 0 && (rc = row_read(tx, cur, &before)) != 0)
		goto fail;
	v->version = cur + 1;
	if ((v->file_sha256 == NULL || v->file_sha256[0] == '\0') && before != NULL) {
		snprintf(file_sha, POLICY_SHA_HEX + 1, "%s", before->file_sha256);
		v->file_sha256 = file_sha;
	}
	n = boltseal__v1__policy_version__get_packed_size(v);
	if (n > STORE_DATA_MAX) {
		rc = BS_ERR_TOO_BIG;
		goto fail;
	}
	if ((buf = malloc(n > 0 ? n : 1)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto fail;
	}
	boltseal__v1__policy_version__pack(v, buf);
	row_id(v->version, id);
	if ((rc = store_row_put(tx, POLICY_VERSIONS_NS, id, 0, buf, n, NULL)) != 0 ||
	    (rc = store_counter_cas(tx, POLICY_VERSIONS_NS, CURRENT,
	    cur == 0 ? STORE_COUNTER_ABSENT : cur, cur + 1)) != 0)
		goto fail;
	free(buf);
	buf = NULL;
	if ((rc = store_commit(tx)) != 0) {
		tx = NULL;
		goto fail;
	}
	if (current != NULL)
		*current = cur + 1;
	if (prev != NULL)
		*prev = before;
	else
		policy_version_free(before);
	return 0;
fail:
	store_rollback(tx);
	free(buf);
	policy_version_free(before);
	if (current != NULL)
		*current = cur;
	return rc;
}

/* ---- diffs ------------------------------------------------------------------------ */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_ready;

/* libgit2's global state, once per process (kept: it is reference-counted, never shut down). */
static void
git_start(void)
{
	git_ready = git_libgit2_init() > 0;
}

struct diff_out {
	char *buf;
	size_t len, cap, max;
	int cut, nomem;
};

static void
out_add(struct diff_out *o, const char *s, size_t n)
{
	char *nb;
	size_t cap;

	if (o->cut || o->nomem)
		return;
	if (o->len + n > o->max) {
		o->cut = 1;
		return;
	}
	if (o->len + n + 1 > o->cap) {
		cap = o->cap > 0 ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		if ((nb = realloc(o->buf, cap)) == NULL) {
			o->nomem = 1;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* One line of the patch: hunk headers and lines; the file header is ours. */
static int
diff_line(const git_diff_delta *delta, const git_diff_hunk *hunk, const git_diff_line *line,
    void *payload)
{
	struct diff_out *o = payload;
	char origin;

	(void)delta;
	(void)hunk;
	switch (line->origin) {
	case GIT_DIFF_LINE_CONTEXT:
	case GIT_DIFF_LINE_ADDITION:
	case GIT_DIFF_LINE_DELETION:
		origin = line->origin;
		out_add(o, &origin, 1);
		out_add(o, line->content, line->content_len);
		break;
	case GIT_DIFF_LINE_HUNK_HDR:
	case GIT_DIFF_LINE_CONTEXT_EOFNL:
	case GIT_DIFF_LINE_ADD_EOFNL:
	case GIT_DIFF_LINE_DEL_EOFNL:
		out_add(o, line->content, line->content_len);
		break;
	default:
		break;
	}
	return 0;
}

char *
policy_diff(const char *a, size_t alen, uint64_t av, const char *b, size_t blen, uint64_t bv,
    size_t max)
{
	static const char cut_fmt[] = "... (diff cut at %zu bytes)\n";
	git_diff_options opts;
	git_patch *patch = NULL;
	struct diff_out o;
	char hdr[96], tail[64];
	int n;

	memset(&o, 0, sizeof(o));
	o.max = max;
	(void)pthread_once(&git_once, git_start);
	if (!git_ready || git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION) != 0)
		return NULL;
	opts.flags |= GIT_DIFF_FORCE_TEXT;
	opts.context_lines = 3;
	if (git_patch_from_buffers(&patch, a, alen, "a", b, blen, "b", &opts) != 0)
		return NULL;
	if (git_patch_num_hunks(patch) > 0) {
		n = snprintf(hdr, sizeof(hdr), "--- policy v%" PRIu64 "\n+++ policy v%" PRIu64 "\n",
		    av, bv);
		out_add(&o, hdr, (size_t)n);
		if (git_patch_print(patch, diff_line, &o) != 0)
			o.nomem = 1;
	}
	git_patch_free(patch);
	if (o.cut) {
		/* back to the last whole line, then the note */
		while (o.len > 0 && o.buf[o.len - 1] != '\n')
			o.len--;
		n = snprintf(tail, sizeof(tail), cut_fmt, max);
		o.cut = 0;
		o.max = SIZE_MAX;
		out_add(&o, tail, (size_t)n);
	}
	if (o.nomem) {
		free(o.buf);
		return NULL;
	}
	return o.buf != NULL ? o.buf : strdup("");
}
