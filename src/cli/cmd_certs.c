/*
 * cmd_certs.c - the `boltseal ca` commands (boltseal.v1.CertificateService;
 * docs/cli.md "Certificate authorities", docs/identity.md):
 *   ca create KEY --common-name CN [--days N]   the CA certificate of a ca key
 *   ca show KEY [--out FILE]                    the kept certificate
 *   ca profile NAME --ca KEY --kind K --uri-prefix P --max-hours N
 *                                               create or replace a profile
 *   ca issue PROFILE SUBJECT --csr FILE [--hours N] [--out FILE] [--ca-out FILE]
 *                                               a client certificate
 *   ca renew --csr FILE [--hours N] [--out FILE] [--ca-out FILE]
 *                                               the certificate of --cert, renewed
 *   ca revoke SERIAL [--reason R]               revoked, and the CA's new CRL
 *   ca crl KEY [--out FILE]                     the CA's current CRL
 *   ca profiles                                 the profiles
 *   ca list [--ca KEY] [--subject ID] [--expired] [--all]
 *                                               issued certificates, a page or --all
 *   propose ca-create KEY --common-name CN ...  (a row of cmd_admin.c)
 *   propose profile-set NAME --ca KEY ...       (a row of cmd_admin.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boltseal/v1/certs.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"

#define CS "/boltseal.v1.CertificateService/"
#define CREATE_METHOD "boltseal.v1.CertificateService/CreateAuthority"
#define CERTS_TOKEN_MAX 64

static void
print_authority(struct cli_ctx *x, const Boltseal__V1__Authority *a, int pem)
{
	struct out_json j;
	char n[16];

	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "key_name", a->key_name);
		out_json_uint(&j, "key_version", a->key_version);
		out_json_str(&j, "subject", a->subject);
		out_json_str(&j, "serial_hex", a->serial_hex);
		out_json_int(&j, "not_before_unix", a->not_before_unix);
		out_json_int(&j, "not_after_unix", a->not_after_unix);
		out_json_str(&j, "sha256", a->sha256);
		out_json_str(&j, "certificate_pem", a->certificate_pem);
		out_json_close(&j);
		return;
	}
	out_field("key:", a->key_name);
	snprintf(n, sizeof(n), "%u", a->key_version);
	out_field("key version:", n);
	out_field("subject:", a->subject);
	out_field("serial:", a->serial_hex);
	out_field_time("not before:", a->not_before_unix);
	out_field_time("not after:", a->not_after_unix);
	out_field("sha256:", a->sha256);
	if (pem) {
		printf("\n");
		out_safe_text(stdout, a->certificate_pem);
	}
}

/* The CreateAuthority request of KEY, --common-name and --days (0: the server's default). */
static int
build_create(struct cli_ctx *x, const struct args *a, Boltseal__V1__CreateAuthorityRequest *r)
{
	const char *cn = args_get(a, "common-name"), *d = args_get(a, "days");
	unsigned long days = 0;

	if (cn == NULL)
		return out_usage(x->cmd, "--common-name CN is required (the CA's name)");
	if (d != NULL && args_uint(d, 1, 7300, &days) != 0)
		return out_usage(x->cmd, "--days must be 1 to 7300");
	boltseal__v1__create_authority_request__init(r);
	r->key_name = (char *)a->pos[0];
	r->common_name = (char *)cn;
	r->lifetime_days = (uint32_t)days;
	return 0;
}

/* s quoted for a POSIX shell into out (cap bytes): '...' with ' as '\''; cut short if long. */
static void
shell_quote(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	out[o++] = '\'';
	for (; *s != '\0' && o + 6 < cap; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
}

static int
cmd_ca_create(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateAuthorityRequest req;
	Boltseal__V1__CreateAuthorityResponse *resp = NULL;
	const char *d = args_get(a, "days");
	char hint[512], cn[200], *msg = NULL;
	int st = 0, ret;

	if ((ret = build_create(x, a, &req)) != 0)
		return ret;
	shell_quote(req.common_name, cn, sizeof(cn));
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, CS "CreateAuthority", &req.base,
	    &boltseal__v1__create_authority_response__descriptor, (ProtobufCMessage **)&resp, &st,
	    &msg);
	if (ret != 0) {
		snprintf(hint, sizeof(hint), "propose ca-create %s --common-name %s%s%s", a->pos[0],
		    cn, d != NULL ? " --days " : "", d != NULL ? d : "");
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		return ret;
	}
	if (resp->authority != NULL)
		print_authority(x, resp->authority, 1);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_ca_show(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetAuthorityRequest req = BOLTSEAL__V1__GET_AUTHORITY_REQUEST__INIT;
	Boltseal__V1__GetAuthorityResponse *resp = NULL;
	const char *out = args_get(a, "out");
	int ret;

	req.key_name = (char *)a->pos[0];
	ret = call_unary(x, CS "GetAuthority", &req.base,
	    &boltseal__v1__get_authority_response__descriptor, (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (resp->authority == NULL) {
		out_err(x->cmd, "malformed GetAuthorityResponse from server (no authority)");
		ret = CLI_EXIT_CONN;
	} else if (out != NULL) {
		ret = out_write_file(x->cmd, out, (const uint8_t *)resp->authority->certificate_pem,
		    strlen(resp->authority->certificate_pem));
		if (ret == 0 && strcmp(out, "-") != 0)
			print_authority(x, resp->authority, 0);
	} else {
		print_authority(x, resp->authority, 1);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/*
 * The SetProfileRequest of `ca profile NAME ...` and `propose profile-set
 * NAME ...` into *req and *p (p's strings borrowed from a). 0, or the
 * usage error printed.
 */
static int
build_profile(struct cli_ctx *x, const struct args *a, Boltseal__V1__SetProfileRequest *req,
    Boltseal__V1__Profile *p)
{
	static const struct { const char *word; int kind; } kinds[] = {
		{ "vehicle", BOLTSEAL__V1__PROFILE_KIND__VEHICLE },
		{ "gateway", BOLTSEAL__V1__PROFILE_KIND__GATEWAY },
		{ "service", BOLTSEAL__V1__PROFILE_KIND__SERVICE },
	};
	const char *ca = args_get(a, "ca"), *kind = args_get(a, "kind");
	const char *prefix = args_get(a, "uri-prefix"), *hours = args_get(a, "max-hours");
	unsigned long h = 0;

	boltseal__v1__set_profile_request__init(req);
	boltseal__v1__profile__init(p);
	if (ca == NULL || kind == NULL || prefix == NULL || hours == NULL)
		return out_usage(x->cmd, "--ca KEY, --kind, --uri-prefix and --max-hours are required");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i].word) == 0)
			p->kind = kinds[i].kind;
	if (p->kind == 0)
		return out_usage(x->cmd, "--kind must be vehicle, gateway or service");
	if (args_uint(hours, 1, 8760, &h) != 0)
		return out_usage(x->cmd, "--max-hours must be 1 to 8760");
	p->name = (char *)a->pos[0];
	p->ca_key_name = (char *)ca;
	p->uri_prefix = (char *)prefix;
	p->max_lifetime_hours = (uint32_t)h;
	req->profile = p;
	return 0;
}

static int
cmd_ca_profile(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetProfileRequest req;
	Boltseal__V1__Profile p;
	Boltseal__V1__SetProfileResponse *resp = NULL;
	char hint[1400], qn[200], qca[200], qk[64], qu[600], *msg = NULL;
	int ret, st = 0;

	if ((ret = build_profile(x, a, &req, &p)) != 0)
		return ret;
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, CS "SetProfile", &req.base,
	    &boltseal__v1__set_profile_response__descriptor, (ProtobufCMessage **)&resp, &st, &msg);
	if (ret != 0) {
		shell_quote(p.name, qn, sizeof(qn));
		shell_quote(p.ca_key_name, qca, sizeof(qca));
		shell_quote(args_get(a, "kind"), qk, sizeof(qk));
		shell_quote(p.uri_prefix, qu, sizeof(qu));
		snprintf(hint, sizeof(hint), "propose profile-set %s --ca %s --kind %s --uri-prefix %s "
		    "--max-hours %u", qn, qca, qk, qu, p.max_lifetime_hours);
		cli_approvals_hint(x, st, msg, hint);
		free(msg);
		return ret;
	}
	if (x->json) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "name", resp->profile != NULL ? resp->profile->name : "");
		out_json_close(&j);
	} else {
		printf("profile %s: %s certificates under %s, URI %sSUBJECT, at most %u hours\n",
		    p.name, args_get(a, "kind"), p.ca_key_name, p.uri_prefix, p.max_lifetime_hours);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

int
cli_propose_profile_set(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__SetProfileRequest req;
	Boltseal__V1__Profile p;
	int ret;

	if ((ret = build_profile(x, a, &req, &p)) != 0)
		return ret;
	return cli_propose(x, a, "boltseal.v1.CertificateService/SetProfile", &req.base);
}

/*
 * An issued certificate: --out and --ca-out files, then its fields (and,
 * without --out, its PEM) or --json. 0 or the exit code of a file error.
 */
static int
print_issued(struct cli_ctx *x, const Boltseal__V1__IssuedCertificate *c, const char *out,
    const char *ca_out)
{
	int ret;

	if (out != NULL && (ret = out_write_file(x->cmd, out, (const uint8_t *)c->certificate_pem,
	    strlen(c->certificate_pem))) != 0)
		return ret;
	if (ca_out != NULL && (ret = out_write_file(x->cmd, ca_out,
	    (const uint8_t *)c->ca_certificate_pem, strlen(c->ca_certificate_pem))) != 0)
		return ret;
	if (x->json) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "serial_hex", c->serial_hex);
		out_json_str(&j, "subject_uri", c->subject_uri);
		out_json_int(&j, "not_before_unix", c->not_before_unix);
		out_json_int(&j, "not_after_unix", c->not_after_unix);
		out_json_str(&j, "sha256", c->sha256);
		out_json_str(&j, "renewed_from_serial_hex", c->renewed_from_serial_hex);
		out_json_str(&j, "certificate_pem", c->certificate_pem);
		out_json_str(&j, "ca_certificate_pem", c->ca_certificate_pem);
		out_json_close(&j);
	} else if (out == NULL || strcmp(out, "-") != 0) {
		out_field("subject uri:", c->subject_uri);
		out_field("serial:", c->serial_hex);
		out_field_time("not before:", c->not_before_unix);
		out_field_time("not after:", c->not_after_unix);
		out_field("sha256:", c->sha256);
		out_field("ca key:", c->ca_key_name);
		if (c->renewed_from_serial_hex[0] != '\0')
			out_field("renewed from:", c->renewed_from_serial_hex);
		if (out == NULL) {
			printf("\n");
			out_safe_text(stdout, c->certificate_pem);
		}
	}
	return 0;
}

/* --csr FILE and --hours N of issue and renew. 0 or an exit code (said). */
static int
read_csr(struct cli_ctx *x, const struct args *a, uint8_t **pem, unsigned long *h)
{
	const char *csr = args_get(a, "csr"), *hours = args_get(a, "hours");
	size_t len = 0;

	*h = 0;
	if (csr == NULL)
		return out_usage(x->cmd, "--csr FILE is required (a PEM PKCS#10 request; '-': stdin)");
	if (hours != NULL && args_uint(hours, 1, 8760, h) != 0)
		return out_usage(x->cmd, "--hours must be 1 to 8760");
	return input_read_file(x->cmd, csr, 16 * 1024, pem, &len);
}

static int
cmd_ca_issue(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__IssueCertificateRequest req = BOLTSEAL__V1__ISSUE_CERTIFICATE_REQUEST__INIT;
	Boltseal__V1__IssueCertificateResponse *resp = NULL;
	unsigned long h = 0;
	uint8_t *pem = NULL;
	int ret;

	if ((ret = read_csr(x, a, &pem, &h)) != 0)
		return ret;
	req.profile = (char *)a->pos[0];
	req.subject_id = (char *)a->pos[1];
	req.csr_pem = (char *)pem;
	req.lifetime_hours = (uint32_t)h;
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, CS "IssueCertificate", &req.base,
	    &boltseal__v1__issue_certificate_response__descriptor, (ProtobufCMessage **)&resp,
	    NULL, NULL);
	free(pem);
	if (ret != 0)
		return ret;
	if (resp->certificate == NULL) {
		out_err(x->cmd, "malformed IssueCertificateResponse from server (no certificate)");
		ret = CLI_EXIT_CONN;
	} else {
		ret = print_issued(x, resp->certificate, args_get(a, "out"), args_get(a, "ca-out"));
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_ca_renew(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RenewCertificateRequest req = BOLTSEAL__V1__RENEW_CERTIFICATE_REQUEST__INIT;
	Boltseal__V1__RenewCertificateResponse *resp = NULL;
	unsigned long h = 0;
	uint8_t *pem = NULL;
	int ret;

	if ((ret = read_csr(x, a, &pem, &h)) != 0)
		return ret;
	req.csr_pem = (char *)pem;
	req.lifetime_hours = (uint32_t)h;
	ret = call_unary(x, CS "RenewCertificate", &req.base,
	    &boltseal__v1__renew_certificate_response__descriptor, (ProtobufCMessage **)&resp);
	free(pem);
	if (ret != 0)
		return ret;
	if (resp->certificate == NULL) {
		out_err(x->cmd, "malformed RenewCertificateResponse from server (no certificate)");
		ret = CLI_EXIT_CONN;
	} else {
		ret = print_issued(x, resp->certificate, args_get(a, "out"), args_get(a, "ca-out"));
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

/* RFC 5280 CRLReason by name (the values RevokeCertificate takes). */
static const struct {
	const char *word;
	uint32_t code;
} reasons[] = {
	{ "unspecified", 0 }, { "key-compromise", 1 }, { "affiliation-changed", 3 },
	{ "superseded", 4 }, { "cessation-of-operation", 5 }, { "privilege-withdrawn", 9 },
};

static void
print_crl(struct cli_ctx *x, const Boltseal__V1__Crl *c, int pem)
{
	if (x->json) {
		struct out_json j;

		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_str(&j, "ca_key_name", c->ca_key_name);
		out_json_int(&j, "crl_number", (int64_t)c->crl_number);
		out_json_int(&j, "this_update_unix", c->this_update_unix);
		out_json_int(&j, "next_update_unix", c->next_update_unix);
		out_json_int(&j, "revoked", c->revoked);
		out_json_str(&j, "crl_pem", c->crl_pem);
		out_json_close(&j);
		return;
	}
	printf("crl number:   %llu\n", (unsigned long long)c->crl_number);
	out_field_time("this update:", c->this_update_unix);
	out_field_time("next update:", c->next_update_unix);
	printf("entries:      %u\n", c->revoked);
	if (pem) {
		printf("\n");
		out_safe_text(stdout, c->crl_pem);
	}
}

static int
cmd_ca_revoke(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RevokeCertificateRequest req = BOLTSEAL__V1__REVOKE_CERTIFICATE_REQUEST__INIT;
	Boltseal__V1__RevokeCertificateResponse *resp = NULL;
	const char *why = args_get(a, "reason");
	size_t i;
	int ret;

	if (why != NULL) {
		for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
			if (strcmp(why, reasons[i].word) == 0)
				break;
		if (i == sizeof(reasons) / sizeof(reasons[0]))
			return out_usage(x->cmd, "--reason must be unspecified, key-compromise, "
			    "affiliation-changed, superseded, cessation-of-operation or "
			    "privilege-withdrawn");
		req.reason = reasons[i].code;
	}
	req.serial_hex = (char *)a->pos[0];
	ret = cli_call_sf(x, a, CLI_SF_MAYBE, CS "RevokeCertificate", &req.base,
	    &boltseal__v1__revoke_certificate_response__descriptor, (ProtobufCMessage **)&resp,
	    NULL, NULL);
	if (ret != 0)
		return ret;
	if (resp->certificate == NULL || resp->crl == NULL) {
		out_err(x->cmd, "malformed RevokeCertificateResponse from server");
		ret = CLI_EXIT_CONN;
	} else if (x->json) {
		print_crl(x, resp->crl, 0);
	} else {
		printf("revoked %s (%s); CRL of %s:\n", resp->certificate->serial_hex,
		    resp->certificate->subject_uri, resp->crl->ca_key_name);
		print_crl(x, resp->crl, 0);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static int
cmd_ca_crl(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetCrlRequest req = BOLTSEAL__V1__GET_CRL_REQUEST__INIT;
	Boltseal__V1__GetCrlResponse *resp = NULL;
	const char *out = args_get(a, "out");
	int ret;

	req.ca_key_name = (char *)a->pos[0];
	ret = call_unary(x, CS "GetCrl", &req.base, &boltseal__v1__get_crl_response__descriptor,
	    (ProtobufCMessage **)&resp);
	if (ret != 0)
		return ret;
	if (resp->crl == NULL) {
		out_err(x->cmd, "malformed GetCrlResponse from server (no CRL)");
		ret = CLI_EXIT_CONN;
	} else if (out != NULL) {
		ret = out_write_file(x->cmd, out, (const uint8_t *)resp->crl->crl_pem,
		    strlen(resp->crl->crl_pem));
		if (ret == 0 && strcmp(out, "-") != 0)
			print_crl(x, resp->crl, 0);
	} else {
		print_crl(x, resp->crl, 1);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static const char *
kind_word(int kind)
{
	switch (kind) {
	case BOLTSEAL__V1__PROFILE_KIND__VEHICLE:
		return "vehicle";
	case BOLTSEAL__V1__PROFILE_KIND__GATEWAY:
		return "gateway";
	case BOLTSEAL__V1__PROFILE_KIND__SERVICE:
		return "service";
	default:
		return "?";
	}
}

static int
cmd_ca_profiles(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ListProfilesRequest req = BOLTSEAL__V1__LIST_PROFILES_REQUEST__INIT;
	Boltseal__V1__ListProfilesResponse *resp = NULL;
	struct out_json j;
	int ret;

	(void)a;
	if ((ret = call_unary(x, CS "ListProfiles", &req.base,
	    &boltseal__v1__list_profiles_response__descriptor, (ProtobufCMessage **)&resp)) != 0)
		return ret;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_array(&j, "profiles");
	} else {
		printf("%-20s %-8s %-16s %-6s %s\n", "NAME", "KIND", "CA", "HOURS", "URI PREFIX");
	}
	for (size_t i = 0; i < resp->n_profiles; i++) {
		const Boltseal__V1__Profile *p = resp->profiles[i];

		if (x->json) {
			out_json_object(&j, NULL);
			out_json_str(&j, "name", p->name);
			out_json_str(&j, "kind", kind_word(p->kind));
			out_json_str(&j, "ca_key_name", p->ca_key_name);
			out_json_str(&j, "uri_prefix", p->uri_prefix);
			out_json_int(&j, "max_lifetime_hours", p->max_lifetime_hours);
			out_json_close(&j);
		} else {
			printf("%-20s %-8s %-16s %-6u ", p->name, kind_word(p->kind), p->ca_key_name,
			    p->max_lifetime_hours);
			out_safe_text(stdout, p->uri_prefix);
			printf("\n");
		}
	}
	if (x->json) {
		out_json_close(&j);
		out_json_close(&j);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int
cmd_ca_list(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ListCertificatesRequest req = BOLTSEAL__V1__LIST_CERTIFICATES_REQUEST__INIT;
	Boltseal__V1__ListCertificatesResponse *resp = NULL;
	int all = args_get(a, "all") != NULL, ret = 0;
	int64_t now = (int64_t)time(NULL);
	char token[CERTS_TOKEN_MAX + 1] = "";
	struct out_json j;

	req.ca_key_name = (char *)(args_get(a, "ca") != NULL ? args_get(a, "ca") : "");
	req.subject_id = (char *)(args_get(a, "subject") != NULL ? args_get(a, "subject") : "");
	req.include_expired = args_get(a, "expired") != NULL;
	if (x->json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_array(&j, "certificates");
	} else {
		printf("%-32s %-10s %-20s %s\n", "SERIAL", "STATE", "NOT AFTER (UTC)", "SUBJECT URI");
	}
	do {
		req.page_token = token;
		if ((ret = call_unary(x, CS "ListCertificates", &req.base,
		    &boltseal__v1__list_certificates_response__descriptor,
		    (ProtobufCMessage **)&resp)) != 0)
			return ret;
		for (size_t i = 0; i < resp->n_certificates; i++) {
			const Boltseal__V1__IssuedCertificate *c = resp->certificates[i];
			const char *state = c->revoked_at_unix != 0 ? "revoked" :
			    c->not_after_unix <= now ? "expired" : "valid";
			char when[32];
			time_t na = (time_t)c->not_after_unix;
			struct tm tm;

			if (x->json) {
				out_json_object(&j, NULL);
				out_json_str(&j, "serial_hex", c->serial_hex);
				out_json_str(&j, "state", state);
				out_json_str(&j, "subject_uri", c->subject_uri);
				out_json_str(&j, "profile", c->profile);
				out_json_str(&j, "ca_key_name", c->ca_key_name);
				out_json_str(&j, "sha256", c->sha256);
				out_json_int(&j, "not_before_unix", c->not_before_unix);
				out_json_int(&j, "not_after_unix", c->not_after_unix);
				out_json_int(&j, "revoked_at_unix", c->revoked_at_unix);
				out_json_str(&j, "renewed_from_serial_hex", c->renewed_from_serial_hex);
				out_json_close(&j);
				continue;
			}
			if (gmtime_r(&na, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
			    &tm) == 0)
				snprintf(when, sizeof(when), "%lld", (long long)c->not_after_unix);
			printf("%-32s %-10s %-20s ", c->serial_hex, state, when);
			out_safe_text(stdout, c->subject_uri);
			printf("\n");
		}
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	} while (all && token[0] != '\0');
	if (x->json) {
		out_json_close(&j);
		out_json_str(&j, "next_page_token", token);
		out_json_close(&j);
	} else if (token[0] != '\0') {
		printf("more: --all lists every page\n");
	}
	return 0;
}

int
cli_propose_ca_create(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__CreateAuthorityRequest req;
	int ret;

	if ((ret = build_create(x, a, &req)) != 0)
		return ret;
	return cli_propose(x, a, CREATE_METHOD, &req.base);
}

static const struct args_opt create_opts[] = {
	{ "common-name", 0, ARGS_VALUE }, { "days", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt show_opts[] = { { "out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt profile_opts[] = {
	{ "ca", 0, ARGS_VALUE }, { "kind", 0, ARGS_VALUE }, { "uri-prefix", 0, ARGS_VALUE },
	{ "max-hours", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };
static const struct args_opt issue_opts[] = {
	{ "csr", 0, ARGS_VALUE }, { "hours", 0, ARGS_VALUE }, { "out", 0, ARGS_VALUE },
	{ "ca-out", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct args_opt renew_opts[] = {
	{ "csr", 0, ARGS_VALUE }, { "hours", 0, ARGS_VALUE }, { "out", 0, ARGS_VALUE },
	{ "ca-out", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct args_opt revoke_opts[] = {
	{ "reason", 0, ARGS_VALUE }, { "otp", 0, ARGS_VALUE }, { NULL, 0, ARGS_FLAG } };

static const struct args_opt list_opts[] = {
	{ "ca", 0, ARGS_VALUE }, { "subject", 0, ARGS_VALUE }, { "expired", 0, ARGS_FLAG },
	{ "all", 0, ARGS_FLAG }, { NULL, 0, ARGS_FLAG } };

static const struct cli_cmd ca_cmds[] = {
	{ .name = "create", .run = cmd_ca_create,
	  .summary = "the self-signed CA certificate of a ca key, signed in the HSM; needs "
	      "approvals: see 'propose ca-create' (CreateAuthority)",
	  .usage = "KEY --common-name CN [--days N] [--otp CODE]", .spec = { create_opts, 1, 1 } },
	{ .name = "show", .run = cmd_ca_show,
	  .summary = "a CA key's certificate; --out writes the PEM to a file (GetAuthority)",
	  .usage = "KEY [--out FILE]", .spec = { show_opts, 1, 1 } },
	{ .name = "profile", .run = cmd_ca_profile,
	  .summary = "create or replace an issuing profile; needs approvals under the seed policy "
	      "(SetProfile)",
	  .usage = "NAME --ca KEY --kind vehicle|gateway|service --uri-prefix URI --max-hours N\n"
	      "[--otp CODE]", .spec = { profile_opts, 1, 1 } },
	{ .name = "issue", .run = cmd_ca_issue,
	  .summary = "a client certificate for a CSR's key, as the profile says (IssueCertificate)",
	  .usage = "PROFILE SUBJECT --csr FILE [--hours N] [--out FILE] [--ca-out FILE]\n"
	      "[--otp CODE]", .spec = { issue_opts, 2, 2 } },
	{ .name = "renew", .run = cmd_ca_renew,
	  .summary = "renew the certificate this client connects with (--cert), for the CSR's key "
	      "(RenewCertificate)",
	  .usage = "--csr FILE [--hours N] [--out FILE] [--ca-out FILE]",
	  .spec = { renew_opts, 0, 0 } },
	{ .name = "revoke", .run = cmd_ca_revoke,
	  .summary = "revoke an issued certificate by serial; its CA's new CRL is made at once and "
	      "reaches the TLS layer (RevokeCertificate)",
	  .usage = "SERIAL [--reason unspecified|key-compromise|affiliation-changed|superseded|\n"
	      "cessation-of-operation|privilege-withdrawn] [--otp CODE]",
	  .spec = { revoke_opts, 1, 1 } },
	{ .name = "crl", .run = cmd_ca_crl,
	  .summary = "a CA's current CRL; --out writes the PEM to a file (GetCrl)",
	  .usage = "KEY [--out FILE]", .spec = { show_opts, 1, 1 } },
	{ .name = "profiles", .run = cmd_ca_profiles,
	  .summary = "the issuing profiles (ListProfiles)", .usage = "",
	  .spec = { NULL, 0, 0 } },
	{ .name = "list", .run = cmd_ca_list,
	  .summary = "issued certificates in serial order: valid and revoked ones, --expired too; "
	      "one page, or --all (ListCertificates)",
	  .usage = "[--ca KEY] [--subject ID] [--expired] [--all]", .spec = { list_opts, 0, 0 } },
	{ .name = NULL },
};

const struct cli_cmd cli_ca_cmd = {
	.name = "ca",
	.summary = "certificate authorities whose keys stay in the HSM: create, show, profile, issue, "
	    "renew, revoke, crl, profiles, list "
	    "(boltseal.v1.CertificateService)",
	.usage = "COMMAND [ARGS]",
	.sub = ca_cmds,
};
