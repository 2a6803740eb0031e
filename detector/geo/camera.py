"""The pinhole camera of a drone: pixel rays in the local east-north-up frame, and where they meet the ground.

Conventions (shared with `detector.geo.telemetry` and the flight generator):

- World: the local ENU frame of `detector.geo.enu.LocalFrame`, metres; the ground is the plane
  ``up = ground_up_m`` (0 = the take-off elevation).
- Angles are DJI's gimbal angles, applied in the gimbal's own order yaw → pitch → roll:
  ``yaw_deg`` is the heading of the optical axis, clockwise from true north (0 north, 90 east);
  ``pitch_deg`` tilts it, 0 at the horizon, -90 straight down (nadir), positive above the horizon;
  ``roll_deg`` turns the image about the optical axis, **positive = right side of the image down** (DJI's
  gimbal roll sign).
- Image: x right, y down, continuous pixel coordinates 0..W × 0..H (the detector's ``xyxy`` convention; the
  centre of the top-left pixel is (0.5, 0.5)); square pixels unless ``fx_px != fy_px``. No lens distortion is
  modelled: DJI corrects it in-camera for video and JPEG on most models; output that is not corrected (e.g.
  with dewarping switched off on Enterprise cameras) adds an error growing toward the frame corners (see the
  error budget in `detector.geo.georef`).
- Camera frame: x right, y down, z along the optical axis (the OpenCV convention), so a pixel's ray is
  ``((u - cx) / fx, (v - cy) / fy, 1)`` before rotation.

The rotation is four lines of trigonometry written out here rather than taken from a library: the only
candidate (scipy.spatial.transform) is not a dependency of the inference path, and the DJI order and signs
are clearer spelled out than hidden in an Euler-sequence string.

Example:
    >>> import numpy as np
    >>> intr = CameraIntrinsics.from_hfov(90.0, 1000, 750)
    >>> pose = CameraPose(east_m=0.0, north_m=0.0, up_m=50.0, yaw_deg=0.0, pitch_deg=-90.0)
    >>> hits = pixel_to_ground(intr, pose, np.array([[1000.0, 375.0]]))  # right edge, middle row
    >>> hits.en_m.round(3).tolist()  # hfov 90° at 50 m: the right edge is 50 m east
    [[50.0, 0.0]]
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_MAX_RANGE_M",
    "FULL_FRAME_DIAGONAL_MM",
    "CameraIntrinsics",
    "CameraPose",
    "GroundHits",
    "box_outline_px",
    "convex_intersection",
    "frame_footprint",
    "ground_to_pixel",
    "gsd_m",
    "image_polygon_to_ground",
    "pixel_rays",
    "pixel_to_ground",
    "polygon_area_m2",
]

DEFAULT_MAX_RANGE_M = 500.0
"""Rays that meet the ground farther than this (slant range) are not used. At 50 m above ground a point 500 m
away is seen 5.7° below the horizon, where a 0.5° gimbal pitch error already moves it by ~45 m: such points
are noise, not positions."""

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
"""Diagonal of the 36 × 24 mm frame that "35 mm equivalent" focal lengths refer to (43.27 mm)."""

_HORIZON_EPS = 1e-9  # a ray whose up component is not below -eps runs parallel to or above the ground


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of one image size.

    Attributes:
        width_px: Image width in pixels.
        height_px: Image height in pixels.
        fx_px: Focal length in pixels along x.
        fy_px: Focal length in pixels along y (equal to `fx_px` for square pixels).
        cx_px: Principal point x (continuous coordinates; W/2 for a centred lens).
        cy_px: Principal point y.

    Example:
        >>> intr = CameraIntrinsics.from_sensor(17.3, 12.29, 5280, 3956)  # 17.3 mm wide sensor, 12.29 mm lens
        >>> round(intr.fx_px, 1), round(intr.hfov_deg, 1)
        (3750.9, 70.3)
        >>> video = intr.scaled(3840, 2160)  # 16:9 4K video: full sensor width, top and bottom cropped
        >>> round(video.fx_px, 1), video.cy_px
        (2728.0, 1080.0)
    """

    width_px: int
    height_px: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise ValueError(f"CameraIntrinsics: image size must be positive, got {self.width_px}x{self.height_px}")
        for name in ("fx_px", "fy_px"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"CameraIntrinsics.{name} must be a positive finite number, got {value}")
        for name in ("cx_px", "cy_px"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"CameraIntrinsics.{name} must be finite, got {getattr(self, name)}")

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def from_focal_px(cls, focal_px: float, width_px: int, height_px: int) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre."""
        return cls(width_px, height_px, float(focal_px), float(focal_px), width_px / 2.0, height_px / 2.0)

    @classmethod
    def from_sensor(cls, sensor_width_mm: float, focal_mm: float, width_px: int, height_px: int) -> CameraIntrinsics:
        """From the sensor's width and the lens's true (not 35 mm equivalent) focal length.

        Assumes the image spans the **full sensor width**. That holds for stills at the native size and for
        DJI's 16:9 video modes on the cameras in `profiles` (the 4:3 or 3:2 sensor is cropped at the top and
        bottom, not at the sides); a mode that crops the width as well (some "2.7K crop" or zoom modes) must
        be given its own focal length in pixels (`from_focal_px`) or its field of view (`from_hfov`).

        Args:
            sensor_width_mm: Active sensor width, millimetres.
            focal_mm: Lens focal length, millimetres.
            width_px: Image width, pixels.
            height_px: Image height, pixels.
        """
        if not (sensor_width_mm > 0 and focal_mm > 0):
            raise ValueError(
                f"CameraIntrinsics.from_sensor: sensor_width_mm and focal_mm must be positive, "
                f"got {sensor_width_mm}, {focal_mm}"
            )
        return cls.from_focal_px(focal_mm / sensor_width_mm * width_px, width_px, height_px)

    @classmethod
    def from_35mm_equivalent(cls, f35_mm: float, width_px: int, height_px: int) -> CameraIntrinsics:
        """From a 35 mm equivalent focal length (EXIF ``FocalLengthIn35mmFilm``, DJI's "24 mm format equivalent").

        The equivalence is by the **diagonal** (the image's diagonal is mapped onto the 43.27 mm diagonal of
        a 36 × 24 mm frame), which is how makers state it: the Mavic 3's 12.29 mm lens on a 17.3 × 13 mm
        sensor is sold as "24 mm". The figure therefore belongs to the image whose size is passed here (for
        DJI, the native still); derive video intrinsics from it with `scaled`.
        """
        if not f35_mm > 0:
            raise ValueError(f"CameraIntrinsics.from_35mm_equivalent: f35_mm must be positive, got {f35_mm}")
        focal_px = f35_mm * math.hypot(width_px, height_px) / FULL_FRAME_DIAGONAL_MM
        return cls.from_focal_px(focal_px, width_px, height_px)

    @classmethod
    def from_hfov(cls, hfov_deg: float, width_px: int, height_px: int) -> CameraIntrinsics:
        """From the horizontal field of view of this image (`detector.types.FrameGeo.hfov_deg`)."""
        if not 0.0 < hfov_deg < 180.0:
            raise ValueError(f"CameraIntrinsics.from_hfov: hfov_deg must lie in (0, 180), got {hfov_deg}")
        return cls.from_focal_px(width_px / 2.0 / math.tan(math.radians(hfov_deg) / 2.0), width_px, height_px)

    def scaled(self, width_px: int, height_px: int) -> CameraIntrinsics:
        """The same camera delivering an image of another size, **keeping the full image width**.

        The scale is ``width_px / self.width_px`` in both directions (square pixels stay square). When the
        aspect ratio changes too, the new image is taken as a centred crop (or extension) of the old one in
        height: this is how a 4:3 or 3:2 still's intrinsics become those of a DJI 16:9 video frame.
        """
        if width_px <= 0 or height_px <= 0:
            raise ValueError(f"CameraIntrinsics.scaled: image size must be positive, got {width_px}x{height_px}")
        s = width_px / self.width_px
        return CameraIntrinsics(
            width_px,
            height_px,
            self.fx_px * s,
            self.fy_px * s,
            self.cx_px * s,
            (self.cy_px - self.height_px / 2.0) * s + height_px / 2.0,
        )

    # --- derived ------------------------------------------------------------------------------

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view (for a centred principal point)."""
        return math.degrees(2.0 * math.atan(self.width_px / 2.0 / self.fx_px))

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view (for a centred principal point)."""
        return math.degrees(2.0 * math.atan(self.height_px / 2.0 / self.fy_px))

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) the usual K matrix (OpenCV layout)."""
        return np.array([[self.fx_px, 0.0, self.cx_px], [0.0, self.fy_px, self.cy_px], [0.0, 0.0, 1.0]])


def _rotation_enu_from_camera(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) R whose columns are the camera's x (right), y (down) and z (optical axis) in ENU.

    Built as yaw(about up, clockwise) · pitch(about east, positive raises the axis) · base · roll(about the
    optical axis, positive turns the right side down), where `base` is the camera looking north at the
    horizon (x = east, y = down, z = north).
    """
    psi, theta, phi = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    cy, sy = math.cos(psi), math.sin(psi)
    cp, sp = math.cos(theta), math.sin(theta)
    cr, sr = math.cos(phi), math.sin(phi)
    yaw = np.array([[cy, sy, 0.0], [-sy, cy, 0.0], [0.0, 0.0, 1.0]])  # north -> (sin ψ, cos ψ, 0)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])  # north -> (0, cos θ, sin θ)
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # columns: x=E, y=-U, z=N
    roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])  # x -> x cos φ + y sin φ (y is down)
    return yaw @ pitch @ base @ roll


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is and where it looks, in the local ENU frame (DJI angle convention, see module doc).

    Attributes:
        east_m: Camera position east of the local origin, metres.
        north_m: Camera position north, metres.
        up_m: Camera height above the local origin (the take-off point at ground level), metres.
        yaw_deg: Heading of the optical axis, degrees clockwise from true north.
        pitch_deg: Gimbal pitch, degrees; 0 at the horizon, -90 nadir.
        roll_deg: Gimbal roll, degrees; positive = right side of the image down.
        rotation: (3, 3) camera → ENU rotation (columns: camera x, y, z in ENU), built once.
    """

    east_m: float
    north_m: float
    up_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float = 0.0
    rotation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("east_m", "north_m", "up_m", "yaw_deg", "pitch_deg", "roll_deg"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"CameraPose.{name} must be finite, got {value}")
        rotation = _rotation_enu_from_camera(self.yaw_deg, self.pitch_deg, self.roll_deg)
        rotation.setflags(write=False)
        object.__setattr__(self, "rotation", rotation)

    @property
    def center_m(self) -> np.ndarray:
        """(3,) camera position, ENU metres."""
        return np.array([self.east_m, self.north_m, self.up_m])

    @property
    def optical_axis(self) -> np.ndarray:
        """(3,) unit vector of the optical axis in ENU."""
        return self.rotation[:, 2].copy()


@dataclass(frozen=True, eq=False)  # holds arrays
class GroundHits:
    """Where pixel rays meet the ground plane.

    Attributes:
        en_m: (N, 2) east/north metres of each hit; NaN where the ray was not used.
        range_m: (N,) slant distance from the camera to the hit; NaN where not used.
        valid: (N,) True where the ray met the ground within range.
        reason: (N,) why each ray was not used ("" where valid): ``non_finite_pixel``, ``above_horizon``
            (parallel to or above the ground plane), ``beyond_max_range``.
    """

    en_m: np.ndarray
    range_m: np.ndarray
    valid: np.ndarray
    reason: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.valid.shape[0])

    def reason_counts(self) -> Counter[str]:
        """How many rays were skipped, by reason (valid rays are not counted)."""
        return Counter(r for r in self.reason if r)


def _as_points(values: np.ndarray, columns: int, name: str) -> np.ndarray:
    arr = np.asarray(values, np.float64)
    if arr.ndim == 1 and arr.shape[0] == columns:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != columns:
        raise ValueError(f"{name} must have shape (N, {columns}), got {np.shape(values)}")
    return arr


def _camera_rays(intr: CameraIntrinsics, uv: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame rays with z = 1."""
    return np.stack(
        [(uv[:, 0] - intr.cx_px) / intr.fx_px, (uv[:, 1] - intr.cy_px) / intr.fy_px, np.ones(len(uv))], axis=1
    )


def pixel_rays(intr: CameraIntrinsics, pose: CameraPose, uv_px: np.ndarray) -> np.ndarray:
    """(N, 2) pixel coordinates → (N, 3) unit viewing directions in ENU.

    Example:
        >>> intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
        >>> pixel_rays(intr, CameraPose(0, 0, 10, yaw_deg=90, pitch_deg=0), [[50, 50]]).round(6).tolist()
        [[1.0, 0.0, 0.0]]
    """
    uv = _as_points(uv_px, 2, "uv_px")
    rays = _camera_rays(intr, uv) @ pose.rotation.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _check_height(pose: CameraPose, ground_up_m: float) -> float:
    height_m = pose.up_m - ground_up_m
    if not height_m > 0:
        raise ValueError(
            f"camera is not above the ground: up_m={pose.up_m} with ground_up_m={ground_up_m} "
            f"(height {height_m:.3f} m must be > 0)"
        )
    return height_m


def pixel_to_ground(
    intr: CameraIntrinsics,
    pose: CameraPose,
    uv_px: np.ndarray,
    ground_up_m: float = 0.0,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
) -> GroundHits:
    """Intersect the rays of pixels with the ground plane ``up = ground_up_m``.

    Rays that do not meet the ground (at or above the horizon) or meet it farther than `max_range_m` are
    reported with a reason and NaN coordinates, never as a wrong point.

    Raises:
        ValueError: The camera is not above the ground plane, or `uv_px` is not (N, 2).
    """
    height_m = _check_height(pose, ground_up_m)
    uv = _as_points(uv_px, 2, "uv_px")
    n = len(uv)
    finite = np.isfinite(uv).all(axis=1)
    rays = pixel_rays(intr, pose, np.where(finite[:, None], uv, 0.0))
    down = rays[:, 2] < -_HORIZON_EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        range_m = np.where(down, height_m / -rays[:, 2], np.inf)
    near = range_m <= max_range_m
    valid = finite & down & near
    reason = np.full(n, "", dtype=object)
    reason[finite & down & ~near] = "beyond_max_range"
    reason[finite & ~down] = "above_horizon"
    reason[~finite] = "non_finite_pixel"
    en = pose.center_m[:2] + rays[:, :2] * np.where(valid, range_m, np.nan)[:, None]
    return GroundHits(
        en_m=en, range_m=np.where(valid, range_m, np.nan), valid=valid, reason=tuple(str(r) for r in reason)
    )


def ground_to_pixel(intr: CameraIntrinsics, pose: CameraPose, enu_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, 3) ENU points into the image.

    Returns:
        ``(uv_px (N, 2), in_front (N,))``; points behind (or level with) the camera plane get NaN pixels and
        ``in_front = False``. Pixels of points in front may lie outside 0..W × 0..H (not in the frame).
    """
    pts = _as_points(enu_m, 3, "enu_m")
    cam = (pts - pose.center_m) @ pose.rotation  # rotation is orthonormal: its transpose is its inverse
    in_front = cam[:, 2] > 1e-9
    z = np.where(in_front, cam[:, 2], np.nan)
    uv = np.stack([intr.cx_px + intr.fx_px * cam[:, 0] / z, intr.cy_px + intr.fy_px * cam[:, 1] / z], axis=1)
    return uv, in_front


def box_outline_px(xyxy: np.ndarray) -> np.ndarray:
    """(8, 2) corners and edge midpoints of an ``xyxy`` box, clockwise on screen from the top-left."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy, np.float64).reshape(4))
    xm, ym = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array([[x1, y1], [xm, y1], [x2, y1], [x2, ym], [x2, y2], [xm, y2], [x1, y2], [x1, ym]])


def _image_border(intr: CameraIntrinsics, samples_per_edge: int) -> np.ndarray:
    """(4 * samples_per_edge, 2) points along the image border, clockwise on screen from the top-left."""
    t = np.linspace(0.0, 1.0, samples_per_edge, endpoint=False)
    w, h = float(intr.width_px), float(intr.height_px)
    top = np.stack([t * w, np.zeros_like(t)], axis=1)
    right = np.stack([np.full_like(t, w), t * h], axis=1)
    bottom = np.stack([w - t * w, np.full_like(t, h)], axis=1)
    left = np.stack([np.zeros_like(t), h - t * h], axis=1)
    return np.concatenate([top, right, bottom, left])


def _clip_half_plane(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Sutherland–Hodgman: keep the part of a convex polygon (K, D) where ``poly @ normal <= offset``.

    Hand-written (a dozen lines) because shapely is a test oracle only, not a library dependency.
    """
    if len(poly) == 0:
        return poly
    side = poly @ normal - offset
    inside = side <= 0
    if inside.all():
        return poly
    out = []
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if inside[i]:
            out.append(poly[i])
        if inside[i] != inside[j]:
            t = side[i] / (side[i] - side[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.asarray(out).reshape(-1, poly.shape[1])


def _signed_area(poly: np.ndarray) -> float:
    """Shoelace area, positive for counter-clockwise (x east, y north) polygons."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])


def image_polygon_to_ground(
    intr: CameraIntrinsics,
    pose: CameraPose,
    uv_px: np.ndarray,
    ground_up_m: float = 0.0,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
) -> np.ndarray:
    """The ground seen through a convex image polygon (a box outline, the frame border), within range.

    The polygon is clipped in ray space to the rays that meet the ground no deeper than `max_range_m` along
    the optical axis (this removes the horizon and everything above it exactly, since "depth ≤ D" is a
    straight line in the image), projected onto the plane ``up = ground_up_m``, and clipped to the circle of
    slant range `max_range_m` around the camera (a 90-gon inscribed in it). Straight image edges stay straight
    on a flat ground; sample them densely only where the range circle may cut them.

    Args:
        intr: Camera intrinsics.
        pose: Camera pose.
        uv_px: (K, 2) convex polygon in pixels, either orientation.
        ground_up_m: Height of the ground plane in the local frame.
        max_range_m: Slant range beyond which ground is not used.

    Returns:
        (K', 2) counter-clockwise east/north polygon; (0, 2) when no ground within range is seen through it.

    Raises:
        ValueError: The camera is not above the ground plane, or `uv_px` is not (K, 2).
    """
    height_m = _check_height(pose, ground_up_m)
    uv = _as_points(uv_px, 2, "uv_px")
    if max_range_m <= height_m or len(uv) < 3:
        return np.zeros((0, 2))
    # Camera rays d = (x, y, 1); a ray meets the ground at depth h / -(R d)_up, and depth <= D is the linear
    # condition (R d)_up <= -h / D. The relative margin keeps the far edge strictly within range.
    rays_cam = _clip_half_plane(_camera_rays(intr, uv), pose.rotation[2], -height_m / max_range_m * (1.0 + 1e-9))
    if len(rays_cam) < 3:
        return np.zeros((0, 2))
    rays = rays_cam @ pose.rotation.T
    en = pose.center_m[:2] + rays[:, :2] * (height_m / -rays[:, 2])[:, None]
    radius_m = math.sqrt(max_range_m**2 - height_m**2)
    if (np.linalg.norm(en - pose.center_m[:2], axis=1) > radius_m).any():
        half_step = math.pi / 90  # the 90 edges of a regular polygon inscribed in the range circle
        apothem_m = radius_m * math.cos(half_step)
        for k in range(90):
            a = 2.0 * half_step * k
            normal = np.array([math.cos(a), math.sin(a)])
            en = _clip_half_plane(en, normal, apothem_m + float(pose.center_m[:2] @ normal))
    if len(en) < 3 or abs(_signed_area(en)) < 1e-12:
        return np.zeros((0, 2))
    return en if _signed_area(en) > 0 else en[::-1].copy()


def frame_footprint(
    intr: CameraIntrinsics,
    pose: CameraPose,
    ground_up_m: float = 0.0,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
    samples_per_edge: int = 8,
) -> np.ndarray:
    """The ground seen by the whole frame within `max_range_m`: a (K, 2) counter-clockwise east/north polygon.

    The image border, with `samples_per_edge` points per edge, is handed to `image_polygon_to_ground`. Image
    edges stay straight on a flat ground and the range circle brings its own vertices, so one point per edge
    (the corners) gives the same polygon; more only give a denser outline to draw or warp along. Empty (0, 2)
    when no ground within range is in view.

    Raises:
        ValueError: The camera is not above the ground plane.
    """
    if samples_per_edge < 1:
        raise ValueError(f"frame_footprint: samples_per_edge must be >= 1, got {samples_per_edge}")
    return image_polygon_to_ground(intr, pose, _image_border(intr, samples_per_edge), ground_up_m, max_range_m)


def polygon_area_m2(poly_en_m: np.ndarray) -> float:
    """Area of a simple polygon (shoelace), whatever its orientation."""
    poly = np.asarray(poly_en_m, np.float64).reshape(-1, 2)
    return abs(_signed_area(poly)) if len(poly) >= 3 else 0.0


def convex_intersection(a_en_m: np.ndarray, b_en_m: np.ndarray) -> np.ndarray:
    """Intersection of two convex counter-clockwise polygons (clips `a` by every edge of `b`); (0, 2) if none."""
    out = np.asarray(a_en_m, np.float64).reshape(-1, 2)
    b = np.asarray(b_en_m, np.float64).reshape(-1, 2)
    if len(out) < 3 or len(b) < 3:
        return np.zeros((0, 2))
    if (out.min(axis=0) > b.max(axis=0)).any() or (out.max(axis=0) < b.min(axis=0)).any():
        return np.zeros((0, 2))  # bounding boxes apart
    for i in range(len(b)):
        edge = b[(i + 1) % len(b)] - b[i]
        outward = np.array([edge[1], -edge[0]])  # right of a counter-clockwise edge is outside
        out = _clip_half_plane(out, outward, float(b[i] @ outward))
        if len(out) < 3:
            return np.zeros((0, 2))
    return out


def gsd_m(intr: CameraIntrinsics, pose: CameraPose, ground_up_m: float = 0.0) -> float:
    """Ground sample distance at the image centre: the side of a square with the ground area of one pixel.

    A pixel at slant range r, seen at an incidence whose cosine is h / r, covers ``r² / (fx·fy) · r / h`` of
    ground, so ``gsd = sqrt(r³ / (fx·fy·h))``; at nadir that is the familiar ``h / f``. Along the line of sight
    an oblique pixel is longer than across it by ``r / h``; this single figure is their geometric mean.

    Raises:
        ValueError: The camera is not above the ground, or the image centre does not see the ground.
    """
    height_m = _check_height(pose, ground_up_m)
    hit = pixel_to_ground(intr, pose, np.array([[intr.cx_px, intr.cy_px]]), ground_up_m, max_range_m=math.inf)
    if not hit.valid[0]:
        raise ValueError(f"gsd_m: the image centre does not see the ground ({hit.reason[0]}, pitch {pose.pitch_deg}°)")
    r = float(hit.range_m[0])
    return math.sqrt(r**3 / (intr.fx_px * intr.fy_px * height_m))
