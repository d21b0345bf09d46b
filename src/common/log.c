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

#include "common/bytebuf.h"
#include "common/json.h"
#include "common/log.h"

#define LOG_LINE_MAX 8192
#define LOG_FMT_MAX 2048
/* room kept for ,"truncated":true}\n */
#define LOG_TAIL_RESERVE 24
/* a line stays below this before its tail */
#define LOG_CONTENT_MAX (LOG_LINE_MAX - LOG_TAIL_RESERVE)

static atomic_int log_min_level = BS_LOG_INFO;

/*
 * Fields whose values are numbers: written as JSON numbers when the value
 * is a canonical decimal integer (no sign but '-', no leading zero, at most
 * 18 digits), else as strings ("version" is also the daemon's "0.1.0").
 */
static const char *const numeric_keys[] = {
	"grpc_status", "duration_us", "version", "tree_size", "crl_number", "records", "refused",
	"total", "count", "keys", "workers", "uid", "window_ms", "limit_bytes", NULL,
};

static int
numeric_field(const char *key, const char *value)
{
	size_t i, n;
	const char *d = value[0] == '-' ? value + 1 : value;

	/* most values are not numbers: no name lookup for them (every rpc line) */
	if (d[0] < '0' || d[0] > '9')
		return 0;
	for (i = 0; numeric_keys[i] != NULL; i++)
		if (strcmp(key, numeric_keys[i]) == 0)
			break;
	if (numeric_keys[i] == NULL)
		return 0;
	n = strlen(d);
	if (n == 0 || n > 18 || (d[0] == '0' && (n > 1 || d != value)))
		return 0;
	return strspn(d, "0123456789") == n;
}

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
	char mem[LOG_LINE_MAX], cut[LOG_LINE_MAX], ts[40];
	struct bytebuf b;
	struct bs_json j;
	const char *key, *value;
	size_t room, n;
	int truncated = 0, saved_errno = errno;

	if (msg == NULL)
		msg = "";
	bytebuf_init_fixed(&b, mem, sizeof(mem));
	bs_json_init(&j, &b);
	format_ts(ts, sizeof(ts));
	bs_json_begin_object(&j, NULL);
	bs_json_put_string(&j, "ts", ts);
	bs_json_put_string(&j, "level", level_name(lvl));
	/* the quoted message keeps the line below the limit, or is cut to */
	room = LOG_CONTENT_MAX - b.len - (sizeof(",\"msg\":") - 1);
	if (bs_json_escaped_len(msg) + 2 < room) {
		bs_json_put_string(&j, "msg", msg);
	} else {
		/* as much as fits, ending between two escapes or UTF-8 sequences */
		cut[0] = '"';
		n = bs_json_escape(cut + 1, room - 2, msg);
		cut[n + 1] = '"';
		bs_json_put_raw(&j, "msg", cut, n + 2);
		truncated = 1;
	}
	while ((key = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		if (value == NULL)
			value = "";
		/* ,"key":"value" whole, and only if the line stays below the limit */
		n = 6 + bs_json_escaped_len(key) + bs_json_escaped_len(value);
		if (n >= LOG_CONTENT_MAX - b.len) {
			truncated = 1;
			continue;
		}
		if (numeric_field(key, value))
			bs_json_put_raw(&j, key, value, strlen(value));
		else
			bs_json_put_string(&j, key, value);
	}
	/* the tail always fits: it lives in the reserved room */
	if (truncated)
		bs_json_put_bool(&j, "truncated", 1);
	bs_json_end_object(&j);
	bytebuf_put(&b, "\n", 1);
	write_all(STDERR_FILENO, mem, b.len);
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
