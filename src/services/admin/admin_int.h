/*
 * admin_int.h - what the files of the AdminService share (not a public
 * header): the service state, the handlers, and the store work helper.
 * mfa.c holds the second factor (enrolment, activation, status, reset and
 * the checker the RPC layer calls), proposals.c the approvals, policy_api.c
 * the policy's versions (GetPolicy, SetPolicy). Event loop
 * thread unless a comment says otherwise.
 */
#ifndef BS_ADMIN_INT_H
#define BS_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "boltseal/v1/admin.pb-c.h"
#include "exec/workq.h"
#include "rpc/rpc_service.h"

struct svc_ctx;

/* The HSM key that seals second-factor seeds (purpose admin, AES-256-GCM), made at start. */
#define ADMIN_MFA_KEY "mfa-seeds"
/* Store namespaces. */
#define ADMIN_NS_MFA "mfa"
#define ADMIN_NS_PROPOSALS "proposals"

struct admin_state {
	struct svc_ctx *svc;
	unsigned mfa_max_failures;      /* admin.mfa_max_failures */
	int mfa_window;                 /* admin.mfa_window: steps either side */
	unsigned long proposal_ttl_s;   /* admin.proposal_ttl_s */
};

/*
 * A piece of store work for a call: work() on a worker thread, done() back
 * on the loop; the job is the caller's (first member of its struct).
 */
struct admin_job {
	struct workq_job job;           /* first */
	struct rpc_call *call;
	struct admin_state *st;
	void (*work)(struct admin_job *j);
	void (*done)(struct admin_job *j);
	int rc;
};
/* Submits j (answers the call with the queue's refusal and returns -1 if it cannot). */
int admin_submit(struct admin_job *j);

/* mfa.c */
void admin_enroll_second_factor(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_activate_second_factor(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_get_second_factor(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_reset_second_factor(struct rpc_call *call, const ProtobufCMessage *msg);
/* The checker of x-boltseal-otp codes (rpc_second_factor.check; arg: the admin_state). */
void admin_check_second_factor(void *arg, struct rpc_call *call, const char *principal,
    const char *code);

/* proposals.c */
void admin_propose(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_list_proposals(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_get_proposal(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_approve(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_reject(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_execute(struct rpc_call *call, const ProtobufCMessage *msg);

/* policy_api.c */
void admin_get_policy(struct rpc_call *call, const ProtobufCMessage *msg);
void admin_set_policy(struct rpc_call *call, const ProtobufCMessage *msg);

#endif
