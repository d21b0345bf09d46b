# test_daemon.py - the daemon as a process: health checking, deadlines
# (client- and server-side), `boltsealed -n` config checks with line
# numbers, the PIN never in argv or logs, SIGTERM drain and exit 0 on a
# second instance, restart with the same state, start-up refusals (wrong
# token label, catalog/token mismatch).

import json
import os
import time

import grpc

import bsutil
import h2raw
from bsutil import rpc_error

SIGN_BATCH = "/boltseal.v1.KeyService/SignBatch"
PROBE = os.path.join(bsutil.HERE, "p11probe.py")


def test_health_check(env, hpb, good):
    r = good.HealthCheck(hpb.HealthCheckRequest(service=""), timeout=10)
    assert r.status == hpb.HealthCheckResponse.SERVING
    r = good.HealthCheck(hpb.HealthCheckRequest(service="boltseal.v1.KeyService"), timeout=10)
    assert r.status == hpb.HealthCheckResponse.SERVING
    for svc in ("no.such.Service", "boltseal.v1.keyservice", "boltseal.v1.KeyService "):
        e = rpc_error(good.HealthCheck, hpb.HealthCheckRequest(service=svc))
        assert e.code() == grpc.StatusCode.NOT_FOUND, (svc, e)


def rsa_batch(pb, name, n=100):
    return pb.SignBatchRequest(key_name=name,
                               items=[pb.SignBatchItem(message=b"%d" % i) for i in range(n)])


def test_deadline_client_side(env, pb, good, keys):
    # grpcio rounds a tiny timeout up to "1m" on the wire, and a single
    # RSA signature can finish inside 1 ms, so the slow call is a batch of
    # 100 RSA-3072 signatures (well over 1 ms).
    # a channel of its own: the state of the session's shared connection (what
    # earlier tests did on it) must not decide this test
    name = keys[bsutil.ALG_RSA][0]
    c = env.client()
    try:
        c.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30)   # connected first
        e = rpc_error(c.SignBatch, rsa_batch(pb, name), timeout=0.000001)
    finally:
        c.close()
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    env.assert_still_serving()


def test_deadline_server_side(env, pb, good, keys):
    """grpc-timeout sent by hand (no client-side timer): the server itself
    must end the call with DEADLINE_EXCEEDED (or RST_STREAM CANCEL)."""
    name = keys[bsutil.ALG_RSA][0]
    req = rsa_batch(pb, name)
    t0 = time.monotonic()
    r = good.SignBatch(req, timeout=120)
    work = time.monotonic() - t0
    assert all(x.status_code == 0 for x in r.results)
    assert work > 0.02, "100 RSA-3072 signatures in %.3f s: too fast to test deadlines" % work
    timeout_ms = max(1, int(work * 1000 / 10))
    conn = h2raw.H2Conn(h2raw.tls_connect(env.port, env.ca, *env.client_files("ci-ota-release")))
    try:
        for hdr in ("%dm" % timeout_ms, "%du" % (timeout_ms * 1000), "0n"):
            t0 = time.monotonic()
            sid = conn.request(SIGN_BATCH, body=h2raw.lpm(req.SerializeToString()),
                               extra=[("grpc-timeout", hdr)])
            resp = conn.response(sid, timeout=30)
            took = time.monotonic() - t0
            assert resp.grpc_status == 4 or resp.rst == h2raw.H2_CANCEL, (hdr, resp)
            assert resp.grpc_status != 0
            assert took < max(1.0, 3 * work), (hdr, took, work)
        for bad in ("abc", "1x", "123456789S", "-1S"):
            sid = conn.request(SIGN_BATCH, body=h2raw.lpm(req.SerializeToString()),
                               extra=[("grpc-timeout", bad)])
            resp = conn.response(sid, timeout=30)
            assert resp.grpc_status in (3, 13), (bad, resp)
        # A generous timeout lets the same request through.
        sid = conn.request(SIGN_BATCH, body=h2raw.lpm(req.SerializeToString()),
                           extra=[("grpc-timeout", "60S")])
        resp = conn.response(sid, timeout=60)
        assert resp.grpc_status == 0, resp
        assert len(pb.SignBatchResponse.FromString(resp.data[5:]).results) == 100
    finally:
        conn.close()
    # grpcio's own deadline on the same work.
    e = rpc_error(good.SignBatch, req, timeout=work / 10)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    env.assert_still_serving()


def test_config_check_good(env):
    rc, out = bsutil.run_daemon_once(env.conf, env.softhsm_conf, ["-n"])
    assert rc == 0, out


def test_config_check_bad(env, tmp_path):
    good_settings = bsutil.base_config(str(tmp_path), 1, env.tokdir, env.pki, env.label,
                                       str(tmp_path))
    lines = ["# line 1: a comment", ""]
    for k, v in good_settings.items():
        if k == "workers":
            v = "banana"
        lines.append("%s = %s" % (k, v))
    lines.append("no_such_key = 1")
    lines.append("this line has no equals sign")
    workers_line = lines.index("workers = banana") + 1
    unknown_line = lines.index("no_such_key = 1") + 1
    noeq_line = unknown_line + 1
    conf = tmp_path / "bad.conf"
    conf.write_text("\n".join(lines) + "\n")
    rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, ["-n"])
    assert rc == 1, out
    for ln in (workers_line, unknown_line, noeq_line):
        assert "bad.conf:%d:" % ln in out, (ln, out)
    # A missing required key is named.
    conf2 = tmp_path / "missing.conf"
    conf2.write_text("".join("%s = %s\n" % (k, v) for k, v in good_settings.items()
                             if k != "tls_client_ca"))
    rc, out = bsutil.run_daemon_once(str(conf2), env.softhsm_conf, ["-n"])
    assert rc == 1 and "tls_client_ca" in out, out
    # And the -n check does accept the same file once fixed.
    conf3 = tmp_path / "fixed.conf"
    conf3.write_text("".join("%s = %s\n" % (k, v) for k, v in good_settings.items()))
    rc, out = bsutil.run_daemon_once(str(conf3), env.softhsm_conf, ["-n"])
    assert rc == 0, out


def test_pin_not_exposed(env, good, pb):
    good.Sign(pb.SignRequest(key_name="it-serving", message=b"pin check"), timeout=15)
    pins = [env.pin.encode(), bsutil.read(os.path.join(env.tokdir, "so.pin"))]
    assert all(len(p) >= 4 for p in pins)
    pid = env.daemon.pid
    cmdline = bsutil.read("/proc/%d/cmdline" % pid)
    assert b"boltsealed" in cmdline
    for p in pins:
        assert p not in cmdline
    # Every thread's command line too (the same memory, but cheap to check).
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            tcmd = bsutil.read("/proc/%d/task/%s/cmdline" % (pid, tid))
        except OSError:
            continue
        for p in pins:
            assert p not in tcmd
    log = bsutil.read(env.log)
    assert b'"listening"' in log
    for p in pins:
        assert p not in log
    # The config names the PIN file, never the PIN.
    assert env.pin.encode() not in bsutil.read(env.conf)


def test_log_is_json_lines(env):
    recs = env.daemon.log_records()
    lines = [l for l in env.daemon.log_text().splitlines() if l.strip()]
    assert recs and len(recs) == len(lines), "non-JSON lines in the log"
    assert all("msg" in r for r in recs)


def test_sigterm_drains_and_restart_keeps_keys(env, pb, second_daemon):
    sd = second_daemon("term")
    d = sd.start()
    c = env.client(port=sd.port)
    c.CreateKey(pb.CreateKeyRequest(name="st-ecdsa", purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    c.CreateKey(pb.CreateKeyRequest(name="st-rsa", purpose=pb.GENERIC,
                                    algorithm=pb.RSA_3072_PSS_SHA256), timeout=120)
    der = c.GetPublicKey(pb.GetPublicKeyRequest(name="st-ecdsa"), timeout=10).der

    # A slow request in flight when SIGTERM arrives still completes: time
    # the batch first, then signal a quarter of the way through it.
    t0 = time.monotonic()
    c.SignBatch(rsa_batch(pb, "st-rsa"), timeout=60)
    work = time.monotonic() - t0
    assert work > 0.04, "batch too fast (%.3f s) to be in flight at SIGTERM" % work
    fut = c.SignBatch.future(rsa_batch(pb, "st-rsa"), timeout=60)
    time.sleep(work / 4)
    assert not fut.done()
    t0 = time.monotonic()
    rc = d.terminate(15.0)
    assert rc == 0, "exit %r; log:\n%s" % (rc, d.log_tail())
    assert time.monotonic() - t0 < 15
    r = fut.result()
    assert len(r.results) == 100 and all(x.status_code == 0 for x in r.results)
    c.close()

    # Restart on the same state: the keys and their public keys are back.
    d2 = sd.start()
    c2 = env.client(port=sd.port)
    k = c2.GetKey(pb.GetKeyRequest(name="st-ecdsa"), timeout=10).key
    assert k.primary_version == 1
    assert c2.GetPublicKey(pb.GetPublicKeyRequest(name="st-ecdsa"), timeout=10).der == der
    s = c2.Sign(pb.SignRequest(key_name="st-ecdsa", message=b"after restart"), timeout=30)
    assert bsutil.crypto_verify(bsutil.ALG_ECDSA, der, b"after restart", False, s.signature)
    c2.close()
    assert d2.terminate(15.0) == 0, d2.log_tail()
    log = bsutil.read(sd.log)
    assert sd.pin.encode() not in log
    env.assert_still_serving()


def test_wrong_token_label(env, tmp_path):
    settings = bsutil.base_config(str(tmp_path), bsutil.free_port(), env.tokdir, env.pki,
                                  "no-such-token-label", str(tmp_path))
    conf = tmp_path / "wrong-token.conf"
    bsutil.write_config(str(conf), settings)
    rc, out = bsutil.run_daemon_once(str(conf), env.softhsm_conf, timeout=30)
    assert rc not in (0, None), "rc=%r:\n%s" % (rc, out)
    assert "no-such-token-label" in out, out
    assert env.pin not in out
    env.assert_still_serving()


def test_catalog_token_mismatch(env, pb, second_daemon):
    sd = second_daemon("mm")
    d = sd.start()
    c = env.client(port=sd.port)
    for n in ("mm-keep", "mm-gone"):
        c.CreateKey(pb.CreateKeyRequest(name=n, purpose=pb.GENERIC,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    c.close()
    assert d.terminate(15.0) == 0, d.log_tail()

    # Delete mm-gone's private key behind the daemon's back.
    e = dict(os.environ)
    e["SOFTHSM2_CONF"] = sd.softhsm_conf
    pin_file = os.path.join(sd.tokdir, "user.pin")
    out = bsutil.run([bsutil.PYTHON, PROBE, "inspect", bsutil.SOFTHSM_MODULE, sd.label, pin_file,
                      "boltseal/"], env=e).stdout.decode()
    # the daemon's own audit key (boltseal/audit-log/v1) is there too
    labels = [k["label"] for k in json.loads(out)["keys"]
              if not k["label"].startswith("boltseal/audit-log/")]
    gone = [l for l in labels if l.startswith("boltseal/mm-gone/") or l == "boltseal/mm-gone"]
    assert len(labels) == 2 and len(gone) == 1, labels
    out = bsutil.run([bsutil.PYTHON, PROBE, "delete", bsutil.SOFTHSM_MODULE, sd.label, pin_file,
                      gone[0]], env=e).stdout.decode()
    assert out.strip() == "1"

    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, timeout=30)
    assert rc not in (0, None), "daemon started on a mismatched token (rc=%r):\n%s" % (rc, out)
    assert "mm-gone" in out, out
    assert sd.pin not in out
    env.assert_still_serving()
