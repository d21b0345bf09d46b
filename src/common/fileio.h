/*
 * fileio.h - reading a whole small file from an open descriptor, with a
 * size cap checked while reading (the configuration, the policy, stored
 * checkpoints).
 */
#ifndef BS_FILEIO_H
#define BS_FILEIO_H

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

#endif
