/*
 * sync-bench.c - the disk's own price of durability, for the audit log's
 * figures (run by tests/bench/run-bench):
 *
 *   sync-bench --dir D [--size B] [--seconds S] [--max-ops M]
 *
 * In a fresh file in D (the daemon's state directory: the same file
 * system as its audit log), three loops of B-byte (default 4096) writes,
 * each S seconds (default 3) or M writes:
 *   append    write(2) to an O_APPEND file, then fdatasync(2): what the
 *             audit writer does per group of records;
 *   prealloc  the same into a file preallocated with fallocate(2), written
 *             in place: no size or block allocation to make durable;
 *   dsync     write(2) to an O_APPEND|O_DSYNC file (the sync in the write);
 *   overwrite the same as prealloc into a file whose blocks were written
 *             (zeros) and synced first: no extent to convert either.
 * Prints one "RESULT" line per loop (ops/s, p50, p99 in microseconds, and
 * cpu_us: the whole machine's busy CPU time per write, from /proc/stat,
 * which counts the journal and block-layer threads a sync wakes) and
 * removes its files. Exits 1 on an I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchstat.h"

#define MAX_OPS_CAP 1000000UL
#define PREALLOC_BYTES (256ul << 20)
#define OVERWRITE_BYTES (16ul << 20)   /* written before the loop: keep it short */

/* The machine's busy time so far in clock ticks (all CPUs; /proc/stat), or 0. */
static unsigned long long
busy_ticks(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return 0;
	/* cpu user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	    &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	return n == 8 ? v[0] + v[1] + v[2] + v[5] + v[6] : 0;
}

/* One loop; mode "append", "prealloc" or "dsync". 0, or -1 with errno. */
static int
run(const char *dir, const char *mode, size_t size, unsigned long secs, unsigned long max_ops,
    uint64_t *lat)
{
	char path[4096];
	unsigned char *buf = malloc(size);
	int overwrite = strcmp(mode, "overwrite") == 0, keep = strcmp(mode, "keepsize") == 0;
	int prealloc = overwrite || strcmp(mode, "prealloc") == 0, dsync = strcmp(mode, "dsync") == 0;
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (prealloc ? 0 : O_APPEND) |
	    (dsync ? O_DSYNC : 0);
	unsigned long long busy0;
	unsigned long span = overwrite ? OVERWRITE_BYTES : PREALLOC_BYTES;
	uint64_t t0, end, t;
	unsigned long n = 0;
	int fd, rc = -1;

	if (buf == NULL)
		return -1;
	memset(buf, 'a', size);
	buf[size - 1] = '\n';
	snprintf(path, sizeof(path), "%s/sync-bench.%s.%ld", dir, mode, (long)getpid());
	if ((fd = open(path, flags, 0600)) < 0)
		goto out_free;
	if (keep && (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)span) != 0 || fsync(fd) != 0))
		goto out;
	if (prealloc && !overwrite && (fallocate(fd, 0, 0, (off_t)span) != 0 || fsync(fd) != 0))
		goto out;
	if (overwrite) {
		unsigned char *zero = calloc(1, 1ul << 20);
		unsigned long off;

		for (off = 0; zero != NULL && off < span; off += 1ul << 20)
			if (pwrite(fd, zero, 1ul << 20, (off_t)off) != (ssize_t)(1ul << 20))
				break;
		free(zero);
		if (off < span || fsync(fd) != 0)
			goto out;
	}
	busy0 = busy_ticks();
	t0 = bench_now_ns();
	end = t0 + secs * 1000000000ull;
	while (n < max_ops && (t = bench_now_ns()) < end) {
		ssize_t w = prealloc ? pwrite(fd, buf, size, (off_t)((n * size) % (span - span % size))) :
		    write(fd, buf, size);

		if (w != (ssize_t)size || (!dsync && fdatasync(fd) != 0))
			goto out;
		lat[n++] = bench_now_ns() - t;
	}
	busy0 = busy_ticks() - busy0;
	t = bench_now_ns() - t0;
	qsort(lat, n, sizeof(*lat), bench_cmp_u64);
	printf("RESULT mode=sync-%s size=%zu ops=%lu secs=%.3f ops_per_s=%.0f p50_us=%.1f "
	    "p99_us=%.1f cpu_us=%.1f\n", mode, size, n, (double)t / 1e9, (double)n / ((double)t / 1e9),
	    bench_pct_us(lat, n, 50), bench_pct_us(lat, n, 99),
	    n > 0 ? (double)busy0 * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)n : 0.0);
	rc = 0;
out:
	close(fd);
	(void)unlink(path);
out_free:
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' }, { "size", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' }, { "max-ops", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const modes[] = { "append", "prealloc", "dsync", "overwrite", "keepsize" };
	const char *dir = NULL;
	unsigned long size = 4096, secs = 3, max_ops = 200000;
	uint64_t *lat;
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'b': size = strtoul(optarg, NULL, 10); break;
		case 's': secs = strtoul(optarg, NULL, 10); break;
		case 'm': max_ops = strtoul(optarg, NULL, 10); break;
		default: dir = NULL; optind = argc; break;
		}
	}
	if (dir == NULL || size < 1 || size > (1ul << 20) || secs < 1 || secs > 600 ||
	    max_ops < 1 || max_ops > MAX_OPS_CAP) {
		fprintf(stderr, "usage: sync-bench --dir D [--size 1..1048576] [--seconds 1..600] "
		    "[--max-ops 1..%lu]\n", MAX_OPS_CAP);
		return 2;
	}
	if ((lat = calloc(max_ops, sizeof(*lat))) == NULL)
		return 1;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (run(dir, modes[i], size, secs, max_ops, lat) != 0) {
			fprintf(stderr, "sync-bench %s: %s\n", modes[i], strerror(errno));
			free(lat);
			return 1;
		}
	free(lat);
	return 0;
}
