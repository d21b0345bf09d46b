/*
 * envelope_tokenize.c - EnvelopeService.Tokenize: deterministic keyed tokens
 * of identifiers (driver ids, VINs) so that analytics can join on them
 * without learning them. A token is the base64url (RFC 4648 5, no padding)
 * of HMAC-SHA-256 (RFC 2104), computed in the HSM with a key of purpose
 * envelope and algorithm hmac-sha256, over
 *     "boltseal token v1\n" || namespace || "\n" || value
 * The namespace (no newline in it) separates domains: the same value gives
 * unrelated tokens in "driver-id" and "vin". Tokens depend on the key
 * version, so the request may pin one. The values are never logged nor
 * audited, not even hashed (a hash of a driver id is a dictionary away from
 * it): the record names the namespace and the count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "boltseal/v1/envelope.pb-c.h"
#include "formats/jose.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "rpc/rpc_status.h"
#include "services/envelope/envelope_int.h"

#define TOKEN_PREFIX "boltseal token v1\n"
#define NAMESPACE_MAX 64
#define VALUE_MAX 1024
#define TOKEN_LEN 43                   /* base64url of 32 bytes, no padding */

struct tcall {
	struct rpc_call *call;
	char key[CATALOG_NAME_MAX + 1];
	uint32_t version;
	size_t n;
	uint8_t **msgs;                    /* the HMAC inputs (wiped) */
	size_t *lens;
};

static void
tcall_free(struct tcall *t)
{
	for (size_t i = 0; t->msgs != NULL && i < t->n; i++)
		if (t->msgs[i] != NULL)
			OPENSSL_clear_free(t->msgs[i], t->lens[i]);
	free(t->msgs);
	free(t->lens);
	free(t);
}

static int
namespace_valid(const char *ns)
{
	size_t i;

	for (i = 0; ns[i] != '\0'; i++) {
		char ch = ns[i];

		if (i >= NAMESPACE_MAX || !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return i > 0;
}

static void
tokens_done(void *arg, struct keyop_answer *a)
{
	struct tcall *t = arg;
	Boltseal__V1__TokenizeResponse r = BOLTSEAL__V1__TOKENIZE_RESPONSE__INIT;
	char *buf = NULL, **tokens = NULL;

	if (a->rc != 0 || a->nsigs != t->n) {
		rpc_call_fail(t->call, GRPC_STATUS_UNAVAILABLE, "the HSM operation failed (%s)",
		    bs_strerror(a->rc != 0 ? a->rc : BS_ERR_INTERNAL));
		goto out;
	}
	if ((buf = malloc(t->n * (TOKEN_LEN + 1))) == NULL ||
	    (tokens = calloc(t->n, sizeof(*tokens))) == NULL) {
		rpc_call_fail(t->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (a->sigs[i].rc != 0 || a->sigs[i].sig_len != 32 ||
		    jose_b64url(a->sigs[i].sig, 32, buf + i * (TOKEN_LEN + 1), TOKEN_LEN + 1) < 0) {
			rpc_call_fail(t->call, GRPC_STATUS_UNAVAILABLE, "the HSM's HMAC failed");
			goto out;
		}
		tokens[i] = buf + i * (TOKEN_LEN + 1);
	}
	r.tokens = tokens;
	r.n_tokens = t->n;
	r.key_name = t->key;
	r.key_version = t->version;
	rpc_call_finish_pb(t->call, &r.base);
out:
	free(buf);
	free(tokens);
	tcall_free(t);
}

void
env_tokenize(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__TokenizeRequest *r = (const Boltseal__V1__TokenizeRequest *)msg;
	struct svc_ctx *svc = rpc_call_svc(call);
	struct env_state *st = rpc_call_service_state(call);
	struct policy_attr attr = { "request.namespace", r->namespace_ };
	const struct catalog_key *k;
	const struct catalog_version *v;
	struct keyop_request kr;
	struct keyop_input *in = NULL;
	struct tcall *t = NULL;
	char count[24];
	size_t nslen;

	if (!catalog_name_valid(r->key_name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "key name must be 1-64 characters "
		    "of [A-Za-z0-9._-] starting with a letter or digit");
		return;
	}
	if (!namespace_valid(r->namespace_)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "namespace must be 1-%d characters "
		    "of [a-z0-9._-]", NAMESPACE_MAX);
		return;
	}
	if (r->n_values == 0 || r->n_values > st->batch_max) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "1..%u values per call "
		    "(envelope.batch_max)", st->batch_max);
		return;
	}
	for (size_t i = 0; i < r->n_values; i++)
		if (r->values[i][0] == '\0' || strlen(r->values[i]) > VALUE_MAX) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "values[%zu]: 1..%d bytes",
			    i, VALUE_MAX);
			return;
		}
	k = catalog_find(svc->catalog, r->key_name);
	if (!rpc_call_authorize(call, r->key_name, k != NULL ? bs_purpose_name(k->purpose) : NULL,
	    &attr, 1))
		return;
	if (k == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' not found", r->key_name);
		return;
	}
	if (k->purpose != BS_PURPOSE_ENVELOPE || k->alg != BS_ALG_HMAC_SHA256) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' is not a token key "
		    "(purpose envelope, hmac-sha256)", r->key_name);
		return;
	}
	v = r->key_version != 0 ? catalog_key_version(k, r->key_version) : catalog_key_primary(k);
	if (v == NULL || !catalog_version_usable(k, v)) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' has no enabled "
		    "version %u", r->key_name, r->key_version);
		return;
	}
	rpc_call_audit_key(call, k->name, v->version);
	snprintf(count, sizeof(count), "%zu", r->n_values);
	if (rpc_call_audit_field(call, "namespace", r->namespace_) != 0 ||
	    rpc_call_audit_field(call, "count", count) != 0)
		goto nomem;

	nslen = strlen(r->namespace_);
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->msgs = calloc(r->n_values,
	    sizeof(*t->msgs))) == NULL || (t->lens = calloc(r->n_values, sizeof(*t->lens))) ==
	    NULL || (in = calloc(r->n_values, sizeof(*in))) == NULL)
		goto nomem;
	t->call = call;
	t->n = r->n_values;
	t->version = v->version;
	snprintf(t->key, sizeof(t->key), "%s", k->name);
	for (size_t i = 0; i < t->n; i++) {
		size_t vlen = strlen(r->values[i]);
		size_t len = sizeof(TOKEN_PREFIX) - 1 + nslen + 1 + vlen;
		uint8_t *m = malloc(len);

		if (m == NULL)
			goto nomem;
		memcpy(m, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
		memcpy(m + sizeof(TOKEN_PREFIX) - 1, r->namespace_, nslen);
		m[sizeof(TOKEN_PREFIX) - 1 + nslen] = '\n';
		memcpy(m + sizeof(TOKEN_PREFIX) + nslen, r->values[i], vlen);
		t->msgs[i] = m;
		t->lens[i] = len;
		in[i].data = m;
		in[i].len = len;
	}
	memset(&kr, 0, sizeof(kr));
	kr.type = KEYOP_SIGN;
	snprintf(kr.key.name, sizeof(kr.key.name), "%s", k->name);
	kr.key.version = v->version;
	kr.alg = BS_ALG_HMAC_SHA256;
	memcpy(kr.id, v->hsm_id, KEYOPS_ID_LEN);
	kr.inputs = in;
	kr.ninputs = t->n;
	if (svc->shutting_down || svc->keys == NULL ||
	    keyclient_submit(svc->keys, &kr, tokens_done, t, NULL) != 0) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "HSM worker pool busy or unavailable");
		tcall_free(t);
	}
	free(in);
	return;
nomem:
	rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (t != NULL)
		tcall_free(t);
	free(in);
}
