/*
 * envelope_vehicle.c - EnvelopeService and the vehicle registry: the records
 * of the vehicles that contexts name (their attributes reach the policy),
 * and GenerateDataKeyForVehicle, which returns a data key's blob and the
 * same key encrypted to the vehicle's registered P-256 key as a JWE
 * (RFC 7516 compact serialization, RFC 7518 ECDH-ES+A256KW and A256GCM), so
 * that an ECU decrypts it with a standard JOSE library and its own private
 * key. Only active vehicles receive keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "boltseal/v1/envelope.pb-c.h"
#include "common/b64.h"
#include "formats/jwe.h"
#include "formats/sigverify.h"
#include "rpc/rpc_status.h"
#include "services/envelope/envelope_int.h"
#include "store/store.h"

#define SPKI_MAX 1024

/* Work queue: the current record of each item's vehicle, from one store snapshot. */
static void
read_work(struct workq_job *job, void *ctx)
{
	struct ecall *c = (struct ecall *)job;
	struct store_txn *tx = NULL;
	uint64_t rowv;

	(void)ctx;
	if ((c->rc = store_begin_read(c->svc->store, &tx)) != 0)
		return;
	for (size_t i = 0; i < c->nitems && c->rc == 0; i++) {
		struct env_item *it = &c->items[i];

		if (it->status != 0 || it->vehicle == NULL)
			continue;
		c->rc = vehicle_read(tx, it->vehicle, 0, &it->veh, &rowv);
		if (c->rc == BS_ERR_NOT_FOUND)
			c->rc = 0;    /* a context may name a vehicle the registry does not have */
	}
	store_rollback(tx);
}

static void
read_done(struct workq_job *job)
{
	struct ecall *c = (struct ecall *)job;

	if (c->rc != 0) {
		env_fail(c, c->rc == BS_ERR_INVALID ? GRPC_STATUS_INTERNAL : GRPC_STATUS_UNAVAILABLE,
		    c->rc == BS_ERR_INVALID ? "a vehicle's record cannot be read" :
		    "cannot read the vehicle registry");
		return;
	}
	env_authorize_and_run(c);
}

void
env_read_vehicles(struct ecall *c)
{
	int rc;

	c->job.work = read_work;
	c->job.done = read_done;
	if ((rc = workq_submit(c->svc->work, &c->job)) != 0)
		env_fail(c, rc == BS_ERR_QUEUE_FULL ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_UNAVAILABLE, "work queue full or unavailable, retry later");
}

void
env_generate_for_vehicle(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GenerateDataKeyForVehicleRequest *r =
	    (const Boltseal__V1__GenerateDataKeyForVehicleRequest *)msg;
	struct ecall *c;
	size_t n = 0;
	int have = 0;

	if ((c = ecall_new(call, ENV_FOR_VEHICLE, 1)) == NULL || env_set_kek(c, r->key_name) != 0)
		return;
	if (!vehicle_id_valid(r->vehicle_id)) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "vehicle_id must be 1-64 characters of "
		    "[A-Za-z0-9._-] starting with a letter or digit");
		return;
	}
	snprintf(c->vehicle, sizeof(c->vehicle), "%s", r->vehicle_id);
	c->key_id = r->key_id;
	if (r->n_context > ENVCTX_MAX) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the encryption context has %zu entries; "
		    "at most %d", r->n_context, ENVCTX_MAX);
		return;
	}
	for (size_t i = 0; i < r->n_context; i++) {
		if (strcmp(r->context[i]->key, "vehicle_id") == 0) {
			if (strcmp(r->context[i]->value, c->vehicle) != 0) {
				env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the context's vehicle_id "
				    "differs from the request's vehicle_id");
				return;
			}
			have = 1;
		}
		c->ctx_keys[n] = r->context[i]->key;
		c->ctx_values[n++] = r->context[i]->value;
	}
	/* the data key is bound to its vehicle: vehicle_id is always in the context */
	if (!have) {
		c->ctx_keys[n] = "vehicle_id";
		c->ctx_values[n++] = c->vehicle;
	}
	if (env_item_ctx_arrays(c, 0, n, c->ctx_keys, c->ctx_values) != 0)
		return;
	env_go(c);
}

/* The identity's public key, if it is the one to use: P-256, valid now, not revoked. */
static int
identity_usable(const json_t *id, int64_t now, uint8_t *spki, size_t *len)
{
	const char *b64 = json_string_value(json_object_get(id, "public_key"));
	json_int_t nb = json_integer_value(json_object_get(id, "not_before"));
	json_int_t na = json_integer_value(json_object_get(id, "not_after"));
	json_int_t revoked = json_integer_value(json_object_get(id, "revoked_at"));
	enum bs_alg alg;

	if (b64 == NULL || revoked != 0 || (nb != 0 && now < nb) || (na != 0 && now >= na))
		return 0;
	if (bs_b64_decode(b64, strlen(b64), 0, spki, SPKI_MAX, len) != 0)
		return 0;
	return sigverify_spki_alg(spki, *len, &alg) == 0 && alg == BS_ALG_ECDSA_P256_SHA256;
}

int
env_vehicle_check(struct ecall *c)
{
	struct env_item *it = &c->items[0];
	const json_t *ids, *id;
	uint8_t spki[SPKI_MAX];
	size_t len = 0, i, found = 0;
	int64_t now = (int64_t)time(NULL);
	int status;

	if (it->veh == NULL) {
		env_fail(c, GRPC_STATUS_NOT_FOUND, "vehicle '%s' not found", c->vehicle);
		return -1;
	}
	if ((status = vehicle_status_of(it->veh)) != VEHICLE_ACTIVE) {
		env_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "vehicle '%s' is %s: only active "
		    "vehicles receive data keys", c->vehicle, vehicle_status_name(status));
		return -1;
	}
	ids = json_object_get(it->veh, "identities");
	json_array_foreach(ids, i, id) {
		const char *kid = json_string_value(json_object_get(id, "key_id"));
		size_t l = 0;

		if (kid == NULL || (c->key_id[0] != '\0' && strcmp(kid, c->key_id) != 0))
			continue;
		if (!identity_usable(id, now, spki, &l))
			continue;
		if (++found > 1)
			break;
		len = l;
		snprintf(c->vehicle_kid, sizeof(c->vehicle_kid), "%s", kid);
		free(c->veh_spki);
		if ((c->veh_spki = malloc(l)) == NULL) {
			env_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return -1;
		}
		memcpy(c->veh_spki, spki, l);
		c->veh_spki_len = len;
	}
	if (found == 0) {
		env_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "vehicle '%s' has no %s that is a "
		    "P-256 key, valid now and not revoked", c->vehicle, c->key_id[0] != '\0' ?
		    "identity with that key_id" : "identity");
		return -1;
	}
	if (found > 1) {
		env_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "vehicle '%s' has several usable "
		    "identities: name one with key_id", c->vehicle);
		return -1;
	}
	return 0;
}

int
env_vehicle_jwe(struct ecall *c, const uint8_t *dk, size_t dk_len)
{
	int rc;

	rc = jwe_encrypt_ecdh_es_a256kw(c->veh_spki, c->veh_spki_len, c->vehicle_kid, NULL, dk,
	    dk_len, &c->jwe);
	if (rc != 0) {
		env_fail(c, GRPC_STATUS_INTERNAL, "cannot make the JWE (%s)", bs_strerror(rc));
		return -1;
	}
	rpc_call_audit_target(c->call, c->vehicle);
	if (rpc_call_audit_field(c->call, "vehicle_key_id", c->vehicle_kid) != 0) {
		env_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return -1;
	}
	return 0;
}
