# auditutil.py - helpers of boltseal's audit-log integration tests
# (test_audit.py, test_durability.py): the AuditService stubs generated at
# test time, RFC 6962 hashing and RFC 9162 proof verification written from
# the RFCs (independent of the daemon's C code), audit.jsonl parsing and
# chain checks, C2SP signed-note parsing with an Ed25519 check by
# python3-cryptography, the Go reference verifier (golang.org/x/mod/sumdb/
# note, built once per session by tests/tools/build-noteverify), the
# `boltseal audit verify` CLI, and Instance: a boltsealed with its own
# token, state dir and port that tests may stop, SIGKILL and restart.
#
# Runs only under Debian's /usr/bin/python3.

import atexit
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

import bsutil

HASH_LEN = 32
ZERO_PREV = "0" * 64
# The documented field order of one audit record (docs/audit.md).
FIELDS = ("seq", "prev", "timestamp", "type", "request_id", "principal_id", "identity",
          "cert_sha256", "method", "key", "key_version", "target", "result", "reason",
          "event", "payload_sha256")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
AS = "/boltseal.v1.AuditService/"


# --- stubs --------------------------------------------------------------------------

def generate_audit_stubs(outdir):
    """protoc --python_out for boltseal/v1/audit.proto into outdir; the
    module is loaded by file path (like bsutil.generate_stubs)."""
    protodir = os.path.join(bsutil.SRCDIR, "proto")
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + protodir, "boltseal/v1/audit.proto"])
    return bsutil._load_module("bs_it_audit_pb2",
                               os.path.join(outdir, "boltseal", "v1", "audit_pb2.py"))


AS_METHODS = {
    "GetCheckpoint": ("GetCheckpointRequest", "GetCheckpointResponse"),
    "GetInclusionProof": ("GetInclusionProofRequest", "GetInclusionProofResponse"),
    "GetConsistencyProof": ("GetConsistencyProofRequest", "GetConsistencyProofResponse"),
    "ReadRecords": ("ReadRecordsRequest", "ReadRecordsResponse"),
}


class AuditClient:
    """Unary callables for the AuditService methods over one channel."""

    def __init__(self, channel, apb):
        self.channel = channel
        self.apb = apb
        for meth, (req, resp) in AS_METHODS.items():
            setattr(self, meth, channel.unary_unary(
                AS + meth, request_serializer=getattr(apb, req).SerializeToString,
                response_deserializer=getattr(apb, resp).FromString))

    def close(self):
        self.channel.close()

    def wait_checkpoint(self, min_size, timeout=15.0):
        """Polls GetCheckpoint (every 100 ms, at most timeout s) until a
        checkpoint covers at least min_size records; returns it. Every poll is
        itself an audited call, so the log keeps growing meanwhile."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                cp = self.GetCheckpoint(self.apb.GetCheckpointRequest(), timeout=10)
                last = cp.tree_size
                if cp.tree_size >= min_size:
                    return cp
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.1)
        raise AssertionError("no checkpoint covering %d records within %.0f s (last tree_size %r)"
                             % (min_size, timeout, last))

    def read_all(self, page=1000, limit=100000):
        """Every record via ReadRecords, paging with max_records=page."""
        out = []
        size = None
        for _ in range(limit // max(page, 1) + 2):
            r = self.ReadRecords(self.apb.ReadRecordsRequest(start=len(out), max_records=page),
                                 timeout=30)
            assert r.start == len(out)
            assert len(r.records) > 0
            out.extend(r.records)
            size = r.log_size
            if len(out) >= size:
                return out
        raise AssertionError("ReadRecords did not reach log_size %r" % size)


# --- RFC 6962 hashing, RFC 9162 verification ----------------------------------------

def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


# transparency-dev testonly/constants.go: the reference tree of RFC 9162 test suites
REF_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
REF_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]


def _largest_pow2_below(n):
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth_of_hashes(hs):
    """MTH over already leaf-hashed entries (RFC 6962 §2.1)."""
    n = len(hs)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hs[0]
    k = _largest_pow2_below(n)
    return node_hash(mth_of_hashes(hs[:k]), mth_of_hashes(hs[k:]))


def mth(leaves):
    return mth_of_hashes([leaf_hash(d) for d in leaves])


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2. True iff path proves leaf at index in the tree of
    size with root."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != HASH_LEN or sn == 0:
            return False
        if (fn & 1) or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, path):
    """RFC 9162 §2.1.4.2. True iff path proves the tree of first leaves
    (first_hash) is a prefix of the tree of second leaves (second_hash)."""
    if first > second or first == 0:
        return False
    if first == second:
        return len(path) == 0 and first_hash == second_hash
    if not path or any(len(p) != HASH_LEN for p in path):
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if (fn & 1) or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def flip(b, i, mask=0x01):
    """b with byte i XORed with mask."""
    b = bytearray(b)
    b[i] ^= mask
    return bytes(b)


# --- audit.jsonl --------------------------------------------------------------------

def audit_dir(state_dir):
    return os.path.join(state_dir, "audit")


def read_lines(state_dir_or_file):
    """The lines of audit.jsonl (bytes, newline stripped). A last line
    without newline is returned as is."""
    path = state_dir_or_file
    if os.path.isdir(path):
        path = os.path.join(audit_dir(path), "audit.jsonl")
    data = bsutil.audit_bytes(path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def parse(lines):
    return [json.loads(l) for l in lines]


def check_chain(lines):
    """Asserts seq == index and prev == leaf hash of the previous line for
    every line; returns the parsed records."""
    recs = []
    prev = ZERO_PREV
    for i, line in enumerate(lines):
        try:
            r = json.loads(line)
        except ValueError as e:
            raise AssertionError("line %d is not JSON (%s): %r" % (i, e, line[:200]))
        assert r.get("seq") == i, "line %d has seq %r" % (i, r.get("seq"))
        assert r.get("prev") == prev, "line %d: prev %r, expected %s" % (i, r.get("prev"), prev)
        prev = leaf_hash(line).hex()
        recs.append(r)
    return recs


def checkpoint_files(adir):
    """{tree size: note bytes} of <adir>/checkpoints/*.note."""
    out = {}
    ck = os.path.join(adir, "checkpoints")
    for name in sorted(os.listdir(ck)) if os.path.isdir(ck) else ():
        m = re.fullmatch(r"(\d{20})\.note", name)
        if m:
            out[int(m.group(1))] = bsutil.read(os.path.join(ck, name))
    return out


# --- signed notes -------------------------------------------------------------------

def parse_vkey(vkey):
    """(name, keyid bytes, pub32) of an Ed25519 vkey "<name>+<hex8>+<b64>",
    asserting that the key hash matches SHA-256(name||"\\n"||0x01||pub)[:4]."""
    vkey = vkey.strip()
    name, keyhash, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    assert len(raw) == 33 and raw[0] == 0x01, "not an Ed25519 vkey: %r" % vkey
    pub = raw[1:]
    kid = sha256(name.encode() + b"\n" + raw)[:4]
    assert re.fullmatch(r"[0-9a-f]{8}", keyhash), keyhash
    assert kid.hex() == keyhash, "vkey hash %s, computed %s" % (keyhash, kid.hex())
    return name, kid, pub


def split_note(note):
    """(text, [(name, sigbytes)]) of a signed note; asserts the format."""
    assert note.endswith(b"\n")
    cut = note.rfind(b"\n\n")
    assert cut >= 0, "no blank line in note"
    text = note[:cut + 1]
    sigs = []
    for line in note[cut + 2:].split(b"\n")[:-1]:
        assert line.startswith("\u2014 ".encode()), "bad signature line %r" % line
        name, b64 = line[len("\u2014 ".encode()):].decode().rsplit(" ", 1)
        sigs.append((name, base64.b64decode(b64, validate=True)))
    return text, sigs


def py_verify_note(note, vkey):
    """True iff a signature line of vkey's name and key id verifies (Ed25519,
    python3-cryptography) over the note text."""
    name, kid, pub = parse_vkey(vkey)
    try:
        text, sigs = split_note(note)
    except (AssertionError, ValueError, UnicodeDecodeError):
        return False        # malformed
    key = ed25519.Ed25519PublicKey.from_public_bytes(pub)
    ok = False
    for n, sig in sigs:
        if n != name or sig[:4] != kid:
            continue
        if len(sig) != 68:
            return False
        try:
            key.verify(sig[4:], text)
        except InvalidSignature:
            return False
        ok = True
    return ok


def parse_checkpoint_text(text):
    """(origin, size, root) of a tlog-checkpoint body."""
    lines = text.decode().split("\n")
    assert lines[-1] == "" and len(lines) >= 4, text
    size = lines[1]
    assert re.fullmatch(r"0|[1-9][0-9]*", size), size
    root = base64.b64decode(lines[2], validate=True)
    assert len(root) == HASH_LEN
    return lines[0], int(size), root


_noteverify = {}


def noteverify_path():
    """The Go reference verifier, built once per session into a tmp dir."""
    if "path" not in _noteverify:
        d = tempfile.mkdtemp(prefix="bs-noteverify-")
        atexit.register(shutil.rmtree, d, True)
        bsutil.run([os.path.join(bsutil.SRCDIR, "tests", "tools", "build-noteverify"), d],
                   timeout=300)
        _noteverify["path"] = os.path.join(d, "noteverify")
    return _noteverify["path"]


def go_verify_note(note, vkey):
    """(exit code, stdout text, stderr text) of `noteverify VKEY NOTE`."""
    with tempfile.TemporaryDirectory(prefix="bs-note-") as d:
        vf, nf = os.path.join(d, "vkey"), os.path.join(d, "note")
        with open(vf, "w") as f:
            f.write(vkey.strip() + "\n")
        with open(nf, "wb") as f:
            f.write(note)
        p = bsutil.run([noteverify_path(), vf, nf], check=False, timeout=30)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# --- boltseal audit verify ----------------------------------------------------------

def cli_path():
    return os.path.join(bsutil.BUILDDIR, "boltseal")


def cli_verify_available():
    try:
        p = subprocess.run([cli_path(), "audit", "verify", "--help"], capture_output=True,
                           timeout=30)
    except OSError:
        return False
    return p.returncode == 0


CLI_MISSING = "`boltseal audit verify --help` does not exit 0: the CLI is not built yet"


def cli_verify(adir, *extra):
    """(exit code, stdout+stderr text) of `boltseal audit verify --dir adir`."""
    p = subprocess.run([cli_path(), "audit", "verify", "--dir", adir] + list(extra),
                       capture_output=True, timeout=120)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def py_verify_dir(adir):
    """Python fallback of an offline verification: chain intact, every
    checkpoint file's signature (vkey file) and root match the log. Returns
    the number of records."""
    lines = read_lines(os.path.join(adir, "audit.jsonl"))
    check_chain(lines)
    vkey = bsutil.read(os.path.join(adir, "vkey")).decode()
    hs = [leaf_hash(l) for l in lines]
    cps = checkpoint_files(adir)
    assert cps, "no checkpoint files"
    for size, note in cps.items():
        assert py_verify_note(note, vkey), "checkpoint %d: bad signature" % size
        _, n, root = parse_checkpoint_text(split_note(note)[0])
        assert n == size and n <= len(lines), (size, n, len(lines))
        assert mth_of_hashes(hs[:n]) == root, "checkpoint %d: root differs from the log" % n
    return len(lines)


# --- a daemon of the test's own ---------------------------------------------------------

class Instance:
    """A boltsealed with its own SoftHSM token, state dir (optionally
    elsewhere, e.g. on a tmpfs) and port, sharing the session's PKI; uses the
    session policy (ci-ota-release may call everything)."""

    def __init__(self, env, tag, state_dir=None, **settings):
        self.env = env
        self.tag = tag
        self.dir = tempfile.mkdtemp(prefix="bs-it-%s-" % tag)
        self.tokdir = os.path.join(self.dir, "softhsm")
        self.label = "boltseal-it-" + tag
        self.softhsm_conf, self.pin = bsutil.make_token(self.tokdir, self.label)
        self.state_dir = state_dir or os.path.join(self.dir, "data")
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.port = bsutil.free_port()
        self.conf = os.path.join(self.dir, "boltsealed.conf")
        self.settings = bsutil.base_config(self.dir, self.port, self.tokdir, env.pki,
                                           self.label, self.state_dir)
        self.settings.update(settings)
        bsutil.write_config(self.conf, self.settings)
        self.log = os.path.join(self.dir, "boltsealed.log")
        self.daemon = None
        self.channels = []

    @property
    def adir(self):
        return audit_dir(self.state_dir)

    def start(self, timeout=30.0):
        self.daemon = bsutil.Daemon(self.conf, self.softhsm_conf, self.log).start()
        self.daemon.wait_listening(timeout)
        return self.daemon

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit code."""
        d, self.daemon = self.daemon, None
        return d.terminate(timeout) if d is not None else None

    def sigkill(self):
        d, self.daemon = self.daemon, None
        if d is not None and d.proc.poll() is None:
            os.kill(d.proc.pid, signal.SIGKILL)
            d.proc.wait()
            d.logf.close()

    def run_once(self, timeout=30):
        """Runs the daemon to completion (for a start that must fail)."""
        return bsutil.run_daemon_once(self.conf, self.softhsm_conf, timeout=timeout)

    def channel(self, ident="ci-ota-release"):
        cert, key = self.env.client_files(ident)
        ch = bsutil.make_channel(self.port, self.env.ca, cert, key)
        self.channels.append(ch)
        return ch

    def client(self, ident="ci-ota-release"):
        return bsutil.Client(self.channel(ident), self.env.stubs)

    def audit_client(self, apb, ident="ci-ota-release"):
        return AuditClient(self.channel(ident), apb)

    def log_tail(self, n=40):
        try:
            with open(self.log, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close_channels(self):
        for ch in self.channels:
            ch.close()
        self.channels = []

    def cleanup(self):
        self.close_channels()
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon = None
        logdir = os.environ.get("BS_IT_LOGDIR") or \
            os.path.join(bsutil.BUILDDIR, "tests", "integration", "logs")
        try:
            os.makedirs(logdir, exist_ok=True)
            shutil.copyfile(self.log, os.path.join(logdir, "boltsealed-%s.log" % self.tag))
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
