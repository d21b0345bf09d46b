/*
 * proposals.c - M-of-N approvals bound to the exact request (admin.proto):
 * Propose, ListProposals, GetProposal, Approve, Reject and Execute.
 *
 * A proposal is one versioned store row (namespace "proposals", id: 12 hex
 * digits of the creation time in milliseconds then 16 random ones, so ids
 * sort by age), holding the Proposal message packed by protobuf-c (without
 * request_text, which is rendered from the request when read). Every
 * change (a vote, a rejection, the start and the result of the execution)
 * is a compare-and-set of the row, so two approvers at once cannot lose
 * each other's vote and a proposal runs at most once: Execute first marks
 * it (execute_time_unix set while PENDING), then runs the call, then keeps
 * its answer (EXECUTED). A crash between the two leaves it marked; it is
 * then refused and must be proposed again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/hex.h"
#include "common/log.h"
#include "formats/pb_strings.h"
#include "formats/pb_text.h"
#include "policy/policy.h"
#include "rpc/pb_scan.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/admin/admin_int.h"
#include "services/services.h"
#include "store/store.h"

#define ID_LEN 28
#define SHA_HEX (2 * SHA256_DIGEST_LENGTH)
#define REQUEST_MAX (24 * 1024)    /* a SetPolicy text (POLICY_API_TEXT_MAX) fits */
#define RESPONSE_KEEP_MAX (32 * 1024)
#define DESCRIPTION_MAX 512
#define TTL_MAX 604800u
#define LIST_DEFAULT 50
#define LIST_MAX 200
#define HASH_PREFIX "boltseal proposal v1\n"

enum prop_kind { K_PROPOSE, K_LIST, K_GET, K_APPROVE, K_REJECT, K_EXECUTE };

struct prop {
	struct admin_job aj;            /* first */
	enum prop_kind kind;
	char id[ID_LEN + 1];
	char me[POLICY_ID_MAX + 1];
	char sha[SHA_HEX + 1];          /* APPROVE/REJECT: the hash the caller saw */
	char *reason;                   /* REJECT */
	int64_t now;
	int stage;                      /* 0: read (or insert for PROPOSE), 1: write */
	uint8_t *row;                   /* read: the row; write: the new row */
	size_t row_len;
	uint64_t ver;
	/* LIST */
	int include_closed;
	size_t page;
	char after[ID_LEN + 1];
	uint8_t **rows;
	size_t *lens;
	size_t nrows;
	int more;
	/* the answer */
	int status;
	char msg[RPC_MESSAGE_MAX];
};

static void
prop_free(struct prop *p)
{
	free(p->row);
	free(p->reason);
	for (size_t i = 0; i < p->nrows; i++)
		free(p->rows[i]);
	free(p->rows);
	free(p->lens);
	free(p);
}

static int
id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n != ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

/* The state a reader sees: a pending proposal past its time is expired. */
static Boltseal__V1__ProposalState
effective_state(const Boltseal__V1__Proposal *p, int64_t now)
{
	if (p->state == BOLTSEAL__V1__PROPOSAL_STATE__PENDING && p->execute_time_unix == 0 &&
	    now >= p->expire_time_unix)
		return BOLTSEAL__V1__PROPOSAL_STATE__EXPIRED;
	return p->state;
}

/* hex SHA-256 over HASH_PREFIX || method || "\n" || request. */
static void
request_hash(const char *method, const uint8_t *req, size_t len, char out[SHA_HEX + 1])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, HASH_PREFIX, sizeof(HASH_PREFIX) - 1) != 1 ||
	    EVP_DigestUpdate(c, method, strlen(method)) != 1 ||
	    EVP_DigestUpdate(c, "\n", 1) != 1 || EVP_DigestUpdate(c, req, len) != 1 ||
	    EVP_DigestFinal_ex(c, md, NULL) != 1)
		memset(md, 0, sizeof(md));   /* never matches a hash a client computed */
	EVP_MD_CTX_free(c);
	bs_hex_encode(md, sizeof(md), out);
}

/* The method's request type, or NULL. */
static const ProtobufCMessageDescriptor *
request_type(const struct svc_ctx *svc, const char *method)
{
	char path[RPC_PATH_MAX];
	const struct rpc_method *m;

	if (snprintf(path, sizeof(path), "/%s", method) >= (int)sizeof(path))
		return NULL;
	m = rpc_registry_find(svc->registry, path);
	return m != NULL ? m->request : NULL;
}

/* The request of p decoded field by field (malloc'd), or a note when it cannot be. */
static char *
render(const struct svc_ctx *svc, const Boltseal__V1__Proposal *p)
{
	const ProtobufCMessageDescriptor *d = request_type(svc, p->method);
	ProtobufCMessage *m;
	char *text = NULL;

	if (d == NULL ||
	    (m = protobuf_c_message_unpack(d, NULL, p->request.len, p->request.data)) == NULL)
		return strdup("(the request cannot be decoded by this server)\n");
	if (pb_text_render(m, &text) != 0)
		text = strdup("(the request is too large to show)\n");
	protobuf_c_message_free_unpacked(m, NULL);
	return text;
}

/* ---- store work ------------------------------------------------------------ */

static int
list_row(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct prop *p = arg;
	Boltseal__V1__Proposal *pp;
	int keep;

	(void)version;
	snprintf(p->after, sizeof(p->after), "%.*s", ID_LEN, id);
	if (p->nrows == p->page) {
		p->more = 1;
		return 1;
	}
	if ((pp = boltseal__v1__proposal__unpack(NULL, len, data)) == NULL)
		return 0;       /* unreadable: skipped */
	keep = p->include_closed ||
	    effective_state(pp, p->now) == BOLTSEAL__V1__PROPOSAL_STATE__PENDING;
	boltseal__v1__proposal__free_unpacked(pp, NULL);
	if (!keep)
		return 0;
	if ((p->rows[p->nrows] = malloc(len > 0 ? len : 1)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(p->rows[p->nrows], data, len);
	p->lens[p->nrows++] = len;
	return 0;
}

static void
prop_work(struct admin_job *j)
{
	struct prop *p = (struct prop *)j;
	struct store *st = j->st->svc->store;
	struct store_txn *tx = NULL;
	uint64_t nv = 0;

	if (p->kind == K_LIST) {
		char start[ID_LEN + 1];

		if ((j->rc = store_begin_read(st, &tx)) != 0)
			return;
		/* filtered rows do not count: walk on until the page is full */
		do {
			snprintf(start, sizeof(start), "%s", p->after);
			j->rc = store_row_foreach(tx, ADMIN_NS_PROPOSALS, "", start, STORE_LIST_MAX,
			    list_row, p);
			if (j->rc == 1)
				j->rc = 0;
		} while (j->rc == 0 && !p->more && strcmp(start, p->after) != 0);
		store_rollback(tx);
		return;
	}
	if (p->stage == 0 && p->kind != K_PROPOSE) {
		free(p->row);
		p->row = NULL;
		if ((j->rc = store_begin_read(st, &tx)) != 0)
			return;
		j->rc = store_row_get(tx, ADMIN_NS_PROPOSALS, p->id, &p->row, &p->row_len, &p->ver);
		store_rollback(tx);
		return;
	}
	if ((j->rc = store_begin(st, &tx)) != 0)
		return;
	j->rc = store_row_put(tx, ADMIN_NS_PROPOSALS, p->id, p->ver, p->row, p->row_len, &nv);
	if (j->rc == 0) {
		j->rc = store_commit(tx);
		p->ver = nv;
	} else {
		store_rollback(tx);
	}
}

/* ---- answers ------------------------------------------------------------------ */

/* Answers with one proposal (packed row) in the response of p's kind. */
static void
answer_one(struct prop *p, const uint8_t *row, size_t len)
{
	struct rpc_call *call = p->aj.call;
	Boltseal__V1__Proposal *pp = boltseal__v1__proposal__unpack(NULL, len, row);
	char *text;

	if (pp == NULL) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "the stored proposal is unreadable");
		return;
	}
	pp->state = effective_state(pp, p->now);
	text = render(p->aj.st->svc, pp);
	pp->request_text = text != NULL ? text : (char *)"";
	switch (p->kind) {
	case K_PROPOSE: {
		Boltseal__V1__ProposeResponse r = BOLTSEAL__V1__PROPOSE_RESPONSE__INIT;

		r.proposal = pp;
		rpc_call_finish_pb(call, &r.base);
		break;
	}
	case K_APPROVE: {
		Boltseal__V1__ApproveResponse r = BOLTSEAL__V1__APPROVE_RESPONSE__INIT;

		r.proposal = pp;
		rpc_call_finish_pb(call, &r.base);
		break;
	}
	case K_REJECT: {
		Boltseal__V1__RejectResponse r = BOLTSEAL__V1__REJECT_RESPONSE__INIT;

		r.proposal = pp;
		rpc_call_finish_pb(call, &r.base);
		break;
	}
	case K_EXECUTE: {
		Boltseal__V1__ExecuteResponse r = BOLTSEAL__V1__EXECUTE_RESPONSE__INIT;

		r.proposal = pp;
		rpc_call_finish_pb(call, &r.base);
		break;
	}
	case K_GET:
	default: {
		Boltseal__V1__GetProposalResponse r = BOLTSEAL__V1__GET_PROPOSAL_RESPONSE__INIT;

		r.proposal = pp;
		rpc_call_finish_pb(call, &r.base);
		break;
	}
	}
	pp->request_text = NULL;
	free(text);
	boltseal__v1__proposal__free_unpacked(pp, NULL);
}

static void
answer_list(struct prop *p)
{
	Boltseal__V1__ListProposalsResponse r = BOLTSEAL__V1__LIST_PROPOSALS_RESPONSE__INIT;
	Boltseal__V1__Proposal **v = calloc(p->nrows + 1, sizeof(*v));
	char **texts = calloc(p->nrows + 1, sizeof(*texts));
	size_t n = 0;

	if (v == NULL || texts == NULL) {
		rpc_call_fail(p->aj.call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nrows; i++) {
		Boltseal__V1__Proposal *pp = boltseal__v1__proposal__unpack(NULL, p->lens[i],
		    p->rows[i]);

		if (pp == NULL)
			continue;
		pp->state = effective_state(pp, p->now);
		texts[n] = render(p->aj.st->svc, pp);
		pp->request_text = texts[n] != NULL ? texts[n] : (char *)"";
		v[n++] = pp;
	}
	r.proposals = v;
	r.n_proposals = n;
	r.next_page_token = p->more ? p->after : (char *)"";
	if (p->more && n > 0)
		r.next_page_token = v[n - 1]->id;
	rpc_call_finish_pb(p->aj.call, &r.base);
out:
	for (size_t i = 0; v != NULL && i < n; i++) {
		v[i]->request_text = NULL;
		boltseal__v1__proposal__free_unpacked(v[i], NULL);
		free(texts[i]);
	}
	free(v);
	free(texts);
}

/* ---- the changes: votes and the execution -------------------------------------- */

/* Packs pp into p->row (replacing it). 0 or BS_ERR_NOMEM / BS_ERR_TOO_BIG. */
static int
repack(struct prop *p, const Boltseal__V1__Proposal *pp)
{
	size_t n = boltseal__v1__proposal__get_packed_size(pp);
	uint8_t *buf;

	if (n > STORE_DATA_MAX)
		return BS_ERR_TOO_BIG;
	if ((buf = malloc(n > 0 ? n : 1)) == NULL)
		return BS_ERR_NOMEM;
	boltseal__v1__proposal__pack(pp, buf);
	free(p->row);
	p->row = buf;
	p->row_len = n;
	return 0;
}

static void execute_run(struct prop *p, Boltseal__V1__Proposal *pp);

/*
 * After the read: the checks of APPROVE, REJECT and EXECUTE, and the new
 * row. 1: write it; 0: answered (p->status/msg), or the answer is the row.
 */
static int
decide(struct prop *p, Boltseal__V1__Proposal *pp)
{
	struct rpc_call *call = p->aj.call;
	Boltseal__V1__ProposalState s = effective_state(pp, p->now);
	Boltseal__V1__ProposalVote vote = BOLTSEAL__V1__PROPOSAL_VOTE__INIT;
	Boltseal__V1__ProposalVote **votes = NULL;
	int rc;

	rpc_call_audit_target(call, pp->id);
	if (rpc_call_audit_field(call, "method", pp->method) != 0 ||
	    rpc_call_audit_field(call, "request_sha256", pp->request_sha256) != 0) {
		p->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(p->msg, sizeof(p->msg), "out of memory");
		return 0;
	}
	if (p->kind == K_EXECUTE && strcmp(pp->proposer, p->me) != 0) {
		p->status = GRPC_STATUS_PERMISSION_DENIED;
		snprintf(p->msg, sizeof(p->msg), "only the proposer (%s) executes proposal %s",
		    pp->proposer, pp->id);
		return 0;
	}
	if (p->kind == K_EXECUTE && s == BOLTSEAL__V1__PROPOSAL_STATE__EXECUTED)
		return 0;   /* the kept result is the answer */
	if (s != BOLTSEAL__V1__PROPOSAL_STATE__PENDING) {
		p->status = GRPC_STATUS_FAILED_PRECONDITION;
		snprintf(p->msg, sizeof(p->msg), "proposal %s is %s", pp->id,
		    s == BOLTSEAL__V1__PROPOSAL_STATE__REJECTED ? "rejected" :
		    s == BOLTSEAL__V1__PROPOSAL_STATE__EXPIRED ? "expired" : "executed");
		return 0;
	}
	if (pp->execute_time_unix != 0) {
		p->status = GRPC_STATUS_FAILED_PRECONDITION;
		snprintf(p->msg, sizeof(p->msg), "proposal %s is being executed (or its execution "
		    "was interrupted: propose it again)", pp->id);
		return 0;
	}
	if (p->kind == K_EXECUTE) {
		pp->execute_time_unix = p->now;
		return (rc = repack(p, pp)) == 0 ? 1 : (p->status = rpc_status_from_err(rc), 0);
	}
	/* APPROVE, REJECT: the approver's own factor, another's proposal, the hash seen */
	if (strcmp(pp->proposer, p->me) == 0) {
		p->status = GRPC_STATUS_FAILED_PRECONDITION;
		snprintf(p->msg, sizeof(p->msg), "you proposed %s: approvals and rejections come "
		    "from others", pp->id);
		return 0;
	}
	if (strlen(p->sha) != SHA_HEX || CRYPTO_memcmp(p->sha, pp->request_sha256, SHA_HEX) != 0) {
		p->status = GRPC_STATUS_FAILED_PRECONDITION;
		snprintf(p->msg, sizeof(p->msg), "request_sha256 is not proposal %s's: read it again "
		    "and check what you approve", pp->id);
		return 0;
	}
	vote.principal = p->me;
	vote.identity = (char *)rpc_call_identity(call);
	vote.time_unix = p->now;
	if (p->kind == K_REJECT) {
		pp->state = BOLTSEAL__V1__PROPOSAL_STATE__REJECTED;
		pp->rejection = &vote;
		pp->rejection_reason = p->reason;
		rc = repack(p, pp);
		pp->rejection = NULL;
		pp->rejection_reason = NULL;
		return rc == 0 ? 1 : (p->status = rpc_status_from_err(rc), 0);
	}
	for (size_t i = 0; i < pp->n_approvals; i++)
		if (strcmp(pp->approvals[i]->principal, p->me) == 0)
			return 0;   /* approved already: the proposal as it stands is the answer */
	if ((votes = calloc(pp->n_approvals + 1, sizeof(*votes))) == NULL) {
		p->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(p->msg, sizeof(p->msg), "out of memory");
		return 0;
	}
	{
		Boltseal__V1__ProposalVote **old = pp->approvals;
		size_t nold = pp->n_approvals;

		if (nold > 0)   /* old is NULL before the first vote */
			memcpy(votes, old, nold * sizeof(*votes));
		votes[nold] = &vote;
		pp->approvals = votes;
		pp->n_approvals = nold + 1;
		rc = repack(p, pp);
		pp->approvals = old;
		pp->n_approvals = nold;
	}
	free(votes);
	return rc == 0 ? 1 : (p->status = rpc_status_from_err(rc), 0);
}

static const char *
kind_event(enum prop_kind k)
{
	switch (k) {
	case K_PROPOSE: return "proposal_created";
	case K_APPROVE: return "proposal_approved";
	case K_REJECT: return "proposal_rejected";
	case K_EXECUTE: return "proposal_executed";
	default: return NULL;
	}
}

static void
prop_done(struct admin_job *j)
{
	struct prop *p = (struct prop *)j;
	struct rpc_call *call = j->call;
	Boltseal__V1__Proposal *pp = NULL;
	int stale = j->rc == BS_ERR_PRECONDITION || j->rc == BS_ERR_EXISTS;

	rpc_call_on_cancel(call, NULL, NULL);
	if (j->rc == BS_ERR_NOT_FOUND && p->stage == 0) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no proposal %s", p->id);
		goto out;
	}
	if (j->rc != 0) {
		rpc_call_fail(call, stale ? GRPC_STATUS_ABORTED : rpc_status_from_err(j->rc), "%s",
		    stale ? "the proposal changed meanwhile; retry" : "the proposal store failed");
		goto out;
	}
	if (kind_event(p->kind) != NULL && p->stage == 1)
		rpc_call_audit_event(call, kind_event(p->kind));
	if (p->kind == K_LIST) {
		answer_list(p);
		goto out;
	}
	if (p->stage == 1 || p->kind == K_GET || p->kind == K_PROPOSE) {
		if (p->kind == K_EXECUTE && p->stage == 1 && p->status > 0) {
			/* the call was refused by the policy; the proposal is pending again */
			rpc_call_fail(call, p->status, "%s", p->msg);
			goto out;
		}
		if (p->kind == K_EXECUTE && p->stage == 1 && p->status == -1) {
			/* marked: now run it */
			if ((pp = boltseal__v1__proposal__unpack(NULL, p->row_len, p->row)) == NULL) {
				rpc_call_fail(call, GRPC_STATUS_INTERNAL, "the proposal is unreadable");
				goto out;
			}
			execute_run(p, pp);
			boltseal__v1__proposal__free_unpacked(pp, NULL);
			return;
		}
		answer_one(p, p->row, p->row_len);
		goto out;
	}
	/* stage 0 of APPROVE, REJECT, EXECUTE: decide, then write */
	if ((pp = boltseal__v1__proposal__unpack(NULL, p->row_len, p->row)) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "the stored proposal is unreadable");
		goto out;
	}
	p->status = 0;
	if (decide(p, pp)) {
		boltseal__v1__proposal__free_unpacked(pp, NULL);
		p->stage = 1;
		if (p->kind == K_EXECUTE)
			p->status = -1;
		(void)admin_submit(&p->aj);
		return;
	}
	boltseal__v1__proposal__free_unpacked(pp, NULL);
	if (p->status != 0)
		rpc_call_fail(call, p->status, "%s", p->msg);
	else
		answer_one(p, p->row, p->row_len);
out:
	prop_free(p);
}

/*
 * The executed call answered: keep its result (stage 1 again), then answer.
 * A call the policy refused (too few approvals so far, no second factor)
 * did nothing: the proposal is unmarked and stays pending, and Execute
 * answers that refusal.
 */
static void
executed(void *arg, const struct rpc_answer *a, int authorized)
{
	struct prop *p = arg;
	Boltseal__V1__Proposal *pp = boltseal__v1__proposal__unpack(NULL, p->row_len, p->row);
	int rc;

	if (pp == NULL) {
		rpc_call_fail(p->aj.call, GRPC_STATUS_INTERNAL, "the proposal is unreadable");
		prop_free(p);
		return;
	}
	if (!authorized && a->grpc_status != GRPC_STATUS_OK) {
		pp->execute_time_unix = 0;
		rc = repack(p, pp);
		boltseal__v1__proposal__free_unpacked(pp, NULL);
		if (rc != 0) {
			rpc_call_fail(p->aj.call, GRPC_STATUS_INTERNAL, "cannot unmark the proposal");
			prop_free(p);
			return;
		}
		p->status = a->grpc_status;
		snprintf(p->msg, sizeof(p->msg), "%s", a->message != NULL ? a->message : "");
		(void)admin_submit(&p->aj);
		return;
	}
	pp->state = BOLTSEAL__V1__PROPOSAL_STATE__EXECUTED;
	pp->result_status = (uint32_t)a->grpc_status;
	pp->result_message = (char *)(a->message != NULL ? a->message : "");
	if (a->grpc_status == GRPC_STATUS_OK && a->msg_len <= RESPONSE_KEEP_MAX) {
		pp->result_response.data = (uint8_t *)a->msg;
		pp->result_response.len = a->msg_len;
	} else {
		pp->result_response.data = NULL;
		pp->result_response.len = 0;
	}
	rc = repack(p, pp);
	pp->result_message = NULL;
	pp->result_response.data = NULL;
	pp->result_response.len = 0;
	boltseal__v1__proposal__free_unpacked(pp, NULL);
	bs_log(BS_LOG_INFO, "proposal executed", "id", p->id, "status",
	    grpc_status_name(a->grpc_status), "proposer", p->me, NULL);
	if (rc != 0) {
		rpc_call_fail(p->aj.call, GRPC_STATUS_INTERNAL, "cannot keep the result");
		prop_free(p);
		return;
	}
	p->status = 0;      /* the next done() answers with the kept row */
	(void)admin_submit(&p->aj);
}

static void
execute_run(struct prop *p, Boltseal__V1__Proposal *pp)
{
	const char **who = calloc(pp->n_approvals + 1, sizeof(*who));
	char path[RPC_PATH_MAX];
	int rc;

	if (who == NULL || snprintf(path, sizeof(path), "/%s", pp->method) >= (int)sizeof(path)) {
		free(who);
		rpc_call_fail(p->aj.call, GRPC_STATUS_INTERNAL, "cannot run the proposal");
		prop_free(p);
		return;
	}
	for (size_t i = 0; i < pp->n_approvals; i++)
		who[i] = pp->approvals[i]->principal;
	rc = rpc_call_spawn(p->aj.call, path, pp->request.data, pp->request.len, pp->id, who,
	    pp->n_approvals, executed, p);
	free(who);
	if (rc != 0) {
		rpc_call_fail(p->aj.call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		prop_free(p);
	}
}

/* ---- the RPCs ----------------------------------------------------------------- */

static struct prop *
prop_new(struct rpc_call *call, enum prop_kind kind)
{
	const char *me = rpc_call_principal(call);
	struct prop *p;

	if (me == NULL || me[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "permission denied");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	p->aj.call = call;
	p->aj.st = rpc_call_service_state(call);
	p->aj.work = prop_work;
	p->aj.done = prop_done;
	p->kind = kind;
	p->now = (int64_t)time(NULL);
	snprintf(p->me, sizeof(p->me), "%s", me);
	return p;
}

/*
 * Proposals may name any served method but the AdminService's own, factor
 * resets and policy changes excepted.
 */
static int
proposable(const char *method)
{
	static const char admin[] = "boltseal.v1.AdminService/";

	return strncmp(method, admin, sizeof(admin) - 1) != 0 ||
	    strcmp(method, "boltseal.v1.AdminService/ResetSecondFactor") == 0 ||
	    strcmp(method, "boltseal.v1.AdminService/SetPolicy") == 0;
}

void
admin_propose(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ProposeRequest *r = (const Boltseal__V1__ProposeRequest *)msg;
	struct admin_state *st = rpc_call_service_state(call);
	Boltseal__V1__Proposal pp = BOLTSEAL__V1__PROPOSAL__INIT;
	const ProtobufCMessageDescriptor *d = request_type(st->svc, r->method);
	struct policy_attr attr = { "request.method", r->method };
	struct rpc_pb_count cnt;
	ProtobufCMessage *req = NULL;
	uint8_t *canon = NULL, rnd[8];
	char sha[SHA_HEX + 1], rhex[17];
	struct prop *p = NULL;
	uint32_t field = 0;
	size_t clen;
	int64_t ms;
	struct timespec ts;

	if (!rpc_call_authorize(call, NULL, NULL, &attr, 1))
		return;
	rpc_call_audit_event(call, "proposal_created");
	if (d == NULL || !proposable(r->method)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "method must be the full name of "
		    "a served method (\"boltseal.v1.KeyService/ScheduleKeyDestruction\"), not an "
		    "AdminService one");
		return;
	}
	if (!rpc_call_granted(call, r->method)) {
		rpc_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "no role of yours grants %s",
		    r->method);
		return;
	}
	if (r->request.len > REQUEST_MAX || strlen(r->description) > DESCRIPTION_MAX ||
	    r->ttl_seconds > TTL_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "request (<= %d bytes), "
		    "description (<= %d bytes) or ttl_seconds (<= %u) too large", REQUEST_MAX,
		    DESCRIPTION_MAX, TTL_MAX);
		return;
	}
	if (rpc_pb_scan(d, r->request.data, r->request.len, UINT64_MAX, 0, &cnt) != 0 ||
	    pb_strings_check(d, r->request.data, r->request.len, &field) != 0 ||
	    (req = protobuf_c_message_unpack(d, NULL, r->request.len, r->request.data)) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid %s "
		    "(malformed, or fields this server does not know)", d->name);
		return;
	}
	/* canonical: decoded and packed again (fields in number order) */
	clen = protobuf_c_message_get_packed_size(req);
	if ((canon = malloc(clen > 0 ? clen : 1)) == NULL || (p = prop_new(call, K_PROPOSE)) == NULL) {
		if (canon == NULL)
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	protobuf_c_message_pack(req, canon);
	request_hash(r->method, canon, clen, sha);
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "no randomness");
		goto out;
	}
	bs_hex_encode(rnd, sizeof(rnd), rhex);
	snprintf(p->id, sizeof(p->id), "%012" PRIx64 "%s", (uint64_t)ms & UINT64_C(0xffffffffffff),
	    rhex);
	pp.id = p->id;
	pp.method = r->method;
	pp.request.data = canon;
	pp.request.len = clen;
	pp.request_sha256 = sha;
	pp.description = r->description;
	pp.proposer = p->me;
	pp.proposer_identity = (char *)rpc_call_identity(call);
	pp.create_time_unix = p->now;
	pp.expire_time_unix = p->now + (int64_t)(r->ttl_seconds != 0 ? r->ttl_seconds :
	    st->proposal_ttl_s);
	pp.state = BOLTSEAL__V1__PROPOSAL_STATE__PENDING;
	rpc_call_audit_target(call, p->id);
	if (repack(p, &pp) != 0 || rpc_call_audit_field(call, "method", r->method) != 0 ||
	    rpc_call_audit_field(call, "request_sha256", sha) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	p->ver = 0;
	p->stage = 1;
	if (admin_submit(&p->aj) == 0)
		rpc_call_on_cancel(call, NULL, NULL);
	p = NULL;       /* done() frees it */
out:
	if (p != NULL)
		prop_free(p);
	free(canon);
	if (req != NULL)
		protobuf_c_message_free_unpacked(req, NULL);
}

void
admin_list_proposals(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ListProposalsRequest *r = (const Boltseal__V1__ListProposalsRequest *)msg;
	struct prop *p;

	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return;
	if (r->page_token[0] != '\0' && !id_valid(r->page_token)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid page_token");
		return;
	}
	if ((p = prop_new(call, K_LIST)) == NULL)
		return;
	p->include_closed = r->include_closed;
	p->page = r->page_size == 0 ? LIST_DEFAULT : r->page_size > LIST_MAX ? LIST_MAX :
	    r->page_size;
	snprintf(p->after, sizeof(p->after), "%s", r->page_token);
	if ((p->rows = calloc(p->page, sizeof(*p->rows))) == NULL ||
	    (p->lens = calloc(p->page, sizeof(*p->lens))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		prop_free(p);
		return;
	}
	(void)admin_submit(&p->aj);
}

/* GET, APPROVE, REJECT, EXECUTE: the proposal named by id, read first. */
static struct prop *
named(struct rpc_call *call, const char *id, enum prop_kind kind)
{
	struct prop *p;

	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return NULL;
	if (kind_event(kind) != NULL)
		rpc_call_audit_event(call, kind_event(kind));
	if (!id_valid(id)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "id must be %d lower-case hex "
		    "digits", ID_LEN);
		return NULL;
	}
	rpc_call_audit_target(call, id);
	if ((kind == K_APPROVE || kind == K_REJECT) && !rpc_call_second_factor_verified(call)) {
		rpc_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "%s (every approval and "
		    "rejection needs it)", RPC_SF_NEEDED_MESSAGE);
		return NULL;
	}
	if ((p = prop_new(call, kind)) != NULL)
		snprintf(p->id, sizeof(p->id), "%s", id);
	return p;
}

void
admin_get_proposal(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct prop *p = named(call, ((const Boltseal__V1__GetProposalRequest *)msg)->id, K_GET);

	if (p != NULL)
		(void)admin_submit(&p->aj);
}

void
admin_approve(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ApproveRequest *r = (const Boltseal__V1__ApproveRequest *)msg;
	struct prop *p = named(call, r->id, K_APPROVE);

	if (p == NULL)
		return;
	snprintf(p->sha, sizeof(p->sha), "%s", r->request_sha256);
	(void)admin_submit(&p->aj);
}

void
admin_reject(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RejectRequest *r = (const Boltseal__V1__RejectRequest *)msg;
	struct prop *p;

	if (strlen(r->reason) > DESCRIPTION_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "reason is longer than %d bytes",
		    DESCRIPTION_MAX);
		return;
	}
	if ((p = named(call, r->id, K_REJECT)) == NULL)
		return;
	snprintf(p->sha, sizeof(p->sha), "%s", r->request_sha256);
	if ((p->reason = strdup(r->reason)) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		prop_free(p);
		return;
	}
	(void)admin_submit(&p->aj);
}

void
admin_execute(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct prop *p = named(call, ((const Boltseal__V1__ExecuteRequest *)msg)->id, K_EXECUTE);

	if (p != NULL)
		(void)admin_submit(&p->aj);
}
