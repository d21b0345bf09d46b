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
 */
#include <stdlib.h>
#include <string.h>

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

static const struct rpc_method methods[] = {
	{ "Check", &grpc__health__v1__health_check_request__descriptor,
	    &grpc__health__v1__health_check_response__descriptor,
	    RPC_AUTHZ_ANY_PRINCIPAL, RPC_F_AUDIT_NOWAIT, check },
};

const struct rpc_service health_service = {
	.name = "grpc.health.v1.Health",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
};
