"""Scenario clips: deterministic ground truth, zones and due times, and videos OpenCV can read frame by frame."""

from __future__ import annotations

import json

import cv2
import pytest

from datasets.synth import scenario
from datasets.synth.scenario import SCENARIOS, render_scenario, scenario_timeline

SMALL = (320, 180)


@pytest.mark.parametrize("name", SCENARIOS)
def test_timeline_is_deterministic_and_json_ready(name):
    a = json.dumps(scenario_timeline(name, seed=3, size_px=SMALL), sort_keys=True)
    b = json.dumps(scenario_timeline(name, seed=3, size_px=SMALL), sort_keys=True)
    assert a == b
    assert a != json.dumps(scenario_timeline(name, seed=4, size_px=SMALL), sort_keys=True)


@pytest.mark.parametrize("name, expected", [
    ("stall_7min", [("stall_occupation", "no_vending_1", ["stall_1"], 320.0)]),
    ("bikes_outside_box_12min", [("bike_misparked", "watch_area_1", ["bike_1", "bike_2", "bike_3"], 620.0)]),
    ("passerby_30s", []),
    ("mixed_demo", [("stall_occupation", "no_vending_1", ["stall_1"], 360.0),
                    ("bike_misparked", "watch_area_1", ["bike_1", "bike_2", "bike_3"], 720.0)]),
    ("stall_2min", [("stall_occupation", "no_vending_1", ["stall_1"], 40.0)]),
])
def test_expected_violations_are_due_after_the_zone_dwell(name, expected):
    timeline = scenario_timeline(name)
    got = [(v["kind"], v["zone_id"], v["object_ids"], v["due_s"]) for v in timeline["expected_violations"]]
    assert got == expected
    zones = {z["id"]: z for z in timeline["zones"]}
    assert {z["kind"] for z in zones.values()} == {"no_vending", "vending_allowed", "bike_parking", "watch_area"}
    assert zones["vending_allowed_1"]["schedule"]["start"] == "18:00"
    events = {e["object_id"]: e for e in timeline["events"]}
    for kind, zone_id, ids, due_s in got:
        for object_id in ids:
            event = events[object_id]
            assert zone_id in event["zone_ids"]  # its bottom centre is in the zone
            assert event["appear_s"] + zones[zone_id]["min_dwell_s"] == due_s < event["leave_s"]
    for object_id, event in events.items():
        assert event["xyxy_norm"] is not None and all(0.0 <= v <= 1.0 for v in event["xyxy_norm"])
        if object_id.startswith("bike_in_box"):
            assert "bike_parking_1" in event["zone_ids"]
        elif object_id.startswith("bike_"):
            assert "bike_parking_1" not in event["zone_ids"] and "watch_area_1" in event["zone_ids"]


def test_passerby_stops_for_30_seconds():
    person = scenario_timeline("passerby_30s")["events"][0]
    assert person["class"] == "person"
    stop = person["stops"][0]
    assert stop["to_s"] - stop["from_s"] == 30.0
    assert person["appear_s"] < stop["from_s"] and stop["to_s"] < person["leave_s"]


def _read_all(path) -> tuple[int, float, int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    count, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    cap.release()
    return count, fps, decoded


def test_clip_has_the_expected_frames_and_matching_json(tmp_path):
    clip = render_scenario("passerby_30s", tmp_path / "a", seed=1, fps=1.0, size_px=SMALL)
    assert clip.n_frames == 60 and clip.duration_s == 60.0
    count, fps, decoded = _read_all(clip.video_path)
    assert (count, decoded) == (60, 60) and fps == pytest.approx(1.0)
    assert json.loads(clip.timeline_path.read_text()) == clip.timeline
    again = render_scenario("passerby_30s", tmp_path / "b", seed=1, fps=1.0, size_px=SMALL)
    assert again.timeline_path.read_bytes() == clip.timeline_path.read_bytes()


def test_without_ffmpeg_the_mp4v_video_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(scenario.shutil, "which", lambda _name: None)
    clip = render_scenario("passerby_30s", tmp_path, fps=0.5, size_px=SMALL)
    assert clip.codec == "mp4v"
    count, _fps, decoded = _read_all(clip.video_path)
    assert count == decoded == 30


def test_unknown_scenario_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scenario"):
        render_scenario("nope", tmp_path)
