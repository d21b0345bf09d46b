# test_ota_tufjs.py - a stock TUF client nobody here wrote, tuf-js (npm,
# pinned in tests/interop/tuf-js/package-lock.json, installed by
# ./scripts/check), against what `boltseal ota publish` writes, served by a
# loopback HTTP server: a fresh client refreshes root -> timestamp ->
# snapshot -> targets and downloads a target whose hashes match; after
# `boltseal ota rotate-root` and a new publish, a client still holding
# root 1 walks to root 2 and gets the new target; a root signed below the
# previous root's threshold is refused, and so is a target file that does
# not match its hashes; a target listed by a delegated role (`ota delegate`,
# `ota sign` of the role, `ota publish`) is found through the delegation,
# and one outside the role's paths is not.
import datetime
import hashlib
import json
import os
import shutil

import pytest

import bsutil
import tufjs


@pytest.fixture(scope="module")
def cli(env):
    """The CLI with --json as ci-ota-release: its JSON answer; exit 0 required."""
    run = bsutil.cli_runner(env)

    def json_call(*args):
        rc, out, err = run("--json", *args)
        assert rc == 0, (args, rc, out, err)
        return json.loads(out)
    return json_call


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_tuf_js_client_against_published_repository(env, pb, good, cli, tmp_path):
    ok, why = tufjs.available()
    assert ok, why + " (./scripts/check installs it with npm ci)"
    keys = {"root": ["tufjs-root-%d" % i for i in range(3)], "targets": ["tufjs-targets"],
            "snapshot": ["tufjs-snapshot"], "timestamp": ["tufjs-timestamp"]}
    for role, ns in keys.items():
        for n in ns:
            alg = pb.ED25519 if role in ("targets", "timestamp") else pb.ECDSA_P256_SHA256
            good.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.OTA, algorithm=alg), timeout=30)
    site = tmp_path / "site"
    meta, tdir, images = site / "metadata", site / "targets", tmp_path / "images"
    cli("ota", "init", "tufjs", "--root", ",".join(keys["root"][:2]), "--root-threshold", "2",
        "--targets", keys["targets"][0], "--snapshot", keys["snapshot"][0],
        "--timestamp", keys["timestamp"][0], "--out", str(meta))
    fw1 = os.urandom(4096)
    write(str(images / "fw" / "ecu-a.bin"), fw1)
    write(str(images / "maps.db"), b"maps v1")
    cli("ota", "publish", "tufjs", "--targets", str(images), "--out", str(meta),
        "--targets-out", str(tdir))
    trusted_v1 = str(tmp_path / "trusted-1.root.json")
    shutil.copy(str(meta / "1.root.json"), trusted_v1)

    with tufjs.Server(str(site)) as srv:
        murl, turl = srv.url + "/metadata", srv.url + "/targets"
        # a fresh client: root -> timestamp -> snapshot -> targets, then the target
        cache = str(tmp_path / "cache")
        r = tufjs.run_client(murl, turl, trusted_v1, cache, target="fw/ecu-a.bin",
                             out_dir=str(tmp_path / "dl1"))
        assert r["ok"], r
        assert (r["root_version"], r["timestamp_version"], r["snapshot_version"],
                r["targets_version"]) == (1, 1, 1, 1), r
        assert r["target"]["sha256"] == hashlib.sha256(fw1).hexdigest()
        assert open(r["target"]["path"], "rb").read() == fw1

        # root 2 (a root key replaced), a new image, a new publish: the client
        # holding root 1 walks to root 2 and gets the new image
        good.CreateKey(pb.CreateKeyRequest(name="tufjs-root-new", purpose=pb.OTA,
                                           algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        cli("ota", "rotate-root", "tufjs", "--root", keys["root"][1] + ",tufjs-root-new",
            "--root-threshold", "2", "--out", str(meta))
        fw2 = os.urandom(5000)
        write(str(images / "fw" / "ecu-a.bin"), fw2)
        cli("ota", "publish", "tufjs", "--targets", str(images), "--out", str(meta),
            "--targets-out", str(tdir))
        r = tufjs.run_client(murl, turl, trusted_v1, cache, target="fw/ecu-a.bin",
                             out_dir=str(tmp_path / "dl2"))
        assert r["ok"], r
        assert r["root_version"] == 2 and r["targets_version"] == 2, r
        assert r["target"]["sha256"] == hashlib.sha256(fw2).hexdigest()
        assert "/metadata/2.root.json" in srv.paths

        # below threshold: a copy of the site whose 3.root.json (a real rotation
        # that changes no key, so root 2's two keys sign it) keeps one signature
        cli("ota", "rotate-root", "tufjs", "--out", str(meta))
        bad = tmp_path / "bad-site"
        shutil.copytree(str(site), str(bad))
        doc = json.loads((bad / "metadata" / "3.root.json").read_bytes())
        assert len(doc["signatures"]) == 2
        doc["signatures"] = doc["signatures"][:1]
        (bad / "metadata" / "3.root.json").write_bytes(json.dumps(doc).encode())
        good_cache = str(tmp_path / "cache-3")
        with tufjs.Server(str(bad)) as bsrv:
            r = tufjs.run_client(bsrv.url + "/metadata", bsrv.url + "/targets",
                                 str(meta / "2.root.json"), str(tmp_path / "cache-bad"))
            assert not r["ok"] and "signed by" in r["error"], r
            assert not r["error"].startswith("TimeoutError"), r
        # the real 3.root.json is accepted from the same starting point
        r = tufjs.run_client(murl, turl, str(meta / "2.root.json"), good_cache)
        assert r["ok"] and r["root_version"] == 3, r

        # a target whose bytes do not match the signed hashes is refused
        h = hashlib.sha256(fw2).hexdigest()
        victim = tdir / "fw" / ("%s.ecu-a.bin" % h)
        victim.write_bytes(b"X" + fw2[1:])
        r = tufjs.run_client(murl, turl, trusted_v1, str(tmp_path / "cache-4"),
                             target="fw/ecu-a.bin", out_dir=str(tmp_path / "dl4"))
        assert not r["ok"] and not r["error"].startswith("TimeoutError"), r


def test_tuf_js_follows_a_delegation(env, pb, good, cli, tmp_path):
    ok, why = tufjs.available()
    assert ok, why + " (./scripts/check installs it with npm ci)"
    keys = {r: "tufjs-d-" + r for r in ("root", "targets", "snapshot", "timestamp", "acme")}
    for k in keys.values():
        good.CreateKey(pb.CreateKeyRequest(name=k, purpose=pb.OTA, algorithm=pb.ED25519), timeout=30)
    site = tmp_path / "site"
    meta, tdir, images = site / "metadata", site / "targets", tmp_path / "images"
    cli("ota", "init", "tufjs-deleg", "--root", keys["root"], "--targets", keys["targets"],
        "--snapshot", keys["snapshot"], "--timestamp", keys["timestamp"], "--out", str(meta))
    cli("ota", "delegate", "tufjs-deleg", "acme", "--keys", keys["acme"], "--paths", "acme/*")

    # the supplier's role lists its image (and one outside its paths)
    fw = os.urandom(3000)
    h = hashlib.sha256(fw).hexdigest()
    expires = (datetime.datetime.now(datetime.timezone.utc) +
               datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    part = {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": expires,
            "targets": {"acme/ecu-b.bin": {"length": len(fw), "hashes": {"sha256": h}},
                        "other/x.bin": {"length": len(fw), "hashes": {"sha256": h}}}}
    (tmp_path / "acme.json").write_text(json.dumps(part))
    cli("ota", "sign", "tufjs-deleg", "acme", str(tmp_path / "acme.json"), "--out",
        str(tmp_path / "acme-signed.json"))
    write(str(tdir / "acme" / ("%s.ecu-b.bin" % h)), fw)
    write(str(tdir / "other" / ("%s.x.bin" % h)), fw)
    write(str(images / "top.bin"), b"top-level image")
    cli("ota", "publish", "tufjs-deleg", "--targets", str(images), "--out", str(meta),
        "--targets-out", str(tdir))
    assert (meta / "1.acme.json").read_bytes() == (tmp_path / "acme-signed.json").read_bytes()
    top = json.loads((meta / "1.targets.json").read_bytes())["signed"]
    assert [r["name"] for r in top["delegations"]["roles"]] == ["acme"]
    snap = json.loads((meta / "1.snapshot.json").read_bytes())["signed"]
    assert snap["meta"]["acme.json"] == {"version": 1}

    with tufjs.Server(str(site)) as srv:
        murl, turl = srv.url + "/metadata", srv.url + "/targets"
        r = tufjs.run_client(murl, turl, str(meta / "1.root.json"), str(tmp_path / "c1"),
                             target="acme/ecu-b.bin", out_dir=str(tmp_path / "dl"))
        assert r["ok"] and r["target"]["sha256"] == h, r
        assert "/metadata/1.acme.json" in srv.paths
        # listed by the role, but outside the paths it is trusted for: not found
        r = tufjs.run_client(murl, turl, str(meta / "1.root.json"), str(tmp_path / "c2"),
                             target="other/x.bin", out_dir=str(tmp_path / "dl2"))
        assert not r["ok"] and not r["error"].startswith("TimeoutError"), r
