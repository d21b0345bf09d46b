/*
 * console.h - the interactive side of the `boltseal` CLI: `boltseal
 * console`, a shell (libedit) whose lines are the CLI's commands without
 * the program name, dispatched through the same command tables; and the
 * one way the CLI asks for a secret on the terminal (a second-factor code),
 * without echo.
 */
#ifndef BS_CLI_CONSOLE_H
#define BS_CLI_CONSOLE_H

#include <stddef.h>

#include "common/bs_error.h"

#define CONSOLE_SECRET_MAX 64        /* characters of a secret typed at a prompt */
#define CONSOLE_MAX_ARGS 64          /* words of one console line */
#define CONSOLE_HISTORY_FILE ".boltseal_history"  /* under $HOME */
#define CONSOLE_HISTORY_MAX 1000     /* lines kept */

/*
 * Asks for a secret on the terminal: writes prompt to stderr, then reads
 * one line from standard input with the terminal's echo off (restored
 * before returning, also when interrupted by SIGINT, SIGQUIT or SIGTSTP).
 * The line, without its newline, goes into buf (len bytes, NUL-terminated).
 * Returns 0, or -1 (buf then wiped and empty) if standard input is not a
 * terminal, at end of input, when interrupted, or if the line does not fit.
 * The line never passes through stdio buffers or the console's history.
 */
int console_read_secret(const char *prompt, char *buf, size_t len) BS_WUR;

/*
 * Whether a console line may be kept in the history: 0 when it holds
 * "--otp" or "--code", or a run of 6 to 8 digits standing alone between
 * spaces, quotes or '=' (what a second-factor code looks like); else 1.
 */
int console_line_storable(const char *line);

#endif
