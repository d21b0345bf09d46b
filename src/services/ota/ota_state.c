/*
 * ota_state.c - the OTA service's high-water marks in the store; see
 * ota_state.h. A row is "OTA1" || version (8 bytes, big-endian) || SHA-256
 * (32) || kept (1: the metadata follows, 0: it did not fit) || metadata.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/ota/ota_state.h"

#define MAGIC "OTA1"
#define HEAD_LEN (4 + 8 + 32 + 1)

static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

int
ota_mark_id(const char *repo, const char *role, const char *vehicle,
    char id[OTA_MARK_ID_MAX + 1])
{
	enum tuf_role r;
	int n;

	if (repo == NULL || role == NULL || !name_ok(repo) || tuf_role_parse(role, &r) != 0 ||
	    (vehicle != NULL && !name_ok(vehicle)))
		return BS_ERR_INVALID;
	n = snprintf(id, OTA_MARK_ID_MAX + 1, "mark/%s/%s%s%s", repo, role,
	    vehicle != NULL ? "@" : "", vehicle != NULL ? vehicle : "");
	return n > 0 && n <= OTA_MARK_ID_MAX ? 0 : BS_ERR_INVALID;
}

void
ota_mark_clear(struct ota_mark *m)
{
	free(m->metadata);
	memset(m, 0, sizeof(*m));
}

int
ota_mark_get(struct store_txn *tx, const char *id, struct ota_mark *m)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0, rowv = 0;
	int rc, i;

	memset(m, 0, sizeof(*m));
	rc = store_row_get(tx, OTA_STORE_NS, id, &data, &len, &rowv);
	if (rc == BS_ERR_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (len < HEAD_LEN || memcmp(data, MAGIC, 4) != 0 || data[HEAD_LEN - 1] > 1 ||
	    (data[HEAD_LEN - 1] == 0 && len != HEAD_LEN) ||
	    (data[HEAD_LEN - 1] == 1 && len == HEAD_LEN)) {
		free(data);
		return BS_ERR_INVALID;
	}
	for (i = 0; i < 8; i++)
		v = (v << 8) | data[4 + i];
	if (v < 1 || v > (uint64_t)INT64_MAX) {
		free(data);
		return BS_ERR_INVALID;
	}
	m->hw.present = 1;
	m->hw.version = (int64_t)v;
	memcpy(m->hw.sha256, data + 12, 32);
	m->row_version = rowv;
	if (data[HEAD_LEN - 1] == 1) {
		m->metadata_len = len - HEAD_LEN;
		if ((m->metadata = malloc(m->metadata_len)) == NULL) {
			free(data);
			memset(m, 0, sizeof(*m));
			return BS_ERR_NOMEM;
		}
		memcpy(m->metadata, data + HEAD_LEN, m->metadata_len);
	}
	free(data);
	return 0;
}

int
ota_mark_put(struct store_txn *tx, const char *id, const struct ota_mark *prev, int64_t version,
    const uint8_t sha256[32], const uint8_t *metadata, size_t len)
{
	size_t total = HEAD_LEN;
	uint8_t *row;
	int rc, i, keep = metadata != NULL && len > 0 && HEAD_LEN + len <= STORE_DATA_MAX;

	if (version < 1 || (prev->hw.present && version <= prev->hw.version))
		return BS_ERR_PRECONDITION;
	if (keep)
		total += len;
	if ((row = malloc(total)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(row, MAGIC, 4);
	for (i = 0; i < 8; i++)
		row[4 + i] = (uint8_t)((uint64_t)version >> (56 - 8 * i));
	memcpy(row + 12, sha256, 32);
	row[HEAD_LEN - 1] = (uint8_t)keep;
	if (keep)
		memcpy(row + HEAD_LEN, metadata, len);
	rc = store_row_put(tx, OTA_STORE_NS, id, prev->row_version, row, total, NULL);
	free(row);
	/* the row exists although prev saw none, or changed since: another signer won */
	if (rc == BS_ERR_EXISTS || rc == BS_ERR_NOT_FOUND)
		rc = BS_ERR_PRECONDITION;
	return rc;
}
