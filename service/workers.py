"""Background work inside `streetwatch serve`: one pipeline thread per camera, and outbox delivery.

`CameraWorker` pulls frames from a camera's source (RTSP, MJPEG, file, folder, or the push buffer fed by
``POST /api/v1/cameras/{id}/frames``), runs its `CameraPipeline`, writes evidence for each violation that
becomes due and hands every violation event to `CaseStore.ingest`. A worker that fails (model missing, source
unreachable at start, a bug) reports the error in its health and starts again after a back-off; it never
stops the other cameras or the HTTP API.

Zone edits through the API replace ``Services.config``; each worker notices the new configuration on its next
frame and rebuilds its rule engine (the tracker keeps its tracks, so objects already standing keep their
dwell... of tracking, while rule dwell restarts with the new zones). Camera edits also call
`ServiceWorkers.sync`: a new or re-enabled camera gets a worker, a deleted or disabled one has its worker
stopped, and a changed source or sample rate restarts the camera's worker.

`LatestFrames` keeps the last sampled frame per camera for the snapshot endpoint and the zone editor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from detector.errors import StreetwatchError
from detector.rules import Violation
from detector.schedule import load_timezone
from detector.sources import SourceBase, SourceHealth, open_source
from detector.sources.base import one_line
from detector.track_history import TrackHistory
from detector.types import Detections, Frame
from service.evidence import kind_color, save_evidence
from service.evidence_guard import EvidenceGuard
from service.metrics import STAGE_BUCKETS_S, SecondsHistogram
from service.pipeline import build_pipeline, camera_case_origin, load_camera_model
from service.timelapse import save_timelapse

if TYPE_CHECKING:
    from detector.pipeline import CameraPipeline
    from detector.runtime import OnnxDetector
    from service.cases import CaseStore
    from service.cluster.engine import RayCameraEngine
    from service.config import AppConfig, CameraConfig, ModelSelection
    from service.outbox import OutboxWorker

__all__ = ["CameraRuntime", "CameraWorker", "DetectorPool", "LatestFrames", "ServiceWorkers", "WorkerContext"]

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

    def discard(self, camera_id: str) -> None:
        """Forget a camera's frame (the camera was deleted or its source changed)."""
        with self._lock:
            self._frames.pop(camera_id, None)


@dataclass
class CameraRuntime:
    """What one camera worker reports (health endpoint, /metrics); updated by the worker thread only.

    Attributes:
        state: ``starting``, ``running``, ``restarting`` (failed; waits `next_retry_s`), ``stopped``,
            ``disabled``.
        frames_processed: Samples through the pipeline since the service started.
        inferred: Samples on which the detector ran (the rest were skipped by the motion gate).
        inference_ms: Recent detector times (milliseconds), newest last.
        inference_s: Every detector time since the service started, in histogram buckets (/metrics).
        model: ``name@version`` of the model the camera's pipeline runs (None before it is loaded).
        lag_s: Wall-clock time minus the frame's timestamp when the last sample was processed (live
            sources only; how far behind real time the camera is).
        events: Violation events handed to the case store.
        restarts: Times the worker started again after a failure.
        last_error: One line, the latest failure.
        second_look: Second looks taken before cases, by verdict reason (`detector.verify.VERDICT_REASONS`).
        stage_s: Wall time per sample in each stage (decode, then `detector.pipeline.STAGES`), in histogram
            buckets (/metrics).
        stage_cpu_s: CPU seconds spent in each stage since the service started (/metrics: where each camera's
            core-milliseconds go; wall time also counts waiting for a busy core).
    """

    camera_id: str
    state: str = "starting"
    frames_processed: int = 0
    inferred: int = 0
    inference_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    inference_s: SecondsHistogram = field(default_factory=SecondsHistogram)
    model: str | None = None
    lag_s: float | None = None
    events: int = 0
    restarts: int = 0
    second_look: Counter = field(default_factory=Counter)
    last_error: str | None = None
    last_frame_ts: datetime | None = None
    source_health: SourceHealth | None = None
    queue_depth: int = 0
    stage_s: dict[str, SecondsHistogram] = field(default_factory=dict)
    stage_cpu_s: dict[str, float] = field(default_factory=dict)

    def observe_stage(self, stage: str, wall_s: float, cpu_s: float) -> None:
        histogram = self.stage_s.get(stage)
        if histogram is None:
            histogram = self.stage_s[stage] = SecondsHistogram(STAGE_BUCKETS_S)
        histogram.observe(wall_s)
        self.stage_cpu_s[stage] = self.stage_cpu_s.get(stage, 0.0) + cpu_s

    def median_inference_ms(self) -> float | None:
        values = sorted(self.inference_ms)
        return values[len(values) // 2] if values else None


class DetectorPool:
    """One loaded detector per model name and input size, shared by every camera that uses it (detectors are
    stateless)."""

    def __init__(self, threads: int = 0) -> None:
        self._lock = threading.Lock()
        self._detectors: dict[tuple[str, str, bool, tuple[int, int] | None], "OnnxDetector"] = {}
        self.threads = threads

    def get(self, selection: "ModelSelection") -> "OnnxDetector":
        # Precision and tiling choose the file (a tiled camera keeps the float model under "auto").
        key = (selection.name, selection.precision, selection.tile, selection.input_wh)
        with self._lock:  # two cameras starting together must not load the model twice
            if key not in self._detectors:
                self._detectors[key] = load_camera_model(selection, self.threads)
            return self._detectors[key]


@dataclass
class WorkerContext:
    """What the camera workers share with the app (`service.api.deps.Services` provides it).

    Attributes:
        config: Returns the current configuration (replaced as a whole by zone edits).
        cases: Where violation events go.
        evidence_dir: Evidence images are written under ``<evidence_dir>/<camera>/<YYYY-MM-DD>/``.
        latest_frames: Last sampled frame per camera.
        push_sources: Push buffers of cameras whose source is ``push`` (owned by the app).
        detectors: Shared detectors.
        stop: Set when the service shuts down.
        evidence_interval_s: While a violation stays open, a fresh evidence frame is kept at most this often.
        restart_backoff_s: Waits before restarting a failed worker, the last one repeated.
        read_timeout_s: How long one read waits before the worker checks for shutdown again.
        file_speed: A video file configured as a camera plays this many times faster than real time.
        evidence_guard: Watches evidence writes and free space (None: write unwatched).
    """

    config: Callable[[], "AppConfig"]
    cases: "CaseStore"
    evidence_dir: Path
    latest_frames: LatestFrames
    push_sources: dict
    detectors: DetectorPool
    stop: threading.Event
    evidence_interval_s: float = 300.0
    restart_backoff_s: tuple[float, ...] = (2.0, 5.0, 10.0, 30.0, 60.0)
    read_timeout_s: float = 0.5
    file_speed: float = 1.0
    evidence_guard: EvidenceGuard | None = None


def _camera_of(config: "AppConfig", camera_id: str) -> "CameraConfig | None":
    return next((c for c in config.cameras if c.id == camera_id), None)


def _model_label(detector: object) -> str | None:
    """``name@version`` of a detector's model card (None for a detector without one, e.g. a test double)."""
    card = getattr(detector, "card", None)
    return None if card is None else f"{card.name}@{card.version}"


class CameraWorker:
    """The pipeline thread of one camera (see the module docstring).

    Args:
        camera_id: The camera (its configuration is looked up in ``ctx.config()`` at each start).
        ctx: Shared services.
        runtime: Where the worker reports its state.
    """

    def __init__(self, camera_id: str, ctx: WorkerContext, runtime: CameraRuntime) -> None:
        self.camera_id = camera_id
        self.ctx = ctx
        self.runtime = runtime
        self._thread: threading.Thread | None = None
        self._source: SourceBase | None = None
        self._last_evidence_s: dict[str, float] = {}
        # Crops of each track over its life for the time-lapse strip and clip (bounds: `TrackHistory`), kept for
        # the tracker they were taken under: a new tracker numbers its tracks afresh.
        self._history = TrackHistory()
        self._history_of: object | None = None
        self._decode_seen = None  # the source's decode totals at the last sample (per-sample decode time)
        self._stop = threading.Event()  # this worker only (camera deleted, disabled or its source changed)
        camera = _camera_of(ctx.config(), camera_id)
        # What the running source was opened with: a change of these needs a new source (see ServiceWorkers.sync).
        self.source_key = None if camera is None else (camera.source, camera.sample_fps)

    def start(self) -> "CameraWorker":
        self._thread = threading.Thread(target=self._main, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask this worker to stop (returns at once; it closes its source within about one read timeout)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self.ctx.stop.is_set()

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as the worker or the service is stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._stop.wait(min(remaining, 0.25))
        return True

    # --- the loop ----------------------------------------------------------------------------------------

    def _main(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                ended = self._run()
            except Exception as exc:  # any failure restarts this camera only, after a back-off
                failures += 1
                self.runtime.restarts += 1
                self.runtime.last_error = one_line(exc)
                self.runtime.state = "restarting"
                if isinstance(exc, StreetwatchError):
                    log.error("camera %s: %s", self.camera_id, one_line(exc))
                else:
                    log.exception("camera %s: worker failed", self.camera_id)
                backoff = self.ctx.restart_backoff_s
                if self._wait(backoff[min(failures - 1, len(backoff) - 1)]):
                    break
                continue
            if ended:
                self.runtime.state = "ended"
                return
        self.runtime.state = "stopped"

    def _open(self, camera: "CameraConfig") -> tuple[SourceBase, bool]:
        """The camera's source, started, and whether the worker owns it (push buffers belong to the app)."""
        if camera.source == "push":
            return self.ctx.push_sources[camera.id], False
        options: dict = {"source_id": camera.id, "stop_event": self.ctx.stop}
        text = camera.source.removeprefix("file://")
        if "://" not in text and Path(text).is_file():
            # A video file configured as a camera plays at its own pace (times `file_speed`), stamped from
            # now, and starts again at its end, as a camera keeps streaming (demos, tests).
            options.update(realtime=True, loop=True, speed=self.ctx.file_speed)
        return open_source(camera.source, camera.sample_fps, **options).start(), True

    def _run(self) -> bool:
        """Process frames until shutdown (False) or until a file or folder source ends (True)."""
        config = self.ctx.config()
        camera = _camera_of(config, self.camera_id)
        if camera is None or not camera.enabled:
            self.runtime.state = "disabled"
            return True
        detector = self.ctx.detectors.get(config.model_for(camera))
        pipeline = build_pipeline(config, camera, detector=detector)
        self.runtime.model = _model_label(detector)
        source, owned = self._open(camera)
        self._source = source
        self._decode_seen = None
        self.runtime.state = "running"
        try:
            while not self.stopping:
                frame = source.read(timeout_s=self.ctx.read_timeout_s)
                self.runtime.source_health = source.health()
                if frame is None:
                    if owned and source.finished:
                        return True
                    continue
                current = self.ctx.config()
                if current is not config:
                    config, camera, pipeline = self._reconfigure(current, camera, pipeline, frame)
                    if camera is None or not camera.enabled:
                        self.runtime.state = "disabled"
                        return True
                self._step(pipeline, camera, frame, source)
            return False
        finally:
            if owned:
                source.stop()
            self.runtime.source_health = source.health()

    def _reconfigure(self, config: "AppConfig", camera: "CameraConfig", pipeline: "CameraPipeline",
                     frame: Frame) -> tuple["AppConfig", "CameraConfig | None", "CameraPipeline"]:
        """A new configuration (zones edited): close what the old rules had open, build new rules; the
        tracker carries over, so objects already standing there are not re-detected from scratch."""
        new_camera = _camera_of(config, self.camera_id)
        self._handle(pipeline.finish(frame.ts), camera, None, None)
        if new_camera is None or not new_camera.enabled:
            return config, new_camera, pipeline
        detector = self.ctx.detectors.get(config.model_for(new_camera))
        rebuilt = build_pipeline(config, new_camera, detector=detector)
        self.runtime.model = _model_label(detector)
        if rebuilt.detector is pipeline.detector:
            rebuilt.tracker = pipeline.tracker
        log.info("camera %s: configuration changed; rules rebuilt", self.camera_id)
        return config, new_camera, rebuilt

    def _step(self, pipeline: "CameraPipeline", camera: "CameraConfig", frame: Frame, source: SourceBase) -> None:
        step = pipeline.process(frame)
        if self._history_of is not pipeline.tracker:
            self._history, self._history_of = TrackHistory(), pipeline.tracker
        self._history.update(frame.ts_s, frame.image, step.detections)
        if not self.stopping:  # a deleted camera's last frame must not come back
            self.ctx.latest_frames.put(self.camera_id, frame)
        rt = self.runtime
        rt.frames_processed += 1
        rt.last_frame_ts = frame.ts
        if step.inferred:
            rt.inferred += 1
            rt.inference_ms.append(step.inference_ms)
            rt.inference_s.observe(step.inference_ms / 1000.0)
        for stage, ms in step.stage_ms.items():
            rt.observe_stage(stage, ms / 1000.0, step.stage_cpu_ms.get(stage, 0.0) / 1000.0)
        self._observe_decode(source)
        if source.live:
            rt.lag_s = max(0.0, time.time() - frame.ts_s)
        rt.queue_depth = source.queue_depth()
        for verdict in step.looks:
            rt.second_look[verdict.reason] += 1
        self._handle(step.events, camera, frame, step.detections, step.verdicts)

    def _observe_decode(self, source: SourceBase) -> None:
        """What the source spent decoding since the previous sample (sources that decode video count it)."""
        timing = getattr(source, "decode_timing", None)
        if timing is None:
            return
        totals = timing.snapshot()
        if self._decode_seen is not None:
            spent = totals.minus(self._decode_seen)
            self.runtime.observe_stage("decode", spent.decode_s + spent.convert_s, spent.cpu_s)
        self._decode_seen = totals

    def _handle(self, events: list[Violation], camera: "CameraConfig", frame: Frame | None,
                detections: Detections | None, verdicts: dict | None = None) -> None:
        origin = camera_case_origin(self.ctx.config(), camera)
        for event in events:
            evidence: dict[str, str] = {}
            if frame is not None and detections is not None and self._evidence_due(event, frame):
                evidence = self._write_evidence(event, frame, camera, detections)
            try:
                verdict = (verdicts or {}).get(event.violation_id)
                self.ctx.cases.ingest(event, evidence, origin,
                                      second_look=None if verdict is None else verdict.as_dict())
            except Exception as exc:
                # The next event of the same violation carries the whole state again (events are snapshots,
                # an "updated" for an unknown violation opens it), so one failed write loses no case.
                self.runtime.last_error = f"case store: {one_line(exc)}"
                log.exception("camera %s: event %s of %s not stored", self.camera_id, event.event,
                              event.violation_id)
                continue
            self.runtime.events += 1
            if event.event == "closed":
                self._last_evidence_s.pop(event.violation_id, None)

    def _evidence_due(self, event: Violation, frame: Frame) -> bool:
        if event.event == "closed":
            return False
        last = self._last_evidence_s.get(event.violation_id)
        if event.event == "opened" or last is None or frame.ts_s - last >= self.ctx.evidence_interval_s:
            self._last_evidence_s[event.violation_id] = frame.ts_s
            return True
        return False

    def _write_evidence(self, event: Violation, frame: Frame, camera: "CameraConfig",
                        detections: Detections) -> dict[str, str]:
        """The evidence files of `event`, or none when they could not be written: the case is kept either way,
        the failure is counted and logged, and the violation's next event tries again."""
        guard = self.ctx.evidence_guard
        if guard is not None and not guard.may_write():
            self._last_evidence_s.pop(event.violation_id, None)
            log.warning("camera %s: evidence for %s skipped: evidence disk below the watermark", self.camera_id,
                        event.violation_id)
            return {}
        try:
            paths = self._save_evidence(event, frame, camera, detections)
        except OSError as exc:  # EvidenceWriteError too: a full or read-only disk must not lose the case itself
            self._last_evidence_s.pop(event.violation_id, None)
            if guard is not None:
                guard.failed(one_line(exc))
            log.error("camera %s: evidence for %s not written: %s", self.camera_id, event.violation_id,
                      one_line(exc))
            return {}
        try:  # the strip and clip of the object's dwell: their failure is counted too, the frame's files are kept
            paths.update(self._save_timelapse(event, frame, camera, Path(paths["annotated"])))
        except OSError as exc:
            if guard is not None:
                guard.failed(one_line(exc))
            log.error("camera %s: time-lapse of %s not written: %s", self.camera_id, event.violation_id,
                      one_line(exc))
            return paths
        if guard is not None:
            guard.written()
        return paths

    def _save_timelapse(self, event: Violation, frame: Frame, camera: "CameraConfig",
                        annotated: Path) -> dict[str, str]:
        stem = annotated.name.removesuffix(".jpg")
        return save_timelapse(annotated.parent, stem, event, frame, self._history, load_timezone(camera.timezone),
                              kind_color(event.kind), self.camera_id)

    def _save_evidence(self, event: Violation, frame: Frame, camera: "CameraConfig",
                       detections: Detections) -> dict[str, str]:
        day = frame.ts.astimezone(timezone.utc).strftime("%Y-%m-%d")
        out_dir = self.ctx.evidence_dir / self.camera_id / day
        stem = f"{event.violation_id}-{frame.ts.strftime('%H%M%S')}"
        return save_evidence(out_dir, event, frame, camera, detections, stem=stem)


class ServiceWorkers:
    """Every background thread of a serving app: one `CameraWorker` per enabled camera, plus outbox delivery.

    Args:
        ctx: Shared services.
        runtimes: Filled with one `CameraRuntime` per camera (the API reads them).
        outbox: The delivering outbox worker, or None when another process delivers.
        outbox_poll_s: Sleep between outbox polls when nothing was due.
        cameras: Whether to run the camera pipelines (False: delivery only).
        cluster: Run the cameras on a Ray cluster instead of threads here (`service.cluster.engine`).
    """

    def __init__(self, ctx: WorkerContext, runtimes: dict[str, CameraRuntime],
                 outbox: "OutboxWorker | None" = None, outbox_poll_s: float = 1.0, cameras: bool = True,
                 cluster: "RayCameraEngine | None" = None) -> None:
        # With a cluster engine the cameras run there (`service.cluster`): start, sync and stop go to it.
        self.cluster = cluster
        self.run_cameras = cameras and cluster is None
        self.ctx = ctx
        self.runtimes = runtimes
        self.outbox = outbox
        self.outbox_poll_s = outbox_poll_s
        self.cameras: dict[str, CameraWorker] = {}
        self._outbox_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "ServiceWorkers":
        if self.cluster is not None:
            self.cluster.start()
        with self._lock:
            for camera in (self.ctx.config().cameras if self.run_cameras else []):
                runtime = self.runtimes.setdefault(camera.id, CameraRuntime(camera.id))
                if not camera.enabled:
                    runtime.state = "disabled"
                    continue
                self.cameras[camera.id] = CameraWorker(camera.id, self.ctx, runtime).start()
        if self.outbox is not None:
            self._outbox_thread = threading.Thread(target=self._deliver, name="outbox", daemon=True)
            self._outbox_thread.start()
        return self

    def sync(self) -> None:
        """Bring the camera workers in line with the current configuration (after an API change).

        A camera without a running worker that is enabled gets one; a deleted or disabled camera has its
        worker stopped; a camera whose source or sample rate changed has its worker replaced (a new source is
        opened). Zone, rule and model edits need nothing here: a running worker rebuilds its pipeline on its
        next frame (`CameraWorker._reconfigure`). A replaced worker reports into a fresh `CameraRuntime`, so
        the old thread, finishing its last read, cannot overwrite the new one's state. Returns at once.
        """
        if self.cluster is not None and not self.ctx.stop.is_set():
            self.cluster.sync()
        if not self.run_cameras or self.ctx.stop.is_set():
            return
        with self._lock:
            config = self.ctx.config()
            wanted = {c.id: c for c in config.cameras}
            for camera_id, worker in list(self.cameras.items()):
                camera = wanted.get(camera_id)
                if camera is not None and camera.enabled and worker.source_key == (camera.source, camera.sample_fps):
                    continue
                worker.stop()
                del self.cameras[camera_id]
                if camera is None:
                    log.info("camera %s: deleted; worker stopped", camera_id)
                else:
                    log.info("camera %s: %s; worker stopped", camera_id,
                             "disabled" if not camera.enabled else "source changed")
            for camera_id in list(self.runtimes):
                if camera_id not in wanted:
                    del self.runtimes[camera_id]
                    self.ctx.latest_frames.discard(camera_id)
            for camera in config.cameras:
                if camera.id in self.cameras:
                    continue
                runtime = CameraRuntime(camera.id)
                self.runtimes[camera.id] = runtime
                if not camera.enabled:
                    runtime.state = "disabled"
                    continue
                self.cameras[camera.id] = CameraWorker(camera.id, self.ctx, runtime).start()
                log.info("camera %s: worker started", camera.id)

    def _deliver(self) -> None:
        while not self.ctx.stop.is_set():
            try:
                self.outbox.run_forever(self.ctx.stop, self.outbox_poll_s)
            except Exception:  # the database went away for a moment: keep the delivery loop alive
                log.exception("outbox delivery failed; retrying")
                self.ctx.stop.wait(5.0)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.ctx.stop.set()
        deadline = time.monotonic() + timeout_s
        if self.cluster is not None:
            self.cluster.stop(timeout_s)
        with self._lock:
            workers = list(self.cameras.values())
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self._outbox_thread is not None:
            self._outbox_thread.join(max(0.0, deadline - time.monotonic()))
