/*
 * hsm.c - the PKCS#11 token behind boltseal.
 *
 * Loads the module through p11-kit (by absolute path, or by the name it is
 * registered under), initialises it with CKF_OS_LOCKING_OK (SoftHSM turns
 * its own locks off when given NULL arguments), picks the single token that
 * matches a PKCS#11 URI and logs in once, on a first session that stays open
 * for the life of struct hsm so that every later session is logged in too.
 *
 * The key operations are a fixed, typed set: generate a non-extractable
 * signing key pair (ECDSA P-256, Ed25519, RSA-3072), find, list and destroy
 * keys by CKA_ID, and sign a digest or message. Public keys leave as DER
 * SubjectPublicKeyInfo built with OpenSSL from the public attributes.
 *
 * Threads: struct hsm is shared; its list of open sessions is guarded by
 * hsm->lock. A struct hsm_session belongs to one thread at a time.
 * Nothing here logs: failures come back as codes and messages that never
 * contain the PIN.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"
#include "hsm/p11uri.h"

/* PKCS#11 3.0 names an older p11-kit header may lack. */
#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x40UL
#endif
#ifndef CKM_EC_EDWARDS_KEY_PAIR_GEN
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x1055UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif
#ifndef CKG_MGF1_SHA256
#define CKG_MGF1_SHA256 0x2UL
#endif
#ifndef CKR_ACTION_PROHIBITED
#define CKR_ACTION_PROHIBITED 0x1bUL
#endif
#ifndef CKR_CURVE_NOT_SUPPORTED
#define CKR_CURVE_NOT_SUPPORTED 0x140UL
#endif
#ifndef CKR_PIN_TOO_WEAK
#define CKR_PIN_TOO_WEAK 0x1b8UL
#endif
#ifndef CKR_PUBLIC_KEY_INVALID
#define CKR_PUBLIC_KEY_INVALID 0x1b9UL
#endif
#ifndef CKR_FUNCTION_REJECTED
#define CKR_FUNCTION_REJECTED 0x200UL
#endif

#define HSM_MODULE_NAME_LEN 128
#define HSM_DESC_LEN 128
#define HSM_LABEL_MAX 128            /* CKA_LABEL bytes we accept */
#define HSM_ATTR_MAX 4096            /* largest public attribute we read */
#define HSM_LIST_MAX 1000000         /* objects hsm_list_private_key_ids walks */
#define HSM_SIGN_MAX_INPUT (16u << 20)
#define HSM_SIG_MAX 1024             /* RSA-8192; larger is a module bug */
#define HSM_DIGEST_LEN 32
#define HSM_P256_SIG_LEN 64
#define HSM_ED25519_SIG_LEN 64
#define HSM_RSA_BITS 3072
#define HSM_FIND_BATCH 64
#define HSM_KTYPE_CACHE 16           /* per-session handle -> key type slots */

struct hsm {
	CK_FUNCTION_LIST *fl;
	CK_FUNCTION_LIST **modules;      /* set from p11_kit_modules_load, or NULL */
	int initialized;
	CK_SLOT_ID slot;
	int have_login_session;
	int logged_in;                   /* our C_Login succeeded */
	CK_SESSION_HANDLE login_session;
	pthread_mutex_t lock;            /* guards sessions */
	struct hsm_session *sessions;
	_Atomic unsigned destroy_gen;    /* bumped by every C_DestroyObject */
	char module[HSM_MODULE_NAME_LEN];
	char label[33];
	char desc[HSM_DESC_LEN];
};

struct hsm_session {
	struct hsm *h;
	CK_SESSION_HANDLE sh;
	CK_RV last_rv;
	struct hsm_session *prev, *next; /* h->sessions, under h->lock */
	/*
	 * Key types of private keys this session signed with, so hsm_sign can
	 * check the key against the algorithm without a C_GetAttributeValue
	 * per signature (about 30 us on SoftHSM). Dropped whenever any object
	 * is destroyed, since a module may reuse handles.
	 */
	unsigned ktype_gen;
	struct {
		CK_OBJECT_HANDLE obj;
		CK_KEY_TYPE type;
	} ktype[HSM_KTYPE_CACHE];
};

/* DER OIDs for CKA_EC_PARAMS: prime256v1 and id-Ed25519 (1.3.101.112). */
static const CK_BYTE oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const CK_BYTE oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const CK_BYTE rsa_e65537[] = { 0x01, 0x00, 0x01 };

const char *
hsm_rv_name(unsigned long rv)
{
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_CANCEL: return "CKR_CANCEL";
	case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
	case CKR_SLOT_ID_INVALID: return "CKR_SLOT_ID_INVALID";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_NO_EVENT: return "CKR_NO_EVENT";
	case CKR_NEED_TO_CREATE_THREADS: return "CKR_NEED_TO_CREATE_THREADS";
	case CKR_CANT_LOCK: return "CKR_CANT_LOCK";
	case CKR_ATTRIBUTE_READ_ONLY: return "CKR_ATTRIBUTE_READ_ONLY";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_ACTION_PROHIBITED: return "CKR_ACTION_PROHIBITED";
	case CKR_DATA_INVALID: return "CKR_DATA_INVALID";
	case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_ENCRYPTED_DATA_LEN_RANGE: return "CKR_ENCRYPTED_DATA_LEN_RANGE";
	case CKR_FUNCTION_CANCELED: return "CKR_FUNCTION_CANCELED";
	case CKR_FUNCTION_NOT_PARALLEL: return "CKR_FUNCTION_NOT_PARALLEL";
	case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_KEY_SIZE_RANGE: return "CKR_KEY_SIZE_RANGE";
	case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
	case CKR_KEY_NOT_NEEDED: return "CKR_KEY_NOT_NEEDED";
	case CKR_KEY_CHANGED: return "CKR_KEY_CHANGED";
	case CKR_KEY_NEEDED: return "CKR_KEY_NEEDED";
	case CKR_KEY_INDIGESTIBLE: return "CKR_KEY_INDIGESTIBLE";
	case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	case CKR_KEY_NOT_WRAPPABLE: return "CKR_KEY_NOT_WRAPPABLE";
	case CKR_KEY_UNEXTRACTABLE: return "CKR_KEY_UNEXTRACTABLE";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
	case CKR_OPERATION_NOT_INITIALIZED: return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_INVALID: return "CKR_PIN_INVALID";
	case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
	case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
	case CKR_SESSION_COUNT: return "CKR_SESSION_COUNT";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_SESSION_PARALLEL_NOT_SUPPORTED: return "CKR_SESSION_PARALLEL_NOT_SUPPORTED";
	case CKR_SESSION_READ_ONLY: return "CKR_SESSION_READ_ONLY";
	case CKR_SESSION_EXISTS: return "CKR_SESSION_EXISTS";
	case CKR_SESSION_READ_ONLY_EXISTS: return "CKR_SESSION_READ_ONLY_EXISTS";
	case CKR_SESSION_READ_WRITE_SO_EXISTS: return "CKR_SESSION_READ_WRITE_SO_EXISTS";
	case CKR_SIGNATURE_INVALID: return "CKR_SIGNATURE_INVALID";
	case CKR_SIGNATURE_LEN_RANGE: return "CKR_SIGNATURE_LEN_RANGE";
	case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
	case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
	case CKR_TOKEN_WRITE_PROTECTED: return "CKR_TOKEN_WRITE_PROTECTED";
	case CKR_UNWRAPPING_KEY_HANDLE_INVALID: return "CKR_UNWRAPPING_KEY_HANDLE_INVALID";
	case CKR_UNWRAPPING_KEY_SIZE_RANGE: return "CKR_UNWRAPPING_KEY_SIZE_RANGE";
	case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT: return "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT";
	case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_USER_TYPE_INVALID: return "CKR_USER_TYPE_INVALID";
	case CKR_USER_ANOTHER_ALREADY_LOGGED_IN: return "CKR_USER_ANOTHER_ALREADY_LOGGED_IN";
	case CKR_USER_TOO_MANY_TYPES: return "CKR_USER_TOO_MANY_TYPES";
	case CKR_WRAPPED_KEY_INVALID: return "CKR_WRAPPED_KEY_INVALID";
	case CKR_WRAPPED_KEY_LEN_RANGE: return "CKR_WRAPPED_KEY_LEN_RANGE";
	case CKR_WRAPPING_KEY_HANDLE_INVALID: return "CKR_WRAPPING_KEY_HANDLE_INVALID";
	case CKR_WRAPPING_KEY_SIZE_RANGE: return "CKR_WRAPPING_KEY_SIZE_RANGE";
	case CKR_WRAPPING_KEY_TYPE_INCONSISTENT: return "CKR_WRAPPING_KEY_TYPE_INCONSISTENT";
	case CKR_RANDOM_SEED_NOT_SUPPORTED: return "CKR_RANDOM_SEED_NOT_SUPPORTED";
	case CKR_RANDOM_NO_RNG: return "CKR_RANDOM_NO_RNG";
	case CKR_DOMAIN_PARAMS_INVALID: return "CKR_DOMAIN_PARAMS_INVALID";
	case CKR_CURVE_NOT_SUPPORTED: return "CKR_CURVE_NOT_SUPPORTED";
	case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
	case CKR_SAVED_STATE_INVALID: return "CKR_SAVED_STATE_INVALID";
	case CKR_INFORMATION_SENSITIVE: return "CKR_INFORMATION_SENSITIVE";
	case CKR_STATE_UNSAVEABLE: return "CKR_STATE_UNSAVEABLE";
	case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
	case CKR_MUTEX_BAD: return "CKR_MUTEX_BAD";
	case CKR_MUTEX_NOT_LOCKED: return "CKR_MUTEX_NOT_LOCKED";
	case CKR_PIN_TOO_WEAK: return "CKR_PIN_TOO_WEAK";
	case CKR_PUBLIC_KEY_INVALID: return "CKR_PUBLIC_KEY_INVALID";
	case CKR_FUNCTION_REJECTED: return "CKR_FUNCTION_REJECTED";
	default:
		return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
	}
}

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, HSM_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* Copies a blank-padded PKCS#11 text field into dst without the padding. */
static void
copy_field(char *dst, size_t cap, const unsigned char *fld, size_t fld_len)
{
	size_t n = fld_len;

	while (n > 0 && (fld[n - 1] == ' ' || fld[n - 1] == '\0'))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, fld, n);
	dst[n] = '\0';
	/* Keep messages printable whatever the token puts there. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] == 0x7f)
			dst[i] = '?';
}

/* Stores a failing return value on the session and maps it to BS_ERR_HSM. */
static int
fail_rv(struct hsm_session *s, CK_RV rv)
{
	s->last_rv = rv;
	return BS_ERR_HSM;
}

/*
 * Replaces the session's PKCS#11 session with a fresh one (the token stays
 * logged in through the first session): the only portable way to end an
 * operation a module left active. Object handles stay valid.
 */
static int
session_reset(struct hsm_session *s)
{
	CK_FUNCTION_LIST *fl = s->h->fl;
	CK_SESSION_HANDLE sh;
	CK_RV rv;

	(void)fl->C_CloseSession(s->sh);
	s->sh = CK_INVALID_HANDLE;
	rv = fl->C_OpenSession(s->h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
	if (rv != CKR_OK) {
		s->last_rv = rv;
		return BS_ERR_HSM;
	}
	s->sh = sh;
	return 0;
}

static CK_RV
destroy_object(struct hsm_session *s, CK_OBJECT_HANDLE obj)
{
	CK_RV rv = s->h->fl->C_DestroyObject(s->sh, obj);

	atomic_fetch_add(&s->h->destroy_gen, 1);
	return rv;
}

/*
 * Key type of the private key obj: from the session cache, else read from
 * the token (and cached). A handle that is not a private key is
 * BS_ERR_INVALID with CKR_KEY_TYPE_INCONSISTENT.
 */
static int
private_key_type(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_KEY_TYPE *out)
{
	unsigned gen = atomic_load(&s->h->destroy_gen);
	size_t slot = obj % HSM_KTYPE_CACHE;
	CK_OBJECT_CLASS cls = 0;
	CK_KEY_TYPE type = 0;
	CK_ATTRIBUTE a[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
	};
	CK_RV rv;

	if (s->ktype_gen != gen) {
		memset(s->ktype, 0, sizeof(s->ktype));
		s->ktype_gen = gen;
	}
	if (obj != CK_INVALID_HANDLE && s->ktype[slot].obj == obj) {
		*out = s->ktype[slot].type;
		return 0;
	}
	rv = s->h->fl->C_GetAttributeValue(s->sh, obj, a, 2);
	if (rv != CKR_OK)
		return fail_rv(s, rv);
	if (cls != CKO_PRIVATE_KEY) {
		s->last_rv = CKR_KEY_TYPE_INCONSISTENT;
		return BS_ERR_INVALID;
	}
	s->ktype[slot].obj = obj;
	s->ktype[slot].type = type;
	*out = type;
	return 0;
}

static void
hsm_unload(struct hsm *h)
{
	if (h->initialized)
		(void)h->fl->C_Finalize(NULL);
	h->initialized = 0;
	if (h->modules != NULL)
		p11_kit_modules_release(h->modules);
	else if (h->fl != NULL)
		p11_kit_module_release(h->fl);
	h->modules = NULL;
	h->fl = NULL;
}

/*
 * Loads module by absolute path, or by its p11-kit registered name.
 */
static int
load_module(struct hsm *h, const char *module, char *err)
{
	CK_FUNCTION_LIST **mods = NULL;
	size_t i;

	if (module[0] == '/') {
		h->fl = p11_kit_module_load(module, 0);
		if (h->fl == NULL) {
			const char *msg = p11_kit_message();

			set_err(err, "cannot load PKCS#11 module %s: %s", h->module,
			    msg != NULL ? msg : "unknown error");
			return BS_ERR_HSM;
		}
		return 0;
	}
	if (strchr(module, '/') != NULL) {
		set_err(err, "PKCS#11 module %s: give an absolute path or a p11-kit module name",
		    h->module);
		return BS_ERR_INVALID;
	}
	mods = p11_kit_modules_load(NULL, 0);
	if (mods == NULL) {
		const char *msg = p11_kit_message();

		set_err(err, "cannot load p11-kit modules to find %s: %s", h->module,
		    msg != NULL ? msg : "unknown error");
		return BS_ERR_HSM;
	}
	for (i = 0; mods[i] != NULL; i++) {
		char *name = p11_kit_module_get_name(mods[i]);
		int match = name != NULL && strcmp(name, module) == 0;

		free(name);
		if (match) {
			h->fl = mods[i];
			h->modules = mods;
			return 0;
		}
	}
	p11_kit_modules_release(mods);
	set_err(err, "no PKCS#11 module named %s is registered with p11-kit", h->module);
	return BS_ERR_NOT_FOUND;
}

/*
 * Finds the one initialised token matching uri; sets h->slot, h->label and
 * h->desc.
 */
static int
select_slot(struct hsm *h, const struct p11uri *u, const char *uri, char *err)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG nslots = 0, i, nmatch = 0;
	CK_TOKEN_INFO ti, chosen;
	CK_RV rv;
	int ret = BS_ERR_HSM;

	rv = h->fl->C_GetSlotList(CK_TRUE, NULL, &nslots);
	if (rv != CKR_OK) {
		set_err(err, "module %s, token %s: C_GetSlotList: %s", h->module, uri,
		    hsm_rv_name(rv));
		goto out;
	}
	if (nslots > 0) {
		if ((slots = calloc(nslots, sizeof(*slots))) == NULL) {
			ret = BS_ERR_NOMEM;
			set_err(err, "out of memory");
			goto out;
		}
		rv = h->fl->C_GetSlotList(CK_TRUE, slots, &nslots);
		if (rv != CKR_OK) {
			set_err(err, "module %s, token %s: C_GetSlotList: %s", h->module, uri,
			    hsm_rv_name(rv));
			goto out;
		}
	}
	memset(&chosen, 0, sizeof(chosen));
	for (i = 0; i < nslots; i++) {
		if (u->slot_id >= 0 && slots[i] != (CK_SLOT_ID)u->slot_id)
			continue;
		if (h->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!p11uri_field_matches(u->token, ti.label, sizeof(ti.label)) ||
		    !p11uri_field_matches(u->manufacturer, ti.manufacturerID,
			sizeof(ti.manufacturerID)) ||
		    !p11uri_field_matches(u->serial, ti.serialNumber, sizeof(ti.serialNumber)) ||
		    !p11uri_field_matches(u->model, ti.model, sizeof(ti.model)))
			continue;
		if (nmatch++ == 0) {
			h->slot = slots[i];
			chosen = ti;
		}
	}
	if (nmatch == 0) {
		ret = BS_ERR_NOT_FOUND;
		set_err(err, "module %s: no initialised token matches %s", h->module, uri);
		goto out;
	}
	if (nmatch > 1) {
		ret = BS_ERR_INVALID;
		set_err(err, "module %s: %lu tokens match %s; add serial= to the URI", h->module,
		    (unsigned long)nmatch, uri);
		goto out;
	}
	{
		char man[33], model[17], serial[17];

		copy_field(h->label, sizeof(h->label), chosen.label, sizeof(chosen.label));
		copy_field(man, sizeof(man), chosen.manufacturerID, sizeof(chosen.manufacturerID));
		copy_field(model, sizeof(model), chosen.model, sizeof(chosen.model));
		copy_field(serial, sizeof(serial), chosen.serialNumber,
		    sizeof(chosen.serialNumber));
		snprintf(h->desc, sizeof(h->desc), "%s (%s %s, %s)", h->label, man, model, serial);
	}
	ret = 0;
out:
	free(slots);
	return ret;
}

int
hsm_open(const char *module, const char *token_uri, const uint8_t *pin, size_t pin_len,
    struct hsm **out, char err[HSM_ERR_LEN])
{
	struct hsm *h = NULL;
	struct p11uri u;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	set_err(err, "%s", "");
	if (module == NULL || module[0] == '\0' || token_uri == NULL || out == NULL ||
	    (pin == NULL && pin_len > 0)) {
		set_err(err, "hsm_open: missing module, token URI or output");
		goto out;
	}
	if (pin_len == 0) {
		set_err(err, "hsm_open: empty PIN");
		goto out;
	}
	/* The URI is not echoed: a rejected one may carry a pin-value query. */
	if (p11uri_parse(token_uri, &u) != 0) {
		set_err(err, "invalid PKCS#11 token URI (expected pkcs11:token=LABEL;..., "
		    "without query attributes such as pin-value)");
		goto out;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		ret = BS_ERR_NOMEM;
		set_err(err, "out of memory");
		goto out;
	}
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h);
		h = NULL;
		ret = BS_ERR_INTERNAL;
		set_err(err, "pthread_mutex_init failed");
		goto out;
	}
	snprintf(h->module, sizeof(h->module), "%s", module);

	if ((ret = load_module(h, module, err)) != 0)
		goto out;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = h->fl->C_Initialize(&args);
	if (rv != CKR_OK) {
		ret = BS_ERR_HSM;
		set_err(err, "module %s: C_Initialize: %s", h->module, hsm_rv_name(rv));
		goto out;
	}
	h->initialized = 1;

	if ((ret = select_slot(h, &u, token_uri, err)) != 0)
		goto out;

	rv = h->fl->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &h->login_session);
	if (rv != CKR_OK) {
		ret = BS_ERR_HSM;
		set_err(err, "module %s, token %s: C_OpenSession: %s", h->module, h->label,
		    hsm_rv_name(rv));
		goto out;
	}
	h->have_login_session = 1;

	rv = h->fl->C_Login(h->login_session, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin,
	    (CK_ULONG)pin_len);
	if (rv == CKR_USER_ALREADY_LOGGED_IN) {
		/*
		 * Another struct hsm of this process holds the login, and the
		 * token did not check this PIN: refuse rather than accept an
		 * unverified PIN (one struct hsm per process).
		 */
		ret = BS_ERR_HSM;
		set_err(err, "module %s, token %s: C_Login: %s (token already opened by this "
		    "process)", h->module, h->label, hsm_rv_name(rv));
		goto out;
	}
	if (rv != CKR_OK) {
		ret = BS_ERR_HSM;
		set_err(err, "module %s, token %s: C_Login: %s", h->module, h->label,
		    hsm_rv_name(rv));
		goto out;
	}
	h->logged_in = 1;
	*out = h;
	h = NULL;
	ret = 0;
out:
	if (h != NULL)
		hsm_close(h);
	return ret;
}

void
hsm_close(struct hsm *h)
{
	struct hsm_session *s, *next;

	if (h == NULL)
		return;
	if (h->fl != NULL) {
		pthread_mutex_lock(&h->lock);
		for (s = h->sessions; s != NULL; s = next) {
			next = s->next;
			(void)h->fl->C_CloseSession(s->sh);
			free(s);
		}
		h->sessions = NULL;
		pthread_mutex_unlock(&h->lock);
		if (h->have_login_session) {
			/* The login is per token and process: only undo our own. */
			if (h->logged_in)
				(void)h->fl->C_Logout(h->login_session);
			(void)h->fl->C_CloseSession(h->login_session);
		}
		hsm_unload(h);
	}
	pthread_mutex_destroy(&h->lock);
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
}

const char *
hsm_token_desc(const struct hsm *h)
{
	return h != NULL ? h->desc : "";
}

int
hsm_session_open(struct hsm *h, struct hsm_session **out)
{
	struct hsm_session *s = NULL;
	CK_SESSION_INFO info;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (h == NULL || out == NULL)
		goto out;
	ret = BS_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->h = h;
	ret = BS_ERR_HSM;
	rv = h->fl->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &s->sh);
	if (rv != CKR_OK)
		goto out;
	/* The login on the first session covers this one. */
	rv = h->fl->C_GetSessionInfo(s->sh, &info);
	if (rv != CKR_OK || info.state != CKS_RW_USER_FUNCTIONS) {
		(void)h->fl->C_CloseSession(s->sh);
		goto out;
	}
	pthread_mutex_lock(&h->lock);
	s->next = h->sessions;
	if (h->sessions != NULL)
		h->sessions->prev = s;
	h->sessions = s;
	pthread_mutex_unlock(&h->lock);
	*out = s;
	s = NULL;
	ret = 0;
out:
	free(s);
	return ret;
}

void
hsm_session_close(struct hsm_session *s)
{
	struct hsm *h;

	if (s == NULL)
		return;
	h = s->h;
	pthread_mutex_lock(&h->lock);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		h->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&h->lock);
	(void)h->fl->C_CloseSession(s->sh);
	free(s);
}

int
hsm_session_alive(struct hsm_session *s)
{
	CK_SESSION_INFO info;
	CK_RV rv;

	if (s == NULL)
		return 0;
	rv = s->h->fl->C_GetSessionInfo(s->sh, &info);
	if (rv != CKR_OK) {
		s->last_rv = rv;
		return 0;
	}
	if (info.state != CKS_RW_USER_FUNCTIONS) {
		s->last_rv = CKR_USER_NOT_LOGGED_IN;
		return 0;
	}
	return 1;
}

unsigned long
hsm_session_last_rv(const struct hsm_session *s)
{
	return s != NULL ? s->last_rv : CKR_OK;
}

/*
 * Collects up to max handles of objects matching tmpl (all of them if there
 * are fewer). *handles_out is malloc'd. Returns 0 or BS_ERR_*.
 */
static int
find_objects(struct hsm_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, size_t max,
    CK_OBJECT_HANDLE **handles_out, size_t *n_out)
{
	CK_FUNCTION_LIST *fl = s->h->fl;
	CK_OBJECT_HANDLE *v = NULL, batch[HSM_FIND_BATCH];
	size_t n = 0, cap = 0;
	CK_ULONG got, i;
	CK_RV rv;
	int ret, active = 0;

	rv = fl->C_FindObjectsInit(s->sh, tmpl, ntmpl);
	if (rv == CKR_OPERATION_ACTIVE && session_reset(s) == 0)
		rv = fl->C_FindObjectsInit(s->sh, tmpl, ntmpl);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		goto out;
	}
	active = 1;
	for (;;) {
		rv = fl->C_FindObjects(s->sh, batch, HSM_FIND_BATCH, &got);
		if (rv != CKR_OK) {
			ret = fail_rv(s, rv);
			goto out;
		}
		if (got == 0)
			break;
		if (got > HSM_FIND_BATCH) {
			ret = fail_rv(s, CKR_GENERAL_ERROR);
			goto out;
		}
		if (n + got > max) {
			ret = BS_ERR_TOO_BIG;
			goto out;
		}
		if (n + got > cap) {
			size_t ncap = cap == 0 ? HSM_FIND_BATCH : cap * 2;
			CK_OBJECT_HANDLE *nv;

			while (ncap < n + got)
				ncap *= 2;
			if ((nv = realloc(v, ncap * sizeof(*v))) == NULL) {
				ret = BS_ERR_NOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		for (i = 0; i < got; i++)
			v[n++] = batch[i];
	}
	active = 0;
	rv = fl->C_FindObjectsFinal(s->sh);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		goto out;
	}
	*handles_out = v;
	*n_out = n;
	v = NULL;
	ret = 0;
out:
	if (active)
		(void)fl->C_FindObjectsFinal(s->sh);
	free(v);
	return ret;
}

/* Reads a variable-length attribute into a malloc'd buffer (at most max bytes). */
static int
get_attr_alloc(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    size_t max, uint8_t **buf_out, size_t *len_out)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *buf = NULL;
	CK_RV rv;
	int ret;

	rv = s->h->fl->C_GetAttributeValue(s->sh, obj, &a, 1);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		goto out;
	}
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max) {
		ret = BS_ERR_TOO_BIG;
		goto out;
	}
	if ((buf = malloc(a.ulValueLen > 0 ? a.ulValueLen : 1)) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	a.pValue = buf;
	rv = s->h->fl->C_GetAttributeValue(s->sh, obj, &a, 1);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		goto out;
	}
	*buf_out = buf;
	*len_out = a.ulValueLen;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	return ret;
}

/*
 * Returns the EC point inside CKA_EC_POINT: DER OCTET STRING (the
 * standard) or, from some modules, the raw point. want is the point length.
 */
static int
unwrap_ec_point(const uint8_t *v, size_t len, size_t want, const uint8_t **pt_out)
{
	if (want < 0x80 && len == want + 2 && v[0] == 0x04 && v[1] == want) {
		*pt_out = v + 2;
		return 0;
	}
	if (len == want) {
		*pt_out = v;
		return 0;
	}
	return BS_ERR_INVALID;
}

static int
pkey_to_spki(EVP_PKEY *pkey, uint8_t **spki_out, size_t *spki_len_out)
{
	uint8_t *der = NULL, *p;
	int n, ret;

	n = i2d_PUBKEY(pkey, NULL);
	if (n <= 0) {
		ret = BS_ERR_CRYPTO;
		goto out;
	}
	if ((der = malloc((size_t)n)) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(pkey, &p) != n) {
		ret = BS_ERR_CRYPTO;
		goto out;
	}
	*spki_out = der;
	*spki_len_out = (size_t)n;
	der = NULL;
	ret = 0;
out:
	free(der);
	return ret;
}

static int
spki_ec_p256(const uint8_t *pt, size_t pt_len, uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	char group[] = "prime256v1";
	OSSL_PARAM params[3];
	int ret = BS_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    (void *)(uintptr_t)pt, pt_len);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* The point must lie on the curve. */
	if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(chk) != 1) {
		ret = BS_ERR_INVALID;
		goto out;
	}
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ret;
}

static int
spki_ed25519(const uint8_t *pt, size_t pt_len, uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY *pkey;
	int ret;

	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, pt_len);
	if (pkey == NULL)
		return BS_ERR_CRYPTO;
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
	EVP_PKEY_free(pkey);
	return ret;
}

static int
spki_rsa(const uint8_t *n_be, size_t n_len, const uint8_t *e_be, size_t e_len,
    uint8_t **spki_out, size_t *spki_len_out)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int ret = BS_ERR_CRYPTO;

	if ((n = BN_bin2bn(n_be, (int)n_len, NULL)) == NULL ||
	    (e = BN_bin2bn(e_be, (int)e_len, NULL)) == NULL)
		goto out;
	if (BN_num_bits(n) != HSM_RSA_BITS || !BN_is_word(e, 65537)) {
		ret = BS_ERR_INVALID;
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	ret = pkey_to_spki(pkey, spki_out, spki_len_out);
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return ret;
}

/* Builds the DER SubjectPublicKeyInfo of the public key object pub. */
static int
read_spki(struct hsm_session *s, CK_OBJECT_HANDLE pub, enum bs_alg alg, uint8_t **spki_out,
    size_t *spki_len_out)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	const uint8_t *pt;
	int ret;

	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		if ((ret = get_attr_alloc(s, pub, CKA_EC_POINT, HSM_ATTR_MAX, &a, &alen)) != 0)
			goto out;
		if ((ret = unwrap_ec_point(a, alen, 65, &pt)) != 0)
			goto out;
		ret = spki_ec_p256(pt, 65, spki_out, spki_len_out);
		break;
	case BS_ALG_ED25519:
		if ((ret = get_attr_alloc(s, pub, CKA_EC_POINT, HSM_ATTR_MAX, &a, &alen)) != 0)
			goto out;
		if ((ret = unwrap_ec_point(a, alen, 32, &pt)) != 0)
			goto out;
		ret = spki_ed25519(pt, 32, spki_out, spki_len_out);
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		if ((ret = get_attr_alloc(s, pub, CKA_MODULUS, HSM_ATTR_MAX, &a, &alen)) != 0 ||
		    (ret = get_attr_alloc(s, pub, CKA_PUBLIC_EXPONENT, 16, &b, &blen)) != 0)
			goto out;
		ret = spki_rsa(a, alen, b, blen, spki_out, spki_len_out);
		break;
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		break;
	}
out:
	free(a);
	free(b);
	return ret;
}

/* Reads the four boolean protection attributes of a new private key. */
static int
check_private_flags(struct hsm_session *s, CK_OBJECT_HANDLE priv)
{
	CK_BBOOL always = CK_FALSE, never = CK_FALSE, sens = CK_FALSE, extr = CK_TRUE;
	CK_ATTRIBUTE a[] = {
		{ CKA_ALWAYS_SENSITIVE, &always, sizeof(always) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
	};
	CK_RV rv;

	rv = s->h->fl->C_GetAttributeValue(s->sh, priv, a, sizeof(a) / sizeof(a[0]));
	if (rv != CKR_OK)
		return fail_rv(s, rv);
	if (always != CK_TRUE || never != CK_TRUE || sens != CK_TRUE || extr != CK_FALSE)
		return fail_rv(s, CKR_TEMPLATE_INCONSISTENT);
	return 0;
}

int
hsm_generate_keypair(struct hsm_session *s, enum bs_alg alg, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, hsm_handle *priv_out, uint8_t **spki_out, size_t *spki_len_out)
{
	CK_FUNCTION_LIST *fl;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = HSM_RSA_BITS;
	CK_BYTE ec_params[sizeof(oid_p256)], exponent[sizeof(rsa_e65537)];
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE, *found = NULL;
	CK_ATTRIBUTE pub_t[10], priv_t[12], id_t[1];
	CK_ULONG npub = 0, npriv = 0;
	size_t label_len, nfound = 0;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (s == NULL || id == NULL || label == NULL || priv_out == NULL || spki_out == NULL ||
	    spki_len_out == NULL)
		goto out;
	s->last_rv = CKR_OK;
	fl = s->h->fl;
	label_len = strnlen(label, HSM_LABEL_MAX + 1);
	if (label_len == 0 || label_len > HSM_LABEL_MAX)
		goto out;
	memcpy(idbuf, id, HSM_KEY_ID_LEN);

	/* Refuse to create a second object with the same CKA_ID. */
	id_t[0] = (CK_ATTRIBUTE){ CKA_ID, idbuf, HSM_KEY_ID_LEN };
	ret = find_objects(s, id_t, 1, HSM_FIND_BATCH, &found, &nfound);
	if (ret == BS_ERR_TOO_BIG || (ret == 0 && nfound != 0)) {
		ret = BS_ERR_EXISTS;
		goto out;
	}
	if (ret != 0)
		goto out;

#define ADD(t, n, type, ptr, len) ((t)[(n)++] = (CK_ATTRIBUTE){ (type), (ptr), (len) })
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		memcpy(ec_params, oid_p256, sizeof(oid_p256));
		ADD(pub_t, npub, CKA_EC_PARAMS, ec_params, sizeof(oid_p256));
		break;
	case BS_ALG_ED25519:
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		memcpy(ec_params, oid_ed25519, sizeof(oid_ed25519));
		ADD(pub_t, npub, CKA_EC_PARAMS, ec_params, sizeof(oid_ed25519));
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		memcpy(exponent, rsa_e65537, sizeof(rsa_e65537));
		ADD(pub_t, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ADD(pub_t, npub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
		break;
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		goto out;
	}
	ADD(pub_t, npub, CKA_TOKEN, &yes, sizeof(yes));
	ADD(pub_t, npub, CKA_VERIFY, &yes, sizeof(yes));
	ADD(pub_t, npub, CKA_ENCRYPT, &no, sizeof(no));
	ADD(pub_t, npub, CKA_WRAP, &no, sizeof(no));
	ADD(pub_t, npub, CKA_DERIVE, &no, sizeof(no));
	ADD(pub_t, npub, CKA_ID, idbuf, HSM_KEY_ID_LEN);
	ADD(pub_t, npub, CKA_LABEL, (void *)(uintptr_t)label, label_len);

	ADD(priv_t, npriv, CKA_TOKEN, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_PRIVATE, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_SIGN, &yes, sizeof(yes));
	ADD(priv_t, npriv, CKA_DECRYPT, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_UNWRAP, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_DERIVE, &no, sizeof(no));
	ADD(priv_t, npriv, CKA_ID, idbuf, HSM_KEY_ID_LEN);
	ADD(priv_t, npriv, CKA_LABEL, (void *)(uintptr_t)label, label_len);
#undef ADD

	rv = fl->C_GenerateKeyPair(s->sh, &mech, pub_t, npub, priv_t, npriv, &pub, &priv);
	if (rv != CKR_OK) {
		pub = priv = CK_INVALID_HANDLE;
		ret = fail_rv(s, rv);
		goto out;
	}
	if ((ret = check_private_flags(s, priv)) != 0)
		goto out;
	if ((ret = read_spki(s, pub, alg, &spki, &spki_len)) != 0)
		goto out;

	*priv_out = priv;
	*spki_out = spki;
	*spki_len_out = spki_len;
	spki = NULL;
	pub = priv = CK_INVALID_HANDLE;  /* kept on the token */
	ret = 0;
out:
	if (priv != CK_INVALID_HANDLE)
		(void)destroy_object(s, priv);
	if (pub != CK_INVALID_HANDLE)
		(void)destroy_object(s, pub);
	free(found);
	free(spki);
	return ret;
}

/* The one private key matching attr (BS_ERR_NOT_FOUND if none, BS_ERR_HSM if several). */
static int
find_one_private_key(struct hsm_session *s, CK_ATTRIBUTE *attr, hsm_handle *out)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2];
	CK_OBJECT_HANDLE *v = NULL;
	size_t n = 0;
	int ret;

	s->last_rv = CKR_OK;
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	t[1] = *attr;
	ret = find_objects(s, t, 2, 2, &v, &n);
	if (ret == BS_ERR_TOO_BIG)
		ret = BS_ERR_HSM;  /* more than one key matches */
	if (ret != 0)
		goto out;
	if (n == 0) {
		ret = BS_ERR_NOT_FOUND;
		goto out;
	}
	if (n != 1) {
		ret = BS_ERR_HSM;
		goto out;
	}
	*out = v[0];
	ret = 0;
out:
	free(v);
	return ret;
}

int
hsm_find_private_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN], hsm_handle *out)
{
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE a;

	if (s == NULL || id == NULL || out == NULL)
		return BS_ERR_INVALID;
	memcpy(idbuf, id, sizeof(idbuf));
	a = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	return find_one_private_key(s, &a, out);
}

int
hsm_find_private_key_by_label(struct hsm_session *s, const char *label, hsm_handle *out,
    uint8_t id[HSM_KEY_ID_LEN])
{
	uint8_t *idv = NULL;
	size_t idlen = 0;
	hsm_handle h;
	CK_ATTRIBUTE a;
	int ret;

	if (s == NULL || label == NULL || out == NULL || id == NULL)
		return BS_ERR_INVALID;
	a = (CK_ATTRIBUTE){ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) };
	if ((ret = find_one_private_key(s, &a, &h)) != 0)
		return ret;
	if ((ret = get_attr_alloc(s, h, CKA_ID, HSM_ATTR_MAX, &idv, &idlen)) != 0)
		return ret;
	if (idlen != HSM_KEY_ID_LEN) {
		free(idv);
		return BS_ERR_HSM;   /* not one of ours */
	}
	memcpy(id, idv, HSM_KEY_ID_LEN);
	free(idv);
	*out = h;
	return 0;
}

int
hsm_list_private_key_ids(struct hsm_session *s, const char *label_prefix, uint8_t **ids_out,
    size_t *n_out)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[1];
	CK_OBJECT_HANDLE *v = NULL;
	uint8_t *ids = NULL, *label = NULL, *id = NULL;
	size_t n = 0, i, nids = 0, plen, llen, idlen;
	int ret;

	if (s == NULL || label_prefix == NULL || ids_out == NULL || n_out == NULL)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	plen = strlen(label_prefix);
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if ((ret = find_objects(s, t, 1, HSM_LIST_MAX, &v, &n)) != 0)
		goto out;
	if ((ids = malloc(n > 0 ? n * HSM_KEY_ID_LEN : 1)) == NULL) {
		ret = BS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		free(label);
		free(id);
		label = id = NULL;
		if ((ret = get_attr_alloc(s, v[i], CKA_LABEL, HSM_ATTR_MAX, &label, &llen)) != 0 ||
		    (ret = get_attr_alloc(s, v[i], CKA_ID, HSM_ATTR_MAX, &id, &idlen)) != 0)
			goto out;
		if (llen < plen || memcmp(label, label_prefix, plen) != 0)
			continue;
		if (idlen != HSM_KEY_ID_LEN)
			continue;  /* not one of ours */
		memcpy(ids + nids * HSM_KEY_ID_LEN, id, HSM_KEY_ID_LEN);
		nids++;
	}
	*ids_out = ids;
	*n_out = nids;
	ids = NULL;
	ret = 0;
out:
	free(label);
	free(id);
	free(ids);
	free(v);
	return ret;
}

int
hsm_destroy_key(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN])
{
	CK_BYTE idbuf[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE t[1];
	CK_OBJECT_HANDLE *v = NULL;
	size_t n = 0, i, ndestroyed = 0;
	CK_RV rv;
	int ret;

	if (s == NULL || id == NULL)
		return BS_ERR_INVALID;
	s->last_rv = CKR_OK;
	memcpy(idbuf, id, sizeof(idbuf));
	t[0] = (CK_ATTRIBUTE){ CKA_ID, idbuf, sizeof(idbuf) };
	if ((ret = find_objects(s, t, 1, 64, &v, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		CK_OBJECT_CLASS cls = 0;
		CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof(cls) };

		rv = s->h->fl->C_GetAttributeValue(s->sh, v[i], &a, 1);
		if (rv != CKR_OK) {
			ret = fail_rv(s, rv);
			goto out;
		}
		if (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY)
			continue;
		rv = destroy_object(s, v[i]);
		if (rv != CKR_OK) {
			ret = fail_rv(s, rv);
			goto out;
		}
		ndestroyed++;
	}
	ret = ndestroyed > 0 ? 0 : BS_ERR_NOT_FOUND;
out:
	free(v);
	return ret;
}

int
hsm_sign(struct hsm_session *s, hsm_handle priv, enum bs_alg alg, const uint8_t *data,
    size_t data_len, uint8_t *sig, size_t *sig_len)
{
	CK_FUNCTION_LIST *fl;
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, HSM_DIGEST_LEN };
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_ULONG out_len = 0;
	uint8_t buf[HSM_SIG_MAX];
	size_t want = 0;  /* exact length for fixed-size signatures, else 0 */
	CK_KEY_TYPE ktype = 0, want_ktype = 0;
	CK_RV rv;
	int ret = BS_ERR_INVALID;

	if (s == NULL || data == NULL || sig == NULL || sig_len == NULL)
		goto out;
	s->last_rv = CKR_OK;
	fl = s->h->fl;
	switch (alg) {
	case BS_ALG_ECDSA_P256_SHA256:
		if (data_len != HSM_DIGEST_LEN)
			goto out;
		mech.mechanism = CKM_ECDSA;
		want_ktype = CKK_EC;
		want = HSM_P256_SIG_LEN;
		break;
	case BS_ALG_ED25519:
		if (data_len > HSM_SIGN_MAX_INPUT) {
			ret = BS_ERR_TOO_BIG;
			goto out;
		}
		mech.mechanism = CKM_EDDSA;
		want_ktype = CKK_EC_EDWARDS;
		want = HSM_ED25519_SIG_LEN;
		break;
	case BS_ALG_RSA_3072_PSS_SHA256:
		if (data_len != HSM_DIGEST_LEN)
			goto out;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		want_ktype = CKK_RSA;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		break;
	case BS_ALG_NONE:
	default:
		ret = BS_ERR_UNSUPPORTED;
		goto out;
	}
	if (want != 0 && *sig_len < want) {
		ret = BS_ERR_TOO_BIG;
		goto out;
	}

	/*
	 * The key must be a private key of the type alg names: SoftHSM 2.6.1
	 * crashes on CKM_RSA_PKCS_PSS with an EC key instead of refusing it.
	 */
	if ((ret = private_key_type(s, priv, &ktype)) != 0)
		goto out;
	if (ktype != want_ktype) {
		s->last_rv = CKR_KEY_TYPE_INCONSISTENT;
		ret = BS_ERR_INVALID;
		goto out;
	}

	rv = fl->C_SignInit(s->sh, &mech, priv);
	if (rv == CKR_OPERATION_ACTIVE && session_reset(s) == 0)
		rv = fl->C_SignInit(s->sh, &mech, priv);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		goto out;
	}
	/*
	 * One call into a buffer larger than any signature we make. Should the
	 * operation stay active (CKR_BUFFER_TOO_SMALL, or a module that does
	 * not end it on error), the session is replaced.
	 */
	out_len = sizeof(buf);
	rv = fl->C_Sign(s->sh, (CK_BYTE_PTR)(uintptr_t)data, (CK_ULONG)data_len, buf, &out_len);
	if (rv != CKR_OK) {
		ret = fail_rv(s, rv);
		(void)session_reset(s);
		goto out;
	}
	if (out_len == 0 || out_len > sizeof(buf) || (want != 0 && out_len != want)) {
		ret = fail_rv(s, CKR_SIGNATURE_LEN_RANGE);
		goto out;
	}
	if (out_len > *sig_len) {
		ret = BS_ERR_TOO_BIG;
		goto out;
	}
	memcpy(sig, buf, out_len);
	*sig_len = out_len;
	ret = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}
