/*
 * errlist.c - collected "FILE:LINE: message" problems (see errlist.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errlist.h"

void
bs_errlist_init(struct bs_errlist *e, const char *name, unsigned max)
{
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->max = max;
}

void
bs_errlist_vadd(struct bs_errlist *e, unsigned line, const char *fmt, va_list ap)
{
	char msg[BS_ERRLIST_MSG_MAX];
	struct bs_errent *ne;
	size_t ncap;

	e->total++;
	if (e->nents >= (e->max != 0 ? e->max : BS_ERRLIST_KEEP) || e->nomem)
		return;
	if (e->nents == e->cap) {
		ncap = e->cap == 0 ? 8 : e->cap * 2;
		if ((ne = realloc(e->ents, ncap * sizeof(*ne))) == NULL) {
			e->nomem = 1;
			return;
		}
		e->ents = ne;
		e->cap = ncap;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if ((e->ents[e->nents].msg = strdup(msg)) == NULL) {
		e->nomem = 1;
		return;
	}
	e->ents[e->nents].line = line;
	e->ents[e->nents].seq = e->total;
	e->nents++;
}

void
bs_errlist_add(struct bs_errlist *e, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bs_errlist_vadd(e, line, fmt, ap);
	va_end(ap);
}

static int
errent_cmp(const void *a, const void *b)
{
	const struct bs_errent *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

void
bs_errlist_sort(struct bs_errlist *e)
{
	if (e->nents > 1)
		qsort(e->ents, e->nents, sizeof(e->ents[0]), errent_cmp);
}

/* snprintf of one line, after a '\n' unless first; the length it needs, or 0 on error. */
static size_t
put_line(char *out, size_t room, int first, const char *name, unsigned line, const char *msg)
{
	const char *sep = first ? "" : "\n";
	int n;

	if (line > 0)
		n = snprintf(out, room, "%s%s:%u: %s", sep, name, line, msg);
	else
		n = snprintf(out, room, "%s%s: %s", sep, name, msg);
	return n < 0 ? 0 : (size_t)n;
}

/*
 * Appends one line to out (*used bytes so far) if all of it fits; 1 if it
 * was written, 0 if out is left as it was.
 */
static int
append_line(char *out, size_t outlen, size_t *used, const char *name, unsigned line,
    const char *msg)
{
	size_t room = outlen - *used, n;

	if (room == 0)
		return 0;
	n = put_line(out + *used, room, *used == 0, name, line, msg);
	if (n == 0 || n >= room) {
		out[*used] = '\0';
		return 0;
	}
	*used += n;
	return 1;
}

/* "K more errors not shown" into more. */
static void
more_msg(char more[64], unsigned k)
{
	snprintf(more, 64, "%u more error%s not shown", k, k == 1 ? "" : "s");
}

size_t
bs_errlist_format(const struct bs_errlist *e, char *out, size_t outlen)
{
	char more[64];
	size_t i, used = 0, whole = 0;
	unsigned shown = 0;
	int cut = 0;

	if (outlen > 0)
		out[0] = '\0';
	for (i = 0; i < e->nents; i++) {
		whole += put_line(NULL, 0, i == 0, e->name, e->ents[i].line, e->ents[i].msg);
		if (cut || !append_line(out, outlen, &used, e->name, e->ents[i].line,
		    e->ents[i].msg))
			cut = 1;
		else
			shown++;
	}
	if (e->nents < e->total) {
		more_msg(more, e->total - (unsigned)e->nents);
		whole += put_line(NULL, 0, e->nents == 0, e->name, 0, more);
	}
	if (shown < e->total) {
		more_msg(more, e->total - shown);
		(void)append_line(out, outlen, &used, e->name, 0, more);
	}
	return whole;
}

void
bs_errlist_clear(struct bs_errlist *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nents; i++)
		free(e->ents[i].msg);
	free(e->ents);
	e->ents = NULL;
	e->nents = 0;
	e->cap = 0;
	e->total = 0;
	e->nomem = 0;
}
