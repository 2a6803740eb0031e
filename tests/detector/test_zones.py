from datetime import datetime, timezone

import cv2
import numpy as np
import pytest

from detector.schedule import WeeklySchedule
from detector.zones import PolygonZone, Zone, ZoneError, ZoneKind, points_in_polygon, polygon_problems
from tests.conftest import make_detections

SQUARE = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
# A "U" shape: concave, so ray casting has to get the notch right.
U_SHAPE = [(0.1, 0.1), (0.4, 0.1), (0.4, 0.6), (0.6, 0.6), (0.6, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]


@pytest.mark.parametrize(
    "points, problems",
    [
        (SQUARE, []),
        (U_SHAPE, []),
        (SQUARE + [SQUARE[0]], []),  # explicitly closed ring
        ([(0, 0), (1, 0), (0, 1)], []),  # corners of the frame are inside [0, 1]
        ([(0.1, 0.1), (0.9, 0.1)], ["needs at least 3 points, got 2"]),
        ([(0.1, 0.1), (1.2, 0.1), (0.5, -0.5)],
         ["point 1 (1.2, 0.1) lies outside [0, 1]", "point 2 (0.5, -0.5) lies outside [0, 1]"]),
        ([(0.1, 0.1), (0.5, 0.1), (0.5, 0.1), (0.5, 0.5)], ["points 1 and 2 are the same (zero-length segment 1–2)"]),
        ([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)], ["has zero area (all points lie on one line)"]),
        ([(0, 0), (1, 1), (1, 0), (0, 1)], ["self-intersecting at segment 2–3 (crosses segment 0–1)"]),
        # A bow-tie whose crossing is between segments 1–2 and 3–4.
        ([(0.1, 0.1), (0.5, 0.1), (0.9, 0.9), (0.9, 0.1), (0.5, 0.9)],
         ["self-intersecting at segment 3–4 (crosses segment 1–2)"]),
        # A vertex touching another segment is an intersection too.
        ([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.5, 0.1), (0.1, 0.9)],
         ["self-intersecting at segment 2–3 (crosses segment 0–1)",
          "self-intersecting at segment 3–4 (crosses segment 0–1)"]),
        # Doubling back along the same line.
        ([(0.1, 0.1), (0.9, 0.1), (0.5, 0.1), (0.5, 0.9)],
         ["self-intersecting at segment 1–2 (folds back onto segment 0–1)",
          "self-intersecting at segment 2–3 (crosses segment 0–1)"]),
        ([(0.1, "x"), (0.9, 0.1), (0.5, 0.9)], ["every point must be a pair [x, y] of numbers"]),
    ],
)
def test_polygon_problems_table(points, problems):
    assert polygon_problems(points) == problems


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="no_vending", polygon=[(0, 0), (1, 1), (1, 0), (0, 1)]),
         "zone 'z-7': polygon: self-intersecting at segment 2–3"),
        (dict(kind="no_vending", polygon=[(0, 0), (1, 0)]), "zone 'z-7': polygon: needs at least 3 points"),
        (dict(kind="parking", polygon=SQUARE), "zone 'z-7': unknown kind 'parking'"),
        (dict(kind="no_vending", polygon=SQUARE, inertia_samples=0), "zone 'z-7': inertia_samples"),
        (dict(kind="no_vending", polygon=SQUARE, anchor="top"), "zone 'z-7': anchor"),
    ],
)
def test_zone_errors_name_the_zone(kwargs, message):
    with pytest.raises(ZoneError, match=message):
        Zone("z-7", **kwargs)


def test_zone_kind_accepts_strings_and_strips_a_closing_point():
    zone = Zone("a", "bike_parking", SQUARE + [SQUARE[0]])
    assert zone.kind is ZoneKind.BIKE_PARKING
    assert len(zone.polygon) == 4


@pytest.mark.parametrize("polygon", [SQUARE, U_SHAPE])
def test_points_in_polygon_matches_opencv(polygon):
    rng = np.random.default_rng(1)
    poly_px = np.asarray(polygon, np.float32) * 640
    pts = rng.uniform(0, 640, (500, 2)).astype(np.float32)
    expected = np.array([cv2.pointPolygonTest(poly_px, (float(x), float(y)), True) for x, y in pts])
    clear = np.abs(expected) > 1e-3  # points on an edge may fall either way
    assert np.array_equal(points_in_polygon(pts, poly_px)[clear], (expected > 0)[clear])


@pytest.mark.parametrize(
    "anchor, box, inside",
    [
        # The box straddles the zone's top edge at y=200 px (0.2 of 1000): the anchor decides.
        ("bottom_center", (300, 100, 400, 260), True),  # stands at y=260: inside
        ("center", (300, 100, 400, 260), False),  # centre y=180: outside
        ("bottom_center", (300, 100, 400, 190), False),
        ("bottom_center", (150, 500, 250, 600), True),  # straddles the left edge x=200; anchor x=200+
        ("bottom_center", (100, 500, 220, 600), False),  # anchor x=160
    ],
)
def test_membership_is_decided_by_the_anchor_only(anchor, box, inside):
    zone = PolygonZone(Zone("z", "no_vending", SQUARE, inertia_samples=1, anchor=anchor), (1000, 1000))
    assert zone.trigger(make_detections([box + (0.9, 0)])).tolist() == [inside]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("IIIIII", "FFTTTT"),  # entering takes 3 agreeing samples
        ("IIOIII", "FFFFFT"),  # one outside sample restarts the count
        ("IIIOOIOOO", "FFTTTTTTF"),  # flickering at the edge does not leave; three outs do
        ("OOOO", "FFFF"),
    ],
)
def test_inertia_needs_n_consecutive_samples(raw, expected):
    zone = PolygonZone(Zone("z", "no_vending", SQUARE, inertia_samples=3), (1000, 1000))
    inside_box, outside_box = (450, 400, 550, 500, 0.9, 0, 1), (450, 850, 550, 950, 0.9, 0, 1)
    got = ""
    for r in raw:
        d = make_detections([inside_box if r == "I" else outside_box], tracker=True)
        got += "T" if zone.trigger(d)[0] else "F"
    assert got == expected


def test_inertia_is_kept_per_track_and_can_be_forgotten():
    zone = PolygonZone(Zone("z", "no_vending", SQUARE, inertia_samples=2), (1000, 1000))
    both = make_detections([(450, 400, 550, 500, 0.9, 0, 1), (450, 400, 550, 500, 0.9, 0, 2)], tracker=True)
    only_1 = make_detections([(450, 400, 550, 500, 0.9, 0, 1)], tracker=True)
    zone.trigger(only_1)
    assert zone.trigger(both).tolist() == [True, False]  # track 2 has had one sample only
    zone.forget([1])
    assert not zone.is_inside(1) and zone.is_inside(2) is False
    assert zone.trigger(only_1).tolist() == [False]  # starts over
    assert zone.tracked_ids == {1, 2}


def test_untracked_detections_get_the_raw_answer():
    zone = PolygonZone(Zone("z", "no_vending", SQUARE, inertia_samples=5), (1000, 1000))
    assert zone.trigger(make_detections([(450, 400, 550, 500, 0.9, 0)])).tolist() == [True]
    assert zone.trigger(make_detections([])).tolist() == []


def test_polygon_scales_with_the_frame_and_resizing_keeps_membership():
    zone = PolygonZone(Zone("z", "no_vending", SQUARE, inertia_samples=2), (1000, 500))
    d = make_detections([(450, 200, 550, 250, 0.9, 0, 3)], tracker=True)  # anchor (500, 250): inside
    zone.trigger(d)
    assert zone.trigger(d).tolist() == [True]
    assert np.allclose(zone.polygon_px[2], [800, 400])
    zone.set_frame_size((2000, 1000))
    assert zone.is_inside(3)
    # The same relative place in the bigger frame is still inside; the old pixel place is now outside.
    assert zone.contains(make_detections([(900, 400, 1100, 500, 0.9, 0)])).tolist() == [True]
    assert zone.contains(make_detections([(100, 100, 200, 150, 0.9, 0)])).tolist() == [False]


def test_zone_active_follows_its_schedule():
    evenings = WeeklySchedule.from_windows([{"days": ["mon-fri"], "start": "18:00", "end": "22:00"}], "Asia/Shanghai")
    zone = Zone("market", "vending_allowed", SQUARE, schedule=evenings)
    assert zone.active(datetime(2026, 6, 1, 11, 0, tzinfo=timezone.utc))  # Monday 19:00 in Shanghai
    assert not zone.active(datetime(2026, 6, 1, 15, 0, tzinfo=timezone.utc))  # 23:00
    assert Zone("nv", "no_vending", SQUARE).active(datetime(2026, 6, 1, tzinfo=timezone.utc))
