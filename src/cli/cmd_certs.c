/*
 * cmd_certs.c - the `boltseal ca` commands (boltseal.v1.CertificateService;
 * docs/cli.md "Certificate authorities", docs/identity.md):
 *   ca create KEY --common-name CN [--days N]   the CA certificate of a ca key
 *   ca show KEY [--out FILE]                    the kept certificate
 *   propose ca-create KEY --common-name CN ...  (a row of cmd_admin.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/v1/certs.pb-c.h"
#include "cli/cli.h"
#include "cli/output.h"

#define CS "/boltseal.v1.CertificateService/"
#define CREATE_METHOD "boltseal.v1.CertificateService/CreateAuthority"

static void
print_authority(struct cli_ctx *x, const Boltseal__V1__Authority *a, int pem)
{
	struct out_json j;
	char n[16];

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key_name", a->key_name);
		out_json_uint(&j, "key_version", a->key_version);
		out_json_str(&j, "subject", a->subject);
		out_json_str(&j, "serial_hex", a->serial_hex);
		out_json_int(&j, "not_before_unix", a->not_before_unix);
		out_json_int(&j, "not_after_unix", a->not_after_unix);
		out_json_str(&j, "sha256", a->sha256);
		out_json_str(&j, "certificate_pem", a->certificate_pem);
		out_json_close(&j);
		return;
	}
	out_field("key:", a->key_name);
	snprintf(n, sizeof(n), "%u", a->key_version);
	out_field("key version:", n);
	out_field("subject:", a->subject);
	out_field("serial:", a->serial_hex);
	out_field_time("not before:", a->not_before_unix);
	out_field_time("not after:", a->not_after_unix);
	out_field("sha256:", a->sha256);
	if (pem) {
		printf("\n");
		out_safe_text(stdout, a->certificate_pem);
	}
}

/* The CreateAuthority request of KEY, --common-name and --days (0: the server's default). */
static int
build_create(struct cli_ctx *x, const struct args *a, Boltseal__V1__CreateAuthorityRequest *r)
{
	const char *cn = args_get(a, "common-name"), *d = args_get(a, "days");
	unsigned long days = 0;

	if (cn == NULL)
		return out_usage(x->cmd, "--common-name CN is required (the CA's name)");
	if (d != NULL && args_uint(d, 1, 7300, &days) != 0)
		return out_usage(x->cmd, "--days must be 1 to 7300");
	boltseal__v1__create_authority_request__init(r);
	r->key_name = (char *)a->pos[0];
	r->common_name = (char *)cn;
	r->lifetime_days = (uint32_t)days;
	return 0;
}

static int
cmd_ca_create(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateAuthorityRequest req;
	Boltseal__V1__CreateAuthorityResponse *resp = NULL;
	const char *d = args_get(a, "days");
	char hint[512], *msg = NULL;
	int st = 0, ret;

	if ((ret = build_create(x, a, &req)) != 0)
		return ret;
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, CS "CreateAuthority", &req.base,
	    &boltseal__v1__create_authority_response__descriptor, (ProtobufCMessage **)&resp, &st,
	    &msg);
	if (ret != 0) {
		snprintf(hint, sizeof(hint), "propose ca-create %s --common-name '%s'%s%s", a->pos[0],
		    req.common_name, d != NULL ? " --days " : "", d != NULL ? d : "");
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		return ret;
	}
	if (resp->authority != NULL)
		print_authority(x, resp->authority, 1);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_ca_show(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetAuthorityRequest req = BOLTSEAL__V1__GET_AUTHORITY_REQUEST__INIT;
	Boltseal__V1__GetAuthorityResponse *resp = NULL;
	const char *out = args_get(a, "out");
	int ret;

	req.key_name = (char *)a->pos[0];
	ret = call_unary(x, CS "GetAuthority", &req.base,
	    &boltseal__v1__get_authority_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (resp->authority == NULL) {
		out_err(x->cmd, "malformed GetAuthorityResponse from server (no authority)");
		ret = CLI_EXIT_CONN;
	} else if (out != NULL) {
		ret = out_write_file(x->cmd, out, (const uint8_t *)resp->authority->certificate_pem,
		    strlen(resp->authority->certificate_pem));
		if (ret == 0 && strcmp(out, "-") != 0)
			print_authority(x, resp->authority, 0);
	} else {
		print_authority(x, resp->authority, 1);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

int
cli_propose_ca_create(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateAuthorityRequest req;
	int ret;

	if ((ret = build_create(x, a, &req)) != 0)
		return ret;
	return cli_propose(x, a, CREATE_METHOD, &req.base);
}

static const struct args_opt create_opts[] = {
	{ "common-name", 0, ARGS_VALUE }, { "days", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt show_opts[] = { { "out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd ca_cmds[] = {
	{ .name = "create", .run = cmd_ca_create,
	  .summary = "the self-signed CA certificate of a ca key, signed in the HSM; needs "
	      "approvals: see 'propose ca-create' (CreateAuthority)",
	  .usage = "KEY --common-name CN [--days N] [--otp CODE]", .spec = { create_opts, 1, 1 } },
	{ .name = "show", .run = cmd_ca_show,
	  .summary = "a CA key's certificate; --out writes the PEM to a file (GetAuthority)",
	  .usage = "KEY [--out FILE]", .spec = { show_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_ca_cmd = {
	.name = "ca",
	.summary = "certificate authorities whose keys stay in the HSM: create, show "
	    "(boltseal.v1.CertificateService)",
	.usage = "COMMAND [ARGS]",
	.sub = ca_cmds,
};
