"""A synthetic town seen straight down: the orthophoto a flight generator flies over, with truth for every object.

The town is laid out once in local east-north-up metres (origin at the take-off point) by the drone-scene tools
of `datasets.synth.aerial` (streets, blocks, buildings with rooftop sheds and new builds, yard structures, trees,
cars) plus stalls, rows of shared bikes, single bikes, e-bikes and people on the pavements placed here with
controlled densities (`TownDensity`) and the object builders of `datasets.synth.objects`. Its objects are the
same sketches the aerial chips of the `aerial` model's training set are drawn from, so the model sees the same
kind of pixels.

The orthophoto is the town drawn through one nadir `PinholeCamera` 1000 km up with a matching narrow field of
view (a practically orthographic view at `gsd_m` metres per pixel), tile by tile, with the same shadows,
lighting and tone as the chips. This is a **flat world**: roofs, sheds and people are drawn where they stand,
with no parallax, and a flight camera later warps the orthophoto as the ground plane (up = 0). A real drone
sees a roof 20 m up displaced away from the image centre; here it does not, so the truth positions are exact
for a georeferencing that intersects rays with the ground plane.

Only the tiles a flight needs are drawn (`Orthophoto.render`), and they are kept on disk, so a 60 s 4K flight
over a 1 km square town never holds the whole orthophoto in memory.

Example:
    >>> town = lay_out_town(3, half_size_m=60.0)
    >>> sorted({o.class_name for o in town.objects}) <= ['bicycle', 'illegal_structure', 'stall']
    True
"""

from __future__ import annotations

import math
import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from datasets.synth import objects as obj
from datasets.synth import palette as pal
from datasets.synth.aerial import (AerialCity, AerialGroup, aerial_lighting, draw_ground_shadows, draw_single_on_walk,
                                   lay_out_streets)
from datasets.synth.camera import PinholeCamera
from datasets.synth.classes import AERIAL_CLASSES, AERIAL_VIOLATION_CLASSES, BICYCLE, STALL
from datasets.synth.compositor import Compositor
from datasets.synth.photometric import Lighting, apply_lighting, tone_curve
from datasets.synth.sketch import Light, Pose, Sketch

__all__ = ["TownDensity", "TownObject", "ObjectCluster", "Town", "lay_out_town", "Orthophoto",
           "ORTHO_CAMERA_HEIGHT_M"]

Rng = np.random.Generator

ORTHO_CAMERA_HEIGHT_M = 1.0e6
"""Height of the orthophoto camera: a 20 m roof 300 m from the centre leans 6 mm (0.3 px at 2 cm/px)."""

_BACKGROUND_BGR = (150, 160, 150)
_GRAIN_CELLS_M = (1.5, 0.4)  # coarse and mid grain cells: stains, uneven paint (as in the chips at ~4.5 cm/px)


def _u(rng: Rng, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


@dataclass(frozen=True)
class TownDensity:
    """How many things stand on the pavements, per hectare of town.

    The defaults are close to the aerial chips the `aerial` model was trained on (about two markets and two or
    three rows of bikes per 50 × 50 m chip).

    Attributes:
        markets_per_ha: Groups of 1..5 stalls in a row along a pavement.
        bike_rows_per_ha: Rows of 3..15 parked bikes (shared or private; 8 % of them are e-bikes, unlabelled).
        singles_per_ha: Single things: bikes (30 %), e-bikes (15 %), people (45 %), carts and bins (10 %).
        street_tree_share: Share of pavements lined with trees.
    """

    markets_per_ha: float = 6.0
    bike_rows_per_ha: float = 7.0
    singles_per_ha: float = 30.0
    street_tree_share: float = 0.35

    def __post_init__(self) -> None:
        for name in ("markets_per_ha", "bike_rows_per_ha", "singles_per_ha"):
            value = getattr(self, name)
            if not 0.0 <= value <= 200.0:
                raise ValueError(f"TownDensity.{name} must lie within [0, 200] per ha, got {value}")
        if not 0.0 <= self.street_tree_share <= 1.0:
            raise ValueError(f"TownDensity.street_tree_share must lie within [0, 1], got {self.street_tree_share}")


@dataclass(frozen=True, eq=False)  # holds an array: compare fields, not objects
class TownObject:
    """One labelled object of the town (a class of `AERIAL_VIOLATION_CLASSES`).

    Attributes:
        object_id: Stable id within the town, e.g. ``structure-0007``, ``bicycle-0131``, ``stall-0012``.
        class_name: ``illegal_structure``, ``bicycle`` or ``stall``.
        tag: What it is: ``shed`` / ``new_build`` (on a roof), ``yard_shed`` / ``yard_build``, ``bike``, ``stall``.
        east_m: Centre of its footprint, metres east of the origin.
        north_m: Same, metres north.
        footprint_en_m: (K, 2) convex outline of everything drawn for it, seen from above, counter-clockwise.
        top_m: Height of its highest point above the ground.
        cluster_id: The row of bikes or the market it belongs to (``row-0003``, ``market-0001``), else ``""``.
    """

    object_id: str
    class_name: str
    tag: str
    east_m: float
    north_m: float
    footprint_en_m: np.ndarray
    top_m: float
    cluster_id: str = ""


@dataclass(frozen=True, eq=False)
class ObjectCluster:
    """A row of parked bikes or a market of stalls, for drawing e-fences and no-vending areas around them.

    Attributes:
        cluster_id: ``row-NNNN`` or ``market-NNNN``.
        kind: ``bike_row`` or ``market``.
        object_ids: The labelled objects in it (a row's e-bikes are drawn but not listed).
        outline_en_m: (K, 2) convex outline of everything in it (e-bikes and vendors included).
    """

    cluster_id: str
    kind: str
    object_ids: tuple[str, ...]
    outline_en_m: np.ndarray


@dataclass(eq=False)
class Town:
    """A laid-out town: sketches in metres, the truth of every labelled object, and how to light it.

    Attributes:
        seed: The seed it was laid out from.
        half_size_m: The town covers [-half, half] metres east and north of the origin.
        city: The layout (ground, road marks, groups of sketches).
        lighting: Light of the scene (sun, shadows, colour gain).
        objects: Every labelled object, in layout order.
        clusters: Bike rows and markets.
        groups: The city's groups in painter's order (farthest first).
        group_bounds_en_m: (G, 4) [east_min, north_min, east_max, north_max] of each group in `groups`.
        group_top_m: (G,) highest point of each group.
        object_of_sketch: ``id(sketch)`` of a labelled part → index into `objects`.
        stats: Counts from the layout (sheds, new builds, factory roofs, stalls, bikes, ...).
    """

    seed: int
    half_size_m: float
    city: AerialCity
    lighting: Lighting
    objects: list[TownObject]
    clusters: list[ObjectCluster]
    groups: list[AerialGroup]
    group_bounds_en_m: np.ndarray
    group_top_m: np.ndarray
    object_of_sketch: dict[int, int]
    stats: dict[str, int] = field(default_factory=dict)


def _sketch_points(sk: Sketch) -> np.ndarray:
    """(N, 3) points of every operation of a sketch; spheres add their horizontal extent."""
    pts = [op.pts for op in sk.ops]
    for op in sk.ops:
        if op.kind == "sphere":
            c, r = op.pts[0], op.width_m
            pts.append(c + np.array([[r, 0, 0], [-r, 0, 0], [0, r, 0], [0, -r, 0]]))
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _hull_ccw(points_en: np.ndarray) -> np.ndarray:
    """Convex hull of (N, 2) points, counter-clockwise in east/north (a GeoJSON exterior ring's order)."""
    hull = cv2.convexHull(np.asarray(points_en, np.float32).reshape(-1, 1, 2)).reshape(-1, 2).astype(np.float64)
    if len(hull) >= 3:
        x, y = hull[:, 0], hull[:, 1]
        if float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) < 0:
            hull = hull[::-1]
    return hull


def _polygon_centroid(poly: np.ndarray) -> tuple[float, float]:
    x, y = poly[:, 0], poly[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:
        return float(x.mean()), float(y.mean())
    return (float(((x + np.roll(x, -1)) * cross).sum() / (6 * area)),
            float(((y + np.roll(y, -1)) * cross).sum() / (6 * area)))


def _ortho_camera(half_size_m: float, gsd_m: float) -> PinholeCamera:
    size_px = math.ceil(2.0 * half_size_m / gsd_m)
    return PinholeCamera(size_px, size_px, ORTHO_CAMERA_HEIGHT_M / gsd_m, height_m=ORTHO_CAMERA_HEIGHT_M,
                         pitch_deg=90.0, yaw_deg=0.0, cx_px=half_size_m / gsd_m, cy_px=half_size_m / gsd_m)


# --- pavements: markets, bike rows, singles, street trees ---------------------------------------------------


class _Occupancy:
    """Discs already taken on the ground, so that markets, rows and singles do not stand inside each other.

    Discs are kept in buckets of a square grid: a town holds thousands of them.
    """

    CELL_M = 10.0

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        self.max_r = 0.0

    def free(self, x: float, y: float, r: float) -> bool:
        reach = math.ceil((r + self.max_r) / self.CELL_M)
        cx, cy = math.floor(x / self.CELL_M), math.floor(y / self.CELL_M)
        for i in range(cx - reach, cx + reach + 1):
            for j in range(cy - reach, cy + reach + 1):
                for a, b, c in self.cells.get((i, j), ()):
                    if math.hypot(x - a, y - b) < r + c:
                        return False
        return True

    def take(self, x: float, y: float, r: float) -> None:
        key = (math.floor(x / self.CELL_M), math.floor(y / self.CELL_M))
        self.cells.setdefault(key, []).append((x, y, r))
        self.max_r = max(self.max_r, r)


def _on_pavements(city: AerialCity, half: float, density: TownDensity, stats: dict[str, int],
                  cluster_of_sketch: dict[int, str], clusters: list[tuple[str, str, list[Sketch]]]) -> None:
    """Stalls, rows of bikes, singles and street trees on the pavements, with densities per hectare.

    Placement follows `datasets.synth.aerial`'s pavement scenes (the same builders and the same mixes), with
    counts drawn per hectare instead of per image so that a large town is evenly populated.
    """
    rng = city.rng
    walks = [w for w in city.sidewalks
             if w[:, 0].max() > -half and w[:, 0].min() < half and w[:, 1].max() > -half and w[:, 1].min() < half]
    if not walks:
        return
    boxes = np.array([[max(-half, w[:, 0].min()), max(-half, w[:, 1].min()), min(half, w[:, 0].max()),
                       min(half, w[:, 1].max())] for w in walks])
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)
    weights = areas / areas.sum()
    area_ha = (2 * half) ** 2 / 1e4
    taken = _Occupancy()

    def point_on_walk() -> tuple[float, float, float]:
        k = int(rng.choice(len(boxes), p=weights))
        x0, y0, x1, y1 = boxes[k]
        along = 0.0 if (x1 - x0) > (y1 - y0) else math.pi / 2
        return _u(rng, x0, x1), _u(rng, y0, y1), along

    n_markets = int(rng.poisson(density.markets_per_ha * area_ha))
    for m in range(n_markets):
        x, y, along = point_on_walk()
        n = int(rng.integers(1, 6))
        mid_x, mid_y = x + math.cos(along) * (n - 1) * 1.6, y + math.sin(along) * (n - 1) * 1.6
        radius = (n - 1) * 1.6 + 2.5
        if not taken.free(mid_x, mid_y, radius):
            continue
        taken.take(mid_x, mid_y, radius)
        cid = f"market-{len([c for c in clusters if c[1] == 'market']) + 1:04d}"
        members: list[Sketch] = []
        for i in range(n):
            sx, sy = x + math.cos(along) * i * 3.2, y + math.sin(along) * i * 3.2
            sk = Sketch(light=city.light)
            obj.stall(sk, rng, Pose(sx, sy, heading_rad=along + _u(rng, -0.1, 0.1)),
                      str(rng.choice(["canopy", "canopy", "umbrella", "cart", "tricycle", "ground"])))
            stats["stalls"] += 1
            parts: list[tuple[Sketch, int | None, str]] = [(sk, STALL, "stall")]
            cluster_of_sketch[id(sk)] = cid
            members.append(sk)
            if rng.random() < 0.5:
                vendor = Sketch(light=city.light)
                obj.person(vendor, rng, Pose(sx + _u(rng, -1.5, 1.5), sy + _u(rng, -1.5, 1.5),
                                             heading_rad=_u(rng, 0, 6.28)), walking=False)
                parts.append((vendor, None, "vendor"))
                members.append(vendor)
            city.add(sx, sy, 2.5, parts)
        clusters.append((cid, "market", members))
    n_rows = int(rng.poisson(density.bike_rows_per_ha * area_ha))
    for _ in range(n_rows):
        x, y, along = point_on_walk()
        n = int(rng.integers(3, 16))
        spacing = _u(rng, 0.5, 0.75)
        mid_x, mid_y = x + math.cos(along) * spacing * (n - 1) / 2, y + math.sin(along) * spacing * (n - 1) / 2
        radius = spacing * (n - 1) / 2 + 1.2
        if not taken.free(mid_x, mid_y, radius):
            continue
        taken.take(mid_x, mid_y, radius)
        cid = f"row-{len([c for c in clusters if c[1] == 'bike_row']) + 1:04d}"
        heading = along + math.pi / 2 + _u(rng, -0.5, 0.5)
        scheme = pal.SHARED_BIKE_SCHEMES[int(rng.integers(len(pal.SHARED_BIKE_SCHEMES)))]
        shared = rng.random() < 0.8
        members = []
        for i in range(n):
            bx, by = x + math.cos(along) * spacing * i, y + math.sin(along) * spacing * i
            sk = Sketch(light=city.light)
            pose = Pose(bx + _u(rng, -0.1, 0.1), by + _u(rng, -0.1, 0.1), heading_rad=heading + _u(rng, -0.15, 0.15),
                        lean_rad=_u(rng, -0.15, 0.15))
            members.append(sk)
            if rng.random() < 0.08:
                obj.ebike(sk, rng, pose)  # not a class from the air: a look-alike left unlabelled
                city.add(bx, by, 1.0, [(sk, None, "ebike")])
                continue
            if shared:
                obj.shared_bicycle(sk, rng, pose, scheme)
            else:
                obj.private_bicycle(sk, rng, pose)
            stats["bikes"] += 1
            cluster_of_sketch[id(sk)] = cid
            city.add(bx, by, 1.0, [(sk, BICYCLE, "bike")])
        clusters.append((cid, "bike_row", members))
    n_singles = int(rng.poisson(density.singles_per_ha * area_ha))
    for _ in range(n_singles):
        x, y, _along = point_on_walk()
        if not taken.free(x, y, 1.0):
            continue
        taken.take(x, y, 1.0)
        draw_single_on_walk(city, rng, x, y, stats)
    for box in boxes:  # street trees along some pavements
        if rng.random() >= density.street_tree_share:
            continue
        x0, y0, x1, y1 = box
        long_x = (x1 - x0) > (y1 - y0)
        a0, a1 = (x0, x1) if long_x else (y0, y1)
        c = (y0 + y1) / 2 if long_x else (x0 + x1) / 2
        spacing = _u(rng, 7.0, 12.0)
        for t in np.arange(a0 + _u(rng, 0, spacing), a1, spacing):
            tx, ty = (float(t), c) if long_x else (c, float(t))
            sk = Sketch(light=city.light)
            obj.tree(sk, rng, Pose(tx, ty), crown_m=_u(rng, 1.5, 2.6))
            city.add(tx, ty, 6.0, [(sk, None, "tree")])


def lay_out_town(seed: int, half_size_m: float, density: TownDensity = TownDensity()) -> Town:
    """Lay out a town over [-half, half]² metres around the origin (the take-off point).

    The layout depends on `seed`, `half_size_m` and `density` only (not on the scale it is drawn at), so
    flights of different altitudes, headings and paths over the same seed and size see the same town.

    Args:
        seed: Seed of the town.
        half_size_m: Half the side of the square town, metres.
        density: Objects on the pavements per hectare.

    Returns:
        The town with the truth of every labelled object.
    """
    if not 10.0 <= half_size_m <= 5000.0:
        raise ValueError(f"half_size_m must lie within [10, 5000] m, got {half_size_m}")
    rng = np.random.default_rng([seed, 0])
    lighting = aerial_lighting(np.random.default_rng([seed, 1]))
    light = lighting.sun or Light(sun_dir=(0.2, -0.3, 0.93), ambient=0.72, diffuse=0.3)
    # the layout camera sees the whole town, so `shows` keeps everything inside it; it is the orthophoto's camera
    # at a fixed 5 cm/px so that the layout does not depend on the orthophoto's scale
    city = AerialCity(_ortho_camera(half_size_m, 0.05), light, rng,
                      lighting.sun.sun_dir if lighting.sun is not None else None, lighting.shadow_strength)
    stats = {"sheds": 0, "new_builds": 0, "factory_roofs": 0, "stalls": 0, "bikes": 0}
    lay_out_streets(city, (-half_size_m, -half_size_m, half_size_m, half_size_m), stats)
    cluster_of_sketch: dict[int, str] = {}
    raw_clusters: list[tuple[str, str, list[Sketch]]] = []
    _on_pavements(city, half_size_m, density, stats, cluster_of_sketch, raw_clusters)

    groups = sorted(city.groups, key=lambda g: -g.depth_m)  # painter's order, as in render_aerial_scene
    objects: list[TownObject] = []
    object_of_sketch: dict[int, int] = {}
    counters = {name: 0 for name in AERIAL_VIOLATION_CLASSES}
    prefix = {"bicycle": "bicycle", "stall": "stall", "illegal_structure": "structure"}
    bounds = np.zeros((len(groups), 4))
    tops = np.zeros(len(groups))
    for gi, g in enumerate(groups):
        pts_all = [_sketch_points(sk) for sk, _c, _t in g.parts]
        pts = np.concatenate(pts_all) if pts_all else np.zeros((1, 3))
        if len(pts) == 0:
            pts = np.zeros((1, 3))
        bounds[gi] = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
        tops[gi] = max(0.0, float(pts[:, 2].max()))
        for (sk, class_id, tag), p in zip(g.parts, pts_all):
            # A town's truth is what the map rules judge: distractors (people, cars) are drawn but not scored.
            if class_id is None or len(p) == 0 or AERIAL_CLASSES[class_id] not in AERIAL_VIOLATION_CLASSES:
                continue
            name = AERIAL_CLASSES[class_id]
            counters[name] += 1
            hull = _hull_ccw(p[:, :2])
            cx, cy = _polygon_centroid(hull)
            object_of_sketch[id(sk)] = len(objects)
            objects.append(TownObject(f"{prefix[name]}-{counters[name]:04d}", name, tag, cx, cy, hull,
                                      float(p[:, 2].max()), cluster_of_sketch.get(id(sk), "")))
    ids_of_sketch = {i: objects[k].object_id for i, k in object_of_sketch.items()}
    clusters = []
    for cid, kind, members in raw_clusters:
        pts = np.concatenate([_sketch_points(sk)[:, :2] for sk in members])
        member_ids = tuple(ids_of_sketch[id(sk)] for sk in members if id(sk) in ids_of_sketch)
        if member_ids:
            clusters.append(ObjectCluster(cid, kind, member_ids, _hull_ccw(pts)))
    return Town(seed, float(half_size_m), city, lighting, objects, clusters, groups, bounds, tops,
                object_of_sketch, stats)


# --- the orthophoto -------------------------------------------------------------------------------------


class Orthophoto:
    """The town drawn straight down at `gsd_m`, in square tiles drawn on demand and kept on disk.

    Pixel (column u, row v) in continuous coordinates (0..width, pixel centres at +0.5) lies at
    ``east = (u - u0) * gsd``, ``north = (v0 - v) * gsd`` with ``u0 = v0 = half_size / gsd``: north up.

    Args:
        town: The town.
        gsd_m: Metres per pixel.
        work_dir: Folder for the tiles (created; `close` removes it).
        tile_px: Side of a tile.
        omit_classes: Class names laid out but not drawn (tests: pixels with and without an object).
        cache_tiles: Tiles kept in memory for `crop`.
    """

    PAD_PX = 32  # drawn around each tile and cut away: shadows blur and anti-aliasing agree across tile seams
    MAX_LEVEL = 5  # tiles are also kept halved 1..5 times, for the far ground of oblique views

    def __init__(self, town: Town, gsd_m: float, work_dir: Path, *, tile_px: int = 1024,
                 omit_classes: Iterable[str] = (), cache_tiles: int = 96) -> None:
        if not 0.005 <= gsd_m <= 0.5:
            raise ValueError(f"gsd_m must lie within [0.005, 0.5] m/px, got {gsd_m}")
        if tile_px < 256 or tile_px % (1 << self.MAX_LEVEL):
            raise ValueError(f"tile_px must be a multiple of {1 << self.MAX_LEVEL} and >= 256, got {tile_px}")
        self.town = town
        self.gsd_m = float(gsd_m)
        self.tile_px = int(tile_px)
        self.camera = _ortho_camera(town.half_size_m, gsd_m)
        self.u0_px = self.v0_px = town.half_size_m / gsd_m
        self.width_px = self.height_px = self.camera.width_px
        self.n_tiles = math.ceil(self.width_px / tile_px)
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        unknown = set(omit_classes) - set(AERIAL_VIOLATION_CLASSES)
        if unknown:
            raise ValueError(f"omit_classes: unknown class {sorted(unknown)}; expected some of {AERIAL_VIOLATION_CLASSES}")
        self._omit = frozenset(AERIAL_CLASSES.index(c) for c in omit_classes)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = int(cache_tiles)
        self._rendered: set[tuple[int, int]] = set()
        n = len(town.objects)
        self.own_px = np.zeros(n, np.int64)  # pixels each object covers when drawn, over the drawn tiles
        self.shown_px = np.zeros(n, np.int64)  # of those, still showing once everything is drawn
        self._grain = self._grain_fields()
        self._flat = [(sk, np.array([[op.pts[:, 0].min(), op.pts[:, 1].min(), op.pts[:, 0].max(), op.pts[:, 1].max()]
                                     for op in sk.ops]).reshape(-1, 4)) for sk in (town.city.ground, town.city.marks)]
        self._tone_seed = [town.seed, 3]
        sun = town.lighting.sun
        self._shadow_reach = 0.0 if sun is None else float(np.hypot(*sun.sun_dir[:2]) / max(sun.sun_dir[2], 0.05))

    # --- geometry ---------------------------------------------------------------------------------------------

    def affine_px_to_en(self) -> np.ndarray:
        """(3, 3) matrix: continuous pixel coordinates (u, v, 1) → (east_m, north_m, 1)."""
        g = self.gsd_m
        return np.array([[g, 0.0, -self.u0_px * g], [0.0, -g, self.v0_px * g], [0.0, 0.0, 1.0]])

    def en_to_px(self, en_m: np.ndarray) -> np.ndarray:
        """(N, 2) east/north metres → (N, 2) continuous pixel coordinates."""
        en = np.asarray(en_m, np.float64).reshape(-1, 2)
        return np.column_stack([self.u0_px + en[:, 0] / self.gsd_m, self.v0_px - en[:, 1] / self.gsd_m])

    def tiles_touching(self, polygons_en_m: Iterable[np.ndarray], margin_m: float = 2.0) -> list[tuple[int, int]]:
        """Tiles (column, row) that any of the ground polygons touches (with `margin_m`), in row-major order."""
        sub = 8  # rasterise on cells of 1/8 tile, then keep the tiles with any cell set
        n = self.n_tiles
        cell_m = self.gsd_m * self.tile_px / sub
        mask = np.zeros((n * sub, n * sub), np.uint8)
        for poly in polygons_en_m:
            p = np.asarray(poly, np.float64).reshape(-1, 2)
            if len(p) < 3 or not np.isfinite(p).all():
                continue
            cells = np.round(self.en_to_px(p) / self.tile_px * sub * 256).astype(np.int32)  # 8 fractional bits
            cv2.fillPoly(mask, [cells], 1, cv2.LINE_8, 8)
            cv2.polylines(mask, [cells], True, 1, 1, cv2.LINE_8, 8)  # thin polygons fill no cell centre
        k = 2 * math.ceil(max(margin_m, 0.0) / cell_m) + 1  # also covers cells a rasterised edge cuts
        mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
        tiles = mask.reshape(n, sub, n, sub).any(axis=(1, 3))
        rows, cols = np.nonzero(tiles)
        return sorted(zip(cols.tolist(), rows.tolist()), key=lambda rc: (rc[1], rc[0]))

    # --- drawing ----------------------------------------------------------------------------------------------

    def _grain_fields(self) -> list[tuple[np.ndarray, float, float]]:
        """World-anchored noise grids (stains, uneven paint), so that tiles join without seams."""
        rng = np.random.default_rng([self.town.seed, 2])
        amount = _u(rng, 0.015, 0.04)
        fields = []
        for cell_m, weight in zip(_GRAIN_CELLS_M, (1.0, 0.5)):
            n = math.ceil(2 * self.town.half_size_m / cell_m) + 2
            fields.append((rng.standard_normal((n, n), dtype=np.float32), cell_m, amount * weight))
        return fields

    def _apply_grain(self, image: np.ndarray, x0_px: int, y0_px: int) -> None:
        h, w = image.shape[:2]
        total = np.ones((h, w), np.float32)
        for grid, cell_m, amount in self._grain:
            s = self.gsd_m / cell_m  # grid cells per pixel
            # grid node k sits at the centre of cell k; a pixel centre (x + 0.5) maps to (x + 0.5) * s - 0.5
            m = np.array([[s, 0.0, (x0_px + 0.5) * s - 0.5], [0.0, s, (y0_px + 0.5) * s - 0.5]], np.float64)
            total += amount * cv2.warpAffine(grid, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                             borderMode=cv2.BORDER_REFLECT)
        image *= total[..., None]

    def _render_tile(self, tx: int, ty: int) -> np.ndarray:
        town, pad, t = self.town, self.PAD_PX, self.tile_px
        x0, y0 = tx * t - pad, ty * t - pad
        size = t + 2 * pad
        cam = PinholeCamera(size, size, self.camera.focal_px, height_m=ORTHO_CAMERA_HEIGHT_M, pitch_deg=90.0,
                            yaw_deg=0.0, cx_px=self.u0_px - x0, cy_px=self.v0_px - y0)
        img = np.empty((size, size, 3), np.uint8)
        img[:] = _BACKGROUND_BGR
        g = self.gsd_m
        west, north = (x0 - self.u0_px) * g, (self.v0_px - y0) * g
        east, south = west + size * g, north - size * g
        for sketch, bounds in self._flat:  # ground areas, then road marks: only the operations on this tile
            near_ops = np.flatnonzero((bounds[:, 0] <= east + 0.5) & (bounds[:, 2] >= west - 0.5)
                                      & (bounds[:, 1] <= north + 0.5) & (bounds[:, 3] >= south - 0.5))
            Sketch(light=sketch.light, ops=[sketch.ops[k] for k in near_ops],
                   depth_sort=sketch.depth_sort).draw_into(img, cam)
        comp = Compositor(img)
        self._apply_grain(comp.image, x0, y0)
        b = town.group_bounds_en_m
        near = (b[:, 0] <= east + 0.5) & (b[:, 2] >= west - 0.5) & (b[:, 1] <= north + 0.5) & (b[:, 3] >= south - 0.5)
        reach = town.group_top_m * self._shadow_reach + 0.5
        shade = (b[:, 0] <= east + reach) & (b[:, 2] >= west - reach) & (b[:, 1] <= north + reach) \
            & (b[:, 3] >= south - reach)
        draw_ground_shadows(comp, [town.groups[i] for i in np.flatnonzero(shade)], cam, town.lighting, self._omit)
        ids = np.full((size, size), -1, np.int32)  # which labelled object shows at each pixel (-1: none)
        core = (slice(pad, pad + t), slice(pad, pad + t))
        for gi in np.flatnonzero(near):
            for sk, class_id, _tag in town.groups[gi].parts:
                if class_id is not None and class_id in self._omit:
                    continue
                layer = sk.render(cam, clip_px=(0, 0, size, size))
                if layer is None:
                    continue
                comp.paste(layer)
                mask = layer.alpha >= 0.5
                ys = slice(layer.y0_px, layer.y0_px + layer.height_px)
                xs = slice(layer.x0_px, layer.x0_px + layer.width_px)
                k = town.object_of_sketch.get(id(sk), -1) if class_id is not None else -1
                ids[ys, xs][mask] = k
                if k >= 0:
                    # count only the tile's own pixels, so an object drawn into two tiles is not counted twice
                    cy0, cy1 = max(ys.start, pad), min(ys.stop, pad + t)
                    cx0, cx1 = max(xs.start, pad), min(xs.stop, pad + t)
                    if cy1 > cy0 and cx1 > cx0:
                        self.own_px[k] += int(mask[cy0 - ys.start:cy1 - ys.start, cx0 - xs.start:cx1 - xs.start].sum())
        apply_lighting(comp.image, comp.emission, town.lighting)
        # one tone curve for the whole orthophoto: the same draws for every tile
        out = tone_curve(comp.to_uint8(), np.random.default_rng(self._tone_seed))
        shown = ids[core]
        shown = shown[shown >= 0]
        if shown.size:
            self.shown_px += np.bincount(shown, minlength=len(town.objects))
        return np.ascontiguousarray(out[core])

    def _tile_path(self, level: int, tx: int, ty: int) -> Path:
        return self.work_dir / f"tile_L{level}_{ty:04d}_{tx:04d}.npy"

    def render(self, tiles: Iterable[tuple[int, int]],
               progress: Callable[[int, int], None] | None = None) -> int:
        """Draw the given tiles (those not drawn yet) and keep them and their halvings on disk.

        Returns:
            How many tiles were drawn.
        """
        todo = [(tx, ty) for tx, ty in dict.fromkeys(tiles)
                if (tx, ty) not in self._rendered and 0 <= tx < self.n_tiles and 0 <= ty < self.n_tiles]
        for i, (tx, ty) in enumerate(todo):
            arr = self._render_tile(tx, ty)
            for level in range(self.MAX_LEVEL + 1):
                if level:
                    # an exact 2 × 2 box average: every level-L pixel is the mean of its 4^L level-0 pixels,
                    # whatever tile it is computed in, so halved tiles join without seams
                    arr = cv2.resize(arr, (arr.shape[1] // 2, arr.shape[0] // 2), interpolation=cv2.INTER_AREA)
                np.save(self._tile_path(level, tx, ty), arr)
            self._rendered.add((tx, ty))
            if progress is not None:
                progress(i + 1, len(todo))
        return len(todo)

    @property
    def rendered_tiles(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._rendered)

    def tile(self, tx: int, ty: int, level: int = 0) -> np.ndarray | None:
        """A drawn tile at `level` (side ``tile_px >> level``, uint8 BGR), or None when it was never drawn."""
        key = (level, tx, ty)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if (tx, ty) not in self._rendered:
            return None
        arr = np.load(self._tile_path(level, tx, ty))
        self._cache[key] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def crop(self, x0: int, y0: int, x1: int, y1: int, fill_bgr: tuple[int, int, int], level: int = 0) -> np.ndarray:
        """Pixels [y0:y1, x0:x1] of the orthophoto halved `level` times (coordinates at that level); parts outside
        it or in tiles never drawn get `fill_bgr`.

        Pixel j of level L is the mean of level-0 pixels ``2^L j .. 2^L (j + 1) - 1`` (per axis).
        """
        if not 0 <= level <= self.MAX_LEVEL:
            raise ValueError(f"level must lie within [0, {self.MAX_LEVEL}], got {level}")
        out = np.empty((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        out[:] = fill_bgr
        t = self.tile_px >> level
        for ty in range(max(0, y0 // t), min(self.n_tiles, (y1 - 1) // t + 1)):
            for tx in range(max(0, x0 // t), min(self.n_tiles, (x1 - 1) // t + 1)):
                arr = self.tile(tx, ty, level)
                if arr is None:
                    continue
                ax0, ay0 = max(x0, tx * t), max(y0, ty * t)
                ax1, ay1 = min(x1, (tx + 1) * t), min(y1, (ty + 1) * t)
                out[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = arr[ay0 - ty * t:ay1 - ty * t, ax0 - tx * t:ax1 - tx * t]
        return out

    def visible_fraction(self) -> np.ndarray:
        """(n_objects,) share of each object's drawn pixels that still show (under trees, behind others);
        NaN for objects in no drawn tile."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.own_px > 0, self.shown_px / np.maximum(self.own_px, 1), np.nan)

    def preview(self, max_side_px: int = 2048) -> np.ndarray | None:
        """A downscaled mosaic of the drawn tiles (undrawn parts grey), or None when nothing was drawn."""
        if not self._rendered:
            return None
        cols = [tx for tx, _ in self._rendered]
        rows = [ty for _, ty in self._rendered]
        c0, c1, r0, r1 = min(cols), max(cols) + 1, min(rows), max(rows) + 1
        scale = min(1.0, max_side_px / (max(c1 - c0, r1 - r0) * self.tile_px))
        side = max(1, round(self.tile_px * scale))
        out = np.full(((r1 - r0) * side, (c1 - c0) * side, 3), 128, np.uint8)
        for tx, ty in sorted(self._rendered):
            level = min(self.MAX_LEVEL, max(0, math.floor(math.log2(self.tile_px / side))))
            arr = self.tile(tx, ty, level)
            if arr is not None:
                out[(ty - r0) * side:(ty - r0 + 1) * side, (tx - c0) * side:(tx - c0 + 1) * side] = \
                    cv2.resize(arr, (side, side), interpolation=cv2.INTER_AREA)
        return out

    def close(self) -> None:
        """Forget the tiles and remove their folder."""
        self._cache.clear()
        shutil.rmtree(self.work_dir, ignore_errors=True)
