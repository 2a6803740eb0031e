"""Prometheus text exposition (format 0.0.4) of the service's counters and gauges, without a client library.

Gauges are computed when scraped (cases, outbox rows and drone flights by status, and the running flight's
progress, from the database, so they hold whichever process runs the flight); counters of pushed
frames live in `PushCounters`, one per app (no module-level registry: nothing is created at import).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import CASE_STATUSES, FLIGHT_STATUSES, OUTBOX_STATUSES, Case, Flight, OutboxMessage

__all__ = ["CONTENT_TYPE", "PushCounters", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return lines


def _counts_by_status(session: Session, column, statuses: Iterable[str]) -> dict[str, int]:
    counts = {s: 0 for s in statuses}
    for status, n in session.execute(select(column, func.count()).group_by(column)):
        counts[status] = n
    return counts


def render_metrics(session_factory: sessionmaker[Session], push: PushCounters,
                   runtimes: Mapping[str, Any] | None = None,
                   outbox_outcomes: Mapping[tuple[str, str], int] | None = None,
                   evidence: Any = None) -> str:
    """The whole exposition text, ending with a newline.

    Args:
        session_factory: For the case and outbox gauges.
        push: Pushed-frame counters.
        runtimes: Camera id -> `service.workers.CameraRuntime` (cameras run by this process).
        outbox_outcomes: (adapter, outcome) -> delivery attempts finished by this process.
        evidence: `service.evidence_guard.EvidenceState` of this process's evidence writes (None: left out).
    """
    with session_factory() as session:
        cases = _counts_by_status(session, Case.status, CASE_STATUSES)
        outbox = _counts_by_status(session, OutboxMessage.status, OUTBOX_STATUSES)
        flights = _counts_by_status(session, Flight.status, FLIGHT_STATUSES)
        running = session.execute(select(Flight.id, Flight.progress, Flight.frames_done, Flight.frames_total,
                                         Flight.eta_s).where(Flight.status == "running").order_by(Flight.id)).all()
    accepted, rejected = push.snapshot()
    lines: list[str] = []
    lines += _family("streetwatch_cases", "gauge", "Cases by status.",
                     (({"status": s}, n) for s, n in sorted(cases.items())))
    lines += _family("streetwatch_outbox_messages", "gauge", "Outbox rows by status (backlog: pending, sending).",
                     (({"status": s}, n) for s, n in sorted(outbox.items())))
    lines += _family("streetwatch_outbox_backlog", "gauge",
                     "Deliveries owed to case systems (outbox rows pending or sending).",
                     [({}, outbox.get("pending", 0) + outbox.get("sending", 0))])
    lines += _family("streetwatch_flights", "gauge", "Drone flight jobs by status.",
                     (({"status": s}, n) for s, n in sorted(flights.items())))
    lines += _family("streetwatch_flight_progress_ratio", "gauge", "Share of a running flight job done (0..1).",
                     (({"flight_id": r.id}, round(float(r.progress or 0.0), 4)) for r in running))
    lines += _family("streetwatch_flight_frames_done", "gauge", "Sampled frames a running flight job analysed.",
                     (({"flight_id": r.id}, r.frames_done or 0) for r in running))
    lines += _family("streetwatch_flight_frames_total", "gauge", "Sampled frames a running flight job analyses.",
                     (({"flight_id": r.id}, r.frames_total) for r in running if r.frames_total is not None))
    lines += _family("streetwatch_flight_eta_seconds", "gauge", "Estimated seconds left of a running flight job.",
                     (({"flight_id": r.id}, r.eta_s) for r in running if r.eta_s is not None))
    lines += _family("streetwatch_push_frames_accepted_total", "counter", "Pushed frames accepted, per camera.",
                     (({"camera_id": c}, n) for c, n in sorted(accepted.items())))
    lines += _family("streetwatch_push_frames_rejected_total", "counter",
                     "Pushed frames rejected, per camera and reason.",
                     (({"camera_id": c, "reason": r}, n) for (c, r), n in sorted(rejected.items())))
    rts = sorted((runtimes or {}).items())
    health = [(c, rt.source_health) for c, rt in rts if rt.source_health is not None]
    lines += _family("streetwatch_camera_up", "gauge", "1 while the camera's worker runs and its source streams.",
                     (({"camera_id": c}, float(rt.state == "running" and rt.source_health is not None
                                               and rt.source_health.state.value == "streaming")) for c, rt in rts))
    lines += _family("streetwatch_camera_fps_in", "gauge", "Frames per second arriving from the source.",
                     (({"camera_id": c}, round(h.fps_in, 3)) for c, h in health))
    lines += _family("streetwatch_camera_fps_sampled", "gauge", "Frames per second sampled for analysis.",
                     (({"camera_id": c}, round(h.fps_sampled, 3)) for c, h in health))
    lines += _family("streetwatch_camera_frames_dropped_total", "counter",
                     "Sampled frames dropped because the pipeline was behind.",
                     (({"camera_id": c}, h.frames_dropped) for c, h in health))
    lines += _family("streetwatch_camera_frames_rejected_total", "counter",
                     "Frames refused by the source (black, frozen, corrupt, ...).",
                     (({"camera_id": c}, h.frames_rejected) for c, h in health))
    lines += _family("streetwatch_camera_reconnects_total", "counter", "Source reconnection attempts.",
                     (({"camera_id": c}, h.reconnects) for c, h in health))
    lines += _family("streetwatch_camera_frames_processed_total", "counter", "Samples through the pipeline.",
                     (({"camera_id": c}, rt.frames_processed) for c, rt in rts))
    lines += _family("streetwatch_camera_inference_ms", "gauge", "Median detector time over recent samples.",
                     (({"camera_id": c}, round(rt.median_inference_ms(), 2)) for c, rt in rts
                      if rt.median_inference_ms() is not None))
    lines += _family("streetwatch_camera_queue_depth", "gauge", "Sampled frames waiting for the pipeline.",
                     (({"camera_id": c}, rt.queue_depth) for c, rt in rts))
    lines += _family("streetwatch_camera_lag_seconds", "gauge",
                     "Wall-clock time minus the timestamp of the last processed sample (live sources).",
                     (({"camera_id": c}, round(rt.lag_s, 3)) for c, rt in rts if rt.lag_s is not None))
    lines += _family("streetwatch_camera_restarts_total", "counter", "Worker restarts after a failure.",
                     (({"camera_id": c}, rt.restarts) for c, rt in rts))
    lines += _family("streetwatch_second_look_total", "counter",
                     "Second looks before a case, by verdict (agreed opens the case; not_found / other_class hold "
                     "it back).",
                     (({"camera_id": c, "verdict": reason}, n) for c, rt in rts for reason, n in
                      sorted(rt.second_look.items())))
    lines += _family("streetwatch_outbox_deliveries_total", "counter",
                     "Delivery attempts finished by this process, per adapter and outcome (sent, retry, dead).",
                     (({"adapter": a, "outcome": o}, n) for (a, o), n in sorted((outbox_outcomes or {}).items())))
    if evidence is not None:
        lines += _family("streetwatch_evidence_write_failures_total", "counter",
                         "Evidence image sets that could not be written (the case was kept without them).",
                         [({}, evidence.write_failures_total)])
        lines += _family("streetwatch_evidence_skipped_total", "counter",
                         "Evidence image sets not written, by reason (low_disk: below the free-space watermark).",
                         [({"reason": "low_disk"}, evidence.skipped_low_disk_total)])
        lines += _family("streetwatch_evidence_written_total", "counter", "Evidence image sets written.",
                         [({}, evidence.written_total)])
        if evidence.free_bytes is not None:
            lines += _family("streetwatch_evidence_disk_free_bytes", "gauge", "Free space on the evidence disk.",
                             [({}, evidence.free_bytes)])
    return "\n".join(lines) + "\n"
