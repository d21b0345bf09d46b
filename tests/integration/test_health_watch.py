# test_health_watch.py - grpc.health.v1.Health/Watch, server streaming, with
# Debian's python3-grpcio as the client: the status now, then each change
# pushed without asking (the CRLs of a second daemon go stale and come back:
# NOT_SERVING then SERVING), SERVICE_UNKNOWN for an unknown service with the
# call left open, a cancelled watch recorded in the audit log, and a daemon
# that stops ending its watches with NOT_SERVING and OK.
import os
import queue
import threading

import grpc

import bsutil
import pkitool
from test_revocation import two_cas

WATCH = "/grpc.health.v1.Health/Watch"


def watch(channel, hpb, service=""):
    """A Watch call and a queue its messages (status names) and its end arrive on."""
    call = channel.unary_stream(WATCH, request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                response_deserializer=hpb.HealthCheckResponse.FromString)(
        hpb.HealthCheckRequest(service=service))
    q = queue.Queue()

    def pump():
        try:
            for m in call:
                q.put(hpb.HealthCheckResponse.ServingStatus.Name(m.status))
            q.put(("end", call.code()))
        except grpc.RpcError as e:
            q.put(("end", e.code()))
    threading.Thread(target=pump, daemon=True).start()
    return call, q


def test_watch_now_unknown_and_cancel(env):
    hpb = env.stubs.hpb
    ch = env.client().channel
    call, q = watch(ch, hpb)
    assert q.get(timeout=15) == "SERVING"
    call2, q2 = watch(ch, hpb, "no.such.Service")
    assert q2.get(timeout=15) == "SERVICE_UNKNOWN"
    # the unknown service's call stays open: nothing more within two ticks
    try:
        got = q2.get(timeout=2.5)
        raise AssertionError("the watch of an unknown service ended or changed: %r" % (got,))
    except queue.Empty:
        pass
    call.cancel()
    call2.cancel()
    assert q.get(timeout=15) == ("end", grpc.StatusCode.CANCELLED)
    recs = bsutil.wait_audit(env.state_dir, lambda r: r.get("method") ==
                             "grpc.health.v1.Health/Watch", count=2, timeout=15)
    assert {r["result"] for r in recs[-2:]} == {"CANCELLED"}, recs[-2:]
    env.assert_still_serving()


def test_status_changes_are_pushed(env, second_daemon):
    """Client CA bundle: the dev CA and a second CA, each with its CRL. The
    watcher connects with the second CA's client. The dev CRL expires (and a
    SIGHUP loads it): NOT_SERVING arrives; a fresh one: SERVING again; the
    daemon stops: NOT_SERVING, then the call ends OK."""
    sd = second_daemon("watch")
    hpb = env.stubs.hpb
    dev, _, crldir = two_cas(sd, env)
    devcrl = os.path.join(crldir, "dev.pem")
    pkitool.mint_crl(dev, devcrl)
    d = sd.start()
    cert, key = env.bad_files("other-ca-client")
    ch = bsutil.local_channel(sd.port, env.ca, cert, key)
    call, q = watch(ch, hpb)
    assert q.get(timeout=15) == "SERVING"

    last, nxt = pkitool.expired_times()
    pkitool.mint_crl(dev, devcrl, last_update=last, next_update=nxt)
    rec = bsutil.sighup(d)
    assert rec["msg"] == "reloaded TLS material and policy", rec
    assert q.get(timeout=15) == "NOT_SERVING"
    pkitool.mint_crl(dev, devcrl)
    bsutil.sighup(d)
    assert q.get(timeout=15) == "SERVING"

    rc = []
    t = threading.Thread(target=lambda: rc.append(d.terminate(30)))
    t.start()
    assert q.get(timeout=15) == "NOT_SERVING"
    assert q.get(timeout=15) == ("end", grpc.StatusCode.OK)
    t.join(40)
    assert rc == [0], (rc, d.log_tail(30))
    ch.close()
