/*
 * policy.h - boltseal's authorization policy: which client certificate is
 * which principal, and what each principal may do.
 *
 * A policy file (format in docs/policy.md, example in etc/policy.example)
 * declares principals (matched by exact URI SAN, URI prefix or pinned leaf
 * certificate SHA-256) and roles (lists of grants: methods x key globs x
 * purposes x conditions, optionally requiring a second factor or M-of-N
 * approvals). Evaluation is deny by default: a call is allowed only when
 * some grant of some role of the principal matches it completely.
 *
 * The module is pure: policy_load reads the file and hands its text to
 * policy_parse, which takes a policy from any buffer (a file, a database
 * row); nothing else does I/O. A loaded policy is immutable, so one struct
 * policy may be shared read-only by any number of threads; every function
 * below except policy_parse, policy_load and policy_free only reads it.
 *
 * Files: policy_parse.c (text -> struct policy), policy_load.c (the file
 * checks), policy_map.c (certificate -> principal), policy_eval.c
 * (decisions), policy_msg.c (messages); policy_int.h is internal.
 */
#ifndef BS_POLICY_H
#define BS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/bs_error.h"

#define POLICY_REASON_MAX 512   /* bytes of a deny reason, NUL included */
#define POLICY_ID_MAX 64        /* bytes of a principal id or role name */
#define POLICY_ATTR_MAX 128     /* bytes of an attribute name */
#define POLICY_APPROVALS_MAX 16 /* largest N of 'require approvals N' */

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
	/*
	 * NULL, or an attribute only grants with a condition on it may allow
	 * the call: a command to a vehicle that is not active counts only
	 * grants that test vehicle.status (docs/policy.md).
	 */
	const char *tested_attr;
};

/* The names a policy may use; borrowed during policy_load only. */
struct policy_schema {
	const char *const *methods;     /* every known full method name */
	size_t nmethods;
	const char *const *purposes;    /* every known key purpose */
	size_t npurposes;
};

/* What policy_evaluate decided. */
enum policy_decision {
	POLICY_DENY = 0,                /* no grant matches: refuse */
	POLICY_ALLOW = 1,               /* a grant without requirements matches */
	POLICY_NEEDS_SECOND_FACTOR = 2, /* only grants with 'require mfa' match */
	POLICY_NEEDS_APPROVALS = 3,     /* only grants with 'require approvals N' match */
};

/* A decision and what it rests on; caller-owned. */
struct policy_verdict {
	enum policy_decision decision;
	unsigned approvals;             /* M, for POLICY_NEEDS_APPROVALS; 0 otherwise */
	int mfa;                        /* POLICY_NEEDS_APPROVALS: the grant also requires mfa */
	char approver_role[POLICY_ID_MAX]; /* POLICY_NEEDS_APPROVALS: whose members approve */
	char reason[POLICY_REASON_MAX]; /* precise, for the audit log; "" when allowed */
};

/*
 * Parses and checks the policy text (len bytes at text, not necessarily
 * NUL-terminated, at most 1 MiB) against schema. name labels the text in
 * messages (a path, "db:policy/7", ...). On success returns 0 and sets *out
 * (free with policy_free). Errors:
 *   BS_ERR_CONFIG  the text is longer than 1 MiB, or any syntax/semantic
 *                  error. err holds every problem, one per line
 *                  ("NAME:LINE: message", or "NAME: message" for problems
 *                  with the text as a whole), lines separated by '\n' (no
 *                  trailing newline), in line order, truncated at a line
 *                  boundary if errlen is too small.
 *   BS_ERR_NOMEM   allocation failed ("NAME: out of memory").
 *   BS_ERR_INVALID a NULL argument.
 * err may be NULL when errlen is 0. *out is untouched on failure. All
 * arguments are borrowed for the call only.
 */
int policy_parse(const char *name, const char *text, size_t len,
    const struct policy_schema *schema, struct policy **out, char *err, size_t errlen) BS_WUR;

/*
 * Reads and checks the policy file at path against schema (the file checks
 * below, then policy_parse with path as the name). On success
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

/*
 * policy_load that also hands back the file's text as read (*text, NUL
 * terminated, *len bytes; the caller frees it) on success, so that the text
 * that was checked is the text that is kept (policy versions).
 */
int policy_load_text(const char *path, const struct policy_schema *schema, struct policy **out,
    char **text, size_t *len, char *err, size_t errlen) BS_WUR;

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
 * Decides one call into *v (caller-owned) and returns v->decision.
 * caller_uri (borrowed, may be NULL) is the certificate's URI SAN, exposed
 * to conditions as principal.uri. pr must come from policy_map() on the
 * same p. A grant "matches" when it names the method and its keys,
 * purposes and conditions all hold. Then:
 *   - some matching grant has no requirement: POLICY_ALLOW, reason "";
 *   - otherwise, some matching grant has requirements: the weakest of them
 *     (file order breaks ties): 'require mfa' alone gives
 *     POLICY_NEEDS_SECOND_FACTOR; 'require approvals N' (with or without
 *     'require mfa') gives POLICY_NEEDS_APPROVALS with v->approvals = N,
 *     the smallest N winning and, for equal N, a grant without mfa; reason
 *     names the grant and what it requires;
 *   - otherwise POLICY_DENY, reason says why (the first grant naming the
 *     method and its first failed check, or that no grant names it).
 * v->approvals is 0 unless the decision is POLICY_NEEDS_APPROVALS. NULL p,
 * pr, req or req->method deny; a NULL v returns POLICY_DENY.
 *
 * Attributes seen by conditions: the built-ins principal.id, principal.uri,
 * key.name and key.purpose (these cannot be overridden), then req->attrs in
 * order (the first entry of a name wins).
 */
int policy_evaluate(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, struct policy_verdict *v);

/*
 * policy_evaluate reduced to yes or no, for callers that cannot ask for a
 * second factor or approvals: returns 1 only for POLICY_ALLOW, 0 otherwise
 * (so a grant with requirements never allows here). On 0, reason
 * (POLICY_REASON_MAX bytes, caller-owned) holds the verdict's precise
 * explanation for the audit log (never for the client), e.g. "role r grant
 * at policy line 7 requires a second factor"; it is "" when allowed.
 * reason must not be NULL.
 */
int policy_authorize(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, char reason[POLICY_REASON_MAX]);

/*
 * 1 if any grant of any role of pr names method (exactly or through a
 * whole-service wildcard), regardless of keys, purposes, conditions and
 * requirements: a cheap pre-check before the request body is decoded. 0 otherwise (also for
 * NULL arguments).
 */
int policy_may_call(const struct policy *p, const struct policy_principal *pr,
    const char *method);

/*
 * 1 if the principal called id exists in p and one of its roles is role
 * (approvers are judged so, against the policy in force when an approved
 * call runs); 0 otherwise (also for NULL arguments).
 */
int policy_principal_has_role(const struct policy *p, const char *id, const char *role);

/* Number of principals in p (0 for NULL). */
size_t policy_principal_count(const struct policy *p);

/*
 * 1 if some grant of pr's roles that names method has a condition on an
 * attribute whose name starts with prefix ("vehicle."), on either side;
 * 0 if none does, so that a service may skip gathering those attributes
 * (absent attributes can only make conditions false). NULL arguments: 1.
 */
int policy_method_tests(const struct policy *p, const struct policy_principal *pr,
    const char *method, const char *prefix);

/*
 * Warnings about a valid policy that is probably not what its author meant:
 * a uri-prefix that does not end with '/' ('spiffe://fleet.example/gw' also
 * matches 'spiffe://fleet.example/gwevil'). Writes one warning per line
 * (no trailing newline; cut with "..." when buf is full) and returns how
 * many there are (0: nothing to say). buf may be NULL when buflen is 0.
 */
size_t policy_lint(const struct policy *p, char *buf, size_t buflen);

#endif
