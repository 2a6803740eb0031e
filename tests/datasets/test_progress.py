"""Progress of the long dataset jobs: the `Progress` callback sees every work item of every pass that takes time
(release's val passes, quantize's calibration, from-reviews' check and export), and the command line's bar is
silent with --quiet or without a terminal."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import datasets.release as release
from datasets.from_reviews import ExportOptions, export_reviewed_cases
from datasets.progress import no_progress
from datasets.quantize import quantize_static_int8
from detector.runtime.card import InputSpec, ModelCard, Thresholds
from service.cli import common
from service.kinds import kind_classes
from service.review_export import read_reviewed_cases
from tests.datasets.test_from_reviews import NAMES, Store


class Recorder:
    """A `Progress` that counts the items it passes on, per label."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()

    def __call__(self, items, desc):
        for item in items:
            self.items[desc] += 1
            yield item


def test_no_progress_passes_the_items_through():
    items = [3, 1, 2]
    assert no_progress(items, "x") is items


# --- release: one val pass per candidate NMS IoU ----------------------------------------------------------------

VAL_IMAGES = 5


def fake_evaluate(ap50_by_iou: dict[float, float]):
    """`evaluate_model` over `VAL_IMAGES` images, whose one class scores `ap50_by_iou[card's NMS IoU]`."""

    def evaluate(model, data_yaml, split, progress=lambda it: it, **_):
        assert split == "val"
        for _ in progress(range(VAL_IMAGES)):
            pass
        ap50 = ap50_by_iou[model.card.thresholds.nms_iou]
        row = SimpleNamespace(name="bicycle", instances=9, ap50=ap50, ap50_95=ap50 / 2, best_f1_conf=0.3)
        return SimpleNamespace(report=SimpleNamespace(classes=[row], n_images=VAL_IMAGES,
                                                      overall=SimpleNamespace(ap50=ap50, ap50_95=ap50 / 2)))

    return evaluate


def tiny_card(path: Path, fmt: str = "ultralytics") -> ModelCard:
    return ModelCard(name="tiny", file=str(path), format=fmt, classes=["bicycle"],
                     input=InputSpec(width_px=32, height_px=32, channel_order="rgb", scale=1 / 255),
                     thresholds=Thresholds(nms_iou=0.45))


@pytest.mark.parametrize(("candidates", "ap50_by_iou", "passes"), [
    # The default IoU stays best: its trial is the final card's val run; no extra pass.
    ((0.45, 0.6), {0.45: 0.8, 0.6: 0.7}, ["val nms_iou=0.45", "val nms_iou=0.6"]),
    # 0.6 wins: the final card (per-class IoU) needs one more pass.
    ((0.45, 0.6), {0.45: 0.5, 0.6: 0.7}, ["val nms_iou=0.45", "val nms_iou=0.6", "val final"]),
    # No candidates: one pass with the default.
    ((), {0.45: 0.5}, ["val final"]),
])
def test_choose_operating_point_reports_every_val_pass(monkeypatch, candidates, ap50_by_iou, passes):
    monkeypatch.setattr(release, "evaluate_model", fake_evaluate(ap50_by_iou))
    monkeypatch.setattr(release, "OnnxDetector", lambda card: SimpleNamespace(card=card))
    seen = Recorder()
    release.choose_operating_point(tiny_card(Path("unused.onnx")), Path("data.yaml"), candidates, seen)
    assert seen.items == {p: VAL_IMAGES for p in passes}


# --- quantize: every calibration image ---------------------------------------------------------------------------

def write_conv_model(path: Path) -> None:
    """A one-convolution ONNX model (opset 13) on 32x32 RGB input: enough to calibrate and quantise."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["output"], name="conv", pads=[1, 1, 1, 1])], "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 32, 32])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_quantize_reports_every_calibration_image(tmp_path):
    write_conv_model(tmp_path / "tiny.onnx")
    images = []
    for i in range(3):
        images.append(tmp_path / f"calib{i}.png")
        assert cv2.imwrite(str(images[-1]), np.full((40, 50, 3), 60 * i, np.uint8))
    seen = Recorder()
    out = quantize_static_int8(tiny_card(tmp_path / "tiny.onnx", fmt="yolox"), tmp_path / "q.onnx", images,
                               progress=seen)
    assert out.is_file()
    assert seen.items == {"calibrate": 3}


# --- from-reviews: every case checked, every kept case exported ---------------------------------------------------

def test_from_reviews_reports_the_check_and_export_passes(tmp_path):
    s = Store(tmp_path / "store")
    try:
        s.cases.confirm(s.add("stall", "stall_occupation", [[100, 200, 300, 400]], ["stall"], seed=1), "li")
        s.cases.reject(s.add("awning", "stall_occupation", [[900, 100, 1200, 250]], ["stall"], camera_id="cam-3",
                             seed=5), "li", "not a stall: shop awning")
        # a confirmed case whose kind the target classes lack: checked, not exported
        s.cases.confirm(s.add("structure", "illegal_structure", [[0, 0, 400, 300]], ["structure"],
                              camera_id="cam-4", day=1), "li")
        options = ExportOptions(class_names=NAMES, val_frac=0.0, negative_reason="not a", kind_classes=kind_classes())
        found = read_reviewed_cases(f"sqlite:///{s.db}", options.since)
        seen = Recorder()
        summary = export_reviewed_cases(found.cases, tmp_path / "out", options, progress=seen)
    finally:
        s.engine.dispose()
    assert seen.items == {"check": 3, "export": 2}
    assert summary["positives"] + summary["negatives"] == 2


# --- the command line's bar ---------------------------------------------------------------------------------------

class FakeStderr(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(("quiet", "tty", "drawn"), [
    (False, True, True),
    (True, True, False),  # --quiet
    (False, False, False),  # a log file or CI
])
def test_progress_bar_draws_only_on_a_terminal_without_quiet(monkeypatch, quiet, tty, drawn):
    err = FakeStderr(tty)
    monkeypatch.setattr(common.sys, "stderr", err)
    items = list(range(4))
    assert list(common.progress_bar(quiet, unit="case")(items, "export")) == items
    assert ("export" in err.getvalue()) is drawn
