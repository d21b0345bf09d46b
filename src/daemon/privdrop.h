/*
 * privdrop.h - giving up root after start-up: boltsealed started as root
 * with `user = NAME` binds its socket, reads its TLS key and PIN and opens
 * the token as root, then switches for good to NAME's uid, gid and groups
 * before it opens its state (catalog, audit log) or serves anyone.
 */
#ifndef BS_PRIVDROP_H
#define BS_PRIVDROP_H

#include <sys/types.h>

#include <stddef.h>

#include "common/bs_error.h"

#define PRIVDROP_GROUPS_MAX 64

struct privdrop {
	int active;                 /* 1: started as root with a user to switch to */
	uid_t uid;
	gid_t gid;
	char name[64];
	gid_t groups[PRIVDROP_GROUPS_MAX];  /* the user's groups (initgroups will give it) */
	int ngroups;
};

/*
 * Looks user up (NULL: no switch). Started as root: p->active = 1. Not
 * root: fine if user is the process's own user (nothing to do), otherwise
 * BS_ERR_CONFIG (a switch needs root). BS_ERR_NOT_FOUND for an unknown
 * user. err says why.
 */
int privdrop_resolve(const char *user, struct privdrop *p, char *err, size_t errlen) BS_WUR;

/*
 * With p->active: dir (the setting `what`, named in err) must be a
 * directory owned by p's user (the daemon creates its files there after the
 * switch). 0 or BS_ERR_CONFIG with why.
 */
int privdrop_check_dir(const struct privdrop *p, const char *what, const char *dir, char *err,
    size_t errlen) BS_WUR;

/*
 * With p->active: whether p's user will be able to read path once the
 * daemon runs as it (each directory above it searchable, the file
 * readable; a directory readable and searchable, with each regular file in
 * it readable). For the files re-read after start-up (SIGHUP, CRL
 * changes). 0 or BS_ERR_CONFIG with why (the path, owner and mode).
 */
int privdrop_check_readable(const struct privdrop *p, const char *path, char *err,
    size_t errlen) BS_WUR;

/*
 * Switches to p's user for good (groups, gid, uid), then checks that root
 * cannot be regained and keeps the process out of core dumps. 0, or
 * BS_ERR_IO with why (the caller must not go on).
 */
int privdrop_apply(const struct privdrop *p, char *err, size_t errlen) BS_WUR;

#endif
