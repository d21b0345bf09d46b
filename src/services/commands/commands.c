/*
 * commands.c - boltseal.v1.CommandService: cloud-to-vehicle commands as
 * JWS compact tokens (RFC 7515; docs/commands.md).
 *
 * SignCommand, in four steps:
 *   1. loop: the request's form (vehicle id, command name, args as a strict
 *      JSON object, validity within commands.max_valid_seconds);
 *   2. work queue: the vehicle's record from the registry;
 *   3. loop: the policy, asked with request.command, request.vehicle_id,
 *      vehicle.status and vehicle.<attribute> for each registry attribute,
 *      on the key (purpose command); for a vehicle that is not active only
 *      grants that test vehicle.status count; then the vehicle must exist
 *      and the key be an enabled P-256 or Ed25519 key of purpose command;
 *   4. work queue: the vehicle's next sequence number, committed to the
 *      store before anything is signed (so a number is never issued twice,
 *      even across a crash: a crash after the commit only leaves a gap);
 *   5. key door: ES256 over SHA-256 of the signing input (the HSM's r||s,
 *      as JWS wants it) or EdDSA over the signing input; loop: the token.
 * The audit record names the key, the vehicle, the command, its sequence
 * number and jti, and the SHA-256 of the signing input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "boltseal/v1/commands.pb-c.h"
#include "common/hex.h"
#include "common/log.h"
#include "exec/workq.h"
#include "formats/jose.h"
#include "formats/tuf_json.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/services.h"
#include "services/vehicles/registry.h"

#define CMD_NS "commands"
#define CMD_NAME_MAX 64
#define CMD_ARGS_MAX 4096
#define CMD_ISSUER "boltseal"
#define CMD_AUDIENCE "boltseal-vehicle"
#define ATTRS_MAX (VEHICLE_ATTRS_MAX + 3)

static const struct rpc_setting settings[] = {
	{ "max_valid_seconds", 1, 86400, 30 },
};

struct cmd_settings {
	uint32_t max_valid;
};

/* One call in flight. job first: the work queue hands it back. */
struct ccall {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	char vehicle[VEHICLE_ID_MAX + 1];
	char command[CMD_NAME_MAX + 1];
	char key[CATALOG_NAME_MAX + 1];
	char *args;                   /* the args object, compact JSON */
	uint32_t valid;
	json_t *veh;                  /* the registry record; NULL: no such vehicle */
	uint64_t veh_version;         /* its row's version, checked again when seq is taken */
	uint64_t seq;
	enum bs_alg alg;
	uint32_t key_version;
	char kid[JOSE_THUMBPRINT_LEN + 1];
	char jti[33];
	int64_t iat, exp;
	char *input;                  /* the JWS signing input, header.payload */
	size_t input_len;
	uint8_t digest[32];
	int rc;
};

static void
ccall_free(struct ccall *c)
{
	free(c->args);
	free(c->input);
	json_decref(c->veh);
	free(c);
}

static void
fail(struct ccall *c, int status, const char *msg)
{
	rpc_call_fail(c->call, status, "%s", msg);
	ccall_free(c);
}

static int
cmd_init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct cmd_settings *st = calloc(1, sizeof(*st));

	(void)env;
	(void)err;
	(void)errlen;
	if (st == NULL)
		return BS_ERR_NOMEM;
	st->max_valid = (uint32_t)values[0];
	*state = st;
	return 0;
}

static void
cmd_fini(void *state)
{
	free(state);
}

static int
command_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CMD_NAME_MAX || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("_.-", s[i]) != NULL))
			return 0;
	return 1;
}

/*
 * What the vehicle-side reader (src/client/json_lite.h) accepts, so that
 * nothing is signed that vehicles would refuse: nesting at most 16 with the
 * claims object as 1 (args at 2), at most 64 members per object, keys of at
 * most 256 bytes, no control characters in strings. 0, or -1 with err.
 */
#define VEHICLE_JSON_DEPTH 16
#define VEHICLE_JSON_MEMBERS 64
#define VEHICLE_JSON_KEY 256

static int
no_controls(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int
vehicle_readable(const json_t *v, int depth, char *err, size_t errlen)
{
	const char *k;
	json_t *m;
	size_t i;

	if ((json_is_object(v) || json_is_array(v)) && depth > VEHICLE_JSON_DEPTH) {
		snprintf(err, errlen, "nested deeper than vehicles read (%d levels with the claims)",
		    VEHICLE_JSON_DEPTH);
		return -1;
	}
	if (json_is_string(v) && !no_controls(json_string_value(v))) {
		snprintf(err, errlen, "a string holds a control character, which vehicles refuse");
		return -1;
	}
	if (json_is_object(v)) {
		if (json_object_size(v) > VEHICLE_JSON_MEMBERS) {
			snprintf(err, errlen, "an object has more than %d members, which vehicles "
			    "refuse", VEHICLE_JSON_MEMBERS);
			return -1;
		}
		json_object_foreach((json_t *)v, k, m) {
			if (strlen(k) > VEHICLE_JSON_KEY || !no_controls(k)) {
				snprintf(err, errlen, "a key is over %d bytes or holds a control "
				    "character", VEHICLE_JSON_KEY);
				return -1;
			}
			if (vehicle_readable(m, depth + 1, err, errlen) != 0)
				return -1;
		}
	}
	if (json_is_array(v))
		json_array_foreach(v, i, m)
			if (vehicle_readable(m, depth + 1, err, errlen) != 0)
				return -1;
	return 0;
}

static int
submit(struct ccall *c, void (*work)(struct workq_job *, void *), void (*done)(struct workq_job *))
{
	c->job.work = work;
	c->job.done = done;
	return workq_submit(c->svc->work, &c->job);
}

/* ---- 5. the signature and the token --------------------------------------------- */

static void
signed_cb(void *arg, struct keyop_answer *a)
{
	struct ccall *c = arg;
	Boltseal__V1__SignCommandResponse r = BOLTSEAL__V1__SIGN_COMMAND_RESPONSE__INIT;
	char sig[JOSE_B64URL_LEN(64) + 1], seq[24], *token;
	size_t n;
	int rc = a->rc;

	if (rc == 0 && (a->nsigs != 1 || a->sigs[0].rc != 0 || a->sigs[0].sig_len != 64))
		rc = a->nsigs == 1 && a->sigs[0].rc != 0 ? a->sigs[0].rc : BS_ERR_HSM;
	svc_note_hsm_result(c->svc, rc);
	if (rc != 0) {
		fail(c, GRPC_STATUS_UNAVAILABLE, "the HSM could not sign");
		return;
	}
	/* ES256 is the HSM's r||s as it comes (RFC 7518 3.4); EdDSA is 64 bytes too */
	(void)jose_b64url(a->sigs[0].sig, 64, sig, sizeof(sig));
	n = c->input_len + 1 + strlen(sig);
	if ((token = malloc(n + 1)) == NULL) {
		fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(token, n + 1, "%s.%s", c->input, sig);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
	(void)!rpc_call_audit_field(c->call, "command.seq", seq);
	(void)!rpc_call_audit_field(c->call, "command.jti", c->jti);
	if (rpc_call_audit_payload(c->call, a->sigs[0].payload_sha256) != 0) {
		free(token);
		fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r.token = token;
	r.seq = c->seq;
	r.jti = c->jti;
	r.not_before = c->iat;
	r.expires = c->exp;
	r.kid = c->kid;
	r.key_version = c->key_version;
	rpc_call_finish_pb(c->call, &r.base);
	free(token);
	ccall_free(c);
}

/* The header and claims, base64url, joined by '.'; NULL if out of memory. */
static char *
signing_input(struct ccall *c, size_t *len)
{
	json_t *h, *p;
	json_error_t e;
	char *hj = NULL, *pj = NULL, *out = NULL;
	size_t hn, pn;

	h = json_pack("{s:s, s:s, s:s}", "alg", c->alg == BS_ALG_ED25519 ? "EdDSA" : "ES256",
	    "kid", c->kid, "typ", "JWT");
	p = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:o}", "iss", CMD_ISSUER,
	    "sub", c->vehicle, "aud", CMD_AUDIENCE, "iat", (json_int_t)c->iat, "nbf",
	    (json_int_t)c->iat, "exp", (json_int_t)c->exp, "jti", c->jti, "seq",
	    (json_int_t)c->seq, "cmd", c->command, "args", json_loads(c->args, 0, &e));
	if (h != NULL && p != NULL && (hj = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS)) != NULL &&
	    (pj = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
		hn = JOSE_B64URL_LEN(strlen(hj));
		pn = JOSE_B64URL_LEN(strlen(pj));
		if ((out = malloc(hn + pn + 2)) != NULL) {
			(void)jose_b64url((const uint8_t *)hj, strlen(hj), out, hn + 1);
			out[hn] = '.';
			(void)jose_b64url((const uint8_t *)pj, strlen(pj), out + hn + 1, pn + 1);
			*len = hn + 1 + pn;
		}
	}
	free(hj);
	free(pj);
	json_decref(h);
	json_decref(p);
	return out;
}

/* ---- 4. the sequence number --------------------------------------------------------- */

static void
seq_work(struct workq_job *job, void *ctx)
{
	struct ccall *c = (struct ccall *)job;
	struct store_txn *tx = NULL;
	char name[STORE_ID_MAX + 1];
	uint64_t cur = 0;

	(void)ctx;
	snprintf(name, sizeof(name), "seq/%s", c->vehicle);
	/* BEGIN IMMEDIATE: one writer at a time, so the read and the set cannot interleave */
	if ((c->rc = store_begin(c->svc->store, &tx)) != 0)
		return;
	/*
	 * The vehicle as the policy saw it, still: a suspension (or an attribute
	 * change) committed since then refuses this command, so nothing is
	 * signed for a vehicle after SetVehicleStatus answered.
	 */
	{
		json_t *now = NULL;
		uint64_t rowv = 0;

		c->rc = vehicle_read(tx, c->vehicle, 0, &now, &rowv);
		json_decref(now);
		if (c->rc == 0 && rowv != c->veh_version)
			c->rc = BS_ERR_PRECONDITION;
		if (c->rc != 0) {
			store_rollback(tx);
			return;
		}
	}
	c->rc = store_counter_get(tx, CMD_NS, name, &cur);
	if (c->rc == BS_ERR_NOT_FOUND) {
		c->rc = store_counter_cas(tx, CMD_NS, name, STORE_COUNTER_ABSENT, 1);
		cur = 0;
	} else if (c->rc == 0) {
		c->rc = store_counter_cas(tx, CMD_NS, name, cur, cur + 1);
	}
	if (c->rc != 0) {
		store_rollback(tx);
		return;
	}
	if ((c->rc = store_commit(tx)) == 0)
		c->seq = cur + 1;
}

static void
seq_done(struct workq_job *job)
{
	struct ccall *c = (struct ccall *)job;
	const struct catalog_key *k = catalog_find(c->svc->catalog, c->key);
	const struct catalog_version *v = k != NULL ? catalog_key_version(k, c->key_version) : NULL;
	struct keyop_input in;
	struct keyop_request r;

	if (c->rc == BS_ERR_PRECONDITION || c->rc == BS_ERR_NOT_FOUND) {
		fail(c, GRPC_STATUS_ABORTED, "the vehicle changed while the command was being "
		    "authorised; ask again");
		return;
	}
	if (c->rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot allocate a command sequence number", "vehicle",
		    c->vehicle, "error", bs_strerror(c->rc), NULL);
		fail(c, GRPC_STATUS_UNAVAILABLE, "cannot allocate the vehicle's sequence number");
		return;
	}
	/* the key as it was checked, still (a number was used up: a gap, never a repeat) */
	if (v == NULL || k->purpose != BS_PURPOSE_COMMAND || v->state != BS_KEY_ENABLED) {
		fail(c, GRPC_STATUS_ABORTED, "the key changed while the command was being signed; "
		    "ask again");
		return;
	}
	if ((c->input = signing_input(c, &c->input_len)) == NULL) {
		fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memset(&in, 0, sizeof(in));
	if (c->alg == BS_ALG_ECDSA_P256_SHA256) {
		SHA256((const uint8_t *)c->input, c->input_len, c->digest);
		in.is_digest = 1;
		in.data = c->digest;
		in.len = sizeof(c->digest);
	} else {
		in.data = (const uint8_t *)c->input;
		in.len = c->input_len;
	}
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_SIGN;
	snprintf(r.key.name, sizeof(r.key.name), "%s", k->name);
	r.key.version = v->version;
	memcpy(r.id, v->hsm_id, KEYOPS_ID_LEN);
	r.alg = k->alg;
	r.inputs = &in;
	r.ninputs = 1;
	if (c->svc->keys == NULL || keyclient_submit(c->svc->keys, &r, signed_cb, c, NULL) != 0)
		fail(c, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- 2 and 3. the vehicle, the policy, the key -------------------------------------- */

static void
read_work(struct workq_job *job, void *ctx)
{
	struct ccall *c = (struct ccall *)job;
	struct store_txn *tx = NULL;
	uint64_t rowv;

	(void)ctx;
	if ((c->rc = store_begin(c->svc->store, &tx)) != 0)
		return;
	c->rc = vehicle_read(tx, c->vehicle, 0, &c->veh, &rowv);
	if (c->rc == BS_ERR_NOT_FOUND)
		c->rc = 0;
	c->veh_version = c->veh != NULL ? rowv : 0;
	store_rollback(tx);
}

static void
read_done(struct workq_job *job)
{
	struct ccall *c = (struct ccall *)job;
	struct policy_attr attrs[ATTRS_MAX];
	char names[VEHICLE_ATTRS_MAX][VEHICLE_ATTR_NAME_MAX + 9], msg[300];
	const struct catalog_key *k;
	const struct catalog_version *v;
	const char *name;
	json_t *val;
	size_t n = 0;
	int status;

	if (c->rc != 0) {
		fail(c, c->rc == BS_ERR_INVALID ? GRPC_STATUS_INTERNAL : GRPC_STATUS_UNAVAILABLE,
		    c->rc == BS_ERR_INVALID ? "the vehicle's record cannot be read" :
		    "cannot read the vehicle registry");
		return;
	}
	status = c->veh != NULL ? vehicle_status_of(c->veh) : 0;
	attrs[n++] = (struct policy_attr){ "request.command", c->command };
	attrs[n++] = (struct policy_attr){ "request.vehicle_id", c->vehicle };
	attrs[n++] = (struct policy_attr){ "vehicle.status", vehicle_status_name(status) };
	json_object_foreach(json_object_get(c->veh, "attributes"), name, val) {
		if (n >= ATTRS_MAX)
			break;
		snprintf(names[n - 3], sizeof(names[n - 3]), "vehicle.%s", name);
		attrs[n] = (struct policy_attr){ names[n - 3], json_string_value(val) };
		n++;
	}
	/*
	 * Before anything is said of the vehicle or the key: no oracle for the
	 * unauthorised. A vehicle that is suspended or decommissioned gets only
	 * what a grant testing vehicle.status allows (a safe_stop to a
	 * suspended truck), never what a grant silent on the status allows.
	 */
	k = catalog_find(c->svc->catalog, c->key);
	if (!rpc_call_authorize_tested(c->call, c->key, k != NULL ? bs_purpose_name(k->purpose) :
	    NULL, attrs, n, c->veh != NULL && status != VEHICLE_ACTIVE ? "vehicle.status" : NULL)) {
		ccall_free(c);
		return;
	}
	if (c->veh == NULL) {
		snprintf(msg, sizeof(msg), "vehicle '%s' not found", c->vehicle);
		fail(c, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	if (k == NULL || (v = catalog_key_primary(k)) == NULL) {
		snprintf(msg, sizeof(msg), "key '%s' not found", c->key);
		fail(c, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	if (k->purpose != BS_PURPOSE_COMMAND ||
	    (k->alg != BS_ALG_ECDSA_P256_SHA256 && k->alg != BS_ALG_ED25519) ||
	    v->state != BS_KEY_ENABLED || jose_thumbprint(v->spki, v->spki_len, c->kid) != 0) {
		snprintf(msg, sizeof(msg), "key '%s' is not an enabled ECDSA P-256 or Ed25519 key of "
		    "purpose command", c->key);
		fail(c, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	c->alg = k->alg;
	c->key_version = v->version;
	rpc_call_audit_key(c->call, k->name, v->version);
	if (submit(c, seq_work, seq_done) != 0)
		fail(c, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* ---- 1. the request ------------------------------------------------------------------ */

static void
sign_command(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SignCommandRequest *r = (const Boltseal__V1__SignCommandRequest *)msg;
	const struct cmd_settings *st = rpc_call_service_state(call);
	struct svc_ctx *svc = rpc_call_svc(call);
	struct ccall *c;
	json_t *args = NULL;
	uint8_t rnd[16];
	char err[300] = "";

	if (st == NULL || svc->store == NULL || svc->work == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "command service not started");
		return;
	}
	if (!vehicle_id_valid(r->vehicle_id)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "vehicle_id: 1..64 of "
		    "[A-Za-z0-9._-], starting alphanumeric");
		return;
	}
	if (!command_name_valid(r->command)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "command: 1..64 of [a-z0-9_.-], "
		    "starting with a letter");
		return;
	}
	if (!catalog_name_valid(r->key_name)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "key_name: not a key name");
		return;
	}
	if (r->valid_seconds > st->max_valid) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "valid_seconds: at most %u "
		    "(commands.max_valid_seconds)", (unsigned)st->max_valid);
		return;
	}
	if (r->args.len > CMD_ARGS_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "args: at most %d bytes",
		    CMD_ARGS_MAX);
		return;
	}
	if (r->args.len > 0 && (tuf_json_parse(r->args.data, r->args.len, r->args.len + 1, &args,
	    err, sizeof(err)) != 0 || !json_is_object(args))) {
		json_decref(args);
		rpc_call_fail(call, args == NULL && err[0] == '\0' ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_INVALID_ARGUMENT, "args: %s", args == NULL ?
		    (err[0] != '\0' ? err : "out of memory") : "must be a JSON object");
		return;
	}
	if (args != NULL && vehicle_readable(args, 2, err, sizeof(err)) != 0) {
		json_decref(args);
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "args: %s", err);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->args = args != NULL ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) :
	    strdup("{}")) == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		json_decref(args);
		if (c != NULL)
			ccall_free(c);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	json_decref(args);
	c->call = call;
	c->svc = svc;
	snprintf(c->vehicle, sizeof(c->vehicle), "%s", r->vehicle_id);
	snprintf(c->command, sizeof(c->command), "%s", r->command);
	snprintf(c->key, sizeof(c->key), "%s", r->key_name);
	c->valid = r->valid_seconds == 0 ? st->max_valid : r->valid_seconds;
	c->iat = (int64_t)time(NULL);
	c->exp = c->iat + c->valid;
	bs_hex_encode(rnd, sizeof(rnd), c->jti);
	rpc_call_audit_target(call, c->vehicle);
	(void)!rpc_call_audit_field(call, "command.vehicle_id", c->vehicle);
	(void)!rpc_call_audit_field(call, "command.name", c->command);
	if (submit(c, read_work, read_done) != 0)
		fail(c, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

static const struct rpc_method methods[] = {
	{ "SignCommand", &boltseal__v1__sign_command_request__descriptor,
	    &boltseal__v1__sign_command_response__descriptor, RPC_AUTHZ_POLICY, 0, sign_command },
};

const struct rpc_service command_service = {
	.name = "boltseal.v1.CommandService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "commands",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = cmd_init,
	.fini = cmd_fini,
};
