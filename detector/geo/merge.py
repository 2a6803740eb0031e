"""Per-frame ground detections → one `MapFinding` per physical object; findings of a later flight → earlier ones.

**Clustering.** Per class, sightings are linked when their ground points lie within a radius, and each
connected component is one object. The radius of a pair grows with the object:

    ``r_ij = min(MAX_RADIUS_M, max(base_radius(class), SIZE_FACTOR × min(size_i, size_j)))``

where ``size`` is the side of the square with the footprint's area and ``base_radius`` covers the
frame-to-frame jitter of one flight (attitude, altitude and timing errors; the GPS bias is common to
neighbouring frames, see the error budget in `detector.geo.georef`). A 10 m shed (size 10, r = 5 m) seen with
1 m jitter stays one finding; two bicycles 1.5 m apart (size ~1 m, r = the bicycle base radius, 1.2 m) stay two.
The smaller footprint of the pair is used because oblique views stretch a footprint along the line of sight.

Links are made nearest first, and never join two sightings from the **same frame**: the detector has already
separated those (after NMS, two boxes of one class in one frame are two objects), which keeps a row of parked
bicycles from chaining into one finding even when they stand closer than the jitter.

**Merged point: score-weighted median** of the members' east and north (coordinate-wise). The median ignores
the occasional bad sighting (a box cut by the frame border, a grazing oblique view, a frame whose telemetry
lags) that would drag a mean by its whole error divided by the count, and the score weights let the
detector's confident views count more. Ties at exactly half the weight take the midpoint, so two equal
sightings merge to their mean.

**Evidence.** The best sighting is the highest score, ties broken by the shortest range (the sharpest view);
its footprint is the finding's footprint and its frame is the evidence image.

**Ids** are ``<flight_id>:<class>:<n>``, n counting from 1 per class in order of first sighting (time, frame,
then position), so the same sightings always get the same ids whatever order they arrive in.

Example:
    >>> import numpy as np
    >>> from detector.geo.enu import LocalFrame
    >>> from detector.geo.types import GroundDetection
    >>> def seen(frame, east, north, score=0.8):
    ...     box = np.array([[east - 0.5, north - 0.5], [east + 0.5, north - 0.5], [east + 0.5, north + 0.5],
    ...                     [east - 0.5, north + 0.5]])
    ...     return GroundDetection(frame, frame * 0.5, "bicycle", score, np.zeros(4), east, north, box, 50.0)
    >>> found = merge_detections([seen(0, 10.0, 5.0), seen(1, 10.4, 5.2), seen(2, 14.0, 5.0)],
    ...                          LocalFrame(31.23, 121.47, 0.0), "flight-1")
    >>> [(f.finding_id, round(f.east_m, 2), f.n_frames) for f in found]
    [('flight-1:bicycle:1', 10.2, 2), ('flight-1:bicycle:2', 14.0, 1)]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from detector.geo.camera import polygon_area_m2
from detector.geo.enu import LocalFrame
from detector.geo.types import GroundDetection, MapFinding

__all__ = [
    "DEFAULT_MATCH_RADIUS_M",
    "DEFAULT_RADIUS_M",
    "MAX_RADIUS_M",
    "SIZE_FACTOR",
    "match_findings",
    "merge_detections",
]

DEFAULT_RADIUS_M: Mapping[str, float] = {"bicycle": 1.2, "stall": 2.0, "illegal_structure": 2.5}
"""Base merge radius per class: the within-flight jitter near nadir is about 1 m (`detector.geo.georef`); other
classes get 2 m."""

_OTHER_CLASS_RADIUS_M = 2.0

SIZE_FACTOR = 0.5
"""The radius grows to half the object's size: two sightings of one object lie within its own extent."""

MAX_RADIUS_M = 8.0
"""No pair is linked farther apart than this, however large the footprints."""

DEFAULT_MATCH_RADIUS_M = 5.0
"""Two flights without RTK each carry their own GPS bias (1–3 m): findings within 5 m are the same object."""


def _radius_for(radius_m: Mapping[str, float] | float, class_name: str) -> float:
    if isinstance(radius_m, Mapping):
        r = radius_m.get(class_name, DEFAULT_RADIUS_M.get(class_name, _OTHER_CLASS_RADIUS_M))
    else:
        r = radius_m
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"merge radius for class {class_name!r} must be a positive number of metres, got {r}")
    return float(r)


def _canonical_key(d: GroundDetection) -> tuple:
    """Sort key that does not depend on input order (ties between identical sightings do not matter)."""
    return (d.t_s, d.frame_index, d.east_m, d.north_m, -d.score, tuple(np.asarray(d.xyxy, float).tolist()))


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of `values` under non-negative `weights`; the midpoint when the cumulative weight hits half exactly.

    Example:
        >>> weighted_median(np.array([0.0, 10.0]), np.array([1.0, 1.0]))
        5.0
        >>> weighted_median(np.array([0.0, 1.0, 100.0]), np.array([1.0, 1.0, 1.0]))
        1.0
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    total = float(w.sum())
    if total <= 0:  # all-zero scores: plain median
        return float(np.median(v))
    cum = np.cumsum(w)
    k = int(np.searchsorted(cum, total / 2.0))
    if math.isclose(float(cum[k]), total / 2.0, rel_tol=1e-12) and k + 1 < len(v):
        return float((v[k] + v[k + 1]) / 2.0)
    return float(v[k])


class _Clusters:
    """Union-find over sightings whose components remember the frames they hold (no component spans two
    sightings of one frame)."""

    def __init__(self, frames: Sequence[int]) -> None:
        self.parent = list(range(len(frames)))
        self.frames = [{f} for f in frames]

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union_if_disjoint(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a == b or not self.frames[a].isdisjoint(self.frames[b]):
            return
        if len(self.frames[a]) < len(self.frames[b]):
            a, b = b, a
        self.parent[b] = a
        self.frames[a] |= self.frames[b]
        self.frames[b] = set()


def _candidate_pairs(points: np.ndarray, sizes: np.ndarray, base_r: float) -> list[tuple[float, int, int]]:
    """(distance, i, j) for every pair within its radius, through a grid of cells as wide as the largest
    radius (only neighbouring cells can hold a partner)."""
    radii = np.minimum(MAX_RADIUS_M, np.maximum(base_r, SIZE_FACTOR * sizes))
    cell = float(radii.max())
    keys = np.floor(points / cell).astype(np.int64)
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (kx, ky) in enumerate(keys):
        grid[(int(kx), int(ky))].append(i)
    pairs = []
    for (kx, ky), members in grid.items():
        near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in grid.get((kx + dx, ky + dy), ())]
        near_arr = np.asarray(near)
        for i in members:
            cand = near_arr[near_arr > i]
            if not len(cand):
                continue
            dist = np.linalg.norm(points[cand] - points[i], axis=1)
            r_pair = np.minimum(MAX_RADIUS_M, np.maximum(base_r, SIZE_FACTOR * np.minimum(sizes[i], sizes[cand])))
            for j, d in zip(cand[dist <= r_pair], dist[dist <= r_pair]):
                pairs.append((float(d), i, int(j)))
    pairs.sort()
    return pairs


def _best(members: Sequence[GroundDetection]) -> GroundDetection:
    return min(members, key=lambda d: (-d.score, d.range_m, d.t_s, d.frame_index))


def merge_detections(
    dets: Sequence[GroundDetection],
    local: LocalFrame,
    flight_id: str,
    radius_m: Mapping[str, float] | float = DEFAULT_RADIUS_M,
) -> list[MapFinding]:
    """One finding per physical object, however many frames saw it (see the module docstring for the rules).

    Args:
        dets: Ground detections of the whole flight, any order.
        local: The flight's local frame (for WGS84 output).
        flight_id: Prefix of the finding ids.
        radius_m: Base merge radius in metres, per class (missing classes fall back to `DEFAULT_RADIUS_M`,
            then 2 m) or one number for all.

    Returns:
        Findings ordered by class name, then id number.
    """
    by_class: dict[str, list[GroundDetection]] = defaultdict(list)
    for d in dets:
        by_class[d.class_name].append(d)
    findings: list[MapFinding] = []
    for class_name in sorted(by_class):
        sightings = sorted(by_class[class_name], key=_canonical_key)
        base_r = _radius_for(radius_m, class_name)
        points = np.array([[d.east_m, d.north_m] for d in sightings], np.float64)
        sizes = np.array([math.sqrt(polygon_area_m2(d.footprint_en_m)) for d in sightings])
        clusters = _Clusters([d.frame_index for d in sightings])
        for _, i, j in _candidate_pairs(points, sizes, base_r):
            clusters.union_if_disjoint(i, j)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(len(sightings)):
            groups[clusters.find(i)].append(i)
        # Members are already in canonical order, so each group's first member is its first sighting.
        for n, idx in enumerate(sorted(groups.values(), key=lambda g: g[0]), start=1):
            members = tuple(sightings[i] for i in idx)
            weights = np.array([m.score for m in members])
            east = weighted_median(points[idx, 0], weights)
            north = weighted_median(points[idx, 1], weights)
            best = _best(members)
            lat, lon, _ = local.to_geodetic(east, north, 0.0)
            findings.append(
                MapFinding(
                    finding_id=f"{flight_id}:{class_name}:{n}",
                    class_name=class_name,
                    lat_deg=float(lat),
                    lon_deg=float(lon),
                    east_m=east,
                    north_m=north,
                    footprint_en_m=best.footprint_en_m,
                    footprint_lonlat_deg=local.en_to_lonlat(best.footprint_en_m),
                    score=best.score,
                    n_frames=len({m.frame_index for m in members}),
                    first_t_s=min(m.t_s for m in members),
                    last_t_s=max(m.t_s for m in members),
                    best=best,
                    members=members,
                )
            )
    return findings


def match_findings(
    new: Sequence[MapFinding], old: Sequence[MapFinding], radius_m: Mapping[str, float] | float = DEFAULT_MATCH_RADIUS_M
) -> dict[str, str]:
    """Which findings of a later flight are objects already known from an earlier one.

    Pairs must share the class and lie within `radius_m` (per class or one number); each finding is matched at
    most once, closest pairs first (ties by id). Distances are computed in a local frame at the first new
    finding, so the two flights may have different take-off points.

    Returns:
        ``{new finding_id: old finding_id}``.
    """
    if not new or not old:
        return {}
    frame = LocalFrame(new[0].lat_deg, new[0].lon_deg, 0.0)

    def en(findings: Sequence[MapFinding]) -> np.ndarray:
        e, n, _ = frame.to_enu(np.array([f.lat_deg for f in findings]), np.array([f.lon_deg for f in findings]))
        return np.column_stack([e, n])

    new_en, old_en = en(new), en(old)
    pairs = []
    for i, f in enumerate(new):
        r = radius_m.get(f.class_name, DEFAULT_MATCH_RADIUS_M) if isinstance(radius_m, Mapping) else radius_m
        dist = np.linalg.norm(old_en - new_en[i], axis=1)
        for j in np.flatnonzero(dist <= r):
            if old[j].class_name == f.class_name:
                pairs.append((float(dist[j]), f.finding_id, old[j].finding_id))
    pairs.sort()
    matched: dict[str, str] = {}
    used_old: set[str] = set()
    for _, new_id, old_id in pairs:
        if new_id not in matched and old_id not in used_old:
            matched[new_id] = old_id
            used_old.add(old_id)
    return matched
