# test_commands_cose.py - vehicle commands as COSE_Sign1 (RFC 9052) with a
# CWT claims set (RFC 8392), checked with python3-cbor2 and
# python3-cryptography: the RFC 9052 Sig_structure built here, ES256 (r||s)
# and EdDSA, the protected header {1: alg, 4: kid}, every claim under its CWT
# label, the deterministic encoding (RFC 8949 4.2.1), one sequence shared with
# the JWS tokens; and CommandService.InspectCommand, the forensic check of a
# past token (JWS or COSE): which key version signed it, whether the key and
# the vehicle were valid when it was issued, its audit record; forged,
# tampered and foreign tokens refused; the auditor may ask, a signer may not.
import base64
import json
import os
import time

import cbor2
import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

import auditutil
import bsutil
from conftest import status_of
from test_commands import Cmd, cpb  # noqa: F401  (the module's proto stubs fixture)

INSPECT = "/boltseal.v1.CommandService/InspectCommand"


@pytest.fixture(scope="module")
def cc(env, pb, cpb):  # noqa: F811
    c = env.client()
    for name, alg in (("cmd-cose-es", pb.ECDSA_P256_SHA256), ("cmd-cose-ed", pb.ED25519)):
        c.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.COMMAND, algorithm=alg), timeout=30)
    x = Cmd(c, cpb)
    x.pub = {n: serialization.load_der_public_key(
        c.GetPublicKey(pb.GetPublicKeyRequest(name=n), timeout=30).der)
        for n in ("cmd-cose-es", "cmd-cose-ed")}
    x.inspect_with = lambda client: client.channel.unary_unary(
        INSPECT, request_serializer=cpb[0].InspectCommandRequest.SerializeToString,
        response_deserializer=cpb[0].InspectCommandResponse.FromString)
    x.inspect = x.inspect_with(c)
    x.client = c
    yield x
    c.close()


def send(cc, vid, cmd, key, args=None, fmt=None, valid=0):
    c = cc.c
    body = json.dumps(args).encode() if args is not None else b""
    return cc.sign(c.SignCommandRequest(vehicle_id=vid, command=cmd, args=body, key_name=key,
                                        valid_seconds=valid,
                                        format=c.COMMAND_FORMAT_COSE if fmt is None else fmt),
                   timeout=30)


def verify_cose(pub, blob):
    """RFC 9052 4.4 written here: returns (protected map, claims map)."""
    tag = cbor2.loads(blob)
    assert isinstance(tag, cbor2.CBORTag) and tag.tag == 18
    prot, unprot, payload, sig = tag.value
    assert isinstance(prot, bytes) and unprot == {} and isinstance(payload, bytes)
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    assert len(sig) == 64
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                              int.from_bytes(sig[32:], "big")),
                   tbs, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        pub.verify(sig, tbs)
    return cbor2.loads(prot), cbor2.loads(payload), prot, payload


def test_cose_sign1_verifies_with_cbor2_and_cryptography(env, cc):
    cc.vehicle("cose-truck-1", carrier_id="acme")
    for key, alg in (("cmd-cose-es", -7), ("cmd-cose-ed", -8)):
        args = {"route": "A7", "speed_kph": 60, "stops": [1, -2, {"b": True, "aa": None}]}
        r = send(cc, "cose-truck-1", "route.override", key, args)
        assert r.token == "" and len(r.cose) > 64
        prot, claims, prot_bytes, payload = verify_cose(cc.pub[key], r.cose)
        assert prot == {1: alg, 4: r.kid.encode()}
        assert claims == {1: "boltseal", 2: "cose-truck-1", 3: "boltseal-vehicle",
                          4: r.expires, 5: r.not_before, 6: r.not_before,
                          7: bytes.fromhex(r.jti), "cmd": "route.override", "seq": r.seq,
                          "args": args}
        # deterministic encoding (RFC 8949 4.2.1): what cbor2 writes canonically, byte for byte
        assert cbor2.dumps(claims, canonical=True) == payload
        assert cbor2.dumps(prot, canonical=True) == prot_bytes
        # a changed claim does not verify
        tag = cbor2.loads(r.cose)
        forged = dict(claims)
        forged[2] = "cose-truck-2"
        tag.value[2] = cbor2.dumps(forged, canonical=True)
        with pytest.raises(Exception):
            verify_cose(cc.pub[key], cbor2.dumps(tag))
    recs = [x for x in bsutil.audit_records(env.state_dir)
            if x["method"] == "boltseal.v1.CommandService/SignCommand" and x["result"] == "OK"]
    assert recs[-1]["fields"]["command.format"] == "cose"
    assert recs[-1]["fields"]["command.jti"] == r.jti


def test_cose_and_jws_share_the_vehicle_sequence(cc):
    cc.vehicle("cose-truck-seq")
    seqs = []
    for fmt in (cc.c.COMMAND_FORMAT_JWS, cc.c.COMMAND_FORMAT_COSE, cc.c.COMMAND_FORMAT_JWS,
                cc.c.COMMAND_FORMAT_COSE):
        seqs.append(send(cc, "cose-truck-seq", "dispatch.accept", "cmd-cose-es", fmt=fmt).seq)
    assert seqs == [1, 2, 3, 4]


def test_bad_format_is_refused(cc):
    with pytest.raises(grpc.RpcError) as e:
        send(cc, "cose-truck-seq", "dispatch.accept", "cmd-cose-es", fmt=7)
    assert status_of(e.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in e.value.details()


def read_record(env, client, index):
    outdir = os.path.join(env.workdir, "cose-audit-stubs")
    os.makedirs(outdir, exist_ok=True)
    apb = auditutil.generate_audit_stubs(outdir)
    a = auditutil.AuditClient(client.channel, apb)
    return a.ReadRecords(apb.ReadRecordsRequest(start=index, max_records=1), timeout=30).records[0]


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def test_inspect_names_key_vehicle_state_and_audit_record(env, cc, pb):
    cc.vehicle("cose-truck-forensic", carrier_id="acme")
    before = int(time.time())
    jws_tok = send(cc, "cose-truck-forensic", "safe_stop", "cmd-cose-es", {"why": "drill"},
                   fmt=cc.c.COMMAND_FORMAT_JWS)
    cose_tok = send(cc, "cose-truck-forensic", "safe_stop", "cmd-cose-ed", {"why": "drill"})
    # the vehicle is suspended right afterwards, most likely within the same second: the
    # audit record's command.vehicle_version says exactly which record the policy judged
    cc.status(cc.v.SetVehicleStatusRequest(id="cose-truck-forensic",
                                           status=cc.v.VEHICLE_SUSPENDED, reason="stolen"),
              timeout=30)
    auditor = env.client(ident="audit-ext")
    for tok, blob, key in ((jws_tok, jws_tok.token.encode(), "cmd-cose-es"),
                           (cose_tok, cose_tok.cose, "cmd-cose-ed")):
        r = cc.inspect_with(auditor)(cc.c.InspectCommandRequest(token=blob), timeout=30)
        assert r.format == (cc.c.COMMAND_FORMAT_COSE if tok is cose_tok else
                            cc.c.COMMAND_FORMAT_JWS)
        assert (r.key_name, r.key_version, r.kid) == (key, 1, tok.kid)
        assert r.key_valid_at_issue and r.key_created <= r.issued_at
        assert (r.vehicle_id, r.command, r.seq, r.jti) == ("cose-truck-forensic", "safe_stop",
                                                           tok.seq, tok.jti)
        assert json.loads(r.args) == {"why": "drill"}
        assert before - 5 <= r.issued_at == r.not_before == tok.not_before   # slack: a clock step
        assert r.expires == tok.expires
        assert r.vehicle_version_at_issue == 1
        assert r.vehicle_status_at_issue == "active" and r.vehicle_status_now == "suspended"
        assert r.audit_found
        rec = json.loads(r.audit_record)
        assert rec["method"] == "boltseal.v1.CommandService/SignCommand"
        assert rec["result"] == "OK" and rec["key"] == key and rec["key_version"] == 1
        assert rec["fields"]["command.jti"] == tok.jti
        assert rec["fields"]["command.vehicle_version"] == "1"
        # the record is the log's record at that index, byte for byte
        assert read_record(env, auditor, r.audit_index) == r.audit_record
    # the inspection itself is audited, by the auditor
    recs = [x for x in bsutil.audit_records(env.state_dir)
            if x["method"] == "boltseal.v1.CommandService/InspectCommand"]
    assert recs[-1]["result"] == "OK" and recs[-1]["identity"].endswith("/audit/ext")
    assert recs[-1]["fields"]["command.inspected_jti"] == cose_tok.jti


def test_inspect_after_rotation_names_the_old_version(env, cc, pb):
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="cmd-cose-rot", purpose=pb.COMMAND,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    cc.vehicle("cose-truck-rot")
    old = send(cc, "cose-truck-rot", "dispatch.accept", "cmd-cose-rot",
               fmt=cc.c.COMMAND_FORMAT_JWS)
    c.RotateKey(pb.RotateKeyRequest(name="cmd-cose-rot"), timeout=30)
    new = send(cc, "cose-truck-rot", "dispatch.accept", "cmd-cose-rot")
    assert new.key_version == 2 and new.kid != old.kid
    r1 = cc.inspect(cc.c.InspectCommandRequest(token=old.token.encode()), timeout=30)
    r2 = cc.inspect(cc.c.InspectCommandRequest(token=new.cose), timeout=30)
    assert (r1.key_version, r1.kid, r1.seq) == (1, old.kid, 1)
    assert (r2.key_version, r2.kid, r2.seq) == (2, new.kid, 2)
    assert r1.audit_found and r2.audit_found and r1.audit_index < r2.audit_index


def test_inspect_refuses_forged_tampered_and_foreign_tokens(cc):
    cc.vehicle("cose-truck-bad")
    jws_tok = send(cc, "cose-truck-bad", "dispatch.accept", "cmd-cose-es",
                   fmt=cc.c.COMMAND_FORMAT_JWS)
    cose_tok = send(cc, "cose-truck-bad", "dispatch.accept", "cmd-cose-ed")
    h, p, s = jws_tok.token.split(".")
    claims = json.loads(b64d(p))
    claims["seq"] += 100
    p2 = b64e(json.dumps(claims).encode())
    tag = cbor2.loads(cose_tok.cose)
    cl = cbor2.loads(tag.value[2])
    cl["seq"] += 100
    tag.value[2] = cbor2.dumps(cl, canonical=True)
    # a foreign key with a kid of the right form that no key of ours has
    foreign = ec.generate_private_key(ec.SECP256R1())
    hdr = json.loads(b64d(h))
    hdr["kid"] = "A" * 43
    h3 = b64e(json.dumps(hdr).encode())
    der = foreign.sign((h3 + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
    r_, s_ = utils.decode_dss_signature(der)
    sig3 = b64e(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
    cases = [
        ((h + "." + p2 + "." + s).encode(), grpc.StatusCode.INVALID_ARGUMENT, "does not verify"),
        (cbor2.dumps(tag), grpc.StatusCode.INVALID_ARGUMENT, "does not verify"),
        ((h3 + "." + p + "." + sig3).encode(), grpc.StatusCode.NOT_FOUND, "kid"),
        (b"not a token", grpc.StatusCode.INVALID_ARGUMENT, "token"),
        (b"\xd2\x84\x40", grpc.StatusCode.INVALID_ARGUMENT, "COSE_Sign1"),
        (cose_tok.cose + b"\x00", grpc.StatusCode.INVALID_ARGUMENT, "COSE_Sign1"),
        (b"", grpc.StatusCode.INVALID_ARGUMENT, "token"),
        (b"x" * 16385, grpc.StatusCode.INVALID_ARGUMENT, "token"),
    ]
    for blob, code, words in cases:
        with pytest.raises(grpc.RpcError) as e:
            cc.inspect(cc.c.InspectCommandRequest(token=blob), timeout=30)
        assert status_of(e.value) == code, (blob[:40], e.value.details())
        assert words in e.value.details(), e.value.details()


def test_inspect_is_for_the_auditor_not_the_signer(env, cc):
    cc.vehicle("cose-truck-authz")
    tok = send(cc, "cose-truck-authz", "dispatch.accept", "cmd-cose-es")
    signer = env.client(ident="svc-dispatch")
    with pytest.raises(grpc.RpcError) as e:
        cc.inspect_with(signer)(cc.c.InspectCommandRequest(token=tok.cose), timeout=30)
    assert status_of(e.value) == grpc.StatusCode.PERMISSION_DENIED


def test_validity_maximum_per_command(cc):
    """The session daemon sets commands.max_valid_seconds.dispatch.wait = 600;
    every other command keeps commands.max_valid_seconds (30)."""
    cc.vehicle("cose-truck-valid")
    r = send(cc, "cose-truck-valid", "dispatch.wait", "cmd-cose-es")
    assert r.expires - r.not_before == 600
    r = send(cc, "cose-truck-valid", "dispatch.wait", "cmd-cose-es", valid=599,
             fmt=cc.c.COMMAND_FORMAT_JWS)
    assert r.expires - r.not_before == 599
    r = send(cc, "cose-truck-valid", "route.override", "cmd-cose-es")
    assert r.expires - r.not_before == 30
    for cmd, valid, words in (("dispatch.wait", 601, "at most 600 for dispatch.wait "
                               "(commands.max_valid_seconds.dispatch.wait)"),
                              ("route.override", 31, "at most 30 for route.override "
                               "(commands.max_valid_seconds)")):
        with pytest.raises(grpc.RpcError) as e:
            send(cc, "cose-truck-valid", cmd, "cmd-cose-es", valid=valid)
        assert status_of(e.value) == grpc.StatusCode.INVALID_ARGUMENT
        assert words in e.value.details(), e.value.details()


def test_cli_sign_cose_and_inspect(env, cc):
    """`boltseal commands sign --cose` prints the COSE_Sign1 in base64;
    `boltseal commands inspect` (as the auditor) names the key and finds the
    audit record, for that and for a JWS read from standard input."""
    cc.vehicle("cose-truck-cli", carrier_id="acme")
    run = bsutil.cli_runner(env)
    rc, out, err = run("commands", "sign", "cose-truck-cli", "safe_stop", "--key-name",
                       "cmd-cose-ed", "--args", '{"why":"cli"}', "--cose")
    assert rc == 0, err
    blob = base64.b64decode(out.strip())
    _, claims, _, _ = verify_cose(cc.pub["cmd-cose-ed"], blob)
    assert claims[2] == "cose-truck-cli" and claims["args"] == {"why": "cli"}
    audit = bsutil.cli_runner(env, ident="audit-ext")
    rc, out, err = audit("--json", "commands", "inspect", base64.b64encode(blob).decode())
    assert rc == 0, err
    j = json.loads(out)
    assert (j["format"], j["key"], j["key_version"], j["vehicle"], j["seq"]) == \
        ("cose", "cmd-cose-ed", 1, "cose-truck-cli", claims["seq"])
    assert j["key_valid_at_issue"] is True and j["vehicle_status_at_issue"] == "active"
    assert j["audit_found"] is True and isinstance(j["audit_index"], int)
    rc, out, err = run("commands", "sign", "cose-truck-cli", "dispatch.accept", "--key-name",
                       "cmd-cose-es")
    assert rc == 0, err
    rc, out, err = audit("commands", "inspect", "-", stdin=out.encode())
    assert rc == 0, err
    assert "key:       cmd-cose-es version 1" in out and "valid at issue: yes" in out
    assert "at issue: active" in out and "audit:     record " in out
    # the dispatch service may not inspect, and junk is a usage error
    disp = bsutil.cli_runner(env, ident="svc-dispatch")
    rc, out, err = disp("commands", "inspect", base64.b64encode(blob).decode())
    assert rc not in (0, 2) and "PERMISSION_DENIED" in err.upper().replace(" ", "_"), (rc, err)
    rc, out, err = audit("commands", "inspect", "not base64 at all!")
    assert rc == 2 and "neither a JWS" in err, (rc, err)


def test_config_check_refuses_a_bad_command_name(env, tmp_path):
    """`boltsealed -n` checks commands.max_valid_seconds.<command> names and
    reports the line, without starting (and without touching the running
    daemon's store)."""
    conf = tmp_path / "bad.conf"
    text = open(env.conf).read()
    conf.write_text(text + "commands.max_valid_seconds.route.override = 60\n"
                    "commands.max_valid_seconds.9lives = 60\n")
    line = len(text.splitlines()) + 2
    rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, extra_args=["-n"])
    assert rc not in (0, None), out
    want = "%s:%d: commands.max_valid_seconds.9lives: '9lives' is not a command name" % (conf, line)
    assert want in out, out
    conf.write_text(text + "commands.max_valid_seconds.route.override = 60\n")
    rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, extra_args=["-n"])
    assert rc == 0, out
