/*
 * json_strict.h - the one strict JSON reader of boltseal: jansson's parser
 * (RFC 8259; valid UTF-8; no lone surrogate; no raw control character in a
 * string; no \u0000; no leading zero; integers that fit in 64 bits; nothing
 * after the value; no byte order mark), with duplicate keys refused at any
 * depth, and these checks on top: no floating-point number (fraction or
 * exponent), a size and nesting limit, and optionally a top-level object,
 * a member count and a key length per object. Used for TUF metadata, the
 * arguments of commands, and by the vehicle side of the client library.
 * Pure: no I/O.
 *
 * jansson reads "-0" as the integer 0; every other spelling of a number
 * that RFC 8259 allows but these rules do not is refused.
 */
#ifndef BS_JSON_STRICT_H
#define BS_JSON_STRICT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"

struct json_strict_limits {
	size_t max_len;          /* bytes of the document */
	unsigned max_depth;      /* deepest nesting: the top-level value is at 0, its members at 1 */
	size_t max_members;      /* members of any one object; 0: no limit */
	size_t max_key;          /* bytes of any key; 0: no limit */
	int object;              /* the top-level value must be an object */
};

/*
 * Parses buf[0..len) under lim. Returns 0 and *out (the caller
 * json_decref()s it); BS_ERR_TOO_BIG when len > lim->max_len;
 * BS_ERR_INVALID with a message in err naming the problem and where it is
 * (line and column, or a path such as $.signed.version); BS_ERR_NOMEM.
 * *out is NULL on error.
 */
int json_strict_parse(const uint8_t *buf, size_t len, const struct json_strict_limits *lim,
    json_t **out, char *err, size_t errlen) BS_WUR;

#endif
