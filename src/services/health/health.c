/*
 * health.c - grpc.health.v1.Health/Check. "" (the whole server) and every
 * service the server registers are SERVING while the HSM answers (each
 * Check sends a PROBE through the key door: C_GetSessionInfo on an HSM
 * worker session), the audit log can be written, every CRL is present and
 * current (fail closed: a stale CRL makes the server NOT_SERVING); a check
 * naming a service also asks that service (its descriptor's serving hook:
 * the AuditService serves only where audit is on). If
 * the probe cannot be queued (queue full) the last known HSM state is
 * reported. Unknown service names get
 * NOT_FOUND, as the health protocol requires. Health is exempt from the
 * policy: any caller whose certificate maps to a principal may ask.
 *
 * Watch (server streaming) sends the status now, then every change: while
 * anyone watches, a timer each WATCH_TICK_MS re-reads the CRL and audit
 * state and probes the HSM as Check does, and a watcher whose status
 * changed gets a message. An unknown service is SERVICE_UNKNOWN (the call
 * stays open, as the protocol says). When the daemon stops, watchers get
 * NOT_SERVING and their calls end OK.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit/auditlog.h"
#include "grpc/health/v1/health.pb-c.h"
#include "keyops/keyclient.h"
#include "rpc/rpc_status.h"
#include "services/services.h"

struct probe {
	struct rpc_call *call;
	struct svc_ctx *svc;
	const char *service;        /* in the decoded request, which the call owns */
};

/*
 * Answers SERVING when the HSM is (serving), every CRL is current, the
 * audit log can be written, and the service asked about (none for "", the
 * server as a whole) says it can serve.
 */
static void
respond(struct rpc_call *call, int serving, const char *service)
{
	struct svc_ctx *svc = rpc_call_svc(call);

	if (!svc->tls_ready || (svc->audit != NULL && !audit_log_healthy(svc->audit)) ||
	    (service[0] != '\0' && rpc_registry_serving(svc->registry, service, svc) != 1))
		serving = 0;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	rpc_call_finish_pb(call, &resp.base);
}

static void
probed(void *arg, struct keyop_answer *a)
{
	struct probe *p = arg;
	int alive = a->rc == 0 && a->alive;

	/* a probe cancelled because the caller left says nothing about the HSM */
	if (a->rc != BS_ERR_CANCELLED)
		svc_note_hsm_result(p->svc, alive ? 0 : BS_ERR_HSM);
	respond(p->call, alive && !p->svc->shutting_down, p->service);
	free(p);
}

static void
probe_cancel(void *arg)
{
	keyclient_cancel(arg);
}

static void
check(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Grpc__Health__V1__HealthCheckRequest *r =
	    (const Grpc__Health__V1__HealthCheckRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	struct keyop_request req;
	struct keyclient_op *op = NULL;
	struct probe *p;

	if (r->service[0] != '\0' && !rpc_registry_has_service(svc->registry, r->service)) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service");
		return;
	}
	if (svc->shutting_down) {
		respond(call, 0, r->service);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		respond(call, svc->hsm_healthy, r->service);
		return;
	}
	p->call = call;
	p->svc = svc;
	p->service = r->service;
	memset(&req, 0, sizeof(req));
	req.type = KEYOP_PROBE;
	if (keyclient_submit(svc->keys, &req, probed, p, &op) != 0) {
		free(p);
		respond(call, svc->hsm_healthy, r->service);
		return;
	}
	rpc_call_on_cancel(call, probe_cancel, op);
}

/* ---- Watch ------------------------------------------------------------------ */

#define WATCH_TICK_MS 1000
#define WATCH_SERVICE_MAX 256

struct watcher {
	TAILQ_ENTRY(watcher) link;
	struct rpc_call *call;
	char service[WATCH_SERVICE_MAX];
	int last;                   /* the status last sent */
	unsigned pass;              /* the watch_notify pass that saw it last */
	int busy;                   /* inside watch_send: a cancel then only marks it */
	int gone;                   /* the caller left while busy */
};

/* Everyone watching (the daemon has one svc_ctx); the timer runs while any does. */
static TAILQ_HEAD(, watcher) watchers = TAILQ_HEAD_INITIALIZER(watchers);
static struct event *watch_tick;
static struct keyclient_op *watch_probe;   /* the tick's HSM probe in flight, or NULL */

/* What a watcher of service would be told now. */
static int
watch_status(struct svc_ctx *svc, const char *service)
{
	if (service[0] != '\0' && !rpc_registry_has_service(svc->registry, service))
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	if (!svc->hsm_healthy || svc->shutting_down || !svc->tls_ready ||
	    (svc->audit != NULL && !audit_log_healthy(svc->audit)) ||
	    (service[0] != '\0' && rpc_registry_serving(svc->registry, service, svc) != 1))
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

/*
 * Sends status. Sending flushes the connection, which may close it and so
 * cancel this watch (watch_cancel): w stays alive until the send returns,
 * then the caller ends it. 0, or nonzero when the watch must end.
 */
static int
watch_send(struct watcher *w, int status)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int rc;

	resp.status = status;
	w->last = status;
	w->busy = 1;
	rc = rpc_call_send_pb(w->call, &resp.base);
	w->busy = 0;
	return w->gone ? BS_ERR_CANCELLED : rc;
}

/* Ends a watcher's call (it is unlinked first) with status. */
static void
watch_end(struct watcher *w, int status, const char *message)
{
	TAILQ_REMOVE(&watchers, w, link);
	rpc_call_finish(w->call, status, message, NULL, 0);
	free(w);
	if (TAILQ_EMPTY(&watchers) && watch_tick != NULL)
		event_del(watch_tick);
}

/*
 * Tells each watcher its status if it changed; ends every watch when the
 * daemon stops. Sending or ending may close a connection and so end other
 * watches (watch_cancel): after each, the walk starts again from the head,
 * skipping those this pass has seen.
 */
static void
watch_notify(struct svc_ctx *svc)
{
	static unsigned pass;
	struct watcher *w;
	int st, rc;

	pass++;
again:
	TAILQ_FOREACH(w, &watchers, link) {
		if (w->pass == pass)
			continue;
		w->pass = pass;
		st = watch_status(svc, w->service);
		if (st == w->last && !svc->shutting_down)
			continue;
		rc = st != w->last ? watch_send(w, st) : 0;
		if (rc != 0)
			watch_end(w, rc == BS_ERR_CANCELLED ? GRPC_STATUS_CANCELLED :
			    GRPC_STATUS_UNAVAILABLE, rc == BS_ERR_CANCELLED ? "the watch ended" :
			    "cannot send the status");
		else if (svc->shutting_down)
			watch_end(w, GRPC_STATUS_OK, NULL);
		goto again;
	}
}

static void
watch_probed(void *arg, struct keyop_answer *a)
{
	struct svc_ctx *svc = arg;

	watch_probe = NULL;
	if (a->rc != BS_ERR_CANCELLED)
		svc_note_hsm_result(svc, a->rc == 0 && a->alive ? 0 : BS_ERR_HSM);
	watch_notify(svc);
}

static void
watch_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_ctx *svc = arg;
	struct keyop_request req;

	(void)fd;
	(void)what;
	watch_notify(svc);
	if (TAILQ_EMPTY(&watchers) || watch_probe != NULL || svc->shutting_down)
		return;
	memset(&req, 0, sizeof(req));
	req.type = KEYOP_PROBE;
	if (keyclient_submit(svc->keys, &req, watch_probed, svc, &watch_probe) != 0)
		watch_probe = NULL;   /* queue full: the next tick tries again */
}

/* The caller left (or its deadline passed): the watch ends (after a send in progress). */
static void
watch_cancel(void *arg)
{
	struct watcher *w = arg;

	if (w->busy) {
		w->gone = 1;
		return;
	}
	watch_end(w, GRPC_STATUS_CANCELLED, "the watch ended");
}

static void
watch(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Grpc__Health__V1__HealthCheckRequest *r =
	    (const Grpc__Health__V1__HealthCheckRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	struct timeval tv = { WATCH_TICK_MS / 1000, (WATCH_TICK_MS % 1000) * 1000 };
	struct watcher *w;

	if (strlen(r->service) >= WATCH_SERVICE_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "service name too long");
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	w->call = call;
	snprintf(w->service, sizeof(w->service), "%s", r->service);
	TAILQ_INSERT_TAIL(&watchers, w, link);
	rpc_call_on_cancel(call, watch_cancel, w);
	if (watch_send(w, watch_status(svc, w->service)) != 0) {
		watch_end(w, w->gone ? GRPC_STATUS_CANCELLED : GRPC_STATUS_UNAVAILABLE,
		    "cannot stream to this caller");
		return;
	}
	/* without a loop (unit tests) or while stopping: the status now, and done */
	if (svc->base == NULL || svc->shutting_down) {
		watch_end(w, GRPC_STATUS_OK, NULL);
		return;
	}
	if (watch_tick == NULL &&
	    (watch_tick = event_new(svc->base, -1, EV_PERSIST, watch_tick_cb, svc)) == NULL) {
		watch_end(w, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (!event_pending(watch_tick, EV_TIMEOUT, NULL))
		(void)event_add(watch_tick, &tv);
}

/* At stop: every watch ends, the timer goes. */
static void
health_fini(void *state)
{
	struct watcher *w;

	(void)state;
	while ((w = TAILQ_FIRST(&watchers)) != NULL)
		watch_end(w, GRPC_STATUS_UNAVAILABLE, "the server is stopping");
	if (watch_tick != NULL)
		event_free(watch_tick);
	watch_tick = NULL;
}

static const struct rpc_method methods[] = {
	{ "Check", &grpc__health__v1__health_check_request__descriptor,
	    &grpc__health__v1__health_check_response__descriptor,
	    RPC_AUTHZ_ANY_PRINCIPAL, RPC_F_AUDIT_NOWAIT, check },
	{ "Watch", &grpc__health__v1__health_check_request__descriptor,
	    &grpc__health__v1__health_check_response__descriptor,
	    RPC_AUTHZ_ANY_PRINCIPAL, RPC_F_AUDIT_NOWAIT | RPC_F_STREAM, watch },
};

const struct rpc_service health_service = {
	.name = "grpc.health.v1.Health",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.fini = health_fini,
};
