# test_nonexport.py - the private keys CreateKey made cannot leave the token:
# checked by an independent PKCS#11 client (PyKCS11, p11probe.py, in its own
# process on the same SoftHSM token while the daemon runs) and by OpenSC's
# pkcs11-tool.

import json
import os
import pty
import re
import subprocess
import tempfile

import bsutil

PROBE = os.path.join(bsutil.HERE, "p11probe.py")


def probe(env, *args):
    e = dict(os.environ)
    e["SOFTHSM2_CONF"] = env.softhsm_conf
    p = subprocess.run([bsutil.PYTHON, PROBE] + list(args), env=e, capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode()


def catalog_versions(good, pb):
    n, token = 0, ""
    while True:
        r = good.ListKeys(pb.ListKeysRequest(page_size=1000, page_token=token), timeout=10)
        n += sum(len(k.versions) for k in r.keys)
        if not r.next_page_token:
            return n
        token = r.next_page_token


def test_pkcs11_keys_not_extractable(env, pb, good, keys):
    pin_file = os.path.join(env.tokdir, "user.pin")
    info = json.loads(probe(env, "inspect", bsutil.SOFTHSM_MODULE, env.label, pin_file,
                            "boltseal/"))
    # The probe's wrap works on an extractable key: the refusals below are
    # about the daemon's keys, not about the mechanism or the probe.
    assert info["control_wrap"] == "CKR_OK" and info["control_wrap_len"] > 32, info
    assert info["control_read"] == "CKR_OK", info

    # Exactly one token key object per catalog version: a private key, or a
    # secret key for the envelope keys (checked in test_envelope_interop.py).
    assert len(info["keys"]) + len(info["secret_keys"]) == catalog_versions(good, pb), \
        (info["keys"], info["secret_keys"])
    for k in info["secret_keys"]:
        assert k["CKA_SENSITIVE"] is True and k["CKA_EXTRACTABLE"] is False, k

    expected_types = {"it-ecdsa": "EC", "it-ed25519": "EC_EDWARDS", "it-rsa": "RSA"}
    found = {}
    for k in info["keys"]:
        label = k["label"]
        assert label.startswith("boltseal/")
        for name, ktype in expected_types.items():
            if label == "boltseal/" + name or label.startswith("boltseal/" + name + "/"):
                found[name] = k
                assert k["key_type"] == ktype, k
        for attr in ("CKA_TOKEN", "CKA_PRIVATE", "CKA_SENSITIVE", "CKA_ALWAYS_SENSITIVE",
                     "CKA_NEVER_EXTRACTABLE", "CKA_SIGN"):
            assert k[attr] is True, (attr, k)
        assert k["CKA_EXTRACTABLE"] is False, k
        assert k["secret_reads"], k
        for attr, rv in k["secret_reads"].items():
            assert rv == "CKR_ATTRIBUTE_SENSITIVE", (attr, k)
        assert k["wrap"] in ("CKR_KEY_UNEXTRACTABLE", "CKR_KEY_NOT_WRAPPABLE"), k
        assert len(k["id"]) == 32, k  # 16-byte CKA_ID
    assert sorted(found) == sorted(expected_types), info["keys"]
    env.assert_still_serving()


def pkcs11_tool(env, args):
    """Runs pkcs11-tool --login with the PIN typed on stdin (OpenSC wants a
    terminal on stdout for its prompt), so the PIN is never on argv."""
    pin = bsutil.read(os.path.join(env.tokdir, "user.pin"))
    e = dict(os.environ)
    e["SOFTHSM2_CONF"] = env.softhsm_conf
    master, slave = pty.openpty()
    try:
        p = subprocess.run(["pkcs11-tool", "--module", bsutil.SOFTHSM_MODULE,
                            "--token-label", env.label, "--login"] + args,
                           input=pin + b"\n", stdout=slave, stderr=subprocess.PIPE,
                           env=e, timeout=60)
    finally:
        os.close(slave)
    out = b""
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    os.close(master)
    return p.returncode, out.decode(errors="replace").replace("\r\n", "\n"), \
        p.stderr.decode(errors="replace")


def test_pkcs11_tool_view(env, keys):
    rc, out, err = pkcs11_tool(env, ["--list-objects", "--type", "privkey"])
    assert rc == 0, out + err
    blocks = re.split(r"\n(?=Private Key Object)", out)
    ours = [b for b in blocks if re.search(r"label:\s+boltseal/", b)]
    assert len(ours) >= 3, out
    for b in ours:
        access = re.search(r"Access:\s+(.*)", b).group(1)
        flags = [f.strip() for f in access.split(",")]
        assert "sensitive" in flags and "always sensitive" in flags, b
        assert "never extractable" in flags and "extractable" not in flags, b

    # --read-object of a private key yields nothing. (OpenSC 0.23 will not
    # export private keys of any kind, so this alone proves little; the
    # PyKCS11 test above is the real check.)
    label = re.search(r"label:\s+(boltseal/\S+)", ours[0]).group(1)
    with tempfile.TemporaryDirectory() as d:
        outf = os.path.join(d, "priv.out")
        rc, out, err = pkcs11_tool(env, ["--read-object", "--type", "privkey", "--label", label,
                                         "-o", outf])
        assert not os.path.exists(outf) or os.path.getsize(outf) == 0, (rc, out, err)
        # Control: the public key of the same label does come out.
        pubf = os.path.join(d, "pub.der")
        rc, out, err = pkcs11_tool(env, ["--read-object", "--type", "pubkey", "--label", label,
                                         "-o", pubf])
        assert rc == 0 and os.path.getsize(pubf) > 0, (rc, out, err)
    env.assert_still_serving()
