/*
 * tuf_meta.c - TUF metadata rules for the OTA service (roles, key objects,
 * checks on a role's "signed" part, the version order, the signed
 * envelope); see tuf_meta.h.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "common/utctime.h"
#include "formats/tuf_meta.h"

/* ---- roles ---------------------------------------------------------------- */

static const char *const role_names[] = { "root", "targets", "snapshot", "timestamp" };
static const char *const role_types_akt[] = { "Root", "Targets", "Snapshot", "Timestamp" };

int
tuf_role_parse(const char *name, enum tuf_role *out)
{
	size_t i, n;

	for (i = 0; i < 4; i++) {
		if (strcmp(name, role_names[i]) == 0) {
			*out = (enum tuf_role)i;
			return 0;
		}
	}
	n = strlen(name);
	if (n == 0 || n > 255 || name[0] == '.' || name[0] == '/' || strstr(name, "..") != NULL ||
	    strstr(name, "//") != NULL)
		return BS_ERR_INVALID;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
			return BS_ERR_INVALID;
	}
	*out = TUF_ROLE_DELEGATED;
	return 0;
}

const char *
tuf_role_type(enum tuf_role r, enum tuf_canon dialect)
{
	if (r == TUF_ROLE_DELEGATED)
		r = TUF_ROLE_TARGETS;
	return dialect == TUF_CANON_AKTUALIZR ? role_types_akt[r] : role_names[r];
}

/* ---- key objects ---------------------------------------------------------- */

/* The PEM ("-----BEGIN PUBLIC KEY-----\n...") of pk, malloc'd. */
static char *
spki_pem(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(b, pk) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	return out;
}

int
tuf_key_object(const uint8_t *spki, size_t len, enum tuf_canon dialect, json_t **key,
    char keyid[TUF_KEYID_HEX_LEN + 1], char *err, size_t errlen)
{
	const uint8_t *p = spki;
	EVP_PKEY *pk;
	uint8_t raw[32], md[SHA256_DIGEST_LENGTH];
	size_t rawlen = sizeof(raw);
	char group[32], hex[BS_HEX_LEN(32)], *pem = NULL;
	const char *keytype, *scheme, *public;
	json_t *k = NULL;
	int rc = BS_ERR_NOMEM;

	*key = NULL;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (pk == NULL || p != spki + len) {
		snprintf(err, errlen, "not a DER SubjectPublicKeyInfo");
		EVP_PKEY_free(pk);
		return BS_ERR_INVALID;
	}
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 || rawlen != 32) {
			snprintf(err, errlen, "cannot read the Ed25519 public key");
			rc = BS_ERR_CRYPTO;
			goto out;
		}
		bs_hex_encode(raw, 32, hex);
		keytype = dialect == TUF_CANON_AKTUALIZR ? "ED25519" : "ed25519";
		scheme = "ed25519";
		public = hex;
	} else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	    NULL) == 1 && strcmp(group, "prime256v1") == 0) {
		if ((pem = spki_pem(pk)) == NULL)
			goto out;
		keytype = dialect == TUF_CANON_AKTUALIZR ? "ECPRIME256V1" : "ecdsa";
		scheme = "ecdsa-sha2-nistp256";
		public = pem;
	} else {
		snprintf(err, errlen, "TUF keys here are Ed25519 or ECDSA P-256");
		rc = BS_ERR_UNSUPPORTED;
		goto out;
	}
	k = json_pack("{s:s, s:{s:s}}", "keytype", keytype, "keyval", "public", public);
	if (k == NULL)
		goto out;
	if (dialect != TUF_CANON_AKTUALIZR && json_object_set_new(k, "scheme",
	    json_string(scheme)) != 0)
		goto out;
	if (dialect == TUF_CANON_AKTUALIZR) {
		SHA256(spki, len, md);
		bs_hex_encode(md, sizeof(md), keyid);
	} else if ((rc = tuf_json_keyid(k, keyid)) != 0) {
		goto out;
	}
	*key = k;
	k = NULL;
	rc = 0;
out:
	json_decref(k);
	free(pem);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- checks ----------------------------------------------------------------- */

/* "1.<digits>.<digits>" */
static int
spec_version_ok(const char *v)
{
	const char *p = v;
	int parts = 0;

	if (strncmp(p, "1.", 2) != 0)
		return 0;
	p += 2;
	for (parts = 0; parts < 2; parts++) {
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (parts == 0 && *p++ != '.')
			return 0;
	}
	return *p == '\0';
}

int
tuf_meta_check(const json_t *sp, enum tuf_role role, enum tuf_canon dialect, time_t now,
    int64_t max_lifetime, struct tuf_meta_info *info, char *err, size_t errlen)
{
	const char *want = tuf_role_type(role, dialect), *s;
	json_t *v;
	time_t exp;

	if (!json_is_object(sp)) {
		snprintf(err, errlen, "the signed part must be a JSON object");
		return BS_ERR_INVALID;
	}
	v = json_object_get(sp, "_type");
	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
		snprintf(err, errlen, "_type must be \"%s\" for this role%s%s%s", want,
		    json_is_string(v) ? " (got \"" : "", json_is_string(v) ? json_string_value(v) : "",
		    json_is_string(v) ? "\")" : "");
		return BS_ERR_INVALID;
	}
	if (dialect != TUF_CANON_AKTUALIZR) {
		v = json_object_get(sp, "spec_version");
		if (!json_is_string(v) || !spec_version_ok(json_string_value(v))) {
			snprintf(err, errlen, "spec_version must be \"1.<minor>.<patch>\"");
			return BS_ERR_INVALID;
		}
	}
	v = json_object_get(sp, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		snprintf(err, errlen, "version must be an integer of at least 1");
		return BS_ERR_INVALID;
	}
	info->version = (int64_t)json_integer_value(v);
	v = json_object_get(sp, "expires");
	if (!json_is_string(v) || bs_utc_parse(s = json_string_value(v), &exp) != 0) {
		snprintf(err, errlen, "expires must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
		return BS_ERR_INVALID;
	}
	if (exp <= now) {
		snprintf(err, errlen, "expires %s is not in the future", s);
		return BS_ERR_INVALID;
	}
	if ((int64_t)(exp - now) > max_lifetime) {
		snprintf(err, errlen, "expires %s is more than %" PRId64 " s away (the role's maximum "
		    "lifetime)", s, max_lifetime);
		return BS_ERR_INVALID;
	}
	info->expires = exp;
	return 0;
}

/* ---- version order ---------------------------------------------------------- */

enum tuf_order
tuf_meta_order(const struct tuf_high_water *hw, int64_t version, const uint8_t sha256[32])
{
	if (!hw->present || version > hw->version)
		return TUF_ORDER_NEW;
	if (version < hw->version)
		return TUF_ORDER_ROLLBACK;
	return memcmp(sha256, hw->sha256, 32) == 0 ? TUF_ORDER_SAME : TUF_ORDER_FORK;
}

/* The "version" of meta[name], or -1 when it is missing or not a positive integer. */
static int64_t
listed_version(const json_t *meta, const char *name)
{
	json_t *v = json_object_get(json_object_get(meta, name), "version");

	return json_is_integer(v) && json_integer_value(v) >= 1 ? (int64_t)json_integer_value(v) : -1;
}

int
tuf_meta_listed_versions(const json_t *prev, const json_t *next, enum tuf_role role,
    char *err, size_t errlen)
{
	const char *what = role == TUF_ROLE_TIMESTAMP ? "timestamp" : "snapshot", *name;
	json_t *pm = json_object_get(prev, "meta"), *nm = json_object_get(next, "meta"), *e;
	int64_t pv, nv;

	if (!json_is_object(nm)) {
		snprintf(err, errlen, "%s must have a \"meta\" object", what);
		return BS_ERR_INVALID;
	}
	json_object_foreach(nm, name, e) {
		if (listed_version(nm, name) < 0) {
			snprintf(err, errlen, "%s lists %.200s without a version of at least 1", what,
			    name);
			return BS_ERR_INVALID;
		}
	}
	if (!json_is_object(pm))
		return 0;   /* nothing signed before */
	json_object_foreach(pm, name, e) {
		pv = listed_version(pm, name);
		nv = listed_version(nm, name);
		if (nv < 0) {
			snprintf(err, errlen, "%s would no longer list %.200s (listed before at version "
			    "%" PRId64 ")", what, name, pv);
			return BS_ERR_INVALID;
		}
		if (nv < pv) {
			snprintf(err, errlen, "%s would list %.200s version %" PRId64 ", lower than "
			    "version %" PRId64 " listed before", what, name, nv, pv);
			return BS_ERR_INVALID;
		}
	}
	return 0;
}

/* ---- envelope ---------------------------------------------------------------- */

int
tuf_meta_envelope(const json_t *sp, const struct tuf_signature *sigs, size_t nsigs,
    enum tuf_canon dialect, char **out, size_t *len)
{
	json_t *env = NULL, *arr = NULL, *s;
	char *enc = NULL;
	size_t i, j;
	int rc = BS_ERR_NOMEM;

	*out = NULL;
	*len = 0;
	if (!json_is_object(sp) || nsigs == 0)
		return BS_ERR_INVALID;
	for (i = 0; i < nsigs; i++)
		for (j = i + 1; j < nsigs; j++)
			if (strcmp(sigs[i].keyid, sigs[j].keyid) == 0)
				return BS_ERR_INVALID;
	if ((arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < nsigs; i++) {
		if (sigs[i].sig_len == 0 || sigs[i].sig_len > 1024) {
			rc = BS_ERR_INVALID;
			goto out;
		}
		if ((enc = malloc(2 * sigs[i].sig_len + 4)) == NULL)
			goto out;
		if (dialect == TUF_CANON_AKTUALIZR) {
			if (sigs[i].method == NULL) {
				rc = BS_ERR_INVALID;
				goto out;
			}
			EVP_EncodeBlock((unsigned char *)enc, sigs[i].sig, (int)sigs[i].sig_len);
			s = json_pack("{s:s, s:s, s:s}", "keyid", sigs[i].keyid, "method",
			    sigs[i].method, "sig", enc);
		} else {
			bs_hex_encode(sigs[i].sig, sigs[i].sig_len, enc);
			s = json_pack("{s:s, s:s}", "keyid", sigs[i].keyid, "sig", enc);
		}
		free(enc);
		enc = NULL;
		if (s == NULL || json_array_append_new(arr, s) != 0)
			goto out;
	}
	env = json_pack("{s:o, s:O}", "signatures", arr, "signed", sp);
	arr = NULL;   /* stolen by "o", even on failure */
	if (env == NULL)
		goto out;
	/*
	 * The file itself is ordinary JSON (sorted keys, no white space, standard
	 * escaping), whatever the dialect: OLPC's raw control characters (a PEM
	 * key's newlines) are what gets signed, but no JSON parser would read them.
	 */
	rc = tuf_json_canonical(env, TUF_CANON_AKTUALIZR, out, len);
out:
	free(enc);
	json_decref(arr);
	json_decref(env);
	return rc;
}
