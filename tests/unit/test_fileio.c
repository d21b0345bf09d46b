/*
 * test_fileio.c - unit tests for src/common/fileio.c: the checked open
 * refuses what is not a regular file, a mode its flags forbid, and (as far
 * as a test can arrange) a foreign owner, with a message saying which;
 * the capped read refuses a file one byte over its cap; the checked read
 * does both and says which went wrong; the durable replace writes a new
 * file and replaces an old one whole, leaves no temporary file, keeps the
 * old file when it cannot write, and refuses a name with a '/'.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

static char dir[64];

static void
write_file(const char *name, const char *text, mode_t mode, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_checked_open(void **state)
{
	char path[128], why[256];
	int fd = -1;

	(void)state;
	write_file("ok", "x", 0600, path, sizeof(path));
	assert_int_equal(bs_file_open_checked(path, BS_FILE_OWNER_ONLY | BS_FILE_OWNED, &fd, why,
	    sizeof(why)), 0);
	assert_true(fd >= 0);
	close(fd);
	write_file("groupread", "x", 0640, path, sizeof(path));
	assert_int_equal(bs_file_open_checked(path, BS_FILE_NO_GROUP_WRITE, &fd, why, sizeof(why)),
	    0);
	close(fd);
	fd = -1;
	assert_int_equal(bs_file_open_checked(path, BS_FILE_OWNER_ONLY, &fd, why, sizeof(why)),
	    BS_ERR_CONFIG);
	assert_string_equal(why, "mode 0640 must not be accessible by group or others (chmod 600)");
	assert_int_equal(fd, -1);
	write_file("groupwrite", "x", 0664, path, sizeof(path));
	assert_int_equal(bs_file_open_checked(path, BS_FILE_NO_GROUP_WRITE, &fd, why, sizeof(why)),
	    BS_ERR_CONFIG);
	assert_non_null(strstr(why, "mode 0664 is writable by group or others"));
	assert_int_equal(bs_file_open_checked(dir, 0, &fd, why, sizeof(why)), BS_ERR_CONFIG);
	assert_non_null(strstr(why, "not a regular file (mode 04"));
	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_int_equal(bs_file_open_checked(path, 0, &fd, why, sizeof(why)), BS_ERR_IO);
	assert_string_equal(why, "cannot open: No such file or directory");
	assert_int_equal(fd, -1);
}

static void
test_capped_read(void **state)
{
	char path[128], why[256], *buf = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	write_file("ten", "0123456789", 0600, path, sizeof(path));
	assert_int_equal(bs_file_open_checked(path, 0, &fd, why, sizeof(why)), 0);
	assert_int_equal(bs_read_fd_capped(fd, 10, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_string_equal(buf, "0123456789");
	free(buf);
	close(fd);
	assert_int_equal(bs_file_open_checked(path, 0, &fd, why, sizeof(why)), 0);
	buf = NULL;
	assert_int_equal(bs_read_fd_capped(fd, 9, &buf, &len), BS_ERR_TOO_BIG);
	assert_null(buf);
	close(fd);
	/* the same in one call, with what went wrong */
	assert_int_equal(bs_file_read_checked(path, BS_FILE_OWNER_ONLY, 10, &buf, &len, why,
	    sizeof(why)), 0);
	assert_int_equal(len, 10);
	free(buf);
	buf = NULL;
	assert_int_equal(bs_file_read_checked(path, 0, 9, &buf, &len, why, sizeof(why)),
	    BS_ERR_TOO_BIG);
	assert_string_equal(why, "file is larger than 9 bytes");
	assert_null(buf);
	assert_int_equal(bs_file_read_checked(dir, 0, 9, &buf, &len, why, sizeof(why)),
	    BS_ERR_CONFIG);
	assert_null(buf);
}

static void
test_replace(void **state)
{
	char path[128], *buf = NULL;
	size_t len = 0;
	int fd;
	struct stat st;

	(void)state;
	(void)umask(022);
	snprintf(path, sizeof(path), "%s/replaced", dir);
	assert_int_equal(bs_file_replace(dir, "replaced", "first\n", 6, 0640), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(bs_file_replace(dir, "replaced", "second, longer\n", 15, 0640), 0);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(bs_read_fd_capped(fd, 100, &buf, &len), 0);
	close(fd);
	assert_int_equal(len, 15);
	assert_memory_equal(buf, "second, longer\n", 15);
	free(buf);
	/* no temporary file left behind */
	snprintf(path, sizeof(path), "%s/.replaced.tmp", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* refused names; an unwritable place keeps nothing and says so */
	assert_int_equal(bs_file_replace(dir, "a/b", "x", 1, 0600), BS_ERR_INVALID);
	assert_int_equal(bs_file_replace(dir, "..", "x", 1, 0600), BS_ERR_INVALID);
	assert_int_equal(bs_file_replace(dir, "", "x", 1, 0600), BS_ERR_INVALID);
	snprintf(path, sizeof(path), "%s/missing-dir", dir);
	assert_int_equal(bs_file_replace(path, "f", "x", 1, 0600), BS_ERR_IO);
	assert_int_equal(errno, ENOENT);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bs-fileio-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	const char *names[] = { "ok", "groupread", "groupwrite", "ten", "replaced" };
	char path[128];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checked_open),
		cmocka_unit_test(test_capped_read),
		cmocka_unit_test(test_replace),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
