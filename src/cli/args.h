/*
 * args.h - the one option parser of the `boltseal` CLI. The global options,
 * a group of commands and every command describe their options as a table
 * (struct args_spec); args_parse walks an argument vector once against such
 * a table: "--opt VALUE" and "--opt=VALUE", flags, repeatable options,
 * positional arguments, "--", and the options every level accepts: --json
 * and --help/-h.
 */
#ifndef BS_CLI_ARGS_H
#define BS_CLI_ARGS_H

#include <stddef.h>

#include "common/bs_error.h"

enum args_kind {
	ARGS_FLAG,   /* --name */
	ARGS_VALUE,  /* --name VALUE or --name=VALUE */
	ARGS_MULTI,  /* like ARGS_VALUE and repeatable: every value is kept, in order */
	ARGS_EXIT,   /* a flag that ends the parse where it stands (--version) */
};

struct args_opt {
	const char *name;   /* without "--"; NULL ends a table */
	char short_name;    /* "-X" also means --name; 0 for none */
	enum args_kind kind;
};

struct args_spec {
	const struct args_opt *opts;  /* NULL: no options but the common ones */
	int minpos;                   /* positional arguments required */
	int maxpos;                   /* positional arguments allowed */
};

#define ARGS_MAX_OPTS 24
#define ARGS_MAX_POS 3

/* args_parse flags */
#define ARGS_STOP 0x1  /* stop before the first positional argument (a command word) */
#define ARGS_LAST 0x2  /* a repeated option replaces its value instead of being an error */

struct args {
	const struct args_opt *opts;  /* the table the values belong to (borrowed) */
	const char *val[ARGS_MAX_OPTS];  /* value per row of opts ("1" for flags), or NULL */
	const char **multi;   /* the values of the ARGS_MULTI option, in order (args_free) */
	size_t nmulti;
	const char *pos[ARGS_MAX_POS];
	int npos;
	int stop;             /* ARGS_STOP: index in argv of the first positional argument,
	                         argc if there is none */
	int json;             /* --json was given */
	int help;             /* --help or -h was given: the parse stopped there */
};

/*
 * Parses argc arguments of argv against spec into *a (values are borrowed
 * from argv). Errors are usage errors reported under cmd (NULL for the
 * global options). Returns 0 (check a->help, and args_get for an ARGS_EXIT
 * option), CLI_EXIT_USAGE, or CLI_EXIT_CONN when out of memory. Call
 * args_free in every case.
 */
int args_parse(const char *cmd, const struct args_spec *spec, unsigned flags, int argc,
    char **argv, struct args *a) BS_WUR;

/* The value of option name (without "--"), "1" for a flag given, NULL if absent. */
const char *args_get(const struct args *a, const char *name);

/* Frees what args_parse allocated (not the strings, which belong to argv). */
void args_free(struct args *a);

/* Parses a decimal unsigned integer in [lo, hi] into *out. Returns 0 or -1. */
int args_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *out) BS_WUR;

/* The index of the row called name (nlen bytes) in opts, or -1. */
int args_find(const struct args_opt *opts, const char *name, size_t nlen);

#endif
