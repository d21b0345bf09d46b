/*
 * cli.h - what the parts of the `boltseal` CLI share: the context of one
 * run (settings, output mode, the connection), the row of the nested
 * command tables, the tables of each service (cmd_keys.c, cmd_audit.c,
 * cmd_health.c, cmd_ota.c, cmd_commands.c, cmd_vehicles.c, cmd_admin.c)
 * and of the console (console.c), call_unary (and call_unary_otp, with a
 * second-factor code), the one way a command calls the server, and
 * cli_load_spki, the one
 * reader of public-key files.
 */
#ifndef BS_CLI_CLI_H
#define BS_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "boltseal/client.h"
#include "cli/args.h"
#include "cli/settings.h"
#include "common/bs_error.h"

struct cli_ctx {
	struct cli_settings s;  /* resolved unless the command is offline */
	int json;               /* --json: one JSON object on stdout */
	const char *cmd;        /* the command words as typed ("keys sign", "sign"), for messages */
	bs_client *client;      /* connected by the first call_unary */
	const char *otp;        /* the global --otp (a second-factor code), or NULL */
};

/*
 * One row of a command table: a command (run != NULL) or a group of
 * commands (sub != NULL). Tables end with a row whose name is NULL.
 */
struct cli_cmd {
	const char *name;        /* the word on the command line */
	const char *alias;       /* a top-level spelling of the same command, or NULL */
	const char *summary;     /* one line for the help */
	const char *usage;       /* the arguments after the words; '\n' continues the line */
	int (*run)(struct cli_ctx *x, const struct args *a);
	const struct cli_cmd *sub;
	struct args_spec spec;   /* options and positional arguments of run */
	int offline;             /* needs no server: connection settings are not read */
};

/* The top-level rows of each service. */
extern const struct cli_cmd cli_keys_cmd;    /* group `keys` (boltseal.v1.KeyService) */
extern const struct cli_cmd cli_audit_cmd;   /* group `audit` (offline) */
extern const struct cli_cmd cli_health_cmd;  /* `health` (grpc.health.v1.Health) */
extern const struct cli_cmd cli_ota_cmd;     /* group `ota` (boltseal.v1.OtaService) */
extern const struct cli_cmd cli_commands_cmd;  /* group `commands` (boltseal.v1.CommandService;
                                                  `verify` offline) */
extern const struct cli_cmd cli_vehicles_cmd;  /* group `vehicles` (boltseal.v1.VehicleService) */
extern const struct cli_cmd cli_checkpoint_cmd;  /* group `checkpoint` (CheckpointService) */
extern const struct cli_cmd cli_envelope_cmd;  /* group `envelope` (EnvelopeService) */
/* cmd_admin.c: AdminService, and the key lifecycle commands that join `keys` */
extern const struct cli_cmd cli_mfa_cmd;        /* group `mfa` (the second factor) */
extern const struct cli_cmd cli_proposals_cmd;  /* group `proposals` (approvals) */
extern const struct cli_cmd cli_propose_cmd;    /* group `propose` (submit a proposal) */
extern const struct cli_cmd cli_keys_lifecycle_cmd;  /* more of group `keys`: disable, enable,
                                                        schedule-/cancel-destruction */
extern const struct cli_cmd cli_console_cmd;    /* `console` (console.c) */
extern const struct cli_cmd cli_policy_cmd;     /* group `policy` (cmd_policy.c) */
extern const struct cli_cmd cli_ca_cmd;         /* group `ca` (cmd_certs.c) */
extern const struct cli_cmd cli_telemetry_cmd;  /* group `telemetry` (cmd_telemetry.c) */

/*
 * cmd_admin.c, shared with cmd_policy.c. cli_call_sf: call_unary with the
 * second factor (see cmd_admin.c): CLI_SF_MAYBE sends a code only if given
 * and asks for one when the server wants it, CLI_SF_ALWAYS from the start;
 * a non-OK status is printed, and goes to *status and *msg (may be NULL;
 * *msg: the caller frees it). cli_approvals_hint: after a refusal for want
 * of approvals, prints how to propose the call (propose_cmd: the words
 * after the program name). cli_propose: submits msg as a proposal of
 * method (full name) with --description and --ttl and prints it.
 */
enum cli_sf_mode { CLI_SF_MAYBE, CLI_SF_ALWAYS };
int cli_call_sf(struct cli_ctx *x, const struct args *a, enum cli_sf_mode mode, const char *path,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **resp, int *status, char **msg) BS_WUR;
void cli_approvals_hint(struct cli_ctx *x, int status, const char *msg, const char *propose_cmd);
int cli_propose(struct cli_ctx *x, const struct args *a, const char *method,
    const ProtobufCMessage *msg) BS_WUR;

/*
 * cmd_policy.c: `propose policy-set` (a row of cmd_admin.c's table), and
 * what `proposals show` adds for a SetPolicy proposal: the diff from the
 * version it replaces to the proposed text (req: the request bytes whose
 * hash was checked). 0, or an exit status with the error printed.
 */
int cli_propose_policy_set(struct cli_ctx *x, const struct args *a);
/* cmd_certs.c: `propose ca-create` (a row of cmd_admin.c's table). */
int cli_propose_ca_create(struct cli_ctx *x, const struct args *a);
/* cmd_certs.c: `propose profile-set`. */
int cli_propose_profile_set(struct cli_ctx *x, const struct args *a);
int cli_policy_print_change(struct cli_ctx *x, const uint8_t *req, size_t len) BS_WUR;

/*
 * Calls path (e.g. "/boltseal.v1.KeyService/Sign") with req, connecting
 * first if needed, and unpacks the answer as rdesc. Returns 0 and *resp
 * (free with protobuf_c_message_free_unpacked), or CLI_EXIT_CONN /
 * CLI_EXIT_STATUS with the error printed under x->cmd.
 */
int call_unary(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp) BS_WUR;

/*
 * call_unary with the second-factor code otp (6-8 digits; NULL: none) in
 * the request metadata x-boltseal-otp. Unlike call_unary, a non-OK status
 * is not printed: it returns CLI_EXIT_STATUS with the status in *status and
 * the server's message in *msg (NULL if none; the caller frees it), so the
 * caller can ask for a code and try again. Connection errors are printed
 * and return CLI_EXIT_CONN.
 */
int call_unary_otp(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const char *otp, const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
    int *status, char **msg) BS_WUR;

/*
 * Reads the public-key file path (PEM "PUBLIC KEY" or DER
 * SubjectPublicKeyInfo; P-256 or Ed25519 only) into a DER
 * SubjectPublicKeyInfo in *der (*derlen bytes; the caller frees it with
 * OPENSSL_free). Returns 0, or CLI_EXIT_USAGE with the error printed under
 * x->cmd as a problem with --key (*der is then NULL).
 */
int cli_load_spki(struct cli_ctx *x, const char *path, uint8_t **der, size_t *derlen) BS_WUR;

#endif
