"""One camera's pipeline: Frame → detections → tracks → violation events.

`CameraPipeline.process(frame)` is the only per-frame entry point. It holds one camera's tracker and rule
engine (state), and shares the detector (stateless, thread-safe) with other cameras. It does no I/O: what
to do with events (write JSON lines, open cases, save evidence) is the caller's business.

With a `MotionGate` the detector runs only on samples where the picture changed (or a re-verification is
due); see `CameraPipeline` for what skipped samples produce. With a `SecondLook`, a violation of a kind that asks
for one is reported only once the detector, run again on enlarged crops of its boxes, agrees (`detector.verify`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Mapping

import numpy as np

from detector.motion import MotionDecision, MotionGate
from detector.rules import RuleEngine, Violation
from detector.tracking import Tracker, TrackState
from detector.types import Detections, Frame
from detector.verify import SecondLook, SecondLookVerdict

if TYPE_CHECKING:
    from detector.runtime import OnnxDetector, TilingConfig

__all__ = ["CameraPipeline", "PipelineStep", "STAGES"]


@dataclass(frozen=True)
class PipelineStep:
    """What one frame produced.

    Attributes:
        frame: The frame processed.
        detections: Tracked detections of the classes the rules use (pipeline class names in
            ``data["class_name"]``, ``tracker_id`` set).
        events: Violation events of this frame (opened / updated / closed).
        inference_ms: Time spent in the detector (0 when it did not run).
        inferred: Whether the detector ran on this frame; False when the motion gate skipped it and
            `detections` are the last inferred ones carried forward.
        motion: The motion gate's decision, or None without a gate.
        verdicts: The second look's verdict on each ``opened`` event of this frame that had one, by violation id.
        looks: Every second look taken on this frame, refused ones included (for counting).
        stage_ms: Wall milliseconds per stage that ran on this frame, by name (`STAGES`: "motion",
            "preprocess", "inference", "postprocess", "tracking", "rules", "second_look"); tiled inference, and
            a detector with only ``detect`` (a test double), count all the detector's time as "inference".
        stage_cpu_ms: The same stages in CPU milliseconds of the calling thread (`time.thread_time`): what each
            stage cost a core, where wall time also counts waiting for a busy core. onnxruntime with one
            intra-op thread runs in the caller; with more, or with a `BatchingDetector`, inference runs in
            other threads and is missing here.
    """

    frame: Frame
    detections: Detections
    events: list[Violation]
    inference_ms: float
    inferred: bool = True
    motion: MotionDecision | None = None
    verdicts: dict[str, SecondLookVerdict] = field(default_factory=dict)
    looks: tuple[SecondLookVerdict, ...] = ()
    stage_ms: Mapping[str, float] = field(default_factory=dict)
    stage_cpu_ms: Mapping[str, float] = field(default_factory=dict)


#: The pipeline's stages, in order (`PipelineStep.stage_ms`); decoding happens before, in the source.
STAGES = ("motion", "preprocess", "inference", "postprocess", "tracking", "rules", "second_look")


class CameraPipeline:
    """Runs detector, tracker and rules for one camera.

    Args:
        camera_id: The camera.
        detector: A loaded detector (may be shared with other cameras).
        tracker: This camera's tracker.
        engine: This camera's rule engine.
        class_map: Model class name → pipeline class (the card's ``violation_classes`` plus the camera's
            overrides); model classes absent from it keep their name.
        keep_classes: Pipeline classes worth tracking (those the rules use); None keeps every class.
        min_score: One detection threshold for all classes (None: the card's per-class thresholds). Set it
            at or below the tracker's low-score stage so weak boxes can keep tracks alive.
        tiling: Tiled inference settings for large frames, or None.
        motion_gate: This camera's motion gate (one per camera: it holds state), or None to infer every
            frame.
        second_look: Verifier of violations before they are reported, or None.
        second_look_classes: Violation kind → the classes its second look accepts; kinds absent from it are
            reported without a second look.

    Second look. An ``opened`` event of a kind in `second_look_classes` is passed on only when the second look
    agrees; its verdict is in `PipelineStep.verdicts`. A refused violation is held back: its ``updated`` events are
    dropped, and at most every ``recheck_interval_s`` its boxes are looked at again; when the look agrees, that
    event is passed on as the violation's ``opened`` (so a case opens late rather than never for a vendor still
    setting up). Its ``closed`` event is dropped. `second_look_counts` counts verdicts by reason (metrics).

    Motion gating. When the gate skips a sample, the detector and the tracker do not run, and the rule
    engine gets the tracker's last output again at the new timestamp: while nothing in the picture moves,
    the boxes of what stands there stay valid, so dwell times keep growing in seconds of frame time and
    violations open on time. The tracker is deliberately not fed the carried-forward boxes: it would count
    them as fresh hits and fold their old scores into the median score again, making a track look more
    certain than the detector ever said. Carried-forward samples are therefore invisible to the tracker,
    which sees the camera as if sampled more sparsely while nothing moves; its `stationary` and
    `stationary_since_s` columns only change on inferred samples (at the latest every
    ``reverify_interval_s``). Because the tracker drops a moving (not yet stationary) track unseen for
    ``max_missing_s``, inference is also forced once half that time has passed while such tracks exist,
    so a stall that has just been set up is not lost before it counts as stationary, on every sample
    while a tentative track waits for its confirming hits, and on every sample while such a track was missed
    by the last inference (one missed detection must not end it).

    Raises:
        ValueError: The gate's ``reverify_interval_s`` is not below the tracker's
            ``stationary_max_missing_s`` (stationary tracks would expire between verifications).
    """

    def __init__(self, camera_id: str, detector: "OnnxDetector", tracker: Tracker, engine: RuleEngine,
                 class_map: Mapping[str, str] | None = None, keep_classes: set[str] | None = None,
                 min_score: float | None = None, tiling: "TilingConfig | None" = None,
                 motion_gate: MotionGate | None = None, second_look: SecondLook | None = None,
                 second_look_classes: Mapping[str, frozenset[str]] | None = None) -> None:
        if motion_gate is not None and not (
                motion_gate.config.reverify_interval_s < tracker.config.stationary_max_missing_s):
            raise ValueError(
                f"camera {camera_id}: motion gate reverify_interval_s ({motion_gate.config.reverify_interval_s}) "
                f"must be below the tracker's stationary_max_missing_s ({tracker.config.stationary_max_missing_s})")
        self.camera_id = camera_id
        self.detector = detector
        self.tracker = tracker
        self.engine = engine
        self.min_score = min_score
        self.tiling = tiling
        class_map = dict(class_map or {})
        mapped = [class_map.get(name, name) for name in detector.class_names]
        # Model class id → pipeline class name, and a mask of the model classes worth tracking.
        self._pipeline_names = np.asarray(mapped)
        self._keep = np.array([keep_classes is None or name in keep_classes for name in mapped], bool)
        self._last_ts: datetime | None = None
        self.motion_gate = motion_gate
        self._last_tracked: Detections | None = None  # the tracker's output on the last inferred frame
        self.second_look = second_look
        self.second_look_classes = dict(second_look_classes or {})
        self.second_look_counts: Counter[str] = Counter()
        self._held: dict[str, float] = {}  # violation id → time (s) of its last refused look

    def detect(self, frame: Frame) -> Detections:
        """Detections of the kept classes, with pipeline class names, before tracking."""
        return self._detect_timed(frame, _StageClock())

    def _detect_timed(self, frame: Frame, clock: "_StageClock") -> Detections:
        """`detect`, lapping `clock` after preprocess, inference and postprocess."""
        detector = self.detector
        if self.tiling is not None:
            from detector.runtime import detect_tiled

            raw, _ = detect_tiled(detector, frame.image, self.tiling, self.min_score)
            last_stage = "inference"
        elif hasattr(detector, "run_raw"):
            # OnnxDetector.detect in its three steps, so each is timed (BatchingDetector has the same three).
            tensor, transforms = detector.preprocess([frame.image])
            clock.lap("preprocess")
            output = detector.run_raw(tensor)
            clock.lap("inference")
            raw = detector.postprocess(output, transforms, self.min_score)[0]
            last_stage = "postprocess"
        else:
            raw = detector.detect(frame.image, self.min_score)
            last_stage = "inference"
        kept = raw[self._keep[raw.class_id]]
        kept = kept.with_columns(class_name=self._pipeline_names[kept.class_id])
        clock.lap(last_stage)
        return kept

    def process(self, frame: Frame) -> PipelineStep:
        """Detect, track and apply the rules to one frame; frames must come in time order."""
        if self._last_ts is not None and frame.ts < self._last_ts:
            raise ValueError(f"camera {self.camera_id}: frame at {frame.ts.isoformat()} is older than the "
                             f"previous one ({self._last_ts.isoformat()})")
        self._last_ts = frame.ts
        decision = None
        # Per-stage wall and CPU time: two clock reads per stage, so an operator sees where a core's
        # milliseconds go (service metrics, benchmarks/streams.py).
        clock = _StageClock()
        if self.motion_gate is not None:
            decision = self.motion_gate.update(frame.image, frame.ts_s, force=self._moving_tracks_due(frame.ts_s))
            clock.lap("motion")
            if not decision.infer and self._last_tracked is not None:
                events = self.engine.update(frame.ts, self._last_tracked, (frame.width_px, frame.height_px))
                clock.lap("rules")
                events, verdicts, looks = self._look_again(frame, events)
                if looks:
                    clock.lap("second_look")
                return PipelineStep(frame, self._last_tracked, events, 0.0, inferred=False, motion=decision,
                                    verdicts=verdicts, looks=looks, stage_ms=clock.wall_ms, stage_cpu_ms=clock.cpu_ms)
        detections = self._detect_timed(frame, clock)
        inference_ms = sum(clock.wall_ms.get(k, 0.0) for k in ("preprocess", "inference", "postprocess"))
        tracked = self.tracker.update(detections, frame.ts_s)
        clock.lap("tracking")
        events = self.engine.update(frame.ts, tracked, (frame.width_px, frame.height_px))
        clock.lap("rules")
        if self.motion_gate is not None:
            self._last_tracked = tracked
        events, verdicts, looks = self._look_again(frame, events)
        if looks:
            clock.lap("second_look")
        return PipelineStep(frame, tracked, events, inference_ms, inferred=True, motion=decision, verdicts=verdicts,
                            looks=looks, stage_ms=clock.wall_ms, stage_cpu_ms=clock.cpu_ms)

    def _look_again(self, frame: Frame, events: list[Violation]
                    ) -> tuple[list[Violation], dict[str, SecondLookVerdict], tuple[SecondLookVerdict, ...]]:
        """Pass on, hold back or release violation events by the second look (see the class docstring)."""
        if self.second_look is None or not events:
            return events, {}, ()
        out: list[Violation] = []
        verdicts: dict[str, SecondLookVerdict] = {}
        looks: list[SecondLookVerdict] = []
        for event in events:
            classes = self.second_look_classes.get(event.kind)
            vid = event.violation_id
            held_since = self._held.get(vid)
            if classes is None or (event.event != "opened" and held_since is None):
                out.append(event)
                continue
            if event.event == "closed":
                del self._held[vid]  # never reported: nothing to close
                continue
            if event.event == "updated" and frame.ts_s - held_since < self.second_look.config.recheck_interval_s:
                continue
            verdict = self.second_look.check(frame.image, event.xyxy, classes)
            self.second_look_counts[verdict.reason] += 1
            looks.append(verdict)
            if verdict.agree:
                self._held.pop(vid, None)
                verdicts[vid] = verdict
                out.append(event if event.event == "opened" else dataclasses.replace(event, event="opened"))
            else:
                self._held[vid] = frame.ts_s
        return out, verdicts, tuple(looks)

    def _moving_tracks_due(self, ts_s: float) -> bool:
        """Whether the tracker needs fresh detections now, whatever the motion gate sees.

        A tentative track needs its next hits as soon as possible (it is confirmed, and reported, no later
        than without gating; one that was a false positive expires after ``max_missing_s``). A track that is
        not stationary would be dropped after ``max_missing_s`` unseen, so it is re-checked after half that;
        and when the last inference missed it, on every sample until it is seen again: a far, small bike is
        found in about 9 of 10 frames, and at the re-check pace alone a single miss would end its track (and
        restart its dwell) where without gating the next frames bridge it.
        """
        last_s = self.motion_gate.last_inferred_s
        if last_s is None:
            return False
        tracks = self.tracker.tracks
        if any(track.state == TrackState.TENTATIVE for track in tracks):
            return True
        moving = [track for track in tracks if not track.stationary]
        if any(track.last_seen_s < last_s for track in moving):
            return True
        if ts_s - last_s < 0.5 * self.tracker.config.max_missing_s:
            return False
        return bool(moving)

    def finish(self, ts: datetime) -> list[Violation]:
        """Close every open violation (end of a file or flight); violations the second look held back never
        opened, so they do not close either."""
        events = [e for e in self.engine.finish(ts) if e.violation_id not in self._held]
        self._held.clear()
        return events


class _StageClock:
    """Wall (`time.perf_counter`) and thread-CPU (`time.thread_time`) milliseconds per stage of one frame."""

    def __init__(self) -> None:
        self.wall_ms: dict[str, float] = {}
        self.cpu_ms: dict[str, float] = {}
        self._wall_s, self._cpu_s = time.perf_counter(), time.thread_time()

    def lap(self, stage: str) -> None:
        """Add the time since the previous lap (or the start) to `stage`."""
        wall_s, cpu_s = time.perf_counter(), time.thread_time()
        self.wall_ms[stage] = self.wall_ms.get(stage, 0.0) + (wall_s - self._wall_s) * 1000
        self.cpu_ms[stage] = self.cpu_ms.get(stage, 0.0) + (cpu_s - self._cpu_s) * 1000
        self._wall_s, self._cpu_s = wall_s, cpu_s
