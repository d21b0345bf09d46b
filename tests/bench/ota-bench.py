#!/usr/bin/python3
# tests/bench/ota-bench.py - the OTA metadata part of `make bench`, run by
# tests/bench/run-bench against its daemon (environment: STUBS, a directory
# with Python stubs of keys.proto and ota.proto; BOLTSEAL_SERVER, _CA, _CERT,
# _KEY; BENCH_SECONDS and BENCH_MAX_OPS bound every loop).
#
# Creates four ECDSA P-256 keys of purpose ota and a repository, then signs,
# one call at a time (versions must rise, so a role's calls cannot overlap):
#   targets metadata listing 1,000 targets, versions 1, 2, ...
#   timestamp metadata, versions 1, 2, ...
# Each call is a whole SignMetadata: strict parse, checks, canonical JSON,
# the high-water mark read and written durably, the HSM signature, the
# audit record. The last file of each run is verified with python3-cryptography
# over securesystemslib's canonical form. Prints one RESULT line per run and
# the name of the targets key (run-bench compares with raw C_Sign on it).
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
from boltseal.v1 import keys_pb2, ota_pb2  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from securesystemslib.formats import encode_canonical  # noqa: E402

SECS = float(os.environ.get("BENCH_SECONDS", "5"))
MAX_OPS = int(os.environ.get("BENCH_MAX_OPS", "2000000"))
NTARGETS = 1000
REPO = "bench-ota"
ROLES = ("root", "targets", "snapshot", "timestamp")


def read(p):
    with open(p, "rb") as f:
        return f.read()


def in_hours(h):
    t = datetime.now(timezone.utc) + timedelta(hours=h)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pct(sorted_us, p):
    return sorted_us[max(0, min(len(sorted_us) - 1, int(round(p / 100.0 * len(sorted_us))) - 1))]


def run(sign, role, body_for, keys, keyid):
    """Signs versions 1, 2, ... of role until SECS or MAX_OPS; returns the RESULT line."""
    lat = []
    t0 = time.monotonic()
    v = 0
    last = None
    while v < MAX_OPS and time.monotonic() - t0 < SECS:
        v += 1
        req = ota_pb2.SignMetadataRequest(repository=REPO, role=role, signed=body_for(v))
        s = time.monotonic()
        last = sign(req, timeout=30)
        lat.append((time.monotonic() - s) * 1e6)
        if last.version != v or last.repeated:
            raise SystemExit("ota-bench: %s version %d answered as %d" % (role, v, last.version))
    secs = time.monotonic() - t0
    doc = json.loads(last.metadata)
    data = encode_canonical(doc["signed"]).encode()
    pub = serialization.load_pem_public_key(keys[keyid]["keyval"]["public"].encode())
    sig = [s for s in doc["signatures"] if s["keyid"] == keyid][0]
    pub.verify(bytes.fromhex(sig["sig"]), data, ec.ECDSA(hashes.SHA256()))
    lat.sort()
    return ("RESULT mode=ota-%s calls=%d secs=%.3f calls_per_s=%.1f p50_us=%.0f p99_us=%.0f "
            "signed_bytes=%d file_bytes=%d" % (role, len(lat), secs, len(lat) / secs,
                                               pct(lat, 50), pct(lat, 99), len(data),
                                               len(last.metadata)))


def main():
    creds = grpc.ssl_channel_credentials(read(os.environ["BOLTSEAL_CA"]),
                                         read(os.environ["BOLTSEAL_KEY"]),
                                         read(os.environ["BOLTSEAL_CERT"]))
    opts = [("grpc.ssl_target_name_override", "localhost"),
            ("grpc.max_receive_message_length", 16 << 20)]
    with grpc.secure_channel(os.environ["BOLTSEAL_SERVER"], creds, opts) as ch:
        def method(name, req, resp):
            return ch.unary_unary(name, request_serializer=req.SerializeToString,
                                  response_deserializer=resp.FromString)
        create_key = method("/boltseal.v1.KeyService/CreateKey", keys_pb2.CreateKeyRequest,
                            keys_pb2.CreateKeyResponse)
        create = method("/boltseal.v1.OtaService/CreateRepository",
                        ota_pb2.CreateRepositoryRequest, ota_pb2.CreateRepositoryResponse)
        sign = method("/boltseal.v1.OtaService/SignMetadata", ota_pb2.SignMetadataRequest,
                      ota_pb2.SignMetadataResponse)
        for r in ROLES:
            create_key(keys_pb2.CreateKeyRequest(name="bench-ota-" + r, purpose=keys_pb2.OTA,
                                                 algorithm=keys_pb2.ECDSA_P256_SHA256),
                       timeout=30)
        req = ota_pb2.CreateRepositoryRequest(name=REPO)
        for r in ROLES:
            req.roles.append(ota_pb2.RoleKeys(role=r, key_names=["bench-ota-" + r], threshold=1))
        root = json.loads(create(req, timeout=60).root)["signed"]

        targets = {"fw/ecu-%04d.bin" % i: {"length": 1048576 + i, "hashes": {
            "sha256": hashlib.sha256(b"image %d" % i).hexdigest()}} for i in range(NTARGETS)}
        t_exp = in_hours(24 * 30)
        head, tail = json.dumps({"_type": "targets", "spec_version": "1.0.31", "expires": t_exp,
                                 "targets": targets, "version": 0}).rsplit('"version": 0', 1)

        def targets_body(v):
            return (head + '"version": %d' % v + tail).encode()

        ts_exp = in_hours(12)

        def timestamp_body(v):
            return json.dumps({"_type": "timestamp", "spec_version": "1.0.31", "version": v,
                               "expires": ts_exp,
                               "meta": {"snapshot.json": {"version": 1}}}).encode()

        tk = root["roles"]["targets"]["keyids"][0]
        sk = root["roles"]["timestamp"]["keyids"][0]
        print(run(sign, "targets", targets_body, root["keys"], tk), flush=True)
        # a timestamp may only list a snapshot signed here: snapshot version 1 first
        sign(ota_pb2.SignMetadataRequest(repository=REPO, role="snapshot", signed=json.dumps({
            "_type": "snapshot", "spec_version": "1.0.31", "version": 1, "expires": ts_exp,
            "meta": {"targets.json": {"version": 1}}}).encode()), timeout=30)
        print(run(sign, "timestamp", timestamp_body, root["keys"], sk), flush=True)
        print("KEYS targets=bench-ota-targets timestamp=bench-ota-timestamp")


if __name__ == "__main__":
    main()
