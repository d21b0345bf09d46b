# test_strict_certs.py - client certificates are checked strictly, with
# certificates minted by python3-cryptography and calls made with grpcio:
# the leaf must carry exactly one URI SAN (with two, the first must not win
# someone else's role), must not be a CA, must allow digitalSignature when it
# has a keyUsage, and must carry the clientAuth extended key usage. The same
# certificate without the defect is accepted, so each refusal is the defect's.
import os

import grpc
import pytest

import bsutil
import pkitool
from conftest import status_of

from cryptography.x509.oid import ExtendedKeyUsageOID

CI_URI = "spiffe://fleet.example/ci/ota-release"
ADMIN_URI = "spiffe://fleet.example/admin/alice"


@pytest.fixture(scope="module")
def certs(env):
    ca = pkitool.dev_ca(env.pki)
    d = os.path.join(env.workdir, "strict-certs")
    return {
        "good": pkitool.mint_client(ca, d, "good", CI_URI),
        "two-uris": pkitool.mint_client(ca, d, "two-uris", ADMIN_URI, extra_uris=(CI_URI,)),
        "is-ca": pkitool.mint_client(ca, d, "is-ca", CI_URI, is_ca=True),
        "key-agreement": pkitool.mint_client(ca, d, "key-agreement", CI_URI,
                                             key_agreement_only=True),
        "no-eku": pkitool.mint_client(ca, d, "no-eku", CI_URI, eku=None),
        "server-eku": pkitool.mint_client(ca, d, "server-eku", CI_URI,
                                          eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
    }


def sign_with(env, pb, cert, key):
    c = env.client(cert=cert, key=key)
    return c.Sign(pb.SignRequest(key_name="it-serving", message=b"strict"), timeout=10)


def test_well_formed_certificate_is_accepted(env, pb, certs):
    r = sign_with(env, pb, *certs["good"])
    assert len(r.signature) > 0


@pytest.mark.parametrize("name", ["two-uris", "is-ca", "key-agreement", "no-eku", "server-eku"])
def test_defective_certificate_is_refused(env, pb, certs, name):
    try:
        sign_with(env, pb, *certs[name])
    except grpc.RpcError as e:
        assert status_of(e) == grpc.StatusCode.UNAVAILABLE, e
    else:
        raise AssertionError("a certificate with defect %r was accepted" % name)
    env.assert_still_serving()
