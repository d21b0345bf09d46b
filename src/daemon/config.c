/*
 * config.c - reads boltsealed's configuration file and the token PIN.
 *
 * The file is a list of "key = value" lines. Blank lines and lines whose
 * first non-blank character is '#' are ignored; a '#' preceded by a blank
 * starts a trailing comment. Every problem is collected (not just the
 * first) as "FILE:LINE: message", followed by "FILE: ..." lines for missing
 * required keys, so an operator can fix a file in one pass. Relative paths
 * are resolved against the directory holding the configuration file.
 *
 * The PIN is never part of the configuration: it comes from a pin_file that
 * only its owner may read, or from an inherited file descriptor. It never
 * appears in a message.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "common/errlist.h"
#include "common/fileio.h"
#include "daemon/bs_config.h"
#include "hsm/p11uri.h"

#define CONFIG_FILE_MAX (1024 * 1024)   /* bytes in a configuration file */
#define CONFIG_LINE_MAX 4096            /* bytes in one line */
#define CONFIG_ERRORS_MAX 100           /* errors reported before giving up */
#define CONFIG_PIN_MAX 256              /* PIN bytes after stripping the newline */
#define PIN_PAGE 4096                   /* the locked page holding the PIN (> CONFIG_PIN_MAX) */

enum ktype {
	KT_STRING,      /* any printable text */
	KT_PATH,        /* a file name, resolved against the config directory */
	KT_MODULE,      /* a path (resolved if it has a '/') or a p11-kit module name */
	KT_LISTEN,      /* host:port or [v6]:port */
	KT_URI,         /* pkcs11: URI */
	KT_LOGLEVEL,    /* debug|info|warn|error */
	KT_UINT,        /* decimal number in [min, max] */
	KT_FD,          /* a file descriptor number */
	KT_BOOL,        /* on|off, stored as unsigned 1|0 */
	KT_NOTENAME,    /* a signed-note key name: printable ASCII, no space, no '+' */
	KT_KEYNAME,     /* a key name: [A-Za-z0-9._-], 1..64, starting alphanumeric */
};

struct keydef {
	const char *name;
	enum ktype type;
	size_t off;
	unsigned long min;
	unsigned long max;
	int required;
};

#define S(f) offsetof(struct bs_config, f)

static const struct keydef keydefs[] = {
	{ "listen", KT_LISTEN, S(listen), 0, 0, 1 },
	{ "metrics_listen", KT_LISTEN, S(metrics_listen), 0, 0, 0 },
	{ "tls_cert", KT_PATH, S(tls_cert), 0, 0, 1 },
	{ "tls_key", KT_PATH, S(tls_key), 0, 0, 1 },
	{ "tls_client_ca", KT_PATH, S(tls_client_ca), 0, 0, 1 },
	{ "tls_crl", KT_PATH, S(tls_crl), 0, 0, 1 },
	{ "policy", KT_PATH, S(policy), 0, 0, 1 },
	{ "pkcs11_module", KT_MODULE, S(pkcs11_module), 0, 0, 1 },
	{ "token_uri", KT_URI, S(token_uri), 0, 0, 1 },
	{ "pin_file", KT_PATH, S(pin_file), 0, 0, 0 },
	{ "pin_fd", KT_FD, S(pin_fd), 0, INT_MAX, 0 },
	{ "state_dir", KT_PATH, S(state_dir), 0, 0, 1 },
	{ "ca_crl_dir", KT_PATH, S(ca_crl_dir), 0, 0, 0 },
	{ "log_level", KT_LOGLEVEL, S(log_level), 0, 0, 0 },
	{ "workers", KT_UINT, S(workers), 1, 256, 0 },
	{ "queue_max", KT_UINT, S(queue_max), 1, 1000000, 0 },
	{ "max_message_bytes", KT_UINT, S(max_message_bytes), 1024, 64UL * 1024 * 1024, 0 },
	{ "max_concurrent_streams", KT_UINT, S(max_concurrent_streams), 1, 10000, 0 },
	{ "max_connections", KT_UINT, S(max_connections), 1, 100000, 0 },
	{ "max_header_list_bytes", KT_UINT, S(max_header_list_bytes), 1024, 1024 * 1024, 0 },
	{ "handshake_timeout_ms", KT_UINT, S(handshake_timeout_ms), 100, 600000, 0 },
	{ "idle_timeout_ms", KT_UINT, S(idle_timeout_ms), 1000, 86400000, 0 },
	{ "max_startups", KT_UINT, S(max_startups), 1, 100000, 0 },
	{ "max_startups_begin", KT_UINT, S(max_startups_begin), 0, 100000, 0 },
	{ "max_startups_per_source", KT_UINT, S(max_startups_per_source), 1, 100000, 0 },
	{ "handshake_penalty_ms", KT_UINT, S(handshake_penalty_ms), 0, 600000, 0 },
	{ "request_timeout_ms", KT_UINT, S(request_timeout_ms), 100, 3600000, 0 },
	{ "max_buffered_request_bytes", KT_UINT, S(max_buffered_request_bytes), 1024,
	    1024UL * 1024 * 1024, 0 },
	{ "write_stall_timeout_ms", KT_UINT, S(write_stall_timeout_ms), 100, 3600000, 0 },
	{ "max_connection_age_ms", KT_UINT, S(max_connection_age_ms), 0, 604800000, 0 },
	{ "max_connection_age_grace_ms", KT_UINT, S(max_connection_age_grace_ms), 0, 3600000, 0 },
	{ "max_request_fields", KT_UINT, S(max_request_fields), 16, 10000000, 0 },
	{ "max_unknown_fields", KT_UINT, S(max_unknown_fields), 0, 10000000, 0 },
	{ "rate_limit_calls", KT_UINT, S(rate_limit_calls), 0, 10000000, 0 },
	{ "rate_limit_audit_records", KT_UINT, S(rate_limit_audit_records), 0, 10000000, 0 },
	{ "audit_uncovered_max", KT_UINT, S(audit_uncovered_max), 0, 100000000, 0 },
	{ "audit_preallocate", KT_BOOL, S(audit_preallocate), 0, 1, 0 },
	{ "user", KT_STRING, S(user), 0, 0, 0 },
	{ "shutdown_grace_ms", KT_UINT, S(shutdown_grace_ms), 0, 600000, 0 },
	{ "sign_batch_max", KT_UINT, S(sign_batch_max), 1, 100000, 0 },
	{ "audit", KT_BOOL, S(audit), 0, 1, 0 },
	{ "test_services", KT_BOOL, S(test_services), 0, 1, 0 },
	{ "audit_origin", KT_NOTENAME, S(audit_origin), 0, 0, 0 },
	{ "audit_key", KT_KEYNAME, S(audit_key), 0, 0, 0 },
	{ "audit_checkpoint_records", KT_UINT, S(audit_checkpoint_records), 1, 10000000, 0 },
	{ "audit_checkpoint_interval_ms", KT_UINT, S(audit_checkpoint_interval_ms), 100, 86400000,
	    0 },
	{ "audit_queue_max", KT_UINT, S(audit_queue_max), 16, 10000000, 0 },
};
#define NKEYS (sizeof(keydefs) / sizeof(keydefs[0]))

#undef S

static void
err_add(struct bs_errlist *e, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Adds "FILE:LINE: message" (or "FILE: message" when line is 0). The
 * error after CONFIG_ERRORS_MAX is "FILE: too many errors, giving up"; later
 * ones are dropped.
 */
static void
err_add(struct bs_errlist *e, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (e->total == CONFIG_ERRORS_MAX)
		bs_errlist_add(e, 0, "too many errors, giving up");
	if (e->total > CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	bs_errlist_vadd(e, line, fmt, ap);
	va_end(ap);
}

/*
 * The errors of e in the order found, each line ending in '\n' (malloc'd,
 * the caller frees), or NULL if there are none or memory ran out.
 */
static char *
err_text(const struct bs_errlist *e)
{
	size_t n;
	char *s;

	if (e->nents == 0 || e->nomem)
		return NULL;
	n = bs_errlist_format(e, NULL, 0);
	if ((s = malloc(n + 2)) == NULL)
		return NULL;
	bs_errlist_format(e, s, n + 1);
	s[n] = '\n';
	s[n + 1] = '\0';
	return s;
}

/* Copies s (n bytes) into out for a message: non-printables become '?', capped. */
static const char *
printable(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 4 < outlen; i++)
		out[j++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (i < n && j + 4 <= outlen) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

void
config_defaults(struct bs_config *c)
{
	long n;

	memset(c, 0, sizeof(*c));
	c->pin_fd = -1;
	c->log_level = strdup("info");  /* config_load retries if this failed */
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > 256)
		n = 256;
	c->workers = (unsigned)n;
	c->queue_max = 1024;
	c->max_message_bytes = 4U * 1024 * 1024;
	c->max_concurrent_streams = 100;
	c->max_connections = 256;
	c->max_header_list_bytes = 8192;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 300000;
	c->max_startups = 128;
	c->max_startups_begin = 32;
	c->max_startups_per_source = 16;
	c->handshake_penalty_ms = 2000;
	c->request_timeout_ms = 30000;
	c->max_buffered_request_bytes = 16U * 1024 * 1024;
	c->write_stall_timeout_ms = 30000;
	c->max_connection_age_ms = 3600000;
	c->max_connection_age_grace_ms = 30000;
	c->max_request_fields = 100000;
	c->max_unknown_fields = 64;
	c->rate_limit_calls = 20000;
	c->rate_limit_audit_records = 20000;
	c->audit_uncovered_max = 10000;
	c->shutdown_grace_ms = 10000;
	c->sign_batch_max = 1000;
	c->audit = 1;
	c->audit_checkpoint_records = 1000;
	c->audit_checkpoint_interval_ms = 10000;
	c->audit_queue_max = 65536;
}

static void
clear_strings(struct bs_config *c)
{
	size_t i;
	char **p;

	for (i = 0; i < NKEYS; i++) {
		if (keydefs[i].type == KT_UINT || keydefs[i].type == KT_FD ||
		    keydefs[i].type == KT_BOOL)
			continue;
		p = (char **)((char *)c + keydefs[i].off);
		free(*p);
		*p = NULL;
	}
	for (i = 0; i < c->nsettings; i++) {
		free(c->settings[i].key);
		free(c->settings[i].value);
	}
	free(c->settings);
	c->settings = NULL;
	c->nsettings = 0;
}

/*
 * 1 if key is "<section>.<name>", both [a-z0-9_]+ (a service setting), or
 * "<section>.<name>.<NAME>" with NAME [a-z0-9_.-]+ (a setting per name,
 * e.g. a command's; the registry checks which settings take one).
 */
static int
setting_key_ok(const char *key)
{
	const char *dot = strchr(key, '.'), *dot2;

	if (dot == NULL || dot == key || dot[1] == '\0' || dot[1] == '.')
		return 0;
	dot2 = strchr(dot + 1, '.');
	if (dot2 != NULL && dot2[1] == '\0')
		return 0;
	for (const char *p = key; *p != '\0'; p++) {
		int word = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';

		if (p == dot || (dot2 != NULL && p >= dot2 && (word || *p == '.' || *p == '-')))
			continue;
		if (!word)
			return 0;
	}
	return 1;
}

/* Keeps a service setting as written (the registry checks it). */
static void
add_setting(struct bs_errlist *e, unsigned line, const char *key, const char *val,
    struct bs_config *t)
{
	struct config_setting *ns;

	for (size_t i = 0; i < t->nsettings; i++)
		if (strcmp(t->settings[i].key, key) == 0) {
			err_add(e, line, "duplicate key '%s' (first set on line %u)", key,
			    t->settings[i].line);
			return;
		}
	if (val[0] == '\0') {
		err_add(e, line, "%s: empty value", key);
		return;
	}
	ns = realloc(t->settings, (t->nsettings + 1) * sizeof(*ns));
	if (ns == NULL) {
		e->nomem = 1;
		return;
	}
	t->settings = ns;
	ns[t->nsettings].line = line;
	ns[t->nsettings].key = strdup(key);
	ns[t->nsettings].value = strdup(val);
	if (ns[t->nsettings].key == NULL || ns[t->nsettings].value == NULL) {
		free(ns[t->nsettings].key);
		free(ns[t->nsettings].value);
		e->nomem = 1;
		return;
	}
	t->nsettings++;
}

void
config_clear(struct bs_config *c)
{
	if (c == NULL)
		return;
	clear_strings(c);
}

/* Reads the whole file e->name (capped) into a NUL-terminated buffer; problems go to e. */
static int
read_file(struct bs_errlist *e, char **out, size_t *len_out)
{
	char why[256];
	int rc;

	rc = bs_file_read_checked(e->name, 0, CONFIG_FILE_MAX, out, len_out, why, sizeof(why));
	if (rc == 0 || rc == BS_ERR_NOMEM)
		return rc;
	err_add(e, 0, "%s", why);
	/* too big is a configuration error; anything else means it cannot be read */
	return rc == BS_ERR_TOO_BIG ? BS_ERR_CONFIG : BS_ERR_IO;
}

/* The absolute directory holding path, malloc'd. */
static char *
config_dir(const char *path)
{
	char *copy, *slash, *dir;

	if ((copy = strdup(path)) == NULL)
		return NULL;
	slash = strrchr(copy, '/');
	if (slash == NULL)
		dir = realpath(".", NULL);
	else if (slash == copy)
		dir = strdup("/");
	else {
		*slash = '\0';
		dir = realpath(copy, NULL);
	}
	free(copy);
	return dir;
}

static int
parse_uint(const char *v, unsigned long max_allowed, unsigned long *out)
{
	unsigned long n = 0;
	size_t i;

	if (v[0] == '\0')
		return -1;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (n > (ULONG_MAX - 9) / 10)
			return -2;
		n = n * 10 + (unsigned long)(v[i] - '0');
		if (n > max_allowed && n > UINT_MAX)
			return -2;
	}
	*out = n;
	return 0;
}

static int
valid_host_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

/* Checks "host:port" / "[v6]:port"; writes a reason into why on failure. */
static int
check_listen(const char *v, char *why, size_t whylen)
{
	char host[256], shown[80];
	const char *colon, *port;
	unsigned long p;
	size_t hl, i;
	unsigned char a6[16];

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(why, whylen, "'%s' is not host:port or [v6]:port",
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		hl = (size_t)(close - v - 1);
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(why, whylen, "bad IPv6 address in '%s'",
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		memcpy(host, v + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, a6) != 1) {
			snprintf(why, whylen, "'%s' is not an IPv6 address",
			    printable(host, hl, shown, sizeof(shown)));
			return -1;
		}
		port = close + 2;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || colon == v || memchr(v, ':', (size_t)(colon - v)) != NULL) {
			snprintf(why, whylen, "'%s' is not host:port or [v6]:port "
			    "(IPv6 addresses need brackets)",
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		hl = (size_t)(colon - v);
		for (i = 0; i < hl; i++) {
			if (!valid_host_char(v[i]) || hl > 253) {
				snprintf(why, whylen, "bad host name in '%s'",
				    printable(v, strlen(v), shown, sizeof(shown)));
				return -1;
			}
		}
		port = colon + 1;
	}
	if (parse_uint(port, 65535, &p) != 0 || p < 1 || p > 65535) {
		snprintf(why, whylen, "port '%s' is not a number in 1..65535",
		    printable(port, strlen(port), shown, sizeof(shown)));
		return -1;
	}
	return 0;
}

/* dir + "/" + v for relative v; a copy of v otherwise. */
static char *
resolve_path(const char *dir, const char *v)
{
	size_t dl, vl;
	char *p;

	if (v[0] == '/' || dir == NULL)
		return strdup(v);
	while (v[0] == '.' && v[1] == '/')
		v += 2;
	dl = strlen(dir);
	vl = strlen(v);
	if ((p = malloc(dl + 1 + vl + 1)) == NULL)
		return NULL;
	memcpy(p, dir, dl);
	if (dl > 0 && dir[dl - 1] == '/')
		dl--;
	p[dl] = '/';
	memcpy(p + dl + 1, v, vl + 1);
	return p;
}

static char *
trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

/* 1 if v is a key name (keyname) or a signed-note key name. */
static int
name_ok(const char *v, int keyname)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > (keyname ? 64 : 255))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (keyname && !(isalnum(ch) || (i > 0 && (ch == '.' || ch == '_' || ch == '-'))))
			return 0;
		if (!keyname && (ch <= 0x20 || ch >= 0x7f || ch == '+'))
			return 0;
	}
	return 1;
}

/* Validates and stores one value. Returns 0, or -1 after reporting an error. */
static int
set_value(struct bs_errlist *e, unsigned line, const struct keydef *kd, const char *v,
    const char *dir, struct bs_config *t)
{
	struct p11uri uri;
	char why[512], shown[80];
	unsigned long n;
	char *s = NULL, **sp;
	int prc;

	switch (kd->type) {
	case KT_UINT:
	case KT_FD:
		prc = parse_uint(v, kd->max, &n);
		if (prc == -1) {
			err_add(e, line, "%s: '%s' is not a number", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		if (prc != 0 || n < kd->min || n > kd->max) {
			err_add(e, line, "%s: %s is out of range (%lu..%lu)", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)), kd->min, kd->max);
			return -1;
		}
		if (kd->type == KT_FD)
			*(int *)((char *)t + kd->off) = (int)n;
		else
			*(unsigned *)((char *)t + kd->off) = (unsigned)n;
		return 0;
	case KT_LISTEN:
		if (check_listen(v, why, sizeof(why)) != 0) {
			err_add(e, line, "listen: %s", why);
			return -1;
		}
		s = strdup(v);
		break;
	case KT_URI:
		if (strncmp(v, "pkcs11:", 7) != 0) {
			err_add(e, line, "%s: '%s' does not start with \"pkcs11:\"", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		/*
		 * The HSM layer's own RFC 7512 parser, so that what passes here
		 * opens there. Never echo the value: a pin-value or pin-source
		 * attribute would put the PIN into the message.
		 */
		if (p11uri_parse(v, &uri) != 0) {
			err_add(e, line, "%s: not a PKCS#11 URI boltsealed accepts (RFC 7512 path "
			    "attributes token, manufacturer, serial, model, slot-id; no query "
			    "attributes such as pin-value or pin-source; the value is not shown)",
			    kd->name);
			return -1;
		}
		s = strdup(v);
		break;
	case KT_LOGLEVEL:
		if (strcmp(v, "debug") != 0 && strcmp(v, "info") != 0 && strcmp(v, "warn") != 0 &&
		    strcmp(v, "error") != 0) {
			err_add(e, line, "%s: '%s' is not one of debug, info, warn, error", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		s = strdup(v);
		break;
	case KT_BOOL:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			err_add(e, line, "%s: '%s' is not on or off", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		*(unsigned *)((char *)t + kd->off) = strcmp(v, "on") == 0;
		return 0;
	case KT_NOTENAME:
	case KT_KEYNAME:
		if (!name_ok(v, kd->type == KT_KEYNAME)) {
			err_add(e, line, kd->type == KT_KEYNAME ?
			    "%s: '%s' is not a key name (1..64 of A-Z a-z 0-9 . _ -)" :
			    "%s: '%s' is not a note key name (printable ASCII without spaces "
			    "or '+', at most 255 bytes)", kd->name,
			    printable(v, strlen(v), shown, sizeof(shown)));
			return -1;
		}
		s = strdup(v);
		break;
	case KT_PATH:
		s = resolve_path(dir, v);
		break;
	case KT_MODULE:
		s = strchr(v, '/') != NULL ? resolve_path(dir, v) : strdup(v);
		break;
	case KT_STRING:
	default:
		s = strdup(v);
		break;
	}
	if (s == NULL) {
		e->nomem = 1;
		return -1;
	}
	sp = (char **)((char *)t + kd->off);
	free(*sp);
	*sp = s;
	return 0;
}

static const struct keydef *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keydefs[i].name, name) == 0)
			return &keydefs[i];
	}
	return NULL;
}

static void
parse_line(struct bs_errlist *e, unsigned line, char *s, char *end, const char *dir,
    struct bs_config *t, unsigned seen[NKEYS])
{
	char shown[80];
	char *eq, *key, *val, *p;
	const struct keydef *kd;
	size_t ki;

	if (memchr(s, '\0', (size_t)(end - s)) != NULL) {
		err_add(e, line, "NUL byte in line");
		return;
	}
	if ((size_t)(end - s) > CONFIG_LINE_MAX) {
		err_add(e, line, "line longer than %d bytes", CONFIG_LINE_MAX);
		return;
	}
	s = trim(s, end);
	if (s[0] == '\0' || s[0] == '#')
		return;
	/* A '#' after a blank starts a trailing comment. */
	for (p = s + 1; *p != '\0'; p++) {
		if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			s = trim(s, p);
			break;
		}
	}
	for (p = s; *p != '\0'; p++) {
		if (iscntrl((unsigned char)*p) && *p != '\t') {
			err_add(e, line, "control character in line");
			return;
		}
	}
	if ((eq = strchr(s, '=')) == NULL) {
		err_add(e, line, "missing '=' in '%s' (expected \"key = value\")",
		    printable(s, strlen(s), shown, sizeof(shown)));
		return;
	}
	key = trim(s, eq);
	val = trim(eq + 1, eq + 1 + strlen(eq + 1));
	if (key[0] == '\0') {
		err_add(e, line, "missing key before '='");
		return;
	}
	if ((kd = find_key(key)) == NULL) {
		if (setting_key_ok(key)) {
			add_setting(e, line, key, val, t);
			return;
		}
		err_add(e, line, "unknown key '%s'", printable(key, strlen(key), shown,
		    sizeof(shown)));
		return;
	}
	ki = (size_t)(kd - keydefs);
	if (seen[ki] != 0) {
		err_add(e, line, "duplicate key '%s' (first set on line %u)", kd->name, seen[ki]);
		return;
	}
	seen[ki] = line;
	if (val[0] == '\0') {
		err_add(e, line, "%s: empty value", kd->name);
		return;
	}
	(void)set_value(e, line, kd, val, dir, t);
}

/* The value of an unsigned key: as set in t, else c's (the default). */
static unsigned
effective_uint(const struct bs_config *c, const struct bs_config *t, const unsigned seen[NKEYS],
    const char *name, unsigned *line)
{
	const struct keydef *kd = find_key(name);
	size_t ki = (size_t)(kd - keydefs);
	const struct bs_config *from = seen[ki] ? t : c;

	*line = seen[ki];
	return *(const unsigned *)((const char *)from + kd->off);
}

/* Settings that only make sense together. */
static void
check_limits(struct bs_errlist *e, const struct bs_config *c, const struct bs_config *t,
    const unsigned seen[NKEYS])
{
	unsigned lb, lm, lp, lu, lr;
	unsigned begin = effective_uint(c, t, seen, "max_startups_begin", &lb);
	unsigned max = effective_uint(c, t, seen, "max_startups", &lm);
	unsigned per = effective_uint(c, t, seen, "max_startups_per_source", &lp);
	unsigned unc = effective_uint(c, t, seen, "audit_uncovered_max", &lu);
	unsigned rec = effective_uint(c, t, seen, "audit_checkpoint_records", &lr);
	unsigned lbuf, lmsg;
	unsigned buf = effective_uint(c, t, seen, "max_buffered_request_bytes", &lbuf);
	unsigned msg = effective_uint(c, t, seen, "max_message_bytes", &lmsg);

	if (begin > max)
		err_add(e, lb > lm ? lb : lm, "max_startups_begin (%u) is larger than max_startups (%u)",
		    begin, max);
	if (per > max)
		err_add(e, lp > lm ? lp : lm,
		    "max_startups_per_source (%u) is larger than max_startups (%u)", per, max);
	if ((unsigned long)buf < (unsigned long)msg + 5)
		err_add(e, lbuf > lmsg ? lbuf : lmsg, "max_buffered_request_bytes (%u) is smaller than "
		    "max_message_bytes (%u) plus its 5-byte prefix: the largest message allowed could "
		    "never be received", buf, msg);
	if (unc < rec)
		err_add(e, lu > lr ? lu : lr, "audit_uncovered_max (%u) is smaller than "
		    "audit_checkpoint_records (%u): a crash between two checkpoints would stop the "
		    "daemon from starting", unc, rec);
}

/* Moves every value set in t (per seen) into c. */
static void
commit_values(struct bs_config *c, struct bs_config *t, const unsigned seen[NKEYS])
{
	size_t i;
	char **src, **dst;

	for (i = 0; i < c->nsettings; i++) {
		free(c->settings[i].key);
		free(c->settings[i].value);
	}
	free(c->settings);
	c->settings = t->settings;
	c->nsettings = t->nsettings;
	t->settings = NULL;
	t->nsettings = 0;

	for (i = 0; i < NKEYS; i++) {
		if (!seen[i])
			continue;
		if (keydefs[i].type == KT_UINT || keydefs[i].type == KT_BOOL) {
			*(unsigned *)((char *)c + keydefs[i].off) =
			    *(unsigned *)((char *)t + keydefs[i].off);
		} else if (keydefs[i].type == KT_FD) {
			*(int *)((char *)c + keydefs[i].off) = *(int *)((char *)t + keydefs[i].off);
		} else {
			src = (char **)((char *)t + keydefs[i].off);
			dst = (char **)((char *)c + keydefs[i].off);
			free(*dst);
			*dst = *src;
			*src = NULL;
		}
	}
}

/* Parses the len bytes of buf (NUL-terminated, modified in place) into c; problems go to e. */
static int
parse_text(struct bs_errlist *e, const char *dir, char *buf, size_t len, struct bs_config *c)
{
	struct bs_config t;
	unsigned seen[NKEYS];
	char *p, *nl, *end, *loglevel = NULL;
	size_t i, pf, pd;
	unsigned line = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	memset(seen, 0, sizeof(seen));
	t.pin_fd = -1;

	p = buf;
	end = buf + len;
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl > p && nl[-1] == '\r')
			nl[-1] = ' ';
		*nl = '\0';
		parse_line(e, line, p, nl, dir, &t, seen);
		p = nl + 1;
	}

	for (i = 0; i < NKEYS; i++) {
		if (keydefs[i].required && !seen[i])
			err_add(e, 0, "missing required key '%s'", keydefs[i].name);
	}
	pf = (size_t)(find_key("pin_file") - keydefs);
	pd = (size_t)(find_key("pin_fd") - keydefs);
	if (seen[pf] && seen[pd]) {
		err_add(e, seen[pf] > seen[pd] ? seen[pf] : seen[pd],
		    "pin_file (line %u) and pin_fd (line %u) are mutually exclusive", seen[pf],
		    seen[pd]);
	} else if (!seen[pf] && !seen[pd]) {
		err_add(e, 0, "missing required key 'pin_file' or 'pin_fd' (exactly one)");
	}
	if (e->total == 0)
		check_limits(e, c, &t, seen);   /* on values that each passed their own checks */

	if (e->nomem) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (e->total > 0) {
		rc = BS_ERR_CONFIG;
		goto out;
	}
	if (c->log_level == NULL && !seen[(size_t)(find_key("log_level") - keydefs)]) {
		if ((loglevel = strdup("info")) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
		c->log_level = loglevel;
	}
	commit_values(c, &t, seen);
	rc = 0;
out:
	clear_strings(&t);
	return rc;
}

/* Shared by config_load and config_parse: e is initialised; buf/len/dir are owned here. */
static int
finish(struct bs_errlist *e, int rc, char *buf, size_t len, char *dir, struct bs_config *c,
    char **errors)
{
	char *text;

	if (rc == 0)
		rc = parse_text(e, dir, buf, len, c);
	*errors = NULL;
	if ((rc == BS_ERR_CONFIG || rc == BS_ERR_IO) && (text = err_text(e)) != NULL)
		*errors = text;
	bs_errlist_clear(e);
	free(dir);
	free(buf);
	return rc;
}

int
config_load(const char *path, struct bs_config *c, char **errors)
{
	struct bs_errlist e;
	char *buf = NULL, *dir = NULL;
	size_t len = 0;
	int rc;

	if (path == NULL || c == NULL || errors == NULL)
		return BS_ERR_INVALID;
	bs_errlist_init(&e, path, CONFIG_ERRORS_MAX + 1);
	if ((rc = read_file(&e, &buf, &len)) == 0 && (dir = config_dir(path)) == NULL) {
		rc = errno == ENOMEM ? BS_ERR_NOMEM : BS_ERR_IO;
		err_add(&e, 0, "cannot resolve the directory of the file: %s", strerror(errno));
	}
	return finish(&e, rc, buf, len, dir, c, errors);
}

int
config_parse(const char *name, const char *dir, const char *text, size_t len,
    struct bs_config *c, char **errors)
{
	struct bs_errlist e;
	char *buf, *d;

	if (name == NULL || dir == NULL || (text == NULL && len > 0) || c == NULL || errors == NULL)
		return BS_ERR_INVALID;
	bs_errlist_init(&e, name, CONFIG_ERRORS_MAX + 1);
	if (len > CONFIG_FILE_MAX) {
		err_add(&e, 0, "file is larger than %d bytes", CONFIG_FILE_MAX);
		return finish(&e, BS_ERR_CONFIG, NULL, 0, NULL, c, errors);
	}
	buf = malloc(len + 1);
	d = strdup(dir);
	if (buf == NULL || d == NULL) {
		free(d);
		free(buf);
		bs_errlist_clear(&e);
		return BS_ERR_NOMEM;
	}
	if (len > 0)
		memcpy(buf, text, len);
	buf[len] = '\0';
	return finish(&e, 0, buf, len, d, c, errors);
}

/* Reads at most cap bytes from fd until EOF into buf. Returns bytes or -1. */
static ssize_t
read_capped(int fd, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

int
config_read_pin(const struct bs_config *c, char **pin, size_t *pin_len, char *err,
    size_t errlen)
{
	/* PIN, an optional "\r\n", and one byte to detect an over-long PIN. */
	uint8_t buf[CONFIG_PIN_MAX + 3] = { 0 };
	char desc[PATH_MAX + 32], why[256];
	ssize_t n;
	size_t len;
	char *out;
	int fd = -1, own_fd = 0, rc = BS_ERR_CONFIG;

	if (c == NULL || pin == NULL || pin_len == NULL)
		return BS_ERR_INVALID;
	(void)mlock(buf, sizeof(buf));   /* best effort: the stack copy lives for microseconds */
	if (c->pin_file != NULL) {
		snprintf(desc, sizeof(desc), "pin file '%s'", c->pin_file);
		rc = bs_file_open_checked(c->pin_file, BS_FILE_OWNER_ONLY | BS_FILE_OWNED, &fd, why,
		    sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "%s: %s", desc, why);
			fd = -1;
			goto out;
		}
		own_fd = 1;
		rc = BS_ERR_CONFIG;
	} else if (c->pin_fd >= 0) {
		snprintf(desc, sizeof(desc), "pin_fd %d", c->pin_fd);
		fd = c->pin_fd;
	} else {
		snprintf(err, errlen, "neither pin_file nor pin_fd is set");
		goto out;
	}

	n = read_capped(fd, buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", desc, strerror(errno));
		rc = BS_ERR_IO;
		goto out;
	}
	len = (size_t)n;
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len > CONFIG_PIN_MAX) {
		snprintf(err, errlen, "%s: the PIN is longer than %d bytes", desc, CONFIG_PIN_MAX);
		goto out;
	}
	if (len == 0) {
		snprintf(err, errlen, "%s: the PIN is empty", desc);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL) {
		snprintf(err, errlen, "%s: the PIN contains a NUL or newline byte", desc);
		goto out;
	}
	/* its own page: locked (never swapped), left out of core dumps, wiped by config_free_pin */
	out = mmap(NULL, PIN_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out == MAP_FAILED) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (mlock(out, PIN_PAGE) != 0) {
		snprintf(err, errlen, "cannot lock the PIN's memory: %s (RLIMIT_MEMLOCK?)",
		    strerror(errno));
		(void)munmap(out, PIN_PAGE);
		rc = BS_ERR_NOMEM;
		goto out;
	}
	(void)madvise(out, PIN_PAGE, MADV_DONTDUMP);
	memcpy(out, buf, len);
	out[len] = '\0';
	*pin = out;
	*pin_len = len;
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	(void)munlock(buf, sizeof(buf));
	if (own_fd)
		close(fd);
	return rc;
}

void
config_free_pin(char *pin, size_t pin_len)
{
	if (pin == NULL)
		return;
	OPENSSL_cleanse(pin, pin_len);
	(void)munlock(pin, PIN_PAGE);
	(void)munmap(pin, PIN_PAGE);
}
