/*
 * boltseal/command.h - the vehicle side of signed commands: verifies a
 * cloud-to-vehicle command token (a JWS compact serialization, RFC 7515,
 * signed by boltsealed with ES256 or EdDSA) against a pinned public key,
 * and returns its claims. For an ECU or a gateway: it needs OpenSSL and
 * nothing else, does no I/O and keeps no state (the caller persists the
 * highest seq it accepted). Token format and checks: docs/commands.md,
 * "The vehicle-side API".
 */
#ifndef BOLTSEAL_COMMAND_H
#define BOLTSEAL_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BS_CMD_WUR __attribute__((warn_unused_result))
#else
#define BS_CMD_WUR
#endif

/* Limits and sizes (bytes; string sizes exclude the NUL). */
#define BS_CMD_MAX_TOKEN 16384          /* the whole token */
#define BS_CMD_MAX_HEADER 512           /* the decoded header */
#define BS_CMD_ID_MAX 128               /* iss, sub, aud */
#define BS_CMD_CMD_MAX 64               /* cmd */
#define BS_CMD_JTI_LEN 32               /* jti: exactly 32 lower-case hex digits */
#define BS_CMD_THUMBPRINT_LEN 43        /* RFC 7638 SHA-256 thumbprint, base64url */
#define BS_CMD_MAX_SKEW 86400           /* opts->skew, seconds */
#define BS_CMD_MAX_TIME 253402300799LL  /* 9999-12-31T23:59:59Z: bound of now, iat, nbf, exp */

/*
 * Results: 0 or negative. The verification codes are listed in the order
 * their checks run (structure, header, signature, claims); the first
 * failing check decides.
 */
enum bs_cmd_result {
	BS_CMD_OK = 0,
	/* the caller's own errors, before the token is read */
	BS_CMD_ERR_ARG = -1,            /* NULL argument, no vehicle_id/audience, now or skew out of range */
	BS_CMD_ERR_KEY = -2,            /* the pinned key is not a DER SPKI of a P-256 or Ed25519 key */
	BS_CMD_ERR_NOMEM = -3,
	BS_CMD_ERR_CRYPTO = -4,         /* an OpenSSL failure other than a bad signature */
	/* structure */
	BS_CMD_ERR_TOO_BIG = -5,        /* longer than BS_CMD_MAX_TOKEN */
	BS_CMD_ERR_MALFORMED = -6,      /* not three non-empty strict base64url parts */
	/* header */
	BS_CMD_ERR_HEADER = -7,         /* header not strict JSON, too big, "crit" or an unknown member,
	                                   no alg/kid string, typ not "JWT" */
	BS_CMD_ERR_ALG = -8,            /* alg is not ES256, EdDSA or Ed25519 */
	BS_CMD_ERR_KEY_MISMATCH = -9,   /* alg does not fit the pinned key's type, or kid is not its
	                                   thumbprint */
	/* signature */
	BS_CMD_ERR_SIGNATURE = -10,     /* does not verify, or not 64 bytes (DER is refused) */
	/* claims */
	BS_CMD_ERR_CLAIMS = -11,        /* claims not strict JSON, a claim of the wrong type or format,
	                                   an unknown claim, exp not after nbf */
	BS_CMD_ERR_MISSING_CLAIM = -12, /* a required claim is absent */
	BS_CMD_ERR_ISSUER = -13,        /* iss is not opts->issuer */
	BS_CMD_ERR_AUDIENCE = -14,      /* aud is not opts->audience */
	BS_CMD_ERR_VEHICLE = -15,       /* sub is not opts->vehicle_id */
	BS_CMD_ERR_NOT_YET_VALID = -16, /* nbf > now + skew, or iat > now + skew */
	BS_CMD_ERR_EXPIRED = -17,       /* now >= exp + skew */
	BS_CMD_ERR_REPLAYED = -18,      /* seq <= last_seq */
};

struct bs_cmd_verify_opts {
	const char *vehicle_id;   /* required: "sub" must equal it */
	const char *audience;     /* required: "aud" must equal it */
	const char *issuer;       /* optional: "iss" must equal it when not NULL */
	int64_t now;              /* the vehicle's clock, seconds since the epoch, 0..BS_CMD_MAX_TIME */
	int64_t skew;             /* clock skew allowed on nbf, iat and exp, 0..BS_CMD_MAX_SKEW s */
	uint64_t last_seq;        /* the highest seq this vehicle accepted (persisted); 0 = none */
};

/* The claims of a verified token. Strings are NUL-terminated UTF-8 without control characters. */
struct bs_cmd_claims {
	char alg[8];                            /* "ES256", "EdDSA" or "Ed25519" as in the header */
	char kid[BS_CMD_THUMBPRINT_LEN + 1];    /* the pinned key's thumbprint */
	char iss[BS_CMD_ID_MAX + 1];
	char sub[BS_CMD_ID_MAX + 1];            /* the vehicle id */
	char aud[BS_CMD_ID_MAX + 1];
	char cmd[BS_CMD_CMD_MAX + 1];
	char jti[BS_CMD_JTI_LEN + 1];           /* 32 lower-case hex digits */
	int64_t iat, nbf, exp;                  /* seconds since the epoch */
	uint64_t seq;                           /* >= 1 */
	char *args;                             /* "args", an object, as compact JSON (members
	                                           in the signed order; for tokens boltseal
	                                           signs, the signed bytes); malloc'd,
	                                           NUL-terminated; bs_cmd_claims_free */
	size_t args_len;
};

/*
 * Verifies token (len bytes, no NUL needed; nothing else around it: no
 * whitespace) against the pinned key spki (DER SubjectPublicKeyInfo of a
 * P-256 or Ed25519 key) and opts. Returns 0 with *out filled (the caller
 * owns it: bs_cmd_claims_free), or one of the codes above with *out
 * cleared (all zero). On success the caller must persist out->seq as its
 * new last_seq before it acts on the command.
 */
int bs_cmd_verify(const char *token, size_t len, const uint8_t *spki, size_t spki_len,
    const struct bs_cmd_verify_opts *opts, struct bs_cmd_claims *out) BS_CMD_WUR;

/*
 * bs_cmd_verify, and on failure a one-line explanation with the values
 * involved in detail (detail_len bytes, NUL-terminated, may be NULL/0),
 * e.g. "exp 1700000030 + skew 5 s is not after now 1700000100". Strings
 * taken from the token are shown with non-printable bytes as '?'.
 */
int bs_cmd_verify_detail(const char *token, size_t len, const uint8_t *spki, size_t spki_len,
    const struct bs_cmd_verify_opts *opts, struct bs_cmd_claims *out, char *detail,
    size_t detail_len) BS_CMD_WUR;

/* Frees what c holds (not c itself) and clears it. NULL is a no-op. */
void bs_cmd_claims_free(struct bs_cmd_claims *c);

/* A human-readable reason for a result code (a constant string). */
const char *bs_cmd_strerror(int rc);

/* A short stable name for a result code ("expired", "replayed"), for logs and JSON. */
const char *bs_cmd_result_name(int rc);

/*
 * The RFC 7638 SHA-256 thumbprint of a P-256 or Ed25519 key given as a DER
 * SubjectPublicKeyInfo, base64url without padding (43 characters and a
 * NUL): the "kid" of tokens it signs. Returns 0, BS_CMD_ERR_ARG,
 * BS_CMD_ERR_KEY, BS_CMD_ERR_NOMEM or BS_CMD_ERR_CRYPTO; out is cleared on
 * failure.
 */
int bs_cmd_key_thumbprint(const uint8_t *spki, size_t len, char out[BS_CMD_THUMBPRINT_LEN + 1])
    BS_CMD_WUR;

#ifdef __cplusplus
}
#endif

#endif
