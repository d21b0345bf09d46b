/*
 * pool.c - the HSM worker pool.
 *
 * nworkers threads each open their own logged-in session when they start
 * and take jobs from one bounded FIFO. A finished job goes on a completion
 * list and the pool's event (created with event_new(base, -1, 0, ...)) is
 * made active with event_active(), which is thread-safe because the base
 * was created after evthread_use_pthreads(); its callback then runs the
 * done() callbacks on the event loop thread.
 *
 * Locking: p->mu guards the queue, the completion list, the counters and
 * the stopping flag; p->cv wakes workers (new job or stop) and the thread
 * waiting in hsm_pool_new() for the workers' sessions. Callbacks are never
 * run with p->mu held, so done() may submit again.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hsm/pool.h"

#define POOL_MAX_WORKERS 256

struct worker {
	struct hsm_pool *p;
	pthread_t tid;
	int started;                 /* thread created (joinable) */
	struct hsm_session *s;       /* owned by the worker thread until joined */
};

struct hsm_pool {
	struct hsm *h;
	struct event_base *base;
	struct event *ev;            /* completion signal, loop thread */

	pthread_mutex_t mu;
	pthread_cond_t cv;           /* workers: job or stop; creator: start-up */
	struct hsm_job *q_head, *q_tail;
	unsigned q_len, queue_max;
	unsigned running;            /* jobs inside work() */
	struct hsm_job *d_head, *d_tail;
	unsigned d_len;              /* completed, done() not yet called */
	int stopping;
	unsigned nready, nfailed;    /* start-up handshake */
	int start_ret;

	int stopped;                 /* loop thread only */
	unsigned nworkers;
	struct worker *w;
};

static void
run_done_list(struct hsm_pool *p)
{
	struct hsm_job *j, *next;

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
	struct hsm_pool *p = w->p;
	struct hsm_job *j;
	int ret, was_empty;

	ret = hsm_session_open(p->h, &w->s);
	pthread_mutex_lock(&p->mu);
	if (ret != 0) {
		w->s = NULL;
		p->nfailed++;
		if (p->start_ret == 0)
			p->start_ret = ret;
	} else
		p->nready++;
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
		j->work(j, w->s);

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

/* Stops the workers after they drain the queue, joins them, closes sessions. */
static void
stop_workers(struct hsm_pool *p)
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
		hsm_session_close(p->w[i].s);
		p->w[i].s = NULL;
	}
}

static void
pool_destroy(struct hsm_pool *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
}

int
hsm_pool_new(struct hsm *h, struct event_base *base, unsigned nworkers, unsigned queue_max,
    struct hsm_pool **out)
{
	struct hsm_pool *p = NULL;
	unsigned i;
	int ret = BS_ERR_INVALID;

	if (h == NULL || base == NULL || out == NULL || nworkers == 0 ||
	    nworkers > POOL_MAX_WORKERS || queue_max == 0)
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
	p->h = h;
	p->base = base;
	p->nworkers = nworkers;
	p->queue_max = queue_max;
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
	ret = p->nfailed > 0 ? (p->start_ret != 0 ? p->start_ret : BS_ERR_HSM) : 0;
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
hsm_pool_submit(struct hsm_pool *p, struct hsm_job *job)
{
	int ret = 0;

	if (p == NULL || job == NULL || job->work == NULL || job->done == NULL)
		return BS_ERR_INVALID;
	job->next = NULL;
	atomic_store(&job->cancelled, 0);
	pthread_mutex_lock(&p->mu);
	if (p->stopping)
		ret = BS_ERR_UNAVAILABLE;
	else if (p->q_len >= p->queue_max)
		ret = BS_ERR_QUEUE_FULL;
	else {
		if (p->q_tail != NULL)
			p->q_tail->next = job;
		else
			p->q_head = job;
		p->q_tail = job;
		p->q_len++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return ret;
}

void
hsm_job_cancel(struct hsm_job *job)
{
	if (job != NULL)
		atomic_store(&job->cancelled, 1);
}

int
hsm_job_cancelled(const struct hsm_job *job)
{
	return job != NULL && atomic_load(&job->cancelled) != 0;
}

unsigned
hsm_pool_inflight(const struct hsm_pool *p)
{
	/* The pool is never created const; the lock needs a mutable pointer. */
	struct hsm_pool *mp = (struct hsm_pool *)(uintptr_t)p;
	unsigned n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&mp->mu);
	n = mp->q_len + mp->running + mp->d_len;
	pthread_mutex_unlock(&mp->mu);
	return n;
}

void
hsm_pool_stop(struct hsm_pool *p)
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
hsm_pool_free(struct hsm_pool *p)
{
	if (p == NULL)
		return;
	hsm_pool_stop(p);
	pool_destroy(p);
}
