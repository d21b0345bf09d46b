/*
 * bs_error.h - the one set of error codes every boltseal module returns.
 *
 * Functions return 0 on success or a negative BS_ERR_* code; outputs go
 * through pointer arguments and are set only on success. bs_strerror() gives
 * a short English description. What a client sees for each code is decided
 * in the RPC layer (rpc_status_from_err in rpc/rpc_status.h).
 */
#ifndef BS_ERROR_H
#define BS_ERROR_H

#define BS_WUR __attribute__((warn_unused_result))

enum bs_err {
	BS_OK = 0,
	BS_ERR_INTERNAL = -1,        /* a bug or an unexpected library failure */
	BS_ERR_NOMEM = -2,           /* allocation failed */
	BS_ERR_INVALID = -3,         /* malformed input, bad argument */
	BS_ERR_NOT_FOUND = -4,       /* unknown key, version or object */
	BS_ERR_EXISTS = -5,          /* name already in use */
	BS_ERR_PRECONDITION = -6,    /* state does not allow the operation */
	BS_ERR_TOO_BIG = -7,         /* over a size cap */
	BS_ERR_QUEUE_FULL = -8,      /* bounded queue full */
	BS_ERR_HSM = -9,             /* PKCS#11 call failed */
	BS_ERR_UNAVAILABLE = -10,    /* dependency unusable, shutting down */
	BS_ERR_IO = -11,             /* file or database I/O failed */
	BS_ERR_CONFIG = -12,         /* configuration error */
	BS_ERR_CRYPTO = -13,         /* OpenSSL failure */
	BS_ERR_UNSUPPORTED = -14,    /* algorithm/feature not supported */
	BS_ERR_CANCELLED = -15,      /* work cancelled by the caller */
	BS_ERR_MISMATCH = -16,       /* catalog and token disagree */
	BS_ERR_TRUNCATED = -17,      /* input ended early */
	BS_ERR_SIG_INVALID = -18,    /* signature did not verify */
};

/* Returns a static string describing err; never NULL. */
const char *bs_strerror(int err);

#endif
