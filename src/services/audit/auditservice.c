/*
 * auditservice.c - boltseal.v1.AuditService: the latest signed checkpoint,
 * inclusion and consistency proofs (computed from the in-memory tree on the
 * loop thread: O(log^2 n) hashes), the raw records (read from the file
 * on the general work queue, since the loop never blocks on the disk and
 * HSM threads only talk to the HSM), and the seal of an evidence bundle
 * (audit/evidence.h): the SealEvidence call's own record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "audit/evidence.h"
#include "boltseal/v1/audit.pb-c.h"
#include "common/hex.h"
#include "exec/workq.h"
#include "rpc/rpc_status.h"
#include "services/services.h"

#define READ_DEFAULT 100
#define READ_MAX 1000
#define READ_MAX_BYTES (1024 * 1024)

/* Common prologue: policy (no key) and audit on. 1 = go on. */
static int
audit_ready(struct rpc_call *call)
{
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
		return 0;
	if (rpc_call_svc(call)->audit == NULL) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "audit is off on this server");
		return 0;
	}
	return 1;
}

/* tree_size 0 means the latest checkpoint's; 0 or an answered error. */
static int
resolve_size(struct rpc_call *call, uint64_t *size)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const uint8_t *note;
	const char *vkey;
	size_t len;
	uint64_t cp_size;

	if (*size != 0)
		return 0;
	if (checkpointer_latest(svc->checkpointer, &note, &len, &cp_size, &vkey) != 0) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no checkpoint yet");
		return -1;
	}
	*size = cp_size;
	return 0;
}

static void
get_checkpoint(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	Boltseal__V1__GetCheckpointResponse resp = BOLTSEAL__V1__GET_CHECKPOINT_RESPONSE__INIT;
	uint8_t root[MERKLE_HASH_LEN];
	const uint8_t *note;
	const char *vkey;
	size_t nlen;
	uint64_t size;

	(void)msg; /* GetCheckpointRequest has no fields */
	if (!audit_ready(call))
		return;
	/*
	 * The latest checkpoint, as the timer and the record count made it:
	 * asking must not make the daemon sign (each call would cost an HSM
	 * signature and a file, and is itself a new record to cover).
	 */
	if (checkpointer_latest(svc->checkpointer, &note, &nlen, &size, &vkey) != 0) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no checkpoint yet; retry shortly");
		return;
	}
	if (audit_log_root(svc->audit, size, root) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "checkpoint beyond the log");
		return;
	}
	resp.note.data = (uint8_t *)note;
	resp.note.len = nlen;
	resp.tree_size = size;
	resp.root_hash.data = root;
	resp.root_hash.len = sizeof(root);
	resp.verifier_key = (char *)vkey;
	resp.log_size = audit_log_size(svc->audit);
	rpc_call_finish_pb(call, &resp.base);
}

/* Points pb[i] at hashes[i] for a repeated bytes field. */
static void
hashes_to_pb(uint8_t hashes[][MERKLE_HASH_LEN], size_t n, ProtobufCBinaryData *pb)
{
	for (size_t i = 0; i < n; i++) {
		pb[i].data = hashes[i];
		pb[i].len = MERKLE_HASH_LEN;
	}
}

static void
get_inclusion_proof(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__GetInclusionProofRequest *r =
	    (const Boltseal__V1__GetInclusionProofRequest *)msg;
	Boltseal__V1__GetInclusionProofResponse resp =
	    BOLTSEAL__V1__GET_INCLUSION_PROOF_RESPONSE__INIT;
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], root[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];
	ProtobufCBinaryData pb[MERKLE_MAX_PROOF];
	uint64_t index, size;
	size_t n = 0;

	index = r->leaf_index;
	size = r->tree_size;
	if (!audit_ready(call) || resolve_size(call, &size) != 0)
		return;
	if (size > audit_log_size(svc->audit) || index >= size) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "need leaf_index < tree_size <= %llu (the durable log size)",
		    (unsigned long long)audit_log_size(svc->audit));
		return;
	}
	if (audit_log_inclusion(svc->audit, index, size, proof, &n) != 0 ||
	    audit_log_root(svc->audit, size, root) != 0 ||
	    audit_log_leaf(svc->audit, index, leaf) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "cannot compute the proof");
		return;
	}
	hashes_to_pb(proof, n, pb);
	resp.leaf_index = index;
	resp.tree_size = size;
	resp.leaf_hash.data = leaf;
	resp.leaf_hash.len = sizeof(leaf);
	resp.n_hashes = n;
	resp.hashes = pb;
	resp.root_hash.data = root;
	resp.root_hash.len = sizeof(root);
	rpc_call_finish_pb(call, &resp.base);
}

static void
get_consistency_proof(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__GetConsistencyProofRequest *r =
	    (const Boltseal__V1__GetConsistencyProofRequest *)msg;
	Boltseal__V1__GetConsistencyProofResponse resp =
	    BOLTSEAL__V1__GET_CONSISTENCY_PROOF_RESPONSE__INIT;
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], r1[MERKLE_HASH_LEN], r2[MERKLE_HASH_LEN];
	ProtobufCBinaryData pb[MERKLE_MAX_PROOF];
	uint64_t first, second;
	size_t n = 0;

	first = r->first_size;
	second = r->second_size;
	if (!audit_ready(call) || resolve_size(call, &second) != 0)
		return;
	if (first == 0 || first > second || second > audit_log_size(svc->audit)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "need 0 < first_size <= second_size <= %llu (the durable log size)",
		    (unsigned long long)audit_log_size(svc->audit));
		return;
	}
	if (audit_log_consistency(svc->audit, first, second, proof, &n) != 0 ||
	    audit_log_root(svc->audit, first, r1) != 0 ||
	    audit_log_root(svc->audit, second, r2) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL, "cannot compute the proof");
		return;
	}
	hashes_to_pb(proof, n, pb);
	resp.first_size = first;
	resp.second_size = second;
	resp.n_hashes = n;
	resp.hashes = pb;
	resp.first_root.data = r1;
	resp.first_root.len = sizeof(r1);
	resp.second_root.data = r2;
	resp.second_root.len = sizeof(r2);
	rpc_call_finish_pb(call, &resp.base);
}

#define PROOFS_MAX 1000

static void
get_inclusion_proofs(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__GetInclusionProofsRequest *r =
	    (const Boltseal__V1__GetInclusionProofsRequest *)msg;
	Boltseal__V1__GetInclusionProofsResponse resp =
	    BOLTSEAL__V1__GET_INCLUSION_PROOFS_RESPONSE__INIT;
	Boltseal__V1__InclusionProof *pp = NULL, **ptrs = NULL;
	uint8_t (*hashes)[MERKLE_HASH_LEN] = NULL, (*leaves)[MERKLE_HASH_LEN] = NULL;
	uint8_t root[MERKLE_HASH_LEN];
	ProtobufCBinaryData *pb = NULL;
	uint64_t size = r->tree_size;
	size_t i, n, used = 0, k = r->n_leaf_indexes;

	if (!audit_ready(call) || resolve_size(call, &size) != 0)
		return;
	if (k == 0 || k > PROOFS_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "leaf_indexes: give 1 to %d indexes (%zu given)", PROOFS_MAX, k);
		return;
	}
	if (size > audit_log_size(svc->audit)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "need tree_size <= %llu (the durable log size)",
		    (unsigned long long)audit_log_size(svc->audit));
		return;
	}
	for (i = 0; i < k; i++)
		if (r->leaf_indexes[i] >= size) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "leaf_indexes[%zu] = %llu: need < tree_size %llu", i,
			    (unsigned long long)r->leaf_indexes[i], (unsigned long long)size);
			return;
		}
	pp = calloc(k, sizeof(*pp));
	ptrs = calloc(k, sizeof(*ptrs));
	leaves = calloc(k, sizeof(*leaves));
	hashes = calloc(k * MERKLE_MAX_PROOF, sizeof(*hashes));
	pb = calloc(k * MERKLE_MAX_PROOF, sizeof(*pb));
	if (pp == NULL || ptrs == NULL || leaves == NULL || hashes == NULL || pb == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (audit_log_root(svc->audit, size, root) != 0)
		goto internal;
	for (i = 0; i < k; i++) {
		boltseal__v1__inclusion_proof__init(&pp[i]);
		n = 0;
		if (audit_log_inclusion(svc->audit, r->leaf_indexes[i], size, hashes + used, &n) != 0 ||
		    audit_log_leaf(svc->audit, r->leaf_indexes[i], leaves[i]) != 0)
			goto internal;
		hashes_to_pb(hashes + used, n, pb + used);
		pp[i].leaf_index = r->leaf_indexes[i];
		pp[i].leaf_hash.data = leaves[i];
		pp[i].leaf_hash.len = MERKLE_HASH_LEN;
		pp[i].n_hashes = n;
		pp[i].hashes = pb + used;
		ptrs[i] = &pp[i];
		used += n;
	}
	resp.tree_size = size;
	resp.root_hash.data = root;
	resp.root_hash.len = sizeof(root);
	resp.n_proofs = k;
	resp.proofs = ptrs;
	rpc_call_finish_pb(call, &resp.base);
	goto out;
internal:
	rpc_call_fail(call, GRPC_STATUS_INTERNAL, "cannot compute the proofs");
out:
	free(pp);
	free(ptrs);
	free(leaves);
	free(hashes);
	free(pb);
}

/*
 * SealEvidence: the answer is the seal. What the bundle claims (its
 * MANIFEST hash, window, vehicle filter, record count) goes into this
 * call's audit record, durable before the caller hears OK.
 */
static void
seal_evidence(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SealEvidenceRequest *r = (const Boltseal__V1__SealEvidenceRequest *)msg;
	Boltseal__V1__SealEvidenceResponse resp = BOLTSEAL__V1__SEAL_EVIDENCE_RESPONSE__INIT;
	char hex[BS_HEX_LEN(32)], num[24];

	if (!audit_ready(call))
		return;
	if (r->manifest_sha256.len != 32) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "manifest_sha256: need 32 bytes (SHA-256), got %zu", r->manifest_sha256.len);
		return;
	}
	if (!evidence_ts_valid(r->from) || !evidence_ts_valid(r->to) || strcmp(r->from, r->to) > 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "from, to: need two UTC times YYYY-MM-DDTHH:MM:SS.mmmZ, from <= to");
		return;
	}
	if (r->vehicle[0] != '\0' && !evidence_vehicle_valid(r->vehicle)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "vehicle: 1 to %d printable ASCII characters", EVIDENCE_VEHICLE_MAX);
		return;
	}
	bs_hex_encode(r->manifest_sha256.data, 32, hex);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)r->records);
	rpc_call_audit_event(call, "evidence_sealed");
	if (r->vehicle[0] != '\0')
		rpc_call_audit_target(call, r->vehicle);
	if (rpc_call_audit_field(call, "evidence.manifest_sha256", hex) != 0 ||
	    rpc_call_audit_field(call, "evidence.from", r->from) != 0 ||
	    rpc_call_audit_field(call, "evidence.to", r->to) != 0 ||
	    rpc_call_audit_field(call, "evidence.vehicle", r->vehicle) != 0 ||
	    rpc_call_audit_field(call, "evidence.records", num) != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	resp.request_id = (char *)rpc_call_request_id(call);
	rpc_call_finish_pb(call, &resp.base);
}

/* ---- ReadRecords: file reads on a worker ------------------------------------ */

struct read_job {
	struct workq_job job;        /* first; on the general work queue */
	struct rpc_call *call;
	struct audit_log *log;
	uint64_t start, want, got;
	ProtobufCBinaryData *recs;
	int rc;
};

static int
collect(void *arg, uint64_t index, const uint8_t *line, size_t len)
{
	struct read_job *j = arg;
	ProtobufCBinaryData *b = &j->recs[index - j->start];

	b->data = malloc(len > 0 ? len : 1);
	if (b->data == NULL)
		return BS_ERR_NOMEM;
	memcpy(b->data, line, len);
	b->len = len;
	return 0;
}

static void
read_work(struct workq_job *job, void *ctx)
{
	struct read_job *j = (struct read_job *)job;

	(void)ctx;
	if (workq_job_cancelled(job)) {
		j->rc = BS_ERR_CANCELLED;
		return;
	}
	j->rc = audit_log_read(j->log, j->start, j->want, READ_MAX_BYTES, collect, j, &j->got);
}

static void
read_done(struct workq_job *job)
{
	struct read_job *j = (struct read_job *)job;
	Boltseal__V1__ReadRecordsResponse resp = BOLTSEAL__V1__READ_RECORDS_RESPONSE__INIT;

	if (j->rc == BS_ERR_NOT_FOUND) {
		rpc_call_fail(j->call, GRPC_STATUS_NOT_FOUND, "start is at or beyond the end of the log");
	} else if (j->rc != 0) {
		rpc_call_fail(j->call, GRPC_STATUS_UNAVAILABLE, "cannot read the audit log: %s",
		    bs_strerror(j->rc));
	} else {
		resp.start = j->start;
		resp.n_records = (size_t)j->got;
		resp.records = j->recs;
		resp.log_size = audit_log_size(j->log);
		rpc_call_finish_pb(j->call, &resp.base);
	}
	for (uint64_t i = 0; i < j->want; i++)
		free(j->recs[i].data);
	free(j->recs);
	free(j);
}

static void
read_cancel(void *arg)
{
	workq_job_cancel(arg);
}

static void
read_records(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__ReadRecordsRequest *r = (const Boltseal__V1__ReadRecordsRequest *)msg;
	struct read_job *j;
	uint64_t want;
	int rc;

	want = r->max_records == 0 ? READ_DEFAULT : r->max_records;
	if (want > READ_MAX)
		want = READ_MAX;
	j = calloc(1, sizeof(*j));
	if (j != NULL) {
		j->start = r->start;
		j->recs = calloc((size_t)want, sizeof(*j->recs));
	}
	if (j == NULL || j->recs == NULL) {
		if (j != NULL)
			free(j->recs);
		free(j);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (!audit_ready(call)) {
		free(j->recs);
		free(j);
		return;
	}
	j->want = want;
	j->call = call;
	j->log = svc->audit;
	j->job.work = read_work;
	j->job.done = read_done;
	rc = svc->shutting_down ? BS_ERR_UNAVAILABLE : workq_submit(svc->work, &j->job);
	if (rc != 0) {
		free(j->recs);
		free(j);
		rpc_call_fail(call, rc == BS_ERR_QUEUE_FULL ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_UNAVAILABLE, "cannot queue the read: %s", bs_strerror(rc));
		return;
	}
	rpc_call_on_cancel(call, read_cancel, &j->job);
}

static const struct rpc_method methods[] = {
	{ "GetCheckpoint", &boltseal__v1__get_checkpoint_request__descriptor,
	    &boltseal__v1__get_checkpoint_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_checkpoint },
	{ "GetInclusionProof", &boltseal__v1__get_inclusion_proof_request__descriptor,
	    &boltseal__v1__get_inclusion_proof_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_inclusion_proof },
	{ "GetConsistencyProof", &boltseal__v1__get_consistency_proof_request__descriptor,
	    &boltseal__v1__get_consistency_proof_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_consistency_proof },
	{ "ReadRecords", &boltseal__v1__read_records_request__descriptor,
	    &boltseal__v1__read_records_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, read_records },
	{ "GetInclusionProofs", &boltseal__v1__get_inclusion_proofs_request__descriptor,
	    &boltseal__v1__get_inclusion_proofs_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, get_inclusion_proofs },
	{ "SealEvidence", &boltseal__v1__seal_evidence_request__descriptor,
	    &boltseal__v1__seal_evidence_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, seal_evidence },
};

/* Health: the audit service serves only where the daemon keeps an audit log. */
static int
serving(void *env, void *state)
{
	(void)state;
	return ((struct svc_ctx *)env)->audit != NULL;
}

const struct rpc_service auditservice_service = {
	.name = "boltseal.v1.AuditService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.serving = serving,
};
