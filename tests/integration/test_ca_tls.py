# test_ca_tls.py - boltseal's own CA in front of its own TLS layer
# (docs/identity.md, "Revocation reaches the TLS layer"): a daemon whose
# tls_crl is a directory that is also its ca_crl_dir. A CA made through
# CertificateService gets its CRL written there at once; with the CA's
# certificate added to tls_client_ca, a certificate issued from a CSR opens
# a mutual-TLS connection; RevokeCertificate writes the new CRL, the daemon
# reloads at once and closes the live connection, and the next handshake is
# refused. The time from RevokeCertificate to the closed connection is
# measured and printed. With certs.crl_interval_s = 10 the publisher makes a
# new CRL on its own (audited as the daemon's key use).
import os
import shutil
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import bsutil

CS = "/boltseal.v1.CertificateService/"
DISPATCH = "spiffe://fleet.example/svc/dispatch"


@pytest.fixture(scope="module")
def certpb(env):
    outdir = os.path.join(env.workdir, "ca-tls-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/certs.proto"])
    return bsutil._load_module("bs_it_ca_tls_pb2",
                               os.path.join(outdir, "boltseal", "v1", "certs_pb2.py"))


def call(ch, m, meth, req, timeout=30):
    resp = getattr(m, meth + "Response")
    return ch.unary_unary(CS + meth, request_serializer=req.SerializeToString,
                          response_deserializer=resp.FromString)(req, timeout=timeout)


def crl_number(path):
    crl = x509.load_pem_x509_crl(bsutil.read(path))
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number, crl


def wait_file(path, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            got = crl_number(path)
            if pred(*got):
                return got
        time.sleep(0.1)
    raise AssertionError("%s did not become as expected within %ss" % (path, timeout))


def ca_daemon(sd, env):
    """tls_crl = ca_crl_dir = a directory holding the dev CA's CRL; a bundle of its own."""
    pki = os.path.join(sd.dir, "pki")
    shutil.copytree(env.pki, pki)
    crls = os.path.join(sd.dir, "crl.d")
    os.makedirs(crls)
    shutil.copy(os.path.join(pki, "crl.pem"), os.path.join(crls, "dev-ca.crl.pem"))
    sd.settings.update({"tls_client_ca": os.path.join(pki, "ca.pem"), "tls_crl": crls,
                        "ca_crl_dir": crls, "certs.crl_interval_s": 10,
                        "certs.crl_validity_s": 60})
    bsutil.write_config(sd.conf, sd.settings)
    return pki, crls


def test_revocation_closes_the_live_connection(env, second_daemon, certpb, tmp_path):
    sd = second_daemon("catls")
    pki, crls = ca_daemon(sd, env)
    d = sd.start()
    pb, hpb = env.stubs.pb, env.stubs.hpb
    admin = bsutil.Client(bsutil.local_channel(sd.port, env.ca,
                                               *env.client_files("ci-ota-release")), env.stubs)
    victim = None
    try:
        ch = admin.channel
        admin.CreateKey(pb.CreateKeyRequest(name="ca-svc", purpose=pb.CA,
                                            algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        ca = call(ch, certpb, "CreateAuthority", certpb.CreateAuthorityRequest(
            key_name="ca-svc", common_name="services CA")).authority
        # the CA's first CRL is written at once, with no revocation in it
        path = os.path.join(crls, "ca-svc.crl.pem")
        first, crl = wait_file(path, lambda n, c: True, 10)
        assert len(list(crl)) == 0
        assert not [f for f in os.listdir(crls) if f.startswith(".")], os.listdir(crls)
        # trusted from now on: the CA joins the bundle (picked up by the 2 s look)
        n = len(d.log_records())
        with open(sd.settings["tls_client_ca"], "a") as f:
            f.write(ca.certificate_pem)
        bsutil.wait_log(d, lambda r: r.get("msg") == "reloaded TLS material and policy" and
                        r.get("trigger") == "CA bundle or CRLs changed on disk", after=n)

        call(ch, certpb, "SetProfile", certpb.SetProfileRequest(profile=certpb.Profile(
            name="services", ca_key_name="ca-svc", kind=certpb.SERVICE,
            uri_prefix="spiffe://fleet.example/svc/", max_lifetime_hours=24)))
        key = ec.generate_private_key(ec.SECP256R1())
        req = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
               .sign(key, hashes.SHA256()))
        issued = call(ch, certpb, "IssueCertificate", certpb.IssueCertificateRequest(
            profile="services", subject_id="dispatch",
            csr_pem=req.public_bytes(serialization.Encoding.PEM).decode())).certificate
        assert issued.subject_uri == DISPATCH
        cert_path, key_path = str(tmp_path / "dispatch.pem"), str(tmp_path / "dispatch.key")
        with open(cert_path, "w") as f:
            f.write(issued.certificate_pem)
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        victim = bsutil.Client(bsutil.local_channel(sd.port, env.ca, cert_path, key_path),
                               env.stubs)
        assert victim.HealthCheck(hpb.HealthCheckRequest(), timeout=15).status == \
            hpb.HealthCheckResponse.SERVING

        # revoke: the CRL is written, the daemon reloads and closes the connection
        n = len(d.log_records())
        t0 = time.monotonic()
        rv = call(ch, certpb, "RevokeCertificate", certpb.RevokeCertificateRequest(
            serial_hex=issued.serial_hex, reason=1))
        answered = time.monotonic() - t0
        closed = bsutil.wait_log(d, lambda r: r.get("msg") ==
                                 "connection closed: its client certificate no longer verifies",
                                 after=n, timeout=10)
        took = time.monotonic() - t0
        assert closed["identity"] == DISPATCH and closed["reason"] == "certificate revoked"
        assert any(r.get("trigger") == "a CRL of a boltseal CA was written"
                   for r in d.log_records()[n:])
        num, crl = crl_number(path)
        assert num == rv.crl.crl_number and len(list(crl)) == 1
        assert crl.get_revoked_certificate_by_serial_number(int(issued.serial_hex, 16))
        print("revocation to closed connection: %.0f ms (RevokeCertificate answered in %.0f ms)"
              % (took * 1000, answered * 1000))
        assert took < 5.0, took
        e = bsutil.rpc_error(victim.HealthCheck, hpb.HealthCheckRequest(), timeout=10)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        victim.close()
        victim = bsutil.Client(bsutil.local_channel(sd.port, env.ca, cert_path, key_path),
                               env.stubs)
        e = bsutil.rpc_error(victim.HealthCheck, hpb.HealthCheckRequest(), timeout=10)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        # the administrator's connection (another CA) was not touched
        admin.ListKeys(pb.ListKeysRequest(), timeout=15)

        # the publisher remakes the CRL on its own every crl_interval_s (10 s here)
        later, crl2 = wait_file(path, lambda k, c: k > num, 25)
        assert len(list(crl2)) == 1
        rec = bsutil.wait_audit(sd.state_dir, lambda r: r["type"] == "key" and
                                r.get("event") == "crl_made" and r.get("key") == "ca-svc")[-1]
        assert rec["fields"]["crl_number"] == str(later), rec
        assert rec["payload_sha256"], rec
    finally:
        admin.close()
        if victim is not None:
            victim.close()
    bsutil.stop_clean(d)


def test_ca_crl_dir_is_checked(env, second_daemon):
    """-n refuses a ca_crl_dir that is missing or not a directory, and warns
    when tls_crl does not name it (the TLS layer would not read it)."""
    sd = second_daemon("crldir")
    for bad, words in ((os.path.join(sd.dir, "nowhere"), "No such file or directory"),
                       (sd.conf, "not a directory")):
        sd.settings["ca_crl_dir"] = bad
        bsutil.write_config(sd.conf, sd.settings)
        rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
        assert rc == 1 and "ca_crl_dir %s: %s" % (bad, words) in out, out
    elsewhere = os.path.join(sd.dir, "crl-out")
    os.makedirs(elsewhere)
    sd.settings["ca_crl_dir"] = elsewhere
    bsutil.write_config(sd.conf, sd.settings)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 0 and "warning: ca_crl_dir %s is not tls_crl" % elsewhere in out, out
