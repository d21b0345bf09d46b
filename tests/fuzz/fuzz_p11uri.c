/*
 * fuzz_p11uri.c - fuzz target of the RFC 7512 PKCS#11 URI parser
 * (src/hsm/p11uri.c): any bytes as a URI; whatever parses names no query
 * attribute (so no PIN can ride in a URI) and fits its fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/p11uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11uri u;
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (p11uri_parse(s, &u) == 0) {
		if (memchr(s, '?', strlen(s)) != NULL)
			abort();
		if (strlen(u.token) >= sizeof(u.token) || strlen(u.serial) >= sizeof(u.serial))
			abort();
	}
	free(s);
	return 0;
}
