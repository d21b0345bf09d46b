/*
 * policy.h - boltseal's authorization policy: which client certificate is
 * which principal, and what each principal may do.
 *
 * A policy file (format in docs/policy.md, example in etc/policy.example)
 * declares principals (matched by exact URI SAN, URI prefix or pinned leaf
 * certificate SHA-256) and roles (lists of grants: methods x key globs x
 * purposes x conditions). Evaluation is deny by default: a call is allowed
 * only when some grant of some role of the principal matches it completely.
 *
 * The module is pure: it reads the file in policy_load and does no other
 * I/O. A loaded policy is immutable, so one struct policy may be shared
 * read-only by any number of threads; every function below only reads it.
 */
#ifndef BS_POLICY_H
#define BS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define POLICY_REASON_MAX 512   /* bytes of a deny reason, NUL included */
#define POLICY_ID_MAX 64        /* bytes of a principal id or role name */
#define POLICY_ATTR_MAX 128     /* bytes of an attribute name */

struct policy;                  /* opaque, immutable after load */
struct policy_principal;        /* owned by the policy; valid until policy_free */

/* One caller-supplied attribute; both strings borrowed for the call. */
struct policy_attr {
	const char *name;       /* e.g. "key.algorithm", "request.format" */
	const char *value;      /* NULL = the attribute is absent */
};

/* One call to authorize; every pointer is borrowed for the call only. */
struct policy_request {
	const char *method;         /* "boltseal.v1.KeyService/Sign" (no leading '/') */
	const char *key;            /* key name or NULL when the call names no key */
	const char *key_purpose;    /* purpose name when key != NULL */
	const struct policy_attr *attrs;
	size_t nattrs;
};

/* The names a policy may use; borrowed during policy_load only. */
struct policy_schema {
	const char *const *methods;     /* every known full method name */
	size_t nmethods;
	const char *const *purposes;    /* every known key purpose */
	size_t npurposes;
};

/*
 * Reads and checks the policy file at path against schema. On success
 * returns 0 and sets *out (free with policy_free). Errors:
 *   BS_ERR_CONFIG  the file is wrong: not a regular file, writable by group
 *                  or others, owned by someone other than the caller or
 *                  root, over 1 MiB, or any syntax/semantic error. err holds
 *                  every problem, one per line ("PATH:LINE: message", or
 *                  "PATH: message" for file-level problems), lines separated
 *                  by '\n' (no trailing newline), in line order, truncated
 *                  at a line boundary if errlen is too small.
 *   BS_ERR_IO      the file cannot be opened or read (err says why).
 *   BS_ERR_NOMEM   allocation failed.
 *   BS_ERR_INVALID a NULL argument.
 * err may be NULL when errlen is 0. *out is untouched on failure.
 */
int policy_load(const char *path, const struct policy_schema *schema, struct policy **out,
    char *err, size_t errlen) BS_WUR;

/* Frees p and everything in it (principals included). NULL is a no-op. */
void policy_free(struct policy *p);

/*
 * Maps a verified client certificate to its principal: a cert-sha256 match
 * wins over an exact uri match, which wins over the longest matching
 * uri-prefix. uri (the certificate's URI SAN) may be NULL; cert_sha256 (the
 * SHA-256 of the leaf certificate's DER) may be NULL. Returns a pointer
 * owned by p, or NULL when nothing matches (the caller refuses the call).
 */
const struct policy_principal *policy_map(const struct policy *p, const char *uri,
    const uint8_t cert_sha256[32]);

/* The principal's id; owned by the policy. "" for NULL. */
const char *policy_principal_id(const struct policy_principal *pr);

/*
 * Writes the principal's roles, comma separated ("ci-signer,auditor"), into
 * buf (always NUL-terminated when buflen > 0; truncated with "..." if it
 * does not fit).
 */
void policy_principal_roles(const struct policy_principal *pr, char *buf, size_t buflen);

/*
 * Decides one call. caller_uri (borrowed, may be NULL) is the certificate's
 * URI SAN, exposed to conditions as principal.uri. Returns 1 if allowed,
 * 0 if denied; on denial reason (POLICY_REASON_MAX bytes, caller-owned)
 * holds a precise explanation for the audit log (never for the client).
 * reason is left as "" when allowed. NULL p, pr, req or req->method deny.
 * pr must come from policy_map() on the same p; reason must not be NULL.
 *
 * Attributes seen by conditions: the built-ins principal.id, principal.uri,
 * key.name and key.purpose (these cannot be overridden), then req->attrs in
 * order (the first entry of a name wins).
 */
int policy_authorize(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, char reason[POLICY_REASON_MAX]);

/*
 * 1 if any grant of any role of pr names method (exactly or through a
 * whole-service wildcard), regardless of keys, purposes and conditions: a
 * cheap pre-check before the request body is decoded. 0 otherwise (also for
 * NULL arguments).
 */
int policy_may_call(const struct policy *p, const struct policy_principal *pr,
    const char *method);

/* Number of principals in p (0 for NULL). */
size_t policy_principal_count(const struct policy *p);

#endif
