"""Compositing layers onto a scene while keeping track of how much of each labelled object stays visible.

Every layer pasted after a labelled object hides part of it; the compositor keeps each labelled object's
visible coverage so labels are the boxes of what a viewer can see. Objects hidden by others beyond one
threshold (40 % must show) or cut by the frame beyond another (25 % must be inside) lose their label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.synth.sketch import Layer

__all__ = ["Compositor", "LabelledObject"]


@dataclass
class LabelledObject:
    """A pasted object that may get a label.

    Attributes:
        class_id: Class index.
        x0_px: Left edge of `visible` in the image.
        y0_px: Top edge of `visible`.
        visible: (h, w) float32 coverage still visible (the on-image part of the layer).
        total_alpha: Coverage of the whole layer, on and off the image.
        on_frame_alpha: Coverage of the part inside the image.
        tag: Free text for metadata (e.g. ``"real_crop"``, ``"drawn"``).
    """

    class_id: int
    x0_px: int
    y0_px: int
    visible: np.ndarray
    total_alpha: float
    on_frame_alpha: float
    tag: str = ""

    @property
    def visible_fraction(self) -> float:
        """Share of the whole object that shows (neither hidden nor outside the frame)."""
        return float(self.visible.sum()) / max(self.total_alpha, 1e-6)

    @property
    def on_frame_fraction(self) -> float:
        """Share of the object inside the frame."""
        return self.on_frame_alpha / max(self.total_alpha, 1e-6)

    @property
    def unoccluded_fraction(self) -> float:
        """Share of the in-frame part not hidden by things in front of it."""
        return float(self.visible.sum()) / max(self.on_frame_alpha, 1e-6)


@dataclass
class Compositor:
    """A float32 BGR canvas, an emission map (self-lit pixels that night darkening spares) and labels.

    Example:
        >>> comp = Compositor(np.zeros((10, 10, 3), np.uint8))
        >>> _ = comp.paste(Layer.from_straight(np.full((4, 4, 3), 200), np.ones((4, 4)), 2, 2), class_id=0)
        >>> comp.labels()[0].tolist()
        [[2.0, 2.0, 6.0, 6.0]]
    """

    image: np.ndarray
    emission: np.ndarray | None = None
    objects: list[LabelledObject] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image).astype(np.float32)
        if self.emission is None:
            self.emission = np.zeros(self.image.shape[:2], np.float32)

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    def _clip(self, layer: Layer) -> tuple[slice, slice, slice, slice] | None:
        x0, y0 = layer.x0_px, layer.y0_px
        ix1, iy1 = max(0, x0), max(0, y0)
        ix2, iy2 = min(self.width_px, x0 + layer.width_px), min(self.height_px, y0 + layer.height_px)
        if ix1 >= ix2 or iy1 >= iy2:
            return None
        return slice(iy1, iy2), slice(ix1, ix2), slice(iy1 - y0, iy2 - y0), slice(ix1 - x0, ix2 - x0)

    def paste(self, layer: Layer | None, class_id: int | None = None, *, emissive: float = 0.0, tag: str = "",
              draw: bool = True) -> int | None:
        """Composite `layer` over the canvas ("over" operator) and hide what it covers.

        Args:
            layer: The pixels; None pastes nothing.
            class_id: Label class of the object, or None for distractors (they still hide objects behind).
            emissive: 0..1, how self-lit the layer is (lamps, lit signs keep their brightness at night).
            tag: Free text kept with a labelled object.
            draw: False lays the object out without drawing it (renders "without" an object for tests).

        Returns:
            Index into `objects` for labelled objects, else None.
        """
        if layer is None or not draw:
            return None
        clip = self._clip(layer)
        if clip is None:
            if class_id is not None:
                self.objects.append(LabelledObject(class_id, layer.x0_px, layer.y0_px, np.zeros((0, 0), np.float32),
                                                   float(layer.alpha.sum()), 0.0, tag))
                return len(self.objects) - 1
            return None
        iy, ix, ly, lx = clip
        a = layer.alpha[ly, lx]
        region = self.image[iy, ix]
        region *= (1.0 - a)[..., None]
        region += layer.bgr[ly, lx]
        emission = self.emission[iy, ix]
        emission *= 1.0 - a
        if emissive:
            emission += emissive * a
        y1, x1 = iy.start, ix.start
        y2, x2 = iy.stop, ix.stop
        for obj in self.objects:
            h, w = obj.visible.shape
            oy1, ox1 = max(y1, obj.y0_px), max(x1, obj.x0_px)
            oy2, ox2 = min(y2, obj.y0_px + h), min(x2, obj.x0_px + w)
            if oy1 < oy2 and ox1 < ox2:
                obj.visible[oy1 - obj.y0_px:oy2 - obj.y0_px, ox1 - obj.x0_px:ox2 - obj.x0_px] *= \
                    1.0 - a[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1]
        if class_id is None:
            return None
        self.objects.append(LabelledObject(class_id, ix.start, iy.start, a.copy(), float(layer.alpha.sum()),
                                           float(a.sum()), tag))
        return len(self.objects) - 1

    def darken(self, shade: np.ndarray, strength: float) -> None:
        """Multiply the canvas by ``1 - strength * shade`` (shade (H, W) float32 0..1): shadows on the ground."""
        self.image *= (1.0 - strength * shade)[..., None]

    def labels(self, min_visible_fraction: float = 0.4, min_on_frame_fraction: float = 0.25, min_size_px: float = 4.0,
               coverage_threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """Boxes of the visible part of each labelled object that is visible enough.

        Args:
            min_visible_fraction: Drop objects whose in-frame part is hidden by others beyond this share.
            min_on_frame_fraction: Drop objects cut by the frame so that less than this share is inside.
            min_size_px: Drop boxes narrower or lower than this.
            coverage_threshold: A pixel counts as part of the object from this coverage on.

        Returns:
            ``(xyxy (N, 4) float32, class_id (N,) int32, visible_fraction (N,) float32, object indices)``;
            the visible fraction is of the whole object.
        """
        boxes, classes, fractions, kept = [], [], [], []
        for i, obj in enumerate(self.objects):
            if obj.visible.size == 0 or obj.on_frame_fraction < min_on_frame_fraction \
                    or obj.unoccluded_fraction < min_visible_fraction:
                continue
            mask = obj.visible >= coverage_threshold
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size == 0:
                continue
            x1, x2 = obj.x0_px + cols[0], obj.x0_px + cols[-1] + 1
            y1, y2 = obj.y0_px + rows[0], obj.y0_px + rows[-1] + 1
            if x2 - x1 < min_size_px or y2 - y1 < min_size_px:
                continue
            boxes.append([x1, y1, x2, y2])
            classes.append(obj.class_id)
            fractions.append(obj.visible_fraction)
            kept.append(i)
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int32),
                np.asarray(fractions, np.float32), kept)

    def to_uint8(self) -> np.ndarray:
        return cv2.convertScaleAbs(self.image)
