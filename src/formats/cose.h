/*
 * cose.h - COSE_Sign1 (RFC 9052 section 4.2) for signed vehicle commands:
 * the same command as the JWS token, as a CBOR Web Token claims set (RFC
 * 8392) signed once. libcbor underneath; pure: no I/O, no keys, no state.
 *
 * Everything boltseal writes is deterministic CBOR (RFC 8949 section
 * 4.2.1): integers and lengths in their shortest form, definite lengths
 * only, map keys sorted by their encoded bytes. The decoders accept only
 * that encoding, so a token has one byte form and what verifies is what
 * was signed:
 *
 *   token     = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr ])
 *   protected = bstr .cbor { 1: alg (int), ? 4: kid (bstr, not empty) }
 *   payload   = bstr .cbor { 1: iss, 2: sub, 3: aud, 4: exp, 5: nbf, 6: iat,
 *                            7: cti (bstr 16), "cmd": text, "seq": uint, "args": map }
 *   to be signed = [ "Signature1", protected, external_aad, payload ]
 *
 * The kid is protected and the unprotected header is always empty. No
 * detached payloads. The claims' limits are those of the JWS claims the
 * vehicle-side reader accepts (src/services/commands/commands.c): strings
 * valid UTF-8 without control characters (below 0x20, 0x7f), at most 64
 * members per map, nesting at most 16 with the claims map as level 1, keys
 * of at most 256 bytes, no real numbers.
 */
#ifndef BS_COSE_H
#define BS_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bs_error.h"

#define COSE_ALG_ES256 (-7)      /* RFC 9053: ECDSA P-256 SHA-256, signature r||s 64 bytes */
#define COSE_ALG_EDDSA (-8)
#define COSE_SIGN1_TAG 18
#define COSE_TOKEN_MAX 16384     /* the decoder refuses more (BS_ERR_TOO_BIG) */

#define COSE_CTI_LEN 16               /* the jti's 16 bytes */
#define COSE_CLAIM_TEXT_MAX 128       /* iss, sub, aud: 1..128 bytes */
#define COSE_CLAIM_CMD_MAX 64         /* cmd: 1..64 bytes */
#define COSE_CLAIM_TIME_MAX INT64_C(253402300799)   /* 9999-12-31T23:59:59Z */
#define COSE_ARGS_KEY_MAX 256         /* bytes of a key in args */
#define COSE_ARGS_MEMBERS_MAX 64      /* members of one map in args */
#define COSE_CLAIMS_DEPTH_MAX 16      /* nesting, the claims map is level 1, args 2 */

/* A command's claims. Strings are NUL-terminated UTF-8 (borrowed). */
struct cose_claims {
	const char *iss, *sub, *aud;
	int64_t iat, nbf, exp;
	uint8_t cti[COSE_CTI_LEN];  /* the jti's 16 bytes */
	uint64_t seq;
	const char *cmd;
	const json_t *args;         /* a JSON object: integers, strings, true, false, null, arrays, objects (no reals) */
};

/*
 * The protected header bytes: the deterministic CBOR of {1: alg, 4: kid}
 * (kid a bstr; with kid_len 0 the kid label is left out, kid may then be
 * NULL). *out is malloc'd, the caller free()s it. 0; BS_ERR_INVALID for a
 * NULL argument (kid with kid_len > 0, out, out_len); BS_ERR_TOO_BIG when
 * the header would be over COSE_TOKEN_MAX; BS_ERR_NOMEM. Outputs are set
 * only on success.
 */
int cose_protected_encode(int64_t alg, const uint8_t *kid, size_t kid_len, uint8_t **out,
    size_t *out_len) BS_WUR;

/*
 * The CWT claims set of c, deterministic CBOR: {1: iss, 2: sub, 3: aud,
 * 4: exp, 5: nbf, 6: iat, 7: cti (bstr 16), "cmd": text, "seq": uint,
 * "args": map}, map keys sorted by their encoded bytes (text keys of args
 * by length, then bytewise), integers in their shortest form, definite
 * lengths only. JSON integers become CBOR integers, strings text, true,
 * false and null the simple values, arrays arrays, objects maps. c is
 * checked against what cose_claims_decode accepts, so that nothing is
 * signed that a vehicle refuses: iss/sub/aud 1..128 bytes, cmd 1..64,
 * iat/nbf/exp 0..COSE_CLAIM_TIME_MAX, seq 1..INT64_MAX, args an object,
 * and the limits of the top of this file. *out is malloc'd, the caller
 * free()s it. 0; BS_ERR_INVALID (c outside those rules, a real number, a
 * NULL argument); BS_ERR_TOO_BIG when the claims would be over
 * COSE_TOKEN_MAX bytes; BS_ERR_NOMEM. Outputs are set only on success.
 */
int cose_claims_encode(const struct cose_claims *c, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * The to-be-signed bytes: the CBOR of ["Signature1", protected (bstr, the
 * exact bytes prot[0..prot_len)), external_aad (bstr, h'' when aad is
 * NULL), payload (bstr)]. Pointers may be NULL only with a length of 0.
 * *out is malloc'd, the caller free()s it. 0; BS_ERR_INVALID (a NULL
 * pointer with a length, out, out_len); BS_ERR_TOO_BIG if the lengths add
 * up past SIZE_MAX; BS_ERR_NOMEM. Outputs are set only on success.
 */
int cose_sig_structure(const uint8_t *prot, size_t prot_len, const uint8_t *aad, size_t aad_len,
    const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * The token: tag 18 ([protected bstr, {} (the empty unprotected map),
 * payload bstr, signature bstr]). The bytes are taken as they are
 * (prot is not parsed). Pointers may be NULL only with a length of 0.
 * *out is malloc'd, the caller free()s it. 0; BS_ERR_INVALID (a NULL
 * pointer with a length, out, out_len); BS_ERR_TOO_BIG when the token
 * would be over COSE_TOKEN_MAX bytes; BS_ERR_NOMEM. Outputs are set only
 * on success.
 */
int cose_sign1_encode(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len, uint8_t **out, size_t *out_len) BS_WUR;

/*
 * A decoded COSE_Sign1; every pointer a malloc'd copy, freed by
 * cose_sign1_free. prot, payload and sig are never NULL after a successful
 * decode (even when empty); kid is NULL (kid_len 0) when the header has
 * none.
 */
struct cose_sign1 {
	uint8_t *prot; size_t prot_len;          /* the protected header's exact bytes */
	int64_t alg;
	uint8_t *kid; size_t kid_len;
	uint8_t *payload; size_t payload_len;
	uint8_t *sig; size_t sig_len;
};

/*
 * Strict decoder of untrusted bytes in[0..len): exactly one item, nothing
 * after it; tag 18 required; an array of 4; protected a bstr holding a map
 * whose labels are only 1 (alg, an int in int64 range) and 4 (kid, a
 * bstr), alg present, no duplicate label, and re-encoding through
 * cose_protected_encode gives the same bytes (deterministic; so an empty
 * kid is refused); unprotected an empty map; payload a bstr (not nil: no
 * detached payloads); signature a bstr (of any length: the verifier checks
 * it). Definite lengths and shortest heads only, everywhere. The
 * signature is not verified. 0 with *out filled (the caller
 * cose_sign1_free()s it); BS_ERR_TOO_BIG when len > COSE_TOKEN_MAX;
 * BS_ERR_INVALID otherwise, or when in or out is NULL; BS_ERR_NOMEM. On
 * failure *out is all zero (when out is not NULL).
 */
int cose_sign1_decode(const uint8_t *in, size_t len, struct cose_sign1 *out) BS_WUR;

/*
 * The one CBOR item of untrusted in[0..len) as libcbor's item (the caller
 * cbor_decref()s it), after the strict walk described at the top of
 * cose.c: well-formed, exactly one item, definite lengths and shortest
 * heads, no declared size beyond the input, bounded nesting. (For other
 * deterministic-CBOR decoders: formats/tlm_batch.c.) 0, BS_ERR_INVALID,
 * BS_ERR_NOMEM.
 */
struct cbor_item_t;
int cose_cbor_load(const uint8_t *in, size_t len, struct cbor_item_t **out) BS_WUR;

/* Frees what cose_sign1_decode put in *s; NULL-safe, leaves *s zeroed. */
void cose_sign1_free(struct cose_sign1 *s);

/*
 * The claims payload[0..len) back into the JWS claim names: a new JSON
 * object {"iss", "sub", "aud", "iat", "nbf", "exp", "jti" (32 lower-case
 * hex of cti), "seq", "cmd", "args"}, in that order. Strict: exactly the
 * 10 labels of cose_claims_encode, each of its type (iat/nbf/exp ints
 * 0..COSE_CLAIM_TIME_MAX, seq a uint 1..INT64_MAX, cti a bstr of 16,
 * iss/sub/aud text 1..128 bytes, cmd 1..64, args a map); text strings
 * valid UTF-8 without control characters or NUL; args: only text keys (at
 * most 256 bytes), at most 64 members per map, nesting at most 16 with
 * the claims map as level 1, integers in int64 range, no floats, no tags,
 * no byte strings, no undefined or other simple values, no duplicate keys
 * at any depth; and re-encoding the result with cose_claims_encode gives
 * exactly the input bytes (only the deterministic encoding is accepted).
 * 0 with *out (the caller json_decref()s it); BS_ERR_INVALID (also for
 * len over COSE_TOKEN_MAX, or NULL arguments); BS_ERR_NOMEM. *out is set
 * only on success.
 */
int cose_claims_decode(const uint8_t *payload, size_t len, json_t **out) BS_WUR;

#endif
