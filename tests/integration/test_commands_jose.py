# test_commands_jose.py - boltseal.v1.CommandService's tokens against a
# second verifier nobody here wrote: panva/jose (npm, pinned in
# tests/interop/jose/package-lock.json, installed by ./scripts/check), its
# jwtVerify with algorithms [alg], audience, issuer and subject checked and
# no clock tolerance. An ES256 and an EdDSA token verify, with every claim
# as asked and the header's kid the one SignCommand returned; jose refuses
# the ES256 signature re-encoded as DER (RFC 7518 3.4 wants r||s), a
# tampered payload, a wrong audience, issuer or subject, a token past its
# exp and one before its nbf. Fails (never skips) when jose is missing.
import base64
import json
import os
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

import bsutil
import josejs

C = "/boltseal.v1.CommandService/SignCommand"
V = "/boltseal.v1.VehicleService/"
VEHICLE = "jose-truck-1"
AUD, ISS = "boltseal-vehicle", "boltseal"
KEYS = (("cmd-jose-es", "ES256"), ("cmd-jose-ed", "EdDSA"))


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def require_jose():
    ok, why = josejs.available()
    assert ok, why + " (./scripts/check installs it with npm ci)"


def code_of(result):
    assert result["ok"] is False, result
    return result["error"].split(":", 1)[0]


@pytest.fixture(scope="module")
def cpb(env):
    outdir = os.path.join(env.workdir, "command-jose-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/commands.proto", "boltseal/v1/vehicles.proto"])
    c = bsutil._load_module("bs_it_commands_pb2_jose",
                            os.path.join(outdir, "boltseal", "v1", "commands_pb2.py"))
    v = bsutil._load_module("bs_it_vehicles_pb2_jose",
                            os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))
    return c, v


@pytest.fixture(scope="module")
def signed(env, pb, cpb):
    """{key name: (SignCommandResponse, public key PEM, args asked)} for one
    command signed with each of KEYS to VEHICLE."""
    require_jose()
    c_pb, v_pb = cpb
    client = env.client()
    sign = client.channel.unary_unary(C, request_serializer=c_pb.SignCommandRequest.
                                      SerializeToString,
                                      response_deserializer=c_pb.SignCommandResponse.FromString)
    register = client.channel.unary_unary(
        V + "RegisterVehicle", request_serializer=v_pb.RegisterVehicleRequest.SerializeToString,
        response_deserializer=v_pb.Vehicle.FromString)
    algs = {"ES256": pb.ECDSA_P256_SHA256, "EdDSA": pb.ED25519}
    for name, alg in KEYS:
        client.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.COMMAND, algorithm=algs[alg]),
                         timeout=30)
    vpub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    register(v_pb.RegisterVehicleRequest(id=VEHICLE, attributes={"carrier_id": "acme"},
                                         identity=v_pb.VehicleIdentity(public_key=vpub)),
             timeout=30)
    out = {}
    for name, alg in KEYS:
        args = {"route": "B12", "speed_kph": 40, "note": "jose-%s" % alg}
        r = sign(c_pb.SignCommandRequest(vehicle_id=VEHICLE, command="route.override",
                                         args=json.dumps(args).encode(), key_name=name,
                                         valid_seconds=0), timeout=30)
        pem = client.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30).pem
        out[name] = (r, pem, args)
    yield out
    client.close()


def jose_verify(pem, alg, token, **kw):
    kw.setdefault("audience", AUD)
    kw.setdefault("issuer", ISS)
    kw.setdefault("subject", VEHICLE)
    return josejs.verify(pem, alg, token, **kw)


def test_jose_verifies_es256_and_eddsa_tokens(signed):
    require_jose()
    for name, alg in KEYS:
        r, pem, args = signed[name]
        res = jose_verify(pem, alg, r.token)
        assert res["ok"] is True, (name, res, josejs.version())
        assert res["header"] == {"alg": alg, "kid": r.kid, "typ": "JWT"}, res["header"]
        assert r.kid
        assert res["payload"] == {"iss": ISS, "sub": VEHICLE, "aud": AUD,
                                  "iat": r.not_before, "nbf": r.not_before, "exp": r.expires,
                                  "jti": r.jti, "seq": r.seq, "cmd": "route.override",
                                  "args": args}, res["payload"]
        assert r.expires - r.not_before == 30              # commands.max_valid_seconds
        assert r.not_before <= int(time.time()) + 5      # slack: a clock step
        # the same token, judged at its nbf and one second before its exp
        for t in (r.not_before, r.expires - 1):
            assert jose_verify(pem, alg, r.token, current_date=t)["ok"] is True, t
    # each key's token verifies only under its own key
    (r_es, pem_es, _), (r_ed, pem_ed, _) = signed["cmd-jose-es"], signed["cmd-jose-ed"]
    # (algorithms is [alg]: the header's alg is refused before any signature check)
    assert code_of(jose_verify(pem_ed, "EdDSA", r_es.token)) == "ERR_JOSE_ALG_NOT_ALLOWED"
    assert code_of(jose_verify(pem_es, "ES256", r_ed.token)) == "ERR_JOSE_ALG_NOT_ALLOWED"


def test_jose_refuses_der_encoded_es256_signature(signed):
    require_jose()
    r, pem, _ = signed["cmd-jose-es"]
    h, p, s = r.token.split(".")
    sig = b64d(s)
    assert len(sig) == 64
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                     int.from_bytes(sig[32:], "big"))
    res = jose_verify(pem, "ES256", h + "." + p + "." + b64e(der))
    assert code_of(res) == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", res


def test_jose_refuses_tampered_payload(signed):
    require_jose()
    for name, alg in KEYS:
        r, pem, _ = signed[name]
        h, p, s = r.token.split(".")
        claims = json.loads(b64d(p))
        for change in ({"seq": claims["seq"] + 1}, {"cmd": "safe_stop"},
                       {"args": dict(claims["args"], speed_kph=130)}):
            forged = b64e(json.dumps(dict(claims, **change), separators=(",", ":")).encode())
            res = jose_verify(pem, alg, h + "." + forged + "." + s)
            assert code_of(res) == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", (name, change, res)
        # a flipped signature bit
        bad = bytearray(b64d(s))
        bad[5] ^= 0x01
        res = jose_verify(pem, alg, h + "." + p + "." + b64e(bytes(bad)))
        assert code_of(res) == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", (name, res)


def test_jose_refuses_wrong_audience_issuer_subject(signed):
    require_jose()
    for name, alg in KEYS:
        r, pem, _ = signed[name]
        for kw, claim in (({"audience": "boltseal-gateway"}, '"aud"'),
                          ({"issuer": "someone-else"}, '"iss"'),
                          ({"subject": "jose-truck-2"}, '"sub"')):
            res = jose_verify(pem, alg, r.token, **kw)
            assert code_of(res) == "ERR_JWT_CLAIM_VALIDATION_FAILED", (name, kw, res)
            assert claim in res["error"], (name, kw, res)


def test_jose_refuses_expired_and_not_yet_valid(signed):
    require_jose()
    for name, alg in KEYS:
        r, pem, _ = signed[name]
        res = jose_verify(pem, alg, r.token, current_date=r.expires + 60)
        assert code_of(res) == "ERR_JWT_EXPIRED", (name, res)
        # no clock tolerance: exp itself is already too late
        res = jose_verify(pem, alg, r.token, current_date=r.expires)
        assert code_of(res) == "ERR_JWT_EXPIRED", (name, res)
        res = jose_verify(pem, alg, r.token, current_date=r.not_before - 60)
        assert code_of(res) == "ERR_JWT_CLAIM_VALIDATION_FAILED", (name, res)
        assert '"nbf"' in res["error"], (name, res)
