"""No silent loss of evidence (issue 17): checked writes, the case kept, a metric, health degraded, readiness 503,
a disk-space watermark; evidence retention by policy with a fake clock."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.types import Detections, Frame
from service.app import create_app
from service.cases import CaseSettings, CaseStore
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.db.models import AuditEntry, Evidence, OutboxMessage
from service.evidence import EvidenceWriteError, save_evidence
from service.evidence_guard import EvidenceGuard
from service.retention import sweep_evidence
from service.settings import RetentionSettings, Settings
from service.workers import CameraRuntime, CameraWorker, DetectorPool, LatestFrames, WorkerContext
from tests.service.test_api import KEYS, make_config
from tests.service.test_cases import T0, make_camera, make_violation


def _frame() -> Frame:
    image = np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)
    return Frame(source_id="cam-1", index=0, ts=T0, image=image)


def _detections() -> Detections:
    return Detections(xyxy=np.array([[10, 10, 60, 80]], np.float32), confidence=np.array([0.9], np.float32),
                      class_id=np.array([0]))


# --- save_evidence ----------------------------------------------------------------------------------------

def test_evidence_files_are_owner_only(tmp_path):
    paths = save_evidence(tmp_path / "ev" / "cam-1" / "day", make_violation("v1"), _frame(), make_camera(),
                          _detections())
    assert sorted(paths) == ["annotated", "crop", "original"]
    for path in paths.values():
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "ev").st_mode & 0o777 == 0o700


@pytest.mark.parametrize("fail_on", [1, 2, 3])
def test_a_failed_write_raises_naming_the_file_and_leaves_no_partial_set(tmp_path, monkeypatch, fail_on):
    real = cv2.imwrite
    calls = [0]

    def flaky(path, image, params=None):
        calls[0] += 1
        return False if calls[0] == fail_on else real(path, image, params)

    monkeypatch.setattr(cv2, "imwrite", flaky)
    with pytest.raises(EvidenceWriteError, match=r"\.jpg: not written"):
        save_evidence(tmp_path, make_violation("v1"), _frame(), make_camera(), _detections())
    assert list(tmp_path.glob("*.jpg")) == []


# --- the worker keeps the case, counts, retries -------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
    upgrade_schema(engine)
    yield CaseStore(make_session_factory(engine), CaseSettings.from_config(make_config()))
    engine.dispose()


def _worker(store, evidence_dir: Path, guard: EvidenceGuard) -> CameraWorker:
    config = make_config()
    ctx = WorkerContext(config=lambda: config, cases=store, evidence_dir=evidence_dir, latest_frames=LatestFrames(),
                        push_sources={}, detectors=DetectorPool(), stop=threading.Event(), evidence_guard=guard)
    return CameraWorker("cam-1", ctx, CameraRuntime("cam-1"))


@pytest.mark.parametrize("broken, free_bytes, failures, skipped", [
    (False, 10 ** 12, 0, 0),     # healthy: written
    (True, 10 ** 12, 1, 0),      # evidence folder unusable (a file where the folder should be)
    (False, 10 ** 6, 0, 1),      # below the watermark: not even tried
])
def test_the_case_is_kept_when_evidence_cannot_be_written(tmp_path, store, broken, free_bytes, failures, skipped):
    evidence_dir = tmp_path / "evidence"
    if broken:
        evidence_dir.write_text("not a folder")
    guard = EvidenceGuard(evidence_dir, min_free_bytes=10 ** 9, free_bytes=lambda path: free_bytes)
    worker = _worker(store, evidence_dir, guard)
    camera = make_config().cameras[0]
    worker._handle([make_violation("cam-1/v1")], camera, _frame(), _detections())
    case = store.list_cases(limit=10).items[0]
    state = guard.state()
    assert (state.write_failures_total, state.skipped_low_disk_total) == (failures, skipped)
    assert state.degraded is bool(failures or skipped)
    assert len(case.evidence) == (0 if failures or skipped else 3)
    for e in case.evidence:  # no row points at a file that is not there
        assert Path(e.path).is_file() and e.sha256
    if broken:  # the folder is fixed: the violation's next event writes its evidence
        evidence_dir.unlink()
        worker._handle([make_violation("cam-1/v1", event="updated", last_s=400)], camera, _frame(), _detections())
        assert len(store.get(case.id).evidence) == 3 and not guard.state().degraded


def test_health_ready_and_metrics_report_evidence_failures(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False}, evidence_min_free_bytes=0,
                        api_keys=[{"name": "alice", "role": "reviewer", "key": KEYS["alice"]}])
    app = create_app(settings, config=make_config())
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok" and client.get("/ready").status_code == 200
        app.state.services.evidence_guard.failed("/x/v1.jpg: not written (disk full)")
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert "disk full" in health.json()["details"]["reasons"][0]
        assert client.get("/ready").status_code == 503
        assert "streetwatch_evidence_write_failures_total 1" in client.get("/metrics").text
        app.state.services.evidence_guard.written()
        assert client.get("/ready").status_code == 200


def test_the_watermark_shows_in_health(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False}, evidence_min_free_bytes=1024 ** 4)
    with TestClient(create_app(settings, config=make_config())) as client:  # no disk here has 1 TiB free
        body = client.get("/ready")
        assert body.status_code == 503 and "below the watermark" in body.json()["details"]["reasons"][0]


def test_database_and_evidence_folder_are_created_owner_only(tmp_path):
    settings = Settings(database_path=tmp_path / "db" / "cases.db", evidence_dir=tmp_path / "evidence",
                        run_cameras=False, run_flights=False, outbox={"deliver": False})
    create_app(settings, config=make_config()).state.services.engine.dispose()
    assert os.stat(tmp_path / "db" / "cases.db").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "evidence").st_mode & 0o777 == 0o700


# --- retention --------------------------------------------------------------------------------------------

def _case_with_evidence(store, root: Path, name: str, status: str, outbox: str | None = None) -> int:
    folder = root / "cam-1"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jpg"
    path.write_bytes(b"jpeg")
    case = store.ingest(make_violation(f"cam-1/{name}"), {"annotated": str(path)})
    if status == "confirmed":
        store.confirm(case.id, "alice")
    elif status == "rejected":
        store.reject(case.id, "alice", "not a stall")
    if outbox is not None:
        with store._sessions.begin() as s:
            s.add(OutboxMessage(case_id=case.id, adapter="webhook", idempotency_key=f"k-{name}", payload={},
                                status=outbox, attempts=0, next_attempt_at=T0, created_at=T0, updated_at=T0))
    return case.id


@pytest.mark.parametrize("status, outbox, age_days, kept", [
    ("rejected", None, 29, True),
    ("rejected", None, 31, False),
    ("confirmed", None, 364, True),
    ("confirmed", None, 366, False),
    ("confirmed", "pending", 400, True),     # the case system may still fetch the images
    ("confirmed", "sent", 400, False),
    ("pending", None, 1000, True),           # never reviewed: never expires
])
def test_retention_removes_evidence_of_reviewed_cases_by_age(tmp_path, store, status, outbox, age_days, kept):
    root = tmp_path / "evidence"
    case_id = _case_with_evidence(store, root, "v1", status, outbox)
    updated = store.get(case_id).updated_at
    policy = RetentionSettings(rejected_days=30, confirmed_days=365)
    report = sweep_evidence(store._sessions, policy, root, now=updated + timedelta(days=age_days))
    assert (root / "cam-1" / "v1.jpg").is_file() is kept
    assert len(store.get(case_id).evidence) == (1 if kept else 0)
    assert store.get(case_id).status == status  # the case itself stays
    assert report.files_deleted == (0 if kept else 1)
    if not kept:
        with store._sessions() as s:
            assert s.query(AuditEntry).filter_by(case_id=case_id, action="evidence_expired").count() == 1


def test_retention_never_touches_files_outside_the_evidence_folder(tmp_path, store):
    outside = tmp_path / "flights" / "f-1" / "crop.jpg"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"jpeg")
    case = store.ingest(make_violation("cam-1/v9"), {"crop": str(outside)})
    store.reject(case.id, "alice", "no")
    now = store.get(case.id).updated_at + timedelta(days=1000)
    sweep_evidence(store._sessions, RetentionSettings(), tmp_path / "evidence", now=now)
    assert outside.is_file() and len(store.get(case.id).evidence) == 1
    with store._sessions() as s:
        assert s.query(Evidence).count() == 1
