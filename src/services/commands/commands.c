/*
 * commands.c - boltseal.v1.CommandService.SignCommand: cloud-to-vehicle
 * commands as JWS compact tokens (RFC 7515) or COSE_Sign1 (RFC 9052)
 * (docs/commands.md). InspectCommand is inspect.c.
 *
 * SignCommand, in five steps:
 *   1. loop: the request's form (vehicle id, command name, args as a strict
 *      JSON object, validity within the command's maximum, format);
 *   2. the vehicle's record: remembered (seqcache) while the registry's
 *      generation for it is unchanged, else read on the work queue from a
 *      store snapshot;
 *   3. loop: the policy, asked with request.command, request.vehicle_id,
 *      vehicle.status and vehicle.<attribute> for each registry attribute,
 *      on the key (purpose command); for a vehicle that is not active only
 *      grants that test vehicle.status count; then the vehicle must exist
 *      and the key be an enabled P-256 or Ed25519 key of purpose command;
 *   4. the vehicle's next sequence number: from the block reserved ahead
 *      for it (loop, no disk) while the registry generation and the judged
 *      version hold, else from a batch on the work queue that re-checks the
 *      vehicle's version and raises its counter, committed before any
 *      number of it is used (never issued twice; a crash leaves a gap);
 *   5. key door: ES256 over SHA-256 of what is signed (the HSM's r||s, as
 *      JWS and COSE want it) or EdDSA over it; loop: the token.
 * The audit record names the key, the vehicle and the version the policy
 * judged, the command, its sequence number and jti, and the SHA-256 of
 * what was signed.
 */
#include <pthread.h>
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
#include "formats/cose.h"
#include "formats/jose.h"
#include "formats/tuf_json.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_status.h"
#include "services/commands/commands_int.h"
#include "services/commands/seqcache.h"
#include "services/services.h"
#include "services/vehicles/registry.h"

#define CMD_NAME_MAX 64
#define CMD_ARGS_MAX 4096
#define ATTRS_MAX (VEHICLE_ATTRS_MAX + 3)

/* commands.max_valid_seconds, and commands.max_valid_seconds.<command> per command */
static const struct rpc_setting settings[] = {
	{ "max_valid_seconds", 1, 86400, 30, 1 },
};

#define CMD_MAXIMA_MAX 256            /* commands with a maximum of their own */

struct cmd_maximum {
	char command[CMD_NAME_MAX + 1];
	uint32_t max_valid;
};

#define SEQ_BATCH_MAX 256
#define KID_CACHE 16                  /* key versions whose thumbprint is remembered */

/* A key version's RFC 7638 thumbprint (an SPKI decode and a hash: worth keeping). */
struct kid_entry {
	char key[CATALOG_NAME_MAX + 1];
	uint32_t version;
	uint8_t spki_sha256[32];      /* the same name and version with another key: not this */
	char kid[JOSE_THUMBPRINT_LEN + 1];
};

struct ccall;

/*
 * The service's state. Sequence numbers are taken in batches: a call that
 * passed the policy joins `pending` (event loop thread); one batch job at a
 * time takes up to SEQ_BATCH_MAX of them to a work queue thread and commits
 * all their numbers in one transaction (group commit: one disk sync for
 * every call that arrived while the previous batch was being committed);
 * its done(), on the loop again, carries each call on to signing.
 */
struct cmd_state {
	struct workq_job job;         /* the batch job: first, the queue hands it back */
	uint32_t max_valid;           /* of a command without its own */
	struct cmd_maximum *maxima;   /* commands with their own, in configuration order */
	size_t nmaxima;
	struct svc_ctx *svc;          /* set by the first call */
	pthread_mutex_t mu;           /* guards pending and pending_tail */
	struct ccall *pending, **pending_tail;
	struct ccall *batch;          /* the job's calls: the queue thread's until done() */
	int running;                  /* a batch job is queued or running (loop thread) */
	struct seqcache *cache;       /* records and reserved blocks (loop thread) */
	struct kid_entry kids[KID_CACHE];   /* loop thread; round robin */
	size_t nkids, kid_next;
};

/* Loop thread: the thumbprint of key k's version v into kid. 0 or jose_thumbprint's error. */
static int
kid_of(struct cmd_state *st, const struct catalog_key *k, const struct catalog_version *v,
    char kid[JOSE_THUMBPRINT_LEN + 1]);

int
commands_kid_of(struct rpc_call *call, const struct catalog_key *k,
    const struct catalog_version *v, char kid[JOSE_THUMBPRINT_LEN + 1])
{
	struct cmd_state *st = rpc_call_service_state(call);

	return st != NULL ? kid_of(st, k, v, kid) : jose_thumbprint(v->spki, v->spki_len, kid);
}

static int
kid_of(struct cmd_state *st, const struct catalog_key *k, const struct catalog_version *v,
    char kid[JOSE_THUMBPRINT_LEN + 1])
{
	struct kid_entry *e;
	uint8_t h[32];
	int rc;

	SHA256(v->spki, v->spki_len, h);
	for (size_t i = 0; i < st->nkids; i++) {
		e = &st->kids[i];
		if (e->version == v->version && strcmp(e->key, k->name) == 0 &&
		    memcmp(e->spki_sha256, h, sizeof(h)) == 0) {
			memcpy(kid, e->kid, sizeof(e->kid));
			return 0;
		}
	}
	if ((rc = jose_thumbprint(v->spki, v->spki_len, kid)) != 0)
		return rc;
	e = &st->kids[st->kid_next];
	st->kid_next = (st->kid_next + 1) % KID_CACHE;
	if (st->nkids < KID_CACHE)
		st->nkids++;
	snprintf(e->key, sizeof(e->key), "%s", k->name);
	e->version = v->version;
	memcpy(e->spki_sha256, h, sizeof(h));
	memcpy(e->kid, kid, sizeof(e->kid));
	return 0;
}

/* One call in flight. job first: the work queue hands it back. */
struct ccall {
	struct workq_job job;
	struct rpc_call *call;
	struct svc_ctx *svc;
	struct cmd_state *st;
	struct ccall *next;           /* in the state's pending list or batch */
	struct seqcache_waiter wait;  /* waiting for the block another call reserves */
	uint64_t gen;                 /* the registry generation before veh was read */
	int spare;                    /* this call reserves its vehicle's next block */
	int recheck;                  /* this call re-checks its vehicle for the block left */
	int rechecked;                /* it did once: the next time it reserves */
	/* in a batch: the calls of one vehicle form a group led by its first */
	struct ccall *group;
	uint64_t count, issued, base; /* leader: its group's calls, numbers given, counter before */
	uint64_t row_version;         /* the vehicle's row version the batch saw */
	uint64_t batch_gen;           /* the vehicle's registry generation before the batch's
	                                 transaction */
	uint64_t block_from, block_limit; /* leader: the spare block committed */
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
	uint8_t cti[16];              /* the jti's bytes */
	int64_t iat, exp;
	int cose;                     /* a COSE_Sign1, not a JWS */
	char *input;                  /* what is signed: the JWS signing input, header.payload,
	                                 or the COSE Sig_structure */
	size_t input_len;
	uint8_t *prot, *payload;      /* COSE: the protected header and the claims */
	size_t prot_len, payload_len;
	uint8_t digest[32];
	int rc;
};

static void
ccall_free(struct ccall *c)
{
	free(c->args);
	free(c->input);
	free(c->prot);
	free(c->payload);
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
	struct cmd_state *st = calloc(1, sizeof(*st));

	(void)env;
	(void)err;
	(void)errlen;
	if (st == NULL)
		return BS_ERR_NOMEM;
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		return BS_ERR_INTERNAL;
	}
	st->max_valid = (uint32_t)values[0];
	st->pending_tail = &st->pending;
	if (seqcache_new(SEQCACHE_MAX, &st->cache) != 0) {
		pthread_mutex_destroy(&st->mu);
		free(st);
		return BS_ERR_NOMEM;
	}
	*state = st;
	return 0;
}

/* After the work queue stopped: no batch is left, nor a pending call. */
static void
cmd_fini(void *state)
{
	struct cmd_state *st = state;

	if (st == NULL)
		return;
	pthread_mutex_destroy(&st->mu);
	seqcache_free(st->cache);
	free(st->maxima);
	free(st);
}

static int command_name_valid(const char *s);

/* commands.max_valid_seconds.<command> = N */
static int
cmd_named(void *state, size_t setting, const char *name, unsigned long value, char *err,
    size_t errlen)
{
	struct cmd_state *st = state;
	struct cmd_maximum *m;

	(void)setting;
	if (!command_name_valid(name)) {
		snprintf(err, errlen, "'%s' is not a command name (1..64 of [a-z0-9_.-], starting "
		    "with a letter)", name);
		return BS_ERR_CONFIG;
	}
	if (st == NULL)               /* the configuration check: the name alone */
		return 0;
	if (st->nmaxima >= CMD_MAXIMA_MAX) {
		snprintf(err, errlen, "more than %d commands with a maximum of their own",
		    CMD_MAXIMA_MAX);
		return BS_ERR_CONFIG;
	}
	if ((m = realloc(st->maxima, (st->nmaxima + 1) * sizeof(*m))) == NULL)
		return BS_ERR_NOMEM;
	st->maxima = m;
	snprintf(m[st->nmaxima].command, sizeof(m[st->nmaxima].command), "%s", name);
	m[st->nmaxima].max_valid = (uint32_t)value;
	st->nmaxima++;
	return 0;
}

/* command's own maximum, or NULL: commands.max_valid_seconds applies. */
static const struct cmd_maximum *
maximum_of(const struct cmd_state *st, const char *command)
{
	for (size_t i = 0; i < st->nmaxima; i++)
		if (strcmp(st->maxima[i].command, command) == 0)
			return &st->maxima[i];
	return NULL;
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
 * What the vehicle-side verifier (src/client/command_verify.c) reads, so that
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
	uint8_t *cose = NULL;
	size_t n, cose_len = 0;
	int rc = a->rc;

	if (rc == 0 && (a->nsigs != 1 || a->sigs[0].rc != 0 || a->sigs[0].sig_len != 64))
		rc = a->nsigs == 1 && a->sigs[0].rc != 0 ? a->sigs[0].rc : BS_ERR_HSM;
	svc_note_hsm_result(c->svc, rc);
	if (rc != 0) {
		fail(c, GRPC_STATUS_UNAVAILABLE, "the HSM could not sign");
		return;
	}
	/* ES256 is the HSM's r||s as it comes (RFC 7518 3.4, RFC 9053 2.1); EdDSA is 64 bytes too */
	if (c->cose) {
		token = NULL;
		rc = cose_sign1_encode(c->prot, c->prot_len, c->payload, c->payload_len,
		    a->sigs[0].sig, 64, &cose, &cose_len);
	} else {
		(void)jose_b64url(a->sigs[0].sig, 64, sig, sizeof(sig));
		n = c->input_len + 1 + strlen(sig);
		if ((token = malloc(n + 1)) != NULL)
			snprintf(token, n + 1, "%s.%s", c->input, sig);
		rc = token != NULL ? 0 : BS_ERR_NOMEM;
	}
	if (rc != 0) {
		fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
	(void)!rpc_call_audit_field(c->call, "command.seq", seq);
	(void)!rpc_call_audit_field(c->call, "command.jti", c->jti);
	if (rpc_call_audit_payload(c->call, a->sigs[0].payload_sha256) != 0) {
		free(token);
		free(cose);
		fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r.token = token != NULL ? token : (char *)"";
	r.cose.data = cose;
	r.cose.len = cose_len;
	r.seq = c->seq;
	r.jti = c->jti;
	r.not_before = c->iat;
	r.expires = c->exp;
	r.kid = c->kid;
	r.key_version = c->key_version;
	rpc_call_finish_pb(c->call, &r.base);
	free(token);
	free(cose);
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

/*
 * COSE: the protected header {1: alg, 4: kid}, the CWT claims set and the
 * Sig_structure over them (what is signed) into c. 0 or an error.
 */
static int
cose_input(struct ccall *c)
{
	struct cose_claims cc;
	json_t *args;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	int rc;

	if ((args = json_loads(c->args, 0, NULL)) == NULL)
		return BS_ERR_NOMEM;
	memset(&cc, 0, sizeof(cc));
	cc.iss = CMD_ISSUER;
	cc.sub = c->vehicle;
	cc.aud = CMD_AUDIENCE;
	cc.iat = c->iat;
	cc.nbf = c->iat;
	cc.exp = c->exp;
	memcpy(cc.cti, c->cti, sizeof(cc.cti));
	cc.seq = c->seq;
	cc.cmd = c->command;
	cc.args = args;
	rc = cose_protected_encode(c->alg == BS_ALG_ED25519 ? COSE_ALG_EDDSA : COSE_ALG_ES256,
	    (const uint8_t *)c->kid, strlen(c->kid), &c->prot, &c->prot_len);
	if (rc == 0)
		rc = cose_claims_encode(&cc, &c->payload, &c->payload_len);
	if (rc == 0)
		rc = cose_sig_structure(c->prot, c->prot_len, NULL, 0, c->payload, c->payload_len,
		    &tbs, &tbs_len);
	json_decref(args);
	if (rc != 0)
		return rc;
	c->input = (char *)tbs;
	c->input_len = tbs_len;
	return 0;
}

/* ---- 4. the sequence number --------------------------------------------------------- */

/*
 * Inside the batch's transaction, for its calls in order: each call's
 * vehicle still at the version the policy judged (a suspension or an
 * attribute change committed since refuses that call alone:
 * BS_ERR_PRECONDITION in c->rc); then per vehicle one counter raise for
 * every call of its group, plus SEQCACHE_BLOCK spare numbers when a call
 * asked for them; the calls get the group's numbers in order. A store
 * error is returned: it fails the whole batch.
 */
static int
seq_take_all(struct store_txn *tx, struct ccall *batch)
{
	char name[STORE_ID_MAX + 1];
	struct ccall *c, *f;
	uint64_t cur, want;
	int rc;

	for (c = batch; c != NULL; c = c->next) {
		c->group = NULL;
		rc = vehicle_row_version(tx, c->vehicle, &c->row_version);
		if (rc == BS_ERR_NOT_FOUND || (rc == 0 && c->row_version != c->veh_version)) {
			c->rc = BS_ERR_PRECONDITION;
			continue;
		}
		if (rc != 0)
			return rc;
		c->rc = 0;
		if (c->recheck)               /* takes no number here: only the version counts */
			continue;
		for (f = batch; f != c; f = f->next)
			if (f->group == f && strcmp(f->vehicle, c->vehicle) == 0)
				break;
		if (f == c) {                 /* the first call of its vehicle leads the group */
			c->group = c;
			c->count = 0;
			c->issued = 0;
			c->block_from = c->block_limit = 0;
		}
		c->group = f == c ? c : f;
		c->group->count++;
		if (c->spare)
			c->group->block_from = 1;    /* marks: spare numbers wanted */
	}
	for (f = batch; f != NULL; f = f->next) {
		if (f->rc != 0 || f->group != f)
			continue;
		snprintf(name, sizeof(name), "seq/%s", f->vehicle);
		want = f->count + (f->block_from != 0 ? SEQCACHE_BLOCK : 0);
		rc = store_counter_get(tx, CMD_NS, name, &cur);
		if (rc == BS_ERR_NOT_FOUND) {
			cur = 0;
			rc = store_counter_cas(tx, CMD_NS, name, STORE_COUNTER_ABSENT, want);
		} else if (rc == 0 && cur > STORE_VALUE_MAX - want) {
			/* this vehicle's numbers are used up: its calls fail, the others go on */
			for (c = f; c != NULL; c = c->next)
				if (c->group == f)
					c->rc = BS_ERR_TOO_BIG;
			f->block_from = f->block_limit = 0;
			continue;
		} else if (rc == 0) {
			rc = store_counter_cas(tx, CMD_NS, name, cur, cur + want);
		}
		if (rc != 0)
			return rc;
		f->base = cur;
		if (f->block_from != 0) {
			f->block_from = cur + f->count + 1;
			f->block_limit = cur + want + 1;
		}
	}
	for (c = batch; c != NULL; c = c->next)
		if (c->rc == 0 && !c->recheck)
			c->seq = c->group->base + ++c->group->issued;
	return 0;
}

/* Queue thread: up to SEQ_BATCH_MAX pending calls, their numbers in one commit. */
static void
batch_work(struct workq_job *job, void *ctx)
{
	struct cmd_state *st = (struct cmd_state *)job;
	struct store_txn *tx = NULL;
	struct ccall *c, **tail = &st->batch;
	size_t n = 0;
	int rc;

	(void)ctx;
	pthread_mutex_lock(&st->mu);
	while (st->pending != NULL && n < SEQ_BATCH_MAX) {
		c = st->pending;
		st->pending = c->next;
		c->next = NULL;
		*tail = c;
		tail = &c->next;
		n++;
	}
	if (st->pending == NULL)
		st->pending_tail = &st->pending;
	pthread_mutex_unlock(&st->mu);
	/* before the transaction: a registry change after this makes the blocks re-checked */
	for (c = st->batch; c != NULL; c = c->next)
		c->batch_gen = vehicle_registry_generation(c->vehicle);
	/* BEGIN IMMEDIATE: one writer at a time, so a read and its raise cannot interleave */
	if ((rc = store_begin(st->svc->store, &tx)) == 0) {
		if ((rc = seq_take_all(tx, st->batch)) == 0)
			rc = store_commit(tx);
		else
			store_rollback(tx);
	}
	if (rc != 0)
		for (c = st->batch; c != NULL; c = c->next) {
			c->rc = rc;
			c->seq = 0;
			c->group = NULL;
		}
}

static void seq_next(struct ccall *c);
static void batch_done(struct workq_job *job);
static void seq_assign(struct ccall *c);

#define WAITER_CALL(w) ((struct ccall *)(void *)((char *)(w) - offsetof(struct ccall, wait)))

/*
 * Loop thread: c (which asked for spare numbers) is done with its batch, or
 * failed before one; a reservation that did not install a block ends here,
 * and the calls waiting for it try again (ok) or fail.
 */
static void
reservation_over(struct cmd_state *st, struct ccall *c, int ok)
{
	struct seqcache_entry *e = seqcache_get(st->cache, c->vehicle);
	struct seqcache_waiter *w, *next;

	if (e == NULL)
		return;
	if (e->reserver != c)         /* not this call's reservation (any more) */
		return;
	e->reserver = NULL;
	for (w = seqcache_waiters(e); w != NULL; w = next) {
		next = w->next;
		if (ok)
			seq_assign(WAITER_CALL(w));
		else
			fail(WAITER_CALL(w), GRPC_STATUS_UNAVAILABLE, "cannot allocate the vehicle's "
			    "sequence number");
	}
}

/* Loop thread: a batch job for what is pending; on failure every pending call fails. */
static void
batch_start(struct cmd_state *st)
{
	struct ccall *c;

	st->job.work = batch_work;
	st->job.done = batch_done;
	st->running = 1;
	if (workq_submit(st->svc->work, &st->job) == 0)
		return;
	st->running = 0;
	pthread_mutex_lock(&st->mu);
	c = st->pending;
	st->pending = NULL;
	st->pending_tail = &st->pending;
	pthread_mutex_unlock(&st->mu);
	while (c != NULL) {
		struct ccall *next = c->next;

		if (c->spare)
			reservation_over(st, c, 0);
		fail(c, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
		c = next;
	}
}

/*
 * Loop thread: the batch's blocks are installed, each call goes on (to
 * signing, or refused), the calls that waited for a block try again, and
 * the next batch starts if any call is pending.
 */
static void
batch_done(struct workq_job *job)
{
	struct cmd_state *st = (struct cmd_state *)job;
	struct ccall *batch = st->batch, *c, *next;
	struct seqcache_entry *e;
	int more;

	st->batch = NULL;
	for (c = batch; c != NULL; c = c->next)
		if (c->rc == 0 && c->group == c && c->block_limit != 0 &&
		    (e = seqcache_get(st->cache, c->vehicle)) != NULL)
			seqcache_put_block(e, c->block_from, c->block_limit, c->row_version,
			    c->batch_gen);
	for (c = batch; c != NULL; c = next) {
		next = c->next;
		c->next = NULL;
		/* the record remembered was not the store's: read it again next time */
		if (c->rc == BS_ERR_PRECONDITION && (e = seqcache_get(st->cache, c->vehicle)) != NULL)
			seqcache_forget_record(e);
		if (c->spare)
			reservation_over(st, c, c->rc == 0 || c->rc == BS_ERR_PRECONDITION);
		if (c->recheck && c->rc == 0) {
			/* the version the policy judged is current: the block left is good for it */
			if ((e = seqcache_get(st->cache, c->vehicle)) != NULL && c->batch_gen >= e->gen) {
				e->version = c->row_version;
				e->gen = c->batch_gen;
			}
			c->recheck = 0;
			c->rechecked = 1;
			seq_assign(c);
			continue;
		}
		seq_next(c);
	}
	pthread_mutex_lock(&st->mu);
	more = st->pending != NULL;
	pthread_mutex_unlock(&st->mu);
	st->running = 0;
	if (more && !st->running)
		batch_start(st);
}

/* Loop thread: c waits for the next batch. */
static void
seq_enqueue(struct ccall *c)
{
	struct cmd_state *st = c->st;

	c->next = NULL;
	pthread_mutex_lock(&st->mu);
	*st->pending_tail = c;
	st->pending_tail = &c->next;
	pthread_mutex_unlock(&st->mu);
	if (!st->running)
		batch_start(st);
}

/*
 * Loop thread: c's number. From its vehicle's block when nothing in the
 * registry changed since the block was checked and the policy judged the
 * same version (no disk); after the block another call is reserving; or
 * from a batch, which reserves the next block with it.
 */
static void
seq_assign(struct ccall *c)
{
	struct cmd_state *st = c->st;
	struct seqcache_entry *e = seqcache_add(st->cache, c->vehicle);

	c->spare = 0;
	c->recheck = 0;
	if (e != NULL && seqcache_take(e, vehicle_registry_generation(c->vehicle), c->veh_version,
	    &c->seq)) {
		c->rc = 0;
		seq_next(c);
		return;
	}
	if (e != NULL && e->next < e->limit && !c->rechecked) {
		/*
		 * Numbers are left but the registry changed since they were checked:
		 * a batch re-checks this vehicle's version, and the block stays (no
		 * gap) when it is the one judged. Once: a registry that keeps
		 * changing makes the call reserve instead.
		 */
		c->recheck = 1;
		seq_enqueue(c);
		return;
	}
	if (e != NULL && e->reserver != NULL) {
		seqcache_wait(e, &c->wait);
		return;
	}
	if (e != NULL) {
		e->reserver = c;
		c->spare = 1;
	}
	seq_enqueue(c);
}

static void
seq_next(struct ccall *c)
{
	const struct catalog_key *k = catalog_find(c->svc->catalog, c->key);
	const struct catalog_version *v = k != NULL ? catalog_key_version(k, c->key_version) : NULL;
	struct keyop_input in;
	struct keyop_request r;

	if (c->rc == BS_ERR_PRECONDITION || c->rc == BS_ERR_NOT_FOUND) {
		fail(c, GRPC_STATUS_ABORTED, "the vehicle changed while the command was being "
		    "authorised; ask again");
		return;
	}
	if (c->rc == BS_ERR_TOO_BIG) {
		fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the vehicle's sequence numbers are used up");
		return;
	}
	if (c->rc != 0) {
		bs_log(BS_LOG_ERROR, "cannot allocate a command sequence number", "vehicle",
		    c->vehicle, "error", bs_strerror(c->rc), NULL);
		fail(c, GRPC_STATUS_UNAVAILABLE, "cannot allocate the vehicle's sequence number");
		return;
	}
	/* the key as it was checked, still (a number was used up: a gap, never a repeat) */
	if (v == NULL || k->purpose != BS_PURPOSE_COMMAND || !catalog_version_usable(k, v)) {
		fail(c, GRPC_STATUS_ABORTED, "the key changed while the command was being signed; "
		    "ask again");
		return;
	}
	if (c->cose ? cose_input(c) != 0 : (c->input = signing_input(c, &c->input_len)) == NULL) {
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

/*
 * Loop thread, after the policy allowed: what the policy reads of the
 * record (status and attributes, not the identities) is remembered for the
 * vehicle's next commands, with the generation it was read at.
 */
static void
remember_record(struct ccall *c)
{
	struct seqcache_entry *e;
	json_t *slim;

	if ((e = seqcache_add(c->st->cache, c->vehicle)) == NULL ||
	    (e->rec != NULL && e->rec_gen == c->gen && e->rec_version == c->veh_version))
		return;
	if ((slim = json_object()) == NULL ||
	    json_object_set(slim, "status", json_object_get(c->veh, "status")) != 0 ||
	    (json_object_get(c->veh, "attributes") != NULL &&
	    json_object_set(slim, "attributes", json_object_get(c->veh, "attributes")) != 0)) {
		json_decref(slim);
		return;
	}
	seqcache_put_record(e, slim, c->veh_version, c->gen);
	json_decref(slim);
}

static void
read_work(struct workq_job *job, void *ctx)
{
	struct ccall *c = (struct ccall *)job;
	struct store_txn *tx = NULL;
	uint64_t rowv;

	(void)ctx;
	/* the generation before the read: the record is current while it is unchanged */
	c->gen = vehicle_registry_generation(c->vehicle);
	/* a snapshot of its own: no waiting for a batch's disk sync */
	if ((c->rc = store_begin_read(c->svc->store, &tx)) != 0)
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
	    !catalog_version_usable(k, v) || kid_of(c->st, k, v, c->kid) != 0) {
		snprintf(msg, sizeof(msg), "key '%s' is not an enabled ECDSA P-256 or Ed25519 key of "
		    "purpose command", c->key);
		fail(c, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	c->alg = k->alg;
	c->key_version = v->version;
	remember_record(c);
	rpc_call_audit_key(c->call, k->name, v->version);
	/* the record the policy judged (and the sequence step confirms) */
	snprintf(msg, sizeof(msg), "%llu", (unsigned long long)c->veh_version);
	(void)!rpc_call_audit_field(c->call, "command.vehicle_version", msg);
	seq_assign(c);
}

/* ---- 1. the request ------------------------------------------------------------------ */

static void
sign_command(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SignCommandRequest *r = (const Boltseal__V1__SignCommandRequest *)msg;
	struct cmd_state *st = rpc_call_service_state(call);
	struct svc_ctx *svc = rpc_call_svc(call);
	struct ccall *c;
	json_t *args = NULL;
	const struct cmd_maximum *own;
	struct seqcache_entry *e;
	json_t *rec;
	uint64_t gen;
	uint32_t max_valid;
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
	if (r->format != BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_JWS &&
	    r->format != BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "format: COMMAND_FORMAT_JWS or "
		    "COMMAND_FORMAT_COSE");
		return;
	}
	own = maximum_of(st, r->command);
	max_valid = own != NULL ? own->max_valid : st->max_valid;
	if (r->valid_seconds > max_valid) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "valid_seconds: at most %u for %s "
		    "(commands.max_valid_seconds%s%s)", (unsigned)max_valid, r->command,
		    own != NULL ? "." : "", own != NULL ? own->command : "");
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
	c->st = st;
	st->svc = svc;                /* the one the batches use (the same for every call) */
	snprintf(c->vehicle, sizeof(c->vehicle), "%s", r->vehicle_id);
	snprintf(c->command, sizeof(c->command), "%s", r->command);
	snprintf(c->key, sizeof(c->key), "%s", r->key_name);
	c->valid = r->valid_seconds == 0 ? max_valid : r->valid_seconds;
	c->iat = (int64_t)time(NULL);
	c->exp = c->iat + c->valid;
	bs_hex_encode(rnd, sizeof(rnd), c->jti);
	memcpy(c->cti, rnd, sizeof(c->cti));
	c->cose = r->format == BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE;
	rpc_call_audit_target(call, c->vehicle);
	(void)!rpc_call_audit_field(call, "command.vehicle_id", c->vehicle);
	(void)!rpc_call_audit_field(call, "command.name", c->command);
	(void)!rpc_call_audit_field(call, "command.format", c->cose ? "cose" : "jws");
	/* the record remembered, while the registry has not changed since it was read */
	if ((e = seqcache_get(st->cache, c->vehicle)) != NULL &&
	    (rec = seqcache_record(e, gen = vehicle_registry_generation(c->vehicle),
	    &c->veh_version)) != NULL) {
		c->veh = json_incref(rec);
		c->gen = gen;
		c->rc = 0;
		read_done(&c->job);
		return;
	}
	if (submit(c, read_work, read_done) != 0)
		fail(c, GRPC_STATUS_UNAVAILABLE, "server busy or shutting down");
}

static const struct rpc_method methods[] = {
	{ "SignCommand", &boltseal__v1__sign_command_request__descriptor,
	    &boltseal__v1__sign_command_response__descriptor, RPC_AUTHZ_POLICY, 0, sign_command },
	{ "InspectCommand", &boltseal__v1__inspect_command_request__descriptor,
	    &boltseal__v1__inspect_command_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    commands_inspect },
};

const struct rpc_service command_service = {
	.name = "boltseal.v1.CommandService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "commands",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = cmd_init,
	.named = cmd_named,
	.fini = cmd_fini,
};
