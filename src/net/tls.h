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

#include <openssl/ssl.h>

#include "common/bs_error.h"

#define TLS_IDENTITY_MAX 512

/*
 * Builds the server SSL_CTX from PEM files: cert (chain), key, and the CA
 * bundle client certificates must chain to. A leaf without a URI SAN fails
 * verification. Returns 0, or BS_ERR_CONFIG with a message in err.
 */
int tls_server_ctx_new(const char *cert, const char *key, const char *client_ca, SSL_CTX **out,
    char *err, size_t errlen) BS_WUR;

/*
 * After the handshake: 0 and the verified leaf's first URI SAN in uri
 * (NUL-terminated) plus the SHA-256 of its DER encoding, or BS_ERR_INVALID
 * when there is no verified peer certificate or no URI SAN (or it does not
 * fit). 1 in *h2 if ALPN selected "h2".
 */
int tls_peer_identity(SSL *ssl, char uri[TLS_IDENTITY_MAX], uint8_t cert_sha256[32]) BS_WUR;

/* 1 if the connection negotiated ALPN "h2", else 0. */
int tls_alpn_is_h2(SSL *ssl);

#endif
