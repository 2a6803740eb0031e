"""Drone scenes: city blocks seen straight down (nadir) or at an angle (oblique), with rooftop sheds and new
builds to label as ``illegal_structure``, stalls on the pavements and rows of shared bikes.

The city is a grid of streets with blocks of one of four kinds: urban village (dense low houses with flat
roofs, where add-on sheds are most common), residential slabs, factories (whole blue or white metal roofs,
which are legal and must not be labelled), and parks or plazas. Everything is built in metres and drawn
through a drone camera, so buildings lean away from the image centre as they do in real nadir shots, and
the sizes of bikes and stalls follow the ground sampling distance.

Chips default to 1024 × 1024 cut from a virtual 4K frame (an off-centre principal point); a whole 3840 × 2160
frame for tiled-inference tests comes from `render_aerial_frame_4k`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from datasets.synth import objects as obj
from datasets.synth import palette as pal
from datasets.synth.camera import PinholeCamera
from datasets.synth.classes import AERIAL_CLASSES, BICYCLE, CAR, ILLEGAL_STRUCTURE, MOTORCYCLE, PERSON, STALL
from datasets.synth.compositor import Compositor
from datasets.synth.ground import ground_rect, paint_line
from datasets.synth.photometric import (Lighting, add_blur, add_fog, add_grain, add_sensor_noise, apply_lighting,
                                        sample_lighting, tone_curve)
from datasets.synth.sample import SceneSample
from datasets.synth.sketch import BGR, Light, Pose, Sketch

__all__ = ["render_aerial_scene", "render_aerial_frame_4k", "AerialView", "AerialViewSampling", "AerialCity",
           "AerialGroup", "lay_out_streets", "draw_ground_shadows", "aerial_lighting", "draw_single_on_walk"]

Rng = np.random.Generator

_SHED_BLUES: list[BGR] = [(190.0, 120.0, 40.0), (170.0, 100.0, 30.0), (205.0, 150.0, 70.0), (150.0, 85.0, 25.0)]
_SHED_OTHERS: list[BGR] = [(225.0, 225.0, 220.0), (215.0, 218.0, 215.0), (60.0, 60.0, 170.0), (150.0, 150.0, 150.0)]
_BRICK: BGR = (70.0, 95.0, 150.0)
_BLOCK_GREY: BGR = (150.0, 152.0, 150.0)
_TILE_REDS: list[BGR] = [(50.0, 70.0, 160.0), (45.0, 60.0, 130.0), (60.0, 90.0, 175.0), (70.0, 70.0, 80.0)]


_ROOF_TAGS = frozenset({"roof_clutter", "shed", "new_build"})


def _u(rng: Rng, lo: float, hi: float) -> float:
    """Uniform in [lo, hi); an empty range (a part that does not fit) gives its low end, still drawing once."""
    value = float(rng.uniform(0.0, 1.0))
    return lo + (hi - lo) * value if hi > lo else lo


@dataclass(frozen=True)
class AerialViewSampling:
    """How drone views are drawn for chips: the range of ground sampling distances and the share of oblique views.

    The defaults are the generator's original ones (2.5..7 cm/px, 35 % oblique). The view is drawn from the same
    numbers whatever the range: another range rescales a scene's view without shifting what is drawn after it,
    and the oblique share only moves the threshold on the draw that decides nadir or oblique.

    Attributes:
        gsd_range_m: (min, max) ground sampling distance at the image centre, metres per pixel, drawn uniformly.
            A 4K frame from 100 m with a typical drone camera is about 3..4.5 cm/px.
        oblique_probability: Share of oblique views (pitch 48..72 degrees); the rest look straight down.

    Example:
        >>> AerialViewSampling(gsd_range_m=(0.02, 0.05), oblique_probability=0.2).gsd_range_m
        (0.02, 0.05)
    """

    gsd_range_m: tuple[float, float] = (0.025, 0.07)
    oblique_probability: float = 0.35

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.gsd_range_m)
        if not 0.005 <= lo <= hi <= 1.0:
            raise ValueError(f"gsd_range_m must be (min, max) with 0.005 <= min <= max <= 1.0 m/px, "
                             f"got {self.gsd_range_m}")
        if not 0.0 <= self.oblique_probability <= 1.0:
            raise ValueError(f"oblique_probability must lie within [0, 1], got {self.oblique_probability}")
        object.__setattr__(self, "gsd_range_m", (lo, hi))


@dataclass(frozen=True)
class AerialView:
    """How the drone looks at the ground.

    Attributes:
        gsd_m: Ground sampling distance at the image centre, metres per pixel.
        pitch_deg: 90 for nadir; 45..70 for oblique views.
        yaw_deg: Heading of the image's up direction.
        principal_offset_px: Principal point minus the image centre: a chip cut from a larger frame.
    """

    gsd_m: float
    pitch_deg: float
    yaw_deg: float
    principal_offset_px: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def sample(cls, rng: Rng, size_px: tuple[int, int], frame_width_px: int = 3840,
               sampling: AerialViewSampling = AerialViewSampling()) -> "AerialView":
        """Nadir (65 % by default) or oblique; chips of a 4K frame get a random place in that frame."""
        w, h = size_px
        oblique = rng.random() < sampling.oblique_probability
        gsd = _u(rng, *sampling.gsd_range_m)
        if oblique:
            offset = (_u(rng, -0.15, 0.15) * w, _u(rng, -0.1, 0.1) * h)
            return cls(gsd, _u(rng, 48.0, 72.0), _u(rng, 0.0, 360.0), offset)
        spread_x = max(0.0, (frame_width_px - w) / 2.0)
        spread_y = max(0.0, (frame_width_px * 9 / 16 - h) / 2.0)
        return cls(gsd, 90.0, _u(rng, 0.0, 360.0), (_u(rng, -spread_x, spread_x), _u(rng, -spread_y, spread_y)))

    def camera(self, size_px: tuple[int, int], hfov_deg: float = 78.0, frame_width_px: int = 3840) -> PinholeCamera:
        w, h = size_px
        focal = frame_width_px / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
        if self.pitch_deg < 89.0:
            focal *= w / frame_width_px * 2.0  # oblique chips: a longer lens, so the far side is not tiny
        # height so that the centre ray meets the ground at the wanted scale
        slant = self.gsd_m * focal
        height = slant * math.sin(math.radians(self.pitch_deg))
        return PinholeCamera(w, h, focal, height_m=height, pitch_deg=self.pitch_deg, yaw_deg=self.yaw_deg,
                             cx_px=w / 2.0 + self.principal_offset_px[0], cy_px=h / 2.0 + self.principal_offset_px[1])


@dataclass
class AerialGroup:
    """Things drawn together in painter's order: a building, its roof clutter and the structures on it."""

    depth_m: float
    parts: list[tuple[Sketch, int | None, str]] = field(default_factory=list)


@dataclass
class AerialCity:
    """A city laid out in metres: ground areas, road marks and groups of 3D sketches, before any drawing.

    `camera` decides what is laid out at all (`shows`), the painter's depth of each group and which walls get
    windows; the sketches themselves are world geometry, so a layout can also be drawn through other cameras
    (the flight generator lays out a whole town once and draws it tile by tile, `datasets.synth.flight_town`).
    """

    camera: PinholeCamera
    light: Light
    rng: Rng
    sun: tuple[float, float, float] | None = None
    shadow_strength: float = 0.0
    groups: list[AerialGroup] = field(default_factory=list)
    ground: Sketch = field(default_factory=lambda: Sketch(depth_sort=False))
    marks: Sketch = field(default_factory=lambda: Sketch(depth_sort=False))
    sidewalks: list[np.ndarray] = field(default_factory=list)  # (4, 2) rectangles
    blocks: list[tuple[np.ndarray, str]] = field(default_factory=list)

    def depth(self, x: float, y: float, z: float) -> float:
        return float(self.camera.to_camera(np.array([[x, y, z]]))[0, 2])

    def add(self, x: float, y: float, top_z: float, parts: list[tuple[Sketch, int | None, str]]) -> None:
        self.groups.append(AerialGroup(self.depth(x, y, top_z), parts))

    def shows(self, x: float, y: float, half_x: float, half_y: float, top_z: float, margin_px: float = 8.0) -> bool:
        """Whether a box of the given ground half-sizes and height can appear in the picture."""
        pts = np.array([[x + sx * half_x, y + sy * half_y, z]
                        for sx in (-1, 1) for sy in (-1, 1) for z in (0.0, top_z)])
        uv, depth = self.camera.project(pts)
        if (depth <= 0.5).all():
            return False
        uv = uv[depth > 0.5]
        cam = self.camera
        return bool(uv[:, 0].max() >= -margin_px and uv[:, 0].min() <= cam.width_px + margin_px
                    and uv[:, 1].max() >= -margin_px and uv[:, 1].min() <= cam.height_px + margin_px)


def _footprint_extent(camera: PinholeCamera, margin_m: float) -> tuple[float, float, float, float]:
    w, h = camera.width_px, camera.height_px
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, 0], [w / 2, h], [0, h / 2], [w, h / 2]], np.float64)
    gp = camera.ground_point(corners)
    gp = gp[np.isfinite(gp).all(axis=1)]
    if len(gp) == 0:
        return -50.0, -50.0, 50.0, 50.0
    cx, cy = camera.x_m, camera.y_m
    lim = camera.height_m * 4 + 50
    xs = np.clip(gp[:, 0], cx - lim, cx + lim)
    ys = np.clip(gp[:, 1], cy - lim, cy + lim)
    return xs.min() - margin_m, ys.min() - margin_m, xs.max() + margin_m, ys.max() + margin_m


# --- roofs and what stands on them --------------------------------------------------------------------


def _flat_roof(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, top: float, color: BGR) -> BGR:
    """Parapet edge and a slightly different inner surface, so a flat roof reads as one from above.

    Returns:
        The colour of the inner surface.
    """
    inner = pal.mix(color, (90.0, 90.0, 90.0), _u(rng, 0.05, 0.2))
    e = min(0.35, lx * 0.1, ly * 0.1)
    sk.poly(pose.apply([[-lx / 2 + e, -ly / 2 + e, top + 0.01], [lx / 2 - e, -ly / 2 + e, top + 0.01],
                        [lx / 2 - e, ly / 2 - e, top + 0.01], [-lx / 2 + e, ly / 2 - e, top + 0.01]]), inner, layer=1,
            shadow=False)
    for _ in range(int(rng.integers(0, 3))):  # stains and patched areas
        px, py = _u(rng, -lx / 3, lx / 3), _u(rng, -ly / 3, ly / 3)
        sx, sy = _u(rng, 0.5, lx / 4), _u(rng, 0.5, ly / 4)
        sk.poly(pose.apply([[px - sx, py - sy, top + 0.02], [px + sx, py - sy, top + 0.02],
                            [px + sx, py + sy, top + 0.02], [px - sx, py + sy, top + 0.02]]),
                pal.mix(inner, (60.0, 60.0, 60.0), _u(rng, 0.05, 0.2)), layer=1, shadow=False)
    return inner


def _roof_clutter(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, top: float, facade: BGR,
                  taken: list[tuple[float, float, float, float]]) -> None:
    """Legal things on a flat roof: stair housing, water tanks, AC units, solar panels, plants, washing."""
    def free(x0, y0, x1, y1):
        return all(x1 < a or x0 > c or y1 < b or y0 > d for a, b, c, d in taken)

    if rng.random() < 0.75 and lx > 5 and ly > 5:  # stair housing, finished like the building
        sx, sy = _u(rng, 2.4, 3.4), _u(rng, 2.4, 3.2)
        cx = _u(rng, -lx / 2 + sx / 2 + 0.4, lx / 2 - sx / 2 - 0.4)
        cy = _u(rng, -ly / 2 + sy / 2 + 0.4, ly / 2 - sy / 2 - 0.4)
        if free(cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2):
            sk.box(pose.moved(cx, cy), (sx, sy, 2.7), facade, z0_m=top, layer=2)
            sk.box(pose.moved(cx, cy), (sx, sy, 0.05), pal.mix(facade, (80.0, 80.0, 80.0), 0.15), z0_m=top + 2.7,
                   layer=2)
            taken.append((cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2))
    for _ in range(int(rng.integers(0, 4))):  # water tanks
        r = _u(rng, 0.5, 1.1)
        cx, cy = _u(rng, -lx / 2 + r + 0.3, lx / 2 - r - 0.3), _u(rng, -ly / 2 + r + 0.3, ly / 2 - r - 0.3)
        if free(cx - r, cy - r, cx + r, cy + r):
            color = pal.pick(rng, [(235.0, 235.0, 230.0), (200.0, 140.0, 50.0), (180.0, 180.0, 185.0),
                                   (40.0, 40.0, 45.0)])
            sk.cylinder(pose.apply([[cx, cy, top]])[0], r, _u(rng, 1.0, 1.8), color, layer=2, segments=14)
            taken.append((cx - r, cy - r, cx + r, cy + r))
    for _ in range(int(rng.integers(0, 7))):  # air-conditioner outdoor units
        cx, cy = _u(rng, -lx / 2 + 0.6, lx / 2 - 0.6), _u(rng, -ly / 2 + 0.5, ly / 2 - 0.5)
        if free(cx - 0.45, cy - 0.2, cx + 0.45, cy + 0.2):
            p = pose.moved(cx, cy)
            sk.box(p, (0.85, 0.32, 0.6), (215.0, 215.0, 212.0), z0_m=top, layer=2)
            sk.poly(p.apply([[0.15 + 0.2 * math.cos(a), 0.2 * math.sin(a) * 0.8, top + 0.61]
                             for a in np.linspace(0, 2 * math.pi, 10, endpoint=False)]), (110.0, 110.0, 110.0),
                    layer=3, shade=False)
            taken.append((cx - 0.45, cy - 0.2, cx + 0.45, cy + 0.2))
    if rng.random() < 0.3 and lx > 6 and ly > 6:  # solar panel array
        n_x, n_y = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        pw, ph = 1.0, 1.7
        ox = _u(rng, -lx / 2 + 0.5, lx / 2 - n_x * (pw + 0.1) - 0.5)
        oy = _u(rng, -ly / 2 + 0.5, ly / 2 - n_y * (ph + 0.6) - 0.5)
        if free(ox, oy, ox + n_x * 1.1, oy + n_y * 2.3):
            for i in range(n_x):
                for j in range(n_y):
                    x0, y0 = ox + i * (pw + 0.1), oy + j * (ph + 0.6)
                    q = pose.apply([[x0, y0, top + 0.3], [x0 + pw, y0, top + 0.3], [x0 + pw, y0 + ph, top + 0.9],
                                    [x0, y0 + ph, top + 0.9]])
                    sk.poly(q, pal.jitter(rng, (90.0, 45.0, 30.0), 6), layer=2)
                    mid = pose.apply([[x0 + pw / 2, y0, top + 0.31], [x0 + pw / 2, y0 + ph, top + 0.91]])
                    sk.line(mid[0], mid[1], (160.0, 150.0, 150.0), 0.02, layer=3, shadow=False)
            taken.append((ox, oy, ox + n_x * 1.1, oy + n_y * 2.3))
    for _ in range(int(rng.integers(0, 6))):  # potted plants
        cx, cy = _u(rng, -lx / 2 + 0.4, lx / 2 - 0.4), _u(rng, -ly / 2 + 0.4, ly / 2 - 0.4)
        if free(cx - 0.3, cy - 0.3, cx + 0.3, cy + 0.3):
            sk.sphere(pose.apply([[cx, cy, top + 0.35]])[0], _u(rng, 0.2, 0.45),
                      pal.jitter(rng, (50.0, 120.0, 60.0), 15),
                      layer=2, highlight=False)
    if rng.random() < 0.3:  # washing lines
        y = _u(rng, -ly / 3, ly / 3)
        for k in range(int(rng.integers(2, 5))):
            a = pose.apply([[-lx / 3, y + k * 0.5, top + 1.6]])[0]
            b = pose.apply([[lx / 3, y + k * 0.5, top + 1.6]])[0]
            sk.line(a, b, (200.0, 200.0, 200.0), 0.01, layer=3, shadow=False)
            for t in np.linspace(0.1, 0.9, int(rng.integers(2, 7))):
                c = a + (b - a) * t
                sk.poly([c + [0, 0, 0], c + [0.25, 0, 0], c + [0.25, 0, -0.6], c + [0, 0, -0.6]],
                        pal.pick(rng, pal.CLOTH_COLORS), layer=3, shadow=False)


def _roof_shadow(target: Sketch, caster: Sketch, pose: Pose, lx: float, ly: float, top: float, roof: BGR,
                 city: AerialCity, layer: int) -> None:
    """The shadow `caster` throws on its flat roof, as a darker patch of the roof colour clipped to the roof."""
    if city.sun is None or not caster.ops:
        return
    s = np.asarray(city.sun, np.float64)
    pts = np.concatenate([op.pts for op in caster.ops])
    pts = pts[pts[:, 2] > top + 0.05]
    if len(pts) < 3:
        return
    flat = pts - ((pts[:, 2:3] - top) / s[2]) * s
    # to the building's frame, clip to the roof, back to the world
    c, si = math.cos(pose.heading_rad), math.sin(pose.heading_rad)
    rel = flat[:, :2] - np.array([pose.x_m, pose.y_m])
    local = np.column_stack([c * rel[:, 0] + si * rel[:, 1], -si * rel[:, 0] + c * rel[:, 1]]).astype(np.float32)
    hull = cv2.convexHull(local)
    roof_rect = np.array([[-lx / 2, -ly / 2], [lx / 2, -ly / 2], [lx / 2, ly / 2], [-lx / 2, ly / 2]], np.float32)
    area, clipped = cv2.intersectConvexConvex(hull, roof_rect)
    if area <= 0.01 or clipped is None:
        return
    q = clipped.reshape(-1, 2).astype(np.float64)
    world = pose.apply(np.column_stack([q, np.full(len(q), top + 0.015)]))
    target.poly(world, pal.mix(roof, (0.0, 0.0, 0.0), city.shadow_strength * 0.9), layer=layer, shade=False,
                shadow=False)


def _corrugated_shed(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, z0: float, *,
                     color: BGR | None = None, open_sides: bool = False) -> float:
    """A colour-steel shed (彩钢棚): corrugated walls and a gable or lean-to roof of ribbed sheet.

    Returns:
        Height of its highest point.
    """
    color = color or (pal.pick(rng, _SHED_BLUES, 8) if rng.random() < 0.7 else pal.pick(rng, _SHED_OTHERS, 6))
    wall = _u(rng, 2.3, 3.1)
    rib = pal.mix(color, (40.0, 40.0, 40.0), 0.28)
    hx, hy = lx / 2, ly / 2
    if open_sides:
        for sx in (-1, 1):
            for sy in (-1, 1):
                sk.line(pose.apply([[sx * (hx - 0.1), sy * (hy - 0.1), z0]])[0],
                        pose.apply([[sx * (hx - 0.1), sy * (hy - 0.1), z0 + wall]])[0], (120.0, 120.0, 120.0), 0.08)
    else:
        wall_color = color if rng.random() < 0.7 else pal.jitter(rng, _BRICK)
        sk.box(pose, (lx, ly, wall), wall_color, z0_m=z0)
        # vertical ribs on the two long walls (seen in oblique views)
        n = max(2, int(lx / 0.35))
        for side in (-1, 1):
            for i in range(1, n):
                x = -hx + lx * i / n
                sk.line(pose.apply([[x, side * (hy + 0.01), z0 + 0.05]])[0],
                        pose.apply([[x, side * (hy + 0.01), z0 + wall - 0.05]])[0], rib, 0.03, layer=1, shadow=False)
    gable = rng.random() < 0.55
    rise = _u(rng, 0.4, 0.9) if gable else _u(rng, 0.3, 0.7)
    ov = 0.15  # eaves overhang
    top = z0 + wall
    if gable:  # ridge along local x
        ridge = top + rise
        halves = [
            ([[-hx - ov, -hy - ov, top], [hx + ov, -hy - ov, top], [hx + ov, 0.0, ridge], [-hx - ov, 0.0, ridge]], -1),
            ([[-hx - ov, 0.0, ridge], [hx + ov, 0.0, ridge], [hx + ov, hy + ov, top], [-hx - ov, hy + ov, top]], 1),
        ]
        for quad, side in halves:
            sk.poly(pose.apply(quad), color, layer=2)
            n = max(2, int((lx + 2 * ov) / _u(rng, 0.25, 0.4)))
            for i in range(1, n):
                x = -hx - ov + (lx + 2 * ov) * i / n
                sk.line(pose.apply([[x, side * (hy + ov), top + 0.01]])[0], pose.apply([[x, 0.0, ridge + 0.01]])[0],
                        rib, 0.035, layer=3, shadow=False)
        for sx in (-1, 1):  # gable ends
            sk.poly(pose.apply([[sx * hx, -hy, top], [sx * hx, hy, top], [sx * hx, 0.0, ridge]]), color, layer=1)
        sk.line(pose.apply([[-hx - ov, 0.0, ridge + 0.02]])[0], pose.apply([[hx + ov, 0.0, ridge + 0.02]])[0],
                pal.mix(color, (230.0, 230.0, 230.0), 0.3), 0.12, layer=3, shadow=False)
        return ridge
    high = top + rise
    quad = [[-hx - ov, -hy - ov, top], [hx + ov, -hy - ov, top], [hx + ov, hy + ov, high], [-hx - ov, hy + ov, high]]
    sk.poly(pose.apply(quad), color, layer=2)
    if not open_sides:
        for sx in (-1, 1):
            sk.poly(pose.apply([[sx * hx, -hy, top], [sx * hx, hy, top], [sx * hx, hy, high - 0.05]]), color, layer=1)
        sk.poly(pose.apply([[-hx, hy, top], [hx, hy, top], [hx, hy, high - 0.05], [-hx, hy, high - 0.05]]), color,
                layer=1)
    n = max(2, int((lx + 2 * ov) / _u(rng, 0.25, 0.4)))
    for i in range(1, n):
        x = -hx - ov + (lx + 2 * ov) * i / n
        sk.line(pose.apply([[x, -hy - ov, top + 0.01]])[0], pose.apply([[x, hy + ov, high + 0.01]])[0], rib, 0.035,
                layer=3, shadow=False)
    return high


def _new_build(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, z0: float) -> float:
    """A bare new room on a roof or in a yard: brick or grey block walls, a raw concrete slab, openings."""
    brick = rng.random() < 0.55
    wall_color = pal.jitter(rng, _BRICK if brick else _BLOCK_GREY, 10)
    height = _u(rng, 2.7, 3.3)
    sk.box(pose, (lx, ly, height), wall_color, z0_m=z0)
    course = pal.mix(wall_color, (200.0, 200.0, 200.0) if brick else (60.0, 60.0, 60.0), 0.3)
    for side in (-1, 1):  # courses of bricks / blocks on the long walls
        for z in np.arange(z0 + 0.3, z0 + height, 0.3 if brick else 0.4):
            sk.line(pose.apply([[-lx / 2, side * (ly / 2 + 0.01), z]])[0],
                    pose.apply([[lx / 2, side * (ly / 2 + 0.01), z]])[0], course, 0.02, layer=1, shadow=False)
        if rng.random() < 0.7:  # an opening, no window fitted yet
            wx = _u(rng, -lx / 3, lx / 3)
            wy = side * (ly / 2 + 0.02)
            sk.poly(pose.apply([[wx - 0.5, wy, z0 + 1.0], [wx + 0.5, wy, z0 + 1.0], [wx + 0.5, wy, z0 + 2.1],
                                [wx - 0.5, wy, z0 + 2.1]]),
                    (35.0, 35.0, 38.0), layer=1, shadow=False)
    slab = pal.jitter(rng, (185.0, 188.0, 182.0) if rng.random() < 0.6 else (120.0, 125.0, 125.0), 10)
    top = z0 + height
    sk.box(pose, (lx + 0.1, ly + 0.1, 0.15), slab, z0_m=top, layer=2)
    for _ in range(int(rng.integers(3, 10))):  # rebar stubs and stains on the raw slab
        px, py = _u(rng, -lx / 2, lx / 2), _u(rng, -ly / 2, ly / 2)
        sk.sphere(pose.apply([[px, py, top + 0.16]])[0], _u(rng, 0.05, 0.15), pal.mix(slab, (50.0, 50.0, 50.0), 0.5),
                  layer=3, shadow=False, highlight=False)
    return top + 0.15


def _factory(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, height: float) -> None:
    """A factory hall roofed in one piece of blue or white colour steel: legal, and a hard negative."""
    color = pal.pick(rng, _SHED_BLUES, 8) if rng.random() < 0.6 else pal.pick(rng, _SHED_OTHERS[:2], 6)
    walls = pal.jitter(rng, (200.0, 200.0, 195.0), 10)
    sk.box(pose, (lx, ly, height), walls)
    rib = pal.mix(color, (40.0, 40.0, 40.0), 0.25)
    rise = ly * 0.08
    hx, hy = lx / 2, ly / 2
    for side in (-1, 1):
        quad = [[-hx, side * hy, height], [hx, side * hy, height], [hx, 0.0, height + rise], [-hx, 0.0, height + rise]]
        sk.poly(pose.apply(quad), color, layer=1)
        n = int(lx / 0.5)
        for i in range(1, n):
            x = -hx + lx * i / n
            sk.line(pose.apply([[x, side * hy, height + 0.01]])[0], pose.apply([[x, 0.0, height + rise + 0.01]])[0],
                    rib, 0.05, layer=2, shadow=False)
        for k in range(1, int(lx / 8)):  # translucent skylight strips
            x = -hx + k * 8
            t = [[x - 0.5, side * hy * 0.9, height + rise * 0.1], [x + 0.5, side * hy * 0.9, height + rise * 0.1],
                 [x + 0.5, side * hy * 0.2, height + rise * 0.8], [x - 0.5, side * hy * 0.2, height + rise * 0.8]]
            sk.poly(pose.apply(t), (225.0, 230.0, 230.0), layer=2, shadow=False)
    for sx in (-1, 1):
        sk.poly(pose.apply([[sx * hx, -hy, height], [sx * hx, hy, height], [sx * hx, 0.0, height + rise]]), walls)
    sk.line(pose.apply([[-hx, 0.0, height + rise + 0.02]])[0], pose.apply([[hx, 0.0, height + rise + 0.02]])[0],
            pal.mix(color, (230.0, 230.0, 230.0), 0.3), 0.3, layer=2, shadow=False)


def _tile_roof(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, height: float) -> None:
    """A pitched roof of red or grey tiles, ridge along the long side."""
    color = pal.pick(rng, _TILE_REDS, 8)
    rise = min(lx, ly) * _u(rng, 0.2, 0.35)
    hx, hy = lx / 2, ly / 2
    row = pal.mix(color, (30.0, 30.0, 30.0), 0.3)
    for side in (-1, 1):
        sk.poly(pose.apply([[-hx - 0.3, side * (hy + 0.3), height], [hx + 0.3, side * (hy + 0.3), height],
                            [hx + 0.3, 0.0, height + rise], [-hx - 0.3, 0.0, height + rise]]), color, layer=1)
        for t in np.arange(0.15, 1.0, 0.12):  # tile courses parallel to the ridge
            y, z = side * (hy + 0.3) * (1 - t), height + rise * t
            sk.line(pose.apply([[-hx - 0.3, y, z + 0.01]])[0], pose.apply([[hx + 0.3, y, z + 0.01]])[0], row, 0.04,
                    layer=2, shadow=False)
    for sx in (-1, 1):
        sk.poly(pose.apply([[sx * hx, -hy, height], [sx * hx, hy, height], [sx * hx, 0.0, height + rise]]),
                pal.jitter(rng, (170.0, 180.0, 190.0)))


# --- blocks -------------------------------------------------------------------------------------------


def _windows(sk: Sketch, city: AerialCity, pose: Pose, lx: float, ly: float, height: float, storeys: int,
             glass: BGR) -> None:
    """Windows on the walls the camera can see (oblique views, and buildings leaning at the frame's edge)."""
    center = city.camera.center_m
    for axis, (length, half_other) in enumerate(((lx, ly / 2), (ly, lx / 2))):
        for side in (-1.0, 1.0):
            normal_local = [[0.0, side, 0.0]] if axis == 0 else [[side, 0.0, 0.0]]
            normal = pose.vector(normal_local)[0]
            mid_local = [0.0, side * half_other, height / 2] if axis == 0 else [side * half_other, 0.0, height / 2]
            if float((pose.apply([mid_local])[0] - center) @ normal) >= 0:
                continue  # a wall turned away from the camera
            n_win = max(1, int(length / 3.0))
            if n_win * storeys > 240:  # very large walls: one band of glass per storey
                n_win = 1
            win_w = length / n_win * (0.5 if n_win > 1 else 0.9)
            for f in range(storeys):
                z0 = f * height / storeys + 0.9
                z1 = z0 + min(1.5, height / storeys * 0.5)
                for i in range(n_win):
                    c = -length / 2 + (i + 0.5) * length / n_win
                    a, b = c - win_w / 2, c + win_w / 2
                    off = half_other + 0.02
                    if axis == 0:
                        quad = [[a, side * off, z0], [b, side * off, z0], [b, side * off, z1], [a, side * off, z1]]
                    else:
                        quad = [[side * off, a, z0], [side * off, b, z0], [side * off, b, z1], [side * off, a, z1]]
                    sk.poly(pose.apply(quad), glass, layer=1, shadow=False, outward=normal)



def _building(city: AerialCity, x: float, y: float, lx: float, ly: float, heading: float, storeys: int, kind: str,
              allow_structures: bool, stats: dict[str, int]) -> None:
    rng = city.rng
    height = storeys * _u(rng, 2.9, 3.2)
    if not city.shows(x, y, lx / 2 + 1.0, ly / 2 + 1.0, height + 4.0):
        return
    pose = Pose(x, y, heading_rad=heading)
    facade = pal.pick(rng, pal.FACADE_COLORS, 10)
    sk = Sketch(light=city.light)
    parts: list[tuple[Sketch, int | None, str]] = [(sk, None, "building")]
    if kind == "factory":
        _factory(sk, rng, pose, lx, ly, height)
        stats["factory_roofs"] += 1
        city.add(x, y, height, parts)
        return
    sk.box(pose, (lx, ly, height), facade)
    _windows(sk, city, pose, lx, ly, height, storeys, pal.jitter(rng, (95.0, 85.0, 75.0), 12))
    if kind == "tile" or (kind == "village" and rng.random() < 0.15):
        _tile_roof(sk, rng, pose, lx, ly, height)
        city.add(x, y, height, parts)
        return
    roof = pal.pick(rng, pal.ROOF_COLORS, 10)
    sk.box(pose, (lx, ly, 0.02), roof, z0_m=height)
    roof_inner = _flat_roof(sk, rng, pose, lx, ly, height, roof)
    taken: list[tuple[float, float, float, float]] = []
    # illegal add-ons: sheds and new rooms on the flat roof
    if allow_structures and lx > 5 and ly > 5 and rng.random() < (0.5 if kind == "village" else 0.2):
        for _ in range(int(rng.choice([1, 1, 1, 2]))):
            sx = min(lx - 1.0, _u(rng, 3.0, min(12.0, lx * 0.85)))
            sy = min(ly - 1.0, _u(rng, 3.0, min(9.0, ly * 0.85)))
            cx = _u(rng, -lx / 2 + sx / 2 + 0.3, lx / 2 - sx / 2 - 0.3)
            cy = _u(rng, -ly / 2 + sy / 2 + 0.3, ly / 2 - sy / 2 - 0.3)
            if any(not (cx + sx / 2 < a or cx - sx / 2 > c or cy + sy / 2 < b or cy - sy / 2 > d)
                   for a, b, c, d in taken):
                continue
            taken.append((cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2))
            shed = Sketch(light=city.light)
            spose = pose.moved(cx, cy, dheading_rad=float(rng.choice([0.0, math.pi / 2])) if abs(sx - sy) < 1 else 0.0)
            if rng.random() < 0.65:
                _corrugated_shed(shed, rng, spose, sx, sy, height, open_sides=rng.random() < 0.15)
                stats["sheds"] += 1
                parts.append((shed, ILLEGAL_STRUCTURE, "shed"))
            else:
                _new_build(shed, rng, spose, sx, sy, height)
                stats["new_builds"] += 1
                parts.append((shed, ILLEGAL_STRUCTURE, "new_build"))
    clutter = Sketch(light=city.light)
    _roof_clutter(clutter, rng, pose, lx, ly, height, facade, taken)
    shadows = Sketch(light=city.light)
    for caster, *_ in parts[1:] + [(clutter, None, "")]:
        _roof_shadow(shadows, caster, pose, lx, ly, height, roof_inner, city, layer=0)
    parts.insert(1, (shadows, None, "roof_clutter"))
    parts.insert(2, (clutter, None, "roof_clutter"))
    city.add(x, y, height, parts)


def _village_block(city: AerialCity, x0: float, y0: float, x1: float, y1: float, stats: dict[str, int]) -> None:
    rng = city.rng
    alley = _u(rng, 1.5, 3.5)
    x = x0 + alley
    while x < x1 - 5:
        bw = _u(rng, 7.0, 14.0)
        y = y0 + alley
        while y < y1 - 5:
            bd = _u(rng, 8.0, 16.0)
            w, d = min(bw, x1 - alley - x), min(bd, y1 - alley - y)
            if w > 4 and d > 4:
                if not city.shows(x + w / 2, y + d / 2, w / 2, d / 2, 25.0):
                    pass
                elif rng.random() < 0.12:  # a yard with a shed or new room at ground level
                    sk = Sketch(light=city.light)
                    fill_yard = Sketch()
                    fill_yard.poly([[x, y, 0.01], [x + w, y, 0.01], [x + w, y + d, 0.01], [x, y + d, 0.01]],
                                   pal.jitter(rng, (150.0, 155.0, 150.0)), shade=False)
                    city.ground.extend(fill_yard)
                    sx, sy = min(w - 1, _u(rng, 3, 7)), min(d - 1, _u(rng, 3, 6))
                    p = Pose(x + w / 2, y + d / 2)
                    if rng.random() < 0.6:
                        top = _corrugated_shed(sk, rng, p, sx, sy, 0.0)
                        stats["sheds"] += 1
                        city.add(x + w / 2, y + d / 2, top, [(sk, ILLEGAL_STRUCTURE, "yard_shed")])
                    else:
                        top = _new_build(sk, rng, p, sx, sy, 0.0)
                        stats["new_builds"] += 1
                        city.add(x + w / 2, y + d / 2, top, [(sk, ILLEGAL_STRUCTURE, "yard_build")])
                else:
                    _building(city, x + w / 2, y + d / 2, w - 0.3, d - 0.3, 0.0, int(rng.integers(2, 7)), "village",
                              True, stats)
            y += bd + alley * _u(rng, 0.5, 1.5)
        x += bw + alley * _u(rng, 0.5, 1.5)


def _residential_block(city: AerialCity, x0: float, y0: float, x1: float, y1: float, stats: dict[str, int]) -> None:
    rng = city.rng
    city.ground.poly([[x0, y0, 0.005], [x1, y0, 0.005], [x1, y1, 0.005], [x0, y1, 0.005]],
                     pal.jitter(rng, (80.0, 130.0, 90.0), 10), shade=False)
    along_x = (x1 - x0) > (y1 - y0)
    gap = _u(rng, 12.0, 25.0)
    slab_d = _u(rng, 11.0, 16.0)
    pos = (y0 if along_x else x0) + 4
    end = (y1 if along_x else x1) - 4
    while pos + slab_d < end:
        length = (x1 - x0 if along_x else y1 - y0) - 8
        for seg_start in np.arange(0, length, _u(rng, 25.0, 60.0)):
            seg = min(length - seg_start, _u(rng, 20.0, 55.0))
            if seg < 10:
                continue
            if along_x:
                cx, cy, lx, ly = x0 + 4 + seg_start + seg / 2, pos + slab_d / 2, seg, slab_d
            else:
                cx, cy, lx, ly = pos + slab_d / 2, y0 + 4 + seg_start + seg / 2, slab_d, seg
            _building(city, cx, cy, lx, ly, 0.0, int(rng.integers(4, 12)), "residential", True, stats)
        pos += slab_d + gap
    _trees(city, x0 + 2, y0 + 2, x1 - 2, y1 - 2, int(rng.integers(3, 12)))


def _factory_block(city: AerialCity, x0: float, y0: float, x1: float, y1: float, stats: dict[str, int]) -> None:
    rng = city.rng
    city.ground.poly([[x0, y0, 0.005], [x1, y0, 0.005], [x1, y1, 0.005], [x0, y1, 0.005]],
                     pal.jitter(rng, (140.0, 145.0, 145.0), 10), shade=False)
    margin = 5.0
    if rng.random() < 0.5:
        _building(city, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0 - 2 * margin, y1 - y0 - 2 * margin, 0.0,
                  int(rng.integers(2, 4)), "factory", False, stats)
    else:
        mid = (x0 + x1) / 2
        for a, b in ((x0, mid), (mid, x1)):
            _building(city, (a + b) / 2, (y0 + y1) / 2, b - a - 2 * margin, y1 - y0 - 2 * margin, 0.0,
                      int(rng.integers(2, 4)), "factory", False, stats)


def _park_block(city: AerialCity, x0: float, y0: float, x1: float, y1: float, stats: dict[str, int]) -> None:
    rng = city.rng
    grass = pal.jitter(rng, (70.0, 135.0, 85.0), 12)
    city.ground.poly([[x0, y0, 0.005], [x1, y0, 0.005], [x1, y1, 0.005], [x0, y1, 0.005]], grass, shade=False)
    plaza = pal.jitter(rng, (170.0, 175.0, 180.0), 10)
    px0, py0 = x0 + (x1 - x0) * _u(rng, 0.1, 0.4), y0 + (y1 - y0) * _u(rng, 0.1, 0.4)
    px1, py1 = x1 - (x1 - x0) * _u(rng, 0.1, 0.4), y1 - (y1 - y0) * _u(rng, 0.1, 0.4)
    city.ground.poly([[px0, py0, 0.006], [px1, py0, 0.006], [px1, py1, 0.006], [px0, py1, 0.006]], plaza, shade=False)
    city.sidewalks.append(ground_rect(px0, py0, px1, py1))
    _trees(city, x0 + 1, y0 + 1, x1 - 1, y1 - 1, int(rng.integers(6, 20)), avoid=(px0, py0, px1, py1))


def _trees(city: AerialCity, x0: float, y0: float, x1: float, y1: float, n: int,
           avoid: tuple[float, float, float, float] | None = None) -> None:
    rng = city.rng
    for _ in range(n):
        tx, ty = _u(rng, x0, x1), _u(rng, y0, y1)
        if avoid is not None and avoid[0] < tx < avoid[2] and avoid[1] < ty < avoid[3]:
            continue
        if not city.shows(tx, ty, 3.0, 3.0, 7.0):
            continue
        sk = Sketch(light=city.light)
        obj.tree(sk, rng, Pose(tx, ty), crown_m=_u(rng, 1.5, 3.0))
        city.add(tx, ty, 6.0, [(sk, None, "tree")])


# --- streets and what is on them ----------------------------------------------------------------------


def lay_out_streets(city: AerialCity, extent: tuple[float, float, float, float], stats: dict[str, int]) -> None:
    """Roads, pavements, road marks, blocks of buildings (with rooftop and yard structures), trees and cars.

    Args:
        city: The layout to add to; its generator draws everything.
        extent: (x_min, y_min, x_max, y_max) ground area in metres.
        stats: Counters updated in place (``sheds``, ``new_builds``, ``factory_roofs``).
    """
    rng = city.rng
    x_min, y_min, x_max, y_max = extent
    block_x, block_y = _u(rng, 45.0, 110.0), _u(rng, 45.0, 110.0)
    road_w = _u(rng, 7.0, 18.0)
    walk_w = _u(rng, 2.5, 5.0)
    pitch_x, pitch_y = block_x + road_w + 2 * walk_w, block_y + road_w + 2 * walk_w
    off_x, off_y = _u(rng, 0, pitch_x), _u(rng, 0, pitch_y)
    asphalt = pal.jitter(rng, (85.0, 88.0, 90.0), 6, 0.12)
    paving = pal.pick(rng, pal.PAVING_COLORS, 8)
    white = (225.0, 228.0, 230.0)
    xs = np.arange(math.floor((x_min - off_x) / pitch_x) * pitch_x + off_x, x_max + pitch_x, pitch_x)
    ys = np.arange(math.floor((y_min - off_y) / pitch_y) * pitch_y + off_y, y_max + pitch_y, pitch_y)
    g = city.ground
    g.poly([[x_min, y_min, 0.0], [x_max, y_min, 0.0], [x_max, y_max, 0.0], [x_min, y_max, 0.0]], paving, shade=False)
    for x in xs:  # roads along Y at x (centre), with pavements
        g.poly([[x - road_w / 2, y_min, 0.001], [x + road_w / 2, y_min, 0.001], [x + road_w / 2, y_max, 0.001],
                [x - road_w / 2, y_max, 0.001]], asphalt, shade=False)
        for side in (-1, 1):
            a = x + side * (road_w / 2 + walk_w / 2)
            city.sidewalks.append(ground_rect(a - walk_w / 2, y_min, a + walk_w / 2, y_max))
    for y in ys:
        g.poly([[x_min, y - road_w / 2, 0.002], [x_max, y - road_w / 2, 0.002], [x_max, y + road_w / 2, 0.002],
                [x_min, y + road_w / 2, 0.002]], asphalt, shade=False)
        for side in (-1, 1):
            b = y + side * (road_w / 2 + walk_w / 2)
            city.sidewalks.append(ground_rect(x_min, b - walk_w / 2, x_max, b + walk_w / 2))
    m = city.marks
    dash, gap = _u(rng, 2.0, 4.0), _u(rng, 4.0, 8.0)
    for x in xs:
        for y in ys:
            # centre dashes between intersections, zebra crossings at them
            y_a, y_b = y + road_w / 2 + walk_w + 3, y + pitch_y - road_w / 2 - walk_w - 3
            t = y_a
            while t < y_b:
                paint_line(m, (x, t), (x, min(y_b, t + dash)), 0.15, white)
                t += dash + gap
            x_a, x_b = x + road_w / 2 + walk_w + 3, x + pitch_x - road_w / 2 - walk_w - 3
            t = x_a
            while t < x_b:
                paint_line(m, (t, y), (min(x_b, t + dash), y), 0.15, white)
                t += dash + gap
            if rng.random() < 0.6:
                for k in np.arange(-road_w / 2 + 0.8, road_w / 2 - 0.5, 1.0):
                    paint_line(m, (x + k, y + road_w / 2 + 0.5), (x + k, y + road_w / 2 + 3.5), 0.45, white)
                    paint_line(m, (x + road_w / 2 + 0.5, y + k), (x + road_w / 2 + 3.5, y + k), 0.45, white)
    blocks = []
    for x in xs:
        for y in ys:
            bx0, by0 = x + road_w / 2 + walk_w, y + road_w / 2 + walk_w
            bx1, by1 = x + pitch_x - road_w / 2 - walk_w, y + pitch_y - road_w / 2 - walk_w
            if bx1 < x_min or by1 < y_min or bx0 > x_max or by0 > y_max:
                continue
            kind = str(rng.choice(["village", "village", "village", "residential", "factory", "park"],
                                  p=[0.25, 0.2, 0.15, 0.17, 0.13, 0.1]))
            blocks.append((bx0, by0, bx1, by1, kind))
    for bx0, by0, bx1, by1, kind in blocks:
        {"village": _village_block, "residential": _residential_block, "factory": _factory_block,
         "park": _park_block}[kind](city, bx0, by0, bx1, by1, stats)
        city.blocks.append((ground_rect(bx0, by0, bx1, by1), kind))
    # cars on the roads
    for x in xs:  # cars parked along the kerbs
        for side in (-1, 1):
            if rng.random() < 0.4:
                y = _u(rng, y_min, y_max)
                for k in range(int(rng.integers(2, 8))):
                    cy = y + k * _u(rng, 5.2, 6.5)
                    if city.shows(x, cy, 3.0, 3.0, 2.0):
                        sk = Sketch(light=city.light)
                        obj.car(sk, rng, Pose(x + side * (road_w / 2 - 1.1), cy, heading_rad=math.pi / 2 * side))
                        city.add(x, cy, 1.5, [(sk, CAR, "car")])
    for x in xs:
        for _ in range(int(rng.integers(0, 5))):
            y = _u(rng, y_min, y_max)
            side = 1 if rng.random() < 0.5 else -1
            if not city.shows(x, y, 3.0, 3.0, 2.0):
                continue
            sk = Sketch(light=city.light)
            obj.car(sk, rng, Pose(x + side * road_w / 4, y, heading_rad=math.pi / 2 * side))
            city.add(x, y, 1.5, [(sk, CAR, "car")])
    for y in ys:
        for _ in range(int(rng.integers(0, 5))):
            x = _u(rng, x_min, x_max)
            side = 1 if rng.random() < 0.5 else -1
            if not city.shows(x, y, 3.0, 3.0, 2.0):
                continue
            sk = Sketch(light=city.light)
            obj.car(sk, rng, Pose(x, y + side * road_w / 4, heading_rad=0.0 if side > 0 else math.pi))
            city.add(x, y, 1.5, [(sk, CAR, "car")])


def draw_single_on_walk(city: "AerialCity", rng: Rng, x: float, y: float, stats: dict[str, int]) -> None:
    """One lone thing on a pavement at (x, y): a shared bike, an e-bike (labelled `motorcycle`), a person (labelled
    `person`) or a cart/bin (left unlabelled): the look-alikes get their own distractor classes so that the model
    can say what they are instead of learning only to stay silent. Shared by the chips and the flight towns."""
    sk = Sketch(light=city.light)
    pose = Pose(x, y, heading_rad=_u(rng, 0, 2 * math.pi))
    r = rng.random()
    if r < 0.3:
        obj.shared_bicycle(sk, rng, pose)
        stats["bikes"] += 1
        city.add(x, y, 1.0, [(sk, BICYCLE, "bike")])
    elif r < 0.45:
        obj.ebike(sk, rng, pose)
        city.add(x, y, 1.0, [(sk, MOTORCYCLE, "ebike")])
    elif r < 0.9:
        obj.person(sk, rng, pose, walking=rng.random() < 0.7, umbrella=rng.random() < 0.05)
        city.add(x, y, 1.8, [(sk, PERSON, "person")])
    else:
        [obj.trolley, obj.empty_cart, obj.bin][int(rng.integers(3))](sk, rng, pose)
        city.add(x, y, 1.0, [(sk, None, "negative")])


def _on_walks(city: AerialCity, stats: dict[str, int]) -> None:
    """Stalls, bike rows, e-bikes, people and trees on the pavements (inside the visible area)."""
    rng = city.rng
    cam = city.camera
    walks = city.sidewalks
    if not walks:
        return

    def point_on_walk():
        for _ in range(30):
            r = walks[int(rng.integers(len(walks)))]
            x, y = _u(rng, r[:, 0].min(), r[:, 0].max()), _u(rng, r[:, 1].min(), r[:, 1].max())
            if cam.visible(np.array([[x, y, 0.0]]), 20).any():
                along = 0.0 if (r[:, 0].max() - r[:, 0].min()) > (r[:, 1].max() - r[:, 1].min()) else math.pi / 2
                return x, y, along
        return None

    n_scale = cam.width_px * cam.height_px / (1024 * 1024)
    for _ in range(int(rng.integers(0, 5) * n_scale + rng.random())):  # markets: rows of stalls
        p = point_on_walk()
        if p is None:
            continue
        x, y, along = p
        n = int(rng.integers(1, 6))
        for i in range(n):
            sx, sy = x + math.cos(along) * i * 3.2, y + math.sin(along) * i * 3.2
            sk = Sketch(light=city.light)
            obj.stall(sk, rng, Pose(sx, sy, heading_rad=along + _u(rng, -0.1, 0.1)),
                      str(rng.choice(["canopy", "canopy", "umbrella", "cart", "tricycle", "ground"])))
            stats["stalls"] += 1
            parts: list[tuple[Sketch, int | None, str]] = [(sk, STALL, "stall")]
            if rng.random() < 0.5:
                vendor = Sketch(light=city.light)
                obj.person(vendor, rng, Pose(sx + _u(rng, -1.5, 1.5), sy + _u(rng, -1.5, 1.5),
                                             heading_rad=_u(rng, 0, 6.28)), walking=False)
                parts.append((vendor, PERSON, "vendor"))
            city.add(sx, sy, 2.5, parts)
    for _ in range(int(rng.integers(0, 6) * n_scale + rng.random())):  # rows of shared bikes
        p = point_on_walk()
        if p is None:
            continue
        x, y, along = p
        n = int(rng.integers(3, 16))
        spacing = _u(rng, 0.5, 0.75)
        heading = along + math.pi / 2 + _u(rng, -0.5, 0.5)
        scheme = pal.SHARED_BIKE_SCHEMES[int(rng.integers(len(pal.SHARED_BIKE_SCHEMES)))]
        shared = rng.random() < 0.8
        for i in range(n):
            bx, by = x + math.cos(along) * spacing * i, y + math.sin(along) * spacing * i
            sk = Sketch(light=city.light)
            pose = Pose(bx + _u(rng, -0.1, 0.1), by + _u(rng, -0.1, 0.1), heading_rad=heading + _u(rng, -0.15, 0.15),
                        lean_rad=_u(rng, -0.15, 0.15))
            if rng.random() < 0.08:
                obj.ebike(sk, rng, pose)  # a look-alike: the distractor class motorcycle, never a bike case
                city.add(bx, by, 1.0, [(sk, MOTORCYCLE, "ebike")])
                continue
            if shared:
                obj.shared_bicycle(sk, rng, pose, scheme)
            else:
                obj.private_bicycle(sk, rng, pose)
            stats["bikes"] += 1
            city.add(bx, by, 1.0, [(sk, BICYCLE, "bike")])
    for _ in range(int(rng.integers(2, 20) * n_scale)):  # singles: bikes, e-bikes, people
        p = point_on_walk()
        if p is None:
            continue
        x, y, _along = p
        draw_single_on_walk(city, rng, x, y, stats)
    for r in walks:  # street trees along some pavements
        if rng.random() < 0.35:
            long_x = (r[:, 0].max() - r[:, 0].min()) > (r[:, 1].max() - r[:, 1].min())
            a0, a1 = (r[:, 0].min(), r[:, 0].max()) if long_x else (r[:, 1].min(), r[:, 1].max())
            c = r[:, 1].mean() if long_x else r[:, 0].mean()
            spacing = _u(rng, 7.0, 12.0)
            for t in np.arange(a0 + _u(rng, 0, spacing), a1, spacing):
                tx, ty = (t, c) if long_x else (c, t)
                if cam.visible(np.array([[tx, ty, 0.0]]), 200).any():
                    sk = Sketch(light=city.light)
                    obj.tree(sk, rng, Pose(tx, ty), crown_m=_u(rng, 1.5, 2.6))
                    city.add(tx, ty, 6.0, [(sk, None, "tree")])


# --- rendering ----------------------------------------------------------------------------------------


def aerial_lighting(rng: Rng) -> Lighting:
    """Draw a daylight condition for a drone view (day, overcast or dusk; a sun kept high enough)."""
    lighting = sample_lighting(rng, weights=(0.6, 0.3, 0.1, 0.0), rain_probability=0.0)
    if lighting.sun is None:
        return lighting
    # drones fly in daylight: keep the sun reasonably high so shadows do not swallow the streets
    sun = np.asarray(lighting.sun.sun_dir)
    if sun[2] < 0.6:
        horizontal = sun[:2] / max(1e-9, float(np.linalg.norm(sun[:2])))
        sun = np.array([horizontal[0] * 0.8, horizontal[1] * 0.8, 0.6])
    return Lighting(lighting.name, lighting.gain_bgr, Light(tuple(float(v) for v in sun), lighting.sun.ambient,
                                                            lighting.sun.diffuse),
                    lighting.shadow_strength, lighting.contact_shadow_strength, False, lighting.noise_sigma * 0.7,
                    lighting.desaturation, False)


def render_aerial_scene(rng: Rng, size_px: tuple[int, int] = (1024, 1024), *, view: AerialView | None = None,
                        lighting: Lighting | None = None, omit_classes: frozenset[int] | set[int] = frozenset(),
                        min_visible_fraction: float = 0.4, frame_width_px: int = 3840,
                        view_sampling: AerialViewSampling = AerialViewSampling()) -> SceneSample:
    """Render one drone view with `AERIAL_CLASSES` labels.

    Args:
        rng: The scene's generator; the scene depends on it only.
        size_px: (width, height).
        view: Force the view (scale, tilt, heading); None draws one.
        lighting: Force the light; None draws one (no night: drones fly by day).
        omit_classes: Classes laid out but not drawn (for tests that check labels sit on visible pixels).
        min_visible_fraction: Objects whose in-frame part is hidden (under trees, behind buildings) beyond
            this share get no label; objects cut by the frame keep theirs while a quarter is inside.
        frame_width_px: Width of the camera's full frame that chips are cut from.
        view_sampling: Range of scales and share of oblique views the view is drawn from (when `view` is None).

    Returns:
        The image and labels; ``meta`` counts sheds, new builds and factory roofs (hard negatives).

    Example:
        >>> s = render_aerial_scene(np.random.default_rng(0), (256, 256))
        >>> s.class_names
        ['bicycle', 'stall', 'illegal_structure', 'person', 'motorcycle', 'car']
    """
    w, h = int(size_px[0]), int(size_px[1])
    view = view or AerialView.sample(rng, (w, h), frame_width_px, view_sampling)
    camera = view.camera((w, h), frame_width_px=frame_width_px)
    lighting = lighting or aerial_lighting(rng)
    light = lighting.sun or Light(sun_dir=(0.2, -0.3, 0.93), ambient=0.72, diffuse=0.3)
    city = AerialCity(camera, light, rng, lighting.sun.sun_dir if lighting.sun is not None else None,
                 lighting.shadow_strength)
    stats = {"sheds": 0, "new_builds": 0, "factory_roofs": 0, "stalls": 0, "bikes": 0}
    extent = _footprint_extent(camera, 30.0)
    lay_out_streets(city, extent, stats)
    _on_walks(city, stats)

    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (150, 160, 150)
    city.ground.draw_into(img, camera)
    city.marks.draw_into(img, camera)
    comp = Compositor(img)
    add_grain(comp.image, rng, _u(rng, 0.015, 0.04))
    omit = frozenset(omit_classes)
    groups = [g for g in city.groups if g.depth_m > 1.0]
    groups.sort(key=lambda g: -g.depth_m)
    max_area = w * h * 2.0
    # keep only groups that can show: one cheap projection of an anchor point each
    draw_ground_shadows(comp, groups, camera, lighting, omit)
    for g in groups:
        for sk, class_id, tag in g.parts:
            draw = class_id is None or class_id not in omit
            comp.paste(sk.render(camera, max_area_px=max_area), class_id, tag=tag, draw=draw)
    apply_lighting(comp.image, comp.emission, lighting)
    if rng.random() < 0.3:
        haze = np.full(h, _u(rng, 80.0, 400.0), np.float32)
        add_fog(comp.image, haze * 0.3, _u(rng, 150.0, 600.0), (215.0, 210.0, 200.0))
    comp.image = add_blur(comp.image, rng, str(rng.choice(["none", "defocus", "motion"], p=[0.7, 0.2, 0.1])))
    add_sensor_noise(comp.image, rng, lighting.noise_sigma)
    image = tone_curve(comp.to_uint8(), rng)
    xyxy, class_id, visible, kept = comp.labels(min_visible_fraction)
    meta: dict[str, Any] = {
        "kind": "aerial", "lighting": lighting.name,
        "view": {"gsd_m": round(view.gsd_m, 4), "pitch_deg": round(view.pitch_deg, 2),
                 "yaw_deg": round(view.yaw_deg, 2)},
        "camera": {"height_m": round(camera.height_m, 2), "focal_px": round(camera.focal_px, 1)},
        "layout": stats, "tags": [comp.objects[i].tag for i in kept],
    }
    return SceneSample(image=image, xyxy=xyxy, class_id=class_id, class_names=list(AERIAL_CLASSES),
                       visible_fraction=visible, jpeg_quality=int(rng.integers(60, 96)), meta=meta)


def draw_ground_shadows(comp: Compositor, groups: list[AerialGroup], camera: PinholeCamera, lighting: Lighting,
             omit: frozenset[int]) -> None:
    """Building, tree and object shadows on the ground, drawn at half size and blurred (into `comp`)."""
    if lighting.sun is None or lighting.shadow_strength <= 0:
        return
    half = camera.scaled(0.5)
    mask = np.zeros((half.height_px, half.width_px), np.uint8)
    for g in groups:
        for sk, class_id, tag in g.parts:
            if (class_id is not None and class_id in omit) or tag in _ROOF_TAGS:
                continue  # things on roofs cast their shadows on the roof, not on the ground
            sk.draw_shadow(mask, half, lighting.sun.sun_dir)
    if not mask.any():
        return
    shade = cv2.GaussianBlur(mask.astype(np.float32) * np.float32(lighting.shadow_strength * 1.2 / 255.0), (0, 0), 0.8)
    comp.darken(cv2.resize(shade, (camera.width_px, camera.height_px), interpolation=cv2.INTER_LINEAR), 1.0)


def render_aerial_frame_4k(rng: Rng, size_px: tuple[int, int] = (3840, 2160), *,
                           gsd_m: float | None = None) -> SceneSample:
    """A whole nadir drone frame (3840 × 2160 by default) for tiled-inference tests.

    Args:
        rng: The generator.
        size_px: Frame size.
        gsd_m: Ground sampling distance; None draws 2.5..4 cm/px, where a bike is ~40..70 px long.
    """
    gsd = gsd_m if gsd_m is not None else _u(rng, 0.025, 0.04)
    view = AerialView(gsd, 90.0, _u(rng, 0.0, 360.0), (0.0, 0.0))
    return render_aerial_scene(rng, size_px, view=view, frame_width_px=int(size_px[0]))
