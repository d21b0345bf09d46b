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
 *   bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --health
 *                 [--streams K] [--seconds S] [--max-ops M]
 *       The same connection keeping K grpc.health.v1.Health/Check calls (the
 *       server as a whole) in flight: every layer of a call but the key side,
 *       the HSM and the audit log, the floor under unary Sign. Each answer must
 *       be SERVING.
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

#include "benchstat.h"
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
#define PATH_HEALTH_CHECK "/grpc.health.v1.Health/Check"

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
	int health;             /* grpc: grpc.health.v1.Health/Check, no key, no HSM */
	/* all */
	double seconds;
	unsigned long max_ops;
};

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
	    "       bs-bench grpc --server 127.0.0.1:PORT --ca F --cert F --key F --health\n"
	    "                [--streams K] [--seconds S] [--max-ops M]\n"
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
		{ "health", no_argument, NULL, 'H' },
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
		case 'H': o->health = 1; break;
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

/* ---- raw: in-process PKCS#11 ---------------------------------------------------- */

struct raw_shared {
	struct hsm *h;
	uint8_t key_id[HSM_KEY_ID_LEN];
	uint8_t digest[BENCH_DIGEST_LEN];  /* --gcm: the plaintext (BENCH_GCM_PT_LEN) */
	int gcm;
	uint8_t *aad;                /* --gcm: the additional data (owned by run_raw) */
	size_t aad_len;
	atomic_uint next_thread;     /* --gcm: each thread's nonce prefix */
	uint64_t *lat;               /* max_ops entries */
	unsigned long max_ops;
	uint64_t deadline_ns;        /* set by main after the barrier */
	pthread_barrier_t ready;     /* threads + main: sessions open, key found */
	pthread_barrier_t go;        /* threads + main: deadline set */
	atomic_ulong next;           /* next free slot in lat */
	atomic_ulong errors;
	atomic_int setup_failed;
};

/*
 * One raw operation with the session's key: an ECDSA P-256 signature of the
 * digest, or (--gcm) AES-256-GCM of BENCH_GCM_PT_LEN bytes under nonce.
 * 0, or the hsm_* error (also BS_ERR_INTERNAL for a signature of an
 * unexpected size).
 */
static int
raw_op(const struct raw_shared *sh, struct hsm_session *s, hsm_handle h,
    const uint8_t nonce[HSM_GCM_NONCE])
{
	uint8_t out[128];
	size_t out_len = sizeof(out);
	int rv;

	_Static_assert(BENCH_GCM_PT_LEN + HSM_GCM_TAG <= sizeof(out), "GCM output size");
	_Static_assert(BENCH_GCM_PT_LEN <= BENCH_DIGEST_LEN, "GCM plaintext size");
	if (sh->gcm)
		return hsm_aes_gcm_encrypt(s, h, nonce, sh->aad, sh->aad_len, sh->digest,
		    BENCH_GCM_PT_LEN, out);
	rv = hsm_sign(s, h, BS_ALG_ECDSA_P256_SHA256, sh->digest, sizeof(sh->digest), out,
	    &out_len);
	return rv != 0 ? rv : out_len != 64 ? BS_ERR_INTERNAL : 0;
}

/* Writes the big-endian 32-bit prefix and 64-bit counter as a 96-bit GCM nonce. */
static void
gcm_nonce(uint8_t nonce[HSM_GCM_NONCE], uint32_t prefix, uint64_t counter)
{
	for (int i = 0; i < 4; i++)
		nonce[i] = (uint8_t)(prefix >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

static void *
raw_thread(void *arg)
{
	struct raw_shared *sh = arg;
	struct hsm_session *s = NULL;
	hsm_handle priv = 0;
	uint8_t nonce[HSM_GCM_NONCE];
	uint32_t prefix = atomic_fetch_add(&sh->next_thread, 1);
	uint64_t counter = 0;
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
		t0 = bench_now_ns();
		if (t0 >= sh->deadline_ns)
			break;
		idx = atomic_fetch_add(&sh->next, 1);
		if (idx >= sh->max_ops)
			break;
		/* a fresh nonce per operation: never (thread, counter) twice in a run */
		gcm_nonce(nonce, prefix, counter++);
		rv = raw_op(sh, s, priv, nonce);
		t1 = bench_now_ns();
		sh->lat[idx] = t1 - t0;
		if (rv != 0) {
			if (atomic_fetch_add(&sh->errors, 1) == 0)
				fprintf(stderr, "bs-bench: %s: %s (%s)\n", sh->gcm ?
				    "hsm_aes_gcm_encrypt" : "hsm_sign", bs_strerror(rv),
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

/* Writes vehicle i's id, prefix%05u, to id (BENCH_VEHICLE_ID_MAX bytes). */
static int
vehicle_id(const char *prefix, unsigned i, char id[BENCH_VEHICLE_ID_MAX])
{
	int n = snprintf(id, BENCH_VEHICLE_ID_MAX, "%s%05u", prefix, i);

	return n < 0 || n >= BENCH_VEHICLE_ID_MAX ? BS_ERR_TOO_BIG : 0;
}

/*
 * The GCM additional data EnvelopeService binds to a data key (formats/
 * envblob.h) for KEK kek, version 1, a 32-byte data key and the context
 * {"vehicle_id": prefix00000, "stream": BENCH_ENV_STREAM}: the same bytes
 * and size the service gives C_EncryptInit for the bench's own KEK. *aad is
 * malloc'd; caller frees. 0 or an error.
 */
static int
raw_gcm_aad(const char *kek, const char *prefix, uint8_t **aad, size_t *aad_len)
{
	char vid[BENCH_VEHICLE_ID_MAX];
	struct envctx_entry e[2];
	struct envblob b;
	uint8_t *canon = NULL;
	size_t canon_len = 0;
	int rv;

	memset(&b, 0, sizeof(b));
	if (strlen(kek) > ENVBLOB_NAME_MAX || (rv = vehicle_id(prefix, 0, vid)) != 0)
		return BS_ERR_INVALID;
	e[0] = (struct envctx_entry){ "vehicle_id", vid };
	e[1] = (struct envctx_entry){ "stream", BENCH_ENV_STREAM };
	if ((rv = envctx_canonical(e, 2, &canon, &canon_len)) != 0)
		return rv;
	memcpy(b.kek, kek, strlen(kek) + 1);
	b.kek_version = 1;
	b.ct_len = BENCH_GCM_PT_LEN;
	rv = envblob_aad(&b, canon, canon_len, aad, aad_len);
	free(canon);
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
	sh.gcm = o->gcm;
	if (o->gcm && raw_gcm_aad(o->key_name != NULL ? o->key_name : BENCH_GCM_KEK,
	    o->vehicles_prefix, &sh.aad, &sh.aad_len) != 0) {
		fprintf(stderr, "bs-bench raw: cannot build the GCM additional data (bad --key-name?)\n");
		return 2;
	}
	sh.max_ops = o->max_ops;
	if ((sh.lat = calloc(o->max_ops, sizeof(*sh.lat))) == NULL) {
		fprintf(stderr, "bs-bench: cannot allocate %lu latency slots\n", o->max_ops);
		free(sh.aad);
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
	t_start = bench_now_ns();
	sh.deadline_ns = t_start + (uint64_t)(o->seconds * 1e9);
	(void)pthread_barrier_wait(&sh.go);
	for (i = 0; i < started; i++)
		(void)pthread_join(tids[i], NULL);
	t_end = bench_now_ns();
	if (atomic_load(&sh.setup_failed))
		goto out;

	n = atomic_load(&sh.next);
	if (n > o->max_ops)
		n = o->max_ops;
	secs = (double)(t_end - t_start) / 1e9;
	qsort(sh.lat, n, sizeof(*sh.lat), bench_cmp_u64);
	if (o->gcm)
		printf("RESULT mode=raw op=gcm pt=%d aad=%zu threads=%u ops=%lu errors=%lu secs=%.3f "
		    "ops_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
		    BENCH_GCM_PT_LEN, sh.aad_len, o->threads, n, atomic_load(&sh.errors), secs,
		    (double)n / secs, bench_pct_us(sh.lat, n, 50.0), bench_pct_us(sh.lat, n, 99.0),
		    bench_pct_us(sh.lat, n, 99.9));
	else
		printf("RESULT mode=raw op=ecdsa threads=%u ops=%lu errors=%lu secs=%.3f "
		    "ops_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
		    o->threads, n, atomic_load(&sh.errors), secs, (double)n / secs,
		    bench_pct_us(sh.lat, n, 50.0), bench_pct_us(sh.lat, n, 99.0), bench_pct_us(sh.lat, n, 99.9));
	if (atomic_load(&sh.errors) > 0) {
		fprintf(stderr, "bs-bench raw: %lu operations failed\n", atomic_load(&sh.errors));
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "bs-bench raw: no operation completed\n");
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
	free(sh.aad);
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

/* n request bodies in one allocation: body i is buf[off[i]..off[i] + len[i]). */
struct req_bodies {
	uint8_t *buf;
	size_t *off;
	size_t *len;
	unsigned n;
};

static void
req_bodies_free(struct req_bodies *r)
{
	free(r->buf);
	free(r->off);
	free(r->len);
	memset(r, 0, sizeof(*r));
}

/*
 * Packs one SignCommandRequest per vehicle (o->vehicles of them): command
 * o->command, args BENCH_CMD_ARGS, valid_seconds 0, key o->key_name, format
 * left at its default (JWS). On success *r owns the bodies (req_bodies_free).
 */
static int
pack_command_requests(const struct opts *o, struct req_bodies *r)
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
		req_bodies_free(r);
	return rv;
}

/* ---- envelope: request bodies, the data keys of a decrypt run --------------------------- */

/*
 * A map<string, string> entry: protobuf-c generates this layout (the message
 * base, then key and value) for every map field; which map it belongs to is
 * only its descriptor.
 */
struct pb_map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};
_Static_assert(sizeof(struct pb_map_entry) ==
    sizeof(Boltseal__V1__GenerateDataKeyRequest__ContextEntry) &&
    sizeof(struct pb_map_entry) == sizeof(Boltseal__V1__EncryptionContext__EntriesEntry) &&
    sizeof(struct pb_map_entry) == sizeof(Boltseal__V1__DecryptRequest__ContextEntry) &&
    sizeof(struct pb_map_entry) == sizeof(Boltseal__V1__DecryptBatchItem__ContextEntry),
    "map entry layout");

enum env_kind { ENV_GENERATE, ENV_GENERATE_BATCH, ENV_DECRYPT, ENV_DECRYPT_BATCH };

/*
 * Data keys and their blobs: blob s is blob[off[s]..off[s] + len[s]),
 * made under the context of vehicle vehicle[s]; dk[s] is its data key.
 */
struct env_keys {
	uint8_t *blob;
	size_t *off;
	size_t *len;
	uint8_t (*dk)[BENCH_DATAKEY_LEN];
	unsigned *vehicle;
	unsigned n;
};

static void
env_keys_free(struct env_keys *k)
{
	if (k->dk != NULL)
		OPENSSL_clear_free(k->dk, (size_t)k->n * sizeof(*k->dk));
	free(k->blob);
	free(k->off);
	free(k->len);
	free(k->vehicle);
	memset(k, 0, sizeof(*k));
}

/*
 * What the bodies of a run are made of: body b holds per items; its item j
 * is source item s = (b * per + j) mod mod, which names vehicle s mod
 * vehicles (generate) or is blob s of keys, under its own vehicle's context
 * (decrypt). The arrays (per entries each) are scratch for one body.
 */
struct env_pack {
	enum env_kind kind;
	const char *kek;
	const char *prefix;
	unsigned vehicles;
	unsigned per;
	unsigned mod;
	const struct env_keys *keys;          /* decrypt only (borrowed) */
	char (*vid)[BENCH_VEHICLE_ID_MAX];
	struct pb_map_entry (*ent)[2];
	void *(*eptr)[2];
	Boltseal__V1__EncryptionContext *ctx;
	Boltseal__V1__DecryptBatchItem *item;
	void **list;
};

static void
env_pack_free(struct env_pack *p)
{
	free(p->vid);
	free(p->ent);
	free(p->eptr);
	free(p->ctx);
	free(p->item);
	free(p->list);
	memset(p, 0, sizeof(*p));
}

/* Sets up p for bodies of per items (see struct env_pack). 0 or BS_ERR_NOMEM. */
static int
env_pack_init(struct env_pack *p, enum env_kind kind, const char *kek, const char *prefix,
    unsigned vehicles, unsigned per, unsigned mod, const struct env_keys *keys)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->kek = kek;
	p->prefix = prefix;
	p->vehicles = vehicles;
	p->per = per;
	p->mod = mod;
	p->keys = keys;
	if ((p->vid = calloc(per, sizeof(*p->vid))) == NULL ||
	    (p->ent = calloc(per, sizeof(*p->ent))) == NULL ||
	    (p->eptr = calloc(per, sizeof(*p->eptr))) == NULL ||
	    (p->ctx = calloc(per, sizeof(*p->ctx))) == NULL ||
	    (p->item = calloc(per, sizeof(*p->item))) == NULL ||
	    (p->list = calloc(per, sizeof(*p->list))) == NULL) {
		env_pack_free(p);
		return BS_ERR_NOMEM;
	}
	return 0;
}

/* Source item j of body b. */
static unsigned
env_src(const struct env_pack *p, unsigned long b, unsigned j)
{
	return (unsigned)((b * p->per + j) % p->mod);
}

/*
 * Body b of p: sets *len to its packed size and, when out is not NULL,
 * packs it there (*len bytes). 0 or an error.
 */
static int
env_body(struct env_pack *p, unsigned long b, uint8_t *out, size_t *len)
{
	Boltseal__V1__GenerateDataKeyRequest gr = BOLTSEAL__V1__GENERATE_DATA_KEY_REQUEST__INIT;
	Boltseal__V1__GenerateDataKeyBatchRequest gbr =
	    BOLTSEAL__V1__GENERATE_DATA_KEY_BATCH_REQUEST__INIT;
	Boltseal__V1__DecryptRequest dr = BOLTSEAL__V1__DECRYPT_REQUEST__INIT;
	Boltseal__V1__DecryptBatchRequest dbr = BOLTSEAL__V1__DECRYPT_BATCH_REQUEST__INIT;
	const ProtobufCMessageDescriptor *d;
	ProtobufCBinaryData blob = { 0, NULL };
	ProtobufCMessage *m;
	unsigned j, src, v;
	int rv;

	switch (p->kind) {
	case ENV_GENERATE:
		d = &boltseal__v1__generate_data_key_request__context_entry__descriptor;
		m = &gr.base;
		break;
	case ENV_GENERATE_BATCH:
		d = &boltseal__v1__encryption_context__entries_entry__descriptor;
		m = &gbr.base;
		break;
	case ENV_DECRYPT:
		d = &boltseal__v1__decrypt_request__context_entry__descriptor;
		m = &dr.base;
		break;
	case ENV_DECRYPT_BATCH:
		d = &boltseal__v1__decrypt_batch_item__context_entry__descriptor;
		m = &dbr.base;
		break;
	default:
		return BS_ERR_INVALID;
	}
	for (j = 0; j < p->per; j++) {
		src = env_src(p, b, j);
		if (p->keys != NULL) {
			v = p->keys->vehicle[src];
			blob.data = p->keys->blob + p->keys->off[src];
			blob.len = p->keys->len[src];
		} else {
			v = src % p->vehicles;
		}
		if ((rv = vehicle_id(p->prefix, v, p->vid[j])) != 0)
			return rv;
		protobuf_c_message_init(d, &p->ent[j][0]);
		p->ent[j][0].key = (char *)(uintptr_t)"vehicle_id";
		p->ent[j][0].value = p->vid[j];
		protobuf_c_message_init(d, &p->ent[j][1]);
		p->ent[j][1].key = (char *)(uintptr_t)"stream";
		p->ent[j][1].value = (char *)(uintptr_t)BENCH_ENV_STREAM;
		p->eptr[j][0] = &p->ent[j][0];
		p->eptr[j][1] = &p->ent[j][1];
		if (p->kind == ENV_GENERATE_BATCH) {
			boltseal__v1__encryption_context__init(&p->ctx[j]);
			p->ctx[j].n_entries = 2;
			p->ctx[j].entries = (Boltseal__V1__EncryptionContext__EntriesEntry **)p->eptr[j];
			p->list[j] = &p->ctx[j];
		} else if (p->kind == ENV_DECRYPT_BATCH) {
			boltseal__v1__decrypt_batch_item__init(&p->item[j]);
			p->item[j].ciphertext_blob = blob;
			p->item[j].n_context = 2;
			p->item[j].context = (Boltseal__V1__DecryptBatchItem__ContextEntry **)p->eptr[j];
			p->list[j] = &p->item[j];
		}
	}
	gr.key_name = (char *)(uintptr_t)p->kek;
	gr.n_context = 2;
	gr.context = (Boltseal__V1__GenerateDataKeyRequest__ContextEntry **)p->eptr[0];
	gbr.key_name = (char *)(uintptr_t)p->kek;
	gbr.n_contexts = p->per;
	gbr.contexts = (Boltseal__V1__EncryptionContext **)p->list;
	dr.ciphertext_blob = blob;      /* per is 1: the only item's blob */
	dr.n_context = 2;
	dr.context = (Boltseal__V1__DecryptRequest__ContextEntry **)p->eptr[0];
	dbr.n_items = p->per;
	dbr.items = (Boltseal__V1__DecryptBatchItem **)p->list;
	*len = protobuf_c_message_get_packed_size(m);
	if (out != NULL && protobuf_c_message_pack(m, out) != *len)
		return BS_ERR_INTERNAL;
	return 0;
}

/* Packs the n bodies of p into r (req_bodies_free). 0 or an error. */
static int
env_pack_bodies(struct env_pack *p, unsigned n, struct req_bodies *r)
{
	size_t total = 0, len;
	unsigned i;
	int rv;

	memset(r, 0, sizeof(*r));
	if ((r->off = calloc(n, sizeof(*r->off))) == NULL ||
	    (r->len = calloc(n, sizeof(*r->len))) == NULL) {
		rv = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rv = env_body(p, i, NULL, &len)) != 0)
			goto out;
		r->off[i] = total;
		r->len[i] = len;
		total += len;
	}
	if ((r->buf = malloc(total > 0 ? total : 1)) == NULL) {
		rv = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((rv = env_body(p, i, r->buf + r->off[i], &len)) != 0 || len != r->len[i]) {
			rv = rv != 0 ? rv : BS_ERR_INTERNAL;
			goto out;
		}
	r->n = n;
	rv = 0;
out:
	if (rv != 0)
		req_bodies_free(r);
	return rv;
}

static unsigned long
gcd_ul(unsigned long a, unsigned long b)
{
	while (b != 0) {
		unsigned long t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * The number of distinct bodies when body b starts at source item b * per
 * mod mod: the cycle mod / gcd(mod, per) (for per 1: mod).
 */
static unsigned
env_nbodies(unsigned per, unsigned mod)
{
	return (unsigned)(mod / gcd_ul(mod, per));
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
	unsigned body;               /* index of the call's request body (SignCommand: its vehicle) */
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
	int health;                  /* Health/Check mode: sigs counts SERVING answers */
	uint64_t *seqs;              /* SignCommand: vehicle << BENCH_SEQ_BITS | seq, max_ops */
	unsigned long nseqs;
	int verified;                /* first signature checked against the public key */
	const uint8_t *spki;
	size_t spki_len;
	const uint8_t *digest;
	/* EnvelopeService mode (envp != NULL): sigs counts good items */
	const struct env_pack *envp;
	const char *kek;
	uint8_t last_dk[BENCH_DATAKEY_LEN];   /* generate: the data key before */
	int have_last;
	uint8_t first_blob[ENVBLOB_MAX];      /* generate: the run's first blob, its key */
	size_t first_blob_len;
	uint8_t first_dk[BENCH_DATAKEY_LEN];
	unsigned first_vehicle;
	int have_first;
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

	qsort(seqs, n, sizeof(*seqs), bench_cmp_u64);
	for (i = 0; i < n; i++)
		if (i == 0 || seqs[i] != seqs[i - 1])
			d++;
	return d;
}

/* Counts one bad item, with a message for the first few. */
static void
env_bad(struct grpc_bench *g, const char *what, unsigned src)
{
	if (g->bad_items++ < 5)
		fprintf(stderr, "bs-bench grpc: envelope item (source %u): %s\n", src, what);
}

/*
 * One data key of a generate run, for source item src: a 32-byte plaintext
 * unlike the one before, a blob that decodes, names the KEK and holds 32
 * bytes. The run's first good one is kept for the round trip.
 */
static void
env_check_datakey(struct grpc_bench *g, unsigned src, const ProtobufCBinaryData *pt,
    const ProtobufCBinaryData *blob)
{
	struct envblob b;

	if (pt->len != BENCH_DATAKEY_LEN) {
		env_bad(g, "the plaintext is not 32 bytes", src);
		return;
	}
	if (blob->len == 0 || envblob_decode(blob->data, blob->len, &b) != 0) {
		env_bad(g, "the blob is empty or does not decode", src);
		return;
	}
	if (strcmp(b.kek, g->kek) != 0 || b.kek_version < 1 || b.ct_len != BENCH_DATAKEY_LEN) {
		env_bad(g, "the blob names another key or holds other than 32 bytes", src);
		return;
	}
	if (g->have_last && memcmp(g->last_dk, pt->data, BENCH_DATAKEY_LEN) == 0) {
		env_bad(g, "the same data key twice in a row", src);
		return;
	}
	memcpy(g->last_dk, pt->data, BENCH_DATAKEY_LEN);
	g->have_last = 1;
	if (!g->have_first && blob->len <= sizeof(g->first_blob)) {
		memcpy(g->first_blob, blob->data, blob->len);
		g->first_blob_len = blob->len;
		memcpy(g->first_dk, pt->data, BENCH_DATAKEY_LEN);
		g->first_vehicle = src % g->envp->vehicles;
		g->have_first = 1;
	}
	g->sigs++;
}

/* One plaintext of a decrypt run: the data key remembered for blob src. */
static void
env_check_plain(struct grpc_bench *g, unsigned src, const ProtobufCBinaryData *pt)
{
	if (pt->len != BENCH_DATAKEY_LEN ||
	    CRYPTO_memcmp(pt->data, g->envp->keys->dk[src], BENCH_DATAKEY_LEN) != 0) {
		env_bad(g, "the plaintext is not the blob's data key", src);
		return;
	}
	g->verified = 1;
	g->sigs++;
}

/* One EnvelopeService answer for body b (see struct env_pack). */
static void
on_env_done(struct grpc_bench *g, unsigned b, const struct bs_call_result *res)
{
	const struct env_pack *p = g->envp;
	Boltseal__V1__GenerateDataKeyResponse *gr;
	Boltseal__V1__GenerateDataKeyBatchResponse *gbr;
	Boltseal__V1__DecryptResponse *dr;
	Boltseal__V1__DecryptBatchResponse *dbr;
	size_t j;

	switch (p->kind) {
	case ENV_GENERATE:
		gr = boltseal__v1__generate_data_key_response__unpack(NULL, res->resp_len, res->resp);
		if (gr == NULL)
			env_bad(g, "malformed GenerateDataKeyResponse", env_src(p, b, 0));
		else
			env_check_datakey(g, env_src(p, b, 0), &gr->plaintext, &gr->ciphertext_blob);
		boltseal__v1__generate_data_key_response__free_unpacked(gr, NULL);
		break;
	case ENV_GENERATE_BATCH:
		gbr = boltseal__v1__generate_data_key_batch_response__unpack(NULL, res->resp_len,
		    res->resp);
		if (gbr == NULL || gbr->n_results != p->per) {
			env_bad(g, "malformed GenerateDataKeyBatchResponse", env_src(p, b, 0));
		} else {
			for (j = 0; j < gbr->n_results; j++) {
				if (gbr->results[j]->status_code != 0) {
					env_bad(g, gbr->results[j]->error_message, env_src(p, b, (unsigned)j));
					continue;
				}
				env_check_datakey(g, env_src(p, b, (unsigned)j), &gbr->results[j]->plaintext,
				    &gbr->results[j]->ciphertext_blob);
			}
		}
		boltseal__v1__generate_data_key_batch_response__free_unpacked(gbr, NULL);
		break;
	case ENV_DECRYPT:
		dr = boltseal__v1__decrypt_response__unpack(NULL, res->resp_len, res->resp);
		if (dr == NULL)
			env_bad(g, "malformed DecryptResponse", env_src(p, b, 0));
		else
			env_check_plain(g, env_src(p, b, 0), &dr->plaintext);
		boltseal__v1__decrypt_response__free_unpacked(dr, NULL);
		break;
	case ENV_DECRYPT_BATCH:
		dbr = boltseal__v1__decrypt_batch_response__unpack(NULL, res->resp_len, res->resp);
		if (dbr == NULL || dbr->n_results != p->per) {
			env_bad(g, "malformed DecryptBatchResponse", env_src(p, b, 0));
		} else {
			for (j = 0; j < dbr->n_results; j++) {
				if (dbr->results[j]->status_code != 0) {
					env_bad(g, dbr->results[j]->error_message, env_src(p, b, (unsigned)j));
					continue;
				}
				env_check_plain(g, env_src(p, b, (unsigned)j), &dbr->results[j]->plaintext);
			}
		}
		boltseal__v1__decrypt_batch_response__free_unpacked(dbr, NULL);
		break;
	default:
		env_bad(g, "unknown envelope operation", 0);
		break;
	}
}

static void
on_done(void *arg, const struct bs_call_result *res)
{
	struct slot *sl = arg;
	struct grpc_bench *g = sl->g;
	Boltseal__V1__SignResponse *sr;
	Boltseal__V1__SignBatchResponse *br;
	uint64_t t1 = bench_now_ns();
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
		on_command_done(g, sl->body, res);
		return;
	}
	if (g->health) {
		/* HealthCheckResponse{status: SERVING}: field 1, varint 1 */
		if (res->resp_len == 2 && res->resp[0] == 0x08 && res->resp[1] == 0x01)
			g->sigs++;
		else if (g->bad_items++ < 5)
			fprintf(stderr, "bs-bench grpc: the health answer is not SERVING\n");
		return;
	}
	if (g->envp != NULL) {
		on_env_done(g, sl->body, res);
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

/*
 * Decrypt runs: makes n data keys with one GenerateDataKeyBatch of KEK kek,
 * item s under the context of vehicle s mod vehicles, and remembers each
 * blob, data key and vehicle in *k (env_keys_free). 0 or an error (said).
 */
static int
env_make_keys(bs_client *c, const char *kek, const char *prefix, unsigned vehicles, unsigned n,
    struct env_keys *k)
{
	Boltseal__V1__GenerateDataKeyBatchResponse *rp = NULL;
	struct bs_call_result res;
	struct env_pack p;
	struct envblob b;
	uint8_t *req = NULL;
	size_t req_len = 0, total = 0, i;
	int rv, ret = BS_ERR_INVALID;

	memset(&res, 0, sizeof(res));
	memset(k, 0, sizeof(*k));
	if (env_pack_init(&p, ENV_GENERATE_BATCH, kek, prefix, vehicles, n, n, NULL) != 0)
		return BS_ERR_NOMEM;
	if (env_body(&p, 0, NULL, &req_len) != 0 || (req = malloc(req_len)) == NULL ||
	    env_body(&p, 0, req, &req_len) != 0) {
		fprintf(stderr, "bs-bench grpc: cannot build the GenerateDataKeyBatch request\n");
		goto out;
	}
	if ((rv = bs_client_unary(c, PATH_ENV_GENERATE_BATCH, req, req_len, &res)) != 0 ||
	    res.grpc_status != 0) {
		fprintf(stderr, "bs-bench grpc: GenerateDataKeyBatch of %u (the blobs to decrypt): "
		    "transport %d, grpc-status %d %s\n", n, rv, res.grpc_status,
		    res.grpc_message != NULL ? res.grpc_message : "");
		goto out;
	}
	rp = boltseal__v1__generate_data_key_batch_response__unpack(NULL, res.resp_len, res.resp);
	if (rp == NULL || rp->n_results != n) {
		fprintf(stderr, "bs-bench grpc: malformed GenerateDataKeyBatchResponse\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const Boltseal__V1__DataKeyResult *r = rp->results[i];

		if (r->status_code != 0 || r->plaintext.len != BENCH_DATAKEY_LEN ||
		    envblob_decode(r->ciphertext_blob.data, r->ciphertext_blob.len, &b) != 0 ||
		    strcmp(b.kek, kek) != 0) {
			fprintf(stderr, "bs-bench grpc: data key %zu: status %u %s, or a bad blob\n", i,
			    r->status_code, r->error_message);
			goto out;
		}
		total += r->ciphertext_blob.len;
	}
	if ((k->blob = malloc(total)) == NULL || (k->off = calloc(n, sizeof(*k->off))) == NULL ||
	    (k->len = calloc(n, sizeof(*k->len))) == NULL ||
	    (k->dk = calloc(n, sizeof(*k->dk))) == NULL ||
	    (k->vehicle = calloc(n, sizeof(*k->vehicle))) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	k->n = n;
	for (i = 0, total = 0; i < n; i++) {
		const Boltseal__V1__DataKeyResult *r = rp->results[i];

		k->off[i] = total;
		k->len[i] = r->ciphertext_blob.len;
		memcpy(k->blob + total, r->ciphertext_blob.data, r->ciphertext_blob.len);
		total += r->ciphertext_blob.len;
		memcpy(k->dk[i], r->plaintext.data, BENCH_DATAKEY_LEN);
		k->vehicle[i] = (unsigned)(i % vehicles);
	}
	ret = 0;
out:
	if (ret != 0)
		env_keys_free(k);
	boltseal__v1__generate_data_key_batch_response__free_unpacked(rp, NULL);
	if (res.resp != NULL)
		OPENSSL_cleanse(res.resp, res.resp_len);
	bs_call_result_clear(&res);
	free(req);
	env_pack_free(&p);
	return ret;
}

/*
 * Generate runs, after the timed loop: the run's first blob decrypted
 * (unary Decrypt, its own context) must give back its data key. 0 or
 * BS_ERR_INVALID (said).
 */
static int
env_round_trip(bs_client *c, struct grpc_bench *g, const char *prefix)
{
	Boltseal__V1__DecryptResponse *rp = NULL;
	struct bs_call_result res;
	struct env_pack p;
	struct env_keys k;
	size_t off = 0, req_len = 0;
	uint8_t *req = NULL;
	int rv, ret = BS_ERR_INVALID;

	memset(&res, 0, sizeof(res));
	if (!g->have_first)
		return BS_ERR_INVALID;
	k = (struct env_keys){ g->first_blob, &off, &g->first_blob_len, &g->first_dk,
	    &g->first_vehicle, 1 };
	if (env_pack_init(&p, ENV_DECRYPT, g->kek, prefix, g->envp->vehicles, 1, 1, &k) != 0)
		return BS_ERR_NOMEM;
	if (env_body(&p, 0, NULL, &req_len) != 0 || (req = malloc(req_len)) == NULL ||
	    env_body(&p, 0, req, &req_len) != 0)
		goto out;
	if ((rv = bs_client_unary(c, PATH_ENV_DECRYPT, req, req_len, &res)) != 0 ||
	    res.grpc_status != 0) {
		fprintf(stderr, "bs-bench grpc: Decrypt of the first data key: transport %d, "
		    "grpc-status %d %s\n", rv, res.grpc_status,
		    res.grpc_message != NULL ? res.grpc_message : "");
		goto out;
	}
	rp = boltseal__v1__decrypt_response__unpack(NULL, res.resp_len, res.resp);
	if (rp == NULL || rp->plaintext.len != BENCH_DATAKEY_LEN ||
	    CRYPTO_memcmp(rp->plaintext.data, g->first_dk, BENCH_DATAKEY_LEN) != 0) {
		fprintf(stderr, "bs-bench grpc: the first blob does not decrypt to its data key\n");
		goto out;
	}
	ret = 0;
out:
	boltseal__v1__decrypt_response__free_unpacked(rp, NULL);
	bs_call_result_clear(&res);
	free(req);
	env_pack_free(&p);
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

/*
 * Envelope runs: the KEK and its bodies into p and bodies (and, for decrypt,
 * the data keys into keys, made on c). 0 or an error (said).
 */
static int
env_setup(const struct opts *o, bs_client *c, struct env_pack *p, struct env_keys *keys,
    struct req_bodies *bodies)
{
	int decrypt = strcmp(o->envelope, "decrypt") == 0;
	enum env_kind kind = decrypt ? (o->batch > 0 ? ENV_DECRYPT_BATCH : ENV_DECRYPT) :
	    (o->batch > 0 ? ENV_GENERATE_BATCH : ENV_GENERATE);
	unsigned per = o->batch > 0 ? o->batch : 1;
	unsigned mod = decrypt ? BENCH_ENV_BLOBS : o->vehicles;
	unsigned n = env_nbodies(per, mod);

	if ((unsigned long)n * per > BENCH_ENV_BODY_ITEMS_MAX) {
		fprintf(stderr, "bs-bench grpc: %u bodies of %u items to pack: choose --vehicles and "
		    "--batch with a larger common divisor\n", n, per);
		return BS_ERR_TOO_BIG;
	}
	if (decrypt && env_make_keys(c, o->key_name, o->vehicles_prefix, o->vehicles,
	    BENCH_ENV_BLOBS, keys) != 0)
		return BS_ERR_INVALID;
	if (env_pack_init(p, kind, o->key_name, o->vehicles_prefix, o->vehicles, per, mod,
	    decrypt ? keys : NULL) != 0 || env_pack_bodies(p, n, bodies) != 0) {
		fprintf(stderr, "bs-bench grpc: cannot build the %s requests\n", o->envelope);
		return BS_ERR_NOMEM;
	}
	return 0;
}

static const char *
env_path(enum env_kind kind)
{
	switch (kind) {
	case ENV_GENERATE:
		return PATH_ENV_GENERATE;
	case ENV_GENERATE_BATCH:
		return PATH_ENV_GENERATE_BATCH;
	case ENV_DECRYPT:
		return PATH_ENV_DECRYPT;
	case ENV_DECRYPT_BATCH:
		return PATH_ENV_DECRYPT_BATCH;
	default:
		return "";
	}
}

/* Refuses option combinations run_grpc does not measure. 0 or 2 (said). */
static int
grpc_check_opts(const struct opts *o)
{
	if (o->server == NULL || o->ca == NULL || o->cert == NULL || o->key == NULL ||
	    (o->key_name == NULL && !o->health)) {
		fprintf(stderr, "bs-bench grpc: --server, --ca, --cert, --key and --key-name are required\n");
		return 2;
	}
	if (o->health && (o->key_name != NULL || o->command != NULL || o->envelope != NULL ||
	    o->batch > 0 || o->vehicles_given)) {
		fprintf(stderr, "bs-bench grpc: --health takes no key, command, envelope, batch or "
		    "vehicles\n");
		return 2;
	}
	if (o->gcm) {
		fprintf(stderr, "bs-bench grpc: --gcm is for raw; use --envelope\n");
		return 2;
	}
	if (o->command != NULL && o->envelope != NULL) {
		fprintf(stderr, "bs-bench grpc: --command and --envelope exclude each other\n");
		return 2;
	}
	if (o->command == NULL && o->envelope == NULL && o->vehicles_given) {
		fprintf(stderr, "bs-bench grpc: --vehicles and --vehicles-prefix need --command or "
		    "--envelope\n");
		return 2;
	}
	if (o->command != NULL && o->batch > 0) {
		fprintf(stderr, "bs-bench grpc: --command and --batch exclude each other\n");
		return 2;
	}
	if ((o->command != NULL || o->envelope != NULL) && ((o->command != NULL &&
	    strlen(o->command) > BENCH_NAME_MAX) || strlen(o->key_name) > BENCH_NAME_MAX ||
	    strlen(o->vehicles_prefix) > BENCH_NAME_MAX)) {
		fprintf(stderr, "bs-bench grpc: --command, --key-name and --vehicles-prefix are at "
		    "most %d characters\n", BENCH_NAME_MAX);
		return 2;
	}
	if (o->envelope != NULL && strlen(o->key_name) > ENVBLOB_NAME_MAX) {
		fprintf(stderr, "bs-bench grpc: a KEK name is at most %d characters\n",
		    ENVBLOB_NAME_MAX);
		return 2;
	}
	return 0;
}

static int
run_grpc(const struct opts *o)
{
	struct bs_client_opts co;
	struct grpc_bench g;
	struct slot *slots = NULL;
	struct req_bodies bodies;
	struct env_pack envp;
	struct env_keys envk;
	bs_client *c = NULL;
	uint8_t digest[BENCH_DIGEST_LEN];
	uint8_t *req = NULL, *spki = NULL;
	const uint8_t *body;
	size_t req_len = 0, spki_len = 0, body_len;
	const char *path = NULL;
	char port[8], err[512];
	uint64_t t_start, t_end, deadline;
	unsigned long n, distinct = 0;
	unsigned i, next = 0;
	double secs;
	int rv, ret = 1;

	memset(&g, 0, sizeof(g));
	memset(&bodies, 0, sizeof(bodies));
	memset(&envp, 0, sizeof(envp));
	memset(&envk, 0, sizeof(envk));
	if ((rv = grpc_check_opts(o)) != 0)
		return rv;
	if (split_server(o->server, port, sizeof(port)) != 0)
		return 2;
	if (o->command != NULL) {
		if (pack_command_requests(o, &bodies) != 0) {
			fprintf(stderr, "bs-bench grpc: cannot build the SignCommand requests\n");
			goto out;
		}
		path = PATH_SIGN_COMMAND;
	} else if (o->health) {
		path = PATH_HEALTH_CHECK;   /* an empty HealthCheckRequest: the server as a whole */
	} else if (o->envelope == NULL) {
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
	g.health = o->health;
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
	if (o->envelope != NULL) {
		/* KEKs are secret keys: no public key; every answer is checked instead */
		if (env_setup(o, c, &envp, &envk, &bodies) != 0)
			goto out;
		g.envp = &envp;
		g.kek = o->key_name;
		path = env_path(envp.kind);
	} else if (o->health) {
		g.verified = 1;   /* nothing to verify: each answer is checked */
	} else {
		if (fetch_spki(c, o->key_name, &spki, &spki_len) != 0)
			goto out;
		g.spki = spki;
		g.spki_len = spki_len;
	}
	for (i = 0; i < o->streams; i++)
		slots[i].g = &g;

	t_start = bench_now_ns();
	deadline = t_start + (uint64_t)(o->seconds * 1e9);
	for (;;) {
		uint64_t t = bench_now_ns();

		if (t < deadline && g.bad_status == 0) {
			for (i = 0; i < o->streams && g.started < g.max_ops; i++) {
				if (slots[i].busy)
					continue;
				body = req;
				body_len = req_len;
				if (bodies.n > 0) {
					/* round robin: call k sends body k mod n */
					body = bodies.buf + bodies.off[next];
					body_len = bodies.len[next];
					slots[i].body = next;
					if (++next == bodies.n)
						next = 0;
				}
				slots[i].busy = 1;
				slots[i].t0 = bench_now_ns();
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
	t_end = bench_now_ns();
	if (g.envp != NULL && (envp.kind == ENV_GENERATE || envp.kind == ENV_GENERATE_BATCH) &&
	    g.bad_status == 0 && g.have_first) {
		if (env_round_trip(c, &g, o->vehicles_prefix) == 0)
			g.verified = 1;
		else
			g.bad_items++;
	}

	n = g.completed < g.max_ops ? g.completed : g.max_ops;
	secs = (double)(t_end - t_start) / 1e9;
	qsort(g.lat, n, sizeof(*g.lat), bench_cmp_u64);
	if (g.command) {
		distinct = count_distinct(g.seqs, g.nseqs);
		printf("RESULT mode=grpc-command command=%s vehicles=%u streams=%u calls=%lu tokens=%lu "
		    "bad_status=%lu bad_items=%lu distinct_seq=%lu secs=%.3f calls_per_s=%.0f "
		    "p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
		    o->command, bodies.n, o->streams, g.completed, g.sigs, g.bad_status, g.bad_items,
		    distinct, secs, (double)g.completed / secs, bench_pct_us(g.lat, n, 50.0),
		    bench_pct_us(g.lat, n, 99.0), bench_pct_us(g.lat, n, 99.9));
	} else if (g.envp != NULL) {
		printf("RESULT mode=grpc-envelope op=%s streams=%u batch=%u vehicles=%u blobs=%u "
		    "calls=%lu items=%lu bad_status=%lu bad_items=%lu secs=%.3f calls_per_s=%.0f "
		    "items_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
		    o->envelope, o->streams, o->batch, o->vehicles, envk.n, g.completed, g.sigs,
		    g.bad_status, g.bad_items, secs, (double)g.completed / secs, (double)g.sigs / secs,
		    bench_pct_us(g.lat, n, 50.0), bench_pct_us(g.lat, n, 99.0), bench_pct_us(g.lat, n, 99.9));
	} else {
		printf("RESULT mode=%s streams=%u batch=%u calls=%lu sigs=%lu bad_status=%lu "
		    "bad_items=%lu secs=%.3f calls_per_s=%.0f sigs_per_s=%.0f p50_us=%.1f "
		    "p99_us=%.1f p999_us=%.1f\n", g.health ? "grpc-health" : "grpc",
		    o->streams, o->batch, g.completed, g.sigs, g.bad_status, g.bad_items, secs,
		    (double)g.completed / secs, (double)g.sigs / secs, bench_pct_us(g.lat, n, 50.0),
		    bench_pct_us(g.lat, n, 99.0), bench_pct_us(g.lat, n, 99.9));
	}
	if (g.bad_status > 0 || g.bad_items > 0) {
		fprintf(stderr, "bs-bench grpc: %lu failed calls, %lu bad %s\n", g.bad_status,
		    g.bad_items, g.command ? "tokens" : g.envp != NULL ? "items" : "signatures");
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
	req_bodies_free(&bodies);
	env_pack_free(&envp);
	env_keys_free(&envk);
	OPENSSL_cleanse(g.last_dk, sizeof(g.last_dk));
	OPENSSL_cleanse(g.first_dk, sizeof(g.first_dk));
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
