"""Zones drawn on a camera's view, and which tracked objects stand inside them.

A `Zone` is a polygon in normalised image coordinates (0..1, so it survives a change of stream
resolution) with a kind, an optional weekly schedule and per-zone parameters. A `PolygonZone` is the
stateful, per-camera stage that answers ``zone.trigger(detections) -> bool mask``:

* An object is inside when its *anchor* is: the bottom-centre of its box by default (where it stands on
  the ground; a stall's awning may hang over the kerb while its legs stand on the pavement), or the box
  centre. An object straddling the edge is decided by its anchor alone.
* Membership has inertia: a track's state changes only after ``inertia_samples`` consecutive samples agree,
  so an object standing on the line does not flicker in and out (and its dwell time does not restart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import ClassVar, Iterable, Literal, Sequence

import numpy as np

from detector.errors import StreetwatchError
from detector.schedule import WeeklySchedule
from detector.types import Detections

__all__ = [
    "Anchor",
    "PolygonZone",
    "Zone",
    "ZoneError",
    "ZoneKind",
    "anchor_points",
    "points_in_polygon",
    "polygon_problems",
]

Anchor = Literal["bottom_center", "center"]
ANCHORS: tuple[str, ...] = ("bottom_center", "center")
# Coordinates this close are the same point; areas this small are no area (normalised units).
_EPS = 1e-9


class ZoneKind(str, Enum):
    """What a zone means to the rules. Add members here as new rules need new kinds."""

    NO_VENDING = "no_vending"
    VENDING_ALLOWED = "vending_allowed"
    BIKE_PARKING = "bike_parking"
    WATCH_AREA = "watch_area"
    EXCLUSION = "exclusion"


class ZoneError(StreetwatchError, ValueError):
    """A zone is malformed; the message names the zone id and the offending point or segment."""


# --- polygon validation --------------------------------------------------------------------------------

def _orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    """Twice the signed area of triangle abc: > 0 counter-clockwise, < 0 clockwise, ~0 collinear."""
    value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return 0.0 if abs(value) < _EPS else value


def _on_segment(a, b, p) -> bool:
    """p, known to be collinear with segment ab, lies within its bounding box."""
    return min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS and min(a[1], b[1]) - _EPS <= p[1] <= max(
        a[1], b[1]
    ) + _EPS


def _segments_intersect(p1, p2, q1, q2) -> bool:
    """Whether closed segments p1p2 and q1q2 share any point (crossing, touching or overlapping)."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def _folds_back(shared, a, b) -> bool:
    """Adjacent segments shared→a and shared→b lie on one line and overlap beyond their common vertex."""
    if _orient(shared, a, b) != 0:
        return False
    return (a[0] - shared[0]) * (b[0] - shared[0]) + (a[1] - shared[1]) * (b[1] - shared[1]) > 0


def _segment_name(i: int, n: int) -> str:
    return f"{i}\u2013{(i + 1) % n}"  # "2–3": points are numbered from 0 as in the config list


def polygon_problems(points: Sequence[Sequence[float]]) -> list[str]:
    """Everything wrong with a normalised polygon, one reason per entry; empty when it is valid.

    A polygon needs at least 3 points, every coordinate within [0, 1], no repeated consecutive point,
    non-zero area and no self-intersection. Points are numbered from 0; segment ``i–j`` joins points i
    and j. A closing point equal to the first is allowed and ignored.

    Example:
        >>> polygon_problems([(0, 0), (1, 1), (1, 0), (0, 1)])
        ['self-intersecting at segment 2\u20133 (crosses segment 0\u20131)']
        >>> polygon_problems([(0, 0), (1.5, 0), (0, 1)])
        ['point 1 (1.5, 0) lies outside [0, 1]']
    """
    try:
        pts = [(float(p[0]), float(p[1])) for p in points]
        if any(len(p) != 2 for p in points):
            raise TypeError
    except (TypeError, ValueError, IndexError):
        return ["every point must be a pair [x, y] of numbers"]
    if len(pts) >= 4 and pts[0] == pts[-1]:
        pts = pts[:-1]  # an explicitly closed ring
    problems: list[str] = []
    if len(pts) < 3:
        return [f"needs at least 3 points, got {len(pts)}"]
    for i, (x, y) in enumerate(pts):
        if not (math.isfinite(x) and math.isfinite(y)) or not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            problems.append(f"point {i} ({x:g}, {y:g}) lies outside [0, 1]")
    n = len(pts)
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        if abs(a[0] - b[0]) < _EPS and abs(a[1] - b[1]) < _EPS:
            problems.append(f"points {i} and {(i + 1) % n} are the same (zero-length segment {_segment_name(i, n)})")
    if problems:
        return problems
    if all(_orient(pts[0], pts[1], p) == 0 for p in pts[2:]):
        return ["has zero area (all points lie on one line)"]
    for i in range(n):
        for j in range(i + 1, n):
            p1, p2, q1, q2 = pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]
            if j == i + 1 or (i == 0 and j == n - 1):
                # Neighbours share a vertex by construction; they are wrong only when they double back.
                shared, a, b = (p2, p1, q2) if j == i + 1 else (p1, p2, q1)
                if _folds_back(shared, a, b):
                    problems.append(f"self-intersecting at segment {_segment_name(j, n)} "
                                    f"(folds back onto segment {_segment_name(i, n)})")
            elif _segments_intersect(p1, p2, q1, q2):
                problems.append(f"self-intersecting at segment {_segment_name(j, n)} "
                                f"(crosses segment {_segment_name(i, n)})")
    if not problems:
        # A simple polygon whose points are not all on one line has area; this guards rounding only.
        area = 0.5 * abs(sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n)))
        if area < _EPS:
            problems.append("has zero area")
    return problems


# --- membership ----------------------------------------------------------------------------------------

def points_in_polygon(points_xy: np.ndarray, polygon_xy: np.ndarray) -> np.ndarray:
    """(N,) bool: which points lie inside a simple polygon (even-odd ray casting, vectorised).

    Points exactly on an edge may fall either way; zones are decided by an anchor, not a pixel line.

    Example:
        >>> square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
        >>> points_in_polygon(np.array([[5, 5], [15, 5]]), square).tolist()
        [True, False]
    """
    pts = np.asarray(points_xy, np.float64).reshape(-1, 2)
    poly = np.asarray(polygon_xy, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros((0,), bool)
    xi, yi = poly[:, 0], poly[:, 1]
    xj, yj = np.roll(xi, -1), np.roll(yi, -1)
    px, py = pts[:, 0:1], pts[:, 1:2]  # (N, 1) against (M,) edges
    straddles = (yi > py) != (yj > py)
    dy = np.where(yj == yi, 1.0, yj - yi)  # horizontal edges never straddle; avoid dividing by zero
    x_cross = xi + (py - yi) * (xj - xi) / dy
    crossings = straddles & (px < x_cross)
    return (crossings.sum(axis=1) % 2) == 1


def anchor_points(detections: Detections, anchor: Anchor) -> np.ndarray:
    """(N, 2) anchor of each box in pixels: bottom-centre (where it stands) or centre."""
    if anchor == "bottom_center":
        return detections.bottom_center_xy
    if anchor == "center":
        return detections.center_xy
    raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")


@dataclass(frozen=True)
class Zone:
    """A named polygon on a camera's view, with what it means and when it applies.

    Attributes:
        zone_id: Unique within its camera; used in violations and case records.
        kind: What the zone means to the rules (`ZoneKind` or its string value).
        polygon: Points (x, y) normalised to 0..1 of frame width and height, in drawing order.
        schedule: When the zone applies; None means always. For a ``vending_allowed`` zone it is when
            vending is allowed: outside it the zone counts as no-vending.
        inertia_samples: Consecutive samples that must agree before a track's membership changes.
        anchor: Which point of a box decides membership: ``bottom_center`` (default) or ``center``.
        min_dwell_s: Overrides the rule's ``min_dwell_s`` for objects in this zone, when set.

    Example:
        >>> z = Zone("nv-1", "no_vending", [(0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0)])
        >>> z.kind is ZoneKind.NO_VENDING, len(z.polygon)
        (True, 4)
        >>> Zone("bad", "no_vending", [(0, 0), (1, 1), (1, 0), (0, 1)])
        Traceback (most recent call last):
        ...
        detector.zones.ZoneError: zone 'bad': polygon: self-intersecting at segment 2–3 (crosses segment 0–1)
    """

    zone_id: str
    kind: ZoneKind
    polygon: tuple[tuple[float, float], ...]
    schedule: WeeklySchedule | None = None
    inertia_samples: int = 3
    anchor: Anchor = "bottom_center"
    min_dwell_s: float | None = None

    # Bounds of the numeric fields, declared once: the service's configuration derives its fields from them.
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"inertia_samples": (1, 100), "min_dwell_s": (0.0, 7 * 86400.0)}

    def __post_init__(self) -> None:
        if not isinstance(self.zone_id, str) or not self.zone_id:
            raise ZoneError(f"zone id must be a non-empty string, got {self.zone_id!r}")
        try:
            object.__setattr__(self, "kind", ZoneKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in ZoneKind)
            raise ZoneError(f"zone {self.zone_id!r}: unknown kind {self.kind!r} (one of {kinds})") from None
        problems = polygon_problems(self.polygon)
        if problems:
            raise ZoneError(f"zone {self.zone_id!r}: polygon: {'; '.join(problems)}")
        pts = tuple((float(x), float(y)) for x, y in self.polygon)
        if len(pts) >= 4 and pts[0] == pts[-1]:
            pts = pts[:-1]
        object.__setattr__(self, "polygon", pts)
        lo, hi = self.LIMITS["inertia_samples"]
        if not isinstance(self.inertia_samples, int) or not lo <= self.inertia_samples <= hi:
            raise ZoneError(f"zone {self.zone_id!r}: inertia_samples must be an integer in {lo:g}..{hi:g}, "
                            f"got {self.inertia_samples!r}")
        if self.anchor not in ANCHORS:
            raise ZoneError(f"zone {self.zone_id!r}: anchor must be one of {ANCHORS}, got {self.anchor!r}")
        lo, hi = self.LIMITS["min_dwell_s"]
        if self.min_dwell_s is not None and not lo <= self.min_dwell_s <= hi:
            raise ZoneError(f"zone {self.zone_id!r}: min_dwell_s must lie within [{lo:g}, {hi:g}], "
                            f"got {self.min_dwell_s}")

    def active(self, ts: datetime) -> bool:
        """Whether the zone's schedule is in force at `ts` (always, without a schedule)."""
        return self.schedule is None or self.schedule.active(ts)

    def polygon_px(self, frame_wh_px: tuple[int, int]) -> np.ndarray:
        """(M, 2) float32 polygon in pixels of a frame `frame_wh_px` = (width, height)."""
        w, h = frame_wh_px
        return (np.asarray(self.polygon, np.float32) * np.array([w, h], np.float32)).astype(np.float32)


@dataclass
class _Membership:
    inside: bool
    disagreeing: int  # consecutive samples whose raw answer differed from `inside`


class PolygonZone:
    """Which tracked objects are inside one zone, with per-track inertia.

    Holds state per tracker id, so one instance serves one camera (one stream of detections). Detections
    without ``tracker_id`` get the raw answer, without inertia.

    Args:
        zone: The zone to test against.
        frame_wh_px: (width, height) of the frames; change it with `set_frame_size`.

    Example:
        >>> zone = Zone("nv", "no_vending", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia_samples=2)
        >>> pz = PolygonZone(zone, (100, 100))
        >>> d = Detections(xyxy=[[10, 40, 20, 80]], confidence=[0.9], class_id=[0], tracker_id=[7])  # stands at y=80
        >>> pz.trigger(d).tolist(), pz.trigger(d).tolist()  # the second agreeing sample flips it
        ([False], [True])
    """

    def __init__(self, zone: Zone, frame_wh_px: tuple[int, int]):
        self.zone = zone
        self._state: dict[int, _Membership] = {}
        self.set_frame_size(frame_wh_px)

    def set_frame_size(self, frame_wh_px: tuple[int, int]) -> None:
        """Rescale the polygon to a new frame size (a stream changed resolution); membership is kept."""
        w, h = (int(v) for v in frame_wh_px)
        if w <= 0 or h <= 0:
            raise ValueError(f"frame size must be positive, got {frame_wh_px}")
        self.frame_wh_px = (w, h)
        self.polygon_px = self.zone.polygon_px(self.frame_wh_px)

    def contains(self, detections: Detections) -> np.ndarray:
        """(N,) raw membership of each anchor in this sample, without inertia and without changing state."""
        return points_in_polygon(anchor_points(detections, self.zone.anchor), self.polygon_px)

    def trigger(self, detections: Detections) -> np.ndarray:
        """(N,) bool: which detections are inside, after inertia. Updates the per-track state."""
        raw = self.contains(detections)
        if detections.tracker_id is None or self.zone.inertia_samples <= 1:
            if detections.tracker_id is not None:
                for tid, now_inside in zip(detections.tracker_id.tolist(), raw.tolist()):
                    self._state[tid] = _Membership(now_inside, 0)
            return raw
        out = np.zeros(len(detections), bool)
        for row, (tid, now_inside) in enumerate(zip(detections.tracker_id.tolist(), raw.tolist())):
            # A new track starts outside: entering needs the same agreement as any other change.
            state = self._state.setdefault(tid, _Membership(False, 0))
            if now_inside == state.inside:
                state.disagreeing = 0
            else:
                state.disagreeing += 1
                if state.disagreeing >= self.zone.inertia_samples:
                    state.inside, state.disagreeing = now_inside, 0
            out[row] = state.inside
        return out

    def is_inside(self, tracker_id: int) -> bool:
        """The current (inertia-filtered) membership of a track; False for one never seen."""
        state = self._state.get(int(tracker_id))
        return bool(state and state.inside)

    def forget(self, tracker_ids: Iterable[int]) -> None:
        """Drop the state of tracks that ended (keeps memory bounded on a long-running stream)."""
        for tid in tracker_ids:
            self._state.pop(int(tid), None)

    @property
    def tracked_ids(self) -> frozenset[int]:
        return frozenset(self._state)
