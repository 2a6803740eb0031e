"""Detection metrics on hand-made prediction sets whose numbers are worked out by hand below.

How ultralytics' 101-point AP turns a precision-recall curve into a number (what `compute_ap` does):
    mrec = [0, r1..rn, rn, 1], mpre = [1, p1..pn, 0, 0]; mpre := running max from the right (the envelope);
    AP = trapezoid integral of interp(x, mrec, mpre) over x = 0, 0.01, ..., 1.
At x = 1.0 the interpolation lands on the sentinel (precision 0), so when recall reaches 1 the last 0.01 step
contributes only half its height: a perfect detector scores 0.99 + 0.005 = 0.995 (ultralytics reports
0.995 too). Where recall stops at r < 1, the curve drops to 0 at x = r itself.

Confidences are multiples of 1/8 so that float32 stores them exactly and thresholds compare exactly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detector.evaluation import (
    IOU_THRESHOLDS,
    EvalReport,
    GroundTruth,
    compute_ap,
    evaluate_detections,
    match_predictions,
    recall_at_iou,
    remap_detections_by_name,
)
from detector.types import Detections
from tests.conftest import make_detections

A = (0, 0, 100, 100)  # two ground-truth boxes far apart
B = (200, 200, 300, 300)
FAR = (400, 0, 450, 50)  # overlaps nothing
A_IOU_072 = (0, 0, 100, 72)  # IoU with A = 7200 / 10000 = 0.72: correct at 0.50..0.70, wrong at 0.75..0.95


def gt(*rows: tuple) -> GroundTruth:
    """Ground truth from rows of (x1, y1, x2, y2, class_id)."""
    if not rows:
        return GroundTruth.empty()
    arr = np.asarray(rows, np.float64)
    return GroundTruth(arr[:, :4], arr[:, 4].astype(int))


def pred(*rows: tuple) -> Detections:
    """Predictions from rows of (x1, y1, x2, y2, confidence, class_id)."""
    return make_detections(list(rows))


# (name, predictions per image, ground truth per image, expected class-0 row fields)
SINGLE_CLASS_CASES = [
    # One box found exactly in each of two images. tp = [1, 1]; recall [0.5, 1], precision [1, 1]:
    # envelope 1 up to recall 1, sentinel 0 at x = 1.0 -> 0.99 + 0.01 * (1 + 0) / 2 = 0.995 at every IoU.
    ("perfect", [pred((*A, 0.875, 0)), pred((*B, 0.75, 0))], [gt((*A, 0)), gt((*B, 0))],
     dict(precision=1.0, recall=1.0, ap50=0.995, ap50_95=0.995, best_f1_conf=0.75, best_f1=1.0, true_positives=2)),
    # A false positive ranked above the only true positive. tp = [0, 1]: recall [0, 1], precision [0, 0.5];
    # envelope 0.5 for every x < 1, 0 at x = 1 -> 0.99 * 0.5 + 0.01 * (0.5 + 0) / 2 = 0.4975.
    # F1 at 0.875: nothing found (0); at 0.75: P 0.5, R 1 -> 2/3.
    ("false positive ranked first", [pred((*FAR, 0.875, 0), (*A, 0.75, 0))], [gt((*A, 0))],
     dict(precision=0.5, recall=1.0, ap50=0.4975, ap50_95=0.4975, best_f1_conf=0.75, best_f1=2 / 3,
          predictions=2, true_positives=1)),
    # The same false positive ranked below the true positive costs nothing in AP: the envelope is 1 up to
    # recall 1 -> 0.995; precision at the 0.25 threshold is still 1/2, and the best threshold excludes it.
    ("false positive ranked last", [pred((*A, 0.875, 0), (*FAR, 0.75, 0))], [gt((*A, 0))],
     dict(precision=0.5, recall=1.0, ap50=0.995, best_f1_conf=0.875, best_f1=1.0)),
    # One of two objects found. recall [0.5], precision [1]: envelope 1 on x < 0.5, 0 from x = 0.5 on
    # -> 0.49 + 0.01 * (1 + 0) / 2 = 0.495. Recall 0.5, precision 1.
    ("missed object", [pred((*A, 0.75, 0))], [gt((*A, 0), (*B, 0))],
     dict(precision=1.0, recall=0.5, ap50=0.495, ap50_95=0.495, best_f1_conf=0.75, best_f1=2 / 3)),
    # A second box on an object already claimed is a false positive. tp = [1, 0]: recall [1, 1], precision
    # [1, 0.5]; the envelope stays 1 up to recall 1 -> AP 0.995; at threshold 0.25, P = 1/2, R = 1.
    ("duplicate is a false positive", [pred((*A, 0.875, 0), (*A, 0.75, 0))], [gt((*A, 0))],
     dict(precision=0.5, recall=1.0, ap50=0.995, predictions=2, true_positives=1, best_f1_conf=0.875)),
    # Nothing predicted: every number is 0 and no threshold is best.
    ("no predictions", [pred()], [gt((*A, 0))],
     dict(precision=0.0, recall=0.0, ap50=0.0, ap50_95=0.0, best_f1_conf=None, best_f1=0.0, predictions=0)),
    # A false positive on an image with no ground truth ranks above the true positive on the other image:
    # same curve as "false positive ranked first" -> 0.4975; the empty image counts in n_images only.
    ("false positive on an empty image", [pred((*A, 0.75, 0)), pred((*FAR, 0.875, 0))], [gt((*A, 0)), gt()],
     dict(images=1, precision=0.5, recall=1.0, ap50=0.4975)),
    # IoU 0.72 is correct at thresholds 0.50..0.70 (5 of 10): AP 0.995 there, 0 above ->
    # AP50 = 0.995, AP50-95 = 5 * 0.995 / 10 = 0.4975.
    ("loose box", [pred((*A_IOU_072, 0.75, 0))], [gt((*A, 0))], dict(ap50=0.995, ap50_95=0.4975, recall=1.0)),
    # TP (0.875), FP (0.75), TP (0.625) on two objects. recall [0.5, 0.5, 1], precision [1, 0.5, 2/3];
    # envelope [1, 1, 2/3, 2/3, 0, 0] over mrec [0, 0.5, 0.5, 1, 1, 1]: 1 on x < 0.5, 2/3 on 0.5 <= x < 1,
    # 0 at 1 -> 0.49 * 1 + 0.01 * (1 + 2/3) / 2 + 0.49 * 2/3 + 0.01 * (2/3 + 0) / 2 = 0.828333...
    # F1 by threshold: 0.875 -> P 1, R 1/2: 2/3; 0.75 -> 1/2, 1/2: 1/2; 0.625 -> 2/3, 1: 0.8 (best).
    ("worked three-prediction curve", [pred((*A, 0.875, 0), (*FAR, 0.75, 0), (*B, 0.625, 0))],
     [gt((*A, 0), (*B, 0))],
     dict(ap50=0.49 + 0.01 * (5 / 6) + 0.49 * (2 / 3) + 0.01 / 3, precision=2 / 3, recall=1.0,
          best_f1_conf=0.625, best_f1=0.8)),
    # Precision and recall are measured at conf >= 0.25: a true positive at 0.125 counts for AP, not for P/R.
    ("below the threshold", [pred((*A, 0.125, 0))], [gt((*A, 0))],
     dict(ap50=0.995, precision=0.0, recall=0.0, predictions=0, best_f1_conf=0.125)),
]


@pytest.mark.parametrize("name, preds, gts, expected", SINGLE_CLASS_CASES, ids=[c[0] for c in SINGLE_CLASS_CASES])
def test_single_class_metrics_match_hand_computation(name, preds, gts, expected):
    report = evaluate_detections(preds, gts, ["bicycle"], conf_threshold=0.25)
    row = report.classes[0]
    assert [r.name for r in report.classes] == ["bicycle"]
    for field, value in expected.items():
        actual = getattr(row, field)
        if value is None:
            assert actual is None, f"{name}: {field} = {actual}, expected None"
        else:
            assert actual == pytest.approx(value, abs=1e-9), f"{name}: {field} = {actual}, expected {value}"


def test_class_mix_up_scores_zero_for_both_classes():
    # Both objects are found where they are but with each other's class: no true positive anywhere.
    report = evaluate_detections([pred((*A, 0.75, 1), (*B, 0.75, 0))], [gt((*A, 0), (*B, 1))], ["car", "bike"])
    assert [(r.name, r.ap50, r.recall, r.precision) for r in report.classes] == [
        ("car", 0.0, 0.0, 0.0), ("bike", 0.0, 0.0, 0.0)]
    assert report.overall.ap50 == 0.0


def test_prediction_of_a_class_absent_from_ground_truth_is_counted_apart():
    # Class 1 has no ground truth: like ultralytics, no row and no effect on the mean, but it is reported.
    report = evaluate_detections([pred((*A, 0.75, 0), (*B, 0.75, 1), (*FAR, 0.125, 1))], [gt((*A, 0))])
    assert [r.class_id for r in report.classes] == [0]
    assert report.overall.ap50 == pytest.approx(0.995)
    assert report.predictions_of_absent_classes == 1  # the 0.125 one is below the threshold


def test_overall_row_is_the_mean_over_classes_present_in_ground_truth():
    # Class 0 perfect (AP50 0.995, R 1); class 1 one of two found (AP50 0.495, R 0.5).
    preds = [pred((*A, 0.875, 0), (*B, 0.625, 1))]
    gts = [gt((*A, 0), (*B, 1), (*FAR, 1))]
    report = evaluate_detections(preds, gts, {0: "stall", 1: "bicycle"})
    o = report.overall
    assert (o.name, o.class_id, o.images, o.instances) == ("all", -1, 1, 3)
    assert o.ap50 == pytest.approx((0.995 + 0.495) / 2)
    assert o.recall == pytest.approx(0.75)
    assert o.precision == pytest.approx(1.0)
    # Mean F1 over classes by threshold: 0.875 -> (1 + 0) / 2; 0.625 -> (1 + 2/3) / 2 = 5/6 (best).
    assert o.best_f1_conf == 0.625 and o.best_f1 == pytest.approx(5 / 6)


def test_no_ground_truth_at_all_gives_an_empty_report():
    report = evaluate_detections([pred((*A, 0.75, 0))], [gt()])
    assert report.classes == [] and report.overall.ap50 == 0.0 and report.overall.best_f1_conf is None
    assert report.predictions_of_absent_classes == 1 and report.n_images == 1


def test_no_images_at_all_gives_an_empty_report():
    report = evaluate_detections([], [])
    assert report.classes == [] and report.n_images == 0


# --- matching ----------------------------------------------------------------------------------------------


def test_matching_is_greedy_by_score_per_iou_threshold():
    # A (0.875) overlaps the object with IoU 0.6, B (0.75) with IoU 0.96. At 0.50-0.60 A comes first and
    # claims it (B is a false positive); from 0.65 on A is too loose, so B claims it.
    a_iou_06 = (0, 0, 100, 60)
    b_iou_096 = (0, 0, 100, 96)
    correct = match_predictions(pred((*b_iou_096, 0.75, 0), (*a_iou_06, 0.875, 0)), gt((*A, 0)))
    assert correct.shape == (2, 10)
    assert correct[1].tolist() == [True, True, True] + [False] * 7  # rows keep the input order
    assert correct[0].tolist() == [False, False, False] + [True] * 7


def test_matching_prefers_the_unclaimed_box_with_the_highest_iou():
    # Two overlapping objects. The first prediction has IoU 0.739 with `left` and 0.905 with `right`: it must
    # claim `right`, leaving `left` to the second prediction (IoU 1.0). Claiming the first box above the
    # threshold instead would leave the second with `right` at IoU 0.667 < 0.7, a false positive.
    left, right = (0, 0, 100, 100), (20, 0, 120, 100)
    p = pred((15, 0, 115, 100, 0.875, 0), (*left, 0.75, 0))
    correct = match_predictions(p, gt((*left, 0), (*right, 0)), np.array([0.7], np.float32))
    assert correct[:, 0].tolist() == [True, True]


def test_iou_thresholds_are_cocos():
    assert np.allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


@pytest.mark.parametrize(
    "recall, precision, ap",
    [
        ([1.0], [1.0], 0.995),
        ([0.0, 1.0], [0.0, 0.5], 0.4975),
        ([0.5], [1.0], 0.495),
        ([0.0], [0.0], 0.0),
        ([0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 1.0, 1.0], 0.995),
        # The sentinel (recall 0, precision 1) is joined to the first point (0.5, 0.5) by a straight line:
        # 0.5 * (1 + 0.5) / 2 = 0.375 on [0, 0.5], 0.49 * 0.5 = 0.245 on [0.5, 0.99], 0.0025 on the last step.
        ([0.5, 1.0], [0.5, 0.5], 0.6225),
    ],
)
def test_compute_ap_table(recall, precision, ap):
    assert compute_ap(np.array(recall), np.array(precision)) == pytest.approx(ap, abs=1e-12)


# --- recall_at_iou -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preds, gts, iou, class_id, expected",
    [
        ([pred((*A, 0.75, 0))], [gt((*A, 0), (*B, 0))], 0.5, None, 0.5),
        ([pred((*A_IOU_072, 0.75, 0))], [gt((*A, 0))], 0.7, None, 1.0),
        ([pred((*A_IOU_072, 0.75, 0))], [gt((*A, 0))], 0.75, None, 0.0),
        ([pred((*A, 0.75, 0), (*A, 0.5, 0))], [gt((*A, 0), (*B, 0))], 0.5, None, 0.5),  # one-to-one
        ([pred((*A, 0.75, 1))], [gt((*A, 0))], 0.5, None, 0.0),  # wrong class never matches
        ([pred((*A, 0.75, 0), (*B, 0.75, 0))], [gt((*A, 0), (*B, 1))], 0.5, 1, 0.0),
        ([pred((*A, 0.75, 0)), pred()], [gt((*A, 0)), gt((*B, 0))], 0.5, 0, 0.5),
    ],
)
def test_recall_at_iou_table(preds, gts, iou, class_id, expected):
    assert recall_at_iou(preds, gts, iou=iou, class_id=class_id) == pytest.approx(expected)


def test_recall_at_iou_without_ground_truth_is_nan():
    assert math.isnan(recall_at_iou([pred((*A, 0.75, 0))], [gt()]))


# --- inputs and outputs ------------------------------------------------------------------------------------


def test_ground_truth_from_yolo_rows_is_in_pixels():
    g = GroundTruth.from_cxcywh_norm([[0.25, 0.5, 0.5, 0.5]], [3], width_px=400, height_px=200)
    assert g.xyxy.tolist() == [[0.0, 50.0, 200.0, 150.0]] and g.class_id.tolist() == [3]


@pytest.mark.parametrize(
    "xyxy, class_id, message",
    [
        ([[0, 0, 10, 10]], [0, 1], "1 boxes and 2 class ids"),
        ([[10, 0, 0, 10]], [0], "x1 <= x2"),
        ([[0, 0, np.nan, 10]], [0], "NaN"),
        ([[0, 0, 10, 10]], [0.5], "integers"),
    ],
)
def test_ground_truth_rejects_bad_input(xyxy, class_id, message):
    with pytest.raises(ValueError, match=message):
        GroundTruth(np.asarray(xyxy, np.float64), np.asarray(class_id))


def test_evaluate_rejects_unequal_image_counts():
    with pytest.raises(ValueError, match="1 prediction sets for 2"):
        evaluate_detections([pred()], [gt(), gt()])


def test_remap_detections_by_name_moves_ids_and_drops_other_classes():
    coco_like = pred((*A, 0.75, 1), (*B, 0.5, 0), (*FAR, 0.625, 3))
    out = remap_detections_by_name(coco_like, {0: "person", 1: "bicycle", 3: "motorcycle"}, ["motorcycle", "bicycle"])
    assert out.class_id.tolist() == [1, 0]
    assert out.confidence.tolist() == [0.75, 0.625]


def _missed_object_report() -> EvalReport:
    return evaluate_detections([pred((*A, 0.75, 0))], [gt((*A, 0), (*B, 0))], ["bicycle"])


def test_report_to_json_is_serialisable_and_complete():
    data = json.loads(json.dumps(_missed_object_report().to_json()))
    assert data["overall"]["name"] == "all" and data["overall"]["recall"] == 0.5
    row = data["classes"][0]
    assert {k: row[k] for k in ("class_id", "name", "images", "instances", "predictions", "true_positives")} == {
        "class_id": 0, "name": "bicycle", "images": 1, "instances": 2, "predictions": 1, "true_positives": 1}
    assert [row[k] for k in ("precision", "recall", "ap50", "ap50_95", "best_f1_conf", "best_f1")] == pytest.approx(
        [1.0, 0.5, 0.495, 0.495, 0.75, 2 / 3])
    assert data["iou_thresholds"][0] == 0.5 and data["iou_thresholds"][-1] == 0.95
    assert data["conf_threshold"] == 0.25 and data["n_images"] == 1


def test_report_to_markdown_has_the_overall_row_first():
    lines = _missed_object_report().to_markdown().splitlines()
    assert lines[0].startswith("| class | images | instances | P@0.25 | R@0.25 | AP50 | AP50-95 |")
    assert lines[2] == "| all | 1 | 2 | 1.000 | 0.500 | 0.495 | 0.495 | 0.750 |"
    assert lines[3] == "| bicycle | 1 | 2 | 1.000 | 0.500 | 0.495 | 0.495 | 0.750 |"
