/*
 * catalog_int.h - what the catalog's files share (not a public header):
 * the catalog struct, the lookup that may change a key, and the loading of
 * the lifecycle states (catalog_state.c).
 */
#ifndef BS_CATALOG_INT_H
#define BS_CATALOG_INT_H

#include <stddef.h>

#include "keys/catalog.h"

struct store;
struct store_txn;

struct catalog {
	struct store *st;
	int own_st;                  /* opened by catalog_open, closed with the catalog */
	struct catalog_key *keys;    /* sorted by name (strcmp), owned */
	size_t nkeys;
	size_t cap;
};

/* The key called name, changeable (event loop thread); NULL if absent. */
struct catalog_key *catalog_find_mut(const struct catalog *c, const char *name);

/*
 * Applies every key's stored lifecycle row (catalog_state.c) to the keys
 * loaded through tx. 0, BS_ERR_IO (err says which row is malformed, where
 * names the store) or BS_ERR_NOMEM.
 */
int catalog_load_states(struct catalog *c, struct store_txn *tx, const char *where, char *err,
    size_t errlen);

#endif
