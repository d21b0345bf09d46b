/*
 * policy_msg.c - the text the policy module writes for people: values
 * quoted safely into messages, deny reasons built in a bounded buffer, and
 * the list of "NAME:LINE: message" problems of a policy text, sorted by
 * line before it is written to the caller's buffer (so checks that can only
 * run at the end of a text still appear in line order).
 *
 * Everything taken from a request or a policy text reaches a message only
 * through policy_quote(), which caps it at 64 bytes and escapes anything
 * that is not printable ASCII.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define POLICY_ERRORS_MAX 100           /* problems kept; the rest are counted */
#define POLICY_MSG_MAX 512              /* bytes of one problem message */

const char *
policy_quote(const char *s, char q, char *out, size_t outlen)
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
	for (i = 0; i < POLICY_SHOW_MAX && s[i] != '\0'; i++) {
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

void
policy_sb_printf(struct policy_sbuf *sb, const char *fmt, ...)
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
policy_errs_vadd(struct policy_errs *e, unsigned line, const char *fmt, va_list ap)
{
	char msg[POLICY_MSG_MAX];
	struct policy_errent *ne, *ent;

	e->total++;
	if (e->nents >= POLICY_ERRORS_MAX || e->nomem)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if ((ne = realloc(e->ents, (e->nents + 1) * sizeof(*ne))) == NULL) {
		e->nomem = 1;
		return;
	}
	e->ents = ne;
	ent = &e->ents[e->nents];
	ent->line = line;
	ent->seq = e->total;
	if ((ent->msg = strdup(msg)) == NULL) {
		e->nomem = 1;
		return;
	}
	e->nents++;
}

void
policy_errs_add(struct policy_errs *e, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	policy_errs_vadd(e, line, fmt, ap);
	va_end(ap);
}

static int
errent_cmp(const void *a, const void *b)
{
	const struct policy_errent *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/*
 * Appends one line to err (used bytes so far) if all of it fits; 1 if it
 * was written, 0 if err is left as it was.
 */
static int
append_line(char *err, size_t errlen, size_t *used, const char *name, unsigned line,
    const char *msg)
{
	const char *sep = *used > 0 ? "\n" : "";
	size_t room = errlen - *used;
	int n;

	if (line > 0)
		n = snprintf(err + *used, room, "%s%s:%u: %s", sep, name, line, msg);
	else
		n = snprintf(err + *used, room, "%s%s: %s", sep, name, msg);
	if (n < 0 || (size_t)n >= room) {
		err[*used] = '\0';
		return 0;
	}
	*used += (size_t)n;
	return 1;
}

void
policy_errs_format(struct policy_errs *e, char *err, size_t errlen)
{
	char more[64];
	size_t i, used = 0;
	unsigned shown = 0;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	if (e->nents > 1)
		qsort(e->ents, e->nents, sizeof(e->ents[0]), errent_cmp);
	for (i = 0; i < e->nents; i++) {
		if (!append_line(err, errlen, &used, e->name, e->ents[i].line, e->ents[i].msg))
			break;
		shown++;
	}
	if (shown < e->total) {
		snprintf(more, sizeof(more), "%u more error%s not shown", e->total - shown,
		    e->total - shown == 1 ? "" : "s");
		(void)append_line(err, errlen, &used, e->name, 0, more);
	}
}

void
policy_errs_clear(struct policy_errs *e)
{
	size_t i;

	for (i = 0; i < e->nents; i++)
		free(e->ents[i].msg);
	free(e->ents);
	e->ents = NULL;
	e->nents = 0;
	e->total = 0;
	e->nomem = 0;
}
