# test_keyservice.py - every KeyService RPC against the real daemon and
# token, through python3-grpcio; every signature checked independently by
# python3-cryptography and by `openssl pkeyutl -verify`.

import hashlib

import grpc
import pytest

import bsutil
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bsutil import ALG_ECDSA, ALG_ED25519, ALG_RSA, crypto_verify, openssl_verify, rpc_error

MSG = b"boltseal integration test message \x00\xff"


def both_verify(alg, der, data, is_digest, sig, raw=False):
    """Asserts the signature verifies with cryptography AND openssl, and that
    both reject it once a bit is flipped (so neither check is vacuous)."""
    assert crypto_verify(alg, der, data, is_digest, sig, raw), "cryptography rejected it"
    assert openssl_verify(alg, der, data, is_digest, sig, raw), "openssl rejected it"
    bad = bytearray(sig)
    bad[len(bad) // 2] ^= 0x01
    bad = bytes(bad)
    assert not crypto_verify(alg, der, data, is_digest, bad, raw)
    assert not openssl_verify(alg, der, data, is_digest, bad, raw)


def test_create_get_key(env, pb, good):
    r = good.CreateKey(pb.CreateKeyRequest(name="ks-create.1_a", purpose=pb.GENERIC,
                                           algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    k = r.key
    assert k.name == "ks-create.1_a"
    assert k.purpose == pb.GENERIC and k.algorithm == pb.ECDSA_P256_SHA256
    assert k.state == pb.ENABLED and k.primary_version == 1
    assert [v.version for v in k.versions] == [1]
    assert k.versions[0].state == pb.ENABLED and k.create_time_unix > 1600000000

    g = good.GetKey(pb.GetKeyRequest(name="ks-create.1_a"), timeout=10).key
    assert g.name == k.name and g.algorithm == k.algorithm and g.purpose == k.purpose
    assert g.primary_version == 1 and [v.version for v in g.versions] == [1]

    e = rpc_error(good.CreateKey, pb.CreateKeyRequest(
        name="ks-create.1_a", purpose=pb.GENERIC, algorithm=pb.ED25519))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
    # The original key is untouched.
    assert good.GetKey(pb.GetKeyRequest(name="ks-create.1_a"), timeout=10).key.algorithm \
        == pb.ECDSA_P256_SHA256

    e = rpc_error(good.GetKey, pb.GetKeyRequest(name="ks-no-such-key"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e


def test_name_limits(env, pb, good):
    ok64 = "n" + "x" * 63
    r = good.CreateKey(pb.CreateKeyRequest(name=ok64, purpose=pb.GENERIC,
                                           algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    assert r.key.name == ok64
    r = good.CreateKey(pb.CreateKeyRequest(name="9", purpose=pb.GENERIC,
                                           algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    assert r.key.name == "9"
    wrong = []
    for bad in ("", "-lead", ".lead", "_lead", "n" + "x" * 64, "has space", "slash/x",
                "caf\u00e9", "nul\x00x", "new\nline", "colon:x", "tab\tx"):
        try:
            r = good.CreateKey(pb.CreateKeyRequest(
                name=bad, purpose=pb.GENERIC, algorithm=pb.ECDSA_P256_SHA256), timeout=30)
            wrong.append("%r accepted (created %r)" % (bad, r.key.name))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                wrong.append("%r: %s" % (bad, e.code().name))
    assert not wrong, "bad names not refused with INVALID_ARGUMENT:\n" + "\n".join(wrong)
    e = rpc_error(good.CreateKey, pb.CreateKeyRequest(
        name="ks-noalg", purpose=pb.GENERIC, algorithm=pb.ALGORITHM_UNSPECIFIED))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    e = rpc_error(good.CreateKey, pb.CreateKeyRequest(
        name="ks-nopurpose", purpose=pb.PURPOSE_UNSPECIFIED, algorithm=pb.ED25519))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    e = rpc_error(good.CreateKey, pb.CreateKeyRequest(
        name="ks-alg99", purpose=pb.GENERIC, algorithm=99))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    for n in ("ks-noalg", "ks-nopurpose", "ks-alg99"):
        e = rpc_error(good.GetKey, pb.GetKeyRequest(name=n))
        assert e.code() == grpc.StatusCode.NOT_FOUND, (n, e)


def test_list_keys_pagination(env, pb, good, keys):
    made = ["ks-page-%02d" % i for i in range(7)]
    for n in made:
        good.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.GENERIC,
                                           algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    # Default page size (0 means 100).
    first = good.ListKeys(pb.ListKeysRequest(), timeout=10)
    assert len(first.keys) <= 100
    names_all, r = [k.name for k in first.keys], first
    while r.next_page_token:
        assert len(r.keys) == 100
        r = good.ListKeys(pb.ListKeysRequest(page_token=r.next_page_token), timeout=10)
        names_all += [k.name for k in r.keys]
    assert names_all == sorted(names_all) and len(set(names_all)) == len(names_all)
    for n in made + ["it-ecdsa", "it-ed25519", "it-rsa"]:
        assert n in names_all
    for k in first.keys:
        if k.name == "it-rsa":
            assert k.algorithm == pb.RSA_3072_PSS_SHA256 and k.primary_version >= 1

    # Pages of 2: same names, same order, no page bigger than asked.
    paged, token, pages = [], "", 0
    while True:
        r = good.ListKeys(pb.ListKeysRequest(page_size=2, page_token=token), timeout=10)
        assert len(r.keys) <= 2
        paged += [k.name for k in r.keys]
        pages += 1
        assert pages < 1000
        if not r.next_page_token:
            break
        assert len(r.keys) == 2
        token = r.next_page_token
    # Keys created by concurrently running tests could only appear, never
    # vanish; this module runs alone, so the lists are equal.
    assert paged == names_all
    assert pages >= (len(names_all) + 1) // 2


def test_unknown_key_every_rpc(env, pb, good):
    e = rpc_error(good.Sign, pb.SignRequest(key_name="ks-missing", message=b"x"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    e = rpc_error(good.Verify, pb.VerifyRequest(key_name="ks-missing", message=b"x",
                                                signature=b"\x00" * 64))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    e = rpc_error(good.GetPublicKey, pb.GetPublicKeyRequest(name="ks-missing"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    e = rpc_error(good.RotateKey, pb.RotateKeyRequest(name="ks-missing"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    e = rpc_error(good.SignBatch, pb.SignBatchRequest(
        key_name="ks-missing", items=[pb.SignBatchItem(message=b"x")]))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e


SIGN_CASES = [
    # (alg, input kind, format)
    (ALG_ECDSA, "message", "default"),
    (ALG_ECDSA, "message", "der"),
    (ALG_ECDSA, "message", "raw"),
    (ALG_ECDSA, "digest", "default"),
    (ALG_ECDSA, "digest", "raw"),
    (ALG_ED25519, "message", "default"),
    (ALG_RSA, "message", "default"),
    (ALG_RSA, "digest", "default"),
]


@pytest.mark.parametrize("alg,kind,fmt", SIGN_CASES,
                         ids=["%s-%s-%s" % (bsutil.ALG_NAMES[a], k, f) for a, k, f in SIGN_CASES])
def test_sign_and_verify(env, pb, good, keys, alg, kind, fmt):
    name, der = keys[alg]
    digest = hashlib.sha256(MSG).digest()
    req = pb.SignRequest(key_name=name)
    if kind == "message":
        req.message = MSG
    else:
        req.digest = digest
    req.signature_format = {"default": pb.SIGNATURE_FORMAT_DEFAULT, "der": pb.DER,
                            "raw": pb.RAW}[fmt]
    r = good.Sign(req, timeout=30)
    assert r.key_name == name and r.key_version == 1 and r.algorithm == alg
    sig = r.signature
    raw = fmt == "raw"
    if alg == ALG_ECDSA:
        if raw:
            assert len(sig) == 64
        else:
            assert sig[0] == 0x30 and len(sig) <= 72
            decode_dss_signature(sig)  # strict DER
    elif alg == ALG_ED25519:
        assert len(sig) == 64
    else:
        assert len(sig) == 384
    data, is_digest = (MSG, False) if kind == "message" else (digest, True)
    both_verify(alg, der, data, is_digest, sig, raw)
    if kind == "digest":
        # A digest signature is a signature of the message it hashes.
        assert crypto_verify(alg, der, MSG, False, sig, raw)

    # The daemon's own Verify: by key name, by version, and by SPKI.
    vfmt = pb.RAW if raw else pb.SIGNATURE_FORMAT_DEFAULT
    v = pb.VerifyRequest(key_name=name, signature=sig, signature_format=vfmt)
    if kind == "message":
        v.message = MSG
    else:
        v.digest = digest
    vr = good.Verify(v, timeout=30)
    assert vr.valid and vr.key_version == 1
    v.key_version = 1
    assert good.Verify(v, timeout=30).valid
    v.key_version = 0
    v.public_key_der = der
    assert good.Verify(v, timeout=30).valid
    # Tampered message: valid=false, not an error.
    v2 = pb.VerifyRequest(key_name=name, signature=sig, signature_format=vfmt)
    if kind == "message":
        v2.message = MSG + b"!"
    else:
        v2.digest = hashlib.sha256(MSG + b"!").digest()
    assert not good.Verify(v2, timeout=30).valid
    # Tampered signature.
    bad = bytearray(sig)
    bad[-1] ^= 0x40
    v.signature = bytes(bad)
    assert not good.Verify(v, timeout=30).valid


def test_sign_input_refusals(env, pb, good, keys):
    ename = keys[ALG_ED25519][0]
    e = rpc_error(good.Sign, pb.SignRequest(key_name=ename, digest=b"\x11" * 32))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    for alg in (ALG_ECDSA, ALG_RSA):
        n = keys[alg][0]
        for dlen in (0, 31, 33, 64):
            e = rpc_error(good.Sign, pb.SignRequest(key_name=n, digest=b"\x22" * dlen))
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (alg, dlen, e)
    # Neither message nor digest.
    e = rpc_error(good.Sign, pb.SignRequest(key_name=keys[ALG_ECDSA][0]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    # Verify of a digest with Ed25519 is refused as well.
    e = rpc_error(good.Verify, pb.VerifyRequest(key_name=ename, digest=b"\x11" * 32,
                                                signature=b"\x00" * 64))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    # An empty message is a message (oneof set): signable.
    r = good.Sign(pb.SignRequest(key_name=ename, message=b""), timeout=30)
    assert crypto_verify(ALG_ED25519, keys[ALG_ED25519][1], b"", False, r.signature)


def test_get_public_key(env, pb, good, keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    for alg, (name, _) in keys.items():
        for ver in (0, 1):
            r = good.GetPublicKey(pb.GetPublicKeyRequest(name=name, version=ver), timeout=10)
            assert r.name == name and r.version == 1 and r.algorithm == alg
            assert r.pem.startswith("-----BEGIN PUBLIC KEY-----\n")
            assert r.pem.rstrip().endswith("-----END PUBLIC KEY-----")
            pk = serialization.load_pem_public_key(r.pem.encode())
            assert pk.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo) == r.der
            if alg == ALG_ECDSA:
                assert isinstance(pk, ec.EllipticCurvePublicKey)
                assert pk.curve.name == "secp256r1"
            elif alg == ALG_ED25519:
                assert isinstance(pk, ed25519.Ed25519PublicKey)
            else:
                assert isinstance(pk, rsa.RSAPublicKey) and pk.key_size == 3072
        e = rpc_error(good.GetPublicKey, pb.GetPublicKeyRequest(name=name, version=2))
        assert e.code() == grpc.StatusCode.NOT_FOUND, e


@pytest.mark.parametrize("algname", ["ecdsa", "ed25519"])
def test_rotate_key(env, pb, good, algname):
    alg = ALG_ECDSA if algname == "ecdsa" else ALG_ED25519
    name = "ks-rotate-" + algname
    good.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.GENERIC, algorithm=alg),
                   timeout=30)
    pub1 = good.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=10)
    s1 = good.Sign(pb.SignRequest(key_name=name, message=MSG), timeout=30)
    assert s1.key_version == 1

    r = good.RotateKey(pb.RotateKeyRequest(name=name), timeout=30)
    assert r.new_version == 2 and r.key.primary_version == 2
    assert [v.version for v in r.key.versions] == [1, 2]
    assert all(v.state == pb.ENABLED for v in r.key.versions)
    g = good.GetKey(pb.GetKeyRequest(name=name), timeout=10).key
    assert g.primary_version == 2 and len(g.versions) == 2

    pub0 = good.GetPublicKey(pb.GetPublicKeyRequest(name=name, version=0), timeout=10)
    pub2 = good.GetPublicKey(pb.GetPublicKeyRequest(name=name, version=2), timeout=10)
    pub1b = good.GetPublicKey(pb.GetPublicKeyRequest(name=name, version=1), timeout=10)
    assert pub0.version == 2 and pub0.der == pub2.der
    assert pub1b.version == 1 and pub1b.der == pub1.der
    assert pub2.der != pub1.der
    e = rpc_error(good.GetPublicKey, pb.GetPublicKeyRequest(name=name, version=3))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e

    s2 = good.Sign(pb.SignRequest(key_name=name, message=MSG), timeout=30)
    assert s2.key_version == 2
    both_verify(alg, pub2.der, MSG, False, s2.signature)
    assert not crypto_verify(alg, pub1.der, MSG, False, s2.signature)

    # The old version's signature still verifies (any enabled version)...
    both_verify(alg, pub1.der, MSG, False, s1.signature)
    v = good.Verify(pb.VerifyRequest(key_name=name, message=MSG, signature=s1.signature),
                    timeout=30)
    assert v.valid and v.key_version == 1
    v = good.Verify(pb.VerifyRequest(key_name=name, message=MSG, signature=s2.signature),
                    timeout=30)
    assert v.valid and v.key_version == 2
    # ...and only with its own version when one is named.
    assert good.Verify(pb.VerifyRequest(key_name=name, message=MSG, signature=s1.signature,
                                        key_version=1), timeout=30).valid
    assert not good.Verify(pb.VerifyRequest(key_name=name, message=MSG,
                                            signature=s1.signature, key_version=2),
                           timeout=30).valid
    e = rpc_error(good.Verify, pb.VerifyRequest(key_name=name, message=MSG,
                                                signature=s1.signature, key_version=9))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e

    r = good.RotateKey(pb.RotateKeyRequest(name=name), timeout=30)
    assert r.new_version == 3 and r.key.primary_version == 3


@pytest.mark.parametrize("algname", ["ecdsa", "ed25519", "rsa"])
def test_sign_batch(env, pb, good, keys, algname):
    alg = {"ecdsa": ALG_ECDSA, "ed25519": ALG_ED25519, "rsa": ALG_RSA}[algname]
    name, der = keys[alg]
    msgs = [b"batch item %d" % i for i in range(8)]
    items, expect = [], []
    for i, m in enumerate(msgs):
        if alg != ALG_ED25519 and i % 2:
            items.append(pb.SignBatchItem(digest=hashlib.sha256(m).digest()))
            expect.append((hashlib.sha256(m).digest(), True, 0))
        else:
            items.append(pb.SignBatchItem(message=m))
            expect.append((m, False, 0))
    # A bad item in the middle: 31-byte digest (or any digest for Ed25519).
    items.insert(3, pb.SignBatchItem(digest=b"\x01" * 31))
    expect.insert(3, (None, True, 3))
    fmt = pb.RAW if alg == ALG_ECDSA else pb.SIGNATURE_FORMAT_DEFAULT
    r = good.SignBatch(pb.SignBatchRequest(key_name=name, items=items, signature_format=fmt),
                       timeout=60)
    assert r.key_name == name and r.key_version == 1 and r.algorithm == alg
    assert len(r.results) == len(items)
    for res, (data, is_digest, code) in zip(r.results, expect):
        assert res.status_code == code, res
        if code:
            assert res.signature == b"" and res.error_message
            continue
        assert crypto_verify(alg, der, data, is_digest, res.signature, raw=(alg == ALG_ECDSA))
    # Results are in order: item 0's signature does not verify item 1.
    assert not crypto_verify(alg, der, expect[1][0], expect[1][1], r.results[0].signature,
                             raw=(alg == ALG_ECDSA))
    # One signature through openssl too.
    assert openssl_verify(alg, der, expect[0][0], expect[0][1], r.results[0].signature,
                          raw=(alg == ALG_ECDSA))


def test_sign_batch_limits(env, pb, good, keys):
    name, der = keys[ALG_ECDSA]
    items = [pb.SignBatchItem(message=b"%d" % i) for i in range(100)]
    r = good.SignBatch(pb.SignBatchRequest(key_name=name, items=items), timeout=60)
    assert len(r.results) == 100 and all(x.status_code == 0 for x in r.results)
    assert crypto_verify(ALG_ECDSA, der, b"99", False, r.results[99].signature)
    items.append(pb.SignBatchItem(message=b"100"))
    e = rpc_error(good.SignBatch, pb.SignBatchRequest(key_name=name, items=items))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    # An empty batch: refused, or answered with no results.
    try:
        r = good.SignBatch(pb.SignBatchRequest(key_name=name, items=[]), timeout=30)
        assert len(r.results) == 0
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    env.assert_still_serving()


def test_verify_with_public_key_der(env, pb, good, keys):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    spki = lambda k: k.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    eck = ec.generate_private_key(ec.SECP256R1())
    sig = eck.sign(MSG, ec.ECDSA(hashes.SHA256()))
    assert good.Verify(pb.VerifyRequest(public_key_der=spki(eck), message=MSG,
                                        signature=sig), timeout=10).valid
    assert not good.Verify(pb.VerifyRequest(public_key_der=spki(eck), message=MSG + b"x",
                                            signature=sig), timeout=10).valid
    edk = ed25519.Ed25519PrivateKey.generate()
    assert good.Verify(pb.VerifyRequest(public_key_der=spki(edk), message=MSG,
                                        signature=edk.sign(MSG)), timeout=10).valid
    rk = rsa.generate_private_key(65537, 2048)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    rsig = rk.sign(MSG, pss, hashes.SHA256())
    assert good.Verify(pb.VerifyRequest(public_key_der=spki(rk), message=MSG,
                                        signature=rsig), timeout=10).valid
    # A PSS signature with another salt length is not RSA-PSS-SHA256-salt32.
    rsig20 = rk.sign(MSG, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20),
                     hashes.SHA256())
    assert not good.Verify(pb.VerifyRequest(public_key_der=spki(rk), message=MSG,
                                            signature=rsig20), timeout=10).valid
    # A key the daemon does not support (P-384) or garbage SPKI: INVALID_ARGUMENT.
    p384 = ec.generate_private_key(ec.SECP384R1())
    for bad in (spki(p384), b"\x30\x03\x02\x01\x01", b"garbage"):
        e = rpc_error(good.Verify, pb.VerifyRequest(public_key_der=bad, message=MSG,
                                                    signature=sig))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    # The daemon's own key's signature against a foreign key: false.
    s = good.Sign(pb.SignRequest(key_name=keys[ALG_ECDSA][0], message=MSG), timeout=30)
    assert not good.Verify(pb.VerifyRequest(public_key_der=spki(eck), message=MSG,
                                            signature=s.signature), timeout=10).valid


def test_identities_follow_the_policy(env, pb, keys):
    """Only the identity the session policy grants it-* keys may sign with
    them; every other dev identity gets PERMISSION_DENIED with a generic
    message (the precise reason goes to the audit log only)."""
    name, der = keys[ALG_ECDSA]
    r = env.good.Sign(pb.SignRequest(key_name=name, message=b"ci"), timeout=30)
    assert crypto_verify(ALG_ECDSA, der, b"ci", False, r.signature)
    for ident in ("log-ota-log", "svc-dispatch", "gw-eu-west-1", "admin-alice", "audit-ext"):
        c = env.client(ident=ident)
        e = rpc_error(c.Sign, pb.SignRequest(key_name=name, message=ident.encode()))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, (ident, e.code())
        assert bsutil.denied(e.details()), e.details()


def test_names_are_not_truncated_at_nul(env, pb, good):
    """A name is compared as a whole: "it-serving\\0x" is not "it-serving"."""
    wrong = []
    for call, req in (
            (good.GetKey, pb.GetKeyRequest(name="it-serving\x00x")),
            (good.Sign, pb.SignRequest(key_name="it-serving\x00x", message=b"m")),
            (good.GetPublicKey, pb.GetPublicKeyRequest(name="it-serving\x00x")),
            (good.Verify, pb.VerifyRequest(key_name="it-serving\x00x", message=b"m",
                                           signature=b"\x30\x00"))):
        try:
            call(req, timeout=15)
            wrong.append("%s succeeded" % type(req).__name__)
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                wrong.append("%s: %s" % (type(req).__name__, e.code().name))
    assert not wrong, wrong
