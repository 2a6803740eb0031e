import numpy as np
import pytest

from detector.geometry import box_ios, box_iou, nms
from tests.detector.reference_decode import per_class_nms


@pytest.mark.parametrize(
    "a, b, iou",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
        ([0, 0, 10, 10], [2, 2, 4, 4], 0.04),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # degenerate boxes do not divide by zero
    ],
)
def test_box_iou_table(a, b, iou):
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(iou, abs=1e-6)


def test_box_ios_is_one_for_a_contained_box():
    assert box_ios(np.array([[0, 0, 10, 10]]), np.array([[2, 2, 4, 4]]))[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("iou_threshold", [0.5, {0: 0.3, 1: 0.5, 2: 0.7}])
def test_nms_matches_per_class_greedy_reference_on_random_boxes(iou_threshold):
    rng = np.random.default_rng(0)
    per_class = np.array([iou_threshold[c] for c in range(3)]) if isinstance(iou_threshold, dict) else iou_threshold
    for _ in range(30):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(5, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.permutation(n).astype(np.float32) / n + 0.001  # distinct scores: unique greedy order
        classes = rng.integers(0, 3, n)
        keep = nms(boxes, scores, per_class, classes)
        rows = [tuple(map(float, b)) + (float(s), int(c)) for b, s, c in zip(boxes, scores, classes)]
        expected = per_class_nms(rows, iou_threshold)
        assert sorted(keep.tolist()) == sorted(rows.index(r) for r in expected)


def test_nms_class_agnostic_and_max_det():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms(boxes, scores, 0.5, np.array([0, 1, 0])).tolist() == [0, 1, 2]
    assert nms(boxes, scores, 0.5, max_det=1).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_per_class_iou_keeps_overlapping_boxes_of_the_lenient_class_only():
    # Two pairs overlapping at IoU 0.6: bikes in a row (class 0, IoU 0.7 allowed) stay apart, stalls merge.
    boxes = np.array([[0, 0, 10, 10], [2.5, 0, 12.5, 10], [50, 0, 60, 10], [52.5, 0, 62.5, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, np.array([0.7, 0.45]), np.array([0, 0, 1, 1])).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="class_id"):
        nms(boxes, scores, np.array([0.7, 0.45]))
