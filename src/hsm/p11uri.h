/*
 * p11uri.h - parse the subset of PKCS#11 URIs (RFC 7512) boltseal uses to
 * name a token: "pkcs11:token=boltseal-dev;manufacturer=...;serial=...;
 * model=...", with percent-encoded values. Pure, no I/O.
 */
#ifndef BS_P11URI_H
#define BS_P11URI_H

#include <stddef.h>

#include "common/bs_error.h"

struct p11uri {
	char token[33];         /* CK_TOKEN_INFO.label, unpadded; "" = any */
	char manufacturer[33];  /* "" = any */
	char serial[17];        /* "" = any */
	char model[17];         /* "" = any */
	long slot_id;           /* -1 = any ("slot-id" attribute) */
};

/*
 * Parses uri (NUL-terminated). Unknown path attributes are rejected
 * (BS_ERR_INVALID) except "object", "id" and "type", which are ignored
 * here; query attributes (after '?') are rejected, so a PIN can never be
 * carried in a URI. Returns 0 or BS_ERR_INVALID.
 */
int p11uri_parse(const char *uri, struct p11uri *out) BS_WUR;

/*
 * 1 if the space-padded CK_TOKEN_INFO/CK_SLOT_INFO field fld (length fld_len)
 * matches want ("" matches anything), else 0.
 */
int p11uri_field_matches(const char *want, const unsigned char *fld, size_t fld_len);

#endif
