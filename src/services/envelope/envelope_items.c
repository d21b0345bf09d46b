/*
 * envelope_items.c - the pieces of an EnvelopeService item: the encryption
 * context checked and made canonical, its policy attributes, and the
 * ciphertext blob's header, additional data and encoding (formats/envblob.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "services/envelope/envelope_int.h"

int
env_ctx_set(struct env_ctx *c, size_t n, const char *const *keys, const char *const *values,
    char msg[ENV_MSG_MAX])
{
	size_t kl, vl;

	env_ctx_clear(c);
	if (n == 0) {
		snprintf(msg, ENV_MSG_MAX, "the encryption context is required (1..%d entries)",
		    ENVCTX_MAX);
		return -1;
	}
	if (n > ENVCTX_MAX) {
		snprintf(msg, ENV_MSG_MAX, "the encryption context has %zu entries; at most %d",
		    n, ENVCTX_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		kl = strlen(keys[i]);
		vl = strlen(values[i]);
		if (kl == 0 || kl > ENVCTX_KEY_MAX) {
			snprintf(msg, ENV_MSG_MAX, "encryption context: keys are 1..%d bytes",
			    ENVCTX_KEY_MAX);
			return -1;
		}
		if (vl == 0 || vl > ENVCTX_VALUE_MAX) {
			snprintf(msg, ENV_MSG_MAX, "encryption context: the value of '%.64s' must be "
			    "1..%d bytes", keys[i], ENVCTX_VALUE_MAX);
			return -1;
		}
		c->e[i].key = keys[i];
		c->e[i].value = values[i];
	}
	c->n = n;
	if (envctx_canonical(c->e, n, &c->canon, &c->canon_len) != 0) {
		c->n = 0;
		snprintf(msg, ENV_MSG_MAX, "encryption context: keys and values must be UTF-8 "
		    "without control characters, each key once");
		return -1;
	}
	return 0;
}

void
env_ctx_clear(struct env_ctx *c)
{
	free(c->canon);
	memset(c, 0, sizeof(*c));
}

char *
env_ctx_json(const struct env_ctx *c)
{
	json_t *o = json_object();
	char *s = NULL;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		if (json_object_set_new(o, c->e[i].key, json_string(c->e[i].value)) != 0)
			goto out;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(o);
	return s;
}

size_t
env_item_attrs(const struct env_item *it, const struct env_ctx *ctx, struct policy_attr *attrs,
    char names[][ENV_ATTR_NAME_MAX], size_t max)
{
	const char *name;
	json_t *val;
	size_t n = 0;

	for (size_t i = 0; i < ctx->n && n < max; i++, n++) {
		snprintf(names[n], ENV_ATTR_NAME_MAX, "request.context.%s", ctx->e[i].key);
		attrs[n] = (struct policy_attr){ names[n], ctx->e[i].value };
	}
	if (it->veh == NULL)
		return n;
	if (n < max) {
		attrs[n] = (struct policy_attr){ "vehicle.status",
		    vehicle_status_name(vehicle_status_of(it->veh)) };
		n++;
	}
	json_object_foreach(json_object_get(it->veh, "attributes"), name, val) {
		if (n >= max)
			break;
		snprintf(names[n], ENV_ATTR_NAME_MAX, "vehicle.%s", name);
		attrs[n] = (struct policy_attr){ names[n], json_string_value(val) };
		n++;
	}
	return n;
}

int
env_item_seal_prepare(struct env_item *it, const char *kek, uint32_t version,
    const uint8_t hsm_id[KEYOPS_ID_LEN], size_t len, const struct env_ctx *ctx)
{
	memset(&it->blob, 0, sizeof(it->blob));
	snprintf(it->blob.kek, sizeof(it->blob.kek), "%s", kek);
	it->blob.kek_version = version;
	it->blob.ct_len = len;
	snprintf(it->kek, sizeof(it->kek), "%s", kek);
	it->kek_version = version;
	memcpy(it->hsm_id, hsm_id, KEYOPS_ID_LEN);
	/*
	 * A random 96-bit nonce per encryption (NIST SP 800-38D 8.2.2): at
	 * most 2^32 encryptions per KEK version keep the collision risk
	 * negligible; rotate well before (docs/envelope.md).
	 */
	if (RAND_bytes(it->blob.nonce, sizeof(it->blob.nonce)) != 1)
		return BS_ERR_CRYPTO;
	free(it->aad);
	it->aad = NULL;
	return envblob_aad(&it->blob, ctx->canon, ctx->canon_len, &it->aad, &it->aad_len);
}

int
env_item_seal_finish(struct env_item *it, const uint8_t *ct_tag, size_t len)
{
	if (len != it->blob.ct_len + ENVBLOB_TAG_LEN)
		return BS_ERR_INTERNAL;
	it->blob.ct = ct_tag;
	memcpy(it->blob.tag, ct_tag + it->blob.ct_len, ENVBLOB_TAG_LEN);
	free(it->out);
	it->out = NULL;
	return envblob_encode(&it->blob, &it->out, &it->out_len);
}

void
env_items_free(struct env_item *items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++) {
		struct env_item *it = &items[i];

		env_ctx_clear(&it->ctx);
		json_decref(it->veh);
		free(it->aad);
		if (it->plain != NULL)
			OPENSSL_clear_free(it->plain, it->plain_len);
		free(it->out);
	}
	free(items);
}
