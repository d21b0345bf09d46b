/*
 * histogram.c - fixed-bound latency histograms; see histogram.h.
 */
#include <time.h>

#include "common/histogram.h"

const int64_t bs_hist_bounds_us[BS_HIST_BUCKETS] = { 50, 100, 250, 500, 1000, 2500, 5000, 10000,
	25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 };

void
bs_hist_add(struct bs_hist *h, int64_t us)
{
	size_t b;

	if (us < 0)
		us = 0;
	for (b = 0; b < BS_HIST_BUCKETS && us > bs_hist_bounds_us[b]; b++)
		;
	if (b < BS_HIST_BUCKETS)
		h->bucket[b]++;
	h->count++;
	h->sum_us += us;
}

int64_t
bs_elapsed_us(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
	    (now.tv_nsec - start->tv_nsec) / 1000;
}
