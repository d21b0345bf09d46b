# test_vehicles_cli.py - `boltseal vehicles ...` and `boltseal commands sign`
# against the session's boltsealed, as ci-ota-release (which holds every
# method through it-all, tests/integration/policy-it.conf): register with
# attributes and a PEM key, get (text, --json, --version), list with a
# filter and --all over pages, set-attr, add-key and revoke-key, suspend
# (then commands sign is PERMISSION_DENIED: it-all's grant does not test
# vehicle.status, so it reaches active vehicles only) and activate; a
# token signed by `commands sign` verifies with `commands verify`; bad
# input is exit 2 before any call, an unknown vehicle NOT_FOUND (exit 4).
# The RPCs' own rules are covered by test_vehicles.py and test_commands.py.
import base64
import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import bsutil

P = "it-vcli-"            # every vehicle and key of this module
CMD_KEY = P + "cmd"        # no cmd-* prefix needed: it-all grants every key
AUD = "boltseal-vehicle"
EXIT_USAGE, EXIT_STATUS = 2, 4
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


@pytest.fixture(scope="module")
def cli(env):
    return bsutil.cli_runner(env, timeout=30)


def ok(cli, *args, stdin=None):
    rc, out, err = cli(*args, stdin=stdin)
    assert rc == 0 and err == "", (args, rc, out, err)
    return out


def ok_json(cli, *args, stdin=None):
    return json.loads(ok(cli, "--json", *args, stdin=stdin))


def new_key(tmp_path, name, der=False, alg="p256"):
    """A fresh public key file (PEM, or DER); returns (path, spki der)."""
    priv = (ec.generate_private_key(ec.SECP256R1()) if alg == "p256"
            else ed25519.Ed25519PrivateKey.generate())
    spki = priv.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / name
    if der:
        path.write_bytes(spki)
    else:
        path.write_bytes(priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path), spki


@pytest.fixture(scope="module")
def cmd_key(cli, tmp_path_factory):
    """The module's command key and its public PEM file (from get-public-key)."""
    ok(cli, "keys", "create", CMD_KEY, "--alg", "ecdsa-p256-sha256", "--purpose", "command")
    pem = tmp_path_factory.mktemp("vcli") / "cmd.pem"
    pem.write_text(ok(cli, "get-public-key", CMD_KEY))
    return str(pem)


def test_register_get_list_set_attr(cli, tmp_path):
    vid = P + "truck-1"
    keyf, spki = new_key(tmp_path, "truck.pub")
    out = ok(cli, "vehicles", "register", vid, "--key", keyf, "--attr", "carrier_id=acme",
             "--attr", "regulatory_region=eu", "--attr", "note=a b=c")
    kid = hashlib.sha256(spki).hexdigest()
    lines = out.splitlines()
    assert lines[0] == "id:          " + vid and lines[1] == "status:      active", out
    assert "version:     1" in lines, out
    assert re.search(r"^provisioned: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", out, re.M), out
    assert "  carrier_id = acme" in lines and "  note = a b=c" in lines, out
    assert "  - key_id:      " + kid in lines and "    revoked:     no" in lines, out

    v = ok_json(cli, "vehicles", "get", vid)["vehicle"]
    assert v["id"] == vid and v["status"] == "active" and v["version"] == 1, v
    assert v["attributes"] == {"carrier_id": "acme", "regulatory_region": "eu",
                               "note": "a b=c"}, v
    assert v["provisioned_at"] > 0 and v["updated_at"] >= v["provisioned_at"], v
    (ident,) = v["identities"]
    assert ident["key_id"] == kid and ident["revoked_at"] == 0, ident
    assert base64.b64decode(ident["public_key"]) == spki, ident

    # set-attr: pairs after the id and --attr together, --remove, one new version
    v2 = ok_json(cli, "vehicles", "set-attr", vid, "vehicle_class=hgv", "--attr",
                 "cargo_sensitivity=high", "--remove", "note", "--expected-version", "1")["vehicle"]
    assert v2["version"] == 2, v2
    assert v2["attributes"] == {"carrier_id": "acme", "regulatory_region": "eu",
                                "vehicle_class": "hgv", "cargo_sensitivity": "high"}, v2
    # a stale --expected-version is the server's FAILED_PRECONDITION
    rc, out, err = cli("vehicles", "set-attr", vid, "x=1", "--expected-version", "1")
    assert rc == EXIT_STATUS and out == "" and "FAILED_PRECONDITION" in err, (rc, out, err)
    # the earlier version stays readable
    assert ok_json(cli, "vehicles", "get", vid, "--version", "1")["vehicle"]["attributes"][
        "note"] == "a b=c"

    # list with a filter: this vehicle only (another carrier is left out)
    other, _ = new_key(tmp_path, "other.pub")
    ok(cli, "vehicles", "register", P + "truck-2", "--key", other, "--attr", "carrier_id=other",
       "--attr", "vehicle_class=hgv")
    j = ok_json(cli, "vehicles", "list", "--attr", "vehicle_class=hgv", "--attr",
                "carrier_id=acme")
    assert [x["id"] for x in j["vehicles"]] == [vid] and j["next_page_token"] == "", j
    text = ok(cli, "vehicles", "list", "--attr", "vehicle_class=hgv")
    rows = text.splitlines()
    assert rows[0].split() == ["ID", "STATUS", "VERSION", "ATTRIBUTES"], text
    assert [r.split()[0] for r in rows[1:]] == [vid, P + "truck-2"], text
    assert "carrier_id=acme" in rows[1] and "vehicle_class=hgv" in rows[1], text


def test_list_all_follows_pages(cli, tmp_path):
    ids = [P + "page-%d" % i for i in range(3)]
    for i in ids:
        keyf, _ = new_key(tmp_path, i + ".pub")
        ok(cli, "vehicles", "register", i, "--key", keyf, "--attr", "fleet=it-vcli-pages")
    one = ok_json(cli, "vehicles", "list", "--attr", "fleet=it-vcli-pages", "--page-size", "1")
    assert [v["id"] for v in one["vehicles"]] == ids[:1] and one["next_page_token"], one
    text = ok(cli, "vehicles", "list", "--attr", "fleet=it-vcli-pages", "--page-size", "1")
    assert text.splitlines()[-1].startswith("next page token: "), text
    j = ok_json(cli, "vehicles", "list", "--attr", "fleet=it-vcli-pages", "--page-size", "1",
                "--all")
    assert [v["id"] for v in j["vehicles"]] == ids and j["next_page_token"] == "", j
    j = ok_json(cli, "vehicles", "list", "--attr", "fleet=it-vcli-pages", "--status",
                "suspended")
    assert j["vehicles"] == [], j


def test_add_and_revoke_key(cli, tmp_path):
    vid = P + "keys"
    keyf, _ = new_key(tmp_path, "first.pub")
    ok(cli, "vehicles", "register", vid, "--key", keyf)
    derf, spki = new_key(tmp_path, "second.der", der=True, alg="ed25519")
    v = ok_json(cli, "vehicles", "add-key", vid, "--key", derf, "--cert-sha256", "AB" * 32,
                "--not-before", "2024-01-01T00:00:00Z", "--not-after", "1900000000")["vehicle"]
    second = v["identities"][1]
    assert second["key_id"] == hashlib.sha256(spki).hexdigest(), v
    assert second["cert_sha256"] == "ab" * 32, second
    assert (second["not_before"], second["not_after"]) == (1704067200, 1900000000), second
    out = ok(cli, "vehicles", "revoke-key", vid, second["key_id"], "--reason", "lost ECU")
    assert re.search(r"^    revoked:     \d{4}-.*Z \(lost ECU\)$", out, re.M), out
    assert "    valid:       2024-01-01T00:00:00Z to 2030-03-17T17:46:40Z" in out, out
    v = ok_json(cli, "vehicles", "get", vid)["vehicle"]
    assert v["identities"][1]["revoked_at"] > 0 and v["identities"][0]["revoked_at"] == 0, v
    rc, out, err = cli("vehicles", "revoke-key", vid, "0" * 64)
    assert rc == EXIT_STATUS and "NOT_FOUND" in err, (rc, out, err)


def test_suspend_refuses_commands_activate_sign_verify(cli, tmp_path, cmd_key):
    vid = P + "cmd-truck"
    keyf, _ = new_key(tmp_path, "truck.pub")
    ok(cli, "vehicles", "register", vid, "--key", keyf)

    out = ok(cli, "vehicles", "suspend", vid, "--reason", "reported stolen")
    assert "status:      suspended (reported stolen)" in out.splitlines(), out
    # it-all's CommandService grant says nothing of vehicle.status: active vehicles only
    rc, out, err = cli("commands", "sign", vid, "route.override", "--key-name", CMD_KEY)
    assert rc == EXIT_STATUS and out == "", (rc, out, err)
    assert err.startswith("boltseal: commands sign: PERMISSION_DENIED"), err

    v = ok_json(cli, "vehicles", "activate", vid, "--reason", "recovered")["vehicle"]
    assert v["status"] == "active" and v["status_reason"] == "recovered", v

    # the token alone on stdout, for $(...)
    tok = ok(cli, "commands", "sign", vid, "route.override", "--key-name", CMD_KEY,
             "--args", '{"route": "A7-detour", "max_speed_kmh": 60}')
    assert tok.endswith("\n") and TOKEN_RE.match(tok.strip()), tok
    c = ok_json(cli, "commands", "verify", tok.strip(), "--vehicle", vid, "--audience", AUD,
                "--key", cmd_key)
    assert c["valid"] is True and c["command"] == "route.override" and c["vehicle"] == vid, c
    assert c["args"] == {"route": "A7-detour", "max_speed_kmh": 60}, c

    # --json, args from stdin, --valid
    s = ok_json(cli, "commands", "sign", vid, "door.unlock", "--key-name", CMD_KEY, "--args",
                "-", "--valid", "10", stdin=b'{"door": "driver"}\n')
    assert set(s) == {"token", "seq", "jti", "not_before", "expires", "kid", "key_version"}, s
    assert s["seq"] == c["seq"] + 1 and s["expires"] - s["not_before"] == 10, s
    assert s["key_version"] == 1 and re.fullmatch(r"[0-9a-f]{32}", s["jti"]), s
    c2 = ok_json(cli, "commands", "verify", s["token"], "--vehicle", vid, "--audience", AUD,
                 "--key", cmd_key, "--last-seq", str(c["seq"]))
    assert (c2["seq"], c2["jti"], c2["kid"], c2["args"]) == (s["seq"], s["jti"], s["kid"],
                                                             {"door": "driver"}), c2
    assert (c2["nbf"], c2["exp"]) == (s["not_before"], s["expires"]), c2
    # the same token is a replay for a vehicle that accepted it
    rc, out, err = cli("commands", "verify", s["token"], "--vehicle", vid, "--audience", AUD,
                       "--key", cmd_key, "--last-seq", str(s["seq"]))
    assert rc == 1 and "refused: replayed" in err, (rc, out, err)

    # args the server's strict reader refuses: INVALID_ARGUMENT
    rc, out, err = cli("commands", "sign", vid, "x.y", "--key-name", CMD_KEY, "--args",
                       '{"a": 1.5}')
    assert rc == EXIT_STATUS and "INVALID_ARGUMENT" in err, (rc, out, err)

    # decommissioned: final
    ok(cli, "vehicles", "decommission", vid, "--reason", "scrapped")
    rc, out, err = cli("vehicles", "activate", vid)
    assert rc == EXIT_STATUS and "FAILED_PRECONDITION" in err, (rc, out, err)


@pytest.mark.parametrize("args, msg", [
    (["vehicles", "register", P + "bad", "--key", "/nonexistent/truck.pub"],
     "/nonexistent/truck.pub: No such file or directory"),
    (["vehicles", "register", P + "bad", "--key", "KEY", "--attr", "carrier_id"],
     "--attr 'carrier_id' is not NAME=VALUE"),
    (["vehicles", "register", P + "bad", "--key", "KEY", "--attr", "=x"],
     "--attr '=x' is not NAME=VALUE"),
    (["vehicles", "register", P + "bad", "--key", "KEY", "--attr", "a=1", "--attr", "a=2"],
     "attribute 'a' given twice"),
    (["vehicles", "register", P + "bad", "--key", "PRIV"], "is not a public key"),
    (["vehicles", "register", P + "bad"], "--key PUBKEY.pem is required"),
    (["vehicles", "register", P + "bad", "--key", "KEY", "--cert-sha256", "abc"],
     "--cert-sha256 must be 64 hex digits"),
    (["vehicles", "register", P + "bad", "--key", "KEY", "--not-after", "2024-02-30T00:00:00Z"],
     "--not-after: '2024-02-30T00:00:00Z' is neither Unix seconds"),
    (["vehicles", "list", "--status", "parked"], "unknown status 'parked'"),
    (["vehicles", "list", "--page-size", "101"], "--page-size must be 1-100"),
    (["vehicles", "list", "--attr", "fleet"], "--attr 'fleet' is not NAME=VALUE"),
    (["vehicles", "get", P + "x", "--version", "0"], "--version must be a positive integer"),
    (["vehicles", "set-attr", P + "x"], "nothing to change"),
    (["vehicles", "set-attr", P + "x", "novalue"], "attribute 'novalue' is not NAME=VALUE"),
    (["vehicles", "set-attr", P + "x", "a=1", "--remove", "a"], "'a' is both set and removed"),
    (["vehicles", "revoke-key", P + "x"], "missing argument"),
    (["commands", "sign", P + "x", "door.unlock"], "--key-name KEY is required"),
    (["commands", "sign", P + "x", "door.unlock", "--key-name", CMD_KEY, "--valid", "0"],
     "--valid: '0' is not a number of seconds"),
])
def test_bad_input_is_exit_2(cli, tmp_path, args, msg):
    keyf, _ = new_key(tmp_path, "k.pub")
    priv = tmp_path / "k.key"
    priv.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    args = [keyf if a == "KEY" else str(priv) if a == "PRIV" else a for a in args]
    rc, out, err = cli(*args)
    assert rc == EXIT_USAGE and out == "", (args, rc, out, err)
    words = " ".join(args[:2])
    assert err.startswith("boltseal: %s: " % words) and msg in err, (args, err)
    # nothing was registered
    rc, _, _ = cli("vehicles", "get", P + "bad")
    assert rc == EXIT_STATUS


@pytest.mark.parametrize("args", [
    ["vehicles", "get", P + "nobody"],
    ["vehicles", "set-attr", P + "nobody", "a=1"],
    ["vehicles", "suspend", P + "nobody"],
    ["vehicles", "revoke-key", P + "nobody", "0" * 64],
])
def test_unknown_vehicle_is_not_found(cli, args):
    rc, out, err = cli(*args)
    assert rc == EXIT_STATUS and out == "", (args, rc, out, err)
    assert err.startswith("boltseal: %s: NOT_FOUND" % " ".join(args[:2])), (args, err)


def test_sign_for_unknown_vehicle(cli, cmd_key):
    rc, out, err = cli("commands", "sign", P + "nobody", "door.unlock", "--key-name", CMD_KEY)
    assert rc == EXIT_STATUS and out == "", (rc, out, err)
    assert err.startswith("boltseal: commands sign: "), err


@pytest.mark.parametrize("args, want", [
    (["vehicles", "--help"], ["vehicles register ID --key PUBKEY.pem", "vehicles revoke-key ID KEY_ID",
                              "(SetVehicleStatus)"]),
    (["vehicles", "set-attr", "--help"], ["vehicles set-attr ID", "--remove NAME"]),
    (["commands", "sign", "--help"], ["commands sign VEHICLE COMMAND --key-name KEY"]),
    (["--help"], ["vehicles decommission", "commands sign"]),
])
def test_help(cli, args, want):
    out = ok(cli, *args)
    for w in want:
        assert w in out, (args, w, out)
