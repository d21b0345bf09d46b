# test_revocation.py - revocation, reload and fail-closed behaviour of
# boltsealed (issue 3): a client revoked by a new CRL is refused on its next
# handshake after SIGHUP while a connection made before the reload keeps
# working; a CRL that is missing or expired makes the daemon refuse the
# clients it covers, log which CRL, and answer Health NOT_SERVING (seen by
# the client of a second CA whose CRL is fine); a missing CRL file at start
# refuses the start; `boltsealed -n` reports policy errors with their line;
# a reload with a broken policy (or a vanished CRL) keeps the previous set,
# logs and audits why, and a fixed policy applies on the next SIGHUP.
#
# Each test runs its own boltsealed (conftest's second_daemon) with CRLs
# written by pkitool or scripts/revoke on a copy of the session PKI, so the
# session daemon's files are never touched.

import datetime
import json
import os
import shutil
import socket
import ssl
import time

import grpc

import bsutil
import h2raw
import pkitool

CI_URI = "spiffe://fleet.example/ci/ota-release"


def client(sd, env, cert, key):
    """A Client over a channel with its own subchannel (a new handshake)."""
    ch = bsutil.local_channel(sd.port, env.ca, cert, key)
    return bsutil.Client(ch, env.stubs)


def assert_refused_at_connect(sd, env, cert, key):
    c = client(sd, env, cert, key)
    try:
        e = bsutil.rpc_error(c.ListKeys, env.stubs.pb.ListKeysRequest(), timeout=10)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
    finally:
        c.close()


def assert_works(sd, env, cert, key):
    c = client(sd, env, cert, key)
    try:
        c.ListKeys(env.stubs.pb.ListKeysRequest(), timeout=15)
    finally:
        c.close()


def health(c, hpb):
    return c.HealthCheck(hpb.HealthCheckRequest(), timeout=15).status


def wait_tls_failure(daemon, verify_result, after):
    """The daemon's log line for a refused handshake, with its verify result."""
    return bsutil.wait_log(daemon, lambda r: r.get("msg") == "TLS handshake failed" and
                           r.get("verify_result") == verify_result, after=after)


def reload_records(sd, result, count=0):
    """The audit log's "reload" records with result; waits (bounded) until
    there are at least count of them: the daemon logs its reload verdict
    before the record is durable."""
    return bsutil.wait_audit(sd.state_dir, lambda r: r["type"] == "reload" and
                             r["result"] == result, count=count)


def wait_untrusted_close(sd, d, after, timeout=5.0):
    """The daemon's log line for a live connection closed after a trust
    change, and its audit record (with the principal)."""
    t0 = time.monotonic()
    rec = bsutil.wait_log(d, lambda r: r.get("msg") ==
                          "connection closed: its client certificate no longer verifies",
                          after=after, timeout=timeout)
    audit = bsutil.wait_audit(sd.state_dir, lambda r: r["type"] == "reload" and
                              r["event"] == "connection_closed_untrusted", count=1)
    return rec, audit, time.monotonic() - t0


def revoke_setup(sd, env):
    """A second daemon on a copy of the dev PKI, and a fresh client cert
    (principal ci-ota-release) that the test will revoke."""
    pki = os.path.join(sd.dir, "pki")
    shutil.copytree(env.pki, pki)
    victim = pkitool.mint_client(pkitool.dev_ca(pki), os.path.join(sd.dir, "certs"),
                                 "victim", CI_URI)
    sd.settings["tls_client_ca"] = os.path.join(pki, "ca.pem")
    sd.settings["tls_crl"] = os.path.join(pki, "crl.pem")
    bsutil.write_config(sd.conf, sd.settings)
    return pki, victim


def test_revoked_client_live_connection_closed_on_sighup(env, second_daemon):
    """Revocation reaches open connections: after SIGHUP with the new CRL,
    the revoked client's live connection gets GOAWAY and is closed within a
    second, audited with its principal; another client's live connection
    on the same CA keeps working; the revoked certificate cannot reconnect."""
    sd = second_daemon("revoke")
    pki, victim = revoke_setup(sd, env)
    d = sd.start()
    pb, hpb = env.stubs.pb, env.stubs.hpb

    live = client(sd, env, *victim)
    other = client(sd, env, *env.client_files("ci-ota-release"))
    try:
        live.ListKeys(pb.ListKeysRequest(), timeout=15)
        other.ListKeys(pb.ListKeysRequest(), timeout=15)

        bsutil.run([os.path.join(bsutil.SCRIPTS_DIR, "revoke"), pki, victim[0]])
        serial = pkitool.cert_serial(victim[0])
        crl = pkitool.x509.load_pem_x509_crl(bsutil.read(os.path.join(pki, "crl.pem")))
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None
        n = len(d.log_records())
        rec = bsutil.sighup(d)
        assert rec["msg"] == "reloaded TLS material and policy", rec
        closed, audit, _ = wait_untrusted_close(sd, d, n)
        reload_at = [r for r in d.log_records()[n:]
                     if r.get("msg") == "reloaded TLS material and policy"][0]
        assert closed["reason"] == "certificate revoked", closed
        assert closed["identity"] == CI_URI
        # closed within a second of the reload (log timestamps, ms resolution)
        assert ms(closed["ts"]) - ms(reload_at["ts"]) <= 1000, (reload_at, closed)
        a = audit[-1]
        assert a["principal_id"] == "ci-ota-release", a
        assert a["identity"] == CI_URI and a["result"] == "UNAUTHENTICATED", a
        assert a["cert_sha256"] == pkitool.cert_sha256(victim[0]), a

        # the revoked client's channel cannot get back in ...
        e = bsutil.rpc_error(live.ListKeys, pb.ListKeysRequest(), timeout=10)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        assert_refused_at_connect(sd, env, *victim)
        # ... while the other client's live connection was not touched
        for _ in range(3):
            other.ListKeys(pb.ListKeysRequest(), timeout=15)
        assert health(other, hpb) == hpb.HealthCheckResponse.SERVING
        assert len([r for r in d.log_records()[n:] if r.get("msg") ==
                    "connection closed: its client certificate no longer verifies"]) == 1
    finally:
        live.close()
        other.close()
    bsutil.stop_clean(d)


def test_revocation_noticed_without_sighup(env, second_daemon):
    """A new CRL written over the old one is picked up by the periodic
    re-check (every 2 s), without SIGHUP, and closes the live connection."""
    sd = second_daemon("revoke2")
    pki, victim = revoke_setup(sd, env)
    d = sd.start()
    pb = env.stubs.pb
    live = client(sd, env, *victim)
    try:
        live.ListKeys(pb.ListKeysRequest(), timeout=15)
        n = len(d.log_records())
        bsutil.run([os.path.join(bsutil.SCRIPTS_DIR, "revoke"), pki, victim[0]])
        closed, audit, took = wait_untrusted_close(sd, d, n, timeout=10.0)
        assert took < 6.0, took
        assert any(r.get("msg") == "reloaded TLS material and policy" and
                   r.get("trigger") == "CA bundle or CRLs changed on disk"
                   for r in d.log_records()[n:])
        e = bsutil.rpc_error(live.ListKeys, pb.ListKeysRequest(), timeout=10)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
    finally:
        live.close()
    bsutil.stop_clean(d)


class _MemTLS:
    """A TLS client over a memory BIO, so that a test can hold its handshake
    half-way (ClientHello sent, its final flight not yet) and finish it
    later; then a socket-like object for h2raw.H2Conn."""

    def __init__(self, port, ca, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2"])
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self._step()
        self.inc.write(self.raw.recv(65536))   # the server's flight, not answered yet

    def _step(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data = self.out.read()
        if data:
            self.raw.sendall(data)

    def finish(self):
        self._step()

    def sendall(self, b):
        self.obj.write(b)
        self.raw.sendall(self.out.read())

    def pending(self):
        return self.obj.pending()

    def fileno(self):
        return self.raw.fileno()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                d = self.raw.recv(65536)
                if not d:
                    return b""
                self.inc.write(d)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close(self):
        self.raw.close()


def test_handshake_straddling_a_revocation_is_checked_again(env, second_daemon):
    """A client holds its handshake open (ClientHello answered, its
    certificate not yet sent) while it is revoked and the daemon reloads;
    the handshake then completes against the old store, and the daemon
    verifies it again against the new one at once: closed, audited."""
    sd = second_daemon("straddle")
    sd.settings["max_connection_age_ms"] = 0
    pki, victim = revoke_setup(sd, env)
    d = sd.start()
    held = _MemTLS(sd.port, env.ca, *victim)
    try:
        bsutil.run([os.path.join(bsutil.SCRIPTS_DIR, "revoke"), pki, victim[0]])
        n = len(d.log_records())
        assert bsutil.sighup(d)["msg"] == "reloaded TLS material and policy"
        held.finish()
        closed, audit, _ = wait_untrusted_close(sd, d, n)
        assert closed["reason"] == "certificate revoked", closed
        assert audit[-1]["principal_id"] == "ci-ota-release", audit[-1]
        conn = h2raw.H2Conn.__new__(h2raw.H2Conn)
        conn.sock, conn.buf, conn.next_stream = held, b"", 1
        conn.decoder, conn.server_settings_seen, conn.eof = h2raw.HpackDecoder(), False, False
        try:
            held.sendall(h2raw.PREFACE + conn.frame(h2raw.SETTINGS, 0, 0, b""))
            sid = conn.request("/boltseal.test.v1.EchoService/Echo", h2raw.lpm(b"\x0a\x01x"))
            r = conn.response(sid, timeout=5)
            assert r.grpc_status is None and (r.closed or r.goaway is not None), r
        except OSError:
            pass
        finally:
            conn.decoder.close()
    finally:
        held.close()
    bsutil.stop_clean(d)


def ms(ts):
    """A log timestamp ("2026-12-02T05:04:05.144Z") in milliseconds."""
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def two_cas(sd, env):
    """Configures sd to trust the dev CA and a second CA, with a CRL directory
    holding only the second CA's (fresh) CRL. Returns (dev, other, crldir)."""
    dev, other = pkitool.dev_ca(env.pki), pkitool.other_ca(env.pki)
    bundle = os.path.join(sd.dir, "client-cas.pem")
    with open(bundle, "wb") as f:
        f.write(bsutil.read(dev.cert_path) + bsutil.read(other.cert_path))
    crldir = os.path.join(sd.dir, "crls")
    os.makedirs(crldir)
    pkitool.mint_crl(other, os.path.join(crldir, "other.pem"))
    sd.settings["tls_client_ca"] = bundle
    sd.settings["tls_crl"] = crldir
    bsutil.write_config(sd.conf, sd.settings)
    return dev, other, crldir


def test_crl_missing_or_expired_fails_closed(env, second_daemon):
    """Client CA bundle = dev CA + a second CA. Only the second CA has a
    (fresh) CRL: dev clients are refused, the second CA's client gets in and
    sees NOT_SERVING. Then an expired dev CRL: the same, and the log names
    that CRL file. Then a fresh dev CRL: everything serves again."""
    sd = second_daemon("crlfail")
    pb, hpb = env.stubs.pb, env.stubs.hpb
    dev, other, crldir = two_cas(sd, env)
    d = sd.start()

    dev_client = env.client_files("ci-ota-release")
    other_client = env.bad_files("other-ca-client")
    dev_cn = dev.cert.subject.get_attributes_for_oid(
        pkitool.x509.NameOID.COMMON_NAME)[0].value

    # 1. no CRL for the dev CA
    rec = bsutil.wait_log(d, lambda r: str(r.get("msg", "")).startswith(
        "revocation data missing or stale"))
    assert rec["level"] == "error"
    assert rec["problem"].startswith("no CRL for CA "), rec
    assert dev_cn in rec["problem"], rec
    n = len(d.log_records())
    assert_refused_at_connect(sd, env, *dev_client)
    wait_tls_failure(d, "unable to get certificate CRL", n)
    oc = client(sd, env, *other_client)
    try:
        assert health(oc, hpb) == hpb.HealthCheckResponse.NOT_SERVING

        # 2. an expired dev CRL
        expired = os.path.join(crldir, "dev.pem")
        last, nxt = pkitool.expired_times()
        pkitool.mint_crl(dev, expired, last_update=last, next_update=nxt)
        n = len(d.log_records())
        rec = bsutil.sighup(d)
        assert rec["msg"] == "reloaded TLS material and policy", rec
        rec = bsutil.wait_log(d, lambda r: str(r.get("msg", "")).startswith(
            "revocation data missing or stale"), after=n)
        assert "CRL %s " % expired in rec["problem"], rec
        assert "expired at" in rec["problem"], rec
        assert dev_cn in rec["problem"], rec
        ok = reload_records(sd, "OK", 1)
        assert "revocation data not ready" in ok[-1]["reason"], ok
        n = len(d.log_records())
        assert_refused_at_connect(sd, env, *dev_client)
        wait_tls_failure(d, "CRL has expired", n)
        assert health(oc, hpb) == hpb.HealthCheckResponse.NOT_SERVING
        oc2 = client(sd, env, *other_client)
        try:
            assert health(oc2, hpb) == hpb.HealthCheckResponse.NOT_SERVING
        finally:
            oc2.close()

        # 3. a fresh dev CRL: serving again
        pkitool.mint_crl(dev, expired)
        n = len(d.log_records())
        rec = bsutil.sighup(d)
        assert rec["msg"] == "reloaded TLS material and policy", rec
        bsutil.wait_log(d, lambda r: r.get("msg") == "revocation data current again", after=n)
        assert health(oc, hpb) == hpb.HealthCheckResponse.SERVING
        assert_works(sd, env, *dev_client)
        dc = client(sd, env, *dev_client)
        try:
            assert health(dc, hpb) == hpb.HealthCheckResponse.SERVING
            dc.ListKeys(pb.ListKeysRequest(), timeout=15)
        finally:
            dc.close()
    finally:
        oc.close()
    bsutil.stop_clean(d)


def test_expired_crl_at_start(env, second_daemon):
    sd = second_daemon("crlexp")
    crl = os.path.join(sd.dir, "dev-crl.pem")
    last, nxt = pkitool.expired_times()
    pkitool.mint_crl(pkitool.dev_ca(env.pki), crl, last_update=last, next_update=nxt)
    sd.settings["tls_crl"] = crl
    bsutil.write_config(sd.conf, sd.settings)
    d = sd.start()
    rec = bsutil.wait_log(d, lambda r: str(r.get("msg", "")).startswith(
        "revocation data missing or stale"))
    assert rec["problem"].startswith("CRL %s (issuer " % crl), rec
    n = len(d.log_records())
    assert_refused_at_connect(sd, env, *env.client_files("ci-ota-release"))
    assert_refused_at_connect(sd, env, *env.client_files("admin-alice"))
    wait_tls_failure(d, "CRL has expired", n)
    # `-n` accepts the files but warns about the stale CRL
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 0, out
    assert "TLS: warning: CRL %s" % crl in out, out
    bsutil.stop_clean(d)


def test_crl_expiring_while_running_fails_closed(env, second_daemon):
    """A CRL that passes its nextUpdate while the daemon runs (no reload): the
    periodic re-check (every 5 s) logs it, health turns NOT_SERVING on a
    connection made before, and new handshakes are refused."""

    sd = second_daemon("crlrun")
    crl = os.path.join(sd.dir, "dev-crl.pem")
    now = pkitool._now()
    pkitool.mint_crl(pkitool.dev_ca(env.pki), crl, last_update=now - datetime.timedelta(hours=1),
                     next_update=now + datetime.timedelta(seconds=4))
    sd.settings["tls_crl"] = crl
    bsutil.write_config(sd.conf, sd.settings)
    d = sd.start()
    hpb = env.stubs.hpb
    live = client(sd, env, *env.client_files("ci-ota-release"))
    try:
        assert health(live, hpb) == hpb.HealthCheckResponse.SERVING
        rec = bsutil.wait_log(d, lambda r: str(r.get("msg", "")).startswith(
            "revocation data missing or stale"), timeout=20)
        assert rec["problem"].startswith("CRL %s (issuer " % crl), rec
        assert health(live, hpb) == hpb.HealthCheckResponse.NOT_SERVING
        assert_refused_at_connect(sd, env, *env.client_files("admin-alice"))
    finally:
        live.close()
    bsutil.stop_clean(d)


def test_missing_crl_file_refuses_start(env, tmp_path):
    state = tmp_path / "data"
    state.mkdir(mode=0o700)
    missing = str(tmp_path / "no-such-crl.pem")
    settings = bsutil.base_config(str(tmp_path), bsutil.free_port(), env.tokdir, env.pki,
                                  env.label, str(state))
    settings["tls_crl"] = missing
    conf = str(tmp_path / "boltsealed.conf")
    bsutil.write_config(conf, settings)

    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, timeout=30)
    assert rc == 1, out
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    fail = [r for r in recs if r.get("msg") == "TLS configuration failed"]
    assert fail and missing in fail[0]["error"], out
    assert not any(r.get("msg") == "listening" for r in recs), out

    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "TLS: " in out and missing in out, out


BROKEN_POLICY = """\
# a broken policy: errors on lines 4, 5 and 8
principal a
    uri spiffe://t/a
    roles missing
colour blue
role r
    grant
        methods boltseal.v1.KeyService/Nope
"""


def test_check_reports_policy_errors_with_lines(env, tmp_path):
    state = tmp_path / "data"
    state.mkdir(mode=0o700)
    policy = str(tmp_path / "policy")
    with open(policy, "w") as f:
        f.write(BROKEN_POLICY)
    os.chmod(policy, 0o644)
    settings = bsutil.base_config(str(tmp_path), bsutil.free_port(), env.tokdir, env.pki,
                                  env.label, str(state))
    settings["policy"] = policy
    conf = str(tmp_path / "boltsealed.conf")
    bsutil.write_config(conf, settings)

    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1, out
    lines = out.splitlines()
    want = ["%s:4: undefined role 'missing'" % policy,
            "%s:5: unknown keyword 'colour'" % policy,
            "%s:8: unknown method 'boltseal.v1.KeyService/Nope'" % policy]
    for w in want:
        assert w in lines, out
    # in line order
    assert [lines.index(w) for w in want] == sorted(lines.index(w) for w in want)
    assert "configuration OK" not in out

    # the same config with the shipped example policy passes
    shutil.copyfile(os.path.join(bsutil.SRCDIR, "etc", "policy.example"), policy)
    os.chmod(policy, 0o644)
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 0, out
    assert "configuration OK" in out


POLICY_V1 = """\
principal ci
    uri spiffe://fleet.example/ci/ota-release
    roles r

role r
    grant
        methods boltseal.v1.KeyService/CreateKey
        keys *
    grant
        methods boltseal.v1.KeyService/GetKey
        keys a-*
"""

POLICY_V2 = POLICY_V1.replace("keys a-*", "keys a-* b-*")


def write_policy(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def test_reload_with_broken_policy_keeps_old(env, second_daemon):
    sd = second_daemon("reload")
    pb = env.stubs.pb
    policy = os.path.join(sd.dir, "policy")
    write_policy(policy, POLICY_V1)
    crl = os.path.join(sd.dir, "crl.pem")
    pkitool.mint_crl(pkitool.dev_ca(env.pki), crl)
    sd.settings["policy"] = policy
    sd.settings["tls_crl"] = crl
    bsutil.write_config(sd.conf, sd.settings)
    d = sd.start()
    ci = env.client_files("ci-ota-release")

    live = client(sd, env, *ci)
    try:
        for name in ("a-1", "b-1"):
            live.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.GENERIC,
                                               algorithm=pb.ED25519), timeout=30)

        def check_v1(c):
            assert c.GetKey(pb.GetKeyRequest(name="a-1"), timeout=15).key.name == "a-1"
            e = bsutil.rpc_error(c.GetKey, pb.GetKeyRequest(name="b-1"))
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()

        check_v1(live)

        # garbage: the reload is refused, the old policy stays
        write_policy(policy, POLICY_V1 + "\nthis is not a policy line\n")
        bad_line = POLICY_V1.count("\n") + 2
        rec = bsutil.sighup(d)
        assert rec["msg"] == "reload failed; keeping the previous TLS material and policy", rec
        assert "%s:%d: unknown keyword 'this'" % (policy, bad_line) in rec["error"], rec
        refused = reload_records(sd, "FAILED_PRECONDITION", 1)
        assert len(refused) == 1, refused
        assert refused[0]["event"] == "reload_refused"
        assert "%s:%d:" % (policy, bad_line) in refused[0]["reason"], refused
        assert reload_records(sd, "OK") == []
        check_v1(live)
        nc = client(sd, env, *ci)
        try:
            check_v1(nc)
        finally:
            nc.close()

        # a vanished CRL: refused too, naming the file; handshakes still work
        os.rename(crl, crl + ".away")
        rec = bsutil.sighup(d)
        assert rec["msg"].startswith("reload failed"), rec
        assert crl in rec["error"], rec
        assert len(reload_records(sd, "FAILED_PRECONDITION", 2)) == 2
        nc = client(sd, env, *ci)
        try:
            check_v1(nc)
        finally:
            nc.close()
        os.rename(crl + ".away", crl)

        # fixed: the new policy applies, to the live connection and new ones
        write_policy(policy, POLICY_V2)
        rec = bsutil.sighup(d)
        assert rec["msg"] == "reloaded TLS material and policy", rec
        ok = reload_records(sd, "OK", 1)
        assert len(ok) == 1 and ok[0]["event"] == "reload", ok
        assert live.GetKey(pb.GetKeyRequest(name="b-1"), timeout=15).key.name == "b-1"
        nc = client(sd, env, *ci)
        try:
            assert nc.GetKey(pb.GetKeyRequest(name="b-1"), timeout=15).key.name == "b-1"
            e = bsutil.rpc_error(nc.GetKey, pb.GetKeyRequest(name="c-1"))
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        finally:
            nc.close()
    finally:
        live.close()
    bsutil.stop_clean(d)
