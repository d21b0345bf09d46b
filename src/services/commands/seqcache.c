/*
 * seqcache.c - CommandService's per-vehicle memory: records and reserved
 * sequence-number blocks (see seqcache.h). A hash table with chaining,
 * sized once; entries live until the cache is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strhash.h"
#include "services/commands/seqcache.h"

#define SEQCACHE_BUCKETS 16384

struct seqcache {
	struct seqcache_entry **buckets;
	size_t count, max;
};

static size_t
bucket_of(const char *s)
{
	return (size_t)(bs_strhash(s) % SEQCACHE_BUCKETS);
}

int
seqcache_new(size_t max, struct seqcache **out)
{
	struct seqcache *sc;

	if (out == NULL || max == 0 || max > SEQCACHE_MAX)
		return BS_ERR_INVALID;
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->buckets = calloc(SEQCACHE_BUCKETS, sizeof(*sc->buckets))) == NULL) {
		free(sc);
		return BS_ERR_NOMEM;
	}
	sc->max = max;
	*out = sc;
	return 0;
}

void
seqcache_free(struct seqcache *sc)
{
	if (sc == NULL)
		return;
	for (size_t i = 0; i < SEQCACHE_BUCKETS; i++) {
		struct seqcache_entry *e = sc->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			json_decref(e->rec);
			free(e);
		}
	}
	free(sc->buckets);
	free(sc);
}

struct seqcache_entry *
seqcache_get(struct seqcache *sc, const char *vehicle)
{
	struct seqcache_entry *e;

	for (e = sc->buckets[bucket_of(vehicle)]; e != NULL; e = e->hnext)
		if (strcmp(e->vehicle, vehicle) == 0)
			return e;
	return NULL;
}

struct seqcache_entry *
seqcache_add(struct seqcache *sc, const char *vehicle)
{
	struct seqcache_entry *e = seqcache_get(sc, vehicle);
	size_t b;

	if (e != NULL)
		return e;
	if (sc->count >= sc->max || strlen(vehicle) > VEHICLE_ID_MAX ||
	    (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->vehicle, sizeof(e->vehicle), "%s", vehicle);
	e->waiters_tail = &e->waiters;
	b = bucket_of(vehicle);
	e->hnext = sc->buckets[b];
	sc->buckets[b] = e;
	sc->count++;
	return e;
}

void
seqcache_put_record(struct seqcache_entry *e, json_t *rec, uint64_t version, uint64_t gen)
{
	if (e->rec != NULL && gen < e->rec_gen)
		return;
	json_incref(rec);
	json_decref(e->rec);
	e->rec = rec;
	e->rec_version = version;
	e->rec_gen = gen;
}

json_t *
seqcache_record(const struct seqcache_entry *e, uint64_t gen_now, uint64_t *version)
{
	if (e->rec == NULL || e->rec_gen != gen_now)
		return NULL;
	*version = e->rec_version;
	return e->rec;
}

void
seqcache_forget_record(struct seqcache_entry *e)
{
	json_decref(e->rec);
	e->rec = NULL;
}

void
seqcache_put_block(struct seqcache_entry *e, uint64_t from, uint64_t limit, uint64_t version,
    uint64_t gen)
{
	e->next = from;
	e->limit = limit;
	e->version = version;
	e->gen = gen;
}

int
seqcache_take(struct seqcache_entry *e, uint64_t gen_now, uint64_t version, uint64_t *seq)
{
	if (e->next >= e->limit || e->gen != gen_now || e->version != version)
		return 0;
	*seq = e->next++;
	return 1;
}

void
seqcache_wait(struct seqcache_entry *e, struct seqcache_waiter *w)
{
	w->next = NULL;
	*e->waiters_tail = w;
	e->waiters_tail = &w->next;
}

struct seqcache_waiter *
seqcache_waiters(struct seqcache_entry *e)
{
	struct seqcache_waiter *w = e->waiters;

	e->waiters = NULL;
	e->waiters_tail = &e->waiters;
	return w;
}

size_t
seqcache_count(const struct seqcache *sc)
{
	return sc->count;
}
