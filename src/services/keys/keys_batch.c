/*
 * keys_batch.c - KeyService SignBatch and its scheduling: the items checked
 * one by one (a refused item keeps its place and its own status), split
 * into one slice per HSM worker so every session works on the batch, one
 * SIGN through the key door per slice, the results put back in request
 * order once every slice has answered.
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

/* ---- SignBatch ------------------------------------------------------------------ */

struct batch_item {
	int is_digest;
	const uint8_t *data;        /* points into the decoded request (owned by the call) */
	size_t len;
	int rc;                     /* BS_ERR_* or 0 */
	const char *problem;        /* set when refused before signing */
	size_t sig_len;
	uint8_t sig[SIG_MAX];
	uint8_t payload_sha256[SHA256_DIGEST_LENGTH];
};
struct batch;
/* One slice of the batch: one SIGN through the key door. */
struct batch_slice {
	struct batch *b;
	size_t from, to;
	struct keyclient_op *op;
};
struct batch {
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	uint32_t version;
	enum bs_sig_format fmt;
	size_t nitems;
	struct batch_item *items;
	size_t nslices, nsubmitted, ndone;
	struct batch_slice *slices;
};
static void
batch_free(struct batch *b)
{
	if (b->items != NULL)
		OPENSSL_clear_free(b->items, b->nitems * sizeof(*b->items));
	free(b->slices);
	free(b);
}
static void
batch_cancel_cb(void *arg)
{
	struct batch *b = arg;

	/* slices not submitted, or already answered, have no op */
	for (size_t i = 0; i < b->nslices; i++)
		keyclient_cancel(b->slices[i].op);
}
static void
batch_respond(struct batch *b)
{
	Boltseal__V1__SignBatchResponse resp = BOLTSEAL__V1__SIGN_BATCH_RESPONSE__INIT;
	Boltseal__V1__SignBatchResult *res = NULL, **ptrs = NULL;
	int hsm_rc = 0;

	res = calloc(b->nitems, sizeof(*res));
	ptrs = calloc(b->nitems, sizeof(*ptrs));
	if (b->nitems > 0 && (res == NULL || ptrs == NULL)) {
		rpc_call_fail(b->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->nitems; i++) {
		struct batch_item *it = &b->items[i];

		boltseal__v1__sign_batch_result__init(&res[i]);
		ptrs[i] = &res[i];
		if (it->problem != NULL) {
			res[i].status_code = GRPC_STATUS_INVALID_ARGUMENT;
			res[i].error_message = (char *)it->problem;
		} else if (it->rc != 0) {
			res[i].status_code = (uint32_t)rpc_status_from_err(it->rc);
			res[i].error_message = (char *)bs_strerror(it->rc);
			if (it->rc == BS_ERR_HSM)
				hsm_rc = it->rc;
		} else {
			res[i].signature.data = it->sig;
			res[i].signature.len = it->sig_len;
			if (rpc_call_audit_payload(b->call, it->payload_sha256) != 0) {
				rpc_call_fail(b->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
				goto out;
			}
		}
	}
	rpc_call_audit_key(b->call, b->key_name, b->version);
	svc_note_hsm_result(b->svc, hsm_rc);
	resp.n_results = b->nitems;
	resp.results = ptrs;
	resp.key_name = b->key_name;
	resp.key_version = b->version;
	resp.algorithm = bs_alg_to_pb(b->alg);
	rpc_call_finish_pb(b->call, &resp.base);
out:
	free(res);
	free(ptrs);
}
/* Loop: one slice's signatures, in the order of its signable items. */
static void
batch_slice_answered(void *arg, struct keyop_answer *a)
{
	struct batch_slice *sl = arg;
	struct batch *b = sl->b;
	size_t k = 0;

	sl->op = NULL;   /* freed once this returns */
	for (size_t i = sl->from; i < sl->to; i++) {
		struct batch_item *it = &b->items[i];

		if (it->problem != NULL)
			continue;
		if (a->rc != 0 || k >= a->nsigs)
			it->rc = a->rc != 0 ? a->rc : BS_ERR_INTERNAL;
		else
			it->rc = keysvc_encode_sig(b->alg, b->fmt, &a->sigs[k], it->sig, &it->sig_len);
		if (a->rc == 0 && k < a->nsigs) {
			memcpy(it->payload_sha256, a->sigs[k].payload_sha256, SHA256_DIGEST_LENGTH);
			k++;
		}
	}
	if (++b->ndone < b->nsubmitted)
		return;
	batch_respond(b);
	batch_free(b);
}
/* Points the items of b at the inputs of r, checking each. */
static int
batch_load(struct batch *b, const Boltseal__V1__SignBatchRequest *r)
{
	b->items = calloc(r->n_items > 0 ? r->n_items : 1, sizeof(*b->items));
	if (b->items == NULL)
		return BS_ERR_NOMEM;
	b->nitems = r->n_items;
	for (size_t i = 0; i < r->n_items; i++) {
		const Boltseal__V1__SignBatchItem *src = r->items[i];
		struct batch_item *it = &b->items[i];
		const ProtobufCBinaryData *in;

		if (src->input_case == BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT__NOT_SET) {
			it->problem = "one of message or digest is required";
			continue;
		}
		it->is_digest = src->input_case == BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
		in = it->is_digest ? &src->digest : &src->message;
		it->problem = keysvc_input_problem(b->alg, it->is_digest, in->len);
		it->data = in->data;
		it->len = in->len;
	}
	return 0;
}
/*
 * Submits slice sl: a SIGN of its signable items (those without a problem).
 * Returns 0 (submitted; its answer comes later on the loop), 1 (nothing in
 * it to keysvc_sign), or the submit error.
 */
static int
batch_submit_slice(struct batch *b, const struct catalog_key *k,
    const struct catalog_version *v, struct batch_slice *sl)
{
	struct keyop_input inputs[KEYOPS_SIGN_MAX];
	struct keyop_request req;
	size_t n = 0;

	for (size_t i = sl->from; i < sl->to; i++)
		if (b->items[i].problem == NULL) {
			inputs[n].is_digest = b->items[i].is_digest;
			inputs[n].data = b->items[i].data;
			inputs[n].len = b->items[i].len;
			n++;
		}
	if (n == 0)
		return 1;
	if (b->svc->shutting_down)
		return BS_ERR_UNAVAILABLE;
	keysvc_sign_request(&req, k, v, inputs, n);
	return keyclient_submit(b->svc->keys, &req, batch_slice_answered, sl, &sl->op);
}
void
keysvc_sign_batch(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__SignBatchRequest *r = (const Boltseal__V1__SignBatchRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	struct batch *b = NULL;
	size_t per, i;
	int rc;
	enum bs_sig_format fmt;

	if (keysvc_sig_format(call, r->signature_format, &fmt) != 0)
		return;
	if ((k = keysvc_lookup_key(call, r->key_name)) == NULL ||
	    (v = keysvc_signing_version(call, k)) == NULL)
		return;
	if (r->n_items == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "a batch needs at least one item");
		return;
	}
	if (r->n_items > svc->cfg->sign_batch_max || r->n_items > KEYOPS_SIGN_MAX) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "batch of %zu items exceeds the limit of %u", r->n_items, svc->cfg->sign_batch_max);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	b->call = call;
	b->svc = svc;
	b->alg = k->alg;
	memcpy(b->key_name, k->name, sizeof(b->key_name));
	b->version = v->version;
	b->fmt = fmt;
	/* one slice per worker so every HSM session works on the batch */
	b->nslices = svc->nworkers < r->n_items ? svc->nworkers : r->n_items;
	if (b->nslices == 0)
		b->nslices = 1;
	if (batch_load(b, r) != 0 || (b->slices = calloc(b->nslices, sizeof(*b->slices))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		batch_free(b);
		return;
	}
	per = (b->nitems + b->nslices - 1) / b->nslices;
	for (i = 0; i < b->nslices; i++) {
		struct batch_slice *sl = &b->slices[i];

		sl->b = b;
		sl->from = i * per;
		sl->to = sl->from + per < b->nitems ? sl->from + per : b->nitems;
		rc = batch_submit_slice(b, k, v, sl);
		if (rc == 1)
			continue;
		if (rc != 0) {
			if (b->nsubmitted == 0) {
				keysvc_fail_submit(call, rc);
				batch_free(b);
				return;
			}
			/* the rest of the batch waits for no one: mark it refused */
			for (size_t x = sl->from; x < b->nitems; x++)
				if (b->items[x].problem == NULL)
					b->items[x].rc = rc;
			break;
		}
		b->nsubmitted++;
	}
	if (b->nsubmitted == 0) {
		/* nothing needed the HSM: every item was refused on its own */
		batch_respond(b);
		batch_free(b);
		return;
	}
	rpc_call_on_cancel(call, batch_cancel_cb, b);
	/* freed by the last batch_slice_answered */
}
