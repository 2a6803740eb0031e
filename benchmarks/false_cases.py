"""False cases per hour: a street model on real clips that hold no violation, looped into long camera streams.

The clips in ../shared/footage (Intel IoT DevKit sample videos, CC BY 4.0) show real people and real cars and
nothing a rule may report: no stall and no standing bike. Every box of a street class on them is false, and
every case the service opens on them is a false case, a reviewer's time lost. This benchmark runs each clip
through the real offline run loop (`service.run.run_camera` over a pipeline from `service.pipeline.
build_pipeline`: what ``streetwatch run`` does) as a continuous stream of ``--minutes`` (30) of stream time, with
one zone over the whole frame that both rules read (no_vending for stalls, watch_area for bikes), once with the
second look (`detector.verify`) on for both rules and once with it off, and counts:

* false boxes per frame: the detector's boxes of the rules' classes at the card's per-class thresholds (the
  service's operating point), median over frames and mean; and at the camera's ``model.conf`` (weak boxes the
  tracker uses to keep tracks alive);
* tracks (confirmed, and those that ever stood still: only a stationary track can become a case), and the longest
  a false track lived and stood still, by class: how near the clip came to a case when none opened;
* violations due (the rule engine's ``opened`` events), cases opened (what passes the second look), false cases
  per hour of stream time, and the second look's verdicts by reason.

A looped clip is one continuous stream, not a restart: `detector.sources.FileSource` with ``loop=True`` starts
each pass where the previous one ended on the stream clock, so a false track on a parked car that is there at the
end of the clip and at its start again lives across the seam and its dwell keeps growing, as it would on a real
camera over a parked car. The configuration is the example's (``examples/config.yaml``): ``model.conf`` 0.1,
track and rule scores from the card's track_score, the rules' default dwell (stall 300 s, bike 600 s), 1 sample/s.

``parking-lot-bicycle.mp4`` is left out: a 3.6 s shot from a moving camera in which a person wheels a bike through
the lot; looped, it is a scene jumping back every 3.6 s, no stream a fixed camera sends, and the bike it holds is
never parked, so it says nothing about false cases that the other two do not.

Run:  python benchmarks/false_cases.py [--model street] [--minutes 30] [--quick] [--clips people-walking ...]
Writes benchmarks/results/false_cases[_<model>].json and .md (``--quick``: false_cases_quick, 1 minute each);
the violations (JSON lines) and their evidence images go under ``--work-dir`` (var/false_cases).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and its detector.py would shadow the detector package.
sys.path.insert(0, str(REPO))
from benchmarks.common import environment, md_table, shared_dir, write_results  # noqa: E402
from detector.pipeline import CameraPipeline, PipelineStep  # noqa: E402
from detector.rules import Violation  # noqa: E402
from detector.types import Detections, Frame  # noqa: E402

__all__ = ["CLIPS", "Clip", "PipelineTap", "RunCounts", "clip_config", "main", "model_label",
           "operating_thresholds", "percentile", "run_clip", "take_stream_time"]

#: Stream time of every run's first frame: a fixed, plainly synthetic date, so runs are reproducible.
START_TS = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
#: The detector threshold of examples/config.yaml: weak boxes only keep tracks alive.
EXAMPLE_CONF = 0.1
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


@dataclass(frozen=True)
class Clip:
    """A real clip with no violation in it.

    Attributes:
        name: Short name (camera id, results key).
        path: Video path relative to the shared data folder.
        truth: What the clip shows, and why no case on it can be true.
    """

    name: str
    path: str
    truth: str


CLIPS: tuple[Clip, ...] = (
    Clip("people-walking", "footage/people-walking.mp4",
         "768x432, 10 fps, 139 s, fixed camera: people walk in one by one and stand at a table; no stall, no bike"),
    Clip("parking-lot-cars", "footage/parking-lot-cars.mp4",
         "768x432, 12.5 fps, 30 s, elevated fixed camera: cars enter and park, parked cars stand throughout; "
         "no stall, no bike"),
)


def clip_config(clip: Clip, video: Path, model: str, second_look: bool, conf: float | None = EXAMPLE_CONF,
                sample_fps: float = 1.0) -> dict[str, Any]:
    """The camera configuration of one run: a zone over the whole frame for each rule, as an AppConfig dict.

    The stall rule reads the no_vending zone, the bike rule the watch_area zone (there is no bike_parking zone:
    a bike anywhere is misparked). Dwell times and score thresholds are left to the rules' and card's defaults.

    Example:
        >>> cfg = clip_config(CLIPS[0], Path("/x/people-walking.mp4"), "street", second_look=False)
        >>> [z["kind"] for z in cfg["cameras"][0]["zones"]], cfg["rules"]["bike_misparked"]
        (['no_vending', 'watch_area'], {'second_look': False})
    """
    model_cfg: dict[str, Any] = {"name": model}
    if conf is not None:
        model_cfg["conf"] = conf
    return {
        "config_version": 1,
        "model": model_cfg,
        "rules": {"stall_occupation": {"second_look": second_look}, "bike_misparked": {"second_look": second_look}},
        "cameras": [{
            "id": clip.name, "name": f"false-case benchmark {clip.name}", "source": f"file://{video}",
            "timezone": "UTC", "sample_fps": sample_fps,
            "zones": [{"id": "no-vending-all", "kind": "no_vending", "polygon": WHOLE_FRAME},
                      {"id": "no-bikes-all", "kind": "watch_area", "polygon": WHOLE_FRAME}],
        }],
    }


def take_stream_time(frames: Iterable[Frame], duration_s: float) -> Iterator[Frame]:
    """The frames of the first `duration_s` seconds of stream time (from the first frame's timestamp).

    A looped file must stay one stream: every frame must be later than the one before it.

    Raises:
        ValueError: A frame is not later than the previous one (names the source, the frame index and both times).

    Example:
        >>> from datetime import timedelta
        >>> img = np.zeros((2, 2, 3), np.uint8)
        >>> fs = [Frame("c", i, START_TS + timedelta(seconds=i), img) for i in range(5)]
        >>> [f.index for f in take_stream_time(fs, 3.0)]
        [0, 1, 2]
    """
    first_s = last_s = None
    for frame in frames:
        ts_s = frame.ts_s
        if first_s is None:
            first_s = ts_s
        elif ts_s <= last_s:
            raise ValueError(f"{frame.source_id}: frame {frame.index} at {frame.ts.isoformat()} is not later than "
                             f"the previous one ({Frame.utc_from_s(last_s).isoformat()}): the stream restarted")
        if ts_s - first_s >= duration_s:
            return
        last_s = ts_s
        yield frame


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` (0..1) nearest-rank percentile of `values` (0.0 for none).

    Example:
        >>> percentile([1, 2, 3, 4], 0.5), percentile(list(range(1, 101)), 0.95)
        (2, 95)
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, int(np.ceil(q * len(ordered))) - 1)]


@dataclass
class RunCounts:
    """What one run produced, counted frame by frame (pure: fed by `PipelineTap`, testable with built inputs).

    Attributes:
        thresholds: Pipeline class → the card's score threshold (the operating point) for the class.
        boxes_per_frame: Per frame, the detector's boxes of the rules' classes at the operating point.
        weak_boxes_per_frame: Per frame, its boxes at the camera's detector threshold (``model.conf``).
        boxes_by_class: Boxes at the operating point, summed over frames, by class.
        tracks: Confirmed track ids seen.
        stationary_tracks: Track ids that stood still at least once (only those can become cases).
        longest_track_s: Class → the longest a track of it lived (first detection to a frame it was reported on).
        longest_still_s: Class → the longest a track of it stood still (how near a false track came to the rules'
            dwell; a stationary track's dwell counts from no earlier than its stillness).
        due: Violation id → kind, for each violation the rule engine opened (before the second look).
        opened: Violation id → kind, for each case passed on (after the second look).
        look_ms: Time of each second look taken.
        frame_ms: Wall time of each frame's processing (detector, tracker, rules and second look).
        opening_frame_ms: Violation id → wall time of the frame on which its case was passed on.
        first_ts_s, last_ts_s: Stream time of the first and last frame.
        max_step_s: The longest step between consecutive frames (a loop seam shows here, never as a step back).
    """

    thresholds: Mapping[str, float]
    boxes_per_frame: list[int] = field(default_factory=list)
    weak_boxes_per_frame: list[int] = field(default_factory=list)
    boxes_by_class: Counter = field(default_factory=Counter)
    tracks: set[int] = field(default_factory=set)
    stationary_tracks: set[int] = field(default_factory=set)
    longest_track_s: dict[str, float] = field(default_factory=dict)
    longest_still_s: dict[str, float] = field(default_factory=dict)
    due: dict[str, str] = field(default_factory=dict)
    opened: dict[str, str] = field(default_factory=dict)
    look_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    opening_frame_ms: dict[str, float] = field(default_factory=dict)
    first_ts_s: float | None = None
    last_ts_s: float | None = None
    max_step_s: float = 0.0

    def add_detections(self, detections: Detections) -> None:
        """One frame's detector output (rules' classes, pipeline names in ``data["class_name"]``)."""
        names = np.asarray(detections.data["class_name"], dtype=object) if len(detections) else np.zeros(0, object)
        floor = np.asarray([self.thresholds.get(str(n), 0.0) for n in names], np.float64)
        strong = np.asarray(detections.confidence, np.float64) >= floor
        self.boxes_per_frame.append(int(strong.sum()))
        self.weak_boxes_per_frame.append(len(detections))
        self.boxes_by_class.update(str(n) for n in names[strong])

    def add_tracked(self, tracked: Detections, ts_s: float) -> None:
        """One frame's tracker output, as the rule engine gets it, at stream time `ts_s`."""
        if not len(tracked) or tracked.tracker_id is None:
            return
        ids = [int(t) for t in tracked.tracker_id]
        self.tracks.update(ids)
        n = len(ids)
        names = tracked.data.get("class_name", np.full(n, "?", object))
        still = np.asarray(tracked.data.get("stationary", np.zeros(n, bool)), bool)
        since_s = np.asarray(tracked.data.get("stationary_since_s", np.full(n, np.nan)), np.float64)
        first_s = np.asarray(tracked.data.get("first_seen_s", np.full(n, ts_s)), np.float64)
        self.stationary_tracks.update(i for i, s in zip(ids, still) if s)
        for name, life_s, still_s in zip(names, ts_s - first_s, np.where(still, ts_s - since_s, 0.0)):
            name = str(name)
            self.longest_track_s[name] = max(self.longest_track_s.get(name, 0.0), float(life_s))
            if still_s > 0:
                self.longest_still_s[name] = max(self.longest_still_s.get(name, 0.0), float(still_s))

    def add_engine_events(self, events: Iterable[Violation]) -> None:
        """The rule engine's events, before the second look."""
        self.due.update((e.violation_id, e.kind) for e in events if e.event == "opened")

    def add_step(self, step: PipelineStep, frame_ms: float) -> None:
        """What one frame passed on, after the second look."""
        for event in step.events:
            if event.event == "opened":
                self.opened[event.violation_id] = event.kind
                self.opening_frame_ms[event.violation_id] = frame_ms
        self.look_ms.extend(v.ms for v in step.looks)
        self.frame_ms.append(frame_ms)
        ts_s = step.frame.ts_s
        if self.last_ts_s is not None:
            self.max_step_s = max(self.max_step_s, ts_s - self.last_ts_s)
        self.first_ts_s = ts_s if self.first_ts_s is None else self.first_ts_s
        self.last_ts_s = ts_s

    def stream_s(self, sample_period_s: float) -> float:
        """Stream time covered: first to last frame, plus the last sample's period."""
        if self.first_ts_s is None:
            return 0.0
        return self.last_ts_s - self.first_ts_s + sample_period_s

    def summary(self, sample_period_s: float, verdicts: Mapping[str, int]) -> dict[str, Any]:
        """JSON-ready figures of the run (every case on these clips is false).

        Example:
            >>> c = RunCounts({"stall": 0.2}, boxes_per_frame=[0, 1, 3], weak_boxes_per_frame=[1, 1, 4],
            ...               due={"v1": "stall_occupation"}, opened={"v1": "stall_occupation"},
            ...               first_ts_s=0.0, last_ts_s=1799.0)
            >>> s = c.summary(1.0, {})
            >>> s["stream_h"], s["false_boxes_per_frame"], s["cases_opened"], s["false_cases_per_h"]
            (0.5, {'median': 1, 'mean': 1.333}, 1, 2.0)
        """
        stream_s = self.stream_s(sample_period_s)
        hours = stream_s / 3600.0
        frames = len(self.boxes_per_frame)
        return {
            "stream_s": round(stream_s, 1), "stream_h": round(hours, 3), "frames": frames,
            "max_step_s": round(self.max_step_s, 2),
            "false_boxes_per_frame": {
                "median": statistics.median(self.boxes_per_frame) if frames else 0,
                "mean": round(statistics.fmean(self.boxes_per_frame), 3) if frames else 0.0},
            "weak_boxes_per_frame_mean": round(statistics.fmean(self.weak_boxes_per_frame), 3) if frames else 0.0,
            "frames_with_false_box": sum(1 for n in self.boxes_per_frame if n),
            "false_boxes_by_class": dict(sorted(self.boxes_by_class.items())),
            "tracks": len(self.tracks), "stationary_tracks": len(self.stationary_tracks),
            "longest_track_s": {k: round(v, 1) for k, v in sorted(self.longest_track_s.items())},
            "longest_still_s": {k: round(v, 1) for k, v in sorted(self.longest_still_s.items())},
            "violations_due": len(self.due), "due_by_kind": dict(sorted(Counter(self.due.values()).items())),
            "cases_opened": len(self.opened), "opened_by_kind": dict(sorted(Counter(self.opened.values()).items())),
            "false_cases_per_h": round(len(self.opened) / hours, 3) if hours else None,
            "second_look_verdicts": dict(sorted(verdicts.items())),
            "second_looks": len(self.look_ms),
            "second_look_ms": ({"median": round(statistics.median(self.look_ms), 1),
                                "p95": round(percentile(self.look_ms, 0.95), 1)} if self.look_ms else None),
            "frame_ms": ({"median": round(statistics.median(self.frame_ms), 1),
                          "p95": round(percentile(self.frame_ms, 0.95), 1)} if self.frame_ms else None),
        }


class _EngineTap:
    """A rule engine that hands its events to a callback before returning them (behaviour unchanged)."""

    def __init__(self, engine: Any, on_tracked: Callable[[Detections, float], None],
                 on_events: Callable[[list[Violation]], None]) -> None:
        self._engine = engine
        self._on_tracked = on_tracked
        self._on_events = on_events

    def update(self, ts: datetime, detections: Detections, frame_wh_px: tuple[int, int]) -> list[Violation]:
        self._on_tracked(detections, ts.timestamp())
        events = self._engine.update(ts, detections, frame_wh_px)
        self._on_events(events)
        return events

    def finish(self, ts: datetime) -> list[Violation]:
        events = self._engine.finish(ts)
        self._on_events(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class PipelineTap:
    """A built `CameraPipeline` whose every stage is counted into `RunCounts`, its behaviour unchanged.

    It stands in for the pipeline in `service.run.run_camera` (which calls only ``process`` and ``finish``). Taps:
    the pipeline's ``detect`` (the detector's boxes before tracking), its rule engine (the tracker's output and the
    events before the second look) and each step (events passed on, second looks, time).

    Example:
        >>> tap = PipelineTap(build_pipeline(config, camera), RunCounts({"stall": 0.2}))  # doctest: +SKIP
        >>> run_camera(config, camera, frames, out, evidence_dir, tap)  # doctest: +SKIP
    """

    def __init__(self, pipeline: CameraPipeline, counts: RunCounts) -> None:
        self.pipeline = pipeline
        self.counts = counts
        # `process` and `detect` both detect through `_detect_timed` (which laps the per-stage clock): tapping it
        # counts every detection pass once.
        detect_timed = pipeline._detect_timed

        def counted_detect(frame: Frame, clock: Any) -> Detections:
            detections = detect_timed(frame, clock)
            counts.add_detections(detections)
            return detections

        # Instance attributes shadow the method and the engine for this pipeline object only.
        pipeline._detect_timed = counted_detect  # type: ignore[method-assign]
        pipeline.engine = _EngineTap(pipeline.engine, counts.add_tracked, counts.add_engine_events)

    def process(self, frame: Frame) -> PipelineStep:
        started = time.perf_counter()
        step = self.pipeline.process(frame)
        self.counts.add_step(step, (time.perf_counter() - started) * 1000)
        return step

    def finish(self, ts: datetime) -> list[Violation]:
        return self.pipeline.finish(ts)


def operating_thresholds(card: Any, class_map: Mapping[str, str]) -> dict[str, float]:
    """Pipeline class → the card's score threshold (its operating point); classes mapped together take the lowest.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> card = NS(classes=["bicycle", "stall", "tricycle"],
        ...           thresholds=NS(default=0.25, per_class={"bicycle": 0.27, "stall": 0.22}))
        >>> operating_thresholds(card, {"tricycle": "stall"})
        {'bicycle': 0.27, 'stall': 0.22}
    """
    out: dict[str, float] = {}
    for model_name in card.classes:
        name = class_map.get(model_name, model_name)
        threshold = float(card.thresholds.per_class.get(model_name, card.thresholds.default))
        out[name] = min(out.get(name, 1.0), threshold)
    return out


def clip_duration_s(video: Path) -> float:
    """The clip's length from its container (frames / fps)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        return float(cap.get(cv2.CAP_PROP_FRAME_COUNT)) / fps if fps else 0.0
    finally:
        cap.release()


def run_clip(clip: Clip, shared: Path, model: str, second_look: bool, duration_s: float, work_dir: Path,
             conf: float | None = EXAMPLE_CONF, threads: int = 0, detector: Any = None) -> dict[str, Any]:
    """One clip, looped for `duration_s` of stream time, through the offline run loop; returns its figures.

    Args:
        detector: The loaded model to share between runs, as the service shares it between cameras (None: load
            `model`).

    Raises:
        SourceError: The video cannot be read. ModelLoadError / ModelCardError: the model cannot be loaded.
    """
    from detector.sources import open_source
    from service.config import parse_config
    from service.pipeline import build_pipeline
    from service.run import run_camera

    video = shared / clip.path
    config = parse_config(clip_config(clip, video, model, second_look, conf), f"<{clip.name}>")
    camera = config.cameras[0]
    pipeline = build_pipeline(config, camera, detector, threads=threads)
    selection = config.model_for(camera)
    counts = RunCounts(operating_thresholds(pipeline.detector.card,
                                            {**pipeline.detector.card.violation_classes, **selection.class_map}))
    tap = PipelineTap(pipeline, counts)
    run_dir = work_dir / f"{clip.name}-{'look' if second_look else 'no-look'}"
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = run_dir / "violations.jsonl"
    source = open_source(video, camera.sample_fps, source_id=camera.id, start_ts=START_TS, loop=True)
    started = time.monotonic()
    with source, open(out_path, "w", encoding="utf-8") as out:
        summary = run_camera(config, camera, take_stream_time(source, duration_s), out, run_dir / "evidence", tap)
    wall_s = time.monotonic() - started
    result = counts.summary(1.0 / camera.sample_fps, pipeline.second_look_counts)
    clip_s = clip_duration_s(video)
    result.update({
        "clip": clip.name, "second_look": second_look, "clip_s": round(clip_s, 2),
        "passes": round(result["stream_s"] / clip_s, 1) if clip_s else None,
        "violations_closed": summary.violations, "wall_s": round(wall_s, 1), "violations_jsonl": str(out_path),
    })
    return result


def benchmark(model: str, minutes: float, clips: Sequence[Clip], work_dir: Path, conf: float | None = EXAMPLE_CONF,
              threads: int = 0, progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Every clip with and without the second look."""
    from detector.runtime import resolve_card

    shared = shared_dir()
    if shared is None:
        raise SystemExit("false_cases: ../shared (or STREETWATCH_SHARED) is needed for the footage")
    from service.config import ModelSelection
    from service.pipeline import load_camera_model

    card = resolve_card(model)
    # One load for every run: the detector is stateless and shared, as between a service's cameras.
    detector = load_camera_model(ModelSelection(name=model, conf=conf), threads)
    runs = []
    for clip in clips:
        for second_look in (False, True):
            row = run_clip(clip, shared, model, second_look, minutes * 60.0, work_dir / model_label(model), conf,
                           threads, detector)
            if progress is not None:
                progress(row)
            runs.append(row)
    return {
        "environment": environment(), "model": model, "model_version": card.version, "model_sha256": card.sha256,
        "minutes_per_run": minutes, "sample_fps": 1.0, "conf": conf, "start_utc": START_TS.isoformat(),
        "clips": [{"name": c.name, "path": c.path, "truth": c.truth} for c in clips], "work_dir": str(work_dir),
        "runs": runs,
    }


def model_label(model: str) -> str:
    """A short name for a model given by name or by card file (models/<name>/card.yaml → <name>).

    Example:
        >>> model_label("street"), model_label("models/street-v4/card.yaml"), model_label("/x/street-v5.yaml")
        ('street', 'street-v4', 'street-v5')
    """
    if not model.endswith((".yaml", ".yml")):
        return model
    path = Path(model)
    return path.parent.name if path.stem == "card" else path.stem


def _seconds(by_class: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in by_class.items()) or "—"


def _kinds(counts: Mapping[str, int]) -> str:
    short = {"stall_occupation": "stall", "bike_misparked": "bike"}
    return ", ".join(f"{short.get(k, k)} {v}" for k, v in counts.items()) or "0"


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


def to_markdown(result: dict) -> str:
    lines = [f"# False cases per hour of `{result['model']}` on real clips with no violation", "",
             f"{result['environment']['date_utc']} · model `{result['model']}` {result['model_version']} · "
             f"{result['environment']['cpu_count']} CPUs ({result['environment']['cpu_model']}), shared with a "
             "training run · `benchmarks/false_cases.py`", "",
             f"Each clip looped into one continuous stream of {result['minutes_per_run']:g} min of stream time "
             "(timestamps keep counting across the loop seam) through the offline run loop (`service.run.run_camera`"
             " on `service.pipeline.build_pipeline`, as `streetwatch run`), one zone over the whole frame read by "
             "both rules (no_vending: stall rule; watch_area: bike rule), the example configuration's settings "
             f"(1 sample/s, `model.conf` {result['conf']}, scores from the card's track_score, dwell stall 300 s, "
             "bike 600 s). The clips hold no stall and no bike: every box of a street class is false and every case "
             "is a false case.", "",
             "Columns: false boxes/frame: the detector's boxes of the rules' classes at the card's per-class "
             "thresholds (operating point), median and mean over frames (weak: mean at `model.conf`, which the "
             "tracker uses to keep tracks alive); tracks: confirmed (stationary at least once); longest track / "
             "still: the longest a false track lived / stood still, by class (a case needs a track standing still "
             "in the zone for the rule's dwell: 300 s stall, 600 s bike); due: violations the rules opened; cases: "
             "those passed on after the second look.", ""]
    rows = []
    for r in result["runs"]:
        fb = r["false_boxes_per_frame"]
        rows.append([r["clip"], "on" if r["second_look"] else "off", f"{r['stream_h']:.2f}", r["frames"],
                     f"{fb['median']:g} / {fb['mean']:.3f}", f"{r['weak_boxes_per_frame_mean']:.2f}",
                     _kinds(r["false_boxes_by_class"]), f"{r['tracks']} ({r['stationary_tracks']})",
                     _seconds(r["longest_track_s"]), _seconds(r["longest_still_s"]),
                     _kinds(r["due_by_kind"]), _kinds(r["opened_by_kind"]), f"{r['false_cases_per_h']:.2f}",
                     ", ".join(f"{k} {v}" for k, v in r["second_look_verdicts"].items()) or "—", r["wall_s"]])
    lines += [md_table(["clip", "second look", "stream h", "frames", "false boxes/frame (median / mean)",
                        "weak boxes/frame", "false boxes by class", "tracks (stationary)", "longest track s",
                        "longest still s", "violations due",
                        "cases opened", "false cases / h", "second-look verdicts", "wall s"], rows), ""]
    looks = [r for r in result["runs"] if r["second_look_ms"]]
    if looks:
        lines += ["Second looks taken: " + "; ".join(
            f"{r['clip']} {r['second_looks']} (median {r['second_look_ms']['median']} ms, p95 "
            f"{r['second_look_ms']['p95']} ms)" for r in looks) + ". Frame time with the look: " + "; ".join(
            f"{r['clip']} median {r['frame_ms']['median']} ms, p95 {r['frame_ms']['p95']} ms" for r in looks) + ".",
            ""]
    lines += ["Stream: " + "; ".join(
        f"{r['clip']} {r['passes']} passes of {r['clip_s']} s, longest step between samples {r['max_step_s']} s"
        for r in result["runs"] if not r["second_look"]) + " (steps longer than the 1 s sampling period are the "
        "loop seams, where the sample grid restarts with the clip's keyframes; time never steps back).", ""]
    lines += ["Clips (../shared/footage, Intel IoT DevKit sample videos, CC BY 4.0): " + "; ".join(
        f"`{c['name']}` ({c['truth']})" for c in result["clips"]) + ". `parking-lot-bicycle` is left out: a 3.6 s "
        "shot from a moving camera of a bike being wheeled through; looped it is no stream a fixed camera sends.",
        "", f"Violations and evidence of each run: `{_relative(result['work_dir'])}/{model_label(result['model'])}/"
            "<clip>-<look|no-look>/`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="street", help="model name under models/, or a card file")
    parser.add_argument("--minutes", type=float, default=30.0, help="stream minutes per clip and setting")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 minute per clip and setting")
    parser.add_argument("--clips", nargs="+", choices=[c.name for c in CLIPS], default=[c.name for c in CLIPS])
    parser.add_argument("--conf", type=float, default=EXAMPLE_CONF, help="the camera's model.conf")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "var" / "false_cases")
    parser.add_argument("--name", default=None, help="results file stem (default false_cases[_MODEL][_quick])")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    if not minutes > 0:
        parser.error(f"--minutes must be > 0, got {minutes}")
    clips = [c for c in CLIPS if c.name in args.clips]
    label = model_label(args.model)
    name = args.name or ("false_cases" + ("" if label == "street" else f"_{label}")
                         + ("_quick" if args.quick else ""))

    def progress(row: dict) -> None:
        print(f"{row['clip']} second_look={row['second_look']}: {row['frames']} frames, due {row['violations_due']}, "
              f"cases {row['cases_opened']}, {row['wall_s']} s", file=sys.stderr, flush=True)

    result = benchmark(args.model, minutes, clips, args.work_dir, args.conf, args.threads, progress)
    json_path, md_path = write_results(name, result, to_markdown(result))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
