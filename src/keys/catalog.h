/*
 * catalog.h - the key catalog: names, purposes, algorithms, states and
 * versions, persisted through the store (store/store.h, namespace "keys")
 * and mirrored in memory for the event loop.
 *
 * Threads: the in-memory side (catalog_find, catalog_list, catalog_mem_*)
 * belongs to the event loop thread. catalog_db_* write the store (durably:
 * one store transaction per call) and may be called from worker threads;
 * the store serialises them and they never touch memory state. A version
 * appears in memory only after it is durable on disk.
 */
#ifndef BS_CATALOG_H
#define BS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"
#include "formats/sigverify.h"
#include "hsm/hsm.h"
#include "types/types.h"

#define CATALOG_NAME_MAX 64
#define CATALOG_LABEL_PREFIX "boltseal/"

struct catalog_version {
	uint32_t version;                 /* 1, 2, ... */
	enum bs_key_state state;
	int64_t destroy_at;               /* pending: when due; destroyed: when done; else 0 */
	int64_t created;                  /* unix seconds */
	uint8_t hsm_id[HSM_KEY_ID_LEN];   /* CKA_ID of the token objects */
	uint8_t *spki;                    /* DER SubjectPublicKeyInfo, owned */
	size_t spki_len;
};

struct catalog_key {
	char name[CATALOG_NAME_MAX + 1];
	enum bs_purpose purpose;
	enum bs_alg alg;
	enum bs_key_state state;
	int64_t destroy_at;               /* as for a version */
	uint64_t state_gen;               /* version of the lifecycle row applied (0: none) */
	int64_t created;
	struct catalog_version *versions; /* ascending by version, owned */
	size_t nversions;
	/*
	 * Envelope keys: versions below this one no longer decrypt (0 or 1:
	 * every version does). Only ever raised (catalog_db_raise_min_decrypt).
	 */
	uint32_t min_decrypt;
};

struct catalog;
struct store;

/* 1 if name is 1..64 chars of [A-Za-z0-9._-] starting with a letter or digit. */
int catalog_name_valid(const char *name);

/*
 * Opens (creating if needed, mode 0600) the store at path with store_open(),
 * which the catalog owns, and loads every key into memory. Returns 0,
 * BS_ERR_IO (message in err), BS_ERR_NOMEM, BS_ERR_INVALID (NULL argument)
 * or BS_ERR_INTERNAL.
 */
int catalog_open(const char *path, struct catalog **out, char *err, size_t errlen) BS_WUR;
/*
 * The same over an open store, borrowed: it must outlive the catalog (for a
 * daemon whose other services share the store). Same return codes.
 */
int catalog_open_store(struct store *st, struct catalog **out, char *err,
    size_t errlen) BS_WUR;
/* Frees c, and closes its store if catalog_open opened it. NULL is a no-op. */
void catalog_close(struct catalog *c);

/* Borrowed pointer valid until the next catalog_mem_* call; NULL if absent. */
const struct catalog_key *catalog_find(const struct catalog *c, const char *name);

/* The newest enabled version of k, or NULL. */
const struct catalog_version *catalog_key_primary(const struct catalog_key *k);
/* Version v of k, or NULL. */
const struct catalog_version *catalog_key_version(const struct catalog_key *k, uint32_t v);

/* Number of keys. Keys are kept sorted by name; catalog_at(i) is the i-th. */
size_t catalog_count(const struct catalog *c);
const struct catalog_key *catalog_at(const struct catalog *c, size_t i);
/* Index of the first key whose name is > after ("" = 0). */
size_t catalog_index_after(const struct catalog *c, const char *after);

/*
 * Durably records version v of key k (worker threads allowed). If
 * v->version == 1 the key row is inserted too and an existing name gives
 * BS_ERR_EXISTS; otherwise the key must exist (BS_ERR_NOT_FOUND) and
 * v->version must be the next number (BS_ERR_PRECONDITION if another
 * rotation won the race). Also BS_ERR_INVALID (bad k or v), BS_ERR_IO, and
 * BS_ERR_INTERNAL if v->hsm_id is already recorded.
 */
int catalog_db_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v) BS_WUR;

/*
 * Mirrors a durable version into memory (event loop thread): adds the key if
 * new, appends the version. Copies everything it keeps.
 */
int catalog_mem_add_version(struct catalog *c, const struct catalog_key *k,
    const struct catalog_version *v) BS_WUR;

/*
 * Durably raises the minimum decryption version of key name to v (worker
 * threads allowed; a store counter, so it never goes down). v must be
 * 1..the key's newest version (BS_ERR_INVALID) and not below the current
 * minimum (BS_ERR_PRECONDITION; equal is a no-op). BS_ERR_NOT_FOUND without
 * such a key, BS_ERR_IO.
 */
int catalog_db_raise_min_decrypt(struct catalog *c, const char *name, uint32_t v) BS_WUR;
/* Mirrors it in memory (event loop thread); a lower v than the one kept is ignored. */
void catalog_mem_set_min_decrypt(struct catalog *c, const char *name, uint32_t v);

/* ---- lifecycle (catalog_state.c) ------------------------------------------- */
/*
 * A key and each of its versions have a state: enabled, disabled, pending
 * destruction (with the time it is due) or destroyed (final). A version may
 * be used only while it and its key are both enabled. The states live in
 * one versioned store row per key (namespace "keys", id "state/NAME"), so
 * that every change is one compare-and-set and a later snapshot can be
 * told from an earlier one. Version 0 below names the key itself:
 *   DISABLE / ENABLE          the key's (or version's) own state;
 *   SCHEDULE_DESTRUCTION      enabled or disabled -> pending, due at `when`
 *                             (the key's own state: its versions keep theirs,
 *                             and a pending key makes every one unusable);
 *   CANCEL_DESTRUCTION        pending -> disabled;
 *   DESTROYED                 a version pending and due at or before `when`
 *                             (now), or any version not destroyed of a key
 *                             pending and due -> destroyed at `when`; the
 *                             key, once every version is destroyed, the same.
 * Setting the state a target already has is a no-op; a destroyed target
 * never changes; a pending one must be cancelled before it is enabled or
 * disabled.
 */
enum catalog_change {
	CATALOG_DISABLE = 1,
	CATALOG_ENABLE,
	CATALOG_SCHEDULE_DESTRUCTION,
	CATALOG_CANCEL_DESTRUCTION,
	CATALOG_DESTROYED,
};

/* A key's lifecycle states as one row holds them (versions 1..nversions). */
struct catalog_states {
	uint64_t gen;                     /* the row's version (0: no row yet) */
	enum bs_key_state key_state;
	int64_t key_destroy_at;
	uint32_t nversions;
	enum bs_key_state *state;         /* [nversions], owned */
	int64_t *destroy_at;              /* [nversions], owned */
};

/* 1 if version v of k may be used: k and v are both enabled. */
int catalog_version_usable(const struct catalog_key *k, const struct catalog_version *v);

/*
 * NULL if change `what` applies to version (0: the key) of k at time when
 * (a no-op included), else why not, for the client ("version 2 is pending
 * destruction: cancel it first"). Static string.
 */
const char *catalog_change_refusal(const struct catalog_key *k, uint32_t version,
    enum catalog_change what, int64_t when);

/*
 * Durably makes the change (worker threads allowed) and sets *out to the
 * key's states afterwards (free with catalog_states_clear). Returns 0 (a
 * no-op included); BS_ERR_NOT_FOUND (no such key or version);
 * BS_ERR_PRECONDITION (the change does not apply, see
 * catalog_change_refusal); BS_ERR_INVALID; BS_ERR_IO; BS_ERR_NOMEM.
 */
int catalog_db_change_state(struct catalog *c, const char *name, uint32_t version,
    enum catalog_change what, int64_t when, struct catalog_states *out) BS_WUR;
void catalog_states_clear(struct catalog_states *s);

/*
 * Mirrors states s of key name in memory (event loop thread) if s is newer
 * than what the key has (s->gen above its state_gen); versions s does not
 * know (made since) keep theirs.
 */
void catalog_mem_set_states(struct catalog *c, const char *name, const struct catalog_states *s);

/*
 * Reconciles the catalog with the token through session s: every catalog
 * version must have exactly one private key object with its CKA_ID, and
 * every token private key labelled
 * CATALOG_LABEL_PREFIX* must be in the catalog. Returns 0, or
 * BS_ERR_MISMATCH with a report listing each discrepancy (one per line) in
 * *report (malloc'd, caller frees), or BS_ERR_HSM.
 */
int catalog_reconcile(struct catalog *c, struct hsm_session *s, char **report) BS_WUR;

/*
 * The same against a listing already made (hsm_list_key_objects with
 * CATALOG_LABEL_PREFIX; the secret key objects in it count as the private
 * ones do). Returns 0, BS_ERR_MISMATCH with *report, BS_ERR_NOMEM.
 */
struct hsm_key_object;
int catalog_reconcile_listed(struct catalog *c, const struct hsm_key_object *objs, size_t n,
    char **report) BS_WUR;

#endif
