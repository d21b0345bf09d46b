/*
 * pb_text.h - a decoded protobuf-c message rendered as text, one line per
 * set field, for the humans who approve an operation: an administrator must
 * see exactly what they approve, so every value is shown unambiguously
 * (strings quoted and escaped, bytes in hex, enums by name) and nothing the
 * message carries is left out (unknown fields included).
 *
 * It walks the message with its protobuf-c descriptor (like pb_strings.c
 * walks the wire format). Pure apart from the output allocation.
 */
#ifndef BS_PB_TEXT_H
#define BS_PB_TEXT_H

#include <protobuf-c/protobuf-c.h>

#include "common/bs_error.h"

#define PB_TEXT_MAX_DEPTH 16                /* nested messages below the top one */
#define PB_TEXT_MAX_LEN (256u * 1024u)      /* output characters, NUL not counted */
#define PB_TEXT_BYTES_FULL 64               /* longer bytes fields are shortened */
#define PB_TEXT_BYTES_HEAD 32               /* bytes shown of a shortened field */

/*
 * Writes msg (decoded by protobuf-c, borrowed) as text into *out (malloc'd,
 * NUL-terminated; the caller frees it, wiping it first when the message may
 * carry secrets): one line per set field, in field-number order,
 * "path: value\n":
 *  - path: the field's name; nested messages as "outer.inner"; repeated
 *    elements as "name[i]" (from 0); map entries (a repeated message whose
 *    descriptor is a map entry: named after the field as protoc names them,
 *    "<CamelCaseName>Entry", with exactly the fields key = 1 and value = 2)
 *    as "name[KEY]", KEY written as a value (so string keys are quoted and
 *    escaped); a map entry's value is shown even when it is the default;
 *  - strings: double-quoted, with \", \\, \n, \t and other bytes < 0x20 or
 *    0x7f as \xHH; UTF-8 above 0x7f kept, except what could hide or
 *    reorder text on a terminal: bytes that are not valid UTF-8 as \xHH,
 *    C1 controls (U+0080-U+009F), bidi controls (U+061C, U+200E, U+200F,
 *    U+202A-U+202E, U+2066-U+2069) and invisible characters (U+00AD,
 *    U+200B-U+200D, U+2060-U+2064, U+FEFF) as \uXXXX;
 *  - bytes: "hex:" followed by lower-case hex, and " (N bytes)"; longer
 *    than 64 bytes: the first 32 bytes' hex, "...", and
 *    " (N bytes, sha256 HEX)" with the SHA-256 of all of them;
 *  - integers in decimal, bool true/false, enums by their value name
 *    (unknown numbers as the decimal number), floats and doubles with
 *    %.17g;
 *  - a set message field with no set field inside as "path: {}";
 *  - fields that are unset (proto3 scalars equal to their default, empty
 *    strings/bytes, NULL messages, zero-length repeated; proto2 optional
 *    scalars without has_, strings/messages NULL or the default) are
 *    omitted; required fields are always shown; of a oneof, only the set
 *    member (even when it holds the default);
 *  - fields unknown to the descriptor (kept by protobuf-c) after the known
 *    ones of their message, as "path.#N: " and their wire bytes after the
 *    tag in the bytes form (N the field number).
 * An empty message renders as "" (an empty string, still malloc'd).
 * Returns 0, BS_ERR_INVALID (msg or out NULL, a descriptor that is not a
 * message descriptor, a nested message of another type than its field's,
 * a repeated field with elements but no array), BS_ERR_TOO_BIG (nested
 * more than PB_TEXT_MAX_DEPTH messages deep, map entries counted, or
 * output over PB_TEXT_MAX_LEN), BS_ERR_CRYPTO (SHA-256 failed),
 * BS_ERR_NOMEM.
 */
int pb_text_render(const ProtobufCMessage *msg, char **out) BS_WUR;

#endif
