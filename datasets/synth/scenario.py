"""Scenario clips: a fixed street camera where stalls and bikes appear, stay and leave on a known timeline.

Each clip is an ``.mp4`` and a ``.json`` ground truth: the camera's zones (normalised polygons of kinds
``no_vending``, ``vending_allowed`` with hours, ``bike_parking``, ``watch_area``), every object's time on screen
and box, and the violations a correct pipeline must raise, each due ``min_dwell_s`` after the object appears.
They exercise tracking of stationary objects, zone membership by the box's bottom centre, dwell times from
frame timestamps and schedules, end to end.

Built-in scenarios (`SCENARIOS`):

- ``stall_7min``: a stall sets up in a no-vending zone and stays 7 minutes (due after 5).
- ``bikes_outside_box_12min``: three bikes parked together outside the painted box, in a watch area, for 12
  minutes (due after 10); two bikes parked inside the box all along must not count.
- ``passerby_30s``: a person walks in, stands 30 s in the no-vending zone and walks on: nothing is due.
- ``mixed_demo``: all of the above, staggered, about 15 minutes.
- ``stall_2min``: a short clip for service tests played in real time: a stall sets up after 10 s and stays to
  the end (120 s); its zone's dwell is 30 s.
- ``far_bikes_4min``: small bikes. A higher, wider camera (8 m, 70 degrees) over a four-lane road; six lone
  bikes, 32 to 68 px wide in the 1280x720 frame, parked one by one on the far pavement, each in its own watch
  area (dwell 120 s): six violations. With a crop bank (`BikeCropBank`, real photos) the bikes are real
  cut-outs, else drawn ones. The camera asks for tiled inference (``camera.tile`` in the timeline), as an
  operator would configure a camera whose bikes are this small.

Videos are written with OpenCV's ``mp4v`` codec, then transcoded to H.264 (``libx264``, keyframe every two
seconds, yuv420p) when ``ffmpeg`` is on PATH, since the project serves clips over RTSP through GStreamer's
``h264parse``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from datasets.synth import objects as obj
from datasets.synth import palette as pal
from datasets.synth.compositor import Compositor
from datasets.synth.photometric import Lighting, apply_lighting
from datasets.synth.sketch import Layer, Light, Pose, Sketch
from datasets.synth.bike_bank import BikeCropBank
from datasets.synth.street import (StreetBackground, StreetLayout, build_street_background, paint_bike_box,
                                   place_real_bike, project_ground_polygon)

__all__ = ["ScenarioClip", "SCENARIOS", "render_scenario", "scenario_timeline", "DEFAULT_START_UTC"]

SCENARIOS = ("stall_7min", "bikes_outside_box_12min", "passerby_30s", "mixed_demo", "stall_2min", "far_bikes_4min")
DEFAULT_START_UTC = "2026-06-01T02:00:00Z"
"""10:00 in Asia/Shanghai on a Monday: outside the vending hours of the ``vending_allowed`` zone."""

_TIMEZONE = "Asia/Shanghai"
_LOCAL_OFFSET = timedelta(hours=8)
_STALL_DWELL_S = 300.0
_BIKE_DWELL_S = 600.0
_LAYOUT = StreetLayout(pedestrian=False, lanes=2, far_walk_m=8.0, camera_height_m=6.5, yaw_deg=-30.0,
                       hfov_deg=58.0, facade_row_frac=0.42, n_bike_boxes=0)
# far_bikes_4min: higher and wider, with the far pavement across four lanes, so parked bikes are 30..80 px wide.
_FAR_LAYOUT = StreetLayout(pedestrian=False, lanes=4, far_walk_m=8.0, camera_height_m=8.0, yaw_deg=-30.0,
                           hfov_deg=70.0, facade_row_frac=0.38, n_bike_boxes=0)
_FAR_BIKE_WIDTHS_PX = (32, 38, 44, 50, 58, 68)
_FAR_BIKE_DWELL_S = 120.0
_LIGHTING = Lighting("day", (1.0, 1.0, 1.0), Light(sun_dir=(0.35, -0.45, 0.82), ambient=0.62, diffuse=0.42), 0.0,
                     0.35, False, 2.0, 0.0, False)


@dataclass(frozen=True)
class ScenarioClip:
    """A written scenario.

    Attributes:
        name: Scenario name.
        video_path: ``<out_dir>/<name>.mp4``.
        timeline_path: ``<out_dir>/<name>.json``.
        fps: Frames per second of the video.
        duration_s: Length in seconds.
        n_frames: Frames written.
        size_px: (width, height).
        codec: ``"h264"`` when transcoded by ffmpeg, else ``"mp4v"``.
        timeline: The ground truth written to `timeline_path`.
    """

    name: str
    video_path: Path
    timeline_path: Path
    fps: float
    duration_s: float
    n_frames: int
    size_px: tuple[int, int]
    codec: str
    timeline: dict[str, Any]


@dataclass
class _Actor:
    """Something that is on screen from `appear_s` to `leave_s`; `sketch_at` draws it at a time."""

    object_id: str
    cls: str
    appear_s: float
    leave_s: float
    sketch_at: Callable[[float], tuple[Sketch, float, float]]  # t → (sketch, ground x, ground y)
    static: bool
    labelled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    layer: Layer | None = None  # a static actor drawn from a photo (a real bike cut-out) rather than a sketch
    cached: tuple[Layer | None, Layer | None, float] | None = None  # (shadow, object, depth) of static actors


@dataclass
class _Scene:
    background: StreetBackground
    actors: list[_Actor]
    zones: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    duration_s: float
    tile: bool = False  # the camera needs tiled inference (its objects are small)


def _r(v: float) -> float:
    return round(float(v), 6)


def _x_at_u(background: StreetBackground, y_m: float, u_frac: float) -> float:
    """Ground X on the line Y = y_m that appears at image column ``u_frac * width``."""
    cam = background.plan.camera
    xs = np.linspace(-150.0, 150.0, 3001)
    uv, depth = cam.project(np.column_stack([xs, np.full_like(xs, y_m), np.zeros_like(xs)]))
    ok = depth > 1.0
    xs, us = xs[ok], uv[ok, 0]
    order = np.argsort(us)
    return float(np.interp(u_frac * cam.width_px, us[order], xs[order]))


def _static(sk: Sketch, x: float, y: float) -> Callable[[float], tuple[Sketch, float, float]]:
    return lambda _t: (sk, x, y)


def _build(name: str, seed: int, size_px: tuple[int, int], bike_bank: BikeCropBank | None = None) -> _Scene:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; built-in: {', '.join(SCENARIOS)}")
    if name == "far_bikes_4min":
        return _build_far_bikes(seed, size_px, bike_bank)
    rng = np.random.default_rng([seed, 7919])  # the street is the same for every scenario of a seed
    background = build_street_background(rng, size_px, _LIGHTING, _LAYOUT)
    plan = background.plan
    light = background.light
    assert plan.far_walk_y is not None and plan.road_y is not None
    fy0, fy1 = plan.far_walk_y[0] + 0.2, plan.far_walk_y[1] - 0.3
    y_mid = (fy0 + fy1) / 2
    x_of = lambda u: _x_at_u(background, y_mid, u)  # noqa: E731 - a local shorthand
    nv = sorted((x_of(0.04), x_of(0.34)))
    wa = sorted((x_of(0.38), x_of(0.72)))
    va = sorted((x_of(0.76), x_of(0.97)))
    box_len = min(5.5, (wa[1] - wa[0]) * 0.35)
    bx0 = wa[0] + (wa[1] - wa[0]) * 0.15
    box = np.array([[bx0, fy0 + 0.3], [bx0 + box_len, fy0 + 0.3], [bx0 + box_len, fy0 + 2.3], [bx0, fy0 + 2.3]])
    paint_bike_box(np.random.default_rng([seed, 1]), plan, background.image, box)

    def rect(x0: float, x1: float) -> np.ndarray:
        return np.array([[x0, fy0], [x1, fy0], [x1, fy1], [x0, fy1]])

    stall_dwell_s = 30.0 if name == "stall_2min" else _STALL_DWELL_S
    zone_defs = [
        ("no_vending_1", "no_vending", rect(*nv), {"min_dwell_s": stall_dwell_s}),
        ("watch_area_1", "watch_area", rect(*wa), {"min_dwell_s": _BIKE_DWELL_S}),
        ("bike_parking_1", "bike_parking", box, {}),
        ("vending_allowed_1", "vending_allowed", rect(*va),
         {"min_dwell_s": _STALL_DWELL_S,
          "schedule": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00", "end": "22:00",
                       "timezone": _TIMEZONE}}),
    ]
    zones = []
    for zone_id, kind, poly_xy, params in zone_defs:
        poly = project_ground_polygon(plan.camera, poly_xy)
        if poly is None:
            raise RuntimeError(f"scenario {name}: zone {zone_id} is not in view")
        zones.append({"id": zone_id, "kind": kind, "polygon_norm": [[_r(x), _r(y)] for x, y in poly], **params})

    actors: list[_Actor] = []
    violations: list[dict[str, Any]] = []
    t = {"stall_7min": dict(stall=20.0, end=480.0),
         "bikes_outside_box_12min": dict(boxed=10.0, bikes=20.0, end=780.0),
         "passerby_30s": dict(person=5.0, end=60.0),
         "mixed_demo": dict(person=30.0, stall=60.0, boxed=0.0, bikes=120.0, end=900.0),
         "stall_2min": dict(stall=10.0, stall_stay=110.0, end=120.0)}[name]
    end = t["end"]
    obj_rng = np.random.default_rng([seed, 2])
    if "stall" in t:
        sk = Sketch(light=light)
        sx, sy = (nv[0] + nv[1]) / 2, y_mid + 0.3
        obj.stall(sk, obj_rng, Pose(sx, sy, heading_rad=math.pi / 2 + 0.1), "canopy")
        actors.append(_Actor("stall_1", "stall", t["stall"], t["stall"] + t.get("stall_stay", 420.0),
                             _static(sk, sx, sy), True))
        violations.append({"kind": "stall_occupation", "zone_id": "no_vending_1", "object_ids": ["stall_1"],
                           "due_s": _r(t["stall"] + stall_dwell_s)})
    if "boxed" in t:
        scheme = pal.SHARED_BIKE_SCHEMES[1]
        for i in range(2):
            sk = Sketch(light=light)
            bx, by = bx0 + 1.0 + i * 0.7, fy0 + 1.3
            obj.shared_bicycle(sk, obj_rng, Pose(bx, by, heading_rad=math.pi / 2 + 0.05, lean_rad=0.08), scheme)
            actors.append(_Actor(f"bike_in_box_{i + 1}", "bicycle", t["boxed"], end, _static(sk, bx, by), True))
    if "bikes" in t:
        scheme = pal.SHARED_BIKE_SCHEMES[0]
        ids = []
        for i in range(3):
            sk = Sketch(light=light)
            bx, by = bx0 + box_len + 1.8 + i * 0.65, fy0 + 3.6
            obj.shared_bicycle(sk, obj_rng, Pose(bx, by, heading_rad=math.pi / 2 - 0.15, lean_rad=-0.1), scheme)
            ids.append(f"bike_{i + 1}")
            actors.append(_Actor(ids[-1], "bicycle", t["bikes"], t["bikes"] + 720.0, _static(sk, bx, by), True))
        violations.append({"kind": "bike_misparked", "zone_id": "watch_area_1", "object_ids": ids,
                           "due_s": _r(t["bikes"] + _BIKE_DWELL_S)})
    if "person" in t:
        t0 = t["person"]
        stop = ((nv[0] + nv[1]) / 2 + 2.5, y_mid - 1.2)
        enter, exit_ = (nv[0] - 6.0, stop[1]), (nv[1] + 8.0, stop[1])
        walk_in, walk_out = 5.0, 10.0
        actors.append(_Actor("person_1", "person", t0, t0 + walk_in + 30.0 + walk_out,
                             _walker(light, seed, 3, [(t0, enter), (t0 + walk_in, stop), (t0 + walk_in + 30.0, stop),
                                                      (t0 + walk_in + 30.0 + walk_out, exit_)]),
                             False, extra={"stops": [{"from_s": _r(t0 + walk_in), "to_s": _r(t0 + walk_in + 30.0)}]}))
    actors += _distractors(background, seed, fy0, fy1, end)
    return _Scene(background, actors, zones, violations, end)


def _distractors(background: StreetBackground, seed: int, fy0: float, fy1: float, end: float) -> list[_Actor]:
    """Traffic on the road and people walking past on the far pavement (between `fy0` and `fy1`), never
    stopping: nothing a correct pipeline reports."""
    plan, light = background.plan, background.light
    assert plan.road_y is not None
    actors: list[_Actor] = []
    road0, road1 = plan.road_y
    xr = (plan.x_range_m[0] - 5.0, min(plan.x_range_m[1], 120.0) + 5.0)
    traffic_rng = np.random.default_rng([seed, 4])
    k = 0
    start = float(traffic_rng.uniform(3.0, 20.0))
    while start < end - 10.0:
        lane_y = road0 + (road1 - road0) * (0.3 if traffic_rng.random() < 0.5 else 0.7)
        forward = lane_y > (road0 + road1) / 2
        a, b = ((xr[0], lane_y), (xr[1], lane_y)) if forward else ((xr[1], lane_y), (xr[0], lane_y))
        k += 1
        dur = float(traffic_rng.uniform(5.0, 9.0))
        actors.append(_Actor(f"car_{k}", "car", start, start + dur, _driver(light, seed, 100 + k, a, b, start, dur),
                             False, labelled=False))
        start += float(traffic_rng.uniform(15.0, 45.0))
    start = float(traffic_rng.uniform(10.0, 40.0))
    while start < end - 30.0:
        y = fy1 - 0.8 if traffic_rng.random() < 0.5 else fy0 + 0.9
        a, b = (xr[0], y), (xr[1], y)
        if traffic_rng.random() < 0.5:
            a, b = b, a
        k += 1
        dur = float(traffic_rng.uniform(30.0, 50.0))
        actors.append(_Actor(f"walker_{k}", "person", start, start + dur,
                             _walker(light, seed, 200 + k, [(start, a), (start + dur, b)]), False, labelled=False))
        start += float(traffic_rng.uniform(40.0, 90.0))
    return actors


def _far_bike_candidates(background: StreetBackground, y_m: float) -> list[tuple[float, float]]:
    """(u_frac, ground x) on the line Y = `y_m` every 1 % of the image width between 4 % and 96 %."""
    return [(u, _x_at_u(background, y_m, u)) for u in np.round(np.arange(0.04, 0.961, 0.01), 2)]


def _build_far_bikes(seed: int, size_px: tuple[int, int], bike_bank: BikeCropBank | None) -> _Scene:
    """Six lone bikes of set widths (`_FAR_BIKE_WIDTHS_PX` at 1280 px) on the far pavement, each in its own
    watch area; each is placed where it comes out closest to its width, at least 9 % of the frame apart."""
    rng = np.random.default_rng([seed, 7927])
    background = build_street_background(rng, size_px, _LIGHTING, _FAR_LAYOUT)
    plan, light, cam = background.plan, background.light, background.plan.camera
    assert plan.far_walk_y is not None
    fy0, fy1 = plan.far_walk_y[0] + 0.2, plan.far_walk_y[1] - 0.3
    y = (fy0 + fy1) / 2
    scale = size_px[0] / 1280.0
    obj_rng = np.random.default_rng([seed, 2])
    side_views = [i for i, c in enumerate(bike_bank.crops) if c.shape[1] >= 1.3 * c.shape[0]] if bike_bank else []
    taken: list[float] = []
    placed_bikes: list[tuple[float, Sketch, Layer | None, list[float], str]] = []
    actors: list[_Actor] = []
    zones: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    end = 240.0
    order = obj_rng.permutation(len(_FAR_BIKE_WIDTHS_PX))  # which width is parked first varies with the seed
    candidates = _far_bike_candidates(background, y)
    for k, width_index in enumerate(order):
        target_px = _FAR_BIKE_WIDTHS_PX[int(width_index)] * scale
        best = None
        for attempt in range(8):  # another bike when this one cannot come out 30..80 px wide anywhere left
            heading = math.pi / 2 - float(obj_rng.uniform(0.6, 1.2))
            crop = int(side_views[int(obj_rng.integers(len(side_views)))]) if side_views else None
            scheme = pal.SHARED_BIKE_SCHEMES[int(obj_rng.integers(len(pal.SHARED_BIKE_SCHEMES)))]
            for u, x in candidates:
                if any(abs(u - t) < 0.09 for t in taken):
                    continue
                # the same generator for every trial spot: the bike looks the same wherever it is tried
                look_rng = np.random.default_rng([seed, 11, k, attempt])
                sk = Sketch(light=light)
                if crop is not None:
                    placed = place_real_bike(cam, bike_bank, crop, x, y, heading, look_rng)
                    layer = placed[0] if placed else None
                else:
                    obj.shared_bicycle(sk, look_rng, Pose(x, y, heading_rad=heading), scheme)
                    layer = None
                box = _box_norm(layer if crop is not None else _render(sk, cam), size_px)
                if box is None:
                    continue
                width_px = (box[2] - box[0]) * size_px[0]
                if not 30 * scale <= width_px <= 80 * scale:  # the small-object range of issue 3
                    continue
                err = abs(width_px - target_px)
                if best is None or err < best[0]:
                    best = (err, u, x, sk, layer, box, crop)
            if best is not None:
                break
        if best is None:
            raise RuntimeError(f"far_bikes_4min seed {seed}: no room for bike {k + 1}")
        _err, u, x, sk, layer, box, crop = best
        taken.append(u)
        source = f"real cut-out of bicycles-2000 train {bike_bank.sources[crop]}" if crop is not None else "drawn"
        placed_bikes.append((x, sk, layer, box, source))
    # Watch areas: the pavement 2.5 m either side of each bike, cut half-way to a nearer neighbour so that no
    # two overlap (a bike in two watch areas is reported in the first).
    xs = sorted(p[0] for p in placed_bikes)
    for k, (x, sk, layer, box, source) in enumerate(placed_bikes):
        i = xs.index(x)
        left = max(x - 2.5, (xs[i - 1] + x) / 2) if i > 0 else x - 2.5
        right = min(x + 2.5, (xs[i + 1] + x) / 2) if i + 1 < len(xs) else x + 2.5
        object_id, zone_id = f"bike_{k + 1}", f"watch_area_{k + 1}"
        poly = project_ground_polygon(cam, np.array([[left, fy0], [right, fy0], [right, fy1], [left, fy1]]))
        if poly is None:
            raise RuntimeError(f"far_bikes_4min seed {seed}: zone {zone_id} is not in view")
        zones.append({"id": zone_id, "kind": "watch_area", "polygon_norm": [[_r(a), _r(b)] for a, b in poly],
                      "min_dwell_s": _FAR_BIKE_DWELL_S})
        appear = 10.0 + 8.0 * k
        actors.append(_Actor(object_id, "bicycle", appear, end, _static(sk, x, y), True,
                             extra={"source": source, "width_px": _r((box[2] - box[0]) * size_px[0])}, layer=layer))
        violations.append({"kind": "bike_misparked", "zone_id": zone_id, "object_ids": [object_id],
                           "due_s": _r(appear + _FAR_BIKE_DWELL_S)})
    actors += _distractors(background, seed, fy0, fy1, end)
    return _Scene(background, actors, zones, violations, end, tile=True)


def _walker(light: Light, seed: int, key: int, waypoints: list[tuple[float, tuple[float, float]]]
            ) -> Callable[[float], tuple[Sketch, float, float]]:
    """A person moving through timed waypoints, standing where two consecutive ones coincide."""
    times = np.array([w[0] for w in waypoints])
    pts = np.array([w[1] for w in waypoints])

    def at(t: float) -> tuple[Sketch, float, float]:
        x = float(np.interp(t, times, pts[:, 0]))
        y = float(np.interp(t, times, pts[:, 1]))
        seg = int(np.clip(np.searchsorted(times, t) - 1, 0, len(times) - 2))
        d = pts[seg + 1] - pts[seg]
        moving = bool(np.hypot(*d) > 1e-6)
        heading = math.atan2(d[1], d[0]) if moving else -math.pi / 2
        sk = Sketch(light=light)
        # the same generator every frame: the same person, only the place and stride change
        obj.person(sk, np.random.default_rng([seed, key]), Pose(x, y, heading_rad=heading), walking=moving)
        return sk, x, y

    return at


def _driver(light: Light, seed: int, key: int, a: tuple[float, float], b: tuple[float, float], start: float,
            dur: float) -> Callable[[float], tuple[Sketch, float, float]]:
    heading = math.atan2(b[1] - a[1], b[0] - a[0])

    def at(t: float) -> tuple[Sketch, float, float]:
        f = (t - start) / dur
        x, y = a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        sk = Sketch(light=light)
        obj.car(sk, np.random.default_rng([seed, key]), Pose(x, y, heading_rad=heading))
        return sk, x, y

    return at


def _render(sk: Sketch, cam) -> Layer | None:
    """`sk` through `cam`, or None for something pressed against the lens (a car passing under a high, wide
    camera), whose layer would be many times the frame and take gigabytes."""
    return sk.render(cam, max_area_px=4.0 * cam.width_px * cam.height_px)


def _box_norm(layer: Layer | None, size_px: tuple[int, int]) -> list[float] | None:
    if layer is None:
        return None
    w, h = size_px
    mask = layer.alpha >= 0.3
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    x1, x2 = np.clip([layer.x0_px + cols[0], layer.x0_px + cols[-1] + 1], 0, w)
    y1, y2 = np.clip([layer.y0_px + rows[0], layer.y0_px + rows[-1] + 1], 0, h)
    return [_r(x1 / w), _r(y1 / h), _r(x2 / w), _r(y2 / h)]


def _zones_of(box_norm: list[float], zones: list[dict[str, Any]]) -> list[str]:
    """Zones that hold the box's bottom centre (the rule the pipeline applies)."""
    px, py = (box_norm[0] + box_norm[2]) / 2, box_norm[3] - 1e-6
    return [z["id"] for z in zones
            if cv2.pointPolygonTest(np.asarray(z["polygon_norm"], np.float32).reshape(-1, 1, 2), (px, py), False) >= 0]


def _timeline(name: str, seed: int, fps: float, size_px: tuple[int, int], start_utc: str, scene: _Scene
              ) -> dict[str, Any]:
    cam = scene.background.plan.camera
    events, distractors = [], []
    for actor in scene.actors:
        if actor.layer is not None:
            box = _box_norm(actor.layer, size_px)
        elif actor.static:
            sk, _x, _y = actor.sketch_at(actor.appear_s)
            box = _box_norm(_render(sk, cam), size_px)
        else:
            stops = actor.extra.get("stops")
            t_ref = stops[0]["from_s"] if stops else (actor.appear_s + actor.leave_s) / 2
            sk, _x, _y = actor.sketch_at(t_ref)
            box = _box_norm(_render(sk, cam), size_px)
        record = {"object_id": actor.object_id, "class": actor.cls, "appear_s": _r(actor.appear_s),
                  "leave_s": _r(min(actor.leave_s, scene.duration_s)), "xyxy_norm": box,
                  "zone_ids": _zones_of(box, scene.zones) if box else [], **actor.extra}
        (events if actor.labelled else distractors).append(record)
    return {
        "name": name, "seed": seed, "fps": _r(fps), "duration_s": _r(scene.duration_s),
        "n_frames": int(round(scene.duration_s * fps)), "size_px": [int(size_px[0]), int(size_px[1])],
        "start_utc": start_utc, "timezone": _TIMEZONE,
        "camera": {"id": f"synth-{name}", "height_m": _r(cam.height_m), "pitch_deg": _r(cam.pitch_deg),
                   "yaw_deg": _r(cam.yaw_deg), "focal_px": _r(cam.focal_px),
                   **({"tile": True} if scene.tile else {})},
        "zones": scene.zones, "events": events, "expected_violations": scene.violations, "distractors": distractors,
    }


def scenario_timeline(name: str, seed: int = 0, fps: float = 2.0, size_px: tuple[int, int] = (1280, 720),
                      start_utc: str = DEFAULT_START_UTC, bike_bank: BikeCropBank | None = None) -> dict[str, Any]:
    """The ground truth of a scenario without rendering its video (fast; the same dict `render_scenario` writes)."""
    return _timeline(name, seed, fps, tuple(size_px), start_utc, _build(name, seed, tuple(size_px), bike_bank))


def _osd(image: np.ndarray, when: datetime, camera_id: str) -> None:
    scale = image.shape[1] / 1280.0 * 0.8
    thick = max(1, int(round(2 * scale)))
    for text, org in ((when.strftime("%Y-%m-%d %H:%M:%S"), (int(20 * scale), int(45 * scale))),
                      (camera_id.upper(), (int(20 * scale), image.shape[0] - int(25 * scale)))):
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, (255, 255, 255), thick, cv2.LINE_AA)


def _contact_shadow(sk: Sketch, camera, x: float, y: float, radius_m: float) -> Layer | None:
    ang = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    foot = Sketch()
    foot.poly(np.column_stack([x + radius_m * np.cos(ang), y + radius_m * 0.6 * np.sin(ang), np.zeros(16)]),
              (0.0, 0.0, 0.0), shade=False)
    layer = foot.render(camera)
    if layer is None:
        return None
    alpha = cv2.GaussianBlur(layer.alpha, (0, 0), 2.0) * np.float32(0.35)
    return Layer(np.zeros_like(layer.bgr), alpha, layer.x0_px, layer.y0_px)


def _transcode(src: Path, dst: Path, fps: float) -> bool:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    gop = max(1, int(math.ceil(2 * fps)))
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-i", str(src), "-c:v", "libx264", "-preset", "veryfast", "-crf", "26",
           "-pix_fmt", "yuv420p",
           "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-r", f"{fps:g}", "-movflags", "+faststart",
           "-an", str(dst)]
    result = subprocess.run(cmd, capture_output=True, check=False)
    return result.returncode == 0 and dst.is_file() and dst.stat().st_size > 0


def render_scenario(name: str, out_dir: Path, seed: int = 0, fps: float = 2.0, size_px: tuple[int, int] = (1280, 720),
                    *, start_utc: str = DEFAULT_START_UTC, bike_bank: BikeCropBank | None = None) -> ScenarioClip:
    """Render a built-in scenario to ``out_dir/<name>.mp4`` with its ground truth in ``out_dir/<name>.json``.

    Args:
        name: One of `SCENARIOS`.
        out_dir: Output folder (created).
        seed: Varies the street and the objects' looks; the timeline's times and zones kinds do not change.
        fps: Frame rate of the video (frames are the scene sampled every ``1 / fps`` seconds).
        size_px: (width, height).
        start_utc: Wall-clock time of the first frame (ISO 8601, UTC), burnt into the picture as local time.
        bike_bank: Real bicycle cut-outs for the scenarios that use them (``far_bikes_4min``); None draws them.

    Returns:
        Where the files are and what they hold.

    Example:
        >>> clip = render_scenario("passerby_30s", Path("/tmp/clips"), fps=1.0)  # doctest: +SKIP
        >>> clip.n_frames, clip.timeline["expected_violations"]  # doctest: +SKIP
        (60, [])
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    size_px = (int(size_px[0]), int(size_px[1]))
    scene = _build(name, seed, size_px, bike_bank)
    timeline = _timeline(name, seed, fps, size_px, start_utc, scene)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, timeline_path = out_dir / f"{name}.mp4", out_dir / f"{name}.json"
    cam = scene.background.plan.camera
    base = scene.background.image
    emission = scene.background.emission
    n_frames = timeline["n_frames"]
    start = datetime.fromisoformat(start_utc.replace("Z", "+00:00")).astimezone(timezone.utc)
    noise_rng = np.random.default_rng([seed, 5])
    h, w = base.shape[:2]
    # Low-resolution noise with a slight flicker: frames differ (as a real camera's do) while the video stays
    # compressible; full-resolution sensor noise would make every frame of a static scene expensive to encode.
    noise_bank = [cv2.resize(noise_rng.standard_normal(((h + 7) // 8, (w + 7) // 8), dtype=np.float32), (w, h),
                             interpolation=cv2.INTER_LINEAR) * np.float32(_LIGHTING.noise_sigma * 0.6)
                  for _ in range(4)]
    for actor in scene.actors:
        if actor.static:
            sk, x, y = actor.sketch_at(actor.appear_s)
            depth = float(cam.to_camera(np.array([[x, y, 0.0]]))[0, 2])
            actor.cached = (_contact_shadow(sk, cam, x, y, 0.9 if actor.cls != "stall" else 1.6),
                            actor.layer if actor.layer is not None else _render(sk, cam), depth)
    with tempfile.TemporaryDirectory(prefix="scenario-") as tmp:
        raw = Path(tmp) / "raw.mp4"
        writer = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_px)
        if not writer.isOpened():
            raise RuntimeError(f"{raw}: OpenCV cannot write mp4v video")
        try:
            for i in range(n_frames):
                t = i / fps
                present = []
                for actor in scene.actors:
                    if not actor.appear_s <= t < actor.leave_s:
                        continue
                    if actor.cached is not None:
                        shadow, layer, depth = actor.cached
                    else:
                        sk, x, y = actor.sketch_at(t)
                        shadow, layer = None, _render(sk, cam)
                        depth = float(cam.to_camera(np.array([[x, y, 0.0]]))[0, 2])
                    present.append((depth, shadow, layer))
                comp = Compositor(base, emission.copy())
                for _depth, shadow, layer in sorted(present, key=lambda p: -p[0]):
                    comp.paste(shadow)
                    comp.paste(layer)
                if comp.emission.any() or any(g != 1.0 for g in _LIGHTING.gain_bgr):
                    apply_lighting(comp.image, comp.emission, _LIGHTING)
                noise = np.roll(noise_bank[i % len(noise_bank)], int(noise_rng.integers(0, w)), axis=1)
                noise += np.float32(noise_rng.uniform(-0.8, 0.8))
                comp.image += noise[..., None]
                frame = comp.to_uint8()
                _osd(frame, start + _LOCAL_OFFSET + timedelta(seconds=t), timeline["camera"]["id"])
                writer.write(frame)
        finally:
            writer.release()
        codec = "h264" if _transcode(raw, video_path, fps) else "mp4v"
        if codec == "mp4v":
            shutil.copyfile(raw, video_path)
    timeline_path.write_text(json.dumps(timeline, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return ScenarioClip(name, video_path, timeline_path, float(fps), float(timeline["duration_s"]), n_frames, size_px,
                        codec, timeline)
