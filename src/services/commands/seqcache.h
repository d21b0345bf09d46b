/*
 * seqcache.h - CommandService's memory of the vehicles it sends commands
 * to (event loop thread only, no locking): per vehicle, the registry record
 * last read, and the sequence numbers reserved durably in the store but
 * not issued yet.
 *
 * Sequence numbers are reserved in blocks: a batch transaction raises the
 * vehicle's counter (its high-water mark: no number above it was ever
 * issued) by the numbers its calls need plus SEQCACHE_BLOCK spare ones,
 * commits, and the spare ones land here as [next, limit). A later command
 * takes the next one without touching the disk, as long as nothing in the
 * registry changed since the vehicle's record was checked (the registry's
 * generation for it, vehicle_registry_generation(), is unchanged and the record's
 * version is the one the policy judged). Numbers are never issued twice: a
 * block is reserved durably before any of it is handed out, blocks never
 * overlap (each is read and raised in one BEGIN IMMEDIATE transaction), and
 * one thread hands them out. What a crash or a replaced block leaves unused
 * is a gap, never a repeat.
 */
#ifndef BS_SEQCACHE_H
#define BS_SEQCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"
#include "services/vehicles/registry.h"

#define SEQCACHE_BLOCK 64            /* spare numbers reserved with each batch's */
#define SEQCACHE_MAX 65536           /* vehicles remembered; more go the slow way */

/* A call waiting for the block another call is reserving (embedded in it). */
struct seqcache_waiter {
	struct seqcache_waiter *next;
};

struct seqcache_entry {
	char vehicle[VEHICLE_ID_MAX + 1];
	/* the registry record last read, and the registry generation before that read */
	json_t *rec;
	uint64_t rec_version, rec_gen;
	/* the block: its numbers, the record version they were checked against, and when */
	uint64_t next, limit;            /* [next, limit) reserved and not issued */
	uint64_t version, gen;
	const void *reserver;            /* the call reserving this vehicle's next block, or NULL */
	struct seqcache_waiter *waiters, **waiters_tail;
	struct seqcache_entry *hnext;    /* private: the hash chain */
};

struct seqcache;

/* A cache of at most max entries (1..SEQCACHE_MAX). 0, BS_ERR_INVALID, BS_ERR_NOMEM. */
int seqcache_new(size_t max, struct seqcache **out) BS_WUR;
/* Frees it and every record it holds (waiters are the caller's). NULL: no-op. */
void seqcache_free(struct seqcache *sc);

/* The vehicle's entry, or NULL. */
struct seqcache_entry *seqcache_get(struct seqcache *sc, const char *vehicle);
/* The vehicle's entry, created empty if needed; NULL when full or out of memory. */
struct seqcache_entry *seqcache_add(struct seqcache *sc, const char *vehicle);

/*
 * Remembers rec (a reference is taken) as the vehicle's record at version,
 * read after the registry's generation was gen; an older read (smaller
 * gen) than the one remembered is ignored.
 */
void seqcache_put_record(struct seqcache_entry *e, json_t *rec, uint64_t version, uint64_t gen);

/*
 * The remembered record if it is still current (no registry change since
 * it was read: gen_now is its generation), else NULL. Borrowed.
 */
json_t *seqcache_record(const struct seqcache_entry *e, uint64_t gen_now, uint64_t *version);

/* Drops the remembered record (the next command reads the store). */
void seqcache_forget_record(struct seqcache_entry *e);

/*
 * Installs the block [from, limit), committed by a batch that checked the
 * record at version after the registry's generation was gen: it replaces
 * what was left of the previous block (a gap).
 */
void seqcache_put_block(struct seqcache_entry *e, uint64_t from, uint64_t limit, uint64_t version,
    uint64_t gen);

/*
 * Issues the next number of the block into *seq when the block is still
 * valid for a command judged on the record at version: no registry change
 * since it was checked (gen_now) and the same version. 1 if issued, 0 if
 * not (no block, used up, or the registry changed).
 */
int seqcache_take(struct seqcache_entry *e, uint64_t gen_now, uint64_t version, uint64_t *seq);

/* Waiters for the block being reserved, in order. */
void seqcache_wait(struct seqcache_entry *e, struct seqcache_waiter *w);
/* Takes the whole waiting list (NULL when none). */
struct seqcache_waiter *seqcache_waiters(struct seqcache_entry *e);

/* Entries held. */
size_t seqcache_count(const struct seqcache *sc);

#endif
