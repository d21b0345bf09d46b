# test_command_verify_cli.py - `boltseal commands verify`, the vehicle side
# of signed commands, offline: tokens made here with python3-cryptography
# (ES256 as r||s, EdDSA) and with Debian's python3-jwcrypto are accepted and
# their claims printed (text and --json); a replay (--last-seq), an expired
# token, another vehicle, a DER signature and alg "none" are refused with
# exit 1 and the reason on stderr; usage errors exit 2. Last, a token the
# session daemon signs (CommandService.SignCommand) verifies with the key's
# public PEM: what the server makes, the vehicle accepts.
import base64
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

import bsutil

VIN = "WVWZZZ1JZXW000001"
AUD = "boltseal-vehicle"
ISS = "boltseal"
NOW = 1700000100
JTI = "00112233445566778899aabbccddeeff"
ARGS = {"door": "driver", "n": [1, -2, {"x": None}], "s": "\u00e9\U0001F600"}


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def jwk_of(pub):
    """The RFC 7638 members of a public key (P-256 or Ed25519)."""
    if isinstance(pub, ec.EllipticCurvePublicKey):
        n = pub.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": b64e(n.x.to_bytes(32, "big")),
                "y": b64e(n.y.to_bytes(32, "big"))}
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64e(raw)}


def thumbprint(pub):
    return b64e(hashlib.sha256(json.dumps(jwk_of(pub), sort_keys=True,
                                          separators=(",", ":")).encode()).digest())


def claims(**kw):
    c = {"iss": ISS, "sub": VIN, "aud": AUD, "iat": NOW - 100, "nbf": NOW - 100,
         "exp": NOW + 200, "jti": JTI, "seq": 7, "cmd": "door.unlock", "args": ARGS}
    c.update(kw)
    return c


def make_token(priv, c, alg=None, der=False):
    """B64(header).B64(claims).B64(sig): ES256 r||s (DER if der) or EdDSA."""
    pub = priv.public_key()
    es = isinstance(priv, ec.EllipticCurvePrivateKey)
    alg = alg or ("ES256" if es else "EdDSA")
    si = (b64e(compact({"alg": alg, "kid": thumbprint(pub), "typ": "JWT"})) + "." +
          b64e(compact(c))).encode()
    if es:
        sig = priv.sign(si, ec.ECDSA(hashes.SHA256()))
        if not der:
            r, s = utils.decode_dss_signature(sig)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = priv.sign(si)
    return si.decode() + "." + b64e(sig)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{"es": (private key, PEM path), "ed": (...)}"""
    d = tmp_path_factory.mktemp("cmdverify")
    out = {}
    for name, priv in (("es", ec.generate_private_key(ec.SECP256R1())),
                       ("ed", ed25519.Ed25519PrivateKey.generate())):
        p = d / (name + ".pem")
        p.write_bytes(priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
        out[name] = (priv, str(p))
    return out


def run(*args, stdin=None):
    """(exit code, stdout, stderr) of the CLI; commands verify needs no server."""
    p = subprocess.run([os.path.join(bsutil.BUILDDIR, "boltseal")] + list(args),
                       input=stdin, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def verify(tok, pem, *extra, stdin=None):
    return run("commands", "verify", tok, "--vehicle", VIN, "--audience", AUD, "--key", pem,
               "--issuer", ISS, "--now", str(NOW), *extra, stdin=stdin)


@pytest.mark.parametrize("name", ["es", "ed"])
def test_accepted_with_claims(keys, name):
    priv, pem = keys[name]
    tok = make_token(priv, claims())
    rc, out, err = verify(tok, pem)
    assert rc == 0 and err == "", (rc, out, err)
    lines = out.splitlines()
    assert lines[0] == "commands verify: valid", out
    assert "vehicle:   " + VIN in lines and "command:   door.unlock" in lines, out
    assert "seq:       7" in lines and "jti:       " + JTI in lines, out
    assert any(x.startswith("validity:  2023-11-14T22:13:20Z to 2023-11-14T22:18:20Z")
               for x in lines), out
    rc, out, err = verify(tok, pem, "--json", "--last-seq", "6", "--skew", "30")
    assert rc == 0, (rc, out, err)
    j = json.loads(out)
    assert j["valid"] is True and j["vehicle"] == VIN and j["command"] == "door.unlock"
    assert j["seq"] == 7 and j["jti"] == JTI and j["exp"] == NOW + 200
    assert j["alg"] == ("ES256" if name == "es" else "EdDSA")
    assert j["kid"] == thumbprint(priv.public_key())
    assert j["args"] == ARGS
    # the token from stdin, with its newline
    rc, out, err = verify("-", pem, stdin=(tok + "\n").encode())
    assert rc == 0, (rc, out, err)


def test_replay_refused(keys):
    priv, pem = keys["es"]
    tok = make_token(priv, claims(seq=7))
    for last in ("7", "8", "18446744073709551615"):
        rc, out, err = verify(tok, pem, "--last-seq", last)
        assert rc == 1 and out == "", (last, rc, out, err)
        assert err == ("boltseal: commands verify: refused: replayed: seq 7 is not above the "
                       "last accepted seq %s\n" % last), err
    assert verify(tok, pem, "--last-seq", "6")[0] == 0
    rc, out, err = verify(tok, pem, "--last-seq", "7", "--json")
    assert rc == 1 and json.loads(out) == {
        "valid": False, "result": "replayed",
        "error": "seq 7 is not above the last accepted seq 7"}, out


def test_expired_refused(keys):
    priv, pem = keys["ed"]
    tok = make_token(priv, claims(exp=NOW - 70))
    rc, out, err = verify(tok, pem, "--skew", "5")
    assert rc == 1 and out == "", (rc, out, err)
    assert err == ("boltseal: commands verify: refused: expired: exp 1700000030 + skew 5 s is "
                   "not after now 1700000100\n"), err
    # valid while now < exp + skew
    assert verify(tok, pem, "--skew", "71")[0] == 0
    tok = make_token(priv, claims(nbf=NOW + 60, exp=NOW + 600))
    rc, out, err = verify(tok, pem, "--skew", "5")
    assert rc == 1 and "refused: not_yet_valid: nbf 1700000160 is after now" in err, err


def test_other_refusals(keys):
    priv, pem = keys["es"]
    cases = [
        (make_token(priv, claims(sub="WVWZZZ1JZXW000002")), "wrong_vehicle"),
        (make_token(priv, claims(aud="someone-else")), "wrong_audience"),
        (make_token(priv, claims(iss="mallory")), "wrong_issuer"),
        (make_token(priv, claims(), der=True), "bad_signature"),
        (make_token(priv, claims(), alg="none"), "unsupported_alg"),
        (make_token(priv, claims(), alg="HS256"), "unsupported_alg"),
        (make_token(keys["ed"][0], claims()), "key_mismatch"),
        (make_token(priv, claims()) + "==", "malformed"),
    ]
    tok = make_token(priv, claims())
    h, p, s = tok.split(".")
    cases.append((h + "." + b64e(compact(claims(seq=99))) + "." + s, "bad_signature"))
    for t, why in cases:
        rc, out, err = verify(t, pem)
        assert rc == 1 and err.startswith("boltseal: commands verify: refused: %s: " % why), \
            (why, rc, out, err)


def test_usage_errors(keys, tmp_path):
    priv, pem = keys["es"]
    tok = make_token(priv, claims())
    for args in (["--audience", AUD, "--key", pem],
                 ["--vehicle", VIN, "--key", pem],
                 ["--vehicle", VIN, "--audience", AUD],
                 ["--vehicle", VIN, "--audience", AUD, "--key", pem, "--skew", "x"],
                 ["--vehicle", VIN, "--audience", AUD, "--key", pem, "--skew", "86401"],
                 ["--vehicle", VIN, "--audience", AUD, "--key", str(tmp_path / "nope.pem")]):
        rc, out, err = run("commands", "verify", tok, *args)
        assert rc == 2 and out == "", (args, rc, out, err)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    rc, out, err = run("commands", "verify", tok, "--vehicle", VIN, "--audience", AUD,
                       "--key", str(junk))
    assert rc == 2 and "is not a public key" in err, err
    rsa = tmp_path / "rsa.pem"
    bsutil.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", str(tmp_path / "rsa.key")])
    bsutil.run(["openssl", "pkey", "-in", str(tmp_path / "rsa.key"), "-pubout", "-out",
                str(rsa)])
    rc, out, err = run("commands", "verify", tok, "--vehicle", VIN, "--audience", AUD,
                       "--key", str(rsa))
    assert rc == 2 and "not a P-256 or Ed25519 public key" in err, err


def test_jwcrypto_tokens(keys):
    """Tokens made by an implementation nobody here wrote."""
    jwk_mod = pytest.importorskip("jwcrypto.jwk")
    jws_mod = pytest.importorskip("jwcrypto.jws")
    for name, alg in (("es", "ES256"), ("ed", "EdDSA")):
        priv, pem = keys[name]
        k = jwk_mod.JWK.from_pem(priv.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        assert k.thumbprint() == thumbprint(priv.public_key())
        t = jws_mod.JWS(compact(claims(seq=12)))
        t.add_signature(k, None, json.dumps({"alg": alg, "kid": k.thumbprint(), "typ": "JWT"}))
        tok = t.serialize(compact=True)
        rc, out, err = verify(tok, pem, "--json", "--last-seq", "11")
        assert rc == 0, (name, rc, out, err)
        assert json.loads(out)["seq"] == 12 and json.loads(out)["args"] == ARGS


def test_daemon_signed_token(env, pb, tmp_path):
    """CommandService.SignCommand's token, verified as a vehicle would."""
    outdir = os.path.join(env.workdir, "cmdverify-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/commands.proto", "boltseal/v1/vehicles.proto"])
    cm = bsutil._load_module("bs_it_cmdverify_commands_pb2",
                             os.path.join(outdir, "boltseal", "v1", "commands_pb2.py"))
    vm = bsutil._load_module("bs_it_cmdverify_vehicles_pb2",
                             os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))
    c = env.client()
    ch = c.channel
    register = ch.unary_unary("/boltseal.v1.VehicleService/RegisterVehicle",
                              request_serializer=vm.RegisterVehicleRequest.SerializeToString,
                              response_deserializer=vm.Vehicle.FromString)
    sign = ch.unary_unary("/boltseal.v1.CommandService/SignCommand",
                          request_serializer=cm.SignCommandRequest.SerializeToString,
                          response_deserializer=cm.SignCommandResponse.FromString)
    vid = "CMDVERIFY0000001"
    vpub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    register(vm.RegisterVehicleRequest(id=vid, identity=vm.VehicleIdentity(public_key=vpub)),
             timeout=30)
    for name, alg in (("cmdverify-es", pb.ECDSA_P256_SHA256), ("cmdverify-ed", pb.ED25519)):
        c.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.COMMAND, algorithm=alg),
                    timeout=30)
        pem = tmp_path / (name + ".pem")
        pem.write_text(c.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30).pem)
        r = sign(cm.SignCommandRequest(vehicle_id=vid, command="door.unlock",
                                       args=compact(ARGS), key_name=name), timeout=30)
        rc, out, err = run("commands", "verify", r.token, "--vehicle", vid, "--audience", AUD,
                           "--issuer", ISS, "--key", str(pem), "--last-seq", str(r.seq - 1),
                           "--json")
        assert rc == 0, (name, rc, out, err)
        j = json.loads(out)
        assert j["seq"] == r.seq and j["jti"] == r.jti and j["kid"] == r.kid
        assert j["nbf"] == r.not_before and j["exp"] == r.expires and j["args"] == ARGS
        rc, out, err = run("commands", "verify", r.token, "--vehicle", vid, "--audience", AUD,
                           "--key", str(pem), "--last-seq", str(r.seq))
        assert rc == 1 and "refused: replayed" in err, err
