# test_ca_tls.py - boltseal's own CA in front of its own TLS layer
# (docs/identity.md, "Revocation reaches the TLS layer"): a daemon whose
# tls_crl is a directory that is also its ca_crl_dir. A CA made through
# CertificateService gets its CRL written there at once; with the CA's
# certificate added to tls_client_ca, a certificate issued from a CSR opens
# a mutual-TLS connection; RevokeCertificate writes the new CRL, the daemon
# reloads at once and closes the live connection, and the next handshake is
# refused. The time from RevokeCertificate to the closed connection is
# measured and printed. With certs.crl_interval_s = 10 the publisher makes a
# new CRL on its own (audited as the daemon's key use). A vehicle renews its
# certificate over mutual TLS with that certificate (RenewCertificate, then
# `boltseal ca renew`), the registry records each certificate of its key and
# the revocation; a certificate this CA did not issue cannot renew.
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


@pytest.fixture(scope="module")
def vpb(env):
    outdir = os.path.join(env.workdir, "ca-tls-vehicle-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/vehicles.proto"])
    return bsutil._load_module("bs_it_ca_tls_vehicles_pb2",
                               os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))


def vcall(ch, vpb, meth, req, timeout=30):
    return ch.unary_unary("/boltseal.v1.VehicleService/" + meth,
                          request_serializer=req.SerializeToString,
                          response_deserializer=vpb.Vehicle.FromString)(req, timeout=timeout)


def csr_for(key):
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


def save(tmp_path, name, cert_pem, key):
    cert_path, key_path = str(tmp_path / (name + ".pem")), str(tmp_path / (name + ".key"))
    with open(cert_path, "w") as f:
        f.write(cert_pem)
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def trusted_ca(sd, d, env, admin, certpb, key, kind, prefix, profile):
    """CA `key` made, its first CRL written to ca_crl_dir, its certificate
    added to the bundle (the daemon reloads), and a profile under it."""
    pb = env.stubs.pb
    admin.CreateKey(pb.CreateKeyRequest(name=key, purpose=pb.CA,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    ca = call(admin.channel, certpb, "CreateAuthority", certpb.CreateAuthorityRequest(
        key_name=key, common_name=key + " CA")).authority
    path = os.path.join(sd.settings["ca_crl_dir"], key + ".crl.pem")
    wait_file(path, lambda n, c: True, 10)
    n = len(d.log_records())
    with open(sd.settings["tls_client_ca"], "a") as f:
        f.write(ca.certificate_pem)
    bsutil.wait_log(d, lambda r: r.get("msg") == "reloaded TLS material and policy" and
                    r.get("trigger") == "CA bundle or CRLs changed on disk", after=n)
    call(admin.channel, certpb, "SetProfile", certpb.SetProfileRequest(profile=certpb.Profile(
        name=profile, ca_key_name=key, kind=kind, uri_prefix=prefix, max_lifetime_hours=24)))
    return ca, path


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
        ca, path = trusted_ca(sd, d, env, admin, certpb, "ca-svc", certpb.SERVICE,
                              "spiffe://fleet.example/svc/", "services")
        # the CA's first CRL was written at once, with no revocation in it
        first, crl = crl_number(path)
        assert len(list(crl)) == 0
        assert not [f for f in os.listdir(crls) if f.startswith(".")], os.listdir(crls)
        key = ec.generate_private_key(ec.SECP256R1())
        issued = call(ch, certpb, "IssueCertificate", certpb.IssueCertificateRequest(
            profile="services", subject_id="dispatch", csr_pem=csr_for(key))).certificate
        assert issued.subject_uri == DISPATCH
        cert_path, key_path = save(tmp_path, "dispatch", issued.certificate_pem, key)
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
                                r.get("event") == "crl_made" and r.get("key") == "ca-svc" and
                                r["fields"]["crl_number"] == str(later))[-1]
        assert rec["fields"]["crl_entries"] == "1", rec
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


def test_vehicle_renews_over_mtls(env, second_daemon, certpb, vpb, tmp_path):
    sd = second_daemon("renew")
    pki, crls = ca_daemon(sd, env)
    d = sd.start()
    hpb = env.stubs.hpb
    admin = bsutil.Client(bsutil.local_channel(sd.port, env.ca,
                                               *env.client_files("ci-ota-release")), env.stubs)
    clients = []

    def connect(cert, key):
        c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, cert, key), env.stubs)
        clients.append(c)
        return c
    try:
        ca, _ = trusted_ca(sd, d, env, admin, certpb, "ca-veh", certpb.VEHICLE,
                           "spiffe://fleet.example/vehicle/", "vehicles")
        first_key = ec.generate_private_key(ec.SECP256R1())
        spki = first_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        vcall(admin.channel, vpb, "RegisterVehicle", vpb.RegisterVehicleRequest(
            id="TRUCK-9", identity=vpb.VehicleIdentity(public_key=spki)))
        old = call(admin.channel, certpb, "IssueCertificate", certpb.IssueCertificateRequest(
            profile="vehicles", subject_id="TRUCK-9", csr_pem=csr_for(first_key),
            lifetime_hours=2)).certificate
        # the registry notes the certificate on the identity of its key
        v = vcall(admin.channel, vpb, "GetVehicle", vpb.GetVehicleRequest(id="TRUCK-9"))
        assert [(i.cert_sha256, i.not_after) for i in v.identities] == \
            [(old.sha256, old.not_after_unix)], v

        # the vehicle renews itself, with a new key, over its own connection
        truck = connect(*save(tmp_path, "truck-old", old.certificate_pem, first_key))
        new_key = ec.generate_private_key(ec.SECP256R1())
        new = call(truck.channel, certpb, "RenewCertificate", certpb.RenewCertificateRequest(
            csr_pem=csr_for(new_key))).certificate
        assert new.renewed_from_serial_hex == old.serial_hex
        assert new.subject_uri == "spiffe://fleet.example/vehicle/TRUCK-9"
        assert new.profile == "vehicles" and new.subject_id == "TRUCK-9"
        assert new.serial_hex != old.serial_hex
        assert 23 * 3600 <= new.not_after_unix - new.not_before_unix <= 24 * 3600 + 60
        leaf = x509.load_pem_x509_certificate(new.certificate_pem.encode())
        assert leaf.public_key().public_numbers() == new_key.public_key().public_numbers()
        ca_path = str(tmp_path / "ca.pem")
        with open(ca_path, "w") as f:
            f.write(ca.certificate_pem)
        p = bsutil.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile", ca_path,
                        str(tmp_path / "truck-old.pem")], check=False)
        assert p.returncode == 0, p
        new_files = save(tmp_path, "truck-new", new.certificate_pem, new_key)
        p = bsutil.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile", ca_path,
                        new_files[0]], check=False)
        assert p.returncode == 0, p
        v = vcall(admin.channel, vpb, "GetVehicle", vpb.GetVehicleRequest(id="TRUCK-9"))
        assert {i.cert_sha256 for i in v.identities} == {old.sha256, new.sha256}, v
        rec = bsutil.wait_audit(sd.state_dir, lambda r: r.get("event") == "certificate_renewed")
        assert rec[-1]["fields"]["renewed_from"] == old.serial_hex, rec[-1]
        assert rec[-1]["principal_id"] == "vehicles" and rec[-1]["target"] == "TRUCK-9"

        # the new certificate works, and renews through the CLI (same key this time)
        csr_path = str(tmp_path / "again.csr")
        with open(csr_path, "w") as f:
            f.write(csr_for(new_key))
        e = dict(os.environ, BOLTSEAL_CA=env.ca, BOLTSEAL_CERT=new_files[0],
                 BOLTSEAL_KEY=new_files[1])
        for k in ("BOLTSEAL_CONFIG", "BOLTSEAL_SERVER"):
            e.pop(k, None)
        out = bsutil.run([os.path.join(bsutil.BUILDDIR, "boltseal"), "--server",
                          "127.0.0.1:%d" % sd.port, "ca", "renew", "--csr", csr_path, "--out",
                          str(tmp_path / "truck-3.pem")], check=False, env=e)
        assert out.returncode == 0, out
        assert b"renewed from:" in out.stdout and old.serial_hex.encode() not in out.stdout
        third = x509.load_pem_x509_certificate(bsutil.read(str(tmp_path / "truck-3.pem")))
        assert third.public_key().public_numbers() == new_key.public_key().public_numbers()
        v = vcall(admin.channel, vpb, "GetVehicle", vpb.GetVehicleRequest(id="TRUCK-9"))
        third_sha = third.fingerprint(hashes.SHA256()).hex()
        assert {i.cert_sha256 for i in v.identities} == {old.sha256, third_sha}, v

        # a certificate this CA did not issue cannot renew (the dev PKI's)
        other = connect(*env.client_files("svc-dispatch"))
        e = bsutil.rpc_error(other.channel.unary_unary(
            CS + "RenewCertificate",
            request_serializer=certpb.RenewCertificateRequest.SerializeToString,
            response_deserializer=certpb.RenewCertificateResponse.FromString),
            certpb.RenewCertificateRequest(csr_pem=csr_for(new_key)), timeout=30)
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
        assert "was not issued by this service" in e.details()

        # revoking the first certificate for key compromise marks its key's identity
        call(admin.channel, certpb, "RevokeCertificate", certpb.RevokeCertificateRequest(
            serial_hex=old.serial_hex, reason=1))
        v = vcall(admin.channel, vpb, "GetVehicle", vpb.GetVehicleRequest(id="TRUCK-9"))
        by_cert = {i.cert_sha256: i for i in v.identities}
        assert by_cert[old.sha256].revoked_at > 0
        assert old.serial_hex in by_cert[old.sha256].revoked_reason
        assert by_cert[third_sha].revoked_at == 0
        # and that key cannot be certified again
        e = bsutil.rpc_error(admin.channel.unary_unary(
            CS + "IssueCertificate",
            request_serializer=certpb.IssueCertificateRequest.SerializeToString,
            response_deserializer=certpb.IssueCertificateResponse.FromString),
            certpb.IssueCertificateRequest(profile="vehicles", subject_id="TRUCK-9",
                                           csr_pem=csr_for(first_key)), timeout=30)
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
        assert "is revoked" in e.details()
        assert connect(*new_files).HealthCheck(hpb.HealthCheckRequest(), timeout=15).status == \
            hpb.HealthCheckResponse.SERVING
    finally:
        admin.close()
        for c in clients:
            c.close()
    bsutil.stop_clean(d)
