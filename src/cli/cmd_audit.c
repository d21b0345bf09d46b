/*
 * cmd_audit.c - `boltseal audit ...`: commands on the daemon's audit log.
 * `audit bundle` and `audit verify-bundle` are in cmd_evidence.c.
 * `audit verify` checks a copy of an audit directory offline (no server,
 * no connection settings) with audit_verify_dir, against a verifier key
 * that comes from OUTSIDE the directory: --vkey, --vkey-file (refused when
 * it resolves into the directory), or the directory's vkey only when a
 * pinned checkpoint (--checkpoint, kept off the host since an earlier
 * audit) vouches for it. See docs/cli.md and docs/audit.md.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_verify.h"
#include "audit/checkpoint.h"
#include "cli/cli.h"
#include "cli/evidence_cmd.h"
#include "cli/input.h"
#include "cli/output.h"
#include "common/hex.h"
#include "formats/signed_note.h"

#define MAX_FINDINGS 2

/* One reason the verification failed: "FAILED at WHERE: WHY". */
struct finding {
	char where[64];
	char why[700];
};

/* What the trusted key is and where it came from. */
struct trust {
	struct note_verifier v[AUDIT_VERIFY_MAX_KEYS];  /* v[0] the first given */
	size_t nv;
	uint8_t *pinned;        /* the --checkpoint note, or NULL (malloc'd) */
	size_t pinned_len;
	int from_dir;           /* v is AUDITDIR/vkey, vouched for by the pinned checkpoint */
};

/*
 * A file given as the source of trust must not be inside dir. Returns 0,
 * or CLI_EXIT_USAGE with the error printed.
 */
static int
refuse_inside(struct cli_ctx *x, const char *dir, const char *opt, const char *path)
{
	char msg[400];
	int r = audit_verify_path_inside(dir, path, msg, sizeof(msg));

	if (r == 0)
		return 0;
	if (r == 1)
		return out_usage(x->cmd, "%s %s is inside AUDITDIR %s (or is its vkey): the trusted "
		    "key must come from outside the directory it checks (a copy kept off the host)",
		    opt, path, dir);
	return out_usage(x->cmd, "%s: %s", opt, msg);
}

/* Reads a vkey file (or "-") into *v. 0 or CLI_EXIT_USAGE with the error printed. */
static int
read_vkey_file(struct cli_ctx *x, const char *what, const char *path, struct note_verifier *v)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = 0;

	if (input_read_file(x->cmd, path, NOTE_VKEY_PARSE_MAX + 2, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if (audit_verify_vkey_parse(buf, len, v) != 0)
		ret = out_usage(x->cmd, "%s %s is not a valid Ed25519 verifier key "
		    "(NAME+HASH+BASE64)", what, path);
	free(buf);
	return ret;
}

/*
 * Establishes the trusted key from the options (see the top of the file).
 * Returns 0; CLI_EXIT_USAGE (printed); or CLI_EXIT_NEGATIVE with *f filled
 * when AUDITDIR/vkey did not sign the pinned checkpoint (a finding).
 */
static int
load_trust(struct cli_ctx *x, const struct args *a, const char *dir, struct trust *t,
    struct finding *f)
{
	const char *vk = a->nmulti > 0 ? a->multi[0] : NULL, *vkf = args_get(a, "vkey-file");
	const char *cpf = args_get(a, "checkpoint");
	char path[PATH_MAX], msg[600], id[BS_HEX_LEN(NOTE_KEY_ID_LEN)];
	uint8_t root[MERKLE_HASH_LEN];
	uint64_t size;
	int r;

	if (vk == NULL && vkf == NULL && cpf == NULL)
		return out_usage(x->cmd, "a trusted verifier key is required, from outside AUDITDIR: "
		    "--vkey 'NAME+HASH+BASE64' or --vkey-file FILE (a copy kept off the host), "
		    "and/or --checkpoint FILE (a checkpoint saved at an earlier audit); AUDITDIR/vkey "
		    "is never trusted on its own");
	if (vk != NULL && vkf != NULL)
		return out_usage(x->cmd, "give at most one of --vkey, --vkey-file");
	if (vkf != NULL && (r = refuse_inside(x, dir, "--vkey-file", vkf)) != 0)
		return r;
	if (cpf != NULL && (r = refuse_inside(x, dir, "--checkpoint", cpf)) != 0)
		return r;
	/* --vkey may be repeated: every version of a rotated audit key */
	if (a->nmulti > AUDIT_VERIFY_MAX_KEYS)
		return out_usage(x->cmd, "at most %d --vkey", AUDIT_VERIFY_MAX_KEYS);
	for (size_t i = 0; i < a->nmulti; i++) {
		if (note_vkey_parse(a->multi[i], &t->v[i]) != 0)
			return out_usage(x->cmd, "--vkey '%.80s' is not a valid Ed25519 verifier key "
			    "(NAME+HASH+BASE64)", a->multi[i]);
		t->nv++;
	}
	if (vkf != NULL) {
		if ((r = read_vkey_file(x, "--vkey-file", vkf, &t->v[0])) != 0)
			return r;
		t->nv = 1;
	}
	if (cpf == NULL)
		return 0;
	if (input_read_file(x->cmd, cpf, CHECKPOINT_NOTE_MAX, &t->pinned, &t->pinned_len) != 0)
		return CLI_EXIT_USAGE;
	if (vk != NULL || vkf != NULL) {
		/* two trusted inputs that disagree: the auditor's own mistake */
		if (audit_verify_checkpoint_open(t->pinned, t->pinned_len, t->v, t->nv, &size, root,
		    msg, sizeof(msg)) != 0)
			return out_usage(x->cmd, "--checkpoint %s is not a checkpoint signed by the "
			    "trusted key: %s", cpf, msg);
		return 0;
	}
	/* only the pinned checkpoint is trusted: AUDITDIR/vkey counts if it signed it */
	if ((size_t)snprintf(path, sizeof(path), "%s/vkey", dir) >= sizeof(path))
		return out_usage(x->cmd, "--dir: path too long");
	if ((r = read_vkey_file(x, "--checkpoint without --vkey needs", path, &t->v[0])) != 0)
		return r;
	t->nv = 1;
	r = audit_verify_checkpoint_open(t->pinned, t->pinned_len, t->v, 1, &size, root, msg,
	    sizeof(msg));
	if (r != 0 && r != BS_ERR_NOT_FOUND && r != BS_ERR_SIG_INVALID)
		return out_usage(x->cmd, "--checkpoint %s is not a checkpoint note: %s", cpf, msg);
	if (r != 0) {
		bs_hex_encode(t->v[0].key_id, NOTE_KEY_ID_LEN, id);
		snprintf(f->where, sizeof(f->where), "vkey");
		snprintf(f->why, sizeof(f->why), "AUDITDIR/vkey (%s+%s) did not sign the pinned "
		    "checkpoint %s (%.300s): the key next to the log was replaced, or the checkpoint "
		    "is from another log", t->v[0].name, id, cpf, msg);
		return CLI_EXIT_NEGATIVE;
	}
	t->from_dir = 1;
	return 0;
}

/* Prints the verdict: one JSON object, or one line per finding. */
static void
print_report(struct cli_ctx *x, const struct audit_verify_report *rep, const struct finding *f,
    size_t nf, uint64_t allowed)
{
	char msg[MAX_FINDINGS * (sizeof(f->where) + sizeof(f->why) + 4)];
	struct out_json j;
	int ok = nf == 0;
	size_t k, used = 0;

	msg[0] = '\0';
	for (k = 0; k < nf; k++)
		used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s: %s",
		    k > 0 ? "; " : "", f[k].where, f[k].why);
	if (x->json) {
		/* the location is in "error" (docs/cli.md) */
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "ok", ok);
		out_json_uint(&j, "records", rep->records);
		out_json_uint(&j, "checkpoints", rep->checkpoints);
		out_json_uint(&j, "covered", rep->covered);
		out_json_uint(&j, "uncovered", rep->uncovered);
		if (rep->first_bad_record >= 0)
			out_json_int(&j, "first_bad_record", rep->first_bad_record);
		else
			out_json_null(&j, "first_bad_record");
		if (ok)
			out_json_null(&j, "error");
		else
			out_json_str(&j, "error", msg);
		out_json_close(&j);
		return;
	}
	if (ok) {
		printf("audit verify: OK: %" PRIu64 " records, %zu checkpoints, latest checkpoint "
		    "covers %" PRIu64, rep->records, rep->checkpoints, rep->covered);
		if (rep->pinned)
			printf(", the log extends the pinned checkpoint %" PRIu64, rep->pinned_size);
		putchar('\n');
		if (rep->uncovered > 0)
			out_err(x->cmd, "warning: %" PRIu64 " records after the last checkpoint are not "
			    "covered by a signature (records %" PRIu64 " to %" PRIu64 ", accepted by "
			    "--allow-tail %" PRIu64 "): only the hash chain protects them, and anyone "
			    "who can write the file can recompute it", rep->uncovered, rep->covered,
			    rep->records - 1, allowed);
		return;
	}
	for (k = 0; k < nf; k++) {
		printf("audit verify: FAILED at %s: ", f[k].where);
		out_safe(stdout, f[k].why);
		putchar('\n');
	}
}

/*
 * `audit verify`: verifies DIR/audit.jsonl and DIR/checkpoints against the
 * trusted key. Exit 0 valid (every record covered by a checkpoint, or at
 * most --allow-tail records after the last one), 1 verification failed (the
 * first bad record or checkpoint is named; an uncovered tail; AUDITDIR/vkey
 * is not the trusted key), 2 usage error or unreadable input.
 */
static int
cmd_verify(struct cli_ctx *x, const struct args *a)
{
	const char *dir = args_get(a, "dir"), *allow = args_get(a, "allow-tail");
	struct audit_verify_report rep;
	struct audit_verify_opts o;
	struct finding f[MAX_FINDINGS];
	struct trust t;
	unsigned long n = 0;
	size_t nf = 0;
	char msg[400];
	int ret, r;

	memset(&t, 0, sizeof(t));
	memset(&o, 0, sizeof(o));
	memset(&rep, 0, sizeof(rep));
	rep.first_bad_record = -1;
	if (dir == NULL || dir[0] == '\0')
		return out_usage(x->cmd, "--dir AUDITDIR is required");
	if (allow != NULL && args_uint(allow, 0, ULONG_MAX, &n) != 0)
		return out_usage(x->cmd, "--allow-tail: '%s' is not a number of records", allow);
	ret = load_trust(x, a, dir, &t, &f[0]);
	if (ret == CLI_EXIT_NEGATIVE) {
		print_report(x, &rep, f, 1, n);
		goto out;
	}
	if (ret != 0)
		goto out;
	o.max_uncovered = n;
	o.pinned = t.pinned;
	o.pinned_len = t.pinned_len;
	if (audit_verify_dir(dir, t.v, t.nv, &o, &rep) != 0) {
		out_err(x->cmd, "cannot verify: %s", rep.error);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if (!rep.ok) {
		if (rep.first_bad_record >= 0)
			snprintf(f[nf].where, sizeof(f[nf].where), "record %" PRId64,
			    rep.first_bad_record);
		else
			snprintf(f[nf].where, sizeof(f[nf].where), "checkpoint %" PRIu64,
			    rep.bad_checkpoint);
		snprintf(f[nf].why, sizeof(f[nf].why), "%s", rep.error);
		if (rep.tail_refused)
			snprintf(f[nf].why + strlen(f[nf].why), sizeof(f[nf].why) - strlen(f[nf].why),
			    "; --allow-tail %" PRIu64 " accepts them", rep.uncovered);
		nf++;
	}
	/* the copy of the key next to the log must be the trusted key */
	if (!t.from_dir) {
		r = audit_verify_dir_vkey(dir, t.v, t.nv, msg, sizeof(msg));
		if (r == BS_ERR_MISMATCH || r == BS_ERR_INVALID) {
			snprintf(f[nf].where, sizeof(f[nf].where), "vkey");
			snprintf(f[nf].why, sizeof(f[nf].why), "%s: the key file next to the log was "
			    "replaced (or the audit key changed since the trusted key was saved)", msg);
			nf++;
		}
	}
	print_report(x, &rep, f, nf, n);
	ret = nf == 0 ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
out:
	free(t.pinned);
	return ret;
}

static const struct args_opt verify_opts[] = {
	{ "dir", 0, ARGS_VALUE }, { "vkey", 0, ARGS_MULTI }, { "vkey-file", 0, ARGS_VALUE },
	{ "checkpoint", 0, ARGS_VALUE }, { "allow-tail", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct cli_cmd audit_cmds[] = {
	{ .name = "verify", .run = cmd_verify, .offline = 1,
	  .summary = "check a copy of the audit log and its checkpoints offline (no server), "
	      "against a verifier key kept off the host",
	  .usage = "--dir AUDITDIR (--vkey VKEY... | --vkey-file FILE) [--checkpoint FILE]\n"
	      "[--allow-tail N]\n"
	      "or: --dir AUDITDIR --checkpoint FILE [--allow-tail N]\n"
	      "(AUDITDIR/vkey is trusted only if it signed the pinned --checkpoint)",
	  .spec = { verify_opts, 0, 0 } },
	{ .name = "bundle", .run = cli_audit_bundle,
	  .summary = "write an evidence bundle: the records of a time window with inclusion "
	      "proofs, the signed checkpoint, certificates, CRLs and public keys",
	  .usage = "--from TIME --to TIME [--vehicle ID] --out FILE.tar [--wait SECONDS]\n"
	      "(TIME: UTC YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.mmmZ)",
	  .spec = { cli_audit_bundle_opts, 0, 0 } },
	{ .name = "verify-bundle", .run = cli_audit_verify_bundle, .offline = 1,
	  .summary = "check an evidence bundle offline against the log's verifier key",
	  .usage = "[--vkey VKEY... | --vkey-file FILE] BUNDLE.tar\n"
	      "(without a key the bundle's own vkey is used, with a warning)",
	  .spec = { cli_audit_verify_bundle_opts, 1, 1 } },
	{ .name = "explain", .run = cli_audit_explain,
	  .summary = "why request ID was refused or failed: its audit records (the caller is only "
	      "told \"permission denied (request id ID ...)\")",
	  .usage = "ID [--max-scan N]  (the newest N records are searched, default 1000000)",
	  .spec = { cli_audit_explain_opts, 1, 1 } },
	{ .name = NULL },
};

const struct cli_cmd cli_audit_cmd = {
	.name = "audit",
	.summary = "the tamper-evident audit log",
	.usage = "COMMAND [ARGS]",
	.sub = audit_cmds,
};
