"""Synthetic drone flights with exact truth: a camera flown over a synthetic town, written as a DJI drone would.

There is no real drone footage with truth positions, so this generator makes it: a seeded town
(`datasets.synth.flight_town`) drawn as an orthophoto at a known place (the take-off point, default Shenzhen
Futian) and ground sampling distance, a flight path over it (a straight line or lawnmower legs) at a given
altitude, speed, camera heading, gimbal pitch and roll, and per frame the orthophoto warped into the camera by
the ground-plane homography of `datasets.synth.camera.PinholeCamera` (an implementation independent of the
library's `detector.geo.camera`, so a georeferencing test compares two codes, not one with itself).

It writes, into one folder:

- ``flight.mp4`` (H.264 through PyAV; MPEG-4 Part 2 through OpenCV where no H.264 encoder exists, said in
  `FlightOutput.video_codec`) and ``flight.SRT`` (DJI Mavic 3 style, one cue per frame, optionally covering only
  the first part of the video) — or, in stills mode, ``stills/DJI_NNNN.JPG`` with EXIF GPS and DJI XMP;
- ``baseline.geojson``, ``bike_parking.geojson``, ``no_vending.geojson``, ``grid.geojson`` (`flight_layers`);
- ``truth.json``: every object the flight sees (id, class, centre and footprint in local metres and WGS84,
  how visible it is, in which frames, its violation verdict and grid code), the flight's parameters and every
  frame's camera pose;
- ``orthophoto_preview.jpg`` (the drawn part of the orthophoto, downscaled).

Conventions: angles are DJI's (`yaw_deg` clockwise from north, gimbal `pitch_deg` -90 = nadir, `roll_deg`
positive = right side of the image down); the local frame is east-north-up metres from the take-off point (the
first telemetry sample) at ground level, through `detector.geo.enu.LocalFrame`. `PinholeCamera` takes
``pitch = -DJI pitch`` and the same yaw and roll.

The world is flat (see `flight_town`): roofs have no parallax, so the ground truth of a rooftop shed is where a
ground-plane georeferencing puts it. Frames are made one at a time and streamed to the encoder, so a 60 s
3840 × 2160 flight at 30 fps never holds more than one frame.

Example:
    >>> spec = FlightSpec(frame_size_px=(320, 180), fps=5.0, duration_s=1.0, alt_m=30.0, gsd_m=0.05)
    >>> spec.n_images, round(spec.hfov_deg, 1)
    (5, 70.3)
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from datasets.synth.camera import NEAR_M, PinholeCamera
from datasets.synth.classes import AERIAL_VIOLATION_CLASSES
from datasets.synth.flight_layers import FlightLayersSpec, build_layers
from datasets.synth.flight_sidecars import SrtCue, StillMeta, normalize_yaw_deg, srt_text, still_jpeg_bytes
from datasets.synth.flight_town import Orthophoto, Town, TownDensity, TownObject, lay_out_town
from detector.geo.enu import LocalFrame
from detector.schedule import ScheduleError, load_timezone

__all__ = ["CameraProfile", "CAMERA_PROFILES", "FlightSpec", "FlightProgress", "FlightPoses", "FlightScene",
           "FlightOutput", "flight_poses", "generate_flight", "video_encoder", "TRUTH_FORMAT"]

TRUTH_FORMAT = "streetwatch-synthetic-flight/1"

SKY_BGR = (235, 205, 165)
"""Plain sky above the horizon (oblique views)."""
HAZE_BGR = (200, 196, 190)
"""Colour far ground fades into, and of ground beyond `FlightSpec.max_view_range_m`."""
_VISIBILITY_M = 2500.0  # clear-day aerial haze: 1 - exp(-d / visibility)
_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class CameraProfile:
    """A drone camera: sensor and lens, and what it writes into its files.

    Attributes:
        name: Profile name.
        sensor_width_mm: Sensor width; DJI's 16:9 video modes use the full width.
        focal_mm: Real focal length.
        focal_35mm_mm: 35 mm equivalent (SRT ``focal_len``, EXIF ``FocalLengthIn35mmFilm``).
        f_number: Aperture written into the SRT and EXIF.
        exif_model: EXIF ``Model`` of its stills.
        still_size_px: Native still size (width, height).
    """

    name: str
    sensor_width_mm: float
    focal_mm: float
    focal_35mm_mm: float
    f_number: float
    exif_model: str
    still_size_px: tuple[int, int]

    def focal_px(self, width_px: int) -> float:
        """Focal length in pixels of an image `width_px` wide that spans the whole sensor width."""
        return width_px * self.focal_mm / self.sensor_width_mm


CAMERA_PROFILES: dict[str, CameraProfile] = {
    # DJI Mavic 3 (Hasselblad L2D-20c): 4/3" sensor 17.3 mm wide, 12.29 mm lens (24 mm equivalent), f/2.8,
    # 5280 × 3956 stills: the figures given for the generator in issue 15's brief. The library's own table with
    # cited maker figures is `detector.geo.profiles`; this one only makes files.
    "mavic3": CameraProfile("mavic3", 17.3, 12.29, 24.0, 2.8, "L2D-20c", (5280, 3956)),
}


def video_encoder() -> str:
    """``libx264`` when PyAV has an H.264 encoder, else ``mp4v`` (OpenCV's MPEG-4 Part 2)."""
    try:
        import av

        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # noqa: BLE001 - any failure (no PyAV, no encoder) means the fallback
        return "mp4v"


@dataclass(frozen=True)
class FlightSpec:
    """Everything that decides a synthetic flight; the same spec gives the same files (video bytes aside).

    Attributes:
        seed: Seed of the town and of all noise.
        origin_lat_deg: Latitude of the take-off point (the local frame's origin, the first telemetry sample).
        origin_lon_deg: Longitude of the take-off point.
        ground_alt_m: Height of the ground above sea level (SRT ``abs_alt`` = this + ``rel_alt``).
        alt_m: Flight altitude above the take-off point (SRT ``rel_alt``).
        speed_mps: Ground speed.
        duration_s: Length of the flight (video length).
        yaw_deg: Camera heading, degrees clockwise from north (DJI gimbal yaw).
        pitch_deg: Gimbal pitch, -90 nadir .. -20.
        roll_deg: Gimbal roll, positive = right side of the image down (a crooked gimbal; usually 0).
        course_deg: Direction of flight; None flies along the camera heading.
        path: ``line`` (straight from the take-off point) or ``lawnmower`` (legs along `course`, stepping right).
        leg_length_m: Length of a lawnmower leg.
        leg_spacing_m: Distance between lawnmower legs.
        frame_size_px: Video frame (width, height), even numbers.
        fps: Video frame rate.
        camera: Name of a `CAMERA_PROFILES` entry.
        gsd_m: Orthophoto ground sampling distance, metres per pixel.
        start_local: Local wall-clock time of the first frame, ISO 8601 without zone (as DJI writes it).
        timezone: IANA zone of the place (no-vending schedules are in its local time).
        telemetry_coverage: Share of the video the SRT covers (its first part); 1 covers all.
        write_srt: False writes no SRT (a video without telemetry).
        srt_gimbal: ``auto`` adds gimbal angles to every cue when the camera does not look along the track (or
            pitch is not -90, or roll is not 0), ``always``, or ``never``.
        mode: ``video`` (MP4 + SRT) or ``stills`` (geotagged JPEGs).
        still_interval_s: Time between stills.
        still_size_px: Still size; None for the camera's native size.
        stills_without_gps: Indices (0-based) of stills written without GPS (no fix).
        xmp_longitude_key: ``GpsLongitude`` or DJI's older misspelling ``GpsLongtitude`` in the XMP.
        noise_sigma: Sensor noise per frame, grey levels (deterministic per frame).
        max_view_range_m: Ground farther than this from the drone is haze (oblique views).
        town_half_size_m: Half the side of the town square; None: the smallest multiple of 100 m around what
            the flight sees. Give it to fly several flights over one town (same seed).
        density: Objects on pavements per hectare.
        layers: How the GeoJSON layers are drawn.
        omit_classes: Classes laid out but not drawn (tests: the same frames with and without them).
        video_crf: x264 constant rate factor (quality; lower is better).
        video_preset: x264 preset.
        keep_orthophoto: Also write the drawn orthophoto (``orthophoto.png`` + ``orthophoto.json``).

    Example:
        >>> FlightSpec(alt_m=-5.0)
        Traceback (most recent call last):
        ...
        ValueError: FlightSpec.alt_m must lie within [5, 500] m, got -5.0
    """

    seed: int = 0
    origin_lat_deg: float = 22.5431
    origin_lon_deg: float = 114.0579
    ground_alt_m: float = 12.3
    alt_m: float = 50.0
    speed_mps: float = 8.0
    duration_s: float = 60.0
    yaw_deg: float = 0.0
    pitch_deg: float = -90.0
    roll_deg: float = 0.0
    course_deg: float | None = None
    path: Literal["line", "lawnmower"] = "line"
    leg_length_m: float = 150.0
    leg_spacing_m: float = 40.0
    frame_size_px: tuple[int, int] = (3840, 2160)
    fps: float = 30.0
    camera: str = "mavic3"
    gsd_m: float = 0.02
    start_local: str = "2026-06-01T10:00:00"
    timezone: str = "Asia/Shanghai"
    telemetry_coverage: float = 1.0
    write_srt: bool = True
    srt_gimbal: Literal["auto", "always", "never"] = "auto"
    mode: Literal["video", "stills"] = "video"
    still_interval_s: float = 2.0
    still_size_px: tuple[int, int] | None = None
    stills_without_gps: tuple[int, ...] = ()
    xmp_longitude_key: Literal["GpsLongitude", "GpsLongtitude"] = "GpsLongitude"
    noise_sigma: float = 1.5
    max_view_range_m: float = 400.0
    town_half_size_m: float | None = None
    density: TownDensity = field(default_factory=TownDensity)
    layers: FlightLayersSpec = field(default_factory=FlightLayersSpec)
    omit_classes: tuple[str, ...] = ()
    video_crf: int = 20
    video_preset: str = "veryfast"
    keep_orthophoto: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_size_px", tuple(int(v) for v in self.frame_size_px))
        if self.still_size_px is not None:
            object.__setattr__(self, "still_size_px", tuple(int(v) for v in self.still_size_px))
        object.__setattr__(self, "stills_without_gps", tuple(int(v) for v in self.stills_without_gps))
        object.__setattr__(self, "omit_classes", tuple(self.omit_classes))

        def bad(name: str, what: str) -> ValueError:
            return ValueError(f"FlightSpec.{name} must {what}, got {getattr(self, name)!r}")

        def within(name: str, lo: float, hi: float, unit: str = "") -> None:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise bad(name, f"lie within [{lo:g}, {hi:g}]{' ' + unit if unit else ''}")

        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "be a non-negative integer")
        within("origin_lat_deg", -85.0, 85.0, "deg")
        within("origin_lon_deg", -180.0, 180.0, "deg")
        within("ground_alt_m", -500.0, 9000.0, "m")
        within("alt_m", 5.0, 500.0, "m")
        within("speed_mps", 0.0, 30.0, "m/s")
        within("duration_s", 0.1, 3600.0, "s")
        within("yaw_deg", -360.0, 360.0, "deg")
        within("pitch_deg", -90.0, -20.0, "deg (DJI gimbal pitch: -90 nadir)")
        within("roll_deg", -15.0, 15.0, "deg")
        if self.course_deg is not None:
            within("course_deg", -360.0, 360.0, "deg")
        if self.path not in ("line", "lawnmower"):
            raise bad("path", "be 'line' or 'lawnmower'")
        within("leg_length_m", 1.0, 10000.0, "m")
        within("leg_spacing_m", 1.0, 10000.0, "m")
        for name in ("frame_size_px",) + (("still_size_px",) if self.still_size_px is not None else ()):
            size = getattr(self, name)
            if len(size) != 2 or not all(64 <= v <= 8192 and v % 2 == 0 for v in size):
                raise bad(name, "be (width, height), even numbers within [64, 8192] px")
        within("fps", 1.0, 120.0, "frames/s")
        if self.camera not in CAMERA_PROFILES:
            raise bad("camera", f"be one of {sorted(CAMERA_PROFILES)}")
        within("gsd_m", 0.005, 0.5, "m/px")
        try:
            start = datetime.fromisoformat(self.start_local)
        except (TypeError, ValueError):
            raise bad("start_local", "be an ISO 8601 local time such as '2026-06-01T10:00:00'") from None
        if start.tzinfo is not None:
            raise bad("start_local", "be a local time without zone (the zone is `timezone`)")
        try:
            load_timezone(self.timezone)
        except ScheduleError as exc:
            raise ValueError(f"FlightSpec.timezone: {exc}") from None
        within("telemetry_coverage", 1e-6, 1.0)
        if self.srt_gimbal not in ("auto", "always", "never"):
            raise bad("srt_gimbal", "be 'auto', 'always' or 'never'")
        if self.mode not in ("video", "stills"):
            raise bad("mode", "be 'video' or 'stills'")
        within("still_interval_s", 0.1, 3600.0, "s")
        if any(i < 0 for i in self.stills_without_gps):
            raise bad("stills_without_gps", "hold still indices >= 0")
        if self.xmp_longitude_key not in ("GpsLongitude", "GpsLongtitude"):
            raise bad("xmp_longitude_key", "be 'GpsLongitude' or 'GpsLongtitude'")
        within("noise_sigma", 0.0, 20.0, "grey levels")
        within("max_view_range_m", 50.0, 5000.0, "m")
        if self.town_half_size_m is not None:
            within("town_half_size_m", 20.0, 5000.0, "m")
        unknown = sorted(set(self.omit_classes) - set(AERIAL_VIOLATION_CLASSES))
        if unknown:
            raise bad("omit_classes", f"name classes of {AERIAL_VIOLATION_CLASSES} (unknown: {unknown})")
        if not (isinstance(self.video_crf, int) and 0 <= self.video_crf <= 51):
            raise bad("video_crf", "be an integer within [0, 51]")
        if self.video_preset not in _X264_PRESETS:
            raise bad("video_preset", f"be one of {', '.join(_X264_PRESETS)}")

    @property
    def profile(self) -> CameraProfile:
        return CAMERA_PROFILES[self.camera]

    @property
    def image_size_px(self) -> tuple[int, int]:
        """(width, height) of the images made: video frames or stills."""
        if self.mode == "video":
            return self.frame_size_px
        return self.still_size_px or self.profile.still_size_px

    @property
    def focal_px(self) -> float:
        return self.profile.focal_px(self.image_size_px[0])

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.image_size_px[0] / 2.0 / self.focal_px))

    @property
    def n_images(self) -> int:
        """Video frames, or stills."""
        if self.mode == "video":
            return max(1, round(self.duration_s * self.fps))
        return math.floor(self.duration_s / self.still_interval_s + 1e-9) + 1

    @property
    def start_wall_local(self) -> datetime:
        return datetime.fromisoformat(self.start_local)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values (for the truth file)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


@dataclass(frozen=True)
class FlightProgress:
    """One progress report: `done` of `total` in `stage` (``town``, ``orthophoto``, ``frames``, ``stills``,
    ``truth``)."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True, eq=False)  # holds arrays
class FlightPoses:
    """Camera poses of every image (video frame or still), columnar; angles in DJI's convention.

    Attributes:
        t_s: Time from the start of the video (or of the first still).
        east_m: Drone position east of the take-off point.
        north_m: Drone position north.
        up_m: Altitude above the take-off ground (the ground is flat).
        yaw_deg: Camera heading, (-180, 180].
        pitch_deg: Gimbal pitch.
        roll_deg: Gimbal roll.
        course_deg: Direction of travel, (-180, 180].
    """

    t_s: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    up_m: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    course_deg: np.ndarray

    def __len__(self) -> int:
        return len(self.t_s)

    def camera(self, i: int, width_px: int, height_px: int, focal_px: float) -> PinholeCamera:
        """The synthetic renderer's camera of image `i` (its pitch is the negative of DJI's)."""
        return PinholeCamera(width_px, height_px, focal_px, height_m=float(self.up_m[i]),
                             pitch_deg=-float(self.pitch_deg[i]), yaw_deg=float(self.yaw_deg[i]),
                             roll_deg=float(self.roll_deg[i]), x_m=float(self.east_m[i]),
                             y_m=float(self.north_m[i]))


def _unit(heading_deg: float) -> np.ndarray:
    h = math.radians(heading_deg)
    return np.array([math.sin(h), math.cos(h)])


def _waypoints(spec: FlightSpec) -> np.ndarray:
    """(K, 2) corners of the flight path, east/north metres, starting at the take-off point."""
    total = spec.speed_mps * spec.duration_s
    course = spec.yaw_deg if spec.course_deg is None else spec.course_deg
    fwd, right = _unit(course), _unit(course + 90.0)
    if spec.path == "line" or total <= spec.leg_length_m:
        return np.array([[0.0, 0.0], fwd * max(total, 1e-6)])
    pts = [np.zeros(2)]
    flown, sign = 0.0, 1.0
    while flown < total:
        pts.append(pts[-1] + fwd * sign * spec.leg_length_m)
        flown += spec.leg_length_m
        if flown >= total:
            break
        pts.append(pts[-1] + right * spec.leg_spacing_m)
        flown += spec.leg_spacing_m
        sign = -sign
    return np.array(pts)


def flight_poses(spec: FlightSpec) -> FlightPoses:
    """The pose of every image of the flight: constant speed along the path, constant altitude and gimbal.

    Example:
        >>> poses = flight_poses(FlightSpec(fps=10.0, duration_s=1.0, speed_mps=5.0, yaw_deg=90.0))
        >>> round(float(poses.east_m[-1]), 3), round(float(poses.north_m[-1]), 3)
        (4.5, 0.0)
    """
    n = spec.n_images
    step = 1.0 / spec.fps if spec.mode == "video" else spec.still_interval_s
    t = np.arange(n) * step
    wp = _waypoints(spec)
    seg = np.diff(wp, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    s = np.minimum(spec.speed_mps * t, cum[-1])
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = np.where(seg_len[k] > 0, (s - cum[k]) / np.maximum(seg_len[k], 1e-12), 0.0)
    pos = wp[k] + seg[k] * frac[:, None]
    course_seg = np.degrees(np.arctan2(seg[:, 0], seg[:, 1]))
    course = np.array([normalize_yaw_deg(c) for c in course_seg[k]])
    return FlightPoses(t_s=t, east_m=pos[:, 0], north_m=pos[:, 1], up_m=np.full(n, float(spec.alt_m)),
                       yaw_deg=np.full(n, normalize_yaw_deg(spec.yaw_deg)), pitch_deg=np.full(n, float(spec.pitch_deg)),
                       roll_deg=np.full(n, float(spec.roll_deg)), course_deg=course)


def _ground_homography(cam: PinholeCamera) -> np.ndarray:
    """(3, 3): ground (east_m, north_m, 1) on the plane up = 0 → continuous image coordinates (u, v, 1)."""
    cols = cam.to_camera(cam.center_m + np.eye(3))  # row k: the rotation's column k (world axis k in camera)
    t = cam.to_camera(np.zeros((1, 3)))[0]  # -R @ C
    cx, cy = cam.principal_px
    k = np.array([[cam.focal_px, 0.0, cx], [0.0, cam.focal_px, cy], [0.0, 0.0, 1.0]])
    return k @ np.column_stack([cols[0], cols[1], t])


class _SensorNoise:
    """Light, deterministic per-frame sensor noise for frames of one size.

    One bank of normal noise a little larger than a frame is drawn once; each frame takes the window at offsets
    drawn from its own generator and adds it with saturating 8-bit arithmetic (a 4K frame in ~20 ms, where
    drawing fresh float noise for three channels costs ~10×). The pattern moves from frame to frame as sensor
    noise does; nobody can tell it repeats.
    """

    MARGIN_PX = 64

    def __init__(self, seed: int, size_px: tuple[int, int], sigma: float) -> None:
        w, h = size_px
        self.sigma = float(sigma)
        rng = np.random.default_rng([seed, 6])
        bank = np.rint(rng.standard_normal((h + self.MARGIN_PX, w + self.MARGIN_PX, 3), dtype=np.float32)
                       * np.float32(sigma))
        self._pos = np.clip(bank, 0, 255).astype(np.uint8)
        self._neg = np.clip(-bank, 0, 255).astype(np.uint8)

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.sigma <= 0:
            return image
        h, w = image.shape[:2]
        dy, dx = (int(v) for v in rng.integers(0, self.MARGIN_PX, 2))
        out = cv2.add(image, self._pos[dy:dy + h, dx:dx + w])
        return cv2.subtract(out, self._neg[dy:dy + h, dx:dx + w])


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _border_px(x0: float, y0: float, x1: float, y1: float, per_edge: int) -> np.ndarray:
    """(4 * per_edge, 2) points around a pixel rectangle, clockwise on screen from the top-left corner."""
    a = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    w, h = x1 - x0, y1 - y0
    return np.concatenate([np.column_stack([x0 + a * w, np.full_like(a, y0)]),
                           np.column_stack([np.full_like(a, x1), y0 + a * h]),
                           np.column_stack([x1 - a * w, np.full_like(a, y1)]),
                           np.column_stack([np.full_like(a, x0), y1 - a * h])])


def ground_outline_en_m(cam: PinholeCamera, uv_px: np.ndarray, max_range_m: float) -> np.ndarray:
    """(N, 2) ground points of pixels; rays that meet the ground beyond `max_range_m` from the drone, or not at
    all (above the horizon), stop at that range in their own direction."""
    rays = cam.ray_m(uv_px)
    horiz = np.hypot(rays[:, 0], rays[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(rays[:, 2] < -1e-9, cam.height_m / -rays[:, 2], np.inf)
    far = t * horiz > max_range_m
    pts = cam.center_m[:2] + rays[:, :2] * np.where(far, 0.0, t)[:, None]
    direction = rays[:, :2] / np.maximum(horiz, 1e-12)[:, None]
    pts[far] = cam.center_m[:2] + direction[far] * max_range_m
    return pts


def footprint_en_m(cam: PinholeCamera, max_range_m: float, samples_per_edge: int = 8) -> np.ndarray:
    """(K, 2) ground outline of what the camera sees, cut at `max_range_m` (oblique views)."""
    return ground_outline_en_m(cam, _border_px(0.0, 0.0, cam.width_px, cam.height_px, samples_per_edge),
                               max_range_m)


def _homography_shrink(h_img_to_ortho: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N,) orthophoto pixels per image pixel (square root of the Jacobian's determinant) at image points."""
    p = np.column_stack([uv, np.ones(len(uv))]) @ h_img_to_ortho.T
    w = p[:, 2]
    x, y = p[:, 0] / w, p[:, 1] / w
    hm = h_img_to_ortho
    j00, j01 = (hm[0, 0] - x * hm[2, 0]) / w, (hm[0, 1] - x * hm[2, 1]) / w
    j10, j11 = (hm[1, 0] - y * hm[2, 0]) / w, (hm[1, 1] - y * hm[2, 1]) / w
    return np.sqrt(np.abs(j00 * j11 - j01 * j10))


class FlightScene:
    """A flight ready to be drawn: its poses, its town and the orthophoto tiles it needs.

    Building one lays out the town and draws the orthophoto (the slow part, reported through `progress`); then
    `image(i)` makes image `i` on demand. Use it as a context manager, or call `close`, to remove the tiles.

    Args:
        spec: The flight.
        work_dir: Folder for the orthophoto tiles.
        progress: Called with `FlightProgress` reports.
        town: A town laid out before (`lay_out_town` with the spec's seed), to fly several flights over one town
            in one process without laying it out again; None lays it out.
    """

    def __init__(self, spec: FlightSpec, work_dir: Path,
                 progress: Callable[[FlightProgress], None] | None = None, *, town: Town | None = None) -> None:
        self.spec = spec
        self._progress = progress
        self._crops: dict[int, tuple[int, int, int, int, np.ndarray]] = {}
        self._noise: _SensorNoise | None = None
        self.local = LocalFrame(spec.origin_lat_deg, spec.origin_lon_deg, spec.ground_alt_m)
        self.poses = flight_poses(spec)
        self.width_px, self.height_px = spec.image_size_px
        self.focal_px = spec.focal_px
        self.footprints = [footprint_en_m(self.camera(i), spec.max_view_range_m) for i in range(len(self.poses))]
        reach = max(float(np.abs(fp).max()) for fp in self.footprints)
        half = spec.town_half_size_m or 100.0 * math.ceil((reach + 40.0) / 100.0)
        if town is not None and town.seed != spec.seed:
            raise ValueError(f"the town was laid out from seed {town.seed}, the flight's seed is {spec.seed}")
        self._report("town", 0, 1)
        self.town: Town = town if town is not None else lay_out_town(spec.seed, half, spec.density)
        self._report("town", 1, 1)
        self.ortho = Orthophoto(self.town, spec.gsd_m, Path(work_dir) / "orthophoto",
                                omit_classes=spec.omit_classes)
        tiles = self.ortho.tiles_touching(self.footprints)
        self._report("orthophoto", 0, len(tiles))
        try:
            self.ortho.render(tiles, progress=lambda done, total: self._report("orthophoto", done, total))
        except BaseException:
            self.ortho.close()  # no half-drawn tiles left behind (an interrupted run included)
            raise

    def _report(self, stage: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(FlightProgress(stage, done, total))

    def __enter__(self) -> FlightScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ortho.close()

    def camera(self, i: int) -> PinholeCamera:
        """The camera of image `i`."""
        return self.poses.camera(i, self.width_px, self.height_px, self.focal_px)

    def _bands(self, cam: PinholeCamera, h_img_to_ortho: np.ndarray) -> list[tuple[int, int, int]]:
        """Row bands (first row, end row, orthophoto level) of an image: each band is warped from the orthophoto
        halved as often as its finest part allows without shrinking it 2× or more (no aliasing), so the far
        ground of an oblique view is read from small halved tiles, not from the full-size orthophoto."""
        w, h = cam.width_px, cam.height_px
        step = 8
        rows = np.arange(0, h, step)
        cols = np.array([0.5, w / 2.0, w - 0.5])
        uv = np.column_stack([np.tile(cols, len(rows)), np.repeat(np.minimum(rows + step / 2.0, h - 0.5), 3)])
        rays = cam.ray_m(uv)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(rays[:, 2] < -1e-9, cam.height_m * np.hypot(rays[:, 0], rays[:, 1]) / -rays[:, 2],
                            np.inf)
        valid = dist <= self.spec.max_view_range_m
        shrink = np.where(valid, _homography_shrink(h_img_to_ortho, uv), np.inf)
        finest = shrink.reshape(len(rows), 3).min(axis=1)
        levels = np.where(np.isfinite(finest),
                          np.clip(np.floor(np.log2(np.maximum(finest, 1.0))), 0, Orthophoto.MAX_LEVEL), -1)
        bands: list[tuple[int, int, int]] = []
        for r, level in zip(rows, levels.astype(int)):
            end = min(h, int(r) + step)
            if bands and bands[-1][2] == level and bands[-1][1] == r:
                bands[-1] = (bands[-1][0], end, level)
            else:
                bands.append((int(r), end, int(level)))
        return [b for b in bands if b[2] >= 0]  # rows that see no ground within range stay haze (or sky)

    def image(self, i: int) -> np.ndarray:
        """Image `i` (H, W, 3) uint8 BGR: the orthophoto seen through camera `i`, sky, haze and sensor noise."""
        cam = self.camera(i)
        w, h = self.width_px, self.height_px
        h_ortho = _ground_homography(cam) @ self.ortho.affine_px_to_en()  # continuous orthophoto → image
        h_index = _shift(-0.5, -0.5) @ h_ortho @ _shift(0.5, 0.5)  # pixel indices (OpenCV's) on both sides
        img = np.empty((h, w, 3), np.uint8)
        img[:] = HAZE_BGR
        for r0, r1, level in self._bands(cam, np.linalg.inv(h_ortho)):
            s = 2 ** level
            outline = ground_outline_en_m(cam, _border_px(0.0, r0, w, r1, 8), self.spec.max_view_range_m)
            uv = self.ortho.en_to_px(outline) / s
            size = math.ceil(self.ortho.width_px / s)
            x0, y0 = (int(np.clip(math.floor(v) - 3, 0, size)) for v in uv.min(axis=0))
            x1, y1 = (int(np.clip(math.ceil(v) + 3, 0, size)) for v in uv.max(axis=0))
            if x1 <= x0 or y1 <= y0:
                continue
            x0, y0, src = self._source(level, x0, y0, x1, y1)
            # level-L pixel j is the mean of level-0 pixels s*j .. s*j + s - 1: centred on index s*j + (s - 1)/2
            to_level0 = np.array([[s, 0.0, s * x0 + (s - 1) / 2.0], [0.0, s, s * y0 + (s - 1) / 2.0], [0, 0, 1.0]])
            m = _shift(0.0, -r0) @ h_index @ to_level0
            img[r0:r1] = cv2.warpPerspective(src, m, (w, r1 - r0), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=HAZE_BGR)
        img = self._sky_and_haze(img, cam)
        if self._noise is None:
            self._noise = _SensorNoise(self.spec.seed, (w, h), self.spec.noise_sigma)
        return self._noise.apply(img, np.random.default_rng([self.spec.seed, 5, i]))

    def _source(self, level: int, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, np.ndarray]:
        """Orthophoto pixels covering [x0, x1) × [y0, y1) at `level`, as (x0, y0, array) of a possibly larger box.

        Consecutive frames need nearly the same area, so a box with a margin is assembled once and reused until
        a frame leaves it (a 4K frame's box is ~100 MB: copying it every frame would cost more than the warp).
        """
        cached = self._crops.get(level)
        if cached is not None and cached[0] <= x0 and cached[1] <= y0 and cached[2] >= x1 and cached[3] >= y1:
            return cached[0], cached[1], cached[4]
        size = math.ceil(self.ortho.width_px / 2 ** level)
        mx, my = (x1 - x0) // 10 + 16, (y1 - y0) // 10 + 16
        bx0, by0, bx1, by1 = max(0, x0 - mx), max(0, y0 - my), min(size, x1 + mx), min(size, y1 + my)
        arr = self.ortho.crop(bx0, by0, bx1, by1, HAZE_BGR, level)
        self._crops[level] = (bx0, by0, bx1, by1, arr)
        return bx0, by0, arr

    def _sky_and_haze(self, image: np.ndarray, cam: PinholeCamera) -> np.ndarray:
        """Far ground fades into haze (all of it beyond the view range); sky above the horizon."""
        h, w = image.shape[:2]
        step = 16
        gx = np.arange(0, w + step, step, dtype=np.float64)
        gy = np.arange(0, h + step, step, dtype=np.float64)
        uu, vv = np.meshgrid(gx, gy)
        rays = cam.ray_m(np.column_stack([uu.ravel(), vv.ravel()]))
        down = -rays[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(down > 1e-9, cam.height_m * np.hypot(rays[:, 0], rays[:, 1]) / down, np.inf)
        r = self.spec.max_view_range_m
        if np.isfinite(dist).all() and dist.max() < 0.5 * r:
            return image  # a steep view: no sky, no noticeable haze
        image = image.astype(np.float32)
        fade = np.clip((dist - 0.75 * r) / (0.25 * r), 0.0, 1.0)
        haze = np.maximum(1.0 - np.exp(-np.minimum(dist, 1e9) / _VISIBILITY_M), fade * fade * (3.0 - 2.0 * fade))
        # grid node (k * step) is the edge of pixel k * step: its centre sits half a pixel further
        small = haze.reshape(len(gy), len(gx)).astype(np.float32)
        m = np.array([[1.0 / step, 0.0, 0.5 / step], [0.0, 1.0 / step, 0.5 / step]])
        f = cv2.warpAffine(small, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)[..., None]
        image *= 1.0 - f
        image += f * np.asarray(HAZE_BGR, np.float32)
        # the sky: where a pixel's ray does not point down; its down component is linear in the pixel position
        d0, dx, dy = (-cam.ray_m(np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5]]))[:, 2])
        col = (dx - d0) * np.arange(w, dtype=np.float32)
        row = d0 + (dy - d0) * np.arange(h, dtype=np.float32)
        sky = (row[:, None] + col[None, :]) <= 1e-9
        image[sky] = SKY_BGR
        return cv2.convertScaleAbs(image)

    def object_sightings(self, objects: list[TownObject]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each object: (images whose frame holds its centre within view range, first, last image; -1 none)."""
        n = len(objects)
        seen = np.zeros(n, np.int64)
        first = np.full(n, -1, np.int64)
        last = np.full(n, -1, np.int64)
        if n == 0:
            return seen, first, last
        centres = np.array([[o.east_m, o.north_m, 0.0] for o in objects])
        for i in range(len(self.poses)):
            cam = self.camera(i)
            uv, depth = cam.project(centres)
            dist = np.hypot(centres[:, 0] - cam.x_m, centres[:, 1] - cam.y_m)
            inside = ((depth > NEAR_M) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width_px) & (uv[:, 1] >= 0)
                      & (uv[:, 1] < cam.height_px) & (dist <= self.spec.max_view_range_m))
            seen += inside
            first = np.where(inside & (first < 0), i, first)
            last = np.where(inside, i, last)
        return seen, first, last


@dataclass(frozen=True, eq=False)
class FlightOutput:
    """Where a generated flight was written, and what it holds.

    Attributes:
        out_dir: The folder.
        truth_path: ``truth.json``.
        layer_paths: Layer name → GeoJSON file.
        video_path: ``flight.mp4`` (video mode), else None.
        srt_path: ``flight.SRT`` (video mode with telemetry), else None.
        still_paths: The stills (stills mode).
        preview_path: ``orthophoto_preview.jpg``.
        orthophoto_path: ``orthophoto.png`` when kept.
        video_codec: ``libx264`` (H.264) or ``mp4v`` (MPEG-4 Part 2, when PyAV has no H.264 encoder).
        n_images: Frames or stills.
        n_telemetry: SRT cues (frames covered by telemetry), or stills with GPS.
        n_objects: Objects in the truth (those the flight sees).
        notes: Plain-language remarks (the encoder fallback, partial telemetry).
    """

    out_dir: Path
    truth_path: Path
    layer_paths: dict[str, Path]
    video_path: Path | None
    srt_path: Path | None
    still_paths: tuple[Path, ...]
    preview_path: Path | None
    orthophoto_path: Path | None
    video_codec: str | None
    n_images: int
    n_telemetry: int
    n_objects: int
    notes: tuple[str, ...]


class _VideoSink:
    """Frames in, an MP4 out: H.264 through PyAV, else MPEG-4 Part 2 through OpenCV."""

    def __init__(self, path: Path, size_px: tuple[int, int], fps: float, crf: int, preset: str) -> None:
        self.codec = video_encoder()
        self._path = path
        if self.codec == "libx264":
            import av

            self._container = av.open(str(path), mode="w")
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = size_px
            self._stream.pix_fmt = "yuv420p"
            # A keyframe every second, as DJI drones record (x264's default of 250 frames would make every seek
            # decode up to 8 s of 4K video, and a damaged packet spoil everything after it).
            self._stream.options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(fps))),
                                    "keyint_min": str(max(1, round(fps)))}
            self._av = av
            self._n = 0
        else:
            self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size_px)
            if not self._writer.isOpened():
                raise ValueError(f"{path}: OpenCV could not open an mp4v video writer")

    def write(self, frame_bgr: np.ndarray) -> None:
        if self.codec == "libx264":
            vf = self._av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
            vf.pts = self._n
            self._n += 1
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        else:
            self._writer.write(frame_bgr)

    def close(self) -> None:
        if self.codec == "libx264":
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        else:
            self._writer.release()


def _r(value: float, digits: int) -> float:
    return round(float(value), digits)


def _srt_cues(spec: FlightSpec, poses: FlightPoses, lat: np.ndarray, lon: np.ndarray) -> list[SrtCue]:
    n = len(poses)
    covered = max(1, math.floor(spec.telemetry_coverage * n + 1e-9))
    off_track = np.abs([normalize_yaw_deg(y - c) for y, c in zip(poses.yaw_deg, poses.course_deg)])
    gimbal = {"always": True, "never": False}.get(
        spec.srt_gimbal, bool((off_track > 0.5).any() or spec.pitch_deg != -90.0 or spec.roll_deg != 0.0))
    start = spec.start_wall_local
    ms = [round(i * 1000.0 / spec.fps) for i in range(covered + 1)]
    return [SrtCue(i + 1, ms[i], ms[i + 1], start + timedelta(milliseconds=ms[i]), float(lat[i]), float(lon[i]),
                   float(poses.up_m[i]), spec.ground_alt_m + float(poses.up_m[i]), spec.profile.focal_35mm_mm,
                   spec.profile.f_number,
                   (float(poses.yaw_deg[i]), float(poses.pitch_deg[i]), float(poses.roll_deg[i])) if gimbal else None)
            for i in range(covered)]


def _still_meta(spec: FlightSpec, poses: FlightPoses, i: int, lat: float, lon: float, offset_s: int) -> StillMeta:
    has_gps = i not in spec.stills_without_gps
    # a multirotor tilts its body forward to fly (about half a degree per m/s); the gimbal keeps the camera level
    body_pitch = -min(10.0, 0.5 * spec.speed_mps)
    return StillMeta(taken_local=spec.start_wall_local + timedelta(seconds=float(poses.t_s[i])),
                     utc_offset_s=offset_s, lat_deg=lat if has_gps else None, lon_deg=lon if has_gps else None,
                     rel_alt_m=float(poses.up_m[i]), abs_alt_m=spec.ground_alt_m + float(poses.up_m[i]),
                     gimbal_ypr_deg=(float(poses.yaw_deg[i]), float(poses.pitch_deg[i]), float(poses.roll_deg[i])),
                     flight_ypr_deg=(float(poses.course_deg[i]), body_pitch, 0.0), focal_mm=spec.profile.focal_mm,
                     focal_35mm_mm=spec.profile.focal_35mm_mm, f_number=spec.profile.f_number,
                     model=spec.profile.exif_model, xmp_longitude_key=spec.xmp_longitude_key)


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def generate_flight(spec: FlightSpec, out_dir: str | Path, *,
                    progress: Callable[[FlightProgress], None] | None = None) -> FlightOutput:
    """Generate a synthetic flight into `out_dir`: media, telemetry, layers and truth (see the module docstring).

    Args:
        spec: The flight.
        out_dir: Folder to write into (created; files of the same names are replaced: use an empty folder).
        progress: Called with `FlightProgress` reports (town, orthophoto tiles, frames or stills, truth).

    Returns:
        The paths written and a few counts.

    Example:
        >>> out = generate_flight(FlightSpec(frame_size_px=(320, 180), fps=5.0, duration_s=1.0, alt_m=30.0,
        ...                                  gsd_m=0.05), tmp_path)  # doctest: +SKIP
        >>> out.n_images, out.srt_path.name  # doctest: +SKIP
        (5, 'flight.SRT')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(FlightProgress(stage, done, total))

    tz = load_timezone(spec.timezone)
    start_aware = spec.start_wall_local.replace(tzinfo=tz)
    offset_s = int(start_aware.utcoffset().total_seconds())
    with FlightScene(spec, out / ".flight_work", progress) as scene:
        poses = scene.poses
        n = len(poses)
        lat, lon, _ = scene.local.to_geodetic(poses.east_m, poses.north_m, 0.0)
        video_path = srt_path = None
        codec = None
        still_paths: list[Path] = []
        n_telemetry = 0
        # a digest of every image as drawn (before encoding): equal truths mean equal pictures; every 4th pixel
        # per axis keeps hashing a 60 s 4K flight to seconds
        digest = hashlib.blake2b(digest_size=16)

        def drawn(i: int) -> np.ndarray:
            img = scene.image(i)
            digest.update(np.ascontiguousarray(img[::4, ::4]).tobytes())
            return img

        if spec.mode == "video":
            video_path = out / "flight.mp4"
            sink = _VideoSink(video_path, spec.frame_size_px, spec.fps, spec.video_crf, spec.video_preset)
            codec = sink.codec
            if codec != "libx264":
                notes.append("PyAV has no H.264 encoder here: the video is MPEG-4 Part 2 (mp4v) through OpenCV")
            try:
                for i in range(n):
                    sink.write(drawn(i))
                    report("frames", i + 1, n)
            finally:
                sink.close()
            if spec.write_srt:
                cues = _srt_cues(spec, poses, lat, lon)
                srt_path = out / "flight.SRT"
                srt_path.write_text(srt_text(cues), encoding="utf-8")
                n_telemetry = len(cues)
                if len(cues) < n:
                    notes.append(f"the SRT covers frames 1-{len(cues)} of {n} "
                                 f"({cues[-1].end_ms / 1000:.3f} s of {n / spec.fps:.3f} s)")
            else:
                notes.append("no SRT written: a video without telemetry")
        else:
            stills_dir = out / "stills"
            stills_dir.mkdir(exist_ok=True)
            for i in range(n):
                meta = _still_meta(spec, poses, i, float(lat[i]), float(lon[i]), offset_s)
                path = stills_dir / f"DJI_{i + 1:04d}.JPG"
                path.write_bytes(still_jpeg_bytes(drawn(i), meta))
                still_paths.append(path)
                n_telemetry += meta.lat_deg is not None
                report("stills", i + 1, n)

        report("truth", 0, 1)
        town = scene.town
        seen, first, last = scene.object_sightings(town.objects)
        visible = scene.ortho.visible_fraction()
        keep = np.flatnonzero(seen > 0)
        in_view = [town.objects[k] for k in keep]
        fps_all = np.concatenate(scene.footprints)
        bounds = (float(fps_all[:, 0].min()), float(fps_all[:, 1].min()), float(fps_all[:, 0].max()),
                  float(fps_all[:, 1].max()))
        layers = build_layers(in_view, town.clusters, scene.local, bounds, start_aware,
                              float(poses.t_s[-1]) + (1.0 / spec.fps if spec.mode == "video" else 0.0),
                              spec.timezone, spec.layers, np.random.default_rng([spec.seed, 9]))
        layer_paths = {name: _write_json(out / f"{name}.geojson", fc) for name, fc in layers.geojson.items()}

        objects_json = []
        for k in keep:
            o = town.objects[k]
            clat, clon, _ = scene.local.to_geodetic(o.east_m, o.north_m, 0.0)
            ring = scene.local.en_to_lonlat(o.footprint_en_m)
            verdict = layers.verdicts[o.object_id]
            vf = float(visible[k])
            objects_json.append({
                "id": o.object_id, "class": o.class_name, "tag": o.tag,
                "lat_deg": _r(clat, 9), "lon_deg": _r(clon, 9), "east_m": _r(o.east_m, 3), "north_m": _r(o.north_m, 3),
                "footprint_en_m": [[_r(e, 3), _r(nn, 3)] for e, nn in o.footprint_en_m],
                "footprint_lonlat_deg": [[_r(a, 9), _r(b, 9)] for a, b in ring],
                "top_m": _r(o.top_m, 2), "cluster_id": o.cluster_id,
                "visible_fraction": None if math.isnan(vf) else _r(vf, 3),
                "frames_seen": int(seen[k]), "first_frame": int(first[k]), "last_frame": int(last[k]),
                "violation": ({"kind": verdict.violation_kind, "zone_id": verdict.zone_id}
                              if verdict.violation_kind else None),
                "zone_id": verdict.zone_id, "grid_code": verdict.grid_code,
            })
        by_class = {name: sum(1 for o in in_view if o.class_name == name) for name in AERIAL_VIOLATION_CLASSES}
        violations: dict[str, int] = {}
        for v in layers.verdicts.values():
            if v.violation_kind:
                violations[v.violation_kind] = violations.get(v.violation_kind, 0) + 1
        preview = scene.ortho.preview()
        preview_path = None
        if preview is not None:
            preview_path = out / "orthophoto_preview.jpg"
            cv2.imwrite(str(preview_path), preview, [cv2.IMWRITE_JPEG_QUALITY, 85])
        ortho_path = _write_orthophoto(scene.ortho, out) if spec.keep_orthophoto else None
        truth = {
            "format": TRUTH_FORMAT,
            "spec": spec.to_dict(),
            "origin": {"lat_deg": spec.origin_lat_deg, "lon_deg": spec.origin_lon_deg,
                       "ground_alt_m": spec.ground_alt_m},
            "flight_start_local": start_aware.isoformat(),
            "camera": {"profile": spec.camera, "width_px": scene.width_px, "height_px": scene.height_px,
                       "focal_px": _r(scene.focal_px, 4), "cx_px": scene.width_px / 2.0,
                       "cy_px": scene.height_px / 2.0, "hfov_deg": _r(spec.hfov_deg, 4),
                       "sensor_width_mm": spec.profile.sensor_width_mm, "focal_mm": spec.profile.focal_mm},
            "conventions": {"angles": "DJI: yaw clockwise from north, gimbal pitch -90 nadir, roll + = right side "
                                      "down", "local_frame": "ENU metres from the take-off point at ground level",
                            "image": "x right, y down, continuous pixels 0..W, 0..H",
                            "world": "flat: roofs have no parallax; objects lie on the ground plane"},
            "town": {"half_size_m": town.half_size_m, "gsd_m": spec.gsd_m, "lighting": town.lighting.name,
                     "n_objects": len(town.objects), "layout": town.stats},
            "media": {"video": video_path.name if video_path else None, "srt": srt_path.name if srt_path else None,
                      "video_codec": codec, "stills": [p.relative_to(out).as_posix() for p in still_paths],
                      "n_images": n, "n_telemetry": n_telemetry, "frames_digest": digest.hexdigest()},
            "layers": {name: p.name for name, p in layer_paths.items()},
            "counts": {"objects": len(objects_json), "by_class": by_class, "violations": violations},
            "notes": notes,
            "objects": objects_json,
            "poses": {"t_s": [_r(v, 6) for v in poses.t_s], "east_m": [_r(v, 4) for v in poses.east_m],
                      "north_m": [_r(v, 4) for v in poses.north_m], "up_m": [_r(v, 4) for v in poses.up_m],
                      "lat_deg": [_r(v, 9) for v in lat], "lon_deg": [_r(v, 9) for v in lon],
                      "yaw_deg": [_r(v, 4) for v in poses.yaw_deg], "pitch_deg": [_r(v, 4) for v in poses.pitch_deg],
                      "roll_deg": [_r(v, 4) for v in poses.roll_deg],
                      "course_deg": [_r(v, 4) for v in poses.course_deg]},
        }
        truth_path = _write_json(out / "truth.json", truth)
        report("truth", 1, 1)
    shutil.rmtree(out / ".flight_work", ignore_errors=True)
    return FlightOutput(out, truth_path, layer_paths, video_path, srt_path, tuple(still_paths), preview_path,
                        ortho_path, codec, n, n_telemetry, len(objects_json), tuple(notes))


def _write_orthophoto(ortho: Orthophoto, out: Path) -> Path | None:
    """The drawn tiles' bounding area as ``orthophoto.png`` (undrawn parts haze) and its georeference."""
    tiles = ortho.rendered_tiles
    if not tiles:
        return None
    t = ortho.tile_px
    c0, c1 = min(x for x, _ in tiles), max(x for x, _ in tiles) + 1
    r0, r1 = min(y for _, y in tiles), max(y for _, y in tiles) + 1
    x0, y0 = c0 * t, r0 * t
    x1, y1 = min(c1 * t, ortho.width_px), min(r1 * t, ortho.height_px)
    path = out / "orthophoto.png"
    cv2.imwrite(str(path), ortho.crop(x0, y0, x1, y1, HAZE_BGR))
    _write_json(out / "orthophoto.json", {"gsd_m": ortho.gsd_m, "west_m": (x0 - ortho.u0_px) * ortho.gsd_m,
                                          "north_m": (ortho.v0_px - y0) * ortho.gsd_m, "width_px": x1 - x0,
                                          "height_px": y1 - y0,
                                          "pixel": "east = west_m + u * gsd_m, north = north_m - v * gsd_m "
                                                   "(continuous pixel coordinates)"})
    return path
