/*
 * cmd_checkpoint.c - `boltseal checkpoint ...`: transparency-log
 * checkpoints (boltseal.v1.CheckpointService; docs/checkpoints.md).
 * `checkpoint register ORIGIN --key-name K` registers a log,
 * `checkpoint sign --origin O --size N --root HEX [--proof FILE|-]
 * [--ext LINE]...` asks for its next checkpoint's signed note (printed as
 * it is, ready for the log's clients), `checkpoint status ORIGIN` shows the
 * last one and the verifier key; `checkpoint cosign NOTE|-` asks this
 * service, as a witness, to cosign a log's signed checkpoint (printing the
 * cosignature line).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/v1/checkpoints.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "common/hex.h"

#define HASH_LEN 32
#define PROOF_MAX 64                  /* the server's limit */
#define PROOF_FILE_MAX (PROOF_MAX * 70 + 1024)
#define EXT_MAX 16
#define NOTE_FILE_MAX 16384           /* the server's limit on a note to cosign */

/* A 64-hex-digit hash into out; 0 or a usage error (printed). */
static int
hash_arg(struct cli_ctx *x, const char *what, const char *hex, uint8_t out[HASH_LEN])
{
	if (strlen(hex) != 2 * HASH_LEN || bs_hex_decode(hex, strlen(hex), out, HASH_LEN, 0) != 0)
		return out_usage(x->cmd, "%s: '%s' is not 64 hex digits (a SHA-256 hash)", what, hex);
	return 0;
}

/*
 * The proof file: one hash per line in hex (blank lines and surrounding
 * spaces ignored), or "-" for standard input. *out malloc'd; items[0..*n)
 * (PROOF_MAX + 1 of them) point into it, ready for the request.
 */
static int
read_proof(struct cli_ctx *x, const char *path, uint8_t (**out)[HASH_LEN],
    ProtobufCBinaryData *items, size_t *n)
{
	uint8_t *buf = NULL, (*hashes)[HASH_LEN] = NULL;
	char *line, *save = NULL;
	size_t len, k = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (input_read_file(x->cmd, path, PROOF_FILE_MAX, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if (memchr(buf, '\0', len) != NULL) {
		ret = out_usage(x->cmd, "--proof %s: not a text file", path);
		goto out;
	}
	if ((hashes = calloc(PROOF_MAX + 1, HASH_LEN)) == NULL) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_CONN;
		goto out;
	}
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		line = input_trim(line);
		if (*line == '\0')
			continue;
		if (k == PROOF_MAX + 1) {
			ret = out_usage(x->cmd, "--proof %s: more than %d hashes", path, PROOF_MAX);
			goto out;
		}
		if ((ret = hash_arg(x, "--proof", line, hashes[k])) != 0)
			goto out;
		k++;
	}
	for (size_t i = 0; i < k; i++) {
		items[i].data = hashes[i];
		items[i].len = HASH_LEN;
	}
	*out = hashes;
	*n = k;
	hashes = NULL;
out:
	free(hashes);
	free(buf);
	return ret;
}

static void
print_status(struct cli_ctx *x, const Boltseal__V1__LogStatus *s)
{
	char root[BS_HEX_LEN(HASH_LEN)] = "";
	struct out_json j;

	if (s->root_hash.len == HASH_LEN)
		bs_hex_encode(s->root_hash.data, HASH_LEN, root);
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "origin", s->origin);
		out_json_str(&j, "key", s->key_name);
		out_json_str(&j, "verifier_key", s->verifier_key);
		if (s->log_verifier_key[0] != '\0') {
			out_json_str(&j, "log_verifier_key", s->log_verifier_key);
			out_json_str(&j, "witness_name", s->witness_name);
		}
		out_json_uint(&j, "size", s->size);
		out_json_str(&j, "root", root);
		out_json_int(&j, "registered_at", s->registered_at);
		out_json_int(&j, "updated_at", s->updated_at);
		out_json_close(&j);
		return;
	}
	printf("origin:        ");
	out_safe(stdout, s->origin);
	printf("\nkey:           ");
	out_safe(stdout, s->key_name);
	printf("\nverifier key:  ");
	out_safe(stdout, s->verifier_key);
	if (s->log_verifier_key[0] != '\0') {
		printf("\nwitnessed log: ");
		out_safe(stdout, s->log_verifier_key);
		printf(" (cosigned as ");
		out_safe(stdout, s->witness_name);
		putchar(')');
	}
	if (s->size == 0)
		printf("\nsigned:        nothing yet\n");
	else
		printf("\nsigned:        size %" PRIu64 ", root %s\n", s->size, root);
}

/* Calls path (answered with a LogStatus) and prints the status. */
static int
call_status(struct cli_ctx *x, const char *path, const ProtobufCMessage *req)
{
	Boltseal__V1__LogStatus *resp = NULL;
	int ret;

	if ((ret = call_unary(x, path, req, &boltseal__v1__log_status__descriptor,
	    (ProtobufCMessage **)&resp)) != 0)
		return ret;
	print_status(x, resp);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* `checkpoint register ORIGIN --key-name KEY` */
static int
cmd_register(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RegisterLogRequest req = BOLTSEAL__V1__REGISTER_LOG_REQUEST__INIT;
	const char *key = args_get(a, "key-name"), *vkey = args_get(a, "log-vkey");
	const char *wname = args_get(a, "witness-name");

	if (key == NULL || key[0] == '\0')
		return out_usage(x->cmd, "--key-name KEY is required (an Ed25519 HSM key of purpose "
		    "checkpoint)");
	if ((vkey == NULL) != (wname == NULL))
		return out_usage(x->cmd, "--log-vkey and --witness-name go together (a log this "
		    "service witnesses)");
	req.origin = (char *)a->pos[0];
	req.key_name = (char *)key;
	req.log_verifier_key = (char *)(vkey != NULL ? vkey : "");
	req.witness_name = (char *)(wname != NULL ? wname : "");
	return call_status(x, "/boltseal.v1.CheckpointService/RegisterLog", &req.base);
}

/* `checkpoint status ORIGIN` */
static int
cmd_status(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetLogStatusRequest req = BOLTSEAL__V1__GET_LOG_STATUS_REQUEST__INIT;

	req.origin = (char *)a->pos[0];
	return call_status(x, "/boltseal.v1.CheckpointService/GetLogStatus", &req.base);
}

/* `checkpoint sign --origin O --size N --root HEX [--proof FILE|-] [--ext LINE]...` */
static int
cmd_sign(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SignCheckpointRequest req = BOLTSEAL__V1__SIGN_CHECKPOINT_REQUEST__INIT;
	Boltseal__V1__SignCheckpointResponse *resp = NULL;
	const char *origin = args_get(a, "origin"), *size = args_get(a, "size");
	const char *root = args_get(a, "root"), *proof = args_get(a, "proof");
	uint8_t rh[HASH_LEN], (*hashes)[HASH_LEN] = NULL;
	ProtobufCBinaryData items[PROOF_MAX + 1];
	char *exts[EXT_MAX + 1];
	unsigned long n = 0;
	size_t nproof = 0, next = 0;
	struct out_json j;
	int ret;

	if (origin == NULL || size == NULL || root == NULL)
		return out_usage(x->cmd, "--origin, --size and --root are required");
	if (args_uint(size, 1, ULONG_MAX, &n) != 0)
		return out_usage(x->cmd, "--size: '%s' is not a tree size (1 or more)", size);
	if ((ret = hash_arg(x, "--root", root, rh)) != 0)
		return ret;
	/* --ext is the table's one ARGS_MULTI option */
	for (size_t i = 0; i < a->nmulti; i++) {
		if (next == EXT_MAX)
			return out_usage(x->cmd, "--ext: at most %d lines", EXT_MAX);
		exts[next++] = (char *)a->multi[i];
	}
	if (proof != NULL && (ret = read_proof(x, proof, &hashes, items, &nproof)) != 0)
		return ret;
	req.origin = (char *)origin;
	req.size = n;
	req.root_hash.data = rh;
	req.root_hash.len = HASH_LEN;
	req.n_consistency_proof = nproof;
	req.consistency_proof = items;
	req.n_extensions = next;
	req.extensions = exts;
	ret = call_unary(x, "/boltseal.v1.CheckpointService/SignCheckpoint", &req.base,
	    &boltseal__v1__sign_checkpoint_response__descriptor, (ProtobufCMessage **)&resp);
	free(hashes);
	if (ret != 0)
		return ret;
	if (x->json) {
		char *note = malloc(resp->note.len + 1);

		if (note == NULL) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		memcpy(note, resp->note.data, resp->note.len);
		note[resp->note.len] = '\0';
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "note", note);
		out_json_uint(&j, "size", resp->size);
		out_json_uint(&j, "previous_size", resp->previous_size);
		out_json_close(&j);
		free(note);
	} else {
		/* the note exactly as signed (UTF-8 text ending in "\n"), for the log to publish */
		fwrite(resp->note.data, 1, resp->note.len, stdout);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* `checkpoint cosign NOTE|- [--proof FILE]`: the log's signed note from a file or stdin */
static int
cmd_cosign(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CosignCheckpointRequest req = BOLTSEAL__V1__COSIGN_CHECKPOINT_REQUEST__INIT;
	Boltseal__V1__CosignCheckpointResponse *resp = NULL;
	const char *proof = args_get(a, "proof");
	uint8_t *note = NULL, (*hashes)[HASH_LEN] = NULL;
	ProtobufCBinaryData items[PROOF_MAX + 1];
	size_t len = 0, nproof = 0;
	struct out_json j;
	int ret;

	if (input_read_file(x->cmd, a->pos[0], NOTE_FILE_MAX, &note, &len) != 0)
		return CLI_EXIT_USAGE;
	if (proof != NULL && (ret = read_proof(x, proof, &hashes, items, &nproof)) != 0)
		goto out;
	req.note.data = note;
	req.note.len = len;
	req.n_consistency_proof = nproof;
	req.consistency_proof = items;
	if ((ret = call_unary(x, "/boltseal.v1.CheckpointService/CosignCheckpoint", &req.base,
	    &boltseal__v1__cosign_checkpoint_response__descriptor, (ProtobufCMessage **)&resp)) != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "cosignature", resp->cosignature);
		out_json_uint(&j, "size", resp->size);
		out_json_uint(&j, "previous_size", resp->previous_size);
		out_json_uint(&j, "timestamp", resp->timestamp);
		out_json_close(&j);
	} else {
		/* the line to add to the note's signatures, as signed (UTF-8: the em dash) */
		fputs(resp->cosignature, stdout);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(hashes);
	free(note);
	return ret;
}

static const struct args_opt register_opts[] = {
	{ "key-name", 0, ARGS_VALUE }, { "log-vkey", 0, ARGS_VALUE },
	{ "witness-name", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct args_opt cosign_opts[] = {
	{ "proof", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct args_opt status_opts[] = {
	{ NULL, 0, ARGS_FLAG } };

static const struct args_opt sign_opts[] = {
	{ "origin", 0, ARGS_VALUE }, { "size", 0, ARGS_VALUE }, { "root", 0, ARGS_VALUE },
	{ "proof", 0, ARGS_VALUE }, { "ext", 0, ARGS_MULTI },
	{ NULL, 0, ARGS_FLAG } };

static const struct cli_cmd checkpoint_cmds[] = {
	{ .name = "register", .run = cmd_register,
	  .summary = "register a transparency log and the HSM key that signs its checkpoints",
	  .usage = "ORIGIN --key-name KEY [--log-vkey VKEY --witness-name NAME]",
	  .spec = { register_opts, 1, 1 } },
	{ .name = "sign", .run = cmd_sign,
	  .summary = "sign the log's next checkpoint (proved to extend the last); prints the note",
	  .usage = "--origin O --size N --root HEX [--proof FILE|-] [--ext LINE]...",
	  .spec = { sign_opts, 0, 0 } },
	{ .name = "cosign", .run = cmd_cosign,
	  .summary = "as the log's witness, cosign its signed checkpoint (proved to extend the last)",
	  .usage = "NOTE|- [--proof FILE|-]",
	  .spec = { cosign_opts, 1, 1 } },
	{ .name = "status", .run = cmd_status,
	  .summary = "the log's last signed checkpoint and its verifier key",
	  .usage = "ORIGIN",
	  .spec = { status_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_checkpoint_cmd = {
	.name = "checkpoint",
	.summary = "transparency-log checkpoints, signed only when append-only (CheckpointService)",
	.usage = "COMMAND [ARGS]",
	.sub = checkpoint_cmds,
};
