import itertools
import math

import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from detector.geo.camera import CameraIntrinsics, pixel_rays, pixel_to_ground
from detector.geo.enu import LocalFrame
from detector.geo.georef import (
    CONTACT_SWITCH_DEPRESSION_DEG,
    contact_switch_deg,
    georeference,
    pose_from_geo,
)
from detector.types import Detections, FrameGeo

LOCAL = LocalFrame(31.2304, 121.4737, 4.0)
INTR = CameraIntrinsics.from_hfov(72.0, 1280, 720)


def geo_at(east_m=0.0, north_m=0.0, alt_m=50.0, yaw=0.0, pitch=-90.0, roll=0.0, local=LOCAL) -> FrameGeo:
    lat, lon, _ = local.to_geodetic(east_m, north_m, 0.0)
    return FrameGeo(float(lat), float(lon), alt_m=alt_m, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)


def dets(xyxy, names=None, scores=None) -> Detections:
    xyxy = np.asarray(xyxy, float).reshape(-1, 4)
    names = names or ["bicycle"] * len(xyxy)
    scores = scores or [0.8] * len(xyxy)
    return Detections(xyxy=xyxy, confidence=scores, class_id=[0] * len(xyxy), data={"class_name": np.array(names)})


def box_with_anchor(u, v, anchor, half_w=6.0, half_h=4.0):
    """A box whose centre (or bottom-centre) lies at pixel (u, v)."""
    if anchor == "centre":
        return [u - half_w, v - half_h, u + half_w, v + half_h]
    return [u - half_w, v - 2 * half_h, u + half_w, v]


# --- enu ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lat0, lon0, h0", [(0.0, 0.0, 0.0), (31.2304, 121.4737, 4.0), (59.9, 10.7, 120.0), (-45.0, 170.0, -20.0)]
)
def test_enu_round_trip_is_within_a_millimetre_over_5_km(lat0, lon0, h0):
    frame = LocalFrame(lat0, lon0, h0)
    rng = np.random.default_rng(1)
    e, n = rng.uniform(-5000, 5000, 200), rng.uniform(-5000, 5000, 200)
    u = rng.uniform(-50, 300, 200)
    lat, lon, h = frame.to_geodetic(e, n, u)
    e2, n2, u2 = frame.to_enu(lat, lon, h)
    assert np.abs(np.stack([e2 - e, n2 - n, u2 - u])).max() < 1e-3


def test_enu_matches_known_distances_and_keeps_shapes():
    frame = LocalFrame(31.2304, 121.4737, 4.0)
    e, n, u = frame.to_enu(np.array([[31.2304 + 0.001]]), np.array([[121.4737]]))
    assert e.shape == (1, 1)
    assert n[0, 0] == pytest.approx(110.9, abs=0.1) and abs(e[0, 0]) < 1e-6 and abs(u[0, 0]) < 0.01
    lonlat = frame.en_to_lonlat(np.array([[0.0, 0.0], [100.0, 0.0]]))
    assert lonlat[0].tolist() == pytest.approx([121.4737, 31.2304])
    assert lonlat[1, 0] > 121.4737 and lonlat[1, 1] == pytest.approx(31.2304, abs=1e-6)


@pytest.mark.parametrize(
    "args", [(91.0, 0.0, 0.0), (0.0, 181.0, 0.0), (float("nan"), 0.0, 0.0), (0.0, 0.0, float("inf"))]
)
def test_local_frame_rejects_bad_origins(args):
    with pytest.raises(ValueError, match="LocalFrame"):
        LocalFrame(*args)


# --- pose ---------------------------------------------------------------------------------------


def test_pose_from_geo_recovers_the_local_position_and_takes_relative_altitude_as_up():
    pose, reason = pose_from_geo(geo_at(120.0, -340.0, alt_m=62.0, yaw=37.0, pitch=-60.0, roll=2.0), LOCAL)
    assert reason == ""
    assert (pose.east_m, pose.north_m) == pytest.approx((120.0, -340.0), abs=1e-3)
    assert (pose.up_m, pose.yaw_deg, pose.pitch_deg, pose.roll_deg) == (62.0, 37.0, -60.0, 2.0)


@pytest.mark.parametrize(
    "geo, ground_up_m, reason",
    [
        (None, 0.0, "no_telemetry"),
        (FrameGeo(31.2304, 121.4737, alt_m=None, yaw_deg=0.0, pitch_deg=-90.0), 0.0, "missing_alt"),
        (FrameGeo(31.2304, 121.4737, alt_m=50.0, yaw_deg=None, pitch_deg=-90.0), 0.0, "missing_yaw"),
        (FrameGeo(31.2304, 121.4737, alt_m=50.0, yaw_deg=0.0, pitch_deg=float("nan")), 0.0, "missing_pitch"),
        (FrameGeo(31.2304, 121.4737, alt_m=0.0, yaw_deg=0.0, pitch_deg=-90.0), 0.0, "not_above_ground"),
        (FrameGeo(31.2304, 121.4737, alt_m=30.0, yaw_deg=0.0, pitch_deg=-90.0), 30.0, "not_above_ground"),
    ],
)
def test_frames_without_a_usable_pose_skip_every_box_with_a_reason(geo, ground_up_m, reason):
    assert pose_from_geo(geo, LOCAL, ground_up_m) == (None, reason)
    found, skipped = georeference(dets([[0, 0, 10, 10], [20, 20, 40, 40]]), geo, INTR, LOCAL, 3, 0.1, ground_up_m)
    assert found == [] and skipped == {reason: 2}


def test_missing_roll_is_level():
    geo = FrameGeo(31.2304, 121.4737, alt_m=50.0, yaw_deg=0.0, pitch_deg=-90.0, roll_deg=None)
    assert pose_from_geo(geo, LOCAL)[0].roll_deg == 0.0


# --- georeference -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yaw, pitch, roll, alt",
    list(itertools.product((0.0, 37.0, -120.0), (-90.0, -60.0, -30.0), (0.0, 3.0), (30.0, 80.0))),
)
def test_flat_objects_are_placed_where_they_lie(yaw, pitch, roll, alt):
    """Boxes built around projected ground points (the anchor the module picks) come back to those points."""
    geo = geo_at(15.0, -25.0, alt_m=alt, yaw=yaw, pitch=pitch, roll=roll)
    pose, _ = pose_from_geo(geo, LOCAL)
    rng = np.random.default_rng(7)
    # Ground points in view: project a pixel grid down (the geometry itself is tested in test_camera).
    uv = rng.uniform([40, 60], [INTR.width_px - 40, INTR.height_px - 20], (40, 2))
    truth = pixel_to_ground(INTR, pose, uv)
    keep = truth.valid
    depression = np.degrees(np.arcsin(-pixel_rays(INTR, pose, uv)[:, 2]))
    # georeference picks the anchor by the box centre's ray, a fraction of a pixel from the anchor pixel here:
    # points within 1° of the switch are left out so that both agree on it.
    keep &= np.abs(depression - CONTACT_SWITCH_DEPRESSION_DEG) > 1.0
    anchors = np.where(depression >= CONTACT_SWITCH_DEPRESSION_DEG, "centre", "bottom")
    boxes = [box_with_anchor(u, v, a, half_w=2.0, half_h=0.5) for (u, v), a in zip(uv[keep], anchors[keep])]
    found, skipped = georeference(dets(boxes), geo, INTR, LOCAL, frame_index=11, t_s=2.5)
    assert not skipped and len(found) == keep.sum() > 10
    placed = np.array([[g.east_m, g.north_m] for g in found])
    assert np.abs(placed - truth.en_m[keep]).max() < 0.01
    for g, (e, n) in zip(found, truth.en_m[keep]):
        assert g.range_m == pytest.approx(math.dist((e, n, 0.0), pose.center_m), rel=1e-6)
        assert (g.frame_index, g.t_s, g.class_name, g.score) == (11, 2.5, "bicycle", pytest.approx(0.8))


def test_near_nadir_uses_the_centre_and_oblique_the_bottom_centre():
    intr = CameraIntrinsics.from_hfov(90.0, 1000, 1000)
    box = [[450, 400, 550, 600]]  # centre (500, 500), bottom-centre (500, 600)
    nadir, _ = georeference(dets(box), geo_at(pitch=-90.0, alt_m=50.0), intr, LOCAL, 0, 0.0)
    oblique, _ = georeference(dets(box), geo_at(pitch=-20.0, alt_m=50.0), intr, LOCAL, 0, 0.0)
    assert (nadir[0].east_m, nadir[0].north_m) == pytest.approx((0.0, 0.0), abs=1e-6)  # the centre, under the camera
    # Oblique: row 600 is atan(0.2) = 11.3° below the optical axis, so 31.3° below the horizon.
    assert oblique[0].north_m == pytest.approx(50.0 / math.tan(math.radians(20.0) + math.atan(0.2)), rel=1e-6)


def test_wide_low_structures_keep_the_centre_anchor_in_shallower_views():
    intr = CameraIntrinsics.from_hfov(90.0, 1000, 1000)
    box = [[450, 400, 550, 600]]  # centre row 500 on the optical axis: 35° below the horizon at pitch -35
    geo = geo_at(pitch=-35.0, alt_m=50.0)
    structure = georeference(dets(box, ["illegal_structure"]), geo, intr, LOCAL, 0, 0.0)[0][0]
    bike = georeference(dets(box), geo, intr, LOCAL, 0, 0.0)[0][0]
    assert structure.north_m == pytest.approx(50.0 / math.tan(math.radians(35.0)), rel=1e-6)  # its centre
    assert bike.north_m == pytest.approx(50.0 / math.tan(math.radians(35.0) + math.atan(0.2)), rel=1e-6)  # bottom
    assert contact_switch_deg("illegal_structure") < CONTACT_SWITCH_DEPRESSION_DEG == contact_switch_deg("bicycle")


def test_footprint_is_the_projected_box_outline():
    intr = CameraIntrinsics.from_hfov(90.0, 1000, 1000)
    found, _ = georeference(dets([[400, 300, 600, 500]]), geo_at(pitch=-90.0, alt_m=50.0, yaw=0.0), intr, LOCAL, 0, 0.0)
    fp = Polygon(found[0].footprint_en_m)
    # f = 500 px at 50 m: 0.1 m per px; x 400..600 -> east -10..10, y 300..500 -> north 20..0.
    expected = Polygon([(-10, 0), (10, 0), (10, 20), (-10, 20)])
    assert fp.exterior.is_ccw and len(found[0].footprint_en_m) == 8
    assert fp.symmetric_difference(expected).area < 1e-6
    assert fp.covers(Point(found[0].east_m, found[0].north_m))


def test_rays_that_miss_the_ground_are_counted_not_placed():
    intr = CameraIntrinsics.from_hfov(90.0, 1000, 1000)
    geo = geo_at(pitch=-10.0, alt_m=50.0)
    boxes = [
        [480, 0, 520, 100],  # bottom row 100: 10 - 38.7 < 0 -> 28.7° above the horizon
        [480, 500, 520, 560],  # bottom at 560: 10 + 6.8 = 16.8° down -> 173 m (beyond 150 m)
        [480, 900, 520, 1000],  # centre row 950: 10 + atan(0.9) = 52° down, near-nadir anchor -> 63 m
        [500, 900, 500, 1000],  # zero width
    ]
    found, skipped = georeference(dets(boxes), geo, intr, LOCAL, 0, 0.0, max_range_m=150.0)
    assert skipped == {"above_horizon": 1, "beyond_max_range": 1, "degenerate_footprint": 1}
    assert len(found) == 1
    assert found[0].range_m == pytest.approx(50.0 / math.sin(math.radians(10.0) + math.atan(0.9)), rel=1e-6)


def test_a_box_reaching_over_the_horizon_keeps_only_the_ground_part_of_its_outline():
    intr = CameraIntrinsics.from_hfov(90.0, 1000, 1000)
    found, skipped = georeference(dets([[450, 100, 550, 900]]), geo_at(pitch=-5.0, alt_m=50.0), intr, LOCAL, 0, 0.0)
    assert not skipped
    fp = found[0].footprint_en_m
    assert np.isfinite(fp).all() and np.linalg.norm(fp, axis=1).max() <= 500.0


def test_detections_need_class_names():
    with pytest.raises(ValueError, match="class_name"):
        georeference(Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0]), geo_at(), INTR, LOCAL, 0, 0.0)


def test_no_detections_is_nothing_to_do():
    assert georeference(Detections.empty(), None, INTR, LOCAL, 0, 0.0) == ([], {})
