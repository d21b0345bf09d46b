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
# active factor): 2-of-3 with the exact request hash (computed here), two
# certificates of one person counting once, self-approval / wrong hash /
# missing code / rejection, expiry, an approver removed from the policy
# (SIGHUP), a restart, the audit trail, bad input, listing, concurrent
# codes, votes and executions, and what approvers are shown (request_text).
#
# TOTP codes are computed with pyotp from the secret in the URI. A code is
# accepted only if its step is newer than the last accepted one, so each
# principal has few codes at hand: Admins.code() hands out the oldest step
# still accepted and never used, waiting for the next 30 s step only when
# none is left; the tests spread their codes over principals and daemons so
# that this never happens, except once: test 2 needs a step begun after
# erin's activation. 12 to 45 s (30 to 60 s under ASan), depending on that.

import base64
import hashlib
import json
import os
import re
import subprocess
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
    "Propose", "ListProposals", "GetProposal", "Approve", "Reject", "Execute",
    "GetPolicy", "SetPolicy")}
KEY_METHODS = {
    "CreateKey": ("CreateKeyRequest", "CreateKeyResponse"),
    "ListKeys": ("ListKeysRequest", "ListKeysResponse"),
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
    """fn(*args, **kw) must fail with status code; returns the error. fn is a
    gRPC callable (given a timeout here) or a helper (which has its own)."""
    if isinstance(fn, grpc.UnaryUnaryMultiCallable):
        kw.setdefault("timeout", 30)
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as err:
        assert err.code() == code, (err.code(), err.details())
        return err
    raise AssertionError("expected %s, got a response: %r" % (code, r))


# Times the daemon stamps (time(2), a coarse clock) may lag time.time() by a
# few milliseconds: across a second boundary, one second. Comparisons allow it
# (t0 - 1), and codes are never sent within half a second after a step begins.
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
        try:
            self.inst.start()
        except BaseException:
            self.inst.cleanup()
            raise

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
            d, self.inst.daemon = self.inst.daemon, None
            if d is not None:
                self.inst.close_channels()
                rc = d.terminate(15.0)
                # exit 0 (under ASan: no leak, no report; under UBSan: no report)
                assert rc == 0, "boltsealed exited with %r after SIGTERM; log tail:\n%s" % (
                    rc, d.log_tail(60))
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
            if s <= cur + w and now % STEP >= 0.5:
                break
            if s <= cur + w:
                time.sleep(0.5 - now % STEP)    # the daemon may not see step cur yet
            else:
                time.sleep((s - w) * STEP - now + 0.5)
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

    def make(tag, factors=("alice", "bob", "carol"), **settings):
        d = Admins(env, apb, tag, seed_policy(), **settings)
        made.append(d)
        for who in factors:
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
    assert t0 - 1 <= st.enrolled_unix <= int(time.time())

    # enrolling again while pending draws a new seed; the first one is void
    r2 = totp.enroll("alice")
    assert b32_secret(r2.otpauth_uri) != secret and r2.qr_text != r.qr_text
    assert totp.factor("alice").state == "pending"
    c = totp.c("alice")
    err = refused(UNAUTH, c.ActivateSecondFactor,
                  apb.ActivateSecondFactorRequest(code=pyotp.TOTP(secret).now()))
    assert "wrong code" in err.details(), err.details()

    # a wrong and a malformed activation code are refused; the factor stays pending
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
    assert t0 - 1 <= st.last_used_unix <= int(time.time())
    assert totp.factor("alice").state == "active"
    # the activation code was used: not accepted again
    used = totp.totp("alice").at(totp.last["alice"] * STEP)
    err = refused(UNAUTH, c.DisableKey, totp.pb.SetKeyStateRequest(name="tf-key"),
                  metadata=otp(used))
    assert "used already" in err.details(), err.details()
    # an active factor is not enrolled again without a reset
    err = refused(FP, c.EnrollSecondFactor, apb.EnrollSecondFactorRequest())
    assert "reset" in err.details()
    assert totp.uris["alice"] == [uri, r2.otpauth_uri]


# --- 4. the seed is never stored or shown in plaintext -----------------------------------

def test_seed_never_in_plaintext_at_rest(totp, apb):
    d = totp
    # a control: what the daemon stores in the clear is found by the same search
    marker = "plaintext-control-%d" % os.getpid()
    d.propose("alice", SCHEDULE, d.schedule_request("tf-key"), marker)
    uris = [u for us in d.uris.values() for u in us]
    assert len(uris) >= 4, d.uris
    needles = []
    for uri in uris:
        secret = b32_secret(uri)
        raw = raw_secret(secret)
        needles += [(uri, "raw", raw), (uri, "base32", secret.encode()),
                    (uri, "base32 lower", secret.lower().encode()),
                    (uri, "hex", raw.hex().encode()), (uri, "HEX", raw.hex().upper().encode()),
                    (uri, "uri", uri.encode())]

    state = walk_bytes(d.state_dir)
    assert any(marker.encode() in b for b in state.values()), \
        "the control string is not found in the state dir: the search is blind"
    for path, data in state.items():
        for uri, what, needle in needles:
            assert needle not in data, "%s of %s found in %s" % (what, uri, path)

    # the token's files, and every object of the token as PyKCS11 reads it
    tok = walk_bytes(d.inst.tokdir)
    assert len(tok) >= 2, tok.keys()
    for path, data in tok.items():
        for uri, what, needle in needles:
            assert needle not in data, "%s of %s found in %s" % (what, uri, path)
    e = dict(os.environ, SOFTHSM2_CONF=d.inst.softhsm_conf)
    p = subprocess.run([bsutil.PYTHON, "-c", P11_DUMP, bsutil.HERE, bsutil.SOFTHSM_MODULE,
                        d.inst.label, os.path.join(d.inst.tokdir, "user.pin")],
                       env=e, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    objs = json.loads(p.stdout)
    seeds = [o for o in objs if o["label"].startswith("boltseal/mfa-seeds/")]
    assert seeds, [o["label"] for o in objs]
    for o in seeds:     # the sealing key itself never leaves the token
        assert o["values"].get("CKA_SENSITIVE") == "01" and \
            o["values"].get("CKA_EXTRACTABLE") == "00", o
        assert "CKA_VALUE" not in o["values"], o
    for o in objs:
        for attr, hexval in o["values"].items():
            val = bytes.fromhex(hexval)
            for uri, what, needle in needles:
                assert needle not in val, "%s of %s in %s of token object %r" % (
                    what, uri, attr, o["label"])

    # neither the daemon's log (stderr) nor the audit log holds it
    log = d.log_bytes()
    audit = bsutil.read(bsutil.audit_path(d.state_dir))
    assert b"mfa_enrolled" in audit and b"second factor" in log.lower() + audit
    for name, data in (("daemon log", log), ("audit log", audit)):
        assert b"otpauth" not in data and b"secret=" not in data, name
        for uri, what, needle in needles:
            assert needle not in data, "%s of %s in the %s" % (what, uri, name)


# --- 12. bad input and callers without a grant --------------------------------------------

def test_bad_proposals_and_callers_without_grant(totp, apb, pb):
    d = totp
    c = d.c("alice")
    good = d.schedule_request("tf-key")

    def propose(method, request=good, **kw):
        return c.Propose(apb.ProposeRequest(method=method, request=request, **kw), timeout=30)

    for method in ("boltseal.v1.KeyService/NoSuchMethod", "boltseal.v1.NoService/Sign",
                   "/" + SCHEDULE, "", "boltseal.v1.AdminService/Approve",
                   "boltseal.v1.AdminService/Execute", "boltseal.v1.AdminService/Propose",
                   "boltseal.v1.AdminService/EnrollSecondFactor"):
        err = refused(INVALID, propose, method)
        assert "method" in err.details(), (method, err.details())
    # the AdminService method that may be proposed: ResetSecondFactor
    p = propose(RESET, apb.ResetSecondFactorRequest(principal="bob").SerializeToString())
    assert p.proposal.method == RESET and p.proposal.state == apb.PENDING
    # unknown fields, malformed bytes, a string field that is not UTF-8
    for bad in (good + b"\xf8\x06\x01",             # field 111, varint
                good + b"\x22\x01x",                # field 4, length-delimited
                b"\xff\xff\xff", b"\x0a\x05ab",     # truncated
                b"\x0a\x02\xc3\x28"):               # name: invalid UTF-8
        refused(INVALID, propose, SCHEDULE, bad)
    refused(INVALID, propose, SCHEDULE, good, description="x" * 513)
    refused(INVALID, propose, SCHEDULE, good, ttl_seconds=7 * 86400 + 1)
    assert propose(SCHEDULE, good, description="x" * 512,
                   ttl_seconds=7 * 86400).proposal.state == apb.PENDING
    # a method none of alice's roles grants
    err = refused(DENIED, propose, "boltseal.v1.KeyService/Sign",
                  pb.SignRequest(key_name="tf-key", message=b"m").SerializeToString())
    assert "grants" in err.details(), err.details()

    # ids: malformed, unknown
    for bad in ("", "xyz", "0" * 27, "0" * 29, "A" * 28, "../" + "0" * 25):
        refused(INVALID, c.GetProposal, apb.GetProposalRequest(id=bad))
        refused(INVALID, c.Execute, apb.ExecuteRequest(id=bad))
    unknown = "0" * 28
    err = refused(NOT_FOUND, c.GetProposal, apb.GetProposalRequest(id=unknown))
    assert unknown in err.details()
    refused(NOT_FOUND, c.Execute, apb.ExecuteRequest(id=unknown))
    refused(INVALID, c.ListProposals, apb.ListProposalsRequest(page_token="nope"))

    # a direct call that needs approvals is refused, even with the second factor
    err = refused(FP, d.c("dave").ScheduleKeyDestruction, pb.ScheduleKeyDestructionRequest(
        name="tf-key", version=1, pending_days=7), metadata=otp(d.code("dave")))
    assert "submit it as a proposal" in err.details(), err.details()
    assert d.key("tf-key").state == pb.ENABLED

    # a principal that is no administrator: nothing of AdminService
    ci = d.c("ci-ota-release")
    pid = p.proposal.id
    for meth, req in (("Propose", apb.ProposeRequest(method=SCHEDULE, request=good)),
                      ("GetProposal", apb.GetProposalRequest(id=pid)),
                      ("ListProposals", apb.ListProposalsRequest()),
                      ("Execute", apb.ExecuteRequest(id=pid)),
                      ("EnrollSecondFactor", apb.EnrollSecondFactorRequest()),
                      ("GetSecondFactor", apb.GetSecondFactorRequest()),
                      ("ResetSecondFactor", apb.ResetSecondFactorRequest(principal="bob"))):
        refused(DENIED, getattr(ci, meth), req)
    # an administrator reads only her own factor
    refused(DENIED, c.GetSecondFactor, apb.GetSecondFactorRequest(principal="bob"))
    assert c.GetSecondFactor(apb.GetSecondFactorRequest(principal="alice"),
                             timeout=30).status.principal == "alice"
    assert d.get(pid).state == apb.PENDING


# --- what approvers are shown ----------------------------------------------------------

def test_request_text_shows_what_would_run(totp, apb, pb):
    """Approvers read the request unambiguously: quotes, newlines, controls
    and bidi overrides escaped, fields in number order."""
    name = 'x"\\\n\u202eY\x7f'
    req = pb.SetKeyStateRequest(name=name, version=3).SerializeToString()
    p = totp.propose("alice", "boltseal.v1.KeyService/DisableKey", req)
    assert p.request_text == 'name: "x\\"\\\\\\n\\u202eY\\x7f"\nversion: 3\n', p.request_text
    assert totp.get(p.id, "bob").request_text == p.request_text
    # the same message under another method is another proposal hash
    q = totp.propose("alice", "boltseal.v1.KeyService/EnableKey", req)
    assert q.request == p.request and q.request_text == p.request_text
    assert q.request_sha256 != p.request_sha256
    assert q.request_sha256 == proposal_hash("boltseal.v1.KeyService/EnableKey", req)


# --- 5. 2-of-3 approvals -----------------------------------------------------------------
# Approval daemons run with admin.mfa_window = 2 where a principal needs three
# codes at once: right after its activation (step T-1) it then has T, T+1 and
# T+2 at hand without waiting for the clock.

def test_two_of_three_approvals(admins, apb, pb):
    d = admins("admin-2of3", **{"admin.mfa_window": 2})
    d.create_key("ap-key")
    req = pb.ScheduleKeyDestructionRequest(name="ap-key", version=1, pending_days=7)
    canon = req.SerializeToString()
    # sent with its fields in reverse order: kept in canonical form (number order)
    noncanon = b"\x18\x07" + b"\x10\x01" + b"\x0a\x06ap-key"
    assert noncanon != canon and pb.ScheduleKeyDestructionRequest.FromString(noncanon) == req
    t0 = int(time.time())
    p = d.propose("alice", SCHEDULE, noncanon, "retire ap-key v1")
    t1 = int(time.time())
    assert re.fullmatch(r"[0-9a-f]{28}", p.id), p.id
    assert p.method == SCHEDULE and p.request == canon
    assert p.request_sha256 == proposal_hash(SCHEDULE, canon)
    assert p.request_sha256 == hashlib.sha256(
        b"boltseal proposal v1\nboltseal.v1.KeyService/ScheduleKeyDestruction\n" +
        canon).hexdigest()
    assert p.request_text == 'name: "ap-key"\nversion: 1\npending_days: 7\n', p.request_text
    assert (p.description, p.proposer, p.proposer_identity) == (
        "retire ap-key v1", "alice", URI_OF["admin-alice"])
    assert t0 - 1 <= p.create_time_unix <= t1 and p.expire_time_unix == p.create_time_unix + 86400
    assert p.state == apb.PENDING and not p.approvals and p.execute_time_unix == 0
    # what the approvers read is what was proposed
    assert d.get(p.id, "bob") == p
    assert [x.id for x in d.c("carol").ListProposals(apb.ListProposalsRequest(),
                                                     timeout=30).proposals] == [p.id]

    # no approval yet: refused, and the proposal stays pending
    err = refused(FP, d.execute, "alice", p.id)
    assert "needs 2 approvals of role fleet-admin" in err.details(), err.details()
    assert "has 0 that count" in err.details(), err.details()
    assert d.get(p.id) == p

    t0 = int(time.time())
    p1 = d.approve("bob", p)
    assert [(v.principal, v.identity) for v in p1.approvals] == [("bob", URI_OF["admin-bob"])]
    assert t0 - 1 <= p1.approvals[0].time_unix <= int(time.time())
    assert p1.state == apb.PENDING and p1.request_sha256 == p.request_sha256
    err = refused(FP, d.execute, "alice", p.id)
    assert "has 1 that count" in err.details(), err.details()
    assert d.get(p.id) == p1

    # the call itself, made directly, is refused even with the second factor
    err = refused(FP, d.c("carol").ScheduleKeyDestruction, req,
                  metadata=otp(d.code("carol")))
    assert "submit it as a proposal" in err.details(), err.details()
    assert vinfo(d.key("ap-key"), 1).state == pb.ENABLED

    p2 = d.approve("carol", p)
    assert [v.principal for v in p2.approvals] == ["bob", "carol"]
    t0 = int(time.time())
    done = d.execute("alice", p.id)
    t1 = int(time.time())
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    assert t0 - 1 <= done.execute_time_unix <= t1
    assert done.result_message == ""
    resp = pb.SetKeyStateResponse.FromString(done.result_response)
    assert resp.key.name == "ap-key"
    v1 = vinfo(resp.key, 1)
    assert v1.state == pb.PENDING_DESTRUCTION
    assert t0 - 1 + 7 * 86400 <= v1.destroy_time_unix <= t1 + 7 * 86400
    assert d.key("ap-key") == resp.key

    # executed once: a second Execute (no code needed) answers the kept result
    assert d.execute("alice", p.id, with_code=False) == done
    assert d.get(p.id, "carol") == done
    recs = [r for r in d.audit() if r["method"] == "boltseal.v1.KeyService/ScheduleKeyDestruction"]
    assert [(r["principal_id"], r["result"]) for r in recs] == [
        ("alice", "FAILED_PRECONDITION"), ("alice", "FAILED_PRECONDITION"),
        ("carol", "FAILED_PRECONDITION"), ("alice", "OK")], recs
    assert all("approvals that count fall short" in r["reason"] for r in recs[:2]), recs
    assert recs[3]["fields"]["proposal"] == p.id
    # closed: out of the default listing, and no more votes
    assert not d.c("bob").ListProposals(apb.ListProposalsRequest(), timeout=30).proposals
    closed = d.c("bob").ListProposals(apb.ListProposalsRequest(include_closed=True),
                                      timeout=30).proposals
    assert [(x.id, x.state) for x in closed] == [(p.id, apb.EXECUTED)]
    err = refused(FP, d.approve, "bob", p)
    assert "executed" in err.details()


# --- 6. one person, two certificates: one vote ---------------------------------------------

def test_two_certificates_of_one_person_count_once(admins, apb, pb):
    d = admins("admin-twocerts", **{"admin.mfa_window": 2})
    d.create_key("tc-key")
    req = d.schedule_request("tc-key")
    # the token certificate is alice: her factor, her proposals
    assert d.factor("alice", "admin-alice-token") == d.factor("alice")
    p = d.propose("admin-alice", SCHEDULE, req)
    p = d.approve("bob", p)
    err = refused(FP, d.approve, "admin-alice-token", p)
    assert "you proposed" in err.details(), err.details()
    assert [v.principal for v in d.get(p.id).approvals] == ["bob"]

    q = d.propose("carol", SCHEDULE, req)
    q1 = d.approve("admin-alice", q)
    q2 = d.approve("admin-alice-token", q)
    assert [(v.principal, v.identity) for v in q2.approvals] == [
        ("alice", URI_OF["admin-alice"])]
    assert q2 == q1
    err = refused(FP, d.execute, "carol", q.id)
    assert "has 1 that count" in err.details(), err.details()
    assert d.get(q.id).state == apb.PENDING
    assert vinfo(d.key("tc-key"), 1).state == pb.ENABLED
    # a second person makes two
    d.approve("bob", q)
    done = d.execute("carol", q.id)
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    assert vinfo(d.key("tc-key"), 1).state == pb.PENDING_DESTRUCTION
    rec = [r for r in d.audit() if r["method"] == SCHEDULE and r["result"] == "OK"]
    assert len(rec) == 1 and rec[0]["fields"]["approvals"] == "alice,bob", rec


# --- 7. self-approval, wrong hash, missing code, rejection ----------------------------------

def test_self_approval_wrong_hash_missing_code_and_rejection(admins, apb, pb):
    d = admins("admin-reject", **{"admin.mfa_window": 2})
    d.create_key("rj-key")
    req = d.schedule_request("rj-key")
    p = d.propose("alice", SCHEDULE, req)
    alice, bob, carol = d.c("alice"), d.c("bob"), d.c("carol")

    # the proposer neither approves nor rejects her own proposal
    err = refused(FP, d.approve, "alice", p)
    assert "you proposed" in err.details(), err.details()
    err = refused(FP, alice.Reject, apb.RejectRequest(id=p.id, request_sha256=p.request_sha256),
                  metadata=otp(d.code("alice")))
    assert "you proposed" in err.details(), err.details()

    # no code, or a malformed one: UNAUTHENTICATED, before anything else
    for md in (None, otp(""), otp("12345"), otp("1234567"), otp("abcdef")):
        for fn, r in ((bob.Approve, apb.ApproveRequest(id=p.id, request_sha256=p.request_sha256)),
                      (bob.Reject, apb.RejectRequest(id=p.id, request_sha256=p.request_sha256))):
            err = refused(UNAUTH, fn, r, metadata=md)
            if md is None:
                assert err.details().startswith(SF_NEEDED), err.details()
            else:
                assert err.details().startswith("second factor:"), err.details()
    assert d.factor("bob").failures == 0      # malformed codes are not counted

    # a hash that is not the proposal's: the same bytes under another method,
    # another request, no hash at all
    for sha in (proposal_hash("boltseal.v1.KeyService/DisableKey", req),
                proposal_hash(SCHEDULE, d.schedule_request("rj-key", days=8)),
                p.request_sha256.upper()):
        err = refused(FP, d.approve, "bob", p, sha)
        assert "request_sha256 is not" in err.details(), err.details()
    assert d.get(p.id) == p      # nothing recorded

    t0 = int(time.time())
    r = carol.Reject(apb.RejectRequest(id=p.id, request_sha256=p.request_sha256,
                                       reason="not this key"),
                     metadata=otp(d.code("carol")), timeout=30).proposal
    assert r.state == apb.REJECTED and not r.approvals
    assert (r.rejection.principal, r.rejection.identity) == ("carol", URI_OF["admin-carol"])
    assert t0 - 1 <= r.rejection.time_unix <= int(time.time())
    assert r.rejection_reason == "not this key"
    assert d.get(p.id, "bob") == r
    # rejected is final
    err = refused(FP, d.approve, "carol", p)
    assert "rejected" in err.details(), err.details()
    for with_code in (False, True):
        err = refused(FP, d.execute, "alice", p.id, with_code=with_code)
        assert "rejected" in err.details(), err.details()
    assert d.key("rj-key").state == pb.ENABLED
    assert [v.state for v in d.key("rj-key").versions] == [pb.ENABLED]


# --- 8. expiry ------------------------------------------------------------------------------

def test_expired_proposal_is_not_executed(admins, apb, pb):
    d = admins("admin-expiry")
    d.create_key("ex-key")
    time.sleep(1.02 - time.time() % 1)     # propose just after a second starts: ~2 s to vote
    p = d.propose("alice", SCHEDULE, d.schedule_request("ex-key"), ttl=2)
    assert p.expire_time_unix == p.create_time_unix + 2
    d.approve("bob", p)
    p2 = d.approve("carol", p)
    assert len(p2.approvals) == 2 and p2.state == apb.PENDING
    assert time.time() < p.expire_time_unix, "the votes took too long for this test"
    while time.time() < p.expire_time_unix + 0.1:
        time.sleep(0.1)
    err = refused(FP, d.execute, "alice", p.id)
    assert "expired" in err.details(), err.details()
    err = refused(FP, d.approve, "bob", p)
    assert "expired" in err.details(), err.details()
    g = d.get(p.id)
    assert g.state == apb.EXPIRED and len(g.approvals) == 2 and g.execute_time_unix == 0
    assert not d.c("bob").ListProposals(apb.ListProposalsRequest(), timeout=30).proposals
    closed = d.c("bob").ListProposals(apb.ListProposalsRequest(include_closed=True),
                                      timeout=30).proposals
    assert [(x.id, x.state) for x in closed] == [(p.id, apb.EXPIRED)]
    assert vinfo(d.key("ex-key"), 1).state == pb.ENABLED


def approved_destruction(d, key):
    """A new key, its destruction proposed by alice and approved by bob and carol."""
    d.create_key(key)
    p = d.propose("alice", SCHEDULE, d.schedule_request(key))
    d.approve("bob", p)
    p = d.approve("carol", p)
    assert [v.principal for v in p.approvals] == ["bob", "carol"]
    return p


# --- 9. an approver removed from the policy ------------------------------------------------

def test_approver_removed_from_policy_no_longer_counts(admins, apb, pb):
    d = admins("admin-reload")
    p = approved_destruction(d, "rl-key")

    # carol leaves fleet-admin (she audits now)
    d.write_policy(seed_policy(carol_roles="auditor"))
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    err = refused(FP, d.execute, "alice", p.id)
    assert "has 1 that count" in err.details(), err.details()
    assert d.get(p.id) == p
    assert vinfo(d.key("rl-key"), 1).state == pb.ENABLED

    # back in the role, her vote counts again
    d.write_policy(seed_policy())
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    done = d.execute("alice", p.id)
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    assert vinfo(d.key("rl-key"), 1).state == pb.PENDING_DESTRUCTION


# --- 10. a restart ---------------------------------------------------------------------------

def test_proposal_and_factors_survive_a_restart(admins, apb, pb):
    d = admins("admin-restart")
    p = approved_destruction(d, "rs-key")
    used = d.totp("carol").at(d.last["carol"] * STEP)
    d.restart()
    assert d.get(p.id, "bob") == p
    # the factors too, and which code each used last
    err = refused(UNAUTH, d.c("carol").DisableKey, pb.SetKeyStateRequest(name="rs-key"),
                  metadata=otp(used))
    assert "used already" in err.details(), err.details()
    done = d.execute("alice", p.id)
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    assert vinfo(d.key("rs-key"), 1).state == pb.PENDING_DESTRUCTION
    d.restart()
    assert d.get(p.id) == done


# --- 11. the audit trail ---------------------------------------------------------------------

def test_every_step_is_audited(admins, apb, pb):
    d = admins("admin-audit")
    d.create_key("au-key")
    n0 = len(d.audit())
    p = d.propose("alice", SCHEDULE, d.schedule_request("au-key"))
    d.approve("carol", p)           # carol first: the record keeps the votes' order
    d.approve("bob", p)
    done = d.execute("alice", p.id)
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    q = d.propose("alice", RESET, apb.ResetSecondFactorRequest(principal="carol")
                  .SerializeToString(), "test")
    d.c("bob").Reject(apb.RejectRequest(id=q.id, request_sha256=q.request_sha256),
                      metadata=otp(d.code("bob")), timeout=30)
    recs = d.audit()[n0:]

    def one(**want):
        got = [r for r in recs if all(r.get(k) == v for k, v in want.items())]
        assert len(got) == 1, (want, got)
        return got[0]

    fields = {"method": SCHEDULE, "request_sha256": p.request_sha256}
    created = one(method="boltseal.v1.AdminService/Propose", target=p.id)
    assert (created["event"], created["principal_id"], created["result"]) == (
        "proposal_created", "alice", "OK")
    assert created["fields"] == fields, created
    votes = [r for r in recs if r["method"] == "boltseal.v1.AdminService/Approve"]
    assert [(r["principal_id"], r["event"], r["target"], r["result"]) for r in votes] == [
        ("carol", "proposal_approved", p.id, "OK"), ("bob", "proposal_approved", p.id, "OK")]
    assert all(r["fields"] == fields for r in votes), votes
    executed = one(method="boltseal.v1.AdminService/Execute", target=p.id)
    assert (executed["event"], executed["principal_id"], executed["result"]) == (
        "proposal_executed", "alice", "OK")
    assert executed["fields"] == fields, executed
    call = one(method=SCHEDULE, type="rpc")
    assert (call["principal_id"], call["identity"], call["key"], call["result"]) == (
        "alice", URI_OF["admin-alice"], "au-key", "OK"), call
    assert call["fields"]["proposal"] == p.id, call
    assert call["fields"]["approvals"] == ",".join(v.principal for v in done.approvals) == \
        "carol,bob", call
    rejected = one(method="boltseal.v1.AdminService/Reject")
    assert (rejected["event"], rejected["principal_id"], rejected["target"],
            rejected["result"]) == ("proposal_rejected", "bob", q.id, "OK"), rejected
    assert rejected["fields"] == {"method": RESET, "request_sha256": q.request_sha256}
    # in the order they happened; the approved call's record before Execute's own
    seqs = [created["seq"], votes[0]["seq"], votes[1]["seq"], call["seq"], executed["seq"],
            rejected["seq"]]
    assert seqs == sorted(seqs), seqs
    auditutil.check_chain(auditutil.read_lines(d.state_dir))


# --- more: listing, concurrency ---------------------------------------------------------------

def test_list_proposals_in_creation_order_with_pages(admins, apb, pb):
    d = admins("admin-list", factors=("bob",))
    ids = []
    for i in range(3):
        ids.append(d.propose("alice", SCHEDULE, d.schedule_request("k%d" % i)).id)
        time.sleep(0.005)           # ids begin with the creation time in ms
    assert ids == sorted(ids)
    oldest_first = ids
    c = d.c("bob")
    got = c.ListProposals(apb.ListProposalsRequest(), timeout=30)
    assert [x.id for x in got.proposals] == oldest_first and got.next_page_token == ""
    pages, token = [], ""
    while True:
        r = c.ListProposals(apb.ListProposalsRequest(page_size=2, page_token=token), timeout=30)
        pages.append([x.id for x in r.proposals])
        token = r.next_page_token
        if not token:
            break
        assert len(pages) < 5
    assert [i for page in pages for i in page] == oldest_first and len(pages[0]) == 2, pages
    # a rejected one leaves the default listing
    middle = d.get(ids[1])
    c.Reject(apb.RejectRequest(id=middle.id, request_sha256=middle.request_sha256),
             metadata=otp(d.code("bob")), timeout=30)
    assert [x.id for x in c.ListProposals(apb.ListProposalsRequest(),
                                          timeout=30).proposals] == [ids[0], ids[2]]
    assert [x.id for x in c.ListProposals(apb.ListProposalsRequest(include_closed=True),
                                          timeout=30).proposals] == oldest_first


def test_concurrent_codes_votes_and_executions(admins, apb, pb):
    d = admins("admin-race")
    d.create_key("rc-key")
    req = pb.SetKeyStateRequest(name="rc-key")

    def statuses(futures):
        out = []
        for f in futures:
            try:
                out.append((grpc.StatusCode.OK, f.result()))
            except grpc.RpcError as e:
                out.append((e.code(), e.details()))
        return out

    # one code sent four times at once: accepted once
    code = d.code("alice")
    alice = d.c("alice")
    got = statuses([alice.DisableKey.future(req, metadata=otp(code), timeout=30)
                    for _ in range(4)])
    oks = [g for g in got if g[0] == grpc.StatusCode.OK]
    assert len(oks) == 1, got
    for st, detail in got:
        if st != grpc.StatusCode.OK:
            assert (st, detail.startswith("second factor:")) in (
                (UNAUTH, True), (grpc.StatusCode.ABORTED, True)), (st, detail)
    assert d.factor("alice").state == "active"

    # two approvals at once: none is lost (a loser is told to retry)
    p = d.propose("alice", RESET, apb.ResetSecondFactorRequest(principal="carol")
                  .SerializeToString())
    futs = {who: d.c(who).Approve.future(apb.ApproveRequest(
        id=p.id, request_sha256=p.request_sha256), metadata=otp(d.code(who)), timeout=30)
        for who in ("bob", "carol")}
    ok = set()
    for who, (st, _) in zip(futs, statuses(futs.values())):
        assert st in (grpc.StatusCode.OK, grpc.StatusCode.ABORTED), (who, st)
        if st == grpc.StatusCode.OK:
            ok.add(who)
    assert ok, "neither approval went through"
    assert {v.principal for v in d.get(p.id).approvals} == ok
    for who in {"bob", "carol"} - ok:
        d.approve(who, p)
    assert {v.principal for v in d.get(p.id).approvals} == {"bob", "carol"}

    # four Executes at once: the reset runs once
    futs = [alice.Execute.future(apb.ExecuteRequest(id=p.id), timeout=30) for _ in range(4)]
    got = statuses(futs)
    results = [r.proposal for st, r in got if st == grpc.StatusCode.OK]
    assert results, got
    for st, r in got:
        assert st in (grpc.StatusCode.OK, grpc.StatusCode.ABORTED, FP), (st, r)
    for r in results:
        assert r.state == apb.EXECUTED and r.result_status == 0 and r == results[0], r
    calls = [r for r in d.audit() if r["method"] == RESET and r["type"] == "rpc"]
    assert [(r["result"], r["target"]) for r in calls] == [("OK", "carol")], calls
    assert d.factor("carol").state == "none"


# --- 2. codes on a call that requires the second factor ------------------------------------
# Late in the file: erin's factor was activated when the TOTP daemon started,
# and step T-1 must be newer than her activation step (a new 30 s step has
# begun since); by now it often has.

def fresh_step(d, who, left=8.0):
    """The current step T once T-1 is newer than who's last step and at
    least left seconds of T remain."""
    while True:
        now = time.time()
        cur = int(now // STEP)
        if cur - 1 <= d.last.get(who, -1):
            time.sleep((d.last[who] + 2) * STEP - now + 0.5)
        elif STEP - now % STEP < left or now % STEP < 0.5:
            time.sleep((cur + 1) * STEP - now + 0.5 if now % STEP >= 0.5
                       else 0.5 - now % STEP)
        else:
            return cur


def test_codes_on_a_call_that_requires_mfa(totp, apb, pb):
    d = totp
    d.c("alice").CreateKey(pb.CreateKeyRequest(name="tf-codes", purpose=pb.GENERIC,
                                               algorithm=pb.ED25519), timeout=30)
    erin = d.c("erin")
    req = pb.SetKeyStateRequest(name="tf-codes")
    n0 = len(d.audit())
    err = refused(UNAUTH, erin.DisableKey, req)
    assert err.details() == SF_NEEDED

    T = fresh_step(d, "erin")
    t = d.totp("erin")
    secret = d.secret("erin")
    prev = t.at((T - 1) * STEP)
    assert erin.DisableKey(req, metadata=otp(prev), timeout=30).key.state == pb.DISABLED
    d.last["erin"] = T - 1
    err = refused(UNAUTH, erin.DisableKey, req, metadata=otp(prev))
    assert err.details().startswith("second factor:") and "used already" in err.details(), \
        err.details()
    err = refused(UNAUTH, erin.EnableKey, req, metadata=otp(t.at((T - 2) * STEP)))
    assert err.details().startswith("second factor: wrong code (2 of 3"), err.details()
    oath = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True,
                          timeout=30, check=True).stdout.decode().strip()
    assert oath == t.at(T * STEP), (oath, T)
    assert erin.EnableKey(req, metadata=otp(oath), timeout=30).key.state == pb.ENABLED
    d.last["erin"] = T
    err = refused(UNAUTH, erin.DisableKey, req, metadata=otp(t.at((T + 2) * STEP)))
    assert err.details().startswith("second factor: wrong code (1 of 3"), err.details()
    assert erin.DisableKey(req, metadata=otp(t.at((T + 1) * STEP)), timeout=30).key.state == \
        pb.DISABLED
    d.last["erin"] = T + 1
    assert int(time.time() // STEP) == T, "the step changed during the test"
    st = d.factor("erin")
    assert (st.state, st.failures) == ("active", 0)
    assert T * STEP <= st.last_used_unix <= time.time()

    recs = [r for r in d.audit()[n0:] if r["principal_id"] == "erin" and
            r["method"] in ("boltseal.v1.KeyService/DisableKey",
                            "boltseal.v1.KeyService/EnableKey")]
    assert [r["result"] for r in recs] == [
        "UNAUTHENTICATED", "OK", "UNAUTHENTICATED", "UNAUTHENTICATED", "OK",
        "UNAUTHENTICATED", "OK"], recs
    assert "used already" in recs[2]["reason"] and "wrong code" in recs[3]["reason"], recs


# --- 3. lockout, its audit trail, and a reset by proposal --------------------------------
# Last of the TOTP daemon's tests: the only one there that records approvals.

def test_lockout_audit_and_reset_by_two_approvals(totp, apb, pb):
    d = totp
    carol = d.c("carol")
    req = pb.SetKeyStateRequest(name="tf-key")
    n_audit = len(d.audit())
    wrong = d.wrong_code("carol")
    msgs = []
    for _ in range(3):      # admin.mfa_max_failures = 3
        err = refused(UNAUTH, carol.DisableKey, req, metadata=otp(wrong))
        msgs.append(err.details())
    assert all(m.startswith("second factor:") and "wrong code" in m for m in msgs), msgs
    assert "1 of 3 failures" in msgs[0] and "2 of 3 failures" in msgs[1], msgs
    assert "now locked" in msgs[2], msgs
    st = d.factor("carol")
    assert (st.state, st.failures) == ("locked", 3)
    # locked: even the right code is refused (and nothing is disabled)
    err = refused(UNAUTH, carol.DisableKey, req, metadata=otp(d.totp("carol").now()))
    assert err.details().startswith("second factor:") and "locked" in err.details()
    assert d.key("tf-key").state == pb.ENABLED

    # the refusals are audited: the calls' own records, naming the second factor
    recs = [r for r in d.audit()[n_audit:] if r["principal_id"] == "carol" and
            r["method"] == "boltseal.v1.KeyService/DisableKey"]
    assert [r["result"] for r in recs] == ["UNAUTHENTICATED"] * 4, recs
    for r in recs:
        assert r["type"] == "rpc" and r["identity"] == URI_OF["admin-carol"], r
        assert r["reason"].startswith("second factor of principal 'carol': second factor:"), r
    assert ["wrong code (" in r["reason"] for r in recs] == [True, True, True, False], recs
    assert "locked" in recs[3]["reason"] and "now locked" in recs[2]["reason"], recs

    # a reset is not done directly: it needs two approvals of fleet-admin
    alice = d.c("alice")
    reset_req = apb.ResetSecondFactorRequest(principal="carol")
    err = refused(FP, alice.ResetSecondFactor, reset_req)
    assert "needs 2 approvals of role fleet-admin" in err.details(), err.details()
    p = d.propose("alice", RESET, reset_req.SerializeToString(), "carol's factor is locked")
    assert p.request_text == 'principal: "carol"\n', p.request_text
    d.approve("bob", p)
    p = d.approve("dave", p)
    assert [v.principal for v in p.approvals] == ["bob", "dave"]
    p = alice.Execute(apb.ExecuteRequest(id=p.id), timeout=30).proposal  # no mfa needed
    assert p.state == apb.EXECUTED and p.result_status == 0, p
    r = apb.ResetSecondFactorResponse.FromString(p.result_response)
    assert (r.status.principal, r.status.state) == ("carol", "none")
    assert d.factor("carol").state == "none"

    # carol enrols again: a new seed; the old one's codes no longer work
    old = d.secret("carol")
    d.enroll("carol")
    assert d.secret("carol") != old
    assert d.activate("carol").state == "active"
    err = refused(UNAUTH, carol.DisableKey, req, metadata=otp(pyotp.TOTP(old).now()))
    assert "wrong code" in err.details() and "1 of 3" in err.details(), err.details()
    assert carol.DisableKey(req, metadata=otp(d.code("carol")), timeout=30).key.state == \
        pb.DISABLED
    assert d.factor("carol").failures == 0
    assert carol.EnableKey(req, metadata=otp(d.code("carol")), timeout=30).key.state == \
        pb.ENABLED
