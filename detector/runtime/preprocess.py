"""Frames → input tensors, and the inverse mapping of boxes back to frame pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from detector.runtime.card import InputSpec

__all__ = ["InputTransform", "prepare_image", "make_blob", "to_frame_xyxy"]


@dataclass(frozen=True)
class InputTransform:
    """How one frame was mapped into the input tensor: input_px = frame_px * scale + pad."""

    scale_x: float
    scale_y: float
    pad_x_px: float
    pad_y_px: float
    frame_width_px: int
    frame_height_px: int


def prepare_image(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, InputTransform]:
    """Resize (letterbox or stretch) one BGR uint8 image to the model's input size, still uint8 HxWx3."""
    h, w = image.shape[:2]
    in_w, in_h = spec.width_px, spec.height_px
    if spec.resize == "stretch":
        resized = image if (w, h) == (in_w, in_h) else cv2.resize(image, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        return resized, InputTransform(in_w / w, in_h / h, 0.0, 0.0, w, h)

    r = min(in_w / w, in_h / h)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = in_w - new_w, in_h - new_h
    if spec.align == "center":
        # Same split as ultralytics' LetterBox, so our boxes agree with its predictor to the pixel.
        top, bottom = int(round(dh / 2 - 0.1)), int(round(dh / 2 + 0.1))
        left, right = int(round(dw / 2 - 0.1)), int(round(dw / 2 + 0.1))
    else:
        top, bottom, left, right = 0, dh, 0, dw
    if dw or dh:
        pad = (spec.pad_value,) * 3
        resized = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=pad)
    return resized, InputTransform(new_w / w, new_h / h, float(left), float(top), w, h)


def make_blob(prepared: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack prepared uint8 BGR images into a float32 NCHW tensor in the model's pixel format."""
    # One scaled copy per channel straight into the output: 0.4 ms for 640x640, where
    # cv2.dnn.blobFromImages takes 3 ms and a transpose-then-astype 0.5 ms (measured on the CI CPU).
    n = len(prepared)
    h, w = prepared[0].shape[:2]
    blob = np.empty((n, 3, h, w), np.float32)
    scale = np.float32(spec.scale)
    channels = (2, 1, 0) if spec.channel_order == "rgb" else (0, 1, 2)
    for i, image in enumerate(prepared):
        for c_out, c_in in enumerate(channels):
            np.multiply(image[:, :, c_in], scale, out=blob[i, c_out], casting="unsafe")
    return blob


def to_frame_xyxy(xyxy_input: np.ndarray, t: InputTransform) -> np.ndarray:
    """Map boxes from input-tensor pixels back to frame pixels, clipped to the frame."""
    out = np.empty_like(xyxy_input, dtype=np.float32)
    out[:, [0, 2]] = (xyxy_input[:, [0, 2]] - t.pad_x_px) / t.scale_x
    out[:, [1, 3]] = (xyxy_input[:, [1, 3]] - t.pad_y_px) / t.scale_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, t.frame_width_px)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, t.frame_height_px)
    return out
