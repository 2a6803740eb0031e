"""The real-footage benchmark's per-frame tally (found boxes, false detections per class)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.real_footage import tally_frame

CLASSES = ["bicycle", "stall", "ebike"]


@pytest.mark.parametrize("truth, truth_names, dets, scores, det_names, expected", [
    # the labelled bike found, a stall on a hard negative is false
    ([[0, 0, 10, 10]], ["bicycle"], [[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], ["bicycle", "stall"],
     (1, 1, {"bicycle": 0, "stall": 1, "ebike": 0})),
    # a right box of the wrong class finds nothing and is false
    ([[0, 0, 10, 10]], ["bicycle"], [[0, 0, 10, 10]], [0.9], ["ebike"], (1, 0, {"bicycle": 0, "stall": 0, "ebike": 1})),
    # two boxes on one bike: the second is a duplicate, so false
    ([[0, 0, 10, 10]], ["bicycle"], [[0, 0, 10, 10], [0, 0, 10, 9]], [0.9, 0.5], ["bicycle", "bicycle"],
     (1, 1, {"bicycle": 1, "stall": 0, "ebike": 0})),
    # IoU below 0.5 (1/3) does not find the bike
    ([[0, 0, 10, 10]], ["bicycle"], [[5, 0, 15, 10]], [0.9], ["bicycle"], (1, 0, {"bicycle": 1, "stall": 0, "ebike": 0})),
    # a hard-negative frame without detections
    ([], [], [], [], [], (0, 0, {"bicycle": 0, "stall": 0, "ebike": 0})),
])
def test_tally_frame(truth, truth_names, dets, scores, det_names, expected):
    got = tally_frame(np.array(truth, float).reshape(-1, 4), np.array(truth_names, dtype=object),
                      np.array(dets, float).reshape(-1, 4), np.array(scores, float), np.array(det_names, dtype=object),
                      CLASSES)
    assert got == expected
