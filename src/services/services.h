/*
 * services.h - what boltseal's services share: the state main() builds for
 * them (struct svc_ctx, the RPC layer's "env" of every call) and the list of
 * service descriptors the daemon serves (services/registry.c).
 *
 * Each service is one folder under services/ exporting one struct
 * rpc_service (rpc/rpc_service.h); its handlers reach the shared state
 * with rpc_call_svc(). Event loop thread only.
 */
#ifndef BS_SERVICES_H
#define BS_SERVICES_H

#include <stddef.h>

#include "rpc/rpc_service.h"

struct hsm_pool;
struct keyclient;
struct workq;
struct catalog;
struct bs_config;
struct audit_log;
struct checkpointer;
struct rpc_registry;
struct store;
struct rpc_dispatcher;
struct policy;

/* Shared state the handlers use; owned by main, loop thread only. */
struct svc_ctx {
	struct keyclient *keys;    /* the key door: every key operation */
	struct hsm_pool *pool;     /* HSM threads (behind the key door) */
	struct workq *work;        /* CPU and disk work (Verify, audit reads) */
	struct catalog *catalog;
	struct store *store;       /* the durable state (the catalog's too): worker threads only */
	const struct bs_config *cfg;
	const struct rpc_registry *registry;  /* what the server serves (health) */
	unsigned nworkers;
	int hsm_healthy;           /* last known HSM state: 1 usable, 0 not */
	int shutting_down;
	struct audit_log *audit;   /* NULL when audit = off */
	struct checkpointer *checkpointer;   /* NULL when audit = off */
	int tls_ready;             /* every CRL present and current */
	struct event_base *base;   /* the event loop (service timers); NULL in unit tests */
	struct rpc_dispatcher *disp;   /* the RPC layer (AdminService registers its checker) */
	/*
	 * Puts p, stored as policy version, in force unless that version or a
	 * newer one is already; takes p either way. Returns 0 if it did, -1 if
	 * not. Set by the daemon; NULL where no daemon holds the policy
	 * (SetPolicy then answers UNAVAILABLE).
	 */
	int (*policy_adopt)(void *arg, struct policy *p, uint64_t version);
	void *policy_arg;
	/*
	 * A service changed a file the TLS layer trusts (a CRL written to
	 * ca_crl_dir): the daemon reloads its TLS material now, as on SIGHUP,
	 * and re-checks the open connections, instead of at its next look.
	 * why is recorded. NULL where no daemon serves TLS (unit tests).
	 */
	void (*trust_changed)(void *arg, const char *why);
	void *trust_arg;
};

static inline struct svc_ctx *
rpc_call_svc(const struct rpc_call *call)
{
	return rpc_call_env(call);
}

/* Every service boltseal has, test-only ones included (services/registry.c). */
extern const struct rpc_service *const services_all[];
extern const size_t services_count;

/* Maps a hsm/catalog error seen by a job to the service's health flag. */
void svc_note_hsm_result(struct svc_ctx *svc, int err);

#endif
