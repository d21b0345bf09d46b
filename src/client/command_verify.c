/*
 * command_verify.c - the vehicle side of signed commands
 * (include/boltseal/command.h): verifies a JWS compact token against a
 * pinned P-256 or Ed25519 key and checks its claims. OpenSSL and jansson
 * (read through formats/json_strict.c) only; no I/O, no state.
 *
 * The checks run in one fixed order and the first failure decides:
 *   0. the caller's arguments, the pinned key;
 *   1. structure: size, three parts, strict base64url;
 *   2. header: strict JSON, members, alg, typ, kid against the pinned key;
 *   3. signature;
 *   4. claims: strict JSON, presence, types and formats, then iss, aud,
 *      sub, nbf, iat, exp, seq.
 * Nothing of the payload is read before the signature verified.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "boltseal/command.h"
#include "client/command_int.h"
#include "formats/json_strict.h"

#define SPKI_MAX 256          /* a P-256 SPKI is 91 bytes, an Ed25519 one 44 */
#define SAFE_MAX 72           /* bytes of a token string quoted in a detail */
#define B64_ENC_LEN(n) (((n) * 4 + 2) / 3)

/* Writes the detail line (if wanted) and returns rc. */
static int __attribute__((format(printf, 4, 5)))
fail(char *d, size_t dlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (d != NULL && dlen > 0) {
		va_start(ap, fmt);
		vsnprintf(d, dlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* s for a message: printable ASCII only (others as '?'), cut at SAFE_MAX bytes. */
static const char *
safe(const char *s, char buf[SAFE_MAX + 4])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < SAFE_MAX; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* ---- base64url (RFC 4648 §5, no padding) ---------------------------------------------- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
b64url_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* Encodes n bytes into out (B64_ENC_LEN(n) + 1 bytes); returns the length without the NUL. */
static size_t
b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

/*
 * Strict decode of n characters into out (room for n * 3 / 4 bytes): the
 * alphabet only (no '=', no whitespace), no impossible length, zero
 * unused bits (one spelling per byte string). 0, or -1 with *bad the
 * offset of the offending character.
 */
static int
b64url_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, size_t *bad)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int v, bits = 0;

	if (n % 4 == 1) {
		*bad = n - 1;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((v = b64url_val((unsigned char)in[i])) < 0) {
			*bad = i;
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {
		*bad = n - 1;    /* unused bits set: a second spelling */
		return -1;
	}
	*outlen = o;
	return 0;
}

/* ---- the pinned key ------------------------------------------------------------------ */

/* RFC 7638 thumbprint of k (type already known) into k->thumb. */
static int
thumbprint(struct cmd_key *k)
{
	char x[B64_ENC_LEN(32) + 1], y[B64_ENC_LEN(32) + 1], json[160];
	uint8_t raw[32], md[32];
	BIGNUM *bx = NULL, *by = NULL;
	size_t rlen = sizeof(raw);
	unsigned int mdlen = 0;
	int n, rc = BS_CMD_ERR_CRYPTO;

	if (k->type == CMD_KEY_P256) {
		if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
		    EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1)
			goto out;
		if (BN_bn2binpad(bx, raw, 32) != 32)
			goto out;
		b64url_encode(raw, 32, x);
		if (BN_bn2binpad(by, raw, 32) != 32)
			goto out;
		b64url_encode(raw, 32, y);
		n = snprintf(json, sizeof(json), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
		    "\"y\":\"%s\"}", x, y);
	} else {
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rlen) != 1 || rlen != 32)
			goto out;
		b64url_encode(raw, 32, x);
		n = snprintf(json, sizeof(json), "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}",
		    x);
	}
	if (n < 0 || (size_t)n >= sizeof(json))
		goto out;
	if (EVP_Digest(json, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		goto out;
	b64url_encode(md, 32, k->thumb);
	rc = 0;
out:
	BN_free(bx);
	BN_free(by);
	return rc;
}

int
cmd_key_load(const uint8_t *spki, size_t len, struct cmd_key *k)
{
	const unsigned char *p = spki;
	unsigned char *re = NULL;
	char grp[32];
	size_t glen = 0;
	int relen, rc = BS_CMD_ERR_KEY;

	memset(k, 0, sizeof(*k));
	if (spki == NULL || len == 0 || len > SPKI_MAX)
		return BS_CMD_ERR_KEY;
	if ((k->pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len)
		goto out;
	/* DER exactly as OpenSSL writes it: one encoding, a named curve */
	if ((relen = i2d_PUBKEY(k->pkey, &re)) <= 0 || (size_t)relen != len ||
	    memcmp(re, spki, len) != 0)
		goto out;
	if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
		k->type = CMD_KEY_ED25519;
	} else if (EVP_PKEY_is_a(k->pkey, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp),
	    &glen) == 1 && strcmp(grp, SN_X9_62_prime256v1) == 0) {
		k->type = CMD_KEY_P256;
	} else {
		goto out;
	}
	rc = thumbprint(k);
out:
	OPENSSL_free(re);
	if (rc != 0)
		cmd_key_clear(k);
	return rc;
}

void
cmd_key_clear(struct cmd_key *k)
{
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

static const char *
keytype_name(enum cmd_keytype t)
{
	switch (t) {
	case CMD_KEY_P256:
		return "P-256";
	case CMD_KEY_ED25519:
		return "Ed25519";
	default:
		return "unknown";
	}
}

int
bs_cmd_key_thumbprint(const uint8_t *spki, size_t len, char out[BS_CMD_THUMBPRINT_LEN + 1])
{
	struct cmd_key k;
	int rc;

	if (out == NULL)
		return BS_CMD_ERR_ARG;
	memset(out, 0, BS_CMD_THUMBPRINT_LEN + 1);
	ERR_set_mark();
	if ((rc = cmd_key_load(spki, len, &k)) == 0)
		memcpy(out, k.thumb, sizeof(k.thumb));
	cmd_key_clear(&k);
	ERR_pop_to_mark();
	return rc;
}

/* ---- structure and signature (the JWS layer) ------------------------------------------ */

static const char *const part_names[3] = { "header", "payload", "signature" };

int
cmd_jws_split(const char *token, size_t len, struct cmd_jws *j, char *d, size_t dl)
{
	size_t start[3], plen[3], outlen[3], i, ndots = 0, bad = 0, off = 0;
	uint8_t *p;
	int k;

	memset(j, 0, sizeof(*j));
	if (len > BS_CMD_MAX_TOKEN)
		return fail(d, dl, BS_CMD_ERR_TOO_BIG, "the token is %zu bytes, more than %d", len,
		    BS_CMD_MAX_TOKEN);
	start[0] = 0;
	for (i = 0; i < len; i++) {
		if (token[i] != '.')
			continue;
		if (ndots == 2)
			return fail(d, dl, BS_CMD_ERR_MALFORMED, "more than two '.' (offset %zu): not "
			    "a JWS compact serialization", i);
		plen[ndots] = i - start[ndots];
		start[++ndots] = i + 1;
	}
	if (ndots != 2)
		return fail(d, dl, BS_CMD_ERR_MALFORMED, "%zu '.' instead of two: not a JWS compact "
		    "serialization", ndots);
	plen[2] = len - start[2];
	for (k = 0; k < 3; k++)
		if (plen[k] == 0)
			return fail(d, dl, BS_CMD_ERR_MALFORMED, "the %s part is empty", part_names[k]);
	if ((j->buf = malloc(len)) == NULL)
		return fail(d, dl, BS_CMD_ERR_NOMEM, "out of memory");
	for (k = 0, p = j->buf; k < 3; k++) {
		if (b64url_decode(token + start[k], plen[k], p, &outlen[k], &bad) != 0) {
			cmd_jws_free(j);
			return fail(d, dl, BS_CMD_ERR_MALFORMED, "the %s part is not strict base64url "
			    "(RFC 4648 section 5, no padding) at offset %zu", part_names[k],
			    start[k] + bad);
		}
		p += outlen[k];
	}
	j->header = j->buf;
	j->header_len = outlen[0];
	off = outlen[0];
	j->payload = j->buf + off;
	j->payload_len = outlen[1];
	off += outlen[1];
	j->sig = j->buf + off;
	j->sig_len = outlen[2];
	j->signing_input_len = start[2] - 1;
	return 0;
}

void
cmd_jws_free(struct cmd_jws *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

/* 64 bytes r||s into DER (*der malloc'd by OpenSSL). 0 or BS_CMD_ERR_NOMEM. */
static int
es256_der(const uint8_t sig[64], unsigned char **der, int *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int rc = BS_CMD_ERR_NOMEM;

	if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL;  /* owned by es */
	if ((*derlen = i2d_ECDSA_SIG(es, der)) <= 0)
		goto out;
	rc = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rc;
}

int
cmd_jws_sig_check(const struct cmd_key *k, enum cmd_alg alg, const uint8_t *si, size_t silen,
    const uint8_t *sig, size_t siglen, char *d, size_t dl)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *s = sig;
	size_t slen = siglen;
	int derlen = 0, rc, v;

	if ((alg == CMD_ALG_ES256) != (k->type == CMD_KEY_P256))
		return fail(d, dl, BS_CMD_ERR_KEY_MISMATCH, "alg %s does not fit the pinned %s key",
		    alg == CMD_ALG_ES256 ? "ES256" : "EdDSA", keytype_name(k->type));
	if (siglen != 64)
		return fail(d, dl, BS_CMD_ERR_SIGNATURE, "the signature is %zu bytes, not 64 (%s)",
		    siglen, alg == CMD_ALG_ES256 ? "ES256 is r||s, DER is refused" : "Ed25519");
	if (alg == CMD_ALG_ES256) {
		if ((rc = es256_der(sig, &der, &derlen)) != 0)
			return fail(d, dl, rc, "out of memory");
		s = der;
		slen = (size_t)derlen;
	}
	rc = BS_CMD_ERR_CRYPTO;
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		rc = fail(d, dl, BS_CMD_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, alg == CMD_ALG_ES256 ? EVP_sha256() : NULL, NULL,
	    k->pkey) != 1) {
		rc = fail(d, dl, BS_CMD_ERR_CRYPTO, "OpenSSL cannot set up the verification");
		goto out;
	}
	v = EVP_DigestVerify(ctx, s, slen, si, silen);
	if (v == 1)
		rc = 0;
	else
		rc = fail(d, dl, BS_CMD_ERR_SIGNATURE, "the %s signature does not verify with the "
		    "pinned key", alg == CMD_ALG_ES256 ? "ES256" : "EdDSA");
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

/*
 * What a header or the claims may be (docs/commands.md, "Strict JSON"): an
 * object, 64 KiB, nested 16 deep counting the object as 1 (json_strict
 * counts it as 0), 64 members per object, keys of 256 bytes.
 */
static const struct json_strict_limits token_json = {
	.max_len = 64 * 1024, .max_depth = 15, .max_members = 64, .max_key = 256, .object = 1,
};
#define JSON_ERR_MAX 256

/* The JSON type of v, for messages. */
static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		return "null";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real";
	case JSON_STRING:
		return "string";
	case JSON_ARRAY:
		return "array";
	case JSON_OBJECT:
		return "object";
	default:
		return "value";
	}
}

/* Parses a header or the claims (what: "the header is"); rc (bad) and a detail on refusal. */
static int
parse_part(const uint8_t *buf, size_t len, const char *what, int bad, json_t **out, char *d,
    size_t dl)
{
	char err[JSON_ERR_MAX];
	int rc = json_strict_parse(buf, len, &token_json, out, err, sizeof(err));

	if (rc == BS_ERR_NOMEM)
		return fail(d, dl, BS_CMD_ERR_NOMEM, "out of memory");
	if (rc != 0)
		return fail(d, dl, bad, "%s not strict JSON: %s", what, err);
	return 0;
}

/* The header's "alg" (a string member of o) into *alg and name (8 bytes). */
static int
header_alg(const json_t *o, enum cmd_alg *alg, char name[8], char *d, size_t dl)
{
	const json_t *m = json_object_get(o, "alg");
	const char *v;
	char sb[SAFE_MAX + 4];

	if (m == NULL)
		return fail(d, dl, BS_CMD_ERR_HEADER, "the header has no \"alg\"");
	if (!json_is_string(m))
		return fail(d, dl, BS_CMD_ERR_HEADER, "the header's \"alg\" is a %s, not a string",
		    type_name(m));
	v = json_string_value(m);
	if (strcmp(v, "ES256") == 0)
		*alg = CMD_ALG_ES256;
	else if (strcmp(v, "EdDSA") == 0 || strcmp(v, "Ed25519") == 0)
		*alg = CMD_ALG_EDDSA;
	else
		return fail(d, dl, BS_CMD_ERR_ALG, "alg \"%s\" is not supported (ES256, EdDSA, "
		    "Ed25519)", safe(v, sb));
	memcpy(name, v, strlen(v) + 1);  /* one of the three names above: at most 8 bytes */
	return 0;
}

int
cmd_jws_verify(const char *token, size_t len, const uint8_t *spki, size_t spki_len)
{
	json_t *o = NULL;
	struct cmd_jws j;
	struct cmd_key k;
	enum cmd_alg alg;
	char name[8];
	int rc;

	memset(&j, 0, sizeof(j));
	ERR_set_mark();
	if ((rc = cmd_key_load(spki, spki_len, &k)) != 0)
		goto out;
	if (token == NULL) {
		rc = BS_CMD_ERR_ARG;
		goto out;
	}
	if ((rc = cmd_jws_split(token, len, &j, NULL, 0)) != 0)
		goto out;
	if ((rc = parse_part(j.header, j.header_len, "the header is", BS_CMD_ERR_HEADER, &o, NULL,
	    0)) != 0)
		goto out;
	if ((rc = header_alg(o, &alg, name, NULL, 0)) != 0)
		goto out;
	rc = cmd_jws_sig_check(&k, alg, (const uint8_t *)token, j.signing_input_len, j.sig,
	    j.sig_len, NULL, 0);
out:
	json_decref(o);
	cmd_jws_free(&j);
	cmd_key_clear(&k);
	ERR_pop_to_mark();
	return rc;
}

/* ---- header --------------------------------------------------------------------------- */

int
cmd_header_check(const uint8_t *hdr, size_t len, const struct cmd_key *k, enum cmd_alg *alg,
    struct bs_cmd_claims *c, char *d, size_t dl)
{
	json_t *o = NULL;
	const json_t *m;
	const char *key;
	json_t *val;
	char sb[SAFE_MAX + 4];
	int rc;

	if (len > BS_CMD_MAX_HEADER)
		return fail(d, dl, BS_CMD_ERR_HEADER, "the header is %zu bytes, more than %d", len,
		    BS_CMD_MAX_HEADER);
	if ((rc = parse_part(hdr, len, "the header is", BS_CMD_ERR_HEADER, &o, d, dl)) != 0)
		goto out;
	rc = BS_CMD_ERR_HEADER;
	if (json_object_get(o, "crit") != NULL) {
		rc = fail(d, dl, rc, "the header has \"crit\": no extension is understood");
		goto out;
	}
	json_object_foreach(o, key, val) {
		if (strcmp(key, "alg") != 0 && strcmp(key, "kid") != 0 && strcmp(key, "typ") != 0) {
			rc = fail(d, dl, rc, "the header has an unknown member \"%s\" (only alg, kid, "
			    "typ)", safe(key, sb));
			goto out;
		}
	}
	if ((rc = header_alg(o, alg, c->alg, d, dl)) != 0)
		goto out;
	rc = BS_CMD_ERR_HEADER;
	if ((m = json_object_get(o, "typ")) != NULL &&
	    (!json_is_string(m) || strcmp(json_string_value(m), "JWT") != 0)) {
		rc = fail(d, dl, rc, "the header's \"typ\" is not \"JWT\"");
		goto out;
	}
	if ((m = json_object_get(o, "kid")) == NULL) {
		rc = fail(d, dl, rc, "the header has no \"kid\"");
		goto out;
	}
	if (!json_is_string(m)) {
		rc = fail(d, dl, rc, "the header's \"kid\" is a %s, not a string", type_name(m));
		goto out;
	}
	rc = BS_CMD_ERR_KEY_MISMATCH;
	if ((*alg == CMD_ALG_ES256) != (k->type == CMD_KEY_P256)) {
		rc = fail(d, dl, rc, "alg %s does not fit the pinned %s key", c->alg,
		    keytype_name(k->type));
		goto out;
	}
	if (strcmp(json_string_value(m), k->thumb) != 0) {
		rc = fail(d, dl, rc, "kid \"%s\" is not the pinned key's thumbprint %s",
		    safe(json_string_value(m), sb), k->thumb);
		goto out;
	}
	memcpy(c->kid, k->thumb, sizeof(c->kid));
	rc = 0;
out:
	if (rc != 0) {
		memset(c->alg, 0, sizeof(c->alg));
		memset(c->kid, 0, sizeof(c->kid));
	}
	json_decref(o);
	return rc;
}

/* ---- claims --------------------------------------------------------------------------- */

static const char *const claim_names[] = {
	"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "seq", "cmd", "args",
};
#define NCLAIMS (sizeof(claim_names) / sizeof(claim_names[0]))

/* A non-empty string claim without control characters into out (outsz bytes). */
static int
claim_str(const json_t *o, const char *name, char *out, size_t outsz, char *d, size_t dl)
{
	const json_t *m = json_object_get(o, name);
	size_t n, i;

	if (!json_is_string(m))
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" is a %s, not a string", name,
		    type_name(m));
	n = json_string_length(m);
	if (n >= outsz)
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" is longer than %zu bytes", name,
		    outsz - 1);
	memcpy(out, json_string_value(m), n + 1);   /* no NUL inside: json_strict refuses \u0000 */
	if (n == 0)
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" is empty", name);
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" has a control character",
			    name);
	return 0;
}

/* An integer claim in [lo, hi] into *v. */
static int
claim_int(const json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *v, char *d,
    size_t dl)
{
	const json_t *m = json_object_get(o, name);
	json_int_t n;

	if (!json_is_integer(m))
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" is a %s, not an integer", name,
		    type_name(m));
	n = json_integer_value(m);
	if (n < lo || n > hi)
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"%s\" is %lld, outside %lld..%lld",
		    name, (long long)n, (long long)lo, (long long)hi);
	*v = (int64_t)n;
	return 0;
}

/* Presence, no unknown claim, types and formats; fills c but args. */
static int
claims_read(const json_t *o, struct bs_cmd_claims *c, char *d, size_t dl)
{
	char sb[SAFE_MAX + 4];
	const char *key;
	const json_t *m;
	json_t *val;
	int64_t seq = 0;
	size_t i, n;
	int rc;

	for (i = 0; i < NCLAIMS; i++)
		if (json_object_get(o, claim_names[i]) == NULL)
			return fail(d, dl, BS_CMD_ERR_MISSING_CLAIM, "claim \"%s\" is missing",
			    claim_names[i]);
	json_object_foreach((json_t *)o, key, val) {
		for (n = 0; n < NCLAIMS && strcmp(key, claim_names[n]) != 0; n++)
			;
		if (n == NCLAIMS)
			return fail(d, dl, BS_CMD_ERR_CLAIMS, "unknown claim \"%s\"", safe(key, sb));
	}
	if ((rc = claim_str(o, "iss", c->iss, sizeof(c->iss), d, dl)) != 0 ||
	    (rc = claim_str(o, "sub", c->sub, sizeof(c->sub), d, dl)) != 0 ||
	    (rc = claim_str(o, "aud", c->aud, sizeof(c->aud), d, dl)) != 0 ||
	    (rc = claim_str(o, "cmd", c->cmd, sizeof(c->cmd), d, dl)) != 0 ||
	    (rc = claim_int(o, "iat", 0, BS_CMD_MAX_TIME, &c->iat, d, dl)) != 0 ||
	    (rc = claim_int(o, "nbf", 0, BS_CMD_MAX_TIME, &c->nbf, d, dl)) != 0 ||
	    (rc = claim_int(o, "exp", 0, BS_CMD_MAX_TIME, &c->exp, d, dl)) != 0 ||
	    (rc = claim_int(o, "seq", 1, INT64_MAX, &seq, d, dl)) != 0)
		return rc;
	c->seq = (uint64_t)seq;
	m = json_object_get(o, "jti");
	n = json_is_string(m) ? json_string_length(m) : 0;
	if (n != BS_CMD_JTI_LEN)
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"jti\" is not %d lower-case hex digits",
		    BS_CMD_JTI_LEN);
	memcpy(c->jti, json_string_value(m), n + 1);
	for (i = 0; i < n; i++)
		if (!((c->jti[i] >= '0' && c->jti[i] <= '9') || (c->jti[i] >= 'a' && c->jti[i] <= 'f')))
			return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"jti\" is not %d lower-case hex "
			    "digits", BS_CMD_JTI_LEN);
	if (!json_is_object(m = json_object_get(o, "args")))
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "claim \"args\" is a %s, not an object",
		    type_name(m));
	if (c->exp <= c->nbf)
		return fail(d, dl, BS_CMD_ERR_CLAIMS, "exp %lld is not after nbf %lld",
		    (long long)c->exp, (long long)c->nbf);
	return 0;
}

/* The value checks, in their documented order. */
static int
claims_match(const struct bs_cmd_claims *c, const struct bs_cmd_verify_opts *opts, char *d,
    size_t dl)
{
	char s1[SAFE_MAX + 4], s2[SAFE_MAX + 4];
	long long now = (long long)opts->now, skew = (long long)opts->skew;

	if (opts->issuer != NULL && strcmp(c->iss, opts->issuer) != 0)
		return fail(d, dl, BS_CMD_ERR_ISSUER, "iss \"%s\" is not the expected issuer \"%s\"",
		    safe(c->iss, s1), safe(opts->issuer, s2));
	if (strcmp(c->aud, opts->audience) != 0)
		return fail(d, dl, BS_CMD_ERR_AUDIENCE, "aud \"%s\" is not this audience \"%s\"",
		    safe(c->aud, s1), safe(opts->audience, s2));
	if (strcmp(c->sub, opts->vehicle_id) != 0)
		return fail(d, dl, BS_CMD_ERR_VEHICLE, "sub \"%s\" is not this vehicle \"%s\"",
		    safe(c->sub, s1), safe(opts->vehicle_id, s2));
	/* all values are within 0..BS_CMD_MAX_TIME and skew <= BS_CMD_MAX_SKEW: no overflow */
	if (c->nbf > now + skew)
		return fail(d, dl, BS_CMD_ERR_NOT_YET_VALID, "nbf %lld is after now %lld + skew %lld s",
		    (long long)c->nbf, now, skew);
	if (c->iat > now + skew)
		return fail(d, dl, BS_CMD_ERR_NOT_YET_VALID, "iat %lld is after now %lld + skew %lld s "
		    "(issued in the future)", (long long)c->iat, now, skew);
	if (now >= c->exp + skew)
		return fail(d, dl, BS_CMD_ERR_EXPIRED, "exp %lld + skew %lld s is not after now %lld",
		    (long long)c->exp, skew, now);
	if (c->seq <= opts->last_seq)
		return fail(d, dl, BS_CMD_ERR_REPLAYED, "seq %llu is not above the last accepted seq "
		    "%llu", (unsigned long long)c->seq, (unsigned long long)opts->last_seq);
	return 0;
}

int
cmd_claims_check(const uint8_t *payload, size_t len, const struct bs_cmd_verify_opts *opts,
    struct bs_cmd_claims *c, char *d, size_t dl)
{
	json_t *o = NULL;
	json_malloc_t jmalloc;
	json_free_t jfree;
	char *args;
	int rc;

	c->args = NULL;
	c->args_len = 0;
	if ((rc = parse_part(payload, len, "the claims are", BS_CMD_ERR_CLAIMS, &o, d, dl)) != 0)
		goto out;
	if ((rc = claims_read(o, c, d, dl)) != 0 || (rc = claims_match(c, opts, d, dl)) != 0)
		goto out;
	/* args in compact form, members in the signed order (what the issuer wrote, for ours) */
	args = json_dumps(json_object_get(o, "args"), JSON_COMPACT);
	if (args == NULL) {
		rc = fail(d, dl, BS_CMD_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* json_dumps allocates with jansson's functions, which an application may have set */
	json_get_alloc_funcs(&jmalloc, &jfree);
	c->args_len = strlen(args);
	if ((c->args = malloc(c->args_len + 1)) != NULL)
		memcpy(c->args, args, c->args_len + 1);
	OPENSSL_cleanse(args, c->args_len);
	jfree(args);
	if (c->args == NULL) {
		c->args_len = 0;
		rc = fail(d, dl, BS_CMD_ERR_NOMEM, "out of memory");
		goto out;
	}
out:
	json_decref(o);
	return rc;
}

/* ---- the API -------------------------------------------------------------------------- */

static int
check_args(const char *token, const uint8_t *spki, const struct bs_cmd_verify_opts *opts,
    char *d, size_t dl)
{
	if (token == NULL || spki == NULL || opts == NULL)
		return fail(d, dl, BS_CMD_ERR_ARG, "token, key and options are required");
	if (opts->vehicle_id == NULL || opts->vehicle_id[0] == '\0' || opts->audience == NULL ||
	    opts->audience[0] == '\0')
		return fail(d, dl, BS_CMD_ERR_ARG, "vehicle_id and audience are required");
	if (opts->now < 0 || opts->now > BS_CMD_MAX_TIME)
		return fail(d, dl, BS_CMD_ERR_ARG, "now %lld is outside 0..%lld",
		    (long long)opts->now, (long long)BS_CMD_MAX_TIME);
	if (opts->skew < 0 || opts->skew > BS_CMD_MAX_SKEW)
		return fail(d, dl, BS_CMD_ERR_ARG, "skew %lld is outside 0..%d",
		    (long long)opts->skew, BS_CMD_MAX_SKEW);
	return 0;
}

int
bs_cmd_verify_detail(const char *token, size_t len, const uint8_t *spki, size_t spki_len,
    const struct bs_cmd_verify_opts *opts, struct bs_cmd_claims *out, char *d, size_t dl)
{
	struct bs_cmd_claims c;
	struct cmd_key k;
	struct cmd_jws j;
	enum cmd_alg alg;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&k, 0, sizeof(k));
	memset(&j, 0, sizeof(j));
	if (d != NULL && dl > 0)
		d[0] = '\0';
	if (out == NULL)
		return fail(d, dl, BS_CMD_ERR_ARG, "out is NULL");
	memset(out, 0, sizeof(*out));
	ERR_set_mark();
	if ((rc = check_args(token, spki, opts, d, dl)) != 0)
		goto out;
	if ((rc = cmd_key_load(spki, spki_len, &k)) != 0) {
		rc = fail(d, dl, rc, "%s", rc == BS_CMD_ERR_KEY ? "the pinned key is not the DER "
		    "SubjectPublicKeyInfo of a P-256 or Ed25519 key" : bs_cmd_strerror(rc));
		goto out;
	}
	if ((rc = cmd_jws_split(token, len, &j, d, dl)) != 0 ||
	    (rc = cmd_header_check(j.header, j.header_len, &k, &alg, &c, d, dl)) != 0 ||
	    (rc = cmd_jws_sig_check(&k, alg, (const uint8_t *)token, j.signing_input_len, j.sig,
	    j.sig_len, d, dl)) != 0 ||
	    (rc = cmd_claims_check(j.payload, j.payload_len, opts, &c, d, dl)) != 0)
		goto out;
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	bs_cmd_claims_free(&c);
	cmd_jws_free(&j);
	cmd_key_clear(&k);
	ERR_pop_to_mark();
	return rc;
}

int
bs_cmd_verify(const char *token, size_t len, const uint8_t *spki, size_t spki_len,
    const struct bs_cmd_verify_opts *opts, struct bs_cmd_claims *out)
{
	return bs_cmd_verify_detail(token, len, spki, spki_len, opts, out, NULL, 0);
}

void
bs_cmd_claims_free(struct bs_cmd_claims *c)
{
	if (c == NULL)
		return;
	free(c->args);
	memset(c, 0, sizeof(*c));
}

const char *
bs_cmd_strerror(int rc)
{
	switch (rc) {
	case BS_CMD_OK:
		return "valid";
	case BS_CMD_ERR_ARG:
		return "invalid arguments: token, key, options with vehicle_id and audience, now and "
		    "skew in range";
	case BS_CMD_ERR_KEY:
		return "the pinned key is not the DER SubjectPublicKeyInfo of a P-256 or Ed25519 key";
	case BS_CMD_ERR_NOMEM:
		return "out of memory";
	case BS_CMD_ERR_CRYPTO:
		return "OpenSSL failed";
	case BS_CMD_ERR_TOO_BIG:
		return "the token is longer than the limit";
	case BS_CMD_ERR_MALFORMED:
		return "malformed token: not three non-empty base64url parts (no padding) joined by "
		    "'.'";
	case BS_CMD_ERR_HEADER:
		return "malformed header: not strict JSON, or not exactly alg, kid and typ \"JWT\" "
		    "(crit is refused)";
	case BS_CMD_ERR_ALG:
		return "unsupported alg: only ES256, EdDSA and Ed25519 are accepted";
	case BS_CMD_ERR_KEY_MISMATCH:
		return "key mismatch: kid is not the pinned key's thumbprint, or alg does not fit "
		    "its type";
	case BS_CMD_ERR_SIGNATURE:
		return "bad signature: it does not verify with the pinned key, or is not 64 bytes";
	case BS_CMD_ERR_CLAIMS:
		return "malformed claims: not strict JSON, a claim of the wrong type or format, or "
		    "an unknown claim";
	case BS_CMD_ERR_MISSING_CLAIM:
		return "a required claim is missing";
	case BS_CMD_ERR_ISSUER:
		return "wrong issuer: iss is not the expected issuer";
	case BS_CMD_ERR_AUDIENCE:
		return "wrong audience: aud is not this audience";
	case BS_CMD_ERR_VEHICLE:
		return "wrong vehicle: sub is not this vehicle";
	case BS_CMD_ERR_NOT_YET_VALID:
		return "not yet valid: nbf or iat is after now + skew";
	case BS_CMD_ERR_EXPIRED:
		return "expired: now is at or after exp + skew";
	case BS_CMD_ERR_REPLAYED:
		return "replayed: seq is not above the last accepted seq";
	default:
		return "unknown result code";
	}
}

const char *
bs_cmd_result_name(int rc)
{
	switch (rc) {
	case BS_CMD_OK:
		return "ok";
	case BS_CMD_ERR_ARG:
		return "arg";
	case BS_CMD_ERR_KEY:
		return "key";
	case BS_CMD_ERR_NOMEM:
		return "nomem";
	case BS_CMD_ERR_CRYPTO:
		return "crypto";
	case BS_CMD_ERR_TOO_BIG:
		return "too_big";
	case BS_CMD_ERR_MALFORMED:
		return "malformed";
	case BS_CMD_ERR_HEADER:
		return "bad_header";
	case BS_CMD_ERR_ALG:
		return "unsupported_alg";
	case BS_CMD_ERR_KEY_MISMATCH:
		return "key_mismatch";
	case BS_CMD_ERR_SIGNATURE:
		return "bad_signature";
	case BS_CMD_ERR_CLAIMS:
		return "bad_claims";
	case BS_CMD_ERR_MISSING_CLAIM:
		return "missing_claim";
	case BS_CMD_ERR_ISSUER:
		return "wrong_issuer";
	case BS_CMD_ERR_AUDIENCE:
		return "wrong_audience";
	case BS_CMD_ERR_VEHICLE:
		return "wrong_vehicle";
	case BS_CMD_ERR_NOT_YET_VALID:
		return "not_yet_valid";
	case BS_CMD_ERR_EXPIRED:
		return "expired";
	case BS_CMD_ERR_REPLAYED:
		return "replayed";
	default:
		return "unknown";
	}
}
