/*
 * hsm_int.h - what the files of the HSM module share (not a public header):
 * the PKCS#11 names an older p11-kit header may lack, the limits, struct
 * hsm and struct hsm_session, and the internal helpers of module.c.
 */
#ifndef BS_HSM_INT_H
#define BS_HSM_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"

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
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x35UL
#endif
#ifndef CKR_FUNCTION_REJECTED
#define CKR_FUNCTION_REJECTED 0x200UL
#endif

#define HSM_MODULE_NAME_LEN 128
#define HSM_DESC_LEN 128
#define HSM_LABEL_MAX 128            /* CKA_LABEL bytes we accept */
#define HSM_ATTR_MAX 4096            /* largest public attribute we read */
#define HSM_LIST_MAX 1000000         /* objects hsm_list_key_objects walks */
#define HSM_SIGN_MAX_INPUT (16u << 20)
#define HSM_SIG_MAX 1024             /* RSA-8192; larger is a module bug */
#define HSM_DIGEST_LEN 32
#define HSM_P256_SIG_LEN 64
#define HSM_ED25519_SIG_LEN 64
#define HSM_RSA_BITS 3072
#define HSM_FIND_BATCH 64
#define HSM_SECRET_LEN 32           /* AES-256 and HMAC-SHA-256 keys */
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

/* Stores a failing return value on the session and maps it to BS_ERR_HSM. */
int hsm_fail_rv(struct hsm_session *s, CK_RV rv);
/* Replaces the session's PKCS#11 session with a fresh one (ends a stuck operation). */
int hsm_session_reset(struct hsm_session *s);
/* C_DestroyObject, and drops every session's key type cache. */
CK_RV hsm_destroy_object(struct hsm_session *s, CK_OBJECT_HANDLE obj);
/* Key type of the private or secret key obj (cached per session); BS_ERR_INVALID if neither. */
int hsm_key_type(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_KEY_TYPE *out);
/* CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE true and CKA_EXTRACTABLE false, or BS_ERR_HSM. */
int hsm_check_key_flags(struct hsm_session *s, CK_OBJECT_HANDLE key);
/* Objects matching tmpl, at most max (BS_ERR_TOO_BIG beyond); *handles_out malloc'd. */
int hsm_find_objects(struct hsm_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, size_t max,
    CK_OBJECT_HANDLE **handles_out, size_t *n_out);
/* A variable-length attribute into a malloc'd buffer (at most max bytes). */
int hsm_get_attr_alloc(struct hsm_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    size_t max, uint8_t **out, size_t *len_out);

#endif
