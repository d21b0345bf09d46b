/*
 * echo.c - boltseal.test.v1.EchoService/Echo: answers the text it was sent
 * and the caller's principal, and records the text in the audit record.
 * Test-only (served with test_services = on): the smallest complete service,
 * with one setting (echo.max_text, its configuration section) and a state
 * made at start, used by the RPC layer's tests and shown in
 * docs/development.md as the model of a new service.
 */
#include <stdlib.h>
#include <string.h>

#include "boltseal/test/v1/echo.pb-c.h"
#include "services/services.h"

/* The settings of the "echo" section, in this order. */
static const struct rpc_setting settings[] = {
	{ "max_text", 1, 4096, 256, 0 },         /* echo.max_text: longest text echoed, bytes */
};

struct echo_state {
	size_t max_text;
};

static int
echo_init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct echo_state *st;

	(void)env;
	(void)err;
	(void)errlen;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return BS_ERR_NOMEM;
	st->max_text = values[0];
	*state = st;
	return 0;
}

static void
echo_fini(void *state)
{
	free(state);
}

static void
echo(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__Test__V1__EchoRequest *r = (const Boltseal__Test__V1__EchoRequest *)msg;
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;
	const struct echo_state *st = rpc_call_service_state(call);

	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if (st == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "echo service not started");
		return;
	}
	if (strlen(r->text) > st->max_text) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "text longer than %zu bytes",
		    st->max_text);
		return;
	}
	if (rpc_call_audit_field(call, "echo.text", r->text) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	resp.text = r->text;
	resp.principal = (char *)rpc_call_principal(call);
	rpc_call_finish_pb(call, &resp.base);
}

static const struct rpc_method methods[] = {
	{ "Echo", &boltseal__test__v1__echo_request__descriptor,
	    &boltseal__test__v1__echo_response__descriptor, RPC_AUTHZ_POLICY, 0, echo },
};

const struct rpc_service echo_service = {
	.name = "boltseal.test.v1.EchoService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.test_only = 1,
	.section = "echo",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = echo_init,
	.fini = echo_fini,
};
