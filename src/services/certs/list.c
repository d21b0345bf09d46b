/*
 * list.c - CertificateService/ListProfiles and ListCertificates
 * (certs.proto, docs/identity.md): the store's "profile/" and "serial/"
 * rows read on a worker in one read transaction, in id order. A page of
 * certificates reads at most SCAN_MAX rows, so a filter that matches
 * little costs a bounded amount per call; the page then says where to go on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/workq.h"
#include "rpc/rpc.h"
#include "rpc/rpc_status.h"
#include "services/certs/certs_int.h"
#include "services/services.h"
#include "store/store.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define SCAN_MAX (10 * STORE_LIST_MAX)

struct lcall {
	struct certs_call base;         /* first */
	int certs;                      /* ListCertificates (else ListProfiles) */
	char ca[CATALOG_NAME_MAX + 1];
	char subject[80];
	int expired;
	size_t page;
	int64_t now;
	char after[STORE_ID_MAX + 1];   /* the last row read */
	size_t seen, scanned;
	int more;                       /* a page of the store was full: there may be more */
	ProtobufCMessage **items;
	size_t n;
	int rc;
};

static void
lcall_free(void *arg)
{
	struct lcall *c = arg;

	for (size_t i = 0; i < c->n; i++)
		protobuf_c_message_free_unpacked(c->items[i], NULL);
	free(c->items);
	free(c);
}

static int
keep(void *arg, const char *id, const uint8_t *data, size_t len, uint64_t version)
{
	struct lcall *c = arg;
	ProtobufCMessage *m;
	const ProtobufCMessageDescriptor *d = c->certs ?
	    &boltseal__v1__issued_certificate__descriptor : &boltseal__v1__profile__descriptor;

	(void)version;
	c->seen++;
	c->scanned++;
	snprintf(c->after, sizeof(c->after), "%s", id);
	if ((m = protobuf_c_message_unpack(d, NULL, len, data)) == NULL)
		return BS_ERR_INTERNAL;
	if (c->certs) {
		const Boltseal__V1__IssuedCertificate *ic = (const Boltseal__V1__IssuedCertificate *)m;

		if ((c->ca[0] != '\0' && strcmp(ic->ca_key_name, c->ca) != 0) ||
		    (c->subject[0] != '\0' && strcmp(ic->subject_id, c->subject) != 0) ||
		    (!c->expired && ic->revoked_at_unix == 0 && ic->not_after_unix <= c->now)) {
			protobuf_c_message_free_unpacked(m, NULL);
			return 0;
		}
	}
	c->items[c->n++] = m;
	return c->certs && c->n == c->page ? 1 : 0;
}

static void
list_work(struct workq_job *job, void *ctx)
{
	struct lcall *c = (struct lcall *)job;
	struct store_txn *tx;
	const char *prefix = c->certs ? "serial/" : "profile/";
	size_t cap = c->certs ? c->page : SCAN_MAX;
	int rc = 0;

	(void)ctx;
	if ((c->items = calloc(cap, sizeof(*c->items))) == NULL) {
		c->rc = BS_ERR_NOMEM;
		return;
	}
	if ((c->rc = store_begin_read(c->base.svc->store, &tx)) != 0)
		return;
	do {
		c->seen = 0;
		rc = store_row_foreach(tx, CERTS_NS, prefix, c->after, STORE_LIST_MAX, keep, c);
		c->more = rc == 1 || c->seen == STORE_LIST_MAX;
	} while (rc == 0 && c->more && c->n < cap && c->scanned < SCAN_MAX);
	store_rollback(tx);
	c->rc = rc == 1 ? 0 : rc;
}

static void
list_done(struct workq_job *job)
{
	struct lcall *c = (struct lcall *)job;

	if (c->rc != 0) {
		certs_fail(c, rpc_status_from_err(c->rc), "cannot read the list: %s",
		    bs_strerror(c->rc));
		return;
	}
	if (c->certs) {
		Boltseal__V1__ListCertificatesResponse r = BOLTSEAL__V1__LIST_CERTIFICATES_RESPONSE__INIT;

		r.certificates = (Boltseal__V1__IssuedCertificate **)c->items;
		r.n_certificates = c->n;
		/* the token is the serial of the last row read */
		r.next_page_token = (char *)(c->more ? c->after + strlen("serial/") : "");
		rpc_call_finish_pb(c->base.call, &r.base);
	} else {
		Boltseal__V1__ListProfilesResponse r = BOLTSEAL__V1__LIST_PROFILES_RESPONSE__INIT;

		r.profiles = (Boltseal__V1__Profile **)c->items;
		r.n_profiles = c->n;
		rpc_call_finish_pb(c->base.call, &r.base);
	}
	lcall_free(c);
}

static struct lcall *
start(struct rpc_call *call, int certs)
{
	struct lcall *c = certs_call_new(call, sizeof(struct lcall), lcall_free);

	if (c != NULL)
		c->certs = certs;
	return c;
}

static void
submit(struct lcall *c)
{
	if (!rpc_call_authorize(c->base.call, NULL, NULL, NULL, 0)) {
		lcall_free(c);
		return;
	}
	if (certs_submit(c, list_work, list_done) != 0)
		certs_fail(c, GRPC_STATUS_UNAVAILABLE, "server busy");
}

void
certs_list_profiles(struct rpc_call *call, const ProtobufCMessage *msg)
{
	struct lcall *c;

	(void)msg;
	if ((c = start(call, 0)) != NULL)
		submit(c);
}

void
certs_list_certificates(struct rpc_call *call, const ProtobufCMessage *msg)
{
	const Boltseal__V1__ListCertificatesRequest *r =
	    (const Boltseal__V1__ListCertificatesRequest *)msg;
	size_t tl = strlen(r->page_token);
	struct lcall *c;

	if ((c = start(call, 1)) == NULL)
		return;
	if (strlen(r->ca_key_name) > CATALOG_NAME_MAX || strlen(r->subject_id) >= sizeof(c->subject) ||
	    r->page_size > PAGE_MAX || (tl != 0 && (tl != CERTS_SERIAL_HEX ||
	    strspn(r->page_token, "0123456789abcdef") != tl))) {
		certs_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "ca_key_name, subject_id: names; page_size: "
		    "0..%d; page_token: as a page gave it", PAGE_MAX);
		return;
	}
	snprintf(c->ca, sizeof(c->ca), "%s", r->ca_key_name);
	snprintf(c->subject, sizeof(c->subject), "%s", r->subject_id);
	c->expired = r->include_expired;
	c->page = r->page_size != 0 ? r->page_size : PAGE_DEFAULT;
	c->now = (int64_t)time(NULL);
	if (tl != 0)
		snprintf(c->after, sizeof(c->after), "serial/%s", r->page_token);
	submit(c);
}
