/*
 * utctime.c - strict UTC timestamps (utctime.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utctime.h"

int
bs_utc_parse(const char *s, time_t *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm, back;
	char again[32];
	time_t v;

	if (s == NULL || strlen(s) != sizeof(shape) - 1)
		return -1;
	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	if ((v = timegm(&tm)) == (time_t)-1 || gmtime_r(&v, &back) == NULL)
		return -1;
	/* 2030-02-31 or 25:00 normalise to another time: refused */
	strftime(again, sizeof(again), "%Y-%m-%dT%H:%M:%SZ", &back);
	if (strcmp(again, s) != 0)
		return -1;
	if (t != NULL)
		*t = v;
	return 0;
}

int
bs_utc_parse_ms(const char *s, time_t *t)
{
	char sec[21];

	if (s == NULL || strlen(s) != 24 || s[19] != '.' || s[23] != 'Z' ||
	    strspn(s + 20, "0123456789") != 3)
		return -1;
	memcpy(sec, s, 19);
	sec[19] = 'Z';
	sec[20] = '\0';
	return bs_utc_parse(sec, t);
}
