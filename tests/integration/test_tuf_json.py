# test_tuf_json.py - boltseal's TUF canonical JSON (src/formats/tuf_json.c,
# through the tests/tools/tuf-canon tool) against implementations nobody
# here wrote: securesystemslib's encode_canonical (Debian
# python3-securesystemslib) byte for byte, and its key ids, over a corpus
# with non-ASCII, quotes, backslashes, control characters, nested
# delegations and PEM keys; the aktualizr dialect against Python's
# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False);
# signatures made with python-cryptography over our bytes verify with
# securesystemslib; and the strict parser refuses what TUF cannot sign.

import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.formats import encode_canonical

import bsutil

SAMPLE = os.path.join(bsutil.SRCDIR, "tests", "data", "tuf", "python-tuf-targets.json")


def tool():
    return os.path.join(bsutil.BUILDDIR, "tests", "tools", "tuf-canon")


def canon(mode, data):
    p = subprocess.run([tool(), mode], input=data, capture_output=True, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode()


def pem_key():
    k = ec.generate_private_key(ec.SECP256R1())
    return k, k.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def corpus():
    _, pem = pem_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    key_ec = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem}}
    key_ed = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": ed},
              "keyid_hash_algorithms": ["sha256", "sha512"], "x-extra": {"n": 1}}
    docs = [
        {},
        [],
        {"x": 3, "y": 2},
        {"s": "quote \" backslash \\ slash / end"},
        {"s": "controls \x01\x02\x07\x08\t\n\x0b\x0c\r\x1b\x1f del \x7f"},
        {"s": "non-ASCII: é ü ß 漢字 😀 \u2028 \u00a0", "ключ": "значение", "é": 1, "€": 2, "B": 3},
        {"neg": -1, "zero": 0, "big": 2 ** 63 - 1, "small": -2 ** 63, "t": True, "f": False,
         "n": None, "arr": [3, 1, 2, [], {}]},
        {"_type": "targets", "spec_version": "1.0.31", "version": 7,
         "expires": "2030-01-01T00:00:00Z",
         "targets": {"fw/ecu-α.bin": {"length": 31, "hashes": {"sha256": "ab" * 32},
                                      "custom": {"hardwareIds": ["qemuarm64"], "ecu": "Ω"}}},
         "delegations": {"keys": {"k1": key_ec, "k2": key_ed},
                         "roles": [{"name": "supplier/a", "keyids": ["k1", "k2"], "threshold": 2,
                                    "paths": ["fw/*", "a\\b"], "terminating": False},
                                   {"name": "nested", "keyids": ["k2"], "threshold": 1,
                                    "path_hash_prefixes": ["8f"], "terminating": True}]}},
        key_ec,
        key_ed,
    ]
    return docs, [key_ec, key_ed]


def test_canonical_matches_securesystemslib_byte_for_byte():
    docs, _ = corpus()
    for d in docs:
        # the input is ordinary (escaped, indented) JSON, as a CI job would send it
        for text in (json.dumps(d, indent=2), json.dumps(d, ensure_ascii=False)):
            rc, out, err = canon("olpc", text.encode())
            assert rc == 0, err
            want = encode_canonical(d).encode("utf-8")
            assert out == want, (d, out, want)


def test_aktualizr_dialect_matches_python_json():
    docs, _ = corpus()
    for d in docs:
        rc, out, err = canon("aktualizr", json.dumps(d).encode())
        assert rc == 0, err
        want = json.dumps(d, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
        assert out == want, (d, out, want)


def test_key_ids_match_securesystemslib():
    _, keys = corpus()
    for k in keys:
        rc, out, err = canon("keyid", json.dumps(k).encode())
        assert rc == 0, err
        want = hashlib.sha256(encode_canonical(k).encode("utf-8")).hexdigest()
        assert out.decode().strip() == want


def test_signature_over_our_bytes_verifies_with_securesystemslib():
    """The signing input TUF verifiers rebuild is exactly our canonical
    bytes: an ECDSA signature over them verifies with securesystemslib's
    verify_signature on the parsed object."""
    from securesystemslib import keys as ssl_keys
    docs, _ = corpus()
    priv, pem = pem_key()
    key = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem}}
    rc, kid, _ = canon("keyid", json.dumps(key).encode())
    key["keyid"] = kid.decode().strip()
    from cryptography.hazmat.primitives import hashes
    for d in docs[:8]:
        rc, out, err = canon("olpc", json.dumps(d).encode())
        assert rc == 0, err
        sig = priv.sign(out, ec.ECDSA(hashes.SHA256()))
        s = {"keyid": key["keyid"], "sig": sig.hex()}
        assert ssl_keys.verify_signature(key, s, encode_canonical(d).encode("utf-8"))
        assert ssl_keys.verify_signature(key, s, out)


def test_python_tuf_sample_round_trips():
    with open(SAMPLE, "rb") as f:
        doc = json.load(f)
    rc, out, err = canon("olpc", json.dumps(doc["signed"]).encode())
    assert rc == 0, err
    assert len(out) == 1067
    assert hashlib.sha256(out).hexdigest() == \
        "14d397544fd58921883cd44e259a676d335554b962b0092b89f2692ec79d95ac"
    pub = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(
        "89f28bd4ede5ec3786ab923fd154f39588d20881903e69c7b08fb504c6750815"))
    pub.verify(bytes.fromhex(doc["signatures"][0]["sig"]), out)


@pytest.mark.parametrize("text,msg", [
    (b'{"version": 1.5}', "floating-point number at $.version"),
    (b'{"a": {"b": [0, 1e3]}}', "floating-point number at $.a.b[1]"),
    (b'{"a": 1, "a": 2}', "duplicate object key"),
    (b'{"a": "\\u0000"}', "not valid JSON"),
    (b'{"a": "\xff"}', "not valid JSON"),
    (b'{"a": 123456789012345678901234567890}', "not valid JSON"),
    (b'{"a": 1}{"b": 2}', "not valid JSON"),
    (b'[' * 40 + b']' * 40, "nested deeper than 32 levels"),
])
def test_strict_parser_refusals(text, msg):
    rc, out, err = canon("olpc", text)
    assert rc == 1 and out == b"", (rc, out)
    assert msg in err, err


def test_key_objects_work_with_securesystemslib():
    """Our TUF key objects of an Ed25519 and a P-256 public key: the key id
    is the hash of securesystemslib's canonical form of the object, and a signature made by the private key (TUF's
    encodings: raw Ed25519; DER ECDSA over SHA-256) verifies with
    securesystemslib given our object."""
    from cryptography.hazmat.primitives import hashes
    from securesystemslib import keys as ssl_keys
    data = encode_canonical({"_type": "targets", "version": 3}).encode()
    for priv in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())):
        der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        p = subprocess.run([tool(), "keyobj"], input=der, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        text, keyid = p.stdout.decode().rstrip("\n").rsplit("\n", 1)
        key = json.loads(text, strict=False)   # OLPC: raw newlines in the PEM
        assert text.encode() == encode_canonical(key).encode()
        # the key id of the object exactly as it appears (TUF 1.0, python-tuf's Key,
        # go-tuf, tuf-js); securesystemslib's legacy _get_keyid would add
        # keyid_hash_algorithms, which the object does not carry
        assert keyid == hashlib.sha256(encode_canonical(key).encode()).hexdigest()
        if isinstance(priv, ed25519.Ed25519PrivateKey):
            sig = priv.sign(data)
        else:
            sig = priv.sign(data, ec.ECDSA(hashes.SHA256()))
        key["keyid"] = keyid
        assert ssl_keys.verify_signature(key, {"keyid": keyid, "sig": sig.hex()}, data)
        assert not ssl_keys.verify_signature(key, {"keyid": keyid, "sig": sig.hex()}, data + b" ")
    rsa_der = bytes.fromhex("30")  # not a key at all
    p = subprocess.run([tool(), "keyobj"], input=rsa_der, capture_output=True, timeout=30)
    assert p.returncode == 1 and b"not a DER SubjectPublicKeyInfo" in p.stderr
