/*
 * keyclient.h - the service side of the key door: submits a key operation
 * (keyops.h) and hands its answer back on the event loop thread.
 *
 * In-process today: the request is encoded, run by the key side (keyd.h)
 * on an HSM pool thread with that thread's session, and the encoded answer
 * decoded here, so every operation crosses the door as bytes exactly as it
 * will over a socketpair to a separate key process (OpenSSH's
 * monitor_wrap.c: same prototype, local or remote).
 */
#ifndef BS_KEYCLIENT_H
#define BS_KEYCLIENT_H

#include "common/bs_error.h"
#include "keyops/keyops.h"

struct event_base;
struct keyclient;
struct keyclient_op;
struct keyd;
struct hsm_pool;
struct hsm_session;

/*
 * Runs on the event loop thread with the answer (a->rc BS_ERR_CANCELLED if
 * the operation was cancelled before it ran). a is valid during the call
 * only; take what you need (steal a->spki by setting it to NULL).
 */
typedef void (*keyclient_done_fn)(void *arg, struct keyop_answer *a);

/* kd and pool are borrowed and must outlive the client. 0 or BS_ERR_NOMEM. */
int keyclient_new(struct keyd *kd, struct hsm_pool *pool, struct keyclient **out) BS_WUR;

/*
 * The other side of the door as a function from request bytes to answer
 * bytes (*ans malloc'd by serve; its return value is keyd_serve's). Used by
 * the services' unit tests (a fake key side), and the shape a socketpair
 * peer takes.
 */
typedef int (*keyclient_serve_fn)(void *arg, const uint8_t *req, size_t len, uint8_t **ans,
    size_t *anslen);

/*
 * A client whose operations are served by serve(arg, ...) on the loop
 * thread of base, one event-loop turn after they were submitted (never
 * inside keyclient_submit, as with a real peer). 0, BS_ERR_NOMEM or
 * BS_ERR_INTERNAL.
 */
int keyclient_new_serve(struct event_base *base, keyclient_serve_fn serve, void *arg,
    struct keyclient **out) BS_WUR;

/* Frees kc; operations still pending on a serve client are dropped unanswered. */
void keyclient_free(struct keyclient *kc);

/*
 * Submits r (encoded at once: r and its inputs may go away after the
 * call). done(arg, answer) runs exactly once later, on the loop thread.
 * *op (may be NULL) identifies the operation for keyclient_cancel until done
 * runs. Returns 0, BS_ERR_INVALID (r cannot be encoded), BS_ERR_QUEUE_FULL,
 * BS_ERR_UNAVAILABLE (pool stopped), BS_ERR_NOMEM; on error done never runs.
 */
int keyclient_submit(struct keyclient *kc, const struct keyop_request *r, keyclient_done_fn done,
    void *arg, struct keyclient_op **op) BS_WUR;

/* The caller went away: the key side skips the operation if it has not started. */
void keyclient_cancel(struct keyclient_op *op);

/*
 * The same door, synchronously on the calling thread's session s (start-up,
 * before the pool runs). a is filled (the caller clears it). Returns 0 (the
 * operation's own result is a->rc) or the codec's error.
 */
int keyclient_call(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a) BS_WUR;

#endif
