"""Dwell is observed time: gaps in observation (no samples for longer than the engine's gap bound: a stream that
was down, a service that was stopped) count neither as dwell nor as absence (issue 18: a case showed 24 min 54 s
of dwell, 7 min of it with the demo stopped)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.rules import RuleEngine, StallOccupationRule, StallRuleParams, observed_s
from detector.tracking import Tracker, TrackerConfig
from detector.zones import Zone
from tests.conftest import T0, make_detections
from tests.detector.test_rules import FRAME_WH, STALL_AT, ZONES, Obj, bike_engine, every, run

APRON_BIKE = (100, 300, 140, 360)  # in the watch area, outside the bike box


def stall_engine(max_gap_s: float | None = None, **params) -> RuleEngine:
    defaults = dict(min_dwell_s=60, min_score=0.5, end_grace_s=30, update_interval_s=60, cooldown_s=300)
    rule = StallOccupationRule(StallRuleParams({"stall"}, **{**defaults, **params}))
    return RuleEngine("cam-1", ZONES, [rule], max_gap_s=max_gap_s)


def stall_seen(start_s: float, stop_s: float, step_s: float = 5.0, tid: int = 7) -> list:
    return every(start_s, stop_s, step_s, lambda t: [Obj(tid, STALL_AT)])


def nothing(start_s: float, stop_s: float, step_s: float = 5.0) -> list:
    return every(start_s, stop_s, step_s, lambda t: [])


def summary(events) -> list[tuple]:
    """(t_s, event, first_seen_s, last_seen_s, dwell_s, gaps as (start_s, end_s)) of each event."""
    def s(ts) -> float:
        return (ts - T0).total_seconds()
    return [(t, e.event, s(e.first_seen), s(e.last_seen), e.dwell_s, tuple((s(a), s(b)) for a, b in e.gaps))
            for t, e in events]


# Sampling every 5 s, end_grace_s 30 s (the default gap bound: max(30, 3 x 5)), min_dwell_s 60 s, updates every 60 s.
CASES = {
    "no gap": (
        None, stall_seen(0, 200) + nothing(205, 260),
        [(60, "opened", 0, 60, 60, ()), (120, "updated", 0, 120, 120, ()), (180, "updated", 0, 180, 180, ()),
         (235, "closed", 0, 200, 200, ())]),
    "gap inside the bound counts, as an occlusion would": (
        None, stall_seen(0, 100) + stall_seen(125, 200) + nothing(205, 260),
        [(60, "opened", 0, 60, 60, ()), (125, "updated", 0, 125, 125, ()), (185, "updated", 0, 185, 185, ()),
         (235, "closed", 0, 200, 200, ())]),
    "stream down 5 min while the violation is open: not dwell, and not absence either": (
        None, stall_seen(0, 100) + stall_seen(400, 500) + nothing(505, 560),
        [(60, "opened", 0, 60, 60, ()), (400, "updated", 0, 400, 100, ((100, 400),)),
         (460, "updated", 0, 460, 160, ((100, 400),)), (520, "updated", 0, 500, 200, ((100, 400),)),
         (535, "closed", 0, 500, 200, ((100, 400),))]),
    "stream down 5 min before the stall was due: the wait is observed time too": (
        None, stall_seen(0, 30) + stall_seen(330, 420) + nothing(425, 480),
        [(360, "opened", 0, 360, 60, ((30, 330),)), (420, "updated", 0, 420, 120, ((30, 330),)),
         (455, "closed", 0, 420, 120, ((30, 330),))]),
    "an explicit bound longer than the outage: the outage counts": (
        600.0, stall_seen(0, 100) + stall_seen(400, 500) + nothing(505, 560),
        [(60, "opened", 0, 60, 60, ()), (400, "updated", 0, 400, 400, ()), (460, "updated", 0, 460, 460, ()),
         (520, "updated", 0, 500, 500, ()), (535, "closed", 0, 500, 500, ())]),
    "an outage after the stall left: it closes after 30 s of observed absence (10 s before, 25 s after)": (
        None, stall_seen(0, 100) + nothing(105, 110) + nothing(400, 440),
        [(60, "opened", 0, 60, 60, ()), (400, "updated", 0, 100, 100, ()), (425, "closed", 0, 100, 100, ())]),
}


@pytest.mark.parametrize("max_gap_s, timeline, expected", CASES.values(), ids=CASES.keys())
def test_dwell_leaves_out_gaps_in_observation(max_gap_s, timeline, expected):
    assert summary(run(stall_engine(max_gap_s), timeline)) == expected


def test_a_restarted_engine_counts_from_the_restart():
    """The service stopped for 7 minutes: the new engine knows nothing of the old violation; its violation of the
    same stall waits min_dwell_s of observed time again and dwells from the restart (the case store then adds
    it to the stall's case without the stopped time: tests/service/test_cases.py)."""
    before = run(stall_engine(), stall_seen(0, 300))
    after = run(stall_engine(), stall_seen(720, 900))
    assert summary(before)[-1] == (300, "updated", 0, 300, 300, ())
    assert summary(after)[0] == (780, "opened", 720, 780, 60, ())
    assert before[0][1].violation_id != after[0][1].violation_id


def test_a_slow_camera_s_sampling_is_not_a_gap():
    """A camera sampled every 60 s with a 30 s grace: once its spacing is known it is the usual interval, not an
    outage; only the first interval (nothing known yet) is taken for a gap."""
    events = run(stall_engine(min_dwell_s=120), stall_seen(0, 600, step_s=60))
    opened = summary(events)[0]
    assert opened[:5] == (180, "opened", 0, 180, 120) and opened[5] == ((0, 60),)
    assert summary(events)[-1][4] == 540  # at 600 s: everything but the first minute


def test_bikes_wait_observed_time_too():
    engine = bike_engine(min_dwell_s=60, end_grace_s=30)
    bike = lambda t: [Obj(3, APRON_BIKE, cls="bicycle")]  # noqa: E731 - stationary since T0
    events = run(engine, every(0, 30, 5, bike) + every(330, 400, 5, bike))
    assert [(t, e.event, e.dwell_s) for t, e in events][:1] == [(360, "opened", 60)]


def test_gaps_are_forgotten_once_nothing_measures_across_them():
    engine = stall_engine()
    run(engine, stall_seen(0, 100) + stall_seen(400, 500) + nothing(505, 600))
    assert [((a - T0).total_seconds(), (b - T0).total_seconds()) for a, b in engine.gaps] == []
    assert engine.open_violations == []


def test_max_gap_s_is_checked():
    with pytest.raises(ValueError, match="max_gap_s must be positive"):
        stall_engine(max_gap_s=0)


@pytest.mark.parametrize("from_s, to_s, expected_s", [
    (0, 600, 300),      # two gaps inside: (100, 400) and (450, 450) is empty
    (200, 600, 200),    # starts inside a gap
    (500, 400, 0),      # backwards: nothing observed
    (400, 450, 50),     # between gaps
])
def test_observed_s(from_s, to_s, expected_s):
    assert observed_s(from_s, to_s, [(100.0, 400.0), (450.0, 450.0)]) == expected_s


def test_gaps_reach_the_violation_only_within_its_span():
    events = run(stall_engine(), stall_seen(0, 100) + stall_seen(400, 500))
    last = events[-1][1]
    assert last.first_seen == T0 and last.last_seen == T0 + timedelta(seconds=460)
    assert last.gaps == ((T0 + timedelta(seconds=100), T0 + timedelta(seconds=400)),)


def test_tracker_and_engine_through_a_five_minute_outage():
    """Raw detections at 1 fps: a stall stands from 0 s to 1000 s, but the stream is down from 200 s to 500 s (no
    samples at all). The tracker (default: a stationary track unseen 120 s ends) gives it a new track after the
    outage; neither violation dwells through the outage, and the first one is not closed by it either."""
    tracker = Tracker(TrackerConfig())
    no_vending = Zone("nv", "no_vending", ZONES[0].polygon)  # default inertia: 3 samples
    engine = RuleEngine("cam-1", [no_vending], [StallOccupationRule(StallRuleParams(
        {"stall"}, min_dwell_s=120, end_grace_s=120, cooldown_s=0))], class_names=["stall"])
    events = []
    for t in [*range(0, 200), *range(500, 1130)]:
        rows = [(100, 700, 200, 800, 0.8, 0)] if t < 1000 else []
        out = tracker.update(make_detections(rows), T0.timestamp() + t)
        events += [(t, e) for e in engine.update(T0 + timedelta(seconds=t), out, FRAME_WH)]
    closed = {e.violation_id: e for _, e in events if e.event == "closed"}
    first, second = sorted(closed.values(), key=lambda e: e.first_seen)
    at = lambda e: ((e.first_seen - T0).total_seconds(), (e.last_seen - T0).total_seconds())  # noqa: E731
    # Zone inertia (3 samples) starts each 3 s after it was first seen.
    assert (at(first), first.dwell_s, first.track_ids) == ((3, 199), 196, (1,))
    assert (at(second), second.dwell_s, second.track_ids) == ((503, 999), 496, (2,))
    # The first violation ended 120 s of *observed* absence after the outage, not at its first sample.
    assert next(t for t, e in events if e.event == "closed" and e.violation_id == first.violation_id) == 621
