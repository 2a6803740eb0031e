"""`streetwatch run`: one camera's pipeline over a source, offline, writing one JSON line per violation.

Evidence for each violation is the frame on which it became due, annotated with the camera's zones and the
violation's boxes, plus a crop around them; both are written next to the output file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, TextIO

import cv2
import numpy as np

from detector.annotate import color_for, draw_detections, draw_polygon
from detector.pipeline import CameraPipeline
from detector.rules import Violation
from detector.runtime import OnnxDetector, RuntimeOptions, TilingConfig, resolve_card
from detector.types import Detections, Frame
from service.config import (
    AppConfig,
    CameraConfig,
    ModelSelection,
    build_motion_gate,
    build_rule_engine,
    build_tracker,
)

__all__ = ["RunSummary", "build_pipeline", "load_camera_model", "run_camera", "violation_record", "save_evidence"]

ZONE_COLORS = {"no_vending": (0, 0, 255), "vending_allowed": (0, 200, 0), "bike_parking": (255, 160, 0),
               "watch_area": (0, 200, 255), "exclusion": (128, 128, 128)}
# Classes each rule kind tracks (pipeline names); anything else the model finds is dropped before tracking.
TRACKED_CLASSES = {"stall", "bicycle", "ebike"}


@dataclass
class RunSummary:
    frames: int = 0
    violations: int = 0
    events: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    inference_ms: list[float] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def load_camera_model(selection: ModelSelection, threads: int = 0) -> OnnxDetector:
    """The detector a camera's model selection names, at its ``input_wh`` when it sets one.

    Raises:
        ModelLoadError / ModelCardError: The model is missing, or its network has a fixed input size other
            than ``input_wh`` (the message names both).
    """
    card = resolve_card(selection.name)
    if selection.input_wh is not None:
        w, h = selection.input_wh
        card = card.model_copy(update={"input": card.input.model_copy(update={"width_px": w, "height_px": h})})
    return OnnxDetector(card, RuntimeOptions(intra_op_threads=threads))


def build_pipeline(config: AppConfig, camera: CameraConfig, detector: OnnxDetector | None = None,
                   threads: int = 0) -> CameraPipeline:
    """The camera's pipeline with its effective model, tracker and rules from the configuration."""
    selection = config.model_for(camera)
    detector = detector or load_camera_model(selection, threads)
    class_map = {**detector.card.violation_classes, **selection.class_map}
    track_score = detector.card.thresholds.track_score
    engine = build_rule_engine(config, camera, class_names=detector.class_names,
                               class_map=detector.card.violation_classes, track_score=track_score)
    return CameraPipeline(camera.id, detector, build_tracker(config, camera, track_score=track_score), engine,
                          class_map, TRACKED_CLASSES, selection.conf,
                          tiling=TilingConfig(overlap_frac=0.2) if selection.tile else None,
                          motion_gate=build_motion_gate(config, camera))


def annotate(frame: Frame, camera: CameraConfig, detections: Detections) -> np.ndarray:
    """The frame with the camera's zones and the tracked boxes (pipeline class names) drawn."""
    image = frame.image
    for zone in camera.zones:
        image = draw_polygon(image, np.asarray(zone.polygon), ZONE_COLORS.get(zone.kind, (200, 200, 200)),
                             label=zone.id, fill_alpha=0.15)
    if not len(detections):
        return image
    names = detections.data.get("class_name")
    lookup = None if names is None else {int(c): str(n) for c, n in zip(detections.class_id, names)}
    return draw_detections(image, detections, lookup)


def save_evidence(out_dir: Path, violation: Violation, frame: Frame, camera: CameraConfig,
                  detections: Detections, stem: str | None = None) -> dict[str, str]:
    """Write the annotated full frame, the original frame and a crop of the violation's boxes.

    Files are ``<stem>.jpg``, ``<stem>.orig.jpg`` and ``<stem>.crop.jpg`` (default stem: the violation id).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _slug(stem or violation.violation_id)
    annotated = annotate(frame, camera, detections)
    for box in violation.xyxy:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(annotated, (x1, y1), (x2, y2), color_for(7), 3, cv2.LINE_AA)
    paths = {"annotated": out_dir / f"{stem}.jpg", "original": out_dir / f"{stem}.orig.jpg",
             "crop": out_dir / f"{stem}.crop.jpg"}
    cv2.imwrite(str(paths["annotated"]), annotated, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(paths["original"]), frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    x1, y1 = np.floor(violation.xyxy[:, :2].min(axis=0)).astype(int)
    x2, y2 = np.ceil(violation.xyxy[:, 2:].max(axis=0)).astype(int)
    pad = int(0.25 * max(x2 - x1, y2 - y1)) + 8
    crop = frame.image[max(0, y1 - pad):min(frame.height_px, y2 + pad), max(0, x1 - pad):min(frame.width_px, x2 + pad)]
    cv2.imwrite(str(paths["crop"]), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return {k: str(v) for k, v in paths.items()}


def violation_record(v: Violation, config: AppConfig, evidence: dict[str, str] | None, events: int,
                     opened_at: datetime | None = None) -> dict:
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
    }


def run_camera(config: AppConfig, camera: CameraConfig, frames: Iterable[Frame], out: TextIO,
               evidence_dir: Path, pipeline: CameraPipeline, annotated_video: Path | None = None,
               on_frame: Callable[[RunSummary], None] | None = None) -> RunSummary:
    """Run the pipeline over `frames`; write one JSON line per violation when it closes."""
    summary = RunSummary()
    evidence: dict[str, dict[str, str]] = {}
    event_counts: dict[str, int] = {}
    opened_at: dict[str, datetime] = {}
    writer = None

    def handle(events: list[Violation], frame: Frame | None, detections: Detections | None) -> None:
        for e in events:
            summary.events += 1
            event_counts[e.violation_id] = event_counts.get(e.violation_id, 0) + 1
            if e.event == "opened" and frame is not None and detections is not None:
                opened_at[e.violation_id] = frame.ts
                evidence[e.violation_id] = save_evidence(evidence_dir, e, frame, camera, detections)
            if e.event == "closed":
                summary.violations += 1
                out.write(json.dumps(violation_record(e, config, evidence.get(e.violation_id),
                                                      event_counts[e.violation_id], opened_at.get(e.violation_id)),
                                     ensure_ascii=False) + "\n")
                out.flush()

    try:
        for frame in frames:
            step = pipeline.process(frame)
            summary.frames += 1
            summary.first_ts = summary.first_ts or frame.ts
            summary.last_ts = frame.ts
            summary.inference_ms.append(step.inference_ms)
            handle(step.events, frame, step.detections)
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
