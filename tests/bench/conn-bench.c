/*
 * conn-bench.c - connection-level benchmarks of boltseal's scale claims (run
 * by tests/bench/run-bench):
 *
 *   conn-bench handshakes --server HOST:PORT --ca F --cert F --key F
 *              [--probe h2|line] [--threads T] [--seconds S] [--max-ops M]
 *       T threads (default 2), each in a loop: a new TCP connection, a full
 *       TLS 1.3 handshake (ALPN h2, the client certificate, no session
 *       resumption), then proof that the server finished its side: with
 *       --probe h2 (boltsealed) the HTTP/2 client preface and an empty
 *       SETTINGS frame go out and the server's first record is awaited (its
 *       SETTINGS); with --probe line (openssl s_server -rev) "x\n" goes out
 *       and its echo is awaited. Then the connection is closed. The same loop
 *       against both servers on the same certificates is the comparison.
 *
 *   conn-bench idle --server HOST:PORT --ca F --cert F --key F --conns N
 *              --pid PID [--hold-seconds H]
 *       Opens N connections one after another (handshake, HTTP/2 preface and
 *       SETTINGS, the server's SETTINGS awaited), then frees each one's TLS
 *       state but keeps its socket: the server holds N idle mTLS HTTP/2
 *       connections while this process holds only descriptors. Reads PID's
 *       VmRSS before, after, and after holding H seconds (default 3).
 *
 * Each prints one line starting with "RESULT" and exits 0, or 1 if an
 * operation failed. Loops are bounded by --seconds and --max-ops (handshakes)
 * or by N <= 100000 and a 600 s deadline (idle). Loopback addresses only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "benchstat.h"
#include <openssl/ssl.h>

#define MAX_THREADS 64
#define MAX_OPS_CAP 10000000UL
#define MAX_CONNS 100000UL
#define IDLE_DEADLINE_S 600
#define IO_TIMEOUT_S 10

/* HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5). */
static const unsigned char h2_hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
#define H2_HELLO_LEN (sizeof(h2_hello) - 1)

struct opts {
	const char *mode, *server, *ca, *cert, *key, *probe;
	unsigned threads, hold;
	unsigned long seconds, max_ops, conns;
	long pid;
};

struct shared {
	const struct opts *o;
	SSL_CTX *ctx;
	struct sockaddr_in addr;
	uint64_t deadline_ns;
	atomic_ulong next;      /* operations claimed */
	atomic_int failed;
	uint64_t *lat_ns;       /* per operation, in claim order */
};

static void
usage(void)
{
	fprintf(stderr, "usage: conn-bench handshakes|idle --server 127.0.0.1:PORT --ca F --cert F "
	    "--key F [--probe h2|line] [--threads T] [--seconds S] [--max-ops M] [--conns N] "
	    "[--pid PID] [--hold-seconds H]\n");
	exit(2);
}

static unsigned long
num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max)
		usage();
	return v;
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "server", required_argument, NULL, 's' }, { "ca", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
		{ "probe", required_argument, NULL, 'p' }, { "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 'S' }, { "max-ops", required_argument, NULL, 'm' },
		{ "conns", required_argument, NULL, 'n' }, { "pid", required_argument, NULL, 'P' },
		{ "hold-seconds", required_argument, NULL, 'H' }, { NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->probe = "h2";
	o->threads = 2;
	o->seconds = 5;
	o->max_ops = 1000000;
	o->hold = 3;
	if (argc < 2)
		usage();
	o->mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o->server = optarg; break;
		case 'a': o->ca = optarg; break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'p': o->probe = optarg; break;
		case 't': o->threads = (unsigned)num(optarg, 1, MAX_THREADS); break;
		case 'S': o->seconds = num(optarg, 1, 3600); break;
		case 'm': o->max_ops = num(optarg, 1, MAX_OPS_CAP); break;
		case 'n': o->conns = num(optarg, 1, MAX_CONNS); break;
		case 'P': o->pid = (long)num(optarg, 1, 1UL << 22); break;
		case 'H': o->hold = (unsigned)num(optarg, 0, 600); break;
		default: usage();
		}
	}
	if (o->server == NULL || o->ca == NULL || o->cert == NULL || o->key == NULL ||
	    (strcmp(o->probe, "h2") != 0 && strcmp(o->probe, "line") != 0))
		usage();
	if (strcmp(o->mode, "idle") == 0 && (o->conns == 0 || o->pid == 0))
		usage();
}

/* HOST:PORT with HOST a 127.0.0.0/8 address (loopback only). */
static int
loopback_addr(const char *hp, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(hp, ':');

	if (colon == NULL || (size_t)(colon - hp) >= sizeof(host))
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)num(colon + 1, 1, 65535));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 ||
	    (ntohl(sa->sin_addr.s_addr) >> 24) != 127)
		return -1;
	return 0;
}

static SSL_CTX *
client_ctx(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	static const unsigned char alpn[] = "\x02h2";

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* every handshake full: no session cache, no tickets offered */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	return ctx;
}

/*
 * One connection: TCP, the TLS handshake, the probe written and the
 * server's first application byte read. Returns the SSL (its fd in
 * *fd_out) or NULL.
 */
static SSL *
connect_one(const struct shared *sh, int *fd_out)
{
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	const int h2 = strcmp(sh->o->probe, "h2") == 0;
	unsigned char b;
	SSL *ssl = NULL;

	if (fd < 0)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&sh->addr, sizeof(sh->addr)) != 0)
		goto fail;
	if ((ssl = SSL_new(sh->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set1_host(ssl, "localhost") != 1 || SSL_connect(ssl) != 1)
		goto fail;
	if (SSL_write(ssl, h2 ? h2_hello : (const unsigned char *)"x\n",
	    h2 ? (int)H2_HELLO_LEN : 2) <= 0 || SSL_read(ssl, &b, 1) != 1)
		goto fail;
	*fd_out = fd;
	return ssl;
fail:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void *
hs_thread(void *arg)
{
	struct shared *sh = arg;
	unsigned long i;
	uint64_t t0;
	int fd;
	SSL *ssl;

	for (;;) {
		if (bench_now_ns() >= sh->deadline_ns || atomic_load(&sh->failed))
			break;
		i = atomic_fetch_add(&sh->next, 1);
		if (i >= sh->o->max_ops)
			break;
		t0 = bench_now_ns();
		if ((ssl = connect_one(sh, &fd)) == NULL) {
			atomic_store(&sh->failed, 1);
			break;
		}
		sh->lat_ns[i] = bench_now_ns() - t0;
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static int
run_handshakes(struct shared *sh)
{
	pthread_t th[MAX_THREADS];
	uint64_t t0, t1;
	unsigned long n;

	if ((sh->lat_ns = calloc(sh->o->max_ops, sizeof(uint64_t))) == NULL)
		return 1;
	t0 = bench_now_ns();
	sh->deadline_ns = t0 + sh->o->seconds * 1000000000ull;
	for (unsigned t = 0; t < sh->o->threads; t++)
		if (pthread_create(&th[t], NULL, hs_thread, sh) != 0)
			return 1;
	for (unsigned t = 0; t < sh->o->threads; t++)
		pthread_join(th[t], NULL);
	t1 = bench_now_ns();
	if (atomic_load(&sh->failed)) {
		fprintf(stderr, "conn-bench: a handshake failed\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	/* every claim below max_ops ran (a failure stops the run above) */
	n = atomic_load(&sh->next);
	if (n > sh->o->max_ops)
		n = sh->o->max_ops;
	qsort(sh->lat_ns, n, sizeof(uint64_t), bench_cmp_u64);
	printf("RESULT kind=handshakes probe=%s threads=%u ops=%lu secs=%.3f rate=%.1f p50_us=%.1f "
	    "p99_us=%.1f\n", sh->o->probe, sh->o->threads, n, (double)(t1 - t0) / 1e9,
	    (double)n / ((double)(t1 - t0) / 1e9), bench_pct_us(sh->lat_ns, n, 50),
	    bench_pct_us(sh->lat_ns, n, 99));
	return 0;
}

/* VmRSS of pid in KiB, or -1. */
static long
rss_kib(long pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int
run_idle(struct shared *sh)
{
	const struct opts *o = sh->o;
	struct rlimit rl;
	long before, after, held;
	uint64_t t0 = bench_now_ns(), deadline = t0 + IDLE_DEADLINE_S * 1000000000ull;
	int *fds = calloc(o->conns, sizeof(int));
	unsigned long n = 0;
	int fd, rc = 1;
	SSL *ssl;

	if (fds == NULL)
		return 1;
	/* this benchmark only: room for N descriptors */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < o->conns + 64) {
		rl.rlim_cur = o->conns + 64 <= rl.rlim_max ? o->conns + 64 : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	before = rss_kib(o->pid);
	for (n = 0; n < o->conns; n++) {
		if (bench_now_ns() >= deadline || (ssl = connect_one(sh, &fd)) == NULL) {
			fprintf(stderr, "conn-bench: connection %lu of %lu failed\n", n + 1, o->conns);
			ERR_print_errors_fp(stderr);
			goto out;
		}
		/* keep the socket, drop the TLS state (no close_notify is sent) */
		SSL_set_quiet_shutdown(ssl, 1);
		SSL_free(ssl);
		fds[n] = fd;
	}
	after = rss_kib(o->pid);
	sleep(o->hold);
	held = rss_kib(o->pid);
	if (before < 0 || after < 0 || held < 0) {
		fprintf(stderr, "conn-bench: cannot read VmRSS of pid %ld\n", o->pid);
		goto out;
	}
	printf("RESULT kind=idle conns=%lu secs=%.3f rss_before_kib=%ld rss_after_kib=%ld "
	    "rss_held_kib=%ld per_conn_kib=%.2f\n", n, (double)(bench_now_ns() - t0) / 1e9, before, after,
	    held, (double)(held - before) / (double)n);
	rc = 0;
out:
	for (unsigned long i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct shared sh;
	int rc;

	parse_opts(argc, argv, &o);
	memset(&sh, 0, sizeof(sh));
	sh.o = &o;
	if (loopback_addr(o.server, &sh.addr) != 0) {
		fprintf(stderr, "conn-bench: --server must be 127.x.y.z:PORT\n");
		return 2;
	}
	if ((sh.ctx = client_ctx(&o)) == NULL)
		return 1;
	if (strcmp(o.mode, "handshakes") == 0)
		rc = run_handshakes(&sh);
	else if (strcmp(o.mode, "idle") == 0)
		rc = run_idle(&sh);
	else
		usage();
	SSL_CTX_free(sh.ctx);
	free(sh.lat_ns);
	return rc;
}
