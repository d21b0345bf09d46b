/*
 * evidence_cmd.h - `boltseal audit bundle`, `audit verify-bundle` and `audit explain`
 * (cmd_evidence.c), entries of the `audit` group in cmd_audit.c.
 */
#ifndef BS_CLI_EVIDENCE_CMD_H
#define BS_CLI_EVIDENCE_CMD_H

#include "cli/cli.h"

/* Writes an evidence bundle of a time window (connects to the server). */
int cli_audit_bundle(struct cli_ctx *x, const struct args *a);
/* Verifies an evidence bundle offline; exit 0 valid, 1 not (the file named). */
int cli_audit_verify_bundle(struct cli_ctx *x, const struct args *a);

/* Prints the audit records of one request id (connects to the server). */
int cli_audit_explain(struct cli_ctx *x, const struct args *a);

extern const struct args_opt cli_audit_bundle_opts[];
extern const struct args_opt cli_audit_explain_opts[];
extern const struct args_opt cli_audit_verify_bundle_opts[];

#endif
