/*
 * ratelimit.c - per-principal token buckets and refusal summaries (see
 * ratelimit.h). Entries live in a chained hash table keyed by principal id
 * (ids come from the policy, not from callers, so the hash needs no
 * secret); the unmapped callers' entry lives outside it.
 *
 * Token arithmetic is in integer units: one token = RPC_RL_INTERVAL_NS
 * units, and a bucket of rate r (tokens per second) gains r units per
 * nanosecond, up to r * RPC_RL_INTERVAL_NS (one second's worth). With
 * r <= 10^7 and refills capped at 10 s, nothing overflows an int64_t.
 */
#include <stdlib.h>
#include <string.h>

#include "common/strhash.h"
#include "rpc/ratelimit.h"

#define RATE_MAX 10000000u
#define UNIT ((int64_t)RPC_RL_INTERVAL_NS)
#define REFILL_MAX_NS (10 * RPC_RL_INTERVAL_NS)
#define NBUCKETS_MIN 16
#define SWEEP_MIN 32

struct entry {
	struct entry *next;
	uint64_t hash;
	uint64_t last;                      /* buckets refilled up to this time */
	int64_t calls, records;             /* units */
	/* the pending summary */
	uint64_t over_calls, over_records;
	uint64_t first;                     /* time of its first refusal */
	char first_id[RPC_RL_ID_MAX], last_id[RPC_RL_ID_MAX];
	char identity[RPC_RL_IDENTITY_MAX];
	uint8_t cert[32];
	int several;
	char key[];                         /* "" for the unmapped entry */
};

struct rpc_ratelimit {
	int64_t calls_rate, records_rate;   /* tokens per second; 0 = off */
	struct entry **tab;
	size_t nbuckets, count, sweep_at;
	struct entry *unmapped;
	uint64_t next_due;                  /* 0: nothing pending */
	uint64_t pending;
};

static struct entry *
entry_new(const char *key, uint64_t now, const struct rpc_ratelimit *rl)
{
	size_t klen = strlen(key);
	struct entry *e = calloc(1, sizeof(*e) + klen + 1);

	if (e == NULL)
		return NULL;
	memcpy(e->key, key, klen + 1);
	e->hash = bs_strhash(key);
	e->last = now;
	e->calls = rl->calls_rate * UNIT;
	e->records = rl->records_rate * UNIT;
	return e;
}

int
rpc_rl_new(unsigned calls_per_s, unsigned records_per_s, struct rpc_ratelimit **out)
{
	struct rpc_ratelimit *rl;

	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return BS_ERR_NOMEM;
	rl->calls_rate = calls_per_s > RATE_MAX ? RATE_MAX : calls_per_s;
	rl->records_rate = records_per_s > RATE_MAX ? RATE_MAX : records_per_s;
	rl->nbuckets = NBUCKETS_MIN;
	rl->sweep_at = SWEEP_MIN;
	if ((rl->tab = calloc(rl->nbuckets, sizeof(*rl->tab))) == NULL ||
	    (rl->unmapped = entry_new("", 0, rl)) == NULL) {
		rpc_rl_free(rl);
		return BS_ERR_NOMEM;
	}
	*out = rl;
	return 0;
}

void
rpc_rl_free(struct rpc_ratelimit *rl)
{
	struct entry *e, *next;

	if (rl == NULL)
		return;
	for (size_t i = 0; rl->tab != NULL && i < rl->nbuckets; i++)
		for (e = rl->tab[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(rl->tab);
	free(rl->unmapped);
	free(rl);
}

/* Brings e's buckets up to now. */
static void
refill(const struct rpc_ratelimit *rl, struct entry *e, uint64_t now)
{
	uint64_t dt;

	if (now <= e->last)
		return;
	dt = now - e->last;
	if (dt > REFILL_MAX_NS)
		dt = REFILL_MAX_NS;
	e->last = now;
	e->calls += (int64_t)dt * rl->calls_rate;
	if (e->calls > rl->calls_rate * UNIT)
		e->calls = rl->calls_rate * UNIT;
	e->records += (int64_t)dt * rl->records_rate;
	if (e->records > rl->records_rate * UNIT)
		e->records = rl->records_rate * UNIT;
}

/* 1 if e holds nothing a fresh entry would not: full buckets, no pending summary. */
static int
idle(const struct rpc_ratelimit *rl, struct entry *e, uint64_t now)
{
	refill(rl, e, now);
	return e->over_calls == 0 && e->over_records == 0 && e->calls >= rl->calls_rate * UNIT &&
	    e->records >= rl->records_rate * UNIT;
}

/* Drops idle entries; the next sweep comes when the table has doubled. */
static void
sweep(struct rpc_ratelimit *rl, uint64_t now)
{
	for (size_t i = 0; i < rl->nbuckets; i++) {
		struct entry **pp = &rl->tab[i];

		while (*pp != NULL) {
			struct entry *e = *pp;

			if (idle(rl, e, now)) {
				*pp = e->next;
				free(e);
				rl->count--;
			} else {
				pp = &e->next;
			}
		}
	}
	rl->sweep_at = rl->count * 2 > SWEEP_MIN ? rl->count * 2 : SWEEP_MIN;
}

/* Doubles the table (best effort: a failed allocation keeps the old one). */
static void
grow(struct rpc_ratelimit *rl)
{
	size_t n = rl->nbuckets * 2;
	struct entry **tab = calloc(n, sizeof(*tab));

	if (tab == NULL)
		return;
	for (size_t i = 0; i < rl->nbuckets; i++) {
		struct entry *e, *next;

		for (e = rl->tab[i]; e != NULL; e = next) {
			next = e->next;
			e->next = tab[e->hash & (n - 1)];
			tab[e->hash & (n - 1)] = e;
		}
	}
	free(rl->tab);
	rl->tab = tab;
	rl->nbuckets = n;
}

/* The entry of key (NULL: unmapped), made if needed; NULL only when out of memory. */
static struct entry *
lookup(struct rpc_ratelimit *rl, const char *key, uint64_t now, int create)
{
	struct entry *e;
	uint64_t h;

	if (key == NULL)
		return rl->unmapped;
	h = bs_strhash(key);
	for (e = rl->tab[h & (rl->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	if (rl->count >= rl->sweep_at)
		sweep(rl, now);
	if (rl->count >= rl->nbuckets)
		grow(rl);
	if ((e = entry_new(key, now, rl)) == NULL)
		return NULL;
	e->next = rl->tab[h & (rl->nbuckets - 1)];
	rl->tab[h & (rl->nbuckets - 1)] = e;
	rl->count++;
	return e;
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Counts a refusal into e's pending summary. */
static void
note_refusal(struct rpc_ratelimit *rl, struct entry *e, int verdict, uint64_t now,
    const char *request_id, const char *identity, const uint8_t cert[32])
{
	static const uint8_t zero[32];

	if (e->over_calls == 0 && e->over_records == 0) {
		e->first = now;
		copy_str(e->first_id, sizeof(e->first_id), request_id);
		copy_str(e->identity, sizeof(e->identity), identity);
		memcpy(e->cert, cert != NULL ? cert : zero, 32);
		e->several = 0;
		if (rl->next_due == 0 || now + RPC_RL_INTERVAL_NS < rl->next_due)
			rl->next_due = now + RPC_RL_INTERVAL_NS;
	} else if (memcmp(e->cert, cert != NULL ? cert : zero, 32) != 0) {
		e->several = 1;
	}
	copy_str(e->last_id, sizeof(e->last_id), request_id);
	if (verdict == RPC_RL_OVER_CALLS)
		e->over_calls++;
	else
		e->over_records++;
	rl->pending++;
}

int
rpc_rl_admit(struct rpc_ratelimit *rl, const char *key, uint64_t now, const char *request_id,
    const char *identity, const uint8_t cert_sha256[32])
{
	struct entry *e = lookup(rl, key, now, 1);
	int verdict = RPC_RL_OK;

	if (e == NULL)
		return BS_ERR_NOMEM;
	refill(rl, e, now);
	if (rl->calls_rate > 0 && e->calls < UNIT)
		verdict = RPC_RL_OVER_CALLS;
	else if (rl->records_rate > 0 && e->records < UNIT)
		verdict = RPC_RL_OVER_RECORDS;
	if (verdict != RPC_RL_OK) {
		note_refusal(rl, e, verdict, now, request_id, identity, cert_sha256);
		return verdict;
	}
	if (rl->calls_rate > 0)
		e->calls -= UNIT;
	if (rl->records_rate > 0)
		e->records -= UNIT;
	return RPC_RL_OK;
}

void
rpc_rl_charge(struct rpc_ratelimit *rl, const char *key, uint64_t now)
{
	struct entry *e;

	if (rl->records_rate == 0 || (e = lookup(rl, key, now, 1)) == NULL)
		return;
	refill(rl, e, now);
	/* a debt of at most one second's worth: a burst of late records cannot lock out for long */
	if (e->records - UNIT >= -rl->records_rate * UNIT)
		e->records -= UNIT;
}

/* Hands e's pending summary to fn if due (or forced) and clears it; 1 if still pending. */
static int
flush_entry(struct rpc_ratelimit *rl, struct entry *e, uint64_t now, int force,
    rpc_rl_summary_fn fn, void *arg, uint64_t *next)
{
	struct rpc_rl_summary s;

	if (e->over_calls == 0 && e->over_records == 0)
		return 0;
	if (!force && now < e->first + RPC_RL_INTERVAL_NS) {
		if (*next == 0 || e->first + RPC_RL_INTERVAL_NS < *next)
			*next = e->first + RPC_RL_INTERVAL_NS;
		return 1;
	}
	s.key = e == rl->unmapped ? NULL : e->key;
	s.over_calls = e->over_calls;
	s.over_records = e->over_records;
	s.window_ns = now > e->first ? now - e->first : 0;
	s.first_request_id = e->first_id;
	s.last_request_id = e->last_id;
	s.identity = e->identity;
	s.cert_sha256 = e->cert;
	s.several_certs = e->several;
	rl->pending -= e->over_calls + e->over_records;
	e->over_calls = e->over_records = 0;
	fn(arg, &s);
	return 0;
}

uint64_t
rpc_rl_flush(struct rpc_ratelimit *rl, uint64_t now, int force, rpc_rl_summary_fn fn, void *arg)
{
	uint64_t next = 0;

	if (rl->pending == 0) {
		rl->next_due = 0;
		return 0;
	}
	(void)flush_entry(rl, rl->unmapped, now, force, fn, arg, &next);
	for (size_t i = 0; i < rl->nbuckets; i++)
		for (struct entry *e = rl->tab[i]; e != NULL; e = e->next)
			(void)flush_entry(rl, e, now, force, fn, arg, &next);
	rl->next_due = next;
	return next;
}

uint64_t
rpc_rl_next_due(const struct rpc_ratelimit *rl)
{
	return rl->next_due;
}

uint64_t
rpc_rl_pending(const struct rpc_ratelimit *rl)
{
	return rl->pending;
}

size_t
rpc_rl_entries(const struct rpc_ratelimit *rl)
{
	return rl->count;
}
