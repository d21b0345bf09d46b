/*
 * policy_api.c - AdminService/GetPolicy and SetPolicy: the authorization
 * policy's versions through the API (admin.proto, docs/admin.md "Policy
 * changes"). SetPolicy validates the text as `boltsealed -n` validates the
 * policy file (policy_parse against the schema of what this server serves,
 * policy_lint for warnings), stores it as the next version if base_version
 * is still the version in force, puts it in force (svc_ctx.policy_adopt)
 * and records a diff from the version it replaces. The store work runs on
 * the work queue (policy_versions.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "policy/policy.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/admin/admin_int.h"
#include "services/admin/policy_versions.h"
#include "services/services.h"

#define LINT_MAX 4096
#define WARNINGS_MAX 64

struct polreq {
	struct admin_job aj;                 /* first */
	int set;                             /* SetPolicy (else GetPolicy) */
	uint64_t version;                    /* Get: asked for (0: current); Set: base */
	uint64_t current;
	/* SetPolicy */
	char *text;
	struct policy *pol;                  /* parsed on the loop, adopted when stored */
	char me[POLICY_ID_MAX + 1];
	char sha[POLICY_SHA_HEX + 1];
	char file_sha[POLICY_SHA_HEX + 1];
	char lint[LINT_MAX];
	Boltseal__V1__PolicyVersion v;       /* Set: the new version */
	/* both */
	Boltseal__V1__PolicyVersion *got;    /* Get: the version read */
	char *diff;
};

static void
polreq_free(struct polreq *q)
{
	policy_free(q->pol);
	free(q->text);
	free(q->diff);
	policy_version_free(q->got);
	free(q);
}

/* The diff from version v - 1 to got (v >= 2), or NULL (q->diff stays NULL). */
static void
diff_from_previous(struct polreq *q, struct store *st, const Boltseal__V1__PolicyVersion *got)
{
	Boltseal__V1__PolicyVersion *prev = NULL;

	if (got->version < 2 || policy_versions_get(st, got->version - 1, &prev, NULL) != 0)
		return;
	q->diff = policy_diff(prev->policy_text, strlen(prev->policy_text), prev->version,
	    got->policy_text, strlen(got->policy_text), got->version, POLICY_DIFF_MAX);
	policy_version_free(prev);
}

/* Worker thread. */
static void
pol_work(struct admin_job *j)
{
	struct polreq *q = (struct polreq *)j;
	struct store *st = j->st->svc->store;
	Boltseal__V1__PolicyVersion *prev = NULL;

	if (!q->set) {
		j->rc = policy_versions_get(st, q->version, &q->got, &q->current);
		if (j->rc == 0)
			diff_from_previous(q, st, q->got);
		return;
	}
	j->rc = policy_versions_append(st, q->version, &q->v, q->file_sha, &prev, &q->current);
	if (j->rc == 0 && prev != NULL)
		q->diff = policy_diff(prev->policy_text, strlen(prev->policy_text), prev->version,
		    q->text, strlen(q->text), q->v.version, POLICY_DIFF_MAX);
	policy_version_free(prev);
}

static void
get_done(struct polreq *q)
{
	struct rpc_call *call = q->aj.call;
	Boltseal__V1__GetPolicyResponse r = BOLTSEAL__V1__GET_POLICY_RESPONSE__INIT;

	if (q->aj.rc == BS_ERR_NOT_FOUND)
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no policy version %" PRIu64
		    " (the version in force is %" PRIu64 ")", q->version, q->current);
	else if (q->aj.rc != 0)
		rpc_call_fail(call, rpc_status_from_err(q->aj.rc), "cannot read the policy "
		    "versions: %s", bs_strerror(q->aj.rc));
	else {
		r.policy = q->got;
		r.current_version = q->current;
		r.diff = q->diff != NULL ? q->diff : (char *)"";
		rpc_call_finish_pb(call, &r.base);
	}
}

/* Splits the lint lines into warnings (at most WARNINGS_MAX). */
static size_t
split_lines(char *text, char **out, size_t max)
{
	size_t n = 0;
	char *save = NULL, *line;

	for (line = strtok_r(text, "\n", &save); line != NULL && n < max;
	    line = strtok_r(NULL, "\n", &save))
		out[n++] = line;
	return n;
}

static void
set_done(struct polreq *q)
{
	struct rpc_call *call = q->aj.call;
	struct svc_ctx *svc = q->aj.st->svc;
	Boltseal__V1__SetPolicyResponse r = BOLTSEAL__V1__SET_POLICY_RESPONSE__INIT;
	char *warnings[WARNINGS_MAX], ver[24];

	if (q->aj.rc == BS_ERR_PRECONDITION) {
		rpc_call_fail(call, GRPC_STATUS_ABORTED, "the policy in force is version %" PRIu64
		    ", not base_version %" PRIu64 ": read it again (GetPolicy) and base the change "
		    "on it", q->current, q->version);
		return;
	}
	if (q->aj.rc == BS_ERR_TOO_BIG) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "policy_text is too large to be "
		    "kept as a version");
		return;
	}
	if (q->aj.rc != 0) {
		rpc_call_fail(call, rpc_status_from_err(q->aj.rc), "cannot store the policy: %s",
		    bs_strerror(q->aj.rc));
		return;
	}
	/* stored: in force from now on (the daemon's next start agrees) */
	(void)svc->policy_adopt(svc->policy_arg, q->pol, q->v.version);
	q->pol = NULL;
	snprintf(ver, sizeof(ver), "%" PRIu64, q->v.version);
	rpc_call_audit_event(call, "policy_set");
	/* the version is stored and in force: the answer is OK whatever happens here */
	if (rpc_call_audit_field(call, "version", ver) != 0 ||
	    rpc_call_audit_field(call, "diff", q->diff != NULL ? q->diff : "(not available)") != 0)
		bs_log(BS_LOG_ERROR, "out of memory: the policy_set record lacks its version or diff",
		    "version", ver, NULL);
	q->v.policy_text = (char *)"";   /* the caller sent it; kept small for proposals' results */
	r.policy = &q->v;
	r.n_warnings = split_lines(q->lint, warnings, WARNINGS_MAX);
	r.warnings = warnings;
	r.diff = q->diff != NULL ? q->diff : (char *)"";
	rpc_call_finish_pb(call, &r.base);
}

/* Loop thread: answers, then frees. */
static void
pol_done(struct admin_job *j)
{
	struct polreq *q = (struct polreq *)j;

	if (q->set)
		set_done(q);
	else
		get_done(q);
	polreq_free(q);
}

static struct polreq *
polreq_new(struct rpc_call *call, int set)
{
	struct polreq *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	q->aj.call = call;
	q->aj.st = rpc_call_service_state(call);
	q->aj.work = pol_work;
	q->aj.done = pol_done;
	q->set = set;
	return q;
}

void
admin_get_policy(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetPolicyRequest *r = (const Boltseal__V1__GetPolicyRequest *)msg;
	struct polreq *q;

	rpc_call_audit_target(call, "policy");
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0) || (q = polreq_new(call, 0)) == NULL)
		return;
	q->version = r->version;
	(void)admin_submit(&q->aj);
}

void
admin_set_policy(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetPolicyRequest *r = (const Boltseal__V1__SetPolicyRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	struct rpc_policy_schema sc;
	const char *me = rpc_call_principal(call);
	struct polreq *q;
	size_t len = strlen(r->policy_text);
	char base[24];
	char err[4096] = "too many methods for a policy schema";

	rpc_call_audit_target(call, "policy");
	snprintf(base, sizeof(base), "%" PRIu64, r->base_version);
	if (rpc_call_audit_field(call, "base_version", base) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if (svc->policy_adopt == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "policy changes are not available here");
		return;
	}
	if (len == 0 || len > POLICY_API_TEXT_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "policy_text: 1 to %u bytes",
		    POLICY_API_TEXT_MAX);
		return;
	}
	if (r->base_version == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "base_version: the version in "
		    "force (GetPolicy's current_version), which this text replaces");
		return;
	}
	if ((q = polreq_new(call, 1)) == NULL)
		return;
	if (rpc_registry_policy_schema(svc->registry, &sc) != 0 ||
	    policy_parse("policy_text", r->policy_text, len, &sc.schema, &q->pol, err,
	    sizeof(err)) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "the policy does not load:\n%s",
		    err);
		polreq_free(q);
		return;
	}
	if ((q->text = strdup(r->policy_text)) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		polreq_free(q);
		return;
	}
	(void)policy_lint(q->pol, q->lint, sizeof(q->lint));
	snprintf(q->me, sizeof(q->me), "%s", me != NULL ? me : "");
	policy_sha256_hex(q->text, len, q->sha);
	if (rpc_call_audit_field(call, "sha256", q->sha) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		polreq_free(q);
		return;
	}
	q->version = r->base_version;
	boltseal__v1__policy_version__init(&q->v);
	q->v.policy_text = q->text;
	q->v.sha256 = q->sha;
	q->v.source = BOLTSEAL__V1__POLICY_SOURCE__POLICY_SOURCE_API;
	q->v.set_by = q->me;
	q->v.set_time_unix = (int64_t)time(NULL);
	(void)admin_submit(&q->aj);
}
