/*
 * config.h - boltsealed's configuration file: "key = value" lines, '#'
 * comments, blank lines ignored. Documented in docs/configuration.md and
 * etc/boltsealed.conf.example. Every error names its line.
 */
#ifndef BS_CONFIG_H
#define BS_CONFIG_H

#include <stddef.h>

#include "common/bs_error.h"

/*
 * One "<section>.<name> = value" line: a setting of a service's
 * configuration section (e.g. "echo.max_text = 64"). The configuration file
 * keeps them as written; the service registry checks them against what each
 * served service declares (rpc_registry_configure).
 */
struct config_setting {
	char *key;                  /* "echo.max_text" */
	char *value;                /* "64" */
	unsigned line;
};

struct bs_config {
	char *listen;               /* "127.0.0.1:7443" or "[::1]:7443" (required) */
	char *metrics_listen;       /* the Prometheus endpoint's address, or NULL: off */
	char *tls_cert;             /* server certificate chain, PEM (required) */
	char *tls_key;              /* server private key, PEM (required) */
	char *tls_client_ca;        /* CA bundle that client certs must chain to (required) */
	char *tls_crl;              /* CRL file or directory; revocation is always checked (required) */
	char *policy;               /* authorization policy file (required; docs/policy.md) */
	char *pkcs11_module;        /* .so path or p11-kit module name (required) */
	char *token_uri;            /* "pkcs11:token=..." (required) */
	char *pin_file;             /* user PIN file, mode 0600 or stricter */
	int pin_fd;                 /* or a file descriptor to read the PIN from; -1 = unset */
	char *state_dir;            /* catalog database lives here (required) */
	char *ca_crl_dir;           /* the CRLs of boltseal's own CAs are written here; NULL = not */
	char *log_level;            /* debug|info|warn|error, default info */
	unsigned workers;           /* HSM worker threads, default = online cores */
	unsigned queue_max;         /* waiting HSM jobs before RESOURCE_EXHAUSTED, default 1024 */
	unsigned max_message_bytes; /* request cap, default 4 MiB */
	unsigned max_concurrent_streams; /* per connection, default 100 */
	unsigned max_connections;   /* default 256 */
	unsigned max_header_list_bytes;  /* default 8192 */
	unsigned handshake_timeout_ms;   /* default 10000 */
	unsigned idle_timeout_ms;        /* default 300000 */
	unsigned max_startups;           /* connections still in the handshake, default 128 */
	unsigned max_startups_begin;     /* random early drop starts here, default 32 */
	unsigned max_startups_per_source;/* handshaking connections per address, default 16 */
	unsigned handshake_penalty_ms;   /* an address's dropped/timed-out handshake: refused so long */
	unsigned request_timeout_ms;     /* HEADERS to the end of the request, default 30000 */
	unsigned max_buffered_request_bytes; /* request bytes held per connection, default 16 MiB */
	unsigned write_stall_timeout_ms; /* answers waiting on a peer that reads nothing, 30000 */
	unsigned max_connection_age_ms;  /* GOAWAY after this long, default 1 h; 0 = never */
	unsigned max_connection_age_grace_ms; /* then close after this, default 30000 */
	unsigned max_request_fields;     /* protobuf fields in one request, default 100000 */
	unsigned max_unknown_fields;     /* unknown fields in one request, default 64 */
	unsigned rate_limit_calls;       /* calls per second per principal, default 20000; 0 = off */
	unsigned rate_limit_audit_records; /* audit records per second per principal; 0 = off */
	unsigned audit_uncovered_max;    /* records past the last checkpoint allowed at start */
	unsigned audit_preallocate;      /* 1: the log grows in chunks of written zeros (default 0) */
	char *user;                      /* started as root: run as this user after start-up */
	unsigned shutdown_grace_ms;      /* SIGTERM drain bound, default 10000 */
	unsigned sign_batch_max;         /* SignBatch items, default 1000 */
	unsigned audit;                  /* 1 (default) or 0: "off" is for benchmarks only */
	unsigned test_services;          /* 1: also serve test-only services (echo); default 0 */
	char *audit_origin;              /* checkpoint origin and note key name; NULL = default */
	char *audit_key;                 /* name of the audit signing key; NULL = default */
	unsigned audit_checkpoint_records;     /* checkpoint after this many records, default 1000 */
	unsigned audit_checkpoint_interval_ms; /* or this often when the log grew, default 10000 */
	unsigned audit_queue_max;        /* records waiting while the log cannot be written */
	struct config_setting *settings; /* service sections, in file order */
	size_t nsettings;
};

#define CONFIG_DEFAULT_AUDIT_ORIGIN "boltseal.local/audit"
#define CONFIG_DEFAULT_AUDIT_KEY "audit-log"

/* Fills defaults (workers from sysconf). */
void config_defaults(struct bs_config *c);

/*
 * Parses path into c (which config_defaults initialised). On any error
 * returns BS_ERR_CONFIG with every problem, one per line, as
 * "FILE:LINE: message" (or "FILE: message" for missing required keys) in
 * *errors (malloc'd, caller frees). BS_ERR_IO if the file cannot be read.
 */
int config_load(const char *path, struct bs_config *c, char **errors) BS_WUR;

/*
 * config_load on text instead of a file (for tests and fuzzing): name is
 * what errors call the file, dir the directory relative paths resolve
 * against; the file checks (regular file, size) are replaced by the 1 MiB
 * cap. text need not be NUL-terminated and is not kept.
 */
int config_parse(const char *name, const char *dir, const char *text, size_t len,
    struct bs_config *c, char **errors) BS_WUR;

/* Frees the strings in c. */
void config_clear(struct bs_config *c);

/*
 * Reads the PIN from c->pin_file (refused unless a regular file with no
 * group/other permission bits: BS_ERR_CONFIG) or c->pin_fd. Strips one
 * trailing newline. *pin (NUL-terminated) is on a page of its own, locked
 * in memory (mlock) and excluded from core dumps (MADV_DONTDUMP); a page
 * that cannot be locked is BS_ERR_NOMEM. Free it with config_free_pin.
 */
int config_read_pin(const struct bs_config *c, char **pin, size_t *pin_len, char *err,
    size_t errlen) BS_WUR;

/* Wipes, unlocks and frees a PIN from config_read_pin. NULL is a no-op. */
void config_free_pin(char *pin, size_t pin_len);

#endif
