# test_evidence.py - evidence bundles (`boltseal audit bundle` and
# `boltseal audit verify-bundle`, docs/audit.md "Evidence bundles"): an
# auditor's bundle of a time window holds the records with inclusion
# proofs against a signed checkpoint, the CA certificates, CRLs,
# certificates in force and public keys. It is checked here by `boltseal
# audit verify-bundle` and, file by file, by implementations nobody here
# wrote, as the bundle's README says: Python's tarfile, the Go reference
# note verifier (golang.org/x/mod/sumdb/note) and python3-cryptography for
# the checkpoint, RFC 6962 inclusion proofs recomputed in Python,
# coreutils `sha256sum -c MANIFEST`, `openssl verify -crl_check`, and a
# Sign call's signature verified with the bundled public key. Then:
# flipping one byte of ANY file fails the verification naming that file;
# an added or a missing file, another trusted key, a non-tar file; the
# --vehicle filter; who may seal.
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import auditutil
import bsutil

CS = "/boltseal.v1.CertificateService/"
VS = "/boltseal.v1.VehicleService/"


def utc_ms(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


@pytest.fixture(scope="module")
def pbs(env):
    outdir = os.path.join(env.workdir, "evidence-stubs")
    os.makedirs(outdir, exist_ok=True)
    mods = {}
    for proto in ("certs", "vehicles"):
        bsutil.run(["protoc", "--python_out=" + outdir,
                    "-I" + os.path.join(bsutil.SRCDIR, "proto"), "boltseal/v1/%s.proto" % proto])
        mods[proto] = bsutil._load_module("bs_it_ev_%s_pb2" % proto, os.path.join(
            outdir, "boltseal", "v1", "%s_pb2.py" % proto))
    return mods


def rpc(env, path, req, resp_cls):
    return env.client().channel.unary_unary(
        path, request_serializer=req.SerializeToString,
        response_deserializer=resp_cls.FromString)(req, timeout=30)


def csr_for(key):
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


@pytest.fixture(scope="module")
def window(env, pbs):
    """Activity in a window: a CA and a vehicle profile, vehicle EV-1 with two
    certificates (one revoked), a signing key and a signature. Returns what
    the checks need."""
    pb, c, v = env.stubs.pb, pbs["certs"], pbs["vehicles"]
    client = env.client()
    t0 = datetime.datetime.now(datetime.timezone.utc)
    client.CreateKey(pb.CreateKeyRequest(name="ca-ev", purpose=pb.CA,
                                         algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    rpc(env, CS + "CreateAuthority", c.CreateAuthorityRequest(
        key_name="ca-ev", common_name="evidence CA"), c.CreateAuthorityResponse)
    rpc(env, CS + "SetProfile", c.SetProfileRequest(profile=c.Profile(
        name="ev-vehicles", ca_key_name="ca-ev", kind=c.VEHICLE,
        uri_prefix="spiffe://fleet.example/vehicle/", max_lifetime_hours=48)),
        c.SetProfileResponse)
    vkey = ec.generate_private_key(ec.SECP256R1())
    rpc(env, VS + "RegisterVehicle", v.RegisterVehicleRequest(
        id="EV-1", identity=v.VehicleIdentity(public_key=vkey.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))),
        v.Vehicle)
    certs = []
    for _ in range(2):
        certs.append(rpc(env, CS + "IssueCertificate", c.IssueCertificateRequest(
            profile="ev-vehicles", subject_id="EV-1", csr_pem=csr_for(vkey)),
            c.IssueCertificateResponse).certificate)
    rpc(env, CS + "RevokeCertificate", c.RevokeCertificateRequest(
        serial_hex=certs[1].serial_hex, reason=4), c.RevokeCertificateResponse)
    client.CreateKey(pb.CreateKeyRequest(name="ev-sign", purpose=pb.GENERIC,
                                         algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    msg = b"firmware 1.2.3 for EV-1"
    sig = client.Sign(pb.SignRequest(key_name="ev-sign", message=msg), timeout=30)
    t1 = datetime.datetime.now(datetime.timezone.utc)
    trusted = os.path.join(env.workdir, "ev-trusted.vkey")
    shutil.copy(os.path.join(env.state_dir, "audit", "vkey"), trusted)
    return {"from": utc_ms(t0), "to": utc_ms(t1), "certs": certs, "msg": msg,
            "sig": sig.signature, "vkey": trusted}


def cli(env, ident, *args):
    return bsutil.cli_runner(env, ident)(*args)


def make_bundle(env, window, out, *extra, ident="audit-ext"):
    rc, so, se = cli(env, ident, "audit", "bundle", "--from", window["from"], "--to",
                     window["to"], "--out", out, "--wait", "30", *extra)
    assert rc == 0, (rc, so, se)
    return so


def verify(env, path, *trust):
    return cli(env, "audit-ext", "audit", "verify-bundle", *trust, path)


def members(path):
    with tarfile.open(path) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def write_tar(path, files):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            t.addfile(info, io.BytesIO(files[name]))


@pytest.fixture(scope="module")
def bundle(env, window):
    path = os.path.join(env.workdir, "evidence.tar")
    out = make_bundle(env, window, path)
    assert "audit bundle: wrote" in out, out
    return path


def test_bundle_verifies_offline(env, window, bundle):
    rc, out, err = verify(env, bundle, "--vkey-file", window["vkey"])
    assert rc == 0 and out.startswith("verify-bundle: OK: "), (rc, out, err)
    assert "public keys" in out and "warning" not in err, (out, err)
    rc, out, err = cli(env, "audit-ext", "--json", "audit", "verify-bundle",
                       "--vkey-file", window["vkey"], bundle)
    j = json.loads(out)
    assert rc == 0 and j["ok"] and j["file"] is None and j["records"] >= 8, j
    assert j["from"] == window["from"] and j["to"] == window["to"] and j["vehicle"] == ""
    assert j["certs"] >= 3 and j["crls"] >= 1 and j["keys"] >= 2, j
    # with no trusted key, it says the trust came from the bundle
    rc, out, err = verify(env, bundle)
    assert rc == 0 and "its own vkey" in err, (rc, out, err)


def test_bundle_checked_by_other_tools(env, window, bundle, tmp_path):
    files = members(bundle)
    for name in ("README", "MANIFEST", "records.jsonl", "seal.json", "proofs.jsonl",
                 "checkpoint", "vkey", "certs/ca-ca-ev.pem", "crls/ca-ev.pem",
                 "keys/ev-sign-v1.pem"):
        assert name in files, (name, sorted(files))
    trusted = open(window["vkey"]).read().strip()
    assert files["vkey"].decode().strip() == trusted
    # the checkpoint: the Go reference verifier and python3-cryptography
    assert auditutil.py_verify_note(files["checkpoint"], trusted)
    rc, text, err = auditutil.go_verify_note(files["checkpoint"], trusted)
    assert rc == 0, err
    origin, size, root = auditutil.parse_checkpoint_text(text.encode())
    # every proof, recomputed (RFC 6962), from the line's own hash
    lines = files["records.jsonl"].split(b"\n")[:-1] + [files["seal.json"].rstrip(b"\n")]
    proofs = [json.loads(p) for p in files["proofs.jsonl"].split(b"\n")[:-1]]
    assert len(lines) == len(proofs) and len(lines) >= 9
    for line, p in zip(lines, proofs):
        leaf = auditutil.leaf_hash(line)
        assert leaf.hex() == p["leaf"] and json.loads(line)["seq"] == p["seq"]
        assert auditutil.verify_inclusion(p["seq"], size, leaf,
                                          [bytes.fromhex(h) for h in p["hashes"]], root)
    recs = [json.loads(x) for x in lines[:-1]]
    assert [r["seq"] for r in recs] == list(range(recs[0]["seq"], recs[0]["seq"] + len(recs)))
    assert all(window["from"] <= r["timestamp"] <= window["to"] for r in (recs[0], recs[-1]))
    events = {r.get("event") for r in recs}
    assert {"ca_created", "profile_set", "certificate_issued", "certificate_revoked"} <= events
    # the seal names MANIFEST's hash; coreutils checks every other file
    seal = json.loads(lines[-1])
    assert seal["method"] == "boltseal.v1.AuditService/SealEvidence" and seal["result"] == "OK"
    assert seal["principal_id"] == "auditor-ext" and seal["event"] == "evidence_sealed"
    assert seal["fields"]["evidence.manifest_sha256"] == hashlib.sha256(
        files["MANIFEST"]).hexdigest()
    assert seal["fields"]["evidence.records"] == str(len(recs))
    d = tmp_path / "x"
    d.mkdir()
    with tarfile.open(bundle) as t:
        t.extractall(d)
    p = subprocess.run(["sha256sum", "--strict", "-c", "MANIFEST"], cwd=d, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and "README: OK" in p.stdout, p.stdout + p.stderr
    listed = {ln.split("  ", 1)[1] for ln in files["MANIFEST"].decode().splitlines()}
    assert listed == set(files) - {"MANIFEST", "seal.json", "proofs.jsonl", "checkpoint", "vkey"}
    # certificates with openssl, against the CA and its CRL
    good, revoked = window["certs"]
    for c, want in ((good, "OK"), (revoked, "certificate revoked")):
        p = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile",
                            str(d / "certs" / "ca-ca-ev.pem"), "-CRLfile",
                            str(d / "crls" / "ca-ev.pem"),
                            str(d / "certs" / (c.serial_hex + ".pem"))],
                           capture_output=True, text=True, timeout=30)
        assert want in p.stdout + p.stderr, (c.serial_hex, p.stdout, p.stderr)
    # the Sign call: its record's payload hash, and the signature with the bundled key
    signs = [r for r in recs if r["method"] == "boltseal.v1.KeyService/Sign"
             and r["key"] == "ev-sign"]
    assert signs and signs[-1]["payload_sha256"] == [hashlib.sha256(window["msg"]).hexdigest()]
    pub = serialization.load_pem_public_key(files["keys/ev-sign-v1.pem"])
    pub.verify(window["sig"], window["msg"], ec.ECDSA(hashes.SHA256()))


def test_any_flipped_byte_names_the_file(env, window, bundle, tmp_path):
    files = members(bundle)
    assert len(files) >= 10
    for name in sorted(files):
        for pos in (0, len(files[name]) // 2, len(files[name]) - 1):
            bad = dict(files)
            b = bytearray(files[name])
            b[pos] ^= 0x01
            bad[name] = bytes(b)
            path = str(tmp_path / "bad.tar")
            write_tar(path, bad)
            rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
            assert rc == 1 and out.startswith("verify-bundle: FAILED at %s: " % name), \
                (name, pos, rc, out, err)
    # untouched files repacked by Python's tarfile still verify
    path = str(tmp_path / "same.tar")
    write_tar(path, files)
    rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
    assert rc == 0, (out, err)


def test_added_missing_and_foreign(env, window, bundle, tmp_path):
    files = members(bundle)
    path = str(tmp_path / "b.tar")
    write_tar(path, dict(files, **{"certs/extra.pem": b"x"}))
    rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
    assert rc == 1 and "FAILED at certs/extra.pem: not listed in MANIFEST" in out, out
    for gone in ("keys/ev-sign-v1.pem", "checkpoint", "README"):
        write_tar(path, {k: v for k, v in files.items() if k != gone})
        rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
        assert rc == 1 and ("FAILED at %s: " % gone) in out, (gone, out)
    # another key trusted: the bundle's vkey is not it
    other = "other.example+0e8ba9bc+AVmLa0KHk0aGx4r7OY7XIcPqs0gn2ZWX+fuwqmdiChbD"
    rc, out, err = verify(env, bundle, "--vkey", other)
    assert rc in (1, 2), (rc, out, err)
    if rc == 1:
        assert "FAILED at vkey" in out, out
    with open(path, "wb") as f:
        f.write(b"not a tar archive at all" * 40)
    rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
    assert rc == 1 and "FAILED at %s: not a" % path in out, (rc, out, err)


def test_vehicle_bundle(env, window, tmp_path):
    path = str(tmp_path / "ev1.tar")
    make_bundle(env, window, path, "--vehicle", "EV-1")
    rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
    assert rc == 0 and "of vehicle EV-1" in out, (rc, out, err)
    files = members(path)
    recs = [json.loads(x) for x in files["records.jsonl"].split(b"\n")[:-1]]
    assert recs and all(r["target"] == "EV-1" or (r["identity"] or "").endswith("/EV-1")
                        for r in recs), recs
    assert sum(r.get("event") == "certificate_issued" for r in recs) == 2
    # the vehicle's certificates only; every profile's CA
    leaves = sorted(n for n in files if n.startswith("certs/") and not n.startswith("certs/ca-"))
    assert leaves == sorted("certs/%s.pem" % c.serial_hex for c in window["certs"]), leaves
    assert "certs/ca-ca-ev.pem" in files


def test_empty_window(env, window, tmp_path):
    path = str(tmp_path / "empty.tar")
    rc, out, err = cli(env, "audit-ext", "audit", "bundle", "--from", "2020-01-01", "--to",
                       "2020-01-02T00:00:00Z", "--out", path, "--wait", "30")
    assert rc == 0 and ": 0 records" in out, (rc, out, err)
    rc, out, err = verify(env, path, "--vkey-file", window["vkey"])
    assert rc == 0 and "OK: 0 records from 2020-01-01T00:00:00.000Z to " \
        "2020-01-02T00:00:00.999Z" in out, (rc, out, err)
    files = members(path)
    assert files["records.jsonl"] == b"" and len(files["proofs.jsonl"].splitlines()) == 1


def test_refusals(env, window, tmp_path):
    path = str(tmp_path / "r.tar")
    # sealing is for auditors: a vehicle gateway may not
    rc, out, err = cli(env, "gw-eu-west-1", "audit", "bundle", "--from", window["from"],
                       "--to", window["to"], "--out", path)
    assert rc == 4 and "PERMISSION_DENIED" in err and not os.path.exists(path), (rc, out, err)
    rc, out, err = cli(env, "audit-ext", "audit", "bundle", "--from", window["to"],
                       "--to", window["from"], "--out", path)
    assert rc == 2 and "is after" in err, (rc, out, err)
    rc, out, err = cli(env, "audit-ext", "audit", "bundle", "--from", "yesterday",
                       "--to", window["to"], "--out", path)
    assert rc == 2 and "--from and --to" in err, (rc, out, err)
    rc, out, err = cli(env, "audit-ext", "audit", "bundle", "--from", window["from"],
                       "--to", window["to"])
    assert rc == 2 and "--out" in err, (rc, out, err)
    rc, out, err = verify(env, str(tmp_path / "missing.tar"))
    assert rc == 2 and "No such file" in err, (rc, out, err)
