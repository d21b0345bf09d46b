/*
 * test_p11uri.c - unit tests of the PKCS#11 token URI parser (p11uri.c, p11-kit underneath):
 * accepted forms, percent-decoding, rejected attributes, queries and
 * fragments, length limits, and matching against blank-padded token fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hsm/p11uri.h"

static void
test_valid(void **state)
{
	struct p11uri u;

	(void)state;
	assert_int_equal(p11uri_parse("pkcs11:token=boltseal-dev", &u), 0);
	assert_string_equal(u.token, "boltseal-dev");
	assert_string_equal(u.manufacturer, "");
	assert_string_equal(u.serial, "");
	assert_string_equal(u.model, "");
	assert_int_equal(u.slot_id, -1);

	assert_int_equal(p11uri_parse("pkcs11:token=t1;manufacturer=SoftHSM%20project;"
	    "serial=0debcc1256ed8a15;model=SoftHSM%20v2;slot-id=1458473493", &u), 0);
	assert_string_equal(u.token, "t1");
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.serial, "0debcc1256ed8a15");
	assert_string_equal(u.model, "SoftHSM v2");
	assert_int_equal(u.slot_id, 1458473493L);

	/* Empty path: any token. Scheme is case-insensitive. */
	assert_int_equal(p11uri_parse("pkcs11:", &u), 0);
	assert_string_equal(u.token, "");
	assert_int_equal(u.slot_id, -1);
	assert_int_equal(p11uri_parse("PKCS11:token=x", &u), 0);
	assert_string_equal(u.token, "x");

	/* object, id and type are accepted and ignored. */
	assert_int_equal(p11uri_parse("pkcs11:token=a;object=my%20key;id=%01%02;type=private", &u),
	    0);
	assert_string_equal(u.token, "a");
}

static void
test_percent_decoding(void **state)
{
	struct p11uri u;

	(void)state;
	assert_int_equal(p11uri_parse("pkcs11:token=a%3bb%3Dc%25d%2Fe", &u), 0);
	assert_string_equal(u.token, "a;b=c%d/e");
	assert_int_equal(p11uri_parse("pkcs11:token=%41%42%43", &u), 0);
	assert_string_equal(u.token, "ABC");
	/* Reserved characters allowed unencoded by RFC 7512. */
	assert_int_equal(p11uri_parse("pkcs11:token=a:b@c!$'()*+,=&[]~._-", &u), 0);
	assert_string_equal(u.token, "a:b@c!$'()*+,=&[]~._-");

	/* Bad escapes and disallowed characters. */
	assert_int_equal(p11uri_parse("pkcs11:token=a%4", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a%", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a%zz", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a%00b", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a b", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a/b", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a\"b", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a\nb", &u), BS_ERR_INVALID);
}

static void
test_rejected(void **state)
{
	struct p11uri u;

	(void)state;
	memset(&u, 0x5a, sizeof(u));
	/* Unknown attributes, including valid RFC 7512 ones we do not use. */
	assert_int_equal(p11uri_parse("pkcs11:token=a;color=blue", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:library-description=x", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:Token=a", &u), BS_ERR_INVALID);
	/* Queries (where pin-value lives) and fragments. */
	assert_int_equal(p11uri_parse("pkcs11:token=a?pin-value=1234", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a?module-name=softhsm2", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:?pin-source=file:/x", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a#frag", &u), BS_ERR_INVALID);
	/* Wrong scheme, malformed structure. */
	assert_int_equal(p11uri_parse("pkcs12:token=a", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("token=a", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:=a", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a;", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a;;model=b", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a;token=b", &u), BS_ERR_INVALID);
	/* slot-id must be a plain decimal number. */
	assert_int_equal(p11uri_parse("pkcs11:slot-id=-1", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:slot-id=12a", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:slot-id=99999999999999999999", &u), BS_ERR_INVALID);
	/* 2^64 - 1: p11-kit's own value for "no slot-id", never taken as "any slot" */
	assert_int_equal(p11uri_parse("pkcs11:slot-id=18446744073709551615", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:slot-id=+1", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse(NULL, &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=a", NULL), BS_ERR_INVALID);
	/* Output untouched on failure. */
	assert_int_equal(u.slot_id, (long)0x5a5a5a5a5a5a5a5aL);
}

static void
test_too_long(void **state)
{
	struct p11uri u;
	char buf[2100];

	(void)state;
	/* token: 32 bytes fit, 33 do not (also when reached via escapes). */
	assert_int_equal(p11uri_parse("pkcs11:token=abcdefghijabcdefghijabcdefghijab", &u), 0);
	assert_int_equal(strlen(u.token), 32);
	assert_int_equal(p11uri_parse("pkcs11:token=abcdefghijabcdefghijabcdefghijabc", &u),
	    BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:token=abcdefghijabcdefghijabcdefghija%41%42", &u),
	    BS_ERR_INVALID);
	/* serial and model: 16 bytes. */
	assert_int_equal(p11uri_parse("pkcs11:serial=0123456789abcdef", &u), 0);
	assert_int_equal(p11uri_parse("pkcs11:serial=0123456789abcdef0", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:model=0123456789abcdef0", &u), BS_ERR_INVALID);
	assert_int_equal(p11uri_parse("pkcs11:manufacturer=abcdefghijabcdefghijabcdefghijabc", &u),
	    BS_ERR_INVALID);
	/* Values of ignored attributes are bounded too. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "pkcs11:object=", 14);
	memset(buf + 14, 'a', 200);
	assert_int_equal(p11uri_parse(buf, &u), BS_ERR_INVALID);
	/* A URI over 1024 characters is rejected before it is looked at. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "pkcs11:token=a;object=", 22);
	memset(buf + 22, '%', 2000);
	assert_int_equal(p11uri_parse(buf, &u), BS_ERR_INVALID);
}

static void
test_field_matches(void **state)
{
	unsigned char label[32], serial[16];

	(void)state;
	memset(label, ' ', sizeof(label));
	memcpy(label, "boltseal-test", 13);
	assert_int_equal(p11uri_field_matches("boltseal-test", label, sizeof(label)), 1);
	assert_int_equal(p11uri_field_matches("", label, sizeof(label)), 1);
	assert_int_equal(p11uri_field_matches("boltseal", label, sizeof(label)), 0);
	assert_int_equal(p11uri_field_matches("boltseal-test2", label, sizeof(label)), 0);
	assert_int_equal(p11uri_field_matches("Boltseal-test", label, sizeof(label)), 0);

	/* NUL padding (written by some tools) also counts as padding. */
	memset(label, 0, sizeof(label));
	memcpy(label, "boltseal-test", 13);
	assert_int_equal(p11uri_field_matches("boltseal-test", label, sizeof(label)), 1);
	assert_int_equal(p11uri_field_matches("boltseal-tes", label, sizeof(label)), 0);

	/* Full-width field, no padding; longer want never matches. */
	memcpy(serial, "0123456789abcdef", 16);
	assert_int_equal(p11uri_field_matches("0123456789abcdef", serial, sizeof(serial)), 1);
	assert_int_equal(p11uri_field_matches("0123456789abcdef0", serial, sizeof(serial)), 0);
	assert_int_equal(p11uri_field_matches("0123456789abcde", serial, sizeof(serial)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_field_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
