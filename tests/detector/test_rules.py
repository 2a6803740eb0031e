from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest

from detector.rules import (
    RULES,
    BikeMisparkedRule,
    BikeRuleParams,
    Finding,
    FrameView,
    RuleEngine,
    RuleParams,
    StallOccupationRule,
    StallRuleParams,
    Violation,
    cluster_boxes,
    make_rule,
    overlap_groups,
    register_rule,
)
from detector.schedule import WeeklySchedule
from detector.tracking import Tracker, TrackerConfig
from detector.types import Detections
from detector.zones import Zone, ZoneKind
from tests.conftest import T0, make_detections

FRAME_WH = (1000, 1000)
# T0 is Monday 2026-06-01 08:00 UTC = 16:00 in Shanghai.
EVENINGS = WeeklySchedule.from_windows([{"days": ["mon-fri"], "start": "18:00", "end": "22:00"}], "Asia/Shanghai")
LOCAL_18H_S = 2 * 3600  # seconds after T0
LOCAL_22H_S = 6 * 3600

NO_VENDING = Zone("nv", "no_vending", [(0, 0.5), (0.5, 0.5), (0.5, 1), (0, 1)], inertia_samples=1)
MARKET = Zone("market", "vending_allowed", [(0.5, 0.5), (1, 0.5), (1, 1), (0.5, 1)], schedule=EVENINGS,
              inertia_samples=1)
SHOP_FORECOURT = Zone("forecourt", "exclusion", [(0.3, 0.6), (0.45, 0.6), (0.45, 0.9), (0.3, 0.9)], inertia_samples=1)
APRON = Zone("apron", "watch_area", [(0, 0), (1, 0), (1, 0.5), (0, 0.5)], inertia_samples=1)
BIKE_BOX = Zone("box", "bike_parking", [(0.6, 0.1), (0.9, 0.1), (0.9, 0.4), (0.6, 0.4)], inertia_samples=1)
ZONES = [NO_VENDING, MARKET, SHOP_FORECOURT, APRON, BIKE_BOX]

STALL_AT = (100, 700, 200, 800)  # stands at (150, 800): in the no-vending zone
STALL_IN_MARKET = (700, 700, 800, 800)
STALL_IN_FORECOURT = (330, 700, 430, 800)


@dataclass
class Obj:
    """One tracked object in a hand-built sample, as the tracker would report it."""

    tid: int
    xyxy: tuple
    cls: str = "stall"
    stationary: bool = True
    since_s: float = 0.0  # stationary since, seconds after T0
    score: float = 0.9


def sample(objs: list[Obj]) -> Detections:
    if not objs:
        return Detections.empty(with_tracker=True)
    d = make_detections([o.xyxy + (o.score, 0, o.tid) for o in objs], tracker=True)
    return d.with_columns(
        class_name=np.array([o.cls for o in objs]),
        stationary=np.array([o.stationary for o in objs]),
        stationary_since_s=np.array([T0.timestamp() + o.since_s if o.stationary else np.nan for o in objs]),
        median_score=np.array([o.score for o in objs], np.float32),
    )


def run(engine: RuleEngine, timeline) -> list[tuple[float, Violation]]:
    """Feed (t_s after T0, [Obj]) samples; returns (t_s, event) pairs."""
    return [(t_s, e) for t_s, objs in timeline
            for e in engine.update(T0 + timedelta(seconds=t_s), sample(objs), FRAME_WH)]


def every(start_s: float, stop_s: float, step_s: float, objs_at) -> list:
    return [(t, objs_at(t)) for t in np.arange(start_s, stop_s + 1e-9, step_s).tolist()]


def stall_engine(**params) -> RuleEngine:
    defaults = dict(min_dwell_s=60, min_score=0.5, end_grace_s=30, update_interval_s=60, cooldown_s=300)
    rule = StallOccupationRule(StallRuleParams({"stall"}, **{**defaults, **params}))
    return RuleEngine("cam-1", ZONES, [rule])


def bike_engine(**params) -> RuleEngine:
    defaults = dict(min_dwell_s=60, min_score=0.4, end_grace_s=30, update_interval_s=600, cooldown_s=300,
                    cluster_distance=1.5)
    rule = BikeMisparkedRule(BikeRuleParams({"bicycle", "ebike"}, **{**defaults, **params}))
    return RuleEngine("cam-2", ZONES, [rule], class_map={"motorcycle": "ebike"})


def brief(events) -> list[tuple]:
    return [(t, e.event, e.track_ids) for t, e in events]


# --- stall_occupation ----------------------------------------------------------------------------------

def test_a_stall_opens_once_when_due_updates_while_it_stays_and_closes_after_grace():
    engine = stall_engine()
    timeline = every(0, 200, 5, lambda t: [Obj(7, STALL_AT)]) + every(205, 260, 5, lambda t: [])
    events = run(engine, timeline)
    assert [(t, e.event) for t, e in events] == [(60, "opened"), (120, "updated"), (180, "updated"), (235, "closed")]
    assert len({e.violation_id for _, e in events}) == 1
    opened, closed = events[0][1], events[-1][1]
    assert (opened.kind, opened.zone_id, opened.track_ids, opened.status) == ("stall_occupation", "nv", (7,), "open")
    assert opened.first_seen == T0 and opened.dwell_s == 60 and opened.score == pytest.approx(0.9)
    assert opened.xyxy.tolist() == [list(STALL_AT)] and opened.class_names == ("stall",)
    # Closed reports the last time it was seen, not the time the grace ran out.
    assert closed.status == "closed" and closed.last_seen == T0 + timedelta(seconds=200) and closed.dwell_s == 200
    assert engine.open_violations == []


@pytest.mark.parametrize(
    "obj, opens",
    [
        (Obj(1, STALL_AT), True),
        (Obj(1, STALL_AT, stationary=False), False),  # a cart being pushed along
        (Obj(1, STALL_AT, score=0.3), False),  # median score too low
        (Obj(1, STALL_AT, cls="person"), False),
        (Obj(1, (100, 300, 200, 400)), False),  # outside every zone
        (Obj(1, STALL_IN_FORECOURT), False),  # in no-vending, but also in the exclusion zone
        (Obj(1, STALL_IN_MARKET), True),  # vending_allowed outside its hours (16:00) counts as no-vending
    ],
)
def test_stall_conditions(obj, opens):
    events = run(stall_engine(), every(0, 90, 10, lambda t: [obj]))
    assert [e.event for _, e in events] == (["opened"] if opens else [])


def test_vending_hours_exempt_a_stall_and_dwell_starts_when_they_end():
    engine = stall_engine()
    start = LOCAL_22H_S - 3600  # 21:00 local, inside the vending hours
    events = run(engine, every(start, LOCAL_22H_S + 600, 10, lambda t: [Obj(3, STALL_IN_MARKET)]))
    assert [(t - LOCAL_22H_S, e.event) for t, e in events] == [(60, "opened"), (120, "updated"), (180, "updated"),
                                                                (240, "updated"), (300, "updated"), (360, "updated"),
                                                                (420, "updated"), (480, "updated"), (540, "updated"),
                                                                (600, "updated")]
    assert events[0][1].zone_id == "market"
    assert events[0][1].first_seen == T0 + timedelta(seconds=LOCAL_22H_S)  # 22:00, not 21:00


@pytest.mark.parametrize("start_s, opened_at_s", [(LOCAL_18H_S + 3600, None), (LOCAL_22H_S - 30, LOCAL_22H_S + 60)])
def test_an_active_vending_strip_inside_a_no_vending_street_exempts_it(start_s, opened_at_s):
    street = Zone("street", "no_vending", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia_samples=1)
    strip = Zone("strip", "vending_allowed", [(0.6, 0.6), (0.9, 0.6), (0.9, 0.9), (0.6, 0.9)], schedule=EVENINGS,
                 inertia_samples=1)
    engine = RuleEngine("cam-1", [street, strip], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=60))])
    events = run(engine, every(start_s, start_s + 600, 10, lambda t: [Obj(3, STALL_IN_MARKET)]))
    opened = [(t, e.zone_id) for t, e in events if e.event == "opened"]
    assert opened == ([] if opened_at_s is None else [(opened_at_s, "street")])


def test_missed_detections_shorter_than_grace_keep_the_violation():
    engine = stall_engine()
    seen = lambda t: [] if 100 <= t < 125 else [Obj(7, STALL_AT)]  # noqa: E731 - 25 s hidden < 30 s grace
    events = run(engine, every(0, 200, 5, seen))
    assert [e.event for _, e in events] == ["opened", "updated", "updated"]
    assert len({e.violation_id for _, e in events}) == 1


def test_cooldown_stops_a_returning_stall_from_opening_a_second_violation():
    engine = stall_engine(cooldown_s=300)
    seen = lambda t: [] if 100 <= t < 140 else [Obj(7, STALL_AT)]  # noqa: E731 - 40 s hidden > 30 s grace
    events = run(engine, every(0, 480, 5, seen))
    assert [(t, e.event) for t, e in events] == [(60, "opened"), (120, "updated"), (130, "closed"), (430, "opened")]
    assert events[0][1].violation_id != events[3][1].violation_id
    assert events[3][1].first_seen == T0 + timedelta(seconds=140)  # dwell restarted when it came back


def test_a_violation_opens_only_on_a_fresh_observation():
    # The bike rule keeps tracks in memory for 100 s; the stall rule gives up after 10 s without cooldown.
    # The hidden stall's remembered state must not reopen a violation nobody has seen.
    stall = StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=60, end_grace_s=10, cooldown_s=0))
    bikes = BikeMisparkedRule(BikeRuleParams({"bicycle"}, end_grace_s=100))
    engine = RuleEngine("cam-1", ZONES, [stall, bikes])
    events = run(engine, every(0, 90, 5, lambda t: [Obj(7, STALL_AT)]) + every(95, 180, 5, lambda t: []))
    assert [(t, e.event) for t, e in events] == [(60, "opened"), (105, "closed")]


def test_rule_schedule_limits_enforcement_hours():
    enforced = WeeklySchedule.from_windows([{"days": ["mon"], "start": "16:30", "end": "17:00"}], "Asia/Shanghai")
    engine = stall_engine(schedule=enforced)
    events = run(engine, every(0, 3700, 10, lambda t: [Obj(7, STALL_AT)]))
    assert [(t, e.event) for t, e in events if e.event != "updated"] == [(1860, "opened"), (3630, "closed")]
    assert events[0][1].first_seen == T0 + timedelta(seconds=1800)
    assert events[-1][1].last_seen == T0 + timedelta(seconds=3590)  # the last sample inside the hours


def test_a_zone_can_override_min_dwell():
    quick = Zone("nv", "no_vending", NO_VENDING.polygon, inertia_samples=1, min_dwell_s=10)
    engine = RuleEngine("cam-1", [quick], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=600))])
    assert [(t, e.event) for t, e in run(engine, every(0, 30, 5, lambda t: [Obj(1, STALL_AT)]))] == [(10, "opened")]


def test_finish_closes_everything_open():
    engine = stall_engine()
    run(engine, every(0, 100, 10, lambda t: [Obj(1, STALL_AT), Obj(2, (250, 700, 290, 760))]))
    closed = engine.finish(T0 + timedelta(seconds=110))
    assert sorted(e.track_ids for e in closed) == [(1,), (2,)] and {e.event for e in closed} == {"closed"}
    assert engine.open_violations == []


# A stall the detector sees as two overlapping parts (canopy and table, or left and right half), and a
# neighbouring stall that only touches the first.
CANOPY = (100, 640, 220, 800)
TABLE = (130, 720, 260, 800)     # 90x80 of its 130x80 inside CANOPY: 0.69 of the smaller box
NEIGHBOUR = (215, 700, 330, 800)  # 5 px of CANOPY, 45 px of TABLE wide: 0.35 of the smaller box with TABLE


@pytest.mark.parametrize("parts, merge_overlap, groups", [
    ([Obj(1, CANOPY), Obj(2, TABLE)], 0.3, [(1, 2)]),                       # one stall, reported once
    ([Obj(1, CANOPY), Obj(2, TABLE)], 1.0, [(1,), (2,)]),                   # only boxes wholly inside merge
    ([Obj(1, CANOPY), Obj(3, NEIGHBOUR)], 0.3, [(1,), (3,)]),               # neighbours touch: two stalls
    ([Obj(1, CANOPY), Obj(2, TABLE), Obj(3, NEIGHBOUR)], 0.3, [(1, 2, 3)]),  # TABLE bridges them
    ([Obj(1, CANOPY), Obj(2, TABLE), Obj(3, NEIGHBOUR)], 0.5, [(1, 2), (3,)]),
])
def test_overlapping_parts_of_one_stall_are_one_violation(parts, merge_overlap, groups):
    events = run(stall_engine(merge_overlap=merge_overlap), every(0, 90, 10, lambda t: parts))
    assert sorted(e.track_ids for _, e in events if e.event == "opened") == groups


def test_a_part_due_later_joins_the_stalls_violation():
    seen = lambda t: [Obj(1, CANOPY)] + ([Obj(2, TABLE, since_s=30)] if t >= 30 else [])  # noqa: E731
    events = run(stall_engine(), every(0, 120, 10, seen))
    assert [(t, e.event, e.track_ids) for t, e in events] == [(60, "opened", (1,)), (90, "updated", (1, 2))]
    assert len({e.violation_id for _, e in events}) == 1


@pytest.mark.parametrize("boxes, min_overlap, labels", [
    ([], 0.3, []),
    ([(0, 0, 10, 10), (5, 0, 15, 10), (9, 0, 19, 10), (30, 0, 40, 10)], 0.3, [0, 0, 0, 1]),  # a chain
    ([(0, 0, 10, 10), (8, 0, 18, 10)], 0.3, [0, 1]),        # 0.2 of the smaller box
    ([(0, 0, 100, 100), (40, 40, 50, 50)], 1.0, [0, 0]),    # wholly inside
    ([(0, 0, 10, 10), (10, 0, 20, 10)], 0.01, [0, 1]),      # touching edges do not overlap
])
def test_overlap_groups_table(boxes, min_overlap, labels):
    assert overlap_groups(np.array(boxes, np.float32).reshape(-1, 4), min_overlap).tolist() == labels


@pytest.mark.parametrize("merge_overlap", [0.0, 1.5])
def test_stall_params_bound_merge_overlap(merge_overlap):
    with pytest.raises(ValueError, match="merge_overlap"):
        StallRuleParams({"stall"}, merge_overlap=merge_overlap)


# --- bike_misparked ------------------------------------------------------------------------------------

def bike(tid: int, x: float, y: float = 300, since_s: float = 0.0, cls: str = "bicycle") -> Obj:
    return Obj(tid, (x, y, x + 60, y + 40), cls=cls, since_s=since_s, score=0.8)


def test_one_violation_per_cluster_not_per_bike():
    row = [bike(1, 100), bike(2, 165), bike(3, 230), bike(4, 450), bike(5, 700, y=200)]  # 5 is in the painted box
    events = run(bike_engine(), every(0, 70, 10, lambda t: row))
    assert sorted(e.track_ids for _, e in events) == [(1, 2, 3), (4,)]
    assert {(t, e.event, e.zone_id) for t, e in events} == {(60, "opened", "apron")}
    cluster = next(e for _, e in events if e.track_ids == (1, 2, 3))
    assert cluster.xyxy.shape == (3, 4) and cluster.class_names == ("bicycle",) * 3


def test_bike_dwell_counts_from_when_it_stood_still():
    events = run(bike_engine(), every(0, 200, 10, lambda t: [bike(1, 100, since_s=50)]))
    assert brief(events)[0] == (110, "opened", (1,))
    assert events[0][1].first_seen == T0 + timedelta(seconds=50)


def test_class_map_turns_the_model_classes_into_pipeline_classes():
    events = run(bike_engine(), every(0, 60, 10, lambda t: [bike(1, 100, cls="motorcycle"), bike(2, 500, cls="car")]))
    assert brief(events) == [(60, "opened", (1,))]
    assert events[0][1].class_names == ("ebike",)


def test_a_cluster_keeps_its_identity_while_its_members_change():
    def scene(t):
        bikes = [bike(2, 165)]
        if t < 200:
            bikes.append(bike(1, 100))  # leaves at 200
        if t >= 100:
            bikes.append(bike(3, 230, since_s=100))  # parks at 100, qualifies at 160
        return bikes

    events = run(bike_engine(), every(0, 300, 10, scene) + every(310, 400, 10, lambda t: []))
    assert brief(events) == [
        (60, "opened", (1, 2)),
        (160, "updated", (1, 2, 3)),
        (230, "updated", (2, 3)),  # bike 1 unseen for longer than the 30 s grace
        (340, "closed", (2, 3)),  # last seen at 300
    ]
    assert len({e.violation_id for _, e in events}) == 1


def test_merging_clusters_close_the_younger_into_the_older():
    def scene(t):
        bikes = [bike(1, 100), bike(3, 230, since_s=20)]  # 130 px apart: two clusters
        if t >= 100:
            bikes.append(bike(2, 165, since_s=100))  # bridges them at 160
        return bikes

    events = run(bike_engine(), every(0, 170, 10, scene))
    assert brief(events) == [(60, "opened", (1,)), (80, "opened", (3,)), (160, "updated", (1, 2, 3)),
                             (160, "closed", (3,))]
    older, younger = events[0][1], events[1][1]
    assert events[2][1].violation_id == older.violation_id
    assert events[3][1].violation_id == younger.violation_id and events[3][1].merged_into == older.violation_id


@pytest.mark.parametrize(
    "boxes, distance, labels",
    [
        ([], 1.0, []),
        ([(0, 0, 10, 10)], 1.0, [0]),
        ([(0, 0, 10, 10), (12, 0, 22, 10), (100, 0, 110, 10)], 1.5, [0, 0, 1]),
        ([(0, 0, 10, 10), (12, 0, 22, 10)], 1.0, [0, 1]),  # 12 px apart > 1.0 x 10 px
        ([(0, 0, 10, 10), (5, -20, 8, 5)], 0.0, [0, 0]),  # overlapping boxes always join
        ([(0, 0, 10, 10), (96, 0, 106, 10), (12, 0, 22, 10), (84, 0, 94, 10), (24, 0, 34, 10), (36, 0, 46, 10),
          (48, 0, 58, 10), (60, 0, 70, 10), (72, 0, 82, 10)], 1.2, [0] * 9),  # a chain is one cluster
    ],
)
def test_cluster_boxes_table(boxes, distance, labels):
    assert cluster_boxes(np.array(boxes, np.float32).reshape(-1, 4), distance).tolist() == labels


# --- engine input, registry ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "detections, ts, message",
    [
        (make_detections([(0, 0, 10, 10, 0.9, 0)]), T0, "no tracker_id"),
        (make_detections([(0, 0, 10, 10, 0.9, 0, 1)], tracker=True), T0, "lack the tracker's data columns"),
        (sample([Obj(1, STALL_AT)]), T0.replace(tzinfo=None), "timezone-aware"),
    ],
)
def test_engine_rejects_bad_input(detections, ts, message):
    with pytest.raises(ValueError, match=message):
        stall_engine().update(ts, detections, FRAME_WH)


def test_engine_rejects_time_going_backwards():
    engine = stall_engine()
    engine.update(T0, sample([]), FRAME_WH)
    with pytest.raises(ValueError, match="went backwards"):
        engine.update(T0 - timedelta(seconds=1), sample([]), FRAME_WH)


@pytest.mark.parametrize(
    "zones, rules, message",
    [
        ([NO_VENDING, NO_VENDING], [], "duplicate zone ids \\['nv'\\]"),
        ([NO_VENDING], [make_rule("stall_occupation", StallRuleParams({"stall"}))] * 2, "one rule per kind"),
        ([NO_VENDING], [make_rule("stall_occupation", StallRuleParams({"stall"}, zone_ids={"x"}))],
         "unknown zones \\['x'\\]"),
    ],
)
def test_engine_rejects_bad_setup(zones, rules, message):
    with pytest.raises(ValueError, match=message):
        RuleEngine("cam", zones, rules)


def test_rule_params_are_bounded_and_rules_check_their_params_type():
    with pytest.raises(ValueError, match="min_score must lie within"):
        RuleParams({"stall"}, min_score=2)
    with pytest.raises(ValueError, match="classes must not be empty"):
        RuleParams(set())
    with pytest.raises(TypeError, match="needs BikeRuleParams"):
        BikeMisparkedRule(RuleParams({"bicycle"}))
    with pytest.raises(KeyError, match="unknown rule kind 'graffiti'"):
        make_rule("graffiti", RuleParams({"x"}))


@pytest.fixture
def loitering_rule():
    @register_rule
    class LoiteringRule:
        """A new kind added from outside: any person in a watch area, at once."""

        kind = "loitering"
        zone_kinds = frozenset({ZoneKind.WATCH_AREA})
        params_type = RuleParams

        def __init__(self, params: RuleParams):
            self.params = params

        def evaluate(self, frame: FrameView) -> list[Finding]:
            return [Finding(z.zone_id, frozenset({t.track_id}), frame.ts_s)
                    for t in frame.tracks if t.class_name in self.params.classes
                    for z in frame.zones_of(t, [ZoneKind.WATCH_AREA], active=True)]

    yield LoiteringRule
    del RULES["loitering"]


def test_registered_rules_plug_into_the_engine(loitering_rule):
    assert set(RULES) >= {"stall_occupation", "bike_misparked", "loitering"}
    engine = RuleEngine("cam", ZONES, [make_rule("loitering", RuleParams({"person"}))])
    events = run(engine, [(0, [Obj(9, (100, 100, 140, 200), cls="person", stationary=False)])])
    assert [(e.kind, e.event, e.zone_id) for _, e in events] == [("loitering", "opened", "apron")]
    with pytest.raises(ValueError, match="already registered"):
        register_rule(type("Other", (), {"kind": "loitering"}))


# --- tracker + engine together -------------------------------------------------------------------------

def test_tracker_and_engine_report_one_stall_through_an_occlusion():
    """Raw detections at 1 fps: a stall stands 8 minutes (hidden by a bus for a minute) while people pass."""
    tracker = Tracker(TrackerConfig())
    no_vending = Zone("nv", "no_vending", NO_VENDING.polygon)  # default inertia: 3 samples
    engine = RuleEngine("cam-1", [no_vending], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=300,
                                                                               end_grace_s=120))],
                        class_names=["stall", "person"])
    events = []
    for t in range(0, 700):
        rows = []
        if t < 480 and not 180 <= t < 240:
            rows.append((100, 700, 200, 800, 0.35 if t % 7 == 3 else 0.8, 0))  # now and then a weak score
        rows.append((20 + 15 * (t % 60), 600, 60 + 15 * (t % 60), 700, 0.9, 1))  # a pedestrian walking by
        out = tracker.update(make_detections(rows), T0.timestamp() + t)
        events += [(t, e) for e in engine.update(T0 + timedelta(seconds=t), out, FRAME_WH)]
    stall_events = [(t, e.event, e.track_ids) for t, e in events]
    assert [ev for _, ev, _ in stall_events][0] == "opened" and [ev for _, ev, _ in stall_events][-1] == "closed"
    assert [ev for _, ev, _ in stall_events].count("opened") == 1
    assert {ids for _, _, ids in stall_events} == {(1,)}
    opened_t, closed_t = stall_events[0][0], stall_events[-1][0]
    assert 300 <= opened_t <= 305  # 300 s after it entered (zone inertia adds a few samples)
    assert 479 + 120 < closed_t <= 479 + 122
    assert events[-1][1].last_seen == T0 + timedelta(seconds=479)
