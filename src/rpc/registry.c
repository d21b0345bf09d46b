/*
 * registry.c - the table of served methods: built once from the service
 * descriptors at start-up, then read-only (see rpc_service.h). Each entry
 * keeps its full path "/<service>/<method>"; the policy's names are the
 * same without the leading '/'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "rpc/rpc_service.h"

struct entry {
	char *path;                        /* "/boltseal.v1.KeyService/Sign" */
	const struct rpc_method *method;
	const struct rpc_service *service;
};

struct rpc_registry {
	struct entry *e;
	size_t n;
};

void
rpc_registry_free(struct rpc_registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i].path);
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
	if ((r = calloc(1, sizeof(*r))) == NULL || (r->e = calloc(total + 1, sizeof(*r->e))) == NULL)
		goto out;
	for (size_t s = 0; s < n; s++) {
		const struct rpc_service *svc = services[s];

		for (size_t m = 0; m < svc->nmethods; m++) {
			const struct rpc_method *md = &svc->methods[m];

			if (md->handler == NULL || md->request == NULL || md->name == NULL) {
				snprintf(err, errlen, "%s: method %zu has no name, handler or "
				    "request type", svc->name, m);
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
			r->e[r->n].service = svc;
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
rpc_registry_has_service(const struct rpc_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->e[i].service->name, name) == 0)
			return 1;
	return 0;
}
