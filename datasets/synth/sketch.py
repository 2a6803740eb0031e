"""3D sketches: objects built from polygons, lines and spheres in metres, drawn through a camera.

Drawing in 3D (instead of pasting flat sprites) gives every object the perspective, foreshortening and
size of the camera that looks at it: a row of parked bikes seen from a pole camera and the same row seen
from a drone come from one builder.

A `Sketch` renders into its own premultiplied BGRA `Layer` (OpenCV's anti-aliased drawing onto a
transparent buffer yields premultiplied colour, which is what compositing needs), or straight into an image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.synth.camera import NEAR_M, PinholeCamera, clip_polygon_near, clip_segment_near

__all__ = ["Light", "Layer", "Pose", "Sketch", "BGR"]

BGR = tuple[float, float, float]

_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn at 1/16 px
_SCALE = float(1 << _SHIFT)
_MAX_COORD = 1e6


@dataclass(frozen=True)
class Light:
    """Sun and sky: faces turned to the sun are lit by ``ambient + diffuse``, the others by ``ambient``.

    Attributes:
        sun_dir: Unit world vector pointing towards the sun (z > 0).
        ambient: Share of light that every face gets.
        diffuse: Share that depends on the angle to the sun.
    """

    sun_dir: tuple[float, float, float] = (0.4, -0.5, 0.77)
    ambient: float = 0.62
    diffuse: float = 0.45

    def factor(self, normal: np.ndarray) -> float:
        return self.ambient + self.diffuse * max(0.0, float(np.dot(normal, self.sun_dir)))


@dataclass
class Layer:
    """Premultiplied pixels to composite at ``(x0_px, y0_px)`` of an image.

    Attributes:
        bgr: (h, w, 3) float32 colour already multiplied by alpha, 0..255.
        alpha: (h, w) float32 coverage, 0..1.
        x0_px: Column of the layer's left edge in the image (may be negative).
        y0_px: Row of the layer's top edge.
    """

    bgr: np.ndarray
    alpha: np.ndarray
    x0_px: int
    y0_px: int

    @property
    def width_px(self) -> int:
        return int(self.alpha.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.alpha.shape[0])

    @classmethod
    def from_bgra_u8(cls, bgra: np.ndarray, x0_px: int, y0_px: int) -> "Layer":
        """From a premultiplied uint8 BGRA buffer."""
        return cls(bgra[..., :3].astype(np.float32), bgra[..., 3].astype(np.float32) * (1.0 / 255.0), x0_px, y0_px)

    @classmethod
    def from_straight(cls, bgr: np.ndarray, alpha: np.ndarray, x0_px: int, y0_px: int) -> "Layer":
        """From straight (not premultiplied) colour and a 0..1 alpha."""
        a = alpha.astype(np.float32)
        return cls(bgr.astype(np.float32) * a[..., None], a, x0_px, y0_px)


@dataclass(frozen=True)
class Pose:
    """Where an object stands: local +x points along `heading_rad` (counter-clockwise from +X), z up.

    Attributes:
        x_m: Ground position east.
        y_m: Ground position north.
        z_m: Height of the local origin (e.g. a roof top).
        heading_rad: Rotation of the local frame about Z.
        lean_rad: Rotation about the local x axis (a bike leaning on its stand).
    """

    x_m: float
    y_m: float
    z_m: float = 0.0
    heading_rad: float = 0.0
    lean_rad: float = 0.0
    _matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c, s = math.cos(self.heading_rad), math.sin(self.heading_rad)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        if self.lean_rad:
            cl, sl = math.cos(self.lean_rad), math.sin(self.lean_rad)
            rot = rot @ np.array([[1.0, 0.0, 0.0], [0.0, cl, -sl], [0.0, sl, cl]])
        object.__setattr__(self, "_matrix", rot.T.copy())

    def apply(self, pts_local: np.ndarray | list) -> np.ndarray:
        """(N, 3) local points → (N, 3) world points."""
        if type(pts_local) is list and len(pts_local) == 1 and len(pts_local[0]) == 3:
            # one point, the common call from builders: plain arithmetic beats numpy's per-call overhead
            x, y, z = pts_local[0]
            m = self._matrix
            return np.array([[x * m[0, 0] + y * m[1, 0] + z * m[2, 0] + self.x_m,
                              x * m[0, 1] + y * m[1, 1] + z * m[2, 1] + self.y_m,
                              x * m[0, 2] + y * m[1, 2] + z * m[2, 2] + self.z_m]])
        p = np.asarray(pts_local, np.float64).reshape(-1, 3)
        out = p @ self._matrix
        out[:, 0] += self.x_m
        out[:, 1] += self.y_m
        out[:, 2] += self.z_m
        return out

    def vector(self, v_local: np.ndarray | list) -> np.ndarray:
        """Rotate (N, 3) local directions into the world (no translation)."""
        return np.asarray(v_local, np.float64).reshape(-1, 3) @ self._matrix

    def moved(self, dx_m: float = 0.0, dy_m: float = 0.0, dz_m: float = 0.0, dheading_rad: float = 0.0) -> "Pose":
        """A pose shifted by a local offset and turned further."""
        x, y, z = self.apply([[dx_m, dy_m, dz_m]])[0]
        return Pose(float(x), float(y), float(z), self.heading_rad + dheading_rad, self.lean_rad)


@dataclass
class _Op:
    kind: str  # poly | line | sphere
    pts: np.ndarray  # (N, 3) world
    color: BGR
    layer: int = 0
    width_m: float = 0.0  # line width, sphere radius
    closed: bool = False
    shade: bool = True
    outward: np.ndarray | None = None  # for culled faces of solids
    shadow: bool = True
    min_px: float = 1.0
    highlight: bool = True


def _newell_normal(pts: np.ndarray) -> np.ndarray:
    nxt = np.roll(pts, -1, axis=0)
    n = np.array([
        np.sum((pts[:, 1] - nxt[:, 1]) * (pts[:, 2] + nxt[:, 2])),
        np.sum((pts[:, 2] - nxt[:, 2]) * (pts[:, 0] + nxt[:, 0])),
        np.sum((pts[:, 0] - nxt[:, 0]) * (pts[:, 1] + nxt[:, 1])),
    ])
    norm = np.linalg.norm(n)
    return n / norm if norm > 1e-12 else np.array([0.0, 0.0, 1.0])


def _color(c: BGR, factor: float, alpha_channel: bool) -> tuple:
    b, g, r = (min(255.0, max(0.0, v * factor)) for v in c)
    return (b, g, r, 255.0) if alpha_channel else (b, g, r)


def _to_fixed(uv: np.ndarray) -> np.ndarray:
    return np.round(np.clip(uv, -_MAX_COORD, _MAX_COORD) * _SCALE).astype(np.int32)


@dataclass
class Sketch:
    """A bag of 3D drawing operations in world metres.

    Operations are drawn far-to-near within each `layer` (lower layers first): painter's order, which is
    right for the small, mostly convex parts objects are built from; builders put parts that must cover
    others (a canopy seen from above) on a higher layer. With ``depth_sort=False`` they are drawn in the
    order added (flat ground areas painted one over another).

    Example:
        >>> sk = Sketch()
        >>> sk.box(Pose(0.0, 10.0), (1.0, 1.0, 1.0), (40, 80, 200))
        >>> cam = PinholeCamera(320, 240, 300.0, height_m=5.0, pitch_deg=30.0)
        >>> layer = sk.render(cam)
        >>> layer is not None and bool(layer.alpha.max() == 1.0)
        True
    """

    light: Light | None = None
    ops: list[_Op] = field(default_factory=list)
    depth_sort: bool = True  # False: draw in the order added (layers still apply), e.g. ground areas

    # --- primitives ----------------------------------------------------------------------------

    def poly(self, pts_m: np.ndarray, color: BGR, *, layer: int = 0, shade: bool = True, shadow: bool = True,
             outward: np.ndarray | None = None) -> None:
        """A filled planar polygon (world points, any winding)."""
        pts = np.asarray(pts_m, np.float64).reshape(-1, 3)
        if len(pts) >= 3:
            self.ops.append(_Op("poly", pts, color, layer, shade=shade, shadow=shadow, outward=outward))

    def line(self, p0_m, p1_m, color: BGR, width_m: float, *, layer: int = 0, shadow: bool = True,
             min_px: float = 1.0) -> None:
        """A straight tube of diameter `width_m` (drawn at least `min_px` wide while wider than 0.35 px)."""
        pts = np.stack([np.asarray(p0_m, np.float64).reshape(3), np.asarray(p1_m, np.float64).reshape(3)])
        self.ops.append(_Op("line", pts, color, layer, width_m=width_m, shadow=shadow, min_px=min_px))

    def polyline(self, pts_m: np.ndarray, color: BGR, width_m: float, *, closed: bool = False, layer: int = 0,
                 shadow: bool = True) -> None:
        """Connected tubes through the points (a wheel's tyre, a curved frame tube)."""
        pts = np.asarray(pts_m, np.float64).reshape(-1, 3)
        if len(pts) >= 2:
            self.ops.append(_Op("polyline", pts, color, layer, width_m=width_m, closed=closed, shadow=shadow))

    def sphere(self, center_m, radius_m: float, color: BGR, *, layer: int = 0, shadow: bool = True,
               highlight: bool = True) -> None:
        """A ball (fruit, a tree crown, a head): a disc, with a highlight towards the sun when `highlight`."""
        self.ops.append(_Op("sphere", np.asarray(center_m, np.float64).reshape(1, 3), color, layer,
                            width_m=radius_m, shadow=shadow, highlight=highlight))

    def convex(self, vertices_m: np.ndarray, faces: list[list[int]], colors: list[BGR] | BGR, *, layer: int = 0,
               shadow: bool = True) -> None:
        """A convex solid: faces wound counter-clockwise seen from outside; faces turned away are skipped."""
        v = np.asarray(vertices_m, np.float64).reshape(-1, 3)
        center = v.mean(axis=0)
        first = np.array([f[:3] for f in faces])
        a, b, c = v[first[:, 0]], v[first[:, 1]], v[first[:, 2]]
        normals = np.cross(b - a, c - a)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        face_centers = np.array([v[f].mean(axis=0) for f in faces]) if len({len(f) for f in faces}) > 1 \
            else v[np.array(faces)].mean(axis=1)
        flip = np.einsum("ij,ij->i", normals, face_centers - center) < 0
        normals[flip] *= -1.0
        for i, face in enumerate(faces):
            color = colors[i] if isinstance(colors, list) else colors
            self.ops.append(_Op("poly", v[face], color, layer, outward=normals[i], shadow=shadow))

    def box(self, pose: Pose, size_m: tuple[float, float, float], color: BGR | list[BGR], *, layer: int = 0,
            z0_m: float = 0.0, top_scale: float = 1.0, shadow: bool = True) -> None:
        """A box of (length along local x, width along y, height) standing on local z = `z0_m`, centred.

        `top_scale` < 1 tapers the top (a cabin, a lamp shade). `color` is one colour or six
        (bottom, top, -x, +x, -y, +y).
        """
        lz = size_m[2]
        hx, hy = size_m[0] / 2.0, size_m[1] / 2.0
        tx, ty = hx * top_scale, hy * top_scale
        local = np.array([
            [-hx, -hy, z0_m], [hx, -hy, z0_m], [hx, hy, z0_m], [-hx, hy, z0_m],
            [-tx, -ty, z0_m + lz], [tx, -ty, z0_m + lz], [tx, ty, z0_m + lz], [-tx, ty, z0_m + lz],
        ])
        faces = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 4, 7, 3], [1, 2, 6, 5], [0, 1, 5, 4], [3, 7, 6, 2]]
        colors = color if isinstance(color, list) else [color] * 6
        self.convex(pose.apply(local), faces, colors, layer=layer, shadow=shadow)

    def cylinder(self, base_m, radius_m: float, height_m: float, color: BGR, *, top_color: BGR | None = None,
                 layer: int = 0, segments: int = 14, shadow: bool = True) -> None:
        """An upright cylinder (a water tank, a bin, a bollard) as a prism of `segments` sides."""
        base = np.asarray(base_m, np.float64).reshape(3)
        ang = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
        ring = np.stack([radius_m * np.cos(ang), radius_m * np.sin(ang), np.zeros(segments)], axis=1)
        bottom = base + ring
        top = bottom + np.array([0.0, 0.0, height_m])
        verts = np.concatenate([bottom, top])
        faces = [list(range(segments - 1, -1, -1)), list(range(segments, 2 * segments))]
        faces += [[i, (i + 1) % segments, segments + (i + 1) % segments, segments + i] for i in range(segments)]
        colors = [color, top_color or color] + [color] * segments
        self.convex(verts, faces, colors, layer=layer, shadow=shadow)

    def extend(self, other: "Sketch") -> None:
        self.ops.extend(other.ops)

    def __len__(self) -> int:
        return len(self.ops)

    # --- drawing -------------------------------------------------------------------------------

    def _prepared(self, camera: PinholeCamera):
        """Project every op once; returns (op, uv (N, 2), depth_m, size_px, shade factor) in drawing order."""
        ops = self.ops
        if not ops:
            return []
        counts = np.fromiter((len(op.pts) for op in ops), np.int64, len(ops))
        starts = np.zeros(len(ops), np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        world = np.concatenate([op.pts for op in ops])
        cam_all = camera.to_camera(world)
        centroids = np.add.reduceat(world, starts, axis=0) / counts[:, None]
        depth_mean = np.add.reduceat(cam_all[:, 2], starts) / counts
        depth_min = np.minimum.reduceat(cam_all[:, 2], starts)
        view = centroids - camera.center_m
        cx, cy = camera.principal_px
        z_safe = np.maximum(cam_all[:, 2], 1e-6)
        uv_all = np.column_stack([cx + camera.focal_px * cam_all[:, 0] / z_safe,
                                  cy + camera.focal_px * cam_all[:, 1] / z_safe])
        light = self.light
        out = []
        for i, op in enumerate(ops):
            if op.outward is not None and float(view[i] @ op.outward) >= 0:
                continue  # a face of a solid turned away from the camera
            s0, n = int(starts[i]), int(counts[i])
            depth = float(depth_mean[i])
            if op.kind == "sphere":
                if depth_min[i] < NEAR_M + op.width_m:
                    continue
                uv = uv_all[s0:s0 + 1]
            elif depth_min[i] >= NEAR_M:
                uv = uv_all[s0:s0 + n]
            else:
                cam = cam_all[s0:s0 + n]
                if op.kind == "poly":
                    cam = clip_polygon_near(cam)
                    if len(cam) < 3:
                        continue
                elif op.kind == "line":
                    seg = clip_segment_near(cam[0], cam[1])
                    if seg is None:
                        continue
                    cam = np.stack(seg)
                else:
                    cam = cam[cam[:, 2] >= NEAR_M]
                    if len(cam) < 2:
                        continue
                depth = float(cam[:, 2].mean())
                uv = camera.camera_to_px(cam)
            size_px = camera.focal_px * op.width_m / max(depth, NEAR_M)
            factor = 1.0
            if light is not None:
                if op.kind == "poly" and op.shade:
                    nrm = op.outward if op.outward is not None else _newell_normal(op.pts)
                    if float(nrm @ view[i]) > 0:
                        nrm = -nrm  # light the side the camera sees
                    factor = light.factor(nrm)
                elif op.kind == "sphere":
                    factor = light.ambient + 0.5 * light.diffuse
            out.append((op, uv, depth, size_px, factor))
        if self.depth_sort:
            out.sort(key=lambda item: (item[0].layer, -item[2]))
        else:
            out.sort(key=lambda item: item[0].layer)  # stable: insertion order within a layer
        return out

    def bounds_px(self, camera: PinholeCamera) -> tuple[float, float, float, float] | None:
        """(x1, y1, x2, y2) of the projected sketch, or None when nothing is in front of the camera."""
        prepared = self._prepared(camera)
        return _bounds(prepared)

    def render(self, camera: PinholeCamera, *, max_area_px: float | None = None,
               clip_px: tuple[int, int, int, int] | None = None) -> Layer | None:
        """Draw into a new transparent layer just big enough; None when nothing shows.

        Args:
            camera: The camera to look through.
            max_area_px: Give up (None) when the layer would be larger (an object pressed against the lens).
            clip_px: (x1, y1, x2, y2) integer image rectangle: draw only the part of the layer inside it (a
                large sketch drawn tile by tile into a big image; the pixels are those of the unclipped layer).
        """
        prepared = self._prepared(camera)
        bounds = _bounds(prepared)
        if bounds is None:
            return None
        x1, y1, x2, y2 = bounds
        x0, y0 = int(math.floor(x1)) - 2, int(math.floor(y1)) - 2
        w, h = int(math.ceil(x2)) + 3 - x0, int(math.ceil(y2)) + 3 - y0
        if clip_px is not None:
            cx1, cy1, cx2, cy2 = (int(v) for v in clip_px)
            nx0, ny0 = max(x0, cx1), max(y0, cy1)
            w, h = min(x0 + w, cx2) - nx0, min(y0 + h, cy2) - ny0
            x0, y0 = nx0, ny0
        if w <= 0 or h <= 0 or (max_area_px is not None and w * h > max_area_px):
            return None
        buf = np.zeros((h, w, 4), np.uint8)
        _draw(buf, prepared, (x0, y0), alpha_channel=True, light=self.light)
        if not buf[..., 3].any():
            return None
        return Layer.from_bgra_u8(buf, x0, y0)

    def draw_into(self, image: np.ndarray, camera: PinholeCamera) -> None:
        """Draw straight onto a BGR (or BGRA) image at image coordinates."""
        _draw(image, self._prepared(camera), (0, 0), alpha_channel=image.shape[2] == 4, light=self.light)

    def draw_mask(self, mask: np.ndarray, camera: PinholeCamera, value: float = 255.0, antialias: bool = False) -> None:
        """Draw every op in one `value` into a single-channel `mask` (region maps, light pools)."""
        _draw(mask, self._prepared(camera), (0, 0), alpha_channel=False, light=None, gray=True, value=value,
              antialias=antialias)

    def draw_shadow(self, mask: np.ndarray, camera: PinholeCamera, sun_dir: tuple[float, float, float]) -> None:
        """Draw the ground shadow of every shadow-casting op into a uint8 `mask` (255 = shadow)."""
        s = np.asarray(sun_dir, np.float64)
        if s[2] <= 0.05:
            return
        flat = Sketch()
        for op in self.ops:
            tiny = (op.kind == "sphere" and op.width_m < 0.09) or (op.kind != "poly" and op.width_m < 0.02)
            if not op.shadow or tiny:
                continue  # too small to show once the shadow is blurred
            pts = op.pts - (op.pts[:, 2:3] / s[2]) * s  # slide each point down the sun ray to Z = 0
            pts[:, 2] = 0.0
            flat.ops.append(_Op(op.kind, pts, (255.0, 255.0, 255.0), 0, op.width_m, op.closed, False, None))
        prepared = flat._prepared(camera)
        if prepared:
            _draw(mask, prepared, (0, 0), alpha_channel=False, light=None, gray=True)


def _bounds(prepared) -> tuple[float, float, float, float] | None:
    if not prepared:
        return None
    uv = np.concatenate([item[1] for item in prepared])
    pads = np.repeat([item[3] if item[0].kind == "sphere" else item[3] / 2.0 + 1.0 for item in prepared],
                     [len(item[1]) for item in prepared])
    x1, y1 = float((uv[:, 0] - pads).min()), float((uv[:, 1] - pads).min())
    x2, y2 = float((uv[:, 0] + pads).max()), float((uv[:, 1] + pads).max())
    if not all(map(math.isfinite, (x1, y1, x2, y2))):
        return None
    return x1, y1, x2, y2


def _draw(buf: np.ndarray, prepared, offset: tuple[int, int], *, alpha_channel: bool, light: Light | None,
          gray: bool = False, value: float = 255.0, antialias: bool = False) -> None:
    if not prepared:
        return
    aa = cv2.LINE_AA if (antialias or not gray) else cv2.LINE_8
    # fixed-point coordinates of every op at once: per-op numpy calls dominate the cost of small sketches
    sizes = [len(item[1]) for item in prepared]
    fixed = _to_fixed(np.concatenate([item[1] for item in prepared]) - np.array(offset, np.float64))
    bounds = np.cumsum([0] + sizes)
    for k, (op, _uv, _depth, size_px, factor) in enumerate(prepared):
        color = value if gray else _color(op.color, factor, alpha_channel)
        pts = fixed[bounds[k]:bounds[k + 1]]
        if op.kind == "poly":
            cv2.fillPoly(buf, [pts], color, aa, _SHIFT)
        elif op.kind in ("line", "polyline"):
            if size_px < 0.35 and not gray:
                continue  # thinner than a third of a pixel: would only add speckle
            thickness = max(1, int(round(max(size_px, op.min_px))))
            if op.kind == "line":
                cv2.line(buf, (int(pts[0, 0]), int(pts[0, 1])), (int(pts[1, 0]), int(pts[1, 1])), color, thickness,
                         aa, _SHIFT)
            else:
                cv2.polylines(buf, [pts], op.closed, color, thickness, aa, _SHIFT)
        else:  # sphere
            radius = max(size_px, 0.6)
            cx, cy = int(pts[0, 0]), int(pts[0, 1])
            cv2.circle(buf, (cx, cy), int(round(radius * _SCALE)), color, -1, aa, _SHIFT)
            if not gray and op.highlight and radius >= 2.5:
                # a soft highlight up and towards the light: reads as a round fruit rather than a flat dot
                hl = _color(op.color, factor * 1.35 + 0.1, alpha_channel)
                hl_center = (int(round(cx - 0.3 * radius * _SCALE)), int(round(cy - 0.35 * radius * _SCALE)))
                cv2.circle(buf, hl_center, int(round(radius * 0.45 * _SCALE)), hl, -1, aa, _SHIFT)
