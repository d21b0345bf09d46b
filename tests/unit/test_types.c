/*
 * test_types.c - unit tests for src/types: every algorithm, purpose,
 * signature format and key state round-trips through its name and through
 * the boltseal.v1 protobuf enums; unknown and unspecified values are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boltseal/v1/keys.pb-c.h"
#include "types/types.h"

static void
test_alg(void **state)
{
	static const enum bs_alg all[] = { BS_ALG_ECDSA_P256_SHA256, BS_ALG_ED25519,
		BS_ALG_RSA_3072_PSS_SHA256 };
	enum bs_alg a = BS_ALG_NONE;

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(bs_alg_from_name(bs_alg_name(all[i])), all[i]);
		assert_int_equal(bs_alg_from_pb(bs_alg_to_pb(all[i]), &a), 0);
		assert_int_equal(a, all[i]);
	}
	assert_string_equal(bs_alg_name(BS_ALG_ED25519), "ed25519");
	assert_int_equal(bs_alg_to_pb(BS_ALG_RSA_3072_PSS_SHA256),
	    BOLTSEAL__V1__ALGORITHM__RSA_3072_PSS_SHA256);
	assert_string_equal(bs_alg_name(BS_ALG_NONE), "none");
	assert_string_equal(bs_alg_name((enum bs_alg)99), "none");
	assert_int_equal(bs_alg_from_name("ED25519"), BS_ALG_NONE);
	assert_int_equal(bs_alg_from_name(NULL), BS_ALG_NONE);
	a = BS_ALG_ED25519;
	assert_int_equal(bs_alg_from_pb(BOLTSEAL__V1__ALGORITHM__ALGORITHM_UNSPECIFIED, &a),
	    BS_ERR_INVALID);
	assert_int_equal(bs_alg_from_pb(6, &a), BS_ERR_INVALID);
	assert_int_equal(bs_alg_from_pb(-1, &a), BS_ERR_INVALID);
	assert_int_equal(a, BS_ALG_ED25519);     /* untouched on error */
	assert_int_equal(bs_alg_to_pb(BS_ALG_NONE), BOLTSEAL__V1__ALGORITHM__ALGORITHM_UNSPECIFIED);
	/* the secret-key algorithms, and which purposes take them */
	assert_string_equal(bs_alg_name(BS_ALG_AES_256_GCM), "aes-256-gcm");
	assert_int_equal(bs_alg_from_name("hmac-sha256"), BS_ALG_HMAC_SHA256);
	assert_int_equal(bs_alg_from_pb(BOLTSEAL__V1__ALGORITHM__AES_256_GCM, &a), 0);
	assert_int_equal(a, BS_ALG_AES_256_GCM);
	assert_true(bs_alg_is_symmetric(BS_ALG_HMAC_SHA256));
	assert_false(bs_alg_is_symmetric(BS_ALG_ED25519));
	assert_true(bs_alg_fits_purpose(BS_ALG_AES_256_GCM, BS_PURPOSE_ENVELOPE));
	assert_true(bs_alg_fits_purpose(BS_ALG_HMAC_SHA256, BS_PURPOSE_ENVELOPE));
	assert_false(bs_alg_fits_purpose(BS_ALG_ECDSA_P256_SHA256, BS_PURPOSE_ENVELOPE));
	assert_false(bs_alg_fits_purpose(BS_ALG_AES_256_GCM, BS_PURPOSE_GENERIC));
	assert_true(bs_alg_fits_purpose(BS_ALG_ED25519, BS_PURPOSE_OTA));
	assert_false(bs_alg_fits_purpose(BS_ALG_NONE, BS_PURPOSE_OTA));
}

static void
test_purpose(void **state)
{
	size_t n = 0;
	const char *const *names = bs_purpose_names(&n);
	enum bs_purpose p = BS_PURPOSE_NONE;

	(void)state;
	assert_int_equal(n, 8);
	assert_string_equal(names[0], "generic");
	assert_string_equal(names[6], "admin");
	assert_string_equal(names[7], "ca");
	for (size_t i = 0; i < n; i++) {
		enum bs_purpose q = bs_purpose_from_name(names[i]);

		assert_int_not_equal(q, BS_PURPOSE_NONE);
		assert_string_equal(bs_purpose_name(q), names[i]);
		assert_int_equal(bs_purpose_from_pb(bs_purpose_to_pb(q), &p), 0);
		assert_int_equal(p, q);
	}
	assert_int_equal(bs_purpose_to_pb(BS_PURPOSE_ENVELOPE), BOLTSEAL__V1__KEY_PURPOSE__ENVELOPE);
	assert_int_equal(bs_purpose_from_name("none"), BS_PURPOSE_NONE);
	assert_int_equal(bs_purpose_from_name("Generic"), BS_PURPOSE_NONE);
	assert_string_equal(bs_purpose_name((enum bs_purpose)42), "none");
	assert_int_equal(bs_purpose_from_pb(BOLTSEAL__V1__KEY_PURPOSE__PURPOSE_UNSPECIFIED, &p),
	    BS_ERR_INVALID);
	assert_int_equal(bs_purpose_from_pb(9, &p), BS_ERR_INVALID);
	/* CA keys: ECDSA P-256 only */
	assert_int_equal(bs_alg_fits_purpose(BS_ALG_ECDSA_P256_SHA256, BS_PURPOSE_CA), 1);
	assert_int_equal(bs_alg_fits_purpose(BS_ALG_ED25519, BS_PURPOSE_CA), 0);
	assert_int_equal(bs_alg_fits_purpose(BS_ALG_RSA_3072_PSS_SHA256, BS_PURPOSE_CA), 0);
	assert_int_equal(bs_alg_fits_purpose(BS_ALG_AES_256_GCM, BS_PURPOSE_CA), 0);
}

static void
test_sig_format_and_state(void **state)
{
	enum bs_sig_format f = BS_SIGFMT_RAW;

	(void)state;
	assert_int_equal(bs_sig_format_from_pb(BOLTSEAL__V1__SIGNATURE_FORMAT__SIGNATURE_FORMAT_DEFAULT,
	    &f), 0);
	assert_int_equal(f, BS_SIGFMT_DER);
	assert_int_equal(bs_sig_format_from_pb(BOLTSEAL__V1__SIGNATURE_FORMAT__RAW, &f), 0);
	assert_int_equal(f, BS_SIGFMT_RAW);
	assert_int_equal(bs_sig_format_from_pb(BOLTSEAL__V1__SIGNATURE_FORMAT__DER, &f), 0);
	assert_int_equal(f, BS_SIGFMT_DER);
	assert_int_equal(bs_sig_format_from_pb(3, &f), BS_ERR_INVALID);
	assert_int_equal(bs_sig_format_to_pb(BS_SIGFMT_RAW), BOLTSEAL__V1__SIGNATURE_FORMAT__RAW);
	assert_string_equal(bs_sig_format_name(BS_SIGFMT_DER), "der");
	assert_int_equal(bs_key_state_to_pb(BS_KEY_DISABLED), BOLTSEAL__V1__KEY_STATE__DISABLED);
	assert_int_equal(bs_key_state_to_pb(BS_KEY_STATE_NONE),
	    BOLTSEAL__V1__KEY_STATE__KEY_STATE_UNSPECIFIED);
	assert_string_equal(bs_key_state_name(BS_KEY_ENABLED), "enabled");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg),
		cmocka_unit_test(test_purpose),
		cmocka_unit_test(test_sig_format_and_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
