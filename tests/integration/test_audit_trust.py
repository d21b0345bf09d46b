# test_audit_trust.py - issue 8, "an audit verifier that needs a trusted key".
#
# The finding: `boltseal audit verify` took the verifier key from the
# directory it checked and passed a log with no checkpoint at all; deleting
# checkpoints/, editing record 10, deleting records 20-99 and recomputing the
# hash chain (a few lines of Python) gave "OK", and the daemon started on
# such a log.
#
# A real boltsealed (its own SoftHSM token, TLS on 127.0.0.1) writes a log of
# about 130 records with checkpoints; the auditor keeps the verifier key and
# the last checkpoint in a directory of the test's own (the "off-host"
# copy). Then the real `boltseal` CLI runs against copies of the audit
# directory: the untouched log verifies with the key from outside; the
# rewrite of the finding is refused (with the key, with the pinned
# checkpoint, and with the attacker's own re-signed checkpoints and swapped
# vkey); no key is a usage error and a key file inside the directory is
# refused; and the daemon refuses to start on the rewritten log.
#
# Runs only under Debian's /usr/bin/python3.

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import auditutil
import bsutil

# Checkpoints every 10 records; at most 20 records past the last one at start-up.
CP_RECORDS = 10
UNCOVERED_MAX = 20
SIGNS = 125
# a valid vkey of some other key (golang.org/x/mod/sumdb/note's example key)
OTHER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def cli(*args):
    """(exit code, stdout, stderr) of `boltseal ARGS`."""
    p = subprocess.run([auditutil.cli_path()] + list(args), capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def verify(adir, *extra):
    return cli("audit", "verify", "--dir", adir, *extra)


def read_lines(adir):
    data = bsutil.audit_bytes(os.path.join(adir, "audit.jsonl"))
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(adir, lines):
    with open(os.path.join(adir, "audit.jsonl"), "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))


def rewrite_like_the_finding(adir):
    """The attack of the finding, in plain Python: delete checkpoints/, edit
    record 10, delete records 20..99, recompute seq and prev for every line
    (prev = SHA-256(0x00 || previous line), RFC 6962's leaf hash)."""
    shutil.rmtree(os.path.join(adir, "checkpoints"))
    lines = read_lines(adir)
    lines[10] = lines[10].replace(b'"result":"OK"', b'"result":"NOT_FOUND"', 1)
    del lines[20:100]
    prev, out = b"0" * 64, []
    for i, l in enumerate(lines):
        l = b'{"seq":%d,"prev":"%s"' % (i, prev) + l[l.index(b',"timestamp"'):]
        out.append(l)
        prev = hashlib.sha256(b"\x00" + l).hexdigest().encode()
    write_lines(adir, out)
    return out


def mth(hashes):
    """RFC 6962 Merkle tree hash over leaf hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def resign_with_own_key(adir, lines, origin):
    """What an attacker who cannot use the HSM key does next: a checkpoint of
    the rewritten log signed by a key of their own, with the same name, and
    that key written to AUDITDIR/vkey."""
    key = ed25519.Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    kid = hashlib.sha256(origin.encode() + b"\n\x01" + pub).digest()[:4]
    root = mth([hashlib.sha256(b"\x00" + l).digest() for l in lines])
    body = b"%s\n%d\n%s\n" % (origin.encode(), len(lines), base64.b64encode(root))
    sig = base64.b64encode(kid + key.sign(body)).decode()
    os.makedirs(os.path.join(adir, "checkpoints"), exist_ok=True)
    with open(os.path.join(adir, "checkpoints", "%020d.note" % len(lines)), "wb") as f:
        f.write(body + ("\n\u2014 %s %s\n" % (origin, sig)).encode())
    with open(os.path.join(adir, "vkey"), "w") as f:
        f.write("%s+%s+%s\n" % (origin, kid.hex(), base64.b64encode(b"\x01" + pub).decode()))


class Trust:
    """A stopped daemon's audit dir, and the auditor's off-host copies."""


@pytest.fixture(scope="module")
def trust(env):
    pb = env.stubs.pb
    inst = auditutil.Instance(env, "trust", audit_checkpoint_records=CP_RECORDS,
                              audit_uncovered_max=UNCOVERED_MAX)
    t = Trust()
    t.work = tempfile.mkdtemp(prefix="bs-it-trust-")
    try:
        inst.start()
        c = inst.client()
        c.CreateKey(pb.CreateKeyRequest(name="trust", purpose=pb.GENERIC,
                                        algorithm=pb.ED25519), timeout=30)
        for i in range(SIGNS):
            c.Sign(pb.SignRequest(key_name="trust", message=b"trust %d" % i), timeout=15)
        inst.close_channels()
        assert inst.stop() == 0
        t.inst = inst
        # the key the daemon announced when it opened the log (its HSM key)
        vkeys = [json.loads(l).get("verifier_key") for l in
                 bsutil.read(inst.log).decode(errors="replace").splitlines()
                 if "verifier_key" in l]
        assert vkeys and vkeys[-1], "no verifier_key in the daemon's log"
        t.vkey = vkeys[-1]
        assert bsutil.read(os.path.join(inst.adir, "vkey")).decode() == t.vkey + "\n"
        t.origin = t.vkey.split("+")[0]
        # what the auditor keeps off the host: the vkey and the last checkpoint
        t.offhost = os.path.join(t.work, "offhost")
        os.makedirs(t.offhost)
        t.vkey_file = os.path.join(t.offhost, "vkey")
        with open(t.vkey_file, "w") as f:
            f.write(t.vkey + "\n")
        cps = auditutil.checkpoint_files(inst.adir)
        t.lines = read_lines(inst.adir)
        assert max(cps) == len(t.lines) >= 100 + 20, (sorted(cps), len(t.lines))
        t.last_cp = os.path.join(t.offhost, "last-checkpoint")
        with open(t.last_cp, "wb") as f:
            f.write(cps[max(cps)])
        t.pristine = os.path.join(t.work, "pristine")
        shutil.copytree(inst.adir, t.pristine)
        yield t
    finally:
        inst.cleanup()
        shutil.rmtree(t.work, ignore_errors=True)


def copy_of(t, name):
    d = os.path.join(t.work, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(t.pristine, d)
    return d


# (a) ------------------------------------------------------------------------------------

def test_untouched_log_verifies_with_the_key_from_outside(trust):
    d = copy_of(trust, "untouched")
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file)
    assert rc == 0, out + err
    assert out.startswith("audit verify: OK: %d records" % len(trust.lines)), out
    assert "not covered" not in err, err
    rc, out, err = verify(d, "--vkey", trust.vkey, "--json")
    assert rc == 0, out + err
    j = json.loads(out)
    assert j["ok"] is True and j["records"] == len(trust.lines) and j["uncovered"] == 0, j
    # the auditor's procedure: key and last checkpoint from off the host
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file, "--checkpoint", trust.last_cp)
    assert rc == 0, out + err
    assert "extends the pinned checkpoint %d" % len(trust.lines) in out, out
    # the pinned checkpoint alone vouches for AUDITDIR/vkey
    rc, out, err = verify(d, "--checkpoint", trust.last_cp)
    assert rc == 0, out + err


def test_several_trusted_keys_for_a_rotated_audit_key(trust):
    """--vkey may be repeated (every version of a rotated audit key): the
    log verifies when one of them signed its checkpoints, and not with an
    unrelated key alone."""
    d = copy_of(trust, "twokeys")
    rc, out, err = verify(d, "--vkey", OTHER_VKEY, "--vkey", trust.vkey)
    assert rc == 0, out + err
    rc, out, err = verify(d, "--vkey", OTHER_VKEY)
    assert rc == 1, out + err
    rc, out, err = verify(d, "--vkey", "not-a-key")
    assert rc == 2 and "is not a valid Ed25519 verifier key" in err, out + err


# (b) ------------------------------------------------------------------------------------

def test_rewritten_log_is_refused(trust):
    d = copy_of(trust, "rewritten")
    lines = rewrite_like_the_finding(d)
    auditutil.check_chain(lines)    # a well-formed chain: only a signature can tell
    n = len(lines)

    rc, out, err = verify(d, "--vkey-file", trust.vkey_file)
    assert rc == 1, out + err
    assert "audit verify: FAILED at record 0: no checkpoint: none of the %d records is " \
        "covered by a signature" % n in out, out + err
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file, "--json")
    j = json.loads(out)
    assert rc == 1 and j["ok"] is False and j["uncovered"] == n and j["covered"] == 0, j

    # the pinned checkpoint: the log does not extend it, whatever tail is allowed
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file, "--checkpoint", trust.last_cp,
                          "--allow-tail", "100000")
    assert rc == 1, out + err
    assert "pinned checkpoint %d" % len(trust.lines) in out, out

    # an explicit allowance is the only way past an unsigned log, and it is reported
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file, "--allow-tail", str(n - 1))
    assert rc == 1, out + err
    rc, out, err = verify(d, "--vkey-file", trust.vkey_file, "--allow-tail", str(n))
    assert rc == 0, out + err
    assert "%d records after the last checkpoint are not covered by a signature" % n in err, err


def test_rewritten_and_resigned_log_is_refused(trust):
    """The attacker also signs a checkpoint with a key of their own and
    swaps AUDITDIR/vkey: the old verifier trusted exactly that."""
    d = copy_of(trust, "resigned")
    lines = rewrite_like_the_finding(d)
    resign_with_own_key(d, lines, trust.origin)

    rc, out, err = verify(d, "--vkey-file", trust.vkey_file)
    assert rc == 1, out + err
    assert "FAILED at checkpoint %d: no known signer" % len(lines) in out, out
    assert "FAILED at vkey:" in out and "not the trusted key" in out, out
    # pinned checkpoint only: AUDITDIR/vkey did not sign it
    rc, out, err = verify(d, "--checkpoint", trust.last_cp)
    assert rc == 1, out + err
    assert "FAILED at vkey: AUDITDIR/vkey" in out and "did not sign the pinned" in out, out


# (c) ------------------------------------------------------------------------------------

def test_no_trusted_key_is_a_usage_error(trust):
    d = copy_of(trust, "nokey")
    rc, out, err = verify(d)
    assert rc == 2, out + err
    assert out == "", out
    assert "a trusted verifier key is required" in err and "--vkey" in err, err
    assert "Try 'boltseal audit verify --help'." in err, err

    # a key file inside the directory it checks, however it is named
    for path in (os.path.join(d, "vkey"), os.path.join(d, "checkpoints", "..", "vkey")):
        rc, out, err = verify(d, "--vkey-file", path)
        assert rc == 2 and "is inside AUDITDIR" in err, (path, out, err)
    link = os.path.join(trust.work, "vkey-link")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(d, "vkey"), link)
    rc, out, err = verify(d, "--vkey-file", link)
    assert rc == 2 and "is inside AUDITDIR" in err, out + err
    cp = sorted(os.listdir(os.path.join(d, "checkpoints")))[-1]
    rc, out, err = verify(d, "--checkpoint", os.path.join(d, "checkpoints", cp))
    assert rc == 2 and "is inside AUDITDIR" in err, out + err
    # a pinned checkpoint the trusted key did not sign: the auditor's inputs disagree
    rc, out, err = verify(d, "--vkey", OTHER_VKEY, "--checkpoint", trust.last_cp)
    assert rc == 2 and "not a checkpoint signed by the trusted key" in err, out + err


# (d) ------------------------------------------------------------------------------------

def _start_on(trust, prepare):
    """Runs the trust daemon once on a copy of the pristine audit dir that
    prepare(adir) changed; returns (exit code, output). The pristine dir
    is put back afterwards."""
    inst = trust.inst
    shutil.rmtree(inst.adir)
    shutil.copytree(trust.pristine, inst.adir)
    prepare(inst.adir)
    try:
        return inst.run_once(timeout=30)
    finally:
        shutil.rmtree(inst.adir)
        shutil.copytree(trust.pristine, inst.adir)


def test_daemon_refuses_to_start_on_the_rewritten_log(trust):
    rc, out = _start_on(trust, rewrite_like_the_finding)
    assert rc not in (0, None), "boltsealed started on the rewritten log:\n" + out[-3000:]
    assert "listening" not in out, out[-3000:]
    assert "covered by a signature" in out, out[-3000:]
    assert "boltseal audit verify" in out, out[-3000:]

    # the attacker's own checkpoint (and vkey) do not help: the daemon uses its HSM key
    def resigned(adir):
        resign_with_own_key(adir, rewrite_like_the_finding(adir), trust.origin)
    rc, out = _start_on(trust, resigned)
    assert rc not in (0, None), "boltsealed started on a re-signed log:\n" + out[-3000:]
    assert "listening" not in out and "no known signer" in out, out[-3000:]

    # the newest checkpoints deleted: more than audit_uncovered_max records uncovered
    def drop_recent(adir):
        cpd = os.path.join(adir, "checkpoints")
        for name in os.listdir(cpd):
            if int(name[:20]) > len(trust.lines) - UNCOVERED_MAX - 1:
                os.unlink(os.path.join(cpd, name))
    rc, out = _start_on(trust, drop_recent)
    assert rc not in (0, None), "boltsealed started with %d uncovered records:\n%s" % (
        UNCOVERED_MAX + 1, out[-3000:])
    assert "records after the last checkpoint" in out, out[-3000:]


def test_daemon_starts_on_a_short_uncovered_tail(trust):
    """The refusals above are about coverage: the untouched log starts, and so
    does one whose last checkpoints (at most audit_uncovered_max records, as
    after a crash) are missing."""
    n = len(trust.lines)
    sizes = sorted(auditutil.checkpoint_files(trust.pristine))
    keep = [s for s in sizes if n - UNCOVERED_MAX <= s < n]
    assert keep, "no checkpoint within %d records of the end: %r" % (UNCOVERED_MAX, sizes)

    def drop_last(adir):
        for s in sizes:
            if s > keep[0]:
                os.unlink(os.path.join(adir, "checkpoints", "%020d.note" % s))
    inst = trust.inst
    for prepare in (lambda adir: None, drop_last):
        shutil.rmtree(inst.adir)
        shutil.copytree(trust.pristine, inst.adir)
        prepare(inst.adir)
        try:
            inst.start()
            assert inst.stop() == 0
            lines = read_lines(inst.adir)
            assert lines[:len(trust.lines)] == trust.lines and len(lines) > len(trust.lines)
        finally:
            if inst.daemon is not None:
                inst.stop()
            shutil.rmtree(inst.adir)
            shutil.copytree(trust.pristine, inst.adir)


class _DaemonWith(bsutil.Daemon):
    """bsutil.Daemon with extra command-line arguments."""

    def __init__(self, conf, softhsm_conf, log_path, extra):
        super().__init__(conf, softhsm_conf, log_path)
        self.extra = list(extra)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.log_start = self.logf.tell()
        self.proc = subprocess.Popen([bsutil.daemon_path()] + self.extra + ["-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=self.env())
        return self


def test_accept_audit_tail_starts_once_and_is_recorded(trust):
    """The way back after the refusal: the operator inspects the tail and
    starts once with --accept-audit-tail N; the acceptance is an audit
    record, and the next checkpoint covers the tail again."""
    inst, n = trust.inst, len(trust.lines)
    sizes = sorted(auditutil.checkpoint_files(trust.pristine))
    kept = max(s for s in sizes if s < n - UNCOVERED_MAX)
    tail = n - kept
    shutil.rmtree(inst.adir)
    shutil.copytree(trust.pristine, inst.adir)
    for s in sizes:
        if s > kept:
            os.unlink(os.path.join(inst.adir, "checkpoints", "%020d.note" % s))
    try:
        # fewer than the uncovered records: still refused
        rc, out = bsutil.run_daemon_once(inst.conf, inst.softhsm_conf,
                                         extra_args=["--accept-audit-tail", str(tail - 1)])
        assert rc not in (0, None) and "listening" not in out, out[-3000:]
        d = _DaemonWith(inst.conf, inst.softhsm_conf, inst.log,
                        ["--accept-audit-tail", str(tail)]).start()
        inst.daemon = d
        d.wait_listening(30)
        assert inst.stop() == 0
        recs = [json.loads(l) for l in read_lines(inst.adir)]
        acc = [r for r in recs[n:] if r["event"] == "uncovered_tail_accepted"]
        assert len(acc) == 1 and acc[0]["type"] == "recovery", recs[n:]
        assert str(tail) in acc[0]["reason"], acc[0]
        # the clean stop signed over everything: a plain start and a strict verify pass
        rc, out, err = verify(inst.adir, "--vkey-file", trust.vkey_file)
        assert rc == 0, out + err
        inst.start()
        assert inst.stop() == 0
    finally:
        if inst.daemon is not None:
            inst.stop()
        shutil.rmtree(inst.adir)
        shutil.copytree(trust.pristine, inst.adir)
