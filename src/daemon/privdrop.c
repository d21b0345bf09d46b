/*
 * privdrop.c - giving up root after start-up (see privdrop.h): the user
 * looked up with getpwnam_r, the switch done the way OpenSSH's
 * permanently_set_uid does it (supplementary groups from initgroups, then
 * setresgid, then setresuid), and verified: regaining root must fail.
 */
#define _GNU_SOURCE   /* setresuid, setresgid */

#include <sys/prctl.h>
#include <sys/stat.h>

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
	return 0;
}

int
privdrop_check_dir(const struct privdrop *p, const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (!p->active)
		return 0;
	if (stat(dir, &st) != 0) {
		snprintf(err, errlen, "state_dir %s: %s", dir, strerror(errno));
		return BS_ERR_CONFIG;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != p->uid) {
		snprintf(err, errlen, "state_dir %s must be a directory owned by %s (uid %u), "
		    "the user the daemon switches to; it is owned by uid %u (chown -R %s %s)", dir,
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
