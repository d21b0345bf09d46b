# test_refusals.py - what the daemon must refuse, each case its own test,
# each followed by a check that a normal Sign from a good client still
# works (the daemon keeps serving other clients throughout). TLS cases are
# checked both with grpcio (the client sees UNAVAILABLE) and at the socket
# level (no HTTP/2 SETTINGS frame ever comes from the server); HTTP/2 cases
# the grpcio API cannot express use the hand-rolled client in h2raw.py.

import ssl
import subprocess
import time

import grpc
import pytest

import bsutil
import h2raw
from bsutil import rpc_error

SIGN = "/boltseal.v1.KeyService/Sign"
HEALTH = "/grpc.health.v1.Health/Check"


def sign_body(pb, name="it-serving", msg=b"raw h2 request"):
    return pb.SignRequest(key_name=name, message=msg).SerializeToString()


def raw_conn(env, ident="ci-ota-release", cert=None, key=None, **kw):
    if cert is None and ident is not None:
        cert, key = env.client_files(ident)
    return h2raw.H2Conn(h2raw.tls_connect(env.port, env.ca, cert, key, **kw))


def assert_grpc_refused(env, pb, cert, key):
    c = env.client(cert=cert, key=key, ident=None)
    try:
        e = rpc_error(c.Sign, pb.SignRequest(key_name="it-serving", message=b"x"), timeout=15)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e
    finally:
        c.close()


def assert_socket_refused(env, cert, key, **tls):
    """The TLS handshake fails, or the server closes the connection without
    ever sending an HTTP/2 SETTINGS frame or answering a request."""
    try:
        sock = h2raw.tls_connect(env.port, env.ca, cert, key, **tls)
    except (ssl.SSLError, ConnectionError, OSError):
        return "handshake refused"
    try:
        assert not h2_answers(sock), "server spoke HTTP/2 on a refused connection"
        return "closed after handshake"
    finally:
        sock.close()


def h2_answers(sock):
    """After a completed handshake: False if the server closes without any
    HTTP/2 SETTINGS frame or answer; fails if it keeps the connection open
    silently; True if it speaks HTTP/2."""
    try:
        conn = h2raw.H2Conn(sock)
        sid = conn.request(HEALTH, body=h2raw.lpm(b""))
    except (ssl.SSLError, ConnectionError, OSError):
        return False  # closed (or alert) while we were still writing
    resp = conn.response(sid, timeout=5.0)
    conn.decoder.close()
    if conn.server_settings_seen or resp.headers is not None or resp.data:
        return True
    assert resp.closed, "server neither refused nor closed the connection: %r" % resp
    return False


def test_raw_h2_control(env, pb):
    """Positive control for the raw client: the same code paths that must
    fail below do succeed with a good certificate."""
    conn = raw_conn(env)
    try:
        assert conn.sock.selected_alpn_protocol() == "h2"
        assert conn.sock.version() == "TLSv1.3"
        sid = conn.request(HEALTH, body=h2raw.lpm(b""))
        r = conn.response(sid)
        assert conn.server_settings_seen
        assert r.status == 200 and r.grpc_status == 0, r
        assert r.data == bytes.fromhex("00000000020801"), r
        sid = conn.request(SIGN, body=h2raw.lpm(sign_body(pb)),
                           content_type="application/grpc+proto")
        r = conn.response(sid)
        assert r.status == 200 and r.grpc_status == 0, r
        resp = pb.SignResponse.FromString(r.data[5:])
        assert r.data[0] == 0 and int.from_bytes(r.data[1:5], "big") == len(r.data) - 5
        assert bsutil.crypto_verify(bsutil.ALG_ECDSA, env.serving_spki, b"raw h2 request",
                                    False, resp.signature)
        # One message split over several DATA frames, oddly cut.
        whole = h2raw.lpm(sign_body(pb))
        sid = conn.request(SIGN, chunks=[whole[:1], whole[1:3], whole[3:9], whole[9:], b""])
        r = conn.response(sid)
        assert r.grpc_status == 0, r
    finally:
        conn.close()
    with pytest.raises(AssertionError):
        # A good client is not "refused": proves assert_socket_refused can fail.
        assert_socket_refused(env, *env.client_files("ci-ota-release"))


def test_refuse_no_client_cert(env, pb):
    assert_grpc_refused(env, pb, None, None)
    assert_socket_refused(env, None, None)
    env.assert_still_serving()


def test_refuse_other_ca(env, pb):
    cert, key = env.bad_files("other-ca-client")
    assert_grpc_refused(env, pb, cert, key)
    assert_socket_refused(env, cert, key)
    env.assert_still_serving()


def test_refuse_expired_cert(env, pb):
    cert, key = env.bad_files("expired")
    assert_grpc_refused(env, pb, cert, key)
    assert_socket_refused(env, cert, key)
    env.assert_still_serving()


def test_refuse_cert_without_uri_san(env, pb):
    # Its CN is spiffe://fleet.example/ci/ota-release: the CN is never used.
    cert, key = env.bad_files("no-uri-san")
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-subject", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    assert "spiffe://fleet.example/ci/ota-release" in out and "URI:" not in out, out
    assert_grpc_refused(env, pb, cert, key)
    assert_socket_refused(env, cert, key)
    env.assert_still_serving()


def test_refuse_tls12(env):
    cert, key = env.client_files("ci-ota-release")
    base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % env.port, "-cert", cert,
            "-key", key, "-CAfile", env.ca, "-servername", "localhost", "-alpn", "h2"]
    p = subprocess.run(base + ["-tls1_2"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode != 0, "TLS 1.2 handshake succeeded:\n" + out
    assert "New, TLSv1.2" not in out, out
    # Control: the same command with TLS 1.3 succeeds.
    p = subprocess.run(base + ["-tls1_3"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "TLSv1.3" in out and "ALPN protocol: h2" in out, out
    # Python's ssl capped at TLS 1.2 fails the handshake.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        s = h2raw.tls_connect(env.port, env.ca, cert, key,
                              max_version=ssl.TLSVersion.TLSv1_2)
        s.close()
    env.assert_still_serving()


@pytest.mark.parametrize("alpn", [None, ("http/1.1",)], ids=["no-alpn", "http1.1-only"])
def test_refuse_without_h2_alpn(env, alpn):
    cert, key = env.client_files("ci-ota-release")
    try:
        sock = h2raw.tls_connect(env.port, env.ca, cert, key, alpn=alpn)
    except (ssl.SSLError, ConnectionError):
        sock = None  # refused in the handshake: fine
    if sock is not None:
        try:
            assert sock.selected_alpn_protocol() in (None, ""), sock.selected_alpn_protocol()
            assert not h2_answers(sock), "server spoke HTTP/2 without ALPN h2"
        finally:
            sock.close()
    env.assert_still_serving()


@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "", None],
                         ids=["text-plain", "json", "empty", "missing"])
def test_refuse_wrong_content_type(env, pb, ctype):
    conn = raw_conn(env)
    try:
        sid = conn.request(SIGN, body=h2raw.lpm(sign_body(pb)), content_type=ctype)
        r = conn.response(sid)
        assert r.status == 415, r
        assert r.data == b"" or not r.data.startswith(b"\x00"), r
        # The connection stays usable for a proper request.
        sid = conn.request(HEALTH, body=h2raw.lpm(b""))
        r = conn.response(sid)
        assert r.grpc_status == 0, r
    finally:
        conn.close()
    env.assert_still_serving()


def test_refuse_truncated_message(env, pb):
    conn = raw_conn(env)
    try:
        body = sign_body(pb, msg=b"0123456789" * 3)
        # The prefix announces 100 bytes; 10 follow, then END_STREAM.
        sid = conn.request(SIGN, body=h2raw.lpm(body[:10], declared_len=100))
        r = conn.response(sid)
        assert r.grpc_status in (3, 13), r
        assert "truncated" in (r.grpc_message or "").lower(), r
        # Only part of the 5-byte prefix.
        sid = conn.request(SIGN, body=b"\x00\x00\x00")
        r = conn.response(sid)
        assert r.grpc_status in (3, 13), r
        # No message at all on a unary call.
        sid = conn.request(SIGN, body=b"")
        r = conn.response(sid)
        assert r.grpc_status in (3, 12, 13), r
    finally:
        conn.close()
    env.assert_still_serving()


def test_refuse_oversized_length_prefix(env, pb):
    conn = raw_conn(env)
    try:
        t0 = time.monotonic()
        # Announces 1 GiB, sends 5 bytes, keeps the stream open.
        sid = conn.request(SIGN, body=h2raw.lpm(b"\x0a\x03abc", declared_len=1 << 30),
                           end_stream=False)
        r = conn.response(sid, timeout=5.0)
        elapsed = time.monotonic() - t0
        assert not r.timed_out, "no answer within 5 s: the server waits for the body"
        assert r.grpc_status == 8, r
        assert elapsed < 3.0, elapsed
        # The connection survives.
        sid = conn.request(HEALTH, body=h2raw.lpm(b""))
        assert conn.response(sid).grpc_status == 0
    finally:
        conn.close()
    env.assert_still_serving()


def test_refuse_message_over_cap(env, pb, good):
    # max_message_bytes = 65536 in the suite's config.
    big = pb.SignRequest(key_name="it-serving", message=b"m" * 70000)
    e = rpc_error(good.Sign, big)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    # Just under the cap is fine.
    ok = pb.SignRequest(key_name="it-serving", message=b"m" * 65000)
    assert ok.ByteSize() <= 65536
    r = good.Sign(ok, timeout=30)
    assert bsutil.crypto_verify(bsutil.ALG_ECDSA, env.serving_spki, b"m" * 65000, False,
                                r.signature)
    env.assert_still_serving()


def test_refuse_compressed_without_encoding(env, pb):
    """wire-formats.md 1.2: compressed flag with no grpc-encoding (or
    identity) is INTERNAL; an unsupported coding is UNIMPLEMENTED and the
    answer lists the supported ones in grpc-accept-encoding."""
    conn = raw_conn(env)
    try:
        for extra in ((), (("grpc-encoding", "identity"),)):
            sid = conn.request(SIGN, body=h2raw.lpm(sign_body(pb), flag=1), extra=extra)
            r = conn.response(sid)
            assert r.grpc_status == 13, (extra, r)
        sid = conn.request(SIGN, body=h2raw.lpm(b"\x1f\x8b not really gzip", flag=1),
                           extra=[("grpc-encoding", "x-unknown-coding")])
        r = conn.response(sid)
        assert r.grpc_status == 12, r
        accept = r._get(r.headers, "grpc-accept-encoding") or \
            r._get(r.trailers, "grpc-accept-encoding")
        assert accept is not None and "x-unknown-coding" not in accept, r
    finally:
        conn.close()
    env.assert_still_serving()


@pytest.mark.parametrize("path", ["/boltseal.v1.KeyService/Nope",
                                  "/boltseal.v1.KeyService/sign",
                                  "/no.such.Service/Sign",
                                  "/grpc.health.v1.Health/Nope"])
def test_refuse_unknown_method(env, good, path):
    e = rpc_error(good.raw(path), b"")
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
    env.assert_still_serving()


def test_refuse_unknown_key(env, pb, good):
    e = rpc_error(good.Sign, pb.SignRequest(key_name="no-such-key", message=b"x"))
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
    env.assert_still_serving()


def test_refuse_wrong_purpose_key(env, pb, good):
    good.CreateKey(pb.CreateKeyRequest(name="rf-ota-key", purpose=pb.OTA,
                                       algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    e = rpc_error(good.Sign, pb.SignRequest(key_name="rf-ota-key", message=b"x"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    e = rpc_error(good.SignBatch, pb.SignBatchRequest(
        key_name="rf-ota-key", items=[pb.SignBatchItem(message=b"x")]))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    assert good.GetKey(pb.GetKeyRequest(name="rf-ota-key"), timeout=10).key.purpose == pb.OTA
    env.assert_still_serving()


@pytest.mark.parametrize("blob", [b"\xff\xff\xff", b"\x0a\x10short", b"\x08"],
                         ids=["ff-ff-ff", "string-overrun", "varint-cut"])
def test_refuse_malformed_protobuf(env, good, blob):
    e = rpc_error(good.raw(SIGN), blob)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    env.assert_still_serving()
