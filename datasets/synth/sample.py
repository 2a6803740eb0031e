"""`SceneSample`: one rendered image with its labels and what is known about the scene."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.types import Detections

__all__ = ["SceneSample", "yolo_label_text"]

_DECIMALS = 6


def yolo_label_text(xyxy_px: np.ndarray, class_id: np.ndarray, width_px: int, height_px: int) -> str:
    """YOLO label lines (``class cx cy w h``, normalised, 6 decimals) of pixel boxes clipped to the image.

    Example:
        >>> yolo_label_text(np.array([[0, 0, 64, 32]], np.float32), np.array([1]), 128, 64)
        '1 0.250000 0.250000 0.500000 0.500000\\n'
    """
    boxes = np.asarray(xyxy_px, np.float64).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width_px)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height_px)
    lines = []
    for c, (x1, y1, x2, y2) in zip(np.asarray(class_id).reshape(-1), boxes):
        if x2 <= x1 or y2 <= y1:
            continue
        cx, cy = (x1 + x2) / 2 / width_px, (y1 + y2) / 2 / height_px
        w, h = (x2 - x1) / width_px, (y2 - y1) / height_px
        lines.append(f"{int(c)} {cx:.{_DECIMALS}f} {cy:.{_DECIMALS}f} {w:.{_DECIMALS}f} {h:.{_DECIMALS}f}\n")
    return "".join(lines)


@dataclass
class SceneSample:
    """A synthetic image and its ground truth.

    Attributes:
        image: (H, W, 3) uint8 BGR, before JPEG compression.
        xyxy: (N, 4) float32 boxes in pixels, clipped to the image: the visible part of each object.
        class_id: (N,) int32 indices into `class_names`.
        class_names: The class list of the scene's kind.
        visible_fraction: (N,) float32 share of each object not hidden by others or cut by the frame.
        jpeg_quality: Quality the image should be written at (compression is part of the augmentation).
        zones: Named polygons in normalised image coordinates (x/W, y/H), e.g. painted bike-parking boxes
            (``{"kind": "bike_parking", "polygon_norm": [[x, y], ...]}``).
        meta: Scene facts: lighting, background source, camera parameters, object tags.
    """

    image: np.ndarray
    xyxy: np.ndarray
    class_id: np.ndarray
    class_names: list[str]
    visible_fraction: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    jpeg_quality: int = 90
    zones: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def yolo_labels(self) -> str:
        """The label file text of this image."""
        return yolo_label_text(self.xyxy, self.class_id, self.width_px, self.height_px)

    def to_detections(self) -> Detections:
        """The labels as `Detections` with confidence 1 and a ``class_name`` column (for pipeline tests)."""
        names = np.asarray([self.class_names[int(c)] for c in self.class_id], dtype=object)
        return Detections(xyxy=self.xyxy, confidence=np.ones(len(self), np.float32), class_id=self.class_id,
                          data={"class_name": names} if len(self) else {})
