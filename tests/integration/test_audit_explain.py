# test_audit_explain.py - a refused call tells its caller only "permission
# denied (request id ID: the reason is in the audit log)" and the CLI says
# how to read why; `boltseal audit explain ID`, as an auditor, prints the
# precise reason from the audit log (text and --json); unknown and
# malformed ids.
import json
import re

import bsutil


def test_denial_names_its_request_and_explain_reads_why(env):
    gw = bsutil.cli_runner(env, "gw-eu-west-1")
    rc, out, err = gw("keys", "sign", "ci-nothing", "--message", "x")
    assert rc == 4, (rc, out, err)
    m = re.search(r"PERMISSION_DENIED: permission denied \(request id ([0-9a-f]{16}): the reason "
                  r"is in the audit log\)", err)
    assert m, err
    rid = m.group(1)
    assert "an auditor reads why with: boltseal audit explain %s" % rid in err, err

    auditor = bsutil.cli_runner(env, "audit-ext")
    rc, out, err = auditor("audit", "explain", rid)
    assert rc == 0, (out, err)
    assert "method:        boltseal.v1.KeyService/Sign" in out, out
    assert "result:        PERMISSION_DENIED" in out, out
    reason = re.search(r"reason:\s+(.*)", out).group(1)
    assert reason not in ("", "-") and "gateways" in reason, out
    rc, out, err = auditor("--json", "audit", "explain", rid)
    recs = json.loads(out)["records"]
    assert rc == 0 and recs and all(r["request_id"] == rid for r in recs), out
    assert recs[0]["reason"] == reason

    rc, out, err = auditor("audit", "explain", "ffffffffffffffff")
    assert rc == 1 and "no record of request ffffffffffffffff" in err, (rc, out, err)
    rc, out, err = auditor("audit", "explain", "nope")
    assert rc == 2 and "not a request id" in err, (rc, out, err)

