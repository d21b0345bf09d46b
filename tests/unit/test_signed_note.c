/*
 * test_signed_note.c - unit tests for src/formats/signed_note.c against the
 * golang.org/x/mod/sumdb/note and C2SP vectors (wire-formats.md 2.2/2.3):
 * key ids, exact vkey round trips, every substring and every single-byte
 * change of a vkey rejected, OpenSSL Ed25519 signing with the Go seed
 * reproducing the known signature line, the Go/C2SP notes opening with
 * their keys, the Go Open negatives (malformed notes, bad and unknown
 * signatures, too many signatures) and more, and checkpoint bodies (the
 * C2SP example, Rekor's, round trips, strictness).
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

#include "formats/signed_note.h"

/* ---- vectors ------------------------------------------------------------ */

#define PN_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define PN_PUB "1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6"
#define PN_SEED "810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173"
#define ENOCH_VKEY "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
#define FOO_VKEY "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

#define PN_TEXT "If you think cryptography is the answer to your problem,\n" \
	"then you don't know what your problem is.\n"
#define PN_SIG "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
#define ENOCH_SIG "\xe2\x80\x94 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
#define FOO_TEXT "This is an example message.\n"
#define FOO_SIG "\xe2\x80\x94 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"

#define SOFA_BODY "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
#define SOFA_ROOT_B64 "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="

/* ---- helpers ------------------------------------------------------------- */

static void
unhex(const char *hex, uint8_t *out, size_t n)
{
	size_t i;

	assert_int_equal(strlen(hex), 2 * n);
	for (i = 0; i < n; i++) {
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
}

/* Independent base64 decode (OpenSSL) for test expectations; returns the length without padding. */
static size_t
ossl_b64(const char *b64, uint8_t *out, size_t cap)
{
	size_t n = strlen(b64), pad = 0;
	int r;

	assert_true(n % 4 == 0 && n / 4 * 3 <= cap);
	r = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	assert_true(r >= 0);
	if (n > 0 && b64[n - 1] == '=')
		pad++;
	if (n > 1 && b64[n - 2] == '=')
		pad++;
	return (size_t)r - pad;
}

static void
verifier(const char *vkey, struct note_verifier *v)
{
	assert_int_equal(note_vkey_parse(vkey, v), 0);
}

/* Opens the NUL-terminated msg; returns the result, and *tl the text length. */
static int
open_str(const char *msg, const struct note_verifier *v, size_t nv, size_t *tl)
{
	return note_open((const uint8_t *)msg, strlen(msg), v, nv, tl);
}

static char *
cat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	assert_non_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

/* Ed25519-signs msg with the 32-byte seed using OpenSSL. */
static void
ossl_sign(const uint8_t seed[32], const uint8_t *msg, size_t len, uint8_t sig[64], uint8_t pub[32])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = 64, publen = 32;

	assert_non_null(pk);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
	assert_int_equal(siglen, 64);
	if (pub != NULL) {
		assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &publen), 1);
		assert_int_equal(publen, 32);
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
}

/* text + "\n" + PeterNeumann signature line made with our formatting; caller frees. */
static char *
pn_note(const char *text)
{
	uint8_t seed[32], sig[64], id[4];
	char line[NOTE_SIG_LINE_MAX];

	unhex(PN_SEED, seed, 32);
	ossl_sign(seed, (const uint8_t *)text, strlen(text), sig, NULL);
	unhex("c74f20a3", id, 4);
	assert_int_equal(note_signature_line("PeterNeumann", id, sig, line, sizeof(line)), 0);
	return cat(text, "\n", line);
}

/* ---- names, key ids, vkeys ------------------------------------------------- */

static void
test_names(void **state)
{
	char longname[300];

	(void)state;
	assert_int_equal(note_name_valid("PeterNeumann"), 1);
	assert_int_equal(note_name_valid("example.com/log42"), 1);
	assert_int_equal(note_name_valid("caf\xc3\xa9"), 1);           /* UTF-8 ok */
	assert_int_equal(note_name_valid(NULL), 0);
	assert_int_equal(note_name_valid(""), 0);
	assert_int_equal(note_name_valid("a b"), 0);
	assert_int_equal(note_name_valid("a+b"), 0);
	assert_int_equal(note_name_valid("a\tb"), 0);
	assert_int_equal(note_name_valid("a\nb"), 0);
	assert_int_equal(note_name_valid("a\x01" "b"), 0);
	assert_int_equal(note_name_valid("a\x7f" "b"), 0);              /* DEL */
	assert_int_equal(note_name_valid("a\xc2\x80" "b"), 0);          /* C1 control */
	assert_int_equal(note_name_valid("a\xc2\xa0" "b"), 0);          /* NBSP */
	assert_int_equal(note_name_valid("a\xc2\x85" "b"), 0);          /* NEL */
	assert_int_equal(note_name_valid("a\xe2\x80\x89" "b"), 0);      /* U+2009 */
	assert_int_equal(note_name_valid("a\xe3\x80\x80" "b"), 0);      /* U+3000 */
	assert_int_equal(note_name_valid("a\xff" "b"), 0);
	assert_int_equal(note_name_valid("a\xc0\xaf" "b"), 0);          /* overlong */
	assert_int_equal(note_name_valid("a\xed\xa0\x80" "b"), 0);      /* surrogate */
	assert_int_equal(note_name_valid("a\xf4\x90\x80\x80" "b"), 0);  /* > U+10FFFF */
	assert_int_equal(note_name_valid("a\xe2\x80"), 0);              /* truncated */
	memset(longname, 'x', 255);
	longname[255] = '\0';
	assert_int_equal(note_name_valid(longname), 1);
	longname[255] = 'x';
	longname[256] = '\0';
	assert_int_equal(note_name_valid(longname), 0);
}

static void
test_key_ids(void **state)
{
	static const struct {
		const char *vkey, *name, *id;
	} v[] = {
		{ PN_VKEY, "PeterNeumann", "c74f20a3" },
		{ ENOCH_VKEY, "EnochRoot", "af0cfe78" },
		{ FOO_VKEY, "example.com/foo", "530d903a" },
	};
	uint8_t key[40], id[4], want[4], pnpub[32];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *b64 = strrchr(v[i].vkey, '+') + 1;

		n = ossl_b64(b64, key, sizeof(key));
		assert_int_equal(n, 33);
		assert_int_equal(key[0], 0x01);
		assert_int_equal(note_key_id_ed25519(v[i].name, key + 1, id), 0);
		unhex(v[i].id, want, 4);
		assert_memory_equal(id, want, 4);
		if (i == 0) {
			unhex(PN_PUB, pnpub, 32);
			assert_memory_equal(key + 1, pnpub, 32);
		}
	}
	memset(id, 0x55, 4);
	assert_int_equal(note_key_id_ed25519("bad name", key + 1, id), BS_ERR_INVALID);
	assert_int_equal(note_key_id_ed25519(NULL, key + 1, id), BS_ERR_INVALID);
	assert_int_equal(id[0], 0x55);
}

static void
test_vkey_roundtrip(void **state)
{
	static const char *const vkeys[] = { PN_VKEY, ENOCH_VKEY, FOO_VKEY };
	struct note_verifier v;
	char out[NOTE_VKEY_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < 3; i++) {
		memset(&v, 0xee, sizeof(v));
		assert_int_equal(note_vkey_parse(vkeys[i], &v), 0);
		n = strlen(vkeys[i]);
		assert_int_equal(strlen(v.name), (size_t)(strchr(vkeys[i], '+') - vkeys[i]));
		assert_int_equal(note_vkey_format(v.name, v.pub, out, sizeof(out)), 0);
		assert_string_equal(out, vkeys[i]);
		/* exactly enough room, then one byte short (no room for NUL) */
		assert_int_equal(note_vkey_format(v.name, v.pub, out, n + 1), 0);
		assert_string_equal(out, vkeys[i]);
		memset(out, 'Z', sizeof(out));
		assert_int_equal(note_vkey_format(v.name, v.pub, out, n), BS_ERR_TOO_BIG);
		assert_int_equal(out[0], 'Z');
	}
	verifier(PN_VKEY, &v);
	assert_string_equal(v.name, "PeterNeumann");
	{
		uint8_t pub[32], id[4];

		unhex(PN_PUB, pub, 32);
		unhex("c74f20a3", id, 4);
		assert_memory_equal(v.pub, pub, 32);
		assert_memory_equal(v.key_id, id, 4);
	}
	assert_int_equal(note_vkey_format("bad+name", v.pub, out, sizeof(out)), BS_ERR_INVALID);
	assert_int_equal(note_vkey_format("", v.pub, out, sizeof(out)), BS_ERR_INVALID);
}

static void
test_vkey_negatives(void **state)
{
	struct note_verifier v;
	char b[sizeof(PN_VKEY)], sub[sizeof(PN_VKEY)];
	size_t len = strlen(PN_VKEY), i, j;
	int c, rc;

	(void)state;
	/* Go's two negative vectors */
	assert_int_equal(note_vkey_parse("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", &v),
	    BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &v),
	    BS_ERR_UNSUPPORTED);
	/* Rekor's ECDSA vkey: Go-style hash does not match (type 0x02 hashes the SPKI) */
	assert_int_equal(note_vkey_parse("rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=", &v),
	    BS_ERR_INVALID);

	/* every proper substring (covers all truncations) */
	for (i = 0; i <= len; i++) {
		for (j = i; j <= len; j++) {
			if (i == 0 && j == len)
				continue;
			memcpy(sub, PN_VKEY + i, j - i);
			sub[j - i] = '\0';
			memset(&v, 0x77, sizeof(v));
			rc = note_vkey_parse(sub, &v);
			if (rc == 0)
				fail_msg("substring [%zu,%zu) accepted: %s", i, j, sub);
			assert_int_equal(v.name[0], 0x77);      /* untouched */
		}
	}
	/* every single-byte change at every position (0 truncates) */
	memcpy(b, PN_VKEY, sizeof(b));
	for (i = 0; i < len; i++) {
		for (c = 0; c < 256; c++) {
			if ((char)c == PN_VKEY[i])
				continue;
			b[i] = (char)c;
			if (note_vkey_parse(b, &v) == 0)
				fail_msg("byte %zu = 0x%02x accepted: %s", i, c, b);
		}
		b[i] = PN_VKEY[i];
	}
	assert_int_equal(note_vkey_parse(b, &v), 0);

	/* stricter than Go: upper-case hash, trailing newline, non-canonical base64 */
	assert_int_equal(note_vkey_parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &v),
	    BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse(PN_VKEY "\n", &v), BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse(PN_VKEY "+", &v), BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &v),
	    BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse(NULL, &v), BS_ERR_INVALID);
	assert_int_equal(note_vkey_parse(PN_VKEY, NULL), BS_ERR_INVALID);
	{
		/* a very long vkey is refused before any work */
		char *big = malloc(NOTE_VKEY_PARSE_MAX + 100);

		assert_non_null(big);
		memset(big, 'A', NOTE_VKEY_PARSE_MAX + 99);
		big[NOTE_VKEY_PARSE_MAX + 99] = '\0';
		memcpy(big, "x+00000000+", 11);
		assert_int_equal(note_vkey_parse(big, &v), BS_ERR_INVALID);
		free(big);
	}
}

/* ---- signing side ------------------------------------------------------------ */

static void
test_signature_line_reproduces_go(void **state)
{
	uint8_t seed[32], sig[64], pub[32], want_pub[32], id[4];
	char line[NOTE_SIG_LINE_MAX];
	struct note_verifier v;
	size_t n = strlen(PN_SIG);

	(void)state;
	unhex(PN_SEED, seed, 32);
	ossl_sign(seed, (const uint8_t *)PN_TEXT, strlen(PN_TEXT), sig, pub);
	unhex(PN_PUB, want_pub, 32);
	assert_memory_equal(pub, want_pub, 32);
	assert_int_equal(note_key_id_ed25519("PeterNeumann", pub, id), 0);
	assert_int_equal(note_signature_line("PeterNeumann", id, sig, line, sizeof(line)), 0);
	assert_string_equal(line, PN_SIG);
	/* the vkey made from the derived public key is Go's */
	assert_int_equal(note_vkey_format("PeterNeumann", pub, line, sizeof(line)), 0);
	assert_string_equal(line, PN_VKEY);
	verifier(line, &v);

	/* buffer exactly enough / one short */
	assert_int_equal(note_signature_line("PeterNeumann", id, sig, line, n + 1), 0);
	assert_string_equal(line, PN_SIG);
	memset(line, 'Q', sizeof(line));
	assert_int_equal(note_signature_line("PeterNeumann", id, sig, line, n), BS_ERR_TOO_BIG);
	assert_int_equal(line[0], 'Q');
	assert_int_equal(note_signature_line("Bad Name", id, sig, line, sizeof(line)), BS_ERR_INVALID);
	assert_int_equal(note_signature_line(NULL, id, sig, line, sizeof(line)), BS_ERR_INVALID);
}

/* ---- note_open: vectors ----------------------------------------------------- */

static void
test_open_vectors(void **state)
{
	struct note_verifier pn, en, foo, both[2], three[3];
	size_t tl;
	char *m;

	(void)state;
	verifier(PN_VKEY, &pn);
	verifier(ENOCH_VKEY, &en);
	verifier(FOO_VKEY, &foo);

	tl = 0;
	assert_int_equal(open_str(PN_TEXT "\n" PN_SIG, &pn, 1, &tl), 0);
	assert_int_equal(tl, strlen(PN_TEXT));
	assert_int_equal(open_str(FOO_TEXT "\n" FOO_SIG, &foo, 1, &tl), 0);
	assert_int_equal(tl, strlen(FOO_TEXT));

	/* PeterNeumann + EnochRoot lines: either key, both keys, either order */
	both[0] = pn;
	both[1] = en;
	m = cat(PN_TEXT "\n", PN_SIG, ENOCH_SIG);
	assert_int_equal(open_str(m, &pn, 1, &tl), 0);
	assert_int_equal(open_str(m, &en, 1, &tl), 0);
	assert_int_equal(open_str(m, both, 2, &tl), 0);
	assert_int_equal(tl, strlen(PN_TEXT));
	three[0] = foo;
	three[1] = en;
	three[2] = pn;
	assert_int_equal(open_str(m, three, 3, &tl), 0);
	/* only an unknown signer */
	tl = 12345;
	assert_int_equal(open_str(m, &foo, 1, &tl), BS_ERR_INVALID);
	assert_int_equal(open_str(m, NULL, 0, &tl), BS_ERR_INVALID);
	assert_int_equal(tl, 12345);
	free(m);
	m = cat(PN_TEXT "\n", ENOCH_SIG, PN_SIG);
	assert_int_equal(open_str(m, both, 2, &tl), 0);
	free(m);

	/* Go: duplicated verified and unverified lines, a bad unknown one */
	{
		char enoch_abcd[sizeof(PN_SIG) + 4];
		char *m2;

		memcpy(enoch_abcd, ENOCH_SIG, 60);
		memcpy(enoch_abcd + 60, "ABCD", 4);
		memcpy(enoch_abcd + 64, ENOCH_SIG + 60, sizeof(ENOCH_SIG) - 60);
		m = cat(PN_TEXT "\n" PN_SIG PN_SIG, ENOCH_SIG ENOCH_SIG, enoch_abcd);
		assert_int_equal(open_str(m, &pn, 1, &tl), 0);
		/* with Enoch known, its mangled line fails verification */
		assert_int_equal(open_str(m, both, 2, &tl), BS_ERR_SIG_INVALID);
		free(m);
		/* Go: "Invalid signature" (ABCD inserted into a known key's line) */
		memcpy(enoch_abcd, PN_SIG, 60);
		memcpy(enoch_abcd + 60, "ABCD", 4);
		memcpy(enoch_abcd + 64, PN_SIG + 60, sizeof(PN_SIG) - 60);
		m2 = cat(PN_TEXT, "\n", enoch_abcd);
		assert_int_equal(open_str(m2, &pn, 1, &tl), BS_ERR_SIG_INVALID);
		free(m2);
	}
	/* ambiguous verifier list (same name and key id twice) */
	both[0] = pn;
	both[1] = pn;
	assert_int_equal(open_str(PN_TEXT "\n" PN_SIG, both, 2, &tl), BS_ERR_INVALID);
}

/* ---- note_open: malformed and bad notes ------------------------------------ */

static void
test_open_go_malformed(void **state)
{
	static const char *const bad[] = {
		PN_TEXT,
		PN_TEXT "\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
		"\x01" PN_TEXT "\n" PN_SIG,
		"\xff" PN_TEXT "\n" PN_SIG,
		PN_TEXT "\n" "\xe2\x80\x94 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
		PN_TEXT "\n" PN_SIG "Unexpected line.\n",
		/* more of the same kind */
		PN_TEXT PN_SIG,                                         /* no blank line */
		PN_TEXT "\n" PN_SIG "\n",                               /* blank line at the end */
		PN_TEXT "\n" "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		PN_TEXT "\n" "\xe2\x80\x94PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann \n",
		PN_TEXT "\n" "\xe2\x80\x94  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		PN_TEXT "\n" "\xe2\x80\x94 Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		/* unpadded, bad character, non-canonical last bits, too short */
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJn*M=\n",
		/* stricter than Go, which ignores non-zero unused bits ("AN=" == "AM=") */
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08g x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08g\n",
		PN_TEXT "\n" "\xe2\x80\x94 PeterNeumann x08gow==\n",
		/* control characters and invalid UTF-8 anywhere */
		"If you\tthink\n\n" PN_SIG,
		"If you\rthink\n\n" PN_SIG,
		"If you\x1fthink\n\n" PN_SIG,
		"If you \xc0\xaf think\n\n" PN_SIG,
		"If you \xed\xa0\x80 think\n\n" PN_SIG,
		"If you \xe2\x80 think\n\n" PN_SIG,
		"",
		"\n",
		"\n\n",
	};
	struct note_verifier pn;
	size_t i, tl = 999;

	(void)state;
	verifier(PN_VKEY, &pn);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = open_str(bad[i], &pn, 1, &tl);

		if (rc != BS_ERR_INVALID)
			fail_msg("bad note %zu: rc %d", i, rc);
	}
	assert_int_equal(tl, 999);
	/* an extra blank line: the text then includes one more "\n", so the signature fails */
	assert_int_equal(open_str(PN_TEXT "\n\n" PN_SIG, &pn, 1, &tl), BS_ERR_SIG_INVALID);
	/* a NUL byte is a control character too */
	{
		static const char nul[] = "a\0b\n\n" PN_SIG;

		assert_int_equal(note_open((const uint8_t *)nul, sizeof(nul) - 1, &pn, 1, &tl),
		    BS_ERR_INVALID);
	}
	assert_int_equal(note_open(NULL, 0, &pn, 1, &tl), BS_ERR_INVALID);
	assert_int_equal(note_open((const uint8_t *)PN_SIG, strlen(PN_SIG), &pn, 1, NULL),
	    BS_ERR_INVALID);
	assert_int_equal(note_open((const uint8_t *)PN_SIG, strlen(PN_SIG), NULL, 1, &tl),
	    BS_ERR_INVALID);
}

static void
test_open_flipped_bytes(void **state)
{
	struct note_verifier pn;
	const char *good = PN_TEXT "\n" PN_SIG;
	size_t len = strlen(good), tlen = strlen(PN_TEXT), i, tl;
	uint8_t *m = malloc(len);
	int x, rc;

	(void)state;
	assert_non_null(m);
	verifier(PN_VKEY, &pn);
	for (i = 0; i < len; i++) {
		for (x = 1; x < 256; x <<= 1) {
			memcpy(m, good, len);
			m[i] ^= (uint8_t)x;
			rc = note_open(m, len, &pn, 1, &tl);
			if (rc == 0)
				fail_msg("flip 0x%02x at %zu accepted", x, i);
			/* a changed text byte that keeps the note well-formed is a bad signature */
			if (i < tlen - 1 && good[i] >= 0x40 && good[i] < 0x60 && x == 0x20)
				assert_int_equal(rc, BS_ERR_SIG_INVALID);
		}
	}
	/* a changed base64 character inside the 64-byte signature: bad signature */
	memcpy(m, good, len);
	m[tlen + 1 + 4 + 13 + 20] = (m[tlen + 1 + 4 + 13 + 20] == 'A') ? 'B' : 'A';
	assert_int_equal(note_open(m, len, &pn, 1, &tl), BS_ERR_SIG_INVALID);
	/* a changed key id byte: now an unknown key, and no known one left */
	memcpy(m, good, len);
	m[tlen + 1 + 4 + 13 + 1] = (m[tlen + 1 + 4 + 13 + 1] == 'A') ? 'B' : 'A';
	assert_int_equal(note_open(m, len, &pn, 1, &tl), BS_ERR_INVALID);
	free(m);
}

static void
test_open_signed_texts(void **state)
{
	/* notes made here with OpenSSL + note_signature_line */
	struct note_verifier pn, en, both[2];
	size_t tl;
	char *m, *m2;

	(void)state;
	verifier(PN_VKEY, &pn);
	verifier(ENOCH_VKEY, &en);
	both[0] = en;
	both[1] = pn;

	m = pn_note(PN_TEXT);
	assert_string_equal(m, PN_TEXT "\n" PN_SIG);
	free(m);

	/* empty lines inside the text: the split is at the LAST blank line */
	m = pn_note("line one\n\nline three\n\n\nline six\n");
	assert_int_equal(open_str(m, &pn, 1, &tl), 0);
	assert_int_equal(tl, strlen("line one\n\nline three\n\n\nline six\n"));
	free(m);
	/* the smallest text, "\n" */
	m = pn_note("\n");
	assert_int_equal(open_str(m, &pn, 1, &tl), 0);
	assert_int_equal(tl, 1);
	free(m);
	/* DEL, C1 controls and non-ASCII are allowed in text (as Go) */
	m = pn_note("del \x7f c1 \xc2\x80 \xe2\x82\xac \xf0\x9f\x94\x92 \xef\xbf\xbd\n");
	assert_int_equal(open_str(m, &pn, 1, &tl), 0);
	free(m);
	/* a signature over a different text */
	m = pn_note("some other text\n");
	m2 = cat(PN_TEXT "\n", strchr(m, '\n') + 2, "");
	assert_int_equal(open_str(m2, &pn, 1, &tl), BS_ERR_SIG_INVALID);
	/* one good known signature does not excuse one bad known signature */
	free(m2);
	m2 = cat(PN_TEXT "\n", ENOCH_SIG, strchr(m, '\n') + 2);
	assert_int_equal(open_str(m2, both, 2, &tl), BS_ERR_SIG_INVALID);
	assert_int_equal(open_str(m2, &en, 1, &tl), 0);       /* Peter unknown: ignored */
	free(m2);
	free(m);

	/* a known key whose decoded signature is 72, not 68, bytes */
	m = cat(PN_TEXT "\n", "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAMAAAAA\n", "");
	assert_int_equal(open_str(m, &pn, 1, &tl), BS_ERR_SIG_INVALID);
	free(m);
}

static void
test_open_signature_count(void **state)
{
	struct note_verifier pn;
	size_t len100, i, tl, pl = strlen(PN_SIG), el = strlen(ENOCH_SIG), tlen = strlen(PN_TEXT);
	char *m = malloc(tlen + 1 + 101 * el + pl + 1);
	char *p;

	(void)state;
	assert_non_null(m);
	verifier(PN_VKEY, &pn);
	/* 99 unknown + 1 known = 100 lines: accepted */
	p = m;
	memcpy(p, PN_TEXT "\n", tlen + 1);
	p += tlen + 1;
	for (i = 0; i < 99; i++, p += el)
		memcpy(p, ENOCH_SIG, el);
	memcpy(p, PN_SIG, pl);
	p += pl;
	len100 = (size_t)(p - m);
	assert_int_equal(note_open((uint8_t *)m, len100, &pn, 1, &tl), 0);
	/* 101 lines: malformed, even though the known signature is valid */
	memcpy(p, ENOCH_SIG, el);
	assert_int_equal(note_open((uint8_t *)m, len100 + el, &pn, 1, &tl), BS_ERR_INVALID);
	free(m);

	/* Go: 101 copies of the Peter line, no verifiers */
	m = malloc(tlen + 1 + 101 * pl);
	assert_non_null(m);
	memcpy(m, PN_TEXT "\n", tlen + 1);
	for (i = 0; i < 101; i++)
		memcpy(m + tlen + 1 + i * pl, PN_SIG, pl);
	assert_int_equal(note_open((uint8_t *)m, tlen + 1 + 101 * pl, NULL, 0, &tl), BS_ERR_INVALID);
	/* 100 copies with the verifier: all verified, accepted */
	assert_int_equal(note_open((uint8_t *)m, tlen + 1 + 100 * pl, &pn, 1, &tl), 0);
	free(m);
}

/* ---- checkpoints ---------------------------------------------------------------- */

static void
test_checkpoint_sofa(void **state)
{
	uint8_t root[32], want[33];
	char origin[NOTE_NAME_MAX + 1], out[CHECKPOINT_BODY_MAX];
	uint64_t size = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(ossl_b64(SOFA_ROOT_B64, want, sizeof(want)), 32);
	assert_int_equal(checkpoint_body_parse((const uint8_t *)SOFA_BODY, strlen(SOFA_BODY), origin,
	    sizeof(origin), &size, root), 0);
	assert_string_equal(origin, "example.com/behind-the-sofa");
	assert_true(size == 20852163);
	assert_memory_equal(root, want, 32);
	assert_int_equal(checkpoint_body_format(origin, size, root, out, sizeof(out), &used), 0);
	assert_int_equal(used, strlen(SOFA_BODY));
	assert_string_equal(out, SOFA_BODY);

	/* the origin buffer: exactly enough, one short */
	assert_int_equal(checkpoint_body_parse((const uint8_t *)SOFA_BODY, strlen(SOFA_BODY), origin,
	    28, &size, root), 0);
	memset(origin, 'Q', 4);
	assert_int_equal(checkpoint_body_parse((const uint8_t *)SOFA_BODY, strlen(SOFA_BODY), origin,
	    27, &size, root), BS_ERR_TOO_BIG);
	assert_int_equal(origin[0], 'Q');
}

static void
test_checkpoint_roundtrip(void **state)
{
	static const uint64_t sizes[] = { 0, 1, 9, 10, 20852163, 1000000000000ULL, UINT64_MAX };
	uint8_t root[32], back[32];
	char origin[64], out[CHECKPOINT_BODY_MAX], want[200];
	uint64_t size;
	size_t i, used, j;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (j = 0; j < 32; j++)
			root[j] = (uint8_t)(i * 37 + j * 11);
		assert_int_equal(checkpoint_body_format("example.com/log42", sizes[i], root, out,
		    sizeof(out), &used), 0);
		snprintf(want, sizeof(want), "example.com/log42\n%llu\n", (unsigned long long)sizes[i]);
		assert_memory_equal(out, want, strlen(want));
		assert_int_equal(used, strlen(want) + 45);
		assert_int_equal(strlen(out), used);
		assert_int_equal(checkpoint_body_parse((const uint8_t *)out, used, origin,
		    sizeof(origin), &size, back), 0);
		assert_string_equal(origin, "example.com/log42");
		assert_true(size == sizes[i]);
		assert_memory_equal(back, root, 32);
	}
	/* format errors */
	used = 4242;
	assert_int_equal(checkpoint_body_format("has space", 1, root, out, sizeof(out), &used),
	    BS_ERR_INVALID);
	assert_int_equal(checkpoint_body_format("a+b", 1, root, out, sizeof(out), &used),
	    BS_ERR_INVALID);
	assert_int_equal(checkpoint_body_format("", 1, root, out, sizeof(out), &used), BS_ERR_INVALID);
	assert_int_equal(checkpoint_body_format("o", 7, root, out, 1 + 1 + 1 + 1 + 45, &used),
	    BS_ERR_TOO_BIG);
	assert_int_equal(used, 4242);
	assert_int_equal(checkpoint_body_format("o", 7, root, out, 1 + 1 + 1 + 1 + 45 + 1, &used), 0);
	assert_int_equal(used, 49);
}

static void
test_checkpoint_parse_strict(void **state)
{
#define R "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	static const char *const good[] = {
		"o\n0\n" R "\n",
		"o\n18446744073709551615\n" R "\n",
		"o\n5\n" R "\nTimestamp: 1706845443714164712\n",
		"o\n5\n" R "\next one\next two\n",
		"rekor.sigstore.dev - 2605736670972794746\n64319120\nW7/06fgDSjOxApliccDgG4fKqDxExG6JO0e4FGf9gIw=\nTimestamp: 1706845443714164712\n",
		"caf\xc3\xa9+x\n5\n" R "\n",
	};
	static const char *const bad[] = {
		"",
		"\n",
		"o\n5\n" R,                             /* no final newline */
		"o\n5\n",
		"o\n5\n\n",
		"\n5\n" R "\n",                         /* empty origin */
		"o\n\n" R "\n",                         /* empty size */
		"o\n05\n" R "\n",                       /* leading zero */
		"o\n00\n" R "\n",
		"o\n020852163\n" R "\n",
		"o\n+5\n" R "\n",
		"o\n-5\n" R "\n",
		"o\n 5\n" R "\n",
		"o\n5 \n" R "\n",
		"o\n5x\n" R "\n",
		"o\n0x10\n" R "\n",
		"o\n18446744073709551616\n" R "\n",     /* 2^64 */
		"o\n99999999999999999999\n" R "\n",
		"o\n100000000000000000000\n" R "\n",    /* 21 digits */
		"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",          /* 43 chars */
		"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I==\n",        /* 45 chars */
		"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",         /* non-canonical */
		"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2Ia\n",         /* 33 bytes */
		"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx==A=\n",
		"o\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",         /* URL alphabet */
		"o\n5\n" R " \n",
		"o\n5\n" R "\n\n",                      /* empty extension line */
		"o\n5\n" R "\next\n\n",
		"o\t1\n5\n" R "\n",                     /* control character */
		"o\x7f\n5\n" R "\n",
		"o\xff\n5\n" R "\n",                    /* invalid UTF-8 */
		"o\n5\n" R "\next \x01\n",
	};
#undef R
	char origin[300];
	uint8_t root[32];
	uint64_t size;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = checkpoint_body_parse((const uint8_t *)good[i], strlen(good[i]), origin,
		    sizeof(origin), &size, root);

		if (rc != 0)
			fail_msg("good checkpoint %zu rejected: %d", i, rc);
	}
	assert_int_equal(checkpoint_body_parse((const uint8_t *)good[4], strlen(good[4]), origin,
	    sizeof(origin), &size, root), 0);
	assert_string_equal(origin, "rekor.sigstore.dev - 2605736670972794746");
	assert_true(size == 64319120);
	assert_int_equal(checkpoint_body_parse((const uint8_t *)good[1], strlen(good[1]), origin,
	    sizeof(origin), &size, root), 0);
	assert_true(size == UINT64_MAX);

	size = 77;
	memset(root, 0x42, 32);
	memset(origin, 'Z', 8);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = checkpoint_body_parse((const uint8_t *)bad[i], strlen(bad[i]), origin,
		    sizeof(origin), &size, root);

		if (rc != BS_ERR_INVALID)
			fail_msg("bad checkpoint %zu: rc %d", i, rc);
	}
	assert_true(size == 77);
	assert_int_equal(root[0], 0x42);
	assert_int_equal(origin[0], 'Z');
	/* an origin longer than NOTE_NAME_MAX */
	{
		char body[400];

		memset(body, 'o', 256);
		snprintf(body + 256, sizeof(body) - 256, "\n5\n%s\n", SOFA_ROOT_B64);
		assert_int_equal(checkpoint_body_parse((const uint8_t *)body, strlen(body), origin,
		    sizeof(origin), &size, root), BS_ERR_INVALID);
	}
	assert_int_equal(checkpoint_body_parse(NULL, 0, origin, sizeof(origin), &size, root),
	    BS_ERR_INVALID);
}

static void
test_checkpoint_in_note(void **state)
{
	/* a checkpoint signed here opens, and its text parses back */
	struct note_verifier pn;
	uint8_t root[32], back[32];
	char body[CHECKPOINT_BODY_MAX], origin[64], *m;
	uint64_t size;
	size_t used, tl;

	(void)state;
	verifier(PN_VKEY, &pn);
	memset(root, 0xab, sizeof(root));
	assert_int_equal(checkpoint_body_format("PeterNeumann", 42, root, body, sizeof(body), &used), 0);
	m = pn_note(body);
	assert_int_equal(open_str(m, &pn, 1, &tl), 0);
	assert_int_equal(tl, used);
	assert_int_equal(checkpoint_body_parse((const uint8_t *)m, tl, origin, sizeof(origin), &size,
	    back), 0);
	assert_string_equal(origin, "PeterNeumann");
	assert_true(size == 42);
	assert_memory_equal(back, root, 32);
	free(m);
}

/*
 * C2SP tlog-cosignature v1: the key id and vkey of a published cosigner
 * (remora.n621.de), and the layout of Go's sample cosignature
 * (note_cosigv1_test.go: key id 646846b9, timestamp 1727964367).
 */
static void
test_cosignature_v1(void **state)
{
	static const char vkey[] = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
	static const char sample[] = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+"
	    "8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
	static const char body[] = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n";
	uint8_t key[33], blob[76], id[4], *msg = NULL;
	char out[NOTE_VKEY_MAX + 1], line[NOTE_COSIG_LINE_MAX], want[200];
	size_t n = 0;
	int klen, blen;

	(void)state;
	klen = EVP_DecodeBlock(key, (const unsigned char *)strchr(strchr(vkey, '+') + 1, '+') + 1,
	    44);
	assert_int_equal(klen, 33);
	assert_int_equal(key[0], NOTE_ALG_COSIG_V1);
	assert_int_equal(note_cosig_key_id("remora.n621.de", key + 1, id), 0);
	assert_memory_equal(id, "\xda\x77\xad\xe7", 4);
	assert_int_equal(note_cosig_vkey_format("remora.n621.de", key + 1, out, sizeof(out)), 0);
	assert_string_equal(out, vkey);
	/* not the signed-note key id: the type byte differs */
	assert_int_equal(note_key_id_ed25519("remora.n621.de", key + 1, id), 0);
	assert_memory_not_equal(id, "\xda\x77\xad\xe7", 4);
	/* Go's sample: key id || big-endian timestamp || signature, rebuilt byte for byte */
	blen = EVP_DecodeBlock(blob, (const unsigned char *)sample, (int)strlen(sample));
	assert_int_equal(blen, 78);                  /* 76 and two bytes of padding */
	assert_memory_equal(blob, "\x64\x68\x46\xb9", 4);
	assert_int_equal(note_cosig_line("witness.example", blob, 1727964367, blob + 12, line,
	    sizeof(line)), 0);
	snprintf(want, sizeof(want), "\xe2\x80\x94 witness.example %s\n", sample);
	assert_string_equal(line, want);
	/* the signed message */
	assert_int_equal(note_cosig_message((const uint8_t *)body, strlen(body), 1727964367, &msg,
	    &n), 0);
	snprintf(want, sizeof(want), "cosignature/v1\ntime 1727964367\n%s", body);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(msg, want, n);
	free(msg);
	/* refusals */
	assert_int_equal(note_cosig_message((const uint8_t *)body, strlen(body) - 1, 1, &msg, &n),
	    BS_ERR_INVALID);
	assert_int_equal(note_cosig_message((const uint8_t *)body, strlen(body),
	    (uint64_t)INT64_MAX + 1, &msg, &n), BS_ERR_INVALID);
	assert_int_equal(note_cosig_line("bad name", blob, 1, blob + 12, line, sizeof(line)),
	    BS_ERR_INVALID);
	assert_int_equal(note_cosig_line("w", blob, 1, blob + 12, line, 10), BS_ERR_TOO_BIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cosignature_v1),
		cmocka_unit_test(test_key_ids),
		cmocka_unit_test(test_vkey_roundtrip),
		cmocka_unit_test(test_vkey_negatives),
		cmocka_unit_test(test_signature_line_reproduces_go),
		cmocka_unit_test(test_open_vectors),
		cmocka_unit_test(test_open_go_malformed),
		cmocka_unit_test(test_open_flipped_bytes),
		cmocka_unit_test(test_open_signed_texts),
		cmocka_unit_test(test_open_signature_count),
		cmocka_unit_test(test_checkpoint_sofa),
		cmocka_unit_test(test_checkpoint_roundtrip),
		cmocka_unit_test(test_checkpoint_parse_strict),
		cmocka_unit_test(test_checkpoint_in_note),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
