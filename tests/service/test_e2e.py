"""End to end with real parts: a rendered scenario clip served over real RTSP (GStreamer) → `streetwatch serve`
(its own process, the shipped street model, a SQLite file) → a candidate case → confirmed through the HTTP
API → the Open311 GeoReport v2 test server (its own process).

One run goes through the failures a city meets: the case system is down when the case is confirmed, the
service is killed with SIGKILL while the delivery is still owed, it restarts, the case system comes back.
Nothing may be lost and nothing posted twice (the GeoReport server counts by idempotency key), and the
restarted pipeline must fold the stall, still standing there, into the same case instead of opening another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from datasets.synth.scenario import render_scenario
from tests.rtsp_server import free_port, make_long_file, port_accepts, rtsp_server_fixture  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
REVIEWER_KEY = "e2e-reviewer-key-0123456789"
ADMIN_KEY = "e2e-admin-key-0123456789abc"
CITY_API_KEY = "city-key-42"


@pytest.fixture(scope="module")
def stall_clip(tmp_path_factory) -> tuple[Path, dict]:
    """The ``stall_2min`` scenario (stall from 10 s, 30 s dwell) as H.264, played four times in a row."""
    out = tmp_path_factory.mktemp("clip")
    clip = render_scenario("stall_2min", out, fps=5.0)
    if clip.codec != "h264":
        pytest.fail("ffmpeg is needed to transcode scenario clips to H.264 (scripts/install_system_deps.sh)")
    return make_long_file(clip.video_path, out / "stall_2min_x4.mp4", repeats=4), clip.timeline


class Process:
    """A child process with its output in a log file (shown when a test fails)."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.args, self.log_path = args, log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self.env)
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-n:])


def wait_for(what: str, predicate, timeout_s: float, *logs: Process, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n" +
                "\n".join(f"--- {p.log_path.name}\n{p.tail()}" for p in logs))


def test_rtsp_camera_to_open311_through_outage_and_kill9(tmp_path, stall_clip, rtsp_server):
    video, timeline = stall_clip
    camera_server = rtsp_server(video)
    city_port, api_port = free_port(), free_port()
    zones = [{"id": z["id"], "kind": z["kind"], "polygon": z["polygon_norm"],
              **({"schedule": [{k: z["schedule"][k] for k in ("days", "start", "end")}]} if z.get("schedule") else {})}
             for z in timeline["zones"]]
    config = {
        "config_version": 1,
        "model": {"name": "street", "conf": 0.1},
        "rules": {"stall_occupation": {"min_dwell_s": 30, "cooldown_s": 1800}},
        "cameras": [{"id": "gate-7", "name": "Gate 7", "source": camera_server.url, "timezone": "UTC",
                     "sample_fps": 1, "position": {"lat_deg": 31.2304, "lon_deg": 121.4737},
                     "address": "88 Nanjing Rd", "grid_code": "310101-001", "zones": zones}],
    }
    settings = {
        "database_path": str(tmp_path / "cases.sqlite3"), "evidence_dir": str(tmp_path / "evidence"),
        "config_path": str(tmp_path / "config.yaml"), "public_base_url": f"http://127.0.0.1:{api_port}",
        "review": {"undo_window_s": 0},  # delivered at once: the undo window would hold it for 10 minutes
        "api_keys": [{"name": "reviewer-wang", "role": "reviewer", "key": REVIEWER_KEY},
                     {"name": "root", "role": "admin", "key": ADMIN_KEY}],
        "outbox": {"open311": {"endpoint": f"http://127.0.0.1:{city_port}", "api_key": CITY_API_KEY,
                               "service_codes": {"0504": "street-vending"}, "timeout_s": 2},
                   "base_backoff_s": 1, "max_backoff_s": 3, "lease_s": 5, "reconcile_after_s": 3, "poll_s": 0.5},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True))
    serve_args = [sys.executable, "-m", "service.cli", "serve", "--settings", str(tmp_path / "settings.yaml"),
                  "--host", "127.0.0.1", "--port", str(api_port)]
    service = Process(serve_args, tmp_path / "service.log", {"YOLO_OFFLINE": "1"})
    record = tmp_path / "city-requests.json"
    city = Process([sys.executable, str(REPO / "tests" / "georeport_server.py"), "--port", str(city_port),
                    "--api-key", CITY_API_KEY, "--record", str(record)], tmp_path / "city.log")
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10,
                       headers={"Authorization": f"Bearer {REVIEWER_KEY}"})

    def get(path: str, **params):
        try:
            response = api.get(path, params=params)
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def cases() -> list[dict]:
        page = get("/api/v1/cases", limit=100)
        return [] if page is None else page["data"]

    try:
        # 1. The camera's stall becomes a pending case while the case system is down.
        service.start()
        wait_for("the service to answer", lambda: get("/health"), 60, service)
        started = time.monotonic()
        pending = wait_for("a pending stall case", lambda: [c for c in cases() if c["status"] == "pending"], 180,
                           service)
        assert len(pending) == 1, pending
        case = pending[0]
        assert (case["kind"], case["zone_id"], case["camera_id"], case["category_code"]) == (
            "stall_occupation", "no_vending_1", "gate-7", "0504")
        assert (case["lat_deg"], case["lon_deg"], case["address"]) == (31.2304, 121.4737, "88 Nanjing Rd")
        # Due 30 s after the stall appears (10 s into the clip); sampling, confirmation and polling add a little.
        assert time.monotonic() - started < 40 + 10 + 30
        detail = get(f"/api/v1/cases/{case['id']}")
        kinds = {e["kind"] for e in detail["evidence"]}
        assert {"annotated", "original", "crop"} <= kinds
        evidence = api.get(f"/api/v1/cases/{case['id']}/evidence/{detail['evidence'][0]['id']}")
        assert evidence.status_code == 200 and evidence.content[:2] == b"\xff\xd8"
        camera = get("/api/v1/cameras/gate-7")
        assert camera["health"]["state"] == "streaming", camera["health"]

        # 2. A reviewer confirms it; delivery fails while the case system is down.
        confirmed = api.post(f"/api/v1/cases/{case['id']}/confirm")
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"

        def failed_attempts() -> int:
            metrics = httpx.get(f"http://127.0.0.1:{api_port}/metrics").text
            return int(sum(float(line.split()[-1]) for line in metrics.splitlines()
                           if line.startswith('streetwatch_outbox_deliveries_total{adapter="open311",outcome="retry"}')))

        wait_for("two failed deliveries", lambda: failed_attempts() >= 2, 30, service)
        assert get(f"/api/v1/cases/{case['id']}")["status"] == "confirmed"

        # 3. SIGKILL mid-run, with the delivery still owed; restart.
        service.kill9()
        service.start()
        wait_for("the restarted service to answer", lambda: get("/health"), 60, service)
        assert [c["id"] for c in cases()] == [case["id"]]

        # 4. The case system comes back: the confirmed case arrives once.
        city.start()
        wait_for("the case to be posted", lambda: get(f"/api/v1/cases/{case['id']}")["status"] == "posted", 60,
                 service, city)
        received = json.loads(record.read_text())["records"]
        assert list(received) == [f"streetwatch-{case['id']}-open311"]
        (entry,) = received.values()
        assert (entry["created"], entry["received"]) == (1, 1)  # posted once: no resend reached the city either
        fields = entry["fields"]
        assert fields["service_code"] == "street-vending" and fields["api_key"] == CITY_API_KEY
        assert (float(fields["lat"]), float(fields["long"])) == pytest.approx((31.2304, 121.4737))
        # a signed link the city opens without a key
        assert fields["media_url"].startswith(f"http://127.0.0.1:{api_port}/evidence/{case['id']}/")
        opened = httpx.get(fields["media_url"], timeout=10)
        assert opened.status_code == 200 and opened.content[:2] == b"\xff\xd8"

        # 5. The restarted pipeline sees the stall again and folds it into the same (posted) case.
        def reattached() -> bool:
            trail = get(f"/api/v1/cases/{case['id']}/audit")
            return bool(trail) and any(a["action"] == "dedupe_attach" for a in trail["data"])

        wait_for("the stall, seen again after the restart, to join its case", reattached, 150, service)
        assert [c["id"] for c in cases()] == [case["id"]]
        final = get(f"/api/v1/cases/{case['id']}")
        assert final["status"] == "posted" and final["last_seen"] > case["last_seen"]
        time.sleep(3)  # anything wrongly queued again would be sent within the back-off
        final_entry = json.loads(record.read_text())["records"][f"streetwatch-{case['id']}-open311"]
        assert (final_entry["created"], final_entry["received"]) == (1, 1)
    finally:
        api.close()
        service.stop()
        city.stop()
