/*
 * reconcile.c - the key catalog checked against the token at start-up:
 * every catalog version needs exactly one private key object with its
 * CKA_ID, and every private key labelled CATALOG_LABEL_PREFIX on the token
 * needs a catalog version. Any discrepancy is reported, one per line, and
 * the daemon refuses to start (see catalog.h, catalog_reconcile).
 *
 * The token is listed once (hsm_list_key_objects) and every version looked
 * up in that list: a search per version would read every object of the
 * token each time (SoftHSM), minutes at 10,000 keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytebuf.h"
#include "common/hex.h"
#include "hsm/hsm.h"
#include "keys/catalog.h"


static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, HSM_KEY_ID_LEN);
}

static int
id_is_zero(const uint8_t *id)
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++)
		acc |= id[i];
	return acc == 0;
}

/* How many of the n sorted ids equal id. */
static size_t
id_count(const uint8_t *ids, size_t n, const uint8_t *id)
{
	size_t lo = 0, hi = n, first, c = 0;

	while (lo < hi) {   /* the first id >= id */
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ids + mid * HSM_KEY_ID_LEN, id, HSM_KEY_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (first = lo; first + c < n && memcmp(ids + (first + c) * HSM_KEY_ID_LEN, id,
	    HSM_KEY_ID_LEN) == 0; c++)
		;
	return c;
}

int
catalog_reconcile(struct catalog *c, struct hsm_session *s, char **report)
{
	struct hsm_key_object *objs = NULL;
	size_t n = 0;
	int rc;

	if (c == NULL || report == NULL)
		return BS_ERR_INVALID;
	if ((rc = hsm_list_key_objects(s, CATALOG_LABEL_PREFIX, &objs, &n)) != 0)
		return rc == BS_ERR_NOMEM ? rc : BS_ERR_HSM;
	rc = catalog_reconcile_listed(c, objs, n, report);
	free(objs);
	return rc;
}

int
catalog_reconcile_listed(struct catalog *c, const struct hsm_key_object *objs, size_t nobjs,
    char **report)
{
	struct bytebuf b = BYTEBUF_INIT;
	uint8_t *known = NULL, *ids = NULL;
	size_t nknown = 0, nids = 0, i, j, nkeys = catalog_count(c), len, found;
	const struct catalog_key *k;
	const struct catalog_version *v;
	char hex[BS_HEX_LEN(HSM_KEY_ID_LEN)];
	int rc, ndiff = 0;

	if (c == NULL || report == NULL || (objs == NULL && nobjs > 0))
		return BS_ERR_INVALID;
	*report = NULL;
	if (nobjs > (SIZE_MAX - 1) / HSM_KEY_ID_LEN ||
	    (ids = malloc(nobjs * HSM_KEY_ID_LEN + 1)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < nobjs; i++)
		memcpy(ids + i * HSM_KEY_ID_LEN, objs[i].id, HSM_KEY_ID_LEN);
	nids = nobjs;
	if (nids > 0)
		qsort(ids, nids, HSM_KEY_ID_LEN, id_cmp);
	for (i = 0; i < nkeys; i++)
		nknown += catalog_at(c, i)->nversions;
	if (nknown > 0) {
		if (nknown > SIZE_MAX / HSM_KEY_ID_LEN ||
		    (known = malloc(nknown * HSM_KEY_ID_LEN)) == NULL) {
			rc = BS_ERR_NOMEM;
			goto out;
		}
	}

	nknown = 0;
	for (i = 0; i < nkeys; i++) {
		k = catalog_at(c, i);
		for (j = 0; j < k->nversions; j++) {
			v = &k->versions[j];
			memcpy(known + nknown * HSM_KEY_ID_LEN, v->hsm_id, HSM_KEY_ID_LEN);
			nknown++;
			/*
			 * A destroyed version's objects are gone by design, or still
			 * there after a crash between the catalog's change and the
			 * destruction (the key service destroys them again at start).
			 */
			if (v->state == BS_KEY_DESTROYED)
				continue;
			found = id_count(ids, nids, v->hsm_id);
			if (found == 1)
				continue;   /* present; its handle is the key side's business */
			bs_hex_encode(v->hsm_id, HSM_KEY_ID_LEN, hex);
			if (found == 0)
				bytebuf_printf(&b, "key '%s' version %u: private key object CKA_ID=%s "
				    "missing from token\n", k->name, (unsigned)v->version, hex);
			else
				bytebuf_printf(&b, "key '%s' version %u: more than one private key object "
				    "CKA_ID=%s on token\n", k->name, (unsigned)v->version, hex);
			ndiff++;
		}
	}
	if (nknown > 0)
		qsort(known, nknown, HSM_KEY_ID_LEN, id_cmp);

	for (i = 0; i < nids; i++) {
		const uint8_t *id = ids + i * HSM_KEY_ID_LEN;

		if (nknown > 0 && bsearch(id, known, nknown, HSM_KEY_ID_LEN, id_cmp) != NULL)
			continue;
		if (id_is_zero(id)) {
			bytebuf_printf(&b, "token object with a CKA_ID that is not %d bytes (label "
			    CATALOG_LABEL_PREFIX "...) is not in the catalog\n", HSM_KEY_ID_LEN);
		} else {
			bs_hex_encode(id, HSM_KEY_ID_LEN, hex);
			bytebuf_printf(&b, "token object CKA_ID=%s (label " CATALOG_LABEL_PREFIX
			    "...) is not in the catalog\n", hex);
		}
		ndiff++;
	}

	if ((rc = bytebuf_error(&b)) != 0)
		goto out;
	if (ndiff > 0) {
		*report = (char *)bytebuf_steal(&b, &len);
		rc = BS_ERR_MISMATCH;
		goto out;
	}
	*report = NULL;
	rc = 0;
out:
	bytebuf_free(&b);
	free(known);
	free(ids);
	return rc;
}
