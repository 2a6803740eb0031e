"""`streetwatch run`: one camera's pipeline over a source, offline, writing one JSON line per violation.

The pipeline comes from `service.pipeline.build_pipeline`. Evidence for each violation is the frame on which it
became due, annotated with the camera's zones and the violation's boxes, plus a crop around them
(`service.evidence.save_evidence`); both are written next to the output file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, TextIO

import cv2

from detector.pipeline import CameraPipeline
from detector.rules import Violation
from detector.types import Detections, Frame
from service.config import AppConfig, CameraConfig
from service.evidence import annotate, save_evidence

__all__ = ["RunSummary", "run_camera", "violation_record"]


@dataclass
class RunSummary:
    frames: int = 0
    violations: int = 0
    events: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    inference_ms: list[float] = field(default_factory=list)


def violation_record(v: Violation, config: AppConfig, evidence: dict[str, str] | None, events: int,
                     opened_at: datetime | None = None, second_look: dict | None = None) -> dict:
    return {
        "violation_id": v.violation_id,
        "kind": v.kind,
        "category_code": config.category_codes.get(v.kind),
        "camera": v.camera_id,
        "zone": v.zone_id,
        "opened_at": opened_at.isoformat() if opened_at else None,
        "first_seen": v.first_seen.isoformat(),
        "last_seen": v.last_seen.isoformat(),
        "dwell_s": round(v.dwell_s, 1),
        "boxes": [[round(float(c), 1) for c in box] for box in v.xyxy],
        "score": round(float(v.score), 4),
        "track_ids": list(v.track_ids),
        "classes": list(v.class_names),
        "status": v.status,
        "merged_into": v.merged_into,
        "events": events,
        "evidence": (evidence or {}).get("annotated"),
        "evidence_files": evidence or {},
        "second_look": second_look,
    }


def run_camera(config: AppConfig, camera: CameraConfig, frames: Iterable[Frame], out: TextIO,
               evidence_dir: Path, pipeline: CameraPipeline, annotated_video: Path | None = None,
               on_frame: Callable[[RunSummary], None] | None = None) -> RunSummary:
    """Run the pipeline over `frames`; write one JSON line per violation when it closes."""
    summary = RunSummary()
    evidence: dict[str, dict[str, str]] = {}
    event_counts: dict[str, int] = {}
    opened_at: dict[str, datetime] = {}
    looks: dict[str, dict] = {}
    writer = None

    def handle(events: list[Violation], frame: Frame | None, detections: Detections | None,
               verdicts: dict | None = None) -> None:
        for e in events:
            if verdicts and e.violation_id in verdicts:
                looks[e.violation_id] = verdicts[e.violation_id].as_dict()
            summary.events += 1
            event_counts[e.violation_id] = event_counts.get(e.violation_id, 0) + 1
            if e.event == "opened" and frame is not None and detections is not None:
                opened_at[e.violation_id] = frame.ts
                evidence[e.violation_id] = save_evidence(evidence_dir, e, frame, camera, detections)
            if e.event == "closed":
                summary.violations += 1
                out.write(json.dumps(violation_record(e, config, evidence.get(e.violation_id),
                                                      event_counts[e.violation_id], opened_at.get(e.violation_id),
                                                      looks.get(e.violation_id)),
                                     ensure_ascii=False) + "\n")
                out.flush()

    try:
        for frame in frames:
            step = pipeline.process(frame)
            summary.frames += 1
            summary.first_ts = summary.first_ts or frame.ts
            summary.last_ts = frame.ts
            summary.inference_ms.append(step.inference_ms)
            handle(step.events, frame, step.detections, step.verdicts)
            if annotated_video is not None:
                image = annotate(frame, camera, step.detections)
                if writer is None:
                    fps = float(camera.sample_fps or 1.0)
                    writer = cv2.VideoWriter(str(annotated_video), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (frame.width_px, frame.height_px))
                writer.write(image)
            if on_frame is not None:
                on_frame(summary)
        if summary.last_ts is not None:
            handle(pipeline.finish(summary.last_ts), None, None)
    finally:
        if writer is not None:
            writer.release()
    return summary
