/*
 * fileio.c - checked opens and capped whole-file reads (see fileio.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"

static uid_t service_uid = (uid_t)-1;

void
bs_file_set_service_uid(uid_t uid)
{
	service_uid = uid;
}

int
bs_read_fd_capped(int fd, size_t cap, char **out, size_t *len_out)
{
	char *buf;
	size_t len = 0;
	ssize_t n;

	if ((buf = malloc(cap + 1)) == NULL)
		return BS_ERR_NOMEM;
	for (;;) {
		n = read(fd, buf + len, cap + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			explicit_bzero(buf, len);  /* the file may be a secret */
			free(buf);
			errno = saved;
			return BS_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			explicit_bzero(buf, len);
			free(buf);
			return BS_ERR_TOO_BIG;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	return 0;
}

int
bs_file_open_checked(const char *path, unsigned flags, int *fd_out, char *why, size_t whylen)
{
	struct stat st;
	int fd, rc = BS_ERR_CONFIG;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return BS_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
		rc = BS_ERR_IO;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file (mode %06o)", (unsigned)st.st_mode);
	} else if ((flags & BS_FILE_OWNER_ONLY) && (st.st_mode & 077) != 0) {
		snprintf(why, whylen, "mode %04o must not be accessible by group or others "
		    "(chmod 600)", (unsigned)(st.st_mode & 07777));
	} else if ((flags & BS_FILE_NO_GROUP_WRITE) && (st.st_mode & 022) != 0) {
		snprintf(why, whylen, "mode %04o is writable by group or others; refusing it "
		    "(chmod go-w)", (unsigned)(st.st_mode & 07777));
	} else if ((flags & BS_FILE_OWNED) && st.st_uid != 0 && st.st_uid != geteuid() &&
	    st.st_uid != service_uid) {
		snprintf(why, whylen, "owned by uid %u, neither root nor this process's user; "
		    "refusing it", (unsigned)st.st_uid);
	} else {
		*fd_out = fd;
		return 0;
	}
	close(fd);
	return rc;
}

int
bs_file_read_checked(const char *path, unsigned flags, size_t cap, char **out, size_t *len,
    char *why, size_t whylen)
{
	int fd, rc;

	if ((rc = bs_file_open_checked(path, flags, &fd, why, whylen)) != 0)
		return rc;
	rc = bs_read_fd_capped(fd, cap, out, len);
	if (rc == BS_ERR_TOO_BIG)
		snprintf(why, whylen, "file is larger than %zu bytes", cap);
	else if (rc == BS_ERR_IO)
		snprintf(why, whylen, "cannot read: %s", strerror(errno));
	close(fd);
	return rc;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
bs_file_replace(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char path[4096], tmp[4200];
	const uint8_t *p = data;
	int fd, rc = BS_ERR_IO, saved;
	size_t off = 0;

	if (name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return BS_ERR_INVALID;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return BS_ERR_IO;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)) < 0)
		return BS_ERR_IO;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto out;
	rc = close(fd);
	fd = -1;
	if (rc != 0 || rename(tmp, path) != 0 || fsync_dir(dir) != 0) {
		rc = BS_ERR_IO;
		goto out;
	}
	rc = 0;
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		(void)unlink(tmp);
	errno = saved;
	return rc;
}
