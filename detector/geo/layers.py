"""GeoJSON layers for the drone map rules, and the little polygon geometry those rules need.

A layer is one GeoJSON file (RFC 7946: WGS84 ``[lon, lat]`` positions, a FeatureCollection or a single
Feature, Polygon and MultiPolygon geometries, holes allowed, either winding order) with one **role**:

* ``baseline``: known or approved structures; a rooftop structure that does not overlap them is new (违法建设).
  An earlier flight's ``findings.geojson`` is a baseline too (`load_previous_flight`): "比对", what is new since.
* ``bike_parking``: parking boxes / e-fences; a bike outside every one is misparked.
* ``no_vending``: areas where stalls are not allowed, with an optional weekly schedule for the whole layer
  and per feature in a property (default ``schedule``), a list of windows in the flight's time zone::

      "properties": {"id": "NV-3", "schedule": [{"days": ["mon-fri"], "start": "07:00", "end": "21:00"}]}

  A feature's own schedule replaces the layer's; without either the area applies at all times.
* ``grid``: 单元网格 cells (GB/T 30428.1), the cell code in a property (default ``code``, text or integer).

Every problem of a file is reported together in one `LayerError`, one line per problem naming the file,
the feature (its index in the file and its id) and the reason::

    blocks.geojson: feature[3] (id 'B-12'): polygon 0 ring 0 is not closed (first position [114.05, 22.54],
    last [114.06, 22.54])

A feature's id is the configured id property, else the Feature's ``id`` member, else ``#<index>``.

Geometry: `project_layer` projects a layer once into the flight's `detector.geo.enu.LocalFrame`; the rules
then work in metres with `covers_points` (point in polygon, holes and edges included) and
`intersection_area_m2` (overlap of a footprint with a layer polygon).

Example:
    >>> text = '''{"type": "FeatureCollection", "features": [{"type": "Feature", "id": "P1",
    ...   "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[114.0, 22.5], [114.001, 22.5],
    ...   [114.001, 22.501], [114.0, 22.501], [114.0, 22.5]]]}}]}'''
    >>> layer = parse_layer(text, "bike_parking", source="fences.geojson")
    >>> layer.features[0].feature_id, len(layer.features[0].rings_lonlat[0][0])
    ('P1', 4)
    >>> parse_layer('{"type": "Point", "coordinates": [1, 2]}', "grid", source="cells.geojson")
    Traceback (most recent call last):
    ...
    detector.geo.layers.LayerError: cells.geojson: is a GeoJSON 'Point', not a FeatureCollection or Feature \
(wrap the geometry in a Feature)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from detector.errors import StreetwatchError
from detector.geo.enu import LocalFrame
from detector.schedule import ScheduleError, WeeklySchedule, load_timezone
from detector.zones import points_in_polygon, polygon_problems

__all__ = [
    "LAYER_ROLES",
    "LayerError",
    "LayerRole",
    "MapFeature",
    "MapLayer",
    "ProjectedFeature",
    "ProjectedLayer",
    "area_m2",
    "covers_points",
    "intersection_area_m2",
    "load_layer",
    "load_previous_flight",
    "parse_layer",
    "parse_previous_flight",
    "project_layer",
]

LayerRole = Literal["baseline", "bike_parking", "no_vending", "grid"]
LAYER_ROLES: tuple[str, ...] = ("baseline", "bike_parking", "no_vending", "grid")
# A layer (or a feature) whose centre lies farther than this from the flight is almost surely the wrong file
# or has lon/lat swapped; a city's grid spans tens of kilometres, so the default leaves room for that.
DEFAULT_MAX_DISTANCE_M = 100_000.0
_MAX_LISTED_PROBLEMS = 20  # str(LayerError) lists this many; `problems` keeps them all
_GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                   "GeometryCollection")
# Lengths at or below this are no length, and points this close to an edge lie on it (metres).
_EPS_M = 1e-7


class LayerError(StreetwatchError, ValueError):
    """A GeoJSON layer is unreadable or invalid.

    Attributes:
        source: The file (or the label of in-memory text).
        problems: Every problem, each a complete line ``<file>: feature[3] (id 'B-12'): <reason>``.
    """

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        listed = self.problems[:_MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(listed)
        super().__init__("; ".join(listed) + (f"; and {more} more problems" if more else ""))


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class MapFeature:
    """One area of a layer.

    Attributes:
        feature_id: The feature's id (see the module docstring), unique within its layer when given in the file.
        rings_lonlat: One entry per polygon (a Polygon has one, a MultiPolygon several); each entry holds the
            polygon's rings, exterior first, then its holes; each ring a (K, 2) float64 array of
            ``[lon_deg, lat_deg]`` without the repeated closing position (K >= 3), in file order.
        properties: The feature's GeoJSON properties (read-only).
        index: Position of the feature in its file (0-based); the order rules use to break ties.
        schedule: When a ``no_vending`` area applies (its own or its layer's); None: always.
        code: The grid cell code (``grid`` layers), else "".
    """

    feature_id: str
    rings_lonlat: tuple[tuple[np.ndarray, ...], ...]
    properties: Mapping[str, Any]
    index: int = 0
    schedule: WeeklySchedule | None = None
    code: str = ""


@dataclass(frozen=True)
class MapLayer:
    """A validated layer.

    Attributes:
        name: Layer name (used in zone ids ``<name>:<feature_id>``); defaults to the file's stem.
        role: One of `LAYER_ROLES`.
        features: Its features in file order.
        source: The file it came from.
        schedule: The layer-wide schedule of a ``no_vending`` layer (features may override it).
    """

    name: str
    role: LayerRole
    features: tuple[MapFeature, ...]
    source: str = ""
    schedule: WeeklySchedule | None = None

    def __post_init__(self) -> None:
        if self.role not in LAYER_ROLES:
            raise ValueError(f"layer {self.name!r}: role must be one of {', '.join(LAYER_ROLES)}, got {self.role!r}")
        object.__setattr__(self, "features", tuple(self.features))

    def zone_id(self, feature: MapFeature) -> str:
        """The id a violation records for the feature that made it one: ``<layer name>:<feature id>``."""
        return f"{self.name}:{feature.feature_id}"


# --- loading --------------------------------------------------------------------------------------------

def _read_text(path: str | Path, what: str) -> str:
    """A GeoJSON file's text; a file that cannot be read or is not UTF-8 is one problem naming it."""
    source = str(path)
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise LayerError(source, [f"{source}: cannot read the {what}: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise LayerError(source, [f"{source}: not UTF-8 text (byte {exc.start}); GeoJSON must be UTF-8"]) from None


def load_layer(
    path: str | Path,
    role: LayerRole,
    *,
    name: str | None = None,
    id_property: str | None = None,
    code_property: str = "code",
    schedule: WeeklySchedule | None = None,
    schedule_property: str = "schedule",
    timezone: str | None = None,
    frame: LocalFrame | None = None,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> MapLayer:
    """Read and validate one GeoJSON layer file.

    Args:
        path: The ``.geojson`` / ``.json`` file (UTF-8).
        role: What the layer means to the rules (`LAYER_ROLES`).
        name: Layer name; defaults to the file's stem.
        id_property: Property holding each feature's id (default: the Feature's ``id`` member).
        code_property: Property holding a grid cell's code (``grid`` layers).
        schedule: Layer-wide schedule of a ``no_vending`` layer.
        schedule_property: Property holding a ``no_vending`` feature's own schedule windows.
        timezone: IANA zone of the features' schedules (default: that of `schedule`).
        frame: The flight's local frame: features farther than `max_distance_m` from its origin are problems
            (a wrong file, or lon/lat swapped). None skips the check.
        max_distance_m: See `frame`.

    Raises:
        LayerError: The file is unreadable or invalid; every problem is listed.
    """
    source = str(path)
    text = _read_text(path, "layer")
    return parse_layer(text, role, source=source, name=name if name is not None else Path(path).stem,
                       id_property=id_property, code_property=code_property, schedule=schedule,
                       schedule_property=schedule_property, timezone=timezone, frame=frame,
                       max_distance_m=max_distance_m)


def parse_layer(
    text: str | Mapping[str, Any],
    role: LayerRole,
    *,
    source: str = "<layer>",
    name: str | None = None,
    id_property: str | None = None,
    code_property: str = "code",
    schedule: WeeklySchedule | None = None,
    schedule_property: str = "schedule",
    timezone: str | None = None,
    frame: LocalFrame | None = None,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> MapLayer:
    """Validate a layer given as GeoJSON text or an already parsed object; see `load_layer` for the arguments.

    `source` names the input in problems; `name` defaults to it.
    """
    if role not in LAYER_ROLES:
        raise ValueError(f"layer role must be one of {', '.join(LAYER_ROLES)}, got {role!r}")
    if not math.isfinite(max_distance_m) or max_distance_m <= 0:
        raise ValueError(f"max_distance_m must be a positive number, got {max_distance_m!r}")
    tz_name = timezone if timezone is not None else (schedule.timezone if schedule is not None else None)
    if tz_name is not None:
        load_timezone(tz_name)  # a bad zone is the caller's mistake, not the file's: raise it as it is
    problems: list[str] = []
    raw_features = _feature_list(text, source, problems)
    features: list[MapFeature] = []
    ids_seen: dict[str, int] = {}
    for index, raw in enumerate(raw_features):
        feature = _parse_feature(raw, index, role, source, problems, ids_seen, id_property=id_property,
                                 code_property=code_property, layer_schedule=schedule,
                                 schedule_property=schedule_property, tz_name=tz_name)
        if feature is not None:
            features.append(feature)
    if frame is not None and features:
        problems += _distance_problems(features, source, frame, max_distance_m)
    if problems:
        raise LayerError(source, problems)
    return MapLayer(name=name if name is not None else source, role=role, features=tuple(features), source=source,
                    schedule=schedule if role == "no_vending" else None)


def load_previous_flight(
    path: str | Path,
    *,
    name: str | None = None,
    classes: Sequence[str] = ("illegal_structure",),
    frame: LocalFrame | None = None,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> MapLayer:
    """An earlier flight's ``findings.geojson`` as a ``baseline`` layer ("比对": what is new since then).

    That file holds, per finding, one Feature with a Point and one with the footprint Polygon, both with
    properties ``class`` and ``finding_id``. The footprints of findings of `classes` become the baseline's
    features (id = ``finding_id``); Point features and other classes are not baseline material and are
    passed over. A finding of `classes` without a footprint Polygon is a problem (the file is cut short).

    Raises:
        LayerError: The file is unreadable or invalid; every problem is listed.
    """
    source = str(path)
    text = _read_text(path, "findings")
    return parse_previous_flight(text, source=source, name=name if name is not None else Path(path).stem,
                                 classes=classes, frame=frame, max_distance_m=max_distance_m)


def parse_previous_flight(
    text: str | Mapping[str, Any],
    *,
    source: str = "<findings>",
    name: str | None = None,
    classes: Sequence[str] = ("illegal_structure",),
    frame: LocalFrame | None = None,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> MapLayer:
    """`load_previous_flight` for text or a parsed object; `source` names it in problems."""
    wanted = frozenset(classes)
    if not wanted:
        raise ValueError("classes must name at least one class")
    problems: list[str] = []
    raw_features = _feature_list(text, source, problems)
    features: list[MapFeature] = []
    ids_seen: dict[str, int] = {}
    with_point: dict[str, int] = {}
    for index, raw in enumerate(raw_features):
        if not isinstance(raw, Mapping):
            problems.append(f"{source}: feature[{index}]: is not a JSON object")
            continue
        props = raw.get("properties") or {}
        if not isinstance(props, Mapping) or props.get("class") not in wanted:
            continue
        finding_id = props.get("finding_id")
        label = _label(index, finding_id if isinstance(finding_id, str) else None)
        if not isinstance(finding_id, str) or not finding_id:
            problems.append(f"{source}: {label}: property 'finding_id' is missing (a streetwatch findings file "
                            "gives every feature one)")
            continue
        geometry = raw.get("geometry")
        if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
            with_point.setdefault(finding_id, index)
            continue
        feature = _parse_feature(raw, index, "baseline", source, problems, ids_seen, id_property="finding_id",
                                 code_property="code", layer_schedule=None, schedule_property="schedule",
                                 tz_name=None)
        if feature is not None:
            features.append(feature)
    for finding_id, index in with_point.items():
        if finding_id not in ids_seen:
            problems.append(f"{source}: {_label(index, finding_id)}: finding has a Point but no footprint Polygon")
    if frame is not None and features:
        problems += _distance_problems(features, source, frame, max_distance_m)
    if problems:
        raise LayerError(source, problems)
    return MapLayer(name=name if name is not None else source, role="baseline", features=tuple(features),
                    source=source)


def _feature_list(text: str | Mapping[str, Any], source: str, problems: list[str]) -> list[Any]:
    """The raw features of a FeatureCollection (or the one Feature), or [] with the problem recorded."""
    if isinstance(text, Mapping):
        data: Any = text
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})")
            return []
    if not isinstance(data, Mapping):
        problems.append(f"{source}: is a JSON {type(data).__name__}, not a GeoJSON FeatureCollection or Feature")
        return []
    kind = data.get("type")
    crs = data.get("crs")
    if crs is not None and not _is_wgs84_crs(crs):
        problems.append(f"{source}: declares the coordinate system {json.dumps(crs)[:80]}: RFC 7946 layers are "
                        "WGS84 [lon, lat] degrees (re-export as GeoJSON with EPSG:4326)")
    if kind == "Feature":
        return [data]
    if kind != "FeatureCollection":
        hint = " (wrap the geometry in a Feature)" if kind in _GEOMETRY_TYPES else ""
        problems.append(f"{source}: is a GeoJSON {kind!r}, not a FeatureCollection or Feature{hint}")
        return []
    features = data.get("features")
    if not isinstance(features, list):
        problems.append(f"{source}: 'features' must be a list, got {type(features).__name__}")
        return []
    return features


def _is_wgs84_crs(crs: Any) -> bool:
    # Old (2008) GeoJSON named a CRS; only the WGS84 lon/lat ones mean what RFC 7946 means.
    name = str(crs.get("properties", {}).get("name", "")) if isinstance(crs, Mapping) else str(crs)
    return name.upper().replace("::", ":").endswith(("CRS84", "EPSG:4326"))


def _label(index: int, feature_id: str | None) -> str:
    return f"feature[{index}]" + (f" (id {feature_id!r})" if feature_id else "")


def _id_of(raw: Mapping[str, Any], props: Mapping[str, Any], id_property: str | None) -> str | None:
    value = props.get(id_property) if id_property else raw.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value) if str(value) else None


def _parse_feature(
    raw: Any, index: int, role: str, source: str, problems: list[str], ids_seen: dict[str, int], *,
    id_property: str | None, code_property: str, layer_schedule: WeeklySchedule | None, schedule_property: str,
    tz_name: str | None,
) -> MapFeature | None:
    """One validated feature, or None with its problems appended."""
    if not isinstance(raw, Mapping):
        problems.append(f"{source}: feature[{index}]: is not a JSON object")
        return None
    props = raw.get("properties")
    if props is None:
        props = {}  # RFC 7946 allows "properties": null
    feature_id = _id_of(raw, props, id_property) if isinstance(props, Mapping) else None
    label = _label(index, feature_id)
    before = len(problems)

    def problem(reason: str) -> None:
        problems.append(f"{source}: {label}: {reason}")

    if raw.get("type") != "Feature":
        problem(f"is a {raw.get('type')!r}, not a 'Feature'")
        return None
    if not isinstance(props, Mapping):
        problem(f"'properties' must be an object or null, got {type(props).__name__}")
        return None
    if id_property and feature_id is None:
        problem(f"property {id_property!r} (the feature id) is missing or not text/integer")
    if feature_id is not None:
        if feature_id in ids_seen:
            problem(f"duplicate id {feature_id!r} (also feature[{ids_seen[feature_id]}])")
        else:
            ids_seen[feature_id] = index
    geometry = raw.get("geometry")
    polygons: list[tuple[np.ndarray, ...]] = []
    if not isinstance(geometry, Mapping):
        problem("has no geometry" if geometry is None else f"geometry must be an object, got {type(geometry).__name__}")
    elif geometry.get("type") not in ("Polygon", "MultiPolygon"):
        problem(f"geometry type {geometry.get('type')!r} is not supported (Polygon or MultiPolygon)")
    else:
        coords = geometry.get("coordinates")
        if geometry["type"] == "Polygon":
            parts, names = [coords], [""]
        elif isinstance(coords, list):
            parts, names = coords, [f"polygon {k} " for k in range(len(coords))]
            if not coords:
                problem("MultiPolygon has no polygons")
        else:
            parts, names = [], []
            problem("coordinates must be a list of polygons")
        for part, part_name in zip(parts, names):
            rings = _parse_polygon(part, part_name, problem)
            if rings is not None:
                polygons.append(rings)
    code = ""
    if role == "grid":
        value = props.get(code_property)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            problem(f"property {code_property!r} (the grid cell code) is missing or empty")
        else:
            code = str(value).strip()
    feature_schedule = layer_schedule
    if role == "no_vending" and props.get(schedule_property) is not None:
        feature_schedule = _parse_schedule(props[schedule_property], schedule_property, tz_name, problem)
    if len(problems) > before:
        return None
    return MapFeature(feature_id=feature_id if feature_id is not None else f"#{index}",
                      rings_lonlat=tuple(polygons), properties=MappingProxyType(dict(props)), index=index,
                      schedule=feature_schedule if role == "no_vending" else None, code=code)


def _parse_schedule(value: Any, prop: str, tz_name: str | None, problem) -> WeeklySchedule | None:
    if not isinstance(value, list) or not all(isinstance(w, Mapping) for w in value):
        problem(f"property {prop!r} must be a list of windows like "
                '{"days": ["mon-fri"], "start": "07:00", "end": "21:00"}')
        return None
    if tz_name is None:
        problem(f"property {prop!r}: a schedule needs a time zone; pass the flight's IANA time zone")
        return None
    try:
        return WeeklySchedule.from_windows(value, tz_name)
    except ScheduleError as exc:
        problem(f"property {prop!r}: {exc}")
        return None


def _parse_polygon(coords: Any, part_name: str, problem) -> tuple[np.ndarray, ...] | None:
    """The rings of one polygon as (K, 2) arrays without the closing position, or None after problems."""
    if not isinstance(coords, list) or not coords:
        problem(f"{part_name}must be a non-empty list of rings" if part_name
                else "coordinates must be a non-empty list of rings")
        return None
    rings: list[np.ndarray] = []
    ok = True
    for r, ring in enumerate(coords):
        where = f"{part_name}ring {r}"
        xy = _parse_ring(ring, where, problem)
        if xy is None:
            ok = False
            continue
        rings.append(xy)
    if not ok:
        return None
    for r, hole in enumerate(rings[1:], start=1):
        # Even-odd membership and areas assume every hole lies in its exterior (RFC 7946 / OGC simple features).
        outside = ~_covers_rings([rings[0]], hole, tol=_scale_tol(rings[0]))
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            problem(f"{part_name}ring {r} (a hole) has position {k} {_fmt(hole[k])} outside ring 0 (the exterior)")
            ok = False
    return tuple(rings) if ok else None


def _fmt(pos: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(v):.7g}" for v in pos) + "]"


def _parse_ring(ring: Any, where: str, problem) -> np.ndarray | None:
    if not isinstance(ring, list):
        problem(f"{where} must be a list of positions")
        return None
    values = []
    for k, pos in enumerate(ring):
        if (not isinstance(pos, list) or len(pos) not in (2, 3)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos)):
            problem(f"{where} position {k} must be [lon, lat] numbers, got {json.dumps(pos)[:60]}")
            return None
        values.append((float(pos[0]), float(pos[1])))
    xy = np.array(values, np.float64).reshape(-1, 2)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        problem(f"{where} position {k} is not a finite number")
        return None
    out_of_range = (np.abs(xy[:, 0]) > 180.0) | (np.abs(xy[:, 1]) > 90.0)
    if out_of_range.any():
        k = int(np.flatnonzero(out_of_range)[0])
        lon, lat = xy[k]
        hint = ": lat/lon swapped? GeoJSON is [lon, lat]" if abs(lon) <= 90.0 < abs(lat) <= 180.0 else ""
        more = int(out_of_range.sum()) - 1
        problem(f"{where} position {k} {_fmt(xy[k])} is out of range (lon -180..180, lat -90..90)"
                + (f" (and {more} more)" if more else "") + hint)
        return None
    if len(xy) < 4:
        problem(f"{where} has {len(xy)} positions; a closed ring needs at least 4 (the last repeating the first)")
        return None
    if not np.array_equal(xy[0], xy[-1]):
        problem(f"{where} is not closed (first position {_fmt(xy[0])}, last {_fmt(xy[-1])}: repeat the first "
                "position at the end)")
        return None
    open_ring = xy[:-1]
    # Repeated consecutive positions are valid GeoJSON (GIS exports write them): drop them before the checks.
    keep = np.ones(len(open_ring), bool)
    keep[1:] = np.any(open_ring[1:] != open_ring[:-1], axis=1)
    if np.array_equal(open_ring[-1], open_ring[0]) and len(open_ring) > 1:
        keep[-1] = False
    distinct = open_ring[keep]
    renumbered = " (positions numbered without repeats)" if not keep.all() else ""
    if len(distinct) < 3:
        problem(f"{where} has fewer than 3 distinct positions")
        return None
    if _may_self_intersect(distinct):
        # The exact check and its wording are the camera zones' (`detector.zones.polygon_problems`), which
        # wants coordinates within [0, 1]: scale the ring into the unit square (an affine map keeps every
        # crossing and every collinearity, so the answer is the same).
        lo = distinct.min(axis=0)
        span = float((distinct.max(axis=0) - lo).max()) or 1.0
        reasons = polygon_problems(((distinct - lo) / span).tolist())
        if reasons:
            for reason in reasons:
                problem(f"{where} {reason.replace('has zero area', 'has no area')}{renumbered}")
            return None
    return distinct


def _may_self_intersect(xy: np.ndarray) -> bool:
    """Whether any two edges of a ring might touch, other than neighbours at their shared vertex.

    A vectorised, deliberately generous screen (a tolerance of 1e-9 of the ring's size): `polygon_problems`
    is exact but pure Python and quadratic, too slow to run on every cell of a city grid, so it runs only on
    the rings this flags.
    """
    n = len(xy)
    span = float((xy.max(axis=0) - xy.min(axis=0)).max()) or 1.0
    p = (xy - xy.min(axis=0)) / span
    a, b = p, np.roll(p, -1, axis=0)
    eps = 1e-9
    for start in range(0, n, 512):  # rows in chunks: (512, n) arrays stay small for any ring
        i = np.arange(start, min(start + 512, n))
        a1, b1 = a[i, None, :], b[i, None, :]
        a2, b2 = a[None, :, :], b[None, :, :]
        d1 = _cross(b2 - a2, a1 - a2)
        d2 = _cross(b2 - a2, b1 - a2)
        d3 = _cross(b1 - a1, a2 - a1)
        d4 = _cross(b1 - a1, b2 - a1)
        box = ((np.minimum(a1[..., 0], b1[..., 0]) <= np.maximum(a2[..., 0], b2[..., 0]) + eps)
               & (np.minimum(a2[..., 0], b2[..., 0]) <= np.maximum(a1[..., 0], b1[..., 0]) + eps)
               & (np.minimum(a1[..., 1], b1[..., 1]) <= np.maximum(a2[..., 1], b2[..., 1]) + eps)
               & (np.minimum(a2[..., 1], b2[..., 1]) <= np.maximum(a1[..., 1], b1[..., 1]) + eps))
        touch = box & (d1 * d2 <= eps) & (d3 * d4 <= eps)
        j = np.arange(n)[None, :]
        neighbour = (j == i[:, None]) | (j == (i[:, None] + 1) % n) | (j == (i[:, None] - 1) % n)
        if (touch & ~neighbour).any():
            return True
    # Neighbours go wrong only by folding back onto each other (collinear, pointing the same way from the
    # shared vertex).
    prev = np.roll(p, 1, axis=0)
    collinear = np.abs(_cross(p - prev, b - p)) <= eps
    backwards = np.einsum("ij,ij->i", p - prev, b - p) < 0
    return bool((collinear & backwards).any())


def _distance_problems(features: Sequence[MapFeature], source: str, frame: LocalFrame,
                       max_distance_m: float) -> list[str]:
    """Features whose centre lies farther than `max_distance_m` from the flight (one line if all of them)."""
    centres = np.array([_centre_lonlat(f) for f in features])
    dist = _ground_distance_m(frame, centres[:, 1], centres[:, 0])
    far = dist > max_distance_m
    if not far.any():
        return []
    swapped_dist = _ground_distance_m(frame, np.clip(centres[:, 0], -90, 90), centres[:, 1])
    limit = f"{max_distance_m / 1000:g} km"

    def hint(k: np.ndarray) -> str:
        if (swapped_dist[k] <= max_distance_m).all():
            return ": lat/lon swapped? GeoJSON is [lon, lat]"
        return ": wrong file, or a layer of another place?"

    if far.all() and len(features) > 1:
        return [(f"{source}: every feature lies far from the flight (nearest {dist.min() / 1000:.1f} km, more "
                 f"than {limit}){hint(np.arange(len(features)))}")]
    return [(f"{source}: {_label(f.index, f.feature_id)}: lies {d / 1000:.1f} km from the flight (more than "
             f"{limit}){hint(np.array([k]))}") for k, (f, d) in enumerate(zip(features, dist)) if d > max_distance_m]


def _centre_lonlat(feature: MapFeature) -> np.ndarray:
    pts = np.concatenate([poly[0] for poly in feature.rings_lonlat])
    return (pts.min(axis=0) + pts.max(axis=0)) / 2


def _ground_distance_m(frame: LocalFrame, lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    # Straight-line distance through the ENU frame: exact enough to tell "here" from "1000 km away".
    e, n, u = frame.to_enu(lat_deg, lon_deg, np.full(np.shape(lat_deg), frame.h0_m))
    return np.sqrt(np.asarray(e) ** 2 + np.asarray(n) ** 2 + np.asarray(u) ** 2)


# --- projection into the flight's local frame -----------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ProjectedFeature:
    """A feature in the flight's local frame.

    Attributes:
        feature: The feature.
        polygons_en_m: Like `MapFeature.rings_lonlat` in east/north metres, exteriors counter-clockwise and
            holes clockwise.
        bbox_en_m: (4,) ``[min_e, min_n, max_e, max_n]`` of all its rings.
    """

    feature: MapFeature
    polygons_en_m: tuple[tuple[np.ndarray, ...], ...]
    bbox_en_m: np.ndarray

    def covers(self, points_en_m: np.ndarray, tol_m: float = 1e-6) -> np.ndarray:
        """(N,) bool: which points lie in the feature or on its boundary (see `covers_points`)."""
        pts = np.asarray(points_en_m, np.float64).reshape(-1, 2)
        near = _in_bbox(pts, self.bbox_en_m, tol_m)
        out = np.zeros(len(pts), bool)
        if near.any():
            out[near] = covers_points(self.polygons_en_m, pts[near], tol_m)
        return out

    def overlap_area_m2(self, polygon_en_m: np.ndarray) -> float:
        """Area of a simple polygon's (K, 2) part inside this feature, square metres."""
        ring = np.asarray(polygon_en_m, np.float64).reshape(-1, 2)
        if len(ring) < 3:
            return 0.0
        box = np.concatenate([ring.min(axis=0), ring.max(axis=0)])
        if (box[:2] > self.bbox_en_m[2:]).any() or (box[2:] < self.bbox_en_m[:2]).any():
            return 0.0
        return sum(intersection_area_m2((ring,), polygon) for polygon in self.polygons_en_m)


@dataclass(frozen=True)
class ProjectedLayer:
    """A layer in the flight's local frame (`project_layer`)."""

    layer: MapLayer
    features: tuple[ProjectedFeature, ...]

    def first_covering(self, points_en_m: np.ndarray, tol_m: float = 1e-6) -> np.ndarray:
        """(N,) index into `features` of the first feature (file order) covering each point, -1 where none."""
        pts = np.asarray(points_en_m, np.float64).reshape(-1, 2)
        out = np.full(len(pts), -1, np.int64)
        for k, feature in enumerate(self.features):
            todo = out < 0
            if not todo.any():
                break
            hit = np.zeros(len(pts), bool)
            hit[todo] = feature.covers(pts[todo], tol_m)
            out[hit] = k
        return out


def project_layer(layer: MapLayer, frame: LocalFrame) -> ProjectedLayer:
    """Project every ring of `layer` into `frame` (east/north metres on the ground plane), in one call."""
    rings = [ring for f in layer.features for poly in f.rings_lonlat for ring in poly]
    if not rings:
        return ProjectedLayer(layer, tuple(ProjectedFeature(f, (), np.zeros(4)) for f in layer.features))
    lonlat = np.concatenate(rings)
    e, n, _ = frame.to_enu(lonlat[:, 1], lonlat[:, 0])
    en = np.column_stack([e, n])
    features, start = [], 0
    for feature in layer.features:
        polygons = []
        for poly in feature.rings_lonlat:
            oriented = []
            for r, ring in enumerate(poly):
                xy = en[start:start + len(ring)]
                start += len(ring)
                oriented.append(_orient_ring(xy, counter_clockwise=(r == 0)))
            polygons.append(tuple(oriented))
        pts = np.concatenate([p[0] for p in polygons]) if polygons else np.zeros((1, 2))
        features.append(ProjectedFeature(feature, tuple(polygons),
                                          np.concatenate([pts.min(axis=0), pts.max(axis=0)])))
    return ProjectedLayer(layer, tuple(features))


# --- geometry in local metres ---------------------------------------------------------------------------
# Hand-written on purpose: the map rules need only point-in-polygon, areas and the area of one polygon's
# overlap with another, and a geometry library (shapely/GEOS) would become the largest dependency of the
# inference install for about a hundred lines. The tests check each function against shapely on random
# non-convex polygons with holes and on shared edges.

def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _open(ring: np.ndarray) -> np.ndarray:
    xy = np.asarray(ring, np.float64).reshape(-1, 2)
    return xy[:-1] if len(xy) >= 4 and np.array_equal(xy[0], xy[-1]) else xy


def _orient_ring(ring: np.ndarray, counter_clockwise: bool) -> np.ndarray:
    xy = _open(ring)
    return xy if (_signed_area(xy) >= 0) == counter_clockwise else xy[::-1].copy()


def _oriented_polygon(polygon: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    return tuple(_orient_ring(r, counter_clockwise=(k == 0)) for k, r in enumerate(polygon))


def _in_bbox(pts: np.ndarray, bbox: np.ndarray, tol: float) -> np.ndarray:
    return ((pts[:, 0] >= bbox[0] - tol) & (pts[:, 0] <= bbox[2] + tol)
            & (pts[:, 1] >= bbox[1] - tol) & (pts[:, 1] <= bbox[3] + tol))


def _scale_tol(ring: np.ndarray) -> float:
    # A tolerance of 1e-9 of the ring's size: "on the edge" for coordinates in any unit (degrees or metres).
    return 1e-9 * max(float((ring.max(axis=0) - ring.min(axis=0)).max()), 1e-300)


def _edges(rings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) start and end points of every edge of every (open) ring."""
    starts = [r for r in rings if len(r)]
    if not starts:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(starts), np.concatenate([np.roll(r, -1, axis=0) for r in starts])


def _distance_to_edges(pts: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N, M) distance of each point to each segment."""
    d = ends - starts
    dd = np.einsum("ij,ij->i", d, d)
    rel = pts[:, None, :] - starts[None, :, :]
    t = np.where(dd > 0, np.einsum("nmk,mk->nm", rel, d) / np.where(dd > 0, dd, 1.0), 0.0)
    closest = starts[None, :, :] + np.clip(t, 0.0, 1.0)[..., None] * d[None, :, :]
    return np.linalg.norm(pts[:, None, :] - closest, axis=2)


def _covers_rings(rings: Sequence[np.ndarray], pts: np.ndarray, tol: float) -> np.ndarray:
    """(N,) points inside one polygon (exterior + holes, even-odd) or within `tol` of any of its edges."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), bool)
    for ring in rings:
        inside ^= points_in_polygon(pts, ring)
    starts, ends = _edges(rings)
    if len(pts) and len(starts):
        inside |= _distance_to_edges(pts, starts, ends).min(axis=1) <= tol
    return inside


def covers_points(polygons: Sequence[Sequence[np.ndarray]], points_en_m: np.ndarray,
                  tol_m: float = 1e-6) -> np.ndarray:
    """(N,) bool: which points lie inside any of `polygons` or on a boundary (within `tol_m`).

    Boundaries count as inside (shapely's ``covers``): a bike on the painted line of its box is parked in
    it, and a point on a hole's edge touches the polygon. Each polygon is its rings, exterior first.

    Example:
        >>> square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
        >>> hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6]], float)
        >>> covers_points([(square, hole)], np.array([[1, 1], [5, 5], [10, 3], [4, 5]])).tolist()
        [True, False, True, True]
    """
    pts = np.asarray(points_en_m, np.float64).reshape(-1, 2)
    out = np.zeros(len(pts), bool)
    for polygon in polygons:
        rings = [_open(r) for r in polygon]
        if rings:
            out |= _covers_rings(rings, pts, tol_m)
    return out


def area_m2(polygons: Sequence[Sequence[np.ndarray]]) -> float:
    """Area of `polygons` (each its rings, exterior first; holes subtracted), in the square of the unit.

    Example:
        >>> square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
        >>> area_m2([(square, square[:, ::-1] * 0.2 + 4)])
        96.0
    """
    return float(sum(abs(_signed_area(_open(r))) * (1 if k == 0 else -1)
                     for polygon in polygons for k, r in enumerate(polygon)))


def intersection_area_m2(polygon_a: Sequence[np.ndarray], polygon_b: Sequence[np.ndarray],
                         tol_m: float = _EPS_M) -> float:
    """Area of the intersection of two polygons (each its rings, exterior first; holes allowed; any winding).

    Green's theorem over the boundary of the intersection: the parts of A's edges inside B plus the parts
    of B's edges inside A (each split where the two boundaries cross); edges the two share count once when
    both polygons lie on the same side of them and not at all otherwise. Works for non-convex polygons,
    which a convex clipper (Sutherland–Hodgman) does not.

    Example:
        >>> a = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
        >>> round(intersection_area_m2((a,), (a + 2,)), 6)
        4.0
    """
    rings_a = [r for r in _oriented_polygon(polygon_a) if len(r) >= 3]
    rings_b = [r for r in _oriented_polygon(polygon_b) if len(r) >= 3]
    if not rings_a or not rings_b:
        return 0.0
    # Work near the origin: the cross products of metre coordinates 1 km out would lose digits.
    origin = rings_a[0][0].copy()
    rings_a = [r - origin for r in rings_a]
    rings_b = [r - origin for r in rings_b]
    lo_a, hi_a = rings_a[0].min(axis=0), rings_a[0].max(axis=0)
    lo_b, hi_b = rings_b[0].min(axis=0), rings_b[0].max(axis=0)
    if (lo_a > hi_b + tol_m).any() or (lo_b > hi_a + tol_m).any():
        return 0.0
    total = _boundary_inside(rings_a, rings_b, tol_m, keep_shared=True)
    total += _boundary_inside(rings_b, rings_a, tol_m, keep_shared=False)
    return max(total, 0.0)


def _boundary_inside(rings_p: Sequence[np.ndarray], rings_q: Sequence[np.ndarray], tol: float,
                     keep_shared: bool) -> float:
    """Σ (x dy - y dx) / 2 over the pieces of P's edges that lie inside Q (or on Q's boundary, running the
    same way, when `keep_shared`)."""
    ps, pe = _edges(rings_p)
    qs, qe = _edges(rings_q)
    s = qe - qs
    s_len = np.linalg.norm(s, axis=1)
    total = 0.0
    for a, b in zip(ps, pe):
        r = b - a
        r_len = float(np.hypot(*r))
        if r_len <= tol:
            continue
        w = qs - a
        denom = _cross(np.broadcast_to(r, s.shape), s)
        w_x_s, w_x_r = _cross(w, s), _cross(w, np.broadcast_to(r, w.shape))
        crossing = np.abs(denom) > 1e-12 * r_len * s_len
        cuts = [0.0, 1.0]
        if crossing.any():
            t = w_x_s[crossing] / denom[crossing]
            u = w_x_r[crossing] / denom[crossing]
            tol_t, tol_u = tol / r_len, tol / np.maximum(s_len[crossing], tol)
            hit = (t >= -tol_t) & (t <= 1 + tol_t) & (u >= -tol_u) & (u <= 1 + tol_u)
            cuts.extend(np.clip(t[hit], 0.0, 1.0).tolist())
        collinear = ~crossing & (np.abs(w_x_r) / r_len <= tol)
        if collinear.any():
            # An overlapping collinear edge of Q cuts this one at its end points.
            ends_t = np.concatenate([w[collinear] @ r, (qe[collinear] - a) @ r]) / (r_len * r_len)
            cuts.extend(ends_t[(ends_t > 0) & (ends_t < 1)].tolist())
        t_cuts = np.unique(np.asarray(cuts))
        t0, t1 = t_cuts[:-1], t_cuts[1:]
        long_enough = (t1 - t0) * r_len > tol
        if not long_enough.any():
            continue
        t0, t1 = t0[long_enough], t1[long_enough]
        mids = a + r * ((t0 + t1) / 2)[:, None]
        dist = _distance_to_edges(mids, qs, qe)
        on_boundary = dist.min(axis=1) <= tol
        inside = np.zeros(len(mids), bool)
        for ring in rings_q:
            inside ^= points_in_polygon(mids, ring)
        take = ~on_boundary & inside
        if keep_shared and on_boundary.any():
            along = ((s @ r) > 0) & (np.abs(_cross(s, np.broadcast_to(r, s.shape))) <= 1e-9 * s_len * r_len)
            same_way = ((dist <= tol) & along[None, :]).any(axis=1)
            take |= on_boundary & same_way
        if take.any():
            p0 = a + r * t0[take][:, None]
            p1 = a + r * t1[take][:, None]
            total += 0.5 * float(_cross(p0, p1).sum())
    return total
