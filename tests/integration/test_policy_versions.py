# test_policy_versions.py - the authorization policy's versions
# (AdminService/GetPolicy and SetPolicy, docs/admin.md "Policy changes"):
# the policy file as the bootstrap (version 1 at the first start, a new
# version only when the file changed, at start-up or on SIGHUP), a change
# through the API behind two other administrators' approvals under the seed
# policy, in force at once, across restarts and reloads of an unchanged file,
# until the file is edited; validation as `boltsealed -n` does it; the
# compare-and-set on base_version; every version kept with its diff; the
# audit records; and the CLI (`policy show|set`, `propose policy-set`, the
# diff `proposals show` prints). Clients are python3-grpcio and the CLI.
import hashlib
import os
import subprocess

import grpc

import bsutil
from test_admin import FP, DENIED, INVALID, NOT_FOUND, otp, refused, seed_policy
from test_admin import admins, apb  # noqa: F401  (fixtures, used by name)

SET = "boltseal.v1.AdminService/SetPolicy"
ABORTED = grpc.StatusCode.ABORTED

# What the auditor may do beyond the seed policy in the changed versions: list keys.
AUDITOR_GRANT = "    grant\n        methods boltseal.v1.AuditService/*\n"
LISTING = AUDITOR_GRANT + "    grant\n        methods boltseal.v1.KeyService/ListKeys\n"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def with_listing(text):
    assert text.count(AUDITOR_GRANT) == 1
    return text.replace(AUDITOR_GRANT, LISTING)


def direct_set_policy(text):
    """The seed policy with SetPolicy granted to fleet-admin without approvals or
    second factor (to test validation without a proposal per attempt)."""
    gated = ("        methods boltseal.v1.AdminService/SetPolicy\n"
             "        require approvals 2 of fleet-admin\n"
             "        require mfa\n")
    assert text.count(gated) == 1, "etc/policy.example no longer gates SetPolicy so"
    return text.replace(gated, "        methods boltseal.v1.AdminService/SetPolicy\n")


def can_list(d):
    """Whether the auditor's certificate may ListKeys now."""
    ch = bsutil.make_channel(d.inst.port, d.env.ca, *d.env.client_files("audit-ext"))
    try:
        lk = ch.unary_unary(
            "/boltseal.v1.KeyService/ListKeys",
            request_serializer=d.pb.ListKeysRequest.SerializeToString,
            response_deserializer=d.pb.ListKeysResponse.FromString)
        try:
            lk(d.pb.ListKeysRequest(), timeout=30)
            return True
        except grpc.RpcError as e:
            assert e.code() == DENIED, (e.code(), e.details())
            return False
    finally:
        ch.close()


def get(d, version=0, ident="alice"):
    return d.c(ident).GetPolicy(d.apb.GetPolicyRequest(version=version), timeout=30)


def policy_records(d):
    return [r for r in d.audit() if r.get("event") == "policy_set"]


def cli(d, ident, *args):
    cert, key = d.env.client_files(ident)
    e = {k: v for k, v in os.environ.items() if not k.startswith("BOLTSEAL_")}
    p = subprocess.run([os.path.join(bsutil.BUILDDIR, "boltseal"), "--server",
                        "127.0.0.1:%d" % d.inst.port, "--ca", d.env.ca, "--cert", cert,
                        "--key", key] + list(args),
                       env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_file_is_the_bootstrap_and_edits_become_versions(admins, apb):
    d = admins("pol-file", factors=())
    seed = seed_policy()
    r = get(d)
    v = r.policy
    assert (v.version, r.current_version, v.source) == (1, 1, apb.POLICY_SOURCE_FILE), r
    assert v.policy_text == seed and v.sha256 == sha(seed) == v.file_sha256, v
    assert r.diff == "" and v.set_by == ""
    recs = policy_records(d)
    assert len(recs) == 1 and recs[0]["type"] == "policy", recs
    assert recs[0]["fields"]["version"] == "1" and recs[0]["fields"]["source"] == "file"
    assert recs[0]["fields"]["sha256"] == sha(seed)

    # an unchanged file: no new version, at a restart or a reload
    d.restart()
    assert get(d).current_version == 1
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    assert get(d).current_version == 1 and len(policy_records(d)) == 1

    # an edited file becomes version 2, in force at once; version 1 is kept
    assert not can_list(d)
    d.write_policy(with_listing(seed))
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    r = get(d)
    assert (r.policy.version, r.policy.source) == (2, apb.POLICY_SOURCE_FILE), r
    assert "+        methods boltseal.v1.KeyService/ListKeys\n" in r.diff, r.diff
    assert r.diff.startswith("--- policy v1\n+++ policy v2\n@@ "), r.diff
    assert can_list(d)
    old = get(d, version=1)
    assert old.policy.policy_text == seed and old.current_version == 2
    recs = policy_records(d)
    assert [x["fields"]["version"] for x in recs] == ["1", "2"], recs
    assert "KeyService/ListKeys" in recs[1]["fields"]["diff"]
    refused(NOT_FOUND, d.c("alice").GetPolicy, apb.GetPolicyRequest(version=3))
    # the auditor reads the policy too; a CI identity does not
    assert get(d, ident="audit-ext").current_version == 2
    refused(DENIED, d.c("ci-ota-release").GetPolicy, apb.GetPolicyRequest())


def test_set_policy_by_two_approvals_stays_until_the_file_changes(admins, apb):
    d = admins("pol-set")
    seed = seed_policy()
    new = with_listing(seed)
    req = apb.SetPolicyRequest(policy_text=new, base_version=1)

    # alone, even with the second factor: it needs approvals
    err = refused(FP, d.c("alice").SetPolicy, req, metadata=otp(d.code("alice")))
    assert "2 approvals of role fleet-admin" in err.details(), err.details()
    assert get(d).current_version == 1

    p = d.propose("alice", SET, req.SerializeToString(), description="auditors list keys")
    d.approve("bob", p)
    d.approve("carol", p)
    assert not can_list(d)
    done = d.execute("alice", p.id)
    assert done.state == apb.EXECUTED and done.result_status == 0, done
    res = apb.SetPolicyResponse.FromString(done.result_response)
    assert res.policy.version == 2 and res.policy.sha256 == sha(new), res
    assert "+        methods boltseal.v1.KeyService/ListKeys\n" in res.diff, res.diff
    assert can_list(d)
    r = get(d)
    v = r.policy
    assert (v.version, v.source, v.set_by) == (2, apb.POLICY_SOURCE_API, "alice"), r
    assert v.policy_text == new and v.file_sha256 == sha(seed), v
    # the execution's record names the approvals and carries the diff
    rec = [x for x in d.audit() if x.get("event") == "policy_set" and x["type"] == "rpc"]
    assert len(rec) == 1, rec
    f = rec[0]["fields"]
    assert f["version"] == "2" and f["base_version"] == "1" and f["sha256"] == sha(new), f
    assert f["proposal"] == p.id and "bob" in f["approvals"] and "carol" in f["approvals"], f
    assert "KeyService/ListKeys" in f["diff"], f

    # a second proposal on the same base can no longer execute: ABORTED, nothing changes
    p2 = d.propose("alice", SET, req.SerializeToString())
    d.approve("bob", p2)
    d.approve("carol", p2)
    done = d.execute("alice", p2.id)
    assert done.result_status == grpc.StatusCode.ABORTED.value[0], done
    assert "version 2, not base_version 1" in done.result_message, done
    assert get(d).current_version == 2

    # in force across a restart and a reload of the unchanged file
    d.restart()
    assert get(d).current_version == 2 and can_list(d)
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    assert get(d).current_version == 2 and can_list(d)

    # an edited file wins: version 3, from the file
    d.write_policy(seed + "\n# edited by the operator\n")
    rec = bsutil.sighup(d.daemon)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    r = get(d)
    assert (r.policy.version, r.policy.source) == (3, apb.POLICY_SOURCE_FILE), r
    assert "-        methods boltseal.v1.KeyService/ListKeys\n" in r.diff, r.diff
    assert not can_list(d)


def test_set_policy_validates_like_check_mode(admins, apb):
    d = admins("pol-valid", factors=())
    d.write_policy(direct_set_policy(seed_policy()))
    d.restart()
    base = get(d).current_version
    assert base == 2
    c = d.c("alice")

    err = refused(INVALID, c.SetPolicy, apb.SetPolicyRequest(
        policy_text="role x\n    grant\n        methods boltseal.v1.NoService/Nope\n"
                    "this is not a policy line\n", base_version=base))
    assert "policy_text:3:" in err.details() and "policy_text:4:" in err.details(), err.details()
    for text, want in (("", "1 to 24000 bytes"), ("#" * 24001, "1 to 24000 bytes")):
        err = refused(INVALID, c.SetPolicy, apb.SetPolicyRequest(policy_text=text,
                                                                 base_version=base))
        assert want in err.details(), err.details()
    err = refused(INVALID, c.SetPolicy, apb.SetPolicyRequest(policy_text=seed_policy()))
    assert "base_version" in err.details(), err.details()
    err = refused(ABORTED, c.SetPolicy, apb.SetPolicyRequest(
        policy_text=seed_policy(), base_version=base - 1))
    assert "version %d, not base_version %d" % (base, base - 1) in err.details()
    assert get(d).current_version == base

    # accepted with the warnings -n prints; the text is the one GetPolicy returns
    text = direct_set_policy(seed_policy()) + (
        "\nprincipal loose\n    uri-prefix spiffe://fleet.example/loose\n    roles auditor\n")
    r = c.SetPolicy(apb.SetPolicyRequest(policy_text=text, base_version=base), timeout=30)
    assert r.policy.version == base + 1 and r.policy.policy_text == "", r
    assert any("uri-prefix" in w for w in r.warnings), r.warnings
    assert get(d).policy.policy_text == text
    # a caller without the grant
    refused(DENIED, d.c("audit-ext").SetPolicy, apb.SetPolicyRequest(policy_text=text,
                                                                     base_version=base + 1))


def test_cli_policy_commands(admins, apb, tmp_path):
    d = admins("pol-cli", factors=("alice", "bob", "carol"))
    seed = seed_policy()
    rc, out, err = cli(d, "admin-alice", "policy", "show")
    assert rc == 0 and "version:         1 (in force)" in out and "source:          file" in out
    assert out.endswith(seed), out[-200:]
    path = str(tmp_path / "policy.new")
    with open(path, "w") as f:
        f.write(with_listing(seed))
    # direct: refused for want of approvals, with the command that proposes it
    rc, out, err = cli(d, "admin-alice", "--otp", d.code("alice"), "policy", "set", path)
    assert rc == 4 and "propose policy-set %s --base-version 1" % path in err, (rc, out, err)
    rc, out, err = cli(d, "admin-alice", "propose", "policy-set", path)
    assert rc == 0, (rc, out, err)
    pid = [ln.split()[-1] for ln in out.splitlines() if ln.startswith("id:")][0]
    # the approver sees the change as a diff against version 1
    rc, out, err = cli(d, "admin-bob", "proposals", "show", pid)
    assert rc == 0, (rc, out, err)
    assert "The change, from policy version 1 (the version in force is 1):" in out, out
    assert "+        methods boltseal.v1.KeyService/ListKeys\n" in out, out
    assert "proposals approve %s --hash " % pid in out
    p = d.get(pid)
    d.approve("bob", p)
    d.approve("carol", p)
    rc, out, err = cli(d, "admin-alice", "--otp", d.code("alice"), "proposals", "execute", pid)
    assert rc == 0, (rc, out, err)
    rc, out, err = cli(d, "admin-alice", "policy", "show", "--diff")
    assert rc == 0 and "version:         2 (in force)" in out and "source:          SetPolicy" in out
    assert "+        methods boltseal.v1.KeyService/ListKeys\n" in out, out
    rc, out, err = cli(d, "admin-alice", "--json", "policy", "show", "--version", "1")
    assert rc == 0 and '"current_version":2' in out.replace(" ", "") and '"version":1' in \
        out.replace(" ", ""), out
    rc, out, err = cli(d, "admin-alice", "policy", "show", "--version", "x")
    assert rc == 2, (rc, out, err)
