# test_checkpoint_witness.py - CheckpointService.CosignCheckpoint: boltseal as
# a witness (C2SP tlog-witness) of a log whose checkpoints are signed by the
# log's own key (made here with python3-cryptography). Each cosignature is
# checked by code written here from the C2SP tlog-cosignature spec (key id
# over 0x04, big-endian timestamp, Ed25519 over "cosignature/v1\ntime T\n"
# and the whole body); the log's note stays valid for Go's note package; the
# history is enforced as for signing (fork, shrink, bad proof refused and
# audited); a note signed by another key, for an unregistered origin, or sent
# to the wrong kind of log is refused.
import base64
import hashlib
import json
import time

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import bsutil
from conftest import status_of
from test_checkpoints import (CS, EM_DASH, Cp, MerkleTree, checkpoint_body,  # noqa: F401
                              cppb, go_verify, leaf_hash)

ORIGIN = "example.org/foreign-log"
WITNESS = "witness.boltseal.test"


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def log_vkey(name, key):
    """The log's signed-note verifier key (type 0x01)."""
    k = b"\x01" + raw_pub(key)
    kid = hashlib.sha256(name.encode() + b"\n" + k).digest()[:4]
    return "%s+%s+%s" % (name, kid.hex(), base64.b64encode(k).decode())


def log_note(name, key, body):
    """The log's own signed note of body."""
    k = b"\x01" + raw_pub(key)
    kid = hashlib.sha256(name.encode() + b"\n" + k).digest()[:4]
    sig = key.sign(body)
    return body + b"\n" + ("%s %s %s\n" % (EM_DASH, name, base64.b64encode(kid + sig).decode())
                           ).encode()


def check_cosignature(line, witness_vkey, body):
    """C2SP tlog-cosignature/v1, written from the spec: returns the timestamp."""
    name, hexid, b64 = witness_vkey.split("+", 2)
    k = base64.b64decode(b64)
    assert name == WITNESS and len(k) == 33 and k[0] == 0x04, witness_vkey
    kid = hashlib.sha256(name.encode() + b"\n" + k).digest()[:4]
    assert kid.hex() == hexid
    prefix = "%s %s " % (EM_DASH, WITNESS)
    assert line.startswith(prefix) and line.endswith("\n"), line
    blob = base64.b64decode(line[len(prefix):-1], validate=True)
    assert len(blob) == 4 + 8 + 64 and blob[:4] == kid, len(blob)
    ts = int.from_bytes(blob[4:12], "big")
    assert ts < 1 << 63
    msg = b"cosignature/v1\ntime %d\n" % ts + body
    ed25519.Ed25519PublicKey.from_public_bytes(k[1:]).verify(blob[12:], msg)   # raises if bad
    return ts


class Witness(Cp):
    """test_checkpoints.Cp's callables (as raw request -> response: register,
    sign_call, status), plus CosignCheckpoint."""

    def __init__(self, channel, m):
        super().__init__(channel, m)
        self.register = self._register
        self.sign_call = self._sign
        self.status = self._status
        self.cosign_call = channel.unary_unary(
            CS + "CosignCheckpoint",
            request_serializer=m.CosignCheckpointRequest.SerializeToString,
            response_deserializer=m.CosignCheckpointResponse.FromString)

    def cosign(self, note, proof=()):
        return self.cosign_call(self.m.CosignCheckpointRequest(note=note,
                                                               consistency_proof=list(proof)),
                                timeout=30)


def test_witness_cosigns_only_a_consistent_history(env, pb, cppb):  # noqa: F811
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="log-witness", purpose=pb.CHECKPOINT,
                                    algorithm=pb.ED25519), timeout=30)
    w = Witness(c.channel, cppb)
    logkey = ed25519.Ed25519PrivateKey.generate()
    vkey = log_vkey(ORIGIN, logkey)
    st = w.register(cppb.RegisterLogRequest(origin=ORIGIN, key_name="log-witness",
                                            log_verifier_key=vkey, witness_name=WITNESS),
                    timeout=30)
    assert st.log_verifier_key == vkey and st.witness_name == WITNESS and st.size == 0
    wvkey = st.verifier_key
    assert wvkey.startswith(WITNESS + "+")
    tree = MerkleTree(b"foreign %d" % i for i in range(40))
    before = int(time.time())
    body3 = checkpoint_body(ORIGIN, 3, tree.root(3), ["extension line"])
    r = w.cosign(log_note(ORIGIN, logkey, body3))
    assert (r.size, r.root_hash, r.previous_size) == (3, tree.root(3), 0)
    ts = check_cosignature(r.cosignature, wvkey, body3)
    assert ts == r.timestamp and before - 5 <= ts <= int(time.time()) + 5   # slack: a clock step
    body20 = checkpoint_body(ORIGIN, 20, tree.root(20))
    note20 = log_note(ORIGIN, logkey, body20)
    r20 = w.cosign(note20, tree.proof(3, 20))
    assert r20.previous_size == 3
    check_cosignature(r20.cosignature, wvkey, body20)
    # a retry gives the same cosignature
    assert w.cosign(note20, tree.proof(3, 20)).cosignature == r20.cosignature
    # the cosigned note keeps the log's signature valid for Go's note package
    st = w.status(cppb.GetLogStatusRequest(origin=ORIGIN), timeout=30)
    assert st.size == 20 and st.note == note20 + r20.cosignature.encode()
    code, out, err = go_verify(st.note, vkey)
    assert code == 0 and out == body20, err
    # the history: fork, shrink, bad proof — refused and audited
    fork = MerkleTree(b"other %d" % i for i in range(40))
    cases = [
        (log_note(ORIGIN, logkey, checkpoint_body(ORIGIN, 20, fork.root(20))), []),
        (log_note(ORIGIN, logkey, checkpoint_body(ORIGIN, 10, tree.root(10))), []),
        (log_note(ORIGIN, logkey, checkpoint_body(ORIGIN, 30, tree.root(30))),
         tree.proof(3, 30)),
    ]
    for note, proof in cases:
        with pytest.raises(grpc.RpcError) as e:
            w.cosign(note, proof)
        assert status_of(e.value) == grpc.StatusCode.FAILED_PRECONDITION, e.value.details()
    recs = [x for x in bsutil.audit_records(env.state_dir)
            if x["method"] == "boltseal.v1.CheckpointService/CosignCheckpoint"
            and x.get("event") == "possible_split_view"]
    assert len(recs) >= 3 and recs[-1]["fields"]["checkpoint.signed_size"] == "20"
    assert recs[-1]["fields"]["checkpoint.origin"] == ORIGIN
    # still at 20, and the next good one is cosigned
    r30 = w.cosign(log_note(ORIGIN, logkey, checkpoint_body(ORIGIN, 30, tree.root(30))),
                   tree.proof(20, 30))
    assert r30.previous_size == 20
    # a note signed by another key with the log's name, junk, an unregistered origin
    other = ed25519.Ed25519PrivateKey.generate()
    bad = [
        (log_note(ORIGIN, other, checkpoint_body(ORIGIN, 31, tree.root(31))),
         grpc.StatusCode.INVALID_ARGUMENT, "log's key"),
        (b"not a note", grpc.StatusCode.INVALID_ARGUMENT, "origin"),
        (log_note("example.org/unknown", logkey, checkpoint_body("example.org/unknown", 1,
                                                                 tree.root(1))),
         grpc.StatusCode.NOT_FOUND, "not registered"),
        (b"", grpc.StatusCode.INVALID_ARGUMENT, "note"),
    ]
    for note, code, words in bad:
        with pytest.raises(grpc.RpcError) as e:
            w.cosign(note, tree.proof(30, 31))
        assert status_of(e.value) == code and words in e.value.details(), e.value.details()
    # the wrong kind of call for the log
    with pytest.raises(grpc.RpcError) as e:
        w.sign_call(cppb.SignCheckpointRequest(origin=ORIGIN, size=31, root_hash=tree.root(31),
                                               consistency_proof=tree.proof(30, 31)), timeout=30)
    assert status_of(e.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert "CosignCheckpoint" in e.value.details()


def test_witness_registration_input(env, pb, cppb):  # noqa: F811
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="log-witness-2", purpose=pb.CHECKPOINT,
                                    algorithm=pb.ED25519), timeout=30)
    w = Witness(c.channel, cppb)
    key = ed25519.Ed25519PrivateKey.generate()
    for vkey, wname, words in (("not a vkey", WITNESS, "log_verifier_key"),
                               (log_vkey("example.org/x", key), "", "witness_name"),
                               (log_vkey("example.org/x", key), "bad name", "witness_name")):
        with pytest.raises(grpc.RpcError) as e:
            w.register(cppb.RegisterLogRequest(origin="example.org/x", key_name="log-witness-2",
                                               log_verifier_key=vkey, witness_name=wname),
                       timeout=30)
        assert status_of(e.value) == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert words in e.value.details()
    # a log signed here cannot be cosigned
    w.register(cppb.RegisterLogRequest(origin="example.org/signed-here", key_name="log-witness-2"),
               timeout=30)
    body = checkpoint_body("example.org/signed-here", 1, leaf_hash(b"x"))
    with pytest.raises(grpc.RpcError) as e:
        w.cosign(log_note("example.org/signed-here", key, body))
    assert status_of(e.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert "SignCheckpoint" in e.value.details()



def test_cli_register_witness_and_cosign(env, pb, tmp_path):
    """`boltseal checkpoint register --log-vkey --witness-name` and
    `checkpoint cosign NOTE --proof FILE` print what the spec checks."""
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="log-witness-cli", purpose=pb.CHECKPOINT,
                                    algorithm=pb.ED25519), timeout=30)
    run = bsutil.cli_runner(env)
    origin = "example.org/cli-witnessed"
    logkey = ed25519.Ed25519PrivateKey.generate()
    vkey = log_vkey(origin, logkey)
    rc, out, err = run("--json", "checkpoint", "register", origin, "--key-name",
                       "log-witness-cli", "--log-vkey", vkey, "--witness-name", WITNESS)
    assert rc == 0, err
    st = json.loads(out)
    assert st["log_verifier_key"] == vkey and st["witness_name"] == WITNESS
    tree = MerkleTree(b"cli %d" % i for i in range(9))
    body = checkpoint_body(origin, 4, tree.root(4))
    nf = tmp_path / "note4"
    nf.write_bytes(log_note(origin, logkey, body))
    rc, line, err = run("checkpoint", "cosign", str(nf))
    assert rc == 0, err
    check_cosignature(line, st["verifier_key"], body)
    body9 = checkpoint_body(origin, 9, tree.root(9))
    pf = tmp_path / "proof"
    pf.write_text("".join(h.hex() + "\n" for h in tree.proof(4, 9)))
    rc, line, err = run("checkpoint", "cosign", "-", "--proof", str(pf),
                        stdin=log_note(origin, logkey, body9))
    assert rc == 0, err
    check_cosignature(line, st["verifier_key"], body9)
    rc, out, err = run("checkpoint", "status", origin)
    assert rc == 0 and "witnessed log: " + vkey in out and "size 9" in out, out
    rc, out, err = run("checkpoint", "register", origin, "--key-name", "log-witness-cli",
                       "--log-vkey", vkey)
    assert rc == 2 and "go together" in err, err
