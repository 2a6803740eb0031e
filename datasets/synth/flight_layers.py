"""GeoJSON layers of a synthetic flight, made to match its town, and the truth of which objects are violations.

Four layers (RFC 7946 FeatureCollections, positions ``[lon, lat]``, exterior rings counter-clockwise):

- ``baseline``: known or approved structures. A share of the town's rooftop and yard structures is approved
  (their outline, widened by 0.3 m); the others are new, i.e. violations of kind ``illegal_structure``.
  Buildings themselves are not in the layer: a shed standing on a roof would otherwise overlap it.
- ``bike_parking``: e-fences around a share of the rows of parked bikes; a bike outside every e-fence is
  misparked (``bike_misparked``). Single bikes are never inside one.
- ``no_vending``: areas around a share of the markets, each with a ``schedule`` property (weekly windows in the
  flight's local time, the project's format ``[{days, start, end}]``, see `detector.schedule`) and a
  ``timezone``. Some schedules are in force during the flight and some are not: a stall inside an area whose
  schedule is in force is a violation (``stall_occupation``); stalls elsewhere are not.
- ``grid``: square cells (单元网格) covering the flight, aligned with east and north, with ``code`` properties
  (a district + street prefix and a 3-digit cell number, e.g. ``440304001007``).

Membership uses the object's centre (point in polygon, OpenCV), which is where a detector's ground point lands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np

from datasets.synth.flight_town import ObjectCluster, TownObject
from detector.geo.enu import LocalFrame
from detector.schedule import WeeklySchedule, load_timezone

__all__ = ["FlightLayersSpec", "ObjectVerdict", "FlightLayers", "build_layers", "VIOLATION_KINDS"]

VIOLATION_KINDS = {"illegal_structure": "illegal_structure", "bicycle": "bike_misparked", "stall": "stall_occupation"}
"""The violation kind each class can give (the map-space rules' kind names)."""


@dataclass(frozen=True)
class FlightLayersSpec:
    """How the layers are drawn around the town.

    Attributes:
        approved_structure_share: Share of structures in view that are in the baseline (approved).
        fenced_row_share: Share of bike rows in view with an e-fence around them.
        no_vending_market_share: Share of markets in view inside a no-vending area.
        active_schedule_share: Share of no-vending areas whose schedule is in force during the flight.
        grid_cell_m: Side of a grid cell, metres.
        grid_code_prefix: Code of the district and street the cells belong to (digits); each cell appends a
            3-digit number.
    """

    approved_structure_share: float = 0.5
    fenced_row_share: float = 0.5
    no_vending_market_share: float = 0.6
    active_schedule_share: float = 0.7
    grid_cell_m: float = 100.0
    grid_code_prefix: str = "440304001"

    def __post_init__(self) -> None:
        for name in ("approved_structure_share", "fenced_row_share", "no_vending_market_share",
                     "active_schedule_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FlightLayersSpec.{name} must lie within [0, 1], got {value}")
        if not 10.0 <= self.grid_cell_m <= 5000.0:
            raise ValueError(f"FlightLayersSpec.grid_cell_m must lie within [10, 5000] m, got {self.grid_cell_m}")
        if not (self.grid_code_prefix.isdigit() and 1 <= len(self.grid_code_prefix) <= 20):
            raise ValueError(f"FlightLayersSpec.grid_code_prefix must be 1..20 digits, got {self.grid_code_prefix!r}")


@dataclass(frozen=True)
class ObjectVerdict:
    """Whether one object is a violation under the layers, and where it belongs.

    Attributes:
        violation_kind: ``illegal_structure``, ``bike_misparked``, ``stall_occupation``, or ``""`` (none).
        zone_id: The layer feature that decides it (baseline feature of an approved structure, e-fence of a
            parked bike, no-vending area of a stall), else ``""``.
        grid_code: Code of the grid cell containing the object's centre (``""`` outside every cell).
    """

    violation_kind: str
    zone_id: str
    grid_code: str


@dataclass(frozen=True)
class FlightLayers:
    """The four layers as GeoJSON dictionaries and each object's verdict.

    Attributes:
        geojson: Layer name (``baseline``, ``bike_parking``, ``no_vending``, ``grid``) → FeatureCollection.
        verdicts: Object id → verdict.
    """

    geojson: dict[str, dict[str, Any]]
    verdicts: dict[str, ObjectVerdict]


def _widened(outline_en_m: np.ndarray, by_m: float) -> np.ndarray:
    """A convex outline grown by `by_m` (Minkowski sum with a 16-gon), counter-clockwise."""
    ang = np.linspace(0.0, 2 * math.pi, 16, endpoint=False)
    disc = by_m * np.column_stack([np.cos(ang), np.sin(ang)])
    pts = (np.asarray(outline_en_m, np.float64)[:, None, :] + disc[None]).reshape(-1, 2)
    hull = cv2.convexHull(pts.astype(np.float32).reshape(-1, 1, 2)).reshape(-1, 2).astype(np.float64)
    x, y = hull[:, 0], hull[:, 1]
    if float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) < 0:
        hull = hull[::-1]
    return hull


def _inside(polygon_en_m: np.ndarray, east_m: float, north_m: float) -> bool:
    contour = np.asarray(polygon_en_m, np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(contour, (float(east_m), float(north_m)), False) >= 0


def _feature(local: LocalFrame, feature_id: str, ring_en_m: np.ndarray, properties: dict[str, Any]) -> dict:
    lonlat = local.en_to_lonlat(ring_en_m)
    ring = [[round(float(lon), 8), round(float(lat), 8)] for lon, lat in lonlat]
    ring.append(ring[0])  # RFC 7946: a closed ring repeats its first position
    return {"type": "Feature", "id": feature_id, "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"id": feature_id, **properties}}


def _collection(name: str, features: list[dict]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "name": name, "features": features}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _schedules(flight_start: datetime, flight_end: datetime, timezone: str) -> tuple[list[dict], list[dict]]:
    """Two weekly windows, one in force during the whole flight and one not at all (checked, not assumed)."""
    hour = flight_start.astimezone(load_timezone(timezone)).hour
    on_start = ((hour - 2) % 24) * 60
    off_start = ((hour + 4) % 24) * 60
    active = [{"days": ["mon-sun"], "start": _hhmm(on_start), "end": _hhmm((on_start + 10 * 60) % 1440 or 1440)}]
    inactive = [{"days": ["mon-sun"], "start": _hhmm(off_start), "end": _hhmm((off_start + 4 * 60) % 1440 or 1440)}]
    on, off = WeeklySchedule.from_windows(active, timezone), WeeklySchedule.from_windows(inactive, timezone)
    for t in (flight_start, flight_end):
        if not on.active(t) or off.active(t):
            raise ValueError(f"flight from {flight_start.isoformat()} to {flight_end.isoformat()} is too long for the "
                             "synthetic no-vending schedules (keep it under two hours)")
    return active, inactive


def _grid(bounds_en_m: tuple[float, float, float, float], cell_m: float) -> tuple[float, float, int, int]:
    """(west, north, columns, rows) of grid cells aligned to multiples of `cell_m` covering the bounds."""
    e0, n0, e1, n1 = bounds_en_m
    west, east = math.floor(e0 / cell_m) * cell_m, math.ceil(e1 / cell_m) * cell_m
    south, north = math.floor(n0 / cell_m) * cell_m, math.ceil(n1 / cell_m) * cell_m
    return west, north, max(1, round((east - west) / cell_m)), max(1, round((north - south) / cell_m))


def build_layers(objects: Sequence[TownObject], clusters: Sequence[ObjectCluster], local: LocalFrame,
                 bounds_en_m: tuple[float, float, float, float], flight_start: datetime, duration_s: float,
                 timezone: str, spec: FlightLayersSpec, rng: np.random.Generator) -> FlightLayers:
    """Draw the layers around the objects in view and decide every object's verdict.

    Args:
        objects: Objects the flight sees.
        clusters: The town's bike rows and markets (those without a member in `objects` are ignored).
        local: The flight's local frame (origin at the take-off point).
        bounds_en_m: (east_min, north_min, east_max, north_max) of what the flight sees; the grid covers it.
        flight_start: Start of the flight, timezone-aware.
        duration_s: Length of the flight.
        timezone: IANA zone of the flight's place (schedules are in its local time).
        spec: Shares and grid.
        rng: Draws the shares.
    """
    in_view = {o.object_id: o for o in objects}
    flight_end = flight_start + timedelta(seconds=float(duration_s))
    kind_of: dict[str, str] = {}
    zone_of: dict[str, str] = {}

    baseline = []
    structures = sorted((o for o in objects if o.class_name == "illegal_structure"), key=lambda o: o.object_id)
    approved = rng.random(len(structures)) < spec.approved_structure_share
    if len(structures) >= 2 and 0.0 < spec.approved_structure_share < 1.0:
        approved[0], approved[1] = True, False  # at least one of each, so both outcomes are exercised
    for o, ok in zip(structures, approved):
        if ok:
            fid = f"B-{len(baseline) + 1:04d}"
            baseline.append(_feature(local, fid, _widened(o.footprint_en_m, 0.3),
                                     {"kind": "approved_structure", "approved_on": "2025-11-01"}))
            zone_of[o.object_id] = fid
        else:
            kind_of[o.object_id] = VIOLATION_KINDS["illegal_structure"]

    fences = []
    fence_polys: list[tuple[str, np.ndarray]] = []
    rows = [c for c in clusters if c.kind == "bike_row" and any(i in in_view for i in c.object_ids)]
    for c, fenced in zip(rows, rng.random(len(rows)) < spec.fenced_row_share):
        if fenced:
            fid = f"EF-{len(fences) + 1:04d}"
            poly = _widened(c.outline_en_m, 0.4)
            fences.append(_feature(local, fid, poly, {"kind": "e_fence", "capacity": len(c.object_ids) + 4}))
            fence_polys.append((fid, poly))
    for o in objects:
        if o.class_name != "bicycle":
            continue
        fence = next((fid for fid, poly in fence_polys if _inside(poly, o.east_m, o.north_m)), "")
        if fence:
            zone_of[o.object_id] = fence
        else:
            kind_of[o.object_id] = VIOLATION_KINDS["bicycle"]

    areas = []
    area_polys: list[tuple[str, np.ndarray, bool]] = []
    active, inactive = _schedules(flight_start, flight_end, timezone)
    markets = [c for c in clusters if c.kind == "market" and any(i in in_view for i in c.object_ids)]
    picks = rng.random((len(markets), 2))
    for c, (pick, on) in zip(markets, picks):
        if pick < spec.no_vending_market_share:
            fid = f"NV-{len(areas) + 1:04d}"
            enforced = bool(on < spec.active_schedule_share)
            poly = _widened(c.outline_en_m, 1.0)
            areas.append(_feature(local, fid, poly, {"kind": "no_vending", "timezone": timezone,
                                                     "schedule": active if enforced else inactive}))
            area_polys.append((fid, poly, enforced))
    for o in objects:
        if o.class_name != "stall":
            continue
        for fid, poly, enforced in area_polys:
            if _inside(poly, o.east_m, o.north_m):
                zone_of[o.object_id] = fid
                if enforced:
                    kind_of[o.object_id] = VIOLATION_KINDS["stall"]
                break

    west, north, n_cols, n_rows = _grid(bounds_en_m, spec.grid_cell_m)
    cells = []
    size = spec.grid_cell_m
    for r in range(n_rows):
        for c in range(n_cols):
            n = r * n_cols + c + 1
            e0, n1 = west + c * size, north - r * size
            ring = np.array([[e0, n1 - size], [e0 + size, n1 - size], [e0 + size, n1], [e0, n1]])
            code = f"{spec.grid_code_prefix}{n:03d}"
            cells.append(_feature(local, f"G-{n:03d}", ring, {"code": code, "name": f"网格 {n:03d}"}))

    def grid_code(o: TownObject) -> str:
        c, r = math.floor((o.east_m - west) / size), math.floor((north - o.north_m) / size)
        return f"{spec.grid_code_prefix}{r * n_cols + c + 1:03d}" if 0 <= c < n_cols and 0 <= r < n_rows else ""

    verdicts = {o.object_id: ObjectVerdict(kind_of.get(o.object_id, ""), zone_of.get(o.object_id, ""), grid_code(o))
                for o in objects}
    geojson = {"baseline": _collection("baseline", baseline), "bike_parking": _collection("bike_parking", fences),
               "no_vending": _collection("no_vending", areas), "grid": _collection("grid", cells)}
    return FlightLayers(geojson, verdicts)
