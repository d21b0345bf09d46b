/*
 * cmd_admin.c - the administrators' commands of the `boltseal` CLI
 * (boltseal.v1.AdminService and the key lifecycle of KeyService; see
 * docs/cli.md, "Second factor and approvals"):
 *   mfa enroll|activate|status|reset          one's TOTP second factor
 *   proposals list|show|approve|reject|execute  M-of-N approvals
 *   propose keys OP NAME ..., propose mfa-reset PRINCIPAL
 *                                             build a request, submit it
 *   keys disable|enable|schedule-destruction|cancel-destruction
 *                                             rows that join group `keys`
 * A call a grant may put behind the second factor goes through cli_call_sf:
 * the code comes from the command's --otp, the global --otp or
 * BOLTSEAL_OTP (these two sent once per process: a code is accepted only
 * once), or the terminal, asked for without echo (console.c); a refusal
 * for want of a valid code is retried once with a code asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "boltseal/v1/admin.pb-c.h"
#include "boltseal/v1/audit.pb-c.h"
#include "boltseal/v1/checkpoints.pb-c.h"
#include "boltseal/v1/commands.pb-c.h"
#include "boltseal/v1/envelope.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "boltseal/v1/ota.pb-c.h"
#include "boltseal/v1/vehicles.pb-c.h"
#include "cli/cli.h"
#include "cli/console.h"
#include "cli/output.h"
#include "common/hex.h"
#include "formats/pb_text.h"
#include "rpc/rpc_status.h"

#define AS "/boltseal.v1.AdminService/"
#define KS "/boltseal.v1.KeyService/"
#define KS_NAME "boltseal.v1.KeyService/"
#define RESET_METHOD "boltseal.v1.AdminService/ResetSecondFactor"
#define SET_POLICY_METHOD "boltseal.v1.AdminService/SetPolicy"
#define CODE_MIN 6
#define CODE_MAX 8
#define SHA_HEX 64
#define HASH_PREFIX "boltseal proposal v1\n"   /* admin.proto: what request_sha256 covers */
#define MAX_PAGES 1000
#define PROMPT "TOTP code: "

/* ---- the second factor ---------------------------------------------------------- */

static int shared_code_sent;  /* the global --otp or BOLTSEAL_OTP went out once already */

/* A second-factor code: 6 to 8 digits. */
static int
code_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n < CODE_MIN || n > CODE_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * The code given for this command (its --otp, then the global --otp or
 * BOLTSEAL_OTP unless sent already), or NULL; *shared says it is one of the
 * latter. Returns 0, or CLI_EXIT_USAGE for a code that is not 6-8 digits.
 */
static int
code_given(struct cli_ctx *x, const struct args *a, const char **code, int *shared)
{
	const char *v = args_get(a, "otp");

	*shared = 0;
	if (v == NULL && !shared_code_sent) {
		v = x->otp;
		if (v == NULL && (v = getenv("BOLTSEAL_OTP")) != NULL && v[0] == '\0')
			v = NULL;
		*shared = v != NULL;
	}
	if (v != NULL && !code_valid(v))
		return out_usage(x->cmd, "the second-factor code (--otp, BOLTSEAL_OTP) must be "
		    "%d to %d digits", CODE_MIN, CODE_MAX);
	*code = v;
	return 0;
}

/* Asks for a code on the terminal into buf. Returns 0, or -1 (not a terminal, cancelled). */
static int
code_ask(struct cli_ctx *x, char buf[CONSOLE_SECRET_MAX])
{
	if (!isatty(STDIN_FILENO))
		return -1;
	for (;;) {
		if (console_read_secret(PROMPT, buf, CONSOLE_SECRET_MAX) != 0) {
			out_err(x->cmd, "no code entered");
			return -1;
		}
		if (code_valid(buf))
			return 0;
		OPENSSL_cleanse(buf, CONSOLE_SECRET_MAX);
		out_err(x->cmd, "a code is %d to %d digits; try again (Ctrl-D gives up)", CODE_MIN,
		    CODE_MAX);
	}
}

/*
 * Whether the server refused for want of a valid code that a new code may
 * cure: UNAUTHENTICATED naming x-boltseal-otp or starting "second factor:",
 * but not a factor that is locked, missing or not yet active.
 */
static int
code_would_help(int status, const char *msg)
{
	if (status != GRPC_STATUS_UNAUTHENTICATED || msg == NULL)
		return 0;
	if (strstr(msg, "x-boltseal-otp") == NULL && strncmp(msg, "second factor:", 14) != 0)
		return 0;
	return strstr(msg, "locked") == NULL && strstr(msg, "none is enrolled") == NULL &&
	    strstr(msg, "not activated") == NULL && strstr(msg, "no principal") == NULL;
}

/* The hint printed after an UNAUTHENTICATED second-factor refusal that was not retried. */
static void
code_hint(struct cli_ctx *x, int status, const char *msg)
{
	if (!code_would_help(status, msg))
		return;
	fprintf(stderr, "%s: %s: give the current code of your authenticator with --otp CODE "
	    "or BOLTSEAL_OTP, or run on a terminal to be asked for it\n", CLI_PROGNAME, x->cmd);
}

/*
 * Calls path like call_unary, with the second factor as mode says (see the
 * top of this file). A non-OK status is printed under x->cmd; *status and
 * *msg (may be NULL) get it for hints (*msg: the caller frees it).
 */
int
cli_call_sf(struct cli_ctx *x, const struct args *a, enum cli_sf_mode mode, const char *path,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **resp, int *status, char **msg)
{
	char asked[CONSOLE_SECRET_MAX];
	const char *code = NULL;
	char *m = NULL;
	int st = 0, shared, ret, tries;

	memset(asked, 0, sizeof(asked));
	if ((ret = code_given(x, a, &code, &shared)) != 0)
		return ret;
	if (code == NULL && mode == CLI_SF_ALWAYS && isatty(STDIN_FILENO)) {
		if (code_ask(x, asked) != 0) {
			ret = CLI_EXIT_USAGE;
			goto out;
		}
		code = asked;
	}
	for (tries = 0;; tries++) {
		free(m);
		m = NULL;
		st = 0;
		ret = call_unary_otp(x, path, req, code, rdesc, resp, &st, &m);
		if (shared && code != NULL && code != asked)
			shared_code_sent = 1;
		if (ret != CLI_EXIT_STATUS)
			break;
		if (code == NULL && code_would_help(st, m) && isatty(STDIN_FILENO))
			out_err(x->cmd, "this call needs your second factor");
		else
			out_status(x->cmd, -1, st, m);
		if (!isatty(STDIN_FILENO)) {
			code_hint(x, st, m);
			break;
		}
		if (tries > 0 || !code_would_help(st, m))
			break;
		OPENSSL_cleanse(asked, sizeof(asked));
		if (code_ask(x, asked) != 0)
			break;
		code = asked;
	}
out:
	OPENSSL_cleanse(asked, sizeof(asked));
	if (status != NULL)
		*status = st;
	if (msg != NULL)
		*msg = m;
	else
		free(m);
	return ret;
}

/* ---- printing --------------------------------------------------------------------- */

static const char *
proposal_state(int s)
{
	switch (s) {
	case BOLTSEAL__V1__PROPOSAL_STATE__PENDING: return "PENDING";
	case BOLTSEAL__V1__PROPOSAL_STATE__REJECTED: return "REJECTED";
	case BOLTSEAL__V1__PROPOSAL_STATE__EXECUTED: return "EXECUTED";
	case BOLTSEAL__V1__PROPOSAL_STATE__EXPIRED: return "EXPIRED";
	default: return "UNSPECIFIED";
	}
}

/*
 * Whether request_sha256 of p is the SHA-256 of HASH_PREFIX, the method,
 * "\n" and the request bytes it carries (admin.proto): 1 yes, 0 no.
 */
static int
hash_matches(const Boltseal__V1__Proposal *p)
{
	uint8_t md[32];
	char hex[BS_HEX_LEN(32)];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok;

	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, HASH_PREFIX, sizeof(HASH_PREFIX) - 1) == 1 &&
	    EVP_DigestUpdate(c, p->method, strlen(p->method)) == 1 &&
	    EVP_DigestUpdate(c, "\n", 1) == 1 &&
	    (p->request.len == 0 || EVP_DigestUpdate(c, p->request.data, p->request.len) == 1) &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == sizeof(md);
	EVP_MD_CTX_free(c);
	if (!ok)
		return 0;
	bs_hex_encode(md, sizeof(md), hex);
	return strlen(p->request_sha256) == SHA_HEX &&
	    CRYPTO_memcmp(hex, p->request_sha256, SHA_HEX) == 0;
}

/* The services whose methods a proposal may name, for the type of an executed call's answer. */
static const ProtobufCServiceDescriptor *const services[] = {
	&boltseal__v1__key_service__descriptor,
	&boltseal__v1__admin_service__descriptor,
	&boltseal__v1__ota_service__descriptor,
	&boltseal__v1__checkpoint_service__descriptor,
	&boltseal__v1__command_service__descriptor,
	&boltseal__v1__vehicle_service__descriptor,
	&boltseal__v1__envelope_service__descriptor,
	&boltseal__v1__audit_service__descriptor,
};

/* The response type of method ("boltseal.v1.KeyService/DisableKey"), or NULL if unknown. */
static const ProtobufCMessageDescriptor *
response_type(const char *method)
{
	const char *slash = strchr(method, '/');
	const ProtobufCMethodDescriptor *m;
	size_t i, n;

	if (slash == NULL)
		return NULL;
	n = (size_t)(slash - method);
	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		if (strlen(services[i]->name) != n || memcmp(services[i]->name, method, n) != 0)
			continue;
		m = protobuf_c_service_descriptor_get_method_by_name(services[i], slash + 1);
		return m != NULL ? m->output : NULL;
	}
	return NULL;
}

/* The kept answer of an executed proposal, decoded when its type is known (text). */
static void
print_response_text(const Boltseal__V1__Proposal *p)
{
	const ProtobufCMessageDescriptor *d = response_type(p->method);
	ProtobufCMessage *m;
	char *text = NULL;

	if (p->result_response.len == 0 && d == NULL)
		return;
	if (d == NULL || (m = protobuf_c_message_unpack(d, NULL, p->result_response.len,
	    p->result_response.data)) == NULL) {
		printf("response:        %zu bytes (type unknown to this client)\n",
		    p->result_response.len);
		return;
	}
	if (d == &boltseal__v1__set_key_state_response__descriptor) {
		printf("response:\n");
		out_key_text(((Boltseal__V1__SetKeyStateResponse *)m)->key);
	} else if (pb_text_render(m, &text) == 0) {
		printf("response:        %s\n", d->name);
		out_text_block(text);
		OPENSSL_clear_free(text, strlen(text) + 1);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

/* A proposal as text: every field, the request decoded, votes, result. */
static void
print_proposal_text(const Boltseal__V1__Proposal *p)
{
	char who[512];
	size_t i;

	out_field("id:", p->id);
	out_field("method:", p->method);
	out_field("state:", proposal_state(p->state));
	if (p->description[0] != '\0')
		out_field("description:", p->description);
	snprintf(who, sizeof(who), "%s (%s)", p->proposer, p->proposer_identity);
	out_field("proposer:", who);
	out_field_time("created:", p->create_time_unix);
	out_field_time("expires:", p->expire_time_unix);
	out_field("request_sha256:", p->request_sha256);
	if (!hash_matches(p))
		printf("                 WARNING: not the hash of the request shown; do not "
		    "approve\n");
	printf("request:\n");
	if (p->request_text[0] == '\0')
		printf("  (no field set)\n");
	else
		out_text_block(p->request_text);
	printf("approvals:       %zu\n", p->n_approvals);
	for (i = 0; i < p->n_approvals; i++) {
		char tb[32];

		out_time(p->approvals[i]->time_unix, tb, sizeof(tb));
		snprintf(who, sizeof(who), "%s (%s) at %s", p->approvals[i]->principal,
		    p->approvals[i]->identity, tb);
		fputs("  ", stdout);
		out_safe(stdout, who);
		putchar('\n');
	}
	if (p->rejection != NULL) {
		snprintf(who, sizeof(who), "%s (%s)", p->rejection->principal,
		    p->rejection->identity);
		out_field("rejected by:", who);
		out_field_time("rejected:", p->rejection->time_unix);
		if (p->rejection_reason[0] != '\0')
			out_field("reason:", p->rejection_reason);
	}
	if (p->execute_time_unix != 0)
		out_field_time("executed:", p->execute_time_unix);
	if (p->state == BOLTSEAL__V1__PROPOSAL_STATE__EXECUTED) {
		out_field("result:", grpc_status_name((int)p->result_status));
		if (p->result_message[0] != '\0')
			out_field("result message:", p->result_message);
		if (p->result_status == GRPC_STATUS_OK)
			print_response_text(p);
	}
}

/* A proposal as a JSON member (the executed answer's bytes in base64). */
static void
json_proposal(struct out_json *j, const char *name, const Boltseal__V1__Proposal *p)
{
	size_t i;

	if (p == NULL) {
		out_json_null(j, name);
		return;
	}
	out_json_object(j, name);
	out_json_str(j, "id", p->id);
	out_json_str(j, "method", p->method);
	out_json_str(j, "state", proposal_state(p->state));
	out_json_str(j, "description", p->description);
	out_json_str(j, "proposer", p->proposer);
	out_json_str(j, "proposer_identity", p->proposer_identity);
	out_json_int(j, "create_time_unix", p->create_time_unix);
	out_json_int(j, "expire_time_unix", p->expire_time_unix);
	out_json_str(j, "request_sha256", p->request_sha256);
	out_json_bool(j, "request_sha256_matches", hash_matches(p));
	out_json_str(j, "request_text", p->request_text);
	out_json_b64(j, "request", p->request.data, p->request.len);
	out_json_array(j, "approvals");
	for (i = 0; i < p->n_approvals; i++) {
		out_json_object(j, NULL);
		out_json_str(j, "principal", p->approvals[i]->principal);
		out_json_str(j, "identity", p->approvals[i]->identity);
		out_json_int(j, "time_unix", p->approvals[i]->time_unix);
		out_json_close(j);
	}
	out_json_close(j);
	if (p->rejection != NULL) {
		out_json_object(j, "rejection");
		out_json_str(j, "principal", p->rejection->principal);
		out_json_str(j, "identity", p->rejection->identity);
		out_json_int(j, "time_unix", p->rejection->time_unix);
		out_json_close(j);
		out_json_str(j, "rejection_reason", p->rejection_reason);
	}
	if (p->execute_time_unix != 0)
		out_json_int(j, "execute_time_unix", p->execute_time_unix);
	if (p->state == BOLTSEAL__V1__PROPOSAL_STATE__EXECUTED) {
		out_json_str(j, "result_status", grpc_status_name((int)p->result_status));
		out_json_uint(j, "result_status_code", p->result_status);
		out_json_str(j, "result_message", p->result_message);
		out_json_b64(j, "result_response", p->result_response.data,
		    p->result_response.len);
	}
	out_json_close(j);
}

/* {"proposal":P} or the text form. */
static void
print_proposal(struct cli_ctx *x, const Boltseal__V1__Proposal *p)
{
	struct out_json j;

	if (!x->json) {
		if (p == NULL)
			printf("(no proposal in response)\n");
		else
			print_proposal_text(p);
		return;
	}
	out_json_init(&j);
	out_json_object(&j, NULL);
	json_proposal(&j, "proposal", p);
	out_json_close(&j);
}

static void
print_sf_status(struct cli_ctx *x, const Boltseal__V1__SecondFactorStatus *s)
{
	struct out_json j;
	char n[16];

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		if (s == NULL) {
			out_json_null(&j, "status");
		} else {
			out_json_object(&j, "status");
			out_json_str(&j, "principal", s->principal);
			out_json_str(&j, "state", s->state);
			out_json_uint(&j, "failures", s->failures);
			out_json_int(&j, "enrolled_unix", s->enrolled_unix);
			out_json_int(&j, "last_used_unix", s->last_used_unix);
			out_json_close(&j);
		}
		out_json_close(&j);
		return;
	}
	if (s == NULL) {
		printf("(no status in response)\n");
		return;
	}
	out_field("principal:", s->principal);
	out_field("state:", s->state);
	snprintf(n, sizeof(n), "%u", s->failures);
	out_field("failures:", n);
	out_field_time("enrolled:", s->enrolled_unix);
	out_field_time("last used:", s->last_used_unix);
}

/* ---- mfa ---------------------------------------------------------------------------- */

/* The QR drawing (UTF-8 half blocks and newlines; other control characters as '?'). */
static void
print_qr(const char *qr)
{
	const unsigned char *p;

	for (p = (const unsigned char *)qr; *p != '\0'; p++)
		putchar(*p == '\n' || (*p >= 0x20 && *p != 0x7f) ? *p : '?');
	if (p != (const unsigned char *)qr && p[-1] != '\n')
		putchar('\n');
}

/* Creates path for the otpauth URI: new file only, mode 0600, no symlink followed. */
static int
uri_file_open(struct cli_ctx *x, const char *path, int *fd)
{
	if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		out_err(x->cmd, "--uri-out %s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (the secret is written to a new file only)" : "");
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int
uri_file_write(struct cli_ctx *x, const char *path, int fd, const char *uri)
{
	size_t len = strlen(uri), off = 0;
	ssize_t n;

	while (off < len) {
		if ((n = write(fd, uri + off, len - off)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto bad;
		off += (size_t)n;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) != 0)
		goto bad;
	return 0;
bad:
	out_err(x->cmd, "--uri-out %s: %s", path, strerror(errno));
	return CLI_EXIT_USAGE;
}

static int
cmd_mfa_enroll(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__EnrollSecondFactorRequest req = BOLTSEAL__V1__ENROLL_SECOND_FACTOR_REQUEST__INIT;
	Boltseal__V1__EnrollSecondFactorResponse *resp = NULL;
	const char *uri_out = args_get(a, "uri-out");
	int tty = isatty(STDOUT_FILENO), fd = -1, ret;
	struct out_json j;

	if (!tty && uri_out == NULL)
		return out_usage(x->cmd, "the otpauth URI holds the secret and is shown on a "
		    "terminal only: run this on a terminal, or give --uri-out FILE");
	if (uri_out != NULL && (ret = uri_file_open(x, uri_out, &fd)) != 0)
		return ret;
	ret = call_unary(x, AS "EnrollSecondFactor", &req.base,
	    &boltseal__v1__enroll_second_factor_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		goto out;
	if (fd >= 0 && (ret = uri_file_write(x, uri_out, fd, resp->otpauth_uri)) != 0)
		goto out;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "principal", resp->principal);
		if (tty && uri_out == NULL) {
			out_json_str(&j, "otpauth_uri", resp->otpauth_uri);
			out_json_str(&j, "qr_text", resp->qr_text);
		} else {
			out_json_str(&j, "uri_out", uri_out);
		}
		out_json_close(&j);
	} else {
		if (tty) {
			print_qr(resp->qr_text);
			printf("\n");
		}
		out_field("principal:", resp->principal);
		if (uri_out == NULL)
			out_field("otpauth URI:", resp->otpauth_uri);
		else
			out_field("otpauth URI:", "written to --uri-out (mode 0600)");
		printf("Scan the code (or enter the URI) in your authenticator app; it is not shown "
		    "again.\nThen: %s mfa activate\n", CLI_PROGNAME);
	}
out:
	if (fd >= 0) {
		close(fd);
		if (ret != 0 && unlink(uri_out) != 0)
			out_err(x->cmd, "--uri-out %s: %s", uri_out, strerror(errno));
	}
	if (resp != NULL) {
		OPENSSL_cleanse(resp->otpauth_uri, strlen(resp->otpauth_uri));
		OPENSSL_cleanse(resp->qr_text, strlen(resp->qr_text));
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return ret;
}

static int
cmd_mfa_activate(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ActivateSecondFactorRequest req =
	    BOLTSEAL__V1__ACTIVATE_SECOND_FACTOR_REQUEST__INIT;
	Boltseal__V1__ActivateSecondFactorResponse *resp = NULL;
	char asked[CONSOLE_SECRET_MAX];
	const char *code = args_get(a, "code");
	int shared = 0, ret;

	memset(asked, 0, sizeof(asked));
	if (code == NULL && (ret = code_given(x, a, &code, &shared)) != 0)
		return ret;
	if (code == NULL) {
		if (!isatty(STDIN_FILENO))
			return out_usage(x->cmd, "give the first code of your authenticator with "
			    "--code N (or run on a terminal to be asked for it)");
		if (code_ask(x, asked) != 0)
			return CLI_EXIT_USAGE;
		code = asked;
	} else if (!code_valid(code)) {
		return out_usage(x->cmd, "--code must be %d to %d digits", CODE_MIN, CODE_MAX);
	}
	req.code = (char *)code;
	ret = call_unary(x, AS "ActivateSecondFactor", &req.base,
	    &boltseal__v1__activate_second_factor_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (shared)
		shared_code_sent = 1;
	OPENSSL_cleanse(asked, sizeof(asked));
	if (ret != 0)
		return ret;
	print_sf_status(x, resp->status);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_mfa_status(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetSecondFactorRequest req = BOLTSEAL__V1__GET_SECOND_FACTOR_REQUEST__INIT;
	Boltseal__V1__GetSecondFactorResponse *resp = NULL;
	int ret;

	req.principal = (char *)(a->npos > 0 ? a->pos[0] : "");
	ret = call_unary(x, AS "GetSecondFactor", &req.base,
	    &boltseal__v1__get_second_factor_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	print_sf_status(x, resp->status);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* After a FAILED_PRECONDITION asking for approvals: how to propose it instead. */
void
cli_approvals_hint(struct cli_ctx *x, int status, const char *msg, const char *propose_cmd)
{
	if (status != GRPC_STATUS_FAILED_PRECONDITION || msg == NULL ||
	    strstr(msg, "approvals") == NULL)
		return;
	fprintf(stderr, "%s: %s: this needs other administrators' approvals: propose it with\n"
	    "  %s %s\nthen have them approve it ('%s proposals approve ID --hash SHA256') and "
	    "execute it ('%s proposals execute ID')\n", CLI_PROGNAME, x->cmd, CLI_PROGNAME,
	    propose_cmd, CLI_PROGNAME, CLI_PROGNAME);
}

static int
cmd_mfa_reset(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ResetSecondFactorRequest req = BOLTSEAL__V1__RESET_SECOND_FACTOR_REQUEST__INIT;
	Boltseal__V1__ResetSecondFactorResponse *resp = NULL;
	char hint[256];
	char *msg = NULL;
	int st = 0, ret;

	req.principal = (char *)a->pos[0];
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, AS "ResetSecondFactor", &req.base,
	    &boltseal__v1__reset_second_factor_response__descriptor, (ProtobufCMessage **)&resp,
	    &st, &msg);
	if (ret != 0) {
		snprintf(hint, sizeof(hint), "propose mfa-reset %s", a->pos[0]);
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		return ret;
	}
	print_sf_status(x, resp->status);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* ---- proposals ---------------------------------------------------------------------- */

/* A proposal's id: checked by the server (28 lower-case hex digits); here only its length. */
static int
id_arg(struct cli_ctx *x, const char *id)
{
	if (strlen(id) == 0 || strlen(id) > 64)
		return out_usage(x->cmd, "ID must be a proposal id as 'proposals list' shows it");
	return 0;
}

/* --hash: 64 hex digits, copied in lower case into out. */
static int
hash_arg(struct cli_ctx *x, const char *h, char out[SHA_HEX + 1])
{
	size_t i;

	if (h == NULL)
		return out_usage(x->cmd, "--hash SHA256 is required: the request_sha256 that "
		    "'%s proposals show ID' printed, after you read the request", CLI_PROGNAME);
	if (strlen(h) != SHA_HEX)
		return out_usage(x->cmd, "--hash must be the 64 hex digits of request_sha256");
	for (i = 0; i < SHA_HEX; i++) {
		if (bs_hex_digit_value((unsigned char)h[i]) < 0)
			return out_usage(x->cmd, "--hash must be the 64 hex digits of "
			    "request_sha256");
		out[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
	}
	out[SHA_HEX] = '\0';
	return 0;
}

/* The table of `proposals list`. */
static void
print_list_text(Boltseal__V1__ListProposalsResponse *const *pages, size_t npages)
{
	char tb[32];
	size_t i, k, n = 0;

	printf("%-28s %-9s %-9s %-4s %-20s %s\n", "ID", "STATE", "PROPOSER", "APPR", "EXPIRES",
	    "METHOD");
	for (i = 0; i < npages; i++)
		for (k = 0; k < pages[i]->n_proposals; k++, n++) {
			const Boltseal__V1__Proposal *p = pages[i]->proposals[k];
			size_t w = strlen(p->proposer);

			out_time(p->expire_time_unix, tb, sizeof(tb));
			out_safe(stdout, p->id);
			printf(" %-9s ", proposal_state(p->state));
			out_safe(stdout, p->proposer);
			printf("%*s %-4zu %-20s ", w < 9 ? (int)(9 - w) : 0, "", p->n_approvals, tb);
			out_safe(stdout, p->method);
			putchar('\n');
			if (p->description[0] != '\0') {
				fputs("    ", stdout);
				out_safe(stdout, p->description);
				putchar('\n');
			}
		}
	if (n == 0)
		printf("(no proposals)\n");
}

static int
cmd_proposals_list(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ListProposalsRequest req = BOLTSEAL__V1__LIST_PROPOSALS_REQUEST__INIT;
	Boltseal__V1__ListProposalsResponse **pages = NULL, **np, *resp;
	struct out_json j;
	size_t npages = 0, i, k;
	int ret = 0;

	req.include_closed = args_get(a, "all") != NULL;
	req.page_size = 200;
	req.page_token = (char *)"";
	for (;;) {
		resp = NULL;
		ret = call_unary(x, AS "ListProposals", &req.base,
		    &boltseal__v1__list_proposals_response__descriptor, (ProtobufCMessage **)&resp);
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
		if (resp->next_page_token[0] == '\0')
			break;
		if (strcmp(resp->next_page_token, req.page_token) == 0 || npages >= MAX_PAGES) {
			out_err(x->cmd, "server keeps returning pages; giving up");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		req.page_token = resp->next_page_token;
	}
	if (!x->json) {
		print_list_text(pages, npages);
		goto out;
	}
	out_json_init(&j);
	out_json_object(&j, NULL);
	out_json_array(&j, "proposals");
	for (i = 0; i < npages; i++)
		for (k = 0; k < pages[i]->n_proposals; k++)
			json_proposal(&j, NULL, pages[i]->proposals[k]);
	out_json_close(&j);
	out_json_close(&j);
out:
	for (i = 0; i < npages; i++)
		protobuf_c_message_free_unpacked(&pages[i]->base, NULL);
	free(pages);
	return ret;
}

static int
cmd_proposals_show(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetProposalRequest req = BOLTSEAL__V1__GET_PROPOSAL_REQUEST__INIT;
	Boltseal__V1__GetProposalResponse *resp = NULL;
	int ret;

	if ((ret = id_arg(x, a->pos[0])) != 0)
		return ret;
	req.id = (char *)a->pos[0];
	ret = call_unary(x, AS "GetProposal", &req.base,
	    &boltseal__v1__get_proposal_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	print_proposal(x, resp->proposal);
	if (resp->proposal != NULL && !hash_matches(resp->proposal)) {
		out_err(x->cmd, "request_sha256 is not the hash of the request bytes shown");
		ret = CLI_EXIT_CONN;
	} else if (!x->json && resp->proposal != NULL) {
		if (strcmp(resp->proposal->method, SET_POLICY_METHOD) == 0)
			ret = cli_policy_print_change(x, resp->proposal->request.data,
			    resp->proposal->request.len);
		if (ret == 0 && resp->proposal->state == BOLTSEAL__V1__PROPOSAL_STATE__PENDING)
			printf("\nTo approve what is shown above: %s proposals approve %s --hash %s\n",
			    CLI_PROGNAME, resp->proposal->id, resp->proposal->request_sha256);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_proposals_approve(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ApproveRequest req = BOLTSEAL__V1__APPROVE_REQUEST__INIT;
	Boltseal__V1__ApproveResponse *resp = NULL;
	char sha[SHA_HEX + 1];
	int ret;

	if ((ret = id_arg(x, a->pos[0])) != 0 || (ret = hash_arg(x, args_get(a, "hash"), sha)) != 0)
		return ret;
	req.id = (char *)a->pos[0];
	req.request_sha256 = sha;
	ret = cli_call_sf(x, a, CLI_SF_ALWAYS, AS "Approve", &req.base,
	    &boltseal__v1__approve_response__descriptor, (ProtobufCMessage **)&resp, NULL, NULL);
	if (ret != 0)
		return ret;
	if (!x->json && resp->proposal != NULL)
		printf("approved proposal %s (%zu approval%s)\n", resp->proposal->id,
		    resp->proposal->n_approvals, resp->proposal->n_approvals == 1 ? "" : "s");
	else
		print_proposal(x, resp->proposal);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_proposals_reject(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RejectRequest req = BOLTSEAL__V1__REJECT_REQUEST__INIT;
	Boltseal__V1__RejectResponse *resp = NULL;
	const char *reason = args_get(a, "reason");
	char sha[SHA_HEX + 1];
	int ret;

	if ((ret = id_arg(x, a->pos[0])) != 0 || (ret = hash_arg(x, args_get(a, "hash"), sha)) != 0)
		return ret;
	if (reason != NULL && strlen(reason) > 512)
		return out_usage(x->cmd, "--reason: at most 512 bytes");
	req.id = (char *)a->pos[0];
	req.request_sha256 = sha;
	req.reason = (char *)(reason != NULL ? reason : "");
	ret = cli_call_sf(x, a, CLI_SF_ALWAYS, AS "Reject", &req.base,
	    &boltseal__v1__reject_response__descriptor, (ProtobufCMessage **)&resp, NULL, NULL);
	if (ret != 0)
		return ret;
	if (!x->json && resp->proposal != NULL)
		printf("rejected proposal %s\n", resp->proposal->id);
	else
		print_proposal(x, resp->proposal);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/*
 * Execute runs the call as the proposer's, with the second factor this call
 * carries: when the grant of the proposed method requires it, the server
 * refuses (the proposal stays pending) and the code is asked for. Exit 0 if
 * the executed call answered OK, CLI_EXIT_STATUS (its status printed) if
 * not.
 */
static int
cmd_proposals_execute(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ExecuteRequest req = BOLTSEAL__V1__EXECUTE_REQUEST__INIT;
	Boltseal__V1__ExecuteResponse *resp = NULL;
	const Boltseal__V1__Proposal *p;
	int ret;

	if ((ret = id_arg(x, a->pos[0])) != 0)
		return ret;
	req.id = (char *)a->pos[0];
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, AS "Execute", &req.base,
	    &boltseal__v1__execute_response__descriptor, (ProtobufCMessage **)&resp, NULL, NULL);
	if (ret != 0)
		return ret;
	if ((p = resp->proposal) == NULL) {
		out_err(x->cmd, "no proposal in the server's answer");
		ret = CLI_EXIT_CONN;
	} else if (x->json) {
		print_proposal(x, p);
	} else {
		out_field("id:", p->id);
		out_field("method:", p->method);
		out_field("state:", proposal_state(p->state));
		out_field("result:", grpc_status_name((int)p->result_status));
		if (p->result_message[0] != '\0')
			out_field("result message:", p->result_message);
		if (p->result_status == GRPC_STATUS_OK)
			print_response_text(p);
	}
	if (p != NULL && p->result_status != GRPC_STATUS_OK) {
		out_status(x->cmd, -1, (int)p->result_status, p->result_message);
		ret = CLI_EXIT_STATUS;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* ---- key lifecycle (direct) and proposals of it -------------------------------------- */

/* The lifecycle operations: the word, the method, its request type. */
struct lc_op {
	const char *word;
	const char *method;     /* without the service */
	int schedule;           /* ScheduleKeyDestructionRequest (else SetKeyStateRequest) */
};

static const struct lc_op lc_ops[] = {
	{ "disable", "DisableKey", 0 },
	{ "enable", "EnableKey", 0 },
	{ "schedule-destruction", "ScheduleKeyDestruction", 1 },
	{ "cancel-destruction", "CancelKeyDestruction", 0 },
};

static const struct lc_op *
lc_find(const char *word)
{
	size_t i;

	for (i = 0; i < sizeof(lc_ops) / sizeof(lc_ops[0]); i++)
		if (strcmp(lc_ops[i].word, word) == 0)
			return &lc_ops[i];
	return NULL;
}

/* The request of a lifecycle operation, from NAME, --version and --days. */
struct lc_req {
	Boltseal__V1__SetKeyStateRequest set;
	Boltseal__V1__ScheduleKeyDestructionRequest sched;
	const ProtobufCMessage *msg;   /* set or sched */
};

static int
lc_build(struct cli_ctx *x, const struct args *a, const struct lc_op *op, const char *name,
    struct lc_req *r)
{
	const char *v = args_get(a, "version"), *d = args_get(a, "days");
	unsigned long n = 0, days = 0;

	if (v != NULL && args_uint(v, 1, UINT32_MAX, &n) != 0)
		return out_usage(x->cmd, "--version must be a positive integer (omit it for the "
		    "whole key)");
	if (op->schedule && d == NULL)
		return out_usage(x->cmd, "--days N is required (the days until the destruction, "
		    "7 to 30 unless the server says otherwise)");
	if (!op->schedule && d != NULL)
		return out_usage(x->cmd, "--days applies to schedule-destruction only");
	if (d != NULL && args_uint(d, 0, 365, &days) != 0)
		return out_usage(x->cmd, "--days must be a number of days (7 to 30)");
	boltseal__v1__set_key_state_request__init(&r->set);
	boltseal__v1__schedule_key_destruction_request__init(&r->sched);
	if (op->schedule) {
		r->sched.name = (char *)name;
		r->sched.version = (uint32_t)n;
		r->sched.pending_days = (uint32_t)days;
		r->msg = &r->sched.base;
	} else {
		r->set.name = (char *)name;
		r->set.version = (uint32_t)n;
		r->msg = &r->set.base;
	}
	return 0;
}

/* `keys disable|enable|schedule-destruction|cancel-destruction NAME ...` */
static int
run_lifecycle(struct cli_ctx *x, const struct args *a, const char *word)
{
	Boltseal__V1__SetKeyStateResponse *resp = NULL;
	const struct lc_op *op = lc_find(word);
	const char *v = args_get(a, "version"), *d = args_get(a, "days");
	struct lc_req r;
	char path[96], hint[256];
	char *msg = NULL;
	int st = 0, ret;

	if (op == NULL) {
		out_err(x->cmd, "internal error: no operation '%s'", word);
		return CLI_EXIT_CONN;
	}
	if ((ret = lc_build(x, a, op, a->pos[0], &r)) != 0)
		return ret;
	snprintf(path, sizeof(path), KS "%s", op->method);
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, path, r.msg,
	    &boltseal__v1__set_key_state_response__descriptor, (ProtobufCMessage **)&resp, &st,
	    &msg);
	if (ret != 0) {
		snprintf(hint, sizeof(hint), "propose keys %s %s%s%s%s%s", op->word, a->pos[0],
		    v != NULL ? " --version " : "", v != NULL ? v : "", d != NULL ? " --days " : "",
		    d != NULL ? d : "");
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		return ret;
	}
	out_key(x->json, resp->key);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_keys_disable(struct cli_ctx *x, const struct args *a)
{
	return run_lifecycle(x, a, "disable");
}

static int
cmd_keys_enable(struct cli_ctx *x, const struct args *a)
{
	return run_lifecycle(x, a, "enable");
}

static int
cmd_keys_schedule(struct cli_ctx *x, const struct args *a)
{
	return run_lifecycle(x, a, "schedule-destruction");
}

static int
cmd_keys_cancel(struct cli_ctx *x, const struct args *a)
{
	return run_lifecycle(x, a, "cancel-destruction");
}

/*
 * Packs msg and submits it as a proposal of method (full name) with
 * --description and --ttl; prints the proposal and what the approvers run.
 */
int
cli_propose(struct cli_ctx *x, const struct args *a, const char *method,
    const ProtobufCMessage *msg)
{
	Boltseal__V1__ProposeRequest req = BOLTSEAL__V1__PROPOSE_REQUEST__INIT;
	Boltseal__V1__ProposeResponse *resp = NULL;
	const char *desc = args_get(a, "description"), *ttl = args_get(a, "ttl");
	unsigned long t = 0;
	uint8_t *buf = NULL;
	size_t len;
	int ret;

	if (desc != NULL && strlen(desc) > 512)
		return out_usage(x->cmd, "--description: at most 512 bytes");
	if (ttl != NULL && args_uint(ttl, 1, 604800, &t) != 0)
		return out_usage(x->cmd, "--ttl must be 1 to 604800 seconds (7 days)");
	len = protobuf_c_message_get_packed_size(msg);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	protobuf_c_message_pack(msg, buf);
	req.method = (char *)method;
	req.request.data = buf;
	req.request.len = len;
	req.description = (char *)(desc != NULL ? desc : "");
	req.ttl_seconds = (uint32_t)t;
	ret = call_unary(x, AS "Propose", &req.base, &boltseal__v1__propose_response__descriptor,
	    (ProtobufCMessage **)&resp);
	free(buf);
	if (ret != 0)
		return ret;
	print_proposal(x, resp->proposal);
	if (!x->json && resp->proposal != NULL)
		printf("\nApprovers check it with '%s proposals show %s', then run\n"
		    "  %s proposals approve %s --hash %s\nOnce approved: %s proposals execute %s\n",
		    CLI_PROGNAME, resp->proposal->id, CLI_PROGNAME, resp->proposal->id,
		    resp->proposal->request_sha256, CLI_PROGNAME, resp->proposal->id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* `propose keys OP NAME [--version V] [--days N] ...` */
static int
cmd_propose_keys(struct cli_ctx *x, const struct args *a)
{
	const struct lc_op *op;
	struct lc_req r;
	char method[96];
	int ret;

	if ((op = lc_find(a->pos[0])) == NULL)
		return out_usage(x->cmd, "unknown operation '%s' (disable, enable, "
		    "schedule-destruction, cancel-destruction)", a->pos[0]);
	if (a->npos < 2)
		return out_usage(x->cmd, "missing the key NAME");
	if ((ret = lc_build(x, a, op, a->pos[1], &r)) != 0)
		return ret;
	snprintf(method, sizeof(method), KS_NAME "%s", op->method);
	return cli_propose(x, a, method, r.msg);
}

/* `propose mfa-reset PRINCIPAL` */
static int
cmd_propose_mfa_reset(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ResetSecondFactorRequest req = BOLTSEAL__V1__RESET_SECOND_FACTOR_REQUEST__INIT;

	req.principal = (char *)a->pos[0];
	return cli_propose(x, a, RESET_METHOD, &req.base);
}

/* ---- the tables ------------------------------------------------------------------- */

#define OTP_OPT { "otp", 0, ARGS_VALUE }

static const struct args_opt enroll_opts[] = {
	{ "uri-out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt activate_opts[] = {
	{ "code", 0, ARGS_VALUE }, OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt otp_opts[] = { OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt list_opts[] = { { "all", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt approve_opts[] = {
	{ "hash", 0, ARGS_VALUE }, OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt reject_opts[] = {
	{ "hash", 0, ARGS_VALUE }, { "reason", 0, ARGS_VALUE }, OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt lc_opts[] = {
	{ "version", 0, ARGS_VALUE }, OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt sched_opts[] = {
	{ "version", 0, ARGS_VALUE }, { "days", 0, ARGS_VALUE }, OTP_OPT, { NULL, 0, ARGS_FLAG } };
static const struct args_opt propose_keys_opts[] = {
	{ "version", 0, ARGS_VALUE }, { "days", 0, ARGS_VALUE },
	{ "description", 0, ARGS_VALUE }, { "ttl", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt propose_opts[] = {
	{ "description", 0, ARGS_VALUE }, { "ttl", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt propose_ca_opts[] = {
	{ "common-name", 0, ARGS_VALUE }, { "days", 0, ARGS_VALUE },
	{ "description", 0, ARGS_VALUE }, { "ttl", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt propose_profile_opts[] = {
	{ "ca", 0, ARGS_VALUE }, { "kind", 0, ARGS_VALUE }, { "uri-prefix", 0, ARGS_VALUE },
	{ "max-hours", 0, ARGS_VALUE }, { "description", 0, ARGS_VALUE }, { "ttl", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt propose_policy_opts[] = {
	{ "base-version", 0, ARGS_VALUE }, { "description", 0, ARGS_VALUE },
	{ "ttl", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd mfa_cmds[] = {
	{ .name = "enroll", .run = cmd_mfa_enroll,
	  .summary = "enrol a TOTP second factor: its QR code and URI, shown once "
	      "(EnrollSecondFactor)",
	  .usage = "[--uri-out FILE]", .spec = { enroll_opts, 0, 0 } },
	{ .name = "activate", .run = cmd_mfa_activate,
	  .summary = "activate the enrolled factor with its first code (ActivateSecondFactor)",
	  .usage = "[--code N]", .spec = { activate_opts, 0, 0 } },
	{ .name = "status", .run = cmd_mfa_status,
	  .summary = "the state of a principal's second factor (GetSecondFactor)",
	  .usage = "[PRINCIPAL]", .spec = { NULL, 0, 1 } },
	{ .name = "reset", .run = cmd_mfa_reset,
	  .summary = "remove a principal's factor; needs approvals: see 'propose mfa-reset' "
	      "(ResetSecondFactor)",
	  .usage = "PRINCIPAL [--otp CODE]", .spec = { otp_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_mfa_cmd = {
	.name = "mfa",
	.summary = "your second factor (TOTP): enrol, activate, status, reset "
	    "(boltseal.v1.AdminService)",
	.usage = "COMMAND [ARGS]",
	.sub = mfa_cmds,
};

static const struct cli_cmd proposals_cmds[] = {
	{ .name = "list", .run = cmd_proposals_list,
	  .summary = "proposals, oldest first: pending ones, or --all (ListProposals)",
	  .usage = "[--all]", .spec = { list_opts, 0, 0 } },
	{ .name = "show", .run = cmd_proposals_show,
	  .summary = "a proposal: its request field by field, hash, votes, result (GetProposal)",
	  .usage = "ID", .spec = { NULL, 1, 1 } },
	{ .name = "approve", .run = cmd_proposals_approve,
	  .summary = "approve the request whose hash you read, with your code (Approve)",
	  .usage = "ID --hash SHA256 [--otp CODE]", .spec = { approve_opts, 1, 1 } },
	{ .name = "reject", .run = cmd_proposals_reject,
	  .summary = "reject a proposal, with your code (Reject)",
	  .usage = "ID --hash SHA256 [--reason TEXT] [--otp CODE]", .spec = { reject_opts, 1, 1 } },
	{ .name = "execute", .run = cmd_proposals_execute,
	  .summary = "run your approved proposal; prints the call's result (Execute)",
	  .usage = "ID [--otp CODE]", .spec = { otp_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_proposals_cmd = {
	.name = "proposals",
	.summary = "calls that need M-of-N approvals: list, show, approve, reject, execute "
	    "(boltseal.v1.AdminService)",
	.usage = "COMMAND [ARGS]",
	.sub = proposals_cmds,
};

static const struct cli_cmd propose_cmds[] = {
	{ .name = "keys", .run = cmd_propose_keys,
	  .summary = "propose a key lifecycle change (DisableKey, EnableKey, "
	      "ScheduleKeyDestruction, CancelKeyDestruction)",
	  .usage = "disable|enable|schedule-destruction|cancel-destruction NAME\n"
	      "[--version V] [--days N] [--description TEXT] [--ttl SECONDS]",
	  .spec = { propose_keys_opts, 1, 2 } },
	{ .name = "mfa-reset", .run = cmd_propose_mfa_reset,
	  .summary = "propose the reset of a principal's second factor (ResetSecondFactor)",
	  .usage = "PRINCIPAL [--description TEXT] [--ttl SECONDS]",
	  .spec = { propose_opts, 1, 1 } },
	{ .name = "ca-create", .run = cli_propose_ca_create,
	  .summary = "propose a CA certificate for a ca key (CreateAuthority)",
	  .usage = "KEY --common-name CN [--days N] [--description TEXT] [--ttl SECONDS]",
	  .spec = { propose_ca_opts, 1, 1 } },
	{ .name = "profile-set", .run = cli_propose_profile_set,
	  .summary = "propose an issuing profile, new or changed (SetProfile)",
	  .usage = "NAME --ca KEY --kind vehicle|gateway|service --uri-prefix URI --max-hours N\n"
	      "[--description TEXT] [--ttl SECONDS]",
	  .spec = { propose_profile_opts, 1, 1 } },
	{ .name = "policy-set", .run = cli_propose_policy_set,
	  .summary = "propose a new authorization policy (SetPolicy); approvers see its diff",
	  .usage = "FILE [--base-version N] [--description TEXT] [--ttl SECONDS]",
	  .spec = { propose_policy_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_propose_cmd = {
	.name = "propose",
	.summary = "submit a call for approvals (AdminService/Propose)",
	.usage = "keys|mfa-reset|ca-create|profile-set|policy-set ARGS",
	.sub = propose_cmds,
};

static const struct cli_cmd keys_lifecycle_cmds[] = {
	{ .name = "disable", .run = cmd_keys_disable,
	  .summary = "refuse every use of a key or of one version (DisableKey)",
	  .usage = "NAME [--version V] [--otp CODE]", .spec = { lc_opts, 1, 1 } },
	{ .name = "enable", .run = cmd_keys_enable,
	  .summary = "undo a disable (EnableKey)",
	  .usage = "NAME [--version V] [--otp CODE]", .spec = { lc_opts, 1, 1 } },
	{ .name = "schedule-destruction", .run = cmd_keys_schedule,
	  .summary = "destroy a key or version N days from now (ScheduleKeyDestruction)",
	  .usage = "NAME [--version V] --days N [--otp CODE]", .spec = { sched_opts, 1, 1 } },
	{ .name = "cancel-destruction", .run = cmd_keys_cancel,
	  .summary = "cancel a scheduled destruction; leaves it disabled (CancelKeyDestruction)",
	  .usage = "NAME [--version V] [--otp CODE]", .spec = { lc_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_keys_lifecycle_cmd = {
	.name = "keys",
	.summary = "key lifecycle (boltseal.v1.KeyService)",
	.usage = "COMMAND [ARGS]",
	.sub = keys_lifecycle_cmds,
};
