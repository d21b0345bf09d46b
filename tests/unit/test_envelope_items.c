/*
 * test_envelope_items.c - unit tests of EnvelopeService's item pieces
 * (src/services/envelope/envelope_items.c): the encryption context's checks
 * and their messages, its canonical form and JSON, the policy attributes of
 * an item (context entries, the vehicle's status and attributes), and a
 * blob sealed with OpenSSL's AES-256-GCM in place of the HSM: it decodes
 * (formats/envblob.h) and opens with the AAD docs/envelope.md gives.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "services/envelope/envelope_int.h"

static void
test_context_checks(void **state)
{
	static const char *const keys[] = { "vehicle_id", "stream", "day" };
	static const char *const values[] = { "TRUCK-0042", "can", "2026-12-02" };
	static const char *const dup_keys[] = { "a", "a" };
	static const char *const ctl[] = { "a\tb" };
	const char *many_k[ENVCTX_MAX + 1], *many_v[ENVCTX_MAX + 1];
	char names[ENVCTX_MAX + 1][8], longk[ENVCTX_KEY_MAX + 2], longv[ENVCTX_VALUE_MAX + 2];
	const char *lk[1] = { longk }, *lv[1] = { longv }, *one[1] = { "k" };
	char msg[ENV_MSG_MAX];
	struct env_ctx c;
	char *json;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(env_ctx_set(&c, 3, keys, values, msg), 0);
	assert_int_equal(c.n, 3);
	/* u16 count, then sorted entries: day, stream, vehicle_id */
	assert_int_equal(c.canon_len, 2 + (2 + 3 + 2 + 10) + (2 + 6 + 2 + 3) + (2 + 10 + 2 + 10));
	assert_memory_equal(c.canon, "\x00\x03\x00\x03" "day", 7);
	json = env_ctx_json(&c);
	assert_string_equal(json, "{\"day\":\"2026-12-02\",\"stream\":\"can\",\"vehicle_id\":\"TRUCK-0042\"}");
	free(json);

	assert_int_equal(env_ctx_set(&c, 0, NULL, NULL, msg), -1);
	assert_string_equal(msg, "the encryption context is required (1..32 entries)");
	for (int i = 0; i <= ENVCTX_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		many_k[i] = names[i];
		many_v[i] = "v";
	}
	assert_int_equal(env_ctx_set(&c, ENVCTX_MAX + 1, many_k, many_v, msg), -1);
	assert_string_equal(msg, "the encryption context has 33 entries; at most 32");
	assert_int_equal(env_ctx_set(&c, ENVCTX_MAX, many_k, many_v, msg), 0);
	memset(longk, 'k', sizeof(longk) - 1);
	longk[sizeof(longk) - 1] = '\0';
	assert_int_equal(env_ctx_set(&c, 1, lk, one, msg), -1);
	assert_string_equal(msg, "encryption context: keys are 1..64 bytes");
	memset(longv, 'v', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_int_equal(env_ctx_set(&c, 1, one, lv, msg), -1);
	assert_non_null(strstr(msg, "must be 1..256 bytes"));
	assert_int_equal(env_ctx_set(&c, 2, dup_keys, values, msg), -1);
	assert_non_null(strstr(msg, "each key once"));
	assert_int_equal(env_ctx_set(&c, 1, one, ctl, msg), -1);
	assert_non_null(strstr(msg, "without control characters"));
	assert_int_equal(c.n, 0);
	env_ctx_clear(&c);
}

static void
test_item_attrs(void **state)
{
	static const char *const keys[] = { "vehicle_id", "stream" };
	static const char *const values[] = { "TRUCK-0042", "can" };
	struct policy_attr attrs[ENV_ATTRS_MAX];
	char names[ENV_ATTRS_MAX][ENV_ATTR_NAME_MAX], msg[ENV_MSG_MAX];
	struct env_item it;
	size_t n;

	(void)state;
	memset(&it, 0, sizeof(it));
	assert_int_equal(env_ctx_set(&it.ctx, 2, keys, values, msg), 0);
	n = env_item_attrs(&it, &it.ctx, attrs, names, ENV_ATTRS_MAX);
	assert_int_equal(n, 2);
	assert_string_equal(attrs[0].name, "request.context.vehicle_id");
	assert_string_equal(attrs[0].value, "TRUCK-0042");
	assert_string_equal(attrs[1].name, "request.context.stream");
	it.veh = json_pack("{s:s, s:{s:s, s:s}}", "status", "suspended", "attributes", "region",
	    "eu-west-1", "carrier_id", "acme");
	assert_non_null(it.veh);
	n = env_item_attrs(&it, &it.ctx, attrs, names, ENV_ATTRS_MAX);
	assert_int_equal(n, 5);
	assert_string_equal(attrs[2].name, "vehicle.status");
	assert_string_equal(attrs[2].value, "suspended");
	assert_string_equal(attrs[3].name, "vehicle.region");
	assert_string_equal(attrs[3].value, "eu-west-1");
	assert_string_equal(attrs[4].name, "vehicle.carrier_id");
	/* never past max */
	assert_int_equal(env_item_attrs(&it, &it.ctx, attrs, names, 3), 3);
	json_decref(it.veh);
	env_ctx_clear(&it.ctx);
}

/* AES-256-GCM with OpenSSL, standing in for the HSM: ct || tag into out. */
static void
gcm_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
    const uint8_t *pt, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int l;

	assert_non_null(x);
	assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(x, NULL, &l, aad, (int)aad_len), 1);
	assert_int_equal(EVP_EncryptUpdate(x, out, &l, pt, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(x, out + l, &l), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, out + len), 1);
	EVP_CIPHER_CTX_free(x);
}

static void
test_seal_prepare_and_finish(void **state)
{
	static const char *const keys[] = { "vehicle_id" };
	static const char *const values[] = { "TRUCK-0042" };
	static const uint8_t kek[32] = { 1, 2, 3 }, hsm_id[KEYOPS_ID_LEN] = { 9 };
	uint8_t dk[32], sealed[32 + 16], nonce1[12], *aad = NULL;
	struct envblob d;
	struct env_item it, it2;
	char msg[ENV_MSG_MAX];
	size_t aad_len;

	(void)state;
	memset(dk, 0x77, sizeof(dk));
	memset(&it, 0, sizeof(it));
	memset(&it2, 0, sizeof(it2));
	assert_int_equal(env_ctx_set(&it.ctx, 1, keys, values, msg), 0);
	assert_int_equal(env_item_seal_prepare(&it, "tlm-kek", 3, hsm_id, sizeof(dk), &it.ctx), 0);
	assert_string_equal(it.kek, "tlm-kek");
	assert_int_equal(it.kek_version, 3);
	assert_memory_equal(it.hsm_id, hsm_id, KEYOPS_ID_LEN);
	memcpy(nonce1, it.blob.nonce, 12);
	gcm_seal(kek, it.blob.nonce, it.aad, it.aad_len, dk, sizeof(dk), sealed);
	assert_int_equal(env_item_seal_finish(&it, sealed, sizeof(sealed)), 0);
	assert_int_equal(env_item_seal_finish(&it, sealed, sizeof(sealed) - 1), BS_ERR_INTERNAL);
	assert_int_equal(env_item_seal_finish(&it, sealed, sizeof(sealed)), 0);

	/* the blob decodes, and its AAD recomputed from it is the one sealed with */
	assert_int_equal(envblob_decode(it.out, it.out_len, &d), 0);
	assert_string_equal(d.kek, "tlm-kek");
	assert_int_equal(d.kek_version, 3);
	assert_int_equal(d.ct_len, 32);
	assert_memory_equal(d.ct, sealed, 32);
	assert_memory_equal(d.tag, sealed + 32, 16);
	assert_int_equal(envblob_aad(&d, it.ctx.canon, it.ctx.canon_len, &aad, &aad_len), 0);
	assert_int_equal(aad_len, it.aad_len);
	assert_memory_equal(aad, it.aad, aad_len);
	free(aad);

	/* a fresh nonce per encryption */
	assert_int_equal(env_item_seal_prepare(&it2, "tlm-kek", 3, hsm_id, 32, &it.ctx), 0);
	assert_memory_not_equal(it2.blob.nonce, nonce1, 12);
	free(it2.aad);
	free(it.aad);
	free(it.out);
	env_ctx_clear(&it.ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_context_checks),
		cmocka_unit_test(test_item_attrs),
		cmocka_unit_test(test_seal_prepare_and_finish),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
