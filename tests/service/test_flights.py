"""Drone flights in the service: submitting (upload streamed to disk with its limit, server paths under the
allowed folders), the flight rows, the job worker with a stand-in for `run_flight` (progress, cancel, failure,
restart, shutdown), the report and its files (traversal refused, browser links), /metrics, and migration 0004.

The auth table of every flight route is in test_api.py; the real flight job end to end (kill -9 and restart of
`streetwatch serve`) in test_flights_e2e.py; the page in test_flights_page.py.
"""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from detector.errors import StreetwatchError
from service.app import create_app
from service.config import AppConfig
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.drone import FlightCancelled, FlightInputError, FlightProgress
from service.flights import (FlightSource, FlightStateError, FlightStore, FlightWorker, ReportLinks, StillsError,
                             extract_stills, flight_file, new_flight_id)
from service.settings import Settings, flights_dir
from tests.service.test_review_page import ServerThread  # uvicorn in a thread on a free loopback port

KEYS = {"admin": "admin-key-0123456789", "reviewer": "reviewer-key-0123456789", "pilot": "pilot-key-li-0123456789",
        "pilot2": "pilot-key-zhao-01234567"}
ADMIN, REVIEWER, PILOT, PILOT2 = ({"Authorization": f"Bearer {KEYS[k]}"} for k in KEYS)
MAX_UPLOAD = 300_000
SRT = (b"1\n00:00:00,000 --> 00:00:00,100\n<font size=\"28\">FrameCnt: 1, DiffTime: 100ms\n2026-06-01 10:00:00.000\n"
       b"[latitude: 22.543100] [longitude: 114.057900] [rel_alt: 35.000 abs_alt: 47.300] </font>\n")


def make_settings(tmp_path: Path, **flights: Any) -> Settings:
    return Settings(
        database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "data" / "evidence", run_cameras=False,
        run_flights=False, outbox={"deliver": False},
        flights={"max_upload_bytes": MAX_UPLOAD, "allowed_dirs": [str(tmp_path / "allowed")], **flights},
        api_keys=[{"name": "root", "role": "admin", "key": KEYS["admin"]},
                  {"name": "wang", "role": "reviewer", "key": KEYS["reviewer"]},
                  {"name": "pilot-li", "role": "pilot", "key": KEYS["pilot"]},
                  {"name": "pilot-zhao", "role": "pilot", "key": KEYS["pilot2"]}])


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def app(settings):
    return create_app(settings, AppConfig(config_version=1))


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def store(app) -> FlightStore:
    return app.state.services.flights


def fields(response) -> dict[str, str]:
    return {item["field"]: item["msg"] for item in response.json()["detail"]}


def stills_zip(names: list[str], payload: bytes = b"\xff\xd8\xff\xe0fake-jpeg") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            z.writestr(name, payload)
    return buf.getvalue()


def upload(client, files: dict[str, tuple[str, bytes]], headers=PILOT, name: str | None = None):
    data = {"name": name} if name is not None else None
    return client.post("/api/v1/flights", files={k: (fn, body) for k, (fn, body) in files.items()}, data=data,
                       headers=headers)


# --- submitting ---------------------------------------------------------------------------------------------

def test_pilot_uploads_a_video_with_its_srt_and_follows_only_its_own_flights(client, store, settings):
    response = upload(client, {"video": ("DJI_0001.MP4", b"\0" * 5000), "srt": ("DJI_0001.SRT", SRT)})
    assert response.status_code == 202, response.text
    body = response.json()
    flight_id = body["id"]
    assert (body["status"], body["name"], body["source_name"], body["created_by"]) == (
        "queued", "DJI_0001", "flight.mp4", "pilot-li")
    assert body["progress"] == {"stage": None, "percent": 0.0, "frames_done": 0, "frames_total": None,
                                "findings": None, "eta_s": None}
    assert body["case_ids"] is None  # a pilot reads no cases
    assert response.headers["location"] == body["links"]["flight"] == f"/api/v1/flights/{flight_id}"
    input_dir = flights_dir(settings) / flight_id / "input"
    assert (input_dir / "flight.mp4").read_bytes() == b"\0" * 5000 and (input_dir / "flight.SRT").read_bytes() == SRT
    job = store.get(flight_id)
    assert job.input == FlightSource(video=str(input_dir / "flight.mp4"), srt=str(input_dir / "flight.SRT"))

    assert client.get(f"/api/v1/flights/{flight_id}", headers=PILOT).json()["status"] == "queued"
    assert client.get(f"/api/v1/flights/{flight_id}", headers=PILOT2).status_code == 403
    assert client.get("/api/v1/flights", headers=PILOT2).json() == {"data": [], "count": 0}
    assert [f["id"] for f in client.get("/api/v1/flights", headers=PILOT).json()["data"]] == [flight_id]
    assert client.get(f"/api/v1/flights/{flight_id}", headers=REVIEWER).json()["case_ids"] == []


def test_stills_zip_is_unpacked_flat_and_named(client, store, settings):
    response = upload(client, {"stills": ("mission 7.zip", stills_zip(["DCIM/DJI_0001.JPG", "DCIM/DJI_0002.jpg",
                                                                        "notes.txt", "__MACOSX/._x.jpg"]))},
                      name="  Rooftops, Xuhui ")
    assert response.status_code == 202, response.text
    flight_id = response.json()["id"]
    stills = flights_dir(settings) / flight_id / "input" / "stills"
    assert sorted(p.name for p in stills.iterdir()) == ["DJI_0001.JPG", "DJI_0002.jpg"]  # no macOS "._" forks
    assert not (stills.parent / "stills.zip").exists()
    assert store.get(flight_id).input == FlightSource(stills=str(stills))
    assert response.json()["name"] == "Rooftops, Xuhui"


@pytest.mark.parametrize("files, data, where, reason", [
    ({"video": ("f.txt", b"x")}, None, "video", "is not a video"),
    ({"video": ("f.mp4", b"x")}, None, "srt", "needs its DJI .SRT telemetry"),
    ({"video": ("f.mp4", b"x"), "srt": ("f.txt", SRT)}, None, "srt", "is not a DJI .SRT"),
    ({"video": ("f.mp4", b""), "srt": ("f.SRT", SRT)}, None, "video", "is empty"),
    ({"srt": ("f.SRT", SRT)}, None, "video", "a video (with its srt) or a zip of stills"),
    ({"video": ("f.mp4", b"x"), "srt": ("f.SRT", SRT), "stills": ("s.zip", stills_zip(["a.jpg"]))}, None, "video",
     "not both"),
    ({"stills": ("s.zip", stills_zip(["a.jpg"])), "srt": ("f.SRT", SRT)}, None, "srt", "goes with a video"),
    ({"stills": ("s.tar", b"x")}, None, "stills", "is not a .zip"),
    ({"stills": ("s.zip", b"not a zip")}, None, "stills", "is not a zip file"),
    ({"stills": ("s.zip", stills_zip(["a.txt"]))}, None, "stills", "holds no JPEG"),
    ({"stills": ("s.zip", stills_zip(["a/x.jpg", "b/x.jpg"]))}, None, "stills", "two stills named 'x.jpg'"),
    ({"video": ("f.mp4", b"x"), "srt": ("f.SRT", SRT), "extra": ("e.bin", b"x")}, None, "extra",
     "unknown file field"),
    ({"video": ("f.mp4", b"x"), "srt": ("f.SRT", SRT)}, {"colour": "blue"}, "colour", "unknown field"),
    ({"video": ("f.mp4", b"x"), "srt": ("f.SRT", SRT)}, {"name": "n" * 201}, "name", "at most 200"),
])
def test_bad_uploads_are_refused_by_field_and_leave_nothing(client, store, settings, files, data, where, reason):
    response = client.post("/api/v1/flights", files=files, data=data, headers=PILOT)
    assert response.status_code == 422, response.text
    assert reason in fields(response)[where], fields(response)
    assert store.list() == [] and list(flights_dir(settings).glob("*")) == []


def test_a_malformed_or_cut_multipart_body_is_422(client, store):
    headers = {**PILOT, "Content-Type": "multipart/form-data; boundary=xyz"}
    garbage = client.post("/api/v1/flights", content=b"--nope\r\n\r\n", headers=headers)
    assert garbage.status_code == 422 and "not a valid multipart body" in fields(garbage)["body"]
    cut = client.post("/api/v1/flights", headers=headers, content=(
        b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="f.mp4"\r\n\r\n' + b"\0" * 100))
    assert cut.status_code == 422 and fields(cut) == {"video": "the body ended inside this part"}
    assert store.list() == []


def test_other_content_types_are_415(client):
    response = client.post("/api/v1/flights", content=b"x", headers={**PILOT, "Content-Type": "video/mp4"})
    assert response.status_code == 415 and "multipart/form-data" in fields(response)["content-type"]


def test_a_declared_oversized_upload_is_413_before_reading_it(client, store, settings):
    response = client.post("/api/v1/flights", content=b"x" * 10, headers={
        **PILOT, "Content-Type": "multipart/form-data; boundary=abc", "Content-Length": str(MAX_UPLOAD + 1)})
    assert response.status_code == 413 and "exceeds the limit of 300000" in fields(response)["body"]
    assert store.list() == []


def test_an_oversized_chunked_upload_is_refused_while_it_streams(app, store, settings):
    """No Content-Length: the server counts the body as it arrives, writes at most the limit to disk, and stops
    reading: the client never gets to send most of the 64 MB."""
    root = flights_dir(settings)
    chunk_bytes, n_chunks = 256 * 1024, 256
    sent: list[int] = []
    largest_on_disk: list[int] = [0]

    def bytes_on_disk() -> int:
        # The server removes a refused upload's folder while we look: a file or folder that vanishes mid-walk
        # holds nothing any more.
        total = 0
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
        return total

    def body():
        boundary = b"--sw-boundary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n' \
                         b"Content-Type: video/mp4\r\n\r\n"
        for i in range(n_chunks):
            largest_on_disk[0] = max(largest_on_disk[0], bytes_on_disk())
            sent.append(i)
            yield b"\0" * chunk_bytes
        yield b"\r\n" + boundary + b"--\r\n"

    with ServerThread(app) as server:
        try:
            response = httpx.post(f"{server.url}/api/v1/flights", content=body(), timeout=30,
                                  headers={**PILOT, "Content-Type": "multipart/form-data; boundary=sw-boundary"})
            assert response.status_code == 413, response.text
            assert "exceeds the limit of 300000 bytes" in response.text
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            pass  # the server answered and closed while the client was still sending: refused all the same
    assert len(sent) < n_chunks // 2, "the server read the whole oversized body"
    assert largest_on_disk[0] <= MAX_UPLOAD
    assert store.list() == [] and list(root.glob("*")) == []


def test_admin_names_a_server_file_under_the_allowed_folders_only(client, store, tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "m1").mkdir(parents=True)
    video = allowed / "m1" / "DJI_0007.MP4"
    video.write_bytes(b"\0" * 100)
    (allowed / "m1" / "DJI_0007.SRT").write_bytes(SRT)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x.mp4").write_bytes(b"x")
    (outside / "x.SRT").write_bytes(SRT)
    (allowed / "link.mp4").symlink_to(outside / "x.mp4")

    response = client.post("/api/v1/flights", json={"path": str(video), "name": "Patrol 7"}, headers=ADMIN)
    assert response.status_code == 202, response.text
    job = store.get(response.json()["id"])
    assert job.input == FlightSource(video=str(video.resolve()), srt=None) and job.name == "Patrol 7"
    assert job.created_by == "root"

    for path, expected in [(str(outside / "x.mp4"), "is not under a folder of settings.flights.allowed_dirs"),
                           (str(allowed / "link.mp4"), "is not under a folder"),
                           (str(allowed / ".." / "secret" / "x.mp4"), "is not under a folder")]:
        refused = client.post("/api/v1/flights", json={"path": path}, headers=ADMIN)
        assert refused.status_code == 403 and expected in refused.json()["detail"], refused.text
    refused = client.post("/api/v1/flights", json={"path": str(video), "srt": str(outside / "x.SRT")}, headers=ADMIN)
    assert refused.status_code == 403 and refused.json()["detail"].startswith("srt: ")
    for body, name, reason in [({"path": "m1/DJI_0007.MP4"}, "path", "absolute server path"),
                                ({"path": str(allowed / "nope.mp4")}, "path", "no such file"),
                                ({"path": str(allowed / "m1" / "DJI_0007.SRT")}, "path", "not a video"),
                                ({"path": str(allowed / "m1"), "srt": str(allowed / "m1" / "DJI_0007.SRT")}, "srt",
                                 "takes no srt"),
                                ({"path": str(video), "colour": "red"}, "colour", "unknown field"),
                                ({}, "path", "Field required")]:
        refused = client.post("/api/v1/flights", json=body, headers=ADMIN)
        assert refused.status_code == 422 and reason in fields(refused)[name], refused.text
    assert client.post("/api/v1/flights", json={"path": str(video)}, headers=PILOT).status_code == 403
    assert len(store.list()) == 1


def test_no_allowed_folders_no_server_paths(tmp_path):
    settings = make_settings(tmp_path, allowed_dirs=[])
    with TestClient(create_app(settings, AppConfig(config_version=1))) as client:
        response = client.post("/api/v1/flights", json={"path": str(tmp_path)}, headers=ADMIN)
    assert response.status_code == 403 and "allowed_dirs is empty" in response.json()["detail"]


def test_extract_stills_keeps_member_names_inside_the_folder(tmp_path):
    archive = tmp_path / "s.zip"
    archive.write_bytes(stills_zip(["../../evil.jpg", "/abs/DJI 0002.JPG", "ok.jpeg"]))
    assert extract_stills(archive, tmp_path / "out", max_bytes=10_000) == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["DJI_0002.JPG", "evil.jpg", "ok.jpeg"]
    assert not (tmp_path.parent / "evil.jpg").exists()
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(stills_zip(["a.jpg"], payload=b"\0" * 50_000))  # compresses to almost nothing
    with pytest.raises(StillsError, match="unpacks to 50000 bytes; the limit is 10000"):
        extract_stills(bomb, tmp_path / "bomb", max_bytes=10_000)


# --- rows, cancel, files ------------------------------------------------------------------------------------

def test_cancel_a_queued_flight_at_once_and_refuse_a_finished_one(client, store):
    queued = store.create("flight-q", input=FlightSource(video="/x.mp4"))
    response = client.post("/api/v1/flights/flight-q/cancel", headers=ADMIN)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/flights/{queued.id}/cancel", headers=ADMIN)
    assert again.status_code == 409 and "only a queued or running flight" in again.json()["detail"]
    missing = client.post("/api/v1/flights/nope/cancel", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["detail"] == "flight_id: no flight 'nope'"


def test_list_is_newest_first_with_a_status_filter(client, store):
    clock = iter(datetime(2026, 6, 1, 8, m, tzinfo=timezone.utc) for m in range(10))
    timed = FlightStore(store._sessions, clock=lambda: next(clock))
    for i in range(3):
        timed.create(f"flight-{i}", input=FlightSource(video="/x.mp4"), created_by="pilot-li")
    timed.request_cancel("flight-1")
    body = client.get("/api/v1/flights", headers=REVIEWER).json()
    assert [f["id"] for f in body["data"]] == ["flight-2", "flight-1", "flight-0"] and body["count"] == 3
    assert [f["id"] for f in client.get("/api/v1/flights?status=queued", headers=REVIEWER).json()["data"]] == [
        "flight-2", "flight-0"]
    assert client.get("/api/v1/flights?status=bogus", headers=REVIEWER).status_code == 422
    assert [f["id"] for f in client.get("/api/v1/flights?limit=1", headers=REVIEWER).json()["data"]] == ["flight-2"]


@pytest.fixture
def finished(store, settings):
    """A done flight with an output folder: a report, findings and a frame; and a file beside the folder."""
    store.create("flight-done", input=FlightSource(video="/x.mp4"), created_by="pilot-li")
    store.claim_next()
    store.finish("flight-done", "done", notes=["SRT covers 0–4 s of 5 s"], findings=3, case_ids=[7, 9])
    out = flights_dir(settings) / "flight-done" / "out"
    (out / "frames").mkdir(parents=True)
    (out / "report.html").write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
                                     '<body><img src="frames/000010.jpg"></body></html>', encoding="utf-8")
    (out / "findings.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (out / "frames" / "000010.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    (out / "frames" / "notes.txt").write_text("not served")
    (out.parent / "input").mkdir()
    (out.parent / "input" / "flight.mp4").write_bytes(b"video")
    return "flight-done"


def test_flight_detail_report_and_files(client, finished):
    body = client.get(f"/api/v1/flights/{finished}", headers=REVIEWER).json()
    assert (body["status"], body["progress"]["percent"], body["progress"]["stage"], body["notes"], body["cases"],
            body["case_ids"], body["attempts"]) == ("done", 100.0, "done", ["SRT covers 0–4 s of 5 s"], 2, [7, 9], 1)
    report = client.get(f"/api/v1/flights/{finished}/report", headers=REVIEWER)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert f'<head><base href="/api/v1/flights/{finished}/files/"><meta' in report.text
    assert "script-src 'unsafe-inline'" in report.headers["content-security-policy"]
    image = client.get(f"/api/v1/flights/{finished}/files/frames/000010.jpg", headers=REVIEWER)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    geojson = client.get(f"/api/v1/flights/{finished}/findings.geojson", headers=REVIEWER)
    assert geojson.json()["type"] == "FeatureCollection"
    for path in ("frames/notes.txt", "frames", "nope.jpg", "..%2Finput%2Fflight.mp4", "%2Fetc%2Fpasswd",
                 "frames%2F..%2F..%2Finput%2Fflight.mp4"):
        refused = client.get(f"/api/v1/flights/{finished}/files/{path}", headers=REVIEWER)
        assert refused.status_code == 404, (path, refused.text)


@pytest.mark.parametrize("relative, ok", [
    ("report.html", True), ("frames/000010.jpg", True), ("../input/flight.mp4", False), ("/etc/passwd", False),
    ("frames/../../input/flight.mp4", False), ("frames//000010.jpg", True), ("frames\\000010.jpg", False),
    ("", False), ("frames", False), ("link.jpg", False),
])
def test_flight_file_stays_inside_the_output_folder(finished, settings, relative, ok):
    out = flights_dir(settings) / finished / "out"
    (out / "link.jpg").symlink_to(out.parent / "input" / "flight.mp4")  # a link leading out of the folder
    assert (flight_file(out, relative) is not None) is ok


def test_queued_flight_has_no_report_yet(client, store):
    store.create("flight-q", input=FlightSource(video="/x.mp4"))
    response = client.get("/api/v1/flights/flight-q/report", headers=REVIEWER)
    assert response.status_code == 404 and response.json()["detail"] == "flight flight-q: no report yet (status queued)"


def test_a_report_link_opens_the_report_without_a_key_until_it_expires(client, finished, app):
    link = client.post(f"/api/v1/flights/{finished}/report-link", headers=REVIEWER)
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url.startswith(f"/api/v1/flights/{finished}/shared/") and url.endswith("/report.html")
    page = client.get(url)
    assert page.status_code == 200 and '<img src="frames/000010.jpg">' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get(url.replace("report.html", "frames/000010.jpg")).status_code == 200
    assert client.get(url.replace("report.html", "..%2Finput%2Fflight.mp4")).status_code == 404
    token = url.split("/")[-2]
    assert client.get(f"/api/v1/flights/flight-other/shared/{token}/report.html").status_code == 404
    assert client.get(url.replace(token, token[:-1] + ("0" if token[-1] != "0" else "1"))).status_code == 404
    services = app.state.services
    services.report_links = ReportLinks(ttl_s=60, secret=b"s" * 32, clock=lambda: 1_000.0)
    old = services.report_links.token(finished)
    services.report_links = ReportLinks(ttl_s=60, secret=b"s" * 32, clock=lambda: 2_000.0)
    assert client.get(f"/api/v1/flights/{finished}/shared/{old}/report.html").status_code == 404


def test_me_names_the_key_and_its_role(client):
    assert client.get("/api/v1/me", headers=PILOT).json() == {"name": "pilot-li", "role": "pilot"}
    assert client.get("/api/v1/me", headers=ADMIN).json() == {"name": "root", "role": "admin"}


def test_metrics_count_flights_and_show_the_running_ones_progress(client, store):
    for i in range(3):
        store.create(f"flight-{i}", input=FlightSource(video="/x.mp4"))
    store.request_cancel("flight-2")
    job = store.claim_next()
    store.write_progress(job.id, FlightProgress("detect", 40, 10, 3, 12.0, 30.0))
    text_ = client.get("/metrics").text
    assert 'streetwatch_flights{status="queued"} 1' in text_ and 'streetwatch_flights{status="running"} 1' in text_
    assert 'streetwatch_flights{status="cancelled"} 1' in text_
    assert 'streetwatch_flight_progress_ratio{flight_id="flight-0"} 0.2375' in text_
    assert 'streetwatch_flight_frames_done{flight_id="flight-0"} 10' in text_
    assert 'streetwatch_flight_frames_total{flight_id="flight-0"} 40' in text_
    assert 'streetwatch_flight_eta_seconds{flight_id="flight-0"} 30' in text_


# --- the job worker -------------------------------------------------------------------------------------------

@dataclass
class FakeResult:
    out_dir: Path
    findings: list
    summary: dict


@dataclass
class FakeRunner:
    """Stands in for `run_flight`: reports `frames` detect steps (calling `during(i)` before each), then done."""

    frames: int = 4
    during: Any = None
    error: BaseException | None = None
    calls: list = field(default_factory=list)

    def __call__(self, inp, config, out_dir, *, flight_id, name, progress, cancel, threads):
        self.calls.append({"input": inp, "out_dir": out_dir, "flight_id": flight_id, "threads": threads})
        progress(FlightProgress("telemetry", 0, 0, 0, 0.0, None))
        for i in range(self.frames):
            if cancel.is_set():
                raise FlightCancelled(f"flight {flight_id}: cancelled")
            if self.during is not None:
                self.during(i)
            if self.error is not None and i == 1:
                raise self.error
            progress(FlightProgress("detect", self.frames, i + 1, i, 1.0 + i, float(self.frames - i - 1)))
        out_dir.mkdir(parents=True, exist_ok=True)
        progress(FlightProgress("done", self.frames, self.frames, 2, 9.0, 0.0))
        return FakeResult(out_dir, ["f1", "f2"], {"notes": ["SRT covers 0–4 s of 5 s"]})


@dataclass
class Recorder:
    calls: list = field(default_factory=list)
    result: Any = None

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.result


@pytest.fixture
def flight_video(tmp_path) -> FlightSource:
    video = tmp_path / "in" / "f.mp4"
    video.parent.mkdir()
    video.write_bytes(b"\0" * 10)
    (tmp_path / "in" / "f.SRT").write_bytes(SRT)
    return FlightSource(video=str(video))


def make_worker(store, tmp_path, runner, **kwargs) -> tuple[FlightWorker, Recorder, Recorder]:
    ingest, report = Recorder(result=[11, 12]), Recorder()
    worker = FlightWorker(store, cases=object(), config=lambda: AppConfig(config_version=1),
                          flights_dir=tmp_path / "flights", runner=runner, ingest=ingest, report=report,
                          progress_interval_s=kwargs.pop("progress_interval_s", 0.0), threads=2, **kwargs)
    return worker, ingest, report


def test_worker_runs_the_oldest_queued_flight_writes_progress_then_cases(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video, name="A", created_by="pilot-li")
    store.create("flight-b", input=flight_video, name="B")
    seen = []
    runner = FakeRunner(during=lambda i: seen.append(store.get("flight-a")))
    worker, ingest, report = make_worker(store, tmp_path, runner)
    assert worker.run_once() == "flight-a"
    # while it ran: running, started, its progress in the row frame after frame
    assert [(j.status, j.stage, j.frames_done, j.frames_total) for j in seen] == [
        ("running", "telemetry", 0, None), ("running", "detect", 1, 4), ("running", "detect", 2, 4),
        ("running", "detect", 3, 4)]
    assert seen[2].progress == pytest.approx(0.95 * 2 / 4) and seen[2].eta_s == 2.0 and seen[2].findings == 1
    assert seen[0].started_at is not None and seen[0].attempts == 1
    call = runner.calls[0]
    assert (call["flight_id"], call["threads"]) == ("flight-a", 2)
    assert call["out_dir"] == tmp_path / "flights" / "flight-a" / "out"
    video = Path(flight_video.video)
    assert (call["input"].video, call["input"].srt) == (video, video.with_suffix(".SRT"))  # found beside it
    (ingest_args, ingest_kwargs), = ingest.calls
    assert ingest_args[1].findings == ["f1", "f2"] and ingest_kwargs == {"name": "A", "source": flight_video.video}
    assert report.calls == [((tmp_path / "flights" / "flight-a" / "out",), {"case_url": "/review?case={case_id}"})]
    done = store.get("flight-a")
    assert (done.status, done.stage, done.progress, done.findings, done.case_ids, done.notes, done.error) == (
        "done", "done", 1.0, 2, (11, 12), ("SRT covers 0–4 s of 5 s",), None)
    assert done.ended_at is not None and done.eta_s is None
    assert store.get("flight-b").status == "queued"
    assert worker.run_once() == "flight-b" and worker.run_once() is None and worker.state.runs == 2


def test_progress_is_written_at_most_once_per_interval_and_at_each_stage(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    writes = []
    real = store.write_progress
    store.write_progress = lambda flight_id, p: writes.append(p.stage) or real(flight_id, p)
    worker, _, _ = make_worker(store, tmp_path, FakeRunner(frames=50), progress_interval_s=3600.0)
    worker.run_once()
    assert writes == ["telemetry", "detect", "done"]


def test_cancel_asked_through_the_row_stops_the_job_without_cases(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    # the cancel comes from the API (maybe another process): only the row says so; the next progress write sees it
    runner = FakeRunner(frames=10, during=lambda i: i == 2 and store.request_cancel("flight-a"))
    worker, ingest, report = make_worker(store, tmp_path, runner)
    worker.run_once()
    job = store.get("flight-a")
    assert (job.status, job.cancel_requested, job.frames_done) == ("cancelled", True, 3)
    assert ingest.calls == [] and report.calls == [] and job.ended_at is not None


def test_cancel_through_the_worker_interrupts_at_once(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    holder: dict = {}

    def during(i: int) -> None:
        if i == 1:
            store.request_cancel("flight-a")
            assert holder["worker"].cancel("flight-a") and not holder["worker"].cancel("flight-other")

    worker, ingest, _ = make_worker(store, tmp_path, FakeRunner(frames=10, during=during),
                                    progress_interval_s=3600.0)
    holder["worker"] = worker
    worker.run_once()
    assert store.get("flight-a").status == "cancelled" and ingest.calls == []


@pytest.mark.parametrize("error, message", [
    (FlightInputError("flight.SRT: no telemetry line in the file"), "flight.SRT: no telemetry line in the file"),
    (RuntimeError("boom\nsecond line"), "internal error: RuntimeError: boom second line"),
])
def test_a_failing_flight_is_failed_with_one_line_and_the_worker_goes_on(store, tmp_path, flight_video, error,
                                                                          message):
    store.create("flight-a", input=flight_video)
    store.create("flight-b", input=flight_video)
    runner = FakeRunner(frames=3)
    worker, ingest, _ = make_worker(store, tmp_path, runner)
    runner.error = error
    worker.run_once()
    runner.error = None
    worker.run_once()
    failed = store.get("flight-a")
    assert (failed.status, failed.error) == ("failed", message) and "\n" not in failed.error
    assert store.get("flight-b").status == "done" and len(ingest.calls) == 1


def test_missing_input_files_fail_the_flight_with_the_reason(store, tmp_path):
    store.create("flight-a", input=FlightSource(video=str(tmp_path / "gone.mp4")))
    worker, _, _ = make_worker(store, tmp_path, FakeRunner())
    worker.run_once()
    job = store.get("flight-a")
    assert job.status == "failed" and job.error == f"{tmp_path / 'gone.mp4'}: no such file or folder"


def test_restart_requeues_what_a_killed_service_left_running(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    store.create("flight-b", input=flight_video)
    for job_id in ("flight-a", "flight-b"):  # a service claimed both, wrote progress, then was killed (kill -9)
        store.claim_next()
        store.write_progress(job_id, FlightProgress("detect", 4, 2, 1, 3.0, 5.0))
    store.request_cancel("flight-b")  # cancel asked for just before the kill
    worker, ingest, _ = make_worker(store, tmp_path, FakeRunner(), poll_s=0.05)
    worker.start()
    try:
        assert worker.state.requeued_at_start == ["flight-a"]
        assert store.get("flight-b").status == "cancelled"
        deadline = time.monotonic() + 10
        while store.get("flight-a").status != "done":
            assert time.monotonic() < deadline, store.get("flight-a")
            time.sleep(0.02)
    finally:
        worker.stop()
    job = store.get("flight-a")
    assert job.attempts == 2 and job.progress == 1.0 and len(ingest.calls) == 1


def test_shutdown_in_the_middle_queues_the_flight_again(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    inside = threading.Event()
    release = threading.Event()

    def during(i: int) -> None:
        inside.set()
        release.wait(5)

    worker, ingest, _ = make_worker(store, tmp_path, FakeRunner(frames=10, during=during), poll_s=0.05)
    worker.start()
    assert inside.wait(10)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    time.sleep(0.1)
    release.set()
    stopper.join(10)
    assert not worker.alive
    job = store.get("flight-a")
    assert (job.status, job.frames_done, job.started_at) == ("queued", 0, None) and ingest.calls == []


def test_a_report_that_cannot_be_rewritten_is_a_note_not_a_failure(store, tmp_path, flight_video):
    store.create("flight-a", input=flight_video)
    worker, _, _ = make_worker(store, tmp_path, FakeRunner())
    worker._report = lambda out_dir, case_url: (_ for _ in ()).throw(OSError("disk full"))
    worker.run_once()
    job = store.get("flight-a")
    assert job.status == "done" and job.notes[-1] == "report not rewritten with case links: OSError: disk full"


def test_store_life_of_a_flight_on_each_backend(db_settings):
    """The rows' life on SQLite and PostgreSQL (claim uses FOR UPDATE SKIP LOCKED there)."""
    engine = make_engine(db_settings)
    try:
        upgrade_schema(engine)
        store = FlightStore(make_session_factory(engine))
        for name in ("a", "b"):
            store.create(f"flight-{name}", input=FlightSource(stills="/s"), name=name, created_by="pilot-li")
        claimed = store.claim_next()
        assert (claimed.id, claimed.status, claimed.attempts) == ("flight-a", "running", 1)
        assert not store.write_progress("flight-a", FlightProgress("detect", 8, 2, 1, 1.0, 3.0))
        assert store.requeue_interrupted() == ["flight-a"]
        assert [(j.id, j.status, j.frames_done) for j in store.list()] == [("flight-b", "queued", 0),
                                                                           ("flight-a", "queued", 0)]
        assert store.claim_next().id == "flight-a" and store.claim_next().id == "flight-b"
        assert store.claim_next() is None
        assert store.request_cancel("flight-b").cancel_requested
        assert store.write_progress("flight-b", FlightProgress("detect", 8, 3, 1, 1.0, 3.0))  # the worker learns
        store.finish("flight-b", "cancelled")
        done = store.finish("flight-a", "done", notes=["n"], findings=2, case_ids=[3])
        assert (done.progress, done.case_ids, done.notes) == (1.0, (3,), ("n",))
        assert store.counts_by_status() == {"queued": 0, "running": 0, "done": 1, "failed": 0, "cancelled": 1}
        assert [j.id for j in store.list(status="done", created_by="pilot-li")] == ["flight-a"]
    finally:
        engine.dispose()


def test_new_flight_ids_are_valid_ids_and_unique():
    import re

    from service.config import ID_PATTERN

    ids = {new_flight_id() for _ in range(200)}
    assert len(ids) == 200 and all(re.match(ID_PATTERN, i) for i in ids)


def test_store_refuses_a_duplicate_id_and_unknown_finishes(store):
    store.create("flight-a", input=FlightSource(video="/x.mp4"))
    with pytest.raises(FlightStateError, match="exists already"):
        store.create("flight-a", input=FlightSource(video="/x.mp4"))
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish("flight-a", "running")
    with pytest.raises(ValueError, match="a video or a stills folder"):
        FlightSource(video="/x.mp4", stills="/s")
    assert issubclass(FlightStateError, StreetwatchError)


# --- migration 0004 -----------------------------------------------------------------------------------------

def test_migration_0004_adds_the_job_columns_and_keeps_existing_flights(tmp_path):
    from service.db.session import run_migrations

    engine = make_engine(DatabaseSettings(path=tmp_path / "m.db"))
    upgrade_schema(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO flights (id, name, source, status, address, grid_code, timezone, frames_done, "
                          "created_at, updated_at) VALUES ('f-old', 'Old', '/d/f.mp4', 'done', '', '', 'UTC', 0, "
                          "'2026-06-01 08:00:00', '2026-06-01 08:00:00')"))
    upgrade_schema(engine)
    job = FlightStore(make_session_factory(engine)).get("f-old")
    assert (job.status, job.progress, job.cancel_requested, job.attempts, job.input, job.created_by, job.notes) == (
        "done", 1.0, False, 0, None, None, ())
    run_migrations(engine, "downgrade", "0003")
    with engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(flights)"))}
        assert "created_by" not in columns and "progress" not in columns
        assert conn.execute(text("SELECT id FROM flights")).scalars().all() == ["f-old"]
    engine.dispose()
