# pkitool.py - certificates and CRLs for boltseal's integration tests, made
# with python3-cryptography and signed by a CA of a scripts/mkpki directory
# (DIR/ca.pem + DIR/ca.key, or DIR/bad/other-ca.pem + .key): client
# certificates with a chosen URI SAN, CRLs with chosen revoked serials and
# chosen thisUpdate/nextUpdate (e.g. already expired), and the SHA-256
# fingerprint of a certificate (what a policy's cert-sha256 line pins).
#
# Runs only under Debian's /usr/bin/python3.

import datetime
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class CA:
    """A signing CA: its certificate and private key (and where they live)."""

    def __init__(self, cert_path, key_path):
        self.cert_path = cert_path
        self.key_path = key_path
        with open(cert_path, "rb") as f:
            self.cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)


def dev_ca(pkidir):
    """The dev CA of a mkpki directory."""
    return CA(os.path.join(pkidir, "ca.pem"), os.path.join(pkidir, "ca.key"))


def other_ca(pkidir):
    """The second, unrelated CA of `mkpki --test-extras` (DIR/bad/other-ca)."""
    return CA(os.path.join(pkidir, "bad", "other-ca.pem"),
              os.path.join(pkidir, "bad", "other-ca.key"))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def _write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def mint_client(ca, outdir, name, uri, cn=None, days=2, is_ca=False, key_agreement_only=False,
                eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), extra_uris=()):
    """A client certificate issued by ca with URI SAN uri (EKU clientAuth,
    EC P-256, valid from an hour ago for days days). Writes
    outdir/name.pem and outdir/name.key (0600); returns (cert path, key path).
    For the strictness tests: is_ca (basicConstraints CA:TRUE),
    key_agreement_only (keyUsage keyAgreement, no digitalSignature), eku
    (None: no extendedKeyUsage at all), extra_uris (more URI SANs after uri)."""
    os.makedirs(outdir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "boltseal integration tests"),
             x509.NameAttribute(NameOID.COMMON_NAME, cn or name)]))
         .issuer_name(ca.cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=not key_agreement_only,
                                      content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=key_agreement_only, key_cert_sign=is_ca,
                                      crl_sign=False, encipher_only=False,
                                      decipher_only=False), critical=True)
         .add_extension(x509.SubjectAlternativeName(
             [x509.UniformResourceIdentifier(u) for u in (uri,) + tuple(extra_uris)]),
             critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca.key.public_key()), critical=False))
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = b.sign(ca.key, hashes.SHA256())
    cert_path = os.path.join(outdir, name + ".pem")
    key_path = os.path.join(outdir, name + ".key")
    _write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def cert_serial(path):
    return load_cert(path).serial_number


def cert_sha256(path):
    """Lower-case hex SHA-256 of the certificate's DER (the daemon's
    cert_sha256 and a policy's cert-sha256 value)."""
    der = load_cert(path).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def cert_sha256_colons(path):
    """The same fingerprint as `openssl x509 -fingerprint -sha256` prints it."""
    h = cert_sha256(path).upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def mint_crl(ca, path, revoked=(), last_update=None, next_update=None):
    """Writes a PEM CRL issued by ca to path listing the serial numbers in
    revoked. Defaults: thisUpdate an hour ago, nextUpdate in 30 days; pass
    datetimes (naive UTC) for other times, e.g. an expired CRL."""
    now = _now()
    last_update = last_update or now - datetime.timedelta(hours=1)
    next_update = next_update or now + datetime.timedelta(days=30)
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(ca.cert.subject)
         .last_update(last_update)
         .next_update(next_update)
         .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca.key.public_key()), critical=False))
    for serial in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - datetime.timedelta(minutes=5))
            .build())
    crl = b.sign(ca.key, hashes.SHA256())
    # a dot file: a CRL directory's loader skips it if it reads meanwhile
    tmp = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".tmp")
    _write(tmp, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    os.replace(tmp, path)
    return path


def expired_times(days_ago=2):
    """(thisUpdate, nextUpdate) of a CRL whose nextUpdate passed days_ago
    days ago."""
    now = _now()
    return (now - datetime.timedelta(days=days_ago + 7),
            now - datetime.timedelta(days=days_ago))
