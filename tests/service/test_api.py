"""The HTTP API end to end: FastAPI's TestClient over an app from `create_app` on a real SQLite file."""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import timedelta

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from detector.zones import ZoneKind
from service.config import AppConfig, load_config
from service.db.models import AuditEntry, Evidence, OutboxMessage
from service.settings import Settings, hash_api_key
from tests.service.test_cases import T0, make_camera, make_origin, make_violation

KEYS = {
    "admin": "admin-key-0123456789",
    "alice": "reviewer-key-alice-0123",
    "cam-1": "camera-key-cam1-012345",
    "cam-2": "camera-key-cam2-012345",
    "pilot-li": "pilot-key-li-0123456789",
    "pilot-zhao": "pilot-key-zhao-012345678",
}
ADMIN, ALICE, CAM1, CAM2 = ({"Authorization": f"Bearer {KEYS[k]}"} for k in ("admin", "alice", "cam-1", "cam-2"))
PILOT, PILOT2 = ({"Authorization": f"Bearer {KEYS[k]}"} for k in ("pilot-li", "pilot-zhao"))
MAX_PUSH_BYTES = 200_000


def make_config() -> AppConfig:
    cameras = [make_camera("cam-1").model_dump(), make_camera("cam-2").model_dump()]
    cameras[0]["source"] = cameras[1]["source"] = "push"
    cameras[0]["zones"] = [{"id": "z1", "kind": "no_vending", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}]
    return AppConfig.model_validate({"config_version": 1, "cameras": cameras})


@pytest.fixture
def settings(tmp_path):
    return Settings(
        database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", adapters=("open311",),
        max_push_bytes=MAX_PUSH_BYTES, run_cameras=False, run_flights=False, outbox={"deliver": False},
        # The auth matrix makes hundreds of anonymous requests from one address; the failed-auth limit has its
        # own tests (tests/service/test_hostile_input.py).
        auth_limit={"burst": 10000},
        api_keys=[
            {"name": "root", "role": "admin", "key": KEYS["admin"]},
            {"name": "alice", "role": "reviewer", "key_sha256": hash_api_key(KEYS["alice"])},
            {"name": "cam-1-gw", "role": "camera", "camera_id": "cam-1", "key": KEYS["cam-1"]},
            {"name": "cam-2-gw", "role": "camera", "camera_id": "cam-2", "key": KEYS["cam-2"]},
            {"name": "pilot-li", "role": "pilot", "key": KEYS["pilot-li"]},
            {"name": "pilot-zhao", "role": "pilot", "key": KEYS["pilot-zhao"]},
        ])


@pytest.fixture
def app(settings):
    return create_app(settings, config=make_config())


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def services(app):
    return app.state.services


@pytest.fixture
def case_id(services):
    return services.cases.ingest(make_violation("v1"), origin=make_origin()).id


def jpeg(seed: int = 0, size=(48, 64)) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def push(client, camera_id="cam-1", body=None, headers=CAM1, at=0.0, content_type="image/jpeg"):
    return client.post(f"/api/v1/cameras/{camera_id}/frames", params={"ts": ts(at)}, content=jpeg() if body is None
                       else body, headers={**headers, "Content-Type": content_type})


def fields(response) -> dict[str, str]:
    return {item["field"]: item["msg"] for item in response.json()["detail"]}


# --- settings -------------------------------------------------------------------------------------------

def test_settings_keep_only_hashes_and_forbid_unknown_keys(settings, tmp_path):
    assert KEYS["admin"] not in settings.model_dump_json()
    with pytest.raises(ValueError, match="camera_id"):
        Settings(database_path=tmp_path / "x.db", evidence_dir=tmp_path,
                 api_keys=[{"name": "c", "role": "camera", "key": "k" * 20}])
    with pytest.raises(ValueError, match="extra"):
        Settings(database_path=tmp_path / "x.db", evidence_dir=tmp_path, colour="blue")


# --- auth -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, body, headers, expected", [
    ("get", "/api/v1/cases", None, {}, 401),
    ("get", "/api/v1/cases", None, {"Authorization": "Bearer not-a-real-key-000000"}, 401),
    ("get", "/api/v1/cases", None, {"X-API-Key": "not-a-real-key-000000"}, 401),
    ("get", "/api/v1/cases", None, CAM1, 403),
    ("get", "/api/v1/cases", None, ALICE, 200),
    ("get", "/api/v1/cases", None, {"X-API-Key": KEYS["alice"]}, 200),
    ("get", "/api/v1/cases", None, ADMIN, 200),
    ("post", "/api/v1/cases/{case}/confirm", None, {}, 401),
    ("post", "/api/v1/cases/{case}/confirm", None, CAM1, 403),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, {}, 401),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, ALICE, 403),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, CAM1, 403),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, ADMIN, 200),
    ("post", "/api/v1/outbox/1/retry", None, ALICE, 403),
    ("post", "/api/v1/outbox/1/retry", None, {}, 401),
    ("get", "/api/v1/cameras", None, CAM1, 403),
    ("get", "/api/v1/kinds", None, {}, 401),
    ("get", "/api/v1/kinds", None, CAM1, 403),
    ("get", "/api/v1/kinds", None, ALICE, 200),
    # a pilot key uploads flights and reads its own flights' status, nothing else
    ("get", "/api/v1/cases", None, PILOT, 403),
    ("get", "/api/v1/cases/{case}", None, PILOT, 403),
    ("post", "/api/v1/cases/{case}/confirm", None, PILOT, 403),
    ("get", "/api/v1/cameras", None, PILOT, 403),
    ("get", "/api/v1/kinds", None, PILOT, 403),
    ("get", "/api/v1/outbox", None, PILOT, 403),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, PILOT, 403),
    ("post", "/api/v1/cameras/cam-1/frames", None, PILOT, 403),
    # history and undo of one's own decision: reviewers and admins (their undo answers: tests/service/test_undo.py)
    ("get", "/api/v1/cases/history", None, {}, 401),
    ("get", "/api/v1/cases/history", None, CAM1, 403),
    ("get", "/api/v1/cases/history", None, PILOT, 403),
    ("get", "/api/v1/cases/history", None, ALICE, 200),
    ("get", "/api/v1/cases/history", None, ADMIN, 200),
    ("post", "/api/v1/cases/{case}/undo", None, {}, 401),
    ("post", "/api/v1/cases/{case}/undo", None, CAM1, 403),
    ("post", "/api/v1/cases/{case}/undo", None, PILOT, 403),
])
def test_auth_table(client, case_id, method, path, body, headers, expected):
    response = client.request(method, path.format(case=case_id), json=body, headers=headers)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if expected >= 400:
        assert "Authorization" in response.json()["detail"]


# Every flight route for every kind of caller. "mine" is a finished flight of pilot-li with its output folder,
# "theirs" one of pilot-zhao, "queued" one of pilot-li waiting in the queue (cancellable).
WHO = {"anonymous": {}, "wrong key": {"Authorization": "Bearer not-a-real-key-000000"}, "camera": CAM1,
       "pilot": PILOT, "reviewer": ALICE, "admin": ADMIN}
FLIGHT_ROUTES = [
    # method, path, JSON body, expected status by caller
    ("post", "/api/v1/flights", {}, {"pilot": 403, "reviewer": 403, "admin": 422}),  # JSON = server path: admin
    ("get", "/api/v1/flights", None, {"pilot": 200, "reviewer": 200, "admin": 200}),
    ("get", "/api/v1/flights/{mine}", None, {"pilot": 200, "reviewer": 200, "admin": 200}),
    ("get", "/api/v1/flights/{theirs}", None, {"pilot": 403, "reviewer": 200, "admin": 200}),
    ("post", "/api/v1/flights/{queued}/cancel", None, {"pilot": 403, "reviewer": 403, "admin": 200}),
    ("get", "/api/v1/flights/{mine}/report", None, {"pilot": 403, "reviewer": 200, "admin": 200}),
    ("post", "/api/v1/flights/{mine}/report-link", None, {"pilot": 403, "reviewer": 200, "admin": 200}),
    ("get", "/api/v1/flights/{mine}/findings.geojson", None, {"pilot": 403, "reviewer": 200, "admin": 200}),
    ("get", "/api/v1/flights/{mine}/files/frames/000001.jpg", None, {"pilot": 403, "reviewer": 200, "admin": 200}),
    ("get", "/api/v1/me", None, {"pilot": 200, "reviewer": 200, "admin": 200}),
]


@pytest.fixture
def flights(services, settings):
    from service.flights import FlightSource
    from service.settings import flights_dir

    store = services.flights
    ids = {}
    for key, owner in (("mine", "pilot-li"), ("theirs", "pilot-zhao"), ("queued", "pilot-li")):
        ids[key] = store.create(f"flight-{key}", input=FlightSource(video="/nowhere/f.mp4"), created_by=owner).id
    for key in ("mine", "theirs"):
        store.claim_next()
        store.finish(ids[key], "done")
        out = flights_dir(settings) / ids[key] / "out"
        (out / "frames").mkdir(parents=True)
        (out / "report.html").write_text("<!DOCTYPE html><html><head><title>r</title></head><body></body></html>")
        (out / "findings.geojson").write_text('{"type": "FeatureCollection", "features": []}')
        (out / "frames" / "000001.jpg").write_bytes(jpeg())
    return ids


@pytest.mark.parametrize("method, path, body, allowed", FLIGHT_ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in FLIGHT_ROUTES])
def test_flight_auth_table(client, flights, method, path, body, allowed):
    # One app per route, every caller in turn (the admin last: its cancel changes the flight).
    for who, headers in WHO.items():
        expected = {"anonymous": 401, "wrong key": 401, "camera": 403}.get(who) or allowed[who]
        response = client.request(method, path.format(**flights), json=body, headers=headers)
        assert response.status_code == expected, (who, response.text)
        if expected in (401, 403):
            assert "Authorization" in response.json()["detail"], (who, response.text)
        if expected == 200 and path == "/api/v1/flights" and who == "pilot":
            assert {f["id"] for f in response.json()["data"]} == {flights["mine"], flights["queued"]}


def test_no_anonymous_write_and_no_camera_key_beyond_its_frames(client, case_id):
    """Every write route of the OpenAPI schema refuses a call without a key (401), and a camera key everywhere
    but its own frame push (403); reads other than /health and /metrics need a key too."""
    spec = client.get("/openapi.json").json()
    routes = [(method, path) for path, ops in spec["paths"].items() for method in ops]
    writes = [(m, p) for m, p in routes if m in ("post", "put", "patch", "delete")]
    assert len(writes) >= 10
    for method, path in routes:
        url = path.replace("{camera_id}", "cam-1").replace("{case_id}", str(case_id)).replace(
            "{outbox_id}", "1").replace("{evidence_id}", "1")
        anonymous = client.request(method, url, json={})
        if path in ("/health", "/ready", "/metrics"):
            assert anonymous.status_code == 200, (method, path)
            continue
        if path == "/evidence/{case_id}/{file}":  # no key: the link's signature is the permission
            url = url.replace("{file}", "v1.jpg")
            assert client.request(method, url).status_code == 422, (method, path)  # no signature
            assert client.request(method, url, params={"exp": 2 ** 40, "sig": "0" * 64}).status_code == 403
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        if path != "/api/v1/cameras/{camera_id}/frames":
            assert client.request(method, url, json={}, headers=CAM1).status_code == 403, (method, path)


@pytest.mark.parametrize("headers, expected", [({}, 401), ({"Authorization": "Bearer nope-nope-nope-nope"}, 401),
                                               (ALICE, 403), (CAM2, 403), (CAM1, 202), (ADMIN, 202)])
def test_push_auth(client, services, headers, expected):
    response = push(client, headers=headers)
    assert response.status_code == expected, response.text
    assert services.push_sources["cam-1"].health().frames_sampled == (1 if expected == 202 else 0)


# --- cases ----------------------------------------------------------------------------------------------

def test_case_flow_confirm_audit_outbox(client, services, case_id):
    listed = client.get("/api/v1/cases", params={"status": "pending", "camera_id": "cam-1"}, headers=ALICE).json()
    assert (listed["count"], listed["next_cursor"], listed["data"][0]["id"]) == (1, None, case_id)
    assert client.get(f"/api/v1/cases/{case_id}", headers=ALICE).json()["violation_id"] == "v1"
    confirmed = client.post(f"/api/v1/cases/{case_id}/confirm", headers=ALICE)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    audit = client.get(f"/api/v1/cases/{case_id}/audit", headers=ALICE).json()
    assert [(a["actor"], a["action"]) for a in audit["data"]] == [("system", "created"), ("alice", "confirm")]
    with services.session_factory() as s:
        row = s.scalars(select(OutboxMessage)).one()
    assert (row.case_id, row.adapter, row.status) == (case_id, "open311", "pending")
    again = client.post(f"/api/v1/cases/{case_id}/confirm", headers=ALICE)
    assert again.status_code == 409 and "cannot go from 'confirmed'" in again.json()["detail"]
    # a dead row is listed with its error for the admin, who queues it again; the retry is audited under their name
    with services.session_factory.begin() as s:
        dead = s.get(OutboxMessage, row.id)
        dead.status, dead.attempts, dead.last_error = "dead", 16, "open311: HTTP 403: 403 Invalid api_key"
    listed = client.get("/api/v1/outbox", params={"status": "dead"}, headers=ADMIN).json()
    assert (listed["count"], listed["next_cursor"]) == (1, None)
    assert {k: listed["data"][0][k] for k in ("id", "case_id", "adapter", "status", "attempts", "last_error",
                                               "idempotency_key", "remote_id")} == {
        "id": row.id, "case_id": case_id, "adapter": "open311", "status": "dead", "attempts": 16,
        "last_error": "open311: HTTP 403: 403 Invalid api_key", "idempotency_key": row.idempotency_key,
        "remote_id": None}
    assert client.get("/api/v1/outbox", params={"status": "sent"}, headers=ADMIN).json()["data"] == []
    assert client.get("/api/v1/outbox", params={"status": "lost"}, headers=ADMIN).status_code == 422
    assert client.get("/api/v1/outbox", headers=ALICE).status_code == 403
    assert client.post(f"/api/v1/outbox/{row.id}/retry", headers=ADMIN).json() == {"id": row.id, "status": "pending"}
    assert client.get("/api/v1/outbox", params={"case_id": case_id}, headers=ADMIN).json()["data"][0]["status"] == (
        "pending")
    missing = client.post("/api/v1/outbox/999/retry", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["detail"] == "outbox_id: no outbox row 999"
    with services.session_factory() as s:
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (last.actor, last.action) == ("root", "outbox_retry")


def test_list_filters_and_paging(client, services):
    ids = [services.cases.ingest(make_violation(f"v{i}", zone_id=f"z{i}", first_s=i * 100, last_s=i * 100 + 50)).id
           for i in range(5)]
    page1 = client.get("/api/v1/cases", params={"limit": 2}, headers=ALICE).json()
    page2 = client.get("/api/v1/cases", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=ALICE).json()
    assert [c["id"] for c in page1["data"] + page2["data"]] == ids[::-1][:4]
    window = client.get("/api/v1/cases", params={"from": ts(220), "to": ts(400)}, headers=ALICE).json()
    assert [c["id"] for c in window["data"]] == [ids[3], ids[2]]
    bad = client.get("/api/v1/cases", params={"status": "bogus", "from": "2026-06-01T08:00:00"}, headers=ALICE)
    assert bad.status_code == 422 and set(fields(bad)) == {"status", "from"}


def test_cases_of_a_drone_flight(client, services):
    from service.origin import CaseOrigin

    camera_case = services.cases.ingest(make_violation("v1"), origin=make_origin()).id
    origin = CaseOrigin.flight("f-1", name="Patrol 1").at(31.19502, 121.43671, grid_code="310104-017")
    flight_case = services.cases.ingest(make_violation("f-1/v1", camera_id="f-1", kind="illegal_structure"),
                                        origin=origin).id
    of_flight = client.get("/api/v1/cases", params={"flight_id": "f-1"}, headers=ALICE).json()["data"]
    assert [(c["id"], c["flight_id"], c["camera_id"], c["lat_deg"], c["lon_deg"], c["grid_code"])
            for c in of_flight] == [(flight_case, "f-1", None, 31.19502, 121.43671, "310104-017")]
    of_camera = client.get("/api/v1/cases", params={"camera_id": "cam-1"}, headers=ALICE).json()["data"]
    assert [(c["id"], c["flight_id"], c["camera_id"]) for c in of_camera] == [(camera_case, None, "cam-1")]
    assert client.get(f"/api/v1/cases/{flight_case}", headers=ALICE).json()["flight_id"] == "f-1"
    too_long = client.get("/api/v1/cases", params={"flight_id": "f" * 65}, headers=ALICE)
    assert too_long.status_code == 422 and set(fields(too_long)) == {"flight_id"}


def test_reject_needs_reason(client, case_id):
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}):
        response = client.post(f"/api/v1/cases/{case_id}/reject", json=body, headers=ALICE)
        assert response.status_code == 422 and "reason" in fields(response), body
    ok = client.post(f"/api/v1/cases/{case_id}/reject", json={"reason": "shop's own goods"}, headers=ALICE)
    assert ok.json()["status"] == "rejected" and ok.json()["reject_reason"] == "shop's own goods"


def test_unknown_case_and_invalid_transition(client, case_id):
    for method, path in [("get", "/api/v1/cases/4242"), ("post", "/api/v1/cases/4242/confirm"),
                         ("get", "/api/v1/cases/4242/audit")]:
        response = client.request(method, path, headers=ALICE)
        assert response.status_code == 404 and response.json() == {"detail": "case_id: no case 4242"}
    not_a_number = client.get("/api/v1/cases/abc", headers=ALICE)
    assert not_a_number.status_code == 422 and "case_id" in fields(not_a_number)
    client.post(f"/api/v1/cases/{case_id}/reject", json={"reason": "no"}, headers=ALICE)
    response = client.post(f"/api/v1/cases/{case_id}/class", json={"kind": "bike_misparked"}, headers=ALICE)
    assert response.status_code == 409


def test_class_change_and_merge(client, services, case_id):
    other = services.cases.ingest(make_violation("v2", zone_id="z2")).id
    unknown = client.post(f"/api/v1/cases/{case_id}/class", json={"kind": "dragon"}, headers=ALICE)
    assert unknown.status_code == 422 and "unknown violation kind 'dragon'" in fields(unknown)["kind"]
    changed = client.post(f"/api/v1/cases/{case_id}/class", json={"kind": "bike_misparked"}, headers=ALICE)
    assert changed.json()["corrected_kind"] == "bike_misparked"
    merged = client.post(f"/api/v1/cases/{case_id}/merge", json={"case_ids": [other]}, headers=ALICE)
    assert merged.status_code == 200
    assert client.get(f"/api/v1/cases/{other}", headers=ALICE).json()["merged_into"] == case_id
    assert client.post(f"/api/v1/cases/{case_id}/merge", json={"case_ids": []}, headers=ALICE).status_code == 422
    unknown_source = client.post(f"/api/v1/cases/{case_id}/merge", json={"case_ids": [4242]}, headers=ALICE)
    assert unknown_source.status_code == 422 and fields(unknown_source) == {"case_ids[0]": "no case 4242"}
    unknown_target = client.post("/api/v1/cases/4242/merge", json={"case_ids": [case_id]}, headers=ALICE)
    assert unknown_target.status_code == 404 and unknown_target.json()["detail"] == "case_id: no case 4242"
    assert client.get(f"/api/v1/cases/{case_id}/evidence/9999", headers=ALICE).json()["detail"].startswith(
        "evidence_id: ")


def test_evidence_download_stays_under_the_evidence_dir(client, services, settings, tmp_path):
    settings.evidence_dir.mkdir(parents=True, exist_ok=True)  # create_app made it (owner-only)
    inside = settings.evidence_dir / "v1.annotated.jpg"
    inside.write_bytes(jpeg())
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    case = services.cases.ingest(make_violation("v1"), {"annotated": str(inside), "original": str(outside)})
    good, bad = case.evidence
    response = client.get(f"/api/v1/cases/{case.id}/evidence/{good.id}", headers=ALICE)
    assert response.status_code == 200 and response.content == inside.read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/v1/cases/{case.id}/evidence/{bad.id}", headers=ALICE).status_code == 404
    with services.session_factory.begin() as s:  # a relative path climbing out of the folder
        s.get(Evidence, good.id).path = "../secret.jpg"
    assert client.get(f"/api/v1/cases/{case.id}/evidence/{good.id}", headers=ALICE).status_code == 404
    assert client.get(f"/api/v1/cases/{case.id}/evidence/9999", headers=ALICE).status_code == 404
    assert client.get(f"/api/v1/cases/{case.id}/evidence/{good.id}", headers=CAM1).status_code == 403


def test_evidence_stored_relative_to_the_working_directory_is_served(tmp_path, monkeypatch):
    # Settings with a relative evidence_dir (as examples/settings.yaml has), and a row whose path was stored
    # relative to the working directory: the file must be found once, not under evidence_dir/evidence_dir.
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_path="cases.db", evidence_dir="var/evidence", run_cameras=False,
                        outbox={"deliver": False}, api_keys=[{"name": "alice", "role": "reviewer", "key": KEYS["alice"]}])
    (tmp_path / "var/evidence/cam/2026-06-01").mkdir(parents=True)
    (tmp_path / "var/evidence/cam/2026-06-01/v1.jpg").write_bytes(jpeg())
    (tmp_path / "outside.jpg").write_bytes(jpeg())
    app = create_app(settings, config=make_config())
    with TestClient(app) as client:
        services = app.state.services
        case = services.cases.ingest(make_violation("v1"), {"annotated": "var/evidence/cam/2026-06-01/v1.jpg",
                                                            "original": "outside.jpg"})
        good, outside = case.evidence
        assert client.get(f"/api/v1/cases/{case.id}/evidence/{good.id}", headers=ALICE).status_code == 200
        assert client.get(f"/api/v1/cases/{case.id}/evidence/{outside.id}", headers=ALICE).status_code == 404


# --- cameras and zones ----------------------------------------------------------------------------------

def test_cameras_list_and_get(client):
    cameras = client.get("/api/v1/cameras", headers=ALICE).json()
    assert [c["id"] for c in cameras["data"]] == ["cam-1", "cam-2"] and cameras["count"] == 2
    assert "source" not in cameras["data"][0]
    camera = client.get("/api/v1/cameras/cam-1", headers=ALICE).json()
    assert camera["health"]["state"] == "connecting" and camera["zones"][0]["id"] == "z1"
    assert client.get("/api/v1/cameras/nope", headers=ALICE).status_code == 404


@pytest.mark.parametrize("polygon, reason", [
    ([[0, 0], [1, 1], [1, 0], [0, 1]], "self-intersecting at segment 2\u20133 (crosses segment 0\u20131)"),
    ([[0, 0], [1.5, 0], [0, 1]], "point 1 (1.5, 0) lies outside [0, 1]"),
    ([[0, 0], [1, 0]], "needs at least 3 points, got 2"),
])
def test_put_zones_rejects_bad_polygons_and_stores_nothing(client, services, polygon, reason):
    before = services.config
    body = {"zones": [{"id": "z9", "kind": "no_vending", "polygon": polygon}]}
    response = client.put("/api/v1/cameras/cam-1/zones", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert fields(response) == {"zones[0].polygon": reason}
    assert services.config is before
    assert [z["id"] for z in client.get("/api/v1/cameras/cam-1", headers=ADMIN).json()["zones"]] == ["z1"]


def test_put_zones_stores_valid_zones_and_checks_unique_ids(client, services):
    zone = {"id": "z2", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1]]}
    duplicate = client.put("/api/v1/cameras/cam-1/zones", json={"zones": [zone, zone]}, headers=ADMIN)
    assert duplicate.status_code == 422 and any(f.startswith("zones[1]") for f in fields(duplicate))
    ok = client.put("/api/v1/cameras/cam-1/zones", json={"zones": [zone]}, headers=ADMIN)
    assert ok.status_code == 200 and [z["id"] for z in ok.json()["zones"]] == ["z2"]
    assert services.config.camera("cam-1").zones[0].id == "z2"
    assert client.put("/api/v1/cameras/nope/zones", json={"zones": []}, headers=ADMIN).status_code == 404


# --- pushed frames --------------------------------------------------------------------------------------

def test_push_accepts_a_good_jpeg(client, services):
    response = push(client, at=0)
    assert response.status_code == 202
    assert response.json() == {"camera_id": "cam-1", "ts": "2026-06-01T08:00:00Z", "queued": True, "index": 0}
    frame = services.push_sources["cam-1"].read(timeout_s=1)
    assert frame.ts == T0 and frame.image.shape == (48, 64, 3)
    by_header = client.post("/api/v1/cameras/cam-1/frames", content=jpeg(1),
                            headers={**CAM1, "Content-Type": "image/jpeg", "X-Frame-Timestamp": ts(5)})
    assert by_header.status_code == 202


@pytest.mark.parametrize("kwargs, status, field, reason", [
    (dict(body=b"\xff\xd8\xff" + b"\0" * (MAX_PUSH_BYTES + 1)), 413, "body", "exceeds the limit"),
    (dict(body=b"hello, not an image", content_type="text/plain"), 415, "content-type", "must be image/jpeg"),
    (dict(body=b"hello, not an image"), 415, "body", "not a JPEG"),
    (dict(body=jpeg()[:200]), 422, "body", "truncated"),
    (dict(camera_id="nope", headers=ADMIN), 404, None, "camera_id: no camera 'nope'"),
    (dict(camera_id="cam-2"), 403, None, "cam-1"),
])
def test_push_rejects_and_stores_nothing(client, services, kwargs, status, field, reason):
    response = push(client, **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if field is None:
        assert reason in detail
    else:
        assert reason in fields(response)[field]
    for source in services.push_sources.values():
        assert source.health().frames_sampled == 0 and source.read(timeout_s=0) is None


def test_push_oversized_chunked_body_is_refused_without_buffering_it(client, services):
    def chunks():
        yield b"\xff\xd8\xff"
        for _ in range(MAX_PUSH_BYTES // 10_000 + 2):
            yield b"\0" * 10_000

    response = client.post("/api/v1/cameras/cam-1/frames", params={"ts": ts(0)}, content=chunks(),
                           headers={**CAM1, "Content-Type": "image/jpeg"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "exceeds the limit" in fields(response)["body"]
    assert services.push_sources["cam-1"].health().frames_sampled == 0


def test_push_timestamps(client, services):
    assert push(client, at=10).status_code == 202
    for at in (10, 5):
        response = push(client, at=at)
        assert response.status_code == 409 and "not after the previous frame" in fields(response)["ts"]
    naive = client.post("/api/v1/cameras/cam-1/frames", params={"ts": "2026-06-01T08:00:20"}, content=jpeg(),
                        headers={**CAM1, "Content-Type": "image/jpeg"})
    assert naive.status_code == 422 and "time zone" in fields(naive)["ts"]
    missing = client.post("/api/v1/cameras/cam-1/frames", content=jpeg(), headers={**CAM1, "Content-Type": "image/jpeg"})
    assert missing.status_code == 422 and "ts" in fields(missing)
    assert services.push_sources["cam-1"].health().frames_sampled == 1


# --- system ---------------------------------------------------------------------------------------------

def test_health_and_metrics(client, services, case_id):
    assert client.get("/health").json()["status"] == "ok"
    client.post(f"/api/v1/cases/{case_id}/confirm", headers=ALICE)
    push(client, at=0)
    push(client, body=b"nope", at=1)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE streetwatch_cases gauge" in text
    assert 'streetwatch_cases{status="confirmed"} 1' in text and 'streetwatch_cases{status="pending"} 0' in text
    assert 'streetwatch_outbox_messages{status="pending"} 1' in text
    assert "streetwatch_outbox_backlog 1" in text
    assert 'streetwatch_push_frames_accepted_total{camera_id="cam-1"} 1' in text
    assert 'streetwatch_push_frames_rejected_total{camera_id="cam-1",reason="not_jpeg"} 1' in text


def test_unexpected_errors_are_a_generic_500(client, services, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services.cases, "list_cases", boom)
    response = client.get("/api/v1/cases", headers=ALICE)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error (logged on the server)"}
    assert "secret internals" not in response.text and "secret internals" in caplog.text


def test_kinds_come_from_the_catalogue_with_the_citys_codes(client):
    from service.kinds import CATALOGUE

    body = client.get("/api/v1/kinds", headers=ALICE).json()
    assert [k["kind"] for k in body["data"]] == [row.kind for row in CATALOGUE]
    bikes = next(k for k in body["data"] if k["kind"] == "bike_misparked")
    assert (bikes["title_zh"], bikes["classes"], bikes["color"]) == ("非机动车乱停放", ["bicycle", "ebike"], "#fb8c00")
    assert {z["kind"] for z in body["zone_kinds"]} == {"no_vending", "vending_allowed", "bike_parking", "watch_area",
                                                      "exclusion"}
    assert next(z for z in body["zone_kinds"] if z["kind"] == "no_vending")["color"] == "#e62828"


def test_openapi_lists_every_route_with_schemas(client):
    spec = client.get("/openapi.json").json()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    # 20 before GET /api/v1/kinds; 8 flight routes and GET /api/v1/me since; GET /api/v1/cases/history and POST
    # .../undo (issue 18); 3 more of issue 18's other parts; GET /api/v1/export (issue 18's bulk export)
    assert len(operations) == 36
    for path, method, op in operations:
        assert op.get("summary"), (path, method)
        ok = next(code for code in op["responses"] if code.startswith("2"))
        assert op["responses"][ok].get("content"), (path, method)
    case_ok = spec["paths"]["/api/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert case_ok == {"$ref": "#/components/schemas/CasesPublic"}
    assert {"CasePublic", "CasesPublic", "CaseReject", "ZonesUpdate", "FrameAccepted", "CameraCreate", "CameraUpdate",
            "CameraSaved", "CameraDeleted", "OutboxesPublic", "HealthPublic"} <= set(spec["components"]["schemas"])
    for path, method, op in operations:  # every JSON answer has a response model, every error the error model
        for code, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                assert "$ref" in schema or schema.get("type") == "string", (path, method, code, schema)
            if code.startswith("4") and code != "422":
                assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (path, method, code)
    cameras = spec["paths"]["/api/v1/cameras"]["post"]
    body_schema = cameras["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/CameraCreate"}
    assert {"201", "409", "422"} <= set(cameras["responses"])
    snap = spec["paths"]["/api/v1/cameras/{camera_id}/snapshot.jpg"]["get"]
    assert list(snap["responses"]["200"]["content"]) == ["image/jpeg"] and "404" in snap["responses"]
    assert "persisted" in spec["components"]["schemas"]["ZonesPublic"]["required"]


# --- camera administration: create, update, delete, persistence --------------------------------------------

HAND_WRITTEN = """\
# Hand-written configuration (its comments survive the service's rewrites: ruamel.yaml round trip).
config_version: 1
rules:
  stall_occupation: {min_score: 0.7}
cameras:
  - id: cam-1
    name: Gate
    source: push
    timezone: Asia/Shanghai
    zones:
      - {id: z1, kind: no_vending, polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}
    rules:
      stall_occupation: {min_dwell_s: 60}
  - id: cam-2
    source: rtsp://10.0.0.6/stream
    timezone: Asia/Shanghai
"""
NEW_CAMERA = {"id": "cam-3", "name": "Market St", "source": "push", "timezone": "Asia/Shanghai", "sample_fps": 2,
              "address": "1 Market St", "grid_code": "310101-009", "position": {"lat_deg": 31.2, "lon_deg": 121.5},
              "zones": [{"id": "bikes", "kind": "bike_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}]}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir()
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    path.chmod(0o640)
    return path


@pytest.fixture
def file_settings(settings, config_file):
    return settings.model_copy(update={"config_path": config_file})


@pytest.fixture
def file_client(file_settings):
    with TestClient(create_app(file_settings), raise_server_exceptions=False) as c:
        yield c


def test_camera_crud_in_memory_without_a_config_file(client, services):
    created = client.post("/api/v1/cameras", json=NEW_CAMERA, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["persisted"], body["source_kind"], body["sample_fps"]) == ("cam-3", False, "push", 2.0)
    assert body["zones"][0]["id"] == "bikes" and "source" not in body
    assert [c["id"] for c in client.get("/api/v1/cameras", headers=ALICE).json()["data"]] == ["cam-1", "cam-2", "cam-3"]
    assert push(client, "cam-3", headers=ADMIN).status_code == 202  # a push buffer came with it

    patched = client.patch("/api/v1/cameras/cam-3", json={"name": "Market St N", "enabled": False, "position": None,
                                                          "address": "2 Market St"}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    got = client.get("/api/v1/cameras/cam-3", headers=ALICE).json()
    assert (got["name"], got["enabled"], got["position"], got["address"], got["grid_code"]) == (
        "Market St N", False, None, "2 Market St", "310101-009")
    moved = client.patch("/api/v1/cameras/cam-3", json={"source": "rtsp://10.0.0.9/live"}, headers=ADMIN)
    assert moved.json()["source_kind"] == "rtsp" and "cam-3" not in services.push_sources

    deleted = client.delete("/api/v1/cameras/cam-3", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json() == {"id": "cam-3", "persisted": False}
    assert client.get("/api/v1/cameras/cam-3", headers=ALICE).status_code == 404
    assert push(client, "cam-3", headers=ADMIN).status_code == 404
    assert [c.id for c in services.config.cameras] == ["cam-1", "cam-2"]


def test_first_camera_of_a_service_started_without_any(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:  # no config_path, no cameras
        created = c.post("/api/v1/cameras", json=NEW_CAMERA, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.json()["persisted"] is False
        assert c.get("/api/v1/cameras", headers=ALICE).json()["count"] == 1


def test_patch_keeps_rule_overrides_and_clears_them_with_null(file_client):
    services = file_client.app.state.services
    rules = services.config.rules_for(services.config.camera("cam-1"))
    assert (rules.stall_occupation.min_score, rules.stall_occupation.min_dwell_s) == (0.7, 60)
    assert file_client.patch("/api/v1/cameras/cam-1", json={"sample_fps": 0.5}, headers=ADMIN).status_code == 200
    rules = services.config.rules_for(services.config.camera("cam-1"))
    assert (rules.stall_occupation.min_score, rules.stall_occupation.min_dwell_s) == (0.7, 60)
    assert file_client.patch("/api/v1/cameras/cam-1", json={"rules": None}, headers=ADMIN).status_code == 200
    rules = services.config.rules_for(services.config.camera("cam-1"))
    assert (rules.stall_occupation.min_score, rules.stall_occupation.min_dwell_s) == (0.7, 300)


def test_changes_are_written_to_the_config_file_and_survive_a_restart(file_settings, config_file, caplog):
    caplog.set_level(logging.INFO, logger="streetwatch.audit")
    zone = {"id": "stalls", "kind": "no_vending", "name": "北侧人行道", "polygon": [[0.05, 0.55], [0.6, 0.5],
                                                                                 [0.7, 0.98], [0.02, 0.98]]}
    with TestClient(create_app(file_settings), raise_server_exceptions=False) as c:
        put = c.put("/api/v1/cameras/cam-1/zones", json={"zones": [zone]}, headers=ADMIN)
        assert put.status_code == 200 and put.json()["persisted"] is True
        # the camera's rule override still only overrides what it set (min_score stays the file's default)
        services = c.app.state.services
        assert services.config.rules_for(services.config.camera("cam-1")).stall_occupation.min_score == 0.7
        assert c.post("/api/v1/cameras", json=NEW_CAMERA, headers=ADMIN).json()["persisted"] is True
        assert c.patch("/api/v1/cameras/cam-3", json={"enabled": False, "sample_fps": 0.5},
                       headers=ADMIN).json()["persisted"] is True
        assert c.delete("/api/v1/cameras/cam-2", headers=ADMIN).json() == {"id": "cam-2", "persisted": True}
    text = config_file.read_text(encoding="utf-8")
    assert text.startswith("# streetwatch: last changed by the service") and "# Hand-written configuration" in text
    assert "北侧人行道" in text  # readable, not escaped
    assert os.stat(config_file).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in config_file.parent.iterdir()) == ["config.yaml"]  # no temporary file left
    on_disk = load_config(config_file)
    assert [c.id for c in on_disk.cameras] == ["cam-1", "cam-3"]
    assert on_disk.rules_for(on_disk.camera("cam-1")).stall_occupation.min_dwell_s == 60
    audit = [r.getMessage() for r in caplog.records if r.name == "streetwatch.audit"]
    assert [m.split()[1] for m in audit] == ["zones", "create", "update", "delete"]
    assert all("by=root role=admin persisted=True" in m for m in audit)

    with TestClient(create_app(file_settings), raise_server_exceptions=False) as fresh:  # a restart
        cameras = {c["id"]: c for c in fresh.get("/api/v1/cameras", headers=ALICE).json()["data"]}
        assert list(cameras) == ["cam-1", "cam-3"]
        assert cameras["cam-1"]["zones"] == [{**zone, "schedule": None, "inertia_samples": 3, "anchor": "bottom_center",
                                              "min_dwell_s": None}]
        assert (cameras["cam-3"]["enabled"], cameras["cam-3"]["sample_fps"]) == (False, 0.5)
        assert cameras["cam-3"]["zones"][0]["id"] == "bikes"


BOWTIE = [[0, 0], [1, 1], [1, 0], [0, 1]]


@pytest.mark.parametrize("method, path, body, headers, status, field, reason", [
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "id": "cam-1"}, ADMIN, 409, None, "a camera 'cam-1' exists already"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "timezone": "Asia/Shangai"}, ADMIN, 422, "timezone", "Asia/Shanghai"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "source": "ftp://x/y"}, ADMIN, 422, "source", "must be 'push' or a URL"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "id": "bad id!"}, ADMIN, 422, "id", "pattern"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "colour": "red"}, ADMIN, 422, "colour", "unknown field"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "zones": [{"id": "z", "kind": "no_vending", "polygon": BOWTIE}]},
     ADMIN, 422, "zones[0].polygon", "self-intersecting at segment 2\u20133 (crosses segment 0\u20131)"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "zones": [{"id": "z", "kind": "no_vending",
                                                          "polygon": [[0, 0], [1.2, 0], [0, 1]]}]},
     ADMIN, 422, "zones[0].polygon", "point 1 (1.2, 0) lies outside [0, 1]"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "zones": [{"id": "z", "kind": "lava", "polygon": [[0, 0], [1, 0],
                                                                                                  [0, 1]]}]},
     ADMIN, 422, "zones[0].kind", "no_vending"),
    ("post", "/api/v1/cameras", {**NEW_CAMERA, "rules": {"stall_occupation": {"zone_ids": ["nope"]}}}, ADMIN, 422,
     "rules.stall_occupation.zone_ids[0]", "no zone 'nope' on this camera"),
    ("post", "/api/v1/cameras", NEW_CAMERA, ALICE, 403, None, "Authorization"),
    ("post", "/api/v1/cameras", NEW_CAMERA, CAM1, 403, None, "Authorization"),
    ("post", "/api/v1/cameras", NEW_CAMERA, {}, 401, None, "Authorization"),
    ("patch", "/api/v1/cameras/nope", {"name": "x"}, ADMIN, 404, None, "camera_id: no camera 'nope'"),
    ("patch", "/api/v1/cameras/cam-1", {"timezone": "Mars/Olympus"}, ADMIN, 422, "timezone", "unknown time zone"),
    ("patch", "/api/v1/cameras/cam-1", {"sample_fps": 0}, ADMIN, 422, "sample_fps", "greater than 0"),
    ("patch", "/api/v1/cameras/cam-1", {"name": None}, ADMIN, 422, "name", "valid string"),
    ("patch", "/api/v1/cameras/cam-1", {"id": "cam-9"}, ADMIN, 422, "id", "unknown field"),
    ("patch", "/api/v1/cameras/cam-1", {"position": {"lat_deg": 95, "lon_deg": 0}}, ADMIN, 422, "position.lat_deg",
     "less than or equal to 90"),
    ("patch", "/api/v1/cameras/cam-1", {"rules": {"bike_misparked": {"enabled": True}}}, ADMIN, 422,
     "rules.bike_misparked", "enabled, but the camera has no bike_parking or watch_area zone"),
    ("patch", "/api/v1/cameras/cam-1", {"enabled": False}, ALICE, 403, None, "Authorization"),
    ("delete", "/api/v1/cameras/nope", None, ADMIN, 404, None, "camera_id: no camera 'nope'"),
    ("delete", "/api/v1/cameras/cam-1", None, ALICE, 403, None, "Authorization"),
    ("put", "/api/v1/cameras/nope/zones", {"zones": []}, ADMIN, 404, None, "camera_id: no camera 'nope'"),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": [{"id": "z", "kind": "no_vending", "polygon": BOWTIE}]}, ADMIN,
     422, "zones[0].polygon", "self-intersecting"),
    ("put", "/api/v1/cameras/cam-1/zones", {"zones": []}, ALICE, 403, None, "Authorization"),
])
def test_camera_writes_refuse_bad_input_and_store_nothing(file_client, config_file, method, path, body, headers,
                                                          status, field, reason):
    services = file_client.app.state.services
    before, file_before = services.config, config_file.read_bytes()
    response = file_client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    if field is None:
        assert reason in response.json()["detail"]
    else:
        problems = fields(response)
        assert field in problems and reason in problems[field], problems
    assert "Traceback" not in response.text
    assert services.config is before and config_file.read_bytes() == file_before
    assert set(services.push_sources) == {"cam-1"}


def test_a_config_file_that_cannot_be_written_changes_nothing(file_client, config_file, caplog):
    services = file_client.app.state.services
    before = services.config
    shutil.rmtree(config_file.parent)  # the configuration folder went away under the running service
    response = file_client.put("/api/v1/cameras/cam-1/zones", json={"zones": []}, headers=ADMIN)
    assert response.status_code == 500
    assert response.json()["detail"].startswith("config_path: cannot write the configuration file")
    assert "nothing was changed" in response.json()["detail"]
    assert services.config is before and services.config.camera("cam-1").zones[0].id == "z1"


# --- snapshots ------------------------------------------------------------------------------------------------

def test_snapshot_404_before_a_frame_then_the_latest_frame_with_zones(client):
    missing = client.get("/api/v1/cameras/cam-1/snapshot.jpg", headers=ALICE)
    assert missing.status_code == 404 and "has no frame yet" in missing.json()["detail"]
    assert client.get("/api/v1/cameras/nope/snapshot.jpg", headers=ALICE).status_code == 404
    assert client.get("/api/v1/cameras/cam-1/snapshot.jpg", headers=CAM1).status_code == 403
    bad = client.get("/api/v1/cameras/cam-1/snapshot.jpg", params={"zones": "maybe"}, headers=ALICE)
    assert bad.status_code == 422 and "zones" in fields(bad)

    # a dark blue-grey street with some texture (the frame guard refuses uniform frames)
    ramp = np.linspace(40, 120, 320, dtype=np.float32)[None, :, None]
    frame = np.broadcast_to(ramp, (240, 320, 3)).astype(np.uint8).copy()
    frame[:, :, 2] //= 2
    assert push(client, body=cv2.imencode(".jpg", frame)[1].tobytes(), at=0).status_code == 202
    drawn = client.get("/api/v1/cameras/cam-1/snapshot.jpg", headers=ALICE)
    bare = client.get("/api/v1/cameras/cam-1/snapshot.jpg", params={"zones": "false"}, headers=ALICE)
    for response in (drawn, bare):
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-frame-timestamp"] == T0.isoformat()
        assert response.headers["cache-control"] == "no-store"
    drawn_img = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR)
    bare_img = cv2.imdecode(np.frombuffer(bare.content, np.uint8), cv2.IMREAD_COLOR)
    assert drawn_img.shape == bare_img.shape == (240, 320, 3)
    # z1 (no_vending, red) runs along y = 0.1 from x = 0.1 to 0.9: its outline is on the drawn frame only
    b, g, r = (int(v) for v in drawn_img[24, 160])
    assert r > 180 and b < 110 and g < 110, (b, g, r)
    assert np.abs(bare_img.astype(int) - frame.astype(int)).mean() < 3  # nothing drawn
    assert int(bare_img[22:27, 158:163, 2].max()) < 120
    # the latest frame wins
    assert push(client, body=cv2.imencode(".jpg", cv2.resize(frame, (160, 120)))[1].tobytes(), at=5).status_code == 202
    newer = client.get("/api/v1/cameras/cam-1/snapshot.jpg", headers=ALICE)
    assert cv2.imdecode(np.frombuffer(newer.content, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    # a deleted camera's frame is gone with it
    assert client.delete("/api/v1/cameras/cam-1", headers=ADMIN).status_code == 200
    assert client.get("/api/v1/cameras/cam-1/snapshot.jpg", headers=ALICE).status_code == 404


# --- camera workers follow the changes --------------------------------------------------------------------------

def wait_for(condition, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_camera_workers_start_stop_and_reconfigure_with_the_api(settings, caplog):
    caplog.set_level(logging.INFO, logger="streetwatch.workers")
    worker_settings = settings.model_copy(update={"run_cameras": True, "inference_threads": 1})
    config = AppConfig.model_validate({"config_version": 1, "model": {"name": "street"}, "cameras": []})
    with TestClient(create_app(worker_settings, config=config), raise_server_exceptions=False) as c:
        services = c.app.state.services
        assert services.workers is not None and services.runtimes == {}
        camera = {**NEW_CAMERA, "sample_fps": 1}
        assert c.post("/api/v1/cameras", json=camera, headers=ADMIN).status_code == 201
        worker = wait_for(lambda: services.workers.cameras.get("cam-3"), what="a worker for the new camera")
        wait_for(lambda: services.runtimes["cam-3"].state == "running", what="the worker to run")
        for i in range(2):
            assert push(c, "cam-3", body=jpeg(i, (120, 160)), headers=ADMIN, at=i * 2.0).status_code == 202
        wait_for(lambda: services.runtimes["cam-3"].frames_processed >= 2, what="frames through the pipeline")

        # a zone edit reaches the running pipeline on its next frame (rules rebuilt, same worker)
        zones = {"zones": [{"id": "stalls", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1]]}]}
        assert c.put("/api/v1/cameras/cam-3/zones", json=zones, headers=ADMIN).status_code == 200
        assert push(c, "cam-3", body=jpeg(5, (120, 160)), headers=ADMIN, at=10.0).status_code == 202
        wait_for(lambda: "camera cam-3: configuration changed; rules rebuilt" in caplog.text, what="the rebuild")
        assert services.workers.cameras["cam-3"] is worker and worker.alive

        # disabled: the worker stops; enabled again: a new one starts
        assert c.patch("/api/v1/cameras/cam-3", json={"enabled": False}, headers=ADMIN).status_code == 200
        wait_for(lambda: not worker.alive, what="the disabled camera's worker to stop")
        assert services.runtimes["cam-3"].state == "disabled" and "cam-3" not in services.workers.cameras
        assert c.get("/api/v1/cameras/cam-3", headers=ALICE).json()["health"]["worker"] == "disabled"
        assert c.patch("/api/v1/cameras/cam-3", json={"enabled": True}, headers=ADMIN).status_code == 200
        second = wait_for(lambda: services.workers.cameras.get("cam-3"), what="a worker for the re-enabled camera")
        assert second is not worker
        wait_for(lambda: services.runtimes["cam-3"].state == "running", what="the new worker to run")

        # deleted: the worker stops and the camera leaves the health report
        assert c.delete("/api/v1/cameras/cam-3", headers=ADMIN).status_code == 200
        wait_for(lambda: not second.alive, what="the deleted camera's worker to stop")
        assert "cam-3" not in services.runtimes and "cam-3" not in services.push_sources


def test_the_zone_editor_is_served_and_knows_every_zone_kind(client):
    script = client.get("/static/zones.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    strings = client.get("/static/i18n.js").text
    for kind in ZoneKind:
        assert f"    {kind.value}: {{ zh: " in strings, f"i18n.js has no zh-CN/English names for zone kind {kind.value}"
