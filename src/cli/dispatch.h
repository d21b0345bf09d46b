/*
 * dispatch.h - the nested command tables of the `boltseal` CLI: finding the
 * command a command line names (a group word and a command word, a
 * top-level command, or the top-level spelling a command had before the
 * groups), parsing its arguments, and the help printed at each level.
 */
#ifndef BS_CLI_DISPATCH_H
#define BS_CLI_DISPATCH_H

#include <stdio.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/bs_error.h"

struct dispatch {
	const struct cli_cmd *cmd;    /* the command to run; NULL when help was printed */
	const struct cli_cmd *group;  /* its group, or NULL */
	char words[64];               /* the command words as typed: "keys sign", "sign" */
	struct args args;             /* its options and positional arguments */
	char **argv;                  /* its arguments without the command words (malloc'd) */
	char **gargv;                 /* global options found after the command words, with
	                                 their values, for the caller to parse (malloc'd) */
	int ngargv;
};

/*
 * The global option table: dispatch_parse moves those of its options that
 * follow the command words (and that the command does not define itself)
 * into d->gargv. Without it (the console), nothing is moved.
 */
void dispatch_set_global_opts(const struct args_opt *opts);

/*
 * Resolves argv[0] (the first word after the global options) and what
 * follows into *d. Returns 0 with d->cmd set, 0 with d->cmd NULL when a
 * --help was answered on stdout, or CLI_EXIT_USAGE / CLI_EXIT_CONN with the
 * error printed. dispatch_free d in every case.
 */
int dispatch_parse(int argc, char **argv, struct dispatch *d) BS_WUR;

void dispatch_free(struct dispatch *d);

/*
 * The idx-th word (from 0) that may come next on a command line: with
 * group NULL, the first word (every top-level command and group, then the
 * earlier spellings); with a group's name, its commands. NULL past the
 * last, or when group names no group. The strings are static.
 */
const char *dispatch_word(const char *group, size_t idx);

/*
 * `boltseal __complete WORDS...` (the bash completion, etc/bash-completion/
 * boltseal): prints on f, one per line, what may replace the last word of
 * argv (the words after "boltseal"; the last one is being typed, maybe ""):
 * global options, command and group names, a group's commands, a command's
 * options. Nothing after an option that takes a value (the shell then
 * completes file names). global: the table of the global options.
 */
void dispatch_complete(FILE *f, const struct args_opt *global, int argc, char **argv);

/* Prints the command list and the kept spellings (for `boltseal --help`). */
void dispatch_print_commands(FILE *f);

/*
 * `boltseal help WORDS...`: prints the help of the group or command the
 * words name on stdout. Returns 0, or -1 (nothing printed) if argv[0] names
 * nothing.
 */
int dispatch_help(int argc, char **argv);

#endif
