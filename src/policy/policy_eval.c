/*
 * policy_eval.c - decides calls against a loaded policy, deny by default.
 *
 * Evaluation walks the principal's roles (in the order of its roles lines)
 * and their grants (in file order). A grant that names the method, whose
 * key rule, purposes and conditions all hold "matches"; a matching grant
 * without requirements allows the call, and otherwise the weakest
 * requirement among matching grants is the verdict. The loaded policy is
 * never written after policy_parse returns, so evaluation needs no lock.
 * Deny reasons quote request-supplied strings only through policy_quote(),
 * which caps them at 64 bytes and escapes anything not printable ASCII.
 */
#include <fnmatch.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_int.h"

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
	if (strncmp(name, "principal.", 10) == 0) {
		for (i = 0; i < c->pr->nattrs; i++)
			if (strcmp(c->pr->attr_names[i], name + 10) == 0)
				return c->pr->attr_values[i];
		return NULL;
	}
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
operand_value(const struct evalctx *c, const struct policy_operand *op)
{
	return op->is_attr ? attr_get(c, op->s) : op->s;
}

static int
cond_holds(const struct evalctx *c, const struct policy_cond *cd)
{
	const char *v = attr_get(c, cd->attr), *w;
	size_t i;

	switch (cd->op) {
	case POLICY_OP_PRESENT:
		return v != NULL;
	case POLICY_OP_ABSENT:
		return v == NULL;
	case POLICY_OP_EQ:
	case POLICY_OP_NE:
		w = operand_value(c, &cd->ops[0]);
		if (v == NULL || w == NULL)
			return 0;
		return (strcmp(v, w) == 0) == (cd->op == POLICY_OP_EQ);
	case POLICY_OP_IN:
		if (v == NULL)
			return 0;
		for (i = 0; i < cd->nops; i++) {
			w = operand_value(c, &cd->ops[i]);
			if (w != NULL && strcmp(v, w) == 0)
				return 1;
		}
		return 0;
	case POLICY_OP_MATCHES:
		return v != NULL && fnmatch(cd->ops[0].s, v, 0) == 0;
	default:
		return 0;
	}
}

static void
sb_operand(struct policy_sbuf *sb, const struct policy_operand *op)
{
	char q[POLICY_QBUF];

	if (op->is_attr)
		policy_sb_printf(sb, "%s", op->s);
	else
		policy_sb_printf(sb, "%s", policy_quote(op->s, '"', q, sizeof(q)));
}

/* "ATTR OP OPERAND (value ...)" for a failed condition. */
static void
sb_cond(struct policy_sbuf *sb, const struct evalctx *c, const struct policy_cond *cd)
{
	static const char *const opnames[] = { "==", "!=", "in", "matches", "present", "absent" };
	char q[POLICY_QBUF];
	const char *v = attr_get(c, cd->attr), *w;
	size_t i;

	policy_sb_printf(sb, "%s %s", cd->attr, opnames[cd->op]);
	if (cd->op == POLICY_OP_IN) {
		policy_sb_printf(sb, " [");
		for (i = 0; i < cd->nops; i++) {
			policy_sb_printf(sb, "%s", i > 0 ? ", " : "");
			sb_operand(sb, &cd->ops[i]);
		}
		policy_sb_printf(sb, "]");
	} else if (cd->nops == 1) {
		policy_sb_printf(sb, " ");
		sb_operand(sb, &cd->ops[0]);
	}
	if (v != NULL)
		policy_sb_printf(sb, " (value %s", policy_quote(v, '"', q, sizeof(q)));
	else
		policy_sb_printf(sb, " (absent");
	for (i = 0; i < cd->nops && cd->op != POLICY_OP_MATCHES; i++) {
		if (!cd->ops[i].is_attr)
			continue;
		w = attr_get(c, cd->ops[i].s);
		if (w != NULL)
			policy_sb_printf(sb, "; %s %s", cd->ops[i].s, policy_quote(w, '"', q, sizeof(q)));
		else
			policy_sb_printf(sb, "; %s absent", cd->ops[i].s);
	}
	policy_sb_printf(sb, ")");
}

static int
grant_names_method(const struct policy_grant *g, const char *method)
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
grant_allows(const struct evalctx *c, const struct policy_grant *g, struct policy_sbuf *sb)
{
	const struct policy_request *req = c->req;
	char q[POLICY_QBUF];
	size_t i;

	if (g->nkeys == 0 && req->key != NULL) {
		if (sb != NULL)
			policy_sb_printf(sb, "the grant has no keys line (it covers only calls that name "
			    "no key) but the call names key %s",
			    policy_quote(req->key, '\'', q, sizeof(q)));
		return 0;
	}
	if (g->nkeys > 0) {
		if (req->key == NULL) {
			if (sb != NULL)
				policy_sb_printf(sb, "the call names no key but the grant covers only "
				    "keys matching its keys patterns");
			return 0;
		}
		for (i = 0; i < g->nkeys; i++)
			if (fnmatch(g->keys[i], req->key, 0) == 0)
				break;
		if (i == g->nkeys) {
			if (sb != NULL)
				policy_sb_printf(sb, "key %s matches no keys pattern",
				    policy_quote(req->key, '\'', q, sizeof(q)));
			return 0;
		}
	}
	if (g->npurposes > 0) {
		if (req->key_purpose == NULL) {
			if (sb != NULL)
				policy_sb_printf(sb, "key %s has no purpose but the grant names purposes",
				    policy_quote(req->key, '\'', q, sizeof(q)));
			return 0;
		}
		for (i = 0; i < g->npurposes; i++)
			if (strcmp(g->purposes[i], req->key_purpose) == 0)
				break;
		if (i == g->npurposes) {
			if (sb != NULL) {
				policy_sb_printf(sb, "purpose %s", policy_quote(req->key_purpose, '\'', q,
				    sizeof(q)));
				policy_sb_printf(sb, " of key %s is not in the grant's purposes",
				    policy_quote(req->key, '\'', q, sizeof(q)));
			}
			return 0;
		}
	}
	for (i = 0; i < g->nconds; i++) {
		if (!cond_holds(c, &g->conds[i])) {
			if (sb != NULL) {
				policy_sb_printf(sb, "condition at line %u failed: ", g->conds[i].line);
				sb_cond(sb, c, &g->conds[i]);
			}
			return 0;
		}
	}
	return 1;
}

/*
 * The requirement of grant g as one number, smaller = weaker: 'require
 * mfa' alone 1, 'require approvals N' 2N, with mfa too 2N + 1; 0 = none.
 */
static unsigned
requirement_weight(const struct policy_grant *g)
{
	unsigned w = g->approvals_line != 0 ? 2 * g->approvals : 0;

	return w + (g->mfa_line != 0 ? 1 : 0);
}

/* The verdict for grant g of role r, which matched but has requirements. */
static void
verdict_needs(struct policy_verdict *v, const struct policy_role *r,
    const struct policy_grant *g)
{
	struct policy_sbuf sb = { v->reason, sizeof(v->reason), 0 };

	v->reason[0] = '\0';
	policy_sb_printf(&sb, "role %s grant at policy line %u requires ", r->name, g->line);
	if (g->approvals_line != 0) {
		v->decision = POLICY_NEEDS_APPROVALS;
		v->approvals = g->approvals;
		v->mfa = g->mfa_line != 0;
		snprintf(v->approver_role, sizeof(v->approver_role), "%s", g->approver_role);
		policy_sb_printf(&sb, "%u approval%s of %s%s", g->approvals,
		    g->approvals == 1 ? "" : "s", g->approver_role,
		    g->mfa_line != 0 ? " and a second factor" : "");
	} else {
		v->decision = POLICY_NEEDS_SECOND_FACTOR;
		v->approvals = 0;
		policy_sb_printf(&sb, "a second factor");
	}
}

/* 1 if one of g's conditions tests attribute name (as its subject or an operand). */
static int
grant_tests(const struct policy_grant *g, const char *name)
{
	size_t i, k;

	for (i = 0; i < g->nconds; i++) {
		if (strcmp(g->conds[i].attr, name) == 0)
			return 1;
		for (k = 0; k < g->conds[i].nops; k++)
			if (g->conds[i].ops[k].is_attr && strcmp(g->conds[i].ops[k].s, name) == 0)
				return 1;
	}
	return 0;
}

int
policy_evaluate(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, struct policy_verdict *v)
{
	struct policy_sbuf sb;
	struct evalctx c = { pr, caller_uri, req };
	const struct policy_role *r, *first_role = NULL, *need_role = NULL;
	const struct policy_grant *g, *first = NULL, *need = NULL;
	char roles[200], q[POLICY_QBUF];
	size_t i, j, nmatch = 0, untested = 0;

	if (v == NULL)
		return POLICY_DENY;
	v->decision = POLICY_DENY;
	v->approvals = 0;
	v->mfa = 0;
	v->approver_role[0] = '\0';
	v->reason[0] = '\0';
	sb = (struct policy_sbuf){ v->reason, sizeof(v->reason), 0 };
	if (p == NULL || pr == NULL || req == NULL || req->method == NULL) {
		policy_sb_printf(&sb, "no policy, principal or method");
		return v->decision;
	}
	for (i = 0; i < pr->nroles; i++) {
		if (pr->roles[i].role >= p->nroles)
			continue;
		r = &p->roles[pr->roles[i].role];
		for (j = 0; j < r->ngrants; j++) {
			g = &r->grants[j];
			if (!grant_names_method(g, req->method))
				continue;
			if (req->tested_attr != NULL && !grant_tests(g, req->tested_attr)) {
				untested++;
				continue;
			}
			if (grant_allows(&c, g, NULL)) {
				if (requirement_weight(g) == 0) {
					v->decision = POLICY_ALLOW;
					return v->decision;
				}
				if (need == NULL || requirement_weight(g) < requirement_weight(need)) {
					need = g;
					need_role = r;
				}
			}
			if (nmatch++ == 0) {
				first = g;
				first_role = r;
			}
		}
	}
	if (need != NULL) {
		verdict_needs(v, need_role, need);
		return v->decision;
	}
	if (first == NULL && untested > 0) {
		policy_sb_printf(&sb, "no grant for %s tests %s, which this call needs (%zu grant%s "
		    "of principal '%s' do%s not)", policy_quote(req->method, '\0', q, sizeof(q)),
		    req->tested_attr, untested, untested == 1 ? "" : "s", pr->id,
		    untested == 1 ? "es" : "");
		return v->decision;
	}
	if (first == NULL) {
		policy_principal_roles(pr, roles, sizeof(roles));
		/* The method is wire data: escaped and capped, unquoted. */
		policy_sb_printf(&sb, "no role of principal '%s' (%s) grants %s", pr->id, roles,
		    policy_quote(req->method, '\0', q, sizeof(q)));
		return v->decision;
	}
	policy_sb_printf(&sb, "role %s grant at policy line %u", first_role->name, first->line);
	if (nmatch > 1)
		policy_sb_printf(&sb, " (first of %zu grants for the method, all denied)", nmatch);
	policy_sb_printf(&sb, ": ");
	(void)grant_allows(&c, first, &sb);
	return v->decision;
}

int
policy_authorize(const struct policy *p, const struct policy_principal *pr,
    const char *caller_uri, const struct policy_request *req, char reason[POLICY_REASON_MAX])
{
	struct policy_verdict v;

	if (policy_evaluate(p, pr, caller_uri, req, &v) == POLICY_ALLOW) {
		reason[0] = '\0';
		return 1;
	}
	memcpy(reason, v.reason, strlen(v.reason) + 1);
	return 0;
}

int
policy_may_call(const struct policy *p, const struct policy_principal *pr, const char *method)
{
	const struct policy_role *r;
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

/* 1 if attribute name a starts with prefix. */
static int
attr_has_prefix(const char *a, const char *prefix)
{
	return a != NULL && strncmp(a, prefix, strlen(prefix)) == 0;
}

int
policy_method_tests(const struct policy *p, const struct policy_principal *pr,
    const char *method, const char *prefix)
{
	const struct policy_role *r;
	const struct policy_cond *c;

	if (p == NULL || pr == NULL || method == NULL || prefix == NULL)
		return 1;     /* unknown: the caller gathers the attributes */
	for (size_t i = 0; i < pr->nroles; i++) {
		if (pr->roles[i].role >= p->nroles)
			continue;
		r = &p->roles[pr->roles[i].role];
		for (size_t j = 0; j < r->ngrants; j++) {
			if (!grant_names_method(&r->grants[j], method))
				continue;
			for (size_t k = 0; k < r->grants[j].nconds; k++) {
				c = &r->grants[j].conds[k];
				if (attr_has_prefix(c->attr, prefix))
					return 1;
				for (size_t o = 0; o < c->nops; o++)
					if (c->ops[o].is_attr && attr_has_prefix(c->ops[o].s, prefix))
						return 1;
			}
		}
	}
	return 0;
}
