/*
 * descriptor_index.c - symbol index of a FileDescriptorSet for server
 * reflection (see descriptor_index.h). The set is read through a view of
 * descriptor.proto (proto/boltseal/internal/descriptor_view.proto): each
 * file is kept as the bytes protoc wrote, and read once more as a FileView
 * for its name, imports and symbols. Symbols are kept sorted for lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boltseal/internal/descriptor_view.pb-c.h"
#include "services/reflection/descriptor_index.h"

struct dfile {
	const uint8_t *bytes;           /* in the unpacked set */
	size_t len;
	Boltseal__Internal__FileView *view;
	int *deps;                      /* indexes of the files it imports */
	size_t ndeps;
};

struct dsym {
	char *name;                     /* fully qualified, no leading '.' */
	int file;
};

struct dext {
	char *type;                     /* the extended message, fully qualified */
	int32_t number;
	int file;
};

struct dindex {
	Boltseal__Internal__DescriptorSetView *set;
	struct dfile *f;
	size_t nf;
	struct dsym *sym;
	size_t nsym, capsym;
	struct dext *ext;
	size_t next, capext;
	/* message types, to tell an unknown type from one without extensions */
	struct dsym *msg;
	size_t nmsg, capmsg;
};

void
dindex_free(struct dindex *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->nf; i++) {
		boltseal__internal__file_view__free_unpacked(ix->f[i].view, NULL);
		free(ix->f[i].deps);
	}
	for (size_t i = 0; i < ix->nsym; i++)
		free(ix->sym[i].name);
	for (size_t i = 0; i < ix->nmsg; i++)
		free(ix->msg[i].name);
	for (size_t i = 0; i < ix->next; i++)
		free(ix->ext[i].type);
	free(ix->f);
	free(ix->sym);
	free(ix->msg);
	free(ix->ext);
	if (ix->set != NULL)
		boltseal__internal__descriptor_set_view__free_unpacked(ix->set, NULL);
	free(ix);
}

/* "scope.name" (or "name" when scope is ""), malloc'd; NULL: out of memory or no name. */
static char *
qualify(const char *scope, const char *name)
{
	size_t len;
	char *s;

	if (name == NULL || name[0] == '\0')
		return NULL;
	len = strlen(scope) + strlen(name) + 2;
	if ((s = malloc(len)) == NULL)
		return NULL;
	snprintf(s, len, "%s%s%s", scope, scope[0] != '\0' ? "." : "", name);
	return s;
}

/* Appends (name, file) to a table; takes name. 0 or BS_ERR_NOMEM / BS_ERR_INVALID (no name). */
static int
push(struct dsym **tab, size_t *n, size_t *cap, char *name, int file)
{
	struct dsym *t;

	if (name == NULL)
		return BS_ERR_INVALID;
	if (*n == *cap) {
		size_t ncap = *cap == 0 ? 64 : *cap * 2;

		if ((t = realloc(*tab, ncap * sizeof(*t))) == NULL) {
			free(name);
			return BS_ERR_NOMEM;
		}
		*tab = t;
		*cap = ncap;
	}
	(*tab)[*n].name = name;
	(*tab)[*n].file = file;
	(*n)++;
	return 0;
}

static int
add_symbol(struct dindex *ix, const char *scope, const char *name, int file)
{
	return push(&ix->sym, &ix->nsym, &ix->capsym, qualify(scope, name), file);
}

/* A field or an extension in scope; an extension is also filed under its extendee. */
static int
add_field(struct dindex *ix, const char *scope, const Boltseal__Internal__FieldView *fd,
    int file, int is_ext)
{
	struct dext *t;
	const char *type;
	int rc;

	if ((rc = add_symbol(ix, scope, fd->name, file)) != 0 || !is_ext)
		return rc;
	if (fd->extendee == NULL || !fd->has_number)
		return BS_ERR_INVALID;
	if (ix->next == ix->capext) {
		size_t ncap = ix->capext == 0 ? 16 : ix->capext * 2;

		if ((t = realloc(ix->ext, ncap * sizeof(*t))) == NULL)
			return BS_ERR_NOMEM;
		ix->ext = t;
		ix->capext = ncap;
	}
	type = fd->extendee[0] == '.' ? fd->extendee + 1 : fd->extendee;
	if ((ix->ext[ix->next].type = strdup(type)) == NULL)
		return BS_ERR_NOMEM;
	ix->ext[ix->next].number = fd->number;
	ix->ext[ix->next].file = file;
	ix->next++;
	return 0;
}

/* A message, its fields, nested messages and enums, and extensions declared in it. */
static int
add_message(struct dindex *ix, const char *scope, const Boltseal__Internal__MessageView *m,
    int file)
{
	char *q = qualify(scope, m->name), *copy;
	int rc = BS_ERR_NOMEM;

	if (q == NULL)
		return m->name == NULL ? BS_ERR_INVALID : BS_ERR_NOMEM;
	if ((copy = strdup(q)) == NULL || (rc = push(&ix->msg, &ix->nmsg, &ix->capmsg, copy,
	    file)) != 0)
		goto out;
	if ((rc = add_symbol(ix, scope, m->name, file)) != 0)
		goto out;
	for (size_t i = 0; i < m->n_field && rc == 0; i++)
		rc = add_field(ix, q, m->field[i], file, 0);
	for (size_t i = 0; i < m->n_extension && rc == 0; i++)
		rc = add_field(ix, q, m->extension[i], file, 1);
	for (size_t i = 0; i < m->n_enum_type && rc == 0; i++)
		rc = add_symbol(ix, q, m->enum_type[i]->name, file);
	for (size_t i = 0; i < m->n_nested_type && rc == 0; i++)
		rc = add_message(ix, q, m->nested_type[i], file);
out:
	free(q);
	return rc;
}

/* Every symbol file i defines. */
static int
add_file(struct dindex *ix, int i)
{
	const Boltseal__Internal__FileView *fv = ix->f[i].view;
	const char *pkg = fv->package != NULL ? fv->package : "";
	char *q;
	int rc = 0;

	for (size_t k = 0; k < fv->n_message_type && rc == 0; k++)
		rc = add_message(ix, pkg, fv->message_type[k], i);
	for (size_t k = 0; k < fv->n_enum_type && rc == 0; k++)
		rc = add_symbol(ix, pkg, fv->enum_type[k]->name, i);
	for (size_t k = 0; k < fv->n_extension && rc == 0; k++)
		rc = add_field(ix, pkg, fv->extension[k], i, 1);
	for (size_t k = 0; k < fv->n_service && rc == 0; k++) {
		const Boltseal__Internal__ServiceView *sv = fv->service[k];

		if ((rc = add_symbol(ix, pkg, sv->name, i)) != 0)
			break;
		if ((q = qualify(pkg, sv->name)) == NULL)
			return BS_ERR_NOMEM;
		for (size_t m = 0; m < sv->n_method && rc == 0; m++)
			rc = add_symbol(ix, q, sv->method[m]->name, i);
		free(q);
	}
	return rc;
}

static int
sym_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dsym *)a)->name, ((const struct dsym *)b)->name);
}

/* Sorts a table; BS_ERR_INVALID if a name is in it twice. */
static int
sort_unique(struct dsym *t, size_t n)
{
	if (n == 0)
		return 0;
	qsort(t, n, sizeof(*t), sym_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(t[i - 1].name, t[i].name) == 0)
			return BS_ERR_INVALID;
	return 0;
}

/* Each file's imports as indexes. */
static int
resolve_deps(struct dindex *ix)
{
	for (size_t i = 0; i < ix->nf; i++) {
		const Boltseal__Internal__FileView *fv = ix->f[i].view;

		if (fv->n_dependency == 0)
			continue;
		if ((ix->f[i].deps = calloc(fv->n_dependency, sizeof(int))) == NULL)
			return BS_ERR_NOMEM;
		for (size_t k = 0; k < fv->n_dependency; k++) {
			int d = dindex_file_by_name(ix, fv->dependency[k]);

			if (d < 0)
				return BS_ERR_INVALID;
			ix->f[i].deps[ix->f[i].ndeps++] = d;
		}
	}
	return 0;
}

int
dindex_new(const uint8_t *set, size_t len, struct dindex **out)
{
	struct dindex *ix;
	int rc = BS_ERR_NOMEM;

	if ((ix = calloc(1, sizeof(*ix))) == NULL)
		return BS_ERR_NOMEM;
	ix->set = boltseal__internal__descriptor_set_view__unpack(NULL, len, set);
	if (ix->set == NULL || ix->set->n_file > INT32_MAX) {
		rc = BS_ERR_INVALID;
		goto out;
	}
	if (ix->set->n_file > 0 && (ix->f = calloc(ix->set->n_file, sizeof(*ix->f))) == NULL)
		goto out;
	for (size_t i = 0; i < ix->set->n_file; i++) {
		struct dfile *f = &ix->f[ix->nf];

		f->bytes = ix->set->file[i].data;
		f->len = ix->set->file[i].len;
		f->view = boltseal__internal__file_view__unpack(NULL, f->len, f->bytes);
		if (f->view == NULL || f->view->name == NULL ||
		    dindex_file_by_name(ix, f->view->name) >= 0) {
			if (f->view != NULL)
				boltseal__internal__file_view__free_unpacked(f->view, NULL);
			rc = BS_ERR_INVALID;
			goto out;
		}
		ix->nf++;
	}
	for (size_t i = 0; i < ix->nf; i++)
		if ((rc = add_file(ix, (int)i)) != 0)
			goto out;
	if ((rc = resolve_deps(ix)) != 0 || (rc = sort_unique(ix->sym, ix->nsym)) != 0 ||
	    (rc = sort_unique(ix->msg, ix->nmsg)) != 0)
		goto out;
	*out = ix;
	ix = NULL;
	rc = 0;
out:
	dindex_free(ix);
	return rc;
}

int
dindex_file_by_name(const struct dindex *ix, const char *name)
{
	for (size_t i = 0; i < ix->nf; i++)
		if (strcmp(ix->f[i].view->name, name) == 0)
			return (int)i;
	return -1;
}

static const struct dsym *
find(const struct dsym *t, size_t n, const char *name)
{
	struct dsym key = { (char *)(name[0] == '.' ? name + 1 : name), 0 };

	return n == 0 ? NULL : bsearch(&key, t, n, sizeof(*t), sym_cmp);
}

int
dindex_file_by_symbol(const struct dindex *ix, const char *sym)
{
	const struct dsym *s = find(ix->sym, ix->nsym, sym);

	return s != NULL ? s->file : -1;
}

int
dindex_file_by_extension(const struct dindex *ix, const char *type, int32_t number)
{
	if (type[0] == '.')
		type++;
	for (size_t i = 0; i < ix->next; i++)
		if (ix->ext[i].number == number && strcmp(ix->ext[i].type, type) == 0)
			return ix->ext[i].file;
	return -1;
}

static int
i32_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

int
dindex_extension_numbers(const struct dindex *ix, const char *type, int32_t *nums, size_t max,
    size_t *n)
{
	size_t k = 0;

	if (find(ix->msg, ix->nmsg, type) == NULL)
		return BS_ERR_NOT_FOUND;
	if (type[0] == '.')
		type++;
	for (size_t i = 0; i < ix->next; i++) {
		if (strcmp(ix->ext[i].type, type) != 0)
			continue;
		if (k < max)
			nums[k] = ix->ext[i].number;
		k++;
	}
	if (k > 0 && max > 0)
		qsort(nums, k < max ? k : max, sizeof(*nums), i32_cmp);
	*n = k;
	return 0;
}

size_t
dindex_closure(const struct dindex *ix, int file, int out[DINDEX_CLOSURE_MAX])
{
	size_t n = 0;

	if (file < 0 || (size_t)file >= ix->nf)
		return 0;
	out[n++] = file;
	/* breadth first: each file's imports after it, each file once */
	for (size_t i = 0; i < n; i++) {
		const struct dfile *f = &ix->f[out[i]];

		for (size_t k = 0; k < f->ndeps && n < DINDEX_CLOSURE_MAX; k++) {
			size_t j = 0;

			while (j < n && out[j] != f->deps[k])
				j++;
			if (j == n)
				out[n++] = f->deps[k];
		}
	}
	return n;
}

const uint8_t *
dindex_file_bytes(const struct dindex *ix, int i, size_t *len)
{
	*len = ix->f[i].len;
	return ix->f[i].bytes;
}

const char *
dindex_file_name(const struct dindex *ix, int i)
{
	return ix->f[i].view->name;
}

size_t
dindex_files(const struct dindex *ix)
{
	return ix->nf;
}
