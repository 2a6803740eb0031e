"""Rules in map space: a flight's findings and the GeoJSON layers → violations and grid codes.

Three violation kinds are decided on the map, each by one pure function with a bounded parameter model:

* ``illegal_structure`` (违法建设 / 私搭乱建, `new_structures`): a structure finding whose footprint is covered
  by the ``baseline`` layers (approved structures, or an earlier flight's findings) for less than
  ``new_if_overlap_below`` of its area is new. Without any baseline layer nothing can be compared, so there is
  no such violation (the result's notes say so); a baseline layer with no features makes every structure new.
* ``bike_misparked`` (非机动车乱停放, `misparked_bikes`): a bike finding whose point lies outside every
  ``bike_parking`` polygon (e-fence) is misparked; misparked bikes within ``cluster_distance_m`` of each other
  (a chain of neighbours) form one violation, as the camera rule reports one per cluster. Without an e-fence
  layer no bike is judged (rather than every bike reported).
* ``stall_occupation`` (占道经营, `occupying_stalls`): a stall finding whose point lies in a ``no_vending``
  polygon whose schedule is active when the stall was first seen (flight start + ``first_t_s``, in the
  schedule's time zone) is a violation of that polygon.

A finding's *point* is its merged ground contact point (east/north metres); points on a polygon's edge are
inside it. Where polygons overlap, the first in order (layers as given, features in file order) wins — for
grid cells too: every finding and every violation gets the code of the first ``grid`` cell containing its
point, or "" outside every cell (counted in ``counts["findings_outside_grid"]`` for the caller to report).

`evaluate_map_rules` runs them all. Violation ids are deterministic: ``<kind>:<first finding id>`` (finding
ids sorted; a finding belongs to at most one violation of each kind).

Example:
    >>> from detector.geo.enu import LocalFrame
    >>> frame = LocalFrame(22.5431, 114.0579, 0.0)
    >>> result = evaluate_map_rules([], [], MapRulesParams(), frame, None)
    >>> result.violations, result.counts["findings"], result.notes[0]
    ((), 0, 'no grid layer: every grid code is empty')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from detector.geo.enu import LocalFrame
from detector.geo.layers import MapLayer, ProjectedLayer, area_m2, project_layer
from detector.geo.types import MapFinding
from detector.rules.bikes import BIKE_CLASSES
from detector.rules.stall import STALL_CLASSES

__all__ = [
    "MAP_RULE_CLASSES",
    "MAP_RULE_PARAMS",
    "MAP_RULE_ROLES",
    "BikeMapParams",
    "MapRuleOutcome",
    "MapRulesParams",
    "MapRulesResult",
    "MapViolation",
    "StallMapParams",
    "StructureMapParams",
    "evaluate_map_rules",
    "misparked_bikes",
    "new_structures",
    "occupying_stalls",
]

# A footprint smaller than this (m²) has no usable area: the structure rule falls back to its point.
_MIN_FOOTPRINT_M2 = 1e-4
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


# --- parameters -----------------------------------------------------------------------------------------

class _MapParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Findings scoring below this are not judged (findings already passed the model card's "
                    "per-class thresholds, hence 0 by default).")


class StructureMapParams(_MapParams):
    """Parameters of the new-structure rule (``illegal_structure``, 违法建设)."""

    classes: tuple[ClassName, ...] = Field(
        ("illegal_structure",), min_length=1, max_length=16,
        description="Detector classes that are rooftop / ground structures.")
    new_if_overlap_below: float = Field(
        0.2, ge=0.0, le=1.0,
        description="A structure is new when the baseline covers less than this share of its footprint's area "
                    "(0: never new; 1: new unless wholly covered).")


class BikeMapParams(_MapParams):
    """Parameters of the misparked-bike rule (``bike_misparked``, 非机动车乱停放)."""

    classes: tuple[ClassName, ...] = Field(BIKE_CLASSES, min_length=1, max_length=16,
                                           description="Detector classes that are bikes (those of the camera rule).")
    cluster_distance_m: float = Field(
        3.0, ge=0.0, le=50.0,
        description="Misparked bikes at most this far apart (metres, point to point, chained) are one violation.")


class StallMapParams(_MapParams):
    """Parameters of the stall rule (``stall_occupation``, 占道经营)."""

    classes: tuple[ClassName, ...] = Field(STALL_CLASSES, min_length=1, max_length=16,
                                           description="Detector classes that are stalls (those of the camera rule).")


class MapRulesParams(BaseModel):
    """Every map rule's parameters, keyed by violation kind (as the configuration's ``rules`` section is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    illegal_structure: StructureMapParams = Field(default_factory=StructureMapParams,
                                                  description="New structures against the baseline.")
    bike_misparked: BikeMapParams = Field(default_factory=BikeMapParams,
                                          description="Bikes outside every e-fence.")
    stall_occupation: StallMapParams = Field(default_factory=StallMapParams,
                                             description="Stalls in no-vending areas while their schedule applies.")


MAP_RULE_PARAMS: dict[str, type[_MapParams]] = {
    "illegal_structure": StructureMapParams,
    "bike_misparked": BikeMapParams,
    "stall_occupation": StallMapParams,
}
"""Violation kind → its parameter model (the kind catalogue `service.kinds` and the configuration read it)."""
MAP_RULE_CLASSES: dict[str, tuple[str, ...]] = {k: tuple(p().classes) for k, p in MAP_RULE_PARAMS.items()}
"""Violation kind → its default detector classes, the kind's own class first."""
MAP_RULE_ROLES: dict[str, tuple[str, ...]] = {
    "illegal_structure": ("baseline",),
    "bike_misparked": ("bike_parking",),
    "stall_occupation": ("no_vending",),
}
"""Violation kind → the layer roles it reads (grid layers serve every kind)."""


# --- results --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # holds an array: compare fields, not objects
class MapViolation:
    """One violation found on the map.

    Attributes:
        violation_id: ``<kind>:<first of finding_ids>``; deterministic for the same findings.
        kind: ``illegal_structure``, ``bike_misparked`` or ``stall_occupation``.
        finding_ids: Member findings, sorted (one, or every bike of a cluster).
        lat_deg: WGS84 latitude: the finding's point, or the mean of a cluster's points.
        lon_deg: WGS84 longitude, likewise.
        footprint_lonlat_deg: (K, 2) ``[lon, lat]`` outline: the finding's footprint, or the convex hull of a
            cluster's footprints.
        grid_code: Code of the grid cell containing (lat_deg, lon_deg), "" outside every cell.
        zone_id: ``<layer>:<feature id>`` of the layer feature that made it a violation (the no-vending area),
            or "" when none did (a structure outside the baseline, a bike outside every e-fence).
        score: The finding's score; for a cluster the median of its members' (as the camera rules do).
        class_names: Class of each member, in `finding_ids` order.
        first_t_s: Earliest flight time any member was seen.
        last_t_s: Latest flight time any member was seen.
    """

    violation_id: str
    kind: str
    finding_ids: tuple[str, ...]
    lat_deg: float
    lon_deg: float
    footprint_lonlat_deg: np.ndarray
    grid_code: str
    zone_id: str
    score: float
    class_names: tuple[str, ...]
    first_t_s: float
    last_t_s: float


@dataclass(frozen=True)
class MapRuleOutcome:
    """What one rule returns: its violations (grid codes still empty), counted reasons and notes."""

    violations: tuple[MapViolation, ...]
    counts: Mapping[str, int]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MapRulesResult:
    """Everything `evaluate_map_rules` decided.

    Attributes:
        violations: Every violation, by kind (structures, bikes, stalls), then first sighting, then id.
        grid_code_by_finding: Finding id → grid code ("" outside every cell) for every finding given.
        counts: Counted reasons: ``findings``, ``findings_outside_grid``, ``violations_outside_grid`` and per
            rule ``<kind>.<reason>`` (e.g. ``illegal_structure.known``, ``stall_occupation.schedule_inactive``).
        notes: Sentences for the user about rules that could not run (a missing layer).
    """

    violations: tuple[MapViolation, ...]
    grid_code_by_finding: Mapping[str, str]
    counts: Mapping[str, int]
    notes: tuple[str, ...]

    @property
    def n_findings_outside_grid(self) -> int:
        """Findings outside every grid cell (0 when there is no grid layer)."""
        return self.counts.get("findings_outside_grid", 0)


# --- the rules ------------------------------------------------------------------------------------------

def _candidates(findings: Sequence[MapFinding], params: _MapParams, kind: str,
                counts: Counter) -> list[MapFinding]:
    chosen = [f for f in findings if f.class_name in params.classes]
    counts[f"{kind}.checked"] = len(chosen)
    kept = [f for f in chosen if f.score >= params.min_score]
    counts[f"{kind}.below_min_score"] = len(chosen) - len(kept)
    return kept


def _point(finding: MapFinding) -> np.ndarray:
    return np.array([[finding.east_m, finding.north_m]], np.float64)


def new_structures(findings: Sequence[MapFinding], baselines: Sequence[ProjectedLayer],
                   params: StructureMapParams) -> MapRuleOutcome:
    """Structure findings the baseline does not cover (``illegal_structure``).

    The covered share is the sum over baseline features of their overlap with the finding's footprint,
    divided by the footprint's area and capped at 1 (baseline polygons are expected not to overlap each
    other; where they do, shared area counts twice, which can only make a structure look known). A
    footprint without area is judged by its point instead: covered or not.

    Args:
        findings: The flight's findings (other classes are passed over).
        baselines: Every ``baseline`` layer, projected into the flight's frame. None at all: no violation.
        params: The rule's parameters.
    """
    kind = "illegal_structure"
    counts: Counter = Counter()
    candidates = _candidates(findings, params, kind, counts)
    if not baselines:
        note = (f"no baseline layer: {len(candidates)} structure finding(s) not compared, so no {kind} violation "
                "(configure a baseline layer or an earlier flight)")
        counts[f"{kind}.not_compared"] = len(candidates)
        return MapRuleOutcome((), dict(counts), (note,) if candidates else ())
    out = []
    for finding in candidates:
        footprint = np.asarray(finding.footprint_en_m, np.float64).reshape(-1, 2)
        area = area_m2([(footprint,)]) if len(footprint) >= 3 else 0.0
        if area >= _MIN_FOOTPRINT_M2:
            covered_m2 = sum(f.overlap_area_m2(footprint) for layer in baselines for f in layer.features)
            share = min(covered_m2 / area, 1.0)
        else:
            counts[f"{kind}.judged_by_point"] += 1
            share = 1.0 if any(f.covers(_point(finding))[0] for layer in baselines for f in layer.features) else 0.0
        # Compared to 6 decimals: the layer's WGS84 round trip moves its edges by nanometres, and "wholly
        # covered" must stay wholly covered.
        if round(share, 6) < params.new_if_overlap_below:
            counts[f"{kind}.new"] += 1
            out.append(_single(kind, finding, zone_id=""))
        else:
            counts[f"{kind}.known"] += 1
    return MapRuleOutcome(tuple(out), dict(counts))


def misparked_bikes(findings: Sequence[MapFinding], fences: Sequence[ProjectedLayer], params: BikeMapParams,
                    local: LocalFrame) -> MapRuleOutcome:
    """Bikes outside every e-fence, one violation per cluster (``bike_misparked``).

    Args:
        findings: The flight's findings (other classes are passed over).
        fences: Every ``bike_parking`` layer, projected. None at all: no bike is judged.
        params: The rule's parameters.
        local: The flight's frame (a cluster's mean point and hull go back to WGS84 through it).
    """
    kind = "bike_misparked"
    counts: Counter = Counter()
    candidates = _candidates(findings, params, kind, counts)
    if not fences:
        counts[f"{kind}.not_judged"] = len(candidates)
        note = (f"no bike_parking layer: {len(candidates)} bike finding(s) not judged, so no {kind} violation "
                "(without e-fences every bike would be misparked)")
        return MapRuleOutcome((), dict(counts), (note,) if candidates else ())
    points = np.array([[f.east_m, f.north_m] for f in candidates], np.float64).reshape(-1, 2)
    parked = np.zeros(len(candidates), bool)
    for layer in fences:
        for feature in layer.features:
            todo = ~parked
            if todo.any():
                parked[todo] = feature.covers(points[todo])
    counts[f"{kind}.in_parking"] = int(parked.sum())
    counts[f"{kind}.misparked"] = int((~parked).sum())
    loose = [f for f, p in zip(candidates, parked) if not p]
    out = []
    for members in _clusters(loose, params.cluster_distance_m):
        out.append(_single(kind, members[0], zone_id="") if len(members) == 1
                   else _cluster(kind, members, zone_id="", local=local))
    counts[f"{kind}.clusters"] = len(out)
    return MapRuleOutcome(tuple(out), dict(counts))


def occupying_stalls(findings: Sequence[MapFinding], areas: Sequence[ProjectedLayer], params: StallMapParams,
                     flight_time_local: datetime | None) -> MapRuleOutcome:
    """Stalls in a no-vending area while its schedule applies (``stall_occupation``).

    Args:
        findings: The flight's findings (other classes are passed over).
        areas: Every ``no_vending`` layer, projected. None at all: no stall is judged.
        params: The rule's parameters.
        flight_time_local: Aware local time of flight time 0 (the video's first frame); a stall is judged at
            ``flight_time_local + first_t_s``. May be None only when no area it stands in has a schedule.

    Raises:
        ValueError: A schedule must be checked and `flight_time_local` is None or naive.
    """
    kind = "stall_occupation"
    counts: Counter = Counter()
    candidates = _candidates(findings, params, kind, counts)
    if not areas:
        counts[f"{kind}.not_judged"] = len(candidates)
        note = (f"no no_vending layer: {len(candidates)} stall finding(s) not judged, so no {kind} violation")
        return MapRuleOutcome((), dict(counts), (note,) if candidates else ())
    out = []
    for finding in candidates:
        point = _point(finding)
        inside_any, zone_id = False, ""
        for layer in areas:
            for feature in layer.features:
                if not feature.covers(point)[0]:
                    continue
                inside_any = True
                schedule = feature.feature.schedule
                if schedule is None or schedule.active(_seen_at(flight_time_local, finding, layer.layer.name)):
                    zone_id = layer.layer.zone_id(feature.feature)
                    break
            if zone_id:
                break
        if zone_id:
            counts[f"{kind}.in_no_vending"] += 1
            out.append(_single(kind, finding, zone_id=zone_id))
        elif inside_any:
            counts[f"{kind}.schedule_inactive"] += 1
        else:
            counts[f"{kind}.outside_no_vending"] += 1
    return MapRuleOutcome(tuple(out), dict(counts))


def _seen_at(flight_time_local: datetime | None, finding: MapFinding, layer_name: str) -> datetime:
    if flight_time_local is None:
        raise ValueError(f"no_vending layer {layer_name!r} has schedules: the flight's local start time is needed "
                         "to check them")
    _check_aware(flight_time_local)
    return flight_time_local + timedelta(seconds=float(finding.first_t_s))


def _check_aware(ts: datetime) -> None:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"flight_time_local must be a timezone-aware datetime (local time with its offset), "
                         f"got {ts!r}")


# --- all rules together ---------------------------------------------------------------------------------

def evaluate_map_rules(findings: Sequence[MapFinding], layers: Sequence[MapLayer], params: MapRulesParams,
                       local: LocalFrame, flight_time_local: datetime | None) -> MapRulesResult:
    """Run every map rule over a flight's findings and give every finding and violation its grid code.

    Args:
        findings: The flight's merged findings (`detector.geo.merge`), in `local`'s frame.
        layers: Validated layers (`detector.geo.layers`), any number per role; order breaks ties.
        params: Every rule's parameters.
        local: The flight's local frame; each layer is projected into it once.
        flight_time_local: Aware local time of flight time 0, for no-vending schedules (see
            `occupying_stalls`).

    Raises:
        ValueError: Two findings share an id; `flight_time_local` is naive, or None where a schedule applies.

    Example:
        >>> from detector.geo.enu import LocalFrame
        >>> evaluate_map_rules([], [], MapRulesParams(), LocalFrame(22.5, 114.0), None).counts["findings"]
        0
    """
    ids = [f.finding_id for f in findings]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"finding ids must be unique, repeated: {', '.join(dup[:5])}")
    if flight_time_local is not None:
        _check_aware(flight_time_local)
    projected = [project_layer(layer, local) for layer in layers]

    def of_role(role: str) -> list[ProjectedLayer]:
        return [p for p in projected if p.layer.role == role]

    outcomes = [
        new_structures(findings, of_role("baseline"), params.illegal_structure),
        misparked_bikes(findings, of_role("bike_parking"), params.bike_misparked, local),
        occupying_stalls(findings, of_role("no_vending"), params.stall_occupation, flight_time_local),
    ]
    counts: Counter = Counter({"findings": len(findings)})
    notes: list[str] = []
    grids = of_role("grid")
    if not grids:
        notes.append("no grid layer: every grid code is empty")
    codes = _grid_codes(np.array([[f.east_m, f.north_m] for f in findings], np.float64).reshape(-1, 2), grids)
    code_by_finding = {f.finding_id: code for f, code in zip(findings, codes)}
    counts["findings_outside_grid"] = sum(1 for c in codes if not c) if grids else 0
    violations: list[MapViolation] = []
    for outcome in outcomes:
        counts.update(outcome.counts)
        notes.extend(outcome.notes)
        if not outcome.violations:
            continue
        # The violation's point in metres as the rules saw it (a cluster's mean point), not a WGS84 round trip,
        # so a one-finding violation always gets its finding's code.
        by_id = {f.finding_id: f for f in findings}
        points = np.array([np.mean([[by_id[i].east_m, by_id[i].north_m] for i in v.finding_ids], axis=0)
                           for v in outcome.violations], np.float64)
        v_codes = _grid_codes(points, grids)
        ordered = sorted(zip(outcome.violations, v_codes), key=lambda vc: (vc[0].first_t_s, vc[0].violation_id))
        violations.extend(replace(v, grid_code=code) for v, code in ordered)
    counts["violations_outside_grid"] = sum(1 for v in violations if not v.grid_code) if grids else 0
    return MapRulesResult(tuple(violations), MappingProxyType(code_by_finding), MappingProxyType(dict(counts)),
                          tuple(notes))


def _grid_codes(points_en_m: np.ndarray, grids: Sequence[ProjectedLayer]) -> list[str]:
    """The code of the first grid cell (layers in order, cells in file order) covering each point, or ""."""
    codes = [""] * len(points_en_m)
    todo = np.ones(len(points_en_m), bool)
    for grid in grids:
        if not todo.any():
            break
        first = np.full(len(points_en_m), -1)
        first[todo] = grid.first_covering(points_en_m[todo])
        for i in np.flatnonzero(first >= 0):
            codes[i] = grid.features[first[i]].feature.code
            todo[i] = False
    return codes


# --- building violations --------------------------------------------------------------------------------

def _single(kind: str, finding: MapFinding, zone_id: str) -> MapViolation:
    return MapViolation(
        violation_id=f"{kind}:{finding.finding_id}", kind=kind, finding_ids=(finding.finding_id,),
        lat_deg=float(finding.lat_deg), lon_deg=float(finding.lon_deg),
        footprint_lonlat_deg=np.asarray(finding.footprint_lonlat_deg, np.float64).reshape(-1, 2),
        grid_code="", zone_id=zone_id, score=float(finding.score), class_names=(finding.class_name,),
        first_t_s=float(finding.first_t_s), last_t_s=float(finding.last_t_s))


def _cluster(kind: str, members: Sequence[MapFinding], zone_id: str, local: LocalFrame) -> MapViolation:
    members = sorted(members, key=lambda f: f.finding_id)
    centre = np.mean([[f.east_m, f.north_m] for f in members], axis=0)
    lat, lon, _ = local.to_geodetic(centre[0], centre[1], 0.0)
    outline = np.concatenate([np.asarray(f.footprint_en_m, np.float64).reshape(-1, 2) for f in members]
                             + [np.array([[f.east_m, f.north_m]]) for f in members])
    return MapViolation(
        violation_id=f"{kind}:{members[0].finding_id}", kind=kind, finding_ids=tuple(f.finding_id for f in members),
        lat_deg=float(lat), lon_deg=float(lon), footprint_lonlat_deg=local.en_to_lonlat(_convex_hull(outline)),
        grid_code="", zone_id=zone_id, score=float(np.median([f.score for f in members])),
        class_names=tuple(f.class_name for f in members), first_t_s=min(float(f.first_t_s) for f in members),
        last_t_s=max(float(f.last_t_s) for f in members))


def _clusters(findings: Sequence[MapFinding], distance_m: float) -> list[list[MapFinding]]:
    """Connected components of findings whose points are at most `distance_m` apart (single linkage), in
    order of their first member."""
    n = len(findings)
    if n == 0:
        return []
    pts = np.array([[f.east_m, f.north_m] for f in findings], np.float64)
    near = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2) <= distance_m
    label = np.full(n, -1)
    groups: list[list[MapFinding]] = []
    for seed in range(n):
        if label[seed] >= 0:
            continue
        label[seed] = len(groups)
        stack, members = [seed], []
        while stack:
            i = stack.pop()
            members.append(findings[i])
            for j in np.flatnonzero(near[i] & (label < 0)):
                label[j] = label[seed]
                stack.append(int(j))
        groups.append(members)
    return groups


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """(K, 2) counter-clockwise convex hull (Andrew's monotone chain; a dozen lines, no geometry library)."""
    pts = np.unique(np.asarray(points, np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1])
                                       - (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])
