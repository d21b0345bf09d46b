/*
 * keys_sign.c - KeyService Sign: the key and its signing version checked,
 * the policy asked, the input sent through the key door, the signature
 * encoded as the caller asked; and those steps' helpers, which SignBatch
 * (keys_batch.c) shares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "formats/ecdsa_sig.h"
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

/*
 * The signature the key side made (raw r||s for ECDSA) in the requested
 * format, into out (SIG_MAX bytes). Returns 0 or the signature's error.
 */
int
keysvc_encode_sig(enum bs_alg alg, enum bs_sig_format fmt, const struct keyop_sig *ks,
    uint8_t *out, size_t *out_len)
{
	if (ks->rc != 0)
		return ks->rc;
	if (alg == BS_ALG_ECDSA_P256_SHA256 && fmt == BS_SIGFMT_DER) {
		if (ks->sig_len != ECDSA_P256_RAW_LEN)
			return BS_ERR_HSM;
		return ecdsa_sig_raw_to_der(ks->sig, out, SIG_MAX, out_len);
	}
	if (ks->sig_len > SIG_MAX)
		return BS_ERR_HSM;
	memcpy(out, ks->sig, ks->sig_len);
	*out_len = ks->sig_len;
	return 0;
}
/* A SIGN of key k version v, with inputs (borrowed). */
void
keysvc_sign_request(struct keyop_request *r, const struct catalog_key *k,
    const struct catalog_version *v, struct keyop_input *inputs, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->type = KEYOP_SIGN;
	snprintf(r->key.name, sizeof(r->key.name), "%s", k->name);
	r->key.version = v->version;
	memcpy(r->id, v->hsm_id, KEYOPS_ID_LEN);
	r->alg = k->alg;
	r->inputs = inputs;
	r->ninputs = n;
}
/* ---- Sign ---------------------------------------------------------------------- */

/*
 * The key Sign/SignBatch use: purpose GENERIC (keys of other purposes belong
 * to their own services, so one cannot be made to sign arbitrary bytes) and
 * an enabled primary version with a cached handle. Answers the error itself.
 */
const struct catalog_version *
keysvc_signing_version(struct rpc_call *call, const struct catalog_key *k)
{
	const struct catalog_version *v;

	if (k->purpose != BS_PURPOSE_GENERIC) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
		    "key '%s' has purpose %s; KeyService signs only with generic keys", k->name,
		    bs_purpose_name(k->purpose));
		return NULL;
	}
	if (k->state != BS_KEY_ENABLED) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is %s", k->name,
		    bs_key_state_name(k->state));
		return NULL;
	}
	v = catalog_key_primary(k);
	if (v == NULL) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' has no enabled version",
		    k->name);
		return NULL;
	}
	return v;
}
struct sign_op {
	struct rpc_call *call;
	struct svc_ctx *svc;
	char key_name[CATALOG_NAME_MAX + 1];
	enum bs_alg alg;
	uint32_t version;
	enum bs_sig_format fmt;
};
static void
sign_answered(void *arg, struct keyop_answer *a)
{
	struct sign_op *o = arg;
	Boltseal__V1__SignResponse resp = BOLTSEAL__V1__SIGN_RESPONSE__INIT;
	uint8_t sig[SIG_MAX];
	size_t sig_len = 0;
	int rc = a->rc;

	if (rc == 0)
		rc = keysvc_encode_sig(o->alg, o->fmt, &a->sigs[0], sig, &sig_len);
	svc_note_hsm_result(o->svc, rc);
	rpc_call_audit_key(o->call, o->key_name, o->version);
	if (rc != 0) {
		keysvc_fail_err(o->call, rc, "signing failed");
	} else if (rpc_call_audit_payload(o->call, a->sigs[0].payload_sha256) != 0) {
		rpc_call_fail(o->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		resp.signature.data = sig;
		resp.signature.len = sig_len;
		resp.key_name = o->key_name;
		resp.key_version = o->version;
		resp.algorithm = bs_alg_to_pb(o->alg);
		rpc_call_finish_pb(o->call, &resp.base);
	}
	free(o);
}
void
keysvc_sign(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const Boltseal__V1__SignRequest *r = (const Boltseal__V1__SignRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	const ProtobufCBinaryData *in;
	struct keyop_request req;
	struct keyop_input input;
	const char *problem;
	struct sign_op *o;
	int rc, is_digest;
	enum bs_sig_format fmt;

	if (keysvc_sig_format(call, r->signature_format, &fmt) != 0)
		return;
	if ((k = keysvc_lookup_key(call, r->key_name)) == NULL ||
	    (v = keysvc_signing_version(call, k)) == NULL)
		return;
	if (r->input_case == BOLTSEAL__V1__SIGN_REQUEST__INPUT__NOT_SET) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "one of message or digest is required");
		return;
	}
	is_digest = r->input_case == BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
	in = is_digest ? &r->digest : &r->message;
	if ((problem = keysvc_input_problem(k->alg, is_digest, in->len)) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", problem);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	o->call = call;
	o->svc = svc;
	memcpy(o->key_name, k->name, sizeof(o->key_name));
	o->alg = k->alg;
	o->version = v->version;
	o->fmt = fmt;
	input.is_digest = is_digest;
	input.data = in->data;
	input.len = in->len;
	keysvc_sign_request(&req, k, v, &input, 1);
	if ((rc = keysvc_submit(call, svc, &req, sign_answered, o)) != 0) {
		free(o);
		keysvc_fail_submit(call, rc);
	}
}
