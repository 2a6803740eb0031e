import math

import numpy as np
import pytest
from shapely.geometry import Polygon

from detector.geo.camera import CameraIntrinsics
from detector.geo.enu import LocalFrame
from detector.geo.sampling import select_frames
from detector.types import FrameGeo

LOCAL = LocalFrame(22.5431, 114.0579, 0.0)
INTR = CameraIntrinsics.from_hfov(72.0, 640, 360)  # 16:9 video frame


def geo(east_m=0.0, north_m=0.0, alt_m=50.0, yaw=0.0, pitch=-90.0) -> FrameGeo:
    lat, lon, _ = LOCAL.to_geodetic(east_m, north_m, 0.0)
    return FrameGeo(float(lat), float(lon), alt_m=alt_m, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0)


def straight_flight(speed_mps=8.0, alt_m=50.0, yaw=0.0, pitch=-90.0, duration_s=30.0, fps=10.0):
    t_s = np.arange(0.0, duration_s, 1.0 / fps)
    psi = math.radians(yaw)
    geos = [geo(speed_mps * t * math.sin(psi), speed_mps * t * math.cos(psi), alt_m, yaw, pitch) for t in t_s]
    return t_s, geos


def overlap_share(new_fp, old_fp) -> float:
    new, old = Polygon(new_fp), Polygon(old_fp)
    return new.intersection(old).area / new.area


@pytest.mark.parametrize("overlap_frac", [0.3, 0.6, 0.8])
@pytest.mark.parametrize("alt_m", [30.0, 50.0, 80.0])
@pytest.mark.parametrize("yaw", [0.0, 90.0, 37.0])
def test_a_straight_nadir_flight_is_sampled_by_ground_distance(overlap_frac, alt_m, yaw):
    t_s, geos = straight_flight(alt_m=alt_m, yaw=yaw)
    plan = select_frames(t_s, geos, INTR, overlap_frac=overlap_frac, local=LOCAL)
    assert plan.reasons[0] == "first" and plan.indices[0] == 0 and math.isnan(plan.overlap[0])
    assert set(plan.reasons[1:]) == {"overlap"} and not plan.skipped and plan.n_overlap_short == 0
    # Along the direction of travel (the image's up axis when flying where the camera looks) the footprint is
    # the image height on the ground; the first frame that moved more than (1 - overlap) of it is kept.
    length_m = alt_m * INTR.height_px / INTR.fy_px
    step_m = 8.0 / 10.0
    expected_gap_m = (math.floor((1 - overlap_frac) * length_m / step_m + 1e-9) + 1) * step_m
    gaps_m = np.diff(plan.t_s) * 8.0
    np.testing.assert_allclose(gaps_m, expected_gap_m, atol=1e-6)
    for k in range(1, len(plan)):  # the reported overlap is the shapely oracle's
        oracle = overlap_share(plan.footprints_en_m[k], plan.footprints_en_m[k - 1])
        assert plan.overlap[k] == pytest.approx(oracle, abs=1e-6)
        assert overlap_frac - step_m / length_m - 1e-9 <= plan.overlap[k] < overlap_frac


def test_hovering_keeps_one_frame_per_max_interval():
    t_s = np.arange(0.0, 60.0, 1 / 30)
    plan = select_frames(t_s, [geo()] * len(t_s), INTR, max_interval_s=10.0, local=LOCAL)
    assert plan.t_s.round(6).tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert plan.reasons == ("first",) + ("max_interval",) * 5
    np.testing.assert_allclose(plan.overlap[1:], 1.0)


def test_turning_on_the_spot_brings_new_ground_into_view():
    t_s = np.arange(0.0, 9.0, 0.1)  # 20°/s yaw in place, 30° oblique: the view sweeps round
    plan = select_frames(t_s, [geo(yaw=20.0 * t, pitch=-30.0) for t in t_s], INTR, local=LOCAL)
    assert len(plan) >= 4 and set(plan.reasons[1:]) == {"overlap"}


def test_climbing_sees_new_ground_and_descending_does_not():
    t_s = np.arange(0.0, 20.0, 0.1)
    up = select_frames(t_s, [geo(alt_m=20.0 + 5.0 * t) for t in t_s], INTR, local=LOCAL, max_interval_s=30.0)
    down = select_frames(t_s, [geo(alt_m=120.0 - 5.0 * t) for t in t_s], INTR, local=LOCAL, max_interval_s=30.0)
    assert len(up) >= 4 and set(up.reasons[1:]) == {"overlap"}
    assert down.reasons == ("first",)


def test_frames_without_a_usable_pose_are_skipped_and_counted_and_the_first_good_one_is_kept():
    t_s = np.arange(0.0, 1.0, 0.1)
    bad = [
        None,
        None,
        FrameGeo(22.5431, 114.0579, alt_m=None, yaw_deg=0.0, pitch_deg=-90.0),
        FrameGeo(22.5431, 114.0579, alt_m=50.0, yaw_deg=0.0, pitch_deg=None),
        geo(alt_m=0.0),
        geo(pitch=20.0),  # the whole frame above the horizon
    ]
    geos = bad + [geo()] * (len(t_s) - len(bad))
    plan = select_frames(t_s, geos, INTR, local=LOCAL)
    assert plan.indices.tolist() == [6] and plan.reasons == ("first",)
    assert plan.skipped == {
        "no_telemetry": 2, "missing_alt": 1, "missing_pitch": 1, "not_above_ground": 1, "no_ground_in_view": 1,
    }
    assert plan.n_frames == len(t_s)


def test_min_interval_bounds_the_rate_and_reports_short_overlap():
    t_s, geos = straight_flight(speed_mps=40.0, alt_m=20.0, fps=30.0, duration_s=5.0)
    plan = select_frames(t_s, geos, INTR, overlap_frac=0.8, min_interval_s=0.5, local=LOCAL)
    assert np.diff(plan.t_s).min() >= 0.5 - 1e-9
    assert plan.n_overlap_short == len(plan) - 1 > 0


def test_oblique_footprints_stop_at_three_heights():
    t_s, geos = straight_flight(alt_m=40.0, pitch=-30.0, duration_s=10.0)
    plan = select_frames(t_s, geos, INTR, local=LOCAL)
    for k, fp in zip(plan.indices, plan.footprints_en_m):
        centre = np.array([0.0, 8.0 * t_s[k]])
        assert np.linalg.norm(fp - centre, axis=1).max() <= math.sqrt(120.0**2 - 40.0**2) + 1e-6


def test_a_60_s_video_is_planned_quickly():
    import time

    t_s, geos = straight_flight(duration_s=60.0, fps=30.0, pitch=-60.0, yaw=37.0)
    start = time.perf_counter()
    plan = select_frames(t_s, geos, INTR, local=LOCAL)
    assert time.perf_counter() - start < 3.0  # 1800 frames on a shared 2-core machine
    assert 5 < len(plan) < 100


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t_s": [0.0, 1.0]}, "2 poses|shape"),
        ({"t_s": [0.0, 2.0, 1.0]}, "must not decrease"),
        ({"t_s": [0.0, float("nan"), 1.0]}, "not finite"),
        ({"overlap_frac": 1.0}, "overlap_frac"),
        ({"min_interval_s": 5.0, "max_interval_s": 5.0}, "min_interval_s"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"t_s": [0.0, 1.0, 2.0], "geos": [geo()] * 3, "intr": INTR, **kwargs}
    with pytest.raises(ValueError, match=match):
        select_frames(**args)


def test_no_frames_is_an_empty_plan():
    plan = select_frames(np.zeros(0), [], INTR)
    assert len(plan) == 0 and plan.n_frames == 0
