"""Raw output tensors → candidate boxes in input-tensor pixels, one function per export format.

Each decoder handles one image's output (batch axis removed) and returns only candidates at or above
`min_score`, before NMS. Everything is vectorised over anchors/cells: a Python loop over 8,400 anchors
would cost more than the network itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Candidates", "decode_ultralytics", "decode_yolox", "decode_fastestdet", "yolox_grid",
           "expected_output_shape"]

YOLOX_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Candidates:
    xyxy: np.ndarray  # (K, 4) float32, input-tensor pixels
    score: np.ndarray  # (K,) float32
    class_id: np.ndarray  # (K,) int32


def _best_class(class_scores: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of (N, C) scores: indices of rows whose best class reaches min_score, that class, its score."""
    class_id = class_scores.argmax(axis=1)
    score = np.take_along_axis(class_scores, class_id[:, None], axis=1)[:, 0]
    keep = np.flatnonzero(score >= min_score)
    return keep, class_id[keep].astype(np.int32), score[keep].astype(np.float32)


def _cxcywh_to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    half = cxcywh[:, 2:4] / 2
    return np.concatenate([cxcywh[:, 0:2] - half, cxcywh[:, 0:2] + half], axis=1).astype(np.float32)


def decode_ultralytics(raw: np.ndarray, min_score: float) -> Candidates:
    """ultralytics YOLOv8/YOLO11 detect head: (4 + nc, N) rows cx, cy, w, h, class scores (sigmoid)."""
    # Find the candidates on the (nc, N) class block first and transpose only those columns:
    # transposing the whole (84, 8400) array costs more than the rest of the decode.
    cls = raw[4:]
    best = cls.max(axis=0)
    cols = np.flatnonzero(best >= min_score)
    sub = raw[:, cols].T
    class_id = sub[:, 4:].argmax(axis=1).astype(np.int32)
    return Candidates(_cxcywh_to_xyxy(sub[:, :4]), best[cols].astype(np.float32), class_id)


def yolox_grid(input_hw: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) cell xy offsets and (N, 1) strides in YOLOX's anchor order (stride-major, row-major)."""
    grids, stride_col = [], []
    for stride in strides:
        gh, gw = input_hw[0] // stride, input_hw[1] // stride
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        stride_col.append(np.full((gh * gw, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(stride_col).astype(np.float32)


def decode_yolox(raw: np.ndarray, min_score: float, grid: np.ndarray, strides: np.ndarray) -> Candidates:
    """YOLOX head exported without in-graph decode: (N, 5 + nc) rows of grid-relative x, y, log w, log h,
    objectness and class probabilities (both already sigmoided). Score = objectness × class probability."""
    scores = raw[:, 5:] * raw[:, 4:5]
    keep, class_id, score = _best_class(scores, min_score)
    sub = raw[keep]
    xy = (sub[:, 0:2] + grid[keep]) * strides[keep]
    wh = np.exp(sub[:, 2:4]) * strides[keep]
    return Candidates(_cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1)), score, class_id)


def decode_fastestdet(raw: np.ndarray, min_score: float, input_hw: tuple[int, int]) -> Candidates:
    """FastestDet head: (5 + nc, H, W) maps of objectness (sigmoid), box regression (raw: tanh offsets of the
    centre within its cell, sigmoid of width and height as a fraction of the image) and class softmax.
    Score = obj^0.6 × cls^0.4, as in FastestDet's reference post-processing."""
    c, gh, gw = raw.shape
    flat = raw.reshape(c, gh * gw)
    cls = flat[5:]
    class_id = cls.argmax(axis=0)
    cls_best = cls[class_id, np.arange(gh * gw)]
    score = np.power(np.clip(flat[0], 0, None), 0.6) * np.power(np.clip(cls_best, 0, None), 0.4)
    keep = np.flatnonzero(score >= min_score)
    ys, xs = np.divmod(keep, gw)
    cx = (xs + np.tanh(flat[1, keep])) / gw * input_hw[1]
    cy = (ys + np.tanh(flat[2, keep])) / gh * input_hw[0]
    bw = 1 / (1 + np.exp(-flat[3, keep])) * input_hw[1]
    bh = 1 / (1 + np.exp(-flat[4, keep])) * input_hw[0]
    xyxy = _cxcywh_to_xyxy(np.stack([cx, cy, bw, bh], axis=1))
    return Candidates(xyxy, score[keep].astype(np.float32), class_id[keep].astype(np.int32))


def expected_output_shape(fmt: str, num_classes: int, input_hw: tuple[int, int]) -> tuple[int | None, ...]:
    """The output shape (batch axis first, None = any) a format implies for a card's classes and input size."""
    h, w = input_hw
    if fmt == "ultralytics":
        return (None, 4 + num_classes, None)
    if fmt == "yolox":
        return (None, sum((h // s) * (w // s) for s in YOLOX_STRIDES), 5 + num_classes)
    if fmt == "fastestdet":
        return (None, 5 + num_classes, h // 16, w // 16)
    raise ValueError(f"unknown format {fmt!r}")


# --- dense decoders: every anchor's box and every class score (for evaluation with multi-label NMS) -----

def dense_ultralytics(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy input pixels and (N, nc) class scores of every anchor."""
    return _cxcywh_to_xyxy(raw[:4].T), raw[4:].T


def dense_yolox(raw: np.ndarray, grid: np.ndarray, strides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xy = (raw[:, 0:2] + grid) * strides
    wh = np.exp(raw[:, 2:4]) * strides
    return _cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1)), raw[:, 5:] * raw[:, 4:5]


def dense_fastestdet(raw: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    c, gh, gw = raw.shape
    flat = raw.reshape(c, gh * gw)
    ys, xs = np.divmod(np.arange(gh * gw), gw)
    cx = (xs + np.tanh(flat[1])) / gw * input_hw[1]
    cy = (ys + np.tanh(flat[2])) / gh * input_hw[0]
    bw = 1 / (1 + np.exp(-flat[3])) * input_hw[1]
    bh = 1 / (1 + np.exp(-flat[4])) * input_hw[0]
    scores = np.power(np.clip(flat[0], 0, None), 0.6)[:, None] * np.power(np.clip(flat[5:].T, 0, None), 0.4)
    return _cxcywh_to_xyxy(np.stack([cx, cy, bw, bh], axis=1)), scores
