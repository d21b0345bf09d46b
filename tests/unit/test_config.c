/*
 * test_config.c - unit tests for boltsealed's configuration reader
 * (src/daemon/config.c): a complete valid file, each kind of error with its
 * line number, several errors in one pass, missing required keys, relative
 * path resolution, and PIN reading from a file (mode checks, newline
 * stripping, size cap) and from a pipe; config_parse on a buffer.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/bs_config.h"

struct fixture {
	char dir[PATH_MAX];     /* real path of a fresh temporary directory */
	char conf[PATH_MAX + 32];
};

/* The required keys, with absolute paths; pin_file is line 8. */
static const char base_conf[] =
    "listen = 127.0.0.1:7443\n"
    "tls_cert = /etc/bs/server.pem\n"
    "tls_key = /etc/bs/server.key\n"
    "tls_client_ca = /etc/bs/clients.pem\n"
    "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n"
    "token_uri = pkcs11:token=boltseal-dev\n"
    "state_dir = /var/lib/boltseal\n"
    "pin_file = /etc/bs/pin\n"
    "tls_crl = /etc/bs/crl.pem\n"
    "policy = /etc/bs/policy.conf\n";

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/bs-conf-XXXXXX";

	if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
		return -1;
	snprintf(f->conf, sizeof(f->conf), "%s/boltsealed.conf", f->dir);
	*state = f;
	return 0;
}

static void
rm_tree(const char *dir)
{
	char p[PATH_MAX + 300];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp;

	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Loads text as a config file; returns the rc, errors in *errors. */
static int
load_text(struct fixture *f, const char *text, struct bs_config *c, char **errors)
{
	write_file(f->conf, text, 0644);
	config_defaults(c);
	*errors = NULL;
	return config_load(f->conf, c, errors);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* --- tests ------------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct bs_config c;

	(void)state;
	config_defaults(&c);
	assert_null(c.listen);
	assert_null(c.pin_file);
	assert_int_equal(c.pin_fd, -1);
	assert_string_equal(c.log_level, "info");
	assert_true(c.workers >= 1 && c.workers <= 256);
	assert_int_equal(c.queue_max, 1024);
	assert_int_equal(c.max_message_bytes, 4 * 1024 * 1024);
	assert_int_equal(c.max_concurrent_streams, 100);
	assert_int_equal(c.max_connections, 256);
	assert_int_equal(c.max_header_list_bytes, 8192);
	assert_int_equal(c.handshake_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_ms, 300000);
	assert_int_equal(c.shutdown_grace_ms, 10000);
	assert_int_equal(c.sign_batch_max, 1000);
	assert_int_equal(c.max_startups, 128);
	assert_int_equal(c.max_startups_begin, 32);
	assert_int_equal(c.max_startups_per_source, 16);
	assert_int_equal(c.handshake_penalty_ms, 2000);
	assert_int_equal(c.request_timeout_ms, 30000);
	assert_int_equal(c.max_buffered_request_bytes, 16 * 1024 * 1024);
	assert_int_equal(c.write_stall_timeout_ms, 30000);
	assert_int_equal(c.max_connection_age_ms, 3600000);
	assert_int_equal(c.max_connection_age_grace_ms, 30000);
	assert_int_equal(c.audit_uncovered_max, 10000);
	config_clear(&c);
	assert_null(c.log_level);
	config_clear(&c);   /* twice is harmless */
}

static void
test_full_valid(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors = NULL;
	static const char text[] =
	    "# boltsealed test configuration\n"
	    "\n"
	    "   # indented comment\n"
	    "listen = [::1]:7443\n"
	    "tls_cert=/etc/bs/server.pem\n"
	    "tls_key =\t/etc/bs/server.key   \n"
	    "tls_client_ca = /etc/bs/clients.pem # trailing comment\n"
	    "tls_crl = crls\n"
	    "policy = /etc/bs/policy.conf\n"
	    "audit = off\n"
	    "audit_origin = fleet.example/boltseal-audit\n"
	    "audit_key = audit-2026\n"
	    "audit_checkpoint_records = 500\n"
	    "audit_checkpoint_interval_ms = 2000\n"
	    "pkcs11_module = p11-kit-softhsm\n"
	    "token_uri = pkcs11:token=boltseal-dev;serial=1234\n"
	    "pin_fd = 3\r\n"
	    "state_dir = /var/lib/boltseal\n"
	    "log_level = debug\n"
	    "workers = 8\n"
	    "queue_max = 50\n"
	    "max_message_bytes = 1024\n"
	    "max_concurrent_streams = 10\n"
	    "max_connections = 20\n"
	    "max_header_list_bytes = 16384\n"
	    "handshake_timeout_ms = 2000\n"
	    "idle_timeout_ms = 60000\n"
	    "shutdown_grace_ms = 0\n"
	    "max_startups = 10\n"
	    "max_startups_begin = 0\n"
	    "max_startups_per_source = 10\n"
	    "handshake_penalty_ms = 0\n"
	    "request_timeout_ms = 100\n"
	    "max_buffered_request_bytes = 1029\n"
	    "write_stall_timeout_ms = 5000\n"
	    "max_connection_age_ms = 0\n"
	    "max_connection_age_grace_ms = 0\n"
	    "sign_batch_max = 64";   /* no final newline */

	assert_int_equal(load_text(f, text, &c, &errors), 0);
	assert_null(errors);
	assert_string_equal(c.listen, "[::1]:7443");
	assert_string_equal(c.tls_cert, "/etc/bs/server.pem");
	assert_string_equal(c.tls_key, "/etc/bs/server.key");
	assert_string_equal(c.tls_client_ca, "/etc/bs/clients.pem");
	assert_non_null(strstr(c.tls_crl, "/crls"));
	assert_int_equal(c.audit, 0);
	assert_string_equal(c.audit_origin, "fleet.example/boltseal-audit");
	assert_string_equal(c.audit_key, "audit-2026");
	assert_int_equal(c.audit_checkpoint_records, 500);
	assert_int_equal(c.audit_checkpoint_interval_ms, 2000);
	assert_string_equal(c.pkcs11_module, "p11-kit-softhsm");
	assert_string_equal(c.token_uri, "pkcs11:token=boltseal-dev;serial=1234");
	assert_null(c.pin_file);
	assert_int_equal(c.pin_fd, 3);
	assert_string_equal(c.state_dir, "/var/lib/boltseal");
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(c.workers, 8);
	assert_int_equal(c.queue_max, 50);
	assert_int_equal(c.max_message_bytes, 1024);
	assert_int_equal(c.max_concurrent_streams, 10);
	assert_int_equal(c.max_connections, 20);
	assert_int_equal(c.max_header_list_bytes, 16384);
	assert_int_equal(c.handshake_timeout_ms, 2000);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_int_equal(c.shutdown_grace_ms, 0);
	assert_int_equal(c.sign_batch_max, 64);
	assert_int_equal(c.max_startups, 10);
	assert_int_equal(c.max_startups_begin, 0);
	assert_int_equal(c.max_startups_per_source, 10);
	assert_int_equal(c.handshake_penalty_ms, 0);
	assert_int_equal(c.request_timeout_ms, 100);
	assert_int_equal(c.max_buffered_request_bytes, 1029);
	assert_int_equal(c.write_stall_timeout_ms, 5000);
	assert_int_equal(c.max_connection_age_ms, 0);
	assert_int_equal(c.max_connection_age_grace_ms, 0);
	config_clear(&c);
}

static void
test_minimal_keeps_defaults(void **state)
{
	struct fixture *f = *state;
	struct bs_config c, d;
	char *errors = NULL;

	assert_int_equal(load_text(f, base_conf, &c, &errors), 0);
	assert_null(errors);
	config_defaults(&d);
	assert_string_equal(c.listen, "127.0.0.1:7443");
	assert_string_equal(c.pin_file, "/etc/bs/pin");
	assert_int_equal(c.pin_fd, -1);
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.workers, d.workers);
	assert_int_equal(c.max_message_bytes, d.max_message_bytes);
	assert_int_equal(c.sign_batch_max, d.sign_batch_max);
	config_clear(&c);
	config_clear(&d);
}

/* One bad line appended after base_conf (so it is line 9). */
struct bad_case {
	const char *line;
	const char *msg;    /* expected substring of the message */
};

static void
test_each_error(void **state)
{
	static const struct bad_case cases[] = {
		{ "bogus = 1", "unknown key 'bogus'" },
		{ "workers 4", "missing '='" },
		{ "= 4", "missing key" },
		{ "workers =", "workers: empty value" },
		{ "listen = 0.0.0.0:1", "duplicate key 'listen' (first set on line 1)" },
		{ "workers = four", "workers: 'four' is not a number" },
		{ "workers = -1", "workers: '-1' is not a number" },
		{ "workers = 4k", "is not a number" },
		{ "workers = 0x10", "is not a number" },
		{ "workers = 0", "workers: 0 is out of range (1..256)" },
		{ "workers = 257", "workers: 257 is out of range (1..256)" },
		{ "workers = 99999999999999999999999", "out of range" },
		{ "max_message_bytes = 1023", "max_message_bytes: 1023 is out of range (1024..67108864)" },
		{ "max_message_bytes = 67108865", "out of range (1024..67108864)" },
		{ "queue_max = 0", "queue_max: 0 is out of range" },
		{ "sign_batch_max = 0", "sign_batch_max: 0 is out of range" },
		{ "log_level = verbose", "log_level: 'verbose' is not one of debug, info, warn, error" },
		{ "log_level = INFO", "is not one of" },
		{ "pin_fd = 4", "pin_file (line 8) and pin_fd (line 11) are mutually exclusive" },
		{ "bad\x01key = 1", "control character" },
		{ "audit = yes", "audit: 'yes' is not on or off" },
		{ "audit_origin = has space", "is not a note key name" },
		{ "audit_origin = a+b", "is not a note key name" },
		{ "audit_key = -x", "is not a key name" },
		{ "audit_key = bad/name", "is not a key name" },
		{ "audit_checkpoint_records = 0", "out of range" },
		{ "audit_checkpoint_interval_ms = 99", "out of range (100..86400000)" },
		{ "audit_queue_max = 15", "out of range" },
		{ "max_startups = 0", "max_startups: 0 is out of range" },
		{ "max_startups_begin = 129", "max_startups_begin (129) is larger than max_startups (128)" },
		{ "max_startups_per_source = 200", "max_startups_per_source (200) is larger than "
		    "max_startups (128)" },
		{ "request_timeout_ms = 99", "out of range (100..3600000)" },
		{ "max_buffered_request_bytes = 4194303", "max_buffered_request_bytes (4194303) is "
		    "smaller than max_message_bytes (4194304) plus its 5-byte prefix" },
		{ "audit_uncovered_max = 999", "audit_uncovered_max (999) is smaller than "
		    "audit_checkpoint_records (1000)" },
		/* service settings: "<section>.<name>", both [a-z0-9_]+, and a NAME of [a-z0-9_.-]+ */
		{ "Echo.max_text = 1", "unknown key 'Echo.max_text'" },
		{ "echo.max_text.A = 1", "unknown key 'echo.max_text.A'" },
		{ "echo.max_text. = 1", "unknown key 'echo.max_text.'" },
		{ "echo..x = 1", "unknown key 'echo..x'" },
		{ "echo.max-text.x = 1", "unknown key 'echo.max-text.x'" },
		{ ".max_text = 1", "unknown key '.max_text'" },
		{ "echo. = 1", "unknown key 'echo.'" },
		{ "echo.max_text =", "echo.max_text: empty value" },
	};
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, text[1024], want[PATH_MAX + 256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s\n", base_conf, cases[i].line);
		if (load_text(f, text, &c, &errors) != BS_ERR_CONFIG || errors == NULL)
			fail_msg("accepted: '%s'", cases[i].line);
		snprintf(want, sizeof(want), "%s:11: ", f->conf);
		if (strncmp(errors, want, strlen(want)) != 0 || strstr(errors, cases[i].msg) == NULL ||
		    count_lines(errors) != 1)
			fail_msg("line '%s': got \"%s\", wanted \"%s%s\"", cases[i].line, errors, want,
			    cases[i].msg);
		free(errors);
		config_clear(&c);
	}
}

/* token_uri goes through the HSM layer's RFC 7512 parser; a PIN in it is refused, never echoed. */
static void
test_token_uri_strict(void **state)
{
	static const char *const bad[] = {
		"pkcs11:token=x?pin-value=SECRET",
		"pkcs11:token=x;pin-source=SECRET",
		"pkcs11:token=%zzSECRET",
		"pkcs11:token=x;bogus=SECRET",
	};
	struct fixture *f = *state;
	struct bs_config c;
	char *errors = NULL, text[2048], *tok;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s", base_conf);
		assert_non_null(tok = strstr(text, "token_uri = "));
		snprintf(tok, sizeof(text) - (size_t)(tok - text), "token_uri = %s\n%s", bad[i],
		    strchr(strstr(base_conf, "token_uri = "), '\n') + 1);
		assert_int_equal(load_text(f, text, &c, &errors), BS_ERR_CONFIG);
		assert_non_null(strstr(errors, "token_uri: not a PKCS#11 URI"));
		if (strstr(errors, "SECRET") != NULL)
			fail_msg("the value reached the message: %s", errors);
		free(errors);
		config_clear(&c);
	}
}

/* Service settings are kept as written, in file order, for the registry to check. */
static void
test_service_settings(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors = NULL, text[1024], want[PATH_MAX + 128];

	snprintf(text, sizeof(text), "%secho.max_text = 64\nota.max_roles = 12\n"
	    "commands.max_valid_seconds.route.override-2_x = 5\n", base_conf);
	assert_int_equal(load_text(f, text, &c, &errors), 0);
	assert_null(errors);
	assert_int_equal(c.nsettings, 3);
	assert_string_equal(c.settings[2].key, "commands.max_valid_seconds.route.override-2_x");
	assert_string_equal(c.settings[0].key, "echo.max_text");
	assert_string_equal(c.settings[0].value, "64");
	assert_int_equal(c.settings[0].line, 11);
	assert_string_equal(c.settings[1].key, "ota.max_roles");
	assert_int_equal(c.settings[1].line, 12);
	config_clear(&c);
	assert_int_equal(c.nsettings, 0);
	snprintf(text, sizeof(text), "%secho.max_text = 64\necho.max_text = 65\n", base_conf);
	assert_int_equal(load_text(f, text, &c, &errors), BS_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:12: duplicate key 'echo.max_text' (first set on line 11)",
	    f->conf);
	assert_non_null(strstr(errors, want));
	free(errors);
	config_clear(&c);
}

static void
test_listen_addresses(void **state)
{
	static const char *const good[] = { "127.0.0.1:7443", "0.0.0.0:1", "[::1]:65535",
		"[::]:7443", "localhost:8443", "signer.example.org:443", "[fe80::1]:7443" };
	static const char *const bad[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:http", ":7443", "::1:7443", "[::1]7443", "[::1:7443",
		"[]:7443", "[not-v6]:7443", "host name:7443", "a/b:7443", "127.0.0.1:+80",
		"127.0.0.1:99999999999999999999" };
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, text[1024], want[PATH_MAX + 64];
	size_t i;
	const char *rest = strchr(base_conf, '\n') + 1;   /* base_conf without line 1 */

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "listen = %s\n%s", good[i], rest);
		if (load_text(f, text, &c, &errors) != 0)
			fail_msg("listen '%s' refused: %s", good[i], errors);
		assert_string_equal(c.listen, good[i]);
		config_clear(&c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "listen = %s\n%s", bad[i], rest);
		if (load_text(f, text, &c, &errors) != BS_ERR_CONFIG)
			fail_msg("listen '%s' accepted", bad[i]);
		snprintf(want, sizeof(want), "%s:1: listen: ", f->conf);
		if (strncmp(errors, want, strlen(want)) != 0 || count_lines(errors) != 1)
			fail_msg("listen '%s': got \"%s\"", bad[i], errors);
		free(errors);
		config_clear(&c);
	}
}

static void
test_token_uri_and_pin_fd(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, text[1024];
	const char *p;

	/* Replace line 6 (token_uri). */
	p = strstr(base_conf, "token_uri");
	snprintf(text, sizeof(text), "%.*stoken_uri = token=boltseal-dev\n%s", (int)(p - base_conf),
	    base_conf, strchr(p, '\n') + 1);
	assert_int_equal(load_text(f, text, &c, &errors), BS_ERR_CONFIG);
	assert_non_null(strstr(errors, ":6: token_uri: 'token=boltseal-dev' does not start with "
	    "\"pkcs11:\""));
	assert_int_equal(count_lines(errors), 1);
	free(errors);
	config_clear(&c);

	/* Replace line 8 (pin_file) by a bad pin_fd. */
	p = strstr(base_conf, "pin_file");
	snprintf(text, sizeof(text), "%.*spin_fd = -3\n%s", (int)(p - base_conf), base_conf,
	    strchr(p, '\n') + 1);
	assert_int_equal(load_text(f, text, &c, &errors), BS_ERR_CONFIG);
	assert_non_null(strstr(errors, ":8: pin_fd: '-3' is not a number\n"));
	assert_int_equal(count_lines(errors), 1);
	free(errors);
	config_clear(&c);
}

static void
test_missing_required(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, want[PATH_MAX + 128];
	static const char *const required[] = { "listen", "tls_cert", "tls_key", "tls_client_ca",
		"tls_crl", "policy", "pkcs11_module", "token_uri", "state_dir" };
	size_t i;

	assert_int_equal(load_text(f, "# nothing here\n", &c, &errors), BS_ERR_CONFIG);
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		snprintf(want, sizeof(want), "%s: missing required key '%s'\n", f->conf, required[i]);
		if (strstr(errors, want) == NULL)
			fail_msg("no \"%s\" in \"%s\"", want, errors);
	}
	assert_non_null(strstr(errors, "'pin_file' or 'pin_fd'"));
	assert_int_equal(count_lines(errors), 10);
	free(errors);
	config_clear(&c);

	/* An empty file too. */
	assert_int_equal(load_text(f, "", &c, &errors), BS_ERR_CONFIG);
	assert_int_equal(count_lines(errors), 10);
	free(errors);
	config_clear(&c);
}

static void
test_several_errors(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, *e, want[PATH_MAX + 128];
	static const char text[] =
	    "listen = 127.0.0.1:7443\n"             /* 1 */
	    "workers = 0\n"                         /* 2 */
	    "# comment\n"                           /* 3 */
	    "colour = blue\n"                       /* 4 */
	    "tls_cert /etc/x.pem\n"                 /* 5 */
	    "listen = 127.0.0.1:7444\n"             /* 6 */
	    "log_level = loud\n"                    /* 7 */
	    "max_message_bytes = 512\n"             /* 8 */
	    "pin_fd = 0\n";                         /* 9 */

	assert_int_equal(load_text(f, text, &c, &errors), BS_ERR_CONFIG);
	/* Every problem, in file order, then the missing keys. */
	e = errors;
#define EXPECT(fmt, ...) do { \
		snprintf(want, sizeof(want), fmt, __VA_ARGS__); \
		if (strncmp(e, want, strlen(want)) != 0) \
			fail_msg("expected \"%s\" at \"%s\"", want, e); \
		e = strchr(e, '\n') + 1; \
	} while (0)
	EXPECT("%s:2: workers: 0 is out of range", f->conf);
	EXPECT("%s:4: unknown key 'colour'", f->conf);
	EXPECT("%s:5: missing '='", f->conf);
	EXPECT("%s:6: duplicate key 'listen' (first set on line 1)", f->conf);
	EXPECT("%s:7: log_level: 'loud'", f->conf);
	EXPECT("%s:8: max_message_bytes: 512 is out of range", f->conf);
	EXPECT("%s: missing required key 'tls_cert'\n", f->conf);
	EXPECT("%s: missing required key 'tls_key'\n", f->conf);
	EXPECT("%s: missing required key 'tls_client_ca'\n", f->conf);
	EXPECT("%s: missing required key 'tls_crl'\n", f->conf);
	EXPECT("%s: missing required key 'policy'\n", f->conf);
	EXPECT("%s: missing required key 'pkcs11_module'\n", f->conf);
	EXPECT("%s: missing required key 'token_uri'\n", f->conf);
	EXPECT("%s: missing required key 'state_dir'\n", f->conf);
#undef EXPECT
	assert_string_equal(e, "");
	free(errors);

	/* On error the configuration is left as it was. */
	assert_null(c.listen);
	assert_int_equal(c.pin_fd, -1);
	assert_string_equal(c.log_level, "info");
	config_clear(&c);
}

static void
test_relative_paths(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors, sub[PATH_MAX + 16], conf[PATH_MAX + 64], want[PATH_MAX + 64], cwd[PATH_MAX];
	static const char text[] =
	    "listen = 127.0.0.1:7443\n"
	    "tls_cert = pki/server.pem\n"
	    "tls_key = ./pki/server.key\n"
	    "tls_client_ca = ../ca/clients.pem\n"
	    "pkcs11_module = lib/module.so\n"
	    "token_uri = pkcs11:token=t\n"
	    "state_dir = .\n"
	    "pin_file = /abs/pin\n"
	    "tls_crl = crl.pem\n"
	    "policy = policy.conf\n";

	/* The config lives in <tmp>/state; paths resolve against that. */
	snprintf(sub, sizeof(sub), "%s/state", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/boltsealed.conf", sub);
	write_file(conf, text, 0600);
	config_defaults(&c);
	assert_int_equal(config_load(conf, &c, &errors), 0);
	snprintf(want, sizeof(want), "%s/pki/server.pem", sub);
	assert_string_equal(c.tls_cert, want);
	snprintf(want, sizeof(want), "%s/pki/server.key", sub);
	assert_string_equal(c.tls_key, want);
	snprintf(want, sizeof(want), "%s/../ca/clients.pem", sub);
	assert_string_equal(c.tls_client_ca, want);
	snprintf(want, sizeof(want), "%s/lib/module.so", sub);
	assert_string_equal(c.pkcs11_module, want);
	snprintf(want, sizeof(want), "%s/.", sub);
	assert_string_equal(c.state_dir, want);
	assert_string_equal(c.pin_file, "/abs/pin");
	config_clear(&c);

	/* A relative config path: still resolved to an absolute directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	config_defaults(&c);
	assert_int_equal(config_load("state/boltsealed.conf", &c, &errors), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/pki/server.pem", sub);
	assert_string_equal(c.tls_cert, want);
	config_clear(&c);
}

static void
test_unreadable_file(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors = NULL, p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/absent.conf", f->dir);
	config_defaults(&c);
	assert_int_equal(config_load(p, &c, &errors), BS_ERR_IO);
	assert_non_null(errors);
	assert_non_null(strstr(errors, p));
	free(errors);
	errors = NULL;
	assert_int_equal(config_load(f->dir, &c, &errors), BS_ERR_IO);   /* a directory */
	free(errors);
	config_clear(&c);
}

/* The shipped example must load, also with every optional key uncommented. */
static void
test_example_file(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *errors = NULL, *text, *out, path[PATH_MAX];
	const char *p, *nl;
	FILE *fp;
	long n;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/etc/boltsealed.conf.example", BS_SRCDIR);
	config_defaults(&c);
	if (config_load(path, &c, &errors) != 0)
		fail_msg("%s", errors != NULL ? errors : "load failed");
	assert_string_equal(c.listen, "127.0.0.1:7443");
	assert_string_equal(c.pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(c.token_uri, "pkcs11:token=boltseal-dev");
	assert_non_null(strstr(c.tls_cert, "/etc/pki/server.pem"));
	config_clear(&c);

	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	text = calloc(1, (size_t)n + 1);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_non_null(out);
	assert_int_equal(fread(text, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	/* "#key = value" lines become "key = value" (except pin_fd). */
	for (p = text; *p != '\0'; p = nl) {
		nl = strchr(p, '\n');
		nl = nl != NULL ? nl + 1 : p + strlen(p);
		if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z' && strncmp(p, "#pin_fd", 7) != 0)
			p++;
		memcpy(out + len, p, (size_t)(nl - p));
		len += (size_t)(nl - p);
	}
	assert_int_equal(load_text(f, out, &c, &errors), 0);
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.max_message_bytes, 4194304);
	assert_int_equal(c.sign_batch_max, 1000);
	config_clear(&c);
	free(text);
	free(out);
}

/* --- PIN ----------------------------------------------------------------- */

static int
read_pin_file(struct fixture *f, const char *content, mode_t mode, char **pin, size_t *len,
    char *err, size_t errlen)
{
	struct bs_config c;
	char p[PATH_MAX + 32];
	int rc;

	snprintf(p, sizeof(p), "%s/pin", f->dir);
	write_file(p, content, mode);
	config_defaults(&c);
	c.pin_file = strdup(p);
	assert_non_null(c.pin_file);
	rc = config_read_pin(&c, pin, len, err, errlen);
	config_clear(&c);
	return rc;
}

static void
test_pin_file(void **state)
{
	struct fixture *f = *state;
	char *pin = NULL, err[PATH_MAX + 256] = "";
	size_t len = 0;
	char big[300];

	/* Group/other bits: refused, message has file and mode, never the PIN. */
	assert_int_equal(read_pin_file(f, "s3cr3t-1234\n", 0644, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_null(pin);
	assert_non_null(strstr(err, "/pin'"));
	assert_non_null(strstr(err, "0644"));
	assert_null(strstr(err, "s3cr3t"));
	assert_int_equal(read_pin_file(f, "s3cr3t-1234\n", 0640, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_non_null(strstr(err, "0640"));
	assert_int_equal(read_pin_file(f, "s3cr3t-1234\n", 0604, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);

	/* 0600 and 0400: accepted, one trailing newline stripped. */
	assert_int_equal(read_pin_file(f, "s3cr3t-1234\n", 0600, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(pin, "s3cr3t-1234", 11);
	config_free_pin(pin, len);
	assert_int_equal(read_pin_file(f, "1234", 0400, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(pin, "1234", 4);
	config_free_pin(pin, len);
	assert_int_equal(read_pin_file(f, "1234\r\n", 0600, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4);
	config_free_pin(pin, len);
	/* Only one newline is stripped; a PIN with an inner newline is refused. */
	assert_int_equal(read_pin_file(f, "1234\n\n", 0600, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);
	/* Spaces are part of the PIN. */
	assert_int_equal(read_pin_file(f, " 12 34 \n", 0600, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(pin, " 12 34 ", 7);
	config_free_pin(pin, len);
	pin = NULL;

	/* Empty, and over the 256-byte cap (256 is fine, 257 is not). */
	assert_int_equal(read_pin_file(f, "\n", 0600, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);
	memset(big, 'x', sizeof(big));
	big[256] = '\n';
	big[257] = '\0';
	assert_int_equal(read_pin_file(f, big, 0600, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 256);
	config_free_pin(pin, len);
	pin = NULL;
	big[256] = 'x';
	big[257] = '\n';
	big[258] = '\0';
	assert_int_equal(read_pin_file(f, big, 0600, &pin, &len, err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_null(strstr(err, "xxxx"));
	assert_null(pin);
}

static void
test_pin_file_not_regular(void **state)
{
	struct fixture *f = *state;
	struct bs_config c;
	char *pin = NULL, err[PATH_MAX + 256] = "", p[PATH_MAX + 32];
	size_t len;

	/* A directory, and a FIFO (which must not block). */
	config_defaults(&c);
	c.pin_file = strdup(f->dir);
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), BS_ERR_CONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	config_clear(&c);

	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	config_defaults(&c);
	c.pin_file = strdup(p);
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), BS_ERR_CONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	config_clear(&c);

	/* Missing file. */
	snprintf(p, sizeof(p), "%s/nope", f->dir);
	config_defaults(&c);
	c.pin_file = strdup(p);
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), BS_ERR_IO);
	assert_non_null(strstr(err, p));
	config_clear(&c);

	/* Neither source. */
	config_defaults(&c);
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), BS_ERR_CONFIG);
	config_clear(&c);
	assert_null(pin);
}

/* config_parse: the same reader on a buffer (not NUL-terminated), named and rooted by the caller. */
static void
test_parse_buffer(void **state)
{
	static const char rel[] = "tls_cert = pki/server.pem\nno_such_key = 1";
	struct bs_config c;
	char text[sizeof(base_conf) + sizeof(rel)], *errors = NULL, *big;
	size_t n;

	(void)state;
	memset(text, 0, sizeof(text));  /* strstr below needs a terminator */
	n = strlen(base_conf);
	memcpy(text, base_conf, n);
	memcpy(text + n, rel, sizeof(rel) - 1);
	/* Without its last line (no_such_key): valid, relative paths under dir. */
	config_defaults(&c);
	assert_int_equal(config_parse("mem.conf", "/srv/bs", text, n + strlen("tls_cert = pki/server.pem\n"),
	    &c, &errors), BS_ERR_CONFIG);
	/* tls_cert is given twice: an error on line 11 that names "mem.conf". */
	assert_non_null(errors);
	assert_non_null(strstr(errors, "mem.conf:11:"));
	free(errors);
	config_clear(&c);

	/* base_conf with its tls_cert line made relative, then a bad key (no final newline). */
	memcpy(text, base_conf, n);
	memcpy(strstr(text, "/etc/bs/server.pem"), "pkix/bs/server.pem", 18);
	config_defaults(&c);
	assert_int_equal(config_parse("mem.conf", "/srv/bs", text, n, &c, &errors), 0);
	assert_null(errors);
	assert_string_equal(c.tls_cert, "/srv/bs/pkix/bs/server.pem");
	config_clear(&c);
	memcpy(text + n, "no_such_key = 1", 15);
	config_defaults(&c);
	assert_int_equal(config_parse("mem.conf", "/srv/bs", text, n + 15, &c, &errors), BS_ERR_CONFIG);
	assert_non_null(strstr(errors, "mem.conf:11: unknown key 'no_such_key'"));
	free(errors);
	config_clear(&c);

	/* Over 1 MiB is refused before parsing; NULL text with len 0 is an empty file. */
	big = calloc(1, 1024 * 1024 + 1);
	assert_non_null(big);
	config_defaults(&c);
	assert_int_equal(config_parse("big", "/", big, 1024 * 1024 + 1, &c, &errors), BS_ERR_CONFIG);
	assert_non_null(strstr(errors, "larger than"));
	free(errors);
	free(big);
	config_clear(&c);
	config_defaults(&c);
	assert_int_equal(config_parse("empty", "/", NULL, 0, &c, &errors), BS_ERR_CONFIG);
	assert_non_null(strstr(errors, "missing required key"));
	free(errors);
	config_clear(&c);
}

static void
test_pin_fd(void **state)
{
	struct bs_config c;
	char *pin = NULL, err[256] = "";
	size_t len = 0;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "9876\n", 5), 5);
	close(fds[1]);
	config_defaults(&c);
	c.pin_fd = fds[0];
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(pin, "9876", 4);
	assert_int_equal(pin[4], '\0');
	config_free_pin(pin, len);
	close(fds[0]);
	config_clear(&c);

	/* An empty pipe gives an error, not an empty PIN. */
	assert_int_equal(pipe(fds), 0);
	close(fds[1]);
	config_defaults(&c);
	c.pin_fd = fds[0];
	pin = NULL;
	assert_int_equal(config_read_pin(&c, &pin, &len, err, sizeof(err)), BS_ERR_CONFIG);
	assert_null(pin);
	assert_non_null(strstr(err, "pin_fd"));
	close(fds[0]);
	config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_setup_teardown(test_full_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_minimal_keeps_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_uri_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_uri_and_pin_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_file_not_regular, setup, teardown),
		cmocka_unit_test(test_pin_fd),
		cmocka_unit_test(test_parse_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
