/*
 * test_pb_text.c - unit tests of the text rendering of decoded protobuf-c
 * messages for approvers: the project's own messages (strings, bytes,
 * enums, oneofs, maps, repeated and nested messages, unknown fields), the
 * escaping of strings, the short form of long bytes, every scalar type and
 * the proto2 presence rules (through hand-written descriptors), and the
 * depth and size caps. Every output is compared whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boltseal/v1/envelope.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "formats/pb_text.h"

/* Renders m and compares the text with want. */
static void
expect_text(const ProtobufCMessage *m, const char *want)
{
	char *out = NULL;

	assert_int_equal(pb_text_render(m, &out), 0);
	assert_non_null(out);
	assert_string_equal(out, want);
	free(out);
}

/* Renders m, expects the error err and *out untouched. */
static void
expect_err(const ProtobufCMessage *m, int err)
{
	char *out = (char *)"untouched";

	assert_int_equal(pb_text_render(m, &out), err);
	assert_string_equal(out, "untouched");
}

/* ---- hand-written descriptors: every scalar type, proto2 labels ---------- */

typedef struct Scalars Scalars;
struct Scalars {
	ProtobufCMessage base;
	int32_t i32, s32, sf32;
	int64_t i64, s64, sf64;
	uint32_t u32, fx32;
	uint64_t u64, fx64;
	float fl;
	double db;
	protobuf_c_boolean b;
	int32_t e;
	char *s;
	ProtobufCBinaryData by;
	Scalars *child;
	size_t n_r_i32;
	int32_t *r_i32;
	size_t n_r_fl;
	float *r_fl;
	size_t n_r_b;
	protobuf_c_boolean *r_b;
	size_t n_r_e;
	int32_t *r_e;
	size_t n_r_s;
	char **r_s;
	size_t n_r_by;
	ProtobufCBinaryData *r_by;
	size_t n_r_u64;
	uint64_t *r_u64;
};

static const ProtobufCMessageDescriptor scalars_desc;

#define FIELD(st, nm, id, label, type, q, d, dflt, flags) \
	{ #nm, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, q, offsetof(st, nm), d, dflt, \
	  flags, 0, NULL, NULL }
#define NONE(nm, id, type, d) FIELD(Scalars, nm, id, NONE, type, 0, d, NULL, 0)
#define REP(nm, id, type, d) \
	FIELD(Scalars, nm, id, REPEATED, type, offsetof(Scalars, n_##nm), d, NULL, 0)

static const ProtobufCFieldDescriptor scalars_fields[] = {
	NONE(i32, 1, INT32, NULL),
	NONE(s32, 2, SINT32, NULL),
	NONE(sf32, 3, SFIXED32, NULL),
	NONE(i64, 4, INT64, NULL),
	NONE(s64, 5, SINT64, NULL),
	NONE(sf64, 6, SFIXED64, NULL),
	NONE(u32, 7, UINT32, NULL),
	NONE(fx32, 8, FIXED32, NULL),
	NONE(u64, 9, UINT64, NULL),
	NONE(fx64, 10, FIXED64, NULL),
	NONE(fl, 11, FLOAT, NULL),
	NONE(db, 12, DOUBLE, NULL),
	NONE(b, 13, BOOL, NULL),
	NONE(e, 14, ENUM, &boltseal__v1__algorithm__descriptor),
	NONE(s, 15, STRING, NULL),
	NONE(by, 16, BYTES, NULL),
	NONE(child, 17, MESSAGE, &scalars_desc),
	REP(r_i32, 18, SINT32, NULL),
	REP(r_fl, 19, FLOAT, NULL),
	REP(r_b, 20, BOOL, NULL),
	REP(r_e, 21, ENUM, &boltseal__v1__algorithm__descriptor),
	REP(r_s, 22, STRING, NULL),
	REP(r_by, 23, BYTES, NULL),
	REP(r_u64, 24, UINT64, NULL),
};
#define NFIELDS(a) (unsigned)(sizeof(a) / sizeof((a)[0]))
static const ProtobufCIntRange scalars_ranges[] = { { 1, 0 }, { 25, 24 } };
static const ProtobufCMessageDescriptor scalars_desc = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.Scalars", "Scalars", "Scalars", "test",
	sizeof(Scalars), NFIELDS(scalars_fields), scalars_fields, NULL, 1, scalars_ranges, NULL,
	NULL, NULL, NULL
};

/* map<int32, Scalars> entry */
typedef struct {
	ProtobufCMessage base;
	int32_t key;
	Scalars *value;
} IntMapEntry;

static const ProtobufCFieldDescriptor entry_fields[] = {
	FIELD(IntMapEntry, key, 1, NONE, INT32, 0, NULL, NULL, 0),
	FIELD(IntMapEntry, value, 2, NONE, MESSAGE, 0, &scalars_desc, NULL, 0),
};
static const ProtobufCIntRange entry_ranges[] = { { 1, 0 }, { 3, 2 } };
static const ProtobufCMessageDescriptor entry_desc = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.P2.IntMapEntry", "IntMapEntry",
	"P2__IntMapEntry", "test", sizeof(IntMapEntry), NFIELDS(entry_fields), entry_fields, NULL, 1,
	entry_ranges, NULL, NULL, NULL, NULL
};

/* proto2: required, optional with has_, optional string with a default, a oneof */
typedef struct {
	ProtobufCMessage base;
	int32_t req;
	protobuf_c_boolean has_opt_i;
	int64_t opt_i;
	char *opt_s;
	protobuf_c_boolean has_opt_by;
	ProtobufCBinaryData opt_by;
	Scalars *opt_m;
	char *req_s;
	protobuf_c_boolean has_opt_d;
	double opt_d;
	uint32_t which_case;
	union {
		uint32_t o_u;
		char *o_s;
	};
	size_t n_int_map;
	IntMapEntry **int_map;
	size_t n_pairs;         /* the same entries, but not a map: the entry is named for int_map */
	IntMapEntry **pairs;
} P2;

static const char dflt[] = "dflt";
#define OPT(nm, id, type, d, dfl) \
	FIELD(P2, nm, id, OPTIONAL, type, offsetof(P2, has_##nm), d, dfl, 0)
#define ONEOF(nm, id, type) \
	FIELD(P2, nm, id, OPTIONAL, type, offsetof(P2, which_case), NULL, NULL, \
	    PROTOBUF_C_FIELD_FLAG_ONEOF)

static const ProtobufCFieldDescriptor p2_fields[] = {
	FIELD(P2, req, 1, REQUIRED, INT32, 0, NULL, NULL, 0),
	OPT(opt_i, 2, SINT64, NULL, NULL),
	FIELD(P2, opt_s, 3, OPTIONAL, STRING, 0, NULL, dflt, 0),
	OPT(opt_by, 4, BYTES, NULL, NULL),
	FIELD(P2, opt_m, 5, OPTIONAL, MESSAGE, 0, &scalars_desc, NULL, 0),
	FIELD(P2, req_s, 6, REQUIRED, STRING, 0, NULL, NULL, 0),
	OPT(opt_d, 7, DOUBLE, NULL, NULL),
	ONEOF(o_u, 8, UINT32),
	ONEOF(o_s, 9, STRING),
	FIELD(P2, int_map, 10, REPEATED, MESSAGE, offsetof(P2, n_int_map), &entry_desc, NULL, 0),
	FIELD(P2, pairs, 11, REPEATED, MESSAGE, offsetof(P2, n_pairs), &entry_desc, NULL, 0),
};
static const ProtobufCIntRange p2_ranges[] = { { 1, 0 }, { 12, 11 } };
static const ProtobufCMessageDescriptor p2_desc = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.P2", "P2", "P2", "test", sizeof(P2),
	NFIELDS(p2_fields), p2_fields, NULL, 1, p2_ranges, NULL, NULL, NULL, NULL
};

static void
scalars_init(Scalars *s)
{
	memset(s, 0, sizeof(*s));
	s->base.descriptor = &scalars_desc;
	s->s = (char *)protobuf_c_empty_string;
}

static void
p2_init(P2 *p)
{
	memset(p, 0, sizeof(*p));
	p->base.descriptor = &p2_desc;
	p->opt_s = (char *)dflt;
}

/* ---- the project's messages ---------------------------------------------- */

static void
test_sign_request(void **state)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;

	r.key_name = (char *)"demo";
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = (uint8_t *)"hi";
	r.message.len = 2;
	r.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__RAW;
	expect_text(&r.base,
	    "key_name: \"demo\"\n"
	    "message: hex:6869 (2 bytes)\n"
	    "signature_format: RAW\n");

	/* the set member of a oneof is shown even empty; an unknown enum number as a number */
	r.key_name = (char *)"";
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
	r.digest.data = NULL;
	r.digest.len = 0;
	r.signature_format = (Boltseal__V1__SignatureFormat)7;
	expect_text(&r.base,
	    "digest: hex: (0 bytes)\n"
	    "signature_format: 7\n");
}

static void
test_schedule_destruction(void **state)
{
	Boltseal__V1__ScheduleKeyDestructionRequest r =
	    BOLTSEAL__V1__SCHEDULE_KEY_DESTRUCTION_REQUEST__INIT;

	r.name = (char *)"k";
	r.pending_days = 7;
	expect_text(&r.base, "name: \"k\"\npending_days: 7\n");
	r.version = 4294967295u;
	expect_text(&r.base, "name: \"k\"\nversion: 4294967295\npending_days: 7\n");
}

static void
test_map(void **state)
{
	Boltseal__V1__GenerateDataKeyRequest r = BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__INIT;
	Boltseal__V1__GenerateDataKeyRequest__ContextEntry e[3] = {
		BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__CONTEXT_ENTRY__INIT,
		BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__CONTEXT_ENTRY__INIT,
		BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__CONTEXT_ENTRY__INIT,
	};
	Boltseal__V1__GenerateDataKeyRequest__ContextEntry *ep[3] = { &e[0], &e[1], &e[2] };
	static const char want[] =
	    "key_name: \"kek\"\n"
	    "context[\"vehicle_id\"]: \"VIN1\"\n"
	    "context[\"a\\\"]: x\"]: \"\"\n"       /* a key that tries to end the path early */
	    "context[\"vehicle_id\"]: \"VIN2\"\n";  /* duplicates are all shown, in wire order */
	Boltseal__V1__GenerateDataKeyRequest *u;
	uint8_t buf[256];
	size_t n;

	r.key_name = (char *)"kek";
	e[0].key = (char *)"vehicle_id";
	e[0].value = (char *)"VIN1";
	e[1].key = (char *)"a\"]: x";
	e[2].key = (char *)"vehicle_id";
	e[2].value = (char *)"VIN2";
	r.n_context = 3;
	r.context = ep;
	expect_text(&r.base, want);

	/* the same decoded from the wire */
	assert_true(protobuf_c_message_get_packed_size(&r.base) <= sizeof(buf));
	n = protobuf_c_message_pack(&r.base, buf);
	u = boltseal__v1__generate_data_key_request__unpack(NULL, n, buf);
	assert_non_null(u);
	expect_text(&u->base, want);
	boltseal__v1__generate_data_key_request__free_unpacked(u, NULL);
}

static void
test_repeated_message(void **state)
{
	Boltseal__V1__SignBatchRequest r = BOLTSEAL__V1__SIGN_BATCH_REQUEST__INIT;
	Boltseal__V1__SignBatchItem it[3] = {
		BOLTSEAL__V1__SIGN_BATCH_ITEM__INIT,
		BOLTSEAL__V1__SIGN_BATCH_ITEM__INIT,
		BOLTSEAL__V1__SIGN_BATCH_ITEM__INIT,
	};
	Boltseal__V1__SignBatchItem *ip[3] = { &it[0], &it[1], &it[2] };
	uint8_t digest[32];

	memset(digest, 0x11, sizeof(digest));
	r.key_name = (char *)"k";
	r.signature_format = BOLTSEAL__V1__SIGNATURE_FORMAT__DER;
	it[0].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_MESSAGE;
	it[0].message.data = (uint8_t *)"a";
	it[0].message.len = 1;
	it[2].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
	it[2].digest.data = digest;
	it[2].digest.len = sizeof(digest);
	r.n_items = 3;
	r.items = ip;
	expect_text(&r.base,
	    "key_name: \"k\"\n"
	    "items[0].message: hex:61 (1 bytes)\n"
	    "items[1]: {}\n"
	    "items[2].digest: hex:1111111111111111111111111111111111111111111111111111111111111111"
	    " (32 bytes)\n"
	    "signature_format: DER\n");

	/* elements but no array, a NULL element */
	r.items = NULL;
	expect_err(&r.base, BS_ERR_INVALID);
	ip[1] = NULL;
	r.items = ip;
	expect_err(&r.base, BS_ERR_INVALID);
}

static void
test_nested(void **state)
{
	Boltseal__V1__ListKeysResponse r = BOLTSEAL__V1__LIST_KEYS_RESPONSE__INIT;
	Boltseal__V1__Key k = BOLTSEAL__V1__KEY__INIT, *kp = &k;
	Boltseal__V1__Key empty = BOLTSEAL__V1__KEY__INIT;
	Boltseal__V1__KeyVersion v = BOLTSEAL__V1__KEY_VERSION__INIT, *vp = &v;
	Boltseal__V1__CreateKeyResponse c = BOLTSEAL__V1__CREATE_KEY_RESPONSE__INIT;
	Boltseal__V1__GenerateDataKeyBatchRequest g =
	    BOLTSEAL__V1__GENERATE_DATA_KEY_BATCH_REQUEST__INIT;
	Boltseal__V1__EncryptionContext ctx[2] = {
		BOLTSEAL__V1__ENCRYPTION_CONTEXT__INIT,
		BOLTSEAL__V1__ENCRYPTION_CONTEXT__INIT,
	};
	Boltseal__V1__EncryptionContext *cp[2] = { &ctx[0], &ctx[1] };
	Boltseal__V1__EncryptionContext__EntriesEntry ent =
	    BOLTSEAL__V1__ENCRYPTION_CONTEXT__ENTRIES_ENTRY__INIT, *entp = &ent;

	k.name = (char *)"a";
	k.purpose = BOLTSEAL__V1__KEY_PURPOSE__GENERIC;
	k.algorithm = BOLTSEAL__V1__ALGORITHM__ED25519;
	k.state = BOLTSEAL__V1__KEY_STATE__ENABLED;
	k.primary_version = 1;
	k.create_time_unix = 1700000000;
	v.version = 1;
	v.state = BOLTSEAL__V1__KEY_STATE__ENABLED;
	v.create_time_unix = -1;
	k.n_versions = 1;
	k.versions = &vp;
	r.n_keys = 1;
	r.keys = &kp;
	r.next_page_token = (char *)"t";
	expect_text(&r.base,
	    "keys[0].name: \"a\"\n"
	    "keys[0].purpose: GENERIC\n"
	    "keys[0].algorithm: ED25519\n"
	    "keys[0].state: ENABLED\n"
	    "keys[0].primary_version: 1\n"
	    "keys[0].versions[0].version: 1\n"
	    "keys[0].versions[0].state: ENABLED\n"
	    "keys[0].versions[0].create_time_unix: -1\n"
	    "keys[0].create_time_unix: 1700000000\n"
	    "next_page_token: \"t\"\n");

	/* a set message with nothing set in it; NULL is unset */
	expect_text(&c.base, "");
	c.key = &empty;
	expect_text(&c.base, "key: {}\n");

	/* a map inside a repeated message */
	ent.key = (char *)"k";
	ent.value = (char *)"v";
	ctx[0].n_entries = 1;
	ctx[0].entries = &entp;
	g.key_name = (char *)"kek";
	g.n_contexts = 2;
	g.contexts = cp;
	g.without_plaintext = 1;
	expect_text(&g.base,
	    "key_name: \"kek\"\n"
	    "contexts[0].entries[\"k\"]: \"v\"\n"
	    "contexts[1]: {}\n"
	    "without_plaintext: true\n");

	/* a nested message of another type than its field's */
	c.key = (Boltseal__V1__Key *)(void *)&v;
	expect_err(&c.base, BS_ERR_INVALID);
}

static void
test_long_bytes(void **state)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	uint8_t m[100];
	size_t i;

	for (i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)i;
	r.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
	r.message.data = m;
	r.message.len = 64;
	expect_text(&r.base,
	    "message: hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f (64 bytes)\n");
	r.message.len = 100;
	expect_text(&r.base,
	    "message: hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f..."
	    " (100 bytes, sha256 bce0aff19cf5aa6a7469a30d61d04e4376e4bbf6381052ee9e7f33925c954d52)\n");
}

static void
test_escaping(void **state)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;

	r.key_name = (char *)"a\"b\\c\nd\te\x01" "f\x7fg\rh\x1b[2J";
	expect_text(&r.base, "key_name: \"a\\\"b\\\\c\\nd\\te\\x01f\\x7fg\\x0dh\\x1b[2J\"\n");

	/* UTF-8 kept, but not what hides or reorders text, nor invalid bytes */
	r.key_name = (char *)"caf\xc3\xa9 \xe2\x82\xac \xe2\x80\xae" "cba \xc2\x85 \xff\xc3 "
	    "\xe2\x80\x8b \xef\xbb\xbf \xc0\xaf \xf0\x9f\x94\x91";
	expect_text(&r.base, "key_name: \"caf\xc3\xa9 \xe2\x82\xac \\u202e" "cba \\u0085 \\xff\\xc3 "
	    "\\u200b \\ufeff \\xc0\\xaf \xf0\x9f\x94\x91\"\n");
}

static void
test_unknown_fields(void **state)
{
	/* SignRequest{key_name: "k"}, then field 501 = varint 1 and field 502 = "hi" */
	static const uint8_t wire[] = { 0x0a, 0x01, 'k', 0xa8, 0x1f, 0x01, 0xb2, 0x1f, 0x02, 'h', 'i' };
	Boltseal__V1__SignRequest *u;

	u = boltseal__v1__sign_request__unpack(NULL, sizeof(wire), wire);
	assert_non_null(u);
	expect_text(&u->base,
	    "key_name: \"k\"\n"
	    "#501: hex:01 (1 bytes)\n"
	    "#502: hex:026869 (3 bytes)\n");
	boltseal__v1__sign_request__free_unpacked(u, NULL);
}

static void
test_empty_and_invalid(void **state)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	ProtobufCMessageDescriptor bad = boltseal__v1__sign_request__descriptor;
	char *out = NULL;

	assert_int_equal(pb_text_render(&r.base, &out), 0);
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);

	expect_err(NULL, BS_ERR_INVALID);
	assert_int_equal(pb_text_render(&r.base, NULL), BS_ERR_INVALID);
	bad.magic = 0;
	r.base.descriptor = &bad;
	expect_err(&r.base, BS_ERR_INVALID);
	r.base.descriptor = NULL;
	expect_err(&r.base, BS_ERR_INVALID);
}

/* ---- every scalar type, proto2 labels ------------------------------------ */

static void
test_all_types(void **state)
{
	Scalars s, child;
	int32_t r_i32[] = { 1, -1 };
	float r_fl[] = { 1.5f };
	protobuf_c_boolean r_b[] = { 0, 1 };
	int32_t r_e[] = { 2, 99 };
	char *r_s[] = { (char *)"", NULL, (char *)"z" };
	ProtobufCBinaryData r_by[] = { { 0, NULL }, { 1, (uint8_t *)"\xab" } };
	uint64_t r_u64[] = { 0 };

	scalars_init(&s);
	expect_text(&s.base, "");

	scalars_init(&child);
	s.i32 = INT32_MIN;
	s.s32 = -1;
	s.sf32 = 7;
	s.i64 = INT64_MIN;
	s.s64 = -2;
	s.sf64 = INT64_MAX;
	s.u32 = UINT32_MAX;
	s.fx32 = 1;
	s.u64 = UINT64_MAX;
	s.fx64 = 2;
	s.fl = 0.1f;
	s.db = -0.0;
	s.b = 1;
	s.e = 3;
	s.s = (char *)"x";
	s.by.data = (uint8_t *)"\x00\xff\x10";
	s.by.len = 3;
	s.child = &child;
	s.n_r_i32 = 2;
	s.r_i32 = r_i32;
	s.n_r_fl = 1;
	s.r_fl = r_fl;
	s.n_r_b = 2;
	s.r_b = r_b;
	s.n_r_e = 2;
	s.r_e = r_e;
	s.n_r_s = 3;
	s.r_s = r_s;
	s.n_r_by = 2;
	s.r_by = r_by;
	s.n_r_u64 = 1;
	s.r_u64 = r_u64;
	expect_text(&s.base,
	    "i32: -2147483648\n"
	    "s32: -1\n"
	    "sf32: 7\n"
	    "i64: -9223372036854775808\n"
	    "s64: -2\n"
	    "sf64: 9223372036854775807\n"
	    "u32: 4294967295\n"
	    "fx32: 1\n"
	    "u64: 18446744073709551615\n"
	    "fx64: 2\n"
	    "fl: 0.10000000149011612\n"
	    "db: -0\n"
	    "b: true\n"
	    "e: RSA_3072_PSS_SHA256\n"
	    "s: \"x\"\n"
	    "by: hex:00ff10 (3 bytes)\n"
	    "child: {}\n"
	    "r_i32[0]: 1\n"
	    "r_i32[1]: -1\n"
	    "r_fl[0]: 1.5\n"
	    "r_b[0]: false\n"
	    "r_b[1]: true\n"
	    "r_e[0]: ED25519\n"
	    "r_e[1]: 99\n"
	    "r_s[0]: \"\"\n"
	    "r_s[1]: \"\"\n"
	    "r_s[2]: \"z\"\n"
	    "r_by[0]: hex: (0 bytes)\n"
	    "r_by[1]: hex:ab (1 bytes)\n"
	    "r_u64[0]: 0\n");

	/* proto3 defaults are unset, whatever else is set */
	scalars_init(&s);
	s.db = 0.0;
	s.fl = 1e-45f;
	s.e = 99;
	expect_text(&s.base, "fl: 1.4012984643248171e-45\ne: 99\n");
}

static void
test_proto2(void **state)
{
	P2 p;
	Scalars m1, m2;
	IntMapEntry e[2] = { { .key = 7 }, { .key = -8 } };
	IntMapEntry *ep[2] = { &e[0], &e[1] };

	/* required fields always, optional ones by has_ or pointer, the default string unset */
	p2_init(&p);
	p.opt_i = 5;
	p.opt_d = 3.0;
	p.o_u = 4;
	expect_text(&p.base, "req: 0\nreq_s: \"\"\n");

	scalars_init(&m1);
	scalars_init(&m2);
	m1.i32 = 1;
	m2.i32 = 5;
	e[0].base.descriptor = &entry_desc;
	e[0].value = &m1;
	e[1].base.descriptor = &entry_desc;
	e[1].value = NULL;
	p.req = -3;
	p.req_s = (char *)"r";
	p.has_opt_i = 1;
	p.opt_i = 0;
	p.opt_s = (char *)"other";
	p.has_opt_by = 1;
	p.opt_m = &m2;
	p.which_case = 9;
	p.o_s = (char *)"";
	p.n_int_map = 2;
	p.int_map = ep;
	p.n_pairs = 2;
	p.pairs = ep;
	expect_text(&p.base,
	    "req: -3\n"
	    "opt_i: 0\n"
	    "opt_s: \"other\"\n"
	    "opt_by: hex: (0 bytes)\n"
	    "opt_m.i32: 5\n"
	    "req_s: \"r\"\n"
	    "o_s: \"\"\n"
	    "int_map[7].i32: 1\n"
	    "int_map[-8]: {}\n"
	    "pairs[0].key: 7\n"
	    "pairs[0].value.i32: 1\n"
	    "pairs[1].key: -8\n");

	p2_init(&p);
	p.has_opt_d = 1;
	p.opt_d = 2.5;
	p.which_case = 8;
	p.o_u = 0;
	expect_text(&p.base, "req: 0\nreq_s: \"\"\nopt_d: 2.5\no_u: 0\n");
}

/* ---- caps ----------------------------------------------------------------- */

static void
test_depth_cap(void **state)
{
	Scalars chain[PB_TEXT_MAX_DEPTH + 2];
	char want[16 * 6 + 8];
	size_t i;

	for (i = 0; i < PB_TEXT_MAX_DEPTH + 2; i++) {
		scalars_init(&chain[i]);
		if (i > 0)
			chain[i - 1].child = &chain[i];
	}
	/* chain[k] is k levels down: 16 fine, 17 too deep */
	chain[PB_TEXT_MAX_DEPTH].child = NULL;
	want[0] = '\0';
	for (i = 0; i < PB_TEXT_MAX_DEPTH; i++)
		strcat(want, i == 0 ? "child" : ".child");
	strcat(want, ": {}\n");
	expect_text(&chain[0].base, want);

	chain[PB_TEXT_MAX_DEPTH].child = &chain[PB_TEXT_MAX_DEPTH + 1];
	expect_err(&chain[0].base, BS_ERR_TOO_BIG);
}

static void
test_size_cap(void **state)
{
	Boltseal__V1__SignRequest r = BOLTSEAL__V1__SIGN_REQUEST__INIT;
	/* "key_name: \"" + n + "\"\n" is n + 13 characters */
	size_t n = PB_TEXT_MAX_LEN - 13;
	char *name, *out = NULL;

	name = malloc(n + 2);
	assert_non_null(name);
	memset(name, 'a', n + 1);
	name[n] = '\0';
	r.key_name = name;
	assert_int_equal(pb_text_render(&r.base, &out), 0);
	assert_int_equal(strlen(out), PB_TEXT_MAX_LEN);
	free(out);

	name[n] = 'a';
	name[n + 1] = '\0';
	expect_err(&r.base, BS_ERR_TOO_BIG);

	/* escaping counts: half as many bytes, each written as four characters */
	memset(name, '\x01', n / 2);
	name[n / 2] = '\0';
	expect_err(&r.base, BS_ERR_TOO_BIG);
	free(name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_request),
		cmocka_unit_test(test_schedule_destruction),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_repeated_message),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_long_bytes),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_empty_and_invalid),
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_proto2),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_size_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
