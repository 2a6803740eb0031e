"""Drawing detections, tracks and zones on frames (evidence snapshots, --save-annotated, previews)."""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from detector.types import Detections

__all__ = ["color_for", "draw_detections", "draw_polygon"]

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
            (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
            (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203)]


def color_for(index: int) -> tuple[int, int, int]:
    """A stable BGR colour per class or track id."""
    return _PALETTE[int(index) % len(_PALETTE)]


def draw_detections(image: np.ndarray, detections: Detections, names: Sequence[str] | Mapping[int, str] | None = None,
                    thickness_px: int | None = None) -> np.ndarray:
    """A copy of `image` with each box, its class name, score and track id drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    thickness = thickness_px or max(1, round(min(h, w) / 360))
    font_scale = max(0.4, min(h, w) / 1200)
    labels = detections.class_names(names) if names is not None else [str(int(c)) for c in detections.class_id]
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        color = color_for(detections.class_id[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{labels[i]} {detections.confidence[i]:.2f}"
        if detections.tracker_id is not None:
            text = f"#{int(detections.tracker_id[i])} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + 1), color, -1)
        cv2.putText(out, text, (x1 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


def draw_polygon(image: np.ndarray, polygon_norm: np.ndarray, color: tuple[int, int, int], label: str | None = None,
                 fill_alpha: float = 0.2) -> np.ndarray:
    """A copy of `image` with a normalised (0..1) polygon outlined and lightly filled."""
    out = image.copy()
    h, w = out.shape[:2]
    pts = np.round(np.asarray(polygon_norm, np.float64) * [w, h]).astype(np.int32).reshape(-1, 1, 2)
    if fill_alpha > 0:
        overlay = out.copy()
        cv2.fillPoly(overlay, [pts], color)
        out = cv2.addWeighted(overlay, fill_alpha, out, 1 - fill_alpha, 0)
    cv2.polylines(out, [pts], True, color, max(1, round(min(h, w) / 360)), cv2.LINE_AA)
    if label:
        x, y = pts[:, 0, 0].min(), pts[:, 0, 1].min()
        cv2.putText(out, label, (int(x) + 3, int(y) + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return out
