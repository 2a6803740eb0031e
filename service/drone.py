"""A drone flight as a batch job: video + DJI SRT (or geotagged stills) in, findings on the map and cases out.

`run_flight` does the whole job and writes the output folder (formats: the README's drone section):

1. **Telemetry**: the SRT beside the video (`detector.geo.telemetry`), interpolated to every frame's time; or
   each still's EXIF GPS and DJI XMP. Stills without GPS are listed and skipped; a video whose SRT covers only
   part of it is processed for that part, and the summary says how much.
2. **Camera**: intrinsics from the configuration (a profile, lens and sensor, or field of view), else the stills'
   EXIF camera model or 35 mm focal length; an unknown camera is one clear error.
3. **Sampling by ground distance** (`detector.geo.sampling`): frames chosen so consecutive footprints overlap by
   the configured share, then read by seeking (`detector.sources.seek`), never by decoding the whole video.
4. **Detection and georeferencing** (`detector.flight.FlightPipeline`): tiled inference at the model's working
   GSD, every box placed on the ground; sightings merged in map space into one finding per object.
5. **Map rules** (`detector.geo.maprules`) over the configured GeoJSON layers: new structures against the baseline
   and earlier flights, bikes outside e-fences, stalls in no-vending areas in their hours; grid cell codes.
6. **Outputs**: findings.geojson, track and footprints, evidence images, a mosaic of the flight's own frames and
   the one-page report (`service.report`).

`ingest_flight` turns the violations into candidate cases (a flight origin with each case's own lat/long and grid
code); it is idempotent (violation ids are deterministic), and a finding near a case of the same kind from an
earlier flight updates that case instead of opening another.

Times: flight time ``t_s`` runs from the start of the video; wall time comes from the SRT's clock or the stills'
EXIF time, in the configured time zone (DJI writes local time without a zone); never from frame counts.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from detector.errors import StreetwatchError
from detector.flight import FlightFrame, FlightPipeline, FlightSettings, FlightStep
from detector.geo.camera import CameraIntrinsics
from detector.geo.enu import LocalFrame
from detector.geo.georef import pose_from_geo
from detector.geo.layers import LayerError, MapLayer, load_layer, load_previous_flight
from detector.geo.maprules import MapRulesResult, MapViolation, evaluate_map_rules
from detector.geo.profiles import UnknownCameraError, get_profile
from detector.geo.sampling import select_frames
from detector.geo.telemetry import (StillGeo, TelemetryError, TelemetryOptions, TelemetryTrack, parse_srt,
                                    read_stills)
from detector.geo.types import MapFinding
from detector.rules import Violation
from detector.sources.base import SourceError
from detector.types import FrameGeo
from service.config import AppConfig
from service.drone_config import DroneConfig
from service.kinds import KINDS

__all__ = ["FlightCancelled", "FlightInput", "FlightInputError", "FlightProgress", "FlightResult", "ingest_flight",
           "run_flight", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".ts", ".m4v")
FRAME_PREVIEW_MAX_PX = 1600
"""Sampled frames are kept for the report and the mosaic at most this wide (the full frames are gigabytes)."""
_CROP_PAD_FRAC = 0.35


class FlightInputError(StreetwatchError):
    """The flight cannot be processed as given (no telemetry, unknown camera, altitude ≤ 0, bad layer, …)."""


class FlightCancelled(StreetwatchError):
    """The job was cancelled."""


@dataclass(frozen=True)
class FlightInput:
    """What a flight is made of: a video with its SRT, or a folder of geotagged stills.

    Attributes:
        video: The video file (None for stills).
        srt: Its DJI SRT telemetry sidecar.
        stills_dir: A folder of geotagged JPEG stills (None for video).
    """

    video: Path | None = None
    srt: Path | None = None
    stills_dir: Path | None = None

    @classmethod
    def from_path(cls, path: Path | str, srt: Path | str | None = None) -> "FlightInput":
        """A video (its SRT found beside it by name unless given) or a folder of stills.

        Raises:
            FlightInputError: The path does not exist, is not a video, or the video has no telemetry.
        """
        path = Path(path)
        if path.is_dir():
            if srt is not None:
                raise FlightInputError(f"{path}: a folder of stills takes no --srt (stills carry their own GPS)")
            return cls(stills_dir=path)
        if not path.is_file():
            raise FlightInputError(f"{path}: no such file or folder")
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise FlightInputError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of stills")
        if srt is None:
            srt = next((p for p in (path.with_suffix(s) for s in (".SRT", ".srt", ".Srt")) if p.is_file()), None)
            if srt is None:
                raise FlightInputError(
                    f"{path}: no telemetry: no {path.stem}.SRT beside the video (DJI writes it when 'video "
                    f"subtitles' is on); give it with --srt")
        srt = Path(srt)
        if not srt.is_file():
            raise FlightInputError(f"{srt}: no such SRT file")
        return cls(video=path, srt=srt)

    def describe(self) -> dict[str, str | None]:
        return {"video": None if self.video is None else str(self.video),
                "srt": None if self.srt is None else str(self.srt),
                "stills": None if self.stills_dir is None else str(self.stills_dir)}


@dataclass(frozen=True)
class FlightProgress:
    """Where a running flight job is.

    Attributes:
        stage: ``telemetry``, ``detect``, ``merge``, ``rules``, ``outputs`` or ``done``.
        frames_total: Frames to analyse (after sampling).
        frames_done: Frames analysed so far.
        findings: Objects found so far (sightings before the merge; findings after it).
        elapsed_s: Seconds since the job started.
        eta_s: Estimated seconds left (None before the first frame).
    """

    stage: str
    frames_total: int
    frames_done: int
    findings: int
    elapsed_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        """0..1 of the job (detection is nearly all of it)."""
        if self.stage == "done":
            return 1.0
        if self.frames_total <= 0:
            return 0.0
        return min(0.99, 0.95 * self.frames_done / self.frames_total + (0.04 if self.stage != "detect" else 0.0))


@dataclass(frozen=True, eq=False)
class FlightResult:
    """A finished flight job.

    Attributes:
        flight_id: The flight.
        out_dir: Its output folder.
        findings: One per physical object.
        rules: What the map rules decided (violations, grid codes, counts, notes).
        evidence: Finding id → evidence files (``annotated``, ``crop``), absolute paths.
        start_wall: Wall time of flight time 0 (aware), or None when the flight has no clock.
        local: The flight's local frame.
        summary: The content of summary.json.
    """

    flight_id: str
    out_dir: Path
    findings: list[MapFinding]
    rules: MapRulesResult
    evidence: dict[str, dict[str, str]]
    start_wall: datetime | None
    local: LocalFrame
    summary: dict[str, Any]

    @property
    def violations(self) -> tuple[MapViolation, ...]:
        return self.rules.violations


@dataclass
class _Frames:
    """The candidate frames of a flight: times, poses and where each one's pixels come from."""

    t_s: np.ndarray
    geos: list[FrameGeo | None]
    width_px: int
    height_px: int
    duration_s: float
    stills: list[StillGeo] = field(default_factory=list)
    track: TelemetryTrack | None = None
    skipped_stills: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _telemetry_options(drone: DroneConfig, hfov_deg: float | None = None) -> TelemetryOptions:
    t = drone.telemetry
    return TelemetryOptions(default_yaw_deg=t.default_yaw_deg, default_pitch_deg=t.default_pitch_deg,
                            timezone=t.timezone, hfov_deg=hfov_deg)


def _load_frames(inp: FlightInput, drone: DroneConfig) -> _Frames:
    options = _telemetry_options(drone)
    if inp.stills_dir is not None:
        result = read_stills(inp.stills_dir)
        # the reason starts with the still's path: the name once is enough in a note
        skipped = [(Path(s.path).name, s.reason.removeprefix(f"{s.path}: ")) for s in result.skipped]
        if not result.stills:
            raise FlightInputError(f"{inp.stills_dir}: no usable geotagged still"
                                   + (f" ({len(skipped)} skipped: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
        stills = list(result.stills)
        t0 = stills[0].taken
        t_s = np.array([(s.taken - t0).total_seconds() if (s.taken is not None and t0 is not None) else float(i)
                        for i, s in enumerate(stills)], np.float64)
        sizes = {(s.width_px, s.height_px) for s in stills}
        w, h = max(sizes, key=lambda wh: (wh[0] or 0) * (wh[1] or 0))
        notes = [f"{len(skipped)} still(s) skipped: " + "; ".join(f"{n}: {r}" for n, r in skipped[:5])
                 + (" …" if len(skipped) > 5 else "")] if skipped else []
        return _Frames(t_s, [s.frame_geo(options) for s in stills], int(w or 0), int(h or 0),
                       float(t_s[-1] - t_s[0]) if len(t_s) else 0.0, stills=stills, skipped_stills=skipped,
                       notes=notes)
    from detector.sources.seek import VideoSeekReader

    try:
        track = parse_srt(inp.srt, options)
    except TelemetryError as exc:
        raise FlightInputError(str(exc)) from None
    try:
        with VideoSeekReader(inp.video) as video:
            info = video.info
    except SourceError as exc:
        raise FlightInputError(str(exc)) from None
    if info.fps <= 0 or info.n_frames <= 0:
        raise FlightInputError(f"{inp.video}: the container gives no frame rate or length")
    t_s = np.arange(info.n_frames, dtype=np.float64) / info.fps
    at = track.at_many(t_s + drone.telemetry.time_offset_s)
    notes = []
    covered = int(np.count_nonzero(at.covered))
    if covered == 0:
        raise FlightInputError(f"{inp.srt}: its times ({track.start_s:.1f}–{track.end_s:.1f} s) cover no frame of "
                               f"{inp.video.name} (0–{info.duration_s:.1f} s)")
    if covered < len(t_s):
        notes.append(track.describe_coverage(info.duration_s) + ": only that part is analysed")
    if track.problems:
        notes.append(f"{Path(inp.srt).name}: {track.problem_summary()}")
    return _Frames(t_s, at.frame_geos(), info.width_px, info.height_px, info.duration_s, track=track, notes=notes)


def _intrinsics(drone: DroneConfig, frames: _Frames) -> tuple[CameraIntrinsics, str]:
    w, h = frames.width_px, frames.height_px
    cam = drone.camera
    try:
        if cam.profile is not None:
            profile = get_profile(cam.profile)
            return profile.intrinsics(w, h), f"profile {profile.name}"
        if cam.sensor_width_mm is not None:
            return CameraIntrinsics.from_sensor(cam.sensor_width_mm, cam.focal_mm, w, h), "configured lens and sensor"
        if cam.hfov_deg is not None:
            return CameraIntrinsics.from_hfov(cam.hfov_deg, w, h), "configured field of view"
        for still in frames.stills:
            if still.model:
                try:
                    profile = get_profile(still.model)
                    return profile.intrinsics(w, h), f"EXIF model {still.model} (profile {profile.name})"
                except UnknownCameraError:
                    pass
            if still.focal_len_35mm_mm:
                return (CameraIntrinsics.from_35mm_equivalent(still.focal_len_35mm_mm, w, h),
                        f"EXIF 35 mm focal length {still.focal_len_35mm_mm:g} mm")
    except UnknownCameraError as exc:
        raise FlightInputError(f"drone.camera: {exc}") from None
    known = ", ".join(sorted(p for p in _profile_names()))
    raise FlightInputError(f"unknown camera: the input does not say which camera took it; set drone.camera.profile "
                           f"(one of {known}), or its sensor_width_mm and focal_mm, or hfov_deg")


def _profile_names() -> list[str]:
    from detector.geo.profiles import profile_names

    return profile_names()


def _check_altitudes(frames: _Frames, drone: DroneConfig) -> None:
    ground = drone.detection.ground_elevation_m
    alts = [g.alt_m for g in frames.geos if g is not None and g.alt_m is not None]
    if alts and max(alts) - ground <= 0:
        raise FlightInputError(f"altitude ≤ 0: the camera is never above the ground (highest {max(alts):.1f} m "
                               f"relative to take-off, ground at {ground:g} m); check rel_alt in the telemetry")


def _start_wall(frames: _Frames, tz_name: str) -> datetime | None:
    tz = ZoneInfo(tz_name)
    wall: datetime | None = None
    if frames.track is not None:
        wall = frames.track.wall_time_at(float(frames.t_s[0]) if len(frames.t_s) else 0.0)
    elif frames.stills and frames.stills[0].taken is not None:
        wall = frames.stills[0].taken
    if wall is None:
        return None
    return wall.replace(tzinfo=tz) if wall.tzinfo is None else wall


def _load_layers(config: AppConfig, local: LocalFrame) -> list[MapLayer]:
    drone = config.drone or DroneConfig()
    tz = drone.telemetry.timezone
    layers: list[MapLayer] = []
    problems: list[str] = []

    def load(fn: Callable[[], MapLayer]) -> None:
        try:
            layers.append(fn())
        except LayerError as exc:
            problems.extend(exc.problems)

    for path in drone.layers.baseline:
        load(lambda p=path: load_layer(p, "baseline", frame=local))
    for path in drone.layers.previous_flights:
        load(lambda p=path: load_previous_flight(p, frame=local))
    for path in drone.layers.bike_parking:
        load(lambda p=path: load_layer(p, "bike_parking", frame=local))
    for nv in drone.layers.no_vending:
        load(lambda nv=nv: load_layer(nv.path, "no_vending", schedule=nv.weekly_schedule(tz), timezone=tz,
                                      frame=local))
    if config.grid is not None:
        load(lambda: load_layer(config.grid.path, "grid", code_property=config.grid.code_property, frame=local))
    if problems:
        raise FlightInputError("; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10
                                                           else ""))
    return layers


def _crop(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    pad = _CROP_PAD_FRAC * max(x2 - x1, y2 - y1) + 8
    return image[max(0, int(y1 - pad)):min(h, int(math.ceil(y2 + pad))),
                 max(0, int(x1 - pad)):min(w, int(math.ceil(x2 + pad)))]


def _box_key(frame_index: int, xyxy: np.ndarray) -> tuple:
    return (int(frame_index), *(round(float(v), 1) for v in xyxy))


def _write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"{path}: could not write the image (disk full or folder not writable?)")


def _preview(image: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, FRAME_PREVIEW_MAX_PX / w)
    if scale >= 1.0:
        return image, 1.0
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), scale


def _iter_frames(inp: FlightInput, frames: _Frames, indices: Sequence[int], counts: Counter) -> Any:
    """Decoded frames at the chosen indices, in time order, with their times (video: seeking)."""
    if inp.stills_dir is not None:
        for i in indices:
            still = frames.stills[i]
            image = cv2.imread(str(still.path), cv2.IMREAD_COLOR)
            if image is None:
                counts["unreadable_still"] += 1
                frames.notes.append(f"{Path(still.path).name}: unreadable image, skipped")
                continue
            yield int(i), float(frames.t_s[i]), image, Path(still.path).name
        return
    from detector.sources.seek import VideoSeekReader

    wanted = {round(float(frames.t_s[i]), 6): int(i) for i in indices}
    with VideoSeekReader(inp.video) as video:
        delivered = 0
        replaced: list[str] = []
        for decoded in video.read_at(sorted(wanted)):
            index = wanted.get(round(decoded.requested_t_s, 6), decoded.index)
            if decoded.index != index:
                # The wanted picture was damaged and the decoder gave the next readable one: it is placed with its
                # own telemetry, not the wanted frame's (the drone moved in between: metres of error otherwise).
                if not 0 <= decoded.index < len(frames.t_s) or frames.geos[decoded.index] is None:
                    continue  # counted as not decoded below
                replaced.append(f"{frames.t_s[index]:.2f} s by {frames.t_s[decoded.index]:.2f} s")
                index = decoded.index
            delivered += 1
            yield index, float(frames.t_s[index]), decoded.image, ""
        if video.stats.corrupt:
            counts["corrupt_packets"] += video.stats.corrupt
            frames.notes.append(f"{inp.video.name}: {video.stats.corrupt} corrupt packet(s) skipped")
        if replaced:
            more = " …" if len(replaced) > 5 else ""
            frames.notes.append(f"{inp.video.name}: {len(replaced)} sampled frame(s) unreadable, the next readable "
                                f"picture used instead ({', '.join(replaced[:5])}{more})")
        missing = len(wanted) - delivered
        if missing > 0:
            counts["not_decoded"] += missing
            frames.notes.append(f"{inp.video.name}: {missing} sampled frame(s) could not be decoded"
                                + (f" ({video.stats.fallback})" if video.stats.fallback else ""))


def run_flight(inp: FlightInput, config: AppConfig, out_dir: Path | str, *, flight_id: str, name: str = "",
               progress: Callable[[FlightProgress], None] | None = None, cancel: threading.Event | None = None,
               detector: Any = None, threads: int = 0) -> FlightResult:
    """Process one flight and write its output folder.

    Args:
        inp: The video and SRT, or the stills.
        config: The configuration (its ``drone`` and ``grid`` sections, and category codes).
        out_dir: Output folder (created; existing outputs of the same flight are replaced).
        flight_id: Id of the flight (finding and violation ids start with it).
        name: Human-readable name.
        progress: Called after each frame and at each stage.
        cancel: When set, the job stops at the next frame with `FlightCancelled`.
        detector: A loaded detector (default: the configured model, loaded here).
        threads: Inference threads when the model is loaded here (0: onnxruntime's default).

    Raises:
        FlightInputError: Bad input, in one line naming the file or field and the reason.
        FlightCancelled: `cancel` was set.
    """
    started = time.perf_counter()
    drone = config.drone or DroneConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: Counter[str] = Counter()

    def report(stage: str, total: int, done: int, found: int) -> None:
        if cancel is not None and cancel.is_set():
            raise FlightCancelled(f"flight {flight_id}: cancelled")
        if progress is None:
            return
        elapsed = time.perf_counter() - started
        eta = None
        if stage == "detect" and done > 0 and total > 0:
            eta = timings["detect_loop"] / done * (total - done) + 2.0
        progress(FlightProgress(stage, total, done, found, elapsed, eta))

    report("telemetry", 0, 0, 0)
    t = time.perf_counter()
    frames = _load_frames(inp, drone)
    _check_altitudes(frames, drone)
    intr, camera_how = _intrinsics(drone, frames)
    first = next((g for g in frames.geos if g is not None), None)
    if first is None:
        raise FlightInputError("no frame has telemetry")
    local = LocalFrame(first.lat_deg, first.lon_deg, 0.0)
    layers = _load_layers(config, local)  # bad layers fail before minutes of detection, not after
    ground_up_m = drone.detection.ground_elevation_m
    if inp.stills_dir is not None:
        plan_indices = [i for i, g in enumerate(frames.geos) if pose_from_geo(g, local, ground_up_m)[0] is not None]
        skipped = Counter(pose_from_geo(g, local, ground_up_m)[1] for g in frames.geos
                          if pose_from_geo(g, local, ground_up_m)[0] is None)
    else:
        s = drone.sampling
        plan = select_frames(frames.t_s, frames.geos, intr, s.overlap_frac, s.max_interval_s, s.min_interval_s,
                             local=local, ground_up_m=ground_up_m)
        plan_indices = [int(i) for i in plan.indices]
        skipped = Counter(plan.skipped)
    if not plan_indices:
        raise FlightInputError("no frame can be placed on the ground: " + ", ".join(
            f"{n} {r.replace('_', ' ')}" for r, n in skipped.most_common()))
    timings["telemetry"] = time.perf_counter() - t

    if detector is None:
        from detector.runtime import OnnxDetector, RuntimeOptions, resolve_card

        try:
            detector = OnnxDetector(resolve_card(drone.detection.model), RuntimeOptions(intra_op_threads=threads))
        except (StreetwatchError, OSError, ValueError) as exc:
            raise FlightInputError(f"drone.detection.model: {exc}") from None
    d = drone.detection
    keep = frozenset(c for p in (drone.rules.illegal_structure, drone.rules.bike_misparked,
                                 drone.rules.stall_occupation) for c in p.classes)
    settings = FlightSettings(target_gsd_m=d.target_gsd_m, tile_overlap_frac=d.tile_overlap_frac,
                              ground_up_m=ground_up_m, max_range_m=d.max_range_m,
                              merge_radius_m=dict(d.merge_radius_m) or None, min_score=d.conf, keep_classes=keep,
                              class_map=dict(detector.card.violation_classes))
    pipeline = FlightPipeline(flight_id, detector, intr, local, settings)

    frames_dir = out_dir / "frames"
    evidence_dir = out_dir / "evidence"
    for folder in (frames_dir, evidence_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.jpg"):  # a re-run (restart) must not leave another run's images behind
            old.unlink()
    crops: dict[tuple, bytes] = {}
    sampled: list[dict[str, Any]] = []
    previews: list[tuple[np.ndarray, CameraIntrinsics, Any]] = []
    total = len(plan_indices)
    report("detect", total, 0, 0)
    loop_started = time.perf_counter()
    decode_started = time.perf_counter()
    for index, t_s, image, still_name in _iter_frames(inp, frames, plan_indices, skipped):
        timings["decode"] += time.perf_counter() - decode_started
        geo = frames.geos[index]
        step: FlightStep = pipeline.process(FlightFrame(index, t_s, image, geo, None, still_name))
        timings["detect"] += step.detect_s
        timings["georeference"] += step.georef_s
        t = time.perf_counter()
        for row in range(len(step.detections)):
            ok, buf = cv2.imencode(".jpg", _crop(image, step.detections.xyxy[row]), [cv2.IMWRITE_JPEG_QUALITY, 92])
            if ok:
                crops[_box_key(index, step.detections.xyxy[row])] = buf.tobytes()
        preview, _ = _preview(image)
        name_jpg = f"{index:06d}.jpg"
        _write_jpeg(frames_dir / name_jpg, preview, 85)
        pose, _ = pose_from_geo(geo, local, ground_up_m)
        if pose is not None:
            frame_intr = intr if (image.shape[1], image.shape[0]) == (intr.width_px, intr.height_px) \
                else intr.scaled(image.shape[1], image.shape[0])
            previews.append((preview, _resized(frame_intr, preview.shape[1], preview.shape[0]), pose))
        sampled.append({"frame_index": index, "t_s": t_s, "geo": geo, "footprint": step.footprint_en_m,
                        "gsd_m": step.gsd_m, "image": f"frames/{name_jpg}", "detections": len(step.detections),
                        "scale": step.scale, "n_inputs": step.n_inputs, "still": still_name,
                        "full_width_px": image.shape[1]})
        timings["outputs"] += time.perf_counter() - t
        timings["detect_loop"] = time.perf_counter() - loop_started
        report("detect", total, len(sampled), len(pipeline.sightings))
        decode_started = time.perf_counter()
    if not sampled:
        raise FlightInputError("no sampled frame could be read: " + "; ".join(frames.notes[-3:]))

    report("merge", total, len(sampled), len(pipeline.sightings))
    t = time.perf_counter()
    findings = pipeline.finish()
    timings["merge"] = time.perf_counter() - t

    report("rules", total, len(sampled), len(findings))
    t = time.perf_counter()
    start_wall = _start_wall(frames, drone.telemetry.timezone)
    try:
        rules = evaluate_map_rules(findings, layers, drone.rules, local, start_wall)
    except ValueError as exc:
        raise FlightInputError(f"map rules: {exc}") from None
    timings["rules"] = time.perf_counter() - t

    report("outputs", total, len(sampled), len(findings))
    t = time.perf_counter()
    kind_of = {fid: v.kind for v in rules.violations for fid in v.finding_ids}
    evidence = _write_evidence(out_dir, findings, crops, sampled, kind_of)
    notes = list(frames.notes) + list(rules.notes)
    if rules.n_findings_outside_grid:
        notes.append(f"{rules.n_findings_outside_grid} finding(s) outside every grid cell (no grid code)")
    if config.grid is not None and len(findings) and rules.n_findings_outside_grid == len(findings):
        notes.append("the flight lies outside every grid cell of the grid layer")
    summary = _summary(inp, flight_id, name, frames, intr, camera_how, local, start_wall, drone, plan_indices,
                       sampled, skipped, findings, rules, notes, timings, pipeline)
    _write_outputs(out_dir, config, frames, local, sampled, findings, rules, evidence, start_wall, summary)
    _write_mosaic(out_dir, previews, local)
    timings["outputs"] += time.perf_counter() - t
    summary["timings_s"] = _timing_summary(timings, time.perf_counter() - started)
    summary["realtime_factor"] = (round(summary["timings_s"]["total"] / frames.duration_s, 3)
                                  if frames.duration_s > 0 and inp.video is not None else None)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    _write_report(out_dir)
    if progress is not None:
        progress(FlightProgress("done", total, len(sampled), len(findings), time.perf_counter() - started, 0.0))
    return FlightResult(flight_id, out_dir, findings, rules, evidence, start_wall, local, summary)


def _resized(intr: CameraIntrinsics, width_px: int, height_px: int) -> CameraIntrinsics:
    """The intrinsics of the same picture resized to (width_px, height_px): every pixel measure scales."""
    if (width_px, height_px) == (intr.width_px, intr.height_px):
        return intr
    sx, sy = width_px / intr.width_px, height_px / intr.height_px
    return CameraIntrinsics(width_px, height_px, intr.fx_px * sx, intr.fy_px * sy, intr.cx_px * sx, intr.cy_px * sy)


def _timing_summary(timings: Counter[str], total_s: float) -> dict[str, float]:
    out = {k: round(timings[k], 3) for k in ("telemetry", "decode", "detect", "georeference", "merge", "rules",
                                             "outputs")}
    out["total"] = round(total_s, 3)
    return out


def _write_evidence(out_dir: Path, findings: Sequence[MapFinding], crops: Mapping[tuple, bytes],
                    sampled: Sequence[dict[str, Any]], kind_of: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Each finding's best sighting: the frame with its box drawn (kind colour; grey when not a violation) and
    a full-resolution crop."""
    by_frame = {s["frame_index"]: s for s in sampled}
    evidence: dict[str, dict[str, str]] = {}
    for f in findings:
        best = f.best
        slug = _slug(f.finding_id)
        files: dict[str, str] = {}
        crop = crops.get(_box_key(best.frame_index, best.xyxy))
        if crop is not None:
            path = out_dir / "evidence" / f"{slug}.crop.jpg"
            path.write_bytes(crop)
            files["crop"] = str(path)
        frame = by_frame.get(best.frame_index)
        image = None if frame is None else cv2.imread(str(out_dir / frame["image"]), cv2.IMREAD_COLOR)
        if image is not None:
            scale = image.shape[1] / frame["full_width_px"]
            x1, y1, x2, y2 = (int(round(v * scale)) for v in best.xyxy)
            kind = kind_of.get(f.finding_id)
            color = KINDS[kind].color_bgr if kind in KINDS else (200, 200, 200)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, max(2, image.shape[1] // 400), cv2.LINE_AA)
            path = out_dir / "evidence" / f"{slug}.jpg"
            _write_jpeg(path, image, 90)
            files["annotated"] = str(path)
        evidence[f.finding_id] = files
    return evidence


def _iso(start_wall: datetime | None, t_s: float) -> str | None:
    return None if start_wall is None else (start_wall + timedelta(seconds=float(t_s))).isoformat()


def _ring(points_lonlat: np.ndarray) -> list[list[float]]:
    ring = [[round(float(lon), 8), round(float(lat), 8)] for lon, lat in points_lonlat]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def _finding_features(config: AppConfig, findings: Sequence[MapFinding], rules: MapRulesResult,
                      evidence: Mapping[str, Mapping[str, str]], out_dir: Path,
                      start_wall: datetime | None) -> list[dict[str, Any]]:
    violation_of: dict[str, MapViolation] = {}
    for v in rules.violations:
        for fid in v.finding_ids:
            violation_of.setdefault(fid, v)
    features = []
    for f in findings:
        v = violation_of.get(f.finding_id)
        files = {k: str(Path(p).relative_to(out_dir)) for k, p in evidence.get(f.finding_id, {}).items()}
        props = {
            "finding_id": f.finding_id, "class": f.class_name, "kind": v.kind if v else None,
            "violation_id": v.violation_id if v else None, "zone_id": v.zone_id if v else "",
            "score": round(float(f.score), 4), "n_frames": f.n_frames,
            "first_t_s": round(f.first_t_s, 3), "last_t_s": round(f.last_t_s, 3),
            "first_seen": _iso(start_wall, f.first_t_s), "last_seen": _iso(start_wall, f.last_t_s),
            "grid_code": rules.grid_code_by_finding.get(f.finding_id, ""),
            "category_code": config.category_codes.get(v.kind) if v else None,
            "evidence": files, "case_id": None,
            "lat_deg": round(f.lat_deg, 8), "lon_deg": round(f.lon_deg, 8),
        }
        features.append({"type": "Feature", "id": f.finding_id,
                         "geometry": {"type": "Point", "coordinates": [round(f.lon_deg, 8), round(f.lat_deg, 8)]},
                         "properties": {**props, "role": "point"}})
        features.append({"type": "Feature", "id": f"{f.finding_id}:footprint",
                         "geometry": {"type": "Polygon", "coordinates": [_ring(f.footprint_lonlat_deg)]},
                         "properties": {**props, "role": "footprint"}})
    return features


def _write_geojson(path: Path, features: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")


def _write_outputs(out_dir: Path, config: AppConfig, frames: _Frames, local: LocalFrame,
                   sampled: Sequence[dict[str, Any]], findings: Sequence[MapFinding], rules: MapRulesResult,
                   evidence: Mapping[str, Mapping[str, str]], start_wall: datetime | None,
                   summary: dict[str, Any]) -> None:
    _write_geojson(out_dir / "findings.geojson", _finding_features(config, findings, rules, evidence, out_dir,
                                                                   start_wall))
    positions = [[round(g.lon_deg, 8), round(g.lat_deg, 8)] for g in frames.geos if g is not None]
    # one vertex per telemetry change is plenty for a track line (video frames repeat the same SRT cue)
    line = [p for i, p in enumerate(positions) if i == 0 or p != positions[i - 1]]
    track = [{"type": "Feature", "id": "track", "properties": {"role": "track"},
              "geometry": {"type": "LineString", "coordinates": line if len(line) > 1 else line * 2}}]
    footprints = []
    for s in sampled:
        g: FrameGeo | None = s["geo"]
        if g is None:
            continue
        track.append({"type": "Feature", "id": f"frame-{s['frame_index']}",
                      "geometry": {"type": "Point", "coordinates": [round(g.lon_deg, 8), round(g.lat_deg, 8)]},
                      "properties": {"role": "frame", "frame_index": s["frame_index"], "t_s": round(s["t_s"], 3),
                                     "alt_m": g.alt_m, "yaw_deg": g.yaw_deg, "pitch_deg": g.pitch_deg,
                                     "yaw_source": g.yaw_source, "image": s["image"]}})
        if len(s["footprint"]) >= 3:
            footprints.append({"type": "Feature", "id": f"footprint-{s['frame_index']}",
                               "geometry": {"type": "Polygon",
                                            "coordinates": [_ring(local.en_to_lonlat(s["footprint"]))]},
                               "properties": {"frame_index": s["frame_index"], "t_s": round(s["t_s"], 3),
                                              "image": s["image"], "gsd_m": s["gsd_m"]}})
    _write_geojson(out_dir / "track.geojson", track)
    _write_geojson(out_dir / "footprints.geojson", footprints)


def _write_mosaic(out_dir: Path, previews: Sequence[tuple[np.ndarray, CameraIntrinsics, Any]],
                  local: LocalFrame) -> None:
    mosaic_json = out_dir / "mosaic.json"
    mosaic_jpg = out_dir / "mosaic.jpg"
    for old in (mosaic_json, mosaic_jpg):
        old.unlink(missing_ok=True)
    if not previews:
        return
    from detector.geo.mosaic import MosaicFrame, build_mosaic

    mosaic = build_mosaic([MosaicFrame(image, intr, pose) for image, intr, pose in previews])
    if mosaic.image is None or mosaic.image.size == 0:
        return
    _write_jpeg(mosaic_jpg, mosaic.image, 85)
    e0, n0, e1, n1 = (float(v) for v in mosaic.en_bounds_m)
    corners_en = np.array([[e0, n1], [e1, n1], [e1, n0], [e0, n0]])
    corners = [[round(float(lon), 8), round(float(lat), 8)] for lon, lat in local.en_to_lonlat(corners_en)]
    mosaic_json.write_text(json.dumps({
        "m_per_px": float(mosaic.m_per_px), "width_px": int(mosaic.image.shape[1]),
        "height_px": int(mosaic.image.shape[0]), "en_bounds_m": [e0, n0, e1, n1], "corners_lonlat_deg": corners,
        "origin": {"lat_deg": local.lat0_deg, "lon_deg": local.lon0_deg}}), encoding="utf-8")


def _write_report(out_dir: Path, case_url: str | None = None) -> None:
    from service.report import write_report

    write_report(out_dir, case_url=case_url)


def _summary(inp: FlightInput, flight_id: str, name: str, frames: _Frames, intr: CameraIntrinsics, camera_how: str,
             local: LocalFrame, start_wall: datetime | None, drone: DroneConfig, plan_indices: Sequence[int],
             sampled: Sequence[dict[str, Any]], skipped: Counter, findings: Sequence[MapFinding],
             rules: MapRulesResult, notes: list[str], timings: Counter[str],
             pipeline: FlightPipeline) -> dict[str, Any]:
    track = frames.track
    yaw_sources = Counter(g.yaw_source or "none" for g in (s["geo"] for s in sampled) if g is not None)
    return {
        "flight_id": flight_id, "name": name, "source": inp.describe(),
        "camera": {"how": camera_how, "width_px": intr.width_px, "height_px": intr.height_px,
                   "hfov_deg": round(intr.hfov_deg, 3)},
        "origin": {"lat_deg": local.lat0_deg, "lon_deg": local.lon0_deg},
        "started_at": None if start_wall is None else start_wall.isoformat(),
        "timezone": drone.telemetry.timezone,
        "duration_s": round(frames.duration_s, 3),
        "frames": {"total": len(frames.t_s), "sampled": len(plan_indices), "processed": len(sampled),
                   "skipped": dict(skipped), "stills_skipped": [{"file": n, "reason": r}
                                                               for n, r in frames.skipped_stills]},
        "telemetry": {
            "format": track.format if track is not None else "stills",
            "coverage": track.describe_coverage(frames.duration_s) if track is not None else
            f"{len(frames.stills)} geotagged still(s)",
            "covered_s": [track.start_s, track.end_s] if track is not None else None,
            "yaw_sources": dict(yaw_sources),
            "problems": dict(track.problems) if track is not None else {}},
        "detection": {"model": drone.detection.model, "target_gsd_m": drone.detection.target_gsd_m,
                      "network_inputs": int(sum(s["n_inputs"] for s in sampled)),
                      "boxes_not_placed": dict(pipeline.skipped)},
        "findings": len(findings), "violations": len(rules.violations),
        "by_class": dict(Counter(f.class_name for f in findings)),
        "by_kind": dict(Counter(v.kind for v in rules.violations)),
        "rule_counts": dict(rules.counts),
        "timings_s": {}, "realtime_factor": None, "notes": notes, "status": "done",
    }


# --- cases ------------------------------------------------------------------------------------------------

def flight_violation(result: FlightResult, v: MapViolation, event: str = "opened") -> Violation:
    """A map violation as the case store's violation event (its camera id is the flight id)."""
    findings = {f.finding_id: f for f in result.findings}
    members = [findings[fid] for fid in v.finding_ids if fid in findings]
    base = result.start_wall or datetime.fromtimestamp(0, timezone.utc)
    first = base + timedelta(seconds=v.first_t_s)
    last = base + timedelta(seconds=v.last_t_s)
    xyxy = (np.stack([m.best.xyxy for m in members]).astype(np.float32) if members
            else np.zeros((0, 4), np.float32))
    return Violation(
        violation_id=f"{result.flight_id}:{v.violation_id}", kind=v.kind, event=event,
        status="closed" if event == "closed" else "open", camera_id=result.flight_id,
        zone_id=v.zone_id or "map", track_ids=tuple(range(1, len(members) + 1)), first_seen=first, last_seen=last,
        dwell_s=max(0.0, (last - first).total_seconds()), xyxy=xyxy, score=float(v.score),
        class_names=tuple(m.class_name for m in members))


def ingest_flight(store: Any, result: FlightResult, config: AppConfig, *, name: str = "",
                  source: str = "") -> list[int]:
    """Turn the flight's violations into candidate cases; returns their ids (in violation order).

    Each case is located at its violation's lat/long with its grid code; its evidence is the best sighting's frame
    and crop. A violation near a case of the same kind from an earlier flight (within the configured
    ``case_match_radius_m``) updates that case. Running it again for the same flight changes nothing new.
    """
    from service.origin import CaseOrigin

    drone = config.drone or DroneConfig()
    origin = CaseOrigin.flight(result.flight_id, name=name, source=source, lat_deg=result.local.lat0_deg,
                               lon_deg=result.local.lon0_deg, timezone=drone.telemetry.timezone)
    ids: list[int] = []
    case_of: dict[str, int] = {}
    for v in result.violations:
        event = flight_violation(result, v)
        known = store.has_violation(event.violation_id)
        attach = None
        if not known:
            attach = store.flight_case_near(v.kind, v.lat_deg, v.lon_deg, drone.detection.case_match_radius_m,
                                            exclude_flight_id=result.flight_id)
        # A re-run of the same flight (a restarted job) adds no evidence rows: its case has them already.
        files = {} if known else (result.evidence.get(v.finding_ids[0], {}) if v.finding_ids else {})
        case = store.ingest(event, files or None, origin.at(v.lat_deg, v.lon_deg, grid_code=v.grid_code),
                            attach_to_case_id=attach)
        store.ingest(flight_violation(result, v, "closed"))
        ids.append(case.id)
        for fid in v.finding_ids:
            case_of[fid] = case.id
    _write_case_ids(result.out_dir, case_of)
    return ids


def _write_case_ids(out_dir: Path, case_of: Mapping[str, int]) -> None:
    path = out_dir / "findings.geojson"
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for feature in data.get("features", []):
        props = feature.get("properties", {})
        props["case_id"] = case_of.get(props.get("finding_id"))
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
