# test_echo.py - the test-only EchoService, served through the same RPC layer
# as every real service, called with Debian's grpcio: admission, decoding,
# the policy's verdict, the audit record with a service-defined field, and
# the switch that keeps test-only services out of a production daemon
# (test_services = off: the method is UNIMPLEMENTED and a policy naming it is
# refused).

import json
import os

import grpc
import pytest

import auditutil
import bsutil
from conftest import status_of

ECHO = "/boltseal.test.v1.EchoService/Echo"


@pytest.fixture(scope="module")
def epb(env):
    outdir = os.path.join(env.workdir, "echo-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/test/v1/echo.proto"])
    return bsutil._load_module("bs_it_echo_pb2",
                               os.path.join(outdir, "boltseal", "test", "v1", "echo_pb2.py"))


def echo_fn(client, epb):
    return client.channel.unary_unary(ECHO, request_serializer=epb.EchoRequest.SerializeToString,
                                      response_deserializer=epb.EchoResponse.FromString)


def record_of(env, text):
    for rec in reversed(auditutil.parse(auditutil.read_lines(env.state_dir))):
        if rec.get("method") == ECHO[1:] and rec.get("fields", {}).get("echo.text") == text:
            return rec
    return None


def test_echo_answers_and_records_its_field(env, epb):
    r = echo_fn(env.good, epb)(epb.EchoRequest(text="héllo"), timeout=15)
    assert r.text == "héllo"
    assert r.principal == "ci-ota-release"
    # the answer left after its record was durable: it is in the file now
    rec = record_of(env, "héllo")
    assert rec is not None, "no audit record with fields.echo.text"
    assert rec["result"] == "OK" and rec["principal_id"] == "ci-ota-release"
    assert list(rec.keys())[-1] == "fields", "fields must come last in a record"


def test_echo_not_granted_is_denied(env, epb):
    err = bsutil.rpc_error(echo_fn(env.client(ident="log-ota-log"), epb),
                           epb.EchoRequest(text="x"))
    assert status_of(err) == grpc.StatusCode.PERMISSION_DENIED
    assert bsutil.denied(err.details())


def test_echo_input_checked_by_the_handler(env, epb):
    err = bsutil.rpc_error(echo_fn(env.good, epb), epb.EchoRequest(text="x" * 257))
    assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "longer than 256 bytes" in err.details()


def test_echo_malformed_request_refused_before_handler(env, epb):
    raw = env.good.raw(ECHO)
    err = bsutil.rpc_error(raw, b"\x0a\x05ab")   # field 1 announces 5 bytes, has 2
    assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT


def test_test_services_off_in_production(env, epb, second_daemon):
    sd = second_daemon("notest")
    sd.settings["test_services"] = "off"
    # a policy that names the echo method does not load without it
    bsutil.write_config(sd.conf, sd.settings)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc != 0 and "boltseal.test.v1.EchoService" in out, out
    # with a policy that does not name it, the daemon starts and Echo is unknown
    sd.settings["policy"] = os.path.join(bsutil.SRCDIR, "etc", "policy.example")
    bsutil.write_config(sd.conf, sd.settings)
    sd.start()
    c = env.client(port=sd.port)
    err = bsutil.rpc_error(echo_fn(c, epb), epb.EchoRequest(text="x"))
    assert status_of(err) == grpc.StatusCode.UNIMPLEMENTED
    assert "unknown method" in err.details()


def test_echo_setting_from_the_configuration(env, epb, second_daemon):
    sd = second_daemon("echoset")
    # a setting out of its range stops the daemon, with its line
    sd.settings["echo.max_text"] = "0"
    bsutil.write_config(sd.conf, sd.settings)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc != 0 and "echo.max_text: 0 is out of range (1..4096)" in out, out
    assert sd.conf + ":" in out, out
    # an unknown section too
    del sd.settings["echo.max_text"]
    sd.settings["nosuch.x"] = "1"
    bsutil.write_config(sd.conf, sd.settings)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc != 0 and "unknown key 'nosuch.x'" in out, out
    # in range: the service gets it at start
    del sd.settings["nosuch.x"]
    sd.settings["echo.max_text"] = "8"
    bsutil.write_config(sd.conf, sd.settings)
    sd.start()
    c = env.client(port=sd.port)
    assert echo_fn(c, epb)(epb.EchoRequest(text="12345678"), timeout=15).text == "12345678"
    err = bsutil.rpc_error(echo_fn(c, epb), epb.EchoRequest(text="123456789"))
    assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "text longer than 8 bytes"
