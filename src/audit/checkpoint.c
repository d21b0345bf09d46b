/*
 * checkpoint.c - the checkpoint store and the checkpointer (see
 * checkpoint.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "common/fileio.h"
#include "common/log.h"
#include "formats/signed_note.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"

#define NOTE_SUFFIX ".note"
#define SIZE_DIGITS 20

/* ---- store ----------------------------------------------------------------- */

int
checkpoint_store_write(const char *dir, uint64_t size, const uint8_t *note, size_t len)
{
	char name[64];

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return BS_ERR_IO;
	snprintf(name, sizeof(name), "%0*" PRIu64 NOTE_SUFFIX, SIZE_DIGITS, size);
	return bs_file_replace(dir, name, note, len, 0600) == 0 ? 0 : BS_ERR_IO;
}

/* 1 and *size if name is "<20 digits>.note". */
static int
parse_name(const char *name, uint64_t *size)
{
	uint64_t v = 0;
	size_t i;

	if (strlen(name) != SIZE_DIGITS + sizeof(NOTE_SUFFIX) - 1 ||
	    strcmp(name + SIZE_DIGITS, NOTE_SUFFIX) != 0)
		return 0;
	for (i = 0; i < SIZE_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*size = v;
	return 1;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
checkpoint_store_list(const char *dir, uint64_t **sizes, size_t *n)
{
	DIR *d;
	struct dirent *de;
	uint64_t *v = NULL, *nv;
	size_t cnt = 0, cap = 0;

	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT) {
			*sizes = NULL;
			*n = 0;
			return 0;
		}
		return BS_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t size;

		if (!parse_name(de->d_name, &size))
			continue;
		if (cnt == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return BS_ERR_NOMEM;
			}
			v = nv;
		}
		v[cnt++] = size;
	}
	closedir(d);
	if (cnt > 0)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*sizes = v;
	*n = cnt;
	return 0;
}

int
checkpoint_store_read(const char *dir, uint64_t size, uint8_t **note, size_t *len)
{
	char path[4096], *text = NULL;
	size_t have = 0;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%0*" PRIu64 NOTE_SUFFIX, dir, SIZE_DIGITS, size);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? BS_ERR_NOT_FOUND : BS_ERR_IO;
	rc = bs_read_fd_capped(fd, CHECKPOINT_NOTE_MAX, &text, &have);
	close(fd);
	if (rc != 0)
		return rc;
	*note = (uint8_t *)text;
	*len = have;
	return 0;
}

int
checkpoint_ed25519_raw(const uint8_t *spki, size_t spki_len, uint8_t pub[32])
{
	/* SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING (32 bytes) } */
	static const uint8_t prefix[12] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
		0x70, 0x03, 0x21, 0x00 };

	if (spki_len != sizeof(prefix) + 32 || memcmp(spki, prefix, sizeof(prefix)) != 0)
		return BS_ERR_INVALID;
	memcpy(pub, spki + sizeof(prefix), 32);
	return 0;
}

/* ---- checkpointer ---------------------------------------------------------- */

struct checkpointer {
	struct event_base *base;
	struct keyclient *keys;
	struct workq *work;
	struct catalog *cat;
	struct audit_log *log;
	char dir[4096];
	char origin[256];
	char key_name[CATALOG_NAME_MAX + 1];
	struct event *timer;
	int busy;                      /* a signing job is in flight */
	struct sign_job *inflight;     /* that job, freed by checkpointer_free if never answered */
	void (*flushed)(void *);       /* checkpointer_flush() waiting */
	void *flushed_arg;
	int again;                     /* a poke arrived while busy */
	int stopped;
	uint64_t latest_size;
	int have_latest;
	uint8_t *latest;               /* note bytes */
	size_t latest_len;
	char latest_vkey[512];
	char vkey[512];
};

struct sign_job {
	struct workq_job job;          /* first: formatting and storing the note */
	struct checkpointer *cp;
	uint32_t version;              /* of the audit key */
	uint8_t hsm_id[HSM_KEY_ID_LEN];    /* its CKA_ID, as the catalog records it */
	uint8_t sig[NOTE_ED25519_SIG_LEN];
	uint8_t key_id[NOTE_KEY_ID_LEN];
	uint64_t size;
	char vkey[512];
	char body[CHECKPOINT_NOTE_MAX];
	size_t body_len;
	uint8_t note[CHECKPOINT_NOTE_MAX];
	size_t note_len;
	int rc;
	const char *what;              /* which step failed */
};

/* Work queue: the signed note, stored atomically. */
static void
store_work(struct workq_job *job, void *ctx)
{
	struct sign_job *j = (struct sign_job *)job;
	char line[1024];
	size_t ll;

	(void)ctx;
	j->rc = note_signature_line(j->cp->origin, j->key_id, j->sig, line, sizeof(line));
	ll = strlen(line);
	if (j->rc != 0 || j->body_len + 1 + ll > sizeof(j->note)) {
		j->rc = j->rc != 0 ? j->rc : BS_ERR_TOO_BIG;
		j->what = "format the note";
		return;
	}
	memcpy(j->note, j->body, j->body_len);
	j->note[j->body_len] = '\n';
	memcpy(j->note + j->body_len + 1, line, ll);
	j->note_len = j->body_len + 1 + ll;
	j->rc = checkpoint_store_write(j->cp->dir, j->size, j->note, j->note_len);
	if (j->rc != 0)
		j->what = "store";
}

static void sign_done(struct workq_job *job);

/* Loop: the key door signed the body (or not); the note is stored on the work queue. */
static void
signed_cb(void *arg, struct keyop_answer *a)
{
	struct sign_job *j = arg;
	int rc = a->rc != 0 ? a->rc : a->sigs[0].rc;

	if (rc == 0 && a->sigs[0].sig_len != NOTE_ED25519_SIG_LEN)
		rc = BS_ERR_HSM;
	if (rc != 0) {
		j->rc = rc;
		j->what = "sign";
		sign_done(&j->job);
		return;
	}
	memcpy(j->sig, a->sigs[0].sig, NOTE_ED25519_SIG_LEN);
	j->job.work = store_work;
	j->job.done = sign_done;
	if ((j->rc = workq_submit(j->cp->work, &j->job)) != 0) {
		j->what = "queue the store";
		sign_done(&j->job);
	}
}

static void cp_start(struct checkpointer *cp);

static void
sign_done(struct workq_job *job)
{
	struct sign_job *j = (struct sign_job *)job;
	struct checkpointer *cp = j->cp;
	char sz[24];

	cp->busy = 0;
	cp->inflight = NULL;
	snprintf(sz, sizeof(sz), "%" PRIu64, j->size);
	if (j->rc == 0) {
		uint8_t *copy = malloc(j->note_len);

		if (copy != NULL) {
			memcpy(copy, j->note, j->note_len);
			free(cp->latest);
			cp->latest = copy;
			cp->latest_len = j->note_len;
			cp->latest_size = j->size;
			cp->have_latest = 1;
			snprintf(cp->latest_vkey, sizeof(cp->latest_vkey), "%s", j->vkey);
		}
		bs_log(BS_LOG_DEBUG, "audit checkpoint signed", "tree_size", sz, NULL);
	} else {
		bs_log(BS_LOG_ERROR, "cannot make an audit checkpoint", "tree_size", sz, "step",
		    j->what != NULL ? j->what : "?", "error", bs_strerror(j->rc), NULL);
	}
	free(j);
	if ((cp->again || cp->flushed != NULL) && !cp->stopped) {
		cp->again = 0;
		cp_start(cp);
	}
	if (cp->flushed != NULL && !cp->busy) {
		void (*fn)(void *) = cp->flushed;

		cp->flushed = NULL;
		fn(cp->flushed_arg);
	}
}

/* Fills key fields of j from the catalog; 0 or an error. */
static int
key_for_job(struct checkpointer *cp, struct sign_job *j, char *err, size_t errlen)
{
	const struct catalog_key *k = catalog_find(cp->cat, cp->key_name);
	const struct catalog_version *v;
	uint8_t pub[32];

	if (k == NULL) {
		snprintf(err, errlen, "no key named '%s'", cp->key_name);
		return BS_ERR_NOT_FOUND;
	}
	if (k->purpose != BS_PURPOSE_AUDIT || k->alg != BS_ALG_ED25519) {
		snprintf(err, errlen, "key '%s' must have purpose audit and algorithm ed25519",
		    cp->key_name);
		return BS_ERR_INVALID;
	}
	if ((v = catalog_key_primary(k)) == NULL ||
	    checkpoint_ed25519_raw(v->spki, v->spki_len, pub) != 0) {
		snprintf(err, errlen, "key '%s' has no usable version", cp->key_name);
		return BS_ERR_INVALID;
	}
	if (note_key_id_ed25519(cp->origin, pub, j->key_id) != 0 ||
	    note_vkey_format(cp->origin, pub, j->vkey, sizeof(j->vkey)) != 0) {
		snprintf(err, errlen, "audit_origin '%s' is not a valid note key name", cp->origin);
		return BS_ERR_INVALID;
	}
	j->version = v->version;
	memcpy(j->hsm_id, v->hsm_id, HSM_KEY_ID_LEN);
	snprintf(cp->vkey, sizeof(cp->vkey), "%s", j->vkey);
	return 0;
}

static int extends_latest(struct checkpointer *cp, uint64_t size, char *err, size_t errlen);

static void
cp_start(struct checkpointer *cp)
{
	struct sign_job *j;
	uint8_t root[MERKLE_HASH_LEN];
	char err[256];
	uint64_t size;

	if (cp->stopped)
		return;
	if (cp->busy) {
		cp->again = 1;
		return;
	}
	size = audit_log_size(cp->log);
	if (size == 0 || (cp->have_latest && size <= cp->latest_size))
		return;
	if (cp->have_latest && extends_latest(cp, size, err, sizeof(err)) != 0) {
		/* never signed: a second history of the audit log (a damaged tree in memory) */
		bs_log(BS_LOG_ERROR, "refusing to sign an audit checkpoint", "error", err, NULL);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->cp = cp;
	j->size = size;
	if (key_for_job(cp, j, err, sizeof(err)) != 0 ||
	    audit_log_root(cp->log, size, root) != 0 ||
	    checkpoint_body_format(cp->origin, size, root, j->body, sizeof(j->body),
	    &j->body_len) != 0) {
		bs_log(BS_LOG_ERROR, "cannot prepare an audit checkpoint", "error", err, NULL);
		free(j);
		return;
	}
	{
		struct keyop_input in = { 0, (const uint8_t *)j->body, j->body_len };
		struct keyop_request r;

		memset(&r, 0, sizeof(r));
		r.type = KEYOP_SIGN;
		snprintf(r.key.name, sizeof(r.key.name), "%s", cp->key_name);
		r.key.version = j->version;
		memcpy(r.id, j->hsm_id, KEYOPS_ID_LEN);
		r.alg = BS_ALG_ED25519;
		r.inputs = &in;
		r.ninputs = 1;
		if (keyclient_submit(cp->keys, &r, signed_cb, j, NULL) != 0) {
			/* busy HSM: the timer tries again */
			free(j);
			return;
		}
	}
	cp->busy = 1;
	cp->inflight = j;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cp_start(arg);
}

void
checkpointer_poke(struct checkpointer *cp)
{
	cp_start(cp);
}

void
checkpointer_flush(struct checkpointer *cp, void (*fn)(void *arg), void *arg)
{
	cp->flushed = fn;
	cp->flushed_arg = arg;
	cp_start(cp);
	if (!cp->busy) {
		/* nothing to sign, or it could not be queued */
		cp->flushed = NULL;
		fn(arg);
	}
}

/* The latest stored checkpoint's size and root, from its note. 0 or BS_ERR_MISMATCH. */
static int
latest_checkpoint(const struct checkpointer *cp, uint64_t *size, uint8_t root[MERKLE_HASH_LEN],
    char *err, size_t errlen)
{
	char origin[256];
	size_t text_len = cp->latest_len;
	const uint8_t *sep = NULL;

	/* the body ends at the last blank line */
	for (size_t i = 0; i + 1 < cp->latest_len; i++)
		if (cp->latest[i] == '\n' && cp->latest[i + 1] == '\n')
			sep = cp->latest + i + 1;
	if (sep != NULL)
		text_len = (size_t)(sep - cp->latest);
	if (checkpoint_body_parse(cp->latest, text_len, origin, sizeof(origin), size, root) != 0 ||
	    *size != cp->latest_size) {
		snprintf(err, errlen, "checkpoint %" PRIu64 " in %s is malformed", cp->latest_size,
		    cp->dir);
		return BS_ERR_MISMATCH;
	}
	return 0;
}

/*
 * The checkpoint of size about to be signed extends the latest one signed,
 * judged by the rule every log's checkpoints are (merkle_judge_history:
 * CheckpointService's), with the log's own consistency proof. 0 or
 * BS_ERR_MISMATCH with err.
 */
static int
extends_latest(struct checkpointer *cp, uint64_t size, char *err, size_t errlen)
{
	uint8_t old[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN], proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	uint64_t old_size;
	size_t nproof = 0;

	if (latest_checkpoint(cp, &old_size, old, err, errlen) != 0)
		return BS_ERR_MISMATCH;
	if (audit_log_root(cp->log, size, root) != 0 ||
	    audit_log_consistency(cp->log, old_size, size, proof, &nproof) != 0 ||
	    merkle_judge_history(old_size, old, size, root, (const uint8_t (*)[MERKLE_HASH_LEN])proof,
	    nproof) != MERKLE_HISTORY_EXTENDS) {
		snprintf(err, errlen, "the audit log at %" PRIu64 " records is not proved to extend "
		    "checkpoint %" PRIu64, size, old_size);
		return BS_ERR_MISMATCH;
	}
	return 0;
}

/*
 * The latest stored checkpoint must describe a prefix of the log: its size
 * at most the log's, its root the log's root at that size.
 */
static int
check_against_log(struct checkpointer *cp, char *err, size_t errlen)
{
	uint8_t root[MERKLE_HASH_LEN], have[MERKLE_HASH_LEN];
	uint64_t size, logsize = audit_log_size(cp->log);

	if (latest_checkpoint(cp, &size, root, err, errlen) != 0)
		return BS_ERR_MISMATCH;
	if (size > logsize) {
		snprintf(err, errlen, "the audit log has %" PRIu64 " records but checkpoint %" PRIu64
		    " covers %" PRIu64 ": records were removed", logsize, size, size);
		return BS_ERR_MISMATCH;
	}
	if (audit_log_root(cp->log, size, have) != 0 || memcmp(have, root, sizeof(root)) != 0) {
		snprintf(err, errlen, "the audit log does not match checkpoint %" PRIu64 ": records "
		    "were altered; run `boltseal audit verify`", size);
		return BS_ERR_MISMATCH;
	}
	return 0;
}

int
checkpointer_new(struct event_base *base, struct keyclient *keys, struct workq *work,
    struct catalog *cat,
    struct audit_log *log, const char *dir, const char *origin, const char *key_name,
    unsigned interval_ms, struct checkpointer **out, char *err, size_t errlen)
{
	struct checkpointer *cp;
	struct sign_job probe;
	struct timeval tv;
	uint64_t *sizes = NULL;
	size_t n = 0;
	int rc;

	if ((cp = calloc(1, sizeof(*cp))) == NULL)
		return BS_ERR_NOMEM;
	cp->base = base;
	cp->keys = keys;
	cp->work = work;
	cp->cat = cat;
	cp->log = log;
	snprintf(cp->dir, sizeof(cp->dir), "%s", dir);
	snprintf(cp->origin, sizeof(cp->origin), "%s", origin);
	snprintf(cp->key_name, sizeof(cp->key_name), "%s", key_name);
	memset(&probe, 0, sizeof(probe));
	if ((rc = key_for_job(cp, &probe, err, errlen)) != 0)
		goto fail;
	if ((rc = checkpoint_store_list(dir, &sizes, &n)) != 0) {
		snprintf(err, errlen, "cannot list checkpoints in %s", dir);
		goto fail;
	}
	if (n > 0) {
		rc = checkpoint_store_read(dir, sizes[n - 1], &cp->latest, &cp->latest_len);
		if (rc != 0) {
			snprintf(err, errlen, "cannot read the latest checkpoint in %s", dir);
			goto fail;
		}
		cp->latest_size = sizes[n - 1];
		cp->have_latest = 1;
		if ((rc = check_against_log(cp, err, errlen)) != 0)
			goto fail;
		/* the signer of a stored note is not re-derived: it is the current key or older */
		snprintf(cp->latest_vkey, sizeof(cp->latest_vkey), "%s", cp->vkey);
	}
	free(sizes);
	sizes = NULL;
	cp->timer = event_new(base, -1, EV_PERSIST, timer_cb, cp);
	tv.tv_sec = interval_ms / 1000;
	tv.tv_usec = (suseconds_t)(interval_ms % 1000) * 1000;
	if (cp->timer == NULL || event_add(cp->timer, &tv) != 0) {
		rc = BS_ERR_NOMEM;
		goto fail;
	}
	*out = cp;
	return 0;
fail:
	free(sizes);
	checkpointer_free(cp);
	return rc;
}

int
checkpointer_latest(const struct checkpointer *cp, const uint8_t **note, size_t *len,
    uint64_t *size, const char **vkey)
{
	if (!cp->have_latest)
		return BS_ERR_NOT_FOUND;
	*note = cp->latest;
	*len = cp->latest_len;
	*size = cp->latest_size;
	*vkey = cp->latest_vkey;
	return 0;
}

const char *
checkpointer_vkey(const struct checkpointer *cp)
{
	return cp->vkey;
}

void
checkpointer_stop(struct checkpointer *cp)
{
	if (cp == NULL)
		return;
	cp->stopped = 1;
	if (cp->timer != NULL)
		event_del(cp->timer);
}

void
checkpointer_free(struct checkpointer *cp)
{
	if (cp == NULL)
		return;
	cp->stopped = 1;
	if (cp->timer != NULL)
		event_free(cp->timer);
	/* a signing job the key door dropped unanswered (it is gone by now) */
	free(cp->inflight);
	free(cp->latest);
	free(cp);
}
