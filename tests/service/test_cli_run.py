"""`streetwatch run` end to end: a folder of timestamped frames (a real bicycle photo parked in a watch area)
through the real CLI, real YOLOX model, tracker and rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import yaml

from tests.service.test_cli_detect import streetwatch

T0 = datetime(2026, 6, 1, 2, 0, 0, tzinfo=timezone.utc)  # 10:00 in Asia/Shanghai


def _config(tmp_path: Path, min_dwell_s: float) -> Path:
    cfg = {
        "config_version": 1,
        "model": {"name": "yolox-nano-coco", "conf": 0.1},
        "rules": {"bike_misparked": {"min_dwell_s": min_dwell_s, "min_score": 0.3, "end_grace_s": 30},
                  "stall_occupation": {"enabled": False}},
        "cameras": [{
            "id": "cam-test", "name": "test camera", "source": "push", "timezone": "Asia/Shanghai",
            "sample_fps": 1,
            "zones": [
                {"id": "square", "kind": "watch_area", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]},
                {"id": "box", "kind": "bike_parking", "polygon": [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]]},
            ],
        }],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _frames(tmp_path: Path, bike: np.ndarray, parked_s: tuple[float, float], total_s: int, step_s: int) -> Path:
    """Grey street frames every `step_s` seconds; the bike stands mid-frame between parked_s."""
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for t in range(0, total_s, step_s):
        frame = rng.integers(95, 125, (468, 832, 3), dtype=np.uint8)
        if parked_s[0] <= t < parked_s[1]:
            h, w = bike.shape[:2]
            frame[100:100 + h, 300:300 + w] = bike
        name = (T0 + timedelta(seconds=t)).strftime("cam_%Y%m%d_%H%M%S.jpg")
        cv2.imwrite(str(folder / name), frame)
    return folder


def test_run_reports_one_misparked_bike_with_evidence(tmp_path, bicycles_dir):
    from detector.runtime import load_model
    from tests.detector.test_runtime import _bike_crops

    # A real photo the model recognises as a bicycle when pasted on a plain background.
    # Frames are 832x468, halved by the model's letterbox: select at 150 px, paste at 300 px.
    bike, _ = _bike_crops(load_model("yolox-nano-coco"), bicycles_dir, 1, size_px=150)[0]
    bike = cv2.resize(bike, (300, 300 * bike.shape[0] // bike.shape[1]))
    folder = _frames(tmp_path, bike, parked_s=(20, 200), total_s=260, step_s=5)
    out = tmp_path / "out" / "violations.jsonl"
    r = streetwatch("run", str(folder), "--config", str(_config(tmp_path, 60)), "--camera", "cam-test",
                    "--out", str(out))
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1, records
    v = records[0]
    assert (v["kind"], v["zone"], v["camera"], v["category_code"]) == ("bike_misparked", "square", "cam-test", "0506")
    opened = datetime.fromisoformat(v["opened_at"])
    # Parked at 20 s, stationary after the tracker's window, due 60 s later: opened within a minute of that.
    assert T0 + timedelta(seconds=80) <= opened <= T0 + timedelta(seconds=80 + 60), v["opened_at"]
    assert datetime.fromisoformat(v["last_seen"]) <= T0 + timedelta(seconds=200)
    for kind in ("annotated", "original", "crop"):
        image = cv2.imread(v["evidence_files"][kind])
        assert image is not None and image.size > 0
    x1, y1, x2, y2 = v["boxes"][0]
    assert 300 <= (x1 + x2) / 2 <= 600 and 100 <= (y1 + y2) / 2 <= 100 + bike.shape[0]


def test_run_unknown_camera_is_a_clear_error(tmp_path):
    r = streetwatch("run", str(tmp_path), "--config", str(_config(tmp_path, 60)), "--camera", "nope")
    assert r.returncode == 2
    assert "no camera 'nope'" in r.stderr and "Traceback" not in r.stderr
