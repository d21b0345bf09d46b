/*
 * cmd_policy.c - the `boltseal policy` commands (AdminService/GetPolicy,
 * SetPolicy; docs/cli.md "Policy versions"):
 *   policy show [--version N] [--diff]     a version (default: the one in force)
 *   policy set FILE [--base-version N]     replace it (the seed policy wants
 *                                          approvals: see propose policy-set)
 *   propose policy-set FILE [--base-version N] ...   (a row of cmd_admin.c)
 * and the diff `proposals show` prints for a SetPolicy proposal, made here
 * from the exact request bytes whose hash the approver checks, against the
 * version the proposal replaces.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/v1/admin.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "services/admin/policy_versions.h"

#define AS "/boltseal.v1.AdminService/"
#define SET_POLICY "boltseal.v1.AdminService/SetPolicy"

static const char *
source_name(int s)
{
	switch (s) {
	case BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_FILE: return "file";
	case BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_API: return "SetPolicy";
	default: return "unknown";
	}
}

/* GetPolicy(version): 0, or an exit status (printed). */
static int
get_policy(struct cli_ctx *x, uint64_t version, Boltseal__V1__GetPolicyResponse **out)
{
	Boltseal__V1__GetPolicyRequest req = BOLTSEAL__V1__GET_POLICY_REQUEST__INIT;

	req.version = version;
	return call_unary(x, AS "GetPolicy", &req.base,
	    &boltseal__v1__get_policy_response__descriptor, (ProtobufCMessage **)out);
}

/* --version N / --base-version N: a positive integer, or 0 when absent. */
static int
version_opt(struct cli_ctx *x, const struct args *a, const char *name, uint64_t *out)
{
	const char *v = args_get(a, name);
	unsigned long n = 0;

	*out = 0;
	if (v != NULL && args_uint(v, 1, ULONG_MAX, &n) != 0)
		return out_usage(x->cmd, "--%s must be a positive integer", name);
	*out = n;
	return 0;
}

static void
print_version(const Boltseal__V1__PolicyVersion *v, uint64_t current)
{
	char n[48];

	snprintf(n, sizeof(n), "%" PRIu64 "%s", v->version, v->version == current ?
	    " (in force)" : "");
	out_field("version:", n);
	out_field("source:", source_name(v->source));
	if (v->set_by[0] != '\0')
		out_field("set by:", v->set_by);
	out_field_time("set:", v->set_time_unix);
	out_field("sha256:", v->sha256);
}

static int
cmd_policy_show(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetPolicyResponse *resp = NULL;
	const Boltseal__V1__PolicyVersion *v;
	struct out_json j;
	uint64_t version;
	int ret;

	if ((ret = version_opt(x, a, "version", &version)) != 0)
		return ret;
	if ((ret = get_policy(x, version, &resp)) != 0)
		return ret;
	if ((v = resp->policy) == NULL) {
		out_err(x->cmd, "malformed GetPolicyResponse from server (no policy)");
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return CLI_EXIT_CONN;
	}
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_uint(&j, "version", v->version);
		out_json_uint(&j, "current_version", resp->current_version);
		out_json_str(&j, "source", source_name(v->source));
		out_json_str(&j, "set_by", v->set_by);
		out_json_int(&j, "set_time_unix", v->set_time_unix);
		out_json_str(&j, "sha256", v->sha256);
		out_json_str(&j, "file_sha256", v->file_sha256);
		out_json_str(&j, "policy_text", v->policy_text);
		out_json_str(&j, "diff", resp->diff);
		out_json_close(&j);
	} else if (args_get(a, "diff") != NULL) {
		print_version(v, resp->current_version);
		printf("\n");
		out_safe_text(stdout, resp->diff[0] != '\0' ? resp->diff :
		    "(no earlier version)\n");
	} else {
		print_version(v, resp->current_version);
		printf("\n");
		out_safe_text(stdout, v->policy_text);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/*
 * The SetPolicy request of FILE on base (0: the version in force, asked
 * for). *text: the file (the caller frees it; req points into it).
 */
static int
build_set(struct cli_ctx *x, const char *path, uint64_t base,
    Boltseal__V1__SetPolicyRequest *req, uint8_t **text)
{
	Boltseal__V1__GetPolicyResponse *cur = NULL;
	size_t len;
	int ret;

	if ((ret = input_read_file(x->cmd, path, POLICY_API_TEXT_MAX, text, &len)) != 0)
		return ret;
	if (len == 0 || memchr(*text, '\0', len) != NULL) {
		free(*text);
		*text = NULL;
		return out_usage(x->cmd, "%s: not a policy text (empty, or a NUL byte)", path);
	}
	if (base == 0) {
		if ((ret = get_policy(x, 0, &cur)) != 0) {
			free(*text);
			*text = NULL;
			return ret;
		}
		base = cur->current_version;
		protobuf_c_message_free_unpacked(&cur->base, NULL);
	}
	boltseal__v1__set_policy_request__init(req);
	req->policy_text = (char *)*text;
	req->base_version = base;
	return 0;
}

static int
cmd_policy_set(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetPolicyRequest req;
	Boltseal__V1__SetPolicyResponse *resp = NULL;
	uint8_t *text = NULL;
	uint64_t base;
	char hint[600], *msg = NULL;
	int st = 0, ret;

	if ((ret = version_opt(x, a, "base-version", &base)) != 0 ||
	    (ret = build_set(x, a->pos[0], base, &req, &text)) != 0)
		return ret;
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, AS "SetPolicy", &req.base,
	    &boltseal__v1__set_policy_response__descriptor, (ProtobufCMessage **)&resp, &st, &msg);
	if (ret != 0) {
		snprintf(hint, sizeof(hint), "propose policy-set %s --base-version %" PRIu64,
		    a->pos[0], req.base_version);
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		free(text);
		return ret;
	}
	for (size_t i = 0; i < resp->n_warnings; i++)
		out_err(x->cmd, "warning: %s", resp->warnings[i]);
	if (resp->policy != NULL && !x->json) {
		print_version(resp->policy, resp->policy->version);
		printf("\n");
		out_safe_text(stdout, resp->diff);
	} else if (resp->policy != NULL) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_uint(&j, "version", resp->policy->version);
		out_json_str(&j, "sha256", resp->policy->sha256);
		out_json_str(&j, "diff", resp->diff);
		out_json_close(&j);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(text);
	return 0;
}

int
cli_propose_policy_set(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetPolicyRequest req;
	uint8_t *text = NULL;
	uint64_t base;
	int ret;

	if ((ret = version_opt(x, a, "base-version", &base)) != 0 ||
	    (ret = build_set(x, a->pos[0], base, &req, &text)) != 0)
		return ret;
	ret = cli_propose(x, a, SET_POLICY, &req.base);
	free(text);
	return ret;
}

int
cli_policy_print_change(struct cli_ctx *x, const uint8_t *reqb, size_t len)
{
	Boltseal__V1__SetPolicyRequest *req;
	Boltseal__V1__GetPolicyResponse *base = NULL;
	char *diff;
	int ret;

	if ((req = boltseal__v1__set_policy_request__unpack(NULL, len, reqb)) == NULL) {
		out_err(x->cmd, "the proposed SetPolicy request does not decode");
		return CLI_EXIT_CONN;
	}
	if ((ret = get_policy(x, req->base_version, &base)) != 0 || base->policy == NULL) {
		if (ret == 0)
			ret = CLI_EXIT_CONN;
		goto out;
	}
	diff = policy_diff(base->policy->policy_text, strlen(base->policy->policy_text),
	    base->policy->version, req->policy_text, strlen(req->policy_text),
	    base->policy->version + 1, SIZE_MAX);
	if (diff == NULL) {
		out_err(x->cmd, "cannot compute the diff");
		ret = CLI_EXIT_CONN;
		goto out;
	}
	printf("\nThe change, from policy version %" PRIu64 " (the version in force is %" PRIu64
	    "%s):\n", base->policy->version, base->current_version,
	    base->current_version != req->base_version ? ": this proposal can no longer execute" :
	    "");
	out_safe_text(stdout, diff[0] != '\0' ? diff : "(no change)\n");
	free(diff);
out:
	if (base != NULL)
		protobuf_c_message_free_unpacked(&base->base, NULL);
	boltseal__v1__set_policy_request__free_unpacked(req, NULL);
	return ret;
}

static const struct args_opt show_opts[] = {
	{ "version", 0, ARGS_VALUE }, { "diff", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt set_opts[] = {
	{ "base-version", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd policy_cmds[] = {
	{ .name = "show", .run = cmd_policy_show,
	  .summary = "a version of the authorization policy (default: in force), or its diff "
	      "(GetPolicy)",
	  .usage = "[--version N] [--diff]", .spec = { show_opts, 0, 0 } },
	{ .name = "set", .run = cmd_policy_set,
	  .summary = "replace the policy with FILE; needs approvals: see 'propose policy-set' "
	      "(SetPolicy)",
	  .usage = "FILE [--base-version N] [--otp CODE]", .spec = { set_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_policy_cmd = {
	.name = "policy",
	.summary = "the authorization policy's versions: show, set (boltseal.v1.AdminService)",
	.usage = "COMMAND [ARGS]",
	.sub = policy_cmds,
};
