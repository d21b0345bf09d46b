/*
 * test_policy_versions.c - the stored versions of the authorization policy
 * (services/admin/policy_versions.h) on a real SQLite store: the first
 * version, appends on the current base and refusals on a stale one (nothing
 * written), the file hash carried forward, reads of any version, rows that
 * do not fit; and the unified diffs (libgit2) checked line by line, with
 * the hunk's context heading (as git diff shows it), GNU diff's "No
 * newline" marker and the cut at max bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "services/admin/policy_versions.h"
#include "store/store.h"
#include "rpc_harness.h"

struct fixture {
	char dir[256];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[512], err[256];

	assert_non_null(f);
	harness_tmpdir(f->dir, sizeof(f->dir));
	snprintf(path, sizeof(path), "%s/catalog.db", f->dir);
	assert_int_equal(store_open(path, &f->st, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	harness_rmdir(f->dir);
	free(f);
	return 0;
}

/* Appends text (source API unless file_sha is given) on base; returns the store's answer. */
static int
append(struct fixture *f, uint64_t base, const char *text, const char *file_sha,
    uint64_t *version, uint64_t *current)
{
	Boltseal__V1__PolicyVersion v = BOLTSEAL__V1__POLICY_VERSION__INIT, *prev = NULL;
	char sha[POLICY_SHA_HEX + 1], fsha[POLICY_SHA_HEX + 1];
	int rc;

	policy_sha256_hex(text, strlen(text), sha);
	v.policy_text = (char *)text;
	v.sha256 = sha;
	v.source = file_sha != NULL ? BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_FILE :
	    BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_API;
	v.set_by = (char *)(file_sha != NULL ? "" : "alice");
	v.file_sha256 = (char *)(file_sha != NULL ? file_sha : "");
	rc = policy_versions_append(f->st, base, &v, fsha, &prev, current);
	if (rc == 0) {
		*version = v.version;
		if (v.version == 1)
			assert_null(prev);
		else
			assert_int_equal(prev->version, v.version - 1);
	}
	policy_version_free(prev);
	return rc;
}

static void
test_versions(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__PolicyVersion *v = NULL;
	char sha1[POLICY_SHA_HEX + 1];
	uint64_t ver = 0, cur = 99;

	/* nothing stored yet */
	assert_int_equal(policy_versions_get(f->st, 0, &v, &cur), BS_ERR_NOT_FOUND);
	assert_null(v);
	assert_int_equal(cur, 0);

	policy_sha256_hex("one\n", 4, sha1);
	assert_string_equal(sha1,
	    "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806");
	assert_int_equal(append(f, POLICY_ANY_BASE, "one\n", sha1, &ver, &cur), 0);
	assert_int_equal(ver, 1);
	assert_int_equal(cur, 1);

	/* on the current base; the file's hash carried forward */
	assert_int_equal(append(f, 1, "two\n", NULL, &ver, &cur), 0);
	assert_int_equal(ver, 2);
	assert_int_equal(policy_versions_get(f->st, 0, &v, &cur), 0);
	assert_int_equal(v->version, 2);
	assert_int_equal(cur, 2);
	assert_string_equal(v->policy_text, "two\n");
	assert_string_equal(v->set_by, "alice");
	assert_int_equal(v->source, BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_API);
	assert_string_equal(v->file_sha256, sha1);
	policy_version_free(v);

	/* a stale base writes nothing and says what is current */
	ver = 0;
	assert_int_equal(append(f, 1, "three\n", NULL, &ver, &cur), BS_ERR_PRECONDITION);
	assert_int_equal(cur, 2);
	assert_int_equal(policy_versions_get(f->st, 3, &v, &cur), BS_ERR_NOT_FOUND);
	assert_null(v);

	/* any version stays readable */
	assert_int_equal(policy_versions_get(f->st, 1, &v, &cur), 0);
	assert_string_equal(v->policy_text, "one\n");
	assert_int_equal(v->source, BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_FILE);
	assert_int_equal(cur, 2);
	policy_version_free(v);
}

static void
test_too_big(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(STORE_DATA_MAX + 1);
	uint64_t ver = 0, cur = 0;

	assert_non_null(big);
	memset(big, '#', STORE_DATA_MAX);
	big[STORE_DATA_MAX] = '\0';
	assert_int_equal(append(f, POLICY_ANY_BASE, big, "", &ver, &cur), BS_ERR_TOO_BIG);
	assert_int_equal(cur, 0);
	free(big);
}

static void
test_diff(void **state)
{
	const char *a = "principal a\n    roles x\nrole x\n    grant\n        methods m1\n";
	const char *b = "principal a\n    roles x\nrole x\n    grant\n        methods m2\n";
	char *d;

	(void)state;
	d = policy_diff(a, strlen(a), 1, a, strlen(a), 2, POLICY_DIFF_MAX);
	assert_string_equal(d, "");
	free(d);
	d = policy_diff(a, strlen(a), 4, b, strlen(b), 5, POLICY_DIFF_MAX);
	assert_string_equal(d,
	    "--- policy v4\n+++ policy v5\n"
	    "@@ -2,4 +2,4 @@ principal a\n"   /* git's function context: the last unindented line */
	    "     roles x\n role x\n     grant\n"
	    "-        methods m1\n"
	    "+        methods m2\n");
	free(d);
	/* no newline at the end of the new text */
	d = policy_diff("x\n", 2, 1, "y", 1, 2, POLICY_DIFF_MAX);
	assert_string_equal(d, "--- policy v1\n+++ policy v2\n@@ -1 +1 @@\n-x\n+y\n"
	    "\\ No newline at end of file\n");
	free(d);
	/* cut at a line boundary, with the note */
	d = policy_diff(a, strlen(a), 4, b, strlen(b), 5, 40);
	assert_string_equal(d, "--- policy v4\n+++ policy v5\n... (diff cut at 40 bytes)\n");
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
