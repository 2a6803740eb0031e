"""Which frames of a flight to analyse: by ground covered, not by frame count.

A drone video at 30 fps sees the same ground in dozens of consecutive frames; detecting on all of them costs
time and adds nothing. `select_frames` keeps a frame when enough of its ground is new: it walks the frames in
time order and takes the next frame whose footprint is covered by the last kept frame's footprint by less than
`overlap_frac` of its own area. For a flight along a straight line that is exactly the rule "the footprint has
moved by more than (1 − overlap) of its length along the direction of travel": a footprint of length L moved
by t along its length overlaps the old one by 1 − t/L. Turning (yaw), tilting the gimbal and climbing are
covered by the same measure, since each brings new ground into view; descending does not (the lower frame sees
a part of what the higher one saw).

Rules:
- the first frame with a usable pose is always kept;
- a frame is never kept sooner than `min_interval_s` after the last one (a bound on decoding and detection
  work when the drone turns fast); if that leaves less overlap than asked, the plan reports it;
- while hovering (or flying so slowly that the footprint barely moves) one frame is kept every
  `max_interval_s`;
- frames without telemetry, or whose pose is unusable (no altitude, camera at or below the ground, looking
  at the sky), are skipped and counted by reason.

This is pure logic on timestamps and poses; the video reader seeks to the chosen times afterwards.

Example:
    >>> import numpy as np
    >>> from detector.types import FrameGeo
    >>> from detector.geo.camera import CameraIntrinsics
    >>> from detector.geo.enu import LocalFrame
    >>> local = LocalFrame(31.23, 121.47, 0.0)
    >>> t_s = np.arange(0, 20, 0.5)  # 10 m/s north at 50 m, nadir, 90° field of view: a 100 m footprint
    >>> geos = [FrameGeo(*local.to_geodetic(0.0, 10.0 * t, 0.0)[:2], alt_m=50.0, yaw_deg=0.0, pitch_deg=-90.0)
    ...         for t in t_s]
    >>> plan = select_frames(t_s, geos, CameraIntrinsics.from_hfov(90.0, 100, 100), overlap_frac=0.62, local=local)
    >>> plan.t_s.tolist()  # the first frame that moved more than 38 m: every 40 m, 4 s
    [0.0, 4.0, 8.0, 12.0, 16.0]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detector.geo.camera import (
    DEFAULT_MAX_RANGE_M,
    CameraIntrinsics,
    convex_intersection,
    frame_footprint,
    polygon_area_m2,
)
from detector.geo.enu import LocalFrame
from detector.geo.georef import pose_from_geo
from detector.types import FrameGeo

__all__ = ["DEFAULT_MAX_INTERVAL_S", "DEFAULT_MIN_INTERVAL_S", "SamplingPlan", "select_frames"]

DEFAULT_MAX_INTERVAL_S = 10.0
"""While hovering, one frame this often (a stall being set up or a person at a bike is worth a second look)."""

DEFAULT_MIN_INTERVAL_S = 0.2
"""Never two frames closer than this: at most 5 frames a second however fast the view sweeps."""

DEFAULT_RANGE_FACTOR = 3.0
"""Footprints used for sampling reach at most this many times the camera's height above the ground (slant
range): beyond it an oblique view's pixels are more than 3× (across) to 9× (along the line of sight) coarser
than at nadir, too coarse for bicycles, so that ground should not decide how often to sample."""


@dataclass(frozen=True, eq=False)  # holds arrays
class SamplingPlan:
    """The frames to analyse.

    Attributes:
        indices: (K,) positions of the chosen frames in the input (video frame indices when the input was
            every frame).
        t_s: (K,) their flight times.
        reasons: Why each was chosen: ``first``, ``overlap`` (enough new ground), ``max_interval`` (hovering).
        overlap: (K,) share of each chosen frame's footprint already covered by the previous chosen frame's
            (NaN for the first).
        footprints_en_m: Each chosen frame's ground footprint, (M, 2) east/north metres, counter-clockwise.
        skipped: Frames left out for want of a usable pose, by reason (``no_telemetry``, ``missing_alt``,
            ``missing_yaw``, ``missing_pitch``, ``not_above_ground``, ``no_ground_in_view``).
        n_frames: Number of input frames.
        overlap_frac: The overlap asked for.
        n_overlap_short: Chosen frames whose overlap with the previous one fell short of `overlap_frac` by more
            than 0.1 (the view moved more than `min_interval_s` allows, or telemetry had a gap).
    """

    indices: np.ndarray
    t_s: np.ndarray
    reasons: tuple[str, ...]
    overlap: np.ndarray
    footprints_en_m: tuple[np.ndarray, ...]
    skipped: Counter[str] = field(default_factory=Counter)
    n_frames: int = 0
    overlap_frac: float = 0.6
    n_overlap_short: int = 0

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _validate(
    t_s: np.ndarray, geos: Sequence[FrameGeo | None], overlap_frac: float, max_s: float, min_s: float
) -> None:
    if t_s.ndim != 1 or len(t_s) != len(geos):
        raise ValueError(f"select_frames: t_s has shape {t_s.shape} but there are {len(geos)} poses")
    if not np.isfinite(t_s).all():
        raise ValueError(f"select_frames: t_s[{int(np.flatnonzero(~np.isfinite(t_s))[0])}] is not finite")
    if len(t_s) > 1 and (np.diff(t_s) < 0).any():
        i = int(np.flatnonzero(np.diff(t_s) < 0)[0]) + 1
        raise ValueError(f"select_frames: t_s must not decrease, but t_s[{i}]={t_s[i]} < t_s[{i - 1}]={t_s[i - 1]}")
    if not 0.0 <= overlap_frac < 1.0:
        raise ValueError(f"select_frames: overlap_frac must lie in [0, 1), got {overlap_frac}")
    if not (min_s >= 0.0 and max_s > min_s):
        raise ValueError(f"select_frames: need 0 <= min_interval_s < max_interval_s, got {min_s} and {max_s}")


def select_frames(
    t_s: np.ndarray,
    geos: Sequence[FrameGeo | None],
    intr: CameraIntrinsics,
    overlap_frac: float = 0.6,
    max_interval_s: float = DEFAULT_MAX_INTERVAL_S,
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
    *,
    local: LocalFrame | None = None,
    ground_up_m: float = 0.0,
    range_factor: float = DEFAULT_RANGE_FACTOR,
) -> SamplingPlan:
    """Pick the frames to analyse so that consecutive footprints overlap by about `overlap_frac`.

    Args:
        t_s: (N,) flight time of each candidate frame, seconds, non-decreasing.
        geos: The pose of each frame (None where telemetry is missing).
        intr: Intrinsics of the frames.
        overlap_frac: Share of a new frame's footprint that may already have been seen (default 60 %).
        max_interval_s: Keep a frame at least this often, even when the footprint has not moved.
        min_interval_s: Keep frames at least this far apart.
        local: The flight's local frame; default: at the first frame with telemetry.
        ground_up_m: Ground elevation relative to the take-off point.
        range_factor: Footprints reach at most ``range_factor × height`` (slant range; see
            ``DEFAULT_RANGE_FACTOR``), and never beyond `detector.geo.camera.DEFAULT_MAX_RANGE_M`.

    Raises:
        ValueError: Mismatched lengths, decreasing or non-finite times, or parameters out of range.
    """
    times = np.asarray(t_s, np.float64).reshape(-1) if np.size(t_s) else np.zeros(0)
    _validate(times, geos, overlap_frac, max_interval_s, min_interval_s)
    if local is None:
        first = next((g for g in geos if g is not None), None)
        local = LocalFrame(first.lat_deg, first.lon_deg, 0.0) if first is not None else LocalFrame(0.0, 0.0, 0.0)

    skipped: Counter[str] = Counter()
    chosen: list[int] = []
    reasons: list[str] = []
    overlaps: list[float] = []
    footprints: list[np.ndarray] = []
    for i, geo in enumerate(geos):
        pose, reason = pose_from_geo(geo, local, ground_up_m)
        if pose is None:
            skipped[reason] += 1
            continue
        if chosen and times[i] - times[chosen[-1]] < min_interval_s:
            continue  # too soon whatever the footprint: no need to build it
        height_m = pose.up_m - ground_up_m
        # Corners suffice (straight edges); the sampled outline of frame_footprint's default is for drawing.
        footprint = frame_footprint(
            intr, pose, ground_up_m, max_range_m=min(DEFAULT_MAX_RANGE_M, range_factor * height_m), samples_per_edge=1
        )
        area_m2 = polygon_area_m2(footprint)
        if area_m2 <= 0.0:
            skipped["no_ground_in_view"] += 1
            continue
        if not chosen:
            overlap, why = math.nan, "first"
        else:
            overlap = polygon_area_m2(convex_intersection(footprint, footprints[-1])) / area_m2
            if overlap < overlap_frac:
                why = "overlap"
            elif times[i] - times[chosen[-1]] >= max_interval_s:
                why = "max_interval"
            else:
                continue
        chosen.append(i)
        reasons.append(why)
        overlaps.append(overlap)
        footprints.append(footprint)
    overlap_arr = np.asarray(overlaps, np.float64)
    return SamplingPlan(
        indices=np.asarray(chosen, np.int64),
        t_s=times[chosen] if chosen else np.zeros(0),
        reasons=tuple(reasons),
        overlap=overlap_arr,
        footprints_en_m=tuple(footprints),
        skipped=skipped,
        n_frames=len(geos),
        overlap_frac=overlap_frac,
        n_overlap_short=int(np.sum(overlap_arr[1:] < overlap_frac - 0.1)) if len(overlap_arr) > 1 else 0,
    )
