"""Background work inside `streetwatch serve`: one pipeline thread per camera, and outbox delivery.

`CameraWorker` pulls frames from a camera's source (RTSP, MJPEG, file, folder, or the push buffer fed by
``POST /api/v1/cameras/{id}/frames``), runs its `CameraPipeline`, writes evidence for each violation that
becomes due and hands every violation event to `CaseStore.ingest`. A worker that fails (model missing, source
unreachable at start, a bug) reports the error in its health and starts again after a back-off; it never
stops the other cameras or the HTTP API.

Zone edits through the API replace ``Services.config``; each worker notices the new configuration on its next
frame and rebuilds its rule engine (the tracker keeps its tracks, so objects already standing keep their
dwell... of tracking, while rule dwell restarts with the new zones).

`LatestFrames` keeps the last sampled frame per camera for the snapshot endpoint and the zone editor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from detector.types import Frame

__all__ = ["CameraRuntime", "LatestFrames"]

log = logging.getLogger("streetwatch.workers")


class LatestFrames:
    """The last sampled frame of each camera; thread-safe (workers write, API handlers read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}

    def put(self, camera_id: str, frame: Frame) -> None:
        with self._lock:
            self._frames[camera_id] = frame

    def get(self, camera_id: str) -> Frame | None:
        with self._lock:
            return self._frames.get(camera_id)


@dataclass
class CameraRuntime:
    """What one camera worker reports (health endpoint, /metrics); updated by the worker thread only.

    Attributes:
        state: ``starting``, ``running``, ``restarting`` (failed; waits `next_retry_s`), ``stopped``,
            ``disabled``.
        frames_processed: Samples through the pipeline since the service started.
        inferred: Samples on which the detector ran (the rest were skipped by the motion gate).
        inference_ms: Recent detector times (milliseconds), newest last.
        lag_s: Wall-clock time minus the frame's timestamp when the last sample was processed (live
            sources only; how far behind real time the camera is).
        events: Violation events handed to the case store.
        restarts: Times the worker started again after a failure.
        last_error: One line, the latest failure.
    """

    camera_id: str
    state: str = "starting"
    frames_processed: int = 0
    inferred: int = 0
    inference_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    lag_s: float | None = None
    events: int = 0
    restarts: int = 0
    last_error: str | None = None
    last_frame_ts: datetime | None = None

    def median_inference_ms(self) -> float | None:
        values = sorted(self.inference_ms)
        return values[len(values) // 2] if values else None
