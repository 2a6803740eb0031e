"""The flight pipeline: sampled drone frames in, objects on the map out (beside `detector.pipeline` for cameras).

Per frame: resize to the detector's working ground sampling distance, detect on overlapping tiles, georeference
every box (`detector.geo.georef`); at the end, merge the sightings of each physical object in map space
(`detector.geo.merge`). There is no tracker: a drone moves, and "the same object" is decided on the ground, in
metres, not in pixels. Map rules (baseline, e-fences, no-vending areas, grid cells) apply to the merged findings
(`detector.geo.maprules`); decoding, telemetry files and outputs are the caller's (`service.drone`).

**Working scale.** The aerial model was trained on chips at 2–5 cm per pixel. A 4K frame at 30 m is 1 cm/px: its
bikes are three times larger than anything the model saw, and its tiles cost nine times the CPU. Each frame is
therefore resized so its centre GSD is `FlightSettings.target_gsd_m` (never enlarged), and the boxes are scaled
back to the frame's pixels before georeferencing: detection at the model's scale, geometry at full resolution.

Example:
    >>> pipeline = FlightPipeline("f-1", detector, intrinsics, LocalFrame(22.5431, 114.0579, 0.0))  # doctest: +SKIP
    >>> for frame in frames:                                                                         # doctest: +SKIP
    ...     step = pipeline.process(frame)
    >>> findings = pipeline.finish()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import cv2
import numpy as np

from detector.geo.camera import CameraIntrinsics, frame_footprint, gsd_m
from detector.geo.enu import LocalFrame
from detector.geo.georef import georeference, pose_from_geo
from detector.geo.merge import merge_detections
from detector.geo.types import GroundDetection, MapFinding
from detector.types import Detections, FrameGeo

if TYPE_CHECKING:
    from detector.runtime import OnnxDetector

__all__ = ["FlightFrame", "FlightPipeline", "FlightSettings", "FlightStep"]


@dataclass(frozen=True)
class FlightSettings:
    """How a flight's frames are analysed.

    Attributes:
        target_gsd_m: Frames finer than this (metres per pixel at the image centre) are shrunk to it before
            detection (the model's training scale; None: full resolution).
        tile_overlap_frac: Overlap of neighbouring tiles.
        ground_up_m: Ground elevation relative to the take-off point (metres); the ground plane rays meet.
        max_range_m: Boxes whose rays meet the ground farther than this are not placed (oblique views).
        merge_radius_m: Sightings of one class closer than this are one object (per class, or one for all;
            None: the merge module's defaults).
        min_score: One detection threshold (None: the model card's per-class thresholds).
        keep_classes: Pipeline classes kept (None: all the model's classes).
        class_map: Model class name → pipeline class (a card's ``violation_classes`` plus overrides).
    """

    target_gsd_m: float | None = 0.035
    tile_overlap_frac: float = 0.2
    ground_up_m: float = 0.0
    max_range_m: float = 300.0
    merge_radius_m: Mapping[str, float] | float | None = None
    min_score: float | None = None
    keep_classes: frozenset[str] | None = None
    class_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_gsd_m is not None and not 0.001 <= self.target_gsd_m <= 1.0:
            raise ValueError(f"FlightSettings: target_gsd_m must lie within [0.001, 1] m/px, got {self.target_gsd_m}")
        if not 0.0 <= self.tile_overlap_frac < 0.9:
            raise ValueError(f"FlightSettings: tile_overlap_frac must lie within [0, 0.9), got {self.tile_overlap_frac}")
        if not self.max_range_m > 0:
            raise ValueError(f"FlightSettings: max_range_m must be > 0, got {self.max_range_m}")


@dataclass(frozen=True, eq=False)
class FlightFrame:
    """One sampled frame of a flight.

    Attributes:
        index: Frame number in the video (or the still's position in the folder, by time).
        t_s: Flight time, seconds from the start of the video (or of the first still).
        image: HxWx3 uint8 BGR, full resolution.
        geo: The camera's pose at that moment (None: no telemetry; the frame is counted, not placed).
        intrinsics: Intrinsics of this image (None: the pipeline's); stills of mixed cameras carry their own.
        name: The still's file name, or "" for video frames.
    """

    index: int
    t_s: float
    image: np.ndarray
    geo: FrameGeo | None
    intrinsics: CameraIntrinsics | None = None
    name: str = ""


@dataclass(frozen=True, eq=False)
class FlightStep:
    """What one frame gave.

    Attributes:
        frame: The frame.
        detections: Kept boxes in the frame's full-resolution pixels, with a ``class_name`` column.
        ground: The boxes placed on the ground.
        skipped: Boxes not placed, by reason (``no_telemetry``, ``above_horizon``, ...).
        footprint_en_m: (K, 2) the frame's ground footprint in the local frame (empty without a pose).
        gsd_m: Ground sampling distance at the image centre (None without a pose).
        scale: Resize factor applied before detection (1.0: full resolution).
        n_inputs: Network inputs the detector ran (tiles).
        detect_s: Seconds spent detecting.
        georef_s: Seconds spent georeferencing.
    """

    frame: FlightFrame
    detections: Detections
    ground: list[GroundDetection]
    skipped: Counter[str]
    footprint_en_m: np.ndarray
    gsd_m: float | None
    scale: float
    n_inputs: int
    detect_s: float
    georef_s: float


class FlightPipeline:
    """Detects and georeferences the sampled frames of one flight, and merges what they saw.

    Args:
        flight_id: Id of the flight (in finding ids).
        detector: A loaded detector (the ``aerial`` model; stateless, may be shared).
        intrinsics: Intrinsics of the flight's full-resolution frames (frames may carry their own).
        local: The flight's local ENU frame (origin: take-off).
        settings: Analysis settings.
    """

    def __init__(self, flight_id: str, detector: "OnnxDetector", intrinsics: CameraIntrinsics | None,
                 local: LocalFrame, settings: FlightSettings | None = None) -> None:
        self.flight_id = flight_id
        self.detector = detector
        self.intrinsics = intrinsics
        self.local = local
        self.settings = settings or FlightSettings()
        mapped = [self.settings.class_map.get(n, n) for n in detector.class_names]
        self._pipeline_names = np.asarray(mapped)
        keep = self.settings.keep_classes
        self._keep = np.array([keep is None or name in keep for name in mapped], bool)
        self.sightings: list[GroundDetection] = []
        self.skipped: Counter[str] = Counter()
        self.frames = 0

    def process(self, frame: FlightFrame) -> FlightStep:
        """Detect and place the objects of one frame (frames may come in any order)."""
        from detector.runtime import TilingConfig, detect_tiled

        intr = frame.intrinsics or self.intrinsics
        if intr is None:
            raise ValueError(f"flight {self.flight_id}: frame {frame.index} has no camera intrinsics")
        h_px, w_px = frame.image.shape[:2]
        if (w_px, h_px) != (intr.width_px, intr.height_px):
            intr = intr.scaled(w_px, h_px)
        pose, _ = pose_from_geo(frame.geo, self.local, self.settings.ground_up_m)
        centre_gsd = None
        if pose is not None:
            try:
                centre_gsd = gsd_m(intr, pose, self.settings.ground_up_m)
            except ValueError:  # the image centre looks above the horizon: no ground scale there
                centre_gsd = None
        scale = 1.0
        if self.settings.target_gsd_m is not None and centre_gsd is not None and centre_gsd < self.settings.target_gsd_m:
            scale = centre_gsd / self.settings.target_gsd_m
        image = frame.image
        if scale < 1.0:
            size = (max(1, round(w_px * scale)), max(1, round(h_px * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)

        started = time.perf_counter()
        raw, n_inputs = detect_tiled(self.detector, image, TilingConfig(overlap_frac=self.settings.tile_overlap_frac),
                                     self.settings.min_score)
        kept = raw[self._keep[raw.class_id]]
        if scale < 1.0 and len(kept):
            sx, sy = w_px / image.shape[1], h_px / image.shape[0]
            kept = Detections(kept.xyxy * np.array([sx, sy, sx, sy], np.float32), kept.confidence, kept.class_id,
                              None, kept.data)
        kept = kept.with_columns(class_name=self._pipeline_names[kept.class_id])
        detect_s = time.perf_counter() - started

        started = time.perf_counter()
        ground, skipped = georeference(kept, frame.geo, intr, self.local, frame.index, frame.t_s,
                                       self.settings.ground_up_m, self.settings.max_range_m)
        footprint = (frame_footprint(intr, pose, self.settings.ground_up_m, self.settings.max_range_m)
                     if pose is not None else np.zeros((0, 2)))
        georef_s = time.perf_counter() - started
        self.sightings.extend(ground)
        self.skipped.update(skipped)
        self.frames += 1
        return FlightStep(frame, kept, ground, skipped, footprint, centre_gsd, scale, n_inputs, detect_s, georef_s)

    def finish(self) -> list[MapFinding]:
        """One finding per physical object seen (merged in map space), in a deterministic order."""
        kwargs = {} if self.settings.merge_radius_m is None else {"radius_m": self.settings.merge_radius_m}
        return merge_detections(self.sightings, self.local, self.flight_id, **kwargs)
