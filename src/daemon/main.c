/*
 * main.c - boltsealed: start-up, self-checks, signals and shutdown.
 *
 * Start: parse the configuration (-n stops here), read the PIN (file or fd,
 * never argv), open the token through p11-kit and log in, open the catalog
 * and reconcile it with the token objects (a mismatch stops start-up with a
 * report), open the audit log (its chain re-checked, a torn tail repaired,
 * the latest checkpoint matched; the audit key is created in the HSM on
 * first start), load the policy, start the HSM worker pool and the
 * TLS/HTTP/2 listener.
 * SIGHUP: reload the CA bundle, CRLs, server certificate/key and policy as
 * one unit; if any part fails, keep the old set and say why.
 * Policy versions (services/admin/policy_versions.h): the policy in force
 * is the newest stored version; the policy file becomes a new version
 * (at start-up or on a reload) only when it changed since it was last
 * seen, so a policy set through AdminService/SetPolicy stays in force
 * until the file is edited.
 * SIGTERM/SIGINT: stop accepting, let in-flight calls finish (bounded by
 * shutdown_grace_ms), write the stop record, stop the pool, C_Finalize,
 * exit 0.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "audit/audit_verify.h"
#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/wipe_alloc.h"
#include "build_config.h"
#include "daemon/bs_config.h"
#include "daemon/metrics.h"
#include "daemon/privdrop.h"
#include "formats/signed_note.h"
#include "hsm/hsm.h"
#include "exec/workq.h"
#include "keyd/keyd.h"
#include "keyops/keyclient.h"
#include "hsm/pool.h"
#include "keys/catalog.h"
#include "store/store.h"
#include "net/server.h"
#include "net/tls.h"
#include "rpc/rpc.h"
#include "rpc/rpc_service.h"
#include "policy/policy.h"
#include "services/admin/admin_int.h"
#include "services/admin/policy_versions.h"
#include "services/services.h"
#include "types/types.h"

#define CRL_CHECK_MS 2000   /* how often CRL expiry and the trust files are re-checked */

struct daemon {
	struct event_base *base;
	struct server *srv;
	struct rpc_registry *registry;
	struct rpc_dispatcher *disp;
	struct policy *policy;      /* the policy in force; replaced whole */
	uint64_t policy_version;    /* its stored version */
	char policy_file_sha[POLICY_SHA_HEX + 1];  /* the policy file as last seen */
	struct file_version_job *file_job;  /* a changed policy file being stored */
	const char *reload_again;   /* a reload asked for while file_job ran */
	struct svc_ctx svc;
	const struct bs_config *cfg;
	struct tls_material *tls;
	struct event *crl_timer;
	char crl_problem[512];
	uint8_t trust_sig[32];      /* the CA/CRL files as loaded (tls_trust_files_signature) */
	uint8_t trust_sig_tried[32];/* as last tried after a change, loaded or not */
	uint8_t trust_sig_seen[32]; /* as seen at the last tick (a change must hold a tick) */
	unsigned grace_ms;
	int stopping;
	struct metrics *metrics;    /* the Prometheus endpoint, or NULL (metrics_listen unset) */
};

static void
ignore_done(void *arg, int rc)
{
	(void)arg;
	(void)rc;
}

/* Writes a daemon-level audit record (start, stop, reload...) without waiting. */
static void
audit_event_fields(struct daemon *d, enum audit_type type, const char *result, const char *event,
    const char *reason, const struct audit_field *fields, size_t nfields, audit_done_fn done)
{
	struct audit_record r;

	if (d->svc.audit == NULL) {
		if (done != NULL)
			done(d, 0);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.type = type;
	r.key_version = -1;
	r.result = result;
	r.event = event;
	r.reason = reason;
	r.fields = fields;
	r.nfields = nfields;
	if (done == NULL)
		done = ignore_done;
	if (audit_log_append(d->svc.audit, &r, done, d) != 0)
		done(d, BS_ERR_UNAVAILABLE);
}

static void
audit_event(struct daemon *d, enum audit_type type, const char *result, const char *event,
    const char *reason, audit_done_fn done)
{
	audit_event_fields(d, type, result, event, reason, NULL, 0, done);
}

/* The record of a policy file that became version v (docs/audit.md, policy_set). */
static void
audit_file_version(struct daemon *d, const char *why, const Boltseal__V1__PolicyVersion *v,
    const char *diff)
{
	char ver[24], reason[256];
	struct audit_field f[4] = { { "version", ver }, { "source", "file" },
		{ "sha256", v->sha256 }, { "diff", diff != NULL ? diff : "(not available)" } };

	snprintf(ver, sizeof(ver), "%" PRIu64, v->version);
	snprintf(reason, sizeof(reason), "%s: the policy file changed: version %s in force", why,
	    ver);
	bs_log(BS_LOG_INFO, "policy file stored as a new version", "version", ver, "sha256",
	    v->sha256, NULL);
	audit_event_fields(d, AUDIT_POLICY, "OK", "policy_set", reason, f, 4, ignore_done);
}

/*
 * Puts p, stored as version, in force unless that version or a newer one is
 * already (a file version and a SetPolicy can finish in either order).
 * Takes p either way. svc_ctx.policy_adopt; loop thread.
 */
static int
policy_adopt(void *arg, struct policy *p, uint64_t version)
{
	struct daemon *d = arg;
	char ver[24];

	if (version <= d->policy_version) {
		policy_free(p);
		return -1;
	}
	if (d->disp != NULL)
		rpc_dispatcher_set_policy(d->disp, p);
	policy_free(d->policy);
	d->policy = p;
	d->policy_version = version;
	snprintf(ver, sizeof(ver), "%" PRIu64, version);
	bs_log(BS_LOG_INFO, "policy version in force", "version", ver, NULL);
	return 0;
}

/*
 * The registry of the services this daemon serves: every service of
 * services/registry.c, the test-only ones only with test_services = on.
 */
static const char *config_path;   /* the configuration file, for messages */
/* --accept-audit-tail N: uncovered audit records the operator accepted for this start, or -1 */
static long long accept_audit_tail = -1;
static struct privdrop priv;      /* user = NAME: who to become after start-up */

/*
 * The registry of the services this daemon serves (every service of
 * services/registry.c, the test-only ones only with test_services = on),
 * configured with their sections' settings.
 */
static int
build_registry(const struct bs_config *cfg, struct rpc_registry **out, char *err, size_t errlen)
{
	const struct rpc_service *served[64];
	struct rpc_setting_line *lines = NULL;
	struct rpc_registry *reg = NULL;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < services_count && n < sizeof(served) / sizeof(served[0]); i++)
		if (!services_all[i]->test_only || cfg->test_services)
			served[n++] = services_all[i];
	if ((rc = rpc_registry_new(served, n, &reg, err, errlen)) != 0)
		return rc;
	if (cfg->nsettings > 0 &&
	    (lines = calloc(cfg->nsettings, sizeof(*lines))) == NULL) {
		rpc_registry_free(reg);
		return BS_ERR_NOMEM;
	}
	for (size_t i = 0; i < cfg->nsettings; i++) {
		lines[i].key = cfg->settings[i].key;
		lines[i].value = cfg->settings[i].value;
		lines[i].line = cfg->settings[i].line;
	}
	rc = rpc_registry_configure(reg, lines, cfg->nsettings, config_path, err, errlen);
	free(lines);
	if (rc != 0) {
		rpc_registry_free(reg);
		return rc;
	}
	*out = reg;
	return 0;
}

/*
 * Loads the policy file against the schema of what the server serves; its
 * text goes to *text (*len bytes; the caller frees it) unless text is NULL.
 */
static int
load_policy(const char *path, const struct rpc_registry *reg, struct policy **out, char **text,
    size_t *len, char *err, size_t errlen)
{
	struct rpc_policy_schema sc;

	if (rpc_registry_policy_schema(reg, &sc) != 0) {
		snprintf(err, errlen, "too many methods for a policy schema");
		return BS_ERR_TOO_BIG;
	}
	return policy_load_text(path, &sc.schema, out, text, len, err, errlen);
}

/* Re-reads CRL freshness; health and the log follow every change. */
static void
crl_recheck(struct daemon *d)
{
	char problem[512];
	int ok = tls_material_crl_status(d->tls, time(NULL), problem, sizeof(problem)) == 0;

	if (!ok && (d->svc.tls_ready || strcmp(problem, d->crl_problem) != 0))
		bs_log(BS_LOG_ERROR, "revocation data missing or stale: refusing the affected "
		    "clients, health NOT_SERVING", "problem", problem, NULL);
	else if (ok && !d->svc.tls_ready)
		bs_log(BS_LOG_INFO, "revocation data current again", NULL);
	snprintf(d->crl_problem, sizeof(d->crl_problem), "%s", ok ? "" : problem);
	d->svc.tls_ready = ok;
}

static void reload(struct daemon *d, const char *why);

/*
 * Every CRL_CHECK_MS: CRL expiry, and whether the CA bundle or the CRLs
 * changed on disk; a change that holds for two ticks in a row (so not a
 * file caught half-written) gets the same reload as SIGHUP, once.
 */
static void
crl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint8_t sig[32];

	(void)fd;
	(void)what;
	if (!d->stopping && d->srv != NULL) {
		tls_trust_files_signature(d->cfg->tls_client_ca, d->cfg->tls_crl, sig);
		if (memcmp(sig, d->trust_sig, sizeof(sig)) != 0 &&
		    memcmp(sig, d->trust_sig_tried, sizeof(sig)) != 0) {
			/* the same on two ticks in a row: not a file still being written */
			if (memcmp(sig, d->trust_sig_seen, sizeof(sig)) == 0) {
				reload(d, "CA bundle or CRLs changed on disk");
				return;
			}
			memcpy(d->trust_sig_seen, sig, sizeof(sig));
		}
	}
	crl_recheck(d);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: boltsealed -c FILE [-n [-t]]\n"
	    "       boltsealed --help | --version\n"
	    "\n"
	    "  -c, --config FILE  configuration file (see docs/configuration.md)\n"
	    "  -n, --check        check the configuration and exit 0 (valid) or 1\n"
	    "  -t, --test-token   with -n: also open the token and log in\n"
	    "  --accept-audit-tail N\n"
	    "                     start although up to N audit records after the last\n"
	    "                     checkpoint are not covered by a signature (more than\n"
	    "                     audit_uncovered_max); recorded in the audit log\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "Logs are JSON lines on stderr. The token PIN is read from pin_file or pin_fd.\n");
}

static void
final_checkpoint_done(void *arg)
{
	struct daemon *d = arg;

	event_base_loopbreak(d->base);
}

static void
stop_logged(void *arg, int rc)
{
	struct daemon *d = arg;

	if (rc != 0)
		bs_log(BS_LOG_ERROR, "cannot write the stop record to the audit log", NULL);
	/* a last checkpoint over everything, the stop record included */
	if (d->svc.checkpointer != NULL && rc == 0)
		checkpointer_flush(d->svc.checkpointer, final_checkpoint_done, d);
	else
		event_base_loopbreak(d->base);
}

static void
drained_cb(void *arg)
{
	struct daemon *d = arg;

	bs_log(BS_LOG_INFO, "in-flight calls answered and connections closed", NULL);
	/* the rate-limit summaries still pending, before the stop record */
	rpc_dispatcher_flush(d->disp);
	audit_event(d, AUDIT_STOP, "OK", "stop", "signal", stop_logged);
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

/* A live connection's certificate no longer verifies: recorded with its principal. */
static void
conn_untrusted(void *arg, const char *identity, const uint8_t cert_sha256[32], const char *peer,
    const char *why)
{
	struct daemon *d = arg;
	const struct policy_principal *pr = policy_map(d->policy, identity, cert_sha256);
	struct audit_record r;
	char reason[512];

	if (d->svc.audit == NULL)
		return;
	snprintf(reason, sizeof(reason), "live connection from %s closed: its client certificate "
	    "no longer verifies (%s)", peer, why);
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_RELOAD;
	r.key_version = -1;
	r.principal_id = pr != NULL ? policy_principal_id(pr) : NULL;
	r.identity = identity;
	r.cert_sha256 = cert_sha256;
	r.result = "UNAUTHENTICATED";
	r.event = "connection_closed_untrusted";
	r.reason = reason;
	if (audit_log_append(d->svc.audit, &r, ignore_done, d) != 0)
		bs_log(BS_LOG_ERROR, "cannot record a closed untrusted connection", "identity",
		    identity, NULL);
}

/*
 * Puts the reloaded TLS material (and pol, stored as version, unless NULL:
 * the policy file did not change) in force; logs and audits the reload.
 * New handshakes and every later call use the new set; every established
 * connection is verified again against the new CAs and CRLs, and closed if
 * it no longer verifies.
 */
static void
reload_apply(struct daemon *d, const char *why, const uint8_t sig[32], struct tls_material *tls,
    struct policy *pol, uint64_t version)
{
	char reason[2400], closed[16];
	unsigned nclosed;

	memcpy(d->trust_sig, sig, 32);
	server_set_tls_ctx(d->srv, tls_material_ctx(tls));
	tls_material_free(d->tls);
	d->tls = tls;
	if (pol != NULL)
		(void)policy_adopt(d, pol, version);
	crl_recheck(d);
	snprintf(reason, sizeof(reason), "%s: TLS material and policy reloaded (policy version %"
	    PRIu64 "%s, %zu principals)%s%s", why, d->policy_version, pol != NULL ? "" :
	    ", file unchanged", policy_principal_count(d->policy), d->svc.tls_ready ? "" :
	    "; revocation data not ready: ", d->crl_problem);
	bs_log(BS_LOG_INFO, "reloaded TLS material and policy", "trigger", why, NULL);
	audit_event(d, AUDIT_RELOAD, "OK", "reload", reason, ignore_done);
	nclosed = server_reverify(d->srv, tls_material_ctx(tls));
	if (nclosed > 0) {
		snprintf(closed, sizeof(closed), "%u", nclosed);
		bs_log(BS_LOG_WARN, "live connections closed after the trust change", "count",
		    closed, NULL);
	}
}

static void
reload_refused(struct daemon *d, const char *why, const char *err)
{
	char reason[2400];

	snprintf(reason, sizeof(reason), "%s: reload refused, previous configuration kept: %s",
	    why, err);
	bs_log(BS_LOG_ERROR, "reload failed; keeping the previous TLS material and policy",
	    "trigger", why, "error", err, NULL);
	audit_event(d, AUDIT_RELOAD, "FAILED_PRECONDITION", "reload_refused", reason, ignore_done);
}

/* A changed policy file stored as a new version (worker), then the reload applied (loop). */
struct file_version_job {
	struct workq_job job;           /* first */
	struct daemon *d;
	const char *why;
	uint8_t sig[32];
	struct tls_material *tls;
	struct policy *pol;
	char *text;
	Boltseal__V1__PolicyVersion v;
	char sha[POLICY_SHA_HEX + 1];
	char file_sha[POLICY_SHA_HEX + 1];
	char *diff;
	int rc;
};

static void
file_version_free(struct file_version_job *j)
{
	tls_material_free(j->tls);
	policy_free(j->pol);
	free(j->text);
	free(j->diff);
	free(j);
}

/* Worker: appends the file's text as the next version, and its diff from the one before. */
static void
file_version_work(struct workq_job *job, void *ctx)
{
	struct file_version_job *j = (struct file_version_job *)job;
	Boltseal__V1__PolicyVersion *prev = NULL;

	(void)ctx;
	j->rc = policy_versions_append(j->d->svc.store, POLICY_ANY_BASE, &j->v, j->file_sha, &prev,
	    NULL);
	if (j->rc == 0 && prev != NULL)
		j->diff = policy_diff(prev->policy_text, strlen(prev->policy_text), prev->version,
		    j->text, strlen(j->text), j->v.version, POLICY_DIFF_MAX);
	policy_version_free(prev);
}

/* Loop: the file version is stored (or not): apply or refuse the reload. */
static void
file_version_done(struct workq_job *job)
{
	struct file_version_job *j = (struct file_version_job *)job;
	struct daemon *d = j->d;
	const char *again;
	char err[256];

	d->file_job = NULL;
	if (j->rc != 0) {
		snprintf(err, sizeof(err), "cannot store the changed policy file as a new version: %s",
		    bs_strerror(j->rc));
		reload_refused(d, j->why, err);
	} else if (!d->stopping) {
		snprintf(d->policy_file_sha, sizeof(d->policy_file_sha), "%s", j->sha);
		audit_file_version(d, j->why, &j->v, j->diff);
		reload_apply(d, j->why, j->sig, j->tls, j->pol, j->v.version);
		j->tls = NULL;
		j->pol = NULL;
	}
	file_version_free(j);
	if ((again = d->reload_again) != NULL && !d->stopping) {
		d->reload_again = NULL;
		reload(d, again);
	}
}

/*
 * Builds the new TLS material and policy from the configured files; puts
 * both in force only if both loaded (see reload_apply). A policy file that
 * changed since it was last seen is stored as a new version first (on the
 * work queue: the loop never touches the store); until then, and if that
 * fails, the previous set stays. One reload at a time: one asked for
 * meanwhile runs after. why says what triggered it (log, audit record).
 */
static void
reload(struct daemon *d, const char *why)
{
	const struct bs_config *cfg = d->cfg;
	struct tls_material *tls = NULL;
	struct policy *pol = NULL;
	struct file_version_job *j;
	char err[2048], sha[POLICY_SHA_HEX + 1], *text = NULL;
	uint8_t sig[32];
	size_t len = 0;

	if (d->file_job != NULL) {
		d->reload_again = why;
		return;
	}
	err[0] = '\0';
	tls_trust_files_signature(cfg->tls_client_ca, cfg->tls_crl, sig);
	memcpy(d->trust_sig_tried, sig, sizeof(sig));
	if (tls_material_load(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_crl, &tls, err,
	    sizeof(err)) != 0 || load_policy(cfg->policy, d->registry, &pol, &text, &len, err,
	    sizeof(err)) != 0) {
		reload_refused(d, why, err);
		tls_material_free(tls);
		return;
	}
	policy_sha256_hex(text, len, sha);
	if (strcmp(sha, d->policy_file_sha) == 0) {
		/* the file as last seen: the version in force stays (it may be a SetPolicy one) */
		policy_free(pol);
		free(text);
		reload_apply(d, why, sig, tls, NULL, 0);
		return;
	}
	if (len > POLICY_STORED_TEXT_MAX || (j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, sizeof(err), len > POLICY_STORED_TEXT_MAX ? "the policy file is over "
		    "%u bytes, more than a stored policy version holds" : "out of memory",
		    POLICY_STORED_TEXT_MAX);
		reload_refused(d, why, err);
		tls_material_free(tls);
		policy_free(pol);
		free(text);
		return;
	}
	j->d = d;
	j->why = why;
	memcpy(j->sig, sig, sizeof(sig));
	j->tls = tls;
	j->pol = pol;
	j->text = text;
	memcpy(j->sha, sha, sizeof(sha));
	memcpy(j->file_sha, sha, sizeof(sha));
	boltseal__v1__policy_version__init(&j->v);
	j->v.policy_text = j->text;
	j->v.sha256 = j->sha;
	j->v.source = BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_FILE;
	j->v.set_time_unix = (int64_t)time(NULL);
	j->v.file_sha256 = j->file_sha;
	j->job.work = file_version_work;
	j->job.done = file_version_done;
	if (workq_submit(d->svc.work, &j->job) != 0) {
		reload_refused(d, why, "cannot store the changed policy file: the work queue is full");
		file_version_free(j);
		return;
	}
	d->file_job = j;
}

/* svc_ctx.trust_changed: a service wrote a trusted file (a CRL); reload now. */
static void
trust_changed(void *arg, const char *why)
{
	struct daemon *d = arg;

	if (!d->stopping && d->srv != NULL)
		reload(d, why);
}

/* SIGHUP: reload (see reload()). */
static void
hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)sig;
	(void)what;
	if (d->stopping)
		return;
	reload(d, "SIGHUP");
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

/*
 * A key the daemon itself needs (the audit signing key: Ed25519, purpose
 * audit; the key that seals second-factor seeds: AES-256-GCM, purpose
 * admin): created in the HSM on first start, non-extractable like every
 * key; an existing key of that name must have that purpose and algorithm.
 * *created = 1 if made now.
 */
static int
ensure_daemon_key(struct keyd *kd, struct catalog *cat, struct hsm_session *s, const char *name,
    enum bs_purpose purpose, enum bs_alg alg, int *created, char *err, size_t errlen)
{
	const struct catalog_key *k = catalog_find(cat, name);
	struct catalog_key nk;
	struct catalog_version v;
	struct keyop_request r;
	struct keyop_answer a;
	int rc;

	*created = 0;
	if (k != NULL) {
		if (k->purpose != purpose || k->alg != alg) {
			snprintf(err, errlen, "key '%s' exists but is not an %s key of purpose %s",
			    name, bs_alg_name(alg), bs_purpose_name(purpose));
			return BS_ERR_CONFIG;
		}
		return 0;
	}
	memset(&nk, 0, sizeof(nk));
	memset(&v, 0, sizeof(v));
	snprintf(nk.name, sizeof(nk.name), "%s", name);
	nk.purpose = purpose;
	nk.alg = alg;
	nk.state = BS_KEY_ENABLED;
	nk.created = (int64_t)time(NULL);
	v.version = 1;
	v.state = BS_KEY_ENABLED;
	v.created = nk.created;
	/* the same door and the same steps as CreateKey, synchronously */
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_GENERATE;
	snprintf(r.key.name, sizeof(r.key.name), "%s", name);
	r.key.version = 1;
	r.alg = alg;
	if ((rc = keyclient_call(kd, s, &r, &a)) == 0 && (rc = a.rc) == 0) {
		memcpy(v.hsm_id, a.id, HSM_KEY_ID_LEN);
		v.spki = a.spki;
		v.spki_len = a.spki_len;
		a.spki = NULL;
	}
	keyop_answer_clear(&a);
	if (rc == 0) {
		rc = catalog_db_add_version(cat, &nk, &v);
		r.type = KEYOP_DESTROY;
		memcpy(r.id, v.hsm_id, HSM_KEY_ID_LEN);
		if (rc != 0 && (keyclient_call(kd, s, &r, &a) != 0 || a.rc != 0))
			bs_log(BS_LOG_ERROR, "cannot remove key objects after a catalog failure", "key",
			    name, NULL);
	}
	if (rc == 0)
		rc = catalog_mem_add_version(cat, &nk, &v);
	free(v.spki);
	if (rc != 0) {
		snprintf(err, errlen, "cannot create the key '%s': %s", name, bs_strerror(rc));
		return rc;
	}
	*created = 1;
	return 0;
}

/* <audit dir>/vkey: the checkpoint verifier key, public, for offline auditors. */
static int
write_vkey(const char *dir, const char *vkey)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\n", vkey);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return bs_file_replace(dir, "vkey", line, (size_t)n, 0644) == 0 ? 0 : -1;
}

static void
grow_cb(void *arg, uint64_t size)
{
	struct daemon *d = arg;

	(void)size;
	if (d->svc.checkpointer != NULL)
		checkpointer_poke(d->svc.checkpointer);
}

/*
 * The audit key is recorded before it exists, as CreateKey's keys are
 * (docs/audit.md, "Key changes"): if the catalog has no key name, writes
 * its "key_created" record and waits until it is durable. *recorded: 1 if
 * it wrote one. Returns 0, or -1 (logged): the daemon must not start.
 */
static int
record_audit_key(struct audit_log *l, const struct catalog *cat, const char *name, int *recorded)
{
	struct audit_record kr;
	int rc;

	*recorded = 0;
	if (catalog_find(cat, name) != NULL)
		return 0;
	if (audit_log_size(l) > 0) {
		char n[24];

		/*
		 * Records exist, so an audit key signed (or should have signed)
		 * them: a new key would sign them unverified. A renamed audit_key
		 * or a restored catalog; nothing is appended.
		 */
		snprintf(n, sizeof(n), "%llu", (unsigned long long)audit_log_size(l));
		bs_log(BS_LOG_ERROR, "the audit log has records but the key catalog has no audit key "
		    "of that name (audit_key renamed, or an older catalog restored?); refusing to start",
		    "key", name, "records", n, NULL);
		return -1;
	}
	memset(&kr, 0, sizeof(kr));
	kr.type = AUDIT_KEY;
	kr.key = name;
	kr.key_version = 1;
	kr.result = "OK";
	kr.event = "key_created";
	kr.reason = "audit signing key created by the daemon on first start";
	if ((rc = audit_log_write_wait(l, &kr)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot record the creation of the audit key; refusing to start",
		    "key", name, "error", bs_strerror(rc), NULL);
		return -1;
	}
	*recorded = 1;
	return 0;
}

/* The audit key recorded by record_audit_key() could not be made after all: says so. */
static void
audit_key_undone(struct audit_log *l, const char *name, const char *why)
{
	struct audit_record kr;

	memset(&kr, 0, sizeof(kr));
	kr.type = AUDIT_KEY;
	kr.key = name;
	kr.key_version = 1;
	kr.result = "INTERNAL";
	kr.event = "key_creation_undone";
	kr.reason = why;
	if (audit_log_write_wait(l, &kr) != 0)
		bs_log(BS_LOG_ERROR, "cannot record that the audit key was not created", "key", name,
		    NULL);
}

/*
 * Start-up: every audit record must be covered by a checkpoint signed by
 * the audit key (any of its versions; the daemon holds the key, so these
 * verifier keys are trusted), but for at most audit_uncovered_max trailing
 * records, or --accept-audit-tail N given for this start after the
 * operator inspected them (then recorded). Call it after checkpointer_new,
 * before anything is appended. Returns 0, or -1 (logged: refuse to start).
 */
static int
log_leaf(void *arg, uint64_t i, uint8_t out[32])
{
	return audit_log_leaf(arg, i, out);
}

static int
check_audit_coverage(struct daemon *d, struct catalog *cat, const char *auditdir,
    const char *audit_key, const char *origin)
{
	const struct catalog_key *k = catalog_find(cat, audit_key);
	struct note_verifier v[AUDIT_VERIFY_MAX_KEYS];
	struct audit_verify_report rep;
	struct audit_record r;
	uint64_t max = d->cfg->audit_uncovered_max;
	char err[4096], vk[NOTE_VKEY_MAX], reason[512], lim[24];
	uint8_t pub[32];
	size_t nv = 0;

	for (size_t i = 0; k != NULL && i < k->nversions && nv < AUDIT_VERIFY_MAX_KEYS; i++) {
		const struct catalog_version *cv = &k->versions[i];

		if (checkpoint_ed25519_raw(cv->spki, cv->spki_len, pub) == 0 &&
		    note_vkey_format(origin, pub, vk, sizeof(vk)) == 0 &&
		    note_vkey_parse(vk, &v[nv]) == 0)
			nv++;
	}
	if (nv == 0) {
		bs_log(BS_LOG_ERROR, "audit key has no usable version; refusing to start", "key",
		    audit_key, NULL);
		return -1;
	}
	if (accept_audit_tail >= 0 && (uint64_t)accept_audit_tail > max)
		max = (uint64_t)accept_audit_tail;
	/* the log read and hashed every record a moment ago: its leaves, not a second hashing */
	if (audit_verify_startup_leaves(auditdir, v, nv, max, log_leaf, d->svc.audit,
	    audit_log_size(d->svc.audit), &rep, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "audit log not covered by its checkpoints; refusing to start",
		    "error", err, NULL);
		return -1;
	}
	if (rep.uncovered <= d->cfg->audit_uncovered_max)
		return 0;
	/* the operator accepted a longer unsigned tail: say so, in both logs */
	snprintf(reason, sizeof(reason), "operator accepted %llu audit records (%llu to %llu) "
	    "not covered by a checkpoint at start-up (--accept-audit-tail %lld; "
	    "audit_uncovered_max %u)", (unsigned long long)rep.uncovered,
	    (unsigned long long)rep.covered, (unsigned long long)rep.records - 1,
	    accept_audit_tail, d->cfg->audit_uncovered_max);
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)rep.uncovered);
	bs_log(BS_LOG_WARN, "starting with an uncovered audit tail accepted by the operator",
	    "records", lim, "reason", reason, NULL);
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_RECOVERY;
	r.key_version = -1;
	r.result = "OK";
	r.event = "uncovered_tail_accepted";
	r.reason = reason;
	if (audit_log_append(d->svc.audit, &r, ignore_done, d) != 0) {
		bs_log(BS_LOG_ERROR, "cannot record the accepted audit tail; refusing to start", NULL);
		return -1;
	}
	return 0;
}

/*
 * With user set: the files re-read after start-up (SIGHUP, CRL changes)
 * must be readable by that user. 0, or -1 with each problem printed by say.
 */
static int
check_reload_files(const struct bs_config *cfg, void (*say)(const char *msg))
{
	const char *paths[] = { cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_crl,
		cfg->policy };
	char err[1024];
	int bad = 0;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (paths[i] != NULL && privdrop_check_readable(&priv, paths[i], err, sizeof(err)) != 0) {
			say(err);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/*
 * ca_crl_dir, if set: a directory the daemon may write (after its switch
 * to `user`: one owned by that user). 0, or BS_ERR_CONFIG with err. *warn
 * (warnlen bytes; may be NULL) says when tls_crl does not name it, so the
 * TLS layer would not read what is written there.
 */
static int
check_ca_crl_dir(const struct bs_config *cfg, char *err, size_t errlen, char *warn, size_t warnlen)
{
	const char *dir = cfg->ca_crl_dir;
	char *a, *b;
	struct stat st;
	int same;

	if (warn != NULL)
		warn[0] = '\0';
	if (dir == NULL)
		return 0;
	if (priv.active && privdrop_check_dir(&priv, "ca_crl_dir", dir, err, errlen) != 0)
		return BS_ERR_CONFIG;
	if (stat(dir, &st) != 0 || (S_ISDIR(st.st_mode) && !priv.active &&
	    access(dir, W_OK | X_OK) != 0)) {
		snprintf(err, errlen, "ca_crl_dir %s: %s", dir, strerror(errno));
		return BS_ERR_CONFIG;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "ca_crl_dir %s: not a directory", dir);
		return BS_ERR_CONFIG;
	}
	a = realpath(dir, NULL);
	b = realpath(cfg->tls_crl, NULL);
	same = a != NULL && b != NULL && strcmp(a, b) == 0;
	free(a);
	free(b);
	if (!same && warn != NULL)
		snprintf(warn, warnlen, "ca_crl_dir %s is not tls_crl (%s): the TLS layer does not "
		    "read the CRLs written there, so certificates of boltseal's CAs cannot be checked "
		    "against them", dir, cfg->tls_crl);
	return 0;
}

static void
say_log(const char *msg)
{
	bs_log(BS_LOG_ERROR, "a file re-read after start-up is not readable by the configured user; "
	    "refusing to start", "error", msg, NULL);
}

static void
say_stderr(const char *msg)
{
	fprintf(stderr, "user: %s\n", msg);
}

/*
 * Start-up (before the loop runs; the store may be used here): the policy
 * file (d->policy, its text) against the stored versions. A file that
 * changed since it was last seen (or the first start) is stored as the next
 * version and stays in force; otherwise the newest stored version is put in
 * force (a SetPolicy one, if that came last). Returns 0, or -1 (logged):
 * the store failed, or the version in force does not load in this build
 * (edit the policy file to replace it).
 */
static int
policy_start(struct daemon *d, char *text, size_t len)
{
	Boltseal__V1__PolicyVersion *cur = NULL, *prev = NULL, v;
	struct rpc_policy_schema sc;
	struct policy *pol = NULL;
	char sha[POLICY_SHA_HEX + 1], fsha[POLICY_SHA_HEX + 1], ver[24], *diff = NULL;
	char err[4096] = "too many methods for a policy schema";
	uint64_t n = 0;
	int rc;

	policy_sha256_hex(text, len, sha);
	rc = policy_versions_get(d->svc.store, 0, &cur, &n);
	if (rc != 0 && rc != BS_ERR_NOT_FOUND) {
		bs_log(BS_LOG_ERROR, "cannot read the stored policy versions", "error",
		    bs_strerror(rc), NULL);
		return -1;
	}
	memcpy(d->policy_file_sha, sha, sizeof(sha));
	if (cur != NULL && strcmp(cur->file_sha256, sha) == 0) {
		snprintf(ver, sizeof(ver), "%" PRIu64, cur->version);
		if (strcmp(cur->sha256, sha) != 0) {
			/* a SetPolicy version came after the file: it stays in force */
			if (rpc_registry_policy_schema(d->registry, &sc) != 0 ||
			    policy_parse("stored policy", cur->policy_text, strlen(cur->policy_text),
			    &sc.schema, &pol, err, sizeof(err)) != 0) {
				bs_log(BS_LOG_ERROR, "the policy in force does not load in this build; "
				    "refusing to start (edit the policy file: a changed file becomes "
				    "the next version)", "version", ver, "error", err, NULL);
				policy_version_free(cur);
				return -1;
			}
			policy_free(d->policy);
			d->policy = pol;
		}
		d->policy_version = cur->version;
		bs_log(BS_LOG_INFO, "policy version in force", "version", ver, "source",
		    cur->source == BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_API ? "SetPolicy" :
		    "file", NULL);
		policy_version_free(cur);
		return 0;
	}
	policy_version_free(cur);
	if (len > POLICY_STORED_TEXT_MAX) {
		bs_log(BS_LOG_ERROR, "the policy file is too large to be kept as a policy version; "
		    "refusing to start", "limit_bytes", "61440", NULL);
		return -1;
	}
	boltseal__v1__policy_version__init(&v);
	v.policy_text = text;
	v.sha256 = sha;
	v.source = BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_FILE;
	v.set_time_unix = (int64_t)time(NULL);
	v.file_sha256 = sha;
	if ((rc = policy_versions_append(d->svc.store, POLICY_ANY_BASE, &v, fsha, &prev, NULL)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot store the policy file as a policy version", "error",
		    bs_strerror(rc), NULL);
		return -1;
	}
	if (prev != NULL)
		diff = policy_diff(prev->policy_text, strlen(prev->policy_text), prev->version, text,
		    len, v.version, POLICY_DIFF_MAX);
	d->policy_version = v.version;
	audit_file_version(d, "start-up", &v, prev != NULL ? diff : "(first version)");
	policy_version_free(prev);
	free(diff);
	return 0;
}

static int
run(struct bs_config *cfg)
{
	struct daemon d;
	struct hsm *h = NULL;
	struct hsm_session *rs = NULL;
	struct hsm_pool *pool = NULL;
	struct workq *work = NULL;
	struct keyd *kd = NULL;
	struct keyclient *keys = NULL;
	struct catalog *cat = NULL;
	struct store *store = NULL;
	struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
	char err[4096], warn[4096], hsm_err[HSM_ERR_LEN], dbpath[4096], auditdir[4096], ckdir[4200];
	char *pin = NULL, *report = NULL, *policy_text = NULL;
	size_t pin_len = 0, policy_len = 0;
	int rc, status = 1, key_created = 0, key_recorded = 0, listen_fd = -1, metrics_fd = -1;
	struct server_limits lim;
	struct timeval crl_tv = { CRL_CHECK_MS / 1000, (CRL_CHECK_MS % 1000) * 1000 };
	const char *audit_key = cfg->audit_key != NULL ? cfg->audit_key : CONFIG_DEFAULT_AUDIT_KEY;
	const char *origin = cfg->audit_origin != NULL ? cfg->audit_origin :
	    CONFIG_DEFAULT_AUDIT_ORIGIN;

	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	tls_trust_files_signature(cfg->tls_client_ca, cfg->tls_crl, d.trust_sig);
	memcpy(d.trust_sig_tried, d.trust_sig, sizeof(d.trust_sig));
	if (tls_material_load(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_crl, &d.tls,
	    err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "TLS configuration failed", "error", err, NULL);
		goto out;
	}
	if (build_registry(cfg, &d.registry, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "service settings are invalid", "error", err, NULL);
		goto out;
	}
	if (load_policy(cfg->policy, d.registry, &d.policy, &policy_text, &policy_len, err,
	    sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "policy is invalid", "error", err, NULL);
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
	config_free_pin(pin, pin_len);
	pin = NULL;
	if (rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot open the HSM token", "token", cfg->token_uri, "module",
		    cfg->pkcs11_module, "error", hsm_err, NULL);
		goto out;
	}
	bs_log(BS_LOG_INFO, "HSM token opened", "token", hsm_token_desc(h), NULL);

	/*
	 * What needs root is done (TLS key and PIN read, token open): bind, then
	 * give root up before any state is opened or any client served.
	 */
	if (server_bind(cfg->listen, &listen_fd, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the server", "error", err, NULL);
		goto out;
	}
	if (cfg->metrics_listen != NULL &&
	    server_bind(cfg->metrics_listen, &metrics_fd, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the metrics endpoint", "error", err, NULL);
		goto out;
	}
	if (priv.active) {
		char uid[16];

		if (check_reload_files(cfg, say_log) != 0)
			goto out;
		if (privdrop_check_dir(&priv, "state_dir", cfg->state_dir, err, sizeof(err)) != 0 ||
		    check_ca_crl_dir(cfg, err, sizeof(err), NULL, 0) != 0 ||
		    privdrop_apply(&priv, err, sizeof(err)) != 0) {
			bs_log(BS_LOG_ERROR, "cannot give up root; refusing to start", "error", err,
			    NULL);
			goto out;
		}
		snprintf(uid, sizeof(uid), "%u", (unsigned)priv.uid);
		bs_log(BS_LOG_INFO, "root privileges given up", "user", priv.name, "uid", uid, NULL);
	} else if (geteuid() == 0) {
		bs_log(BS_LOG_WARN, "running as root: set 'user' in the configuration so that the "
		    "daemon gives root up after start-up", NULL);
	}
	if (check_ca_crl_dir(cfg, err, sizeof(err), warn, sizeof(warn)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot use ca_crl_dir; refusing to start", "error", err, NULL);
		goto out;
	}
	if (warn[0] != '\0')
		bs_log(BS_LOG_WARN, "CRLs written where the TLS layer does not look", "warning", warn,
		    NULL);

	snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", cfg->state_dir);
	/* one store for the catalog and the services' state (catalog.db) */
	if (store_open(dbpath, &store, err, sizeof(err)) != 0 ||
	    catalog_open_store(store, &cat, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "cannot open the key catalog", "path", dbpath, "error", err, NULL);
		goto out;
	}
	if (hsm_session_open(h, &rs) != 0 || keyd_new(&kd) != 0) {
		bs_log(BS_LOG_ERROR, "cannot open an HSM session", NULL);
		goto out;
	}
	/*
	 * One listing of the token (SoftHSM reads every object per search: a
	 * second of a 10,000-key start-up per listing) for the catalog's
	 * reconciliation and the key side's index. rs stays open until the
	 * workers' sessions are, so the listed handles stay valid for them.
	 */
	{
		struct hsm_key_object *objs = NULL;
		size_t nobjs = 0;

		rc = hsm_list_key_objects(rs, CATALOG_LABEL_PREFIX, &objs, &nobjs);
		if (rc == 0) {
			rc = catalog_reconcile_listed(cat, objs, nobjs, &report);
			/* the key side's labels are the catalog's (else it lists on its own) */
			if (rc == 0 && strcmp(KEYD_LABEL_PREFIX, CATALOG_LABEL_PREFIX) == 0 &&
			    keyd_seed_index(kd, objs, nobjs) != 0)
				bs_log(BS_LOG_WARN, "no memory for the key index; keys are searched for",
				    NULL);
		} else if (rc != BS_ERR_NOMEM) {
			rc = BS_ERR_HSM;
		}
		free(objs);
	}
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
	if (cfg->audit) {
		struct audit_log_opts ao;

		memset(&ao, 0, sizeof(ao));
		ao.queue_max = cfg->audit_queue_max;
		ao.prealloc_chunk = cfg->audit_preallocate ? 0 : 1;   /* 0: the default chunk */
		ao.grow_every = cfg->audit_checkpoint_records;
		ao.on_grow = grow_cb;
		ao.grow_arg = &d;
		snprintf(auditdir, sizeof(auditdir), "%s/audit", cfg->state_dir);
		snprintf(ckdir, sizeof(ckdir), "%s/checkpoints", auditdir);
		if (audit_log_open(auditdir, d.base, &ao, &d.svc.audit, err, sizeof(err)) != 0) {
			bs_log(BS_LOG_ERROR, "cannot open the audit log; refusing to start", "error", err,
			    NULL);
			goto out;
		}
	}
	if (cfg->audit && record_audit_key(d.svc.audit, cat, audit_key, &key_recorded) != 0)
		goto out;
	if (cfg->audit && ensure_daemon_key(kd, cat, rs, audit_key, BS_PURPOSE_AUDIT,
	    BS_ALG_ED25519, &key_created, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "audit key unusable; refusing to start", "error", err, NULL);
		if (key_recorded)
			audit_key_undone(d.svc.audit, audit_key, err);
		goto out;
	}
	{
		/* the key that seals second-factor seeds (AdminService) */
		int made = 0;
		struct audit_record kr;

		if (ensure_daemon_key(kd, cat, rs, ADMIN_MFA_KEY, BS_PURPOSE_ADMIN,
		    BS_ALG_AES_256_GCM, &made, err, sizeof(err)) != 0) {
			bs_log(BS_LOG_ERROR, "second-factor key unusable; refusing to start", "error",
			    err, NULL);
			goto out;
		}
		memset(&kr, 0, sizeof(kr));
		kr.type = AUDIT_KEY;
		kr.key = ADMIN_MFA_KEY;
		kr.key_version = 1;
		kr.result = "OK";
		kr.event = "key_created";
		kr.reason = "second-factor sealing key created by the daemon on first start";
		if (made && d.svc.audit != NULL && audit_log_write_wait(d.svc.audit, &kr) != 0) {
			bs_log(BS_LOG_ERROR, "cannot record the creation of the second-factor key; "
			    "refusing to start", NULL);
			goto out;
		}
		if (made)
			bs_log(BS_LOG_INFO, "second-factor sealing key created", "key", ADMIN_MFA_KEY,
			    NULL);
	}
	if (hsm_pool_new(h, d.base, cfg->workers, cfg->queue_max, &pool) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the HSM worker pool", NULL);
		goto out;
	}
	/* only now: the workers' sessions are open, the listed handles stay valid */
	hsm_session_close(rs);
	rs = NULL;
	{
		/* CPU and disk work that is not HSM work: as many threads as HSM workers */
		struct workq_opts wo = { cfg->workers, cfg->queue_max, NULL, NULL, NULL, "work" };

		if (workq_new(d.base, &wo, &work) != 0) {
			bs_log(BS_LOG_ERROR, "cannot start the work queue", NULL);
			goto out;
		}
	}
	if (keyclient_new(kd, pool, &keys) != 0) {
		bs_log(BS_LOG_ERROR, "cannot open the key door", NULL);
		goto out;
	}
	if (cfg->audit) {
		if (checkpointer_new(d.base, keys, work, cat, d.svc.audit, ckdir, origin, audit_key,
		    cfg->audit_checkpoint_interval_ms, &d.svc.checkpointer, err, sizeof(err)) != 0) {
			bs_log(BS_LOG_ERROR, "audit checkpoints unusable; refusing to start", "error", err,
			    NULL);
			goto out;
		}
		if (check_audit_coverage(&d, cat, auditdir, audit_key, origin) != 0)
			goto out;
		if (write_vkey(auditdir, checkpointer_vkey(d.svc.checkpointer)) != 0)
			bs_log(BS_LOG_WARN, "cannot write the verifier key file", "dir", auditdir, NULL);
		bs_log(BS_LOG_INFO, "audit log open", "path", audit_log_path(d.svc.audit),
		    "verifier_key", checkpointer_vkey(d.svc.checkpointer), NULL);
	} else {
		bs_log(BS_LOG_WARN, "audit = off: nothing is recorded (benchmarks only; never in "
		    "production)", NULL);
	}
	d.svc.keys = keys;
	d.svc.pool = pool;
	d.svc.work = work;
	d.svc.catalog = cat;
	d.svc.store = store;
	d.svc.cfg = cfg;
	d.svc.registry = d.registry;
	d.svc.nworkers = cfg->workers;
	d.svc.hsm_healthy = 1;
	d.svc.base = d.base;
	d.svc.policy_adopt = policy_adopt;
	d.svc.policy_arg = &d;
	d.svc.trust_changed = trust_changed;
	d.svc.trust_arg = &d;
	d.grace_ms = cfg->shutdown_grace_ms;
	if (policy_start(&d, policy_text, policy_len) != 0)
		goto out;
	free(policy_text);
	policy_text = NULL;

	lim.max_message_bytes = cfg->max_message_bytes;
	lim.max_concurrent_streams = cfg->max_concurrent_streams;
	lim.max_connections = cfg->max_connections;
	lim.max_header_list_bytes = cfg->max_header_list_bytes;
	lim.handshake_timeout_ms = cfg->handshake_timeout_ms;
	lim.idle_timeout_ms = cfg->idle_timeout_ms;
	lim.max_startups = cfg->max_startups;
	lim.max_startups_begin = cfg->max_startups_begin;
	lim.max_startups_per_source = cfg->max_startups_per_source;
	lim.handshake_penalty_ms = cfg->handshake_penalty_ms;
	lim.request_timeout_ms = cfg->request_timeout_ms;
	lim.max_buffered_request_bytes = cfg->max_buffered_request_bytes;
	lim.write_stall_timeout_ms = cfg->write_stall_timeout_ms;
	lim.max_connection_age_ms = cfg->max_connection_age_ms;
	lim.max_connection_age_grace_ms = cfg->max_connection_age_grace_ms;
	crl_recheck(&d);
	d.crl_timer = event_new(d.base, -1, EV_PERSIST, crl_timer_cb, &d);
	if (d.crl_timer == NULL || event_add(d.crl_timer, &crl_tv) != 0) {
		bs_log(BS_LOG_ERROR, "cannot arm the CRL timer", NULL);
		goto out;
	}
	{
		struct rpc_dispatcher_opts dopts = { .registry = d.registry, .env = &d.svc,
		    .audit = d.svc.audit };
		struct rpc_dispatcher_limits dlim = {
			.max_request_fields = cfg->max_request_fields,
			.max_unknown_fields = cfg->max_unknown_fields,
			.rate_limit_calls = cfg->rate_limit_calls,
			.rate_limit_audit_records = cfg->rate_limit_audit_records,
			.base = d.base,
		};

		if (rpc_dispatcher_new(&dopts, &d.disp) != 0 ||
		    rpc_dispatcher_set_limits(d.disp, &dlim) != 0) {
			bs_log(BS_LOG_ERROR, "cannot create the RPC dispatcher", NULL);
			goto out;
		}
		rpc_dispatcher_set_policy(d.disp, d.policy);
		d.svc.disp = d.disp;
	}
	if (rpc_registry_start(d.registry, &d.svc, err, sizeof(err)) != 0) {
		bs_log(BS_LOG_ERROR, "a service cannot start", "error", err, NULL);
		goto out;
	}
	if (server_new(d.base, tls_material_ctx(d.tls), &lim, d.disp, &d.srv) != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the server", "error", "out of memory", NULL);
		goto out;
	}
	server_on_untrusted(d.srv, conn_untrusted, &d);
	rc = server_listen_fd(d.srv, listen_fd, err, sizeof(err));
	listen_fd = -1;   /* the server's now, even when that failed */
	if (rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot start the server", "error", err, NULL);
		goto out;
	}
	if (metrics_fd >= 0) {
		struct metrics_sources ms = { d.srv, &d.svc, &d.tls };

		if (metrics_new(&ms, &d.metrics) != 0) {
			bs_log(BS_LOG_ERROR, "cannot start the metrics endpoint", "error",
			    "out of memory", NULL);
			goto out;
		}
		rc = metrics_serve_fd(d.metrics, d.base, metrics_fd, err, sizeof(err));
		metrics_fd = -1;   /* the endpoint's now */
		if (rc != 0) {
			bs_log(BS_LOG_ERROR, "cannot start the metrics endpoint", "error", err, NULL);
			goto out;
		}
		rpc_dispatcher_observe(d.disp, metrics_observe, d.metrics);
		bs_log(BS_LOG_INFO, "metrics endpoint listening", "addr", cfg->metrics_listen, NULL);
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
	audit_event(&d, AUDIT_START, "OK", "start", "boltsealed " PACKAGE_VERSION " listening",
	    NULL);
	event_base_dispatch(d.base);
	status = 0;
out:
	if (listen_fd >= 0)
		(void)close(listen_fd);
	if (metrics_fd >= 0)
		(void)close(metrics_fd);
	/* no scrape from here on: what it reads is being taken down */
	if (d.disp != NULL)
		rpc_dispatcher_observe(d.disp, NULL, NULL);
	metrics_free(d.metrics);
	d.metrics = NULL;
	/*
	 * The queues run their last done() callbacks, which still need the
	 * server. Each queue's callbacks may submit to the other: stop both
	 * (later submissions are refused), then free.
	 */
	checkpointer_stop(d.svc.checkpointer);
	hsm_pool_stop(pool);
	workq_stop(work);
	hsm_pool_free(pool);
	workq_free(work);
	keyclient_free(keys);
	/*
	 * A key change whose record is still being written (a grace period that
	 * ran out during GENERATE) completes in audit_log_close below: it must
	 * find the queues gone, not freed (it then leaves the key uncommitted,
	 * logged, as a crash at that moment would).
	 */
	d.svc.work = NULL;
	d.svc.keys = NULL;
	checkpointer_free(d.svc.checkpointer);
	d.svc.checkpointer = NULL;   /* the log's last callbacks may poke it */
	/* the last records (late call outcomes) drain before the server goes */
	audit_log_close(d.svc.audit);
	server_free(d.srv);
	rpc_dispatcher_free(d.disp);
	if (d.registry != NULL)
		rpc_registry_stop(d.registry);
	if (d.crl_timer != NULL)
		event_free(d.crl_timer);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (ev_hup != NULL)
		event_free(ev_hup);
	if (d.base != NULL)
		event_base_free(d.base);
	catalog_close(cat);
	store_close(store);   /* after the catalog, which borrows it */
	keyd_free(kd);
	hsm_close(h);
	tls_material_free(d.tls);
	policy_free(d.policy);
	free(policy_text);
	rpc_registry_free(d.registry);
	free(report);
	if (status == 0)
		bs_log(BS_LOG_INFO, "stopped", NULL);
	return status;
}

/* Each line of text as "NAME: warning: LINE" on stderr. */
static void
print_warnings(const char *name, const char *text)
{
	size_t len;

	while (*text != '\0') {
		len = strcspn(text, "\n");
		fprintf(stderr, "%s: warning: %.*s\n", name, (int)len, text);
		text += len + (text[len] == '\n');
	}
}

/*
 * -n: the policy (every error with its line; warnings that do not fail the
 * check), the TLS material and the PIN file must load too; with test_token
 * (-t) the token must open and accept the PIN.
 */
static int
check_files(const struct bs_config *cfg, int test_token)
{
	struct rpc_registry *reg = NULL;
	struct policy *pol = NULL;
	struct tls_material *tls = NULL;
	char err[8192], warn[8192], hsm_err[HSM_ERR_LEN], *pin = NULL;
	struct hsm *h = NULL;
	size_t pin_len = 0;
	int status = 0;

	if (build_registry(cfg, &reg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (load_policy(cfg->policy, reg, &pol, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s%s", err, err[0] != '\0' && err[strlen(err) - 1] != '\n' ? "\n" : "");
		status = 1;
	} else if (policy_lint(pol, err, sizeof(err)) > 0) {
		print_warnings(cfg->policy, err);
	}
	if (check_reload_files(cfg, say_stderr) != 0)
		status = 1;
	if (privdrop_check_dir(&priv, "state_dir", cfg->state_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "user: %s\n", err);
		status = 1;
	} else if (!priv.active && geteuid() == 0) {
		fprintf(stderr, "user: warning: not set; the daemon would keep running as root\n");
	}
	if (check_ca_crl_dir(cfg, err, sizeof(err), warn, sizeof(warn)) != 0) {
		fprintf(stderr, "%s\n", err);
		status = 1;
	} else if (warn[0] != '\0') {
		fprintf(stderr, "warning: %s\n", warn);
	}
	if (tls_material_load(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_crl, &tls, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "TLS: %s\n", err);
		status = 1;
	} else if (tls_material_crl_status(tls, time(NULL), err, sizeof(err)) != 0) {
		fprintf(stderr, "TLS: warning: %s\n", err);
	}
	/*
	 * The PIN file gets the start-up checks (owner, mode, a non-empty PIN of
	 * allowed bytes). A pin_fd is read only with -t (without it, the fd is
	 * the caller's to hand to the real start). The PIN is wiped at once.
	 */
	if (cfg->pin_file != NULL || test_token) {
		if (config_read_pin(cfg, &pin, &pin_len, err, sizeof(err)) != 0) {
			fprintf(stderr, "PIN: %s\n", err);
			status = 1;
		}
		if (cfg->pin_fd >= 0)
			(void)close(cfg->pin_fd);
	}
	/* -t: the token must open and the PIN log in, as at a start. */
	if (pin != NULL && test_token && status == 0) {
		if (hsm_open(cfg->pkcs11_module, cfg->token_uri, (const uint8_t *)pin, pin_len, &h,
		    hsm_err) != 0) {
			fprintf(stderr, "token: cannot open it: %s\n", hsm_err);
			status = 1;
		} else {
			printf("token: %s: logged in\n", hsm_token_desc(h));
			hsm_close(h);
		}
	} else if (test_token) {
		fprintf(stderr, "token: not tried (the errors above come first)\n");
	}
	config_free_pin(pin, pin_len);
	policy_free(pol);
	rpc_registry_free(reg);
	tls_material_free(tls);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "test-token", no_argument, NULL, 't' },
		{ "accept-audit-tail", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct bs_config cfg;
	const char *path = NULL;
	int ch, check_only = 0, test_token = 0, status;

	/*
	 * Before any libevent call: its buffers (TLS plaintext on its way to
	 * and from HTTP/2) are wiped when freed, data keys among them.
	 */
	event_set_mem_functions(bs_wipe_malloc, bs_wipe_realloc, bs_wipe_free);
	while ((ch = getopt_long(argc, argv, "c:nthV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'A': {
			char *end;

			errno = 0;
			accept_audit_tail = strtoll(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || accept_audit_tail < 0) {
				fprintf(stderr, "boltsealed: --accept-audit-tail: '%s' is not a number "
				    "of records\n", optarg);
				return 2;
			}
			break;
		}
		case 't':
			test_token = 1;
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
	if (path == NULL || optind != argc || (test_token && !check_only)) {
		usage(stderr);
		return 2;
	}
	harden_process();
	signal(SIGPIPE, SIG_IGN);
	config_defaults(&cfg);
	config_path = path;
	if (check_config(path, &cfg) != 0) {
		config_clear(&cfg);
		return 1;
	}
	{
		char err[512];

		if (privdrop_resolve(cfg.user, &priv, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", path, err);
			config_clear(&cfg);
			return 1;
		}
		if (priv.active)
			bs_file_set_service_uid(priv.uid);
	}
	if (check_only) {
		status = check_files(&cfg, test_token);
		if (status == 0)
			printf("%s: configuration OK\n", path);
		config_clear(&cfg);
		return status;
	}
	bs_log_set_level(parse_level(cfg.log_level));
	status = run(&cfg);
	config_clear(&cfg);
	return status;
}
