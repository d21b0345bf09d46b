/*
 * ratelimit.h - per-principal token buckets of the dispatcher: calls per
 * second and audit records per second, and the summary of the calls they
 * refused (one per principal per interval, not one per call).
 *
 * Each key (a principal's id; NULL stands for every certificate that maps
 * to no principal, which share one bucket pair) has two buckets holding one
 * second's worth of tokens and refilled continuously. A call takes one call
 * token and reserves one record token (its answer's record); each further
 * record of the call is charged when it is written. A call finding either
 * bucket empty is refused and counted into the key's pending summary, which
 * is due RPC_RL_INTERVAL_NS after the first refusal it counts.
 *
 * Memory: one entry per key used in the last second or so (an entry whose
 * buckets are full again and which has nothing pending is dropped), so at
 * most the principals of the policy plus one. Pure: no clock of its own (the
 * caller passes CLOCK_MONOTONIC nanoseconds), no I/O, one thread.
 */
#ifndef BS_RPC_RATELIMIT_H
#define BS_RPC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define RPC_RL_INTERVAL_NS 1000000000ull   /* one second: bucket size and summary interval */
#define RPC_RL_ID_MAX 24                   /* request ids kept in a summary, NUL included */
#define RPC_RL_IDENTITY_MAX 512            /* = RPC_IDENTITY_MAX */

struct rpc_ratelimit;

/* rpc_rl_admit's verdicts. */
enum rpc_rl_verdict {
	RPC_RL_OK = 0,
	RPC_RL_OVER_CALLS,      /* the key's calls per second are used up */
	RPC_RL_OVER_RECORDS,    /* the key's audit records per second are used up */
};

/* One key's refusals since its last summary (all pointers borrowed for the callback). */
struct rpc_rl_summary {
	const char *key;                   /* principal id; NULL: certificates mapped to none */
	uint64_t over_calls;               /* refused over calls per second */
	uint64_t over_records;             /* refused over audit records per second */
	uint64_t window_ns;                /* from the first refusal counted to the summary */
	const char *first_request_id;
	const char *last_request_id;
	const char *identity;              /* of the first refused call */
	const uint8_t *cert_sha256;        /* of the first refused call (32 bytes) */
	int several_certs;                 /* 1 if refused calls came from more than one certificate */
};

typedef void (*rpc_rl_summary_fn)(void *arg, const struct rpc_rl_summary *s);

/*
 * A limiter of calls_per_s and records_per_s per key (0: that limit is off;
 * at most 10^7 each). Returns 0 or BS_ERR_NOMEM.
 */
int rpc_rl_new(unsigned calls_per_s, unsigned records_per_s, struct rpc_ratelimit **out) BS_WUR;

/* Frees rl and what is pending (see rpc_rl_pending first). NULL is a no-op. */
void rpc_rl_free(struct rpc_ratelimit *rl);

/*
 * A call of key (NULL: unmapped) begins at now. RPC_RL_OK: a call token was
 * taken and a record token reserved. Otherwise nothing was taken and the
 * refusal (request_id, identity, cert_sha256: borrowed, copied as needed)
 * is counted into key's pending summary. BS_ERR_NOMEM if a new key's entry
 * cannot be made (the caller decides; the dispatcher lets the call through).
 */
int rpc_rl_admit(struct rpc_ratelimit *rl, const char *key, uint64_t now,
    const char *request_id, const char *identity, const uint8_t cert_sha256[32]) BS_WUR;

/* One more audit record of a call of key at now (beyond its reserved one); never refuses. */
void rpc_rl_charge(struct rpc_ratelimit *rl, const char *key, uint64_t now);

/*
 * Calls fn(arg, summary) for each pending summary due at now (all of them
 * if force), and forgets them. Returns the time the next pending summary is
 * due, 0 if none is pending.
 */
uint64_t rpc_rl_flush(struct rpc_ratelimit *rl, uint64_t now, int force, rpc_rl_summary_fn fn,
    void *arg);

/* When the earliest pending summary is due (0: none pending). */
uint64_t rpc_rl_next_due(const struct rpc_ratelimit *rl);

/* Refusals counted and not yet handed to a flush. */
uint64_t rpc_rl_pending(const struct rpc_ratelimit *rl);

/* Entries held (for tests of the memory bound). */
size_t rpc_rl_entries(const struct rpc_ratelimit *rl);

#endif
