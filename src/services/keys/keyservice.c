/*
 * keyservice.c - boltseal.v1.KeyService (see proto/boltseal/v1/keys.proto
 * for the contract): the service descriptor and what its handlers share.
 * The handlers live beside it: keys_manage.c (CreateKey, RotateKey, GetKey,
 * ListKeys, GetPublicKey), keys_sign.c (Sign, SignBatch), keys_verify.c.
 *
 * Handlers run on the event loop thread: they check the request, look the
 * key up in the in-memory catalog, ask the policy, and send key operations
 * through the key door (keyops/keyclient.h); CPU and disk work (Verify,
 * catalog writes) goes to the work queue, so the loop never waits for the
 * HSM, the CPU-heavy crypto or the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "boltseal/v1/keys.pb-c.h"
#include "common/log.h"
#include "daemon/bs_config.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/keys/keys_int.h"
#include "services/services.h"

/* ---- shared helpers --------------------------------------------------------- */

/* Fails call with the gRPC status err maps to and a message. */
void
keysvc_fail_err(struct rpc_call *call, int err, const char *what)
{
	rpc_call_fail(call, rpc_status_from_err(err), "%s: %s", what, bs_strerror(err));
}
static void
op_cancel_cb(void *arg)
{
	keyclient_cancel(arg);
}
/*
 * Sends r through the key door; done(arg, answer) runs later on the loop.
 * Registers the cancellation with call. Returns 0 or the submit error.
 */
int
keysvc_submit(struct rpc_call *call, struct svc_ctx *svc, const struct keyop_request *r,
    keyclient_done_fn done, void *arg)
{
	struct keyclient_op *op = NULL;
	int rc;

	if (svc->shutting_down)
		return BS_ERR_UNAVAILABLE;
	if ((rc = keyclient_submit(svc->keys, r, done, arg, &op)) != 0)
		return rc;
	rpc_call_on_cancel(call, op_cancel_cb, op);
	return 0;
}
void
keysvc_work_cancel(void *arg)
{
	workq_job_cancel(arg);
}
void
keysvc_fail_work_submit(struct rpc_call *call, int rc)
{
	if (rc == BS_ERR_QUEUE_FULL)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "work queue is full, retry later");
	else
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "work queue unavailable");
}
void
keysvc_fail_submit(struct rpc_call *call, int rc)
{
	if (rc == BS_ERR_QUEUE_FULL)
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "HSM work queue is full, retry later");
	else
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "HSM worker pool unavailable");
}
/* Looks a key up; answers NOT_FOUND/INVALID_ARGUMENT itself and returns NULL. */
/*
 * Looks up key name and asks the policy whether the caller may use it for
 * this method (attributes key.algorithm plus extra). The policy is asked
 * before "not found" is said, so a caller learns nothing of keys it may not
 * use. Answers the call and returns NULL on any refusal.
 */
const struct catalog_key *
keysvc_lookup_key_attrs(struct rpc_call *call, const char *name, const struct policy_attr *extra,
    size_t nextra)
{
	struct policy_attr attrs[8];
	const struct catalog_key *k;
	size_t n = 0;

	if (name == NULL || !catalog_name_valid(name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "key name must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
		return NULL;
	}
	k = catalog_find(rpc_call_svc(call)->catalog, name);
	if (k != NULL)
		attrs[n++] = (struct policy_attr){ "key.algorithm", bs_alg_name(k->alg) };
	for (size_t i = 0; i < nextra && n < sizeof(attrs) / sizeof(attrs[0]); i++)
		attrs[n++] = extra[i];
	if (!rpc_call_authorize(call, name, k != NULL ? bs_purpose_name(k->purpose) : NULL, attrs, n))
		return NULL;
	if (k == NULL)
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' not found", name);
	return k;
}
const struct catalog_key *
keysvc_lookup_key(struct rpc_call *call, const char *name)
{
	return keysvc_lookup_key_attrs(call, name, NULL, 0);
}
/*
 * Checks a sign/verify input: is_digest with a 32-byte SHA-256 digest for
 * ECDSA and RSA; messages for everything. Returns NULL or the problem.
 */
const char *
keysvc_input_problem(enum bs_alg alg, int is_digest, size_t len)
{
	if (!is_digest)
		return NULL;
	if (alg == BS_ALG_ED25519)
		return "Ed25519 signs messages, not digests: send message";
	if (len != SHA256_DIGEST_LENGTH)
		return "digest must be a 32-byte SHA-256 digest";
	return NULL;
}
/* The request's signature format, or INVALID_ARGUMENT answered (-1). */
int
keysvc_sig_format(struct rpc_call *call, Boltseal__V1__SignatureFormat f, enum bs_sig_format *out)
{
	if (bs_sig_format_from_pb(f, out) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "signature_format must be DER or RAW");
		return -1;
	}
	return 0;
}
/* Fills pb (and its versions array, vbuf/vptr of k->nversions) from k. */
static void
key_to_pb(const struct catalog_key *k, Boltseal__V1__Key *pb, Boltseal__V1__KeyVersion *vbuf,
    Boltseal__V1__KeyVersion **vptr)
{
	const struct catalog_version *primary = catalog_key_primary(k);

	boltseal__v1__key__init(pb);
	pb->name = (char *)k->name;
	pb->purpose = bs_purpose_to_pb(k->purpose);
	pb->algorithm = bs_alg_to_pb(k->alg);
	pb->state = bs_key_state_to_pb(k->state);
	pb->primary_version = primary != NULL ? primary->version : 0;
	pb->create_time_unix = k->created;
	pb->min_decryption_version = k->min_decrypt;
	pb->destroy_time_unix = k->destroy_at;
	for (size_t i = 0; i < k->nversions; i++) {
		boltseal__v1__key_version__init(&vbuf[i]);
		vbuf[i].version = k->versions[i].version;
		vbuf[i].state = bs_key_state_to_pb(k->versions[i].state);
		vbuf[i].create_time_unix = k->versions[i].created;
		vbuf[i].destroy_time_unix = k->versions[i].destroy_at;
		vptr[i] = &vbuf[i];
	}
	pb->n_versions = k->nversions;
	pb->versions = vptr;
}
/* A heap-allocated protobuf Key for k; free with key_pb_free. */
Boltseal__V1__Key *
keysvc_key_pb_new(const struct catalog_key *k)
{
	size_t n = k->nversions;
	size_t sz = sizeof(Boltseal__V1__Key) + n * (sizeof(Boltseal__V1__KeyVersion) +
	    sizeof(Boltseal__V1__KeyVersion *));
	uint8_t *mem = calloc(1, sz);
	Boltseal__V1__KeyVersion *vbuf;

	if (mem == NULL)
		return NULL;
	vbuf = (Boltseal__V1__KeyVersion *)(mem + sizeof(Boltseal__V1__Key));
	key_to_pb(k, (Boltseal__V1__Key *)mem, vbuf, (Boltseal__V1__KeyVersion **)(vbuf + n));
	return (Boltseal__V1__Key *)mem;
}
void
keysvc_key_pb_free(Boltseal__V1__Key *pb)
{
	free(pb);
}

void
svc_note_hsm_result(struct svc_ctx *svc, int err)
{
	if (err == BS_ERR_HSM && svc->hsm_healthy) {
		svc->hsm_healthy = 0;
		bs_log(BS_LOG_ERROR, "HSM operation failed; health is NOT_SERVING until a probe succeeds",
		    NULL);
	} else if (err == 0 && !svc->hsm_healthy) {
		svc->hsm_healthy = 1;
		bs_log(BS_LOG_INFO, "HSM usable again", NULL);
	}
}
static const struct rpc_method methods[] = {
	{ "CreateKey", &boltseal__v1__create_key_request__descriptor,
	    &boltseal__v1__create_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_create_key },
	{ "GetKey", &boltseal__v1__get_key_request__descriptor,
	    &boltseal__v1__get_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_get_key },
	{ "ListKeys", &boltseal__v1__list_keys_request__descriptor,
	    &boltseal__v1__list_keys_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_list_keys },
	{ "RotateKey", &boltseal__v1__rotate_key_request__descriptor,
	    &boltseal__v1__rotate_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_rotate_key },
	{ "GetPublicKey", &boltseal__v1__get_public_key_request__descriptor,
	    &boltseal__v1__get_public_key_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_get_public_key },
	{ "Sign", &boltseal__v1__sign_request__descriptor, &boltseal__v1__sign_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_sign },
	{ "Verify", &boltseal__v1__verify_request__descriptor,
	    &boltseal__v1__verify_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_verify },
	{ "SignBatch", &boltseal__v1__sign_batch_request__descriptor,
	    &boltseal__v1__sign_batch_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_sign_batch },
	{ "DisableKey", &boltseal__v1__set_key_state_request__descriptor,
	    &boltseal__v1__set_key_state_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_disable_key },
	{ "EnableKey", &boltseal__v1__set_key_state_request__descriptor,
	    &boltseal__v1__set_key_state_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_enable_key },
	{ "ScheduleKeyDestruction", &boltseal__v1__schedule_key_destruction_request__descriptor,
	    &boltseal__v1__set_key_state_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_schedule_key_destruction },
	{ "CancelKeyDestruction", &boltseal__v1__set_key_state_request__descriptor,
	    &boltseal__v1__set_key_state_response__descriptor,
	    RPC_AUTHZ_POLICY, 0, keysvc_cancel_key_destruction },
};
/* keys.* settings, in this order (values[] of init). */
static const struct rpc_setting settings[] = {
	/* the shortest waiting period ScheduleKeyDestruction accepts (AWS KMS: 7) */
	{ "min_pending_days", 0, 30, 7, 0 },
	/* how often the destroyer looks for destructions that are due */
	{ "destruction_check_ms", 100, 3600000, 60000, 0 },
};
static int
init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct keysvc_state *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	st->svc = env;
	st->min_pending_days = (unsigned)values[0];
	st->check_ms = values[1];
	if ((rc = keysvc_destroyer_start(st, err, errlen)) != 0) {
		free(st);
		return rc;
	}
	*state = st;
	return 0;
}
static void
fini(void *state)
{
	struct keysvc_state *st = state;

	keysvc_destroyer_stop(st);
	free(st);
}
const struct rpc_service keyservice_service = {
	.name = "boltseal.v1.KeyService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "keys",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = init,
	.fini = fini,
};
