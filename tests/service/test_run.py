"""What a camera's model selection does to its pipeline (service/run.py), with the shipped models."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from detector.errors import ModelCardError
from detector.imageio import read_image
from detector.runtime.preprocess import make_blob, prepare_image
from detector.types import Frame
from service.config import ModelSelection, parse_config
from service.pipeline import build_pipeline, load_camera_model


def camera_config(model: dict):
    return parse_config({"config_version": 1, "model": model,
                         "cameras": [{"id": "cam-1", "source": "push", "timezone": "UTC"}]})


def anchors(width_px: int, height_px: int) -> int:
    """Output columns of an ultralytics head at this input: one per cell of the stride 8, 16 and 32 grids."""
    return sum((width_px // s) * (height_px // s) for s in (8, 16, 32))


@pytest.mark.parametrize("model, input_wh, tiled", [
    ({"name": "street"}, (416, 416), False),
    ({"name": "street", "input_wh": [832, 480]}, (832, 480), False),   # small objects, one larger pass
    ({"name": "street", "tile": True}, (416, 416), True),              # tiles at the card's size
    ({"name": "street-int8", "input_wh": [640, 384], "tile": True}, (640, 384), True),
])
def test_the_cameras_model_selection_reaches_its_pipeline(model, input_wh, tiled, bicycles_dir):
    config = camera_config(model)
    pipeline = build_pipeline(config, config.cameras[0], threads=1)
    card = pipeline.detector.card
    assert (card.input.width_px, card.input.height_px) == input_wh
    assert (pipeline.tiling is not None) == tiled
    # The network really runs at that size: its head has one column per grid cell of the input.
    image = read_image(sorted((bicycles_dir / "val" / "images").iterdir())[0])
    prepared, _ = prepare_image(image, card.input)
    raw = pipeline.detector.run_raw(make_blob([prepared], card.input))
    assert raw.shape == (1, 4 + len(card.classes), anchors(*input_wh))
    step = pipeline.process(Frame("cam-1", 0, datetime(2026, 6, 1, tzinfo=timezone.utc), image))
    assert step.inferred and (step.detections.xyxy[:, 2] <= image.shape[1] + 1).all()
    # The card's operating point reaches the tracker (the file leaves the score thresholds out).
    assert pipeline.tracker.config.high_score == card.thresholds.track_score


def test_a_fixed_size_network_refuses_another_input_size_by_name():
    with pytest.raises(ModelCardError, match=r"input shape \[1, 3, 416, 416\] does not match the card's 1x3x384x640"):
        load_camera_model(ModelSelection(name="yolox-nano-coco", input_wh=(640, 384)))


@pytest.mark.parametrize("input_wh, problem", [
    ([830, 480], "width 830 px must be a multiple of 32"),
    ([832, 16], "height 16 px must be a multiple of 32"),
    ([8192, 480], "width 8192 px must be a multiple of 32 within [32, 4096]"),
])
def test_input_sizes_the_network_cannot_take_are_config_problems(input_wh, problem):
    from service.config import ConfigError

    with pytest.raises(ConfigError) as info:
        camera_config({"name": "street", "input_wh": input_wh})
    [line] = info.value.problems
    assert line.startswith("model.input_wh") and problem in line


def test_cameras_with_the_same_model_and_size_share_one_detector():
    from service.workers import DetectorPool

    pool = DetectorPool(threads=1)
    a = pool.get(ModelSelection(name="street"))
    assert pool.get(ModelSelection(name="street", conf=0.1)) is a      # thresholds are the pipeline's business
    big = pool.get(ModelSelection(name="street", input_wh=(832, 480)))
    assert big is not a and (big.card.input.width_px, big.card.input.height_px) == (832, 480)
    assert np.isclose(a.card.thresholds.track_score, big.card.thresholds.track_score)
