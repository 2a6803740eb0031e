import pytest

from datasets.synth.scenario import scenario_timeline
from datasets.synth.scenario_eval import config_for_timeline, score_run
from service.config import parse_config


@pytest.fixture(scope="module")
def timeline():
    return scenario_timeline("stall_7min")


def report(kind="stall_occupation", zone="no_vending_1", opened="2026-06-01T02:05:25+00:00", vid="v1"):
    return {"kind": kind, "zone": zone, "opened_at": opened, "last_seen": opened, "violation_id": vid}


def test_timeline_config_is_a_valid_app_config(timeline):
    cfg = parse_config(config_for_timeline(timeline, "yolox-nano-coco"), "scenario")
    camera = cfg.cameras[0]
    assert {z.kind for z in camera.zones} >= {"no_vending", "watch_area", "bike_parking"}
    assert cfg.rules_for(camera).stall_occupation.min_dwell_s == 300
    assert camera.model is None  # the default model, whole frame


def test_a_small_object_scenario_camera_runs_tiled_with_its_dwell():
    timeline = scenario_timeline("far_bikes_4min", seed=0, fps=1.0)
    cfg = parse_config(config_for_timeline(timeline, "street"), "scenario")
    camera = cfg.cameras[0]
    assert cfg.model_for(camera).tile is True and cfg.model_for(camera).name == "street"
    assert {z.kind for z in camera.zones} == {"watch_area"} and len(camera.zones) == 6
    assert cfg.rules_for(camera).bike_misparked.min_dwell_s == 120


@pytest.mark.parametrize(
    "records, passed, found, missed, late, unexpected",
    [
        # due at 02:00:00 + 320 s = 02:05:20; reported 5 s later
        ([report()], True, 1, 0, 0, 0),
        ([report(opened="2026-06-01T02:05:29+00:00")], True, 1, 0, 0, 0),
        ([report(opened="2026-06-01T02:05:31+00:00")], False, 0, 0, 1, 0),  # 11 s late
        ([], False, 0, 1, 0, 0),
        ([report(zone="watch_area_1")], False, 0, 1, 0, 1),  # right kind, wrong zone
        ([report(), report(kind="bike_misparked", zone="watch_area_1", vid="v2")], False, 1, 0, 0, 1),
        ([report(), report(vid="dup")], False, 1, 0, 0, 1),  # the same stall reported twice
    ],
)
def test_score_table(timeline, records, passed, found, missed, late, unexpected):
    s = score_run(timeline, records, tolerance_s=10)
    assert (s.passed, len(s.found), len(s.missed), len(s.late), len(s.unexpected)) == \
        (passed, found, missed, late, unexpected)
