import itertools
import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from datasets.synth.camera import PinholeCamera
from detector.geo.camera import (
    CameraIntrinsics,
    CameraPose,
    frame_footprint,
    ground_to_pixel,
    gsd_m,
    pixel_rays,
    pixel_to_ground,
)
from detector.geo.profiles import PROFILES, UnknownCameraError, get_profile

YAWS_DEG = (0.0, 37.0, -120.0, 180.0)
PITCHES_DEG = (-90.0, -60.0, -45.0, -30.0)
ROLLS_DEG = (0.0, 3.0, -3.0)
ALTS_M = (30.0, 50.0, 80.0)
POSE_GRID = list(itertools.product(YAWS_DEG, PITCHES_DEG, ROLLS_DEG, ALTS_M))


def mavic3_video() -> CameraIntrinsics:
    """Mavic 3 Hasselblad (17.3 mm wide sensor, 12.29 mm lens) still intrinsics scaled to 16:9 video."""
    return CameraIntrinsics.from_sensor(17.3, 12.29, 5280, 3956).scaled(1280, 720)


def pose(yaw=0.0, pitch=-90.0, roll=0.0, alt=50.0, east=12.0, north=-7.0) -> CameraPose:
    return CameraPose(east_m=east, north_m=north, up_m=alt, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)


def pixel_grid(intr: CameraIntrinsics, n: int = 9) -> np.ndarray:
    u, v = np.meshgrid(np.linspace(0, intr.width_px, n), np.linspace(0, intr.height_px, n))
    return np.stack([u.ravel(), v.ravel()], axis=1)


# --- intrinsics -------------------------------------------------------------------------------------


def test_constructors_agree_on_one_camera():
    # Mavic 3: 12.29 mm on 17.3 x 13 mm is sold as "24 mm equivalent"; diagonal equivalence gives 24.6 mm.
    by_sensor = CameraIntrinsics.from_sensor(17.3, 12.29, 5280, 3956)
    f35 = 12.29 * math.hypot(36, 24) / math.hypot(17.3, 13.0)
    by_f35 = CameraIntrinsics.from_35mm_equivalent(f35, 5280, 3956)
    by_hfov = CameraIntrinsics.from_hfov(by_sensor.hfov_deg, 5280, 3956)
    assert by_f35.fx_px == pytest.approx(by_sensor.fx_px, rel=2e-3)  # 5280x3956 is 4:3 within 0.1 %
    assert by_hfov.fx_px == pytest.approx(by_sensor.fx_px, rel=1e-12)
    assert (by_sensor.cx_px, by_sensor.cy_px) == (2640.0, 1978.0)
    assert by_sensor.fx_px == by_sensor.fy_px


@pytest.mark.parametrize(
    "size, expected_cy, height_cropped",
    [
        ((2640, 1978), 989.0, False),  # plain resize
        ((3840, 2160), 1080.0, True),  # 16:9 video: full width kept, top and bottom cropped
        ((1280, 720), 360.0, True),
    ],
)
def test_scaled_keeps_the_width_and_crops_the_height(size, expected_cy, height_cropped):
    still = CameraIntrinsics.from_sensor(17.3, 12.29, 5280, 3956)
    video = still.scaled(*size)
    assert (video.width_px, video.height_px) == size
    assert video.cy_px == pytest.approx(expected_cy)
    assert video.hfov_deg == pytest.approx(still.hfov_deg)
    assert video.fx_px / video.fy_px == pytest.approx(1.0)
    if height_cropped:
        assert video.vfov_deg < still.vfov_deg - 10.0
    else:
        assert video.vfov_deg == pytest.approx(still.vfov_deg)


@pytest.mark.parametrize(
    "build",
    [
        lambda: CameraIntrinsics.from_sensor(0.0, 12.0, 100, 100),
        lambda: CameraIntrinsics.from_35mm_equivalent(-24.0, 100, 100),
        lambda: CameraIntrinsics.from_hfov(180.0, 100, 100),
        lambda: CameraIntrinsics(0, 100, 50.0, 50.0, 0.0, 50.0),
        lambda: CameraIntrinsics(100, 100, float("nan"), 50.0, 50.0, 50.0),
        lambda: CameraPose(0.0, 0.0, float("inf"), 0.0, -90.0),
    ],
)
def test_bad_parameters_raise_one_clear_error(build):
    with pytest.raises(ValueError):
        build()


# --- orientation --------------------------------------------------------------------------------


@pytest.mark.parametrize("yaw, pitch, roll, alt", POSE_GRID[::7])
def test_rotation_is_proper_orthonormal(yaw, pitch, roll, alt):
    r = pose(yaw, pitch, roll, alt).rotation
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "yaw, pitch, roll, uv, expected_dir",
    [
        (0.0, 0.0, 0.0, (50, 50), (0, 1, 0)),  # centre looks north at the horizon
        (90.0, 0.0, 0.0, (50, 50), (1, 0, 0)),  # yaw 90 = east
        (-90.0, 0.0, 0.0, (50, 50), (-1, 0, 0)),
        (180.0, 0.0, 0.0, (50, 50), (0, -1, 0)),
        (0.0, -90.0, 0.0, (50, 50), (0, 0, -1)),  # nadir
        (0.0, -90.0, 0.0, (50, 0), (0, 1, -1)),  # nadir, yaw 0: the top of the image is north
        (0.0, -90.0, 0.0, (100, 50), (1, 0, -1)),  # ... and the right is east
        (90.0, -90.0, 0.0, (50, 0), (1, 0, -1)),  # nadir, yaw 90: the top is east
        (0.0, 0.0, 0.0, (50, 0), (0, 1, 1)),  # pitch 0: the top edge looks up
        (0.0, -45.0, 0.0, (50, 50), (0, 1, -1)),
        (0.0, 0.0, 90.0, (100, 50), (0, 1, -1)),  # roll +90: the right side of the image looks down
        (0.0, 0.0, -90.0, (100, 50), (0, 1, 1)),
    ],
)
def test_rays_follow_the_dji_angle_convention(yaw, pitch, roll, uv, expected_dir):
    intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
    ray = pixel_rays(intr, pose(yaw, pitch, roll), np.array([uv], float))[0]
    expected = np.asarray(expected_dir, float) / np.linalg.norm(expected_dir)
    np.testing.assert_allclose(ray, expected, atol=1e-12)


def test_small_positive_roll_lowers_the_right_edge():
    intr = mavic3_video()
    level = pixel_rays(intr, pose(pitch=0.0), [[intr.width_px, intr.cy_px]])[0]
    rolled = pixel_rays(intr, pose(pitch=0.0, roll=3.0), [[intr.width_px, intr.cy_px]])[0]
    assert level[2] == pytest.approx(0.0, abs=1e-12) and rolled[2] < -0.01


# --- projection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("yaw, pitch, roll, alt", POSE_GRID)
def test_ground_to_pixel_and_back_within_a_centimetre(yaw, pitch, roll, alt):
    intr, p = mavic3_video(), pose(yaw, pitch, roll, alt)
    hits = pixel_to_ground(intr, p, pixel_grid(intr), max_range_m=math.inf)
    ground = np.column_stack([hits.en_m[hits.valid], np.zeros(hits.valid.sum())])
    assert len(ground) >= 45  # at -30° the top rows may see the horizon, never more than half the frame
    uv, in_front = ground_to_pixel(intr, p, ground)
    assert in_front.all()
    back = pixel_to_ground(intr, p, uv, max_range_m=math.inf)
    assert back.valid.all()
    assert np.abs(back.en_m - ground[:, :2]).max() < 0.01
    np.testing.assert_allclose(uv, pixel_grid(intr)[hits.valid], atol=1e-6)
    np.testing.assert_allclose(hits.range_m[hits.valid], np.linalg.norm(ground - p.center_m, axis=1), rtol=1e-9)


@pytest.mark.parametrize("yaw, pitch, roll, alt", POSE_GRID)
def test_agrees_with_the_synthetic_renderers_independent_camera(yaw, pitch, roll, alt):
    intr, p = mavic3_video(), pose(yaw, pitch, roll, alt)
    # datasets/synth/camera.py: X east, Y north, Z up; pitch = downward tilt (the negative of DJI pitch).
    ref = PinholeCamera(
        intr.width_px, intr.height_px, intr.fx_px, height_m=alt, pitch_deg=-pitch, yaw_deg=yaw, roll_deg=roll,
        x_m=p.east_m, y_m=p.north_m,
    )
    rng = np.random.default_rng(int(alt))
    ground = ref.ground_point(rng.uniform([0, intr.height_px * 0.3], [intr.width_px, intr.height_px], (50, 2)))
    ground = ground[np.isfinite(ground).all(axis=1)]
    assert len(ground) > 20
    ours, in_front = ground_to_pixel(intr, p, ground)
    theirs, depth = ref.project(ground)
    assert in_front.all() and (depth > 0).all()
    assert np.abs(ours - theirs).max() < 0.01


def test_points_behind_the_camera_are_not_in_front():
    intr = mavic3_video()
    uv, in_front = ground_to_pixel(intr, pose(yaw=0.0, pitch=-30.0), np.array([[12.0, -100.0, 0.0], [12.0, 50.0, 0.0]]))
    assert in_front.tolist() == [False, True]
    assert np.isnan(uv[0]).all() and np.isfinite(uv[1]).all()


def test_rays_that_miss_the_ground_are_reported_with_a_reason_never_a_point():
    intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
    p = pose(pitch=-10.0, alt=50.0)
    uv = np.array([[50, 0], [50, 40], [50, 50], [50, 100], [np.nan, 10]], float)
    hits = pixel_to_ground(intr, p, uv, max_range_m=200.0)
    # Row v looks pitch - atan((v - cy) / f) above the horizon: +35°, +1.3°, -10° (288 m away), -55°.
    angles = -10.0 - np.degrees(np.arctan((uv[:4, 1] - 50) / 50))
    assert angles[0] > 0 and angles[1] > 0 and 50 / math.sin(math.radians(-angles[2])) > 200
    assert hits.reason == ("above_horizon", "above_horizon", "beyond_max_range", "", "non_finite_pixel")
    assert hits.valid.tolist() == [False, False, False, True, False]
    assert np.isnan(hits.en_m[~hits.valid]).all() and np.isnan(hits.range_m[~hits.valid]).all()
    assert hits.reason_counts() == {"above_horizon": 2, "beyond_max_range": 1, "non_finite_pixel": 1}
    assert hits.range_m[3] == pytest.approx(50.0 / math.sin(math.radians(55.0)))


def test_a_camera_at_or_below_the_ground_is_an_error():
    with pytest.raises(ValueError, match="not above the ground"):
        pixel_to_ground(mavic3_video(), pose(alt=10.0), [[0.0, 0.0]], ground_up_m=10.0)


# --- footprint and GSD --------------------------------------------------------------------------


@pytest.mark.parametrize("yaw", YAWS_DEG)
@pytest.mark.parametrize("alt", ALTS_M)
def test_nadir_footprint_is_the_analytic_rectangle(yaw, alt):
    intr, p = mavic3_video(), pose(yaw=yaw, pitch=-90.0, alt=alt)
    half_w, half_h = alt * intr.width_px / 2 / intr.fx_px, alt * intr.height_px / 2 / intr.fy_px
    psi = math.radians(yaw)
    right, forward = np.array([math.cos(psi), -math.sin(psi)]), np.array([math.sin(psi), math.cos(psi)])
    signs = ((-1, 1), (1, 1), (1, -1), (-1, -1))
    corners = [p.center_m[:2] + sx * half_w * right + sy * half_h * forward for sx, sy in signs]
    fp = frame_footprint(intr, p)
    assert fp.shape[1] == 2 and len(fp) >= 4
    assert Polygon(fp).exterior.is_ccw
    expected = Polygon(corners)
    assert shapely.symmetric_difference(Polygon(fp), expected).area < 1e-6 * expected.area


@pytest.mark.parametrize(
    "yaw, pitch, roll", [(0.0, -10.0, 0.0), (37.0, -20.0, 3.0), (-120.0, -5.0, -3.0), (180.0, 0.0, 0.0)]
)
def test_oblique_footprint_seeing_the_horizon_is_clipped_to_max_range(yaw, pitch, roll):
    intr, p, max_range_m = CameraIntrinsics.from_hfov(80.0, 160, 90), pose(yaw, pitch, roll, alt=50.0), 300.0
    fp = Polygon(frame_footprint(intr, p, max_range_m=max_range_m))
    assert fp.is_valid and fp.exterior.is_ccw and fp.area > 0
    # Oracle: a ground point is in the footprint iff it projects inside the image and lies within range.
    e, n = np.meshgrid(np.linspace(-320, 320, 161), np.linspace(-320, 320, 161))
    pts = np.column_stack([e.ravel() + p.east_m, n.ravel() + p.north_m, np.zeros(e.size)])
    uv, in_front = ground_to_pixel(intr, p, pts)
    with np.errstate(invalid="ignore"):
        in_width = (uv[:, 0] >= 0) & (uv[:, 0] <= intr.width_px)
        inside_img = in_front & in_width & (uv[:, 1] >= 0) & (uv[:, 1] <= intr.height_px)
    truth = inside_img & (np.linalg.norm(pts - p.center_m, axis=1) <= max_range_m)
    ours = shapely.contains_xy(fp, pts[:, 0], pts[:, 1])
    near_edge = shapely.distance(fp.exterior, shapely.points(pts[:, :2])) < 1.0
    assert truth.sum() > 50
    assert (ours == truth)[~near_edge].all()


def test_footprint_is_empty_when_max_range_is_below_the_altitude():
    assert frame_footprint(mavic3_video(), pose(alt=50.0), max_range_m=40.0).shape == (0, 2)


@pytest.mark.parametrize("pitch", PITCHES_DEG)
def test_gsd_is_the_ground_area_of_the_centre_pixel(pitch):
    intr, p = mavic3_video(), pose(pitch=pitch, yaw=37.0, alt=50.0)
    c = np.array([intr.cx_px, intr.cy_px])
    corners = c + np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    area = Polygon(pixel_to_ground(intr, p, corners).en_m).area
    assert gsd_m(intr, p) == pytest.approx(math.sqrt(area), rel=1e-4)
    if pitch == -90.0:
        assert gsd_m(intr, p) == pytest.approx(50.0 / intr.fx_px)


def test_gsd_raises_when_the_centre_sees_the_sky():
    with pytest.raises(ValueError, match="does not see the ground"):
        gsd_m(mavic3_video(), pose(pitch=5.0))


# --- profiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_every_profile_reproduces_the_makers_published_field_of_view(profile):
    # DJI rounds its figures (84°, "24 mm", "about 77°"): each row must land within that rounding.
    assert profile.dfov_deg == pytest.approx(profile.published_dfov_deg, abs=2.0)
    assert profile.f35_mm == pytest.approx(profile.published_f35_mm, rel=0.03)
    assert profile.source and profile.published and profile.derived and profile.exif_models
    intr = profile.intrinsics()
    assert (intr.width_px, intr.height_px) == (profile.still_width_px, profile.still_height_px)
    assert profile.sensor_width_mm / profile.sensor_height_mm == pytest.approx(intr.width_px / intr.height_px, rel=0.02)


@pytest.mark.parametrize(
    "query, name",
    [
        ("phantom_4_pro", "phantom_4_pro"),
        ("FC6310", "phantom_4_pro"),
        ("fc6310s", "phantom_4_pro"),
        ("DJI FC6310", "phantom_4_pro"),
        ("L2D-20c", "mavic_3"),
        ("l2d20c", "mavic_3"),
        ("Mavic 3", "mavic_3"),
        ("FC3411", "air_2s"),
        ("ZenmuseP1", "zenmuse_p1_35mm"),
        ("FC220", "mavic_pro"),
    ],
)
def test_profiles_are_found_by_name_or_exif_model(query, name):
    assert get_profile(query).name == name


def test_an_unknown_camera_lists_the_known_ones():
    with pytest.raises(UnknownCameraError, match="unknown camera 'FC9999'.*mavic_3.*FC6310") as info:
        get_profile("FC9999")
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_profile_video_intrinsics_keep_the_full_width():
    p = get_profile("mavic_3")
    video = p.intrinsics(3840, 2160)
    assert video.hfov_deg == pytest.approx(p.intrinsics().hfov_deg)
    assert (video.cx_px, video.cy_px) == (1920.0, 1080.0)
    with pytest.raises(ValueError, match="both"):
        p.intrinsics(3840, None)
