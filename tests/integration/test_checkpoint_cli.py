# test_checkpoint_cli.py - `boltseal checkpoint register|sign|status` against
# the session daemon: a log registered, its first checkpoint signed, a second
# one with a proof file; the notes printed verify with Go's
# golang.org/x/mod/sumdb/note (tests/tools/noteverify) under the verifier key
# `checkpoint status` shows; a fork is refused (exit 1, FAILED_PRECONDITION);
# usage errors exit 2 before anything is sent. The tree and its proofs come
# from test_checkpoints.py's MerkleTree (checked there against RFC 9162's
# reference tree).
import json

import auditutil
import bsutil
from test_checkpoints import MerkleTree, leaf_hash


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
    tree = MerkleTree(b"entry %d" % i for i in range(11))
    rc, note1, err = run("checkpoint", "sign", "--origin", origin, "--size", "4", "--root",
                         tree.root(4).hex())
    assert rc == 0, err
    code, text, verr = auditutil.go_verify_note(note1.encode(), vkey)
    assert code == 0, verr
    assert text.split("\n")[:2] == [origin, "4"]
    proof = tmp_path / "proof"
    proof.write_text("\n".join(h.hex() for h in tree.proof(4, 11)) + "\n")
    rc, out, err = run("--json", "checkpoint", "sign", "--origin", origin, "--size", "11",
                       "--root", tree.root(11).hex(), "--proof", str(proof),
                       "--ext", "timestamp 1700000000")
    assert rc == 0, err
    j = json.loads(out)
    assert j["size"] == 11 and j["previous_size"] == 4
    code, text, verr = auditutil.go_verify_note(j["note"].encode(), vkey)
    assert code == 0, verr
    assert text.split("\n")[1] == "11" and text.split("\n")[3] == "timestamp 1700000000"
    rc, out, err = run("checkpoint", "status", origin)
    assert rc == 0 and "size 11, root " + tree.root(11).hex() in out and vkey in out, (out, err)
    # a second history for size 11: refused by the server
    rc, out, err = run("checkpoint", "sign", "--origin", origin, "--size", "11", "--root",
                       leaf_hash(b"fork").hex())
    assert rc not in (0, 2) and "another root" in err, (rc, err)
    # usage errors
    for args, words in ((["--origin", origin, "--size", "12", "--root", "abcd"], "64 hex"),
                        (["--origin", origin, "--size", "0", "--root", "00" * 32], "--size"),
                        (["--size", "12", "--root", "00" * 32], "required")):
        rc, out, err = run("checkpoint", "sign", *args)
        assert rc == 2 and words in err, (args, rc, err)
