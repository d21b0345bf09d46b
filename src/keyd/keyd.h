/*
 * keyd.h - the key side of the key door: the only code that turns a key
 * name and version into a PKCS#11 object. It answers the typed operations
 * of keyops.h on a worker's session, keeps the handle cache (SoftHSM's
 * C_FindObjects reads every object in the token: the token is listed once,
 * before the first operation, and the cache then follows what the key side
 * creates and destroys), and never sees the network, the policy or the
 * catalog.
 *
 * Objects are found by their label, "boltseal/<name>/v<version>", exactly
 * one private key (or, for envelope keys, one secret key) per label. Today the key side runs in-process on the HSM
 * pool's threads (keyclient.h); keyd_serve() takes and returns bytes so that
 * it can later answer over a socketpair from its own unprivileged process.
 *
 * Threads: keyd_serve/keyd_execute may run on several threads at once, each
 * with its own session; the cache has its own mutex.
 */
#ifndef BS_KEYD_H
#define BS_KEYD_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "keyops/keyops.h"

#define KEYD_LABEL_PREFIX "boltseal/"

struct keyd;
struct hsm_session;
struct hsm_key_object;

/* Returns 0 or BS_ERR_NOMEM / BS_ERR_INTERNAL. */
int keyd_new(struct keyd **out) BS_WUR;
/* NULL is a no-op. */
void keyd_free(struct keyd *kd);

/*
 * Gives the key side its index of the token from a listing already made
 * (hsm_list_key_objects with KEYD_LABEL_PREFIX, on a session of the same
 * application that stays open until the workers' sessions are: the
 * handles must stay valid), instead of listing the token again before its
 * first operation: the daemon's start-up lists once for the catalog's
 * reconciliation and for this. A no-op once the key side has an index.
 * Returns 0, BS_ERR_INVALID, BS_ERR_NOMEM (no index: operations search).
 */
int keyd_seed_index(struct keyd *kd, const struct hsm_key_object *v, size_t n) BS_WUR;

/*
 * Runs r on session s and fills a (a->type = r->type; a->rc 0 or the
 * operation's error: BS_ERR_NOT_FOUND no such key version on the token,
 * BS_ERR_MISMATCH (SIGN) its object is not the one the request names by CKA_ID,
 * BS_ERR_EXISTS GENERATE of a version that exists, BS_ERR_INVALID input not
 * acceptable for the key, BS_ERR_HSM, BS_ERR_CRYPTO, BS_ERR_NOMEM). SIGN
 * answers one result per input, ENCRYPT and DECRYPT one per item, each with
 * its own rc (DECRYPT: BS_ERR_SIG_INVALID when the tag does not match).
 * GENERATE of a secret-key algorithm makes one secret key object and
 * answers no SPKI. The caller clears a.
 */
void keyd_execute(struct keyd *kd, struct hsm_session *s, const struct keyop_request *r,
    struct keyop_answer *a);

/*
 * Decodes one encoded request, executes it, and encodes the answer into
 * *ans (malloc'd; the caller wipes and frees). Returns 0, BS_ERR_INVALID or
 * BS_ERR_TRUNCATED (malformed request: no answer is produced; the peer is
 * broken), BS_ERR_NOMEM.
 */
int keyd_serve(struct keyd *kd, struct hsm_session *s, const uint8_t *req, size_t len,
    uint8_t **ans, size_t *anslen) BS_WUR;

/* Number of cached handles (tests, metrics). */
size_t keyd_cached(struct keyd *kd);

#endif
