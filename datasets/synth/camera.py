"""A pinhole camera over a flat ground plane, for placing and drawing synthetic objects in metres.

World frame: X east, Y north, Z up, metres; the ground is Z = 0. The camera stands at
``(x_m, y_m, height_m)``, looks along heading `yaw_deg` (clockwise from +Y) and tilts down by `pitch_deg`
(0 = horizontal, 90 = straight down, the nadir view of a drone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PinholeCamera", "NEAR_M"]

NEAR_M = 0.3
"""Points closer than this along the optical axis are clipped away before projection."""


@dataclass(frozen=True)
class PinholeCamera:
    """An undistorted pinhole camera.

    Attributes:
        width_px: Image width.
        height_px: Image height.
        focal_px: Focal length in pixels (square pixels).
        height_m: Camera height above the ground.
        pitch_deg: Downward tilt of the optical axis; 90 looks straight down.
        yaw_deg: Heading of the optical axis, degrees clockwise from +Y.
        roll_deg: Rotation of the image about the optical axis (a slightly crooked mount).
        x_m: Camera position east.
        y_m: Camera position north.
        cx_px: Principal point x; None for the image centre. An off-centre principal point makes the image
            a crop of a larger frame (drone chips cut from a 4K frame).
        cy_px: Principal point y; None for the image centre.

    Example:
        >>> cam = PinholeCamera(640, 480, 500.0, height_m=10.0, pitch_deg=90.0)
        >>> cam.project(np.array([[0.0, 0.0, 0.0]]))[0].round(1).tolist()
        [[320.0, 240.0]]
    """

    width_px: int
    height_px: int
    focal_px: float
    height_m: float
    pitch_deg: float
    yaw_deg: float = 0.0
    roll_deg: float = 0.0
    x_m: float = 0.0
    y_m: float = 0.0
    cx_px: float | None = None
    cy_px: float | None = None
    _rotation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.focal_px <= 0 or self.height_m <= 0:
            raise ValueError(f"focal_px and height_m must be positive, got {self.focal_px}, {self.height_m}")
        yaw, pitch, roll = (math.radians(a) for a in (self.yaw_deg, self.pitch_deg, self.roll_deg))
        forward_h = np.array([math.sin(yaw), math.cos(yaw), 0.0])
        right = np.array([math.cos(yaw), -math.sin(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        axis_z = math.cos(pitch) * forward_h + math.sin(pitch) * down
        axis_y = -math.sin(pitch) * forward_h + math.cos(pitch) * down
        axis_x = right
        if roll:
            c, s = math.cos(roll), math.sin(roll)
            axis_x, axis_y = c * axis_x + s * axis_y, -s * axis_x + c * axis_y
        object.__setattr__(self, "_rotation", np.stack([axis_x, axis_y, axis_z]))

    @classmethod
    def from_hfov(cls, width_px: int, height_px: int, hfov_deg: float, **kwargs) -> "PinholeCamera":
        """A camera whose horizontal field of view is `hfov_deg`."""
        focal_px = width_px / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width_px, height_px, focal_px, **kwargs)

    def scaled(self, factor: float) -> "PinholeCamera":
        """The same camera with an image `factor` times the size (for drawing masks at low resolution)."""
        return PinholeCamera(
            max(1, int(round(self.width_px * factor))), max(1, int(round(self.height_px * factor))),
            self.focal_px * factor, self.height_m, self.pitch_deg, self.yaw_deg, self.roll_deg, self.x_m, self.y_m,
            None if self.cx_px is None else self.cx_px * factor, None if self.cy_px is None else self.cy_px * factor,
        )

    # --- geometry -----------------------------------------------------------------------------

    @property
    def center_m(self) -> np.ndarray:
        return np.array([self.x_m, self.y_m, self.height_m])

    @property
    def principal_px(self) -> tuple[float, float]:
        cx = self.width_px / 2.0 if self.cx_px is None else self.cx_px
        cy = self.height_px / 2.0 if self.cy_px is None else self.cy_px
        return cx, cy

    def to_camera(self, pts_m: np.ndarray) -> np.ndarray:
        """(N, 3) world points → (N, 3) camera coordinates (x right, y down, z along the optical axis)."""
        return (np.asarray(pts_m, np.float64).reshape(-1, 3) - self.center_m) @ self._rotation.T

    def camera_to_px(self, pts_cam: np.ndarray) -> np.ndarray:
        """(N, 3) camera coordinates with z > 0 → (N, 2) pixel coordinates."""
        cx, cy = self.principal_px
        z = pts_cam[:, 2]
        return np.stack([cx + self.focal_px * pts_cam[:, 0] / z, cy + self.focal_px * pts_cam[:, 1] / z], axis=1)

    def project(self, pts_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points → ``(uv_px (N, 2), depth_m (N,))``; depth is along the optical axis (≤ 0: behind)."""
        cam = self.to_camera(pts_m)
        depth = cam[:, 2]
        safe = np.where(depth > 1e-6, depth, 1e-6)
        cx, cy = self.principal_px
        uv = np.stack([cx + self.focal_px * cam[:, 0] / safe, cy + self.focal_px * cam[:, 1] / safe], axis=1)
        return uv, depth

    def ray_m(self, uv_px: np.ndarray) -> np.ndarray:
        """(N, 2) pixels → (N, 3) world directions of their viewing rays (not normalised)."""
        uv = np.asarray(uv_px, np.float64).reshape(-1, 2)
        cx, cy = self.principal_px
        cam = np.stack([(uv[:, 0] - cx) / self.focal_px, (uv[:, 1] - cy) / self.focal_px, np.ones(len(uv))], axis=1)
        return cam @ self._rotation

    def ground_point(self, uv_px: np.ndarray, z_m: float = 0.0) -> np.ndarray:
        """(N, 2) pixels → (N, 3) points where their rays meet the plane Z = `z_m`; NaN above the horizon."""
        rays = self.ray_m(uv_px)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (z_m - self.height_m) / rays[:, 2]
        t = np.where((rays[:, 2] < -1e-9) & (t > 0), t, np.nan)
        return self.center_m + rays * t[:, None]

    def horizon_v_px(self) -> float:
        """Image row of the horizon at the principal point's column (may lie outside the image)."""
        if self.pitch_deg >= 89.999:
            return -math.inf
        cx, cy = self.principal_px
        return cy - self.focal_px * math.tan(math.radians(self.pitch_deg))

    def px_per_m(self, pts_m: np.ndarray) -> np.ndarray:
        """(N,) image scale in pixels per metre of objects at the given points (focal / depth)."""
        depth = self.to_camera(pts_m)[:, 2]
        return self.focal_px / np.maximum(depth, NEAR_M)

    def visible(self, pts_m: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        """(N,) True where a point is in front of the camera and inside the image (plus `margin_px`)."""
        uv, depth = self.project(pts_m)
        return (
            (depth > NEAR_M)
            & (uv[:, 0] >= -margin_px) & (uv[:, 0] < self.width_px + margin_px)
            & (uv[:, 1] >= -margin_px) & (uv[:, 1] < self.height_px + margin_px)
        )


def clip_polygon_near(pts_cam: np.ndarray, near_m: float = NEAR_M) -> np.ndarray:
    """Clip a polygon in camera coordinates to z ≥ `near_m` (Sutherland–Hodgman against one plane)."""
    inside = pts_cam[:, 2] >= near_m
    if inside.all():
        return pts_cam
    if not inside.any():
        return pts_cam[:0]
    out = []
    n = len(pts_cam)
    for i in range(n):
        a, b = pts_cam[i], pts_cam[(i + 1) % n]
        ina, inb = a[2] >= near_m, b[2] >= near_m
        if ina:
            out.append(a)
        if ina != inb:
            t = (near_m - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out).reshape(-1, 3)


def clip_segment_near(a: np.ndarray, b: np.ndarray, near_m: float = NEAR_M) -> tuple[np.ndarray, np.ndarray] | None:
    """Clip a camera-space segment to z ≥ `near_m`; None when it lies wholly behind."""
    ina, inb = a[2] >= near_m, b[2] >= near_m
    if ina and inb:
        return a, b
    if not ina and not inb:
        return None
    t = (near_m - a[2]) / (b[2] - a[2])
    mid = a + t * (b - a)
    return (a, mid) if ina else (mid, b)
