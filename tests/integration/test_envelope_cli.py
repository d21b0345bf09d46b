# test_envelope_cli.py - `boltseal envelope ...` against the session daemon,
# as the README's tour uses it: keys of purpose envelope made with `keys
# create --alg aes-256-gcm|hmac-sha256`; a telemetry record encrypted to a
# blob file and decrypted back with the same --context entries (in another
# order), refused with another context (exit 4, INVALID_ARGUMENT); a data
# key whose base64 plaintext encrypts with python3-cryptography's AESGCM and
# whose blob decrypts to it; reencrypt after a rotation; set-min-version;
# tokenize from stdin; usage errors exit 2 before anything is sent.
import base64
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import bsutil

RECORD = b'{"vehicle_id":"TRUCK-0042","ts":1764633600,"speed_kph":83,"brake":false}\n'


def test_envelope_cli_round_trips(env, tmp_path):
    run = bsutil.cli_runner(env)
    for name, alg in (("tlm-cli-kek", "aes-256-gcm"), ("tlm-cli-tok", "hmac-sha256")):
        rc, out, err = run("keys", "create", name, "--alg", alg, "--purpose", "envelope")
        assert rc == 0, err
    rc, out, err = run("--json", "keys", "get", "tlm-cli-kek")
    assert rc == 0 and json.loads(out)["key"]["algorithm"] == "aes-256-gcm", (out, err)
    record = tmp_path / "record.json"
    record.write_bytes(RECORD)
    blob = tmp_path / "record.blob"
    ctx = ["--context", "vehicle_id=TRUCK-0042", "--context", "stream=can"]
    rc, out, err = run("envelope", "encrypt", "--key", "tlm-cli-kek", *ctx, "--out", str(blob),
                       str(record))
    assert rc == 0, err
    data = blob.read_bytes()
    assert data[0] == 1 and data[2:2 + data[1]] == b"tlm-cli-kek" and RECORD not in data
    back = tmp_path / "back.json"
    rc, out, err = run("envelope", "decrypt", "--context", "stream=can", "--context",
                       "vehicle_id=TRUCK-0042", "--out", str(back), str(blob))
    assert rc == 0, err
    assert back.read_bytes() == RECORD
    rc, out, err = run("envelope", "decrypt", "--context", "vehicle_id=TRUCK-0042",
                       "--context", "stream=gps", str(blob))
    assert rc == 4 and "INVALID_ARGUMENT" in err and "encryption context" in err, (rc, err)

    # a data key: the plaintext encrypts locally, the blob gives it back
    rc, out, err = run("--json", "envelope", "data-key", "--key", "tlm-cli-kek", *ctx)
    assert rc == 0, err
    dk = json.loads(out)
    key = base64.b64decode(dk["plaintext"])
    assert len(key) == 32 and dk["key_version"] == 1
    sealed = AESGCM(key).encrypt(b"\0" * 12, RECORD, None)
    dkblob = tmp_path / "dk.blob"
    dkblob.write_bytes(base64.b64decode(dk["ciphertext_blob"]))
    rc, out, err = run("--json", "envelope", "decrypt", *ctx, str(dkblob))
    assert rc == 0, err
    assert AESGCM(base64.b64decode(json.loads(out)["plaintext"])).decrypt(
        b"\0" * 12, sealed, None) == RECORD
    rc, out, err = run("envelope", "data-key", "--key", "tlm-cli-kek", *ctx, "--no-plaintext")
    assert rc == 0 and "ciphertext_blob: " in out and "plaintext:" not in out, (out, err)

    # rotation: reencrypt moves the blob forward, then version 1 is retired
    rc, out, err = run("keys", "rotate", "tlm-cli-kek")
    assert rc == 0, err
    moved = tmp_path / "record.v2.blob"
    rc, out, err = run("envelope", "reencrypt", *ctx, "--out", str(moved), str(blob))
    assert rc == 0 and "tlm-cli-kek v1 -> tlm-cli-kek v2" in err, err
    rc, out, err = run("envelope", "set-min-version", "--key", "tlm-cli-kek", "2")
    assert rc == 0 and "below 2" in out, (out, err)
    rc, out, err = run("envelope", "decrypt", *ctx, str(blob))
    assert rc == 4 and "FAILED_PRECONDITION" in err, (rc, err)
    rc, out, err = run("envelope", "decrypt", *ctx, "--out", str(back), str(moved))
    assert rc == 0 and back.read_bytes() == RECORD, err
    rc, out, err = run("--json", "keys", "get", "tlm-cli-kek")
    assert json.loads(out)["key"]["min_decryption_version"] == 2

    # tokens, one per input line
    rc, out, err = run("envelope", "tokenize", "--key", "tlm-cli-tok", "--namespace",
                       "driver-id", stdin=b"D-1001\nD-1002\nD-1001\n")
    assert rc == 0, err
    toks = out.split()
    assert len(toks) == 3 and toks[0] == toks[2] != toks[1]

    # usage errors: exit 2, nothing sent
    for args, words in ((["encrypt", "--key", "tlm-cli-kek", str(record)], "--context"),
                        (["encrypt", *ctx, str(record)], "--key"),
                        (["decrypt", "--context", "novalue", str(blob)], "NAME=VALUE"),
                        (["set-min-version", "--key", "tlm-cli-kek", "zero"], "key version"),
                        (["tokenize", "--key", "tlm-cli-tok"], "--namespace")):
        rc, out, err = run("envelope", *args)
        assert rc == 2 and words in err, (args, rc, err)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(4097))
    rc, out, err = run("envelope", "encrypt", "--key", "tlm-cli-kek", *ctx, str(big))
    assert rc == 2, (rc, err)
