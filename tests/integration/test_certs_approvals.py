# test_certs_approvals.py - CertificateService under the seed policy
# (etc/policy.example), where changing an issuing profile needs two other
# fleet administrators' approvals: `boltseal ca profile` is refused and
# prints the `propose profile-set` command (its values shell-quoted); that
# command proposes exactly the SetProfile request, bob and carol approve
# with their codes, alice executes, and the profile is in force (an
# issuance under it gets past "no profile" to the CA's missing certificate).
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from test_admin import admins, apb  # noqa: F401  (fixtures, used by name)
from test_policy_versions import cli


def test_profile_change_needs_approvals(admins, apb, tmp_path):
    d = admins("certs-appr")
    pb = d.pb
    d.c("alice").CreateKey(pb.CreateKeyRequest(name="ca-seed", purpose=pb.CA,
                                               algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    args = ["seed-gw", "--ca", "ca-seed", "--kind", "gateway", "--uri-prefix",
            "spiffe://fleet.example/gw/", "--max-hours", "48"]
    rc, out, err = cli(d, "admin-alice", "--otp", d.code("alice"), "ca", "profile", *args)
    assert rc == 4, (rc, out, err)
    assert ("propose profile-set 'seed-gw' --ca 'ca-seed' --kind 'gateway' --uri-prefix "
            "'spiffe://fleet.example/gw/' --max-hours 48") in err, err
    rc, out, err = cli(d, "admin-alice", "propose", "profile-set", *args,
                       "--description", "gateways' profile")
    assert rc == 0, (rc, out, err)
    pid = [ln.split()[-1] for ln in out.splitlines() if ln.startswith("id:")][0]
    p = d.get(pid)
    assert p.method == "boltseal.v1.CertificateService/SetProfile"
    rc, out, err = cli(d, "admin-bob", "proposals", "show", pid)
    assert rc == 0 and "spiffe://fleet.example/gw/" in out and "seed-gw" in out, (rc, out, err)
    d.approve("bob", p)
    d.approve("carol", p)
    rc, out, err = cli(d, "admin-alice", "--otp", d.code("alice"), "proposals", "execute", pid)
    assert rc == 0, (rc, out, err)
    # in force: an issuance under it reaches the CA's missing certificate, not "no profile"
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    path = str(tmp_path / "gw.csr")
    with open(path, "wb") as f:
        f.write(csr)
    rc, out, err = cli(d, "admin-alice", "ca", "issue", "seed-gw", "eu-1", "--csr", path)
    assert rc == 4 and "FAILED_PRECONDITION" in err and "no CA certificate" in err, (rc, out, err)
    rc, out, err = cli(d, "admin-alice", "ca", "issue", "other", "eu-1", "--csr", path)
    assert rc == 4 and "no profile 'other'" in err, (rc, out, err)
