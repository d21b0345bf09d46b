/*
 * test_descriptor_index.c - unit tests for
 * src/services/reflection/descriptor_index.c: the daemon's embedded
 * descriptor set indexes (every served service, method and message found in
 * its file); a set built here (three files importing each other, nested
 * types, an extension) gives each symbol's file, imports closed
 * transitively and in order, extension numbers; malformed sets (not
 * protobuf, a nameless file, a symbol twice, an import not in the set) are
 * refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boltseal/internal/descriptor_view.pb-c.h"
#include "services/reflection/descriptor_index.h"
#include "services/reflection/reflection.h"

typedef Boltseal__Internal__FileView file_view;

/* Serializes files into a FileDescriptorSet (malloc'd, *len bytes). */
static uint8_t *
make_set(file_view **files, size_t n, size_t *len)
{
	Boltseal__Internal__DescriptorSetView set = BOLTSEAL__INTERNAL__DESCRIPTOR_SET_VIEW__INIT;
	ProtobufCBinaryData bins[8];
	uint8_t *out;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		bins[i].len = boltseal__internal__file_view__get_packed_size(files[i]);
		bins[i].data = malloc(bins[i].len);
		assert_non_null(bins[i].data);
		(void)boltseal__internal__file_view__pack(files[i], bins[i].data);
	}
	set.n_file = n;
	set.file = bins;
	*len = boltseal__internal__descriptor_set_view__get_packed_size(&set);
	out = malloc(*len);
	assert_non_null(out);
	(void)boltseal__internal__descriptor_set_view__pack(&set, out);
	for (size_t i = 0; i < n; i++)
		free(bins[i].data);
	return out;
}

static void
test_embedded_set(void **state)
{
	struct dindex *ix = NULL;
	int idx[DINDEX_CLOSURE_MAX];
	size_t len;
	int f;

	(void)state;
	assert_int_equal(dindex_new(bs_descriptor_set, bs_descriptor_set_len, &ix), 0);
	assert_true(dindex_files(ix) >= 14);
	f = dindex_file_by_name(ix, "boltseal/v1/keys.proto");
	assert_true(f >= 0);
	assert_int_equal(dindex_file_by_symbol(ix, "boltseal.v1.KeyService"), f);
	assert_int_equal(dindex_file_by_symbol(ix, "boltseal.v1.KeyService.Sign"), f);
	assert_int_equal(dindex_file_by_symbol(ix, ".boltseal.v1.SignRequest"), f);
	assert_int_equal(dindex_file_by_symbol(ix, "boltseal.v1.SignRequest.key_name"), f);
	assert_int_equal(dindex_file_by_symbol(ix, "boltseal.v1.KeyService.Nope"), -1);
	assert_int_equal(dindex_file_by_symbol(ix, "boltseal.v1"), -1);
	assert_int_equal(dindex_file_by_symbol(ix, ""), -1);
	assert_int_equal(dindex_file_by_symbol(ix, "grpc.reflection.v1alpha.ServerReflection"),
	    dindex_file_by_name(ix, "grpc/reflection/v1alpha/reflection.proto"));
	/* the internal view of descriptor.proto is not served */
	assert_int_equal(dindex_file_by_name(ix, "boltseal/internal/descriptor_view.proto"), -1);
	assert_int_equal(dindex_closure(ix, f, idx), 1);
	assert_int_equal(idx[0], f);
	assert_non_null(dindex_file_bytes(ix, f, &len));
	assert_true(len > 100);
	assert_string_equal(dindex_file_name(ix, f), "boltseal/v1/keys.proto");
	dindex_free(ix);
	dindex_free(NULL);
}

/* a.proto: package p; message M { field f; message N { field g; } enum E } service S { X }
 * b.proto imports a.proto: message B, extends p.M with 100 and 7
 * c.proto imports b.proto and a.proto: enum C */
static void
test_built_set(void **state)
{
	Boltseal__Internal__FieldView ff = BOLTSEAL__INTERNAL__FIELD_VIEW__INIT,
	    fg = BOLTSEAL__INTERNAL__FIELD_VIEW__INIT, x100 = BOLTSEAL__INTERNAL__FIELD_VIEW__INIT,
	    x7 = BOLTSEAL__INTERNAL__FIELD_VIEW__INIT;
	Boltseal__Internal__EnumView e = BOLTSEAL__INTERNAL__ENUM_VIEW__INIT,
	    ec = BOLTSEAL__INTERNAL__ENUM_VIEW__INIT;
	Boltseal__Internal__MessageView m = BOLTSEAL__INTERNAL__MESSAGE_VIEW__INIT,
	    nested = BOLTSEAL__INTERNAL__MESSAGE_VIEW__INIT, mb = BOLTSEAL__INTERNAL__MESSAGE_VIEW__INIT;
	Boltseal__Internal__MethodView x = BOLTSEAL__INTERNAL__METHOD_VIEW__INIT;
	Boltseal__Internal__ServiceView s = BOLTSEAL__INTERNAL__SERVICE_VIEW__INIT;
	file_view a = BOLTSEAL__INTERNAL__FILE_VIEW__INIT, b = BOLTSEAL__INTERNAL__FILE_VIEW__INIT,
	    c = BOLTSEAL__INTERNAL__FILE_VIEW__INIT;
	Boltseal__Internal__FieldView *mfields[] = { &ff }, *nfields[] = { &fg },
	    *bext[] = { &x100, &x7 };
	Boltseal__Internal__MessageView *mnested[] = { &nested }, *amsgs[] = { &m }, *bmsgs[] = { &mb };
	Boltseal__Internal__EnumView *menums[] = { &e }, *cenums[] = { &ec };
	Boltseal__Internal__MethodView *smethods[] = { &x };
	Boltseal__Internal__ServiceView *asvcs[] = { &s };
	char *bdeps[] = { "a.proto" }, *cdeps[] = { "b.proto", "a.proto" };
	file_view *files[] = { &c, &a, &b };
	struct dindex *ix = NULL;
	int idx[DINDEX_CLOSURE_MAX];
	int32_t nums[4];
	size_t len, n;
	uint8_t *set;

	(void)state;
	ff.name = "f"; fg.name = "g";
	x100.name = "ext100"; x100.extendee = ".p.M"; x100.has_number = 1; x100.number = 100;
	x7.name = "ext7"; x7.extendee = ".p.M"; x7.has_number = 1; x7.number = 7;
	e.name = "E"; ec.name = "C";
	nested.name = "N"; nested.n_field = 1; nested.field = nfields;
	m.name = "M"; m.n_field = 1; m.field = mfields; m.n_nested_type = 1; m.nested_type = mnested;
	m.n_enum_type = 1; m.enum_type = menums;
	mb.name = "B";
	x.name = "X"; s.name = "S"; s.n_method = 1; s.method = smethods;
	a.name = "a.proto"; a.package = "p"; a.n_message_type = 1; a.message_type = amsgs;
	a.n_service = 1; a.service = asvcs;
	b.name = "b.proto"; b.package = "p.b"; b.n_dependency = 1; b.dependency = bdeps;
	b.n_message_type = 1; b.message_type = bmsgs; b.n_extension = 2; b.extension = bext;
	c.name = "c.proto"; c.n_dependency = 2; c.dependency = cdeps;
	c.n_enum_type = 1; c.enum_type = cenums;

	set = make_set(files, 3, &len);
	assert_int_equal(dindex_new(set, len, &ix), 0);
	free(set);   /* copied */
	assert_int_equal(dindex_file_by_symbol(ix, "p.M"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.M.f"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.M.N"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.M.N.g"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.M.E"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.S.X"), 1);
	assert_int_equal(dindex_file_by_symbol(ix, "p.b.B"), 2);
	assert_int_equal(dindex_file_by_symbol(ix, "p.b.ext100"), 2);
	assert_int_equal(dindex_file_by_symbol(ix, "C"), 0);   /* no package */
	assert_int_equal(dindex_file_by_symbol(ix, "p.N"), -1);
	/* c's closure: c, then b and a, each once */
	assert_int_equal(dindex_closure(ix, 0, idx), 3);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 2);
	assert_int_equal(idx[2], 1);
	assert_int_equal(dindex_closure(ix, 2, idx), 2);
	assert_int_equal(dindex_closure(ix, 7, idx), 0);
	assert_int_equal(dindex_closure(ix, -1, idx), 0);
	/* extensions */
	assert_int_equal(dindex_file_by_extension(ix, "p.M", 100), 2);
	assert_int_equal(dindex_file_by_extension(ix, ".p.M", 7), 2);
	assert_int_equal(dindex_file_by_extension(ix, "p.M", 8), -1);
	assert_int_equal(dindex_extension_numbers(ix, "p.M", nums, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(nums[0], 7);
	assert_int_equal(nums[1], 100);
	assert_int_equal(dindex_extension_numbers(ix, "p.M", nums, 1, &n), 0);
	assert_int_equal(n, 2);      /* how many there are; one written */
	assert_int_equal(dindex_extension_numbers(ix, "p.b.B", nums, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dindex_extension_numbers(ix, "p.S", nums, 4, &n), BS_ERR_NOT_FOUND);
	dindex_free(ix);
	ix = NULL;

	/* an import not in the set */
	files[0] = &c;
	files[1] = &b;
	set = make_set(files, 2, &len);
	assert_int_equal(dindex_new(set, len, &ix), BS_ERR_INVALID);
	free(set);
	/* a symbol twice (a file in the set twice) */
	files[0] = &a;
	files[1] = &a;
	set = make_set(files, 2, &len);
	assert_int_equal(dindex_new(set, len, &ix), BS_ERR_INVALID);
	free(set);
	/* the same symbol from two files */
	b.n_dependency = 0;
	b.package = "p";
	mb.name = "M";
	b.n_extension = 0;
	files[1] = &b;
	set = make_set(files, 2, &len);
	assert_int_equal(dindex_new(set, len, &ix), BS_ERR_INVALID);
	free(set);
	/* a file without a name */
	a.name = NULL;
	files[1] = &c;
	set = make_set(files, 1, &len);
	assert_int_equal(dindex_new(set, len, &ix), BS_ERR_INVALID);
	free(set);
	/* not protobuf */
	assert_int_equal(dindex_new((const uint8_t *)"\x0a\xff", 2, &ix), BS_ERR_INVALID);
	assert_null(ix);
	/* an empty set is an empty index */
	assert_int_equal(dindex_new((const uint8_t *)"", 0, &ix), 0);
	assert_int_equal(dindex_files(ix), 0);
	assert_int_equal(dindex_file_by_symbol(ix, "p.M"), -1);
	dindex_free(ix);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_set),
		cmocka_unit_test(test_built_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
