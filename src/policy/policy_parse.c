/*
 * policy_parse.c - turns the text of a boltseal policy (from a file or any
 * other store) into a struct policy, and frees it again.
 *
 * The text is split into lines and each line into tokens, and principals,
 * roles, grants, requirements and conditions are built from them. Every
 * problem is recorded with its line number (not just the first) and the
 * list is sorted by line before it is written to the caller's buffer, so
 * checks that can only run at the end (undefined roles, grants without
 * methods) still appear in line order. Nothing is returned unless the whole
 * text is correct. The parser does no I/O: policy_load.c reads files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errlist.h"
#include "common/hex.h"
#include "policy/policy_int.h"

#define POLICY_LINE_MAX 4096            /* bytes in one line, newline excluded */

/* --- parser state ------------------------------------------------------------ */

enum tok_type { T_WORD, T_STR, T_LBR, T_RBR, T_COMMA, T_EQ, T_NE };

struct tok {
	enum tok_type type;
	char *s;                /* NUL-terminated, unescaped */
};

enum block { B_NONE, B_PRINCIPAL, B_ROLE };

struct parser {
	const struct policy_schema *schema;
	struct policy *p;
	struct bs_errlist errs;         /* errs.name labels every message */
	int nomem;
	unsigned line;
	enum block block;
	size_t cur;             /* index of the current principal or role */
	int in_grant;           /* the current role's last grant is open */
	char *linebuf;          /* the current line, POLICY_LINE_MAX + 1 bytes */
	struct tok *toks;       /* POLICY_LINE_MAX entries */
	size_t ntoks;
	char *store;            /* token text, 2 * POLICY_LINE_MAX + 2 bytes */
};

static void perr(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records one problem (line 0 = the whole text). */
static void
perr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bs_errlist_vadd(&ps->errs, line, fmt, ap);
	va_end(ap);
}

/* 1 once an allocation failed (the parse is then abandoned). */
static int
out_of_memory(const struct parser *ps)
{
	return ps->nomem || ps->errs.nomem;
}

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
	    (first == 7 && strncmp(s, "request", 7) == 0) ||
	    (first == 7 && strncmp(s, "vehicle", 7) == 0);
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

/* 64 hex digits, or 32 hex pairs separated by ':'; case-insensitive. */
static int
fp_parse(const char *s, uint8_t out[32])
{
	size_t n = strlen(s), i, pos;
	int colons;

	if (n == 64)
		colons = 0;
	else if (n == 32 * 3 - 1)
		colons = 1;
	else
		return -1;
	for (i = 0; i < 32; i++) {
		pos = colons ? 3 * i : 2 * i;
		if (bs_hex_decode(s + pos, 2, &out[i], 1, 0) != 0)
			return -1;
		if (colons && i < 31 && s[pos + 2] != ':')
			return -1;
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

static struct policy_role *
cur_role(struct parser *ps)
{
	return &ps->p->roles[ps->cur];
}

static struct policy_grant *
cur_grant(struct parser *ps)
{
	struct policy_role *r = cur_role(ps);

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
	char q[POLICY_QBUF];
	struct policy_principal *pr;
	const char *id = ps->ntoks == 2 ? ps->toks[1].s : "";
	unsigned nerr_before = ps->errs.total;
	size_t i;

	if (ps->ntoks != 2)
		perr(ps, ps->line, "'principal' needs exactly one id");
	else if (!id_valid(id))
		perr(ps, ps->line, "bad principal id %s (1 to %d of A-Z a-z 0-9 . _ -)",
		    policy_quote(id, '\'', q, sizeof(q)), POLICY_ID_MAX);
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
	pr->bad_header = ps->errs.total != nerr_before;
	ps->block = B_PRINCIPAL;
	ps->cur = ps->p->nprincipals - 1;
	ps->in_grant = 0;
}

static void
kw_role(struct parser *ps)
{
	char q[POLICY_QBUF];
	struct policy_role *r;
	const char *name = ps->ntoks == 2 ? ps->toks[1].s : "";
	size_t i;

	if (ps->ntoks != 2)
		perr(ps, ps->line, "'role' needs exactly one name");
	else if (!id_valid(name))
		perr(ps, ps->line, "bad role name %s (1 to %d of A-Z a-z 0-9 . _ -)",
		    policy_quote(name, '\'', q, sizeof(q)), POLICY_ID_MAX);
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
	struct policy_grant *g;
	struct policy_role *r;

	if (ps->block != B_ROLE) {
		if (ps->block == B_PRINCIPAL)
			perr(ps, ps->line, "'grant' belongs in a role block, not in principal '%s'",
			    cur_principal(ps)->id);
		else
			perr(ps, ps->line, "'grant' outside a role block");
		return;
	}
	if (ps->ntoks != 1)
		perr(ps, ps->line, "'grant' takes no arguments (put methods, keys, purposes, "
		    "require and when on the lines below it)");
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
	char q[POLICY_QBUF];
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
		    "bytes allowed)", policy_quote(v, '\'', q, sizeof(q)));
		return;
	}
	if (kind != 2 && !uri_valid(v)) {
		perr(ps, ps->line, "bad %s %s: expected a URI starting with its scheme "
		    "(spiffe://...)", kw, policy_quote(v, '\'', q, sizeof(q)));
		return;
	}
	for (i = 0; i < ps->p->nprincipals; i++) {
		other = &ps->p->principals[i];
		if (!matcher_claimed(other, kind, v, fp))
			continue;
		if (other == pr)
			perr(ps, ps->line, "%s %s is listed twice in principal '%s'", kw,
			    policy_quote(v, '\'', q, sizeof(q)), pr->id);
		else
			perr(ps, ps->line, "%s %s is already claimed by principal '%s' (line %u)",
			    kw, policy_quote(v, '\'', q, sizeof(q)), other->id, other->line);
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

/*
 * attr NAME VALUE: an attribute of the principal, principal.NAME in
 * conditions. NAME is 1..64 of [a-z0-9_] and not id or uri (the evaluator
 * supplies those); VALUE a word or a quoted string; each NAME once.
 */
static void
kw_attr(struct parser *ps)
{
	char q[POLICY_QBUF];
	struct policy_principal *pr;
	const char *name;
	size_t i, n;

	if (!need_principal(ps, "attr"))
		return;
	pr = cur_principal(ps);
	if (ps->ntoks != 3 || ps->toks[1].type != T_WORD ||
	    (ps->toks[2].type != T_WORD && ps->toks[2].type != T_STR)) {
		perr(ps, ps->line, "'attr' takes a name and a value: attr carrier_id \"acme\"");
		return;
	}
	name = ps->toks[1].s;
	n = strlen(name);
	for (i = 0; i < n && ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' &&
	    name[i] <= '9') || name[i] == '_'); i++)
		;
	if (n == 0 || n > 64 || i != n || strcmp(name, "id") == 0 || strcmp(name, "uri") == 0) {
		perr(ps, ps->line, "bad attribute name %s (1 to 64 of a-z 0-9 _, not id or uri)",
		    policy_quote(name, '\'', q, sizeof(q)));
		return;
	}
	for (i = 0; i < pr->nattrs; i++)
		if (strcmp(pr->attr_names[i], name) == 0) {
			perr(ps, ps->line, "attribute '%s' is set twice for principal '%s'", name,
			    pr->id);
			return;
		}
	n = pr->nattrs;
	if (push_str(&pr->attr_names, &n, name) != 0) {
		ps->nomem = 1;
		return;
	}
	if (push_str(&pr->attr_values, &pr->nattrs, ps->toks[2].s) != 0) {
		free(pr->attr_names[n - 1]);
		ps->nomem = 1;
	}
}

static void
kw_roles(struct parser *ps)
{
	char q[POLICY_QBUF];
	struct policy_principal *pr;
	struct policy_roleref *ref;
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
			    policy_quote(name, '\'', q, sizeof(q)), POLICY_ID_MAX);
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
push_service(const struct policy_schema *sc, struct policy_grant *g, const char *svc, size_t len)
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
	char q[POLICY_QBUF];
	struct policy_grant *g;
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
				    "or package.Service/*)", policy_quote(v, '\'', q, sizeof(q)));
				continue;
			}
			if (!service_known(ps->schema, v, (size_t)(slash - v))) {
				perr(ps, ps->line, "unknown service in method %s",
				    policy_quote(v, '\'', q, sizeof(q)));
				continue;
			}
			if (strcmp(slash + 1, "*") == 0) {
				rc = push_service(ps->schema, g, v, (size_t)(slash - v));
			} else if (!method_known(ps->schema, v)) {
				perr(ps, ps->line, "unknown method %s",
				    policy_quote(v, '\'', q, sizeof(q)));
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
				    policy_quote(v, '\'', q, sizeof(q)));
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

/*
 * A decimal count without sign or leading zero ("0" itself is allowed, to
 * be refused as out of range). Values over 999 read as 1000. -1 if s is not
 * such a number.
 */
static int
count_parse(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < 1000)
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v < 1000 ? v : 1000;
	return 0;
}

/* require mfa | require approvals N of ROLE: one requirement per line, each once a grant. */
static void
kw_require(struct parser *ps)
{
	char q[POLICY_QBUF];
	struct policy_grant *g;
	const char *what;
	unsigned n;

	if (!need_grant(ps, "require"))
		return;
	g = cur_grant(ps);
	if (ps->ntoks < 2) {
		perr(ps, ps->line, "'require' needs 'mfa' or 'approvals N of ROLE'");
		return;
	}
	what = ps->toks[1].s;
	if (strcmp(what, "mfa") == 0) {
		if (ps->ntoks != 2) {
			perr(ps, ps->line, "'require mfa' takes no value (one requirement per line)");
			return;
		}
		if (g->mfa_line != 0) {
			perr(ps, ps->line, "duplicate 'require mfa' in the grant (first on line %u)",
			    g->mfa_line);
			return;
		}
		g->mfa_line = ps->line;
	} else if (strcmp(what, "approvals") == 0) {
		if (ps->ntoks != 5 || strcmp(ps->toks[3].s, "of") != 0) {
			perr(ps, ps->line, "'require approvals' needs a number (1 to %d), 'of' and "
			    "the role whose members approve: require approvals N of ROLE",
			    POLICY_APPROVALS_MAX);
			return;
		}
		if (count_parse(ps->toks[2].s, &n) != 0) {
			perr(ps, ps->line, "bad approvals count %s (a number from 1 to %d)",
			    policy_quote(ps->toks[2].s, '\'', q, sizeof(q)), POLICY_APPROVALS_MAX);
			return;
		}
		if (n < 1 || n > POLICY_APPROVALS_MAX) {
			perr(ps, ps->line, "approvals count %s is out of range (1 to %d)",
			    policy_quote(ps->toks[2].s, '\'', q, sizeof(q)), POLICY_APPROVALS_MAX);
			return;
		}
		if (g->approvals_line != 0) {
			perr(ps, ps->line, "duplicate 'require approvals' in the grant (first on line "
			    "%u)", g->approvals_line);
			return;
		}
		if ((g->approver_role = strdup(ps->toks[4].s)) == NULL) {
			ps->nomem = 1;
			return;
		}
		g->approvals_line = ps->line;
		g->approvals = n;
	} else
		perr(ps, ps->line, "unknown requirement %s (expected 'mfa' or 'approvals N of "
		    "ROLE')",
		    policy_quote(what, '\'', q, sizeof(q)));
}

/* An operand token: a "string" or an attribute name. -1 after reporting. */
static int
operand_parse(struct parser *ps, const struct tok *t, struct policy_operand *op)
{
	char q[POLICY_QBUF];

	if (t->type == T_WORD && !attr_valid(t->s)) {
		perr(ps, ps->line, "bad condition: %s is neither a \"quoted string\" nor an "
		    "attribute name", policy_quote(t->s, '\'', q, sizeof(q)));
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
cond_free(struct policy_cond *c)
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
	char q[POLICY_QBUF];
	struct policy_cond c;
	struct policy_operand *op;
	const struct tok *t = ps->toks;
	const char *opname;
	size_t n = ps->ntoks, i;
	struct policy_grant *g;

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
		    policy_quote(t[1].s, '\'', q, sizeof(q)));
		return;
	}
	opname = t[2].s;
	if (t[2].type == T_EQ || t[2].type == T_NE) {
		c.op = t[2].type == T_EQ ? POLICY_OP_EQ : POLICY_OP_NE;
		if (n != 4) {
			perr(ps, ps->line, "bad condition: '%s' needs exactly one operand", opname);
			return;
		}
	} else if (t[2].type == T_WORD && strcmp(opname, "in") == 0) {
		c.op = POLICY_OP_IN;
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
		c.op = POLICY_OP_MATCHES;
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
		c.op = opname[0] == 'p' ? POLICY_OP_PRESENT : POLICY_OP_ABSENT;
		if (n != 3) {
			perr(ps, ps->line, "bad condition: '%s' takes no operand", opname);
			return;
		}
	} else {
		perr(ps, ps->line, "bad condition: unknown operator %s (expected ==, !=, in, "
		    "matches, present or absent)", policy_quote(opname, '\'', q, sizeof(q)));
		return;
	}

	if ((c.attr = strdup(t[1].s)) == NULL)
		goto nomem;
	if (c.op == POLICY_OP_EQ || c.op == POLICY_OP_NE || c.op == POLICY_OP_MATCHES) {
		if ((op = push(&c.ops, &c.nops, sizeof(*op))) == NULL)
			goto nomem;
		if (operand_parse(ps, &t[3], op) != 0)
			goto fail;
	} else if (c.op == POLICY_OP_IN) {
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
	char q[POLICY_QBUF], kw[16];
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
	else if (strcmp(ps->toks[0].s, "attr") == 0)
		kw_attr(ps);
	else if (strcmp(ps->toks[0].s, "methods") == 0)
		kw_list(ps, "methods");
	else if (strcmp(ps->toks[0].s, "keys") == 0)
		kw_list(ps, "keys");
	else if (strcmp(ps->toks[0].s, "purposes") == 0)
		kw_list(ps, "purposes");
	else if (strcmp(ps->toks[0].s, "when") == 0)
		kw_when(ps);
	else if (strcmp(ps->toks[0].s, "require") == 0)
		kw_require(ps);
	else
		perr(ps, ps->line, "unknown keyword %s",
		    policy_quote(ps->toks[0].s, '\'', q, sizeof(q)));
}

/* Checks that need the whole file: required lines, role references. */
static void
check_all(struct parser *ps)
{
	struct policy *p = ps->p;
	struct policy_principal *pr;
	struct policy_roleref *ref;
	struct policy_grant *g;
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
			for (k = 0; g->approver_role != NULL && k < p->nroles; k++)
				if (strcmp(p->roles[k].name, g->approver_role) == 0)
					break;
			if (g->approver_role != NULL && k == p->nroles)
				perr(ps, g->approvals_line, "undefined approver role '%s'",
				    g->approver_role);
		}
	}
}

/* --- the whole text ---------------------------------------------------------- */

/*
 * Splits text (len bytes, not necessarily NUL-terminated, never written)
 * into lines and parses each from a copy in ps->linebuf.
 */
static void
parse_text(struct parser *ps, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;
	size_t ll, i;

	while (p < end && !out_of_memory(ps)) {
		ps->line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		ll = (size_t)(nl - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (memchr(p, '\0', ll) != NULL) {
			perr(ps, ps->line, "NUL byte in line");
		} else if (ll > POLICY_LINE_MAX) {
			perr(ps, ps->line, "line longer than %d bytes", POLICY_LINE_MAX);
		} else {
			for (i = 0; i < ll; i++)
				if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
					break;
			if (i < ll) {
				perr(ps, ps->line, "control character in line");
			} else {
				memcpy(ps->linebuf, p, ll);
				ps->linebuf[ll] = '\0';
				parse_line(ps, ps->linebuf);
			}
		}
		if (nl == end)
			break;
		p = nl + 1;
	}
}

static void
grant_free(struct policy_grant *g)
{
	size_t i;

	free_strs(g->methods, g->nmethods);
	free_strs(g->keys, g->nkeys);
	free_strs(g->purposes, g->npurposes);
	free(g->approver_role);
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
		free_strs(pr->attr_names, pr->nattrs);
		free_strs(pr->attr_values, pr->nattrs);
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
policy_parse(const char *name, const char *text, size_t len, const struct policy_schema *schema,
    struct policy **out, char *err, size_t errlen)
{
	struct parser ps;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (name == NULL || text == NULL || schema == NULL || out == NULL ||
	    (err == NULL && errlen > 0))
		return BS_ERR_INVALID;
	memset(&ps, 0, sizeof(ps));
	bs_errlist_init(&ps.errs, name, BS_ERRLIST_KEEP);
	ps.schema = schema;
	if (len > POLICY_TEXT_MAX) {
		perr(&ps, 0, "policy text is larger than %d bytes", POLICY_TEXT_MAX);
		rc = BS_ERR_CONFIG;
		goto out;
	}
	if ((ps.p = calloc(1, sizeof(*ps.p))) == NULL ||
	    (ps.linebuf = malloc(POLICY_LINE_MAX + 1)) == NULL ||
	    (ps.toks = calloc(POLICY_LINE_MAX, sizeof(*ps.toks))) == NULL ||
	    (ps.store = malloc(2 * POLICY_LINE_MAX + 2)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	parse_text(&ps, text, len);
	if (!out_of_memory(&ps))
		check_all(&ps);
	if (out_of_memory(&ps)) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	if (ps.errs.total > 0) {
		rc = BS_ERR_CONFIG;
		goto out;
	}
	*out = ps.p;
	ps.p = NULL;
	rc = 0;
out:
	if (rc == BS_ERR_NOMEM && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: out of memory", name);
	else if (rc != 0) {
		bs_errlist_sort(&ps.errs);
		bs_errlist_format(&ps.errs, err, errlen);
	}
	bs_errlist_clear(&ps.errs);
	free(ps.linebuf);
	free(ps.toks);
	free(ps.store);
	policy_free(ps.p);
	return rc;
}
