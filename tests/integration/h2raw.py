# h2raw.py - a minimal hand-rolled HTTP/2 client over Python's ssl module, for
# the requests grpcio cannot send: a wrong content-type, a truncated or
# oversized gRPC length prefix, a message without END_STREAM, a raw
# grpc-timeout, and TLS/ALPN probes.
#
# Requests are HPACK-encoded as literals without indexing and without Huffman
# (RFC 7541 6.2.2), so the daemon has to parse exactly what is written here.
# Responses may use the dynamic table and Huffman coding; they are decoded
# with libnghttp2's HPACK inflater through ctypes (decoding only: what the
# tests assert is the daemon's behaviour, not the decoder's).

import ctypes
import select
import socket
import ssl
import struct
import time
import urllib.parse

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
F_END_STREAM, F_ACK, F_END_HEADERS, F_PADDED, F_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
H2_CANCEL = 0x8


def tls_connect(port, ca, cert=None, key=None, alpn=("h2",), max_version=None,
                host="127.0.0.1", timeout=10.0):
    """A TLS connection to host:port (server verified against ca, name
    "localhost"). Raises ssl.SSLError / OSError if the handshake fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = max_version
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def _int_encode(value, prefix_bits, first_byte=0):
    """HPACK integer (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(headers):
    """Header block: every field a literal without indexing, new name, raw
    (non-Huffman) strings."""
    out = bytearray()
    for name, value in headers:
        n = name.encode() if isinstance(name, str) else name
        v = value.encode() if isinstance(value, str) else value
        out += b"\x00" + _int_encode(len(n), 7) + n + _int_encode(len(v), 7) + v
    return bytes(out)


class _NV(ctypes.Structure):
    _fields_ = [("name", ctypes.POINTER(ctypes.c_uint8)),
                ("value", ctypes.POINTER(ctypes.c_uint8)),
                ("namelen", ctypes.c_size_t),
                ("valuelen", ctypes.c_size_t),
                ("flags", ctypes.c_uint8)]


_lib = None


def _nghttp2():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libnghttp2.so.14")
        lib.nghttp2_hd_inflate_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.nghttp2_hd_inflate_new.restype = ctypes.c_int
        lib.nghttp2_hd_inflate_hd2.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(_NV), ctypes.POINTER(ctypes.c_int),
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        lib.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
        lib.nghttp2_hd_inflate_end_headers.argtypes = [ctypes.c_void_p]
        lib.nghttp2_hd_inflate_del.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


class HpackDecoder:
    def __init__(self):
        self.lib = _nghttp2()
        self.inf = ctypes.c_void_p()
        if self.lib.nghttp2_hd_inflate_new(ctypes.byref(self.inf)) != 0:
            raise RuntimeError("nghttp2_hd_inflate_new failed")

    def decode(self, block, with_flags=False):
        """The header fields of block as (name, value) pairs, or with
        with_flags as (name, value, nghttp2_nv flags): NGHTTP2_NV_FLAG_NO_INDEX
        (1) marks a field sent as a never-indexed literal."""
        out = []
        buf = ctypes.create_string_buffer(block, len(block))
        base = ctypes.addressof(buf)
        off = 0
        while True:
            nv = _NV()
            flags = ctypes.c_int(0)
            rv = self.lib.nghttp2_hd_inflate_hd2(
                self.inf, ctypes.byref(nv), ctypes.byref(flags),
                ctypes.c_char_p(base + off), len(block) - off, 1)
            if rv < 0:
                raise ValueError("HPACK decoding failed (%d)" % rv)
            off += rv
            if flags.value & 0x02:
                f = (ctypes.string_at(nv.name, nv.namelen).decode("latin-1"),
                     ctypes.string_at(nv.value, nv.valuelen).decode("latin-1"))
                out.append(f + (nv.flags,) if with_flags else f)
            if flags.value & 0x01:
                self.lib.nghttp2_hd_inflate_end_headers(self.inf)
                return out
            if rv == 0 and not flags.value & 0x02:
                raise ValueError("HPACK block incomplete")

    def close(self):
        if self.inf:
            self.lib.nghttp2_hd_inflate_del(self.inf)
            self.inf = ctypes.c_void_p()


class Response:
    """What came back on one stream."""

    def __init__(self):
        self.headers = None      # first header block, list of (name, value)
        self.trailers = None     # second header block
        self.data = b""
        self.rst = None          # RST_STREAM error code
        self.goaway = None       # (error code, debug data)
        self.closed = False      # connection ended (EOF / TLS error)
        self.ended = False       # END_STREAM seen
        self.timed_out = False

    def _get(self, block, name):
        for n, v in block or ():
            if n == name:
                return v
        return None

    @property
    def status(self):
        v = self._get(self.headers, ":status")
        return int(v) if v is not None else None

    @property
    def grpc_status(self):
        """grpc-status from the trailers, or from a Trailers-Only block."""
        v = self._get(self.trailers, "grpc-status")
        if v is None:
            v = self._get(self.headers, "grpc-status")
        return int(v) if v is not None else None

    @property
    def grpc_message(self):
        v = self._get(self.trailers, "grpc-message")
        if v is None:
            v = self._get(self.headers, "grpc-message")
        return urllib.parse.unquote(v) if v is not None else None

    def __repr__(self):
        return ("Response(headers=%r, trailers=%r, data=%r, rst=%r, goaway=%r, closed=%r, "
                "timed_out=%r)" % (self.headers, self.trailers, self.data[:64], self.rst,
                                   self.goaway, self.closed, self.timed_out))


class H2Conn:
    """One HTTP/2 connection over an already handshaken TLS socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.next_stream = 1
        self.decoder = HpackDecoder()
        self.server_settings_seen = False
        self.eof = False
        self.sock.sendall(PREFACE + self.frame(SETTINGS, 0, 0, b""))

    @staticmethod
    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
            struct.pack(">I", sid) + payload

    def send_frame(self, ftype, flags, sid, payload):
        self.sock.sendall(self.frame(ftype, flags, sid, payload))

    def request(self, path, body=b"", content_type="application/grpc", end_stream=True,
                extra=(), chunks=None):
        """Sends HEADERS (+ DATA) for a POST to path; returns the stream id.
        body is sent as one DATA frame (or chunks as several); END_STREAM is
        set on the last one when end_stream."""
        sid = self.next_stream
        self.next_stream += 2
        hdrs = [(":method", "POST"), (":scheme", "https"), (":path", path),
                (":authority", "localhost")]
        hdrs += list(extra)
        if content_type is not None:
            hdrs.append(("content-type", content_type))
        hdrs.append(("te", "trailers"))
        self.send_frame(HEADERS, F_END_HEADERS, sid, hpack_literal(hdrs))
        parts = list(chunks) if chunks is not None else [body]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            self.send_frame(DATA, F_END_STREAM if (last and end_stream) else 0, sid, part)
        return sid

    def _fill(self, deadline):
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if not self.sock.pending():
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLError, ConnectionError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_frame(self, deadline):
        """The next frame as (type, flags, stream id, payload), or None on
        EOF or when deadline (time.monotonic()) passes."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            if not self._fill(deadline):
                return None
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + n]
        self.buf = self.buf[9 + n:]
        if ftype == SETTINGS and not flags & F_ACK:
            self.server_settings_seen = True
            self.send_frame(SETTINGS, F_ACK, 0, b"")
        elif ftype == PING and not flags & F_ACK:
            self.send_frame(PING, F_ACK, 0, payload)
        return ftype, flags, sid, payload

    def response(self, sid, timeout=10.0):
        """Reads frames until stream sid ends (END_STREAM or RST_STREAM), the
        connection ends (GOAWAY/EOF), or timeout seconds pass."""
        resp = Response()
        deadline = time.monotonic() + timeout
        block, block_flags = None, 0
        while True:
            try:
                fr = self.read_frame(deadline)
            except (ssl.SSLError, OSError):
                fr = None
                self.eof = True
            if fr is None:
                resp.closed = self.eof
                resp.timed_out = not self.eof
                return resp
            ftype, flags, fsid, payload = fr
            if ftype == GOAWAY:
                code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else None
                resp.goaway = (code, payload[8:])
                last = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                if last < sid:
                    return resp
                continue
            if fsid != sid:
                continue
            if ftype in (HEADERS, CONTINUATION):
                if ftype == HEADERS:
                    pad = 0
                    if flags & F_PADDED:
                        pad = payload[0]
                        payload = payload[1:]
                    if flags & F_PRIORITY:
                        payload = payload[5:]
                    if pad:
                        payload = payload[:-pad]
                    block, block_flags = payload, flags
                else:
                    block += payload
                if flags & F_END_HEADERS:
                    fields = self.decoder.decode(block)
                    if resp.headers is None:
                        resp.headers = fields
                    else:
                        resp.trailers = fields
                    if block_flags & F_END_STREAM:
                        resp.ended = True
                        return resp
            elif ftype == DATA:
                if flags & F_PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                resp.data += payload
                if payload:
                    # Keep the peer's flow-control windows open.
                    inc = struct.pack(">I", len(payload))
                    self.send_frame(WINDOW_UPDATE, 0, 0, inc)
                    self.send_frame(WINDOW_UPDATE, 0, sid, inc)
                if flags & F_END_STREAM:
                    resp.ended = True
                    return resp
            elif ftype == RST_STREAM:
                resp.rst = struct.unpack(">I", payload[:4])[0]
                return resp

    def wait_server_settings(self, timeout=5.0):
        """True once the server's SETTINGS frame has arrived; False if the
        connection ends first or nothing comes within timeout."""
        deadline = time.monotonic() + timeout
        while not self.server_settings_seen:
            try:
                if self.read_frame(deadline) is None:
                    return False
            except (ssl.SSLError, OSError):
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        finally:
            self.decoder.close()


def lpm(msg, declared_len=None, flag=0):
    """A gRPC Length-Prefixed-Message: flag, 4-byte big-endian length, body."""
    n = len(msg) if declared_len is None else declared_len
    return bytes([flag]) + struct.pack(">I", n) + msg
