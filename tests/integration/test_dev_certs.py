# test_dev_certs.py - scripts/dev-certs, which scripts/dev-up runs: on a
# state directory laid out as dev-up lays out .state/ (a token, the bootstrap
# PKI of `scripts/mkpki --bootstrap`, the seed policy, dev-up's configuration)
# it has boltseal's own CA (key ca-dev in the HSM) issue every dev client
# certificate. Checked with OpenSSL (`openssl verify -purpose sslclient`
# against the CA it wrote, the URI SAN of each), then by the daemon itself:
# started with the seed policy, it accepts the issued certificates as their
# principals (and the bootstrap client as nobody); the audit log shows the
# bootstrap policy and its issuances. A second run has nothing to do.
import os
import shutil
import subprocess
import tempfile

import grpc
import pytest
from cryptography import x509

import bsutil

CLIENTS = {
    "ci-ota-release": "spiffe://fleet.example/ci/ota-release",
    "log-ota-log": "spiffe://fleet.example/log/ota-log",
    "svc-dispatch": "spiffe://fleet.example/svc/dispatch",
    "gw-eu-west-1": "spiffe://fleet.example/gw/eu-west-1",
    "admin-alice": "spiffe://fleet.example/admin/alice",
    "admin-bob": "spiffe://fleet.example/admin/bob",
    "admin-carol": "spiffe://fleet.example/admin/carol",
    "audit-ext": "spiffe://fleet.example/audit/ext",
}


@pytest.fixture
def state():
    d = tempfile.mkdtemp(prefix="bs-it-devcerts-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def dev_state(d, port):
    """A state directory as scripts/dev-up makes it (its configuration keys)."""
    softhsm_conf, _ = bsutil.make_token(os.path.join(d, "softhsm"), "boltseal-devcerts")
    bsutil.run([os.path.join(bsutil.SCRIPTS_DIR, "mkpki"), os.path.join(d, "pki"),
                "--bootstrap"])
    shutil.copy(os.path.join(bsutil.SRCDIR, "etc", "policy.example"),
                os.path.join(d, "policy.conf"))
    os.chmod(os.path.join(d, "policy.conf"), 0o644)
    os.makedirs(os.path.join(d, "data"), mode=0o700)
    bsutil.write_config(os.path.join(d, "boltsealed.conf"), {
        "listen": "127.0.0.1:%d" % port,
        "tls_cert": "pki/server.pem", "tls_key": "pki/server.key",
        "tls_client_ca": "pki/trust.pem", "tls_crl": "pki/crl.d", "ca_crl_dir": "pki/crl.d",
        "policy": "policy.conf", "pkcs11_module": bsutil.SOFTHSM_MODULE,
        "token_uri": "pkcs11:token=boltseal-devcerts", "pin_file": "softhsm/user.pin",
        "state_dir": "data", "log_level": "info", "workers": 2,
    })
    return softhsm_conf


def dev_certs(d, softhsm_conf):
    env = dict(os.environ, SOFTHSM2_CONF=softhsm_conf,
               BS_BOOTSTRAP_LISTEN="127.0.0.1:%d" % bsutil.free_port())
    return subprocess.run([os.path.join(bsutil.SCRIPTS_DIR, "dev-certs"), d, bsutil.BUILDDIR],
                          env=env, capture_output=True, text=True, timeout=300)


def test_dev_certificates_come_from_the_hsm_ca(state, env):
    port = bsutil.free_port()
    softhsm_conf = dev_state(state, port)
    pki = os.path.join(state, "pki")
    p = dev_certs(state, softhsm_conf)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("issued by ca-dev") == len(CLIENTS), p.stdout
    ca = os.path.join(pki, "boltseal-ca.pem")
    ca_cert = x509.load_pem_x509_certificate(bsutil.read(ca))
    assert ca_cert.subject.rfc4514_string() == "CN=boltseal dev CA (HSM),O=boltseal"
    for ident, uri in CLIENTS.items():
        cert = os.path.join(pki, "clients", ident + ".pem")
        v = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile", ca, cert],
                           capture_output=True, text=True, timeout=30)
        assert v.returncode == 0, (ident, v.stdout, v.stderr)
        c = x509.load_pem_x509_certificate(bsutil.read(cert))
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
        assert 719 * 3600 <= (c.not_valid_after - c.not_valid_before).total_seconds() <= \
            720 * 3600 + 60
    # the bundle holds both CAs; the CRL directory both CRLs
    assert bsutil.read(os.path.join(pki, "trust.pem")) == \
        bsutil.read(os.path.join(pki, "ca.pem")) + bsutil.read(ca)
    assert sorted(os.listdir(os.path.join(pki, "crl.d"))) == ["ca-dev.crl.pem", "dev-ca.crl.pem"]
    assert not os.path.exists(os.path.join(state, "boltsealed-bootstrap.conf"))

    # the daemon with the seed policy takes them as their principals
    conf = os.path.join(state, "boltsealed.conf")
    rc, out = bsutil.run_daemon_once(conf, softhsm_conf, ["-n"])
    assert rc == 0, out
    d = bsutil.Daemon(conf, softhsm_conf, os.path.join(state, "boltsealed.log")).start()
    try:
        d.wait_listening(20.0)
        pb = env.stubs.pb

        def client(ident):
            files = (os.path.join(pki, "clients", ident + ".pem"),
                     os.path.join(pki, "clients", ident + ".key"))
            return bsutil.Client(bsutil.local_channel(port, os.path.join(pki, "ca.pem"),
                                                      *files), env.stubs)
        alice = client("admin-alice")
        keys = [k.name for k in alice.ListKeys(pb.ListKeysRequest(), timeout=15).keys]
        assert "ca-dev" in keys
        ci = client("ci-ota-release")
        e = bsutil.rpc_error(ci.ListKeys, pb.ListKeysRequest(), timeout=15)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
        boot = client("dev-bootstrap")
        e = bsutil.rpc_error(boot.ListKeys, pb.ListKeysRequest(), timeout=15)
        assert e.code() in (grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.UNAUTHENTICATED), e.details()
        for c in (alice, ci, boot):
            c.close()
        issued = bsutil.wait_audit(os.path.join(state, "data"), lambda r: r.get("event") ==
                                   "certificate_issued", count=len(CLIENTS))
        assert {r["principal_id"] for r in issued} == {"dev-bootstrap"}
        denied = bsutil.wait_audit(os.path.join(state, "data"), lambda r: r.get("method") ==
                                   "boltseal.v1.KeyService/ListKeys" and
                                   r.get("result") == "PERMISSION_DENIED")
        assert denied[0]["principal_id"] == "ci-ota-release", denied
    finally:
        bsutil.stop_clean(d)

    # nothing to do the second time: no daemon, the same files
    before = {i: bsutil.read(os.path.join(pki, "clients", i + ".pem")) for i in CLIENTS}
    p = dev_certs(state, softhsm_conf)
    assert p.returncode == 0 and p.stdout == "", p.stdout + p.stderr
    assert before == {i: bsutil.read(os.path.join(pki, "clients", i + ".pem")) for i in CLIENTS}
