# test_checkpoint_cli.py - `boltseal checkpoint register|sign|status` against
# the session daemon: a log registered, its first checkpoint signed, a second
# one with a proof file; the notes printed verify with Go's
# golang.org/x/mod/sumdb/note (tests/tools/noteverify) under the verifier key
# `checkpoint status` shows; a fork is refused (exit 1, FAILED_PRECONDITION);
# usage errors exit 2 before anything is sent.
import hashlib
import json

import auditutil
import bsutil


def leaf(d):
    return hashlib.sha256(b"\0" + d).digest()


def node(a, b):
    return hashlib.sha256(b"\1" + a + b).digest()


def mth(h):
    if len(h) == 1:
        return h[0]
    k = 1 << ((len(h) - 1).bit_length() - 1)
    return node(mth(h[:k]), mth(h[k:]))


def subproof(m, h, b=True):
    """RFC 6962 2.1.2 SUBPROOF(m, D[n], b)."""
    if m == len(h):
        return [] if b else [mth(h)]
    k = 1 << ((len(h) - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, h[:k], b) + [mth(h[k:])]
    return subproof(m - k, h[k:], False) + [mth(h[:k])]


def test_register_sign_status_with_the_cli(env, pb, tmp_path):
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="log-cli", purpose=pb.CHECKPOINT,
                                    algorithm=pb.ED25519), timeout=30)
    run = bsutil.cli_runner(env)
    origin = "example.com/cli-log"
    rc, out, err = run("--json", "checkpoint", "register", origin, "--key-name", "log-cli")
    assert rc == 0, err
    st = json.loads(out)
    assert st["origin"] == origin and st["key"] == "log-cli" and st["size"] == 0
    vkey = st["verifier_key"]
    assert vkey.startswith(origin + "+")
    leaves = [leaf(b"entry %d" % i) for i in range(11)]
    rc, note1, err = run("checkpoint", "sign", "--origin", origin, "--size", "4", "--root",
                         mth(leaves[:4]).hex())
    assert rc == 0, err
    code, text, verr = auditutil.go_verify_note(note1.encode(), vkey)
    assert code == 0, verr
    assert text.split("\n")[:2] == [origin, "4"]
    proof = tmp_path / "proof"
    proof.write_text("\n".join(h.hex() for h in subproof(4, leaves)) + "\n")
    rc, out, err = run("--json", "checkpoint", "sign", "--origin", origin, "--size", "11",
                       "--root", mth(leaves).hex(), "--proof", str(proof),
                       "--ext", "timestamp 1700000000")
    assert rc == 0, err
    j = json.loads(out)
    assert j["size"] == 11 and j["previous_size"] == 4
    code, text, verr = auditutil.go_verify_note(j["note"].encode(), vkey)
    assert code == 0, verr
    assert text.split("\n")[1] == "11" and text.split("\n")[3] == "timestamp 1700000000"
    rc, out, err = run("checkpoint", "status", origin)
    assert rc == 0 and "size 11, root " + mth(leaves).hex() in out and vkey in out, (out, err)
    # a second history for size 11: refused by the server
    rc, out, err = run("checkpoint", "sign", "--origin", origin, "--size", "11", "--root",
                       leaf(b"fork").hex())
    assert rc not in (0, 2) and "another root" in err, (rc, err)
    # usage errors
    for args, words in ((["--origin", origin, "--size", "12", "--root", "abcd"], "64 hex"),
                        (["--origin", origin, "--size", "0", "--root", "00" * 32], "--size"),
                        (["--size", "12", "--root", "00" * 32], "required")):
        rc, out, err = run("checkpoint", "sign", *args)
        assert rc == 2 and words in err, (args, rc, err)
