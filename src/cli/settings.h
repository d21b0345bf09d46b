/*
 * settings.h - where the `boltseal` CLI's connection settings come from:
 * the global flags (--server, --ca, --cert, --key, --server-name, --timeout,
 * --config), then the BOLTSEAL_SERVER, BOLTSEAL_CA, BOLTSEAL_CERT,
 * BOLTSEAL_KEY and BOLTSEAL_CONFIG environment variables, then the
 * "key = value" config file, then the built-in defaults; the first found
 * wins.
 */
#ifndef BS_CLI_SETTINGS_H
#define BS_CLI_SETTINGS_H

#include "cli/args.h"
#include "common/bs_error.h"

#define SETTINGS_DEFAULT_SERVER "127.0.0.1:7443"

struct cli_settings {
	char *server;          /* HOST:PORT as given */
	char *ca;
	char *cert;
	char *key;
	char *server_name;
	int timeout_ms;        /* 0 = the client library's default */
	char host[256];        /* from server */
	char port[16];
};

/*
 * Resolves the settings from the parsed global options g (the flags of
 * SETTINGS_OPTS), the environment and the config file into *s (strings are
 * copies: settings_free s afterwards, also after an error). Returns 0 or
 * CLI_EXIT_USAGE with the error printed.
 */
int settings_resolve(const struct args *g, struct cli_settings *s) BS_WUR;

/* Frees the strings of s and clears it; a cleared s is a no-op. */
void settings_free(struct cli_settings *s);

/* The rows of the global option table that settings_resolve reads. */
#define SETTINGS_OPTS \
	{ "server", 0, ARGS_VALUE }, { "ca", 0, ARGS_VALUE }, { "cert", 0, ARGS_VALUE }, \
	{ "key", 0, ARGS_VALUE }, { "server-name", 0, ARGS_VALUE }, \
	{ "config", 0, ARGS_VALUE }, { "timeout", 0, ARGS_VALUE }

#endif
