"""Motion gating and missed detections: a settling (not yet stationary) object the detector misses once is
checked again on the next sample, so one miss does not end its track and restart its dwell (far, small bikes
are found in about 9 of 10 frames; benchmarks/results/scenarios_street_per_node.md)."""

from __future__ import annotations

from detector.motion import MotionGate, MotionGateConfig
from detector.types import Detections
from tests.detector.test_pipeline import FakeDetector, make_frame, make_pipeline, opened_at_s


class MissesOnce(FakeDetector):
    """Finds the stall like FakeDetector, except on the first call at or after `miss_from_s`."""

    def __init__(self, miss_from_s: float) -> None:
        super().__init__()
        self.miss_from_s = miss_from_s
        self.now_s = 0.0
        self.missed_at_s: float | None = None

    def detect(self, image, min_score=None) -> Detections:
        if self.missed_at_s is None and self.now_s >= self.miss_from_s:
            self.missed_at_s = self.now_s
            self.calls += 1
            return Detections.empty()
        return super().detect(image, min_score)


def run(gated: bool, miss_from_s: float, seconds: int = 90):
    detector = MissesOnce(miss_from_s)
    gate = MotionGate(MotionGateConfig(reverify_interval_s=10.0)) if gated else None
    pipeline = make_pipeline(detector, gate)
    steps = []
    for t in range(seconds):
        detector.now_s = float(t)
        steps.append(pipeline.process(make_frame(float(t), stall=t >= 5)))
    return detector, steps


def track_ids(steps) -> set[int]:
    return {int(i) for s in steps for i in (s.detections.tracker_id if s.detections.tracker_id is not None else [])}


def test_a_single_miss_while_settling_neither_ends_the_track_nor_delays_the_case():
    # The stall stands from 5 s, is confirmed at 6 s and stationary after 30 s; the detector misses it once at
    # the first inference from 12 s on, while its track still counts as moving.
    plain_detector, plain = run(False, miss_from_s=12.0)
    gated_detector, gated = run(True, miss_from_s=12.0)
    assert gated_detector.missed_at_s is not None and gated_detector.missed_at_s >= 12.0
    miss_s = gated_detector.missed_at_s
    inferred_s = [(s.frame.ts_s - gated[0].frame.ts_s) for s in gated if s.inferred]
    assert miss_s + 1.0 in inferred_s  # re-checked on the very next sample, not 2.5 s later
    assert track_ids(gated) == track_ids(plain) and len(track_ids(gated)) == 1
    assert opened_at_s(gated) == opened_at_s(plain) == [66.0]
    assert gated_detector.calls < plain_detector.calls  # the gate still saves work
