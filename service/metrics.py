"""``/metrics``: the service's state as Prometheus metrics, through ``prometheus_client``.

`StreetwatchCollector` is a custom collector: every scrape it reads the service's existing state and yields
metric families; nothing is counted twice and no metric object lives outside the app.

- Gauges computed when scraped: cases, outbox rows and drone flights by status, and the running flight's
  progress, from the database (so they hold whichever process runs the flight).
- Counters kept by this process: pushed frames (`PushCounters`, one per app), camera workers
  (`service.workers.CameraRuntime`), outbox delivery outcomes, evidence writes.
- ``streetwatch_camera_inference_seconds``: a histogram of detector time per camera (`SecondsHistogram`,
  filled by the camera worker).
- ``streetwatch_camera_stage_seconds`` (wall time per sample, a histogram) and
  ``streetwatch_camera_stage_cpu_seconds_total`` (CPU seconds, a counter): where each camera's time goes, per
  stage (decode, motion, preprocess, inference, postprocess, tracking, rules, second_look;
  `detector.pipeline.STAGES`).
- ``streetwatch_build_info``: version, git commit (when known) and the models the cameras run.
- ``process_*`` and ``python_info`` from prometheus_client's process and platform collectors.

Every family is yielded on every scrape, with no samples when there is nothing to report, so each name is
always listed in the exposition (``# TYPE`` line) and dashboards can be checked against it.
Values are written by ``prometheus_client.generate_latest`` at full precision (``1.23456789e+08``, where the
hand-written exposition this replaces printed ``1.23457e+08`` and counters stopped rising visibly).

Example:
    >>> body = render_metrics(session_factory, PushCounters(), runtimes={})  # doctest: +SKIP
    >>> b"# TYPE streetwatch_cases gauge" in body  # doctest: +SKIP
    True
"""

from __future__ import annotations

import bisect
import importlib.metadata
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                    InfoMetricFamily, Metric)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import CASE_STATUSES, FLIGHT_STATUSES, OUTBOX_STATUSES, Case, Flight, OutboxMessage

__all__ = ["CONTENT_TYPE", "INFERENCE_BUCKETS_S", "STAGE_BUCKETS_S", "BuildInfo", "HistogramSnapshot", "PushCounters",
           "SecondsHistogram", "StreetwatchCollector", "git_commit", "metrics_registry", "read_build_info",
           "render_metrics"]

# The classic text format (0.0.4): what generate_latest writes, and what every Prometheus version scrapes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Detector time per sample: a quantised CPU model takes a few ms, a large model on a busy CPU seconds.
INFERENCE_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One pipeline stage per sample: tracking and rules take well under a millisecond, decoding a keyframe a few.
STAGE_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_REPO_DIR = Path(__file__).resolve().parents[1]


class PushCounters:
    """Pushed frames accepted and rejected (by reason) per camera; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[tuple[str, str]] = Counter()

    def accepted(self, camera_id: str) -> None:
        with self._lock:
            self._accepted[camera_id] += 1

    def rejected(self, camera_id: str, reason: str) -> None:
        with self._lock:
            self._rejected[(camera_id, reason)] += 1

    def snapshot(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        with self._lock:
            return dict(self._accepted), dict(self._rejected)


@dataclass(frozen=True)
class HistogramSnapshot:
    """A histogram's state at one moment.

    Attributes:
        bounds_s: Upper bounds of the finite buckets, ascending (seconds).
        cumulative: Observations at or below each bound, then the total (the ``+Inf`` bucket); one longer
            than `bounds_s`.
        sum_s: Sum of all observations (seconds).
    """

    bounds_s: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]

    def buckets(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs as Prometheus names them, ending with ``+Inf``."""
        return [(floatToGoString(b), n) for b, n in zip(self.bounds_s, self.cumulative)] + [
            ("+Inf", self.cumulative[-1])]


class SecondsHistogram:
    """Observations in seconds counted into fixed buckets since the process started; thread-safe (a camera
    worker observes, a scrape reads).

    Example:
        >>> h = SecondsHistogram((0.01, 0.1))
        >>> for t_s in (0.004, 0.02, 0.5):
        ...     h.observe(t_s)
        >>> h.snapshot().cumulative
        (1, 2, 3)
    """

    def __init__(self, bounds_s: Sequence[float] = INFERENCE_BUCKETS_S) -> None:
        bounds = tuple(float(b) for b in bounds_s)
        if not bounds or any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[0] <= 0:
            raise ValueError(f"histogram bounds must be positive and ascending, got {bounds!r}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is above every bound
        self._sum_s = 0.0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # Picklable without its lock: camera actors on a Ray cluster send their health to the API process.
        with self._lock:
            return {"_bounds": self._bounds, "_counts": list(self._counts), "_sum_s": self._sum_s}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def observe(self, value_s: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (Prometheus buckets are "le").
        i = bisect.bisect_left(self._bounds, value_s)
        with self._lock:
            self._counts[i] += 1
            self._sum_s += value_s

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts, sum_s = list(self._counts), self._sum_s
        cumulative, total = [], 0
        for n in counts:
            total += n
            cumulative.append(total)
        return HistogramSnapshot(self._bounds, tuple(cumulative), sum_s)


@dataclass(frozen=True)
class BuildInfo:
    """What runs: the package version and the git commit it was built from (``unknown`` when not known)."""

    version: str
    git_commit: str


def git_commit(repo_dir: Path) -> str | None:
    """The commit checked out in `repo_dir` (its ``.git`` folder), or None when there is none.

    Read from the files rather than by running ``git``: a scrape must not start processes, and the Docker
    image has no git; the format of ``HEAD``, loose refs and ``packed-refs`` is stable.

    Example:
        >>> git_commit(Path("/nonexistent")) is None
        True
    """
    git_dir = repo_dir / ".git"
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head or None  # a detached HEAD holds the commit itself
        ref = head.removeprefix("ref: ").strip()
        loose = git_dir / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip() or None
        packed = git_dir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        return None
    return None


def read_build_info(repo_dir: Path = _REPO_DIR) -> BuildInfo:
    """The version of the installed ``streetwatch`` package and its git commit: ``STREETWATCH_GIT_COMMIT``
    (set when an image is built), else the checkout the code runs from."""
    try:
        version = importlib.metadata.version("streetwatch")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = os.environ.get("STREETWATCH_GIT_COMMIT") or git_commit(repo_dir) or "unknown"
    return BuildInfo(version=version, git_commit=commit)


def _counts_by_status(session: Session, column, statuses: Iterable[str]) -> dict[str, int]:
    counts = {s: 0 for s in statuses}
    for status, n in session.execute(select(column, func.count()).group_by(column)):
        counts[status] = n
    return counts


def _gauge(name: str, doc: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _counter(name: str, doc: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class StreetwatchCollector(Collector):
    """Yields the service's metric families from its state on every `collect` (one scrape).

    Args:
        session_factory: For the case, outbox and flight gauges.
        push: Pushed-frame counters.
        runtimes: Camera id -> `service.workers.CameraRuntime` (cameras run by this process).
        outbox_outcomes: (adapter, outcome) -> delivery attempts finished by this process.
        evidence: `service.evidence_guard.EvidenceState` of this process's evidence writes (None: its
            families are listed without samples).
        build: Version and commit for ``streetwatch_build_info`` (None: read now).
    """

    def __init__(self, session_factory: sessionmaker[Session], push: PushCounters,
                 runtimes: Mapping[str, Any] | None = None,
                 outbox_outcomes: Mapping[tuple[str, str], int] | None = None,
                 evidence: Any = None, build: BuildInfo | None = None) -> None:
        self._session_factory = session_factory
        self._push = push
        self._runtimes = runtimes if runtimes is not None else {}
        self._outbox_outcomes = outbox_outcomes if outbox_outcomes is not None else {}
        self._evidence = evidence
        self._build = build

    def collect(self) -> Iterator[Metric]:
        yield from self._build_info()
        yield from self._database()
        yield from self._push_frames()
        yield from self._cameras()
        yield from self._outbox_and_evidence()

    def _build_info(self) -> Iterator[Metric]:
        build = self._build or read_build_info()
        models = sorted({rt.model for rt in list(self._runtimes.values()) if getattr(rt, "model", None)})
        info = InfoMetricFamily("streetwatch_build", "What runs: version, git commit and the models (name@version) "
                                                     "the camera workers use.")
        info.add_metric([], {"version": build.version, "git_commit": build.git_commit, "models": ",".join(models)})
        yield info

    def _database(self) -> Iterator[Metric]:
        with self._session_factory() as session:
            cases = _counts_by_status(session, Case.status, CASE_STATUSES)
            outbox = _counts_by_status(session, OutboxMessage.status, OUTBOX_STATUSES)
            flights = _counts_by_status(session, Flight.status, FLIGHT_STATUSES)
            by_kind = session.execute(select(Case.kind, Case.status, func.count())
                                      .group_by(Case.kind, Case.status)).all()
            running = session.execute(
                select(Flight.id, Flight.progress, Flight.frames_done, Flight.frames_total, Flight.eta_s)
                .where(Flight.status == "running").order_by(Flight.id)).all()
        yield _gauge("streetwatch_cases", "Cases by status.", ["status"],
                     (([s], n) for s, n in sorted(cases.items())))
        # A family of its own: a kind label on streetwatch_cases would split the series dashboards and alerts
        # already select by status alone. Only the (kind, status) pairs that have cases are listed.
        yield _gauge("streetwatch_cases_by_kind", "Cases by violation kind and status.", ["kind", "status"],
                     (([k, s], n) for k, s, n in sorted(by_kind)))
        yield _gauge("streetwatch_outbox_messages", "Outbox rows by status (backlog: pending, sending).", ["status"],
                     (([s], n) for s, n in sorted(outbox.items())))
        yield _gauge("streetwatch_outbox_backlog", "Deliveries owed to case systems (outbox rows pending or "
                                                   "sending).", [],
                     [([], outbox.get("pending", 0) + outbox.get("sending", 0))])
        yield _gauge("streetwatch_flights", "Drone flight jobs by status.", ["status"],
                     (([s], n) for s, n in sorted(flights.items())))
        yield _gauge("streetwatch_flight_progress_ratio", "Share of a running flight job done (0..1).", ["flight_id"],
                     (([r.id], float(r.progress or 0.0)) for r in running))
        yield _gauge("streetwatch_flight_frames_done", "Sampled frames a running flight job analysed.", ["flight_id"],
                     (([r.id], r.frames_done or 0) for r in running))
        yield _gauge("streetwatch_flight_frames_total", "Sampled frames a running flight job analyses.",
                     ["flight_id"], (([r.id], r.frames_total) for r in running if r.frames_total is not None))
        yield _gauge("streetwatch_flight_eta_seconds", "Estimated seconds left of a running flight job.",
                     ["flight_id"], (([r.id], r.eta_s) for r in running if r.eta_s is not None))

    def _push_frames(self) -> Iterator[Metric]:
        accepted, rejected = self._push.snapshot()
        yield _counter("streetwatch_push_frames_accepted_total", "Pushed frames accepted, per camera.",
                       ["camera_id"], (([c], n) for c, n in sorted(accepted.items())))
        yield _counter("streetwatch_push_frames_rejected_total", "Pushed frames rejected, per camera and reason.",
                       ["camera_id", "reason"], (([c, r], n) for (c, r), n in sorted(rejected.items())))

    def _cameras(self) -> Iterator[Metric]:
        rts = sorted(dict(self._runtimes).items())  # a copy: workers are added while we read
        health = [(c, rt.source_health) for c, rt in rts if rt.source_health is not None]
        cam = ["camera_id"]
        yield _gauge("streetwatch_camera_up", "1 while the camera's worker runs and its source streams.", cam,
                     (([c], float(rt.state == "running" and rt.source_health is not None
                                  and rt.source_health.state.value == "streaming")) for c, rt in rts))
        yield _gauge("streetwatch_camera_fps_in", "Frames per second arriving from the source.", cam,
                     (([c], h.fps_in) for c, h in health))
        yield _gauge("streetwatch_camera_fps_sampled", "Frames per second sampled for analysis.", cam,
                     (([c], h.fps_sampled) for c, h in health))
        yield _counter("streetwatch_camera_frames_dropped_total",
                       "Sampled frames dropped because the pipeline was behind.", cam,
                       (([c], h.frames_dropped) for c, h in health))
        yield _counter("streetwatch_camera_frames_rejected_total",
                       "Frames refused by the source (black, frozen, corrupt, ...).", cam,
                       (([c], h.frames_rejected) for c, h in health))
        yield _counter("streetwatch_camera_reconnects_total", "Source reconnection attempts.", cam,
                       (([c], h.reconnects) for c, h in health))
        yield _counter("streetwatch_camera_frames_processed_total", "Samples through the pipeline.", cam,
                       (([c], rt.frames_processed) for c, rt in rts))
        inference = HistogramMetricFamily("streetwatch_camera_inference_seconds",
                                          "Detector time per analysed sample (the motion gate's skips excluded).",
                                          labels=cam)
        for c, rt in rts:
            snap = rt.inference_s.snapshot()
            inference.add_metric([c], snap.buckets(), sum_value=snap.sum_s)
        yield inference
        stages = HistogramMetricFamily("streetwatch_camera_stage_seconds",
                                       "Time per sample in each stage: decode (in the source, the sampled picture "
                                       "and everything decoded to reach it), motion, preprocess, inference, "
                                       "postprocess, tracking, rules, second_look.", labels=["camera_id", "stage"])
        for c, rt in rts:
            for stage, histogram in sorted(dict(getattr(rt, "stage_s", {})).items()):
                snap = histogram.snapshot()
                stages.add_metric([c, stage], snap.buckets(), sum_value=snap.sum_s)
        yield stages
        yield _counter("streetwatch_camera_stage_cpu_seconds_total",
                       "CPU seconds spent in each stage (rate: cores per stage; decode is the source's reader "
                       "thread, the others the camera worker's).", ["camera_id", "stage"],
                       (([c, stage], cpu_s) for c, rt in rts
                        for stage, cpu_s in sorted(dict(getattr(rt, "stage_cpu_s", {})).items())))
        yield _gauge("streetwatch_camera_queue_depth", "Sampled frames waiting for the pipeline.", cam,
                     (([c], rt.queue_depth) for c, rt in rts))
        yield _gauge("streetwatch_camera_lag_seconds",
                     "Wall-clock time minus the timestamp of the last processed sample (live sources).", cam,
                     (([c], rt.lag_s) for c, rt in rts if rt.lag_s is not None))
        yield _counter("streetwatch_camera_restarts_total", "Worker restarts after a failure.", cam,
                       (([c], rt.restarts) for c, rt in rts))
        yield _counter("streetwatch_second_look_total",
                       "Second looks before a case, by verdict (agreed opens the case; not_found / other_class hold "
                       "it back).", ["camera_id", "verdict"],
                       (([c, reason], n) for c, rt in rts for reason, n in sorted(dict(rt.second_look).items())))

    def _outbox_and_evidence(self) -> Iterator[Metric]:
        yield _counter("streetwatch_outbox_deliveries_total",
                       "Delivery attempts finished by this process, per adapter and outcome (sent, retry, dead).",
                       ["adapter", "outcome"],
                       (([a, o], n) for (a, o), n in sorted(dict(self._outbox_outcomes).items())))
        e = self._evidence
        yield _counter("streetwatch_evidence_write_failures_total",
                       "Evidence image sets that could not be written (the case was kept without them).", [],
                       [] if e is None else [([], e.write_failures_total)])
        yield _counter("streetwatch_evidence_skipped_total",
                       "Evidence image sets not written, by reason (low_disk: below the free-space watermark).",
                       ["reason"], [] if e is None else [(["low_disk"], e.skipped_low_disk_total)])
        yield _counter("streetwatch_evidence_written_total", "Evidence image sets written.", [],
                       [] if e is None else [([], e.written_total)])
        yield _gauge("streetwatch_evidence_disk_free_bytes", "Free space on the evidence disk.", [],
                     [] if e is None or e.free_bytes is None else [([], e.free_bytes)])


def metrics_registry(collector: StreetwatchCollector, process: bool = True) -> CollectorRegistry:
    """A registry of `collector` plus, with `process`, the process (CPU, memory, open files; Linux), Python
    platform and garbage-collector collectors. One per scrape: nothing global, nothing at import.

    ``auto_describe=False``: registering must not run a scrape (the collector queries the database).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def render_metrics(session_factory: sessionmaker[Session], push: PushCounters,
                   runtimes: Mapping[str, Any] | None = None,
                   outbox_outcomes: Mapping[tuple[str, str], int] | None = None,
                   evidence: Any = None, build: BuildInfo | None = None) -> bytes:
    """The whole exposition (text format 0.0.4, `CONTENT_TYPE`); arguments as `StreetwatchCollector`'s."""
    collector = StreetwatchCollector(session_factory, push, runtimes, outbox_outcomes, evidence, build)
    return generate_latest(metrics_registry(collector))
