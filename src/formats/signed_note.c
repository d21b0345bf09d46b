/*
 * signed_note.c - C2SP signed notes with Ed25519 (type 0x01) and tlog
 * checkpoint bodies: key ids, vkeys, signature lines, note verification
 * (note_open, modelled line by line on golang.org/x/mod/sumdb/note Open),
 * checkpoint body formatting and parsing.
 *
 * Everything here reads caller-supplied bytes with explicit lengths; the
 * only C strings are the names and vkeys the API takes as such, and those
 * are measured with strnlen against a cap first. Base64 is common/b64.h's
 * strict decoding (RFC 4648 standard alphabet with padding, one spelling
 * per byte string). Ed25519 verification is OpenSSL's (EVP_DigestVerify).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/b64.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "formats/signed_note.h"

#define EM_DASH_SP "\xe2\x80\x94 "
#define EM_DASH_SP_LEN 4
#define ROOT_LEN 32
#define ROOT_B64_LEN 44
#define SIG_BLOB_LEN (NOTE_KEY_ID_LEN + NOTE_ED25519_SIG_LEN)   /* 68 */
#define VKEY_KEY_MAX (NOTE_VKEY_PARSE_MAX / 4 * 3)

/* ---- UTF-8 and names ----------------------------------------------------- */

/* Unicode White_Space, which is what Go's unicode.IsSpace tests. */
static int
is_space(uint32_t c)
{
	switch (c) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202f: case 0x205f: case 0x3000:
		return 1;
	default:
		return c >= 0x2000 && c <= 0x200a;
	}
}

/* C0, DEL and C1 control characters (Unicode category Cc). */
static int
is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/*
 * Name check on p[0..n). strict: our rule (length cap, no controls); else
 * Go's isValidName (non-empty, UTF-8, no white space, no '+').
 */
static int
name_ok(const uint8_t *p, size_t n, int strict)
{
	size_t i = 0, k;
	uint32_t c;

	if (n == 0 || (strict && n > NOTE_NAME_MAX))
		return 0;
	while (i < n) {
		k = bs_utf8_decode(p + i, n - i, &c);
		if (k == 0 || is_space(c) || c == '+' || (strict && is_control(c)))
			return 0;
		i += k;
	}
	return 1;
}

/* strnlen without depending on POSIX feature macros: length of s, at most max. */
static size_t
bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0')
		n++;
	return n;
}

/* Length of the NUL-terminated s if it is a valid strict name, else 0. */
static size_t
name_len(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = bounded_len(s, NOTE_NAME_MAX + 1);
	if (!name_ok((const uint8_t *)s, n, 1))
		return 0;
	return n;
}

int
note_name_valid(const char *name)
{
	return name_len(name) != 0;
}

/* Go's note check: valid UTF-8, no control character below 0x20 but "\n". */
static int
text_ok(const uint8_t *p, size_t n)
{
	size_t i = 0, k;
	uint32_t c;

	while (i < n) {
		k = bs_utf8_decode(p + i, n - i, &c);
		if (k == 0 || (c < 0x20 && c != '\n'))
			return 0;
		i += k;
	}
	return 1;
}

/* ---- hashing and verification -------------------------------------------- */

/* id = SHA-256(name || "\n" || key[0..keylen))[:4]. Returns 0, BS_ERR_NOMEM or BS_ERR_CRYPTO. */
static int
key_hash(const uint8_t *name, size_t namelen, const uint8_t *key, size_t keylen,
    uint8_t id[NOTE_KEY_ID_LEN])
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = BS_ERR_CRYPTO;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, name, namelen) != 1 ||
	    EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
	    EVP_DigestUpdate(ctx, key, keylen) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < NOTE_KEY_ID_LEN)
		goto out;
	memcpy(id, md, NOTE_KEY_ID_LEN);
	rc = 0;
out:
	if (rc != 0)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Ed25519 check of sig over msg. Returns 0, BS_ERR_SIG_INVALID, BS_ERR_NOMEM or BS_ERR_CRYPTO. */
static int
ed25519_verify(const uint8_t pub[NOTE_ED25519_PUB_LEN], const uint8_t *msg, size_t len,
    const uint8_t sig[NOTE_ED25519_SIG_LEN])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	int rc;

	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, NOTE_ED25519_PUB_LEN);
	if (pk == NULL) {
		rc = BS_ERR_CRYPTO;
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1) {
		rc = BS_ERR_CRYPTO;
		goto out;
	}
	rc = EVP_DigestVerify(ctx, sig, NOTE_ED25519_SIG_LEN, msg, len) == 1 ? 0 : BS_ERR_SIG_INVALID;
out:
	if (rc != 0)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

/* SHA-256(name || "\n" || alg || pub)[:4]: alg 0x01 (signed note), 0x04 (cosignature/v1). */
static int
key_id_alg(const char *name, size_t namelen, uint8_t alg, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN])
{
	uint8_t key[1 + NOTE_ED25519_PUB_LEN];

	key[0] = alg;
	memcpy(key + 1, pub, NOTE_ED25519_PUB_LEN);
	return key_hash((const uint8_t *)name, namelen, key, sizeof(key), id);
}

static int
key_id_ed25519(const char *name, size_t namelen, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN])
{
	return key_id_alg(name, namelen, NOTE_ALG_ED25519, pub, id);
}

int
note_key_id_ed25519(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN])
{
	uint8_t tmp[NOTE_KEY_ID_LEN];
	size_t n;
	int rc;

	n = name_len(name);
	if (n == 0 || pub == NULL || id == NULL)
		return BS_ERR_INVALID;
	rc = key_id_ed25519(name, n, pub, tmp);
	if (rc == 0)
		memcpy(id, tmp, NOTE_KEY_ID_LEN);
	return rc;
}

/* ---- vkeys and signature lines ------------------------------------------ */

static int
vkey_format_alg(const char *name, uint8_t alg, const uint8_t pub[NOTE_ED25519_PUB_LEN], char *out,
    size_t outlen)
{
	char buf[NOTE_VKEY_MAX];
	uint8_t key[1 + NOTE_ED25519_PUB_LEN], id[NOTE_KEY_ID_LEN];
	size_t n, w = 0;
	int rc;

	n = name_len(name);
	if (n == 0 || pub == NULL || out == NULL)
		return BS_ERR_INVALID;
	rc = key_id_alg(name, n, alg, pub, id);
	if (rc != 0)
		return rc;
	memcpy(buf, name, n);
	w = n;
	buf[w++] = '+';
	bs_hex_encode(id, NOTE_KEY_ID_LEN, buf + w);
	w += 2 * NOTE_KEY_ID_LEN;
	buf[w++] = '+';
	key[0] = alg;
	memcpy(key + 1, pub, NOTE_ED25519_PUB_LEN);
	w += bs_b64_encode(key, sizeof(key), buf + w);
	if (outlen < w + 1)
		return BS_ERR_TOO_BIG;
	memcpy(out, buf, w);
	out[w] = '\0';
	return 0;
}

int
note_vkey_format(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN], char *out,
    size_t outlen)
{
	return vkey_format_alg(name, NOTE_ALG_ED25519, pub, out, outlen);
}

int
note_cosig_vkey_format(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN], char *out,
    size_t outlen)
{
	return vkey_format_alg(name, NOTE_ALG_COSIG_V1, pub, out, outlen);
}

int
note_cosig_key_id(const char *name, const uint8_t pub[NOTE_ED25519_PUB_LEN],
    uint8_t id[NOTE_KEY_ID_LEN])
{
	uint8_t tmp[NOTE_KEY_ID_LEN];
	size_t n = name_len(name);
	int rc;

	if (n == 0 || pub == NULL || id == NULL)
		return BS_ERR_INVALID;
	if ((rc = key_id_alg(name, n, NOTE_ALG_COSIG_V1, pub, tmp)) == 0)
		memcpy(id, tmp, NOTE_KEY_ID_LEN);
	return rc;
}

int
note_cosig_message(const uint8_t *body, size_t body_len, uint64_t ts, uint8_t **out,
    size_t *out_len)
{
	char head[64];
	uint8_t *m;
	int h;

	if (body == NULL || out == NULL || out_len == NULL || ts > (uint64_t)INT64_MAX ||
	    body_len == 0 || body[body_len - 1] != '\n')
		return BS_ERR_INVALID;
	h = snprintf(head, sizeof(head), "cosignature/v1\ntime %llu\n", (unsigned long long)ts);
	if ((m = malloc((size_t)h + body_len)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(m, head, (size_t)h);
	memcpy(m + h, body, body_len);
	*out = m;
	*out_len = (size_t)h + body_len;
	return 0;
}

int
note_vkey_parse(const char *vkey, struct note_verifier *out)
{
	uint8_t key[VKEY_KEY_MAX], id[NOTE_KEY_ID_LEN], want[NOTE_KEY_ID_LEN];
	const uint8_t *p = (const uint8_t *)vkey;
	size_t len, namelen, hpos, kpos, keylen = 0;
	int rc;

	if (vkey == NULL || out == NULL)
		return BS_ERR_INVALID;
	len = bounded_len(vkey, NOTE_VKEY_PARSE_MAX + 1);
	if (len > NOTE_VKEY_PARSE_MAX)
		return BS_ERR_INVALID;
	/* name '+' hash '+' key: the name ends at the first '+', the hash at the next */
	for (namelen = 0; namelen < len && p[namelen] != '+'; namelen++)
		;
	if (namelen == len || !name_ok(p, namelen, 1))
		return BS_ERR_INVALID;
	hpos = namelen + 1;
	if (len - hpos < 9 || p[hpos + 8] != '+')
		return BS_ERR_INVALID;
	/* upper case is not accepted */
	if (bs_hex_decode(vkey + hpos, 2 * NOTE_KEY_ID_LEN, want, NOTE_KEY_ID_LEN,
	    BS_HEX_LOWER) != 0)
		return BS_ERR_INVALID;
	kpos = hpos + 9;
	if (bs_b64_decode(vkey + kpos, len - kpos, 0, key, sizeof(key), &keylen) != 0 ||
	    keylen == 0 || keylen > sizeof(key))
		return BS_ERR_INVALID;
	rc = key_hash(p, namelen, key, keylen, id);
	if (rc != 0)
		return rc;
	if (CRYPTO_memcmp(id, want, NOTE_KEY_ID_LEN) != 0)
		return BS_ERR_INVALID;
	if (key[0] != NOTE_ALG_ED25519)
		return BS_ERR_UNSUPPORTED;
	if (keylen != 1 + NOTE_ED25519_PUB_LEN)
		return BS_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	memcpy(out->name, vkey, namelen);
	memcpy(out->key_id, id, NOTE_KEY_ID_LEN);
	memcpy(out->pub, key + 1, NOTE_ED25519_PUB_LEN);
	return 0;
}

/* "— <name> <base64(blob)>\n" into out. */
static int
sig_line_format(const char *name, const uint8_t *blob, size_t bloblen, char *out, size_t outlen)
{
	char buf[NOTE_COSIG_LINE_MAX];
	size_t n, w;

	n = name_len(name);
	if (n == 0 || out == NULL)
		return BS_ERR_INVALID;
	memcpy(buf, EM_DASH_SP, EM_DASH_SP_LEN);
	w = EM_DASH_SP_LEN;
	memcpy(buf + w, name, n);
	w += n;
	buf[w++] = ' ';
	w += bs_b64_encode(blob, bloblen, buf + w);
	buf[w++] = '\n';
	if (outlen < w + 1)
		return BS_ERR_TOO_BIG;
	memcpy(out, buf, w);
	out[w] = '\0';
	return 0;
}

int
note_signature_line(const char *name, const uint8_t key_id[NOTE_KEY_ID_LEN],
    const uint8_t sig[NOTE_ED25519_SIG_LEN], char *out, size_t outlen)
{
	uint8_t blob[SIG_BLOB_LEN];

	if (key_id == NULL || sig == NULL)
		return BS_ERR_INVALID;
	memcpy(blob, key_id, NOTE_KEY_ID_LEN);
	memcpy(blob + NOTE_KEY_ID_LEN, sig, NOTE_ED25519_SIG_LEN);
	return sig_line_format(name, blob, sizeof(blob), out, outlen);
}

int
note_cosig_line(const char *name, const uint8_t key_id[NOTE_KEY_ID_LEN], uint64_t ts,
    const uint8_t sig[NOTE_ED25519_SIG_LEN], char *out, size_t outlen)
{
	uint8_t blob[NOTE_KEY_ID_LEN + 8 + NOTE_ED25519_SIG_LEN];

	if (key_id == NULL || sig == NULL || ts > (uint64_t)INT64_MAX)
		return BS_ERR_INVALID;
	memcpy(blob, key_id, NOTE_KEY_ID_LEN);
	for (int i = 0; i < 8; i++)
		blob[NOTE_KEY_ID_LEN + i] = (uint8_t)(ts >> (56 - 8 * i));
	memcpy(blob + NOTE_KEY_ID_LEN + 8, sig, NOTE_ED25519_SIG_LEN);
	return sig_line_format(name, blob, sizeof(blob), out, outlen);
}

/* ---- note_open -------------------------------------------------------------- */

struct sig_line {
	const uint8_t *name;
	size_t namelen;
	const uint8_t *b64;
	size_t b64len;
	size_t total;           /* decoded length */
};

/* Parses one signature line (without its "\n"). Returns 0 or BS_ERR_INVALID. */
static int
sig_line_parse(const uint8_t *line, size_t n, struct sig_line *sl)
{
	size_t i;

	if (n < EM_DASH_SP_LEN || memcmp(line, EM_DASH_SP, EM_DASH_SP_LEN) != 0)
		return BS_ERR_INVALID;
	line += EM_DASH_SP_LEN;
	n -= EM_DASH_SP_LEN;
	for (i = 0; i < n && line[i] != ' '; i++)
		;
	if (i == n)                     /* no base64 field */
		return BS_ERR_INVALID;
	sl->name = line;
	sl->namelen = i;
	sl->b64 = line + i + 1;
	sl->b64len = n - i - 1;
	if (!name_ok(sl->name, sl->namelen, 0) || sl->b64len == 0)
		return BS_ERR_INVALID;
	if (bs_b64_decode((const char *)sl->b64, sl->b64len, 0, NULL, 0, &sl->total) != 0 ||
	    sl->total < 5)
		return BS_ERR_INVALID;
	return 0;
}

/*
 * Index of the one verifier matching (name, id), -1 if none, -2 if several.
 */
static long
find_verifier(const struct note_verifier *v, size_t nv, const uint8_t *name, size_t namelen,
    const uint8_t id[NOTE_KEY_ID_LEN])
{
	long found = -1;
	size_t i;

	for (i = 0; i < nv; i++) {
		if (bounded_len(v[i].name, sizeof(v[i].name)) != namelen ||
		    memcmp(v[i].name, name, namelen) != 0 ||
		    memcmp(v[i].key_id, id, NOTE_KEY_ID_LEN) != 0)
			continue;
		if (found != -1)
			return -2;
		found = (long)i;
	}
	return found;
}

int
note_open(const uint8_t *msg, size_t len, const struct note_verifier *v, size_t nv,
    size_t *text_len)
{
	const uint8_t *sigs, *p, *end, *nl;
	struct sig_line sl;
	uint8_t blob[SIG_BLOB_LEN + 1];
	size_t split, tlen, nsig = 0, nverified = 0, i, total;
	long vi;
	int found = 0, rc;

	if (msg == NULL || text_len == NULL || (v == NULL && nv > 0))
		return BS_ERR_INVALID;
	for (i = 0; i < nv; i++)
		if (bounded_len(v[i].name, sizeof(v[i].name)) == sizeof(v[i].name))
			return BS_ERR_INVALID;
	if (!text_ok(msg, len))
		return BS_ERR_INVALID;
	/* the last "\n\n" splits text (keeping its "\n") from the signatures */
	for (i = len; i >= 2; i--) {
		if (msg[i - 2] == '\n' && msg[i - 1] == '\n') {
			found = 1;
			break;
		}
	}
	if (!found)
		return BS_ERR_INVALID;
	split = i - 2;
	tlen = split + 1;
	sigs = msg + split + 2;
	end = msg + len;
	if (sigs == end || end[-1] != '\n')
		return BS_ERR_INVALID;

	/* pass 1: the whole signature block is well-formed */
	for (p = sigs; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));        /* found: end[-1] is '\n' */
		if (sig_line_parse(p, (size_t)(nl - p), &sl) != 0)
			return BS_ERR_INVALID;
		if (++nsig > NOTE_MAX_SIGS)
			return BS_ERR_INVALID;
	}

	/* pass 2: verify every line from a known key */
	for (p = sigs; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (sig_line_parse(p, (size_t)(nl - p), &sl) != 0 ||
		    bs_b64_decode((const char *)sl.b64, sl.b64len, 0, blob, sizeof(blob),
		    &total) != 0)
			return BS_ERR_INVALID;
		vi = find_verifier(v, nv, sl.name, sl.namelen, blob);
		if (vi == -1)
			continue;               /* unknown signer: ignored */
		if (vi < 0)
			return BS_ERR_INVALID;  /* ambiguous verifier list */
		if (total != SIG_BLOB_LEN)
			return BS_ERR_SIG_INVALID;
		rc = ed25519_verify(v[vi].pub, msg, tlen, blob + NOTE_KEY_ID_LEN);
		if (rc != 0)
			return rc;
		nverified++;
	}
	if (nverified == 0)
		return BS_ERR_INVALID;
	*text_len = tlen;
	return 0;
}

/* ---- checkpoints ------------------------------------------------------------ */

int
checkpoint_body_format(const char *origin, uint64_t size, const uint8_t root[32], char *out,
    size_t outlen, size_t *outlen_used)
{
	char buf[CHECKPOINT_BODY_MAX], digits[20];
	size_t n, w, nd = 0;

	n = name_len(origin);
	if (n == 0 || root == NULL || out == NULL || outlen_used == NULL)
		return BS_ERR_INVALID;
	memcpy(buf, origin, n);
	w = n;
	buf[w++] = '\n';
	do {
		digits[nd++] = (char)('0' + size % 10);
		size /= 10;
	} while (size != 0);
	while (nd > 0)
		buf[w++] = digits[--nd];
	buf[w++] = '\n';
	w += bs_b64_encode(root, ROOT_LEN, buf + w);
	buf[w++] = '\n';
	if (outlen < w + 1)
		return BS_ERR_TOO_BIG;
	memcpy(out, buf, w);
	out[w] = '\0';
	*outlen_used = w;
	return 0;
}

/* Origin line check: non-empty, capped, valid UTF-8, no control characters. */
static int
origin_ok(const uint8_t *p, size_t n)
{
	size_t i = 0, k;
	uint32_t c;

	if (n == 0 || n > NOTE_NAME_MAX)
		return 0;
	while (i < n) {
		k = bs_utf8_decode(p + i, n - i, &c);
		if (k == 0 || is_control(c))
			return 0;
		i += k;
	}
	return 1;
}

int
checkpoint_body_parse(const uint8_t *text, size_t len, char *origin, size_t originlen,
    uint64_t *size, uint8_t root[32])
{
	const uint8_t *p, *end, *nl;
	uint8_t r[ROOT_LEN];
	uint64_t sz = 0;
	size_t olen, i, total;

	if (text == NULL || origin == NULL || size == NULL || root == NULL)
		return BS_ERR_INVALID;
	if (len == 0 || text[len - 1] != '\n' || !text_ok(text, len))
		return BS_ERR_INVALID;
	end = text + len;

	/* origin */
	nl = memchr(text, '\n', len);
	olen = (size_t)(nl - text);
	if (!origin_ok(text, olen))
		return BS_ERR_INVALID;
	/* size */
	p = nl + 1;
	if (p == end)
		return BS_ERR_INVALID;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == p || nl - p > 20 || (p[0] == '0' && nl - p > 1))
		return BS_ERR_INVALID;
	for (i = 0; p + i < nl; i++) {
		uint64_t d;

		if (p[i] < '0' || p[i] > '9')
			return BS_ERR_INVALID;
		d = (uint64_t)(p[i] - '0');
		if (sz > (UINT64_MAX - d) / 10)
			return BS_ERR_INVALID;
		sz = sz * 10 + d;
	}
	/* root */
	p = nl + 1;
	if (p == end)
		return BS_ERR_INVALID;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl - p != ROOT_B64_LEN ||
	    bs_b64_decode((const char *)p, ROOT_B64_LEN, 0, r, sizeof(r), &total) != 0 ||
	    total != ROOT_LEN)
		return BS_ERR_INVALID;
	/* extension lines: non-empty, otherwise opaque */
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == p)
			return BS_ERR_INVALID;
	}
	if (originlen < olen + 1)
		return BS_ERR_TOO_BIG;
	memcpy(origin, text, olen);
	origin[olen] = '\0';
	*size = sz;
	memcpy(root, r, ROOT_LEN);
	return 0;
}
