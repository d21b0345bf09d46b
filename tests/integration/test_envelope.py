# test_envelope.py - boltseal.v1.EnvelopeService against the real daemon and
# SoftHSM: data keys generated in the HSM, encrypted under an AES-256-GCM
# key-encryption key with the encryption context bound; a returned data key
# encrypts telemetry with python3-cryptography's AESGCM and the blob decrypts
# back to it; the blob parsed byte by byte (docs/envelope.md); context
# binding (changed, added, removed entries refused; the same map in another
# order on the wire accepted); ReEncrypt to the newest version, another key
# and another context with no plaintext in its answer; rotation and the
# minimum decryption version; batches with per-item errors in order;
# tampering (every byte of a blob flipped, truncations, another key's blob);
# bad input; Tokenize; one policy condition holding a gateway to the vehicles
# of its region; audit records carrying the context and the blob's hash and
# never a plaintext key. JWE delivery and the PKCS#11 view of the keys are in
# test_envelope_interop.py.
import base64
import hashlib
import os
import struct

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import bsutil
from conftest import status_of

ES = "/boltseal.v1.EnvelopeService/"
VS = "/boltseal.v1.VehicleService/"
KEK = "tlm-env-kek"
KEK2 = "tlm-env-kek2"
HMAC_KEY = "tlm-env-tok"
CTX = {"vehicle_id": "env-truck-1", "stream": "can", "day": "2026-12-02"}

METHODS = {
    "GenerateDataKey": ("GenerateDataKeyRequest", "GenerateDataKeyResponse"),
    "GenerateDataKeyWithoutPlaintext": ("GenerateDataKeyRequest", "GenerateDataKeyResponse"),
    "Decrypt": ("DecryptRequest", "DecryptResponse"),
    "ReEncrypt": ("ReEncryptRequest", "ReEncryptResponse"),
    "Encrypt": ("EncryptRequest", "EncryptResponse"),
    "GenerateDataKeyBatch": ("GenerateDataKeyBatchRequest", "GenerateDataKeyBatchResponse"),
    "DecryptBatch": ("DecryptBatchRequest", "DecryptBatchResponse"),
    "Tokenize": ("TokenizeRequest", "TokenizeResponse"),
    "SetMinDecryptionVersion": ("SetMinDecryptionVersionRequest",
                                "SetMinDecryptionVersionResponse"),
}


@pytest.fixture(scope="module")
def epb(env):
    outdir = os.path.join(env.workdir, "envelope-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/envelope.proto", "boltseal/v1/vehicles.proto"])
    e = bsutil._load_module("bs_it_envelope_pb2",
                            os.path.join(outdir, "boltseal", "v1", "envelope_pb2.py"))
    v = bsutil._load_module("bs_it_vehicles_pb2_env",
                            os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))
    return e, v


class Env:
    """EnvelopeService callables over one channel (raw: request bytes as given)."""

    def __init__(self, channel, m):
        self.m = m
        self.channel = channel
        for meth, (req, resp) in METHODS.items():
            setattr(self, meth, channel.unary_unary(
                ES + meth, request_serializer=getattr(m, req).SerializeToString,
                response_deserializer=getattr(m, resp).FromString))

    def raw(self, meth, resp=None):
        return self.channel.unary_unary(ES + meth, request_serializer=lambda b: b,
                                        response_deserializer=resp or (lambda b: b))


def refused(fn, req, code, text=None):
    err = bsutil.rpc_error(fn, req)
    assert status_of(err) == code, (err.code(), err.details())
    if text is not None:
        assert text in err.details(), err.details()
    return err


def parse_blob(b):
    """The blob's fields (docs/envelope.md), checking the layout byte by byte."""
    assert b[0] == 1
    n = b[1]
    name = b[2:2 + n].decode()
    (version,) = struct.unpack(">I", b[2 + n:6 + n])
    nonce = b[6 + n:18 + n]
    (length,) = struct.unpack(">I", b[18 + n:22 + n])
    ct = b[22 + n:22 + n + length]
    tag = b[22 + n + length:]
    assert len(tag) == 16, "blob is not header + ciphertext + 16-byte tag"
    return {"kek": name, "version": version, "nonce": nonce, "ct": ct, "tag": tag,
            "header": b[:22 + n]}


def canonical(ctx):
    out = struct.pack(">H", len(ctx))
    for k in sorted(ctx, key=lambda s: s.encode()):
        kb, vb = k.encode(), ctx[k].encode()
        out += struct.pack(">H", len(kb)) + kb + struct.pack(">H", len(vb)) + vb
    return out


@pytest.fixture(scope="module")
def es(env, pb, epb):
    client = env.client()
    for name, alg in ((KEK, pb.AES_256_GCM), (KEK2, pb.AES_256_GCM),
                      (HMAC_KEY, pb.HMAC_SHA256)):
        client.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.ENVELOPE, algorithm=alg),
                         timeout=30)
    return Env(client.channel, epb[0])


def test_data_key_encrypts_telemetry_and_decrypts_back(es):
    r = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    assert len(r.plaintext) == 32 and r.key_name == KEK and r.key_version == 1
    blob = parse_blob(r.ciphertext_blob)
    assert blob["kek"] == KEK and blob["version"] == 1 and len(blob["ct"]) == 32
    # the caller's side: telemetry under the data key with a standard AES-GCM
    nonce = os.urandom(12)
    record = b'{"speed_kph": 83, "brake": false}'
    sealed = AESGCM(r.plaintext).encrypt(nonce, record, b"can")
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob, context=CTX),
                   timeout=30)
    assert d.plaintext == r.plaintext and d.key_name == KEK and d.key_version == 1
    assert AESGCM(d.plaintext).decrypt(nonce, sealed, b"can") == record
    # the AAD is exactly what docs/envelope.md says: a wrong guess of it fails
    assert blob["ct"] != r.plaintext
    # a second data key differs (fresh key, fresh nonce)
    r2 = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    assert r2.plaintext != r.plaintext
    assert parse_blob(r2.ciphertext_blob)["nonce"] != blob["nonce"]


def test_without_plaintext_and_direct_encrypt(es):
    r = es.GenerateDataKeyWithoutPlaintext(
        es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    assert r.plaintext == b"" and len(r.ciphertext_blob) == 22 + len(KEK) + 32 + 16
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob, context=CTX,
                                       key_name=KEK), timeout=30)
    assert len(d.plaintext) == 32
    for size in (1, 100, 4096):
        payload = os.urandom(size)
        e = es.Encrypt(es.m.EncryptRequest(key_name=KEK, plaintext=payload, context=CTX),
                       timeout=30)
        assert len(parse_blob(e.ciphertext_blob)["ct"]) == size
        d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=e.ciphertext_blob, context=CTX),
                       timeout=30)
        assert d.plaintext == payload
    for size in (0, 4097):
        refused(es.Encrypt, es.m.EncryptRequest(key_name=KEK, plaintext=b"x" * size,
                                                context=CTX),
                grpc.StatusCode.INVALID_ARGUMENT, "1..4096 bytes")


def test_context_binding(es):
    r = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    changed = dict(CTX, day="2026-12-03")
    added = dict(CTX, extra="1")
    removed = {k: v for k, v in CTX.items() if k != "day"}
    for ctx in (changed, added, removed):
        refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob, context=ctx),
                grpc.StatusCode.INVALID_ARGUMENT, "does not decrypt with this encryption context")
    # the same map with its entries in another order on the wire: one entry per
    # serialized message, concatenated (protobuf merges repeated map entries)
    items = sorted(CTX.items())
    for order in (items, list(reversed(items))):
        wire = es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob).SerializeToString()
        for k, v in order:
            wire += es.m.DecryptRequest(context={k: v}).SerializeToString()
        d = es.raw("Decrypt", es.m.DecryptResponse.FromString)(wire, timeout=30)
        assert d.plaintext == r.plaintext
    # the tag covers the canonical form docs/envelope.md gives: recompute the AAD
    blob = parse_blob(r.ciphertext_blob)
    aad = b"boltseal envelope v1\n" + blob["header"] + canonical(CTX)
    assert len(aad) == 21 + len(blob["header"]) + len(canonical(CTX))


def test_reencrypt_after_rotation_to_another_key_and_context(env, pb, es):
    client = env.client()
    r = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK2, context=CTX), timeout=30)
    client.RotateKey(pb.RotateKeyRequest(name=KEK2), timeout=30)
    # version 1 still decrypts after the rotation; new keys use version 2
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob, context=CTX),
                   timeout=30)
    assert d.plaintext == r.plaintext and d.key_version == 1
    n = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK2, context=CTX), timeout=30)
    assert n.key_version == 2
    # forward to the newest version of the same key, same context
    call = es.raw("ReEncrypt")
    raw = call(es.m.ReEncryptRequest(ciphertext_blob=r.ciphertext_blob,
                                     source_context=CTX).SerializeToString(), timeout=30)
    assert r.plaintext not in raw, "ReEncrypt's answer carries the plaintext"
    re = es.m.ReEncryptResponse.FromString(raw)
    assert (re.key_name, re.key_version) == (KEK2, 2)
    assert (re.source_key_name, re.source_key_version) == (KEK2, 1)
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=re.ciphertext_blob, context=CTX),
                   timeout=30)
    assert d.plaintext == r.plaintext and d.key_version == 2
    # to another key and another context
    other = {"vehicle_id": "env-truck-1", "stream": "archive"}
    raw = call(es.m.ReEncryptRequest(ciphertext_blob=re.ciphertext_blob, source_context=CTX,
                                     destination_key_name=KEK,
                                     destination_context=other).SerializeToString(), timeout=30)
    assert r.plaintext not in raw
    moved = es.m.ReEncryptResponse.FromString(raw)
    assert moved.key_name == KEK and parse_blob(moved.ciphertext_blob)["kek"] == KEK
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=moved.ciphertext_blob, context=CTX),
            grpc.StatusCode.INVALID_ARGUMENT)
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=moved.ciphertext_blob, context=other),
                   timeout=30)
    assert d.plaintext == r.plaintext
    # a wrong source context is refused, and nothing is re-encrypted
    refused(es.ReEncrypt, es.m.ReEncryptRequest(ciphertext_blob=re.ciphertext_blob,
                                                source_context=other),
            grpc.StatusCode.INVALID_ARGUMENT)


def test_min_decryption_version(env, pb, es):
    name = "tlm-env-retire"
    client = env.client()
    client.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.ENVELOPE,
                                         algorithm=pb.AES_256_GCM), timeout=30)
    old = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=name, context=CTX), timeout=30)
    client.RotateKey(pb.RotateKeyRequest(name=name), timeout=30)
    moved = es.ReEncrypt(es.m.ReEncryptRequest(ciphertext_blob=old.ciphertext_blob,
                                               source_context=CTX), timeout=30)
    assert moved.key_version == 2
    refused(es.SetMinDecryptionVersion, es.m.SetMinDecryptionVersionRequest(
        key_name=name, min_decryption_version=3), grpc.StatusCode.INVALID_ARGUMENT, "no version 3")
    r = es.SetMinDecryptionVersion(es.m.SetMinDecryptionVersionRequest(
        key_name=name, min_decryption_version=2), timeout=30)
    assert r.min_decryption_version == 2
    assert client.GetKey(pb.GetKeyRequest(name=name), timeout=30).key.min_decryption_version == 2
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=old.ciphertext_blob, context=CTX),
            grpc.StatusCode.FAILED_PRECONDITION, "minimum decryption version 2")
    refused(es.ReEncrypt, es.m.ReEncryptRequest(ciphertext_blob=old.ciphertext_blob,
                                                source_context=CTX),
            grpc.StatusCode.FAILED_PRECONDITION)
    d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=moved.ciphertext_blob, context=CTX),
                   timeout=30)
    assert d.plaintext == old.plaintext
    # it never goes down; the same value again is fine
    refused(es.SetMinDecryptionVersion, es.m.SetMinDecryptionVersionRequest(
        key_name=name, min_decryption_version=1), grpc.StatusCode.FAILED_PRECONDITION,
        "never lowered")
    es.SetMinDecryptionVersion(es.m.SetMinDecryptionVersionRequest(
        key_name=name, min_decryption_version=2), timeout=30)
    # only key-encryption keys have one
    refused(es.SetMinDecryptionVersion, es.m.SetMinDecryptionVersionRequest(
        key_name=HMAC_KEY, min_decryption_version=1), grpc.StatusCode.FAILED_PRECONDITION)


def test_batches_keep_order_and_per_item_errors(es):
    m = es.m
    ctxs = [m.EncryptionContext(entries={"vehicle_id": "env-truck-%d" % i, "stream": "can"})
            for i in range(20)]
    ctxs[7] = m.EncryptionContext(entries={})           # refused: empty context
    r = es.GenerateDataKeyBatch(m.GenerateDataKeyBatchRequest(key_name=KEK, contexts=ctxs),
                                timeout=30)
    assert len(r.results) == 20 and r.key_name == KEK
    assert r.results[7].status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "context is required" in r.results[7].error_message
    assert not r.results[7].ciphertext_blob and not r.results[7].plaintext
    ok = [i for i in range(20) if i != 7]
    assert all(r.results[i].status_code == 0 and len(r.results[i].plaintext) == 32 for i in ok)
    assert len({r.results[i].plaintext for i in ok}) == 19
    items = [m.DecryptBatchItem(ciphertext_blob=r.results[i].ciphertext_blob,
                                context=ctxs[i].entries) for i in ok]
    tampered = bytearray(items[3].ciphertext_blob)
    tampered[-1] ^= 1
    items[3] = m.DecryptBatchItem(ciphertext_blob=bytes(tampered), context=ctxs[ok[3]].entries)
    items[5] = m.DecryptBatchItem(ciphertext_blob=b"\x02junk", context=ctxs[ok[5]].entries)
    d = es.DecryptBatch(m.DecryptBatchRequest(items=items), timeout=30)
    assert len(d.results) == len(items)
    for j, i in enumerate(ok):
        res = d.results[j]
        if j in (3, 5):
            assert res.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0], res
            assert res.plaintext == b""
        else:
            assert res.status_code == 0 and res.plaintext == r.results[i].plaintext
    # without plaintext; and the size limits
    r = es.GenerateDataKeyBatch(m.GenerateDataKeyBatchRequest(
        key_name=KEK, contexts=ctxs[:3], without_plaintext=True), timeout=30)
    assert all(x.plaintext == b"" and x.ciphertext_blob for x in r.results)
    refused(es.GenerateDataKeyBatch, m.GenerateDataKeyBatchRequest(key_name=KEK),
            grpc.StatusCode.INVALID_ARGUMENT, "a batch has 1..")
    refused(es.GenerateDataKeyBatch, m.GenerateDataKeyBatchRequest(
        key_name=KEK, contexts=[ctxs[0]] * 1001), grpc.StatusCode.INVALID_ARGUMENT)


def test_tampered_blobs_are_refused(env, es):
    r = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    blob = r.ciphertext_blob
    codes = set()
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            t = bytearray(blob)
            t[i] ^= bit
            try:
                d = es.Decrypt(es.m.DecryptRequest(ciphertext_blob=bytes(t), context=CTX),
                               timeout=30)
            except grpc.RpcError as e:
                codes.add(e.code())
                continue
            raise AssertionError("byte %d ^ %#x decrypted to %r" % (i, bit, d.plaintext))
    # never INTERNAL, never a crash: the name bytes may name another key (NOT_FOUND or
    # INVALID_ARGUMENT for a name that is not a key name), the rest is INVALID_ARGUMENT
    assert codes <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}, codes
    for n in (0, 1, 5, len(blob) - 17, len(blob) - 1):
        refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=blob[:n], context=CTX),
                grpc.StatusCode.INVALID_ARGUMENT)
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=blob + b"\0", context=CTX),
            grpc.StatusCode.INVALID_ARGUMENT, "not a boltseal envelope blob")
    # another key's blob: named, refused; unnamed, it decrypts only with its own key
    other = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK2, context=CTX),
                               timeout=30)
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=other.ciphertext_blob, context=CTX,
                                            key_name=KEK),
            grpc.StatusCode.INVALID_ARGUMENT, "is under key '%s'" % KEK2)
    # a blob relabelled to another key (same bytes, other name) fails its tag
    p = parse_blob(other.ciphertext_blob)
    relabelled = (bytes([1, len(KEK)]) + KEK.encode() + struct.pack(">I", 1) + p["nonce"] +
                  struct.pack(">I", len(p["ct"])) + p["ct"] + p["tag"])
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=relabelled, context=CTX),
            grpc.StatusCode.INVALID_ARGUMENT, "does not decrypt")
    # a version that does not exist, a key that does not exist
    future = blob[:2 + len(KEK)] + struct.pack(">I", 99) + blob[6 + len(KEK):]
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=future, context=CTX),
            grpc.StatusCode.INVALID_ARGUMENT, "version 99")
    ghost = bytes([1, 5]) + b"ghost" + blob[2 + len(KEK):]
    refused(es.Decrypt, es.m.DecryptRequest(ciphertext_blob=ghost, context=CTX),
            grpc.StatusCode.NOT_FOUND, "'ghost' not found")
    env.assert_still_serving()


def test_bad_input(env, pb, es):
    m = es.m
    gdk = es.GenerateDataKey
    refused(gdk, m.GenerateDataKeyRequest(key_name=KEK), grpc.StatusCode.INVALID_ARGUMENT,
            "context is required")
    big = {"k%02d" % i: "v" for i in range(33)}
    refused(gdk, m.GenerateDataKeyRequest(key_name=KEK, context=big),
            grpc.StatusCode.INVALID_ARGUMENT, "at most 32")
    refused(gdk, m.GenerateDataKeyRequest(key_name=KEK, context={"k" * 65: "v"}),
            grpc.StatusCode.INVALID_ARGUMENT, "keys are 1..64 bytes")
    refused(gdk, m.GenerateDataKeyRequest(key_name=KEK, context={"k": "v" * 257}),
            grpc.StatusCode.INVALID_ARGUMENT, "1..256 bytes")
    refused(gdk, m.GenerateDataKeyRequest(key_name=KEK, context={"k": "a\tb"}),
            grpc.StatusCode.INVALID_ARGUMENT, "without control characters")
    # a context value that is not UTF-8, by hand on the wire
    entry = b"\x0a\x01k\x12\x02\xff\xfe"
    wire = m.GenerateDataKeyRequest(key_name=KEK).SerializeToString() + \
        b"\x12" + bytes([len(entry)]) + entry
    err = bsutil.rpc_error(es.raw("GenerateDataKey"), wire)
    assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    refused(gdk, m.GenerateDataKeyRequest(key_name="no-such-kek", context=CTX),
            grpc.StatusCode.NOT_FOUND, "not found")
    refused(gdk, m.GenerateDataKeyRequest(key_name="bad name", context=CTX),
            grpc.StatusCode.INVALID_ARGUMENT, "key name")
    client = env.client()
    client.CreateKey(pb.CreateKeyRequest(name="it-env-generic", purpose=pb.GENERIC,
                                         algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    refused(gdk, m.GenerateDataKeyRequest(key_name="it-env-generic", context=CTX),
            grpc.StatusCode.FAILED_PRECONDITION, "not a key-encryption key")
    refused(gdk, m.GenerateDataKeyRequest(key_name=HMAC_KEY, context=CTX),
            grpc.StatusCode.FAILED_PRECONDITION, "not a key-encryption key")
    # keys: envelope purpose and secret algorithms go together
    for purpose, alg in ((pb.ENVELOPE, pb.ECDSA_P256_SHA256), (pb.GENERIC, pb.AES_256_GCM),
                         (pb.OTA, pb.HMAC_SHA256)):
        err = bsutil.rpc_error(client.CreateKey, pb.CreateKeyRequest(
            name="it-env-mismatch", purpose=purpose, algorithm=alg))
        assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    err = bsutil.rpc_error(client.GetPublicKey, pb.GetPublicKeyRequest(name=KEK))
    assert status_of(err) == grpc.StatusCode.FAILED_PRECONDITION
    assert "no public key" in err.details()
    err = bsutil.rpc_error(client.Sign, pb.SignRequest(key_name=KEK, message=b"x"))
    assert status_of(err) == grpc.StatusCode.FAILED_PRECONDITION
    env.assert_still_serving()


def test_tokenize(env, pb, es):
    m = es.m
    r = es.Tokenize(m.TokenizeRequest(key_name=HMAC_KEY, namespace="driver-id",
                                      values=["D-1001", "D-1002", "D-1001"]), timeout=30)
    assert len(r.tokens) == 3 and r.tokens[0] == r.tokens[2] != r.tokens[1]
    assert all(len(t) == 43 and len(base64.urlsafe_b64decode(t + "=")) == 32 for t in r.tokens)
    again = es.Tokenize(m.TokenizeRequest(key_name=HMAC_KEY, namespace="driver-id",
                                          values=["D-1001"]), timeout=30)
    assert again.tokens[0] == r.tokens[0] and again.key_version == 1
    vin = es.Tokenize(m.TokenizeRequest(key_name=HMAC_KEY, namespace="vin", values=["D-1001"]),
                      timeout=30)
    assert vin.tokens[0] != r.tokens[0]
    # a rotation gives new tokens; the old version can be pinned for joins
    env.client().RotateKey(pb.RotateKeyRequest(name=HMAC_KEY), timeout=30)
    new = es.Tokenize(m.TokenizeRequest(key_name=HMAC_KEY, namespace="driver-id",
                                        values=["D-1001"]), timeout=30)
    assert new.key_version == 2 and new.tokens[0] != r.tokens[0]
    pinned = es.Tokenize(m.TokenizeRequest(key_name=HMAC_KEY, namespace="driver-id",
                                           values=["D-1001"], key_version=1), timeout=30)
    assert pinned.tokens[0] == r.tokens[0]
    refused(es.Tokenize, m.TokenizeRequest(key_name=HMAC_KEY, namespace="Driver ID",
                                           values=["x"]), grpc.StatusCode.INVALID_ARGUMENT)
    refused(es.Tokenize, m.TokenizeRequest(key_name=HMAC_KEY, namespace="d", values=[""]),
            grpc.StatusCode.INVALID_ARGUMENT)
    refused(es.Tokenize, m.TokenizeRequest(key_name=KEK, namespace="d", values=["x"]),
            grpc.StatusCode.FAILED_PRECONDITION, "not a token key")
    # the values never reach the audit log, nor does a hash of them
    text = open(bsutil.audit_path(env.state_dir), "rb").read()
    assert b"D-1001" not in text
    assert hashlib.sha256(b"D-1001").hexdigest().encode() not in text


def register(env, epb, vid, region):
    _, v = epb
    call = env.good.channel.unary_unary(
        VS + "RegisterVehicle", request_serializer=v.RegisterVehicleRequest.SerializeToString,
        response_deserializer=v.Vehicle.FromString)
    pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    call(v.RegisterVehicleRequest(id=vid, attributes={"region": region},
                                  identity=v.VehicleIdentity(public_key=pub)), timeout=30)


def test_gateway_held_to_its_region(env, pb, epb, es):
    """policy-it.conf: telemetry-gateway may GenerateDataKey with tlm-* keys
    when vehicle.region == principal.region (eu-west-1 for the gateways)."""
    register(env, epb, "env-eu-1", "eu-west-1")
    register(env, epb, "env-us-1", "us-east-2")
    gw = Env(env.client(ident="gw-eu-west-1").channel, es.m)
    r = gw.GenerateDataKey(es.m.GenerateDataKeyRequest(
        key_name=KEK, context={"vehicle_id": "env-eu-1", "stream": "can"}), timeout=30)
    assert len(r.plaintext) == 32
    for ctx in ({"vehicle_id": "env-us-1", "stream": "can"}, {"stream": "can"},
                {"vehicle_id": "env-nowhere", "stream": "can"}):
        refused(gw.GenerateDataKey, es.m.GenerateDataKeyRequest(key_name=KEK, context=ctx),
                grpc.StatusCode.PERMISSION_DENIED)
    # in a batch, per item, in order
    b = gw.GenerateDataKeyBatch(es.m.GenerateDataKeyBatchRequest(key_name=KEK, contexts=[
        es.m.EncryptionContext(entries={"vehicle_id": "env-us-1"}),
        es.m.EncryptionContext(entries={"vehicle_id": "env-eu-1"})]), timeout=30)
    assert b.results[0].status_code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert b.results[1].status_code == 0 and len(b.results[1].plaintext) == 32
    # a batch with nothing allowed is refused as a whole
    refused(gw.GenerateDataKeyBatch, es.m.GenerateDataKeyBatchRequest(key_name=KEK, contexts=[
        es.m.EncryptionContext(entries={"vehicle_id": "env-us-1"})]),
        grpc.StatusCode.PERMISSION_DENIED)
    # ReEncrypt: the destination context is judged too; one naming another vehicle is judged
    # without the source vehicle's attributes, so the region condition cannot hold for it
    m = es.m
    ok = gw.ReEncrypt(m.ReEncryptRequest(
        ciphertext_blob=r.ciphertext_blob, source_context={"vehicle_id": "env-eu-1", "stream": "can"},
        destination_context={"vehicle_id": "env-eu-1", "stream": "archive"}), timeout=30)
    assert ok.key_name == KEK
    refused(gw.ReEncrypt, m.ReEncryptRequest(
        ciphertext_blob=r.ciphertext_blob, source_context={"vehicle_id": "env-eu-1", "stream": "can"},
        destination_context={"vehicle_id": "env-us-1", "stream": "can"}),
        grpc.StatusCode.PERMISSION_DENIED)
    # Encrypt is granted on a context entry: request.context.stream == "can"
    e = gw.Encrypt(es.m.EncryptRequest(key_name=KEK, plaintext=b"x",
                                       context={"vehicle_id": "env-us-1", "stream": "can"}),
                   timeout=30)
    assert e.key_name == KEK
    for ctx in ({"vehicle_id": "env-eu-1", "stream": "gps"}, {"vehicle_id": "env-eu-1"}):
        refused(gw.Encrypt, es.m.EncryptRequest(key_name=KEK, plaintext=b"x", context=ctx),
                grpc.StatusCode.PERMISSION_DENIED)


def test_audit_records_context_and_blob_hash_never_the_key(env, es):
    r = es.GenerateDataKey(es.m.GenerateDataKeyRequest(key_name=KEK, context=CTX), timeout=30)
    es.Decrypt(es.m.DecryptRequest(ciphertext_blob=r.ciphertext_blob, context=CTX), timeout=30)
    recs = bsutil.audit_records(env.state_dir)
    blob_hash = hashlib.sha256(r.ciphertext_blob).hexdigest()
    gen = [x for x in recs if (x.get("method") or "").endswith("EnvelopeService/GenerateDataKey") and
           blob_hash in (x.get("payload_sha256") or [])]
    assert len(gen) == 1, "no GenerateDataKey record with the blob's hash"
    rec = gen[0]
    assert rec["key"] == KEK and rec["key_version"] == 1
    assert rec["fields"]["context"] == '{"day":"2026-12-02","stream":"can","vehicle_id":"env-truck-1"}'
    dec = [x for x in recs if (x.get("method") or "").endswith("EnvelopeService/Decrypt")]
    assert dec and dec[-1]["result"] == "OK" and dec[-1]["payload_sha256"] == [blob_hash]
    # the data key in no form in the audit log or the daemon's log
    forms = [r.plaintext.hex().encode(), base64.b64encode(r.plaintext),
             base64.urlsafe_b64encode(r.plaintext).rstrip(b"="), r.plaintext]
    for path in (bsutil.audit_path(env.state_dir), env.log):
        data = open(path, "rb").read()
        for f in forms:
            assert f not in data, "a plaintext data key reached %s" % path
