/*
 * test_errlist.c - unit tests for src/common/errlist.c: "NAME:LINE: msg"
 * and "NAME: msg" lines, insertion order or sorted by line (stable), the
 * cap on kept messages with "K more error(s) not shown", rendering into a
 * short buffer cut at a line boundary, the measured length, messages cut
 * at BS_ERRLIST_MSG_MAX, and clearing for reuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/errlist.h"

static void
test_order(void **state)
{
	struct bs_errlist e;
	char out[256];
	size_t need;

	(void)state;
	bs_errlist_init(&e, "f.conf", 0);
	bs_errlist_add(&e, 7, "seven %s", "a");
	bs_errlist_add(&e, 0, "whole");
	bs_errlist_add(&e, 2, "two");
	bs_errlist_add(&e, 7, "seven %s", "b");
	assert_int_equal(e.total, 4);
	/* as recorded */
	need = bs_errlist_format(&e, out, sizeof(out));
	assert_int_equal(need, strlen(out));
	assert_string_equal(out,
	    "f.conf:7: seven a\nf.conf: whole\nf.conf:2: two\nf.conf:7: seven b");
	/* sorted: line 0 first, equal lines in recording order */
	bs_errlist_sort(&e);
	bs_errlist_format(&e, out, sizeof(out));
	assert_string_equal(out,
	    "f.conf: whole\nf.conf:2: two\nf.conf:7: seven a\nf.conf:7: seven b");
	bs_errlist_clear(&e);
	assert_int_equal(e.total, 0);
	assert_int_equal(bs_errlist_format(&e, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	bs_errlist_clear(&e);
	bs_errlist_clear(NULL);
}

static void
test_cap(void **state)
{
	struct bs_errlist e;
	char out[256];
	size_t need;
	unsigned i;

	(void)state;
	bs_errlist_init(&e, "p", 2);
	for (i = 1; i <= 5; i++)
		bs_errlist_add(&e, i, "e%u", i);
	assert_int_equal(e.total, 5);
	assert_int_equal(e.nents, 2);
	need = bs_errlist_format(&e, out, sizeof(out));
	assert_int_equal(need, strlen(out));
	assert_string_equal(out, "p:1: e1\np:2: e2\np: 3 more errors not shown");
	bs_errlist_clear(&e);
	bs_errlist_add(&e, 1, "x");
	bs_errlist_add(&e, 1, "y");
	bs_errlist_add(&e, 1, "z");
	bs_errlist_format(&e, out, sizeof(out));
	assert_string_equal(out, "p:1: x\np:1: y\np: 1 more error not shown");
	bs_errlist_clear(&e);
}

/* A zeroed list keeps BS_ERRLIST_KEEP messages. */
static void
test_default_cap(void **state)
{
	struct bs_errlist e;
	unsigned i;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.name = "z";
	for (i = 0; i < BS_ERRLIST_KEEP + 3; i++)
		bs_errlist_add(&e, i + 1, "m");
	assert_int_equal(e.nents, BS_ERRLIST_KEEP);
	assert_int_equal(e.total, BS_ERRLIST_KEEP + 3);
	assert_int_equal(e.nomem, 0);
	bs_errlist_clear(&e);
}

static void
test_cut(void **state)
{
	struct bs_errlist e;
	char out[128], whole[128];
	size_t need;

	(void)state;
	bs_errlist_init(&e, "name", 0);
	bs_errlist_add(&e, 1, "first");         /* "name:1: first": 13 bytes */
	bs_errlist_add(&e, 2, "second line that is rather long indeed");    /* 1 + 46 */
	bs_errlist_add(&e, 3, "third");         /* 1 + 13 */
	need = bs_errlist_format(&e, NULL, 0);
	assert_int_equal(need, 13 + 47 + 14);
	assert_int_equal(bs_errlist_format(&e, whole, sizeof(whole)), need);
	assert_int_equal(strlen(whole), need);
	/* exactly enough: everything */
	bs_errlist_format(&e, out, need + 1);
	assert_string_equal(out, whole);
	/* one byte short: the last line goes, and the note would not fit */
	bs_errlist_format(&e, out, need);
	assert_string_equal(out, "name:1: first\nname:2: second line that is rather long indeed");
	/* a line that does not fit stops the list; the note about the rest fits */
	bs_errlist_format(&e, out, 13 + 30 + 1);
	assert_string_equal(out, "name:1: first\nname: 2 more errors not shown");
	/* no whole line fits, nor the note */
	bs_errlist_format(&e, out, 13);
	assert_string_equal(out, "");
	bs_errlist_format(&e, out, 1);
	assert_string_equal(out, "");
	assert_int_equal(bs_errlist_format(&e, NULL, 0), need);
	/* the measured length counts the note for messages not kept */
	bs_errlist_clear(&e);
	e.max = 1;
	bs_errlist_add(&e, 1, "a");
	bs_errlist_add(&e, 2, "b");
	assert_int_equal(bs_errlist_format(&e, NULL, 0),
	    strlen("name:1: a\nname: 1 more error not shown"));
	bs_errlist_clear(&e);
}

static void
test_long_message(void **state)
{
	struct bs_errlist e;
	char big[2000], out[1024];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	bs_errlist_init(&e, "n", 0);
	bs_errlist_add(&e, 9, "%s", big);
	bs_errlist_format(&e, out, sizeof(out));
	assert_int_equal(strlen(out), strlen("n:9: ") + BS_ERRLIST_MSG_MAX - 1);
	bs_errlist_clear(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_default_cap),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_long_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
