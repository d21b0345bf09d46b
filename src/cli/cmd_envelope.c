/*
 * cmd_envelope.c - `boltseal envelope ...`: envelope encryption
 * (boltseal.v1.EnvelopeService; docs/envelope.md). Every command that
 * encrypts or decrypts takes the encryption context as repeated
 * `--context NAME=VALUE` options.
 *   envelope encrypt --key K --context N=V... [--out FILE] FILE|-
 *       a payload of at most 4 KiB under the KEK; the blob to --out or stdout
 *   envelope decrypt --context N=V... [--key K] [--out FILE] BLOB|-
 *       the plaintext of a blob (a payload or a data key)
 *   envelope data-key --key K --context N=V... [--no-plaintext] [--out FILE]
 *       a fresh data key: its blob (to --out, or printed in base64) and,
 *       unless --no-plaintext, the key itself in base64
 *   envelope reencrypt --context N=V... [--to-key K] [--out FILE] BLOB|-
 *       the blob under the newest version of its key, or of --to-key
 *   envelope tokenize --key K --namespace NS [--key-version N] [FILE|-]
 *       one token per line for each line (a value) of the input
 *   envelope set-min-version --key K N
 * Blobs are binary files; --json prints base64 instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "boltseal/v1/envelope.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "common/b64.h"

#define CTX_MAX 32
#define BLOB_MAX 8192
#define PAYLOAD_MAX 4096
#define TOKENIZE_INPUT_MAX (1u << 20)
#define TOKENIZE_VALUES_MAX 1000
#define ES "/boltseal.v1.EnvelopeService/"

/* The --context options, split at their first '=' (copies: the strings are cut). */
struct ctx_args {
	char *buf[CTX_MAX];
	const char *key[CTX_MAX];
	const char *value[CTX_MAX];
	size_t n;
};

static void
ctx_free(struct ctx_args *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->buf[i]);
	c->n = 0;
}

static int
ctx_parse(struct cli_ctx *x, const struct args *a, struct ctx_args *c)
{
	memset(c, 0, sizeof(*c));
	if (a->nmulti == 0)
		return out_usage(x->cmd, "--context NAME=VALUE is required (the encryption context, "
		    "the same to decrypt as to encrypt)");
	if (a->nmulti > CTX_MAX)
		return out_usage(x->cmd, "--context: at most %d entries", CTX_MAX);
	for (size_t i = 0; i < a->nmulti; i++) {
		char *eq;

		if ((c->buf[i] = strdup(a->multi[i])) == NULL) {
			ctx_free(c);
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		c->n = i + 1;
		if ((eq = strchr(c->buf[i], '=')) == NULL || eq == c->buf[i] || eq[1] == '\0') {
			ctx_free(c);
			return out_usage(x->cmd, "--context '%s': NAME=VALUE, both non-empty",
			    a->multi[i]);
		}
		*eq = '\0';
		c->key[i] = c->buf[i];
		c->value[i] = eq + 1;
	}
	return 0;
}

/*
 * The map entries of a request type T (its generated ContextEntry struct,
 * init function fn) from c: ents and ptrs of CTX_MAX each.
 */
#define CTX_FILL(c, ents, ptrs, fn) do {				\
	for (size_t i_ = 0; i_ < (c)->n; i_++) {			\
		fn(&(ents)[i_]);					\
		(ents)[i_].key = (char *)(c)->key[i_];			\
		(ents)[i_].value = (char *)(c)->value[i_];		\
		(ptrs)[i_] = &(ents)[i_];				\
	}								\
} while (0)

/* The --context options and the blob file (a->pos[0], "-": stdin); both freed on error. */
static int
blob_input(struct cli_ctx *x, const struct args *a, struct ctx_args *c, uint8_t **blob,
    size_t *len)
{
	int ret;

	if ((ret = ctx_parse(x, a, c)) != 0)
		return ret;
	if (input_read_file(x->cmd, a->pos[0], BLOB_MAX, blob, len) != 0) {
		ctx_free(c);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int
key_required(struct cli_ctx *x, const char *key)
{
	if (key == NULL)
		return out_usage(x->cmd, "--key NAME is required (a key of purpose envelope)");
	return 0;
}

/* Writes data to --out, or stdout; with --json, as base64 under name. */
static int
emit_bytes(struct cli_ctx *x, const struct args *a, const char *name, const uint8_t *data,
    size_t len, const char *key_name, uint32_t version)
{
	const char *out = args_get(a, "out");
	struct out_json j;

	if (out != NULL && out_write_file(x->cmd, out, data, len) != 0)
		return CLI_EXIT_USAGE;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		if (out == NULL)
			out_json_b64(&j, name, data, len);
		out_json_str(&j, "key_name", key_name);
		out_json_uint(&j, "key_version", version);
		out_json_close(&j);
	} else if (out == NULL) {
		fwrite(data, 1, len, stdout);
	}
	return 0;
}

static int
cmd_encrypt(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__EncryptRequest req = BOLTSEAL__V1__ENCRYPT_REQUEST__INIT;
	Boltseal__V1__EncryptRequest__ContextEntry ents[CTX_MAX], *ptrs[CTX_MAX];
	Boltseal__V1__EncryptResponse *resp = NULL;
	const char *key = args_get(a, "key");
	struct ctx_args c;
	uint8_t *pt = NULL;
	size_t len = 0;
	int ret;

	if ((ret = key_required(x, key)) != 0 || (ret = ctx_parse(x, a, &c)) != 0)
		return ret;
	if (input_read_file(x->cmd, a->pos[0], PAYLOAD_MAX, &pt, &len) != 0) {
		ctx_free(&c);
		return CLI_EXIT_USAGE;
	}
	CTX_FILL(&c, ents, ptrs, boltseal__v1__encrypt_request__context_entry__init);
	req.key_name = (char *)key;
	req.plaintext.data = pt;
	req.plaintext.len = len;
	req.n_context = c.n;
	req.context = ptrs;
	ret = call_unary(x, ES "Encrypt", &req.base, &boltseal__v1__encrypt_response__descriptor,
	    (ProtobufCMessage **)&resp);
	OPENSSL_clear_free(pt, len + 1);
	ctx_free(&c);
	if (ret != 0)
		return ret;
	ret = emit_bytes(x, a, "ciphertext_blob", resp->ciphertext_blob.data,
	    resp->ciphertext_blob.len, resp->key_name, resp->key_version);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_decrypt(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__DecryptRequest req = BOLTSEAL__V1__DECRYPT_REQUEST__INIT;
	Boltseal__V1__DecryptRequest__ContextEntry ents[CTX_MAX], *ptrs[CTX_MAX];
	Boltseal__V1__DecryptResponse *resp = NULL;
	const char *key = args_get(a, "key");
	struct ctx_args c;
	uint8_t *blob = NULL;
	size_t len = 0;
	int ret;

	if ((ret = blob_input(x, a, &c, &blob, &len)) != 0)
		return ret;
	CTX_FILL(&c, ents, ptrs, boltseal__v1__decrypt_request__context_entry__init);
	req.ciphertext_blob.data = blob;
	req.ciphertext_blob.len = len;
	req.key_name = (char *)(key != NULL ? key : "");
	req.n_context = c.n;
	req.context = ptrs;
	ret = call_unary(x, ES "Decrypt", &req.base, &boltseal__v1__decrypt_response__descriptor,
	    (ProtobufCMessage **)&resp);
	free(blob);
	ctx_free(&c);
	if (ret != 0)
		return ret;
	ret = emit_bytes(x, a, "plaintext", resp->plaintext.data, resp->plaintext.len,
	    resp->key_name, resp->key_version);
	OPENSSL_cleanse(resp->plaintext.data, resp->plaintext.len);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_data_key(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GenerateDataKeyRequest req = BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__INIT;
	Boltseal__V1__GenerateDataKeyRequest__ContextEntry ents[CTX_MAX], *ptrs[CTX_MAX];
	Boltseal__V1__GenerateDataKeyResponse *resp = NULL;
	const char *key = args_get(a, "key"), *out = args_get(a, "out");
	int nopt = args_get(a, "no-plaintext") != NULL;
	struct ctx_args c;
	struct out_json j;
	char *b64;
	int ret;

	if ((ret = key_required(x, key)) != 0 || (ret = ctx_parse(x, a, &c)) != 0)
		return ret;
	CTX_FILL(&c, ents, ptrs, boltseal__v1__generate_data_key_request__context_entry__init);
	req.key_name = (char *)key;
	req.n_context = c.n;
	req.context = ptrs;
	ret = call_unary(x, nopt ? ES "GenerateDataKeyWithoutPlaintext" : ES "GenerateDataKey",
	    &req.base, &boltseal__v1__generate_data_key_response__descriptor,
	    (ProtobufCMessage **)&resp);
	ctx_free(&c);
	if (ret != 0)
		return ret;
	if (out != NULL && out_write_file(x->cmd, out, resp->ciphertext_blob.data,
	    resp->ciphertext_blob.len) != 0) {
		ret = CLI_EXIT_USAGE;
		goto done;
	}
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key_name", resp->key_name);
		out_json_uint(&j, "key_version", resp->key_version);
		if (out == NULL)
			out_json_b64(&j, "ciphertext_blob", resp->ciphertext_blob.data,
			    resp->ciphertext_blob.len);
		if (!nopt)
			out_json_b64(&j, "plaintext", resp->plaintext.data, resp->plaintext.len);
		out_json_close(&j);
		goto done;
	}
	printf("key_name: %s\nkey_version: %u\n", resp->key_name, resp->key_version);
	if ((b64 = malloc(BS_B64_ENCODED_LEN(resp->ciphertext_blob.len > resp->plaintext.len ?
	    resp->ciphertext_blob.len : resp->plaintext.len) + 1)) == NULL) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_CONN;
		goto done;
	}
	if (out == NULL) {
		bs_b64_encode(resp->ciphertext_blob.data, resp->ciphertext_blob.len, b64);
		printf("ciphertext_blob: %s\n", b64);
	}
	if (!nopt) {
		bs_b64_encode(resp->plaintext.data, resp->plaintext.len, b64);
		printf("plaintext: %s\n", b64);
		OPENSSL_cleanse(b64, strlen(b64));
	}
	free(b64);
done:
	OPENSSL_cleanse(resp->plaintext.data, resp->plaintext.len);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_reencrypt(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ReEncryptRequest req = BOLTSEAL__V1__RE_ENCRYPT_REQUEST__INIT;
	Boltseal__V1__ReEncryptRequest__SourceContextEntry ents[CTX_MAX], *ptrs[CTX_MAX];
	Boltseal__V1__ReEncryptResponse *resp = NULL;
	const char *to = args_get(a, "to-key");
	struct ctx_args c;
	uint8_t *blob = NULL;
	size_t len = 0;
	int ret;

	if ((ret = blob_input(x, a, &c, &blob, &len)) != 0)
		return ret;
	CTX_FILL(&c, ents, ptrs, boltseal__v1__re_encrypt_request__source_context_entry__init);
	req.ciphertext_blob.data = blob;
	req.ciphertext_blob.len = len;
	req.n_source_context = c.n;
	req.source_context = ptrs;
	req.destination_key_name = (char *)(to != NULL ? to : "");
	ret = call_unary(x, ES "ReEncrypt", &req.base, &boltseal__v1__re_encrypt_response__descriptor,
	    (ProtobufCMessage **)&resp);
	free(blob);
	ctx_free(&c);
	if (ret != 0)
		return ret;
	if (!x->json && args_get(a, "out") != NULL)
		fprintf(stderr, "%s: %s v%u -> %s v%u\n", x->cmd, resp->source_key_name,
		    resp->source_key_version, resp->key_name, resp->key_version);
	ret = emit_bytes(x, a, "ciphertext_blob", resp->ciphertext_blob.data,
	    resp->ciphertext_blob.len, resp->key_name, resp->key_version);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_tokenize(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__TokenizeRequest req = BOLTSEAL__V1__TOKENIZE_REQUEST__INIT;
	Boltseal__V1__TokenizeResponse *resp = NULL;
	const char *key = args_get(a, "key"), *ns = args_get(a, "namespace");
	const char *kv = args_get(a, "key-version");
	char *values[TOKENIZE_VALUES_MAX], *line, *save = NULL;
	unsigned long ver = 0;
	uint8_t *in = NULL;
	size_t len = 0, n = 0;
	struct out_json j;
	int ret;

	if ((ret = key_required(x, key)) != 0)
		return ret;
	if (ns == NULL)
		return out_usage(x->cmd, "--namespace NS is required (e.g. driver-id)");
	if (kv != NULL && args_uint(kv, 1, UINT32_MAX, &ver) != 0)
		return out_usage(x->cmd, "--key-version: '%s' is not a version (1 or more)", kv);
	if (input_read_file(x->cmd, a->npos > 0 ? a->pos[0] : "-", TOKENIZE_INPUT_MAX, &in,
	    &len) != 0)
		return CLI_EXIT_USAGE;
	if (memchr(in, '\0', len) != NULL) {
		ret = out_usage(x->cmd, "the input is not text: one value per line");
		goto out;
	}
	for (line = strtok_r((char *)in, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (n == TOKENIZE_VALUES_MAX) {
			ret = out_usage(x->cmd, "at most %d values per call", TOKENIZE_VALUES_MAX);
			goto out;
		}
		values[n++] = line;
	}
	if (n == 0) {
		ret = out_usage(x->cmd, "no values: give one per line");
		goto out;
	}
	req.key_name = (char *)key;
	req.namespace_ = (char *)ns;
	req.values = values;
	req.n_values = n;
	req.key_version = (uint32_t)ver;
	if ((ret = call_unary(x, ES "Tokenize", &req.base,
	    &boltseal__v1__tokenize_response__descriptor, (ProtobufCMessage **)&resp)) != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key_name", resp->key_name);
		out_json_uint(&j, "key_version", resp->key_version);
		out_json_array(&j, "tokens");
		for (size_t i = 0; i < resp->n_tokens; i++)
			out_json_str(&j, NULL, resp->tokens[i]);
		out_json_close(&j);
		out_json_close(&j);
	} else {
		for (size_t i = 0; i < resp->n_tokens; i++)
			printf("%s\n", resp->tokens[i]);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	if (in != NULL)
		OPENSSL_clear_free(in, len + 1);
	return ret;
}

static int
cmd_set_min_version(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetMinDecryptionVersionRequest req =
	    BOLTSEAL__V1__SET_MIN_DECRYPTION_VERSION_REQUEST__INIT;
	Boltseal__V1__SetMinDecryptionVersionResponse *resp = NULL;
	const char *key = args_get(a, "key");
	unsigned long v;
	struct out_json j;
	int ret;

	if ((ret = key_required(x, key)) != 0)
		return ret;
	if (args_uint(a->pos[0], 1, UINT32_MAX, &v) != 0)
		return out_usage(x->cmd, "'%s' is not a key version (1 or more)", a->pos[0]);
	req.key_name = (char *)key;
	req.min_decryption_version = (uint32_t)v;
	if ((ret = call_unary(x, ES "SetMinDecryptionVersion", &req.base,
	    &boltseal__v1__set_min_decryption_version_response__descriptor,
	    (ProtobufCMessage **)&resp)) != 0)
		return ret;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key_name", resp->key_name);
		out_json_uint(&j, "min_decryption_version", resp->min_decryption_version);
		out_json_close(&j);
	} else {
		printf("%s: versions below %u no longer decrypt\n", resp->key_name,
		    resp->min_decryption_version);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static const struct args_opt encrypt_opts[] = {
	{ "key", 0, ARGS_VALUE }, { "context", 0, ARGS_MULTI }, { "out", 'o', ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt data_key_opts[] = {
	{ "key", 0, ARGS_VALUE }, { "context", 0, ARGS_MULTI }, { "out", 'o', ARGS_VALUE },
	{ "no-plaintext", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt reencrypt_opts[] = {
	{ "context", 0, ARGS_MULTI }, { "to-key", 0, ARGS_VALUE }, { "out", 'o', ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt tokenize_opts[] = {
	{ "key", 0, ARGS_VALUE }, { "namespace", 0, ARGS_VALUE }, { "key-version", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt min_opts[] = {
	{ "key", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd envelope_cmds[] = {
	{ .name = "encrypt", .run = cmd_encrypt,
	  .summary = "encrypt a payload (at most 4 KiB) under a KEK; writes the blob",
	  .usage = "--key K --context NAME=VALUE... [--out FILE] FILE|-",
	  .spec = { encrypt_opts, 1, 1 } },
	{ .name = "decrypt", .run = cmd_decrypt,
	  .summary = "decrypt a blob given its exact encryption context; writes the plaintext",
	  .usage = "--context NAME=VALUE... [--key K] [--out FILE] BLOB|-",
	  .spec = { encrypt_opts, 1, 1 } },
	{ .name = "data-key", .run = cmd_data_key,
	  .summary = "a fresh 256-bit data key: its blob and (unless --no-plaintext) the key",
	  .usage = "--key K --context NAME=VALUE... [--no-plaintext] [--out BLOBFILE]",
	  .spec = { data_key_opts, 0, 0 } },
	{ .name = "reencrypt", .run = cmd_reencrypt,
	  .summary = "re-encrypt a blob under its key's newest version (or --to-key)",
	  .usage = "--context NAME=VALUE... [--to-key K] [--out FILE] BLOB|-",
	  .spec = { reencrypt_opts, 1, 1 } },
	{ .name = "tokenize", .run = cmd_tokenize,
	  .summary = "keyed tokens (HMAC in the HSM) of identifiers, one per input line",
	  .usage = "--key K --namespace NS [--key-version N] [FILE|-]",
	  .spec = { tokenize_opts, 0, 1 } },
	{ .name = "set-min-version", .run = cmd_set_min_version,
	  .summary = "raise a KEK's minimum decryption version (never lowered)",
	  .usage = "--key K VERSION",
	  .spec = { min_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_envelope_cmd = {
	.name = "envelope",
	.summary = "envelope encryption: data keys, blobs bound to a context, tokens (EnvelopeService)",
	.usage = "COMMAND [ARGS]",
	.sub = envelope_cmds,
};
