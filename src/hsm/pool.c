/*
 * pool.c - the HSM worker pool: a work queue whose threads open their own
 * logged-in session when they start (thread_init) and close it when they
 * stop; hsm jobs are run through the queue with their thread's session.
 */
#include <stddef.h>
#include <stdlib.h>

#include "hsm/pool.h"

struct hsm_pool {
	struct hsm *h;
	struct workq *q;
};

static int
session_init(void *arg, void **ctx)
{
	struct hsm_session *s = NULL;
	int rc;

	if ((rc = hsm_session_open(arg, &s)) != 0)
		return rc;
	*ctx = s;
	return 0;
}

static void
session_fini(void *arg, void *ctx)
{
	(void)arg;
	hsm_session_close(ctx);
}

#define JOB_OF(w) ((struct hsm_job *)(void *)((char *)(w) - offsetof(struct hsm_job, wj)))

static void
job_work(struct workq_job *w, void *ctx)
{
	struct hsm_job *j = JOB_OF(w);

	j->work(j, ctx);
}

static void
job_done(struct workq_job *w)
{
	struct hsm_job *j = JOB_OF(w);

	j->done(j);
}

int
hsm_pool_new(struct hsm *h, struct event_base *base, unsigned nworkers, unsigned queue_max,
    struct hsm_pool **out)
{
	struct workq_opts o = { nworkers, queue_max, session_init, session_fini, h, "hsm" };
	struct hsm_pool *p;
	int rc;

	if (h == NULL || out == NULL)
		return BS_ERR_INVALID;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return BS_ERR_NOMEM;
	p->h = h;
	if ((rc = workq_new(base, &o, &p->q)) != 0) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int
hsm_pool_submit(struct hsm_pool *p, struct hsm_job *job)
{
	if (p == NULL || job == NULL || job->work == NULL || job->done == NULL)
		return BS_ERR_INVALID;
	job->wj.work = job_work;
	job->wj.done = job_done;
	return workq_submit(p->q, &job->wj);
}

void
hsm_job_cancel(struct hsm_job *job)
{
	if (job != NULL)
		workq_job_cancel(&job->wj);
}

int
hsm_job_cancelled(const struct hsm_job *job)
{
	return job != NULL && workq_job_cancelled(&job->wj);
}

void
hsm_pool_stats(const struct hsm_pool *p, struct workq_stats *st)
{
	workq_stats(p != NULL ? p->q : NULL, st);
}

unsigned
hsm_pool_inflight(const struct hsm_pool *p)
{
	return p != NULL ? workq_inflight(p->q) : 0;
}

void
hsm_pool_stop(struct hsm_pool *p)
{
	if (p != NULL)
		workq_stop(p->q);
}

void
hsm_pool_free(struct hsm_pool *p)
{
	if (p == NULL)
		return;
	workq_free(p->q);
	free(p);
}
