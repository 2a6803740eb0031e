import numpy as np
import pytest

from detector.types import Detections, Frame
from tests.conftest import T0, make_detections


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(xyxy=[[0, 0, 1, 1]], confidence=[0.5, 0.4], class_id=[0]), "confidence has 2 rows"),
        (dict(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0, 1]), "class_id has 2 rows"),
        (dict(xyxy=[[5, 0, 1, 1]], confidence=[0.5], class_id=[0]), "x1 <= x2"),
        (dict(xyxy=[[0, 0, 1, np.nan]], confidence=[0.5], class_id=[0]), "NaN"),
        (dict(xyxy=[[0, 0, 1, 1]], confidence=[1.5], class_id=[0]), "within \\[0, 1\\]"),
        (dict(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0], tracker_id=[1, 2]), "tracker_id has 2 rows"),
        (dict(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0], data={"k": np.array([1, 2])}), "data\\['k'\\]"),
    ],
)
def test_detections_rejects_inconsistent_columns(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


def test_mask_int_and_slice_indexing_keep_columns_aligned():
    d = make_detections([(0, 0, 10, 10, 0.9, 1, 7), (1, 1, 5, 5, 0.2, 2, 8), (2, 2, 6, 6, 0.6, 1, 9)], tracker=True)
    d = d.with_columns(class_name=np.array(["bicycle", "stall", "bicycle"]))
    kept = d[d.confidence > 0.5]
    assert kept.tracker_id.tolist() == [7, 9]
    assert kept.data["class_name"].tolist() == ["bicycle", "bicycle"]
    assert d[1].class_id.tolist() == [2]
    assert len(d[1:]) == 2
    with pytest.raises(IndexError):
        d[np.array([True, False])]


def test_empty_and_merge():
    a = make_detections([(0, 0, 1, 1, 0.5, 0)])
    b = make_detections([(2, 2, 3, 3, 0.7, 1)])
    merged = Detections.merge([a, Detections.empty(), b])
    assert merged.class_id.tolist() == [0, 1]
    assert merged.xyxy.dtype == np.float32 and merged.class_id.dtype == np.int32
    assert len(Detections.merge([])) == 0
    with pytest.raises(ValueError, match="tracker_id"):
        Detections.merge([a, make_detections([(0, 0, 1, 1, 0.5, 0, 3)], tracker=True)])


def test_anchors_and_records():
    d = make_detections([(10, 20, 30, 60, 0.5, 1)])
    assert d.bottom_center_xy.tolist() == [[20.0, 60.0]]
    assert d.to_records(["person", "bicycle"]) == [
        {"xyxy": [10.0, 20.0, 30.0, 60.0], "class": "bicycle", "class_id": 1, "score": 0.5}
    ]


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4), np.uint8), "HxWx3"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_frame_validates_image(image, message):
    with pytest.raises(ValueError, match=message):
        Frame("cam", 0, T0, image)


def test_frame_requires_aware_timestamp():
    with pytest.raises(ValueError, match="timezone-aware"):
        Frame("cam", 0, T0.replace(tzinfo=None), np.zeros((2, 2, 3), np.uint8))
