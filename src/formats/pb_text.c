/*
 * pb_text.c - a decoded protobuf-c message as text for approvers (see
 * pb_text.h): a walk of the message with its descriptor that writes one
 * "path: value" line per set field into a wiping buffer.
 *
 * Two buffers: the output, and the path of the field being written (each
 * level appends its part and truncates it again on the way back). Field
 * values are read with memcpy at the descriptor's offsets, so nothing
 * depends on the alignment protobuf-c chose.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/bytebuf.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "formats/pb_text.h"

struct render {
	struct bytebuf out;
	struct bytebuf path;        /* of the field being written, no NUL */
};

static int render_fields(struct render *r, const ProtobufCMessage *m, int depth);

/* Size of one element of a repeated field of type t (its C representation), 0 if unknown. */
static size_t
elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:      /* protobuf-c forces enums to int size */
		return sizeof(int32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(int64_t);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 0;
	}
}

/* 1 for code points that could hide or reorder text on a terminal. */
static int
is_hidden(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x61c ||
	    (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* Writes s (NULL: "") double-quoted and escaped. */
static void
put_quoted(struct bytebuf *b, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = s != NULL ? strlen(s) : 0, i, len;
	uint32_t cp;

	bytebuf_put_u8(b, '"');
	for (i = 0; i < n; i += len) {
		uint8_t c = p[i];

		len = 1;
		if (c == '"')
			bytebuf_put(b, "\\\"", 2);
		else if (c == '\\')
			bytebuf_put(b, "\\\\", 2);
		else if (c == '\n')
			bytebuf_put(b, "\\n", 2);
		else if (c == '\t')
			bytebuf_put(b, "\\t", 2);
		else if (c < 0x20 || c == 0x7f)
			bytebuf_printf(b, "\\x%02x", c);
		else if (c < 0x80)
			bytebuf_put_u8(b, c);
		else if ((len = bs_utf8_decode(p + i, n - i, &cp)) == 0) {
			len = 1;
			bytebuf_printf(b, "\\x%02x", c);
		} else if (is_hidden(cp))
			bytebuf_printf(b, "\\u%04" PRIx32, cp);
		else
			bytebuf_put(b, p + i, len);
	}
	bytebuf_put_u8(b, '"');
}

/* Writes the lower-case hex of p[0..n). */
static void
put_hex(struct bytebuf *b, const uint8_t *p, size_t n)
{
	char hex[BS_HEX_LEN(32)];
	size_t k;

	while (n > 0) {
		k = n < 32 ? n : 32;
		bs_hex_encode(p, k, hex);
		bytebuf_put(b, hex, 2 * k);
		p += k;
		n -= k;
	}
	OPENSSL_cleanse(hex, sizeof(hex));
}

/* Writes p[0..n) in the bytes form: 0, BS_ERR_INVALID or BS_ERR_CRYPTO. */
static int
put_bytes(struct bytebuf *b, const uint8_t *p, size_t n)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char mdhex[BS_HEX_LEN(SHA256_DIGEST_LENGTH)];
	unsigned mdlen = 0;

	if (p == NULL && n > 0)
		return BS_ERR_INVALID;
	bytebuf_put(b, "hex:", 4);
	if (n <= PB_TEXT_BYTES_FULL) {
		put_hex(b, p, n);
		bytebuf_printf(b, " (%zu bytes)", n);
		return 0;
	}
	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		return BS_ERR_CRYPTO;
	bs_hex_encode(md, sizeof(md), mdhex);
	put_hex(b, p, PB_TEXT_BYTES_HEAD);
	bytebuf_printf(b, "... (%zu bytes, sha256 %s)", n, mdhex);
	return 0;
}

/* Writes the non-message value of type fd->type at v: 0 or BS_ERR_*. */
static int
put_value(struct bytebuf *b, const ProtobufCFieldDescriptor *fd, const void *v)
{
	const ProtobufCEnumValue *ev;
	ProtobufCBinaryData bd;
	protobuf_c_boolean bo;
	const char *s;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	int64_t i64;
	double d;
	float f;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		memcpy(&i32, v, sizeof(i32));
		bytebuf_printf(b, "%" PRId32, i32);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		memcpy(&u32, v, sizeof(u32));
		bytebuf_printf(b, "%" PRIu32, u32);
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		memcpy(&i64, v, sizeof(i64));
		bytebuf_printf(b, "%" PRId64, i64);
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		memcpy(&u64, v, sizeof(u64));
		bytebuf_printf(b, "%" PRIu64, u64);
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		memcpy(&f, v, sizeof(f));
		bytebuf_printf(b, "%.17g", (double)f);
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		memcpy(&d, v, sizeof(d));
		bytebuf_printf(b, "%.17g", d);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		memcpy(&bo, v, sizeof(bo));
		bytebuf_printf(b, "%s", bo ? "true" : "false");
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		memcpy(&i32, v, sizeof(i32));
		ev = fd->descriptor != NULL ?
		    protobuf_c_enum_descriptor_get_value(fd->descriptor, i32) : NULL;
		if (ev != NULL && ev->name != NULL)
			bytebuf_printf(b, "%s", ev->name);
		else
			bytebuf_printf(b, "%" PRId32, i32);
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		memcpy(&s, v, sizeof(s));
		put_quoted(b, s);
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		memcpy(&bd, v, sizeof(bd));
		return put_bytes(b, bd.data, bd.len);
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return BS_ERR_INVALID;
	}
}

/* Starts a line: the path and ": ". */
static void
line_start(struct render *r)
{
	bytebuf_put(&r->out, r->path.p, r->path.len);
	bytebuf_put(&r->out, ": ", 2);
}

/* Writes "path: value\n" for the non-message value at v. */
static int
emit_scalar(struct render *r, const ProtobufCFieldDescriptor *fd, const void *v)
{
	int rc;

	line_start(r);
	if ((rc = put_value(&r->out, fd, v)) != 0)
		return rc;
	bytebuf_put_u8(&r->out, '\n');
	return bytebuf_error(&r->out);
}

/* Writes "path: {}\n" (a set message without a set field). */
static int
emit_empty(struct render *r)
{
	line_start(r);
	bytebuf_put(&r->out, "{}\n", 3);
	return bytebuf_error(&r->out);
}

/* Writes the fields of m (of the type of fd), which sits depth levels below the top. */
static int
emit_message(struct render *r, const ProtobufCFieldDescriptor *fd, const ProtobufCMessage *m,
    int depth)
{
	size_t before = r->out.len;
	int rc;

	if (depth > PB_TEXT_MAX_DEPTH)
		return BS_ERR_TOO_BIG;
	if (m->descriptor != fd->descriptor)
		return BS_ERR_INVALID;
	if ((rc = render_fields(r, m, depth)) != 0)
		return rc;
	return r->out.len == before ? emit_empty(r) : 0;
}

/* Writes the value at v of the field fd, of a message depth levels below the top. */
static int
emit_value(struct render *r, const ProtobufCFieldDescriptor *fd, const void *v, int depth)
{
	const ProtobufCMessage *m;

	if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
		return emit_scalar(r, fd, v);
	memcpy(&m, v, sizeof(m));
	return m != NULL ? emit_message(r, fd, m, depth + 1) : 0;
}

/* 1 if entry is the map entry name protoc gives the field name ("foo_bar" -> "FooBarEntry"). */
static int
is_entry_name(const char *name, const char *entry)
{
	int cap = 1;

	for (; *name != '\0'; name++) {
		char c = *name;

		if (c == '_') {
			cap = 1;
			continue;
		}
		if (cap && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		cap = 0;
		if (*entry++ != c)
			return 0;
	}
	return strcmp(entry, "Entry") == 0;
}

/* 1 if the repeated message field fd is a map (see pb_text.h). */
static int
is_map(const ProtobufCFieldDescriptor *fd)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;
	const ProtobufCFieldDescriptor *k, *v;

	if (fd->type != PROTOBUF_C_TYPE_MESSAGE || d == NULL || d->n_fields != 2 ||
	    d->short_name == NULL)
		return 0;
	k = &d->fields[0];
	v = &d->fields[1];
	if (k->id != 1 || v->id != 2 || strcmp(k->name, "key") != 0 ||
	    strcmp(v->name, "value") != 0 || k->label == PROTOBUF_C_LABEL_REPEATED ||
	    v->label == PROTOBUF_C_LABEL_REPEATED || k->type == PROTOBUF_C_TYPE_MESSAGE ||
	    ((k->flags | v->flags) & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		return 0;
	return is_entry_name(fd->name, d->short_name);
}

/* Writes "name[KEY]..." for the map entry e, depth levels below the top. */
static int
emit_map_entry(struct render *r, const ProtobufCFieldDescriptor *fd, const ProtobufCMessage *e,
    int depth)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;
	const ProtobufCFieldDescriptor *k = &d->fields[0], *v = &d->fields[1];
	const uint8_t *base = (const uint8_t *)e;
	const ProtobufCMessage *m;
	size_t before;
	int rc;

	if (depth > PB_TEXT_MAX_DEPTH)
		return BS_ERR_TOO_BIG;
	if (e->descriptor != d)
		return BS_ERR_INVALID;
	bytebuf_put_u8(&r->path, '[');
	if ((rc = put_value(&r->path, k, base + k->offset)) != 0)
		return rc;
	bytebuf_put_u8(&r->path, ']');
	if ((rc = bytebuf_error(&r->path)) != 0)
		return rc;
	if (v->type != PROTOBUF_C_TYPE_MESSAGE) {
		rc = emit_scalar(r, v, base + v->offset);
	} else {
		memcpy(&m, base + v->offset, sizeof(m));
		before = r->out.len;
		rc = m != NULL ? emit_message(r, v, m, depth + 1) : 0;
		if (rc == 0 && r->out.len == before)
			rc = emit_empty(r);
	}
	return rc;
}

/* Writes the elements of the repeated field fd of m. */
static int
emit_repeated(struct render *r, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
    int depth)
{
	const uint8_t *base = (const uint8_t *)m, *arr, *elem;
	size_t n, i, sz = elem_size(fd->type), saved = r->path.len;
	const ProtobufCMessage *e = NULL;
	int map = is_map(fd), rc = 0;

	memcpy(&n, base + fd->quantifier_offset, sizeof(n));
	memcpy(&arr, base + fd->offset, sizeof(arr));
	if (n == 0)
		return 0;
	if (arr == NULL || sz == 0)
		return BS_ERR_INVALID;
	for (i = 0; i < n && rc == 0; i++) {
		elem = arr + i * sz;
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			memcpy(&e, elem, sizeof(e));
			if (e == NULL)
				return BS_ERR_INVALID;
		}
		if (map) {
			rc = emit_map_entry(r, fd, e, depth + 1);
		} else {
			bytebuf_printf(&r->path, "[%zu]", i);
			rc = bytebuf_error(&r->path);
			if (rc == 0)
				rc = emit_value(r, fd, elem, depth);
		}
		r->path.len = saved;
	}
	return rc;
}

/* 1 if the singular field fd of m is set (protobuf-c's own rules for packing it). */
static int
is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const uint8_t *base = (const uint8_t *)m, *v = base + fd->offset;
	int ptr_type = fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE;
	static const uint8_t zero[sizeof(double)];
	protobuf_c_boolean has;
	ProtobufCBinaryData bd;
	const void *ptr = NULL;
	uint32_t which;
	size_t sz;

	if (ptr_type)
		memcpy(&ptr, v, sizeof(ptr));
	if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
		memcpy(&which, base + fd->quantifier_offset, sizeof(which));
		return which == fd->id && (!ptr_type || ptr != NULL);
	}
	switch (fd->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return fd->type != PROTOBUF_C_TYPE_MESSAGE || ptr != NULL;
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (ptr_type)
			return ptr != NULL && ptr != fd->default_value;
		memcpy(&has, base + fd->quantifier_offset, sizeof(has));
		return has != 0;
	case PROTOBUF_C_LABEL_NONE:
		if (fd->type == PROTOBUF_C_TYPE_STRING)
			return ptr != NULL && *(const char *)ptr != '\0';
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
			return ptr != NULL;
		if (fd->type == PROTOBUF_C_TYPE_BYTES) {
			memcpy(&bd, v, sizeof(bd));
			return bd.len != 0;
		}
		/* by its bits: -0.0 is on the wire, so it is shown */
		sz = elem_size(fd->type);
		return sz > 0 && sz <= sizeof(zero) && memcmp(v, zero, sz) != 0;
	case PROTOBUF_C_LABEL_REPEATED:
	default:
		return 0;
	}
}

/* Writes the fields of m protobuf-c kept without knowing them, as "path.#N". */
static int
emit_unknown(struct render *r, const ProtobufCMessage *m)
{
	const ProtobufCMessageUnknownField *u;
	size_t i, saved = r->path.len;
	int rc = 0;

	if (m->n_unknown_fields > 0 && m->unknown_fields == NULL)
		return BS_ERR_INVALID;
	for (i = 0; i < m->n_unknown_fields && rc == 0; i++) {
		u = &m->unknown_fields[i];
		bytebuf_printf(&r->path, "%s#%" PRIu32, saved > 0 ? "." : "", u->tag);
		if ((rc = bytebuf_error(&r->path)) == 0) {
			line_start(r);
			if ((rc = put_bytes(&r->out, u->data, u->len)) == 0) {
				bytebuf_put_u8(&r->out, '\n');
				rc = bytebuf_error(&r->out);
			}
		}
		r->path.len = saved;
	}
	return rc;
}

/* Writes every set field of m, depth levels below the top, in the descriptor's (field number) order. */
static int
render_fields(struct render *r, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *fd;
	size_t saved = r->path.len;
	unsigned i;
	int rc = 0;

	if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC ||
	    (d->n_fields > 0 && d->fields == NULL))
		return BS_ERR_INVALID;
	for (i = 0; i < d->n_fields && rc == 0; i++) {
		fd = &d->fields[i];
		if (saved > 0)
			bytebuf_put_u8(&r->path, '.');
		bytebuf_put(&r->path, fd->name, strlen(fd->name));
		if ((rc = bytebuf_error(&r->path)) != 0)
			break;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED)
			rc = emit_repeated(r, m, fd, depth);
		else if (is_set(m, fd))
			rc = emit_value(r, fd, (const uint8_t *)m + fd->offset, depth);
		r->path.len = saved;
	}
	if (rc == 0)
		rc = emit_unknown(r, m);
	return rc;
}

int
pb_text_render(const ProtobufCMessage *msg, char **out)
{
	struct render r = { BYTEBUF_INIT, BYTEBUF_INIT };
	size_t len;
	int rc;

	if (msg == NULL || out == NULL)
		return BS_ERR_INVALID;
	r.out.max = PB_TEXT_MAX_LEN + 1;        /* the NUL */
	r.path.max = PB_TEXT_MAX_LEN + 1;
	if ((rc = render_fields(&r, msg, 0)) != 0)
		goto out;
	bytebuf_put_u8(&r.out, '\0');
	if ((rc = bytebuf_error(&r.out)) != 0)
		goto out;
	*out = (char *)bytebuf_steal(&r.out, &len);
out:
	bytebuf_free(&r.out);
	bytebuf_free(&r.path);
	return rc;
}
