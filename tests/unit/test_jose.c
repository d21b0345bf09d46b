/*
 * test_jose.c - unit tests for src/formats/jose.c: base64url without
 * padding (RFC 4648 section 10 vectors, the URL-safe alphabet, long
 * input), and RFC 7638 thumbprints: RFC 8037 A.3's Ed25519 key and the
 * RFC 7515 A.3 P-256 key (both as SPKI), an RSA key refused, junk refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "formats/jose.h"

static void
b64u(const char *in, const char *want)
{
	char out[64];

	assert_int_equal(jose_b64url((const uint8_t *)in, strlen(in), out, sizeof(out)),
	    (int)strlen(want));
	assert_string_equal(out, want);
}

static void
test_b64url(void **state)
{
	static const uint8_t odd[] = { 0xfb, 0xff, 0xbf };
	uint8_t big[1000];
	char out[1400], small[4];

	(void)state;
	b64u("", "");
	b64u("f", "Zg");
	b64u("fo", "Zm8");
	b64u("foo", "Zm9v");
	b64u("foobar", "Zm9vYmFy");
	assert_int_equal(jose_b64url(odd, 3, out, sizeof(out)), 4);
	assert_string_equal(out, "-_-_");
	memset(big, 0xff, sizeof(big));
	assert_int_equal(jose_b64url(big, sizeof(big), out, sizeof(out)), JOSE_B64URL_LEN(1000));
	assert_null(strchr(out, '='));
	assert_int_equal(out[JOSE_B64URL_LEN(1000) - 1], 'w');   /* 1000 = 333*3 + 1: "_w" */
	assert_int_equal(jose_b64url(odd, 3, small, sizeof(small)), -1);
}

static void
b64u_dec(const char *in, const char *want)
{
	uint8_t *out = NULL;
	size_t n = 99;

	assert_int_equal(jose_b64url_decode(in, strlen(in), &out, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	free(out);
}

static void
b64u_bad(const char *in)
{
	uint8_t *out = NULL;
	size_t n = 99;

	assert_int_equal(jose_b64url_decode(in, strlen(in), &out, &n), BS_ERR_INVALID);
	assert_null(out);
	assert_int_equal(n, 99);
}

static void
test_b64url_decode(void **state)
{
	static const uint8_t odd[] = { 0xfb, 0xff, 0xbf };
	uint8_t big[1000], *out = NULL;
	char text[1400];
	size_t n;

	(void)state;
	b64u_dec("", "");
	b64u_dec("Zg", "f");
	b64u_dec("Zm8", "fo");
	b64u_dec("Zm9v", "foo");
	b64u_dec("Zm9vYmFy", "foobar");
	assert_int_equal(jose_b64url_decode("-_-_", 4, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, odd, 3);
	free(out);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_true(jose_b64url(big, sizeof(big), text, sizeof(text)) > 0);
	assert_int_equal(jose_b64url_decode(text, strlen(text), &out, &n), 0);
	assert_int_equal(n, sizeof(big));
	assert_memory_equal(out, big, n);
	free(out);
	b64u_bad("Zg==");       /* padding is not base64url */
	b64u_bad("Zm9v+w");     /* the standard alphabet's '+' and '/' */
	b64u_bad("Zm9v/w");
	b64u_bad("Zh");         /* unused bits not zero */
	b64u_bad("Zm9");        /* "fo" is "Zm8": '9' leaves the unused bits 01 */
	b64u_bad("Z");          /* a length of 1 mod 4 */
	b64u_bad("Zm 9v");
	b64u_bad("Zm9v\n");
}

/* prefix (hex) + key (hex) as SPKI bytes */
static size_t
spki(const char *prefix, const char *key, uint8_t *out, size_t cap)
{
	size_t a = strlen(prefix) / 2, b = strlen(key) / 2;

	assert_true(a + b <= cap);
	assert_int_equal(bs_hex_decode(prefix, strlen(prefix), out, a, 0), 0);
	assert_int_equal(bs_hex_decode(key, strlen(key), out + a, b, 0), 0);
	return a + b;
}

static void
test_thumbprints(void **state)
{
	uint8_t der[128];
	char t[JOSE_THUMBPRINT_LEN + 1];
	size_t n;

	(void)state;
	/* RFC 8037 A.3 */
	n = spki("302a300506032b6570032100",
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", der, sizeof(der));
	assert_int_equal(jose_thumbprint(der, n, t), 0);
	assert_string_equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
	/* the RFC 7515 A.3 key: {"crv":"P-256","kty":"EC","x":"f83O...","y":"x_FE..."} */
	n = spki("3059301306072a8648ce3d020106082a8648ce3d03010703420004",
	    "7fcdce2770f6c45d4183cbee6fdb4b7b580733357be9ef13bacf6e3c7bd15445"
	    "c7f144cd1bbd9b7e872cdfedb9eeb9f4b3695d6ea90b24ad8a4623288588e5ad", der, sizeof(der));
	assert_int_equal(jose_thumbprint(der, n, t), 0);
	assert_string_equal(t, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
	/* trailing bytes, junk, other key types */
	assert_int_equal(jose_thumbprint(der, n - 1, t), BS_ERR_INVALID);
	assert_int_equal(jose_thumbprint((const uint8_t *)"junk", 4, t), BS_ERR_INVALID);
	{
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		uint8_t *p = NULL;
		int len = i2d_PUBKEY(pk, &p);

		assert_true(len > 0);
		assert_int_equal(jose_thumbprint(p, (size_t)len, t), BS_ERR_UNSUPPORTED);
		OPENSSL_free(p);
		EVP_PKEY_free(pk);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_b64url_decode),
		cmocka_unit_test(test_thumbprints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
