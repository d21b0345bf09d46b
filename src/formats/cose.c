/*
 * cose.c - COSE_Sign1 tokens and CWT claims in deterministic CBOR, on
 * libcbor 0.8 (see cose.h).
 *
 * Encoding builds libcbor items and serializes them. libcbor writes the
 * heads of strings, arrays, maps and tags in their shortest form, but an
 * integer in the width it was built with, so int_item() picks the width
 * by magnitude. Map keys are put in their deterministic order by hand.
 *
 * Decoding first walks the raw bytes itself (scan_item): well-formed,
 * exactly one item, definite lengths and shortest heads only, no declared
 * length or count beyond the bytes left, nesting bounded. Only then does
 * cbor_load see the input: libcbor 0.8 allocates the declared size of an
 * array or map before reading its elements (nine bytes can ask for
 * terabytes), accepts indefinite lengths and long heads, and stops after
 * the first item without complaint. The items are then read typed, and
 * every decoder ends by encoding what it read again and comparing bytes.
 *
 * libcbor 0.8 also refuses, as "malformed", the one-byte heads of tags 6
 * to 20 (0xc6..0xd4), so it cannot read tag 18 in the only form a
 * deterministic COSE_Sign1 has (0xd2; later versions can). The decoder
 * reads that byte itself and gives libcbor the array after it. Writing
 * the tag is not affected.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "common/hex.h"
#include "common/utf8.h"
#include "formats/cose.h"

#define GUARD(x) do { if ((rc = (x)) != 0) goto out; } while (0)

#define HDR_ALG 1
#define HDR_KID 4
#define SIG1_CONTEXT "Signature1"
#define SIGN1_TAG_HEAD (0xc0 | COSE_SIGN1_TAG)   /* major type 6, the tag in the first byte */
#define ARGS_DEPTH 2            /* args' level: the claims map is 1 */

/* The claims, in the order of their labels 1..7, "cmd", "seq", "args". */
enum {
	CL_ISS, CL_SUB, CL_AUD, CL_EXP, CL_NBF, CL_IAT, CL_CTI, CL_CMD, CL_SEQ, CL_ARGS, CL_COUNT
};
static const char *const claim_text_label[] = { "cmd", "seq", "args" };   /* CL_CMD.. */

/* ---- small helpers ------------------------------------------------------------------- */

/* a + b, or SIZE_MAX when that overflows */
static size_t
add_sat(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* 1 if s[0..n) is valid UTF-8 without a control character (below 0x20, 0x7f; NUL included) */
static int
text_ok(const uint8_t *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if (s[i] < 0x20 || s[i] == 0x7f || (k = bs_utf8_decode(s + i, n - i, NULL)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* 1 if s is a NUL-terminated string of 1..max bytes that text_ok accepts */
static int
claim_text_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, max + 1);
	return n >= 1 && n <= max && text_ok((const uint8_t *)s, n);
}

static int
claim_time_ok(int64_t t)
{
	return t >= 0 && t <= COSE_CLAIM_TIME_MAX;
}

/* A malloc'd copy of p[0..n) (n may be 0: never NULL then), or NULL if out of memory. */
static uint8_t *
dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n > 0 ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

#if JANSSON_VERSION_HEX >= 0x020e00
/* The length of the key at object iterator it (jansson 2.14 keys may hold NUL). */
static size_t
iter_key_len(void *it)
{
	return json_object_iter_key_len(it);
}
#else
static size_t
iter_key_len(void *it)
{
	return strlen(json_object_iter_key(it));
}
#endif

/* ---- building items ------------------------------------------------------------------ */

/* The uint or negint item of v in its shortest width; NULL if out of memory. */
static cbor_item_t *
int_item(int64_t v)
{
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-(v + 1));

	if (u <= UINT8_MAX)
		return v >= 0 ? cbor_build_uint8((uint8_t)u) : cbor_build_negint8((uint8_t)u);
	if (u <= UINT16_MAX)
		return v >= 0 ? cbor_build_uint16((uint16_t)u) : cbor_build_negint16((uint16_t)u);
	if (u <= UINT32_MAX)
		return v >= 0 ? cbor_build_uint32((uint32_t)u) : cbor_build_negint32((uint32_t)u);
	return v >= 0 ? cbor_build_uint64(u) : cbor_build_negint64(u);
}

/* A definite bstr of p[0..n) (p may be NULL when n is 0); NULL if out of memory. */
static cbor_item_t *
bstr_item(const uint8_t *p, size_t n)
{
	static const uint8_t none[1];

	return cbor_build_bytestring(n > 0 ? p : none, n);
}

/* A definite text string of s[0..n); NULL if out of memory. */
static cbor_item_t *
text_item(const char *s, size_t n)
{
	return cbor_build_stringn(n > 0 ? s : "", n);
}

/*
 * Appends item to the definite array arr; the caller's reference to item
 * is dropped either way (NULL stands for an allocation that failed).
 * 0, BS_ERR_NOMEM, BS_ERR_INTERNAL (arr full: a bug).
 */
static int
push(cbor_item_t *arr, cbor_item_t *item)
{
	bool ok;

	if (item == NULL)
		return BS_ERR_NOMEM;
	ok = cbor_array_push(arr, item);
	cbor_decref(&item);
	return ok ? 0 : BS_ERR_INTERNAL;
}

/* Adds key: value to the definite map map, like push(). */
static int
put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
	int rc = BS_ERR_NOMEM;

	if (key != NULL && value != NULL)
		rc = cbor_map_add(map, (struct cbor_pair){ .key = key, .value = value }) ? 0 :
		    BS_ERR_INTERNAL;
	if (key != NULL)
		cbor_decref(&key);
	if (value != NULL)
		cbor_decref(&value);
	return rc;
}

/*
 * Serializes item into a new malloc'd buffer of at most cap bytes.
 * 0; BS_ERR_TOO_BIG when the encoding does not fit in cap; BS_ERR_NOMEM.
 */
static int
serialize(const cbor_item_t *item, size_t cap, uint8_t **out, size_t *out_len)
{
	uint8_t *buf, *shrunk;
	size_t n;

	if ((buf = malloc(cap)) == NULL)
		return BS_ERR_NOMEM;
	if ((n = cbor_serialize(item, buf, cap)) == 0) {
		free(buf);
		return BS_ERR_TOO_BIG;
	}
	if (n < cap && (shrunk = realloc(buf, n)) != NULL)
		buf = shrunk;
	*out = buf;
	*out_len = n;
	return 0;
}

/* ---- JSON args to CBOR ------------------------------------------------------------------ */

/*
 * Checks the JSON value v of args at nesting level depth (args is at
 * ARGS_DEPTH) against the rules of cose.h, and adds a lower bound of its
 * encoded size to *size. 0; BS_ERR_INVALID; BS_ERR_TOO_BIG when *size
 * passes COSE_TOKEN_MAX (so that no huge item tree is built for nothing).
 */
static int
check_json(const json_t *v, int depth, size_t *size)
{
	json_t *o = (json_t *)v;     /* jansson's iterators take no const */
	json_t *m;
	void *it;
	size_t i, n;
	int rc;

	if ((*size = add_sat(*size, 1)) > COSE_TOKEN_MAX)
		return BS_ERR_TOO_BIG;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth > COSE_CLAIMS_DEPTH_MAX || json_object_size(v) > COSE_ARGS_MEMBERS_MAX)
			return BS_ERR_INVALID;
		for (it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
			n = iter_key_len(it);
			if (n > COSE_ARGS_KEY_MAX ||
			    !text_ok((const uint8_t *)json_object_iter_key(it), n))
				return BS_ERR_INVALID;
			if ((*size = add_sat(*size, 1 + n)) > COSE_TOKEN_MAX)
				return BS_ERR_TOO_BIG;
			if ((rc = check_json(json_object_iter_value(it), depth + 1, size)) != 0)
				return rc;
		}
		return 0;
	case JSON_ARRAY:
		if (depth > COSE_CLAIMS_DEPTH_MAX)
			return BS_ERR_INVALID;
		json_array_foreach(v, i, m)
			if ((rc = check_json(m, depth + 1, size)) != 0)
				return rc;
		return 0;
	case JSON_STRING:
		n = json_string_length(v);
		if (!text_ok((const uint8_t *)json_string_value(v), n))
			return BS_ERR_INVALID;
		return (*size = add_sat(*size, n)) > COSE_TOKEN_MAX ? BS_ERR_TOO_BIG : 0;
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		return 0;
	case JSON_REAL:
	default:
		return BS_ERR_INVALID;
	}
}

struct member {
	const char *key;
	size_t len;
	const json_t *value;
};

/* deterministic order of text keys: shorter first, then bytewise */
static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->key, y->key, x->len);
}

/* The CBOR item of v, which check_json accepted; NULL if out of memory. */
static cbor_item_t *
json_item(const json_t *v)
{
	struct member mem[COSE_ARGS_MEMBERS_MAX];
	json_t *o = (json_t *)v, *m;
	cbor_item_t *c = NULL;
	void *it;
	size_t i, n = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		for (it = json_object_iter(o); it != NULL && n < COSE_ARGS_MEMBERS_MAX;
		    it = json_object_iter_next(o, it), n++) {
			mem[n].key = json_object_iter_key(it);
			mem[n].len = iter_key_len(it);
			mem[n].value = json_object_iter_value(it);
		}
		qsort(mem, n, sizeof(mem[0]), member_cmp);
		if ((c = cbor_new_definite_map(n)) == NULL)
			return NULL;
		for (i = 0; i < n; i++)
			if (put(c, text_item(mem[i].key, mem[i].len), json_item(mem[i].value)) != 0) {
				cbor_decref(&c);
				return NULL;
			}
		return c;
	case JSON_ARRAY:
		if ((c = cbor_new_definite_array(json_array_size(v))) == NULL)
			return NULL;
		json_array_foreach(v, i, m)
			if (push(c, json_item(m)) != 0) {
				cbor_decref(&c);
				return NULL;
			}
		return c;
	case JSON_STRING:
		return text_item(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return int_item((int64_t)json_integer_value(v));
	case JSON_TRUE:
		return cbor_build_bool(true);
	case JSON_FALSE:
		return cbor_build_bool(false);
	case JSON_NULL:
		return cbor_new_null();
	case JSON_REAL:
	default:
		return NULL;
	}
}

/* ---- encoders -------------------------------------------------------------------------- */

int
cose_protected_encode(int64_t alg, const uint8_t *kid, size_t kid_len, uint8_t **out,
    size_t *out_len)
{
	cbor_item_t *map;
	int rc;

	if ((kid == NULL && kid_len > 0) || out == NULL || out_len == NULL)
		return BS_ERR_INVALID;
	if (kid_len > COSE_TOKEN_MAX)
		return BS_ERR_TOO_BIG;
	if ((map = cbor_new_definite_map(kid_len > 0 ? 2 : 1)) == NULL)
		return BS_ERR_NOMEM;
	GUARD(put(map, int_item(HDR_ALG), int_item(alg)));
	if (kid_len > 0)
		GUARD(put(map, int_item(HDR_KID), bstr_item(kid, kid_len)));
	/* map 1, labels 1 + 1, alg 9, kid head 3 */
	rc = serialize(map, kid_len + 15 > COSE_TOKEN_MAX ? COSE_TOKEN_MAX : kid_len + 15, out,
	    out_len);
out:
	cbor_decref(&map);
	return rc;
}

int
cose_claims_encode(const struct cose_claims *c, uint8_t **out, size_t *out_len)
{
	cbor_item_t *map = NULL;
	size_t size = 0;
	int rc;

	if (c == NULL || out == NULL || out_len == NULL)
		return BS_ERR_INVALID;
	if (!claim_text_ok(c->iss, COSE_CLAIM_TEXT_MAX) ||
	    !claim_text_ok(c->sub, COSE_CLAIM_TEXT_MAX) ||
	    !claim_text_ok(c->aud, COSE_CLAIM_TEXT_MAX) ||
	    !claim_text_ok(c->cmd, COSE_CLAIM_CMD_MAX) || !claim_time_ok(c->iat) ||
	    !claim_time_ok(c->nbf) || !claim_time_ok(c->exp) || c->seq == 0 ||
	    c->seq > (uint64_t)INT64_MAX || !json_is_object(c->args))
		return BS_ERR_INVALID;
	if ((rc = check_json(c->args, ARGS_DEPTH, &size)) != 0)
		return rc;
	if ((map = cbor_new_definite_map(CL_COUNT)) == NULL)
		return BS_ERR_NOMEM;
	GUARD(put(map, int_item(CL_ISS + 1), text_item(c->iss, strlen(c->iss))));
	GUARD(put(map, int_item(CL_SUB + 1), text_item(c->sub, strlen(c->sub))));
	GUARD(put(map, int_item(CL_AUD + 1), text_item(c->aud, strlen(c->aud))));
	GUARD(put(map, int_item(CL_EXP + 1), int_item(c->exp)));
	GUARD(put(map, int_item(CL_NBF + 1), int_item(c->nbf)));
	GUARD(put(map, int_item(CL_IAT + 1), int_item(c->iat)));
	GUARD(put(map, int_item(CL_CTI + 1), bstr_item(c->cti, sizeof(c->cti))));
	GUARD(put(map, text_item("cmd", 3), text_item(c->cmd, strlen(c->cmd))));
	GUARD(put(map, text_item("seq", 3), int_item((int64_t)c->seq)));
	GUARD(put(map, text_item("args", 4), json_item(c->args)));
	rc = serialize(map, COSE_TOKEN_MAX, out, out_len);
out:
	cbor_decref(&map);
	return rc;
}

int
cose_sig_structure(const uint8_t *prot, size_t prot_len, const uint8_t *aad, size_t aad_len,
    const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *out_len)
{
	cbor_item_t *arr;
	size_t cap;
	int rc;

	if ((prot == NULL && prot_len > 0) || (aad == NULL && aad_len > 0) ||
	    (payload == NULL && payload_len > 0) || out == NULL || out_len == NULL)
		return BS_ERR_INVALID;
	/* array 1, "Signature1" 11, three bstr heads of 9 at most */
	if ((cap = add_sat(add_sat(add_sat(prot_len, aad_len), payload_len), 39)) == SIZE_MAX)
		return BS_ERR_TOO_BIG;
	if ((arr = cbor_new_definite_array(4)) == NULL)
		return BS_ERR_NOMEM;
	GUARD(push(arr, text_item(SIG1_CONTEXT, strlen(SIG1_CONTEXT))));
	GUARD(push(arr, bstr_item(prot, prot_len)));
	GUARD(push(arr, bstr_item(aad, aad_len)));
	GUARD(push(arr, bstr_item(payload, payload_len)));
	rc = serialize(arr, cap, out, out_len);
out:
	cbor_decref(&arr);
	return rc;
}

int
cose_sign1_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len, uint8_t **out, size_t *out_len)
{
	cbor_item_t *arr = NULL, *tag = NULL;
	size_t sum;
	int rc;

	if ((prot == NULL && prot_len > 0) || (payload == NULL && payload_len > 0) ||
	    (sig == NULL && sig_len > 0) || out == NULL || out_len == NULL)
		return BS_ERR_INVALID;
	if ((sum = add_sat(add_sat(prot_len, payload_len), sig_len)) > COSE_TOKEN_MAX)
		return BS_ERR_TOO_BIG;
	if ((arr = cbor_new_definite_array(4)) == NULL)
		return BS_ERR_NOMEM;
	GUARD(push(arr, bstr_item(prot, prot_len)));
	GUARD(push(arr, cbor_new_definite_map(0)));
	GUARD(push(arr, bstr_item(payload, payload_len)));
	GUARD(push(arr, bstr_item(sig, sig_len)));
	/* cbor_build_tag of libcbor 0.8 does not check its allocation: by hand */
	rc = BS_ERR_NOMEM;
	if ((tag = cbor_new_tag(COSE_SIGN1_TAG)) == NULL)
		goto out;
	cbor_tag_set_item(tag, arr);
	/* tag 1, array 1, map 1, three bstr heads of 3 at most (lengths <= 16384) */
	rc = serialize(tag, sum + 12 > COSE_TOKEN_MAX ? COSE_TOKEN_MAX : sum + 12, out, out_len);
out:
	if (tag != NULL)
		cbor_decref(&tag);
	cbor_decref(&arr);
	return rc;
}

/* ---- reading untrusted bytes ----------------------------------------------------------- */

/*
 * Reads the head at in[*off] (len bytes in all): its major type and its
 * argument (for a float, its bits). 0, or -1 when the head is cut short,
 * reserved (additional information 28..30), indefinite (31), not in its
 * shortest form, or a simple value below 32 in two bytes (RFC 8949 3.3).
 */
static int
head(const uint8_t *in, size_t len, size_t *off, unsigned *major, uint64_t *arg)
{
	unsigned ai;
	size_t i, n;
	uint64_t v = 0;

	if (*off >= len)
		return -1;
	*major = in[*off] >> 5;
	ai = in[*off] & 0x1fu;
	(*off)++;
	if (ai < 24) {
		*arg = ai;
		return 0;
	}
	if (ai > 27)
		return -1;
	n = (size_t)1 << (ai - 24);
	if (len - *off < n)
		return -1;
	for (i = 0; i < n; i++)
		v = v << 8 | in[(*off)++];
	if (*major == 7) {
		if (ai == 24 && v < 32)
			return -1;
	} else if ((ai == 24 && v < 24) || (ai == 25 && v <= UINT8_MAX) ||
	    (ai == 26 && v <= UINT16_MAX) || (ai == 27 && v <= UINT32_MAX)) {
		return -1;
	}
	*arg = v;
	return 0;
}

/*
 * Walks the item at in[*off] and everything in it, the item being at
 * nesting level depth (the outermost is 1; arrays, maps and tags deeper
 * than COSE_CLAIMS_DEPTH_MAX are refused), and moves *off past it. Every
 * length and count is checked against the bytes left before anything is
 * believed. 0, or -1 when the bytes are not what cose.h accepts.
 */
static int
scan_item(const uint8_t *in, size_t len, size_t *off, int depth)
{
	unsigned major;
	uint64_t arg, i, n;

	if (head(in, len, off, &major, &arg) != 0)
		return -1;
	switch (major) {
	case 0:
	case 1:
	case 7:
		return 0;
	case 2:
	case 3:
		if (arg > len - *off)
			return -1;
		*off += (size_t)arg;
		return 0;
	case 4:
	case 5:
	case 6:
		if (depth >= COSE_CLAIMS_DEPTH_MAX + 1)
			return -1;
		n = major == 6 ? 1 : arg;
		/* every item takes a byte at least */
		if (n > len - *off || (major == 5 && n > (len - *off) / 2))
			return -1;
		if (major == 5)
			n *= 2;
		for (i = 0; i < n; i++)
			if (scan_item(in, len, off, depth + 1) != 0)
				return -1;
		return 0;
	default:
		return -1;
	}
}

/*
 * The one item of in[0..len), after scan_item accepted all of it, in
 * *out (the caller cbor_decref()s it). 0, BS_ERR_INVALID, BS_ERR_NOMEM.
 */
static int
load(const uint8_t *in, size_t len, cbor_item_t **out)
{
	return cose_cbor_load(in, len, out);
}

int
cose_cbor_load(const uint8_t *in, size_t len, struct cbor_item_t **out)
{
	struct cbor_load_result r;
	cbor_item_t *item;
	size_t off = 0;

	if (len == 0 || scan_item(in, len, &off, 1) != 0 || off != len)
		return BS_ERR_INVALID;
	if ((item = cbor_load(in, len, &r)) == NULL)
		return r.error.code == CBOR_ERR_MEMERROR ? BS_ERR_NOMEM : BS_ERR_INVALID;
	if (r.error.code != CBOR_ERR_NONE || r.read != len) {
		cbor_decref(&item);
		return BS_ERR_INVALID;
	}
	*out = item;
	return 0;
}

/* The value of a uint or negint item in *v; -1 if item is neither or outside int64. */
static int
int_value(const cbor_item_t *item, int64_t *v)
{
	uint64_t u;

	if (!cbor_isa_uint(item) && !cbor_isa_negint(item))
		return -1;
	if ((u = cbor_get_int(item)) > (uint64_t)INT64_MAX)
		return -1;
	*v = cbor_isa_uint(item) ? (int64_t)u : -1 - (int64_t)u;
	return 0;
}

/* 1 and *p, *n (borrowed from item) if item is a definite bstr, else 0. */
static int
bstr_of(const cbor_item_t *item, const uint8_t **p, size_t *n)
{
	if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
		return 0;
	*p = cbor_bytestring_handle(item);
	*n = cbor_bytestring_length(item);
	return 1;
}

/* 1 and *p, *n (borrowed from item) if item is a definite text string, else 0. */
static int
text_of(const cbor_item_t *item, const uint8_t **p, size_t *n)
{
	if (!cbor_isa_string(item) || !cbor_string_is_definite(item))
		return 0;
	*p = cbor_string_handle(item);
	*n = cbor_string_length(item);
	return 1;
}

/*
 * Reads s->prot (the protected header's bytes) into s->alg and s->kid (a
 * malloc'd copy, NULL when there is none). 0, BS_ERR_INVALID (not a map of
 * alg and perhaps kid in their deterministic encoding), BS_ERR_NOMEM.
 */
static int
protected_parse(struct cose_sign1 *s)
{
	cbor_item_t *map = NULL;
	struct cbor_pair *pr;
	const uint8_t *kid = NULL;
	uint8_t *again = NULL;
	size_t i, kid_len = 0, again_len = 0;
	int64_t label, alg = 0;
	int rc, have_alg = 0, have_kid = 0;

	GUARD(load(s->prot, s->prot_len, &map));
	rc = BS_ERR_INVALID;
	if (!cbor_isa_map(map) || !cbor_map_is_definite(map))
		goto out;
	pr = cbor_map_handle(map);
	for (i = 0; i < cbor_map_size(map); i++) {
		if (!cbor_isa_uint(pr[i].key) || int_value(pr[i].key, &label) != 0)
			goto out;
		if (label == HDR_ALG && !have_alg && int_value(pr[i].value, &alg) == 0)
			have_alg = 1;
		else if (label == HDR_KID && !have_kid && bstr_of(pr[i].value, &kid, &kid_len))
			have_kid = 1;
		else
			goto out;     /* crit, any other label, a duplicate, a wrong type */
	}
	if (!have_alg)
		goto out;
	if ((rc = cose_protected_encode(alg, kid, kid_len, &again, &again_len)) != 0) {
		rc = rc == BS_ERR_NOMEM ? rc : BS_ERR_INVALID;
		goto out;
	}
	rc = BS_ERR_INVALID;
	if (again_len != s->prot_len || memcmp(again, s->prot, again_len) != 0)
		goto out;
	rc = BS_ERR_NOMEM;
	if (kid_len > 0 && (s->kid = dup_bytes(kid, kid_len)) == NULL)
		goto out;
	s->kid_len = kid_len;
	s->alg = alg;
	rc = 0;
out:
	free(again);
	if (map != NULL)
		cbor_decref(&map);
	return rc;
}

int
cose_sign1_decode(const uint8_t *in, size_t len, struct cose_sign1 *out)
{
	struct cose_sign1 s;
	cbor_item_t *arr = NULL, **el;
	const uint8_t *prot, *payload, *sig;
	size_t prot_len, payload_len, sig_len;
	int rc;

	if (out == NULL)
		return BS_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	if (len > COSE_TOKEN_MAX)
		return BS_ERR_TOO_BIG;
	if (in == NULL)
		return BS_ERR_INVALID;
	/* the tag's head is read here (see the top of this file), the rest by libcbor */
	if (len < 1 || in[0] != SIGN1_TAG_HEAD)
		return BS_ERR_INVALID;
	GUARD(load(in + 1, len - 1, &arr));
	rc = BS_ERR_INVALID;
	if (!cbor_isa_array(arr) || !cbor_array_is_definite(arr) || cbor_array_size(arr) != 4)
		goto out;
	el = cbor_array_handle(arr);
	if (!bstr_of(el[0], &prot, &prot_len) || !cbor_isa_map(el[1]) ||
	    !cbor_map_is_definite(el[1]) || cbor_map_size(el[1]) != 0 ||
	    !bstr_of(el[2], &payload, &payload_len) || !bstr_of(el[3], &sig, &sig_len))
		goto out;
	rc = BS_ERR_NOMEM;
	if ((s.prot = dup_bytes(prot, prot_len)) == NULL ||
	    (s.payload = dup_bytes(payload, payload_len)) == NULL ||
	    (s.sig = dup_bytes(sig, sig_len)) == NULL)
		goto out;
	s.prot_len = prot_len;
	s.payload_len = payload_len;
	s.sig_len = sig_len;
	GUARD(protected_parse(&s));
	*out = s;
	memset(&s, 0, sizeof(s));
out:
	cose_sign1_free(&s);
	if (arr != NULL)
		cbor_decref(&arr);
	return rc;
}

void
cose_sign1_free(struct cose_sign1 *s)
{
	if (s == NULL)
		return;
	free(s->prot);
	free(s->kid);
	free(s->payload);
	free(s->sig);
	memset(s, 0, sizeof(*s));
}

/* ---- claims ------------------------------------------------------------------------------ */

static int
json_put(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v) == 0 ? 0 : BS_ERR_NOMEM;   /* v NULL: -1 too */
}

static int to_json(const cbor_item_t *item, int depth, json_t **out);

/* A map of args at nesting level depth as a JSON object; like to_json. */
static int
map_to_json(const cbor_item_t *item, int depth, json_t **out)
{
	char key[COSE_ARGS_KEY_MAX + 1];
	struct cbor_pair *pr;
	json_t *o, *v = NULL;
	const uint8_t *k;
	size_t i, n;
	int rc;

	if (depth > COSE_CLAIMS_DEPTH_MAX || !cbor_map_is_definite(item) ||
	    cbor_map_size(item) > COSE_ARGS_MEMBERS_MAX)
		return BS_ERR_INVALID;
	if ((o = json_object()) == NULL)
		return BS_ERR_NOMEM;
	pr = cbor_map_handle(item);
	for (i = 0; i < cbor_map_size(item); i++) {
		rc = BS_ERR_INVALID;
		if (!text_of(pr[i].key, &k, &n) || n > COSE_ARGS_KEY_MAX || !text_ok(k, n))
			goto out;
		if (n > 0)
			memcpy(key, k, n);
		key[n] = '\0';
		if (json_object_get(o, key) != NULL)
			goto out;     /* a duplicate key */
		GUARD(to_json(pr[i].value, depth + 1, &v));
		GUARD(json_put(o, key, v));
	}
	*out = o;
	return 0;
out:
	json_decref(o);
	return rc;
}

/*
 * The JSON value of an item of args at nesting level depth in *out (the
 * caller json_decref()s it). 0, BS_ERR_INVALID (what cose.h refuses in
 * args), BS_ERR_NOMEM.
 */
static int
to_json(const cbor_item_t *item, int depth, json_t **out)
{
	json_t *v = NULL, *m = NULL;
	const uint8_t *t;
	size_t i, n;
	int64_t iv;
	int rc;

	switch (cbor_typeof(item)) {
	case CBOR_TYPE_UINT:
	case CBOR_TYPE_NEGINT:
		if (int_value(item, &iv) != 0)
			return BS_ERR_INVALID;
		v = json_integer((json_int_t)iv);
		break;
	case CBOR_TYPE_STRING:
		if (!text_of(item, &t, &n) || !text_ok(t, n))
			return BS_ERR_INVALID;
		v = json_stringn(n > 0 ? (const char *)t : "", n);
		break;
	case CBOR_TYPE_ARRAY:
		if (depth > COSE_CLAIMS_DEPTH_MAX || !cbor_array_is_definite(item))
			return BS_ERR_INVALID;
		if ((v = json_array()) == NULL)
			return BS_ERR_NOMEM;
		for (i = 0; i < cbor_array_size(item); i++) {
			if ((rc = to_json(cbor_array_handle(item)[i], depth + 1, &m)) != 0 ||
			    (rc = json_array_append_new(v, m) == 0 ? 0 : BS_ERR_NOMEM) != 0) {
				json_decref(v);
				return rc;
			}
		}
		break;
	case CBOR_TYPE_MAP:
		return map_to_json(item, depth, out);
	case CBOR_TYPE_FLOAT_CTRL:
		if (!cbor_float_ctrl_is_ctrl(item))
			return BS_ERR_INVALID;     /* a float */
		switch (cbor_ctrl_value(item)) {
		case CBOR_CTRL_FALSE:
			v = json_false();
			break;
		case CBOR_CTRL_TRUE:
			v = json_true();
			break;
		case CBOR_CTRL_NULL:
			v = json_null();
			break;
		default:
			return BS_ERR_INVALID;     /* undefined, other simple values */
		}
		break;
	case CBOR_TYPE_BYTESTRING:
	case CBOR_TYPE_TAG:
	default:
		return BS_ERR_INVALID;
	}
	if (v == NULL)
		return BS_ERR_NOMEM;
	*out = v;
	return 0;
}

/* The claim (CL_*) a claims-map key names, or -1. */
static int
claim_index(const cbor_item_t *key)
{
	const uint8_t *t;
	size_t n, i;
	int64_t v;

	if (cbor_isa_uint(key))
		return int_value(key, &v) == 0 && v >= CL_ISS + 1 && v <= CL_CTI + 1 ?
		    (int)(v - 1) : -1;
	if (text_of(key, &t, &n))
		for (i = 0; i < sizeof(claim_text_label) / sizeof(claim_text_label[0]); i++)
			if (n == strlen(claim_text_label[i]) &&
			    memcmp(t, claim_text_label[i], n) == 0)
				return CL_CMD + (int)i;
	return -1;
}

/* The claim text item as a JSON string of 1..max bytes; like to_json. */
static int
claim_text(const cbor_item_t *item, size_t max, json_t **out)
{
	const uint8_t *t;
	size_t n;

	if (!text_of(item, &t, &n) || n < 1 || n > max || !text_ok(t, n))
		return BS_ERR_INVALID;
	return (*out = json_stringn((const char *)t, n)) != NULL ? 0 : BS_ERR_NOMEM;
}

/* A time claim 0..COSE_CLAIM_TIME_MAX in *t; 0 or BS_ERR_INVALID. */
static int
claim_time(const cbor_item_t *item, int64_t *t)
{
	return int_value(item, t) == 0 && claim_time_ok(*t) ? 0 : BS_ERR_INVALID;
}

int
cose_claims_decode(const uint8_t *payload, size_t len, json_t **out)
{
	static const int text_claims[] = { CL_ISS, CL_SUB, CL_AUD };
	static const char *const text_names[] = { "iss", "sub", "aud" };
	const cbor_item_t *v[CL_COUNT] = { NULL };
	cbor_item_t *top = NULL;
	struct cbor_pair *pr;
	struct cose_claims c;
	json_t *o = NULL, *j = NULL;
	const uint8_t *cti;
	uint8_t *again = NULL;
	char jti[BS_HEX_LEN(COSE_CTI_LEN)];
	size_t i, cti_len, again_len = 0;
	int64_t iat, nbf, exp, seq;
	int k, rc;

	if (payload == NULL || out == NULL || len > COSE_TOKEN_MAX)
		return BS_ERR_INVALID;
	GUARD(load(payload, len, &top));
	rc = BS_ERR_INVALID;
	if (!cbor_isa_map(top) || !cbor_map_is_definite(top) || cbor_map_size(top) != CL_COUNT)
		goto out;
	pr = cbor_map_handle(top);
	for (i = 0; i < CL_COUNT; i++) {
		if ((k = claim_index(pr[i].key)) < 0 || v[k] != NULL)
			goto out;     /* unknown or duplicate: then one is missing too */
		v[k] = pr[i].value;
	}
	if (claim_time(v[CL_IAT], &iat) != 0 || claim_time(v[CL_NBF], &nbf) != 0 ||
	    claim_time(v[CL_EXP], &exp) != 0 || !cbor_isa_uint(v[CL_SEQ]) ||
	    int_value(v[CL_SEQ], &seq) != 0 || seq < 1 || !bstr_of(v[CL_CTI], &cti, &cti_len) ||
	    cti_len != COSE_CTI_LEN || !cbor_isa_map(v[CL_ARGS]))
		goto out;
	bs_hex_encode(cti, COSE_CTI_LEN, jti);

	rc = BS_ERR_NOMEM;
	if ((o = json_object()) == NULL)
		goto out;
	for (i = 0; i < sizeof(text_claims) / sizeof(text_claims[0]); i++) {
		GUARD(claim_text(v[text_claims[i]], COSE_CLAIM_TEXT_MAX, &j));
		GUARD(json_put(o, text_names[i], j));
	}
	GUARD(json_put(o, "iat", json_integer((json_int_t)iat)));
	GUARD(json_put(o, "nbf", json_integer((json_int_t)nbf)));
	GUARD(json_put(o, "exp", json_integer((json_int_t)exp)));
	GUARD(json_put(o, "jti", json_string(jti)));
	GUARD(json_put(o, "seq", json_integer((json_int_t)seq)));
	GUARD(claim_text(v[CL_CMD], COSE_CLAIM_CMD_MAX, &j));
	GUARD(json_put(o, "cmd", j));
	GUARD(to_json(v[CL_ARGS], ARGS_DEPTH, &j));
	GUARD(json_put(o, "args", j));

	/* the one encoding of these claims must be the input */
	memset(&c, 0, sizeof(c));
	c.iss = json_string_value(json_object_get(o, "iss"));
	c.sub = json_string_value(json_object_get(o, "sub"));
	c.aud = json_string_value(json_object_get(o, "aud"));
	c.cmd = json_string_value(json_object_get(o, "cmd"));
	c.iat = iat;
	c.nbf = nbf;
	c.exp = exp;
	c.seq = (uint64_t)seq;
	memcpy(c.cti, cti, COSE_CTI_LEN);
	c.args = json_object_get(o, "args");
	if ((rc = cose_claims_encode(&c, &again, &again_len)) != 0) {
		rc = rc == BS_ERR_NOMEM ? rc : BS_ERR_INVALID;
		goto out;
	}
	rc = BS_ERR_INVALID;
	if (again_len != len || memcmp(again, payload, len) != 0)
		goto out;
	*out = o;
	o = NULL;
	rc = 0;
out:
	free(again);
	json_decref(o);
	if (top != NULL)
		cbor_decref(&top);
	return rc;
}
