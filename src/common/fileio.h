/*
 * fileio.h - opening a file the daemon trusts (the configuration, the
 * policy, the PIN file) with its type, mode and owner checked on the open
 * descriptor, and reading a whole small file with a size cap checked while
 * reading (also stored checkpoints).
 */
#ifndef BS_FILEIO_H
#define BS_FILEIO_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

/*
 * Reads fd to its end into *out (malloc'd, cap + 1 bytes, NUL-terminated;
 * the caller frees) and its length into *len. Returns 0, BS_ERR_TOO_BIG if
 * the file holds more than cap bytes, BS_ERR_IO (errno says why) or
 * BS_ERR_NOMEM. Outputs are set only on success; fd is not closed.
 */
int bs_read_fd_capped(int fd, size_t cap, char **out, size_t *len) BS_WUR;

#define BS_FILE_NO_GROUP_WRITE 0x1u   /* refuse a mode writable by group or others */
#define BS_FILE_OWNER_ONLY 0x2u       /* refuse any group or other access (a secret) */
#define BS_FILE_OWNED 0x4u            /* owned by root, this process's user or the service user */

/*
 * Opens path read-only (O_CLOEXEC, O_NOCTTY, O_NONBLOCK) and checks, on the
 * descriptor, that it is a regular file and what flags ask. On success *fd
 * is the open descriptor (the caller closes it). Otherwise nothing stays
 * open and why (whylen bytes) says what is wrong, without the path:
 * "cannot open: No such file or directory", "not a regular file (mode
 * 040755)", "mode 0666 is writable by group or others; refusing it (chmod
 * go-w)", "mode 0644 must not be accessible by group or others (chmod 600)",
 * "owned by uid 1000, neither root nor this process's user; refusing it".
 * Returns 0, BS_ERR_IO (open or fstat failed), BS_ERR_CONFIG (a check).
 */
int bs_file_open_checked(const char *path, unsigned flags, int *fd, char *why,
    size_t whylen) BS_WUR;

/*
 * bs_file_open_checked, then the whole file (at most cap bytes) into *out
 * (malloc'd, NUL-terminated; *len bytes; the caller frees). Returns 0,
 * BS_ERR_IO (open, stat or read failed), BS_ERR_CONFIG (a check failed),
 * BS_ERR_TOO_BIG ("file is larger than CAP bytes") or BS_ERR_NOMEM, with
 * why saying what (not for BS_ERR_NOMEM).
 */
int bs_file_read_checked(const char *path, unsigned flags, size_t cap, char **out, size_t *len,
    char *why, size_t whylen) BS_WUR;

/*
 * Replaces dir/name with len bytes of data durably: written to
 * dir/.name.tmp (a dot file, which directory readers such as tls_crl's skip),
 * fsync'd, renamed over dir/name, and the directory fsync'd; mode for a new
 * file. Readers see the old file or the new one, never a part. name is a
 * plain file name (no '/'). Returns 0, BS_ERR_INVALID (name) or BS_ERR_IO
 * (errno says why; the temporary file is removed).
 */
int bs_file_replace(const char *dir, const char *name, const void *data, size_t len,
    mode_t mode) BS_WUR;

/*
 * The user the daemon switches to after start-up (privdrop.h): files it
 * owns also pass BS_FILE_OWNED while the process still runs as root.
 */
void bs_file_set_service_uid(uid_t uid);

#endif
