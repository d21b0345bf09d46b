/*
 * bs-bench.c - boltseal's benchmark tool (run by tests/bench/run-bench, which
 * `make bench` calls).
 *
 *   bs-bench raw  --module SO --token-uri URI --pin-file F --key-id HEX32
 *                 [--gcm [--key-name KEK]] [--threads N] [--seconds S] [--max-ops M]
 *       In-process PKCS#11 baseline: N threads, each with its own logged-in
 *       session, sign a 32-byte digest with ECDSA P-256 (hsm_sign) in a loop;
 *       with --gcm, encrypt 32 bytes with AES-256-GCM instead
 *       (hsm_aes_gcm_encrypt: the secret key with CKA_ID HEX32, a fresh
 *       12-byte nonce per operation from a per-thread counter, and additional
 *       data of exactly the form and size EnvelopeService binds to a data
 *       key: formats/envblob.h's AAD for KEK name KEK (default "bench-kek"),
 *       version 1, context {"vehicle_id": "bench-truck-00000", "stream": "can"}).
 *   bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name N
 *                 [--streams K] [--batch B] [--seconds S] [--max-ops M]
 *       One mTLS connection (bs_client) keeping K unary Sign calls (or, with
 *       --batch B, K SignBatch calls of B digests) in flight.
 *   bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name N
 *                 --command NAME [--vehicles-prefix P] [--vehicles V]
 *                 [--streams K] [--seconds S] [--max-ops M]
 *       The same connection keeping K CommandService.SignCommand calls in
 *       flight: command NAME with args {"route":"A7"}, valid_seconds 0 and
 *       format JWS, signed with key N (purpose command, ECDSA P-256), round
 *       robin over the V registered vehicles P00000, P00001, ... (default
 *       P "bench-truck-", V 1). The V request bodies are packed before the
 *       timed loop. Each answer must carry a non-empty three-part base64url
 *       token and a seq >= 1; the first token's ES256 signature is checked
 *       against the key, and no (vehicle, seq) may repeat (distinct_seq).
 *   bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name KEK
 *                 --envelope generate|decrypt [--vehicles-prefix P] [--vehicles V]
 *                 [--streams K] [--batch B] [--seconds S] [--max-ops M]
 *       The same connection keeping K EnvelopeService calls in flight, KEK a
 *       key of purpose envelope (AES-256-GCM). Item i's encryption context is
 *       {"vehicle_id": P%05u of i mod V, "stream": "can"} (default P
 *       "bench-truck-", V 1). generate: unary GenerateDataKey, or with
 *       --batch B GenerateDataKeyBatch of B contexts; every answer must carry
 *       a 32-byte plaintext and a blob that decodes, names KEK and holds 32
 *       bytes, and each data key must differ from the one before; after the
 *       timed loop the run's first blob is decrypted (Decrypt) and must give
 *       back its data key. decrypt: before the timed loop one
 *       GenerateDataKeyBatch makes BENCH_ENV_BLOBS (1000) data keys (blob i
 *       under context i), then unary Decrypt, or with --batch B DecryptBatch
 *       of B items, round robin over the blobs; every plaintext must equal
 *       the data key remembered for its blob. "items" are data keys made or
 *       blobs decrypted. All request bodies are packed before the timed loop.
 *   bs-bench mkreq --key-name N --out FILE [--batch B]
 *       Writes one Length-Prefixed-Message framed SignRequest (or
 *       SignBatchRequest) body, for HTTP/2 load generators such as h2load.
 *
 * raw and grpc print one machine-readable line starting with "RESULT" and
 * exit 0, or exit 1 if any operation failed. Every loop is bounded by both
 * --seconds and --max-ops. Latency is measured per operation (per call for
 * grpc) with CLOCK_MONOTONIC into a preallocated array; percentiles are
 * nearest-rank. The PIN is read from a file, never from argv, and wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "boltseal/client.h"
#include "boltseal/v1/commands.pb-c.h"
#include "boltseal/v1/envelope.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "common/bs_error.h"
#include "formats/envblob.h"
#include "formats/jose.h"
#include "formats/sigverify.h"
#include "hsm/hsm.h"

#define BENCH_MAX_OPS_CAP 50000000UL  /* latency array bound (400 MB) */
#define BENCH_MAX_THREADS 64
#define BENCH_MAX_STREAMS 1000
#define BENCH_MAX_BATCH 10000
#define BENCH_PIN_MAX 256
#define BENCH_DIGEST_LEN 32
#define BENCH_LPM_HDR 5
#define BENCH_MAX_VEHICLES 1000000
#define BENCH_NAME_MAX 256          /* --command, --key-name, --vehicles-prefix */
#define BENCH_VEHICLE_ID_MAX 320    /* prefix + up to 7 digits + NUL */
#define BENCH_CMD_ARGS "{\"route\":\"A7\"}"
#define BENCH_ES256_SIG_LEN 64      /* r||s */
#define BENCH_SEQ_BITS 40           /* seqs[] packs vehicle << 40 | seq */
#define BENCH_SEQ_MAX ((UINT64_C(1) << BENCH_SEQ_BITS) - 1)
#define BENCH_GCM_PT_LEN 32         /* raw --gcm: a data key's size */
#define BENCH_GCM_KEK "bench-kek"   /* raw --gcm: the KEK name in the AAD unless --key-name */
#define BENCH_ENV_STREAM "can"      /* the context's "stream" entry */
#define BENCH_DATAKEY_LEN 32
#define BENCH_ENV_BLOBS 1000        /* decrypt: data keys made before the timed loop */
#define BENCH_ENV_BODY_ITEMS_MAX 2000000UL  /* bodies x items per body packed ahead */

#define PATH_SIGN "/boltseal.v1.KeyService/Sign"
#define PATH_SIGN_BATCH "/boltseal.v1.KeyService/SignBatch"
#define PATH_GET_PUBLIC_KEY "/boltseal.v1.KeyService/GetPublicKey"
#define PATH_SIGN_COMMAND "/boltseal.v1.CommandService/SignCommand"
#define PATH_ENV_GENERATE "/boltseal.v1.EnvelopeService/GenerateDataKey"
#define PATH_ENV_GENERATE_BATCH "/boltseal.v1.EnvelopeService/GenerateDataKeyBatch"
#define PATH_ENV_DECRYPT "/boltseal.v1.EnvelopeService/Decrypt"
#define PATH_ENV_DECRYPT_BATCH "/boltseal.v1.EnvelopeService/DecryptBatch"

struct opts {
	const char *mode;
	/* raw */
	const char *module;
	const char *token_uri;
	const char *pin_file;
	const char *key_id_hex;
	unsigned threads;
	int gcm;                /* raw: AES-256-GCM encryption instead of ECDSA signing */
	/* grpc and mkreq */
	const char *server;
	const char *ca;
	const char *cert;
	const char *key;
	const char *key_name;
	const char *out;
	unsigned streams;
	unsigned batch;         /* 0 = unary Sign */
	const char *command;    /* grpc: SignCommand mode when set */
	const char *vehicles_prefix;
	unsigned vehicles;
	int vehicles_given;     /* --vehicles or --vehicles-prefix seen */
	const char *envelope;   /* grpc: "generate" or "decrypt" (EnvelopeService) when set */
	/* all */
	double seconds;
	unsigned long max_ops;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bs-bench raw --module SO --token-uri URI --pin-file F --key-id HEX32\n"
	    "                [--gcm [--key-name KEK]] [--threads N] [--seconds S] [--max-ops M]\n"
	    "       bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name N\n"
	    "                [--streams K] [--batch B] [--seconds S] [--max-ops M]\n"
	    "       bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name N\n"
	    "                --command NAME [--vehicles-prefix P] [--vehicles V]\n"
	    "                [--streams K] [--seconds S] [--max-ops M]\n"
	    "       bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --key-name KEK\n"
	    "                --envelope generate|decrypt [--vehicles-prefix P] [--vehicles V]\n"
	    "                [--streams K] [--batch B] [--seconds S] [--max-ops M]\n"
	    "       bs-bench mkreq --key-name N --out FILE [--batch B]\n");
	exit(2);
}

static int
parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return BS_ERR_INVALID;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return BS_ERR_INVALID;
	*out = v;
	return 0;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'M' },
		{ "token-uri", required_argument, NULL, 'T' },
		{ "pin-file", required_argument, NULL, 'P' },
		{ "key-id", required_argument, NULL, 'I' },
		{ "threads", required_argument, NULL, 't' },
		{ "server", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'A' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "key-name", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ "streams", required_argument, NULL, 'k' },
		{ "batch", required_argument, NULL, 'b' },
		{ "command", required_argument, NULL, 'c' },
		{ "vehicles-prefix", required_argument, NULL, 'p' },
		{ "vehicles", required_argument, NULL, 'v' },
		{ "gcm", no_argument, NULL, 'g' },
		{ "envelope", required_argument, NULL, 'e' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "max-ops", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->streams = 1;
	o->seconds = 5.0;
	o->max_ops = 1000000;
	o->vehicles_prefix = "bench-truck-";
	o->vehicles = 1;
	if (argc < 2 || argv[1][0] == '-')
		usage();
	o->mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'M': o->module = optarg; break;
		case 'T': o->token_uri = optarg; break;
		case 'P': o->pin_file = optarg; break;
		case 'I': o->key_id_hex = optarg; break;
		case 's': o->server = optarg; break;
		case 'A': o->ca = optarg; break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'n': o->key_name = optarg; break;
		case 'o': o->out = optarg; break;
		case 'c': o->command = optarg; break;
		case 'g': o->gcm = 1; break;
		case 'e':
			if (strcmp(optarg, "generate") != 0 && strcmp(optarg, "decrypt") != 0) {
				fprintf(stderr, "bs-bench: --envelope must be generate or decrypt\n");
				return BS_ERR_INVALID;
			}
			o->envelope = optarg;
			break;
		case 'p':
			o->vehicles_prefix = optarg;
			o->vehicles_given = 1;
			break;
		case 'v':
			if (parse_ulong(optarg, 1, BENCH_MAX_VEHICLES, &v) != 0) {
				fprintf(stderr, "bs-bench: --vehicles must be 1..%d\n", BENCH_MAX_VEHICLES);
				return BS_ERR_INVALID;
			}
			o->vehicles = (unsigned)v;
			o->vehicles_given = 1;
			break;
		case 't':
			if (parse_ulong(optarg, 1, BENCH_MAX_THREADS, &v) != 0) {
				fprintf(stderr, "bs-bench: --threads must be 1..%d\n", BENCH_MAX_THREADS);
				return BS_ERR_INVALID;
			}
			o->threads = (unsigned)v;
			break;
		case 'k':
			if (parse_ulong(optarg, 1, BENCH_MAX_STREAMS, &v) != 0) {
				fprintf(stderr, "bs-bench: --streams must be 1..%d\n", BENCH_MAX_STREAMS);
				return BS_ERR_INVALID;
			}
			o->streams = (unsigned)v;
			break;
		case 'b':
			if (parse_ulong(optarg, 1, BENCH_MAX_BATCH, &v) != 0) {
				fprintf(stderr, "bs-bench: --batch must be 1..%d\n", BENCH_MAX_BATCH);
				return BS_ERR_INVALID;
			}
			o->batch = (unsigned)v;
			break;
		case 'm':
			if (parse_ulong(optarg, 1, BENCH_MAX_OPS_CAP, &v) != 0) {
				fprintf(stderr, "bs-bench: --max-ops must be 1..%lu\n", BENCH_MAX_OPS_CAP);
				return BS_ERR_INVALID;
			}
			o->max_ops = v;
			break;
		case 'S':
			errno = 0;
			o->seconds = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || !(o->seconds > 0.0) || o->seconds > 3600.0) {
				fprintf(stderr, "bs-bench: --seconds must be in (0, 3600]\n");
				return BS_ERR_INVALID;
			}
			break;
		case 'h':
		default:
			usage();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bs-bench: unexpected argument '%s'\n", argv[optind]);
		return BS_ERR_INVALID;
	}
	return 0;
}

/* ---- latency statistics ------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double
pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1000.0;
}

/* ---- raw: in-process PKCS#11 ---------------------------------------------------- */

struct raw_shared {
	struct hsm *h;
	uint8_t key_id[HSM_KEY_ID_LEN];
	uint8_t digest[BENCH_DIGEST_LEN];
	uint64_t *lat;               /* max_ops entries */
	unsigned long max_ops;
	uint64_t deadline_ns;        /* set by main after the barrier */
	pthread_barrier_t ready;     /* threads + main: sessions open, key found */
	pthread_barrier_t go;        /* threads + main: deadline set */
	atomic_ulong next;           /* next free slot in lat */
	atomic_ulong errors;
	atomic_int setup_failed;
};

static void *
raw_thread(void *arg)
{
	struct raw_shared *sh = arg;
	struct hsm_session *s = NULL;
	hsm_handle priv = 0;
	uint8_t sig[128];
	size_t sig_len;
	unsigned long idx;
	uint64_t t0, t1;
	int rv;

	if ((rv = hsm_session_open(sh->h, &s)) != 0) {
		fprintf(stderr, "bs-bench: hsm_session_open: %s\n", bs_strerror(rv));
		atomic_store(&sh->setup_failed, 1);
	} else if ((rv = hsm_find_private_key(s, sh->key_id, &priv)) != 0) {
		fprintf(stderr, "bs-bench: key not found on the token: %s (%s)\n", bs_strerror(rv),
		    hsm_rv_name(hsm_session_last_rv(s)));
		atomic_store(&sh->setup_failed, 1);
	}
	(void)pthread_barrier_wait(&sh->ready);
	(void)pthread_barrier_wait(&sh->go);
	if (atomic_load(&sh->setup_failed))
		goto out;
	for (;;) {
		t0 = now_ns();
		if (t0 >= sh->deadline_ns)
			break;
		idx = atomic_fetch_add(&sh->next, 1);
		if (idx >= sh->max_ops)
			break;
		sig_len = sizeof(sig);
		rv = hsm_sign(s, priv, BS_ALG_ECDSA_P256_SHA256, sh->digest, sizeof(sh->digest),
		    sig, &sig_len);
		t1 = now_ns();
		sh->lat[idx] = t1 - t0;
		if (rv != 0 || sig_len != 64) {
			if (atomic_fetch_add(&sh->errors, 1) == 0)
				fprintf(stderr, "bs-bench: hsm_sign: %s (%s)\n", bs_strerror(rv),
				    hsm_rv_name(hsm_session_last_rv(s)));
		}
	}
out:
	hsm_session_close(s);
	return NULL;
}

static int
hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	size_t i;
	int hi, lo;

	if (strlen(hex) != out_len * 2)
		return BS_ERR_INVALID;
	for (i = 0; i < out_len; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return BS_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Reads the PIN file (at most BENCH_PIN_MAX bytes, one trailing newline stripped). */
static int
read_pin(const char *path, uint8_t *pin, size_t *pin_len)
{
	ssize_t r;
	size_t n = 0;
	int fd, rv = BS_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "bs-bench: cannot open PIN file %s: %s\n", path, strerror(errno));
		return BS_ERR_IO;
	}
	while (n < BENCH_PIN_MAX) {
		r = read(fd, pin + n, BENCH_PIN_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "bs-bench: cannot read PIN file %s\n", path);
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n == BENCH_PIN_MAX) {
		fprintf(stderr, "bs-bench: PIN file %s is too long\n", path);
		goto out;
	}
	if (n > 0 && pin[n - 1] == '\n')
		n--;
	if (n > 0 && pin[n - 1] == '\r')
		n--;
	if (n == 0) {
		fprintf(stderr, "bs-bench: PIN file %s is empty\n", path);
		goto out;
	}
	*pin_len = n;
	rv = 0;
out:
	close(fd);
	return rv;
}

static int
run_raw(const struct opts *o)
{
	struct raw_shared sh;
	pthread_t tids[BENCH_MAX_THREADS];
	uint8_t pin[BENCH_PIN_MAX];
	size_t pin_len = 0;
	char err[HSM_ERR_LEN];
	unsigned i, started = 0;
	unsigned long n;
	uint64_t t_start, t_end;
	double secs;
	int rv, barriers = 0, ret = 1;

	memset(&sh, 0, sizeof(sh));
	if (o->module == NULL || o->token_uri == NULL || o->pin_file == NULL ||
	    o->key_id_hex == NULL) {
		fprintf(stderr, "bs-bench raw: --module, --token-uri, --pin-file and --key-id are required\n");
		return 2;
	}
	if (hex_decode(o->key_id_hex, sh.key_id, sizeof(sh.key_id)) != 0) {
		fprintf(stderr, "bs-bench raw: --key-id must be %d hex digits\n", 2 * HSM_KEY_ID_LEN);
		return 2;
	}
	if (RAND_bytes(sh.digest, sizeof(sh.digest)) != 1) {
		fprintf(stderr, "bs-bench: RAND_bytes failed\n");
		return 1;
	}
	sh.max_ops = o->max_ops;
	if ((sh.lat = calloc(o->max_ops, sizeof(*sh.lat))) == NULL) {
		fprintf(stderr, "bs-bench: cannot allocate %lu latency slots\n", o->max_ops);
		return 1;
	}
	if (read_pin(o->pin_file, pin, &pin_len) != 0)
		goto out;
	rv = hsm_open(o->module, o->token_uri, pin, pin_len, &sh.h, err);
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rv != 0) {
		fprintf(stderr, "bs-bench: hsm_open: %s\n", err);
		goto out;
	}
	if (pthread_barrier_init(&sh.ready, NULL, o->threads + 1) != 0 ||
	    pthread_barrier_init(&sh.go, NULL, o->threads + 1) != 0) {
		fprintf(stderr, "bs-bench: pthread_barrier_init failed\n");
		goto out;
	}
	barriers = 1;
	for (i = 0; i < o->threads; i++) {
		if (pthread_create(&tids[i], NULL, raw_thread, &sh) != 0) {
			fprintf(stderr, "bs-bench: pthread_create failed\n");
			/* the barriers count every thread: cannot continue safely */
			exit(1);
		}
		started++;
	}
	(void)pthread_barrier_wait(&sh.ready);
	t_start = now_ns();
	sh.deadline_ns = t_start + (uint64_t)(o->seconds * 1e9);
	(void)pthread_barrier_wait(&sh.go);
	for (i = 0; i < started; i++)
		(void)pthread_join(tids[i], NULL);
	t_end = now_ns();
	if (atomic_load(&sh.setup_failed))
		goto out;

	n = atomic_load(&sh.next);
	if (n > o->max_ops)
		n = o->max_ops;
	secs = (double)(t_end - t_start) / 1e9;
	qsort(sh.lat, n, sizeof(*sh.lat), cmp_u64);
	printf("RESULT mode=raw threads=%u ops=%lu errors=%lu secs=%.3f ops_per_s=%.0f "
	    "p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
	    o->threads, n, atomic_load(&sh.errors), secs, (double)n / secs,
	    pct_us(sh.lat, n, 50.0), pct_us(sh.lat, n, 99.0), pct_us(sh.lat, n, 99.9));
	if (atomic_load(&sh.errors) > 0) {
		fprintf(stderr, "bs-bench raw: %lu signatures failed\n", atomic_load(&sh.errors));
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "bs-bench raw: no signature completed\n");
		goto out;
	}
	ret = 0;
out:
	if (barriers) {
		(void)pthread_barrier_destroy(&sh.ready);
		(void)pthread_barrier_destroy(&sh.go);
	}
	hsm_close(sh.h);
	free(sh.lat);
	return ret;
}

/* ---- request bodies ------------------------------------------------------------- */

/*
 * Packs a SignRequest (batch == 0) or a SignBatchRequest of batch items, all
 * with the 32-byte digest. *out is malloc'd; caller frees.
 */
static int
pack_request(const char *key_name, unsigned batch, const uint8_t digest[BENCH_DIGEST_LEN],
    uint8_t **out, size_t *out_len)
{
	Boltseal__V1__SignRequest sr;
	Boltseal__V1__SignBatchRequest br;
	Boltseal__V1__SignBatchItem *items = NULL;
	Boltseal__V1__SignBatchItem **ptrs = NULL;
	uint8_t *buf = NULL;
	size_t len, i;
	int rv = BS_ERR_NOMEM;

	boltseal__v1__sign_request__init(&sr);
	boltseal__v1__sign_batch_request__init(&br);
	if (batch == 0) {
		sr.key_name = (char *)(uintptr_t)key_name;
		sr.input_case = BOLTSEAL__V1__SIGN_REQUEST__INPUT_DIGEST;
		sr.digest.data = (uint8_t *)(uintptr_t)digest;
		sr.digest.len = BENCH_DIGEST_LEN;
		len = boltseal__v1__sign_request__get_packed_size(&sr);
		if ((buf = malloc(len > 0 ? len : 1)) == NULL)
			goto out;
		(void)boltseal__v1__sign_request__pack(&sr, buf);
	} else {
		if ((items = calloc(batch, sizeof(*items))) == NULL ||
		    (ptrs = calloc(batch, sizeof(*ptrs))) == NULL)
			goto out;
		for (i = 0; i < batch; i++) {
			boltseal__v1__sign_batch_item__init(&items[i]);
			items[i].input_case = BOLTSEAL__V1__SIGN_BATCH_ITEM__INPUT_DIGEST;
			items[i].digest.data = (uint8_t *)(uintptr_t)digest;
			items[i].digest.len = BENCH_DIGEST_LEN;
			ptrs[i] = &items[i];
		}
		br.key_name = (char *)(uintptr_t)key_name;
		br.n_items = batch;
		br.items = ptrs;
		len = boltseal__v1__sign_batch_request__get_packed_size(&br);
		if ((buf = malloc(len > 0 ? len : 1)) == NULL)
			goto out;
		(void)boltseal__v1__sign_batch_request__pack(&br, buf);
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
	rv = 0;
out:
	free(buf);
	free(items);
	free(ptrs);
	return rv;
}

/* n SignCommandRequest bodies in one allocation: body i is buf[off[i]..off[i] + len[i]). */
struct cmd_reqs {
	uint8_t *buf;
	size_t *off;
	size_t *len;
	unsigned n;
};

static void
cmd_reqs_free(struct cmd_reqs *r)
{
	free(r->buf);
	free(r->off);
	free(r->len);
	memset(r, 0, sizeof(*r));
}

/* Writes vehicle i's id, prefix%05u, to id (BENCH_VEHICLE_ID_MAX bytes). */
static int
vehicle_id(const char *prefix, unsigned i, char id[BENCH_VEHICLE_ID_MAX])
{
	int n = snprintf(id, BENCH_VEHICLE_ID_MAX, "%s%05u", prefix, i);

	return n < 0 || n >= BENCH_VEHICLE_ID_MAX ? BS_ERR_TOO_BIG : 0;
}

/*
 * Packs one SignCommandRequest per vehicle (o->vehicles of them): command
 * o->command, args BENCH_CMD_ARGS, valid_seconds 0, key o->key_name, format
 * left at its default (JWS). On success *r owns the bodies (cmd_reqs_free).
 */
static int
pack_command_requests(const struct opts *o, struct cmd_reqs *r)
{
	static const char args[] = BENCH_CMD_ARGS;
	Boltseal__V1__SignCommandRequest cr;
	char id[BENCH_VEHICLE_ID_MAX];
	size_t total = 0, len;
	unsigned i;
	int rv;

	memset(r, 0, sizeof(*r));
	boltseal__v1__sign_command_request__init(&cr);
	cr.command = (char *)(uintptr_t)o->command;
	cr.args.data = (uint8_t *)(uintptr_t)args;
	cr.args.len = sizeof(args) - 1;
	cr.valid_seconds = 0;
	cr.key_name = (char *)(uintptr_t)o->key_name;
	cr.vehicle_id = id;
	if ((r->off = calloc(o->vehicles, sizeof(*r->off))) == NULL ||
	    (r->len = calloc(o->vehicles, sizeof(*r->len))) == NULL) {
		rv = BS_ERR_NOMEM;
		goto out;
	}
	/* sizes first (the ids may differ in width), then one buffer */
	for (i = 0; i < o->vehicles; i++) {
		if ((rv = vehicle_id(o->vehicles_prefix, i, id)) != 0)
			goto out;
		len = boltseal__v1__sign_command_request__get_packed_size(&cr);
		r->off[i] = total;
		r->len[i] = len;
		total += len;
	}
	if ((r->buf = malloc(total > 0 ? total : 1)) == NULL) {
		rv = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < o->vehicles; i++) {
		if ((rv = vehicle_id(o->vehicles_prefix, i, id)) != 0)
			goto out;
		if (boltseal__v1__sign_command_request__pack(&cr, r->buf + r->off[i]) != r->len[i]) {
			rv = BS_ERR_INTERNAL;
			goto out;
		}
	}
	r->n = o->vehicles;
	rv = 0;
out:
	if (rv != 0)
		cmd_reqs_free(r);
	return rv;
}

static int
run_mkreq(const struct opts *o)
{
	uint8_t digest[BENCH_DIGEST_LEN], hdr[BENCH_LPM_HDR];
	uint8_t *body = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int ret = 1;

	if (o->key_name == NULL || o->out == NULL) {
		fprintf(stderr, "bs-bench mkreq: --key-name and --out are required\n");
		return 2;
	}
	if (RAND_bytes(digest, sizeof(digest)) != 1 ||
	    pack_request(o->key_name, o->batch, digest, &body, &len) != 0) {
		fprintf(stderr, "bs-bench mkreq: cannot build the request\n");
		goto out;
	}
	hdr[0] = 0;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
	if ((f = fopen(o->out, "wb")) == NULL) {
		fprintf(stderr, "bs-bench mkreq: cannot create %s: %s\n", o->out, strerror(errno));
		goto out;
	}
	if (fwrite(hdr, 1, sizeof(hdr), f) != sizeof(hdr) || fwrite(body, 1, len, f) != len) {
		fprintf(stderr, "bs-bench mkreq: cannot write %s\n", o->out);
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		fprintf(stderr, "bs-bench mkreq: cannot write %s\n", o->out);
		goto out;
	}
	f = NULL;
	ret = 0;
out:
	if (f != NULL)
		(void)fclose(f);
	free(body);
	return ret;
}

/* ---- grpc: one connection, K calls in flight ---------------------------------- */

struct grpc_bench;

struct slot {
	struct grpc_bench *g;
	uint64_t t0;
	unsigned vehicle;            /* SignCommand: index of the call's vehicle */
	int busy;
};

struct grpc_bench {
	uint64_t *lat;
	unsigned long max_ops;       /* calls */
	unsigned long started;
	unsigned long completed;     /* also the next lat slot */
	unsigned long bad_status;    /* non-OK gRPC status or transport failure */
	unsigned long bad_items;     /* batch items with status_code != 0 or bad signature */
	unsigned long sigs;          /* good signatures received */
	unsigned batch;
	int command;                 /* SignCommand mode: sigs counts good tokens */
	uint64_t *seqs;              /* SignCommand: vehicle << BENCH_SEQ_BITS | seq, max_ops */
	unsigned long nseqs;
	int verified;                /* first signature checked against the public key */
	const uint8_t *spki;
	size_t spki_len;
	const uint8_t *digest;
};

static void
note_bad_status(struct grpc_bench *g, const struct bs_call_result *res)
{
	if (g->bad_status++ < 5)
		fprintf(stderr, "bs-bench grpc: call failed: grpc-status %d%s%s\n", res->grpc_status,
		    res->grpc_message != NULL ? ": " : "",
		    res->grpc_message != NULL ? res->grpc_message : "");
}

/* Checks the first signature of the run against the key's public key. */
static void
verify_once(struct grpc_bench *g, const uint8_t *sig, size_t sig_len)
{
	if (g->verified || g->spki == NULL)
		return;
	g->verified = 1;
	if (sigverify_verify(g->spki, g->spki_len, BS_ALG_ECDSA_P256_SHA256, 1, g->digest,
	    BENCH_DIGEST_LEN, sig, sig_len, BS_SIGFMT_DER) != 0) {
		fprintf(stderr, "bs-bench grpc: the server's signature does not verify\n");
		g->bad_items++;
	}
}

/* 1 if ch is a base64url character (RFC 4648 section 5). */
static int
b64url_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '-' || ch == '_';
}

/*
 * Checks that tok[0..len) is three non-empty parts of base64url text (no
 * padding) joined by two dots; sets *si_len to the length of the signing
 * input (the text before the second dot) and *sig_off to the start of the
 * third part. 0 or BS_ERR_INVALID.
 */
static int
jws_split(const char *tok, size_t len, size_t *si_len, size_t *sig_off)
{
	size_t i, dots[2], ndots = 0, start = 0;

	for (i = 0; i < len; i++) {
		if (tok[i] == '.') {
			if (ndots == 2 || i == start)
				return BS_ERR_INVALID;
			dots[ndots++] = i;
			start = i + 1;
		} else if (!b64url_char((unsigned char)tok[i])) {
			return BS_ERR_INVALID;
		}
	}
	if (ndots != 2 || start == len)
		return BS_ERR_INVALID;
	*si_len = dots[1];
	*sig_off = dots[1] + 1;
	return 0;
}

/*
 * Checks the ES256 signature of the run's first good token against the
 * key: 64 bytes r||s over the ASCII signing input header.payload.
 */
static void
verify_token_once(struct grpc_bench *g, const char *tok, size_t si_len, size_t sig_off,
    size_t len)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0;

	if (g->verified || g->spki == NULL)
		return;
	g->verified = 1;
	if (jose_b64url_decode(tok + sig_off, len - sig_off, &sig, &sig_len) != 0 ||
	    sig_len != BENCH_ES256_SIG_LEN) {
		fprintf(stderr, "bs-bench grpc: the first token's signature is not 64 bytes of base64url\n");
		g->bad_items++;
		free(sig);
		return;
	}
	if (sigverify_verify(g->spki, g->spki_len, BS_ALG_ECDSA_P256_SHA256, 0,
	    (const uint8_t *)tok, si_len, sig, sig_len, BS_SIGFMT_RAW) != 0) {
		fprintf(stderr, "bs-bench grpc: the server's token signature does not verify\n");
		g->bad_items++;
	}
	free(sig);
}

/* One SignCommand answer: a non-empty JWS compact token and a seq >= 1. */
static void
on_command_done(struct grpc_bench *g, unsigned vehicle, const struct bs_call_result *res)
{
	Boltseal__V1__SignCommandResponse *cr;
	size_t len = 0, si_len = 0, sig_off = 0;

	cr = boltseal__v1__sign_command_response__unpack(NULL, res->resp_len, res->resp);
	if (cr == NULL || cr->token == NULL || (len = strlen(cr->token)) == 0 || cr->seq < 1 ||
	    cr->seq > BENCH_SEQ_MAX || jws_split(cr->token, len, &si_len, &sig_off) != 0) {
		if (g->bad_items++ < 5)
			fprintf(stderr, "bs-bench grpc: malformed SignCommandResponse (token %zu bytes, "
			    "seq %llu)\n", len, cr != NULL ? (unsigned long long)cr->seq : 0ULL);
	} else {
		g->sigs++;
		if (g->nseqs < g->max_ops)
			g->seqs[g->nseqs++] = (uint64_t)vehicle << BENCH_SEQ_BITS | cr->seq;
		verify_token_once(g, cr->token, si_len, sig_off, len);
	}
	boltseal__v1__sign_command_response__free_unpacked(cr, NULL);
}

/* Sorts seqs and counts the distinct (vehicle, seq) pairs. */
static unsigned long
count_distinct(uint64_t *seqs, unsigned long n)
{
	unsigned long i, d = 0;

	qsort(seqs, n, sizeof(*seqs), cmp_u64);
	for (i = 0; i < n; i++)
		if (i == 0 || seqs[i] != seqs[i - 1])
			d++;
	return d;
}

static void
on_done(void *arg, const struct bs_call_result *res)
{
	struct slot *sl = arg;
	struct grpc_bench *g = sl->g;
	Boltseal__V1__SignResponse *sr;
	Boltseal__V1__SignBatchResponse *br;
	uint64_t t1 = now_ns();
	size_t i;

	sl->busy = 0;
	if (g->completed < g->max_ops)
		g->lat[g->completed] = t1 - sl->t0;
	g->completed++;
	if (res->grpc_status != 0) {
		note_bad_status(g, res);
		return;
	}
	if (g->command) {
		on_command_done(g, sl->vehicle, res);
		return;
	}
	if (g->batch == 0) {
		sr = boltseal__v1__sign_response__unpack(NULL, res->resp_len, res->resp);
		if (sr == NULL || sr->signature.len < 8 || sr->signature.len > 72) {
			if (g->bad_items++ < 5)
				fprintf(stderr, "bs-bench grpc: malformed SignResponse\n");
		} else {
			g->sigs++;
			verify_once(g, sr->signature.data, sr->signature.len);
		}
		boltseal__v1__sign_response__free_unpacked(sr, NULL);
		return;
	}
	br = boltseal__v1__sign_batch_response__unpack(NULL, res->resp_len, res->resp);
	if (br == NULL || br->n_results != g->batch) {
		if (g->bad_items++ < 5)
			fprintf(stderr, "bs-bench grpc: malformed SignBatchResponse\n");
		boltseal__v1__sign_batch_response__free_unpacked(br, NULL);
		return;
	}
	for (i = 0; i < br->n_results; i++) {
		if (br->results[i]->status_code != 0 || br->results[i]->signature.len < 8) {
			if (g->bad_items++ < 5)
				fprintf(stderr, "bs-bench grpc: batch item %zu: status %u %s\n", i,
				    br->results[i]->status_code, br->results[i]->error_message);
			continue;
		}
		g->sigs++;
		verify_once(g, br->results[i]->signature.data, br->results[i]->signature.len);
	}
	boltseal__v1__sign_batch_response__free_unpacked(br, NULL);
}

/* Fetches the key's SubjectPublicKeyInfo (DER) to check one signature. */
static int
fetch_spki(bs_client *c, const char *key_name, uint8_t **spki, size_t *spki_len)
{
	Boltseal__V1__GetPublicKeyRequest rq;
	Boltseal__V1__GetPublicKeyResponse *rp = NULL;
	struct bs_call_result res;
	uint8_t buf[256];
	size_t len;
	int rv, ret = BS_ERR_INVALID;

	memset(&res, 0, sizeof(res));
	boltseal__v1__get_public_key_request__init(&rq);
	rq.name = (char *)(uintptr_t)key_name;
	if ((len = boltseal__v1__get_public_key_request__get_packed_size(&rq)) > sizeof(buf))
		return BS_ERR_TOO_BIG;
	(void)boltseal__v1__get_public_key_request__pack(&rq, buf);
	if ((rv = bs_client_unary(c, PATH_GET_PUBLIC_KEY, buf, len, &res)) != 0) {
		fprintf(stderr, "bs-bench grpc: GetPublicKey: transport error %d\n", rv);
		goto out;
	}
	if (res.grpc_status != 0) {
		fprintf(stderr, "bs-bench grpc: GetPublicKey %s: grpc-status %d %s\n", key_name,
		    res.grpc_status, res.grpc_message != NULL ? res.grpc_message : "");
		goto out;
	}
	rp = boltseal__v1__get_public_key_response__unpack(NULL, res.resp_len, res.resp);
	if (rp == NULL || rp->der.len == 0 ||
	    rp->algorithm != BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256) {
		fprintf(stderr, "bs-bench grpc: key %s is not an ECDSA P-256 key\n", key_name);
		goto out;
	}
	if ((*spki = malloc(rp->der.len)) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	memcpy(*spki, rp->der.data, rp->der.len);
	*spki_len = rp->der.len;
	ret = 0;
out:
	boltseal__v1__get_public_key_response__free_unpacked(rp, NULL);
	bs_call_result_clear(&res);
	return ret;
}

/* Splits "127.0.0.1:PORT"; only the loopback address is accepted. */
static int
split_server(const char *server, char *port, size_t port_len)
{
	static const char prefix[] = "127.0.0.1:";
	unsigned long p;
	const char *ps;

	if (strncmp(server, prefix, sizeof(prefix) - 1) != 0) {
		fprintf(stderr, "bs-bench grpc: --server must be 127.0.0.1:PORT\n");
		return BS_ERR_INVALID;
	}
	ps = server + sizeof(prefix) - 1;
	if (parse_ulong(ps, 1, 65535, &p) != 0 || strlen(ps) >= port_len) {
		fprintf(stderr, "bs-bench grpc: bad port in --server\n");
		return BS_ERR_INVALID;
	}
	memcpy(port, ps, strlen(ps) + 1);
	return 0;
}

static int
run_grpc(const struct opts *o)
{
	struct bs_client_opts co;
	struct grpc_bench g;
	struct slot *slots = NULL;
	struct cmd_reqs cmds;
	bs_client *c = NULL;
	uint8_t digest[BENCH_DIGEST_LEN];
	uint8_t *req = NULL, *spki = NULL;
	const uint8_t *body;
	size_t req_len = 0, spki_len = 0, body_len;
	const char *path;
	char port[8], err[512];
	uint64_t t_start, t_end, deadline;
	unsigned long n, distinct = 0;
	unsigned i, vehicle = 0;
	double secs;
	int rv, ret = 1;

	memset(&g, 0, sizeof(g));
	memset(&cmds, 0, sizeof(cmds));
	if (o->server == NULL || o->ca == NULL || o->cert == NULL || o->key == NULL ||
	    o->key_name == NULL) {
		fprintf(stderr, "bs-bench grpc: --server, --ca, --cert, --key and --key-name are required\n");
		return 2;
	}
	if (o->command == NULL && o->vehicles_given) {
		fprintf(stderr, "bs-bench grpc: --vehicles and --vehicles-prefix need --command\n");
		return 2;
	}
	if (o->command != NULL && o->batch > 0) {
		fprintf(stderr, "bs-bench grpc: --command and --batch exclude each other\n");
		return 2;
	}
	if (o->command != NULL && (strlen(o->command) > BENCH_NAME_MAX ||
	    strlen(o->key_name) > BENCH_NAME_MAX || strlen(o->vehicles_prefix) > BENCH_NAME_MAX)) {
		fprintf(stderr, "bs-bench grpc: --command, --key-name and --vehicles-prefix are at "
		    "most %d characters\n", BENCH_NAME_MAX);
		return 2;
	}
	if (split_server(o->server, port, sizeof(port)) != 0)
		return 2;
	if (o->command != NULL) {
		if (pack_command_requests(o, &cmds) != 0) {
			fprintf(stderr, "bs-bench grpc: cannot build the SignCommand requests\n");
			goto out;
		}
		path = PATH_SIGN_COMMAND;
	} else {
		if (RAND_bytes(digest, sizeof(digest)) != 1 ||
		    pack_request(o->key_name, o->batch, digest, &req, &req_len) != 0) {
			fprintf(stderr, "bs-bench grpc: cannot build the request\n");
			goto out;
		}
		path = o->batch > 0 ? PATH_SIGN_BATCH : PATH_SIGN;
	}
	if ((g.lat = calloc(o->max_ops, sizeof(*g.lat))) == NULL ||
	    (slots = calloc(o->streams, sizeof(*slots))) == NULL ||
	    (o->command != NULL && (g.seqs = calloc(o->max_ops, sizeof(*g.seqs))) == NULL)) {
		fprintf(stderr, "bs-bench: out of memory\n");
		goto out;
	}
	g.max_ops = o->max_ops;
	g.batch = o->batch;
	g.command = o->command != NULL;
	g.digest = digest;

	memset(&co, 0, sizeof(co));
	co.host = "127.0.0.1";
	co.port = port;
	co.server_name = "localhost";
	co.ca_file = o->ca;
	co.cert_file = o->cert;
	co.key_file = o->key;
	co.timeout_ms = 30000;
	err[0] = '\0';
	if ((rv = bs_client_connect(&co, &c, err, sizeof(err))) != 0) {
		fprintf(stderr, "bs-bench grpc: connect %s: %s (%d)\n", o->server, err, rv);
		goto out;
	}
	if (fetch_spki(c, o->key_name, &spki, &spki_len) != 0)
		goto out;
	g.spki = spki;
	g.spki_len = spki_len;
	for (i = 0; i < o->streams; i++)
		slots[i].g = &g;

	t_start = now_ns();
	deadline = t_start + (uint64_t)(o->seconds * 1e9);
	for (;;) {
		uint64_t t = now_ns();

		if (t < deadline && g.bad_status == 0) {
			for (i = 0; i < o->streams && g.started < g.max_ops; i++) {
				if (slots[i].busy)
					continue;
				body = req;
				body_len = req_len;
				if (g.command) {
					/* round robin: call k goes to vehicle k mod V */
					body = cmds.buf + cmds.off[vehicle];
					body_len = cmds.len[vehicle];
					slots[i].vehicle = vehicle;
					if (++vehicle == cmds.n)
						vehicle = 0;
				}
				slots[i].busy = 1;
				slots[i].t0 = now_ns();
				if ((rv = bs_client_start(c, path, body, body_len, on_done, &slots[i])) != 0) {
					slots[i].busy = 0;
					fprintf(stderr, "bs-bench grpc: bs_client_start: %d\n", rv);
					g.bad_status++;
					break;
				}
				g.started++;
			}
		}
		if (bs_client_pending(c) == 0)
			break;
		if ((rv = bs_client_run(c, 1)) != 0) {
			fprintf(stderr, "bs-bench grpc: connection failed (%d)\n", rv);
			(void)bs_client_run(c, 0);  /* completes the pending calls with -1 */
			g.bad_status++;
			break;
		}
	}
	t_end = now_ns();

	n = g.completed < g.max_ops ? g.completed : g.max_ops;
	secs = (double)(t_end - t_start) / 1e9;
	qsort(g.lat, n, sizeof(*g.lat), cmp_u64);
	if (g.command) {
		distinct = count_distinct(g.seqs, g.nseqs);
		printf("RESULT mode=grpc-command command=%s vehicles=%u streams=%u calls=%lu tokens=%lu "
		    "bad_status=%lu bad_items=%lu distinct_seq=%lu secs=%.3f calls_per_s=%.0f "
		    "p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
		    o->command, cmds.n, o->streams, g.completed, g.sigs, g.bad_status, g.bad_items,
		    distinct, secs, (double)g.completed / secs, pct_us(g.lat, n, 50.0),
		    pct_us(g.lat, n, 99.0), pct_us(g.lat, n, 99.9));
	} else {
		printf("RESULT mode=grpc streams=%u batch=%u calls=%lu sigs=%lu bad_status=%lu "
		    "bad_items=%lu secs=%.3f calls_per_s=%.0f sigs_per_s=%.0f p50_us=%.1f "
		    "p99_us=%.1f p999_us=%.1f\n",
		    o->streams, o->batch, g.completed, g.sigs, g.bad_status, g.bad_items, secs,
		    (double)g.completed / secs, (double)g.sigs / secs, pct_us(g.lat, n, 50.0),
		    pct_us(g.lat, n, 99.0), pct_us(g.lat, n, 99.9));
	}
	if (g.bad_status > 0 || g.bad_items > 0) {
		fprintf(stderr, "bs-bench grpc: %lu failed calls, %lu bad %s\n", g.bad_status,
		    g.bad_items, g.command ? "tokens" : "signatures");
		goto out;
	}
	if (g.command && distinct != g.nseqs) {
		fprintf(stderr, "bs-bench grpc: %lu tokens repeat a vehicle's seq\n",
		    g.nseqs - distinct);
		goto out;
	}
	if (!g.verified || g.completed == 0) {
		fprintf(stderr, "bs-bench grpc: no call completed\n");
		goto out;
	}
	ret = 0;
out:
	bs_client_free(c);
	free(spki);
	free(req);
	cmd_reqs_free(&cmds);
	free(slots);
	free(g.lat);
	free(g.seqs);
	return ret;
}

int
main(int argc, char **argv)
{
	struct opts o;

	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(o.mode, "raw") == 0)
		return run_raw(&o);
	if (strcmp(o.mode, "grpc") == 0)
		return run_grpc(&o);
	if (strcmp(o.mode, "mkreq") == 0)
		return run_mkreq(&o);
	fprintf(stderr, "bs-bench: unknown mode '%s'\n", o.mode);
	usage();
	return 2;
}
