/*
 * benchstat.h - what the small benchmark tools share: a monotonic clock in
 * nanoseconds and nearest-rank percentiles of sorted latencies.
 */
#ifndef BS_BENCHSTAT_H
#define BS_BENCHSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* qsort comparator of uint64_t. */
static inline int
bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The nearest-rank p-th percentile of n sorted nanosecond values, in microseconds (0 if none). */
static inline double
bench_pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (n == 0)
		return 0;
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)sorted[k - 1] / 1000.0;
}

#endif
