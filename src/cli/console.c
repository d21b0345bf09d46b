/*
 * console.c - `boltseal console`: an interactive shell over the CLI's own
 * command tables (see console.h). Each line is split into words like a
 * shell would (quotes, backslashes) and dispatched as `boltseal WORDS`
 * would be, on the one connection of the session. libedit (its
 * readline-compatible API) edits the lines, completes command words and
 * keeps the history, in memory and in ~/.boltseal_history (mode 0600),
 * from which lines that may hold a second-factor code are left out. Codes
 * are asked for with console_read_secret, without echo and outside the
 * line editor.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <editline/readline.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/console.h"
#include "cli/dispatch.h"
#include "cli/output.h"

#define PROMPT "boltseal> "

/* ---- secrets at the terminal ------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int
console_read_secret(const char *prompt, char *buf, size_t len)
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTSTP };
	struct sigaction sa, old_sa[3];
	struct termios old, quiet;
	size_t n = 0, i;
	ssize_t r;
	char c;
	int ret = -1, too_long = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: read() returns EINTR */
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	/* echo off before the prompt: nothing typed after it is ever echoed */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
		goto out;
	fputs(prompt, stderr);
	fflush(stderr);
	for (;;) {
		r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR && !interrupted)
			continue;
		if (r <= 0)
			break;             /* end of input, error or interrupted */
		if (c == '\n' || c == '\r') {
			ret = too_long ? -1 : 0;
			break;
		}
		if (n + 1 < len)
			buf[n++] = c;
		else
			too_long = 1;
	}
	c = 0;
	(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
out:
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	fputc('\n', stderr);
	if (ret != 0)
		n = 0;
	buf[n] = '\0';
	if (ret != 0)
		OPENSSL_cleanse(buf, len);
	return ret;
}

/* ---- history ---------------------------------------------------------------------- */

static int
is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '=' || c == '"' || c == '\'' || c == '\0';
}

int
console_line_storable(const char *line)
{
	const char *p, *q;

	if (strstr(line, "--otp") != NULL || strstr(line, "--code") != NULL)
		return 0;
	for (p = line; *p != '\0'; p = q) {
		for (q = p; *q >= '0' && *q <= '9'; q++)
			;
		if (q - p >= 6 && q - p <= 8 && (p == line || is_sep(p[-1])) && is_sep(*q))
			return 0;
		if (q == p)
			q++;
	}
	return 1;
}

/* The history file's path (malloc'd), or NULL without $HOME. */
static char *
history_path(void)
{
	const char *home = getenv("HOME");
	char *path;
	size_t n;

	if (home == NULL || home[0] == '\0')
		return NULL;
	n = strlen(home) + sizeof(CONSOLE_HISTORY_FILE) + 1;
	if ((path = malloc(n)) == NULL)
		return NULL;
	snprintf(path, n, "%s/%s", home, CONSOLE_HISTORY_FILE);
	return path;
}

/* Writes the history to path, readable by its owner only. */
static void
history_save(const char *path)
{
	mode_t old = umask(077);

	if (write_history(path) != 0)
		out_err("console", "cannot write the history to %s", path);
	umask(old);
	(void)chmod(path, 0600);
}

/* ---- completion ------------------------------------------------------------------- */

static const char *complete_group;  /* the group whose commands are completed; NULL: top */
static size_t complete_idx;

/* rl_completion_matches generator: the next word starting with text. */
static char *
complete_next(const char *text, int state)
{
	static const char *const extra[] = { "help", "quit", "exit" };
	size_t tl = strlen(text), i, nd;
	const char *w;

	if (state == 0)
		complete_idx = 0;
	for (;;) {
		i = complete_idx++;
		w = dispatch_word(complete_group, i);
		if (w == NULL && complete_group == NULL) {
			for (nd = 0; dispatch_word(NULL, nd) != NULL; nd++)
				;
			w = i - nd < sizeof(extra) / sizeof(extra[0]) ? extra[i - nd] : NULL;
		}
		if (w == NULL)
			return NULL;
		if (strncmp(w, text, tl) == 0)
			return strdup(w);
	}
}

/* rl_attempted_completion_function: command words at the first and second position. */
static char **
complete(const char *text, int start, int end)
{
	static char group[64];
	const char *p = rl_line_buffer, *w;
	size_t nwords = 0, wl = 0;

	(void)end;
	rl_attempted_completion_over = 1;   /* no file names */
	/* the words before the one completed */
	while (p < rl_line_buffer + start) {
		while (p < rl_line_buffer + start && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= rl_line_buffer + start)
			break;
		w = p;
		while (p < rl_line_buffer + start && *p != ' ' && *p != '\t')
			p++;
		if (nwords == 0) {
			wl = (size_t)(p - w);
			if (wl >= sizeof(group))
				wl = sizeof(group) - 1;
			memcpy(group, w, wl);
			group[wl] = '\0';
		}
		nwords++;
	}
	if (nwords == 0)
		complete_group = NULL;
	else if (nwords == 1 && strcmp(group, "help") != 0)
		complete_group = group;
	else if (nwords == 1)
		complete_group = NULL;
	else
		return NULL;
	if (complete_group != NULL && dispatch_word(complete_group, 0) == NULL)
		return NULL;
	return rl_completion_matches(text, complete_next);
}

/* ---- lines ------------------------------------------------------------------------ */

/*
 * Splits line in place into at most CONSOLE_MAX_ARGS words: blanks separate
 * words, '...' keeps everything, "..." keeps everything but \" and \\, a
 * backslash elsewhere keeps the next character. Returns the number of
 * words, or -1 (message printed) for an unbalanced quote or too many words.
 */
static int
split_line(char *line, char **argv)
{
	char *r = line, *w = line;
	int argc = 0;
	char q;

	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*r == '\0')
			break;
		if (argc == CONSOLE_MAX_ARGS) {
			out_err("console", "more than %d words", CONSOLE_MAX_ARGS);
			return -1;
		}
		argv[argc++] = w;
		while (*r != '\0' && *r != ' ' && *r != '\t') {
			if (*r == '\'' || *r == '"') {
				q = *r++;
				while (*r != '\0' && *r != q) {
					if (q == '"' && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
						r++;
					*w++ = *r++;
				}
				if (*r != q) {
					out_err("console", "unbalanced %c", q);
					return -1;
				}
				r++;
			} else if (*r == '\\' && r[1] != '\0') {
				r++;
				*w++ = *r++;
			} else {
				*w++ = *r++;
			}
		}
		if (*r != '\0')
			r++;
		*w++ = '\0';
	}
	argv[argc] = NULL;
	return argc;
}

static void
console_help(int argc, char **argv)
{
	if (argc > 1 && dispatch_help(argc - 1, argv + 1) == 0)
		return;
	printf("Type a command as you would after '%s' (e.g. 'proposals list', "
	    "'keys get NAME');\nTab completes command words. 'help COMMAND' prints a command's "
	    "usage; 'quit' or Ctrl-D leaves.\nCodes of your second factor are asked for without "
	    "echo when a call needs one.\n\n", CLI_PROGNAME);
	dispatch_print_commands(stdout);
}

/* Runs one line's words as a command; returns its exit status. */
static int
run_words(struct cli_ctx *x, int json, int argc, char **argv)
{
	struct dispatch d;
	int ret;

	memset(&d, 0, sizeof(d));
	if ((ret = dispatch_parse(argc, argv, &d)) != 0 || d.cmd == NULL)
		goto out;
	if (d.cmd == &cli_console_cmd) {
		out_err("console", "already in the console");
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	x->cmd = d.words;
	x->json = json || d.args.json;
	ret = d.cmd->run(x, &d.args);
	if (ret == CLI_EXIT_CONN && x->client != NULL) {
		/* the next command connects again */
		bs_client_free(x->client);
		x->client = NULL;
	}
out:
	fflush(stdout);
	x->cmd = "console";
	x->json = json;
	dispatch_free(&d);
	return ret;
}

static int
console_run(struct cli_ctx *x, const struct args *a)
{
	char *argv[CONSOLE_MAX_ARGS + 1];
	char *line, *hist = NULL;
	int json = x->json, tty = isatty(STDIN_FILENO), argc;

	(void)a;
	rl_readline_name = "boltseal";
	rl_attempted_completion_function = complete;
	if (tty) {
		using_history();
		stifle_history(CONSOLE_HISTORY_MAX);
		if ((hist = history_path()) != NULL)
			(void)read_history(hist);   /* a missing file is no error */
		printf("%s console: 'help' lists the commands, 'quit' or Ctrl-D leaves.\n",
		    CLI_PROGNAME);
		fflush(stdout);
	}
	while ((line = readline(tty ? PROMPT : "")) != NULL) {
		size_t len = strlen(line);

		if (tty && line[0] != '\0' && line[0] != ' ' && console_line_storable(line)) {
			add_history(line);
			if (hist != NULL)
				history_save(hist);
		}
		argc = split_line(line, argv);
		if (argc > 0 && (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0)) {
			OPENSSL_cleanse(line, len);
			free(line);
			break;
		}
		if (argc > 0 && strcmp(argv[0], "help") == 0)
			console_help(argc, argv);
		else if (argc > 0)
			(void)run_words(x, json, argc, argv);
		fflush(stdout);
		OPENSSL_cleanse(line, len);   /* it may have held a code */
		free(line);
	}
	if (line == NULL && tty)
		putchar('\n');
	free(hist);
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_console_cmd = {
	.name = "console",
	.summary = "an interactive shell of these commands, with completion and history",
	.usage = "",
	.run = console_run,
	.spec = { NULL, 0, 0 },
};
