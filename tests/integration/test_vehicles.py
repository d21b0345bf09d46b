# test_vehicles.py - boltseal.v1.VehicleService (the vehicle registry) with
# Debian's grpcio against the session daemon: registration (id, first
# identity and provisioning time fixed from then on), versions kept and
# readable, attribute updates with compare-and-set, status changes
# (decommissioned is final), identity keys added and revoked, pagination
# and filters, every change audited with the state before and after, and
# bad input refused with a clear status and nothing stored.
import hashlib
import json
import os

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import bsutil
from conftest import status_of

S = "/boltseal.v1.VehicleService/"


@pytest.fixture(scope="module")
def vpb(env):
    outdir = os.path.join(env.workdir, "vehicle-stubs")
    os.makedirs(outdir, exist_ok=True)
    bsutil.run(["protoc", "--python_out=" + outdir, "-I" + os.path.join(bsutil.SRCDIR, "proto"),
                "boltseal/v1/vehicles.proto"])
    return bsutil._load_module("bs_it_vehicles_pb2",
                               os.path.join(outdir, "boltseal", "v1", "vehicles_pb2.py"))


class Registry:
    def __init__(self, client, vpb):
        def m(name, req, resp):
            return client.channel.unary_unary(S + name, request_serializer=req.SerializeToString,
                                              response_deserializer=resp.FromString)
        self.register = m("RegisterVehicle", vpb.RegisterVehicleRequest, vpb.Vehicle)
        self.get = m("GetVehicle", vpb.GetVehicleRequest, vpb.Vehicle)
        self.list = m("ListVehicles", vpb.ListVehiclesRequest, vpb.ListVehiclesResponse)
        self.update = m("UpdateVehicleAttributes", vpb.UpdateVehicleAttributesRequest,
                        vpb.Vehicle)
        self.status = m("SetVehicleStatus", vpb.SetVehicleStatusRequest, vpb.Vehicle)
        self.add_id = m("AddVehicleIdentity", vpb.AddVehicleIdentityRequest, vpb.Vehicle)
        self.revoke_id = m("RevokeVehicleIdentity", vpb.RevokeVehicleIdentityRequest,
                           vpb.Vehicle)


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def p256():
    return spki(ec.generate_private_key(ec.SECP256R1()))


def refusal(fn, *a):
    try:
        fn(*a, timeout=30)
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected a refusal")


@pytest.fixture(scope="module")
def reg(env, vpb):
    c = env.client()
    yield Registry(c, vpb)
    c.close()


def records(env, vid):
    return [r for r in bsutil.audit_records(env.state_dir)
            if r.get("fields", {}).get("vehicle.id") == vid and r["result"] == "OK"
            and r["method"] != "boltseal.v1.VehicleService/GetVehicle"]


def test_register_get_update_versions(env, reg, vpb):
    key = p256()
    v = reg.register(vpb.RegisterVehicleRequest(
        id="truck-001", attributes={"carrier_id": "acme", "regulatory_region": "eu"},
        identity=vpb.VehicleIdentity(public_key=key, cert_sha256="ab" * 32)), timeout=30)
    assert v.version == 1 and v.status == vpb.VEHICLE_ACTIVE and v.provisioned_at > 0
    assert dict(v.attributes) == {"carrier_id": "acme", "regulatory_region": "eu"}
    assert v.identities[0].public_key == key
    assert v.identities[0].key_id == hashlib.sha256(key).hexdigest()
    e = refusal(reg.register, vpb.RegisterVehicleRequest(
        id="truck-001", identity=vpb.VehicleIdentity(public_key=p256())))
    assert status_of(e) == grpc.StatusCode.ALREADY_EXISTS

    v2 = reg.update(vpb.UpdateVehicleAttributesRequest(
        id="truck-001", set={"vehicle_class": "class-8"}, remove=["regulatory_region"],
        expected_version=1), timeout=30)
    assert v2.version == 2 and dict(v2.attributes) == {"carrier_id": "acme",
                                                       "vehicle_class": "class-8"}
    assert v2.provisioned_at == v.provisioned_at
    # compare-and-set: a stale expected version is refused and stores nothing
    e = refusal(reg.update, vpb.UpdateVehicleAttributesRequest(
        id="truck-001", set={"carrier_id": "evil"}, expected_version=1))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert "the vehicle is at version 2, not the one expected" in e.details()
    assert reg.get(vpb.GetVehicleRequest(id="truck-001"), timeout=30).version == 2
    # every version stays readable
    old = reg.get(vpb.GetVehicleRequest(id="truck-001", version=1), timeout=30)
    assert dict(old.attributes) == dict(v.attributes) and old.version == 1
    e = refusal(reg.get, vpb.GetVehicleRequest(id="truck-001", version=9))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND

    recs = records(env, "truck-001")
    assert [r["fields"]["vehicle.version"] for r in recs] == ["1", "2"]
    before = json.loads(recs[1]["fields"]["vehicle.before"])
    after = json.loads(recs[1]["fields"]["vehicle.after"])
    assert before["attributes"]["regulatory_region"] == "eu"
    assert "regulatory_region" not in after["attributes"]
    assert after["identities"][0]["key_id"] == hashlib.sha256(key).hexdigest()
    assert "public_key" not in recs[1]["fields"]["vehicle.after"]


def test_status_and_identities(env, reg, vpb):
    first = spki(ed25519.Ed25519PrivateKey.generate())
    reg.register(vpb.RegisterVehicleRequest(id="truck-002", identity=vpb.VehicleIdentity(
        public_key=first)), timeout=30)
    v = reg.status(vpb.SetVehicleStatusRequest(id="truck-002", status=vpb.VEHICLE_SUSPENDED,
                                               reason="stolen"), timeout=30)
    assert v.status == vpb.VEHICLE_SUSPENDED and v.status_reason == "stolen"
    rec = records(env, "truck-002")[-1]
    assert json.loads(rec["fields"]["vehicle.before"])["status"] == "active"
    assert json.loads(rec["fields"]["vehicle.after"])["status"] == "suspended"

    second = p256()
    v = reg.add_id(vpb.AddVehicleIdentityRequest(id="truck-002", identity=vpb.VehicleIdentity(
        public_key=second, not_before=1, not_after=2000000000)), timeout=30)
    assert len(v.identities) == 2 and v.identities[1].not_after == 2000000000
    e = refusal(reg.add_id, vpb.AddVehicleIdentityRequest(
        id="truck-002", identity=vpb.VehicleIdentity(public_key=second)))
    assert status_of(e) == grpc.StatusCode.ALREADY_EXISTS
    # revoking the first identity marks it; its key stays in the record (immutable)
    kid = hashlib.sha256(first).hexdigest()
    v = reg.revoke_id(vpb.RevokeVehicleIdentityRequest(id="truck-002", key_id=kid,
                                                       reason="key leaked"), timeout=30)
    assert v.identities[0].revoked_at > 0 and v.identities[0].public_key == first
    e = refusal(reg.revoke_id, vpb.RevokeVehicleIdentityRequest(id="truck-002", key_id=kid))
    assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
    e = refusal(reg.revoke_id, vpb.RevokeVehicleIdentityRequest(id="truck-002",
                                                                key_id="00" * 32))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND

    e = refusal(reg.status, vpb.SetVehicleStatusRequest(id="truck-002",
                                                        status=vpb.VEHICLE_ACTIVE,
                                                        reason="line\nbreak"))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "reason" in e.details()
    reg.status(vpb.SetVehicleStatusRequest(id="truck-002", status=vpb.VEHICLE_DECOMMISSIONED),
               timeout=30)
    # decommissioned is final: no status, attribute or key change; a revocation still goes
    for fn, r in [(reg.status, vpb.SetVehicleStatusRequest(id="truck-002",
                                                           status=vpb.VEHICLE_ACTIVE)),
                  (reg.status, vpb.SetVehicleStatusRequest(id="truck-002",
                                                           status=vpb.VEHICLE_DECOMMISSIONED)),
                  (reg.update, vpb.UpdateVehicleAttributesRequest(id="truck-002",
                                                                  set={"a": "b"})),
                  (reg.add_id, vpb.AddVehicleIdentityRequest(
                      id="truck-002", identity=vpb.VehicleIdentity(public_key=p256())))]:
        e = refusal(fn, r)
        assert status_of(e) == grpc.StatusCode.FAILED_PRECONDITION
        assert "decommissioned, which is final" in e.details()
    v = reg.revoke_id(vpb.RevokeVehicleIdentityRequest(
        id="truck-002", key_id=hashlib.sha256(second).hexdigest()), timeout=30)
    assert v.version == 6 and v.identities[1].revoked_at > 0


def test_list_pages_and_filters(reg, vpb):
    for i in range(7):
        reg.register(vpb.RegisterVehicleRequest(
            id="fleet-%02d" % i, attributes={"carrier_id": "blue" if i % 2 else "red"},
            identity=vpb.VehicleIdentity(public_key=p256())), timeout=30)
    seen, token = [], ""
    for _ in range(10):
        page = reg.list(vpb.ListVehiclesRequest(page_size=3, page_token=token,
                                                attribute_filter={"carrier_id": "red"}),
                        timeout=30)
        seen += [v.id for v in page.vehicles]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["fleet-00", "fleet-02", "fleet-04", "fleet-06"]
    page = reg.list(vpb.ListVehiclesRequest(page_size=100, status=vpb.VEHICLE_DECOMMISSIONED),
                    timeout=30)
    assert [v.id for v in page.vehicles] == ["truck-002"] and page.next_page_token == ""
    e = refusal(reg.list, vpb.ListVehiclesRequest(page_size=101))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("req,code,msg", [
    (dict(id="bad id!"), "INVALID_ARGUMENT", "id: 1..64 of"),
    (dict(id="x" * 65), "INVALID_ARGUMENT", "id: 1..64 of"),
    (dict(id="truck-bad"), "INVALID_ARGUMENT", "identity: public_key is required"),
    (dict(id="truck-bad", pk=b"not a key"), "INVALID_ARGUMENT", "not a DER SubjectPublicKeyInfo"),
    (dict(id="truck-bad", pk="rsa"), "INVALID_ARGUMENT", "an ECDSA P-256 or Ed25519 key"),
    (dict(id="truck-bad", attrs={"carrier_id": "x" * 257}), "INVALID_ARGUMENT",
     "values at most 256 bytes"),
    (dict(id="truck-bad", attrs={"Carrier": "x"}), "INVALID_ARGUMENT", "attribute 'Carrier'"),
    (dict(id="truck-bad", attrs={"status": "x"}), "INVALID_ARGUMENT", "attribute 'status'"),
    (dict(id="truck-bad", attrs={"note": "a\tb"}), "INVALID_ARGUMENT", "without control"),
    (dict(id="truck-bad", attrs={"a%02d" % i: "v" for i in range(33)}), "INVALID_ARGUMENT",
     "attributes: at most 32"),
    (dict(id="truck-bad", cert="xyz"), "INVALID_ARGUMENT", "cert_sha256: 64 hex digits"),
])
def test_bad_input_stores_nothing(reg, vpb, req, code, msg):
    pk = req.get("pk", p256() if req["id"] != "truck-bad" or "attrs" in req or "cert" in req
                 else None)
    if pk == "rsa":
        pk = spki(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ident = vpb.VehicleIdentity(public_key=pk, cert_sha256=req.get("cert", "")) \
        if pk is not None else None
    r = vpb.RegisterVehicleRequest(id=req["id"], attributes=req.get("attrs", {}))
    if ident is not None:
        r.identity.CopyFrom(ident)
    e = refusal(reg.register, r)
    assert status_of(e).name == code and msg in e.details(), (e.code(), e.details())
    if req["id"] == "truck-bad":
        e = refusal(reg.get, vpb.GetVehicleRequest(id="truck-bad"))
        assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_unknown_vehicle(reg, vpb):
    for fn, r in [(reg.get, vpb.GetVehicleRequest(id="no-such")),
                  (reg.update, vpb.UpdateVehicleAttributesRequest(id="no-such",
                                                                  set={"a": "b"})),
                  (reg.status, vpb.SetVehicleStatusRequest(id="no-such",
                                                           status=vpb.VEHICLE_SUSPENDED))]:
        e = refusal(fn, r)
        assert status_of(e) == grpc.StatusCode.NOT_FOUND
        assert "vehicle 'no-such' not found" in e.details()
