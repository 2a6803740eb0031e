"""A drone flight through `streetwatch serve` as its own process, killed with SIGKILL in the middle of the job.

A pilot uploads a short generated flight (video + DJI SRT, `tests.flights`) to a real ``serve`` subprocess; while
the job runs, the process is killed with ``kill -9`` (nothing is cleaned up: the row says ``running``). A new
``serve`` on the same data folder puts the flight back in the queue and runs it from scratch to ``done``; its
violations are candidate cases with lat/long, grid code and the flight id, each once. Then the service is killed
again and the row set back to ``running``, as a kill during the cases step would leave it: the third run makes
no case twice either (`ingest_flight` is idempotent: violation ids are deterministic). Finally a reviewer's
confirmation of a flight case reaches the city's Open311 server (a separate process) with the case's lat/long.

The flight is sampled densely (95 % footprint overlap) so the job lasts several seconds on one inference thread
and the kill lands inside it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.flights import VIDEO_SPEC, copy_flight, shared_flight
from tests.service.test_cli_serve import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
PILOT_KEY = "pilot-key-li-0123456789abc"
ADMIN_KEY = "admin-key-0123456789abcdef"
PILOT = {"Authorization": f"Bearer {PILOT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


CITY_API_KEY = "city-key-0123456789"


def write_settings(tmp_path: Path, config: Path, city_port: int | None = None) -> Path:
    outbox = {"deliver": False} if city_port is None else {
        "open311": {"endpoint": f"http://127.0.0.1:{city_port}", "api_key": CITY_API_KEY, "timeout_s": 2,
                    "service_codes": {"0504": "street-vending", "0506": "bike-parking", "0101": "illegal-building"}},
        "base_backoff_s": 1, "max_backoff_s": 3, "lease_s": 5, "poll_s": 0.5}
    settings = {
        "database_path": str(tmp_path / "data" / "cases.sqlite3"),
        "evidence_dir": str(tmp_path / "data" / "evidence"),
        "config_path": str(config),
        "run_cameras": False,
        "outbox": outbox,
        # evidence links the city opens are absolute (serve refuses an Open311 outbox without one)
        "public_base_url": "http://streetwatch.test",
        "review": {"undo_window_s": 0},  # delivered at once: the undo window would hold it for 10 minutes
        "flights": {"intra_op_threads": 1, "progress_interval_s": 0.2, "poll_s": 0.2},
        "api_keys": [{"name": "root", "role": "admin", "key": ADMIN_KEY},
                     {"name": "pilot-li", "role": "pilot", "key": PILOT_KEY}],
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


class Serve:
    """`streetwatch serve --settings` in a subprocess, its output in a log file."""

    def __init__(self, settings: Path, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--settings", str(settings), "--host", "127.0.0.1",
                 "--port", str(self.port)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "YOLO_OFFLINE": "1"})
        wait_for("the service to answer", lambda: httpx.get(f"{self.base}/health", timeout=5).status_code == 200,
                 90, log)
        self.api = httpx.Client(base_url=self.base, timeout=30)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no shutdown: the flight row stays "running"
        self.proc.wait(timeout=30)
        self.api.close()

    def flight(self, flight_id: str) -> dict:
        return self.api.get(f"/api/v1/flights/{flight_id}", headers=ADMIN).json()


def flight_cases(serve: Serve, flight_id: str) -> list[dict]:
    body = serve.api.get("/api/v1/cases", params={"flight_id": flight_id, "limit": 500}, headers=ADMIN).json()
    return body["data"]


@pytest.mark.timeout(420)
def test_a_flight_killed_mid_job_restarts_and_makes_each_case_once(tmp_path, tmp_path_factory):
    flight = copy_flight(shared_flight(VIDEO_SPEC, tmp_path_factory), tmp_path / "flight")
    config = yaml.safe_load(flight.config.read_text(encoding="utf-8"))
    config["drone"]["sampling"] = {"overlap_frac": 0.95, "min_interval_s": 0.1}  # a job of several seconds
    flight.config.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = write_settings(tmp_path, flight.config)
    log = tmp_path / "serve.log"

    serve = Serve(settings, log)
    try:
        with open(flight.video, "rb") as video, open(flight.srt, "rb") as srt:
            submitted = serve.api.post("/api/v1/flights", headers=PILOT, data={"name": "Futian patrol"},
                                       files={"video": (flight.video.name, video), "srt": (flight.srt.name, srt)})
        assert submitted.status_code == 202, submitted.text
        flight_id = submitted.json()["id"]
        mid = wait_for("the flight job to be inside detection", lambda: (
            (f := serve.flight(flight_id))["status"] == "running" and f["progress"]["frames_done"] >= 2 and f), 120,
            log)
        serve.kill9()
    finally:
        if serve.proc.poll() is None:
            serve.kill9()
    assert mid["progress"]["frames_done"] < mid["progress"]["frames_total"], mid  # killed inside the job
    with sqlite3.connect(tmp_path / "data" / "cases.sqlite3") as db:
        assert db.execute("SELECT status, attempts FROM flights WHERE id = ?", (flight_id,)).fetchone() == (
            "running", 1)
        assert db.execute("SELECT count(*) FROM cases").fetchone() == (0,)

    # a new service on the same data: the flight runs again from the start and ends done, with its cases
    serve = Serve(settings, log)
    try:
        done = wait_for("the restarted flight to finish", lambda: (
            (f := serve.flight(flight_id))["status"] in ("done", "failed") and f), 180, log)
        assert done["status"] == "done", done
        assert done["attempts"] == 2 and done["progress"]["percent"] == 100.0 and done["error"] is None
        cases = flight_cases(serve, flight_id)
        assert cases and done["cases"] == len(cases) and sorted(done["case_ids"]) == sorted(c["id"] for c in cases)
        for case in cases:
            assert case["flight_id"] == flight_id and case["camera_id"] is None
            assert case["lat_deg"] is not None and case["grid_code"], case
            assert case["evidence"], case
        findings = serve.api.get(f"/api/v1/flights/{flight_id}/findings.geojson", headers=ADMIN).json()
        violations = {f"{flight_id}:{p['violation_id']}" for p in (f["properties"] for f in findings["features"])
                      if p["role"] == "point" and p["violation_id"]}
        assert sorted(c["violation_id"] for c in cases) == sorted(violations)  # one case per violation
        assert all(p["case_id"] in done["case_ids"] for p in (f["properties"] for f in findings["features"])
                   if p["violation_id"])
        evidence = cases[0]["evidence"][0]  # kept in the flight's output folder, served like camera evidence
        image = serve.api.get(f"/api/v1/cases/{cases[0]['id']}/evidence/{evidence['id']}", headers=ADMIN)
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8", image.text[:200]
        report = serve.api.get(f"/api/v1/flights/{flight_id}/report", headers=ADMIN)
        assert report.status_code == 200 and f"/review?case={cases[0]['id']}" in report.text
        metrics = serve.api.get("/metrics").text
        assert 'streetwatch_flights{status="done"} 1' in metrics
        serve.kill9()
    finally:
        if serve.proc.poll() is None:
            serve.kill9()

    # killed again while making the cases (the row still says running): the next run makes none twice; this
    # time the outbox delivers to the city's Open311 server
    with sqlite3.connect(tmp_path / "data" / "cases.sqlite3") as db:
        db.execute("UPDATE flights SET status = 'running' WHERE id = ?", (flight_id,))
    city_port = free_port()
    record = tmp_path / "city-requests.json"
    city = subprocess.Popen([sys.executable, str(REPO / "tests" / "georeport_server.py"), "--port", str(city_port),
                             "--api-key", CITY_API_KEY, "--record", str(record)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    settings = write_settings(tmp_path, flight.config, city_port)
    serve = Serve(settings, log)
    try:
        again = wait_for("the third run to finish", lambda: (
            (f := serve.flight(flight_id))["status"] in ("done", "failed") and f["attempts"] == 3 and f), 180, log)
        assert again["status"] == "done", again
        after = flight_cases(serve, flight_id)
        assert sorted((c["id"], c["violation_id"]) for c in after) == sorted((c["id"], c["violation_id"])
                                                                            for c in cases)
        assert serve.api.get("/api/v1/cases", params={"limit": 500}, headers=ADMIN).json()["count"] == len(cases)

        # a reviewer confirms one flight case: the outbox posts it to the city with its lat/long
        case = after[0]
        confirmed = serve.api.post(f"/api/v1/cases/{case['id']}/confirm", headers=ADMIN)
        assert confirmed.status_code == 200, confirmed.text
        key = f"streetwatch-{case['id']}-open311"
        posted = wait_for("the city to receive the flight case", lambda: (
            record.is_file() and json.loads(record.read_text())["records"].get(key)), 60, log)
        fields = posted["fields"]
        assert float(fields["lat"][0] if isinstance(fields["lat"], list) else fields["lat"]) == pytest.approx(
            case["lat_deg"], abs=1e-6)
        assert float(fields["long"][0] if isinstance(fields["long"], list) else fields["long"]) == pytest.approx(
            case["lon_deg"], abs=1e-6)
        assert wait_for("the case to be posted", lambda: (
            serve.api.get(f"/api/v1/cases/{case['id']}", headers=ADMIN).json()["status"] == "posted"), 30, log)
    finally:
        serve.kill9()
        city.terminate()
        city.wait(timeout=10)
