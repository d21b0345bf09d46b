/*
 * test_keyops.c - unit tests for the key door's wire codec
 * (src/keyops/codec.c) and the byte buffer it is built on
 * (src/common/bytebuf.c): every request and answer type round-trips; every
 * proper prefix of a valid message is refused (truncation), and so is any
 * trailing byte; bad versions, types, algorithms, names, booleans, counts and
 * lengths are refused by the decoder and never produced by the encoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytebuf.h"
#include "keyops/keyops.h"

static const uint8_t in1[] = "hello";
static const uint8_t in2[32] = { 1, 2, 3 };

static void
sign_request(struct keyop_request *r, struct keyop_input inputs[2])
{
	memset(r, 0, sizeof(*r));
	r->type = KEYOP_SIGN;
	strcpy(r->key.name, "ota-root.1");
	r->key.version = 7;
	memset(r->id, 0x3c, sizeof(r->id));
	r->alg = BS_ALG_ECDSA_P256_SHA256;
	inputs[0].is_digest = 0;
	inputs[0].data = in1;
	inputs[0].len = 5;
	inputs[1].is_digest = 1;
	inputs[1].data = in2;
	inputs[1].len = 32;
	r->inputs = inputs;
	r->ninputs = 2;
}

/* Every prefix of a valid encoding is refused; so is one more byte. */
static void
check_strict_request(const uint8_t *buf, size_t len)
{
	struct keyop_request r;
	uint8_t *more = malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		assert_int_not_equal(keyops_request_decode(buf, i, &r), 0);
	memcpy(more, buf, len);
	more[len] = 0;
	assert_int_equal(keyops_request_decode(more, len + 1, &r), BS_ERR_INVALID);
	free(more);
}

static void
check_strict_answer(const uint8_t *buf, size_t len)
{
	struct keyop_answer a;
	uint8_t *more = malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		assert_int_not_equal(keyops_answer_decode(buf, i, &a), 0);
	memcpy(more, buf, len);
	more[len] = 0;
	assert_int_equal(keyops_answer_decode(more, len + 1, &a), BS_ERR_INVALID);
	free(more);
}

static void
test_sign_request_round_trip(void **state)
{
	struct keyop_input inputs[2];
	struct keyop_request r, d;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	sign_request(&r, inputs);
	assert_int_equal(keyops_request_encode(&r, &buf, &len), 0);
	assert_int_equal(len, 2 + 1 + 10 + 4 + 1 + 16 + 4 + 1 + 4 + 5 + 1 + 4 + 32);
	assert_int_equal(keyops_request_decode(buf, len, &d), 0);
	assert_int_equal(d.type, KEYOP_SIGN);
	assert_string_equal(d.key.name, "ota-root.1");
	assert_int_equal(d.key.version, 7);
	assert_int_equal(d.alg, BS_ALG_ECDSA_P256_SHA256);
	assert_memory_equal(d.id, r.id, KEYOPS_ID_LEN);
	assert_int_equal(d.ninputs, 2);
	assert_int_equal(d.inputs[0].is_digest, 0);
	assert_int_equal(d.inputs[1].is_digest, 1);
	assert_int_equal(d.inputs[0].len, 5);
	assert_memory_equal(d.inputs[0].data, "hello", 5);
	assert_memory_equal(d.inputs[1].data, in2, 32);
	keyop_request_clear(&d);
	check_strict_request(buf, len);
	free(buf);
}

static void
test_other_requests_round_trip(void **state)
{
	static const enum keyop_type types[] = { KEYOP_GENERATE, KEYOP_DESTROY, KEYOP_PROBE };
	struct keyop_request r, d;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		memset(&r, 0, sizeof(r));
		r.type = types[i];
		strcpy(r.key.name, "k");
		r.key.version = 1;
		r.alg = BS_ALG_ED25519;
		memset(r.id, 0x42, sizeof(r.id));
		assert_int_equal(keyops_request_encode(&r, &buf, &len), 0);
		assert_int_equal(keyops_request_decode(buf, len, &d), 0);
		assert_int_equal(d.type, types[i]);
		if (types[i] != KEYOP_PROBE) {
			assert_string_equal(d.key.name, "k");
			assert_int_equal(d.key.version, 1);
		}
		if (types[i] == KEYOP_GENERATE)
			assert_int_equal(d.alg, BS_ALG_ED25519);
		if (types[i] == KEYOP_DESTROY)
			assert_memory_equal(d.id, r.id, KEYOPS_ID_LEN);
		keyop_request_clear(&d);
		check_strict_request(buf, len);
		free(buf);
	}
}

static void
test_encoder_refuses(void **state)
{
	struct keyop_input inputs[2];
	struct keyop_request r;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	sign_request(&r, inputs);
	r.key.version = 0;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	strcpy(r.key.name, "-bad");
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	r.alg = BS_ALG_NONE;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	r.ninputs = 0;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	r.ninputs = KEYOPS_SIGN_MAX + 1;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	inputs[0].is_digest = 2;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	sign_request(&r, inputs);
	r.type = (enum keyop_type)9;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	assert_null(buf);
}

/* Decodes a hand-made request; expects rc. */
static void
expect_request(const uint8_t *b, size_t n, int rc)
{
	struct keyop_request r;

	assert_int_equal(keyops_request_decode(b, n, &r), rc);
	if (rc == 0)
		keyop_request_clear(&r);
}

#define ID16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0

static void
test_decoder_refuses_bad_fields(void **state)
{
	/* GENERATE "k" v1 ed25519 */
	static const uint8_t ok[] = { 1, 2, 1, 'k', 0, 0, 0, 1, 2 };
	static const uint8_t bad_version[] = { 2, 2, 1, 'k', 0, 0, 0, 1, 2 };
	static const uint8_t bad_type[] = { 1, 7, 1, 'k', 0, 0, 0, 1, 2 };
	static const uint8_t zero_type[] = { 1, 0 };
	static const uint8_t bad_alg[] = { 1, 2, 1, 'k', 0, 0, 0, 1, 6 };
	/* SIGN with an AES key, ENCRYPT with an ECDSA key */
	static const uint8_t sign_aes[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 4, ID16, 0, 0, 0, 1, 0, 0, 0,
		0, 1, 'a' };
	static const uint8_t enc_ecdsa[] = { 1, 5, 1, 'k', 0, 0, 0, 1, 1, ID16, 0, 0, 0, 1, 1,
		ID16, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t none_alg[] = { 1, 2, 1, 'k', 0, 0, 0, 1, 0 };
	static const uint8_t name_nul[] = { 1, 2, 2, 'k', 0, 0, 0, 0, 1, 2 };
	static const uint8_t name_empty[] = { 1, 2, 0, 0, 0, 0, 1, 2 };
	static const uint8_t name_dash[] = { 1, 2, 1, '-', 0, 0, 0, 1, 2 };
	static const uint8_t version_zero[] = { 1, 2, 1, 'k', 0, 0, 0, 0, 2 };
	/* SIGN "k" v1 ecdsa, one input with is_digest 2 */
	static const uint8_t bad_bool[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 1, ID16, 0, 0, 0, 1, 2, 0, 0, 0,
		0 };
	/* SIGN with 0 inputs, and with a count the bytes cannot hold */
	static const uint8_t no_inputs[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 1, ID16, 0, 0, 0, 0 };
	static const uint8_t huge_count[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 1, ID16, 0, 0, 3, 0xe8,
		0, 0, 0, 0, 0 };
	/* SIGN one input announcing more bytes than there are */
	static const uint8_t long_input[] = { 1, 1, 1, 'k', 0, 0, 0, 1, 1, ID16, 0, 0, 0, 1, 0,
		0, 0, 0, 9, 'a' };
	static const uint8_t probe[] = { 1, 4 };

	(void)state;
	expect_request(ok, sizeof(ok), 0);
	expect_request(probe, sizeof(probe), 0);
	expect_request(bad_version, sizeof(bad_version), BS_ERR_INVALID);
	expect_request(bad_type, sizeof(bad_type), BS_ERR_INVALID);
	expect_request(zero_type, sizeof(zero_type), BS_ERR_INVALID);
	expect_request(bad_alg, sizeof(bad_alg), BS_ERR_INVALID);
	expect_request(sign_aes, sizeof(sign_aes), BS_ERR_INVALID);
	expect_request(enc_ecdsa, sizeof(enc_ecdsa), BS_ERR_INVALID);
	expect_request(none_alg, sizeof(none_alg), BS_ERR_INVALID);
	expect_request(name_nul, sizeof(name_nul), BS_ERR_INVALID);
	expect_request(name_empty, sizeof(name_empty), BS_ERR_INVALID);
	expect_request(name_dash, sizeof(name_dash), BS_ERR_INVALID);
	expect_request(version_zero, sizeof(version_zero), BS_ERR_INVALID);
	expect_request(bad_bool, sizeof(bad_bool), BS_ERR_INVALID);
	expect_request(no_inputs, sizeof(no_inputs), BS_ERR_INVALID);
	expect_request(huge_count, sizeof(huge_count), BS_ERR_INVALID);
	expect_request(long_input, sizeof(long_input), BS_ERR_TRUNCATED);
	expect_request(NULL, 0, BS_ERR_TRUNCATED);
}

static void
test_answers_round_trip(void **state)
{
	struct keyop_sig sigs[2];
	struct keyop_answer a, d;
	uint8_t spki[91], *buf = NULL;
	size_t len = 0;

	(void)state;
	memset(sigs, 0, sizeof(sigs));
	sigs[0].sig_len = 64;
	memset(sigs[0].sig, 0x5a, 64);
	memset(sigs[0].payload_sha256, 0x11, 32);
	sigs[1].rc = BS_ERR_INVALID;
	memset(&a, 0, sizeof(a));
	a.type = KEYOP_SIGN;
	a.sigs = sigs;
	a.nsigs = 2;
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), 0);
	assert_int_equal(keyops_answer_decode(buf, len, &d), 0);
	assert_int_equal(d.nsigs, 2);
	assert_int_equal(d.sigs[0].sig_len, 64);
	assert_memory_equal(d.sigs[0].sig, sigs[0].sig, 64);
	assert_memory_equal(d.sigs[0].payload_sha256, sigs[0].payload_sha256, 32);
	assert_int_equal(d.sigs[1].rc, BS_ERR_INVALID);
	assert_int_equal(d.sigs[1].sig_len, 0);
	keyop_answer_clear(&d);
	check_strict_answer(buf, len);
	free(buf);

	memset(&a, 0, sizeof(a));
	memset(spki, 0x30, sizeof(spki));
	a.type = KEYOP_GENERATE;
	memset(a.id, 0xee, sizeof(a.id));
	a.spki = spki;
	a.spki_len = sizeof(spki);
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), 0);
	assert_int_equal(keyops_answer_decode(buf, len, &d), 0);
	assert_memory_equal(d.id, a.id, KEYOPS_ID_LEN);
	assert_int_equal(d.spki_len, sizeof(spki));
	assert_memory_equal(d.spki, spki, sizeof(spki));
	keyop_answer_clear(&d);
	check_strict_answer(buf, len);
	free(buf);

	memset(&a, 0, sizeof(a));
	a.type = KEYOP_PROBE;
	a.alive = 1;
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), 0);
	assert_int_equal(keyops_answer_decode(buf, len, &d), 0);
	assert_int_equal(d.alive, 1);
	check_strict_answer(buf, len);
	free(buf);

	/* an error answer carries only its rc */
	memset(&a, 0, sizeof(a));
	a.type = KEYOP_SIGN;
	a.rc = BS_ERR_NOT_FOUND;
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_int_equal(keyops_answer_decode(buf, len, &d), 0);
	assert_int_equal(d.rc, BS_ERR_NOT_FOUND);
	check_strict_answer(buf, len);
	free(buf);
}

static void
test_answer_decoder_refuses(void **state)
{
	static const uint8_t pos_rc[] = { 1, 4, 0, 0, 0, 1 };
	static const uint8_t low_rc[] = { 1, 4, 0xff, 0xff, 0xff, 0x00 };
	static const uint8_t alive2[] = { 1, 4, 0, 0, 0, 0, 2 };
	/* SIGN: one item with rc != 0 but a signature */
	static const uint8_t sig_on_error[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 1,
		0xff, 0xff, 0xff, 0xfd, 0, 1, 0xaa,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* SIGN: one item with rc 0 and no signature */
	static const uint8_t ok_without_sig[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* GENERATE with an empty SPKI: a secret key's answer */
	static const uint8_t empty_spki[] = { 1, 2, 0, 0, 0, 0,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
	/* DECRYPT answers: data on an error; a generated key in a DECRYPT */
	static const uint8_t data_on_error[] = { 1, 6, 0, 0, 0, 0, 0, 0, 0, 1,
		0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 'x', 0 };
	static const uint8_t key_in_decrypt[] = { 1, 6, 0, 0, 0, 0, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 1, 'x', 1, 'k' };
	struct keyop_answer a;

	(void)state;
	assert_int_equal(keyops_answer_decode(pos_rc, sizeof(pos_rc), &a), BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(low_rc, sizeof(low_rc), &a), BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(alive2, sizeof(alive2), &a), BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(sig_on_error, sizeof(sig_on_error), &a),
	    BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(empty_spki, sizeof(empty_spki), &a), 0);
	assert_null(a.spki);
	assert_int_equal(a.spki_len, 0);
	keyop_answer_clear(&a);
	assert_int_equal(keyops_answer_decode(data_on_error, sizeof(data_on_error), &a),
	    BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(key_in_decrypt, sizeof(key_in_decrypt), &a),
	    BS_ERR_INVALID);
	assert_int_equal(keyops_answer_decode(ok_without_sig, sizeof(ok_without_sig), &a),
	    BS_ERR_INVALID);
}

/* ENCRYPT and DECRYPT: both directions, every field, and the encoder's refusals. */
static void
test_cipher_round_trip(void **state)
{
	static const uint8_t aad[] = "aad", pt[] = "plaintext", ct[20] = { 7 };
	struct keyop_item items[2];
	struct keyop_cipher ciphers[2];
	struct keyop_request r, d;
	struct keyop_answer a, da;
	uint8_t key[32], *buf = NULL;
	size_t len = 0;

	(void)state;
	memset(items, 0, sizeof(items));
	memset(items[0].nonce, 0x0a, KEYOPS_NONCE_LEN);
	items[0].aad = aad;
	items[0].aad_len = 3;
	items[0].data = pt;
	items[0].len = 9;
	items[1].generate = 1;
	items[1].aad = aad;
	items[1].aad_len = 3;
	memset(&r, 0, sizeof(r));
	r.type = KEYOP_ENCRYPT;
	snprintf(r.key.name, sizeof(r.key.name), "kek");
	r.key.version = 2;
	r.alg = BS_ALG_AES_256_GCM;
	memset(r.id, 0x42, sizeof(r.id));
	r.items = items;
	r.nitems = 2;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), 0);
	assert_int_equal(keyops_request_decode(buf, len, &d), 0);
	assert_int_equal(d.type, KEYOP_ENCRYPT);
	assert_int_equal(d.nitems, 2);
	assert_memory_equal(d.items[0].nonce, items[0].nonce, KEYOPS_NONCE_LEN);
	assert_int_equal(d.items[0].len, 9);
	assert_memory_equal(d.items[0].data, pt, 9);
	assert_int_equal(d.items[1].generate, 1);
	assert_int_equal(d.items[1].len, 0);
	assert_memory_equal(d.id, r.id, KEYOPS_ID_LEN);
	keyop_request_clear(&d);
	check_strict_request(buf, len);
	free(buf);

	/* refused: a generated item with data, an ENCRYPT without data, a short DECRYPT, SIGN's alg */
	items[1].len = 1;
	items[1].data = pt;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	items[1].generate = 0;
	items[1].len = 0;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	r.type = KEYOP_DECRYPT;
	r.nitems = 1;
	items[0].len = KEYOPS_TAG_LEN - 1;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);
	items[0].len = 9;
	r.alg = BS_ALG_ECDSA_P256_SHA256;
	assert_int_equal(keyops_request_encode(&r, &buf, &len), BS_ERR_INVALID);

	memset(ciphers, 0, sizeof(ciphers));
	memset(key, 0x33, sizeof(key));
	ciphers[0].data = (uint8_t *)ct;
	ciphers[0].len = sizeof(ct);
	ciphers[0].key = key;
	ciphers[0].key_len = sizeof(key);
	ciphers[1].rc = BS_ERR_SIG_INVALID;
	memset(&a, 0, sizeof(a));
	a.type = KEYOP_ENCRYPT;
	a.ciphers = ciphers;
	a.nciphers = 2;
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), 0);
	assert_int_equal(keyops_answer_decode(buf, len, &da), 0);
	assert_int_equal(da.nciphers, 2);
	assert_int_equal(da.ciphers[0].len, sizeof(ct));
	assert_memory_equal(da.ciphers[0].data, ct, sizeof(ct));
	assert_int_equal(da.ciphers[0].key_len, 32);
	assert_memory_equal(da.ciphers[0].key, key, 32);
	assert_int_equal(da.ciphers[1].rc, BS_ERR_SIG_INVALID);
	assert_null(da.ciphers[1].key);
	keyop_answer_clear(&da);
	check_strict_answer(buf, len);
	free(buf);
	/* a DECRYPT answer never carries a generated key */
	a.type = KEYOP_DECRYPT;
	assert_int_equal(keyops_answer_encode(&a, &buf, &len), BS_ERR_INVALID);
}

static void
test_names(void **state)
{
	char long_name[KEYOPS_NAME_MAX + 2];

	(void)state;
	assert_true(keyops_name_valid("a"));
	assert_true(keyops_name_valid("audit-log"));
	assert_true(keyops_name_valid("9.x_y-z"));
	assert_false(keyops_name_valid(""));
	assert_false(keyops_name_valid(NULL));
	assert_false(keyops_name_valid(".a"));
	assert_false(keyops_name_valid("a/b"));
	assert_false(keyops_name_valid("a b"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[KEYOPS_NAME_MAX] = '\0';
	assert_true(keyops_name_valid(long_name));
	long_name[KEYOPS_NAME_MAX] = 'a';
	long_name[KEYOPS_NAME_MAX + 1] = '\0';
	assert_false(keyops_name_valid(long_name));
}

static void
test_bytebuf(void **state)
{
	struct bytebuf b = BYTEBUF_INIT;
	struct byteread r;
	const uint8_t *p;
	uint8_t *out, u8;
	uint16_t u16;
	uint32_t u32;
	size_t len;

	(void)state;
	bytebuf_put_u8(&b, 0xab);
	bytebuf_put_u16(&b, 0x1234);
	bytebuf_put_u32(&b, 0xdeadbeef);
	for (int i = 0; i < 1000; i++)
		bytebuf_put(&b, "xyz", 3);
	assert_int_equal(bytebuf_error(&b), 0);
	out = bytebuf_steal(&b, &len);
	assert_int_equal(len, 7 + 3000);
	assert_null(b.p);
	byteread_init(&r, out, len);
	assert_int_equal(byteread_u8(&r, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(byteread_u16(&r, &u16), 0);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(byteread_u32(&r, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(byteread_end(&r), BS_ERR_INVALID);
	assert_int_equal(byteread_bytes(&r, 3000, &p), 0);
	assert_memory_equal(p, "xyzxyz", 6);
	assert_int_equal(byteread_end(&r), 0);
	assert_int_equal(byteread_u8(&r, &u8), BS_ERR_TRUNCATED);
	assert_int_equal(byteread_bytes(&r, SIZE_MAX, &p), BS_ERR_TRUNCATED);
	free(out);
	/* a capped buffer refuses to grow past its cap, and stays refused */
	b.max = 10;
	bytebuf_put(&b, "0123456789", 10);
	assert_int_equal(bytebuf_error(&b), 0);
	bytebuf_put_u8(&b, 1);
	assert_int_equal(bytebuf_error(&b), BS_ERR_TOO_BIG);
	bytebuf_free(&b);
	assert_int_equal(bytebuf_error(&b), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_request_round_trip),
		cmocka_unit_test(test_other_requests_round_trip),
		cmocka_unit_test(test_encoder_refuses),
		cmocka_unit_test(test_decoder_refuses_bad_fields),
		cmocka_unit_test(test_answers_round_trip),
		cmocka_unit_test(test_answer_decoder_refuses),
		cmocka_unit_test(test_cipher_round_trip),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bytebuf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
