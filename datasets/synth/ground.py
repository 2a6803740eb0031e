"""Flat things on the ground, drawn through a camera: filled areas (road, pavement, grass) and painted lines."""

from __future__ import annotations

import numpy as np

from datasets.synth.camera import PinholeCamera
from datasets.synth.sketch import BGR, Sketch

__all__ = ["fill_ground", "paint_line", "ground_rect"]


def fill_ground(img: np.ndarray, camera: PinholeCamera, pts_xy: np.ndarray, color: BGR, *,
                regions: np.ndarray | None = None, region_id: int = 0, z_m: float = 0.0) -> None:
    """Fill a ground polygon given by (K, 2) X/Y corners (clipped at the camera's near plane).

    Args:
        img: BGR image drawn into.
        camera: The camera.
        pts_xy: Polygon corners on the ground, metres.
        color: Fill colour.
        regions: Optional uint8 map of ground regions, filled with `region_id` (no anti-aliasing).
        region_id: Value written into `regions`.
        z_m: Height of the surface.
    """
    pts = np.column_stack([np.asarray(pts_xy, np.float64), np.full(len(pts_xy), z_m)])
    sk = Sketch()
    sk.poly(pts, color, shade=False)
    sk.draw_into(img, camera)
    if regions is not None:
        sk.draw_mask(regions, camera, float(region_id))


def paint_line(sk: Sketch, a_xy, b_xy, width_m: float, color: BGR, z_m: float = 0.005) -> None:
    """A painted stripe from `a_xy` to `b_xy`, `width_m` wide, as a ground polygon (so its width is in perspective)."""
    a, b = np.asarray(a_xy, np.float64), np.asarray(b_xy, np.float64)
    d = b - a
    n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * width_m / 2
    quad = np.array([a + n, b + n, b - n, a - n])
    sk.poly(np.column_stack([quad, np.full(4, z_m)]), color, shade=False)


def ground_rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """(4, 2) corners of an axis-aligned ground rectangle."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
