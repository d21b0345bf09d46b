/*
 * cmd_commands.c - `boltseal commands ...`: signed cloud-to-vehicle
 * commands. `commands sign` asks boltsealed for a token
 * (boltseal.v1.CommandService/SignCommand: JWS, or with --cose a
 * COSE_Sign1 printed in base64); `commands inspect` asks it which key
 * signed a token and what the registry and the audit log say of it
 * (InspectCommand, forensics); `commands verify` checks a
 * token offline (no server, no connection settings) exactly as a vehicle
 * does, with the client library's vehicle-side API
 * (include/boltseal/command.h) against a pinned public key. Also the CLI's
 * one reader of public-key files (cli_load_spki, shared with
 * cmd_vehicles.c). See docs/cli.md and docs/commands.md.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "boltseal/command.h"
#include "boltseal/v1/commands.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"

#define KEY_FILE_MAX (64u * 1024u)
#define CMD_ARGS_MAX (4u * 1024u)  /* SignCommand's limit on args */
#define VALID_MAX 86400ul          /* the largest commands.max_valid_seconds */

int
cli_load_spki(struct cli_ctx *x, const char *path, uint8_t **der, size_t *derlen)
{
	uint8_t *buf = NULL;
	const unsigned char *p;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	size_t len = 0;
	int n, ret = CLI_EXIT_USAGE;
	char tp[BS_CMD_THUMBPRINT_LEN + 1];

	*der = NULL;
	if (input_read_file(x->cmd, path, KEY_FILE_MAX, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pk == NULL) {
		p = buf;
		pk = d2i_PUBKEY(NULL, &p, (long)len);
	}
	if (pk == NULL) {
		out_usage(x->cmd, "--key %s is not a public key (PEM \"PUBLIC KEY\" or DER)", path);
		goto out;
	}
	if ((n = i2d_PUBKEY(pk, der)) <= 0) {
		out_err(x->cmd, "--key %s: cannot encode the key", path);
		goto out;
	}
	*derlen = (size_t)n;
	if (bs_cmd_key_thumbprint(*der, *derlen, tp) != 0) {
		out_usage(x->cmd, "--key %s is not a P-256 or Ed25519 public key", path);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0) {
		OPENSSL_free(*der);
		*der = NULL;
	}
	EVP_PKEY_free(pk);
	BIO_free(bio);
	free(buf);
	return ret;
}

/* An unsigned option in [lo, hi] into *v (unchanged when absent). 0 or CLI_EXIT_USAGE. */
static int
num_opt(struct cli_ctx *x, const struct args *a, const char *name, unsigned long hi,
    unsigned long *v)
{
	const char *s = args_get(a, name);

	if (s != NULL && args_uint(s, 0, hi, v) != 0)
		return out_usage(x->cmd, "--%s: '%s' is not a number in 0..%lu", name, s, hi);
	return 0;
}

/*
 * args as one line: the JSON text without the whitespace between tokens
 * (it is strict JSON, checked by the verifier), in a new string.
 */
static char *
compact_json(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, o = 0;
	int in_str = 0, esc = 0;

	if (out == NULL) {
		out_err(NULL, "out of memory");
		exit(CLI_EXIT_CONN);
	}
	for (i = 0; i < len; i++) {
		if (in_str) {
			if (esc)
				esc = 0;
			else if (s[i] == '\\')
				esc = 1;
			else if (s[i] == '"')
				in_str = 0;
		} else if (s[i] == '"') {
			in_str = 1;
		} else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			continue;
		}
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

static void
print_claims(struct cli_ctx *x, const struct bs_cmd_claims *c)
{
	char nbf[32], exp[32], iat[32], *args = compact_json(c->args, c->args_len);
	struct out_json j;

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "valid", 1);
		out_json_str(&j, "vehicle", c->sub);
		out_json_str(&j, "command", c->cmd);
		out_json_uint(&j, "seq", c->seq);
		out_json_str(&j, "jti", c->jti);
		out_json_str(&j, "issuer", c->iss);
		out_json_str(&j, "audience", c->aud);
		out_json_int(&j, "iat", c->iat);
		out_json_int(&j, "nbf", c->nbf);
		out_json_int(&j, "exp", c->exp);
		out_json_str(&j, "alg", c->alg);
		out_json_str(&j, "kid", c->kid);
		/* args is strict JSON (checked by the verifier): written as it is, compacted */
		printf(",\"args\":%s", args);
		out_json_close(&j);
		free(args);
		return;
	}
	fmt_time(c->nbf, nbf, sizeof(nbf));
	fmt_time(c->exp, exp, sizeof(exp));
	fmt_time(c->iat, iat, sizeof(iat));
	printf("commands verify: valid\n");
	printf("vehicle:   ");
	out_safe(stdout, c->sub);
	printf("\ncommand:   ");
	out_safe(stdout, c->cmd);
	printf("\nseq:       %" PRIu64 "\njti:       %s\nissuer:    ", c->seq, c->jti);
	out_safe(stdout, c->iss);
	printf("\naudience:  ");
	out_safe(stdout, c->aud);
	printf("\nvalidity:  %s to %s (nbf %" PRId64 ", exp %" PRId64 "), issued %s\n", nbf, exp,
	    c->nbf, c->exp, iat);
	printf("key:       %s (%s)\nargs:      ", c->kid, c->alg);
	out_safe(stdout, args);
	putchar('\n');
	free(args);
}

/*
 * `commands verify TOKEN`: exit 0 valid (the claims printed), 1 refused
 * (the reason on stderr; with --json also {"valid":false,...} on stdout),
 * 2 usage error or unreadable input.
 */
static int
cmd_verify(struct cli_ctx *x, const struct args *a)
{
	const char *tok = a->pos[0], *keyf = args_get(a, "key");
	unsigned long last = 0, skew = 0, now = (unsigned long)time(NULL);
	struct bs_cmd_verify_opts o;
	struct bs_cmd_claims c;
	struct out_json j;
	uint8_t *spki = NULL, *buf = NULL;
	size_t spki_len = 0, len;
	char detail[512];
	int rc, ret;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	o.vehicle_id = args_get(a, "vehicle");
	o.audience = args_get(a, "audience");
	o.issuer = args_get(a, "issuer");
	if (o.vehicle_id == NULL || o.vehicle_id[0] == '\0')
		return out_usage(x->cmd, "--vehicle ID is required (the vehicle the token must be for)");
	if (o.audience == NULL || o.audience[0] == '\0')
		return out_usage(x->cmd, "--audience AUD is required");
	if (keyf == NULL)
		return out_usage(x->cmd, "--key PUBKEY.pem is required (the pinned signing key)");
	if ((ret = num_opt(x, a, "last-seq", ULONG_MAX, &last)) != 0 ||
	    (ret = num_opt(x, a, "skew", BS_CMD_MAX_SKEW, &skew)) != 0 ||
	    (ret = num_opt(x, a, "now", (unsigned long)BS_CMD_MAX_TIME, &now)) != 0)
		return ret;
	o.last_seq = last;
	o.skew = (int64_t)skew;
	o.now = (int64_t)now;
	if (strcmp(tok, "-") == 0) {
		/* from stdin: one token, surrounding whitespace and a final newline ignored */
		if (input_read_file(x->cmd, "-", BS_CMD_MAX_TOKEN + 64, &buf, &len) != 0)
			return CLI_EXIT_USAGE;
		if (memchr(buf, '\0', len) != NULL) {
			ret = out_usage(x->cmd, "the token on standard input contains a NUL byte");
			goto out;
		}
		tok = input_trim((char *)buf);
	}
	if ((ret = cli_load_spki(x, keyf, &spki, &spki_len)) != 0)
		goto out;
	rc = bs_cmd_verify_detail(tok, strlen(tok), spki, spki_len, &o, &c, detail, sizeof(detail));
	if (rc == BS_CMD_OK) {
		print_claims(x, &c);
		ret = CLI_EXIT_OK;
		goto out;
	}
	if (rc == BS_CMD_ERR_ARG || rc == BS_CMD_ERR_KEY || rc == BS_CMD_ERR_NOMEM ||
	    rc == BS_CMD_ERR_CRYPTO) {
		out_err(x->cmd, "cannot verify: %s", detail);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "valid", 0);
		out_json_str(&j, "result", bs_cmd_result_name(rc));
		out_json_str(&j, "error", detail);
		out_json_close(&j);
	}
	out_err(x->cmd, "refused: %s: %s", bs_cmd_result_name(rc), detail);
	ret = CLI_EXIT_NEGATIVE;
out:
	bs_cmd_claims_free(&c);
	OPENSSL_free(spki);
	free(buf);
	return ret;
}

/*
 * The args of `commands sign`: --args JSON, "-" reads it from stdin (a
 * final newline dropped), absent sends none ({} on the server). Sets
 * *out (malloc'd, the caller frees; NULL when absent) and *len. The JSON
 * itself is checked by the server (strict: no floats, no duplicate keys).
 */
static int
sign_args(struct cli_ctx *x, const char *v, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n;

	*out = NULL;
	*len = 0;
	if (v == NULL)
		return 0;
	if (strcmp(v, "-") != 0) {
		n = strlen(v);
		if (n > CMD_ARGS_MAX)
			return out_usage(x->cmd, "--args is larger than %u bytes", CMD_ARGS_MAX);
		if ((buf = malloc(n + 1)) == NULL) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		memcpy(buf, v, n + 1);
		*out = buf;
		*len = n;
		return 0;
	}
	if (input_read_file(x->cmd, "-", CMD_ARGS_MAX + 2, &buf, &n) != 0)
		return CLI_EXIT_USAGE;
	if (memchr(buf, '\0', n) != NULL) {
		free(buf);
		return out_usage(x->cmd, "the --args on standard input contain a NUL byte");
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n > CMD_ARGS_MAX) {
		free(buf);
		return out_usage(x->cmd, "--args is larger than %u bytes", CMD_ARGS_MAX);
	}
	*out = buf;
	*len = n;
	return 0;
}

/*
 * `commands sign VEHICLE COMMAND --key-name KEY [--args JSON|-] [--valid S]`:
 * SignCommand. Prints the token alone on a line (for $(...)), or with
 * --json the token and its metadata.
 */
static int
cmd_sign(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SignCommandRequest req = BOLTSEAL__V1__SIGN_COMMAND_REQUEST__INIT;
	Boltseal__V1__SignCommandResponse *resp = NULL;
	const char *key = args_get(a, "key-name"), *valid = args_get(a, "valid");
	int cose = args_get(a, "cose") != NULL;
	char *b64 = NULL;
	uint8_t *args = NULL;
	size_t args_len = 0;
	unsigned long vs = 0;
	struct out_json j;
	int ret;

	if (key == NULL || key[0] == '\0')
		return out_usage(x->cmd, "--key-name KEY is required (an HSM key of purpose command)");
	if (valid != NULL && args_uint(valid, 1, VALID_MAX, &vs) != 0)
		return out_usage(x->cmd, "--valid: '%s' is not a number of seconds in 1..%lu", valid,
		    VALID_MAX);
	if ((ret = sign_args(x, args_get(a, "args"), &args, &args_len)) != 0)
		return ret;
	req.vehicle_id = (char *)a->pos[0];
	req.command = (char *)a->pos[1];
	req.key_name = (char *)key;
	req.valid_seconds = (uint32_t)vs;
	req.args.data = args;
	req.args.len = args_len;
	req.format = cose ? BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE :
	    BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_JWS;
	ret = call_unary(x, "/boltseal.v1.CommandService/SignCommand", &req.base,
	    &boltseal__v1__sign_command_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		if (cose)
			out_json_b64(&j, "cose", resp->cose.data, resp->cose.len);
		else
			out_json_str(&j, "token", resp->token);
		out_json_uint(&j, "seq", resp->seq);
		out_json_str(&j, "jti", resp->jti);
		out_json_int(&j, "not_before", resp->not_before);
		out_json_int(&j, "expires", resp->expires);
		out_json_str(&j, "kid", resp->kid);
		out_json_uint(&j, "key_version", resp->key_version);
		out_json_close(&j);
	} else if (cose) {
		if ((b64 = out_b64(resp->cose.data, resp->cose.len)) == NULL) {
			out_err(x->cmd, "out of memory");
			ret = CLI_EXIT_CONN;
		} else {
			printf("%s\n", b64);
		}
	} else {
		/* base64url and dots only from a well-behaved server; shown safely all the same */
		out_safe(stdout, resp->token);
		putchar('\n');
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(b64);
	free(args);
	return ret;
}

static const char *
yes_no(int v)
{
	return v ? "yes" : "no";
}

/*
 * `commands inspect TOKEN|-`: InspectCommand. TOKEN is a JWS compact token
 * or the base64 of a COSE_Sign1 (as `commands sign --cose` prints it).
 */
static int
cmd_inspect(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__InspectCommandRequest req = BOLTSEAL__V1__INSPECT_COMMAND_REQUEST__INIT;
	Boltseal__V1__InspectCommandResponse *r = NULL;
	const char *tok = a->pos[0];
	uint8_t *buf = NULL, *cose = NULL;
	size_t len, cose_len = 0;
	char iat[32], exp[32], created[32];
	struct out_json j;
	int ret;

	if (strcmp(tok, "-") == 0) {
		if (input_read_file(x->cmd, "-", 2 * BS_CMD_MAX_TOKEN + 64, &buf, &len) != 0)
			return CLI_EXIT_USAGE;
		if (memchr(buf, '\0', len) != NULL) {
			ret = out_usage(x->cmd, "the token on standard input contains a NUL byte");
			goto out;
		}
		tok = input_trim((char *)buf);
	}
	if (strchr(tok, '.') != NULL) {
		req.token.data = (uint8_t *)(uintptr_t)tok;
		req.token.len = strlen(tok);
	} else if (input_b64_decode(tok, strlen(tok), &cose, &cose_len) == 0) {
		req.token.data = cose;
		req.token.len = cose_len;
	} else {
		ret = out_usage(x->cmd, "TOKEN is neither a JWS compact token nor the base64 of a "
		    "COSE_Sign1");
		goto out;
	}
	ret = call_unary(x, "/boltseal.v1.CommandService/InspectCommand", &req.base,
	    &boltseal__v1__inspect_command_response__descriptor, (ProtobufCMessage **)&r);
	if (ret != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "format", r->format == BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE ?
		    "cose" : "jws");
		out_json_str(&j, "key", r->key_name);
		out_json_uint(&j, "key_version", r->key_version);
		out_json_str(&j, "kid", r->kid);
		out_json_int(&j, "key_created", r->key_created);
		out_json_bool(&j, "key_valid_at_issue", r->key_valid_at_issue);
		out_json_str(&j, "vehicle", r->vehicle_id);
		out_json_str(&j, "command", r->command);
		out_json_uint(&j, "seq", r->seq);
		out_json_str(&j, "jti", r->jti);
		out_json_int(&j, "iat", r->issued_at);
		out_json_int(&j, "nbf", r->not_before);
		out_json_int(&j, "exp", r->expires);
		out_json_uint(&j, "vehicle_version_at_issue", r->vehicle_version_at_issue);
		out_json_str(&j, "vehicle_status_at_issue", r->vehicle_status_at_issue);
		out_json_str(&j, "vehicle_status_now", r->vehicle_status_now);
		out_json_bool(&j, "audit_found", r->audit_found);
		if (r->audit_found)
			out_json_uint(&j, "audit_index", r->audit_index);
		else
			out_json_null(&j, "audit_index");
		out_json_close(&j);
	} else {
		fmt_time(r->issued_at, iat, sizeof(iat));
		fmt_time(r->expires, exp, sizeof(exp));
		fmt_time(r->key_created, created, sizeof(created));
		printf("commands inspect: signed by this service (%s)\nkey:       ",
		    r->format == BOLTSEAL__V1__COMMAND_FORMAT__COMMAND_FORMAT_COSE ? "COSE_Sign1" : "JWS");
		out_safe(stdout, r->key_name);
		printf(" version %u (kid %s), created %s; valid at issue: %s\nvehicle:   ",
		    (unsigned)r->key_version, r->kid, created, yes_no(r->key_valid_at_issue));
		out_safe(stdout, r->vehicle_id);
		printf("\n  at issue: %s\n  now:      %s\ncommand:   ",
		    r->vehicle_version_at_issue == 0 ? "not registered" : r->vehicle_status_at_issue,
		    r->vehicle_status_now[0] != '\0' ? r->vehicle_status_now : "not registered");
		out_safe(stdout, r->command);
		printf("\nseq:       %" PRIu64 "\njti:       %s\nissued:    %s, expires %s\n",
		    r->seq, r->jti, iat, exp);
		if (r->audit_found)
			printf("audit:     record %" PRIu64 " of the log (AuditService."
			    "GetInclusionProof proves it is in a signed checkpoint)\n", r->audit_index);
		else
			printf("audit:     no SignCommand record found for this jti\n");
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
out:
	free(cose);
	free(buf);
	return ret;
}

static const struct args_opt sign_opts[] = {
	{ "key-name", 0, ARGS_VALUE }, { "args", 0, ARGS_VALUE }, { "valid", 0, ARGS_VALUE },
	{ "cose", 0, ARGS_FLAG },
	{ NULL, 0, ARGS_FLAG } };

static const struct args_opt inspect_opts[] = {
	{ NULL, 0, ARGS_FLAG } };

static const struct args_opt verify_opts[] = {
	{ "vehicle", 0, ARGS_VALUE }, { "audience", 0, ARGS_VALUE }, { "key", 0, ARGS_VALUE },
	{ "issuer", 0, ARGS_VALUE }, { "last-seq", 0, ARGS_VALUE }, { "skew", 0, ARGS_VALUE },
	{ "now", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct cli_cmd commands_cmds[] = {
	{ .name = "sign", .run = cmd_sign,
	  .summary = "sign a command for a vehicle (SignCommand); prints the token",
	  .usage = "VEHICLE COMMAND --key-name KEY [--args JSON|-] [--valid S] [--cose]",
	  .spec = { sign_opts, 2, 2 } },
	{ .name = "inspect", .run = cmd_inspect,
	  .summary = "which key signed a command token, whether it and the vehicle were valid "
	      "then, its audit record (InspectCommand)",
	  .usage = "TOKEN|-   (a JWS, or the base64 of a COSE_Sign1)",
	  .spec = { inspect_opts, 1, 1 } },
	{ .name = "verify", .run = cmd_verify, .offline = 1,
	  .summary = "check a signed command token as a vehicle does, offline, against a pinned "
	      "public key; exit 1 if it is refused",
	  .usage = "TOKEN|- --vehicle ID --audience AUD --key PUBKEY.pem [--issuer ISS]\n"
	      "[--last-seq N] [--skew S] [--now T]",
	  .spec = { verify_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_commands_cmd = {
	.name = "commands",
	.summary = "signed cloud-to-vehicle commands: sign, inspect (CommandService), verify "
	    "(offline)",
	.usage = "COMMAND [ARGS]",
	.sub = commands_cmds,
};
