/*
 * test_cose.c - unit tests for src/formats/cose.c: the cose-wg Examples
 * vectors of docs wire-formats 5.3 (RFC 8152 Appendix C.2.1: its
 * ToBeSign, its ES256 signature verified with OpenSSL, the token itself
 * refused for its unprotected kid but accepted once the unprotected map is
 * empty; sign-pass-02's ToBeSign with external_aad; eddsa-sig-01's
 * ToBeSign and its Ed25519 signature reproduced); protected headers; a
 * claims set against bytes written out by hand from RFC 8949 (shortest
 * integers of every width, negative ints, keys sorted by length then
 * bytes, true/false/null, nesting); round trips; the limits at and past
 * their edge; and the decoders' refusals (trailing bytes, tags, array
 * shape, indefinite lengths, headers, non-deterministic encodings, claim
 * types, floats, duplicates, size).
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
#include <openssl/x509.h>

#include "common/hex.h"
#include "formats/cose.h"
#include "formats/ecdsa_sig.h"

/* ---- the cose-wg vectors (wire-formats.md 5.3) ------------------------------------- */

#define CONTENT "546869732069732074686520636f6e74656e742e"     /* "This is the content." */
#define C21_X "bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff"
#define C21_Y "20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e"
#define C21_SIG "8eb33e4ca31d1c465ab05aac34cc6b23d58fef5c083106c4d25a91aef0b0117e" \
	"2af9a291aa32e14ab834dc56ed2a223444547e01f11d3b0916e5a4c345cacb36"
#define C21_TBS "846a5369676e61747572653143a101264054" CONTENT
#define C21_TOKEN "d28443a10126a104423131" "54" CONTENT "5840" C21_SIG
#define PASS02_TBS "846a5369676e61747572653143a101264c11aa22bb33cc44dd55006699" "54" CONTENT
#define ED_D "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define ED_PROT "a201270300"
#define ED_TBS "846a5369676e61747572653145a2012703004054546869732069732074686520636f6e74656e742e"
#define ED_SIG "7142fd2ff96d56db85bee905a76ba1d0b7321a95c8c4d3607c5781932b7afb87" \
	"11497dfa751bf40b58b3bcc32300b1487f3db34085eef013bf08f4a44d6fef0d"
#define ED_TOKEN "d28445a201270300a10442313154546869732069732074686520636f6e74656e742e5840" ED_SIG
#define P256_SPKI_PREFIX "3059301306072a8648ce3d020106082a8648ce3d03010703420004"

/* our form of C.2.1: the same protected header, payload and signature, unprotected {} */
#define OK_TOKEN "d28443a10126a0" "54" CONTENT "5840" C21_SIG

/* ---- a claims set, written out by hand (RFC 8949 3 and 4.2.1) ----------------------- */

#define H_ISS "01" "68626f6c747365616c"                 /* 1: "boltseal" */
#define H_SUB "02" "6456494e31"                         /* 2: "VIN1" */
#define H_AUD "03" "63766568"                           /* 3: "veh" */
#define H_EXP "04" "1a6553f11e"                         /* 4: 1700000030 */
#define H_NBF "05" "1a6553f0f6"                         /* 5: 1699999990 */
#define H_IAT "06" "1a6553f100"                         /* 6: 1700000000 */
#define H_CTI "07" "50000102030405060708090a0b0c0d0e0f" /* 7: h'00..0f' */
#define H_CMD "63636d64" "66756e6c6f636b"               /* "cmd": "unlock" */
#define H_SEQ "63736571" "1901f4"                       /* "seq": 500 */
#define H_ARGS_KEY "6461726773"                         /* "args" */
#define H_HEAD H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY

/* args in the order a JSON writer might give them; sorted they are b, c, aa, ab, big */
#define ARGS_JSON "{\"aa\":-1,\"b\":[0,23,24,255,256,65535,65536,4294967295,4294967296," \
	"-24,-25,-256,-257,-65537],\"c\":{\"zz\":null,\"y\":true,\"x\":false}," \
	"\"ab\":[[],{},\"\xc3\xa9\",\"\"],\"big\":[9223372036854775807,-9223372036854775808]}"
#define H_ARGS "a5" \
	"6162" "8e" "00" "17" "1818" "18ff" "190100" "19ffff" "1a00010000" "1affffffff" \
	    "1b0000000100000000" "37" "3818" "38ff" "390100" "3a00010000" \
	"6163" "a3" "6178" "f4" "6179" "f5" "627a7a" "f6" \
	"626161" "20" \
	"626162" "84" "80" "a0" "62c3a9" "60" \
	"63626967" "82" "1b7fffffffffffffff" "3b7fffffffffffffff"
#define H_CLAIMS "aa" H_HEAD H_ARGS

#define BUF_MAX (COSE_TOKEN_MAX + 1024)

/* Decodes the concatenation of the hex strings (NULL-terminated list) into out. */
static size_t
hexcat(uint8_t *out, size_t cap, ...)
{
	const char *h;
	size_t n = 0, k;
	va_list ap;

	va_start(ap, cap);
	while ((h = va_arg(ap, const char *)) != NULL) {
		k = strlen(h) / 2;
		assert_int_equal(strlen(h) % 2, 0);
		assert_true(n + k <= cap);
		assert_int_equal(bs_hex_decode(h, 2 * k, out + n, k, 0), 0);
		n += k;
	}
	va_end(ap);
	return n;
}

#define HEX(buf, ...) hexcat((buf), sizeof(buf), __VA_ARGS__, (const char *)NULL)

static void
assert_bytes(const uint8_t *got, size_t got_len, const char *want_hex)
{
	static uint8_t want[BUF_MAX];
	size_t n = HEX(want, want_hex);

	assert_int_equal(got_len, n);
	assert_memory_equal(got, want, n);
}

static EVP_PKEY *
c21_key(void)
{
	uint8_t der[128];
	const uint8_t *p = der;
	size_t n = HEX(der, P256_SPKI_PREFIX, C21_X, C21_Y);
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)n);

	assert_non_null(pk);
	return pk;
}

/* 1 if raw r||s verifies over tbs with ES256 */
static int
es256_verify(EVP_PKEY *pk, const uint8_t *tbs, size_t tbs_len, const uint8_t *raw, size_t raw_len)
{
	uint8_t der[ECDSA_P256_DER_MAX];
	size_t der_len;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	assert_int_equal(raw_len, ECDSA_P256_RAW_LEN);
	assert_int_equal(ecdsa_sig_raw_to_der(raw, der, sizeof(der), &der_len), 0);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	ok = EVP_DigestVerify(ctx, der, der_len, tbs, tbs_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---- Sig_structure and the vectors ------------------------------------------------- */

static void
test_c21_vector(void **state)
{
	uint8_t prot[3], content[20], token[256], *tbs = NULL;
	size_t tbs_len, n;
	struct cose_sign1 s;
	EVP_PKEY *pk = c21_key();

	(void)state;
	(void)HEX(prot, "a10126");
	(void)HEX(content, CONTENT);
	assert_int_equal(cose_sig_structure(prot, 3, NULL, 0, content, 20, &tbs, &tbs_len), 0);
	assert_bytes(tbs, tbs_len, C21_TBS);

	/* the signature of the vector verifies over our ToBeSign */
	n = HEX(token, C21_SIG);
	assert_true(es256_verify(pk, tbs, tbs_len, token, n));
	tbs[tbs_len - 1] ^= 1;
	assert_false(es256_verify(pk, tbs, tbs_len, token, n));
	free(tbs);

	/* the vector's token has its kid unprotected: refused, *out left zero */
	n = HEX(token, C21_TOKEN);
	memset(&s, 0xa5, sizeof(s));
	assert_int_equal(cose_sign1_decode(token, n, &s), BS_ERR_INVALID);
	assert_null(s.prot);
	assert_null(s.payload);
	assert_int_equal(s.alg, 0);
	assert_int_equal(s.sig_len, 0);

	/* with an empty unprotected map it is ours, and still verifies */
	n = HEX(token, OK_TOKEN);
	assert_int_equal(cose_sign1_decode(token, n, &s), 0);
	assert_int_equal(s.alg, COSE_ALG_ES256);
	assert_null(s.kid);
	assert_int_equal(s.kid_len, 0);
	assert_bytes(s.prot, s.prot_len, "a10126");
	assert_bytes(s.payload, s.payload_len, CONTENT);
	assert_bytes(s.sig, s.sig_len, C21_SIG);
	assert_int_equal(cose_sig_structure(s.prot, s.prot_len, NULL, 0, s.payload, s.payload_len,
	    &tbs, &tbs_len), 0);
	assert_true(es256_verify(pk, tbs, tbs_len, s.sig, s.sig_len));
	free(tbs);
	/* and encodes back to itself */
	{
		uint8_t *again = NULL;
		size_t again_len;

		assert_int_equal(cose_sign1_encode(s.prot, s.prot_len, s.payload, s.payload_len,
		    s.sig, s.sig_len, &again, &again_len), 0);
		assert_bytes(again, again_len, OK_TOKEN);
		free(again);
	}
	cose_sign1_free(&s);
	assert_null(s.prot);
	cose_sign1_free(&s);
	cose_sign1_free(NULL);
	EVP_PKEY_free(pk);
}

static void
test_sign_pass_02(void **state)
{
	uint8_t prot[3], aad[12], content[20], *tbs = NULL;
	size_t tbs_len;

	(void)state;
	(void)HEX(prot, "a10126");
	(void)HEX(aad, "11aa22bb33cc44dd55006699");
	(void)HEX(content, CONTENT);
	assert_int_equal(cose_sig_structure(prot, 3, aad, 12, content, 20, &tbs, &tbs_len), 0);
	assert_bytes(tbs, tbs_len, PASS02_TBS);
	free(tbs);
	/* everything empty */
	assert_int_equal(cose_sig_structure(NULL, 0, NULL, 0, NULL, 0, &tbs, &tbs_len), 0);
	assert_bytes(tbs, tbs_len, "846a5369676e617475726531404040");
	free(tbs);
	/* a NULL pointer with a length */
	assert_int_equal(cose_sig_structure(NULL, 1, NULL, 0, NULL, 0, &tbs, &tbs_len),
	    BS_ERR_INVALID);
	assert_int_equal(cose_sig_structure(prot, 3, NULL, 1, NULL, 0, &tbs, &tbs_len),
	    BS_ERR_INVALID);
	assert_int_equal(cose_sig_structure(prot, 3, NULL, 0, content, 20, NULL, &tbs_len),
	    BS_ERR_INVALID);
}

static void
test_eddsa_sig_01(void **state)
{
	uint8_t prot[5], content[20], d[32], sig[64], token[256], *tbs = NULL, *out = NULL;
	size_t tbs_len, sig_len = sizeof(sig), out_len, n;
	struct cose_sign1 s;
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx;

	(void)state;
	(void)HEX(prot, ED_PROT);
	(void)HEX(content, CONTENT);
	(void)HEX(d, ED_D);
	assert_int_equal(cose_sig_structure(prot, 5, NULL, 0, content, 20, &tbs, &tbs_len), 0);
	assert_bytes(tbs, tbs_len, ED_TBS);

	/* Ed25519 is deterministic: OpenSSL reproduces the vector's signature */
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, sizeof(d));
	assert_non_null(pk);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, tbs, tbs_len), 1);
	assert_bytes(sig, sig_len, ED_SIG);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	free(tbs);

	/* the encoder takes the header bytes as they are; unprotected is always {} */
	assert_int_equal(cose_sign1_encode(prot, 5, content, 20, sig, 64, &out, &out_len), 0);
	assert_bytes(out, out_len, "d28445a201270300a054" CONTENT "5840" ED_SIG);
	/* which the decoder refuses for label 3, like the vector itself */
	assert_int_equal(cose_sign1_decode(out, out_len, &s), BS_ERR_INVALID);
	free(out);
	n = HEX(token, ED_TOKEN);
	assert_int_equal(cose_sign1_decode(token, n, &s), BS_ERR_INVALID);
}

/* ---- protected headers ------------------------------------------------------------- */

static void
prot_is(int64_t alg, const char *kid_hex, const char *want)
{
	uint8_t kid[64], *out = NULL;
	size_t kid_len = kid_hex != NULL ? HEX(kid, kid_hex) : 0, out_len = 0;

	assert_int_equal(cose_protected_encode(alg, kid_hex != NULL ? kid : NULL, kid_len, &out,
	    &out_len), 0);
	assert_bytes(out, out_len, want);
	free(out);
}

#define THUMB "6b50724b5f716d7856576159564139777742463649756f3376567a7a37547848" \
	"435477584279677253346b"       /* "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", 43 bytes */

static void
test_protected(void **state)
{
	static uint8_t big[COSE_TOKEN_MAX + 1];
	uint8_t *out = NULL;
	size_t out_len;

	(void)state;
	prot_is(COSE_ALG_ES256, NULL, "a10126");
	prot_is(COSE_ALG_EDDSA, NULL, "a10127");
	prot_is(COSE_ALG_ES256, THUMB, "a20126" "04582b" THUMB);
	prot_is(COSE_ALG_EDDSA, THUMB, "a20127" "04582b" THUMB);
	prot_is(-35, "3131", "a2013822" "04423131");
	prot_is(-19, "00", "a20132" "044100");
	prot_is(-24, NULL, "a10137");
	prot_is(-25, NULL, "a1013818");
	prot_is(-65536, NULL, "a10139ffff");
	prot_is(-65537, "000102030405060708090a0b0c0d0e0f1011121314151617",
	    "a2013a00010000" "045818000102030405060708090a0b0c0d0e0f1011121314151617");
	prot_is(1000, NULL, "a1011903e8");
	prot_is(INT64_MIN, NULL, "a1013b7fffffffffffffff");
	prot_is(INT64_MAX, NULL, "a1011b7fffffffffffffff");
	assert_int_equal(cose_protected_encode(-7, NULL, 1, &out, &out_len), BS_ERR_INVALID);
	assert_int_equal(cose_protected_encode(-7, NULL, 0, NULL, &out_len), BS_ERR_INVALID);
	assert_int_equal(cose_protected_encode(-7, big, sizeof(big), &out, &out_len),
	    BS_ERR_TOO_BIG);
	/* a2 01 26 04 59 hh hh: 7 bytes around the kid */
	assert_int_equal(cose_protected_encode(-7, big, COSE_TOKEN_MAX - 6, &out, &out_len),
	    BS_ERR_TOO_BIG);
	assert_int_equal(cose_protected_encode(-7, big, COSE_TOKEN_MAX - 7, &out, &out_len), 0);
	assert_int_equal(out_len, COSE_TOKEN_MAX);
	free(out);
}

/* ---- COSE_Sign1 encode, decode, refuse ------------------------------------------- */

static void
test_sign1_round_trip(void **state)
{
	static uint8_t payload[COSE_TOKEN_MAX];
	uint8_t sig[64], *prot = NULL, *tok = NULL;
	size_t prot_len, tok_len, i;
	struct cose_sign1 s;

	(void)state;
	for (i = 0; i < sizeof(sig); i++)
		sig[i] = (uint8_t)(0xc0 + i);
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	assert_int_equal(cose_protected_encode(COSE_ALG_EDDSA, (const uint8_t *)"kid-1", 5, &prot,
	    &prot_len), 0);
	assert_int_equal(cose_sign1_encode(prot, prot_len, payload, 300, sig, 64, &tok, &tok_len),
	    0);
	assert_int_equal(tok_len, 1 + 1 + 1 + prot_len + 1 + 3 + 300 + 2 + 64);
	assert_int_equal(cose_sign1_decode(tok, tok_len, &s), 0);
	assert_memory_equal(s.prot, prot, prot_len);
	assert_int_equal(s.prot_len, prot_len);
	assert_int_equal(s.alg, COSE_ALG_EDDSA);
	assert_int_equal(s.kid_len, 5);
	assert_memory_equal(s.kid, "kid-1", 5);
	assert_int_equal(s.payload_len, 300);
	assert_memory_equal(s.payload, payload, 300);
	assert_int_equal(s.sig_len, 64);
	assert_memory_equal(s.sig, sig, 64);
	cose_sign1_free(&s);
	free(tok);

	/* empty payload and signature: not NULL after decoding */
	assert_int_equal(cose_sign1_encode(prot, prot_len, NULL, 0, NULL, 0, &tok, &tok_len), 0);
	assert_int_equal(cose_sign1_decode(tok, tok_len, &s), 0);
	assert_non_null(s.payload);
	assert_int_equal(s.payload_len, 0);
	assert_non_null(s.sig);
	assert_int_equal(s.sig_len, 0);
	cose_sign1_free(&s);
	free(tok);
	free(prot);

	/* exactly COSE_TOKEN_MAX: 76 bytes around the payload with a 3-byte header */
	assert_int_equal(cose_protected_encode(COSE_ALG_ES256, NULL, 0, &prot, &prot_len), 0);
	assert_int_equal(cose_sign1_encode(prot, 3, payload, COSE_TOKEN_MAX - 76, sig, 64, &tok,
	    &tok_len), 0);
	assert_int_equal(tok_len, COSE_TOKEN_MAX);
	assert_int_equal(cose_sign1_decode(tok, tok_len, &s), 0);
	assert_int_equal(s.payload_len, COSE_TOKEN_MAX - 76);
	cose_sign1_free(&s);
	free(tok);
	tok = NULL;
	assert_int_equal(cose_sign1_encode(prot, 3, payload, COSE_TOKEN_MAX - 75, sig, 64, &tok,
	    &tok_len), BS_ERR_TOO_BIG);
	assert_null(tok);
	assert_int_equal(cose_sign1_encode(prot, 3, payload, sizeof(payload), sig, 64, &tok,
	    &tok_len), BS_ERR_TOO_BIG);
	assert_int_equal(cose_sign1_encode(NULL, 3, payload, 1, sig, 64, &tok, &tok_len),
	    BS_ERR_INVALID);
	free(prot);
}

static void
sign1_refused(int want, const uint8_t *in, size_t len)
{
	struct cose_sign1 s;
	static const struct cose_sign1 zero;

	memset(&s, 0x5a, sizeof(s));
	assert_int_equal(cose_sign1_decode(in, len, &s), want);
	assert_memory_equal(&s, &zero, sizeof(s));
}

#define REFUSE_TOKEN(...) do { \
	uint8_t b_[512]; \
	sign1_refused(BS_ERR_INVALID, b_, HEX(b_, __VA_ARGS__)); \
} while (0)

/* a token around the protected header bytes ph (hex, with their bstr head) */
#define WITH_PROT(ph) "d284" ph "a0" "54" CONTENT "5840" C21_SIG

static void
test_sign1_refusals(void **state)
{
	static uint8_t big[COSE_TOKEN_MAX + 1];
	uint8_t b[512];
	size_t n;

	(void)state;
	n = HEX(b, OK_TOKEN);
	{
		struct cose_sign1 s;

		assert_int_equal(cose_sign1_decode(b, n, &s), 0);
		cose_sign1_free(&s);
	}
	/* trailing byte, cut short, nothing */
	REFUSE_TOKEN(OK_TOKEN, "00");
	sign1_refused(BS_ERR_INVALID, b, n - 1);
	sign1_refused(BS_ERR_INVALID, b, 0);
	sign1_refused(BS_ERR_INVALID, NULL, 5);
	assert_int_equal(cose_sign1_decode(b, n, NULL), BS_ERR_INVALID);
	/* tags: wrong, missing, long form, twice */
	REFUSE_TOKEN("d1", OK_TOKEN + 2);
	REFUSE_TOKEN(OK_TOKEN + 2);
	REFUSE_TOKEN("d812", OK_TOKEN + 2);
	REFUSE_TOKEN("d2", OK_TOKEN);
	REFUSE_TOKEN("d2");
	/* array shape */
	REFUSE_TOKEN("d283" "43a10126" "a0" "54" CONTENT);
	REFUSE_TOKEN("d285" "43a10126" "a0" "54" CONTENT "5840" C21_SIG "40");
	REFUSE_TOKEN("d29804" "43a10126" "a0" "54" CONTENT "5840" C21_SIG);
	REFUSE_TOKEN("d2a4" "43a10126" "a0" "54" CONTENT "5840" C21_SIG);
	/* indefinite lengths: array, payload, unprotected map */
	REFUSE_TOKEN("d29f" "43a10126" "a0" "54" CONTENT "5840" C21_SIG "ff");
	REFUSE_TOKEN("d284" "43a10126" "a0" "5f54" CONTENT "ff" "5840" C21_SIG);
	REFUSE_TOKEN("d284" "43a10126" "bfff" "54" CONTENT "5840" C21_SIG);
	REFUSE_TOKEN("d284" "5f43a10126ff" "a0" "54" CONTENT "5840" C21_SIG);
	/* non-shortest length heads */
	REFUSE_TOKEN("d284" "43a10126" "a0" "5814" CONTENT "5840" C21_SIG);
	REFUSE_TOKEN("d284" "43a10126" "b800" "54" CONTENT "5840" C21_SIG);
	/* unprotected not empty (the vector), not a map */
	REFUSE_TOKEN(C21_TOKEN);
	REFUSE_TOKEN("d284" "43a10126" "80" "54" CONTENT "5840" C21_SIG);
	/* payload nil (detached), payload text; signature not a bstr */
	REFUSE_TOKEN("d284" "43a10126" "a0" "f6" "5840" C21_SIG);
	REFUSE_TOKEN("d284" "43a10126" "a0" "74" CONTENT "5840" C21_SIG);
	REFUSE_TOKEN("d284" "43a10126" "a0" "54" CONTENT "f6");
	/* protected: not a bstr, empty, not a map, trailing byte inside */
	REFUSE_TOKEN("d284" "a10126" "a0" "54" CONTENT "5840" C21_SIG);
	REFUSE_TOKEN(WITH_PROT("40"));
	REFUSE_TOKEN(WITH_PROT("41a0"));
	REFUSE_TOKEN(WITH_PROT("4101"));
	REFUSE_TOKEN(WITH_PROT("44a1012600"));
	/* crit (2), content type (3), an unknown label, a negative or text label */
	REFUSE_TOKEN(WITH_PROT("46a20126028101"));
	REFUSE_TOKEN(WITH_PROT("45a201260300"));
	REFUSE_TOKEN(WITH_PROT("45a201260500"));
	REFUSE_TOKEN(WITH_PROT("45a201262000"));
	REFUSE_TOKEN(WITH_PROT("48a2012663616c6700"));
	/* duplicate labels, alg missing, alg or kid of the wrong type */
	REFUSE_TOKEN(WITH_PROT("45a201260126"));
	REFUSE_TOKEN(WITH_PROT("49a30126044101044102"));
	REFUSE_TOKEN(WITH_PROT("44a1044101"));
	REFUSE_TOKEN(WITH_PROT("46a10163455332"));
	REFUSE_TOKEN(WITH_PROT("44a1014100"));
	REFUSE_TOKEN(WITH_PROT("46a20126046131"));
	/* alg outside int64 */
	REFUSE_TOKEN(WITH_PROT("4ba1011bffffffffffffffff"));
	REFUSE_TOKEN(WITH_PROT("4ba1013b8000000000000000"));
	/* not deterministic: -7 as 0x38 0x06, labels out of order, an empty kid */
	REFUSE_TOKEN(WITH_PROT("44a1013806"));
	REFUSE_TOKEN(WITH_PROT("46a2044101" "0126"));
	REFUSE_TOKEN(WITH_PROT("45a2012604" "40"));
	REFUSE_TOKEN(WITH_PROT("44a1" "1801" "26"));
	/* but the deterministic forms of these are fine */
	n = HEX(b, WITH_PROT("46a2012604" "4101"));
	{
		struct cose_sign1 s;

		assert_int_equal(cose_sign1_decode(b, n, &s), 0);
		assert_int_equal(s.kid_len, 1);
		cose_sign1_free(&s);
	}
	/* a declared count libcbor 0.8 would try to allocate before reading on */
	REFUSE_TOKEN("9b0000010000000000");
	REFUSE_TOKEN("d29b0000010000000000");
	REFUSE_TOKEN("bb0000001000000000");
	REFUSE_TOKEN("5b0000001000000000");
	/* reserved and break heads, a simple value in two bytes */
	REFUSE_TOKEN("1c");
	REFUSE_TOKEN("ff");
	REFUSE_TOKEN("f810");
	/* over COSE_TOKEN_MAX */
	memcpy(big, b, n);
	sign1_refused(BS_ERR_TOO_BIG, big, sizeof(big));
}

/* ---- claims -------------------------------------------------------------------------- */

static const uint8_t fixture_cti[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void
fixture(struct cose_claims *c, const json_t *args)
{
	memset(c, 0, sizeof(*c));
	c->iss = "boltseal";
	c->sub = "VIN1";
	c->aud = "veh";
	c->iat = 1700000000;
	c->nbf = 1699999990;
	c->exp = 1700000030;
	memcpy(c->cti, fixture_cti, sizeof(c->cti));
	c->seq = 500;
	c->cmd = "unlock";
	c->args = args;
}

static json_t *
json_ok(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);

	if (v == NULL)
		fail_msg("bad JSON in a test: %s", e.text);
	return v;
}

static int
encode_rc(const struct cose_claims *c)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = cose_claims_encode(c, &out, &out_len);

	if (rc != 0)
		assert_null(out);
	free(out);
	return rc;
}

static void
test_claims_vector(void **state)
{
	static const char *const order[] = { "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "seq",
		"cmd", "args" };
	struct cose_claims c;
	json_t *args = json_ok(ARGS_JSON), *got = NULL, *want;
	uint8_t *out = NULL;
	size_t out_len, i;
	const char *k;
	json_t *v;

	(void)state;
	fixture(&c, args);
	assert_int_equal(cose_claims_encode(&c, &out, &out_len), 0);
	assert_bytes(out, out_len, H_CLAIMS);

	/* decoded: the JWS claim names, in their order, and the same args */
	assert_int_equal(cose_claims_decode(out, out_len, &got), 0);
	want = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:O}", "iss", "boltseal",
	    "sub", "VIN1", "aud", "veh", "iat", (json_int_t)1700000000, "nbf",
	    (json_int_t)1699999990, "exp", (json_int_t)1700000030, "jti",
	    "000102030405060708090a0b0c0d0e0f", "seq", (json_int_t)500, "cmd", "unlock", "args",
	    args);
	assert_non_null(want);
	assert_true(json_equal(got, want));
	i = 0;
	json_object_foreach(got, k, v)
		assert_string_equal(k, order[i++]);
	assert_int_equal(i, 10);
	json_decref(want);
	json_decref(got);
	free(out);
	json_decref(args);
}

/* an args object {"a": <k nested arrays>} */
static json_t *
nested_args(int k)
{
	json_t *v = json_array(), *a;

	for (int i = 1; i < k; i++) {
		a = json_array();
		assert_int_equal(json_array_append_new(a, v), 0);
		v = a;
	}
	a = json_object();
	assert_int_equal(json_object_set_new(a, "a", v), 0);
	return a;
}

/* an args object of n members "k00".., each 0 */
static json_t *
wide_args(int n)
{
	json_t *o = json_object();
	char key[8];

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		assert_int_equal(json_object_set_new(o, key, json_integer(0)), 0);
	}
	return o;
}

static void
round_trip(const json_t *args)
{
	struct cose_claims c;
	uint8_t *out = NULL, *again = NULL;
	size_t out_len, again_len;
	json_t *got = NULL;

	fixture(&c, args);
	assert_int_equal(cose_claims_encode(&c, &out, &out_len), 0);
	assert_int_equal(cose_claims_decode(out, out_len, &got), 0);
	assert_true(json_equal(json_object_get(got, "args"), args));
	c.args = json_object_get(got, "args");
	assert_int_equal(cose_claims_encode(&c, &again, &again_len), 0);
	assert_int_equal(again_len, out_len);
	assert_memory_equal(again, out, out_len);
	free(again);
	free(out);
	json_decref(got);
}

static void
test_claims_encode_limits(void **state)
{
	static char longs[COSE_TOKEN_MAX + 2];
	char s129[130], s65[66], key[COSE_ARGS_KEY_MAX + 2];
	struct cose_claims c;
	json_t *args = json_object(), *a;

	(void)state;
	memset(s129, 'i', 129);
	s129[129] = '\0';
	memset(s65, 'c', 65);
	s65[65] = '\0';
	fixture(&c, args);
	assert_int_equal(encode_rc(&c), 0);
	round_trip(args);

	/* strings: absent, empty, too long, control characters, bad UTF-8 */
	c.iss = NULL;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.iss = "";
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.iss = s129;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.iss = s129 + 1;     /* 128 */
	assert_int_equal(encode_rc(&c), 0);
	c.aud = "a\tb";
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.aud = "a\x7f";
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.aud = "\xc3\x28";
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.aud = "\xe2\x82\xac";   /* U+20AC */
	assert_int_equal(encode_rc(&c), 0);
	c.cmd = s65;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.cmd = s65 + 1;
	assert_int_equal(encode_rc(&c), 0);
	/* times, seq */
	fixture(&c, args);
	c.iat = -1;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.iat = COSE_CLAIM_TIME_MAX + 1;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.iat = COSE_CLAIM_TIME_MAX;
	c.nbf = 0;
	assert_int_equal(encode_rc(&c), 0);
	c.seq = 0;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.seq = (uint64_t)INT64_MAX + 1;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	c.seq = INT64_MAX;
	assert_int_equal(encode_rc(&c), 0);
	/* args: not an object, a real, a bad string or key */
	fixture(&c, NULL);
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	a = json_ok("[1]");
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	a = json_ok("{\"x\":[1.5]}");
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	a = json_ok("{\"x\":\"a\\nb\"}");
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	a = json_ok("{\"x\\u0001\":1}");
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	a = json_object();
	assert_int_equal(json_object_set_new(a, "nul", json_stringn("a\0b", 3)), 0);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	/* keys of 256 and 257 bytes */
	memset(key, 'k', sizeof(key) - 1);
	key[COSE_ARGS_KEY_MAX] = '\0';
	a = json_object();
	assert_int_equal(json_object_set_new(a, key, json_true()), 0);
	round_trip(a);
	key[COSE_ARGS_KEY_MAX] = 'k';
	key[COSE_ARGS_KEY_MAX + 1] = '\0';
	assert_int_equal(json_object_set_new(a, key, json_true()), 0);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	/* depth 16 with the claims at 1: args 2, then 14 arrays; 15 is one too many */
	a = nested_args(14);
	round_trip(a);
	json_decref(a);
	a = nested_args(15);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	/* 64 members, 65 */
	a = wide_args(64);
	round_trip(a);
	json_decref(a);
	a = wide_args(65);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_INVALID);
	json_decref(a);
	/* too big for a token */
	memset(longs, 'x', sizeof(longs) - 1);
	a = json_object();
	assert_int_equal(json_object_set_new(a, "s", json_string(longs)), 0);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_TOO_BIG);
	json_decref(a);
	longs[COSE_TOKEN_MAX - 50] = '\0';    /* passes the early bound, not the token (88 more) */
	a = json_object();
	assert_int_equal(json_object_set_new(a, "s", json_string(longs)), 0);
	c.args = a;
	assert_int_equal(encode_rc(&c), BS_ERR_TOO_BIG);
	json_decref(a);
	longs[COSE_TOKEN_MAX - 300] = '\0';
	a = json_object();
	assert_int_equal(json_object_set_new(a, "s", json_string(longs)), 0);
	round_trip(a);
	json_decref(a);
	assert_int_equal(cose_claims_encode(NULL, NULL, NULL), BS_ERR_INVALID);
	json_decref(args);
}

static void
claims_refused(const uint8_t *in, size_t len)
{
	json_t *sentinel = json_null(), *out = sentinel;

	assert_int_equal(cose_claims_decode(in, len, &out), BS_ERR_INVALID);
	assert_ptr_equal(out, sentinel);
}

#define REFUSE_CLAIMS(...) do { \
	uint8_t b_[1024]; \
	claims_refused(b_, HEX(b_, __VA_ARGS__)); \
} while (0)

#define ACCEPT_CLAIMS(...) do { \
	uint8_t b_[1024]; \
	json_t *j_ = NULL; \
	assert_int_equal(cose_claims_decode(b_, HEX(b_, __VA_ARGS__), &j_), 0); \
	json_decref(j_); \
} while (0)

/* claims with args given as hex */
#define ARGS(h) "aa" H_HEAD h

static void
test_claims_refusals(void **state)
{
	static uint8_t b[BUF_MAX];
	size_t n, i;

	(void)state;
	ACCEPT_CLAIMS(H_CLAIMS);
	ACCEPT_CLAIMS(ARGS("a0"));
	/* trailing byte, cut short, not a map, indefinite map */
	REFUSE_CLAIMS(H_CLAIMS, "00");
	n = HEX(b, H_CLAIMS);
	claims_refused(b, n - 1);
	claims_refused(b, 0);
	claims_refused(NULL, 0);
	REFUSE_CLAIMS("8a", H_HEAD "a0");
	REFUSE_CLAIMS("bf", H_HEAD "a0" "ff");
	REFUSE_CLAIMS("d83d", H_CLAIMS);                      /* CWT tag 61 */
	/* an extra claim, a missing one, an unknown one in its place, a duplicate */
	REFUSE_CLAIMS("ab" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI "0800" H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("a9" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT "0800" H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_ISS H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ "6441524753" "a0");
	/* out of order: sub before iss, "seq" before "cmd" */
	REFUSE_CLAIMS("aa" H_SUB H_ISS H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_SEQ H_CMD H_ARGS_KEY "a0");
	/* claim types: cti of 17 and 15 bytes, as text; seq 0, negative, too big, as text */
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT
	    "0751000102030405060708090a0b0c0d0e0f10" H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT
	    "074f000102030405060708090a0b0c0d0e" H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT
	    "0770000102030405060708090a0b0c0d0e0f" H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571" "00"
	    H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571" "20"
	    H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571"
	    "1b8000000000000000" H_ARGS_KEY "a0");
	ACCEPT_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571"
	    "1b7fffffffffffffff" H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571" "6131"
	    H_ARGS_KEY "a0");
	/* seq as 0x18 0x01 (not shortest) */
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD "63736571" "1801"
	    H_ARGS_KEY "a0");
	/* times: negative, past 9999-12-31, at it, as a float, as tag 1 */
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF "0620" H_CTI H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF "061b0000003afff44180" H_CTI H_CMD H_SEQ
	    H_ARGS_KEY "a0");
	ACCEPT_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF "061b0000003afff4417f" H_CTI H_CMD H_SEQ
	    H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF "06fb41d954fc40000000" H_CTI H_CMD
	    H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF "06c11a6553f100" H_CTI H_CMD H_SEQ
	    H_ARGS_KEY "a0");
	/* strings: empty, control character, NUL, DEL, bad UTF-8, a bstr, cmd of 65 */
	REFUSE_CLAIMS("aa" "0160" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY "a0");
	REFUSE_CLAIMS("aa" "0162610a" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY
	    "a0");
	REFUSE_CLAIMS("aa" "01626100" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY
	    "a0");
	REFUSE_CLAIMS("aa" "0162617f" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY
	    "a0");
	REFUSE_CLAIMS("aa" "0162c328" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY
	    "a0");
	REFUSE_CLAIMS("aa" "01426161" H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI H_CMD H_SEQ H_ARGS_KEY
	    "a0");
	REFUSE_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI "63636d64" "7841"
	    "6161616161616161616161616161616161616161616161616161616161616161"
	    "6161616161616161616161616161616161616161616161616161616161616161" "61"
	    H_SEQ H_ARGS_KEY "a0");
	ACCEPT_CLAIMS("aa" H_ISS H_SUB H_AUD H_EXP H_NBF H_IAT H_CTI "63636d64" "7840"
	    "6161616161616161616161616161616161616161616161616161616161616161"
	    "6161616161616161616161616161616161616161616161616161616161616161"
	    H_SEQ H_ARGS_KEY "a0");
	/* args: not a map; a float (half, double); undefined; a simple value; a tag; a bstr */
	REFUSE_CLAIMS(ARGS("80"));
	REFUSE_CLAIMS(ARGS("f6"));
	REFUSE_CLAIMS(ARGS("a16166" "f93e00"));
	REFUSE_CLAIMS(ARGS("a16166" "fb3ff8000000000000"));
	REFUSE_CLAIMS(ARGS("a16166" "f7"));
	REFUSE_CLAIMS(ARGS("a16166" "f0"));
	REFUSE_CLAIMS(ARGS("a16166" "f820"));
	REFUSE_CLAIMS(ARGS("a16166" "c100"));
	REFUSE_CLAIMS(ARGS("a16166" "4100"));
	ACCEPT_CLAIMS(ARGS("a3" "6166" "f4" "6167" "f5" "6168" "f6"));
	/* args keys: not text, duplicate, out of order (bytewise, by length), nested duplicate */
	REFUSE_CLAIMS(ARGS("a10100"));
	REFUSE_CLAIMS(ARGS("a2616101616102"));
	REFUSE_CLAIMS(ARGS("a2616201616102"));
	REFUSE_CLAIMS(ARGS("a2626161016162" "02"));
	ACCEPT_CLAIMS(ARGS("a2616201626161" "02"));
	REFUSE_CLAIMS(ARGS("a1616181" "a2616101616102"));
	/* args: integers outside int64, not shortest; indefinite string, array, map */
	REFUSE_CLAIMS(ARGS("a16169" "1b8000000000000000"));
	REFUSE_CLAIMS(ARGS("a16169" "3b8000000000000000"));
	ACCEPT_CLAIMS(ARGS("a16169" "3b7fffffffffffffff"));
	REFUSE_CLAIMS(ARGS("a16169" "1805"));
	REFUSE_CLAIMS(ARGS("a16169" "390001"));
	REFUSE_CLAIMS(ARGS("a16169" "7f6161ff"));
	REFUSE_CLAIMS(ARGS("a16169" "9f01ff"));
	REFUSE_CLAIMS(ARGS("bf616901ff"));
	/* args strings with a control character, bad UTF-8 (overlong, surrogate) */
	REFUSE_CLAIMS(ARGS("a16169" "621b5b"));
	REFUSE_CLAIMS(ARGS("a16169" "62c0af"));
	REFUSE_CLAIMS(ARGS("a16169" "63eda080"));
	ACCEPT_CLAIMS(ARGS("a16169" "64f09f9880"));
	/* a key of 257 bytes (and 256, fine) */
	n = HEX(b, ARGS("a1" "790101"));
	memset(b + n, 'k', 257);
	b[n + 257] = 0x00;
	claims_refused(b, n + 258);
	n = HEX(b, ARGS("a1" "790100"));
	memset(b + n, 'k', 256);
	b[n + 256] = 0x00;
	{
		json_t *j = NULL;

		assert_int_equal(cose_claims_decode(b, n + 257, &j), 0);
		json_decref(j);
	}
	/* depth: args at 2 holding 14 nested arrays is 16; 15 is 17 */
	n = HEX(b, ARGS("a16161"));
	for (i = 0; i < 13; i++)
		b[n++] = 0x81;
	b[n++] = 0x80;
	{
		json_t *j = NULL;

		assert_int_equal(cose_claims_decode(b, n, &j), 0);
		json_decref(j);
	}
	n = HEX(b, ARGS("a16161"));
	for (i = 0; i < 14; i++)
		b[n++] = 0x81;
	b[n++] = 0x80;
	claims_refused(b, n);
	n = HEX(b, ARGS("a16161"));
	for (i = 0; i < 14; i++)
		b[n++] = 0xa1, b[n++] = 0x60;
	b[n++] = 0xa0;
	claims_refused(b, n);
	/* 64 members, 65 */
	for (int m = 64; m <= 65; m++) {
		json_t *j = NULL;

		n = HEX(b, ARGS("b8"));
		b[n++] = (uint8_t)m;
		for (i = 0; i < (size_t)m; i++) {
			b[n++] = 0x63;
			b[n++] = 'k';
			b[n++] = (uint8_t)('0' + i / 10);
			b[n++] = (uint8_t)('0' + i % 10);
			b[n++] = 0x00;
		}
		assert_int_equal(cose_claims_decode(b, n, &j), m == 64 ? 0 : BS_ERR_INVALID);
		json_decref(j);
	}
	/* over COSE_TOKEN_MAX */
	n = HEX(b, ARGS("a16173" "7a00004000"));
	memset(b + n, 'x', 0x4000);
	claims_refused(b, n + 0x4000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c21_vector),
		cmocka_unit_test(test_sign_pass_02),
		cmocka_unit_test(test_eddsa_sig_01),
		cmocka_unit_test(test_protected),
		cmocka_unit_test(test_sign1_round_trip),
		cmocka_unit_test(test_sign1_refusals),
		cmocka_unit_test(test_claims_vector),
		cmocka_unit_test(test_claims_encode_limits),
		cmocka_unit_test(test_claims_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
