/*
 * grpc_frame.c - pure gRPC-over-HTTP/2 framing helpers (no I/O).
 *
 * Reassembles the one Length-Prefixed-Message of a unary request from DATA
 * bytes in any chunking, with the size cap checked from the 5-byte prefix
 * before the body is allocated; parses grpc-timeout; checks content-type;
 * percent-encodes grpc-message; writes LPM prefixes. The wire format is
 * gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "net/grpc_frame.h"

#define LPM_FLAG_IDENTITY 0x00
#define LPM_FLAG_COMPRESSED 0x01

#define TIMEOUT_MAX_DIGITS 8

void
grpc_lpm_reader_init(struct grpc_lpm_reader *r, size_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->max_len = max_len;
}

/* Checks the flag byte once it has arrived. */
static int
check_flag(struct grpc_lpm_reader *r, uint8_t flag)
{
	switch (flag) {
	case LPM_FLAG_IDENTITY:
		return 0;
	case LPM_FLAG_COMPRESSED:
		if (!r->allow_compressed)
			return BS_ERR_UNSUPPORTED;
		r->compressed = 1;
		return 0;
	default:
		return BS_ERR_INVALID;
	}
}

int
grpc_lpm_reader_feed_some(struct grpc_lpm_reader *r, const uint8_t *data, size_t len,
    size_t *used)
{
	size_t n, total = len;
	uint32_t blen;
	int rc;

	*used = 0;
	if (len > 0 && data == NULL)
		return BS_ERR_INVALID;
	while (len > 0 && !r->complete) {
		if (r->hdr_have < GRPC_LPM_HEADER_LEN) {
			n = GRPC_LPM_HEADER_LEN - r->hdr_have;
			if (n > len)
				n = len;
			memcpy(r->hdr + r->hdr_have, data, n);
			r->hdr_have += n;
			data += n;
			len -= n;
			if ((rc = check_flag(r, r->hdr[0])) != 0)
				return rc;
			if (r->hdr_have < GRPC_LPM_HEADER_LEN)
				continue;
		}
		if (r->body == NULL) {
			/* prefix complete: enforce the cap before allocating */
			if ((rc = check_flag(r, r->hdr[0])) != 0)
				return rc;
			blen = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
			    (uint32_t)r->hdr[3] << 8 | (uint32_t)r->hdr[4];
			if ((size_t)blen > r->max_len)
				return BS_ERR_TOO_BIG;
			r->body = malloc(blen > 0 ? (size_t)blen : 1);
			if (r->body == NULL)
				return BS_ERR_NOMEM;
			r->body_len = blen;
			r->body_have = 0;
			if (blen == 0)
				r->complete = 1;
			continue;
		}
		n = r->body_len - r->body_have;
		if (n > len)
			n = len;
		memcpy(r->body + r->body_have, data, n);
		r->body_have += n;
		data += n;
		len -= n;
		if (r->body_have == r->body_len)
			r->complete = 1;
	}
	*used = total - len;
	return 0;
}

int
grpc_lpm_reader_feed(struct grpc_lpm_reader *r, const uint8_t *data, size_t len)
{
	size_t used;
	int rc;

	if ((rc = grpc_lpm_reader_feed_some(r, data, len, &used)) != 0)
		return rc;
	if (used < len) {
		/* unary: anything after the message starts a second one */
		r->extra = 1;
		return BS_ERR_INVALID;
	}
	return 0;
}

void
grpc_lpm_reader_next(struct grpc_lpm_reader *r)
{
	grpc_lpm_reader_free(r);
	r->hdr_have = 0;
	r->complete = 0;
	r->compressed = 0;
	r->extra = 0;
}

int
grpc_lpm_reader_finish(struct grpc_lpm_reader *r, const uint8_t **msg, size_t *msg_len)
{
	if (r->extra)
		return BS_ERR_INVALID;
	if (!r->complete || r->body == NULL)
		return BS_ERR_TRUNCATED;
	*msg = r->body;
	*msg_len = r->body_len;
	return 0;
}

void
grpc_lpm_reader_free(struct grpc_lpm_reader *r)
{
	if (r == NULL)
		return;
	OPENSSL_clear_free(r->body, r->body_have);   /* request bodies may carry secrets */
	r->body = NULL;
	r->body_len = 0;
	r->body_have = 0;
}

void
grpc_lpm_write_header(uint8_t out[GRPC_LPM_HEADER_LEN], uint32_t len)
{
	out[0] = LPM_FLAG_IDENTITY;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int
grpc_timeout_parse(const char *v, size_t len, int64_t *usec_out)
{
	uint64_t val = 0, mult, usec;
	size_t ndigits, i;

	if (v == NULL || len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
		return BS_ERR_INVALID;
	ndigits = len - 1;
	for (i = 0; i < ndigits; i++) {
		if (v[i] < '0' || v[i] > '9')
			return BS_ERR_INVALID;
		val = val * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[ndigits]) {
	case 'H':
		mult = 3600ull * 1000000ull;
		break;
	case 'M':
		mult = 60ull * 1000000ull;
		break;
	case 'S':
		mult = 1000000ull;
		break;
	case 'm':
		mult = 1000ull;
		break;
	case 'u':
		mult = 1;
		break;
	case 'n':
		/* nanoseconds: round up to whole microseconds */
		*usec_out = (int64_t)((val + 999u) / 1000u);
		return 0;
	default:
		return BS_ERR_INVALID;
	}
	if (val != 0 && mult > (uint64_t)INT64_MAX / val)
		usec = (uint64_t)INT64_MAX;
	else
		usec = val * mult;
	*usec_out = (int64_t)usec;
	return 0;
}

int
grpc_content_type_ok(const char *v, size_t len)
{
	static const char base[] = "application/grpc";
	const size_t blen = sizeof(base) - 1;

	if (v == NULL || len < blen || memcmp(v, base, blen) != 0)
		return 0;
	if (len == blen)
		return 1;
	if (v[blen] == ';')
		return 1;
	/* "+subtype" needs a subtype */
	if (v[blen] == '+' && len > blen + 1)
		return 1;
	return 0;
}

size_t
grpc_message_encode(char *out, size_t cap, const char *msg)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t w = 0;

	if (out == NULL || cap == 0)
		return 0;
	if (msg == NULL) {
		out[0] = '\0';
		return 0;
	}
	for (p = (const unsigned char *)msg; *p != '\0'; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (cap - w < 2)
				break;
			out[w++] = (char)*p;
		} else {
			if (cap - w < 4)
				break;
			out[w++] = '%';
			out[w++] = hex[*p >> 4];
			out[w++] = hex[*p & 0x0f];
		}
	}
	out[w] = '\0';
	return w;
}
