"""Street-camera scenes: a pole camera looking across a street at shopfronts, with stalls, parked bicycles and
e-bikes to label, and people, cars, awnings, empty carts and street furniture that must not be labelled.

Geometry: the camera stands at the origin, ``height_m`` above the near pavement, and looks across the street
(+Y) with some heading. The street runs along X: near pavement, road (or a pedestrian street), kerb, far
pavement and the shopfronts' facade plane at ``Y = facade_y_m``. Everything is placed in metres and drawn
through the camera, so objects near the bottom of the picture are bigger, painted boxes are in perspective
and far bikes are small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from datasets.synth import objects as obj
from datasets.synth import palette as pal
from datasets.synth.bike_bank import BikeCropBank
from datasets.synth.camera import NEAR_M, PinholeCamera
from datasets.synth.classes import BICYCLE, CAR, EBIKE, PERSON, STALL, STREET_CLASSES, STREET_CLASSES_WITH_DISTRACTORS
from datasets.synth.compositor import Compositor
from datasets.synth.footage import FootageBackground
from datasets.synth.ground import fill_ground, paint_line
from datasets.synth.photometric import (Lighting, add_blur, add_fog, add_glows, add_grain, add_rain, add_sensor_noise,
                                        apply_lighting, draw_osd, sample_lighting, tone_curve)
from datasets.synth.sample import SceneSample
from datasets.synth.sketch import Layer, Light, Pose, Sketch

__all__ = ["render_street_scene", "place_real_bike", "StreetAssets", "StreetLayout", "StreetBackground",
           "build_street_background", "paint_bike_box", "project_ground_polygon", "REGION_NAMES"]

Rng = np.random.Generator

# region ids of the ground map
_NONE, _ROAD, _FAR_WALK, _NEAR_WALK, _GROUND = 0, 1, 2, 3, 4
REGION_NAMES = {_NONE: "none", _ROAD: "road", _FAR_WALK: "far_walk", _NEAR_WALK: "near_walk", _GROUND: "ground"}
_WALKS = (_FAR_WALK, _NEAR_WALK, _GROUND)

_X_FAR_M = 400.0  # how far along the street ground bands are drawn (clipped at the camera's near plane)


@dataclass
class StreetAssets:
    """Optional real material for street scenes.

    Attributes:
        bike_bank: Cut-out real bicycles; None draws every bicycle.
        backgrounds: Median frames of real fixed cameras; empty means procedural streets only.
        real_background_probability: Share of scenes built on a real background (when there are any).
        real_bike_probability: Share of bicycle groups that use real cut-outs (when there is a bank).
    """

    bike_bank: BikeCropBank | None = None
    backgrounds: list[FootageBackground] = field(default_factory=list)
    real_background_probability: float = 0.25
    real_bike_probability: float = 0.45


@dataclass
class _Plan:
    camera: PinholeCamera
    regions: np.ndarray
    road_y: tuple[float, float] | None = None
    far_walk_y: tuple[float, float] | None = None
    near_walk_y: tuple[float, float] | None = None
    facade_y_m: float | None = None
    x_range_m: tuple[float, float] = (-50.0, 50.0)
    bike_boxes: list[np.ndarray] = field(default_factory=list)  # (4, 2) ground corners
    source: str = "procedural"
    lamps: list[np.ndarray] = field(default_factory=list)
    light_points: list[tuple[np.ndarray, tuple[float, float, float], float]] = field(default_factory=list)


@dataclass
class _Item:
    """One object waiting to be composited, far ones first."""

    depth_m: float
    class_id: int | None
    tag: str
    sketch: Sketch | None = None
    layer: Layer | None = None
    footprint: np.ndarray | None = None  # (K, 3) ground outline for the contact shadow
    motion_m: np.ndarray | None = None  # ground displacement during the exposure (moving cars)


def _u(rng: Rng, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --- ground drawing --------------------------------------------------------------------------------------


def _band(y0: float, y1: float, x0: float = -_X_FAR_M, x1: float = _X_FAR_M) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _visible_x_range(camera: PinholeCamera, y_m: float, z_m: float = 0.0) -> tuple[float, float]:
    """Range of X along the line Y = y_m whose points project into (a margin around) the image."""
    xs = np.linspace(-250.0, 250.0, 1001)
    pts = np.column_stack([xs, np.full_like(xs, y_m), np.full_like(xs, z_m)])
    uv, depth = camera.project(pts)
    w = camera.width_px
    ok = (depth > 1.0) & (uv[:, 0] > -0.4 * w) & (uv[:, 0] < 1.4 * w)
    if not ok.any():
        return -20.0, 20.0
    return float(xs[ok].min()), float(xs[ok].max())


def _dashes(sk: Sketch, y: float, x0: float, x1: float, dash_m: float, gap_m: float, width_m: float, color,
            phase: float) -> None:
    x = x0 - phase
    while x < x1:
        paint_line(sk, (x, y), (x + dash_m, y), width_m, color)
        x += dash_m + gap_m


# --- sky and facades -------------------------------------------------------------------------------------


def _draw_sky(img: np.ndarray, rng: Rng, lighting: Lighting) -> None:
    h = img.shape[0]
    top, bottom = {
        "day": ((200, 150, 90), (235, 215, 190)),
        "overcast": ((190, 188, 185), (215, 214, 212)),
        "dusk": ((120, 80, 70), (120, 160, 235)),
        "night": ((45, 25, 15), (70, 50, 40)),
    }[lighting.name]
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    grad = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    img[:] = grad.astype(np.uint8)[:, None, :]
    if lighting.name in ("day", "dusk") and rng.random() < 0.6:
        small = np.zeros((h // 8 + 1, img.shape[1] // 8 + 1), np.float32)
        for _ in range(int(rng.integers(3, 9))):
            cv2.ellipse(small, (int(rng.integers(0, small.shape[1])), int(rng.integers(0, small.shape[0] // 2 + 1))),
                        (int(rng.integers(8, 30)), int(rng.integers(3, 8))), 0, 0, 360, 1.0, -1)
        small = cv2.GaussianBlur(small, (0, 0), 4)
        rows8 = int(np.flatnonzero(small.max(axis=1) > 0.01).max(initial=0) + 1)
        rows = min(h, rows8 * 8)
        cloud = cv2.resize(small[:rows8], (img.shape[1], rows8 * 8))[:rows, :, None] * np.float32(0.6)
        img[:rows] = (img[:rows] * (1 - cloud) + 245 * cloud).astype(np.uint8)


def _fake_glyphs(img: np.ndarray, rng: Rng, x0: int, y0: int, w: int, h: int, color, n_chars: int) -> None:
    """Dense square stroke clusters that read as Chinese characters on a shop sign at a glance."""
    if n_chars <= 0 or w < 4 or h < 4:
        return
    cell = min(h * 0.9, w / n_chars)
    th = max(1, int(round(cell / 11)))
    start = x0 + (w - cell * n_chars) / 2
    for i in range(n_chars):
        s = cell * 0.8
        cx0, cy0 = start + i * cell + cell * 0.1, y0 + (h - s) / 2

        def stroke(ax, ay, bx, by):
            cv2.line(img, (int(cx0 + s * ax), int(cy0 + s * ay)), (int(cx0 + s * bx), int(cy0 + s * by)), color, th,
                     cv2.LINE_AA)

        left = 0.0
        if rng.random() < 0.5:  # a radical down the left side
            left = 0.35
            stroke(0.15, 0.05, 0.15, 0.95)
            for _ in range(int(rng.integers(1, 4))):
                y = rng.uniform(0.15, 0.85)
                stroke(0.0, y, 0.3, y + rng.uniform(-0.1, 0.1))
        if rng.random() < 0.4:  # an enclosing box (口) in the right part
            bt, bb = rng.uniform(0.05, 0.4), rng.uniform(0.6, 0.95)
            stroke(left, bt, 1.0, bt)
            stroke(left, bb, 1.0, bb)
            stroke(left, bt, left, bb)
            stroke(1.0, bt, 1.0, bb)
        for _ in range(int(rng.integers(2, 5))):
            y = rng.uniform(0.05, 0.95)
            stroke(left + rng.uniform(0.0, 0.15), y, 1.0 - rng.uniform(0.0, 0.15), y)
        for _ in range(int(rng.integers(1, 3))):
            x = rng.uniform(left + 0.1, 0.9)
            stroke(x, rng.uniform(0.0, 0.3), x, rng.uniform(0.6, 1.0))
        if rng.random() < 0.6:  # a sweeping diagonal
            a = rng.uniform(left + 0.1, 0.6)
            stroke(a + 0.3, 0.5, a, 1.0)


def _goods_strip(rng: Rng, ppm: float, night: bool, width_px: int = 640) -> np.ndarray:
    """One shelf's worth of goods (boxes, fruit) as a BGRA strip, cut from at random for every shelf."""
    shelf_h = max(3, int(0.45 * ppm))
    strip = np.zeros((shelf_h, width_px, 4), np.uint8)
    x = 0
    while x < width_px:
        w = max(2, int(_u(rng, 0.08, 0.25) * ppm))
        hh = min(shelf_h - 1, max(2, int(_u(rng, 0.15, 0.35) * ppm)))
        c = pal.pick(rng, pal.PACKAGE_COLORS + pal.FRUIT_COLORS)
        if night:
            c = pal.mix(c, (255.0, 255.0, 255.0), 0.2)
        if rng.random() < 0.4:
            r = max(1, w // 2)
            for k in range(3):
                cv2.circle(strip, (x + r, shelf_h - 1 - r - k * r), r, (*c, 255), -1, cv2.LINE_AA)
        else:
            cv2.rectangle(strip, (x, shelf_h - 1 - hh), (x + w, shelf_h - 1), (*c, 255), -1)
        x += w + 1
    return strip


def _storefront(tex: np.ndarray, emis: np.ndarray, rng: Rng, x0: int, x1: int, y_top: int, y_bottom: int,
                ppm: float, night: bool, goods: np.ndarray) -> None:
    """A ground-floor shop between columns x0..x1: glass, open front with goods inside, or a shutter."""
    kind = rng.choice(["glass", "open", "shutter", "glass", "glass"])
    if kind == "shutter":
        base = pal.jitter(rng, (175.0, 178.0, 180.0))
        cv2.rectangle(tex, (x0, y_top), (x1, y_bottom), (*base, 255), -1)
        step = max(2, int(0.08 * ppm))
        line = (*pal.mix(base, (60.0, 60.0, 60.0), 0.4), 255)
        for y in range(y_top, y_bottom, step):
            cv2.line(tex, (x0, y), (x1, y), line, 1)
        return
    inner = pal.jitter(rng, (45.0, 42.0, 40.0), 8) if not night else (150.0, 200.0, 235.0)
    cv2.rectangle(tex, (x0, y_top), (x1, y_bottom), (*inner, 255), -1)
    if night:
        cv2.rectangle(emis, (x0, y_top), (x1, y_bottom), 0.85, -1)
    # shelves of goods inside the shop line: they belong to the shop, not to a stall
    gh, gw = goods.shape[:2]
    n_shelves = int(rng.integers(1, 4)) if kind == "open" else int(rng.integers(0, 3))
    y = y_bottom - 1
    for _ in range(n_shelves):
        if y - gh < y_top or x1 - x0 < 4:
            break
        width = min(x1 - x0, gw)
        off = int(rng.integers(0, gw - width + 1))
        src = goods[:, off:off + width]
        dst = tex[y - gh:y, x0:x0 + width]
        a = src[..., 3:4].astype(np.float32) / 255.0
        dst[:] = (dst * (1 - a) + src * a).astype(np.uint8)
        cv2.line(tex, (x0, y), (x1, y), (120, 120, 120, 255), max(1, int(0.04 * ppm)))
        y -= gh + max(1, int(0.05 * ppm))
    if kind == "glass":
        region = tex[y_top:y_bottom, x0:x1]
        tint = np.array([*pal.jitter(rng, (120.0, 100.0, 80.0)), 255.0], np.float32)
        alpha = 0.55 if not night else 0.25
        region[:] = (region * (1 - alpha) + tint * alpha).astype(np.uint8)
        n = max(1, int((x1 - x0) / (1.4 * ppm)))
        for i in range(1, n):
            xx = x0 + (x1 - x0) * i // n
            cv2.line(tex, (xx, y_top), (xx, y_bottom), (60, 60, 60, 255), max(1, int(0.06 * ppm)))
        cv2.line(tex, (x0, y_top), (x1, y_top), (60, 60, 60, 255), max(1, int(0.06 * ppm)))
        # a bright reflection band
        k = int(_u(rng, 0.1, 0.7) * (x1 - x0))
        pts = np.array([[k, 0], [k + int(0.5 * ppm), 0], [k + int(0.1 * ppm), y_bottom - y_top],
                        [k - int(0.4 * ppm), y_bottom - y_top]], np.int32)
        band = np.zeros(region.shape[:2], np.uint8)
        cv2.fillPoly(band, [pts], 1)
        region[band > 0] = (region[band > 0] * 0.85 + 230 * 0.15).astype(np.uint8)


def _facade_texture(rng: Rng, length_m: float, height_m: float, ppm: float, night: bool
                    ) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """Elevation of a row of buildings: shops at street level, storeys above, sky-transparent above the roofs.

    Returns:
        (BGRA texture, emission map, shop spans (x0_m, x1_m) along the row).
    """
    w, h = max(8, int(length_m * ppm)), max(8, int(height_m * ppm))
    tex = np.zeros((h, w, 4), np.uint8)
    emis = np.zeros((h, w), np.float32)
    shops: list[tuple[float, float]] = []
    goods = _goods_strip(rng, ppm, night)
    x_m = 0.0
    while x_m < length_m:
        bw = _u(rng, 8.0, 28.0)
        storeys = int(rng.integers(2, 9))
        ground_h = _u(rng, 3.6, 4.6)
        bh = min(height_m, ground_h + (storeys - 1) * _u(rng, 2.8, 3.2))
        color = pal.pick(rng, pal.FACADE_COLORS, 10)
        X0, X1 = int(x_m * ppm), int(min(length_m, x_m + bw) * ppm)
        Ytop = int((height_m - bh) * ppm)
        Yg = int((height_m - ground_h) * ppm)
        cv2.rectangle(tex, (X0, Ytop), (X1, h), (*color, 255), -1)
        # storeys: windows with frames, some lit at night, air-conditioner units
        floor_h = (Yg - Ytop) / max(1, storeys - 1) if storeys > 1 else 0
        win_w = _u(rng, 1.0, 1.8) * ppm
        pitch = win_w + _u(rng, 0.8, 2.0) * ppm
        for f in range(storeys - 1):
            fy0 = Ytop + f * floor_h
            for wx in np.arange(X0 + pitch * 0.4, X1 - win_w, pitch):
                y0, y1 = int(fy0 + floor_h * 0.25), int(fy0 + floor_h * 0.8)
                x0, x1 = int(wx), int(wx + win_w)
                lit = night and rng.random() < 0.35
                glass = (150.0, 200.0, 240.0) if lit else pal.jitter(rng, (95.0, 85.0, 75.0), 15)
                cv2.rectangle(tex, (x0, y0), (x1, y1), (*glass, 255), -1)
                cv2.rectangle(tex, (x0, y0), (x1, y1), (*pal.mix(color, (40, 40, 40), 0.4), 255),
                              max(1, int(0.05 * ppm)))
                if lit:
                    cv2.rectangle(emis, (x0, y0), (x1, y1), 0.8, -1)
                if rng.random() < 0.25:
                    ax0, ay0 = x1 + int(0.1 * ppm), int(y1 - 0.55 * ppm)
                    cv2.rectangle(tex, (ax0, ay0), (ax0 + int(0.8 * ppm), ay0 + int(0.55 * ppm)),
                                  (225, 225, 225, 255), -1)
                    cv2.circle(tex, (ax0 + int(0.5 * ppm), ay0 + int(0.27 * ppm)), max(1, int(0.2 * ppm)),
                               (150, 150, 150, 255), 1, cv2.LINE_AA)
        cv2.line(tex, (X0, Ytop), (X1, Ytop), (*pal.mix(color, (30, 30, 30), 0.5), 255), max(1, int(0.15 * ppm)))
        # ground floor: shops with sign bands
        sx = x_m
        while sx < min(length_m, x_m + bw) - 1.0:
            sw = min(_u(rng, 3.5, 8.0), min(length_m, x_m + bw) - sx)
            pillar = 0.35 * ppm
            px0, px1 = int(sx * ppm + pillar), int((sx + sw) * ppm - pillar)
            sign_h = _u(rng, 0.7, 1.2) * ppm
            sy0, sy1 = Yg + int(0.1 * ppm), Yg + int(0.1 * ppm + sign_h)
            if px1 - px0 > 4:
                sign = pal.pick(rng, pal.SIGN_COLORS, 8)
                cv2.rectangle(tex, (px0, sy0), (px1, sy1), (*sign, 255), -1)
                text = (245.0, 245.0, 245.0) if sum(sign) < 450 else (30.0, 30.0, 170.0)
                if rng.random() < 0.3:
                    text = (40.0, 215.0, 250.0)
                _fake_glyphs(tex, rng, px0, sy0, px1 - px0, sy1 - sy0, (*text, 255),
                             int(rng.integers(2, 6)))
                if night:
                    cv2.rectangle(emis, (px0, sy0), (px1, sy1), 0.9, -1)
                _storefront(tex, emis, rng, px0, px1, sy1 + int(0.1 * ppm), h, ppm, night, goods)
                shops.append((sx + 0.35, sx + sw - 0.35))
            sx += sw
        x_m += bw
    return tex, emis, shops


def _draw_facade(img: np.ndarray, emission: np.ndarray, rng: Rng, plan: _Plan, lighting: Lighting
                 ) -> list[tuple[float, float]]:
    """Warp a facade texture onto the plane Y = facade_y_m; returns the shop spans (X ranges)."""
    cam = plan.camera
    y_f = plan.facade_y_m
    assert y_f is not None
    x0, x1 = _visible_x_range(cam, y_f, 0.0)
    xt0, xt1 = _visible_x_range(cam, y_f, 12.0)
    x0, x1 = max(-160.0, min(x0, xt0) - 5), min(160.0, max(x1, xt1) + 5)
    # keep the plane's corners in front of the camera: the texture is warped with one homography, which
    # folds points behind the camera back into the picture
    xs = np.linspace(x0, x1, 161)
    base = cam.to_camera(np.column_stack([xs, np.full_like(xs, y_f), np.zeros_like(xs)]))[:, 2]
    up = cam.to_camera(np.column_stack([xs, np.full_like(xs, y_f), np.ones_like(xs)]))[:, 2] - base
    ok = base > 2 * NEAR_M + 0.5
    if not ok.any():
        return []
    x0, x1 = float(xs[ok].min()), float(xs[ok].max())
    base, up = base[ok], up[ok]
    with np.errstate(divide="ignore"):
        z_lim = np.where(up < 0, (base - 2 * NEAR_M) / np.maximum(-up, 1e-9), 60.0)
    height_m = float(np.clip(z_lim.min(), 4.0, 40.0))
    # no taller than what reaches the top of the picture (plus a margin): the rest would never be seen
    cam0 = cam.to_camera(np.column_stack([xs[ok], np.full(ok.sum(), y_f), np.zeros(ok.sum())]))
    cam1 = cam.to_camera(np.column_stack([xs[ok], np.full(ok.sum(), y_f), np.ones(ok.sum())]))
    _cx, cy = cam.principal_px
    dy, dz = cam1[:, 1] - cam0[:, 1], cam1[:, 2] - cam0[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        z_top = -(cy * cam0[:, 2] + cam.focal_px * cam0[:, 1]) / (cy * dz + cam.focal_px * dy)
    z_top = z_top[np.isfinite(z_top) & (z_top > 0)]
    if z_top.size:
        height_m = float(np.clip(min(height_m, z_top.max() + 3.0), 4.0, 40.0))
    near = max(1.0, float(base.min()))
    ppm = float(np.clip(cam.focal_px / near * 0.7, 12.0, 32.0))
    ppm = min(ppm, 3000.0 / (x1 - x0), 1000.0 / height_m)
    tex, emis, shops_local = _facade_texture(rng, x1 - x0, height_m, ppm, lighting.name == "night")
    th, tw = tex.shape[:2]
    corners_tex = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    corners_world = np.array([[x0, y_f, height_m], [x1, y_f, height_m], [x1, y_f, 0.0], [x0, y_f, 0.0]])
    cam_pts = cam.to_camera(corners_world)
    if (cam_pts[:, 2] < NEAR_M).any():
        # trim the row to the part in front of the camera
        return []
    uv = cam.camera_to_px(cam_pts).astype(np.float32)
    bx0, by0 = np.floor(uv.min(axis=0)).astype(int)
    bx1, by1 = np.ceil(uv.max(axis=0)).astype(int)
    ix0, iy0 = max(0, bx0), max(0, by0)
    ix1, iy1 = min(img.shape[1], bx1), min(img.shape[0], by1)
    if ix0 >= ix1 or iy0 >= iy1:
        return []
    H = cv2.getPerspectiveTransform(corners_tex, uv - np.array([ix0, iy0], np.float32))
    size = (ix1 - ix0, iy1 - iy0)
    warped = cv2.warpPerspective(tex, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # roof lines are the only partly transparent edges: a hard cut there costs nothing visible
    np.copyto(img[iy0:iy1, ix0:ix1], warped[..., :3], where=warped[..., 3:4] >= 128)
    if emis.any():
        we = cv2.warpPerspective(emis, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        emission[iy0:iy1, ix0:ix1] = np.maximum(emission[iy0:iy1, ix0:ix1], we)
    return [(x0 + s0, x0 + s1) for s0, s1 in shops_local]


def _awning(sk: Sketch, rng: Rng, x0: float, x1: float, y_f: float) -> None:
    """A shop awning sloping out from the facade: striped fabric and a scalloped valance (never a stall)."""
    z_top = _u(rng, 2.7, 3.3)
    depth = _u(rng, 0.8, 1.6)
    drop = _u(rng, 0.35, 0.6)
    a = pal.pick(rng, pal.CANOPY_COLORS)
    b = pal.jitter(rng, pal.WHITE) if rng.random() < 0.6 else pal.pick(rng, pal.CANOPY_COLORS)
    striped = rng.random() < 0.6
    n = max(1, int((x1 - x0) / 0.45)) if striped else 1
    yo = y_f - depth
    for i in range(n):
        s0, s1 = x0 + (x1 - x0) * i / n, x0 + (x1 - x0) * (i + 1) / n
        sk.poly([[s0, y_f - 0.02, z_top], [s1, y_f - 0.02, z_top], [s1, yo, z_top - drop], [s0, yo, z_top - drop]],
                b if (striped and i % 2) else a)
    scallops = max(2, int((x1 - x0) / 0.4))
    pts = [[x0, yo, z_top - drop]]
    for k in range(scallops * 2 + 1):
        pts.append([x0 + (x1 - x0) * k / (scallops * 2), yo, z_top - drop - 0.22 - (0.06 if k % 2 else 0.0)])
    pts.append([x1, yo, z_top - drop])
    sk.poly(pts, a)


# --- scene plans -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreetLayout:
    """Fixed choices for a procedural street (None: drawn at random). Scenario clips pin these down.

    Attributes:
        pedestrian: A pedestrian street (no road) instead of a road with pavements.
        lanes: Number of traffic lanes.
        far_walk_m: Depth of the far pavement, metres.
        camera_height_m: Height of the camera.
        yaw_deg: Heading of the camera relative to looking straight across the street.
        hfov_deg: Horizontal field of view.
        facade_row_frac: Where the foot of the facades should appear, as a share of the image height.
        n_bike_boxes: Painted bike-parking boxes on the far pavement.
    """

    pedestrian: bool | None = None
    lanes: int | None = None
    far_walk_m: float | None = None
    camera_height_m: float | None = None
    yaw_deg: float | None = None
    hfov_deg: float | None = None
    facade_row_frac: float | None = None
    n_bike_boxes: int | None = None


def _pick(value, draw):
    return draw() if value is None else value


def _plan_procedural(rng: Rng, size_px: tuple[int, int], img: np.ndarray, lighting: Lighting,
                     layout: StreetLayout = StreetLayout()) -> _Plan:
    w, h = size_px
    pedestrian = _pick(layout.pedestrian, lambda: rng.random() < 0.22)
    near_edge = _u(rng, 0.5, 4.0)
    if pedestrian:
        road = None
        far_walk = (near_edge, near_edge + _pick(layout.far_walk_m, lambda: _u(rng, 10.0, 26.0)))
        facade = far_walk[1]
    else:
        lanes = _pick(layout.lanes, lambda: int(rng.choice([2, 2, 3, 4, 4, 6])))
        bike_lane = rng.random() < 0.5
        road_w = lanes * _u(rng, 3.1, 3.5) + (2 * _u(rng, 2.0, 3.0) if bike_lane else 0.0)
        road = (near_edge, near_edge + road_w)
        far_walk = (road[1], road[1] + _pick(layout.far_walk_m, lambda: _u(rng, 3.5, 11.0)))
        facade = far_walk[1]
    hfov = _pick(layout.hfov_deg, lambda: _u(rng, 48.0, 82.0))
    focal = w / 2.0 / math.tan(math.radians(hfov) / 2.0)
    height = _pick(layout.camera_height_m, lambda: _u(rng, 4.5, 11.0))
    yaw = _pick(layout.yaw_deg, lambda: _u(rng, -50.0, 50.0))
    dist = facade / math.cos(math.radians(yaw))
    target_v = _pick(layout.facade_row_frac, lambda: _u(rng, 0.18, 0.5)) * h
    pitch = math.degrees(math.atan2(height, dist) - math.atan((target_v - h / 2.0) / focal))
    pitch = float(np.clip(pitch, 6.0, 42.0))
    cam = PinholeCamera(w, h, focal, height_m=height, pitch_deg=pitch, yaw_deg=yaw, roll_deg=_u(rng, -2.0, 2.0))
    plan = _Plan(cam, np.zeros((h, w), np.uint8), road_y=road, far_walk_y=far_walk, facade_y_m=facade,
                 near_walk_y=(-30.0, near_edge))
    plan.x_range_m = _visible_x_range(cam, far_walk[0])

    _draw_sky(img, rng, lighting)
    paving = pal.pick(rng, pal.PAVING_COLORS, 8)
    asphalt = pal.jitter(rng, (88.0, 90.0, 92.0), 6, 0.15)
    if lighting.rain:
        asphalt = pal.mix(asphalt, (40.0, 40.0, 42.0), 0.35)
        paving = pal.mix(paving, (60.0, 60.0, 62.0), 0.3)
    kerb = pal.jitter(rng, (185.0, 188.0, 190.0))
    fill_ground(img, cam, _band(-30.0, near_edge), pal.pick(rng, pal.PAVING_COLORS, 8),
                 regions=plan.regions, region_id=_NEAR_WALK)
    if road is not None:
        fill_ground(img, cam, _band(*road), asphalt, regions=plan.regions, region_id=_ROAD)
        fill_ground(img, cam, _band(road[0] - 0.15, road[0]), kerb)
        fill_ground(img, cam, _band(road[1], road[1] + 0.18), kerb)
        fill_ground(img, cam, _band(road[1] - 0.05, road[1]), pal.mix(asphalt, (0, 0, 0), 0.4))
    fill_ground(img, cam, _band(far_walk[0] + (0.18 if road else 0.0), far_walk[1]), paving,
                 regions=plan.regions, region_id=_FAR_WALK)
    marks = Sketch()
    xv0, xv1 = _visible_x_range(cam, (far_walk[0] + far_walk[1]) / 2)
    xv0, xv1 = max(xv0, -150.0), min(xv1, 150.0)
    # pavement joints, only where they are at least a few pixels apart
    tile = _u(rng, 0.3, 0.6)
    joint = pal.mix(paving, (30.0, 30.0, 30.0), 0.25)
    fy0 = far_walk[0] + (0.18 if road else 0.0)
    for y in np.arange(fy0 + tile, far_walk[1], tile):
        if float(cam.px_per_m(np.array([[0.0, y, 0.0]]))[0]) * tile > 4:
            paint_line(marks, (xv0, y), (xv1, y), 0.012, joint)
    xs = np.arange(math.floor(xv0 / tile) * tile, xv1, tile)
    mid_y = (fy0 + far_walk[1]) / 2
    ppm = cam.px_per_m(np.column_stack([xs, np.full_like(xs, mid_y), np.zeros_like(xs)]))
    for x in xs[ppm * tile > 5][:400]:
        paint_line(marks, (x, fy0), (x, far_walk[1]), 0.012, joint)
    if rng.random() < 0.6:  # tactile paving strip
        ty = fy0 + _u(rng, 0.5, min(2.0, (far_walk[1] - fy0) * 0.5))
        paint_line(marks, (xv0, ty), (xv1, ty), 0.3, pal.jitter(rng, (40.0, 190.0, 225.0)))
    if road is not None:
        white = pal.jitter(rng, (225.0, 228.0, 230.0), 6)
        yellow = pal.jitter(rng, (40.0, 190.0, 230.0), 6)
        edge = 0.35
        paint_line(marks, (xv0, road[0] + edge), (xv1, road[0] + edge), 0.15, white)
        paint_line(marks, (xv0, road[1] - edge), (xv1, road[1] - edge), 0.15, white)
        centre = (road[0] + road[1]) / 2
        for off in (-0.12, 0.12):
            paint_line(marks, (xv0, centre + off), (xv1, centre + off), 0.12, yellow)
        lane_w = 3.3
        for side in (-1, 1):
            y = centre + side * lane_w
            while road[0] + 1.0 < y < road[1] - 1.0:
                _dashes(marks, y, xv0, xv1, _u(rng, 2.0, 6.0), _u(rng, 4.0, 9.0), 0.15, white, _u(rng, 0, 8))
                y += side * lane_w
        if rng.random() < 0.35:  # zebra crossing and stop line
            xc = _u(rng, xv0 * 0.5, xv1 * 0.5)
            y = road[0] + 0.8
            while y < road[1] - 0.8:
                paint_line(marks, (xc - 2.5, y + 0.225), (xc + 2.5, y + 0.225), 0.45, white)
                y += 1.0
            paint_line(marks, (xc - 4.0, road[0] + 0.5), (xc - 4.0, centre - 0.3), 0.3, white)
        for _ in range(int(rng.integers(0, 3))):  # manholes and patches
            x, y = _u(rng, xv0 * 0.4, xv1 * 0.4), _u(rng, road[0] + 1, road[1] - 1)
            ang = np.linspace(0, 2 * math.pi, 16, endpoint=False)
            r = 0.35 if rng.random() < 0.6 else _u(rng, 0.8, 2.0)
            marks.poly(np.column_stack([x + r * np.cos(ang), y + r * np.sin(ang), np.full(16, 0.004)]),
                       pal.mix(asphalt, (20, 20, 20), 0.3), shade=False)
    marks.draw_into(img, cam)
    # painted bike-parking boxes on the far pavement (and sometimes the near one)
    for _ in range(_pick(layout.n_bike_boxes, lambda: int(rng.choice([0, 1, 1, 2, 2, 3])))):
        _add_bike_box(rng, plan, img, fy0, far_walk[1])
    return plan


def _add_bike_box(rng: Rng, plan: _Plan, img: np.ndarray, y0: float, y1: float) -> None:
    cam = plan.camera
    depth = _u(rng, 1.6, 2.2)
    if y1 - y0 < depth + 0.6:
        return
    along_kerb = rng.random() < 0.7
    by0 = y0 + _u(rng, 0.2, 0.6) if along_kerb else y1 - 0.3 - depth
    length = _u(rng, 3.0, 12.0)
    xv0, xv1 = _visible_x_range(cam, by0 + depth / 2)
    xv0, xv1 = max(xv0, -60.0), min(xv1, 60.0)
    if xv1 - xv0 < length:
        return
    for _ in range(10):
        bx0 = _u(rng, xv0, xv1 - length)
        box = np.array([[bx0, by0], [bx0 + length, by0], [bx0 + length, by0 + depth], [bx0, by0 + depth]])
        if all(not _rects_overlap(box, other, 0.5) for other in plan.bike_boxes):
            break
    else:
        return
    paint_bike_box(rng, plan, img, box)


def paint_bike_box(rng: Rng, plan: _Plan, img: np.ndarray, box: np.ndarray) -> None:
    """Paint a bike-parking box (ground rectangle, (4, 2) corners) in white or yellow, a little worn."""
    cam = plan.camera
    bx0, by0 = float(box[:, 0].min()), float(box[:, 1].min())
    length, depth = float(box[:, 0].max()) - bx0, float(box[:, 1].max()) - by0
    color = pal.jitter(rng, (230.0, 230.0, 230.0) if rng.random() < 0.6 else (40.0, 200.0, 235.0), 8)
    worn = _u(rng, 0.0, 0.35)
    sk = Sketch()
    width = _u(rng, 0.08, 0.14)
    for i in range(4):
        paint_line(sk, box[i], box[(i + 1) % 4], width, color)
    if rng.random() < 0.5:  # stall dividers
        step = _u(rng, 0.6, 1.2)
        for x in np.arange(bx0 + step, bx0 + length - 0.2, step):
            paint_line(sk, (x, by0), (x, by0 + depth * 0.3), width * 0.8, color)
    layer = sk.render(cam)
    if layer is not None:
        region_x0, region_y0 = max(0, layer.x0_px), max(0, layer.y0_px)
        x1 = min(img.shape[1], layer.x0_px + layer.width_px)
        y1 = min(img.shape[0], layer.y0_px + layer.height_px)
        if region_x0 < x1 and region_y0 < y1:
            sub = img[region_y0:y1, region_x0:x1].astype(np.float32)
            a = layer.alpha[region_y0 - layer.y0_px:y1 - layer.y0_px, region_x0 - layer.x0_px:x1 - layer.x0_px]
            c = layer.bgr[region_y0 - layer.y0_px:y1 - layer.y0_px, region_x0 - layer.x0_px:x1 - layer.x0_px]
            k = (1.0 - worn)
            img[region_y0:y1, region_x0:x1] = (sub * (1 - a[..., None] * k) + c * k).astype(np.uint8)
    plan.bike_boxes.append(np.asarray(box, np.float64))


def _rects_overlap(a: np.ndarray, b: np.ndarray, margin: float) -> bool:
    return not (a[:, 0].max() + margin < b[:, 0].min() or b[:, 0].max() + margin < a[:, 0].min()
                or a[:, 1].max() + margin < b[:, 1].min() or b[:, 1].max() + margin < a[:, 1].min())


def _plan_footage(rng: Rng, size_px: tuple[int, int], img: np.ndarray, bg: FootageBackground) -> _Plan:
    """A real median frame, zoomed, mirrored and recoloured a little, with a camera that fits its ground."""
    w, h = size_px
    src = bg.image
    sh, sw = src.shape[:2]
    zoom = _u(rng, 0.75, 1.0)
    cw, ch = int(sw * zoom), int(sh * zoom)
    cx0, cy0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    crop = src[cy0:cy0 + ch, cx0:cx0 + cw]
    flip = rng.random() < 0.5
    if flip:
        crop = crop[:, ::-1]
    img[:] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    gain = np.array([_u(rng, 0.9, 1.1) for _ in range(3)], np.float32) * _u(rng, 0.85, 1.1)
    img[:] = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    poly = bg.ground_polygon_norm.copy() * np.array([sw, sh], np.float32)
    poly = (poly - np.array([cx0, cy0], np.float32)) / np.array([cw, ch], np.float32)
    if flip:
        poly[:, 0] = 1.0 - poly[:, 0]
    regions = np.zeros((h, w), np.uint8)
    cv2.fillPoly(regions, [np.round(poly * np.array([w, h])).astype(np.int32)], _GROUND)
    hfov = bg.hfov_deg * zoom
    focal = w / 2.0 / math.tan(math.radians(hfov) / 2.0)
    probe = PinholeCamera(w, h, focal, height_m=1.0, pitch_deg=bg.pitch_deg)
    bottom = probe.ground_point(np.array([[w / 2.0, h - 1.0]]))
    ppm_at_1m = float(probe.px_per_m(bottom)[0])
    target = bg.bottom_px_per_m * w / 1280.0 / zoom * _u(rng, 0.8, 1.05)
    cam = PinholeCamera(w, h, focal, height_m=ppm_at_1m / target, pitch_deg=bg.pitch_deg, roll_deg=_u(rng, -1, 1))
    plan = _Plan(cam, regions, source=f"footage:{bg.name}")
    gp = cam.ground_point(np.array([[0.0, h * 0.7], [w, h * 0.7]]))
    plan.x_range_m = (float(np.nanmin(gp[:, 0])), float(np.nanmax(gp[:, 0])))
    if bg.paintable and rng.random() < 0.6:
        rows = np.flatnonzero(regions.any(axis=1))
        top = cam.ground_point(np.array([[w / 2.0, float(rows.min()) + 5]]))[0]
        bot = cam.ground_point(np.array([[w / 2.0, h - 5.0]]))[0]
        if np.isfinite(top).all() and np.isfinite(bot).all():
            for _ in range(int(rng.integers(1, 3))):
                _add_bike_box(rng, plan, img, float(bot[1]) + 0.5, float(top[1]) - 0.5)
    return plan


# --- placing objects -------------------------------------------------------------------------------------


def _sample_ground(rng: Rng, plan: _Plan, regions: tuple[int, ...], n: int = 64,
                   v_range: tuple[float, float] | None = None) -> np.ndarray | None:
    """A random ground point (X, Y) in the given regions, uniform over the picture (so far is common)."""
    h, w = plan.regions.shape
    lo, hi = v_range if v_range is not None else (0.0, 1.0)
    us = rng.uniform(0, w, n)
    vs = rng.uniform(lo * h, hi * h, n)
    ok = np.isin(plan.regions[vs.astype(int).clip(0, h - 1), us.astype(int).clip(0, w - 1)], regions)
    if not ok.any():
        return None
    i = int(np.flatnonzero(ok)[0])
    p = plan.camera.ground_point(np.array([[us[i], vs[i]]]))[0]
    return None if not np.isfinite(p).all() else p[:2]


@dataclass
class _Occupancy:
    """Ground discs taken so far, so objects do not stand inside each other."""

    discs: list[tuple[float, float, float]] = field(default_factory=list)

    def free(self, x: float, y: float, r: float) -> bool:
        return all((x - a) ** 2 + (y - b) ** 2 >= (r + c) ** 2 for a, b, c in self.discs)

    def take(self, x: float, y: float, r: float) -> None:
        self.discs.append((x, y, r))


def _in_box(plan: _Plan, x: float, y: float) -> int | None:
    for i, b in enumerate(plan.bike_boxes):
        if b[:, 0].min() <= x <= b[:, 0].max() and b[:, 1].min() <= y <= b[:, 1].max():
            return i
    return None


def place_real_bike(cam: PinholeCamera, bank: BikeCropBank, index: int, x: float, y: float, heading: float,
                    rng: Rng) -> tuple[Layer, float, float] | None:
    """Cut-out `index` of `bank` standing on the ground at (`x`, `y`) m, scaled and mirrored for `cam`.

    Returns:
        (layer placed in image pixels, camera depth of the foot point in m, half its width on the ground in m),
        or None when the spot is behind or too close to the camera.
    """
    foot = np.array([[x, y, 0.0], [x, y, 1.0], [x + 0.5, y, 0.0], [x, y + 0.5, 0.0]])
    uv, depth = cam.project(foot)
    if depth.min() < 1.0:
        return None
    crop_h, crop_w = bank.crops[index].shape[:2]
    aspect = crop_w / crop_h
    # A photo of a bike pasted upright: scale it by its height (1 m) and by its length along the ground
    # (side views ~1.7 m, end-on views less); in steep views the upright height shrinks while the bike
    # on the ground does not, so the larger of the two keeps cut-outs as big as drawn bikes.
    by_height = float(np.hypot(*(uv[1] - uv[0])))
    px_per_m = float(cam.focal_px / depth[0])
    length_m = float(np.clip(1.75 * aspect / 1.6, 0.6, 1.8))
    by_length = px_per_m * length_m / aspect
    height_px = max(by_height, by_length) * _u(rng, 0.92, 1.06)
    # the side facing the camera decides the mirror image, so rows of one crop all face one way
    view = cam.to_camera(np.array([[x + math.cos(heading), y + math.sin(heading), 0.0]]))[0, 0] - \
        cam.to_camera(np.array([[x, y, 0.0]]))[0, 0]
    flip = view < 0
    gain = _u(rng, 0.75, 1.15)
    layer = bank.layer(index, height_px, flip=flip, squash=_u(rng, 0.85, 1.0), gain=gain)
    layer.x0_px = int(round(uv[0, 0] - layer.width_px / 2))
    layer.y0_px = int(round(uv[0, 1] - layer.height_px * 0.97))
    half_w_m = layer.width_px / max(1e-6, float(cam.px_per_m(foot[:1])[0])) / 2
    return layer, float(depth[0]), half_w_m


def _footprint(x: float, y: float, rx: float, ry: float, heading: float) -> np.ndarray:
    ang = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    c, s = math.cos(heading), math.sin(heading)
    px, py = rx * np.cos(ang), ry * np.sin(ang)
    return np.column_stack([x + c * px - s * py, y + s * px + c * py, np.zeros(12)])


class _Builder:
    """Collects the objects of one scene."""

    def __init__(self, rng: Rng, plan: _Plan, light: Light | None, assets: StreetAssets, lighting: Lighting,
                 label_distractors: bool = False):
        self.rng = rng
        # People and cars are drawn in every scene; labelled only for a model that learns the distractor classes
        # (unlabelled they are background, as every model before street v4 learnt them).
        self.person_class: int | None = PERSON if label_distractors else None
        self.car_class: int | None = CAR if label_distractors else None
        self.plan = plan
        self.light = light
        self.assets = assets
        self.lighting = lighting
        self.items: list[_Item] = []
        self.occ = _Occupancy()
        self.max_area = plan.camera.width_px * plan.camera.height_px * 1.2

    def depth(self, x: float, y: float) -> float:
        return float(self.plan.camera.to_camera(np.array([[x, y, 0.0]]))[0, 2])

    def add_sketch(self, sk: Sketch, x: float, y: float, class_id: int | None, tag: str, rx: float, ry: float,
                   heading: float) -> None:
        d = self.depth(x, y)
        if d < 1.0:
            return
        self.items.append(_Item(d, class_id, tag, sketch=sk, footprint=_footprint(x, y, rx, ry, heading)))

    def new_sketch(self) -> Sketch:
        return Sketch(light=self.light)

    # --- bicycles ------------------------------------------------------------------------------

    def bike_at(self, x: float, y: float, heading: float, source: str, scheme=None, crop: int | None = None,
                lean: float | None = None) -> None:
        rng = self.rng
        lean = lean if lean is not None else _u(rng, 0.04, 0.16) * (1 if rng.random() < 0.5 else -1)
        if source == "real" and self.assets.bike_bank is not None and len(self.assets.bike_bank):
            self._real_bike(x, y, heading, crop)
            return
        sk = self.new_sketch()
        pose = Pose(x, y, heading_rad=heading, lean_rad=lean)
        if source == "shared":
            obj.shared_bicycle(sk, rng, pose, scheme)
        else:
            obj.private_bicycle(sk, rng, pose)
        self.add_sketch(sk, x, y, BICYCLE, "drawn_bicycle", 0.85, 0.25, heading)

    def _real_bike(self, x: float, y: float, heading: float, crop: int | None) -> None:
        bank = self.assets.bike_bank
        assert bank is not None
        index = int(self.rng.integers(len(bank))) if crop is None else crop
        placed = place_real_bike(self.plan.camera, bank, index, x, y, heading, self.rng)
        if placed is None:
            return
        layer, depth_m, half_w_m = placed
        self.items.append(_Item(depth_m, BICYCLE, "real_bicycle", layer=layer,
                                footprint=_footprint(x, y, max(0.3, half_w_m), 0.25, 0.0)))

    def bike_source(self) -> str:
        rng = self.rng
        if self.assets.bike_bank is not None and len(self.assets.bike_bank) and \
                rng.random() < self.assets.real_bike_probability:
            return "real"
        return "shared" if rng.random() < 0.75 else "private"

    def bike_row(self, x: float, y: float, along: float, heading: float, n: int, spacing: float, source: str,
                 ebike_share: float = 0.0, box: np.ndarray | None = None) -> None:
        """Bikes side by side: a shared-bike row in a painted box or a clutter row on the pavement."""
        rng = self.rng
        scheme = pal.SHARED_BIKE_SCHEMES[int(rng.integers(len(pal.SHARED_BIKE_SCHEMES)))]
        crop = int(rng.integers(len(self.assets.bike_bank))) if source == "real" and self.assets.bike_bank else None
        for i in range(n):
            bx = x + math.cos(along) * spacing * i + _u(rng, -0.06, 0.06)
            by = y + math.sin(along) * spacing * i + _u(rng, -0.12, 0.12)
            if box is not None and not (box[:, 0].min() + 0.2 <= bx <= box[:, 0].max() - 0.2):
                continue
            if not self.occ.free(bx, by, 0.2):
                continue
            self.occ.take(bx, by, 0.22)
            hd = heading + _u(rng, -0.12, 0.12)
            if rng.random() < ebike_share:
                self.ebike_at(bx, by, hd)
            else:
                self.bike_at(bx, by, hd, source, scheme=scheme,
                             crop=crop if rng.random() < 0.7 else None)

    def ebike_at(self, x: float, y: float, heading: float) -> None:
        sk = self.new_sketch()
        obj.ebike(sk, self.rng, Pose(x, y, heading_rad=heading, lean_rad=_u(self.rng, -0.08, 0.08)))
        self.add_sketch(sk, x, y, EBIKE, "ebike", 0.9, 0.3, heading)


def _street_heading(rng: Rng, jitter: float = 0.25) -> float:
    """Objects line up with the street (±X) or face it (±Y)."""
    return float(rng.choice([0.0, math.pi, math.pi / 2, -math.pi / 2])) + _u(rng, -jitter, jitter)


def _populate(rng: Rng, b: _Builder, *, real: bool) -> None:
    plan = b.plan
    walks = (_GROUND,) if real else (_FAR_WALK, _NEAR_WALK)
    density = _u(rng, 0.5, 1.4)

    # trees, lamps and furniture first: they take their ground before the things we label
    if not real and plan.far_walk_y is not None:
        fw0, fw1 = plan.far_walk_y
        x0, x1 = max(plan.x_range_m[0], -120.0), min(plan.x_range_m[1], 120.0)
        if rng.random() < 0.55:
            spacing = _u(rng, 6.0, 10.0)
            ty = fw0 + _u(rng, 0.7, 1.2)
            for x in np.arange(x0 + _u(rng, 0, spacing), x1, spacing):
                if b.occ.free(x, ty, 0.6) and _in_box(plan, x, ty) is None:
                    sk = b.new_sketch()
                    obj.tree(sk, rng, Pose(x, ty))
                    b.occ.take(x, ty, 0.7)
                    b.add_sketch(sk, x, ty, None, "tree", 0.5, 0.5, 0.0)
        if rng.random() < (1.0 if b.lighting.lamps_on else 0.6):
            spacing = _u(rng, 22.0, 35.0)
            ly = fw0 + 0.4
            for x in np.arange(x0 + _u(rng, 0, spacing), x1, spacing):
                if b.occ.free(x, ly, 0.3):
                    sk = b.new_sketch()
                    _r, head = obj.street_lamp(sk, rng, Pose(x, ly, heading_rad=-math.pi / 2))
                    b.occ.take(x, ly, 0.3)
                    b.add_sketch(sk, x, ly, None, "lamp", 0.2, 0.2, 0.0)
                    plan.lamps.append(head)
        if plan.road_y is not None and rng.random() < 0.3:
            sk = b.new_sketch()
            obj.railing(sk, rng, (x0, fw0 + 0.3), (x1, fw0 + 0.3))
            b.add_sketch(sk, 0.0, fw0 + 0.3, None, "railing", 0.1, 0.1, 0.0)
    furniture = [obj.bench, obj.bin, obj.cone, obj.bollard, obj.planter, obj.hydrant, obj.sign_post, obj.bin]
    for _ in range(int(rng.integers(1, 8) * density)):
        p = _sample_ground(rng, plan, walks)
        if p is None:
            continue
        heading = _street_heading(rng, 0.1)
        if b.occ.free(p[0], p[1], 0.6):
            sk = b.new_sketch()
            r = furniture[int(rng.integers(len(furniture)))](sk, rng, Pose(p[0], p[1], heading_rad=heading))
            b.occ.take(p[0], p[1], r)
            b.add_sketch(sk, p[0], p[1], None, "furniture", r, r * 0.6, heading)

    # stalls (the whole setup is one label) and, beside some, a vendor
    n_stalls = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
    for _ in range(n_stalls):
        near_facade = not real and plan.facade_y_m is not None and rng.random() < 0.3
        for _try in range(8):
            p = _sample_ground(rng, plan, walks)
            if p is None:
                continue
            if near_facade and plan.facade_y_m is not None:
                p = np.array([p[0], plan.facade_y_m - _u(rng, 1.0, 2.0)])
            heading = _street_heading(rng, 0.2)
            sk = b.new_sketch()
            radius, style = obj.stall(sk, rng, Pose(p[0], p[1], heading_rad=heading),
                                      "shopfront" if near_facade and rng.random() < 0.6 else None)
            if not b.occ.free(p[0], p[1], radius * 0.8) or _in_box(plan, p[0], p[1]) is not None:
                continue
            b.occ.take(p[0], p[1], radius)
            b.add_sketch(sk, p[0], p[1], STALL, f"stall_{style}", radius * 0.8, radius * 0.6, heading)
            if rng.random() < 0.55:
                a = _u(rng, 0, 2 * math.pi)
                vx, vy = p[0] + math.cos(a) * (radius + 0.3), p[1] + math.sin(a) * (radius + 0.3)
                if b.occ.free(vx, vy, 0.25):
                    sk = b.new_sketch()
                    obj.person(sk, rng, Pose(vx, vy, heading_rad=a + math.pi), walking=False)
                    b.occ.take(vx, vy, 0.3)
                    b.add_sketch(sk, vx, vy, b.person_class, "vendor", 0.25, 0.25, 0.0)
            break

    # bicycles: rows in painted boxes, clutter outside them, singles anywhere on the pavement
    for box in plan.bike_boxes:
        if rng.random() < 0.2:
            continue
        fill = _u(rng, 0.3, 1.0)
        spacing = _u(rng, 0.5, 0.75)
        length = float(box[:, 0].max() - box[:, 0].min())
        n = max(1, int(length / spacing * fill))
        start = float(box[:, 0].min()) + 0.35 + _u(rng, 0, max(0.0, length - n * spacing))
        yc = float(box[:, 1].mean())
        heading = math.pi / 2 * (1 if rng.random() < 0.5 else -1) + _u(rng, -0.5, 0.5)
        b.bike_row(start, yc, 0.0, heading, n, spacing, b.bike_source(), ebike_share=0.1, box=box)
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]) * density + 0.5)):
        p = _sample_ground(rng, plan, walks)
        if p is None or _in_box(plan, p[0], p[1]) is not None:
            continue
        n = int(rng.integers(2, 9))
        along = _street_heading(rng, 0.3)
        if rng.random() < 0.6:
            heading = along + math.pi / 2 + _u(rng, -0.4, 0.4)
            b.bike_row(p[0], p[1], along, heading, n, _u(rng, 0.45, 0.8), b.bike_source(), ebike_share=0.15)
        else:  # a messy heap of shared bikes
            scheme_src = b.bike_source()
            for _i in range(n):
                bx, by = p[0] + _u(rng, -1.5, 1.5), p[1] + _u(rng, -0.8, 0.8)
                if b.occ.free(bx, by, 0.2):
                    b.occ.take(bx, by, 0.25)
                    lean = _u(rng, 1.2, 1.45) * (1 if rng.random() < 0.5 else -1) if rng.random() < 0.1 else None
                    b.bike_at(bx, by, _u(rng, 0, 2 * math.pi), scheme_src, lean=lean)
    for _ in range(int(rng.integers(0, 5) * density)):
        p = _sample_ground(rng, plan, walks)
        if p is not None and b.occ.free(p[0], p[1], 0.5):
            b.occ.take(p[0], p[1], 0.5)
            b.bike_at(p[0], p[1], _u(rng, 0, 2 * math.pi), b.bike_source())

    # e-bikes: singles and small rows (delivery riders park by the shops)
    for _ in range(int(rng.integers(0, 5) * density)):
        p = _sample_ground(rng, plan, walks)
        if p is None:
            continue
        if rng.random() < 0.35:
            along = _street_heading(rng, 0.2)
            heading = along + math.pi / 2 + _u(rng, -0.3, 0.3)
            for i in range(int(rng.integers(2, 5))):
                ex, ey = p[0] + math.cos(along) * 0.75 * i, p[1] + math.sin(along) * 0.75 * i
                if b.occ.free(ex, ey, 0.3):
                    b.occ.take(ex, ey, 0.35)
                    b.ebike_at(ex, ey, heading + _u(rng, -0.1, 0.1))
        elif b.occ.free(p[0], p[1], 0.6):
            b.occ.take(p[0], p[1], 0.6)
            b.ebike_at(p[0], p[1], _u(rng, 0, 2 * math.pi))

    # hard negatives: empty carts and trolleys, people with umbrellas
    for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
        p = _sample_ground(rng, plan, walks + ((_ROAD,) if not real else ()))
        if p is not None and b.occ.free(p[0], p[1], 1.0):
            heading = _street_heading(rng, 0.3)
            sk = b.new_sketch()
            maker = [obj.trolley, obj.empty_cart, obj.empty_tricycle][int(rng.integers(3))]
            r = maker(sk, rng, Pose(p[0], p[1], heading_rad=heading))
            b.occ.take(p[0], p[1], r)
            b.add_sketch(sk, p[0], p[1], None, "empty_cart", r, r * 0.6, heading)

    # cars on the road (and parked ones on a real car park)
    if plan.road_y is not None:
        r0, r1 = plan.road_y
        for _ in range(int(rng.integers(0, 8))):
            parked = rng.random() < 0.3
            y = (r1 - 1.15 if rng.random() < 0.6 else r0 + 1.15) if parked else _u(rng, r0 + 1.2, r1 - 1.2)
            x = _u(rng, *plan.x_range_m)
            heading = 0.0 if y > (r0 + r1) / 2 else math.pi
            if b.occ.free(x, y, 2.4):
                sk = b.new_sketch()
                obj.car(sk, rng, Pose(x, y, heading_rad=heading + _u(rng, -0.05, 0.05)))
                b.occ.take(x, y, 2.5)
                b.add_sketch(sk, x, y, b.car_class, "car", 2.3, 0.95, heading)
                if not parked and rng.random() < 0.7:  # 8..15 m/s over a 1/50 s exposure
                    speed = _u(rng, 0.15, 0.3)
                    b.items[-1].motion_m = np.array([math.cos(heading), math.sin(heading)]) * speed
                if b.lighting.lamps_on:
                    for side in (-1.0, 1.0):
                        front = Pose(x, y, heading_rad=heading).apply([[2.3, side * 0.65, 0.78]])[0]
                        back = Pose(x, y, heading_rad=heading).apply([[-2.3, side * 0.65, 0.84]])[0]
                        plan.light_points.append((front, (235.0, 245.0, 255.0), 0.5))
                        plan.light_points.append((back, (40.0, 40.0, 230.0), 0.25))
    elif real and rng.random() < 0.3:
        p = _sample_ground(rng, plan, walks, v_range=(0.0, 0.5))
        if p is not None and b.occ.free(p[0], p[1], 2.5):
            sk = b.new_sketch()
            heading = _street_heading(rng, 0.1)
            obj.car(sk, rng, Pose(p[0], p[1], heading_rad=heading))
            b.occ.take(p[0], p[1], 2.5)
            b.add_sketch(sk, p[0], p[1], b.car_class, "car", 2.3, 0.95, heading)

    # people: walking along the pavement, crossing, standing still; they occlude whatever is behind them
    for _ in range(int(rng.integers(0, 12) * density)):
        regs = walks + ((_ROAD,) if (plan.road_y is not None and rng.random() < 0.2) else ())
        p = _sample_ground(rng, plan, regs)
        if p is None or not b.occ.free(p[0], p[1], 0.3):
            continue
        walking = rng.random() < 0.7
        umbrella = (b.lighting.rain and rng.random() < 0.7) or rng.random() < 0.04
        heading = _street_heading(rng, 0.4) if walking else _u(rng, 0, 2 * math.pi)
        sk = b.new_sketch()
        obj.person(sk, rng, Pose(p[0], p[1], heading_rad=heading), walking=walking, umbrella=umbrella)
        b.occ.take(p[0], p[1], 0.3)
        b.add_sketch(sk, p[0], p[1], b.person_class, "person", 0.25, 0.2, heading)

    # facade awnings are drawn with the background; nothing else to do here


# --- compositing and finishing ---------------------------------------------------------------------------


def _shadows(comp: Compositor, items: list[_Item], plan: _Plan, lighting: Lighting, omit: frozenset[int]) -> None:
    """Cast shadows (sun) and contact shadows under every object, darkening the ground only.

    Drawn at half resolution: shadows are soft, and this is one of the costlier steps of a scene.
    """
    h, w = plan.regions.shape
    half = plan.camera.scaled(0.5)
    hs, ws = half.height_px, half.width_px
    cast = np.zeros((hs, ws), np.uint8)
    contact = np.zeros((hs, ws), np.uint8)
    sun = lighting.sun.sun_dir if lighting.sun is not None and lighting.shadow_strength > 0 else None
    for it in items:
        if it.class_id is not None and it.class_id in omit:
            continue
        if sun is not None and it.sketch is not None:
            it.sketch.draw_shadow(cast, half, sun)
        if it.footprint is not None:
            sk = Sketch()
            sk.poly(it.footprint, (255.0, 255.0, 255.0), shade=False)
            sk.draw_mask(contact, half)
    shade = np.zeros((hs, ws), np.float32)
    if sun is not None and cast.any():
        shade = cv2.GaussianBlur(cast.astype(np.float32) * np.float32(lighting.shadow_strength / 255.0), (0, 0), 0.8)
    if contact.any():
        c = cv2.GaussianBlur(contact.astype(np.float32) * np.float32(lighting.contact_shadow_strength / 255.0),
                             (0, 0), 1.5)
        shade = np.maximum(shade, c)
    if shade.any():
        full = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
        full *= plan.regions > 0
        comp.darken(full, 1.0)


def _motion_blurred(layer: Layer, camera: PinholeCamera, ground_m: np.ndarray, motion_m: np.ndarray) -> Layer:
    """Smear a layer along the image direction of its ground motion (a car driving past during the exposure)."""
    a = np.array([ground_m[0], ground_m[1], 0.5])
    b = a + np.array([motion_m[0], motion_m[1], 0.0])
    uv, depth = camera.project(np.stack([a, b]))
    if depth.min() <= 0.5:
        return layer
    dx, dy = uv[1] - uv[0]
    length = int(round(math.hypot(dx, dy)))
    if length < 2:
        return layer
    k = 2 * length + 1
    kernel = np.zeros((k, k), np.float32)
    c = length
    cv2.line(kernel, (int(round(c - dx / 2)), int(round(c - dy / 2))), (int(round(c + dx / 2)), int(round(c + dy / 2))),
             1.0, 1, cv2.LINE_AA)
    kernel /= kernel.sum()
    pad = length
    bgr = cv2.copyMakeBorder(layer.bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    alpha = cv2.copyMakeBorder(layer.alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    return Layer(cv2.filter2D(bgr, -1, kernel), cv2.filter2D(alpha, -1, kernel), layer.x0_px - pad, layer.y0_px - pad)


def _finish(comp: Compositor, rng: Rng, plan: _Plan, lighting: Lighting) -> np.ndarray:
    cam = plan.camera
    h, w = plan.regions.shape
    grain = _u(rng, 0.012, 0.035)
    if plan.source == "procedural":  # real footage has its own texture; flat drawn surfaces need some
        add_grain(comp.image, rng, grain)
    light_map = None
    glow_pts, glow_r, glow_c = [], [], []
    if lighting.lamps_on and plan.lamps:
        small = np.zeros(((h + 3) // 4, (w + 3) // 4), np.float32)
        quarter = PinholeCamera(small.shape[1], small.shape[0], cam.focal_px / 4, height_m=cam.height_m,
                                pitch_deg=cam.pitch_deg, yaw_deg=cam.yaw_deg, roll_deg=cam.roll_deg,
                                x_m=cam.x_m, y_m=cam.y_m)
        ang = np.linspace(0, 2 * math.pi, 20, endpoint=False)
        for head in plan.lamps:
            for k, r in enumerate((9.0, 6.0, 3.5)):
                sk = Sketch()
                sk.poly(np.column_stack([head[0] + r * np.cos(ang), head[1] + r * np.sin(ang), np.zeros(20)]),
                        (1.0, 1.0, 1.0), shade=False)
                layer = np.zeros_like(small)
                sk.draw_mask(layer, quarter, 1.0, antialias=True)
                small += layer * 0.35
            uv, depth = cam.project(head[None])
            if depth[0] > 1:
                glow_pts.append(uv[0])
                glow_r.append(float(cam.focal_px * 0.9 / depth[0]))
                glow_c.append((120.0, 200.0, 255.0))
        light_map = cv2.resize(cv2.GaussianBlur(small, (0, 0), 3), (w, h)) * (1.0 if lighting.name == "night" else 0.4)
    for point, color, radius_m in plan.light_points:
        uv, depth = cam.project(point[None])
        if depth[0] > 1:
            glow_pts.append(uv[0])
            glow_r.append(float(cam.focal_px * radius_m / depth[0]))
            glow_c.append(color)
    apply_lighting(comp.image, comp.emission, lighting, light_map)
    if glow_pts:
        add_glows(comp.image, np.asarray(glow_pts), np.asarray(glow_r), np.asarray(glow_c),
                  strength=1.0 if lighting.name == "night" else 0.5)
    if rng.random() < (0.5 if lighting.rain else 0.1):
        v = np.arange(h, dtype=np.float64)
        gp = cam.ground_point(np.column_stack([np.full(h, w / 2.0), v]))
        dist = np.linalg.norm(gp[:, :2] - np.array([cam.x_m, cam.y_m]), axis=1)
        far = plan.facade_y_m * 1.2 if plan.facade_y_m is not None else 60.0
        dist = np.where(np.isfinite(dist), np.minimum(dist, far), far)
        fog_color = tuple(float(c) for c in np.asarray((200.0, 200.0, 200.0)) * np.asarray(lighting.gain_bgr))
        add_fog(comp.image, dist, _u(rng, 25.0, 120.0), fog_color)
    if lighting.rain:
        add_rain(comp.image, rng, _u(rng, 0.5, 1.5))
    blur = str(rng.choice(["none", "none", "none", "none", "defocus", "motion"], p=[0.3, 0.2, 0.15, 0.1, 0.15, 0.1]))
    comp.image = add_blur(comp.image, rng, blur)
    add_sensor_noise(comp.image, rng, lighting.noise_sigma)
    out = tone_curve(comp.to_uint8(), rng)
    if rng.random() < 0.4:
        draw_osd(out, rng)
    return out


@dataclass
class StreetBackground:
    """A drawn empty street: picture, self-lit pixels, and the geometry to place things on it."""

    image: np.ndarray
    emission: np.ndarray
    plan: _Plan
    light: Light


def build_street_background(rng: Rng, size_px: tuple[int, int], lighting: Lighting,
                            layout: StreetLayout = StreetLayout()) -> StreetBackground:
    """Sky, facades with shops and awnings, road, pavements and painted boxes of a procedural street."""
    w, h = int(size_px[0]), int(size_px[1])
    img = np.zeros((h, w, 3), np.uint8)
    emission = np.zeros((h, w), np.float32)
    plan = _plan_procedural(rng, (w, h), img, lighting, layout)
    light = lighting.sun or Light(sun_dir=(0.2, -0.3, 0.93), ambient=0.72, diffuse=0.3)
    shops = _draw_facade(img, emission, rng, plan, lighting)
    awnings = Sketch(light=light)
    for s0, s1 in shops:
        if rng.random() < 0.4:
            _awning(awnings, rng, s0, s1, plan.facade_y_m or 0.0)
    awnings.draw_into(img, plan.camera)
    return StreetBackground(img, emission, plan, light)


def render_street_scene(rng: Rng, size_px: tuple[int, int] = (1280, 720), *, assets: StreetAssets | None = None,
                        lighting: Lighting | None = None, omit_classes: frozenset[int] | set[int] = frozenset(),
                        min_visible_fraction: float = 0.4, label_distractors: bool = False) -> SceneSample:
    """Render one street-camera scene with `STREET_CLASSES` labels.

    Args:
        rng: The scene's generator (e.g. ``np.random.default_rng([seed, index])``); the scene depends on it only.
        size_px: (width, height) of the picture.
        assets: Real bicycle cut-outs and real backgrounds; None renders fully procedural scenes.
        lighting: Force a lighting condition; None draws one.
        omit_classes: Classes laid out as usual but not drawn (same scene otherwise): for tests that check
            labels sit on visible pixels.
        label_distractors: Label the people and cars the scene draws anyway (`STREET_CLASSES_WITH_DISTRACTORS`);
            the picture is the same either way.
        min_visible_fraction: Objects whose in-frame part is hidden by others beyond this share get no label
            (objects cut by the frame keep theirs while a quarter of them is inside).

    Returns:
        The image, boxes of the visible part of each labelled object, and the painted bike-parking boxes as
        ``bike_parking`` zones.

    Example:
        >>> s = render_street_scene(np.random.default_rng(0), (320, 180))
        >>> s.image.shape, s.class_names
        ((180, 320, 3), ['bicycle', 'stall', 'ebike'])
    """
    assets = assets or StreetAssets()
    w, h = int(size_px[0]), int(size_px[1])
    use_real = bool(assets.backgrounds) and rng.random() < assets.real_background_probability
    # the real backgrounds are daytime medians: darkening one to "night" without lights would look false
    lighting = lighting or sample_lighting(rng, weights=(0.6, 0.3, 0.1, 0.0) if use_real else (0.45, 0.25, 0.15, 0.15))
    if use_real:
        img = np.zeros((h, w, 3), np.uint8)
        emission = np.zeros((h, w), np.float32)
        bg = assets.backgrounds[int(rng.integers(len(assets.backgrounds)))]
        plan = _plan_footage(rng, (w, h), img, bg)
        if lighting.name != "day":
            lighting = Lighting(lighting.name, lighting.gain_bgr, None, 0.0, lighting.contact_shadow_strength,
                                lighting.lamps_on, lighting.noise_sigma, lighting.desaturation, lighting.rain)
        light = lighting.sun or Light(sun_dir=(0.2, -0.3, 0.93), ambient=0.72, diffuse=0.3)
    else:
        background = build_street_background(rng, (w, h), lighting)
        img, emission, plan, light = background.image, background.emission, background.plan, background.light
    builder = _Builder(rng, plan, light, assets, lighting, label_distractors)
    _populate(rng, builder, real=use_real)
    items = sorted(builder.items, key=lambda it: -it.depth_m)
    comp = Compositor(img, emission)
    omit = frozenset(omit_classes)
    _shadows(comp, items, plan, lighting, omit)
    for it in items:
        layer = it.layer if it.layer is not None else it.sketch.render(plan.camera, max_area_px=builder.max_area)
        if layer is not None and it.motion_m is not None and it.footprint is not None:
            layer = _motion_blurred(layer, plan.camera, it.footprint.mean(axis=0), it.motion_m)
        draw = it.class_id is None or it.class_id not in omit
        comp.paste(layer, it.class_id, tag=it.tag, draw=draw)
    image = _finish(comp, rng, plan, lighting)
    xyxy, class_id, visible, kept = comp.labels(min_visible_fraction)
    zones = []
    for i, box in enumerate(plan.bike_boxes):
        poly = project_ground_polygon(plan.camera, box)
        if poly is not None:
            zones.append({"id": f"bike_box_{i}", "kind": "bike_parking", "polygon_norm": poly.tolist()})
    tags = [comp.objects[i].tag for i in kept]
    meta: dict[str, Any] = {
        "kind": "street", "lighting": lighting.name, "rain": lighting.rain, "background": plan.source,
        "camera": {"height_m": round(plan.camera.height_m, 3), "pitch_deg": round(plan.camera.pitch_deg, 3),
                   "yaw_deg": round(plan.camera.yaw_deg, 3), "focal_px": round(plan.camera.focal_px, 2)},
        "tags": tags,
    }
    names = STREET_CLASSES_WITH_DISTRACTORS if label_distractors else STREET_CLASSES
    return SceneSample(image=image, xyxy=xyxy, class_id=class_id, class_names=list(names),
                       visible_fraction=visible, jpeg_quality=int(rng.integers(45, 96)), zones=zones, meta=meta)


def project_ground_polygon(camera: PinholeCamera, box_xy: np.ndarray) -> np.ndarray | None:
    """Ground polygon → normalised image polygon clipped to the frame (None when it does not show)."""
    pts = np.column_stack([box_xy, np.zeros(len(box_xy))])
    cam_pts = camera.to_camera(pts)
    if (cam_pts[:, 2] < NEAR_M).any():
        return None
    uv = camera.camera_to_px(cam_pts).astype(np.float32)
    frame = np.array([[0, 0], [camera.width_px, 0], [camera.width_px, camera.height_px], [0, camera.height_px]],
                     np.float32)
    hull = cv2.convexHull(uv)
    area, clipped = cv2.intersectConvexConvex(hull, frame)
    if area <= 1.0 or clipped is None:
        return None
    poly = clipped.reshape(-1, 2) / np.array([camera.width_px, camera.height_px], np.float32)
    return np.round(poly.astype(np.float64), 6)
