"""Box arithmetic shared by the runtime, tracking, evaluation and geo-merging (pure numpy)."""

from __future__ import annotations

import numpy as np

__all__ = ["box_iou", "box_ios", "nms", "clip_xyxy"]


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(N, M) intersection-over-union of two sets of xyxy boxes.

    Example:
        >>> round(float(box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0]), 3)
        0.333
    """
    a = np.asarray(a_xyxy, np.float32).reshape(-1, 4)
    b = np.asarray(b_xyxy, np.float32).reshape(-1, 4)
    inter = _intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def box_ios(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(N, M) intersection over the smaller of the two boxes: 1.0 when one box lies inside the other.

    Used to merge a box cut by a tile border with the whole box seen in the neighbouring tile, where
    IoU stays low because the cut box is much smaller.
    """
    a = np.asarray(a_xyxy, np.float32).reshape(-1, 4)
    b = np.asarray(b_xyxy, np.float32).reshape(-1, 4)
    inter = _intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-9), 0.0).astype(np.float32)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float | np.ndarray,
    class_id: np.ndarray | None = None,
    max_det: int | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression; class-aware when `class_id` is given.

    Returns indices of the kept boxes, highest score first. Class-awareness comes from offsetting
    each class's boxes into a disjoint region, so one IoU matrix serves every class at once.
    `iou_threshold` is one IoU for every class, or an array indexed by class id (needs `class_id`):
    parked bikes in a row overlap far more than two stalls ever do.

    Example:
        >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]]), np.array([0.9, 0.8, 0.7]),
        ...     0.5, class_id=np.array([0, 0, 1])).tolist()
        [0, 2]
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    n = xyxy.shape[0]
    if n == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy[order]
    if class_id is not None:
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (np.asarray(class_id).reshape(-1)[order].astype(np.float32) * span)[:, None]
    if np.ndim(iou_threshold):
        if class_id is None:
            raise ValueError("nms: per-class IoU thresholds need class_id")
        box_threshold = np.asarray(iou_threshold, np.float32)[np.asarray(class_id).reshape(-1)[order]]
    else:
        box_threshold = np.full(n, float(iou_threshold), np.float32)
    iou = box_iou(boxes, boxes)
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    limit = n if max_det is None else max_det
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= limit:
            break
        suppressed |= iou[i] > box_threshold[i]
    return order[np.asarray(keep, np.int64)]


def clip_xyxy(xyxy: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    out = np.asarray(xyxy, np.float32).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width_px)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height_px)
    return out
