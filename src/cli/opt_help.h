/*
 * opt_help.h - the one-line help of each command-line option (opt_help.c),
 * printed by `boltseal COMMAND --help`.
 */
#ifndef BS_CLI_OPT_HELP_H
#define BS_CLI_OPT_HELP_H

/*
 * The help of option name ("out", without "--") in the command words
 * ("keys sign", the group and command names, not an alias): the command's
 * own line if it has one, else the line every command shares. NULL if none.
 */
const char *opt_help(const char *words, const char *name);

#endif
