"""A north-up mosaic of a flight's own frames: each frame warped onto the ground plane by its exact homography.

The raster covers the local east/north plane (`detector.geo.enu.LocalFrame`, metres) with square pixels of
`Mosaic.m_per_px`, north up: continuous raster coordinates ``(x, y)`` (x right = east, y down = south, the
detector's convention, the centre of the top-left pixel at (0.5, 0.5)) map to the ground by

    east_m = east_min + x * m_per_px,    north_m = north_max - y * m_per_px

where ``en_bounds_m = (east_min, north_min, east_max, north_max)`` are the raster's **outer edges**
(``east_max - east_min == width_px * m_per_px`` exactly). `en_to_raster_px` / `raster_px_to_en` are the two
directions; the flight report uses the same functions through ``mosaic.json``.

Geometry: a ground point ``(e, n, g)`` (``g`` = the ground plane's height) is seen at the pixel
``K · Rᵀ · ((e, n, g) - C)`` with the pose's camera → ENU rotation ``R`` and centre ``C``; for points on the
plane that is a 3 × 3 homography of ``(e, n, 1)`` (`ground_to_image_homography`), built directly from K, R and
C rather than fitted to point pairs, so it is exact. Each frame fills only its ground footprint
(`detector.geo.camera.frame_footprint`: the part of the ground within range, so an oblique frame that sees the
horizon contributes only the ground below it).

Overlaps: **the frame that sees that ground closest to nadir wins**, per mosaic pixel (smallest
``horizontal distance / height`` from the camera). Frames of a flight overlap by design (60 % by default), and
the nadir-most view of a spot has the least perspective lean of walls and roofs and, at one altitude, the
finest ground sampling; "later on top" would hand each overlap to whichever frame happened to come last, often
an oblique one. Ties keep the earlier frame.

Example:
    >>> import numpy as np
    >>> from detector.geo.camera import CameraIntrinsics, CameraPose
    >>> intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
    >>> image = np.full((100, 100, 3), 200, np.uint8)
    >>> mosaic = build_mosaic([MosaicFrame(image, intr, CameraPose(0, 0, 50, yaw_deg=0, pitch_deg=-90))],
    ...                       m_per_px=1.0)
    >>> mosaic.image.shape, [round(v, 6) for v in mosaic.en_bounds_m]  # a 100 m square centred under the camera
    ((100, 100, 3), [-50.0, -50.0, 50.0, 50.0])
    >>> mosaic.en_to_px([[0.0, 0.0]]).round(6).tolist()  # the nadir point: the raster's centre
    [[50.0, 50.0]]
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from detector.geo.camera import (
    DEFAULT_MAX_RANGE_M,
    CameraIntrinsics,
    CameraPose,
    frame_footprint,
    gsd_m,
)

__all__ = [
    "BACKGROUND_BGR",
    "Mosaic",
    "MosaicFrame",
    "build_mosaic",
    "en_to_raster_px",
    "ground_to_image_homography",
    "raster_px_to_en",
]

BACKGROUND_BGR = (48, 48, 48)
"""Colour of mosaic pixels no frame covers: a dark grey that reads as "no imagery" next to real ground."""

_SUBPIXEL_BITS = 4  # cv2.fillPoly's fixed-point fraction bits: footprint edges placed to 1/16 px


@dataclass(frozen=True, eq=False)  # holds an array
class MosaicFrame:
    """One frame to place on the mosaic.

    Attributes:
        image: (H, W, 3) uint8 BGR picture.
        intrinsics: Intrinsics **of this picture** (a downscaled preview needs its own, scaled intrinsics).
        pose: Camera pose in the flight's local frame.
    """

    image: np.ndarray
    intrinsics: CameraIntrinsics
    pose: CameraPose

    def __post_init__(self) -> None:
        shape = getattr(self.image, "shape", None)
        if shape is None or len(shape) != 3 or shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"MosaicFrame.image must be an (H, W, 3) uint8 BGR array, got "
                             f"{getattr(self.image, 'dtype', type(self.image).__name__)} {shape}")
        if (shape[1], shape[0]) != (self.intrinsics.width_px, self.intrinsics.height_px):
            raise ValueError(f"MosaicFrame: image is {shape[1]}x{shape[0]} px but its intrinsics describe "
                             f"{self.intrinsics.width_px}x{self.intrinsics.height_px} px")


@dataclass(frozen=True, eq=False)  # holds arrays
class Mosaic:
    """A north-up raster of the local east/north plane (see the module doc for the pixel ↔ metre mapping).

    Attributes:
        image: (H, W, 3) uint8 BGR; ``BACKGROUND_BGR`` where no frame sees the ground. (0, 0, 3) when no
            frame contributed anything.
        en_bounds_m: ``(east_min, north_min, east_max, north_max)``, the raster's outer edges, metres;
            all zero when empty.
        m_per_px: Ground size of one raster pixel, metres (the requested value, or coarser when `max_px`
            demanded it).
        covered: (H, W) bool, True where some frame's footprint covers the pixel.
        source_index: (H, W) int32, index (into the input sequence) of the frame shown at each pixel; -1 where
            none.
        skipped: Frames left out, counted by reason: ``no_ground_in_view`` (the frame sees only sky or ground
            beyond range), ``camera_not_above_ground``.
    """

    image: np.ndarray
    en_bounds_m: tuple[float, float, float, float]
    m_per_px: float
    covered: np.ndarray
    source_index: np.ndarray
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def n_frames_used(self) -> int:
        """How many input frames show in at least one pixel."""
        return int(np.unique(self.source_index[self.source_index >= 0]).size)

    def en_to_px(self, en_m: np.ndarray) -> np.ndarray:
        """(N, 2) east/north metres → (N, 2) continuous raster pixels (may lie outside the raster)."""
        return en_to_raster_px(en_m, self.en_bounds_m, self.m_per_px)

    def px_to_en(self, xy_px: np.ndarray) -> np.ndarray:
        """(N, 2) continuous raster pixels → (N, 2) east/north metres."""
        return raster_px_to_en(xy_px, self.en_bounds_m, self.m_per_px)


def _points(values: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    arr = np.asarray(values, np.float64)
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {np.shape(values)}")
    return arr


def en_to_raster_px(en_m: np.ndarray | Sequence[Sequence[float]], en_bounds_m: Sequence[float],
                    m_per_px: float) -> np.ndarray:
    """(N, 2) east/north metres → (N, 2) continuous raster ``(x, y)`` of a north-up raster with these bounds.

    Example:
        >>> en_to_raster_px([[10.0, 20.0]], (0.0, 0.0, 100.0, 50.0), 0.5).tolist()  # 10 m east, 30 m below the top
        [[20.0, 60.0]]
    """
    en = _points(en_m, "en_m")
    east_min, _, _, north_max = (float(v) for v in en_bounds_m)
    return np.column_stack([(en[:, 0] - east_min) / m_per_px, (north_max - en[:, 1]) / m_per_px])


def raster_px_to_en(xy_px: np.ndarray | Sequence[Sequence[float]], en_bounds_m: Sequence[float],
                    m_per_px: float) -> np.ndarray:
    """(N, 2) continuous raster ``(x, y)`` → (N, 2) east/north metres (the inverse of `en_to_raster_px`)."""
    xy = _points(xy_px, "xy_px")
    east_min, _, _, north_max = (float(v) for v in en_bounds_m)
    return np.column_stack([east_min + xy[:, 0] * m_per_px, north_max - xy[:, 1] * m_per_px])


def ground_to_image_homography(intr: CameraIntrinsics, pose: CameraPose, ground_up_m: float = 0.0) -> np.ndarray:
    """(3, 3) H with ``pixel ~ H · (east_m, north_m, 1)`` for points on the ground plane ``up = ground_up_m``.

    The pinhole projection ``K · Rᵀ · (X - C)`` restricted to ``X = (e, n, g)``: the columns are the first two
    columns of ``Rᵀ`` and ``Rᵀ · ((0, 0, g) - C)``. Points behind the camera also map somewhere (with a
    negative homogeneous coordinate); callers keep to the frame's footprint.

    Example:
        >>> intr = CameraIntrinsics.from_hfov(90.0, 100, 100)
        >>> h = ground_to_image_homography(intr, CameraPose(0, 0, 50, yaw_deg=0, pitch_deg=-90))
        >>> p = h @ [50.0, 0.0, 1.0]  # 50 m east of the nadir point: the right edge, middle row
        >>> (p[:2] / p[2]).round(6).tolist()
        [100.0, 50.0]
    """
    rt = pose.rotation.T  # ENU → camera
    t = rt @ (np.array([0.0, 0.0, ground_up_m]) - pose.center_m)
    return intr.matrix @ np.column_stack([rt[:, 0], rt[:, 1], t])


def _scaled_frame(frame: MosaicFrame, factor: float) -> tuple[np.ndarray, CameraIntrinsics]:
    """The frame shrunk by `factor` (< 1) with INTER_AREA, and the intrinsics of the shrunk picture.

    Warping samples the source once per mosaic pixel; a source much finer than the mosaic would alias
    (moiré on roof tiles and road markings), so it is averaged down to about the mosaic's resolution first.
    """
    intr = frame.intrinsics
    w = max(1, round(intr.width_px * factor))
    h = max(1, round(intr.height_px * factor))
    sx, sy = w / intr.width_px, h / intr.height_px
    image = cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA)
    return image, CameraIntrinsics(w, h, intr.fx_px * sx, intr.fy_px * sy, intr.cx_px * sx, intr.cy_px * sy)


def _centre_gsd_m(frame: MosaicFrame, ground_up_m: float) -> float | None:
    try:
        return gsd_m(frame.intrinsics, frame.pose, ground_up_m)
    except ValueError:  # the image centre is at or above the horizon: no single figure describes the frame
        return None


def build_mosaic(
    frames: Sequence[MosaicFrame],
    m_per_px: float | None = None,
    max_px: int = 4096,
    *,
    ground_up_m: float = 0.0,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
) -> Mosaic:
    """Warp each frame onto a north-up raster of the ground plane; the nadir-most view wins each pixel.

    Args:
        frames: The frames, each with the intrinsics of its own picture and its pose in the local frame.
        m_per_px: Ground size of a raster pixel. Default: the footprints' larger extent / `max_px`, but never
            finer than the finest frame's ground sample distance at its image centre (finer pixels would only
            repeat the same source pixels).
        max_px: Largest raster side, pixels. A `m_per_px` that would exceed it is coarsened to fit (the
            returned `Mosaic.m_per_px` says which was used).
        ground_up_m: Height of the ground plane in the local frame (as in `detector.geo.camera`).
        max_range_m: Ground seen farther than this slant range is left out (as in `frame_footprint`).

    Returns:
        The mosaic; frames left out are counted in `Mosaic.skipped`. With no usable frame the image is
        (0, 0, 3), the bounds all zero, and `m_per_px` the requested value (0.0 when none was given).

    Raises:
        ValueError: `m_per_px` is not a positive finite number, or `max_px` < 1.
    """
    if m_per_px is not None and not (math.isfinite(m_per_px) and m_per_px > 0):
        raise ValueError(f"build_mosaic: m_per_px must be a positive finite number, got {m_per_px}")
    if max_px < 1:
        raise ValueError(f"build_mosaic: max_px must be >= 1, got {max_px}")
    skipped: Counter[str] = Counter()
    placed: list[tuple[int, MosaicFrame, np.ndarray]] = []  # (input index, frame, footprint)
    for i, frame in enumerate(frames):
        try:
            footprint = frame_footprint(frame.intrinsics, frame.pose, ground_up_m, max_range_m, samples_per_edge=1)
        except ValueError:
            skipped["camera_not_above_ground"] += 1
            continue
        if len(footprint) < 3:
            skipped["no_ground_in_view"] += 1
            continue
        placed.append((i, frame, footprint))
    if not placed:
        return Mosaic(np.zeros((0, 0, 3), np.uint8), (0.0, 0.0, 0.0, 0.0), float(m_per_px or 0.0),
                      np.zeros((0, 0), bool), np.zeros((0, 0), np.int32), skipped)

    every = np.concatenate([fp for _, _, fp in placed])
    east_min, north_min = (float(v) for v in every.min(axis=0))
    east_max, north_max = (float(v) for v in every.max(axis=0))
    extent_m = max(east_max - east_min, north_max - north_min)
    coarsest_allowed = extent_m / max_px
    if m_per_px is None:
        gsds = [g for g in (_centre_gsd_m(f, ground_up_m) for _, f, _ in placed) if g is not None]
        m_per_px = max(coarsest_allowed, min(gsds)) if gsds else coarsest_allowed
    else:
        m_per_px = max(float(m_per_px), coarsest_allowed)
    # ceil with a small tolerance so that extent / max_px gives max_px, not max_px + 1, after rounding
    width_px = max(1, min(max_px, math.ceil((east_max - east_min) / m_per_px - 1e-6)))
    height_px = max(1, min(max_px, math.ceil((north_max - north_min) / m_per_px - 1e-6)))
    bounds = (east_min, north_max - height_px * m_per_px, east_min + width_px * m_per_px, north_max)

    image = np.empty((height_px, width_px, 3), np.uint8)
    image[:] = BACKGROUND_BGR
    best = np.full((height_px, width_px), np.inf, np.float32)  # tan² of the off-nadir angle of the shown view
    source = np.full((height_px, width_px), -1, np.int32)
    for i, frame, footprint in placed:
        fp_px = en_to_raster_px(footprint, bounds, m_per_px)
        x0 = max(0, math.floor(fp_px[:, 0].min()))
        y0 = max(0, math.floor(fp_px[:, 1].min()))
        x1 = min(width_px, math.ceil(fp_px[:, 0].max()))
        y1 = min(height_px, math.ceil(fp_px[:, 1].max()))
        if x1 <= x0 or y1 <= y0:
            continue
        # OpenCV puts integer coordinates at pixel centres; ours are continuous (centre at +0.5)
        wins = np.zeros((y1 - y0, x1 - x0), np.uint8)
        ring = np.round((fp_px - [x0 + 0.5, y0 + 0.5]) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(wins, [ring], 255, cv2.LINE_8, _SUBPIXEL_BITS)
        # off-nadir angle of each pixel's ground as seen from this camera: tan² = horizontal² / height²;
        # separable, float32, and OpenCV's masked primitives rather than numpy's boolean indexing, which is
        # 10-40x slower on the millions of raster pixels an oblique footprint spans
        inv_h2 = 1.0 / (frame.pose.up_m - ground_up_m) ** 2
        east_c = bounds[0] + (np.arange(x0, x1) + 0.5) * m_per_px
        north_c = bounds[3] - (np.arange(y0, y1) + 0.5) * m_per_px
        tan2 = (((north_c - frame.pose.north_m) ** 2 * inv_h2).astype(np.float32)[:, None]
                + ((east_c - frame.pose.east_m) ** 2 * inv_h2).astype(np.float32)[None, :])
        cv2.bitwise_and(wins, cv2.compare(tan2, best[y0:y1, x0:x1], cv2.CMP_LT), dst=wins)
        wx, wy, ww, wh = cv2.boundingRect(wins)
        if ww == 0 or wh == 0:
            continue
        # warp only the bounding box of the pixels this frame wins (later frames often win most of an overlap)
        wins, tan2 = wins[wy:wy + wh, wx:wx + ww], tan2[wy:wy + wh, wx:wx + ww]
        x0, y0 = x0 + wx, y0 + wy
        x1, y1 = x0 + ww, y0 + wh

        src_image, src_intr = frame.image, frame.intrinsics
        centre_gsd = _centre_gsd_m(frame, ground_up_m)
        if centre_gsd is not None and centre_gsd < m_per_px:
            src_image, src_intr = _scaled_frame(frame, centre_gsd / m_per_px)
        # raster index (i, j) of the box → ground (e, n, 1) → continuous source pixel → OpenCV source index
        box_to_ground = np.array([[m_per_px, 0.0, bounds[0] + (x0 + 0.5) * m_per_px],
                                  [0.0, -m_per_px, bounds[3] - (y0 + 0.5) * m_per_px],
                                  [0.0, 0.0, 1.0]])
        to_index = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
        box_to_src = to_index @ ground_to_image_homography(src_intr, frame.pose, ground_up_m) @ box_to_ground
        # BORDER_REPLICATE: footprint pixels whose centres fall a hair outside the picture take its edge colour
        warped = cv2.warpPerspective(src_image, box_to_src, (ww, wh),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        # cv2.copyTo writes through the numpy views (row strides are kept), so these update the rasters in place
        cv2.copyTo(warped, wins, image[y0:y1, x0:x1])
        cv2.copyTo(np.ascontiguousarray(tan2), wins, best[y0:y1, x0:x1])
        cv2.copyTo(np.full((wh, ww), i, np.int32), wins, source[y0:y1, x0:x1])
    return Mosaic(image, bounds, float(m_per_px), source >= 0, source, skipped)
