/*
 * cmd_health.c - `boltseal health [SERVICE]`: grpc.health.v1.Health/Check.
 * Prints the serving status; exits 0 only for SERVING. See docs/cli.md.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "grpc/health/v1/health.pb-c.h"

static int
cmd_health(struct cli_ctx *x, const struct args *a)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	const ProtobufCEnumValue *ev;
	struct out_json j;
	const char *st;
	int ret;

	req.service = (char *)(a->npos > 0 ? a->pos[0] : "");
	ret = call_unary(x, "/grpc.health.v1.Health/Check", &req.base,
	    &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	/* the names of the .proto: UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN */
	ev = protobuf_c_enum_descriptor_get_value(
	    &grpc__health__v1__health_check_response__serving_status__descriptor, resp->status);
	st = ev != NULL ? ev->name : "UNKNOWN";
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "service", req.service);
		out_json_str(&j, "status", st);
		out_json_close(&j);
	} else {
		printf("%s\n", st);
	}
	ret = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ?
	    CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

const struct cli_cmd cli_health_cmd = {
	.name = "health",
	.summary = "ask whether the server (or SERVICE) is serving; exit 1 if not",
	.usage = "[SERVICE]",
	.run = cmd_health,
	.spec = { NULL, 0, 1 },
};
