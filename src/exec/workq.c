/*
 * workq.c - the bounded work queue (see workq.h).
 *
 * nthreads threads each make their context (thread_init) when they start
 * and take jobs from one bounded FIFO. A finished job goes on a completion
 * list and the pool's event (created with event_new(base, -1, 0, ...)) is
 * made active with event_active(), which is thread-safe because the base
 * was created after evthread_use_pthreads(); its callback then runs the
 * done() callbacks on the event loop thread.
 *
 * Locking: p->mu guards the queue, the completion list, the counters and
 * the stopping flag; p->cv wakes workers (new job or stop) and the thread
 * waiting in workq_new() for the threads' contexts. Callbacks are never
 * run with p->mu held, so done() may submit again.
 */
#define _GNU_SOURCE                  /* pthread_setname_np */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "exec/workq.h"

#define WORKQ_MAX_THREADS 256

struct worker {
	struct workq *p;
	pthread_t tid;
	int started;                 /* thread created (joinable) */
	void *ctx;                   /* thread_init's context, owned by the thread until joined */
	int have_ctx;
};

struct workq {
	struct workq_opts o;
	struct event_base *base;
	struct event *ev;            /* completion signal, loop thread */

	pthread_mutex_t mu;
	pthread_cond_t cv;           /* workers: job or stop; creator: start-up */
	struct workq_job *q_head, *q_tail;
	unsigned q_len, queue_max;
	unsigned running;            /* jobs inside work() */
	struct workq_job *d_head, *d_tail;
	unsigned d_len;              /* completed, done() not yet called */
	int stopping;
	unsigned nready, nfailed;    /* start-up handshake */
	int start_ret;

	uint64_t refused_full;       /* under mu */
	struct bs_hist latency;      /* loop thread only */

	int stopped;                 /* loop thread only */
	unsigned nworkers;
	struct worker *w;
};

static void
run_done_list(struct workq *p)
{
	struct workq_job *j, *next;

	pthread_mutex_lock(&p->mu);
	j = p->d_head;
	p->d_head = p->d_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; j != NULL; j = next) {
		next = j->next;  /* done() may free j */
		j->next = NULL;
		pthread_mutex_lock(&p->mu);
		p->d_len--;
		pthread_mutex_unlock(&p->mu);
		bs_hist_add(&p->latency, bs_elapsed_us(&j->queued));
		j->done(j);
	}
}

static void
on_completion(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_done_list(arg);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct workq *p = w->p;
	struct workq_job *j;
	int ret, was_empty;

	if (p->o.name != NULL)
		(void)pthread_setname_np(pthread_self(), p->o.name);
	ret = p->o.thread_init != NULL ? p->o.thread_init(p->o.arg, &w->ctx) : 0;
	pthread_mutex_lock(&p->mu);
	if (ret != 0) {
		w->ctx = NULL;
		p->nfailed++;
		if (p->start_ret == 0)
			p->start_ret = ret;
	} else {
		w->have_ctx = 1;
		p->nready++;
	}
	pthread_cond_broadcast(&p->cv);
	if (ret != 0) {
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	for (;;) {
		while (p->q_head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->q_head == NULL)
			break;  /* stopping and drained */
		j = p->q_head;
		p->q_head = j->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		p->q_len--;
		p->running++;
		pthread_mutex_unlock(&p->mu);

		j->next = NULL;
		j->work(j, w->ctx);

		pthread_mutex_lock(&p->mu);
		p->running--;
		was_empty = p->d_head == NULL;
		if (p->d_tail != NULL)
			p->d_tail->next = j;
		else
			p->d_head = j;
		p->d_tail = j;
		p->d_len++;
		pthread_mutex_unlock(&p->mu);
		/*
		 * Wake the loop only for the first completion of a batch: the
		 * callback takes the whole list, and a list found empty here was
		 * (or will be) emptied by it. p->ev lives until every worker is
		 * joined.
		 */
		if (was_empty)
			event_active(p->ev, 0, 0);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Stops the threads after they drain the queue, joins them, drops their contexts. */
static void
stop_workers(struct workq *p)
{
	unsigned i;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nworkers; i++) {
		if (!p->w[i].started)
			continue;
		pthread_join(p->w[i].tid, NULL);
		p->w[i].started = 0;
		if (p->w[i].have_ctx && p->o.thread_fini != NULL)
			p->o.thread_fini(p->o.arg, p->w[i].ctx);
		p->w[i].have_ctx = 0;
		p->w[i].ctx = NULL;
	}
}

static void
pool_destroy(struct workq *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
}

int
workq_new(struct event_base *base, const struct workq_opts *o, struct workq **out)
{
	struct workq *p = NULL;
	unsigned i, nworkers = o != NULL ? o->nthreads : 0;
	int ret = BS_ERR_INVALID;

	if (o == NULL || base == NULL || out == NULL || nworkers == 0 ||
	    nworkers > WORKQ_MAX_THREADS || o->queue_max == 0)
		return BS_ERR_INVALID;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return BS_ERR_NOMEM;
	if ((p->w = calloc(nworkers, sizeof(*p->w))) == NULL) {
		free(p);
		return BS_ERR_NOMEM;
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p->w);
		free(p);
		return BS_ERR_INTERNAL;
	}
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p->w);
		free(p);
		return BS_ERR_INTERNAL;
	}
	p->o = *o;
	p->base = base;
	p->nworkers = nworkers;
	p->queue_max = o->queue_max;
	if ((p->ev = event_new(base, -1, 0, on_completion, p)) == NULL) {
		ret = BS_ERR_INTERNAL;
		goto out;
	}

	for (i = 0; i < nworkers; i++) {
		p->w[i].p = p;
		if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0) {
			ret = BS_ERR_INTERNAL;
			goto out;
		}
		p->w[i].started = 1;
	}
	pthread_mutex_lock(&p->mu);
	while (p->nready + p->nfailed < nworkers)
		pthread_cond_wait(&p->cv, &p->mu);
	ret = p->nfailed > 0 ? (p->start_ret != 0 ? p->start_ret : BS_ERR_INTERNAL) : 0;
	pthread_mutex_unlock(&p->mu);
	if (ret != 0)
		goto out;
	*out = p;
	p = NULL;
out:
	if (p != NULL) {
		stop_workers(p);  /* nothing was queued: no done() to run */
		pool_destroy(p);
	}
	return ret;
}

int
workq_submit(struct workq *p, struct workq_job *job)
{
	int ret = 0;

	if (p == NULL || job == NULL || job->work == NULL || job->done == NULL)
		return BS_ERR_INVALID;
	job->next = NULL;
	atomic_store(&job->cancelled, 0);
	clock_gettime(CLOCK_MONOTONIC, &job->queued);
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		ret = BS_ERR_UNAVAILABLE;
	} else if (p->q_len >= p->queue_max) {
		ret = BS_ERR_QUEUE_FULL;
		p->refused_full++;
	} else {
		if (p->q_tail != NULL)
			p->q_tail->next = job;
		else
			p->q_head = job;
		p->q_tail = job;
		p->q_len++;
	}
	pthread_mutex_unlock(&p->mu);
	/*
	 * Signalled after the unlock: a worker woken under the lock would only
	 * block again on the mutex (a second futex wake-up per job).
	 */
	if (ret == 0)
		pthread_cond_signal(&p->cv);
	return ret;
}

void
workq_job_cancel(struct workq_job *job)
{
	if (job != NULL)
		atomic_store(&job->cancelled, 1);
}

int
workq_job_cancelled(const struct workq_job *job)
{
	return job != NULL && atomic_load(&job->cancelled) != 0;
}

unsigned
workq_inflight(const struct workq *p)
{
	/* The pool is never created const; the lock needs a mutable pointer. */
	struct workq *mp = (struct workq *)(uintptr_t)p;
	unsigned n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&mp->mu);
	n = mp->q_len + mp->running + mp->d_len;
	pthread_mutex_unlock(&mp->mu);
	return n;
}

void
workq_stats(const struct workq *p, struct workq_stats *st)
{
	struct workq *mp = (struct workq *)(uintptr_t)p;

	memset(st, 0, sizeof(*st));
	if (p == NULL)
		return;
	pthread_mutex_lock(&mp->mu);
	st->refused_full = mp->refused_full;
	pthread_mutex_unlock(&mp->mu);
	st->latency = p->latency;
}

void
workq_stop(struct workq *p)
{
	if (p == NULL || p->stopped)
		return;
	p->stopped = 1;
	stop_workers(p);
	/* No worker is left to signal: drop the event, then finish here. */
	if (p->ev != NULL) {
		event_free(p->ev);
		p->ev = NULL;
	}
	run_done_list(p);
}

void
workq_free(struct workq *p)
{
	if (p == NULL)
		return;
	workq_stop(p);
	pool_destroy(p);
}
