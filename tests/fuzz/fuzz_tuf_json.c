/*
 * fuzz_tuf_json.c - fuzz target of the strict TUF metadata parser and the
 * canonical encoders (src/formats/tuf_json.c). Checks what it can: an
 * accepted document's aktualizr-dialect form is itself valid strict JSON
 * that parses back to the same OLPC and aktualizr forms (the encoders are
 * deterministic and lose nothing), and the OLPC form is never shorter
 * than the aktualizr one (it escapes a subset of the same bytes). The
 * Uptane checks (src/formats/uptane.c) run on every accepted document and
 * may only accept it or refuse it with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/tuf_json.h"
#include "formats/uptane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], *olpc = NULL, *akt = NULL, *olpc2 = NULL, *akt2 = NULL;
	char keyid[TUF_KEYID_HEX_LEN + 1];
	size_t olen, alen, olen2, alen2;
	json_t *v = NULL, *v2 = NULL;
	int rc;

	rc = tuf_json_parse(data, size, 1 << 20, &v, err, sizeof(err));
	if (rc != 0) {
		if (v != NULL || (rc != BS_ERR_INVALID && rc != BS_ERR_NOMEM && rc != BS_ERR_TOO_BIG))
			abort();
		return 0;
	}
	if (tuf_json_canonical(v, TUF_CANON_OLPC, &olpc, &olen) != 0 ||
	    tuf_json_canonical(v, TUF_CANON_AKTUALIZR, &akt, &alen) != 0)
		abort();
	if (olen > alen)
		abort();
	if (tuf_json_parse((const uint8_t *)akt, alen, 1 << 22, &v2, err, sizeof(err)) != 0)
		abort();
	if (tuf_json_canonical(v2, TUF_CANON_OLPC, &olpc2, &olen2) != 0 ||
	    tuf_json_canonical(v2, TUF_CANON_AKTUALIZR, &akt2, &alen2) != 0)
		abort();
	if (olen != olen2 || memcmp(olpc, olpc2, olen) != 0 || alen != alen2 ||
	    memcmp(akt, akt2, alen) != 0)
		abort();
	if (json_is_object(v) && tuf_json_keyid(v, keyid) != 0)
		abort();
	err[0] = '\0';
	rc = uptane_director_targets_check(v, "VIN-1", err, sizeof(err));
	if ((rc != 0 && rc != BS_ERR_INVALID && rc != BS_ERR_NOMEM) ||
	    (rc == BS_ERR_INVALID && err[0] == '\0'))
		abort();
	err[0] = '\0';
	rc = uptane_image_targets_check(v, err, sizeof(err));
	if ((rc != 0 && rc != BS_ERR_INVALID) || (rc == BS_ERR_INVALID && err[0] == '\0'))
		abort();
	free(olpc);
	free(akt);
	free(olpc2);
	free(akt2);
	json_decref(v);
	json_decref(v2);
	return 0;
}
