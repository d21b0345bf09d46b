/*
 * test_workq.c - unit tests for src/exec/workq.c: jobs run on the queue's
 * threads with their thread context and complete on the event loop thread;
 * the queue is bounded (QUEUE_FULL at once, counted with each job's latency); a cancelled job skips its work
 * but is still done; stop drains what was queued; a failing thread_init
 * fails workq_new with its error. Loops are bounded in count and time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "exec/workq.h"

struct tjob {
	struct workq_job job;        /* first */
	pthread_t ran_on;
	void *ctx;
	int worked;
	int done;
	int skipped;
	pthread_mutex_t *gate;       /* held by the test to keep the job running */
	atomic_int started;
};

static pthread_t loop_thread;
static atomic_int inits, finis;
static int ctx_tokens[8];

static int
t_init(void *arg, void **ctx)
{
	int n = atomic_fetch_add(&inits, 1);

	if (arg != NULL)
		return *(int *)arg;
	*ctx = &ctx_tokens[n % 8];
	return 0;
}

static void
t_fini(void *arg, void *ctx)
{
	(void)arg;
	(void)ctx;
	atomic_fetch_add(&finis, 1);
}

static void
t_work(struct workq_job *j, void *ctx)
{
	struct tjob *t = (struct tjob *)j;

	atomic_store(&t->started, 1);
	if (t->gate != NULL) {
		pthread_mutex_lock(t->gate);
		pthread_mutex_unlock(t->gate);
	}
	if (workq_job_cancelled(j)) {
		t->skipped = 1;
		return;
	}
	t->ran_on = pthread_self();
	t->ctx = ctx;
	t->worked = 1;
}

static void
t_done(struct workq_job *j)
{
	struct tjob *t = (struct tjob *)j;

	assert_true(pthread_equal(pthread_self(), loop_thread));
	t->done = 1;
}

static void
tick(evutil_socket_t fd, short w, void *a)
{
	(void)fd;
	(void)w;
	(void)a;
}

static void
pump_until(struct event_base *b, const int *flag)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100000 && !*flag; i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			break;
		(void)event_base_loop(b, EVLOOP_ONCE);
	}
	assert_true(*flag);
}

static struct event_base *
new_base(struct event **tk)
{
	struct event_base *b = event_base_new();
	struct timeval tv = { 0, 2000 };

	assert_non_null(b);
	*tk = event_new(b, -1, EV_PERSIST, tick, NULL);
	assert_int_equal(event_add(*tk, &tv), 0);
	return b;
}

static void
test_runs_with_context(void **state)
{
	struct event *tk;
	struct event_base *b = new_base(&tk);
	struct workq_opts o = { 2, 8, t_init, t_fini, NULL, "t" };
	struct workq *q = NULL;
	struct tjob jobs[4];

	(void)state;
	atomic_store(&inits, 0);
	atomic_store(&finis, 0);
	assert_int_equal(workq_new(b, &o, &q), 0);
	assert_int_equal(atomic_load(&inits), 2);
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 4; i++) {
		jobs[i].job.work = t_work;
		jobs[i].job.done = t_done;
		assert_int_equal(workq_submit(q, &jobs[i].job), 0);
	}
	for (int i = 0; i < 4; i++) {
		pump_until(b, &jobs[i].done);
		assert_true(jobs[i].worked);
		assert_false(pthread_equal(jobs[i].ran_on, loop_thread));
		assert_true(jobs[i].ctx == &ctx_tokens[0] || jobs[i].ctx == &ctx_tokens[1]);
	}
	assert_int_equal(workq_inflight(q), 0);
	workq_free(q);
	assert_int_equal(atomic_load(&finis), 2);
	event_free(tk);
	event_base_free(b);
}

static void
test_bounded_cancel_and_stop(void **state)
{
	struct event *tk;
	struct event_base *b = new_base(&tk);
	struct workq_opts o = { 1, 2, NULL, NULL, NULL, NULL };
	struct workq *q = NULL;
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	struct tjob jobs[4], late;
	struct workq_stats st;

	(void)state;
	assert_int_equal(workq_new(b, &o, &q), 0);
	memset(jobs, 0, sizeof(jobs));
	pthread_mutex_lock(&gate);
	for (int i = 0; i < 4; i++) {
		jobs[i].job.work = t_work;
		jobs[i].job.done = t_done;
		jobs[i].gate = &gate;
	}
	assert_int_equal(workq_submit(q, &jobs[0].job), 0);
	/* wait (bounded) until the one thread holds job 0, blocked on the gate */
	for (int i = 0; i < 5000 && !atomic_load(&jobs[0].started); i++) {
		struct timespec ms = { 0, 1000000 };

		nanosleep(&ms, NULL);
	}
	assert_true(atomic_load(&jobs[0].started));
	assert_int_equal(workq_submit(q, &jobs[1].job), 0);
	assert_int_equal(workq_submit(q, &jobs[2].job), 0);
	assert_int_equal(workq_submit(q, &jobs[3].job), BS_ERR_QUEUE_FULL);   /* 2 waiting */
	assert_int_equal(workq_inflight(q), 3);
	workq_job_cancel(&jobs[2].job);
	pthread_mutex_unlock(&gate);
	workq_stop(q);               /* drains the queue, runs every done() here */
	assert_true(jobs[0].done && jobs[0].worked);
	assert_true(jobs[1].done && jobs[1].worked);
	assert_true(jobs[2].done && jobs[2].skipped && !jobs[2].worked);
	/* the figures the metrics read: one refusal, three jobs timed (cancelled ones too) */
	workq_stats(q, &st);
	assert_int_equal(st.refused_full, 1);
	assert_int_equal(st.latency.count, 3);
	assert_true(st.latency.sum_us >= 0);
	memset(&late, 0, sizeof(late));
	late.job.work = t_work;
	late.job.done = t_done;
	assert_int_equal(workq_submit(q, &late.job), BS_ERR_UNAVAILABLE);
	assert_int_equal(workq_submit(q, NULL), BS_ERR_INVALID);
	workq_free(q);
	event_free(tk);
	event_base_free(b);
}

static void
test_init_failure(void **state)
{
	struct event *tk;
	struct event_base *b = new_base(&tk);
	int fail = BS_ERR_HSM;
	struct workq_opts o = { 3, 4, t_init, t_fini, &fail, NULL };
	struct workq_opts zero = { 0, 4, NULL, NULL, NULL, NULL };
	struct workq *q = NULL;

	(void)state;
	assert_int_equal(workq_new(b, &o, &q), BS_ERR_HSM);
	assert_null(q);
	assert_int_equal(workq_new(b, &zero, &q), BS_ERR_INVALID);
	workq_free(NULL);
	event_free(tk);
	event_base_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_with_context),
		cmocka_unit_test(test_bounded_cancel_and_stop),
		cmocka_unit_test(test_init_failure),
	};

	if (evthread_use_pthreads() != 0)
		return 1;
	loop_thread = pthread_self();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
