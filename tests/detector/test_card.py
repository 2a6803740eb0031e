import numpy as np
import pytest
import yaml

from detector.errors import ModelCardError
from detector.runtime.card import load_card
from tests.conftest import REPO_ROOT

REPO_CARD = "models/street/card.yaml"


def _card_dict(**thresholds) -> dict:
    data = yaml.safe_load((REPO_ROOT / REPO_CARD).read_text())
    data["thresholds"].update(thresholds)
    return data


@pytest.mark.parametrize("thresholds, message", [
    ({"per_class": {"bicycle": 1.5}}, "thresholds.per_class: threshold for class 'bicycle' must lie within \\[0, 1\\]"),
    ({"per_class": {"tricycle": 0.3}}, "thresholds.per_class names unknown classes: \\['tricycle'\\]"),
    ({"nms_iou_per_class": {"bicycle": 0.0}}, "thresholds.nms_iou_per_class: NMS IoU for class 'bicycle' must lie within \\(0, 1\\]"),
    ({"nms_iou_per_class": {"bicycle": 1.2}}, "thresholds.nms_iou_per_class: NMS IoU for class 'bicycle' must lie within \\(0, 1\\]"),
    ({"nms_iou_per_class": {"kiosk": 0.6}}, "thresholds.nms_iou_per_class names unknown classes: \\['kiosk'\\]"),
])
def test_bad_thresholds_name_the_field_and_why(tmp_path, thresholds, message):
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(_card_dict(**thresholds)))
    with pytest.raises(ModelCardError, match=message):
        load_card(path)


def test_class_nms_ious_fall_back_to_the_card_default(tmp_path):
    path = tmp_path / "card.yaml"
    data = _card_dict(nms_iou=0.45, nms_iou_per_class={"bicycle": 0.6})
    path.write_text(yaml.safe_dump(data))
    card = load_card(path)
    expected = [0.6 if name == "bicycle" else 0.45 for name in card.classes]
    assert np.allclose(card.class_nms_ious(), expected)
