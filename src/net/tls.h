/*
 * tls.h - the daemon's TLS policy: TLS 1.3 only, a client certificate
 * required and verified against the configured CA bundle (no partial
 * chains), ALPN "h2" selected or the handshake refused, and caller identity
 * taken from the URI SAN of the verified leaf (never the CN).
 */
#ifndef BS_TLS_H
#define BS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "common/bs_error.h"

#define TLS_IDENTITY_MAX 512

/*
 * One loaded set of TLS material: the server SSL_CTX plus what is known
 * about its CRLs. Built whole at start-up and on SIGHUP; a new set replaces
 * the old one only if every file loaded (connections already established
 * keep the SSL_CTX they started with: OpenSSL counts the references).
 */
struct tls_material;

/*
 * Loads cert (PEM chain), key, the client CA bundle and the CRLs (a PEM
 * file holding one or more CRLs, or a directory whose regular files each
 * hold CRLs). Revocation is checked for the whole client chain
 * (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL): a certificate whose
 * issuer has no CRL, or whose CRL has expired, fails the handshake. A leaf
 * without a URI SAN fails verification.
 * Returns 0, or BS_ERR_CONFIG with a message naming the file in err.
 */
int tls_material_load(const char *cert, const char *key, const char *client_ca, const char *crl,
    struct tls_material **out, char *err, size_t errlen) BS_WUR;
void tls_material_free(struct tls_material *m);

/*
 * A digest of what the files of the trust store look like on disk: the
 * client CA bundle and the CRL path (for a directory, each of its files),
 * by name, inode, size and modification time. Comparing two tells whether
 * trust material changed without reading it. Missing files count too.
 */
void tls_trust_files_signature(const char *client_ca, const char *crl, uint8_t out[32]);

/* When something of the material stops being valid: for the metrics. */
struct tls_expiry {
	const char *kind;        /* "server_certificate", "client_ca" (notAfter) or "crl" (nextUpdate) */
	char subject[256];       /* the certificate's subject, or the CRL's issuer (one line) */
	time_t at;               /* Unix time */
};
#define TLS_EXPIRY_MAX 64

/*
 * Fills out with the server certificate's, each client CA's and each CRL's
 * expiry (at most max; a CRL without nextUpdate is left out). Returns how
 * many.
 */
size_t tls_material_expiries(const struct tls_material *m, struct tls_expiry *out, size_t max);

/* The SSL_CTX (borrowed: SSL_new takes its own reference). */
SSL_CTX *tls_material_ctx(const struct tls_material *m);

/*
 * Revocation readiness at time now: 0 when every CA of the client bundle
 * has a CRL that has not expired; otherwise BS_ERR_UNAVAILABLE and a
 * sentence naming the CA and the CRL file in problem (handshakes that
 * need that CRL are refused; health reports NOT_SERVING).
 */
int tls_material_crl_status(const struct tls_material *m, time_t now, char *problem,
    size_t problemlen) BS_WUR;

/*
 * After the handshake: 0 and the verified leaf's first URI SAN in uri
 * (NUL-terminated) plus the SHA-256 of its DER encoding, or BS_ERR_INVALID
 * when there is no verified peer certificate or no URI SAN (or it does not
 * fit). 1 in *h2 if ALPN selected "h2".
 */
int tls_peer_identity(SSL *ssl, char uri[TLS_IDENTITY_MAX], uint8_t cert_sha256[32]) BS_WUR;

/*
 * Verifies an established connection's peer again, against ctx's store
 * (its CAs and CRLs now) and the same client certificate rules as the
 * handshake, at the current time; the leaf must still be the one whose
 * SHA-256 is cert_sha256. 0 if it still verifies; otherwise
 * BS_ERR_INVALID with the reason in why.
 */
int tls_peer_reverify(SSL *ssl, SSL_CTX *ctx, const uint8_t cert_sha256[32], char *why,
    size_t whylen) BS_WUR;

/* 1 if the connection negotiated ALPN "h2", else 0. */
int tls_alpn_is_h2(SSL *ssl);

#endif
