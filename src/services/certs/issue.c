/*
 * issue.c - CertificateService/SetProfile and IssueCertificate (certs.proto,
 * docs/identity.md). A profile (store row "profile/NAME") decides what an
 * issued certificate says: its CA, its URI SAN, its longest lifetime and
 * whether the subject must be an active registered vehicle. The CSR
 * (PKCS#10, RFC 2986) contributes its public key only, after its own
 * signature (proof of possession) verified; its subject, extensions and
 * anything else it asks for are ignored. Each issued certificate is kept
 * under its serial ("serial/HEX", created once), found by its thumbprint
 * ("thumb/SHA256HEX": the serial), noted in the vehicle's registry record
 * for a VEHICLE profile (registry.h, vehicle_note_certificate), all in one
 * transaction, and audited.
 *
 * RenewCertificate is IssueCertificate for the caller's own certificate:
 * the one its mutual-TLS connection presented (found by thumbprint) names
 * the profile and the subject; it must not be revoked or expired.
 *
 * IssueCertificate: loop (CSR, policy) -> worker (profile, CA, vehicle)
 * -> loop (the TBS) -> HSM (signature) -> loop (assembly, check) -> worker
 * (the rows) -> loop (answer).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/hex.h"
#include "exec/workq.h"
#include "formats/csr.h"
#include "formats/ecdsa_sig.h"
#include "formats/x509_signed.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/certs/certs_int.h"
#include "services/services.h"
#include "services/vehicles/registry.h"
#include "store/store.h"
#include "types/types.h"

#define PROFILE_NAME_MAX 32
#define URI_PREFIX_MAX 200
#define LIFETIME_HOURS_MAX 8760u

struct icall {
	struct certs_call base;         /* first */
	int rc;
	char row[PROFILE_NAME_MAX + 40];
	uint8_t *row_data;              /* to store */
	size_t row_len;
	/* IssueCertificate */
	char profile[PROFILE_NAME_MAX + 1];
	char subject[VEHICLE_ID_MAX + 1];
	unsigned hours;                 /* asked for; 0: the profile's maximum */
	EVP_PKEY *subject_key;          /* from the CSR */
	Boltseal__V1__Profile *prof;    /* read */
	Boltseal__V1__Authority *ca;    /* read */
	int vehicle_status;             /* read (VEHICLE profiles) */
	int no_ca;                      /* read: the profile's CA has no certificate */
	X509 *ca_cert;
	EVP_PKEY *ca_pub;
	uint8_t *tbs;
	size_t tbs_len;
	char serial[CERTS_SERIAL_HEX + 1];
	char uri[URI_PREFIX_MAX + VEHICLE_ID_MAX + 1];
	char sha[65];
	char *pem;
	Boltseal__V1__IssuedCertificate out;
	/* RenewCertificate */
	int renew;
	char presented[65];             /* the connection's certificate (hex SHA-256) */
	char renewed_from[CERTS_SERIAL_HEX + 1];
	char why[256];                  /* a refusal found on a worker */
	int why_status;
};

static void
icall_free(void *arg)
{
	struct icall *c = arg;

	free(c->row_data);
	EVP_PKEY_free(c->subject_key);
	if (c->prof != NULL)
		boltseal__v1__profile__free_unpacked(c->prof, NULL);
	if (c->ca != NULL)
		boltseal__v1__authority__free_unpacked(c->ca, NULL);
	X509_free(c->ca_cert);
	EVP_PKEY_free(c->ca_pub);
	OPENSSL_free(c->tbs);
	OPENSSL_free(c->pem);
	free(c);
}


static struct icall *
icall_new(struct rpc_call *call)
{
	struct icall *c = certs_call_new(call, sizeof(*c), icall_free);

	if (c != NULL)
		boltseal__v1__issued_certificate__init(&c->out);
	return c;
}

/* 1..PROFILE_NAME_MAX of [a-z0-9-]. */
static int
profile_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PROFILE_NAME_MAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/*
 * A URI prefix: 1..URI_PREFIX_MAX characters a URI may hold unescaped
 * (no ',' or spaces, which OpenSSL's extension syntax would split on), with
 * a scheme ("x://"), ending with '/'.
 */
static int
uri_prefix_valid(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789:/._~%+-";
	size_t n = strlen(s);

	return n > 0 && n <= URI_PREFIX_MAX && strspn(s, ok) == n && strstr(s, "://") != NULL &&
	    strstr(s, "://") != s && s[n - 1] == '/';
}

/* ---- SetProfile ---------------------------------------------------------------------- */

/* Worker: the profile's row, created or replaced. */
static void
profile_work(struct workq_job *job, void *ctx)
{
	struct icall *c = (struct icall *)job;

	(void)ctx;
	c->rc = certs_put_row(c->base.svc, c->row, c->row_data, c->row_len, 0);
}

static void
profile_done(struct workq_job *job)
{
	struct icall *c = (struct icall *)job;
	Boltseal__V1__SetProfileResponse r = BOLTSEAL__V1__SET_PROFILE_RESPONSE__INIT;

	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot keep the profile: %s",
		    bs_strerror(c->rc));
		return;
	}
	rpc_call_audit_event(c->base.call, "profile_set");
	r.profile = c->prof;
	rpc_call_finish_pb(c->base.call, &r.base);
	icall_free(c);
}

void
certs_set_profile(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__SetProfileRequest *r = (const Boltseal__V1__SetProfileRequest *)msg;
	const Boltseal__V1__Profile *p = r->profile;
	Boltseal__V1__Profile clean;
	const struct catalog_key *k;
	struct policy_attr attr;
	char hours[16];
	struct icall *c;

	if ((c = icall_new(call)) == NULL)
		return;
	if (p == NULL || !profile_name_valid(p->name) || p->ca_key_name[0] == '\0' ||
	    strlen(p->ca_key_name) > CATALOG_NAME_MAX || p->kind < BOLTSEAL__V1__PROFILE_KIND__VEHICLE ||
	    p->kind > BOLTSEAL__V1__PROFILE_KIND__SERVICE || !uri_prefix_valid(p->uri_prefix) ||
	    p->max_lifetime_hours == 0 || p->max_lifetime_hours > LIFETIME_HOURS_MAX) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "profile: name 1..32 of [a-z0-9-], "
		    "ca_key_name, kind VEHICLE, GATEWAY or SERVICE, uri_prefix like "
		    "\"spiffe://fleet.example/vehicle/\" (a scheme, no ',' or spaces, ending with "
		    "'/'), max_lifetime_hours 1..8760");
		return;
	}
	rpc_call_audit_target(call, p->name);
	attr = (struct policy_attr){ "request.profile", p->name };
	if (!certs_authorize_key(c, p->ca_key_name, &attr, 1, &k))
		return;
	if (k == NULL || k->purpose != BS_PURPOSE_CA) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "ca_key_name: %s", k == NULL ? "no such key" :
		    "not a CA key");
		return;
	}
	snprintf(c->row, sizeof(c->row), "profile/%s", p->name);
	/* what was checked, and nothing else (no unknown fields kept) */
	boltseal__v1__profile__init(&clean);
	clean.name = p->name;
	clean.ca_key_name = p->ca_key_name;
	clean.kind = p->kind;
	clean.uri_prefix = p->uri_prefix;
	clean.max_lifetime_hours = p->max_lifetime_hours;
	c->row_len = boltseal__v1__profile__get_packed_size(&clean);
	if ((c->row_data = malloc(c->row_len > 0 ? c->row_len : 1)) == NULL ||
	    (boltseal__v1__profile__pack(&clean, c->row_data),
	    (c->prof = boltseal__v1__profile__unpack(NULL, c->row_len, c->row_data)) == NULL)) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(hours, sizeof(hours), "%u", p->max_lifetime_hours);
	if (rpc_call_audit_field(call, "ca_key", p->ca_key_name) != 0 ||
	    rpc_call_audit_field(call, "uri_prefix", p->uri_prefix) != 0 ||
	    rpc_call_audit_field(call, "max_lifetime_hours", hours) != 0) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (certs_submit(c, profile_work, profile_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

/* ---- IssueCertificate: reading -------------------------------------------------------- */

static int refuse(struct icall *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Worker, refusing: c->why and the status to answer. Returns BS_ERR_PRECONDITION. */
static int
refuse(struct icall *c, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->why_status = status;
	return BS_ERR_PRECONDITION;
}

/*
 * Worker, RenewCertificate: the presented certificate's record names the
 * profile and the subject. 0, a refusal (c->why), or the store's errors.
 */
static int
renewal_read(struct icall *c, struct store_txn *tx)
{
	Boltseal__V1__IssuedCertificate *ic = NULL;
	char row[80], serial[CERTS_SERIAL_HEX + 8];
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t ver;
	int rc;

	snprintf(row, sizeof(row), "thumb/%s", c->presented);
	rc = store_row_get(tx, CERTS_NS, row, &data, &len, &ver);
	if (rc == BS_ERR_NOT_FOUND)
		return refuse(c, GRPC_STATUS_FAILED_PRECONDITION, "the certificate this connection "
		    "presented (sha256 %s) was not issued by this service: only its certificates "
		    "renew (IssueCertificate makes the first)", c->presented);
	if (rc != 0)
		return rc;
	if (len != CERTS_SERIAL_HEX) {
		free(data);
		return BS_ERR_INTERNAL;
	}
	memcpy(c->renewed_from, data, CERTS_SERIAL_HEX);
	c->renewed_from[CERTS_SERIAL_HEX] = '\0';
	free(data);
	snprintf(serial, sizeof(serial), "serial/%s", c->renewed_from);
	if ((rc = certs_read_pb(tx, serial, &boltseal__v1__issued_certificate__descriptor,
	    (ProtobufCMessage **)&ic, NULL)) != 0)
		return rc == BS_ERR_NOT_FOUND ? BS_ERR_INTERNAL : rc;
	if (ic->revoked_at_unix != 0)
		rc = refuse(c, GRPC_STATUS_PERMISSION_DENIED, "certificate %s is revoked: it cannot "
		    "renew", c->renewed_from);
	else if (ic->not_after_unix <= (int64_t)time(NULL))
		rc = refuse(c, GRPC_STATUS_PERMISSION_DENIED, "certificate %s has expired: it cannot "
		    "renew", c->renewed_from);
	else if (strlen(ic->profile) > PROFILE_NAME_MAX || !vehicle_id_valid(ic->subject_id))
		rc = BS_ERR_INTERNAL;
	else {
		snprintf(c->profile, sizeof(c->profile), "%s", ic->profile);
		snprintf(c->subject, sizeof(c->subject), "%s", ic->subject_id);
	}
	boltseal__v1__issued_certificate__free_unpacked(ic, NULL);
	return rc;
}

/* Worker: the profile, its CA's certificate, and (VEHICLE) the vehicle's status. */
static void
read_work(struct workq_job *job, void *ctx)
{
	struct icall *c = (struct icall *)job;
	struct store_txn *tx;
	char row[CATALOG_NAME_MAX + 8];
	uint64_t rv;
	json_t *rec = NULL;

	(void)ctx;
	if ((c->rc = store_begin_read(c->base.svc->store, &tx)) != 0)
		return;
	if (c->renew && (c->rc = renewal_read(c, tx)) != 0)
		goto out;
	snprintf(row, sizeof(row), "profile/%s", c->profile);
	if ((c->rc = certs_read_pb(tx, row, &boltseal__v1__profile__descriptor,
	    (ProtobufCMessage **)&c->prof, NULL)) != 0)
		goto out;
	snprintf(row, sizeof(row), "ca/%s", c->prof->ca_key_name);
	if ((c->rc = certs_read_pb(tx, row, &boltseal__v1__authority__descriptor,
	    (ProtobufCMessage **)&c->ca, NULL)) != 0) {
		c->no_ca = c->rc == BS_ERR_NOT_FOUND;
		goto out;
	}
	if (c->prof->kind == BOLTSEAL__V1__PROFILE_KIND__VEHICLE) {
		int rc = vehicle_read(tx, c->subject, 0, &rec, &rv);

		c->vehicle_status = rc == 0 ? vehicle_status_of(rec) : 0;
		json_decref(rec);
		if (rc != 0 && rc != BS_ERR_NOT_FOUND)
			c->rc = rc;
	}
out:
	store_rollback(tx);
}

/* The leaf to be: what the profile says, the CSR's key. */
static int
build_leaf(struct icall *c, unsigned hours, X509 **out)
{
	X509_NAME *n = NULL;
	X509V3_CTX v3;
	X509 *x;
	time_t now = time(NULL), end;
	int64_t ca_nb, ca_na;
	char san[sizeof(c->uri) + 8];
	int rc = BS_ERR_CRYPTO;

	*out = NULL;
	if (certs_validity(c->ca_cert, &ca_nb, &ca_na) != 0)
		return BS_ERR_INVALID;
	/* a CA not yet or no longer valid issues nothing */
	if (ca_nb > (int64_t)now || ca_na <= (int64_t)now + CERTS_BACKDATE_S)
		return BS_ERR_PRECONDITION;
	end = now + (time_t)hours * 3600;
	if ((int64_t)end > ca_na)
		end = (time_t)ca_na;   /* never past the CA's own end */
	snprintf(c->uri, sizeof(c->uri), "%s%s", c->prof->uri_prefix, c->subject);
	snprintf(san, sizeof(san), "URI:%s", c->uri);
	if ((x = X509_new()) == NULL || (n = X509_NAME_new()) == NULL)
		goto out;
	if (certs_set_serial(x, c->serial) != 0 || X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)CERTS_ORG, -1,
	    -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)c->subject,
	    -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(c->ca_cert)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -CERTS_BACKDATE_S) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)(end - now), &now) == NULL ||
	    X509_set_pubkey(x, c->subject_key) != 1)
		goto out;
	X509V3_set_ctx(&v3, c->ca_cert, x, NULL, NULL, 0);
	if (certs_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    certs_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") != 0 ||
	    certs_add_ext(x, &v3, NID_ext_key_usage, "clientAuth") != 0 ||
	    certs_add_ext(x, &v3, NID_subject_alt_name, san) != 0 ||
	    certs_add_ext(x, &v3, NID_subject_key_identifier, "hash") != 0 ||
	    certs_add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") != 0)
		goto out;
	*out = x;
	x = NULL;
	rc = 0;
out:
	X509_NAME_free(n);
	X509_free(x);
	return rc;
}

static void issued_cb(void *arg, struct keyop_answer *a);

/* Loop: what was read decides; then the TBS goes to the HSM. */
static void
read_done(struct workq_job *job)
{
	struct icall *c = (struct icall *)job;
	const struct catalog_version *v;
	unsigned hours;
	X509 *leaf = NULL;
	int rc;

	if (c->why[0] != '\0') {
		certs_fail(c, c->why_status, "%s", c->why);
		return;
	}
	if (c->renew) {
		rpc_call_audit_target(c->base.call, c->subject);
		if (rpc_call_audit_field(c->base.call, "renewed_from", c->renewed_from) != 0) {
			certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	if (c->rc == BS_ERR_NOT_FOUND && c->no_ca) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the profile's CA key '%s' has no CA "
		    "certificate (CreateAuthority)", c->prof->ca_key_name);
		return;
	}
	if (c->rc == BS_ERR_NOT_FOUND) {
		certs_fail(c, GRPC_STATUS_NOT_FOUND, "no profile '%s'", c->profile);
		return;
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot read the profile: %s", bs_strerror(c->rc));
		return;
	}
	if (c->prof->kind == BOLTSEAL__V1__PROFILE_KIND__VEHICLE &&
	    c->vehicle_status != VEHICLE_ACTIVE) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, c->vehicle_status == 0 ?
		    "vehicle '%s' is not registered" : "vehicle '%s' is not active", c->subject);
		return;
	}
	hours = c->hours != 0 ? c->hours : c->prof->max_lifetime_hours;
	if (hours > c->prof->max_lifetime_hours) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "lifetime_hours: longer than profile '%s' "
		    "allows", c->profile);
		return;
	}
	if (!certs_ca_signer(c, c->prof->ca_key_name, c->ca, &v, &c->ca_cert, &c->ca_pub))
		return;
	rc = build_leaf(c, hours, &leaf);
	if (rc == 0)
		rc = x509_tbs_ecdsa(leaf, &c->tbs, &c->tbs_len);
	X509_free(leaf);
	if (rc == BS_ERR_PRECONDITION) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the CA certificate of '%s' is not valid "
		    "now (expired, or not yet valid)", c->prof->ca_key_name);
		return;
	}
	if (rc != 0) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "cannot build the certificate");
		return;
	}
	if (certs_sign_tbs(c->base.svc, c->prof->ca_key_name, v, c->tbs, c->tbs_len, issued_cb, c) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

/* ---- IssueCertificate: signed, kept, answered ------------------------------------------ */

/* Worker, in c's record transaction: the vehicle's registry record notes the certificate. */
static int
note_vehicle(struct icall *c, struct store_txn *tx, int64_t now)
{
	json_t *prev = NULL, *rec = NULL;
	uint8_t *spki = NULL;
	uint64_t rowv = 0;
	size_t len = 0;
	int rc;

	if ((rc = certs_pem_spki(c->pem, &spki, &len)) != 0)
		goto out;
	rc = vehicle_read(tx, c->subject, 0, &prev, &rowv);
	if (rc == BS_ERR_NOT_FOUND || (rc == 0 && vehicle_status_of(prev) != VEHICLE_ACTIVE)) {
		rc = refuse(c, GRPC_STATUS_FAILED_PRECONDITION, "vehicle '%s' is no longer registered "
		    "and active", c->subject);
		goto out;
	}
	if (rc != 0)
		goto out;
	if ((rec = json_deep_copy(prev)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	rc = vehicle_note_certificate(rec, spki, len, c->sha, c->out.not_before_unix,
	    c->out.not_after_unix, now, c->why, sizeof(c->why));
	if (rc == BS_ERR_PRECONDITION || rc == BS_ERR_INVALID) {
		c->why_status = GRPC_STATUS_FAILED_PRECONDITION;
		rc = BS_ERR_PRECONDITION;
		goto out;
	}
	if (rc == 0 && (rc = vehicle_write(tx, prev, rec, rowv, now)) == BS_ERR_PRECONDITION)
		rc = refuse(c, GRPC_STATUS_ABORTED, "vehicle '%s' changed meanwhile; ask again",
		    c->subject);
out:
	json_decref(prev);
	json_decref(rec);
	OPENSSL_free(spki);
	return rc;
}

/*
 * Worker, in the record transaction of a renewal: the certificate presented
 * is still not revoked (a revocation may have landed since it was read).
 */
static int
still_renewable(struct icall *c, struct store_txn *tx)
{
	Boltseal__V1__IssuedCertificate *ic = NULL;
	char row[CERTS_SERIAL_HEX + 8];
	int rc;

	snprintf(row, sizeof(row), "serial/%s", c->renewed_from);
	if ((rc = certs_read_pb(tx, row, &boltseal__v1__issued_certificate__descriptor,
	    (ProtobufCMessage **)&ic, NULL)) != 0)
		return rc == BS_ERR_NOT_FOUND ? BS_ERR_INTERNAL : rc;
	if (ic->revoked_at_unix != 0)
		rc = refuse(c, GRPC_STATUS_PERMISSION_DENIED, "certificate %s was revoked meanwhile: "
		    "it cannot renew", c->renewed_from);
	boltseal__v1__issued_certificate__free_unpacked(ic, NULL);
	return rc;
}

/* Worker: the serial's row, the thumbprint's, and (VEHICLE) the registry, at once. */
static void
record_work(struct workq_job *job, void *ctx)
{
	struct icall *c = (struct icall *)job;
	struct store_txn *tx;
	char thumb[80];
	int rc;

	(void)ctx;
	if ((rc = store_begin(c->base.svc->store, &tx)) != 0) {
		c->rc = rc;
		return;
	}
	snprintf(thumb, sizeof(thumb), "thumb/%s", c->sha);
	rc = store_row_put(tx, CERTS_NS, c->row, 0, c->row_data, c->row_len, NULL);
	if (rc == 0)
		rc = store_row_put(tx, CERTS_NS, thumb, 0, (const uint8_t *)c->serial,
		    CERTS_SERIAL_HEX, NULL);
	if (rc == 0 && c->renew)
		rc = still_renewable(c, tx);
	if (rc == 0 && c->prof->kind == BOLTSEAL__V1__PROFILE_KIND__VEHICLE)
		rc = note_vehicle(c, tx, (int64_t)time(NULL));
	if (rc == 0)
		rc = store_commit(tx);
	else
		store_rollback(tx);
	c->rc = rc;
}

static void
recorded_done(struct workq_job *job)
{
	struct icall *c = (struct icall *)job;

	if (c->why[0] != '\0') {
		certs_fail(c, c->why_status, "%s", c->why);
		return;
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot record the certificate: %s",
		    bs_strerror(c->rc));
		return;
	}
	if (c->prof->kind == BOLTSEAL__V1__PROFILE_KIND__VEHICLE)
		vehicle_registry_changed(c->subject);
	c->out.ca_certificate_pem = c->ca->certificate_pem;
	if (c->renew) {
		Boltseal__V1__RenewCertificateResponse r = BOLTSEAL__V1__RENEW_CERTIFICATE_RESPONSE__INIT;

		rpc_call_audit_event(c->base.call, "certificate_renewed");
		r.certificate = &c->out;
		rpc_call_finish_pb(c->base.call, &r.base);
	} else {
		Boltseal__V1__IssueCertificateResponse r = BOLTSEAL__V1__ISSUE_CERTIFICATE_RESPONSE__INIT;

		rpc_call_audit_event(c->base.call, "certificate_issued");
		r.certificate = &c->out;
		rpc_call_finish_pb(c->base.call, &r.base);
	}
	icall_free(c);
}

static void
issued_cb(void *arg, struct keyop_answer *a)
{
	struct icall *c = arg;
	uint8_t der[ECDSA_P256_DER_MAX];
	size_t dlen = 0;
	const char *msg = NULL;
	X509 *x = NULL;
	char na[24];
	int st;

	if ((st = certs_sig_der(c->base.svc, c->base.call, a, der, &dlen, &msg)) != 0) {
		certs_fail(c, st, "%s", msg);
		return;
	}
	if (x509_signed_cert(c->tbs, c->tbs_len, der, dlen, c->ca_pub, &x) != 0) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "the certificate's signature does not verify with the "
		    "CA's key");
		return;
	}
	st = certs_pem_sha(x, &c->pem, c->sha) != 0 ||
	    certs_validity(x, &c->out.not_before_unix, &c->out.not_after_unix) != 0;
	X509_free(x);
	if (st) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	c->out.certificate_pem = c->pem;
	c->out.serial_hex = c->serial;
	c->out.subject_uri = c->uri;
	c->out.sha256 = c->sha;
	c->out.profile = c->profile;
	c->out.subject_id = c->subject;
	c->out.ca_key_name = c->prof->ca_key_name;
	if (c->renew)
		c->out.renewed_from_serial_hex = c->renewed_from;
	/* the record kept under the serial: all of it but the CA's certificate */
	snprintf(c->row, sizeof(c->row), "serial/%s", c->serial);
	c->row_len = boltseal__v1__issued_certificate__get_packed_size(&c->out);
	if ((c->row_data = malloc(c->row_len)) == NULL) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	boltseal__v1__issued_certificate__pack(&c->out, c->row_data);
	/* the record's facts before the commit (its event once committed): nothing fails after */
	snprintf(na, sizeof(na), "%lld", (long long)c->out.not_after_unix);
	if (rpc_call_audit_field(c->base.call, "serial", c->serial) != 0 ||
	    rpc_call_audit_field(c->base.call, "cert_sha256", c->sha) != 0 ||
	    rpc_call_audit_field(c->base.call, "profile", c->profile) != 0 ||
	    rpc_call_audit_field(c->base.call, "subject_uri", c->uri) != 0 ||
	    rpc_call_audit_field(c->base.call, "not_after", na) != 0) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (certs_submit(c, record_work, recorded_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

/*
 * The CSR's key (proof of possession checked) into c->subject_key, an EC
 * point uncompressed (the form the registry keeps). 0, or 1 with c
 * answered (INVALID_ARGUMENT) and freed.
 */
static int
csr_key(struct icall *c, const char *pem)
{
	const char *why = NULL;

	if (csr_public_key(pem, strlen(pem), &c->subject_key, &why) != 0) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
		return 1;
	}
	if (EVP_PKEY_get_base_id(c->subject_key) == EVP_PKEY_EC &&
	    EVP_PKEY_set_utf8_string_param(c->subject_key, "point-format", "uncompressed") != 1) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "cannot take the CSR's key");
		return 1;
	}
	return 0;
}

void
certs_issue(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__IssueCertificateRequest *r =
	    (const Boltseal__V1__IssueCertificateRequest *)msg;
	struct policy_attr attrs[2];
	struct icall *c;

	if ((c = icall_new(call)) == NULL)
		return;
	if (!profile_name_valid(r->profile) || !vehicle_id_valid(r->subject_id) ||
	    r->lifetime_hours > LIFETIME_HOURS_MAX) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "profile: 1..32 of [a-z0-9-]; subject_id: 1..64 "
		    "of [A-Za-z0-9._-], starting alphanumeric; lifetime_hours: 0..8760");
		return;
	}
	snprintf(c->profile, sizeof(c->profile), "%s", r->profile);
	snprintf(c->subject, sizeof(c->subject), "%s", r->subject_id);
	c->hours = r->lifetime_hours;
	rpc_call_audit_target(call, c->subject);
	attrs[0] = (struct policy_attr){ "request.profile", c->profile };
	attrs[1] = (struct policy_attr){ "request.subject_id", c->subject };
	if (!rpc_call_authorize(call, NULL, NULL, attrs, 2)) {
		icall_free(c);
		return;
	}
	if (csr_key(c, r->csr_pem))
		return;
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

void
certs_renew(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RenewCertificateRequest *r =
	    (const Boltseal__V1__RenewCertificateRequest *)msg;
	const uint8_t *presented = rpc_call_cert_sha256(call);
	struct icall *c;

	if ((c = icall_new(call)) == NULL)
		return;
	if (r->lifetime_hours > LIFETIME_HOURS_MAX) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "lifetime_hours: 0..8760");
		return;
	}
	if (!rpc_call_authorize(call, NULL, NULL, NULL, 0)) {
		icall_free(c);
		return;
	}
	if (presented == NULL) {
		certs_fail(c, GRPC_STATUS_UNAUTHENTICATED, "no client certificate on this connection");
		return;
	}
	bs_hex_encode(presented, 32, c->presented);
	c->renew = 1;
	c->hours = r->lifetime_hours;
	if (csr_key(c, r->csr_pem))
		return;
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}
