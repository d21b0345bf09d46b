# test_commands.py - boltseal.v1.CommandService against the session daemon:
# tokens verified by implementations nobody here wrote (Debian's
# python3-jwcrypto, and python3-cryptography over the raw JWS parts): ES256
# with the signature as r||s (jwcrypto refuses the same signature DER-encoded)
# and EdDSA, kid the RFC 7638 thumbprint jwcrypto computes, every claim as
# documented; sequence numbers per vehicle, distinct and gap-free under 8
# concurrent clients, durable across a restart and never repeated when the
# daemon is killed with SIGKILL under load; a suspended or unknown
# vehicle refused; a grant on vehicle.* and principal attributes allowing and
# refusing as written; bad input refused; every call audited.
import base64
import concurrent.futures
import json
import os
import threading
import time

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from jwcrypto import jwk, jws

import bsutil
from conftest import status_of

C = "/boltseal.v1.CommandService/SignCommand"
V = "/boltseal.v1.VehicleService/"


@pytest.fixture(scope="module")
def cpb(env):
    outdir = os.path.join(env.workdir, "command-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/commands.proto", "boltseal/v1/vehicles.proto"])
    c = bsutil._load_module("bs_it_commands_pb2",
                            os.path.join(outdir, "boltseal", "v1", "commands_pb2.py"))
    v = bsutil._load_module("bs_it_vehicles_pb2c",
                            os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))
    return c, v


class Cmd:
    def __init__(self, client, cpb):
        c, v = cpb
        self.sign = client.channel.unary_unary(C, request_serializer=c.SignCommandRequest.
                                               SerializeToString,
                                               response_deserializer=c.SignCommandResponse.FromString)
        self.register = client.channel.unary_unary(
            V + "RegisterVehicle", request_serializer=v.RegisterVehicleRequest.SerializeToString,
            response_deserializer=v.Vehicle.FromString)
        self.status = client.channel.unary_unary(
            V + "SetVehicleStatus", request_serializer=v.SetVehicleStatusRequest.SerializeToString,
            response_deserializer=v.Vehicle.FromString)
        self.update = client.channel.unary_unary(
            V + "UpdateVehicleAttributes",
            request_serializer=v.UpdateVehicleAttributesRequest.SerializeToString,
            response_deserializer=v.Vehicle.FromString)
        self.c, self.v = c, v

    def vehicle(self, vid, **attrs):
        pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.register(self.v.RegisterVehicleRequest(id=vid, attributes=attrs,
                                                    identity=self.v.VehicleIdentity(public_key=pub)),
                      timeout=30)

    def send(self, vid, cmd, key, args=None, valid=0):
        body = json.dumps(args).encode() if args is not None else b""
        return self.sign(self.c.SignCommandRequest(vehicle_id=vid, command=cmd, args=body,
                                                   key_name=key, valid_seconds=valid), timeout=30)


@pytest.fixture(scope="module")
def cmd(env, pb, cpb):
    c = env.client()
    for name, alg in (("cmd-it-es", pb.ECDSA_P256_SHA256), ("cmd-it-ed", pb.ED25519)):
        c.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.COMMAND, algorithm=alg), timeout=30)
    c.CreateKey(pb.CreateKeyRequest(name="cmd-it-generic", purpose=pb.GENERIC,
                                    algorithm=pb.ED25519), timeout=30)
    x = Cmd(c, cpb)
    x.pub = {n: c.GetPublicKey(pb.GetPublicKeyRequest(name=n), timeout=30).pem
             for n in ("cmd-it-es", "cmd-it-ed")}
    yield x
    c.close()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def test_es256_and_eddsa_tokens_verify_with_jwcrypto(env, cmd):
    cmd.vehicle("cmd-truck-1", carrier_id="acme")
    for key, alg in (("cmd-it-es", "ES256"), ("cmd-it-ed", "EdDSA")):
        before = int(time.time())
        r = cmd.send("cmd-truck-1", "route.override", key, {"route": "A7", "speed_kph": 60})
        k = jwk.JWK.from_pem(cmd.pub[key].encode())
        t = jws.JWS()
        t.deserialize(r.token)
        t.verify(k)                                   # raises if it does not verify
        hdr = t.jose_header
        assert hdr["alg"] == alg and hdr["typ"] == "JWT"
        assert hdr["kid"] == k.thumbprint() == r.kid  # RFC 7638
        claims = json.loads(t.payload)
        assert claims == {"iss": "boltseal", "sub": "cmd-truck-1", "aud": "boltseal-vehicle",
                          "iat": r.not_before, "nbf": r.not_before, "exp": r.expires,
                          "jti": r.jti, "seq": r.seq, "cmd": "route.override",
                          "args": {"route": "A7", "speed_kph": 60}}
        # the daemon's clock and ours are the same; 5 s of slack for a clock stepped meanwhile
        assert before - 5 <= claims["iat"] <= int(time.time()) + 5
        assert claims["exp"] - claims["nbf"] == 30      # commands.max_valid_seconds
        assert len(r.jti) == 32 and int(r.jti, 16) >= 0
        sig = b64d(r.token.split(".")[2])
        assert len(sig) == 64
        if alg == "ES256":
            # r||s as RFC 7518 3.4 wants; the same signature DER-encoded is refused
            h, p, _ = r.token.split(".")
            pub = serialization.load_pem_public_key(cmd.pub[key].encode())
            pub.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                                  int.from_bytes(sig[32:], "big")),
                       (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                             int.from_bytes(sig[32:], "big"))
            bad = jws.JWS()
            bad.deserialize(h + "." + p + "." + b64e(der))
            with pytest.raises(jws.InvalidJWSSignature):
                bad.verify(k)
    recs = [x for x in bsutil.audit_records(env.state_dir)
            if x["method"] == "boltseal.v1.CommandService/SignCommand" and x["result"] == "OK"]
    assert recs[-1]["fields"]["command.vehicle_id"] == "cmd-truck-1"
    assert recs[-1]["fields"]["command.name"] == "route.override"
    assert recs[-1]["fields"]["command.jti"] == r.jti
    assert recs[-1]["key"] == "cmd-it-ed"


def test_sequence_numbers_distinct_gap_free_and_durable(env, cmd):
    cmd.vehicle("cmd-truck-seq")
    first = cmd.send("cmd-truck-seq", "dispatch.accept", "cmd-it-es").seq
    assert first == 1

    def burst(_):
        return [cmd.send("cmd-truck-seq", "dispatch.accept", "cmd-it-es").seq for _ in range(500)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        seqs = [s for part in ex.map(burst, range(8)) for s in part]
    assert sorted(seqs) == list(range(2, 4002))       # 4,000 distinct, no gap
    # another vehicle has its own numbers
    cmd.vehicle("cmd-truck-other")
    assert cmd.send("cmd-truck-other", "dispatch.accept", "cmd-it-es").seq == 1


def test_registry_changes_leave_no_gap(cmd):
    """Numbers come from blocks reserved ahead; a change in the registry (of
    another vehicle, or of this one) makes the block re-checked, not lost."""
    cmd.vehicle("cmd-truck-gap", carrier_id="acme")
    cmd.vehicle("cmd-truck-gap-other", carrier_id="acme")
    got = [cmd.send("cmd-truck-gap", "dispatch.accept", "cmd-it-es").seq for _ in range(3)]
    cmd.update(cmd.v.UpdateVehicleAttributesRequest(id="cmd-truck-gap-other",
                                                    set={"vehicle_class": "heavy"}), timeout=30)
    got.append(cmd.send("cmd-truck-gap", "dispatch.accept", "cmd-it-es").seq)
    cmd.update(cmd.v.UpdateVehicleAttributesRequest(id="cmd-truck-gap",
                                                    set={"vehicle_class": "heavy"}), timeout=30)
    got += [cmd.send("cmd-truck-gap", "dispatch.accept", "cmd-it-es").seq for _ in range(2)]
    assert got == [1, 2, 3, 4, 5, 6]


def test_nothing_is_signed_once_a_suspension_answered(cmd):
    """4 clients sign commands for one vehicle without pause while it is
    suspended: every call that starts after SetVehicleStatus answered is
    refused, whichever path (remembered record and block, or the store) its
    number would have come from."""
    cmd.vehicle("cmd-truck-race")
    answered = threading.Event()
    stop = threading.Event()
    late_ok, late_calls = [], []

    def client():
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            after = answered.is_set()
            if after:
                late_calls.append(1)
            try:
                r = cmd.send("cmd-truck-race", "route.override", "cmd-it-es")
                if after:
                    late_ok.append(r.seq)
            except grpc.RpcError as e:
                assert status_of(e) in (grpc.StatusCode.PERMISSION_DENIED,
                                        grpc.StatusCode.ABORTED), e.details()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        futs = [ex.submit(client) for _ in range(4)]
        time.sleep(0.5)
        cmd.status(cmd.v.SetVehicleStatusRequest(id="cmd-truck-race",
                                                 status=cmd.v.VEHICLE_SUSPENDED), timeout=30)
        answered.set()
        time.sleep(0.5)
        stop.set()
        for f in futs:
            f.result(timeout=60)
    assert late_ok == [], "signed after the suspension answered: seq %r" % late_ok
    assert len(late_calls) >= 4, "no call started after the suspension answered"


def test_durable_across_restart(env, second_daemon, pb, cpb):
    sd = second_daemon("commands")
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                      env.stubs)
    c.CreateKey(pb.CreateKeyRequest(name="cmd-rs", purpose=pb.COMMAND, algorithm=pb.ED25519),
                timeout=30)
    x = Cmd(c, cpb)
    x.vehicle("truck-rs")
    assert [x.send("truck-rs", "safe_stop", "cmd-rs").seq for _ in range(3)] == [1, 2, 3]
    c.close()
    d.kill()                                          # SIGKILL: no clean shutdown
    d = sd.start()
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                      env.stubs)
    # above every number issued; the numbers reserved and not issued before the
    # crash (at most one block of 64, docs/commands.md) are a gap, never a repeat
    after = Cmd(c, cpb).send("truck-rs", "safe_stop", "cmd-rs").seq
    assert 4 <= after <= 3 + 64 + 1, after
    c.close()
    bsutil.stop_clean(d)


def test_sigkill_under_load_never_repeats_a_number(env, second_daemon, pb, cpb):
    """8 clients sign commands for one vehicle as fast as they can; the daemon
    is killed with SIGKILL in the middle; after a restart the clients go on.
    Every token any client received is checked: no sequence number twice."""
    sd = second_daemon("commands-kill")
    d = sd.start()
    files = env.client_files("ci-ota-release")
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *files), env.stubs)
    c.CreateKey(pb.CreateKeyRequest(name="cmd-kill", purpose=pb.COMMAND, algorithm=pb.ED25519),
                timeout=30)
    Cmd(c, cpb).vehicle("truck-kill")
    c.close()

    def client(n):
        got = []
        deadline = time.monotonic() + 90
        while len(got) < n and time.monotonic() < deadline:
            # a new channel after each failure: no waiting out gRPC's reconnect back-off
            cl = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *files), env.stubs)
            x = Cmd(cl, cpb)
            try:
                while len(got) < n:
                    r = x.sign(x.c.SignCommandRequest(vehicle_id="truck-kill",
                                                      command="safe_stop", key_name="cmd-kill"),
                               timeout=5)
                    got.append((r.seq, r.jti, r.token))
            except grpc.RpcError:
                time.sleep(0.1)                       # the daemon is down: try again
            finally:
                cl.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(max_workers=9) as ex:
        futs = [ex.submit(client, 500) for _ in range(8)]
        time.sleep(1.0)
        d.kill()                                      # SIGKILL while calls are in flight
        d = sd.start()
        got = [t for f in futs for t in f.result(timeout=150)]
    seqs = [s for s, _, _ in got]
    assert len(got) == 8 * 500, len(got)              # every client got all its tokens
    assert len(set(seqs)) == len(seqs), "a sequence number was issued twice"
    assert len({j for _, j, _ in got}) == len(got)
    # every token carries the number it was answered with
    for s, _, tok in got:
        assert json.loads(b64d(tok.split(".")[1]))["seq"] == s
    # after the restart the numbers go on above every one issued before
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *files), env.stubs)
    last = Cmd(c, cpb).send("truck-kill", "safe_stop", "cmd-kill").seq
    c.close()
    assert got and last > max(seqs), (last, max(seqs) if seqs else None)
    bsutil.stop_clean(d)


def test_suspended_unknown_and_bad_input(env, cmd):
    cmd.vehicle("cmd-truck-susp")
    cmd.status(cmd.v.SetVehicleStatusRequest(id="cmd-truck-susp",
                                             status=cmd.v.VEHICLE_SUSPENDED), timeout=30)
    cases = [
        # it-all's grant says nothing of vehicle.status: it does not reach a suspended vehicle
        (("cmd-truck-susp", "route.override", "cmd-it-es"), "PERMISSION_DENIED",
         "permission denied"),
        (("cmd-no-such", "route.override", "cmd-it-es"), "NOT_FOUND", "vehicle 'cmd-no-such'"),
        (("cmd-truck-1", "route.override", "cmd-it-generic"), "FAILED_PRECONDITION",
         "key of purpose command"),
        (("cmd-truck-1", "route.override", "cmd-no-key"), "NOT_FOUND", "key 'cmd-no-key'"),
        (("cmd-truck-1", "Route", "cmd-it-es"), "INVALID_ARGUMENT", "command: 1..64"),
        (("bad id!", "x", "cmd-it-es"), "INVALID_ARGUMENT", "vehicle_id"),
    ]
    for a, code, msg in cases:
        with pytest.raises(grpc.RpcError) as ei:
            cmd.send(*a)
        assert status_of(ei.value).name == code and msg in ei.value.details(), \
            (a, ei.value.details())
    for body, msg in [(b'{"speed": 1.5}', "floating-point"), (b"[1]", "must be a JSON object"),
                      (b'{"a":1,"a":2}', "duplicate"),
                      # what the vehicle-side reader would refuse is never signed
                      (json.dumps({"k%d" % i: i for i in range(65)}).encode(),
                       "more than 64 members"),
                      (b'{"a":' + b'[' * 15 + b']' * 15 + b'}', "nested deeper"),
                      (b'{"a":"line\\nbreak"}', "control character")]:
        with pytest.raises(grpc.RpcError) as ei:
            cmd.sign(cmd.c.SignCommandRequest(vehicle_id="cmd-truck-1", command="x",
                                              args=body, key_name="cmd-it-es"), timeout=30)
        assert status_of(ei.value) == grpc.StatusCode.INVALID_ARGUMENT
        assert msg in ei.value.details(), ei.value.details()
    with pytest.raises(grpc.RpcError) as ei:
        cmd.send("cmd-truck-1", "x", "cmd-it-es", valid=31)
    assert "valid_seconds: at most 30" in ei.value.details()
    susp = [r for r in bsutil.audit_records(env.state_dir)
            if r.get("fields", {}).get("command.vehicle_id") == "cmd-truck-susp"]
    assert "tests vehicle.status, which this call needs" in susp[-1]["reason"], susp[-1]


POLICY = """
principal dispatch
    uri spiffe://fleet.example/svc/dispatch
    attr carrier_id "acme"
    attr region "eu"
    roles dispatcher
principal alice
    uri spiffe://fleet.example/admin/alice
    roles admin
role dispatcher
    grant
        methods boltseal.v1.CommandService/SignCommand
        keys cmd-*
        purposes command
        when request.command == "route.override"
        when vehicle.carrier_id == principal.carrier_id
        when vehicle.regulatory_region == principal.region
    # a suspended truck can still be stopped: this grant names the status
    grant
        methods boltseal.v1.CommandService/SignCommand
        keys cmd-*
        purposes command
        when request.command == "safe_stop"
        when vehicle.status in ["active", "suspended"]
        when vehicle.carrier_id == principal.carrier_id
role admin
    grant
        methods boltseal.v1.KeyService/CreateKey
        keys *
    grant
        methods boltseal.v1.VehicleService/*
"""


def test_attribute_grant(env, second_daemon, pb, cpb):
    """dispatch may send route.override only to vehicles of its own carrier
    and region; every refusal is PERMISSION_DENIED, audited with its reason."""
    sd = second_daemon("cmd-policy")
    sd.use_policy(POLICY)
    d = sd.start()
    admin = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("admin-alice")),
                          env.stubs)
    admin.CreateKey(pb.CreateKeyRequest(name="cmd-pol", purpose=pb.COMMAND,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    a = Cmd(admin, cpb)
    a.vehicle("eu-acme", carrier_id="acme", regulatory_region="eu")
    a.vehicle("eu-other", carrier_id="other", regulatory_region="eu")
    a.vehicle("us-acme", carrier_id="acme", regulatory_region="us")
    disp = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("svc-dispatch")),
                         env.stubs)
    x = Cmd(disp, cpb)
    assert x.send("eu-acme", "route.override", "cmd-pol").seq == 1
    for vid, cmdname in (("eu-other", "route.override"), ("us-acme", "route.override"),
                         ("eu-acme", "dispatch.accept"), ("nowhere", "route.override")):
        with pytest.raises(grpc.RpcError) as ei:
            x.send(vid, cmdname, "cmd-pol")
        assert status_of(ei.value) == grpc.StatusCode.PERMISSION_DENIED, (vid, cmdname)
    # the playbook: suspend, then only what names the suspended state gets through
    a.status(a.v.SetVehicleStatusRequest(id="eu-acme", status=a.v.VEHICLE_SUSPENDED,
                                         reason="compromised"), timeout=30)
    with pytest.raises(grpc.RpcError) as ei:
        x.send("eu-acme", "route.override", "cmd-pol")
    assert status_of(ei.value) == grpc.StatusCode.PERMISSION_DENIED
    assert x.send("eu-acme", "safe_stop", "cmd-pol").seq == 2
    a.status(a.v.SetVehicleStatusRequest(id="eu-acme", status=a.v.VEHICLE_DECOMMISSIONED),
             timeout=30)
    with pytest.raises(grpc.RpcError) as ei:
        x.send("eu-acme", "safe_stop", "cmd-pol")
    assert status_of(ei.value) == grpc.StatusCode.PERMISSION_DENIED
    denied = [r for r in bsutil.audit_records(sd.state_dir)
              if r["result"] == "PERMISSION_DENIED"]
    assert [r["fields"]["command.vehicle_id"] for r in denied] == \
        ["eu-other", "us-acme", "eu-acme", "nowhere", "eu-acme", "eu-acme"]
    assert all("condition" in r["reason"] for r in denied[:4]), denied
    # only the grant that names the status counted, and it is for safe_stop
    assert 'request.command == "safe_stop"' in denied[4]["reason"], denied[4]
    assert "condition" in denied[5]["reason"], denied[5]
    admin.close()
    disp.close()
    bsutil.stop_clean(d)
