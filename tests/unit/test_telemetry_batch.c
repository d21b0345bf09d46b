/*
 * test_telemetry_batch.c - unit tests of signed telemetry batches: the
 * client library's signer (src/client/telemetry_sign.c) and the shared
 * encoder (src/formats/tlm_encode.c) reproduce the Ed25519 vector of
 * docs/telemetry.md byte for byte (derived independently with
 * python3-cbor2 and python3-cryptography); ES256 tokens decode
 * (src/formats/tlm_batch.c) to what was signed and their signature
 * verifies; the decoder refuses, with a reason, every departure from the
 * format (a long-form integer, an extra or missing member, another version,
 * a short kid, an unknown alg, a short signature, trailing bytes, start
 * after end, oversize); the signer refuses windows the format forbids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "boltseal/telemetry.h"
#include "common/hex.h"
#include "formats/sigverify.h"
#include "formats/tlm_batch.h"

/* docs/telemetry.md, "Test vector" */
static const char VEC_SAMPLES[] = "t_ms,speed_kmh\n1767225600000,81\n1767225600500,82\n";
static const char VEC_TOKEN[] =
    "d2845826a20127045820646d6be49d9f0048f94f67749eca35156eed4f7a7be18e4fc4a94bfd44e300b0a0585a"
    "a76168582088c21bb562ea47e4df1078b6d5ba2eba6348e604a8cd5e2a5d07e2764e423efc616e0261760163"
    "656e641b0000019b76daabe863736571016376696469545255434b2d3034326573746172741b0000019b76da"
    "a80058405f07d775ef5f8aa0c6acf028b35b2b72c89a9f793a9d0de6283c6554f71ad95f637fc68f079785bd"
    "e46d4485df0ea1c022032d9296827911fe79ccebd7e99f0b";
static const char VEC_KID[] = "646d6be49d9f0048f94f67749eca35156eed4f7a7be18e4fc4a94bfd44e300b0";

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;

	assert_true(n <= cap);
	assert_int_equal(bs_hex_decode(h, 2 * n, out, n, 0), 0);
	return n;
}

static void
vec_window(struct bs_tlm_window *w)
{
	memset(w, 0, sizeof(*w));
	w->vehicle_id = "TRUCK-042";
	w->seq = 1;
	w->start_ms = INT64_C(1767225600000);
	w->end_ms = INT64_C(1767225601000);
	w->samples = 2;
	SHA256((const uint8_t *)VEC_SAMPLES, strlen(VEC_SAMPLES), w->samples_sha256);
}

static EVP_PKEY *
vec_key(void)
{
	uint8_t seed[32];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 1);
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
}

static void
test_vector(void **state)
{
	struct bs_tlm_window w;
	struct tlm_batch b;
	uint8_t tok[BS_TLM_TOKEN_MAX], want[BS_TLM_TOKEN_MAX], kid[32];
	size_t len = 0, wlen;
	const char *why = NULL;
	EVP_PKEY *k = vec_key();

	(void)state;
	assert_non_null(k);
	vec_window(&w);
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_OK);
	wlen = unhex(VEC_TOKEN, want, sizeof(want));
	assert_int_equal(len, wlen);
	assert_memory_equal(tok, want, len);
	assert_int_equal(tlm_batch_decode(tok, len, &b, &why), 0);
	assert_null(why);
	assert_string_equal(b.vehicle_id, "TRUCK-042");
	assert_int_equal(b.w.seq, 1);
	assert_int_equal(b.w.end_ms, INT64_C(1767225601000));
	assert_int_equal(b.alg, TLM_ALG_EDDSA);
	unhex(VEC_KID, kid, sizeof(kid));
	assert_memory_equal(b.kid, kid, 32);
	EVP_PKEY_free(k);
}

static void
test_es256_round_trip(void **state)
{
	struct bs_tlm_window w;
	struct tlm_batch b;
	uint8_t tok[BS_TLM_TOKEN_MAX], *spki = NULL, kid[32];
	size_t len = 0;
	const char *why = NULL;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	int n;

	(void)state;
	assert_non_null(k);
	vec_window(&w);
	w.vehicle_id = "V.1_x-Y";
	w.seq = (uint64_t)INT64_MAX;
	w.start_ms = 0;
	w.end_ms = TLM_TIME_MAX_MS;
	w.samples = 1000000;
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_OK);
	assert_int_equal(tlm_batch_decode(tok, len, &b, &why), 0);
	assert_int_equal(b.alg, TLM_ALG_ES256);
	assert_int_equal(b.w.seq, (uint64_t)INT64_MAX);
	assert_int_equal(b.w.end_ms, TLM_TIME_MAX_MS);
	assert_int_equal(b.w.samples, 1000000);
	assert_memory_equal(b.w.samples_sha256, w.samples_sha256, 32);
	n = i2d_PUBKEY(k, &spki);
	assert_true(n > 0);
	SHA256(spki, (size_t)n, kid);
	assert_memory_equal(b.kid, kid, 32);
	assert_int_equal(sigverify_verify(spki, (size_t)n, BS_ALG_ECDSA_P256_SHA256, 0, b.tbs,
	    b.tbs_len, b.sig, TLM_SIG_LEN, BS_SIGFMT_RAW), 0);
	b.tbs[b.tbs_len - 1] ^= 1;
	assert_int_equal(sigverify_verify(spki, (size_t)n, BS_ALG_ECDSA_P256_SHA256, 0, b.tbs,
	    b.tbs_len, b.sig, TLM_SIG_LEN, BS_SIGFMT_RAW), BS_ERR_SIG_INVALID);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
}

/* The vector's token with its payload replaced by payload (hex), signature kept. */
static size_t
with_payload(const char *payload_hex, uint8_t *out, size_t cap)
{
	uint8_t prot[64], payload[256], sig[64];
	size_t plen = unhex("a20127045820646d6be49d9f0048f94f67749eca35156eed4f7a7be18e4fc4a94bfd44e300b0",
	    prot, sizeof(prot));
	size_t paylen = unhex(payload_hex, payload, sizeof(payload));

	memset(sig, 7, sizeof(sig));
	return tlm_token_encode(prot, plen, payload, paylen, sig, sizeof(sig), out, cap);
}

static void
refused(const uint8_t *tok, size_t len, const char *words)
{
	struct tlm_batch b;
	const char *why = NULL;

	if (tlm_batch_decode(tok, len, &b, &why) == 0)
		fail_msg("accepted where \"%s\" was expected", words);
	assert_non_null(why);
	if (strstr(why, words) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, words);
}

static void
test_decoder_refusals(void **state)
{
	uint8_t tok[600], want[BS_TLM_TOKEN_MAX];
	size_t n, wlen = unhex(VEC_TOKEN, want, sizeof(want));
	/* the vector's payload, then variants */
	const char *h = "6168582088c21bb562ea47e4df1078b6d5ba2eba6348e604a8cd5e2a5d07e2764e423efc";
	char p[600];

	(void)state;
	/* a good payload under a fake signature still decodes (the signature is the caller's) */
	snprintf(p, sizeof(p), "a7%s616e0261760163656e641b0000019b76daabe863736571016376696469545255"
	    "434b2d3034326573746172741b0000019b76daa800", h);
	n = with_payload(p, tok, sizeof(tok));
	{
		struct tlm_batch b;
		const char *why = NULL;

		assert_int_equal(tlm_batch_decode(tok, n, &b, &why), 0);
	}
	/* n in a long form (1800 02 instead of 02) */
	snprintf(p, sizeof(p), "a7%s616e180261760163656e641b0000019b76daabe8637365710163766964695452"
	    "55434b2d3034326573746172741b0000019b76daa800", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "deterministic");
	/* keys out of order ("v" before "n") */
	snprintf(p, sizeof(p), "a7%s617601616e0263656e641b0000019b76daabe8637365710163766964695452"
	    "55434b2d3034326573746172741b0000019b76daa800", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "deterministic");
	/* version 2 */
	snprintf(p, sizeof(p), "a7%s616e0261760263656e641b0000019b76daabe863736571016376696469545255"
	    "434b2d3034326573746172741b0000019b76daa800", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "version");
	/* six members (no start) */
	snprintf(p, sizeof(p), "a6%s616e0261760163656e641b0000019b76daabe86373657101637669646954525543"
	    "4b2d303432", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "the 7 members");
	/* an unknown member instead of start */
	snprintf(p, sizeof(p), "a7%s616e0261760163656e641b0000019b76daabe863736571016376696469545255"
	    "434b2d3034326573746272741b0000019b76daa800", h);       /* "stbrt" */
	refused(tok, with_payload(p, tok, sizeof(tok)), "unknown member");
	/* start after end */
	snprintf(p, sizeof(p), "a7%s616e0261760163656e641b0000019b76daa80063736571016376696469545255"
	    "434b2d3034326573746172741b0000019b76daabe8", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "start <= end");
	/* seq 0 */
	snprintf(p, sizeof(p), "a7%s616e0261760163656e641b0000019b76daabe863736571006376696469545255"
	    "434b2d3034326573746172741b0000019b76daa800", h);
	refused(tok, with_payload(p, tok, sizeof(tok)), "range");
	/* the envelope: trailing byte, a short signature, a short kid, another alg */
	memcpy(tok, want, wlen);
	tok[wlen] = 0;
	refused(tok, wlen + 1, "COSE_Sign1");
	memcpy(tok, want, wlen);
	tok[wlen - 65] = 0x3f;          /* bstr of 63: the token now ends a byte late */
	refused(tok, wlen - 1, "signature");
	{
		uint8_t prot[64], payload[256], sig[64], kid[31];
		size_t plen, paylen;

		memset(kid, 1, sizeof(kid));
		memset(sig, 1, sizeof(sig));
		paylen = unhex("a76168582088c21bb562ea47e4df1078b6d5ba2eba6348e604a8cd5e2a5d07e2764e423e"
		    "fc616e0261760163656e641b0000019b76daabe863736571016376696469545255434b2d3034"
		    "326573746172741b0000019b76daa800", payload, sizeof(payload));
		plen = unhex("a2012704581f01010101010101010101010101010101010101010101010101010101010101",
		    prot, sizeof(prot));
		n = tlm_token_encode(prot, plen, payload, paylen, sig, sizeof(sig), tok, sizeof(tok));
		refused(tok, n, "kid");
		plen = unhex("a20138220458200101010101010101010101010101010101010101010101010101010101010101",
		    prot, sizeof(prot));
		n = tlm_token_encode(prot, plen, payload, paylen, sig, sizeof(sig), tok, sizeof(tok));
		refused(tok, n, "alg");
	}
	memset(tok, 0x41, sizeof(tok));
	refused(tok, TLM_TOKEN_MAX + 1, "longer");
	refused(tok, 0, "COSE_Sign1");
}

static void
test_signer_refusals(void **state)
{
	struct bs_tlm_window w;
	uint8_t tok[BS_TLM_TOKEN_MAX];
	size_t len = 0;
	EVP_PKEY *k = vec_key(), *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

	(void)state;
	vec_window(&w);
	w.seq = 0;
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_ERR_ARG);
	vec_window(&w);
	w.vehicle_id = "-x";
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_ERR_ARG);
	w.vehicle_id = "a b";
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_ERR_ARG);
	vec_window(&w);
	w.start_ms = w.end_ms + 1;
	assert_int_equal(bs_tlm_sign(&w, k, tok, sizeof(tok), &len), BS_TLM_ERR_ARG);
	vec_window(&w);
	assert_int_equal(bs_tlm_sign(&w, rsa, tok, sizeof(tok), &len), BS_TLM_ERR_KEY);
	assert_int_equal(bs_tlm_sign(&w, p384, tok, sizeof(tok), &len), BS_TLM_ERR_KEY);
	assert_int_equal(bs_tlm_sign(&w, k, tok, 100, &len), BS_TLM_ERR_ARG);
	assert_int_equal(bs_tlm_sign(NULL, k, tok, sizeof(tok), &len), BS_TLM_ERR_ARG);
	assert_string_equal(bs_tlm_strerror(BS_TLM_ERR_KEY),
	    "the key is not an EC P-256 or Ed25519 private key");
	EVP_PKEY_free(k);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_es256_round_trip),
		cmocka_unit_test(test_decoder_refusals),
		cmocka_unit_test(test_signer_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
