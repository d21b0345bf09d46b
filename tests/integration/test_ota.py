# test_ota.py - boltseal.v1.OtaService with Debian's grpcio against a real
# daemon and SoftHSM token, checked with securesystemslib (Debian
# python3-securesystemslib), which nobody here wrote: CreateRepository's
# root metadata (key ids, signatures of the root keys, thresholds);
# SignMetadata's files (the role's keys' signatures over securesystemslib's
# canonical form of "signed"); the rollback rules (lower version, same
# version with other content, a snapshot listing a lower targets version),
# each refused FAILED_PRECONDITION and audited; the idempotent retry; bad
# input (floats, duplicate keys, wrong _type, too long a lifetime, unknown
# repository) refused with nothing stored; the marks surviving a restart;
# root rotation (version N+1 exactly, signed by a threshold of root N's keys
# and of its own, as a TUF client checks it) and GetRepository; Uptane:
# Director metadata per vehicle (ECU identifiers, no ECU twice, the vehicle
# named when nothing is listed) and image-repository release counters that
# may not decrease; grants on request.repository, request.role and
# request.vehicle_id; the aktualizr dialect (capitalised _type, key id over
# the SPKI, base64 signatures with "method", checked the way aktualizr's
# verified sample checks: standard-escaped sorted JSON, with cryptography).

import datetime
import hashlib
import json
import os
import sqlite3

import grpc
import pytest
from securesystemslib import keys as ssl_keys
from securesystemslib.formats import encode_canonical

import bsutil
from conftest import status_of

S = "/boltseal.v1.OtaService/"


@pytest.fixture(scope="module")
def opb(env):
    outdir = os.path.join(env.workdir, "ota-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/ota.proto"])
    return bsutil._load_module("bs_it_ota_pb2",
                               os.path.join(outdir, "boltseal", "v1", "ota_pb2.py"))


class Ota:
    def __init__(self, client, opb):
        ch = client.channel
        self.create = ch.unary_unary(S + "CreateRepository",
                                     request_serializer=opb.CreateRepositoryRequest.SerializeToString,
                                     response_deserializer=opb.CreateRepositoryResponse.FromString)
        self.sign = ch.unary_unary(S + "SignMetadata",
                                   request_serializer=opb.SignMetadataRequest.SerializeToString,
                                   response_deserializer=opb.SignMetadataResponse.FromString)
        self.rotate = ch.unary_unary(S + "RotateRoot",
                                     request_serializer=opb.RotateRootRequest.SerializeToString,
                                     response_deserializer=opb.RotateRootResponse.FromString)
        self.delegate = ch.unary_unary(
            S + "SetDelegation", request_serializer=opb.SetDelegationRequest.SerializeToString,
            response_deserializer=opb.SetDelegationResponse.FromString)
        self.get = ch.unary_unary(S + "GetRepository",
                                  request_serializer=opb.GetRepositoryRequest.SerializeToString,
                                  response_deserializer=opb.GetRepositoryResponse.FromString)


def make_keys(client, pb, prefix):
    """Root: 3 ECDSA P-256 keys (2 of 3); targets Ed25519; snapshot and
    timestamp ECDSA P-256. All of purpose OTA."""
    names = {"root": [prefix + "-root-%d" % i for i in range(3)],
             "targets": [prefix + "-targets"], "snapshot": [prefix + "-snapshot"],
             "timestamp": [prefix + "-timestamp"]}
    for role, ns in names.items():
        for n in ns:
            alg = pb.ED25519 if role == "targets" else pb.ECDSA_P256_SHA256
            client.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=alg),
                             timeout=30)
    return names


def create_repo(ota, opb, name, names, kind=0, dialect=0):
    req = opb.CreateRepositoryRequest(name=name, root_expires_days=30, kind=kind, dialect=dialect)
    for role, ns in names.items():
        req.roles.append(opb.RoleKeys(role=role, key_names=ns,
                                      threshold=2 if role == "root" else 1))
    return json.loads(ota.create(req, timeout=60).root)


def verified_keyids(doc, keys, keyids):
    """The key ids among keyids whose signature in doc verifies with
    securesystemslib over its canonical form of doc["signed"]."""
    data = encode_canonical(doc["signed"]).encode()
    good = set()
    for s in doc["signatures"]:
        if s["keyid"] in keyids:
            k = dict(keys[s["keyid"]], keyid=s["keyid"])
            if ssl_keys.verify_signature(k, s, data):
                good.add(s["keyid"])
    return good


def in_days(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def targets_signed(version, files):
    return {"_type": "targets", "spec_version": "1.0.31", "version": version,
            "expires": in_days(30),
            "targets": {n: {"length": len(b), "hashes": {"sha256": hashlib.sha256(b).hexdigest()}}
                        for n, b in files.items()}}


def sign(ota, opb, repo, role, signed, raw=None):
    body = raw if raw is not None else json.dumps(signed).encode()
    return ota.sign(opb.SignMetadataRequest(repository=repo, role=role, signed=body), timeout=60)


def rpc_refusal(fn, *a):
    try:
        fn(*a)
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected a refusal")


def test_repository_and_metadata(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-it1")
    root = create_repo(ota, opb, "it-trucks", names)

    # root v1: its keys and roles, 2 of the 3 root keys' signatures (all three signed)
    sp = root["signed"]
    assert sp["_type"] == "root" and sp["version"] == 1 and sp["consistent_snapshot"] is True
    for kid, k in sp["keys"].items():
        assert kid == hashlib.sha256(encode_canonical(k).encode()).hexdigest()
    rk = sp["roles"]["root"]
    assert rk["threshold"] == 2 and len(rk["keyids"]) == 3
    assert verified_keyids(root, sp["keys"], set(rk["keyids"])) == set(rk["keyids"])
    tk = sp["roles"]["targets"]["keyids"]
    assert sp["keys"][tk[0]]["keytype"] == "ed25519"

    # targets v1, signed by the targets key; a retry gets the same bytes
    files = {"fw/ecu-a.bin": b"firmware A", "fw/ecu-b.bin": b"firmware B"}
    tp1 = targets_signed(1, files)       # one "expires": the retry below sends the same bytes
    r1 = sign(ota, opb, "it-trucks", "targets", tp1)
    doc = json.loads(r1.metadata)
    assert r1.version == 1 and not r1.repeated
    assert verified_keyids(doc, sp["keys"], set(tk)) == set(tk)
    assert doc["signed"]["targets"]["fw/ecu-a.bin"]["length"] == 10
    again = sign(ota, opb, "it-trucks", "targets", tp1)
    assert again.repeated and again.metadata == r1.metadata

    # rollbacks: same version other content, lower version
    e = rpc_refusal(sign, ota, opb, "it-trucks", "targets",
                    targets_signed(1, {"fw/evil.bin": b"x"}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "targets version 1 was signed before with other content" in e.details()
    r2 = sign(ota, opb, "it-trucks", "targets", targets_signed(2, files))
    assert r2.version == 2
    e = rpc_refusal(sign, ota, opb, "it-trucks", "targets", targets_signed(1, files))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "refused rollback: targets version 1 is lower than version 2" in e.details()

    # snapshot must not list a lower targets version than before
    snap = {"_type": "snapshot", "spec_version": "1.0.31", "expires": in_days(2),
            "meta": {"targets.json": {"version": 2}}}
    s1 = sign(ota, opb, "it-trucks", "snapshot", dict(snap, version=1))
    sk = sp["roles"]["snapshot"]["keyids"]
    assert verified_keyids(json.loads(s1.metadata), sp["keys"], set(sk)) == set(sk)
    e = rpc_refusal(sign, ota, opb, "it-trucks", "snapshot",
                    dict(snap, version=2, meta={"targets.json": {"version": 1}}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "snapshot would list targets.json version 1, lower than version 2" in e.details()

    # timestamp: at most a day (ota.timestamp_max_hours = 24)
    ts = {"_type": "timestamp", "spec_version": "1.0.31", "version": 1,
          "meta": {"snapshot.json": {"version": 1}}}
    e = rpc_refusal(sign, ota, opb, "it-trucks", "timestamp", dict(ts, expires=in_days(2)))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum lifetime" in e.details()
    t1 = sign(ota, opb, "it-trucks", "timestamp", dict(ts, expires=in_days(0.5)))
    assert json.loads(t1.metadata)["signed"]["meta"]["snapshot.json"]["version"] == 1

    # every refusal is in the audit log with its reason and the repository
    recs = [r for r in bsutil.audit_records(env.state_dir)
            if r["method"] == "boltseal.v1.OtaService/SignMetadata"
            and r.get("fields", {}).get("ota.repository") == "it-trucks"]
    refused = [r for r in recs if r["result"] == "FAILED_PRECONDITION"]
    assert len(refused) == 3, refused
    assert all(r["fields"]["ota.repository"] == "it-trucks" for r in refused)
    assert any("refused rollback" in r["reason"] for r in refused)
    # a signed call records its keys and the SHA-256 of the bytes they signed
    ok = [r for r in recs if r["result"] == "OK" and r["fields"]["ota.version"] == "2"
          and r["fields"]["ota.role"] == "targets"][0]
    assert ok["fields"]["ota.keys"] == names["targets"][0] + "@1", ok
    want = hashlib.sha256(encode_canonical(json.loads(r2.metadata)["signed"]).encode()).hexdigest()
    assert ok["payload_sha256"] == [want], ok
    # refusals before any key work still name the repository and role
    bad = [r for r in recs if r["result"] == "INVALID_ARGUMENT"]
    assert bad and bad[-1]["fields"]["ota.repository"] == "it-trucks", bad
    c.close()


@pytest.mark.parametrize("raw,role,msg,code", [
    (b'{"_type":"targets","spec_version":"1.0.0","version":1.0,"expires":"2030-01-01T00:00:00Z"}',
     "targets", "floating-point number at $.version", "INVALID_ARGUMENT"),
    (b'{"_type":"targets","_type":"targets"}', "targets", "duplicate object key",
     "INVALID_ARGUMENT"),
    (b'{"_type":"snapshot","spec_version":"1.0.0","version":3,"expires":"2030-01-01T00:00:00Z"}',
     "targets", "_type must be \"targets\"", "INVALID_ARGUMENT"),
    (b'{"_type":"targets"}', "root", "role must be targets, snapshot, timestamp or a delegated",
     "INVALID_ARGUMENT"),
    (b'{"_type":"targets"}', "../x", "role must be targets, snapshot, timestamp or a delegated",
     "INVALID_ARGUMENT"),
    (json.dumps(targets_signed(1, {})).encode(), "suppliers-none",
     "repository 'it-trucks' has no delegated role 'suppliers-none'", "NOT_FOUND"),
])
def test_bad_input(env, opb, raw, role, msg, code):
    c = env.client()
    ota = Ota(c, opb)
    e = rpc_refusal(sign, ota, opb, "it-trucks", role, None, raw)
    assert status_of(e).name == code, (e.code(), e.details())
    assert msg in e.details(), e.details()
    c.close()


def test_unknown_repository_and_bad_create(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    e = rpc_refusal(sign, ota, opb, "no-such-repo", "targets", targets_signed(1, {}))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND, e.details()
    names = make_keys(c, pb, "ota-it2")
    e = rpc_refusal(create_repo, ota, opb, "it-trucks", names)   # taken by the first test
    assert status_of(e) in (grpc.StatusCode.ALREADY_EXISTS,), e.details()
    # a generic key cannot be an OTA key
    c.CreateKey(pb.CreateKeyRequest(name="it-ota-generic", purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    bad = dict(names, timestamp=["it-ota-generic"])
    e = rpc_refusal(create_repo, ota, opb, "it-bad", bad)
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "not an ECDSA P-256 or Ed25519 key of purpose ota" in e.details()
    # a key serves one repository only
    shared = {k: list(v) for k, v in make_keys(c, pb, "ota-it3").items()}
    shared["targets"] = ["ota-it1-targets"]   # it-trucks' (the first test's) targets key
    e = rpc_refusal(create_repo, ota, opb, "it-shared", shared)
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION, e.details()
    assert "key 'ota-it1-targets' already signs for another repository" in e.details()
    # nothing of the refused repository was stored: its own keys are still free
    create_repo(ota, opb, "it-shared", {k: list(v) for k, v in shared.items()
                                        if k != "targets"} | {"targets": ["ota-it3-targets"]})
    missing = {k: v for k, v in names.items() if k != "snapshot"}
    e = rpc_refusal(create_repo, ota, opb, "it-bad", missing)
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "snapshot is missing" in e.details()
    c.close()


def test_marks_survive_a_restart(env, second_daemon, pb, opb):
    """The high-water marks are durable: after a restart, the version signed
    before still cannot be undercut."""
    sd = second_daemon("ota")
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                      env.stubs)
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-rs")
    create_repo(ota, opb, "rs", names)
    sign(ota, opb, "rs", "targets", targets_signed(5, {"a": b"a"}))
    c.close()
    bsutil.stop_clean(d)
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                      env.stubs)
    ota = Ota(c, opb)
    e = rpc_refusal(sign, ota, opb, "rs", "targets", targets_signed(4, {"a": b"a"}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert sign(ota, opb, "rs", "targets", targets_signed(6, {"a": b"a"})).version == 6
    c.close()
    bsutil.stop_clean(d)


def test_repository_made_before_root_rows(env, second_daemon, pb, opb):
    """A repository created before every root file had its own row (its only
    root lived in the root's mark) is still read, and rotated, whole."""
    sd = second_daemon("ota-legacy")
    d = sd.start()
    cf = env.client_files("ci-ota-release")
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *cf), env.stubs)
    root1 = create_repo(Ota(c, opb), opb, "legacy", make_keys(c, pb, "ota-leg"))
    c.close()
    bsutil.stop_clean(d)
    db = sqlite3.connect(os.path.join(sd.state_dir, "catalog.db"))
    with db:
        n = db.execute("DELETE FROM versioned_rows WHERE id LIKE 'root/legacy/%'").rowcount
    db.close()
    assert n == 1
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *cf), env.stubs)
    ota = Ota(c, opb)
    assert [json.loads(r) for r in ota.get(opb.GetRepositoryRequest(name="legacy"),
                                           timeout=30).roots] == [root1]
    root2 = json.loads(ota.rotate(opb.RotateRootRequest(repository="legacy"), timeout=60).root)
    assert [json.loads(r) for r in ota.get(opb.GetRepositoryRequest(name="legacy"),
                                           timeout=30).roots] == [root1, root2]
    c.close()
    bsutil.stop_clean(d)


def threshold_met(doc, by_root):
    """TUF's check of doc (a root) against by_root's root role: at least
    threshold distinct root key ids of by_root have a signature that verifies."""
    role = by_root["signed"]["roles"]["root"]
    good = verified_keyids(doc, by_root["signed"]["keys"], set(role["keyids"]))
    return len(good) >= role["threshold"]


def test_rotate_root_and_get_repository(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-rot")
    root1 = create_repo(ota, opb, "it-rotate", names)
    got = ota.get(opb.GetRepositoryRequest(name="it-rotate"), timeout=30)
    assert [r.role for r in got.roles] == ["root", "targets", "snapshot", "timestamp"]
    assert got.roles[0].version == 1 and got.roles[0].threshold == 2
    assert list(got.roles[0].key_names) == [n + "@1" for n in names["root"]]
    assert got.roles[1].version == 0 and got.roles[1].metadata == b""
    assert [json.loads(r) for r in got.roots] == [root1]

    # root 2: one root key replaced, a new targets key; signed by root 1's
    # keys (all still enabled) and root 2's, so a client holding root 1 and
    # one fetching root 2 fresh both accept it
    for n in ("ota-rot-root-new", "ota-rot-targets-2"):
        c.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=pb.ECDSA_P256_SHA256),
                    timeout=30)
    new_root = names["root"][1:] + ["ota-rot-root-new"]
    req = opb.RotateRootRequest(repository="it-rotate", expires_days=60, version=2)
    req.roles.append(opb.RoleKeys(role="root", key_names=new_root, threshold=2))
    req.roles.append(opb.RoleKeys(role="targets", key_names=["ota-rot-targets-2"], threshold=1))
    r2 = ota.rotate(req, timeout=60)
    root2 = json.loads(r2.root)
    assert r2.version == 2 and root2["signed"]["version"] == 2
    assert threshold_met(root2, root1) and threshold_met(root2, root2)
    assert len(root2["signatures"]) == 4          # three old root keys and the new one
    assert root2["signed"]["roles"]["snapshot"] == root1["signed"]["roles"]["snapshot"]
    tk = root2["signed"]["roles"]["targets"]["keyids"]
    assert tk != root1["signed"]["roles"]["targets"]["keyids"]

    # targets are now signed by the new targets key only
    t = json.loads(sign(ota, opb, "it-rotate", "targets",
                        targets_signed(1, {"a.bin": b"a"})).metadata)
    assert verified_keyids(t, root2["signed"]["keys"], set(tk)) == set(tk)
    assert len(t["signatures"]) == 1

    got = ota.get(opb.GetRepositoryRequest(name="it-rotate"), timeout=30)
    assert [json.loads(r) for r in got.roots] == [root1, root2]
    assert got.roles[0].version == 2 and got.roles[1].version == 1
    assert json.loads(got.roles[1].metadata) == t

    # the version must be exactly the next one; no change at all renews the expiry
    e = rpc_refusal(ota.rotate, opb.RotateRootRequest(repository="it-rotate", version=2), 30)
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "root version 2 is the current one: the next is 3" in e.details()
    r3 = ota.rotate(opb.RotateRootRequest(repository="it-rotate", expires_days=90), timeout=60)
    root3 = json.loads(r3.root)
    assert r3.version == 3 and threshold_met(root3, root2) and threshold_met(root3, root3)
    assert root3["signed"]["roles"] == root2["signed"]["roles"]

    # a threshold alone (no key names) keeps the keys at their recorded
    # versions, even after one of them got a new version in the catalog
    c.RotateKey(pb.RotateKeyRequest(name=new_root[0]), timeout=30)
    req = opb.RotateRootRequest(repository="it-rotate")
    req.roles.append(opb.RoleKeys(role="root", threshold=1))
    root4 = json.loads(ota.rotate(req, timeout=60).root)
    assert root4["signed"]["roles"]["root"]["keyids"] == root3["signed"]["roles"]["root"]["keyids"]
    assert root4["signed"]["roles"]["root"]["threshold"] == 1
    assert threshold_met(root4, root3) and threshold_met(root4, root4)
    req = opb.RotateRootRequest(repository="it-rotate")
    req.roles.append(opb.RoleKeys(role="targets", threshold=2))
    e = rpc_refusal(ota.rotate, req, 30)
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "role targets: threshold 2 is more than its 1 keys" in e.details()

    # a key of another repository cannot be brought in; bad requests
    req = opb.RotateRootRequest(repository="it-rotate")
    req.roles.append(opb.RoleKeys(role="snapshot", key_names=["ota-it1-snapshot"], threshold=1))
    e = rpc_refusal(ota.rotate, req, 30)
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "already signs for another repository" in e.details()
    req = opb.RotateRootRequest(repository="it-rotate", expires_days=5000)
    e = rpc_refusal(ota.rotate, req, 30)
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "expires_days" in e.details()
    e = rpc_refusal(ota.rotate, opb.RotateRootRequest(repository="no-such-repo"), 30)
    assert status_of(e) == grpc.StatusCode.NOT_FOUND
    e = rpc_refusal(ota.get, opb.GetRepositoryRequest(name="no-such-repo"), 30)
    assert status_of(e) == grpc.StatusCode.NOT_FOUND
    got = ota.get(opb.GetRepositoryRequest(name="it-rotate"), timeout=30)
    assert len(got.roots) == 4                    # nothing stored by the refusals

    recs = [r for r in bsutil.audit_records(env.state_dir)
            if r["method"] == "boltseal.v1.OtaService/RotateRoot"
            and r.get("fields", {}).get("ota.repository") == "it-rotate"]
    ok = [r for r in recs if r["result"] == "OK"]
    assert [r["fields"]["ota.version"] for r in ok] == ["2", "3", "4"]
    assert ok[0]["fields"]["ota.keys"].count("@") == 4
    c.close()


def director_targets(version, ecus, vehicle=None):
    """ecus: {target name: {ecu id: hardware id}}"""
    sp = {"_type": "targets", "spec_version": "1.0.31", "version": version,
          "expires": in_days(1),
          "targets": {n: {"length": 1, "hashes": {"sha256": hashlib.sha256(n.encode()).hexdigest()},
                          "custom": {"ecuIdentifiers": {e: {"hardwareId": hw}
                                                        for e, hw in m.items()}}}
                      for n, m in ecus.items()}}
    if vehicle is not None:
        sp["custom"] = {"vehicleId": vehicle}
    return sp


def sign_for(ota, opb, repo, role, signed, vehicle):
    return ota.sign(opb.SignMetadataRequest(repository=repo, role=role, vehicle_id=vehicle,
                                            signed=json.dumps(signed).encode()), timeout=60)


def test_uptane_director_per_vehicle(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-dir")
    create_repo(ota, opb, "it-director", names, kind=opb.UPTANE_DIRECTOR)
    got = ota.get(opb.GetRepositoryRequest(name="it-director"), timeout=30)
    assert got.kind == opb.UPTANE_DIRECTOR

    # each vehicle has its own versions: version 1 for VIN-1 and for VIN-2
    a = sign_for(ota, opb, "it-director", "targets",
                 director_targets(1, {"ecu-a.bin": {"ECU-1": "hw-a"}}), "VIN-1")
    b = sign_for(ota, opb, "it-director", "targets",
                 director_targets(1, {"ecu-b.bin": {"ECU-9": "hw-b"}}), "VIN-2")
    assert a.version == 1 and b.version == 1 and not b.repeated
    e = rpc_refusal(sign_for, ota, opb, "it-director", "targets",
                    director_targets(1, {"evil.bin": {"ECU-1": "hw-a"}}), "VIN-1")
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "targets version 1 was signed before with other content" in e.details()
    # nothing to install: the vehicle is named, and only its own id is accepted
    empty = sign_for(ota, opb, "it-director", "targets", director_targets(2, {}, "VIN-1"), "VIN-1")
    assert json.loads(empty.metadata)["signed"]["custom"]["vehicleId"] == "VIN-1"
    snap = {"_type": "snapshot", "spec_version": "1.0.31", "version": 1, "expires": in_days(1),
            "meta": {"targets.json": {"version": 2}}}
    assert sign_for(ota, opb, "it-director", "snapshot", snap, "VIN-1").version == 1
    got = ota.get(opb.GetRepositoryRequest(name="it-director", vehicle_id="VIN-1"), timeout=30)
    assert [r.version for r in got.roles] == [1, 2, 1, 0]
    got = ota.get(opb.GetRepositoryRequest(name="it-director", vehicle_id="VIN-2"), timeout=30)
    assert [r.version for r in got.roles] == [1, 1, 0, 0]

    for signed, vehicle, msg in [
        (director_targets(3, {"a.bin": {"ECU-1": "hw"}, "b.bin": {"ECU-1": "hw"}}), "VIN-1",
         "ECU 'ECU-1' is named by two targets ('a.bin' and 'b.bin')"),
        (director_targets(3, {}), "VIN-1", "$.custom.vehicleId: required when no target is listed"),
        (director_targets(3, {}, "VIN-2"), "VIN-1", "$.custom.vehicleId: not the vehicle signed for"),
        (targets_signed(3, {"a.bin": b"a"}), "VIN-1",
         '$.targets["a.bin"].custom.ecuIdentifiers: missing or empty'),
        (director_targets(3, {"a.bin": {"ECU-1": "hw"}}), "",
         "vehicle_id: required (repository 'it-director' is an Uptane Director"),
        (director_targets(3, {"a.bin": {"ECU-1": "hw"}}), "bad vehicle!",
         "vehicle_id: 1..64 of"),
    ]:
        e = rpc_refusal(sign_for, ota, opb, "it-director", "targets", signed, vehicle)
        assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT, (msg, e.details())
        assert msg in e.details(), e.details()
    got = ota.get(opb.GetRepositoryRequest(name="it-director", vehicle_id="VIN-1"), timeout=30)
    assert got.roles[1].version == 2                  # nothing stored by the refusals

    recs = [r for r in bsutil.audit_records(env.state_dir)
            if r["method"] == "boltseal.v1.OtaService/SignMetadata"
            and r.get("fields", {}).get("ota.repository") == "it-director" and r["result"] == "OK"]
    assert {r["fields"]["ota.vehicle_id"] for r in recs} == {"VIN-1", "VIN-2"}
    c.close()


def image_targets(version, counters):
    return {"_type": "targets", "spec_version": "1.0.31", "version": version,
            "expires": in_days(30),
            "targets": {n: dict({"length": 1, "hashes": {"sha256": "00" * 32}},
                                **({"custom": {"releaseCounter": rc, "hardwareIds": ["hw-a"]}}
                                   if rc is not None else {}))
                        for n, rc in counters.items()}}


def test_uptane_image_release_counters(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-img")
    create_repo(ota, opb, "it-images", names, kind=opb.UPTANE_IMAGE)
    sign(ota, opb, "it-images", "targets", image_targets(1, {"fw.bin": 3, "maps.db": None}))
    for version, counters, msg in [
        (2, {"fw.bin": 2}, "the release counter of target 'fw.bin' would go from 3 to 2"),
        (2, {"fw.bin": None}, "the release counter of target 'fw.bin' would go from 3 to none"),
    ]:
        e = rpc_refusal(sign, ota, opb, "it-images", "targets", image_targets(version, counters))
        assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
        assert "refused rollback: " + msg in e.details(), e.details()
    # equal or higher is fine; a counter survives its target's absence
    sign(ota, opb, "it-images", "targets", image_targets(2, {"fw.bin": 3}))
    sign(ota, opb, "it-images", "targets", image_targets(3, {"maps.db": 1}))
    e = rpc_refusal(sign, ota, opb, "it-images", "targets", image_targets(4, {"fw.bin": 1}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    sign(ota, opb, "it-images", "targets", image_targets(4, {"fw.bin": 4, "maps.db": 1}))
    e = rpc_refusal(sign, ota, opb, "it-images", "targets",
                    image_targets(5, {"fw.bin": -1}))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert 'custom.releaseCounter: must be an integer >= 0' in e.details()
    e = rpc_refusal(sign_for, ota, opb, "it-images", "targets", image_targets(5, {}), "VIN-1")
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "vehicle_id: only for Uptane Director repositories" in e.details()
    recs = [r for r in bsutil.audit_records(env.state_dir)
            if r.get("fields", {}).get("ota.repository") == "it-images"
            and r["result"] == "FAILED_PRECONDITION"]
    assert len(recs) == 3 and all("release counter" in r["reason"] for r in recs), recs
    c.close()


def aktualizr_verified(doc, keys, keyids):
    """The key ids among keyids whose signature verifies as aktualizr checks
    it: Ed25519 over json.dumps(signed, sort_keys, compact, ensure_ascii=False),
    base64 signatures, key id = SHA-256 of the DER SubjectPublicKeyInfo."""
    import base64
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives import serialization
    data = json.dumps(doc["signed"], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
    good = set()
    for sig in doc["signatures"]:
        k = keys.get(sig["keyid"])
        if sig["keyid"] not in keyids or k is None or k["keytype"] != "ED25519":
            continue
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["keyval"]["public"]))
        spki = pub.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        assert sig["keyid"] == hashlib.sha256(spki).hexdigest()
        assert sig["method"] == "ed25519"
        pub.verify(base64.b64decode(sig["sig"]), data)
        good.add(sig["keyid"])
    return good


def test_aktualizr_dialect(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = {"root": ["ota-akt-root-1", "ota-akt-root-2"], "targets": ["ota-akt-targets"],
             "snapshot": ["ota-akt-snapshot"], "timestamp": ["ota-akt-timestamp"]}
    for ns in names.values():
        for n in ns:
            c.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=pb.ED25519),
                        timeout=30)
    c.CreateKey(pb.CreateKeyRequest(name="ota-akt-ecdsa", purpose=pb.OTA,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    bad = dict(names, snapshot=["ota-akt-ecdsa"])
    e = rpc_refusal(create_repo, ota, opb, "it-akt-bad", bad, 0, opb.AKTUALIZR)
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "takes Ed25519 keys only" in e.details()

    root = create_repo(ota, opb, "it-akt", names, opb.UPTANE_IMAGE, opb.AKTUALIZR)
    sp = root["signed"]
    assert sp["_type"] == "Root"
    rk = sp["roles"]["root"]["keyids"]
    assert aktualizr_verified(root, sp["keys"], set(rk)) == set(rk)
    got = ota.get(opb.GetRepositoryRequest(name="it-akt"), timeout=30)
    assert got.dialect == opb.AKTUALIZR and got.kind == opb.UPTANE_IMAGE

    t = image_targets(1, {"fw/ecu-a.bin": 1})
    t["_type"] = "Targets"
    doc = json.loads(sign(ota, opb, "it-akt", "targets", t).metadata)
    tk = sp["roles"]["targets"]["keyids"]
    assert aktualizr_verified(doc, sp["keys"], set(tk)) == set(tk)
    # the TUF spelling is refused for this repository, and the other way round
    e = rpc_refusal(sign, ota, opb, "it-akt", "targets", image_targets(2, {"fw/ecu-a.bin": 1}))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert 'written in the aktualizr dialect: _type must be "Targets"' in e.details()
    e = rpc_refusal(sign, ota, opb, "it-trucks", "targets", dict(t, version=9))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert 'written in the TUF dialect: _type must be "targets"' in e.details()

    # a rotated root stays in the dialect
    r2 = json.loads(ota.rotate(opb.RotateRootRequest(repository="it-akt"), timeout=60).root)
    assert r2["signed"]["_type"] == "Root" and r2["signed"]["version"] == 2
    assert aktualizr_verified(r2, sp["keys"], set(rk)) == set(rk)
    c.close()


def test_delegated_targets_roles(env, pb, opb):
    c = env.client()
    ota = Ota(c, opb)
    names = make_keys(c, pb, "ota-del")
    root = create_repo(ota, opb, "it-deleg", names, kind=opb.UPTANE_IMAGE)
    for n in ("ota-del-acme-1", "ota-del-acme-2"):
        c.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=pb.ED25519), timeout=30)

    d = json.loads(ota.delegate(opb.SetDelegationRequest(
        repository="it-deleg", name="acme", key_names=["ota-del-acme-1"], threshold=1,
        paths=["acme/*"]), timeout=30).delegations)
    assert [r["name"] for r in d["roles"]] == ["acme"]
    role = d["roles"][0]
    assert role["threshold"] == 1 and role["paths"] == ["acme/*"] and role["terminating"] is False
    for kid, k in d["keys"].items():
        assert kid == hashlib.sha256(encode_canonical(k).encode()).hexdigest()
    assert set(role["keyids"]) == set(d["keys"])

    # the top-level targets carry the delegations; the delegated role signs its own
    top = targets_signed(1, {})
    top["delegations"] = d
    sign(ota, opb, "it-deleg", "targets", top)
    acme = image_targets(1, {"acme/ecu.bin": 2})
    doc = json.loads(sign(ota, opb, "it-deleg", "acme", acme).metadata)
    assert verified_keyids(doc, d["keys"], set(role["keyids"])) == set(role["keyids"])
    assert len(doc["signatures"]) == 1
    # its own high-water mark and release counters
    e = rpc_refusal(sign, ota, opb, "it-deleg", "acme", image_targets(1, {"x": 1}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    e = rpc_refusal(sign, ota, opb, "it-deleg", "acme",
                    image_targets(2, {"acme/ecu.bin": 1}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "release counter of target 'acme/ecu.bin' would go from 2 to 1" in e.details()

    # replacing the role (two keys, 2 of 2) keeps one entry; both keys sign from then on
    d2 = json.loads(ota.delegate(opb.SetDelegationRequest(
        repository="it-deleg", name="acme", key_names=["ota-del-acme-1",
                                                                  "ota-del-acme-2"],
        threshold=2, paths=["acme/*", "shared/*"], terminating=True), timeout=30).delegations)
    assert len(d2["roles"]) == 1 and d2["roles"][0]["threshold"] == 2
    doc = json.loads(sign(ota, opb, "it-deleg", "acme",
                          image_targets(2, {"acme/ecu.bin": 3})).metadata)
    assert verified_keyids(doc, d2["keys"], set(d2["roles"][0]["keyids"])) == \
        set(d2["roles"][0]["keyids"])

    got = ota.get(opb.GetRepositoryRequest(name="it-deleg"), timeout=30)
    assert [(r.role, r.version, r.threshold) for r in got.delegated] == [("acme", 2, 2)]
    assert json.loads(got.delegations) == d2
    assert json.loads(got.delegated[0].metadata) == doc

    # the roles' row is bounded (64 KiB): long path lists run out before 32 roles
    long_paths = ["p%03d/" % i + "x" * 240 for i in range(64)]
    e = None
    for i in range(8):
        try:
            ota.delegate(opb.SetDelegationRequest(
                repository="it-deleg", name="big-%d" % i, key_names=["ota-del-acme-1"],
                threshold=1, paths=long_paths), timeout=30)
        except grpc.RpcError as err:
            e = err
            break
    assert e is not None and status_of(e) == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    assert "its delegated roles would take more than 65536 bytes" in e.details()
    assert len(ota.get(opb.GetRepositoryRequest(name="it-deleg"), timeout=30).delegated) == i + 1

    for req, code, msg in [
        (opb.SetDelegationRequest(repository="it-deleg", name="suppliers/acme",
                                  key_names=["ota-del-acme-1"], threshold=1, paths=["*"]),
         "INVALID_ARGUMENT", "name: 1..128"),
        (opb.SetDelegationRequest(repository="it-deleg", name="targets", key_names=["ota-del-acme-1"],
                                  threshold=1, paths=["*"]), "INVALID_ARGUMENT", "name: 1..128"),
        (opb.SetDelegationRequest(repository="it-deleg", name="x", key_names=["ota-del-acme-1"],
                                  threshold=1), "INVALID_ARGUMENT", "paths: 1..64"),
        (opb.SetDelegationRequest(repository="it-deleg", name="x", key_names=["ota-it1-targets"],
                                  threshold=1, paths=["*"]), "FAILED_PRECONDITION",
         "already signs for another repository"),
        (opb.SetDelegationRequest(repository="it-director", name="x", key_names=["ota-del-acme-1"],
                                  threshold=1, paths=["*"]), "FAILED_PRECONDITION",
         "an Uptane Director does not delegate"),
    ]:
        e = rpc_refusal(ota.delegate, req, 30)
        assert status_of(e).name == code and msg in e.details(), (code, e.details())
    c.close()


OTA_POLICY = """
principal ci
    uri spiffe://fleet.example/ci/ota-release
    roles ci-eu
principal alice
    uri spiffe://fleet.example/admin/alice
    roles admin
role ci-eu
    grant
        methods boltseal.v1.OtaService/SignMetadata
        when request.repository == "trucks-eu"
        when request.role == "targets"
    grant
        methods boltseal.v1.OtaService/SignMetadata
        when request.repository == "dir-eu"
        when request.vehicle_id in ["VIN-1"]
role admin
    grant
        methods boltseal.v1.KeyService/CreateKey
        keys *
    grant
        methods boltseal.v1.OtaService/CreateRepository
"""


def test_policy_attributes(env, second_daemon, pb, opb):
    """request.repository, request.role and request.vehicle_id in grants:
    CI signs targets of trucks-eu only, and Director metadata of VIN-1 only;
    every refusal is PERMISSION_DENIED with the reason in the audit log."""
    sd = second_daemon("ota-policy")
    policy = os.path.join(sd.dir, "policy")
    with open(policy, "w") as f:
        f.write(OTA_POLICY)
    os.chmod(policy, 0o644)
    sd.settings["policy"] = policy
    bsutil.write_config(sd.conf, sd.settings)
    d = sd.start()
    admin = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("admin-alice")),
                          env.stubs)
    ci = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                       env.stubs)
    aota, cota = Ota(admin, opb), Ota(ci, opb)
    create_repo(aota, opb, "trucks-eu", make_keys(admin, pb, "pol-eu"))
    create_repo(aota, opb, "trucks-us", make_keys(admin, pb, "pol-us"))
    create_repo(aota, opb, "dir-eu", make_keys(admin, pb, "pol-dir"), kind=opb.UPTANE_DIRECTOR)

    assert sign(cota, opb, "trucks-eu", "targets", targets_signed(1, {"a": b"a"})).version == 1
    snap = {"_type": "snapshot", "spec_version": "1.0.31", "version": 1, "expires": in_days(1),
            "meta": {"targets.json": {"version": 1}}}
    dt = director_targets(1, {"ecu.bin": {"ECU-1": "hw"}})
    assert sign_for(cota, opb, "dir-eu", "targets", dt, "VIN-1").version == 1
    for call in (lambda: sign(cota, opb, "trucks-eu", "snapshot", snap),
                 lambda: sign(cota, opb, "trucks-us", "targets", targets_signed(1, {})),
                 lambda: sign_for(cota, opb, "dir-eu", "targets", dt, "VIN-2")):
        e = rpc_refusal(call)
        assert status_of(e) == grpc.StatusCode.PERMISSION_DENIED, e.details()
    denied = [r for r in bsutil.audit_records(sd.state_dir)
              if r["result"] == "PERMISSION_DENIED"]
    assert [r["fields"].get("ota.repository") for r in denied] == \
        ["trucks-eu", "trucks-us", "dir-eu"], denied
    assert denied[2]["fields"]["ota.vehicle_id"] == "VIN-2"
    admin.close()
    ci.close()
    bsutil.stop_clean(d)


def test_listings_name_only_what_was_signed(env, pb, opb):
    """A snapshot lists targets (and delegated roles) at versions signed
    here; a timestamp lists the snapshot signed here, with its length and
    SHA-256: anything else is refused, audited, and stores nothing."""
    c = env.client()
    ota = Ota(c, opb)
    create_repo(ota, opb, "it-listing", make_keys(c, pb, "ota-lst"))
    sign(ota, opb, "it-listing", "targets", targets_signed(1, {"a": b"a"}))

    def snap(v, meta):
        return {"_type": "snapshot", "spec_version": "1.0.31", "version": v,
                "expires": in_days(1), "meta": meta}

    def ts(v, meta):
        return dict(snap(v, meta), _type="timestamp")

    e = rpc_refusal(sign, ota, opb, "it-listing", "snapshot",
                    snap(1, {"targets.json": {"version": 2}}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "refused: snapshot lists targets.json version 2, which was not signed (the last " \
        "is 1)" in e.details()
    e = rpc_refusal(sign, ota, opb, "it-listing", "snapshot",
                    snap(1, {"targets.json": {"version": 1}, "evil.json": {"version": 1}}))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert '$.meta["evil.json"]: no role of this repository' in e.details()
    e = rpc_refusal(sign, ota, opb, "it-listing", "timestamp",
                    ts(1, {"snapshot.json": {"version": 1}}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "timestamp lists snapshot.json version 1, which was not signed (the last is 0)" \
        in e.details()

    s1 = sign(ota, opb, "it-listing", "snapshot", snap(1, {"targets.json": {"version": 1}}))
    good = {"version": 1, "length": len(s1.metadata),
            "hashes": {"sha256": hashlib.sha256(s1.metadata).hexdigest()}}
    e = rpc_refusal(sign, ota, opb, "it-listing", "timestamp",
                    ts(1, {"snapshot.json": dict(good, hashes={"sha256": "00" * 32})}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "with a length or SHA-256 that is not the file signed" in e.details()
    e = rpc_refusal(sign, ota, opb, "it-listing", "timestamp",
                    ts(1, {"snapshot.json": dict(good, length=good["length"] + 1)}))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert sign(ota, opb, "it-listing", "timestamp", ts(1, {"snapshot.json": good})).version == 1
    got = ota.get(opb.GetRepositoryRequest(name="it-listing"), timeout=30)
    assert [r.version for r in got.roles] == [1, 1, 1, 1]
    c.close()
