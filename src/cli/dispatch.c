/*
 * dispatch.c - from command words to a row of the nested command tables
 * (see dispatch.h). The top level holds one row per service: a group
 * (`keys`, `audit`) whose command is the next word, or a command
 * (`health`). A command of a group is also found at the top level by its
 * alias, the spelling it had before the groups (`sign` = `keys sign`,
 * `list-keys` = `keys list`). A group may be spread over several rows of
 * the top level with its name, each with its own table (the key lifecycle
 * commands of cmd_admin.c join `keys`); the first row gives the group's
 * summary. Options may come before a group's command word: they are checked
 * against every option of the group, then parsed for the command.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/dispatch.h"
#include "cli/opt_help.h"
#include "cli/output.h"

static const struct cli_cmd *const roots[] = {
	&cli_keys_cmd,
	&cli_keys_lifecycle_cmd,
	&cli_mfa_cmd,
	&cli_proposals_cmd,
	&cli_propose_cmd,
	&cli_policy_cmd,
	&cli_ca_cmd,
	&cli_telemetry_cmd,
	&cli_ota_cmd,
	&cli_audit_cmd,
	&cli_commands_cmd,
	&cli_vehicles_cmd,
	&cli_checkpoint_cmd,
	&cli_envelope_cmd,
	&cli_health_cmd,
	&cli_console_cmd,
	NULL,
};

#define LIST_WIDTH 25  /* column of the summaries in the command lists
                          ("keys schedule-destruction") */

/* A walk over the commands of a group, in every top-level row of its name. */
struct group_walk {
	const char *name;
	size_t root;                /* the next root to look at */
	const struct cli_cmd *row;  /* the next row of the current table, or NULL */
};

static void
walk_init(struct group_walk *w, const struct cli_cmd *g)
{
	w->name = g->name;
	w->root = 0;
	w->row = NULL;
}

/* The next command of the walk's group; NULL after the last. */
static const struct cli_cmd *
walk_next(struct group_walk *w)
{
	for (;;) {
		if (w->row != NULL && w->row->name != NULL)
			return w->row++;
		while (roots[w->root] != NULL && (roots[w->root]->sub == NULL ||
		    strcmp(roots[w->root]->name, w->name) != 0))
			w->root++;
		if (roots[w->root] == NULL)
			return NULL;
		w->row = roots[w->root++]->sub;
	}
}

/* The command of group g named word; NULL if none. */
static const struct cli_cmd *
find_row(const struct cli_cmd *g, const char *word)
{
	struct group_walk w;
	const struct cli_cmd *r;

	walk_init(&w, g);
	while ((r = walk_next(&w)) != NULL)
		if (strcmp(r->name, word) == 0)
			return r;
	return NULL;
}

/* Whether roots[i] continues a group named by an earlier root. */
static int
continues_group(size_t i)
{
	size_t k;

	for (k = 0; k < i; k++)
		if (strcmp(roots[k]->name, roots[i]->name) == 0)
			return 1;
	return 0;
}

/*
 * The top-level row named word: a root, or a group's command by its alias
 * (then *group is that group, else NULL). NULL if none.
 */
static const struct cli_cmd *
find_top(const char *word, const struct cli_cmd **group)
{
	const struct cli_cmd *r;
	size_t i;

	*group = NULL;
	for (i = 0; roots[i] != NULL; i++)
		if (strcmp(roots[i]->name, word) == 0)
			return roots[i];
	for (i = 0; roots[i] != NULL; i++)
		for (r = roots[i]->sub; r != NULL && r->name != NULL; r++)
			if (r->alias != NULL && strcmp(r->alias, word) == 0) {
				*group = roots[i];
				return r;
			}
	return NULL;
}

/* The names of a group's commands, comma-separated, into buf. */
static void
join_names(const struct cli_cmd *g, char *buf, size_t len)
{
	struct group_walk w;
	const struct cli_cmd *r;
	size_t n = 0;

	buf[0] = '\0';
	walk_init(&w, g);
	while ((r = walk_next(&w)) != NULL && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n == 0 ? "" : ", ", r->name);
}

/* Prints "WORDS USAGE" and a newline; the usage's continuation lines start with indent. */
static void
print_synopsis(FILE *f, const char *words, const struct cli_cmd *c, const char *indent)
{
	const char *p;

	fputs(words, f);
	if (c->usage != NULL && c->usage[0] != '\0') {
		fputc(' ', f);
		for (p = c->usage; *p != '\0'; p++) {
			fputc(*p, f);
			if (*p == '\n')
				fputs(indent, f);
		}
	}
	fputc('\n', f);
}

/* The other spelling of a group's command c: its alias, or GROUP NAME. */
static void
other_spelling(const struct cli_cmd *g, const struct cli_cmd *c, int via_alias, char *buf,
    size_t len)
{
	if (via_alias)
		snprintf(buf, len, "%s %s", g->name, c->name);
	else
		snprintf(buf, len, "%s", c->alias);
}

/* The help of one command (`boltseal keys sign --help`). */
/*
 * "  --name META   help": META is what follows "--name " in the usage line
 * (FILE, N, vehicle|gateway|service...), VALUE if the usage does not show it.
 */
static void
print_opt_line(FILE *f, const char *canon, const struct cli_cmd *c, const struct args_opt *o)
{
	const char *help = opt_help(canon, o->name), *u = c->usage, *p;
	char head[96], meta[64] = "VALUE", pat[48];
	size_t n;

	snprintf(pat, sizeof(pat), "--%s ", o->name);
	if (o->kind == ARGS_VALUE || o->kind == ARGS_MULTI) {
		if (u != NULL && (p = strstr(u, pat)) != NULL && p[strlen(pat)] != '-' &&
		    (n = strcspn(p + strlen(pat), " )\n")) > 0 && n < sizeof(meta)) {
			int depth = 0;

			snprintf(meta, sizeof(meta), "%.*s", (int)n, p + strlen(pat));
			/* "[--opt N]...": cut at the ']' closing the optional part; keep "K[,K...]" */
			for (size_t k = 0; k < n; k++) {
				depth += meta[k] == '[' ? 1 : meta[k] == ']' ? -1 : 0;
				if (depth < 0) {
					meta[k] = '\0';
					break;
				}
			}
			if (meta[0] == '.' || meta[0] == '\0')
				snprintf(meta, sizeof(meta), "VALUE");
		}
		snprintf(head, sizeof(head), "--%s %s%s", o->name, meta,
		    o->kind == ARGS_MULTI ? "..." : "");
	} else {
		snprintf(head, sizeof(head), "--%s", o->name);
	}
	fprintf(f, "  %-26s %s\n", head, help != NULL ? help : "");
}

static void
print_cmd_help(FILE *f, const struct cli_cmd *g, const struct cli_cmd *c, const char *words,
    int via_alias)
{
	char other[64];

	fprintf(f, "usage: %s [global options] ", CLI_PROGNAME);
	print_synopsis(f, words, c, "        ");
	fprintf(f, "\n%s\n", c->summary);
	if (g != NULL && c->alias != NULL) {
		other_spelling(g, c, via_alias, other, sizeof(other));
		fprintf(f, "Also spelled: %s %s\n", CLI_PROGNAME, other);
	}
	if (c->spec.opts != NULL && c->spec.opts[0].name != NULL) {
		char canon[96];

		snprintf(canon, sizeof(canon), "%s%s%s", g != NULL ? g->name : "", g != NULL ? " " : "",
		    c->name);
		fprintf(f, "Options:\n");
		for (const struct args_opt *o = c->spec.opts; o->name != NULL; o++)
			print_opt_line(f, canon, c, o);
	}
	if (c->offline)
		fprintf(f, "Offline: ignores --server, --ca, --cert, --key, --config and their "
		    "environment.\n");
	fprintf(f, "Global options: '%s --help'. More: docs/cli.md.\n", CLI_PROGNAME);
}

/* The help of a group (`boltseal keys --help`): every command's usage and summary. */
static void
print_group_help(FILE *f, const struct cli_cmd *g)
{
	struct group_walk w;
	const struct cli_cmd *c;
	char words[64];

	fprintf(f, "usage: %s [global options] %s %s\n\n%s\n\nCommands:\n", CLI_PROGNAME,
	    g->name, g->usage, g->summary);
	walk_init(&w, g);
	while ((c = walk_next(&w)) != NULL) {
		snprintf(words, sizeof(words), "  %s %s", g->name, c->name);
		print_synopsis(f, words, c, "        ");
		fprintf(f, "      %s\n", c->summary);
		if (c->alias != NULL)
			fprintf(f, "      also: %s %s\n", CLI_PROGNAME, c->alias);
	}
	fprintf(f, "\n'%s %s COMMAND --help' prints one command's usage.\n", CLI_PROGNAME,
	    g->name);
}

void
dispatch_print_commands(FILE *f)
{
	struct group_walk w;
	const struct cli_cmd *c;
	char words[64];
	size_t i;

	fprintf(f, "Commands:\n");
	for (i = 0; roots[i] != NULL; i++) {
		if (continues_group(i))
			continue;
		if (roots[i]->sub == NULL) {
			fprintf(f, "  %-*s %s\n", LIST_WIDTH, roots[i]->name, roots[i]->summary);
			continue;
		}
		walk_init(&w, roots[i]);
		while ((c = walk_next(&w)) != NULL) {
			snprintf(words, sizeof(words), "%s %s", roots[i]->name, c->name);
			fprintf(f, "  %-*s %s\n", LIST_WIDTH, words, c->summary);
		}
	}
	fprintf(f, "\nEarlier spellings, still accepted:\n");
	for (i = 0; roots[i] != NULL; i++)
		for (c = roots[i]->sub; c != NULL && c->name != NULL; c++)
			if (c->alias != NULL)
				fprintf(f, "  %-*s = %s %s\n", LIST_WIDTH, c->alias, roots[i]->name,
				    c->name);
	fprintf(f, "\n'%s COMMAND --help' (e.g. '%s keys sign --help') prints a command's "
	    "usage.\n", CLI_PROGNAME, CLI_PROGNAME);
}

int
dispatch_help(int argc, char **argv)
{
	const struct cli_cmd *g, *c, *sub;
	char words[64];

	if ((c = find_top(argv[0], &g)) == NULL)
		return -1;
	if (g != NULL) {
		print_cmd_help(stdout, g, c, argv[0], 1);
	} else if (c->sub == NULL) {
		print_cmd_help(stdout, NULL, c, c->name, 0);
	} else if (argc > 1 && (sub = find_row(c, argv[1])) != NULL) {
		snprintf(words, sizeof(words), "%s %s", c->name, argv[1]);
		print_cmd_help(stdout, c, sub, words, 0);
	} else {
		print_group_help(stdout, c);
	}
	return 0;
}

/* Usage error for a word that names no command, with a hint where one may be meant. */
static int
unknown_command(const struct cli_cmd *g, const char *word)
{
	const struct cli_cmd *c;
	char names[256];
	size_t i;

	if (g != NULL) {
		join_names(g, names, sizeof(names));
		return out_usage(g->name, "unknown command '%s' (one of: %s)", word, names);
	}
	for (i = 0; roots[i] != NULL; i++)
		for (c = roots[i]->sub; c != NULL && c->name != NULL; c++)
			if (strcmp(c->name, word) == 0)
				return out_usage(NULL, "unknown command '%s' "
				    "(did you mean '%s %s'?)", word, roots[i]->name, word);
	return out_usage(NULL, "unknown command '%s'", word);
}

/*
 * Finds the command word of group g in argv, after any options (checked
 * against every option the group's commands take). Returns 0 with *row and
 * *at (its index) set, 0 with *row NULL if --help was answered, or an exit
 * status with the error printed.
 */
static int
find_in_group(const struct cli_cmd *g, int argc, char **argv, const struct cli_cmd **row,
    int *at)
{
	struct args_opt all[ARGS_MAX_OPTS + 1];
	struct args_spec spec = { all, 0, 0 };
	struct group_walk w;
	const struct cli_cmd *c;
	const struct args_opt *o;
	struct args ga;
	char names[256];
	int n = 0, ret;

	*row = NULL;
	memset(all, 0, sizeof(all));
	walk_init(&w, g);
	while ((c = walk_next(&w)) != NULL)
		for (o = c->spec.opts; o != NULL && o->name != NULL; o++) {
			if (args_find(all, o->name, strlen(o->name)) >= 0)
				continue;
			if (n == ARGS_MAX_OPTS) {
				out_err(g->name, "internal error: more than %d options", n);
				return CLI_EXIT_CONN;
			}
			all[n++] = *o;
		}
	ret = args_parse(g->name, &spec, ARGS_STOP | ARGS_LAST, argc, argv, &ga);
	args_free(&ga);
	if (ret != 0)
		return ret;
	if (ga.help) {
		print_group_help(stdout, g);
		return 0;
	}
	if (ga.stop >= argc) {
		join_names(g, names, sizeof(names));
		return out_usage(g->name, "missing command (one of: %s)", names);
	}
	if ((*row = find_row(g, argv[ga.stop])) == NULL)
		return unknown_command(g, argv[ga.stop]);
	*at = ga.stop;
	return 0;
}

/* The global option table (dispatch_set_global_opts), or NULL. */
static const struct args_opt *global_opts;

void
dispatch_set_global_opts(const struct args_opt *opts)
{
	global_opts = opts;
}

static int takes_value(const struct args_opt *opts, const char *word);

/* 1 if word is --NAME or --NAME=V of a global option that command c does not also define. */
static int
is_global(const struct cli_cmd *c, const char *word)
{
	size_t len;

	if (strncmp(word, "--", 2) != 0 || word[2] == '\0')
		return 0;
	len = strcspn(word + 2, "=");
	return args_find(global_opts, word + 2, len) >= 0 &&
	    (c->spec.opts == NULL || args_find(c->spec.opts, word + 2, len) < 0);
}

int
dispatch_parse(int argc, char **argv, struct dispatch *d)
{
	const struct cli_cmd *c, *g;
	int at = -1, i, n = 0, ret, ended = 0;

	memset(d, 0, sizeof(*d));
	if ((c = find_top(argv[0], &g)) == NULL)
		return unknown_command(NULL, argv[0]);
	snprintf(d->words, sizeof(d->words), "%s", argv[0]);
	argc--;
	argv++;
	if (c->sub != NULL) {
		g = c;
		if ((ret = find_in_group(g, argc, argv, &c, &at)) != 0 || c == NULL)
			return ret;
		snprintf(d->words, sizeof(d->words), "%s %s", g->name, argv[at]);
	}
	if ((d->argv = calloc((size_t)argc + 1, sizeof(*d->argv))) == NULL) {
		out_err(d->words, "out of memory");
		return CLI_EXIT_CONN;
	}
	if ((d->gargv = calloc((size_t)argc + 1, sizeof(*d->gargv))) == NULL) {
		out_err(d->words, "out of memory");
		return CLI_EXIT_CONN;
	}
	for (i = 0; i < argc; i++) {
		if (i == at)
			continue;
		/* a global option after the command words, where the command has none of its name */
		if (global_opts != NULL && !ended && is_global(c, argv[i])) {
			d->gargv[d->ngargv++] = argv[i];
			if (takes_value(global_opts, argv[i]) && i + 1 < argc && i + 1 != at)
				d->gargv[d->ngargv++] = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--") == 0)
			ended = 1;
		d->argv[n++] = argv[i];
	}
	if ((ret = args_parse(d->words, &c->spec, 0, n, d->argv, &d->args)) != 0)
		return ret;
	d->group = g;
	if (d->args.help) {
		print_cmd_help(stdout, g, c, d->words, g != NULL && at < 0);
		return 0;
	}
	d->cmd = c;
	return 0;
}

const char *
dispatch_word(const char *group, size_t idx)
{
	struct group_walk w;
	const struct cli_cmd *c, *g = NULL;
	size_t i;

	if (group != NULL) {
		for (i = 0; roots[i] != NULL && g == NULL; i++)
			if (roots[i]->sub != NULL && strcmp(roots[i]->name, group) == 0)
				g = roots[i];
		if (g == NULL)
			return NULL;
		walk_init(&w, g);
		while ((c = walk_next(&w)) != NULL)
			if (idx-- == 0)
				return c->name;
		return NULL;
	}
	for (i = 0; roots[i] != NULL; i++)
		if (!continues_group(i) && idx-- == 0)
			return roots[i]->name;
	for (i = 0; roots[i] != NULL; i++)
		for (c = roots[i]->sub; c != NULL && c->name != NULL; c++)
			if (c->alias != NULL && idx-- == 0)
				return c->alias;
	return NULL;
}

/* The options every command takes (args_parse). */
static const struct args_opt common_opts[] = {
	{ "json", 0, ARGS_FLAG }, { "help", 'h', ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };

/* Prints "--NAME" of each option of opts that starts with cur. */
static void
complete_opts(FILE *f, const struct args_opt *opts, const char *cur)
{
	for (const struct args_opt *o = opts; o != NULL && o->name != NULL; o++)
		if (strncmp(o->name, cur + 2, strlen(cur) - 2) == 0)
			fprintf(f, "--%s\n", o->name);
}

/* 1 if word is an option of opts that takes a value (--name, not --name=v). */
static int
takes_value(const struct args_opt *opts, const char *word)
{
	int k;

	if (strncmp(word, "--", 2) != 0 || strchr(word, '=') != NULL)
		return 0;
	k = args_find(opts, word + 2, strlen(word + 2));
	return k >= 0 && (opts[k].kind == ARGS_VALUE || opts[k].kind == ARGS_MULTI);
}

void
dispatch_complete(FILE *f, const struct args_opt *global, int argc, char **argv)
{
	const char *cur = argc > 0 ? argv[argc - 1] : "", *w;
	const struct cli_cmd *c = NULL, *g = NULL;
	int i = 0;
	size_t k;

	/* skip the global options (and their values) before the first word */
	while (i < argc - 1 && argv[i][0] == '-') {
		i += takes_value(global, argv[i]) ? 2 : 1;
	}
	if (i >= argc || (i == argc - 1 && cur[0] != '-' && i > 0 && takes_value(global,
	    argv[i - 1])))
		return;
	if (i == argc - 1) {
		if (strncmp(cur, "--", 2) == 0) {
			complete_opts(f, global, cur);
			complete_opts(f, common_opts, cur);
			return;
		}
		for (k = 0; (w = dispatch_word(NULL, k)) != NULL; k++)
			if (strncmp(w, cur, strlen(cur)) == 0)
				fprintf(f, "%s\n", w);
		return;
	}
	if ((c = find_top(argv[i], &g)) == NULL)
		return;
	i++;
	if (c->sub != NULL) {
		g = c;
		/* the group's command word: the first word that is not an option */
		for (; i < argc - 1 && argv[i][0] == '-'; i++)
			;
		if (i == argc - 1) {
			for (k = 0; (w = dispatch_word(g->name, k)) != NULL; k++)
				if (strncmp(w, cur, strlen(cur)) == 0)
					fprintf(f, "%s\n", w);
			return;
		}
		if ((c = find_row(g, argv[i])) == NULL)
			return;
		i++;
	}
	/* the command's options; after one that takes a value, nothing (files) */
	if (argc >= 2 && i <= argc - 1 && takes_value(c->spec.opts, argv[argc - 2]))
		return;
	if (strncmp(cur, "--", 2) == 0) {
		complete_opts(f, c->spec.opts, cur);
		complete_opts(f, common_opts, cur);
	}
}

void
dispatch_free(struct dispatch *d)
{
	args_free(&d->args);
	free(d->argv);
	free(d->gargv);
	d->argv = NULL;
	d->gargv = NULL;
}
