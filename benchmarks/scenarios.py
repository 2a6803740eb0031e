"""Scenario accuracy: rendered scenario clips through the real `streetwatch run`, scored against ground truth.

Each built-in scenario (datasets/synth/scenario.py) is a fixed street camera on which stalls, bikes and people
appear on a known timeline, with the violations a correct pipeline must raise and when each becomes due
(`min_dwell_s` after the object settles). A scenario passes when every expected violation is reported in its
zone no later than ``due + tolerance_s`` (10 s) after it became due, and nothing else is reported.

The clip is rendered (once per seed, cached under --work-dir), the camera's configuration is made from the
timeline (`config_for_timeline`: its zones, dwell times and schedules), and ``streetwatch run`` — the CLI, as an
operator runs it — processes the mp4 with the chosen model. Seeds other than 0 change the street and the
objects' looks, never the timeline.

Run:
  python benchmarks/scenarios.py --model street --seeds 0 1 --scenarios stall_7min bikes_outside_box_12min \
      passerby_30s mixed_demo
  python benchmarks/scenarios.py --model street --seeds 0 1 2 3 --scenarios far_bikes_4min --tag far_bikes \
      --frame-recall
  python benchmarks/scenarios.py --model street --seeds 0 1 2 3 --scenarios far_bikes_4min --tag far_bikes --no-tile \
      --frame-recall
Writes benchmarks/results/scenarios_<model>[_<tag>][_no_tile].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and its detector.py would shadow the detector package.
sys.path.insert(0, str(REPO))
from datasets.synth.scenario import SCENARIOS, render_scenario  # noqa: E402
from datasets.synth.scenario_eval import config_for_timeline, score_run  # noqa: E402

# stall_2min is a real-time clip for the service tests; the others are the pipeline's acceptance scenarios.
PIPELINE_SCENARIOS = tuple(s for s in SCENARIOS if s != "stall_2min")


# Scenarios whose bikes are real cut-outs (bicycles-2000 train) when ../shared is there, drawn ones otherwise.
REAL_BIKE_SCENARIOS = ("far_bikes_4min",)


def render_cached(name: str, work_dir: Path, seed: int = 0, fps: float = 1.0,
                  max_bike_crops: int | None = None) -> tuple[Path, dict]:
    """The scenario's mp4 and timeline under ``work_dir/<name>-s<seed>-<fps>fps[-real[N]]``, rendered when
    missing (``-real``: its bikes are real cut-outs, from the first `max_bike_crops` of the bank when given)."""
    from datasets.synth import BikeCropBank, resolve_shared_dir
    from datasets.synth.dataset import bicycles_train_dir

    train = bicycles_train_dir(resolve_shared_dir(None)) if name in REAL_BIKE_SCENARIOS else None
    real = f"-real{max_bike_crops or ''}" if train is not None else ""
    out = work_dir / f"{name}-s{seed}-{fps:g}fps{real}"
    video, timeline = out / f"{name}.mp4", out / f"{name}.json"
    if not (video.is_file() and timeline.is_file()):
        bank = BikeCropBank.load_or_build(train, max_crops=max_bike_crops) if train is not None else None
        render_scenario(name, out, seed=seed, fps=fps, bike_bank=bank)
    return video, json.loads(timeline.read_text())


def operating_score(model: str) -> float | None:
    """The model's operating point for tracking: its card's ``thresholds.track_score`` (written by
    `streetwatch release`: the highest per-class threshold, chosen on val). The service uses it for every
    tracker and rule score threshold a configuration leaves out."""
    from detector.runtime import resolve_card

    return resolve_card(model).thresholds.track_score


# The tracker's and the rules' built-in score thresholds, for cards without a track_score: they assume a
# detector calibrated like the COCO models.
BUILTIN_SCORES = {"tracker": {"high_score": 0.5, "new_track_score": 0.6}, "min_score": {"stall": 0.5, "bike": 0.4}}


def runs_tiled(timeline: dict, tile: bool = True) -> bool:
    """Whether the scenario's camera runs tiled: it asks for it (``camera.tile``) and `tile` honours that."""
    return tile and bool(timeline["camera"].get("tile"))


def scenario_config(timeline: dict, model: str, at_operating_score: bool = True, tile: bool = True) -> dict:
    """The scenario camera's configuration. With `at_operating_score` the file leaves the score thresholds
    out, as an operator's file would, so they come from the model card's track_score; without it they are
    pinned to the built-in values (`BUILTIN_SCORES`) to show what a model with a different calibration loses.
    Without `tile`, a camera that asks for tiled inference runs the whole frame at the card's input size."""
    config = config_for_timeline(timeline, model)
    if not tile:
        for camera in config["cameras"]:
            camera.pop("model", None)
    if not at_operating_score:
        config["tracker"] = dict(BUILTIN_SCORES["tracker"])
        config["rules"]["stall_occupation"]["min_score"] = BUILTIN_SCORES["min_score"]["stall"]
        config["rules"]["bike_misparked"]["min_score"] = BUILTIN_SCORES["min_score"]["bike"]
    return config


def run_scenario(name: str, work_dir: Path, model: str = "street", seed: int = 0, fps: float = 1.0,
                 tolerance_s: float = 10.0, at_operating_score: bool = True, tile: bool = True,
                 max_bike_crops: int | None = None) -> dict[str, Any]:
    """Render (cached), run through ``streetwatch run``, score. Returns a JSON-ready summary.

    Args:
        name, work_dir, model, seed, fps: Which clip, where it is cached, which model runs it.
        tolerance_s: How late after due a violation may be reported.
        at_operating_score: Leave the score thresholds to the model card (`scenario_config`).
        tile: Honour a camera's tiled inference (False: whole frame, to show what tiling buys).
        max_bike_crops: Real cut-outs from the first N of the crop bank (tests: faster to build); None: all.

    Raises:
        RuntimeError: ``streetwatch run`` failed (its stderr is in the message).
    """
    video, timeline = render_cached(name, work_dir, seed, fps, max_bike_crops)
    run_dir = video.parent / f"run-{model}{'' if at_operating_score else '-defaults'}{'' if tile else '-no-tile'}"
    run_dir.mkdir(exist_ok=True)
    config_path = run_dir / "config.yaml"
    config = scenario_config(timeline, model, at_operating_score, tile)
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    out = run_dir / "violations.jsonl"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "run", str(video), "--config", str(config_path),
         "--camera", timeline["camera"]["id"], "--out", str(out), "--start", timeline["start_utc"],
         "--evidence-dir", str(run_dir / "evidence")],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "YOLO_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"streetwatch run failed on {name} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    score = score_run(timeline, records, tolerance_s=tolerance_s)
    return {
        "scenario": name, "seed": seed, "model": model, "tracker": config.get("tracker"),
        "min_score": config["rules"]["stall_occupation"].get("min_score"), "tiled": runs_tiled(timeline, tile),
        "passed": score.passed, "expected": score.expected,
        "found": score.found, "missed": score.missed, "late": score.late,
        "unexpected": [{k: r.get(k) for k in ("kind", "zone", "opened_at", "last_seen", "dwell_s", "score")}
                       for r in score.unexpected],
        "frames": summary.get("frames"), "median_inference_ms": summary.get("median_inference_ms"),
        "wall_s": round(time.monotonic() - started, 1), "violations_jsonl": str(out),
    }


def frame_recall(name: str, work_dir: Path, model: str = "street", seed: int = 0, fps: float = 1.0,
                 tile: bool = True, max_bike_crops: int | None = None) -> dict[str, Any]:
    """How often the detector alone finds each labelled bicycle, frame by frame, in a cached clip: the
    per-frame recall the tracker and the rules build on. Matching: one-to-one, a ``bicycle`` box at the card's
    thresholds at IoU >= 0.5 with the bike's box (`benchmarks.small_objects.greedy_match`); tiled like
    ``streetwatch run`` when the camera asks for it and `tile` is set."""
    import cv2
    import numpy as np

    from benchmarks.small_objects import greedy_match
    from detector.runtime import OnnxDetector, TilingConfig, detect_tiled, resolve_card

    video, timeline = render_cached(name, work_dir, seed, fps, max_bike_crops)
    detector = OnnxDetector(resolve_card(model))
    tiled = runs_tiled(timeline, tile)
    w, h = timeline["size_px"]
    bikes = [e for e in timeline["events"] if e["class"] == "bicycle"]
    seen = {e["object_id"]: 0 for e in bikes}
    shown = {e["object_id"]: 0 for e in bikes}
    cap = cv2.VideoCapture(str(video))
    try:
        i = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            t = i / float(timeline["fps"])
            i += 1
            present = [e for e in bikes if e["appear_s"] <= t < e["leave_s"]]
            if not present:
                continue
            det = detect_tiled(detector, image, TilingConfig(overlap_frac=0.2))[0] if tiled else detector.detect(image)
            keep = np.asarray(det.data["class_name"] == "bicycle", bool) if len(det) else np.zeros(0, bool)
            gt = np.array([[v * s for v, s in zip(e["xyxy_norm"], (w, h, w, h))] for e in present])
            _d, matched = greedy_match(det.xyxy[keep].astype(np.float64), det.confidence[keep], gt)
            for e, m in zip(present, matched):
                shown[e["object_id"]] += 1
                seen[e["object_id"]] += int(m)
    finally:
        cap.release()
    per_bike = {k: round(seen[k] / shown[k], 3) for k in shown if shown[k]}
    return {"scenario": name, "seed": seed, "tiled": tiled, "per_bike": per_bike,
            "width_px": {e["object_id"]: e.get("width_px") for e in bikes},
            "frames_seen": sum(seen.values()), "frames_shown": sum(shown.values()),
            "recall": round(sum(seen.values()) / max(1, sum(shown.values())), 3)}


def _markdown(rows: list[dict], model: str) -> str:
    scores = sorted({(json.dumps(r["tracker"]), r["min_score"]) for r in rows})
    lines = [f"# Scenario clips through `streetwatch run` (model `{model}`)", "",
             "Pass: every expected violation reported in its zone within 10 s of becoming due, nothing else.", "",
             "Score thresholds: " + "; ".join(f"tracker {t}, rules' min_score {m}" for t, m in scores)
             + f" (null: left out of the file, so the model card's track_score, {operating_score(model)}, applies;"
             " with no track_score in the card, the built-in tracker 0.5 / 0.6 and min_score 0.5 stall, 0.4 bikes).",
             "",
             "| scenario | seed | tiled | expected | found (delay s) | missed | late | unexpected | frames | "
             "inference ms (median) | result |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        delays = ", ".join(f"{f['kind']} {f['delay_s']:+.0f}" for f in r["found"]) or "–"
        lines.append(f"| {r['scenario']} | {r['seed']} | {'yes' if r['tiled'] else 'no'} | {r['expected']} | "
                     f"{delays} | {len(r['missed'])} | "
                     f"{len(r['late'])} | {len(r['unexpected'])} | {r['frames']} | {r['median_inference_ms']} | "
                     f"{'pass' if r['passed'] else 'FAIL'} |")
    passed = sum(r["passed"] for r in rows)
    lines += ["", f"{passed} of {len(rows)} runs pass."]
    recalls = [r["frame_recall"] for r in rows if r.get("frame_recall")]
    if recalls:
        lines += ["", "Per-frame recall of the detector alone on the same clips (`--frame-recall`: a `bicycle` box at "
                  "the card's thresholds at IoU ≥ 0.5, one-to-one, in every frame a bike is on screen; tiled as the "
                  "run was), against the bike's width:", "",
                  "| scenario | seed | tiled | per-frame recall | per bike (width px: share of frames) |",
                  "|---|---|---|---|---|"]
        for fr in recalls:
            per = ", ".join(f"{fr['width_px'][k]:.0f}: {v:.2f}" for k, v in
                            sorted(fr["per_bike"].items(), key=lambda kv: fr["width_px"][kv[0]] or 0))
            lines.append(f"| {fr['scenario']} | {fr['seed']} | {'yes' if fr['tiled'] else 'no'} | "
                         f"{fr['recall']:.3f} ({fr['frames_seen']}/{fr['frames_shown']}) | {per} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="street")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scenarios", nargs="+", default=list(PIPELINE_SCENARIOS), choices=PIPELINE_SCENARIOS)
    parser.add_argument("--fps", type=float, default=1.0, help="frame rate the clips are rendered at")
    parser.add_argument("--work-dir", type=Path, default=REPO / "var" / "scenarios")
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--no-tile", action="store_true",
                        help="run every camera on the whole frame at the card's input size, also those that ask "
                             "for tiled inference (far_bikes_4min): shows what tiling buys")
    parser.add_argument("--frame-recall", action="store_true",
                        help="also measure the detector's per-frame recall of each labelled bicycle on the clips")
    parser.add_argument("--tag", default="", help="suffix of the result files' names (e.g. far_bikes)")
    parser.add_argument("--default-scores", action="store_true",
                        help="keep the tracker's and rules' built-in score thresholds (default: the card's "
                             "operating point)")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for name in args.scenarios:
            row = run_scenario(name, args.work_dir, args.model, seed, args.fps,
                               at_operating_score=not args.default_scores, tile=not args.no_tile)
            if args.frame_recall:
                row["frame_recall"] = frame_recall(name, args.work_dir, args.model, seed, args.fps,
                                                   tile=not args.no_tile)
            print(json.dumps({k: row[k] for k in ("scenario", "seed", "passed", "found", "missed", "late")}),
                  flush=True)
            rows.append(row)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / (f"scenarios_{args.model}{'_default_scores' if args.default_scores else ''}"
                               f"{'_' + args.tag if args.tag else ''}{'_no_tile' if args.no_tile else ''}")
    stem.with_suffix(".json").write_text(json.dumps({"model": args.model, "fps": args.fps, "runs": rows}, indent=1))
    stem.with_suffix(".md").write_text(_markdown(rows, args.model))
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
