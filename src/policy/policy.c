/*
 * policy.c - loads boltseal's authorization policy file, maps client
 * certificates to principals and decides calls (deny by default).
 *
 * Loading reads the whole file (capped at 1 MiB, refused unless it is a
 * regular file owned by the caller or root and not writable by group or
 * others), splits it into lines and each line into tokens, and builds
 * principals, roles, grants and conditions. Every problem is collected
 * with its line number (not just the first) and the list is sorted by line
 * before it is written to the caller's buffer, so checks that can only run
 * at the end (undefined roles, grants without methods) still appear in
 * file order. Nothing is returned unless the whole file is correct.
 *
 * Evaluation walks the principal's roles and their grants in file order.
 * The loaded policy is never written after policy_load returns, so
 * evaluation needs no lock. Deny reasons quote request-supplied strings
 * only through quote_value(), which caps them at 64 bytes and escapes
 * anything not printable ASCII.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "policy/policy.h"

#define POLICY_FILE_MAX (1024 * 1024)   /* bytes in a policy file */
#define POLICY_LINE_MAX 4096            /* bytes in one line, newline excluded */
#define POLICY_ERRORS_MAX 100           /* errors kept; the rest are counted */
#define POLICY_MSG_MAX 512              /* bytes of one error message */
#define POLICY_SHOW_MAX 64              /* bytes of a value quoted in a message */

/* --- the loaded policy ------------------------------------------------------ */

enum cond_op { OP_EQ, OP_NE, OP_IN, OP_MATCHES, OP_PRESENT, OP_ABSENT };

struct operand {
	char *s;                /* a string value, an attribute name or a glob */
	int is_attr;            /* s names an attribute */
};

struct cond {
	unsigned line;
	enum cond_op op;
	char *attr;
	struct operand *ops;    /* EQ, NE, MATCHES: 1; IN: 1..n; PRESENT, ABSENT: 0 */
	size_t nops;
};

struct grant {
	unsigned line;
	unsigned methods_line;  /* first methods line, 0 = none */
	unsigned keys_line;     /* first keys line, 0 = none */
	unsigned purposes_line; /* first purposes line, 0 = none */
	char **methods;         /* full names; a service wildcard is expanded at load */
	size_t nmethods;
	char **keys;            /* fnmatch globs; none = only calls without a key */
	size_t nkeys;
	char **purposes;        /* none = any purpose */
	size_t npurposes;
	struct cond *conds;     /* all must hold */
	size_t nconds;
};

struct role {
	char *name;
	unsigned line;
	struct grant *grants;
	size_t ngrants;
};

struct roleref {
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
	struct roleref *roles;
	size_t nroles;
	/* Used while parsing only. */
	int bad_header;         /* the principal line was wrong: skip end checks */
	unsigned matcher_lines; /* uri, uri-prefix and cert-sha256 lines seen */
	unsigned roles_lines;   /* roles lines seen */
};

struct policy {
	struct policy_principal *principals;
	size_t nprincipals;
	struct role *roles;
	size_t nroles;
};

/* --- parser state ------------------------------------------------------------ */

enum tok_type { T_WORD, T_STR, T_LBR, T_RBR, T_COMMA, T_EQ, T_NE };

struct tok {
	enum tok_type type;
	char *s;                /* NUL-terminated, unescaped */
};

struct errent {
	unsigned line;          /* 0 = the whole file */
	unsigned seq;
	char *msg;
};

enum block { B_NONE, B_PRINCIPAL, B_ROLE };

struct parser {
	const char *path;
	const struct policy_schema *schema;
	struct policy *p;
	struct errent *errs;
	size_t nerrs;
	unsigned nerr_total;
	int nomem;
	unsigned line;
	enum block block;
	size_t cur;             /* index of the current principal or role */
	int in_grant;           /* the current role's last grant is open */
	struct tok *toks;       /* POLICY_LINE_MAX entries */
	size_t ntoks;
	char *store;            /* token text, 2 * POLICY_LINE_MAX + 2 bytes */
};

static void perr(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Appends one zeroed element of size bytes to the array whose pointer is at
 * arrp (n elements). Returns the new element, or NULL on ENOMEM (the array
 * is unchanged). The pointer is moved with memcpy so that one helper serves
 * every element type without type punning.
 */
static void *
push(void *arrp, size_t *n, size_t size)
{
	char *old, *na;

	if (*n >= SIZE_MAX / size - 1)
		return NULL;
	memcpy(&old, arrp, sizeof(old));
	if ((na = realloc(old, (*n + 1) * size)) == NULL)
		return NULL;
	memset(na + *n * size, 0, size);
	memcpy(arrp, &na, sizeof(na));
	return na + (*n)++ * size;
}

/* Appends a copy of s to the string list *arr; -1 on ENOMEM. */
static int
push_str(char ***arr, size_t *n, const char *s)
{
	char *c, **slot;

	if ((c = strdup(s)) == NULL)
		return -1;
	if ((slot = push(arr, n, sizeof(char *))) == NULL) {
		free(c);
		return -1;
	}
	*slot = c;
	return 0;
}

static void
free_strs(char **a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/*
 * Writes s (at most POLICY_SHOW_MAX bytes of it) between quote characters q
 * (none when q is '\0') into out, escaping q, '\\' and every byte that is
 * not printable ASCII (\xNN), and adding "..." when s was longer. Returns out.
 */
static const char *
quote_value(const char *s, char q, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, j = 0;
	unsigned char ch;

	/* Worst case: 2 quotes + 64 * 4 + "..." + NUL. */
	if (outlen < 2 * 1 + POLICY_SHOW_MAX * 4 + 3 + 1) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	if (q != '\0')
		out[j++] = q;
	for (i = 0; s[i] != '\0' && i < POLICY_SHOW_MAX; i++) {
		ch = (unsigned char)s[i];
		if ((q != '\0' && ch == (unsigned char)q) || ch == '\\') {
			out[j++] = '\\';
			out[j++] = (char)ch;
		} else if (ch >= 0x20 && ch < 0x7f) {
			out[j++] = (char)ch;
		} else {
			out[j++] = '\\';
			out[j++] = 'x';
			out[j++] = hex[ch >> 4];
			out[j++] = hex[ch & 0xf];
		}
	}
	if (q != '\0')
		out[j++] = q;
	if (s[i] != '\0') {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

#define QBUF (POLICY_SHOW_MAX * 4 + 8)

/* Records one error ("message" for line 0 = the whole file). */
static void
perr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char msg[POLICY_MSG_MAX];
	struct errent *e;
	va_list ap;

	ps->nerr_total++;
	if (ps->nerrs >= POLICY_ERRORS_MAX || ps->nomem)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((e = push(&ps->errs, &ps->nerrs, sizeof(*e))) == NULL) {
		ps->nomem = 1;
		return;
	}
	e->line = line;
	e->seq = ps->nerr_total;
	if ((e->msg = strdup(msg)) == NULL) {
		ps->nerrs--;
		ps->nomem = 1;
	}
}

static int
errent_cmp(const void *a, const void *b)
{
	const struct errent *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/*
 * Writes the sorted errors into err, '\n' between lines, stopping at a line
 * boundary when the buffer is full and then noting how many were left out.
 */
static void
errs_format(struct parser *ps, char *err, size_t errlen)
{
	char line[POLICY_MSG_MAX + 4096 + 32], more[4096 + 64];
	size_t i, used = 0, ll;
	unsigned shown = 0;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	qsort(ps->errs, ps->nerrs, sizeof(ps->errs[0]), errent_cmp);
	for (i = 0; i < ps->nerrs; i++) {
		if (ps->errs[i].line > 0)
			snprintf(line, sizeof(line), "%s%s:%u: %s", used > 0 ? "\n" : "", ps->path,
			    ps->errs[i].line, ps->errs[i].msg);
		else
			snprintf(line, sizeof(line), "%s%s: %s", used > 0 ? "\n" : "", ps->path,
			    ps->errs[i].msg);
		ll = strlen(line);
		if (used + ll + 1 > errlen)
			break;
		memcpy(err + used, line, ll + 1);
		used += ll;
		shown++;
	}
	if (shown < ps->nerr_total) {
		snprintf(more, sizeof(more), "%s%s: %u more error%s not shown", used > 0 ? "\n" : "",
		    ps->path, ps->nerr_total - shown, ps->nerr_total - shown == 1 ? "" : "s");
		ll = strlen(more);
		if (used + ll + 1 <= errlen)
			memcpy(err + used, more, ll + 1);
	}
}

/* --- names ------------------------------------------------------------------- */

/* 1 if s is 1..64 of [A-Za-z0-9._-]. */
static int
id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= POLICY_ID_MAX)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	}
	return i > 0;
}

/*
 * 1 if s is an attribute name: [a-z0-9_]+(\.[a-z0-9_-]+)+, at most
 * POLICY_ATTR_MAX bytes, first component principal, key or request.
 */
static int
attr_valid(const char *s)
{
	size_t i, clen = 0, ncomp = 1, first = 0;
	char ch;

	for (i = 0; s[i] != '\0'; i++) {
		ch = s[i];
		if (i >= POLICY_ATTR_MAX)
			return 0;
		if (ch == '.') {
			if (clen == 0)
				return 0;
			if (ncomp == 1)
				first = i;
			ncomp++;
			clen = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		    (ch == '-' && ncomp > 1)))
			return 0;
		clen++;
	}
	if (clen == 0 || ncomp < 2)
		return 0;
	return (first == 9 && strncmp(s, "principal", 9) == 0) ||
	    (first == 3 && strncmp(s, "key", 3) == 0) ||
	    (first == 7 && strncmp(s, "request", 7) == 0);
}

/* 1 if s starts with a URI scheme and ':' and has no control bytes. */
static int
uri_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	for (i = 1; s[i] != ':'; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '.' || s[i] == '-'))
			return 0;
	}
	return 1;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits, or 32 hex pairs separated by ':'; case-insensitive. */
static int
fp_parse(const char *s, uint8_t out[32])
{
	size_t n = strlen(s), i, pos;
	int colons, hi, lo;

	if (n == 64)
		colons = 0;
	else if (n == 32 * 3 - 1)
		colons = 1;
	else
		return -1;
	for (i = 0; i < 32; i++) {
		pos = colons ? 3 * i : 2 * i;
		hi = hexval(s[pos]);
		lo = hexval(s[pos + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		if (colons && i < 31 && s[pos + 2] != ':')
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* --- tokens ------------------------------------------------------------------ */

static int
is_punct(char c)
{
	return c == '[' || c == ']' || c == ',' || c == '=' || c == '!';
}

/*
 * Splits s into ps->toks. Blanks separate tokens; "..." is one token
 * (escapes \" and \\ only); '#' outside quotes ends the line. With punct
 * (condition lines) '[', ']', ',', "==" and "!=" are tokens of their own.
 * Returns 0, or -1 after reporting an error.
 */
static int
lex(struct parser *ps, const char *s, int punct)
{
	char *o = ps->store;
	struct tok *t;

	ps->ntoks = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			return 0;
		t = &ps->toks[ps->ntoks++];
		t->s = o;
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\0') {
					perr(ps, ps->line, "unterminated string");
					return -1;
				}
				if (*s == '\\') {
					if (s[1] != '"' && s[1] != '\\') {
						perr(ps, ps->line, "bad escape in string (only \\\" and "
						    "\\\\ are allowed)");
						return -1;
					}
					s++;
				}
				*o++ = *s;
			}
			s++;
			t->type = T_STR;
			if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '#' &&
			    !(punct && is_punct(*s))) {
				perr(ps, ps->line, "missing blank after a closing '\"'");
				return -1;
			}
		} else if (punct && (*s == '[' || *s == ']' || *s == ',')) {
			t->type = *s == '[' ? T_LBR : *s == ']' ? T_RBR : T_COMMA;
			*o++ = *s++;
		} else if (punct && (*s == '=' || *s == '!')) {
			if (s[1] != '=') {
				perr(ps, ps->line, "bad condition: '%c' is not an operator "
				    "(use == or !=)", *s);
				return -1;
			}
			t->type = *s == '=' ? T_EQ : T_NE;
			*o++ = *s++;
			*o++ = *s++;
		} else {
			while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '#' && *s != '"' &&
			    !(punct && is_punct(*s)))
				*o++ = *s++;
			if (*s == '"') {
				perr(ps, ps->line, "'\"' inside a word (quote the whole value)");
				return -1;
			}
			t->type = T_WORD;
		}
		*o++ = '\0';
	}
}

/* --- blocks ------------------------------------------------------------------ */

static struct policy_principal *
cur_principal(struct parser *ps)
{
	return &ps->p->principals[ps->cur];
}

static struct role *
cur_role(struct parser *ps)
{
	return &ps->p->roles[ps->cur];
}

static struct grant *
cur_grant(struct parser *ps)
{
	struct role *r = cur_role(ps);

	return &r->grants[r->ngrants - 1];
}

/* 1 if the current block is a principal; reports kw's misplacement otherwise. */
static int
need_principal(struct parser *ps, const char *kw)
{
	if (ps->block == B_PRINCIPAL)
		return 1;
	if (ps->block == B_ROLE)
		perr(ps, ps->line, "'%s' belongs in a principal block, not in role '%s'", kw,
		    cur_role(ps)->name);
	else
		perr(ps, ps->line, "'%s' outside a principal block", kw);
	return 0;
}

/* 1 if a grant is open; reports kw's misplacement otherwise. */
static int
need_grant(struct parser *ps, const char *kw)
{
	if (ps->block == B_ROLE && ps->in_grant)
		return 1;
	if (ps->block == B_ROLE)
		perr(ps, ps->line, "'%s' must follow a 'grant' line in role '%s'", kw,
		    cur_role(ps)->name);
	else if (ps->block == B_PRINCIPAL)
		perr(ps, ps->line, "'%s' belongs in a grant of a role, not in principal '%s'", kw,
		    cur_principal(ps)->id);
	else
		perr(ps, ps->line, "'%s' outside a grant (grants live in 'role NAME' blocks)", kw);
	return 0;
}

static void
kw_principal(struct parser *ps)
{
	char q[QBUF];
	struct policy_principal *pr;
	const char *id = ps->ntoks == 2 ? ps->toks[1].s : "";
	unsigned nerr_before = ps->nerr_total;
	size_t i;

	if (ps->ntoks != 2)
		perr(ps, ps->line, "'principal' needs exactly one id");
	else if (!id_valid(id))
		perr(ps, ps->line, "bad principal id %s (1 to %d of A-Z a-z 0-9 . _ -)",
		    quote_value(id, '\'', q, sizeof(q)), POLICY_ID_MAX);
	else {
		for (i = 0; i < ps->p->nprincipals; i++) {
			if (strcmp(ps->p->principals[i].id, id) == 0) {
				perr(ps, ps->line, "duplicate principal '%s' (first defined on "
				    "line %u)", id, ps->p->principals[i].line);
				break;
			}
		}
	}
	/* Open the block even after an error, so its lines are checked too. */
	if ((pr = push(&ps->p->principals, &ps->p->nprincipals, sizeof(*pr))) == NULL ||
	    (pr->id = strdup(id)) == NULL) {
		ps->nomem = 1;
		return;
	}
	pr->line = ps->line;
	pr->bad_header = ps->nerr_total != nerr_before;
	ps->block = B_PRINCIPAL;
	ps->cur = ps->p->nprincipals - 1;
	ps->in_grant = 0;
}

static void
kw_role(struct parser *ps)
{
	char q[QBUF];
	struct role *r;
	const char *name = ps->ntoks == 2 ? ps->toks[1].s : "";
	size_t i;

	if (ps->ntoks != 2)
		perr(ps, ps->line, "'role' needs exactly one name");
	else if (!id_valid(name))
		perr(ps, ps->line, "bad role name %s (1 to %d of A-Z a-z 0-9 . _ -)",
		    quote_value(name, '\'', q, sizeof(q)), POLICY_ID_MAX);
	else {
		for (i = 0; i < ps->p->nroles; i++) {
			if (strcmp(ps->p->roles[i].name, name) == 0) {
				perr(ps, ps->line, "duplicate role '%s' (first defined on line %u)",
				    name, ps->p->roles[i].line);
				break;
			}
		}
	}
	if ((r = push(&ps->p->roles, &ps->p->nroles, sizeof(*r))) == NULL ||
	    (r->name = strdup(name)) == NULL) {
		ps->nomem = 1;
		return;
	}
	r->line = ps->line;
	ps->block = B_ROLE;
	ps->cur = ps->p->nroles - 1;
	ps->in_grant = 0;
}

static void
kw_grant(struct parser *ps)
{
	struct grant *g;
	struct role *r;

	if (ps->block != B_ROLE) {
		if (ps->block == B_PRINCIPAL)
			perr(ps, ps->line, "'grant' belongs in a role block, not in principal '%s'",
			    cur_principal(ps)->id);
		else
			perr(ps, ps->line, "'grant' outside a role block");
		return;
	}
	if (ps->ntoks != 1)
		perr(ps, ps->line, "'grant' takes no arguments (put methods, keys, purposes "
		    "and when on the lines below it)");
	r = cur_role(ps);
	if ((g = push(&r->grants, &r->ngrants, sizeof(*g))) == NULL) {
		ps->nomem = 1;
		return;
	}
	g->line = ps->line;
	ps->in_grant = 1;
}

/*
 * 1 if principal pr already holds the value in the matcher list of the given
 * kind (0 uri: s, 1 uri-prefix: s, 2 cert-sha256: fp).
 */
static int
matcher_claimed(const struct policy_principal *pr, int kind, const char *s, const uint8_t *fp)
{
	size_t i;

	switch (kind) {
	case 0:
		for (i = 0; i < pr->nuris; i++)
			if (strcmp(pr->uris[i], s) == 0)
				return 1;
		return 0;
	case 1:
		for (i = 0; i < pr->nprefixes; i++)
			if (strcmp(pr->prefixes[i], s) == 0)
				return 1;
		return 0;
	case 2:
		for (i = 0; i < pr->nfps; i++)
			if (memcmp(pr->fps[i], fp, 32) == 0)
				return 1;
		return 0;
	default:
		return 0;
	}
}

/* uri, uri-prefix and cert-sha256 lines. */
static void
kw_matcher(struct parser *ps, const char *kw, int kind)
{
	char q[QBUF];
	struct policy_principal *pr, *other;
	uint8_t fp[32], (*slot)[32];
	const char *v;
	size_t i;
	int rc;

	if (!need_principal(ps, kw))
		return;
	pr = cur_principal(ps);
	pr->matcher_lines++;
	if (ps->ntoks != 2) {
		perr(ps, ps->line, "'%s' takes exactly one value", kw);
		return;
	}
	v = ps->toks[1].s;
	if (kind == 2 && fp_parse(v, fp) != 0) {
		perr(ps, ps->line, "bad cert-sha256 %s: expected 64 hex digits (colons between "
		    "bytes allowed)", quote_value(v, '\'', q, sizeof(q)));
		return;
	}
	if (kind != 2 && !uri_valid(v)) {
		perr(ps, ps->line, "bad %s %s: expected a URI starting with its scheme "
		    "(spiffe://...)", kw, quote_value(v, '\'', q, sizeof(q)));
		return;
	}
	for (i = 0; i < ps->p->nprincipals; i++) {
		other = &ps->p->principals[i];
		if (!matcher_claimed(other, kind, v, fp))
			continue;
		if (other == pr)
			perr(ps, ps->line, "%s %s is listed twice in principal '%s'", kw,
			    quote_value(v, '\'', q, sizeof(q)), pr->id);
		else
			perr(ps, ps->line, "%s %s is already claimed by principal '%s' (line %u)",
			    kw, quote_value(v, '\'', q, sizeof(q)), other->id, other->line);
		return;
	}
	if (kind == 0)
		rc = push_str(&pr->uris, &pr->nuris, v);
	else if (kind == 1)
		rc = push_str(&pr->prefixes, &pr->nprefixes, v);
	else if ((slot = push(&pr->fps, &pr->nfps, sizeof(*slot))) != NULL) {
		memcpy(*slot, fp, 32);
		rc = 0;
	} else
		rc = -1;
	if (rc != 0)
		ps->nomem = 1;
}

static void
kw_roles(struct parser *ps)
{
	char q[QBUF];
	struct policy_principal *pr;
	struct roleref *ref;
	const char *name;
	size_t i, j;
	int dup;

	if (!need_principal(ps, "roles"))
		return;
	pr = cur_principal(ps);
	pr->roles_lines++;
	if (ps->ntoks < 2) {
		perr(ps, ps->line, "'roles' needs at least one role name");
		return;
	}
	for (i = 1; i < ps->ntoks; i++) {
		name = ps->toks[i].s;
		if (!id_valid(name)) {
			perr(ps, ps->line, "bad role name %s (1 to %d of A-Z a-z 0-9 . _ -)",
			    quote_value(name, '\'', q, sizeof(q)), POLICY_ID_MAX);
			continue;
		}
		for (j = 0, dup = 0; j < pr->nroles && !dup; j++)
			dup = strcmp(pr->roles[j].name, name) == 0;
		if (dup) {
			perr(ps, ps->line, "role '%s' is listed twice for principal '%s'", name,
			    pr->id);
			continue;
		}
		if ((ref = push(&pr->roles, &pr->nroles, sizeof(*ref))) == NULL ||
		    (ref->name = strdup(name)) == NULL) {
			if (ref != NULL)
				pr->nroles--;
			ps->nomem = 1;
			return;
		}
		ref->line = ps->line;
	}
}

/* 1 if some schema method is "svc/..." (svc is len bytes). */
static int
service_known(const struct policy_schema *sc, const char *svc, size_t len)
{
	size_t i;

	for (i = 0; i < sc->nmethods; i++) {
		if (sc->methods[i] != NULL && strncmp(sc->methods[i], svc, len) == 0 &&
		    sc->methods[i][len] == '/')
			return 1;
	}
	return 0;
}

static int
method_known(const struct policy_schema *sc, const char *m)
{
	size_t i;

	for (i = 0; i < sc->nmethods; i++)
		if (sc->methods[i] != NULL && strcmp(sc->methods[i], m) == 0)
			return 1;
	return 0;
}

static int
purpose_known(const struct policy_schema *sc, const char *pu)
{
	size_t i;

	for (i = 0; i < sc->npurposes; i++)
		if (sc->purposes[i] != NULL && strcmp(sc->purposes[i], pu) == 0)
			return 1;
	return 0;
}

/*
 * Adds every schema method of service svc (len bytes) to g: a wildcard
 * covers the methods known when the policy is loaded, never a method the
 * daemon does not serve. -1 on ENOMEM.
 */
static int
push_service(const struct policy_schema *sc, struct grant *g, const char *svc, size_t len)
{
	size_t i;

	for (i = 0; i < sc->nmethods; i++) {
		if (sc->methods[i] != NULL && strncmp(sc->methods[i], svc, len) == 0 &&
		    sc->methods[i][len] == '/' &&
		    push_str(&g->methods, &g->nmethods, sc->methods[i]) != 0)
			return -1;
	}
	return 0;
}

/* methods, keys and purposes lines. */
static void
kw_list(struct parser *ps, const char *kw)
{
	char q[QBUF];
	struct grant *g;
	const char *v, *slash;
	size_t i;
	int rc;

	if (!need_grant(ps, kw))
		return;
	g = cur_grant(ps);
	if (ps->ntoks < 2) {
		perr(ps, ps->line, "'%s' needs at least one value", kw);
		return;
	}
	for (i = 1; i < ps->ntoks; i++) {
		v = ps->toks[i].s;
		rc = 0;
		if (kw[0] == 'm') {
			if (g->methods_line == 0)
				g->methods_line = ps->line;
			slash = strchr(v, '/');
			if (slash == NULL || slash == v || slash[1] == '\0' ||
			    strchr(slash + 1, '/') != NULL) {
				perr(ps, ps->line, "bad method %s (expected package.Service/Method "
				    "or package.Service/*)", quote_value(v, '\'', q, sizeof(q)));
				continue;
			}
			if (!service_known(ps->schema, v, (size_t)(slash - v))) {
				perr(ps, ps->line, "unknown service in method %s",
				    quote_value(v, '\'', q, sizeof(q)));
				continue;
			}
			if (strcmp(slash + 1, "*") == 0) {
				rc = push_service(ps->schema, g, v, (size_t)(slash - v));
			} else if (!method_known(ps->schema, v)) {
				perr(ps, ps->line, "unknown method %s",
				    quote_value(v, '\'', q, sizeof(q)));
				continue;
			} else
				rc = push_str(&g->methods, &g->nmethods, v);
		} else if (kw[0] == 'k') {
			if (g->keys_line == 0)
				g->keys_line = ps->line;
			if (v[0] == '\0') {
				perr(ps, ps->line, "empty keys pattern");
				continue;
			}
			rc = push_str(&g->keys, &g->nkeys, v);
		} else {
			if (g->purposes_line == 0)
				g->purposes_line = ps->line;
			if (!purpose_known(ps->schema, v)) {
				perr(ps, ps->line, "unknown purpose %s",
				    quote_value(v, '\'', q, sizeof(q)));
				continue;
			}
			rc = push_str(&g->purposes, &g->npurposes, v);
		}
		if (rc != 0) {
			ps->nomem = 1;
			return;
		}
	}
}

/* An operand token: a "string" or an attribute name. -1 after reporting. */
static int
operand_parse(struct parser *ps, const struct tok *t, struct operand *op)
{
	char q[QBUF];

	if (t->type == T_WORD && !attr_valid(t->s)) {
		perr(ps, ps->line, "bad condition: %s is neither a \"quoted string\" nor an "
		    "attribute name", quote_value(t->s, '\'', q, sizeof(q)));
		return -1;
	}
	if (t->type != T_WORD && t->type != T_STR) {
		perr(ps, ps->line, "bad condition: expected a \"quoted string\" or an attribute "
		    "name, found '%s'", t->s);
		return -1;
	}
	op->is_attr = t->type == T_WORD;
	if ((op->s = strdup(t->s)) == NULL) {
		ps->nomem = 1;
		return -1;
	}
	return 0;
}

static void
cond_free(struct cond *c)
{
	size_t i;

	free(c->attr);
	for (i = 0; i < c->nops; i++)
		free(c->ops[i].s);
	free(c->ops);
}

/* when ATTR (== | !=) OPERAND | in [OPERAND, ...] | matches "GLOB" | present | absent */
static void
kw_when(struct parser *ps)
{
	char q[QBUF];
	struct cond c;
	struct operand *op;
	const struct tok *t = ps->toks;
	const char *opname;
	size_t n = ps->ntoks, i;
	struct grant *g;

	if (!need_grant(ps, "when"))
		return;
	memset(&c, 0, sizeof(c));
	c.line = ps->line;
	if (n < 3) {
		perr(ps, ps->line, "bad condition: expected 'when ATTRIBUTE OPERATOR ...'");
		return;
	}
	if (t[1].type != T_WORD || !attr_valid(t[1].s)) {
		perr(ps, ps->line, "bad condition: %s is not an attribute name (lower-case "
		    "dotted, starting with principal., key. or request.)",
		    quote_value(t[1].s, '\'', q, sizeof(q)));
		return;
	}
	opname = t[2].s;
	if (t[2].type == T_EQ || t[2].type == T_NE) {
		c.op = t[2].type == T_EQ ? OP_EQ : OP_NE;
		if (n != 4) {
			perr(ps, ps->line, "bad condition: '%s' needs exactly one operand", opname);
			return;
		}
	} else if (t[2].type == T_WORD && strcmp(opname, "in") == 0) {
		c.op = OP_IN;
		/* when ATTR in [ X (, X)* ]: items at 4, 6, ..., n - 2 */
		if (n < 5 || t[3].type != T_LBR || t[4].type == T_RBR) {
			perr(ps, ps->line, "bad condition: 'in' needs a list [\"a\", \"b\", ...]");
			return;
		}
		for (i = 4;; i += 2) {
			if (t[i].type == T_LBR || t[i].type == T_RBR || t[i].type == T_COMMA) {
				perr(ps, ps->line, "bad condition: expected a list item, found '%s'",
				    t[i].s);
				return;
			}
			if (i + 1 >= n) {
				perr(ps, ps->line, "bad condition: missing ']' at the end of the list");
				return;
			}
			if (t[i + 1].type == T_RBR)
				break;
			if (t[i + 1].type != T_COMMA) {
				perr(ps, ps->line, "bad condition: expected ',' between list items");
				return;
			}
			if (i + 2 >= n) {
				perr(ps, ps->line, "bad condition: missing ']' at the end of the list");
				return;
			}
		}
		if (i + 2 != n) {
			perr(ps, ps->line, "bad condition: unexpected text after ']'");
			return;
		}
	} else if (t[2].type == T_WORD && strcmp(opname, "matches") == 0) {
		c.op = OP_MATCHES;
		if (n != 4 || t[3].type != T_STR) {
			perr(ps, ps->line, "bad condition: 'matches' needs one \"quoted glob\"");
			return;
		}
		if (t[3].s[0] == '\0') {
			perr(ps, ps->line, "bad condition: empty glob");
			return;
		}
	} else if (t[2].type == T_WORD && (strcmp(opname, "present") == 0 ||
	    strcmp(opname, "absent") == 0)) {
		c.op = opname[0] == 'p' ? OP_PRESENT : OP_ABSENT;
		if (n != 3) {
			perr(ps, ps->line, "bad condition: '%s' takes no operand", opname);
			return;
		}
	} else {
		perr(ps, ps->line, "bad condition: unknown operator %s (expected ==, !=, in, "
		    "matches, present or absent)", quote_value(opname, '\'', q, sizeof(q)));
		return;
	}

	if ((c.attr = strdup(t[1].s)) == NULL)
		goto nomem;
	if (c.op == OP_EQ || c.op == OP_NE || c.op == OP_MATCHES) {
		if ((op = push(&c.ops, &c.nops, sizeof(*op))) == NULL)
			goto nomem;
		if (operand_parse(ps, &t[3], op) != 0)
			goto fail;
	} else if (c.op == OP_IN) {
		for (i = 4; i < n - 1; i += 2) {
			if ((op = push(&c.ops, &c.nops, sizeof(*op))) == NULL)
				goto nomem;
			if (operand_parse(ps, &t[i], op) != 0)
				goto fail;
		}
	}
	g = cur_grant(ps);
	if (push(&g->conds, &g->nconds, sizeof(c)) == NULL)
		goto nomem;
	g->conds[g->nconds - 1] = c;
	return;
nomem:
	ps->nomem = 1;
fail:
	cond_free(&c);
}

/* Dispatches one line (already checked for NUL, length and control bytes). */
static void
parse_line(struct parser *ps, const char *s)
{
	char q[QBUF], kw[16];
	size_t kl = 0;
	const char *w;

	/* The keyword decides how the rest is tokenized. */
	for (w = s; *w == ' ' || *w == '\t'; w++)
		;
	while (w[kl] != '\0' && w[kl] != ' ' && w[kl] != '\t' && w[kl] != '#' && kl < 15)
		kl++;
	memcpy(kw, w, kl);
	kw[kl] = '\0';
	if (lex(ps, s, strcmp(kw, "when") == 0) != 0 || ps->ntoks == 0)
		return;
	if (ps->toks[0].type != T_WORD) {
		perr(ps, ps->line, "expected a keyword, found a string");
		return;
	}
	if (strcmp(ps->toks[0].s, "principal") == 0)
		kw_principal(ps);
	else if (strcmp(ps->toks[0].s, "role") == 0)
		kw_role(ps);
	else if (strcmp(ps->toks[0].s, "grant") == 0)
		kw_grant(ps);
	else if (strcmp(ps->toks[0].s, "uri") == 0)
		kw_matcher(ps, "uri", 0);
	else if (strcmp(ps->toks[0].s, "uri-prefix") == 0)
		kw_matcher(ps, "uri-prefix", 1);
	else if (strcmp(ps->toks[0].s, "cert-sha256") == 0)
		kw_matcher(ps, "cert-sha256", 2);
	else if (strcmp(ps->toks[0].s, "roles") == 0)
		kw_roles(ps);
	else if (strcmp(ps->toks[0].s, "methods") == 0)
		kw_list(ps, "methods");
	else if (strcmp(ps->toks[0].s, "keys") == 0)
		kw_list(ps, "keys");
	else if (strcmp(ps->toks[0].s, "purposes") == 0)
		kw_list(ps, "purposes");
	else if (strcmp(ps->toks[0].s, "when") == 0)
		kw_when(ps);
	else
		perr(ps, ps->line, "unknown keyword %s",
		    quote_value(ps->toks[0].s, '\'', q, sizeof(q)));
}

/* Checks that need the whole file: required lines, role references. */
static void
check_all(struct parser *ps)
{
	struct policy *p = ps->p;
	struct policy_principal *pr;
	struct roleref *ref;
	struct grant *g;
	size_t i, j, k;

	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i];
		/* Lines that were wrong themselves do not count as missing too. */
		if (!pr->bad_header && pr->matcher_lines == 0)
			perr(ps, pr->line, "principal '%s' has no uri, uri-prefix or cert-sha256 line",
			    pr->id);
		if (!pr->bad_header && pr->roles_lines == 0)
			perr(ps, pr->line, "principal '%s' has no roles line", pr->id);
		for (j = 0; j < pr->nroles; j++) {
			ref = &pr->roles[j];
			for (k = 0; k < p->nroles; k++)
				if (strcmp(p->roles[k].name, ref->name) == 0)
					break;
			if (k == p->nroles)
				perr(ps, ref->line, "undefined role '%s'", ref->name);
			ref->role = k;
		}
	}
	for (i = 0; i < p->nroles; i++) {
		for (j = 0; j < p->roles[i].ngrants; j++) {
			g = &p->roles[i].grants[j];
			if (g->methods_line == 0)
				perr(ps, g->line, "grant in role '%s' has no methods line",
				    p->roles[i].name);
			if (g->purposes_line != 0 && g->keys_line == 0)
				perr(ps, g->purposes_line, "'purposes' without 'keys' in the same "
				    "grant (a grant without keys only matches calls that name no key)");
		}
	}
}

/* --- file -------------------------------------------------------------------- */

/*
 * Reads path into a NUL-terminated buffer after the StrictModes-like checks.
 * Returns 0, BS_ERR_CONFIG or BS_ERR_IO (reported), BS_ERR_NOMEM.
 */
static int
read_policy_file(struct parser *ps, char **out, size_t *len_out)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc = BS_ERR_IO;

	fd = open(ps->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		perr(ps, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		perr(ps, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	rc = BS_ERR_CONFIG;
	if (!S_ISREG(st.st_mode)) {
		perr(ps, 0, "not a regular file");
		goto out;
	}
	if ((st.st_mode & 022) != 0) {
		perr(ps, 0, "mode %04o is writable by group or others; refusing it (chmod go-w)",
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		perr(ps, 0, "owned by uid %u, neither root nor this process's user; refusing it",
		    (unsigned)st.st_uid);
		goto out;
	}
	rc = bs_read_fd_capped(fd, POLICY_FILE_MAX, &buf, &len);
	if (rc == BS_ERR_TOO_BIG) {
		perr(ps, 0, "file is larger than %d bytes", POLICY_FILE_MAX);
		rc = BS_ERR_CONFIG;
		goto out;
	}
	if (rc == BS_ERR_IO)
		perr(ps, 0, "cannot read: %s", strerror(errno));
	if (rc != 0)
		goto out;
	*out = buf;
	*len_out = len;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* Splits buf into lines and parses each. */
static void
parse_buffer(struct parser *ps, char *buf, size_t len)
{
	char *p = buf, *end = buf + len, *nl, *c;
	size_t ll;

	while (p < end && !ps->nomem) {
		ps->line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		ll = (size_t)(nl - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		*nl = '\0';
		p[ll] = '\0';
		if (memchr(p, '\0', ll) != NULL) {
			perr(ps, ps->line, "NUL byte in line");
		} else if (ll > POLICY_LINE_MAX) {
			perr(ps, ps->line, "line longer than %d bytes", POLICY_LINE_MAX);
		} else {
			for (c = p; *c != '\0'; c++)
				if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
					break;
			if (*c != '\0')
				perr(ps, ps->line, "control character in line");
			else
				parse_line(ps, p);
		}
		p = nl + 1;
	}
}

static void
grant_free(struct grant *g)
{
	size_t i;

	free_strs(g->methods, g->nmethods);
	free_strs(g->keys, g->nkeys);
	free_strs(g->purposes, g->npurposes);
	for (i = 0; i < g->nconds; i++)
		cond_free(&g->conds[i]);
	free(g->conds);
}

void
policy_free(struct policy *p)
{
	struct policy_principal *pr;
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i];
		free(pr->id);
		free_strs(pr->uris, pr->nuris);
		free_strs(pr->prefixes, pr->nprefixes);
		free(pr->fps);
		for (j = 0; j < pr->nroles; j++)
			free(pr->roles[j].name);
		free(pr->roles);
	}
	free(p->principals);
	for (i = 0; i < p->nroles; i++) {
		free(p->roles[i].name);
		for (j = 0; j < p->roles[i].ngrants; j++)
			grant_free(&p->roles[i].grants[j]);
		free(p->roles[i].grants);
	}
	free(p->roles);
	free(p);
}

int
policy_load(const char *path, const struct policy_schema *schema, struct policy **out,
    char *err, size_t errlen)
{
	struct parser ps;
	char *buf = NULL;
	size_t len = 0, i;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || schema == NULL || out == NULL || (err == NULL && errlen > 0))
		return BS_ERR_INVALID;
	memset(&ps, 0, sizeof(ps));
	ps.path = path;
	ps.schema = schema;
	if ((ps.p = calloc(1, sizeof(*ps.p))) == NULL ||
	    (ps.toks = calloc(POLICY_LINE_MAX, sizeof(*ps.toks))) == NULL ||
	    (ps.store = malloc(2 * POLICY_LINE_MAX + 2)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if ((rc = read_policy_file(&ps, &buf, &len)) != 0)
		goto out;
	parse_buffer(&ps, buf, len);
	if (!ps.nomem)
		check_all(&ps);
	if (ps.nomem) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (ps.nerr_total > 0) {
		rc = BS_ERR_CONFIG;
		goto out;
	}
	*out = ps.p;
	ps.p = NULL;
	rc = 0;
out:
	if (rc == BS_ERR_NOMEM && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (rc != 0)
		errs_format(&ps, err, errlen);
	for (i = 0; i < ps.nerrs; i++)
		free(ps.errs[i].msg);
	free(ps.errs);
	free(ps.toks);
	free(ps.store);
	free(buf);
	policy_free(ps.p);
	return rc;
}

/* --- mapping ----------------------------------------------------------------- */

const struct policy_principal *
policy_map(const struct policy *p, const char *uri, const uint8_t cert_sha256[32])
{
	const struct policy_principal *pr, *best = NULL;
	size_t i, j, bestlen = 0, pl;

	if (p == NULL)
		return NULL;
	if (cert_sha256 != NULL) {
		for (i = 0; i < p->nprincipals; i++) {
			pr = &p->principals[i];
			for (j = 0; j < pr->nfps; j++)
				if (memcmp(pr->fps[j], cert_sha256, 32) == 0)
					return pr;
		}
	}
	if (uri == NULL)
		return NULL;
	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i];
		for (j = 0; j < pr->nuris; j++)
			if (strcmp(pr->uris[j], uri) == 0)
				return pr;
	}
	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i];
		for (j = 0; j < pr->nprefixes; j++) {
			pl = strlen(pr->prefixes[j]);
			if (pl > bestlen && strncmp(pr->prefixes[j], uri, pl) == 0) {
				best = pr;
				bestlen = pl;
			}
		}
	}
	return best;
}

const char *
policy_principal_id(const struct policy_principal *pr)
{
	return pr != NULL ? pr->id : "";
}

size_t
policy_principal_count(const struct policy *p)
{
	return p != NULL ? p->nprincipals : 0;
}

/* A bounded string builder for deny reasons; cuts end in "...". */
struct sbuf {
	char *b;
	size_t cap;
	size_t len;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->len + 1 >= sb->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->b + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sb->cap - sb->len) {
		sb->len = sb->cap - 1;
		if (sb->cap >= 4)
			memcpy(sb->b + sb->cap - 4, "...", 4);
	} else
		sb->len += (size_t)n;
}

void
policy_principal_roles(const struct policy_principal *pr, char *buf, size_t buflen)
{
	struct sbuf sb = { buf, buflen, 0 };
	size_t i;

	if (buf == NULL || buflen == 0)
		return;
	buf[0] = '\0';
	if (pr == NULL)
		return;
	for (i = 0; i < pr->nroles; i++)
		sb_printf(&sb, "%s%s", i > 0 ? "," : "", pr->roles[i].name);
}

/* --- evaluation -------------------------------------------------------------- */

struct evalctx {
	const struct policy_principal *pr;
	const char *caller_uri;
	const struct policy_request *req;
};

/* The value of attribute name, or NULL when absent. */
static const char *
attr_get(const struct evalctx *c, const char *name)
{
	size_t i;

	if (strcmp(name, "principal.id") == 0)
		return c->pr->id;
	if (strcmp(name, "principal.uri") == 0)
		return c->caller_uri;
	if (strcmp(name, "key.name") == 0)
		return c->req->key;
	if (strcmp(name, "key.purpose") == 0)
		return c->req->key != NULL ? c->req->key_purpose : NULL;
	if (c->req->attrs == NULL)
		return NULL;
	for (i = 0; i < c->req->nattrs; i++)
		if (c->req->attrs[i].name != NULL && strcmp(c->req->attrs[i].name, name) == 0)
			return c->req->attrs[i].value;
	return NULL;
}

static const char *
operand_value(const struct evalctx *c, const struct operand *op)
{
	return op->is_attr ? attr_get(c, op->s) : op->s;
}

static int
cond_holds(const struct evalctx *c, const struct cond *cd)
{
	const char *v = attr_get(c, cd->attr), *w;
	size_t i;

	switch (cd->op) {
	case OP_PRESENT:
		return v != NULL;
	case OP_ABSENT:
		return v == NULL;
	case OP_EQ:
	case OP_NE:
		w = operand_value(c, &cd->ops[0]);
		if (v == NULL || w == NULL)
			return 0;
		return (strcmp(v, w) == 0) == (cd->op == OP_EQ);
	case OP_IN:
		if (v == NULL)
			return 0;
		for (i = 0; i < cd->nops; i++) {
			w = operand_value(c, &cd->ops[i]);
			if (w != NULL && strcmp(v, w) == 0)
				return 1;
		}
		return 0;
	case OP_MATCHES:
		return v != NULL && fnmatch(cd->ops[0].s, v, 0) == 0;
	default:
		return 0;
	}
}

static void
sb_operand(struct sbuf *sb, const struct operand *op)
{
	char q[QBUF];

	if (op->is_attr)
		sb_printf(sb, "%s", op->s);
	else
		sb_printf(sb, "%s", quote_value(op->s, '"', q, sizeof(q)));
}

/* "ATTR OP OPERAND (value ...)" for a failed condition. */
static void
sb_cond(struct sbuf *sb, const struct evalctx *c, const struct cond *cd)
{
	static const char *const opnames[] = { "==", "!=", "in", "matches", "present", "absent" };
	char q[QBUF];
	const char *v = attr_get(c, cd->attr), *w;
	size_t i;

	sb_printf(sb, "%s %s", cd->attr, opnames[cd->op]);
	if (cd->op == OP_IN) {
		sb_printf(sb, " [");
		for (i = 0; i < cd->nops; i++) {
			sb_printf(sb, "%s", i > 0 ? ", " : "");
			sb_operand(sb, &cd->ops[i]);
		}
		sb_printf(sb, "]");
	} else if (cd->nops == 1) {
		sb_printf(sb, " ");
		sb_operand(sb, &cd->ops[0]);
	}
	if (v != NULL)
		sb_printf(sb, " (value %s", quote_value(v, '"', q, sizeof(q)));
	else
		sb_printf(sb, " (absent");
	for (i = 0; i < cd->nops && cd->op != OP_MATCHES; i++) {
		if (!cd->ops[i].is_attr)
			continue;
		w = attr_get(c, cd->ops[i].s);
		if (w != NULL)
			sb_printf(sb, "; %s %s", cd->ops[i].s, quote_value(w, '"', q, sizeof(q)));
		else
			sb_printf(sb, "; %s absent", cd->ops[i].s);
	}
	sb_printf(sb, ")");
}

static int
grant_names_method(const struct grant *g, const char *method)
{
	size_t i;

	for (i = 0; i < g->nmethods; i++)
		if (strcmp(g->methods[i], method) == 0)
			return 1;
	return 0;
}

/*
 * 1 if grant g allows the call (its methods already match). Otherwise 0,
 * and when sb is not NULL the first failed check is appended to it.
 */
static int
grant_allows(const struct evalctx *c, const struct grant *g, struct sbuf *sb)
{
	const struct policy_request *req = c->req;
	char q[QBUF];
	size_t i;

	if (g->nkeys == 0 && req->key != NULL) {
		if (sb != NULL)
			sb_printf(sb, "the grant has no keys line (it covers only calls that name "
			    "no key) but the call names key %s",
			    quote_value(req->key, '\'', q, sizeof(q)));
		return 0;
	}
	if (g->nkeys > 0) {
		if (req->key == NULL) {
			if (sb != NULL)
				sb_printf(sb, "the call names no key but the grant covers only "
				    "keys matching its keys patterns");
			return 0;
		}
		for (i = 0; i < g->nkeys; i++)
			if (fnmatch(g->keys[i], req->key, 0) == 0)
				break;
		if (i == g->nkeys) {
			if (sb != NULL)
				sb_printf(sb, "key %s matches no keys pattern",
				    quote_value(req->key, '\'', q, sizeof(q)));
			return 0;
		}
	}
	if (g->npurposes > 0) {
		if (req->key_purpose == NULL) {
			if (sb != NULL)
				sb_printf(sb, "key %s has no purpose but the grant names purposes",
				    quote_value(req->key, '\'', q, sizeof(q)));
			return 0;
		}
		for (i = 0; i < g->npurposes; i++)
			if (strcmp(g->purposes[i], req->key_purpose) == 0)
				break;
		if (i == g->npurposes) {
			if (sb != NULL) {
				sb_printf(sb, "purpose %s", quote_value(req->key_purpose, '\'', q,
				    sizeof(q)));
				sb_printf(sb, " of key %s is not in the grant's purposes",
				    quote_value(req->key, '\'', q, sizeof(q)));
			}
			return 0;
		}
	}
	for (i = 0; i < g->nconds; i++) {
		if (!cond_holds(c, &g->conds[i])) {
			if (sb != NULL) {
				sb_printf(sb, "condition at line %u failed: ", g->conds[i].line);
				sb_cond(sb, c, &g->conds[i]);
			}
			return 0;
		}
	}
	return 1;
}

int
policy_authorize(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, char reason[POLICY_REASON_MAX])
{
	struct sbuf sb = { reason, POLICY_REASON_MAX, 0 };
	struct evalctx c = { pr, caller_uri, req };
	const struct role *r, *first_role = NULL;
	const struct grant *g, *first = NULL;
	char roles[200], q[QBUF];
	size_t i, j, nmatch = 0;

	reason[0] = '\0';
	if (p == NULL || pr == NULL || req == NULL || req->method == NULL) {
		sb_printf(&sb, "no policy, principal or method");
		return 0;
	}
	for (i = 0; i < pr->nroles; i++) {
		if (pr->roles[i].role >= p->nroles)
			continue;
		r = &p->roles[pr->roles[i].role];
		for (j = 0; j < r->ngrants; j++) {
			g = &r->grants[j];
			if (!grant_names_method(g, req->method))
				continue;
			if (grant_allows(&c, g, NULL)) {
				reason[0] = '\0';
				return 1;
			}
			if (nmatch++ == 0) {
				first = g;
				first_role = r;
			}
		}
	}
	if (first == NULL) {
		policy_principal_roles(pr, roles, sizeof(roles));
		/* The method is wire data: escaped and capped, unquoted. */
		sb_printf(&sb, "no role of principal '%s' (%s) grants %s", pr->id, roles,
		    quote_value(req->method, '\0', q, sizeof(q)));
		return 0;
	}
	sb_printf(&sb, "role %s grant at policy line %u", first_role->name, first->line);
	if (nmatch > 1)
		sb_printf(&sb, " (first of %zu grants for the method, all denied)", nmatch);
	sb_printf(&sb, ": ");
	(void)grant_allows(&c, first, &sb);
	return 0;
}

int
policy_may_call(const struct policy *p, const struct policy_principal *pr, const char *method)
{
	const struct role *r;
	size_t i, j;

	if (p == NULL || pr == NULL || method == NULL)
		return 0;
	for (i = 0; i < pr->nroles; i++) {
		if (pr->roles[i].role >= p->nroles)
			continue;
		r = &p->roles[pr->roles[i].role];
		for (j = 0; j < r->ngrants; j++)
			if (grant_names_method(&r->grants[j], method))
				return 1;
	}
	return 0;
}
