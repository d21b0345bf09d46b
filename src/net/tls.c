/*
 * tls.c - server TLS context and peer identity (see tls.h).
 */
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

/* First URI SAN of cert into out; 0 or BS_ERR_INVALID. */
static int
cert_uri_san(X509 *cert, char *out, size_t cap)
{
	GENERAL_NAMES *names = NULL;
	int i, n, rc = BS_ERR_INVALID;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return BS_ERR_INVALID;
	n = sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const unsigned char *p;
		int len, j;

		if (gn->type != GEN_URI)
			continue;
		p = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len <= 0 || (size_t)len >= cap)
			goto out;
		for (j = 0; j < len; j++) {
			/* printable ASCII only: the identity ends up in logs */
			if (p[j] < 0x21 || p[j] > 0x7e)
				goto out;
		}
		memcpy(out, p, (size_t)len);
		out[len] = '\0';
		rc = 0;
		goto out;
	}
out:
	GENERAL_NAMES_free(names);
	return rc;
}

static int
verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	char uri[TLS_IDENTITY_MAX];

	if (!preverify_ok)
		return 0;
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	/* The leaf must carry a URI SAN: it is the caller's identity. */
	if (cert_uri_san(X509_STORE_CTX_get_current_cert(x), uri, sizeof(uri)) != 0) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

static int
alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	int rv;

	rv = nghttp2_select_next_protocol((unsigned char **)out, outlen, in, inlen);
	if (rv != 1)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* no h2 offered: refuse (no_application_protocol) */
	return SSL_TLSEXT_ERR_OK;
}

static void
set_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, file != NULL ? file : "", e != 0 ? buf : "failed");
	ERR_clear_error();
}

int
tls_server_ctx_new(const char *cert, const char *key, const char *client_ca, SSL_CTX **out,
    char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_NAME) *ca_names = NULL;
	int rc = BS_ERR_CONFIG;

	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		set_err(err, errlen, "SSL_CTX_new", NULL);
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		set_err(err, errlen, "TLS 1.3 only", NULL);
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		set_err(err, errlen, "cannot load server certificate", cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		set_err(err, errlen, "cannot load server key", key);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_err(err, errlen, "server key does not match certificate", key);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
		set_err(err, errlen, "cannot load client CA bundle", client_ca);
		goto out;
	}
	ca_names = SSL_load_client_CA_file(client_ca);
	if (ca_names != NULL)
		SSL_CTX_set_client_CA_list(ctx, ca_names);
	/* No X509_V_FLAG_PARTIAL_CHAIN: every chain must end at a configured root. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	SSL_CTX_free(ctx);
	return rc;
}

int
tls_alpn_is_h2(SSL *ssl)
{
	const unsigned char *alpn = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(ssl, &alpn, &len);
	return alpn != NULL && len == 2 && memcmp(alpn, "h2", 2) == 0;
}

int
tls_peer_identity(SSL *ssl, char uri[TLS_IDENTITY_MAX], uint8_t cert_sha256[32])
{
	X509 *peer;
	unsigned int mdlen = 0;
	int rc = BS_ERR_INVALID;

	peer = SSL_get1_peer_certificate(ssl);
	if (peer == NULL)
		return BS_ERR_INVALID;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		goto out;
	if (cert_uri_san(peer, uri, TLS_IDENTITY_MAX) != 0)
		goto out;
	if (X509_digest(peer, EVP_sha256(), cert_sha256, &mdlen) != 1 || mdlen != 32)
		goto out;
	rc = 0;
out:
	X509_free(peer);
	return rc;
}
