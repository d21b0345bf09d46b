/*
 * cmd_telemetry.c - the `boltseal telemetry` commands (docs/telemetry.md,
 * docs/cli.md "Telemetry"):
 *   telemetry sign --signing-key FILE --vehicle ID --seq N --start-ms T
 *       --end-ms T [--samples FILE] [--count N] [--out FILE]
 *                      a vehicle's signed batch, made locally with the client
 *                      library's bs_tlm_sign (no server)
 *   telemetry verify TOKEN... [--samples FILE]
 *                      the server's verdicts (VerifyTelemetryBatch, or
 *                      VerifyTelemetryBatches for more than one token)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "boltseal/telemetry.h"
#include "boltseal/v1/telemetry.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"

#define TS "/boltseal.v1.TelemetryService/"
#define SAMPLES_MAX (4u * 1024 * 1024)
#define KEY_PEM_MAX (16u * 1024)
#define TIME_MAX_MS 253402300799999ULL

/* A decimal in [lo, hi] into *out; 0, or the usage error printed. */
static int
u64_opt(struct cli_ctx *x, const struct args *a, const char *name, unsigned long long lo,
    unsigned long long hi, int required, unsigned long long *out)
{
	const char *v = args_get(a, name);
	char *end = NULL;

	*out = 0;
	if (v == NULL) {
		if (!required)
			return 0;
		return out_usage(x->cmd, "--%s is required", name);
	}
	if (v[0] < '0' || v[0] > '9' || (*out = strtoull(v, &end, 10), *end != '\0') ||
	    *out < lo || *out > hi)
		return out_usage(x->cmd, "--%s must be a number from %llu to %llu", name, lo, hi);
	return 0;
}

static int
cmd_sign(struct cli_ctx *x, const struct args *a)
{
	struct bs_tlm_window w;
	unsigned long long seq, start, end, count;
	const char *keyfile = args_get(a, "signing-key"), *samples = args_get(a, "samples");
	const char *out = args_get(a, "out");
	uint8_t *pem = NULL, *data = NULL, token[BS_TLM_TOKEN_MAX];
	size_t pem_len = 0, len = 0, tlen = 0;
	EVP_PKEY *key = NULL;
	BIO *b = NULL;
	char *b64;
	int ret, rc;

	memset(&w, 0, sizeof(w));
	if (keyfile == NULL || (w.vehicle_id = args_get(a, "vehicle")) == NULL)
		return out_usage(x->cmd, "--signing-key FILE and --vehicle ID are required");
	if ((ret = u64_opt(x, a, "seq", 1, INT64_MAX, 1, &seq)) != 0 ||
	    (ret = u64_opt(x, a, "start-ms", 0, TIME_MAX_MS, 1, &start)) != 0 ||
	    (ret = u64_opt(x, a, "end-ms", 0, TIME_MAX_MS, 1, &end)) != 0 ||
	    (ret = u64_opt(x, a, "count", 0, INT64_MAX, 0, &count)) != 0)
		return ret;
	if (samples != NULL && (ret = input_read_file(x->cmd, samples, SAMPLES_MAX, &data, &len)) != 0)
		return ret;
	SHA256(data != NULL ? data : (const uint8_t *)"", len, w.samples_sha256);
	free(data);
	if ((ret = input_read_file(x->cmd, keyfile, KEY_PEM_MAX, &pem, &pem_len)) != 0)
		return ret;
	if ((b = BIO_new_mem_buf(pem, (int)pem_len)) != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	OPENSSL_cleanse(pem, pem_len);
	free(pem);
	if (key == NULL) {
		out_err(x->cmd, "%s: not a PEM private key", keyfile);
		return CLI_EXIT_USAGE;
	}
	w.seq = seq;
	w.start_ms = (int64_t)start;
	w.end_ms = (int64_t)end;
	w.samples = count;
	rc = bs_tlm_sign(&w, key, token, sizeof(token), &tlen);
	EVP_PKEY_free(key);
	if (rc != BS_TLM_OK) {
		out_err(x->cmd, "cannot sign the batch: %s", bs_tlm_strerror(rc));
		return rc == BS_TLM_ERR_CRYPTO ? CLI_EXIT_CONN : CLI_EXIT_USAGE;
	}
	if (out != NULL)
		return out_write_file(x->cmd, out, token, tlen);
	if ((b64 = out_b64(token, tlen)) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	printf("%s\n", b64);
	free(b64);
	return 0;
}

static const char *
code_name(Boltseal__V1__TelemetryVerdictCode c)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &boltseal__v1__telemetry_verdict_code__descriptor, c);

	return v != NULL ? v->name : "UNKNOWN";
}

static void
print_verdict(struct cli_ctx *x, const Boltseal__V1__TelemetryVerdict *v, struct out_json *j)
{
	if (x->json) {
		out_json_object(j, NULL);
		out_json_str(j, "code", code_name(v->code));
		out_json_str(j, "reason", v->reason);
		out_json_str(j, "vehicle_id", v->vehicle_id);
		out_json_int(j, "seq", (int64_t)v->seq);
		out_json_int(j, "window_start_ms", v->window_start_ms);
		out_json_int(j, "window_end_ms", v->window_end_ms);
		out_json_str(j, "key_id", v->key_id);
		out_json_close(j);
		return;
	}
	printf("%s %s seq %llu", code_name(v->code), v->vehicle_id[0] != '\0' ? v->vehicle_id : "-",
	    (unsigned long long)v->seq);
	if (v->reason[0] != '\0') {
		printf(": ");
		out_safe_text(stdout, v->reason);
	}
	printf("\n");
}

static int
cmd_verify(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__TelemetryBatch *batches = NULL, **bp = NULL;
	Boltseal__V1__TelemetryVerdict *one = NULL;
	Boltseal__V1__VerifyTelemetryBatchesResponse *many = NULL;
	const char *samples = args_get(a, "samples");
	struct out_json j;
	size_t i, n = a->npos, accepted = 0;
	int ret = 0;

	if (samples != NULL && n != 1)
		return out_usage(x->cmd, "--samples goes with one token only");
	if ((batches = calloc(n, sizeof(*batches))) == NULL || (bp = calloc(n, sizeof(*bp))) == NULL) {
		free(batches);
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	for (i = 0; i < n && ret == 0; i++) {
		boltseal__v1__telemetry_batch__init(&batches[i]);
		bp[i] = &batches[i];
		ret = input_read_file(x->cmd, a->pos[i], BS_TLM_TOKEN_MAX * 2, &batches[i].token.data,
		    &batches[i].token.len);
	}
	if (ret == 0 && samples != NULL)
		ret = input_read_file(x->cmd, samples, SAMPLES_MAX, &batches[0].samples.data,
		    &batches[0].samples.len);
	if (ret != 0)
		goto out;
	if (n == 1) {
		Boltseal__V1__VerifyTelemetryBatchRequest req =
		    BOLTSEAL__V1__VERIFY_TELEMETRY_BATCH_REQUEST__INIT;

		req.batch = &batches[0];
		if ((ret = call_unary(x, TS "VerifyTelemetryBatch", &req.base,
		    &boltseal__v1__telemetry_verdict__descriptor, (ProtobufCMessage **)&one)) != 0)
			goto out;
	} else {
		Boltseal__V1__VerifyTelemetryBatchesRequest req =
		    BOLTSEAL__V1__VERIFY_TELEMETRY_BATCHES_REQUEST__INIT;

		req.batches = bp;
		req.n_batches = n;
		if ((ret = call_unary(x, TS "VerifyTelemetryBatches", &req.base,
		    &boltseal__v1__verify_telemetry_batches_response__descriptor,
		    (ProtobufCMessage **)&many)) != 0)
			goto out;
		if (many->n_verdicts != n) {
			out_err(x->cmd, "malformed answer: %zu verdicts for %zu batches",
			    many->n_verdicts, n);
			ret = CLI_EXIT_CONN;
			goto out;
		}
	}
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_array(&j, "verdicts");
	}
	for (i = 0; i < n; i++) {
		const Boltseal__V1__TelemetryVerdict *v = one != NULL ? one : many->verdicts[i];

		print_verdict(x, v, &j);
		accepted += v->code == BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__ACCEPTED;
	}
	if (x->json) {
		out_json_close(&j);
		out_json_close(&j);
	}
	ret = accepted == n ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
out:
	for (i = 0; i < n; i++) {
		free(batches[i].token.data);
		free(batches[i].samples.data);
	}
	free(batches);
	free(bp);
	if (one != NULL)
		protobuf_c_message_free_unpacked(&one->base, NULL);
	if (many != NULL)
		protobuf_c_message_free_unpacked(&many->base, NULL);
	return ret;
}

static const struct args_opt sign_opts[] = {
	{ "signing-key", 0, ARGS_VALUE }, { "vehicle", 0, ARGS_VALUE }, { "seq", 0, ARGS_VALUE },
	{ "start-ms", 0, ARGS_VALUE }, { "end-ms", 0, ARGS_VALUE }, { "samples", 0, ARGS_VALUE },
	{ "count", 0, ARGS_VALUE }, { "out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt verify_opts[] = {
	{ "samples", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd telemetry_cmds[] = {
	{ .name = "sign", .run = cmd_sign,
	  .summary = "a vehicle's signed telemetry batch, made here with the client library "
	      "(bs_tlm_sign); base64 on stdout, or --out FILE",
	  .usage = "--signing-key FILE --vehicle ID --seq N --start-ms T --end-ms T\n"
	      "[--samples FILE] [--count N] [--out FILE]", .spec = { sign_opts, 0, 0 } },
	{ .name = "verify", .run = cmd_verify,
	  .summary = "the server's verdict on each token; exit 1 unless all are accepted "
	      "(VerifyTelemetryBatch, VerifyTelemetryBatches)",
	  .usage = "TOKEN_FILE... [--samples FILE]", .spec = { verify_opts, 1, 1000 } },
	{ .name = NULL },
};

const struct cli_cmd cli_telemetry_cmd = {
	.name = "telemetry",
	.summary = "vehicle-signed telemetry batches: sign (vehicle side), verify "
	    "(boltseal.v1.TelemetryService)",
	.usage = "COMMAND [ARGS]",
	.sub = telemetry_cmds,
};
