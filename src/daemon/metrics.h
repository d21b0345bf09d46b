/*
 * metrics.h - the Prometheus endpoint of boltsealed: on its own listener
 * (metrics_listen; off unless configured), GET /metrics answers the text
 * exposition format (version 0.0.4) with calls by method and status,
 * their latency histograms, connections and what refused them, TLS
 * handshake failures, HSM and work queue depth and job latency, the audit
 * log's size, uncovered tail, sync latency and write lag, every limit's
 * refusals, and when the server certificate, client CAs and CRLs expire. Everything runs on the event loop's thread: the
 * counters need no locks, and the gauges are read when scraped.
 */
#ifndef BS_DAEMON_METRICS_H
#define BS_DAEMON_METRICS_H

#include <stdint.h>

#include <event2/event.h>

#include "common/bs_error.h"
#include "common/bytebuf.h"

struct server;
struct svc_ctx;
struct metrics;
struct tls_material;

/* What the gauges are read from when scraped (borrowed; any may be NULL). */
struct metrics_sources {
	const struct server *srv;
	const struct svc_ctx *svc;
	struct tls_material *const *tls;   /* the daemon's current material (replaced on reload) */
};

int metrics_new(const struct metrics_sources *src, struct metrics **out) BS_WUR;
void metrics_free(struct metrics *m);

/* The dispatcher's observer (rpc_dispatcher_observe): one answered call. */
void metrics_observe(void *m, const char *method, int status, int64_t dur_us);

/*
 * Serves GET /metrics on the listening socket fd (server_bind; m owns it
 * from then on, even on error). 0, or BS_ERR_NOMEM / BS_ERR_IO with err set.
 */
int metrics_serve_fd(struct metrics *m, struct event_base *base, int fd, char *err,
    size_t errlen) BS_WUR;

/* Appends the exposition text to out (bytebuf_error says if it failed). For the unit test too. */
void metrics_render(const struct metrics *m, struct bytebuf *out);

#endif
