/*
 * policy_map.c - which principal a verified client certificate is, and
 * what a principal is called: a pinned certificate fingerprint wins over an
 * exact URI SAN, which wins over the longest matching URI prefix.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy_int.h"

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

int
policy_principal_has_role(const struct policy *p, const char *id, const char *role)
{
	if (p == NULL || id == NULL || role == NULL)
		return 0;
	for (size_t i = 0; i < p->nprincipals; i++) {
		const struct policy_principal *pr = &p->principals[i];

		if (strcmp(pr->id, id) != 0)
			continue;
		for (size_t j = 0; j < pr->nroles; j++)
			if (strcmp(pr->roles[j].name, role) == 0)
				return 1;
		return 0;
	}
	return 0;
}

size_t
policy_principal_count(const struct policy *p)
{
	return p != NULL ? p->nprincipals : 0;
}

void
policy_principal_roles(const struct policy_principal *pr, char *buf, size_t buflen)
{
	struct policy_sbuf sb = { buf, buflen, 0 };
	size_t i;

	if (buf == NULL || buflen == 0)
		return;
	buf[0] = '\0';
	if (pr == NULL)
		return;
	for (i = 0; i < pr->nroles; i++)
		policy_sb_printf(&sb, "%s%s", i > 0 ? "," : "", pr->roles[i].name);
}

size_t
policy_lint(const struct policy *p, char *buf, size_t buflen)
{
	struct policy_sbuf sb = { buf, buflen, 0 };
	char q[POLICY_QBUF];
	const struct policy_principal *pr;
	const char *pfx;
	size_t i, j, n = 0, len;

	if (buf != NULL && buflen > 0)
		buf[0] = '\0';
	if (p == NULL)
		return 0;
	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i];
		for (j = 0; j < pr->nprefixes; j++) {
			pfx = pr->prefixes[j];
			len = strlen(pfx);
			if (len > 0 && pfx[len - 1] == '/')
				continue;
			n++;
			if (buf != NULL && buflen > 0)
				policy_sb_printf(&sb, "%sprincipal '%s' (line %u): uri-prefix %s does not end "
				    "with '/', so it also matches URIs that merely begin with it",
				    n > 1 ? "\n" : "", pr->id, pr->line,
				    policy_quote(pfx, '\'', q, sizeof(q)));
		}
	}
	return n;
}
