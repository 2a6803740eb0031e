"""The HTTP API end to end: FastAPI's TestClient over an app from `create_app` on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.config import AppConfig
from service.db.models import AuditEntry, Evidence, OutboxMessage
from service.settings import Settings, hash_api_key
from tests.service.test_cases import T0, make_camera, make_violation

KEYS = {
    "admin": "admin-key-0123456789",
    "alice": "reviewer-key-alice-0123",
    "cam-1": "camera-key-cam1-012345",
    "cam-2": "camera-key-cam2-012345",
}
ADMIN, ALICE, CAM1, CAM2 = ({"Authorization": f"Bearer {KEYS[k]}"} for k in ("admin", "alice", "cam-1", "cam-2"))
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
        max_push_bytes=MAX_PUSH_BYTES, run_cameras=False, outbox={"deliver": False},
        api_keys=[
            {"name": "root", "role": "admin", "key": KEYS["admin"]},
            {"name": "alice", "role": "reviewer", "key_sha256": hash_api_key(KEYS["alice"])},
            {"name": "cam-1-gw", "role": "camera", "camera_id": "cam-1", "key": KEYS["cam-1"]},
            {"name": "cam-2-gw", "role": "camera", "camera_id": "cam-2", "key": KEYS["cam-2"]},
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
    return services.cases.ingest(make_violation("v1"), camera=make_camera()).id


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
])
def test_auth_table(client, case_id, method, path, body, headers, expected):
    response = client.request(method, path.format(case=case_id), json=body, headers=headers)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if expected >= 400:
        assert "Authorization" in response.json()["detail"]


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
    # outbox retry: a pending row may be retried; the retry is audited under the admin's name
    with services.session_factory.begin() as s:
        s.get(OutboxMessage, row.id).status = "dead"
    assert client.post(f"/api/v1/outbox/{row.id}/retry", headers=ADMIN).json() == {"id": row.id, "status": "pending"}
    assert client.post("/api/v1/outbox/999/retry", headers=ADMIN).status_code == 404
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
        assert response.status_code == 404 and response.json() == {"detail": "no case 4242"}
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


def test_evidence_download_stays_under_the_evidence_dir(client, services, settings, tmp_path):
    settings.evidence_dir.mkdir(parents=True)
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
    (dict(camera_id="nope", headers=ADMIN), 404, None, "no camera 'nope'"),
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


def test_openapi_lists_every_route_with_schemas(client):
    spec = client.get("/openapi.json").json()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) == 15
    for path, method, op in operations:
        assert op.get("summary"), (path, method)
        ok = next(code for code in op["responses"] if code.startswith("2"))
        assert op["responses"][ok].get("content"), (path, method)
    case_ok = spec["paths"]["/api/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert case_ok == {"$ref": "#/components/schemas/CasesPublic"}
    assert {"CasePublic", "CasesPublic", "CaseReject", "ZonesUpdate", "FrameAccepted"} <= set(spec["components"]["schemas"])
