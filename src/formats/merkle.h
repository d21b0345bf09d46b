/*
 * merkle.h - RFC 6962 / RFC 9162 Merkle tree over SHA-256 for boltseal's
 * tamper-evident audit log. Pure: no I/O, no locking.
 *
 *   leaf hash = SHA-256(0x00 || data)
 *   node hash = SHA-256(0x01 || left || right)
 *   MTH({})   = SHA-256("")
 *
 * struct merkle_tree keeps the hash of every complete, aligned subtree (all
 * levels), about 2 x 32 bytes per leaf, so a root or proof for any earlier
 * size costs O(log^2 n) hashes. Proofs follow RFC 6962 2.1.1 (PATH) and
 * 2.1.2 (PROOF) exactly; verification follows RFC 9162 2.1.3.2 and 2.1.4.2
 * and also checks the proof length as transparency-dev/merkle does.
 *
 * A tree is not thread-safe: the caller serialises all calls on one tree.
 * The free functions (hashes, verifiers) are thread-safe.
 *
 * OpenSSL 3 digests allocate a context, so hashing can fail on
 * out-of-memory. The int functions report that as BS_ERR_NOMEM or
 * BS_ERR_CRYPTO; the two void hash functions abort() instead of returning a
 * wrong hash.
 */
#ifndef BS_MERKLE_H
#define BS_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define MERKLE_HASH_LEN 32
#define MERKLE_MAX_PROOF 64

/* out = SHA-256(0x00 || data[0..len)). data may be NULL when len is 0. */
void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[MERKLE_HASH_LEN]);

/* out = SHA-256(0x01 || left || right). out may alias left or right. */
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
    uint8_t out[MERKLE_HASH_LEN]);

struct merkle_tree;

/* Returns an empty tree, or NULL when out of memory. Free with merkle_tree_free. */
struct merkle_tree *merkle_tree_new(void);

/* Frees t and everything it owns; NULL is a no-op. */
void merkle_tree_free(struct merkle_tree *t);

/*
 * Appends one leaf, given as its LEAF HASH (merkle_leaf_hash of the entry),
 * not the entry data. Returns 0, BS_ERR_NOMEM (tree unchanged),
 * BS_ERR_CRYPTO (OpenSSL failure, tree unchanged) or BS_ERR_INVALID (NULL
 * argument).
 */
int merkle_tree_append(struct merkle_tree *t, const uint8_t leaf_hash[MERKLE_HASH_LEN]) BS_WUR;

/* Number of leaves in t (0 for NULL). */
uint64_t merkle_tree_size(const struct merkle_tree *t);

/* Copies the leaf hash at index into out. Returns 0 or BS_ERR_INVALID (index >= size). */
int merkle_tree_leaf(const struct merkle_tree *t, uint64_t index, uint8_t out[MERKLE_HASH_LEN]) BS_WUR;

/*
 * Root hash of the first `size` leaves (size <= tree size; size 0 gives
 * SHA-256("")). Returns 0, BS_ERR_INVALID (size too large, NULL argument),
 * BS_ERR_NOMEM or BS_ERR_CRYPTO.
 */
int merkle_tree_root(const struct merkle_tree *t, uint64_t size, uint8_t out[MERKLE_HASH_LEN]) BS_WUR;

/*
 * RFC 6962 PATH(index, D[0:size]): the audit path of leaf `index` in the
 * tree of the first `size` leaves, bottom-up. Needs index < size <= tree
 * size. out has room for MERKLE_MAX_PROOF hashes; *nout gets the count.
 * Returns 0, BS_ERR_INVALID, BS_ERR_NOMEM or BS_ERR_CRYPTO; out and *nout
 * are written only on success.
 */
int merkle_tree_inclusion_proof(const struct merkle_tree *t, uint64_t index, uint64_t size,
    uint8_t out[][MERKLE_HASH_LEN], size_t *nout) BS_WUR;

/*
 * RFC 6962 PROOF(size1, D[0:size2]): consistency proof between the trees of
 * the first size1 and size2 leaves. Needs 0 < size1 <= size2 <= tree size;
 * size1 == size2 gives an empty proof (*nout = 0). out has room for
 * MERKLE_MAX_PROOF hashes. Returns 0, BS_ERR_INVALID, BS_ERR_NOMEM or
 * BS_ERR_CRYPTO; out and *nout are written only on success.
 */
int merkle_tree_consistency_proof(const struct merkle_tree *t, uint64_t size1, uint64_t size2,
    uint8_t out[][MERKLE_HASH_LEN], size_t *nout) BS_WUR;

/*
 * RFC 9162 2.1.3.2: checks that leaf_hash is leaf `index` of the tree of
 * `size` leaves whose root is `root`, using the nproof hashes of proof.
 * The proof must have exactly the length RFC 6962 PATH produces. Returns 0
 * when it verifies, BS_ERR_INVALID when it does not (or bad arguments),
 * BS_ERR_NOMEM / BS_ERR_CRYPTO on an OpenSSL failure.
 */
int merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[MERKLE_HASH_LEN],
    const uint8_t proof[][MERKLE_HASH_LEN], size_t nproof, const uint8_t root[MERKLE_HASH_LEN]) BS_WUR;

/*
 * RFC 9162 2.1.4.2: checks that the tree of size2 leaves with root2 extends
 * the tree of size1 leaves with root1. size1 == 0 is rejected; size1 ==
 * size2 needs an empty proof and equal roots; size1 > size2 is rejected.
 * The proof must have exactly the length RFC 6962 PROOF produces. Returns
 * 0 when it verifies, BS_ERR_INVALID when it does not, BS_ERR_NOMEM /
 * BS_ERR_CRYPTO on an OpenSSL failure.
 */
int merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
    const uint8_t root2[MERKLE_HASH_LEN], const uint8_t proof[][MERKLE_HASH_LEN], size_t nproof) BS_WUR;

/*
 * What a signer of a log's checkpoints may do with (size, root) after the
 * last checkpoint it signed for that log, (signed_size, signed_root)
 * (signed_size 0: none yet): the one rule by which boltseal never signs
 * two histories (CheckpointService, and the audit log's own checkpointer).
 */
enum merkle_history {
	MERKLE_HISTORY_FIRST = 0,       /* nothing signed yet, size >= 1, no proof: sign */
	MERKLE_HISTORY_EXTENDS,         /* the proof shows size extends signed_size: sign */
	MERKLE_HISTORY_SAME,            /* the very checkpoint signed last: give it again */
	MERKLE_HISTORY_SMALLER,         /* refuse: a log only grows */
	MERKLE_HISTORY_FORK,            /* refuse: the signed size with another root */
	MERKLE_HISTORY_UNPROVED,        /* refuse: the proof does not verify (or a first
	                                   checkpoint came with one, or size is 0) */
};
enum merkle_history merkle_judge_history(uint64_t signed_size,
    const uint8_t signed_root[MERKLE_HASH_LEN], uint64_t size, const uint8_t root[MERKLE_HASH_LEN],
    const uint8_t proof[][MERKLE_HASH_LEN], size_t nproof);

#endif
