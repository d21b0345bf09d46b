/*
 * utctime.h - strict UTC timestamps of the form RFC 3339 allows and the
 * project writes: "YYYY-MM-DDTHH:MM:SSZ" (TUF expiries) and, with
 * milliseconds, "YYYY-MM-DDTHH:MM:SS.mmmZ" (audit records). Only real
 * dates and times: 2030-02-31 or 25:00 are refused, not normalised.
 */
#ifndef BS_UTCTIME_H
#define BS_UTCTIME_H

#include <time.h>

/* Parses "YYYY-MM-DDTHH:MM:SSZ" exactly into *t. 0 or -1. */
int bs_utc_parse(const char *s, time_t *t);

/* Parses "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly into *t (the second; t may be NULL). 0 or -1. */
int bs_utc_parse_ms(const char *s, time_t *t);

#endif
