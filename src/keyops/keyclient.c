/*
 * keyclient.c - the in-process client of the key door (see keyclient.h):
 * encode, run the key side on an HSM pool thread, decode on the loop.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm/pool.h"
#include "keyd/keyd.h"
#include "keyops/keyclient.h"

struct keyclient {
	struct keyd *kd;
	struct hsm_pool *pool;
};

struct keyclient_op {
	struct hsm_job job;              /* first */
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

void
keyclient_free(struct keyclient *kc)
{
	free(kc);
}

static void
op_free(struct keyclient_op *op)
{
	OPENSSL_clear_free(op->req, op->req_len);
	OPENSSL_clear_free(op->ans, op->ans_len);
	free(op);
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
	if ((rc = hsm_pool_submit(kc->pool, &op->job)) != 0) {
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
	if (op != NULL)
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
