# test_identity.py - mapping verified client certificates to principals
# (issue 3): exact URI SAN, URI prefix (longest wins), pinned certificate
# SHA-256 (wins over both), several certificates for one principal, and the
# refusal (UNAUTHENTICATED, audited) of a verified certificate that maps to
# no principal - on KeyService calls and on Health.
#
# A second boltsealed runs with a policy written here. Every principal P
# holds a role granting GetKey on the keys "P-*" only, and one key "P-k" per
# principal exists, so which principal a certificate maps to is observable
# from outside: exactly one of the GetKey calls succeeds, the others are
# PERMISSION_DENIED. The audit log's principal_id must agree.

import os
import time

import grpc
import pytest

import bsutil
import conftest
import pkitool

# principal id -> list of matcher lines (filled with fingerprints at set-up)
PRINCIPALS = ["alice", "gateways", "gw-eu", "gw-special", "dispatch", "pinned",
              "poe-pin"]

# minted certificates: name -> URI SAN
MINTED = {
    "gw-a": "spiffe://fleet.example/gw/a",
    "gw-b": "spiffe://fleet.example/gw/b/c",
    "gw-eu-1": "spiffe://fleet.example/gw/eu/1",
    "gw-special": "spiffe://fleet.example/gw/special",
    "pinned": "spiffe://fleet.example/pinned/device-1",
    "pinned-twin": "spiffe://fleet.example/pinned/device-1",
    "poe": "spiffe://fleet.example/svc/dispatch",
    "alice-token": "spiffe://fleet.example/admin/alice-token",
    "alice-hw": "spiffe://fleet.example/hw/alice-hw",
    "unknown": "spiffe://fleet.example/unknown/x",
}

POLICY = """\
# written by test_identity.py
principal alice
    uri spiffe://fleet.example/admin/alice
    uri spiffe://fleet.example/admin/alice-token   # alice's second certificate
    cert-sha256 {alice_hw}                         # and a third, pinned
    roles maker r-alice

principal gateways
    uri-prefix spiffe://fleet.example/gw/
    roles r-gateways

principal gw-eu
    uri-prefix spiffe://fleet.example/gw/eu/
    roles r-gw-eu

principal gw-special
    uri spiffe://fleet.example/gw/special
    roles r-gw-special

principal dispatch
    uri spiffe://fleet.example/svc/dispatch
    roles r-dispatch

principal pinned
    cert-sha256 {pinned}
    roles r-pinned

# a certificate whose URI SAN is dispatch's, pinned to another principal
principal poe-pin
    cert-sha256 {poe}
    roles r-poe-pin

role maker
    grant
        methods boltseal.v1.KeyService/CreateKey
        keys *
"""

ROLE = """
role r-{p}
    grant
        methods boltseal.v1.KeyService/GetKey
        keys {p}-*
"""

LIST_GRANT = """\
    grant
        methods boltseal.v1.KeyService/ListKeys
"""

UNMAPPED_MSG = "client certificate is not mapped to a principal"


class IdEnv:
    def __init__(self, env, sd, daemon, certs):
        self.env = env
        self.sd = sd
        self.daemon = daemon
        self.certs = certs          # name -> (cert, key)
        self.pb = env.stubs.pb
        self.channels = []

    def client(self, name):
        """A Client on a channel of its own for certificate name (a minted
        one or a dev identity)."""
        cert, key = self.certs[name] if name in self.certs else self.env.client_files(name)
        ch = bsutil.local_channel(self.sd.port, self.env.ca, cert, key)
        self.channels.append(ch)
        return bsutil.Client(ch, self.env.stubs)

    def files(self, name):
        return self.certs[name] if name in self.certs else self.env.client_files(name)

    def audit(self):
        return bsutil.audit_records(self.sd.state_dir)


@pytest.fixture(scope="module")
def ident(env):
    sd = conftest.SecondDaemon(env, "ident")
    idenv = None
    try:
        ca = pkitool.dev_ca(env.pki)
        certdir = os.path.join(sd.dir, "certs")
        certs = {name: pkitool.mint_client(ca, certdir, name, uri)
                 for name, uri in MINTED.items()}
        text = POLICY.format(
            alice_hw=pkitool.cert_sha256(certs["alice-hw"][0]),
            pinned=pkitool.cert_sha256(certs["pinned"][0]),
            # the colon form `openssl x509 -fingerprint -sha256` prints
            poe=pkitool.cert_sha256_colons(certs["poe"][0]))
        for p in PRINCIPALS:
            text += ROLE.format(p=p)
            if p == "gateways":
                text += LIST_GRANT
        policy = os.path.join(sd.dir, "policy")
        with open(policy, "w") as f:
            f.write(text)
        os.chmod(policy, 0o644)
        sd.settings["policy"] = policy
        bsutil.write_config(sd.conf, sd.settings)
        daemon = sd.start()
        idenv = IdEnv(env, sd, daemon, certs)
        pb = env.stubs.pb
        maker = idenv.client("admin-alice")
        for p in PRINCIPALS:
            maker.CreateKey(pb.CreateKeyRequest(name=p + "-k", purpose=pb.GENERIC,
                                                algorithm=pb.ED25519), timeout=30)
        yield idenv
    finally:
        if idenv is not None:
            for ch in idenv.channels:
                ch.close()
            rc, tail = idenv.daemon.terminate(15.0), idenv.daemon.log_tail(60)
        else:
            rc, tail = 0, ""
        sd.cleanup()
    # under ASan this also says: no leak, no error report
    assert rc == 0, "boltsealed exited with %r after SIGTERM; log tail:\n%s" % (rc, tail)


def granted_keys(ident, name):
    """The principal keys certificate name may GetKey; fails on any outcome
    other than OK or PERMISSION_DENIED."""
    c = ident.client(name)
    ok = []
    for p in PRINCIPALS:
        try:
            r = c.GetKey(ident.pb.GetKeyRequest(name=p + "-k"), timeout=15)
            assert r.key.name == p + "-k"
            ok.append(p)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, (name, p, e.code(), e.details())
            assert bsutil.denied(e.details())
    return ok


def assert_maps_to(ident, name, principal):
    """Certificate name maps to principal: only principal's key is granted,
    and the audit records of these calls carry principal_id, the URI SAN and
    the certificate's SHA-256."""
    n = len(ident.audit())
    assert granted_keys(ident, name) == [principal], name
    cert = ident.files(name)[0]
    fp = pkitool.cert_sha256(cert)
    uri = pkitool.load_cert(cert).extensions.get_extension_for_class(
        pkitool.x509.SubjectAlternativeName).value.get_values_for_type(
            pkitool.x509.UniformResourceIdentifier)[0]
    recs = [r for r in ident.audit()[n:] if r["method"] == "boltseal.v1.KeyService/GetKey"]
    assert len(recs) == len(PRINCIPALS), recs
    for r in recs:
        assert r["type"] == "rpc"
        assert r["principal_id"] == principal, r
        assert r["cert_sha256"] == fp, r
        assert r["identity"] == uri, r
    results = sorted(r["result"] for r in recs)
    assert results == sorted(["OK"] + ["PERMISSION_DENIED"] * (len(PRINCIPALS) - 1))
    return fp


def test_exact_uri(ident):
    assert_maps_to(ident, "svc-dispatch", "dispatch")
    assert_maps_to(ident, "admin-alice", "alice")


def test_uri_prefix_maps_several_gateways(ident):
    fps = {assert_maps_to(ident, name, "gateways")
           for name in ("gw-a", "gw-b", "gw-eu-west-1")}
    assert len(fps) == 3


def test_longest_uri_prefix_wins(ident):
    # spiffe://fleet.example/gw/eu/1 matches gw/ and gw/eu/
    assert_maps_to(ident, "gw-eu-1", "gw-eu")


def test_exact_uri_beats_prefix(ident):
    assert_maps_to(ident, "gw-special", "gw-special")


def test_pinned_fingerprint(ident):
    assert_maps_to(ident, "pinned", "pinned")
    # same URI SAN, another certificate: the URI alone maps to nothing
    c = ident.client("pinned-twin")
    e = bsutil.rpc_error(c.GetKey, ident.pb.GetKeyRequest(name="pinned-k"))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e.details()


def test_fingerprint_beats_exact_uri(ident):
    # poe carries dispatch's URI SAN but its fingerprint is pinned elsewhere
    assert_maps_to(ident, "poe", "poe-pin")
    assert_maps_to(ident, "svc-dispatch", "dispatch")


def test_two_certificates_one_principal(ident):
    # dev cert (uri), a second cert (second uri line), a third (cert-sha256)
    fps = [assert_maps_to(ident, name, "alice")
           for name in ("admin-alice", "alice-token", "alice-hw")]
    assert len(set(fps)) == 3
    # each certificate can also do what the principal's other roles allow
    for name in ("alice-token", "alice-hw"):
        c = ident.client(name)
        e = bsutil.rpc_error(c.CreateKey, ident.pb.CreateKeyRequest(
            name="alice-k", purpose=ident.pb.GENERIC, algorithm=ident.pb.ED25519))
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e.details()


def test_unmapped_certificate_refused_and_audited(ident):
    pb, hpb = ident.pb, ident.env.stubs.hpb
    c = ident.client("unknown")
    cert = ident.files("unknown")[0]
    fp = pkitool.cert_sha256(cert)
    calls = [
        ("boltseal.v1.KeyService/GetKey", c.GetKey, pb.GetKeyRequest(name="alice-k")),
        ("boltseal.v1.KeyService/ListKeys", c.ListKeys, pb.ListKeysRequest()),
        ("boltseal.v1.KeyService/Sign", c.Sign,
         pb.SignRequest(key_name="alice-k", message=b"m")),
        ("boltseal.v1.KeyService/CreateKey", c.CreateKey,
         pb.CreateKeyRequest(name="unknown-k", purpose=pb.GENERIC, algorithm=pb.ED25519)),
        ("grpc.health.v1.Health/Check", c.HealthCheck, hpb.HealthCheckRequest()),
    ]
    for method, fn, req in calls:
        n = len(ident.audit())
        e = bsutil.rpc_error(fn, req)
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, (method, e.code(), e.details())
        assert e.details() == UNMAPPED_MSG
        # durable before the response: the record is there now (Health excepted:
        # its record is queued, not waited for, so that it can answer while the
        # log cannot be written; docs/audit.md)
        if method.startswith("grpc.health."):
            t0 = time.monotonic()
            while (time.monotonic() - t0 < 10 and
                   not [r for r in ident.audit()[n:] if r.get("cert_sha256") == fp]):
                time.sleep(0.05)
        recs = [r for r in ident.audit()[n:] if r.get("cert_sha256") == fp]
        assert len(recs) == 1, (method, recs)
        r = recs[0]
        assert r["type"] == "rpc"
        assert r["method"] == method
        assert r["result"] == "UNAUTHENTICATED"
        assert r["principal_id"] is None
        assert r["identity"] == MINTED["unknown"]
        assert "maps to no principal" in r["reason"]
        assert fp in r["reason"] and MINTED["unknown"] in r["reason"]
    # a mapped certificate still gets its Health answer
    r = ident.client("gw-a").HealthCheck(hpb.HealthCheckRequest(), timeout=15)
    assert r.status == hpb.HealthCheckResponse.SERVING


def test_list_keys_shows_only_keys_caller_may_get(ident):
    c = ident.client("gw-b")
    r = c.ListKeys(ident.pb.ListKeysRequest(), timeout=15)
    assert [k.name for k in r.keys] == ["gateways-k"]
    # a principal without a ListKeys grant
    e = bsutil.rpc_error(ident.client("svc-dispatch").ListKeys, ident.pb.ListKeysRequest())
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
