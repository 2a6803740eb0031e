"""What the second look before a case costs, what it keeps and rejects on real frames, and whether it delays a case.

The second look (`detector.verify.SecondLook`) runs the camera's detector again on an enlarged crop around each
member box of a violation when it becomes due. This benchmark measures, with the service's default second-look
settings (`service.config.SecondLookSettings`) and the rules' default classes:

1. Cost: milliseconds per member box and per violation (median, p95 over many looks) against one full-frame
   detection of the same model on the same frames in the same run (ratios of medians).
2. Keep: on the bicycles-2000 test split (real photos, a HOLDOUT: measured, never tuned on; CC BY 4.0, "Bicycle
   v3" by Roboflow Universe user thesis-2-eoeid), the share of labelled bicycles the look confirms, taken at the
   labelled box (as if the first look had drawn it exactly) and at the first look's own boxes that match a labelled
   bike one-to-one at IoU >= 0.5 (what the look sees in service). One violation per image: all its labelled bikes.
3. Reject: on the real clips without any stall or bike (../shared/footage people-walking and parking-lot-cars,
   Intel IoT DevKit sample videos, CC BY 4.0; sampled at ``--clip-fps``), every first-look box of a rule's class at
   the card's thresholds is false; the share the look refuses, by class and reason. One violation per frame and
   rule: all its boxes of that rule's classes.
4. Delay: cached scenario clips (`benchmarks.scenarios`) through the offline run loop (`service.run.run_camera`)
   with and without the second look: each violation's opening time on the stream clock in both runs, and the wall
   time of the frame it opened on. `CameraPipeline._look_again` runs the look synchronously inside the
   ``process`` call of the frame on which the rule engine reports ``opened``, and passes the event on in that same
   step when the look agrees: the case opens at the same frame timestamp, and only that frame's processing takes
   longer, by the look's compute time. Only a refused look delays a case: it is looked at again on an ``updated``
   event at least ``recheck_interval_s`` (300 s) later.

Run:  python benchmarks/second_look.py [--model street] [--quick] [--scenarios stall_7min bikes_outside_box_12min]
Writes benchmarks/results/second_look[_<model>].json and .md (``--quick``: second_look_quick, a few frames each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and its detector.py would shadow the detector package.
sys.path.insert(0, str(REPO))
from benchmarks.common import environment, md_table, shared_dir, write_results  # noqa: E402
from benchmarks.false_cases import (CLIPS, PipelineTap, RunCounts, model_label, operating_thresholds,  # noqa: E402
                                    percentile)

__all__ = ["LookTally", "delay_rows", "main", "measure_bicycles", "measure_clips", "measure_delay", "time_stats"]

IOU_MIN = 0.5
DELAY_SCENARIOS = ("stall_7min", "bikes_outside_box_12min")


def time_stats(ms: Sequence[float]) -> dict[str, float] | None:
    """Median, p95 (nearest rank) and count of timings in ms; None for none.

    Example:
        >>> time_stats([10.0, 20.0, 30.0, 40.0])
        {'n': 4, 'median_ms': 25.0, 'p95_ms': 40.0}
    """
    if not ms:
        return None
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 0.95), 2)}


class LookTally:
    """Counts of second looks at single boxes (kept / refused, by reason and class) and their timings.

    Example:
        >>> t = LookTally()
        >>> t.add_box("bicycle", True, "agreed", 12.0); t.add_box("ebike", False, "other_class", 9.0)
        >>> t.summary()["kept"], t.summary()["refused_by_reason"]
        (1, {'other_class': 1})
    """

    def __init__(self) -> None:
        self.kept = 0
        self.looked = 0
        self.by_reason: Counter = Counter()
        self.by_class: dict[str, Counter] = {}
        self.box_ms: list[float] = []

    def add_box(self, class_name: str, agree: bool, reason: str, ms: float) -> None:
        self.looked += 1
        self.kept += int(agree)
        if not agree:
            self.by_reason[reason] += 1
        self.by_class.setdefault(class_name, Counter())["kept" if agree else "refused"] += 1
        self.box_ms.append(ms)

    def summary(self) -> dict[str, Any]:
        return {
            "looked": self.looked, "kept": self.kept, "refused": self.looked - self.kept,
            "kept_share": round(self.kept / self.looked, 4) if self.looked else None,
            "refused_share": round(1 - self.kept / self.looked, 4) if self.looked else None,
            "refused_by_reason": dict(sorted(self.by_reason.items())),
            "by_class": {k: dict(sorted(v.items())) for k, v in sorted(self.by_class.items())},
            "ms_per_box": time_stats(self.box_ms),
        }


def _rule_classes() -> dict[str, frozenset[str]]:
    """Violation kind → the classes its rule reads by default (from the configuration's one home of them)."""
    from service.config import parse_config

    rules = parse_config({"config_version": 1}).rules
    return {kind: frozenset(rule.classes) for kind, rule in rules.items()}


def _load(model: str, threads: int):
    """(detector, second look, class map, operating thresholds) as `service.pipeline.build_pipeline` makes them."""
    from detector.runtime import OnnxDetector, RuntimeOptions, resolve_card
    from detector.verify import SecondLook
    from service.config import SecondLookSettings

    detector = OnnxDetector(resolve_card(model), RuntimeOptions(intra_op_threads=threads))
    class_map = dict(detector.card.violation_classes)
    look = SecondLook(detector, SecondLookSettings().to_detector(), class_map)
    warm = np.full((detector.card.input.height_px, detector.card.input.width_px, 3), 114, np.uint8)
    for _ in range(3):  # onnxruntime's first runs allocate; keep them out of the timings
        detector.detect(warm)
    return detector, look, class_map, operating_thresholds(detector.card, class_map)


def _names(det, class_map: Mapping[str, str]) -> np.ndarray:
    if not len(det):
        return np.zeros(0, object)
    return np.asarray([class_map.get(str(n), str(n)) for n in det.data["class_name"]], dtype=object)


def _timed_detect(detector, image: np.ndarray) -> tuple[Any, float]:
    started = time.perf_counter()
    det = detector.detect(image)
    return det, (time.perf_counter() - started) * 1000


def measure_bicycles(detector, look, class_map: Mapping[str, str], bike_classes: frozenset[str], shared: Path,
                     limit: int | None = None) -> dict[str, Any]:
    """Keep share and cost on the bicycles-2000 test split (labelled boxes and the first look's true boxes)."""
    from benchmarks.small_objects import greedy_match
    from datasets.yolo import cxcywh_norm_to_xyxy_px, load_dataset

    ds = load_dataset(shared / "data" / "bicycles-2000" / "data.yaml")
    bike_id = ds.class_names.index("bicycle")
    items = sorted(ds.splits["test"], key=lambda item: item.image_path.name)[:limit]
    full_ms: list[float] = []
    violation_ms: list[float] = []
    members: list[int] = []
    at_label, at_first_look = LookTally(), LookTally()
    first_look_true = labelled = 0
    for item in items:
        image = cv2.imread(str(item.image_path))
        if image is None:
            raise ValueError(f"{item.image_path}: not a readable image")
        h, w = image.shape[:2]
        truth = cxcywh_norm_to_xyxy_px(item.boxes_cxcywh_norm, w, h)[np.asarray(item.class_id) == bike_id]
        det, ms = _timed_detect(detector, image)
        full_ms.append(ms)
        labelled += len(truth)
        for box in truth:
            v = look.check(image, box[None, :], bike_classes)
            at_label.add_box("bicycle", v.agree, v.reason, v.ms)
        names = _names(det, class_map)
        bikes = np.isin(names, list(bike_classes))
        det_xyxy = np.asarray(det.xyxy, np.float64).reshape(-1, 4)[bikes]
        matched, _ = greedy_match(det_xyxy, np.asarray(det.confidence, np.float64)[bikes], truth, IOU_MIN)
        for box, name in zip(det_xyxy[matched], names[bikes][matched]):
            first_look_true += 1
            v = look.check(image, box[None, :], bike_classes)
            at_first_look.add_box(str(name), v.agree, v.reason, v.ms)
        if len(truth):
            v = look.check(image, truth, bike_classes)
            violation_ms.append(v.ms)
            members.append(len(truth))
    return {
        "images": len(items), "labelled_bicycles": labelled, "first_look_true_boxes": first_look_true,
        "full_frame": time_stats(full_ms), "at_labelled_box": at_label.summary(),
        "at_first_look_box": at_first_look.summary(), "per_violation": time_stats(violation_ms),
        "members_per_violation_mean": round(statistics.fmean(members), 2) if members else None,
    }


def _sampled_frames(video: Path, every_s: float, max_frames: int | None) -> Iterable[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"{video}: not a readable video")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        step = max(1, round(every_s * fps))
        index = taken = 0
        while max_frames is None or taken < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            if index % step == 0:
                taken += 1
                yield image
            index += 1
    finally:
        cap.release()


def measure_clips(detector, look, class_map: Mapping[str, str], thresholds: Mapping[str, float],
                  rule_classes: Mapping[str, frozenset[str]], shared: Path, clip_fps: float,
                  max_frames: int | None = None) -> dict[str, Any]:
    """Reject share and cost on the clips' false boxes (every box of a rule's class is false there)."""
    out = {}
    for clip in CLIPS:
        tally = LookTally()
        full_ms: list[float] = []
        violation_ms: list[float] = []
        members: list[int] = []
        violations_refused = violations = frames = 0
        for image in _sampled_frames(shared / clip.path, 1.0 / clip_fps, max_frames):
            frames += 1
            det, ms = _timed_detect(detector, image)
            full_ms.append(ms)
            names = _names(det, class_map)
            floor = np.asarray([thresholds.get(n, 1.0) for n in names], np.float64)
            strong = np.asarray(det.confidence, np.float64) >= floor
            xyxy = np.asarray(det.xyxy, np.float64).reshape(-1, 4)
            for classes in rule_classes.values():
                mine = strong & np.isin(names, list(classes))
                for box, name in zip(xyxy[mine], names[mine]):
                    v = look.check(image, box[None, :], classes)
                    tally.add_box(str(name), v.agree, v.reason, v.ms)
                if mine.any():
                    v = look.check(image, xyxy[mine], classes)
                    violations += 1
                    violations_refused += int(not v.agree)
                    violation_ms.append(v.ms)
                    members.append(int(mine.sum()))
        out[clip.name] = {
            "frames": frames, "false_boxes": tally.looked, "full_frame": time_stats(full_ms),
            "looks": tally.summary(), "per_violation": time_stats(violation_ms), "violations": violations,
            "violations_refused": violations_refused,
            "members_per_violation_mean": round(statistics.fmean(members), 2) if members else None,
        }
    return out


def delay_rows(without: Mapping[str, dict], with_look: Mapping[str, dict], counts_without: RunCounts,
               counts_with: RunCounts) -> list[dict[str, Any]]:
    """One row per violation reported in either run: its opening time in both and the delay on the stream clock.

    Args:
        without, with_look: Violation id → its `service.run.violation_record` in the run without / with the look.
        counts_without, counts_with: The two runs' counts (the wall time of the frame each case opened on).

    Example:
        >>> rec = lambda t, look=None: {"kind": "stall_occupation", "opened_at": t, "second_look": look}
        >>> rows = delay_rows({"v": rec("2026-06-01T08:05:00+00:00")},
        ...                   {"v": rec("2026-06-01T08:05:00+00:00", {"agree": True, "reason": "agreed", "ms": 80})},
        ...                   RunCounts({}, opening_frame_ms={"v": 100.0}),
        ...                   RunCounts({}, opening_frame_ms={"v": 185.0}))
        >>> rows[0]["delay_s"], rows[0]["extra_frame_ms"], rows[0]["look_ms"]
        (0.0, 85.0, 80)
    """
    rows = []
    for vid in sorted(set(without) | set(with_look)):
        a, b = without.get(vid), with_look.get(vid)
        opened_a = datetime.fromisoformat(a["opened_at"]) if a and a.get("opened_at") else None
        opened_b = datetime.fromisoformat(b["opened_at"]) if b and b.get("opened_at") else None
        ms_a, ms_b = counts_without.opening_frame_ms.get(vid), counts_with.opening_frame_ms.get(vid)
        look = (b or {}).get("second_look") or {}
        rows.append({
            "violation_id": vid, "kind": (a or b)["kind"],
            "opened_without": opened_a.isoformat() if opened_a else None,
            "opened_with": opened_b.isoformat() if opened_b else None,
            "delay_s": (opened_b - opened_a).total_seconds() if opened_a and opened_b else None,
            # members at the look (its per-box verdicts); without a look, the boxes the violation closed with
            "members": len(look["agreed"]) if "agreed" in look else len((a or b).get("boxes") or []),
            "verdict": look.get("reason"), "look_ms": look.get("ms"),
            "frame_ms_without": None if ms_a is None else round(ms_a, 1),
            "frame_ms_with": None if ms_b is None else round(ms_b, 1),
            "extra_frame_ms": None if ms_a is None or ms_b is None else round(ms_b - ms_a, 1),
        })
    return rows


def _run_scenario(name: str, model: str, second_look: bool, work_dir: Path, threads: int) -> tuple[dict, RunCounts]:
    from benchmarks.scenarios import render_cached, scenario_config
    from detector.sources import open_source
    from service.config import parse_config
    from service.pipeline import build_pipeline
    from service.run import run_camera

    video, timeline = render_cached(name, work_dir)
    raw = scenario_config(timeline, model)
    for rule in raw["rules"].values():
        rule["second_look"] = second_look
    config = parse_config(raw, f"<{name}>")
    camera = config.cameras[0]
    pipeline = build_pipeline(config, camera, threads=threads)
    counts = RunCounts({})
    tap = PipelineTap(pipeline, counts)
    start = datetime.fromisoformat(timeline["start_utc"].replace("Z", "+00:00"))
    source = open_source(video, camera.sample_fps, source_id=camera.id, start_ts=start)
    with tempfile.TemporaryDirectory() as tmp, source:
        out_path = Path(tmp) / "violations.jsonl"
        with open(out_path, "w", encoding="utf-8") as out:
            run_camera(config, camera, source, out, Path(tmp) / "evidence", tap)
        records = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    return {r["violation_id"]: r for r in records}, counts


def measure_delay(model: str, scenarios: Sequence[str], work_dir: Path, threads: int) -> list[dict[str, Any]]:
    """Each scenario with and without the second look; one row per violation."""
    out = []
    for name in scenarios:
        without, counts_without = _run_scenario(name, model, False, work_dir, threads)
        with_look, counts_with = _run_scenario(name, model, True, work_dir, threads)
        rows = delay_rows(without, with_look, counts_without, counts_with)
        out.append({"scenario": name, "frames": len(counts_with.frame_ms),
                    "frame_ms_with": time_stats(counts_with.frame_ms),
                    "frame_ms_without": time_stats(counts_without.frame_ms), "violations": rows})
    return out


def _ratio(num: dict | None, den: dict | None) -> float | None:
    if not num or not den or not den["median_ms"]:
        return None
    return round(num["median_ms"] / den["median_ms"], 2)


def benchmark(model: str, threads: int, clip_fps: float, scenarios: Sequence[str], work_dir: Path,
              quick: bool = False) -> dict[str, Any]:
    from detector.runtime import resolve_card

    shared = shared_dir()
    if shared is None:
        raise SystemExit("second_look: ../shared (or STREETWATCH_SHARED) is needed for the photos and footage")
    rule_classes = _rule_classes()
    detector, look, class_map, thresholds = _load(model, threads)
    bicycles = measure_bicycles(detector, look, class_map, rule_classes["bike_misparked"], shared,
                                limit=10 if quick else None)
    clips = measure_clips(detector, look, class_map, thresholds, rule_classes, shared, clip_fps,
                          max_frames=10 if quick else None)
    delay = measure_delay(model, scenarios, work_dir, threads)
    card = resolve_card(model)
    return {
        "environment": environment(), "model": model, "model_version": card.version, "threads": threads,
        "second_look_config": asdict(look.config), "rule_classes": {k: sorted(v) for k, v in rule_classes.items()},
        "operating_thresholds": thresholds, "clip_fps": clip_fps, "quick": quick,
        "bicycles_2000_test": bicycles, "clips": clips, "delay": delay,
    }


def _ms(stats: dict | None) -> str:
    return f"{stats['median_ms']:.1f} / {stats['p95_ms']:.1f}" if stats else "—"


def _or_dash(value: object) -> object:
    return "—" if value is None else value


def _per_violation(part: dict) -> str:
    if not part["per_violation"]:
        return "—"
    return f"{_ms(part['per_violation'])} ({part['members_per_violation_mean']} boxes)"


def to_markdown(result: dict) -> str:
    b, cfg = result["bicycles_2000_test"], result["second_look_config"]
    lines = [f"# The second look before a case: cost, keep and reject on real frames (`{result['model']}`)", "",
             f"{result['environment']['date_utc']} · model `{result['model']}` {result['model_version']} · "
             f"{result['environment']['cpu_count']} CPUs ({result['environment']['cpu_model']}), shared with a "
             "training run · `benchmarks/second_look.py`" + (" · QUICK smoke run" if result["quick"] else ""), "",
             "The service's default second look (`detector.verify`: context "
             f"{cfg['context_frac']:g}× the box's longer side each way, up to {cfg['max_upscale']:g}× enlarged to "
             f"the network's input, re-detection of a rule's class at IoU ≥ {cfg['min_iou']:g} at the card's "
             "thresholds; a violation needs half its members confirmed). Times are wall ms in this process, same "
             "detector, same frames, one after the other; median / p95.", "", "## Cost", ""]
    rows = [["bicycles-2000 test (labelled bikes)", b["images"], _ms(b["full_frame"]),
             _ms(b["at_labelled_box"]["ms_per_box"]),
             _or_dash(_ratio(b["at_labelled_box"]["ms_per_box"], b["full_frame"])), _per_violation(b),
             _or_dash(_ratio(b["per_violation"], b["full_frame"]))]]
    for name, c in result["clips"].items():
        rows.append([f"{name} (false boxes)", c["frames"], _ms(c["full_frame"]), _ms(c["looks"]["ms_per_box"]),
                     _or_dash(_ratio(c["looks"]["ms_per_box"], c["full_frame"])), _per_violation(c),
                     _or_dash(_ratio(c["per_violation"], c["full_frame"]))])
    lines += [md_table(["frames", "images", "full-frame detection ms", "look ms per member box",
                        "ratio (medians)", "look ms per violation (members)", "ratio (medians)"], rows), ""]
    lines += ["## What it keeps (true bikes) and rejects (false boxes)", ""]
    la, lf = b["at_labelled_box"], b["at_first_look_box"]
    rows = [["bicycles-2000 test: at each labelled bicycle box", la["looked"], f"{la['kept']} ({la['kept_share']:.1%})",
             ", ".join(f"{k} {v}" for k, v in la["refused_by_reason"].items()) or "—"],
            ["bicycles-2000 test: at the first look's true boxes (IoU ≥ 0.5 with a labelled bike)", lf["looked"],
             f"{lf['kept']} ({lf['kept_share']:.1%})" if lf["looked"] else "—",
             ", ".join(f"{k} {v}" for k, v in lf["refused_by_reason"].items()) or "—"]]
    for name, c in result["clips"].items():
        looks = c["looks"]
        by_class = "; ".join(f"{k}: refused {v.get('refused', 0)} of {v.get('refused', 0) + v.get('kept', 0)}"
                             for k, v in looks["by_class"].items())
        kept = f"{looks['kept']} ({1 - looks['refused_share']:.1%}) — refused {looks['refused']} " \
               f"({looks['refused_share']:.1%}); {by_class}" if looks["looked"] else "—"
        rows.append([f"{name}: every false box at the card's thresholds ({c['frames']} frames at "
                     f"{result['clip_fps']:g}/s); as violations: {c['violations_refused']} of {c['violations']} "
                     "refused", looks["looked"], kept,
                     ", ".join(f"{k} {v}" for k, v in looks["refused_by_reason"].items()) or "—"])
    lines += [md_table(["boxes", "looked at", "kept", "refused, by reason"], rows), ""]
    lines += ["## Does it delay a due case?", "",
              "Code (`CameraPipeline._look_again`, detector/pipeline.py): the look runs synchronously in the "
              "`process` call of the frame on which the rule engine reports `opened`; when it agrees, that very "
              "event is passed on in the same step, so the case opens at the same frame timestamp as without the "
              "look, and that frame's processing takes longer by the look's compute time (nothing is queued or "
              "deferred). A refused look holds the violation: it is looked at again only on an `updated` event at "
              f"least `recheck_interval_s` ({cfg['recheck_interval_s']:g} s) later, so a true violation the look "
              "wrongly refuses opens at least that much later (or never, if it closes first) — the price is set by "
              "the keep share above, not by compute.", "",
              "Measured: scenario clips (rendered, cached under var/scenarios) through the offline run loop with "
              "and without the look; opening time on the stream clock in both runs, wall time of the opening "
              "frame.", ""]
    rows = []
    for s in result["delay"]:
        for v in s["violations"]:
            rows.append([s["scenario"], v["kind"], v.get("members", "—"), v["opened_without"] or "—",
                         v["opened_with"] or "—",
                         "—" if v["delay_s"] is None else f"{v['delay_s']:+.0f}", v["verdict"] or "—",
                         v["look_ms"] if v["look_ms"] is not None else "—",
                         f"{v['frame_ms_without']} → {v['frame_ms_with']}" if v["frame_ms_with"] is not None
                         else "—"])
    lines += [md_table(["scenario", "kind", "boxes", "opened (no look)", "opened (look)", "delay s (stream)", "verdict",
                        "look ms", "opening frame ms (no look → look)"], rows), ""]
    lines += ["Frame time over the whole scenario (median / p95 ms): " + "; ".join(
        f"{s['scenario']} {_ms(s['frame_ms_without'])} without, {_ms(s['frame_ms_with'])} with"
        for s in result["delay"]) + ".", "",
        "Sources: bicycles-2000 (CC BY 4.0, \"Bicycle v3\" by Roboflow Universe user thesis-2-eoeid), test split "
        "(holdout; nothing was tuned on it here); footage: Intel IoT DevKit sample videos (CC BY 4.0)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="street", help="model name under models/, or a card file")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--clip-fps", type=float, default=2.0, help="frames per second sampled from the clips")
    parser.add_argument("--scenarios", nargs="*", default=list(DELAY_SCENARIOS),
                        help="cached scenario clips for the delay check (none: skip it)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "var" / "scenarios",
                        help="where the scenario clips are cached (benchmarks/scenarios.py's --work-dir)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 photos, 10 frames per clip, the passerby_30s scenario only")
    parser.add_argument("--name", default=None, help="results file stem (default second_look[_MODEL][_quick])")
    args = parser.parse_args(argv)
    if not args.clip_fps > 0:
        parser.error(f"--clip-fps must be > 0, got {args.clip_fps}")
    scenarios = ["passerby_30s"] if args.quick else args.scenarios
    label = model_label(args.model)
    name = args.name or ("second_look" + ("" if label == "street" else f"_{label}")
                         + ("_quick" if args.quick else ""))
    result = benchmark(args.model, args.threads, args.clip_fps, scenarios, args.work_dir, args.quick)
    json_path, md_path = write_results(name, result, to_markdown(result))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
