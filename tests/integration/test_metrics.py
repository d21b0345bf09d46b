# test_metrics.py - the Prometheus endpoint (metrics_listen, off unless
# configured): GET /metrics on a daemon of its own answers the text format,
# which Debian's `promtool check metrics` accepts; its counters follow the
# calls made (by method and status, latency histograms), the connections,
# a refused TLS handshake, the HSM queue and the audit log; other paths and
# methods are refused; a real `prometheus` (Debian package) scrapes it and
# answers a PromQL query over what it scraped.
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import grpc
import pytest

import auditutil
import bsutil


@pytest.fixture(scope="module")
def inst(env):
    port = bsutil.free_port()
    i = auditutil.Instance(env, "metrics", metrics_listen="127.0.0.1:%d" % port)
    i.metrics_port = port
    i.start()
    yield i
    i.stop()
    shutil.rmtree(i.dir, ignore_errors=True)


def scrape(inst, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (inst.metrics_port, path),
                                 method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def value(text, name, **labels):
    """The sample of name with exactly these labels, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if got == want:
                return float(m.group(3))
    return None


def test_exposition_follows_the_calls(env, inst, tmp_path):
    pb = env.stubs.pb
    c = inst.client()
    c.CreateKey(pb.CreateKeyRequest(name="m-key", purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    for i in range(5):
        c.Sign(pb.SignRequest(key_name="m-key", message=b"m%d" % i), timeout=30)
    with pytest.raises(grpc.RpcError):
        c.Sign(pb.SignRequest(key_name="m-missing", message=b"x"), timeout=30)
    ch = inst.channel()
    with pytest.raises(grpc.RpcError):
        ch.unary_unary("/no.such.Service/Nope")(b"", timeout=30)
    # a TLS handshake that fails: a client without a certificate
    with pytest.raises(OSError):
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        import ssl
        ctx = ssl.create_default_context(cafile=env.ca)
        ctx.check_hostname = False
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"x")
            t.recv(1)
    st, ctype, text = scrape(inst)
    assert st == 200 and ctype.startswith("text/plain; version=0.0.4"), ctype
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    sign = "boltseal.v1.KeyService/Sign"
    assert value(text, "boltseal_rpc_calls_total", method=sign, code="OK") == 5, text
    assert value(text, "boltseal_rpc_calls_total", method=sign, code="NOT_FOUND") == 1, text
    assert value(text, "boltseal_rpc_calls_total", method="other", code="UNIMPLEMENTED") == 1
    assert value(text, "boltseal_rpc_duration_seconds_count", method=sign) == 6
    assert value(text, "boltseal_rpc_duration_seconds_bucket", method=sign, le="+Inf") == 6
    assert value(text, "boltseal_rpc_duration_seconds_sum", method=sign) > 0
    assert value(text, "boltseal_connections", state="established") >= 1
    assert value(text, "boltseal_connections_accepted_total") >= 3
    assert value(text, "boltseal_tls_handshake_failures_total") >= 1, text
    assert value(text, "boltseal_connections_refused_total", reason="max_connections") == 0
    assert value(text, "boltseal_hsm_jobs_in_flight") >= 0   # the checkpointer may be signing
    assert value(text, "boltseal_audit_records") >= 8
    assert value(text, "boltseal_audit_uncovered_records") >= 0
    assert value(text, "boltseal_build_info", version=re.search(
        r'version="([^"]+)"', text).group(1)) == 1
    # only GET /metrics
    for pth, meth, code in (("/", "GET", 404), ("/metrics", "POST", 501)):
        with pytest.raises(urllib.error.HTTPError) as ei:
            scrape(inst, pth, meth)
        assert ei.value.code == code, (pth, meth, ei.value.code)


def test_latencies_limits_and_expiry(env, inst):
    """HSM job latency, the audit log's sync latency and write lag, a limit's
    refusals (a message over max_message_bytes), and the expiry times of the
    server certificate, the client CA and the CRL."""
    from cryptography import x509
    pb = env.stubs.pb
    c = inst.client()
    c.CreateKey(pb.CreateKeyRequest(name="m-lat", purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    _, _, before = scrape(inst)
    for i in range(4):
        c.Sign(pb.SignRequest(key_name="m-lat", message=b"l%d" % i), timeout=30)
    big = inst.channel().unary_unary("/boltseal.v1.KeyService/Sign")
    with pytest.raises(grpc.RpcError) as ei:
        big(b"\x0a" + b"\xff" * 200000, timeout=30)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _, _, text = scrape(inst)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    hsm = "boltseal_hsm_job_duration_seconds"
    assert value(text, hsm + "_count") >= value(before, hsm + "_count") + 4, text
    assert value(text, hsm + "_bucket", le="+Inf") == value(text, hsm + "_count")
    assert 0 < value(text, hsm + "_sum") < 60
    assert value(text, "boltseal_audit_sync_duration_seconds_count") >= 1
    assert value(text, "boltseal_audit_write_lag_seconds_count") >= \
        value(before, "boltseal_audit_write_lag_seconds_count") + 4
    assert value(text, "boltseal_limit_refusals_total", limit="max_message_bytes") >= 1, text
    for lim in ("rate_limit_calls", "max_request_fields", "queue_max", "audit_queue_max",
                "request_timeout_ms", "write_stall_timeout_ms"):
        assert value(text, "boltseal_limit_refusals_total", limit=lim) is not None, lim
    # expiry: the server certificate's notAfter, as python3-cryptography reads it
    cert = x509.load_pem_x509_certificate(bsutil.read(os.path.join(env.pki, "server.pem")))
    got = {}
    for line in text.splitlines():
        m = re.match(r'^boltseal_tls_expiry_timestamp_seconds\{kind="([a-z_]+)",'
                     r'subject="(.*)"\} (\d+)$', line)
        if m:
            got.setdefault(m.group(1), []).append((m.group(2), int(m.group(3))))
    assert [t for _, t in got["server_certificate"]] == [
        int(cert.not_valid_after.replace(tzinfo=__import__("datetime").timezone.utc)
            .timestamp())], got
    assert got["client_ca"] and got["crl"], got
    assert all(t > time.time() for _, t in got["crl"]), got


def test_off_unless_configured(env, inst):
    # the session daemon's configuration has no metrics_listen: no endpoint
    assert "metrics_listen" not in open(env.conf).read()
    assert "metrics endpoint listening" not in open(env.log, errors="replace").read()
    assert "metrics endpoint listening" in open(inst.log, errors="replace").read()


def test_prometheus_scrapes_it(inst, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed")
    port = bsutil.free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: boltseal\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:%d']\n" % inst.metrics_port)
    p = subprocess.run(["promtool", "check", "config", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(["prometheus", "--config.file=%s" % cfg,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        q = "http://127.0.0.1:%d/api/v1/query?query=boltseal_build_info" % port
        got = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(q, timeout=5) as r:
                    res = json.loads(r.read())["data"]["result"]
                if res:
                    got = res
                    break
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass
            time.sleep(0.5)
        assert got and got[0]["metric"]["job"] == "boltseal" and got[0]["value"][1] == "1", \
            (got, open(tmp_path / "prometheus.log", errors="replace").read()[-3000:])
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % port,
                                    timeout=5) as r:
            t = json.loads(r.read())["data"]["activeTargets"]
        assert t and t[0]["health"] == "up", t
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
