/*
 * test_auditservice.c - unit tests of boltseal.v1.AuditService's handlers
 * (src/services/audit) without sockets and without an HSM: the dispatcher
 * with a fake transport (rpc_harness.h), a real audit log and checkpointer
 * in a temporary directory, and a fake key side behind the real key door
 * codec that signs the checkpoints with an OpenSSL Ed25519 key. What the
 * service returns is checked independently: the checkpoint note with the
 * signed-note verifier and the key's public key, inclusion and consistency
 * proofs with the RFC 9162 verifiers, records against the log file.
 */
#define _GNU_SOURCE                 /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/auditlog.h"
#include "audit/checkpoint.h"
#include "boltseal/v1/audit.pb-c.h"
#include "daemon/bs_config.h"
#include "exec/workq.h"
#include "formats/merkle.h"
#include "formats/signed_note.h"
#include "keyops/keyclient.h"
#include "keys/catalog.h"
#include "policy/policy.h"
#include "rpc/rpc_service.h"
#include "services/services.h"
#include "rpc_harness.h"

#define OK_URI "spiffe://t.example/auditor"
#define OTHER_URI "spiffe://t.example/other"
#define AS "/boltseal.v1.AuditService/"
#define ORIGIN "test.example/audit"
#define NRECORDS 7

extern const struct rpc_service auditservice_service;

static const char policy_text[] =
    "principal auditor\n"
    "    uri " OK_URI "\n"
    "    roles auditor\n"
    "principal other\n"
    "    uri " OTHER_URI "\n"
    "    roles none\n"
    "role auditor\n"
    "    grant\n"
    "        methods boltseal.v1.AuditService/*\n"
    "role none\n";

static EVP_PKEY *audit_key;
static int signs;

/* The fake key side: SIGN with the Ed25519 audit key, nothing else. */
static int
fake_serve(void *arg, const uint8_t *req, size_t len, uint8_t **ans, size_t *anslen)
{
	struct keyop_request r;
	struct keyop_answer a;
	EVP_MD_CTX *md;
	size_t sl = 64;
	int rc;

	(void)arg;
	if ((rc = keyops_request_decode(req, len, &r)) != 0)
		return rc;
	memset(&a, 0, sizeof(a));
	a.type = r.type;
	if (r.type != KEYOP_SIGN || r.alg != BS_ALG_ED25519 || strcmp(r.key.name, "audit-log") != 0) {
		a.rc = BS_ERR_NOT_FOUND;
	} else {
		signs++;
		a.sigs = calloc(1, sizeof(*a.sigs));
		a.nsigs = 1;
		assert_non_null(md = EVP_MD_CTX_new());
		assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, audit_key), 1);
		assert_int_equal(EVP_DigestSign(md, a.sigs[0].sig, &sl, r.inputs[0].data,
		    r.inputs[0].len), 1);
		EVP_MD_CTX_free(md);
		a.sigs[0].sig_len = sl;
	}
	rc = keyops_answer_encode(&a, ans, anslen);
	keyop_answer_clear(&a);
	keyop_request_clear(&r);
	return rc;
}

struct fixture {
	char tmp[64];
	struct event_base *base;
	struct rpc_registry *reg;
	struct policy *pol;
	struct rpc_dispatcher *d;
	struct catalog *cat;
	struct workq *work;
	struct audit_log *log;
	struct bs_config cfg;
	struct svc_ctx svc;
	uint8_t pub[32];
};

static void
record_appended(void *arg, int rc)
{
	(void)rc;
	(*(int *)arg)++;
}

static int
setup(void **state)
{
	const struct rpc_service *svcs[] = { &auditservice_service };
	struct workq_opts wo = { 1, 64, NULL, NULL, NULL, "work" };
	struct audit_log_opts ao;
	struct rpc_dispatcher_opts o;
	struct fixture *f = calloc(1, sizeof(*f));
	struct catalog_key k;
	struct catalog_version v;
	char err[1024], path[256], ckdir[300];
	uint8_t *der = NULL;
	size_t publen = 32;
	int n, done = 0;

	assert_non_null(f);
	signs = 0;
	harness_tmpdir(f->tmp, sizeof(f->tmp));
	assert_non_null(f->base = event_base_new());
	assert_int_equal(rpc_registry_new(svcs, 1, &f->reg, err, sizeof(err)), 0);
	f->pol = harness_policy(f->tmp, policy_text, f->reg);
	snprintf(path, sizeof(path), "%s/catalog.db", f->tmp);
	if (catalog_open(path, &f->cat, err, sizeof(err)) != 0)
		fail_msg("catalog_open: %s", err);
	assert_int_equal(workq_new(f->base, &wo, &f->work), 0);
	assert_int_equal(keyclient_new_serve(f->base, fake_serve, NULL, &f->svc.keys), 0);
	/* the audit key in the catalog, its private half in the fake key side */
	assert_non_null(audit_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_int_equal(EVP_PKEY_get_raw_public_key(audit_key, f->pub, &publen), 1);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	snprintf(k.name, sizeof(k.name), "audit-log");
	k.purpose = BS_PURPOSE_AUDIT;
	k.alg = BS_ALG_ED25519;
	k.state = BS_KEY_ENABLED;
	v.version = 1;
	v.state = BS_KEY_ENABLED;
	memset(v.hsm_id, 9, sizeof(v.hsm_id));
	assert_true((n = i2d_PUBKEY(audit_key, &der)) > 0);
	v.spki = der;
	v.spki_len = (size_t)n;
	assert_int_equal(catalog_db_add_version(f->cat, &k, &v), 0);
	assert_int_equal(catalog_mem_add_version(f->cat, &k, &v), 0);
	OPENSSL_free(der);
	/* a log with NRECORDS records */
	memset(&ao, 0, sizeof(ao));
	ao.queue_max = 64;
	snprintf(path, sizeof(path), "%s/audit", f->tmp);
	if (audit_log_open(path, f->base, &ao, &f->log, err, sizeof(err)) != 0)
		fail_msg("audit_log_open: %s", err);
	for (int i = 0; i < NRECORDS; i++) {
		struct audit_record r;
		char id[16];

		memset(&r, 0, sizeof(r));
		snprintf(id, sizeof(id), "r%d", i);
		r.type = AUDIT_RPC;
		r.request_id = id;
		r.key_version = -1;
		r.result = "OK";
		assert_int_equal(audit_log_append(f->log, &r, record_appended, &done), 0);
	}
	while (done < NRECORDS)
		(void)event_base_loop(f->base, EVLOOP_ONCE);
	snprintf(ckdir, sizeof(ckdir), "%s/checkpoints", path);
	if (checkpointer_new(f->base, f->svc.keys, f->work, f->cat, f->log, ckdir, ORIGIN,
	    "audit-log", 60000, &f->svc.checkpointer, err, sizeof(err)) != 0)
		fail_msg("checkpointer_new: %s", err);
	f->svc.audit = f->log;
	f->svc.catalog = f->cat;
	f->svc.cfg = &f->cfg;
	f->svc.registry = f->reg;
	f->svc.work = f->work;
	f->svc.nworkers = 1;
	f->svc.hsm_healthy = 1;
	f->svc.tls_ready = 1;
	o.registry = f->reg;
	o.env = &f->svc;
	o.audit = f->log;
	harness_audit_log = f->log;
	assert_int_equal(rpc_dispatcher_new(&o, &f->d), 0);
	rpc_dispatcher_set_policy(f->d, f->pol);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	harness_pump_idle(f->base, f->d);
	rpc_dispatcher_free(f->d);
	/* the daemon's order: nothing new starts, the queues drain, then free */
	checkpointer_stop(f->svc.checkpointer);
	workq_free(f->work);
	keyclient_free(f->svc.keys);
	checkpointer_free(f->svc.checkpointer);
	audit_log_close(f->log);
	harness_audit_log = NULL;
	catalog_close(f->cat);
	policy_free(f->pol);
	rpc_registry_free(f->reg);
	event_base_free(f->base);
	EVP_PKEY_free(audit_key);
	harness_rmdir(f->tmp);
	free(f);
	return 0;
}

static void
call_as(struct fixture *f, const char *uri, const char *path, const ProtobufCMessage *msg,
    struct fake_stream *fs)
{
	uint8_t buf[256];
	size_t n = protobuf_c_message_get_packed_size(msg);
	struct rpc_call *c;

	assert_true(n <= sizeof(buf));
	(void)protobuf_c_message_pack(msg, buf);
	c = harness_begin(f->d, uri, fs);
	harness_send(c, path, buf, n);
	assert_true(harness_pump(f->base, &fs->answers));
	rpc_call_detach(c);
}

static void
call(struct fixture *f, const char *path, const ProtobufCMessage *msg, struct fake_stream *fs)
{
	call_as(f, OK_URI, path, msg, fs);
}

/*
 * GetCheckpoint until the checkpointer has signed one: poked once here, as
 * its timer would (the call itself does not make it sign).
 */
static Boltseal__V1__GetCheckpointResponse *
checkpoint(struct fixture *f)
{
	Boltseal__V1__GetCheckpointRequest r = BOLTSEAL__V1__GET_CHECKPOINT_REQUEST__INIT;
	struct fake_stream fs;

	checkpointer_poke(f->svc.checkpointer);
	for (int i = 0; i < 50; i++) {
		call(f, AS "GetCheckpoint", &r.base, &fs);
		if (fs.a.grpc_status == GRPC_STATUS_OK)
			return boltseal__v1__get_checkpoint_response__unpack(NULL, fs.a.msg_len,
			    fs.msg);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_NOT_FOUND);
		harness_pump_idle(f->base, f->d);
	}
	fail_msg("no checkpoint was signed");
	return NULL;
}

static void
test_checkpoint_verifies(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__GetCheckpointResponse *cp = checkpoint(f);
	struct note_verifier v;
	uint8_t root[MERKLE_HASH_LEN];
	size_t text_len = 0;

	assert_non_null(cp);
	assert_true(cp->tree_size >= NRECORDS);
	assert_true(cp->log_size >= cp->tree_size);
	assert_int_equal(cp->root_hash.len, MERKLE_HASH_LEN);
	assert_int_equal(audit_log_root(f->log, cp->tree_size, root), 0);
	assert_memory_equal(cp->root_hash.data, root, MERKLE_HASH_LEN);
	/* the note verifies with the key's own public key, and names this root */
	assert_int_equal(note_vkey_parse(cp->verifier_key, &v), 0);
	assert_memory_equal(v.pub, f->pub, 32);
	assert_int_equal(note_open(cp->note.data, cp->note.len, &v, 1, &text_len), 0);
	assert_true(signs >= 1);
	boltseal__v1__get_checkpoint_response__free_unpacked(cp, NULL);

	/* Asking again does not make the daemon sign, though each call is a new record. */
	{
		Boltseal__V1__GetCheckpointRequest r = BOLTSEAL__V1__GET_CHECKPOINT_REQUEST__INIT;
		struct fake_stream fs;
		int signs_before = signs;

		for (int i = 0; i < 5; i++) {
			call(f, AS "GetCheckpoint", &r.base, &fs);
			assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
			harness_pump_idle(f->base, f->d);
		}
		assert_int_equal(signs, signs_before);
	}
}

static void
test_inclusion_and_consistency_proofs_verify(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__GetCheckpointResponse *cp = checkpoint(f);
	Boltseal__V1__GetInclusionProofRequest ir = BOLTSEAL__V1__GET_INCLUSION_PROOF_REQUEST__INIT;
	Boltseal__V1__GetConsistencyProofRequest cr = BOLTSEAL__V1__GET_CONSISTENCY_PROOF_REQUEST__INIT;
	Boltseal__V1__GetInclusionProofResponse *ip;
	Boltseal__V1__GetConsistencyProofResponse *cpr;
	uint8_t proof[64][MERKLE_HASH_LEN];
	struct fake_stream fs;
	uint64_t size;

	assert_non_null(cp);
	size = cp->tree_size;
	boltseal__v1__get_checkpoint_response__free_unpacked(cp, NULL);
	for (uint64_t i = 0; i < size; i++) {
		ir.leaf_index = i;
		ir.tree_size = size;   /* explicit: every call adds a record, checkpoints move on */
		call(f, AS "GetInclusionProof", &ir.base, &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
		assert_non_null(ip = boltseal__v1__get_inclusion_proof_response__unpack(NULL,
		    fs.a.msg_len, fs.msg));
		assert_int_equal(ip->tree_size, size);
		for (size_t h = 0; h < ip->n_hashes; h++)
			memcpy(proof[h], ip->hashes[h].data, MERKLE_HASH_LEN);
		assert_int_equal(merkle_verify_inclusion(i, size, ip->leaf_hash.data,
		    (const uint8_t (*)[MERKLE_HASH_LEN])proof, ip->n_hashes, ip->root_hash.data), 0);
		boltseal__v1__get_inclusion_proof_response__free_unpacked(ip, NULL);
	}
	for (uint64_t s1 = 1; s1 <= size; s1++) {
		cr.first_size = s1;
		cr.second_size = size;
		call(f, AS "GetConsistencyProof", &cr.base, &fs);
		assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
		assert_non_null(cpr = boltseal__v1__get_consistency_proof_response__unpack(NULL,
		    fs.a.msg_len, fs.msg));
		for (size_t h = 0; h < cpr->n_hashes; h++)
			memcpy(proof[h], cpr->hashes[h].data, MERKLE_HASH_LEN);
		assert_int_equal(merkle_verify_consistency(s1, size, cpr->first_root.data,
		    cpr->second_root.data, (const uint8_t (*)[MERKLE_HASH_LEN])proof,
		    cpr->n_hashes), 0);
		boltseal__v1__get_consistency_proof_response__free_unpacked(cpr, NULL);
	}
	/* tree_size 0 is the latest checkpoint's (at least the one above) */
	ir.leaf_index = 0;
	ir.tree_size = 0;
	call(f, AS "GetInclusionProof", &ir.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_non_null(ip = boltseal__v1__get_inclusion_proof_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_true(ip->tree_size >= size);
	boltseal__v1__get_inclusion_proof_response__free_unpacked(ip, NULL);
	/* out of range */
	ir.leaf_index = size;
	ir.tree_size = size;
	call(f, AS "GetInclusionProof", &ir.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	ir.leaf_index = 0;
	ir.tree_size = 1000000;
	call(f, AS "GetInclusionProof", &ir.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
	cr.first_size = size + 1;
	cr.second_size = size;
	call(f, AS "GetConsistencyProof", &cr.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
}

static void
test_read_records_on_the_work_queue(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__ReadRecordsRequest r = BOLTSEAL__V1__READ_RECORDS_REQUEST__INIT;
	Boltseal__V1__ReadRecordsResponse *rr;
	struct fake_stream fs;
	char want[16];

	r.start = 2;
	r.max_records = 3;
	call(f, AS "ReadRecords", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_OK);
	assert_non_null(rr = boltseal__v1__read_records_response__unpack(NULL, fs.a.msg_len,
	    fs.msg));
	assert_int_equal(rr->start, 2);
	assert_int_equal(rr->n_records, 3);
	for (size_t i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "\"r%zu\"", i + 2);
		assert_non_null(memmem(rr->records[i].data, rr->records[i].len, want, strlen(want)));
	}
	assert_true(rr->log_size >= NRECORDS);
	boltseal__v1__read_records_response__free_unpacked(rr, NULL);
	r.start = 1000000;
	call(f, AS "ReadRecords", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_NOT_FOUND);
}

static void
test_not_granted(void **state)
{
	struct fixture *f = *state;
	Boltseal__V1__ReadRecordsRequest r = BOLTSEAL__V1__READ_RECORDS_REQUEST__INIT;
	struct fake_stream fs;

	call_as(f, OTHER_URI, AS "ReadRecords", &r.base, &fs);
	assert_int_equal(fs.a.grpc_status, GRPC_STATUS_PERMISSION_DENIED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkpoint_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inclusion_and_consistency_proofs_verify, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_records_on_the_work_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_granted, setup, teardown),
	};

	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
