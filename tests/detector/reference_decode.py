"""Straightforward reference decoders, written as the upstream demos do: a Python loop per anchor or cell,
then per-class greedy NMS on Python lists. Slow, but obviously right; the runtime must agree with them."""

from __future__ import annotations

import math

import numpy as np


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def per_class_nms(rows: list[tuple], iou_threshold: float | dict[int, float]) -> list[tuple]:
    """rows: (x1, y1, x2, y2, score, class_id) → kept rows, by class then by score.

    `iou_threshold`: one IoU, or one per class id."""
    kept = []
    for cls in sorted({r[5] for r in rows}):
        limit = iou_threshold[cls] if isinstance(iou_threshold, dict) else iou_threshold
        pending = sorted((r for r in rows if r[5] == cls), key=lambda r: -r[4])
        while pending:
            best = pending.pop(0)
            kept.append(best)
            pending = [r for r in pending if _iou(best, r) <= limit]
    return kept


def decode_ultralytics_ref(raw: np.ndarray, conf: float) -> list[tuple]:
    rows = []
    for j in range(raw.shape[1]):
        scores = raw[4:, j]
        c = int(np.argmax(scores))
        if scores[c] >= conf:
            cx, cy, w, h = (float(v) for v in raw[:4, j])
            rows.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(scores[c]), c))
    return rows


def decode_yolox_ref(raw: np.ndarray, conf: float, input_hw: tuple[int, int]) -> list[tuple]:
    rows, k = [], 0
    for stride in (8, 16, 32):
        for gy in range(input_hw[0] // stride):
            for gx in range(input_hw[1] // stride):
                r = raw[k]
                k += 1
                c = int(np.argmax(r[5:]))
                score = float(r[4] * r[5 + c])
                if score >= conf:
                    cx, cy = (r[0] + gx) * stride, (r[1] + gy) * stride
                    w, h = math.exp(r[2]) * stride, math.exp(r[3]) * stride
                    rows.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, c))
    return rows


def decode_fastestdet_ref(raw: np.ndarray, conf: float, input_hw: tuple[int, int]) -> list[tuple]:
    """After FastestDet's own demo (test.py): obj^0.6 * cls^0.4, tanh offsets, sigmoid sizes."""
    rows = []
    fm = raw.transpose(1, 2, 0)
    gh, gw = fm.shape[:2]
    for h in range(gh):
        for w in range(gw):
            d = fm[h][w]
            c = int(np.argmax(d[5:]))
            score = (float(d[0]) ** 0.6) * (float(d[5 + c]) ** 0.4)
            if score >= conf:
                bcx = (w + math.tanh(d[1])) / gw
                bcy = (h + math.tanh(d[2])) / gh
                bw, bh = 1 / (1 + math.exp(-d[3])), 1 / (1 + math.exp(-d[4]))
                rows.append(((bcx - bw / 2) * input_hw[1], (bcy - bh / 2) * input_hw[0],
                             (bcx + bw / 2) * input_hw[1], (bcy + bh / 2) * input_hw[0], score, c))
    return rows


def unletterbox_ref(rows: list[tuple], scale_x: float, scale_y: float, pad_x: float, pad_y: float,
                    width: int, height: int) -> list[tuple]:
    out = []
    for x1, y1, x2, y2, s, c in rows:
        fx = lambda v: min(max((v - pad_x) / scale_x, 0.0), width)  # noqa: E731
        fy = lambda v: min(max((v - pad_y) / scale_y, 0.0), height)  # noqa: E731
        out.append((fx(x1), fy(y1), fx(x2), fy(y2), s, c))
    return out
