/*
 * output.c - the `boltseal` CLI's output: error lines, call outcomes and
 * exit statuses, the JSON writer and the key printer (see output.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"
#include "common/b64.h"
#include "rpc/rpc_status.h"
#include "types/types.h"

static void
vmsg(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", CLI_PROGNAME);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
out_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
}

int
out_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s %s%s--help'.\n", CLI_PROGNAME, cmd != NULL ? cmd : "",
	    cmd != NULL ? " " : "");
	return CLI_EXIT_USAGE;
}

void
out_safe(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

void
out_safe_text(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		fputc((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f ? '?' : *p, f);
}

char *
out_b64(const uint8_t *data, size_t len)
{
	char *out;

	if (len > INT_MAX / 2 || (out = malloc(BS_B64_ENCODED_LEN(len) + 1)) == NULL) {
		out_err(NULL, "out of memory");
		exit(CLI_EXIT_CONN);
	}
	bs_b64_encode(data, len, out);
	return out;
}

int
out_write_file(const char *cmd, const char *path, const uint8_t *data, size_t len)
{
	FILE *f;

	if (strcmp(path, "-") == 0)
		f = stdout;
	else if ((f = fopen(path, "wb")) == NULL) {
		out_err(cmd, "%s: %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if ((len > 0 && fwrite(data, 1, len, f) != len) || fflush(f) != 0) {
		out_err(cmd, "%s: write error", path);
		if (f != stdout)
			fclose(f);
		return CLI_EXIT_USAGE;
	}
	if (f != stdout && fclose(f) != 0) {
		out_err(cmd, "%s: %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* ---- call outcomes ------------------------------------------------------------------ */

void
out_status(const char *cmd, long item, int status, const char *msg)
{
	const char *id;

	fprintf(stderr, "%s: %s: ", CLI_PROGNAME, cmd);
	if (item >= 0)
		fprintf(stderr, "item %ld: ", item);
	fputs(grpc_status_name(status), stderr);
	if (msg != NULL && msg[0] != '\0') {
		fputs(": ", stderr);
		out_safe(stderr, msg);
	}
	fputc('\n', stderr);
	/* a denial names its request id: say how the reason is found */
	if (status == GRPC_STATUS_PERMISSION_DENIED && msg != NULL &&
	    (id = strstr(msg, "(request id ")) != NULL &&
	    strspn(id + 12, "0123456789abcdef") == 16)
		fprintf(stderr, "%s: %s: an auditor reads why with: %s audit explain %.16s\n",
		    CLI_PROGNAME, cmd, CLI_PROGNAME, id + 12);
}

int
out_call_status(const char *cmd, int rv, const struct bs_call_result *res)
{
	if (rv != 0) {
		out_err(cmd, "%s", res->grpc_message != NULL ? res->grpc_message :
		    rv == BS_CLIENT_ERR_TIMEOUT ? "timed out" : "connection failed");
		return CLI_EXIT_CONN;
	}
	if (res->grpc_status != 0) {
		out_status(cmd, -1, res->grpc_status, res->grpc_message);
		return CLI_EXIT_STATUS;
	}
	return 0;
}

/* ---- fields of text output ----------------------------------------------------------- */

void
out_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
}

void
out_field(const char *label, const char *s)
{
	printf("%-17s", label);
	out_safe(stdout, s != NULL ? s : "");
	putchar('\n');
}

void
out_field_time(const char *label, int64_t t)
{
	char tb[32];

	out_time(t, tb, sizeof(tb));
	out_field(label, tb);
}

void
out_text_block(const char *text)
{
	const char *p = text, *nl;
	char *one;
	size_t n;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if ((one = strndup(p, n)) == NULL)
			return;
		fputs("  ", stdout);
		out_safe(stdout, one);
		putchar('\n');
		free(one);
		p = nl != NULL ? nl + 1 : NULL;
	}
}

/* ---- enum names ------------------------------------------------------------------- */

const char *
out_alg(int pb)
{
	enum bs_alg a;

	if (bs_alg_from_pb(pb, &a) != 0)
		a = BS_ALG_NONE;
	return bs_alg_name(a);
}

const char *
out_purpose(int pb)
{
	enum bs_purpose p;

	if (bs_purpose_from_pb(pb, &p) != 0)
		p = BS_PURPOSE_NONE;
	return bs_purpose_name(p);
}

const char *
out_state(int pb)
{
	/* types.h maps states only towards the protobuf; look the value up that way */
	static const enum bs_key_state states[] = { BS_KEY_ENABLED, BS_KEY_DISABLED,
		BS_KEY_PENDING_DESTRUCTION, BS_KEY_DESTROYED };
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (bs_key_state_to_pb(states[i]) == pb)
			return bs_key_state_name(states[i]);
	return bs_key_state_name(BS_KEY_STATE_NONE);
}

/* ---- JSON ------------------------------------------------------------------------- */

static void
json_string(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				printf("\\u%04x", *p);
			else
				putchar(*p);
			break;
		}
	}
	putchar('"');
}

/* Writes the separator and the member name that come before a value. */
static void
json_member(struct out_json *j, const char *name)
{
	if (j->depth > 0) {
		if (j->more[j->depth - 1])
			putchar(',');
		j->more[j->depth - 1] = 1;
	}
	if (name != NULL) {
		json_string(name);
		putchar(':');
	}
}

static void
json_open(struct out_json *j, const char *name, char open, char close)
{
	json_member(j, name);
	putchar(open);
	if (j->depth >= OUT_JSON_DEPTH) {
		out_err(NULL, "internal error: JSON nested too deeply");
		exit(CLI_EXIT_CONN);
	}
	j->closer[j->depth] = close;
	j->more[j->depth] = 0;
	j->depth++;
}

void
out_json_init(struct out_json *j)
{
	memset(j, 0, sizeof(*j));
}

void
out_json_object(struct out_json *j, const char *name)
{
	json_open(j, name, '{', '}');
}

void
out_json_array(struct out_json *j, const char *name)
{
	json_open(j, name, '[', ']');
}

void
out_json_close(struct out_json *j)
{
	if (j->depth == 0)
		return;
	j->depth--;
	putchar(j->closer[j->depth]);
	if (j->depth == 0)
		putchar('\n');
}

void
out_json_str(struct out_json *j, const char *name, const char *s)
{
	json_member(j, name);
	json_string(s != NULL ? s : "");
}

void
out_json_uint(struct out_json *j, const char *name, unsigned long long v)
{
	json_member(j, name);
	printf("%llu", v);
}

void
out_json_int(struct out_json *j, const char *name, long long v)
{
	json_member(j, name);
	printf("%lld", v);
}

void
out_json_bool(struct out_json *j, const char *name, int v)
{
	json_member(j, name);
	fputs(v ? "true" : "false", stdout);
}

void
out_json_null(struct out_json *j, const char *name)
{
	json_member(j, name);
	fputs("null", stdout);
}

void
out_json_b64(struct out_json *j, const char *name, const uint8_t *data, size_t len)
{
	char *b = out_b64(data, len);

	out_json_str(j, name, b);
	free(b);
}

/* ---- keys --------------------------------------------------------------------------- */

void
out_json_key(struct out_json *j, const char *name, const Boltseal__V1__Key *k)
{
	size_t i;

	if (k == NULL) {
		out_json_null(j, name);
		return;
	}
	out_json_object(j, name);
	out_json_str(j, "name", k->name);
	out_json_str(j, "algorithm", out_alg(k->algorithm));
	out_json_str(j, "purpose", out_purpose(k->purpose));
	out_json_str(j, "state", out_state(k->state));
	out_json_uint(j, "primary_version", k->primary_version);
	out_json_int(j, "create_time_unix", k->create_time_unix);
	if (k->min_decryption_version != 0)
		out_json_uint(j, "min_decryption_version", k->min_decryption_version);
	out_json_array(j, "versions");
	for (i = 0; i < k->n_versions; i++) {
		const Boltseal__V1__KeyVersion *v = k->versions[i];

		out_json_object(j, NULL);
		out_json_uint(j, "version", v->version);
		out_json_str(j, "state", out_state(v->state));
		out_json_int(j, "create_time_unix", v->create_time_unix);
		out_json_close(j);
	}
	out_json_close(j);
	out_json_close(j);
}

void
out_key_text(const Boltseal__V1__Key *k)
{
	char tb[32];
	size_t i;

	if (k == NULL) {
		printf("(no key in response)\n");
		return;
	}
	out_time(k->create_time_unix, tb, sizeof(tb));
	fputs("name:            ", stdout);
	out_safe(stdout, k->name);
	printf("\nalgorithm:       %s\npurpose:         %s\nstate:           %s\n"
	    "primary version: %u\ncreated:         %s\nversions:\n",
	    out_alg(k->algorithm), out_purpose(k->purpose), out_state(k->state),
	    k->primary_version, tb);
	if (k->min_decryption_version != 0)
		printf("min decryption:  %u (older versions no longer decrypt)\n",
		    k->min_decryption_version);
	for (i = 0; i < k->n_versions; i++) {
		const Boltseal__V1__KeyVersion *v = k->versions[i];

		out_time(v->create_time_unix, tb, sizeof(tb));
		printf("  %-6u %-9s %s\n", v->version, out_state(v->state), tb);
	}
}

void
out_key(int json, const Boltseal__V1__Key *k)
{
	struct out_json j;

	if (!json) {
		out_key_text(k);
		return;
	}
	out_json_init(&j);
	out_json_object(&j, NULL);
	out_json_key(&j, "key", k);
	out_json_close(&j);
}
