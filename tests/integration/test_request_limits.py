# test_request_limits.py - bounded work per request (issue 8, item 7), with
# a real boltsealed of its own (conftest's second_daemon):
#   - the unknown-field flood: a 64 KiB message of 2-byte unknown fields to
#     grpc.health.v1.Health/Check (open to every mapped principal) is
#     refused RESOURCE_EXHAUSTED before protobuf-c decodes it, at once, and
#     the daemon keeps serving; the refusal is audited like any other;
#   - a request with more known fields than max_request_fields (a repeated
#     singular field, and repeated nested messages) is refused the same way;
#   - per-principal rate limits: with rate_limit_calls = 5, a burst of 20
#     calls from one principal gets RESOURCE_EXHAUSTED, another principal is
#     not affected, the first recovers a second later, and the audit log
#     holds summary records ("rate_limited", with the count) instead of one
#     record per refused call.

import concurrent.futures
import time

import grpc

import bsutil

HEALTH = "/grpc.health.v1.Health/Check"
SIGN_BATCH = "/boltseal.v1.KeyService/SignBatch"
CI = "ci-ota-release"
OTHER = "log-ota-log"


def start(second_daemon, tag, **overrides):
    sd = second_daemon(tag)
    sd.settings.update(overrides)
    bsutil.write_config(sd.conf, sd.settings)
    return sd, sd.start()


def client(sd, env, ident):
    cert, key = env.client_files(ident)
    return bsutil.Client(bsutil.local_channel(sd.port, env.ca, cert, key), env.stubs)


def unknown_flood(size):
    """A message of size bytes: 2-byte unknown fields (field 15, varint 0)."""
    assert size % 2 == 0
    return b"\x78\x00" * (size // 2)


def serving(c, hpb):
    return c.HealthCheck(hpb.HealthCheckRequest(), timeout=15).status == \
        hpb.HealthCheckResponse.SERVING


def test_unknown_field_flood_and_field_cap(env, second_daemon):
    sd, d = start(second_daemon, "fields", max_request_fields=1000)
    c = client(sd, env, CI)
    hpb = env.stubs.hpb
    try:
        raw = c.raw(HEALTH, hpb.HealthCheckResponse)
        # the finding: 2-byte unknown fields filling the message size cap
        flood = unknown_flood(65536)
        for _ in range(5):
            t0 = time.monotonic()
            e = bsutil.rpc_error(raw, flood, timeout=10)
            elapsed = time.monotonic() - t0
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
            assert e.details() == "request has more than 64 unknown fields"
            assert elapsed < 2.0, elapsed
        # 64 unknown fields are still accepted (a newer client's extra fields)
        assert raw(unknown_flood(128), timeout=10).status == hpb.HealthCheckResponse.SERVING
        # known fields count too: field 1 (service) given 1001 times
        e = bsutil.rpc_error(raw, b"\x0a\x00" * 1001, timeout=10)
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
        assert e.details() == "request has more than 1000 fields"
        assert raw(b"\x0a\x00" * 1000, timeout=10).status == hpb.HealthCheckResponse.SERVING
        # ... and the fields of nested messages: key_name and 500 SignBatchItems of 2 fields
        pb = env.stubs.pb
        req = pb.SignBatchRequest(key_name="ci-none", items=[
            pb.SignBatchItem(message=b"m") for _ in range(500)]).SerializeToString()
        e = bsutil.rpc_error(c.raw(SIGN_BATCH), req, timeout=10)
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
        assert e.details() == "request has more than 1000 fields"
        # a malformed message is still refused as malformed
        e = bsutil.rpc_error(raw, b"\x78\x00\x78", timeout=10)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
        # still healthy, for this client and for a new one
        assert serving(c, hpb)
        c2 = client(sd, env, OTHER)
        try:
            assert serving(c2, hpb)
        finally:
            c2.close()
        assert d.proc.poll() is None
        # the refusals are audited like any other
        recs = bsutil.wait_audit(sd.state_dir, lambda r: r["type"] == "rpc" and
                                 r["reason"] == "request has more than 64 unknown fields",
                                 count=5)
        assert all(r["result"] == "RESOURCE_EXHAUSTED" and r["principal_id"] == CI and
                   r["method"] == "grpc.health.v1.Health/Check" for r in recs)
        bsutil.wait_audit(sd.state_dir, lambda r: r["type"] == "rpc" and
                          r["method"] == "boltseal.v1.KeyService/SignBatch" and
                          r["reason"] == "request has more than 1000 fields")
    finally:
        c.close()
        bsutil.stop_clean(d)


def test_rate_limit_per_principal(env, second_daemon):
    sd, d = start(second_daemon, "rate", rate_limit_calls=5)
    c = client(sd, env, CI)
    other = client(sd, env, OTHER)
    hpb = env.stubs.hpb
    try:
        req = hpb.HealthCheckRequest()
        futures = [c.HealthCheck.future(req, timeout=15) for _ in range(20)]
        ok = limited = 0
        for f in futures:
            try:
                f.result()
                ok += 1
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
                assert e.details() == ("rate limit exceeded: principal 'ci-ota-release' may "
                                       "make 5 calls per second; retry later")
                limited += 1
        assert limited >= 1 and ok >= 1 and ok + limited == 20, (ok, limited)
        # another principal has a budget of its own
        assert serving(other, hpb)
        # a second later the first one is served again
        time.sleep(1.2)
        assert serving(c, hpb)
        # the refusals are summarised: one record per principal per second, with the count
        summaries = bsutil.wait_audit(sd.state_dir, lambda r: r["event"] == "rate_limited",
                                      timeout=10)
        deadline = time.monotonic() + 5
        while sum(int(r["fields"]["rate.refused"]) for r in summaries) < limited and \
                time.monotonic() < deadline:
            time.sleep(0.1)
            summaries = [r for r in bsutil.audit_records(sd.state_dir)
                         if r["event"] == "rate_limited"]
        assert sum(int(r["fields"]["rate.refused"]) for r in summaries) == limited
        for r in summaries:
            assert r["type"] == "rpc" and r["principal_id"] == CI
            assert r["result"] == "RESOURCE_EXHAUSTED"
            assert r["fields"]["rate.over_calls"] == r["fields"]["rate.refused"]
            assert "not recorded one by one" in r["reason"]
        assert len(summaries) < limited or limited == 1
        # no record of its own for a refused call: only the calls served are recorded
        # (Health's records are not waited for: wait until they are durable)
        bsutil.wait_audit(sd.state_dir, lambda r: r["method"] == "grpc.health.v1.Health/Check"
                          and r["principal_id"] == CI, count=ok + 1)
        health = [r for r in bsutil.audit_records(sd.state_dir) if r["type"] == "rpc" and
                  r["method"] == "grpc.health.v1.Health/Check"]
        assert not [r for r in health if r["result"] == "RESOURCE_EXHAUSTED"]
        assert len([r for r in health if r["principal_id"] == CI]) == ok + 1
        assert d.proc.poll() is None
    finally:
        c.close()
        other.close()
        bsutil.stop_clean(d)
