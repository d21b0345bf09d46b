#!/usr/bin/python3
# tests/bench/commands-bench.py - the vehicle-command part of `make bench`,
# run by tests/bench/run-bench against its daemon (environment: STUBS, a
# directory with Python stubs of keys.proto, vehicles.proto and
# commands.proto; BOLTSEAL_SERVER, _CA, _CERT, _KEY; BENCH_SECONDS and
# BENCH_MAX_OPS bound every loop; BENCH_VEHICLES the fleet size, 10000).
#
# Creates an ECDSA P-256 key of purpose command and registers the fleet
# (bench-truck-00000, bench-truck-00001, ...), prints a SETUP line naming the
# key, the vehicle-id prefix and the fleet size, then signs route.override
# commands with 64 calls in flight (grpc.aio):
#   to one vehicle (every call takes that vehicle's next sequence number)
#   to the whole fleet, round robin
# and prints one RESULT line per run; the last token of each run is
# verified with python3-cryptography (ES256, r||s). These runs are an
# independent-client cross-check: the Python client saturates a core below
# the daemon's rate. run-bench then measures the same key and fleet with
# `bs-bench grpc --command` (the primary figures) and compares both with raw
# C_Sign on the same key.
import asyncio
import json
import os
import sys
import time
import base64

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
from boltseal.v1 import commands_pb2, keys_pb2, vehicles_pb2  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

SECS = float(os.environ.get("BENCH_SECONDS", "5"))
MAX_OPS = int(os.environ.get("BENCH_MAX_OPS", "2000000"))
FLEET = int(os.environ.get("BENCH_VEHICLES", "10000"))
INFLIGHT = 64
KEY = "bench-cmd"
VEHICLE_PREFIX = "bench-truck-"


def read(p):
    with open(p, "rb") as f:
        return f.read()


def pct(v, p):
    return v[max(0, min(len(v) - 1, int(round(p / 100.0 * len(v))) - 1))]


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


async def run(sign, vehicles, label, pub):
    lat, last = [], [None]
    t0 = time.monotonic()
    n = [0]

    async def worker(w):
        while n[0] < MAX_OPS and time.monotonic() - t0 < SECS:
            i = n[0]
            n[0] += 1
            s = time.monotonic()
            r = await sign(commands_pb2.SignCommandRequest(
                vehicle_id=vehicles[i % len(vehicles)], command="route.override",
                args=b'{"route":"A7"}', key_name=KEY), timeout=30)
            lat.append((time.monotonic() - s) * 1e6)
            last[0] = r
    await asyncio.gather(*[worker(w) for w in range(INFLIGHT)])
    secs = time.monotonic() - t0
    h, p, sig = last[0].token.split(".")
    raw = b64d(sig)
    pub.verify(utils.encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                          int.from_bytes(raw[32:], "big")),
               (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
    lat.sort()
    return ("RESULT mode=commands-%s vehicles=%d inflight=%d calls=%d secs=%.3f calls_per_s=%.1f "
            "p50_us=%.0f p99_us=%.0f" % (label, len(vehicles), INFLIGHT, len(lat), secs,
                                         len(lat) / secs, pct(lat, 50), pct(lat, 99)))


async def main():
    creds = grpc.ssl_channel_credentials(read(os.environ["BOLTSEAL_CA"]),
                                         read(os.environ["BOLTSEAL_KEY"]),
                                         read(os.environ["BOLTSEAL_CERT"]))
    opts = [("grpc.ssl_target_name_override", "localhost")]
    async with grpc.aio.secure_channel(os.environ["BOLTSEAL_SERVER"], creds, opts) as ch:
        def method(name, req, resp):
            return ch.unary_unary(name, request_serializer=req.SerializeToString,
                                  response_deserializer=resp.FromString)
        create_key = method("/boltseal.v1.KeyService/CreateKey", keys_pb2.CreateKeyRequest,
                            keys_pb2.CreateKeyResponse)
        get_pub = method("/boltseal.v1.KeyService/GetPublicKey", keys_pb2.GetPublicKeyRequest,
                         keys_pb2.GetPublicKeyResponse)
        register = method("/boltseal.v1.VehicleService/RegisterVehicle",
                          vehicles_pb2.RegisterVehicleRequest, vehicles_pb2.Vehicle)
        sign = method("/boltseal.v1.CommandService/SignCommand",
                      commands_pb2.SignCommandRequest, commands_pb2.SignCommandResponse)
        await create_key(keys_pb2.CreateKeyRequest(name=KEY, purpose=keys_pb2.COMMAND,
                                                   algorithm=keys_pb2.ECDSA_P256_SHA256),
                         timeout=30)
        pub = serialization.load_der_public_key(
            (await get_pub(keys_pb2.GetPublicKeyRequest(name=KEY), timeout=30)).der)
        ident = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        fleet = ["%s%05d" % (VEHICLE_PREFIX, i) for i in range(FLEET)]
        t0 = time.monotonic()
        sem = asyncio.Semaphore(INFLIGHT)

        async def reg(vid):
            async with sem:
                await register(vehicles_pb2.RegisterVehicleRequest(
                    id=vid, attributes={"carrier_id": "acme"},
                    identity=vehicles_pb2.VehicleIdentity(public_key=ident)), timeout=60)
        await asyncio.gather(*[reg(v) for v in fleet])
        print("INFO registered %d vehicles in %.1f s" % (FLEET, time.monotonic() - t0), flush=True)
        print("SETUP key=%s vehicles_prefix=%s vehicles=%d" % (KEY, VEHICLE_PREFIX, FLEET),
              flush=True)
        print(await run(sign, fleet[:1], "one-vehicle", pub), flush=True)
        print(await run(sign, fleet, "fleet", pub), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
