/*
 * main.c - `boltseal`, the command-line client of boltsealed: main() reads
 * the global options, hands the rest to the command tables (dispatch.c;
 * one table per service: cmd_keys.c, cmd_audit.c, cmd_health.c), resolves
 * the connection settings for commands that call the server (settings.c)
 * and runs the command. Output and exit statuses: output.h; the options
 * and commands: docs/cli.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/dispatch.h"
#include "cli/output.h"
#include "cli/settings.h"

static const struct args_opt global_opts[] = {
	SETTINGS_OPTS,
	{ "otp", 0, ARGS_VALUE },
	{ "version", 'V', ARGS_EXIT },
	{ NULL, 0, ARGS_FLAG },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s [global options] COMMAND [ARGS]\n"
	    "\n"
	    "Global options (before or after COMMAND; after it, an option of the command\n"
	    "is the command's):\n"
	    "  --server HOST:PORT   server address (env BOLTSEAL_SERVER; default %s)\n"
	    "  --ca FILE            CA certificate(s) the server must chain to (env BOLTSEAL_CA)\n"
	    "  --cert FILE          client certificate, PEM (env BOLTSEAL_CERT)\n"
	    "  --key FILE           client private key, PEM (env BOLTSEAL_KEY)\n"
	    "  --server-name NAME   name to verify in the server certificate (default: host)\n"
	    "  --config FILE        \"key = value\" settings file (env BOLTSEAL_CONFIG)\n"
	    "  --timeout MS         per-call deadline in milliseconds (default 30000)\n"
	    "  --otp CODE           second-factor code for the first call that needs one\n"
	    "                       (env BOLTSEAL_OTP; asked for on a terminal if missing)\n"
	    "  --json               print one JSON object instead of text\n"
	    "  --help, --version\n"
	    "\n", CLI_PROGNAME, SETTINGS_DEFAULT_SERVER);
	dispatch_print_commands(f);
	fprintf(f,
	    "\nExit status: 0 ok, 1 signature invalid / not serving / audit verify failed,\n"
	    "2 usage error or unreadable input,\n"
	    "3 connection, TLS or protocol error, 4 the server returned an error status.\n"
	    "See docs/cli.md.\n");
}

/*
 * Parses the global options before the command (pre[0..npre)) and those
 * dispatch_parse found after it (d->gargv) into *g, which it replaces.
 * 0 or the usage error printed.
 */
static int
reparse_globals(const struct args_spec *spec, char **pre, int npre, const struct dispatch *d,
    struct args *g)
{
	char **all = calloc((size_t)(npre + d->ngargv + 1), sizeof(*all));
	int ret;

	if (all == NULL) {
		out_err(NULL, "out of memory");
		return CLI_EXIT_CONN;
	}
	memcpy(all, pre, (size_t)npre * sizeof(*all));
	memcpy(all + npre, d->gargv, (size_t)d->ngargv * sizeof(*all));
	args_free(g);
	ret = args_parse(NULL, spec, ARGS_LAST, npre + d->ngargv, all, g);
	free(all);
	return ret;
}

int
main(int argc, char **argv)
{
	static const struct args_spec global = { global_opts, 0, 0 };
	struct cli_ctx x;
	struct args g;
	struct dispatch d;
	int i, ret;

	memset(&x, 0, sizeof(x));
	memset(&d, 0, sizeof(d));
	signal(SIGPIPE, SIG_IGN);

	/* the bash completion's question: the candidates, never an error */
	if (argc >= 2 && strcmp(argv[1], "__complete") == 0) {
		dispatch_complete(stdout, global_opts, argc - 2, argv + 2);
		return 0;
	}
	/* global options stop at the first word; a repeated one replaces the earlier */
	if ((ret = args_parse(NULL, &global, ARGS_STOP | ARGS_LAST, argc - 1, argv + 1, &g)) != 0)
		goto out;
	if (g.help) {
		usage(stdout);
		goto out;
	}
	if (args_get(&g, "version") != NULL) {
		printf("%s %s\n", CLI_PROGNAME, PACKAGE_VERSION);
		goto out;
	}
	i = 1 + g.stop;
	if (i >= argc) {
		usage(stderr);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc || dispatch_help(argc - i - 1, argv + i + 1) != 0)
			usage(stdout);
		goto out;
	}
	dispatch_set_global_opts(global_opts);
	ret = dispatch_parse(argc - i, argv + i, &d);
	/* only this command line: the console's own lines take no global options */
	dispatch_set_global_opts(NULL);
	if (ret != 0 || d.cmd == NULL)
		goto out;
	/* global options given after the command: parsed again with those before it */
	if (d.ngargv > 0 && (ret = reparse_globals(&global, argv + 1, g.stop, &d, &g)) != 0)
		goto out;
	x.json = g.json || d.args.json;
	x.cmd = d.words;
	x.otp = args_get(&g, "otp");
	if (!d.cmd->offline && (ret = settings_resolve(&g, &x.s)) != 0)
		goto out;
	ret = d.cmd->run(&x, &d.args);
	if (fflush(stdout) != 0 && ret == CLI_EXIT_OK) {
		out_err(x.cmd, "write error on standard output");
		ret = CLI_EXIT_CONN;
	}
out:
	bs_client_free(x.client);
	dispatch_free(&d);
	args_free(&g);
	settings_free(&x.s);
	return ret;
}
