/*
 * tlm-bench.c - the telemetry verification benchmark (tests/bench/run-bench,
 * docs/benchmarks.md "Telemetry verification").
 *
 *   tlm-bench --server 127.0.0.1:PORT --ca F --cert F --key F
 *             [--vehicles V] [--batch B] [--streams K] [--threads T]
 *             [--seconds S] [--max-ops M]
 *
 * Setup (not timed): V vehicles "tbXXXXXXXX-NNNNN" (a random run prefix)
 * with fresh ECDSA P-256 identity keys are registered (RegisterVehicle);
 * M batches are signed with the client library (bs_tlm_sign), batch i by
 * vehicle i mod V with sequence number i / V + 1, a one-second window
 * ending now.
 *
 * raw (--threads T): the floor: T threads verify the batches' ECDSA
 * signatures over their Sig_structures with OpenSSL (EVP_DigestVerify, the
 * vehicles' keys parsed before the loop), each batch once.
 *
 * grpc (--streams K): one mTLS connection keeping K VerifyTelemetryBatches
 * calls of B batches (B = 0: unary VerifyTelemetryBatch) in flight, each
 * batch sent once; every verdict must be ACCEPTED.
 *
 * Each prints one line "RESULT mode=... batches=N secs=S batches_per_s=R
 * p50_ms=..." and exits 0, or exits 1 on any failure. Loops are bounded by
 * --seconds and by the M batches signed (--max-ops).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "benchstat.h"
#include "boltseal/client.h"
#include "boltseal/telemetry.h"
#include "boltseal/v1/telemetry.pb-c.h"
#include "boltseal/v1/vehicles.pb-c.h"
#include "formats/tlm_batch.h"

struct opts {
	const char *server, *ca, *cert, *key;
	unsigned long vehicles, batch, streams, threads, seconds, max_ops;
};

struct tok {
	uint8_t b[BS_TLM_TOKEN_MAX];
	size_t len;
};

static struct opts o = { NULL, NULL, NULL, NULL, 1000, 100, 4, 0, 5, 100000 };
static EVP_PKEY **keys;
static struct tok *toks;
static unsigned long ntoks;

/* ---- setup -------------------------------------------------------------------------------- */

static int
setup(bs_client *c)
{
	char prefix[16], id[40];
	uint8_t rnd[4], *spki = NULL;
	struct timespec ts;
	int64_t end;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	snprintf(prefix, sizeof(prefix), "tb%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2], rnd[3]);
	if ((keys = calloc(o.vehicles, sizeof(*keys))) == NULL ||
	    (toks = calloc(o.max_ops, sizeof(*toks))) == NULL)
		return -1;
	for (unsigned long v = 0; v < o.vehicles; v++) {
		Boltseal__V1__RegisterVehicleRequest req = BOLTSEAL__V1__REGISTER_VEHICLE_REQUEST__INIT;
		Boltseal__V1__VehicleIdentity ident = BOLTSEAL__V1__VEHICLE_IDENTITY__INIT;
		struct bs_call_result res;
		uint8_t body[512];
		int n;

		if ((keys[v] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
		    (n = i2d_PUBKEY(keys[v], &spki)) <= 0)
			return -1;
		snprintf(id, sizeof(id), "%s%05lu", prefix, v);
		ident.public_key.data = spki;
		ident.public_key.len = (size_t)n;
		req.id = id;
		req.identity = &ident;
		if (boltseal__v1__register_vehicle_request__get_packed_size(&req) > sizeof(body))
			return -1;
		n = (int)boltseal__v1__register_vehicle_request__pack(&req, body);
		memset(&res, 0, sizeof(res));
		if (bs_client_unary(c, "/boltseal.v1.VehicleService/RegisterVehicle", body, (size_t)n,
		    &res) != 0 || res.grpc_status != 0) {
			fprintf(stderr, "tlm-bench: RegisterVehicle %s: %s\n", id,
			    res.grpc_message != NULL ? res.grpc_message : "failed");
			bs_call_result_clear(&res);
			return -1;
		}
		bs_call_result_clear(&res);
		OPENSSL_free(spki);
		spki = NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (unsigned long i = 0; i < o.max_ops; i++) {
		struct bs_tlm_window w;

		memset(&w, 0, sizeof(w));
		snprintf(id, sizeof(id), "%s%05lu", prefix, i % o.vehicles);
		w.vehicle_id = id;
		w.seq = i / o.vehicles + 1;
		w.start_ms = end - 1000;
		w.end_ms = end;
		w.samples = 10;
		memset(w.samples_sha256, (int)(i & 0xff), sizeof(w.samples_sha256));
		if (bs_tlm_sign(&w, keys[i % o.vehicles], toks[i].b, sizeof(toks[i].b),
		    &toks[i].len) != BS_TLM_OK)
			return -1;
	}
	ntoks = o.max_ops;
	return 0;
}

/* ---- raw: OpenSSL alone ---------------------------------------------------------------------- */

struct raw_thread {
	pthread_t t;
	unsigned long from, to, done;
	uint64_t deadline;
	int bad;
};

static void *
raw_run(void *arg)
{
	struct raw_thread *r = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	for (unsigned long i = r->from; i < r->to && ctx != NULL; i++) {
		struct tlm_batch b;
		const char *why;
		uint8_t der[80], *p = der;
		ECDSA_SIG *s;
		BIGNUM *x, *y;
		int n;

		if ((i & 63) == 0 && bench_now_ns() > r->deadline)
			break;
		/* the signature and what it covers, as a verifier receives them */
		if (tlm_batch_decode(toks[i].b, toks[i].len, &b, &why) != 0 ||
		    (s = ECDSA_SIG_new()) == NULL) {
			r->bad = 1;
			break;
		}
		x = BN_bin2bn(b.sig, 32, NULL);
		y = BN_bin2bn(b.sig + 32, 32, NULL);
		if (x == NULL || y == NULL || ECDSA_SIG_set0(s, x, y) != 1 ||
		    (n = i2d_ECDSA_SIG(s, &p)) <= 0 || EVP_MD_CTX_reset(ctx) != 1 ||
		    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
		    keys[i % o.vehicles]) != 1 ||
		    EVP_DigestVerify(ctx, der, (size_t)n, b.tbs, b.tbs_len) != 1) {
			ECDSA_SIG_free(s);
			r->bad = 1;
			break;
		}
		ECDSA_SIG_free(s);
		r->done++;
	}
	EVP_MD_CTX_free(ctx);
	return NULL;
}

static int
run_raw(void)
{
	struct raw_thread *th = calloc(o.threads, sizeof(*th));
	uint64_t t0 = bench_now_ns();
	unsigned long total = 0;
	double secs;
	int bad = 0;

	if (th == NULL)
		return 1;
	for (unsigned long t = 0; t < o.threads; t++) {
		th[t].from = ntoks * t / o.threads;
		th[t].to = ntoks * (t + 1) / o.threads;
		th[t].deadline = t0 + o.seconds * 1000000000ull;
		if (pthread_create(&th[t].t, NULL, raw_run, &th[t]) != 0)
			return 1;
	}
	for (unsigned long t = 0; t < o.threads; t++) {
		pthread_join(th[t].t, NULL);
		total += th[t].done;
		bad |= th[t].bad;
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	free(th);
	if (bad) {
		fprintf(stderr, "tlm-bench raw: a signature did not verify\n");
		return 1;
	}
	printf("RESULT mode=raw threads=%lu batches=%lu secs=%.2f batches_per_s=%.0f\n", o.threads,
	    total, secs, (double)total / secs);
	return 0;
}

/* ---- grpc: the service ------------------------------------------------------------------------ */

struct grpc_run {
	bs_client *c;
	unsigned long next, accepted, calls, ncalls_max;
	uint64_t deadline;
	uint64_t *lat;
	int bad;
};

struct slot {
	struct grpc_run *g;
	uint64_t t0;
	unsigned long n;
};

static void on_done(void *arg, const struct bs_call_result *res);

/* Starts the slot's next call; 0 when there is nothing left to send. */
static int
start(struct slot *s)
{
	struct grpc_run *g = s->g;
	unsigned long per = o.batch > 0 ? o.batch : 1, i;
	Boltseal__V1__TelemetryBatch *bb, **bp;
	uint8_t *body;
	size_t len;
	int rc;

	if (g->next + per > ntoks || bench_now_ns() > g->deadline || g->bad)
		return 0;
	bb = calloc(per, sizeof(*bb));
	bp = calloc(per, sizeof(*bp));
	if (bb == NULL || bp == NULL) {
		g->bad = 1;
		free(bb);
		free(bp);
		return 0;
	}
	for (i = 0; i < per; i++) {
		boltseal__v1__telemetry_batch__init(&bb[i]);
		bb[i].token.data = toks[g->next + i].b;
		bb[i].token.len = toks[g->next + i].len;
		bp[i] = &bb[i];
	}
	if (o.batch > 0) {
		Boltseal__V1__VerifyTelemetryBatchesRequest r =
		    BOLTSEAL__V1__VERIFY_TELEMETRY_BATCHES_REQUEST__INIT;

		r.batches = bp;
		r.n_batches = per;
		len = boltseal__v1__verify_telemetry_batches_request__get_packed_size(&r);
		if ((body = malloc(len)) != NULL)
			boltseal__v1__verify_telemetry_batches_request__pack(&r, body);
	} else {
		Boltseal__V1__VerifyTelemetryBatchRequest r =
		    BOLTSEAL__V1__VERIFY_TELEMETRY_BATCH_REQUEST__INIT;

		r.batch = bp[0];
		len = boltseal__v1__verify_telemetry_batch_request__get_packed_size(&r);
		if ((body = malloc(len)) != NULL)
			boltseal__v1__verify_telemetry_batch_request__pack(&r, body);
	}
	free(bb);
	free(bp);
	if (body == NULL) {
		g->bad = 1;
		return 0;
	}
	g->next += per;
	s->n = per;
	s->t0 = bench_now_ns();
	rc = bs_client_start(g->c, o.batch > 0 ? "/boltseal.v1.TelemetryService/VerifyTelemetryBatches" :
	    "/boltseal.v1.TelemetryService/VerifyTelemetryBatch", body, len, on_done, s);
	free(body);
	if (rc != 0)
		g->bad = 1;
	return rc == 0;
}

static void
on_done(void *arg, const struct bs_call_result *res)
{
	struct slot *s = arg;
	struct grpc_run *g = s->g;
	unsigned long ok = 0;

	if (g->calls < g->ncalls_max)
		g->lat[g->calls] = bench_now_ns() - s->t0;
	g->calls++;
	if (res->grpc_status != 0) {
		fprintf(stderr, "tlm-bench: status %d: %s\n", res->grpc_status,
		    res->grpc_message != NULL ? res->grpc_message : "");
		g->bad = 1;
		return;
	}
	if (o.batch > 0) {
		Boltseal__V1__VerifyTelemetryBatchesResponse *r =
		    boltseal__v1__verify_telemetry_batches_response__unpack(NULL, res->resp_len,
		    res->resp);

		ok = r != NULL && r->n_verdicts == s->n ? r->accepted : 0;
		if (r != NULL)
			boltseal__v1__verify_telemetry_batches_response__free_unpacked(r, NULL);
	} else {
		Boltseal__V1__TelemetryVerdict *v = boltseal__v1__telemetry_verdict__unpack(NULL,
		    res->resp_len, res->resp);

		ok = v != NULL && v->code == BOLTSEAL__V1__TELEMETRY_VERDICT_CODE__ACCEPTED;
		if (v != NULL && !ok)
			fprintf(stderr, "tlm-bench: refused: %s\n", v->reason);
		if (v != NULL)
			boltseal__v1__telemetry_verdict__free_unpacked(v, NULL);
	}
	if (ok != s->n) {
		fprintf(stderr, "tlm-bench: %lu of %lu batches accepted\n", ok, s->n);
		g->bad = 1;
		return;
	}
	g->accepted += ok;
	(void)start(s);
}

static int
run_grpc(void)
{
	struct grpc_run g;
	struct slot *slots = calloc(o.streams, sizeof(*slots));
	uint64_t t0;
	double secs;

	memset(&g, 0, sizeof(g));
	g.c = NULL;
	if (slots == NULL)
		return 1;
	{
		struct bs_client_opts co;
		char host[64], *colon, err[256];

		snprintf(host, sizeof(host), "%s", o.server);
		if ((colon = strrchr(host, ':')) == NULL)
			return 2;
		*colon = '\0';
		memset(&co, 0, sizeof(co));
		co.host = host;
		co.port = colon + 1;
		co.server_name = "localhost";
		co.ca_file = o.ca;
		co.cert_file = o.cert;
		co.key_file = o.key;
		co.timeout_ms = 60000;
		if (bs_client_connect(&co, &g.c, err, sizeof(err)) != 0) {
			fprintf(stderr, "tlm-bench: connect: %s\n", err);
			return 1;
		}
	}
	if (setup(g.c) != 0) {
		fprintf(stderr, "tlm-bench: setup failed\n");
		return 1;
	}
	if (o.threads > 0) {
		int rc = run_raw();

		bs_client_free(g.c);
		return rc;
	}
	g.ncalls_max = ntoks;
	if ((g.lat = calloc(g.ncalls_max, sizeof(*g.lat))) == NULL)
		return 1;
	t0 = bench_now_ns();
	g.deadline = t0 + o.seconds * 1000000000ull;
	for (unsigned long i = 0; i < o.streams; i++) {
		slots[i].g = &g;
		(void)start(&slots[i]);
	}
	while (bs_client_pending(g.c) > 0 && !g.bad)
		if (bs_client_run(g.c, 1) != 0)
			g.bad = 1;
	secs = (double)(bench_now_ns() - t0) / 1e9;
	bs_client_free(g.c);
	if (g.bad || g.accepted == 0)
		return 1;
	if (g.calls > g.ncalls_max)
		g.calls = g.ncalls_max;
	qsort(g.lat, g.calls, sizeof(*g.lat), bench_cmp_u64);
	printf("RESULT mode=grpc batch=%lu streams=%lu batches=%lu secs=%.2f batches_per_s=%.0f "
	    "p50_ms=%.2f\n", o.batch, o.streams, g.accepted, secs, (double)g.accepted / secs,
	    (double)g.lat[g.calls / 2] / 1e6);
	free(g.lat);
	free(slots);
	return 0;
}

static int
num(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;

	*out = strtoul(s, &end, 10);
	return s[0] >= '0' && s[0] <= '9' && *end == '\0' && *out >= lo && *out <= hi ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "server", 1, NULL, 's' }, { "ca", 1, NULL, 'a' }, { "cert", 1, NULL, 'c' },
		{ "key", 1, NULL, 'k' }, { "vehicles", 1, NULL, 'v' }, { "batch", 1, NULL, 'b' },
		{ "streams", 1, NULL, 'n' }, { "threads", 1, NULL, 't' },
		{ "seconds", 1, NULL, 'S' }, { "max-ops", 1, NULL, 'M' }, { NULL, 0, NULL, 0 } };
	int ch, bad = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o.server = optarg; break;
		case 'a': o.ca = optarg; break;
		case 'c': o.cert = optarg; break;
		case 'k': o.key = optarg; break;
		case 'v': bad |= num(optarg, 1, 99999, &o.vehicles); break;
		case 'b': bad |= num(optarg, 0, 10000, &o.batch); break;
		case 'n': bad |= num(optarg, 1, 1024, &o.streams); break;
		case 't': bad |= num(optarg, 1, 64, &o.threads); break;
		case 'S': bad |= num(optarg, 1, 600, &o.seconds); break;
		case 'M': bad |= num(optarg, 1, 2000000, &o.max_ops); break;
		default: bad = 1;
		}
	}
	if (bad || optind != argc || o.server == NULL || o.ca == NULL || o.cert == NULL ||
	    o.key == NULL) {
		fprintf(stderr, "usage: tlm-bench --server HOST:PORT --ca F --cert F --key F "
		    "[--vehicles V] [--batch B] [--streams K] [--threads T] [--seconds S] "
		    "[--max-ops M]\n");
		return 2;
	}
	return run_grpc();
}
