"""The flight mosaic: frames rendered from a known ground pattern land at the right raster pixels.

Frames are rendered by ray casting with `datasets.synth.camera.PinholeCamera` (an independent implementation of
the pinhole camera: X east, Y north, its ``pitch_deg`` = the negative of DJI's) over an analytic ground pattern:
a smooth texture with coloured discs at known east/north points. The mosaic must put each disc where
`en_to_raster_px` says its centre is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from datasets.synth.camera import PinholeCamera
from detector.geo.camera import CameraIntrinsics, CameraPose, frame_footprint, ground_to_pixel, gsd_m
from detector.geo.mosaic import (
    BACKGROUND_BGR,
    Mosaic,
    MosaicFrame,
    build_mosaic,
    en_to_raster_px,
    ground_to_image_homography,
    raster_px_to_en,
)

DISC_RADIUS_M = 1.5
DISC_COLOURS_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
                    (255, 255, 255), (0, 0, 0)]
# irregular offsets (metres) from the ground point at the image centre, one disc per colour
DISC_OFFSETS_M = [(-12.0, 7.5), (6.5, 14.0), (15.0, -9.0), (-4.0, -15.5), (1.0, 2.0), (21.0, 6.0), (-19.0, -6.0),
                  (9.0, -1.5)]


def ground_pattern(en_m: np.ndarray, discs: list[tuple[tuple[float, float], tuple[int, int, int]]]) -> np.ndarray:
    """(N, 2) ground points → (N, 3) BGR: a smooth texture in 60..160 (never a disc colour) plus the discs."""
    e, n = en_m[:, 0], en_m[:, 1]
    out = np.stack([110 + 50 * np.sin(e / 2.3), 110 + 50 * np.sin(n / 3.1), 110 + 40 * np.cos((e + n) / 4.7)], axis=1)
    for (de, dn), colour in discs:
        out[np.hypot(e - de, n - dn) <= DISC_RADIUS_M] = colour
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def render(intr: CameraIntrinsics, pose: CameraPose, discs) -> np.ndarray:
    """Ray-cast every pixel centre with the synthetic renderer's own camera; sky is a flat light blue."""
    assert pose.roll_deg == 0.0  # the two cameras' roll signs are not compared here
    cam = PinholeCamera(intr.width_px, intr.height_px, intr.fx_px, height_m=pose.up_m, pitch_deg=-pose.pitch_deg,
                        yaw_deg=pose.yaw_deg, x_m=pose.east_m, y_m=pose.north_m)
    u, v = np.meshgrid(np.arange(intr.width_px) + 0.5, np.arange(intr.height_px) + 0.5)
    ground = cam.ground_point(np.stack([u.ravel(), v.ravel()], axis=1))
    sky = ~np.isfinite(ground[:, 0])
    pixels = ground_pattern(np.where(sky[:, None], 0.0, ground[:, :2]), discs)
    pixels[sky] = (235, 206, 135)
    return pixels.reshape(intr.height_px, intr.width_px, 3)


def discs_around_view(intr: CameraIntrinsics, pose: CameraPose) -> list:
    """The test discs placed around the ground point seen at the image centre."""
    cam = PinholeCamera(intr.width_px, intr.height_px, intr.fx_px, height_m=pose.up_m, pitch_deg=-pose.pitch_deg,
                        yaw_deg=pose.yaw_deg, x_m=pose.east_m, y_m=pose.north_m)
    centre = cam.ground_point(np.array([[intr.cx_px, intr.cy_px]]))[0, :2]
    return [((centre[0] + de, centre[1] + dn), c) for (de, dn), c in zip(DISC_OFFSETS_M, DISC_COLOURS_BGR)]


def disc_in_frame(intr: CameraIntrinsics, pose: CameraPose, centre_en, margin_px: float = 3.0) -> bool:
    a = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    ring = np.column_stack([centre_en[0] + DISC_RADIUS_M * np.cos(a), centre_en[1] + DISC_RADIUS_M * np.sin(a),
                            np.zeros_like(a)])
    uv, in_front = ground_to_pixel(intr, pose, ring)
    return bool(in_front.all() and (uv >= margin_px).all() and (uv[:, 0] <= intr.width_px - margin_px).all()
                and (uv[:, 1] <= intr.height_px - margin_px).all())


def colour_centroid(mosaic: Mosaic, colour, near_px: np.ndarray, window_px: float) -> tuple[np.ndarray, int]:
    """Centroid (continuous raster px) of the pixels within 30 of `colour` in every channel near `near_px`."""
    x0, y0 = (max(0, int(v - window_px)) for v in near_px)
    x1, y1 = (int(v + window_px) + 1 for v in near_px)
    match = (np.abs(mosaic.image[y0:y1, x0:x1].astype(int) - colour) <= 30).all(axis=2)
    ys, xs = np.nonzero(match)
    xs, ys = xs + x0, ys + y0
    keep = np.hypot(xs + 0.5 - near_px[0], ys + 0.5 - near_px[1]) <= window_px
    if not keep.any():
        return np.full(2, np.nan), 0
    return np.array([xs[keep].mean() + 0.5, ys[keep].mean() + 0.5]), int(keep.sum())


def assert_discs_placed(mosaic: Mosaic, discs, tol_px: float = 0.5) -> int:
    radius_px = DISC_RADIUS_M / mosaic.m_per_px
    checked = 0
    for centre_en, colour in discs:
        expected = mosaic.en_to_px(np.array([centre_en]))[0]
        x, y = int(expected[0]), int(expected[1])
        assert np.abs(mosaic.image[y, x].astype(int) - colour).max() <= 30, (centre_en, mosaic.image[y, x], colour)
        centroid, n = colour_centroid(mosaic, colour, expected, radius_px + 5)
        # the disc covers about pi r² pixels; a misplaced or smeared disc would not
        assert n > 0.7 * math.pi * radius_px**2, (centre_en, n)
        assert np.hypot(*(centroid - expected)) <= tol_px, (centre_en, centroid, expected)
        checked += 1
    return checked


INTR = CameraIntrinsics.from_hfov(70.0, 640, 480)


@pytest.mark.parametrize("yaw_deg, pitch_deg", [(0.0, -90.0), (37.0, -90.0), (0.0, -60.0), (37.0, -60.0),
                                                (-120.0, -45.0)])
def test_known_ground_points_land_at_their_raster_pixels(yaw_deg, pitch_deg):
    pose = CameraPose(east_m=3.0, north_m=-4.0, up_m=50.0, yaw_deg=yaw_deg, pitch_deg=pitch_deg)
    discs = [d for d in discs_around_view(INTR, pose) if disc_in_frame(INTR, pose, d[0])]
    assert len(discs) >= 5  # the table of offsets fits the view
    mosaic = build_mosaic([MosaicFrame(render(INTR, pose, discs), INTR, pose)], m_per_px=0.1)
    assert assert_discs_placed(mosaic, discs) == len(discs)
    assert mosaic.n_frames_used == 1 and not mosaic.skipped


def test_a_frame_seeing_the_horizon_contributes_only_its_ground():
    """Pitch -10 with a 55° vertical field of view: the top of the frame is sky; the mosaic covers exactly the
    footprint (clipped at the default 500 m range), never the mirrored sky behind the camera."""
    pose = CameraPose(east_m=0.0, north_m=0.0, up_m=50.0, yaw_deg=37.0, pitch_deg=-10.0)
    image = render(INTR, pose, [])
    mosaic = build_mosaic([MosaicFrame(image, INTR, pose)], m_per_px=2.0)
    footprint = frame_footprint(INTR, pose)
    area_m2 = 0.5 * abs(np.dot(footprint[:, 0], np.roll(footprint[:, 1], 1))
                        - np.dot(footprint[:, 1], np.roll(footprint[:, 0], 1)))
    assert mosaic.covered.sum() * 4.0 == pytest.approx(area_m2, rel=0.03)
    sky = (mosaic.image == (235, 206, 135)).all(axis=2)
    assert sky.sum() == 0
    # behind the camera (south-west of it, opposite the view) nothing is drawn
    behind = mosaic.en_to_px(np.array([[-20.0 * math.sin(math.radians(37)), -20.0 * math.cos(math.radians(37))]]))
    bx, by = (int(v) for v in behind[0])
    if 0 <= bx < mosaic.width_px and 0 <= by < mosaic.height_px:
        assert not mosaic.covered[by, bx] and tuple(mosaic.image[by, bx]) == BACKGROUND_BGR


@pytest.mark.parametrize("order", ["nadir_first", "nadir_last"])
def test_the_view_closest_to_nadir_wins_whatever_the_order(order):
    intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
    a = MosaicFrame(np.full((100, 100, 3), (255, 0, 0), np.uint8), intr, CameraPose(0, 0, 50, 0, -90))
    b = MosaicFrame(np.full((100, 100, 3), (0, 0, 255), np.uint8), intr, CameraPose(30, 0, 50, 0, -90))
    frames = [a, b] if order == "nadir_first" else [b, a]
    mosaic = build_mosaic(frames, m_per_px=1.0)
    for (east, north), winner in [((10.0, 0.0), a), ((20.0, 20.0), b), ((-40.0, -40.0), a), ((70.0, 0.0), b)]:
        x, y = (int(v) for v in mosaic.en_to_px(np.array([[east, north]]))[0])
        assert tuple(mosaic.image[y, x]) == tuple(winner.image[0, 0]), (east, north)
        assert frames[mosaic.source_index[y, x]] is winner


def test_frames_without_overlap_keep_a_gap_of_background():
    intr = CameraIntrinsics.from_hfov(90.0, 200, 200)
    poses = [CameraPose(0.0, 0.0, 50.0, 0.0, -90.0), CameraPose(300.0, 40.0, 50.0, 37.0, -90.0)]
    discs = [((-10.0, 12.0), (0, 0, 255)), ((5.0, -20.0), (0, 255, 0)), ((290.0, 50.0), (255, 0, 0)),
             ((315.0, 30.0), (0, 255, 255))]
    frames = [MosaicFrame(render(intr, p, discs), intr, p) for p in poses]
    mosaic = build_mosaic(frames, m_per_px=0.5)
    assert assert_discs_placed(mosaic, discs) == 4
    x, y = (int(v) for v in mosaic.en_to_px(np.array([[150.0, 20.0]]))[0])
    assert not mosaic.covered[y, x] and tuple(mosaic.image[y, x]) == BACKGROUND_BGR and mosaic.source_index[y, x] == -1
    assert mosaic.n_frames_used == 2
    # the raster spans both footprints and no more than a pixel beyond them
    every = np.concatenate([frame_footprint(intr, p) for p in poses])
    e0, n0, e1, n1 = mosaic.en_bounds_m
    assert (e0, n1) == pytest.approx((every[:, 0].min(), every[:, 1].max()))
    assert every[:, 0].max() <= e1 < every[:, 0].max() + 0.5 and n0 <= every[:, 1].min() < n0 + 0.5


@pytest.mark.parametrize("max_px, m_per_px", [(64, None), (300, None), (64, 0.01), (4096, 0.5)])
def test_max_px_is_respected(max_px, m_per_px):
    intr = CameraIntrinsics.from_hfov(80.0, 160, 90)
    frames = [MosaicFrame(np.full((90, 160, 3), 128, np.uint8), intr, CameraPose(40.0 * i, 0.0, 60.0, 20.0 * i, -70.0))
              for i in range(3)]
    mosaic = build_mosaic(frames, m_per_px=m_per_px, max_px=max_px)
    assert 0 < max(mosaic.image.shape[:2]) <= max_px
    every = np.concatenate([frame_footprint(f.intrinsics, f.pose) for f in frames])
    extent_m = max(np.ptp(every[:, 0]), np.ptp(every[:, 1]))
    assert mosaic.m_per_px >= extent_m / max_px * (1 - 1e-9)
    if m_per_px is not None:
        assert mosaic.m_per_px == pytest.approx(max(m_per_px, extent_m / max_px))
    assert mosaic.covered.mean() > 0.3


def test_default_resolution_is_never_finer_than_the_finest_frame():
    intr = CameraIntrinsics.from_hfov(70.0, 320, 240)
    frames = [MosaicFrame(np.full((240, 320, 3), 90, np.uint8), intr, CameraPose(0.0, 10.0 * i, alt, 0.0, -90.0))
              for i, alt in enumerate((50.0, 80.0))]
    fine = build_mosaic(frames, max_px=100_000)
    assert fine.m_per_px == pytest.approx(50.0 / intr.fx_px)  # nadir GSD = height / focal
    assert fine.m_per_px == pytest.approx(gsd_m(intr, frames[0].pose))
    coarse = build_mosaic(frames, max_px=200)
    assert coarse.m_per_px > fine.m_per_px and max(coarse.image.shape[:2]) == 200


def test_empty_input_and_frames_without_ground_give_an_empty_mosaic_with_counted_reasons():
    empty = build_mosaic([])
    assert empty.image.shape == (0, 0, 3) and empty.en_bounds_m == (0.0, 0.0, 0.0, 0.0) and empty.n_frames_used == 0
    intr = CameraIntrinsics.from_hfov(60.0, 64, 48)
    image = np.zeros((48, 64, 3), np.uint8)
    sky = MosaicFrame(image, intr, CameraPose(0.0, 0.0, 50.0, 0.0, 20.0))
    underground = MosaicFrame(image, intr, CameraPose(0.0, 0.0, -1.0, 0.0, -90.0))
    nothing = build_mosaic([sky, underground, sky], m_per_px=0.5)
    assert nothing.image.size == 0 and nothing.m_per_px == 0.5
    assert dict(nothing.skipped) == {"no_ground_in_view": 2, "camera_not_above_ground": 1}
    some = build_mosaic([sky, MosaicFrame(image, intr, CameraPose(0.0, 0.0, 30.0, 0.0, -90.0))])
    assert some.image.size > 0 and dict(some.skipped) == {"no_ground_in_view": 1} and some.n_frames_used == 1


@pytest.mark.parametrize("kwargs, message", [({"m_per_px": 0.0}, "m_per_px"), ({"m_per_px": math.nan}, "m_per_px"),
                                             ({"max_px": 0}, "max_px")])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_mosaic([], **kwargs)


@pytest.mark.parametrize("image, message", [
    (np.zeros((48, 64), np.uint8), "uint8 BGR"),
    (np.zeros((48, 64, 3), np.float32), "uint8 BGR"),
    (np.zeros((64, 48, 3), np.uint8), "48x64 px but its intrinsics describe 64x48"),
])
def test_a_frame_must_match_its_intrinsics(image, message):
    with pytest.raises(ValueError, match=message):
        MosaicFrame(image, CameraIntrinsics.from_hfov(60.0, 64, 48), CameraPose(0.0, 0.0, 50.0, 0.0, -90.0))


@pytest.mark.parametrize("yaw, pitch, roll, ground_up_m", [(0.0, -90.0, 0.0, 0.0), (37.0, -60.0, 3.0, 0.0),
                                                            (-120.0, -30.0, -3.0, 2.5), (180.0, -45.0, 0.0, -4.0)])
def test_the_homography_agrees_with_the_camera_model(yaw, pitch, roll, ground_up_m):
    intr = CameraIntrinsics(1280, 720, 1000.0, 1001.0, 630.0, 365.0)
    pose = CameraPose(12.0, -7.0, 50.0, yaw, pitch, roll)
    en = frame_footprint(intr, pose, ground_up_m)
    h = ground_to_image_homography(intr, pose, ground_up_m)
    p = np.column_stack([en, np.ones(len(en))]) @ h.T
    uv, in_front = ground_to_pixel(intr, pose, np.column_stack([en, np.full(len(en), ground_up_m)]))
    assert in_front.all()
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], uv, atol=1e-6)


def test_raster_and_metres_round_trip():
    bounds, m = (-12.5, 3.0, 87.5, 53.0), 0.25
    en = np.array([[-12.5, 53.0], [87.5, 3.0], [10.0, 20.0]])
    px = en_to_raster_px(en, bounds, m)
    np.testing.assert_allclose(px, [[0.0, 0.0], [400.0, 200.0], [90.0, 132.0]])
    np.testing.assert_allclose(raster_px_to_en(px, bounds, m), en)
