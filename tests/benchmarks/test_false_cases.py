"""The false-case benchmark's pure parts: a looped clip as one stream, the configuration, and the counting.

The counting is checked on a stand-in detector pipeline (tests.detector.test_verify's coloured squares), where a
due violation, a refused second look and an opened case are known exactly.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.false_cases import (CLIPS, PipelineTap, RunCounts, clip_config, operating_thresholds, percentile,
                                    take_stream_time)
from detector.pipeline import CameraPipeline
from detector.rules import RuleEngine, StallOccupationRule, StallRuleParams
from detector.sources import open_source
from detector.tracking import Tracker, TrackerConfig
from detector.types import Detections, Frame
from detector.verify import SecondLook, SecondLookConfig
from service.config import parse_config
from service.pipeline import second_look_classes
from tests.conftest import T0
from tests.detector.test_sources import needs_av, write_video
from tests.detector.test_verify import BLUE, NO_VENDING, RED, STALL, FirstLookDetector, scene

IMAGE = np.zeros((4, 4, 3), np.uint8)


def frames_at(offsets_s: list[float]) -> list[Frame]:
    return [Frame("cam-1", i, T0 + timedelta(seconds=t), IMAGE) for i, t in enumerate(offsets_s)]


# --- a looped clip is one stream -----------------------------------------------------------------------------

@pytest.mark.parametrize("offsets_s, duration_s, kept", [
    ([0, 1, 2, 3, 4], 3.0, [0, 1, 2]),          # stops at the stream time asked for
    ([0, 1, 2], 10.0, [0, 1, 2]),               # a source that ends first gives what it has
    ([5.5, 6.0, 7.9, 8.0], 2.5, [0, 1, 2]),     # counted from the first frame's time, not from zero
    ([], 3.0, []),
])
def test_take_stream_time(offsets_s, duration_s, kept):
    assert [f.index for f in take_stream_time(frames_at(offsets_s), duration_s)] == kept


@pytest.mark.parametrize("offsets_s", [[0, 1, 1], [0, 1, 0.5], [0, 2, 1, 3]])
def test_a_stream_that_restarts_or_stalls_is_an_error(offsets_s):
    with pytest.raises(ValueError, match=r"cam-1: frame \d+ at .* is not later than the previous one"):
        list(take_stream_time(frames_at(offsets_s), 60.0))


@needs_av
def test_a_looped_file_keeps_its_clock_across_the_seams(tmp_path):
    path = write_video(tmp_path / "one_s.mp4", [k * 0.1 for k in range(10)])  # 1 s of video at 10 fps
    with open_source(path, 2.0, source_id="cam-1", start_ts=T0, loop=True) as source:
        frames = list(take_stream_time(source, 3.6))
    offsets = [(f.ts - T0).total_seconds() for f in frames]
    assert offsets[0] == 0.0 and offsets[-1] < 3.6
    assert all(b > a for a, b in pairwise(offsets))
    # a pass lasts about 1 s: over 3.6 s the clip plays four times, sampled about twice a second throughout
    assert len(frames) >= 7 and max(np.diff(offsets)) < 0.8
    assert [f.index for f in frames] == sorted(f.index for f in frames)


# --- the configuration -------------------------------------------------------------------------------------

@pytest.mark.parametrize("second_look, expected", [
    (True, {"stall_occupation": frozenset({"stall"}), "bike_misparked": frozenset({"bicycle", "ebike"})}),
    (False, {}),
])
def test_clip_config_covers_the_frame_for_both_rules(second_look, expected):
    config = parse_config(clip_config(CLIPS[0], Path("/data/people-walking.mp4"), "street", second_look))
    camera = config.cameras[0]
    assert {z.kind.value: z.polygon for z in camera.zones} == {
        "no_vending": [(0, 0), (1, 0), (1, 1), (0, 1)], "watch_area": [(0, 0), (1, 0), (1, 1), (0, 1)]}
    assert second_look_classes(config, camera) == expected
    assert config.model.conf == 0.1 and camera.sample_fps == 1.0
    rules = config.rules_for(camera)
    assert (rules.stall_occupation.min_dwell_s, rules.bike_misparked.min_dwell_s) == (300.0, 600.0)


def test_operating_thresholds_follow_the_card_and_its_class_map():
    card = SimpleNamespace(classes=["bicycle", "stall", "ebike", "tricycle"],
                           thresholds=SimpleNamespace(default=0.25, per_class={"bicycle": 0.268, "ebike": 0.182}))
    assert operating_thresholds(card, {"tricycle": "stall"}) == {"bicycle": 0.268, "stall": 0.25, "ebike": 0.182}


# --- counting ----------------------------------------------------------------------------------------------

def test_counts_of_boxes_tracks_and_cases():
    counts = RunCounts({"stall": 0.2, "bicycle": 0.3})
    counts.add_detections(Detections(xyxy=[[0, 0, 1, 1]] * 3, confidence=[0.1, 0.25, 0.5], class_id=[0, 1, 1],
                                     data={"class_name": np.array(["stall", "bicycle", "bicycle"])}))
    counts.add_detections(Detections.empty().with_columns(class_name=np.zeros(0, object)))
    tracked = Detections(xyxy=[[0, 0, 1, 1]] * 2, confidence=[0.5, 0.5], class_id=[0, 0], tracker_id=[4, 7],
                         data={"class_name": np.array(["stall", "bicycle"]), "stationary": np.array([False, True]),
                               "stationary_since_s": np.array([np.nan, 100.0]), "first_seen_s": np.array([40., 90.])})
    counts.add_tracked(tracked, 130.0)
    counts.add_tracked(tracked[np.array([True, False])], 150.0)
    due = SimpleNamespace(violation_id="v1", kind="stall_occupation", event="opened")
    counts.add_engine_events([due, SimpleNamespace(violation_id="v2", kind="bike_misparked", event="opened")])
    counts.add_step(SimpleNamespace(frame=frames_at([0])[0], events=[due], looks=()), 120.0)
    counts.add_step(SimpleNamespace(frame=frames_at([1799])[0], events=[],
                                    looks=(SimpleNamespace(ms=80.0),)), 200.0)
    s = counts.summary(1.0, {"not_found": 1})
    assert s["frames"] == 2 and s["stream_h"] == 0.5 and s["max_step_s"] == 1799.0
    assert s["false_boxes_per_frame"] == {"median": 0.5, "mean": 0.5}  # 0.1 and 0.25 are below the classes' floors
    assert s["weak_boxes_per_frame_mean"] == 1.5 and s["false_boxes_by_class"] == {"bicycle": 1}
    assert (s["tracks"], s["stationary_tracks"]) == (2, 1)
    assert s["longest_track_s"] == {"bicycle": 40.0, "stall": 110.0} and s["longest_still_s"] == {"bicycle": 30.0}
    assert s["due_by_kind"] == {"bike_misparked": 1, "stall_occupation": 1}
    assert s["opened_by_kind"] == {"stall_occupation": 1} and s["false_cases_per_h"] == 2.0
    assert s["second_look_verdicts"] == {"not_found": 1} and s["second_look_ms"] == {"median": 80.0, "p95": 80.0}
    assert counts.opening_frame_ms == {"v1": 120.0}


@pytest.mark.parametrize("values, q, expected", [([], 0.95, 0.0), ([3.0], 0.95, 3.0), ([1, 2, 3, 4], 0.5, 2),
                                                 (list(range(1, 21)), 0.95, 19)])
def test_percentile_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


def stand_in_pipeline(look: bool) -> CameraPipeline:
    """A stall seen by the first look wherever it is asked (tests.detector.test_verify), in a no-vending zone."""
    detector = FirstLookDetector()
    engine = RuleEngine("cam-1", [NO_VENDING], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=60,
                                                                                    end_grace_s=30))])
    tracker = Tracker(TrackerConfig(high_score=0.5, new_track_score=0.5, stationary_window_s=10.0))
    return CameraPipeline("cam-1", detector, tracker, engine, keep_classes={"stall"},
                          second_look=SecondLook(detector, SecondLookConfig()) if look else None,
                          second_look_classes={"stall_occupation": frozenset({"stall"})} if look else None)


@pytest.mark.parametrize("colour, look, due, opened, verdicts", [
    (BLUE, True, 1, 0, {"other_class": 1}),   # a person where the first look saw a stall: refused, no case
    (RED, True, 1, 1, {"agreed": 1}),         # a real stall: confirmed, the case opens
    (BLUE, False, 1, 1, {}),                  # without the look the false stall becomes a case
])
def test_the_tap_counts_due_violations_cases_and_verdicts_without_changing_them(colour, look, due, opened, verdicts):
    plain, tapped = stand_in_pipeline(look), stand_in_pipeline(look)
    counts = RunCounts({"stall": 0.5})
    tap = PipelineTap(tapped, counts)
    for t_s in range(0, 121, 5):
        frame = Frame("cam-1", t_s, T0 + timedelta(seconds=t_s), scene([(STALL, colour)]))
        a, b = plain.process(frame), tap.process(frame)
        assert [(e.violation_id, e.event) for e in a.events] == [(e.violation_id, e.event) for e in b.events]
    end = T0 + timedelta(seconds=121)
    assert [e.event for e in plain.finish(end)] == [e.event for e in tap.finish(end)]
    s = counts.summary(5.0, tapped.second_look_counts)
    assert (s["violations_due"], s["cases_opened"], s["second_look_verdicts"]) == (due, opened, verdicts)
    assert s["frames"] == 25 and s["false_boxes_per_frame"] == {"median": 1, "mean": 1.0}
    assert s["tracks"] == 1 and s["stationary_tracks"] == 1
    assert s["longest_track_s"]["stall"] >= 60.0 and s["longest_still_s"]["stall"] >= 50.0  # it became due at 60 s
