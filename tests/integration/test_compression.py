# test_compression.py - gRPC message compression (gzip, named by the grpc-encoding
# header of the gRPC over HTTP/2 protocol): python3-grpcio with gzip on
# the channel and on one call signs and reads keys; on the wire (h2raw), a
# gzip'd request that accepts gzip gets a gzip'd answer (compressed flag,
# "grpc-encoding: gzip", Python's gzip module inflates it) and one that does
# not gets identity; every answer lists "identity,gzip" in
# grpc-accept-encoding; a request that inflates past max_message_bytes is
# RESOURCE_EXHAUSTED, a corrupt one INTERNAL; the daemon stays serving.
import gzip

import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import bsutil
import h2raw

GPK = "/boltseal.v1.KeyService/GetPublicKey"
SIGN = "/boltseal.v1.KeyService/Sign"


def make_key(env, name):
    pb = env.stubs.pb
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name=name, purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    return c.GetPublicKey(pb.GetPublicKeyRequest(name=name), timeout=30).pem


def test_grpcio_with_gzip(env):
    pb = env.stubs.pb
    pem = make_key(env, "gz-grpcio")
    cert, key = env.client_files("ci-ota-release")
    creds = grpc.ssl_channel_credentials(root_certificates=bsutil.read(env.ca),
                                         private_key=bsutil.read(key),
                                         certificate_chain=bsutil.read(cert))
    with grpc.secure_channel("127.0.0.1:%d" % env.port, creds,
                             compression=grpc.Compression.Gzip) as ch:
        sign = ch.unary_unary(SIGN, request_serializer=pb.SignRequest.SerializeToString,
                              response_deserializer=pb.SignResponse.FromString)
        msg = b"compressed " * 1000
        r = sign(pb.SignRequest(key_name="gz-grpcio", message=msg), timeout=30)
        serialization.load_pem_public_key(pem.encode()).verify(r.signature, msg,
                                                               ec.ECDSA(hashes.SHA256()))
        gpk = ch.unary_unary(GPK, request_serializer=pb.GetPublicKeyRequest.SerializeToString,
                             response_deserializer=pb.GetPublicKeyResponse.FromString)
        assert gpk(pb.GetPublicKeyRequest(name="gz-grpcio"), timeout=30).pem == pem
    # per call, on a channel without compression
    with bsutil.make_channel(env.port, env.ca, cert, key) as ch:
        gpk = ch.unary_unary(GPK, request_serializer=pb.GetPublicKeyRequest.SerializeToString,
                             response_deserializer=pb.GetPublicKeyResponse.FromString)
        assert gpk(pb.GetPublicKeyRequest(name="gz-grpcio"), timeout=30,
                   compression=grpc.Compression.Gzip).pem == pem


def header(r, name):
    return r._get(r.headers, name) or r._get(r.trailers, name)


def test_gzip_on_the_wire(env):
    pb = env.stubs.pb
    pem = make_key(env, "gz-wire")
    cert, key = env.client_files("ci-ota-release")
    conn = h2raw.H2Conn(h2raw.tls_connect(env.port, env.ca, cert, key))
    body = gzip.compress(pb.GetPublicKeyRequest(name="gz-wire").SerializeToString())
    try:
        sid = conn.request(GPK, body=h2raw.lpm(body, flag=1),
                           extra=[("grpc-encoding", "gzip"),
                                  ("grpc-accept-encoding", "identity,gzip")])
        r = conn.response(sid)
        assert r.grpc_status == 0, r
        assert header(r, "grpc-encoding") == "gzip", r
        assert header(r, "grpc-accept-encoding") == "identity,gzip", r
        assert r.data[0] == 1, r.data[:8]
        plain = gzip.decompress(r.data[5:])
        assert pb.GetPublicKeyResponse.FromString(plain).pem == pem
        # a gzip'd request from a client that does not accept gzip: identity answer
        sid = conn.request(GPK, body=h2raw.lpm(body, flag=1),
                           extra=[("grpc-encoding", "gzip")])
        r = conn.response(sid)
        assert r.grpc_status == 0 and r.data[0] == 0, r
        assert header(r, "grpc-encoding") is None, r
        assert pb.GetPublicKeyResponse.FromString(r.data[5:]).pem == pem
        # inflating past max_message_bytes (4 MiB): refused, whatever the ratio
        bomb = gzip.compress(b"\x0a" + b"\x00" * (8 << 20))
        assert len(bomb) < 64 << 10
        sid = conn.request(SIGN, body=h2raw.lpm(bomb, flag=1), extra=[("grpc-encoding", "gzip")])
        r = conn.response(sid)
        assert r.grpc_status == 8 and "once decompressed" in r.grpc_message, r
        # corrupt: not gzip at all, and a truncated member
        for bad in (b"\x1f\x8b not really gzip", body[:-3]):
            sid = conn.request(GPK, body=h2raw.lpm(bad, flag=1),
                               extra=[("grpc-encoding", "gzip")])
            r = conn.response(sid)
            assert r.grpc_status == 13 and "cannot be decompressed" in r.grpc_message, r
    finally:
        conn.close()
    env.assert_still_serving()
