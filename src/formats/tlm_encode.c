/*
 * tlm_encode.c - the deterministic CBOR of a signed telemetry batch (see
 * tlm_encode.h): heads in their shortest form, definite lengths, the
 * payload's keys in their encoded-bytes order ("h", "n", "v", "end",
 * "seq", "vid", "start"). Every function writes into the caller's buffer.
 */
#include <string.h>

#include "formats/tlm_encode.h"

#define MT_UINT 0
#define MT_NEGINT 1
#define MT_BSTR 2
#define MT_TEXT 3
#define MT_ARRAY 4
#define MT_MAP 5
#define TAG_SIGN1_HEAD 0xd2          /* major type 6, tag 18, in one byte */
#define SIG1_CONTEXT "Signature1"

/* A writer into a fixed buffer; ok turns 0 at the first overflow. */
struct w {
	uint8_t *p;
	size_t cap, len;
	int ok;
};

static void
put_bytes(struct w *w, const void *b, size_t n)
{
	if (!w->ok || n > w->cap - w->len) {
		w->ok = 0;
		return;
	}
	memcpy(w->p + w->len, b, n);
	w->len += n;
}

/* A head: major type mt, argument v, shortest form. */
static void
put_head(struct w *w, unsigned mt, uint64_t v)
{
	uint8_t b[9];
	size_t n = 1;

	if (v < 24) {
		b[0] = (uint8_t)(mt << 5 | v);
	} else if (v <= 0xff) {
		b[0] = (uint8_t)(mt << 5 | 24);
		b[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		b[0] = (uint8_t)(mt << 5 | 25);
		n = 3;
	} else if (v <= 0xffffffffu) {
		b[0] = (uint8_t)(mt << 5 | 26);
		n = 5;
	} else {
		b[0] = (uint8_t)(mt << 5 | 27);
		n = 9;
	}
	for (size_t i = 1; i < n && n > 2; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	put_bytes(w, b, n);
}

static void
put_str(struct w *w, unsigned mt, const void *s, size_t n)
{
	put_head(w, mt, n);
	put_bytes(w, s, n);
}

static void
put_int(struct w *w, int64_t v)
{
	if (v >= 0)
		put_head(w, MT_UINT, (uint64_t)v);
	else
		put_head(w, MT_NEGINT, (uint64_t)(-(v + 1)));
}

static size_t
done(const struct w *w)
{
	return w->ok ? w->len : 0;
}

static int
id_valid(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-";
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > TLM_VEHICLE_ID_MAX || strspn(s, ok) != n)
		return 0;
	return (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	    (s[0] >= '0' && s[0] <= '9');
}

int
tlm_window_valid(const struct tlm_window *w)
{
	return w != NULL && id_valid(w->vehicle_id) && w->seq >= 1 &&
	    w->seq <= (uint64_t)INT64_MAX && w->start_ms >= 0 && w->start_ms <= w->end_ms &&
	    w->end_ms <= TLM_TIME_MAX_MS && w->samples <= (uint64_t)INT64_MAX;
}

size_t
tlm_payload_encode(const struct tlm_window *win, uint8_t *out, size_t cap)
{
	struct w w = { out, cap, 0, 1 };

	if (!tlm_window_valid(win) || out == NULL)
		return 0;
	put_head(&w, MT_MAP, 7);
	put_str(&w, MT_TEXT, "h", 1);
	put_str(&w, MT_BSTR, win->samples_sha256, TLM_HASH_LEN);
	put_str(&w, MT_TEXT, "n", 1);
	put_head(&w, MT_UINT, win->samples);
	put_str(&w, MT_TEXT, "v", 1);
	put_head(&w, MT_UINT, TLM_VERSION);
	put_str(&w, MT_TEXT, "end", 3);
	put_head(&w, MT_UINT, (uint64_t)win->end_ms);
	put_str(&w, MT_TEXT, "seq", 3);
	put_head(&w, MT_UINT, win->seq);
	put_str(&w, MT_TEXT, "vid", 3);
	put_str(&w, MT_TEXT, win->vehicle_id, strlen(win->vehicle_id));
	put_str(&w, MT_TEXT, "start", 5);
	put_head(&w, MT_UINT, (uint64_t)win->start_ms);
	return done(&w);
}

size_t
tlm_protected_encode(int64_t alg, const uint8_t kid[TLM_KID_LEN], uint8_t *out, size_t cap)
{
	struct w w = { out, cap, 0, 1 };

	if ((alg != TLM_ALG_ES256 && alg != TLM_ALG_EDDSA) || kid == NULL || out == NULL)
		return 0;
	put_head(&w, MT_MAP, 2);
	put_head(&w, MT_UINT, 1);
	put_int(&w, alg);
	put_head(&w, MT_UINT, 4);
	put_str(&w, MT_BSTR, kid, TLM_KID_LEN);
	return done(&w);
}

size_t
tlm_tbs_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload, size_t payload_len,
    uint8_t *out, size_t cap)
{
	struct w w = { out, cap, 0, 1 };

	if (prot == NULL || payload == NULL || out == NULL)
		return 0;
	put_head(&w, MT_ARRAY, 4);
	put_str(&w, MT_TEXT, SIG1_CONTEXT, sizeof(SIG1_CONTEXT) - 1);
	put_str(&w, MT_BSTR, prot, prot_len);
	put_head(&w, MT_BSTR, 0);
	put_str(&w, MT_BSTR, payload, payload_len);
	return done(&w);
}

size_t
tlm_token_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload, size_t payload_len,
    const uint8_t *sig, size_t sig_len, uint8_t *out, size_t cap)
{
	struct w w = { out, cap, 0, 1 };
	uint8_t tag = TAG_SIGN1_HEAD;

	if (prot == NULL || payload == NULL || sig == NULL || out == NULL)
		return 0;
	put_bytes(&w, &tag, 1);
	put_head(&w, MT_ARRAY, 4);
	put_str(&w, MT_BSTR, prot, prot_len);
	put_head(&w, MT_MAP, 0);
	put_str(&w, MT_BSTR, payload, payload_len);
	put_str(&w, MT_BSTR, sig, sig_len);
	return done(&w);
}
