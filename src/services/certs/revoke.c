/*
 * revoke.c - CertificateService/RevokeCertificate and GetCrl (certs.proto,
 * docs/identity.md): a revoked certificate's record ("serial/HEX") is
 * marked, and a CRL of its CA (RFC 5280 section 5: v2, CRL number,
 * authority key identifier, a reason code per entry) is made at once,
 * signed by the CA key in the HSM (formats/x509_signed.h), checked, and
 * kept ("crl/KEY", its number in the counter "crlnum/KEY"). GetCrl answers
 * the kept CRL, or makes a new one when there is none or it is
 * certs.crl_interval_s old. The same path serves the CRL publisher
 * (crl_publish.c; no call): a new CRL when the kept one is that old, and
 * with ca_crl_dir the kept CRL written there for the TLS layer, after every
 * new CRL (a revocation's included) and whenever the file differs.
 *
 * One CRL: worker (the CA, every revoked certificate of it, the number)
 * -> loop (the TBSCertList) -> HSM (signature) -> loop (assembly, check)
 * -> worker (kept, number raised) -> loop (answer). The revoked entries
 * are found by walking every issued certificate's row (fine for thousands;
 * an index per CA is the next step at fleet scale).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/auditlog.h"
#include "common/hex.h"
#include "common/log.h"
#include "exec/workq.h"
#include "formats/ecdsa_sig.h"
#include "formats/x509_signed.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/certs/certs_int.h"
#include "services/services.h"
#include "services/vehicles/registry.h"
#include "store/store.h"
#include "types/types.h"

#define CRL_PEM_MAX (STORE_DATA_MAX - 1024)

struct entry {
	uint8_t serial[CERTS_SERIAL_LEN];
	int64_t revoked_at;
	uint32_t reason;
};

struct rcall {
	struct certs_call base;         /* first */
	int revoke;                     /* RevokeCertificate (else GetCrl, or the publisher) */
	int task;                       /* the publisher's (no call) */
	int fresh;                      /* task: the kept CRL is current; only its file looked at */
	int wrote;                      /* the CRL file was (re)written */
	char file_err[512];             /* why it could not be */
	uint32_t ca_version;            /* the CA key version that signs */
	uint8_t payload[32];            /* task: what the HSM signed */
	int already;                    /* revoke: it was revoked before */
	int vehicle_changed;            /* revoke: the vehicle's registry record noted it */
	int rc;
	int stage;                      /* worker: 0 read (and revoke), 1 keep the CRL */
	char key[CATALOG_NAME_MAX + 1];
	char serial[CERTS_SERIAL_HEX + 1];
	uint32_t reason;
	int64_t now;
	Boltseal__V1__IssuedCertificate *cert;  /* revoke: the record, marked */
	Boltseal__V1__Authority *ca;
	Boltseal__V1__Crl *kept;        /* the CA's kept CRL, if any */
	uint64_t kept_ver;
	uint64_t number;                /* the kept CRL number (0: none) */
	struct entry *entries;
	size_t n, cap;
	size_t seen;                    /* rows of the current page */
	char last[STORE_ID_MAX + 1];    /* the page's last row id */
	X509 *ca_cert;
	EVP_PKEY *ca_pub;
	uint8_t *tbs;
	size_t tbs_len;
	char *pem;
	Boltseal__V1__Crl crl;          /* the new CRL */
};

static void
rcall_free(void *arg)
{
	struct rcall *c = arg;

	if (c->cert != NULL)
		boltseal__v1__issued_certificate__free_unpacked(c->cert, NULL);
	if (c->ca != NULL)
		boltseal__v1__authority__free_unpacked(c->ca, NULL);
	if (c->kept != NULL)
		boltseal__v1__crl__free_unpacked(c->kept, NULL);
	free(c->entries);
	X509_free(c->ca_cert);
	EVP_PKEY_free(c->ca_pub);
	OPENSSL_free(c->tbs);
	OPENSSL_free(c->pem);
	if (c->task)
		c->base.st->inflight--;
	free(c);
}

/* Worker: the CA's CRL file after crl became the kept one (or was found current). */
static void
sync_file(struct rcall *c, const Boltseal__V1__Crl *crl)
{
	if (certs_crl_file_sync(c->base.svc, c->key, crl->crl_pem, strlen(crl->crl_pem), &c->wrote,
	    c->file_err, sizeof(c->file_err)) != 0)
		c->wrote = 0;
}

/* Loop: what the file sync gave, logged, and the TLS layer told. */
static void
file_synced(struct rcall *c)
{
	if (c->file_err[0] != '\0')
		bs_log(BS_LOG_ERROR, "the CRL file for the TLS layer is not current (retried at the "
		    "publisher's next pass)", "ca_key", c->key, "error", c->file_err, NULL);
	else if (c->wrote)
		certs_crl_file_written(c->base.svc, c->key);
}


/* ---- worker: reading (and marking) --------------------------------------------------- */

/* store_row_foreach: the revoked certificates of c->key. */
static int
collect(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct rcall *c = arg;
	Boltseal__V1__IssuedCertificate *ic;
	struct entry *ne;
	int rc = 0;

	(void)version;
	c->seen++;
	snprintf(c->last, sizeof(c->last), "%s", id);
	if ((ic = boltseal__v1__issued_certificate__unpack(NULL, len, data)) == NULL)
		return BS_ERR_INTERNAL;
	if (ic->revoked_at_unix > 0 && strcmp(ic->ca_key_name, c->key) == 0) {
		if (c->n == c->cap) {
			c->cap = c->cap > 0 ? 2 * c->cap : 64;
			if ((ne = realloc(c->entries, c->cap * sizeof(*ne))) == NULL) {
				rc = BS_ERR_NOMEM;
				goto out;
			}
			c->entries = ne;
		}
		if (strlen(ic->serial_hex) != CERTS_SERIAL_HEX || bs_hex_decode(ic->serial_hex,
		    CERTS_SERIAL_HEX, c->entries[c->n].serial, CERTS_SERIAL_LEN, 0) != 0) {
			rc = BS_ERR_INTERNAL;
			goto out;
		}
		c->entries[c->n].revoked_at = ic->revoked_at_unix;
		c->entries[c->n].reason = ic->revocation_reason;
		c->n++;
	}
out:
	boltseal__v1__issued_certificate__free_unpacked(ic, NULL);
	return rc;
}

/*
 * Revoke, in mark's transaction: a VEHICLE profile's certificate is marked
 * revoked in the vehicle's registry record too (its identity entry; with
 * reason keyCompromise, every entry of that key). 0 or the store's errors.
 */
static int
note_vehicle(struct rcall *c, struct store_txn *tx)
{
	Boltseal__V1__Profile *p = NULL;
	json_t *prev = NULL, *rec = NULL;
	uint8_t *spki = NULL, h[32];
	char row[80], kid[65], why[96];
	uint64_t rowv = 0;
	size_t len = 0;
	int rc, n;

	snprintf(row, sizeof(row), "profile/%s", c->cert->profile);
	rc = certs_read_pb(tx, row, &boltseal__v1__profile__descriptor, (ProtobufCMessage **)&p, NULL);
	if (rc != 0 || p->kind != BOLTSEAL__V1__PROFILE_KIND__VEHICLE)
		goto out;
	if ((rc = vehicle_read(tx, c->cert->subject_id, 0, &prev, &rowv)) != 0)
		goto out;
	if ((rc = certs_pem_spki(c->cert->certificate_pem, &spki, &len)) != 0)
		goto out;
	if ((rec = json_deep_copy(prev)) == NULL) {
		rc = BS_ERR_NOMEM;
		goto out;
	}
	SHA256(spki, len, h);
	bs_hex_encode(h, sizeof(h), kid);
	snprintf(why, sizeof(why), "certificate %s revoked (CRLReason %u)", c->serial, c->reason);
	n = vehicle_note_revocation(rec, c->cert->sha256, c->reason == 1 ? kid : NULL, c->now, why);
	rc = n < 0 ? n : 0;
	if (n > 0 && (rc = vehicle_write(tx, prev, rec, rowv, c->now)) == 0)
		c->vehicle_changed = 1;
	else if (rc == BS_ERR_PRECONDITION)
		rc = BS_ERR_UNAVAILABLE;  /* the vehicle changed meanwhile: nothing kept, ask again */
out:
	if (rc == BS_ERR_NOT_FOUND)
		rc = 0;           /* no such profile or vehicle any more: nothing to note */
	if (p != NULL)
		boltseal__v1__profile__free_unpacked(p, NULL);
	json_decref(prev);
	json_decref(rec);
	OPENSSL_free(spki);
	return rc;
}

/* Revoke: marks the certificate (its own transaction). */
static int
mark(struct rcall *c)
{
	struct store_txn *tx;
	char row[CERTS_SERIAL_HEX + 8];
	uint8_t *buf = NULL;
	uint64_t ver = 0;
	size_t n;
	int rc;

	snprintf(row, sizeof(row), "serial/%s", c->serial);
	if ((rc = store_begin(c->base.svc->store, &tx)) != 0)
		return rc;
	rc = certs_read_pb(tx, row, &boltseal__v1__issued_certificate__descriptor,
	    (ProtobufCMessage **)&c->cert, &ver);
	if (rc == 0 && c->cert->revoked_at_unix > 0) {
		c->already = 1;
		rc = BS_ERR_PRECONDITION;
	}
	if (rc == 0) {
		c->cert->revoked_at_unix = c->now;
		c->cert->revocation_reason = c->reason;
		n = boltseal__v1__issued_certificate__get_packed_size(c->cert);
		if ((buf = malloc(n)) == NULL)
			rc = BS_ERR_NOMEM;
		else {
			boltseal__v1__issued_certificate__pack(c->cert, buf);
			rc = store_row_put(tx, CERTS_NS, row, ver, buf, n, NULL);
		}
	}
	if (rc == 0)
		rc = note_vehicle(c, tx);
	free(buf);
	if (rc == 0)
		return store_commit(tx);
	store_rollback(tx);
	return rc;
}

/* Stage 0: (revoke,) then everything a new CRL needs. */
static void
read_work(struct workq_job *job, void *ctx)
{
	struct rcall *c = (struct rcall *)job;
	struct store_txn *tx;
	char row[CATALOG_NAME_MAX + 16];
	int rc;

	(void)ctx;
	if (c->revoke) {
		if ((c->rc = mark(c)) != 0)
			return;
		snprintf(c->key, sizeof(c->key), "%s", c->cert->ca_key_name);
	}
	if ((c->rc = store_begin_read(c->base.svc->store, &tx)) != 0)
		return;
	snprintf(row, sizeof(row), "ca/%s", c->key);
	if ((rc = certs_read_pb(tx, row, &boltseal__v1__authority__descriptor,
	    (ProtobufCMessage **)&c->ca, NULL)) != 0) {
		c->rc = rc == BS_ERR_NOT_FOUND ? BS_ERR_PRECONDITION : rc;
		goto out;
	}
	snprintf(row, sizeof(row), "crl/%s", c->key);
	rc = certs_read_pb(tx, row, &boltseal__v1__crl__descriptor, (ProtobufCMessage **)&c->kept,
	    &c->kept_ver);
	if (rc != 0 && rc != BS_ERR_NOT_FOUND) {
		c->rc = rc;
		goto out;
	}
	if (c->task && c->kept != NULL &&
	    c->now < c->kept->this_update_unix + c->base.st->crl_interval_s) {
		c->fresh = 1;
		c->rc = 0;
		sync_file(c, c->kept);
		goto out;
	}
	snprintf(row, sizeof(row), "crlnum/%s", c->key);
	rc = store_counter_get(tx, CERTS_NS, row, &c->number);
	if (rc == BS_ERR_NOT_FOUND)
		c->number = 0;
	else if (rc != 0) {
		c->rc = rc;
		goto out;
	}
	/* every issued certificate, a page at a time */
	c->last[0] = '\0';
	do {
		c->seen = 0;
		if ((rc = store_row_foreach(tx, CERTS_NS, "serial/", c->last, STORE_LIST_MAX, collect,
		    c)) != 0) {
			c->rc = rc;
			goto out;
		}
	} while (c->seen == STORE_LIST_MAX);
	c->rc = 0;
out:
	store_rollback(tx);
}

/* ---- loop: the CRL to be ----------------------------------------------------------------- */

static int
add_revoked(X509_CRL *crl, const struct entry *e)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_ENUMERATED *why = NULL;
	BIGNUM *bn = BN_bin2bn(e->serial, sizeof(e->serial), NULL);
	ASN1_INTEGER *serial = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int ok = r != NULL && t != NULL && serial != NULL &&
	    X509_REVOKED_set_serialNumber(r, serial) == 1 &&
	    ASN1_TIME_set(t, (time_t)e->revoked_at) != NULL &&
	    X509_REVOKED_set_revocationDate(r, t) == 1;

	if (ok && e->reason != 0)
		ok = (why = ASN1_ENUMERATED_new()) != NULL &&
		    ASN1_ENUMERATED_set(why, (long)e->reason) == 1 &&
		    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, why, 0, 0) == 1;
	if (ok)
		ok = X509_CRL_add0_revoked(crl, r) == 1;
	if (ok)
		r = NULL;
	X509_REVOKED_free(r);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(why);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? 0 : BS_ERR_CRYPTO;
}

/* The TBSCertList of the CA's next CRL into c->tbs. */
static int
build_crl(struct rcall *c)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX v3;
	X509_EXTENSION *aki = NULL;
	int rc = BS_ERR_CRYPTO;

	if (crl == NULL || t == NULL || num == NULL ||
	    X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(c->ca_cert)) != 1 ||
	    ASN1_TIME_set(t, (time_t)c->now) == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
	    ASN1_TIME_set(t, (time_t)(c->now + c->base.st->crl_validity_s)) == NULL ||
	    X509_CRL_set1_nextUpdate(crl, t) != 1)
		goto out;
	for (size_t i = 0; i < c->n; i++)
		if (add_revoked(crl, &c->entries[i]) != 0)
			goto out;
	if (X509_CRL_sort(crl) != 1 || ASN1_INTEGER_set_uint64(num, c->number + 1) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto out;
	X509V3_set_ctx(&v3, c->ca_cert, NULL, NULL, crl, 0);
	if ((aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier,
	    "keyid:always")) == NULL || X509_CRL_add_ext(crl, aki, -1) != 1)
		goto out;
	rc = x509_crl_tbs_ecdsa(crl, &c->tbs, &c->tbs_len);
out:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return rc;
}

static void crl_signed(void *arg, struct keyop_answer *a);
static void answer(struct rcall *c, const Boltseal__V1__Crl *crl);

/* Loop, after stage 0: answer the kept CRL, or make a new one. */
static void
read_done(struct workq_job *job)
{
	struct rcall *c = (struct rcall *)job;
	const struct catalog_version *v;

	if (c->task && (c->fresh || c->rc == BS_ERR_PRECONDITION)) {
		/* current already, or a CA key without its certificate yet: nothing to make */
		if (c->fresh)
			file_synced(c);
		rcall_free(c);
		return;
	}
	if (c->rc == BS_ERR_NOT_FOUND) {
		certs_fail(c, GRPC_STATUS_NOT_FOUND, "no certificate with serial %s", c->serial);
		return;
	}
	if (c->rc == BS_ERR_PRECONDITION && c->already) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "certificate %s is revoked already",
		    c->serial);
		return;
	}
	if (c->rc == BS_ERR_PRECONDITION) {
		certs_fail(c, GRPC_STATUS_FAILED_PRECONDITION, "the CA key '%s' has no CA certificate",
		    c->key);
		return;
	}
	if (c->revoke && c->cert != NULL && !c->already && c->cert->revoked_at_unix == c->now) {
		/* marked (committed): the record says so, whatever the CRL's fate */
		if (c->vehicle_changed)
			vehicle_registry_changed(c->cert->subject_id);
		rpc_call_audit_event(c->base.call, "certificate_revoked");
		if (rpc_call_audit_field(c->base.call, "serial", c->serial) != 0)
			bs_log(BS_LOG_ERROR, "out of memory: a revocation's record lacks its serial",
			    "serial", c->serial, NULL);
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot read the CA's state: %s",
		    bs_strerror(c->rc));
		return;
	}
	/* the kept CRL while fresh, unless a revocation is missing from it (one whose CRL failed) */
	if (!c->revoke && !c->task && c->kept != NULL && c->kept->revoked == c->n &&
	    c->now < c->kept->this_update_unix + c->base.st->crl_interval_s) {
		answer(c, c->kept);
		return;
	}
	if (!certs_ca_signer(c, c->key, c->ca, &v, &c->ca_cert, &c->ca_pub))
		return;
	c->ca_version = v->version;
	if (build_crl(c) != 0) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "cannot build the CRL");
		return;
	}
	if (certs_sign_tbs(c->base.svc, c->key, v, c->tbs, c->tbs_len, crl_signed, c) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

/* ---- the signed CRL: kept, answered ----------------------------------------------------- */

/* Stage 1 (worker): the new CRL replaces the kept one; its number is raised. */
static void
keep_work(struct workq_job *job, void *ctx)
{
	struct rcall *c = (struct rcall *)job;
	struct store_txn *tx;
	char row[CATALOG_NAME_MAX + 16];
	uint8_t *buf;
	size_t n = boltseal__v1__crl__get_packed_size(&c->crl);
	int rc;

	(void)ctx;
	if ((buf = malloc(n)) == NULL) {
		c->rc = BS_ERR_NOMEM;
		return;
	}
	boltseal__v1__crl__pack(&c->crl, buf);
	if ((rc = store_begin(c->base.svc->store, &tx)) == 0) {
		snprintf(row, sizeof(row), "crl/%s", c->key);
		rc = store_row_put(tx, CERTS_NS, row, c->kept != NULL ? c->kept_ver : 0, buf, n, NULL);
		snprintf(row, sizeof(row), "crlnum/%s", c->key);
		if (rc == 0)
			rc = store_counter_cas(tx, CERTS_NS, row, c->number == 0 ?
			    STORE_COUNTER_ABSENT : c->number, c->number + 1);
		if (rc == 0)
			rc = store_commit(tx);
		else
			store_rollback(tx);
	}
	free(buf);
	c->rc = rc;
	if (rc == 0)
		sync_file(c, &c->crl);
}

static void
keep_done(struct workq_job *job)
{
	struct rcall *c = (struct rcall *)job;

	if (c->rc == BS_ERR_PRECONDITION || c->rc == BS_ERR_EXISTS) {
		certs_fail(c, GRPC_STATUS_ABORTED, "another CRL of this CA was made meanwhile; ask again");
		return;
	}
	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot keep the CRL: %s", bs_strerror(c->rc));
		return;
	}
	file_synced(c);
	answer(c, &c->crl);
}

static void
crl_signed(void *arg, struct keyop_answer *a)
{
	struct rcall *c = arg;
	uint8_t der[ECDSA_P256_DER_MAX];
	size_t dlen = 0;
	const char *msg = NULL;
	X509_CRL *crl = NULL;
	BIO *b = NULL;
	BUF_MEM *m = NULL;
	int st;

	if ((st = certs_sig_der(c->base.svc, c->base.call, a, der, &dlen, &msg)) != 0) {
		certs_fail(c, st, "%s", msg);
		return;
	}
	memcpy(c->payload, a->sigs[0].payload_sha256, sizeof(c->payload));
	if (x509_signed_crl(c->tbs, c->tbs_len, der, dlen, c->ca_pub, &crl) != 0) {
		certs_fail(c, GRPC_STATUS_INTERNAL, "the CRL's signature does not verify with the CA's key");
		return;
	}
	st = (b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509_CRL(b, crl) != 1 ||
	    BIO_get_mem_ptr(b, &m) != 1 || m->length > CRL_PEM_MAX ||
	    (c->pem = OPENSSL_strndup(m->data, m->length)) == NULL;
	BIO_free(b);
	X509_CRL_free(crl);
	if (st) {
		certs_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "the CRL is too large or memory ran out");
		return;
	}
	boltseal__v1__crl__init(&c->crl);
	c->crl.ca_key_name = c->key;
	c->crl.crl_pem = c->pem;
	c->crl.crl_number = c->number + 1;
	c->crl.this_update_unix = c->now;
	c->crl.next_update_unix = c->now + c->base.st->crl_validity_s;
	c->crl.revoked = (uint32_t)c->n;
	c->stage = 1;
	if (certs_submit(c, keep_work, keep_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

static void
task_recorded(void *arg, int rc)
{
	struct rcall *c = arg;

	if (rc != 0)
		bs_log(BS_LOG_ERROR, "the record of a CRL made by the publisher is not written",
		    "ca_key", c->key, NULL);
	rcall_free(c);
}

/* The publisher's new CRL (kept): its audit record, as the daemon's own key use. */
static void
task_record(struct rcall *c, const char *num, const char *n)
{
	struct audit_log *audit = c->base.svc->audit;
	const uint8_t (*payload)[32] = &c->payload;
	struct audit_field f[] = { { "crl_number", num }, { "crl_entries", n } };
	struct audit_record r;

	if (audit == NULL) {
		rcall_free(c);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.type = AUDIT_KEY;
	r.key = c->key;
	r.key_version = c->ca_version;
	r.result = "OK";
	r.reason = "CRL refreshed by the daemon (certs.crl_interval_s)";
	r.event = "crl_made";
	r.payload_sha256 = payload;
	r.npayload = 1;
	r.fields = f;
	r.nfields = sizeof(f) / sizeof(f[0]);
	if (audit_log_append(audit, &r, task_recorded, c) != 0) {
		bs_log(BS_LOG_ERROR, "cannot queue the record of a CRL made by the publisher",
		    "ca_key", c->key, NULL);
		rcall_free(c);
	}
}

static void
answer(struct rcall *c, const Boltseal__V1__Crl *crl)
{
	char num[24], n[16];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)crl->crl_number);
	snprintf(n, sizeof(n), "%u", crl->revoked);
	if (c->task) {
		bs_log(BS_LOG_INFO, "CRL refreshed", "ca_key", c->key, "crl_number", num, NULL);
		task_record(c, num, n);
		return;
	}
	if (crl == &c->crl) {
		/* kept already: the answer is OK whatever happens here */
		if (!c->revoke)
			rpc_call_audit_event(c->base.call, "crl_made");
		if (rpc_call_audit_field(c->base.call, "crl_number", num) != 0 ||
		    rpc_call_audit_field(c->base.call, "crl_entries", n) != 0)
			bs_log(BS_LOG_ERROR, "out of memory: a CRL's record lacks its number", "crl_number",
			    num, NULL);
	}
	if (c->revoke) {
		Boltseal__V1__RevokeCertificateResponse r =
		    BOLTSEAL__V1__REVOKE_CERTIFICATE_RESPONSE__INIT;

		r.certificate = c->cert;
		r.crl = (Boltseal__V1__Crl *)crl;
		rpc_call_finish_pb(c->base.call, &r.base);
	} else {
		Boltseal__V1__GetCrlResponse r = BOLTSEAL__V1__GET_CRL_RESPONSE__INIT;

		r.crl = (Boltseal__V1__Crl *)crl;
		rpc_call_finish_pb(c->base.call, &r.base);
	}
	rcall_free(c);
}

/* ---- the RPCs ------------------------------------------------------------------------------ */

static struct rcall *
rcall_new(struct rpc_call *call, int revoke)
{
	struct rcall *c = certs_call_new(call, sizeof(*c), rcall_free);

	if (c != NULL) {
		c->revoke = revoke;
		c->now = (int64_t)time(NULL);
	}
	return c;
}

void
certs_revoke(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__RevokeCertificateRequest *r =
	    (const Boltseal__V1__RevokeCertificateRequest *)msg;
	struct policy_attr attr;
	struct rcall *c;
	size_t n = strlen(r->serial_hex);

	if ((c = rcall_new(call, 1)) == NULL)
		return;
	if (n != CERTS_SERIAL_HEX || strspn(r->serial_hex, "0123456789abcdef") != n ||
	    (!(r->reason <= 5 && r->reason != 2) && r->reason != 9)) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "serial_hex: %d lower-case hex digits; reason: "
		    "0, 1, 3, 4, 5 or 9 (RFC 5280 CRLReason)", CERTS_SERIAL_HEX);
		return;
	}
	snprintf(c->serial, sizeof(c->serial), "%s", r->serial_hex);
	c->reason = r->reason;
	rpc_call_audit_target(call, c->serial);
	attr = (struct policy_attr){ "request.serial_hex", c->serial };
	if (!rpc_call_authorize(call, NULL, NULL, &attr, 1)) {
		rcall_free(c);
		return;
	}
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

void
certs_crl_refresh(struct certs_state *st, const char *key)
{
	struct rcall *c = certs_task_new(st, sizeof(struct rcall), rcall_free);

	if (c == NULL)
		return;
	c->task = 1;
	st->inflight++;
	c->now = (int64_t)time(NULL);
	snprintf(c->key, sizeof(c->key), "%s", key);
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "the work queue is full");
}

void
certs_get_crl(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__GetCrlRequest *r = (const Boltseal__V1__GetCrlRequest *)msg;
	struct rcall *c;

	if ((c = rcall_new(call, 0)) == NULL)
		return;
	if (r->ca_key_name[0] == '\0' || strlen(r->ca_key_name) > CATALOG_NAME_MAX) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "ca_key_name: 1 to %d bytes", CATALOG_NAME_MAX);
		return;
	}
	snprintf(c->key, sizeof(c->key), "%s", r->ca_key_name);
	rpc_call_audit_target(call, c->key);
	if (!certs_authorize_key(c, c->key, NULL, 0, NULL))
		return;
	if (certs_submit(c, read_work, read_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}
