/*
 * json_lite.h - a small strict JSON reader for the client library (no
 * dependency but libc), enough for the header and claims of a command token
 * (src/client/command_verify.c). It reads one top-level object and keeps
 * where each of its members is; nested values are checked and skipped.
 *
 * Strict: RFC 8259 syntax only; UTF-8 checked (no overlong forms, no
 * surrogates, nothing above U+10FFFF); no raw control characters in
 * strings; escapes incl. \uXXXX and surrogate pairs, but no \u0000 (a
 * decoded string is always a C string); numbers are integers in int64
 * range, one spelling each (no fraction, exponent, leading zero or "-0");
 * no duplicate keys in any object (compared decoded); no byte order mark;
 * nothing but whitespace after the object. Limits below.
 *
 * Nothing is allocated but one context per parse; the result borrows the
 * caller's buffer.
 */
#ifndef BS_CLIENT_JSON_LITE_H
#define BS_CLIENT_JSON_LITE_H

#include <stddef.h>
#include <stdint.h>

#define JSON_LITE_MAX_INPUT (64u * 1024u)  /* bytes of one document */
#define JSON_LITE_MAX_DEPTH 16             /* nesting; the top-level object is 1 */
#define JSON_LITE_MAX_MEMBERS 64           /* members of any one object */
#define JSON_LITE_MAX_KEY 256              /* bytes of a key, decoded */

/* Errors (negative); json_lite_strerror names them. */
#define JSON_LITE_OK 0
#define JSON_LITE_ERR_SYNTAX (-1)     /* not JSON, or truncated */
#define JSON_LITE_ERR_NOT_OBJECT (-2) /* the top-level value is not an object */
#define JSON_LITE_ERR_TRAILING (-3)   /* bytes after the object */
#define JSON_LITE_ERR_DEPTH (-4)      /* nested deeper than JSON_LITE_MAX_DEPTH */
#define JSON_LITE_ERR_DUPLICATE (-5)  /* a key appears twice in one object */
#define JSON_LITE_ERR_NUMBER (-6)     /* a fraction, exponent, leading zero, -0, or out of int64 range */
#define JSON_LITE_ERR_STRING (-7)     /* bad escape, lone surrogate, \u0000, control char, bad UTF-8 */
#define JSON_LITE_ERR_LIMIT (-8)      /* document, key or member count over the limits */
#define JSON_LITE_ERR_NOMEM (-9)
#define JSON_LITE_ERR_ARG (-10)       /* json_lite_string on a member that is not a string */

enum json_lite_type {
	JSON_LITE_NULL,
	JSON_LITE_FALSE,
	JSON_LITE_TRUE,
	JSON_LITE_INT,
	JSON_LITE_STRING,
	JSON_LITE_ARRAY,
	JSON_LITE_OBJECT,
};

/* One member of the top-level object: offsets into the parsed buffer. */
struct json_lite_member {
	size_t key_off, key_len;  /* the key's raw text, between its quotes */
	size_t val_off, val_len;  /* the value's exact text (a string: between its quotes) */
	enum json_lite_type type;
	int64_t num;              /* the value of a JSON_LITE_INT */
};

struct json_lite_obj {
	const uint8_t *buf;       /* the parsed text (borrowed) */
	size_t len;
	struct json_lite_member m[JSON_LITE_MAX_MEMBERS];
	size_t n;
};

/*
 * Parses buf (len bytes) as one strict JSON object into *o, which borrows
 * buf. Returns 0, or a JSON_LITE_ERR_* with *err_off (may be NULL) the
 * offset where the problem was found; *o is then cleared.
 */
int json_lite_parse(const uint8_t *buf, size_t len, struct json_lite_obj *o, size_t *err_off)
    __attribute__((warn_unused_result));

/* The member of o whose decoded key is key (a C string), or NULL. */
const struct json_lite_member *json_lite_get(const struct json_lite_obj *o, const char *key);

/*
 * Decodes the string value of m into out (outsz bytes, NUL-terminated),
 * *outlen (may be NULL) its length without the NUL. Returns 0,
 * JSON_LITE_ERR_LIMIT if it needs more than outsz bytes, or
 * JSON_LITE_ERR_ARG if m is not a string. out is cleared on failure.
 */
int json_lite_string(const struct json_lite_obj *o, const struct json_lite_member *m, char *out,
    size_t outsz, size_t *outlen) __attribute__((warn_unused_result));

/* Decodes the key of m like json_lite_string. */
int json_lite_key(const struct json_lite_obj *o, const struct json_lite_member *m, char *out,
    size_t outsz, size_t *outlen) __attribute__((warn_unused_result));

/* A short description of a JSON_LITE_* code ("duplicate key"). */
const char *json_lite_strerror(int rc);

/* The name of a type ("string", "integer", ...). */
const char *json_lite_type_name(enum json_lite_type t);

#endif
