"""One camera's pipeline: Frame → detections → tracks → violation events.

`CameraPipeline.process(frame)` is the only per-frame entry point. It holds one camera's tracker and rule
engine (state), and shares the detector (stateless, thread-safe) with other cameras. It does no I/O: what
to do with events (write JSON lines, open cases, save evidence) is the caller's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Mapping

import numpy as np

from detector.rules import RuleEngine, Violation
from detector.tracking import Tracker
from detector.types import Detections, Frame

if TYPE_CHECKING:
    from detector.runtime import OnnxDetector, TilingConfig

__all__ = ["CameraPipeline", "PipelineStep"]


@dataclass(frozen=True)
class PipelineStep:
    """What one frame produced.

    Attributes:
        frame: The frame processed.
        detections: Tracked detections of the classes the rules use (pipeline class names in
            ``data["class_name"]``, ``tracker_id`` set).
        events: Violation events of this frame (opened / updated / closed).
        inference_ms: Time spent in the detector.
    """

    frame: Frame
    detections: Detections
    events: list[Violation]
    inference_ms: float


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
    """

    def __init__(self, camera_id: str, detector: "OnnxDetector", tracker: Tracker, engine: RuleEngine,
                 class_map: Mapping[str, str] | None = None, keep_classes: set[str] | None = None,
                 min_score: float | None = None, tiling: "TilingConfig | None" = None) -> None:
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

    def detect(self, frame: Frame) -> Detections:
        """Detections of the kept classes, with pipeline class names, before tracking."""
        if self.tiling is not None:
            from detector.runtime import detect_tiled

            raw, _ = detect_tiled(self.detector, frame.image, self.tiling, self.min_score)
        else:
            raw = self.detector.detect(frame.image, self.min_score)
        kept = raw[self._keep[raw.class_id]]
        return kept.with_columns(class_name=self._pipeline_names[kept.class_id])

    def process(self, frame: Frame) -> PipelineStep:
        """Detect, track and apply the rules to one frame; frames must come in time order."""
        if self._last_ts is not None and frame.ts < self._last_ts:
            raise ValueError(f"camera {self.camera_id}: frame at {frame.ts.isoformat()} is older than the "
                             f"previous one ({self._last_ts.isoformat()})")
        self._last_ts = frame.ts
        started = time.perf_counter()
        detections = self.detect(frame)
        inference_ms = (time.perf_counter() - started) * 1000
        tracked = self.tracker.update(detections, frame.ts_s)
        events = self.engine.update(frame.ts, tracked, (frame.width_px, frame.height_px))
        return PipelineStep(frame, tracked, events, inference_ms)

    def finish(self, ts: datetime) -> list[Violation]:
        """Close every open violation (end of a file or flight)."""
        return self.engine.finish(ts)
