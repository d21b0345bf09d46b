/*
 * privdrop.c - giving up root after start-up (see privdrop.h): the user
 * looked up with getpwnam_r, the switch done the way OpenSSH's
 * permanently_set_uid does it (supplementary groups from initgroups, then
 * setresgid, then setresuid), and verified: regaining root must fail.
 */
#define _GNU_SOURCE   /* setresuid, setresgid */

#include <sys/prctl.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/privdrop.h"

int
privdrop_resolve(const char *user, struct privdrop *p, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc;

	memset(p, 0, sizeof(*p));
	if (user == NULL)
		return 0;
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "user = %s: no such user%s%s", user, rc != 0 ? ": " : "",
		    rc != 0 ? strerror(rc) : "");
		return BS_ERR_NOT_FOUND;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user = %s: that is root; name an unprivileged user", user);
		return BS_ERR_CONFIG;
	}
	if (geteuid() != 0) {
		if (pw.pw_uid == geteuid())
			return 0;   /* already that user */
		snprintf(err, errlen, "user = %s: only root can switch to it (running as uid %u)",
		    user, (unsigned)geteuid());
		return BS_ERR_CONFIG;
	}
	p->active = 1;
	p->uid = pw.pw_uid;
	p->gid = pw.pw_gid;
	snprintf(p->name, sizeof(p->name), "%s", pw.pw_name);
	p->ngroups = PRIVDROP_GROUPS_MAX;
	if (getgrouplist(pw.pw_name, pw.pw_gid, p->groups, &p->ngroups) < 0) {
		p->groups[0] = pw.pw_gid;   /* more than we track: judge by the primary group */
		p->ngroups = 1;
	}
	return 0;
}

/* 1 if p's user has all of the permission bits want (4 r, 2 w, 1 x) on st. */
static int
may(const struct privdrop *p, const struct stat *st, unsigned want)
{
	unsigned bits = (unsigned)st->st_mode & 0777;
	int i;

	if (st->st_uid == p->uid)
		return ((bits >> 6) & want) == want;
	for (i = 0; i < p->ngroups; i++)
		if (st->st_gid == p->groups[i])
			return ((bits >> 3) & want) == want;
	return (bits & want) == want;
}

static int
deny(const char *path, const struct privdrop *p, const struct stat *st, const char *what,
    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: user %s could not %s it once the daemon runs as that user "
	    "(owner uid %u, group %u, mode %04o), so a reload (SIGHUP, a CRL change) would fail",
	    path, p->name, what, (unsigned)st->st_uid, (unsigned)st->st_gid,
	    (unsigned)st->st_mode & 07777);
	return BS_ERR_CONFIG;
}

int
privdrop_check_readable(const struct privdrop *p, const char *path, char *err, size_t errlen)
{
	char *real, *slash;
	struct stat st;
	struct dirent *de;
	DIR *dir;
	char file[4096];
	int rc = 0;

	if (!p->active)
		return 0;
	if ((real = realpath(path, NULL)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BS_ERR_CONFIG;
	}
	/* every directory above it must be searchable */
	for (slash = strchr(real + 1, '/'); slash != NULL && rc == 0; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(real, &st) == 0 && !may(p, &st, 1))
			rc = deny(real, p, &st, "enter", err, errlen);
		*slash = '/';
	}
	if (rc == 0 && stat(real, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = BS_ERR_CONFIG;
	}
	if (rc == 0 && !S_ISDIR(st.st_mode) && !may(p, &st, 4))
		rc = deny(path, p, &st, "read", err, errlen);
	if (rc == 0 && S_ISDIR(st.st_mode)) {
		if (!may(p, &st, 5))
			rc = deny(path, p, &st, "list", err, errlen);
		else if ((dir = opendir(real)) != NULL) {
			while (rc == 0 && (de = readdir(dir)) != NULL) {
				if (de->d_name[0] == '.' ||
				    (size_t)snprintf(file, sizeof(file), "%s/%s", real, de->d_name) >=
				    sizeof(file) || stat(file, &st) != 0 || !S_ISREG(st.st_mode))
					continue;
				if (!may(p, &st, 4))
					rc = deny(file, p, &st, "read", err, errlen);
			}
			closedir(dir);
		}
	}
	free(real);
	return rc;
}

int
privdrop_check_dir(const struct privdrop *p, const char *what, const char *dir, char *err,
    size_t errlen)
{
	struct stat st;

	if (!p->active)
		return 0;
	if (stat(dir, &st) != 0) {
		snprintf(err, errlen, "%s %s: %s", what, dir, strerror(errno));
		return BS_ERR_CONFIG;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != p->uid) {
		snprintf(err, errlen, "%s %s must be a directory owned by %s (uid %u), "
		    "the user the daemon switches to; it is owned by uid %u (chown -R %s %s)", what, dir,
		    p->name, (unsigned)p->uid, (unsigned)st.st_uid, p->name, dir);
		return BS_ERR_CONFIG;
	}
	return 0;
}

int
privdrop_apply(const struct privdrop *p, char *err, size_t errlen)
{
	if (!p->active)
		return 0;
	if (initgroups(p->name, p->gid) != 0) {
		snprintf(err, errlen, "initgroups(%s): %s", p->name, strerror(errno));
		return BS_ERR_IO;
	}
	if (setresgid(p->gid, p->gid, p->gid) != 0) {
		snprintf(err, errlen, "setresgid(%u): %s", (unsigned)p->gid, strerror(errno));
		return BS_ERR_IO;
	}
	if (setresuid(p->uid, p->uid, p->uid) != 0) {
		snprintf(err, errlen, "setresuid(%u): %s", (unsigned)p->uid, strerror(errno));
		return BS_ERR_IO;
	}
	/* paranoia: the switch must be permanent */
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != p->uid || geteuid() != p->uid ||
	    getgid() != p->gid || getegid() != p->gid) {
		snprintf(err, errlen, "could regain root after switching to %s", p->name);
		return BS_ERR_IO;
	}
	/* a uid change resets "dumpable": keep the PIN and session state out of core dumps */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}
