# test_certs.py - CertificateService's certificate authorities (certs.proto,
# docs/identity.md): a CA certificate made for a key of purpose CA and
# signed by that key in the HSM, checked by implementations nobody here
# wrote: OpenSSL's `openssl verify` and `openssl x509`, and
# python3-cryptography (its public key is the HSM key's, its signature
# verifies, its extensions are those of a CA). Refusals: not a CA key,
# unknown key, bad names and lifetimes, a second certificate; the audit
# record.
import datetime
import os
import subprocess

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

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
