/*
 * log.c - structured logging: one JSON object per line on stderr.
 *
 * A line is built in a stack buffer and emitted with a single write(2), so
 * lines from different threads never interleave. Values are JSON-escaped;
 * bytes that are not valid UTF-8 become U+FFFD. A line that would exceed
 * LOG_LINE_MAX drops the fields that do not fit (the message is truncated)
 * and carries "truncated":true.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"

#define LOG_LINE_MAX 8192
#define LOG_FMT_MAX 2048
/* room kept for ,"truncated":true}\n and the NUL */
#define LOG_TAIL_RESERVE 24

static atomic_int log_min_level = BS_LOG_INFO;

void
bs_log_set_level(enum bs_log_level min)
{
	atomic_store(&log_min_level, (int)min);
}

int
bs_log_enabled(enum bs_log_level lvl)
{
	return (int)lvl >= atomic_load(&log_min_level);
}

/*
 * Escapes s into out (capacity cap, NUL-terminated when cap > 0), never
 * splitting an escape or a UTF-8 sequence. Sets *complete to whether all of s
 * fitted. Returns bytes written.
 */
static size_t
escape_into(char *out, size_t cap, const char *s, int *complete)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0, avail, n, i;
	char esc[8];

	*complete = 1;
	if (cap == 0) {
		*complete = (s == NULL || *s == '\0');
		return 0;
	}
	if (s == NULL) {
		out[0] = '\0';
		return 0;
	}
	avail = strlen(s);
	while (avail > 0) {
		n = 0;
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			n = 2;
		} else if (*p < 0x20) {
			esc[0] = '\\';
			n = 2;
			switch (*p) {
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			default:
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0x0f];
				n = 6;
				break;
			}
		}
		if (n > 0) {
			if (cap - w < n + 1)
				goto full;
			memcpy(out + w, esc, n);
			w += n;
			p++;
			avail--;
			continue;
		}
		n = bs_utf8_decode(p, avail, NULL);
		if (n == 0) {
			/* one invalid byte -> U+FFFD */
			if (cap - w < 7)
				goto full;
			memcpy(out + w, "\\ufffd", 6);
			w += 6;
			p++;
			avail--;
			continue;
		}
		if (cap - w < n + 1)
			goto full;
		for (i = 0; i < n; i++)
			out[w++] = (char)p[i];
		p += n;
		avail -= n;
	}
	out[w] = '\0';
	return w;
full:
	*complete = 0;
	out[w] = '\0';
	return w;
}

size_t
bs_json_escape(char *out, size_t cap, const char *s)
{
	int complete;

	return escape_into(out, cap, s, &complete);
}

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	size_t limit;   /* LOG_LINE_MAX - LOG_TAIL_RESERVE */
	int truncated;
};

/* Appends raw bytes if they fit below the limit; returns 0 or -1. */
static int
line_raw(struct line *l, const char *s, size_t n)
{
	if (l->limit - l->len < n)
		return -1;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

/* Appends "s" (quoted, escaped); all-or-nothing unless allow_partial. */
static int
line_str(struct line *l, const char *s, int allow_partial)
{
	size_t start = l->len, room;
	int complete;

	if (line_raw(l, "\"", 1) != 0)
		goto fail;
	room = l->limit - l->len;
	if (room < 2)
		goto fail;
	/* keep one byte for the closing quote */
	l->len += escape_into(l->buf + l->len, room - 1, s, &complete);
	if (!complete) {
		l->truncated = 1;
		if (!allow_partial)
			goto fail;
	}
	if (line_raw(l, "\"", 1) != 0)
		goto fail;
	return 0;
fail:
	l->len = start;
	l->truncated = 1;
	return -1;
}

/* Appends ,"key":"value" entirely or not at all. */
static void
line_field(struct line *l, const char *key, const char *value)
{
	size_t start = l->len;

	if (line_raw(l, ",", 1) != 0 || line_str(l, key, 0) != 0 ||
	    line_raw(l, ":", 1) != 0 || line_str(l, value != NULL ? value : "", 0) != 0) {
		l->len = start;
		l->truncated = 1;
	}
}

static const char *
level_name(enum bs_log_level lvl)
{
	switch (lvl) {
	case BS_LOG_DEBUG: return "debug";
	case BS_LOG_INFO: return "info";
	case BS_LOG_WARN: return "warn";
	case BS_LOG_ERROR: return "error";
	default: return "unknown";
	}
}

/* Formats the current UTC time as 2026-11-21T03:41:03.123Z into ts. */
static void
format_ts(char *ts, size_t cap)
{
	struct timespec now;
	struct tm tm;
	char base[32];

	if (clock_gettime(CLOCK_REALTIME, &now) != 0 || gmtime_r(&now.tv_sec, &tm) == NULL ||
	    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(ts, cap, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(ts, cap, "%.19s.%03dZ", base, (int)(now.tv_nsec / 1000000L) % 1000);
}

static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
log_emit(enum bs_log_level lvl, const char *msg, va_list ap)
{
	struct line l;
	const char *key, *value;
	char ts[40];
	int saved_errno = errno;

	l.len = 0;
	l.limit = LOG_LINE_MAX - LOG_TAIL_RESERVE;
	l.truncated = 0;

	format_ts(ts, sizeof(ts));
	(void)line_raw(&l, "{\"ts\":\"", 7);
	(void)line_raw(&l, ts, strlen(ts));
	(void)line_raw(&l, "\",\"level\":\"", 11);
	(void)line_raw(&l, level_name(lvl), strlen(level_name(lvl)));
	(void)line_raw(&l, "\",\"msg\":", 8);
	(void)line_str(&l, msg != NULL ? msg : "", 1);
	while ((key = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		line_field(&l, key, value);
	}
	/* the tail always fits: it lives in the reserved room */
	l.limit = LOG_LINE_MAX;
	if (l.truncated)
		(void)line_raw(&l, ",\"truncated\":true", 17);
	(void)line_raw(&l, "}\n", 2);
	write_all(STDERR_FILENO, l.buf, l.len);
	errno = saved_errno;
}

void
bs_log(enum bs_log_level lvl, const char *msg, ...)
{
	va_list ap;

	if ((int)lvl < atomic_load(&log_min_level))
		return;
	va_start(ap, msg);
	log_emit(lvl, msg, ap);
	va_end(ap);
}

/* Emits msg with no fields (helper to reuse log_emit's va_list path). */
static void
log_plain(enum bs_log_level lvl, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	log_emit(lvl, msg, ap);
	va_end(ap);
}

void
bs_logf(enum bs_log_level lvl, const char *fmt, ...)
{
	char msg[LOG_FMT_MAX];
	va_list ap;

	if ((int)lvl < atomic_load(&log_min_level))
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	log_plain(lvl, msg, (const char *)NULL);
}
