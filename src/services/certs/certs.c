/*
 * certs.c - boltseal.v1.CertificateService (certs.proto, docs/identity.md):
 * certificate authorities whose keys stay in the HSM. CreateAuthority
 * builds a self-signed CA certificate for a key of purpose ca with
 * OpenSSL's X509 API, has the HSM sign the SHA-256 of its TBSCertificate
 * through the key door, assembles and checks the result
 * (formats/x509_signed.h) and keeps it (store namespace "certs", row
 * "ca/KEY", created once); GetAuthority returns it. Profiles and issued
 * certificates: issue.c; revocation and CRLs: revoke.c.
 *
 * One call: loop (checks, the TBS) -> HSM (signature) -> loop (assembly)
 * -> worker (store) -> loop (answer). Reads go loop -> worker -> loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "boltseal/v1/certs.pb-c.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/utf8.h"
#include "exec/workq.h"
#include "formats/ecdsa_sig.h"
#include "formats/x509_signed.h"
#include "keyops/keyclient.h"
#include "keyops/keyops.h"
#include "keys/catalog.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/certs/certs_int.h"
#include "services/services.h"
#include "store/store.h"
#include "types/types.h"

#define CN_MAX 64
#define LIFETIME_DEFAULT 3650u
#define LIFETIME_MAX 7300u

enum op { OP_CREATE, OP_GET };

struct ccall {
	struct certs_call base;         /* first */
	enum op op;
	char key[CATALOG_NAME_MAX + 1];
	char row[CATALOG_NAME_MAX + 8];
	uint32_t version;
	X509 *tmpl;                     /* CREATE: the certificate being made */
	EVP_PKEY *pub;                  /* CREATE: the CA key's public half */
	uint8_t *tbs;
	size_t tbs_len;
	Boltseal__V1__Authority *got;   /* GET: the row read */
	uint8_t *row_data;              /* CREATE: the packed Authority to store */
	size_t row_len;
	Boltseal__V1__Authority a;      /* CREATE: the answer */
	char *pem;
	char serial[CERTS_SERIAL_HEX + 1];
	char subject[256];
	char sha[65];
	int rc;
};

static void
ccall_free(void *arg)
{
	struct ccall *c = arg;

	X509_free(c->tmpl);
	EVP_PKEY_free(c->pub);
	OPENSSL_free(c->tbs);
	if (c->got != NULL)
		boltseal__v1__authority__free_unpacked(c->got, NULL);
	free(c->row_data);
	OPENSSL_free(c->pem);
	free(c);
}

void *
certs_call_new(struct rpc_call *call, size_t size, void (*free_fn)(void *c))
{
	struct svc_ctx *svc = rpc_call_svc(call);
	struct certs_call *c;

	if (svc->store == NULL || svc->work == NULL || svc->keys == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "certificate service not started");
		return NULL;
	}
	if ((c = calloc(1, size)) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	c->call = call;
	c->svc = svc;
	c->st = rpc_call_service_state(call);
	c->free_fn = free_fn;
	return c;
}

void *
certs_task_new(struct certs_state *st, size_t size, void (*free_fn)(void *c))
{
	struct certs_call *c;

	if ((c = calloc(1, size)) == NULL) {
		bs_log(BS_LOG_ERROR, "out of memory: a CRL is not refreshed", NULL);
		return NULL;
	}
	c->svc = st->svc;
	c->st = st;
	c->free_fn = free_fn;
	return c;
}

void
certs_fail(void *arg, int status, const char *fmt, ...)
{
	struct certs_call *c = arg;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->call != NULL)
		rpc_call_fail(c->call, status, "%s", msg);
	else
		bs_log(BS_LOG_ERROR, "the CRL publisher failed", "status", grpc_status_name(status),
		    "error", msg, NULL);
	c->free_fn(c);
}

int
certs_authorize_key(void *arg, const char *key, const struct policy_attr *attrs, size_t nattrs,
    const struct catalog_key **k)
{
	struct certs_call *c = arg;
	const struct catalog_key *found = catalog_find(c->svc->catalog, key);

	if (k != NULL)
		*k = found;
	if (rpc_call_authorize(c->call, key, found != NULL ? bs_purpose_name(found->purpose) : NULL,
	    attrs, nattrs))
		return 1;
	c->free_fn(c);
	return 0;
}

int
certs_submit(void *arg, void (*work)(struct workq_job *, void *), void (*done)(struct workq_job *))
{
	struct certs_call *c = arg;

	c->job.work = work;
	c->job.done = done;
	return workq_submit(c->svc->work, &c->job);
}

int
certs_ca_signer(void *arg, const char *key, const Boltseal__V1__Authority *ca,
    const struct catalog_version **v, X509 **cert, EVP_PKEY **pub)
{
	struct certs_call *c = arg;
	const struct catalog_key *k = catalog_find(c->svc->catalog, key);
	BIO *b;

	*v = k != NULL ? catalog_key_version(k, ca->key_version) : NULL;
	if (k == NULL || k->purpose != BS_PURPOSE_CA || *v == NULL ||
	    !catalog_version_usable(k, *v)) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the CA key '%s' (the version that "
		    "signed its certificate) is not usable", key);
		return 0;
	}
	if (c->call != NULL)
		rpc_call_audit_key(c->call, key, (*v)->version);
	if ((b = BIO_new_mem_buf(ca->certificate_pem, -1)) == NULL ||
	    (*cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    (*pub = X509_get_pubkey(*cert)) == NULL) {
		BIO_free(b);
		certs_fail(c, GRPC_STATUS_INTERNAL, "the kept CA certificate does not parse");
		return 0;
	}
	BIO_free(b);
	return 1;
}

/* 1 if s is 1..CN_MAX bytes of UTF-8 without control characters. */
static int
cn_valid(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), i = 0, k;
	uint32_t cp;

	if (n == 0 || n > CN_MAX)
		return 0;
	while (i < n) {
		if ((k = bs_utf8_decode(p + i, n - i, &cp)) == 0 || cp < 0x20 ||
		    (cp >= 0x7f && cp < 0xa0))
			return 0;
		i += k;
	}
	return 1;
}

/* A new call for key (its row id made), or NULL (answered). */
static struct ccall *
ccall_start(struct rpc_call *call, enum op op, const char *key)
{
	struct ccall *c;

	if (key[0] == '\0' || strlen(key) > CATALOG_NAME_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "key_name: 1 to %d bytes",
		    CATALOG_NAME_MAX);
		return NULL;
	}
	if ((c = certs_call_new(call, sizeof(*c), ccall_free)) == NULL)
		return NULL;
	c->op = op;
	snprintf(c->key, sizeof(c->key), "%s", key);
	snprintf(c->row, sizeof(c->row), "ca/%s", key);
	rpc_call_audit_target(call, key);
	return c;
}

/* ---- CreateAuthority -------------------------------------------------------------- */

int
certs_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

	X509_EXTENSION_free(e);
	return ok ? 0 : BS_ERR_CRYPTO;
}

int
certs_set_serial(X509 *x, char hex[CERTS_SERIAL_HEX + 1])
{
	uint8_t serial[CERTS_SERIAL_LEN];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return BS_ERR_CRYPTO;
	serial[0] &= 0x7f;   /* positive (RFC 5280 4.1.2.2), at most 20 octets */
	serial[0] |= 0x40;   /* and CERTS_SERIAL_LEN octets long */
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL)
		return BS_ERR_CRYPTO;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	if (!ok)
		return BS_ERR_CRYPTO;
	bs_hex_encode(serial, sizeof(serial), hex);
	return 0;
}

int
certs_sign_tbs(struct svc_ctx *svc, const char *key, const struct catalog_version *v,
    const uint8_t *tbs, size_t len, keyclient_done_fn done, void *arg)
{
	struct keyop_request kr;
	struct keyop_input in;
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(tbs, len, md);
	memset(&kr, 0, sizeof(kr));
	in.is_digest = 1;
	in.data = md;
	in.len = sizeof(md);
	kr.type = KEYOP_SIGN;
	snprintf(kr.key.name, sizeof(kr.key.name), "%s", key);
	kr.key.version = v->version;
	kr.alg = BS_ALG_ECDSA_P256_SHA256;
	memcpy(kr.id, v->hsm_id, sizeof(kr.id));
	kr.inputs = &in;
	kr.ninputs = 1;
	return keyclient_submit(svc->keys, &kr, done, arg, NULL);
}

int
certs_sig_der(struct svc_ctx *svc, struct rpc_call *call, struct keyop_answer *a, uint8_t *der,
    size_t *len, const char **msg)
{
	int rc = a->rc;

	if (rc == 0 && (a->nsigs != 1 || a->sigs[0].rc != 0 ||
	    a->sigs[0].sig_len != ECDSA_P256_RAW_LEN))
		rc = a->nsigs == 1 && a->sigs[0].rc != 0 ? a->sigs[0].rc : BS_ERR_HSM;
	svc_note_hsm_result(svc, rc);
	if (rc != 0) {
		*msg = "the HSM could not sign";
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (call != NULL && rpc_call_audit_payload(call, a->sigs[0].payload_sha256) != 0) {
		*msg = "out of memory";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if (ecdsa_sig_raw_to_der(a->sigs[0].sig, der, ECDSA_P256_DER_MAX, len) != 0) {
		*msg = "the HSM's signature is malformed";
		return GRPC_STATUS_INTERNAL;
	}
	return 0;
}

int
certs_pem_sha(X509 *x, char **pem, char sha[65])
{
	unsigned char *der = NULL;
	uint8_t md[SHA256_DIGEST_LENGTH];
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m = NULL;
	int n, rc = BS_ERR_NOMEM;

	*pem = NULL;
	if (b == NULL || PEM_write_bio_X509(b, x) != 1 || BIO_get_mem_ptr(b, &m) != 1 ||
	    (*pem = OPENSSL_strndup(m->data, m->length)) == NULL || (n = i2d_X509(x, &der)) <= 0)
		goto out;
	SHA256(der, (size_t)n, md);
	bs_hex_encode(md, sizeof(md), sha);
	rc = 0;
out:
	OPENSSL_free(der);
	BIO_free(b);
	if (rc != 0) {
		OPENSSL_free(*pem);
		*pem = NULL;
	}
	return rc;
}

int
certs_pem_spki(const char *pem, uint8_t **spki, size_t *len)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int n = x != NULL ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), spki) : 0;

	X509_free(x);
	BIO_free(b);
	if (n <= 0)
		return BS_ERR_NOMEM;
	*len = (size_t)n;
	return 0;
}

int
certs_validity(X509 *x, int64_t *not_before, int64_t *not_after)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1)
		return BS_ERR_INVALID;
	*not_before = (int64_t)timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return BS_ERR_INVALID;
	*not_after = (int64_t)timegm(&tm);
	return 0;
}

/* The self-signed CA certificate to be, for the key's public half c->pub. */
static int
build_ca(struct ccall *c, const char *cn, unsigned days)
{
	X509_NAME *n = NULL;
	X509V3_CTX v3;
	X509 *x;
	int rc = BS_ERR_CRYPTO;

	if ((x = X509_new()) == NULL || (n = X509_NAME_new()) == NULL)
		goto out;
	if (certs_set_serial(x, c->serial) != 0 ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)CERTS_ORG, -1,
	    -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	    0) != 1 ||
	    X509_set_subject_name(x, n) != 1 || X509_set_issuer_name(x, n) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -CERTS_BACKDATE_S) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
	    X509_set_pubkey(x, c->pub) != 1)
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (certs_add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
	    certs_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    certs_add_ext(x, &v3, NID_subject_key_identifier, "hash") != 0 ||
	    certs_add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") != 0)
		goto out;
	c->tmpl = x;
	x = NULL;
	rc = 0;
out:
	X509_NAME_free(n);
	X509_free(x);
	return rc;
}

int
certs_put_row(struct svc_ctx *svc, const char *row, const uint8_t *data, size_t len, int create)
{
	struct store_txn *tx;
	uint8_t *old = NULL;
	size_t olen = 0;
	uint64_t ver = 0;
	int rc;

	if ((rc = store_begin(svc->store, &tx)) != 0)
		return rc;
	if (!create) {
		rc = store_row_get(tx, CERTS_NS, row, &old, &olen, &ver);
		free(old);
		if (rc == BS_ERR_NOT_FOUND) {
			ver = 0;
			rc = 0;
		}
	}
	if (rc == 0)
		rc = store_row_put(tx, CERTS_NS, row, ver, data, len, NULL);
	if (rc == 0)
		return store_commit(tx);
	store_rollback(tx);
	return rc;
}

int
certs_read_pb(struct store_txn *tx, const char *row, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **out, uint64_t *ver)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t v = 0;
	int rc;

	*out = NULL;
	if ((rc = store_row_get(tx, CERTS_NS, row, &data, &len, &v)) != 0)
		return rc;
	*out = protobuf_c_message_unpack(desc, NULL, len, data);
	free(data);
	if (ver != NULL)
		*ver = v;
	return *out != NULL ? 0 : BS_ERR_INTERNAL;
}

/* Worker: the certificate's row, created once. */
static void
store_work(struct workq_job *job, void *ctx)
{
	struct ccall *c = (struct ccall *)job;

	(void)ctx;
	c->rc = certs_put_row(c->base.svc, c->row, c->row_data, c->row_len, 1);
}

static void
store_done(struct workq_job *job)
{
	struct ccall *c = (struct ccall *)job;
	Boltseal__V1__CreateAuthorityResponse r = BOLTSEAL__V1__CREATE_AUTHORITY_RESPONSE__INIT;

	if (c->rc == BS_ERR_EXISTS) {
		certs_fail(c, GRPC_STATUS_ALREADY_EXISTS, "this key has its CA certificate already "
		    "(GetAuthority)");
		return;
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot keep the certificate: %s",
		    bs_strerror(c->rc));
		return;
	}
	rpc_call_audit_event(c->base.call, "ca_created");
	/* its first CRL at once, so that the TLS layer can trust the CA from now on */
	if (c->base.st != NULL && c->base.st->timer != NULL)
		certs_crl_refresh(c->base.st, c->key);
	r.authority = &c->a;
	rpc_call_finish_pb(c->base.call, &r.base);
	ccall_free(c);
}

/* The finished certificate into c->a (and its packed row). */
static int
describe(struct ccall *c, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m = NULL;
	int rc = BS_ERR_NOMEM;

	if (b == NULL || certs_pem_sha(x, &c->pem, c->sha) != 0)
		goto out;
	/* the subject in RFC 2253 form */
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0 ||
	    BIO_get_mem_ptr(b, &m) != 1 || m->length >= sizeof(c->subject))
		goto out;
	memcpy(c->subject, m->data, m->length);
	c->subject[m->length] = '\0';
	boltseal__v1__authority__init(&c->a);
	c->a.key_name = c->key;
	c->a.key_version = c->version;
	c->a.certificate_pem = c->pem;
	c->a.serial_hex = c->serial;
	c->a.subject = c->subject;
	c->a.sha256 = c->sha;
	if (certs_validity(x, &c->a.not_before_unix, &c->a.not_after_unix) != 0)
		goto out;
	c->row_len = boltseal__v1__authority__get_packed_size(&c->a);
	if (c->row_len > STORE_DATA_MAX) {
		rc = BS_ERR_TOO_BIG;
		goto out;
	}
	if ((c->row_data = malloc(c->row_len)) == NULL)
		goto out;
	boltseal__v1__authority__pack(&c->a, c->row_data);
	rc = 0;
out:
	BIO_free(b);
	return rc;
}

/* The HSM answered: assemble, check, describe, keep. */
static void
signed_cb(void *arg, struct keyop_answer *ans)
{
	struct ccall *c = arg;
	uint8_t der[ECDSA_P256_DER_MAX];
	size_t dlen = 0;
	const char *msg = NULL;
	X509 *x = NULL;
	int st, rc;

	if ((st = certs_sig_der(c->base.svc, c->base.call, ans, der, &dlen, &msg)) != 0) {
		certs_fail(c, st, "%s", msg);
		return;
	}
	if (x509_signed_cert(c->tbs, c->tbs_len, der, dlen, c->pub, &x) != 0) {
		/* the HSM's signature does not verify with the catalog's public key */
		certs_fail(c, GRPC_STATUS_INTERNAL, "the CA certificate's signature does not verify");
		return;
	}
	rc = describe(c, x);
	X509_free(x);
	/* the record's facts before the commit (its event once committed): nothing fails after */
	if (rc == 0) {
		if (rpc_call_audit_field(c->base.call, "serial", c->serial) != 0 ||
		    rpc_call_audit_field(c->base.call, "cert_sha256", c->sha) != 0)
			rc = BS_ERR_NOMEM;
	}
	if (rc != 0) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (certs_submit(c, store_work, store_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

static void
create_authority(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__CreateAuthorityRequest *r =
	    (const Boltseal__V1__CreateAuthorityRequest *)msg;
	const struct catalog_key *k;
	const struct catalog_version *v;
	const unsigned char *p;
	unsigned days = r->lifetime_days != 0 ? r->lifetime_days : LIFETIME_DEFAULT;
	struct ccall *c;

	if ((c = ccall_start(call, OP_CREATE, r->key_name)) == NULL)
		return;
	if (!certs_authorize_key(c, c->key, NULL, 0, &k))
		return;
	if (!cn_valid(r->common_name) || days > LIFETIME_MAX) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "common_name: 1 to 64 bytes of UTF-8 without "
		    "control characters; lifetime_days: 0 (3650) to 7300");
		return;
	}
	if (k == NULL) {
		certs_fail(c, GRPC_STATUS_NOT_FOUND, "no such key");
		return;
	}
	if (k->purpose != BS_PURPOSE_CA || k->alg != BS_ALG_ECDSA_P256_SHA256) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "not a CA key (purpose CA, "
		    "ECDSA_P256_SHA256)");
		return;
	}
	if ((v = catalog_key_primary(k)) == NULL || !catalog_version_usable(k, v)) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the key has no usable version");
		return;
	}
	c->version = v->version;
	rpc_call_audit_key(call, c->key, v->version);
	p = v->spki;
	if ((c->pub = d2i_PUBKEY(NULL, &p, (long)v->spki_len)) == NULL ||
	    build_ca(c, r->common_name, days) != 0 ||
	    x509_tbs_ecdsa(c->tmpl, &c->tbs, &c->tbs_len) != 0) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "cannot build the certificate");
		return;
	}
	if (certs_sign_tbs(c->base.svc, c->key, v, c->tbs, c->tbs_len, signed_cb, c) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

/* ---- GetAuthority -------------------------------------------------------------------- */

static void
read_work(struct workq_job *job, void *ctx)
{
	struct ccall *c = (struct ccall *)job;
	struct store_txn *tx;

	(void)ctx;
	if ((c->rc = store_begin_read(c->base.svc->store, &tx)) != 0)
		return;
	c->rc = certs_read_pb(tx, c->row, &boltseal__v1__authority__descriptor,
	    (ProtobufCMessage **)&c->got, NULL);
	store_rollback(tx);
}

static void
read_done(struct workq_job *job)
{
	struct ccall *c = (struct ccall *)job;
	Boltseal__V1__GetAuthorityResponse r = BOLTSEAL__V1__GET_AUTHORITY_RESPONSE__INIT;

	if (c->rc == BS_ERR_NOT_FOUND) {
		certs_fail(c, GRPC_STATUS_NOT_FOUND, "no CA certificate for this key (CreateAuthority)");
		return;
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot read the certificate");
		return;
	}
	r.authority = c->got;
	rpc_call_finish_pb(c->base.call, &r.base);
	ccall_free(c);
}

static void
get_authority(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetAuthorityRequest *r = (const Boltseal__V1__GetAuthorityRequest *)msg;
	struct ccall *c;

	if ((c = ccall_start(call, OP_GET, r->key_name)) == NULL)
		return;
	if (!certs_authorize_key(c, c->key, NULL, 0, NULL))
		return;
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

static const struct rpc_method methods[] = {
	{ "CreateAuthority", &boltseal__v1__create_authority_request__descriptor,
	    &boltseal__v1__create_authority_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    create_authority },
	{ "GetAuthority", &boltseal__v1__get_authority_request__descriptor,
	    &boltseal__v1__get_authority_response__descriptor, RPC_AUTHZ_POLICY, 0, get_authority },
	{ "SetProfile", &boltseal__v1__set_profile_request__descriptor,
	    &boltseal__v1__set_profile_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_set_profile },
	{ "IssueCertificate", &boltseal__v1__issue_certificate_request__descriptor,
	    &boltseal__v1__issue_certificate_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_issue },
	{ "RenewCertificate", &boltseal__v1__renew_certificate_request__descriptor,
	    &boltseal__v1__renew_certificate_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_renew },
	{ "RevokeCertificate", &boltseal__v1__revoke_certificate_request__descriptor,
	    &boltseal__v1__revoke_certificate_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_revoke },
	{ "GetCrl", &boltseal__v1__get_crl_request__descriptor,
	    &boltseal__v1__get_crl_response__descriptor, RPC_AUTHZ_POLICY, 0, certs_get_crl },
	{ "ListProfiles", &boltseal__v1__list_profiles_request__descriptor,
	    &boltseal__v1__list_profiles_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_list_profiles },
	{ "ListCertificates", &boltseal__v1__list_certificates_request__descriptor,
	    &boltseal__v1__list_certificates_response__descriptor, RPC_AUTHZ_POLICY, 0,
	    certs_list_certificates },
};

/* certs.* settings, in this order (values[] of init). */
static const struct rpc_setting settings[] = {
	/* each CA's CRL is made again when the kept one is this old (and on every revocation) */
	{ "crl_interval_s", 10, 86400, 3600, 0 },
	/* a CRL's nextUpdate - thisUpdate; at least twice crl_interval_s */
	{ "crl_validity_s", 20, 30 * 86400, 86400, 0 },
};

static int
init(void *env, const unsigned long *values, void **state, char *err, size_t errlen)
{
	struct certs_state *st;
	int rc;

	if (values[1] < 2 * values[0]) {
		snprintf(err, errlen, "certs.crl_validity_s (%lu) must be at least twice "
		    "certs.crl_interval_s (%lu), so that a CRL is replaced well before it expires",
		    values[1], values[0]);
		return BS_ERR_CONFIG;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return BS_ERR_NOMEM;
	}
	st->svc = env;
	st->crl_interval_s = (int64_t)values[0];
	st->crl_validity_s = (int64_t)values[1];
	if ((rc = certs_publisher_start(st, err, errlen)) != 0) {
		free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static void
fini(void *state)
{
	certs_publisher_stop(state);
	free(state);
}

const struct rpc_service certificate_service = {
	.name = "boltseal.v1.CertificateService",
	.methods = methods,
	.nmethods = sizeof(methods) / sizeof(methods[0]),
	.section = "certs",
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = init,
	.fini = fini,
};
