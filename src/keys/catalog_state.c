/*
 * catalog_state.c - the lifecycle of keys and versions (catalog.h,
 * "lifecycle"): the transition rules, one store row per key that holds the
 * states which are not "enabled", and their mirror in memory.
 *
 * The row (namespace "keys", id "state/NAME") is text, one line per target
 * that is not plainly enabled, in version order:
 *     key STATE DESTROY_AT
 *     VERSION STATE DESTROY_AT
 * STATE is a bs_key_state_name, DESTROY_AT decimal unix seconds (0 when it
 * has none). Every change is a compare-and-set of the row, so the row's
 * version orders the snapshots the event loop mirrors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytebuf.h"
#include "keys/catalog.h"
#include "keys/catalog_int.h"
#include "store/store.h"

#define STATE_ROW_PREFIX "state/"
#define STATE_ROW_ID_MAX (sizeof(STATE_ROW_PREFIX) + CATALOG_NAME_MAX)

int
catalog_version_usable(const struct catalog_key *k, const struct catalog_version *v)
{
	return k != NULL && v != NULL && k->state == BS_KEY_ENABLED && v->state == BS_KEY_ENABLED;
}

void
catalog_states_clear(struct catalog_states *s)
{
	if (s == NULL)
		return;
	free(s->state);
	free(s->destroy_at);
	memset(s, 0, sizeof(*s));
}

/* s for n versions, all enabled, key enabled. */
static int
states_init(struct catalog_states *s, uint32_t n)
{
	memset(s, 0, sizeof(*s));
	s->key_state = BS_KEY_ENABLED;
	s->nversions = n;
	s->state = calloc(n > 0 ? n : 1, sizeof(*s->state));
	s->destroy_at = calloc(n > 0 ? n : 1, sizeof(*s->destroy_at));
	if (s->state == NULL || s->destroy_at == NULL) {
		catalog_states_clear(s);
		return BS_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		s->state[i] = BS_KEY_ENABLED;
	return 0;
}

/* One target's change; NULL when it applies (no-op included), else why not. */
static const char *
step(enum bs_key_state *st, int64_t *at, enum catalog_change what, int64_t when, int is_key)
{
	if (*st == BS_KEY_DESTROYED)
		return is_key ? "the key is destroyed" : "the version is destroyed";
	switch (what) {
	case CATALOG_DISABLE:
	case CATALOG_ENABLE:
		if (*st == BS_KEY_PENDING_DESTRUCTION)
			return is_key ? "the key is pending destruction: cancel it first" :
			    "the version is pending destruction: cancel it first";
		*st = what == CATALOG_DISABLE ? BS_KEY_DISABLED : BS_KEY_ENABLED;
		return NULL;
	case CATALOG_SCHEDULE_DESTRUCTION:
		if (*st == BS_KEY_PENDING_DESTRUCTION)
			return is_key ? "the key's destruction is already scheduled" :
			    "the version's destruction is already scheduled";
		*st = BS_KEY_PENDING_DESTRUCTION;
		*at = when;
		return NULL;
	case CATALOG_CANCEL_DESTRUCTION:
		if (*st != BS_KEY_PENDING_DESTRUCTION)
			return is_key ? "the key is not pending destruction" :
			    "the version is not pending destruction";
		*st = BS_KEY_DISABLED;
		*at = 0;
		return NULL;
	case CATALOG_DESTROYED:
		/* a version is also due when its key is (transition() checks that first) */
		if (*st != BS_KEY_PENDING_DESTRUCTION || *at > when)
			return "not due for destruction";
		*st = BS_KEY_DESTROYED;
		*at = when;
		return NULL;
	default:
		return "unknown change";
	}
}

/* Applies the change to s in place; NULL or why not (s then partly changed). */
static const char *
transition(struct catalog_states *s, uint32_t version, enum catalog_change what, int64_t when)
{
	if (version > s->nversions)
		return "no such version";
	if (version != 0) {
		if (s->key_state == BS_KEY_DESTROYED)
			return "the key is destroyed";
		if (what != CATALOG_DESTROYED && s->key_state == BS_KEY_PENDING_DESTRUCTION)
			return "the key is pending destruction: cancel it first";
		if (what == CATALOG_DESTROYED && s->key_state == BS_KEY_PENDING_DESTRUCTION &&
		    s->key_destroy_at <= when && s->state[version - 1] != BS_KEY_DESTROYED) {
			/* the key is due: each of its versions goes, whatever its own state */
			s->state[version - 1] = BS_KEY_DESTROYED;
			s->destroy_at[version - 1] = when;
			return NULL;
		}
		return step(&s->state[version - 1], &s->destroy_at[version - 1], what, when, 0);
	}
	if (what == CATALOG_DESTROYED) {
		for (uint32_t i = 0; i < s->nversions; i++)
			if (s->state[i] != BS_KEY_DESTROYED)
				return "a version is not destroyed yet";
	}
	/* the key's own state only: its versions keep theirs (a cancel restores them as they were) */
	return step(&s->key_state, &s->key_destroy_at, what, when, 1);
}

/* The states of k in memory. */
static int
states_of_key(const struct catalog_key *k, struct catalog_states *s)
{
	uint32_t n = k->nversions > 0 ? k->versions[k->nversions - 1].version : 0;
	int rc;

	if ((rc = states_init(s, n)) != 0)
		return rc;
	s->gen = k->state_gen;
	s->key_state = k->state;
	s->key_destroy_at = k->destroy_at;
	for (size_t i = 0; i < k->nversions; i++) {
		s->state[k->versions[i].version - 1] = k->versions[i].state;
		s->destroy_at[k->versions[i].version - 1] = k->versions[i].destroy_at;
	}
	return 0;
}

const char *
catalog_change_refusal(const struct catalog_key *k, uint32_t version, enum catalog_change what,
    int64_t when)
{
	struct catalog_states s;
	const char *why;

	if (k == NULL)
		return "no such key";
	if (version != 0 && catalog_key_version(k, version) == NULL)
		return "no such version";
	if (states_of_key(k, &s) != 0)
		return "out of memory";
	why = transition(&s, version, what, when);
	catalog_states_clear(&s);
	return why;
}

/* ---- the row ------------------------------------------------------------- */

static void
row_id(const char *name, char out[STATE_ROW_ID_MAX])
{
	snprintf(out, STATE_ROW_ID_MAX, "%s%s", STATE_ROW_PREFIX, name);
}

static int
row_format(const struct catalog_states *s, struct bytebuf *b)
{
	if (s->key_state != BS_KEY_ENABLED || s->key_destroy_at != 0)
		bytebuf_printf(b, "key %s %" PRId64 "\n", bs_key_state_name(s->key_state),
		    s->key_destroy_at);
	for (uint32_t i = 0; i < s->nversions; i++)
		if (s->state[i] != BS_KEY_ENABLED || s->destroy_at[i] != 0)
			bytebuf_printf(b, "%" PRIu32 " %s %" PRId64 "\n", i + 1,
			    bs_key_state_name(s->state[i]), s->destroy_at[i]);
	return bytebuf_error(b) != 0 ? BS_ERR_NOMEM : 0;
}

/* One decimal number of the row, whole. */
static int
parse_num(const char *tok, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (tok == NULL || tok[0] < '0' || tok[0] > '9')
		return -1;
	errno = 0;
	v = strtoll(tok, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Parses the row (len bytes) into s, which holds the key's versions
 * already (all enabled). A line naming a version s does not have is
 * malformed. 0 or BS_ERR_IO.
 */
static int
row_parse(const uint8_t *data, size_t len, struct catalog_states *s)
{
	char line[128], *tok[4], *save = NULL;
	size_t at = 0, n, ntok;
	int64_t num, when;
	enum bs_key_state st;

	while (at < len) {
		const uint8_t *nl = memchr(data + at, '\n', len - at);

		if (nl == NULL)
			return BS_ERR_IO;
		n = (size_t)(nl - (data + at));
		if (n == 0 || n >= sizeof(line) || memchr(data + at, '\0', n) != NULL)
			return BS_ERR_IO;
		memcpy(line, data + at, n);
		line[n] = '\0';
		at += n + 1;
		ntok = 0;
		for (char *t = strtok_r(line, " ", &save); t != NULL && ntok < 4;
		    t = strtok_r(NULL, " ", &save))
			tok[ntok++] = t;
		if (ntok != 3)
			return BS_ERR_IO;
		if ((st = bs_key_state_from_name(tok[1])) == BS_KEY_STATE_NONE ||
		    parse_num(tok[2], INT64_MAX, &when) != 0)
			return BS_ERR_IO;
		if (strcmp(tok[0], "key") == 0) {
			s->key_state = st;
			s->key_destroy_at = when;
		} else if (parse_num(tok[0], UINT32_MAX, &num) == 0 && num >= 1 &&
		    num <= s->nversions) {
			s->state[num - 1] = st;
			s->destroy_at[num - 1] = when;
		} else {
			return BS_ERR_IO;
		}
	}
	return 0;
}

/* Reads key name's states through tx into s (versions 1..nversions). */
static int
row_read(struct store_txn *tx, const char *name, uint32_t nversions, struct catalog_states *s)
{
	char id[STATE_ROW_ID_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t ver = 0;
	int rc;

	if ((rc = states_init(s, nversions)) != 0)
		return rc;
	row_id(name, id);
	rc = store_row_get(tx, STORE_NS_KEYS, id, &data, &len, &ver);
	if (rc == BS_ERR_NOT_FOUND)
		return 0;
	if (rc == 0 && (rc = row_parse(data, len, s)) == 0)
		s->gen = ver;
	free(data);
	if (rc != 0)
		catalog_states_clear(s);
	return rc;
}

int
catalog_db_change_state(struct catalog *c, const char *name, uint32_t version,
    enum catalog_change what, int64_t when, struct catalog_states *out)
{
	char id[STATE_ROW_ID_MAX];
	struct catalog_states s;
	struct store_txn *tx = NULL;
	struct bytebuf b = BYTEBUF_INIT;
	uint32_t latest = 0;
	uint64_t newv = 0;
	size_t blen = 0;
	int rc, changed;

	if (c == NULL || out == NULL || !catalog_name_valid(name))
		return BS_ERR_INVALID;
	memset(&s, 0, sizeof(s));
	if ((rc = store_begin(c->st, &tx)) != 0)
		return rc;
	if ((rc = store_key_version_latest(tx, STORE_NS_KEYS, name, &latest)) != 0)
		goto out;
	if (version > latest) {
		rc = BS_ERR_NOT_FOUND;
		goto out;
	}
	if ((rc = row_read(tx, name, latest, &s)) != 0)
		goto out;
	{
		struct catalog_states before;
		const char *why;

		/* a copy to tell a change from a no-op */
		if ((rc = states_init(&before, latest)) != 0)
			goto out;
		before.key_state = s.key_state;
		before.key_destroy_at = s.key_destroy_at;
		memcpy(before.state, s.state, latest * sizeof(*s.state));
		memcpy(before.destroy_at, s.destroy_at, latest * sizeof(*s.destroy_at));
		why = transition(&s, version, what, when);
		changed = before.key_state != s.key_state || before.key_destroy_at !=
		    s.key_destroy_at || memcmp(before.state, s.state, latest * sizeof(*s.state)) != 0 ||
		    memcmp(before.destroy_at, s.destroy_at, latest * sizeof(*s.destroy_at)) != 0;
		catalog_states_clear(&before);
		if (why != NULL) {
			rc = BS_ERR_PRECONDITION;
			goto out;
		}
	}
	if (changed) {
		if ((rc = row_format(&s, &b)) != 0)
			goto out;
		row_id(name, id);
		blen = b.len;
		rc = store_row_put(tx, STORE_NS_KEYS, id, s.gen, blen > 0 ? b.p : NULL, blen,
		    &newv);
		if (rc != 0)
			goto out;
		s.gen = newv;
		rc = store_commit(tx);
		tx = NULL;
		if (rc != 0)
			goto out;
	}
	*out = s;
	memset(&s, 0, sizeof(s));
out:
	if (tx != NULL)
		store_rollback(tx);
	bytebuf_free(&b);
	catalog_states_clear(&s);
	return rc;
}

void
catalog_mem_set_states(struct catalog *c, const char *name, const struct catalog_states *s)
{
	struct catalog_key *k = catalog_find_mut(c, name);

	if (k == NULL || s == NULL || s->gen <= k->state_gen)
		return;
	k->state_gen = s->gen;
	k->state = s->key_state;
	k->destroy_at = s->key_destroy_at;
	for (size_t i = 0; i < k->nversions; i++) {
		uint32_t v = k->versions[i].version;

		if (v >= 1 && v <= s->nversions) {
			k->versions[i].state = s->state[v - 1];
			k->versions[i].destroy_at = s->destroy_at[v - 1];
		}
	}
}

/* ---- loading ------------------------------------------------------------- */

struct load_states {
	struct catalog *c;
	const char *where;
	char *err;
	size_t errlen;
	char last[STORE_ID_MAX + 1];
	size_t seen;
};

static int
load_row(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct load_states *l = arg;
	const char *name = id + strlen(STATE_ROW_PREFIX);
	struct catalog_key *k = catalog_find_mut(l->c, name);
	struct catalog_states s;
	uint32_t n;
	int rc;

	snprintf(l->last, sizeof(l->last), "%s", id);
	l->seen++;
	if (k == NULL) {
		snprintf(l->err, l->errlen, "catalog %s: lifecycle row for unknown key '%s'", l->where,
		    name);
		return BS_ERR_IO;
	}
	n = k->nversions > 0 ? k->versions[k->nversions - 1].version : 0;
	if ((rc = states_init(&s, n)) != 0)
		return rc;
	if ((rc = row_parse(data, len, &s)) != 0) {
		snprintf(l->err, l->errlen, "catalog %s: malformed lifecycle row of key '%s'",
		    l->where, name);
	} else {
		s.gen = version;
		catalog_mem_set_states(l->c, name, &s);
	}
	catalog_states_clear(&s);
	return rc;
}

int
catalog_load_states(struct catalog *c, struct store_txn *tx, const char *where, char *err,
    size_t errlen)
{
	struct load_states l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.c = c;
	l.where = where;
	l.err = err;
	l.errlen = errlen;
	do {
		l.seen = 0;
		rc = store_row_foreach(tx, STORE_NS_KEYS, STATE_ROW_PREFIX, l.last, STORE_LIST_MAX,
		    load_row, &l);
	} while (rc == 0 && l.seen == STORE_LIST_MAX);
	return rc;
}
