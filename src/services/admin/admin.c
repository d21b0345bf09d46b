/*
 * admin.c - the AdminService descriptor (proto/boltseal/v1/admin.proto):
 * its methods, its "admin" settings, and its start, which registers the
 * second-factor checker with the RPC layer. The work is in mfa.c and
 * proposals.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rpc/rpc.h"
#include "services/admin/admin_int.h"
#include "services/services.h"

static void
job_work(struct workq_job *job, void *ctx)
{
	struct admin_job *j = (struct admin_job *)job;

	(void)ctx;
	j->work(j);
}

static void
job_done(struct workq_job *job)
{
	struct admin_job *j = (struct admin_job *)job;

	j->done(j);
}

int
admin_submit(struct admin_job *j)
{
	struct svc_ctx *svc = j->st->svc;
	int rc;

	j->job.work = job_work;
	j->job.done = job_done;
	j->rc = 0;
	rc = svc->work != NULL ? workq_submit(svc->work, &j->job) : BS_ERR_UNAVAILABLE;
	if (rc != 0) {
		/* done() answers: the work did not run */
		j->rc = rc == BS_ERR_QUEUE_FULL ? BS_ERR_QUEUE_FULL : BS_ERR_UNAVAILABLE;
		j->done(j);
		return -1;
	}
	return 0;
}

static const struct rpc_method methods[] = {
	{ "EnrollSecondFactor", &boltseal__v1__enroll_second_factor_request__descriptor,
	    &boltseal__v1__enroll_second_factor_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_enroll_second_factor },
	{ "ActivateSecondFactor", &boltseal__v1__activate_second_factor_request__descriptor,
	    &boltseal__v1__activate_second_factor_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_activate_second_factor },
	{ "GetSecondFactor", &boltseal__v1__get_second_factor_request__descriptor,
	    &boltseal__v1__get_second_factor_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_get_second_factor },
	{ "ResetSecondFactor", &boltseal__v1__reset_second_factor_request__descriptor,
	    &boltseal__v1__reset_second_factor_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_reset_second_factor },
	{ "Propose", &boltseal__v1__propose_request__descriptor,
	    &boltseal__v1__propose_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_propose },
	{ "ListProposals", &boltseal__v1__list_proposals_request__descriptor,
	    &boltseal__v1__list_proposals_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_list_proposals },
	{ "GetProposal", &boltseal__v1__get_proposal_request__descriptor,
	    &boltseal__v1__get_proposal_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    admin_get_proposal },
	{ "Approve", &boltseal__v1__approve_request__descriptor,
	    &boltseal__v1__approve_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_approve },
	{ "Reject", &boltseal__v1__reject_request__descriptor,
	    &boltseal__v1__reject_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_reject },
	{ "Execute", &boltseal__v1__execute_request__descriptor,
	    &boltseal__v1__execute_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_execute },
	{ "GetPolicy", &boltseal__v1__get_policy_request__descriptor,
	    &boltseal__v1__get_policy_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_get_policy },
	{ "SetPolicy", &boltseal__v1__set_policy_request__descriptor,
	    &boltseal__v1__set_policy_response__descriptor, RPC_AUTHZ_POLICY, 0, admin_set_policy },
};

/* admin.* settings, in this order (values[] of init). */
static const struct rpc_setting settings[] = {
	/* consecutive wrong codes that lock a second factor */
	{ "mfa_max_failures", 1, 100, 5, 0 },
	/* time steps of 30 s accepted either side of now (RFC 6238 section 5.2) */
	{ "mfa_window", 0, 2, 1, 0 },
	/* how long a proposal waits for its approvals and execution */
	{ "proposal_ttl_s", 60, 604800, 86400, 0 },
};

static int
init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct svc_ctx *svc = env;
	struct admin_state *st = calloc(1, sizeof(*st));
	struct rpc_second_factor sf;

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	st->svc = svc;
	st->mfa_max_failures = (unsigned)values[0];
	st->mfa_window = (int)values[1];
	st->proposal_ttl_s = values[2];
	sf.check = admin_check_second_factor;
	sf.arg = st;
	if (svc->disp != NULL)
		rpc_dispatcher_set_second_factor(svc->disp, &sf);
	*state = st;
	return 0;
}

static void
fini(void *state)
{
	/* the dispatcher is gone by now (freed before the services stop) */
	free(state);
}

const struct rpc_service adminservice_service = {
	.name = "boltseal.v1.AdminService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "admin",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = init,
	.fini = fini,
};
