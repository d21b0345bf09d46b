# test_durability.py - the audit log's durability promises against the real
# daemon: (1) kill -9 under load, 50 times, every other start with
# audit_preallocate on (the file then ends in zeros when killed): every Sign
# whose response the client received has its record, the log still chains
# and verifies, and every restart is on record (a torn last line would be
# repaired with a recovery record; test_audit.py plants one to test that);
# (1b) audit_preallocate's file: records then whole chunks of zeros while
# running, the records alone after a stop; (2) a full filesystem (a 2 MiB
# tmpfs as state_dir, with audit_preallocate off and on): calls fail with UNAVAILABLE naming the audit log,
# health is NOT_SERVING, and once space is back the daemon resumes by
# itself, with the refused calls recorded afterwards.

import errno
import hashlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time

import grpc
import pytest

import auditutil
import bsutil
from auditutil import check_chain, read_lines


@pytest.fixture(scope="module")
def apb():
    d = tempfile.mkdtemp(prefix="bs-it-auditstubs-")
    try:
        yield auditutil.generate_audit_stubs(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def verify_offline(adir):
    """`boltseal audit verify` when it exists, and the Python check always."""
    n = auditutil.py_verify_dir(adir)
    if auditutil.cli_verify_available():
        # these tests trust their own daemon's key file (they are not about trust)
        vkey = bsutil.read(os.path.join(adir, "vkey")).decode().strip()
        rc, out = auditutil.cli_verify(adir, "--vkey", vkey)
        assert rc == 0, "boltseal audit verify failed:\n" + out
        assert "audit verify: OK" in out, out
    return n


# --- kill -9 under load -------------------------------------------------------------

KILLS = 50
THREADS = 3
PER_THREAD_MAX = 1000        # Signs per thread and iteration (a bound; the kill comes first)
KILL_AFTER = (5, 60)         # SIGKILL once this many (random) Signs were acknowledged
TOTAL_BUDGET_S = 170.0


def _load(inst, pb, tag, stop, acked, errors):
    """One client thread: Signs unique messages until stop is set or the
    daemon dies; appends the SHA-256 of every message whose response
    arrived OK to acked. Any other failure lands in errors."""
    try:
        _load_calls(inst, pb, tag.encode(), stop, acked, errors)
    except Exception as e:                  # noqa: BLE001 - reported by the test
        errors.append("%s: %r" % (tag, e))


def _load_calls(inst, pb, tag, stop, acked, errors):
    c = bsutil.Client(inst.channel(), inst.env.stubs)
    for n in range(PER_THREAD_MAX):
        if stop.is_set():
            return
        msg = b"kill9 %s n%d %s" % (tag, n, os.urandom(8).hex().encode())
        try:
            r = c.Sign(pb.SignRequest(key_name="dur", message=msg), timeout=5)
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                grpc.StatusCode.DEADLINE_EXCEEDED):
                errors.append("%s: %s %s" % (tag, e.code().name, e.details()))
            return
        if len(r.signature) != 64:
            errors.append("%s: bad signature length %d" % (tag, len(r.signature)))
        acked.append(hashlib.sha256(msg).hexdigest())


def test_kill9_under_load(env, apb):
    pb = env.stubs.pb
    inst = auditutil.Instance(env, "kill9")
    t_end = time.monotonic() + TOTAL_BUDGET_S
    acked, errors = [], []
    per_iter = []
    midflight = 0               # iterations killed while every client was still calling
    try:
        inst.start()
        c = inst.client()
        c.CreateKey(pb.CreateKeyRequest(name="dur", purpose=pb.GENERIC, algorithm=pb.ED25519),
                    timeout=30)
        inst.close_channels()
        for it in range(KILLS):
            assert time.monotonic() < t_end, "kill loop over its time budget at iteration %d" % it
            if it > 0:
                # every other start preallocates: the kills leave zeros after the records,
                # and a start without preallocation must go on over them too
                inst.settings["audit_preallocate"] = "on" if it % 2 else "off"
                bsutil.write_config(inst.conf, inst.settings)
                inst.start()
            stop = threading.Event()
            before = len(acked)
            threads = [threading.Thread(target=_load, args=(inst, pb, "i%dt%d" % (it, t), stop,
                                                             acked, errors), daemon=True)
                       for t in range(THREADS)]
            for t in threads:
                t.start()
            # kill after a random number of acknowledged Signs (at most 3 s)
            target = before + random.randint(*KILL_AFTER)
            wait_end = time.monotonic() + 3.0
            while len(acked) < target and time.monotonic() < wait_end and \
                    any(t.is_alive() for t in threads):
                time.sleep(0.002)
            busy = sum(1 for t in threads if t.is_alive())
            inst.sigkill()
            midflight += busy == THREADS
            stop.set()
            for t in threads:
                t.join(15)
                assert not t.is_alive(), "a client thread hangs after SIGKILL"
            inst.close_channels()
            per_iter.append(len(acked) - before)
        assert not errors, "unexpected call errors:\n" + "\n".join(errors[:20])

        # once more, cleanly, so the last records get a checkpoint
        inst.start()
        a = inst.audit_client(apb)
        a.wait_checkpoint(len(read_lines(inst.state_dir)), timeout=20)
        inst.close_channels()
        assert inst.stop() == 0

        lines = read_lines(inst.state_dir)
        recs = check_chain(lines)
        assert sum(1 for n in per_iter if n > 0) >= KILLS // 2, \
            "too few iterations got a Sign through: %r" % per_iter
        ok = {}
        for r in recs:
            if r["method"] == "boltseal.v1.KeyService/Sign" and r["result"] == "OK":
                for h in r["payload_sha256"]:
                    ok[h] = ok.get(h, 0) + 1
        missing = [h for h in acked if h not in ok]
        assert not missing, ("%d of %d acknowledged Signs have no OK record, e.g. %s"
                             % (len(missing), len(acked), missing[:3]))
        assert len(set(acked)) == len(acked)
        assert midflight >= KILLS * 3 // 4, \
            "only %d of %d kills hit the daemon under load" % (midflight, KILLS)
        starts = [r for r in recs if r["type"] == "start"]
        assert len(starts) == KILLS + 1, "%d start records for %d starts" % (len(starts), KILLS + 1)
        torn = [r for r in recs if r["event"] == "torn_tail_repaired"]
        for r in torn:
            assert r["type"] == "recovery", r
        verify_offline(inst.adir)
        print("kill9: %d kills (%d under load), %d acknowledged Signs, %d records, "
              "%d torn tails repaired, %.1f s" % (KILLS, midflight, len(acked), len(lines), len(torn),
                          TOTAL_BUDGET_S - (t_end - time.monotonic())))
    finally:
        inst.cleanup()


# --- full filesystem ------------------------------------------------------------------

def _fill(path, limit_bytes=16 << 20):
    """Writes path until ENOSPC (bounded by limit_bytes); returns the size
    written. Large chunks first, then ever smaller ones down to one byte."""
    total = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 16, 1 << 12, 1 << 8, 1):
            buf = b"\xa5" * chunk
            for _ in range(limit_bytes // chunk + 1):
                if total >= limit_bytes:
                    raise AssertionError("filled %d bytes without ENOSPC" % total)
                try:
                    n = os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                total += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return total


def _health(c, hpb):
    """SERVING/NOT_SERVING name, or the error code name if the call fails."""
    try:
        r = c.HealthCheck(hpb.HealthCheckRequest(service=""), timeout=10)
    except grpc.RpcError as e:
        return "error " + e.code().name + ": " + (e.details() or "")
    return hpb.HealthCheckResponse.ServingStatus.Name(r.status)


def test_preallocated_file(env, apb):
    """audit_preallocate: while the daemon runs the file is its records, then
    zeros up to a whole number of 1 MiB chunks; a stop leaves the records
    alone, which `boltseal audit verify` and the Python checker accept both
    ways; without the setting the file never holds a zero."""
    pb = env.stubs.pb
    chunk = 1 << 20
    inst = auditutil.Instance(env, "prealloc", audit_preallocate="on")
    try:
        inst.start()
        c = inst.client()
        c.CreateKey(pb.CreateKeyRequest(name="pre", purpose=pb.GENERIC,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        for i in range(20):
            c.Sign(pb.SignRequest(key_name="pre", message=b"pre %d" % i), timeout=15)
        path = os.path.join(inst.adir, "audit.jsonl")
        data = bsutil.read(path)
        records = bsutil.audit_bytes(path)
        assert len(data) % chunk == 0 and len(data) > len(records), len(data)
        assert data[len(records):] == b"\0" * (len(data) - len(records))
        n = len(check_chain(read_lines(inst.state_dir)))
        assert n >= 22
        inst.audit_client(apb).wait_checkpoint(n, timeout=20)
        if auditutil.cli_verify_available():
            # a running daemon's file, zeros and all (the polls above are records of their own)
            vkey = bsutil.read(os.path.join(inst.adir, "vkey")).decode().strip()
            rc, out = auditutil.cli_verify(inst.adir, "--vkey", vkey, "--allow-tail", "100")
            assert rc == 0 and "audit verify: OK" in out, out
        inst.close_channels()
        assert inst.stop() == 0
        data = bsutil.read(path)
        assert b"\0" not in data and data.endswith(b"\n")
        verify_offline(inst.adir)

        # off: the records alone, also while running
        inst.settings["audit_preallocate"] = "off"
        bsutil.write_config(inst.conf, inst.settings)
        inst.start()
        inst.client().Sign(pb.SignRequest(key_name="pre", message=b"off"), timeout=15)
        assert b"\0" not in bsutil.read(path)
        inst.close_channels()
        assert inst.stop() == 0
    finally:
        inst.cleanup()


@pytest.mark.parametrize("prealloc", ["off", "on"])
def test_full_filesystem(env, apb, prealloc):
    """With audit_preallocate on, the 2 MiB file system has far less than the
    64 MiB the zeros must leave free: the log grows as without them (the
    zeros never take the catalog's room), and fails and recovers the same."""
    pb, hpb = env.stubs.pb, env.stubs.hpb
    mnt = tempfile.mkdtemp(prefix="bs-it-tmpfs-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mnt],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        os.rmdir(mnt)
        pytest.skip("cannot mount a tmpfs (%s): %s" % (
            p.returncode, (p.stdout + p.stderr).decode(errors="replace").strip()))
    inst = None
    try:
        inst = auditutil.Instance(env, "full-" + prealloc, state_dir=os.path.join(mnt, "data"),
                                  audit_preallocate=prealloc)
        inst.start()
        c = inst.client()
        c.CreateKey(pb.CreateKeyRequest(name="full", purpose=pb.GENERIC,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        c.Sign(pb.SignRequest(key_name="full", message=b"before the disk fills"), timeout=15)
        assert _health(c, hpb) == "SERVING"
        assert b"\0" not in bsutil.read(os.path.join(inst.adir, "audit.jsonl")), \
            "zeros preallocated on a file system without 64 MiB to spare"

        filler = os.path.join(mnt, "filler")
        _fill(filler)
        # The log's last page may still hold a few records: call until refused.
        refused, okd = [], []
        for i in range(60):
            msg = b"while full %d" % i
            try:
                c.Sign(pb.SignRequest(key_name="full", message=msg), timeout=15)
                okd.append(msg)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
                assert "audit log" in (e.details() or ""), e.details()
                refused.append(msg)
                if len(refused) >= 3:
                    break
        assert refused, "60 Signs succeeded on a full filesystem"
        first_refused = refused[0]
        health_full = _health(c, hpb)
        # more refusals, of other kinds too, while full
        e = bsutil.rpc_error(c.GetKey, pb.GetKeyRequest(name="full"))
        assert e.code() == grpc.StatusCode.UNAVAILABLE and "audit log" in e.details(), e
        refused_total = len(refused) + 1
        assert inst.daemon.proc.poll() is None, "boltsealed died on a full disk"

        os.unlink(filler)
        t0 = time.monotonic()
        resumed = None
        while time.monotonic() - t0 < 5.0:
            try:
                c.Sign(pb.SignRequest(key_name="full", message=b"after space is back"), timeout=5)
                resumed = time.monotonic() - t0
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                time.sleep(0.1)
        assert resumed is not None, "no successful call within 5 s of freeing space:\n" + \
            inst.log_tail(20)
        assert _health(c, hpb) == "SERVING"
        for i in range(3):
            c.Sign(pb.SignRequest(key_name="full", message=b"after %d" % i), timeout=15)
        inst.audit_client(apb).wait_checkpoint(len(read_lines(inst.state_dir)), timeout=20)
        inst.close_channels()
        assert inst.stop() == 0

        lines = read_lines(inst.state_dir)
        recs = check_chain(lines)
        verify_offline(inst.adir)
        # every acknowledged Sign has its OK record
        ok = {h for r in recs if r["result"] == "OK" for h in r["payload_sha256"]}
        for m in okd + [b"before the disk fills", b"after space is back"]:
            assert hashlib.sha256(m).hexdigest() in ok, m
        # refused calls: recorded later as UNAVAILABLE, or summed up in a recovery record
        unavailable = [r for r in recs if r["type"] == "rpc" and r["result"] == "UNAVAILABLE"]
        summarised = 0
        for r in recs:
            if r["type"] == "recovery" and r["event"] == "unrecorded_refusals":
                summarised += int(re.match(r"(\d+)", r["reason"]).group(1))
        assert len(unavailable) + summarised >= refused_total, (
            "%d calls refused while full, %d UNAVAILABLE records, %d summarised"
            % (refused_total, len(unavailable), summarised))
        first_sha = hashlib.sha256(first_refused).hexdigest()
        for r in unavailable:
            assert r["reason"].startswith("response withheld: the audit log could not be "
                                          "written; outcome was "), r
            assert r["principal_id"] == "ci-ota-release", r
        # the first refused Sign was signed, then its record could not be written:
        # it is on record with its real outcome and its payload
        withheld = [r for r in unavailable if first_sha in r["payload_sha256"]]
        assert len(withheld) == 1, "no record of the first refused Sign (payload %s)" % first_sha
        assert withheld[0]["reason"].endswith("outcome was OK"), withheld[0]
        assert withheld[0]["key"] == "full" and withheld[0]["key_version"] == 1, withheld[0]
        assert health_full == "NOT_SERVING", \
            "health while the audit log cannot be written: %s (want NOT_SERVING)" % health_full
    finally:
        if inst is not None:
            inst.cleanup()
        subprocess.run(["umount", mnt], capture_output=True, timeout=30)
        try:
            os.rmdir(mnt)
        except OSError:
            pass
