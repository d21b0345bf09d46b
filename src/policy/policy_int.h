/*
 * policy_int.h - internals of the policy module, shared by its files and
 * by nothing else: the layout of a loaded policy (built by policy_parse.c,
 * read by policy_map.c and policy_eval.c) and the message helpers of
 * policy_msg.c (quoted values, bounded deny reasons). The "NAME:LINE:
 * message" error list is common/errlist.h. The public API is policy.h.
 */
#ifndef BS_POLICY_INT_H
#define BS_POLICY_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define POLICY_TEXT_MAX (1024 * 1024)   /* bytes of a policy text (file or buffer) */
#define POLICY_SHOW_MAX 64              /* bytes of a value quoted in a message */
#define POLICY_QBUF (POLICY_SHOW_MAX * 4 + 8) /* room for one policy_quote() result */

/* --- the loaded policy (immutable once policy_parse returns it) ------------ */

enum policy_cond_op {
	POLICY_OP_EQ, POLICY_OP_NE, POLICY_OP_IN, POLICY_OP_MATCHES, POLICY_OP_PRESENT, POLICY_OP_ABSENT
};

struct policy_operand {
	char *s;                /* a string value, an attribute name or a glob */
	int is_attr;            /* s names an attribute */
};

struct policy_cond {
	unsigned line;
	enum policy_cond_op op;
	char *attr;
	struct policy_operand *ops; /* EQ, NE, MATCHES: 1; IN: 1..n; PRESENT, ABSENT: 0 */
	size_t nops;
};

struct policy_grant {
	unsigned line;
	unsigned methods_line;  /* first methods line, 0 = none */
	unsigned keys_line;     /* first keys line, 0 = none */
	unsigned purposes_line; /* first purposes line, 0 = none */
	unsigned mfa_line;      /* the 'require mfa' line, 0 = no second factor needed */
	unsigned approvals_line; /* the 'require approvals N' line, 0 = none needed */
	unsigned approvals;     /* N (1..POLICY_APPROVALS_MAX) when approvals_line != 0 */
	char *approver_role;    /* 'of ROLE': members of this role approve (owned) */
	char **methods;         /* full names; a service wildcard is expanded at load */
	size_t nmethods;
	char **keys;            /* fnmatch globs; none = only calls without a key */
	size_t nkeys;
	char **purposes;        /* none = any purpose */
	size_t npurposes;
	struct policy_cond *conds; /* all must hold */
	size_t nconds;
};

struct policy_role {
	char *name;
	unsigned line;
	struct policy_grant *grants;
	size_t ngrants;
};

struct policy_roleref {
	char *name;
	unsigned line;
	size_t role;            /* index into policy.roles, set after parsing */
};

struct policy_principal {
	char *id;
	unsigned line;
	char **uris;
	size_t nuris;
	char **prefixes;
	size_t nprefixes;
	uint8_t (*fps)[32];
	size_t nfps;
	struct policy_roleref *roles;
	size_t nroles;
	char **attr_names;      /* attr lines: principal.NAME = value */
	char **attr_values;
	size_t nattrs;
	/* Used while parsing only. */
	int bad_header;         /* the principal line was wrong: skip end checks */
	unsigned matcher_lines; /* uri, uri-prefix and cert-sha256 lines seen */
	unsigned roles_lines;   /* roles lines seen */
};

struct policy {
	struct policy_principal *principals;
	size_t nprincipals;
	struct policy_role *roles;
	size_t nroles;
};

/* --- messages (policy_msg.c) ------------------------------------------------ */

/*
 * Writes s (at most POLICY_SHOW_MAX bytes of it) between quote characters q
 * (none when q is '\0') into out, escaping q, '\\' and every byte that is
 * not printable ASCII (\xNN), and adding "..." when s was longer. out needs
 * POLICY_QBUF bytes (it is set to "" when outlen is smaller). Returns out.
 */
const char *policy_quote(const char *s, char q, char *out, size_t outlen);

/* A bounded string builder for deny reasons; a cut ends in "...". */
struct policy_sbuf {
	char *b;                /* caller-owned, cap bytes, NUL-terminated */
	size_t cap;
	size_t len;
};

/* Appends to sb, cutting (with "...") when it is full. */
void policy_sb_printf(struct policy_sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
