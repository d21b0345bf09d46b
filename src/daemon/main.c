/*
 * main.c - boltsealed: start-up, self-checks, signals and shutdown.
 *
 * Start: parse the configuration (-n stops here), read the PIN (file or fd,
 * never argv), open the token through p11-kit and log in, open the catalog
 * and reconcile it with the token objects (a mismatch stops start-up with a
 * report), start the HSM worker pool and the TLS/HTTP/2 listener.
 * SIGTERM/SIGINT: stop accepting, let in-flight calls finish (bounded by
 * shutdown_grace_ms), stop the pool (closing its sessions), C_Finalize,
 * exit 0.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "build_config.h"
#include "daemon/bs_config.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "keys/catalog.h"
#include "net/server.h"
#include "net/tls.h"
#include "services/services.h"

struct daemon {
	struct event_base *base;
	struct server *srv;
	struct svc_ctx svc;
	unsigned grace_ms;
	int stopping;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: boltsealed -c FILE [-n]\n"
	    "       boltsealed --help | --version\n"
	    "\n"
	    "  -c, --config FILE  configuration file (see docs/configuration.md)\n"
	    "  -n, --check        check the configuration and exit 0 (valid) or 1\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "Logs are JSON lines on stderr. The token PIN is read from pin_file or pin_fd.\n");
}

static void
drained_cb(void *arg)
{
	struct daemon *d = arg;

	bs_log(BS_LOG_INFO, "in-flight calls answered and connections closed", NULL);
	event_base_loopbreak(d->base);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->stopping)
		return;
	d->stopping = 1;
	d->svc.shutting_down = 1;
	bs_log(BS_LOG_INFO, "shutting down", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
	server_shutdown(d->srv, d->grace_ms, drained_cb, d);
}

static void
hup_cb(evutil_socket_t sig, short what, void *arg)
{
	bs_log(BS_LOG_WARN, "SIGHUP ignored: this version has no reloadable configuration", NULL);
}

/* Keeps the PIN and session state out of core dumps. */
static void
harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static enum bs_log_level
parse_level(const char *s)
{
	if (s == NULL || strcmp(s, "info") == 0)
		return BS_LOG_INFO;
	if (strcmp(s, "debug") == 0)
		return BS_LOG_DEBUG;
	if (strcmp(s, "warn") == 0)
		return BS_LOG_WARN;
	return BS_LOG_ERROR;
}

static int
check_config(const char *path, struct bs_config *cfg)
{
	char *errors = NULL;
	int rc;

	rc = config_load(path, cfg, &errors);
	if (rc != 0) {
		if (errors != NULL)
			fprintf(stderr, "%s%s", errors,
			    errors[0] != '\0' && errors[strlen(errors) - 1] != '\n' ? "\n" : "");
		else
			fprintf(stderr, "%s: %s\n", path, bs_strerror(rc));
		free(errors);
		return -1;
	}
	return 0;
}

static int
run(struct bs_config *cfg)
{
	struct daemon d;
	struct hsm *h = NULL;
	struct hsm_session *rs = NULL;
	struct hsm_pool *pool = NULL;
	struct catalog *cat = NULL;
	SSL_CTX *ssl_ctx = NULL;
	struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
	char err[512], hsm_err[HSM_ERR_LEN], dbpath[4096];
	char *pin = NULL, *report = NULL;
	size_t pin_len = 0;
	int rc, status = 1;
	const struct rpc_method *tables[] = { keyservice_methods, health_methods, NULL };
	struct server_limits lim;

	memset(&d, 0, sizeof(d));
	if (tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, &ssl_ctx, err,
	    sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "TLS configuration failed", "error", err, NULL);
		goto out;
	}
	rc = config_read_pin(cfg, &pin, &pin_len, err, sizeof(err));
	if (cfg->pin_fd >= 0)
		(void)close(cfg->pin_fd);
	if (rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot read the token PIN", "error", err, NULL);
		goto out;
	}
	rc = hsm_open(cfg->pkcs11_module, cfg->token_uri, (const uint8_t *)pin, pin_len, &h, hsm_err);
	OPENSSL_cleanse(pin, pin_len);
	free(pin);
	pin = NULL;
	if (rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot open the HSM token", "token", cfg->token_uri, "module",
		    cfg->pkcs11_module, "error", hsm_err, NULL);
		goto out;
	}
	bs_log(BS_LOG_INFO, "HSM token opened", "token", hsm_token_desc(h), NULL);

	snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", cfg->state_dir);
	if (catalog_open(dbpath, &cat, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot open the key catalog", "path", dbpath, "error", err, NULL);
		goto out;
	}
	if (hsm_session_open(h, &rs) != 0) {
		bs_log(BS_LOG_ERROR, "cannot open an HSM session", NULL);
		goto out;
	}
	rc = catalog_reconcile(cat, rs, &report);
	hsm_session_close(rs);
	rs = NULL;
	if (rc != 0) {
		bs_log(BS_LOG_ERROR, "key catalog and HSM token disagree; refusing to start",
		    "catalog", dbpath, "token", cfg->token_uri, "report",
		    report != NULL ? report : bs_strerror(rc), NULL);
		goto out;
	}

	if (evthread_use_pthreads() != 0 || (d.base = event_base_new()) == NULL) {
		bs_log(BS_LOG_ERROR, "cannot create the event loop", NULL);
		goto out;
	}
	if (hsm_pool_new(h, d.base, cfg->workers, cfg->queue_max, &pool) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the HSM worker pool", NULL);
		goto out;
	}
	d.svc.pool = pool;
	d.svc.catalog = cat;
	d.svc.cfg = cfg;
	d.svc.nworkers = cfg->workers;
	d.svc.hsm_healthy = 1;
	d.grace_ms = cfg->shutdown_grace_ms;

	lim.max_message_bytes = cfg->max_message_bytes;
	lim.max_concurrent_streams = cfg->max_concurrent_streams;
	lim.max_connections = cfg->max_connections;
	lim.max_header_list_bytes = cfg->max_header_list_bytes;
	lim.handshake_timeout_ms = cfg->handshake_timeout_ms;
	lim.idle_timeout_ms = cfg->idle_timeout_ms;
	if (server_new(d.base, ssl_ctx, &lim, tables, &d.svc, &d.srv) != 0 ||
	    server_listen(d.srv, cfg->listen, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the server", "error", err, NULL);
		goto out;
	}
	ev_term = evsignal_new(d.base, SIGTERM, stop_cb, &d);
	ev_int = evsignal_new(d.base, SIGINT, stop_cb, &d);
	ev_hup = evsignal_new(d.base, SIGHUP, hup_cb, &d);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || evsignal_add(ev_term, NULL) != 0 ||
	    evsignal_add(ev_int, NULL) != 0 || evsignal_add(ev_hup, NULL) != 0) {
		bs_log(BS_LOG_ERROR, "cannot install signal handlers", NULL);
		goto out;
	}
	{
		char nk[16], nw[16];

		snprintf(nk, sizeof(nk), "%zu", catalog_count(cat));
		snprintf(nw, sizeof(nw), "%u", cfg->workers);
		bs_log(BS_LOG_INFO, "listening", "addr", cfg->listen, "keys", nk, "workers", nw,
		    "version", PACKAGE_VERSION, NULL);
	}
	event_base_dispatch(d.base);
	status = 0;
out:
	/* the pool runs the last done() callbacks, which still need the server */
	if (pool != NULL) {
		hsm_pool_stop(pool);
		hsm_pool_free(pool);
	}
	server_free(d.srv);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (ev_hup != NULL)
		event_free(ev_hup);
	if (d.base != NULL)
		event_base_free(d.base);
	catalog_close(cat);
	hsm_close(h);
	SSL_CTX_free(ssl_ctx);
	free(report);
	if (status == 0)
		bs_log(BS_LOG_INFO, "stopped", NULL);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct bs_config cfg;
	const char *path = NULL;
	int ch, check_only = 0, status;

	while ((ch = getopt_long(argc, argv, "c:nhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("boltsealed %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	harden_process();
	signal(SIGPIPE, SIG_IGN);
	config_defaults(&cfg);
	if (check_config(path, &cfg) != 0) {
		config_clear(&cfg);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK\n", path);
		config_clear(&cfg);
		return 0;
	}
	bs_log_set_level(parse_level(cfg.log_level));
	status = run(&cfg);
	config_clear(&cfg);
	return status;
}
