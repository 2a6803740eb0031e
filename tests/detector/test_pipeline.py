"""CameraPipeline with a fake detector: unchanged without a gate; with a motion gate, fewer detector calls
and violations opening when they would without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pytest

from detector.motion import MotionGate, MotionGateConfig
from detector.pipeline import CameraPipeline, PipelineStep
from detector.rules import RuleEngine, StallOccupationRule, StallRuleParams
from detector.tracking import Tracker, TrackerConfig
from detector.types import Detections, Frame
from detector.zones import Zone
from tests.conftest import T0

HEIGHT_PX, WIDTH_PX = 360, 640
STALL_XYXY = (100, 200, 180, 300)  # bottom-centre (140, 300): inside the no-vending lower half
STALL_BGR = (30, 200, 230)
NO_VENDING = Zone("nv", "no_vending", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia_samples=1)
_BACKGROUND = np.random.default_rng(0).integers(40, 200, (HEIGHT_PX // 20, WIDTH_PX // 20, 3)).astype(np.uint8)


@dataclass
class FakeCard:
    violation_classes: dict = field(default_factory=dict)


class FakeDetector:
    """Finds the stall when its colour fills the stall's place; counts calls."""

    class_names = ["stall", "person"]

    def __init__(self) -> None:
        self.card = FakeCard()
        self.calls = 0

    def detect(self, image: np.ndarray, min_score: float | None = None) -> Detections:
        self.calls += 1
        x1, y1, x2, y2 = STALL_XYXY
        patch = image[y1:y2, x1:x2].reshape(-1, 3).astype(np.float32).mean(axis=0)
        if np.abs(patch - STALL_BGR).max() > 20:
            return Detections.empty()
        # A real detector's box and score jitter a little from frame to frame.
        jitter = (self.calls % 3) - 1.0
        return Detections(xyxy=[[x1 + jitter, y1, x2 + jitter, y2]], confidence=[0.85 + 0.01 * jitter], class_id=[0])


def make_frame(t_s: float, stall: bool) -> Frame:
    image = np.kron(_BACKGROUND, np.ones((20, 20, 1), np.uint8)).astype(np.float32)
    if stall:
        x1, y1, x2, y2 = STALL_XYXY
        image[y1:y2, x1:x2] = STALL_BGR
    image += np.random.default_rng(int(t_s * 10)).normal(0, 5, image.shape)  # sensor noise
    return Frame("cam-1", int(t_s * 25), T0 + timedelta(seconds=t_s), np.clip(image, 0, 255).astype(np.uint8))


def make_pipeline(detector: FakeDetector, gate: MotionGate | None) -> CameraPipeline:
    engine = RuleEngine("cam-1", [NO_VENDING], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=60))])
    return CameraPipeline("cam-1", detector, Tracker(TrackerConfig()), engine, keep_classes={"stall"},
                          motion_gate=gate)


def run(gate: MotionGate | None, stall_from_s: float = 5.0, stall_until_s: float = 1e9,
        duration_s: int = 150) -> tuple[FakeDetector, list[PipelineStep]]:
    detector = FakeDetector()
    pipeline = make_pipeline(detector, gate)
    steps = [pipeline.process(make_frame(float(t), stall_from_s <= t < stall_until_s)) for t in range(duration_s)]
    return detector, steps


def opened_at_s(steps: list[PipelineStep]) -> list[float]:
    return [(s.frame.ts - T0).total_seconds() for s in steps for e in s.events if e.event == "opened"]


def test_without_a_gate_every_frame_is_inferred() -> None:
    detector, steps = run(None, duration_s=20)
    assert detector.calls == 20
    assert all(s.inferred and s.motion is None for s in steps)


def test_static_scene_needs_fewer_detector_calls_and_the_stall_opens_on_time() -> None:
    plain_detector, plain_steps = run(None)
    gated_detector, gated_steps = run(MotionGate(MotionGateConfig(reverify_interval_s=10.0)))

    assert opened_at_s(plain_steps) == opened_at_s(gated_steps) == [66.0]  # confirmed at 6 s (second hit), dwell 60 s
    assert gated_detector.calls == sum(s.inferred for s in gated_steps)
    assert gated_detector.calls < 0.35 * plain_detector.calls, (gated_detector.calls, plain_detector.calls)
    # Once the stall stands still, only re-verifications run the detector, at most reverify_interval_s apart.
    inferred_s = [(s.frame.ts - T0).total_seconds() for s in gated_steps if s.inferred]
    late = [t for t in inferred_s if t > 40]
    assert late and max(np.diff(late)) <= 10.0
    assert {s.motion.reason for s in gated_steps if s.frame.ts - T0 > timedelta(seconds=40) and s.inferred} == {
        "reverify"}


def test_skipped_samples_carry_the_last_detections_forward() -> None:
    detector, steps = run(MotionGate(), duration_s=60)
    skipped = [s for s in steps if not s.inferred and s.frame.ts >= T0 + timedelta(seconds=6)]
    assert len(skipped) > 30
    for step in skipped:
        assert step.inference_ms == 0.0 and step.motion.reason == "still"
        assert step.detections.tracker_id.tolist() == [1]
    # The tracker only counted real detections: hits equal the inferred samples that saw the stall.
    assert steps[-1].detections.data["hits"].tolist() == [sum(1 for s in steps if s.inferred and s.frame.ts
                                                              >= T0 + timedelta(seconds=5))]


def test_a_removed_stall_is_noticed_at_once() -> None:
    _, steps = run(MotionGate(), stall_until_s=100.0, duration_s=103)
    at_removal = steps[100]
    assert at_removal.inferred and at_removal.motion.reason == "motion"
    assert len(at_removal.detections) == 0


def test_reverify_interval_must_be_below_stationary_max_missing_s() -> None:
    engine = RuleEngine("cam-1", [NO_VENDING], [StallOccupationRule(StallRuleParams({"stall"}))])
    with pytest.raises(ValueError, match="reverify_interval_s"):
        CameraPipeline("cam-1", FakeDetector(), Tracker(TrackerConfig(stationary_max_missing_s=60)), engine,
                       motion_gate=MotionGate(MotionGateConfig(reverify_interval_s=60.0)))
