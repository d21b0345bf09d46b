#!/usr/bin/python3
# p11probe.py - an independent PKCS#11 client (PyKCS11) used by the
# integration tests as a separate process on the daemon's SoftHSM token
# (SOFTHSM2_CONF from the environment). The user PIN is read from a file whose
# path is given; it never appears on argv.
#
#   p11probe.py inspect MODULE TOKEN_LABEL PIN_FILE LABEL_PREFIX
#       JSON on stdout: for every private key whose CKA_LABEL starts with
#       LABEL_PREFIX, its attributes, the CK_RV of reading each secret
#       component, and the CK_RV of C_WrapKey with a fresh AES key
#       (CKM_AES_KEY_WRAP_PAD); plus a control: the same wrap of an
#       extractable session key, which must succeed.
#       Under "secret_keys", the same for every secret key (CKO_SECRET_KEY:
#       the envelope KEKs and HMAC keys) whose CKA_LABEL starts with
#       LABEL_PREFIX: its key type (AES, GENERIC_SECRET, ...), CKA_VALUE_LEN,
#       its boolean attributes (SECRET_BOOL_ATTRS), the CK_RV of reading
#       CKA_VALUE, the CK_RV of C_WrapKey with the fresh AES key, and for
#       AES keys the CK_RV of C_SignInit with CKM_SHA256_HMAC and with
#       CKM_AES_CMAC. Under "secret_controls", the same operations on
#       extractable, non-sensitive session keys allowed to sign (a generic
#       secret and an AES key), which must succeed: a refusal above is about
#       the key's attributes, not the mechanism or the probe.
#   p11probe.py delete MODULE TOKEN_LABEL PIN_FILE LABEL
#       destroys the private key object(s) with exactly CKA_LABEL = LABEL;
#       prints the number destroyed.

import json
import sys

import PyKCS11
from PyKCS11 import LowLevel

P256_OID = bytes.fromhex("06082a8648ce3d030107")

SECRET_ATTRS = {
    PyKCS11.CKK_EC: ["CKA_VALUE"],
    PyKCS11.CKK_RSA: ["CKA_PRIVATE_EXPONENT", "CKA_PRIME_1", "CKA_PRIME_2",
                      "CKA_EXPONENT_1", "CKA_EXPONENT_2", "CKA_COEFFICIENT"],
}
CKK_EC_EDWARDS = getattr(PyKCS11, "CKK_EC_EDWARDS", 0x40)
SECRET_ATTRS[CKK_EC_EDWARDS] = ["CKA_VALUE"]
KEY_TYPES = {PyKCS11.CKK_EC: "EC", PyKCS11.CKK_RSA: "RSA", CKK_EC_EDWARDS: "EC_EDWARDS"}
BOOL_ATTRS = ["CKA_TOKEN", "CKA_PRIVATE", "CKA_SENSITIVE", "CKA_ALWAYS_SENSITIVE",
              "CKA_NEVER_EXTRACTABLE", "CKA_EXTRACTABLE", "CKA_SIGN"]
SECRET_KEY_TYPES = {PyKCS11.CKK_AES: "AES", PyKCS11.CKK_GENERIC_SECRET: "GENERIC_SECRET",
                    getattr(PyKCS11, "CKK_SHA256_HMAC", 0x2b): "SHA256_HMAC"}
SECRET_BOOL_ATTRS = ["CKA_TOKEN", "CKA_PRIVATE", "CKA_SENSITIVE", "CKA_ALWAYS_SENSITIVE",
                     "CKA_NEVER_EXTRACTABLE", "CKA_EXTRACTABLE", "CKA_ENCRYPT", "CKA_DECRYPT",
                     "CKA_SIGN", "CKA_VERIFY", "CKA_WRAP", "CKA_UNWRAP", "CKA_DERIVE"]
# C_SignInit mechanisms tried on AES keys (which must be encrypt/decrypt only)
AES_SIGN_MECHS = ["CKM_SHA256_HMAC", "CKM_AES_CMAC"]


def rv_name(rv):
    return PyKCS11.CKR.get(rv, "0x%x" % rv) if isinstance(rv, int) else str(rv)


def open_session(module, label, pin_file):
    with open(pin_file) as f:
        pin = f.read()
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slots = [s for s in lib.getSlotList(tokenPresent=True)
             if lib.getTokenInfo(s).label.strip(" \0") == label]
    if len(slots) != 1:
        sys.exit("p11probe: %d tokens labelled %r" % (len(slots), label))
    s = lib.openSession(slots[0], PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    s.login(pin)
    return lib, s


def private_keys(s, prefix):
    out = []
    for o in s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]):
        lab = s.getAttributeValue(o, [PyKCS11.CKA_LABEL])[0]
        lab = lab if isinstance(lab, str) else bytes(lab).decode(errors="replace")
        if lab.startswith(prefix):
            out.append((o, lab))
    return out


def secret_keys(s, prefix):
    out = []
    for o in s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY)]):
        lab = s.getAttributeValue(o, [PyKCS11.CKA_LABEL])[0]
        lab = lab if isinstance(lab, str) else bytes(lab).decode(errors="replace")
        if lab.startswith(prefix):
            out.append((o, lab))
    return out


def read_rv(s, obj, attr_name):
    """CK_RV of C_GetAttributeValue for one attribute (length query)."""
    tmpl = LowLevel.ckattrlist(1)
    tmpl[0].SetType(getattr(PyKCS11, attr_name))
    return rv_name(s.lib.C_GetAttributeValue(s.session, obj, tmpl))


def wrap_rv(s, wrapping, obj):
    try:
        blob = s.wrapKey(wrapping, obj, PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_WRAP_PAD, None))
        return "CKR_OK", len(blob)
    except PyKCS11.PyKCS11Error as e:
        return rv_name(e.value), 0


def sign_init_rv(s, obj, mech_name):
    """CK_RV of C_SignInit with mech_name on obj. If it was accepted, the
    operation is finished (C_Sign) so that the session stays usable."""
    m = PyKCS11.Mechanism(getattr(PyKCS11, mech_name), None).to_native()
    rv = s.lib.C_SignInit(s.session, m, obj)
    if rv == PyKCS11.CKR_OK:
        sig = PyKCS11.ckbytelist()
        data = PyKCS11.ckbytelist(b"p11probe")
        if s.lib.C_Sign(s.session, data, sig) == PyKCS11.CKR_OK and len(sig):
            s.lib.C_Sign(s.session, data, sig)
    return rv_name(rv)


def describe_secret(s, obj, label, wrapping):
    attrs = [getattr(PyKCS11, a) for a in SECRET_BOOL_ATTRS] + \
        [PyKCS11.CKA_KEY_TYPE, PyKCS11.CKA_ID, PyKCS11.CKA_VALUE_LEN]
    vals = s.getAttributeValue(obj, attrs)
    info = {"label": label}
    for name, v in zip(SECRET_BOOL_ATTRS, vals):
        info[name] = bool(v) if v is not None else None
    n = len(SECRET_BOOL_ATTRS)
    ktype = vals[n]
    info["key_type"] = SECRET_KEY_TYPES.get(ktype, str(ktype))
    info["id"] = bytes(vals[n + 1]).hex() if vals[n + 1] is not None else None
    info["value_len"] = vals[n + 2]
    info["value_read"] = read_rv(s, obj, "CKA_VALUE")
    info["wrap"] = wrap_rv(s, wrapping, obj)[0]
    if ktype == PyKCS11.CKK_AES:
        info["sign_init"] = {m: sign_init_rv(s, obj, m) for m in AES_SIGN_MECHS}
    return info


def secret_controls(s, wrapping):
    """The probe's operations on session keys that allow them (extractable,
    not sensitive, CKA_SIGN): each must come out CKR_OK."""
    common = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_VALUE_LEN, 32),
              (PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_SENSITIVE, False),
              (PyKCS11.CKA_EXTRACTABLE, True), (PyKCS11.CKA_SIGN, True),
              (PyKCS11.CKA_VERIFY, True)]
    gen = s.generateKey(common + [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_GENERIC_SECRET)],
                        PyKCS11.Mechanism(PyKCS11.CKM_GENERIC_SECRET_KEY_GEN, None))
    aes = s.generateKey(common + [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES)],
                        PyKCS11.MechanismAESGENERATEKEY)
    try:
        g_wrap, g_len = wrap_rv(s, wrapping, gen)
        return {"generic_read": read_rv(s, gen, "CKA_VALUE"),
                "generic_wrap": g_wrap, "generic_wrap_len": g_len,
                "generic_sign_init_hmac": sign_init_rv(s, gen, "CKM_SHA256_HMAC"),
                "aes_read": read_rv(s, aes, "CKA_VALUE"),
                "aes_wrap": wrap_rv(s, wrapping, aes)[0],
                "aes_sign_init_cmac": sign_init_rv(s, aes, "CKM_AES_CMAC")}
    finally:
        for o in (gen, aes):
            s.destroyObject(o)


def inspect(s, prefix):
    aes = s.generateKey([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
                         (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
                         (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, False),
                         (PyKCS11.CKA_WRAP, True), (PyKCS11.CKA_UNWRAP, True)],
                        PyKCS11.MechanismAESGENERATEKEY)
    keys = []
    for obj, label in private_keys(s, prefix):
        attrs = [getattr(PyKCS11, a) for a in BOOL_ATTRS + ["CKA_KEY_TYPE", "CKA_ID"]]
        vals = s.getAttributeValue(obj, attrs)
        info = {"label": label}
        for name, v in zip(BOOL_ATTRS, vals):
            info[name] = bool(v) if v is not None else None
        ktype = vals[len(BOOL_ATTRS)]
        info["key_type"] = KEY_TYPES.get(ktype, str(ktype))
        info["id"] = bytes(vals[len(BOOL_ATTRS) + 1]).hex()
        info["secret_reads"] = {a: read_rv(s, obj, a) for a in SECRET_ATTRS.get(ktype, [])}
        info["wrap"] = wrap_rv(s, aes, obj)[0]
        keys.append(info)
    # Control: an extractable, non-sensitive session key wraps fine, so a
    # refusal above is about the key's attributes, not the mechanism.
    pub, priv = s.generateKeyPair(
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
         (PyKCS11.CKA_EC_PARAMS, P256_OID), (PyKCS11.CKA_TOKEN, False),
         (PyKCS11.CKA_VERIFY, True)],
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
         (PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SIGN, True),
         (PyKCS11.CKA_SENSITIVE, False), (PyKCS11.CKA_EXTRACTABLE, True)],
        PyKCS11.MechanismECGENERATEKEYPAIR)
    ctl_rv, ctl_len = wrap_rv(s, aes, priv)
    ctl_read = read_rv(s, priv, "CKA_VALUE")
    secrets = [describe_secret(s, obj, label, aes) for obj, label in secret_keys(s, prefix)]
    controls = secret_controls(s, aes)
    for o in (pub, priv, aes):
        s.destroyObject(o)
    return {"keys": keys, "control_wrap": ctl_rv, "control_wrap_len": ctl_len,
            "control_read": ctl_read, "secret_keys": secrets, "secret_controls": controls}


def main(argv):
    if len(argv) != 6 or argv[1] not in ("inspect", "delete"):
        sys.exit(__doc__ if __doc__ else "usage: p11probe.py inspect|delete MODULE LABEL PINFILE ARG")
    cmd, module, token, pin_file, arg = argv[1:]
    lib, s = open_session(module, token, pin_file)
    try:
        if cmd == "inspect":
            print(json.dumps(inspect(s, arg)))
        else:
            n = 0
            for obj, label in private_keys(s, arg):
                if label == arg:
                    s.destroyObject(obj)
                    n += 1
            print(n)
    finally:
        s.logout()
        s.closeSession()


if __name__ == "__main__":
    main(sys.argv)
