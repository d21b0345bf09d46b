# test_audit.py - the tamper-evident audit log against the real daemon: a
# record for every RPC with the documented fields and no secret, the
# seq/prev chain, signed checkpoints checked by Go's golang.org/x/mod/sumdb/
# note (tests/tools/noteverify) and by python3-cryptography, RFC 6962 roots
# recomputed here, inclusion and consistency proofs from AuditService
# verified with RFC 9162 code written here (auditutil.py), ReadRecords,
# AuditService authorization, `boltseal audit verify` on untouched and
# tampered copies, the daemon refusing to start on a tampered or truncated
# log, and the repair of a torn last line.

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import auditutil
import bsutil
from auditutil import (check_chain, flip, leaf_hash, mth, mth_of_hashes, read_lines,
                       verify_consistency, verify_inclusion)
from bsutil import rpc_error

ORIGIN = "boltseal.local/audit"
INVALID = grpc.StatusCode.INVALID_ARGUMENT

needs_cli = pytest.mark.skipif(not auditutil.cli_verify_available(), reason=auditutil.CLI_MISSING)


@pytest.fixture(scope="module")
def apb():
    d = tempfile.mkdtemp(prefix="bs-it-auditstubs-")
    try:
        yield auditutil.generate_audit_stubs(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _audit_client(env, apb, ident):
    cert, key = env.client_files(ident)
    return auditutil.AuditClient(bsutil.make_channel(env.port, env.ca, cert, key), apb)


@pytest.fixture(scope="module")
def aud(env, apb):
    """An AuditService client of the session daemon as audit-ext (auditor role)."""
    c = _audit_client(env, apb, "audit-ext")
    yield c
    c.close()


def session_lines(env):
    return read_lines(env.state_dir)


def cert_sha256(env, ident):
    pem = bsutil.read(env.client_files(ident)[0])
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def uri_of(ident):
    return {
        "ci-ota-release": "spiffe://fleet.example/ci/ota-release",
        "log-ota-log": "spiffe://fleet.example/log/ota-log",
        "audit-ext": "spiffe://fleet.example/audit/ext",
    }[ident]


# --- records ------------------------------------------------------------------------

def test_record_for_every_rpc(env, pb, good):
    """Each call leaves exactly its record, in call order, with the request's
    fields; CreateKey and RotateKey also leave their "key" record, written
    before the change and before the call's own record; no secret reaches
    the file."""
    key = "it-aud-" + os.urandom(4).hex()
    secret_msgs = [b"audit-secret-message-" + os.urandom(12).hex().encode() for _ in range(4)]
    digest = hashlib.sha256(b"a digest-signed message").digest()
    denied = env.client(ident="log-ota-log")
    before = len(session_lines(env))

    good.CreateKey(pb.CreateKeyRequest(name=key, purpose=pb.GENERIC,
                                       algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    good.Sign(pb.SignRequest(key_name=key, message=secret_msgs[0]), timeout=15)
    good.Sign(pb.SignRequest(key_name=key, digest=digest), timeout=15)
    rb = good.SignBatch(pb.SignBatchRequest(key_name=key, items=[
        pb.SignBatchItem(message=m) for m in secret_msgs[1:]]), timeout=15)
    assert [r.status_code for r in rb.results] == [0, 0, 0]
    e = rpc_error(good.GetKey, pb.GetKeyRequest(name=key + "-missing"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    e = rpc_error(good.Sign, pb.SignRequest(key_name=key, digest=b"short"))
    assert e.code() == INVALID, e
    e = rpc_error(denied.Sign, pb.SignRequest(key_name=key, message=b"denied"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
    good.RotateKey(pb.RotateKeyRequest(name=key), timeout=30)
    good.Sign(pb.SignRequest(key_name=key, message=b"after rotation"), timeout=15)

    lines = session_lines(env)
    all_recs = [json.loads(l) for l in lines[before:]]
    recs = [r for r in all_recs if r["type"] != "key"]
    S = "boltseal.v1.KeyService/"
    expected = [
        (S + "CreateKey", "OK", 1, "key_created", []),
        (S + "Sign", "OK", 1, None, [hashlib.sha256(secret_msgs[0]).hexdigest()]),
        (S + "Sign", "OK", 1, None, [digest.hex()]),
        (S + "SignBatch", "OK", 1, None, [hashlib.sha256(m).hexdigest() for m in secret_msgs[1:]]),
        (S + "GetKey", "NOT_FOUND", None, None, []),
        (S + "Sign", "INVALID_ARGUMENT", None, None, []),
        (S + "Sign", "PERMISSION_DENIED", None, None, []),
        (S + "RotateKey", "OK", 2, "key_rotated", []),
        (S + "Sign", "OK", 2, None, [hashlib.sha256(b"after rotation").hexdigest()]),
    ]
    got = [(r["method"], r["result"], r["key_version"], r["event"], r["payload_sha256"])
           for r in recs]
    assert got == expected, "records after line %d:\n%s" % (before, "\n".join(
        l.decode() for l in lines[before:]))

    # the key changes' own records (docs/audit.md, "Key changes")
    keyrecs = [(i, r) for i, r in enumerate(all_recs) if r["type"] == "key"]
    assert [(r["method"], r["event"], r["key"], r["key_version"], r["result"], r["reason"])
            for _, r in keyrecs] == [
        (S + "CreateKey", "key_created", key, 1, "OK", None),
        (S + "RotateKey", "key_rotated", key, 2, "OK", None)], keyrecs
    for i, kr in keyrecs:
        assert list(kr.keys()) == list(auditutil.FIELDS) + ["fields"], kr
        assert kr["principal_id"] == "ci-ota-release", kr
        assert kr["identity"] == uri_of("ci-ota-release"), kr
        assert kr["fields"]["algorithm"] == "ecdsa-p256-sha256", kr
        assert kr["fields"]["purpose"] == "generic", kr
        assert re.fullmatch(r"[0-9a-f]{64}", kr["fields"]["spki_sha256"]), kr
        # before the call's own record (the answer waited for both)
        own = [j for j, r in enumerate(all_recs)
               if r["type"] == "rpc" and r["request_id"] == kr["request_id"]]
        assert len(own) == 1 and own[0] > i, (kr, own)
        assert kr["cert_sha256"] == all_recs[own[0]]["cert_sha256"] is not None, kr

    good_sha, denied_sha = cert_sha256(env, "ci-ota-release"), cert_sha256(env, "log-ota-log")
    ids = set()
    for i, r in enumerate(recs):
        assert list(r.keys()) == list(auditutil.FIELDS), r
        assert r["type"] == "rpc" and auditutil.TIMESTAMP_RE.match(r["timestamp"]), r
        assert isinstance(r["request_id"], str) and r["request_id"], r
        ids.add(r["request_id"])
        want_key = key + "-missing" if r["method"].endswith("GetKey") else key
        assert r["key"] == want_key, r
        if i == 6:
            assert r["principal_id"] == "log-ota-log" and r["cert_sha256"] == denied_sha, r
            assert r["identity"] == uri_of("log-ota-log"), r
            # the precise reason is in the record (the caller saw "permission denied")
            assert r["reason"] and "log-signer" in r["reason"], r
        else:
            assert r["principal_id"] == "ci-ota-release" and r["cert_sha256"] == good_sha, r
            assert r["identity"] == uri_of("ci-ota-release"), r
        if r["result"] == "OK":
            assert r["reason"] is None, r
        else:
            assert isinstance(r["reason"], str) and r["reason"], r
    assert len(ids) == len(recs), "request_id not unique per call"

    data = b"\n".join(lines)
    for m in secret_msgs + [b"denied", b"after rotation"]:
        assert m not in data, "a signed message appears in the audit log"
        assert base64.b64encode(m) not in data
    assert env.pin.encode() not in data, "the token PIN appears in the audit log"
    so_pin = bsutil.read(os.path.join(env.tokdir, "so.pin"))
    assert so_pin not in data


def test_start_and_key_records(env):
    recs = [json.loads(l) for l in session_lines(env)]
    starts = [r for r in recs if r["type"] == "start"]
    assert starts and starts[0]["event"] == "start" and starts[0]["result"] == "OK"
    # the daemon created its audit key on first start and said so, before "start"
    ak = [i for i, r in enumerate(recs) if r["type"] == "key" and r["key"] == "audit-log"]
    assert ak and recs[ak[0]]["event"] == "key_created" and recs[ak[0]]["key_version"] == 1
    assert ak[0] < recs.index(starts[0])
    for r in recs:
        # "fields" only on records given fields (the key records of CreateKey/RotateKey)
        want = list(auditutil.FIELDS) + (["fields"] if "fields" in r else [])
        assert list(r.keys()) == want, r
        assert auditutil.TIMESTAMP_RE.match(r["timestamp"]), r


def test_chain(env):
    lines = session_lines(env)
    assert len(lines) > 5
    check_chain(lines)
    # and the check can fail: a changed line breaks the next one's prev
    bad = list(lines)
    bad[2] = bad[2].replace(b'"result":"OK"', b'"result":"OK" ')
    assert bad[2] != lines[2]
    with pytest.raises(AssertionError, match="line 3: prev"):
        check_chain(bad)


# --- checkpoints -----------------------------------------------------------------------

def test_checkpoint_verifies(env, pb, good, aud):
    target = len(session_lines(env))
    cp = aud.wait_checkpoint(target)
    note = cp.note
    lines = session_lines(env)
    n = cp.tree_size
    assert target <= n <= cp.log_size <= len(lines)

    # Go's reference implementation accepts it and prints the text
    rc, out, err = auditutil.go_verify_note(note, cp.verifier_key)
    assert rc == 0, "noteverify rejected the checkpoint: %s" % err
    text, sigs = auditutil.split_note(note)
    assert out.encode() == text
    origin, size, root = auditutil.parse_checkpoint_text(text)
    assert (origin, size, root) == (ORIGIN, n, cp.root_hash)
    assert text == ("%s\n%d\n%s\n" % (ORIGIN, n, base64.b64encode(root).decode())).encode()
    assert [s[0] for s in sigs] == [ORIGIN] and len(sigs[0][1]) == 68

    # python3-cryptography with a vkey parsed here
    name, kid, pub = auditutil.parse_vkey(cp.verifier_key)
    assert name == ORIGIN and sigs[0][1][:4] == kid
    ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(sigs[0][1][4:], text)
    assert auditutil.py_verify_note(note, cp.verifier_key)

    # the root is the RFC 6962 root of the file's first tree_size lines
    assert mth(lines[:n]) == root
    assert mth(lines[:n - 1]) != root

    # the vkey file, the stored note, and the HSM key's public half
    adir = auditutil.audit_dir(env.state_dir)
    assert bsutil.read(os.path.join(adir, "vkey")) == cp.verifier_key.encode() + b"\n"
    assert auditutil.checkpoint_files(adir)[n] == note
    r = good.GetPublicKey(pb.GetPublicKeyRequest(name="audit-log"), timeout=15)
    spki = serialization.load_der_public_key(r.der)
    assert isinstance(spki, ed25519.Ed25519PublicKey)
    assert r.der[-32:] == pub
    assert spki.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == pub
    k = good.GetKey(pb.GetKeyRequest(name="audit-log"), timeout=15).key
    assert k.purpose == pb.AUDIT and k.algorithm == pb.ED25519

    # both verifiers reject a flipped signature byte and a changed tree size
    sig_at = note.rindex(b" ") + 10      # a base64 character of the signature
    bad = note[:sig_at] + (b"B" if note[sig_at:sig_at + 1] == b"A" else b"A") + note[sig_at + 1:]
    assert bad != note
    assert auditutil.go_verify_note(bad, cp.verifier_key)[0] == 1
    assert not auditutil.py_verify_note(bad, cp.verifier_key)
    other = note.replace(b"\n%d\n" % n, b"\n%d\n" % (n + 1), 1)
    assert auditutil.go_verify_note(other, cp.verifier_key)[0] == 1
    assert not auditutil.py_verify_note(other, cp.verifier_key)


PN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PN_TEXT = (b"If you think cryptography is the answer to your problem,\n"
           b"then you don't know what your problem is.\n")
PN_NOTE = PN_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
                     "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1T"
             "nagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n").encode()


@pytest.mark.parametrize("vkey,note", [(PN_VKEY, PN_NOTE), (C2SP_VKEY, C2SP_NOTE)],
                         ids=["PeterNeumann", "c2sp-example"])
def test_signed_note_vectors(vkey, note):
    """wire-formats §2.2: the harness (Go verifier and the Python one) accepts
    the published notes and rejects them once a byte is flipped."""
    rc, out, err = auditutil.go_verify_note(note, vkey)
    assert rc == 0, err
    assert out.encode() == auditutil.split_note(note)[0]
    assert auditutil.py_verify_note(note, vkey)
    for pos in (len(note) - 10, 3):
        bad = flip(note, pos)
        rc, _, _ = auditutil.go_verify_note(bad, vkey)
        assert rc == 1, "noteverify accepted a note with byte %d flipped" % pos
        assert not auditutil.py_verify_note(bad, vkey)
    # a vkey whose hash does not match its key is refused by Go
    name, _, b64 = vkey.split("+", 2)
    assert auditutil.go_verify_note(note, name + "+00000000+" + b64)[0] == 1


def test_python_merkle_reference_vectors():
    """wire-formats §3.4 (transparency-dev): the Python tree code of this
    suite is right, so its verdicts on the daemon's proofs mean something."""
    leaves = auditutil.REF_LEAVES
    roots = [r.hex() for r in auditutil.REF_ROOTS]
    for n, want in enumerate(roots):
        assert mth(leaves[:n]).hex() == want, n
    H = bytes.fromhex
    proof = [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
             H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
             H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]
    assert verify_inclusion(0, 8, leaf_hash(leaves[0]), proof, H(roots[8]))
    assert not verify_inclusion(1, 8, leaf_hash(leaves[0]), proof, H(roots[8]))
    assert not verify_inclusion(0, 8, leaf_hash(leaves[1]), proof, H(roots[8]))
    assert not verify_inclusion(0, 8, leaf_hash(leaves[0]), proof[:2], H(roots[8]))
    # consistency proofs built here by RFC 6962 §2.1.2 for every pair of sizes
    hs = [leaf_hash(d) for d in leaves]

    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [mth_of_hashes(d)]
        k = auditutil._largest_pow2_below(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth_of_hashes(d[k:])]
        return subproof(m - k, d[k:], False) + [mth_of_hashes(d[:k])]
    for n in range(1, 9):
        for m in range(1, n + 1):
            p = subproof(m, hs[:n], True)
            assert verify_consistency(m, n, H(roots[m]), H(roots[n]), p), (m, n)
            if m < n:
                assert not verify_consistency(m, n, H(roots[n]), H(roots[m]), p), (m, n)
                assert not verify_consistency(m, n, H(roots[m]), H(roots[n]),
                                              [flip(p[0], 0)] + p[1:]), (m, n)


# --- proofs --------------------------------------------------------------------------------

def inclusion_len(index, size):
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def test_inclusion_proofs(env, apb, aud):
    cp = aud.wait_checkpoint(max(len(session_lines(env)), 4))
    n = cp.tree_size
    lines = session_lines(env)
    for idx in sorted({0, 1, n // 3, n // 2, n - 2, n - 1}):
        r = aud.GetInclusionProof(apb.GetInclusionProofRequest(leaf_index=idx, tree_size=n),
                                  timeout=15)
        assert (r.leaf_index, r.tree_size, r.root_hash) == (idx, n, cp.root_hash)
        rec = aud.ReadRecords(apb.ReadRecordsRequest(start=idx, max_records=1), timeout=15)
        assert rec.start == idx and len(rec.records) == 1
        assert rec.records[0] == lines[idx]
        assert r.leaf_hash == leaf_hash(lines[idx])
        assert len(r.hashes) == inclusion_len(idx, n), (idx, n, len(r.hashes))
        assert verify_inclusion(idx, n, r.leaf_hash, list(r.hashes), cp.root_hash), idx
        # the verifier can fail: flipped proof byte, wrong leaf, wrong index
        if r.hashes:
            bad = [flip(r.hashes[0], 31)] + list(r.hashes[1:])
            assert not verify_inclusion(idx, n, r.leaf_hash, bad, cp.root_hash)
        assert not verify_inclusion(idx, n, flip(r.leaf_hash, 0), list(r.hashes), cp.root_hash)
        assert not verify_inclusion(idx ^ 1, n, r.leaf_hash, list(r.hashes), cp.root_hash)

    # tree_size 0 = the latest checkpoint (a later one may have been signed meanwhile:
    # the calls above are audited too)
    r = aud.GetInclusionProof(apb.GetInclusionProofRequest(leaf_index=n - 1), timeout=15)
    latest = aud.GetCheckpoint(apb.GetCheckpointRequest(), timeout=15)
    assert n <= r.tree_size <= latest.tree_size
    assert r.root_hash == mth(session_lines(env)[:r.tree_size])
    assert verify_inclusion(n - 1, r.tree_size, leaf_hash(lines[n - 1]), list(r.hashes),
                            r.root_hash)

    # an explicit, smaller tree size (not a checkpoint's): root of that prefix
    m = n // 2 + 1
    r = aud.GetInclusionProof(apb.GetInclusionProofRequest(leaf_index=m - 1, tree_size=m),
                              timeout=15)
    assert r.tree_size == m and r.root_hash == mth(lines[:m])
    assert verify_inclusion(m - 1, m, leaf_hash(lines[m - 1]), list(r.hashes), r.root_hash)

    for idx, size in ((n, n), (5, 3), (0, 10 ** 9), (10 ** 9, 0), (2 ** 63, 0)):
        e = rpc_error(aud.GetInclusionProof,
                      apb.GetInclusionProofRequest(leaf_index=idx, tree_size=size))
        assert e.code() == INVALID, (idx, size, e)


def test_consistency_proofs(env, apb, pb, good, aud):
    cp1 = aud.wait_checkpoint(len(session_lines(env)))
    for i in range(5):
        good.Sign(pb.SignRequest(key_name="it-serving", message=b"consistency %d" % i), timeout=15)
    cp2 = aud.wait_checkpoint(cp1.tree_size + 5)
    assert cp2.tree_size > cp1.tree_size
    for c in (cp1, cp2):
        assert auditutil.py_verify_note(c.note, c.verifier_key)

    r = aud.GetConsistencyProof(apb.GetConsistencyProofRequest(
        first_size=cp1.tree_size, second_size=cp2.tree_size), timeout=15)
    assert (r.first_size, r.second_size) == (cp1.tree_size, cp2.tree_size)
    assert (r.first_root, r.second_root) == (cp1.root_hash, cp2.root_hash)
    assert verify_consistency(cp1.tree_size, cp2.tree_size, cp1.root_hash, cp2.root_hash,
                              list(r.hashes))
    # the verifier can fail
    bad = [flip(r.hashes[0], 7)] + list(r.hashes[1:])
    assert not verify_consistency(cp1.tree_size, cp2.tree_size, cp1.root_hash, cp2.root_hash, bad)
    assert not verify_consistency(cp1.tree_size, cp2.tree_size, cp2.root_hash, cp1.root_hash,
                                  list(r.hashes))
    assert not verify_consistency(cp1.tree_size, cp2.tree_size, cp1.root_hash, cp2.root_hash,
                                  list(r.hashes)[:-1])

    # second_size 0 = the latest checkpoint; other sizes against roots computed here
    r = aud.GetConsistencyProof(apb.GetConsistencyProofRequest(first_size=cp1.tree_size),
                                timeout=15)
    lines = session_lines(env)
    assert r.second_size >= cp2.tree_size and r.second_root == mth(lines[:r.second_size])
    assert verify_consistency(cp1.tree_size, r.second_size, cp1.root_hash, r.second_root,
                              list(r.hashes))
    n = cp2.tree_size
    for m in (1, 2, 3, n // 2, n - 1, n):
        r = aud.GetConsistencyProof(apb.GetConsistencyProofRequest(first_size=m, second_size=n),
                                    timeout=15)
        assert r.first_root == mth(lines[:m]) and r.second_root == cp2.root_hash, m
        assert verify_consistency(m, n, r.first_root, r.second_root, list(r.hashes)), m

    for first, second in ((n, n - 1), (1, 10 ** 9), (2 ** 63, 0)):
        e = rpc_error(aud.GetConsistencyProof,
                      apb.GetConsistencyProofRequest(first_size=first, second_size=second))
        assert e.code() == INVALID, (first, second, e)


def test_read_records_pages(env, apb, aud):
    got = aud.read_all(page=37)
    lines = session_lines(env)
    assert len(lines) >= len(got) > 37
    assert got == lines[:len(got)]
    r = aud.ReadRecords(apb.ReadRecordsRequest(start=0), timeout=15)
    assert r.start == 0 and 0 < len(r.records) <= 100 and r.records == lines[:len(r.records)]
    assert len(r.records) == min(100, r.log_size)
    e = rpc_error(aud.ReadRecords, apb.ReadRecordsRequest(start=r.log_size + 1000, max_records=5))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e


AUDIT_CALLS = (("GetCheckpoint", "GetCheckpointRequest", {}),
               ("GetInclusionProof", "GetInclusionProofRequest", {"leaf_index": 0}),
               ("GetConsistencyProof", "GetConsistencyProofRequest", {"first_size": 1}),
               ("ReadRecords", "ReadRecordsRequest", {"start": 0, "max_records": 1}))


def test_audit_service_authorization(env, apb, aud):
    aud.wait_checkpoint(2)
    for meth, req, args in AUDIT_CALLS:
        getattr(aud, meth)(getattr(apb, req)(**args), timeout=15)
    before = len(session_lines(env))
    denied = []
    for ident in ("log-ota-log", "svc-dispatch", "gw-eu-west-1", "admin-alice"):
        c = _audit_client(env, apb, ident)
        try:
            for meth, req, args in AUDIT_CALLS:
                e = rpc_error(getattr(c, meth), getattr(apb, req)(**args))
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, (ident, meth, e)
                assert bsutil.denied(e.details()), e.details()
                denied.append(meth)
        finally:
            c.close()
    recs = [json.loads(l) for l in session_lines(env)[before:]]
    assert [r["method"] for r in recs] == ["boltseal.v1.AuditService/" + m for m in denied]
    for r in recs:
        assert r["result"] == "PERMISSION_DENIED"
        assert "grants " + r["method"] in r["reason"], r


# --- offline verification and tampering ------------------------------------------------------

class Sealed:
    """A stopped daemon's audit dir with several checkpoints."""


@pytest.fixture(scope="module")
def sealed(env, apb):
    pb = env.stubs.pb
    inst = auditutil.Instance(env, "sealed")
    s = Sealed()
    try:
        inst.start()
        c = inst.client()
        a = inst.audit_client(apb)
        c.CreateKey(pb.CreateKeyRequest(name="seal", purpose=pb.GENERIC, algorithm=pb.ED25519),
                    timeout=30)
        for rnd in range(3):
            for i in range(8):
                c.Sign(pb.SignRequest(key_name="seal", message=b"round %d msg %d" % (rnd, i)),
                       timeout=15)
            a.wait_checkpoint(len(read_lines(inst.state_dir)))
        inst.close_channels()
        assert inst.stop() == 0
        s.inst = inst
        s.pristine = tempfile.mkdtemp(prefix="bs-it-sealed-")
        s.adir = os.path.join(s.pristine, "audit")
        shutil.copytree(inst.adir, s.adir)
        # the trusted key, kept apart from the copies that get tampered with
        # (`audit verify` never trusts AUDITDIR/vkey on its own)
        s.vkey = bsutil.read(os.path.join(inst.adir, "vkey")).decode().strip()
        s.lines = read_lines(os.path.join(s.adir, "audit.jsonl"))
        s.cps = auditutil.checkpoint_files(s.adir)
        assert len(s.cps) >= 3, sorted(s.cps)
        s.covered = max(s.cps)
        s.work = tempfile.mkdtemp(prefix="bs-it-tamper-")
        yield s
    finally:
        inst.cleanup()
        for d in (getattr(s, "pristine", None), getattr(s, "work", None)):
            if d:
                shutil.rmtree(d, ignore_errors=True)


def tampered_copy(s, name, lines=None, edit_cp=None):
    """A fresh copy of the sealed audit dir with audit.jsonl replaced by lines
    and/or one checkpoint file rewritten by edit_cp(size, note) -> note."""
    d = os.path.join(s.work, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(s.adir, d)
    if lines is not None:
        with open(os.path.join(d, "audit.jsonl"), "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines))
    if edit_cp is not None:
        size, fn = edit_cp
        p = os.path.join(d, "checkpoints", "%020d.note" % size)
        new = fn(bsutil.read(p))
        with open(p, "wb") as f:
            f.write(new)
    return d


def flip_in_string(line):
    """line with one character inside a string value (the timestamp's
    milliseconds) changed: still valid JSON, same length."""
    i = line.index(b'"timestamp":"') + len(b'"timestamp":"') + 22
    assert line[i:i + 1].isdigit() and line[i + 1:i + 2] == b"Z", line
    c = line[i] - 0x30
    out = line[:i] + bytes([0x30 + (c + 1) % 10]) + line[i + 1:]
    json.loads(out)
    return out


def assert_failed_at(s, d, what):
    rc, out = auditutil.cli_verify(d, "--vkey", s.vkey)
    assert rc == 1, "audit verify exit %d (want 1):\n%s" % (rc, out)
    assert "audit verify: FAILED at %s:" % what in out, "want 'FAILED at %s':\n%s" % (what, out)
    return out


def test_sealed_log_verifies_in_python(sealed):
    """The harness' own offline check on the untouched copy (independent of the CLI)."""
    assert auditutil.py_verify_dir(sealed.adir) == len(sealed.lines)
    # consecutive checkpoints are consistent: each root is the root of a prefix
    hs = [leaf_hash(l) for l in sealed.lines]
    for size, note in sealed.cps.items():
        assert auditutil.parse_checkpoint_text(auditutil.split_note(note)[0])[2] == \
            mth_of_hashes(hs[:size])


def test_clean_stop_leaves_no_unsigned_tail(sealed):
    """After a clean stop the latest checkpoint covers the whole log, else
    the records after it (at least the "stop" record) can be rewritten
    without any verifier noticing: "flip any byte" must be caught."""
    covered, n = sealed.covered, len(sealed.lines)
    assert covered == n, (
        "after SIGTERM the latest checkpoint covers %d of %d records: records %d..%d "
        "(types %s) are covered by no signature" % (
            covered, n, covered, n - 1,
            [json.loads(l)["type"] for l in sealed.lines[covered:]]))


@needs_cli
def test_cli_verify_ok(sealed):
    rc, out = auditutil.cli_verify(sealed.adir, "--vkey", sealed.vkey)
    assert rc == 0, out
    assert any(l.startswith("audit verify: OK") for l in out.splitlines()), out
    rc, out = auditutil.cli_verify(sealed.adir, "--vkey", sealed.vkey, "--json")
    assert rc == 0, out
    j = json.loads(out)
    assert j == {"ok": True, "records": len(sealed.lines), "checkpoints": len(sealed.cps),
                 "covered": len(sealed.lines), "uncovered": 0,
                 "first_bad_record": None, "error": None}, j
    # checkpoints signed by some other key do not verify
    rc, out = auditutil.cli_verify(sealed.adir, "--vkey", PN_VKEY)
    assert rc == 1, out
    assert "FAILED at checkpoint" in out, out


def _mid(s):
    return s.covered // 2


def _last(s):
    return s.covered - 1


@needs_cli
@pytest.mark.parametrize("where", ["first", "middle", "last-covered"])
def test_cli_flipped_byte(sealed, where):
    k = {"first": 0, "middle": _mid(sealed), "last-covered": _last(sealed)}[where]
    lines = list(sealed.lines)
    lines[k] = flip_in_string(lines[k])
    d = tampered_copy(sealed, "flip-%d" % k, lines)
    out = assert_failed_at(sealed, d, "record %d" % k)
    rc, out = auditutil.cli_verify(d, "--vkey", sealed.vkey, "--json")
    j = json.loads(out)
    assert rc == 1 and j["ok"] is False and j["first_bad_record"] == k and j["error"], j


@needs_cli
def test_cli_any_byte_of_a_record(sealed):
    """One bit flipped at positions spread over a whole record (structure,
    keys, hex, numbers; the result need not be JSON any more): always
    caught at that record."""
    k = _mid(sealed) + 1
    line = sealed.lines[k]
    wrong = []
    for pos in sorted(set(range(0, len(line), max(1, len(line) // 12))) | {len(line) - 1}):
        lines = list(sealed.lines)
        lines[k] = flip(line, pos)
        rc, out = auditutil.cli_verify(tampered_copy(sealed, "any-%d" % pos, lines), "--vkey",
                                       sealed.vkey)
        if rc != 1 or "audit verify: FAILED at record %d:" % k not in out:
            wrong.append("byte %d (%r): exit %d: %s" % (pos, line[pos:pos + 1], rc, out.strip()))
    assert not wrong, "\n".join(wrong)


@needs_cli
def test_cli_flipped_byte_in_last_record(sealed):
    """The very last record (the "stop" record of a clean shutdown)."""
    k = len(sealed.lines) - 1
    lines = list(sealed.lines)
    lines[k] = flip_in_string(lines[k])
    assert_failed_at(sealed, tampered_copy(sealed, "flip-end", lines), "record %d" % k)


@needs_cli
@pytest.mark.parametrize("where", ["first", "middle"])
def test_cli_deleted_record(sealed, where):
    k = {"first": 0, "middle": _mid(sealed)}[where]
    lines = list(sealed.lines)
    del lines[k]
    assert_failed_at(sealed, tampered_copy(sealed, "del-%d" % k, lines), "record %d" % k)


@needs_cli
@pytest.mark.parametrize("where", ["first", "middle"])
def test_cli_swapped_records(sealed, where):
    k = {"first": 0, "middle": _mid(sealed)}[where]
    lines = list(sealed.lines)
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    assert_failed_at(sealed, tampered_copy(sealed, "swap-%d" % k, lines), "record %d" % k)


@needs_cli
def test_cli_truncated(sealed):
    keep = sealed.covered - 3
    assert_failed_at(sealed, tampered_copy(sealed, "trunc", sealed.lines[:keep]), "record %d" % keep)


@needs_cli
def test_cli_bad_checkpoint_signature(sealed):
    size = sorted(sealed.cps)[len(sealed.cps) // 2]

    def edit(note):
        text, sigs = auditutil.split_note(note)
        name, sig = sigs[0]
        sig = flip(sig, 20)
        return text + ("\n\u2014 %s %s\n" % (name, base64.b64encode(sig).decode())).encode()
    d = tampered_copy(sealed, "badsig", edit_cp=(size, edit))
    assert auditutil.go_verify_note(bsutil.read(os.path.join(d, "checkpoints", "%020d.note" % size)),
                                    bsutil.read(os.path.join(d, "vkey")).decode())[0] == 1
    assert_failed_at(sealed, d, "checkpoint %d" % size)


def _start_on(sealed, lines):
    """Runs the sealed daemon on its audit dir with audit.jsonl = lines;
    returns (exit code, output). The untouched log is put back afterwards."""
    inst = sealed.inst
    shutil.rmtree(inst.adir)
    shutil.copytree(sealed.adir, inst.adir)
    with open(os.path.join(inst.adir, "audit.jsonl"), "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))
    try:
        return inst.run_once(timeout=30)
    finally:
        shutil.rmtree(inst.adir)
        shutil.copytree(sealed.adir, inst.adir)


def test_daemon_refuses_tampered_log(sealed):
    k = _mid(sealed)
    lines = list(sealed.lines)
    lines[k] = flip_in_string(lines[k])
    rc, out = _start_on(sealed, lines)
    assert rc not in (0, None), "boltsealed started on a tampered log:\n" + out[-2000:]
    assert "listening" not in out and "audit" in out, out[-2000:]
    # a reordered log too
    lines = list(sealed.lines)
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    rc, out = _start_on(sealed, lines)
    assert rc not in (0, None), "boltsealed started on a reordered log:\n" + out[-2000:]


def test_daemon_refuses_truncated_log(sealed):
    rc, out = _start_on(sealed, sealed.lines[:sealed.covered - 2])
    assert rc not in (0, None), "boltsealed started on a log shorter than its checkpoint:\n" + \
        out[-2000:]
    assert "listening" not in out and "checkpoint" in out, out[-2000:]


def test_daemon_starts_on_untouched_log(sealed):
    """The refusals above are about the tampering: the same copy, untouched,
    starts (and the new records chain onto the old ones)."""
    inst = sealed.inst
    inst.start()
    assert inst.stop() == 0
    lines = read_lines(inst.state_dir)
    assert lines[:len(sealed.lines)] == sealed.lines and len(lines) > len(sealed.lines)
    check_chain(lines)
    shutil.rmtree(inst.adir)
    shutil.copytree(sealed.adir, inst.adir)


# --- torn tail -----------------------------------------------------------------------------

def test_torn_last_line_repaired(env, apb):
    pb = env.stubs.pb
    inst = auditutil.Instance(env, "torn")
    try:
        inst.start()
        c = inst.client()
        c.CreateKey(pb.CreateKeyRequest(name="torn", purpose=pb.GENERIC,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        for i in range(3):
            c.Sign(pb.SignRequest(key_name="torn", message=b"torn %d" % i), timeout=15)
        inst.audit_client(apb).wait_checkpoint(len(read_lines(inst.state_dir)))
        inst.close_channels()
        assert inst.stop() == 0
        before = read_lines(inst.state_dir)
        n = len(before)
        partial = (b'{"seq":%d,"prev":"%s","timestamp":"2026-01-01T00:00:00.000Z","type":"rpc",'
                   b'"request_id":"torn-tail-marker' % (n, leaf_hash(before[-1]).hex().encode()))
        path = os.path.join(inst.adir, "audit.jsonl")
        with open(path, "ab") as f:
            f.write(partial)

        inst.start()
        c = inst.client()
        c.Sign(pb.SignRequest(key_name="torn", message=b"after repair"), timeout=15)
        inst.audit_client(apb).wait_checkpoint(n + 2)
        inst.close_channels()
        assert inst.stop() == 0

        data = bsutil.read(path)
        assert data.endswith(b"\n") and b"torn-tail-marker" not in data
        lines = read_lines(inst.state_dir)
        assert lines[:n] == before
        recs = check_chain(lines)
        rec = recs[n]
        assert rec["type"] == "recovery" and rec["event"] == "torn_tail_repaired", lines[n]
        assert [r["type"] for r in recs[n + 1:]][:1] == ["start"]
        auditutil.py_verify_dir(inst.adir)
        if auditutil.cli_verify_available():
            # this test trusts its own daemon's key file (it is not about trust)
            vkey = bsutil.read(os.path.join(inst.adir, "vkey")).decode().strip()
            rc, out = auditutil.cli_verify(inst.adir, "--vkey", vkey)
            assert rc == 0, out
    finally:
        inst.cleanup()
