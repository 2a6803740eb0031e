"""Detection accuracy: precision, recall, AP50 and AP50-95 per class, computed as ultralytics computes them.

The method is ultralytics' (``DetectionValidator.match_predictions`` + ``utils.metrics.ap_per_class`` /
``compute_ap``, version 8.4), so `streetwatch eval` and ``yolo val`` can be compared number for number:

1. Per image and IoU threshold (0.50, 0.55, ..., 0.95), predictions are taken in descending confidence;
   each claims the unclaimed ground-truth box of its class with the highest IoU, and is a true positive
   when that IoU reaches the threshold. A second box on an already claimed object is a false positive.
2. Per class, over all images, predictions are sorted by confidence; cumulative TP/FP give the
   precision-recall curve, whose precision envelope (running maximum from the right) is sampled at 101
   recall points (0, 0.01, ..., 1) and integrated with the trapezoid rule.
3. The overall AP is the mean over the classes that occur in the ground truth; classes that are only
   predicted are ignored (as in ultralytics), and counted separately in `EvalReport`.

One quirk of this method is kept on purpose: the curve gets a sentinel point at recall ``r_last`` with
precision 0, so the 101-point sample at recall 1.0 reads 0. A perfect detector therefore scores
AP = 0.995, not 1.0 (ultralytics reports 0.995 for perfect predictions as well).

Precision and recall are reported at one confidence threshold (``conf >= threshold`` is kept, as in the
runtime) at IoU 0.5. ultralytics instead prints them at the confidence that maximises the smoothed mean F1;
pass ``conf_threshold=report.overall.best_f1_conf`` to get the comparable operating point.

AP needs the whole precision-recall curve: run the detector at a very low score threshold (ultralytics
validates at 0.001) and pass every prediction; `conf_threshold` only affects the precision/recall columns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from detector.geometry import box_iou
from detector.types import Detections

__all__ = [
    "IOU_THRESHOLDS",
    "GroundTruth",
    "ClassMetrics",
    "EvalReport",
    "match_predictions",
    "compute_ap",
    "evaluate_detections",
    "recall_at_iou",
    "remap_detections_by_name",
]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10).astype(np.float32)
"""COCO's IoU thresholds 0.50:0.05:0.95; the first one gives AP50. float32 like ultralytics' (and our IoUs)."""

_AP_RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's 101-point interpolation
_EPS = 1e-16  # ultralytics' eps in recall = tp / (n_labels + eps); irrelevant unless n_labels is 0
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # np.trapz was renamed in numpy 2.0


@dataclass(frozen=True)
class GroundTruth:
    """The labelled boxes of one image.

    Attributes:
        xyxy: (M, 4) float32 boxes in image pixels, x1 <= x2 and y1 <= y2.
        class_id: (M,) int32 class ids, in the same class list as the predictions.

    Example:
        >>> gt = GroundTruth.from_cxcywh_norm([[0.5, 0.5, 0.5, 0.25]], [0], width_px=200, height_px=100)
        >>> gt.xyxy.tolist(), len(gt)
        ([[50.0, 37.5, 150.0, 62.5]], 1)
    """

    xyxy: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        class_id = np.asarray(self.class_id).reshape(-1)
        if class_id.shape[0] != xyxy.shape[0]:
            raise ValueError(f"GroundTruth has {xyxy.shape[0]} boxes and {class_id.shape[0]} class ids")
        if class_id.size and (class_id != np.round(class_id)).any():
            raise ValueError("GroundTruth.class_id must hold integers")
        if not np.isfinite(xyxy).all():
            raise ValueError("GroundTruth.xyxy contains NaN or infinite values")
        if (xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any():
            raise ValueError("GroundTruth.xyxy must satisfy x1 <= x2 and y1 <= y2")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id.astype(np.int32))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @classmethod
    def empty(cls) -> "GroundTruth":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32))

    @classmethod
    def from_cxcywh_norm(cls, cxcywh_norm: np.ndarray | Sequence, class_id: np.ndarray | Sequence,
                         width_px: int, height_px: int) -> "GroundTruth":
        """From YOLO label rows (normalised centre and size) and the image's size in pixels."""
        b = np.asarray(cxcywh_norm, np.float64).reshape(-1, 4)
        xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2],
                        axis=1) * [width_px, height_px, width_px, height_px]
        return cls(xyxy, class_id)


@dataclass(frozen=True)
class ClassMetrics:
    """One row of an `EvalReport`: a class, or the overall row (``class_id`` -1, name ``all``).

    Attributes:
        class_id: The class id (-1 for the overall row).
        name: The class name.
        images: Images with at least one ground-truth box of the class; for the overall row, every image
            evaluated (as ``yolo val`` prints it).
        instances: Ground-truth boxes of the class.
        predictions: Predictions of the class at or above the confidence threshold.
        true_positives: Those of them matched to a ground-truth box at IoU 0.5.
        precision: true_positives / predictions at the threshold (0 when nothing is predicted).
        recall: true_positives / instances at the threshold.
        ap50: Average precision at IoU 0.5 over all predictions (101-point, ultralytics).
        ap50_95: Mean of the AP at IoU 0.50, 0.55, ..., 0.95.
        best_f1_conf: The confidence threshold with the highest F1 at IoU 0.5 (the highest such threshold on
            ties); None when no threshold finds anything. For the overall row, the F1 is the mean over classes.
        best_f1: That F1.
    """

    class_id: int
    name: str
    images: int
    instances: int
    predictions: int
    true_positives: int
    precision: float
    recall: float
    ap50: float
    ap50_95: float
    best_f1_conf: float | None
    best_f1: float


@dataclass(frozen=True)
class EvalReport:
    """Accuracy of a detector on a set of labelled images.

    Attributes:
        classes: One row per class present in the ground truth, by class id.
        overall: Means over `classes` (precision, recall, AP) and sums (instances, predictions, ...).
        conf_threshold: The threshold precision and recall were measured at.
        n_images: Images evaluated (with or without boxes).
        predictions_of_absent_classes: Predictions at or above the threshold whose class has no ground truth
            at all; no metric sees them (as in ultralytics), so they are counted here.

    Example:
        >>> report = evaluate_detections([Detections(xyxy=[[0, 0, 10, 10]], confidence=[0.9], class_id=[0])],
        ...                              [GroundTruth([[0, 0, 10, 10]], [0])], ["bicycle"])
        >>> report.overall.ap50, report.classes[0].recall
        (0.995, 1.0)
    """

    classes: list[ClassMetrics]
    overall: ClassMetrics
    conf_threshold: float
    n_images: int
    predictions_of_absent_classes: int

    def to_json(self) -> dict:
        """A JSON-ready dict: settings, the overall row and the per-class rows."""
        return {
            "method": "ultralytics ap_per_class: score-ordered greedy matching per IoU threshold, "
                      "precision envelope, 101-point interpolated AP",
            "iou_thresholds": [round(float(t), 2) for t in IOU_THRESHOLDS],
            "conf_threshold": self.conf_threshold,
            "n_images": self.n_images,
            "predictions_of_absent_classes": self.predictions_of_absent_classes,
            "overall": asdict(self.overall),
            "classes": [asdict(row) for row in self.classes],
        }

    def to_markdown(self) -> str:
        """A table like ``yolo val`` prints: the overall row first, then one row per class.

        Example:
            >>> print(EvalReport([], _overall_row([], None, 0.0), 0.25, 0, 0).to_markdown().splitlines()[2])
            | all | 0 | 0 | 0.000 | 0.000 | 0.000 | 0.000 | – |
        """
        lines = [
            f"| class | images | instances | P@{self.conf_threshold:g} | R@{self.conf_threshold:g} | AP50 "
            f"| AP50-95 | best-F1 conf |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in [self.overall, *self.classes]:
            conf = "–" if row.best_f1_conf is None else f"{row.best_f1_conf:.3f}"
            lines.append(f"| {row.name} | {row.images} | {row.instances} | {row.precision:.3f} | {row.recall:.3f} "
                         f"| {row.ap50:.3f} | {row.ap50_95:.3f} | {conf} |")
        if self.predictions_of_absent_classes:
            lines += ["", f"{self.predictions_of_absent_classes} predictions at conf >= {self.conf_threshold:g} "
                          "are of classes with no ground truth (not counted above)."]
        return "\n".join(lines)


# --- matching and AP (pure) -------------------------------------------------------------------------------


def match_predictions(predictions: Detections, ground_truth: GroundTruth,
                      iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """Which predictions of one image are true positives, per IoU threshold.

    Predictions are visited in descending confidence; each claims the unclaimed ground-truth box of its own
    class with the highest IoU, and is correct when that IoU reaches the threshold (ultralytics'
    ``match_predictions`` without scipy, one threshold at a time).

    Returns:
        (N, T) bool, rows in the order of `predictions`.

    Example:
        >>> p = Detections(xyxy=[[0, 0, 10, 10], [0, 0, 10, 10]], confidence=[0.5, 0.9], class_id=[0, 0])
        >>> match_predictions(p, GroundTruth([[0, 0, 10, 10]], [0]), np.array([0.5]))[:, 0].tolist()
        [False, True]
    """
    thresholds = np.asarray(iou_thresholds, np.float32).reshape(-1)
    n, t = len(predictions), thresholds.shape[0]
    correct = np.zeros((n, t), bool)
    if n == 0 or len(ground_truth) == 0:
        return correct
    order = np.argsort(-predictions.confidence, kind="stable")
    iou = box_iou(ground_truth.xyxy, predictions.xyxy[order])  # (M, N): ground truth rows, predictions columns
    iou = iou * (ground_truth.class_id[:, None] == predictions.class_id[order][None, :])
    claimed = np.zeros((len(ground_truth), t), bool)
    columns = np.arange(t)
    ordered = np.zeros((n, t), bool)
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(claimed, 0.0, iou[:, j, None])  # (M, T): IoU with each unclaimed box
        best = available.argmax(0)
        ordered[j] = available[best, columns] >= thresholds
        claimed[best, columns] |= ordered[j]
    correct[order] = ordered
    return correct


def compute_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under a precision-recall curve: precision envelope, 101-point interpolation (ultralytics `compute_ap`).

    Args:
        recall: Cumulative recall after each prediction, in descending confidence.
        precision: Cumulative precision after each prediction.

    Example:
        >>> compute_ap(np.array([1.0]), np.array([1.0]))  # one perfect prediction: 0.995, see the module notes
        0.995
        >>> compute_ap(np.array([0.0, 1.0]), np.array([0.0, 0.5]))  # a false positive ranked first
        0.4975
    """
    recall = np.asarray(recall, np.float64).reshape(-1)
    precision = np.asarray(precision, np.float64).reshape(-1)
    mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(_trapezoid(np.interp(_AP_RECALL_POINTS, mrec, mpre), _AP_RECALL_POINTS))


def _best_f1(confidence_desc: np.ndarray, tp_cumsum: np.ndarray, n_labels: int,
             candidates: np.ndarray) -> np.ndarray:
    """F1 at each candidate threshold (conf >= threshold kept), for one class sorted by descending confidence."""
    # Number of predictions at or above each threshold; searchsorted needs ascending order, hence the negation.
    kept = np.searchsorted(-confidence_desc, -candidates, side="right")
    tp = np.concatenate(([0.0], tp_cumsum))[kept]  # the leading 0 is "nothing kept"
    precision = tp / np.maximum(kept, 1)
    recall = tp / max(n_labels, 1)
    return np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-16), 0.0)


def _pick_best(candidates_desc: np.ndarray, f1: np.ndarray) -> tuple[float | None, float]:
    if f1.size == 0 or f1.max() <= 0:
        return None, 0.0
    k = int(np.argmax(f1))  # first maximum in descending order: the highest threshold among equals
    return float(candidates_desc[k]), float(f1[k])


def evaluate_detections(
    predictions: Sequence[Detections],
    ground_truths: Sequence[GroundTruth],
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    conf_threshold: float = 0.25,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> EvalReport:
    """Precision, recall, AP50, AP50-95 and the best-F1 threshold per class and overall.

    Args:
        predictions: One `Detections` per image (every prediction: AP needs the low-confidence ones too).
        ground_truths: One `GroundTruth` per image, in the same order and the same class ids.
        class_names: Names by class id for the report (ids are used where missing).
        conf_threshold: Where precision and recall are measured (``conf >= threshold``).
        iou_thresholds: IoU thresholds; the first gives AP50 and the P/R/F1 columns, the mean gives AP50-95.

    Returns:
        An `EvalReport`.

    Example:
        >>> gt = [GroundTruth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
        >>> pred = [Detections(xyxy=[[0, 0, 10, 10]], confidence=[0.8], class_id=[0])]
        >>> r = evaluate_detections(pred, gt, ["bicycle"])
        >>> r.classes[0].recall, r.classes[0].ap50  # one of two bicycles found
        (0.5, 0.495)
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} prediction sets for {len(ground_truths)} ground-truth images")
    if not 0.0 <= conf_threshold <= 1.0:
        raise ValueError(f"conf_threshold must lie within [0, 1], got {conf_threshold}")
    thresholds = np.asarray(iou_thresholds, np.float32).reshape(-1)
    names = class_names if isinstance(class_names, Mapping) else dict(enumerate(class_names or []))

    tp_parts, conf_parts, cls_parts, target_parts, image_class_parts = [], [], [], [], []
    for pred, gt in zip(predictions, ground_truths):
        tp_parts.append(match_predictions(pred, gt, thresholds))
        conf_parts.append(pred.confidence.astype(np.float32))
        cls_parts.append(pred.class_id.astype(np.int64))
        target_parts.append(gt.class_id.astype(np.int64))
        image_class_parts.append(np.unique(gt.class_id).astype(np.int64))
    tp = np.concatenate(tp_parts) if tp_parts else np.zeros((0, thresholds.size), bool)
    conf = np.concatenate(conf_parts) if conf_parts else np.zeros(0, np.float32)
    pred_cls = np.concatenate(cls_parts) if cls_parts else np.zeros(0, np.int64)
    target_cls = np.concatenate(target_parts) if target_parts else np.zeros(0, np.int64)
    image_cls = np.concatenate(image_class_parts) if image_class_parts else np.zeros(0, np.int64)

    # One sort of every prediction, with numpy's default (unstable) algorithm on float32 scores in input order,
    # exactly as ap_per_class sorts: predictions with equal scores then fall in the same order as in
    # ultralytics, and equal inputs give equal AP (tie order changes AP, by up to half a point per tie).
    order = np.argsort(-conf)
    tp, conf, pred_cls = tp[order], conf[order].astype(np.float64), pred_cls[order]

    classes, instances = np.unique(target_cls, return_counts=True)
    all_candidates = np.unique(conf[np.isin(pred_cls, classes)])[::-1]  # every distinct threshold, descending
    rows: list[ClassMetrics] = []
    f1_by_class = []
    for c, n_labels in zip(classes.tolist(), instances.tolist()):
        mask = pred_cls == c
        c_conf, c_tp = conf[mask], tp[mask].astype(np.float64)
        tpc, fpc = c_tp.cumsum(0), (1.0 - c_tp).cumsum(0)
        if c_conf.size:
            recall_curve = tpc / (n_labels + _EPS)
            precision_curve = tpc / (tpc + fpc)
            ap = np.array([compute_ap(recall_curve[:, k], precision_curve[:, k]) for k in range(thresholds.size)])
        else:
            ap = np.zeros(thresholds.size)
        kept = int((c_conf >= conf_threshold).sum())
        hits = int(tpc[kept - 1, 0]) if kept else 0
        class_candidates = np.unique(c_conf)[::-1]
        best_conf, best_f1 = _pick_best(class_candidates, _best_f1(c_conf, tpc[:, 0], n_labels, class_candidates))
        f1_by_class.append(_best_f1(c_conf, tpc[:, 0], n_labels, all_candidates))
        rows.append(ClassMetrics(
            class_id=int(c),
            name=str(names.get(int(c), int(c))),
            images=int((image_cls == c).sum()),
            instances=int(n_labels),
            predictions=kept,
            true_positives=hits,
            precision=hits / kept if kept else 0.0,
            recall=hits / n_labels,
            ap50=float(ap[0]),
            ap50_95=float(ap.mean()),
            best_f1_conf=best_conf,
            best_f1=best_f1,
        ))
    mean_f1 = np.mean(f1_by_class, axis=0) if f1_by_class else np.zeros(0)
    overall_best = _pick_best(all_candidates, mean_f1)
    overall = _overall_row(rows, overall_best[0], overall_best[1], n_images=len(ground_truths))
    absent = int(((conf >= conf_threshold) & ~np.isin(pred_cls, classes)).sum())
    return EvalReport(rows, overall, float(conf_threshold), len(ground_truths), absent)


def _overall_row(rows: Sequence[ClassMetrics], best_f1_conf: float | None, best_f1: float,
                 n_images: int = 0) -> ClassMetrics:
    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    return ClassMetrics(
        class_id=-1,
        name="all",
        images=n_images,
        instances=sum(r.instances for r in rows),
        predictions=sum(r.predictions for r in rows),
        true_positives=sum(r.true_positives for r in rows),
        precision=mean([r.precision for r in rows]),
        recall=mean([r.recall for r in rows]),
        ap50=mean([r.ap50 for r in rows]),
        ap50_95=mean([r.ap50_95 for r in rows]),
        best_f1_conf=best_f1_conf,
        best_f1=best_f1,
    )


def recall_at_iou(predictions: Sequence[Detections], ground_truths: Sequence[GroundTruth], iou: float = 0.5,
                  class_id: int | None = None) -> float:
    """Share of ground-truth boxes found by a prediction of the same class at IoU >= `iou`, one-to-one.

    Every prediction passed counts (filter by confidence first). With `class_id`, only boxes and
    predictions of that class are considered; without, all classes (still class-aware).

    Returns:
        The recall, or NaN when there is no ground-truth box to find.

    Example:
        >>> gt = [GroundTruth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])]
        >>> pred = [Detections(xyxy=[[0, 0, 10, 10], [20, 20, 30, 30]], confidence=[0.9, 0.9], class_id=[0, 0])]
        >>> recall_at_iou(pred, gt), recall_at_iou(pred, gt, class_id=1)
        (0.5, 0.0)
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} prediction sets for {len(ground_truths)} ground-truth images")
    found = total = 0
    for pred, gt in zip(predictions, ground_truths):
        if class_id is not None:
            pred = pred[pred.class_id == class_id]
            gt = GroundTruth(gt.xyxy[gt.class_id == class_id], gt.class_id[gt.class_id == class_id])
        found += int(match_predictions(pred, gt, np.array([iou], np.float32))[:, 0].sum())
        total += len(gt)
    return found / total if total else math.nan


def remap_detections_by_name(detections: Detections, source_names: Sequence[str] | Mapping[int, str],
                             target_names: Sequence[str]) -> Detections:
    """Detections with class ids moved from a model's class list to a dataset's, by name; others dropped.

    A COCO model calls a bicycle class 1 while a one-class bicycle dataset calls it 0: evaluating one against
    the other needs this step.

    Example:
        >>> d = Detections(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.9, 0.8], class_id=[0, 1])
        >>> remap_detections_by_name(d, ["person", "bicycle"], ["bicycle"]).class_id.tolist()
        [0]
    """
    lookup = source_names if isinstance(source_names, Mapping) else dict(enumerate(source_names))
    target = {name: i for i, name in enumerate(target_names)}
    new_ids = np.array([target.get(lookup.get(int(c), ""), -1) for c in detections.class_id], np.int64)
    keep = new_ids >= 0
    kept = detections[keep]
    return Detections(kept.xyxy, kept.confidence, new_ids[keep], kept.tracker_id, dict(kept.data))
