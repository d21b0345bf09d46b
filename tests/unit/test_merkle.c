/*
 * test_merkle.c - unit tests for src/formats/merkle.c: the RFC 6962 hashing
 * vectors and the transparency-dev reference tree (roots for sizes 0..8,
 * every level, the listed inclusion and consistency proofs byte for byte);
 * an independent, naive recursive MTH/PATH/PROOF written here (one-shot
 * SHA256 over explicit prefix buffers) compared with the tree for every
 * size up to 70; exhaustive verification of every proof for sizes 1..70;
 * and the transparency-dev style corruptions (wrong leaf or root, index or
 * size changed, hashes appended/prepended/removed/inserted, bit flips), all
 * of which must be rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "formats/merkle.h"

#define H MERKLE_HASH_LEN
#define MAXN 70

typedef uint8_t hash_t[H];

/* ---- helpers ----------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex (even length) into out; returns the byte count. Fails the test on bad hex. */
static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex), i;

	assert_true(n % 2 == 0 && n / 2 <= cap);
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		assert_true(hi >= 0 && lo >= 0);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

static void
hash_hex(const char *hex, uint8_t out[H])
{
	assert_int_equal(unhex(hex, out, H), H);
}

/* ---- reference data (wire-formats.md 3.1 and 3.4) ---------------------- */

static const char *const ref_leaves_hex[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const ref_roots[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

#define L0 "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
#define L1 "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define L2 "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"
#define L3 "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"
#define L4 "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
#define L5 "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"
#define L6 "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
#define L7 "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"
#define N10 "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
#define N11 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
#define N12 "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
#define N13 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
#define N20 "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
#define N21 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
#define M47 "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"

static const char *const ref_leaf_hashes[8] = { L0, L1, L2, L3, L4, L5, L6, L7 };

struct proof_vec {
	uint64_t a, b;          /* inclusion: index, size; consistency: size1, size2 */
	size_t n;
	const char *p[4];
};

static const struct proof_vec incl_vecs[] = {
	{ 0, 8, 3, { L1, N11, N21 } },
	{ 5, 8, 3, { L4, N13, N20 } },
	{ 2, 3, 1, { N10 } },
	{ 1, 5, 3, { L0, N11, L4 } },
	{ 0, 1, 0, { NULL } },
};

static const struct proof_vec cons_vecs[] = {
	{ 1, 8, 3, { L1, N11, N21 } },
	{ 6, 8, 3, { N12, N13, N20 } },
	{ 2, 5, 2, { N11, L4 } },
	{ 6, 7, 3, { N12, L6, N20 } },
	{ 3, 7, 4, { L2, L3, N10, M47 } },
	{ 4, 7, 1, { M47 } },
};

static struct merkle_tree *
ref_tree(void)
{
	struct merkle_tree *t = merkle_tree_new();
	uint8_t data[16], lh[H];
	size_t i, n;

	assert_non_null(t);
	for (i = 0; i < 8; i++) {
		n = unhex(ref_leaves_hex[i], data, sizeof(data));
		merkle_leaf_hash(n ? data : NULL, n, lh);
		assert_int_equal(merkle_tree_append(t, lh), 0);
	}
	return t;
}

/* ---- independent naive implementation --------------------------------- */

static void
naive_leaf(const uint8_t *d, size_t n, uint8_t out[H])
{
	uint8_t buf[64];

	assert_true(n < sizeof(buf));
	buf[0] = 0x00;
	if (n > 0)
		memcpy(buf + 1, d, n);
	SHA256(buf, n + 1, out);
}

static void
naive_node(const uint8_t l[H], const uint8_t r[H], uint8_t out[H])
{
	uint8_t buf[1 + 2 * H];

	buf[0] = 0x01;
	memcpy(buf + 1, l, H);
	memcpy(buf + 1 + H, r, H);
	SHA256(buf, sizeof(buf), out);
}

static uint64_t
naive_k(uint64_t n)
{
	uint64_t k = 1;

	while (2 * k < n)
		k *= 2;
	return k;
}

/* MTH(D[lo:hi]) straight from RFC 6962 2.1 over leaf hashes lh. */
static void
naive_mth(hash_t *lh, uint64_t lo, uint64_t hi, uint8_t out[H])
{
	uint8_t l[H], r[H];
	uint64_t k;

	if (hi == lo) {
		SHA256((const uint8_t *)"", 0, out);
		return;
	}
	if (hi - lo == 1) {
		memcpy(out, lh[lo], H);
		return;
	}
	k = naive_k(hi - lo);
	naive_mth(lh, lo, lo + k, l);
	naive_mth(lh, lo + k, hi, r);
	naive_node(l, r, out);
}

/* PATH(m, D[lo:hi]) appended to out[*n], RFC 6962 2.1.1. */
static void
naive_path(hash_t *lh, uint64_t m, uint64_t lo, uint64_t hi, hash_t *out, size_t *n)
{
	uint64_t k;

	if (hi - lo <= 1)
		return;
	k = naive_k(hi - lo);
	if (m < k) {
		naive_path(lh, m, lo, lo + k, out, n);
		naive_mth(lh, lo + k, hi, out[(*n)++]);
	} else {
		naive_path(lh, m - k, lo + k, hi, out, n);
		naive_mth(lh, lo, lo + k, out[(*n)++]);
	}
}

/* SUBPROOF(m, D[lo:hi], b), RFC 6962 2.1.2. */
static void
naive_subproof(hash_t *lh, uint64_t m, uint64_t lo, uint64_t hi, int b, hash_t *out, size_t *n)
{
	uint64_t k;

	if (m == hi - lo) {
		if (!b)
			naive_mth(lh, lo, hi, out[(*n)++]);
		return;
	}
	k = naive_k(hi - lo);
	if (m <= k) {
		naive_subproof(lh, m, lo, lo + k, b, out, n);
		naive_mth(lh, lo + k, hi, out[(*n)++]);
	} else {
		naive_subproof(lh, m - k, lo + k, hi, 0, out, n);
		naive_mth(lh, lo, lo + k, out[(*n)++]);
	}
}

/* A tree of n synthetic leaves plus their leaf hashes. */
static struct merkle_tree *
synth_tree(uint64_t n, hash_t *lh)
{
	struct merkle_tree *t = merkle_tree_new();
	char data[32];
	uint64_t i;

	assert_non_null(t);
	for (i = 0; i < n; i++) {
		int len = snprintf(data, sizeof(data), "entry %llu", (unsigned long long)i);

		naive_leaf((const uint8_t *)data, (size_t)len, lh[i]);
		assert_int_equal(merkle_tree_append(t, lh[i]), 0);
	}
	return t;
}

/* ---- tests: vectors ----------------------------------------------------- */

static void
test_hash_vectors(void **state)
{
	uint8_t got[H], want[H];
	static const uint8_t l123[] = "L123456";
	uint8_t a[H], b[H], raw[9];

	(void)state;
	merkle_leaf_hash(NULL, 0, got);
	hash_hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want);
	assert_memory_equal(got, want, H);
	merkle_leaf_hash(l123, 7, got);
	hash_hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", want);
	assert_memory_equal(got, want, H);

	/*
	 * The node vector hashes the raw bytes 01 "N123" "N456" (short
	 * children), so it checks the construction, not merkle_node_hash's
	 * 32-byte interface; check both the construction and the interface.
	 */
	unhex("014E3132334E343536", raw, sizeof(raw));
	SHA256(raw, sizeof(raw), got);
	hash_hex("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb", want);
	assert_memory_equal(got, want, H);
	hash_hex(L0, a);
	hash_hex(L1, b);
	merkle_node_hash(a, b, got);
	hash_hex(N10, want);
	assert_memory_equal(got, want, H);
	/* out may alias an input */
	merkle_node_hash(a, b, a);
	assert_memory_equal(a, want, H);
}

static void
test_ref_tree_roots_and_leaves(void **state)
{
	struct merkle_tree *t = ref_tree();
	uint8_t got[H], want[H];
	uint64_t s;
	size_t i;

	(void)state;
	assert_int_equal(merkle_tree_size(t), 8);
	for (s = 0; s <= 8; s++) {
		assert_int_equal(merkle_tree_root(t, s, got), 0);
		hash_hex(ref_roots[s], want);
		assert_memory_equal(got, want, H);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(merkle_tree_leaf(t, i, got), 0);
		hash_hex(ref_leaf_hashes[i], want);
		assert_memory_equal(got, want, H);
	}
	/* out of range: error, output untouched */
	memset(got, 0xaa, H);
	assert_int_equal(merkle_tree_leaf(t, 8, got), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_root(t, 9, got), BS_ERR_INVALID);
	for (i = 0; i < H; i++)
		assert_int_equal(got[i], 0xaa);

	/* the empty tree */
	{
		struct merkle_tree *e = merkle_tree_new();

		assert_non_null(e);
		assert_int_equal(merkle_tree_size(e), 0);
		assert_int_equal(merkle_tree_root(e, 0, got), 0);
		hash_hex(ref_roots[0], want);
		assert_memory_equal(got, want, H);
		assert_int_equal(merkle_tree_root(e, 1, got), BS_ERR_INVALID);
		assert_int_equal(merkle_tree_leaf(e, 0, got), BS_ERR_INVALID);
		merkle_tree_free(e);
	}
	merkle_tree_free(NULL);
	assert_int_equal(merkle_tree_size(NULL), 0);
	merkle_tree_free(t);
}

static void
test_ref_levels(void **state)
{
	/* level-1 and level-2 nodes are the roots of aligned subtrees */
	struct merkle_tree *t = ref_tree();
	hash_t lh[8];
	uint8_t got[H], want[H];
	static const char *const l1[4] = { N10, N11, N12, N13 };
	static const char *const l2[2] = { N20, N21 };
	size_t i;

	(void)state;
	for (i = 0; i < 8; i++)
		hash_hex(ref_leaf_hashes[i], lh[i]);
	for (i = 0; i < 4; i++) {
		naive_mth(lh, 2 * i, 2 * i + 2, got);
		hash_hex(l1[i], want);
		assert_memory_equal(got, want, H);
	}
	for (i = 0; i < 2; i++) {
		naive_mth(lh, 4 * i, 4 * i + 4, got);
		hash_hex(l2[i], want);
		assert_memory_equal(got, want, H);
	}
	naive_mth(lh, 4, 7, got);
	hash_hex(M47, want);
	assert_memory_equal(got, want, H);
	merkle_tree_free(t);
}

static void
test_ref_inclusion_proofs(void **state)
{
	struct merkle_tree *t = ref_tree();
	uint8_t proof[MERKLE_MAX_PROOF][H], want[H], root[H], leaf[H];
	size_t i, j, n;

	(void)state;
	for (i = 0; i < sizeof(incl_vecs) / sizeof(incl_vecs[0]); i++) {
		const struct proof_vec *v = &incl_vecs[i];

		n = 99;
		assert_int_equal(merkle_tree_inclusion_proof(t, v->a, v->b, proof, &n), 0);
		assert_int_equal(n, v->n);
		for (j = 0; j < n; j++) {
			hash_hex(v->p[j], want);
			assert_memory_equal(proof[j], want, H);
		}
		hash_hex(ref_roots[v->b], root);
		hash_hex(ref_leaf_hashes[v->a], leaf);
		assert_int_equal(merkle_verify_inclusion(v->a, v->b, leaf,
		    (const uint8_t(*)[H])proof, n, root), 0);
	}
	/* idx 0, size 1: the root is the leaf hash */
	hash_hex(L0, leaf);
	assert_int_equal(merkle_verify_inclusion(0, 1, leaf, NULL, 0, leaf), 0);

	/* argument errors; outputs untouched */
	n = 77;
	assert_int_equal(merkle_tree_inclusion_proof(t, 8, 8, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_inclusion_proof(t, 0, 9, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_inclusion_proof(t, 0, 0, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_inclusion_proof(t, 3, 2, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_inclusion_proof(NULL, 0, 1, proof, &n), BS_ERR_INVALID);
	assert_int_equal(n, 77);
	merkle_tree_free(t);
}

static void
test_ref_consistency_proofs(void **state)
{
	struct merkle_tree *t = ref_tree();
	uint8_t proof[MERKLE_MAX_PROOF][H], want[H], r1[H], r2[H];
	size_t i, j, n;
	uint64_t s;

	(void)state;
	for (i = 0; i < sizeof(cons_vecs) / sizeof(cons_vecs[0]); i++) {
		const struct proof_vec *v = &cons_vecs[i];

		n = 99;
		assert_int_equal(merkle_tree_consistency_proof(t, v->a, v->b, proof, &n), 0);
		assert_int_equal(n, v->n);
		for (j = 0; j < n; j++) {
			hash_hex(v->p[j], want);
			assert_memory_equal(proof[j], want, H);
		}
		hash_hex(ref_roots[v->a], r1);
		hash_hex(ref_roots[v->b], r2);
		assert_int_equal(merkle_verify_consistency(v->a, v->b, r1, r2,
		    (const uint8_t(*)[H])proof, n), 0);
	}
	/* size1 == size2: empty proof, equal roots */
	for (s = 1; s <= 8; s++) {
		n = 99;
		assert_int_equal(merkle_tree_consistency_proof(t, s, s, proof, &n), 0);
		assert_int_equal(n, 0);
		hash_hex(ref_roots[s], r1);
		assert_int_equal(merkle_verify_consistency(s, s, r1, r1, NULL, 0), 0);
		hash_hex(ref_roots[s - 1], r2);
		assert_int_equal(merkle_verify_consistency(s, s, r1, r2, NULL, 0), BS_ERR_INVALID);
	}
	/* argument errors */
	n = 77;
	assert_int_equal(merkle_tree_consistency_proof(t, 0, 8, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_consistency_proof(t, 5, 4, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_consistency_proof(t, 1, 9, proof, &n), BS_ERR_INVALID);
	assert_int_equal(merkle_tree_consistency_proof(NULL, 1, 1, proof, &n), BS_ERR_INVALID);
	assert_int_equal(n, 77);
	/* size1 == 0 is rejected even with an empty proof */
	hash_hex(ref_roots[0], r1);
	hash_hex(ref_roots[8], r2);
	assert_int_equal(merkle_verify_consistency(0, 8, r1, r2, NULL, 0), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_consistency(0, 0, r1, r1, NULL, 0), BS_ERR_INVALID);
	merkle_tree_free(t);
}

/* ---- tests: against the naive implementation -------------------------- */

static void
test_naive_equivalence(void **state)
{
	static hash_t lh[MAXN];
	static hash_t np[MERKLE_MAX_PROOF], tp[MERKLE_MAX_PROOF];
	struct merkle_tree *t = synth_tree(MAXN, lh);
	uint8_t a[H], b[H];
	uint64_t s, i;
	size_t nn, tn;

	(void)state;
	for (s = 0; s <= MAXN; s++) {
		naive_mth(lh, 0, s, a);
		assert_int_equal(merkle_tree_root(t, s, b), 0);
		assert_memory_equal(a, b, H);
		for (i = 0; i < s; i++) {
			nn = 0;
			naive_path(lh, i, 0, s, np, &nn);
			assert_int_equal(merkle_tree_inclusion_proof(t, i, s, tp, &tn), 0);
			assert_int_equal(tn, nn);
			assert_memory_equal(tp, np, nn * H);
		}
		for (i = 1; i <= s; i++) {
			nn = 0;
			naive_subproof(lh, i, 0, s, 1, np, &nn);
			assert_int_equal(merkle_tree_consistency_proof(t, i, s, tp, &tn), 0);
			assert_int_equal(tn, nn);
			assert_memory_equal(tp, np, nn * H);
		}
	}
	merkle_tree_free(t);
}

/* ---- tests: exhaustive verification and corruption ---------------------- */

static int
vi(uint64_t idx, uint64_t size, const uint8_t *leaf, hash_t *p, size_t n, const uint8_t *root)
{
	return merkle_verify_inclusion(idx, size, leaf, (const uint8_t(*)[H])p, n, root);
}

static int
vc(uint64_t s1, uint64_t s2, const uint8_t *r1, const uint8_t *r2, hash_t *p, size_t n)
{
	return merkle_verify_consistency(s1, s2, r1, r2, (const uint8_t(*)[H])p, n);
}

/* Every corruption of a valid inclusion proof must fail. */
static void
inclusion_probes(uint64_t idx, uint64_t size, const uint8_t leaf[H], hash_t *proof, size_t n,
    const uint8_t root[H], int all_bits)
{
	static hash_t w[MERKLE_MAX_PROOF + 2];
	uint8_t bad[H], empty[H];
	size_t i, bit;

	SHA256((const uint8_t *)"", 0, empty);
	assert_int_equal(vi(idx, size, leaf, proof, n, root), 0);

	/* wrong index, size */
	assert_int_equal(vi(idx - 1, size, leaf, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx + 1, size, leaf, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx ^ 2, size, leaf, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx, size * 2, leaf, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx, size / 2, leaf, proof, n, root), BS_ERR_INVALID);
	/* wrong leaf or root */
	memcpy(bad, leaf, H);
	bad[H - 1] ^= 1;
	assert_int_equal(vi(idx, size, bad, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx, size, empty, proof, n, root), BS_ERR_INVALID);
	assert_int_equal(vi(idx, size, leaf, proof, n, empty), BS_ERR_INVALID);
	memcpy(bad, root, H);
	bad[0] ^= 0x80;
	assert_int_equal(vi(idx, size, leaf, proof, n, bad), BS_ERR_INVALID);
	/* appended: garbage (zeros), the root, a copy of the last hash */
	memcpy(w, proof, n * H);
	memset(w[n], 0, H);
	assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	memcpy(w[n], root, H);
	assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	/* prepended: garbage, the root, the leaf */
	memcpy(w[1], proof, n * H);
	memset(w[0], 0, H);
	assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	memcpy(w[0], root, H);
	assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	memcpy(w[0], leaf, H);
	assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	if (n > 0) {
		/* removed last, removed first */
		assert_int_equal(vi(idx, size, leaf, proof, n - 1, root), BS_ERR_INVALID);
		assert_int_equal(vi(idx, size, leaf, proof + 1, n - 1, root), BS_ERR_INVALID);
	}
	if (n > 1) {
		/* a component inserted after the first */
		memcpy(w[0], proof[0], H);
		memset(w[1], 0x5a, H);
		memcpy(w[2], proof[1], (n - 1) * H);
		assert_int_equal(vi(idx, size, leaf, w, n + 1, root), BS_ERR_INVALID);
	}
	/* bit flips in every proof hash */
	for (i = 0; i < n; i++) {
		memcpy(w, proof, n * H);
		if (all_bits) {
			for (bit = 0; bit < 8 * H; bit++) {
				w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
				assert_int_equal(vi(idx, size, leaf, w, n, root), BS_ERR_INVALID);
				w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		} else {
			w[i][0] ^= 8;
			assert_int_equal(vi(idx, size, leaf, w, n, root), BS_ERR_INVALID);
			w[i][0] ^= 8;
			bit = (size_t)(idx * 31 + size + i) % (8 * H);
			w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(vi(idx, size, leaf, w, n, root), BS_ERR_INVALID);
		}
	}
}

/* Every corruption of a valid consistency proof (size1 < size2) must fail. */
static void
consistency_probes(uint64_t s1, uint64_t s2, const uint8_t r1[H], const uint8_t r2[H], hash_t *proof,
    size_t n, int all_bits)
{
	static hash_t w[MERKLE_MAX_PROOF + 2];
	uint8_t bad[H];
	size_t i, bit;

	assert_int_equal(vc(s1, s2, r1, r2, proof, n), 0);
	assert_int_equal(vc(s1 - 1, s2, r1, r2, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1 + 1, s2, r1, r2, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1 ^ 2, s2, r1, r2, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1, s2 * 2, r1, r2, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1, s2 / 2, r1, r2, proof, n), BS_ERR_INVALID);
	/*
	 * Not probed: size2 +- 1. The verifier trusts the claimed size (the
	 * signed checkpoint authenticates it), and e.g. the 2->3 proof [D2]
	 * has the same shape as a 2->4 proof [MTH(D[2:4])], so such a probe
	 * can verify; transparency-dev does not probe it either.
	 */
	assert_int_equal(vc(0, s2, r1, r2, proof, n), BS_ERR_INVALID);
	memcpy(bad, r1, H);
	bad[5] ^= 2;
	assert_int_equal(vc(s1, s2, bad, r2, proof, n), BS_ERR_INVALID);
	memcpy(bad, r2, H);
	bad[31] ^= 0x40;
	assert_int_equal(vc(s1, s2, r1, bad, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1, s2, r2, r1, proof, n), BS_ERR_INVALID);
	assert_int_equal(vc(s1, s2, r1, r2, proof, 0), BS_ERR_INVALID);
	/* appended */
	memcpy(w, proof, n * H);
	memset(w[n], 0, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	memcpy(w[n], r1, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	memcpy(w[n], r2, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	/* prepended */
	memcpy(w[1], proof, n * H);
	memset(w[0], 0, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	memcpy(w[0], r1, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	memcpy(w[0], r2, H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	memcpy(w[0], proof[0], H);
	assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	/* removed last / first */
	assert_int_equal(vc(s1, s2, r1, r2, proof, n - 1), BS_ERR_INVALID);
	assert_int_equal(vc(s1, s2, r1, r2, proof + 1, n - 1), BS_ERR_INVALID);
	if (n > 1) {
		memcpy(w[0], proof[0], H);
		memset(w[1], 0x5a, H);
		memcpy(w[2], proof[1], (n - 1) * H);
		assert_int_equal(vc(s1, s2, r1, r2, w, n + 1), BS_ERR_INVALID);
	}
	for (i = 0; i < n; i++) {
		memcpy(w, proof, n * H);
		if (all_bits) {
			for (bit = 0; bit < 8 * H; bit++) {
				w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
				assert_int_equal(vc(s1, s2, r1, r2, w, n), BS_ERR_INVALID);
				w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		} else {
			w[i][0] ^= 8;
			assert_int_equal(vc(s1, s2, r1, r2, w, n), BS_ERR_INVALID);
			w[i][0] ^= 8;
			bit = (size_t)(s1 * 29 + s2 + i) % (8 * H);
			w[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(vc(s1, s2, r1, r2, w, n), BS_ERR_INVALID);
		}
	}
}

static void
test_exhaustive_inclusion(void **state)
{
	static hash_t lh[MAXN], proof[MERKLE_MAX_PROOF];
	static uint8_t roots[MAXN + 1][H];
	struct merkle_tree *t = synth_tree(MAXN, lh);
	uint64_t s, i;
	size_t n;

	(void)state;
	for (s = 0; s <= MAXN; s++)
		assert_int_equal(merkle_tree_root(t, s, roots[s]), 0);
	for (s = 1; s <= MAXN; s++) {
		for (i = 0; i < s; i++) {
			assert_int_equal(merkle_tree_inclusion_proof(t, i, s, proof, &n), 0);
			assert_true(n <= MERKLE_MAX_PROOF);
			inclusion_probes(i, s, lh[i], proof, n, roots[s], s <= 20);
			/* the proof does not verify against any other root */
			if (s > 1)
				assert_int_equal(vi(i, s, lh[i], proof, n, roots[s - 1]),
				    BS_ERR_INVALID);
		}
	}
	merkle_tree_free(t);
}

static void
test_exhaustive_consistency(void **state)
{
	static hash_t lh[MAXN], proof[MERKLE_MAX_PROOF];
	static uint8_t roots[MAXN + 1][H];
	struct merkle_tree *t = synth_tree(MAXN, lh);
	uint64_t s1, s2;
	size_t n;

	(void)state;
	for (s2 = 0; s2 <= MAXN; s2++)
		assert_int_equal(merkle_tree_root(t, s2, roots[s2]), 0);
	for (s2 = 1; s2 <= MAXN; s2++) {
		for (s1 = 1; s1 <= s2; s1++) {
			assert_int_equal(merkle_tree_consistency_proof(t, s1, s2, proof, &n), 0);
			assert_true(n <= MERKLE_MAX_PROOF);
			if (s1 == s2) {
				assert_int_equal(n, 0);
				assert_int_equal(vc(s1, s2, roots[s1], roots[s2], proof, 0), 0);
				assert_int_equal(vc(s1, s2, roots[s1], roots[s2 - 1], proof, 0),
				    BS_ERR_INVALID);
				continue;
			}
			assert_true(n > 0);
			consistency_probes(s1, s2, roots[s1], roots[s2], proof, n, s2 <= 20);
		}
	}
	merkle_tree_free(t);
}

static void
test_larger_tree(void **state)
{
	/* a few thousand leaves: proofs from the tree still match the naive MTH */
	enum { N = 3000 };
	static hash_t lh[N], proof[MERKLE_MAX_PROOF];
	struct merkle_tree *t = synth_tree(N, lh);
	uint8_t r[H], r2[H];
	uint64_t s, i;
	size_t n;

	(void)state;
	for (s = 1; s <= N; s += 271) {
		assert_int_equal(merkle_tree_root(t, s, r), 0);
		naive_mth(lh, 0, s, r2);
		assert_memory_equal(r, r2, H);
		for (i = 0; i < s; i += 97) {
			assert_int_equal(merkle_tree_inclusion_proof(t, i, s, proof, &n), 0);
			assert_int_equal(vi(i, s, lh[i], proof, n, r), 0);
		}
		assert_int_equal(merkle_tree_root(t, N, r2), 0);
		assert_int_equal(merkle_tree_consistency_proof(t, s, N, proof, &n), 0);
		assert_int_equal(vc(s, N, r, r2, proof, n), 0);
	}
	merkle_tree_free(t);
}

static void
test_bad_arguments(void **state)
{
	uint8_t h[H] = { 0 };
	hash_t p[1];

	(void)state;
	memset(p, 0, sizeof(p));
	assert_int_equal(merkle_tree_append(NULL, h), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_inclusion(0, 0, h, NULL, 0, h), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_inclusion(0, 1, NULL, NULL, 0, h), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_inclusion(0, 1, h, NULL, 0, NULL), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_inclusion(0, 2, h, NULL, 1, h), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_inclusion(5, 3, h, (const uint8_t(*)[H])p, 1, h),
	    BS_ERR_INVALID);
	assert_int_equal(merkle_verify_consistency(2, 1, h, h, (const uint8_t(*)[H])p, 1),
	    BS_ERR_INVALID);
	assert_int_equal(merkle_verify_consistency(1, 2, NULL, h, (const uint8_t(*)[H])p, 1),
	    BS_ERR_INVALID);
	/* huge sizes do not overflow the length computation */
	assert_int_equal(merkle_verify_inclusion(UINT64_MAX - 1, UINT64_MAX, h,
	    (const uint8_t(*)[H])p, 1, h), BS_ERR_INVALID);
	assert_int_equal(merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX, h, h,
	    (const uint8_t(*)[H])p, 1), BS_ERR_INVALID);
}

/* The signer's rule (merkle_judge_history) on the reference tree's checkpoints. */
static void
test_judge_history(void **state)
{
	struct merkle_tree *t = ref_tree();
	uint8_t proof[MERKLE_MAX_PROOF][H], r3[H], r5[H], r8[H], other[H];
	const uint8_t (*p)[H] = (const uint8_t (*)[H])proof;
	size_t n = 0;

	(void)state;
	assert_int_equal(merkle_tree_root(t, 3, r3), 0);
	assert_int_equal(merkle_tree_root(t, 5, r5), 0);
	assert_int_equal(merkle_tree_root(t, 8, r8), 0);
	memcpy(other, r5, H);
	other[0] ^= 1;
	/* nothing signed yet: any size >= 1 without a proof */
	assert_int_equal(merkle_judge_history(0, r3, 3, r3, NULL, 0), MERKLE_HISTORY_FIRST);
	assert_int_equal(merkle_judge_history(0, r3, 3, r3, p, 1), MERKLE_HISTORY_UNPROVED);
	assert_int_equal(merkle_judge_history(0, r3, 0, r3, NULL, 0), MERKLE_HISTORY_UNPROVED);
	/* 3 signed: 5 with its proof extends; the same checkpoint; smaller; a fork */
	assert_int_equal(merkle_tree_consistency_proof(t, 3, 5, proof, &n), 0);
	assert_int_equal(merkle_judge_history(3, r3, 5, r5, p, n), MERKLE_HISTORY_EXTENDS);
	assert_int_equal(merkle_judge_history(3, r3, 5, other, p, n), MERKLE_HISTORY_UNPROVED);
	assert_int_equal(merkle_judge_history(3, r3, 5, r5, p, n - 1), MERKLE_HISTORY_UNPROVED);
	assert_int_equal(merkle_judge_history(3, r3, 8, r8, p, n), MERKLE_HISTORY_UNPROVED);
	assert_int_equal(merkle_judge_history(5, r5, 5, r5, NULL, 0), MERKLE_HISTORY_SAME);
	assert_int_equal(merkle_judge_history(5, r5, 5, other, NULL, 0), MERKLE_HISTORY_FORK);
	assert_int_equal(merkle_judge_history(5, r5, 3, r3, NULL, 0), MERKLE_HISTORY_SMALLER);
	merkle_tree_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_ref_tree_roots_and_leaves),
		cmocka_unit_test(test_ref_levels),
		cmocka_unit_test(test_ref_inclusion_proofs),
		cmocka_unit_test(test_ref_consistency_proofs),
		cmocka_unit_test(test_naive_equivalence),
		cmocka_unit_test(test_exhaustive_inclusion),
		cmocka_unit_test(test_exhaustive_consistency),
		cmocka_unit_test(test_larger_tree),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_judge_history),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
