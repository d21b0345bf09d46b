/*
 * auditlog.c - the append-only audit log and its Merkle tree (see
 * auditlog.h). One writer thread takes every queued record at once, writes
 * them with one pwrite(2) and one fdatasync(2) (group commit), then adds
 * their leaf hashes to the tree and hands the completions back to the event
 * loop with event_active().
 *
 * The file is preallocated in chunks of zeros (opts.prealloc_chunk) that are
 * really written, not fallocate(2)d: a group then lands in blocks that
 * exist, with the file's size unchanged, so its fdatasync(2) has no
 * metadata to commit (on ext4 about half the time and CPU of a sync that
 * grows the file; see docs/benchmarks.md). The records end where the zeros
 * begin; the zero tail is cut off when the log is closed. At open a NUL
 * ends the records: what follows must be all NULs, or it is a write that
 * never completed and is cut like a torn last record.
 *
 * The queue's places: nqueued records waiting (or kept while the log
 * cannot be written) plus nheld places reserved and not yet filled.
 * audit_log_append() stops at queue_max; audit_log_reserve() at
 * queue_max + reserve, so the last reserve places are for reservations
 * (key lifecycle records) only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "audit/auditlog.h"
#include "common/histogram.h"
#include "common/bytebuf.h"
#include "common/hex.h"
#include "common/json.h"
#include "common/log.h"

#define RETRY_MS 200                 /* between write attempts while unhealthy */
#define SCAN_CHUNK (256 * 1024)
#define LINE_MAX_BYTES (1024 * 1024) /* a longer line is not ours */
#define PREFIX_MIN 80                /* {"seq":0,"prev":"<64 hex>" */
#define ZERO_BLOCK (64u * 1024)
#define PREALLOC_SPARE (64ull << 20)  /* free space a chunk of zeros must leave */

/* A caller of audit_log_write_wait() blocked until its record is settled. */
struct sync_wait {
	int done;
	int rc;
};

/* Completion owed to a caller; lives until its callback ran. */
struct notice {
	struct notice *next;
	audit_done_fn done;
	void *arg;
	int rc;
	struct sync_wait *sync;          /* instead of done: wake the waiter (sync_cond) */
};

/* A reserved place: its notice is allocated up front. */
struct audit_slot {
	struct notice *nt;
};

/* A queued record (deep copy of struct audit_record). */
struct arec {
	struct arec *next;
	enum audit_type type;
	char *request_id, *principal_id, *identity, *method, *key, *target, *result, *reason, *event;
	uint8_t cert[32];
	int have_cert;
	int64_t key_version;
	uint8_t (*payload)[32];
	size_t npayload;
	char *fields;                    /* the "fields" object rendered at append, or NULL */
	char ts[32];
	struct timespec queued;          /* CLOCK_MONOTONIC at append (the write lag) */
	struct notice *notice;           /* NULL once the caller was told */
	uint64_t summarised;             /* a recovery note counting this many refusals */
	int withheld;                    /* its caller got UNAVAILABLE */
};

struct audit_log {
	char path[4096];
	int fd;                          /* writer: O_WRONLY, pwrite at end */
	int rfd;                         /* readers: pread */
	struct event *done_ev;
	struct audit_log_opts opts;
	pthread_t thread;
	int thread_started;

	pthread_mutex_t mu;              /* guards everything below */
	pthread_cond_t cond;
	pthread_cond_t sync_cond;        /* a sync_wait was settled */
	struct arec *q_head, **q_tail;   /* appended, not yet taken */
	unsigned nqueued;                /* queued + retry */
	unsigned nheld;                  /* places reserved, not yet committed */
	unsigned reserve;                /* places past queue_max for reservations */
	struct arec *retry;              /* withheld, oldest first (writer) */
	struct notice *done_head, **done_tail;
	uint64_t dropped;                /* refused at append, not recorded */
	uint64_t refused_total;          /* appends refused over queue_max, ever (metrics) */
	int stopping;
	_Atomic int healthy;
	struct merkle_tree *tree;
	uint64_t *offs;                  /* start offset of each durable line */
	size_t offs_cap;
	uint64_t end;                    /* durable end of the records */
	int scanned;                     /* the file was read: end is where its records end */
	uint64_t grown_at;               /* loop thread: size at the last on_grow */
	struct bs_hist sync_hist;        /* write(2) + fdatasync(2) of each group */
	struct bs_hist lag_hist;         /* append to durable, per record */

	/* writer thread only */
	uint8_t prev[MERKLE_HASH_LEN];   /* leaf hash of the last durable line */
	uint64_t alloc;                  /* the file's size: records, then zeros */
	uint64_t chunk;                  /* preallocation step; 1: none */
};

/* ---- serialisation ------------------------------------------------------- */

static const char *
type_name(enum audit_type t)
{
	switch (t) {
	case AUDIT_RPC:
		return "rpc";
	case AUDIT_START:
		return "start";
	case AUDIT_STOP:
		return "stop";
	case AUDIT_RELOAD:
		return "reload";
	case AUDIT_RECOVERY:
		return "recovery";
	case AUDIT_KEY:
		return "key";
	case AUDIT_POLICY:
		return "policy";
	default:
		return "unknown";
	}
}

/*
 * Appends the line for r as record seq (newline included) to b; leaf gets
 * its leaf hash. Returns 0, or the error of b (BS_ERR_NOMEM, BS_ERR_TOO_BIG).
 */
static int
serialize(struct bytebuf *b, const struct arec *r, uint64_t seq, const uint8_t prev[32],
    uint8_t leaf[MERKLE_HASH_LEN])
{
	struct bs_json j;
	char hx[BS_HEX_LEN(32)], reason[1024];
	size_t start = b->len;
	int rc;

	bs_json_init(&j, b);
	bs_json_begin_object(&j, NULL);
	bs_json_put_uint(&j, "seq", seq);
	bs_hex_encode(prev, 32, hx);
	bs_json_put_string(&j, "prev", hx);
	bs_json_put_string(&j, "timestamp", r->ts);
	bs_json_put_string(&j, "type", type_name(r->type));
	bs_json_put_string(&j, "request_id", r->request_id);
	bs_json_put_string(&j, "principal_id", r->principal_id);
	bs_json_put_string(&j, "identity", r->identity);
	if (r->have_cert)
		bs_hex_encode(r->cert, 32, hx);
	bs_json_put_string(&j, "cert_sha256", r->have_cert ? hx : NULL);
	bs_json_put_string(&j, "method", r->method);
	bs_json_put_string(&j, "key", r->key);
	if (r->key_version >= 0)
		bs_json_put_int(&j, "key_version", r->key_version);
	else
		bs_json_put_null(&j, "key_version");
	bs_json_put_string(&j, "target", r->target);
	if (r->withheld && r->type == AUDIT_KEY) {
		/* the caller of a key change refuses it when its record is not durable */
		snprintf(reason, sizeof(reason),
		    "not carried out: the audit log could not be written before the change was due; "
		    "outcome would have been %s%s%s", r->result != NULL ? r->result : "?",
		    r->reason != NULL ? ": " : "", r->reason != NULL ? r->reason : "");
		bs_json_put_string(&j, "result", "UNAVAILABLE");
		bs_json_put_string(&j, "reason", reason);
	} else if (r->withheld) {
		snprintf(reason, sizeof(reason),
		    "response withheld: the audit log could not be written; outcome was %s%s%s",
		    r->result != NULL ? r->result : "?", r->reason != NULL ? ": " : "",
		    r->reason != NULL ? r->reason : "");
		bs_json_put_string(&j, "result", "UNAVAILABLE");
		bs_json_put_string(&j, "reason", reason);
	} else {
		bs_json_put_string(&j, "result", r->result);
		bs_json_put_string(&j, "reason", r->reason);
	}
	bs_json_put_string(&j, "event", r->event);
	bs_json_begin_array(&j, "payload_sha256");
	for (size_t i = 0; i < r->npayload; i++) {
		bs_hex_encode(r->payload[i], 32, hx);
		bs_json_put_string(&j, NULL, hx);
	}
	bs_json_end_array(&j);
	if (r->fields != NULL)
		bs_json_put_raw(&j, "fields", r->fields, strlen(r->fields));
	bs_json_end_object(&j);
	if ((rc = bs_json_error(&j)) != 0)
		return rc;
	merkle_leaf_hash(b->p + start, b->len - start, leaf);
	bytebuf_put(b, "\n", 1);
	return bytebuf_error(b);
}

static void
now_iso(char out[32])
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	/* the date and time of the last second seen on this thread, formatted once */
	static _Thread_local time_t base_sec = (time_t)-1;
	static _Thread_local char base_txt[24];
	int ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != base_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
			memcpy(base, "0000-00-00T00:00:00", 20);
		memcpy(base_txt, base, 20);
		base_sec = ts.tv_sec;
	}
	ms = (int)(ts.tv_nsec / 1000000) % 1000;
	memcpy(out, base_txt, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

/* ---- records -------------------------------------------------------------- */

static void
arec_free(struct arec *r)
{
	if (r == NULL)
		return;
	/* the strings and the payload hashes live in r's own allocation */
	free(r->fields);
	free(r->notice);
	free(r);
}

/* Copies src (if any) to *pool and points *dst at the copy. */
static void
put_opt(char **dst, const char *src, size_t len, char **pool)
{
	*dst = NULL;
	if (src == NULL)
		return;
	memcpy(*pool, src, len + 1);
	*dst = *pool;
	*pool += len + 1;
}

/* {"name":"value",...} as a C string into *out (caller frees). 0 or -1 (no memory). */
static int
render_fields(const struct audit_field *f, size_t n, char **out)
{
	struct bytebuf b = BYTEBUF_INIT;
	struct bs_json j;
	size_t len;

	bs_json_init(&j, &b);
	bs_json_begin_object(&j, NULL);
	for (size_t i = 0; i < n; i++)
		bs_json_put_string(&j, f[i].name, f[i].value);
	bs_json_end_object(&j);
	bytebuf_put(&b, "", 1);                 /* the NUL */
	if (bs_json_error(&j) != 0) {
		bytebuf_free(&b);
		return -1;
	}
	*out = (char *)bytebuf_steal(&b, &len);
	return 0;
}

static struct arec *
arec_new(const struct audit_record *in)
{
	/* one allocation: the record, its payload hashes, then its strings */
	const char *src[] = { in->request_id, in->principal_id, in->identity, in->method, in->key,
	    in->target, in->result, in->reason, in->event };
	char **dst[sizeof(src) / sizeof(src[0])];
	size_t len[sizeof(src) / sizeof(src[0])], n = sizeof(src) / sizeof(src[0]), total, i;
	struct arec *r;
	char *pool;

	if (in->npayload > SIZE_MAX / 64)
		return NULL;
	total = sizeof(*r) + in->npayload * 32;
	for (i = 0; i < n; i++) {
		len[i] = src[i] != NULL ? strlen(src[i]) : 0;
		if (src[i] != NULL && (len[i] >= SIZE_MAX / 4 || total > SIZE_MAX - len[i] - 1))
			return NULL;
		total += src[i] != NULL ? len[i] + 1 : 0;
	}
	if ((r = calloc(1, total)) == NULL)
		return NULL;
	dst[0] = &r->request_id;
	dst[1] = &r->principal_id;
	dst[2] = &r->identity;
	dst[3] = &r->method;
	dst[4] = &r->key;
	dst[5] = &r->target;
	dst[6] = &r->result;
	dst[7] = &r->reason;
	dst[8] = &r->event;
	pool = (char *)(r + 1);
	if (in->npayload > 0) {
		r->payload = (uint8_t (*)[32])(void *)pool;
		memcpy(pool, in->payload_sha256, in->npayload * 32);
		r->npayload = in->npayload;
		pool += in->npayload * 32;
	}
	for (i = 0; i < n; i++)
		put_opt(dst[i], src[i], len[i], &pool);
	r->type = in->type;
	r->key_version = in->key_version;
	if (in->cert_sha256 != NULL) {
		memcpy(r->cert, in->cert_sha256, 32);
		r->have_cert = 1;
	}
	if (in->nfields > 0 && render_fields(in->fields, in->nfields, &r->fields) != 0)
		goto fail;
	now_iso(r->ts);
	clock_gettime(CLOCK_MONOTONIC, &r->queued);
	return r;
fail:
	arec_free(r);
	return NULL;
}

/* ---- writing ---------------------------------------------------------------- */

static int
pwrite_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static const char zero_block[ZERO_BLOCK];

/*
 * Writes zeros from l->alloc up to need rounded up to a whole chunk (made
 * durable by the group's own fdatasync), if the file system keeps
 * PREALLOC_SPARE free after them: the zeros must not take the space the
 * catalog and the other state files need. Best effort: without room, or on
 * a failure, l->alloc is what was written and the group's write grows the
 * file itself.
 */
static void
prealloc_to(struct audit_log *l, uint64_t need)
{
	uint64_t want = (need + l->chunk - 1) / l->chunk * l->chunk;
	struct statvfs vfs;

	if (l->chunk <= 1 || fstatvfs(l->fd, &vfs) != 0 ||
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < want - l->alloc + PREALLOC_SPARE)
		return;
	while (l->alloc < want) {
		size_t n = want - l->alloc < ZERO_BLOCK ? (size_t)(want - l->alloc) : ZERO_BLOCK;

		if (pwrite_all(l->fd, zero_block, n, l->alloc) != 0)
			return;
		l->alloc += n;
	}
}

/*
 * Takes a failed group write back: zeros over it inside the preallocated
 * part, the file cut at off where the write went past it.
 */
static void
unwrite(struct audit_log *l, uint64_t off, size_t len)
{
	int saved = errno;

	if (off + len > l->alloc) {
		if (ftruncate(l->fd, (off_t)off) != 0)
			bs_log(BS_LOG_ERROR, "cannot cut the audit log back after a failed write",
			    "path", l->path, "error", strerror(errno), NULL);
		else
			l->alloc = off;
		errno = saved;
		return;
	}
	while (len > 0) {
		size_t n = len < ZERO_BLOCK ? len : ZERO_BLOCK;

		if (pwrite_all(l->fd, zero_block, n, off) != 0) {
			bs_log(BS_LOG_ERROR, "cannot zero a failed write in the audit log", "path",
			    l->path, "error", strerror(errno), NULL);
			break;
		}
		off += n;
		len -= n;
	}
	errno = saved;
}

static int
offs_push(struct audit_log *l, uint64_t off)
{
	size_t n = (size_t)merkle_tree_size(l->tree);

	if (n == l->offs_cap) {
		size_t ncap = l->offs_cap == 0 ? 1024 : l->offs_cap * 2;
		uint64_t *no = realloc(l->offs, ncap * sizeof(*no));

		if (no == NULL)
			return -1;
		l->offs = no;
		l->offs_cap = ncap;
	}
	l->offs[n] = off;
	return 0;
}

/*
 * Writes the records of list (in order) durably. Returns 0 and leaves the
 * tree, offsets, end and prev updated, or -1 with errno (the file is cut
 * back to its durable end when possible).
 */
static int
write_records(struct audit_log *l, struct arec *list)
{
	struct bytebuf b = BYTEBUF_INIT;
	uint8_t (*leaves)[32] = NULL, prev[32];
	uint64_t seq, n = 0, off;
	struct arec *r;
	struct timespec t0;
	int rc = -1, saved;

	for (r = list; r != NULL; r = r->next)
		n++;
	if ((leaves = malloc((size_t)n * 32)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&l->mu);
	seq = merkle_tree_size(l->tree);
	off = l->end;
	pthread_mutex_unlock(&l->mu);
	memcpy(prev, l->prev, 32);
	n = 0;
	for (r = list; r != NULL; r = r->next) {
		if (serialize(&b, r, seq + n, prev, leaves[n]) != 0) {
			errno = ENOMEM;
			goto out;
		}
		memcpy(prev, leaves[n], 32);
		n++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (off + b.len > l->alloc)
		prealloc_to(l, off + b.len);
	if (pwrite_all(l->fd, (const char *)b.p, b.len, off) != 0 || fdatasync(l->fd) != 0) {
		saved = errno;
		/* drop what may have reached the file; rewritten on retry */
		unwrite(l, off, b.len);
		errno = saved;
		goto out;
	}
	if (off + b.len > l->alloc)
		l->alloc = off + b.len;
	pthread_mutex_lock(&l->mu);
	bs_hist_add(&l->sync_hist, bs_elapsed_us(&t0));
	{
		size_t pos = 0, i = 0;

		for (r = list; r != NULL; r = r->next, i++) {
			const uint8_t *nl = memchr(b.p + pos, '\n', b.len - pos);

			if (offs_push(l, off + pos) != 0 ||
			    merkle_tree_append(l->tree, leaves[i]) != 0) {
				/* on disk but not in memory: the next start re-reads it */
				pthread_mutex_unlock(&l->mu);
				bs_log(BS_LOG_ERROR, "out of memory indexing the audit log", NULL);
				abort();
			}
			pos = (size_t)(nl - b.p) + 1;
			bs_hist_add(&l->lag_hist, bs_elapsed_us(&r->queued));
		}
		l->end = off + b.len;
	}
	pthread_mutex_unlock(&l->mu);
	memcpy(l->prev, prev, 32);
	rc = 0;
out:
	bytebuf_free(&b);
	free(leaves);
	return rc;
}

/* Moves the notice of r to the done list with rc (lock held). */
static void
notify_locked(struct audit_log *l, struct arec *r, int rc)
{
	struct notice *nt = r->notice;

	if (nt == NULL)
		return;
	r->notice = NULL;
	if (nt->sync != NULL) {
		nt->sync->rc = rc;
		nt->sync->done = 1;
		pthread_cond_broadcast(&l->sync_cond);
		free(nt);
		return;
	}
	nt->rc = rc;
	nt->next = NULL;
	*l->done_tail = nt;
	l->done_tail = &nt->next;
}

static void
retry_append_locked(struct audit_log *l, struct arec *list)
{
	struct arec **t = &l->retry;

	while (*t != NULL)
		t = &(*t)->next;
	*t = list;
}

static struct arec *
recovery_note_new(uint64_t dropped)
{
	struct audit_record in;
	char reason[256];

	memset(&in, 0, sizeof(in));
	struct arec *r;

	snprintf(reason, sizeof(reason),
	    "%" PRIu64 " calls refused because the audit log could not take their records (write "
	    "failure or backlog) were not recorded one by one", dropped);
	in.type = AUDIT_RECOVERY;
	in.key_version = -1;
	in.result = "OK";
	in.reason = reason;
	in.event = "unrecorded_refusals";
	if ((r = arec_new(&in)) != NULL)
		r->summarised = dropped;
	return r;
}

static void *
writer_main(void *arg)
{
	struct audit_log *l = arg;
	struct timespec next_retry = { 0, 0 };

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct arec *batch, *r, *next;
		int rc, was_healthy;

		if (l->retry == NULL && l->q_head == NULL) {
			if (l->stopping)
				break;
			pthread_cond_wait(&l->cond, &l->mu);
			continue;
		}
		if (!atomic_load(&l->healthy)) {
			struct timespec now;

			/* tell new callers at once; keep their records for later */
			for (r = l->q_head; r != NULL; r = r->next) {
				if (r->notice != NULL)
					r->withheld = 1;
				notify_locked(l, r, BS_ERR_UNAVAILABLE);
			}
			retry_append_locked(l, l->q_head);
			l->q_head = NULL;
			l->q_tail = &l->q_head;
			event_active(l->done_ev, EV_READ, 0);
			if (l->stopping)
				break;
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec < next_retry.tv_sec ||
			    (now.tv_sec == next_retry.tv_sec && now.tv_nsec < next_retry.tv_nsec)) {
				(void)pthread_cond_timedwait(&l->cond, &l->mu, &next_retry);
				continue;
			}
		}
		/* the batch: withheld records first, then everything queued */
		batch = l->retry;
		l->retry = NULL;
		{
			struct arec **t = &batch;

			while (*t != NULL)
				t = &(*t)->next;
			*t = l->q_head;
		}
		l->q_head = NULL;
		l->q_tail = &l->q_head;
		if (l->dropped > 0) {
			struct arec *rn = recovery_note_new(l->dropped);

			if (rn != NULL) {
				struct arec **t = &batch;

				while (*t != NULL)
					t = &(*t)->next;
				*t = rn;
				l->dropped = 0;
				l->nqueued++;
			}
		}
		pthread_mutex_unlock(&l->mu);

		rc = write_records(l, batch);

		pthread_mutex_lock(&l->mu);
		was_healthy = atomic_load(&l->healthy);
		if (rc == 0) {
			for (r = batch; r != NULL; r = next) {
				next = r->next;
				notify_locked(l, r, 0);
				arec_free(r);
				l->nqueued--;
			}
			atomic_store(&l->healthy, 1);
			if (!was_healthy)
				bs_log(BS_LOG_WARN, "audit log writable again", "path", l->path, NULL);
		} else {
			int err = errno;

			struct arec **pp = &batch;

			/* a refusal summary is remade with the new total on the next try */
			while (*pp != NULL) {
				r = *pp;
				if (r->summarised > 0) {
					*pp = r->next;
					l->dropped += r->summarised;
					l->nqueued--;
					arec_free(r);
					continue;
				}
				if (r->notice != NULL)
					r->withheld = 1;
				notify_locked(l, r, BS_ERR_UNAVAILABLE);
				pp = &r->next;
			}
			/* back in front of anything withheld meanwhile (none: writer only) */
			retry_append_locked(l, batch);
			atomic_store(&l->healthy, 0);
			if (was_healthy)
				bs_log(BS_LOG_ERROR, "cannot write the audit log; refusing operations "
				    "until it can be written", "path", l->path, "error", strerror(err),
				    NULL);
			clock_gettime(CLOCK_REALTIME, &next_retry);
			next_retry.tv_nsec += RETRY_MS * 1000000L;
			if (next_retry.tv_nsec >= 1000000000L) {
				next_retry.tv_sec++;
				next_retry.tv_nsec -= 1000000000L;
			}
		}
		event_active(l->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Runs the callbacks of the done list (caller's thread). */
static void
run_done(struct audit_log *l)
{
	struct notice *nt, *next;
	uint64_t size;

	pthread_mutex_lock(&l->mu);
	nt = l->done_head;
	l->done_head = NULL;
	l->done_tail = &l->done_head;
	size = merkle_tree_size(l->tree);
	pthread_mutex_unlock(&l->mu);
	for (; nt != NULL; nt = next) {
		next = nt->next;
		nt->done(nt->arg, nt->rc);
		free(nt);
	}
	if (l->opts.on_grow != NULL && l->opts.grow_every > 0 &&
	    size >= l->grown_at + l->opts.grow_every) {
		l->grown_at = size;
		l->opts.on_grow(l->opts.grow_arg, size);
	}
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_done(arg);
}

/* ---- opening: re-read, check the chain, repair a torn tail ---------------- */

/* Checks that line (no newline) starts {"seq":index,"prev":"<hex of prev>". */
static int
check_prefix(const char *line, size_t len, uint64_t index, const uint8_t prev[32])
{
	char want[48];
	uint8_t got[32];
	int n = snprintf(want, sizeof(want), "{\"seq\":%" PRIu64 ",\"prev\":\"", index);

	if (n < 0 || len < (size_t)n + 65 || memcmp(line, want, (size_t)n) != 0)
		return -1;
	if (bs_hex_decode(line + n, 64, got, 32, BS_HEX_LOWER) != 0 || line[n + 64] != '"')
		return -1;
	return memcmp(got, prev, 32) == 0 ? 0 : -1;
}

/*
 * The end of the last byte that is not NUL in [from, EOF) of fd, or from:
 * what a torn write left after the records. 0 or -1 (errno).
 */
static int
nonzero_end(int fd, uint64_t from, char *buf, size_t cap, uint64_t *end)
{
	uint64_t off = from;

	*end = from;
	for (;;) {
		ssize_t nr = pread(fd, buf, cap, (off_t)off);
		ssize_t i;

		if (nr < 0 && errno == EINTR)
			continue;
		if (nr < 0)
			return -1;
		if (nr == 0)
			return 0;
		for (i = nr; i > 0 && buf[i - 1] == '\0'; i--)
			;
		if (i > 0)
			*end = off + (uint64_t)i;
		off += (uint64_t)nr;
	}
}

/*
 * Reads the records into the tree and the offsets, up to the first NUL
 * (the preallocated zeros) or the end of the file. *torn_off is where the
 * records end, *torn_len how many bytes after it are not zeros (a write
 * that never completed: cut at open), *torn_zeros 1 if the records ended at
 * a NUL, l->alloc the file's size.
 */
static int
scan_file(struct audit_log *l, uint64_t *torn_off, uint64_t *torn_len, int *torn_zeros, char *err,
    size_t errlen)
{
	char *buf = NULL;
	const char *zero;
	size_t have = 0, cap = SCAN_CHUNK;
	uint64_t base = 0, nz_end;
	struct stat st;
	int rc = BS_ERR_IO, ended = 0;

	memset(l->prev, 0, sizeof(l->prev));
	if ((buf = malloc(cap)) == NULL)
		return BS_ERR_NOMEM;
	for (;;) {
		ssize_t nr;
		size_t pos = 0;

		if (have == cap) {
			char *nb;

			if (cap >= LINE_MAX_BYTES * 2) {
				snprintf(err, errlen, "%s: record %" PRIu64 " is longer than %d bytes",
				    l->path, merkle_tree_size(l->tree), LINE_MAX_BYTES);
				rc = BS_ERR_MISMATCH;
				goto out;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		nr = pread(l->rfd, buf + have, cap - have, (off_t)(base + have));
		if (nr < 0 && errno == EINTR)
			continue;
		if (nr < 0) {
			snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
			goto out;
		}
		if (nr == 0)
			break;
		have += (size_t)nr;
		/* the first NUL of what is buffered: one search per read, not per line */
		zero = memchr(buf, '\0', have);
		for (;;) {
			char *nl = memchr(buf + pos, '\n', have - pos);
			size_t len;
			uint64_t idx = merkle_tree_size(l->tree);
			uint8_t leaf[32];

			len = nl != NULL ? (size_t)(nl - (buf + pos)) : have - pos;
			if (zero != NULL && zero < buf + pos + len) {
				ended = 1;   /* the zeros, or a write cut short before them */
				break;
			}
			if (nl == NULL)
				break;
			if (check_prefix(buf + pos, len, idx, l->prev) != 0) {
				snprintf(err, errlen, "%s: record %" PRIu64 " (line %" PRIu64 ") does "
				    "not continue the chain (expected {\"seq\":%" PRIu64 ",\"prev\":<leaf "
				    "hash of record %" PRIu64 ">}): the log was altered; run `boltseal "
				    "audit verify`", l->path, idx, idx + 1, idx, idx == 0 ? 0 : idx - 1);
				rc = BS_ERR_MISMATCH;
				goto out;
			}
			merkle_leaf_hash((const uint8_t *)buf + pos, len, leaf);
			if (offs_push(l, base + pos) != 0 || merkle_tree_append(l->tree, leaf) != 0) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			memcpy(l->prev, leaf, 32);
			pos += len + 1;
		}
		memmove(buf, buf + pos, have - pos);
		base += pos;
		have -= pos;
		if (ended)
			break;
	}
	if (nonzero_end(l->rfd, base, buf, cap, &nz_end) != 0 || fstat(l->rfd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
		goto out;
	}
	l->end = base;
	l->alloc = (uint64_t)st.st_size;
	l->scanned = 1;
	*torn_off = base;
	*torn_len = nz_end - base;
	*torn_zeros = ended;
	rc = 0;
out:
	free(buf);
	return rc;
}

int
audit_log_open(const char *dir, struct event_base *base, const struct audit_log_opts *o,
    struct audit_log **out, char *err, size_t errlen)
{
	struct audit_log *l;
	uint64_t torn_off = 0, torn_len = 0;
	int rc = BS_ERR_IO, torn_zeros = 0;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return BS_ERR_NOMEM;
	l->fd = l->rfd = -1;
	l->opts = *o;
	l->reserve = o->reserve > 0 ? o->reserve : AUDIT_RESERVE_DEFAULT;
	l->chunk = o->prealloc_chunk > 0 ? o->prealloc_chunk : AUDIT_PREALLOC_DEFAULT;
	l->q_tail = &l->q_head;
	l->done_tail = &l->done_head;
	atomic_store(&l->healthy, 1);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	pthread_cond_init(&l->sync_cond, NULL);
	if ((l->tree = merkle_tree_new()) == NULL) {
		rc = BS_ERR_NOMEM;
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	snprintf(l->path, sizeof(l->path), "%s/audit.jsonl", dir);
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0 || (l->rfd = open(l->path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", l->path, strerror(errno));
		goto fail;
	}
	if ((rc = scan_file(l, &torn_off, &torn_len, &torn_zeros, err, errlen)) != 0)
		goto fail;
	if (torn_len > 0) {
		struct audit_record in;
		char reason[256];
		struct arec *rr;

		/* a write that never completed (crash): cut it, then say so */
		if (ftruncate(l->fd, (off_t)torn_off) != 0 || fsync(l->fd) != 0) {
			snprintf(err, errlen, "cannot repair the torn end of %s: %s", l->path,
			    strerror(errno));
			rc = BS_ERR_IO;
			goto fail;
		}
		l->alloc = torn_off;
		memset(&in, 0, sizeof(in));
		if (torn_zeros)
			snprintf(reason, sizeof(reason), "torn last write removed: %" PRIu64 " bytes "
			    "among the preallocated zeros at offset %" PRIu64, torn_len, torn_off);
		else
			snprintf(reason, sizeof(reason), "torn last record removed: %" PRIu64 " bytes "
			    "without a newline at offset %" PRIu64, torn_len, torn_off);
		in.type = AUDIT_RECOVERY;
		in.key_version = -1;
		in.result = "OK";
		in.reason = reason;
		in.event = "torn_tail_repaired";
		if ((rr = arec_new(&in)) == NULL) {
			rc = BS_ERR_NOMEM;
			goto fail;
		}
		rc = write_records(l, rr);
		arec_free(rr);
		if (rc != 0) {
			snprintf(err, errlen, "cannot write the recovery record to %s: %s", l->path,
			    strerror(errno));
			rc = BS_ERR_IO;
			goto fail;
		}
		bs_log(BS_LOG_WARN, "audit log had a torn last record; removed and recorded", "path",
		    l->path, "reason", reason, NULL);
	}
	l->grown_at = merkle_tree_size(l->tree);
	l->done_ev = event_new(base, -1, 0, done_cb, l);
	if (l->done_ev == NULL) {
		rc = BS_ERR_NOMEM;
		goto fail;
	}
	if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
		snprintf(err, errlen, "cannot start the audit writer thread");
		rc = BS_ERR_INTERNAL;
		goto fail;
	}
	l->thread_started = 1;
	*out = l;
	return 0;
fail:
	audit_log_close(l);
	return rc;
}

void
audit_log_close(struct audit_log *l)
{
	struct arec *r, *next;

	if (l == NULL)
		return;
	if (l->thread_started) {
		pthread_mutex_lock(&l->mu);
		l->stopping = 1;
		pthread_cond_signal(&l->cond);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	/* whatever is still withheld could not be written before stopping */
	for (r = l->retry; r != NULL; r = next) {
		next = r->next;
		notify_locked(l, r, BS_ERR_UNAVAILABLE);
		if (next == NULL)
			bs_log(BS_LOG_ERROR, "audit records could not be written before stopping",
			    "path", l->path, NULL);
		arec_free(r);
	}
	for (r = l->q_head; r != NULL; r = next) {
		next = r->next;
		notify_locked(l, r, BS_ERR_UNAVAILABLE);
		arec_free(r);
	}
	if (l->done_ev != NULL) {
		run_done(l);
		event_free(l->done_ev);
	}
	/* a log closed in order is its records alone: the zeros go */
	if (l->fd >= 0 && l->scanned && l->alloc > l->end &&
	    (ftruncate(l->fd, (off_t)l->end) != 0 || fsync(l->fd) != 0))
		bs_log(BS_LOG_WARN, "cannot cut the preallocated zeros off the audit log", "path",
		    l->path, "error", strerror(errno), NULL);
	if (l->fd >= 0)
		close(l->fd);
	if (l->rfd >= 0)
		close(l->rfd);
	merkle_tree_free(l->tree);
	free(l->offs);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cond);
	pthread_cond_destroy(&l->sync_cond);
	free(l);
}

void
audit_log_count_dropped(struct audit_log *l, uint64_t n)
{
	pthread_mutex_lock(&l->mu);
	l->dropped += n;
	pthread_mutex_unlock(&l->mu);
}

int
audit_log_append(struct audit_log *l, const struct audit_record *in, audit_done_fn done, void *arg)
{
	struct arec *r;
	struct notice *nt;

	pthread_mutex_lock(&l->mu);
	if (l->nqueued + l->nheld >= l->opts.queue_max) {
		l->dropped++;
		l->refused_total++;
		pthread_mutex_unlock(&l->mu);
		return BS_ERR_QUEUE_FULL;
	}
	pthread_mutex_unlock(&l->mu);
	if ((r = arec_new(in)) == NULL)
		return BS_ERR_NOMEM;
	if ((nt = calloc(1, sizeof(*nt))) == NULL) {
		arec_free(r);
		return BS_ERR_NOMEM;
	}
	nt->done = done;
	nt->arg = arg;
	r->notice = nt;
	pthread_mutex_lock(&l->mu);
	*l->q_tail = r;
	l->q_tail = &r->next;
	l->nqueued++;
	pthread_mutex_unlock(&l->mu);
	/* after the unlock: a writer woken under the lock would block on it at once */
	pthread_cond_signal(&l->cond);
	return 0;
}

/* Puts r at the end of the queue in a place reserved before (lock held). */
static void
enqueue_reserved_locked(struct audit_log *l, struct arec *r)
{
	*l->q_tail = r;
	l->q_tail = &r->next;
	l->nqueued++;
	l->nheld--;
	pthread_cond_signal(&l->cond);
}

int
audit_log_reserve(struct audit_log *l, struct audit_slot **out)
{
	struct audit_slot *s;
	int rc = 0;

	if (!atomic_load(&l->healthy))
		return BS_ERR_UNAVAILABLE;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->nt = calloc(1, sizeof(*s->nt))) == NULL) {
		free(s);
		return BS_ERR_NOMEM;
	}
	pthread_mutex_lock(&l->mu);
	if (l->stopping)
		rc = BS_ERR_UNAVAILABLE;
	else if (l->nqueued + l->nheld >= l->opts.queue_max + l->reserve)
		rc = BS_ERR_QUEUE_FULL;
	else
		l->nheld++;
	if (rc == BS_ERR_QUEUE_FULL)
		l->refused_total++;
	pthread_mutex_unlock(&l->mu);
	if (rc != 0) {
		free(s->nt);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void
audit_log_release(struct audit_log *l, struct audit_slot *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->nheld--;
	pthread_mutex_unlock(&l->mu);
	free(s->nt);
	free(s);
}

int
audit_log_commit_reserved(struct audit_log *l, struct audit_slot *s, const struct audit_record *in,
    audit_done_fn done, void *arg)
{
	struct arec *r;

	if ((r = arec_new(in)) == NULL) {
		audit_log_release(l, s);
		return BS_ERR_NOMEM;
	}
	if (done != NULL) {
		s->nt->done = done;
		s->nt->arg = arg;
		r->notice = s->nt;
		s->nt = NULL;
	}
	pthread_mutex_lock(&l->mu);
	enqueue_reserved_locked(l, r);
	pthread_mutex_unlock(&l->mu);
	free(s->nt);
	free(s);
	return 0;
}

int
audit_log_write_wait(struct audit_log *l, const struct audit_record *in)
{
	struct sync_wait w = { 0, 0 };
	struct audit_slot *s;
	struct arec *r;
	int rc;

	if ((rc = audit_log_reserve(l, &s)) != 0)
		return rc;
	if ((r = arec_new(in)) == NULL) {
		audit_log_release(l, s);
		return BS_ERR_NOMEM;
	}
	s->nt->sync = &w;
	r->notice = s->nt;
	free(s);
	pthread_mutex_lock(&l->mu);
	enqueue_reserved_locked(l, r);
	while (!w.done)
		pthread_cond_wait(&l->sync_cond, &l->mu);
	pthread_mutex_unlock(&l->mu);
	return w.rc;
}

void
audit_log_stats(const struct audit_log *l, struct audit_log_stats *st)
{
	struct audit_log *m = (struct audit_log *)(uintptr_t)l;

	pthread_mutex_lock(&m->mu);
	st->sync = m->sync_hist;
	st->lag = m->lag_hist;
	st->refused = m->refused_total;
	pthread_mutex_unlock(&m->mu);
}

int
audit_log_healthy(const struct audit_log *l)
{
	return atomic_load(&((struct audit_log *)l)->healthy);
}

uint64_t
audit_log_size(const struct audit_log *l)
{
	struct audit_log *m = (struct audit_log *)l;
	uint64_t n;

	pthread_mutex_lock(&m->mu);
	n = merkle_tree_size(m->tree);
	pthread_mutex_unlock(&m->mu);
	return n;
}

int
audit_log_root(const struct audit_log *l, uint64_t size, uint8_t root[MERKLE_HASH_LEN])
{
	struct audit_log *m = (struct audit_log *)l;
	int rc;

	pthread_mutex_lock(&m->mu);
	rc = merkle_tree_root(m->tree, size, root);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int
audit_log_leaf(const struct audit_log *l, uint64_t index, uint8_t leaf[MERKLE_HASH_LEN])
{
	struct audit_log *m = (struct audit_log *)l;
	int rc;

	pthread_mutex_lock(&m->mu);
	rc = merkle_tree_leaf(m->tree, index, leaf);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int
audit_log_inclusion(const struct audit_log *l, uint64_t index, uint64_t size,
    uint8_t proof[][MERKLE_HASH_LEN], size_t *nproof)
{
	struct audit_log *m = (struct audit_log *)l;
	int rc;

	pthread_mutex_lock(&m->mu);
	rc = merkle_tree_inclusion_proof(m->tree, index, size, proof, nproof);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int
audit_log_consistency(const struct audit_log *l, uint64_t size1, uint64_t size2,
    uint8_t proof[][MERKLE_HASH_LEN], size_t *nproof)
{
	struct audit_log *m = (struct audit_log *)l;
	int rc;

	pthread_mutex_lock(&m->mu);
	rc = merkle_tree_consistency_proof(m->tree, size1, size2, proof, nproof);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

/* Offset just past the newline of durable record i (lock held). */
static uint64_t
record_end(const struct audit_log *l, uint64_t i, uint64_t size)
{
	return i + 1 < size ? l->offs[i + 1] : l->end;
}

int
audit_log_read(struct audit_log *l, uint64_t start, uint64_t count, size_t max_bytes,
    int (*fn)(void *, uint64_t, const uint8_t *, size_t), void *arg, uint64_t *nread)
{
	uint64_t size, from, to, i;
	uint8_t *buf = NULL;
	size_t len, pos;
	int rc = 0;

	if (count == 0) {
		*nread = 0;
		return 0;
	}
	pthread_mutex_lock(&l->mu);
	size = merkle_tree_size(l->tree);
	if (start >= size) {
		pthread_mutex_unlock(&l->mu);
		return BS_ERR_NOT_FOUND;
	}
	if (count > size - start)
		count = size - start;
	from = l->offs[start];
	/* as many records as fit in max_bytes, at least one */
	for (i = 1; i < count && record_end(l, start + i, size) - from <= max_bytes; i++)
		;
	count = i;
	to = record_end(l, start + count - 1, size);
	pthread_mutex_unlock(&l->mu);

	len = (size_t)(to - from);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return BS_ERR_NOMEM;
	for (pos = 0; pos < len;) {
		ssize_t nr = pread(l->rfd, buf + pos, len - pos, (off_t)(from + pos));

		if (nr < 0 && errno == EINTR)
			continue;
		if (nr <= 0) {
			rc = BS_ERR_IO;
			goto out;
		}
		pos += (size_t)nr;
	}
	for (pos = 0, i = 0; i < count; i++) {
		uint8_t *nl = memchr(buf + pos, '\n', len - pos);

		if (nl == NULL) {
			rc = BS_ERR_IO;
			goto out;
		}
		if ((rc = fn(arg, start + i, buf + pos, (size_t)(nl - (buf + pos)))) != 0)
			goto out;
		pos = (size_t)(nl - buf) + 1;
	}
	*nread = count;
out:
	free(buf);
	return rc;
}

const char *
audit_log_path(const struct audit_log *l)
{
	return l->path;
}
