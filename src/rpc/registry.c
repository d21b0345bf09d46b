/*
 * registry.c - the served services and their methods: built once from the
 * service descriptors at start-up (see rpc_service.h), then configured
 * (each service's settings section) and started (each service's init), and
 * read-only while serving. Each method entry keeps its full path
 * "/<service>/<method>"; the policy's names are the same without the '/'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errlist.h"
#include "rpc/rpc.h"
#include "rpc/rpc_service.h"
#include "types/types.h"

struct entry {
	char *path;                        /* "/boltseal.v1.KeyService/Sign" */
	const struct rpc_method *method;
	size_t svc;                        /* index into svcs */
};

/* A "<section>.<setting>.<NAME> = N" line of a per_name setting. */
struct named_value {
	size_t setting;
	char *name;
	unsigned long value;
	unsigned line;
};

struct served {
	const struct rpc_service *desc;
	unsigned long *values;             /* desc->nsettings, defaults until configured */
	struct named_value *named;         /* in file order */
	size_t nnamed;
	void *state;                       /* what init made */
	int started;
};

struct rpc_registry {
	struct entry *e;
	size_t n;
	struct served *svcs;
	size_t nsvcs;
};

void
rpc_registry_free(struct rpc_registry *r)
{
	if (r == NULL)
		return;
	rpc_registry_stop(r);
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i].path);
	for (size_t i = 0; i < r->nsvcs; i++) {
		free(r->svcs[i].values);
		for (size_t k = 0; k < r->svcs[i].nnamed; k++)
			free(r->svcs[i].named[k].name);
		free(r->svcs[i].named);
	}
	free(r->svcs);
	free(r->e);
	free(r);
}

int
rpc_registry_new(const struct rpc_service *const *services, size_t n, struct rpc_registry **out,
    char *err, size_t errlen)
{
	struct rpc_registry *r = NULL;
	size_t total = 0, len;
	int rc = BS_ERR_NOMEM;

	for (size_t s = 0; s < n; s++)
		total += services[s]->nmethods;
	if ((r = calloc(1, sizeof(*r))) == NULL || (r->e = calloc(total + 1, sizeof(*r->e))) == NULL ||
	    (r->svcs = calloc(n + 1, sizeof(*r->svcs))) == NULL)
		goto out;
	for (size_t s = 0; s < n; s++) {
		const struct rpc_service *svc = services[s];

		r->svcs[s].desc = svc;
		r->nsvcs++;
		if (svc->nsettings > 0) {
			if (svc->section == NULL) {
				snprintf(err, errlen, "%s: settings without a section", svc->name);
				rc = BS_ERR_INVALID;
				goto out;
			}
			if ((r->svcs[s].values = calloc(svc->nsettings, sizeof(unsigned long))) ==
			    NULL)
				goto out;
			for (size_t k = 0; k < svc->nsettings; k++)
				r->svcs[s].values[k] = svc->settings[k].def;
		}

		for (size_t m = 0; m < svc->nmethods; m++) {
			const struct rpc_method *md = &svc->methods[m];

			if (md->handler == NULL || md->request == NULL || md->name == NULL) {
				snprintf(err, errlen, "%s: method %zu has no name, handler or "
				    "request type", svc->name, m);
				rc = BS_ERR_INVALID;
				goto out;
			}
			if ((md->flags & RPC_F_REQUEST_STREAM) && (!(md->flags & RPC_F_STREAM) ||
			    md->authz != RPC_AUTHZ_ANY_PRINCIPAL)) {
				snprintf(err, errlen, "%s/%s: a request stream needs a response "
				    "stream and any-principal authorization", svc->name, md->name);
				rc = BS_ERR_INVALID;
				goto out;
			}
			len = strlen(svc->name) + strlen(md->name) + 3;
			if (len > RPC_PATH_MAX) {
				snprintf(err, errlen, "%s/%s: path too long", svc->name, md->name);
				rc = BS_ERR_INVALID;
				goto out;
			}
			if ((r->e[r->n].path = malloc(len)) == NULL)
				goto out;
			snprintf(r->e[r->n].path, len, "/%s/%s", svc->name, md->name);
			r->e[r->n].method = md;
			r->e[r->n].svc = s;
			if (rpc_registry_find(r, r->e[r->n].path) != NULL) {
				snprintf(err, errlen, "%s is served twice", r->e[r->n].path);
				free(r->e[r->n].path);
				r->e[r->n].path = NULL;
				rc = BS_ERR_INVALID;
				goto out;
			}
			r->n++;
		}
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	rpc_registry_free(r);
	return rc;
}

const struct rpc_method *
rpc_registry_find(const struct rpc_registry *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->e[i].path, path) == 0)
			return r->e[i].method;
	return NULL;
}

size_t
rpc_registry_count(const struct rpc_registry *r)
{
	return r->n;
}

const char *
rpc_registry_name(const struct rpc_registry *r, size_t i)
{
	return i < r->n ? r->e[i].path + 1 : NULL;
}

int
rpc_registry_policy_schema(const struct rpc_registry *r, struct rpc_policy_schema *out)
{
	if (r->n > RPC_SCHEMA_METHODS_MAX)
		return BS_ERR_TOO_BIG;
	for (size_t i = 0; i < r->n; i++)
		out->methods[i] = r->e[i].path + 1;
	out->schema.methods = out->methods;
	out->schema.nmethods = r->n;
	out->schema.purposes = bs_purpose_names(&out->schema.npurposes);
	return 0;
}

size_t
rpc_registry_service_count(const struct rpc_registry *r)
{
	return r->nsvcs;
}

const char *
rpc_registry_service_name(const struct rpc_registry *r, size_t i)
{
	return i < r->nsvcs ? r->svcs[i].desc->name : NULL;
}

int
rpc_registry_has_service(const struct rpc_registry *r, const char *name)
{
	for (size_t i = 0; i < r->nsvcs; i++)
		if (strcmp(r->svcs[i].desc->name, name) == 0)
			return 1;
	return 0;
}

void *
rpc_registry_state(const struct rpc_registry *r, const struct rpc_method *m)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].method == m)
			return r->svcs[r->e[i].svc].state;
	return NULL;
}

/* The served service whose section is the part of key before the '.', or NULL. */
static struct served *
section_of(struct rpc_registry *r, const char *key, size_t *seclen)
{
	const char *dot = strchr(key, '.');

	*seclen = dot != NULL ? (size_t)(dot - key) : strlen(key);
	for (size_t i = 0; i < r->nsvcs; i++) {
		const char *sec = r->svcs[i].desc->section;

		if (sec != NULL && strlen(sec) == *seclen && memcmp(sec, key, *seclen) == 0)
			return &r->svcs[i];
	}
	return NULL;
}

/* NAME of a per_name line: 1..RPC_SETTING_NAME_MAX of [a-z0-9_.-]. */
static int
per_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > RPC_SETTING_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '_' || name[i] == '.' || name[i] == '-'))
			return 0;
	return 1;
}

/* One setting line into its service's values (or named values); problems go to e. */
static void
configure_one(struct rpc_registry *r, const struct rpc_setting_line *l, struct bs_errlist *e)
{
	const struct rpc_setting *st = NULL;
	const char *name = NULL;
	struct named_value *nv;
	struct served *sv;
	unsigned long v;
	size_t seclen, k;
	char *end;

	if ((sv = section_of(r, l->key, &seclen)) == NULL) {
		bs_errlist_add(e, l->line, "unknown key '%s' (no service served here has a "
		    "section '%.*s')", l->key, (int)seclen, l->key);
		return;
	}
	for (k = 0; k < sv->desc->nsettings; k++)
		if (l->key[seclen] == '.' && strcmp(sv->desc->settings[k].name,
		    l->key + seclen + 1) == 0) {
			st = &sv->desc->settings[k];
			break;
		}
	if (st == NULL && l->key[seclen] == '.') {
		for (k = 0; k < sv->desc->nsettings; k++) {
			const char *n = sv->desc->settings[k].name;
			size_t nl = strlen(n);

			if (sv->desc->settings[k].per_name &&
			    strncmp(l->key + seclen + 1, n, nl) == 0 && l->key[seclen + 1 + nl] == '.') {
				st = &sv->desc->settings[k];
				name = l->key + seclen + 2 + nl;
				break;
			}
		}
	}
	if (st == NULL) {
		bs_errlist_add(e, l->line, "unknown key '%s' (%s has no such setting)", l->key,
		    sv->desc->section);
		return;
	}
	errno = 0;
	v = strtoul(l->value, &end, 10);
	if (l->value[0] < '0' || l->value[0] > '9' || *end != '\0' || errno != 0) {
		bs_errlist_add(e, l->line, "%s: '%s' is not a decimal number", l->key, l->value);
		return;
	}
	if (v < st->min || v > st->max) {
		bs_errlist_add(e, l->line, "%s: %lu is out of range (%lu..%lu)", l->key, v,
		    st->min, st->max);
		return;
	}
	if (name == NULL) {
		sv->values[k] = v;
		return;
	}
	if (!per_name_ok(name)) {
		bs_errlist_add(e, l->line, "%s: '%s' is not a name (1..%d of [a-z0-9_.-])", l->key,
		    name, RPC_SETTING_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < sv->nnamed; i++)
		if (sv->named[i].setting == k && strcmp(sv->named[i].name, name) == 0) {
			bs_errlist_add(e, l->line, "%s is set twice (first on line %u)", l->key,
			    sv->named[i].line);
			return;
		}
	nv = realloc(sv->named, (sv->nnamed + 1) * sizeof(*nv));
	if (nv == NULL) {
		e->nomem = 1;
		return;
	}
	sv->named = nv;
	if ((nv[sv->nnamed].name = strdup(name)) == NULL) {
		e->nomem = 1;
		return;
	}
	nv[sv->nnamed].setting = k;
	nv[sv->nnamed].value = v;
	nv[sv->nnamed].line = l->line;
	sv->nnamed++;
	/* the service's own check of the name, with the line (boltsealed -n too) */
	if (sv->desc->named != NULL) {
		char why[256] = "";

		if (sv->desc->named(NULL, k, name, v, why, sizeof(why)) != 0)
			bs_errlist_add(e, l->line, "%s: %s", l->key, why[0] != '\0' ? why :
			    "not accepted");
	}
}

int
rpc_registry_configure(struct rpc_registry *r, const struct rpc_setting_line *lines, size_t n,
    const char *file, char *err, size_t errlen)
{
	struct bs_errlist e;
	int rc;

	bs_errlist_init(&e, file, 0);
	for (size_t i = 0; i < n; i++)
		configure_one(r, &lines[i], &e);
	if (e.nomem)
		rc = BS_ERR_NOMEM;
	else
		rc = e.total > 0 ? BS_ERR_CONFIG : 0;
	if (rc != 0 && errlen > 0)
		(void)bs_errlist_format(&e, err, errlen);
	bs_errlist_clear(&e);
	return rc;
}

int
rpc_registry_start(struct rpc_registry *r, void *env, char *err, size_t errlen)
{
	char why[256];
	int rc;

	for (size_t i = 0; i < r->nsvcs; i++) {
		struct served *sv = &r->svcs[i];

		if (sv->started)
			continue;
		why[0] = '\0';
		if (sv->desc->init != NULL &&
		    (rc = sv->desc->init(env, sv->values, &sv->state, why, sizeof(why))) != 0) {
			snprintf(err, errlen, "%s: %s", sv->desc->name, why[0] != '\0' ? why :
			    bs_strerror(rc));
			rpc_registry_stop(r);
			return rc;
		}
		for (size_t k = 0; k < sv->nnamed; k++) {
			struct named_value *nv = &sv->named[k];

			why[0] = '\0';
			rc = sv->desc->named != NULL ? sv->desc->named(sv->state, nv->setting, nv->name,
			    nv->value, why, sizeof(why)) : BS_ERR_CONFIG;
			if (rc != 0) {
				snprintf(err, errlen, "%s: %s.%s.%s: %s", sv->desc->name,
				    sv->desc->section, sv->desc->settings[nv->setting].name, nv->name,
				    why[0] != '\0' ? why : bs_strerror(rc));
				if (sv->desc->fini != NULL)
					sv->desc->fini(sv->state);
				sv->state = NULL;
				rpc_registry_stop(r);
				return rc;
			}
		}
		sv->started = 1;
	}
	return 0;
}

void
rpc_registry_stop(struct rpc_registry *r)
{
	for (size_t i = r->nsvcs; i > 0; i--) {
		struct served *sv = &r->svcs[i - 1];

		if (!sv->started)
			continue;
		if (sv->desc->fini != NULL)
			sv->desc->fini(sv->state);
		sv->state = NULL;
		sv->started = 0;
	}
}

int
rpc_registry_serving(const struct rpc_registry *r, const char *name, void *env)
{
	int found = 0;

	for (size_t i = 0; i < r->nsvcs; i++) {
		const struct served *sv = &r->svcs[i];

		if (name != NULL && strcmp(sv->desc->name, name) != 0)
			continue;
		found = 1;
		if (sv->desc->serving != NULL && !sv->desc->serving(env, sv->state))
			return 0;
	}
	return found ? 1 : -1;
}
