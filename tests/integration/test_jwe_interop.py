# test_jwe_interop.py - boltseal's JWE (src/formats/jwe.c, through the
# tests/tools/jwe-encrypt tool) against an implementation nobody here wrote:
# Debian's python3-jwcrypto decrypts what we encrypt with ECDH-ES+A256KW and
# A256GCM (RFC 7516 compact serialization, RFC 7518 sections 4.6 and 5.3)
# to P-256 keys made with python3-cryptography, given as PEM and as DER,
# with and without "kid" and "cty", over plaintexts of several lengths
# (and a second decrypter built from python3-cryptography's primitives);
# jwcrypto refuses our output with another key or a changed tag; the tool
# refuses keys that are not P-256 and a kid it cannot put in the header.
# Needs no daemon.

import base64
import json
import os
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

import bsutil

ALGS = ["ECDH-ES+A256KW", "A256GCM"]


def tool():
    return os.path.join(bsutil.BUILDDIR, "tests", "tools", "jwe-encrypt")


def encrypt(tmp_path, pub, plaintext, kid=None, cty=None, der=False):
    """Runs the tool on pub's SPKI; (exit code, stdout text, stderr text)."""
    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    path = tmp_path / ("key.der" if der else "key.pem")
    path.write_bytes(pub.public_bytes(enc, serialization.PublicFormat.SubjectPublicKeyInfo))
    argv = [tool()]
    if kid is not None:
        argv += ["-k", kid]
    if cty is not None:
        argv += ["-c", cty]
    argv += [str(path), plaintext.hex()]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode().strip(), p.stderr.decode()


def decrypt(token, priv):
    """jwcrypto's decryption with priv, allowing only our algorithms: (header, payload)."""
    key = jwk.JWK.from_pyca(priv)
    t = jwe.JWE(algs=ALGS)
    t.deserialize(token, key=key)
    return json.loads(t.objects["protected"]), t.payload


@pytest.mark.parametrize("der", [False, True])
@pytest.mark.parametrize("kid,cty", [(None, None), ("fleet-enc-2026", None),
                                     ("k/1 +=~", "application/json")])
def test_jwcrypto_decrypts(tmp_path, der, kid, cty):
    priv = ec.generate_private_key(ec.SECP256R1())
    for pt in (b"Live long and prosper.", b"\x00\xff" * 700, bytes(range(256)), b"x"):
        rc, token, err = encrypt(tmp_path, priv.public_key(), pt, kid, cty, der)
        assert rc == 0, err
        assert token.count(".") == 4 and "=" not in token
        hdr, payload = decrypt(token, priv)
        assert payload == pt
        assert decrypt_pyca(token, priv) == pt
        want = {"alg", "enc", "epk"} | ({"kid"} if kid else set()) | ({"cty"} if cty else set())
        assert set(hdr) == want
        assert hdr["alg"] == "ECDH-ES+A256KW" and hdr["enc"] == "A256GCM"
        assert set(hdr["epk"]) == {"kty", "crv", "x", "y"}
        assert hdr["epk"]["kty"] == "EC" and hdr["epk"]["crv"] == "P-256"
        assert len(hdr["epk"]["x"]) == 43 and len(hdr["epk"]["y"]) == 43
        assert hdr.get("kid") == kid and hdr.get("cty") == cty


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def decrypt_pyca(token, priv):
    """RFC 7516 5.2 for this algorithm pair out of python3-cryptography's
    primitives (ECDH, ConcatKDFHash, RFC 3394 unwrap, AESGCM): the payload."""
    h64, ek, iv, ct, tag = token.split(".")
    hdr = json.loads(b64d(h64))
    epk = ec.EllipticCurvePublicNumbers(int.from_bytes(b64d(hdr["epk"]["x"]), "big"),
                                        int.from_bytes(b64d(hdr["epk"]["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    z = priv.exchange(ec.ECDH(), epk)
    alg = hdr["alg"].encode()
    other = struct.pack(">I", len(alg)) + alg + struct.pack(">II", 0, 0) + struct.pack(">I", 256)
    kek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(z)
    cek = aes_key_unwrap(kek, b64d(ek))
    return AESGCM(cek).decrypt(b64d(iv), b64d(ct) + b64d(tag), h64.encode("ascii"))


def test_empty_plaintext(tmp_path):
    """jwcrypto 1.1.0 decrypts an empty payload but then reports "No
    recipient matched" (it tests the plaintext for truth): the empty case
    is checked with decrypt_pyca, and jwcrypto's own log must say Success."""
    priv = ec.generate_private_key(ec.SECP256R1())
    rc, token, err = encrypt(tmp_path, priv.public_key(), b"")
    assert rc == 0, err
    assert token.split(".")[3] == ""
    assert decrypt_pyca(token, priv) == b""
    t = jwe.JWE(algs=ALGS)
    try:
        t.deserialize(token, key=jwk.JWK.from_pyca(priv))
        assert t.payload == b""                 # a jwcrypto that accepts empty payloads
    except jwe.InvalidJWEData:
        assert t.decryptlog == ["Success"]      # key unwrapped, tag verified


def test_jwcrypto_refuses_other_key_and_changes(tmp_path):
    priv = ec.generate_private_key(ec.SECP256R1())
    rc, token, err = encrypt(tmp_path, priv.public_key(), b"attack at dawn", kid="k1")
    assert rc == 0, err
    with pytest.raises(JWException):
        decrypt(token, ec.generate_private_key(ec.SECP256R1()))
    parts = token.split(".")
    for i in (1, 2, 3, 4):
        changed = list(parts)
        changed[i] = ("B" if parts[i][0] == "A" else "A") + parts[i][1:]
        with pytest.raises(JWException):
            decrypt(".".join(changed), priv)


def test_tool_refuses(tmp_path):
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    rc, _, err = encrypt(tmp_path, ed, b"x")
    assert rc == 1 and "jwe-encrypt:" in err
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    rc, _, err = encrypt(tmp_path, p384, b"x", der=True)
    assert rc == 1
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    for kid in ('a"b', "a\\b", "tab\there", ""):
        rc, _, err = encrypt(tmp_path, p256, b"x", kid=kid)
        assert rc == 1, kid
