/*
 * pool.h - the HSM worker pool: a work queue (exec/workq.h) whose N threads
 * each hold their own logged-in session; completions go back to the
 * libevent loop that created the pool.
 *
 * A job is a struct the caller embeds in its own typed request (inputs
 * copied in, never pointing into network buffers). work() runs on a worker
 * thread with that worker's session; done() runs later on the event loop
 * thread. A job whose caller went away is marked cancelled with
 * hsm_job_cancel(): work() may check hsm_job_cancelled() and skip the HSM
 * call; done() is still called so the owner can free it.
 */
#ifndef BS_POOL_H
#define BS_POOL_H

#include <stddef.h>

#include "common/bs_error.h"
#include "exec/workq.h"
#include "hsm/hsm.h"

struct event_base;
struct hsm_pool;

struct hsm_job {
	void (*work)(struct hsm_job *job, struct hsm_session *s); /* worker thread */
	void (*done)(struct hsm_job *job);                        /* event loop thread */
	struct workq_job wj;          /* private to the pool */
};

/*
 * Starts nworkers threads (each opens its own session; a failure here fails
 * the call) with a queue of at most queue_max waiting jobs. base must have
 * been created after evthread_use_pthreads().
 */
int hsm_pool_new(struct hsm *h, struct event_base *base, unsigned nworkers, unsigned queue_max,
    struct hsm_pool **out) BS_WUR;

/*
 * Queues job. Returns 0, BS_ERR_QUEUE_FULL at once if queue_max jobs are
 * waiting, or BS_ERR_UNAVAILABLE after hsm_pool_stop(). On error neither
 * callback will be called.
 */
int hsm_pool_submit(struct hsm_pool *p, struct hsm_job *job) BS_WUR;

/* Marks job cancelled (event loop thread only). */
void hsm_job_cancel(struct hsm_job *job);
/* 1 if the job was cancelled before its work started (read on the worker). */
int hsm_job_cancelled(const struct hsm_job *job);

/* Waiting + running + completed jobs whose done() has not run yet. */
unsigned hsm_pool_inflight(const struct hsm_pool *p);
/* The pool's queue figures (workq_stats): refusals when full, job latency. Loop thread. */
struct workq_stats;
void hsm_pool_stats(const struct hsm_pool *p, struct workq_stats *st);

/*
 * Stops accepting jobs, lets the workers finish what is queued, joins them,
 * closes their sessions, and runs the remaining done() callbacks.
 */
void hsm_pool_stop(struct hsm_pool *p);
void hsm_pool_free(struct hsm_pool *p);

#endif
