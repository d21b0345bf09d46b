/*
 * keys_verify.c - KeyService Verify: with a catalog key's enabled versions
 * or a caller-supplied SubjectPublicKeyInfo, verified with OpenSSL on the
 * work queue (never on an HSM thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "formats/sigverify.h"
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

/* ---- Verify --------------------------------------------------------------------- */

struct verify_cand {
	uint32_t version;
	uint8_t *spki;              /* copied */
	size_t spki_len;
};
struct verify_job {
	struct workq_job job;        /* first; on the general work queue, not an HSM thread */
	struct rpc_call *call;
	enum bs_alg alg;
	int is_digest;
	enum bs_sig_format fmt;
	struct verify_cand *cands;
	size_t ncands;
	uint8_t *data;
	size_t data_len;
	uint8_t *sig;
	size_t sig_len;
	int rc;
	int valid;
	uint32_t valid_version;
};
static void
verify_work(struct workq_job *job, void *ctx)
{
	struct verify_job *j = (struct verify_job *)job;

	(void)ctx;
	j->rc = 0;
	for (size_t i = 0; i < j->ncands && !workq_job_cancelled(job); i++) {
		int rc = sigverify_verify(j->cands[i].spki, j->cands[i].spki_len, j->alg, j->is_digest,
		    j->data, j->data_len, j->sig, j->sig_len, j->fmt);

		if (rc == 0) {
			j->valid = 1;
			j->valid_version = j->cands[i].version;
			return;
		}
		if (rc != BS_ERR_SIG_INVALID) {
			j->rc = rc;
			return;
		}
	}
}
static void
verify_job_free(struct verify_job *j)
{
	for (size_t i = 0; i < j->ncands; i++)
		free(j->cands[i].spki);
	free(j->cands);
	OPENSSL_clear_free(j->data, j->data_len);
	free(j->sig);
	free(j);
}
static void
verify_done(struct workq_job *job)
{
	struct verify_job *j = (struct verify_job *)job;
	Boltseal__V1__VerifyResponse resp = BOLTSEAL__V1__VERIFY_RESPONSE__INIT;

	if (j->rc != 0) {
		keysvc_fail_err(j->call, j->rc, "verification failed");
	} else {
		resp.valid = j->valid;
		resp.key_version = j->valid_version;
		rpc_call_finish_pb(j->call, &resp.base);
	}
	verify_job_free(j);
}
static int
add_cand(struct verify_job *j, uint32_t version, const uint8_t *spki, size_t len)
{
	struct verify_cand *c = &j->cands[j->ncands];

	c->spki = malloc(len > 0 ? len : 1);
	if (c->spki == NULL)
		return BS_ERR_NOMEM;
	memcpy(c->spki, spki, len);
	c->spki_len = len;
	c->version = version;
	j->ncands++;
	return 0;
}
static void *
dup_bytes(const ProtobufCBinaryData *b)
{
	uint8_t *p = malloc(b->len > 0 ? b->len : 1);

	if (p != NULL && b->len > 0)
		memcpy(p, b->data, b->len);
	return p;
}
/* Collects the candidate keys of r into j; answers errors itself (returns -1). */
static int
verify_collect(struct rpc_call *call, const Boltseal__V1__VerifyRequest *r, struct verify_job *j)
{
	const struct catalog_key *k;
	int rc = 0;

	if (r->key_case == BOLTSEAL__V1__VERIFY_REQUEST__KEY_PUBLIC_KEY_DER) {
		if (!rpc_call_authorize(call, NULL, NULL, NULL, 0))
			return -1;
		rc = sigverify_spki_alg(r->public_key_der.data, r->public_key_der.len, &j->alg);
		if (rc != 0) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "public_key_der must be a DER SubjectPublicKeyInfo of ECDSA P-256, "
			    "Ed25519, or RSA of 2048 to 4096 bits with e = 65537");
			return -1;
		}
		j->cands = calloc(1, sizeof(*j->cands));
		if (j->cands == NULL ||
		    add_cand(j, 0, r->public_key_der.data, r->public_key_der.len) != 0)
			goto nomem;
		return 0;
	}
	if (r->key_case != BOLTSEAL__V1__VERIFY_REQUEST__KEY_KEY_NAME) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "one of key_name or public_key_der is required");
		return -1;
	}
	if ((k = keysvc_lookup_key(call, r->key_name)) == NULL)
		return -1;
	if (bs_alg_is_symmetric(k->alg)) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is a secret key (%s): "
		    "it makes no signatures", k->name, bs_alg_name(k->alg));
		return -1;
	}
	if (k->state != BS_KEY_ENABLED) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is %s", k->name,
		    bs_key_state_name(k->state));
		return -1;
	}
	j->alg = k->alg;
	j->cands = calloc(k->nversions > 0 ? k->nversions : 1, sizeof(*j->cands));
	if (j->cands == NULL)
		goto nomem;
	if (r->key_version != 0) {
		const struct catalog_version *v = catalog_key_version(k, r->key_version);

		if (v == NULL) {
			rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' has no version %u", k->name,
			    r->key_version);
			return -1;
		}
		if (v->state != BS_KEY_ENABLED) {
			rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			    "key '%s' version %u is %s", k->name, r->key_version,
			    bs_key_state_name(v->state));
			return -1;
		}
		if (add_cand(j, v->version, v->spki, v->spki_len) != 0)
			goto nomem;
		return 0;
	}
	/* newest first: the likeliest signer */
	for (size_t i = k->nversions; i-- > 0;) {
		const struct catalog_version *v = &k->versions[i];

		if (v->state == BS_KEY_ENABLED && add_cand(j, v->version, v->spki, v->spki_len) != 0)
			goto nomem;
	}
	return 0;
nomem:
	rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return -1;
}
void
keysvc_verify(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__VerifyRequest *r = (const Boltseal__V1__VerifyRequest *)msg;
	struct verify_job *j = NULL;
	const ProtobufCBinaryData *in;
	const char *problem;
	int rc;
	enum bs_sig_format fmt;

	if (keysvc_sig_format(call, r->signature_format, &fmt) != 0)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (verify_collect(call, r, j) != 0)
		goto out;
	if (r->input_case == BOLTSEAL__V1__VERIFY_REQUEST__INPUT__NOT_SET) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "one of message or digest is required");
		goto out;
	}
	j->is_digest = r->input_case == BOLTSEAL__V1__VERIFY_REQUEST__INPUT_DIGEST;
	in = j->is_digest ? &r->digest : &r->message;
	if ((problem = keysvc_input_problem(j->alg, j->is_digest, in->len)) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", problem);
		goto out;
	}
	j->data = dup_bytes(in);
	j->data_len = in->len;
	j->sig = dup_bytes(&r->signature);
	j->sig_len = r->signature.len;
	if (j->data == NULL || j->sig == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	j->fmt = fmt;
	j->job.work = verify_work;
	j->job.done = verify_done;
	j->call = call;
	rc = svc->shutting_down ? BS_ERR_UNAVAILABLE : workq_submit(svc->work, &j->job);
	if (rc != 0) {
		keysvc_fail_work_submit(call, rc);
		goto out;
	}
	rpc_call_on_cancel(call, keysvc_work_cancel, &j->job);
	j = NULL; /* freed by verify_done */
out:
	if (j != NULL)
		verify_job_free(j);
}
