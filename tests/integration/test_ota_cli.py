# test_ota_cli.py - `boltseal ota ...` (src/cli/cmd_ota.c) against the
# session's boltsealed, as ci-ota-release (policy-it.conf grants it every
# OtaService method). The metadata it writes is checked with
# securesystemslib (Debian python3-securesystemslib), which nobody here
# wrote: `ota init` writes a root whose key ids and signatures verify;
# `ota publish` (twice) writes consistent-snapshot files whose versions
# advance, whose targets list the files' real lengths and hashes, whose
# timestamp lists the snapshot file's exact length and hash, and whose every
# signature verifies with the root's keys for the role, up to its
# threshold; `ota refresh-timestamp` signs the next timestamp over the same
# snapshot; `ota sign` takes a whole metadata file or a signed part;
# `ota rotate-root` writes 2.root.json, signed by the old and new root
# keys; local problems exit 2 before any call, the server's NOT_FOUND
# exits 4.

import base64
import datetime
import hashlib
import json
import os
import subprocess

import pytest
from securesystemslib import keys as ssl_keys
from securesystemslib.formats import encode_canonical

import bsutil


def cli_path():
    return os.path.join(bsutil.BUILDDIR, "boltseal")


@pytest.fixture(scope="module")
def cli(env):
    """run(*args, stdin=None) -> (exit code, stdout, stderr) of the CLI as
    ci-ota-release against the session daemon."""
    return bsutil.cli_runner(env)


def ok(res):
    rc, out, err = res
    assert rc == 0, (rc, out, err)
    return out


@pytest.fixture(scope="module")
def make_repo(env, pb, good, cli, tmp_path_factory):
    """make_repo(tag, root_keys=3, root_threshold=2) -> (name, metadata dir):
    a repository made with `ota init` from new OTA keys (a key serves one
    repository only): ECDSA P-256 root keys, an Ed25519 targets key, ECDSA
    snapshot and timestamp keys."""
    def make(tag, root_keys=3, root_threshold=2, extra=()):
        name = "cli-" + tag
        keys = {"root": ["ota-cli-%s-root-%d" % (tag, i) for i in range(root_keys)],
                "targets": ["ota-cli-%s-targets" % tag],
                "snapshot": ["ota-cli-%s-snapshot" % tag],
                "timestamp": ["ota-cli-%s-timestamp" % tag]}
        for role, ns in keys.items():
            for n in ns:
                alg = pb.ED25519 if role == "targets" else pb.ECDSA_P256_SHA256
                good.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=alg),
                               timeout=30)
        out = tmp_path_factory.mktemp("ota-" + tag) / "repo" / "metadata"
        j = json.loads(ok(cli("--json", "ota", "init", name, "--root", ",".join(keys["root"]),
                              "--root-threshold", str(root_threshold),
                              "--targets", keys["targets"][0],
                              "--snapshot", keys["snapshot"][0],
                              "--timestamp", keys["timestamp"][0],
                              "--root-expires-days", "30", "--out", str(out), *extra)))
        assert j == {"repository": name, "root_version": 1}, j
        return name, out
    return make


# --- checks -----------------------------------------------------------------------

def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def verified(doc, root, role):
    """The key ids of root's role whose signatures on doc verify with
    securesystemslib over its canonical form of doc["signed"]."""
    keyids = set(root["signed"]["roles"][role]["keyids"])
    keys = root["signed"]["keys"]
    data = encode_canonical(doc["signed"]).encode()
    good = set()
    for s in doc["signatures"]:
        if s["keyid"] in keyids and ssl_keys.verify_signature(
                dict(keys[s["keyid"]], keyid=s["keyid"]), s, data):
            good.add(s["keyid"])
    return good


def assert_trusted(doc, root, role):
    """doc is signed by at least the threshold of root's keys for role, and
    every signature it carries verifies."""
    good = verified(doc, root, role)
    assert len(good) == len(doc["signatures"]), (role, doc["signatures"])
    assert len(good) >= root["signed"]["roles"][role]["threshold"], role


def write_tree(base, files):
    for name, data in files.items():
        p = base / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def check_publication(mdir, tout, files, versions, root):
    """The files of one publication in mdir: versions (targets, snapshot,
    timestamp), the targets listing files, the listings chained by exact
    bytes, every signature verified; the consistent-snapshot copies in tout."""
    tv, sv, tsv = versions
    targets_raw = (mdir / ("%d.targets.json" % tv)).read_bytes()
    snapshot_raw = (mdir / ("%d.snapshot.json" % sv)).read_bytes()
    targets, snapshot = json.loads(targets_raw), json.loads(snapshot_raw)
    timestamp = load(mdir / "timestamp.json")
    spec = root["signed"]["spec_version"]
    for doc, typ, v in ((targets, "targets", tv), (snapshot, "snapshot", sv),
                        (timestamp, "timestamp", tsv)):
        sp = doc["signed"]
        assert sp["_type"] == typ and sp["version"] == v and sp["spec_version"] == spec, sp
        datetime.datetime.strptime(sp["expires"], "%Y-%m-%dT%H:%M:%SZ")
        assert_trusted(doc, root, typ)
    listed = targets["signed"]["targets"]
    assert set(listed) == set(files), (sorted(listed), sorted(files))
    for name, data in files.items():
        assert listed[name] == {"length": len(data), "hashes": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest()}}, name
        if tout is not None:
            d, base = os.path.split(name)
            for h in (hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest()):
                assert (tout / d / ("%s.%s" % (h, base))).read_bytes() == data, name
    assert snapshot["signed"]["meta"] == {"targets.json": {"version": tv}}
    assert timestamp["signed"]["meta"] == {"snapshot.json": {
        "version": sv, "length": len(snapshot_raw),
        "hashes": {"sha256": hashlib.sha256(snapshot_raw).hexdigest()}}}
    # nothing half-written is left behind
    assert not [p.name for p in mdir.iterdir() if p.name.startswith(".")]


# --- tests ------------------------------------------------------------------------

def test_init_writes_a_verifiable_root(make_repo):
    name, mdir = make_repo("init")
    raw = (mdir / "1.root.json").read_bytes()
    assert (mdir / "root.json").read_bytes() == raw
    root = json.loads(raw)
    sp = root["signed"]
    assert sp["_type"] == "root" and sp["version"] == 1 and sp["consistent_snapshot"] is True
    for kid, k in sp["keys"].items():
        assert kid == hashlib.sha256(encode_canonical(k).encode()).hexdigest()
    rk = sp["roles"]["root"]
    assert rk["threshold"] == 2 and len(rk["keyids"]) == 3
    assert verified(root, root, "root") == set(rk["keyids"])
    for role in ("targets", "snapshot", "timestamp"):
        assert sp["roles"][role]["threshold"] == 1 and len(sp["roles"][role]["keyids"]) == 1


def test_publish_twice(make_repo, cli, tmp_path):
    name, mdir = make_repo("pub")
    root = load(mdir / "root.json")
    tdir, tout = tmp_path / "images", tmp_path / "site" / "targets"
    files = {"fw/ecu-a.bin": b"firmware A" * 1000, "fw/sub/ecu-b.bin": b"firmware B",
             "readme.txt": b"", "caf\u00e9.bin": b"\x00\xff" * 70000}
    write_tree(tdir, files)
    os.symlink(str(tdir / "readme.txt"), str(tdir / "link.txt"))    # not followed
    rc, out, err = cli("--json", "ota", "publish", name, "--targets", str(tdir),
                       "--out", str(mdir), "--targets-out", str(tout))
    assert rc == 0, (rc, out, err)
    assert json.loads(out) == {"root_version": 1, "targets_version": 1, "snapshot_version": 1,
                               "timestamp_version": 1, "targets": 4}, out
    assert "skipping" in err and "link.txt" in err and "symbolic link" in err, err
    check_publication(mdir, tout, files, (1, 1, 1), root)
    assert (mdir / "1.root.json").read_bytes() == (mdir / "root.json").read_bytes()

    # again, with one file changed and one added: every version advances
    files["fw/ecu-a.bin"] = b"firmware A, version 2"
    files["fw/ecu-c.bin"] = b"firmware C"
    write_tree(tdir, files)
    out = ok(cli("ota", "publish", name, "--targets", str(tdir), "--out", str(mdir),
                 "--targets-out", str(tout), "--targets-days", "10", "--snapshot-days", "2",
                 "--timestamp-hours", "3"))
    assert "targets version:   2 (5 targets)" in out and "timestamp version: 2" in out, out
    check_publication(mdir, tout, files, (2, 2, 2), root)
    assert (mdir / "1.targets.json").exists() and (mdir / "1.snapshot.json").exists()
    ts = load(mdir / "timestamp.json")["signed"]
    expires = datetime.datetime.strptime(ts["expires"], "%Y-%m-%dT%H:%M:%SZ")
    left = expires - datetime.datetime.utcnow()
    assert datetime.timedelta(hours=2) < left <= datetime.timedelta(hours=3), left

    st = json.loads(ok(cli("--json", "ota", "status", name)))
    assert [(r["role"], r["version"]) for r in st["roles"]] == [
        ("root", 1), ("targets", 2), ("snapshot", 2), ("timestamp", 2)], st
    assert st["root_versions"] == 1 and st["repository"] == name
    assert st["roles"][0]["threshold"] == 2 and len(st["roles"][0]["keys"]) == 3
    assert all(k.endswith("@1") for k in st["roles"][0]["keys"]), st
    text = ok(cli("ota", "status", name))
    assert "targets    2        1 of 1" in text, text


def test_refresh_timestamp(make_repo, cli, tmp_path):
    name, mdir = make_repo("ts", root_keys=1, root_threshold=1)
    root = load(mdir / "root.json")
    rc, _, err = cli("ota", "refresh-timestamp", name, "--out", str(mdir))
    assert rc == 2 and "has no snapshot yet" in err, (rc, err)
    files = {"a.bin": b"a"}
    write_tree(tmp_path / "t", files)
    ok(cli("ota", "publish", name, "--targets", str(tmp_path / "t"), "--out", str(mdir)))
    snap = (mdir / "1.snapshot.json").read_bytes()
    for want in (2, 3):
        j = json.loads(ok(cli("--json", "ota", "refresh-timestamp", name, "--out", str(mdir),
                              "--timestamp-hours", "12")))
        assert j == {"snapshot_version": 1, "timestamp_version": want}, j
        check_publication(mdir, None, files, (1, 1, want), root)
        assert (mdir / "1.snapshot.json").read_bytes() == snap
    # a metadata directory elsewhere gets the snapshot the timestamp names, too
    other = tmp_path / "elsewhere"
    out = ok(cli("ota", "refresh-timestamp", name, "--out", str(other)))
    assert "timestamp version: 4" in out, out
    assert (other / "1.snapshot.json").read_bytes() == snap


def in_days(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sign(make_repo, cli, tmp_path):
    name, mdir = make_repo("sign", root_keys=1, root_threshold=1)
    root = load(mdir / "root.json")
    part = {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": in_days(5),
            "targets": {"x.bin": {"length": 1, "hashes": {"sha256": "00" * 32}}}}

    # a signed part on stdin, metadata to stdout
    rc, out, err = cli("ota", "sign", name, "targets", stdin=json.dumps(part).encode())
    assert rc == 0, (rc, err)
    doc = json.loads(out)
    assert doc["signed"] == part
    assert_trusted(doc, root, "targets")

    # a whole metadata file (its "signed" member is what is signed): the next version
    whole = tmp_path / "2.targets.json"
    whole.write_text(json.dumps({"signatures": [], "signed": dict(part, version=2)}, indent=2))
    dest = tmp_path / "out" / "2.targets.json"
    dest.parent.mkdir()
    rc, out, err = cli("--json", "ota", "sign", name, "targets", str(whole), "--out", str(dest))
    assert rc == 0, (rc, out, err)
    j = json.loads(out)
    assert j["role"] == "targets" and j["version"] == 2 and j["repeated"] is False, j
    assert base64.b64decode(j["metadata"]) == dest.read_bytes()
    doc = load(dest)
    assert doc["signed"] == dict(part, version=2)
    assert_trusted(doc, root, "targets")
    # the same again: the same file, marked repeated
    rc, out, err = cli("--json", "ota", "sign", name, "targets", str(whole))
    j = json.loads(out)
    assert rc == 0 and j["repeated"] is True and base64.b64decode(j["metadata"]) == \
        dest.read_bytes(), (rc, out, err)
    # a rollback is the server's refusal (exit 4)
    rc, out, err = cli("ota", "sign", name, "targets", stdin=json.dumps(part).encode())
    assert rc == 4 and out == "" and "FAILED_PRECONDITION: refused rollback" in err, (rc, err)


def test_rotate_root(make_repo, pb, good, cli, tmp_path):
    name, mdir = make_repo("rot")
    root1 = load(mdir / "1.root.json")
    new = ["ota-cli-rot-newroot-%d" % i for i in range(2)]
    for n in new:
        good.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=pb.ED25519),
                       timeout=30)
    j = json.loads(ok(cli("--json", "ota", "rotate-root", name, "--root", ",".join(new),
                          "--root-threshold", "2", "--expires-days", "20", "--out", str(mdir))))
    assert j == {"repository": name, "root_version": 2}, j
    raw = (mdir / "2.root.json").read_bytes()
    assert (mdir / "root.json").read_bytes() == raw
    root2 = json.loads(raw)
    assert root2["signed"]["version"] == 2
    assert root2["signed"]["roles"]["root"]["threshold"] == 2
    # a TUF client accepts root 2: a threshold of root 1's keys and of its own signed it
    assert verified(root2, root1, "root") == set(root1["signed"]["roles"]["root"]["keyids"])
    assert verified(root2, root2, "root") == set(root2["signed"]["roles"]["root"]["keyids"])
    assert len(root2["signatures"]) == 5
    assert root2["signed"]["roles"]["targets"] == root1["signed"]["roles"]["targets"]

    # only a threshold: the role keeps its keys
    ok(cli("ota", "rotate-root", name, "--root-threshold", "1", "--out", str(mdir)))
    root3 = load(mdir / "3.root.json")
    assert root3["signed"]["roles"]["root"] == dict(root2["signed"]["roles"]["root"],
                                                    threshold=1)
    # a version other than the next is refused by the server
    rc, out, err = cli("ota", "rotate-root", name, "--version", "9", "--out", str(mdir))
    assert rc == 4 and "FAILED_PRECONDITION" in err, (rc, err)
    # keys without a threshold keep the role's threshold; more than the keys is a usage error
    rc, _, err = cli("ota", "rotate-root", name, "--targets", "a", "--targets-threshold", "2",
                     "--out", str(mdir))
    assert rc == 2 and "--targets-threshold 2 is more than the 1 targets key(s)" in err, err

    # publish writes every root version; status counts them
    (tmp_path / "t").mkdir()
    fresh = tmp_path / "fresh"
    ok(cli("ota", "publish", name, "--targets", str(tmp_path / "t"), "--out", str(fresh)))
    for v in (1, 2, 3):
        assert (fresh / ("%d.root.json" % v)).read_bytes() == \
            (mdir / ("%d.root.json" % v)).read_bytes()
    assert (fresh / "root.json").read_bytes() == (mdir / "3.root.json").read_bytes()
    check_publication(fresh, None, {}, (1, 1, 1), root3)
    assert "root versions: 3" in ok(cli("ota", "status", name))


def test_local_errors_exit_2(make_repo, cli, tmp_path):
    name, mdir = make_repo("err", root_keys=1, root_threshold=1)
    missing = tmp_path / "no-such-dir"
    rc, out, err = cli("ota", "publish", name, "--targets", str(missing), "--out", str(mdir))
    assert rc == 2 and out == "" and str(missing) in err and "No such file" in err, (rc, err)
    assert not (mdir / "timestamp.json").exists()
    # checked before any call: an unknown repository gives the same answer
    rc, _, err = cli("ota", "publish", "no-such-repo", "--targets", str(missing),
                     "--out", str(mdir))
    assert rc == 2 and str(missing) in err, (rc, err)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"_type":"targets","version":1.5}')
    rc, out, err = cli("ota", "sign", name, "targets", stdin=bad.read_bytes())
    assert rc == 2 and out == "" and "floating-point number" in err, (rc, err)
    rc, _, err = cli("ota", "sign", name, "targets", stdin=b"[1]")
    assert rc == 2 and "not a JSON object" in err, (rc, err)
    rc, _, err = cli("ota", "init", "x", "--root", "a,,b", "--targets", "t", "--snapshot", "s",
                     "--timestamp", "t", "--out", str(tmp_path))
    assert rc == 2 and "--root: an empty item" in err, (rc, err)
    rc, _, err = cli("ota", "init", "x", "--root", "a", "--out", str(tmp_path))
    assert rc == 2 and "--targets K[,K...] is required" in err, (rc, err)
    rc, _, err = cli("ota", "publish", name, "--targets", str(tmp_path))
    assert rc == 2 and "--out METADATA_DIR is required" in err, (rc, err)
    # an output directory inside --targets would publish itself next time
    (tmp_path / "t1").mkdir()
    rc, _, err = cli("ota", "publish", name, "--targets", str(tmp_path / "t1"),
                     "--out", str(tmp_path / "t1" / "metadata"))
    assert rc == 2 and "is inside --targets" in err, (rc, err)
    rc, _, err = cli("--json", "ota", "sign", name, "targets", "--out", "-", stdin=b"{}")
    assert rc == 2 and "--out - and --json" in err, (rc, err)
    notdir = tmp_path / "file"
    notdir.write_bytes(b"x")
    rc, _, err = cli("ota", "publish", name, "--targets", str(tmp_path / "t0"),
                     "--out", str(notdir))
    assert rc == 2, (rc, err)


def test_unknown_repository_is_not_found(cli, tmp_path):
    (tmp_path / "t").mkdir()
    for args in (["ota", "status", "no-such-repo"],
                 ["ota", "refresh-timestamp", "no-such-repo", "--out", str(tmp_path)],
                 ["ota", "publish", "no-such-repo", "--targets", str(tmp_path / "t"),
                  "--out", str(tmp_path / "m")],
                 ["ota", "rotate-root", "no-such-repo", "--out", str(tmp_path)]):
        rc, out, err = cli(*args)
        assert rc == 4 and out == "", (args, rc, out, err)
        assert err.startswith("boltseal: %s %s: NOT_FOUND: repository 'no-such-repo' not found"
                              % (args[0], args[1])), (args, err)


def test_help():
    p = subprocess.run([cli_path(), "ota", "--help"], capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert p.returncode == 0, p
    for w in ("ota init NAME --root", "ota publish NAME --targets DIR", "ota refresh-timestamp",
              "ota rotate-root", "ota sign NAME ROLE", "ota status NAME"):
        assert w in out, (w, out)
    p = subprocess.run([cli_path(), "--help"], capture_output=True, timeout=30)
    assert "ota publish" in p.stdout.decode()


def test_director_kind_and_vehicle(make_repo, cli, tmp_path):
    """`ota init --kind uptane-director`, then `ota sign --vehicle`: each
    vehicle's targets are its own stream; no vehicle is refused by the
    server, a bad --kind is a usage error (exit 2)."""
    name, mdir = make_repo("dir", root_keys=1, root_threshold=1,
                           extra=("--kind", "uptane-director"))
    part = {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": in_days(1),
            "targets": {"ecu.bin": {"length": 1, "hashes": {"sha256": "00" * 32},
                                    "custom": {"ecuIdentifiers": {"ECU-1": {"hardwareId": "hw"}}}}}}
    for vin in ("VIN-1", "VIN-2"):
        rc, out, err = cli("--json", "ota", "sign", name, "targets", "--vehicle", vin,
                           stdin=json.dumps(part).encode())
        assert rc == 0, (rc, err)
        assert json.loads(out)["version"] == 1 and json.loads(out)["repeated"] is False
    rc, out, err = cli("ota", "sign", name, "targets", stdin=json.dumps(part).encode())
    assert rc != 0 and "vehicle_id: required" in err, (rc, err)
    rc, _, err = cli("ota", "init", "x", "--root", "a", "--targets", "t", "--snapshot", "s",
                     "--timestamp", "t", "--kind", "bogus", "--out", str(tmp_path))
    assert rc == 2 and "--kind: tuf, uptane-image or uptane-director" in err, (rc, err)


def test_aktualizr_dialect_end_to_end(pb, good, cli, tmp_path):
    """init --dialect aktualizr, publish, refresh-timestamp, rotate-root: the
    files carry the capitalised _type and base64 signatures with "method";
    publish refuses a Director (its metadata is per vehicle)."""
    keys = {r: "ota-cli-akt-" + r for r in ("root", "targets", "snapshot", "timestamp")}
    for k in keys.values():
        good.CreateKey(pb.CreateKeyRequest(name=k, purpose=pb.OTA, algorithm=pb.ED25519),
                       timeout=30)
    mdir, images = tmp_path / "metadata", tmp_path / "images"
    ok(cli("ota", "init", "cli-akt", "--root", keys["root"], "--targets", keys["targets"],
           "--snapshot", keys["snapshot"], "--timestamp", keys["timestamp"],
           "--dialect", "aktualizr", "--out", str(mdir)))
    write_tree(images, {"ecu.bin": b"firmware"})
    ok(cli("ota", "publish", "cli-akt", "--targets", str(images), "--out", str(mdir)))
    ok(cli("ota", "refresh-timestamp", "cli-akt", "--out", str(mdir)))
    ok(cli("ota", "rotate-root", "cli-akt", "--out", str(mdir)))
    for f, t in [("2.root.json", "Root"), ("1.targets.json", "Targets"),
                 ("1.snapshot.json", "Snapshot"), ("timestamp.json", "Timestamp")]:
        doc = load(mdir / f)
        assert doc["signed"]["_type"] == t, (f, doc["signed"]["_type"])
        assert all(s["method"] == "ed25519" for s in doc["signatures"]), doc["signatures"]
    assert load(mdir / "timestamp.json")["signed"]["version"] == 2

    rc, _, err = cli("ota", "publish", "cli-dir", "--targets", str(images), "--out",
                     str(tmp_path / "dir-meta"))
    assert rc == 2 and "is an Uptane Director" in err, (rc, err)


def test_publish_replaces_a_wrong_target_copy(make_repo, cli, tmp_path):
    """A file under a target's hash name with other content (same length)
    is replaced by the next publish, never kept on its name."""
    name, mdir = make_repo("copy", root_keys=1, root_threshold=1)
    images, tout = tmp_path / "images", tmp_path / "targets"
    write_tree(images, {"ecu.bin": b"good firmware"})
    ok(cli("ota", "publish", name, "--targets", str(images), "--out", str(mdir),
           "--targets-out", str(tout)))
    h = hashlib.sha256(b"good firmware").hexdigest()
    copy = tout / ("%s.ecu.bin" % h)
    copy.unlink()                                  # a new inode: the source stays intact
    copy.write_bytes(b"evil firmware")
    ok(cli("ota", "publish", name, "--targets", str(images), "--out", str(mdir),
           "--targets-out", str(tout)))
    assert copy.read_bytes() == b"good firmware"
