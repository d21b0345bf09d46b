/*
 * metrics.c - the Prometheus text exposition of boltsealed (metrics.h),
 * served with libevent's evhttp.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "build_config.h"
#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "common/histogram.h"
#include "daemon/metrics.h"
#include "exec/workq.h"
#include "hsm/pool.h"
#include "net/server.h"
#include "net/tls.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/services.h"

#define METHODS_MAX 512          /* more than the registry serves */
#define STATUSES 17              /* gRPC codes 0..16 */
#define OTHER_METHOD "other"     /* paths the registry does not serve: one label, bounded */

struct method_stats {
	char name[128];
	uint64_t calls[STATUSES + 1];   /* [STATUSES]: a status outside 0..16 */
	struct bs_hist latency;
};

struct metrics {
	struct metrics_sources src;
	struct method_stats *m;
	size_t n;
	time_t started;
	struct evhttp *http;
};

int
metrics_new(const struct metrics_sources *src, struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL || (m->m = calloc(METHODS_MAX, sizeof(*m->m))) == NULL) {
		free(m);
		return BS_ERR_NOMEM;
	}
	if (src != NULL)
		m->src = *src;
	m->started = time(NULL);
	*out = m;
	return 0;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m->m);
	free(m);
}

static struct method_stats *
method_slot(struct metrics *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->m[i].name, name) == 0)
			return &m->m[i];
	if (m->n == METHODS_MAX || strlen(name) >= sizeof(m->m[0].name))
		return NULL;
	snprintf(m->m[m->n].name, sizeof(m->m[0].name), "%s", name);
	return &m->m[m->n++];
}

void
metrics_observe(void *arg, const char *method, int status, int64_t dur_us)
{
	struct metrics *m = arg;
	struct method_stats *s = method_slot(m, method != NULL ? method : OTHER_METHOD);

	if (s == NULL && (s = method_slot(m, OTHER_METHOD)) == NULL)
		return;
	s->calls[status >= 0 && status < STATUSES ? status : STATUSES]++;
	bs_hist_add(&s->latency, dur_us);
}

/* "# HELP" and "# TYPE" of a family. */
static void
family(struct bytebuf *o, const char *name, const char *type, const char *help)
{
	bytebuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes s as a label value: backslash, double quote and newline escaped. */
static void
label_value(struct bytebuf *o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			bytebuf_printf(o, "\\%c", *s);
		else if (*s == '\n')
			bytebuf_printf(o, "\\n");
		else
			bytebuf_put(o, (const uint8_t *)s, 1);
	}
}

/* The series of histogram h: name_bucket (cumulative), _sum, _count, with labels ("" for none). */
static void
render_hist(struct bytebuf *o, const char *name, const char *labels, const struct bs_hist *h)
{
	uint64_t cum = 0;
	const char *sep = labels[0] != '\0' ? "," : "";

	for (size_t b = 0; b < BS_HIST_BUCKETS; b++) {
		cum += h->bucket[b];
		bytebuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
		    (double)bs_hist_bounds_us[b] / 1e6, cum);
	}
	bytebuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
	bytebuf_printf(o, "%s_sum%s%s%s %.6f\n", name, labels[0] != '\0' ? "{" : "", labels,
	    labels[0] != '\0' ? "}" : "", (double)h->sum_us / 1e6);
	bytebuf_printf(o, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] != '\0' ? "{" : "",
	    labels, labels[0] != '\0' ? "}" : "", h->count);
}

static void
render_rpc(const struct metrics *m, struct bytebuf *o)
{
	char labels[160];
	size_t i;
	int st;

	family(o, "boltseal_rpc_calls_total", "counter",
	    "gRPC calls answered, by method and status (method \"other\": paths not served).");
	for (i = 0; i < m->n; i++)
		for (st = 0; st <= STATUSES; st++)
			if (m->m[i].calls[st] > 0)
				bytebuf_printf(o, "boltseal_rpc_calls_total{method=\"%s\",code=\"%s\"} "
				    "%" PRIu64 "\n", m->m[i].name, st < STATUSES ?
				    grpc_status_name(st) : "INVALID", m->m[i].calls[st]);
	family(o, "boltseal_rpc_duration_seconds", "histogram",
	    "Time from a call's arrival to its answer.");
	for (i = 0; i < m->n; i++) {
		snprintf(labels, sizeof(labels), "method=\"%s\"", m->m[i].name);
		render_hist(o, "boltseal_rpc_duration_seconds", labels, &m->m[i].latency);
	}
}

static void
render_net(const struct server *srv, struct bytebuf *o)
{
	struct server_stats s;

	server_stats(srv, &s);
	family(o, "boltseal_connections", "gauge", "Connections now, by state.");
	bytebuf_printf(o, "boltseal_connections{state=\"established\"} %u\n", s.established);
	bytebuf_printf(o, "boltseal_connections{state=\"handshake\"} %u\n", s.startups);
	family(o, "boltseal_connections_accepted_total", "counter", "TCP connections accepted.");
	bytebuf_printf(o, "boltseal_connections_accepted_total %" PRIu64 "\n", s.accepted);
	family(o, "boltseal_tls_handshake_failures_total", "counter",
	    "Connections that ended before their TLS handshake completed (the log says why).");
	bytebuf_printf(o, "boltseal_tls_handshake_failures_total %" PRIu64 "\n",
	    s.handshakes_failed);
	family(o, "boltseal_connections_refused_total", "counter",
	    "Connections refused or closed by a limit or a trust check, by reason.");
	bytebuf_printf(o, "boltseal_connections_refused_total{reason=\"max_connections\"} %" PRIu64
	    "\n", s.max_conn_refused);
	bytebuf_printf(o, "boltseal_connections_refused_total{reason=\"max_startups\"} %" PRIu64
	    "\n", s.startups_dropped + s.young_refused);
	bytebuf_printf(o, "boltseal_connections_refused_total{reason=\"max_startups_per_source\"} "
	    "%" PRIu64 "\n", s.per_source_refused);
	bytebuf_printf(o, "boltseal_connections_refused_total{reason=\"penalised\"} %" PRIu64 "\n",
	    s.penalised_refused);
	bytebuf_printf(o, "boltseal_connections_refused_total{reason=\"certificate_untrusted\"} "
	    "%" PRIu64 "\n", s.untrusted_closed);
	family(o, "boltseal_rpc_calls_in_flight", "gauge", "Calls admitted and not answered yet.");
	bytebuf_printf(o, "boltseal_rpc_calls_in_flight %u\n", server_active_calls(srv));
}

/* One line of boltseal_limit_refusals_total. */
static void
limit_line(struct bytebuf *o, const char *limit, uint64_t n)
{
	bytebuf_printf(o, "boltseal_limit_refusals_total{limit=\"%s\"} %" PRIu64 "\n", limit, n);
}

/*
 * Every limit that refused a request or closed a connection, by the name of
 * its setting (the connection limits are in boltseal_connections_refused_total).
 */
static void
render_limits(const struct metrics *m, struct bytebuf *o)
{
	const struct svc_ctx *svc = m->src.svc;
	struct server_stats ss;
	struct rpc_dispatcher_stats rs;
	struct workq_stats ws;
	struct audit_log_stats as;

	family(o, "boltseal_limit_refusals_total", "counter",
	    "Requests refused, or connections closed, by a limit: the name of its setting "
	    "(stream_buffer: a streaming answer its reader left 1 MiB behind).");
	if (m->src.srv != NULL) {
		server_stats(m->src.srv, &ss);
		limit_line(o, "max_message_bytes", ss.limits.max_message_bytes);
		limit_line(o, "max_buffered_request_bytes", ss.limits.max_buffered_request_bytes);
		limit_line(o, "max_header_list_bytes", ss.limits.max_header_list_bytes);
		limit_line(o, "request_timeout_ms", ss.limits.request_timeout_ms);
		limit_line(o, "write_stall_timeout_ms", ss.limits.write_stall_timeout_ms);
		limit_line(o, "stream_buffer", ss.limits.stream_buffer);
	}
	if (svc == NULL)
		return;
	if (svc->disp != NULL) {
		rpc_dispatcher_stats(svc->disp, &rs);
		limit_line(o, "rate_limit_calls", rs.rate_limit_calls);
		limit_line(o, "rate_limit_audit_records", rs.rate_limit_audit_records);
		limit_line(o, "max_request_fields", rs.max_request_fields);
		limit_line(o, "max_unknown_fields", rs.max_unknown_fields);
	}
	if (svc->pool != NULL) {
		hsm_pool_stats(svc->pool, &ws);
		limit_line(o, "queue_max", ws.refused_full);
	}
	if (svc->work != NULL) {
		workq_stats(svc->work, &ws);
		limit_line(o, "work_queue", ws.refused_full);
	}
	if (svc->audit != NULL) {
		audit_log_stats(svc->audit, &as);
		limit_line(o, "audit_queue_max", as.refused);
	}
}

/* When the server certificate, each client CA and each CRL expire. */
static void
render_expiry(const struct tls_material *tls, struct bytebuf *o)
{
	struct tls_expiry *e = calloc(TLS_EXPIRY_MAX, sizeof(*e));
	size_t n;

	if (e == NULL)
		return;
	n = tls_material_expiries(tls, e, TLS_EXPIRY_MAX);
	family(o, "boltseal_tls_expiry_timestamp_seconds", "gauge",
	    "When the server certificate or a client CA stops being valid (notAfter), or a CRL "
	    "must be replaced (nextUpdate), Unix time.");
	for (size_t i = 0; i < n; i++) {
		bytebuf_printf(o, "boltseal_tls_expiry_timestamp_seconds{kind=\"%s\",subject=\"",
		    e[i].kind);
		label_value(o, e[i].subject);
		bytebuf_printf(o, "\"} %lld\n", (long long)e[i].at);
	}
	free(e);
}

static void
render_svc(const struct svc_ctx *svc, struct bytebuf *o)
{
	const uint8_t *note;
	const char *vkey;
	size_t len;
	uint64_t cp = 0, size;

	struct workq_stats ws;
	struct audit_log_stats as;

	if (svc->pool != NULL) {
		family(o, "boltseal_hsm_jobs_in_flight", "gauge",
		    "HSM jobs queued or running (queue_max refuses more).");
		bytebuf_printf(o, "boltseal_hsm_jobs_in_flight %u\n", hsm_pool_inflight(svc->pool));
		hsm_pool_stats(svc->pool, &ws);
		family(o, "boltseal_hsm_job_duration_seconds", "histogram",
		    "HSM jobs (signatures, key generation, wrapping, probes) from queueing to their "
		    "result on the event loop.");
		render_hist(o, "boltseal_hsm_job_duration_seconds", "", &ws.latency);
	}
	if (svc->work != NULL) {
		family(o, "boltseal_work_jobs_in_flight", "gauge",
		    "Jobs of the general work queue (store, verification, audit reads) queued or "
		    "running.");
		bytebuf_printf(o, "boltseal_work_jobs_in_flight %u\n", workq_inflight(svc->work));
		workq_stats(svc->work, &ws);
		family(o, "boltseal_work_job_duration_seconds", "histogram",
		    "Jobs of the general work queue from queueing to their result.");
		render_hist(o, "boltseal_work_job_duration_seconds", "", &ws.latency);
	}
	if (svc->audit == NULL)
		return;
	audit_log_stats(svc->audit, &as);
	family(o, "boltseal_audit_sync_duration_seconds", "histogram",
	    "The audit log's write(2) and fdatasync(2) of each group of records.");
	render_hist(o, "boltseal_audit_sync_duration_seconds", "", &as.sync);
	family(o, "boltseal_audit_write_lag_seconds", "histogram",
	    "Audit records from append to durable (an answer waits for its record).");
	render_hist(o, "boltseal_audit_write_lag_seconds", "", &as.lag);
	size = audit_log_size(svc->audit);
	if (svc->checkpointer != NULL &&
	    checkpointer_latest(svc->checkpointer, &note, &len, &cp, &vkey) != 0)
		cp = 0;
	family(o, "boltseal_audit_records", "gauge", "Durable audit records.");
	bytebuf_printf(o, "boltseal_audit_records %" PRIu64 "\n", size);
	family(o, "boltseal_audit_checkpoint_size", "gauge",
	    "Records covered by the latest signed checkpoint.");
	bytebuf_printf(o, "boltseal_audit_checkpoint_size %" PRIu64 "\n", cp);
	family(o, "boltseal_audit_uncovered_records", "gauge",
	    "Durable records no signed checkpoint covers yet (alert when it keeps growing).");
	bytebuf_printf(o, "boltseal_audit_uncovered_records %" PRIu64 "\n", size > cp ? size - cp : 0);
}

void
metrics_render(const struct metrics *m, struct bytebuf *o)
{
	family(o, "boltseal_build_info", "gauge", "The running version (always 1).");
	bytebuf_printf(o, "boltseal_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	family(o, "boltseal_start_time_seconds", "gauge", "When the daemon started (Unix time).");
	bytebuf_printf(o, "boltseal_start_time_seconds %lld\n", (long long)m->started);
	render_rpc(m, o);
	if (m->src.srv != NULL)
		render_net(m->src.srv, o);
	if (m->src.svc != NULL)
		render_svc(m->src.svc, o);
	render_limits(m, o);
	if (m->src.tls != NULL && *m->src.tls != NULL)
		render_expiry(*m->src.tls, o);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	struct bytebuf o = BYTEBUF_INIT;
	struct evbuffer *body;

	/* other methods never get here: evhttp answers them 501 (set_allowed_methods) */
	metrics_render(m, &o);
	if (bytebuf_error(&o) != 0 || (body = evbuffer_new()) == NULL) {
		bytebuf_free(&o);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	(void)evbuffer_add(body, o.p != NULL ? o.p : (uint8_t *)"", o.len);
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
	bytebuf_free(&o);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, "only /metrics is served here");
}

int
metrics_serve_fd(struct metrics *m, struct event_base *base, int fd, char *err, size_t errlen)
{
	if ((m->http = evhttp_new(base)) == NULL) {
		(void)close(fd);
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	/* small and short: a scraper sends one GET with a few headers */
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	if (evhttp_set_cb(m->http, "/metrics", on_metrics, m) != 0) {
		(void)close(fd);
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	evhttp_set_gencb(m->http, on_other, m);
	if (evhttp_accept_socket_with_handle(m->http, fd) == NULL) {
		(void)close(fd);
		snprintf(err, errlen, "cannot serve the metrics socket");
		return BS_ERR_IO;
	}
	return 0;
}
