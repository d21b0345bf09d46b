/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Every line has "ts" (UTC, ms), "level" and "msg"; callers add fields as
 * strings; those of a numeric field name (log.c: grpc_status, duration_us,
 * version, tree_size, ...) holding a decimal integer are JSON numbers. Values are JSON-escaped (common/json.h). Never pass a
 * secret (PIN, key material) to these functions. Thread-safe (one write(2)
 * per line).
 */
#ifndef BS_LOG_H
#define BS_LOG_H

#include <stdint.h>

enum bs_log_level { BS_LOG_DEBUG = 0, BS_LOG_INFO, BS_LOG_WARN, BS_LOG_ERROR };

/* Lines below min are dropped. Default BS_LOG_INFO. */
void bs_log_set_level(enum bs_log_level min);

/* 1 if a line at lvl would be written (lets hot paths skip building fields). */
int bs_log_enabled(enum bs_log_level lvl);

/*
 * Logs msg with fields given as (key, value) string pairs, terminated by a
 * NULL key: bs_log(BS_LOG_INFO, "listening", "addr", "127.0.0.1:7443", NULL).
 */
void bs_log(enum bs_log_level lvl, const char *msg, ...) __attribute__((sentinel));

/* printf-style message, no extra fields. */
void bs_logf(enum bs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
