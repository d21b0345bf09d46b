# test_wycheproof.py - every Wycheproof test of the four signature files the
# daemon supports, sent through KeyService.Verify with the group's
# public_key_der: valid -> valid=true; invalid -> valid=false or
# INVALID_ARGUMENT; acceptable -> either. One channel, reused stubs.

import json
import os

import grpc
import pytest

import bsutil

FILES = [
    ("ecdsa_secp256r1_sha256_test.json", "DER", 484),
    ("ecdsa_secp256r1_sha256_p1363_test.json", "RAW", 262),
    ("ed25519_test.json", "SIGNATURE_FORMAT_DEFAULT", 151),
    ("rsa_pss_2048_sha256_mgf1_32_test.json", "SIGNATURE_FORMAT_DEFAULT", 108),
]


@pytest.mark.parametrize("fname,fmt,count", FILES, ids=[f[0].rsplit(".", 1)[0] for f in FILES])
def test_wycheproof(env, pb, good, fname, fmt, count):
    with open(os.path.join(bsutil.wycheproof_dir(), fname)) as f:
        doc = json.load(f)
    assert doc["numberOfTests"] == count
    fmt_val = getattr(pb, fmt)
    verify = good.Verify
    failures, ran, seen = [], 0, {"valid": 0, "invalid": 0, "acceptable": 0}
    for group in doc["testGroups"]:
        der = bytes.fromhex(group["publicKeyDer"])
        for t in group["tests"]:
            req = pb.VerifyRequest(public_key_der=der, message=bytes.fromhex(t["msg"]),
                                   signature=bytes.fromhex(t["sig"]),
                                   signature_format=fmt_val)
            try:
                valid, code = verify(req, timeout=30).valid, grpc.StatusCode.OK
            except grpc.RpcError as e:
                valid, code = None, e.code()
            ran += 1
            result = t["result"]
            seen[result] += 1
            if result == "valid":
                ok = code == grpc.StatusCode.OK and valid is True
            elif result == "invalid":
                ok = (code == grpc.StatusCode.OK and valid is False) or \
                    code == grpc.StatusCode.INVALID_ARGUMENT
            else:
                ok = code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
            if not ok:
                failures.append("tcId %d (%s, %s, flags %s): got %s valid=%r" % (
                    t["tcId"], result, t.get("comment", ""), ",".join(t.get("flags", [])),
                    code.name, valid))
    assert ran == count
    assert seen["valid"] > 0 and seen["invalid"] > 0
    assert not failures, "%d of %d Wycheproof tests failed:\n%s" % (
        len(failures), ran, "\n".join(failures[:30]))
    env.assert_still_serving()
