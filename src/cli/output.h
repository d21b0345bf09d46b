/*
 * output.h - what the `boltseal` CLI prints, and how it ends: the exit
 * statuses, error lines on stderr ("boltseal: CMD: MESSAGE"), the mapping
 * of a call's outcome (transport error or gRPC status) to a message and an
 * exit status, the one JSON writer behind every --json object, the one key
 * printer (text and JSON), and the names of the boltseal.v1 enums as
 * printed (through types/types.h).
 */
#ifndef BS_CLI_OUTPUT_H
#define BS_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "boltseal/client.h"
#include "boltseal/v1/keys.pb-c.h"

/* Exit statuses (docs/cli.md, "Exit codes"). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_NEGATIVE 1  /* signature invalid, not serving, audit log failed */
#define CLI_EXIT_USAGE 2     /* bad argument, unreadable input, unwritable output */
#define CLI_EXIT_CONN 3      /* connection, TLS or protocol error */
#define CLI_EXIT_STATUS 4    /* the server answered a non-OK gRPC status */

#define CLI_PROGNAME "boltseal"

/* Prints "boltseal: CMD: MESSAGE\n" on stderr (no "CMD: " when cmd is NULL). */
void out_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Prints a usage error like out_err, then "Try 'boltseal CMD --help'.";
 * returns CLI_EXIT_USAGE.
 */
int out_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints server-supplied text with control characters shown as '?'. */
void out_safe(FILE *f, const char *s);
/* out_safe for multi-line text: newlines and tabs kept. */
void out_safe_text(FILE *f, const char *s);

/* Standard base64 (padded) of data in a new string the caller frees; exits on OOM. */
char *out_b64(const uint8_t *data, size_t len);

/*
 * Writes data to path ("-" = stdout). Returns 0, or CLI_EXIT_USAGE with the
 * error printed under cmd.
 */
int out_write_file(const char *cmd, const char *path, const uint8_t *data, size_t len);

/*
 * Maps the outcome of bs_client_unary (rv and res) to an exit status:
 * 0 for a completed call with status OK; CLI_EXIT_CONN for a transport
 * error; CLI_EXIT_STATUS for a non-OK gRPC status. Anything but 0 is
 * reported on stderr under cmd.
 */
int out_call_status(const char *cmd, int rv, const struct bs_call_result *res);

/*
 * Prints "boltseal: CMD: STATUS: MESSAGE" (or "boltseal: CMD: item N:
 * STATUS: MESSAGE" when item >= 0) on stderr; STATUS is the gRPC status
 * name, MESSAGE the server's text shown with out_safe (omitted if empty).
 */
void out_status(const char *cmd, long item, int status, const char *msg);

/* A time in unix seconds as UTC ISO 8601 ("2026-12-03T07:44:31Z"), or "-" when t <= 0. */
void out_time(int64_t t, char *buf, size_t len);
/* "label" padded to the value column (17), then s shown with out_safe, then a newline. */
void out_field(const char *label, const char *s);
/* out_field of out_time(t). */
void out_field_time(const char *label, int64_t t);
/* Multi-line text, each line indented by two spaces (control characters as '?'). */
void out_text_block(const char *text);

/* Names of boltseal.v1 enum values as printed; "none" for unspecified or unknown values. */
const char *out_alg(int pb);
const char *out_purpose(int pb);
const char *out_state(int pb);

/*
 * The JSON writer: compact JSON on stdout, one object per command. Members
 * are written in call order with their separators; name is NULL for array
 * elements and for the top-level value. Closing the top-level value ends
 * the line. Strings are escaped (control characters as \uXXXX).
 */
#define OUT_JSON_DEPTH 8

struct out_json {
	int depth;
	char closer[OUT_JSON_DEPTH];  /* '}' or ']' of each open container */
	char more[OUT_JSON_DEPTH];    /* a value was already written at this level */
};

void out_json_init(struct out_json *j);
void out_json_object(struct out_json *j, const char *name);
void out_json_array(struct out_json *j, const char *name);
void out_json_close(struct out_json *j);
/* s NULL is written as "". */
void out_json_str(struct out_json *j, const char *name, const char *s);
void out_json_uint(struct out_json *j, const char *name, unsigned long long v);
void out_json_int(struct out_json *j, const char *name, long long v);
void out_json_bool(struct out_json *j, const char *name, int v);
void out_json_null(struct out_json *j, const char *name);
/* Bytes as a standard base64 string. */
void out_json_b64(struct out_json *j, const char *name, const uint8_t *data, size_t len);

/* A key as a JSON object member (null when k is NULL). */
void out_json_key(struct out_json *j, const char *name, const Boltseal__V1__Key *k);
/* A key as text: name, algorithm, purpose, state, primary version, created, versions. */
void out_key_text(const Boltseal__V1__Key *k);
/* A key as {"key":KEY} (json) or as text. */
void out_key(int json, const Boltseal__V1__Key *k);

#endif
