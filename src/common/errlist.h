/*
 * errlist.h - the "FILE:LINE: message" problems of one text (the daemon's
 * configuration, a policy), collected so that a person can fix every one
 * in one pass.
 *
 * Add each problem with its line (0 = the whole text); at most max
 * messages are kept and the rest only counted. Optionally sort them by
 * line (recording order among equals), then render them into a caller
 * buffer: "NAME:LINE: message" ("NAME: message" for line 0), '\n' between
 * lines, cut at a line boundary when the buffer is full, and then "NAME: K
 * more errors not shown" for those that were dropped or cut.
 */
#ifndef BS_ERRLIST_H
#define BS_ERRLIST_H

#include <stdarg.h>
#include <stddef.h>

#include "common/bs_error.h"

#define BS_ERRLIST_MSG_MAX 512          /* bytes of one message, NUL included; cut beyond */
#define BS_ERRLIST_KEEP 100             /* messages kept when max is 0 */

struct bs_errent {
	unsigned line;                  /* 0 = the whole text */
	unsigned seq;                   /* order of recording, for a stable sort */
	char *msg;                      /* owned */
};

/*
 * A zeroed struct bs_errlist with name set is ready too (it keeps
 * BS_ERRLIST_KEEP messages).
 */
struct bs_errlist {
	const char *name;               /* borrowed: the FILE of every line */
	unsigned max;                   /* messages kept; 0 = BS_ERRLIST_KEEP */
	struct bs_errent *ents;
	size_t nents, cap;
	unsigned total;                 /* every problem, kept or not */
	int nomem;                      /* a message was lost to ENOMEM */
};

/* Starts an empty list for the text called name (borrowed), keeping max (0: default). */
void bs_errlist_init(struct bs_errlist *e, const char *name, unsigned max);

/*
 * Records one problem at line (0 = the whole text). Over max it is only
 * counted; when memory runs out it is counted and e->nomem set.
 */
void bs_errlist_add(struct bs_errlist *e, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bs_errlist_vadd(struct bs_errlist *e, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Orders the kept problems by line, those of one line in recording order. */
void bs_errlist_sort(struct bs_errlist *e);

/*
 * Renders the kept problems into out (capacity outlen; NUL-terminated when
 * outlen > 0) as the header describes. Every line is written whole or not
 * at all; the "K more errors not shown" line (singular for one) only if
 * it fits. out may be NULL when outlen is 0. Returns the length the whole
 * text would have with no cut (so outlen = that + 1 holds all of it).
 */
size_t bs_errlist_format(const struct bs_errlist *e, char *out, size_t outlen);

/* Frees the messages; e is empty again (name and max kept). NULL is a no-op. */
void bs_errlist_clear(struct bs_errlist *e);

#endif
