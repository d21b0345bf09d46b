/*
 * args.c - the option parser of the `boltseal` CLI (see args.h): one loop
 * over the arguments for the global options, a command group and every
 * command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/output.h"

/* Options every level accepts. */
enum { COMMON_JSON, COMMON_HELP };
static const struct args_opt common_opts[] = {
	[COMMON_JSON] = { "json", 0, ARGS_FLAG },
	[COMMON_HELP] = { "help", 'h', ARGS_EXIT },
	{ NULL, 0, ARGS_FLAG },
};

int
args_find(const struct args_opt *opts, const char *name, size_t nlen)
{
	int i;

	for (i = 0; opts != NULL && opts[i].name != NULL; i++)
		if (strlen(opts[i].name) == nlen && memcmp(opts[i].name, name, nlen) == 0)
			return i;
	return -1;
}

static int
find_short(const struct args_opt *opts, char c)
{
	int i;

	for (i = 0; opts != NULL && opts[i].name != NULL; i++)
		if (opts[i].short_name != 0 && opts[i].short_name == c)
			return i;
	return -1;
}

/*
 * Looks up one option argument s ("--name", "--name=v" or "-X"): sets *opts
 * to the table (common or spec) and returns the row, or -1 if unknown.
 * *eq points at the '=' of "--name=v", else NULL.
 */
static int
lookup(const struct args_spec *spec, const char *s, const struct args_opt **opts,
    const char **eq)
{
	const char *name;
	size_t nlen;
	int i;

	*eq = NULL;
	if (s[1] != '-') {
		if (s[2] != '\0')
			return -1;
		*opts = common_opts;
		if ((i = find_short(common_opts, s[1])) >= 0)
			return i;
		*opts = spec->opts;
		return find_short(spec->opts, s[1]);
	}
	name = s + 2;
	*eq = strchr(name, '=');
	nlen = *eq != NULL ? (size_t)(*eq - name) : strlen(name);
	*opts = common_opts;
	if ((i = args_find(common_opts, name, nlen)) >= 0)
		return i;
	*opts = spec->opts;
	return args_find(spec->opts, name, nlen);
}

int
args_parse(const char *cmd, const struct args_spec *spec, unsigned flags, int argc,
    char **argv, struct args *a)
{
	const struct args_opt *opts, *o;
	const char *val, *eq;
	int i, j, only_pos = 0;

	memset(a, 0, sizeof(*a));
	a->opts = spec->opts;
	a->stop = argc;
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (only_pos || s[0] != '-' || strcmp(s, "-") == 0) {
			if (flags & ARGS_STOP) {
				a->stop = i;
				return 0;
			}
			if (a->npos >= spec->maxpos)
				return out_usage(cmd, "unexpected argument '%s'", s);
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if ((j = lookup(spec, s, &opts, &eq)) < 0)
			return out_usage(cmd, "unknown option '%s'", s);
		if (opts != common_opts && j >= ARGS_MAX_OPTS) {
			out_err(cmd, "internal error: more than %d options", ARGS_MAX_OPTS);
			return CLI_EXIT_CONN;
		}
		o = &opts[j];
		if (o->kind == ARGS_FLAG || o->kind == ARGS_EXIT) {
			if (eq != NULL)
				return out_usage(cmd, "option '--%s' takes no value", o->name);
			val = "1";
		} else if (eq != NULL) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return out_usage(cmd, "option '--%s' needs a value", o->name);
			val = argv[++i];
		}
		if (opts == common_opts && j == COMMON_HELP) {
			a->help = 1;
			return 0;
		}
		if (opts == common_opts) {
			a->json = 1;
			continue;
		}
		if (o->kind == ARGS_MULTI) {
			const char **nm = realloc(a->multi, (a->nmulti + 1) * sizeof(*nm));

			if (nm == NULL) {
				out_err(cmd, "out of memory");
				return CLI_EXIT_CONN;
			}
			a->multi = nm;
			a->multi[a->nmulti++] = val;
		} else if (a->val[j] != NULL && !(flags & ARGS_LAST)) {
			return out_usage(cmd, "option '--%s' given twice", o->name);
		}
		a->val[j] = val;
		if (o->kind == ARGS_EXIT)
			return 0;
	}
	if (!(flags & ARGS_STOP) && a->npos < spec->minpos)
		return out_usage(cmd, "missing argument");
	return 0;
}

const char *
args_get(const struct args *a, const char *name)
{
	int i = args_find(a->opts, name, strlen(name));

	return i >= 0 && i < ARGS_MAX_OPTS ? a->val[i] : NULL;
}

void
args_free(struct args *a)
{
	free(a->multi);
	a->multi = NULL;
	a->nmulti = 0;
}

int
args_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
	unsigned long n;
	char *end;

	if (v == NULL || !isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}
