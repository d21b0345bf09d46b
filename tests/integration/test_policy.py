# test_policy.py - the seed roles of etc/policy.example, as shipped, against
# a real boltsealed (issue 3): a table-driven test over the six dev
# identities x the twelve KeyService/AuditService methods (allowed or
# PERMISSION_DENIED exactly as the policy says, every denial audited with
# its precise reason), key patterns, key purposes, conditions (ci-signer's
# algorithm condition, fleet-admin's request.purpose != "audit"), default
# deny for a principal whose role has no grants, and ListKeys visibility.
#
# The daemon's policy is etc/policy.example plus, appended, one principal
# "nobody" (a minted certificate) holding a role without grants; nothing
# else of the seed policy is changed. fleet-admin (alice) creates the keys.

import os

import grpc
import pytest

import bsutil
import conftest
import pkitool

SEED = os.path.join(bsutil.SRCDIR, "etc", "policy.example")

NOBODY_URI = "spiffe://fleet.example/nobody/1"
APPENDIX = """
# --- appended by test_policy.py: a principal whose role grants nothing
principal nobody
    uri %s
    roles empty-role

role empty-role
""" % NOBODY_URI

KS = "boltseal.v1.KeyService/"
AS = "boltseal.v1.AuditService/"
METHODS = [KS + m for m in ("CreateKey", "GetKey", "ListKeys", "RotateKey", "GetPublicKey",
                            "Sign", "Verify", "SignBatch")] + \
          [AS + m for m in ("GetCheckpoint", "GetInclusionProof", "GetConsistencyProof",
                            "ReadRecords")]

# dev identity -> (principal id, its roles as a refusal names them, the key its calls name)
IDENTITIES = {
    "ci-ota-release": ("ci-ota-release", "ci-signer", "ci-x"),
    "log-ota-log": ("log-ota-log", "log-signer", "log-x"),
    "svc-dispatch": ("svc-dispatch", "command-issuer,own-certificate", "cmd-x"),
    "gw-eu-west-1": ("gateways", "telemetry-gateway,own-certificate", "tlm-x"),
    "admin-alice": ("alice", "fleet-admin", "adm-x"),
    "audit-ext": ("auditor-ext", "auditor", "audit-log"),
}

# What the seed policy allows each identity (calls naming its own key).
ALLOWED = {
    "ci-ota-release": {"GetKey", "GetPublicKey", "Sign", "Verify", "SignBatch"},
    "log-ota-log": {"GetKey", "GetPublicKey", "Sign"},
    "svc-dispatch": {"GetKey", "GetPublicKey", "Sign"},
    "gw-eu-west-1": {"GetKey"},
    "admin-alice": {"CreateKey", "GetKey", "ListKeys", "RotateKey", "GetPublicKey"},
    "audit-ext": {"GetKey", "GetPublicKey", "GetCheckpoint", "GetInclusionProof",
                  "GetConsistencyProof", "ReadRecords"},
}

# name -> (purpose, algorithm) of the keys alice creates (field names of pb)
KEYS = {
    "ci-x": ("GENERIC", "ECDSA_P256_SHA256"),
    "ci-ed": ("GENERIC", "ED25519"),
    "ci-rsa": ("GENERIC", "RSA_3072_PSS_SHA256"),
    "ci-ota": ("OTA", "ECDSA_P256_SHA256"),
    "log-x": ("GENERIC", "ECDSA_P256_SHA256"),
    "cmd-x": ("GENERIC", "ECDSA_P256_SHA256"),
    "tlm-x": ("ENVELOPE", "AES_256_GCM"),
    "tlm-gen": ("GENERIC", "ECDSA_P256_SHA256"),
    "adm-x": ("GENERIC", "ED25519"),
}

# Outcomes that are not an authorization refusal.
NOT_AUTHZ = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS}


def seed_lines():
    """{(role, grant index): line} and {(role, grant index): [when lines]}
    of the seed policy, 1-based, for the reasons' "policy line N"."""
    grants, conds = {}, {}
    role, gi = None, -1
    with open(SEED) as f:
        for no, line in enumerate(f, 1):
            words = line.split("#")[0].split()
            if not words:
                continue
            if words[0] == "role":
                role, gi = words[1], -1
            elif words[0] == "principal":
                role = None
            elif words[0] == "grant" and role is not None:
                gi += 1
                grants[(role, gi)] = no
                conds[(role, gi)] = []
            elif words[0] == "when" and role is not None:
                conds[(role, gi)].append(no)
    return grants, conds


class PolEnv:
    def __init__(self, env, sd, daemon, nobody, apb):
        self.env = env
        self.sd = sd
        self.daemon = daemon
        self.nobody = nobody
        self.pb = env.stubs.pb
        self.hpb = env.stubs.hpb
        self.apb = apb
        self.channels = []
        self.clients = {}
        self.spki = {}

    def client(self, ident):
        """(Client, AuditService callables) of a dev identity or "nobody"."""
        if ident not in self.clients:
            cert, key = self.nobody if ident == "nobody" else self.env.client_files(ident)
            ch = bsutil.local_channel(self.sd.port, self.env.ca, cert, key)
            self.channels.append(ch)
            self.clients[ident] = (bsutil.Client(ch, self.env.stubs),
                                   bsutil.audit_callables(ch, self.apb))
        return self.clients[ident]

    def audit(self):
        return bsutil.audit_records(self.sd.state_dir)


@pytest.fixture(scope="module")
def pol(env, tmp_path_factory):
    sd = conftest.SecondDaemon(env, "policy")
    penv = None
    try:
        policy = os.path.join(sd.dir, "policy")
        with open(policy, "w") as f:
            f.write(bsutil.read(SEED).decode() + APPENDIX)
        os.chmod(policy, 0o644)
        nobody = pkitool.mint_client(pkitool.dev_ca(env.pki), os.path.join(sd.dir, "certs"),
                                     "nobody", NOBODY_URI)
        sd.settings["policy"] = policy
        bsutil.write_config(sd.conf, sd.settings)
        daemon = sd.start()
        apb = bsutil.load_audit_pb(str(tmp_path_factory.mktemp("auditstubs")))
        penv = PolEnv(env, sd, daemon, nobody, apb)
        pb = penv.pb
        alice = penv.client("admin-alice")[0]
        for name, (purpose, alg) in KEYS.items():
            r = alice.CreateKey(pb.CreateKeyRequest(name=name, purpose=getattr(pb, purpose),
                                                    algorithm=getattr(pb, alg)), timeout=60)
            assert r.key.name == name
            if purpose != "ENVELOPE":     # an envelope key is a secret key: no public key
                penv.spki[name] = alice.GetPublicKey(pb.GetPublicKeyRequest(name=name),
                                                     timeout=15).der
        yield penv
    finally:
        if penv is not None:
            for ch in penv.channels:
                ch.close()
            rc, tail = penv.daemon.terminate(15.0), penv.daemon.log_tail(60)
        else:
            rc, tail = 0, ""
        sd.cleanup()
    # under ASan this also says: no leak, no error report
    assert rc == 0, "boltsealed exited with %r after SIGTERM; log tail:\n%s" % (rc, tail)


def request_for(pol, method, key, ident):
    """A representative request of method naming key."""
    pb, apb = pol.pb, pol.apb
    short = method.split("/")[1]
    return {
        "CreateKey": lambda: pb.CreateKeyRequest(name="new-" + ident, purpose=pb.GENERIC,
                                                 algorithm=pb.ED25519),
        "GetKey": lambda: pb.GetKeyRequest(name=key),
        "ListKeys": lambda: pb.ListKeysRequest(),
        "RotateKey": lambda: pb.RotateKeyRequest(name=key),
        "GetPublicKey": lambda: pb.GetPublicKeyRequest(name=key),
        "Sign": lambda: pb.SignRequest(key_name=key, message=b"table " + ident.encode()),
        "Verify": lambda: pb.VerifyRequest(key_name=key, message=b"m", signature=b"\x01" * 64),
        "SignBatch": lambda: pb.SignBatchRequest(
            key_name=key, items=[pb.SignBatchItem(message=b"one"),
                                 pb.SignBatchItem(message=b"two")]),
        "GetCheckpoint": lambda: apb.GetCheckpointRequest(),
        "GetInclusionProof": lambda: apb.GetInclusionProofRequest(leaf_index=0),
        "GetConsistencyProof": lambda: apb.GetConsistencyProofRequest(first_size=1),
        "ReadRecords": lambda: apb.ReadRecordsRequest(start=0, max_records=1),
    }[short]()


def call(pol, ident, method, req):
    """Calls method as ident; returns (status code, details, response or
    None, the call records ("rpc") the call added for ident's principal;
    a key change's own "key" record, written before it, is not among them)."""
    c, audit = pol.client(ident)
    short = method.split("/")[1]
    fn = getattr(c, short) if method.startswith(KS) else audit[short]
    n = len(pol.audit())
    try:
        resp = fn(req, timeout=60)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        resp, code, details = None, e.code(), e.details()
    pid = "nobody" if ident == "nobody" else IDENTITIES[ident][0]
    recs = [r for r in pol.audit()[n:] if r["method"] == method and r["principal_id"] == pid
            and r["type"] == "rpc"]
    return code, details, resp, recs


def assert_denied(pol, ident, method, req, reason=None, contains=()):
    code, details, _, recs = call(pol, ident, method, req)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (ident, method, code, details)
    assert bsutil.denied(details)       # generic: nothing about why
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["type"] == "rpc" and r["result"] == "PERMISSION_DENIED", r
    if reason is not None:
        assert r["reason"] == reason, r
    for s in contains:
        assert s in r["reason"], (s, r)
    return r


def assert_allowed(pol, ident, method, req, codes=(grpc.StatusCode.OK,)):
    code, details, resp, recs = call(pol, ident, method, req)
    assert code in codes, (ident, method, code, details)
    assert len(recs) == 1, recs
    assert recs[0]["result"] == code.name, recs
    return resp


@pytest.mark.parametrize("method", METHODS, ids=[m.split("/")[1] for m in METHODS])
@pytest.mark.parametrize("ident", list(IDENTITIES))
def test_role_method_table(pol, ident, method):
    pid, role, key = IDENTITIES[ident]
    short = method.split("/")[1]
    req = request_for(pol, method, key, ident)
    if short in ALLOWED[ident]:
        code, details, resp, recs = call(pol, ident, method, req)
        assert code == grpc.StatusCode.OK or code in NOT_AUTHZ, (code, details)
        assert len(recs) == 1 and recs[0]["result"] == code.name, recs
        if short in ("Sign", "SignBatch", "GetKey", "GetPublicKey", "RotateKey", "CreateKey",
                     "ListKeys", "ReadRecords"):
            # these must really work with the requests above
            assert code == grpc.StatusCode.OK, (code, details)
        if short == "Sign":
            assert bsutil.crypto_verify(resp.algorithm, pol.spki[key], req.message, False,
                                        resp.signature)
    else:
        # no grant of the role names the method: refused before the handler
        assert_denied(pol, ident, method, req,
                      reason="no role of principal '%s' (%s) grants %s" % (pid, role, method))


def test_key_patterns(pol):
    grants, _ = seed_lines()
    pb = pol.pb
    # ci-signer may not sign with the log-signer's key, and vice versa
    assert_denied(pol, "ci-ota-release", KS + "Sign", pb.SignRequest(key_name="log-x",
                                                                      message=b"p"),
                  reason="role ci-signer grant at policy line %d: key 'log-x' matches no "
                  "keys pattern" % grants[("ci-signer", 0)])
    assert_denied(pol, "log-ota-log", KS + "Sign", pb.SignRequest(key_name="ci-x",
                                                                   message=b"p"),
                  contains=("role log-signer grant at policy line %d" %
                            grants[("log-signer", 0)], "matches no keys pattern"))
    r = assert_allowed(pol, "log-ota-log", KS + "Sign", pb.SignRequest(key_name="log-x",
                                                                       message=b"log"))
    assert bsutil.crypto_verify(r.algorithm, pol.spki["log-x"], b"log", False, r.signature)
    # a key that does not exist: the policy answers first, so a caller
    # learns nothing about keys outside its grants. A grant with purposes
    # cannot match a key without one (so even cmd-nothere is denied) ...
    assert_denied(pol, "svc-dispatch", KS + "GetKey", pb.GetKeyRequest(name="ci-nothere"),
                  contains=("matches no keys pattern",))
    assert_denied(pol, "svc-dispatch", KS + "GetKey", pb.GetKeyRequest(name="cmd-nothere"),
                  contains=("key 'cmd-nothere' has no purpose",))
    # ... a grant without purposes (fleet-admin's keys *) lets NOT_FOUND through
    assert_allowed(pol, "admin-alice", KS + "GetKey", pb.GetKeyRequest(name="cmd-nothere"),
                   codes=(grpc.StatusCode.NOT_FOUND,))
    # ci-signer signs with its own keys, Ed25519 and ECDSA P-256 (last:
    # the ECDSA case is the one the algorithm condition must let through)
    for key in ("ci-ed", "ci-x"):
        r = assert_allowed(pol, "ci-ota-release", KS + "Sign",
                           pb.SignRequest(key_name=key, message=b"pattern"))
        assert bsutil.crypto_verify(r.algorithm, pol.spki[key], b"pattern", False, r.signature)


def test_purposes(pol):
    pb = pol.pb
    assert_allowed(pol, "gw-eu-west-1", KS + "GetKey", pb.GetKeyRequest(name="tlm-x"))
    assert_denied(pol, "gw-eu-west-1", KS + "GetKey", pb.GetKeyRequest(name="tlm-gen"),
                  contains=("purpose 'generic' of key 'tlm-gen' is not in the grant's purposes",))
    # ci-signer's grants allow purpose ota; KeyService itself signs only
    # with generic keys (a refusal of another kind, after the policy said yes)
    assert_allowed(pol, "ci-ota-release", KS + "GetPublicKey",
                   pb.GetPublicKeyRequest(name="ci-ota"))
    assert_allowed(pol, "ci-ota-release", KS + "Sign",
                   pb.SignRequest(key_name="ci-ota", message=b"x"),
                   codes=(grpc.StatusCode.FAILED_PRECONDITION,))
    # the auditor reads only audit keys
    assert_allowed(pol, "audit-ext", KS + "GetPublicKey",
                   pb.GetPublicKeyRequest(name="audit-log"))
    assert_denied(pol, "audit-ext", KS + "GetKey", pb.GetKeyRequest(name="ci-x"),
                  contains=("purpose 'generic' of key 'ci-x' is not in the grant's purposes",))


def test_condition_on_ci_signer_algorithm(pol):
    grants, conds = seed_lines()
    pb = pol.pb
    # GetPublicKey's grant has no condition: RSA allowed
    assert_allowed(pol, "ci-ota-release", KS + "GetPublicKey",
                   pb.GetPublicKeyRequest(name="ci-rsa"))
    assert_allowed(pol, "ci-ota-release", KS + "GetKey", pb.GetKeyRequest(name="ci-rsa"))
    # Sign/SignBatch's grant: key.algorithm in ["ecdsa-p256-sha256", "ed25519"]
    prefix = "role ci-signer grant at policy line %d: condition at line %d failed: " % (
        grants[("ci-signer", 0)], conds[("ci-signer", 0)][0])
    r1 = assert_denied(pol, "ci-ota-release", KS + "Sign",
                       pb.SignRequest(key_name="ci-rsa", message=b"no rsa"),
                       contains=(prefix + "key.algorithm in",))
    r2 = assert_denied(pol, "ci-ota-release", KS + "SignBatch",
                       pb.SignBatchRequest(key_name="ci-rsa",
                                           items=[pb.SignBatchItem(message=b"no")]),
                       contains=(prefix + "key.algorithm in",))
    assert r1["key"] == "ci-rsa" and r2["key"] == "ci-rsa"
    assert not r1["payload_sha256"]         # nothing was signed
    # the value, named as docs/policy.md documents key.algorithm
    assert r1["reason"].endswith('(value "rsa-3072-pss-sha256")'), r1["reason"]


def test_fleet_admin_cannot_create_or_rotate_audit_keys(pol):
    grants, conds = seed_lines()
    pb = pol.pb
    line = conds[("fleet-admin", 0)][0]
    r = assert_denied(pol, "admin-alice", KS + "CreateKey",
                      pb.CreateKeyRequest(name="adm-audit", purpose=pb.AUDIT,
                                          algorithm=pb.ED25519),
                      contains=("role fleet-admin grant at policy line %d" %
                                grants[("fleet-admin", 0)],
                                "condition at line %d failed" % line,
                                'request.purpose != "audit"'))
    assert r["key"] == "adm-audit"
    # RotateKey sees request.purpose = the key's purpose
    assert_denied(pol, "admin-alice", KS + "RotateKey", pb.RotateKeyRequest(name="audit-log"),
                  contains=("condition at line %d failed" % line,))
    # nothing was created: alice may GetKey every key
    assert_allowed(pol, "admin-alice", KS + "GetKey", pb.GetKeyRequest(name="adm-audit"),
                   codes=(grpc.StatusCode.NOT_FOUND,))
    r = assert_allowed(pol, "admin-alice", KS + "GetKey", pb.GetKeyRequest(name="audit-log"))
    assert len(r.key.versions) == 1
    # other purposes are fine
    assert_allowed(pol, "admin-alice", KS + "CreateKey",
                   pb.CreateKeyRequest(name="adm-cmd", purpose=pb.COMMAND,
                                       algorithm=pb.ECDSA_P256_SHA256))


def test_default_deny(pol):
    pb = pol.pb
    for method, req in ((KS + "GetKey", pb.GetKeyRequest(name="ci-x")),
                        (KS + "ListKeys", pb.ListKeysRequest()),
                        (KS + "Sign", pb.SignRequest(key_name="ci-x", message=b"x")),
                        (AS + "GetCheckpoint", pol.apb.GetCheckpointRequest())):
        assert_denied(pol, "nobody", method, req,
                      reason="no role of principal 'nobody' (empty-role) grants %s" % method)
    # mapped, so Health (exempt from the policy) answers
    c = pol.client("nobody")[0]
    assert c.HealthCheck(pol.hpb.HealthCheckRequest(), timeout=15).status == \
        pol.hpb.HealthCheckResponse.SERVING


def test_list_keys_visibility(pol):
    pb = pol.pb
    r = assert_allowed(pol, "admin-alice", KS + "ListKeys", pb.ListKeysRequest(page_size=1000))
    names = {k.name for k in r.keys}
    assert set(KEYS) | {"audit-log"} <= names, names
    # the seed policy grants ListKeys only to fleet-admin
    for ident in ("audit-ext", "ci-ota-release", "gw-eu-west-1"):
        assert_denied(pol, ident, KS + "ListKeys", pb.ListKeysRequest())
