/*
 * settings.c - the connection settings of the `boltseal` CLI: flags, then
 * BOLTSEAL_* environment variables, then the config file, then defaults
 * (see settings.h and docs/cli.md, "Global options").
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/input.h"
#include "cli/output.h"
#include "cli/settings.h"

#define MAX_CONFIG_FILE (64u * 1024u)

/* Replaces *dst by a copy of v; exits on allocation failure. */
static void
set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (n == NULL) {
		out_err(NULL, "out of memory");
		exit(CLI_EXIT_CONN);
	}
	free(*dst);
	*dst = n;
}

/* Sets *dst from the environment variable name unless it is set already or empty. */
static void
set_from_env(char **dst, const char *name)
{
	const char *v;

	if (*dst == NULL && (v = getenv(name)) != NULL && *v != '\0')
		set_str(dst, v);
}

static int
parse_timeout(const char *v, int *out)
{
	unsigned long n;

	if (args_uint(v, 1, 86400000UL, &n) != 0)
		return -1;
	*out = (int)n;
	return 0;
}

/*
 * Applies one "k = v" line of the config file at path to s (only settings
 * not yet set). Relative ca, cert and key paths are taken relative to the
 * file's directory (dirlen bytes of path). Returns 0 or CLI_EXIT_USAGE.
 */
static int
config_line(const char *path, size_t dirlen, int lineno, const char *k, const char *v,
    struct cli_settings *s)
{
	char full[4096];
	int t;

	if (strcmp(k, "ca") == 0 || strcmp(k, "cert") == 0 || strcmp(k, "key") == 0) {
		if (v[0] != '/' && dirlen > 0) {
			if ((size_t)snprintf(full, sizeof(full), "%.*s%s", (int)dirlen, path, v) >=
			    sizeof(full)) {
				out_err(NULL, "%s:%d: path too long", path, lineno);
				return CLI_EXIT_USAGE;
			}
			v = full;
		}
		if (strcmp(k, "ca") == 0 && s->ca == NULL)
			set_str(&s->ca, v);
		else if (strcmp(k, "cert") == 0 && s->cert == NULL)
			set_str(&s->cert, v);
		else if (strcmp(k, "key") == 0 && s->key == NULL)
			set_str(&s->key, v);
	} else if (strcmp(k, "server") == 0) {
		if (s->server == NULL)
			set_str(&s->server, v);
	} else if (strcmp(k, "server_name") == 0) {
		if (s->server_name == NULL)
			set_str(&s->server_name, v);
	} else if (strcmp(k, "timeout_ms") == 0) {
		if (parse_timeout(v, &t) != 0) {
			out_err(NULL, "%s:%d: timeout_ms must be 1-86400000", path, lineno);
			return CLI_EXIT_USAGE;
		}
		if (s->timeout_ms == 0)
			s->timeout_ms = t;
	} else {
		out_err(NULL, "%s:%d: unknown key '%s'", path, lineno, k);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Loads a "key = value" config file into s (only settings not yet set). */
static int
config_load(const char *path, struct cli_settings *s)
{
	uint8_t *buf = NULL;
	size_t len, dirlen = 0;
	char *cur, *eq, *k, *v, *p;
	const char *slash;
	int lineno = 0, ret = CLI_EXIT_USAGE;

	if (input_read_file(NULL, path, MAX_CONFIG_FILE, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if (memchr(buf, '\0', len) != NULL) {
		out_err(NULL, "%s: not a text file", path);
		goto out;
	}
	if ((slash = strrchr(path, '/')) != NULL)
		dirlen = (size_t)(slash - path) + 1;
	cur = (char *)buf;
	while ((p = input_next_line(&cur, &lineno)) != NULL) {
		if ((eq = strchr(p, '=')) == NULL) {
			out_err(NULL, "%s:%d: expected \"key = value\"", path, lineno);
			goto out;
		}
		*eq = '\0';
		k = input_trim(p);
		v = input_trim(eq + 1);
		if (*v == '\0') {
			out_err(NULL, "%s:%d: empty value for '%s'", path, lineno, k);
			goto out;
		}
		if (config_line(path, dirlen, lineno, k, v, s) != 0)
			goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* Splits HOST:PORT, [V6]:PORT or HOST (port 7443). Returns 0 or -1. */
static int
split_server(const char *v, char *host, size_t hlen, char *port, size_t plen)
{
	const char *h, *p = NULL, *c;
	size_t hl;
	unsigned long n;

	if (v[0] == '[') {
		if ((c = strchr(v, ']')) == NULL)
			return -1;
		h = v + 1;
		hl = (size_t)(c - h);
		if (c[1] == ':')
			p = c + 2;
		else if (c[1] != '\0')
			return -1;
	} else {
		h = v;
		c = strchr(v, ':');
		if (c != NULL && strchr(c + 1, ':') != NULL)
			return -1;  /* bare IPv6: brackets required */
		hl = c != NULL ? (size_t)(c - v) : strlen(v);
		if (c != NULL)
			p = c + 1;
	}
	if (hl == 0 || hl >= hlen)
		return -1;
	if (p == NULL)
		p = "7443";
	if (args_uint(p, 1, 65535, &n) != 0 || strlen(p) >= plen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, plen, "%s", p);
	return 0;
}

int
settings_resolve(const struct args *g, struct cli_settings *s)
{
	const struct {
		const char *flag;
		const char *env;      /* NULL: no environment variable */
		char **dst;
	} strs[] = {
		{ "server", "BOLTSEAL_SERVER", &s->server },
		{ "ca", "BOLTSEAL_CA", &s->ca },
		{ "cert", "BOLTSEAL_CERT", &s->cert },
		{ "key", "BOLTSEAL_KEY", &s->key },
		{ "server-name", NULL, &s->server_name },
	};
	const char *cfg = args_get(g, "config"), *tmo = args_get(g, "timeout"), *v;
	size_t i;
	int ret;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((v = args_get(g, strs[i].flag)) != NULL)
			set_str(strs[i].dst, v);
	if (tmo != NULL && parse_timeout(tmo, &s->timeout_ms) != 0)
		return out_usage(NULL, "--timeout must be 1-86400000 (milliseconds)");
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strs[i].env != NULL)
			set_from_env(strs[i].dst, strs[i].env);
	if (cfg == NULL && (v = getenv("BOLTSEAL_CONFIG")) != NULL && *v != '\0')
		cfg = v;
	if (cfg != NULL && (ret = config_load(cfg, s)) != 0)
		return ret;
	if (s->server == NULL)
		set_str(&s->server, SETTINGS_DEFAULT_SERVER);
	if (split_server(s->server, s->host, sizeof(s->host), s->port, sizeof(s->port)) != 0)
		return out_usage(NULL, "bad server address '%s' (HOST:PORT or [IPV6]:PORT)",
		    s->server);
	if (s->key != NULL && s->cert == NULL)
		return out_usage(NULL, "a client key was given without a client certificate");
	/* rows 1..3 (ca, cert, key): a file that cannot be read is the user's error
	 * (exit 2), not a TLS one */
	for (i = 1; i <= 3; i++) {
		FILE *f;

		if (*strs[i].dst == NULL)
			continue;
		if ((f = fopen(*strs[i].dst, "r")) == NULL)
			return out_usage(NULL, "--%s %s: %s", strs[i].flag, *strs[i].dst,
			    strerror(errno));
		fclose(f);
	}
	return 0;
}

void
settings_free(struct cli_settings *s)
{
	free(s->server);
	free(s->ca);
	free(s->cert);
	free(s->key);
	free(s->server_name);
	memset(s, 0, sizeof(*s));
}
