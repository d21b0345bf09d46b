/*
 * fileio.c - capped whole-file reads (see fileio.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/fileio.h"

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

			free(buf);
			errno = saved;
			return BS_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			free(buf);
			return BS_ERR_TOO_BIG;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	return 0;
}
