/*
 * main.c - `boltseal`, the command-line client of boltsealed.
 *
 * One subcommand per RPC of boltseal.v1.KeyService plus `health`
 * (grpc.health.v1.Health/Check), and `audit verify`, which checks an audit
 * directory offline (no server, no connection settings). Connection
 * settings come from flags, then BOLTSEAL_* environment variables, then a
 * "key = value" config file, then built-in defaults (first found wins).
 * Output is human-readable by default, or one JSON object with --json
 * (bytes as base64). Errors go to stderr as "boltseal: CMD: MESSAGE". Exit
 * codes: 0 ok, 1 negative answer (signature invalid, service not serving,
 * audit log failed verification), 2 usage error, 3 connection/TLS/protocol
 * error, 4 the server answered a non-OK gRPC status. See docs/cli.md.
 */
#define _GNU_SOURCE  /* memmem */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "build_config.h"
#include "audit/audit_verify.h"
#include "boltseal/client.h"
#include "boltseal/v1/keys.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "formats/signed_note.h"
#include "formats/sigverify.h"
#include "rpc/rpc_status.h"

#define EXIT_OK 0
#define EXIT_NEGATIVE 1
#define EXIT_USAGE 2
#define EXIT_CONN 3
#define EXIT_STATUS 4

#define DEFAULT_SERVER "127.0.0.1:7443"
#define MAX_INPUT_FILE (64u * 1024u * 1024u)  /* messages, digest lists, keys */
#define MAX_CONFIG_FILE (64u * 1024u)
#define MAX_LIST_PAGES 100000
#define SVC "/boltseal.v1.KeyService/"

/* ---- settings ------------------------------------------------------------------- */

struct settings {
	char *server;
	char *ca;
	char *cert;
	char *key;
	char *server_name;
	int timeout_ms;       /* 0 = unset */
};

struct ctx {
	struct settings s;
	int json;
	const char *cmd;
	bs_client *client;
	char host[256];
	char port[16];
};

static const char *progname = "boltseal";

static void
errx_msg(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s%s--help'.\n", progname, cmd != NULL ? cmd : "",
	    cmd != NULL ? " " : "");
	return EXIT_USAGE;
}

static void
set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (n == NULL) {
		errx_msg(NULL, "out of memory");
		exit(EXIT_CONN);
	}
	free(*dst);
	*dst = n;
}

static void
settings_free(struct settings *s)
{
	free(s->server);
	free(s->ca);
	free(s->cert);
	free(s->key);
	free(s->server_name);
	memset(s, 0, sizeof(*s));
}

/* Parses a decimal unsigned integer in [lo, hi]. Returns 0 or -1. */
static int
parse_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
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

static int
parse_timeout(const char *v, int *out)
{
	unsigned long n;

	if (parse_uint(v, 1, 86400000UL, &n) != 0)
		return -1;
	*out = (int)n;
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Reads a whole file ("-" = stdin) of at most max bytes. Returns 0 or -1 (message printed). */
static int
read_file(const char *cmd, const char *path, size_t max, uint8_t **out, size_t *outlen)
{
	FILE *f;
	uint8_t *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	int ret = -1;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "rb")) == NULL) {
		errx_msg(cmd, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				errx_msg(cmd, "out of memory");
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len > max) {
			errx_msg(cmd, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		errx_msg(cmd, "%s: read error", path);
		goto out;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		errx_msg(cmd, "out of memory");
		goto out;
	}
	buf[len] = '\0';  /* convenience for text files; len excludes it */
	*out = buf;
	*outlen = len;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	if (f != stdin)
		fclose(f);
	return ret;
}

static int
write_file(const char *cmd, const char *path, const uint8_t *data, size_t len)
{
	FILE *f;

	if (strcmp(path, "-") == 0)
		f = stdout;
	else if ((f = fopen(path, "wb")) == NULL) {
		errx_msg(cmd, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((len > 0 && fwrite(data, 1, len, f) != len) || fflush(f) != 0) {
		errx_msg(cmd, "%s: write error", path);
		if (f != stdout)
			fclose(f);
		return -1;
	}
	if (f != stdout && fclose(f) != 0) {
		errx_msg(cmd, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Loads a "key = value" config file into s (only keys not yet set). Relative
 * paths are taken relative to the file's directory. Returns 0 or EXIT_USAGE.
 */
static int
config_load(const char *path, struct settings *s)
{
	uint8_t *buf = NULL;
	size_t len, dirlen = 0;
	char *line, *next, *eq, *k, *v, *p;
	const char *slash;
	char full[4096];
	int lineno = 0, ret = EXIT_USAGE;

	if (read_file(NULL, path, MAX_CONFIG_FILE, &buf, &len) != 0)
		return EXIT_USAGE;
	if (memchr(buf, '\0', len) != NULL) {
		errx_msg(NULL, "%s: not a text file", path);
		goto out;
	}
	if ((slash = strrchr(path, '/')) != NULL)
		dirlen = (size_t)(slash - path) + 1;
	for (line = (char *)buf; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			errx_msg(NULL, "%s:%d: expected \"key = value\"", path, lineno);
			goto out;
		}
		*eq = '\0';
		k = trim(p);
		v = trim(eq + 1);
		if (*v == '\0') {
			errx_msg(NULL, "%s:%d: empty value for '%s'", path, lineno, k);
			goto out;
		}
		if (strcmp(k, "ca") == 0 || strcmp(k, "cert") == 0 || strcmp(k, "key") == 0) {
			if (v[0] != '/' && dirlen > 0) {
				if ((size_t)snprintf(full, sizeof(full), "%.*s%s", (int)dirlen, path,
				        v) >= sizeof(full)) {
					errx_msg(NULL, "%s:%d: path too long", path, lineno);
					goto out;
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
			int t;

			if (parse_timeout(v, &t) != 0) {
				errx_msg(NULL, "%s:%d: timeout_ms must be 1-86400000", path, lineno);
				goto out;
			}
			if (s->timeout_ms == 0)
				s->timeout_ms = t;
		} else {
			errx_msg(NULL, "%s:%d: unknown key '%s'", path, lineno, k);
			goto out;
		}
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
	if (parse_uint(p, 1, 65535, &n) != 0 || strlen(p) >= plen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, plen, "%s", p);
	return 0;
}

/* ---- output helpers ---------------------------------------------------------------- */

/* Prints a server-supplied string with control characters replaced by '?'. */
static void
put_safe(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static void
json_str(const char *s, size_t len)
{
	size_t i;
	unsigned char ch;

	putchar('"');
	for (i = 0; i < len; i++) {
		ch = (unsigned char)s[i];
		switch (ch) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				printf("\\u%04x", ch);
			else
				putchar(ch);
			break;
		}
	}
	putchar('"');
}

static void
json_cstr(const char *s)
{
	json_str(s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* Base64 (RFC 4648, padded) into a new string; exits on allocation failure. */
static char *
b64_encode(const uint8_t *data, size_t len)
{
	char *out;

	if (len > INT_MAX / 2 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
		errx_msg(NULL, "out of memory");
		exit(EXIT_CONN);
	}
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static void
json_b64(const uint8_t *data, size_t len)
{
	char *b = b64_encode(data, len);

	printf("\"%s\"", b);
	free(b);
}

/*
 * Decodes base64 (padded or not, whitespace ignored). Returns 0 and a new
 * buffer, or -1 if malformed.
 */
static int
b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	char *clean = NULL;
	uint8_t *buf = NULL;
	size_t i, n = 0, pad = 0;
	int dl, ret = -1;

	if (inlen > (size_t)INT_MAX / 2 || (clean = malloc(inlen + 4)) == NULL)
		return -1;
	for (i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (isspace(ch))
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(isalnum(ch) || ch == '+' || ch == '/'))
			goto out;
		clean[n++] = (char)ch;
	}
	if (n == 0 || n % 4 == 1 || pad > 2)
		goto out;
	pad = (4 - n % 4) % 4;
	for (i = 0; i < pad; i++)
		clean[n++] = '=';
	if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
		goto out;
	dl = EVP_DecodeBlock(buf, (unsigned char *)clean, (int)n);
	if (dl < 0 || (size_t)dl < pad)
		goto out;
	*outlen = (size_t)dl - pad;
	*out = buf;
	buf = NULL;
	ret = 0;
out:
	free(clean);
	free(buf);
	return ret;
}

/* Decodes exactly 64 hex digits into 32 bytes. Returns 0 or -1. */
static int
hex_digest(const char *s, size_t len, uint8_t out[32])
{
	size_t i;
	int hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const char *const purpose_names[] = {
	"unspecified", "generic", "ota", "checkpoint", "command", "envelope", "audit", "admin",
};

static const char *
purpose_name(int p)
{
	if (p >= 0 && (size_t)p < sizeof(purpose_names) / sizeof(purpose_names[0]))
		return purpose_names[p];
	return "unknown";
}

static const char *
state_name(int s)
{
	switch (s) {
	case BOLTSEAL__V1__KEY_STATE__ENABLED:
		return "enabled";
	case BOLTSEAL__V1__KEY_STATE__DISABLED:
		return "disabled";
	case BOLTSEAL__V1__KEY_STATE__KEY_STATE_UNSPECIFIED:
		return "unspecified";
	default:
		return "unknown";
	}
}

static int
purpose_parse(const char *v)
{
	size_t i;

	for (i = 1; i < sizeof(purpose_names) / sizeof(purpose_names[0]); i++)
		if (strcmp(v, purpose_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
}

static void
json_key(const Boltseal__V1__Key *k)
{
	size_t i;

	if (k == NULL) {
		fputs("null", stdout);
		return;
	}
	fputs("{\"name\":", stdout);
	json_cstr(k->name);
	printf(",\"algorithm\":\"%s\",\"purpose\":\"%s\",\"state\":\"%s\","
	    "\"primary_version\":%u,\"create_time_unix\":%lld,\"versions\":[",
	    bs_alg_name((enum bs_alg)k->algorithm), purpose_name(k->purpose), state_name(k->state),
	    k->primary_version, (long long)k->create_time_unix);
	for (i = 0; i < k->n_versions; i++) {
		const Boltseal__V1__KeyVersion *v = k->versions[i];

		printf("%s{\"version\":%u,\"state\":\"%s\",\"create_time_unix\":%lld}",
		    i ? "," : "", v->version, state_name(v->state), (long long)v->create_time_unix);
	}
	fputs("]}", stdout);
}

static void
human_key(const Boltseal__V1__Key *k)
{
	char tb[32];
	size_t i;

	if (k == NULL) {
		printf("(no key in response)\n");
		return;
	}
	fmt_time(k->create_time_unix, tb, sizeof(tb));
	fputs("name:            ", stdout);
	put_safe(stdout, k->name);
	printf("\nalgorithm:       %s\npurpose:         %s\nstate:           %s\n"
	    "primary version: %u\ncreated:         %s\nversions:\n",
	    bs_alg_name((enum bs_alg)k->algorithm), purpose_name(k->purpose), state_name(k->state),
	    k->primary_version, tb);
	for (i = 0; i < k->n_versions; i++) {
		const Boltseal__V1__KeyVersion *v = k->versions[i];

		fmt_time(v->create_time_unix, tb, sizeof(tb));
		printf("  %-6u %-9s %s\n", v->version, state_name(v->state), tb);
	}
}

/* ---- RPC --------------------------------------------------------------------------- */

static int
ensure_connected(struct ctx *x)
{
	struct bs_client_opts o;
	char err[512];
	int rv;

	if (x->client != NULL)
		return 0;
	memset(&o, 0, sizeof(o));
	o.host = x->host;
	o.port = x->port;
	o.server_name = x->s.server_name;
	o.ca_file = x->s.ca;
	o.cert_file = x->s.cert;
	o.key_file = x->s.key;
	o.timeout_ms = x->s.timeout_ms;
	err[0] = '\0';
	rv = bs_client_connect(&o, &x->client, err, sizeof(err));
	if (rv != 0) {
		errx_msg(x->cmd, "%s", err[0] ? err : "cannot connect");
		return EXIT_CONN;
	}
	return 0;
}

/*
 * Calls method (e.g. "Sign" on KeyService, or a full path starting with '/')
 * with req and unpacks the answer as rdesc. Returns 0 and *resp (free with
 * protobuf_c_message_free_unpacked), or EXIT_CONN / EXIT_STATUS with the
 * error printed.
 */
static int
rpc(struct ctx *x, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp)
{
	struct bs_call_result res;
	char path[128];
	uint8_t *buf = NULL;
	size_t len;
	ProtobufCMessage *m;
	int rv, ret = EXIT_CONN;

	memset(&res, 0, sizeof(res));
	if ((ret = ensure_connected(x)) != 0)
		return ret;
	ret = EXIT_CONN;
	if (method[0] == '/')
		snprintf(path, sizeof(path), "%s", method);
	else
		snprintf(path, sizeof(path), SVC "%s", method);
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		errx_msg(x->cmd, "out of memory");
		goto out;
	}
	protobuf_c_message_pack(req, buf);
	rv = bs_client_unary(x->client, path, buf, len, &res);
	if (rv != 0) {
		errx_msg(x->cmd, "%s", res.grpc_message != NULL ? res.grpc_message :
		    rv == BS_CLIENT_ERR_TIMEOUT ? "timed out" : "connection failed");
		goto out;
	}
	if (res.grpc_status != 0) {
		fprintf(stderr, "%s: %s: %s", progname, x->cmd, grpc_status_name(res.grpc_status));
		if (res.grpc_message != NULL && res.grpc_message[0] != '\0') {
			fputs(": ", stderr);
			put_safe(stderr, res.grpc_message);
		}
		fputc('\n', stderr);
		ret = EXIT_STATUS;
		goto out;
	}
	m = protobuf_c_message_unpack(rdesc, NULL, res.resp_len, res.resp);
	if (m == NULL) {
		errx_msg(x->cmd, "malformed %s from server", rdesc->short_name);
		goto out;
	}
	*resp = m;
	ret = 0;
out:
	free(buf);
	bs_call_result_clear(&res);
	return ret;
}

/* ---- argument parsing ------------------------------------------------------------ */

enum { OPT_FLAG, OPT_VALUE, OPT_MULTI };

struct opt {
	const char *name;   /* without "--" */
	int kind;
};

#define MAX_OPTS 12
#define MAX_POS 2

struct args {
	const char *pos[MAX_POS];
	int npos;
	const struct opt *spec;
	const char *val[MAX_OPTS];
	const char **multi;     /* values of the OPT_MULTI option */
	size_t nmulti;
	int json;               /* the global --json, also accepted after the command */
};

struct command {
	const char *name;
	int (*run)(struct ctx *, struct args *);
	const struct opt *spec;
	int minpos;
	int maxpos;
	const char *usage;
};

static const char *
arg(const struct args *a, const char *name)
{
	int i;

	for (i = 0; a->spec[i].name != NULL; i++)
		if (strcmp(a->spec[i].name, name) == 0)
			return a->val[i];
	return NULL;
}

static int
print_cmd_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: %s [global options] %s\n", progname, c->usage);
	return 0;
}

/* Returns 0, EXIT_USAGE (message printed) or -1 for --help. */
static int
args_parse(const struct command *c, int argc, char **argv, struct args *a)
{
	const char *name, *val, *eq;
	size_t nlen;
	int i, j, only_pos = 0;

	memset(a, 0, sizeof(*a));
	a->spec = c->spec;
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (only_pos || s[0] != '-' || strcmp(s, "-") == 0) {
			if (a->npos >= c->maxpos)
				return usage_error(c->name, "unexpected argument '%s'", s);
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
			return -1;
		if (strcmp(s, "--json") == 0) {
			a->json = 1;
			continue;
		}
		if (s[1] != '-')
			return usage_error(c->name, "unknown option '%s'", s);
		name = s + 2;
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		for (j = 0; c->spec[j].name != NULL; j++)
			if (strlen(c->spec[j].name) == nlen && memcmp(c->spec[j].name, name, nlen) == 0)
				break;
		if (c->spec[j].name == NULL)
			return usage_error(c->name, "unknown option '%s'", s);
		if (c->spec[j].kind == OPT_FLAG) {
			if (eq != NULL)
				return usage_error(c->name, "option '--%s' takes no value",
				    c->spec[j].name);
			val = "1";
		} else if (eq != NULL) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return usage_error(c->name, "option '--%s' needs a value",
				    c->spec[j].name);
			val = argv[++i];
		}
		if (c->spec[j].kind == OPT_MULTI) {
			const char **nm = realloc(a->multi, (a->nmulti + 1) * sizeof(*nm));

			if (nm == NULL) {
				errx_msg(c->name, "out of memory");
				return EXIT_CONN;
			}
			a->multi = nm;
			a->multi[a->nmulti++] = val;
		} else if (a->val[j] != NULL) {
			return usage_error(c->name, "option '--%s' given twice", c->spec[j].name);
		}
		a->val[j] = val;
	}
	if (a->npos < c->minpos)
		return usage_error(c->name, "missing argument");
	return 0;
}

/*
 * Reads the input of sign/verify: exactly one of --message, --message-file,
 * --digest. On success *is_digest says which oneof field to set; data is
 * malloc'd.
 */
static int
input_get(struct ctx *x, const struct args *a, uint8_t **data, size_t *len, int *is_digest)
{
	const char *m = arg(a, "message"), *mf = arg(a, "message-file"), *d = arg(a, "digest");
	int n = (m != NULL) + (mf != NULL) + (d != NULL);
	uint8_t *buf;

	if (n != 1)
		return usage_error(x->cmd, "give exactly one of --message, --message-file, --digest");
	*is_digest = 0;
	if (m != NULL) {
		*len = strlen(m);
		if ((buf = malloc(*len + 1)) == NULL)
			return EXIT_CONN;
		memcpy(buf, m, *len + 1);
		*data = buf;
		return 0;
	}
	if (mf != NULL)
		return read_file(x->cmd, mf, MAX_INPUT_FILE, data, len) == 0 ? 0 : EXIT_USAGE;
	if ((buf = malloc(32)) == NULL)
		return EXIT_CONN;
	if (hex_digest(d, strlen(d), buf) != 0) {
		free(buf);
		return usage_error(x->cmd, "--digest must be 64 hex digits (a SHA-256 digest)");
	}
	*data = buf;
	*len = 32;
	*is_digest = 1;
	return 0;
}

static int
version_arg(struct ctx *x, const char *v, uint32_t *out)
{
	unsigned long n;

	if (v == NULL) {
		*out = 0;
		return 0;
	}
	if (parse_uint(v, 1, UINT32_MAX, &n) != 0)
		return usage_error(x->cmd, "--version must be a positive integer");
	*out = (uint32_t)n;
	return 0;
}

/* ---- subcommands ------------------------------------------------------------------ */

/* Prints a key as {"key":...} (--json) or in human form. */
static void
print_key(const struct ctx *x, const Boltseal__V1__Key *k)
{
	if (x->json) {
		fputs("{\"key\":", stdout);
		json_key(k);
		fputs("}\n", stdout);
	} else {
		human_key(k);
	}
}

static int
cmd_create_key(struct ctx *x, struct args *a)
{
	Boltseal__V1__CreateKeyRequest req = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	Boltseal__V1__CreateKeyResponse *resp = NULL;
	const char *alg = arg(a, "alg"), *purpose = arg(a, "purpose");
	int al, pu, ret;

	if (alg == NULL)
		return usage_error(x->cmd, "--alg is required "
		    "(ecdsa-p256-sha256, ed25519, rsa-3072-pss-sha256)");
	if ((al = (int)bs_alg_from_name(alg)) == BS_ALG_NONE)
		return usage_error(x->cmd, "unknown algorithm '%s' "
		    "(ecdsa-p256-sha256, ed25519, rsa-3072-pss-sha256)", alg);
	pu = purpose != NULL ? purpose_parse(purpose) : BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	if (pu < 0)
		return usage_error(x->cmd, "unknown purpose '%s' (generic, ota, checkpoint, "
		    "command, envelope, audit, admin)", purpose);
	req.name = (char *)a->pos[0];
	req.algorithm = (Boltseal__V1__Algorithm)al;
	req.purpose = (Boltseal__V1__KeyPurpose)pu;
	ret = rpc(x, "CreateKey", &req.base, &boltseal__v1__create_key_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	print_key(x, resp->key);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_get_key(struct ctx *x, struct args *a)
{
	Boltseal__V1__GetKeyRequest req = BOLTSEAL__V1__GET_KEY_REQUEST__INIT;
	Boltseal__V1__GetKeyResponse *resp = NULL;
	int ret;

	req.name = (char *)a->pos[0];
	ret = rpc(x, "GetKey", &req.base, &boltseal__v1__get_key_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	print_key(x, resp->key);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_rotate_key(struct ctx *x, struct args *a)
{
	Boltseal__V1__RotateKeyRequest req = BOLTSEAL__V1__ROTATE_KEY_REQUEST__INIT;
	Boltseal__V1__RotateKeyResponse *resp = NULL;
	int ret;

	req.name = (char *)a->pos[0];
	ret = rpc(x, "RotateKey", &req.base, &boltseal__v1__rotate_key_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (x->json) {
		fputs("{\"key\":", stdout);
		json_key(resp->key);
		printf(",\"new_version\":%u}\n", resp->new_version);
	} else {
		printf("new version:     %u\n", resp->new_version);
		human_key(resp->key);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_list_keys(struct ctx *x, struct args *a)
{
	Boltseal__V1__ListKeysRequest req = BOLTSEAL__V1__LIST_KEYS_REQUEST__INIT;
	Boltseal__V1__ListKeysResponse **pages = NULL, **np, *resp;
	const char *ps = arg(a, "page-size"), *pt = arg(a, "page-token");
	int all = arg(a, "all") != NULL, ret = 0, first = 1;
	size_t npages = 0, i, j;
	unsigned long n;

	if (ps != NULL) {
		if (parse_uint(ps, 1, 1000, &n) != 0)
			return usage_error(x->cmd, "--page-size must be 1-1000");
		req.page_size = (uint32_t)n;
	}
	req.page_token = (char *)(pt != NULL ? pt : "");
	for (;;) {
		resp = NULL;
		ret = rpc(x, "ListKeys", &req.base, &boltseal__v1__list_keys_response__descriptor,
		    (ProtobufCMessage **)&resp);
		if (ret != 0)
			goto out;
		if ((np = realloc(pages, (npages + 1) * sizeof(*np))) == NULL) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			errx_msg(x->cmd, "out of memory");
			ret = EXIT_CONN;
			goto out;
		}
		pages = np;
		pages[npages++] = resp;
		if (!all || resp->next_page_token[0] == '\0')
			break;
		if (strcmp(resp->next_page_token, req.page_token) == 0 ||
		    npages >= MAX_LIST_PAGES) {
			errx_msg(x->cmd, "server keeps returning pages; giving up");
			ret = EXIT_CONN;
			goto out;
		}
		req.page_token = resp->next_page_token;
	}
	resp = pages[npages - 1];
	if (x->json) {
		fputs("{\"keys\":[", stdout);
		for (i = 0; i < npages; i++)
			for (j = 0; j < pages[i]->n_keys; j++) {
				if (!first)
					putchar(',');
				first = 0;
				json_key(pages[i]->keys[j]);
			}
		fputs("],\"next_page_token\":", stdout);
		json_cstr(resp->next_page_token);
		fputs("}\n", stdout);
	} else {
		printf("%-32s %-20s %-10s %-8s %s\n", "NAME", "ALGORITHM", "PURPOSE", "STATE",
		    "VERSION");
		for (i = 0; i < npages; i++)
			for (j = 0; j < pages[i]->n_keys; j++) {
				const Boltseal__V1__Key *k = pages[i]->keys[j];
				size_t w = strlen(k->name);

				put_safe(stdout, k->name);
				printf("%*s %-20s %-10s %-8s %u\n", w < 32 ? (int)(32 - w) : 0, "",
				    bs_alg_name((enum bs_alg)k->algorithm), purpose_name(k->purpose),
				    state_name(k->state), k->primary_version);
			}
		if (resp->next_page_token[0] != '\0') {
			fputs("next page token: ", stdout);
			put_safe(stdout, resp->next_page_token);
			putchar('\n');
		}
	}
out:
	for (i = 0; i < npages; i++)
		protobuf_c_message_free_unpacked(&pages[i]->base, NULL);
	free(pages);
	return ret;
}

static int
cmd_get_public_key(struct ctx *x, struct args *a)
{
	Boltseal__V1__GetPublicKeyRequest req = BOLTSEAL__V1__GET_PUBLIC_KEY_REQUEST__INIT;
	Boltseal__V1__GetPublicKeyResponse *resp = NULL;
	const char *der_out = arg(a, "der-out");
	size_t pl;
	int ret;

	if ((ret = version_arg(x, arg(a, "version"), &req.version)) != 0)
		return ret;
	req.name = (char *)a->pos[0];
	ret = rpc(x, "GetPublicKey", &req.base,
	    &boltseal__v1__get_public_key_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (der_out != NULL && write_file(x->cmd, der_out, resp->der.data, resp->der.len) != 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (x->json) {
		fputs("{\"name\":", stdout);
		json_cstr(resp->name);
		printf(",\"version\":%u,\"algorithm\":\"%s\",\"pem\":", resp->version,
		    bs_alg_name((enum bs_alg)resp->algorithm));
		json_cstr(resp->pem);
		fputs(",\"der\":", stdout);
		json_b64(resp->der.data, resp->der.len);
		fputs("}\n", stdout);
	} else if (der_out == NULL || strcmp(der_out, "-") != 0) {
		pl = strlen(resp->pem);
		fwrite(resp->pem, 1, pl, stdout);
		if (pl > 0 && resp->pem[pl - 1] != '\n')
			putchar('\n');
	}
out:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_sign(struct ctx *x, struct args *a)
{
	Boltseal__V1__SignRequest req;
	Boltseal__V1__SignResponse *resp = NULL;
	const char *out = arg(a, "out");
	uint8_t *data = NULL;
	size_t len = 0;
	char *b64;
	int is_digest, ret;

	boltseal__v1__sign_request__init(&req);
	if ((ret = input_get(x, a, &data, &len, &is_digest)) != 0)
		return ret;
	req.key_name = (char *)a->pos[0];
	if (is_digest) {
		req.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
		req.digest.data = data;
		req.digest.len = len;
	} else {
		req.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
		req.message.data = data;
		req.message.len = len;
	}
	if (arg(a, "raw") != NULL)
		req.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__RAW;
	ret = rpc(x, "Sign", &req.base, &boltseal__v1__sign_response__descriptor,
	    (ProtobufCMessage **)&resp);
	free(data);
	if (ret != 0)
		return ret;
	if (out != NULL &&
	    write_file(x->cmd, out, resp->signature.data, resp->signature.len) != 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	if (x->json) {
		fputs("{\"key\":", stdout);
		json_cstr(resp->key_name);
		printf(",\"key_version\":%u,\"algorithm\":\"%s\",\"signature\":", resp->key_version,
		    bs_alg_name((enum bs_alg)resp->algorithm));
		json_b64(resp->signature.data, resp->signature.len);
		fputs("}\n", stdout);
	} else if (out == NULL || strcmp(out, "-") != 0) {
		b64 = b64_encode(resp->signature.data, resp->signature.len);
		printf("%s\n", b64);
		free(b64);
		fputs("key: ", stdout);
		put_safe(stdout, resp->key_name);
		printf("\nkey_version: %u\nalgorithm: %s\n", resp->key_version,
		    bs_alg_name((enum bs_alg)resp->algorithm));
	}
done:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* Reads a SubjectPublicKeyInfo from a PEM or DER file into DER bytes. */
static int
pubkey_load(struct ctx *x, const char *path, uint8_t **der, size_t *derlen)
{
	uint8_t *buf = NULL, *out = NULL, *p;
	const uint8_t *cp;
	size_t len;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int n, ret = EXIT_USAGE;

	if (read_file(x->cmd, path, MAX_INPUT_FILE, &buf, &len) != 0)
		return EXIT_USAGE;
	if (len > INT_MAX)
		goto bad;
	if (len >= 10 && memmem(buf, len, "-----BEGIN", 10) != NULL) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
			goto bad;
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	} else {
		cp = buf;
		pk = d2i_PUBKEY(NULL, &cp, (long)len);
		if (pk != NULL && cp != buf + len) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	if (pk == NULL)
		goto bad;
	if ((n = i2d_PUBKEY(pk, NULL)) <= 0 || (out = malloc((size_t)n)) == NULL)
		goto bad;
	p = out;
	if (i2d_PUBKEY(pk, &p) != n)
		goto bad;
	*der = out;
	*derlen = (size_t)n;
	out = NULL;
	ret = 0;
	goto done;
bad:
	errx_msg(x->cmd, "%s: not a PEM or DER public key (SubjectPublicKeyInfo)", path);
done:
	free(out);
	free(buf);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return ret;
}

static int
cmd_verify(struct ctx *x, struct args *a)
{
	Boltseal__V1__VerifyRequest req;
	Boltseal__V1__VerifyResponse *resp = NULL;
	const char *pkf = arg(a, "public-key-file"), *sig = arg(a, "signature");
	const char *sigf = arg(a, "signature-file");
	uint8_t *data = NULL, *sigbuf = NULL, *der = NULL;
	size_t len = 0, siglen = 0, derlen = 0;
	int is_digest, ret;

	boltseal__v1__verify_request__init(&req);
	if ((a->npos == 1) == (pkf != NULL))
		return usage_error(x->cmd, "give a key NAME or --public-key-file, not both");
	if ((sig != NULL) == (sigf != NULL))
		return usage_error(x->cmd, "give exactly one of --signature, --signature-file");
	if ((ret = version_arg(x, arg(a, "version"), &req.key_version)) != 0)
		return ret;
	if (pkf != NULL && req.key_version != 0)
		return usage_error(x->cmd, "--version applies to catalog keys only");
	if (sig != NULL) {
		if (b64_decode(sig, strlen(sig), &sigbuf, &siglen) != 0)
			return usage_error(x->cmd, "--signature is not valid base64");
	} else if (read_file(x->cmd, sigf, MAX_INPUT_FILE, &sigbuf, &siglen) != 0) {
		return EXIT_USAGE;
	}
	if ((ret = input_get(x, a, &data, &len, &is_digest)) != 0)
		goto out;
	if (pkf != NULL) {
		if ((ret = pubkey_load(x, pkf, &der, &derlen)) != 0)
			goto out;
		req.key_case = BOLTSEAL__V1__VERIFY_REQUEST__KEY_PUBLIC_KEY_DER;
		req.public_key_der.data = der;
		req.public_key_der.len = derlen;
	} else {
		req.key_case = BOLTSEAL__V1__VERIFY_REQUEST__KEY_KEY_NAME;
		req.key_name = (char *)a->pos[0];
	}
	if (is_digest) {
		req.input_case = BOLTSEAL__V1__VERIFY_REQUEST__INPUT_DIGEST;
		req.digest.data = data;
		req.digest.len = len;
	} else {
		req.input_case = BOLTSEAL__V1__VERIFY_REQUEST__INPUT_MESSAGE;
		req.message.data = data;
		req.message.len = len;
	}
	req.signature.data = sigbuf;
	req.signature.len = siglen;
	if (arg(a, "raw") != NULL)
		req.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__RAW;
	ret = rpc(x, "Verify", &req.base, &boltseal__v1__verify_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (x->json) {
		printf("{\"valid\":%s,\"key_version\":%u}\n", resp->valid ? "true" : "false",
		    resp->key_version);
	} else if (resp->valid) {
		if (resp->key_version != 0)
			printf("valid (key version %u)\n", resp->key_version);
		else
			printf("valid\n");
	} else {
		printf("invalid\n");
	}
	ret = resp->valid ? EXIT_OK : EXIT_NEGATIVE;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(data);
	free(sigbuf);
	free(der);
	return ret;
}

static int
cmd_sign_batch(struct ctx *x, struct args *a)
{
	Boltseal__V1__SignBatchRequest req = BOLTSEAL__V1__SIGN_BATCH_REQUEST__INIT;
	Boltseal__V1__SignBatchResponse *resp = NULL;
	Boltseal__V1__SignBatchItem *items = NULL, **itemp = NULL;
	const char *df = arg(a, "digests-file");
	uint8_t *dbuf = NULL, *digests = NULL, **msgs = NULL;
	size_t dlen, n = 0, i, cap;
	char *line, *next, *p, *b64;
	int ret = EXIT_USAGE, failed = 0, lineno = 0;

	if ((df != NULL) == (a->nmulti > 0))
		return usage_error(x->cmd, "give --digests-file or one or more --message-file");
	if (df != NULL) {
		if (read_file(x->cmd, df, MAX_INPUT_FILE, &dbuf, &dlen) != 0)
			return EXIT_USAGE;
		if (memchr(dbuf, '\0', dlen) != NULL) {
			errx_msg(x->cmd, "%s: not a text file", df);
			goto out;
		}
		cap = dlen / 64 + 1;
		if ((digests = malloc(cap * 32)) == NULL ||
		    (items = calloc(cap, sizeof(*items))) == NULL ||
		    (itemp = calloc(cap, sizeof(*itemp))) == NULL) {
			errx_msg(x->cmd, "out of memory");
			ret = EXIT_CONN;
			goto out;
		}
		for (line = (char *)dbuf; line != NULL; line = next) {
			lineno++;
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			p = trim(line);
			if (*p == '\0' || *p == '#')
				continue;
			if (n >= cap || hex_digest(p, strlen(p), digests + 32 * n) != 0) {
				errx_msg(x->cmd, "%s:%d: not a 64-hex-digit SHA-256 digest", df,
				    lineno);
				goto out;
			}
			boltseal__v1__sign_batch_item__init(&items[n]);
			items[n].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
			items[n].digest.data = digests + 32 * n;
			items[n].digest.len = 32;
			itemp[n] = &items[n];
			n++;
		}
		if (n == 0) {
			errx_msg(x->cmd, "%s: no digests", df);
			goto out;
		}
	} else {
		n = a->nmulti;
		if ((msgs = calloc(n, sizeof(*msgs))) == NULL ||
		    (items = calloc(n, sizeof(*items))) == NULL ||
		    (itemp = calloc(n, sizeof(*itemp))) == NULL) {
			errx_msg(x->cmd, "out of memory");
			ret = EXIT_CONN;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (read_file(x->cmd, a->multi[i], MAX_INPUT_FILE, &msgs[i], &dlen) != 0)
				goto out;
			boltseal__v1__sign_batch_item__init(&items[i]);
			items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_MESSAGE;
			items[i].message.data = msgs[i];
			items[i].message.len = dlen;
			itemp[i] = &items[i];
		}
	}
	req.key_name = (char *)a->pos[0];
	req.n_items = n;
	req.items = itemp;
	if (arg(a, "raw") != NULL)
		req.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__RAW;
	ret = rpc(x, "SignBatch", &req.base, &boltseal__v1__sign_batch_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (resp->n_results != n) {
		errx_msg(x->cmd, "server returned %zu results for %zu items", resp->n_results, n);
		ret = EXIT_CONN;
		goto out;
	}
	if (x->json) {
		fputs("{\"key\":", stdout);
		json_cstr(resp->key_name);
		printf(",\"key_version\":%u,\"algorithm\":\"%s\",\"results\":[", resp->key_version,
		    bs_alg_name((enum bs_alg)resp->algorithm));
	} else {
		fputs("key: ", stdout);
		put_safe(stdout, resp->key_name);
		printf("\nkey_version: %u\nalgorithm: %s\n", resp->key_version,
		    bs_alg_name((enum bs_alg)resp->algorithm));
	}
	for (i = 0; i < n; i++) {
		const Boltseal__V1__SignBatchResult *r = resp->results[i];

		if (r->status_code != 0) {
			failed++;
			fprintf(stderr, "%s: %s: item %zu: %s", progname, x->cmd, i,
			    grpc_status_name((int)r->status_code));
			if (r->error_message[0] != '\0') {
				fputs(": ", stderr);
				put_safe(stderr, r->error_message);
			}
			fputc('\n', stderr);
		}
		if (x->json) {
			printf("%s{\"index\":%zu,\"status\":\"%s\",\"status_code\":%u,\"signature\":",
			    i ? "," : "", i, grpc_status_name((int)r->status_code), r->status_code);
			json_b64(r->signature.data, r->signature.len);
			fputs(",\"error_message\":", stdout);
			json_cstr(r->error_message);
			putchar('}');
		} else if (r->status_code == 0) {
			b64 = b64_encode(r->signature.data, r->signature.len);
			printf("%zu OK %s\n", i, b64);
			free(b64);
		} else {
			printf("%zu %s ", i, grpc_status_name((int)r->status_code));
			put_safe(stdout, r->error_message);
			putchar('\n');
		}
	}
	if (x->json)
		fputs("]}\n", stdout);
	ret = failed ? EXIT_STATUS : EXIT_OK;
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (msgs != NULL)
		for (i = 0; i < a->nmulti; i++)
			free(msgs[i]);
	free(msgs);
	free(items);
	free(itemp);
	free(digests);
	free(dbuf);
	return ret;
}

static int
cmd_health(struct ctx *x, struct args *a)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	static const char *const names[] = { "UNKNOWN", "SERVING", "NOT_SERVING",
		"SERVICE_UNKNOWN" };
	const char *st;
	int ret;

	req.service = (char *)(a->npos > 0 ? a->pos[0] : "");
	ret = rpc(x, "/grpc.health.v1.Health/Check", &req.base,
	    &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	st = resp->status >= 0 && (size_t)resp->status < sizeof(names) / sizeof(names[0]) ?
	    names[resp->status] : "UNKNOWN";
	if (x->json) {
		fputs("{\"service\":", stdout);
		json_cstr(req.service);
		printf(",\"status\":\"%s\"}\n", st);
	} else {
		printf("%s\n", st);
	}
	ret = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ?
	    EXIT_OK : EXIT_NEGATIVE;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/*
 * `audit verify`: verifies AUDITDIR/audit.jsonl and AUDITDIR/checkpoints
 * offline against the verifier key (--vkey, --vkey-file, or AUDITDIR/vkey)
 * with audit_verify_dir. Exit 0 valid, 1 verification failed (the first bad
 * record or checkpoint is named), 2 usage error or unreadable input.
 */
static int
cmd_audit(struct ctx *x, struct args *a)
{
	const char *dir = arg(a, "dir"), *vk = arg(a, "vkey"), *vkf = arg(a, "vkey-file");
	struct audit_verify_report rep;
	struct note_verifier v;
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[4096], where[64];
	int ret;

	if (strcmp(a->pos[0], "verify") != 0)
		return usage_error(x->cmd, "unknown audit command '%s' (expected 'verify')",
		    a->pos[0]);
	x->cmd = "audit verify";
	if (dir == NULL || dir[0] == '\0')
		return usage_error(x->cmd, "--dir AUDITDIR is required");
	if (vk != NULL && vkf != NULL)
		return usage_error(x->cmd, "give at most one of --vkey, --vkey-file");
	if (vk == NULL) {
		if (vkf == NULL) {
			if ((size_t)snprintf(path, sizeof(path), "%s/vkey", dir) >= sizeof(path))
				return usage_error(x->cmd, "--dir: path too long");
			vkf = path;
		}
		if (read_file(x->cmd, vkf, NOTE_VKEY_PARSE_MAX + 2, &buf, &len) != 0)
			return EXIT_USAGE;
		/* the daemon writes the vkey followed by one newline */
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		if (memchr(buf, '\0', len) != NULL) {
			ret = usage_error(x->cmd, "%s: not a verifier key", vkf);
			goto out;
		}
		vk = (const char *)buf;
	}
	if (note_vkey_parse(vk, &v) != 0) {
		ret = usage_error(x->cmd, "%s is not a valid Ed25519 verifier key "
		    "(NAME+HASH+BASE64)", vkf != NULL ? vkf : "--vkey");
		goto out;
	}
	if (audit_verify_dir(dir, &v, &rep) != 0) {
		errx_msg(x->cmd, "cannot verify: %s", rep.error);
		ret = EXIT_USAGE;
		goto out;
	}
	where[0] = '\0';
	if (!rep.ok && rep.first_bad_record >= 0)
		snprintf(where, sizeof(where), "record %lld", (long long)rep.first_bad_record);
	else if (!rep.ok)
		snprintf(where, sizeof(where), "checkpoint %llu",
		    (unsigned long long)rep.bad_checkpoint);
	if (x->json) {
		/* exactly these five members (docs/cli.md); the location is in "error" */
		printf("{\"ok\":%s,\"records\":%llu,\"checkpoints\":%zu,\"first_bad_record\":",
		    rep.ok ? "true" : "false", (unsigned long long)rep.records, rep.checkpoints);
		if (rep.first_bad_record >= 0)
			printf("%lld", (long long)rep.first_bad_record);
		else
			fputs("null", stdout);
		fputs(",\"error\":", stdout);
		if (rep.ok) {
			fputs("null", stdout);
		} else {
			char msg[sizeof(where) + sizeof(rep.error) + 2];

			snprintf(msg, sizeof(msg), "%s: %s", where, rep.error);
			json_cstr(msg);
		}
		fputs("}\n", stdout);
	} else if (rep.ok) {
		printf("audit verify: OK: %llu records, %zu checkpoints, latest checkpoint covers "
		    "%llu\n", (unsigned long long)rep.records, rep.checkpoints,
		    (unsigned long long)rep.latest_size);
		if (rep.latest_size < rep.records)
			fprintf(stderr, "%s: %s: note: records %llu to %llu are not covered by a "
			    "checkpoint yet; only the hash chain protects them\n", progname, x->cmd,
			    (unsigned long long)rep.latest_size,
			    (unsigned long long)rep.records - 1);
	} else {
		printf("audit verify: FAILED at %s: ", where);
		put_safe(stdout, rep.error);
		putchar('\n');
	}
	ret = rep.ok ? EXIT_OK : EXIT_NEGATIVE;
out:
	free(buf);
	return ret;
}

static const struct opt no_opts[] = { { NULL, 0 } };
static const struct opt create_opts[] = {
	{ "alg", OPT_VALUE }, { "purpose", OPT_VALUE }, { NULL, 0 } };
static const struct opt list_opts[] = {
	{ "page-size", OPT_VALUE }, { "page-token", OPT_VALUE }, { "all", OPT_FLAG }, { NULL, 0 } };
static const struct opt pub_opts[] = {
	{ "version", OPT_VALUE }, { "der-out", OPT_VALUE }, { NULL, 0 } };
static const struct opt sign_opts[] = {
	{ "message", OPT_VALUE }, { "message-file", OPT_VALUE }, { "digest", OPT_VALUE },
	{ "raw", OPT_FLAG }, { "out", OPT_VALUE }, { NULL, 0 } };
static const struct opt verify_opts[] = {
	{ "message", OPT_VALUE }, { "message-file", OPT_VALUE }, { "digest", OPT_VALUE },
	{ "raw", OPT_FLAG }, { "signature", OPT_VALUE }, { "signature-file", OPT_VALUE },
	{ "public-key-file", OPT_VALUE }, { "version", OPT_VALUE }, { NULL, 0 } };
static const struct opt audit_opts[] = {
	{ "dir", OPT_VALUE }, { "vkey", OPT_VALUE }, { "vkey-file", OPT_VALUE }, { NULL, 0 } };
static const struct opt batch_opts[] = {
	{ "digests-file", OPT_VALUE }, { "message-file", OPT_MULTI }, { "raw", OPT_FLAG },
	{ NULL, 0 } };

static const struct command commands[] = {
	{ "create-key", cmd_create_key, create_opts, 1, 1,
	  "create-key NAME --alg ecdsa-p256-sha256|ed25519|rsa-3072-pss-sha256\n"
	  "       [--purpose generic|ota|checkpoint|command|envelope|audit|admin]" },
	{ "get-key", cmd_get_key, no_opts, 1, 1, "get-key NAME" },
	{ "list-keys", cmd_list_keys, list_opts, 0, 0,
	  "list-keys [--page-size N] [--page-token T] [--all]" },
	{ "rotate-key", cmd_rotate_key, no_opts, 1, 1, "rotate-key NAME" },
	{ "get-public-key", cmd_get_public_key, pub_opts, 1, 1,
	  "get-public-key NAME [--version N] [--der-out FILE]" },
	{ "sign", cmd_sign, sign_opts, 1, 1,
	  "sign NAME (--message STR | --message-file FILE | --digest HEX64) [--raw] "
	  "[--out FILE]" },
	{ "verify", cmd_verify, verify_opts, 0, 1,
	  "verify (NAME [--version N] | --public-key-file FILE)\n"
	  "       (--message STR | --message-file FILE | --digest HEX64)\n"
	  "       (--signature B64 | --signature-file FILE) [--raw]" },
	{ "sign-batch", cmd_sign_batch, batch_opts, 1, 1,
	  "sign-batch NAME (--digests-file FILE | --message-file FILE...) [--raw]" },
	{ "health", cmd_health, no_opts, 0, 1, "health [SERVICE]" },
	{ "audit", cmd_audit, audit_opts, 1, 1,
	  "audit verify --dir AUDITDIR [--vkey VKEY | --vkey-file FILE]\n"
	  "       (offline; default key file AUDITDIR/vkey)" },
	{ NULL, NULL, NULL, 0, 0, NULL },
};

static void
usage(FILE *f)
{
	const struct command *c;

	fprintf(f,
	    "usage: %s [global options] COMMAND [ARGS]\n"
	    "\n"
	    "Global options (before COMMAND):\n"
	    "  --server HOST:PORT   server address (env BOLTSEAL_SERVER; default %s)\n"
	    "  --ca FILE            CA certificate(s) the server must chain to (env BOLTSEAL_CA)\n"
	    "  --cert FILE          client certificate, PEM (env BOLTSEAL_CERT)\n"
	    "  --key FILE           client private key, PEM (env BOLTSEAL_KEY)\n"
	    "  --server-name NAME   name to verify in the server certificate (default: host)\n"
	    "  --config FILE        \"key = value\" settings file (env BOLTSEAL_CONFIG)\n"
	    "  --timeout MS         per-call deadline in milliseconds (default 30000)\n"
	    "  --json               print one JSON object instead of text\n"
	    "  --help, --version\n"
	    "\n"
	    "Commands:\n", progname, DEFAULT_SERVER);
	for (c = commands; c->name != NULL; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f,
	    "\nExit status: 0 ok, 1 signature invalid / not serving / audit verify failed,\n"
	    "2 usage error or unreadable input,\n"
	    "3 connection, TLS or protocol error, 4 the server returned an error status.\n"
	    "See docs/cli.md.\n");
}

/* Parses a global option with a value; returns 1 if consumed, 0 if not this option. */
static int
global_value(const char *want, int argc, char **argv, int *i, const char **out, int *err)
{
	const char *s = argv[*i];
	size_t wl = strlen(want);

	if (strncmp(s, want, wl) != 0)
		return 0;
	if (s[wl] == '=') {
		*out = s + wl + 1;
		return 1;
	}
	if (s[wl] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		usage_error(NULL, "option '%s' needs a value", want);
		*err = 1;
		return 1;
	}
	*out = argv[++*i];
	return 1;
}

int
main(int argc, char **argv)
{
	struct ctx x;
	struct settings flags;
	const struct command *c;
	struct args a;
	const char *cfg = NULL, *tmo = NULL, *v;
	int i, err = 0, ret;

	memset(&x, 0, sizeof(x));
	memset(&flags, 0, sizeof(flags));
	memset(&a, 0, sizeof(a));
	signal(SIGPIPE, SIG_IGN);

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *s = argv[i];

		v = NULL;
		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		}
		if (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0) {
			printf("boltseal %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		}
		if (strcmp(s, "--json") == 0) {
			x.json = 1;
			continue;
		}
		if (global_value("--server-name", argc, argv, &i, &v, &err)) {
			if (!err)
				set_str(&flags.server_name, v);
		} else if (global_value("--server", argc, argv, &i, &v, &err)) {
			if (!err)
				set_str(&flags.server, v);
		} else if (global_value("--ca", argc, argv, &i, &v, &err)) {
			if (!err)
				set_str(&flags.ca, v);
		} else if (global_value("--cert", argc, argv, &i, &v, &err)) {
			if (!err)
				set_str(&flags.cert, v);
		} else if (global_value("--key", argc, argv, &i, &v, &err)) {
			if (!err)
				set_str(&flags.key, v);
		} else if (global_value("--config", argc, argv, &i, &v, &err)) {
			cfg = v;
		} else if (global_value("--timeout", argc, argv, &i, &v, &err)) {
			tmo = v;
		} else {
			ret = usage_error(NULL, "unknown option '%s'", s);
			goto out;
		}
		if (err) {
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (i >= argc) {
		usage(stderr);
		ret = EXIT_USAGE;
		goto out;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		ret = EXIT_OK;
		goto out;
	}
	for (c = commands; c->name != NULL; c++)
		if (strcmp(c->name, argv[i]) == 0)
			break;
	if (c->name == NULL) {
		ret = usage_error(NULL, "unknown command '%s'", argv[i]);
		goto out;
	}
	x.cmd = c->name;
	ret = args_parse(c, argc - i - 1, argv + i + 1, &a);
	if (ret < 0) {
		print_cmd_usage(stdout, c);
		ret = EXIT_OK;
		goto out;
	}
	if (ret != 0)
		goto out;
	if (a.json)
		x.json = 1;
	if (c->run == cmd_audit)
		goto run;       /* offline: no connection settings */

	/* settings: flags, then environment, then config file, then defaults */
	x.s = flags;
	memset(&flags, 0, sizeof(flags));
	if (tmo != NULL && parse_timeout(tmo, &x.s.timeout_ms) != 0) {
		ret = usage_error(NULL, "--timeout must be 1-86400000 (milliseconds)");
		goto out;
	}
	if (x.s.server == NULL && (v = getenv("BOLTSEAL_SERVER")) != NULL && *v != '\0')
		set_str(&x.s.server, v);
	if (x.s.ca == NULL && (v = getenv("BOLTSEAL_CA")) != NULL && *v != '\0')
		set_str(&x.s.ca, v);
	if (x.s.cert == NULL && (v = getenv("BOLTSEAL_CERT")) != NULL && *v != '\0')
		set_str(&x.s.cert, v);
	if (x.s.key == NULL && (v = getenv("BOLTSEAL_KEY")) != NULL && *v != '\0')
		set_str(&x.s.key, v);
	if (cfg == NULL && (v = getenv("BOLTSEAL_CONFIG")) != NULL && *v != '\0')
		cfg = v;
	if (cfg != NULL && (ret = config_load(cfg, &x.s)) != 0)
		goto out;
	if (x.s.server == NULL)
		set_str(&x.s.server, DEFAULT_SERVER);
	if (split_server(x.s.server, x.host, sizeof(x.host), x.port, sizeof(x.port)) != 0) {
		ret = usage_error(NULL, "bad server address '%s' (HOST:PORT or [IPV6]:PORT)",
		    x.s.server);
		goto out;
	}
	if (x.s.key != NULL && x.s.cert == NULL) {
		ret = usage_error(NULL, "a client key was given without a client certificate");
		goto out;
	}
run:
	ret = c->run(&x, &a);
	if (fflush(stdout) != 0 && ret == EXIT_OK) {
		errx_msg(x.cmd, "write error on standard output");
		ret = EXIT_CONN;
	}
out:
	bs_client_free(x.client);
	free(a.multi);
	settings_free(&x.s);
	settings_free(&flags);
	return ret;
}
