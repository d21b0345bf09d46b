/*
 * tls.c - server TLS context and peer identity (see tls.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/tls.h"
#include "common/fileio.h"

/* First URI SAN of cert into out; 0 or BS_ERR_INVALID. */
static int
cert_uri_san(X509 *cert, char *out, size_t cap)
{
	GENERAL_NAMES *names = NULL;
	int i, n, found = 0, rc = BS_ERR_INVALID;

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
		/* exactly one: with two, which one is the caller? (none is) */
		if (found++ > 0) {
			rc = BS_ERR_INVALID;
			goto out;
		}
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
	}
out:
	GENERAL_NAMES_free(names);
	return rc;
}

/*
 * 1 if the leaf may identify a client: not a CA, keyUsage (when present)
 * allowing digitalSignature, and an extendedKeyUsage that names clientAuth
 * (an EKU is required, not only allowed).
 */
static int
leaf_fit_for_client(X509 *cert)
{
	uint32_t flags = X509_get_extension_flags(cert);

	if (X509_check_ca(cert) != 0 || (flags & EXFLAG_CA))
		return 0;
	if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
		return 0;
	if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
		return 0;
	return 1;
}

static int
verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	char uri[TLS_IDENTITY_MAX];
	X509 *leaf;

	if (!preverify_ok)
		return 0;
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	leaf = X509_STORE_CTX_get_current_cert(x);
	/* Exactly one URI SAN (the caller's identity), and a leaf made for clients. */
	if (cert_uri_san(leaf, uri, sizeof(uri)) != 0) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (!leaf_fit_for_client(leaf)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_INVALID_PURPOSE);
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

#define TLS_MAX_CRLS 256
#define SERVER_KEY_MAX (64 * 1024)  /* a PEM private key is a few KiB */

/* What is kept of each CRL loaded: enough to say which one is stale. */
struct crl_info {
	char file[256];
	char issuer[256];
	X509_NAME *issuer_name;       /* owned */
	time_t next_update;           /* 0 = none given */
};

struct tls_material {
	SSL_CTX *ctx;
	struct crl_info crls[TLS_MAX_CRLS];
	size_t ncrls;
	char missing[512];            /* "no CRL for CA <subject>" at load time, or "" */
};

static void
name_oneline(const X509_NAME *n, char *out, size_t cap)
{
	if (X509_NAME_oneline(n, out, (int)cap) == NULL)
		snprintf(out, cap, "?");
}

/* Adds every CRL found in the PEM file path to store and to m->crls. */
static int
load_crl_file(struct tls_material *m, X509_STORE *store, const char *path, char *err,
    size_t errlen)
{
	STACK_OF(X509_INFO) *infos = NULL;
	BIO *bio = NULL;
	int i, found = 0, rc = BS_ERR_CONFIG;

	bio = BIO_new_file(path, "r");
	if (bio == NULL) {
		set_err(err, errlen, "cannot open CRL file", path);
		goto out;
	}
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	if (infos == NULL) {
		set_err(err, errlen, "cannot parse CRL file", path);
		goto out;
	}
	for (i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);
		struct crl_info *ci;
		const ASN1_TIME *nu;
		struct tm tm;

		if (xi->crl == NULL)
			continue;
		if (m->ncrls == TLS_MAX_CRLS) {
			snprintf(err, errlen, "more than %d CRLs (at %s)", TLS_MAX_CRLS, path);
			goto out;
		}
		if (X509_STORE_add_crl(store, xi->crl) != 1) {
			set_err(err, errlen, "cannot add CRL from", path);
			goto out;
		}
		ci = &m->crls[m->ncrls];
		snprintf(ci->file, sizeof(ci->file), "%s", path);
		name_oneline(X509_CRL_get_issuer(xi->crl), ci->issuer, sizeof(ci->issuer));
		ci->issuer_name = X509_NAME_dup(X509_CRL_get_issuer(xi->crl));
		if (ci->issuer_name == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		ci->next_update = 0;
		nu = X509_CRL_get0_nextUpdate(xi->crl);
		if (nu != NULL && ASN1_TIME_to_tm(nu, &tm) == 1)
			ci->next_update = timegm(&tm);
		m->ncrls++;
		found++;
	}
	if (found == 0) {
		snprintf(err, errlen, "no CRL in %s", path);
		goto out;
	}
	rc = 0;
out:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return rc;
}

/* path is a CRL file, or a directory of them (dot files skipped). */
static int
load_crls(struct tls_material *m, X509_STORE *store, const char *path, char *err, size_t errlen)
{
	struct dirent **ents = NULL;
	struct stat st;
	char file[4096];
	int i, n, rc = 0;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "cannot read CRL path %s: %s", path, strerror(errno));
		return BS_ERR_CONFIG;
	}
	if (!S_ISDIR(st.st_mode))
		return load_crl_file(m, store, path, err, errlen);
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		snprintf(err, errlen, "cannot list CRL directory %s: %s", path, strerror(errno));
		return BS_ERR_CONFIG;
	}
	for (i = 0; i < n; i++) {
		if (rc == 0 && ents[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s/%s", path, ents[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
				rc = load_crl_file(m, store, file, err, errlen);
		}
		free(ents[i]);
	}
	free(ents);
	if (rc == 0 && m->ncrls == 0) {
		snprintf(err, errlen, "no CRL in directory %s", path);
		rc = BS_ERR_CONFIG;
	}
	return rc;
}

/* Adds path's name and stat identity (or its absence) to the digest. */
static void
sig_add_path(EVP_MD_CTX *md, const char *path)
{
	struct stat st;
	long long f[5] = { -1, -1, -1, -1, -1 };

	if (stat(path, &st) == 0) {
		f[0] = (long long)st.st_ino;
		f[1] = (long long)st.st_size;
		f[2] = (long long)st.st_mtim.tv_sec;
		f[3] = (long long)st.st_mtim.tv_nsec;
		f[4] = (long long)st.st_mode;
	}
	(void)EVP_DigestUpdate(md, path, strlen(path) + 1);
	(void)EVP_DigestUpdate(md, f, sizeof(f));
}

void
tls_trust_files_signature(const char *client_ca, const char *crl, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct dirent **ents = NULL;
	struct stat st;
	char file[4096];
	int i, n;

	memset(out, 0, 32);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return;
	}
	sig_add_path(md, client_ca);
	sig_add_path(md, crl);
	if (stat(crl, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (n = scandir(crl, &ents, NULL, alphasort)) >= 0) {
		for (i = 0; i < n; i++) {
			if (ents[i]->d_name[0] != '.' &&
			    (size_t)snprintf(file, sizeof(file), "%s/%s", crl, ents[i]->d_name) <
			    sizeof(file))
				sig_add_path(md, file);
			free(ents[i]);
		}
		free(ents);
	}
	(void)EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
}

/* Notes in m->missing the first CA of the bundle no loaded CRL covers. */
static void
find_uncovered_ca(struct tls_material *m, X509_STORE *store)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	int i;

	m->missing[0] = '\0';
	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		size_t j;
		int covered = 0;

		if (ca == NULL)
			continue;
		for (j = 0; j < m->ncrls && !covered; j++)
			covered = X509_NAME_cmp(m->crls[j].issuer_name,
			    X509_get_subject_name(ca)) == 0;
		if (!covered) {
			char subj[256];

			name_oneline(X509_get_subject_name(ca), subj, sizeof(subj));
			snprintf(m->missing, sizeof(m->missing),
			    "no CRL for CA %s: certificates it issued are refused", subj);
			return;
		}
	}
}

/*
 * Loads the server's private key from path, which must be a regular file
 * owned by root or this user and not accessible by group or others (like
 * an SSH host key); the PEM is read once through the checked descriptor and
 * wiped after parsing.
 */
static int
use_server_key(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	char why[256], *pem = NULL;
	size_t len = 0;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int rc = -1;

	why[0] = '\0';
	rc = bs_file_read_checked(path, BS_FILE_OWNER_ONLY | BS_FILE_OWNED, SERVER_KEY_MAX, &pem,
	    &len, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "server key %s: %s", path,
		    rc == BS_ERR_NOMEM ? "out of memory" : why);
		pem = NULL;
		rc = -1;
		goto out;
	}
	rc = -1;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		set_err(err, errlen, "cannot load server key", path);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pk);
	BIO_free(bio);
	if (pem != NULL) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	return rc;
}

int
tls_material_load(const char *cert, const char *key, const char *client_ca, const char *crl,
    struct tls_material **out, char *err, size_t errlen)
{
	struct tls_material *m = NULL;
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_NAME) *ca_names = NULL;
	X509_STORE *store;
	int rc = BS_ERR_CONFIG;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
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
	/* received records are decrypted in place: wipe them once read (requests carry secrets) */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/*
	 * an idle connection holds no record buffers (about 34 KiB each otherwise):
	 * gateways keep thousands of connections open (docs/benchmarks.md, scale)
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		set_err(err, errlen, "cannot load server certificate", cert);
		goto out;
	}
	if (use_server_key(ctx, key, err, errlen) != 0)
		goto out;
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_err(err, errlen, "server key does not match certificate", key);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
		set_err(err, errlen, "cannot load client CA bundle", client_ca);
		goto out;
	}
	store = SSL_CTX_get_cert_store(ctx);
	if (load_crls(m, store, crl, err, errlen) != 0)
		goto out;
	/* No X509_V_FLAG_PARTIAL_CHAIN: every chain must end at a configured root. */
	if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) != 1) {
		set_err(err, errlen, "cannot enable CRL checking", NULL);
		goto out;
	}
	find_uncovered_ca(m, store);
	ca_names = SSL_load_client_CA_file(client_ca);
	if (ca_names != NULL)
		SSL_CTX_set_client_CA_list(ctx, ca_names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
	m->ctx = ctx;
	ctx = NULL;
	*out = m;
	m = NULL;
	rc = 0;
out:
	SSL_CTX_free(ctx);
	tls_material_free(m);
	return rc;
}

void
tls_material_free(struct tls_material *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ncrls; i++)
		X509_NAME_free(m->crls[i].issuer_name);
	SSL_CTX_free(m->ctx);
	free(m);
}

SSL_CTX *
tls_material_ctx(const struct tls_material *m)
{
	return m->ctx;
}

/* Adds x's notAfter as kind to out[*n] (if room and the time reads). */
static void
add_cert_expiry(X509 *x, const char *kind, struct tls_expiry *out, size_t max, size_t *n)
{
	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;

	if (*n >= max || na == NULL || ASN1_TIME_to_tm(na, &tm) != 1)
		return;
	out[*n].kind = kind;
	name_oneline(X509_get_subject_name(x), out[*n].subject, sizeof(out[*n].subject));
	out[*n].at = timegm(&tm);
	(*n)++;
}

size_t
tls_material_expiries(const struct tls_material *m, struct tls_expiry *out, size_t max)
{
	X509 *cert = SSL_CTX_get0_certificate(m->ctx);
	X509_STORE *store = SSL_CTX_get_cert_store(m->ctx);
	STACK_OF(X509_OBJECT) *objs = store != NULL ? X509_STORE_get0_objects(store) : NULL;
	size_t n = 0;

	if (cert != NULL)
		add_cert_expiry(cert, "server_certificate", out, max, &n);
	for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (ca != NULL)
			add_cert_expiry(ca, "client_ca", out, max, &n);
	}
	for (size_t i = 0; i < m->ncrls && n < max; i++) {
		if (m->crls[i].next_update == 0)
			continue;
		out[n].kind = "crl";
		snprintf(out[n].subject, sizeof(out[n].subject), "%s", m->crls[i].issuer);
		out[n].at = m->crls[i].next_update;
		n++;
	}
	return n;
}

int
tls_material_crl_status(const struct tls_material *m, time_t now, char *problem, size_t problemlen)
{
	if (m->missing[0] != '\0') {
		snprintf(problem, problemlen, "%s", m->missing);
		return BS_ERR_UNAVAILABLE;
	}
	for (size_t i = 0; i < m->ncrls; i++) {
		const struct crl_info *ci = &m->crls[i];

		if (ci->next_update != 0 && ci->next_update < now) {
			struct tm tm;
			char when[32];

			gmtime_r(&ci->next_update, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			snprintf(problem, problemlen,
			    "CRL %s (issuer %s) expired at %s: certificates it covers are refused",
			    ci->file, ci->issuer, when);
			return BS_ERR_UNAVAILABLE;
		}
	}
	problem[0] = '\0';
	return 0;
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
tls_peer_reverify(SSL *ssl, SSL_CTX *ctx, const uint8_t cert_sha256[32], char *why, size_t whylen)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509) *untrusted = SSL_get_peer_cert_chain(ssl); /* server side: without the leaf */
	X509_STORE_CTX *x = NULL;
	uint8_t sha[32];
	unsigned int mdlen = 0;
	int rc = BS_ERR_INVALID, err;

	if (leaf == NULL) {
		snprintf(why, whylen, "no peer certificate");
		return BS_ERR_INVALID;
	}
	if (X509_digest(leaf, EVP_sha256(), sha, &mdlen) != 1 || mdlen != 32 ||
	    CRYPTO_memcmp(sha, cert_sha256, 32) != 0) {
		snprintf(why, whylen, "peer certificate changed");
		return BS_ERR_INVALID;
	}
	if ((x = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(ctx), leaf, untrusted) != 1 ||
	    X509_STORE_CTX_set_default(x, "ssl_client") != 1 ||
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(x), SSL_CTX_get0_param(ctx)) != 1) {
		snprintf(why, whylen, "cannot set up verification");
		rc = BS_ERR_NOMEM;
		goto out;
	}
	X509_STORE_CTX_set_verify_cb(x, verify_cb);
	if (X509_verify_cert(x) == 1) {
		rc = 0;
		goto out;
	}
	err = X509_STORE_CTX_get_error(x);
	snprintf(why, whylen, "%s", err == X509_V_ERR_APPLICATION_VERIFICATION ?
	    "leaf must have exactly one URI SAN" : X509_verify_cert_error_string(err));
out:
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return rc;
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
