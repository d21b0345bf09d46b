/*
 * workq.h - a bounded work queue served by a fixed set of threads, with
 * completions handed back to the libevent loop that created it.
 *
 * Two kinds exist in boltsealed: the HSM worker pool (hsm/pool.h), whose
 * threads each hold a logged-in PKCS#11 session (their thread context), and
 * the general queue for CPU or disk work that is not HSM work (verification
 * with caller-supplied keys, audit file reads), so that threads holding HSM
 * sessions only talk to the HSM.
 *
 * A job is a struct the caller embeds first in its own typed request
 * (inputs copied in, never pointing into network buffers). work() runs on a
 * queue thread with that thread's context; done() runs later on the event
 * loop thread. A job whose caller went away is marked cancelled with
 * workq_job_cancel(): work() may check workq_job_cancelled() and skip its
 * work; done() is still called so the owner can free it.
 */
#ifndef BS_WORKQ_H
#define BS_WORKQ_H

#include <stddef.h>

#include <time.h>

#include "common/bs_error.h"
#include "common/histogram.h"

struct event_base;
struct workq;

struct workq_job {
	void (*work)(struct workq_job *job, void *thread_ctx);   /* queue thread */
	void (*done)(struct workq_job *job);                     /* event loop thread */
	/* private to the queue */
	struct workq_job *next;
	_Atomic int cancelled;
	struct timespec queued;          /* CLOCK_MONOTONIC at submit */
};

struct workq_opts {
	unsigned nthreads;                 /* 1..256 */
	unsigned queue_max;                /* jobs waiting, >= 1 */
	/* optional: each thread's context, made on the thread before it takes jobs */
	int (*thread_init)(void *arg, void **ctx);
	void (*thread_fini)(void *arg, void *ctx);
	void *arg;
	const char *name;                  /* for thread names ("hsm", "work") */
};

/*
 * Starts o->nthreads threads; returns once each ran thread_init (a failure
 * there fails the call with its error, and stops the others). base must have
 * been created after evthread_use_pthreads(). Returns 0, BS_ERR_INVALID,
 * BS_ERR_NOMEM, BS_ERR_INTERNAL or thread_init's error.
 */
int workq_new(struct event_base *base, const struct workq_opts *o, struct workq **out) BS_WUR;

/*
 * Queues job. Returns 0, BS_ERR_QUEUE_FULL at once if queue_max jobs are
 * waiting, BS_ERR_UNAVAILABLE after workq_stop(), BS_ERR_INVALID. On error
 * neither callback will be called.
 */
int workq_submit(struct workq *q, struct workq_job *job) BS_WUR;

/* Marks job cancelled (event loop thread only). */
void workq_job_cancel(struct workq_job *job);
/* 1 if the job was cancelled (read on the queue thread). */
int workq_job_cancelled(const struct workq_job *job);

/* Waiting + running + completed jobs whose done() has not run yet. */
unsigned workq_inflight(const struct workq *q);

/* What the queue did, for the metrics (event loop thread). */
struct workq_stats {
	uint64_t refused_full;             /* submits refused with BS_ERR_QUEUE_FULL */
	struct bs_hist latency;            /* submit to done(), per job */
};
void workq_stats(const struct workq *q, struct workq_stats *st);

/*
 * Stops accepting jobs, lets the threads finish what is queued, joins them
 * (thread_fini runs on each), and runs the remaining done() callbacks here.
 */
void workq_stop(struct workq *q);
/* Stops (if needed) and frees. NULL is a no-op. */
void workq_free(struct workq *q);

#endif
