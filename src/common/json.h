/*
 * json.h - the one JSON string escaper of boltseal, and a small writer of
 * compact JSON into a struct bytebuf (the audit log's records, the
 * JSON-lines log).
 *
 * Escaping: '"' and '\\' get a backslash; \b \f \n \r \t their short
 * escapes; other bytes below 0x20 \u00XX; valid UTF-8 (utf8.h) is kept as
 * is, including U+007F; each byte that does not start a valid sequence
 * becomes \ufffd. Keys are escaped like values.
 *
 * The writer puts members in call order with their separators. Like
 * bytebuf's puts, its calls do not fail one by one: write everything, then
 * check bs_json_error() once. After an error the calls do nothing.
 */
#ifndef BS_JSON_H
#define BS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "common/bytebuf.h"

/*
 * Writes s escaped (without quotes) into out (capacity cap, NUL-terminated
 * when cap > 0), stopping before the first escape or UTF-8 sequence that
 * does not fit whole. s NULL is "". Returns bytes written, NUL excluded.
 */
size_t bs_json_escape(char *out, size_t cap, const char *s);

/* Bytes of s escaped (without quotes and NUL); s NULL is "". */
size_t bs_json_escaped_len(const char *s);

#define BS_JSON_DEPTH_MAX 32            /* containers open at once */

struct bs_json {
	struct bytebuf *b;              /* borrowed: receives the text */
	unsigned depth;                 /* containers open */
	uint32_t is_array;              /* bit d: the container at depth d is an array */
	uint32_t more;                  /* bit d: it already has a member */
	int err;                        /* BS_ERR_INVALID after a misuse, else 0 */
};

/* Starts a writer appending to b (borrowed for the writer's life). */
void bs_json_init(struct bs_json *j, struct bytebuf *b);

/*
 * Every value below is written after a ',' when its container already has
 * a member. key names an object member and must be NULL for an array
 * element and for a top-level value; a wrong key, closing the wrong kind
 * of container or nesting deeper than BS_JSON_DEPTH_MAX is a misuse.
 */
void bs_json_begin_object(struct bs_json *j, const char *key);
void bs_json_end_object(struct bs_json *j);
void bs_json_begin_array(struct bs_json *j, const char *key);
void bs_json_end_array(struct bs_json *j);
/* s escaped between quotes; s NULL is written as null. */
void bs_json_put_string(struct bs_json *j, const char *key, const char *s);
void bs_json_put_int(struct bs_json *j, const char *key, int64_t v);
void bs_json_put_uint(struct bs_json *j, const char *key, uint64_t v);
void bs_json_put_null(struct bs_json *j, const char *key);
/* true when v is non-zero, else false. */
void bs_json_put_bool(struct bs_json *j, const char *key, int v);
/* json[0..n) as the value, unchecked: the caller vouches that it is one JSON value. */
void bs_json_put_raw(struct bs_json *j, const char *key, const char *json, size_t n);

/*
 * 0, BS_ERR_INVALID (a misuse, or containers still open), or the buffer's
 * error (BS_ERR_NOMEM, BS_ERR_TOO_BIG).
 */
int bs_json_error(const struct bs_json *j) BS_WUR;

#endif
