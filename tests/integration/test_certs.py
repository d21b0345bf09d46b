# test_certs.py - CertificateService's certificate authorities (certs.proto,
# docs/identity.md): a CA certificate made for a key of purpose CA and
# signed by that key in the HSM, checked by implementations nobody here
# wrote: OpenSSL's `openssl verify` and `openssl x509`, and
# python3-cryptography (its public key is the HSM key's, its signature
# verifies, its extensions are those of a CA). Refusals: not a CA key,
# unknown key, bad names and lifetimes, a second certificate; the audit
# record. Then issuance: profiles, client certificates from CSRs that ask
# for more than the profile gives (a CA, another identity) and get exactly
# the profile's fields, verified by `openssl verify -purpose sslclient`;
# refusals (lifetime, unregistered or suspended vehicle, no proof of
# possession, RSA, unknown profile, malformed profiles).
import base64
import datetime
import os
import subprocess

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import bsutil

CS = "/boltseal.v1.CertificateService/"


@pytest.fixture(scope="module")
def certpb(env):
    outdir = os.path.join(env.workdir, "certs-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/certs.proto"])
    return bsutil._load_module("bs_it_certs_pb2",
                               os.path.join(outdir, "boltseal", "v1", "certs_pb2.py"))


class Certs:
    def __init__(self, channel, m):
        self.m = m
        self.create = channel.unary_unary(
            CS + "CreateAuthority", request_serializer=m.CreateAuthorityRequest.SerializeToString,
            response_deserializer=m.CreateAuthorityResponse.FromString)
        self.get = channel.unary_unary(
            CS + "GetAuthority", request_serializer=m.GetAuthorityRequest.SerializeToString,
            response_deserializer=m.GetAuthorityResponse.FromString)


@pytest.fixture(scope="module")
def certs(env, certpb):
    return Certs(env.client().channel, certpb)


def make_key(env, name, purpose, alg=None):
    pb = env.stubs.pb
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name=name, purpose=purpose,
                                    algorithm=alg or pb.ECDSA_P256_SHA256), timeout=30)
    return c.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30).pem


def status(fn, *args):
    try:
        fn(*args, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("expected an error")


def openssl(*args, stdin=None):
    p = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_ca_certificate_signed_in_the_hsm(env, certs, certpb, tmp_path):
    pb = env.stubs.pb
    pub_pem = make_key(env, "ca-vehicles", pb.CA)
    r = certs.create(certpb.CreateAuthorityRequest(key_name="ca-vehicles",
                                                   common_name="fleet vehicles CA",
                                                   lifetime_days=30), timeout=30).authority
    assert r.key_name == "ca-vehicles" and r.key_version == 1, r
    assert r.subject == "CN=fleet vehicles CA,O=boltseal", r.subject
    cert = x509.load_pem_x509_certificate(r.certificate_pem.encode())
    # the HSM key's public half, and its signature over the TBS
    assert cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode() \
        == pub_pem
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                             ec.ECDSA(cert.signature_hash_algorithm))
    assert cert.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"
    assert cert.issuer == cert.subject and cert.version == x509.Version.v3
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert format(cert.serial_number, "x") == r.serial_hex.lstrip("0")
    assert r.sha256 == cert.fingerprint(hashes.SHA256()).hex()
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=30) <= life <= datetime.timedelta(days=30, minutes=2), life
    assert int(cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()) == \
        r.not_before_unix

    # OpenSSL: a valid self-signed CA
    ca_path = str(tmp_path / "ca.pem")
    with open(ca_path, "w") as f:
        f.write(r.certificate_pem)
    rc, out = openssl("verify", "-x509_strict", "-CAfile", ca_path, ca_path)
    assert rc == 0 and ": OK" in out, out
    rc, out = openssl("x509", "-in", ca_path, "-noout", "-text")
    assert rc == 0 and "CA:TRUE, pathlen:0" in out and "Certificate Sign, CRL Sign" in out, out

    # kept: GetAuthority answers the same certificate; a second one is refused
    g = certs.get(certpb.GetAuthorityRequest(key_name="ca-vehicles"), timeout=30).authority
    assert g == r
    code, msg = status(certs.create, certpb.CreateAuthorityRequest(
        key_name="ca-vehicles", common_name="again"))
    assert code == grpc.StatusCode.ALREADY_EXISTS, msg

    # audited: the event, the key version, the serial and the certificate's hash
    recs = bsutil.wait_audit(env.state_dir, lambda x: x.get("event") == "ca_created", count=1)
    rec = recs[-1]
    assert rec["key"] == "ca-vehicles" and rec["key_version"] == 1, rec
    assert rec["fields"]["serial"] == r.serial_hex and rec["fields"]["cert_sha256"] == r.sha256


def test_refusals(env, certs, certpb):
    pb = env.stubs.pb
    make_key(env, "ca-not", pb.GENERIC)
    code, msg = status(certs.create, certpb.CreateAuthorityRequest(key_name="ca-not",
                                                                   common_name="x"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not a CA key" in msg, msg
    code, msg = status(certs.create, certpb.CreateAuthorityRequest(key_name="ca-none",
                                                                   common_name="x"))
    assert code == grpc.StatusCode.NOT_FOUND, msg
    for cn, days in (("", 0), ("a" * 65, 0), ("tab\there", 0), ("ok", 7301)):
        code, msg = status(certs.create, certpb.CreateAuthorityRequest(
            key_name="ca-not", common_name=cn, lifetime_days=days))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (cn, days, msg)
    code, msg = status(certs.get, certpb.GetAuthorityRequest(key_name="ca-not"))
    assert code == grpc.StatusCode.NOT_FOUND, msg
    code, msg = status(certs.create, certpb.CreateAuthorityRequest(key_name="", common_name="x"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    # a CA key takes ECDSA P-256 only
    c = env.client()
    code, msg = status(c.CreateKey, pb.CreateKeyRequest(name="ca-ed", purpose=pb.CA,
                                                        algorithm=pb.ED25519))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "CA keys ECDSA_P256_SHA256" in msg, msg


def cli(env, *args):
    cert, key = env.client_files("ci-ota-release")
    e = {k: v for k, v in os.environ.items() if not k.startswith("BOLTSEAL_")}
    p = subprocess.run([os.path.join(bsutil.BUILDDIR, "boltseal"), "--server",
                        "127.0.0.1:%d" % env.port, "--ca", env.ca, "--cert", cert, "--key", key]
                       + list(args), env=e, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_cli_ca_commands(env, tmp_path):
    rc, out, err = cli(env, "create-key", "ca-cli", "--alg", "ecdsa-p256-sha256", "--purpose", "ca")
    assert rc == 0, (rc, out, err)
    rc, out, err = cli(env, "ca", "create", "ca-cli")
    assert rc == 2 and "--common-name" in err, (rc, out, err)
    rc, out, err = cli(env, "ca", "create", "ca-cli", "--common-name", "cli CA", "--days", "10")
    assert rc == 0 and "subject:         CN=cli CA,O=boltseal" in out, (rc, out, err)
    assert "-----BEGIN CERTIFICATE-----" in out
    path = str(tmp_path / "ca-cli.pem")
    rc, out, err = cli(env, "ca", "show", "ca-cli", "--out", path)
    assert rc == 0 and "serial:" in out and "BEGIN" not in out, (rc, out, err)
    rc, vout = openssl("verify", "-x509_strict", "-CAfile", path, path)
    assert rc == 0, vout
    rc, out, err = cli(env, "--json", "ca", "show", "ca-cli")
    assert rc == 0 and '"key_version":1' in out.replace(" ", ""), out
    rc, out, err = cli(env, "ca", "show", "ca-missing")
    assert rc == 4 and "NOT_FOUND" in err, (rc, out, err)


# --- issuance from a CSR, as the profile says -------------------------------------------------

@pytest.fixture(scope="module")
def vpb(env):
    outdir = os.path.join(env.workdir, "certs-vehicle-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/vehicles.proto"])
    return bsutil._load_module("bs_it_certs_vehicles_pb2",
                               os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))


def vehicle_call(env, vpb, meth, req_cls):
    return env.client().channel.unary_unary(
        "/boltseal.v1.VehicleService/" + meth, request_serializer=req_cls.SerializeToString,
        response_deserializer=vpb.Vehicle.FromString)


def csr(key, cn="anything", ca=False, san="spiffe://fleet.example/admin/alice"):
    """A CSR asking for more than any profile gives: a CA, another identity."""
    b = (x509.CertificateSigningRequestBuilder()
         .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectAlternativeName(
             [x509.UniformResourceIdentifier(san)]), critical=False))
    algo = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(key, algo).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def issuing(env, certs, certpb, vpb):
    """CA key ca-fleet with its certificate; profiles vehicles (VEHICLE, 168 h) and services
    (SERVICE, 720 h); vehicle TRUCK-7 registered and active, TRUCK-8 suspended."""
    pb = env.stubs.pb
    make_key(env, "ca-fleet", pb.CA)
    ca = certs.create(certpb.CreateAuthorityRequest(key_name="ca-fleet",
                                                    common_name="fleet CA"), timeout=30)
    set_profile = env.client().channel.unary_unary(
        CS + "SetProfile", request_serializer=certpb.SetProfileRequest.SerializeToString,
        response_deserializer=certpb.SetProfileResponse.FromString)
    for name, kind, prefix, hours in (("vehicles", certpb.VEHICLE,
                                       "spiffe://fleet.example/vehicle/", 168),
                                      ("services", certpb.SERVICE,
                                       "spiffe://fleet.example/svc/", 720)):
        p = set_profile(certpb.SetProfileRequest(profile=certpb.Profile(
            name=name, ca_key_name="ca-fleet", kind=kind, uri_prefix=prefix,
            max_lifetime_hours=hours)), timeout=30).profile
        assert p.name == name and p.max_lifetime_hours == hours
    reg = vehicle_call(env, vpb, "RegisterVehicle", vpb.RegisterVehicleRequest)
    for vid in ("TRUCK-7", "TRUCK-8"):
        k = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        reg(vpb.RegisterVehicleRequest(id=vid, identity=vpb.VehicleIdentity(public_key=k)),
            timeout=30)
    vehicle_call(env, vpb, "SetVehicleStatus", vpb.SetVehicleStatusRequest)(
        vpb.SetVehicleStatusRequest(id="TRUCK-8", status=vpb.VEHICLE_SUSPENDED,
                                    reason="test"), timeout=30)
    issue = env.client().channel.unary_unary(
        CS + "IssueCertificate",
        request_serializer=certpb.IssueCertificateRequest.SerializeToString,
        response_deserializer=certpb.IssueCertificateResponse.FromString)
    return ca.authority, issue, set_profile


def test_issue_from_csr_as_the_profile_says(env, certpb, issuing, tmp_path):
    ca, issue, _ = issuing
    key = ec.generate_private_key(ec.SECP256R1())
    r = issue(certpb.IssueCertificateRequest(profile="vehicles", subject_id="TRUCK-7",
                                             csr_pem=csr(key, ca=True)), timeout=30).certificate
    assert r.subject_uri == "spiffe://fleet.example/vehicle/TRUCK-7" and r.profile == "vehicles"
    assert r.ca_certificate_pem == ca.certificate_pem and r.ca_key_name == "ca-fleet"
    leaf = x509.load_pem_x509_certificate(r.certificate_pem.encode())
    cacert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    # the CSR's key; everything else the profile's, whatever the CSR asked
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert leaf.subject.rfc4514_string() == "CN=TRUCK-7,O=boltseal"
    assert leaf.issuer == cacert.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [r.subject_uri]
    assert len(list(san)) == 1
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == cacert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    life = leaf.not_valid_after - leaf.not_valid_before
    assert datetime.timedelta(hours=168) <= life <= datetime.timedelta(hours=168, minutes=2)
    cacert.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                               ec.ECDSA(leaf.signature_hash_algorithm))
    assert r.sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    # OpenSSL: the chain verifies, for TLS client authentication
    ca_path, leaf_path = str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")
    with open(ca_path, "w") as f:
        f.write(ca.certificate_pem)
    with open(leaf_path, "w") as f:
        f.write(r.certificate_pem)
    rc, out = openssl("verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", ca_path,
                      leaf_path)
    assert rc == 0 and ": OK" in out, out
    # audited
    recs = bsutil.wait_audit(env.state_dir, lambda x: x.get("event") == "certificate_issued",
                             count=1)
    f = recs[-1]["fields"]
    assert f["serial"] == r.serial_hex and f["cert_sha256"] == r.sha256, f
    assert f["subject_uri"] == r.subject_uri and recs[-1]["key"] == "ca-fleet", recs[-1]

    # a shorter lifetime when asked; a service profile needs no registered subject; Ed25519
    ed = ed25519_key()
    s = issue(certpb.IssueCertificateRequest(profile="services", subject_id="svc-dispatch",
                                             csr_pem=csr(ed), lifetime_hours=2),
              timeout=30).certificate
    leaf = x509.load_pem_x509_certificate(s.certificate_pem.encode())
    assert leaf.not_valid_after - leaf.not_valid_before <= datetime.timedelta(hours=2, minutes=2)
    assert s.subject_uri == "spiffe://fleet.example/svc/svc-dispatch"


def ed25519_key():
    return ed25519.Ed25519PrivateKey.generate()


def test_issue_refusals(env, certpb, issuing):
    _, issue, set_profile = issuing
    key = ec.generate_private_key(ec.SECP256R1())
    good = csr(key)

    def refused(code, words, **kw):
        req = dict(profile="vehicles", subject_id="TRUCK-7", csr_pem=good)
        req.update(kw)
        c, msg = status(issue, certpb.IssueCertificateRequest(**req))
        assert c == code and words in msg, (kw, c, msg)

    refused(grpc.StatusCode.INVALID_ARGUMENT, "lifetime_hours", lifetime_hours=169)
    refused(grpc.StatusCode.FAILED_PRECONDITION, "not registered", subject_id="TRUCK-99")
    refused(grpc.StatusCode.FAILED_PRECONDITION, "not active", subject_id="TRUCK-8")
    refused(grpc.StatusCode.NOT_FOUND, "no profile", profile="nobody")
    refused(grpc.StatusCode.INVALID_ARGUMENT, "subject_id", subject_id="-bad")
    refused(grpc.StatusCode.INVALID_ARGUMENT, "not a PEM", csr_pem="hello")
    # a CSR whose signature does not verify with its key: no proof of possession
    der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(
        serialization.Encoding.DER))
    der[-3] ^= 0x01       # in the signature's last bytes
    bad = "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % \
        base64.encodebytes(bytes(der)).decode().strip()
    refused(grpc.StatusCode.INVALID_ARGUMENT, "proof of possession", csr_pem=bad)
    # an RSA key is refused
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(grpc.StatusCode.INVALID_ARGUMENT, "ECDSA P-256 or Ed25519", csr_pem=csr(rk))
    # profiles: malformed, or naming a key that is not a CA key
    for p in (dict(name="Bad_Name"), dict(uri_prefix="spiffe://x/y"),
              dict(uri_prefix="no-scheme/"), dict(uri_prefix="spiffe://a,b/"),
              dict(max_lifetime_hours=0), dict(max_lifetime_hours=8761), dict(kind=0)):
        prof = dict(name="p1", ca_key_name="ca-fleet", kind=certpb.SERVICE,
                    uri_prefix="spiffe://fleet.example/p1/", max_lifetime_hours=1)
        prof.update(p)
        c, msg = status(set_profile, certpb.SetProfileRequest(profile=certpb.Profile(**prof)))
        assert c == grpc.StatusCode.INVALID_ARGUMENT, (p, c, msg)
    make_key(env, "not-ca", env.stubs.pb.GENERIC)
    c, msg = status(set_profile, certpb.SetProfileRequest(profile=certpb.Profile(
        name="p2", ca_key_name="not-ca", kind=certpb.SERVICE,
        uri_prefix="spiffe://fleet.example/p2/", max_lifetime_hours=1)))
    assert c == grpc.StatusCode.FAILED_PRECONDITION and "not a CA key" in msg, msg


def test_cli_profile_and_issue_with_an_openssl_csr(env, issuing, tmp_path):
    key, req = str(tmp_path / "gw.key"), str(tmp_path / "gw.csr")
    rc, out = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", key, "-out", req, "-subj", "/CN=root/O=evil",
                      "-addext", "basicConstraints=critical,CA:TRUE")
    assert rc == 0, out
    rc, out, err = cli(env, "ca", "profile", "gateways", "--ca", "ca-fleet", "--kind", "gateway",
                       "--uri-prefix", "spiffe://fleet.example/gw/", "--max-hours", "48")
    assert rc == 0 and "profile gateways" in out, (rc, out, err)
    leaf, ca = str(tmp_path / "gw.pem"), str(tmp_path / "ca.pem")
    rc, out, err = cli(env, "ca", "issue", "gateways", "eu-west-9", "--csr", req, "--out", leaf,
                       "--ca-out", ca)
    assert rc == 0 and "subject uri:     spiffe://fleet.example/gw/eu-west-9" in out, (rc, out, err)
    rc, out = openssl("verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", ca, leaf)
    assert rc == 0, out
    rc, out = openssl("x509", "-in", leaf, "-noout", "-text")
    assert "CA:FALSE" in out and "URI:spiffe://fleet.example/gw/eu-west-9" in out, out
    assert "evil" not in out, out
    # the leaf's key is the CSR's: the private key matches the certificate
    rc1, a = openssl("x509", "-in", leaf, "-noout", "-pubkey")
    rc2, b = openssl("pkey", "-in", key, "-pubout")
    assert rc1 == 0 and rc2 == 0 and a == b
    rc, out, err = cli(env, "ca", "issue", "gateways", "eu-west-9", "--csr", req, "--hours", "49")
    assert rc == 4 and "INVALID_ARGUMENT" in err, (rc, out, err)
    rc, out, err = cli(env, "ca", "profile", "x", "--ca", "ca-fleet", "--kind", "truck",
                       "--uri-prefix", "a://b/", "--max-hours", "1")
    assert rc == 2 and "--kind" in err, (rc, out, err)


# --- revocation and CRLs ---------------------------------------------------------------------

def test_revocation_and_crls(env, certpb, issuing, tmp_path):
    ca, issue, _ = issuing
    ch = env.client().channel
    revoke = ch.unary_unary(CS + "RevokeCertificate",
                            request_serializer=certpb.RevokeCertificateRequest.SerializeToString,
                            response_deserializer=certpb.RevokeCertificateResponse.FromString)
    get_crl = ch.unary_unary(CS + "GetCrl",
                             request_serializer=certpb.GetCrlRequest.SerializeToString,
                             response_deserializer=certpb.GetCrlResponse.FromString)
    leaves = []
    for sid in ("svc-a", "svc-b"):
        r = issue(certpb.IssueCertificateRequest(
            profile="services", subject_id=sid,
            csr_pem=csr(ec.generate_private_key(ec.SECP256R1()))), timeout=30).certificate
        leaves.append(r)
    first = get_crl(certpb.GetCrlRequest(ca_key_name="ca-fleet"), timeout=30).crl
    again = get_crl(certpb.GetCrlRequest(ca_key_name="ca-fleet"), timeout=30).crl
    assert again == first and first.revoked == 0       # kept while fresh

    rv = revoke(certpb.RevokeCertificateRequest(serial_hex=leaves[0].serial_hex, reason=1),
                timeout=30)
    assert rv.certificate.revoked_at_unix > 0 and rv.certificate.revocation_reason == 1
    crl = rv.crl
    assert crl.crl_number == first.crl_number + 1 and crl.revoked == 1, crl
    assert crl.next_update_unix - crl.this_update_unix == 86400
    # python3-cryptography: signed by the CA, lists exactly the revoked one, with its reason
    cacert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    c = x509.load_pem_x509_crl(crl.crl_pem.encode())
    assert c.is_signature_valid(cacert.public_key()) and c.issuer == cacert.subject
    ent = c.get_revoked_certificate_by_serial_number(int(leaves[0].serial_hex, 16))
    assert ent is not None and len(list(c)) == 1
    assert ent.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    assert c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        crl.crl_number
    # OpenSSL: the CRL verifies; the revoked leaf is refused with it, the other is not
    paths = {}
    for name, text in (("ca", ca.certificate_pem), ("crl", crl.crl_pem),
                       ("a", leaves[0].certificate_pem), ("b", leaves[1].certificate_pem)):
        paths[name] = str(tmp_path / (name + ".pem"))
        with open(paths[name], "w") as f:
            f.write(text)
    rc, out = openssl("crl", "-in", paths["crl"], "-CAfile", paths["ca"], "-noout")
    assert rc == 0 and "verify OK" in out, out
    rc, out = openssl("verify", "-crl_check", "-CAfile", paths["ca"], "-CRLfile", paths["crl"],
                      paths["a"])
    assert rc != 0 and "certificate revoked" in out, out
    rc, out = openssl("verify", "-crl_check", "-CAfile", paths["ca"], "-CRLfile", paths["crl"],
                      paths["b"])
    assert rc == 0, out
    assert get_crl(certpb.GetCrlRequest(ca_key_name="ca-fleet"), timeout=30).crl == crl
    recs = bsutil.wait_audit(env.state_dir, lambda x: x.get("event") == "certificate_revoked",
                             count=1)
    assert recs[-1]["fields"]["serial"] == leaves[0].serial_hex, recs[-1]

    # refusals
    for req, code, words in (
            (dict(serial_hex=leaves[0].serial_hex), grpc.StatusCode.FAILED_PRECONDITION,
             "revoked already"),
            (dict(serial_hex="4" + "0" * 31), grpc.StatusCode.NOT_FOUND, "no certificate"),
            (dict(serial_hex=leaves[1].serial_hex, reason=2), grpc.StatusCode.INVALID_ARGUMENT,
             "reason"),
            (dict(serial_hex="XYZ"), grpc.StatusCode.INVALID_ARGUMENT, "serial_hex")):
        code_, msg = status(revoke, certpb.RevokeCertificateRequest(**req))
        assert code_ == code and words in msg, (req, code_, msg)
    code_, msg = status(get_crl, certpb.GetCrlRequest(ca_key_name="ca-none"))
    assert code_ == grpc.StatusCode.FAILED_PRECONDITION, msg


def test_cli_revoke_and_crl(env, issuing, tmp_path):
    """After the API's revocation test: `ca revoke` by serial, `ca crl`, checked by openssl."""
    key, req = str(tmp_path / "gw.key"), str(tmp_path / "gw.csr")
    rc, out = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", key, "-out", req, "-subj", "/CN=x")
    assert rc == 0, out
    leaf, ca = str(tmp_path / "gw.pem"), str(tmp_path / "ca.pem")
    rc, out, err = cli(env, "ca", "issue", "gateways", "eu-west-8", "--csr", req, "--out", leaf,
                       "--ca-out", ca)
    assert rc == 0, (rc, out, err)

    # revoked through the CLI by serial; its CRL through the CLI, checked by openssl
    serial = openssl("x509", "-in", leaf, "-noout", "-serial")[1].strip().split("=")[1].lower()
    rc, out, err = cli(env, "ca", "revoke", serial, "--reason", "key-cmpromise")
    assert rc == 2 and "--reason must be" in err, (rc, out, err)
    rc, out, err = cli(env, "ca", "revoke", serial, "--reason", "superseded")
    assert rc == 0 and ("revoked %s (spiffe://fleet.example/gw/eu-west-8)" % serial) in out, \
        (rc, out, err)
    rc, out, err = cli(env, "ca", "revoke", serial)
    assert rc == 4 and "revoked already" in err, (rc, out, err)
    crl = str(tmp_path / "ca.crl")
    rc, out, err = cli(env, "ca", "crl", "ca-fleet", "--out", crl)
    assert rc == 0 and "crl number:" in out, (rc, out, err)
    rc, out = openssl("crl", "-in", crl, "-CAfile", ca, "-noout", "-text")
    assert "verify OK" in out and serial.upper() in out and "Superseded" in out, out
    rc, out = openssl("verify", "-crl_check", "-CAfile", ca, "-CRLfile", crl, leaf)
    assert rc != 0 and "revoked" in out, out


def test_list_profiles_and_certificates(env, certpb, issuing):
    """ListProfiles and ListCertificates (by CA, by subject, pages), and the CLI's tables."""
    ch = env.client().channel

    def call(meth, req, resp):
        return ch.unary_unary(CS + meth, request_serializer=req.SerializeToString,
                              response_deserializer=resp.FromString)(req, timeout=30)
    profs = call("ListProfiles", certpb.ListProfilesRequest(), certpb.ListProfilesResponse)
    names = [p.name for p in profs.profiles]
    assert names == sorted(names) and {"vehicles", "services", "gateways"} <= set(names), names
    ca, issue, _ = issuing
    mine = [issue(certpb.IssueCertificateRequest(
        profile="services", subject_id="lister", csr_pem=csr(
            ec.generate_private_key(ec.SECP256R1()))), timeout=30).certificate
        for _ in range(3)]
    r = call("ListCertificates", certpb.ListCertificatesRequest(subject_id="lister"),
             certpb.ListCertificatesResponse)
    assert sorted(c.serial_hex for c in r.certificates) == sorted(c.serial_hex for c in mine)
    assert r.next_page_token == "" and all(c.ca_certificate_pem == "" for c in r.certificates)
    # pages of one, in serial order
    seen, token = [], ""
    for _ in range(10):
        r = call("ListCertificates", certpb.ListCertificatesRequest(
            subject_id="lister", page_size=1, page_token=token), certpb.ListCertificatesResponse)
        seen += [c.serial_hex for c in r.certificates]
        token = r.next_page_token
        if not token:
            break
    assert seen == sorted(c.serial_hex for c in mine), seen
    every = call("ListCertificates", certpb.ListCertificatesRequest(ca_key_name="ca-fleet",
                                                                    page_size=1000),
                 certpb.ListCertificatesResponse)
    assert len(every.certificates) >= 6 and {c.ca_key_name for c in every.certificates} == \
        {"ca-fleet"}
    assert any(c.revoked_at_unix > 0 for c in every.certificates)   # revoked ones are listed
    code_, msg = status(ch.unary_unary(
        CS + "ListCertificates",
        request_serializer=certpb.ListCertificatesRequest.SerializeToString,
        response_deserializer=certpb.ListCertificatesResponse.FromString),
        certpb.ListCertificatesRequest(page_token="zz"))
    assert code_ == grpc.StatusCode.INVALID_ARGUMENT, msg
    rc, out, err = cli(env, "ca", "list", "--subject", "lister")
    assert rc == 0 and out.count("spiffe://fleet.example/svc/lister") == 3 and \
        out.count(" valid ") == 3, (rc, out, err)
    rc, out, err = cli(env, "ca", "profiles")
    assert rc == 0 and "vehicles" in out and "spiffe://fleet.example/vehicle/" in out, (rc, out, err)
    rc, out, err = cli(env, "--json", "ca", "list", "--subject", "lister", "--all")
    assert rc == 0 and out.count('"state":"valid"') + out.count('"state": "valid"') == 3, out
