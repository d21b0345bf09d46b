# test_admin.py - AdminService (proto/boltseal/v1/admin.proto, docs/admin.md):
# the TOTP second factor and M-of-N approvals, against real daemons of the
# test's own (auditutil.Instance), each with its own SoftHSM token and state
# dir, whose policy is the seed policy etc/policy.example as shipped plus a
# second URI of alice (admin-alice-token, the same person on a hardware
# token) and, for the TOTP daemon only, two more fleet-admins (dave and
# erin, certificates minted here) so that a locked factor can be reset by
# three others.
#
# Second factor (daemon "totp", admin.mfa_max_failures = 3): enrolment (the
# otpauth URI parsed; the QR drawing turned back into modules, rendered to a
# PNG and decoded by zbarimg gives the URI; activation by a pyotp code, a
# wrong one refused); codes on a "require mfa" call (missing, accepted once,
# window -1/0/+1 accepted, -2/+2 refused, oathtool's code accepted);
# lockout, its audit records and a reset by proposal; the seed never in
# plaintext at rest (state dir, token files and objects, log, audit log).
# Approvals (a fresh daemon per test, alice, bob and carol each with an
# active factor): 2-of-3 with the exact request hash, two certificates of
# one person counting once, self-approval / wrong hash / missing code /
# rejection, expiry, an approver removed from the policy (SIGHUP), a restart,
# the audit trail, bad input.
#
# TOTP codes are computed with pyotp from the secret in the URI. A code is
# accepted only if its step is newer than the last accepted one, so each
# principal has few codes at hand: Admins.code() hands out the oldest step
# still accepted and never used, waiting for the next 30 s step only when
# none is left; the tests spread their codes over principals and daemons so
# that this rarely happens. About 60 s (3 min under ASan).

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse

import grpc
import pyotp
import pytest
from PIL import Image

import auditutil
import bsutil
import pkitool

SEED = os.path.join(bsutil.SRCDIR, "etc", "policy.example")
AD = "/boltseal.v1.AdminService/"
KS = "/boltseal.v1.KeyService/"
OTP = "x-boltseal-otp"
STEP = 30
SCHEDULE = "boltseal.v1.KeyService/ScheduleKeyDestruction"
RESET = "boltseal.v1.AdminService/ResetSecondFactor"
HASH_PREFIX = b"boltseal proposal v1\n"
# RPC_SF_NEEDED_MESSAGE (src/rpc/rpc_service.h)
SF_NEEDED = ("this call requires a second factor: send your current TOTP code in the "
             "x-boltseal-otp request metadata")

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
FP = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED

# identity (client certificate) -> principal
PRINCIPAL = {"admin-alice": "alice", "admin-alice-token": "alice", "admin-bob": "bob",
             "admin-carol": "carol", "admin-dave": "dave", "admin-erin": "erin"}
URI_OF = {"admin-alice": "spiffe://fleet.example/admin/alice",
          "admin-alice-token": "spiffe://fleet.example/admin/alice-token",
          "admin-bob": "spiffe://fleet.example/admin/bob",
          "admin-carol": "spiffe://fleet.example/admin/carol",
          "admin-dave": "spiffe://fleet.example/admin/dave",
          "admin-erin": "spiffe://fleet.example/admin/erin"}

ADMIN_METHODS = {m: (m + "Request", m + "Response") for m in (
    "EnrollSecondFactor", "ActivateSecondFactor", "GetSecondFactor", "ResetSecondFactor",
    "Propose", "ListProposals", "GetProposal", "Approve", "Reject", "Execute")}
KEY_METHODS = {
    "CreateKey": ("CreateKeyRequest", "CreateKeyResponse"),
    "GetKey": ("GetKeyRequest", "GetKeyResponse"),
    "DisableKey": ("SetKeyStateRequest", "SetKeyStateResponse"),
    "EnableKey": ("SetKeyStateRequest", "SetKeyStateResponse"),
    "ScheduleKeyDestruction": ("ScheduleKeyDestructionRequest", "SetKeyStateResponse"),
}

# The QR drawing: each line holds two module rows.
QR_FULL, QR_UPPER, QR_LOWER = "\u2588", "\u2580", "\u2584"
QR_QUIET = 2

# Every object of a SoftHSM token (logged in) with the attribute values it
# lets read, as JSON [{"class", "label", "values": {attr: hex}}], through
# PyKCS11 in a process of its own (SOFTHSM2_CONF from the environment).
P11_DUMP = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import PyKCS11
import p11probe
module, token, pin_file = sys.argv[2:5]
lib, s = p11probe.open_session(module, token, pin_file)
names = ["CKA_LABEL", "CKA_ID", "CKA_VALUE", "CKA_APPLICATION", "CKA_OBJECT_ID",
         "CKA_EC_POINT", "CKA_EC_PARAMS", "CKA_MODULUS", "CKA_PUBLIC_EXPONENT",
         "CKA_SUBJECT", "CKA_VALUE_LEN", "CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_PRIVATE"]
out = []
try:
    for o in s.findObjects([]):
        rec = {"values": {}}
        rec["class"] = int(s.getAttributeValue(o, [PyKCS11.CKA_CLASS])[0])
        for n in names:
            try:
                v = s.getAttributeValue(o, [getattr(PyKCS11, n)])[0]
            except PyKCS11.PyKCS11Error:
                continue
            if v is None:
                continue
            if isinstance(v, str):
                b = v.encode()
            elif isinstance(v, bool):
                b = bytes([int(v)])
            elif isinstance(v, int):
                b = v.to_bytes(8, "big")
            else:
                b = bytes(v)
            rec["values"][n] = b.hex()
        rec["label"] = bytes.fromhex(rec["values"].get("CKA_LABEL", "")).decode(errors="replace")
        out.append(rec)
finally:
    s.logout()
    s.closeSession()
print(json.dumps(out))
"""


# --- helpers --------------------------------------------------------------------------

def refused(code, fn, *args, **kw):
    """fn(*args, **kw) must fail with status code; returns the error."""
    kw.setdefault("timeout", 30)
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as err:
        assert err.code() == code, (err.code(), err.details())
        return err
    raise AssertionError("expected %s, got a response: %r" % (code, r))


def otp(code):
    return [(OTP, code)]


def proposal_hash(method, request):
    return hashlib.sha256(HASH_PREFIX + method.encode() + b"\n" + request).hexdigest()


def b32_secret(uri):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    return q["secret"][0]


def raw_secret(secret):
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def seed_policy(carol_roles="fleet-admin", extra=()):
    """etc/policy.example as shipped, plus alice's second certificate, carol's
    roles changed if asked, and extra fleet-admins [(principal, uri)]."""
    with open(SEED) as f:
        text = f.read()
    # what these tests assume of the seed policy
    for want in ("        methods boltseal.v1.KeyService/ScheduleKeyDestruction\n"
                 "        keys *\n"
                 "        require approvals 2 of fleet-admin\n"
                 "        require mfa\n",
                 "        methods boltseal.v1.KeyService/DisableKey "
                 "boltseal.v1.KeyService/EnableKey\n",
                 "        methods boltseal.v1.AdminService/ResetSecondFactor\n"
                 "        require approvals 2 of fleet-admin\n"):
        assert want in text, "etc/policy.example no longer says:\n" + want
    alice = "    uri spiffe://fleet.example/admin/alice\n"
    assert text.count(alice) == 1
    text = text.replace(alice, alice + "    uri spiffe://fleet.example/admin/alice-token\n")
    carol = "principal carol\n    uri spiffe://fleet.example/admin/carol\n    roles fleet-admin\n"
    assert text.count(carol) == 1
    text = text.replace(carol, carol.replace("roles fleet-admin", "roles " + carol_roles))
    for name, uri in extra:
        text += "\nprincipal %s\n    uri %s\n    roles fleet-admin\n" % (name, uri)
    return text


class AdminClient:
    """Unary callables of AdminService and of the KeyService methods used
    here, over one channel."""

    def __init__(self, channel, apb, pb):
        self.channel = channel
        for meth, (req, resp) in ADMIN_METHODS.items():
            setattr(self, meth, channel.unary_unary(
                AD + meth, request_serializer=getattr(apb, req).SerializeToString,
                response_deserializer=getattr(apb, resp).FromString))
        for meth, (req, resp) in KEY_METHODS.items():
            setattr(self, meth, channel.unary_unary(
                KS + meth, request_serializer=getattr(pb, req).SerializeToString,
                response_deserializer=getattr(pb, resp).FromString))

    def raw(self, meth, resp_cls):
        return self.channel.unary_unary(AD + meth, request_serializer=lambda b: b,
                                        response_deserializer=resp_cls.FromString)


class Admins:
    """A boltsealed of the test's own with a policy given as text, clients per
    identity, and the second factors of its principals (their URIs, and the
    newest step each has used)."""

    def __init__(self, env, apb, tag, policy, certs=None, **settings):
        self.env = env
        self.apb = apb
        self.pb = env.stubs.pb
        self.inst = auditutil.Instance(env, tag, **settings)
        self.policy_path = os.path.join(self.inst.dir, "policy")
        self.write_policy(policy)
        self.inst.settings["policy"] = self.policy_path
        bsutil.write_config(self.inst.conf, self.inst.settings)
        self.certs = dict(certs or {})          # identity -> (cert, key) not in env.pki
        self.window = int(settings.get("admin.mfa_window", 1))
        self.uris = {}                          # principal -> [otpauth URI, ...]
        self.last = {}                          # principal -> newest step used
        self._clients = {}
        self.inst.start()

    def write_policy(self, text):
        with open(self.policy_path, "w") as f:
            f.write(text)
        os.chmod(self.policy_path, 0o644)

    @property
    def state_dir(self):
        return self.inst.state_dir

    @property
    def daemon(self):
        return self.inst.daemon

    def c(self, ident):
        """The client of an identity ("admin-bob") or of a principal ("bob")."""
        if ident in ("alice", "bob", "carol", "dave", "erin"):
            ident = "admin-" + ident
        if ident not in self._clients:
            cert, key = self.certs.get(ident) or self.env.client_files(ident)
            ch = bsutil.make_channel(self.inst.port, self.env.ca, cert, key)
            self.inst.channels.append(ch)
            self._clients[ident] = AdminClient(ch, self.apb, self.pb)
        return self._clients[ident]

    def restart(self):
        self.inst.close_channels()
        self._clients = {}
        bsutil.stop_clean(self.inst.daemon)
        self.inst.daemon = None
        self.inst.start()

    def close(self):
        try:
            if self.inst.daemon is not None:
                self.inst.close_channels()
                bsutil.stop_clean(self.inst.daemon)   # exit 0 (under ASan: no leak)
                self.inst.daemon = None
        finally:
            self.inst.cleanup()

    def log_bytes(self):
        return bsutil.read(self.inst.log)

    def audit(self):
        return bsutil.audit_records(self.state_dir)

    # --- the second factor -----------------------------------------------------------

    def secret(self, who):
        return b32_secret(self.uris[who][-1])

    def totp(self, who):
        return pyotp.TOTP(self.secret(who))

    def code(self, who, window=None, margin=3.0):
        """A code of who's factor for the oldest step that the daemon accepts
        now and who has not used yet (waits for the next step when there is
        none); the step counts as used from here on."""
        w = self.window if window is None else window
        while True:
            now = time.time()
            cur = int(now // STEP)
            s = max(self.last.get(who, -1) + 1, cur - w)
            if s == cur - w and STEP - now % STEP < margin:
                s += 1          # would fall out of the window before it arrives
            if s <= cur + w:
                break
            time.sleep((s - w) * STEP - now + 0.2)
        self.last[who] = s
        return self.totp(who).at(s * STEP)

    def wrong_code(self, who):
        """A 6-digit code that no step within +-3 of now has."""
        t = self.totp(who)
        near = {t.at(time.time() + k * STEP) for k in range(-3, 4)}
        for cand in ("000000", "123456", "999999", "314159"):
            if cand not in near:
                return cand
        raise AssertionError("unreachable")

    def enroll(self, who, ident=None):
        r = self.c(ident or who).EnrollSecondFactor(self.apb.EnrollSecondFactorRequest(),
                                                   timeout=30)
        self.uris.setdefault(who, []).append(r.otpauth_uri)
        self.last[who] = -1
        return r

    def activate(self, who, ident=None):
        code = self.code(who, window=1)     # activation: always +-1 step
        return self.c(ident or who).ActivateSecondFactor(
            self.apb.ActivateSecondFactorRequest(code=code), timeout=30).status

    def factor(self, who, ident=None):
        return self.c(ident or who).GetSecondFactor(self.apb.GetSecondFactorRequest(),
                                                   timeout=30).status

    # --- keys and proposals -----------------------------------------------------------

    def create_key(self, name, versions=1):
        pb = self.pb
        return self.c("alice").CreateKey(pb.CreateKeyRequest(
            name=name, purpose=pb.GENERIC, algorithm=pb.ECDSA_P256_SHA256), timeout=30).key

    def key(self, name):
        return self.c("alice").GetKey(self.pb.GetKeyRequest(name=name), timeout=30).key

    def schedule_request(self, name, version=1, days=7):
        return self.pb.ScheduleKeyDestructionRequest(name=name, version=version,
                                                     pending_days=days).SerializeToString()

    def propose(self, ident, method, request, description="", ttl=0):
        return self.c(ident).Propose(self.apb.ProposeRequest(
            method=method, request=request, description=description, ttl_seconds=ttl),
            timeout=30).proposal

    def get(self, pid, ident="alice"):
        return self.c(ident).GetProposal(self.apb.GetProposalRequest(id=pid),
                                         timeout=30).proposal

    def approve(self, ident, p, sha=None):
        who = PRINCIPAL[ident] if ident in PRINCIPAL else ident
        return self.c(ident).Approve(self.apb.ApproveRequest(
            id=p.id, request_sha256=sha or p.request_sha256),
            metadata=otp(self.code(who)), timeout=30).proposal

    def execute(self, ident, pid, with_code=True):
        who = PRINCIPAL[ident] if ident in PRINCIPAL else ident
        md = otp(self.code(who)) if with_code else None
        return self.c(ident).Execute(self.apb.ExecuteRequest(id=pid), metadata=md,
                                     timeout=30).proposal


def vinfo(k, version):
    return [v for v in k.versions if v.version == version][0]


def walk_bytes(top):
    """{path: bytes} of every regular file under top."""
    out = {}
    for root, _, files in os.walk(top):
        for n in files:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out[p] = bsutil.read(p)
    return out


def qr_modules(text):
    """The modules (True: dark) of the QR drawing, quiet zone included; checks
    the drawing's form on the way."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    side = len(lines[0])
    assert all(len(l) == side for l in lines), [len(l) for l in lines]
    assert len(lines) == (side + 1) // 2, (len(lines), side)
    rows = []
    for l in lines:
        assert set(l) <= {QR_FULL, QR_UPPER, QR_LOWER, " "}, set(l)
        rows.append([c in (QR_FULL, QR_UPPER) for c in l])
        rows.append([c in (QR_FULL, QR_LOWER) for c in l])
    if len(rows) > side:
        assert not any(rows[-1]), "the half row below the drawing is not light"
        rows = rows[:side]
    return rows


def decode_qr_png(modules, path, scale=8):
    """Renders modules black on white (scale px each) to a PNG at path and
    returns what `zbarimg --raw -q` reads from it."""
    side = len(modules)
    img = Image.new("L", (side, side), 255)
    img.putdata([0 if dark else 255 for row in modules for dark in row])
    img = img.resize((side * scale, side * scale), Image.NEAREST)
    img.save(path)
    p = subprocess.run(["zbarimg", "--raw", "-q", path], capture_output=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr.decode(errors="replace"))
    return p.stdout.decode()


# --- fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def apb(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("admin-stubs"))
    bsutil.run(["protoc", "--python_out=" + out, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/admin.proto"])
    return bsutil._load_module("bs_it_admin_pb2",
                               os.path.join(out, "boltseal", "v1", "admin_pb2.py"))


@pytest.fixture(scope="module")
def totp(env, apb, tmp_path_factory):
    """The TOTP daemon: the seed policy plus dave and erin (fleet-admin),
    admin.mfa_max_failures = 3; bob, carol, dave and erin have an active
    factor (alice enrols in test 1); key "tf-key" exists."""
    certdir = str(tmp_path_factory.mktemp("admin-certs"))
    ca = pkitool.dev_ca(env.pki)
    certs = {}
    for ident in ("admin-dave", "admin-erin"):
        certs[ident] = pkitool.mint_client(ca, certdir, ident, URI_OF[ident])
    policy = seed_policy(extra=(("dave", URI_OF["admin-dave"]), ("erin", URI_OF["admin-erin"])))
    d = Admins(env, apb, "admin-totp", policy, certs=certs, **{"admin.mfa_max_failures": 3})
    try:
        d.create_key("tf-key")
        for who in ("erin", "bob", "carol", "dave"):
            d.enroll(who)
            assert d.activate(who).state == "active"
        yield d
    finally:
        d.close()


@pytest.fixture
def admins(env, apb):
    """make(tag): a fresh daemon with the seed policy (plus alice's second
    certificate) where alice, bob and carol have an active factor."""
    made = []

    def make(tag, **settings):
        d = Admins(env, apb, tag, seed_policy(), **settings)
        made.append(d)
        for who in ("alice", "bob", "carol"):
            d.enroll(who)
            assert d.activate(who).state == "active"
        return d
    yield make
    for d in made:
        d.close()


# --- 1. enrolment ---------------------------------------------------------------------

def test_enrol_uri_qr_and_activation(totp, apb, tmp_path):
    t0 = int(time.time())
    r = totp.enroll("alice")
    assert r.principal == "alice"
    uri = r.otpauth_uri
    u = urllib.parse.urlsplit(uri)
    assert (u.scheme, u.netloc) == ("otpauth", "totp"), uri
    assert urllib.parse.unquote(u.path) == "/boltseal:alice", uri
    q = urllib.parse.parse_qs(u.query, strict_parsing=True)
    assert {k: len(v) for k, v in q.items()} == {
        "secret": 1, "issuer": 1, "algorithm": 1, "digits": 1, "period": 1}, uri
    assert (q["issuer"], q["algorithm"], q["digits"], q["period"]) == (
        ["boltseal"], ["SHA1"], ["6"], ["30"]), uri
    secret = q["secret"][0]
    assert re.fullmatch(r"[A-Z2-7]{52}", secret), secret     # 32 bytes, no padding
    raw = raw_secret(secret)
    assert len(raw) == 32 and len(set(raw)) > 8
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.issuer, parsed.name, parsed.digits, parsed.interval) == (
        "boltseal", "alice", 6, 30)
    assert parsed.digest().name == "sha1"

    # the QR drawing: quiet zone of 2, then the symbol; zbarimg reads the URI back
    mods = qr_modules(r.qr_text)
    side = len(mods)
    width = side - 2 * QR_QUIET
    assert width >= 21 and (width - 21) % 4 == 0, side
    for i in range(QR_QUIET):
        for line in (mods[i], mods[side - 1 - i], [row[i] for row in mods],
                     [row[side - 1 - i] for row in mods]):
            assert not any(line), "the quiet zone is not light"
    # the top-left finder pattern starts right after the quiet zone
    assert all(mods[QR_QUIET][QR_QUIET:QR_QUIET + 7])
    assert not any(mods[QR_QUIET + 1][QR_QUIET + 1:QR_QUIET + 6])
    assert decode_qr_png(mods, str(tmp_path / "enrol.png")).rstrip("\n") == uri

    st = totp.factor("alice")
    assert (st.principal, st.state, st.failures) == ("alice", "pending", 0)
    assert t0 <= st.enrolled_unix <= int(time.time())

    # a wrong and a malformed activation code are refused; the factor stays pending
    c = totp.c("alice")
    err = refused(UNAUTH, c.ActivateSecondFactor,
                  apb.ActivateSecondFactorRequest(code=totp.wrong_code("alice")))
    assert err.details().startswith("second factor:") and "wrong code" in err.details()
    err = refused(UNAUTH, c.ActivateSecondFactor, apb.ActivateSecondFactorRequest(code="12ab"))
    assert err.details().startswith("second factor:") and "malformed" in err.details()
    assert totp.factor("alice").state == "pending"
    # a call that requires mfa is refused while the factor is pending
    code = totp.totp("alice").now()
    err = refused(UNAUTH, c.DisableKey, totp.pb.SetKeyStateRequest(name="tf-key"),
                  metadata=otp(code))
    assert "not activated" in err.details(), err.details()

    st = totp.activate("alice")
    assert (st.principal, st.state, st.failures) == ("alice", "active", 0)
    assert t0 <= st.last_used_unix <= int(time.time())
    assert totp.factor("alice").state == "active"
    # an active factor is not enrolled again without a reset
    err = refused(FP, c.EnrollSecondFactor, apb.EnrollSecondFactorRequest())
    assert "reset" in err.details()
    assert totp.uris["alice"] == [uri]

