import math
import random

import numpy as np
import pytest

from detector.geo.enu import LocalFrame
from detector.geo.merge import match_findings, merge_detections, weighted_median
from detector.geo.types import GroundDetection

LOCAL = LocalFrame(30.2741, 120.1551, 10.0)
SIZES_M = {"bicycle": (1.7, 0.6), "stall": (2.5, 2.5), "illegal_structure": (10.0, 6.0)}


def sighting(frame, east, north, cls="bicycle", score=0.8, range_m=50.0, size=None) -> GroundDetection:
    w, h = size or SIZES_M[cls]
    fp = np.array([[east - w / 2, north - h / 2], [east + w / 2, north - h / 2], [east + w / 2, north + h / 2],
                   [east - w / 2, north + h / 2]])
    return GroundDetection(frame, 0.5 * frame, cls, score, np.array([frame, 0, frame + 10, 10.0]), east, north, fp,
                           range_m)


def seen_in_frames(east, north, cls="bicycle", frames=range(8), noise_m=0.0, seed=0, **kw):
    """An object seen once in each frame, its ground point jittered uniformly within a disc of noise_m."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        r, a = noise_m * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        out.append(sighting(f, east + r * math.cos(a), north + r * math.sin(a), cls, **kw))
    return out


@pytest.mark.parametrize("cls", ["bicycle", "stall", "illegal_structure"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_object_seen_in_8_frames_with_1_m_noise_is_one_finding(cls, seed):
    found = merge_detections(seen_in_frames(40.0, -12.0, cls, noise_m=1.0, seed=seed), LOCAL, "f1")
    assert len(found) == 1
    f = found[0]
    assert f.n_frames == 8 and len(f.members) == 8 and f.class_name == cls
    assert math.dist((f.east_m, f.north_m), (40.0, -12.0)) < 0.6
    assert (f.first_t_s, f.last_t_s) == (0.0, 3.5)


@pytest.mark.parametrize("cls, gap_m", [("bicycle", 3.0), ("bicycle", 1.5), ("stall", 3.0), ("illegal_structure", 8.0)])
def test_neighbouring_objects_stay_apart(cls, gap_m):
    dets = seen_in_frames(0.0, 0.0, cls, noise_m=0.3, seed=3) + seen_in_frames(gap_m, 0.0, cls, noise_m=0.3, seed=4)
    found = merge_detections(dets, LOCAL, "f1")
    assert len(found) == 2 and all(f.n_frames == 8 for f in found)
    for f, truth_east in zip(sorted(found, key=lambda f: f.east_m), (0.0, gap_m)):
        assert all(abs(m.east_m - truth_east) <= 0.3 for m in f.members)  # no sighting of the other object


def test_a_10_m_shed_with_1_m_jitter_stays_one_because_the_radius_grows_with_size():
    dets = seen_in_frames(5.0, 5.0, "illegal_structure", noise_m=1.0, seed=5, frames=range(0, 16, 2))
    dets += seen_in_frames(5.0, 5.0, "illegal_structure", noise_m=1.0, seed=6, frames=range(1, 16, 2))
    assert len(merge_detections(dets, LOCAL, "f1")) == 1
    # The same jitter with bicycle-sized footprints (and the bicycle radius) does not hold together.
    small = [sighting(d.frame_index, d.east_m, d.north_m, "illegal_structure", size=(1.0, 1.0)) for d in dets]
    assert len(merge_detections(small, LOCAL, "f1", radius_m=0.5)) > 1


def test_a_row_of_parked_bicycles_does_not_chain_into_one():
    dets = [d for k in range(6) for d in seen_in_frames(0.7 * k, 0.0, "bicycle", frames=range(5), noise_m=0.2, seed=k)]
    found = merge_detections(dets, LOCAL, "f1")
    assert len(found) == 6 and all(f.n_frames == 5 for f in found)


def test_classes_are_merged_separately():
    dets = seen_in_frames(0.0, 0.0, "bicycle") + seen_in_frames(0.2, 0.0, "stall")
    found = merge_detections(dets, LOCAL, "f1")
    assert [(f.class_name, f.n_frames) for f in found] == [("bicycle", 8), ("stall", 8)]


def test_ids_are_stable_and_do_not_depend_on_input_order():
    dets = (seen_in_frames(30.0, 0.0, frames=range(4, 8), seed=1) + seen_in_frames(0.0, 0.0, frames=range(2, 6), seed=2)
            + seen_in_frames(0.0, 9.0, "stall", seed=3))
    first = merge_detections(dets, LOCAL, "flight-7")
    for seed in range(5):
        shuffled = dets[:]
        random.Random(seed).shuffle(shuffled)
        again = merge_detections(shuffled, LOCAL, "flight-7")
        assert [(f.finding_id, f.east_m, f.north_m, f.n_frames) for f in again] == [
            (f.finding_id, f.east_m, f.north_m, f.n_frames) for f in first
        ]
    # Numbered per class in order of first sighting: the bicycle at 0 m was seen from frame 2, the other from 4.
    assert [(f.finding_id, round(f.east_m)) for f in first] == [
        ("flight-7:bicycle:1", 0), ("flight-7:bicycle:2", 30), ("flight-7:stall:1", 0),
    ]


def test_best_sighting_is_the_highest_score_then_the_shortest_range():
    dets = [
        sighting(0, 0.0, 0.0, score=0.7, range_m=40.0),
        sighting(1, 0.3, 0.0, score=0.9, range_m=80.0),
        sighting(2, 0.1, 0.1, score=0.9, range_m=55.0),
    ]
    (f,) = merge_detections(dets, LOCAL, "f1")
    assert f.best is dets[2] and f.score == pytest.approx(0.9)
    np.testing.assert_array_equal(f.footprint_en_m, dets[2].footprint_en_m)


def test_the_merged_point_is_a_score_weighted_median_robust_to_an_outlier():
    dets = seen_in_frames(0.0, 0.0, "illegal_structure", frames=range(7)) + [sighting(7, 3.5, 0.0, "illegal_structure")]
    (f,) = merge_detections(dets, LOCAL, "f1")
    assert f.n_frames == 8 and (f.east_m, f.north_m) == (0.0, 0.0)  # a mean would sit at 0.44 m
    two = [sighting(0, 0.0, 0.0, score=0.9), sighting(1, 0.8, 0.0, score=0.3)]
    (g,) = merge_detections(two, LOCAL, "f1")
    assert g.east_m == 0.0  # the confident view wins


@pytest.mark.parametrize(
    "values, weights, expected",
    [
        ([1.0], [0.5], 1.0),
        ([0.0, 10.0], [1.0, 1.0], 5.0),
        ([0.0, 10.0], [1.0, 3.0], 10.0),
        ([3.0, 1.0, 2.0], [0, 0, 0], 2.0),
    ],
)
def test_weighted_median_table(values, weights, expected):
    assert weighted_median(np.array(values), np.array(weights, float)) == expected


def test_wgs84_output_matches_the_local_frame():
    (f,) = merge_detections(seen_in_frames(120.0, -45.0), LOCAL, "f1")
    lat, lon, _ = LOCAL.to_geodetic(f.east_m, f.north_m, 0.0)
    assert (f.lat_deg, f.lon_deg) == pytest.approx((float(lat), float(lon)))
    e, n, _ = LOCAL.to_enu(f.footprint_lonlat_deg[:, 1], f.footprint_lonlat_deg[:, 0])
    np.testing.assert_allclose(np.column_stack([e, n]), f.footprint_en_m, atol=1e-6)


def test_bad_radius_is_an_error():
    with pytest.raises(ValueError, match="bicycle"):
        merge_detections(seen_in_frames(0.0, 0.0), LOCAL, "f1", radius_m={"bicycle": -1.0})


def test_nothing_in_nothing_out():
    assert merge_detections([], LOCAL, "f1") == []
    assert match_findings([], []) == {}


# --- a later flight -----------------------------------------------------------------------------


def findings_at(points, flight_id, local=LOCAL, cls="bicycle"):
    """One finding per (east, north) in `local`, each from its own well-separated group of sightings."""
    dets = [d for k, (e, n) in enumerate(points) for d in seen_in_frames(e, n, cls, frames=[k])]
    return merge_detections(dets, local, flight_id)


def test_a_later_flight_updates_the_objects_it_sees_again():
    old = findings_at([(0.0, 0.0), (20.0, 0.0), (40.0, 0.0)], "old")
    # The second flight took off 300 m away: its own local frame, positions off by up to 3 m of GPS bias.
    other = LocalFrame(*LOCAL.to_geodetic(300.0, 0.0, 0.0)[:2], 10.0)
    new = findings_at([(-300.0 + 2.0, 1.0), (-300.0 + 20.5, 0.0), (-300.0 + 70.0, 0.0)], "new", local=other)
    assert match_findings(new, old) == {"new:bicycle:1": "old:bicycle:1", "new:bicycle:2": "old:bicycle:2"}


def test_matching_is_one_to_one_nearest_first_and_per_class():
    old = findings_at([(0.0, 0.0)], "old")
    new = findings_at([(3.0, 0.0), (1.0, 0.0)], "new")  # both near the one old finding
    assert match_findings(new, old) == {"new:bicycle:2": "old:bicycle:1"}
    stalls = findings_at([(0.5, 0.0)], "new", cls="stall")
    assert match_findings(stalls, old) == {}
    assert match_findings(new, old, radius_m=0.5) == {}
    assert match_findings(new, old, radius_m={"bicycle": 2.0}) == {"new:bicycle:2": "old:bicycle:1"}
