/*
 * policy_load.c - reads a policy file for policy_parse, refusing it unless
 * it is a regular file, owned by the caller or root, not writable by group
 * or others (like sshd's StrictModes) and at most 1 MiB. The text itself is
 * checked by policy_parse, with the path as the name in its messages.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errlist.h"
#include "common/fileio.h"
#include "policy/policy_int.h"

/*
 * Reads the file at errs->name into a NUL-terminated buffer (*out, the
 * caller frees; *len_out bytes) after the file checks. Returns 0,
 * BS_ERR_CONFIG or BS_ERR_IO (the problem is recorded in errs), or
 * BS_ERR_NOMEM.
 */
static int
read_policy_file(struct bs_errlist *errs, char **out, size_t *len_out)
{
	char why[256];
	int rc;

	rc = bs_file_read_checked(errs->name, BS_FILE_NO_GROUP_WRITE | BS_FILE_OWNED,
	    POLICY_TEXT_MAX, out, len_out, why, sizeof(why));
	if (rc == 0 || rc == BS_ERR_NOMEM)
		return rc;
	bs_errlist_add(errs, 0, "%s", why);
	return rc == BS_ERR_TOO_BIG ? BS_ERR_CONFIG : rc;
}

int
policy_load(const char *path, const struct policy_schema *schema, struct policy **out,
    char *err, size_t errlen)
{
	return policy_load_text(path, schema, out, NULL, NULL, err, errlen);
}

int
policy_load_text(const char *path, const struct policy_schema *schema, struct policy **out,
    char **text, size_t *text_len, char *err, size_t errlen)
{
	struct bs_errlist errs;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || schema == NULL || out == NULL || (err == NULL && errlen > 0) ||
	    (text == NULL) != (text_len == NULL))
		return BS_ERR_INVALID;
	bs_errlist_init(&errs, path, BS_ERRLIST_KEEP);
	if ((rc = read_policy_file(&errs, &buf, &len)) != 0) {
		if (rc == BS_ERR_NOMEM || errs.nomem) {
			rc = BS_ERR_NOMEM;
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "%s: out of memory", path);
		} else {
			bs_errlist_sort(&errs);
			bs_errlist_format(&errs, err, errlen);
		}
		goto out;
	}
	rc = policy_parse(path, buf, len, schema, out, err, errlen);
	if (rc == 0 && text != NULL) {
		*text = buf;
		*text_len = len;
		buf = NULL;
	}
out:
	bs_errlist_clear(&errs);
	free(buf);
	return rc;
}
