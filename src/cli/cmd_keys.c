/*
 * cmd_keys.c - `boltseal keys ...`: one command per RPC of
 * boltseal.v1.KeyService (create, get, list, rotate, public-key, sign,
 * verify, sign-batch), each also reachable by its top-level spelling of
 * before the `keys` group (create-key, get-key, list-keys, rotate-key,
 * get-public-key, sign, verify, sign-batch). See docs/cli.md.
 */
#define _GNU_SOURCE  /* memmem */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "boltseal/v1/keys.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "rpc/rpc_status.h"
#include "types/types.h"

#define KS "/boltseal.v1.KeyService/"
#define MAX_LIST_PAGES 100000

/*
 * Reads the input of sign/verify: exactly one of --message, --message-file,
 * --digest. On success *is_digest says which oneof field to set and *data
 * is malloc'd (the caller frees).
 */
static int
input_get(struct cli_ctx *x, const struct args *a, uint8_t **data, size_t *len,
    int *is_digest)
{
	const char *m = args_get(a, "message"), *mf = args_get(a, "message-file");
	const char *d = args_get(a, "digest");
	int n = (m != NULL) + (mf != NULL) + (d != NULL);
	uint8_t *buf;

	if (n != 1)
		return out_usage(x->cmd, "give exactly one of --message, --message-file, --digest");
	*is_digest = 0;
	if (m != NULL) {
		*len = strlen(m);
		if ((buf = malloc(*len + 1)) == NULL)
			return CLI_EXIT_CONN;
		memcpy(buf, m, *len + 1);
		*data = buf;
		return 0;
	}
	if (mf != NULL)
		return input_read_file(x->cmd, mf, INPUT_MAX_FILE, data, len);
	if ((buf = malloc(32)) == NULL)
		return CLI_EXIT_CONN;
	if (input_hex_digest(d, strlen(d), buf) != 0) {
		free(buf);
		return out_usage(x->cmd, "--digest must be 64 hex digits (a SHA-256 digest)");
	}
	*data = buf;
	*len = 32;
	*is_digest = 1;
	return 0;
}

/* --version N (0 when absent). */
static int
version_arg(struct cli_ctx *x, const char *v, uint32_t *out)
{
	unsigned long n;

	if (v == NULL) {
		*out = 0;
		return 0;
	}
	if (args_uint(v, 1, UINT32_MAX, &n) != 0)
		return out_usage(x->cmd, "--version must be a positive integer");
	*out = (uint32_t)n;
	return 0;
}

/* The protobuf value of --raw: RAW if given, else the request's default. */
static int
sig_format_arg(const struct args *a, int dflt)
{
	return args_get(a, "raw") != NULL ? bs_sig_format_to_pb(BS_SIGFMT_RAW) : dflt;
}

static int
cmd_create(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateKeyRequest req = BOLTSEAL__V1__CREATE_KEY_REQUEST__INIT;
	Boltseal__V1__CreateKeyResponse *resp = NULL;
	const char *alg = args_get(a, "alg"), *purpose = args_get(a, "purpose");
	enum bs_alg al;
	enum bs_purpose pu = BS_PURPOSE_GENERIC;
	int ret;

	if (alg == NULL)
		return out_usage(x->cmd, "--alg is required (ecdsa-p256-sha256, ed25519, "
		    "rsa-3072-pss-sha256; aes-256-gcm, hmac-sha256 for envelope)");
	if ((al = bs_alg_from_name(alg)) == BS_ALG_NONE)
		return out_usage(x->cmd, "unknown algorithm '%s' (ecdsa-p256-sha256, ed25519, "
		    "rsa-3072-pss-sha256; aes-256-gcm, hmac-sha256 for envelope)", alg);
	if (purpose != NULL && (pu = bs_purpose_from_name(purpose)) == BS_PURPOSE_NONE)
		return out_usage(x->cmd, "unknown purpose '%s' (generic, ota, checkpoint, "
		    "command, envelope, audit, admin, ca)", purpose);
	req.name = (char *)a->pos[0];
	req.algorithm = bs_alg_to_pb(al);
	req.purpose = bs_purpose_to_pb(pu);
	ret = call_unary(x, KS "CreateKey", &req.base,
	    &boltseal__v1__create_key_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	out_key(x->json, resp->key);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_get(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetKeyRequest req = BOLTSEAL__V1__GET_KEY_REQUEST__INIT;
	Boltseal__V1__GetKeyResponse *resp = NULL;
	int ret;

	req.name = (char *)a->pos[0];
	ret = call_unary(x, KS "GetKey", &req.base, &boltseal__v1__get_key_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	out_key(x->json, resp->key);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_rotate(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RotateKeyRequest req = BOLTSEAL__V1__ROTATE_KEY_REQUEST__INIT;
	Boltseal__V1__RotateKeyResponse *resp = NULL;
	struct out_json j;
	int ret;

	req.name = (char *)a->pos[0];
	ret = call_unary(x, KS "RotateKey", &req.base,
	    &boltseal__v1__rotate_key_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_key(&j, "key", resp->key);
		out_json_uint(&j, "new_version", resp->new_version);
		out_json_close(&j);
	} else {
		printf("new version:     %u\n", resp->new_version);
		out_key_text(resp->key);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* Prints the keys of every page: a JSON object, or a table. */
static void
print_key_pages(int json, Boltseal__V1__ListKeysResponse *const *pages, size_t npages)
{
	const Boltseal__V1__ListKeysResponse *last = pages[npages - 1];
	struct out_json j;
	size_t i, k;

	if (json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_array(&j, "keys");
		for (i = 0; i < npages; i++)
			for (k = 0; k < pages[i]->n_keys; k++)
				out_json_key(&j, NULL, pages[i]->keys[k]);
		out_json_close(&j);
		out_json_str(&j, "next_page_token", last->next_page_token);
		out_json_close(&j);
		return;
	}
	printf("%-32s %-20s %-10s %-8s %s\n", "NAME", "ALGORITHM", "PURPOSE", "STATE", "VERSION");
	for (i = 0; i < npages; i++)
		for (k = 0; k < pages[i]->n_keys; k++) {
			const Boltseal__V1__Key *key = pages[i]->keys[k];
			size_t w = strlen(key->name);

			out_safe(stdout, key->name);
			printf("%*s %-20s %-10s %-8s %u\n", w < 32 ? (int)(32 - w) : 0, "",
			    out_alg(key->algorithm), out_purpose(key->purpose),
			    out_state(key->state), key->primary_version);
		}
	if (last->next_page_token[0] != '\0') {
		fputs("next page token: ", stdout);
		out_safe(stdout, last->next_page_token);
		putchar('\n');
	}
}

static int
cmd_list(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ListKeysRequest req = BOLTSEAL__V1__LIST_KEYS_REQUEST__INIT;
	Boltseal__V1__ListKeysResponse **pages = NULL, **np, *resp;
	const char *ps = args_get(a, "page-size"), *pt = args_get(a, "page-token");
	int all = args_get(a, "all") != NULL, ret = 0;
	size_t npages = 0, i;
	unsigned long n;

	if (ps != NULL) {
		if (args_uint(ps, 1, 1000, &n) != 0)
			return out_usage(x->cmd, "--page-size must be 1-1000");
		req.page_size = (uint32_t)n;
	}
	req.page_token = (char *)(pt != NULL ? pt : "");
	for (;;) {
		resp = NULL;
		ret = call_unary(x, KS "ListKeys", &req.base,
		    &boltseal__v1__list_keys_response__descriptor, (ProtobufCMessage **)&resp);
		if (ret != 0)
			goto out;
		if ((np = realloc(pages, (npages + 1) * sizeof(*np))) == NULL) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			out_err(x->cmd, "out of memory");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		pages = np;
		pages[npages++] = resp;
		if (!all || resp->next_page_token[0] == '\0')
			break;
		if (strcmp(resp->next_page_token, req.page_token) == 0 ||
		    npages >= MAX_LIST_PAGES) {
			out_err(x->cmd, "server keeps returning pages; giving up");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		req.page_token = resp->next_page_token;
	}
	print_key_pages(x->json, pages, npages);
out:
	for (i = 0; i < npages; i++)
		protobuf_c_message_free_unpacked(&pages[i]->base, NULL);
	free(pages);
	return ret;
}

static int
cmd_public_key(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetPublicKeyRequest req = BOLTSEAL__V1__GET_PUBLIC_KEY_REQUEST__INIT;
	Boltseal__V1__GetPublicKeyResponse *resp = NULL;
	const char *der_out = args_get(a, "der-out");
	struct out_json j;
	size_t pl;
	int ret;

	if ((ret = version_arg(x, args_get(a, "version"), &req.version)) != 0)
		return ret;
	req.name = (char *)a->pos[0];
	ret = call_unary(x, KS "GetPublicKey", &req.base,
	    &boltseal__v1__get_public_key_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (der_out != NULL &&
	    (ret = out_write_file(x->cmd, der_out, resp->der.data, resp->der.len)) != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "name", resp->name);
		out_json_uint(&j, "version", resp->version);
		out_json_str(&j, "algorithm", out_alg(resp->algorithm));
		out_json_str(&j, "pem", resp->pem);
		out_json_b64(&j, "der", resp->der.data, resp->der.len);
		out_json_close(&j);
	} else if (der_out == NULL || strcmp(der_out, "-") != 0) {
		pl = strlen(resp->pem);
		fwrite(resp->pem, 1, pl, stdout);
		if (pl > 0 && resp->pem[pl - 1] != '\n')
			putchar('\n');
	}
out:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* Prints the signature of Sign: JSON, or base64 and key, key_version, algorithm lines. */
static void
print_signature(int json, const Boltseal__V1__SignResponse *resp)
{
	struct out_json j;
	char *b64;

	if (json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key", resp->key_name);
		out_json_uint(&j, "key_version", resp->key_version);
		out_json_str(&j, "algorithm", out_alg(resp->algorithm));
		out_json_b64(&j, "signature", resp->signature.data, resp->signature.len);
		out_json_close(&j);
		return;
	}
	b64 = out_b64(resp->signature.data, resp->signature.len);
	printf("%s\n", b64);
	free(b64);
	fputs("key: ", stdout);
	out_safe(stdout, resp->key_name);
	printf("\nkey_version: %u\nalgorithm: %s\n", resp->key_version, out_alg(resp->algorithm));
}

static int
cmd_sign(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SignRequest req;
	Boltseal__V1__SignResponse *resp = NULL;
	const char *out = args_get(a, "out");
	uint8_t *data = NULL;
	size_t len = 0;
	int is_digest, ret;

	boltseal__v1__sign_request__init(&req);
	if ((ret = input_get(x, a, &data, &len, &is_digest)) != 0)
		return ret;
	req.key_name = (char *)a->pos[0];
	if (is_digest) {
		req.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
		req.digest.data = data;
		req.digest.len = len;
	} else {
		req.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_MESSAGE;
		req.message.data = data;
		req.message.len = len;
	}
	req.signature_format = sig_format_arg(a, req.signature_format);
	ret = call_unary(x, KS "Sign", &req.base, &boltseal__v1__sign_response__descriptor,
	    (ProtobufCMessage **)&resp);
	free(data);
	if (ret != 0)
		return ret;
	if (out != NULL &&
	    (ret = out_write_file(x->cmd, out, resp->signature.data, resp->signature.len)) != 0)
		goto done;
	if (x->json || out == NULL || strcmp(out, "-") != 0)
		print_signature(x->json, resp);
done:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* Reads a SubjectPublicKeyInfo from a PEM or DER file into DER bytes. */
static int
pubkey_load(struct cli_ctx *x, const char *path, uint8_t **der, size_t *derlen)
{
	uint8_t *buf = NULL, *out = NULL, *p;
	const uint8_t *cp;
	size_t len;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int n, ret = CLI_EXIT_USAGE;

	if (input_read_file(x->cmd, path, INPUT_MAX_FILE, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if (len > INT_MAX)
		goto bad;
	if (len >= 10 && memmem(buf, len, "-----BEGIN", 10) != NULL) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
			goto bad;
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	} else {
		cp = buf;
		pk = d2i_PUBKEY(NULL, &cp, (long)len);
		if (pk != NULL && cp != buf + len) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	if (pk == NULL)
		goto bad;
	if ((n = i2d_PUBKEY(pk, NULL)) <= 0 || (out = malloc((size_t)n)) == NULL)
		goto bad;
	p = out;
	if (i2d_PUBKEY(pk, &p) != n)
		goto bad;
	*der = out;
	*derlen = (size_t)n;
	out = NULL;
	ret = 0;
	goto done;
bad:
	out_err(x->cmd, "%s: not a PEM or DER public key (SubjectPublicKeyInfo)", path);
done:
	free(out);
	free(buf);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return ret;
}

static int
cmd_verify(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__VerifyRequest req;
	Boltseal__V1__VerifyResponse *resp = NULL;
	const char *pkf = args_get(a, "public-key-file"), *sig = args_get(a, "signature");
	const char *sigf = args_get(a, "signature-file");
	uint8_t *data = NULL, *sigbuf = NULL, *der = NULL;
	size_t len = 0, siglen = 0, derlen = 0;
	struct out_json j;
	int is_digest, ret;

	boltseal__v1__verify_request__init(&req);
	if ((a->npos == 1) == (pkf != NULL))
		return out_usage(x->cmd, "give a key NAME or --public-key-file, not both");
	if ((sig != NULL) == (sigf != NULL))
		return out_usage(x->cmd, "give exactly one of --signature, --signature-file");
	if ((ret = version_arg(x, args_get(a, "version"), &req.key_version)) != 0)
		return ret;
	if (pkf != NULL && req.key_version != 0)
		return out_usage(x->cmd, "--version applies to catalog keys only");
	if (sig != NULL) {
		if (input_b64_decode(sig, strlen(sig), &sigbuf, &siglen) != 0)
			return out_usage(x->cmd, "--signature is not valid base64");
	} else if (input_read_file(x->cmd, sigf, INPUT_MAX_FILE, &sigbuf, &siglen) != 0) {
		return CLI_EXIT_USAGE;
	}
	if ((ret = input_get(x, a, &data, &len, &is_digest)) != 0)
		goto out;
	if (pkf != NULL) {
		if ((ret = pubkey_load(x, pkf, &der, &derlen)) != 0)
			goto out;
		req.key_case = BOLTSEAL__V1__VERIFY_REQUEST__KEY_PUBLIC_KEY_DER;
		req.public_key_der.data = der;
		req.public_key_der.len = derlen;
	} else {
		req.key_case = BOLTSEAL__V1__VERIFY_REQUEST__KEY_KEY_NAME;
		req.key_name = (char *)a->pos[0];
	}
	if (is_digest) {
		req.input_case = BOLTSEAL__V1__VERIFY_REQUEST__INPUT_DIGEST;
		req.digest.data = data;
		req.digest.len = len;
	} else {
		req.input_case = BOLTSEAL__V1__VERIFY_REQUEST__INPUT_MESSAGE;
		req.message.data = data;
		req.message.len = len;
	}
	req.signature.data = sigbuf;
	req.signature.len = siglen;
	req.signature_format = sig_format_arg(a, req.signature_format);
	ret = call_unary(x, KS "Verify", &req.base, &boltseal__v1__verify_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "valid", resp->valid);
		out_json_uint(&j, "key_version", resp->key_version);
		out_json_close(&j);
	} else if (resp->valid && resp->key_version != 0) {
		printf("valid (key version %u)\n", resp->key_version);
	} else {
		printf("%s\n", resp->valid ? "valid" : "invalid");
	}
	ret = resp->valid ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(data);
	free(sigbuf);
	free(der);
	return ret;
}

/* The items of a SignBatch request and the buffers behind them. */
struct batch {
	Boltseal__V1__SignBatchItem *items;
	Boltseal__V1__SignBatchItem **itemp;
	uint8_t *digests;     /* 32 bytes per item (--digests-file) */
	uint8_t **msgs;       /* one file per item (--message-file) */
	size_t n;
};

static void
batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; b->msgs != NULL && i < b->n; i++)
		free(b->msgs[i]);
	free(b->msgs);
	free(b->items);
	free(b->itemp);
	free(b->digests);
	memset(b, 0, sizeof(*b));
}

/* Allocates room for cap items (and cap messages if msgs). Returns 0 or CLI_EXIT_CONN. */
static int
batch_alloc(struct cli_ctx *x, struct batch *b, size_t cap, int msgs)
{
	if ((msgs && (b->msgs = calloc(cap, sizeof(*b->msgs))) == NULL) ||
	    (!msgs && (b->digests = malloc(cap * 32)) == NULL) ||
	    (b->items = calloc(cap, sizeof(*b->items))) == NULL ||
	    (b->itemp = calloc(cap, sizeof(*b->itemp))) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	return 0;
}

/* Items from a file of 64-hex-digit digests, one per line ('#' comments). */
static int
batch_digests(struct cli_ctx *x, const char *df, struct batch *b)
{
	uint8_t *dbuf = NULL;
	size_t dlen, cap;
	char *cur, *p;
	int ret, lineno = 0;

	if ((ret = input_read_file(x->cmd, df, INPUT_MAX_FILE, &dbuf, &dlen)) != 0)
		return ret;
	ret = CLI_EXIT_USAGE;
	if (memchr(dbuf, '\0', dlen) != NULL) {
		out_err(x->cmd, "%s: not a text file", df);
		goto out;
	}
	cap = dlen / 64 + 1;
	if ((ret = batch_alloc(x, b, cap, 0)) != 0)
		goto out;
	ret = CLI_EXIT_USAGE;
	cur = (char *)dbuf;
	while ((p = input_next_line(&cur, &lineno)) != NULL) {
		if (b->n >= cap || input_hex_digest(p, strlen(p), b->digests + 32 * b->n) != 0) {
			out_err(x->cmd, "%s:%d: not a 64-hex-digit SHA-256 digest", df, lineno);
			goto out;
		}
		boltseal__v1__sign_batch_item__init(&b->items[b->n]);
		b->items[b->n].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
		b->items[b->n].digest.data = b->digests + 32 * b->n;
		b->items[b->n].digest.len = 32;
		b->itemp[b->n] = &b->items[b->n];
		b->n++;
	}
	if (b->n == 0) {
		out_err(x->cmd, "%s: no digests", df);
		goto out;
	}
	ret = 0;
out:
	free(dbuf);
	return ret;
}

/* Items from the --message-file arguments, one message per file. */
static int
batch_messages(struct cli_ctx *x, const struct args *a, struct batch *b)
{
	size_t i, len;
	int ret;

	if ((ret = batch_alloc(x, b, a->nmulti, 1)) != 0)
		return ret;
	b->n = a->nmulti;
	for (i = 0; i < b->n; i++) {
		if ((ret = input_read_file(x->cmd, a->multi[i], INPUT_MAX_FILE, &b->msgs[i],
		    &len)) != 0)
			return ret;
		boltseal__v1__sign_batch_item__init(&b->items[i]);
		b->items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_MESSAGE;
		b->items[i].message.data = b->msgs[i];
		b->items[i].message.len = len;
		b->itemp[i] = &b->items[i];
	}
	return 0;
}

/*
 * Prints the results of SignBatch (failed items also on stderr). Returns
 * CLI_EXIT_OK, or CLI_EXIT_STATUS if an item failed.
 */
static int
print_batch(struct cli_ctx *x, const Boltseal__V1__SignBatchResponse *resp)
{
	struct out_json j;
	char *b64;
	size_t i;
	int failed = 0;

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key", resp->key_name);
		out_json_uint(&j, "key_version", resp->key_version);
		out_json_str(&j, "algorithm", out_alg(resp->algorithm));
		out_json_array(&j, "results");
	} else {
		fputs("key: ", stdout);
		out_safe(stdout, resp->key_name);
		printf("\nkey_version: %u\nalgorithm: %s\n", resp->key_version,
		    out_alg(resp->algorithm));
	}
	for (i = 0; i < resp->n_results; i++) {
		const Boltseal__V1__SignBatchResult *r = resp->results[i];
		const char *st = grpc_status_name((int)r->status_code);

		if (r->status_code != 0) {
			failed++;
			out_status(x->cmd, (long)i, (int)r->status_code, r->error_message);
		}
		if (x->json) {
			out_json_object(&j, NULL);
			out_json_uint(&j, "index", i);
			out_json_str(&j, "status", st);
			out_json_uint(&j, "status_code", r->status_code);
			out_json_b64(&j, "signature", r->signature.data, r->signature.len);
			out_json_str(&j, "error_message", r->error_message);
			out_json_close(&j);
		} else if (r->status_code == 0) {
			b64 = out_b64(r->signature.data, r->signature.len);
			printf("%zu OK %s\n", i, b64);
			free(b64);
		} else {
			printf("%zu %s ", i, st);
			out_safe(stdout, r->error_message);
			putchar('\n');
		}
	}
	if (x->json) {
		out_json_close(&j);
		out_json_close(&j);
	}
	return failed ? CLI_EXIT_STATUS : CLI_EXIT_OK;
}

static int
cmd_sign_batch(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SignBatchRequest req = BOLTSEAL__V1__SIGN_BATCH_REQUEST__INIT;
	Boltseal__V1__SignBatchResponse *resp = NULL;
	const char *df = args_get(a, "digests-file");
	struct batch b;
	int ret;

	memset(&b, 0, sizeof(b));
	if ((df != NULL) == (a->nmulti > 0))
		return out_usage(x->cmd, "give --digests-file or one or more --message-file");
	ret = df != NULL ? batch_digests(x, df, &b) : batch_messages(x, a, &b);
	if (ret != 0)
		goto out;
	req.key_name = (char *)a->pos[0];
	req.n_items = b.n;
	req.items = b.itemp;
	req.signature_format = sig_format_arg(a, req.signature_format);
	ret = call_unary(x, KS "SignBatch", &req.base,
	    &boltseal__v1__sign_batch_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (resp->n_results != b.n) {
		out_err(x->cmd, "server returned %zu results for %zu items", resp->n_results, b.n);
		ret = CLI_EXIT_CONN;
		goto out;
	}
	ret = print_batch(x, resp);
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	batch_free(&b);
	return ret;
}

/* ---- the table ------------------------------------------------------------------- */

#define INPUT_OPTS \
	{ "message", 0, ARGS_VALUE }, { "message-file", 0, ARGS_VALUE }, \
	{ "digest", 0, ARGS_VALUE }, { "raw", 0, ARGS_FLAG }

static const struct args_opt create_opts[] = {
	{ "alg", 0, ARGS_VALUE }, { "purpose", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt list_opts[] = {
	{ "page-size", 0, ARGS_VALUE }, { "page-token", 0, ARGS_VALUE }, { "all", 0, ARGS_FLAG },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt pub_opts[] = {
	{ "version", 0, ARGS_VALUE }, { "der-out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt sign_opts[] = {
	INPUT_OPTS, { "out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt verify_opts[] = {
	INPUT_OPTS, { "signature", 0, ARGS_VALUE }, { "signature-file", 0, ARGS_VALUE },
	{ "public-key-file", 0, ARGS_VALUE }, { "version", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt batch_opts[] = {
	{ "digests-file", 0, ARGS_VALUE }, { "message-file", 0, ARGS_MULTI },
	{ "raw", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd keys_cmds[] = {
	{ .name = "create", .alias = "create-key", .run = cmd_create,
	  .summary = "create a key in the HSM (CreateKey)",
	  .usage = "NAME --alg ecdsa-p256-sha256|ed25519|rsa-3072-pss-sha256|aes-256-gcm|\n"
	      "hmac-sha256 "
	      "[--purpose generic|ota|checkpoint|command|envelope|audit|admin|ca]",
	  .spec = { create_opts, 1, 1 } },
	{ .name = "get", .alias = "get-key", .run = cmd_get,
	  .summary = "print a key and its versions (GetKey)",
	  .usage = "NAME", .spec = { NULL, 1, 1 } },
	{ .name = "list", .alias = "list-keys", .run = cmd_list,
	  .summary = "list keys in name order, one page or --all (ListKeys)",
	  .usage = "[--page-size N] [--page-token T] [--all]", .spec = { list_opts, 0, 0 } },
	{ .name = "rotate", .alias = "rotate-key", .run = cmd_rotate,
	  .summary = "add a key version, which signs from then on (RotateKey)",
	  .usage = "NAME", .spec = { NULL, 1, 1 } },
	{ .name = "public-key", .alias = "get-public-key", .run = cmd_public_key,
	  .summary = "print a public key as PEM, or write it as DER (GetPublicKey)",
	  .usage = "NAME [--version N] [--der-out FILE]", .spec = { pub_opts, 1, 1 } },
	{ .name = "sign", .alias = "sign", .run = cmd_sign,
	  .summary = "sign a message or a SHA-256 digest with the primary version (Sign)",
	  .usage = "NAME (--message STR | --message-file FILE | --digest HEX64)\n"
	      "[--raw] [--out FILE]",
	  .spec = { sign_opts, 1, 1 } },
	{ .name = "verify", .alias = "verify", .run = cmd_verify,
	  .summary = "check a signature on the server; exit 1 if it is invalid (Verify)",
	  .usage = "(NAME [--version N] | --public-key-file FILE)\n"
	      "(--message STR | --message-file FILE | --digest HEX64)\n"
	      "(--signature B64 | --signature-file FILE) [--raw]",
	  .spec = { verify_opts, 0, 1 } },
	{ .name = "sign-batch", .alias = "sign-batch", .run = cmd_sign_batch,
	  .summary = "sign several digests or messages with one key version (SignBatch)",
	  .usage = "NAME (--digests-file FILE | --message-file FILE...) [--raw]",
	  .spec = { batch_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_keys_cmd = {
	.name = "keys",
	.summary = "keys in the HSM: create, rotate, sign, verify (boltseal.v1.KeyService)",
	.usage = "COMMAND [ARGS]",
	.sub = keys_cmds,
};
