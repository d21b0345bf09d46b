/*
 * cmd_vehicles.c - `boltseal vehicles ...`: the vehicle registry, one
 * command per use of boltseal.v1.VehicleService (register, get, list,
 * set-attr, suspend, activate, decommission, add-key, revoke-key). Every
 * command that answers with a vehicle prints it the same way: readable
 * fields (times as RFC 3339 UTC), or with --json {"vehicle":VEHICLE}.
 * Identity keys are read from PEM or DER public-key files (cli_load_spki).
 * See docs/cli.md and docs/api.md.
 */
#define _GNU_SOURCE  /* strptime, timegm */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "boltseal/v1/vehicles.pb-c.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"

#define VS "/boltseal.v1.VehicleService/"
#define MAX_LIST_PAGES 1000          /* --all: at most this many pages */
#define MAX_PAIRS 256                /* NAME=VALUE pairs in one request (the server allows 32) */
#define TIME_MAX 253402300799ul      /* 9999-12-31T23:59:59Z */

/* ---- names and times ----------------------------------------------------------------- */

static const struct {
	const char *name;
	Boltseal__V1__VehicleStatus pb;
} statuses[] = {
	{ "active", BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_ACTIVE },
	{ "suspended", BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_SUSPENDED },
	{ "decommissioned", BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_DECOMMISSIONED },
};

/* The printed name of a status; "none" for unspecified or unknown values. */
static const char *
status_name(int pb)
{
	size_t i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if ((int)statuses[i].pb == pb)
			return statuses[i].name;
	return "none";
}

/* RFC 3339 UTC, or "-" for 0 (unset). */
static void
fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0) {
		snprintf(buf, len, "-");
		return;
	}
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/*
 * Option name as a time (Unix seconds, or YYYY-MM-DDTHH:MM:SSZ) into *out;
 * 0 when absent. Returns 0 or CLI_EXIT_USAGE.
 */
static int
time_opt(struct cli_ctx *x, const struct args *a, const char *name, int64_t *out)
{
	const char *s = args_get(a, name), *end;
	char back[32];
	unsigned long n;
	struct tm tm;
	time_t t;

	*out = 0;
	if (s == NULL)
		return 0;
	if (args_uint(s, 1, TIME_MAX, &n) == 0) {
		*out = (int64_t)n;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0' || (t = timegm(&tm)) <= 0 ||
	    (unsigned long)t > TIME_MAX || gmtime_r(&t, &tm) == NULL ||
	    strftime(back, sizeof(back), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 || strcmp(back, s) != 0)
		return out_usage(x->cmd, "--%s: '%s' is neither Unix seconds nor a UTC time "
		    "YYYY-MM-DDTHH:MM:SSZ", name, s);
	*out = (int64_t)t;
	return 0;
}

/* --NAME N as a positive uint64 into *out (0 when absent). 0 or CLI_EXIT_USAGE. */
static int
version_opt(struct cli_ctx *x, const struct args *a, const char *name, uint64_t *out)
{
	const char *s = args_get(a, name);
	unsigned long n;

	*out = 0;
	if (s == NULL)
		return 0;
	if (args_uint(s, 1, UINT64_MAX, &n) != 0)
		return out_usage(x->cmd, "--%s must be a positive integer", name);
	*out = (uint64_t)n;
	return 0;
}

/* ---- NAME=VALUE pairs as map entries -------------------------------------------------- */

/*
 * The entries of one map<string, string> field of a request: n messages
 * of the map's entry type, side by side in mem, with their keys and
 * values in copies (each "NAME\0VALUE"). kv_free releases everything.
 */
struct kv {
	ProtobufCMessage **ptrs;
	uint8_t *mem;
	char **copies;
	size_t n;
};

static void
kv_free(struct kv *kv)
{
	size_t i;

	for (i = 0; kv->copies != NULL && i < kv->n; i++)
		free(kv->copies[i]);
	free(kv->copies);
	free(kv->mem);
	free(kv->ptrs);
	memset(kv, 0, sizeof(*kv));
}

/*
 * Builds kv from n "NAME=VALUE" strings (borrowed) as entries of the map
 * entry type d (fields 1 key, 2 value, both strings). what names the
 * option in messages. A string without '=' or with an empty NAME, or a
 * NAME given twice, is a usage error. Returns 0 (kv_free in every case),
 * CLI_EXIT_USAGE or CLI_EXIT_CONN.
 */
static int
kv_build(struct cli_ctx *x, const char *what, const char *const *vals, size_t n,
    const ProtobufCMessageDescriptor *d, struct kv *kv)
{
	const ProtobufCFieldDescriptor *fk = protobuf_c_message_descriptor_get_field(d, 1);
	const ProtobufCFieldDescriptor *fv = protobuf_c_message_descriptor_get_field(d, 2);
	ProtobufCMessage *m;
	const char *eq;
	size_t i, j, nlen;
	char *c;

	memset(kv, 0, sizeof(*kv));
	if (n == 0)
		return 0;
	if (fk == NULL || fv == NULL || fk->type != PROTOBUF_C_TYPE_STRING ||
	    fv->type != PROTOBUF_C_TYPE_STRING) {
		out_err(x->cmd, "internal error: %s is not a map of strings", d->name);
		return CLI_EXIT_CONN;
	}
	if (n > MAX_PAIRS)
		return out_usage(x->cmd, "too many %s pairs (at most %d)", what, MAX_PAIRS);
	if ((kv->ptrs = calloc(n, sizeof(*kv->ptrs))) == NULL ||
	    (kv->mem = calloc(n, d->sizeof_message)) == NULL ||
	    (kv->copies = calloc(n, sizeof(*kv->copies))) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	for (i = 0; i < n; i++) {
		if ((eq = strchr(vals[i], '=')) == NULL || eq == vals[i])
			return out_usage(x->cmd, "%s '%s' is not NAME=VALUE", what, vals[i]);
		nlen = (size_t)(eq - vals[i]);
		for (j = 0; j < i; j++)
			if (strlen(kv->copies[j]) == nlen && memcmp(kv->copies[j], vals[i], nlen) == 0)
				return out_usage(x->cmd, "%s: attribute '%.*s' given twice", what,
				    (int)nlen, vals[i]);
		if ((c = strdup(vals[i])) == NULL) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		c[nlen] = '\0';
		kv->copies[i] = c;
		kv->n = i + 1;
		m = (ProtobufCMessage *)(void *)(kv->mem + i * d->sizeof_message);
		protobuf_c_message_init(d, m);
		*(char **)(void *)((uint8_t *)m + fk->offset) = c;
		*(char **)(void *)((uint8_t *)m + fv->offset) = c + nlen + 1;
		kv->ptrs[i] = m;
	}
	return 0;
}

/* ---- identities ---------------------------------------------------------------------- */

/*
 * An identity from --key FILE (required), --cert-sha256 HEX, --not-before
 * T and --not-after T into *id; the key and the digest it points to are
 * malloc'd (identity_clear frees them). 0 or CLI_EXIT_USAGE.
 */
static int
identity_from_args(struct cli_ctx *x, const struct args *a, Boltseal__V1__VehicleIdentity *id)
{
	const char *keyf = args_get(a, "key"), *cert = args_get(a, "cert-sha256");
	uint8_t *spki = NULL, digest[32];
	size_t spki_len = 0, i;
	char *hex;
	int ret;

	boltseal__v1__vehicle_identity__init(id);
	if (keyf == NULL)
		return out_usage(x->cmd, "--key PUBKEY.pem is required (the vehicle's identity "
		    "public key, PEM or DER)");
	if (cert != NULL && input_hex_digest(cert, strlen(cert), digest) != 0)
		return out_usage(x->cmd, "--cert-sha256 must be 64 hex digits (a SHA-256 digest)");
	if ((ret = time_opt(x, a, "not-before", &id->not_before)) != 0 ||
	    (ret = time_opt(x, a, "not-after", &id->not_after)) != 0)
		return ret;
	if (id->not_before != 0 && id->not_after != 0 && id->not_after <= id->not_before)
		return out_usage(x->cmd, "--not-after must be later than --not-before");
	if (cert != NULL) {
		if ((hex = strdup(cert)) == NULL) {
			out_err(x->cmd, "out of memory");
			return CLI_EXIT_CONN;
		}
		for (i = 0; hex[i] != '\0'; i++)
			hex[i] = (char)tolower((unsigned char)hex[i]);
		id->cert_sha256 = hex;
	}
	if ((ret = cli_load_spki(x, keyf, &spki, &spki_len)) != 0)
		return ret;
	id->public_key.data = spki;
	id->public_key.len = spki_len;
	return 0;
}

/* Frees what identity_from_args set. */
static void
identity_clear(Boltseal__V1__VehicleIdentity *id)
{
	OPENSSL_free(id->public_key.data);
	id->public_key.data = NULL;
	if (id->cert_sha256 != protobuf_c_empty_string)
		free(id->cert_sha256);
	id->cert_sha256 = (char *)protobuf_c_empty_string;
}

/* ---- printing ------------------------------------------------------------------------ */

/* A vehicle as a JSON member (null when v is NULL). */
static void
json_vehicle(struct out_json *j, const char *name, const Boltseal__V1__Vehicle *v)
{
	size_t i;

	if (v == NULL) {
		out_json_null(j, name);
		return;
	}
	out_json_object(j, name);
	out_json_str(j, "id", v->id);
	out_json_str(j, "status", status_name(v->status));
	out_json_str(j, "status_reason", v->status_reason);
	out_json_uint(j, "version", v->version);
	out_json_int(j, "provisioned_at", v->provisioned_at);
	out_json_int(j, "updated_at", v->updated_at);
	out_json_object(j, "attributes");
	for (i = 0; i < v->n_attributes; i++)
		out_json_str(j, v->attributes[i]->key, v->attributes[i]->value);
	out_json_close(j);
	out_json_array(j, "identities");
	for (i = 0; i < v->n_identities; i++) {
		const Boltseal__V1__VehicleIdentity *id = v->identities[i];

		out_json_object(j, NULL);
		out_json_str(j, "key_id", id->key_id);
		out_json_b64(j, "public_key", id->public_key.data, id->public_key.len);
		out_json_str(j, "cert_sha256", id->cert_sha256);
		out_json_int(j, "not_before", id->not_before);
		out_json_int(j, "not_after", id->not_after);
		out_json_int(j, "revoked_at", id->revoked_at);
		out_json_str(j, "revoked_reason", id->revoked_reason);
		out_json_close(j);
	}
	out_json_close(j);
	out_json_close(j);
}

/* A label, then server text shown safely, then a newline. */
static void
line(const char *label, const char *s)
{
	fputs(label, stdout);
	out_safe(stdout, s);
	putchar('\n');
}

/* A vehicle as text: id, status, version, times, attributes, identities. */
static void
text_vehicle(const Boltseal__V1__Vehicle *v)
{
	char t1[32], t2[32];
	size_t i;

	if (v == NULL) {
		printf("(no vehicle in response)\n");
		return;
	}
	line("id:          ", v->id);
	printf("status:      %s", status_name(v->status));
	if (v->status_reason[0] != '\0') {
		fputs(" (", stdout);
		out_safe(stdout, v->status_reason);
		putchar(')');
	}
	fmt_time(v->provisioned_at, t1, sizeof(t1));
	fmt_time(v->updated_at, t2, sizeof(t2));
	printf("\nversion:     %" PRIu64 "\nprovisioned: %s\nupdated:     %s\n", v->version, t1,
	    t2);
	printf("attributes:%s\n", v->n_attributes == 0 ? "  (none)" : "");
	for (i = 0; i < v->n_attributes; i++) {
		fputs("  ", stdout);
		out_safe(stdout, v->attributes[i]->key);
		fputs(" = ", stdout);
		out_safe(stdout, v->attributes[i]->value);
		putchar('\n');
	}
	printf("identities:\n");
	for (i = 0; i < v->n_identities; i++) {
		const Boltseal__V1__VehicleIdentity *id = v->identities[i];

		line("  - key_id:      ", id->key_id);
		if (id->revoked_at != 0) {
			fmt_time(id->revoked_at, t1, sizeof(t1));
			printf("    revoked:     %s", t1);
			if (id->revoked_reason[0] != '\0') {
				fputs(" (", stdout);
				out_safe(stdout, id->revoked_reason);
				putchar(')');
			}
			putchar('\n');
		} else {
			printf("    revoked:     no\n");
		}
		if (id->cert_sha256[0] != '\0')
			line("    cert_sha256: ", id->cert_sha256);
		if (id->not_before != 0 || id->not_after != 0) {
			fmt_time(id->not_before, t1, sizeof(t1));
			fmt_time(id->not_after, t2, sizeof(t2));
			printf("    valid:       %s to %s\n", t1, t2);
		}
	}
}

/* A vehicle as {"vehicle":VEHICLE} (json) or as text. */
static void
print_vehicle(int json, const Boltseal__V1__Vehicle *v)
{
	struct out_json j;

	if (!json) {
		text_vehicle(v);
		return;
	}
	out_json_init(&j);
	out_json_object(&j, NULL);
	json_vehicle(&j, "vehicle", v);
	out_json_close(&j);
}

/* Calls path with req, then prints the Vehicle it answers. */
static int
call_vehicle(struct cli_ctx *x, const char *path, const ProtobufCMessage *req)
{
	Boltseal__V1__Vehicle *v = NULL;
	int ret;

	ret = call_unary(x, path, req, &boltseal__v1__vehicle__descriptor,
	    (ProtobufCMessage **)&v);
	if (ret != 0)
		return ret;
	print_vehicle(x->json, v);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return 0;
}

/* ---- commands ------------------------------------------------------------------------ */

static int
cmd_register(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RegisterVehicleRequest req = BOLTSEAL__V1__REGISTER_VEHICLE_REQUEST__INIT;
	Boltseal__V1__VehicleIdentity id;
	struct kv kv;
	int ret;

	memset(&kv, 0, sizeof(kv));
	boltseal__v1__vehicle_identity__init(&id);
	if ((ret = kv_build(x, "--attr", a->multi, a->nmulti,
	    &boltseal__v1__register_vehicle_request__attributes_entry__descriptor, &kv)) != 0 ||
	    (ret = identity_from_args(x, a, &id)) != 0)
		goto out;
	req.id = (char *)a->pos[0];
	req.n_attributes = kv.n;
	req.attributes = (Boltseal__V1__RegisterVehicleRequest__AttributesEntry **)kv.ptrs;
	req.identity = &id;
	ret = call_vehicle(x, VS "RegisterVehicle", &req.base);
out:
	identity_clear(&id);
	kv_free(&kv);
	return ret;
}

static int
cmd_get(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__GetVehicleRequest req = BOLTSEAL__V1__GET_VEHICLE_REQUEST__INIT;
	int ret;

	if ((ret = version_opt(x, a, "version", &req.version)) != 0)
		return ret;
	req.id = (char *)a->pos[0];
	return call_vehicle(x, VS "GetVehicle", &req.base);
}

/* Prints the vehicles of every page: a JSON object, or a table. */
static void
print_vehicle_pages(int json, Boltseal__V1__ListVehiclesResponse *const *pages, size_t npages)
{
	const Boltseal__V1__ListVehiclesResponse *last = pages[npages - 1];
	struct out_json j;
	size_t i, k, m, w;

	if (json) {
		out_json_init(&j);
		out_json_object(&j, NULL);
		out_json_array(&j, "vehicles");
		for (i = 0; i < npages; i++)
			for (k = 0; k < pages[i]->n_vehicles; k++)
				json_vehicle(&j, NULL, pages[i]->vehicles[k]);
		out_json_close(&j);
		out_json_str(&j, "next_page_token", last->next_page_token);
		out_json_close(&j);
		return;
	}
	printf("%-24s %-15s %-8s %s\n", "ID", "STATUS", "VERSION", "ATTRIBUTES");
	for (i = 0; i < npages; i++)
		for (k = 0; k < pages[i]->n_vehicles; k++) {
			const Boltseal__V1__Vehicle *v = pages[i]->vehicles[k];

			w = strlen(v->id);
			out_safe(stdout, v->id);
			printf("%*s %-15s %-8" PRIu64 " ", w < 24 ? (int)(24 - w) : 0, "",
			    status_name(v->status), v->version);
			for (m = 0; m < v->n_attributes; m++) {
				if (m > 0)
					putchar(',');
				out_safe(stdout, v->attributes[m]->key);
				putchar('=');
				out_safe(stdout, v->attributes[m]->value);
			}
			putchar('\n');
		}
	if (last->next_page_token[0] != '\0') {
		fputs("next page token: ", stdout);
		out_safe(stdout, last->next_page_token);
		putchar('\n');
	}
}

/* --status NAME as the protobuf value (0 when absent). 0 or CLI_EXIT_USAGE. */
static int
status_opt(struct cli_ctx *x, const struct args *a, Boltseal__V1__VehicleStatus *out)
{
	const char *s = args_get(a, "status");
	size_t i;

	*out = BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_STATUS_UNSPECIFIED;
	if (s == NULL)
		return 0;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(statuses[i].name, s) == 0) {
			*out = statuses[i].pb;
			return 0;
		}
	return out_usage(x->cmd, "unknown status '%s' (active, suspended, decommissioned)", s);
}

static int
cmd_list(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__ListVehiclesRequest req = BOLTSEAL__V1__LIST_VEHICLES_REQUEST__INIT;
	Boltseal__V1__ListVehiclesResponse **pages = NULL, **np, *resp;
	const char *ps = args_get(a, "page-size"), *pt = args_get(a, "page-token");
	int all = args_get(a, "all") != NULL, ret;
	size_t npages = 0, i;
	unsigned long n;
	struct kv kv;

	memset(&kv, 0, sizeof(kv));
	if (ps != NULL) {
		if (args_uint(ps, 1, 100, &n) != 0)
			return out_usage(x->cmd, "--page-size must be 1-100");
		req.page_size = (uint32_t)n;
	}
	if ((ret = status_opt(x, a, &req.status)) != 0)
		return ret;
	if ((ret = kv_build(x, "--attr", a->multi, a->nmulti,
	    &boltseal__v1__list_vehicles_request__attribute_filter_entry__descriptor, &kv)) != 0)
		goto out;
	req.n_attribute_filter = kv.n;
	req.attribute_filter = (Boltseal__V1__ListVehiclesRequest__AttributeFilterEntry **)kv.ptrs;
	req.page_token = (char *)(pt != NULL ? pt : "");
	for (;;) {
		resp = NULL;
		ret = call_unary(x, VS "ListVehicles", &req.base,
		    &boltseal__v1__list_vehicles_response__descriptor, (ProtobufCMessage **)&resp);
		if (ret != 0)
			goto out;
		if ((np = realloc(pages, (npages + 1) * sizeof(*np))) == NULL) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			out_err(x->cmd, "out of memory");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		pages = np;
		pages[npages++] = resp;
		if (!all || resp->next_page_token[0] == '\0')
			break;
		if (strcmp(resp->next_page_token, req.page_token) == 0) {
			out_err(x->cmd, "server keeps returning the same page; giving up");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		if (npages >= MAX_LIST_PAGES) {
			out_err(x->cmd, "more than %d pages; giving up (continue with --page-token "
			    "from the last page, or narrow the filter)", MAX_LIST_PAGES);
			ret = CLI_EXIT_CONN;
			goto out;
		}
		req.page_token = resp->next_page_token;
	}
	print_vehicle_pages(x->json, pages, npages);
out:
	for (i = 0; i < npages; i++)
		protobuf_c_message_free_unpacked(&pages[i]->base, NULL);
	free(pages);
	kv_free(&kv);
	return ret;
}

/*
 * `set-attr ID [NAME=VALUE]... [--attr NAME=VALUE]... [--remove NAME[,NAME...]]`:
 * the pairs after ID (at most two: the parser keeps three positional
 * arguments) and those of --attr are set together, the names of --remove
 * removed, in one new version.
 */
static int
cmd_set_attr(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__UpdateVehicleAttributesRequest req =
	    BOLTSEAL__V1__UPDATE_VEHICLE_ATTRIBUTES_REQUEST__INIT;
	const char *rm = args_get(a, "remove"), **pairs = NULL;
	char *rmcopy = NULL, **names = NULL, *p, *save = NULL;
	size_t npairs = 0, nnames = 0, i;
	struct kv kv;
	int ret;

	memset(&kv, 0, sizeof(kv));
	if ((ret = version_opt(x, a, "expected-version", &req.expected_version)) != 0)
		return ret;
	if ((pairs = calloc((size_t)a->npos + a->nmulti + 1, sizeof(*pairs))) == NULL) {
		out_err(x->cmd, "out of memory");
		return CLI_EXIT_CONN;
	}
	for (i = 1; i < (size_t)a->npos; i++)
		pairs[npairs++] = a->pos[i];
	for (i = 0; i < a->nmulti; i++)
		pairs[npairs++] = a->multi[i];
	if ((ret = kv_build(x, "attribute", pairs, npairs,
	    &boltseal__v1__update_vehicle_attributes_request__set_entry__descriptor, &kv)) != 0)
		goto out;
	if (rm != NULL) {
		if ((rmcopy = strdup(rm)) == NULL ||
		    (names = calloc(strlen(rm) / 2 + 1, sizeof(*names))) == NULL) {
			out_err(x->cmd, "out of memory");
			ret = CLI_EXIT_CONN;
			goto out;
		}
		for (p = strtok_r(rmcopy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
			for (i = 0; i < kv.n; i++)
				if (strcmp(kv.copies[i], p) == 0) {
					ret = out_usage(x->cmd, "attribute '%s' is both set and removed",
					    p);
					goto out;
				}
			names[nnames++] = p;
		}
		if (nnames == 0) {
			ret = out_usage(x->cmd, "--remove needs a NAME (or NAME,NAME...)");
			goto out;
		}
	}
	if (kv.n == 0 && nnames == 0) {
		ret = out_usage(x->cmd, "nothing to change: give NAME=VALUE, --attr NAME=VALUE "
		    "or --remove NAME");
		goto out;
	}
	req.id = (char *)a->pos[0];
	req.n_set = kv.n;
	req.set = (Boltseal__V1__UpdateVehicleAttributesRequest__SetEntry **)kv.ptrs;
	req.n_remove = nnames;
	req.remove = names;
	ret = call_vehicle(x, VS "UpdateVehicleAttributes", &req.base);
out:
	free(names);
	free(rmcopy);
	free(pairs);
	kv_free(&kv);
	return ret;
}

/* SetVehicleStatus(ID, status, --reason, --expected-version). */
static int
set_status(struct cli_ctx *x, const struct args *a, Boltseal__V1__VehicleStatus st)
{
	Boltseal__V1__SetVehicleStatusRequest req = BOLTSEAL__V1__SET_VEHICLE_STATUS_REQUEST__INIT;
	const char *reason = args_get(a, "reason");
	int ret;

	if ((ret = version_opt(x, a, "expected-version", &req.expected_version)) != 0)
		return ret;
	req.id = (char *)a->pos[0];
	req.status = st;
	req.reason = (char *)(reason != NULL ? reason : "");
	return call_vehicle(x, VS "SetVehicleStatus", &req.base);
}

static int
cmd_suspend(struct cli_ctx *x, const struct args *a)
{
	return set_status(x, a, BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_SUSPENDED);
}

static int
cmd_activate(struct cli_ctx *x, const struct args *a)
{
	return set_status(x, a, BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_ACTIVE);
}

static int
cmd_decommission(struct cli_ctx *x, const struct args *a)
{
	return set_status(x, a, BOLTSEAL__V1__VEHICLE_STATUS__VEHICLE_DECOMMISSIONED);
}

static int
cmd_add_key(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__AddVehicleIdentityRequest req = BOLTSEAL__V1__ADD_VEHICLE_IDENTITY_REQUEST__INIT;
	Boltseal__V1__VehicleIdentity id;
	int ret;

	boltseal__v1__vehicle_identity__init(&id);
	if ((ret = identity_from_args(x, a, &id)) == 0) {
		req.id = (char *)a->pos[0];
		req.identity = &id;
		ret = call_vehicle(x, VS "AddVehicleIdentity", &req.base);
	}
	identity_clear(&id);
	return ret;
}

static int
cmd_revoke_key(struct cli_ctx *x, const struct args *a)
{
	Boltseal__V1__RevokeVehicleIdentityRequest req =
	    BOLTSEAL__V1__REVOKE_VEHICLE_IDENTITY_REQUEST__INIT;
	const char *reason = args_get(a, "reason");

	req.id = (char *)a->pos[0];
	req.key_id = (char *)a->pos[1];
	req.reason = (char *)(reason != NULL ? reason : "");
	return call_vehicle(x, VS "RevokeVehicleIdentity", &req.base);
}

/* ---- the table ----------------------------------------------------------------------- */

static const struct args_opt register_opts[] = {
	{ "key", 0, ARGS_VALUE }, { "cert-sha256", 0, ARGS_VALUE }, { "attr", 0, ARGS_MULTI },
	{ "not-before", 0, ARGS_VALUE }, { "not-after", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt get_opts[] = {
	{ "version", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt list_opts[] = {
	{ "attr", 0, ARGS_MULTI }, { "status", 0, ARGS_VALUE }, { "page-size", 0, ARGS_VALUE },
	{ "page-token", 0, ARGS_VALUE }, { "all", 0, ARGS_FLAG },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt set_attr_opts[] = {
	{ "attr", 0, ARGS_MULTI }, { "remove", 0, ARGS_VALUE },
	{ "expected-version", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt status_opts[] = {
	{ "reason", 0, ARGS_VALUE }, { "expected-version", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt add_key_opts[] = {
	{ "key", 0, ARGS_VALUE }, { "cert-sha256", 0, ARGS_VALUE },
	{ "not-before", 0, ARGS_VALUE }, { "not-after", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };
static const struct args_opt revoke_opts[] = {
	{ "reason", 0, ARGS_VALUE },
	{ NULL, 0, ARGS_FLAG } };

static const struct cli_cmd vehicles_cmds[] = {
	{ .name = "register", .run = cmd_register,
	  .summary = "register a vehicle with its first identity key (RegisterVehicle)",
	  .usage = "ID --key PUBKEY.pem [--cert-sha256 HEX] [--attr NAME=VALUE]...\n"
	      "[--not-before T] [--not-after T]",
	  .spec = { register_opts, 1, 1 } },
	{ .name = "get", .run = cmd_get,
	  .summary = "print a vehicle, or one of its earlier versions (GetVehicle)",
	  .usage = "ID [--version N]", .spec = { get_opts, 1, 1 } },
	{ .name = "list", .run = cmd_list,
	  .summary = "list vehicles in id order, one page or --all (ListVehicles)",
	  .usage = "[--attr NAME=VALUE]... [--status active|suspended|decommissioned]\n"
	      "[--page-size N] [--page-token T] [--all]",
	  .spec = { list_opts, 0, 0 } },
	{ .name = "set-attr", .run = cmd_set_attr,
	  .summary = "set and remove attributes in one new version (UpdateVehicleAttributes)",
	  .usage = "ID [NAME=VALUE [NAME=VALUE]] [--attr NAME=VALUE]...\n"
	      "[--remove NAME[,NAME...]] [--expected-version N]",
	  .spec = { set_attr_opts, 1, 3 } },
	{ .name = "suspend", .run = cmd_suspend,
	  .summary = "suspend a vehicle: commands refused unless a grant allows them "
	      "(SetVehicleStatus)",
	  .usage = "ID [--reason R] [--expected-version N]", .spec = { status_opts, 1, 1 } },
	{ .name = "activate", .run = cmd_activate,
	  .summary = "make a suspended vehicle active again (SetVehicleStatus)",
	  .usage = "ID [--reason R] [--expected-version N]", .spec = { status_opts, 1, 1 } },
	{ .name = "decommission", .run = cmd_decommission,
	  .summary = "decommission a vehicle, for good (SetVehicleStatus)",
	  .usage = "ID [--reason R] [--expected-version N]", .spec = { status_opts, 1, 1 } },
	{ .name = "add-key", .run = cmd_add_key,
	  .summary = "add an identity key to a vehicle (AddVehicleIdentity)",
	  .usage = "ID --key PUBKEY.pem [--cert-sha256 HEX] [--not-before T] [--not-after T]",
	  .spec = { add_key_opts, 1, 1 } },
	{ .name = "revoke-key", .run = cmd_revoke_key,
	  .summary = "mark a vehicle's identity key revoked (RevokeVehicleIdentity)",
	  .usage = "ID KEY_ID [--reason R]", .spec = { revoke_opts, 2, 2 } },
	{ .name = NULL },
};

const struct cli_cmd cli_vehicles_cmd = {
	.name = "vehicles",
	.summary = "the vehicle registry (VehicleService): vehicles, attributes, status, "
	    "identity keys",
	.usage = "COMMAND [ARGS]",
	.sub = vehicles_cmds,
};
