# test_key_lifecycle.py - KeyService key lifecycle (keys.proto: DisableKey,
# EnableKey, ScheduleKeyDestruction, CancelKeyDestruction) against real
# daemons of the test's own, each with its own SoftHSM token and state dir
# (auditutil.Instance, the session policy):
#   "lc"   keys.destruction_check_ms = 200, keys.min_pending_days default (7);
#   "doom" keys.min_pending_days = 0, keys.destruction_check_ms = 200, so a
#          destruction scheduled 0 days ahead is carried out within a second.
# What is checked: a disabled version or key refuses every use (Sign,
# SignBatch, Verify, envelope GenerateDataKey and Decrypt) with
# FAILED_PRECONDITION and works again once enabled; the pending_days range;
# a pending version is unusable, survives many destroyer passes (while a due
# one next to it is destroyed) with its token objects intact, and comes back
# DISABLED when cancelled; a due version or key is destroyed: DESTROYED in
# the catalog, its objects gone from the token (an independent PyKCS11
# client in its own process), a key_destroyed audit record, and the daemon
# restarts on that state; the audit key cannot be changed; bad input and
# callers without a grant; a key pending or destroyed takes no new version,
# and cancelling a key's destruction keeps a version disabled before
# disabled. About 10 s (25 s under ASan).

import json
import os
import subprocess
import time

import grpc
import pytest

import auditutil
import bsutil
from bsutil import ALG_ECDSA, ALG_ED25519, crypto_verify

FP = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
KS = "/boltseal.v1.KeyService/"
DAY = 86400
AUDIT_KEY = "audit-log"   # CONFIG_DEFAULT_AUDIT_KEY, made by the daemon at first start
CTX = {"vehicle_id": "lc-truck-1", "stream": "can"}

LIFECYCLE = {
    "DisableKey": ("SetKeyStateRequest", "SetKeyStateResponse"),
    "EnableKey": ("SetKeyStateRequest", "SetKeyStateResponse"),
    "ScheduleKeyDestruction": ("ScheduleKeyDestructionRequest", "SetKeyStateResponse"),
    "CancelKeyDestruction": ("SetKeyStateRequest", "SetKeyStateResponse"),
}
ENVELOPE = {
    "GenerateDataKey": ("GenerateDataKeyRequest", "GenerateDataKeyResponse"),
    "Decrypt": ("DecryptRequest", "DecryptResponse"),
}

# Lists the token's key objects (private, public, secret) whose CKA_LABEL
# starts with a prefix, as JSON [{"class", "label", "id"}], through PyKCS11
# in a process of its own (SoftHSM reads SOFTHSM2_CONF once per process, and
# each daemon here has a token of its own). The PIN is read from its file.
P11_LIST = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import PyKCS11
import p11probe
module, token, pin_file, prefix = sys.argv[2:6]
lib, s = p11probe.open_session(module, token, pin_file)
out = []
try:
    for cls, name in ((PyKCS11.CKO_PRIVATE_KEY, "private"), (PyKCS11.CKO_PUBLIC_KEY, "public"),
                      (PyKCS11.CKO_SECRET_KEY, "secret")):
        for o in s.findObjects([(PyKCS11.CKA_CLASS, cls)]):
            lab, cid = s.getAttributeValue(o, [PyKCS11.CKA_LABEL, PyKCS11.CKA_ID])
            lab = lab if isinstance(lab, str) else bytes(lab).decode(errors="replace")
            if lab.startswith(prefix):
                out.append({"class": name, "label": lab, "id": bytes(cid).hex()})
finally:
    s.logout()
    s.closeSession()
print(json.dumps(out))
"""


def add_lifecycle(client, pb):
    """The four lifecycle callables on a bsutil.Client (bsutil.KS_METHODS
    predates them)."""
    for meth, (req, resp) in LIFECYCLE.items():
        setattr(client, meth, client.channel.unary_unary(
            KS + meth, request_serializer=getattr(pb, req).SerializeToString,
            response_deserializer=getattr(pb, resp).FromString))
    return client


class Daemon:
    """An auditutil.Instance with lifecycle-capable clients and a token view."""

    def __init__(self, env, tag, **settings):
        self.env = env
        self.pb = env.stubs.pb
        self.inst = auditutil.Instance(env, tag, **settings)
        self.inst.start()
        self.connect()

    def connect(self):
        self.good = add_lifecycle(self.inst.client(), self.pb)
        # fleet-admin: CreateKey/RotateKey/GetKey/GetPublicKey on every key,
        # no lifecycle method (policy-it.conf)
        self.admin = add_lifecycle(self.inst.client("admin-alice"), self.pb)

    def restart(self):
        self.inst.close_channels()
        bsutil.stop_clean(self.inst.daemon)
        self.inst.daemon = None
        self.inst.start()
        self.connect()

    @property
    def state_dir(self):
        return self.inst.state_dir

    def objects(self, prefix):
        e = dict(os.environ, SOFTHSM2_CONF=self.inst.softhsm_conf)
        p = subprocess.run([bsutil.PYTHON, "-c", P11_LIST, bsutil.HERE, bsutil.SOFTHSM_MODULE,
                            self.inst.label, os.path.join(self.inst.tokdir, "user.pin"), prefix],
                           env=e, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        return json.loads(p.stdout)

    def version_objects(self, name, version):
        """The token objects labelled for exactly key name, version."""
        label = "boltseal/%s/v%d" % (name, version)
        return [o for o in self.objects(label) if o["label"] == label]

    # --- calls --------------------------------------------------------------------------

    def create(self, name, alg=None, purpose=None, versions=1):
        pb = self.pb
        self.good.CreateKey(pb.CreateKeyRequest(
            name=name, purpose=purpose or pb.GENERIC, algorithm=alg or pb.ECDSA_P256_SHA256),
            timeout=30)
        for _ in range(versions - 1):
            self.good.RotateKey(pb.RotateKeyRequest(name=name), timeout=30)
        return self.key(name)

    def key(self, name):
        return self.good.GetKey(self.pb.GetKeyRequest(name=name), timeout=15).key

    def spki(self, name, version):
        return self.good.GetPublicKey(self.pb.GetPublicKeyRequest(name=name, version=version),
                                      timeout=15).der

    def sign(self, name, msg):
        return self.good.Sign(self.pb.SignRequest(key_name=name, message=msg), timeout=15)

    def verify(self, name, msg, sig, version=0):
        return self.good.Verify(self.pb.VerifyRequest(key_name=name, message=msg, signature=sig,
                                                      key_version=version), timeout=15)

    def set_state(self, meth, name, version=0, client=None):
        c = client or self.good
        return getattr(c, meth)(self.pb.SetKeyStateRequest(name=name, version=version),
                                timeout=30).key

    def schedule(self, name, version, days, client=None):
        c = client or self.good
        return c.ScheduleKeyDestruction(self.pb.ScheduleKeyDestructionRequest(
            name=name, version=version, pending_days=days), timeout=30).key

    def wait_key(self, name, pred, timeout=10.0):
        """Polls GetKey until pred(key) holds; returns the key."""
        end = time.monotonic() + timeout
        while True:
            k = self.key(name)
            if pred(k):
                return k
            assert time.monotonic() < end, "key %s not in the awaited state after %.0f s: %s\n%s" \
                % (name, timeout, k, self.inst.log_tail())
            time.sleep(0.05)

    def close(self):
        try:
            if self.inst.daemon is not None:
                self.inst.close_channels()
                bsutil.stop_clean(self.inst.daemon)   # exit 0 (under ASan: no leak)
                self.inst.daemon = None
        finally:
            self.inst.cleanup()


def refused(code, fn, *args, **kw):
    """fn(*args, **kw) must fail with status code; returns the error. fn is a
    gRPC callable (given a timeout here) or a Daemon helper (which has its own)."""
    if isinstance(fn, grpc.UnaryUnaryMultiCallable):
        kw.setdefault("timeout", 30)
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as err:
        assert err.code() == code, (err.code(), err.details())
        return err
    raise AssertionError("expected %s, got a response: %r" % (code, r))


def states(k):
    """{version: state} of a Key message."""
    return {v.version: v.state for v in k.versions}


def vinfo(k, version):
    return [v for v in k.versions if v.version == version][0]


@pytest.fixture(scope="module")
def lc(env):
    d = Daemon(env, "lifecycle", **{"keys.destruction_check_ms": 200})
    yield d
    d.close()


@pytest.fixture(scope="module")
def doom(env):
    d = Daemon(env, "destroy", **{"keys.min_pending_days": 0, "keys.destruction_check_ms": 200})
    yield d
    d.close()


# --- 1. disable / enable ------------------------------------------------------------------

def test_disable_and_enable_a_version(lc, pb):
    name = "lc-ver"
    k = lc.create(name, versions=2)
    assert k.primary_version == 2 and states(k) == {1: pb.ENABLED, 2: pb.ENABLED}
    spki = {1: lc.spki(name, 1), 2: lc.spki(name, 2)}
    s2 = lc.sign(name, b"by v2")
    assert s2.key_version == 2

    k = lc.set_state("DisableKey", name, 2)
    assert k.state == pb.ENABLED and states(k) == {1: pb.ENABLED, 2: pb.DISABLED}
    assert k.primary_version == 1
    assert lc.key(name) == k
    # Sign falls back to the newest enabled version
    s1 = lc.sign(name, b"by v1")
    assert s1.key_version == 1
    assert crypto_verify(ALG_ECDSA, spki[1], b"by v1", False, s1.signature)
    # the disabled version verifies nothing: named, it is refused; unnamed, it is skipped
    refused(FP, lc.verify, name, b"by v2", s2.signature, 2)
    r = lc.verify(name, b"by v2", s2.signature)
    assert (r.valid, r.key_version) == (False, 0)
    r = lc.verify(name, b"by v1", s1.signature, 1)
    assert (r.valid, r.key_version) == (True, 1)
    # disabling again is no error and changes nothing
    assert states(lc.set_state("DisableKey", name, 2)) == {1: pb.ENABLED, 2: pb.DISABLED}

    # no enabled version left: Sign and SignBatch are refused, the key itself stays enabled
    k = lc.set_state("DisableKey", name, 1)
    assert k.state == pb.ENABLED and k.primary_version == 0
    assert states(k) == {1: pb.DISABLED, 2: pb.DISABLED}
    refused(FP, lc.sign, name, b"nothing enabled")
    refused(FP, lc.good.SignBatch, pb.SignBatchRequest(
        key_name=name, items=[pb.SignBatchItem(message=b"x")]), timeout=15)
    refused(FP, lc.verify, name, b"by v1", s1.signature, 1)

    # enabling restores both
    lc.set_state("EnableKey", name, 1)
    k = lc.set_state("EnableKey", name, 2)
    assert states(k) == {1: pb.ENABLED, 2: pb.ENABLED} and k.primary_version == 2
    assert lc.sign(name, b"again").key_version == 2
    assert lc.verify(name, b"by v2", s2.signature, 2).valid
    r = lc.verify(name, b"by v2", s2.signature)
    assert (r.valid, r.key_version) == (True, 2)
    assert lc.set_state("EnableKey", name, 2) == k   # a no-op
    assert [v.destroy_time_unix for v in k.versions] == [0, 0] and k.destroy_time_unix == 0


def test_disable_and_enable_the_whole_key(lc, pb):
    name = "lc-whole"
    lc.create(name, alg=pb.ED25519, versions=2)
    s = lc.sign(name, b"before")
    assert s.key_version == 2

    k = lc.set_state("DisableKey", name, 0)
    assert k.state == pb.DISABLED
    # the versions keep their own state; the key holds them all
    assert states(k) == {1: pb.ENABLED, 2: pb.ENABLED}
    assert lc.key(name).state == pb.DISABLED
    refused(FP, lc.sign, name, b"while disabled")
    refused(FP, lc.good.SignBatch, pb.SignBatchRequest(
        key_name=name, items=[pb.SignBatchItem(message=b"x")]), timeout=15)
    refused(FP, lc.verify, name, b"before", s.signature)
    refused(FP, lc.verify, name, b"before", s.signature, 2)
    # a version's own change is allowed while the key is disabled
    k = lc.set_state("DisableKey", name, 1)
    assert k.state == pb.DISABLED and states(k) == {1: pb.DISABLED, 2: pb.ENABLED}
    refused(FP, lc.sign, name, b"still disabled")

    k = lc.set_state("EnableKey", name, 0)
    assert k.state == pb.ENABLED and states(k) == {1: pb.DISABLED, 2: pb.ENABLED}
    s2 = lc.sign(name, b"after")
    assert s2.key_version == 2
    assert crypto_verify(ALG_ED25519, lc.spki(name, 2), b"after", False, s2.signature)
    assert lc.verify(name, b"before", s.signature).valid
    lc.set_state("EnableKey", name, 1)


def test_get_public_key_of_a_disabled_key_is_refused(lc, pb):
    name = "lc-pub"
    lc.create(name)
    lc.set_state("DisableKey", name, 0)
    try:
        refused(FP, lc.good.GetPublicKey, pb.GetPublicKeyRequest(name=name))
        refused(FP, lc.good.GetPublicKey, pb.GetPublicKeyRequest(name=name, version=1))
    finally:
        lc.set_state("EnableKey", name, 0)


# --- 2. scheduling, pending, cancelling ------------------------------------------------------

def test_pending_days_range(env, lc, doom, pb):
    name = "lc-range"
    lc.create(name)
    # keys.min_pending_days defaults to 7; 30 is the most
    for days in (0, 1, 6, 31, 365):
        refused(INVALID, lc.schedule, name, 1, days)
        refused(INVALID, lc.schedule, name, 0, days)
    k = lc.key(name)
    assert k.state == pb.ENABLED and states(k) == {1: pb.ENABLED}
    t0 = int(time.time())
    k = lc.schedule(name, 1, 30)
    t1 = int(time.time())
    v = vinfo(k, 1)
    assert v.state == pb.PENDING_DESTRUCTION
    assert t0 + 30 * DAY <= v.destroy_time_unix <= t1 + 30 * DAY
    k = lc.set_state("CancelKeyDestruction", name, 1)
    assert vinfo(k, 1).state == pb.DISABLED and vinfo(k, 1).destroy_time_unix == 0

    # keys.min_pending_days = 0: 0 is accepted, 31 still is not
    doom.create(name)
    refused(INVALID, doom.schedule, name, 1, 31)
    assert states(doom.key(name)) == {1: pb.ENABLED}


def test_config_range_of_the_keys_settings(env, tmp_path):
    base = open(env.conf).read()
    conf = tmp_path / "lc.conf"
    for bad in ("keys.min_pending_days = 31", "keys.destruction_check_ms = 99",
                "keys.destruction_check_ms = 3600001", "keys.no_such_setting = 1"):
        conf.write_text(base + bad + "\n")
        rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, extra_args=["-n"])
        assert rc not in (0, None), (bad, out)
        assert bad.split(" ")[0] in out, (bad, out)
    for good in ((0, 100), (30, 3600000)):
        conf.write_text(base + "keys.min_pending_days = %d\nkeys.destruction_check_ms = %d\n"
                        % good)
        rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, extra_args=["-n"])
        assert rc == 0, (good, out)


def test_scheduled_version_is_unusable_and_can_be_cancelled(lc, pb):
    name = "lc-pend"
    lc.create(name, versions=2)
    s2 = lc.sign(name, b"v2 before")
    t0 = int(time.time())
    k = lc.schedule(name, 2, 7)
    t1 = int(time.time())
    v2 = vinfo(k, 2)
    assert v2.state == pb.PENDING_DESTRUCTION and vinfo(k, 1).state == pb.ENABLED
    assert t0 + 7 * DAY <= v2.destroy_time_unix <= t1 + 7 * DAY
    assert k.state == pb.ENABLED and k.primary_version == 1 and k.destroy_time_unix == 0
    assert lc.sign(name, b"while pending").key_version == 1
    refused(FP, lc.verify, name, b"v2 before", s2.signature, 2)
    assert not lc.verify(name, b"v2 before", s2.signature).valid
    # a pending version must be cancelled before anything else
    refused(FP, lc.schedule, name, 2, 8)
    refused(FP, lc.set_state, "EnableKey", name, 2)
    refused(FP, lc.set_state, "DisableKey", name, 2)
    refused(FP, lc.set_state, "CancelKeyDestruction", name, 1)   # not pending
    assert lc.key(name) == k

    k = lc.set_state("CancelKeyDestruction", name, 2)
    assert vinfo(k, 2).state == pb.DISABLED and vinfo(k, 2).destroy_time_unix == 0
    assert k.primary_version == 1
    refused(FP, lc.verify, name, b"v2 before", s2.signature, 2)
    k = lc.set_state("EnableKey", name, 2)
    assert states(k) == {1: pb.ENABLED, 2: pb.ENABLED} and k.primary_version == 2
    assert lc.sign(name, b"after cancel").key_version == 2
    assert lc.verify(name, b"v2 before", s2.signature, 2).valid


def test_scheduled_key_is_unusable_and_cancel_leaves_it_disabled(lc, pb):
    name = "lc-pend-key"
    lc.create(name, versions=2)
    t0 = int(time.time())
    k = lc.schedule(name, 0, 7)
    t1 = int(time.time())
    assert k.state == pb.PENDING_DESTRUCTION
    assert t0 + 7 * DAY <= k.destroy_time_unix <= t1 + 7 * DAY
    # the key is pending; its versions keep their own states (a cancel restores them)
    assert states(k) == {1: pb.ENABLED, 2: pb.ENABLED}
    assert {v.destroy_time_unix for v in k.versions} == {0}
    refused(FP, lc.sign, name, b"pending")
    # versions cannot be changed while the key is pending
    refused(FP, lc.set_state, "EnableKey", name, 1)
    refused(FP, lc.set_state, "CancelKeyDestruction", name, 2)
    refused(FP, lc.set_state, "EnableKey", name, 0)
    refused(FP, lc.schedule, name, 0, 7)

    k = lc.set_state("CancelKeyDestruction", name, 0)
    # the key is disabled; its versions are enabled again (held by the key)
    assert k.state == pb.DISABLED and k.destroy_time_unix == 0
    assert states(k) == {1: pb.ENABLED, 2: pb.ENABLED}
    refused(FP, lc.sign, name, b"cancelled, still disabled")
    k = lc.set_state("EnableKey", name, 0)
    assert k.state == pb.ENABLED and k.primary_version == 2
    assert lc.sign(name, b"enabled").key_version == 2


def test_key_cancel_keeps_a_version_disabled_before(lc, pb):
    name = "lc-pend-keep"
    lc.create(name, versions=2)
    lc.set_state("DisableKey", name, 2)       # retired on purpose
    lc.schedule(name, 0, 7)
    lc.set_state("CancelKeyDestruction", name, 0)
    k = lc.set_state("EnableKey", name, 0)
    assert states(k) == {1: pb.ENABLED, 2: pb.DISABLED} and k.primary_version == 1
    assert lc.sign(name, b"which version?").key_version == 1


def test_pending_version_survives_destroyer_passes(doom, pb):
    """On the min-0 daemon: a version due in 7 days and one due now are
    scheduled together; the due one is destroyed (so the destroyer did run)
    while the other stays pending, with its objects on the token, through
    more than 1 s of 200 ms passes."""
    name, ctl = "lc-survive", "lc-survive-ctl"
    doom.create(name, versions=2)
    doom.create(ctl)
    objs = doom.version_objects(name, 2)
    assert sorted(o["class"] for o in objs) == ["private", "public"], objs
    k = doom.schedule(name, 2, 7)
    due_at = vinfo(k, 2).destroy_time_unix
    doom.schedule(ctl, 1, 0)
    doom.wait_key(ctl, lambda k: vinfo(k, 1).state == pb.DESTROYED)
    time.sleep(1.2)
    k = doom.key(name)
    assert vinfo(k, 2).state == pb.PENDING_DESTRUCTION
    assert vinfo(k, 2).destroy_time_unix == due_at
    assert doom.version_objects(name, 2) == objs
    assert doom.version_objects(ctl, 1) == []
    refused(FP, doom.verify, name, b"x", b"\x30\x00", 2)

    k = doom.set_state("CancelKeyDestruction", name, 2)
    assert vinfo(k, 2).state == pb.DISABLED
    k = doom.set_state("EnableKey", name, 2)
    assert k.primary_version == 2
    s = doom.sign(name, b"rescued")
    assert s.key_version == 2
    assert crypto_verify(ALG_ECDSA, doom.spki(name, 2), b"rescued", False, s.signature)


# --- 3. destruction --------------------------------------------------------------------------

def key_records(state_dir, name):
    return [r for r in bsutil.audit_records(state_dir)
            if r["type"] == "key" and r["key"] == name and r["event"] == "key_destroyed"]


def test_due_version_is_destroyed(doom, pb):
    name = "lc-doom"
    doom.create(name, versions=2)
    spki2 = doom.spki(name, 2)
    s2 = doom.sign(name, b"last words of v2")
    assert s2.key_version == 2
    objs2 = doom.version_objects(name, 2)
    objs1 = doom.version_objects(name, 1)
    assert sorted(o["class"] for o in objs2) == ["private", "public"], objs2
    assert sorted(o["class"] for o in objs1) == ["private", "public"], objs1
    ids2 = {o["id"] for o in objs2}
    assert len(ids2) == 1 and ids2 != {o["id"] for o in objs1}

    t0 = int(time.time())
    k = doom.schedule(name, 2, 0)
    assert vinfo(k, 2).state == pb.PENDING_DESTRUCTION
    due = vinfo(k, 2).destroy_time_unix
    assert t0 <= due <= int(time.time())
    k = doom.wait_key(name, lambda k: vinfo(k, 2).state == pb.DESTROYED)
    t1 = int(time.time())
    v2 = vinfo(k, 2)
    assert t0 <= v2.destroy_time_unix <= t1
    assert k.state == pb.ENABLED and vinfo(k, 1).state == pb.ENABLED and k.primary_version == 1

    # the token objects of v2 (by label and by CKA_ID) are gone, v1's are not
    left = doom.objects("boltseal/%s/" % name)
    assert [o for o in left if o["id"] in ids2 or o["label"].endswith("/v2")] == [], left
    assert sorted(left, key=lambda o: o["class"]) == sorted(objs1, key=lambda o: o["class"])

    # v2 is unusable and final
    refused(FP, doom.verify, name, b"last words of v2", s2.signature, 2)
    r = doom.verify(name, b"last words of v2", s2.signature)
    assert (r.valid, r.key_version) == (False, 0)
    for meth in ("EnableKey", "DisableKey", "CancelKeyDestruction"):
        refused(FP, doom.set_state, meth, name, 2)
    refused(FP, doom.schedule, name, 2, 0)
    assert doom.key(name) == k
    s1 = doom.sign(name, b"v1 lives")
    assert s1.key_version == 1
    # the signature of v2 still checks out with its public key, outside the daemon
    assert crypto_verify(ALG_ECDSA, spki2, b"last words of v2", False, s2.signature)

    # the last version too: now nothing signs
    doom.schedule(name, 1, 0)
    k = doom.wait_key(name, lambda k: vinfo(k, 1).state == pb.DESTROYED)
    assert k.state == pb.ENABLED and k.primary_version == 0
    refused(FP, doom.sign, name, b"nothing left")
    refused(FP, doom.verify, name, b"v1 lives", s1.signature, 1)
    assert doom.objects("boltseal/%s/" % name) == []

    # audit: one key_destroyed record per version, written by the daemon itself
    recs = bsutil.wait_audit(doom.state_dir, lambda r: r["type"] == "key" and
                             r["key"] == name and r["event"] == "key_destroyed", count=2)
    assert [(r["key_version"], r["result"], r["reason"]) for r in recs] == \
        [(2, "OK", None), (1, "OK", None)], recs
    assert recs[0]["fields"]["destroy_time"] in (v2.destroy_time_unix,
                                                 str(v2.destroy_time_unix)), recs[0]
    for r in recs:
        assert r["request_id"] is None and r["principal_id"] is None, r
    # the calls that scheduled it carry their event
    sched = [r for r in bsutil.audit_records(doom.state_dir) if r["type"] == "rpc" and
             r["method"] == "boltseal.v1.KeyService/ScheduleKeyDestruction" and r["key"] == name]
    assert [(r["key_version"], r["result"], r["event"]) for r in sched] == [
        (2, "OK", "key_destruction_scheduled"), (2, "FAILED_PRECONDITION",
                                                 "key_destruction_scheduled"),
        (1, "OK", "key_destruction_scheduled")], sched
    assert sched[0]["fields"] == {"destroy_time": str(due)}, sched[0]


def test_due_key_is_destroyed_and_stays_so_across_a_restart(doom, pb):
    name, keep = "lc-doom-all", "lc-keep"
    doom.create(name, alg=pb.ED25519, versions=3)
    doom.create(keep)
    s = doom.sign(name, b"final")
    assert s.key_version == 3
    assert len(doom.objects("boltseal/%s/" % name)) == 6   # 3 x (private, public)
    keep_objs = doom.objects("boltseal/%s/" % keep)
    doom.set_state("DisableKey", name, 2)   # a disabled version goes too

    t0 = int(time.time())
    k = doom.schedule(name, 0, 0)
    assert k.state == pb.PENDING_DESTRUCTION
    assert states(k) == {1: pb.ENABLED, 2: pb.DISABLED, 3: pb.ENABLED}
    k = doom.wait_key(name, lambda k: k.state == pb.DESTROYED)
    t1 = int(time.time())
    assert states(k) == {1: pb.DESTROYED, 2: pb.DESTROYED, 3: pb.DESTROYED}
    assert t0 <= k.destroy_time_unix <= t1
    for v in k.versions:
        assert t0 <= v.destroy_time_unix <= k.destroy_time_unix, k
    assert k.primary_version == 0
    assert doom.objects("boltseal/%s/" % name) == []
    assert doom.objects("boltseal/%s/" % keep) == keep_objs

    refused(FP, doom.sign, name, b"gone")
    refused(FP, doom.verify, name, b"final", s.signature)
    refused(FP, doom.verify, name, b"final", s.signature, 3)
    for v in (0, 1, 3):
        for meth in ("EnableKey", "DisableKey", "CancelKeyDestruction"):
            refused(FP, doom.set_state, meth, name, v)
        refused(FP, doom.schedule, name, v, 0)

    recs = bsutil.wait_audit(doom.state_dir, lambda r: r["type"] == "key" and
                             r["key"] == name and r["event"] == "key_destroyed", count=4)
    assert len(recs) == 4, recs
    assert sorted(r["key_version"] for r in recs[:3]) == [1, 2, 3], recs
    assert recs[3]["key_version"] is None and recs[3]["result"] == "OK", recs
    assert all(r["result"] == "OK" for r in recs), recs

    # a restart on the same token and state: reconcile passes (destroyed
    # versions have no objects), and everything stays as it was
    before = doom.key(name)
    doom.restart()
    assert doom.key(name) == before
    k = doom.key("lc-doom")
    assert states(k) == {1: pb.DESTROYED, 2: pb.DESTROYED}
    refused(FP, doom.sign, name, b"still gone")
    assert doom.sign(keep, b"survivor").key_version == 1
    time.sleep(0.5)   # a few destroyer passes of the new run
    assert doom.key(name) == before
    assert len(key_records(doom.state_dir, name)) == 4
    assert doom.inst.daemon.proc.poll() is None


def test_rotate_refused_for_a_key_pending_or_destroyed(doom, pb):
    gone, pending = "lc-rot-gone", "lc-rot-pending"
    doom.create(gone)
    doom.schedule(gone, 0, 0)
    before = doom.wait_key(gone, lambda k: k.state == pb.DESTROYED)
    doom.create(pending)
    doom.schedule(pending, 0, 30)
    try:
        refused(FP, doom.good.RotateKey, pb.RotateKeyRequest(name=gone))
        assert doom.key(gone) == before
        assert doom.objects("boltseal/%s/" % gone) == []
        refused(FP, doom.good.RotateKey, pb.RotateKeyRequest(name=pending))
        assert doom.key(pending).state == pb.PENDING_DESTRUCTION
        assert states(doom.key(pending)) == {1: pb.ENABLED}
    finally:
        # rotated by the bug or not, leave nothing usable behind
        doom.set_state("CancelKeyDestruction", pending, 0)


# --- 4. envelope keys ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def epb(env):
    outdir = os.path.join(env.workdir, "lifecycle-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/envelope.proto", "boltseal/v1/vehicles.proto"])
    return bsutil._load_module("bs_it_envelope_pb2_lifecycle",
                               os.path.join(outdir, "boltseal", "v1", "envelope_pb2.py"))


def test_disabled_kek_refuses_envelope_use(lc, pb, epb):
    ch = lc.inst.channel()
    es = {m: ch.unary_unary("/boltseal.v1.EnvelopeService/" + m,
                            request_serializer=getattr(epb, req).SerializeToString,
                            response_deserializer=getattr(epb, resp).FromString)
          for m, (req, resp) in ENVELOPE.items()}

    def gdk():
        return es["GenerateDataKey"](epb.GenerateDataKeyRequest(key_name=name, context=CTX),
                                     timeout=30)

    def dec(blob):
        return es["Decrypt"](epb.DecryptRequest(ciphertext_blob=blob, context=CTX), timeout=30)

    name = "lc-kek"
    lc.create(name, alg=pb.AES_256_GCM, purpose=pb.ENVELOPE)
    d1 = gdk()
    assert d1.key_version == 1
    lc.good.RotateKey(pb.RotateKeyRequest(name=name), timeout=30)
    d2 = gdk()
    assert d2.key_version == 2

    # version 1 disabled: its blobs do not open; new data keys come from version 2
    lc.set_state("DisableKey", name, 1)
    refused(FP, dec, d1.ciphertext_blob)
    assert dec(d2.ciphertext_blob).plaintext == d2.plaintext
    assert gdk().key_version == 2
    # version 2 disabled too: no data key at all
    lc.set_state("DisableKey", name, 2)
    refused(FP, gdk)
    refused(FP, dec, d2.ciphertext_blob)
    lc.set_state("EnableKey", name, 1)
    lc.set_state("EnableKey", name, 2)
    assert dec(d1.ciphertext_blob).plaintext == d1.plaintext

    # the whole KEK disabled: neither a data key nor a decryption
    k = lc.set_state("DisableKey", name, 0)
    assert k.state == pb.DISABLED
    refused(FP, gdk)
    refused(FP, dec, d1.ciphertext_blob)
    refused(FP, dec, d2.ciphertext_blob)
    lc.set_state("EnableKey", name, 0)
    assert dec(d1.ciphertext_blob).plaintext == d1.plaintext
    assert dec(d2.ciphertext_blob).plaintext == d2.plaintext
    assert gdk().key_version == 2

    # pending destruction refuses the same way
    lc.schedule(name, 1, 7)
    refused(FP, dec, d1.ciphertext_blob)
    lc.set_state("CancelKeyDestruction", name, 1)
    refused(FP, dec, d1.ciphertext_blob)   # cancelled: disabled
    lc.set_state("EnableKey", name, 1)
    assert dec(d1.ciphertext_blob).plaintext == d1.plaintext


def test_destroyed_kek_version_is_gone(doom, pb, epb):
    """A secret key (AES KEK) version is destroyed like a key pair: its one
    CKO_SECRET_KEY object leaves the token, its blobs no longer open."""
    ch = doom.inst.channel()
    es = {m: ch.unary_unary("/boltseal.v1.EnvelopeService/" + m,
                            request_serializer=getattr(epb, req).SerializeToString,
                            response_deserializer=getattr(epb, resp).FromString)
          for m, (req, resp) in ENVELOPE.items()}
    name = "lc-kek-doom"
    doom.create(name, alg=pb.AES_256_GCM, purpose=pb.ENVELOPE, versions=2)
    d2 = es["GenerateDataKey"](epb.GenerateDataKeyRequest(key_name=name, context=CTX),
                               timeout=30)
    assert d2.key_version == 2
    objs1 = doom.version_objects(name, 1)
    assert [o["class"] for o in doom.version_objects(name, 2)] == ["secret"]
    assert [o["class"] for o in objs1] == ["secret"]
    doom.schedule(name, 2, 0)
    k = doom.wait_key(name, lambda k: vinfo(k, 2).state == pb.DESTROYED)
    assert doom.objects("boltseal/%s/" % name) == objs1
    refused(FP, es["Decrypt"], epb.DecryptRequest(ciphertext_blob=d2.ciphertext_blob,
                                                  context=CTX))
    assert k.primary_version == 1
    d = es["GenerateDataKey"](epb.GenerateDataKeyRequest(key_name=name, context=CTX), timeout=30)
    assert d.key_version == 1


# --- 5. the audit key --------------------------------------------------------------------------

def test_audit_key_cannot_be_changed(lc, pb):
    k = lc.key(AUDIT_KEY)
    assert k.purpose == pb.AUDIT and k.state == pb.ENABLED
    for v in (0, 1):
        for meth in ("DisableKey", "EnableKey", "CancelKeyDestruction"):
            refused(FP, lc.set_state, meth, AUDIT_KEY, v)
        refused(FP, lc.schedule, AUDIT_KEY, v, 7)
        refused(FP, lc.schedule, AUDIT_KEY, v, 30)
    assert lc.key(AUDIT_KEY) == k


# --- 6. bad input and callers without a grant ----------------------------------------------------

def test_bad_input_and_no_grant(lc, pb):
    name = "lc-input"
    lc.create(name, versions=2)
    for meth in ("DisableKey", "EnableKey", "CancelKeyDestruction"):
        refused(NOT_FOUND, lc.set_state, meth, "lc-no-such-key", 0)
        refused(NOT_FOUND, lc.set_state, meth, "lc-no-such-key", 1)
        refused(NOT_FOUND, lc.set_state, meth, name, 3)
        refused(NOT_FOUND, lc.set_state, meth, name, 0xffffffff)
        for bad in ("", "-lead", "has space", "n" + "x" * 64, "slash/x"):
            refused(INVALID, lc.set_state, meth, bad, 0)
    refused(NOT_FOUND, lc.schedule, "lc-no-such-key", 0, 7)
    refused(NOT_FOUND, lc.schedule, name, 3, 7)
    refused(INVALID, lc.schedule, "bad name", 0, 7)

    # fleet-admin may read and rotate every key, but not change its state
    assert lc.admin.GetKey(pb.GetKeyRequest(name=name), timeout=15).key.name == name
    for meth in ("DisableKey", "EnableKey", "CancelKeyDestruction"):
        refused(DENIED, lc.set_state, meth, name, 0, client=lc.admin)
        refused(DENIED, lc.set_state, meth, name, 1, client=lc.admin)
        # no grant: "not found" is not revealed either
        refused(DENIED, lc.set_state, meth, "lc-no-such-key", 0, client=lc.admin)
    refused(DENIED, lc.schedule, name, 1, 7, client=lc.admin)
    refused(DENIED, lc.schedule, AUDIT_KEY, 0, 7, client=lc.admin)
    k = lc.key(name)
    assert k.state == pb.ENABLED and states(k) == {1: pb.ENABLED, 2: pb.ENABLED}

    # every refusal above changed nothing, and each has its rpc record
    recs = [r for r in bsutil.audit_records(lc.state_dir)
            if r["type"] == "rpc" and r["principal_id"] == "alice" and
            r["method"].startswith("boltseal.v1.KeyService/") and
            r["method"].rsplit("/", 1)[1] in LIFECYCLE]
    assert len(recs) == 11 and {r["result"] for r in recs} == {"PERMISSION_DENIED"}, recs
