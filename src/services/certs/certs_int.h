/*
 * certs_int.h - what the files of the CertificateService share (not a
 * public header): certs.c (authorities, the method table), issue.c
 * (profiles and issued certificates), and the helpers of both: serials,
 * extensions, HSM signatures of a TBSCertificate, describing a finished
 * certificate. Event loop thread unless a comment says otherwise.
 */
#ifndef BS_CERTS_INT_H
#define BS_CERTS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "boltseal/v1/certs.pb-c.h"
#include "exec/workq.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "rpc/rpc_service.h"

struct svc_ctx;
struct store_txn;
struct policy_attr;

/* rows ca/KEY, profile/NAME, serial/HEX, thumb/SHA256HEX (a serial), crl/KEY; counter crlnum/KEY */
#define CERTS_NS "certs"
#define CERTS_SERIAL_LEN 16
#define CERTS_SERIAL_HEX (2 * CERTS_SERIAL_LEN)
#define CERTS_BACKDATE_S 60              /* notBefore: a minute back, for clocks a little behind */
#define CERTS_ORG "boltseal"

struct event;

/* The service's state: its "certs" settings and the CRL publisher's timer. */
struct certs_state {
	struct svc_ctx *svc;
	int64_t crl_interval_s;         /* certs.crl_interval_s: each CA's CRL is remade this often */
	int64_t crl_validity_s;         /* certs.crl_validity_s: nextUpdate - thisUpdate */
	struct event *timer;            /* the publisher (crl_publish.c); NULL without a loop */
	unsigned inflight;              /* CRLs the publisher is making or writing */
};

/*
 * The first member of every call's state (struct ccall, icall, rcall): its
 * work-queue job, the call (NULL for the daemon's own work: the CRL
 * publisher), the service context and state, and how to free it all.
 */
struct certs_call {
	struct workq_job job;           /* first */
	struct rpc_call *call;
	struct svc_ctx *svc;
	struct certs_state *st;
	void (*free_fn)(void *c);
};

/*
 * A zeroed call state of size bytes (a struct starting with struct
 * certs_call) for call, freed with free_fn; or NULL, the call answered
 * (service not started, out of memory).
 */
void *certs_call_new(struct rpc_call *call, size_t size, void (*free_fn)(void *c));

/*
 * A zeroed state of size bytes for the daemon's own work (no call), freed
 * with free_fn; NULL when out of memory (logged).
 */
void *certs_task_new(struct certs_state *st, size_t size, void (*free_fn)(void *c));

/*
 * Answers c's call with status and the formatted message (without a call:
 * logs it as the publisher's error), then frees c.
 */
void certs_fail(void *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The policy's verdict on c's call naming key (its purpose from the
 * catalog when the key exists) with the request attributes attrs. 1: go
 * on, *k (may be NULL) the catalog's key or NULL; 0: refused, answered,
 * and c freed.
 */
int certs_authorize_key(void *c, const char *key, const struct policy_attr *attrs, size_t nattrs,
    const struct catalog_key **k) BS_WUR;

/* Runs work on a worker, then done on the loop. 0, or the queue's refusal. */
int certs_submit(void *c, void (*work)(struct workq_job *, void *),
    void (*done)(struct workq_job *)) BS_WUR;

/*
 * Worker thread. Reads row (namespace CERTS_NS) in tx and unpacks it as
 * desc into *out (free with protobuf_c_message_free_unpacked); *ver (may
 * be NULL) gets its version. 0, BS_ERR_NOT_FOUND, BS_ERR_INTERNAL (does
 * not unpack), the store's errors.
 */
int certs_read_pb(struct store_txn *tx, const char *row, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **out, uint64_t *ver) BS_WUR;

/*
 * Worker thread. Writes row := data in its own transaction: created (create:
 * BS_ERR_EXISTS if it exists) or created-or-replaced. 0 once durable, or
 * the store's errors.
 */
int certs_put_row(struct svc_ctx *svc, const char *row, const uint8_t *data, size_t len,
    int create) BS_WUR;

/* A random positive serial of CERTS_SERIAL_LEN octets into x, and its hex. 0 or BS_ERR_CRYPTO. */
int certs_set_serial(X509 *x, char hex[CERTS_SERIAL_HEX + 1]) BS_WUR;

/* Adds extension nid = value (X509V3_EXT_conf_nid syntax). 0 or BS_ERR_CRYPTO. */
int certs_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value) BS_WUR;

/*
 * Has the HSM sign the SHA-256 of tbs with version v of the CA key `key`
 * (ECDSA P-256); done(arg, answer) runs later (certs_sig_der reads it).
 * 0, or the key door's refusal (done will not run).
 */
int certs_sign_tbs(struct svc_ctx *svc, const char *key, const struct catalog_version *v,
    const uint8_t *tbs, size_t len, keyclient_done_fn done, void *arg) BS_WUR;

/*
 * The HSM's answer as a DER ECDSA signature (der: ECDSA_P256_DER_MAX bytes),
 * noting the HSM's health; the payload hash goes to call's audit record (call
 * may be NULL).
 * 0, or a gRPC status to answer with (the message in msg).
 */
int certs_sig_der(struct svc_ctx *svc, struct rpc_call *call, struct keyop_answer *a,
    uint8_t *der, size_t *len, const char **msg);

/*
 * The CA `key` as kept (ca) ready to sign: the key version that signed its
 * certificate, usable (*v), and the certificate and its public key parsed
 * (*cert, *pub: the caller frees them), the version named in c's audit
 * record. Returns 1, or 0 with c answered (FAILED_PRECONDITION, INTERNAL)
 * and freed.
 */
int certs_ca_signer(void *c, const char *key, const Boltseal__V1__Authority *ca,
    const struct catalog_version **v, X509 **cert, EVP_PKEY **pub) BS_WUR;

/* x's PEM (*pem: OPENSSL_free) and the hex SHA-256 of its DER. 0 or BS_ERR_NOMEM. */
int certs_pem_sha(X509 *x, char **pem, char sha[65]) BS_WUR;

/*
 * The DER SubjectPublicKeyInfo of the certificate in pem (*spki: the
 * caller OPENSSL_free()s it, *len bytes). 0, or BS_ERR_NOMEM (it does not
 * parse, or memory ran out).
 */
int certs_pem_spki(const char *pem, uint8_t **spki, size_t *len) BS_WUR;

/* x's validity in unix seconds. 0 or BS_ERR_INVALID. */
int certs_validity(X509 *x, int64_t *not_before, int64_t *not_after) BS_WUR;

/* issue.c */
void certs_set_profile(struct rpc_call *call, const ProtobufCMessage *msg);
void certs_issue(struct rpc_call *call, const ProtobufCMessage *msg);
void certs_renew(struct rpc_call *call, const ProtobufCMessage *msg);

/* revoke.c */
void certs_revoke(struct rpc_call *call, const ProtobufCMessage *msg);
void certs_get_crl(struct rpc_call *call, const ProtobufCMessage *msg);
/*
 * The publisher's pass over CA `key`: a new CRL when the kept one is
 * crl_interval_s old (or missing), and the kept one written to ca_crl_dir
 * when the file there differs. Counted in st->inflight until it ends.
 */
void certs_crl_refresh(struct certs_state *st, const char *key);

/* list.c */
void certs_list_profiles(struct rpc_call *call, const ProtobufCMessage *msg);
void certs_list_certificates(struct rpc_call *call, const ProtobufCMessage *msg);

/* crl_publish.c */
#define CERTS_CRL_FILE_SUFFIX ".crl.pem"
/* Arms the publisher (a first pass at once). 0 or an error (err). */
int certs_publisher_start(struct certs_state *st, char *err, size_t errlen);
void certs_publisher_stop(struct certs_state *st);
/*
 * Worker thread. Makes ca_crl_dir/KEY.crl.pem hold pem (len bytes) unless
 * it does already: *wrote says whether it was written. 0, or BS_ERR_IO
 * with err. Nothing to do (0) without ca_crl_dir.
 */
int certs_crl_file_sync(const struct svc_ctx *svc, const char *key, const char *pem, size_t len,
    int *wrote, char *err, size_t errlen) BS_WUR;
/* Loop: after a CRL file was written, the daemon reloads what its TLS layer trusts. */
void certs_crl_file_written(struct svc_ctx *svc, const char *key);

#endif
