/*
 * input.h - bytes the `boltseal` CLI takes from its arguments: whole files
 * ("-" = stdin) read under a size cap, base64 signatures and hex SHA-256
 * digests.
 */
#ifndef BS_CLI_INPUT_H
#define BS_CLI_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define INPUT_MAX_FILE (64u * 1024u * 1024u)  /* messages, digest lists, keys */

/*
 * Reads the whole of path ("-" = stdin), at most max bytes, into *out
 * (malloc'd, followed by a NUL not counted in *outlen; the caller frees).
 * Returns 0, or CLI_EXIT_USAGE with the error printed under cmd.
 */
int input_read_file(const char *cmd, const char *path, size_t max, uint8_t **out,
    size_t *outlen) BS_WUR;

/*
 * Decodes standard base64, padded or not, whitespace ignored, into *out
 * (malloc'd; the caller frees). Returns 0, or -1 if malformed or out of memory.
 */
int input_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen) BS_WUR;

/*
 * Trims spaces and tabs at both ends of s, and CR and LF at its end, in
 * place; returns the first byte kept (a line of a text file read whole).
 */
char *input_trim(char *s);

/*
 * The next line of the text at *cur (NUL-terminated, cut in place) that is
 * neither blank nor a '#' comment, trimmed with input_trim; *cur and
 * *lineno advance past it. NULL at the end of the text.
 */
char *input_next_line(char **cur, int *lineno);

/* Decodes exactly 64 hex digits (len bytes of s) into out. Returns 0 or -1. */
int input_hex_digest(const char *s, size_t len, uint8_t out[32]) BS_WUR;

#endif
