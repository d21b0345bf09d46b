/*
 * keys_lifecycle.c - KeyService key lifecycle: DisableKey, EnableKey,
 * ScheduleKeyDestruction and CancelKeyDestruction (the catalog's state row
 * changed durably on the work queue, then mirrored in memory), and the
 * destroyer, a timer of the service that destroys what is due:
 *   1. the version's state becomes "destroyed" in the catalog, durably, so
 *      nothing can use it from then on (and the change survives a crash);
 *   2. its HSM objects are destroyed through the key door (C_DestroyObject);
 *   3. a key record (event key_destroyed) goes to the audit log;
 *   4. a key whose versions are all destroyed, and that is itself pending
 *      and due, becomes destroyed too (recorded the same way).
 * A crash between 1 and 2 leaves objects of a destroyed version on the
 * token: at start the destroyer destroys every destroyed version's objects
 * again (an object already gone is fine). The audit log's own key is never
 * disabled or destroyed through the API (the daemon's checkpoints need it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "audit/auditlog.h"
#include "boltseal/v1/keys.pb-c.h"
#include "common/log.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/keys/keys_int.h"
#include "services/services.h"

#define DAY_SECONDS 86400
#define PENDING_DAYS_MAX 30
#define DESTROY_PER_PASS 16

/* ---- the four RPCs ------------------------------------------------------- */

struct change {
	struct workq_job job;           /* first */
	struct rpc_call *call;
	struct svc_ctx *svc;
	char name[CATALOG_NAME_MAX + 1];
	uint32_t version;
	enum catalog_change what;
	int64_t when;
	struct catalog_states states;
	int rc;
};

static const char *
change_event(enum catalog_change what)
{
	switch (what) {
	case CATALOG_DISABLE: return "key_disabled";
	case CATALOG_ENABLE: return "key_enabled";
	case CATALOG_SCHEDULE_DESTRUCTION: return "key_destruction_scheduled";
	case CATALOG_CANCEL_DESTRUCTION: return "key_destruction_cancelled";
	case CATALOG_DESTROYED: return "key_destroyed";
	default: return "key_state";
	}
}

static void
change_work(struct workq_job *job, void *ctx)
{
	struct change *c = (struct change *)job;

	(void)ctx;
	c->rc = catalog_db_change_state(c->svc->catalog, c->name, c->version, c->what, c->when,
	    &c->states);
}

static void
change_done(struct workq_job *job)
{
	struct change *c = (struct change *)job;
	Boltseal__V1__SetKeyStateResponse resp = BOLTSEAL__V1__SET_KEY_STATE_RESPONSE__INIT;
	const struct catalog_key *k;

	rpc_call_on_cancel(c->call, NULL, NULL);
	if (c->rc == 0) {
		/* durable: mirror it even if the caller left */
		catalog_mem_set_states(c->svc->catalog, c->name, &c->states);
		bs_log(BS_LOG_INFO, "key state changed", "key", c->name, "event",
		    change_event(c->what), "identity", rpc_call_identity(c->call), "request_id",
		    rpc_call_request_id(c->call), NULL);
	}
	if (c->rc == BS_ERR_PRECONDITION) {
		rpc_call_fail(c->call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' changed meanwhile; "
		    "the change no longer applies (read the key again)", c->name);
	} else if (c->rc != 0) {
		keysvc_fail_err(c->call, c->rc, "key state change failed");
	} else if ((k = catalog_find(c->svc->catalog, c->name)) == NULL ||
	    (resp.key = keysvc_key_pb_new(k)) == NULL) {
		rpc_call_fail(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		rpc_call_finish_pb(c->call, &resp.base);
	}
	keysvc_key_pb_free(resp.key);
	catalog_states_clear(&c->states);
	free(c);
}

/* The common path of the four RPCs; days is ScheduleKeyDestruction's (0 otherwise). */
static void
change_state(struct rpc_call *call, const char *name, uint32_t version, uint32_t days,
    enum catalog_change what)
{
	struct svc_ctx *svc = rpc_call_svc(call);
	const struct keysvc_state *st = rpc_call_service_state(call);
	char vbuf[16], dbuf[16], when_buf[24];
	const struct catalog_key *k;
	const char *why;
	struct change *c;
	int64_t now = (int64_t)time(NULL), when = now;
	int rc;

	snprintf(vbuf, sizeof(vbuf), "%u", version);
	snprintf(dbuf, sizeof(dbuf), "%u", days);
	{
		struct policy_attr attrs[] = {
			{ "request.version", vbuf },
			{ "request.pending_days", what == CATALOG_SCHEDULE_DESTRUCTION ? dbuf : NULL },
		};

		if ((k = keysvc_lookup_key_attrs(call, name, attrs, 2)) == NULL)
			return;
	}
	rpc_call_audit_key(call, k->name, version != 0 ? (int64_t)version : -1);
	rpc_call_audit_event(call, change_event(what));
	if (k->purpose == BS_PURPOSE_AUDIT) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s' signs the audit log's "
		    "checkpoints: it cannot be disabled or destroyed through the API", k->name);
		return;
	}
	if (what == CATALOG_SCHEDULE_DESTRUCTION) {
		if (days < st->min_pending_days || days > PENDING_DAYS_MAX) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "pending_days must be %u to %u",
			    st->min_pending_days, PENDING_DAYS_MAX);
			return;
		}
		when = now + (int64_t)days * DAY_SECONDS;
		snprintf(when_buf, sizeof(when_buf), "%lld", (long long)when);
		if (rpc_call_audit_field(call, "destroy_time", when_buf) != 0) {
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	if (version != 0 && catalog_key_version(k, version) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "key '%s' has no version %u", k->name,
		    version);
		return;
	}
	if ((why = catalog_change_refusal(k, version, what, when)) != NULL) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "key '%s'%s%s: %s", k->name,
		    version != 0 ? " version " : "", version != 0 ? vbuf : "", why);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	c->call = call;
	c->svc = svc;
	snprintf(c->name, sizeof(c->name), "%s", k->name);
	c->version = version;
	c->what = what;
	c->when = when;
	c->job.work = change_work;
	c->job.done = change_done;
	rc = svc->work != NULL ? workq_submit(svc->work, &c->job) : BS_ERR_UNAVAILABLE;
	if (rc != 0) {
		free(c);
		keysvc_fail_work_submit(call, rc);
		return;
	}
	rpc_call_on_cancel(call, keysvc_work_cancel, &c->job);
}

void
keysvc_disable_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetKeyStateRequest *r = (const Boltseal__V1__SetKeyStateRequest *)msg;

	change_state(call, r->name, r->version, 0, CATALOG_DISABLE);
}

void
keysvc_enable_key(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetKeyStateRequest *r = (const Boltseal__V1__SetKeyStateRequest *)msg;

	change_state(call, r->name, r->version, 0, CATALOG_ENABLE);
}

void
keysvc_cancel_key_destruction(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetKeyStateRequest *r = (const Boltseal__V1__SetKeyStateRequest *)msg;

	change_state(call, r->name, r->version, 0, CATALOG_CANCEL_DESTRUCTION);
}

void
keysvc_schedule_key_destruction(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ScheduleKeyDestructionRequest *r =
	    (const Boltseal__V1__ScheduleKeyDestructionRequest *)msg;

	change_state(call, r->name, r->version, r->pending_days, CATALOG_SCHEDULE_DESTRUCTION);
}

/* ---- the destroyer --------------------------------------------------------- */

/* One due target: its catalog change, then (versions) the objects, then its record. */
struct destroy {
	struct workq_job job;           /* first */
	struct keysvc_state *st;
	char name[CATALOG_NAME_MAX + 1];
	uint32_t version;               /* 0: the key */
	uint8_t hsm_id[KEYOPS_ID_LEN];
	int64_t now;
	int again;                      /* only the objects (a destroyed version at start) */
	struct catalog_states states;
	int rc;
};

static void destroyer_next(struct keysvc_state *st);

static void
destroy_free(struct destroy *d)
{
	struct keysvc_state *st = d->st;

	catalog_states_clear(&d->states);
	free(d);
	st->busy--;
	if (st->busy == 0)
		destroyer_next(st);
}

static void
destroy_recorded(void *arg, int rc)
{
	struct destroy *d = arg;

	if (rc != 0)
		bs_log(BS_LOG_ERROR, "the record of a key destruction is not written yet", "key",
		    d->name, NULL);
	destroy_free(d);
}

static void
destroy_record(struct destroy *d, const char *result, const char *reason)
{
	struct audit_log *audit = d->st->svc->audit;
	struct audit_record r;
	char when[24];
	struct audit_field f[] = { { "destroy_time", when } };

	if (audit == NULL) {
		destroy_free(d);
		return;
	}
	snprintf(when, sizeof(when), "%lld", (long long)d->now);
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_KEY;
	r.key = d->name;
	r.key_version = d->version != 0 ? (int64_t)d->version : -1;
	r.result = result;
	r.reason = reason;
	r.event = "key_destroyed";
	r.fields = f;
	r.nfields = 1;
	if (audit_log_append(audit, &r, destroy_recorded, d) != 0) {
		bs_log(BS_LOG_ERROR, "cannot queue the record of a key destruction", "key", d->name,
		    NULL);
		destroy_free(d);
	}
}

static void
objects_destroyed(void *arg, struct keyop_answer *a)
{
	struct destroy *d = arg;
	char v[16];

	snprintf(v, sizeof(v), "%u", d->version);
	svc_note_hsm_result(d->st->svc, a->rc == BS_ERR_NOT_FOUND ? 0 : a->rc);
	if (a->rc != 0 && a->rc != BS_ERR_NOT_FOUND) {
		bs_log(BS_LOG_ERROR, "cannot destroy the objects of a destroyed key version (retried "
		    "at the next start)", "key", d->name, "version", v, "error", bs_strerror(a->rc),
		    NULL);
		if (!d->again) {
			destroy_record(d, "UNAVAILABLE", "the catalog says destroyed, but the HSM "
			    "refused C_DestroyObject; retried at the next start");
			return;
		}
	} else if (a->rc == 0 || !d->again) {
		bs_log(BS_LOG_INFO, d->again ? "leftover objects of a destroyed key version removed" :
		    "key version destroyed", "key", d->name, "version", v, NULL);
	}
	if (d->again && a->rc != 0) {
		destroy_free(d);     /* nothing was left over */
		return;
	}
	/* at start, objects that were left: the interrupted destruction is recorded now */
	destroy_record(d, "OK", d->again ? "objects left by an interrupted destruction removed at "
	    "start" : NULL);
}

static void
destroy_objects(struct destroy *d)
{
	struct svc_ctx *svc = d->st->svc;
	struct keyop_request r;

	memset(&r, 0, sizeof(r));
	r.type = KEYOP_DESTROY;
	snprintf(r.key.name, sizeof(r.key.name), "%s", d->name);
	r.key.version = d->version;
	memcpy(r.id, d->hsm_id, KEYOPS_ID_LEN);
	if (svc->keys == NULL || keyclient_submit(svc->keys, &r, objects_destroyed, d, NULL) != 0) {
		bs_log(BS_LOG_ERROR, "cannot reach the key side to destroy a key version (retried at "
		    "the next start)", "key", d->name, NULL);
		if (d->again)
			destroy_free(d);
		else
			destroy_record(d, "UNAVAILABLE", "the key side could not be reached; retried at "
			    "the next start");
	}
}

static void
destroy_work(struct workq_job *job, void *ctx)
{
	struct destroy *d = (struct destroy *)job;

	(void)ctx;
	d->rc = catalog_db_change_state(d->st->svc->catalog, d->name, d->version,
	    CATALOG_DESTROYED, d->now, &d->states);
}

static void
destroy_changed(struct workq_job *job)
{
	struct destroy *d = (struct destroy *)job;

	if (d->rc != 0) {
		/* cancelled meanwhile (PRECONDITION), or the store failed: the next pass looks again */
		if (d->rc != BS_ERR_PRECONDITION)
			bs_log(BS_LOG_ERROR, "cannot mark a key destroyed", "key", d->name, "error",
			    bs_strerror(d->rc), NULL);
		destroy_free(d);
		return;
	}
	catalog_mem_set_states(d->st->svc->catalog, d->name, &d->states);
	if (d->version == 0) {
		bs_log(BS_LOG_INFO, "key destroyed", "key", d->name, NULL);
		destroy_record(d, "OK", NULL);
		return;
	}
	destroy_objects(d);
}

static int
destroy_start(struct keysvc_state *st, const struct catalog_key *k,
    const struct catalog_version *v, int64_t now, int again)
{
	struct destroy *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return BS_ERR_NOMEM;
	d->st = st;
	snprintf(d->name, sizeof(d->name), "%s", k->name);
	d->version = v != NULL ? v->version : 0;
	if (v != NULL)
		memcpy(d->hsm_id, v->hsm_id, KEYOPS_ID_LEN);
	d->now = now;
	d->again = again;
	st->busy++;
	if (again) {
		destroy_objects(d);
		return 0;
	}
	d->job.work = destroy_work;
	d->job.done = destroy_changed;
	if (st->svc->work == NULL || workq_submit(st->svc->work, &d->job) != 0) {
		st->busy--;
		free(d);
		return BS_ERR_UNAVAILABLE;
	}
	return 0;
}

/* 1 if every version of k is destroyed. */
static int
all_destroyed(const struct catalog_key *k)
{
	for (size_t i = 0; i < k->nversions; i++)
		if (k->versions[i].state != BS_KEY_DESTROYED)
			return 0;
	return 1;
}

/* Starts up to DESTROY_PER_PASS due destructions (none while a pass runs). */
static void
destroyer_next(struct keysvc_state *st)
{
	struct catalog *cat = st->svc->catalog;
	int64_t now = (int64_t)time(NULL);
	unsigned started = 0;

	if (st->busy > 0 || st->svc->shutting_down || !st->due)
		return;
	st->due = 0;
	for (size_t i = 0; i < catalog_count(cat) && started < DESTROY_PER_PASS; i++) {
		const struct catalog_key *k = catalog_at(cat, i);

		for (size_t j = 0; j < k->nversions && started < DESTROY_PER_PASS; j++) {
			const struct catalog_version *v = &k->versions[j];

			int due = v->state == BS_KEY_PENDING_DESTRUCTION && v->destroy_at <= now;

			/* every version of a key that is due goes too */
			due |= v->state != BS_KEY_DESTROYED &&
			    k->state == BS_KEY_PENDING_DESTRUCTION && k->destroy_at <= now;
			if (due && destroy_start(st, k, v, now, 0) == 0)
				started++;
		}
		if (started < DESTROY_PER_PASS && k->state == BS_KEY_PENDING_DESTRUCTION &&
		    k->destroy_at <= now && all_destroyed(k) && destroy_start(st, k, NULL, now, 0) == 0)
			started++;
	}
	/* a full pass may have left more: look again at once when it ends */
	if (started == DESTROY_PER_PASS)
		st->due = 1;
}

static void
destroyer_tick(evutil_socket_t fd, short what, void *arg)
{
	struct keysvc_state *st = arg;

	(void)fd;
	(void)what;
	st->due = 1;
	destroyer_next(st);
}

/* At start: the objects of versions already destroyed, gone for good. */
static void
destroy_leftovers(struct keysvc_state *st)
{
	struct catalog *cat = st->svc->catalog;

	for (size_t i = 0; i < catalog_count(cat); i++) {
		const struct catalog_key *k = catalog_at(cat, i);

		for (size_t j = 0; j < k->nversions; j++)
			if (k->versions[j].state == BS_KEY_DESTROYED &&
			    destroy_start(st, k, &k->versions[j], k->versions[j].destroy_at, 1) != 0)
				bs_log(BS_LOG_ERROR, "cannot check a destroyed key version's objects",
				    "key", k->name, NULL);
	}
}

int
keysvc_destroyer_start(struct keysvc_state *st, char *err, size_t errlen)
{
	struct timeval tv;

	if (st->svc->base == NULL)
		return 0;               /* no event loop (unit tests): no timer */
	st->timer = event_new(st->svc->base, -1, EV_PERSIST, destroyer_tick, st);
	tv.tv_sec = (time_t)(st->check_ms / 1000);
	tv.tv_usec = (suseconds_t)((st->check_ms % 1000) * 1000);
	if (st->timer == NULL || event_add(st->timer, &tv) != 0) {
		snprintf(err, errlen, "cannot arm the key destruction timer");
		return BS_ERR_NOMEM;
	}
	destroy_leftovers(st);
	return 0;
}

void
keysvc_destroyer_stop(struct keysvc_state *st)
{
	if (st->timer != NULL)
		event_free(st->timer);
	st->timer = NULL;
}
