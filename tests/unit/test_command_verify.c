/*
 * test_command_verify.c - unit tests for the vehicle-side verifier
 * (src/client/command_verify.c, include/boltseal/command.h). Tokens are
 * built here with OpenSSL from fresh P-256 and Ed25519 keys (ES256 turned
 * from DER into r||s). A good token verifies with every claim returned; the
 * RFC 7515 A.3 (ES256) and RFC 8037 A.4 (EdDSA) vectors verify at the JWS
 * layer and the RFC 8037 A.3 / RFC 7638 thumbprints are reproduced; each
 * refusal comes with its code, and *out is left all zero.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "boltseal/command.h"
#include "client/command_int.h"

#define NOW 1700000100
#define VIN "WVWZZZ1JZXW000001"
#define AUD "tcu.example"
#define ISS "boltseal-prod"
#define JTI "0123456789abcdef0123456789abcdef"
#define ARGS "{\"door\":\"driver\",\"n\":[1,-2,{\"x\":null,\"ok\":true}],\"s\":\"\\u00e9\"}"
/* ARGS as the verifier gives it back: compact, members in the signed order, UTF-8 as is */
#define ARGS_READ "{\"door\":\"driver\",\"n\":[1,-2,{\"x\":null,\"ok\":true}],\"s\":\"\xc3\xa9\"}"

struct key {
	EVP_PKEY *pk;
	uint8_t *spki;
	size_t spki_len;
	char kid[BS_CMD_THUMBPRINT_LEN + 1];
	int ec;
};

static struct key ec_key, ed_key, ec_other;

/* ---- building tokens ------------------------------------------------------------------ */

static char *
b64url(const uint8_t *in, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4);
	size_t i, o = 0;
	uint32_t v;

	assert_non_null(out);
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
		    (i + 2 < n ? in[i + 2] : 0);
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = a[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
	return out;
}

static void
key_init(struct key *k, EVP_PKEY *pk, int ec)
{
	uint8_t *der = NULL;
	int n;

	assert_non_null(pk);
	k->pk = pk;
	k->ec = ec;
	assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
	k->spki = der;
	k->spki_len = (size_t)n;
	assert_int_equal(bs_cmd_key_thumbprint(k->spki, k->spki_len, k->kid), 0);
	assert_int_equal(strlen(k->kid), BS_CMD_THUMBPRINT_LEN);
}

static int
setup(void **state)
{
	(void)state;
	key_init(&ec_key, EVP_EC_gen("P-256"), 1);
	key_init(&ed_key, EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 0);
	key_init(&ec_other, EVP_EC_gen("P-256"), 1);
	return 0;
}

static void
key_free(struct key *k)
{
	EVP_PKEY_free(k->pk);
	OPENSSL_free(k->spki);
}

static int
teardown(void **state)
{
	(void)state;
	key_free(&ec_key);
	key_free(&ed_key);
	key_free(&ec_other);
	return 0;
}

/* Signs data with k: ES256 r||s (or the DER OpenSSL gives when der), or Ed25519. */
static uint8_t *
sign(const struct key *k, const char *data, size_t len, int der, size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *sig, *rs;
	size_t n = 0;
	const unsigned char *p;
	const BIGNUM *r, *s;
	ECDSA_SIG *es;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, k->ec ? EVP_sha256() : NULL, NULL, k->pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &n, (const uint8_t *)data, len), 1);
	assert_non_null(sig = malloc(n));
	assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const uint8_t *)data, len), 1);
	EVP_MD_CTX_free(ctx);
	*siglen = n;
	if (!k->ec || der)
		return sig;
	p = sig;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)n));
	ECDSA_SIG_get0(es, &r, &s);
	assert_non_null(rs = malloc(64));
	assert_int_equal(BN_bn2binpad(r, rs, 32), 32);
	assert_int_equal(BN_bn2binpad(s, rs + 32, 32), 32);
	ECDSA_SIG_free(es);
	free(sig);
	*siglen = 64;
	return rs;
}

#define MK_DER 0x1  /* keep the DER ECDSA signature */

/* B64(header).B64(payload).B64(sig by k), malloc'd. */
static char *
make_token(const struct key *k, const char *header, const char *payload, int flags)
{
	char *h = b64url((const uint8_t *)header, strlen(header));
	char *p = b64url((const uint8_t *)payload, strlen(payload));
	char *si, *s, *tok;
	uint8_t *sig;
	size_t silen = strlen(h) + 1 + strlen(p), siglen;

	assert_non_null(si = malloc(silen + 1));
	snprintf(si, silen + 1, "%s.%s", h, p);
	sig = sign(k, si, silen, flags & MK_DER, &siglen);
	s = b64url(sig, siglen);
	assert_non_null(tok = malloc(silen + strlen(s) + 2));
	sprintf(tok, "%s.%s", si, s);
	free(h);
	free(p);
	free(si);
	free(sig);
	free(s);
	return tok;
}

static char hdr_buf[512], claims_buf[2 * BS_CMD_MAX_TOKEN];

static const char *
header(const char *alg, const char *kid)
{
	snprintf(hdr_buf, sizeof(hdr_buf), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
	    kid);
	return hdr_buf;
}

struct cl {
	const char *sub, *aud, *iss, *extra;
	long long iat, nbf, exp;
	unsigned long long seq;
};

static const struct cl cl_default = { VIN, AUD, ISS, "", NOW - 100, NOW - 100, NOW + 200, 7 };

static const char *
claims(const struct cl *c)
{
	snprintf(claims_buf, sizeof(claims_buf), "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\","
	    "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"" JTI "\",\"seq\":%llu,"
	    "\"cmd\":\"door.unlock\",\"args\":" ARGS "%s}", c->iss, c->sub, c->aud, c->iat, c->nbf,
	    c->exp, c->seq, c->extra);
	return claims_buf;
}

/* Copies s into p (n bytes), which must be large enough. */
static void
set(char *p, size_t n, const char *s)
{
	assert_true(strlen(s) < n);
	memcpy(p, s, strlen(s) + 1);
}

static struct bs_cmd_verify_opts
opts_default(void)
{
	struct bs_cmd_verify_opts o = { VIN, AUD, ISS, NOW, 5, 6 };

	return o;
}

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static char detail[512];

/* Verifies tok with k and o; on failure *out must be all zero. Returns the code. */
static int
verify_with(const char *tok, const struct key *k, const struct bs_cmd_verify_opts *o)
{
	struct bs_cmd_claims c;
	int rc;

	memset(&c, 0xa5, sizeof(c));
	rc = bs_cmd_verify_detail(tok, strlen(tok), k->spki, k->spki_len, o, &c, detail,
	    sizeof(detail));
	if (rc != 0) {
		assert_true(all_zero(&c, sizeof(c)));
		assert_true(detail[0] != '\0');
	}
	bs_cmd_claims_free(&c);
	return rc;
}

/* A token signed by k with the default header for k and payload p, verified with k. */
static int
verify_payload(const struct key *k, const char *p, const struct bs_cmd_verify_opts *o)
{
	char *tok = make_token(k, header(k->ec ? "ES256" : "EdDSA", k->kid), p, 0);
	int rc = verify_with(tok, k, o);

	free(tok);
	return rc;
}

static int
verify_cl(const struct cl *c, const struct bs_cmd_verify_opts *o)
{
	return verify_payload(&ec_key, claims(c), o);
}

/* ---- accepted ------------------------------------------------------------------------- */

static void
check_good(const struct key *k, const char *alg)
{
	struct bs_cmd_verify_opts o = opts_default();
	struct bs_cmd_claims c;
	char *tok = make_token(k, header(alg, k->kid), claims(&cl_default), 0);

	assert_int_equal(bs_cmd_verify(tok, strlen(tok), k->spki, k->spki_len, &o, &c), BS_CMD_OK);
	assert_string_equal(c.alg, alg);
	assert_string_equal(c.kid, k->kid);
	assert_string_equal(c.iss, ISS);
	assert_string_equal(c.sub, VIN);
	assert_string_equal(c.aud, AUD);
	assert_string_equal(c.cmd, "door.unlock");
	assert_string_equal(c.jti, JTI);
	assert_int_equal(c.iat, NOW - 100);
	assert_int_equal(c.nbf, NOW - 100);
	assert_int_equal(c.exp, NOW + 200);
	assert_int_equal(c.seq, 7);
	assert_non_null(c.args);
	assert_string_equal(c.args, ARGS_READ);
	assert_int_equal(c.args_len, strlen(ARGS_READ));
	bs_cmd_claims_free(&c);
	assert_true(all_zero(&c, sizeof(c)));
	bs_cmd_claims_free(NULL);
	/* no issuer expected: any iss */
	o.issuer = NULL;
	assert_int_equal(verify_with(tok, k, &o), 0);
	free(tok);
}

static void
test_good_es256(void **state)
{
	(void)state;
	check_good(&ec_key, "ES256");
}

static void
test_good_eddsa(void **state)
{
	(void)state;
	check_good(&ed_key, "EdDSA");
	check_good(&ed_key, "Ed25519");  /* RFC 9864 name */
}

static void
test_header_variants(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char h[256];
	char *tok;

	(void)state;
	/* typ may be absent; member order and whitespace are free */
	snprintf(h, sizeof(h), " { \"kid\" : \"%s\", \"alg\":\"ES256\" } ", ec_key.kid);
	tok = make_token(&ec_key, h, claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), 0);
	free(tok);
}

/* ---- vectors -------------------------------------------------------------------------- */

static void
hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* The SPKI of the RFC 7515 A.3 P-256 key. */
static void
a3_spki(uint8_t **spki, size_t *len)
{
	uint8_t pt[65];
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	uint8_t *der = NULL;
	int n;

	pt[0] = 0x04;
	hex("7fcdce2770f6c45d4183cbee6fdb4b7b580733357be9ef13bacf6e3c7bd15445", pt + 1, 32);
	hex("c7f144cd1bbd9b7e872cdfedb9eeb9f4b3695d6ea90b24ad8a4623288588e5ad", pt + 33, 32);
	assert_non_null(b);
	assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, 65), 1);
	assert_non_null(params = OSSL_PARAM_BLD_to_param(b));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
	*spki = der;
	*len = (size_t)n;
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
}

static void
test_rfc7515_a3(void **state)
{
	static const char tok[] = "eyJhbGciOiJFUzI1NiJ9."
	    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
	    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
	struct bs_cmd_verify_opts o = opts_default();
	struct bs_cmd_claims c;
	char tp[BS_CMD_THUMBPRINT_LEN + 1], *bad;
	uint8_t *spki;
	size_t len;

	(void)state;
	a3_spki(&spki, &len);
	assert_int_equal(bs_cmd_key_thumbprint(spki, len, tp), 0);
	assert_string_equal(tp, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");  /* wire-formats 5.2 */
	assert_int_equal(cmd_jws_verify(tok, strlen(tok), spki, len), 0);
	/* one bit of the signature, of the payload */
	assert_non_null(bad = strdup(tok));
	bad[strlen(bad) - 2] ^= 0x01;
	assert_int_equal(cmd_jws_verify(bad, strlen(bad), spki, len), BS_CMD_ERR_SIGNATURE);
	strcpy(bad, tok);
	bad[30] = bad[30] == 'A' ? 'B' : 'A';
	assert_int_equal(cmd_jws_verify(bad, strlen(bad), spki, len), BS_CMD_ERR_SIGNATURE);
	free(bad);
	/* with the Ed25519 key: the alg does not fit */
	assert_int_equal(cmd_jws_verify(tok, strlen(tok), ed_key.spki, ed_key.spki_len),
	    BS_CMD_ERR_KEY_MISMATCH);
	/* a full verification needs a kid */
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), spki, len, &o, &c), BS_CMD_ERR_HEADER);
	OPENSSL_free(spki);
}

static void
test_rfc8037(void **state)
{
	static const char tok[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
	uint8_t x[32], *spki = NULL;
	char tp[BS_CMD_THUMBPRINT_LEN + 1], *bad;
	EVP_PKEY *pk;
	int n;

	(void)state;
	hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", x, 32);
	assert_non_null(pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32));
	assert_true((n = i2d_PUBKEY(pk, &spki)) > 0);
	assert_int_equal(bs_cmd_key_thumbprint(spki, (size_t)n, tp), 0);
	assert_string_equal(tp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");  /* RFC 8037 A.3 */
	assert_int_equal(cmd_jws_verify(tok, strlen(tok), spki, (size_t)n), 0);
	assert_non_null(bad = strdup(tok));
	bad[25] = bad[25] == 'A' ? 'B' : 'A';
	assert_int_equal(cmd_jws_verify(bad, strlen(bad), spki, (size_t)n), BS_CMD_ERR_SIGNATURE);
	free(bad);
	assert_int_equal(cmd_jws_verify(tok, strlen(tok), ec_key.spki, ec_key.spki_len),
	    BS_CMD_ERR_KEY_MISMATCH);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
}

/* ---- refused: claims ------------------------------------------------------------------ */

static void
test_replayed(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	struct cl c = cl_default;

	(void)state;
	c.seq = 7;
	o.last_seq = 7;                 /* seq == last_seq */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_REPLAYED);
	assert_non_null(strstr(detail, "seq 7 is not above the last accepted seq 7"));
	o.last_seq = 100;               /* seq < last_seq */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_REPLAYED);
	o.last_seq = 6;
	assert_int_equal(verify_cl(&c, &o), 0);
	o.last_seq = 0;
	c.seq = 1;
	assert_int_equal(verify_cl(&c, &o), 0);
	c.seq = 0;                      /* seq must be >= 1 */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
}

static void
test_time(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	struct cl c = cl_default;

	(void)state;
	/* expired: now >= exp + skew */
	c.exp = NOW - 70;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_EXPIRED);
	assert_string_equal(detail, "exp 1700000030 + skew 5 s is not after now 1700000100");
	c.exp = NOW - 5;                /* exactly exp + skew == now */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_EXPIRED);
	c.exp = NOW - 4;
	assert_int_equal(verify_cl(&c, &o), 0);
	/* not yet valid: nbf > now + skew */
	c = cl_default;
	c.nbf = NOW + 6;
	c.exp = NOW + 600;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_NOT_YET_VALID);
	assert_non_null(strstr(detail, "nbf 1700000106 is after now 1700000100 + skew 5 s"));
	c.nbf = NOW + 5;
	assert_int_equal(verify_cl(&c, &o), 0);
	/* issued in the future */
	c = cl_default;
	c.iat = NOW + 6;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_NOT_YET_VALID);
	assert_non_null(strstr(detail, "iat"));
	/* exp not after nbf: malformed */
	c = cl_default;
	c.exp = c.nbf;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	/* out of range times */
	c = cl_default;
	c.iat = -1;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	c = cl_default;
	c.exp = BS_CMD_MAX_TIME + 1;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	/* the opts: now and skew in range */
	o.skew = -1;
	assert_int_equal(verify_cl(&cl_default, &o), BS_CMD_ERR_ARG);
	o.skew = BS_CMD_MAX_SKEW + 1;
	assert_int_equal(verify_cl(&cl_default, &o), BS_CMD_ERR_ARG);
	o = opts_default();
	o.now = -5;
	assert_int_equal(verify_cl(&cl_default, &o), BS_CMD_ERR_ARG);
}

static void
test_identity(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	struct cl c = cl_default;

	(void)state;
	c.sub = "WVWZZZ1JZXW000002";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_VEHICLE);
	assert_non_null(strstr(detail, "WVWZZZ1JZXW000002"));
	c = cl_default;
	c.sub = VIN "\\u0000";          /* no NUL smuggling */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	c = cl_default;
	c.sub = VIN "\\n";              /* no control characters */
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	c = cl_default;
	c.aud = "other.example";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_AUDIENCE);
	c = cl_default;
	c.iss = "someone-else";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_ISSUER);
	o.issuer = NULL;
	assert_int_equal(verify_cl(&c, &o), 0);
	/* order: iss, aud, sub, then time, then seq */
	o = opts_default();
	c.aud = "other.example";
	c.sub = "x";
	c.exp = NOW - 50;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_ISSUER);
	c.iss = ISS;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_AUDIENCE);
	c.aud = AUD;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_VEHICLE);
	c.sub = VIN;
	c.seq = 1;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_EXPIRED);
	/* required options */
	o.vehicle_id = NULL;
	assert_int_equal(verify_cl(&cl_default, &o), BS_CMD_ERR_ARG);
	o = opts_default();
	o.audience = "";
	assert_int_equal(verify_cl(&cl_default, &o), BS_CMD_ERR_ARG);
}

static void
test_claims_format(void **state)
{
	static const char *const parts[][2] = {
		{ "iss", "\"" ISS "\"" }, { "sub", "\"" VIN "\"" }, { "aud", "\"" AUD "\"" },
		{ "iat", "1700000000" }, { "nbf", "1700000000" }, { "exp", "1700000300" },
		{ "jti", "\"" JTI "\"" }, { "seq", "7" }, { "cmd", "\"door.unlock\"" },
		{ "args", ARGS },
	};
	struct bs_cmd_verify_opts o = opts_default();
	struct cl c = cl_default;
	char p[4096], *at;
	size_t i;

	(void)state;
	/* a duplicate claim, also spelled with an escape */
	c.extra = ",\"seq\":8";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	assert_non_null(strstr(detail, "duplicate"));
	c.extra = ",\"s\\u0065q\":8";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	/* an unknown claim */
	c.extra = ",\"scope\":\"all\"";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	assert_non_null(strstr(detail, "unknown claim \"scope\""));
	/* trailing garbage after the object */
	c = cl_default;
	set(p, sizeof(p) - 2, claims(&c));
	strcat(p, " x");
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	/* a float seq */
	set(p, sizeof(p), claims(&c));
	at = strstr(p, "\"seq\":7");
	memmove(at + 9, at + 7, strlen(at + 7) + 1);
	memcpy(at + 7, ".0", 2);
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	/* each claim missing, in turn */
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t k, n = (size_t)snprintf(p, sizeof(p), "{");

		for (k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			if (k != i)
				n += (size_t)snprintf(p + n, sizeof(p) - n, "%s\"%s\":%s",
				    n > 1 ? "," : "", parts[k][0], parts[k][1]);
		snprintf(p + n, sizeof(p) - n, "}");
		if (verify_payload(&ec_key, p, &o) != BS_CMD_ERR_MISSING_CLAIM)
			fail_msg("missing %s: %s (%s)", parts[i][0], detail, p);
		assert_non_null(strstr(detail, parts[i][0]));
	}
	/* types and formats */
	c.extra = "";
	c.sub = "";
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_CLAIMS);
	c = cl_default;
	set(p, sizeof(p), claims(&c));
	at = strstr(p, JTI);
	at[0] = 'A';                                /* jti: lower-case hex only */
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	set(p, sizeof(p), claims(&c));
	at = strstr(p, JTI);
	memmove(at, at + 1, strlen(at + 1) + 1);    /* 31 digits */
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	set(p, sizeof(p), claims(&c));
	at = strstr(p, "\"args\":");
	snprintf(at, sizeof(p) - (size_t)(at - p), "\"args\":[1]}");
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	set(p, sizeof(p), claims(&c));
	at = strstr(p, "\"iat\":");
	memcpy(at + 6, "\"17\"", 4);                /* iat "17",0000000: a string */
	assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
	/* a cmd one byte over the limit */
	set(p, sizeof(p), claims(&c));
	at = strstr(p, "door.unlock");
	{
		char big[BS_CMD_CMD_MAX + 2], q[8192];

		memset(big, 'c', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		*at = '\0';
		snprintf(q, sizeof(q), "%s%s%s", p, big, at + strlen("door.unlock"));
		assert_int_equal(verify_payload(&ec_key, q, &o), BS_CMD_ERR_CLAIMS);
		big[sizeof(big) - 2] = '\0';
		snprintf(q, sizeof(q), "%s%s%s", p, big, at + strlen("door.unlock"));
		assert_int_equal(verify_payload(&ec_key, q, &o), 0);
	}
	/* the claims are not an object */
	assert_int_equal(verify_payload(&ec_key, "[1,2]", &o), BS_CMD_ERR_CLAIMS);
}

/* ---- refused: structure, header, signature -------------------------------------------- */

static void
test_tampered(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char *tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), 0);
	char *tok2, *p, *dot1, *dot2;
	struct cl c = cl_default;
	size_t n;

	(void)state;
	/* another payload under the original signature */
	c.seq = 8;
	tok2 = make_token(&ec_key, header("ES256", ec_key.kid), claims(&c), 0);
	dot1 = strchr(tok, '.');
	dot2 = strrchr(tok, '.');
	n = (size_t)(strchr(tok2, '.') - tok2);
	assert_non_null(p = malloc(strlen(tok) + strlen(tok2)));
	sprintf(p, "%.*s.%.*s%s", (int)(dot1 - tok), tok, (int)(strrchr(tok2, '.') - tok2 - n - 1),
	    tok2 + n + 1, dot2);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
	free(p);
	free(tok2);
	/* one character of the signature */
	p = strdup(tok);
	p[strlen(p) - 5] = p[strlen(p) - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
	free(p);
	/* the same for EdDSA */
	free(tok);
	tok = make_token(&ed_key, header("EdDSA", ed_key.kid), claims(&cl_default), 0);
	p = strdup(tok);
	p[strlen(p) - 5] = p[strlen(p) - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_with(p, &ed_key, &o), BS_CMD_ERR_SIGNATURE);
	free(p);
	free(tok);
	/* a signature by another P-256 key, with the pinned key's kid */
	tok = make_token(&ec_other, header("ES256", ec_key.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
	free(tok);
}

static void
test_der_signature(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char *tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), MK_DER);

	(void)state;
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
	assert_non_null(strstr(detail, "DER is refused"));
	free(tok);
	/* 65 bytes, 63 bytes */
	tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), 0);
	*strrchr(tok, '.') = '\0';
	{
		uint8_t raw[65] = { 1 };
		char *s = b64url(raw, 65), *t = malloc(strlen(tok) + strlen(s) + 2);

		sprintf(t, "%s.%s", tok, s);
		assert_int_equal(verify_with(t, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
		free(s);
		s = b64url(raw, 63);
		sprintf(t, "%s.%s", tok, s);
		assert_int_equal(verify_with(t, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
		free(s);
		s = b64url(raw, 64);            /* r = 2^255.., s = 0: never valid */
		sprintf(t, "%s.%s", tok, s);
		assert_int_equal(verify_with(t, &ec_key, &o), BS_CMD_ERR_SIGNATURE);
		free(s);
		free(t);
	}
	free(tok);
}

static void
test_alg(void **state)
{
	static const char *const algs[] = { "none", "HS256", "ES384", "RS256", "PS256", "ESP256",
	    "es256", "EDDSA", "Ed448", "" };
	struct bs_cmd_verify_opts o = opts_default();
	char h[256], *tok;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		tok = make_token(&ec_key, header(algs[i], ec_key.kid), claims(&cl_default), 0);
		if (verify_with(tok, &ec_key, &o) != BS_CMD_ERR_ALG)
			fail_msg("alg %s: %s", algs[i], detail);
		free(tok);
	}
	/* alg none with an empty signature part: refused before (structure) */
	tok = make_token(&ec_key, header("none", ec_key.kid), claims(&cl_default), 0);
	*(strrchr(tok, '.') + 1) = '\0';
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	free(tok);
	/* no alg, alg not a string */
	snprintf(h, sizeof(h), "{\"kid\":\"%s\"}", ec_key.kid);
	tok = make_token(&ec_key, h, claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_HEADER);
	free(tok);
	snprintf(h, sizeof(h), "{\"alg\":[\"ES256\"],\"kid\":\"%s\"}", ec_key.kid);
	tok = make_token(&ec_key, h, claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_HEADER);
	free(tok);
}

static void
test_header(void **state)
{
	static const char *const bad[] = {      /* after {"alg":"ES256","kid":"<kid>" */
		",\"crit\":[\"exp\"]}",
		",\"jku\":\"https://x\"}",
		",\"typ\":\"JOSE\"}",
		",\"typ\":1}",
		",\"alg\":\"ES256\"}",
		"} ,",
		",\"typ\":\"JWT\",\"b64\":false}",
	};
	struct bs_cmd_verify_opts o = opts_default();
	char h[2 * BS_CMD_MAX_HEADER], *tok;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%s\"%s", ec_key.kid, bad[i]);
		tok = make_token(&ec_key, h, claims(&cl_default), 0);
		if (verify_with(tok, &ec_key, &o) != BS_CMD_ERR_HEADER)
			fail_msg("header %s: %s", h, detail);
		free(tok);
	}
	/* no kid */
	tok = make_token(&ec_key, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_HEADER);
	free(tok);
	/* a header over the size limit */
	snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"JWT\"%*s}", ec_key.kid,
	    BS_CMD_MAX_HEADER, "");
	tok = make_token(&ec_key, h, claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_HEADER);
	free(tok);
}

static void
test_key_mismatch(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char *tok;

	(void)state;
	/* kid of another key (signed by the pinned key) */
	tok = make_token(&ec_key, header("ES256", ec_other.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_KEY_MISMATCH);
	assert_non_null(strstr(detail, ec_other.kid));
	free(tok);
	/* a token of the other key: its kid does not match */
	tok = make_token(&ec_other, header("ES256", ec_other.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_KEY_MISMATCH);
	free(tok);
	/* an Ed25519 token with a P-256 pinned key, and the reverse */
	tok = make_token(&ed_key, header("EdDSA", ed_key.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_KEY_MISMATCH);
	free(tok);
	tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ed_key, &o), BS_CMD_ERR_KEY_MISMATCH);
	free(tok);
	/* alg EdDSA claimed for a P-256 kid */
	tok = make_token(&ec_key, header("EdDSA", ec_key.kid), claims(&cl_default), 0);
	assert_int_equal(verify_with(tok, &ec_key, &o), BS_CMD_ERR_KEY_MISMATCH);
	free(tok);
}

static void
test_structure(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char *tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), 0);
	char *p = malloc(strlen(tok) + 8);
	size_t n = strlen(tok);

	(void)state;
	assert_int_equal(verify_with(tok, &ec_key, &o), 0);
	/* padding: the 86-character signature part padded to 88 */
	sprintf(p, "%s==", tok);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	assert_non_null(strstr(detail, "base64url"));
	/* standard base64 characters, whitespace, a NUL */
	strcpy(p, tok);
	p[n - 3] = '+';
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	p[n - 3] = '/';
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	sprintf(p, "%s\n", tok);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	sprintf(p, " %s", tok);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	{
		struct bs_cmd_claims c;

		strcpy(p, tok);
		p[5] = '\0';
		assert_int_equal(bs_cmd_verify(p, n, ec_key.spki, ec_key.spki_len, &o, &c),
		    BS_CMD_ERR_MALFORMED);
	}
	/* non-zero unused bits in the last character (86 % 4 == 2: 4 bits unused) */
	strcpy(p, tok);
	p[n - 1] = (char)(p[n - 1] == 'A' ? 'B' : p[n - 1] == 'Q' ? 'R' : 'A' + 1);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	/* an impossible length (89 % 4 == 1) */
	sprintf(p, "%sAAA", tok);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	/* two parts, four parts, empty parts */
	strcpy(p, tok);
	*strrchr(p, '.') = '\0';
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	sprintf(p, "%s.AAAA", tok);
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	sprintf(p, "%s", strchr(tok, '.'));
	assert_int_equal(verify_with(p, &ec_key, &o), BS_CMD_ERR_MALFORMED);
	assert_int_equal(verify_with("..", &ec_key, &o), BS_CMD_ERR_MALFORMED);
	assert_int_equal(verify_with("", &ec_key, &o), BS_CMD_ERR_MALFORMED);
	free(p);
	free(tok);
}

static void
test_huge(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	struct cl c = cl_default;
	char *big = malloc(BS_CMD_MAX_TOKEN + 2), *extra;
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, 'A', BS_CMD_MAX_TOKEN + 1);
	big[100] = '.';
	big[200] = '.';
	big[BS_CMD_MAX_TOKEN + 1] = '\0';
	assert_int_equal(verify_with(big, &ec_key, &o), BS_CMD_ERR_TOO_BIG);
	/* a validly signed token over the limit */
	assert_non_null(extra = malloc(BS_CMD_MAX_TOKEN));
	snprintf(extra, BS_CMD_MAX_TOKEN, ",\"pad\":\"%*s\"", BS_CMD_MAX_TOKEN * 3 / 4, "");
	c.extra = extra;
	assert_int_equal(verify_cl(&c, &o), BS_CMD_ERR_TOO_BIG);
	/* deep args within the limits of the token: nested past the JSON depth */
	for (i = 0; i < 40; i++)
		extra[i] = '[';
	for (; i < 80; i++)
		extra[i] = ']';
	extra[80] = '\0';
	{
		char p[2048];

		set(p, sizeof(p), claims(&cl_default));
		snprintf(strstr(p, "\"args\":") + 7, 200, "{\"a\":%s}}", extra);
		assert_int_equal(verify_payload(&ec_key, p, &o), BS_CMD_ERR_CLAIMS);
		assert_non_null(strstr(detail, "nested deeper than 15 levels"));
	}
	free(extra);
	free(big);
}

static void
test_bad_pinned_key(void **state)
{
	struct bs_cmd_verify_opts o = opts_default();
	char *tok = make_token(&ec_key, header("ES256", ec_key.kid), claims(&cl_default), 0);
	char tp[BS_CMD_THUMBPRINT_LEN + 1];
	uint8_t *spki = malloc(ec_key.spki_len + 1);
	struct bs_cmd_claims c;
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	uint8_t *der = NULL;
	int n;

	(void)state;
	memcpy(spki, ec_key.spki, ec_key.spki_len);
	spki[ec_key.spki_len] = 0;
	/* trailing byte, truncated, another curve */
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), spki, ec_key.spki_len + 1, &o, &c),
	    BS_CMD_ERR_KEY);
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), spki, ec_key.spki_len - 1, &o, &c),
	    BS_CMD_ERR_KEY);
	assert_int_equal(bs_cmd_key_thumbprint(spki, ec_key.spki_len - 1, tp), BS_CMD_ERR_KEY);
	assert_int_equal(tp[0], 0);
	assert_true((n = i2d_PUBKEY(p384, &der)) > 0);
	assert_int_equal(bs_cmd_key_thumbprint(der, (size_t)n, tp), BS_CMD_ERR_KEY);
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), der, (size_t)n, &o, &c), BS_CMD_ERR_KEY);
	/* NULL arguments */
	assert_int_equal(bs_cmd_verify(NULL, 0, ec_key.spki, ec_key.spki_len, &o, &c),
	    BS_CMD_ERR_ARG);
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), ec_key.spki, ec_key.spki_len, NULL, &c),
	    BS_CMD_ERR_ARG);
	assert_int_equal(bs_cmd_verify(tok, strlen(tok), ec_key.spki, ec_key.spki_len, &o, NULL),
	    BS_CMD_ERR_ARG);
	assert_int_equal(bs_cmd_key_thumbprint(NULL, 0, tp), BS_CMD_ERR_KEY);
	OPENSSL_free(der);
	EVP_PKEY_free(p384);
	free(spki);
	free(tok);
}

static void
test_strerror(void **state)
{
	int rc;

	(void)state;
	for (rc = BS_CMD_ERR_REPLAYED; rc <= 0; rc++) {
		assert_string_not_equal(bs_cmd_strerror(rc), "unknown result code");
		assert_string_not_equal(bs_cmd_result_name(rc), "unknown");
	}
	assert_string_equal(bs_cmd_strerror(-99), "unknown result code");
	assert_string_equal(bs_cmd_result_name(BS_CMD_ERR_EXPIRED), "expired");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_es256),
		cmocka_unit_test(test_good_eddsa),
		cmocka_unit_test(test_header_variants),
		cmocka_unit_test(test_rfc7515_a3),
		cmocka_unit_test(test_rfc8037),
		cmocka_unit_test(test_replayed),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_claims_format),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_der_signature),
		cmocka_unit_test(test_alg),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_bad_pinned_key),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
