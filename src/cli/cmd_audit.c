/*
 * cmd_audit.c - `boltseal audit ...`: commands on the daemon's audit log.
 * `audit verify` checks a copy of an audit directory offline (no server,
 * no connection settings) with audit_verify_dir. See docs/cli.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_verify.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "formats/signed_note.h"

/*
 * Reads the verifier key: --vkey, else the contents of --vkey-file, else of
 * DIR/vkey (one trailing newline allowed), and parses it into *v. Returns
 * 0 or CLI_EXIT_USAGE with the error printed.
 */
static int
load_vkey(struct cli_ctx *x, const struct args *a, const char *dir, struct note_verifier *v)
{
	const char *vk = args_get(a, "vkey"), *vkf = args_get(a, "vkey-file");
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[4096];
	int ret = CLI_EXIT_USAGE;

	if (vk != NULL && vkf != NULL)
		return out_usage(x->cmd, "give at most one of --vkey, --vkey-file");
	if (vk == NULL) {
		if (vkf == NULL) {
			if ((size_t)snprintf(path, sizeof(path), "%s/vkey", dir) >= sizeof(path))
				return out_usage(x->cmd, "--dir: path too long");
			vkf = path;
		}
		if (input_read_file(x->cmd, vkf, NOTE_VKEY_PARSE_MAX + 2, &buf, &len) != 0)
			return CLI_EXIT_USAGE;
		/* the daemon writes the vkey followed by one newline */
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		if (memchr(buf, '\0', len) != NULL) {
			ret = out_usage(x->cmd, "%s: not a verifier key", vkf);
			goto out;
		}
		vk = (const char *)buf;
	}
	if (note_vkey_parse(vk, v) != 0) {
		ret = out_usage(x->cmd, "%s is not a valid Ed25519 verifier key "
		    "(NAME+HASH+BASE64)", vkf != NULL ? vkf : "--vkey");
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* Prints the report: one JSON object with exactly five members, or one line. */
static void
print_report(struct cli_ctx *x, const struct audit_verify_report *rep)
{
	char where[64], msg[64 + sizeof(rep->error) + 2];
	struct out_json j;

	where[0] = '\0';
	if (!rep->ok && rep->first_bad_record >= 0)
		snprintf(where, sizeof(where), "record %lld", (long long)rep->first_bad_record);
	else if (!rep->ok)
		snprintf(where, sizeof(where), "checkpoint %llu",
		    (unsigned long long)rep->bad_checkpoint);
	if (x->json) {
		/* the location is in "error" (docs/cli.md) */
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "ok", rep->ok);
		out_json_uint(&j, "records", rep->records);
		out_json_uint(&j, "checkpoints", rep->checkpoints);
		if (rep->first_bad_record >= 0)
			out_json_int(&j, "first_bad_record", rep->first_bad_record);
		else
			out_json_null(&j, "first_bad_record");
		if (rep->ok) {
			out_json_null(&j, "error");
		} else {
			snprintf(msg, sizeof(msg), "%s: %s", where, rep->error);
			out_json_str(&j, "error", msg);
		}
		out_json_close(&j);
	} else if (rep->ok) {
		printf("audit verify: OK: %llu records, %zu checkpoints, latest checkpoint covers "
		    "%llu\n", (unsigned long long)rep->records, rep->checkpoints,
		    (unsigned long long)rep->latest_size);
		if (rep->latest_size < rep->records)
			out_err(x->cmd, "note: records %llu to %llu are not covered by a "
			    "checkpoint yet; only the hash chain protects them",
			    (unsigned long long)rep->latest_size,
			    (unsigned long long)rep->records - 1);
	} else {
		printf("audit verify: FAILED at %s: ", where);
		out_safe(stdout, rep->error);
		putchar('\n');
	}
}

/*
 * `audit verify`: verifies DIR/audit.jsonl and DIR/checkpoints against the
 * verifier key. Exit 0 valid, 1 verification failed (the first bad record
 * or checkpoint is named), 2 usage error or unreadable input.
 */
static int
cmd_verify(struct cli_ctx *x, const struct args *a)
{
	const char *dir = args_get(a, "dir");
	struct audit_verify_report rep;
	struct note_verifier v;
	int ret;

	if (dir == NULL || dir[0] == '\0')
		return out_usage(x->cmd, "--dir AUDITDIR is required");
	if ((ret = load_vkey(x, a, dir, &v)) != 0)
		return ret;
	if (audit_verify_dir(dir, &v, &rep) != 0) {
		out_err(x->cmd, "cannot verify: %s", rep.error);
		return CLI_EXIT_USAGE;
	}
	print_report(x, &rep);
	return rep.ok ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
}

static const struct args_opt verify_opts[] = {
	{ "dir", 0, ARGS_VALUE }, { "vkey", 0, ARGS_VALUE }, { "vkey-file", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct cli_cmd audit_cmds[] = {
	{ .name = "verify", .run = cmd_verify, .offline = 1,
	  .summary = "check a copy of the audit log and its checkpoints offline (no server)",
	  .usage = "--dir AUDITDIR [--vkey VKEY | --vkey-file FILE]\n"
	      "(default key file AUDITDIR/vkey)",
	  .spec = { verify_opts, 0, 0 } },
	{ .name = NULL },
};

const struct cli_cmd cli_audit_cmd = {
	.name = "audit",
	.summary = "the tamper-evident audit log",
	.usage = "COMMAND [ARGS]",
	.sub = audit_cmds,
};
