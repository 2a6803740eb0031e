"""Per-stage timing of `CameraPipeline.process` (`PipelineStep.stage_ms` wall, `stage_cpu_ms` thread CPU): which
stages each kind of sample reports, and that a detector's three steps are timed apart."""

from __future__ import annotations

import time

import numpy as np
import pytest

from detector.motion import MotionGate, MotionGateConfig
from detector.pipeline import STAGES, PipelineStep
from detector.types import Detections
from tests.detector.test_pipeline import FakeDetector, make_frame, make_pipeline


class SteppedDetector(FakeDetector):
    """FakeDetector with OnnxDetector's three steps (preprocess, run_raw, postprocess); run_raw burns CPU for
    `busy_ms`, so its stage must be the largest."""

    def __init__(self, busy_ms: float = 30.0) -> None:
        super().__init__()
        self.busy_ms = busy_ms
        self.steps: list[str] = []

    def preprocess(self, images):
        self.steps.append("preprocess")
        return images[0], None

    def run_raw(self, image):
        self.steps.append("run_raw")
        until_s = time.thread_time() + self.busy_ms / 1000
        while time.thread_time() < until_s:
            pass
        return image

    def postprocess(self, image, transforms, min_score=None) -> list[Detections]:
        self.steps.append("postprocess")
        return [self.detect(image, min_score)]


def steps_of(detector, gate: MotionGate | None, seconds: int = 30) -> list[PipelineStep]:
    pipeline = make_pipeline(detector, gate)
    return [pipeline.process(make_frame(float(t), stall=t >= 2)) for t in range(seconds)]


# The gated run needs 30 s: the gate skips samples only once the stall's track is stationary.
@pytest.mark.parametrize("detector_factory, gated, seconds, inferred_stages", [
    (FakeDetector, False, 5, {"inference", "tracking", "rules"}),
    (FakeDetector, True, 30, {"motion", "inference", "tracking", "rules"}),
    (lambda: SteppedDetector(busy_ms=1.0), False, 5, {"preprocess", "inference", "postprocess", "tracking", "rules"}),
])
def test_each_sample_reports_the_stages_that_ran(detector_factory, gated, seconds, inferred_stages):
    gate = MotionGate(MotionGateConfig(reverify_interval_s=10.0)) if gated else None
    steps = steps_of(detector_factory(), gate, seconds)
    for step in steps:
        assert set(step.stage_ms) == set(step.stage_cpu_ms)
        assert set(step.stage_ms) <= set(STAGES)
        assert all(ms >= 0 for ms in (*step.stage_ms.values(), *step.stage_cpu_ms.values()))
        if step.inferred:
            assert set(step.stage_ms) == inferred_stages
            # inference_ms keeps its meaning: all the detector's time (preprocess + run + postprocess)
            assert step.inference_ms == pytest.approx(sum(step.stage_ms.get(k, 0.0) for k in
                                                          ("preprocess", "inference", "postprocess")))
        else:  # the gate skipped the detector: the rules ran on the carried-forward boxes
            assert set(step.stage_ms) == {"motion", "rules"} and step.inference_ms == 0.0
    assert gated == any(not s.inferred for s in steps)


def test_a_detectors_steps_are_timed_apart_and_in_cpu():
    detector = SteppedDetector(busy_ms=30.0)
    step = steps_of(detector, None, seconds=1)[0]
    assert detector.steps == ["preprocess", "run_raw", "postprocess"]
    assert step.stage_cpu_ms["inference"] >= 29.0
    assert step.stage_cpu_ms["inference"] > 10 * max(step.stage_cpu_ms["preprocess"], step.stage_cpu_ms["rules"])
    assert step.stage_ms["inference"] >= step.stage_cpu_ms["inference"] - 1.0  # wall time includes the CPU time


def test_tiled_inference_counts_as_inference(monkeypatch):
    import detector.runtime as runtime

    calls = []

    def fake_tiled(detector, image, tiling, min_score):
        calls.append(image.shape)
        return Detections.empty(), None

    monkeypatch.setattr(runtime, "detect_tiled", fake_tiled)
    pipeline = make_pipeline(SteppedDetector(busy_ms=0.0), None)
    pipeline.tiling = object()
    step = pipeline.process(make_frame(0.0, stall=False))
    assert calls and set(step.stage_ms) == {"inference", "tracking", "rules"}
    assert np.isfinite(step.stage_ms["inference"])
