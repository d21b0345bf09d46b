/*
 * test_policy.c - unit tests for the authorization policy (src/policy/):
 * the shipped etc/policy.example against a table covering every seed role x
 * every known method; certificate-to-principal mapping and its precedence;
 * each condition operator (true, false, attribute missing) and
 * attribute-vs-attribute comparison; default deny; the exact deny reasons;
 * one case per parse error with its line number, from a file and from a
 * buffer (policy_parse); a file with many errors reported in one pass; file
 * mode, type and error-buffer truncation checks; 'require mfa' and 'require
 * approvals N' (good and bad forms) and every verdict of policy_evaluate
 * with its precedence rule.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

#ifndef BS_SRCDIR
#define BS_SRCDIR "."
#endif

#define KS "boltseal.v1.KeyService/"
#define AS "boltseal.v1.AuditService/"

#define ES "boltseal.v1.EnvelopeService/"
#define ADM "boltseal.v1.AdminService/"
static const char *const known_methods[] = {
	KS "CreateKey", KS "GetKey", KS "ListKeys", KS "RotateKey", KS "GetPublicKey", KS "Sign",
	KS "Verify", KS "SignBatch", AS "GetCheckpoint", AS "GetInclusionProof",
	AS "GetConsistencyProof", AS "ReadRecords",
	"boltseal.v1.OtaService/CreateRepository", "boltseal.v1.OtaService/SignMetadata",
	"boltseal.v1.OtaService/RotateRoot", "boltseal.v1.OtaService/GetRepository",
	"boltseal.v1.OtaService/SetDelegation",
	"boltseal.v1.VehicleService/RegisterVehicle", "boltseal.v1.VehicleService/GetVehicle",
	"boltseal.v1.VehicleService/ListVehicles",
	"boltseal.v1.VehicleService/UpdateVehicleAttributes",
	"boltseal.v1.VehicleService/SetVehicleStatus",
	"boltseal.v1.VehicleService/AddVehicleIdentity",
	"boltseal.v1.VehicleService/RevokeVehicleIdentity",
	"boltseal.v1.CommandService/SignCommand", "boltseal.v1.CommandService/InspectCommand",
	"boltseal.v1.CheckpointService/RegisterLog", "boltseal.v1.CheckpointService/SignCheckpoint",
	"boltseal.v1.CheckpointService/GetLogStatus", "boltseal.v1.CheckpointService/CosignCheckpoint",
	ES "GenerateDataKey", ES "GenerateDataKeyWithoutPlaintext", ES "Decrypt", ES "ReEncrypt",
	ES "Encrypt", ES "GenerateDataKeyBatch", ES "DecryptBatch", ES "GenerateDataKeyForVehicle",
	ES "Tokenize", ES "SetMinDecryptionVersion", KS "DisableKey", KS "EnableKey",
	KS "ScheduleKeyDestruction", KS "CancelKeyDestruction",
	ADM "EnrollSecondFactor", ADM "ActivateSecondFactor", ADM "GetSecondFactor",
	ADM "ResetSecondFactor", ADM "Propose", ADM "ListProposals", ADM "GetProposal",
	ADM "Approve", ADM "Reject", ADM "Execute", ADM "GetPolicy", ADM "SetPolicy",
	"boltseal.v1.CertificateService/CreateAuthority",
	"boltseal.v1.CertificateService/GetAuthority",
	"boltseal.v1.CertificateService/SetProfile",
	"boltseal.v1.CertificateService/IssueCertificate",
	"boltseal.v1.CertificateService/RenewCertificate",
	"boltseal.v1.CertificateService/RevokeCertificate",
	"boltseal.v1.CertificateService/GetCrl",
	"boltseal.v1.TelemetryService/VerifyTelemetryBatch",
	"boltseal.v1.TelemetryService/VerifyTelemetryBatches",
	"boltseal.v1.CertificateService/ListProfiles",
	"boltseal.v1.CertificateService/ListCertificates",
};
#define NMETHODS (sizeof(known_methods) / sizeof(known_methods[0]))

static const char *const known_purposes[] = {
	"generic", "ota", "checkpoint", "command", "envelope", "audit", "admin", "ca",
};

static const struct policy_schema schema = {
	known_methods, NMETHODS,
	known_purposes, sizeof(known_purposes) / sizeof(known_purposes[0]),
};

struct fixture {
	char dir[PATH_MAX];     /* real path of a fresh temporary directory */
	char path[PATH_MAX + 32];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/bs-policy-XXXXXX";

	if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/policy", f->dir);
	*state = f;
	return 0;
}

static void
rm_tree(const char *dir)
{
	char p[PATH_MAX + 300];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

static void
write_bytes(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *fp;

	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Writes text as the policy file (mode 0600) and loads it. */
static int
load_text(struct fixture *f, const char *text, struct policy **p, char *err, size_t errlen)
{
	write_bytes(f->path, text, strlen(text), 0600);
	*p = NULL;
	return policy_load(f->path, &schema, p, err, errlen);
}

static struct policy *
must_load(struct fixture *f, const char *text)
{
	struct policy *p = NULL;
	char err[4096];

	if (load_text(f, text, &p, err, sizeof(err)) != 0)
		fail_msg("policy refused: %s", err);
	assert_non_null(p);
	return p;
}

static size_t
count_lines(const char *s)
{
	size_t n = *s != '\0';

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static int
authorize(const struct policy *p, const struct policy_principal *pr, const char *method,
    const char *key, const char *purpose, const struct policy_attr *attrs, size_t nattrs,
    char reason[POLICY_REASON_MAX])
{
	struct policy_request req = { method, key, purpose, attrs, nattrs, NULL };

	return policy_authorize(p, pr, "spiffe://test/caller", &req, reason);
}

/* --- the shipped example ------------------------------------------------------- */

struct seed {
	const char *id;
	const char *uri;        /* a dev certificate's URI SAN */
	const char *key;        /* a key in the role's namespace */
	const char *purpose;
	const char *alg;
	const char *expect;     /* '1' allow / '0' deny per known_methods[i] */
};

/*
 * Method order: CreateKey GetKey ListKeys RotateKey GetPublicKey Sign Verify
 * SignBatch | GetCheckpoint GetInclusionProof GetConsistencyProof ReadRecords |
 * OtaService CreateRepository SignMetadata RotateRoot GetRepository SetDelegation |
 * VehicleService Register Get List UpdateAttributes SetStatus AddIdentity RevokeIdentity |
 * CommandService SignCommand InspectCommand | CheckpointService RegisterLog SignCheckpoint
 * GetLogStatus CosignCheckpoint (these name the log's key) | EnvelopeService GenerateDataKey
 * GenerateDataKeyWithoutPlaintext Decrypt ReEncrypt Encrypt GenerateDataKeyBatch DecryptBatch
 * GenerateDataKeyForVehicle Tokenize SetMinDecryptionVersion (these name .key) | KeyService
 * DisableKey EnableKey ScheduleKeyDestruction CancelKeyDestruction | AdminService
 * EnrollSecondFactor ActivateSecondFactor GetSecondFactor ResetSecondFactor Propose
 * ListProposals GetProposal Approve Reject Execute GetPolicy SetPolicy (these name no key) |
 * CertificateService CreateAuthority GetAuthority SetProfile (these name .key; the seed grants
 * them for purpose ca only) IssueCertificate (names a profile; without request.profile the grid sees the
 * second-factor grant) RenewCertificate (names no key; role own-certificate) RevokeCertificate
 * (names a serial; the second factor) GetCrl (names .key) | TelemetryService
 * VerifyTelemetryBatch VerifyTelemetryBatches (name no key; telemetry-gateway) |
 * CertificateService ListProfiles ListCertificates (name no key; fleet-admin, auditor).
 * ListKeys, the AuditService, OtaService, VehicleService methods and InspectCommand name no key; the
 * others (KeyService, CommandService/SignCommand) name .key.
 */
static const struct seed seeds[] = {
	{ "ci-ota-release", "spiffe://fleet.example/ci/ota-release", "ota-fw", "ota", "ecdsa-p256-sha256",
	    "0100111100000101000000000000000000000000000000000000000000000000000" },
	{ "log-ota-log", "spiffe://fleet.example/log/ota-log", "log-ckpt", "checkpoint", "ed25519",
	    "0100110000000000000000000000000000000000000000000000000000000000000" },
	{ "svc-dispatch", "spiffe://fleet.example/svc/dispatch", "cmd-main", "command",
	    "ecdsa-p256-sha256", "0100110000000000001100001000000000000000000000000000000000001000000" },
	{ "gateways", "spiffe://fleet.example/gw/eu-west-1", "tlm-env", "envelope", "ecdsa-p256-sha256",
	    "0100000000000000000000000000001111111110000000000000000000001001100" },
	{ "alice", "spiffe://fleet.example/admin/alice", "ota-next", "ota", "ecdsa-p256-sha256",
	    "1111100000001001111111110000000000000000000011001111111000000000011" },
	{ "vehicles", "spiffe://fleet.example/vehicle/TRUCK-7", "ota-fw", "ota", "ecdsa-p256-sha256",
	    "0000000000000000000000000000000000000000000000000000000000001000000" },
	{ "auditor-ext", "spiffe://fleet.example/audit/ext", "audit-log", "audit", "ed25519",
	    "0100100011110000000000000100000000000000000000000000001000000000011" },
};

static int
method_names_key(const char *m)
{
	return (strncmp(m, KS, strlen(KS)) == 0 && strcmp(m, KS "ListKeys") != 0) ||
	    strcmp(m, "boltseal.v1.CommandService/SignCommand") == 0 ||
	    strncmp(m, "boltseal.v1.CheckpointService/", 30) == 0 || strncmp(m, ES, strlen(ES)) == 0 ||
	    (strncmp(m, "boltseal.v1.CertificateService/", 31) == 0 &&
	    strcmp(m, "boltseal.v1.CertificateService/IssueCertificate") != 0 &&
	    strcmp(m, "boltseal.v1.CertificateService/RenewCertificate") != 0 &&
	    strcmp(m, "boltseal.v1.CertificateService/ListProfiles") != 0 &&
	    strcmp(m, "boltseal.v1.CertificateService/ListCertificates") != 0 &&
	    strcmp(m, "boltseal.v1.CertificateService/RevokeCertificate") != 0);
}

/* Extra cases beyond the role x method grid. */
struct extra {
	const char *uri;
	const char *method;
	const char *key;
	const char *purpose;
	const char *alg;            /* key.algorithm, or NULL */
	const char *req_purpose;    /* request.purpose, or NULL */
	int allow;
};

static const struct extra extras[] = {
	/* ci-signer: no RSA for signing, but reading an RSA key is fine. */
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", "ota-fw", "ota", "rsa-3072-pss-sha256", NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "SignBatch", "ci-x", "generic", "rsa-3072-pss-sha256", NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", "ci-build", "generic", "ed25519", NULL, 1 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", "ota-fw", "ota", NULL, NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Verify", "ota-fw", "ota", "rsa-3072-pss-sha256", NULL, 1 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", "prod-x", "ota", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", "ota-fw", "command", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "GetKey", "ota-fw", "audit", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/ci/ota-release", KS "Sign", NULL, NULL, "ed25519", NULL, 0 },
	/* log-signer and command-issuer stay in their namespaces. */
	{ "spiffe://fleet.example/log/ota-log", KS "Sign", "ota-fw", "ota", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/log/ota-log", KS "Sign", "log-x", "generic", "ed25519", NULL, 1 },
	{ "spiffe://fleet.example/log/ota-log", KS "Sign", "log-x", "command", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/svc/dispatch", KS "Sign", "log-x", "checkpoint", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/svc/dispatch", KS "Sign", "cmd-x", "generic", "rsa-3072-pss-sha256", NULL, 1 },
	/* Every gateway certificate maps to the gateways principal. */
	{ "spiffe://fleet.example/gw/us-east-2", KS "GetKey", "tlm-x", "envelope", NULL, NULL, 1 },
	{ "spiffe://fleet.example/gw/us-east-2", KS "GetPublicKey", "tlm-x", "generic", NULL, NULL, 0 },
	{ "spiffe://fleet.example/gw/us-east-2", KS "GetKey", "cmd-x", "envelope", NULL, NULL, 0 },
	{ "spiffe://fleet.example/gw/us-east-2", ES "Decrypt", "tlm-x", "generic", NULL, NULL, 0 },
	{ "spiffe://fleet.example/gw/us-east-2", ES "Decrypt", "cmd-x", "envelope", NULL, NULL, 0 },
	/* fleet-admin raises the minimum decryption version of envelope keys only */
	{ "spiffe://fleet.example/admin/alice", ES "SetMinDecryptionVersion", "tlm-x", "envelope",
	    NULL, NULL, 1 },
	{ "spiffe://fleet.example/admin/alice", ES "Decrypt", "tlm-x", "envelope", NULL, NULL, 0 },
	/* fleet-admin: no audit keys, request.purpose required. */
	{ "spiffe://fleet.example/admin/alice", KS "CreateKey", "audit-2", "audit", "ed25519", "audit", 0 },
	{ "spiffe://fleet.example/admin/alice", KS "RotateKey", "audit-log", "audit", "ed25519", "audit", 0 },
	{ "spiffe://fleet.example/admin/alice", KS "CreateKey", "x", "generic", "ed25519", NULL, 0 },
	{ "spiffe://fleet.example/admin/alice", KS "RotateKey", "cmd-x", "command", "ed25519", "command", 1 },
	{ "spiffe://fleet.example/admin/alice", KS "GetKey", "audit-log", "audit", "ed25519", NULL, 1 },
	{ "spiffe://fleet.example/admin/alice", KS "ListKeys", "x", "generic", NULL, NULL, 0 },
	/* auditor: only audit keys; AuditService calls name no key. */
	{ "spiffe://fleet.example/audit/ext", KS "GetKey", "ota-fw", "ota", NULL, NULL, 0 },
	/* ... but every public key, for evidence bundles */
	{ "spiffe://fleet.example/audit/ext", KS "GetPublicKey", "ota-fw", "ota", NULL, NULL, 1 },
	{ "spiffe://fleet.example/audit/ext", AS "ReadRecords", "audit-log", "audit", NULL, NULL, 0 },
	/* Not in the policy at all. */
	{ "spiffe://fleet.example/admin/alice", "grpc.health.v1.Health/Check", NULL, NULL, NULL, NULL, 0 },
	{ "spiffe://fleet.example/audit/ext", AS "Unknown", NULL, NULL, NULL, NULL, 0 },
};

static void
test_example_file(void **state)
{
	struct fixture *f = *state;
	const struct policy_principal *pr;
	struct policy_attr attrs[2];
	struct policy *p = NULL;
	char path[PATH_MAX], err[4096], reason[POLICY_REASON_MAX];
	size_t i, j, na;
	int want, got;

	(void)f;
	snprintf(path, sizeof(path), "%s/etc/policy.example", BS_SRCDIR);
	if (policy_load(path, &schema, &p, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(policy_principal_count(p), 9);

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		pr = policy_map(p, seeds[i].uri, NULL);
		assert_non_null(pr);
		assert_string_equal(policy_principal_id(pr), seeds[i].id);
		for (j = 0; j < NMETHODS; j++) {
			int k = method_names_key(known_methods[j]);

			attrs[0] = (struct policy_attr){ "key.algorithm", seeds[i].alg };
			attrs[1] = (struct policy_attr){ "request.purpose", seeds[i].purpose };
			want = seeds[i].expect[j] == '1';
			got = authorize(p, pr, known_methods[j], k ? seeds[i].key : NULL,
			    k ? seeds[i].purpose : NULL, attrs, 2, reason);
			if (got != want)
				fail_msg("%s %s: got %d, wanted %d (%s)", seeds[i].id,
				    known_methods[j], got, want, reason);
			if (got == 1)
				assert_string_equal(reason, "");
			else
				assert_true(reason[0] != '\0');
			/* may_call is a necessary condition. */
			if (want)
				assert_int_equal(policy_may_call(p, pr, known_methods[j]), 1);
		}
	}
	for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
		pr = policy_map(p, extras[i].uri, NULL);
		assert_non_null(pr);
		na = 0;
		if (extras[i].alg != NULL)
			attrs[na++] = (struct policy_attr){ "key.algorithm", extras[i].alg };
		if (extras[i].req_purpose != NULL)
			attrs[na++] = (struct policy_attr){ "request.purpose", extras[i].req_purpose };
		got = authorize(p, pr, extras[i].method, extras[i].key, extras[i].purpose, attrs, na,
		    reason);
		if (got != extras[i].allow)
			fail_msg("extra %zu (%s %s %s): got %d (%s)", i, extras[i].uri,
			    extras[i].method, extras[i].key, got, reason);
	}
	/* The pre-check. */
	pr = policy_map(p, "spiffe://fleet.example/admin/alice", NULL);
	assert_int_equal(policy_may_call(p, pr, KS "Sign"), 0);
	assert_int_equal(policy_may_call(p, pr, KS "SignBatch"), 0);
	assert_int_equal(policy_may_call(p, pr, KS "CreateKey"), 1);
	assert_int_equal(policy_may_call(p, pr, "grpc.health.v1.Health/Check"), 0);
	pr = policy_map(p, "spiffe://fleet.example/audit/ext", NULL);
	assert_int_equal(policy_may_call(p, pr, AS "ReadRecords"), 1);
	assert_int_equal(policy_may_call(p, pr, AS "Nested/x"), 0);
	assert_int_equal(policy_may_call(p, pr, AS), 0);
	assert_int_equal(policy_may_call(p, pr, KS "Sign"), 0);
	/* Unmapped certificates. */
	assert_null(policy_map(p, "spiffe://fleet.example/ci/ota-release/x", NULL));
	assert_null(policy_map(p, "spiffe://fleet.example/gw", NULL));
	assert_null(policy_map(p, "spiffe://other.example/admin/alice", NULL));
	assert_null(policy_map(p, NULL, NULL));
	policy_free(p);
}

/* --- mapping ----------------------------------------------------------------- */

static const uint8_t fp_a[32] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
	0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
static const uint8_t fp_b[32] = { 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
	0x10, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x11 };
#define FP_A_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_B_COLONS "FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:" \
	"FE:DC:BA:98:76:54:32:10:fe:dc:ba:98:76:54:32:11"

static const char map_policy[] =
    "principal fp-holder\n"
    "    cert-sha256 " FP_A_HEX "\n"
    "    roles r\n"
    "principal exact\n"
    "    uri spiffe://x/a/b\n"
    "    roles r\n"
    "principal short\n"
    "    uri-prefix spiffe://x/a/\n"
    "    roles r\n"
    "principal long\n"
    "    uri-prefix spiffe://x/a/b/\n"
    "    roles r\n"
    "principal two-uris\n"
    "    uri spiffe://x/p/laptop\n"
    "    uri spiffe://x/p/token\n"
    "    roles r\n"
    "principal uri-and-fp\n"
    "    uri spiffe://x/q\n"
    "    cert-sha256 " FP_B_COLONS "\n"
    "    roles r\n"
    "role r\n";

static const char *
mapped(const struct policy *p, const char *uri, const uint8_t *fp)
{
	const struct policy_principal *pr = policy_map(p, uri, fp);

	return pr != NULL ? policy_principal_id(pr) : "(none)";
}

static void
test_mapping(void **state)
{
	struct fixture *f = *state;
	struct policy *p = must_load(f, map_policy);
	uint8_t other[32];

	memset(other, 0x5a, sizeof(other));
	assert_int_equal(policy_principal_count(p), 6);
	/* Each kind alone. */
	assert_string_equal(mapped(p, NULL, fp_a), "fp-holder");
	assert_string_equal(mapped(p, "spiffe://x/a/b", NULL), "exact");
	assert_string_equal(mapped(p, "spiffe://x/a/c", NULL), "short");
	assert_string_equal(mapped(p, "spiffe://x/a/", NULL), "short");
	/* Precedence: fingerprint > exact uri > longest prefix. */
	assert_string_equal(mapped(p, "spiffe://x/a/b", fp_a), "fp-holder");
	assert_string_equal(mapped(p, "spiffe://x/a/b/c", fp_a), "fp-holder");
	assert_string_equal(mapped(p, "spiffe://x/a/b", other), "exact");
	assert_string_equal(mapped(p, "spiffe://x/a/b/c", other), "long");
	assert_string_equal(mapped(p, "spiffe://x/a/bc", NULL), "short");
	/* Two certificates, one principal. */
	assert_ptr_equal(policy_map(p, "spiffe://x/p/laptop", NULL),
	    policy_map(p, "spiffe://x/p/token", NULL));
	assert_string_equal(mapped(p, "spiffe://x/p/token", NULL), "two-uris");
	assert_ptr_equal(policy_map(p, "spiffe://x/q", NULL),
	    policy_map(p, "spiffe://elsewhere/q", fp_b));
	assert_string_equal(mapped(p, NULL, fp_b), "uri-and-fp");
	/* Unmapped. */
	assert_null(policy_map(p, NULL, NULL));
	assert_null(policy_map(p, "spiffe://x/a", other));
	assert_null(policy_map(p, "spiffe://x/p/laptop2", NULL));
	assert_null(policy_map(p, "SPIFFE://x/a/b", NULL));
	assert_null(policy_map(p, "", NULL));
	assert_null(policy_map(NULL, "spiffe://x/a/b", fp_a));
	policy_free(p);

	/* The longest prefix wins whatever the order in the file. */
	p = must_load(f,
	    "principal long\n    uri-prefix spiffe://x/a/b/\n    roles r\n"
	    "principal short\n    uri-prefix spiffe://x/a/\n    roles r\n"
	    "principal mid\n    uri-prefix spiffe://x/a/b\n    roles r\n"
	    "role r\n");
	assert_string_equal(mapped(p, "spiffe://x/a/b/c", NULL), "long");
	assert_string_equal(mapped(p, "spiffe://x/a/bc", NULL), "mid");
	assert_string_equal(mapped(p, "spiffe://x/a/c", NULL), "short");
	policy_free(p);
}

/* policy_lint: a uri-prefix without a trailing '/' is a warning (only that). */
static void
test_lint_prefix_slash(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	char buf[1024], tiny[40];

	p = must_load(f,
	    "principal ok\n    uri-prefix spiffe://x/a/\n    uri spiffe://x/exact\n    roles r\n"
	    "principal gw\n    uri-prefix spiffe://x/gw\n    uri-prefix spiffe://x/tel\n    roles r\n"
	    "role r\n");
	assert_int_equal(policy_lint(p, buf, sizeof(buf)), 2);
	assert_string_equal(buf,
	    "principal 'gw' (line 5): uri-prefix 'spiffe://x/gw' does not end with '/', so it also "
	    "matches URIs that merely begin with it\n"
	    "principal 'gw' (line 5): uri-prefix 'spiffe://x/tel' does not end with '/', so it also "
	    "matches URIs that merely begin with it");
	/* The warning is true: the prefix does match a sibling. */
	assert_string_equal(mapped(p, "spiffe://x/gwevil", NULL), "gw");
	/* A small buffer is cut, still terminated; the count is the same. */
	assert_int_equal(policy_lint(p, tiny, sizeof(tiny)), 2);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_int_equal(policy_lint(p, NULL, 0), 2);
	policy_free(p);

	p = must_load(f, "principal ok\n    uri-prefix spiffe://x/a/\n    roles r\nrole r\n");
	assert_int_equal(policy_lint(p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	policy_free(p);
	assert_int_equal(policy_lint(NULL, buf, sizeof(buf)), 0);
}

/* --- conditions ---------------------------------------------------------------- */

/* Loads a one-grant policy (ListKeys, the given condition) and evaluates it. */
static int
cond_eval(struct fixture *f, const char *cond, const struct policy_attr *attrs, size_t nattrs)
{
	struct policy *p;
	const struct policy_principal *pr;
	char text[1024], reason[POLICY_REASON_MAX];
	int r;

	snprintf(text, sizeof(text),
	    "principal p\n"
	    "    uri spiffe://t/p\n"
	    "    roles r\n"
	    "role r\n"
	    "    grant\n"
	    "        methods " KS "ListKeys\n"
	    "        when %s\n", cond);
	p = must_load(f, text);
	pr = policy_map(p, "spiffe://t/p", NULL);
	assert_non_null(pr);
	r = authorize(p, pr, KS "ListKeys", NULL, NULL, attrs, nattrs, reason);
	if (r == 0 && strstr(reason, "condition at line 7 failed: ") == NULL)
		fail_msg("%s: reason \"%s\"", cond, reason);
	policy_free(p);
	return r;
}

/* attr lines: principal.NAME in conditions, against vehicle.* attributes of the call */
static void
test_principal_attributes(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	const struct policy_principal *pr;
	char reason[POLICY_REASON_MAX], err[4096];
	struct policy_attr a[2] = { { "vehicle.carrier_id", "acme" }, { "request.command",
	    "route.override" } };

	p = must_load(f,
	    "principal d\n"
	    "    uri spiffe://t/d\n"
	    "    attr carrier_id \"acme\"\n"
	    "    attr region eu\n"
	    "    roles r\n"
	    "role r\n"
	    "    grant\n"
	    "        methods " KS "ListKeys\n"
	    "        when vehicle.carrier_id == principal.carrier_id\n"
	    "        when principal.region == \"eu\"\n"
	    "        when request.command in [\"route.override\"]\n");
	pr = policy_map(p, "spiffe://t/d", NULL);
	assert_non_null(pr);
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 1);
	a[0].value = "other";
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 0);
	a[0].value = NULL;                     /* absent: == is false */
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 0);
	policy_free(p);

	/* errors: twice, bad names, the evaluator's own, no value, outside a principal */
	p = NULL;
	assert_int_not_equal(load_text(f,
	    "principal d\n    uri spiffe://t/d\n    attr a \"1\"\n    attr a \"2\"\n"
	    "    roles r\nrole r\n", &p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "attribute 'a' is set twice"));
	assert_int_not_equal(load_text(f,
	    "principal d\n    uri spiffe://t/d\n    attr Carrier x\n    attr id x\n"
	    "    attr x\n    roles r\nrole r\n    attr y z\n", &p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "bad attribute name 'Carrier'"));
	assert_non_null(strstr(err, "bad attribute name 'id'"));
	assert_non_null(strstr(err, "'attr' takes a name and a value"));
	assert_non_null(strstr(err, "'attr' belongs in a principal block"));
}

/* tested_attr: only grants with a condition on that attribute count */
static void
test_tested_attribute(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	const struct policy_principal *pr;
	struct policy_verdict v;
	struct policy_attr a[2] = { { "request.command", "route.override" },
	    { "vehicle.status", "suspended" } };
	struct policy_request req = { KS "ListKeys", NULL, NULL, a, 2, "vehicle.status" };

	p = must_load(f,
	    "principal d\n"
	    "    uri spiffe://t/d\n"
	    "    roles r\n"
	    "role r\n"
	    "    grant\n"
	    "        methods " KS "ListKeys\n"
	    "    grant\n"
	    "        methods " KS "ListKeys\n"
	    "        when request.command == \"safe_stop\"\n"
	    "        when vehicle.status in [\"active\", \"suspended\"]\n");
	pr = policy_map(p, "spiffe://t/d", NULL);
	assert_non_null(pr);
	/* without tested_attr the silent grant allows; with it, only the second counts */
	req.tested_attr = NULL;
	assert_int_equal(policy_evaluate(p, pr, "spiffe://t/d", &req, &v), POLICY_ALLOW);
	req.tested_attr = "vehicle.status";
	assert_int_equal(policy_evaluate(p, pr, "spiffe://t/d", &req, &v), POLICY_DENY);
	assert_non_null(strstr(v.reason, "condition at line 9 failed"));
	a[0].value = "safe_stop";
	assert_int_equal(policy_evaluate(p, pr, "spiffe://t/d", &req, &v), POLICY_ALLOW);
	policy_free(p);

	/* no grant tests it at all: the reason says so */
	p = must_load(f,
	    "principal d\n    uri spiffe://t/d\n    roles r\nrole r\n    grant\n"
	    "        methods " KS "ListKeys\n");
	pr = policy_map(p, "spiffe://t/d", NULL);
	assert_int_equal(policy_evaluate(p, pr, "spiffe://t/d", &req, &v), POLICY_DENY);
	assert_non_null(strstr(v.reason, "tests vehicle.status, which this call needs (1 grant "
	    "of principal 'd' does not)"));
	policy_free(p);
}

struct cond_case {
	const char *cond;
	const char *name;       /* attribute supplied, or NULL for none */
	const char *value;
	int want;
};

static void
test_condition_operators(void **state)
{
	static const struct cond_case cases[] = {
		{ "request.format == \"raw\"", "request.format", "raw", 1 },
		{ "request.format == \"raw\"", "request.format", "der", 0 },
		{ "request.format == \"raw\"", "request.format", "raw ", 0 },
		{ "request.format == \"raw\"", NULL, NULL, 0 },
		{ "request.format == \"raw\"", "request.format", NULL, 0 },  /* NULL value = absent */
		{ "request.format==\"raw\"", "request.format", "raw", 1 },
		{ "request.format != \"raw\"", "request.format", "der", 1 },
		{ "request.format != \"raw\"", "request.format", "raw", 0 },
		{ "request.format != \"raw\"", NULL, NULL, 0 },
		{ "key.algorithm in [\"ecdsa-p256-sha256\", \"ed25519\"]", "key.algorithm", "ed25519", 1 },
		{ "key.algorithm in [\"ecdsa-p256-sha256\", \"ed25519\"]", "key.algorithm", "ecdsa-p256-sha256", 1 },
		{ "key.algorithm in [\"ecdsa-p256-sha256\", \"ed25519\"]", "key.algorithm", "rsa-3072-pss-sha256", 0 },
		{ "key.algorithm in [\"ecdsa-p256-sha256\", \"ed25519\"]", NULL, NULL, 0 },
		{ "key.algorithm in [\"ed25519\"]", "key.algorithm", "ed25519", 1 },
		{ "key.algorithm in[\"a\",\"b\"]", "key.algorithm", "b", 1 },
		{ "request.origin matches \"eu-*\"", "request.origin", "eu-west-1", 1 },
		{ "request.origin matches \"eu-*\"", "request.origin", "us-east-1", 0 },
		{ "request.origin matches \"eu-*\"", NULL, NULL, 0 },
		{ "request.origin matches \"eu-?\"", "request.origin", "eu-1", 1 },
		{ "request.origin matches \"[ab]*\"", "request.origin", "c", 0 },
		{ "request.context.fleet present", "request.context.fleet", "", 1 },
		{ "request.context.fleet present", NULL, NULL, 0 },
		{ "request.context.fleet absent", NULL, NULL, 1 },
		{ "request.context.fleet absent", "request.context.fleet", "x", 0 },
		{ "request.context.fleet absent", "request.context.fleet", NULL, 1 },
		/* Escapes and '#' inside quotes. */
		{ "request.x == \"a\\\"b\\\\c\"", "request.x", "a\"b\\c", 1 },
		{ "request.x == \"a#b\"   # a comment", "request.x", "a#b", 1 },
		{ "request.x == \"\"", "request.x", "", 1 },
		{ "request.x == \"\"", NULL, NULL, 0 },
		/* Built-ins cannot be overridden by the caller's attributes. */
		{ "principal.id == \"q\"", "principal.id", "q", 0 },
		{ "principal.id == \"p\"", "principal.id", "q", 1 },
		{ "principal.uri == \"spiffe://test/caller\"", NULL, NULL, 1 },
		{ "principal.uri matches \"spiffe://other/*\"", NULL, NULL, 0 },
		{ "key.name absent", "key.name", "forged", 1 },
		/* Free-form names under the three namespaces. */
		{ "request.tuf_role == \"targets\"", "request.tuf_role", "targets", 1 },
		{ "request.context.vin-prefix == \"WBA\"", "request.context.vin-prefix", "WBA", 1 },
	};
	struct fixture *f = *state;
	struct policy_attr a[2];
	size_t i, n;
	int got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = 0;
		a[n++] = (struct policy_attr){ "request.unrelated", "raw" };
		if (cases[i].name != NULL)
			a[n++] = (struct policy_attr){ cases[i].name, cases[i].value };
		got = cond_eval(f, cases[i].cond, a, n);
		if (got != cases[i].want)
			fail_msg("when %s with %s=%s: got %d", cases[i].cond,
			    cases[i].name ? cases[i].name : "-", cases[i].value ? cases[i].value : "-",
			    got);
	}
}

static void
test_condition_attr_vs_attr(void **state)
{
	struct fixture *f = *state;
	struct policy_attr a[3];

	/* principal.id is "p". */
	a[0] = (struct policy_attr){ "request.vehicle_id", "p" };
	assert_int_equal(cond_eval(f, "request.vehicle_id == principal.id", a, 1), 1);
	a[0].value = "q";
	assert_int_equal(cond_eval(f, "request.vehicle_id == principal.id", a, 1), 0);
	assert_int_equal(cond_eval(f, "request.vehicle_id != principal.id", a, 1), 1);
	assert_int_equal(cond_eval(f, "request.vehicle_id == principal.id", NULL, 0), 0);
	assert_int_equal(cond_eval(f, "request.vehicle_id != principal.id", NULL, 0), 0);

	/* Both sides from the caller; a missing right-hand side is false too. */
	a[0] = (struct policy_attr){ "request.a", "x" };
	a[1] = (struct policy_attr){ "request.b", "x" };
	assert_int_equal(cond_eval(f, "request.a == request.b", a, 2), 1);
	assert_int_equal(cond_eval(f, "request.a != request.b", a, 2), 0);
	assert_int_equal(cond_eval(f, "request.a == request.b", a, 1), 0);
	assert_int_equal(cond_eval(f, "request.a != request.b", a, 1), 0);
	a[1].value = "y";
	assert_int_equal(cond_eval(f, "request.a != request.b", a, 2), 1);
	/* First entry of a name wins. */
	a[1] = (struct policy_attr){ "request.a", "y" };
	a[2] = (struct policy_attr){ "request.b", "y" };
	assert_int_equal(cond_eval(f, "request.a == request.b", a, 3), 0);

	/* In a list, mixed with strings; missing list attributes are skipped. */
	a[0] = (struct policy_attr){ "request.vehicle_id", "p" };
	assert_int_equal(cond_eval(f, "request.vehicle_id in [\"x\", principal.id]", a, 1), 1);
	assert_int_equal(cond_eval(f, "request.vehicle_id in [request.nothing, \"p\"]", a, 1), 1);
	assert_int_equal(cond_eval(f, "request.vehicle_id in [request.nothing]", a, 1), 0);
	/* In matches the operand is always a literal glob. */
	assert_int_equal(cond_eval(f, "principal.id matches \"p*\"", NULL, 0), 1);
}

/* Several conditions: all must hold. */
static void
test_conditions_and(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	const struct policy_principal *pr;
	struct policy_attr a[2] = { { "request.a", "1" }, { "request.b", "2" } };
	char reason[POLICY_REASON_MAX];

	p = must_load(f,
	    "principal p\n"
	    "    uri spiffe://t/p\n"
	    "    roles r\n"
	    "role r\n"
	    "    grant\n"
	    "        methods " KS "ListKeys\n"
	    "        when request.a == \"1\"\n"
	    "        when request.b == \"2\"\n");
	pr = policy_map(p, "spiffe://t/p", NULL);
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 1);
	a[1].value = "3";
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 0);
	assert_string_equal(reason, "role r grant at policy line 5: condition at line 8 failed: "
	    "request.b == \"2\" (value \"3\")");
	a[0].value = "0";
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, a, 2, reason), 0);
	assert_non_null(strstr(reason, "condition at line 7 failed"));
	policy_free(p);
}

/* --- default deny and reasons ---------------------------------------------------- */

static void
test_default_deny(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	const struct policy_principal *pr;
	char reason[POLICY_REASON_MAX], roles[64];
	size_t i;

	p = must_load(f,
	    "principal nobody\n"
	    "    uri spiffe://t/nobody\n"
	    "    roles empty\n"
	    "role empty\n");
	pr = policy_map(p, "spiffe://t/nobody", NULL);
	assert_non_null(pr);
	policy_principal_roles(pr, roles, sizeof(roles));
	assert_string_equal(roles, "empty");
	for (i = 0; i < NMETHODS; i++) {
		assert_int_equal(authorize(p, pr, known_methods[i], NULL, NULL, NULL, 0, reason), 0);
		assert_int_equal(authorize(p, pr, known_methods[i], "k", "generic", NULL, 0, reason),
		    0);
		assert_int_equal(policy_may_call(p, pr, known_methods[i]), 0);
	}
	assert_string_equal(reason, "no role of principal 'nobody' (empty) grants "
	    "boltseal.v1.CertificateService/ListCertificates");
	/* NULL arguments deny. */
	assert_int_equal(policy_authorize(p, NULL, NULL, NULL, reason), 0);
	assert_true(reason[0] != '\0');
	assert_int_equal(policy_may_call(p, NULL, KS "Sign"), 0);
	policy_free(p);
}

static const char reason_policy[] =
    "principal ci\n"                                            /* 1 */
    "    uri spiffe://t/ci\n"                                   /* 2 */
    "    roles ci-signer other\n"                               /* 3 */
    "role other\n"                                              /* 4 */
    "role ci-signer\n"                                          /* 5 */
    "    grant\n"                                               /* 6 */
    "        methods " KS "Sign\n"                              /* 7 */
    "        keys ci-* ota-*\n"                                 /* 8 */
    "        purposes generic ota\n"                            /* 9 */
    "        when request.format == \"raw\"\n"                  /* 10 */
    "    grant\n"                                               /* 11 */
    "        methods " KS "GetKey\n"                            /* 12 */
    "        keys ci-*\n"                                       /* 13 */
    "    grant\n"                                               /* 14 */
    "        methods " KS "GetKey\n"                            /* 15 */
    "        keys ota-*\n"                                      /* 16 */
    "    grant\n"                                               /* 17 */
    "        methods " KS "ListKeys\n"                          /* 18 */
    "        when request.vehicle_id in [principal.id, \"v\"]\n"; /* 19 */

/* policy_method_tests: which grants test attributes of a prefix, on either side. */
static void
test_method_tests(void **state)
{
	struct fixture *f = *state;
	struct policy *p = must_load(f, reason_policy);
	const struct policy_principal *pr = policy_map(p, "spiffe://t/ci", NULL);

	assert_non_null(pr);
	assert_int_equal(policy_method_tests(p, pr, KS "Sign", "request."), 1);
	assert_int_equal(policy_method_tests(p, pr, KS "Sign", "vehicle."), 0);
	assert_int_equal(policy_method_tests(p, pr, KS "GetKey", "request."), 0);
	/* an operand that is an attribute counts too */
	assert_int_equal(policy_method_tests(p, pr, KS "ListKeys", "principal."), 1);
	assert_int_equal(policy_method_tests(p, pr, KS "Verify", "request."), 0);
	assert_int_equal(policy_method_tests(p, NULL, KS "Sign", "vehicle."), 1);
	policy_free(p);
}

static void
test_reasons(void **state)
{
	struct fixture *f = *state;
	struct policy *p = must_load(f, reason_policy);
	const struct policy_principal *pr = policy_map(p, "spiffe://t/ci", NULL);
	struct policy_attr raw = { "request.format", "raw" }, der = { "request.format", "der" };
	struct policy_attr vid = { "request.vehicle_id", "w\x01" };
	char reason[POLICY_REASON_MAX], longkey[200], want[POLICY_REASON_MAX], roles[8];

	assert_non_null(pr);
	assert_int_equal(authorize(p, pr, KS "Sign", "ci-1", "generic", &raw, 1, reason), 1);
	assert_string_equal(reason, "");

	assert_int_equal(authorize(p, pr, KS "GetPublicKey", "ci-1", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "no role of principal 'ci' (ci-signer,other) grants " KS
	    "GetPublicKey");

	assert_int_equal(authorize(p, pr, KS "Sign", "prod-x", "generic", &raw, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: key 'prod-x' matches "
	    "no keys pattern");

	assert_int_equal(authorize(p, pr, KS "Sign", "ota-1", "command", &raw, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: purpose 'command' of "
	    "key 'ota-1' is not in the grant's purposes");

	assert_int_equal(authorize(p, pr, KS "Sign", "ota-1", NULL, &raw, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: key 'ota-1' has no "
	    "purpose but the grant names purposes");

	assert_int_equal(authorize(p, pr, KS "Sign", "ci-1", "ota", &der, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: condition at line 10 "
	    "failed: request.format == \"raw\" (value \"der\")");

	assert_int_equal(authorize(p, pr, KS "Sign", "ci-1", "ota", NULL, 0, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: condition at line 10 "
	    "failed: request.format == \"raw\" (absent)");

	assert_int_equal(authorize(p, pr, KS "Sign", NULL, NULL, &raw, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 6: the call names no key "
	    "but the grant covers only keys matching its keys patterns");

	/* Two grants for GetKey: the first one's failure, and a note. */
	assert_int_equal(authorize(p, pr, KS "GetKey", "prod-x", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 11 (first of 2 grants for "
	    "the method, all denied): key 'prod-x' matches no keys pattern");
	assert_int_equal(authorize(p, pr, KS "GetKey", "ota-1", "generic", NULL, 0, reason), 1);

	/* A keyless grant and a call naming a key. */
	assert_int_equal(authorize(p, pr, KS "ListKeys", "ci-1", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 17: the grant has no keys "
	    "line (it covers only calls that name no key) but the call names key 'ci-1'");

	/* Attribute operands name their values; non-printables are escaped. */
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, &vid, 1, reason), 0);
	assert_string_equal(reason, "role ci-signer grant at policy line 17: condition at line 19 "
	    "failed: request.vehicle_id in [principal.id, \"v\"] (value \"w\\x01\"; principal.id "
	    "\"ci\")");

	/* Long, hostile values are capped at 64 bytes and escaped. */
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	longkey[0] = '\'';
	longkey[1] = '\n';
	assert_int_equal(authorize(p, pr, KS "Sign", longkey, "generic", &raw, 1, reason), 0);
	snprintf(want, sizeof(want), "role ci-signer grant at policy line 6: key '\\'\\x0a%.62s'... "
	    "matches no keys pattern", longkey + 2);
	assert_string_equal(reason, want);
	assert_int_equal(authorize(p, pr, longkey, NULL, NULL, NULL, 0, reason), 0);
	snprintf(want, sizeof(want), "no role of principal 'ci' (ci-signer,other) grants "
	    "'\\x0a%.62s...", longkey + 2);
	assert_string_equal(reason, want);

	/* Roles list truncation. */
	policy_principal_roles(pr, roles, sizeof(roles));
	assert_string_equal(roles, "ci-s...");
	policy_principal_roles(pr, roles, 1);
	assert_string_equal(roles, "");
	policy_free(p);
}

/* --- parse errors ------------------------------------------------------------------ */

/* A valid start: principal a (line 1), role r (line 4), an open grant (5). */
#define BASE \
    "principal a\n" \
    "    uri spiffe://t/a\n" \
    "    roles r\n" \
    "role r\n" \
    "    grant\n" \
    "        methods " KS "Sign\n" \
    "        keys k-*\n"

struct bad_case {
	const char *text;
	unsigned line;
	const char *msg;        /* expected substring of the message */
};

static const struct bad_case bad_cases[] = {
	/* unknown keyword */
	{ BASE "frobnicate x\n", 8, "unknown keyword 'frobnicate'" },
	{ BASE "\"methods\" x\n", 8, "expected a keyword" },
	/* keyword in the wrong block */
	{ BASE "        uri spiffe://t/z\n", 8, "'uri' belongs in a principal block, not in "
	    "role 'r'" },
	{ BASE "role r2\n    methods " KS "Sign\n", 9, "'methods' must follow a 'grant' line "
	    "in role 'r2'" },
	{ BASE "principal b\n    uri spiffe://t/b\n    roles r\n    keys x\n", 11,
	    "'keys' belongs in a grant of a role, not in principal 'b'" },
	{ BASE "principal b\n    uri spiffe://t/b\n    roles r\n    grant\n", 11,
	    "'grant' belongs in a role block, not in principal 'b'" },
	{ "roles r\n" BASE, 1, "'roles' outside a principal block" },
	{ "when request.x present\n" BASE, 1, "'when' outside a grant" },
	{ "grant\n" BASE, 1, "'grant' outside a role block" },
	{ BASE "    grant x\n        methods " KS "Sign\n", 8, "'grant' takes no arguments" },
	/* duplicate ids */
	{ BASE "principal a\n    uri spiffe://t/a2\n    roles r\n", 8,
	    "duplicate principal 'a' (first defined on line 1)" },
	{ BASE "role r\n", 8, "duplicate role 'r' (first defined on line 4)" },
	{ BASE "principal a/b\n    uri spiffe://t/b\n    roles r\n", 8, "bad principal id "
	    "'a/b'" },
	{ BASE "role " "r12345678901234567890123456789012345678901234567890123456789012345\n",
	    8, "bad role name" },
	{ BASE "principal\n", 8, "'principal' needs exactly one id" },
	/* a matcher claimed twice */
	{ BASE "principal b\n    uri spiffe://t/a\n    roles r\n", 9,
	    "uri 'spiffe://t/a' is already claimed by principal 'a' (line 1)" },
	{ BASE "principal b\n    uri-prefix spiffe://t/p/\n    roles r\n"
	    "principal c\n    uri-prefix spiffe://t/p/\n    roles r\n", 12,
	    "uri-prefix 'spiffe://t/p/' is already claimed by principal 'b' (line 8)" },
	{ BASE "principal b\n    cert-sha256 " FP_A_HEX "\n    roles r\n"
	    "principal c\n    cert-sha256 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
	    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF\n    roles r\n", 12,
	    "is already claimed by principal 'b' (line 8)" },
	{ BASE "principal b\n    uri spiffe://t/b\n    uri spiffe://t/b\n    roles r\n", 10,
	    "uri 'spiffe://t/b' is listed twice in principal 'b'" },
	{ BASE "principal b\n    uri not a uri\n    roles r\n", 9, "'uri' takes exactly one "
	    "value" },
	{ BASE "principal b\n    uri /no/scheme\n    roles r\n", 9, "bad uri '/no/scheme'" },
	{ BASE "principal b\n    uri-prefix \"\"\n    roles r\n", 9, "bad uri-prefix ''" },
	/* undefined role (roles may be defined later: only 'nope' is wrong) */
	{ BASE "principal b\n    uri spiffe://t/b\n    roles r later nope\nrole later\n", 10,
	    "undefined role 'nope'" },
	{ BASE "principal b\n    uri spiffe://t/b\n    roles r r\n", 10,
	    "role 'r' is listed twice for principal 'b'" },
	{ BASE "principal b\n    uri spiffe://t/b\n    roles\n", 10,
	    "'roles' needs at least one role name" },
	/* principal without matcher or roles */
	{ BASE "principal b\n    roles r\n", 8, "principal 'b' has no uri, uri-prefix or "
	    "cert-sha256 line" },
	{ BASE "principal b\n    uri spiffe://t/b\n", 8, "principal 'b' has no roles line" },
	/* bad fingerprints */
	{ BASE "principal b\n    cert-sha256 abc\n    roles r\n", 9, "bad cert-sha256 'abc': "
	    "expected 64 hex digits" },
	{ BASE "principal b\n    cert-sha256 " "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcde\n    roles r\n", 9, "bad cert-sha256" },
	{ BASE "principal b\n    cert-sha256 " "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdeg\n    roles r\n", 9, "bad cert-sha256" },
	{ BASE "principal b\n    cert-sha256 0123:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
	    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:\n    roles r\n", 9,
	    "bad cert-sha256" },
	/* grants */
	{ BASE "    grant\n        keys x\n", 8, "grant in role 'r' has no methods line" },
	{ BASE "        methods " KS "Frob\n", 8, "unknown method '" KS "Frob'" },
	{ BASE "        methods boltseal.v1.NoService/Sign\n", 8, "unknown service in method "
	    "'boltseal.v1.NoService/Sign'" },
	{ BASE "        methods boltseal.v1.NoService/*\n", 8, "unknown service" },
	{ BASE "        methods grpc.health.v1.Health/Check\n", 8, "unknown service" },
	{ BASE "        methods Sign\n", 8, "bad method 'Sign'" },
	{ BASE "        methods " KS "\n", 8, "bad method" },
	{ BASE "        methods " KS "Sign/x\n", 8, "bad method" },
	{ BASE "        methods\n", 8, "'methods' needs at least one value" },
	{ BASE "        purposes generic bogus\n", 8, "unknown purpose 'bogus'" },
	{ BASE "        keys \"\"\n", 8, "empty keys pattern" },
	{ BASE "    grant\n        methods " KS "ListKeys\n        purposes generic\n", 10,
	    "'purposes' without 'keys'" },
	/* bad conditions */
	{ BASE "        when request.x = \"a\"\n", 8, "'=' is not an operator" },
	{ BASE "        when request.x == \"a\n", 8, "unterminated string" },
	{ BASE "        when request.x == \"a\\n\"\n", 8, "bad escape" },
	{ BASE "        when request.x == \"a\"b\n", 8, "missing blank after" },
	{ BASE "        when request.x == a\"b\"\n", 8, "inside a word" },
	{ BASE "        when foo.x == \"a\"\n", 8, "'foo.x' is not an attribute name" },
	{ BASE "        when request == \"a\"\n", 8, "'request' is not an attribute name" },
	{ BASE "        when Request.x present\n", 8, "is not an attribute name" },
	{ BASE "        when request..x present\n", 8, "is not an attribute name" },
	{ BASE "        when request-x.y present\n", 8, "is not an attribute name" },
	{ BASE "        when \"request.x\" present\n", 8, "is not an attribute name" },
	{ BASE "        when request.x\n", 8, "expected 'when ATTRIBUTE OPERATOR" },
	{ BASE "        when request.x like \"a\"\n", 8, "unknown operator 'like'" },
	{ BASE "        when request.x == \"a\" \"b\"\n", 8, "'==' needs exactly one operand" },
	{ BASE "        when request.x == bare\n", 8, "'bare' is neither a \"quoted string\" "
	    "nor an attribute name" },
	{ BASE "        when request.x == [\n", 8, "expected a \"quoted string\" or an "
	    "attribute name" },
	{ BASE "        when request.x in [\"a\" \"b\" \"c\"]\n", 8, "expected ',' between list "
	    "items" },
	{ BASE "        when request.x in []\n", 8, "'in' needs a list" },
	{ BASE "        when request.x in \"a\"\n", 8, "'in' needs a list" },
	{ BASE "        when request.x in [\"a\",]\n", 8, "expected a list item, found ']'" },
	{ BASE "        when request.x in [\"a\", \"b\"\n", 8, "missing ']'" },
	{ BASE "        when request.x in [\"a\",\n", 8, "missing ']'" },
	{ BASE "        when request.x in [\"a\"] \"b\"\n", 8, "unexpected text after ']'" },
	{ BASE "        when request.x in [\"a\", ==]\n", 8, "found '=='" },
	{ BASE "        when request.x matches glob\n", 8, "'matches' needs one \"quoted "
	    "glob\"" },
	{ BASE "        when request.x matches \"\"\n", 8, "empty glob" },
	{ BASE "        when request.x present \"y\"\n", 8, "'present' takes no operand" },
	{ BASE "        when request.x absent request.y\n", 8, "'absent' takes no operand" },
	/* bytes */
	{ BASE "        keys a\x01" "b\n", 8, "control character in line" },
};
#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void
test_each_error(void **state)
{
	const struct bad_case *cases = bad_cases;
	struct fixture *f = *state;
	struct policy *p, *sentinel = (struct policy *)&sentinel;
	char err[4096], want[PATH_MAX + 64];
	size_t i;
	int rc;

	for (i = 0; i < NBAD; i++) {
		write_bytes(f->path, cases[i].text, strlen(cases[i].text), 0600);
		p = sentinel;
		rc = policy_load(f->path, &schema, &p, err, sizeof(err));
		if (rc != BS_ERR_CONFIG)
			fail_msg("case %zu accepted (rc %d): %s", i, rc, cases[i].text);
		assert_ptr_equal(p, sentinel);
		snprintf(want, sizeof(want), "%s:%u: ", f->path, cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || strstr(err, cases[i].msg) == NULL ||
		    count_lines(err) != 1)
			fail_msg("case %zu: got \"%s\", wanted \"%s...%s\"", i, err, want,
			    cases[i].msg);
	}
}

/* Every error of a file, in line order, including those found at the end. */
static void
test_several_errors(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	char err[8192], want[PATH_MAX + 256], *e;
	static const char text[] =
	    "# several problems\n"                                     /* 1 */
	    "principal a\n"                                            /* 2 */
	    "    uri spiffe://t/a\n"                                   /* 3 */
	    "    roles r missing\n"                                    /* 4 */
	    "    colour blue\n"                                        /* 5 */
	    "principal a\n"                                            /* 6 */
	    "    uri spiffe://t/a\n"                                   /* 7 */
	    "    roles r\n"                                            /* 8 */
	    "role r\n"                                                 /* 9 */
	    "    grant\n"                                              /* 10 */
	    "        keys k-*\n"                                       /* 11 */
	    "    grant\n"                                              /* 12 */
	    "        methods " KS "Sign " KS "Nope\n"                  /* 13 */
	    "        purposes bogus generic\n"                         /* 14 */
	    "        when request.x ~ \"a\"\n"                         /* 15 */
	    "        keys \"\"\n"                                      /* 16 */
	    "    uri spiffe://t/z\n"                                   /* 17 */
	    "        cert-sha256 xyz\n";                               /* 18 */

	write_bytes(f->path, text, strlen(text), 0600);
	p = NULL;
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_null(p);
	e = err;
#define EXPECT(ln, msg) do { \
		snprintf(want, sizeof(want), "%s:%u: %s", f->path, (unsigned)(ln), msg); \
		if (strncmp(e, want, strlen(want)) != 0) \
			fail_msg("expected \"%s\" at \"%s\"", want, e); \
		e = strchr(e, '\n') != NULL ? strchr(e, '\n') + 1 : e + strlen(e); \
	} while (0)
	EXPECT(4, "undefined role 'missing'");
	EXPECT(5, "unknown keyword 'colour'");
	EXPECT(6, "duplicate principal 'a' (first defined on line 2)");
	EXPECT(7, "uri 'spiffe://t/a' is already claimed by principal 'a' (line 2)");
	EXPECT(10, "grant in role 'r' has no methods line");
	EXPECT(13, "unknown method '" KS "Nope'");
	EXPECT(14, "unknown purpose 'bogus'");
	EXPECT(15, "bad condition: unknown operator '~'");
	EXPECT(16, "empty keys pattern");
	EXPECT(17, "'uri' belongs in a principal block, not in role 'r'");
	EXPECT(18, "'cert-sha256' belongs in a principal block, not in role 'r'");
#undef EXPECT
	assert_string_equal(e, "");
	assert_int_equal(count_lines(err), 11);
}

static void
test_line_limits(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	char err[4096], want[2 * PATH_MAX + 128], *text;
	size_t base = strlen(BASE), len;

	/* A 4096-byte line (a comment) is fine; 4097 bytes are not. */
	text = malloc(base + 5000);
	assert_non_null(text);
	memcpy(text, BASE, base);
	memset(text + base, '#', 4096);
	memcpy(text + base + 4096, "\n", 2);
	p = must_load(f, text);
	policy_free(p);
	memset(text + base, '#', 4097);
	memcpy(text + base + 4097, "\r\n", 3);   /* CR is not counted */
	assert_int_equal(load_text(f, text, &p, err, sizeof(err)), BS_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:8: line longer than 4096 bytes", f->path);
	assert_string_equal(err, want);

	/* A NUL byte, then more errors after it: all reported. */
	memcpy(text, BASE, base);
	len = base;
	memcpy(text + len, "        keys a\0b\nbogus\n", 23);
	len += 23;
	write_bytes(f->path, text, len, 0600);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:8: NUL byte in line\n%s:9: unknown keyword 'bogus'",
	    f->path, f->path);
	assert_string_equal(err, want);
	free(text);

	/* CRLF line endings and a missing final newline are fine. */
	p = must_load(f, "principal a\r\n  uri spiffe://t/a\r\n  roles r\r\nrole r");
	assert_non_null(policy_map(p, "spiffe://t/a", NULL));
	policy_free(p);
}

static void
test_file_checks(void **state)
{
	struct fixture *f = *state;
	struct policy *p = NULL;
	char err[4096], path[PATH_MAX + 64];

	write_bytes(f->path, BASE, strlen(BASE), 0666);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_null(p);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "mode 0666 is writable by group or others"));
	assert_int_equal(count_lines(err), 1);

	assert_int_equal(chmod(f->path, 0620), 0);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_non_null(strstr(err, "mode 0620"));
	assert_int_equal(chmod(f->path, 0602), 0);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);

	/* Readable by everyone is fine. */
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), 0);
	policy_free(p);
	p = NULL;

	/* A directory, a FIFO, a missing file. */
	assert_int_equal(policy_load(f->dir, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(path, sizeof(path), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(policy_load(path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(path, sizeof(path), "%s/absent", f->dir);
	assert_int_equal(policy_load(path, &schema, &p, err, sizeof(err)), BS_ERR_IO);
	assert_non_null(strstr(err, "cannot open"));
	assert_null(p);

	/* Bad arguments. */
	assert_int_equal(policy_load(NULL, &schema, &p, err, sizeof(err)), BS_ERR_INVALID);
	assert_int_equal(policy_load(f->path, NULL, &p, err, sizeof(err)), BS_ERR_INVALID);
	assert_int_equal(policy_load(f->path, &schema, NULL, err, sizeof(err)), BS_ERR_INVALID);
	policy_free(NULL);
}

/* The error buffer is cut at a line boundary, with a count of what was left out. */
static void
test_error_truncation(void **state)
{
	struct fixture *f = *state;
	struct policy *p = NULL;
	char text[4096], err[16384], small[200], want[PATH_MAX + 64];
	size_t i, len = 0, plen = strlen(f->path);

	for (i = 0; i < 120; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "bad%zu\n", i);
	write_bytes(f->path, text, len, 0600);
	assert_int_equal(policy_load(f->path, &schema, &p, err, sizeof(err)), BS_ERR_CONFIG);
	/* 100 errors are kept, the other 20 counted. */
	snprintf(want, sizeof(want), "\n%s: 20 more errors not shown", f->path);
	assert_non_null(strstr(err, want));
	assert_int_equal(count_lines(err), 101);

	memset(small, 'X', sizeof(small));
	assert_int_equal(policy_load(f->path, &schema, &p, small, sizeof(small)), BS_ERR_CONFIG);
	assert_true(strlen(small) < sizeof(small));
	/* Only whole lines: each starts with the path. */
	for (i = 0; small[i] != '\0'; i++) {
		if (i == 0 || small[i - 1] == '\n')
			assert_memory_equal(small + i, f->path, plen < sizeof(small) - i ?
			    plen : sizeof(small) - i);
	}
	assert_true(strlen(small) > 0);

	/* errlen 0 with a NULL buffer is allowed. */
	assert_int_equal(policy_load(f->path, &schema, &p, NULL, 0), BS_ERR_CONFIG);
	assert_null(p);
}

/* Comments, indentation, quoting and several roles per principal. */
static void
test_syntax_details(void **state)
{
	struct fixture *f = *state;
	struct policy *p;
	const struct policy_principal *pr;
	char reason[POLICY_REASON_MAX], roles[64];

	p = must_load(f,
	    "# comment\n"
	    "\n"
	    "\t principal   both   # trailing comment\n"
	    "uri \"spiffe://t/with#hash\"\n"
	    "roles one\n"
	    "roles two\n"
	    "role one\n"
	    "grant\n"
	    "methods \"" KS "Sign\"\n"
	    "keys \"a *\"\n"
	    "role two\n"
	    "    grant\n"
	    "        methods boltseal.v1.AuditService/*\n"
	    "    grant\n"
	    "        methods " KS "GetKey\n"
	    "        methods " KS "GetPublicKey\n"
	    "        keys x-*\n"
	    "        keys y-*\n"
	    "        purposes generic\n"
	    "        purposes ota\n");
	pr = policy_map(p, "spiffe://t/with#hash", NULL);
	assert_non_null(pr);
	assert_string_equal(policy_principal_id(pr), "both");
	policy_principal_roles(pr, roles, sizeof(roles));
	assert_string_equal(roles, "one,two");
	assert_int_equal(authorize(p, pr, KS "Sign", "a b", NULL, NULL, 0, reason), 1);
	assert_int_equal(authorize(p, pr, KS "Sign", "ab", NULL, NULL, 0, reason), 0);
	assert_int_equal(authorize(p, pr, AS "ReadRecords", NULL, NULL, NULL, 0, reason), 1);
	assert_int_equal(authorize(p, pr, AS "GetCheckpoint", NULL, NULL, NULL, 0, reason), 1);
	assert_int_equal(authorize(p, pr, KS "ListKeys", NULL, NULL, NULL, 0, reason), 0);
	/* Repeated list lines add up. */
	assert_int_equal(authorize(p, pr, KS "GetPublicKey", "y-1", "ota", NULL, 0, reason), 1);
	assert_int_equal(authorize(p, pr, KS "GetKey", "x-1", "generic", NULL, 0, reason), 1);
	assert_int_equal(authorize(p, pr, KS "GetKey", "x-1", "audit", NULL, 0, reason), 0);
	/* Key globs use fnmatch without flags: '*' crosses '/' and leading dots. */
	assert_int_equal(authorize(p, pr, KS "GetKey", "x-.a/b", "generic", NULL, 0, reason), 1);
	/* Methods are matched exactly (no leading '/', case-sensitive). */
	assert_int_equal(authorize(p, pr, "/" KS "GetKey", "x-1", "generic", NULL, 0, reason), 0);
	assert_int_equal(authorize(p, pr, "boltseal.v1.keyservice/GetKey", "x-1", "generic", NULL,
	    0, reason), 0);
	policy_free(p);
}

/* --- policies from a buffer ------------------------------------------------------ */

/* Parses text (len bytes) as "mem"; *p is set only on success. */
static int
parse_mem(const char *text, size_t len, struct policy **p, char *err, size_t errlen)
{
	return policy_parse("mem", text, len, &schema, p, err, errlen);
}

static void
test_parse_buffer(void **state)
{
	struct policy *p = NULL, *sentinel = (struct policy *)&sentinel;
	const struct policy_principal *pr;
	char err[4096], reason[POLICY_REASON_MAX], *big;
	static const char tail[] = BASE "frobnicate x\n";
	const char *text;

	(void)state;
	/* A good text, not NUL-terminated: only len bytes are read. */
	assert_int_equal(policy_parse("db:policy/7", tail, strlen(BASE), &schema, &p, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(policy_principal_count(p), 1);
	pr = policy_map(p, "spiffe://t/a", NULL);
	assert_string_equal(policy_principal_id(pr), "a");
	assert_int_equal(authorize(p, pr, KS "Sign", "k-1", "generic", NULL, 0, reason), 1);
	policy_free(p);

	/* Errors are named after the text; *out is untouched. */
	p = sentinel;
	assert_int_equal(policy_parse("db:policy/7", tail, strlen(tail), &schema, &p, err,
	    sizeof(err)), BS_ERR_CONFIG);
	assert_ptr_equal(p, sentinel);
	assert_string_equal(err, "db:policy/7:8: unknown keyword 'frobnicate'");

	/* Several errors, found during and after the pass, in line order. */
	p = sentinel;
	text = "principal a\n    roles nope\nbogus\nrole r\n    grant\n";
	assert_int_equal(parse_mem(text, strlen(text), &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_ptr_equal(p, sentinel);
	assert_string_equal(err,
	    "mem:1: principal 'a' has no uri, uri-prefix or cert-sha256 line\n"
	    "mem:2: undefined role 'nope'\n"
	    "mem:3: unknown keyword 'bogus'\n"
	    "mem:5: grant in role 'r' has no methods line");

	/* A NUL byte inside len is an error of its line, as in a file. */
	assert_int_equal(parse_mem("role r\nrole s\0x\nbogus\n", 21, &p, err, sizeof(err)),
	    BS_ERR_CONFIG);
	assert_string_equal(err, "mem:2: NUL byte in line\nmem:3: unknown keyword 'bogus'");

	/* An empty text is an empty policy. */
	assert_int_equal(parse_mem("", 0, &p, err, sizeof(err)), 0);
	assert_int_equal(policy_principal_count(p), 0);
	policy_free(p);

	/* The 1 MiB cap holds for buffers too. */
	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '\n', 1024 * 1024 + 1);
	assert_int_equal(parse_mem(big, 1024 * 1024, &p, err, sizeof(err)), 0);
	policy_free(p);
	p = sentinel;
	assert_int_equal(parse_mem(big, 1024 * 1024 + 1, &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_ptr_equal(p, sentinel);
	assert_string_equal(err, "mem: policy text is larger than 1048576 bytes");
	free(big);

	/* A small buffer: whole lines only, then the count if it fits. */
	assert_int_equal(parse_mem(tail, strlen(tail), &p, err, 20), BS_ERR_CONFIG);
	assert_string_equal(err, "");
	assert_int_equal(parse_mem(tail, strlen(tail), &p, err, 30), BS_ERR_CONFIG);
	assert_string_equal(err, "mem: 1 more error not shown");
	assert_int_equal(parse_mem(tail, strlen(tail), &p, NULL, 0), BS_ERR_CONFIG);

	/* Bad arguments. */
	p = sentinel;
	assert_int_equal(policy_parse(NULL, BASE, strlen(BASE), &schema, &p, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_int_equal(policy_parse("mem", NULL, 0, &schema, &p, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_int_equal(policy_parse("mem", BASE, strlen(BASE), NULL, &p, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_int_equal(policy_parse("mem", BASE, strlen(BASE), &schema, NULL, err, sizeof(err)),
	    BS_ERR_INVALID);
	assert_int_equal(policy_parse("mem", BASE, strlen(BASE), &schema, &p, NULL, 1),
	    BS_ERR_INVALID);
	assert_ptr_equal(p, sentinel);
	/* No error buffer at all is fine. */
	assert_int_equal(parse_mem(BASE, strlen(BASE), &p, NULL, 0), 0);
	policy_free(p);
}

/* Every parse error of test_each_error, from a buffer this time. */
static void
test_parse_each_error(void **state)
{
	struct policy *p, *sentinel = (struct policy *)&sentinel;
	char err[4096], want[64];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < NBAD; i++) {
		p = sentinel;
		rc = parse_mem(bad_cases[i].text, strlen(bad_cases[i].text), &p, err, sizeof(err));
		if (rc != BS_ERR_CONFIG)
			fail_msg("case %zu accepted (rc %d): %s", i, rc, bad_cases[i].text);
		assert_ptr_equal(p, sentinel);
		snprintf(want, sizeof(want), "mem:%u: ", bad_cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || strstr(err, bad_cases[i].msg) == NULL ||
		    count_lines(err) != 1)
			fail_msg("case %zu: got \"%s\", wanted \"%s...%s\"", i, err, want,
			    bad_cases[i].msg);
	}
}

/* --- requirements: require mfa, require approvals N ------------------------------- */

/* Evaluates method on key (purpose generic) with request.ok = ok (NULL: absent). */
static int
verdict(const struct policy *p, const char *method, const char *key, const char *ok,
    struct policy_verdict *v)
{
	struct policy_attr a = { "request.ok", ok };
	struct policy_request req = { method, key, key != NULL ? "generic" : NULL, &a, 1, NULL };
	const struct policy_principal *pr = policy_map(p, "spiffe://t/p", NULL);
	int d;

	assert_non_null(pr);
	memset(v, 0x55, sizeof(*v));
	d = policy_evaluate(p, pr, "spiffe://t/p", &req, v);
	assert_int_equal(d, v->decision);
	assert_true(memchr(v->reason, '\0', sizeof(v->reason)) != NULL);
	if (d != POLICY_NEEDS_APPROVALS)
		assert_int_equal(v->approvals, 0);
	if (d == POLICY_ALLOW)
		assert_string_equal(v->reason, "");
	else
		assert_true(v->reason[0] != '\0');
	return d;
}

static void
test_require_parse(void **state)
{
	struct policy *p = NULL;
	struct policy_verdict v;
	char err[4096];
	static const char text[] =
	    "principal p\n"                                     /* 1 */
	    "    uri spiffe://t/p\n"                            /* 2 */
	    "    roles r\n"                                     /* 3 */
	    "role r\n"                                          /* 4 */
	    "    grant\n"                                       /* 5 */
	    "        require mfa\n"                             /* 6 */
	    "        methods " KS "Sign\n"                      /* 7 */
	    "        keys k-*\n"                                /* 8 */
	    "    grant\n"                                       /* 9 */
	    "        methods " KS "GetKey\n"                    /* 10 */
	    "        keys k-*\n"                                /* 11 */
	    "        require approvals 1 of r\n"                /* 12 */
	    "    grant\n"                                       /* 13 */
	    "        methods " KS "RotateKey\n"                 /* 14 */
	    "        keys k-*\n"                                /* 15 */
	    "\trequire   approvals   16 of  r  # the most\n"   /* 16 */
	    "        require mfa\n"                             /* 17 */
	    "    grant\n"                                       /* 18 */
	    "        methods " KS "CreateKey\n"                 /* 19 */
	    "        keys k-*\n"                                /* 20 */
	    "        require \"approvals\" \"10\" of \"r\"\n"   /* 21 */
	    "        when request.ok present\n"                 /* 22 */
	    "    grant\n"                                       /* 23 */
	    "        methods " KS "Verify\n"                    /* 24 */
	    "        keys k-*\n"                                /* 25 */
	    "        require mfa\n"                             /* 26 */
	    "    grant\n"                                       /* 27 */
	    "        methods " KS "Verify\n"                    /* 28 */
	    "        keys k-*\n"                                /* 29 */
	    "        require mfa\n";                            /* 30 */

	(void)state;
	if (parse_mem(text, strlen(text), &p, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(verdict(p, KS "Sign", "k-1", NULL, &v), POLICY_NEEDS_SECOND_FACTOR);
	assert_string_equal(v.reason, "role r grant at policy line 5 requires a second factor");
	assert_int_equal(verdict(p, KS "GetKey", "k-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 1);
	assert_string_equal(v.reason, "role r grant at policy line 9 requires 1 approval of r");
	assert_int_equal(verdict(p, KS "RotateKey", "k-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 16);
	assert_string_equal(v.approver_role, "r");
	assert_true(v.mfa);
	assert_int_equal(policy_principal_has_role(p, "p", "r"), 1);
	assert_int_equal(policy_principal_has_role(p, "p", "x"), 0);
	assert_int_equal(policy_principal_has_role(p, "q", "r"), 0);
	assert_int_equal(policy_principal_has_role(NULL, "p", "r"), 0);
	assert_string_equal(v.reason, "role r grant at policy line 13 requires 16 approvals of r and "
	    "a second factor");
	assert_int_equal(verdict(p, KS "CreateKey", "k-1", "x", &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 10);
	/* The same requirement in two grants is fine; the first is named. */
	assert_int_equal(verdict(p, KS "Verify", "k-1", NULL, &v), POLICY_NEEDS_SECOND_FACTOR);
	assert_string_equal(v.reason, "role r grant at policy line 23 requires a second factor");
	policy_free(p);
}

struct req_case {
	const char *lines;      /* appended to BASE (whose grant is open at line 5) */
	unsigned line;
	const char *msg;        /* the exact message */
};

static void
test_require_errors(void **state)
{
	static const struct req_case cases[] = {
		{ "        require\n", 8, "'require' needs 'mfa' or 'approvals N of ROLE'" },
		{ "        require otp\n", 8, "unknown requirement 'otp' (expected 'mfa' or "
		    "'approvals N of ROLE')" },
		{ "        require MFA\n", 8, "unknown requirement 'MFA' (expected 'mfa' or "
		    "'approvals N of ROLE')" },
		{ "        require \"\"\n", 8, "unknown requirement '' (expected 'mfa' or "
		    "'approvals N of ROLE')" },
		{ "        require mfa approvals 2\n", 8, "'require mfa' takes no value (one "
		    "requirement per line)" },
		{ "        require mfa yes\n", 8, "'require mfa' takes no value (one requirement "
		    "per line)" },
		{ "        require approvals\n", 8, "'require approvals' needs a number (1 to 16), "
		    "'of' and the role whose members approve: require approvals N of ROLE" },
		{ "        require approvals 2 3\n", 8, "'require approvals' needs a number (1 to 16), "
		    "'of' and the role whose members approve: require approvals N of ROLE" },
		{ "        require approvals 2 mfa\n", 8, "'require approvals' needs a number (1 to 16), "
		    "'of' and the role whose members approve: require approvals N of ROLE" },
		{ "        require approvals 0 of r\n", 8, "approvals count '0' is out of range (1 to 16)" },
		{ "        require approvals 17 of r\n", 8, "approvals count '17' is out of range "
		    "(1 to 16)" },
		{ "        require approvals 99999999999999999999999 of r\n", 8, "approvals count "
		    "'99999999999999999999999' is out of range (1 to 16)" },
		{ "        require approvals -1 of r\n", 8, "bad approvals count '-1' (a number from 1 "
		    "to 16)" },
		{ "        require approvals +2 of r\n", 8, "bad approvals count '+2' (a number from 1 "
		    "to 16)" },
		{ "        require approvals 02 of r\n", 8, "bad approvals count '02' (a number from 1 "
		    "to 16)" },
		{ "        require approvals 2x of r\n", 8, "bad approvals count '2x' (a number from 1 "
		    "to 16)" },
		{ "        require approvals 0x2 of r\n", 8, "bad approvals count '0x2' (a number from 1 "
		    "to 16)" },
		{ "        require approvals \"\" of r\n", 8, "bad approvals count '' (a number from 1 "
		    "to 16)" },
		{ "        require approvals two of r\n", 8, "bad approvals count 'two' (a number from 1 "
		    "to 16)" },
		{ "        require approvals 2 of nobody\n", 8, "undefined approver role 'nobody'" },
		{ "        require approvals 2 by r\n", 8, "'require approvals' needs a number (1 to "
		    "16), 'of' and the role whose members approve: require approvals N of ROLE" },
		/* duplicates within one grant, also with another value */
		{ "        require mfa\n        require mfa\n", 9, "duplicate 'require mfa' in the "
		    "grant (first on line 8)" },
		{ "        require approvals 2 of r\n        require mfa\n"
		    "        require approvals 2 of r\n", 10, "duplicate 'require approvals' in the "
		    "grant (first on line 8)" },
		{ "        require approvals 2 of r\n        require approvals 3 of r\n", 9,
		    "duplicate 'require approvals' in the grant (first on line 8)" },
		/* in the wrong place */
		{ "role r2\n    require mfa\n", 9, "'require' must follow a 'grant' line in role "
		    "'r2'" },
		{ "principal b\n    uri spiffe://t/b\n    roles r\n    require mfa\n", 11,
		    "'require' belongs in a grant of a role, not in principal 'b'" },
	};
	struct fixture *f = *state;
	struct policy *p, *sentinel = (struct policy *)&sentinel;
	char text[1024], err[4096], want[PATH_MAX + 256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", BASE, cases[i].lines);
		p = sentinel;
		assert_int_equal(parse_mem(text, strlen(text), &p, err, sizeof(err)), BS_ERR_CONFIG);
		assert_ptr_equal(p, sentinel);
		snprintf(want, sizeof(want), "mem:%u: %s", cases[i].line, cases[i].msg);
		if (strcmp(err, want) != 0)
			fail_msg("case %zu: got \"%s\", wanted \"%s\"", i, err, want);
		/* The same through a file, named by its path. */
		assert_int_equal(load_text(f, text, &p, err, sizeof(err)), BS_ERR_CONFIG);
		assert_null(p);
		snprintf(want, sizeof(want), "%s:%u: %s", f->path, cases[i].line, cases[i].msg);
		assert_string_equal(err, want);
	}

	/* Outside any block, and several problems in one pass. */
	p = sentinel;
	snprintf(text, sizeof(text), "require mfa\n%s        require approvals 0 of r\n"
	    "        require bogus\n", BASE);
	assert_int_equal(parse_mem(text, strlen(text), &p, err, sizeof(err)), BS_ERR_CONFIG);
	assert_string_equal(err,
	    "mem:1: 'require' outside a grant (grants live in 'role NAME' blocks)\n"
	    "mem:9: approvals count '0' is out of range (1 to 16)\n"
	    "mem:10: unknown requirement 'bogus' (expected 'mfa' or 'approvals N of ROLE')");
	assert_ptr_equal(p, sentinel);
}

/*
 * Verdict shapes and their precedence: a matching grant without
 * requirements allows; otherwise the weakest requirement among matching
 * grants wins (mfa alone < approvals N < approvals N and mfa < approvals
 * N + 1); otherwise the deny reason is the one policy_authorize gave before
 * requirements existed.
 */
static const char verdict_policy[] =
    "principal p\n"                                         /* 1 */
    "    uri spiffe://t/p\n"                                /* 2 */
    "    roles a b\n"                                       /* 3 */
    "role a\n"                                              /* 4 */
    "    grant\n"                                           /* 5 */
    "        methods " KS "Sign\n"                          /* 6 */
    "        keys mfa-* both-* any-*\n"                     /* 7 */
    "        require mfa\n"                                 /* 8 */
    "    grant\n"                                           /* 9 */
    "        methods " KS "Sign\n"                          /* 10 */
    "        keys appr-* both-* few-*\n"                    /* 11 */
    "        require approvals 3 of a\n"                    /* 12 */
    "    grant\n"                                           /* 13 */
    "        methods " KS "Sign\n"                          /* 14 */
    "        keys few-* combo-*\n"                          /* 15 */
    "        require approvals 2 of a\n"                    /* 16 */
    "        require mfa\n"                                 /* 17 */
    "    grant\n"                                           /* 18 */
    "        methods " KS "Sign\n"                          /* 19 */
    "        keys combo-* two-*\n"                          /* 20 */
    "        require approvals 2 of a\n"                    /* 21 */
    "role b\n"                                              /* 22 */
    "    grant\n"                                           /* 23 */
    "        methods " KS "Sign\n"                          /* 24 */
    "        keys any-* free-*\n"                           /* 25 */
    "    grant\n"                                           /* 26 */
    "        methods " KS "GetKey\n"                        /* 27 */
    "        keys mfa-*\n"                                  /* 28 */
    "        require mfa\n"                                 /* 29 */
    "        when request.ok == \"yes\"\n";                 /* 30 */

static void
test_verdicts(void **state)
{
	struct fixture *f = *state;
	struct policy *p = must_load(f, verdict_policy);
	const struct policy_principal *pr = policy_map(p, "spiffe://t/p", NULL);
	struct policy_request req = { KS "Sign", "mfa-1", "generic", NULL, 0, NULL };
	struct policy_verdict v;
	char reason[POLICY_REASON_MAX];

	/* ALLOW, also when a grant with requirements matched first. */
	assert_int_equal(verdict(p, KS "Sign", "free-1", NULL, &v), POLICY_ALLOW);
	assert_int_equal(verdict(p, KS "Sign", "any-1", NULL, &v), POLICY_ALLOW);

	/* Each requirement alone. */
	assert_int_equal(verdict(p, KS "Sign", "mfa-1", NULL, &v), POLICY_NEEDS_SECOND_FACTOR);
	assert_string_equal(v.reason, "role a grant at policy line 5 requires a second factor");
	assert_int_equal(verdict(p, KS "Sign", "appr-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 3);
	assert_string_equal(v.reason, "role a grant at policy line 9 requires 3 approvals of a");
	assert_int_equal(verdict(p, KS "Sign", "two-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 2);
	assert_string_equal(v.reason, "role a grant at policy line 18 requires 2 approvals of a");

	/* Precedence among matching grants. */
	assert_int_equal(verdict(p, KS "Sign", "both-1", NULL, &v), POLICY_NEEDS_SECOND_FACTOR);
	assert_string_equal(v.reason, "role a grant at policy line 5 requires a second factor");
	assert_int_equal(verdict(p, KS "Sign", "few-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 2);
	assert_string_equal(v.reason, "role a grant at policy line 13 requires 2 approvals of a and a "
	    "second factor");
	assert_int_equal(verdict(p, KS "Sign", "combo-1", NULL, &v), POLICY_NEEDS_APPROVALS);
	assert_int_equal(v.approvals, 2);
	assert_string_equal(v.reason, "role a grant at policy line 18 requires 2 approvals of a");

	/* Requirements only count when the grant matches: the old deny reasons. */
	assert_int_equal(verdict(p, KS "Sign", "zzz-1", NULL, &v), POLICY_DENY);
	assert_string_equal(v.reason, "role a grant at policy line 5 (first of 5 grants for the "
	    "method, all denied): key 'zzz-1' matches no keys pattern");
	assert_int_equal(verdict(p, KS "GetKey", "mfa-1", "yes", &v), POLICY_NEEDS_SECOND_FACTOR);
	assert_string_equal(v.reason, "role b grant at policy line 26 requires a second factor");
	assert_int_equal(verdict(p, KS "GetKey", "mfa-1", "no", &v), POLICY_DENY);
	assert_string_equal(v.reason, "role b grant at policy line 26: condition at line 30 failed: "
	    "request.ok == \"yes\" (value \"no\")");
	assert_int_equal(verdict(p, KS "GetPublicKey", "mfa-1", NULL, &v), POLICY_DENY);
	assert_string_equal(v.reason, "no role of principal 'p' (a,b) grants " KS "GetPublicKey");

	/* policy_authorize stays fail-closed: only ALLOW is 1. */
	assert_int_equal(authorize(p, pr, KS "Sign", "free-1", "generic", NULL, 0, reason), 1);
	assert_string_equal(reason, "");
	assert_int_equal(authorize(p, pr, KS "Sign", "mfa-1", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "role a grant at policy line 5 requires a second factor");
	assert_int_equal(authorize(p, pr, KS "Sign", "few-1", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "role a grant at policy line 13 requires 2 approvals of a and a "
	    "second factor");
	assert_int_equal(authorize(p, pr, KS "Sign", "zzz-1", "generic", NULL, 0, reason), 0);
	assert_string_equal(reason, "role a grant at policy line 5 (first of 5 grants for the "
	    "method, all denied): key 'zzz-1' matches no keys pattern");

	/* The admission pre-check counts grants with requirements. */
	assert_int_equal(policy_may_call(p, pr, KS "GetKey"), 1);
	assert_int_equal(policy_may_call(p, pr, KS "Sign"), 1);
	assert_int_equal(policy_may_call(p, pr, KS "GetPublicKey"), 0);

	/* NULL arguments deny; a NULL verdict is only a return value. */
	memset(&v, 0x55, sizeof(v));
	assert_int_equal(policy_evaluate(p, NULL, NULL, &req, &v), POLICY_DENY);
	assert_int_equal(v.decision, POLICY_DENY);
	assert_int_equal(v.approvals, 0);
	assert_string_equal(v.reason, "no policy, principal or method");
	assert_int_equal(policy_evaluate(NULL, pr, NULL, &req, &v), POLICY_DENY);
	assert_int_equal(policy_evaluate(p, pr, NULL, NULL, &v), POLICY_DENY);
	req.method = NULL;
	assert_int_equal(policy_evaluate(p, pr, NULL, &req, &v), POLICY_DENY);
	req.method = KS "Sign";
	req.key = "free-1";
	assert_int_equal(policy_evaluate(p, pr, NULL, &req, &v), POLICY_ALLOW);
	assert_int_equal(policy_evaluate(p, pr, NULL, &req, NULL), POLICY_DENY);
	policy_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_example_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lint_prefix_slash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_condition_operators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_condition_attr_vs_attr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conditions_and, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(test_principal_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tested_attribute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_method_tests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reasons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_details, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_each_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
