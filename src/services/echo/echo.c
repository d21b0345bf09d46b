/*
 * echo.c - boltseal.test.v1.EchoService/Echo: answers the text it was sent
 * and the caller's principal, and records the text in the audit record.
 * Test-only (served with test_services = on): the smallest complete service,
 * used by the RPC layer's integration tests and shown in
 * docs/development.md as the model of a new service.
 */
#include <string.h>

#include "boltseal/test/v1/echo.pb-c.h"
#include "services/services.h"

#define ECHO_TEXT_MAX 256

static void
echo(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__Test__V1__EchoRequest *r = (const Boltseal__Test__V1__EchoRequest *)msg;
	Boltseal__Test__V1__EchoResponse resp = BOLTSEAL__TEST__V1__ECHO_RESPONSE__INIT;

	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if (strlen(r->text) > ECHO_TEXT_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "text longer than %d bytes",
		    ECHO_TEXT_MAX);
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
	"boltseal.test.v1.EchoService", methods, sizeof(methods) / sizeof(methods[0]), 1,
};
