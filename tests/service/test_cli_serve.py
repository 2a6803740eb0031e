"""`streetwatch serve` as its own process: ``--config`` alone (defaults for the rest: SQLite, evidence and keys in
a data folder), and camera workers that fail without stopping the others.

One serve process runs three cameras: ``good`` (frames pushed over HTTP, the shipped street model), ``no-model``
(its model does not exist: the worker fails at every start and restarts with a back-off) and ``dead-stream``
(an RTSP address nobody listens on). The good camera must keep analysing frames, the API must keep answering
and accepting edits, and health and /metrics must say which camera fails and why.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml

from service.cli import main

REPO = Path(__file__).resolve().parents[2]
TRIANGLE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def write_config(path: Path, dead_port: int) -> Path:
    zone = {"id": "z1", "kind": "no_vending", "polygon": TRIANGLE}
    config = {
        "config_version": 1,
        "model": {"name": "street"},
        "cameras": [
            {"id": "good", "source": "push", "sample_fps": 2, "timezone": "UTC", "zones": [zone]},
            {"id": "no-model", "source": "push", "sample_fps": 2, "timezone": "UTC", "zones": [zone],
             "model": {"name": "no-such-model"}},
            {"id": "dead-stream", "source": f"rtsp://127.0.0.1:{dead_port}/nothing", "sample_fps": 1,
             "timezone": "UTC", "zones": [zone]},
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def wait_for(what: str, predicate, timeout_s: float, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n--- serve log\n{tail}")


@pytest.mark.timeout(300)
def test_serve_config_only_one_failing_camera_never_stops_the_others(tmp_path):
    port = free_port()
    config_path = write_config(tmp_path / "config.yaml", dead_port=free_port())
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(config_path),
                                 "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "YOLO_OFFLINE": "1", "XDG_DATA_HOME": str(tmp_path / "xdg")})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the service to answer", lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200, 90,
                 log)
        keys_path = data_dir / "keys.json"
        assert keys_path.stat().st_mode & 0o077 == 0  # the plain keys: owner only
        keys = json.loads(keys_path.read_text(encoding="utf-8"))
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        reviewer = {"Authorization": f"Bearer {keys['reviewer']}"}
        api = httpx.Client(base_url=base, timeout=10)
        assert api.get("/api/v1/cases").status_code == 401
        assert api.get("/api/v1/cases", headers=reviewer).json()["data"] == []
        assert (data_dir / "cases.sqlite3").is_file()
        assert not (tmp_path / "xdg").exists()  # --data-dir, not the default folder

        def camera(camera_id: str) -> dict:
            return api.get(f"/api/v1/cameras/{camera_id}", headers=reviewer).json()

        # the broken camera fails at once and keeps failing (restarted with a back-off), naming its model
        broken = wait_for("the camera without a model to fail",
                          lambda: (c := camera("no-model"))["health"]["worker"] == "restarting" and c, 90, log)
        assert "no-such-model" in broken["health"]["last_error"], broken["health"]

        # the good camera analyses pushed frames meanwhile (one at a time: a live camera that falls behind
        # drops its oldest frame, which is not what this test is about)
        t0 = datetime.now(timezone.utc) - timedelta(seconds=30)
        for i in range(4):
            pushed = api.post("/api/v1/cameras/good/frames", content=jpeg(i),
                              params={"ts": (t0 + timedelta(seconds=i)).isoformat()},
                              headers={**admin, "Content-Type": "image/jpeg"})
            assert pushed.status_code == 202 and pushed.json()["queued"], pushed.text
            good = wait_for(f"the good camera to analyse pushed frame {i + 1}",
                            lambda: (c := camera("good"))["health"]["frames_processed"] >= i + 1 and c, 120, log)
        assert good["health"]["worker"] == "running" and good["health"]["inference_ms"] is not None
        assert good["health"]["frames_processed"] == 4 and good["health"]["state"] == "streaming", good["health"]

        dead = camera("dead-stream")
        assert dead["health"]["frames_processed"] == 0 and dead["health"]["state"] != "streaming", dead["health"]
        broken = camera("no-model")
        assert broken["health"]["worker"] == "restarting" and broken["health"]["frames_processed"] == 0

        metrics = api.get("/metrics").text
        restarts = next(line for line in metrics.splitlines()
                        if line.startswith('streetwatch_camera_restarts_total{camera_id="no-model"}'))
        assert float(restarts.split()[-1]) >= 1
        assert 'streetwatch_camera_frames_processed_total{camera_id="good"} 4' in metrics
        assert 'streetwatch_camera_up{camera_id="dead-stream"} 0' in metrics

        # the API still takes edits; the change is written back to the --config file
        zones = {"zones": [{"id": "z2", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1]]}]}
        saved = api.put("/api/v1/cameras/good/zones", json=zones, headers=admin)
        assert saved.status_code == 200 and saved.json()["persisted"] is True, saved.text
        assert [z["id"] for c in yaml.safe_load(config_path.read_text())["cameras"] if c["id"] == "good"
                for z in c["zones"]] == ["z2"]
        api.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    text = log.read_text(errors="replace")
    assert f"an admin and a reviewer key in {keys_path}" in text
    assert keys["admin"] not in text and keys["reviewer"] not in text  # the keys stay in their file


def test_serve_needs_a_config_or_settings(capsys):
    assert main(["serve"]) == 2
    assert "serve needs --config FILE" in capsys.readouterr().err


def test_serve_config_problems_name_the_field_and_start_nothing(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text(yaml.safe_dump({"config_version": 1, "cameras": [
        {"id": "c1", "source": "push", "timezone": "UTC",
         "zones": [{"id": "z", "kind": "no_vending", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]}]}))
    data_dir = tmp_path / "data"
    assert main(["serve", "--config", str(bad), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: cameras[0].zones[0].polygon: self-intersecting" in err and "Traceback" not in err
    assert not data_dir.exists()  # nothing made for a configuration that cannot start
    assert main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_serve_settings_with_data_dir_is_refused(tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"database_path": str(tmp_path / "c.db"), "evidence_dir": str(tmp_path)}))
    assert main(["serve", "--settings", str(settings), "--data-dir", str(tmp_path / "d")]) == 2
    assert "--data-dir is for serving without --settings" in capsys.readouterr().err
