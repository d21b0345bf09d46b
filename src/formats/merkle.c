/*
 * merkle.c - RFC 6962 Merkle tree over SHA-256: an append-only in-memory
 * tree that stores every complete subtree hash, RFC 6962 inclusion and
 * consistency proof generation, and RFC 9162 proof verification.
 *
 * Layout: level[k] holds the hashes of the aligned complete subtrees of 2^k
 * leaves, i.e. level[k][j] = MTH(D[j*2^k : (j+1)*2^k]); level[k] has
 * size >> k entries. Every node of the RFC 6962 tree of any size m <= size
 * is either such a complete subtree or is made of a left complete subtree
 * and a right remainder, so MTH of any node range costs O(log n) hashes and
 * a proof O(log^2 n).
 *
 * Proofs are built top-down along the recursion of RFC 6962 2.1.1/2.1.2 and
 * then reversed, which gives exactly the bottom-up order of PATH/PROOF.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "formats/merkle.h"

#define MAX_LEVELS 64
#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01

struct level {
	uint8_t (*h)[MERKLE_HASH_LEN];  /* size >> k entries used */
	size_t cap;                     /* entries allocated */
};

struct merkle_tree {
	uint64_t size;
	struct level lv[MAX_LEVELS];
};

/* ---- hashing ----------------------------------------------------------- */

/*
 * SHA-256 fetched from the default provider once: EVP_sha256() makes each
 * EVP_DigestInit_ex() look the algorithm up again (a lock per hash, 5% of a
 * start-up that re-hashes the whole audit log). Kept for the process.
 */
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);

	sha256_md = md != NULL ? md : EVP_sha256();
}

static const EVP_MD *
sha256(void)
{
	(void)pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

/*
 * out = SHA-256(prefix || a[0..alen) || b[0..blen)) with ctx (reused by the
 * caller). Returns 0 or BS_ERR_CRYPTO.
 */
static int
hash3(EVP_MD_CTX *ctx, uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex(ctx, sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, &prefix, 1) != 1 ||
	    (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) ||
	    (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != MERKLE_HASH_LEN)
		return BS_ERR_CRYPTO;
	return 0;
}

static int
node(EVP_MD_CTX *ctx, const uint8_t l[MERKLE_HASH_LEN], const uint8_t r[MERKLE_HASH_LEN],
    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t tmp[MERKLE_HASH_LEN];
	int rc;

	rc = hash3(ctx, NODE_PREFIX, l, MERKLE_HASH_LEN, r, MERKLE_HASH_LEN, tmp);
	if (rc == 0)
		memcpy(out, tmp, MERKLE_HASH_LEN);
	return rc;
}

static int
empty_root(uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest("", 0, out, &n, sha256(), NULL) != 1 || n != MERKLE_HASH_LEN)
		return BS_ERR_CRYPTO;
	return 0;
}

void
merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || hash3(ctx, LEAF_PREFIX, data, len, NULL, 0, out) != 0)
		abort();        /* never hand back an unset hash */
	EVP_MD_CTX_free(ctx);
}

void
merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
    uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || node(ctx, left, right, out) != 0)
		abort();
	EVP_MD_CTX_free(ctx);
}

/* ---- small integer helpers -------------------------------------------- */

/* Largest power of two strictly less than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)       /* k*2 < n without overflow */
		k <<= 1;
	return k;
}

static unsigned int
bit_len(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n++;
		x >>= 1;
	}
	return n;
}

static unsigned int
pop_count(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n += (unsigned int)(x & 1);
		x >>= 1;
	}
	return n;
}

static unsigned int
trailing_zeros(uint64_t x)
{
	unsigned int n = 0;

	if (x == 0)
		return 64;
	while ((x & 1) == 0) {
		n++;
		x >>= 1;
	}
	return n;
}

/* ---- tree -------------------------------------------------------------- */

struct merkle_tree *
merkle_tree_new(void)
{
	return calloc(1, sizeof(struct merkle_tree));
}

void
merkle_tree_free(struct merkle_tree *t)
{
	size_t k;

	if (t == NULL)
		return;
	for (k = 0; k < MAX_LEVELS; k++)
		free(t->lv[k].h);
	free(t);
}

uint64_t
merkle_tree_size(const struct merkle_tree *t)
{
	return t == NULL ? 0 : t->size;
}

/* Makes room for `need` entries in lv. Returns 0 or BS_ERR_NOMEM. */
static int
level_reserve(struct level *lv, uint64_t need)
{
	size_t ncap;
	void *p;

	if (need <= lv->cap)
		return 0;
	if (need > SIZE_MAX / 2 / MERKLE_HASH_LEN)
		return BS_ERR_NOMEM;
	ncap = lv->cap < 16 ? 16 : lv->cap * 2;
	if (ncap < need)
		ncap = (size_t)need;
	if (ncap > SIZE_MAX / MERKLE_HASH_LEN)
		return BS_ERR_NOMEM;
	p = realloc(lv->h, ncap * MERKLE_HASH_LEN);
	if (p == NULL)
		return BS_ERR_NOMEM;
	lv->h = p;
	lv->cap = ncap;
	return 0;
}

int
merkle_tree_append(struct merkle_tree *t, const uint8_t leaf_hash[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t tmp[MAX_LEVELS][MERKLE_HASH_LEN];
	uint64_t n1;
	unsigned int k, top;
	int rc;

	if (t == NULL || leaf_hash == NULL || t->size == UINT64_MAX)
		return BS_ERR_INVALID;
	n1 = t->size + 1;
	top = trailing_zeros(n1);       /* levels 0..top each gain one entry */
	if (top >= MAX_LEVELS)
		return BS_ERR_INVALID;
	/* reserve and hash first, so a failure leaves the tree unchanged */
	for (k = 0; k <= top; k++) {
		rc = level_reserve(&t->lv[k], n1 >> k);
		if (rc != 0)
			goto out;
	}
	memcpy(tmp[0], leaf_hash, MERKLE_HASH_LEN);
	if (top > 0) {
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
	}
	for (k = 1; k <= top; k++) {
		/* new level-k node = (existing left sibling at k-1, new node at k-1) */
		uint64_t j = (n1 >> k) - 1;

		rc = node(ctx, t->lv[k - 1].h[2 * j], tmp[k - 1], tmp[k]);
		if (rc != 0)
			goto out;
	}
	for (k = 0; k <= top; k++)
		memcpy(t->lv[k].h[(n1 >> k) - 1], tmp[k], MERKLE_HASH_LEN);
	t->size = n1;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_tree_leaf(const struct merkle_tree *t, uint64_t index, uint8_t out[MERKLE_HASH_LEN])
{
	if (t == NULL || out == NULL || index >= t->size)
		return BS_ERR_INVALID;
	memcpy(out, t->lv[0].h[index], MERKLE_HASH_LEN);
	return 0;
}

/*
 * MTH(D[lo:hi]) for a node range of the RFC 6962 tree (lo is a multiple of
 * the power of two just >= hi - lo, so the range splits into aligned
 * complete subtrees of decreasing size), hi <= t->size, lo < hi.
 */
static int
range_hash(EVP_MD_CTX *ctx, const struct merkle_tree *t, uint64_t lo, uint64_t hi,
    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t acc[MERKLE_HASH_LEN];
	uint64_t n = hi - lo, end = hi;
	unsigned int k;
	int have = 0, rc;

	/* fold the complete pieces from the smallest (rightmost) to the largest */
	for (k = 0; k < MAX_LEVELS && n != 0; k++) {
		uint64_t piece = (uint64_t)1 << k;

		if ((n & piece) == 0)
			continue;
		end -= piece;
		if (!have) {
			memcpy(acc, t->lv[k].h[end >> k], MERKLE_HASH_LEN);
			have = 1;
		} else {
			rc = node(ctx, t->lv[k].h[end >> k], acc, acc);
			if (rc != 0)
				return rc;
		}
		n &= ~piece;
	}
	memcpy(out, acc, MERKLE_HASH_LEN);
	return 0;
}

int
merkle_tree_root(const struct merkle_tree *t, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t tmp[MERKLE_HASH_LEN];
	int rc;

	if (t == NULL || out == NULL || size > t->size)
		return BS_ERR_INVALID;
	if (size == 0) {
		rc = empty_root(tmp);
		goto done;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return BS_ERR_NOMEM;
	rc = range_hash(ctx, t, 0, size, tmp);
done:
	if (rc == 0)
		memcpy(out, tmp, MERKLE_HASH_LEN);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Copies the n hashes of stack (top-down order) into out, bottom-up. */
static void
emit_reversed(uint8_t stack[][MERKLE_HASH_LEN], size_t n, uint8_t out[][MERKLE_HASH_LEN], size_t *nout)
{
	size_t i;

	for (i = 0; i < n; i++)
		memcpy(out[i], stack[n - 1 - i], MERKLE_HASH_LEN);
	*nout = n;
}

int
merkle_tree_inclusion_proof(const struct merkle_tree *t, uint64_t index, uint64_t size,
    uint8_t out[][MERKLE_HASH_LEN], size_t *nout)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t stack[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	uint64_t lo = 0, hi = size, k;
	size_t n = 0;
	int rc;

	if (t == NULL || out == NULL || nout == NULL || index >= size || size > t->size)
		return BS_ERR_INVALID;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return BS_ERR_NOMEM;
	/* PATH(m, D[lo:hi]): descend towards the leaf, pushing the sibling */
	while (hi - lo > 1) {
		if (n == MERKLE_MAX_PROOF) {
			rc = BS_ERR_INTERNAL;
			goto out;
		}
		k = split_point(hi - lo);
		if (index - lo < k) {
			rc = range_hash(ctx, t, lo + k, hi, stack[n++]);
			hi = lo + k;
		} else {
			rc = range_hash(ctx, t, lo, lo + k, stack[n++]);
			lo += k;
		}
		if (rc != 0)
			goto out;
	}
	emit_reversed(stack, n, out, nout);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_tree_consistency_proof(const struct merkle_tree *t, uint64_t size1, uint64_t size2,
    uint8_t out[][MERKLE_HASH_LEN], size_t *nout)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t stack[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	uint64_t lo = 0, hi = size2, m = size1, k;
	size_t n = 0;
	int whole = 1, rc;

	if (t == NULL || out == NULL || nout == NULL || size1 == 0 || size1 > size2 ||
	    size2 > t->size)
		return BS_ERR_INVALID;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return BS_ERR_NOMEM;
	/* SUBPROOF(m, D[lo:hi], whole), m relative to lo */
	for (;;) {
		if (n == MERKLE_MAX_PROOF) {
			rc = BS_ERR_INTERNAL;
			goto out;
		}
		if (m == hi - lo) {
			if (!whole) {
				rc = range_hash(ctx, t, lo, hi, stack[n++]);
				if (rc != 0)
					goto out;
			}
			break;
		}
		k = split_point(hi - lo);
		if (m <= k) {
			rc = range_hash(ctx, t, lo + k, hi, stack[n++]);
			hi = lo + k;
		} else {
			rc = range_hash(ctx, t, lo, lo + k, stack[n++]);
			lo += k;
			m -= k;
			whole = 0;
		}
		if (rc != 0)
			goto out;
	}
	emit_reversed(stack, n, out, nout);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- verification (RFC 9162) ------------------------------------------- */

/* Equality of two hashes. */
static int
hash_equal(const uint8_t a[MERKLE_HASH_LEN], const uint8_t b[MERKLE_HASH_LEN])
{
	return CRYPTO_memcmp(a, b, MERKLE_HASH_LEN) == 0;
}

int
merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[MERKLE_HASH_LEN],
    const uint8_t proof[][MERKLE_HASH_LEN], size_t nproof, const uint8_t root[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t r[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	unsigned int inner;
	size_t i, want;
	int rc = BS_ERR_INVALID;

	if (leaf_hash == NULL || root == NULL || (proof == NULL && nproof > 0))
		return BS_ERR_INVALID;
	if (index >= size)
		return BS_ERR_INVALID;
	/* exact length, as transparency-dev: inner + border */
	inner = bit_len(index ^ (size - 1));
	want = (size_t)inner + pop_count(inner >= 64 ? 0 : index >> inner);
	if (nproof != want)
		return BS_ERR_INVALID;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return BS_ERR_NOMEM;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf_hash, MERKLE_HASH_LEN);
	for (i = 0; i < nproof; i++) {
		int e;

		if (sn == 0)
			goto out;
		if ((fn & 1) != 0 || fn == sn) {
			e = node(ctx, proof[i], r, r);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			e = node(ctx, r, proof[i], r);
		}
		if (e != 0) {
			rc = e;
			goto out;
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn == 0 && hash_equal(r, root))
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
    const uint8_t root2[MERKLE_HASH_LEN], const uint8_t proof[][MERKLE_HASH_LEN], size_t nproof)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	const uint8_t *c;
	uint64_t fn, sn;
	unsigned int inner, shift, border;
	size_t i, start, want;
	int rc = BS_ERR_INVALID;

	if (root1 == NULL || root2 == NULL || (proof == NULL && nproof > 0))
		return BS_ERR_INVALID;
	if (size1 == 0 || size1 > size2)
		return BS_ERR_INVALID;
	if (size1 == size2)
		return (nproof == 0 && hash_equal(root1, root2)) ? 0 : BS_ERR_INVALID;
	if (nproof == 0)
		return BS_ERR_INVALID;
	/* exact length, as transparency-dev */
	inner = bit_len((size1 - 1) ^ (size2 - 1));
	border = pop_count(inner >= 64 ? 0 : (size1 - 1) >> inner);
	shift = trailing_zeros(size1);
	start = (size1 == ((uint64_t)1 << shift)) ? 0 : 1;
	want = start + (size_t)(inner - shift) + border;
	if (nproof != want)
		return BS_ERR_INVALID;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return BS_ERR_NOMEM;
	/* a power-of-two size1 means the proof omits root1: prepend it */
	if (start == 0) {
		memcpy(fr, root1, MERKLE_HASH_LEN);
		i = 0;
	} else {
		memcpy(fr, proof[0], MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_LEN);
	fn = size1 - 1;
	sn = size2 - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < nproof; i++) {
		int e = 0;

		c = proof[i];
		if (sn == 0)
			goto out;
		if ((fn & 1) != 0 || fn == sn) {
			e = node(ctx, c, fr, fr);
			if (e == 0)
				e = node(ctx, c, sr, sr);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			e = node(ctx, sr, c, sr);
		}
		if (e != 0) {
			rc = e;
			goto out;
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn == 0 && hash_equal(fr, root1) && hash_equal(sr, root2))
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

enum merkle_history
merkle_judge_history(uint64_t signed_size, const uint8_t signed_root[MERKLE_HASH_LEN],
    uint64_t size, const uint8_t root[MERKLE_HASH_LEN], const uint8_t proof[][MERKLE_HASH_LEN],
    size_t nproof)
{
	if (size == 0)
		return MERKLE_HISTORY_UNPROVED;
	if (signed_size == 0)
		return nproof == 0 ? MERKLE_HISTORY_FIRST : MERKLE_HISTORY_UNPROVED;
	if (size < signed_size)
		return MERKLE_HISTORY_SMALLER;
	if (size == signed_size)
		return CRYPTO_memcmp(root, signed_root, MERKLE_HASH_LEN) == 0 ?
		    MERKLE_HISTORY_SAME : MERKLE_HISTORY_FORK;
	return merkle_verify_consistency(signed_size, size, signed_root, root, proof, nproof) == 0 ?
	    MERKLE_HISTORY_EXTENDS : MERKLE_HISTORY_UNPROVED;
}
