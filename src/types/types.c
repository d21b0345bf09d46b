/*
 * types.c - names of the key vocabulary and its mapping to the protobuf
 * enums of boltseal.v1 (see types.h). One table per type.
 */
#include <string.h>

#include "boltseal/v1/keys.pb-c.h"
#include "types/types.h"

struct alg_row {
	enum bs_alg alg;
	const char *name;
	Boltseal__V1__Algorithm pb;
};

static const struct alg_row algs[] = {
	{ BS_ALG_ECDSA_P256_SHA256, "ecdsa-p256-sha256", BOLTSEAL__V1__ALGORITHM__ECDSA_P256_SHA256 },
	{ BS_ALG_ED25519, "ed25519", BOLTSEAL__V1__ALGORITHM__ED25519 },
	{ BS_ALG_RSA_3072_PSS_SHA256, "rsa-3072-pss-sha256",
	    BOLTSEAL__V1__ALGORITHM__RSA_3072_PSS_SHA256 },
	{ BS_ALG_AES_256_GCM, "aes-256-gcm", BOLTSEAL__V1__ALGORITHM__AES_256_GCM },
	{ BS_ALG_HMAC_SHA256, "hmac-sha256", BOLTSEAL__V1__ALGORITHM__HMAC_SHA256 },
};

int
bs_alg_is_symmetric(enum bs_alg alg)
{
	return alg == BS_ALG_AES_256_GCM || alg == BS_ALG_HMAC_SHA256;
}

int
bs_alg_fits_purpose(enum bs_alg alg, enum bs_purpose p)
{
	if (alg == BS_ALG_NONE || p == BS_PURPOSE_NONE)
		return 0;
	/* admin keys sign (approvals, later) or seal (second-factor seeds) */
	if (p == BS_PURPOSE_ADMIN)
		return 1;
	/* X.509 CAs sign with ecdsa-with-SHA256, which every verifier knows */
	if (p == BS_PURPOSE_CA)
		return alg == BS_ALG_ECDSA_P256_SHA256;
	return (p == BS_PURPOSE_ENVELOPE) == bs_alg_is_symmetric(alg);
}

/* Indexed by enum bs_purpose; [0] is NONE. */
static const char *const purpose_names[] = {
	"none", "generic", "ota", "checkpoint", "command", "envelope", "audit", "admin", "ca",
};
static const Boltseal__V1__KeyPurpose purpose_pb[] = {
	BOLTSEAL__V1__KEY_PURPOSE__PURPOSE_UNSPECIFIED, BOLTSEAL__V1__KEY_PURPOSE__GENERIC,
	BOLTSEAL__V1__KEY_PURPOSE__OTA, BOLTSEAL__V1__KEY_PURPOSE__CHECKPOINT,
	BOLTSEAL__V1__KEY_PURPOSE__COMMAND, BOLTSEAL__V1__KEY_PURPOSE__ENVELOPE,
	BOLTSEAL__V1__KEY_PURPOSE__AUDIT, BOLTSEAL__V1__KEY_PURPOSE__ADMIN,
	BOLTSEAL__V1__KEY_PURPOSE__CA,
};
#define NPURPOSES (sizeof(purpose_names) / sizeof(purpose_names[0]))

const char *
bs_alg_name(enum bs_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return algs[i].name;
	return "none";
}

enum bs_alg
bs_alg_from_name(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].alg;
	return BS_ALG_NONE;
}

int
bs_alg_from_pb(int pb, enum bs_alg *out)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if ((int)algs[i].pb == pb) {
			*out = algs[i].alg;
			return 0;
		}
	return BS_ERR_INVALID;
}

int
bs_alg_to_pb(enum bs_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return algs[i].pb;
	return BOLTSEAL__V1__ALGORITHM__ALGORITHM_UNSPECIFIED;
}

const char *
bs_purpose_name(enum bs_purpose p)
{
	return (unsigned)p < NPURPOSES ? purpose_names[p] : "none";
}

enum bs_purpose
bs_purpose_from_name(const char *name)
{
	for (size_t i = 1; name != NULL && i < NPURPOSES; i++)
		if (strcmp(name, purpose_names[i]) == 0)
			return (enum bs_purpose)i;
	return BS_PURPOSE_NONE;
}

const char *const *
bs_purpose_names(size_t *n)
{
	*n = NPURPOSES - 1;
	return purpose_names + 1;
}

int
bs_purpose_from_pb(int pb, enum bs_purpose *out)
{
	for (size_t i = 1; i < NPURPOSES; i++)
		if ((int)purpose_pb[i] == pb) {
			*out = (enum bs_purpose)i;
			return 0;
		}
	return BS_ERR_INVALID;
}

int
bs_purpose_to_pb(enum bs_purpose p)
{
	return (unsigned)p < NPURPOSES ? purpose_pb[p] : purpose_pb[0];
}

const char *
bs_sig_format_name(enum bs_sig_format f)
{
	return f == BS_SIGFMT_RAW ? "raw" : "der";
}

int
bs_sig_format_from_pb(int pb, enum bs_sig_format *out)
{
	switch (pb) {
	case BOLTSEAL__V1__SIGNATURE_FORMAT__SIGNATURE_FORMAT_DEFAULT:
	case BOLTSEAL__V1__SIGNATURE_FORMAT__DER:
		*out = BS_SIGFMT_DER;
		return 0;
	case BOLTSEAL__V1__SIGNATURE_FORMAT__RAW:
		*out = BS_SIGFMT_RAW;
		return 0;
	default:
		return BS_ERR_INVALID;
	}
}

int
bs_sig_format_to_pb(enum bs_sig_format f)
{
	return f == BS_SIGFMT_RAW ? BOLTSEAL__V1__SIGNATURE_FORMAT__RAW :
	    BOLTSEAL__V1__SIGNATURE_FORMAT__DER;
}

enum bs_key_state
bs_key_state_from_name(const char *name)
{
	static const enum bs_key_state all[] = { BS_KEY_ENABLED, BS_KEY_DISABLED,
		BS_KEY_PENDING_DESTRUCTION, BS_KEY_DESTROYED };

	for (size_t i = 0; name != NULL && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(name, bs_key_state_name(all[i])) == 0)
			return all[i];
	return BS_KEY_STATE_NONE;
}

const char *
bs_key_state_name(enum bs_key_state s)
{
	switch (s) {
	case BS_KEY_ENABLED: return "enabled";
	case BS_KEY_DISABLED: return "disabled";
	case BS_KEY_PENDING_DESTRUCTION: return "pending_destruction";
	case BS_KEY_DESTROYED: return "destroyed";
	case BS_KEY_STATE_NONE:
	default: return "none";
	}
}

int
bs_key_state_to_pb(enum bs_key_state s)
{
	switch (s) {
	case BS_KEY_ENABLED: return BOLTSEAL__V1__KEY_STATE__ENABLED;
	case BS_KEY_DISABLED: return BOLTSEAL__V1__KEY_STATE__DISABLED;
	case BS_KEY_PENDING_DESTRUCTION: return BOLTSEAL__V1__KEY_STATE__PENDING_DESTRUCTION;
	case BS_KEY_DESTROYED: return BOLTSEAL__V1__KEY_STATE__DESTROYED;
	case BS_KEY_STATE_NONE:
	default: return BOLTSEAL__V1__KEY_STATE__KEY_STATE_UNSPECIFIED;
	}
}
