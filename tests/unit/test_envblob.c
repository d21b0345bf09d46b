/*
 * test_envblob.c - unit tests for src/formats/envblob.c: a vector computed
 * with python3-cryptography's AESGCM (KEK 00..1f, nonce 00..0b, data key
 * 10..2f, KEK "tlm-kek" version 2, context day/stream/vehicle_id) rebuilt
 * here with OpenSSL byte for byte, and decrypted back; the canonical
 * context does not depend on the order given and refuses what the format
 * does not allow; the decoder refuses every malformed blob (each truncation,
 * a trailing byte, another version, bad names and lengths).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/hex.h"
#include "formats/envblob.h"

static const char canon_hex[] =
    "00030003646179000a323032362d31322d3032000673747265616d000363616e000a76656869636c655f6964"
    "000a545255434b2d30303432";
static const char blob_hex[] =
    "0107746c6d2d6b656b00000002000102030405060708090a0b000000205713c408d1f0d40c95588d90adf466"
    "72a3f7a517d45e795b104ecfae31442e9d7cc514ac1d9ce5c326a0e9422a3ae3f8";

static const struct envctx_entry ctx[] = {
	{ "vehicle_id", "TRUCK-0042" }, { "stream", "can" }, { "day", "2026-12-02" },
};

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;

	assert_true(n <= cap);
	assert_int_equal(bs_hex_decode(h, 2 * n, out, n, 0), 0);
	return n;
}

/* AES-256-GCM with OpenSSL: encrypt (enc 1, tag out) or decrypt (enc 0, tag in); 1 if ok. */
static int
gcm(int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
	    EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
	    EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 &&
	    (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
	    EVP_CipherFinal_ex(c, out + n, &n) == 1 &&
	    (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok;
}

static void
test_vector(void **state)
{
	uint8_t kek[32], dk[32], want[256], canon_want[256], ct[32], back[32];
	uint8_t *canon = NULL, *aad = NULL, *blob = NULL;
	size_t canon_len, aad_len, blob_len, n;
	struct envblob b, d;

	(void)state;
	for (int i = 0; i < 32; i++) {
		kek[i] = (uint8_t)i;
		dk[i] = (uint8_t)(0x10 + i);
	}
	n = unhex(canon_hex, canon_want, sizeof(canon_want));
	assert_int_equal(envctx_canonical(ctx, 3, &canon, &canon_len), 0);
	assert_int_equal(canon_len, n);
	assert_memory_equal(canon, canon_want, n);
	memset(&b, 0, sizeof(b));
	strcpy(b.kek, "tlm-kek");
	b.kek_version = 2;
	for (int i = 0; i < 12; i++)
		b.nonce[i] = (uint8_t)i;
	b.ct_len = sizeof(dk);
	assert_int_equal(envblob_aad(&b, canon, canon_len, &aad, &aad_len), 0);
	assert_int_equal(aad_len, strlen(ENVBLOB_AAD_PREFIX) + envblob_header_len(&b) + canon_len);
	assert_true(gcm(1, kek, b.nonce, aad, aad_len, dk, sizeof(dk), ct, b.tag));
	b.ct = ct;
	assert_int_equal(envblob_encode(&b, &blob, &blob_len), 0);
	n = unhex(blob_hex, want, sizeof(want));
	assert_int_equal(blob_len, n);
	assert_memory_equal(blob, want, n);
	/* and back */
	assert_int_equal(envblob_decode(blob, blob_len, &d), 0);
	assert_string_equal(d.kek, "tlm-kek");
	assert_int_equal(d.kek_version, 2);
	assert_int_equal(d.ct_len, 32);
	assert_true(gcm(0, kek, d.nonce, aad, aad_len, d.ct, d.ct_len, back, d.tag));
	assert_memory_equal(back, dk, sizeof(dk));
	/* another context is another AAD: the tag does not verify */
	aad[aad_len - 1] ^= 1;
	assert_false(gcm(0, kek, d.nonce, aad, aad_len, d.ct, d.ct_len, back, d.tag));
	free(canon);
	free(aad);
	free(blob);
}

static void
test_context(void **state)
{
	const struct envctx_entry reordered[] = { ctx[2], ctx[0], ctx[1] };
	const struct envctx_entry prefix[] = { { "ab", "1" }, { "a", "2" } };
	const struct envctx_entry twice[] = { { "a", "1" }, { "a", "2" } };
	const struct envctx_entry ctl[] = { { "a", "x\ty" } };
	const struct envctx_entry c1[] = { { "a", "\xc2\x85" } };       /* U+0085, a C1 control */
	const struct envctx_entry badutf[] = { { "a", "\xc0\xaf" } };   /* overlong */
	const struct envctx_entry empty_val[] = { { "a", "" } };
	const struct envctx_entry utf[] = { { "r\xc3\xa9gion", "\xe5\x8c\x97\xe4\xba\xac" } };
	struct envctx_entry many[ENVCTX_MAX + 1];
	char keys[ENVCTX_MAX + 1][8], longkey[ENVCTX_KEY_MAX + 2];
	uint8_t *a = NULL, *b = NULL;
	size_t al, bl;

	(void)state;
	assert_int_equal(envctx_canonical(ctx, 3, &a, &al), 0);
	assert_int_equal(envctx_canonical(reordered, 3, &b, &bl), 0);
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);                   /* a map: the order given does not count */
	free(a);
	free(b);
	/* "a" sorts before "ab" */
	assert_int_equal(envctx_canonical(prefix, 2, &a, &al), 0);
	assert_memory_equal(a, "\x00\x02\x00\x01" "a" "\x00\x01" "2" "\x00\x02" "ab", 11);
	free(a);
	assert_int_equal(envctx_canonical(utf, 1, &a, &al), 0);
	free(a);
	a = NULL;
	assert_int_equal(envctx_canonical(twice, 2, &a, &al), BS_ERR_INVALID);
	assert_int_equal(envctx_canonical(ctl, 1, &a, &al), BS_ERR_INVALID);
	assert_int_equal(envctx_canonical(c1, 1, &a, &al), BS_ERR_INVALID);
	assert_int_equal(envctx_canonical(badutf, 1, &a, &al), BS_ERR_INVALID);
	assert_int_equal(envctx_canonical(empty_val, 1, &a, &al), BS_ERR_INVALID);
	assert_int_equal(envctx_canonical(ctx, 0, &a, &al), BS_ERR_INVALID);
	for (int i = 0; i <= ENVCTX_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[i] = (struct envctx_entry){ keys[i], "v" };
	}
	assert_int_equal(envctx_canonical(many, ENVCTX_MAX, &a, &al), 0);
	free(a);
	a = NULL;
	assert_int_equal(envctx_canonical(many, ENVCTX_MAX + 1, &a, &al), BS_ERR_INVALID);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	many[0].key = longkey;
	assert_int_equal(envctx_canonical(many, 1, &a, &al), BS_ERR_INVALID);
	longkey[ENVCTX_KEY_MAX] = '\0';
	assert_int_equal(envctx_canonical(many, 1, &a, &al), 0);
	free(a);
}

static void
refuse(const uint8_t *in, size_t len)
{
	struct envblob d;

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(envblob_decode(in, len, &d), BS_ERR_INVALID);
	assert_null(d.ct);
	assert_int_equal(d.ct_len, 0);
}

static void
test_decode_refusals(void **state)
{
	uint8_t blob[256], bad[256];
	struct envblob b;
	size_t n = unhex(blob_hex, blob, sizeof(blob)), k;

	(void)state;
	assert_int_equal(envblob_decode(blob, n, &b), 0);
	for (k = 0; k < n; k++)
		refuse(blob, k);                         /* every truncation */
	memcpy(bad, blob, n);
	bad[n] = 0;
	refuse(bad, n + 1);                          /* a trailing byte */
	memcpy(bad, blob, n);
	bad[0] = 2;
	refuse(bad, n);                              /* another format version */
	memcpy(bad, blob, n);
	bad[1] = 0;
	refuse(bad, n);                              /* no name */
	memcpy(bad, blob, n);
	bad[2] = '-';
	refuse(bad, n);                              /* a name starting with '-' */
	memcpy(bad, blob, n);
	bad[4] = '/';
	refuse(bad, n);                              /* a character names do not have */
	memcpy(bad, blob, n);
	memset(bad + 9, 0, 4);
	refuse(bad, n);                              /* version 0 */
	memcpy(bad, blob, n);
	bad[28] = 0x21;
	refuse(bad, n);                              /* a length that is not the blob's */
	memcpy(bad, blob, n);
	memset(bad + 25, 0, 4);
	refuse(bad, n);                              /* length 0 */
	memcpy(bad, blob, n);
	bad[25] = 0xff;
	refuse(bad, n);                              /* a huge length */
	refuse(NULL, 0);
	assert_int_equal(envblob_decode(blob, n, NULL), BS_ERR_INVALID);
	/* the encoder keeps the same rules */
	memset(&b, 0, sizeof(b));
	strcpy(b.kek, "ok");
	b.kek_version = 1;
	b.ct = blob;
	b.ct_len = ENVBLOB_DATA_MAX + 1;
	{
		uint8_t *out = NULL;
		size_t out_len;

		assert_int_equal(envblob_encode(&b, &out, &out_len), BS_ERR_INVALID);
		b.ct_len = 1;
		b.kek_version = 0;
		assert_int_equal(envblob_encode(&b, &out, &out_len), BS_ERR_INVALID);
		b.kek_version = 1;
		strcpy(b.kek, "bad name");
		assert_int_equal(envblob_encode(&b, &out, &out_len), BS_ERR_INVALID);
		assert_null(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_context),
		cmocka_unit_test(test_decode_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
