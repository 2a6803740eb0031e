"""Builders of street objects as 3D sketches: bicycles, e-bikes, stalls and their goods, people, cars, street
furniture and the carts and umbrellas that must not be mistaken for stalls.

Every builder draws into a `Sketch` in the object's local frame (`Pose`: x forward, y left, z up, metres,
origin on the ground under the object's centre) and returns the radius of ground it occupies, so scenes
can keep objects from standing inside each other. Sizes are those of the real things.
"""

from __future__ import annotations

import math

import numpy as np

from datasets.synth import palette as pal
from datasets.synth.sketch import BGR, Pose, Sketch

__all__ = [
    "bicycle", "shared_bicycle", "private_bicycle", "ebike", "scooter", "person", "car", "stall", "goods_pile",
    "crate_stack", "tree", "street_lamp", "bench", "bin", "cone", "bollard", "planter", "hydrant", "railing",
    "sign_post", "trolley", "empty_cart", "empty_tricycle", "parasol", "STALL_STYLES",
]

Rng = np.random.Generator


def _u(rng: Rng, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _ring(center: np.ndarray, axis_a: np.ndarray, axis_b: np.ndarray, radius: float, n: int) -> np.ndarray:
    ang = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return center + radius * (np.cos(ang)[:, None] * axis_a + np.sin(ang)[:, None] * axis_b)


def _prism(sk: Sketch, pose: Pose, profile_xz: list[tuple[float, float]], y0: float, y1: float, color: BGR | list,
           layer: int = 0) -> None:
    """Extrude a convex x-z profile (counter-clockwise) between local y0 and y1."""
    k = len(profile_xz)
    near = [[x, y0, z] for x, z in profile_xz]
    far = [[x, y1, z] for x, z in profile_xz]
    verts = pose.apply(near + far)
    faces = [list(range(k)), list(range(2 * k - 1, k - 1, -1))]
    faces += [[i, k + i, k + (i + 1) % k, (i + 1) % k] for i in range(k)]
    sk.convex(verts, faces, color, layer=layer)


# --- two-wheelers --------------------------------------------------------------------------------------


def _wheel(sk: Sketch, pose: Pose, hub_x: float, r: float, tyre: float, rim: BGR, *, solid: bool = False,
           spokes: int = 0, spoke_color: BGR | None = None, hub_color: BGR = pal.STEEL) -> None:
    c_local = np.array([hub_x, 0.0, r])
    center = pose.apply(c_local)[0]
    ax = pose.vector([[1.0, 0.0, 0.0]])[0]
    az = pose.vector([[0.0, 0.0, 1.0]])[0]
    if solid:
        sk.poly(_ring(center, ax, az, r - tyre * 0.5, 16), rim, shade=False)
    sk.polyline(_ring(center, ax, az, r - tyre * 0.45, 20), pal.TYRE, tyre, closed=True)
    if not solid:
        sk.polyline(_ring(center, ax, az, r - tyre * 1.1, 18), rim, tyre * 0.35, closed=True)
    for i in range(spokes):
        a = 2 * math.pi * i / spokes
        end = center + (r - tyre) * (math.cos(a) * ax + math.sin(a) * az)
        sk.line(center, end, spoke_color or rim, 0.012 if spokes > 4 else 0.035)
    sk.sphere(center, 0.035, hub_color)


def bicycle(sk: Sketch, rng: Rng, pose: Pose, *, frame: BGR, accent: BGR, rim: BGR, step_through: bool,
            basket: bool, chain_case: bool, wheel_r_m: float = 0.33, tube_m: float = 0.032,
            solid_wheels: bool = False, battery: bool = False) -> float:
    """A bicycle standing on its stand: two wheels, frame tubes, saddle, bars, and optional basket.

    Returns:
        Ground radius occupied, metres.
    """
    r = wheel_r_m
    b = _u(rng, 1.0, 1.1)
    rear, front = -b / 2, b / 2
    p = pose.apply
    bb = np.array([rear + 0.43, 0.0, 0.29])
    seat = np.array([rear + 0.30, 0.0, 0.78 + _u(rng, 0.0, 0.08)])
    head_top = np.array([front - 0.17, 0.0, 0.86])
    head_low = np.array([front - 0.12, 0.0, 0.68])
    rear_hub = np.array([rear, 0.0, r])
    front_hub = np.array([front, 0.0, r])
    _wheel(sk, pose, rear, r, 0.05 if not battery else 0.07, rim, solid=solid_wheels, spokes=0 if solid_wheels else 8,
           spoke_color=pal.STEEL)
    _wheel(sk, pose, front, r, 0.05 if not battery else 0.07, rim, solid=solid_wheels,
           spokes=3 if solid_wheels else 8, spoke_color=rim if solid_wheels else pal.STEEL)
    if step_through:
        t = np.linspace(0, 1, 7)[:, None]
        ctrl = np.array([front - 0.30, 0.0, 0.22])
        curve = (1 - t) ** 2 * head_low + 2 * (1 - t) * t * ctrl + t ** 2 * bb
        sk.polyline(p(curve), frame, tube_m * 1.5)
    else:
        sk.line(p(seat)[0], p(head_top)[0], frame, tube_m)
        sk.line(p(bb)[0], p(head_low)[0], frame, tube_m * 1.2)
    sk.line(p(bb)[0], p(seat)[0], frame, tube_m * 1.1)
    sk.line(p(bb)[0], p(rear_hub)[0], frame, tube_m * 0.8)
    sk.line(p(seat)[0], p(rear_hub)[0], frame, tube_m * 0.7)
    sk.line(p(head_low)[0], p(head_top)[0], frame, tube_m * 1.3)
    sk.line(p(head_low)[0], p(front_hub)[0], frame if step_through else pal.STEEL, tube_m * 0.9)
    if chain_case:
        _prism(sk, pose, [(bb[0] + 0.08, 0.22), (bb[0] + 0.08, 0.36), (rear, r + 0.06), (rear, r - 0.06)],
               -0.07, -0.04, accent)
    if battery:
        sk.box(pose.moved(dx_m=(bb[0] + seat[0]) / 2 - 0.12, dz_m=0.0), (0.28, 0.1, 0.14), (45.0, 45.0, 48.0),
               z0_m=0.55)
    # saddle, seat post, bars
    post_top = seat + np.array([-0.03, 0.0, 0.12])
    sk.line(p(seat)[0], p(post_top)[0], pal.STEEL, 0.025)
    sk.line(p(post_top + [-0.12, 0, 0.02])[0], p(post_top + [0.1, 0, 0.0])[0], (25.0, 25.0, 28.0), 0.08)
    bar_c = head_top + np.array([-0.05, 0.0, 0.16])
    sk.line(p(head_top)[0], p(bar_c)[0], pal.STEEL, 0.03)
    grip = 0.27
    sk.line(p(bar_c + [-0.06, -grip, 0.0])[0], p(bar_c + [-0.06, grip, 0.0])[0], (40.0, 40.0, 40.0), 0.025)
    if basket:
        bcol = accent if rng.random() < 0.5 else (45.0, 45.0, 48.0)
        sk.box(pose.moved(dx_m=front + 0.06, dz_m=0.78), (0.26, 0.34, 0.2), bcol, layer=1)
    if not step_through and rng.random() < 0.4:  # rear rack
        sk.line(p(seat + [-0.02, 0, -0.04])[0], p(rear_hub + [-0.05, 0, 0.05 + r])[0], pal.STEEL, 0.02)
    # mudguards on city bikes
    if step_through:
        for hub_x in (rear, front):
            c = p([hub_x, 0.0, r])[0]
            ax, az = pose.vector([[1.0, 0, 0]])[0], pose.vector([[0, 0, 1.0]])[0]
            ang = np.linspace(0.3, 2.6, 8) if hub_x == rear else np.linspace(0.5, 2.6, 8)
            arc = c + (r + 0.03) * (np.cos(ang)[:, None] * ax + np.sin(ang)[:, None] * az)
            sk.polyline(arc, accent if rng.random() < 0.5 else frame, 0.05)
    # kickstand
    sk.line(p(bb + [-0.05, 0, 0])[0], p([bb[0] - 0.12, 0.15, 0.0])[0], pal.STEEL, 0.015)
    return b / 2 + r * 0.5


def shared_bicycle(sk: Sketch, rng: Rng, pose: Pose, scheme: tuple[BGR, BGR, BGR] | None = None) -> float:
    """A fleet bike: step-through frame, basket, chain case, fleet colours."""
    frame, accent, rim = scheme or pal.SHARED_BIKE_SCHEMES[int(rng.integers(len(pal.SHARED_BIKE_SCHEMES)))]
    frame, accent, rim = pal.jitter(rng, frame, 6), pal.jitter(rng, accent, 6), pal.jitter(rng, rim, 6)
    return bicycle(sk, rng, pose, frame=frame, accent=accent, rim=rim, step_through=True, basket=True,
                   chain_case=True, wheel_r_m=_u(rng, 0.29, 0.32), tube_m=0.04, solid_wheels=rng.random() < 0.35)


def private_bicycle(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """An owned bike: diamond or step-through frame in ordinary colours."""
    frame = pal.pick(rng, pal.PRIVATE_BIKE_COLORS)
    step = rng.random() < 0.35
    return bicycle(sk, rng, pose, frame=frame, accent=pal.pick(rng, pal.PRIVATE_BIKE_COLORS), rim=pal.STEEL,
                   step_through=step, basket=step and rng.random() < 0.6, chain_case=step and rng.random() < 0.5,
                   wheel_r_m=_u(rng, 0.31, 0.35), tube_m=0.03)


def scooter(sk: Sketch, rng: Rng, pose: Pose, *, body: BGR | None = None, delivery_box: bool | None = None) -> float:
    """An electric scooter (电动车): small fat wheels, leg shield, floorboard, seat over the rear body."""
    body = body or pal.pick(rng, pal.EBIKE_COLORS)
    trim = (35.0, 35.0, 38.0)
    r = _u(rng, 0.21, 0.25)
    b = _u(rng, 1.15, 1.3)
    rear, front = -b / 2, b / 2
    for hub_x in (rear, front):
        c = pose.apply([[hub_x, 0.0, r]])[0]
        ax, az = pose.vector([[1.0, 0, 0]])[0], pose.vector([[0, 0, 1.0]])[0]
        sk.poly(_ring(c, ax, az, r, 16), pal.TYRE, shade=False)
        sk.poly(_ring(c + pose.vector([[0, -0.02, 0]])[0], ax, az, r * 0.58, 12), (150.0, 150.0, 150.0),
                shade=False)
    w = _u(rng, 0.15, 0.19)
    _prism(sk, pose, [(front - 0.34, 0.28), (front - 0.2, 0.28), (front - 0.04, 0.98), (front - 0.18, 1.0)],
           -w, w, body)
    _prism(sk, pose, [(rear + 0.35, 0.22), (front - 0.3, 0.22), (front - 0.3, 0.33), (rear + 0.35, 0.33)],
           -w * 0.9, w * 0.9, trim)
    _prism(sk, pose, [(rear + 0.38, 0.27), (rear + 0.52, 0.72), (rear - 0.08, 0.80), (rear - 0.1, 0.45),
                      (rear + 0.1, 0.3)], -w, w, body)
    sk.box(pose.moved(dx_m=rear + 0.23), (0.62, 2 * w + 0.03, 0.08), trim, z0_m=0.8)
    sk.line(pose.apply([[front - 0.12, 0, 0.9]])[0], pose.apply([[front - 0.02, 0, r]])[0], trim, 0.05)
    bar = np.array([front - 0.1, 0.0, 1.08])
    sk.line(pose.apply(bar + [0, -0.33, 0])[0], pose.apply(bar + [0, 0.33, 0])[0], trim, 0.035)
    for side in (-1, 1):
        sk.line(pose.apply(bar + [0, 0.25 * side, 0])[0], pose.apply(bar + [-0.05, 0.3 * side, 0.22])[0], trim, 0.015)
        sk.sphere(pose.apply(bar + [-0.05, 0.3 * side, 0.24])[0], 0.04, trim)
    sk.sphere(pose.apply([[front - 0.02, 0.0, 0.95]])[0], 0.06, (225.0, 235.0, 240.0))
    if delivery_box if delivery_box is not None else rng.random() < 0.3:
        box_col = [(30.0, 200.0, 250.0), (220.0, 140.0, 20.0), (230.0, 230.0, 230.0), (40.0, 40.0, 180.0)]
        sk.box(pose.moved(dx_m=rear + 0.02), (0.42, 0.42, 0.4), pal.jitter(rng, box_col[int(rng.integers(4))]),
               z0_m=0.86, layer=1)
    return b / 2 + 0.1


def ebike(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """An e-bike of either common kind: scooter body (most) or an electric bicycle with a battery."""
    if rng.random() < 0.72:
        return scooter(sk, rng, pose)
    frame = pal.pick(rng, pal.EBIKE_COLORS)
    return bicycle(sk, rng, pose, frame=frame, accent=(40.0, 40.0, 42.0), rim=(60.0, 60.0, 60.0), step_through=True,
                   basket=rng.random() < 0.7, chain_case=False, wheel_r_m=_u(rng, 0.26, 0.3), tube_m=0.05,
                   solid_wheels=rng.random() < 0.5, battery=True)


# --- people and cars ---------------------------------------------------------------------------------


def person(sk: Sketch, rng: Rng, pose: Pose, *, walking: bool = True, umbrella: bool = False,
           height_m: float | None = None, bag: bool | None = None) -> float:
    """A person facing local +x, walking (legs apart, arms swinging) or standing."""
    h = height_m or _u(rng, 1.55, 1.85)
    top, trousers = pal.pick(rng, pal.CLOTH_COLORS), pal.pick(rng, pal.CLOTH_COLORS)
    skin = pal.pick(rng, pal.SKIN_COLORS, 6)
    hip, shoulder = 0.52 * h, 0.815 * h
    stride = _u(rng, 0.18, 0.34) if walking else 0.0
    phase = 1.0 if rng.random() < 0.5 else -1.0
    p = pose.apply
    for side in (-1.0, 1.0):
        foot = np.array([stride * side * phase, 0.1 * side, 0.06])
        sk.line(p([0.0, 0.09 * side, hip])[0], p(foot)[0], trousers, 0.15)
        sk.box(pose.moved(dx_m=foot[0] + 0.04, dy_m=foot[1]), (0.25, 0.1, 0.08), (30.0, 30.0, 35.0))
    sk.box(pose.moved(dz_m=hip - 0.04), (0.22, 0.38, shoulder - hip + 0.08), top, top_scale=1.0)
    swing = stride * 0.9
    for side in (-1.0, 1.0):
        hand = np.array([-swing * side * phase, 0.24 * side, hip - 0.02])
        if umbrella and side > 0:
            hand = np.array([0.15, 0.12, shoulder - 0.05])
        sk.line(p([0.0, 0.21 * side, shoulder - 0.03])[0], p(hand)[0], top, 0.085)
        sk.sphere(p(hand)[0], 0.045, skin)
    sk.line(p([0.0, 0.0, shoulder])[0], p([0.0, 0.0, shoulder + 0.06])[0], skin, 0.09)
    head = p([0.0, 0.0, h - 0.115])[0]
    sk.sphere(head, 0.105, skin, highlight=False)
    # hair: a cap over the back and top of the head, so the face shows from the front only
    sk.sphere(p([-0.035, 0.0, h - 0.085])[0], 0.095, pal.pick(rng, pal.HAIR_COLORS, 5), layer=1, highlight=False)
    if bag if bag is not None else rng.random() < 0.25:
        sk.box(pose.moved(dy_m=-0.26, dz_m=hip - 0.2), (0.28, 0.1, 0.3), pal.pick(rng, pal.CLOTH_COLORS), layer=1)
    if umbrella:
        parasol(sk, rng, pose.moved(dx_m=0.15, dy_m=0.12), pole_bottom_m=shoulder - 0.05, rim_m=h + 0.1,
                radius_m=_u(rng, 0.45, 0.55), layer=2)
    return 0.3


def car(sk: Sketch, rng: Rng, pose: Pose, *, kind: str | None = None, color: BGR | None = None) -> float:
    """A sedan, SUV or van facing local +x: body, glazed cabin, wheels, lights."""
    kind = kind or str(rng.choice(["sedan", "sedan", "suv", "van"]))
    color = color or pal.pick(rng, pal.CAR_COLORS, 6)
    glass = pal.jitter(rng, (70.0, 55.0, 45.0), 10)
    length, width = {"sedan": (_u(rng, 4.4, 4.9), 1.8), "suv": (_u(rng, 4.4, 4.8), 1.88),
                     "van": (_u(rng, 4.6, 5.2), 1.9)}[kind]
    height = {"sedan": _u(rng, 1.42, 1.5), "suv": _u(rng, 1.65, 1.75), "van": _u(rng, 1.9, 2.1)}[kind]
    belt = 0.95 if kind != "van" else 1.05
    hl, hw = length / 2, width / 2
    sk.box(pose, (length, width, belt - 0.22), color, z0_m=0.22, top_scale=0.98)
    if kind == "van":
        front, back, front_top, back_top = hl - 0.6, -hl + 0.05, hl - 1.2, -hl + 0.1
    else:
        front, back, front_top, back_top = hl - 1.05, -hl + 0.45, hl - 1.85, -hl + 1.0
    cab = np.array([
        [back, -hw + 0.05, belt], [front, -hw + 0.05, belt], [front, hw - 0.05, belt], [back, hw - 0.05, belt],
        [back_top, -hw + 0.2, height], [front_top, -hw + 0.2, height], [front_top, hw - 0.2, height],
        [back_top, hw - 0.2, height],
    ])
    faces = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 4, 7, 3], [1, 2, 6, 5], [0, 1, 5, 4], [3, 7, 6, 2]]
    sk.convex(pose.apply(cab), faces, [color, color, glass, glass, glass, glass])
    # pillars between front and rear side windows
    mid_b, mid_t = (front + back) / 2, (front_top + back_top) / 2
    for side in (-1.0, 1.0):
        y_b, y_t = side * (hw - 0.045), side * (hw - 0.19)
        sk.line(pose.apply([[mid_b, y_b, belt]])[0], pose.apply([[mid_t, y_t, height]])[0], color, 0.08, layer=1)
    for wx in (hl - 0.85, -hl + 0.85):
        for side in (-1.0, 1.0):
            c = pose.apply([[wx, side * (hw - 0.1), 0.33]])[0]
            ax, az = pose.vector([[1.0, 0, 0]])[0], pose.vector([[0, 0, 1.0]])[0]
            sk.poly(_ring(c, ax, az, 0.33, 14), pal.TYRE, shade=False)
            sk.poly(_ring(c + pose.vector([[0, side * 0.02, 0]])[0], ax, az, 0.18, 10), (120.0, 120.0, 125.0),
                    shade=False)
    for side in (-1.0, 1.0):
        sk.box(pose.moved(dx_m=hl - 0.02, dy_m=side * (hw - 0.25)), (0.06, 0.3, 0.12), (215.0, 230.0, 235.0),
               z0_m=0.72, layer=1)
        sk.box(pose.moved(dx_m=-hl + 0.02, dy_m=side * (hw - 0.2)), (0.06, 0.32, 0.12), (30.0, 30.0, 170.0),
               z0_m=0.78, layer=1)
    return hl


# --- stalls ---------------------------------------------------------------------------------------------

STALL_STYLES = ("canopy", "umbrella", "cart", "tricycle", "ground", "rack", "shopfront")


def parasol(sk: Sketch, rng: Rng, pose: Pose, *, pole_bottom_m: float = 0.0, rim_m: float = 2.0,
            radius_m: float = 1.2, colors: tuple[BGR, BGR] | None = None, segments: int | None = None,
            layer: int = 3) -> None:
    """A round umbrella: pole and a shallow cone of alternating-colour panels."""
    segments = segments or int(rng.choice([8, 8, 10, 12]))
    if colors is None:
        a = pal.pick(rng, pal.CANOPY_COLORS)
        b = pal.jitter(rng, pal.WHITE) if rng.random() < 0.5 else (a if rng.random() < 0.4 else
                                                                    pal.pick(rng, pal.CANOPY_COLORS))
        colors = (a, b)
    apex = pose.apply([[0.0, 0.0, rim_m + radius_m * 0.3]])[0]
    sk.line(pose.apply([[0.0, 0.0, pole_bottom_m]])[0], apex, (200.0, 200.0, 200.0), 0.035, layer=max(0, layer - 1))
    ang = np.linspace(0.0, 2 * math.pi, segments + 1)
    rim = pose.apply(np.stack([radius_m * np.cos(ang), radius_m * np.sin(ang), np.full(segments + 1, rim_m)], axis=1))
    for i in range(segments):
        sk.poly(np.stack([apex, rim[i], rim[i + 1]]), colors[i % 2], layer=layer)


def _canopy(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float) -> None:
    """A pop-up gazebo: four legs, a low pyramid roof (plain or striped) and a scalloped valance."""
    eave = _u(rng, 1.9, 2.2)
    peak = eave + _u(rng, 0.35, 0.6)
    main = pal.pick(rng, pal.CANOPY_COLORS)
    second = pal.jitter(rng, pal.WHITE) if rng.random() < 0.55 else pal.pick(rng, pal.CANOPY_COLORS)
    striped = rng.random() < 0.4
    leg_color = (210.0, 210.0, 210.0) if rng.random() < 0.6 else (40.0, 40.0, 40.0)
    hx, hy = lx / 2, ly / 2
    corners = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
    for cx, cy in corners:
        sk.line(pose.apply([[cx, cy, 0.0]])[0], pose.apply([[cx, cy, eave]])[0], leg_color, 0.04)
    apex = pose.apply([[0.0, 0.0, peak]])[0]
    n_str = 4
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        for j in range(n_str if striped else 1):
            t0, t1 = j / (n_str if striped else 1), (j + 1) / (n_str if striped else 1)
            pa, pb = a + (b - a) * t0, a + (b - a) * t1
            tri = np.stack([apex, pose.apply([[pa[0], pa[1], eave]])[0], pose.apply([[pb[0], pb[1], eave]])[0]])
            sk.poly(tri, second if striped and j % 2 else main, layer=3)
        # valance with scallops along the bottom edge
        n_sc = max(3, int(np.linalg.norm(b - a) / 0.35))
        top_a, top_b = pose.apply([[a[0], a[1], eave]])[0], pose.apply([[b[0], b[1], eave]])[0]
        drop = 0.22
        bottom = []
        for i in range(n_sc * 2 + 1):
            t = i / (n_sc * 2)
            pt = a + (b - a) * t
            z = eave - drop - (0.05 if i % 2 else 0.0)
            bottom.append([pt[0], pt[1], z])
        val = np.concatenate([[top_a], pose.apply(bottom), [top_b]])
        sk.poly(val[::-1] if k % 2 else val, second if not striped and rng.random() < 0.3 else main, layer=3)


def goods_pile(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, z_m: float, kind: str | None = None,
               layer: int = 1) -> None:
    """Goods laid out on a surface of lx × ly at height z_m: fruit heaps, packages, folded clothes, crates."""
    kind = kind or str(rng.choice(["fruit", "fruit", "fruit", "packages", "clothes", "veg", "crated"]))
    if kind in ("fruit", "veg"):
        n_heaps = max(1, int(lx * ly / 0.12))
        n_heaps = min(n_heaps, 8)
        for h in range(n_heaps):
            color = pal.pick(rng, pal.FRUIT_COLORS if kind == "fruit" else
                             [(40.0, 130.0, 60.0), (70.0, 170.0, 110.0), (30.0, 110.0, 200.0), (60.0, 90.0, 120.0)], 12)
            r = _u(rng, 0.035, 0.07) if rng.random() < 0.9 else _u(rng, 0.1, 0.13)
            cx = -lx / 2 + lx * (h + 0.5) / n_heaps + _u(rng, -0.05, 0.05)
            cy = _u(rng, -ly * 0.2, ly * 0.2)
            heap_r = min(lx / n_heaps / 2, ly / 2) * 0.9
            n = int(np.clip((heap_r / r) ** 2 * 1.6, 4, 26))
            d = heap_r * np.sqrt(rng.random(n))
            a = rng.random(n) * 2 * math.pi
            order = np.argsort(-d)  # outer balls first, the top of the heap last
            for i in order:
                zz = z_m + r + (heap_r - d[i]) * 0.55
                sk.sphere(pose.apply([[cx + d[i] * math.cos(a[i]), cy + d[i] * math.sin(a[i]), zz]])[0], r,
                          pal.jitter(rng, color, 8), layer=layer)
    elif kind == "packages":
        nx, ny = max(1, int(lx / 0.28)), max(1, int(ly / 0.3))
        for i in range(nx):
            for j in range(ny):
                if rng.random() < 0.2:
                    continue
                hgt = _u(rng, 0.08, 0.3)
                sk.box(pose.moved(dx_m=-lx / 2 + (i + 0.5) * lx / nx, dy_m=-ly / 2 + (j + 0.5) * ly / ny),
                       (lx / nx * 0.85, ly / ny * 0.85, hgt), pal.pick(rng, pal.PACKAGE_COLORS), z0_m=z_m, layer=layer)
    elif kind == "clothes":
        n = max(2, int(lx / 0.3))
        for i in range(n):
            stack = int(rng.integers(2, 6))
            for s in range(stack):
                sk.box(pose.moved(dx_m=-lx / 2 + (i + 0.5) * lx / n, dy_m=_u(rng, -0.05, 0.05)),
                       (lx / n * 0.9, ly * 0.7, 0.045), pal.pick(rng, pal.CLOTH_COLORS), z0_m=z_m + 0.045 * s,
                       layer=layer)
    else:  # crated
        n = max(1, int(lx / 0.5))
        for i in range(n):
            cpose = pose.moved(dx_m=-lx / 2 + (i + 0.5) * lx / n)
            sk.box(cpose, (lx / n * 0.9, ly * 0.8, 0.22), pal.pick(rng, pal.CRATE_COLORS), z0_m=z_m, layer=layer)
            goods_pile(sk, rng, cpose, lx / n * 0.8, ly * 0.7, z_m + 0.2, "fruit", layer=layer + 1)


def crate_stack(sk: Sketch, rng: Rng, pose: Pose, *, goods: bool = True) -> float:
    """One to three plastic crates stacked, optionally topped with goods."""
    n = int(rng.integers(1, 4))
    color = pal.pick(rng, pal.CRATE_COLORS)
    size = (_u(rng, 0.45, 0.6), _u(rng, 0.32, 0.4), _u(rng, 0.24, 0.3))
    for i in range(n):
        sk.box(pose, size, color, z0_m=i * size[2])
        sk.line(pose.apply([[-size[0] / 2, -size[1] / 2 - 0.002, i * size[2] + size[2] * 0.6]])[0],
                pose.apply([[size[0] / 2, -size[1] / 2 - 0.002, i * size[2] + size[2] * 0.6]])[0],
                pal.mix(color, (20.0, 20.0, 20.0), 0.5), 0.03, layer=1)
    if goods:
        goods_pile(sk, rng, pose, size[0] * 0.9, size[1] * 0.9, n * size[2], "fruit", layer=2)
    return max(size[:2])


def _table(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float, *, cloth: bool | None = None) -> float:
    z = _u(rng, 0.7, 0.78)
    cloth = rng.random() < 0.5 if cloth is None else cloth
    if cloth:
        sk.box(pose, (lx, ly, 0.3), pal.pick(rng, pal.TARP_COLORS), z0_m=z - 0.3)
    else:
        for sx in (-1, 1):
            for sy in (-1, 1):
                sk.line(pose.apply([[sx * (lx / 2 - 0.05), sy * (ly / 2 - 0.05), 0.0]])[0],
                        pose.apply([[sx * (lx / 2 - 0.05), sy * (ly / 2 - 0.05), z]])[0], pal.STEEL, 0.03)
        sk.box(pose, (lx, ly, 0.035), pal.jitter(rng, (200.0, 200.0, 205.0) if rng.random() < 0.5
                                                   else (90.0, 130.0, 170.0)), z0_m=z - 0.035)
    return z


def _vendor_cart(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float) -> float:
    """A push cart: a box body on two wheels with handles; returns the height of its top."""
    body_z0, body_h = _u(rng, 0.35, 0.45), _u(rng, 0.4, 0.55)
    color = pal.jitter(rng, [pal.STEEL, (40.0, 40.0, 170.0), (160.0, 110.0, 40.0), (60.0, 110.0, 160.0),
                             (220.0, 220.0, 220.0)][int(rng.integers(5))])
    for side in (-1.0, 1.0):
        c = pose.apply([[0.1, side * (ly / 2 + 0.04), 0.25]])[0]
        ax, az = pose.vector([[1.0, 0, 0]])[0], pose.vector([[0, 0, 1.0]])[0]
        sk.polyline(_ring(c, ax, az, 0.22, 16), pal.TYRE, 0.05, closed=True)
        sk.sphere(c, 0.04, pal.STEEL)
    sk.line(pose.apply([[-lx / 2 + 0.1, 0, body_z0]])[0], pose.apply([[-lx / 2 + 0.1, 0, 0.0]])[0], pal.STEEL, 0.04)
    sk.box(pose, (lx, ly, body_h), color, z0_m=body_z0)
    top = body_z0 + body_h
    for side in (-1.0, 1.0):
        sk.line(pose.apply([[-lx / 2, side * ly / 2 * 0.8, top - 0.05]])[0],
                pose.apply([[-lx / 2 - 0.45, side * ly / 2 * 0.8, top + 0.1]])[0], pal.STEEL, 0.03)
    if rng.random() < 0.35:  # glass display case: frame only, goods visible inside
        case_h = _u(rng, 0.35, 0.5)
        for sx in (-1, 1):
            for sy in (-1, 1):
                sk.line(pose.apply([[sx * lx / 2 * 0.95, sy * ly / 2 * 0.95, top]])[0],
                        pose.apply([[sx * lx / 2 * 0.95, sy * ly / 2 * 0.95, top + case_h]])[0],
                        (200.0, 200.0, 200.0), 0.025, layer=2)
        sk.box(pose, (lx * 0.98, ly * 0.98, 0.03), (200.0, 200.0, 205.0), z0_m=top + case_h, layer=2)
    return top


def _tricycle_cart(sk: Sketch, rng: Rng, pose: Pose, lx: float, ly: float) -> float:
    """A cargo tricycle: one front wheel with bars and saddle, a cargo box over two rear wheels."""
    frame = pal.pick(rng, [(40.0, 40.0, 160.0), (150.0, 90.0, 30.0), (40.0, 40.0, 40.0), (60.0, 130.0, 60.0)])
    r = 0.3
    fx = lx / 2 + 0.7
    _wheel(sk, pose, fx, r, 0.05, pal.STEEL, spokes=6)
    for side in (-1.0, 1.0):
        c = pose.apply([[0.0, side * (ly / 2 + 0.05), r]])[0]
        ax, az = pose.vector([[1.0, 0, 0]])[0], pose.vector([[0, 0, 1.0]])[0]
        sk.polyline(_ring(c, ax, az, r - 0.02, 16), pal.TYRE, 0.05, closed=True)
    p = pose.apply
    sk.line(p([[fx, 0, r]])[0], p([[fx - 0.12, 0, 0.95]])[0], frame, 0.035)
    sk.line(p([[fx - 0.12, 0, 0.95]])[0], p([[lx / 2, 0, 0.55]])[0], frame, 0.04)
    sk.line(p([[fx - 0.15, -0.3, 1.0]])[0], p([[fx - 0.15, 0.3, 1.0]])[0], (40.0, 40.0, 40.0), 0.025)
    sk.line(p([[lx / 2 + 0.25, 0, 0.5]])[0], p([[lx / 2 + 0.25, 0, 0.85]])[0], frame, 0.035)
    sk.line(p([[lx / 2 + 0.15, 0, 0.88]])[0], p([[lx / 2 + 0.35, 0, 0.88]])[0], (25.0, 25.0, 25.0), 0.08)
    wall = _u(rng, 0.25, 0.4)
    box_color = pal.jitter(rng, frame if rng.random() < 0.5 else (70.0, 110.0, 140.0))
    sk.box(pose, (lx, ly, wall), box_color, z0_m=0.5)
    return 0.5 + wall * 0.6


def stall(sk: Sketch, rng: Rng, pose: Pose, style: str | None = None) -> tuple[float, str]:
    """A vending setup in one of `STALL_STYLES`; everything drawn belongs to the stall's label box.

    Returns:
        ``(ground radius in metres, style)``.
    """
    style = style or str(rng.choice(["canopy", "canopy", "umbrella", "cart", "tricycle", "ground", "rack",
                                     "shopfront"]))
    if style == "canopy":
        lx, ly = float(rng.choice([2.0, 2.5, 3.0])), float(rng.choice([2.0, 2.0, 2.5, 3.0]))
        tl, tw = min(lx - 0.3, _u(rng, 1.2, 1.9)), _u(rng, 0.55, 0.8)
        tpose = pose.moved(dy_m=_u(rng, -0.3, 0.2))
        z = _table(sk, rng, tpose, tl, tw)
        goods_pile(sk, rng, tpose, tl * 0.92, tw * 0.85, z)
        if rng.random() < 0.5:
            crate_stack(sk, rng, pose.moved(dx_m=lx / 2 - 0.3, dy_m=ly / 2 - 0.35))
        _canopy(sk, rng, pose, lx, ly)
        return math.hypot(lx, ly) / 2, style
    if style == "umbrella":
        if rng.random() < 0.5:
            lx, ly = _u(rng, 1.0, 1.6), _u(rng, 0.55, 0.75)
            z = _table(sk, rng, pose, lx, ly)
        else:
            lx, ly = _u(rng, 1.1, 1.5), _u(rng, 0.6, 0.8)
            z = _vendor_cart(sk, rng, pose, lx, ly)
        goods_pile(sk, rng, pose, lx * 0.9, ly * 0.85, z)
        radius = _u(rng, 0.9, 1.4)
        parasol(sk, rng, pose.moved(dx_m=-lx / 2 + 0.1, dy_m=ly / 2 - 0.05), rim_m=_u(rng, 1.8, 2.1),
                radius_m=radius)
        return max(radius, lx / 2 + 0.3), style
    if style == "cart":
        lx, ly = _u(rng, 1.1, 1.6), _u(rng, 0.6, 0.85)
        z = _vendor_cart(sk, rng, pose, lx, ly)
        goods_pile(sk, rng, pose, lx * 0.9, ly * 0.85, z, layer=1)
        return lx / 2 + 0.5, style
    if style == "tricycle":
        lx, ly = _u(rng, 1.0, 1.3), _u(rng, 0.8, 1.0)
        z = _tricycle_cart(sk, rng, pose, lx, ly)
        goods_pile(sk, rng, pose, lx * 0.92, ly * 0.88, z, kind=str(rng.choice(["fruit", "fruit", "veg", "crated"])),
                   layer=1)
        if rng.random() < 0.35:
            parasol(sk, rng, pose.moved(dx_m=-lx / 2 + 0.1), pole_bottom_m=0.5, rim_m=_u(rng, 1.9, 2.1),
                    radius_m=_u(rng, 0.9, 1.2))
        return lx / 2 + 0.6, style
    if style == "ground":
        lx, ly = _u(rng, 1.2, 2.2), _u(rng, 0.8, 1.4)
        tarp = pal.pick(rng, pal.TARP_COLORS)
        sk.poly(pose.apply([[-lx / 2, -ly / 2, 0.01], [lx / 2, -ly / 2, 0.01], [lx / 2, ly / 2, 0.01],
                            [-lx / 2, ly / 2, 0.01]]), tarp, shadow=False)
        n = int(rng.integers(2, 5))
        for i in range(n):
            goods_pile(sk, rng, pose.moved(dx_m=-lx / 2 + (i + 0.5) * lx / n), lx / n * 0.8, ly * 0.7, 0.01,
                       kind=str(rng.choice(["fruit", "veg", "packages", "clothes"])))
        if rng.random() < 0.5:
            crate_stack(sk, rng, pose.moved(dx_m=lx / 2 + 0.3), goods=rng.random() < 0.5)
        return math.hypot(lx, ly) / 2 + 0.2, style
    if style == "rack":
        lx = _u(rng, 1.4, 2.2)
        h = _u(rng, 1.5, 1.75)
        for sx in (-1, 1):
            sk.line(pose.apply([[sx * lx / 2, 0, 0.0]])[0], pose.apply([[sx * lx / 2, 0, h]])[0], pal.STEEL, 0.03)
            sk.line(pose.apply([[sx * lx / 2, -0.25, 0.0]])[0], pose.apply([[sx * lx / 2, 0.25, 0.0]])[0],
                    pal.STEEL, 0.03)
        sk.line(pose.apply([[-lx / 2, 0, h]])[0], pose.apply([[lx / 2, 0, h]])[0], pal.STEEL, 0.03)
        n = int(lx / 0.09)
        for i in range(n):
            length = _u(rng, 0.6, 1.0)
            sk.box(pose.moved(dx_m=-lx / 2 + (i + 0.5) * lx / n), (0.05, _u(rng, 0.38, 0.5), length),
                   pal.pick(rng, pal.CLOTH_COLORS), z0_m=h - 0.05 - length)
        if rng.random() < 0.6:
            tpose = pose.moved(dy_m=-0.8)
            z = _table(sk, rng, tpose, lx * 0.8, 0.6, cloth=True)
            goods_pile(sk, rng, tpose, lx * 0.75, 0.5, z, kind="clothes")
        return lx / 2 + 0.5, style
    # shopfront spill-over (店外经营): racks of goods and crates put out on the pavement
    lx = _u(rng, 1.5, 3.0)
    for i in range(int(rng.integers(2, 4))):
        tier_pose = pose.moved(dx_m=_u(rng, -lx / 4, lx / 4), dy_m=_u(rng, -0.2, 0.2))
        w = _u(rng, 0.8, 1.4)
        levels = int(rng.integers(2, 4))
        for lv in range(levels):
            z = 0.25 + lv * 0.32
            sk.box(tier_pose.moved(dy_m=lv * 0.22), (w, 0.35, 0.03), pal.STEEL, z0_m=z)
            goods_pile(sk, rng, tier_pose.moved(dy_m=lv * 0.22), w * 0.95, 0.3, z + 0.03,
                       kind=str(rng.choice(["fruit", "packages", "veg"])), layer=1 + lv)
        for sx in (-1, 1):
            sk.line(tier_pose.apply([[sx * w / 2, 0, 0.0]])[0],
                    tier_pose.apply([[sx * w / 2, 0.4, 0.25 + levels * 0.32]])[0],
                    pal.STEEL, 0.025)
    for _ in range(int(rng.integers(1, 4))):
        crate_stack(sk, rng, pose.moved(dx_m=_u(rng, -lx / 2, lx / 2), dy_m=_u(rng, -0.8, -0.4)))
    return lx / 2 + 0.6, style


# --- hard negatives: carts with nothing to sell ---------------------------------------------------------


def trolley(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """A flatbed hand trolley (a delivery cart), empty or with one closed carton."""
    lx, ly = _u(rng, 0.8, 1.1), _u(rng, 0.5, 0.65)
    sk.box(pose, (lx, ly, 0.04), pal.pick(rng, [(60.0, 60.0, 60.0), (40.0, 100.0, 200.0), (150.0, 150.0, 150.0)]),
           z0_m=0.14)
    for sx in (-1, 1):
        for sy in (-1, 1):
            sk.sphere(pose.apply([[sx * (lx / 2 - 0.08), sy * (ly / 2 - 0.06), 0.06]])[0], 0.06, pal.TYRE)
    sk.line(pose.apply([[-lx / 2, -ly / 2 + 0.05, 0.18]])[0], pose.apply([[-lx / 2 - 0.05, -ly / 2 + 0.05, 0.95]])[0],
            pal.STEEL, 0.03)
    sk.line(pose.apply([[-lx / 2, ly / 2 - 0.05, 0.18]])[0], pose.apply([[-lx / 2 - 0.05, ly / 2 - 0.05, 0.95]])[0],
            pal.STEEL, 0.03)
    sk.line(pose.apply([[-lx / 2 - 0.05, -ly / 2 + 0.05, 0.95]])[0],
            pose.apply([[-lx / 2 - 0.05, ly / 2 - 0.05, 0.95]])[0], pal.STEEL, 0.03)
    if rng.random() < 0.3:
        sk.box(pose, (lx * 0.6, ly * 0.7, 0.35), (90.0, 140.0, 190.0), z0_m=0.18)
    return lx / 2 + 0.2


def empty_cart(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """A push cart parked with nothing on it, or covered with a tarp."""
    lx, ly = _u(rng, 1.1, 1.6), _u(rng, 0.6, 0.85)
    top = _vendor_cart(sk, rng, pose, lx, ly)
    if rng.random() < 0.5:
        sk.box(pose, (lx * 1.02, ly * 1.02, 0.06), pal.pick(rng, pal.TARP_COLORS), z0_m=top, layer=1)
    return lx / 2 + 0.5


def empty_tricycle(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """A cargo tricycle with an empty box (delivery, recycling)."""
    lx, ly = _u(rng, 1.0, 1.3), _u(rng, 0.8, 1.0)
    _tricycle_cart(sk, rng, pose, lx, ly)
    return lx / 2 + 0.6


# --- street furniture -----------------------------------------------------------------------------------


def tree(sk: Sketch, rng: Rng, pose: Pose, *, crown_m: float | None = None) -> float:
    """A street tree: trunk and a crown of overlapping green balls."""
    trunk_h = _u(rng, 1.8, 3.0)
    crown = crown_m or _u(rng, 1.2, 2.2)
    trunk = pal.jitter(rng, (50.0, 70.0, 95.0))
    sk.line(pose.apply([[0, 0, 0.0]])[0], pose.apply([[0, 0, trunk_h + crown * 0.6]])[0], trunk, _u(rng, 0.16, 0.28))
    green = pal.jitter(rng, (45.0, 110.0, 60.0), 15)
    n = int(rng.integers(7, 14))
    center = np.array([0.0, 0.0, trunk_h + crown])
    offs = rng.normal(0, crown * 0.45, (n, 3))
    offs[:, 2] *= 0.7
    for o in offs[np.argsort(offs[:, 2])]:
        r = crown * _u(rng, 0.45, 0.7)
        shade = 0.8 + 0.4 * (o[2] / (crown + 1e-6) + 0.5)
        sk.sphere(pose.apply(center + o)[0], r, tuple(min(255.0, c * shade) for c in green), layer=1,
                  highlight=False)
    return 0.6


def street_lamp(sk: Sketch, rng: Rng, pose: Pose) -> tuple[float, np.ndarray]:
    """A lamp post with an arm; returns (ground radius, world position of the lamp head)."""
    h = _u(rng, 5.5, 8.0)
    arm = _u(rng, 0.8, 1.6)
    color = pal.jitter(rng, (120.0, 120.0, 118.0))
    sk.line(pose.apply([[0, 0, 0.0]])[0], pose.apply([[0, 0, h]])[0], color, 0.14)
    sk.line(pose.apply([[0, 0, h - 0.1]])[0], pose.apply([[arm, 0, h + 0.2]])[0], color, 0.07)
    sk.box(pose.moved(dx_m=arm), (0.6, 0.25, 0.15), color, z0_m=h + 0.05)
    sk.box(pose.moved(dx_m=arm), (0.5, 0.2, 0.02), (210.0, 235.0, 245.0), z0_m=h + 0.03, layer=1)
    return 0.3, pose.apply([[arm, 0, h]])[0]


def bench(sk: Sketch, rng: Rng, pose: Pose) -> float:
    lx = _u(rng, 1.4, 2.0)
    wood = pal.jitter(rng, (60.0, 100.0, 150.0))
    for sx in (-1, 1):
        sk.box(pose.moved(dx_m=sx * (lx / 2 - 0.15)), (0.06, 0.45, 0.43), (50.0, 50.0, 55.0))
    sk.box(pose, (lx, 0.45, 0.05), wood, z0_m=0.43)
    sk.box(pose.moved(dy_m=0.22), (lx, 0.05, 0.4), wood, z0_m=0.5)
    return lx / 2


def bin(sk: Sketch, rng: Rng, pose: Pose) -> float:  # noqa: A001 - the street object, not the builtin
    """A litter bin: a pair of wheelie bins, a sorted-waste box or a round steel bin."""
    kind = rng.random()
    if kind < 0.5:
        colors = [(60.0, 130.0, 50.0), (150.0, 90.0, 30.0), (90.0, 90.0, 90.0), (40.0, 40.0, 170.0)]
        for i in range(int(rng.integers(1, 3))):
            c = pal.jitter(rng, colors[int(rng.integers(len(colors)))])
            bp = pose.moved(dx_m=i * 0.62)
            sk.box(bp, (0.55, 0.6, 0.95), c)
            sk.box(bp, (0.6, 0.65, 0.06), pal.mix(c, (0, 0, 0), 0.2), z0_m=0.95, layer=1)
        return 0.7
    if kind < 0.8:
        sk.box(pose, (0.9, 0.4, 0.95), pal.jitter(rng, (110.0, 110.0, 112.0)), top_scale=0.95)
        sk.box(pose.moved(dy_m=-0.201), (0.7, 0.01, 0.3), (150.0, 90.0, 30.0), z0_m=0.5, layer=1)
        return 0.5
    sk.cylinder(pose.apply([[0, 0, 0.0]])[0], 0.25, 0.85, pal.jitter(rng, (170.0, 170.0, 170.0)))
    return 0.3


def cone(sk: Sketch, rng: Rng, pose: Pose) -> float:
    """A traffic cone: orange tapered body with a white band on a square base."""
    sk.box(pose, (0.38, 0.38, 0.04), (30.0, 30.0, 35.0))
    orange = pal.jitter(rng, (20.0, 90.0, 240.0))
    sk.box(pose, (0.26, 0.26, 0.3), orange, z0_m=0.04, top_scale=0.62)
    sk.box(pose, (0.17, 0.17, 0.12), (235.0, 235.0, 235.0), z0_m=0.33, top_scale=0.75, layer=1)
    sk.box(pose, (0.13, 0.13, 0.22), orange, z0_m=0.45, top_scale=0.3, layer=2)
    return 0.25


def bollard(sk: Sketch, rng: Rng, pose: Pose) -> float:
    color = pal.jitter(rng, [(150.0, 150.0, 150.0), (30.0, 190.0, 240.0), (60.0, 60.0, 60.0)][int(rng.integers(3))])
    sk.cylinder(pose.apply([[0, 0, 0.0]])[0], 0.1, _u(rng, 0.6, 0.9), color, segments=10)
    return 0.15


def planter(sk: Sketch, rng: Rng, pose: Pose) -> float:
    lx = _u(rng, 0.8, 1.6)
    sk.box(pose, (lx, 0.6, 0.55), pal.jitter(rng, (150.0, 155.0, 160.0)))
    for i in range(int(lx / 0.25)):
        sk.sphere(pose.apply([[-lx / 2 + 0.15 + i * 0.25, _u(rng, -0.15, 0.15), 0.7]])[0], _u(rng, 0.15, 0.25),
                  pal.jitter(rng, (50.0, 130.0, 60.0), 15), layer=1)
    return lx / 2


def hydrant(sk: Sketch, rng: Rng, pose: Pose) -> float:
    red = pal.jitter(rng, (30.0, 30.0, 190.0))
    sk.cylinder(pose.apply([[0, 0, 0.0]])[0], 0.12, 0.7, red, segments=10)
    sk.sphere(pose.apply([[0, 0, 0.72]])[0], 0.12, red, layer=1)
    return 0.2


def sign_post(sk: Sketch, rng: Rng, pose: Pose) -> float:
    h = _u(rng, 2.4, 3.2)
    sk.line(pose.apply([[0, 0, 0.0]])[0], pose.apply([[0, 0, h]])[0], pal.STEEL, 0.07)
    color = pal.jitter(rng, [(160.0, 80.0, 20.0), (235.0, 235.0, 235.0), (30.0, 30.0, 190.0)][int(rng.integers(3))])
    sk.box(pose.moved(dy_m=-0.05), (0.6, 0.02, 0.6), color, z0_m=h - 0.6, layer=1)
    return 0.1


def railing(sk: Sketch, rng: Rng, start_xy: tuple[float, float], end_xy: tuple[float, float]) -> None:
    """A kerbside guard rail (common between road and pavement): posts and two rails, drawn along a line."""
    color = pal.jitter(rng, [(230.0, 230.0, 230.0), (40.0, 180.0, 230.0), (150.0, 150.0, 150.0)][int(rng.integers(3))])
    a, b = np.array(start_xy, np.float64), np.array(end_xy, np.float64)
    length = float(np.linalg.norm(b - a))
    n = max(2, int(length / 2.0))
    for i in range(n + 1):
        p = a + (b - a) * i / n
        sk.line([p[0], p[1], 0.0], [p[0], p[1], 0.9], color, 0.06)
    for i in range(n):
        p, q = a + (b - a) * i / n, a + (b - a) * (i + 1) / n
        for z in (0.4, 0.85):
            sk.line([p[0], p[1], z], [q[0], q[1], z], color, 0.05)
