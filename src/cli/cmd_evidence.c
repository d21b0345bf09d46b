/*
 * cmd_evidence.c - `boltseal audit bundle` and `boltseal audit
 * verify-bundle`: evidence bundles (audit/evidence.h, docs/audit.md).
 *
 * bundle: finds the window's records (a binary search on their timestamps,
 * then a scan with a margin on both sides, since records are stamped just
 * before they are queued and a few may be out of order by milliseconds),
 * fetches the CA certificates, CRLs, certificates in force and public keys
 * they name, writes README and MANIFEST, seals MANIFEST's hash in the log
 * (SealEvidence), waits for a checkpoint that covers the seal, fetches the
 * inclusion proofs, checks the result as verify-bundle would, and writes
 * the tar archive. verify-bundle: evidence_verify, offline.
 *
 * `boltseal audit explain ID` (also here: it reads the log through the
 * same ReadRecords paging) prints the records of one request id, newest
 * pages first: why a call was refused, which the caller was never told.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit_verify.h"
#include "audit/evidence.h"
#include "boltseal/v1/audit.pb-c.h"
#include "boltseal/v1/certs.pb-c.h"
#include "boltseal/v1/keys.pb-c.h"
#include "cli/cli.h"
#include "cli/evidence_cmd.h"
#include "cli/input.h"
#include "cli/output.h"
#include "common/bytebuf.h"
#include "common/hex.h"

#define AS "/boltseal.v1.AuditService/"
#define CS "/boltseal.v1.CertificateService/"
#define KS "/boltseal.v1.KeyService/"
#define PAGE 1000               /* ReadRecords and GetInclusionProofs per call */
#define MARGIN 1000             /* records read beyond each end of the window */
#define BUNDLE_MAX_RECORDS 50000   /* records.jsonl ~35 MB, proofs.jsonl ~60 MB */
#define BUNDLE_MAX_KEYS 1000
#define BUNDLE_MAX_PAGES 1000   /* ListCertificates pages */
/* a bundle file read by verify-bundle: its files and their tar headers */
#define BUNDLE_MAX_BYTES (EVIDENCE_MAX_TOTAL + 64u * 1024 * 1024)

/* A record kept for the bundle. */
struct rec {
	uint64_t seq;
	uint8_t *line;
	size_t len;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static void
recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].line);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int
recs_add(struct recs *r, uint64_t seq, const uint8_t *line, size_t len)
{
	struct rec *t;

	if (r->n == r->cap) {
		size_t cap = r->cap == 0 ? 256 : 2 * r->cap;

		if ((t = realloc(r->v, cap * sizeof(*t))) == NULL)
			return BS_ERR_NOMEM;
		r->v = t;
		r->cap = cap;
	}
	if ((r->v[r->n].line = malloc(len > 0 ? len : 1)) == NULL)
		return BS_ERR_NOMEM;
	memcpy(r->v[r->n].line, line, len);
	r->v[r->n].len = len;
	r->v[r->n].seq = seq;
	r->n++;
	return 0;
}

/*
 * --from/--to: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or the records' own
 * YYYY-MM-DDTHH:MM:SS.mmmZ, UTC. A bound without milliseconds covers its
 * whole second (and a date its whole day) at the end of the window.
 * Writes the record form into out; sets *unix. 0 or -1.
 */
static int
parse_bound(const char *s, int end, char out[EVIDENCE_TS_LEN + 1], int64_t *unix_s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len == 10)
		snprintf(out, EVIDENCE_TS_LEN + 1, "%sT%s", s, end ? "23:59:59.999Z" : "00:00:00.000Z");
	else if (len == 20 && s[19] == 'Z')
		snprintf(out, EVIDENCE_TS_LEN + 1, "%.19s.%sZ", s, end ? "999" : "000");
	else if (len == EVIDENCE_TS_LEN)
		snprintf(out, EVIDENCE_TS_LEN + 1, "%s", s);
	else
		return -1;
	return evidence_ts_unix(out, unix_s);
}

/* A string member of a record, or NULL. */
static const char *
rec_str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ReadRecords(start, max): *resp or an exit code (printed). */
static int
read_records(struct cli_ctx *x, uint64_t start, uint32_t max,
    Boltseal__V1__ReadRecordsResponse **resp)
{
	Boltseal__V1__ReadRecordsRequest req = BOLTSEAL__V1__READ_RECORDS_REQUEST__INIT;

	req.start = start;
	req.max_records = max;
	return call_unary(x, AS "ReadRecords", &req.base,
	    &boltseal__v1__read_records_response__descriptor, (ProtobufCMessage **)resp);
}

/*
 * A call whose non-OK status is an answer, not a failure: 0 with *status
 * 0 and *resp set (OK), or 0 with *status and *msg (malloc'd or NULL) set;
 * else the exit code of a failed call (printed).
 */
static int
soft_call(struct cli_ctx *x, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp, int *status, char **msg)
{
	int ret;

	*status = 0;
	*msg = NULL;
	*resp = NULL;
	ret = call_unary_otp(x, path, req, NULL, rdesc, resp, status, msg);
	return ret == CLI_EXIT_STATUS && *status != 0 ? 0 : ret;
}

/* The timestamp of record idx into ts (EVIDENCE_TS_LEN + 1). 0 or an exit code. */
static int
record_ts(struct cli_ctx *x, uint64_t idx, char *ts)
{
	Boltseal__V1__ReadRecordsResponse *resp = NULL;
	json_t *o = NULL;
	int ret;

	if ((ret = read_records(x, idx, 1, &resp)) != 0)
		return ret;
	if (resp->n_records == 1)
		o = json_loadb((const char *)resp->records[0].data, resp->records[0].len, 0, NULL);
	if (o == NULL || rec_str(o, "timestamp") == NULL) {
		out_err(x->cmd, "record %" PRIu64 " from the server is not a record", idx);
		ret = CLI_EXIT_CONN;
	} else {
		snprintf(ts, EVIDENCE_TS_LEN + 1, "%s", rec_str(o, "timestamp"));
	}
	json_decref(o);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/*
 * The window's records into *out: without a vehicle every record from the
 * first stamped inside the window to the last one (consecutive), with a
 * vehicle those stamped inside it that are about the vehicle. *logsize is
 * the log's size before. 0 or an exit code (printed).
 */
static int
collect_records(struct cli_ctx *x, const char *from, const char *to, const char *vehicle,
    struct recs *out, uint64_t *logsize)
{
	Boltseal__V1__ReadRecordsResponse *resp = NULL;
	struct recs all = { 0 };
	uint64_t lo = 0, hi, idx, after = 0, first = UINT64_MAX, last = 0;
	char ts[EVIDENCE_TS_LEN + 1];
	int ret;

	if ((ret = read_records(x, 0, 1, &resp)) != 0) {
		if (ret == CLI_EXIT_STATUS)
			out_err(x->cmd, "cannot read the audit log (an empty log has nothing to bundle)");
		return ret;
	}
	*logsize = hi = resp->log_size;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	/* the first record stamped at or after from (stamps are in order within ms) */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if ((ret = record_ts(x, mid, ts)) != 0)
			return ret;
		if (strcmp(ts, from) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	idx = lo > MARGIN ? lo - MARGIN : 0;
	while (idx < *logsize && after < MARGIN) {
		if ((ret = read_records(x, idx, PAGE, &resp)) != 0)
			goto out;
		if (resp->n_records == 0) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			break;
		}
		for (size_t i = 0; i < resp->n_records && idx < *logsize; i++, idx++) {
			json_t *o = json_loadb((const char *)resp->records[i].data,
			    resp->records[i].len, 0, NULL);
			const char *t = rec_str(o, "timestamp");
			int in = t != NULL && strcmp(t, from) >= 0 && strcmp(t, to) <= 0;

			after = t != NULL && strcmp(t, to) > 0 ? after + 1 : 0;
			json_decref(o);
			if (vehicle != NULL && (!in || !evidence_record_of_vehicle(
			    resp->records[i].data, resp->records[i].len, vehicle)))
				continue;
			if (vehicle == NULL) {
				if (in) {
					first = first == UINT64_MAX ? idx : first;
					last = idx;
				}
				if (first == UINT64_MAX)
					continue;
			}
			if ((vehicle != NULL ? out->n : all.n) >= BUNDLE_MAX_RECORDS + MARGIN) {
				out_err(x->cmd, "more than %d records in the window: make it shorter",
				    BUNDLE_MAX_RECORDS);
				ret = CLI_EXIT_USAGE;
				protobuf_c_message_free_unpacked(&resp->base, NULL);
				goto out;
			}
			if (recs_add(vehicle != NULL ? out : &all, idx, resp->records[i].data,
			    resp->records[i].len) != 0) {
				out_err(x->cmd, "out of memory");
				ret = CLI_EXIT_USAGE;
				protobuf_c_message_free_unpacked(&resp->base, NULL);
				goto out;
			}
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	if (vehicle == NULL && first != UINT64_MAX) {
		/* all holds first.. (and up to MARGIN past last): keep first..last */
		for (size_t i = 0; i < all.n; i++) {
			if (all.v[i].seq > last)
				break;
			if (recs_add(out, all.v[i].seq, all.v[i].line, all.v[i].len) != 0) {
				out_err(x->cmd, "out of memory");
				ret = CLI_EXIT_USAGE;
				goto out;
			}
		}
	}
	if (out->n > BUNDLE_MAX_RECORDS) {
		out_err(x->cmd, "more than %d records in the window: make it shorter",
		    BUNDLE_MAX_RECORDS);
		ret = CLI_EXIT_USAGE;
	}
out:
	recs_free(&all);
	return ret;
}

/* Adds a file, printing why it could not be. 0 or CLI_EXIT_USAGE. */
static int
add_file(struct cli_ctx *x, struct evidence_bundle *b, const char *name, const void *p, size_t len)
{
	int rc = evidence_add(b, name, p, len);

	if (rc == 0 || rc == BS_ERR_EXISTS)
		return 0;
	out_err(x->cmd, "cannot add %s to the bundle: %s", name, bs_strerror(rc));
	return CLI_EXIT_USAGE;
}

/* A non-OK answer that leaves a file out: printed as a warning, not fatal. */
static void
left_out(struct cli_ctx *x, struct bytebuf *notes, const char *what, int status, const char *msg)
{
	out_err(x->cmd, "warning: %s left out: status %d: %s", what, status, msg != NULL ? msg : "");
	bytebuf_printf(notes, "  %s (status %d: %s)\n", what, status, msg != NULL ? msg : "");
}

/* The public keys the records name (key and key_version), as keys/NAME-vN.pem. */
static int
add_keys(struct cli_ctx *x, struct evidence_bundle *b, const struct recs *r, struct bytebuf *notes)
{
	char name[EVIDENCE_NAME_MAX + 8], what[200];
	size_t tried = 0;
	int ret = 0;

	for (size_t i = 0; i < r->n && ret == 0; i++) {
		json_t *o = json_loadb((const char *)r->v[i].line, r->v[i].len, 0, NULL);
		const char *k = rec_str(o, "key");
		json_t *ver = json_object_get(o, "key_version");
		Boltseal__V1__GetPublicKeyRequest req = BOLTSEAL__V1__GET_PUBLIC_KEY_REQUEST__INIT;
		Boltseal__V1__GetPublicKeyResponse *resp = NULL;
		int status = 0;
		char *msg = NULL;

		if (k == NULL || !json_is_integer(ver) || json_integer_value(ver) < 1 ||
		    json_integer_value(ver) > UINT32_MAX ||
		    (size_t)snprintf(name, sizeof(name), "keys/%s-v%lld.pem", k,
		    (long long)json_integer_value(ver)) >= sizeof(name) ||
		    !evidence_name_valid(name) || evidence_find(b, name) != NULL) {
			json_decref(o);
			continue;
		}
		if (++tried > BUNDLE_MAX_KEYS) {
			out_err(x->cmd, "warning: more than %d keys: the rest are left out",
			    BUNDLE_MAX_KEYS);
			json_decref(o);
			break;
		}
		req.name = (char *)k;
		req.version = (uint32_t)json_integer_value(ver);
		ret = soft_call(x, KS "GetPublicKey", &req.base,
		    &boltseal__v1__get_public_key_response__descriptor, (ProtobufCMessage **)&resp,
		    &status, &msg);
		if (ret == 0 && status == 0) {
			ret = add_file(x, b, name, resp->pem, strlen(resp->pem));
		} else if (ret == 0) {
			snprintf(what, sizeof(what), "public key %s version %u", k, req.version);
			left_out(x, notes, what, status, msg);
		}
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		free(msg);
		json_decref(o);
	}
	return ret;
}

/* CA names: every profile's CA and every CA a CertificateService record names. */
static int
ca_names(struct cli_ctx *x, const struct recs *r, json_t *set)
{
	Boltseal__V1__ListProfilesRequest req = BOLTSEAL__V1__LIST_PROFILES_REQUEST__INIT;
	Boltseal__V1__ListProfilesResponse *resp = NULL;
	int status = 0, ret;
	char *msg = NULL;

	ret = soft_call(x, CS "ListProfiles", &req.base,
	    &boltseal__v1__list_profiles_response__descriptor, (ProtobufCMessage **)&resp,
	    &status, &msg);
	if (ret != 0)
		return ret;
	if (status == 0) {
		for (size_t i = 0; i < resp->n_profiles; i++)
			json_object_set_new(set, resp->profiles[i]->ca_key_name, json_true());
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	} else {
		out_err(x->cmd, "warning: ListProfiles: status %d: %s", status, msg);
	}
	free(msg);
	for (size_t i = 0; i < r->n; i++) {
		json_t *o = json_loadb((const char *)r->v[i].line, r->v[i].len, 0, NULL);
		const char *m = rec_str(o, "method"), *k = rec_str(o, "key");

		if (m != NULL && k != NULL && strncmp(m, CS + 1, strlen(CS) - 1) == 0)
			json_object_set_new(set, k, json_true());
		json_decref(o);
	}
	return 0;
}

/* Each CA's certificate and CRL, and the certificates in force in the window. */
static int
add_certs(struct cli_ctx *x, struct evidence_bundle *b, const struct recs *r,
    const char *vehicle, int64_t from, int64_t to, struct bytebuf *notes)
{
	json_t *set = json_object(), *v;
	const char *ca;
	char name[EVIDENCE_NAME_MAX + 16], token[512] = "", what[200];
	int ret, status;
	char *msg;

	ret = CLI_EXIT_USAGE;
	if (set == NULL || (ret = ca_names(x, r, set)) != 0)
		goto out;
	json_object_foreach(set, ca, v) {
		Boltseal__V1__GetAuthorityRequest areq = BOLTSEAL__V1__GET_AUTHORITY_REQUEST__INIT;
		Boltseal__V1__GetAuthorityResponse *aresp = NULL;
		Boltseal__V1__GetCrlRequest creq = BOLTSEAL__V1__GET_CRL_REQUEST__INIT;
		Boltseal__V1__GetCrlResponse *cresp = NULL;

		snprintf(name, sizeof(name), "certs/ca-%s.pem", ca);
		if (!evidence_name_valid(name))
			continue;
		areq.key_name = (char *)ca;
		msg = NULL;
		ret = soft_call(x, CS "GetAuthority", &areq.base,
		    &boltseal__v1__get_authority_response__descriptor,
		    (ProtobufCMessage **)&aresp, &status, &msg);
		if (ret == 0 && status == 0 && aresp->authority != NULL)
			ret = add_file(x, b, name, aresp->authority->certificate_pem,
			    strlen(aresp->authority->certificate_pem));
		else if (ret == 0) {
			snprintf(what, sizeof(what), "CA certificate %s", ca);
			left_out(x, notes, what, status, msg);
		}
		if (aresp != NULL)
			protobuf_c_message_free_unpacked(&aresp->base, NULL);
		free(msg);
		if (ret != 0)
			goto out;
		creq.ca_key_name = (char *)ca;
		msg = NULL;
		snprintf(name, sizeof(name), "crls/%s.pem", ca);
		ret = soft_call(x, CS "GetCrl", &creq.base,
		    &boltseal__v1__get_crl_response__descriptor, (ProtobufCMessage **)&cresp,
		    &status, &msg);
		if (ret == 0 && status == 0 && cresp->crl != NULL)
			ret = add_file(x, b, name, cresp->crl->crl_pem, strlen(cresp->crl->crl_pem));
		else if (ret == 0) {
			snprintf(what, sizeof(what), "CRL of %s", ca);
			left_out(x, notes, what, status, msg);
		}
		if (cresp != NULL)
			protobuf_c_message_free_unpacked(&cresp->base, NULL);
		free(msg);
		if (ret != 0)
			goto out;
	}
	/* issued certificates valid at some time in the window */
	for (int page = 0; page < BUNDLE_MAX_PAGES; page++) {
		Boltseal__V1__ListCertificatesRequest req =
		    BOLTSEAL__V1__LIST_CERTIFICATES_REQUEST__INIT;
		Boltseal__V1__ListCertificatesResponse *resp = NULL;

		req.subject_id = (char *)(vehicle != NULL ? vehicle : "");
		req.include_expired = 1;
		req.page_token = token;
		req.page_size = 1000;
		msg = NULL;
		ret = soft_call(x, CS "ListCertificates", &req.base,
		    &boltseal__v1__list_certificates_response__descriptor,
		    (ProtobufCMessage **)&resp, &status, &msg);
		if (ret == 0 && status != 0)
			left_out(x, notes, "issued certificates", status, msg);
		free(msg);
		if (ret != 0 || status != 0)
			break;
		for (size_t i = 0; i < resp->n_certificates && ret == 0; i++) {
			const Boltseal__V1__IssuedCertificate *c = resp->certificates[i];

			if (c->not_before_unix > to || c->not_after_unix < from)
				continue;
			snprintf(name, sizeof(name), "certs/%s.pem", c->serial_hex);
			if (evidence_name_valid(name))
				ret = add_file(x, b, name, c->certificate_pem, strlen(c->certificate_pem));
		}
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (ret != 0 || token[0] == '\0')
			break;
	}
out:
	json_decref(set);
	return ret;
}

/* The README inside the bundle. */
static int
add_readme(struct cli_ctx *x, struct evidence_bundle *b, const char *from, const char *to,
    const char *vehicle, const struct recs *r, const struct bytebuf *notes)
{
	struct bytebuf t = BYTEBUF_INIT;
	int ret;

	bytebuf_printf(&t,
	    "boltseal evidence bundle\n"
	    "========================\n\n"
	    "Window:   %s to %s (UTC, as the records' \"timestamp\")\n"
	    "Vehicle:  %s\n"
	    "Records:  %zu",
	    from, to, vehicle != NULL ? vehicle : "(any: every record of the window, consecutive)",
	    r->n);
	if (r->n > 0)
		bytebuf_printf(&t, " (seq %" PRIu64 " to %" PRIu64 ")", r->v[0].seq,
		    r->v[r->n - 1].seq);
	bytebuf_printf(&t, "\n\n"
	    "Files\n"
	    "  records.jsonl  the audit records, byte for byte as the log holds them, one per line\n"
	    "  certs/         ca-NAME.pem: each CA's certificate; SERIAL.pem: certificates valid\n"
	    "                 at some time in the window\n"
	    "  crls/          NAME.pem: each CA's newest CRL\n"
	    "  keys/          NAME-vVERSION.pem: the public keys the records name\n"
	    "  MANIFEST       SHA-256 of each file above and of this README\n"
	    "  seal.json      the audit record that holds SHA-256(MANIFEST)\n"
	    "  proofs.jsonl   an inclusion proof per record, then one for seal.json\n"
	    "  checkpoint     the signed checkpoint the proofs lead to\n"
	    "  vkey           the checkpoint's verifier key, a COPY: trust the one you got\n"
	    "                 from the operator, not this one\n\n"
	    "Verify with boltseal (offline)\n"
	    "  boltseal audit verify-bundle --vkey-file TRUSTED.vkey BUNDLE.tar\n\n"
	    "Verify by hand\n"
	    "  1. The checkpoint is a signed note (https://c2sp.org/signed-note) whose text is a\n"
	    "     checkpoint (https://c2sp.org/tlog-checkpoint): origin, tree size, base64 root hash.\n"
	    "     Check its signature with your trusted key, e.g. in Go with\n"
	    "     golang.org/x/mod/sumdb/note:\n"
	    "       v, _ := note.NewVerifier(TRUSTED_VKEY)\n"
	    "       n, err := note.Open(checkpointBytes, note.VerifierList(v))\n"
	    "  2. Each line of proofs.jsonl is {\"seq\":N,\"leaf\":HEX,\"hashes\":[HEX...]}: the RFC 6962\n"
	    "     (RFC 9162 section 2.1.3.2) audit path of leaf N in the checkpoint's tree. Line i\n"
	    "     belongs to line i of records.jsonl; the last one to seal.json. The leaf is\n"
	    "     SHA-256(0x00 || the line without its newline):\n"
	    "       head -n 1 records.jsonl | tr -d '\\n' | (printf '\\000'; cat) | sha256sum\n"
	    "  3. seal.json's fields.\"evidence.manifest_sha256\" must equal:  sha256sum MANIFEST\n"
	    "  4. Every other file:  sha256sum -c MANIFEST\n"
	    "  5. Certificates, e.g. at the time T (unix seconds) of a record:\n"
	    "       openssl verify -attime T -crl_check -CAfile certs/ca-NAME.pem \\\n"
	    "           -CRLfile crls/NAME.pem certs/SERIAL.pem\n"
	    "       openssl crl -in crls/NAME.pem -noout -text\n"
	    "  6. A record's payload_sha256 is the SHA-256 of what the key signed; verify a\n"
	    "     signature you hold with its key, e.g. for ECDSA P-256:\n"
	    "       openssl dgst -sha256 -verify keys/NAME-vN.pem -signature SIG FILE\n");
	if (notes->len > 0) {
		bytebuf_printf(&t, "\nLeft out (the bundle's maker could not fetch them)\n");
		bytebuf_put(&t, notes->p, notes->len);
	}
	if ((ret = bytebuf_error(&t)) != 0) {
		out_err(x->cmd, "out of memory");
		bytebuf_free(&t);
		return CLI_EXIT_USAGE;
	}
	ret = add_file(x, b, "README", t.p, t.len);
	bytebuf_free(&t);
	return ret;
}

/* Finds the seal record (request id rid) at or after start: *seq and its line in seal. */
static int
find_seal(struct cli_ctx *x, uint64_t start, const char *rid, uint64_t *seq, struct recs *seal)
{
	Boltseal__V1__ReadRecordsResponse *resp = NULL;
	uint64_t idx = start;
	int ret, found = 0;

	for (int pages = 0; pages < BUNDLE_MAX_RECORDS / PAGE && !found; pages++) {
		if ((ret = read_records(x, idx, PAGE, &resp)) != 0)
			return ret;
		for (size_t i = 0; i < resp->n_records && !found; i++, idx++) {
			json_t *o = json_loadb((const char *)resp->records[i].data,
			    resp->records[i].len, 0, NULL);
			const char *r = rec_str(o, "request_id"), *m = rec_str(o, "method");

			if (r != NULL && m != NULL && strcmp(r, rid) == 0 &&
			    strcmp(m, EVIDENCE_SEAL_METHOD) == 0) {
				found = 1;
				*seq = idx;
				if (recs_add(seal, idx, resp->records[i].data, resp->records[i].len) != 0)
					found = -1;
			}
			json_decref(o);
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	if (found == 1)
		return 0;
	out_err(x->cmd, found < 0 ? "out of memory" : "the seal record (request id %s) is not in "
	    "the log", rid);
	return CLI_EXIT_CONN;
}

/* Waits (at most wait_s) for a checkpoint covering seq; *cp is the answer. */
static int
wait_checkpoint(struct cli_ctx *x, uint64_t seq, unsigned long wait_s,
    Boltseal__V1__GetCheckpointResponse **cp)
{
	Boltseal__V1__GetCheckpointRequest req = BOLTSEAL__V1__GET_CHECKPOINT_REQUEST__INIT;
	struct timespec t0, now;
	int ret, status;
	char *msg;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		msg = NULL;
		*cp = NULL;
		ret = soft_call(x, AS "GetCheckpoint", &req.base,
		    &boltseal__v1__get_checkpoint_response__descriptor, (ProtobufCMessage **)cp,
		    &status, &msg);
		free(msg);
		if (ret != 0)
			return ret;
		if (status == 0 && (*cp)->tree_size > seq)
			return 0;
		if (*cp != NULL)
			protobuf_c_message_free_unpacked(&(*cp)->base, NULL);
		*cp = NULL;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= (time_t)wait_s) {
			out_err(x->cmd, "no checkpoint covered the seal (record %" PRIu64 ") within "
			    "%lus: the daemon signs one every audit_checkpoint_interval_ms; try a "
			    "longer --wait", seq, wait_s);
			return CLI_EXIT_NEGATIVE;
		}
		usleep(200 * 1000);
	}
}

/* proofs.jsonl for the records and the seal, in the tree of size. */
static int
add_proofs(struct cli_ctx *x, struct evidence_bundle *b, const struct recs *r, uint64_t seal_seq,
    uint64_t size)
{
	Boltseal__V1__GetInclusionProofsRequest req = BOLTSEAL__V1__GET_INCLUSION_PROOFS_REQUEST__INIT;
	Boltseal__V1__GetInclusionProofsResponse *resp = NULL;
	uint64_t idx[PAGE];
	struct bytebuf t = BYTEBUF_INIT;
	char hex[BS_HEX_LEN(32)];
	size_t total = r->n + 1, done = 0, k;
	int ret = 0;

	while (done < total && ret == 0) {
		for (k = 0; k < PAGE && done + k < total; k++)
			idx[k] = done + k < r->n ? r->v[done + k].seq : seal_seq;
		req.tree_size = size;
		req.n_leaf_indexes = k;
		req.leaf_indexes = idx;
		if ((ret = call_unary(x, AS "GetInclusionProofs", &req.base,
		    &boltseal__v1__get_inclusion_proofs_response__descriptor,
		    (ProtobufCMessage **)&resp)) != 0)
			break;
		if (resp->n_proofs != k) {
			out_err(x->cmd, "GetInclusionProofs answered %zu proofs for %zu", resp->n_proofs, k);
			ret = CLI_EXIT_CONN;
		}
		for (size_t i = 0; i < resp->n_proofs && ret == 0; i++) {
			const Boltseal__V1__InclusionProof *p = resp->proofs[i];

			if (p->leaf_index != idx[i] || p->leaf_hash.len != 32) {
				out_err(x->cmd, "GetInclusionProofs: malformed proof %zu", i);
				ret = CLI_EXIT_CONN;
				break;
			}
			bs_hex_encode(p->leaf_hash.data, 32, hex);
			bytebuf_printf(&t, "{\"seq\":%" PRIu64 ",\"leaf\":\"%s\",\"hashes\":[",
			    p->leaf_index, hex);
			for (size_t h = 0; h < p->n_hashes; h++) {
				if (p->hashes[h].len != 32) {
					ret = CLI_EXIT_CONN;
					break;
				}
				bs_hex_encode(p->hashes[h].data, 32, hex);
				bytebuf_printf(&t, "%s\"%s\"", h > 0 ? "," : "", hex);
			}
			bytebuf_printf(&t, "]}\n");
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		done += k;
	}
	if (ret == 0 && bytebuf_error(&t) != 0) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_USAGE;
	}
	if (ret == 0)
		ret = add_file(x, b, "proofs.jsonl", t.p != NULL ? t.p : (const uint8_t *)"", t.len);
	bytebuf_free(&t);
	return ret;
}

/* records.jsonl: the lines, each with its newline. */
static int
add_records(struct cli_ctx *x, struct evidence_bundle *b, const struct recs *r, const char *name)
{
	struct bytebuf t = BYTEBUF_INIT;
	int ret;

	for (size_t i = 0; i < r->n; i++) {
		bytebuf_put(&t, r->v[i].line, r->v[i].len);
		bytebuf_put(&t, "\n", 1);
	}
	if (bytebuf_error(&t) != 0) {
		out_err(x->cmd, "out of memory");
		bytebuf_free(&t);
		return CLI_EXIT_USAGE;
	}
	ret = add_file(x, b, name, t.p != NULL ? t.p : (const uint8_t *)"", t.len);
	bytebuf_free(&t);
	return ret;
}

int
cli_audit_bundle(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SealEvidenceRequest sreq = BOLTSEAL__V1__SEAL_EVIDENCE_REQUEST__INIT;
	Boltseal__V1__SealEvidenceResponse *sresp = NULL;
	Boltseal__V1__GetCheckpointResponse *cp = NULL;
	const char *vehicle = args_get(a, "vehicle"), *outp = args_get(a, "out");
	const char *w = args_get(a, "wait");
	char from[EVIDENCE_TS_LEN + 1], to[EVIDENCE_TS_LEN + 1];
	struct evidence_bundle b;
	struct evidence_report rep;
	struct bytebuf notes = BYTEBUF_INIT;
	struct recs recs = { 0 }, seal = { 0 };
	int64_t from_s, to_s;
	uint64_t logsize = 0, seal_seq = 0;
	unsigned long wait_s = 60;
	uint8_t msha[32], *tar = NULL;
	size_t tarlen = 0;
	char *vk = NULL;
	int ret;

	evidence_init(&b);
	if (parse_bound(args_get(a, "from"), 0, from, &from_s) != 0 ||
	    parse_bound(args_get(a, "to"), 1, to, &to_s) != 0)
		return out_usage(x->cmd, "--from and --to are required: UTC as YYYY-MM-DD, "
		    "YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.mmmZ");
	if (strcmp(from, to) > 0)
		return out_usage(x->cmd, "--from %s is after --to %s", from, to);
	if (vehicle != NULL && !evidence_vehicle_valid(vehicle))
		return out_usage(x->cmd, "--vehicle: 1 to %d printable characters",
		    EVIDENCE_VEHICLE_MAX);
	if (outp == NULL || outp[0] == '\0')
		return out_usage(x->cmd, "--out FILE is required (the tar archive to write)");
	if (w != NULL && args_uint(w, 1, 3600, &wait_s) != 0)
		return out_usage(x->cmd, "--wait: 1 to 3600 seconds");
	if ((ret = collect_records(x, from, to, vehicle, &recs, &logsize)) != 0 ||
	    (ret = add_records(x, &b, &recs, "records.jsonl")) != 0 ||
	    (ret = add_keys(x, &b, &recs, &notes)) != 0 ||
	    (ret = add_certs(x, &b, &recs, vehicle, from_s, to_s, &notes)) != 0 ||
	    (ret = add_readme(x, &b, from, to, vehicle, &recs, &notes)) != 0)
		goto out;
	if (evidence_make_manifest(&b, msha) != 0) {
		out_err(x->cmd, "cannot make the MANIFEST");
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	sreq.manifest_sha256.data = msha;
	sreq.manifest_sha256.len = sizeof(msha);
	sreq.from = from;
	sreq.to = to;
	sreq.vehicle = (char *)(vehicle != NULL ? vehicle : "");
	sreq.records = recs.n;
	if ((ret = call_unary(x, AS "SealEvidence", &sreq.base,
	    &boltseal__v1__seal_evidence_response__descriptor, (ProtobufCMessage **)&sresp)) != 0 ||
	    (ret = find_seal(x, logsize, sresp->request_id, &seal_seq, &seal)) != 0 ||
	    (ret = add_records(x, &b, &seal, "seal.json")) != 0 ||
	    (ret = wait_checkpoint(x, seal_seq, wait_s, &cp)) != 0 ||
	    (ret = add_proofs(x, &b, &recs, seal_seq, cp->tree_size)) != 0 ||
	    (ret = add_file(x, &b, "checkpoint", cp->note.data, cp->note.len)) != 0)
		goto out;
	if ((vk = malloc(strlen(cp->verifier_key) + 2)) == NULL) {
		out_err(x->cmd, "out of memory");
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	snprintf(vk, strlen(cp->verifier_key) + 2, "%s\n", cp->verifier_key);
	if ((ret = add_file(x, &b, "vkey", vk, strlen(vk))) != 0)
		goto out;
	/* what the auditor will run, before it leaves this machine */
	if (evidence_verify(&b, NULL, 0, &rep) != 0 || !rep.ok) {
		out_err(x->cmd, "the bundle does not verify (%s: %s): not written", rep.file,
		    rep.error);
		ret = CLI_EXIT_NEGATIVE;
		goto out;
	}
	if (evidence_write_tar(&b, (int64_t)time(NULL), &tar, &tarlen) != 0) {
		out_err(x->cmd, "cannot make the tar archive");
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if ((ret = out_write_file(x->cmd, outp, tar, tarlen)) != 0)
		goto out;
	if (x->json) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "out", outp);
		out_json_uint(&j, "records", rep.records);
		out_json_uint(&j, "seal_seq", rep.seal_seq);
		out_json_uint(&j, "tree_size", rep.tree_size);
		out_json_uint(&j, "certs", rep.certs);
		out_json_uint(&j, "crls", rep.crls);
		out_json_uint(&j, "keys", rep.keys);
		out_json_str(&j, "seal_request_id", sresp->request_id);
		out_json_close(&j);
	} else {
		printf("audit bundle: wrote %s: %" PRIu64 " records, %zu certificates, %zu CRLs, "
		    "%zu public keys; sealed by record %" PRIu64 ", checkpoint of %" PRIu64
		    " records\n", outp, rep.records, rep.certs, rep.crls, rep.keys, rep.seal_seq,
		    rep.tree_size);
	}
out:
	if (sresp != NULL)
		protobuf_c_message_free_unpacked(&sresp->base, NULL);
	if (cp != NULL)
		protobuf_c_message_free_unpacked(&cp->base, NULL);
	free(vk);
	free(tar);
	bytebuf_free(&notes);
	recs_free(&recs);
	recs_free(&seal);
	evidence_free(&b);
	return ret;
}

int
cli_audit_verify_bundle(struct cli_ctx *x, const struct args *a)
{
	const char *vkf = args_get(a, "vkey-file");
	struct note_verifier v[AUDIT_VERIFY_MAX_KEYS];
	struct evidence_bundle b;
	struct evidence_report rep;
	uint8_t *buf = NULL;
	size_t len, nv = 0;
	char msg[300];
	int ret;

	if (a->nmulti > AUDIT_VERIFY_MAX_KEYS)
		return out_usage(x->cmd, "at most %d --vkey", AUDIT_VERIFY_MAX_KEYS);
	for (size_t i = 0; i < a->nmulti; i++) {
		if (note_vkey_parse(a->multi[i], &v[nv]) != 0)
			return out_usage(x->cmd, "--vkey '%.80s' is not a valid Ed25519 verifier key "
			    "(NAME+HASH+BASE64)", a->multi[i]);
		nv++;
	}
	if (vkf != NULL) {
		if (nv > 0)
			return out_usage(x->cmd, "give at most one of --vkey, --vkey-file");
		if (input_read_file(x->cmd, vkf, NOTE_VKEY_PARSE_MAX + 2, &buf, &len) != 0)
			return CLI_EXIT_USAGE;
		ret = audit_verify_vkey_parse(buf, len, &v[0]);
		free(buf);
		buf = NULL;
		if (ret != 0)
			return out_usage(x->cmd, "--vkey-file %s is not a valid Ed25519 verifier key "
			    "(NAME+HASH+BASE64)", vkf);
		nv = 1;
	}
	if (input_read_file(x->cmd, a->pos[0], BUNDLE_MAX_BYTES, &buf, &len) != 0)
		return CLI_EXIT_USAGE;
	if ((ret = evidence_read_tar(buf, len, &b, msg, sizeof(msg))) != 0) {
		free(buf);
		if (ret == BS_ERR_NOMEM) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_USAGE;
		}
		memset(&rep, 0, sizeof(rep));
		snprintf(rep.file, sizeof(rep.file), "%s", a->pos[0]);
		snprintf(rep.error, sizeof(rep.error), "%s", msg);
		goto print;
	}
	free(buf);
	ret = evidence_verify(&b, nv > 0 ? v : NULL, nv, &rep);
	evidence_free(&b);
	if (ret != 0) {
		out_err(x->cmd, "cannot verify: %s", bs_strerror(ret));
		return CLI_EXIT_USAGE;
	}
print:
	if (x->json) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_bool(&j, "ok", rep.ok);
		if (rep.ok) {
			out_json_null(&j, "file");
			out_json_null(&j, "error");
		} else {
			out_json_str(&j, "file", rep.file);
			out_json_str(&j, "error", rep.error);
		}
		out_json_uint(&j, "records", rep.records);
		out_json_uint(&j, "tree_size", rep.tree_size);
		out_json_str(&j, "from", rep.from);
		out_json_str(&j, "to", rep.to);
		out_json_str(&j, "vehicle", rep.vehicle);
		out_json_uint(&j, "certs", rep.certs);
		out_json_uint(&j, "crls", rep.crls);
		out_json_uint(&j, "keys", rep.keys);
		out_json_bool(&j, "trust_from_bundle", rep.trust_from_bundle);
		out_json_close(&j);
	} else if (rep.ok) {
		printf("verify-bundle: OK: %" PRIu64 " records", rep.records);
		if (rep.records > 0)
			printf(" (seq %" PRIu64 " to %" PRIu64 ")", rep.first_seq, rep.last_seq);
		printf(" from %s to %s", rep.from, rep.to);
		if (rep.vehicle[0] != '\0')
			printf(" of vehicle %s", rep.vehicle);
		printf("; %zu certificates, %zu CRLs, %zu public keys; sealed by record %" PRIu64
		    ", checkpoint of %" PRIu64 " records signed by ", rep.certs, rep.crls, rep.keys,
		    rep.seal_seq, rep.tree_size);
		out_safe(stdout, rep.signer);
		putchar('\n');
	} else {
		printf("verify-bundle: FAILED at %s: ", rep.file);
		out_safe(stdout, rep.error);
		putchar('\n');
	}
	if (rep.ok && rep.trust_from_bundle)
		out_err(x->cmd, "warning: no --vkey or --vkey-file: the bundle was checked against "
		    "its own vkey, which proves only that it is consistent; compare that key with "
		    "the one the log's operator published");
	return rep.ok ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
}

#define EXPLAIN_SCAN_DEFAULT 1000000UL

/* Adds the records of resp (the first at index start) whose request_id is rid. */
static int
match_request(struct cli_ctx *x, const Boltseal__V1__ReadRecordsResponse *resp, uint64_t start,
    const char *rid, struct recs *found)
{
	int ret = 0;

	for (size_t i = 0; i < resp->n_records && ret == 0; i++) {
		json_t *o = json_loadb((const char *)resp->records[i].data, resp->records[i].len, 0,
		    NULL);
		const char *r = rec_str(o, "request_id");

		if (r != NULL && strcmp(r, rid) == 0 && recs_add(found, start + i,
		    resp->records[i].data, resp->records[i].len) != 0) {
			out_err(x->cmd, "out of memory");
			ret = CLI_EXIT_USAGE;
		}
		json_decref(o);
	}
	return ret;
}

int
cli_audit_explain(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ReadRecordsResponse *resp = NULL;
	const char *rid = a->pos[0], *ms = args_get(a, "max-scan");
	unsigned long max_scan = EXPLAIN_SCAN_DEFAULT;
	uint64_t end, start, scanned = 0;
	struct recs found = { 0 };
	int ret;

	if (strlen(rid) != 16 || strspn(rid, "0123456789abcdef") != 16)
		return out_usage(x->cmd, "'%s' is not a request id (16 lower-case hex digits, as in "
		    "\"permission denied (request id ...)\")", rid);
	if (ms != NULL && args_uint(ms, 1, 1000000000UL, &max_scan) != 0)
		return out_usage(x->cmd, "--max-scan: a number of records, 1 to 1000000000");
	if ((ret = read_records(x, 0, 1, &resp)) != 0)
		return ret;
	end = resp->log_size;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	/* from the newest page back: a request being explained is usually recent */
	while (end > 0 && scanned < max_scan && found.n == 0) {
		uint64_t pos;
		size_t got;

		start = end > PAGE ? end - PAGE : 0;
		/* an answer may hold fewer records than asked (about 1 MiB): read on */
		for (pos = start; pos < end; pos += got) {
			if ((ret = read_records(x, pos, (uint32_t)(end - pos), &resp)) != 0)
				goto out;
			got = resp->n_records;
			ret = got == 0 ? CLI_EXIT_CONN : match_request(x, resp, pos, rid, &found);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			if (got == 0)
				out_err(x->cmd, "the server answered no record at %" PRIu64, pos);
			if (ret != 0)
				goto out;
			scanned += got;
		}
		end = start;
	}
	if (found.n == 0) {
		out_err(x->cmd, "no record of request %s in the last %" PRIu64 " records (--max-scan "
		    "reads further back)", rid, scanned);
		ret = CLI_EXIT_NEGATIVE;
		goto out;
	}
	if (x->json) {
		/* the records as the log holds them (JSON already) */
		printf("{\"records\":[");
		for (size_t i = 0; i < found.n; i++) {
			printf("%s", i > 0 ? "," : "");
			fwrite(found.v[i].line, 1, found.v[i].len, stdout);
		}
		printf("]}\n");
		ret = CLI_EXIT_OK;
		goto out;
	}
	for (size_t i = 0; i < found.n; i++) {
		json_t *o = json_loadb((const char *)found.v[i].line, found.v[i].len, 0, NULL);
		const char *v;

		printf("record %" PRIu64 ", %s\n", found.v[i].seq,
		    (v = rec_str(o, "timestamp")) != NULL ? v : "?");
		out_field("  caller:", (v = rec_str(o, "principal_id")) != NULL ? v :
		    "(no principal)");
		out_field("  identity:", rec_str(o, "identity"));
		out_field("  method:", rec_str(o, "method"));
		if ((v = rec_str(o, "key")) != NULL)
			out_field("  key:", v);
		if ((v = rec_str(o, "target")) != NULL)
			out_field("  target:", v);
		out_field("  result:", rec_str(o, "result"));
		out_field("  reason:", (v = rec_str(o, "reason")) != NULL ? v : "-");
		json_decref(o);
	}
	ret = CLI_EXIT_OK;
out:
	recs_free(&found);
	return ret;
}

const struct args_opt cli_audit_explain_opts[] = {
	{ "max-scan", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

const struct args_opt cli_audit_bundle_opts[] = {
	{ "from", 0, ARGS_VALUE }, { "to", 0, ARGS_VALUE }, { "vehicle", 0, ARGS_VALUE },
	{ "out", 'o', ARGS_VALUE }, { "wait", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

const struct args_opt cli_audit_verify_bundle_opts[] = {
	{ "vkey", 0, ARGS_MULTI }, { "vkey-file", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
