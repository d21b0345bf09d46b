/*
 * vehicles.c - boltseal.v1.VehicleService: the vehicle registry
 * (registry.h). Every change (register, attributes, status, identities) is
 * one store transaction on a worker thread that reads the record, checks
 * and changes it, and writes the next version (compare-and-set on the
 * current row); the audit record carries the vehicle's id, version and its
 * state before and after (attributes, status, identity key ids, never the
 * keys themselves).
 *
 * Flow of a call: loop (checks, policy) -> work queue (store) -> loop
 * (answer, audit fields).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "boltseal/v1/vehicles.pb-c.h"
#include "common/log.h"
#include "exec/workq.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/services.h"
#include "services/vehicles/registry.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 100
#define SCAN_MAX 1000             /* rows read for one page of a filtered listing */

enum vop { V_REGISTER, V_GET, V_LIST, V_ATTRS, V_STATUS, V_ADD_ID, V_REVOKE_ID };

/* One call in flight. job first: the work queue hands it back. */
struct vcall {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	enum vop op;
	char id[VEHICLE_ID_MAX + 1];
	uint64_t version;             /* get: the version asked; changes: the expected one (0 any) */
	int64_t now;
	json_t *rec;                  /* the record (register: the new one; else as read, changed) */
	json_t *prev;                 /* changes: the record as it was */
	json_t *set, *remove;         /* attributes: to set (object), to remove (array) */
	int status;                   /* status: the new one; list: the filter (0 any) */
	char reason[VEHICLE_REASON_MAX + 1];
	json_t *identity;             /* add: the new identity */
	char key_id[65];              /* revoke */
	size_t page_size;             /* list */
	char after[VEHICLE_ID_MAX + 1];
	json_t *filter, *page;
	size_t scanned;
	char next[VEHICLE_ID_MAX + 1];
	int rc;
	int grpc;                     /* the status of a refusal found on the worker */
	char err[300];
};

static void
vcall_free(struct vcall *v)
{
	json_decref(v->rec);
	json_decref(v->prev);
	json_decref(v->set);
	json_decref(v->remove);
	json_decref(v->identity);
	json_decref(v->filter);
	json_decref(v->page);
	free(v);
}

static void
fail(struct vcall *v, int status, const char *msg)
{
	rpc_call_fail(v->call, status, "%s", msg);
	vcall_free(v);
}

/* A refusal found on the worker: its status and message. */
static int refuse(struct vcall *v, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct vcall *v, int status, const char *fmt, ...)
{
	va_list ap;

	v->grpc = status;
	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return BS_ERR_INVALID;
}

/* ---- records to and from protobuf ------------------------------------------------- */

/*
 * A request's attribute map (protobuf-c gives each map field its own entry
 * type, all {key, value}) into a JSON object: ATTRS_FROM_PB(v, entries, n,
 * &obj) is 0, or the call is answered (v freed) and -1.
 */
#define ATTRS_FROM_PB(v, e, n, out) __extension__ ({ \
	int rc_ = attrs_begin((v), (n), (out)); \
	for (size_t i_ = 0; rc_ == 0 && i_ < (n); i_++) \
		rc_ = attr_add((v), *(out), (e)[i_]->key, (e)[i_]->value); \
	rc_; })

static int
attrs_begin(struct vcall *v, size_t n, json_t **out)
{
	char msg[64];

	if ((*out = json_object()) == NULL) {
		fail(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return -1;
	}
	if (n > VEHICLE_ATTRS_MAX) {
		snprintf(msg, sizeof(msg), "attributes: at most %d", VEHICLE_ATTRS_MAX);
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return -1;
	}
	return 0;
}

/* 1 if s has no control character (the registry's text goes into logs and tokens). */
static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int
attr_add(struct vcall *v, json_t *obj, const char *key, const char *value)
{
	char msg[200];

	if (!vehicle_attr_name_valid(key) || strlen(value) > VEHICLE_ATTR_VALUE_MAX ||
	    !printable(value)) {
		snprintf(msg, sizeof(msg), "attribute '%.64s': names 1..64 of [a-z0-9_.-] starting "
		    "with a letter (not 'status'), values at most %d bytes without control "
		    "characters", key, VEHICLE_ATTR_VALUE_MAX);
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return -1;
	}
	if (json_object_set_new(obj, key, json_string(value)) != 0) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "attributes: not UTF-8");
		return -1;
	}
	return 0;
}

/* A request's identity into a JSON identity; 0, or answered (v freed) and -1. */
static int
identity_from_pb(struct vcall *v, const Boltseal__V1__VehicleIdentity *id, json_t **out)
{
	char err[160] = "";
	int rc;

	if (id == NULL || id->public_key.len == 0) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "identity: public_key is required");
		return -1;
	}
	if ((rc = vehicle_identity_new(id->public_key.data, id->public_key.len, id->cert_sha256,
	    id->not_before, id->not_after, out, err, sizeof(err))) != 0) {
		fail(v, rc == BS_ERR_NOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED :
		    GRPC_STATUS_INVALID_ARGUMENT, rc == BS_ERR_NOMEM ? "out of memory" : err);
		return -1;
	}
	return 0;
}

/* Storage for one Vehicle message built from a record (freed by vehicle_pb_clear). */
struct vehicle_pb {
	Boltseal__V1__Vehicle m;
	Boltseal__V1__Vehicle__AttributesEntry *attrs, **attrp;
	Boltseal__V1__VehicleIdentity *ids, **idp;
	uint8_t *keys[VEHICLE_IDENTITIES_MAX];
};

static void
vehicle_pb_clear(struct vehicle_pb *p)
{
	free(p->attrs);
	free(p->attrp);
	free(p->ids);
	free(p->idp);
	for (size_t i = 0; i < VEHICLE_IDENTITIES_MAX; i++)
		free(p->keys[i]);
}

static int
vehicle_pb_fill(struct vehicle_pb *p, const json_t *rec)
{
	const json_t *attrs = json_object_get(rec, "attributes"), *ids, *id, *val;
	const char *name, *b64;
	size_t i = 0, n;
	int len;

	memset(p, 0, sizeof(*p));
	boltseal__v1__vehicle__init(&p->m);
	ids = json_object_get(rec, "identities");
	n = json_object_size(attrs);
	p->attrs = calloc(n + 1, sizeof(*p->attrs));
	p->attrp = calloc(n + 1, sizeof(*p->attrp));
	p->ids = calloc(json_array_size(ids) + 1, sizeof(*p->ids));
	p->idp = calloc(json_array_size(ids) + 1, sizeof(*p->idp));
	if (p->attrs == NULL || p->attrp == NULL || p->ids == NULL || p->idp == NULL ||
	    json_array_size(ids) > VEHICLE_IDENTITIES_MAX)
		return BS_ERR_NOMEM;
	json_object_foreach((json_t *)attrs, name, val) {
		boltseal__v1__vehicle__attributes_entry__init(&p->attrs[i]);
		p->attrs[i].key = (char *)name;
		p->attrs[i].value = (char *)json_string_value(val);
		p->attrp[i] = &p->attrs[i];
		i++;
	}
	p->m.attributes = p->attrp;
	p->m.n_attributes = n;
	json_array_foreach(ids, i, id) {
		Boltseal__V1__VehicleIdentity *o = &p->ids[i];

		boltseal__v1__vehicle_identity__init(o);
		b64 = json_string_value(json_object_get(id, "public_key"));
		if (b64 == NULL || (p->keys[i] = malloc(strlen(b64))) == NULL ||
		    (len = EVP_DecodeBlock(p->keys[i], (const unsigned char *)b64,
		    (int)strlen(b64))) < 0)
			return BS_ERR_INVALID;
		/* EVP_DecodeBlock counts the padding as zero bytes */
		len -= (int)(strlen(b64) > 0 && b64[strlen(b64) - 1] == '=') +
		    (int)(strlen(b64) > 1 && b64[strlen(b64) - 2] == '=');
		o->public_key.data = p->keys[i];
		o->public_key.len = (size_t)len;
		o->key_id = (char *)json_string_value(json_object_get(id, "key_id"));
		o->cert_sha256 = (char *)json_string_value(json_object_get(id, "cert_sha256"));
		o->not_before = json_integer_value(json_object_get(id, "not_before"));
		o->not_after = json_integer_value(json_object_get(id, "not_after"));
		o->revoked_at = json_integer_value(json_object_get(id, "revoked_at"));
		o->revoked_reason = (char *)json_string_value(json_object_get(id, "revoked_reason"));
		if (o->key_id == NULL || o->cert_sha256 == NULL || o->revoked_reason == NULL)
			return BS_ERR_INVALID;
		p->idp[i] = o;
	}
	p->m.identities = p->idp;
	p->m.n_identities = json_array_size(ids);
	p->m.id = (char *)json_string_value(json_object_get(rec, "id"));
	p->m.status = (Boltseal__V1__VehicleStatus)vehicle_status_of(rec);
	p->m.status_reason = (char *)json_string_value(json_object_get(rec, "status_reason"));
	p->m.provisioned_at = json_integer_value(json_object_get(rec, "provisioned_at"));
	p->m.updated_at = json_integer_value(json_object_get(rec, "updated_at"));
	p->m.version = (uint64_t)json_integer_value(json_object_get(rec, "version"));
	return p->m.id != NULL && p->m.status_reason != NULL ? 0 : BS_ERR_INVALID;
}

/*
 * What the audit record keeps of a record: attributes, status and its
 * reason, version, and the identities' key ids and revocation times.
 */
static char *
audit_view(const json_t *rec)
{
	json_t *ids = json_array(), *v, *id;
	char *out = NULL;
	size_t i;

	if (ids == NULL)
		return NULL;
	json_array_foreach(json_object_get(rec, "identities"), i, id)
		json_array_append_new(ids, json_pack("{s:O, s:O}", "key_id",
		    json_object_get(id, "key_id"), "revoked_at", json_object_get(id, "revoked_at")));
	v = json_pack("{s:O, s:O, s:O, s:O, s:o}", "attributes",
	    json_object_get(rec, "attributes"), "status", json_object_get(rec, "status"),
	    "status_reason", json_object_get(rec, "status_reason"), "version",
	    json_object_get(rec, "version"), "identities", ids);
	if (v != NULL)
		out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(v);
	return out;
}

/* ---- the work, on a worker thread ------------------------------------------------- */

static int
list_one(void *arg, json_t *rec)
{
	struct vcall *v = arg;
	const char *name;
	json_t *want;

	v->scanned++;
	if (v->status != 0 && vehicle_status_of(rec) != v->status)
		return 0;
	json_object_foreach(v->filter, name, want) {
		if (!json_equal(json_object_get(json_object_get(rec, "attributes"), name), want))
			return 0;
	}
	if (json_array_append(v->page, rec) != 0)
		return BS_ERR_NOMEM;
	return json_array_size(v->page) >= v->page_size ? 1 : 0;
}

/* The change of a V_ATTRS .. V_REVOKE_ID call, on the record as read. */
static int
change(struct vcall *v)
{
	json_t *attrs = json_object_get(v->rec, "attributes"), *ids, *id, *x;
	const char *name;
	size_t i;
	int cur = vehicle_status_of(v->rec);

	/* decommissioned is final: only an identity may still be revoked */
	if (cur == VEHICLE_DECOMMISSIONED && v->op != V_REVOKE_ID)
		return refuse(v, GRPC_STATUS_FAILED_PRECONDITION, "vehicle '%s' is decommissioned, "
		    "which is final", v->id);
	switch (v->op) {
	case V_ATTRS:
		json_object_foreach(v->set, name, x)
			if (json_object_set(attrs, name, x) != 0)
				return BS_ERR_NOMEM;
		json_array_foreach(v->remove, i, x)
			(void)json_object_del(attrs, json_string_value(x));
		if (json_object_size(attrs) > VEHICLE_ATTRS_MAX)
			return refuse(v, GRPC_STATUS_INVALID_ARGUMENT, "attributes: a vehicle has at "
			    "most %d, and this change would leave it %zu", VEHICLE_ATTRS_MAX,
			    json_object_size(attrs));
		return 0;
	case V_STATUS:
		return json_object_set_new(v->rec, "status",
		    json_string(vehicle_status_name(v->status))) != 0 ||
		    json_object_set_new(v->rec, "status_reason", json_string(v->reason)) != 0 ?
		    BS_ERR_NOMEM : 0;
	case V_ADD_ID:
		ids = json_object_get(v->rec, "identities");
		if (json_array_size(ids) >= VEHICLE_IDENTITIES_MAX)
			return refuse(v, GRPC_STATUS_FAILED_PRECONDITION, "vehicle '%s' has 8 "
			    "identities, the most it may have", v->id);
		json_array_foreach(ids, i, id)
			if (json_equal(json_object_get(id, "key_id"),
			    json_object_get(v->identity, "key_id")))
				return refuse(v, GRPC_STATUS_ALREADY_EXISTS, "vehicle '%s' already has "
				    "this identity key", v->id);
		return json_array_append(ids, v->identity) != 0 ? BS_ERR_NOMEM : 0;
	case V_REVOKE_ID:
		json_array_foreach(json_object_get(v->rec, "identities"), i, id) {
			const char *kid = json_string_value(json_object_get(id, "key_id"));

			if (kid == NULL || strcmp(kid, v->key_id) != 0)
				continue;
			if (json_integer_value(json_object_get(id, "revoked_at")) != 0)
				return refuse(v, GRPC_STATUS_FAILED_PRECONDITION, "identity %s is "
				    "already revoked", v->key_id);
			return json_object_set_new(id, "revoked_at", json_integer(v->now)) != 0 ||
			    json_object_set_new(id, "revoked_reason", json_string(v->reason)) != 0 ?
			    BS_ERR_NOMEM : 0;
		}
		return refuse(v, GRPC_STATUS_NOT_FOUND, "vehicle has no identity with key_id %s",
		    v->key_id);
	default:
		return BS_ERR_INVALID;
	}
}

static void
work(struct workq_job *job, void *ctx)
{
	struct vcall *v = (struct vcall *)job;
	struct store_txn *tx = NULL;
	uint64_t rowv = 0;
	char last[VEHICLE_ID_MAX + 1];

	(void)ctx;
	/* reads take a snapshot of their own: they do not wait for a commit's disk sync */
	if ((v->rc = v->op == V_GET || v->op == V_LIST ? store_begin_read(v->svc->store, &tx) :
	    store_begin(v->svc->store, &tx)) != 0)
		return;
	switch (v->op) {
	case V_REGISTER:
		v->rc = vehicle_write(tx, NULL, v->rec, 0, v->now);
		break;
	case V_GET:
		v->rc = vehicle_read(tx, v->id, v->version, &v->rec, &rowv);
		break;
	case V_LIST:
		if ((v->page = json_array()) == NULL) {
			v->rc = BS_ERR_NOMEM;
			break;
		}
		v->rc = vehicle_scan(tx, v->after, SCAN_MAX, list_one, v, last);
		/* a full page, or the scan's end before the table's: the next page starts here */
		if (v->rc == 0 && (json_array_size(v->page) >= v->page_size ||
		    v->scanned >= SCAN_MAX))
			snprintf(v->next, sizeof(v->next), "%s", last);
		break;
	default:
		v->rc = vehicle_read(tx, v->id, 0, &v->rec, &rowv);
		if (v->rc == 0 && v->version != 0 && v->version != rowv) {
			char ver[24];

			snprintf(ver, sizeof(ver), "%llu", (unsigned long long)rowv);
			v->rc = refuse(v, GRPC_STATUS_FAILED_PRECONDITION, "the vehicle is at version "
			    "%s, not the one expected", ver);
		}
		if (v->rc == 0 && (v->prev = json_deep_copy(v->rec)) == NULL)
			v->rc = BS_ERR_NOMEM;
		if (v->rc == 0)
			v->rc = change(v);
		if (v->rc == 0)
			v->rc = vehicle_write(tx, v->prev, v->rec, rowv, v->now);
		break;
	}
	if (v->rc != 0 || v->op == V_GET || v->op == V_LIST) {
		store_rollback(tx);
		return;
	}
	v->rc = store_commit(tx);
	/* before the answer: CommandService's remembered records and blocks are re-checked */
	if (v->rc == 0)
		vehicle_registry_changed(v->id);
}

/* ---- answers, on the loop ---------------------------------------------------------- */

static void
answer_record(struct vcall *v, const json_t *rec)
{
	struct vehicle_pb p;

	if (vehicle_pb_fill(&p, rec) != 0) {
		vehicle_pb_clear(&p);
		fail(v, GRPC_STATUS_INTERNAL, "the stored vehicle record cannot be read");
		return;
	}
	rpc_call_finish_pb(v->call, &p.m.base);
	vehicle_pb_clear(&p);
	vcall_free(v);
}

static void
answer_list(struct vcall *v)
{
	Boltseal__V1__ListVehiclesResponse r = BOLTSEAL__V1__LIST_VEHICLES_RESPONSE__INIT;
	size_t n = json_array_size(v->page), i;
	struct vehicle_pb *p = calloc(n + 1, sizeof(*p));
	Boltseal__V1__Vehicle **pp = calloc(n + 1, sizeof(*pp));
	int rc = p == NULL || pp == NULL ? BS_ERR_NOMEM : 0;

	for (i = 0; i < n && rc == 0; i++) {
		rc = vehicle_pb_fill(&p[i], json_array_get(v->page, i));
		pp[i] = &p[i].m;
	}
	if (rc == 0) {
		r.vehicles = pp;
		r.n_vehicles = n;
		r.next_page_token = v->next;
		rpc_call_finish_pb(v->call, &r.base);
	} else {
		rpc_call_fail(v->call, GRPC_STATUS_INTERNAL, "a stored vehicle record cannot be read");
	}
	for (i = 0; p != NULL && i < n; i++)
		vehicle_pb_clear(&p[i]);
	free(p);
	free(pp);
	vcall_free(v);
}

static void
done(struct workq_job *job)
{
	struct vcall *v = (struct vcall *)job;
	char msg[200], ver[24], *view;

	if (v->rc == BS_ERR_INVALID && v->grpc != 0) {
		fail(v, v->grpc, v->err);
		return;
	}
	if (v->rc == BS_ERR_NOT_FOUND) {
		snprintf(msg, sizeof(msg), v->op == V_GET && v->version != 0 ? "vehicle '%s' has no "
		    "such version" : "vehicle '%s' not found", v->id);
		fail(v, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	if (v->rc == BS_ERR_EXISTS) {
		snprintf(msg, sizeof(msg), "vehicle '%s' is already registered", v->id);
		fail(v, GRPC_STATUS_ALREADY_EXISTS, msg);
		return;
	}
	if (v->rc == BS_ERR_PRECONDITION) {
		snprintf(msg, sizeof(msg), "vehicle '%s' changed meanwhile; read it and retry", v->id);
		fail(v, GRPC_STATUS_ABORTED, msg);
		return;
	}
	if (v->rc == BS_ERR_INVALID) {
		bs_log(BS_LOG_ERROR, "a vehicle record cannot be read or would break its rules",
		    "vehicle", v->id, NULL);
		fail(v, GRPC_STATUS_INTERNAL, "the vehicle's record cannot be read");
		return;
	}
	if (v->rc == BS_ERR_TOO_BIG) {
		fail(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "the vehicle record would pass 64 KiB");
		return;
	}
	if (v->rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot use the vehicle registry", "vehicle", v->id, "error",
		    bs_strerror(v->rc), NULL);
		fail(v, GRPC_STATUS_UNAVAILABLE, "cannot use the vehicle registry");
		return;
	}
	if (v->op == V_LIST) {
		answer_list(v);
		return;
	}
	if (v->op != V_GET) {
		/* best effort: a field that cannot be added (out of memory) is left out */
		snprintf(ver, sizeof(ver), "%lld",
		    (long long)json_integer_value(json_object_get(v->rec, "version")));
		(void)!rpc_call_audit_field(v->call, "vehicle.version", ver);
		if (v->prev != NULL && (view = audit_view(v->prev)) != NULL) {
			(void)!rpc_call_audit_field(v->call, "vehicle.before", view);
			free(view);
		}
		if ((view = audit_view(v->rec)) != NULL) {
			(void)!rpc_call_audit_field(v->call, "vehicle.after", view);
			free(view);
		}
	}
	answer_record(v, v->rec);
}

/* ---- handlers ------------------------------------------------------------------------ */

/*
 * The start every handler shares: the service is up, the id (when the
 * call names one) is valid, the audit record names it, and the policy
 * agrees. Returns the call's state, or NULL (answered).
 */
static struct vcall *
vcall_start(struct rpc_call *call, enum vop op, const char *id)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct vcall *v;

	if (svc->store == NULL || svc->work == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "vehicle registry not started");
		return NULL;
	}
	if (id != NULL && !vehicle_id_valid(id)) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "id: 1..64 of [A-Za-z0-9._-], "
		    "starting alphanumeric");
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	v->call = call;
	v->svc = svc;
	v->op = op;
	v->now = (int64_t)time(NULL);
	if (id != NULL) {
		snprintf(v->id, sizeof(v->id), "%s", id);
		rpc_call_audit_target(call, id);
		(void)!rpc_call_audit_field(call, "vehicle.id", id);
	}
	{
		struct policy_attr attrs[] = { { "request.vehicle_id", id } };

		if (!rpc_call_authorize(call, NULL, NULL, attrs, 1)) {
			vcall_free(v);
			return NULL;
		}
	}
	return v;
}

static void
submit(struct vcall *v)
{
	v->job.work = work;
	v->job.done = done;
	if (workq_submit(v->svc->work, &v->job) != 0)
		fail(v, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

/* A reason: at most VEHICLE_REASON_MAX bytes; 0, or answered and -1. */
static int
reason_set(struct vcall *v, const char *reason)
{
	json_t *t = json_string(reason);      /* NULL unless valid UTF-8 */

	if (strlen(reason) > VEHICLE_REASON_MAX || t == NULL || !printable(reason)) {
		json_decref(t);
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "reason: at most 256 bytes of UTF-8 without "
		    "control characters");
		return -1;
	}
	json_decref(t);
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	return 0;
}

static void
register_vehicle(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RegisterVehicleRequest *r = (const void *)msg;
	struct vcall *v;
	json_t *attrs = NULL, *id = NULL;

	if ((v = vcall_start(call, V_REGISTER, r->id)) == NULL)
		return;
	if (ATTRS_FROM_PB(v, r->attributes, r->n_attributes, &attrs) != 0) {
		json_decref(attrs);
		return;
	}
	if (identity_from_pb(v, r->identity, &id) != 0) {
		json_decref(attrs);
		return;
	}
	v->rec = json_pack("{s:s, s:o, s:[o], s:s, s:s, s:I}", "id", v->id, "attributes", attrs,
	    "identities", id, "status", vehicle_status_name(VEHICLE_ACTIVE), "status_reason", "",
	    "provisioned_at", (json_int_t)v->now);
	if (v->rec == NULL) {
		fail(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	submit(v);
}

static void
get_vehicle(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetVehicleRequest *r = (const void *)msg;
	struct vcall *v;

	if ((v = vcall_start(call, V_GET, r->id)) == NULL)
		return;
	v->version = r->version;
	submit(v);
}

static void
list_vehicles(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ListVehiclesRequest *r = (const void *)msg;
	struct vcall *v;

	if ((v = vcall_start(call, V_LIST, NULL)) == NULL)
		return;
	if (r->page_size > PAGE_MAX || (r->page_token[0] != '\0' &&
	    !vehicle_id_valid(r->page_token))) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "page_size: 0..100; page_token: as a previous "
		    "page returned it");
		return;
	}
	if ((int)r->status < 0 || r->status > BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_DECOMMISSIONED) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "status: unknown");
		return;
	}
	v->page_size = r->page_size == 0 ? PAGE_DEFAULT : r->page_size;
	snprintf(v->after, sizeof(v->after), "%s", r->page_token);
	v->status = (int)r->status;
	if (ATTRS_FROM_PB(v, r->attribute_filter, r->n_attribute_filter, &v->filter) != 0)
		return;
	submit(v);
}

static void
update_attributes(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__UpdateVehicleAttributesRequest *r = (const void *)msg;
	struct vcall *v;
	size_t i;

	if ((v = vcall_start(call, V_ATTRS, r->id)) == NULL)
		return;
	v->version = r->expected_version;
	if (ATTRS_FROM_PB(v, r->set, r->n_set, &v->set) != 0)
		return;
	if (r->n_remove > VEHICLE_ATTRS_MAX) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "remove: at most 32 names");
		return;
	}
	if ((v->remove = json_array()) == NULL) {
		fail(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (i = 0; i < r->n_remove; i++) {
		if (!vehicle_attr_name_valid(r->remove[i])) {
			fail(v, GRPC_STATUS_INVALID_ARGUMENT, "remove: attribute names");
			return;
		}
		if (json_array_append_new(v->remove, json_string(r->remove[i])) != 0) {
			fail(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	submit(v);
}

static void
set_status(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetVehicleStatusRequest *r = (const void *)msg;
	struct vcall *v;

	if ((v = vcall_start(call, V_STATUS, r->id)) == NULL)
		return;
	if (vehicle_status_name((int)r->status) == NULL) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "status: VEHICLE_ACTIVE, VEHICLE_SUSPENDED or "
		    "VEHICLE_DECOMMISSIONED");
		return;
	}
	v->status = (int)r->status;
	v->version = r->expected_version;
	(void)!rpc_call_audit_field(call, "vehicle.status", vehicle_status_name(v->status));
	if (reason_set(v, r->reason) != 0)
		return;
	submit(v);
}

static void
add_identity(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__AddVehicleIdentityRequest *r = (const void *)msg;
	struct vcall *v;

	if ((v = vcall_start(call, V_ADD_ID, r->id)) == NULL ||
	    identity_from_pb(v, r->identity, &v->identity) != 0)
		return;
	submit(v);
}

static void
revoke_identity(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RevokeVehicleIdentityRequest *r = (const void *)msg;
	struct vcall *v;

	if ((v = vcall_start(call, V_REVOKE_ID, r->id)) == NULL)
		return;
	if (strlen(r->key_id) != 64) {
		fail(v, GRPC_STATUS_INVALID_ARGUMENT, "key_id: the identity's 64 hex digits");
		return;
	}
	snprintf(v->key_id, sizeof(v->key_id), "%s", r->key_id);
	(void)!rpc_call_audit_field(call, "vehicle.key_id", v->key_id);
	if (reason_set(v, r->reason) != 0)
		return;
	submit(v);
}

#define M(name, req, resp, fn) { name, &boltseal__v1__##req##__descriptor, \
	&boltseal__v1__##resp##__descriptor, RPC_AUTHZ_POLICY, 0, fn }

static const struct rpc_method methods[] = {
	M("RegisterVehicle", register_vehicle_request, vehicle, register_vehicle),
	M("GetVehicle", get_vehicle_request, vehicle, get_vehicle),
	M("ListVehicles", list_vehicles_request, list_vehicles_response, list_vehicles),
	M("UpdateVehicleAttributes", update_vehicle_attributes_request, vehicle, update_attributes),
	M("SetVehicleStatus", set_vehicle_status_request, vehicle, set_status),
	M("AddVehicleIdentity", add_vehicle_identity_request, vehicle, add_identity),
	M("RevokeVehicleIdentity", revoke_vehicle_identity_request, vehicle, revoke_identity),
};

const struct rpc_service vehicle_service = {
	.name = "boltseal.v1.VehicleService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
};
