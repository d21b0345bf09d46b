/*
 * histogram.h - a latency histogram with fixed bounds, for the metrics
 * (Prometheus histograms): one set of bucket bounds for every latency the
 * daemon reports, from 50 microseconds (an HSM signature) to 5 seconds.
 * Not thread-safe: each histogram belongs to one thread, or to one lock.
 */
#ifndef BS_HISTOGRAM_H
#define BS_HISTOGRAM_H

#include <stdint.h>
#include <time.h>

#define BS_HIST_BUCKETS 17

/* The upper bounds of the buckets, microseconds, ascending (+Inf is implicit). */
extern const int64_t bs_hist_bounds_us[BS_HIST_BUCKETS];

struct bs_hist {
	uint64_t bucket[BS_HIST_BUCKETS];   /* not cumulative: in (bound[i-1], bound[i]] */
	uint64_t count;                      /* every observation, those above the last bound too */
	int64_t sum_us;
};

/* Counts one observation of us microseconds (negative counts as 0). */
void bs_hist_add(struct bs_hist *h, int64_t us);

/* Microseconds from *start (CLOCK_MONOTONIC) to now. */
int64_t bs_elapsed_us(const struct timespec *start);

#endif
