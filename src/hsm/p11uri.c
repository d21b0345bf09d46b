/*
 * p11uri.c - the PKCS#11 URI (RFC 7512) that names boltseal's token, read
 * with p11-kit's parser (p11_kit_uri_parse), with the strict checks the
 * daemon needs on top:
 *   - "pkcs11:" then ';'-separated NAME=VALUE path attributes, each name
 *     once, no empty name or value, values of RFC 7512 pk11-pchar and
 *     %XX escapes only (p11-kit also skips white space and takes any
 *     byte; a configuration value must mean exactly what it says);
 *   - no query or fragment: a PIN (pin-value, pin-source) or a module
 *     name can never ride in the URI;
 *   - only token attributes (token, manufacturer, serial, model) and
 *     slot-id are used; object, id and type are accepted and ignored;
 *     anything p11-kit does not recognise, and library or slot
 *     description attributes, are refused;
 *   - slot-id is plain decimal of at most 18 digits;
 *   - bounded: 1024 bytes in all, 64 decoded bytes per value.
 * Pure string code, no I/O.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <p11-kit/uri.h>

#include "hsm/p11uri.h"

#define P11URI_MAX_LEN 1024
#define P11URI_SCHEME "pkcs11:"
#define P11URI_SCHEME_LEN (sizeof(P11URI_SCHEME) - 1)
#define P11URI_MAX_VALUE 64  /* decoded bytes; larger than any field we keep */

/* The attributes a token URI may carry (the rest is refused). */
static const char *const allowed[] = {
	"token", "manufacturer", "serial", "model", "slot-id", "object", "id", "type", NULL,
};

/* RFC 7512 pk11-pchar outside '%': unreserved, ":[]@!$'()*+,=" and "&". */
static int
is_path_char(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~:[]@!$'()*+,=&", c) != NULL;
}

static int
hexdigit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * The strict shape of the path (after "pkcs11:"): 0 if every attribute is
 * NAME=VALUE as described at the top, names allowed and unique, values of
 * at most P11URI_MAX_VALUE decoded bytes without an escaped NUL.
 */
static int
check_path(const char *p)
{
	int seen[sizeof(allowed) / sizeof(allowed[0])] = { 0 };

	if (*p == '\0')
		return 0;
	for (;;) {
		const char *eq = strchr(p, '='), *end = strchr(p, ';');
		size_t nlen, k, n = 0;

		if (end == NULL)
			end = p + strlen(p);
		if (eq == NULL || eq > end || eq == p || eq + 1 == end)
			return -1;
		nlen = (size_t)(eq - p);
		for (k = 0; allowed[k] != NULL; k++)
			if (strlen(allowed[k]) == nlen && memcmp(allowed[k], p, nlen) == 0)
				break;
		if (allowed[k] == NULL || seen[k]++)
			return -1;
		for (const char *v = eq + 1; v < end; v++, n++) {
			if (*v == '%') {
				if (end - v < 3 || !hexdigit(v[1]) || !hexdigit(v[2]) ||
				    (v[1] == '0' && v[2] == '0'))
					return -1;
				v += 2;
			} else if (!is_path_char(*v)) {
				return -1;
			}
		}
		if (n > P11URI_MAX_VALUE)
			return -1;
		/* slot-id: plain decimal that fits a long (p11-kit saturates an overflow to
		 * CK_SLOT_ID -1, which would read as "any slot") */
		if (strcmp(allowed[k], "slot-id") == 0 && (end - eq - 1 > 18 ||
		    strspn(eq + 1, "0123456789") < (size_t)(end - eq - 1)))
			return -1;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/* Copies a space-padded CK_*_INFO field into dst (unpadded); -1 if it does not fit. */
static int
unpad(char *dst, size_t cap, const unsigned char *fld, size_t len)
{
	while (len > 0 && fld[len - 1] == ' ')
		len--;
	if (len + 1 > cap)
		return -1;
	memcpy(dst, fld, len);
	dst[len] = '\0';
	return 0;
}

int
p11uri_parse(const char *uri, struct p11uri *out)
{
	char buf[P11URI_MAX_LEN + 1];
	struct p11uri u;
	P11KitUri *pu = NULL;
	CK_TOKEN_INFO *ti;
	CK_SLOT_ID sid;
	size_t len;
	int rc = BS_ERR_INVALID;

	if (uri == NULL || out == NULL || (len = strlen(uri)) > P11URI_MAX_LEN ||
	    len < P11URI_SCHEME_LEN || strncasecmp(uri, P11URI_SCHEME, P11URI_SCHEME_LEN) != 0 ||
	    strpbrk(uri, "?#") != NULL || check_path(uri + P11URI_SCHEME_LEN) != 0)
		return BS_ERR_INVALID;
	/* the scheme is case-insensitive (RFC 3986); p11-kit wants it in lower case */
	memcpy(buf, P11URI_SCHEME, P11URI_SCHEME_LEN);
	memcpy(buf + P11URI_SCHEME_LEN, uri + P11URI_SCHEME_LEN, len - P11URI_SCHEME_LEN + 1);
	if ((pu = p11_kit_uri_new()) == NULL)
		return BS_ERR_NOMEM;
	if (p11_kit_uri_parse(buf, P11_KIT_URI_FOR_ANY, pu) != P11_KIT_URI_OK ||
	    p11_kit_uri_any_unrecognized(pu))
		goto out;
	memset(&u, 0, sizeof(u));
	ti = p11_kit_uri_get_token_info(pu);
	if (unpad(u.token, sizeof(u.token), ti->label, sizeof(ti->label)) != 0 ||
	    unpad(u.manufacturer, sizeof(u.manufacturer), ti->manufacturerID,
	    sizeof(ti->manufacturerID)) != 0 ||
	    unpad(u.serial, sizeof(u.serial), ti->serialNumber, sizeof(ti->serialNumber)) != 0 ||
	    unpad(u.model, sizeof(u.model), ti->model, sizeof(ti->model)) != 0)
		goto out;
	sid = p11_kit_uri_get_slot_id(pu);
	if (sid != (CK_SLOT_ID)-1 && sid > (CK_SLOT_ID)LONG_MAX)
		goto out;
	u.slot_id = sid == (CK_SLOT_ID)-1 ? -1 : (long)sid;
	*out = u;
	rc = 0;
out:
	p11_kit_uri_free(pu);
	return rc;
}

int
p11uri_field_matches(const char *want, const unsigned char *fld, size_t fld_len)
{
	size_t wlen, i;

	if (want == NULL || want[0] == '\0')
		return 1;
	if (fld == NULL)
		return 0;
	wlen = strnlen(want, fld_len + 1);
	if (wlen > fld_len || memcmp(fld, want, wlen) != 0)
		return 0;
	/* The rest is padding: blanks per PKCS#11, NULs from some tools. */
	for (i = wlen; i < fld_len; i++)
		if (fld[i] != ' ' && fld[i] != '\0')
			return 0;
	return 1;
}
