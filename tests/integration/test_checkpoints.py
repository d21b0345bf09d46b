# test_checkpoints.py - boltseal.v1.CheckpointService: transparency-log
# checkpoints (c2sp.org/tlog-checkpoint) signed as C2SP signed notes with an
# HSM Ed25519 key of purpose checkpoint, only when the log stays append-only.
#
# Checked independently of the daemon's C code:
# - an RFC 6962 Merkle tree and RFC 6962 2.1.2 consistency proofs written
#   here from the RFCs, itself checked against the transparency-dev
#   reference tree (testonly/constants.go, /work/shared/specs/wire-formats.md
#   3.4) and its proof vectors, and an RFC 9162 2.1.4.2 verifier that accepts
#   every proof we send as good and rejects every one we send as bad;
# - every note's Ed25519 signature with python3-cryptography from the
#   verifier key, and every note with Go's golang.org/x/mod/sumdb/note
#   (tests/tools/noteverify), the note code itself checked against the Go
#   test vector (PeterNeumann);
# - registration rules, bad input (INVALID_ARGUMENT, nothing stored), 200
#   append-only checkpoints with retries returning the same bytes, forks,
#   shrinks and bad proofs refused (FAILED_PRECONDITION, audited as
#   possible_split_view, nothing stored), two forks asked at once never
#   both signed, the state across SIGKILL, and a policy grant conditioned
#   on request.origin == principal.origin.
import base64
import os
import random
import tempfile
import threading
import time

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import auditutil
import bsutil
from conftest import status_of

CS = "/boltseal.v1.CheckpointService/"
M_SIGN = "boltseal.v1.CheckpointService/SignCheckpoint"
EM_DASH = "\u2014"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
FAILED = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND


# --- RFC 6962 Merkle tree, written from the RFCs ------------------------------------------

# The RFC 6962 hashes, the RFC 9162 consistency check and the reference tree are
# auditutil's (checked there and in test_audit.py against transparency-dev's vectors).
sha256 = auditutil.sha256
leaf_hash = auditutil.leaf_hash
node_hash = auditutil.node_hash
verify_consistency = auditutil.verify_consistency
flip = auditutil.flip
_split = auditutil._largest_pow2_below
REF_LEAVES = auditutil.REF_LEAVES
REF_ROOTS = auditutil.REF_ROOTS


class MerkleTree:
    """Append-only list of leaves; MTH of any prefix and RFC 6962 2.1.2
    consistency proofs PROOF(m, D[n]). Every MTH(D[lo:hi]) is memoised: the
    leaves never change once appended."""

    def __init__(self, leaves=()):
        self.lh = []
        self._memo = {}
        for d in leaves:
            self.append(d)

    def append(self, data):
        self.lh.append(leaf_hash(data))

    def __len__(self):
        return len(self.lh)

    def mth(self, lo, hi):
        n = hi - lo
        assert 0 <= n and hi <= len(self.lh)
        if n == 0:
            return sha256(b"")
        if n == 1:
            return self.lh[lo]
        h = self._memo.get((lo, hi))
        if h is None:
            k = _split(n)
            h = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
            self._memo[(lo, hi)] = h
        return h

    def root(self, n):
        return self.mth(0, n)

    def proof(self, m, n):
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), 0 < m <= n."""
        assert 0 < m <= n <= len(self.lh), (m, n, len(self.lh))
        return self._subproof(m, 0, n, True)

    def _subproof(self, m, lo, hi, b):
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return self._subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self._subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


def leaves(n, fmt=b"leaf %d"):
    return [fmt % i for i in range(n)]


# --- C2SP signed notes, written from the spec ---------------------------------------------

parse_vkey = auditutil.parse_vkey


def open_note(note, vkey):
    """Checks a signed note the way the C2SP spec says (valid UTF-8, no
    control character but newline, text / blank line / signature lines) and
    verifies vkey's Ed25519 signature with python3-cryptography. Returns
    (text bytes, [signature lines as (name, bytes)])."""
    name, kid, pub = parse_vkey(vkey)
    s = note.decode("utf-8")                           # raises on invalid UTF-8
    assert all(ch == "\n" or ord(ch) >= 0x20 for ch in s), "control character in %r" % note
    assert note.endswith(b"\n"), note
    cut = note.rfind(b"\n\n")
    assert cut >= 0, "no blank line in note %r" % note
    text = note[:cut + 1]
    sigs = []
    for line in note[cut + 2:].split(b"\n")[:-1]:
        prefix = (EM_DASH + " ").encode()
        assert line.startswith(prefix), "not a signature line: %r" % line
        n, b64 = line[len(prefix):].decode().split(" ")
        sig = base64.b64decode(b64, validate=True)
        assert base64.b64encode(sig).decode() == b64, "signature base64 not canonical"
        sigs.append((n, sig))
    mine = [sig for n, sig in sigs if n == name and sig[:4] == kid]
    assert len(mine) == 1, "no signature of %s (key id %s) in %r" % (name, kid.hex(), sigs)
    assert len(mine[0]) == 68, len(mine[0])
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(mine[0][4:], text)
    except InvalidSignature:
        raise AssertionError("Ed25519 signature does not verify over %r" % text)
    return text, sigs


def checkpoint_body(origin, size, root, exts=()):
    return ("%s\n%d\n%s\n" % (origin, size, base64.b64encode(root).decode())
            + "".join(e + "\n" for e in exts)).encode()


_vkey_files = {}


def go_verify(note, vkey):
    """(exit code, stdout bytes, stderr text) of Go's noteverify."""
    d = _vkey_files.get("dir")
    if d is None:
        d = _vkey_files["dir"] = tempfile.mkdtemp(prefix="bs-it-cp-notes-")
    vf = _vkey_files.get(vkey)
    if vf is None:
        vf = _vkey_files[vkey] = os.path.join(d, "vkey%d" % len(_vkey_files))
        with open(vf, "w") as f:
            f.write(vkey + "\n")
    nf = os.path.join(d, "note")
    with open(nf, "wb") as f:
        f.write(note)
    p = bsutil.run([auditutil.noteverify_path(), vf, nf], check=False, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def check_signed(resp, vkey, origin, size, root, exts=(), previous_size=None, go=True):
    """A SignCheckpointResponse is exactly body + blank line + one signature
    line of vkey, the signature verifies (python3-cryptography and, when go,
    Go's note.Open), and size/root/previous_size are as asked."""
    body = checkpoint_body(origin, size, root, exts)
    assert resp.size == size and resp.root_hash == root, (resp.size, resp.root_hash.hex())
    if previous_size is not None:
        assert resp.previous_size == previous_size, (resp.previous_size, previous_size)
    note = resp.note
    assert note.startswith(body + b"\n"), "note body %r, expected %r" % (note[:len(body) + 1], body)
    text, sigs = open_note(note, vkey)
    assert text == body
    assert len(sigs) == 1 and sigs[0][0] == origin, sigs
    sigline = note[len(body) + 1:]
    assert sigline == ("%s %s %s\n" % (EM_DASH, origin,
                                       base64.b64encode(sigs[0][1]).decode())).encode()
    if go:
        rc, out, err = go_verify(note, vkey)
        assert rc == 0, "Go's note.Open refused the note (%s): %r" % (err, note)
        assert out == body, (out, body)
    return note


# --- the service's stubs and client ---------------------------------------------------------

@pytest.fixture(scope="module")
def cppb(env):
    outdir = os.path.join(env.workdir, "checkpoint-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/checkpoints.proto"])
    return bsutil._load_module("bs_it_checkpoints_pb2",
                               os.path.join(outdir, "boltseal", "v1", "checkpoints_pb2.py"))


class Cp:
    """CheckpointService callables over one channel, plus helpers."""

    def __init__(self, channel, cppb):
        self.m = cppb
        self.channel = channel
        self._register = channel.unary_unary(
            CS + "RegisterLog", request_serializer=cppb.RegisterLogRequest.SerializeToString,
            response_deserializer=cppb.LogStatus.FromString)
        self._sign = channel.unary_unary(
            CS + "SignCheckpoint",
            request_serializer=cppb.SignCheckpointRequest.SerializeToString,
            response_deserializer=cppb.SignCheckpointResponse.FromString)
        self._status = channel.unary_unary(
            CS + "GetLogStatus", request_serializer=cppb.GetLogStatusRequest.SerializeToString,
            response_deserializer=cppb.LogStatus.FromString)
        # raw request bytes (a string field that is not UTF-8)
        self.register_raw = channel.unary_unary(CS + "RegisterLog",
                                                request_serializer=lambda b: b,
                                                response_deserializer=cppb.LogStatus.FromString)

    def register(self, origin, key_name):
        return self._register(self.m.RegisterLogRequest(origin=origin, key_name=key_name),
                              timeout=30)

    def sign(self, origin, size, root, proof=(), exts=()):
        return self._sign(self.m.SignCheckpointRequest(
            origin=origin, size=size, root_hash=root, extensions=list(exts),
            consistency_proof=list(proof)), timeout=30)

    def status(self, origin):
        return self._status(self.m.GetLogStatusRequest(origin=origin), timeout=30)


def refused(fn, *args, **kw):
    """The grpc.RpcError fn raises (fails if it answers)."""
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected a refusal, got an answer: %r" % (r,))


def readable(details):
    return bool(details) and all(ch.isprintable() for ch in details)


def raw_pub(der):
    return serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_registered(st, origin, key_name, pub_der):
    assert st.origin == origin and st.key_name == key_name, st
    assert st.size == 0 and st.root_hash == b"" and st.note == b"", st
    name, _, pub = parse_vkey(st.verifier_key)
    assert name == origin
    assert pub == raw_pub(pub_der), "verifier key is not the HSM key's public key"


def sign_records(state_dir, origin, result=None):
    out = []
    for r in bsutil.audit_records(state_dir):
        if r.get("method") != M_SIGN:
            continue
        if (r.get("fields") or {}).get("checkpoint.origin") != origin:
            continue
        if result is not None and r.get("result") != result:
            continue
        out.append(r)
    return out


def check_split_view_record(state_dir, origin, size, root, signed_size, signed_root):
    recs = [r for r in sign_records(state_dir, origin, "FAILED_PRECONDITION")
            if r["fields"].get("checkpoint.root") == root.hex()]
    assert len(recs) == 1, "want one FAILED_PRECONDITION record of root %s for %s, got %r" % (
        root.hex(), origin, recs)
    r = recs[0]
    assert r.get("event") == "possible_split_view", r
    f = r["fields"]
    assert f.get("checkpoint.size") == str(size), f
    assert f.get("checkpoint.signed_size") == str(signed_size), f
    assert f.get("checkpoint.signed_root") == signed_root.hex(), f
    return r


def make_key(client, pb, name, alg=None, purpose=None):
    alg = pb.ED25519 if alg is None else alg
    purpose = pb.CHECKPOINT if purpose is None else purpose
    client.CreateKey(pb.CreateKeyRequest(name=name, purpose=purpose, algorithm=alg), timeout=30)
    return client.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30).der


# --- the reference checks (no daemon) ------------------------------------------------------

# transparency-dev testonly/constants.go (wire-formats.md 3.4)
_H = {  # full values of the hashes the proof vectors abbreviate
    "leaf1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "leaf2": "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "leaf3": "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "leaf4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "leaf6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "l1_1": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "l1_2": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "l1_3": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "l2_0": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "l2_1": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "l1_0": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "mth4_7": "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e",
}
REF_CONSISTENCY = {  # (m, n): proof; the first four are transparency-dev's happy paths
    (1, 8): ("leaf1", "l1_1", "l2_1"),
    (6, 8): ("l1_2", "l1_3", "l2_0"),
    (2, 5): ("l1_1", "leaf4"),
    (6, 7): ("l1_2", "leaf6", "l2_0"),
    (3, 7): ("leaf2", "leaf3", "l1_0", "mth4_7"),
    (4, 7): ("mth4_7",),
}

# golang.org/x/mod/sumdb/note note_test.go (wire-formats.md 2.2)
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n"
           "\n"
           "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
           "fqdngotpRZb6KE6RyyBwJnAM=\n").encode()


def test_reference_merkle():
    # RFC 6962 hashing vectors (transparency-dev rfc6962_test.go)
    assert sha256(b"").hex() == REF_ROOTS[0].hex()
    assert leaf_hash(b"").hex() == \
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == \
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert node_hash(b"N123", b"N456").hex() == \
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    t = MerkleTree(REF_LEAVES)
    for n, want in enumerate(REF_ROOTS):
        assert t.root(n) == want, "root of %d leaves: %s" % (n, t.root(n).hex())
    for i, name in ((1, "leaf1"), (2, "leaf2"), (3, "leaf3"), (4, "leaf4"), (6, "leaf6")):
        assert t.lh[i].hex() == _H[name]
    assert t.mth(2, 4).hex() == _H["l1_1"] and t.mth(4, 6).hex() == _H["l1_2"]
    assert t.mth(6, 8).hex() == _H["l1_3"] and t.mth(4, 8).hex() == _H["l2_1"]
    for (m, n), names in REF_CONSISTENCY.items():
        want = [bytes.fromhex(_H[x]) for x in names]
        assert t.proof(m, n) == want, "PROOF(%d, D[%d])" % (m, n)
        assert verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], want), (m, n)
        # the negative shapes of transparency-dev's vectors: truncated, a hash
        # appended or prepended, one bit flipped in each hash
        bads = [want[:-1], want + [want[0]], [want[0]] + want]
        bads += [want[:i] + [flip(want[i], i % 32)] + want[i + 1:] for i in range(len(want))]
        for bad in bads:
            assert not verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], bad), (m, n, bad)
        assert not verify_consistency(m, n, REF_ROOTS[n], REF_ROOTS[m], want)
        if m > 1:
            assert not verify_consistency(m - 1, n, REF_ROOTS[m - 1], REF_ROOTS[n], want)
        if n > m + 1:
            assert not verify_consistency(m, n - 1, REF_ROOTS[m], REF_ROOTS[n - 1], want)
    assert t.proof(8, 8) == [] and verify_consistency(8, 8, REF_ROOTS[8], REF_ROOTS[8], [])
    assert not verify_consistency(0, 8, REF_ROOTS[0], REF_ROOTS[8], [])
    # all pairs of a larger tree of the leaves the tests use
    big = MerkleTree(leaves(70))
    for n in range(1, 71):
        for m in range(1, n + 1):
            p = big.proof(m, n)
            assert verify_consistency(m, n, big.root(m), big.root(n), p), (m, n)
            if m < n:
                assert len(p) <= 2 * n.bit_length()
                assert not verify_consistency(m, n, big.root(m), sha256(b"x"), p)
                if m > 1:
                    assert not verify_consistency(m - 1, n, big.root(m - 1), big.root(n), p), \
                        (m, n)


def test_reference_note():
    """The note code and Go's noteverify agree on the Go test vector."""
    name, kid, pub = parse_vkey(GO_VKEY)
    assert name == "PeterNeumann" and kid.hex() == "c74f20a3"
    assert pub.hex() == "1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6"
    text, sigs = open_note(GO_NOTE, GO_VKEY)
    assert text == GO_NOTE.split(b"\n\n")[0] + b"\n"
    with pytest.raises(AssertionError):
        open_note(GO_NOTE.replace(b"problem,", b"problem;"), GO_VKEY)
    rc, out, err = go_verify(GO_NOTE, GO_VKEY)
    assert rc == 0 and out == text, (rc, err)
    rc, _, _ = go_verify(GO_NOTE.replace(b"problem,", b"problem;"), GO_VKEY)
    assert rc != 0
    # a note of our own making, signed with python3-cryptography, as the service should
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(sha256(b"test_reference_note"))
    pubraw = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
    origin = "example.com/it/ref"
    raw = b"\x01" + pubraw
    vkey = "%s+%s+%s" % (origin, sha256(origin.encode() + b"\n" + raw)[:4].hex(),
                         base64.b64encode(raw).decode())
    body = checkpoint_body(origin, 8, REF_ROOTS[8], ["Timestamp: 1", "x+y z\u00e9"])
    sig = sha256(origin.encode() + b"\n" + raw)[:4] + sk.sign(body)
    note = body + ("\n%s %s %s\n" % (EM_DASH, origin, base64.b64encode(sig).decode())).encode()
    resp = type("R", (), {"note": note, "size": 8, "root_hash": REF_ROOTS[8],
                          "previous_size": 0})()
    check_signed(resp, vkey, origin, 8, REF_ROOTS[8], ["Timestamp: 1", "x+y z\u00e9"], 0)


# --- 1. registration and bad input ---------------------------------------------------------

BAD_ORIGINS = [
    ("", "empty"),
    ("example.com/a b", "space"),
    ("example.com/a\u00a0b", "Unicode space (NBSP; Go's unicode.IsSpace)"),
    ("example.com/a+b", "plus"),
    ("example.com/a\x01b", "control character"),
    ("example.com/a\tb", "tab"),
    ("example.com/a\nb", "newline"),
    ("example.com/" + "a" * 244, "256 bytes"),
    ("example.com/" + "\u00e9" * 122, "256 bytes of UTF-8, 134 characters"),
]


def test_register_and_bad_input(env, pb, cppb):
    c = env.client()
    cp = Cp(c.channel, cppb)
    pub = make_key(c, pb, "cp-it-reg")
    pub_long = make_key(c, pb, "cp-it-reg-long")
    pub_other = make_key(c, pb, "cp-it-reg-other")
    make_key(c, pb, "cp-it-reg-generic", purpose=pb.GENERIC)
    try:
        make_key(c, pb, "cp-it-reg-p256", alg=pb.ECDSA_P256_SHA256)
        have_p256 = True
    except grpc.RpcError as e:     # refusing such a key at creation is as good
        assert status_of(e) in (INVALID, FAILED), e
        have_p256 = False

    origin = "example.com/it/reg"
    st = cp.register(origin, "cp-it-reg")
    check_registered(st, origin, "cp-it-reg", pub)
    assert st.registered_at > 0, st
    assert cp.status(origin) == st
    # 255 bytes is the longest valid name; Go accepts it as a vkey name
    long_origin = "example.com/" + "a" * 243
    assert len(long_origin.encode()) == 255
    check_registered(cp.register(long_origin, "cp-it-reg-long"), long_origin, "cp-it-reg-long",
                     pub_long)

    # registration refusals
    for bad, why in BAD_ORIGINS:
        e = refused(cp.register, bad, "cp-it-reg-other")
        assert status_of(e) == INVALID, (why, e)
        assert readable(e.details()) and "origin" in e.details().lower(), (why, e.details())
    # an origin that is not UTF-8 at all (raw protobuf: field 1 = b"\xff", field 2 = key)
    e = refused(cp.register_raw, b"\x0a\x03a\xffb\x12\x0fcp-it-reg-other", timeout=30)
    assert status_of(e) == INVALID, e
    cases = [("example.com/it/generic", "cp-it-reg-generic", FAILED),
             ("example.com/it/nokey", "cp-it-no-such-key", NOT_FOUND),
             (origin, "cp-it-reg", grpc.StatusCode.ALREADY_EXISTS),
             (origin, "cp-it-reg-other", grpc.StatusCode.ALREADY_EXISTS)]
    if have_p256:
        cases.insert(0, ("example.com/it/p256", "cp-it-reg-p256", FAILED))
    for o, k, code in cases:
        e = refused(cp.register, o, k)
        assert status_of(e) == code, (o, k, e)
        assert readable(e.details()), e.details()
    for o in ("example.com/it/p256", "example.com/it/generic", "example.com/it/nokey",
              "example.com/it/never"):
        assert status_of(refused(cp.status, o)) == NOT_FOUND, o
    assert cp.status(origin) == st                   # ALREADY_EXISTS changed nothing
    # the refusals stored nothing: the origin is still free
    check_registered(cp.register("example.com/it/p256", "cp-it-reg-other"),
                     "example.com/it/p256", "cp-it-reg-other", pub_other)

    # SignCheckpoint: bad input, each INVALID_ARGUMENT, nothing stored
    t = MerkleTree(leaves(8))
    root = t.root(8)
    h = sha256(b"h")
    bad_calls = [
        (dict(size=8, root=b""), "root", "empty root_hash"),
        (dict(size=8, root=root[:31]), "root", "31-byte root_hash"),
        (dict(size=8, root=root + b"\0"), "root", "33-byte root_hash"),
        (dict(size=0, root=root), "size", "size 0"),
        (dict(size=8, root=root, proof=[h] * 65), "proof", "65 proof hashes"),
        (dict(size=8, root=root, proof=[h[:31]]), "proof", "a 31-byte proof hash"),
        (dict(size=8, root=root, proof=[h, h + b"\0"]), "proof", "a 33-byte proof hash"),
        (dict(size=8, root=root, proof=[b""]), "proof", "an empty proof hash"),
        (dict(size=8, root=root, exts=["e%d" % i for i in range(17)]), "extension",
         "17 extension lines"),
        (dict(size=8, root=root, exts=["ok", ""]), "extension", "an empty extension line"),
        (dict(size=8, root=root, exts=["x" * 257]), "extension", "a 257-byte extension"),
        (dict(size=8, root=root, exts=["\u00e9" * 129]), "extension",
         "a 258-byte extension of 129 characters"),
        (dict(size=8, root=root, exts=["a\nb"]), "extension", "a newline in an extension"),
        (dict(size=8, root=root, exts=["a\x01b"]), "extension", "\\x01 in an extension"),
        (dict(size=8, root=root, exts=["a\tb"]), "extension", "a tab in an extension"),
        (dict(size=8, root=root, exts=["a\rb"]), "extension", "CR in an extension"),
    ]
    for kw, hint, why in bad_calls:
        e = refused(cp.sign, origin, **kw)
        assert status_of(e) == INVALID, (why, e)
        assert readable(e.details()) and hint in e.details().lower(), (why, e.details())
        assert cp.status(origin) == st, why
    for bad, why in BAD_ORIGINS:
        e = refused(cp.sign, bad, 8, root)
        assert status_of(e) == INVALID, (why, e)
        assert readable(e.details()) and "origin" in e.details().lower(), (why, e.details())
    e = refused(cp.sign, "example.com/it/never", 8, root)
    assert status_of(e) == NOT_FOUND and readable(e.details()), e
    # a first checkpoint has nothing to be proved against: a proof is refused
    # (the code is not specified: INVALID_ARGUMENT or FAILED_PRECONDITION)
    e = refused(cp.sign, origin, 8, root, proof=t.proof(4, 8))
    assert status_of(e) in (INVALID, FAILED), e
    assert cp.status(origin) == st

    # the limits themselves are accepted: 16 lines, 256 bytes (ASCII or UTF-8)
    exts = ["Timestamp: 1706845443714164712", "x" * 256, "\u00e9" * 128,
            "a+b c/d \u2014 \u00fc"] + ["line %d" % i for i in range(12)]
    assert len(exts) == 16
    r = cp.sign(origin, 8, root, exts=exts)
    note = check_signed(r, st.verifier_key, origin, 8, root, exts, previous_size=0)
    now = cp.status(origin)
    assert (now.size, now.root_hash, now.note, now.verifier_key) == (8, root, note,
                                                                     st.verifier_key)
    assert now.registered_at == st.registered_at and now.updated_at >= st.registered_at
    # the other log is untouched
    assert cp.status(long_origin).size == 0
    c.close()


# --- 2. 200 append-only checkpoints --------------------------------------------------------

EXTENSIONS = ["Timestamp: %d", "witness: example.net/w%d", "caf\u00e9 %d", "k+v=%d / x"]


def test_append_only_200_checkpoints(env, pb, cppb):
    c = env.client()
    cp = Cp(c.channel, cppb)
    make_key(c, pb, "cp-it-append")
    origin = "example.com/it/append"
    st = cp.register(origin, "cp-it-append")
    vkey = st.verifier_key
    rng = random.Random(20240601)
    tree = MerkleTree()
    prev_size, prev_root, last = 0, None, None
    signed = {}
    retries = 0
    t0 = time.monotonic()
    for i in range(200):
        size = prev_size + rng.randint(1, 20)
        while len(tree) < size:
            tree.append(b"leaf %d" % len(tree))
        root = tree.root(size)
        proof = tree.proof(prev_size, size) if prev_size else []
        if prev_size:
            assert verify_consistency(prev_size, size, prev_root, root, proof)
        exts = [rng.choice(EXTENSIONS) % i] if rng.random() < 0.3 else []
        if rng.random() < 0.05:
            exts.append("second line %d" % i)
        r = cp.sign(origin, size, root, proof, exts)
        note = check_signed(r, vkey, origin, size, root, exts, previous_size=prev_size)
        signed[size] = root
        if rng.random() < 0.12:
            # a retry: the same request again, or the bare (size, root) with an
            # empty proof; either way the very same note, proved against itself
            retries += 1
            same = rng.random() < 0.5
            rr = cp.sign(origin, size, root, proof if same else [], exts if same else [])
            assert rr.note == note, "retry %d (%s) returned other bytes" % (
                i, "same request" if same else "empty proof")
            assert (rr.size, rr.root_hash, rr.previous_size) == (size, root, size), rr
        if i % 25 == 24:
            now = cp.status(origin)
            assert (now.size, now.root_hash, now.note) == (size, root, note)
        prev_size, prev_root, last = size, root, note
    elapsed = time.monotonic() - t0
    now = cp.status(origin)
    assert (now.origin, now.key_name, now.verifier_key) == (origin, "cp-it-append", vkey)
    assert (now.size, now.root_hash, now.note) == (prev_size, prev_root, last)
    assert retries > 5
    # one OK record per answered call, none with an event
    recs = sign_records(env.state_dir, origin)
    assert all(r["result"] == "OK" and r.get("event") is None for r in recs), \
        [r for r in recs if r["result"] != "OK" or r.get("event") is not None][:3]
    assert len(recs) == 200 + retries, (len(recs), retries)
    assert {int(r["fields"]["checkpoint.size"]): r["fields"]["checkpoint.root"]
            for r in recs} == {s: h.hex() for s, h in signed.items()}
    c.close()
    print("200 checkpoints + %d retries in %.1f s" % (retries, elapsed))


# --- 3. forks, shrinks and bad proofs ------------------------------------------------------

def test_forks_shrinks_and_bad_proofs_refused_and_audited(env, pb, cppb):
    c = env.client()
    cp = Cp(c.channel, cppb)
    make_key(c, pb, "cp-it-forks")
    origin = "example.com/it/forks"
    vkey = cp.register(origin, "cp-it-forks").verifier_key
    t = MerkleTree(leaves(64))
    prev = 0
    for n in (3, 10, 17):
        r = cp.sign(origin, n, t.root(n), t.proof(prev, n) if prev else [])
        check_signed(r, vkey, origin, n, t.root(n), previous_size=prev)
        prev = n
    stored = cp.status(origin)
    assert (stored.size, stored.root_hash) == (17, t.root(17))
    S, R = 17, t.root(17)

    fork = MerkleTree(leaves(17, b"fork %d"))
    garbage = [sha256(b"g%d" % i) for i in range(64)]
    flipped = t.proof(S, 25)
    flipped[len(flipped) // 2] = flip(flipped[len(flipped) // 2], 5, 0x80)
    cases = [
        ("fork: same size, another root", S, fork.root(S), []),
        ("fork: same size, another root, with a proof", S, fork.root(S)[::-1], t.proof(3, S)),
        ("smaller size", 12, t.root(12), []),
        ("an older signed checkpoint again", 10, t.root(10), t.proof(3, 10)),
        ("truncated proof", 23, t.root(23), t.proof(S, 23)[:-1]),
        ("a valid proof from size-1", 24, t.root(24), t.proof(S - 1, 24)),
        ("a proof with one flipped byte", 25, t.root(25), flipped),
        ("an extra hash appended", 26, t.root(26), t.proof(S, 26) + [garbage[0]]),
        ("no proof", 27, t.root(27), []),
        ("a valid proof, another root", 28, sha256(b"not the root of 28"), t.proof(S, 28)),
        ("64 garbage hashes (the most allowed)", 29, t.root(29), garbage),
        ("a proof from the stored size of another tree", 31,
         MerkleTree(leaves(31, b"fork %d")).root(31),
         MerkleTree(leaves(31, b"fork %d")).proof(S, 31)),
    ]
    roots = [x[2] for x in cases]
    assert len(set(roots)) == len(roots)
    for why, n, root, proof in cases:
        if n > S:     # each is a bad proof indeed
            assert not verify_consistency(S, n, R, root, proof), why
        e = refused(cp.sign, origin, n, root, proof)
        assert status_of(e) == FAILED, (why, e)
        assert readable(e.details()), (why, e.details())
        assert cp.status(origin) == stored, why
    for why, n, root, proof in cases:
        check_split_view_record(env.state_dir, origin, n, root, S, R)

    # a good checkpoint is still accepted, against the stored one
    r = cp.sign(origin, 30, t.root(30), t.proof(S, 30), ["after the refusals"])
    note = check_signed(r, vkey, origin, 30, t.root(30), ["after the refusals"], previous_size=S)
    now = cp.status(origin)
    assert (now.size, now.root_hash, now.note) == (30, t.root(30), note)
    assert now.updated_at >= stored.updated_at
    ok = [x for x in sign_records(env.state_dir, origin, "OK")
          if x["fields"].get("checkpoint.root") == t.root(30).hex()]
    assert len(ok) == 1 and ok[0].get("event") is None, ok
    assert ok[0]["fields"]["checkpoint.size"] == "30"
    # and what was refused before against 17 is still refused against 30
    e = refused(cp.sign, origin, S, R, [])
    assert status_of(e) == FAILED
    assert cp.status(origin) == now
    c.close()


# --- 3b. two forks at once: never both signed ------------------------------------------------

def test_concurrent_forks_never_both_signed(env, pb, cppb):
    """Two clients ask at the same time for two different extensions of the
    stored checkpoint (each proved from it, inconsistent with each other):
    one is signed, the other refused (ABORTED by the compare-and-set of
    docs/checkpoints.md, or FAILED_PRECONDITION when it came second), and
    the stored state is the one that was answered."""
    c = env.client()
    make_key(c, pb, "cp-it-race")
    origin = "example.com/it/race"
    vkey = Cp(c.channel, cppb).register(origin, "cp-it-race").verifier_key
    cps = [Cp(bsutil.local_channel(env.port, env.ca, *env.client_files("ci-ota-release")),
              cppb) for _ in range(2)]
    history = leaves(10)
    base = MerkleTree(history)
    cps[0].sign(origin, 10, base.root(10))
    rng = random.Random(7)
    outcomes = {}
    for rnd in range(30):
        n = len(history)
        same_size = rnd % 2 == 0
        branches = []
        for b, tag in enumerate((b"a", b"b")):
            extra = rng.randint(1, 6) if not same_size or b == 0 else len(branches[0][0]) - n
            data = history + [b"%s %d %d" % (tag, rnd, i) for i in range(extra)]
            t = MerkleTree(data)
            branches.append((data, t, t.proof(n, len(data))))
        barrier = threading.Barrier(2)
        results = [None, None]

        def go(i):
            data, t, proof = branches[i]
            barrier.wait(10)
            try:
                results[i] = cps[i].sign(origin, len(data), t.root(len(data)), proof)
            except grpc.RpcError as e:
                results[i] = e
        ths = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(60)
        won = [i for i in range(2) if not isinstance(results[i], grpc.RpcError)]
        assert len(won) == 1, "round %d: %r" % (rnd, results)
        w = won[0]
        lost = results[1 - w]
        assert status_of(lost) in (grpc.StatusCode.ABORTED, FAILED), (rnd, lost)
        outcomes[status_of(lost).name] = outcomes.get(status_of(lost).name, 0) + 1
        data, t, _ = branches[w]
        note = check_signed(results[w], vkey, origin, len(data), t.root(len(data)),
                            previous_size=n, go=False)
        now = cps[0].status(origin)
        assert (now.size, now.root_hash, now.note) == (len(data), t.root(len(data)), note)
        history = data
    for x in cps:
        x.channel.close()
    c.close()
    print("the losers of 30 races: %r" % outcomes)


# --- 4. SIGKILL -------------------------------------------------------------------------

def test_state_survives_kill_9(env, second_daemon, pb, cppb):
    sd = second_daemon("checkpoints")
    d = sd.start()
    files = env.client_files("ci-ota-release")
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *files), env.stubs)
    make_key(c, pb, "cp-durable")
    cp = Cp(c.channel, cppb)
    origin = "example.com/it/durable"
    st = cp.register(origin, "cp-durable")
    t = MerkleTree(leaves(40))
    r1 = cp.sign(origin, 7, t.root(7))
    check_signed(r1, st.verifier_key, origin, 7, t.root(7), previous_size=0)
    r2 = cp.sign(origin, 19, t.root(19), t.proof(7, 19), ["Timestamp: 2"])
    check_signed(r2, st.verifier_key, origin, 19, t.root(19), ["Timestamp: 2"], previous_size=7)
    c.close()
    d.kill()                                          # SIGKILL right after the answer
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *files), env.stubs)
    cp = Cp(c.channel, cppb)
    now = cp.status(origin)
    assert (now.origin, now.key_name, now.verifier_key) == (origin, "cp-durable",
                                                            st.verifier_key)
    assert (now.size, now.root_hash, now.note) == (19, t.root(19), r2.note)
    assert now.registered_at == st.registered_at
    # the retry of the second is the same note, across the restart
    assert cp.sign(origin, 19, t.root(19), t.proof(7, 19), ["Timestamp: 2"]).note == r2.note
    # a proof from the first is refused: the second is what was signed last
    e = refused(cp.sign, origin, 30, t.root(30), t.proof(7, 30))
    assert status_of(e) == FAILED, e
    assert cp.status(origin) == now
    check_split_view_record(sd.state_dir, origin, 30, t.root(30), 19, t.root(19))
    r3 = cp.sign(origin, 30, t.root(30), t.proof(19, 30))
    check_signed(r3, st.verifier_key, origin, 30, t.root(30), previous_size=19)
    assert cp.status(origin).note == r3.note
    c.close()
    bsutil.stop_clean(d)


# --- 5. a grant on request.origin ------------------------------------------------------------

POLICY = """
principal log-ota-log
    uri spiffe://fleet.example/log/ota-log
    attr origin "example.com/log-ota"
    roles cp-log-signer
principal alice
    uri spiffe://fleet.example/admin/alice
    roles cp-admin
role cp-log-signer
    grant
        methods boltseal.v1.CheckpointService/SignCheckpoint
        methods boltseal.v1.CheckpointService/GetLogStatus
        keys log-*
        purposes checkpoint
        when request.origin == principal.origin
role cp-admin
    grant
        methods boltseal.v1.KeyService/CreateKey boltseal.v1.KeyService/GetPublicKey
        keys *
    grant
        methods boltseal.v1.CheckpointService/RegisterLog
        methods boltseal.v1.CheckpointService/GetLogStatus
        keys *
"""


def test_policy_request_origin(env, second_daemon, pb, cppb):
    sd = second_daemon("cp-policy")
    sd.use_policy(POLICY)
    d = sd.start()
    admin = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("admin-alice")),
                          env.stubs)
    make_key(admin, pb, "log-ota")
    make_key(admin, pb, "log-other")
    a = Cp(admin.channel, cppb)
    mine, other = "example.com/log-ota", "example.com/other"
    vkey = a.register(mine, "log-ota").verifier_key
    other_st = a.register(other, "log-other")
    log = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("log-ota-log")),
                        env.stubs)
    x = Cp(log.channel, cppb)
    t = MerkleTree(leaves(20))
    r = x.sign(mine, 5, t.root(5))
    check_signed(r, vkey, mine, 5, t.root(5), previous_size=0)
    r = x.sign(mine, 12, t.root(12), t.proof(5, 12))
    check_signed(r, vkey, mine, 12, t.root(12), previous_size=5)
    assert x.status(mine).size == 12
    denied = [(x.sign, (other, 5, t.root(5))), (x.status, (other,)),
              (x.register, ("example.com/log-ota-2", "log-ota"))]
    for fn, args in denied:
        e = refused(fn, *args)
        assert status_of(e) == grpc.StatusCode.PERMISSION_DENIED, (fn, args, e)
        assert bsutil.denied(e.details()), e.details()
    assert a.status(other) == other_st                # nothing signed for the other log
    recs = [r for r in bsutil.audit_records(sd.state_dir)
            if r.get("method") == M_SIGN and r.get("result") == "PERMISSION_DENIED"]
    assert len(recs) == 1, recs
    assert "request.origin == principal.origin" in recs[0]["reason"], recs[0]
    assert '"example.com/other"' in recs[0]["reason"], recs[0]
    ok = [r for r in bsutil.audit_records(sd.state_dir)
          if r.get("method") == M_SIGN and r.get("result") == "OK"]
    assert [r["fields"]["checkpoint.size"] for r in ok] == ["5", "12"], ok
    assert all(r["fields"]["checkpoint.origin"] == mine for r in ok)
    admin.close()
    log.close()
    bsutil.stop_clean(d)
