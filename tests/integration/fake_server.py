#!/usr/bin/python3
# fake_server.py - a stand-in boltseal.v1.KeyService on python3-grpcio, used
# to test the C client library and the `boltseal` CLI without the daemon.
#
#   /usr/bin/python3 tests/integration/fake_server.py --pki DIR [--port N]
#                    [--cert FILE --key FILE]
#
# Serves mutual TLS (client certificates required, DIR/ca.pem) with
# DIR/server.pem unless --cert/--key pick another server certificate. Prints
# "listening PORT" on stdout when ready. Answers are fake but real enough
# for round trips: one in-memory ECDSA P-256 key per name signs and
# verifies for real (python3-cryptography). Special key names:
#   missing      NOT_FOUND "key 'missing' not found"
#   exists       CreateKey answers ALREADY_EXISTS
#   weird        INVALID_ARGUMENT with a message full of characters that
#                grpc-message must percent-encode (%, newline, UTF-8)
#   slow         sleeps 3 s before answering (timeouts)
#   huge         GetPublicKey answers a 5 MiB PEM (client size cap)
#   meta         GetKey answers with name = the request metadata seen
#   abort        the handler raises (grpcio answers UNKNOWN)
# ListKeys pages over key-00 .. key-(N-1) (N = --list-count, default 7);
# page_token is the index of the next key.
#
# With --raw MODE it is instead a hand-written HTTP/2 server (ssl module,
# HPACK literals) that answers every request in one misbehaving way, to test
# the client's edge cases: trailers-only (grpc-status 5 and a grpc-message
# with good and bad percent escapes), rst-refused, rst-internal, goaway,
# no-grpc-status (HTTP 503, no grpc-status), compressed (LPM flag 1),
# bad-length (LPM prefix longer than the data), no-message (OK without
# DATA), close (drops the connection), silent (never answers), no-alpn
# (TLS without ALPN h2), headers (INVALID_ARGUMENT whose message reports the
# request's x-boltseal-otp and whether it came as a never-indexed HPACK
# literal, RFC 7541 6.2.3: "otp=CODE;never-indexed", "otp=CODE;indexable" or
# "otp=none").
#
# --selftest BOLTSEAL runs the `boltseal` CLI binary against both servers
# (started in this process) and checks outputs and exit codes; it exits 0
# when every check passed. It needs DIR from `scripts/mkpki DIR --test-extras`.

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")

WEIRD_MESSAGE = "100% bad \u00e9t\u00e9 \u2603\nline2 'q' \"dq\""


def load_stubs(outdir):
    subprocess.run(["protoc", "--python_out=" + outdir, "-I" + PROTO_DIR,
                    "boltseal/v1/keys.proto", "grpc/health/v1/health.proto"], check=True)
    mods = []
    for name, rel in (("keys_pb2", "boltseal/v1/keys_pb2.py"),
                      ("health_pb2", "grpc/health/v1/health_pb2.py")):
        spec = importlib.util.spec_from_file_location(name, os.path.join(outdir, rel))
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        mods.append(m)
    return mods


class Fake:
    def __init__(self, pb, hpb, list_count):
        self.pb = pb
        self.hpb = hpb
        self.list_count = list_count
        self.lock = threading.Lock()
        self.keys = {}          # name -> (Key message, [private keys])

    def _key(self, name, alg=1, purpose=1):
        with self.lock:
            if name not in self.keys:
                k = self.pb.Key(name=name, algorithm=alg, purpose=purpose, state=1,
                                primary_version=1, create_time_unix=1700000000)
                k.versions.add(version=1, state=1, create_time_unix=1700000000)
                self.keys[name] = (k, [ec.generate_private_key(ec.SECP256R1())])
            return self.keys[name]

    def _special(self, name, ctx):
        if name == "missing":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "key 'missing' not found")
        if name == "weird":
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, WEIRD_MESSAGE)
        if name == "slow":
            time.sleep(3)
        if name == "abort":
            raise RuntimeError("handler failure")

    def create_key(self, req, ctx):
        self._special(req.name, ctx)
        if req.name == "exists":
            ctx.abort(grpc.StatusCode.ALREADY_EXISTS, "key 'exists' already exists")
        if req.algorithm == 0:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "algorithm is required")
        k, _ = self._key(req.name, req.algorithm, req.purpose)
        return self.pb.CreateKeyResponse(key=k)

    def get_key(self, req, ctx):
        self._special(req.name, ctx)
        if req.name == "meta":
            md = dict(ctx.invocation_metadata())
            seen = "user-agent=%s;remaining=%d" % (
                md.get("user-agent", ""), int(ctx.time_remaining() or -1))
            k, _ = self._key("meta")
            k2 = self.pb.Key()
            k2.CopyFrom(k)
            k2.name = seen
            return self.pb.GetKeyResponse(key=k2)
        k, _ = self._key(req.name)
        return self.pb.GetKeyResponse(key=k)

    def list_keys(self, req, ctx):
        size = req.page_size or 100
        start = int(req.page_token) if req.page_token else 0
        resp = self.pb.ListKeysResponse()
        for i in range(start, min(start + size, self.list_count)):
            k, _ = self._key("key-%02d" % i)
            resp.keys.append(k)
        if start + size < self.list_count:
            resp.next_page_token = str(start + size)
        return resp

    def rotate_key(self, req, ctx):
        self._special(req.name, ctx)
        k, privs = self._key(req.name)
        with self.lock:
            privs.append(ec.generate_private_key(ec.SECP256R1()))
            v = len(privs)
            k.versions.add(version=v, state=1, create_time_unix=1700000000 + v)
            k.primary_version = v
        return self.pb.RotateKeyResponse(key=k, new_version=v)

    def get_public_key(self, req, ctx):
        self._special(req.name, ctx)
        if req.name == "huge":
            return self.pb.GetPublicKeyResponse(name="huge", version=1, algorithm=1,
                                                pem="A" * (5 * 1024 * 1024))
        k, privs = self._key(req.name)
        v = req.version or len(privs)
        if v > len(privs):
            ctx.abort(grpc.StatusCode.NOT_FOUND, "version %d of '%s' not found" % (v, req.name))
        pub = privs[v - 1].public_key()
        return self.pb.GetPublicKeyResponse(
            name=req.name, version=v, algorithm=1,
            pem=pub.public_bytes(serialization.Encoding.PEM,
                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            der=pub.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo))

    @staticmethod
    def _digest(which, message, digest, ctx):
        if which == "message":
            return hashlib.sha256(message).digest()
        if which == "digest":
            if len(digest) != 32:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "digest must be 32 bytes")
            return digest
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "message or digest required")

    @staticmethod
    def _sign(priv, d, fmt):
        sig = priv.sign(d, ec.ECDSA(Prehashed(hashes.SHA256())))
        if fmt == 2:
            r, s = decode_dss_signature(sig)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sig

    def sign(self, req, ctx):
        self._special(req.key_name, ctx)
        d = self._digest(req.WhichOneof("input"), req.message, req.digest, ctx)
        k, privs = self._key(req.key_name)
        return self.pb.SignResponse(signature=self._sign(privs[-1], d, req.signature_format),
                                    key_name=req.key_name, key_version=len(privs),
                                    algorithm=1)

    def verify(self, req, ctx):
        d = self._digest(req.WhichOneof("input"), req.message, req.digest, ctx)
        sig = req.signature
        if req.signature_format == 2:
            if len(sig) != 64:
                return self.pb.VerifyResponse(valid=False)
            sig = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
        if req.WhichOneof("key") == "public_key_der":
            try:
                pubs = [(0, serialization.load_der_public_key(req.public_key_der))]
            except ValueError:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad public key")
        else:
            self._special(req.key_name, ctx)
            _, privs = self._key(req.key_name)
            pubs = [(i + 1, p.public_key()) for i, p in enumerate(privs)]
            if req.key_version:
                pubs = [x for x in pubs if x[0] == req.key_version]
        for v, pub in pubs:
            try:
                pub.verify(sig, d, ec.ECDSA(Prehashed(hashes.SHA256())))
                return self.pb.VerifyResponse(valid=True, key_version=v)
            except InvalidSignature:
                pass
        return self.pb.VerifyResponse(valid=False)

    def sign_batch(self, req, ctx):
        self._special(req.key_name, ctx)
        _, privs = self._key(req.key_name)
        resp = self.pb.SignBatchResponse(key_name=req.key_name, key_version=len(privs),
                                         algorithm=1)
        for it in req.items:
            which = it.WhichOneof("input")
            if which == "digest" and len(it.digest) != 32:
                resp.results.add(status_code=3, error_message="digest must be 32 bytes")
                continue
            d = hashlib.sha256(it.message).digest() if which == "message" else it.digest
            resp.results.add(signature=self._sign(privs[-1], d, req.signature_format))
        return resp

    def health(self, req, ctx):
        if req.service in ("", "boltseal.v1.KeyService"):
            return self.hpb.HealthCheckResponse(status=1)
        if req.service == "down":
            return self.hpb.HealthCheckResponse(status=2)
        ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service")


RAW_MODES = ("trailers-only", "rst-refused", "rst-internal", "goaway", "no-grpc-status",
             "compressed", "bad-length", "no-message", "close", "silent", "no-alpn",
             "headers")


def _hpack(headers):
    """HPACK literal header fields without indexing, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for n, v in headers:
        n, v = n.encode(), v.encode()
        assert len(n) < 127 and len(v) < 127
        out += b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
    return out


def _frame(ftype, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def _otp_seen(fields):
    """What mode "headers" reports of the request's fields (name, value, flags)."""
    for n, v, f in fields:
        if n == "x-boltseal-otp":
            return "otp=%s;%s" % (v, "never-indexed" if f & 1 else "indexable")
    return "otp=none"


def _raw_answer(mode, sid, fields=()):
    HDR, DAT, RST, GOA = 1, 0, 3, 7
    ok_hdrs = [(":status", "200"), ("content-type", "application/grpc")]
    if mode == "headers":
        return _frame(HDR, 0x5, sid, _hpack(ok_hdrs + [
            ("grpc-status", "3"), ("grpc-message", _otp_seen(fields))]))
    if mode == "trailers-only":
        return _frame(HDR, 0x5, sid, _hpack(ok_hdrs + [
            ("grpc-status", "5"), ("grpc-message", "key%20%27x%27%zz%4 %C3%A9%0Aend%")]))
    if mode == "rst-refused":
        return _frame(RST, 0, sid, (7).to_bytes(4, "big"))
    if mode == "rst-internal":
        return _frame(RST, 0, sid, (2).to_bytes(4, "big"))
    if mode == "goaway":
        return _frame(GOA, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    if mode == "no-grpc-status":
        return _frame(HDR, 0x5, sid, _hpack([(":status", "503")]))
    trailers = _frame(HDR, 0x5, sid, _hpack([("grpc-status", "0")]))
    if mode == "compressed":
        return (_frame(HDR, 0x4, sid, _hpack(ok_hdrs)) +
                _frame(DAT, 0, sid, b"\x01\x00\x00\x00\x02ab") + trailers)
    if mode == "bad-length":
        return (_frame(HDR, 0x4, sid, _hpack(ok_hdrs)) +
                _frame(DAT, 0, sid, b"\x00\x00\x00\x00\x09ab") + trailers)
    if mode == "no-message":
        return _frame(HDR, 0x4, sid, _hpack(ok_hdrs)) + trailers
    return b""


def raw_context(a):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(a.cert or os.path.join(a.pki, "server.pem"),
                        a.key or os.path.join(a.pki, "server.key"))
    ctx.load_verify_locations(os.path.join(a.pki, "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    if a.raw != "no-alpn":
        ctx.set_alpn_protocols(["h2"])
    return ctx


def raw_loop(ctx, ls, mode):
    while True:
        try:
            conn, _ = ls.accept()
        except OSError:
            return
        threading.Thread(target=raw_conn, args=(ctx, conn, mode), daemon=True).start()


def raw_serve(a):
    import socket
    ctx = raw_context(a)
    ls = socket.create_server(("127.0.0.1", a.port))
    print("listening %d" % ls.getsockname()[1], flush=True)
    raw_loop(ctx, ls, a.raw)


def _close_gently(s):
    """Drops the connection the way the "close" mode means it: FIN first, then
    the client's last bytes are read until it closes too (bounded: 2 s). A
    close() with unread bytes in the receive buffer would send a TCP RST, and
    the client would report "reset by peer" instead of a closed connection."""
    import socket
    try:
        s.shutdown(socket.SHUT_WR)
        s.settimeout(2.0)
        while s.recv(65536):
            pass
    except (OSError, ValueError):
        pass
    s.close()


def raw_conn(ctx, conn, mode):
    try:
        s = ctx.wrap_socket(conn, server_side=True)
    except (ssl_error(), OSError):
        conn.close()
        return
    buf = b""
    hpack = None
    fields = {}

    def need(n):
        nonlocal buf
        while len(buf) < n:
            d = s.recv(65536)
            if not d:
                raise EOFError
            buf += d
        out, buf = buf[:n], buf[n:]
        return out

    try:
        need(24)
        s.sendall(_frame(4, 0, 0, b""))
        while True:
            hdr = need(9)
            ln = int.from_bytes(hdr[:3], "big")
            ftype, flags, sid = hdr[3], hdr[4], int.from_bytes(hdr[5:9], "big") & 0x7fffffff
            payload = need(ln)
            if ftype == 1 and mode == "headers":   # one HEADERS frame (END_HEADERS) per request
                import h2raw
                hpack = hpack or h2raw.HpackDecoder()
                pad = payload[0] if flags & 0x8 else 0
                block = payload[(1 if flags & 0x8 else 0) + (5 if flags & 0x20 else 0):
                                len(payload) - pad]
                fields[sid] = hpack.decode(block, with_flags=True)
            if ftype == 4 and not flags & 1:
                s.sendall(_frame(4, 1, 0, b""))
            if ftype in (0, 1) and flags & 1:   # END_STREAM: the request is complete
                if mode == "close":
                    _close_gently(s)
                    return
                if mode != "silent":
                    s.sendall(_raw_answer(mode, sid, fields.pop(sid, ())))
    except (EOFError, OSError):
        pass
    s.close()


def ssl_error():
    import ssl
    return ssl.SSLError


def _start_grpc(a, pki, cert=None, key=None):
    tmp = tempfile.mkdtemp(prefix="bs-fake-")
    pb, hpb = load_stubs(tmp)
    return build_server(pb, hpb, a.list_count, pki, 0, cert, key)


def selftest(a):
    import base64
    import json
    import socket
    pki = a.pki
    cli = os.path.abspath(a.selftest)
    env = dict(os.environ, BOLTSEAL_CA=os.path.join(pki, "ca.pem"),
               BOLTSEAL_CERT=os.path.join(pki, "clients", "ci-ota-release.pem"),
               BOLTSEAL_KEY=os.path.join(pki, "clients", "ci-ota-release.key"))
    env.pop("BOLTSEAL_CONFIG", None)
    fails = []

    def run(port, *args, stdin=None):
        p = subprocess.run([cli, "--server", "127.0.0.1:%d" % port] + list(args), env=env,
                           input=stdin, capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def check(name, cond, detail=""):
        print("%s %s %s" % ("ok  " if cond else "FAIL", name, detail if not cond else ""))
        if not cond:
            fails.append(name)

    server, port = _start_grpc(a, pki)
    rc, out, _ = run(port, "health")
    check("health serving", rc == 0 and out.strip() == "SERVING", out)
    rc, out, _ = run(port, "--json", "create-key", "k1", "--alg", "ecdsa-p256-sha256")
    check("create-key json", rc == 0 and json.loads(out)["key"]["algorithm"] == "ecdsa-p256-sha256"
          and json.loads(out)["key"]["purpose"] == "generic", out)
    rc, _, err = run(port, "sign", "missing", "--message", "x")
    check("NOT_FOUND line", rc == 4 and err.strip() == "boltseal: sign: NOT_FOUND: key 'missing' not found", err)
    rc, _, err = run(port, "get-key", "weird")
    check("grpc-message decoding", rc == 4 and ("INVALID_ARGUMENT: " + WEIRD_MESSAGE.replace("\n", "?")) in err, err)
    rc, out, _ = run(port, "--json", "sign", "k1", "--message", "hello")
    sig = json.loads(out)["signature"] if rc == 0 else ""
    check("sign json", rc == 0 and json.loads(out)["key"] == "k1", out)
    rc, out, _ = run(port, "verify", "k1", "--message", "hello", "--signature", sig)
    check("verify valid", rc == 0 and out.startswith("valid"), out)
    rc, out, _ = run(port, "verify", "k1", "--message", "hellO", "--signature", sig)
    check("verify invalid exit 1", rc == 1 and out.strip() == "invalid", out)
    rc, out, _ = run(port, "--json", "list-keys", "--all", "--page-size", "3")
    check("list-keys --all", rc == 0 and len(json.loads(out)["keys"]) == a.list_count, out)
    d = hashlib.sha256(b"a").hexdigest() + "\n" + hashlib.sha256(b"b").hexdigest() + "\n"
    rc, out, _ = run(port, "--json", "sign-batch", "k1", "--digests-file", "-", stdin=d.encode())
    check("sign-batch", rc == 0 and len(json.loads(out)["results"]) == 2, out)
    rc, _, err = run(port, "get-public-key", "huge")
    check("4 MiB response cap", rc == 4 and "RESOURCE_EXHAUSTED" in err, err)
    rc, _, err = run(port, "--timeout", "500", "get-key", "slow")
    check("deadline", rc in (3, 4) and ("DEADLINE_EXCEEDED" in err or "timed out" in err), err)
    rc, _, err = run(port, "--server-name", "wrong.example", "health")
    check("server name mismatch refused", rc == 3 and "hostname mismatch" in err, err)
    rc, _, err = run(port, "sign", "k1")
    check("usage exit 2", rc == 2, err)
    server.stop(0)

    server, port = _start_grpc(a, pki, os.path.join(pki, "bad", "other-ca-client.pem"),
                               os.path.join(pki, "bad", "other-ca-client.key"))
    rc, _, err = run(port, "health")
    check("server from another CA refused", rc == 3 and "verification failed" in err, err)
    server.stop(0)

    expect = {"trailers-only": (4, "NOT_FOUND: key 'x'%zz%4 \u00e9?end%"),
              "rst-refused": (4, "UNAVAILABLE"), "rst-internal": (4, "INTERNAL"),
              "goaway": (4, "UNAVAILABLE: server sent GOAWAY"),
              "no-grpc-status": (4, "UNAVAILABLE"), "compressed": (4, "INTERNAL"),
              "bad-length": (4, "INTERNAL"), "no-message": (4, "INTERNAL"),
              "close": (3, "connection closed"), "silent": (3, "timed out"),
              "no-alpn": (3, "ALPN")}
    for mode, (want_rc, want) in expect.items():
        ls = socket.create_server(("127.0.0.1", 0))
        ra = argparse.Namespace(pki=pki, cert=None, key=None, raw=mode, port=0)
        threading.Thread(target=raw_loop, args=(raw_context(ra), ls, mode), daemon=True).start()
        rc, _, err = run(ls.getsockname()[1], "--timeout", "500", "get-key", "x")
        check("raw " + mode, rc == want_rc and want in err, "rc=%d %s" % (rc, err))
        ls.close()
    # the second-factor code travels as a never-indexed literal, only when given
    ls = socket.create_server(("127.0.0.1", 0))
    ra = argparse.Namespace(pki=pki, cert=None, key=None, raw="headers", port=0)
    threading.Thread(target=raw_loop, args=(raw_context(ra), ls, "headers"), daemon=True).start()
    hport = ls.getsockname()[1]
    rc, _, err = run(hport, "--otp", "123456", "keys", "disable", "x")
    check("otp never indexed", rc == 4 and "otp=123456;never-indexed" in err, "rc=%d %s" % (rc, err))
    rc, _, err = run(hport, "keys", "disable", "x")
    check("no otp unless given", rc == 4 and "otp=none" in err, "rc=%d %s" % (rc, err))
    ls.close()
    print("%d failed" % len(fails))
    return 1 if fails else 0


def build_server(pb, hpb, list_count, pki, port, cert=None, key=None):
    f = Fake(pb, hpb, list_count)

    def h(fn, req_cls, resp_cls):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)

    ks = grpc.method_handlers_generic_handler("boltseal.v1.KeyService", {
        "CreateKey": h(f.create_key, pb.CreateKeyRequest, pb.CreateKeyResponse),
        "GetKey": h(f.get_key, pb.GetKeyRequest, pb.GetKeyResponse),
        "ListKeys": h(f.list_keys, pb.ListKeysRequest, pb.ListKeysResponse),
        "RotateKey": h(f.rotate_key, pb.RotateKeyRequest, pb.RotateKeyResponse),
        "GetPublicKey": h(f.get_public_key, pb.GetPublicKeyRequest, pb.GetPublicKeyResponse),
        "Sign": h(f.sign, pb.SignRequest, pb.SignResponse),
        "Verify": h(f.verify, pb.VerifyRequest, pb.VerifyResponse),
        "SignBatch": h(f.sign_batch, pb.SignBatchRequest, pb.SignBatchResponse),
    })
    hs = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": h(f.health, hpb.HealthCheckRequest, hpb.HealthCheckResponse),
    })

    def rd(p):
        with open(p, "rb") as fh:
            return fh.read()

    creds = grpc.ssl_server_credentials(
        [(rd(key or os.path.join(pki, "server.key")), rd(cert or os.path.join(pki, "server.pem")))],
        root_certificates=rd(os.path.join(pki, "ca.pem")), require_client_auth=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_concurrent_streams", 100)])
    server.add_generic_rpc_handlers((ks, hs))
    port = server.add_secure_port("127.0.0.1:%d" % port, creds)
    server.start()
    return server, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pki", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--list-count", type=int, default=7)
    ap.add_argument("--raw", choices=RAW_MODES)
    ap.add_argument("--selftest", metavar="BOLTSEAL")
    a = ap.parse_args()
    if a.selftest:
        return selftest(a)
    if a.raw:
        return raw_serve(a)

    tmp = tempfile.mkdtemp(prefix="bs-fake-")
    pb, hpb = load_stubs(tmp)
    server, port = build_server(pb, hpb, a.list_count, a.pki, a.port, a.cert, a.key)
    print("listening %d" % port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    server.stop(0)


if __name__ == "__main__":
    sys.exit(main())
