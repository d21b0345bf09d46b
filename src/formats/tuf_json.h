/*
 * tuf_json.h - the JSON of TUF metadata (theupdateframework.io
 * specification 1.0): a strict parser for untrusted metadata (jansson,
 * plus the rules TUF's canonical form needs) and the canonical encoders
 * whose bytes are what gets signed. Pure: no I/O.
 *
 * Strict parsing (tuf_json_parse): valid UTF-8, no NUL in strings, no
 * duplicate object keys, no floating-point numbers (TUF's canonical JSON
 * has none; securesystemslib refuses them), integers that fit in 64 bits,
 * nesting at most TUF_JSON_DEPTH_MAX deep, at most max_len bytes, exactly
 * one value.
 *
 * Canonical forms (tuf_json_canonical):
 *   TUF_CANON_OLPC       OLPC canonical JSON as securesystemslib's
 *                        encode_canonical writes it: object keys sorted by
 *                        code point (= UTF-8 byte order), no white space,
 *                        strings escaping only '\' and '"' (every other
 *                        byte, control characters and non-ASCII included,
 *                        is written as is), integers in decimal.
 *   TUF_CANON_AKTUALIZR  the dialect of aktualizr / OTA-Connect: the same,
 *                        but strings use standard JSON escaping (\b \f \n
 *                        \r \t, \u00XX for other control characters, like
 *                        Python's json.dumps(ensure_ascii=False)).
 */
#ifndef BS_TUF_JSON_H
#define BS_TUF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"

#define TUF_JSON_DEPTH_MAX 32
#define TUF_KEYID_HEX_LEN 64

enum tuf_canon {
	TUF_CANON_OLPC = 0,
	TUF_CANON_AKTUALIZR,
};

/*
 * Parses buf[0..len) strictly (above). Returns 0 and *out (the caller
 * json_decref()s it); BS_ERR_TOO_BIG when len > max_len; BS_ERR_INVALID
 * with a message in err naming the problem and where it is (line and
 * column, or a path such as $.signed.version); BS_ERR_NOMEM.
 */
int tuf_json_parse(const uint8_t *buf, size_t len, size_t max_len, json_t **out, char *err,
    size_t errlen) BS_WUR;

/*
 * The canonical form of v in *out (malloc'd, NUL-terminated; *len excludes
 * the NUL). BS_ERR_INVALID if v holds a real number or is nested deeper
 * than TUF_JSON_DEPTH_MAX + 1 (room for an envelope around a parsed
 * document); BS_ERR_NOMEM.
 */
int tuf_json_canonical(const json_t *v, enum tuf_canon form, char **out, size_t *len) BS_WUR;

/*
 * A TUF key id: lower-case hex SHA-256 of the OLPC canonical form of the
 * key object exactly as given (unknown fields included). hex gets 64
 * characters and a NUL.
 */
int tuf_json_keyid(const json_t *key, char hex[TUF_KEYID_HEX_LEN + 1]) BS_WUR;

#endif
