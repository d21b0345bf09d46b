/*
 * input.c - files, base64 and hex digests given to the `boltseal` CLI
 * (see input.h).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli/input.h"
#include "cli/output.h"

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
	char *clean = NULL;
	uint8_t *buf = NULL;
	size_t i, n = 0, pad = 0;
	int dl, ret = -1;

	if (inlen > (size_t)INT_MAX / 2 || (clean = malloc(inlen + 4)) == NULL)
		return -1;
	for (i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (isspace(ch))
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(isalnum(ch) || ch == '+' || ch == '/'))
			goto out;
		clean[n++] = (char)ch;
	}
	if (n == 0 || n % 4 == 1 || pad > 2)
		goto out;
	pad = (4 - n % 4) % 4;
	for (i = 0; i < pad; i++)
		clean[n++] = '=';
	if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
		goto out;
	dl = EVP_DecodeBlock(buf, (unsigned char *)clean, (int)n);
	if (dl < 0 || (size_t)dl < pad)
		goto out;
	*outlen = (size_t)dl - pad;
	*out = buf;
	buf = NULL;
	ret = 0;
out:
	free(clean);
	free(buf);
	return ret;
}

int
input_hex_digest(const char *s, size_t len, uint8_t out[32])
{
	size_t i;
	int hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
