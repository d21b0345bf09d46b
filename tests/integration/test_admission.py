# test_admission.py - a caller who may not make a call is refused when its
# request HEADERS arrive, before the daemon buffers any of its request DATA.
#
# Whether a call may proceed depends only on the client certificate and the
# :path: the certificate must map to a principal (else UNAUTHENTICATED, 16)
# and some role of that principal must name the method (else
# PERMISSION_DENIED, 7). Both are known once the header block is complete, so
# the daemon must answer there (a Trailers-Only response), and must not hold
# request bodies of such callers in memory meanwhile: otherwise any holder of
# a certificate from the CA - mapped or not - can make the daemon allocate
# max_message_bytes per stream, times max_concurrent_streams, times
# connections, without ever being authorized to call anything.
#
# Each case runs against a daemon of its own (fresh VmHWM), configured with
# the production cap max_message_bytes = 4 MiB (the suite's session daemon
# uses 64 KiB, under which a 4 MiB prefix would be refused as too large and
# prove nothing). Over 127.0.0.1 only, the refused client
#   - opens 3 TLS + HTTP/2 connections, and on each 100 streams (the daemon's
#     max_concurrent_streams): HEADERS of a POST to KeyService/Sign, without
#     END_STREAM;
#   - right after them (pipelined, not waiting for any answer) sends on each
#     stream a gRPC length prefix announcing 4 MiB (within the cap, so it is
#     a message the daemon would accept from an authorized caller) and then
#     DATA as far as HTTP/2 flow control lets it, up to one initial stream
#     window (1 MiB) per stream - 300 MiB in all - within a few seconds; it
#     never sends END_STREAM and never completes the message, and it stops
#     sending on a stream the daemon resets (RFC 9113 5.1);
#   - on a fourth connection sends HEADERS only, never any DATA.
# Then: the daemon's peak RSS (VmHWM of /proc/<pid>/status) stays under
# 64 MiB (in an ASan build, whose baseline is larger: its growth over the
# RSS before the test does); every stream got, within 2 s of its HEADERS, a
# Trailers-Only answer (:status 200, END_STREAM, no message) with the
# expected grpc-status, although none ever sent END_STREAM and the probe
# streams not even DATA; and the daemon still serves an authorized client.
#
# Identities: "unmapped" is a certificate minted here by the dev CA with URI
# SAN spiffe://fleet.example/it/admission-unmapped, which no principal of
# policy-it.conf names (the only uri-prefix there is .../gw/); "denied" is the
# dev identity admin-alice, principal alice, whose only role fleet-admin does
# not name KeyService/Sign.

import os
import select
import ssl
import struct
import time

import grpc
import pytest

import bsutil
import conftest
import h2raw
import pkitool

SIGN = "/boltseal.v1.KeyService/Sign"
UNMAPPED_URI = "spiffe://fleet.example/it/admission-unmapped"
DENIED_IDENT = "admin-alice"        # principal alice, role fleet-admin: no Sign
GOOD_IDENT = conftest.GOOD_CLIENT   # ci-ota-release: it-all grants Sign

MIB = 1024 * 1024
MAX_MESSAGE_BYTES = 4 * MIB         # the daemon's cap here (its built-in default)
ANNOUNCED = 0x400000                # what each length prefix announces: 4 MiB
CONNECTIONS = 3
STREAMS = 100                       # per connection = max_concurrent_streams
PROBE_STREAMS = 5                   # HEADERS-only streams on a fourth connection
STREAM_BUDGET = 1 * MIB             # DATA payload per stream at most (one initial window)
FLOOD_SECONDS = 4.0                 # time limit of the sending phase
STALL_SECONDS = 0.5                 # windows closed this long: stop sending
ANSWER_SECONDS = 3.0                # then wait this long at most for the answers
ANSWER_LATENCY = 2.0                # an answer must come this soon after its HEADERS
RSS_LIMIT = 64 * MIB

PREFIX = h2raw.lpm(b"", declared_len=ANNOUNCED)
# Never complete the message: a complete one would be a different case.
STREAM_TARGET = min(len(PREFIX) + ANNOUNCED - 1, STREAM_BUDGET)
ZEROS = bytes(1 << 16)

assert ANNOUNCED <= MAX_MESSAGE_BYTES
assert STREAM_BUDGET * STREAMS * CONNECTIONS > 4 * RSS_LIMIT  # the flood can show buffering


def status_kib(pid, field):
    """A "VmXXX:  N kB" field of /proc/<pid>/status, in KiB (None if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def is_asan(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


class Stream:
    def __init__(self, sid, window):
        self.sid = sid
        self.window = window     # our send window on this stream
        self.sent = 0            # DATA payload bytes sent
        self.resp = h2raw.Response()
        self.headers_at = None   # when its HEADERS went out
        self.answered_at = None  # when its first response header block came
        self.sent_at_answer = None

    @property
    def closed(self):
        return self.resp.ended or self.resp.rst is not None

    def payload(self, n):
        """The next n bytes of this stream's request body: the 5-byte length
        prefix, then zeros."""
        off = self.sent
        if off >= len(PREFIX):
            return ZEROS[:n]
        head = PREFIX[off:off + n]
        return head + ZEROS[:n - len(head)]


class Conn:
    """One raw HTTP/2 connection that tracks the peer's flow-control windows
    and every response frame (h2raw.H2Conn does the framing, HPACK decoding,
    SETTINGS and PING acks)."""

    def __init__(self, port, ca, cert, key):
        self.h2 = h2raw.H2Conn(h2raw.tls_connect(port, ca, cert, key))
        self.sock = self.h2.sock
        self.conn_window = 65535
        self.init_window = 65535
        self.max_frame = 16384
        self.max_streams = None
        self.settings_seen = False
        self.streams = {}
        self.block = None        # (stream id, fragment, HEADERS flags) in progress
        self.goaway = None
        self.dead = None         # why we stopped talking to it

    def handle(self, fr):
        ftype, flags, sid, payload = fr
        now = time.monotonic()
        if ftype == h2raw.SETTINGS and not flags & h2raw.F_ACK:
            for i in range(0, len(payload) - 5, 6):
                ident, val = struct.unpack(">HI", payload[i:i + 6])
                if ident == 0x3:
                    self.max_streams = val
                elif ident == 0x4:
                    for s in self.streams.values():
                        s.window += val - self.init_window
                    self.init_window = val
                elif ident == 0x5:
                    self.max_frame = val
            self.settings_seen = True
        elif ftype == h2raw.WINDOW_UPDATE:
            inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            elif sid in self.streams:
                self.streams[sid].window += inc
        elif ftype == h2raw.GOAWAY and len(payload) >= 8:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype in (h2raw.HEADERS, h2raw.CONTINUATION):
            if ftype == h2raw.HEADERS:
                pad = 0
                if flags & h2raw.F_PADDED:
                    pad, payload = payload[0], payload[1:]
                if flags & h2raw.F_PRIORITY:
                    payload = payload[5:]
                if pad:
                    payload = payload[:-pad]
                self.block = (sid, payload, flags)
            else:
                bsid, frag, bflags = self.block
                self.block = (bsid, frag + payload, bflags)
            if flags & h2raw.F_END_HEADERS:
                bsid, frag, bflags = self.block
                self.block = None
                fields = self.h2.decoder.decode(frag)  # every block, for HPACK state
                s = self.streams.get(bsid)
                if s is not None:
                    if s.resp.headers is None:
                        s.resp.headers = fields
                        s.answered_at = now
                        s.sent_at_answer = s.sent
                    else:
                        s.resp.trailers = fields
                    if bflags & h2raw.F_END_STREAM:
                        s.resp.ended = True
        elif ftype == h2raw.DATA and sid in self.streams:
            s = self.streams[sid]
            if flags & h2raw.F_PADDED:
                payload = payload[1:len(payload) - payload[0]]
            s.resp.data += payload
            if flags & h2raw.F_END_STREAM:
                s.resp.ended = True
        elif ftype == h2raw.RST_STREAM and sid in self.streams:
            self.streams[sid].resp.rst = struct.unpack(">I", payload[:4])[0]

    def drain(self, max_frames=2000):
        """Handles the frames already received (waits a few ms at most for
        the rest of a partly received one)."""
        for _ in range(max_frames):
            try:
                fr = self.h2.read_frame(time.monotonic() + 0.002)
            except (ssl.SSLError, OSError) as e:
                self.dead = self.dead or "read: %r" % e
                return
            if fr is None:
                if self.h2.eof:
                    self.dead = self.dead or "connection closed by the daemon"
                return
            self.handle(fr)

    def readable(self):
        return not self.dead and (len(self.h2.buf) >= 9 or self.sock.pending())

    def send(self, data):
        if self.dead:
            return False
        try:
            self.sock.sendall(data)
            return True
        except (ssl.SSLError, OSError) as e:
            self.dead = "send: %r" % e
            return False

    def open_streams(self, n):
        """n request HEADERS (POST Sign, no END_STREAM) in one write."""
        out = bytearray()
        hdrs = [(":method", "POST"), (":scheme", "https"), (":path", SIGN),
                (":authority", "localhost"), ("content-type", "application/grpc"),
                ("te", "trailers")]
        block = h2raw.hpack_literal(hdrs)
        for _ in range(n):
            sid = self.h2.next_stream
            self.h2.next_stream += 2
            self.streams[sid] = Stream(sid, self.init_window)
            out += h2raw.H2Conn.frame(h2raw.HEADERS, h2raw.F_END_HEADERS, sid, block)
        now = time.monotonic()
        for s in self.streams.values():
            s.headers_at = s.headers_at or now
        self.send(bytes(out))

    def data_round(self):
        """At most one DATA frame per open stream, as the windows allow, in
        one write. Returns the payload bytes sent."""
        out = bytearray()
        total = 0
        for s in self.streams.values():
            if s.resp.rst is not None:
                continue  # no frames after RST_STREAM
            n = min(self.max_frame, s.window, self.conn_window, STREAM_TARGET - s.sent)
            if n <= 0:
                continue
            out += h2raw.H2Conn.frame(h2raw.DATA, 0, s.sid, s.payload(n))
            s.sent += n
            s.window -= n
            self.conn_window -= n
            total += n
        if out and not self.send(bytes(out)):
            return 0
        return total

    def close(self):
        try:
            self.h2.close()
        except OSError:
            pass


def pump(conns, wait):
    """Handles whatever the daemon sent on conns; waits up to wait seconds
    if nothing is there yet."""
    live = [c for c in conns if not c.dead]
    ready = [c for c in live if c.readable()]
    if not ready and live:
        r, _, _ = select.select([c.sock for c in live], [], [], wait)
        ready = [c for c in live if c.sock in r]
    for c in ready:
        c.drain()


def wait_settings(conns, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not all(c.settings_seen or c.dead for c in conns):
        pump(conns, 0.05)
    for c in conns:
        assert c.settings_seen, "no SETTINGS from the daemon (%s)" % c.dead


class AdmEnv:
    def __init__(self, env, sd, daemon):
        self.env = env
        self.sd = sd
        self.daemon = daemon
        self.pb = env.stubs.pb
        self.channels = []
        self.good = self.client(*env.client_files(GOOD_IDENT))
        self.unmapped = pkitool.mint_client(pkitool.dev_ca(env.pki),
                                            os.path.join(sd.dir, "certs"),
                                            "admission-unmapped", UNMAPPED_URI)

    def client(self, cert, key):
        ch = bsutil.local_channel(self.sd.port, self.env.ca, cert, key)
        self.channels.append(ch)
        return bsutil.Client(ch, self.env.stubs)

    def assert_still_serving(self):
        """env.assert_still_serving for this daemon: a Sign over the channel
        opened before the test and over a brand-new connection both work."""
        pb = self.pb
        assert self.daemon.proc.poll() is None, "boltsealed exited (rc %r)" % (
            self.daemon.proc.poll(),)
        for c in (self.good, self.client(*self.env.client_files(GOOD_IDENT))):
            r = c.Sign(pb.SignRequest(key_name="adm-serving", message=b"still serving"),
                       timeout=15)
            assert bsutil.crypto_verify(bsutil.ALG_ECDSA, self.spki, b"still serving",
                                        False, r.signature), "bad signature from Sign"
        assert self.daemon.proc.poll() is None, "boltsealed exited"


@pytest.fixture
def adm(env, monkeypatch):
    """A daemon of its own (so VmHWM is this test's peak) with the default
    4 MiB message cap and 100 concurrent streams per connection."""
    # ASan builds only: its quarantine (256 MiB by default) keeps freed memory
    # resident, so even a daemon that discards every byte would grow by the
    # 300 MiB passing through. A small quarantine keeps RSS meaningful.
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=16")
    sd = conftest.SecondDaemon(env, "admission")
    aenv = None
    try:
        sd.settings["max_message_bytes"] = MAX_MESSAGE_BYTES
        sd.settings["max_concurrent_streams"] = STREAMS
        bsutil.write_config(sd.conf, sd.settings)
        daemon = sd.start()
        aenv = AdmEnv(env, sd, daemon)
        pb = aenv.pb
        aenv.good.CreateKey(pb.CreateKeyRequest(name="adm-serving", purpose=pb.GENERIC,
                                                algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        aenv.spki = aenv.good.GetPublicKey(pb.GetPublicKeyRequest(name="adm-serving"),
                                           timeout=15).der
        yield aenv
    finally:
        if aenv is not None:
            for ch in aenv.channels:
                ch.close()
            rc, tail = aenv.daemon.terminate(15.0), aenv.daemon.log_tail(60)
        else:
            rc, tail = 0, ""
        sd.cleanup()
    assert rc == 0, "boltsealed exited with %r after SIGTERM; log tail:\n%s" % (rc, tail)


def describe(s):
    r = s.resp
    if r.headers is None:
        what = "no answer" if r.rst is None else "RST_STREAM %d without an answer" % r.rst
    else:
        what = ":status %s grpc-status %s (%r)%s%s" % (
            r.status, r.grpc_status, r.grpc_message,
            "" if r.ended else " without END_STREAM",
            " + %d response DATA bytes" % len(r.data) if r.data else "")
    return what


@pytest.mark.parametrize("who,expect", [("unmapped", 16), ("denied", 7)],
                         ids=["unmapped-cert-UNAUTHENTICATED", "no-grant-PERMISSION_DENIED"])
def test_refused_at_headers_without_buffering(adm, who, expect):
    if who == "unmapped":
        cert, key = adm.unmapped
    else:
        cert, key = adm.env.client_files(DENIED_IDENT)
    pid = adm.daemon.pid
    asan = is_asan(pid)
    port, ca = adm.sd.port, adm.env.ca

    rss_before = status_kib(pid, "VmRSS")
    conns = [Conn(port, ca, cert, key) for _ in range(CONNECTIONS)]
    probe = Conn(port, ca, cert, key)
    everyone = conns + [probe]
    try:
        wait_settings(everyone)
        for c in conns:
            assert c.max_streams is None or c.max_streams >= STREAMS, \
                "daemon allows only %d streams per connection" % c.max_streams

        # HEADERS only, on the probe connection: nothing else is ever sent there.
        probe.open_streams(PROBE_STREAMS)
        # 100 streams per connection, their DATA right behind the HEADERS.
        for c in conns:
            c.open_streams(STREAMS)

        t0 = time.monotonic()
        rss_max = rss_before or 0
        last_sample = 0.0
        stalled_since = None
        while True:
            now = time.monotonic()
            if now - t0 >= FLOOD_SECONDS:
                break
            sent = sum(c.data_round() for c in conns)
            pump(everyone, 0 if sent else 0.05)
            if now - last_sample >= 0.05:
                rss_max = max(rss_max, status_kib(pid, "VmRSS") or 0)
                last_sample = now
            if all(c.dead or all(s.sent >= STREAM_TARGET or s.resp.rst is not None
                                 for s in c.streams.values()) for c in conns):
                break
            if sent:
                stalled_since = None
            elif stalled_since is None:
                stalled_since = now
            elif now - stalled_since >= STALL_SECONDS:
                break  # windows stay closed: flow control allows no more
        flood_seconds = time.monotonic() - t0

        # Let the answers come (an answer at HEADERS is there already).
        end = time.monotonic() + ANSWER_SECONDS
        while time.monotonic() < end and not all(
                c.dead or all(s.closed for s in c.streams.values()) for c in everyone):
            pump(everyone, 0.05)
            rss_max = max(rss_max, status_kib(pid, "VmRSS") or 0)

        hwm = status_kib(pid, "VmHWM")
        rss_after = status_kib(pid, "VmRSS")
        sent_total = sum(s.sent for c in conns for s in c.streams.values())
        flood_streams = [s for c in conns for s in c.streams.values()]
        probe_streams = list(probe.streams.values())
        dead = ["connection %d: %s" % (i, c.dead) for i, c in enumerate(everyone) if c.dead]
    finally:
        for c in everyone:
            c.close()

    problems = []
    facts = ("%d MiB of request DATA sent on %d streams in %.1f s (never END_STREAM); "
             "daemon VmRSS before %.1f MiB, max seen %.1f MiB, after %.1f MiB, VmHWM %.1f MiB%s"
             % (sent_total // MIB, len(flood_streams), flood_seconds, (rss_before or 0) / 1024,
                rss_max / 1024, (rss_after or 0) / 1024, (hwm or 0) / 1024,
                " (ASan build)" if asan else ""))

    # 1. Nothing of the refused callers' bodies was kept.
    assert hwm is not None, "cannot read VmHWM of boltsealed (pid %d)" % pid
    if asan:
        # ASan's own heap and shadow memory: bound the growth instead.
        if (hwm - (rss_before or 0)) * 1024 >= RSS_LIMIT:
            problems.append("daemon peak RSS grew by %.1f MiB (>= 64 MiB): refused callers' "
                            "request bodies are being buffered" % ((hwm - rss_before) / 1024))
    elif hwm * 1024 >= RSS_LIMIT:
        problems.append("daemon peak RSS (VmHWM) %.1f MiB >= 64 MiB: refused callers' request "
                        "bodies are being buffered before the caller is checked"
                        % (hwm / 1024))

    # 2. Every stream answered, with the refusal, while the client had not
    #    finished its request (END_STREAM was never sent), the probe streams
    #    without any DATA at all.
    for label, streams in (("HEADERS-only probe", probe_streams),
                           ("HEADERS+DATA", flood_streams)):
        wrong = {}
        for s in streams:
            r = s.resp
            ok = (r.headers is not None and r.status == 200 and r.grpc_status == expect
                  and r.ended and not r.data)
            if not ok:
                wrong.setdefault(describe(s), []).append(s.sid)
        late = [s for s in streams if s.answered_at is not None and
                s.answered_at - s.headers_at > ANSWER_LATENCY]
        if late:
            problems.append("%d of %d %s streams answered more than %.0f s after their "
                            "HEADERS (slowest %.1f s): not at HEADERS"
                            % (len(late), len(streams), label, ANSWER_LATENCY,
                               max(s.answered_at - s.headers_at for s in late)))
        for what, sids in sorted(wrong.items()):
            problems.append("%d of %d %s streams (e.g. stream %d): %s; expected a "
                            "Trailers-Only answer with grpc-status %d at HEADERS, without "
                            "END_STREAM from the client"
                            % (len(sids), len(streams), label, sids[0], what, expect))
    answered = [s for s in flood_streams + probe_streams if s.answered_at is not None]
    if answered:
        facts += "; slowest answer %.2f s after its HEADERS; median DATA bytes sent on a " \
                 "stream before its answer was read: %d" % (
                     max(s.answered_at - s.headers_at for s in answered),
                     sorted(s.sent_at_answer for s in answered)[len(answered) // 2])
    if dead:
        facts += "; " + "; ".join(dead)
    facts += "; daemon log: tests/integration/logs/boltsealed-admission.log of the build dir"

    # 3. The daemon still serves an authorized client.
    try:
        adm.assert_still_serving()
    except (AssertionError, grpc.RpcError) as e:
        problems.append("daemon no longer serves a good client: %r" % (e,))

    print(facts)  # shown by pytest -s or -rP
    assert not problems, "\n".join(problems + [facts])
