/*
 * module.c - the PKCS#11 token behind boltseal: module and sessions.
 *
 * Loads the module through p11-kit (by absolute path, or by the name it is
 * registered under), initialises it with CKF_OS_LOCKING_OK (SoftHSM turns
 * its own locks off when given NULL arguments), picks the single token that
 * matches a PKCS#11 URI and logs in once, on a first session that stays open
 * for the life of struct hsm so that every later session is logged in too.
 *
 * The key operations live beside it: keygen.c (generate, find, list,
 * destroy) and sign.c; hsm_int.h holds what they share.
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

#include <openssl/crypto.h>

#include "hsm/hsm_int.h"
#include "hsm/p11uri.h"

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
int
hsm_fail_rv(struct hsm_session *s, CK_RV rv)
{
	s->last_rv = rv;
	return BS_ERR_HSM;
}

/*
 * Replaces the session's PKCS#11 session with a fresh one (the token stays
 * logged in through the first session): the only portable way to end an
 * operation a module left active. Object handles stay valid.
 */
int
hsm_session_reset(struct hsm_session *s)
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

CK_RV
hsm_destroy_object(struct hsm_session *s, CK_OBJECT_HANDLE obj)
{
	CK_RV rv = s->h->fl->C_DestroyObject(s->sh, obj);

	atomic_fetch_add(&s->h->destroy_gen, 1);
	return rv;
}

/*
 * Key type of the private or secret key obj: from the session cache, else
 * read from the token (and cached). A handle that is neither is
 * BS_ERR_INVALID with CKR_KEY_TYPE_INCONSISTENT.
 */
int
hsm_key_type(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_KEY_TYPE *out)
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
		return hsm_fail_rv(s, rv);
	if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) {
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
int
hsm_find_objects(struct hsm_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, size_t max,
    CK_OBJECT_HANDLE **handles_out, size_t *n_out)
{
	CK_FUNCTION_LIST *fl = s->h->fl;
	CK_OBJECT_HANDLE *v = NULL, batch[HSM_FIND_BATCH];
	size_t n = 0, cap = 0;
	CK_ULONG got, i;
	CK_RV rv;
	int ret, active = 0;

	rv = fl->C_FindObjectsInit(s->sh, tmpl, ntmpl);
	if (rv == CKR_OPERATION_ACTIVE && hsm_session_reset(s) == 0)
		rv = fl->C_FindObjectsInit(s->sh, tmpl, ntmpl);
	if (rv != CKR_OK) {
		ret = hsm_fail_rv(s, rv);
		goto out;
	}
	active = 1;
	for (;;) {
		rv = fl->C_FindObjects(s->sh, batch, HSM_FIND_BATCH, &got);
		if (rv != CKR_OK) {
			ret = hsm_fail_rv(s, rv);
			goto out;
		}
		if (got == 0)
			break;
		if (got > HSM_FIND_BATCH) {
			ret = hsm_fail_rv(s, CKR_GENERAL_ERROR);
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
		ret = hsm_fail_rv(s, rv);
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
int
hsm_get_attr_alloc(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    size_t max, uint8_t **buf_out, size_t *len_out)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *buf = NULL;
	CK_RV rv;
	int ret;

	rv = s->h->fl->C_GetAttributeValue(s->sh, obj, &a, 1);
	if (rv != CKR_OK) {
		ret = hsm_fail_rv(s, rv);
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
		ret = hsm_fail_rv(s, rv);
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
