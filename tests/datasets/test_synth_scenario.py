"""Scenario clips: deterministic ground truth, zones and due times, and videos OpenCV can read frame by frame."""

from __future__ import annotations

import json

import cv2
import pytest

from datasets.synth import scenario, sketch
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


# --- far_bikes_4min: small bikes, one per watch area -------------------------------------------------------------


def _far_bike_checks(timeline: dict, width_px: int) -> None:
    scale = width_px / 1280
    zones = {z["id"]: z for z in timeline["zones"]}
    assert {z["kind"] for z in zones.values()} == {"watch_area"}
    assert timeline["camera"]["tile"] is True
    events = {e["object_id"]: e for e in timeline["events"]}
    assert len(events) == 6 and all(e["class"] == "bicycle" for e in events.values())
    got = [(v["kind"], v["zone_id"], v["object_ids"]) for v in timeline["expected_violations"]]
    assert got == [("bike_misparked", f"watch_area_{k}", [f"bike_{k}"]) for k in range(1, 7)]
    for v in timeline["expected_violations"]:
        event = events[v["object_ids"][0]]
        # in its own watch area only (the areas do not overlap), due after that area's dwell
        assert event["zone_ids"] == [v["zone_id"]]
        assert v["due_s"] == event["appear_s"] + zones[v["zone_id"]]["min_dwell_s"] < event["leave_s"]
        box_w = (event["xyxy_norm"][2] - event["xyxy_norm"][0]) * width_px
        assert 30 * scale - 1 <= box_w <= 80 * scale + 1 and event["width_px"] == pytest.approx(box_w, abs=1e-3)
    widths = sorted(e["width_px"] / scale for e in events.values())
    assert widths[0] < 45 and widths[-1] > 50  # a spread over the small-object range, not six alike


def test_far_bikes_are_small_lone_and_each_due_in_its_own_watch_area():
    timeline = scenario_timeline("far_bikes_4min", seed=0, fps=1.0)
    _far_bike_checks(timeline, 1280)
    assert {e["source"] for e in timeline["events"]} == {"drawn"}


@pytest.fixture(scope="module")
def small_bank(shared_dir, tmp_path_factory):
    from datasets.synth import load_street_assets

    assets = load_street_assets(shared_dir, tmp_path_factory.mktemp("bank"), max_bike_crops=24)
    if assets.bike_bank is None:
        pytest.skip("bicycles-2000 absent from ../shared")
    return assets.bike_bank


def test_far_bikes_use_real_cutouts_from_a_bank(small_bank):
    timeline = scenario_timeline("far_bikes_4min", seed=1, fps=1.0, bike_bank=small_bank)
    _far_bike_checks(timeline, 1280)
    sources = {e["source"] for e in timeline["events"]}
    assert all(s.startswith("real cut-out of bicycles-2000 train ") for s in sources)
    assert {s.rsplit(" ", 1)[1] for s in sources} <= set(small_bank.sources)
    again = scenario_timeline("far_bikes_4min", seed=1, fps=1.0, bike_bank=small_bank)
    assert json.dumps(again, sort_keys=True) == json.dumps(timeline, sort_keys=True)


def test_a_car_passing_under_a_high_camera_draws_nothing_instead_of_a_huge_layer():
    # far_bikes_4min seed 4: the first car enters the near lane right under the camera (depth ~1.4 m); drawn
    # as is, its layer would be tens of thousands of pixels a side (gigabytes: the renderer was once killed).
    scene = scenario._build("far_bikes_4min", 4, (1280, 720))
    cam = scene.background.plan.camera
    car = next(a for a in scene.actors if a.object_id == "car_1")
    sk, _x, _y = car.sketch_at(car.appear_s)
    x1, y1, x2, y2 = sketch._bounds(sk._prepared(cam))
    assert (x2 - x1) * (y2 - y1) > 4 * 1280 * 720
    assert scenario._render(sk, cam) is None
    # the same car further along the lane is drawn as usual
    late = next(t for t in range(int(car.appear_s) + 1, int(car.leave_s)) if scenario._render(car.sketch_at(t)[0], cam))
    assert car.appear_s < late < car.leave_s


def test_cli_renders_a_scenario_and_names_a_shared_folder_without_bicycles(tmp_path, capsys):
    from service.cli import main

    assert main(["dataset", "scenario", "far_bikes_4min", "--out", str(tmp_path / "clip"), "--fps", "0.05",
                 "--shared", str(tmp_path)]) == 2
    assert "no data/bicycles-2000/train/images there" in capsys.readouterr().err
    assert main(["dataset", "scenario", "passerby_30s", "--out", str(tmp_path / "clip"), "--fps", "0.5"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert json.loads(open(written["timeline"]).read())["n_frames"] == 30
    assert main(["dataset", "scenario", "nosuch", "--out", str(tmp_path / "x")]) == 2
    assert "unknown scenario 'nosuch'" in capsys.readouterr().err
