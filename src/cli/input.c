/*
 * input.c - files, base64 and hex digests given to the `boltseal` CLI
 * (see input.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/input.h"
#include "cli/output.h"
#include "common/b64.h"
#include "common/hex.h"

int
input_read_file(const char *cmd, const char *path, size_t max, uint8_t **out, size_t *outlen)
{
	FILE *f;
	uint8_t *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	int ret = CLI_EXIT_USAGE;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "rb")) == NULL) {
		out_err(cmd, "%s: %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				out_err(cmd, "out of memory");
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len > max) {
			out_err(cmd, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		out_err(cmd, "%s: read error", path);
		goto out;
	}
	buf[len] = '\0';  /* convenience for text files; len excludes it */
	*out = buf;
	*outlen = len;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	if (f != stdin)
		fclose(f);
	return ret;
}

char *
input_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

char *
input_next_line(char **cur, int *lineno)
{
	char *line, *p;

	while ((line = *cur) != NULL) {
		(*lineno)++;
		if ((*cur = strchr(line, '\n')) != NULL)
			*(*cur)++ = '\0';
		p = input_trim(line);
		if (*p != '\0' && *p != '#')
			return p;
	}
	return NULL;
}

int
input_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	uint8_t *buf = NULL;
	size_t total = 0;

	/* measure, then decode; nothing at all is not a signature */
	if (bs_b64_decode(in, inlen, BS_B64_LAX, NULL, 0, &total) != 0 || total == 0 ||
	    (buf = malloc(total)) == NULL)
		return -1;
	if (bs_b64_decode(in, inlen, BS_B64_LAX, buf, total, &total) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = total;
	return 0;
}

int
input_hex_digest(const char *s, size_t len, uint8_t out[32])
{
	return bs_hex_decode(s, len, out, 32, 0) == 0 ? 0 : -1;
}
