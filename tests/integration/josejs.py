# josejs.py - helpers of boltseal's second independent check of command
# tokens: panva/jose (npm, tests/interop/jose, pinned in its
# package-lock.json, installed there by scripts/lib/npm.sh's bs_npm_ci)
# verifying what CommandService/SignCommand returns.
#
#   available()   -> (bool, reason): node on PATH and jose installed
#   verify(pem, alg, token, audience=None, issuer=None, subject=None,
#          current_date=None, timeout=30)
#                 -> the one JSON object verify.mjs printed:
#     {"ok": true, "header": {...}, "payload": {...}}
#     {"ok": false, "error": "<code>: <message>"}
#   pem is the public key's SubjectPublicKeyInfo PEM (str or bytes), alg
#   "ES256" or "EdDSA", current_date seconds since the epoch (default: the
#   clock). <code> is jose's error code (ERR_JWS_SIGNATURE_VERIFICATION_FAILED,
#   ERR_JWT_CLAIM_VALIDATION_FAILED, ERR_JWT_EXPIRED, ...); an overall
#   time-out of verify.mjs reads "TimeoutError: ...".
#   decrypt(pem, jwe, timeout=30)
#                 -> the one JSON object decrypt.mjs printed (its compactDecrypt
#                    of a JWE, with ECDH-ES+A256KW and A256GCM only):
#     {"ok": true, "header": {...}, "plaintext_hex": "..."}
#     {"ok": false, "error": "<code>: <message>"}
#   pem is the recipient's private key as a PKCS#8 PEM (str or bytes);
#   <code> e.g. ERR_JWE_DECRYPTION_FAILED. decrypter_available() is
#   available() for decrypt.mjs.
#
# Not a test module. Runs under Debian's /usr/bin/python3 (standard library
# only).

import json
import os
import shutil
import tempfile

import nodejson

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("BS_SRCDIR") or os.path.join(HERE, "..", ".."))
VERIFIER_DIR = os.path.join(SRCDIR, "tests", "interop", "jose")
VERIFIER = os.path.join(VERIFIER_DIR, "verify.mjs")
DECRYPTER = os.path.join(VERIFIER_DIR, "decrypt.mjs")


def available():
    """(True, "") when node is on PATH and jose is installed in
    VERIFIER_DIR/node_modules, else (False, why)."""
    if shutil.which("node") is None:
        return False, "node is not on PATH"
    if not os.path.isfile(VERIFIER):
        return False, "no %s" % VERIFIER
    if not os.path.isfile(os.path.join(VERIFIER_DIR, "node_modules", "jose", "package.json")):
        return False, ("jose is not installed in %s/node_modules "
                       "(scripts/lib/npm.sh: bs_npm_ci %s)" % (VERIFIER_DIR, VERIFIER_DIR))
    return True, ""


def version():
    """The installed jose's version string (None if unreadable)."""
    try:
        with open(os.path.join(VERIFIER_DIR, "node_modules", "jose", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def verify(pem, alg, token, audience=None, issuer=None, subject=None, current_date=None,
           timeout=30):
    """Runs verify.mjs once and returns the JSON object it printed. Raises
    RuntimeError when its output is not one JSON object agreeing with its
    exit code, subprocess.TimeoutExpired after timeout seconds."""
    if isinstance(pem, str):
        pem = pem.encode()
    with tempfile.TemporaryDirectory(prefix="bs-jose-") as tmp:
        keyfile = os.path.join(tmp, "pub.pem")
        with open(keyfile, "wb") as f:
            f.write(pem)
        argv = ["node", VERIFIER, "--key", keyfile, "--alg", alg, "--token", token]
        for opt, val in (("--audience", audience), ("--issuer", issuer),
                         ("--subject", subject)):
            if val is not None:
                argv += [opt, val]
        if current_date is not None:
            argv += ["--current-date", str(int(current_date))]
        # verify.mjs's own limit goes off first, so that a hang still ends
        # in a JSON answer; this one bounds node itself.
        argv += ["--timeout", str(max(1, min(20, timeout - 5)))]
        return nodejson.run("jose verifier", argv, VERIFIER_DIR, timeout)


def decrypter_available():
    """available(), and decrypt.mjs is there."""
    ok, why = available()
    if ok and not os.path.isfile(DECRYPTER):
        return False, "no %s" % DECRYPTER
    return ok, why


def decrypt(pem, jwe, timeout=30):
    """Runs decrypt.mjs once on the compact JWE with the PKCS#8 PEM private
    key and returns the JSON object it printed. Raises RuntimeError when its
    output is not one JSON object agreeing with its exit code,
    subprocess.TimeoutExpired after timeout seconds."""
    if isinstance(pem, str):
        pem = pem.encode()
    with tempfile.TemporaryDirectory(prefix="bs-jose-") as tmp:
        keyfile = os.path.join(tmp, "priv.pem")
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        argv = ["node", DECRYPTER, "--key", keyfile, "--jwe", jwe,
                "--timeout", str(max(1, min(20, timeout - 5)))]
        return nodejson.run("jose decrypter", argv, VERIFIER_DIR, timeout)
