# bsutil.py - helpers of boltseal's integration tests: paths, protobuf stubs
# generated at test time, the boltsealed process (start, wait for "listening",
# SIGTERM), gRPC channels with client certificates (python3-grpcio), and
# independent signature checks (python3-cryptography and `openssl pkeyutl`).
#
# Runs only under Debian's /usr/bin/python3 (its grpcio, protobuf,
# cryptography and PyKCS11 packages).

import hashlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, encode_dss_signature)

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("BS_SRCDIR") or os.path.join(HERE, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("BS_BUILDDIR") or os.getcwd())
# Where mktoken/mkpki live (overridable only to test the suite itself).
SCRIPTS_DIR = os.path.abspath(os.environ.get("BS_SCRIPTS_DIR") or os.path.join(SRCDIR, "scripts"))
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PYTHON = "/usr/bin/python3"

# boltseal.v1.Algorithm values (kept numeric so this file needs no stubs).
ALG_ECDSA = 1
ALG_ED25519 = 2
ALG_RSA = 3
ALG_NAMES = {ALG_ECDSA: "ecdsa", ALG_ED25519: "ed25519", ALG_RSA: "rsa"}


def daemon_path():
    return os.path.join(BUILDDIR, "boltsealed")


def wycheproof_dir():
    for d in (os.path.join(SRCDIR, "tests", "data", "wycheproof"),
              "/work/shared/testdata/wycheproof"):
        if os.path.isfile(os.path.join(d, "ecdsa_secp256r1_sha256_test.json")):
            return d
    raise FileNotFoundError("no Wycheproof vectors in tests/data/wycheproof "
                            "nor /work/shared/testdata/wycheproof")


def run(argv, check=True, env=None, input=None, timeout=120):
    """Runs argv, returns CompletedProcess with text output."""
    p = subprocess.run(argv, env=env, input=input, capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s%s" % (
            " ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace")))
    return p


# --- protobuf stubs -------------------------------------------------------------

class Stubs:
    """The generated message modules: pb (boltseal.v1) and hpb (grpc.health.v1)."""

    def __init__(self, pb, hpb):
        self.pb = pb
        self.hpb = hpb


def _load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def generate_stubs(outdir):
    """protoc --python_out into outdir, then loads the two modules by file
    path (the generated package "grpc.health.v1" would clash with grpcio's
    own "grpc" package if imported by name)."""
    protodir = os.path.join(SRCDIR, "proto")
    run(["protoc", "--python_out=" + outdir, "-I" + protodir,
         "boltseal/v1/keys.proto", "grpc/health/v1/health.proto"])
    pb = _load_module("bs_it_keys_pb2", os.path.join(outdir, "boltseal", "v1", "keys_pb2.py"))
    hpb = _load_module("bs_it_health_pb2",
                       os.path.join(outdir, "grpc", "health", "v1", "health_pb2.py"))
    return Stubs(pb, hpb)


# --- gRPC client ------------------------------------------------------------------

KS = "/boltseal.v1.KeyService/"
KS_METHODS = {
    "CreateKey": ("CreateKeyRequest", "CreateKeyResponse"),
    "GetKey": ("GetKeyRequest", "GetKeyResponse"),
    "ListKeys": ("ListKeysRequest", "ListKeysResponse"),
    "RotateKey": ("RotateKeyRequest", "RotateKeyResponse"),
    "GetPublicKey": ("GetPublicKeyRequest", "GetPublicKeyResponse"),
    "Sign": ("SignRequest", "SignResponse"),
    "Verify": ("VerifyRequest", "VerifyResponse"),
    "SignBatch": ("SignBatchRequest", "SignBatchResponse"),
}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_channel(port, ca, cert=None, key=None, options=()):
    """A TLS channel to 127.0.0.1:port. cert/key are file paths (or None for
    no client certificate)."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(ca),
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None)
    opts = [("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 16 << 20),
            ("grpc.enable_retries", 0)] + list(options)
    return grpc.secure_channel("127.0.0.1:%d" % port, creds, options=opts)


class Client:
    """Unary callables for every KeyService method plus Health/Check, built
    once per channel. Each attribute is a grpc.UnaryUnaryMultiCallable:
    client.Sign(req, timeout=10)."""

    def __init__(self, channel, stubs):
        self.channel = channel
        self.stubs = stubs
        pb = stubs.pb
        for meth, (req, resp) in KS_METHODS.items():
            setattr(self, meth, channel.unary_unary(
                KS + meth,
                request_serializer=getattr(pb, req).SerializeToString,
                response_deserializer=getattr(pb, resp).FromString))
        self.HealthCheck = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=stubs.hpb.HealthCheckRequest.SerializeToString,
            response_deserializer=stubs.hpb.HealthCheckResponse.FromString)

    def raw(self, path, resp_cls=None):
        """A callable sending raw request bytes to path."""
        return self.channel.unary_unary(
            path, request_serializer=lambda b: b,
            response_deserializer=resp_cls.FromString if resp_cls else (lambda b: b))

    def close(self):
        self.channel.close()


def rpc_error(fn, *args, **kw):
    """Calls fn and returns the grpc.RpcError it raises; fails if it succeeds."""
    kw.setdefault("timeout", 30)
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected an RPC error, got a response: %r" % (r,))


# --- the daemon -------------------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, settings):
    """Writes "key = value" lines (dict order)."""
    with open(path, "w") as f:
        f.write("# written by boltseal's integration tests\n")
        for k, v in settings.items():
            f.write("%s = %s\n" % (k, v))


def make_token(dirpath, label):
    """scripts/mktoken; returns (softhsm2.conf path, user PIN)."""
    run([os.path.join(SCRIPTS_DIR, "mktoken"), dirpath, label])
    conf = os.path.join(dirpath, "softhsm2.conf")
    pin = read(os.path.join(dirpath, "user.pin")).decode()
    assert os.path.isfile(conf), "mktoken did not write softhsm2.conf"
    assert pin and not pin.endswith("\n"), "user.pin must hold a PIN without newline"
    return conf, pin


def make_pki(dirpath):
    run([os.path.join(SCRIPTS_DIR, "mkpki"), dirpath, "--test-extras"])
    return dirpath


def base_config(workdir, port, tokdir, pkidir, label, state_dir):
    return {
        "listen": "127.0.0.1:%d" % port,
        "tls_cert": os.path.join(pkidir, "server.pem"),
        "tls_key": os.path.join(pkidir, "server.key"),
        "tls_client_ca": os.path.join(pkidir, "ca.pem"),
        "tls_crl": os.path.join(pkidir, "crl.pem"),
        "policy": os.path.join(HERE, "policy-it.conf"),
        "pkcs11_module": SOFTHSM_MODULE,
        "token_uri": "pkcs11:token=" + label,
        "pin_file": os.path.join(tokdir, "user.pin"),
        "state_dir": state_dir,
        "workers": 2,
        "max_message_bytes": 65536,
        "sign_batch_max": 100,
        "shutdown_grace_ms": 5000,
        "log_level": "info",
        "audit_checkpoint_interval_ms": 300,
        "audit_checkpoint_records": 100,
        # the test-only EchoService (policy-it.conf grants it)
        "test_services": "on",
    }


class Daemon:
    """One boltsealed process; stderr and stdout go to log_path."""

    def __init__(self, conf, softhsm_conf, log_path):
        self.conf = conf
        self.softhsm_conf = softhsm_conf
        self.log_path = log_path
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env["SOFTHSM2_CONF"] = self.softhsm_conf
        return env

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.log_start = self.logf.tell()
        self.proc = subprocess.Popen([daemon_path(), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=self.env())
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        """This run's part of the log file (which may be shared by runs)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "log_start", 0))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_records(self):
        """The JSON log lines, parsed (non-JSON lines are skipped)."""
        out = []
        for line in self.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def wait_listening(self, timeout=20.0):
        """Waits for a log record with "msg":"listening". Raises with the log
        tail if the process exits or the time runs out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(r.get("msg") == "listening" for r in self.log_records()):
                return
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("boltsealed exited with %d before listening; log tail:\n%s"
                                   % (rc, self.log_tail()))
            time.sleep(0.05)
        raise RuntimeError("boltsealed not listening after %.0f s; log tail:\n%s"
                           % (timeout, self.log_tail()))

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout=15.0):
        """SIGTERM, then the exit code (None if it did not exit in time; the
        process is then killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_daemon_once(conf, softhsm_conf, extra_args=(), timeout=30):
    """Runs boltsealed [extra_args] -c conf to completion (for -n or for a
    start-up that must fail). Returns (exit code, stderr+stdout text); a
    daemon still running after timeout is killed and reported as None."""
    env = dict(os.environ)
    env["SOFTHSM2_CONF"] = softhsm_conf
    p = subprocess.Popen([daemon_path()] + list(extra_args) + ["-c", conf],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        return None, out.decode(errors="replace")


# --- independent signature checks -------------------------------------------------

def load_spki(der):
    return serialization.load_der_public_key(der)


def crypto_verify(alg, spki_der, data, is_digest, sig, raw=False):
    """True if sig verifies with python3-cryptography. data is the message,
    or its SHA-256 digest when is_digest."""
    pub = load_spki(spki_der)
    try:
        if alg == ALG_ECDSA:
            assert isinstance(pub, ec.EllipticCurvePublicKey)
            if raw:
                if len(sig) != 64:
                    return False
                sig = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                           int.from_bytes(sig[32:], "big"))
            h = ec.ECDSA(Prehashed(hashes.SHA256())) if is_digest else ec.ECDSA(hashes.SHA256())
            pub.verify(sig, data, h)
        elif alg == ALG_ED25519:
            assert isinstance(pub, ed25519.Ed25519PublicKey)
            assert not is_digest
            pub.verify(sig, data)
        elif alg == ALG_RSA:
            assert isinstance(pub, rsa.RSAPublicKey)
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            h = Prehashed(hashes.SHA256()) if is_digest else hashes.SHA256()
            pub.verify(sig, data, pss, h)
        else:
            raise ValueError("algorithm %r" % alg)
    except InvalidSignature:
        return False
    return True


def raw_to_der(sig):
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def openssl_verify(alg, spki_der, data, is_digest, sig, raw=False):
    """True if `openssl pkeyutl -verify` accepts sig (exit 0 and its success
    line), False if it rejects it."""
    with tempfile.TemporaryDirectory(prefix="bs-ossl-") as d:
        pem = serialization.load_der_public_key(spki_der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        keyf, inf, sigf = (os.path.join(d, n) for n in ("pub.pem", "in.bin", "sig.bin"))
        with open(keyf, "wb") as f:
            f.write(pem)
        argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", keyf,
                "-in", inf, "-sigfile", sigf]
        if alg == ALG_ED25519:
            payload = data
            argv.append("-rawin")
        else:
            payload = data if is_digest else hashlib.sha256(data).digest()
            if alg == ALG_ECDSA and raw:
                sig = raw_to_der(sig) if len(sig) == 64 else sig
            if alg == ALG_RSA:
                argv += ["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss",
                         "-pkeyopt", "rsa_pss_saltlen:32"]
            else:
                argv += ["-pkeyopt", "digest:sha256"]
        with open(inf, "wb") as f:
            f.write(payload)
        with open(sigf, "wb") as f:
            f.write(sig)
        p = subprocess.run(argv, capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace")
        if p.returncode == 0:
            assert "Signature Verified Successfully" in out, out
            return True
        return False


# --- issue 3 helpers ------------------------------------------------------------

def audit_path(state_dir):
    return os.path.join(state_dir, "audit", "audit.jsonl")


def audit_bytes(path):
    """The records of the audit log file at path: a running daemon keeps
    the file preallocated with zeros after them (cut off when it stops),
    which must be zeros to the end."""
    with open(path, "rb") as f:
        data = f.read()
    i = data.find(b"\0")
    if i < 0:
        return data
    assert data[i:].count(b"\0") == len(data) - i, "bytes after the zeros of %s" % path
    return data[:i]


def audit_records(state_dir):
    """The daemon's audit log (<state_dir>/audit/audit.jsonl), parsed: one
    dict per complete line. Read it after the call returned: a record is
    durable before its response is sent."""
    try:
        data = audit_bytes(audit_path(state_dir))
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split(b"\n")[:-1] if line]


def wait_log(daemon, pred, after=0, timeout=10.0):
    """Waits for a JSON log record of daemon with pred(record) true among
    the records from index after on; returns it. Raises with the log tail."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for rec in daemon.log_records()[after:]:
            if pred(rec):
                return rec
        if daemon.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("no matching log record after %.0f s; log tail:\n%s"
                         % (timeout, daemon.log_tail()))


def sighup(daemon, timeout=10.0):
    """Sends SIGHUP and waits for the daemon's verdict; returns the log
    record ("reloaded TLS material and policy" or "reload failed; ...")."""
    n = len(daemon.log_records())
    daemon.proc.send_signal(signal.SIGHUP)
    return wait_log(daemon, lambda r: str(r.get("msg", "")).startswith(
        ("reloaded TLS material", "reload failed")), after=n, timeout=timeout)


def local_channel(port, ca, cert, key):
    """make_channel with a subchannel of its own: a new TLS handshake, never
    a connection another channel of this process already holds."""
    return make_channel(port, ca, cert, key, options=[("grpc.use_local_subchannel_pool", 1)])


def load_audit_pb(outdir):
    """protoc for boltseal/v1/audit.proto into outdir; returns the loaded
    audit_pb2 module (loaded by path, like generate_stubs)."""
    os.makedirs(outdir, exist_ok=True)
    run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(SRCDIR, "proto"),
         "boltseal/v1/audit.proto"])
    return _load_module("bs_it_audit_pb2_" + str(abs(hash(outdir))),
                        os.path.join(outdir, "boltseal", "v1", "audit_pb2.py"))


AUDIT_METHODS = {
    "GetCheckpoint": ("GetCheckpointRequest", "GetCheckpointResponse"),
    "GetInclusionProof": ("GetInclusionProofRequest", "GetInclusionProofResponse"),
    "GetConsistencyProof": ("GetConsistencyProofRequest", "GetConsistencyProofResponse"),
    "ReadRecords": ("ReadRecordsRequest", "ReadRecordsResponse"),
}


def audit_callables(channel, apb):
    """{method name: unary callable} of boltseal.v1.AuditService on channel."""
    return {m: channel.unary_unary("/boltseal.v1.AuditService/" + m,
                                   request_serializer=getattr(apb, req).SerializeToString,
                                   response_deserializer=getattr(apb, resp).FromString)
            for m, (req, resp) in AUDIT_METHODS.items()}


def wait_audit(state_dir, pred, count=1, timeout=10.0):
    """Waits until at least count audit records satisfy pred; returns them.
    For records the daemon writes on its own (reload, start, stop), which
    need not be durable yet when their log line appears."""
    end = time.monotonic() + timeout
    while True:
        recs = [r for r in audit_records(state_dir) if pred(r)]
        if len(recs) >= count or time.monotonic() >= end:
            break
        time.sleep(0.05)
    assert len(recs) >= count, "%d audit record(s) match, wanted %d: %r" % (
        len(recs), count, recs)
    return recs


def stop_clean(daemon, timeout=15.0):
    """SIGTERM; asserts exit code 0 (under ASan, also: no leak, no error
    report), with the log tail on failure."""
    rc = daemon.terminate(timeout)
    assert rc == 0, "boltsealed exited with %r after SIGTERM; log tail:\n%s" % (
        rc, daemon.log_tail(60))


def cli_runner(env, ident="ci-ota-release", timeout=60):
    """run(*args, stdin=None) -> (exit code, stdout, stderr): the `boltseal`
    CLI of the build as ident against the session daemon (no config file,
    no server from the environment)."""
    cert, key = env.client_files(ident)
    e = dict(os.environ, BOLTSEAL_CA=env.ca, BOLTSEAL_CERT=cert, BOLTSEAL_KEY=key)
    for v in ("BOLTSEAL_CONFIG", "BOLTSEAL_SERVER"):
        e.pop(v, None)
    path = os.path.join(BUILDDIR, "boltseal")

    def run(*args, stdin=None):
        p = subprocess.run([path, "--server", "127.0.0.1:%d" % env.port] + list(args),
                           env=e, input=stdin, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    return run


DENIED_RE = re.compile(r"permission denied \(request id [0-9a-f]{16}: the reason is in the audit log\)")


def denied(details):
    """Whether a PERMISSION_DENIED message is the daemon's generic one: it
    names the request id and never why (the reason is in the audit log)."""
    return DENIED_RE.fullmatch(details or "") is not None
