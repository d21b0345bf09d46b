/*
 * keyclient.c - the service side of the key door (see keyclient.h): encode,
 * have the request served (by the key side on an HSM pool thread, or by a
 * serve function one loop turn later), decode the answer on the loop.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "hsm/pool.h"
#include "keyd/keyd.h"
#include "keyops/keyclient.h"

struct keyclient_op;

struct keyclient {
	/* either the key side on the HSM pool ... */
	struct keyd *kd;
	struct hsm_pool *pool;
	/* ... or a serve function, run from ev on the loop */
	keyclient_serve_fn serve;
	void *serve_arg;
	struct event *ev;
	TAILQ_HEAD(, keyclient_op) pending;
};

struct keyclient_op {
	struct hsm_job job;              /* first */
	TAILQ_ENTRY(keyclient_op) link;  /* serve clients: waiting for ev */
	int cancelled;                   /* serve clients */
	struct keyclient *kc;
	keyclient_done_fn done;
	void *arg;
	enum keyop_type type;
	uint8_t *req, *ans;
	size_t req_len, ans_len;
	int rc;                          /* keyd_serve's own error */
};

int
keyclient_new(struct keyd *kd, struct hsm_pool *pool, struct keyclient **out)
{
	struct keyclient *kc = calloc(1, sizeof(*kc));

	if (kc == NULL)
		return BS_ERR_NOMEM;
	kc->kd = kd;
	kc->pool = pool;
	*out = kc;
	return 0;
}

static void
op_free(struct keyclient_op *op)
{
	OPENSSL_clear_free(op->req, op->req_len);
	OPENSSL_clear_free(op->ans, op->ans_len);
	free(op);
}

void
keyclient_free(struct keyclient *kc)
{
	struct keyclient_op *op;

	if (kc == NULL)
		return;
	if (kc->ev != NULL) {
		while ((op = TAILQ_FIRST(&kc->pending)) != NULL) {
			TAILQ_REMOVE(&kc->pending, op, link);
			op_free(op);
		}
		event_free(kc->ev);
	}
	free(kc);
}

static void
op_work(struct hsm_job *job, struct hsm_session *s)
{
	struct keyclient_op *op = (struct keyclient_op *)job;

	if (hsm_job_cancelled(job)) {
		op->rc = BS_ERR_CANCELLED;
		return;
	}
	op->rc = keyd_serve(op->kc->kd, s, op->req, op->req_len, &op->ans, &op->ans_len);
}

static void
op_done(struct hsm_job *job)
{
	struct keyclient_op *op = (struct keyclient_op *)job;
	struct keyop_answer a;

	memset(&a, 0, sizeof(a));
	if (op->rc != 0 || keyops_answer_decode(op->ans, op->ans_len, &a) != 0 ||
	    a.type != op->type) {
		keyop_answer_clear(&a);
		a.type = op->type;
		a.rc = op->rc != 0 ? op->rc : BS_ERR_INTERNAL;   /* a broken answer */
	}
	op->done(op->arg, &a);
	keyop_answer_clear(&a);
	op_free(op);
}

/* Loop: serve every pending operation, then answer each. */
static void
serve_pending(evutil_socket_t fd, short what, void *arg)
{
	struct keyclient *kc = arg;
	struct keyclient_op *op;

	(void)fd;
	(void)what;
	while ((op = TAILQ_FIRST(&kc->pending)) != NULL) {
		TAILQ_REMOVE(&kc->pending, op, link);
		op->rc = op->cancelled ? BS_ERR_CANCELLED :
		    kc->serve(kc->serve_arg, op->req, op->req_len, &op->ans, &op->ans_len);
		op_done(&op->job);   /* may submit again: the loop takes it next */
	}
}

int
keyclient_new_serve(struct event_base *base, keyclient_serve_fn serve, void *arg,
    struct keyclient **out)
{
	struct keyclient *kc = calloc(1, sizeof(*kc));

	if (kc == NULL)
		return BS_ERR_NOMEM;
	kc->serve = serve;
	kc->serve_arg = arg;
	TAILQ_INIT(&kc->pending);
	if ((kc->ev = event_new(base, -1, 0, serve_pending, kc)) == NULL) {
		free(kc);
		return BS_ERR_INTERNAL;
	}
	*out = kc;
	return 0;
}

int
keyclient_submit(struct keyclient *kc, const struct keyop_request *r, keyclient_done_fn done,
    void *arg, struct keyclient_op **opp)
{
	struct keyclient_op *op;
	int rc;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return BS_ERR_NOMEM;
	if ((rc = keyops_request_encode(r, &op->req, &op->req_len)) != 0) {
		free(op);
		return rc;
	}
	op->kc = kc;
	op->done = done;
	op->arg = arg;
	op->type = r->type;
	op->job.work = op_work;
	op->job.done = op_done;
	if (kc->serve != NULL) {
		TAILQ_INSERT_TAIL(&kc->pending, op, link);
		event_active(kc->ev, 0, 0);
	} else if ((rc = hsm_pool_submit(kc->pool, &op->job)) != 0) {
		op_free(op);
		return rc;
	}
	if (opp != NULL)
		*opp = op;
	return 0;
}

void
keyclient_cancel(struct keyclient_op *op)
{
	if (op == NULL)
		return;
	if (op->kc->serve != NULL)
		op->cancelled = 1;
	else
		hsm_job_cancel(&op->job);
}

int
keyclient_call(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a)
{
	uint8_t *req = NULL, *ans = NULL;
	size_t req_len = 0, ans_len = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	if ((rc = keyops_request_encode(r, &req, &req_len)) != 0)
		return rc;
	if ((rc = keyd_serve(kd, s, req, req_len, &ans, &ans_len)) == 0)
		rc = keyops_answer_decode(ans, ans_len, a);
	OPENSSL_clear_free(req, req_len);
	OPENSSL_clear_free(ans, ans_len);
	return rc;
}
