# test_telemetry.py - TelemetryService (docs/telemetry.md): vehicle-signed
# telemetry batches. The vehicle simulator is the client library's real
# signer (bs_tlm_sign, through `boltseal telemetry sign`); a second,
# independent signer written here with python3-cbor2 and
# python3-cryptography makes tokens the daemon must accept too, and reads
# the library's tokens back (deterministic CBOR, the kid, the signature).
# Verdicts: good batches (ES256 and EdDSA) accepted; refused with their
# reason: replayed, out of the replay window, another vehicle's key,
# tampered token or samples, out of clock skew, too long a window, unknown
# or suspended vehicle, before its certificate was issued, after its
# certificate was revoked (while a batch from before the revocation still
# verifies), after an identity's notAfter, after RevokeVehicleIdentity. A gateway's batch of batches; the CLI; the audit record.
import hashlib
import os
import subprocess
import time

import cbor2
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

import bsutil

TS = "/boltseal.v1.TelemetryService/"


@pytest.fixture(scope="module")
def tpb(env):
    outdir = os.path.join(env.workdir, "telemetry-stubs")
    os.makedirs(outdir, exist_ok=True)
    for proto in ("telemetry", "vehicles", "certs"):
        bsutil.run(["protoc", "--python_out=" + outdir,
                    "-I" + os.path.join(bsutil.SRCDIR, "proto"), "boltseal/v1/%s.proto" % proto])
    mods = {}
    for proto in ("telemetry", "vehicles", "certs"):
        mods[proto] = bsutil._load_module("bs_it_tlm_%s_pb2" % proto, os.path.join(
            outdir, "boltseal", "v1", "%s_pb2.py" % proto))
    return mods


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def now_ms():
    return int(time.time() * 1000)


class Fleet:
    """Vehicles in the registry with their identity keys, and the calls."""

    def __init__(self, env, tpb, workdir):
        self.env, self.t, self.v, self.c = env, tpb["telemetry"], tpb["vehicles"], tpb["certs"]
        self.ch = env.client().channel
        self.dir = workdir
        self.keys = {}

    def rpc(self, service, meth, req, resp):
        return self.ch.unary_unary("/boltseal.v1.%s/%s" % (service, meth),
                                   request_serializer=req.SerializeToString,
                                   response_deserializer=resp.FromString)(req, timeout=30)

    def register(self, vid, key):
        self.rpc("VehicleService", "RegisterVehicle", self.v.RegisterVehicleRequest(
            id=vid, identity=self.v.VehicleIdentity(public_key=spki(key))), self.v.Vehicle)
        self.keys[vid] = key

    def key_file(self, key):
        path = os.path.join(self.dir, "k-%s.pem" % hashlib.sha256(spki(key)).hexdigest()[:12])
        with open(path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return path

    def sign(self, vid, seq, start=None, end=None, samples=b"s1,s2,s3", key=None, count=3):
        """A token from the client library (boltseal telemetry sign)."""
        end = now_ms() if end is None else end
        start = end - 1000 if start is None else start
        spath = os.path.join(self.dir, "samples")
        with open(spath, "wb") as f:
            f.write(samples)
        out = os.path.join(self.dir, "token")
        p = subprocess.run([os.path.join(bsutil.BUILDDIR, "boltseal"), "telemetry", "sign",
                            "--signing-key", self.key_file(key or self.keys[vid]),
                            "--vehicle", vid, "--seq", str(seq), "--start-ms", str(start),
                            "--end-ms", str(end), "--samples", spath, "--count", str(count),
                            "--out", out], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return bsutil.read(out)

    def verify(self, token, samples=b""):
        return self.rpc("TelemetryService", "VerifyTelemetryBatch",
                        self.t.VerifyTelemetryBatchRequest(batch=self.t.TelemetryBatch(
                            token=token, samples=samples)), self.t.TelemetryVerdict)

    def code(self, token, samples=b""):
        v = self.verify(token, samples)
        return self.t.TelemetryVerdictCode.Name(v.code), v.reason


def py_sign(key, vid, seq, start, end, samples):
    """The same format from an independent implementation (cbor2, cryptography)."""
    kid = hashlib.sha256(spki(key)).digest()
    ed = isinstance(key, ed25519.Ed25519PrivateKey)
    prot = cbor2.dumps({1: -8 if ed else -7, 4: kid}, canonical=True)
    payload = cbor2.dumps({"v": 1, "vid": vid, "seq": seq, "start": start, "end": end,
                           "n": 1, "h": hashlib.sha256(samples).digest()}, canonical=True)
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    if ed:
        sig = key.sign(tbs)
    else:
        r, s = utils.decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))


@pytest.fixture(scope="module")
def fleet(env, tpb, tmp_path_factory):
    f = Fleet(env, tpb, str(tmp_path_factory.mktemp("tlm")))
    f.register("TLM-1", ec.generate_private_key(ec.SECP256R1()))
    f.register("TLM-2", ed25519.Ed25519PrivateKey.generate())
    f.register("TLM-3", ec.generate_private_key(ec.SECP256R1()))
    f.rpc("VehicleService", "SetVehicleStatus", f.v.SetVehicleStatusRequest(
        id="TLM-3", status=f.v.VEHICLE_SUSPENDED, reason="test"), f.v.Vehicle)
    return f


def test_library_tokens_read_by_an_independent_decoder(fleet):
    tok = fleet.sign("TLM-1", 1, samples=b"abc")
    t = cbor2.loads(tok)
    assert t.tag == 18 and len(t.value) == 4 and t.value[1] == {}
    prot, _, payload, sig = t.value
    assert cbor2.loads(prot) == {1: -7, 4: hashlib.sha256(spki(fleet.keys["TLM-1"])).digest()}
    p = cbor2.loads(payload)
    assert p["vid"] == "TLM-1" and p["seq"] == 1 and p["v"] == 1 and p["n"] == 3
    assert p["h"] == hashlib.sha256(b"abc").digest()
    assert cbor2.dumps(p, canonical=True) == payload          # deterministic CBOR
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    fleet.keys["TLM-1"].public_key().verify(
        utils.encode_dss_signature(r, s), cbor2.dumps(["Signature1", prot, b"", payload]),
        ec.ECDSA(hashes.SHA256()))


def test_good_batches_and_replays(fleet):
    tok = fleet.sign("TLM-1", 10, samples=b"x,y")
    v = fleet.verify(tok, b"x,y")
    assert fleet.t.TelemetryVerdictCode.Name(v.code) == "ACCEPTED", v.reason
    assert v.vehicle_id == "TLM-1" and v.seq == 10 and v.samples == 3 and v.reason == ""
    assert v.key_id == hashlib.sha256(spki(fleet.keys["TLM-1"])).hexdigest()
    code, why = fleet.code(tok, b"x,y")
    assert code == "REPLAYED" and "seen already" in why, why
    # Ed25519, and a token of the independent signer
    assert fleet.code(fleet.sign("TLM-2", 1))[0] == "ACCEPTED"
    end = now_ms()
    assert fleet.code(py_sign(fleet.keys["TLM-2"], "TLM-2", 2, end - 500, end, b"q"), b"q")[0] \
        == "ACCEPTED"
    assert fleet.code(py_sign(fleet.keys["TLM-1"], "TLM-1", 11, end - 500, end, b"q"))[0] == \
        "ACCEPTED"
    # late but within the window of 64; then too old
    assert fleet.code(fleet.sign("TLM-1", 9))[0] == "ACCEPTED"
    assert fleet.code(fleet.sign("TLM-1", 9))[0] == "REPLAYED"
    assert fleet.code(fleet.sign("TLM-1", 100))[0] == "ACCEPTED"
    code, why = fleet.code(fleet.sign("TLM-1", 20))
    assert code == "REPLAYED" and "more than 64 behind" in why, why


def test_refusals_with_their_reason(fleet):
    t = fleet.t
    # another vehicle's key: TLM-2's key signing as TLM-1
    code, why = fleet.code(fleet.sign("TLM-1", 200, key=fleet.keys["TLM-2"]))
    assert code == "UNKNOWN_KEY" and "not an identity key of vehicle 'TLM-1'" in why, why
    # tampered: the signature, the payload, the samples
    tok = bytearray(fleet.sign("TLM-1", 201, samples=b"a,b"))
    sig_flip = bytes(tok[:-1] + bytes([tok[-1] ^ 1]))
    assert fleet.code(sig_flip)[0] == "BAD_SIGNATURE"
    i = bytes(tok).index(b"TLM-1")
    payload_flip = bytes(tok[:i] + b"TLM-X" + tok[i + 5:])
    assert fleet.code(payload_flip)[0] in ("BAD_SIGNATURE", "UNKNOWN_VEHICLE")
    assert fleet.code(bytes(tok), b"a,c")[0] == "SAMPLES_MISMATCH"
    assert fleet.code(b"\xd2\x84" + bytes(tok[2:40]))[0] == "MALFORMED"
    assert fleet.code(b"")[0] == "MALFORMED"
    # nothing refused consumed its sequence number: the genuine batch still goes in
    assert fleet.code(bytes(tok), b"a,b")[0] == "ACCEPTED"
    # the clock and the window
    code, why = fleet.code(fleet.sign("TLM-1", 202, end=now_ms() - 3600 * 1000))
    assert code == "CLOCK_SKEW" and "before the server's clock" in why, why
    code, why = fleet.code(fleet.sign("TLM-1", 203, end=now_ms() + 3600 * 1000))
    assert code == "CLOCK_SKEW" and "after the server's clock" in why, why
    assert fleet.code(fleet.sign("TLM-1", 204, start=now_ms() - 2 * 3600 * 1000))[0] == \
        "WINDOW_INVALID"
    # the registry
    fleet.keys["TLM-9"] = fleet.keys["TLM-1"]
    assert fleet.code(fleet.sign("TLM-9", 1))[0] == "UNKNOWN_VEHICLE"
    code, why = fleet.code(fleet.sign("TLM-3", 1))
    assert code == "VEHICLE_NOT_ACTIVE" and "suspended" in why, why
    assert t.TelemetryVerdictCode.Value("ACCEPTED") == 1


def test_certificate_validity_at_the_batch_time(fleet):
    """A vehicle's certificate from boltseal's CA bounds its key in the
    registry: before issuance refused, after revocation refused, a batch
    from before the revocation still accepted."""
    c, pb = fleet.c, fleet.env.stubs.pb
    fleet.env.client().CreateKey(pb.CreateKeyRequest(name="ca-tlm", purpose=pb.CA,
                                                     algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    fleet.rpc("CertificateService", "CreateAuthority", c.CreateAuthorityRequest(
        key_name="ca-tlm", common_name="telemetry CA"), c.CreateAuthorityResponse)
    fleet.rpc("CertificateService", "SetProfile", c.SetProfileRequest(profile=c.Profile(
        name="tlm-vehicles", ca_key_name="ca-tlm", kind=c.VEHICLE,
        uri_prefix="spiffe://fleet.example/vehicle/", max_lifetime_hours=24)),
        c.SetProfileResponse)
    fleet.register("TLM-4", ec.generate_private_key(ec.SECP256R1()))
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    cert = fleet.rpc("CertificateService", "IssueCertificate", c.IssueCertificateRequest(
        profile="tlm-vehicles", subject_id="TLM-4", csr_pem=csr),
        c.IssueCertificateResponse).certificate
    nb_ms = cert.not_before_unix * 1000
    code, why = fleet.code(fleet.sign("TLM-4", 1, start=nb_ms - 60000, end=nb_ms + 1000,
                                      key=key))
    assert code == "KEY_NOT_YET_VALID" and "notBefore" in why, why
    before = fleet.sign("TLM-4", 3, start=nb_ms, end=nb_ms + 1000, key=key)
    assert fleet.code(fleet.sign("TLM-4", 2, key=key))[0] == "ACCEPTED"
    time.sleep(1.1)
    fleet.rpc("CertificateService", "RevokeCertificate", c.RevokeCertificateRequest(
        serial_hex=cert.serial_hex, reason=1), c.RevokeCertificateResponse)
    code, why = fleet.code(fleet.sign("TLM-4", 4, key=key))
    assert code == "KEY_REVOKED" and cert.serial_hex in why, why
    # signed before the revocation, sent after it: valid at the batch's time
    code, why = fleet.code(before)
    assert code == "ACCEPTED", why


def test_identity_validity_from_the_registry(fleet):
    """An identity added with a validity: a window after its notAfter is
    KEY_EXPIRED, a key revoked with RevokeVehicleIdentity is KEY_REVOKED."""
    v = fleet.v
    old = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    fleet.rpc("VehicleService", "AddVehicleIdentity", v.AddVehicleIdentityRequest(
        id="TLM-1", identity=v.VehicleIdentity(public_key=spki(old), not_before=now - 3600,
                                              not_after=now - 10)), v.Vehicle)
    code, why = fleet.code(fleet.sign("TLM-1", 500, key=old))
    assert code == "KEY_EXPIRED" and "notAfter" in why, why
    # inside its validity: accepted
    assert fleet.code(fleet.sign("TLM-1", 501, start=(now - 100) * 1000,
                                 end=(now - 50) * 1000, key=old))[0] == "ACCEPTED"
    other = ec.generate_private_key(ec.SECP256R1())
    kid = hashlib.sha256(spki(other)).hexdigest()
    fleet.rpc("VehicleService", "AddVehicleIdentity", v.AddVehicleIdentityRequest(
        id="TLM-1", identity=v.VehicleIdentity(public_key=spki(other))), v.Vehicle)
    assert fleet.code(fleet.sign("TLM-1", 502, key=other))[0] == "ACCEPTED"
    time.sleep(1.1)
    fleet.rpc("VehicleService", "RevokeVehicleIdentity", v.RevokeVehicleIdentityRequest(
        id="TLM-1", key_id=kid, reason="lost"), v.Vehicle)
    code, why = fleet.code(fleet.sign("TLM-1", 503, key=other))
    assert code == "KEY_REVOKED" and "lost" in why, why


def test_gateway_batch_of_batches_and_cli(fleet, env):
    t = fleet.t
    toks = [fleet.sign("TLM-2", s) for s in range(100, 110)]
    toks.append(toks[0])                                   # a replay inside the same call
    toks.append(fleet.sign("TLM-1", 300, key=fleet.keys["TLM-2"]))
    r = fleet.rpc("TelemetryService", "VerifyTelemetryBatches", t.VerifyTelemetryBatchesRequest(
        batches=[t.TelemetryBatch(token=x) for x in toks]), t.VerifyTelemetryBatchesResponse)
    names = [t.TelemetryVerdictCode.Name(v.code) for v in r.verdicts]
    assert names == ["ACCEPTED"] * 10 + ["REPLAYED", "UNKNOWN_KEY"], names
    assert r.accepted == 10 and [v.seq for v in r.verdicts][:10] == list(range(100, 110))
    rec = bsutil.wait_audit(env.state_dir, lambda x: x.get("method") ==
                            "boltseal.v1.TelemetryService/VerifyTelemetryBatches")[-1]
    assert rec["fields"] == {"accepted": "10", "refused": "2", "first_refusal": "REPLAYED"}, rec
    e = bsutil.rpc_error(fleet.ch.unary_unary(
        TS + "VerifyTelemetryBatches",
        request_serializer=t.VerifyTelemetryBatchesRequest.SerializeToString,
        response_deserializer=t.VerifyTelemetryBatchesResponse.FromString),
        t.VerifyTelemetryBatchesRequest(), timeout=30)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "batch_max" in e.details()

    # the CLI: a vehicle signs, a gateway verifies
    run = bsutil.cli_runner(env)
    d = fleet.dir
    with open(os.path.join(d, "w.csv"), "wb") as f:
        f.write(b"t,speed\n1,80\n")
    now = now_ms()
    rc, out, err = run("telemetry", "sign", "--signing-key", fleet.key_file(fleet.keys["TLM-1"]),
                       "--vehicle", "TLM-1", "--seq", "1000", "--start-ms", str(now - 1000),
                       "--end-ms", str(now), "--samples", os.path.join(d, "w.csv"),
                       "--count", "1", "--out", os.path.join(d, "a.tok"))
    assert rc == 0, err
    rc, out, err = run("telemetry", "verify", os.path.join(d, "a.tok"), "--samples",
                       os.path.join(d, "w.csv"))
    assert rc == 0 and out.startswith("ACCEPTED TLM-1 seq 1000"), (rc, out, err)
    rc, out, err = run("telemetry", "verify", os.path.join(d, "a.tok"), os.path.join(d, "a.tok"))
    assert rc == 1 and out.count("REPLAYED TLM-1 seq 1000") == 2, (rc, out, err)
    rc, out, err = run("telemetry", "sign", "--signing-key", fleet.key_file(fleet.keys["TLM-1"]),
                       "--vehicle", "bad id", "--seq", "1", "--start-ms", "1", "--end-ms", "2")
    assert rc == 2 and "window the format does not allow" in err, (rc, out, err)
