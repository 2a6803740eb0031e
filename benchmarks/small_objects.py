"""Small-object recall (issue 3 acceptance): are bicycles 30–80 px wide in a 1280×720 elevated-camera frame found?

Frames: synthetic street scenes from `datasets.synth.render_street_scene` (pole camera, perspective, shadows,
occlusion, lighting, JPEG at the scene's quality), with every bicycle group made of real cut-outs from the
bicycles-2000 *train* split (`BikeCropBank`; `real_bike_probability=1`), rendered with seeds ≥ 200 (training
used seed 1, the synthetic holdout seed 100). The camera geometry makes far bikes small; the targets are the
labelled real cut-outs whose visible box is 30–80 px wide, in bins 30–40, 40–55, 55–80 px.

Measured per model and inference mode, at the model card's per-class score thresholds (the service's
operating point):

* recall: targets matched one-to-one by a ``bicycle`` detection at IoU ≥ 0.5 (greedy by score, against every
  labelled bicycle of the frame); "any bike" also accepts an ``ebike`` detection (the misparking rule counts
  both);
* precision: of the ``bicycle`` detections whose own width falls in the bin, the share matched to a labelled
  bicycle (unmatched ones count as false positives, including hits on bikes hidden beyond the labelling
  threshold);
* time per frame: the whole `detect` / `detect_tiled` call, median.

Modes: the card's input size on the whole frame (``full@416``), a larger letterboxed input on the whole frame
(the shipped ONNX files have dynamic height and width), and tiles at the card's input size with 20 % overlap
plus one full-frame pass (`detector.runtime.detect_tiled`).

Run:  python benchmarks/small_objects.py --n 100 [--threads 1]
Writes benchmarks/results/small_objects.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import environment, md_table, shared_dir, write_results  # noqa: E402
from detector.geometry import box_iou  # noqa: E402
from detector.rules import BIKE_CLASSES  # noqa: E402

WIDTH_BINS_PX: tuple[tuple[float, float], ...] = ((30.0, 40.0), (40.0, 55.0), (55.0, 80.0))
FRAME_SIZE_PX = (1280, 720)
MIN_SEED = 200  # seed 1 trained the street model, seed 100 is its synthetic holdout
IOU_MIN = 0.5
MOSTLY_VISIBLE = 0.8  # a target at least this visible: not a sliver behind other bikes
LOOSE_IOU_MIN = 0.3  # separates "found but boxed loosely" (a bike in a tight row) from "missed"
REAL_BIKE_TAG = "real_bicycle"


@dataclass(frozen=True)
class SmallObjectFrame:
    """One benchmark frame and its ground truth.

    Attributes:
        index: Scene index (``default_rng([seed, index])``).
        image: (720, 1280, 3) uint8 BGR, after JPEG at the scene's quality (what a camera delivers).
        xyxy: (N, 4) every labelled object's visible box, frame pixels.
        class_names: (N,) class name of each.
        is_target: (N,) a real bicycle cut-out whose visible width lies in the target range.
        visible_fraction: (N,) share of each object not hidden by others or cut by the frame.
    """

    index: int
    image: np.ndarray
    xyxy: np.ndarray
    class_names: np.ndarray
    is_target: np.ndarray
    visible_fraction: np.ndarray

    @property
    def widths_px(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]


def load_assets(shared: Path | None = None, max_bike_crops: int | None = None):
    """Street assets with every bicycle group made of real cut-outs (bicycles-2000 train)."""
    from datasets.synth import load_street_assets, resolve_shared_dir

    assets = load_street_assets(resolve_shared_dir(shared), max_bike_crops=max_bike_crops)
    if assets.bike_bank is None or not len(assets.bike_bank):
        raise SystemExit("small_objects: no bicycle cut-outs (../shared/data/bicycles-2000/train is needed)")
    return dataclasses.replace(assets, real_bike_probability=1.0)


def small_object_frames(n: int, seed: int = MIN_SEED, assets=None,
                        widths_px: tuple[float, float] = (WIDTH_BINS_PX[0][0], WIDTH_BINS_PX[-1][1])
                        ) -> Iterator[SmallObjectFrame]:
    """`n` deterministic 1280×720 street frames with their labels and small real-bicycle targets.

    Args:
        n: Frames.
        seed: Scene seed, at least 200 (1 and 100 are the training and holdout seeds).
        assets: From `load_assets` (built once; pass it to reuse the crop bank).
        widths_px: Visible width range of a target, inclusive.
    """
    from datasets.synth import render_street_scene

    if seed < MIN_SEED:
        raise ValueError(f"seed must be >= {MIN_SEED} (seed 1 trained the model, 100 is its holdout), got {seed}")
    assets = assets if assets is not None else load_assets()
    lo, hi = widths_px
    for index in range(n):
        sample = render_street_scene(np.random.default_rng([seed, index]), FRAME_SIZE_PX, assets=assets)
        ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, int(sample.jpeg_quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        xyxy = np.asarray(sample.xyxy, np.float64).reshape(-1, 4)
        names = np.asarray([sample.class_names[int(c)] for c in sample.class_id], dtype=object)
        tags = np.asarray(sample.meta["tags"], dtype=object)
        widths = xyxy[:, 2] - xyxy[:, 0]
        is_target = (names == "bicycle") & (tags == REAL_BIKE_TAG) & (widths >= lo) & (widths <= hi)
        yield SmallObjectFrame(index, image, xyxy, names, is_target,
                               np.asarray(sample.visible_fraction, np.float64).reshape(-1))


# --- matching --------------------------------------------------------------------------------------------


def greedy_match(det_xyxy: np.ndarray, det_score: np.ndarray, gt_xyxy: np.ndarray,
                 iou_min: float = IOU_MIN) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching, highest score first, each detection to the free ground truth it overlaps most.

    Returns:
        (det_matched (D,) bool, gt_matched (G,) bool).

    Example:
        >>> d, g = greedy_match(np.array([[0, 0, 10, 10], [1, 0, 11, 10]]), np.array([0.9, 0.8]),
        ...                     np.array([[0, 0, 10, 10]]))
        >>> d.tolist(), g.tolist()
        ([True, False], [True])
    """
    det_matched = np.zeros(len(det_xyxy), bool)
    gt_matched = np.zeros(len(gt_xyxy), bool)
    if not len(det_xyxy) or not len(gt_xyxy):
        return det_matched, gt_matched
    ious = box_iou(det_xyxy, gt_xyxy)
    for d in np.argsort(-np.asarray(det_score), kind="stable"):
        candidates = np.where(gt_matched, -1.0, ious[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_min:
            det_matched[d] = gt_matched[g] = True
    return det_matched, gt_matched


def bin_of(width_px: np.ndarray) -> np.ndarray:
    """Index of each width's bin (last bin closed), -1 outside every bin."""
    out = np.full(len(width_px), -1, np.int64)
    for i, (lo, hi) in enumerate(WIDTH_BINS_PX):
        last = i == len(WIDTH_BINS_PX) - 1
        out[(width_px >= lo) & ((width_px <= hi) if last else (width_px < hi))] = i
    return out


@dataclass
class Tally:
    """Counts per width bin for one configuration."""

    targets: np.ndarray
    found: np.ndarray
    found_any_bike: np.ndarray
    found_loose: np.ndarray
    det_in_bin: np.ndarray
    det_true_in_bin: np.ndarray
    seconds: list[float]
    inputs_per_frame: int = 1
    targets_visible: int = 0
    found_visible: int = 0

    @classmethod
    def empty(cls) -> "Tally":
        z = lambda: np.zeros(len(WIDTH_BINS_PX), np.int64)  # noqa: E731
        return cls(z(), z(), z(), z(), z(), z(), [])

    def add(self, frame: SmallObjectFrame, xyxy: np.ndarray, score: np.ndarray, names: np.ndarray) -> None:
        gt_bike = frame.class_names == "bicycle"
        det_bike = names == "bicycle"
        det_m, gt_m = greedy_match(xyxy[det_bike], score[det_bike], frame.xyxy[gt_bike])
        found = np.zeros(len(frame.xyxy), bool)
        found[np.flatnonzero(gt_bike)] = gt_m
        any_gt = np.isin(frame.class_names, BIKE_CLASSES)
        any_det = np.isin(names, BIKE_CLASSES)
        _, gt_any = greedy_match(xyxy[any_det], score[any_det], frame.xyxy[any_gt])
        found_any = np.zeros(len(frame.xyxy), bool)
        found_any[np.flatnonzero(any_gt)] = gt_any
        _, gt_loose = greedy_match(xyxy[det_bike], score[det_bike], frame.xyxy[gt_bike], LOOSE_IOU_MIN)
        found_loose = np.zeros(len(frame.xyxy), bool)
        found_loose[np.flatnonzero(gt_bike)] = gt_loose
        target_bins = bin_of(frame.widths_px)
        for b in range(len(WIDTH_BINS_PX)):
            sel = frame.is_target & (target_bins == b)
            self.targets[b] += int(sel.sum())
            self.found[b] += int((sel & found).sum())
            self.found_any_bike[b] += int((sel & found_any).sum())
            self.found_loose[b] += int((sel & found_loose).sum())
        visible = frame.is_target & (frame.visible_fraction >= MOSTLY_VISIBLE)
        self.targets_visible += int(visible.sum())
        self.found_visible += int((visible & found).sum())
        det_bins = bin_of(xyxy[det_bike, 2] - xyxy[det_bike, 0])
        for b in range(len(WIDTH_BINS_PX)):
            self.det_in_bin[b] += int((det_bins == b).sum())
            self.det_true_in_bin[b] += int(((det_bins == b) & det_m).sum())


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _bin_name(lo: float, hi: float) -> str:
    return f"{lo:.0f}-{hi:.0f}px"


# --- configurations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    model: str  # a label: a model name under models/, or the label of `path`
    mode: str  # "full" or "tiled"
    input_wh: tuple[int, int] | None = None  # None: the card's
    path: str | None = None  # a model folder, card or ONNX file (a candidate not yet in models/)

    @property
    def name(self) -> str:
        if self.mode == "tiled":
            return f"{self.model} tiled@416+full"
        w, h = self.input_wh or (416, 416)
        return f"{self.model} full@{w}x{h}" if w != h else f"{self.model} full@{w}"


def load_detector(config: Config, threads: int):
    from detector.runtime import OnnxDetector, RuntimeOptions, resolve_card

    card = resolve_card(config.path or config.model)
    if config.input_wh is not None:
        w, h = config.input_wh
        card = card.model_copy(update={"input": card.input.model_copy(update={"width_px": w, "height_px": h})})
    return OnnxDetector(card, RuntimeOptions(intra_op_threads=threads))


def run_config(detector, config: Config, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    from detector.runtime import TilingConfig, detect_tiled

    t0 = time.perf_counter()
    if config.mode == "tiled":
        det, inputs = detect_tiled(detector, image, TilingConfig(overlap_frac=0.2))
    else:
        det, inputs = detector.detect(image), 1
    elapsed = time.perf_counter() - t0
    names = det.data["class_name"] if len(det) else np.zeros(0, dtype=object)
    return (np.asarray(det.xyxy, np.float64).reshape(-1, 4), np.asarray(det.confidence, np.float64),
            np.asarray(names, dtype=object), inputs, elapsed)


def parse_configs(models: Sequence[str], modes: Sequence[str]) -> tuple[Config, ...]:
    """Every model × mode. A model is a name under models/ or ``LABEL=PATH``; a mode is ``full``,
    ``full@WxH`` or ``tiled``.

    Example:
        >>> [c.name for c in parse_configs(["street", "v2=var/candidates/street"], ["full@832x480", "tiled"])]
        ['street full@832x480', 'street tiled@416+full', 'v2 full@832x480', 'v2 tiled@416+full']
    """
    configs = []
    for model in models:
        label, sep, path = model.partition("=")
        for mode in modes:
            kind, _, size = mode.partition("@")
            if kind not in ("full", "tiled") or (size and kind == "tiled"):
                raise ValueError(f"--modes {mode!r}: expected full, full@WxH or tiled")
            input_wh = None
            if size:
                w, _, h = size.partition("x")
                if not (w.isdigit() and h.isdigit()):
                    raise ValueError(f"--modes {mode!r}: size must be WxH in pixels")
                input_wh = (int(w), int(h))
            configs.append(Config(label, kind, input_wh, path if sep else None))
    return tuple(configs)


DEFAULT_MODES = ("full", "full@832x480", "full@1280x736", "tiled")
DEFAULT_CONFIGS = parse_configs(("street", "street-int8"), DEFAULT_MODES)


def benchmark(n: int, seed: int, threads: int, configs: Sequence[Config] = DEFAULT_CONFIGS) -> dict:
    assets = load_assets()
    detectors = {c: load_detector(c, threads) for c in configs}
    tallies = {c: Tally.empty() for c in configs}
    t_render = []
    all_widths = []
    for frame in _timed(small_object_frames(n, seed, assets), t_render):
        all_widths += frame.widths_px[frame.is_target].tolist()
        for c in configs:  # interleaved per frame, so a load change hits every configuration alike
            xyxy, score, names, inputs, elapsed = run_config(detectors[c], c, frame.image)
            tallies[c].add(frame, xyxy, score, names)
            tallies[c].seconds.append(elapsed)
            tallies[c].inputs_per_frame = inputs
    rows = []
    for c in configs:
        t = tallies[c]
        bins = {}
        for b, (lo, hi) in enumerate(WIDTH_BINS_PX):
            bins[_bin_name(lo, hi)] = {
                "targets": int(t.targets[b]), "found": int(t.found[b]),
                "recall": _ratio(t.found[b], t.targets[b]),
                "recall_any_bike": _ratio(t.found_any_bike[b], t.targets[b]),
                "recall_iou30": _ratio(t.found_loose[b], t.targets[b]),
                "detections": int(t.det_in_bin[b]), "precision": _ratio(t.det_true_in_bin[b], t.det_in_bin[b]),
            }
        card = detectors[c].card
        rows.append({
            "config": c.name, "model": c.model, "mode": c.mode,
            "input_px": [card.input.width_px, card.input.height_px], "network_inputs_per_frame": t.inputs_per_frame,
            "bins": bins,
            "recall_30_80": _ratio(int(t.found.sum()), int(t.targets.sum())),
            "recall_any_bike_30_80": _ratio(int(t.found_any_bike.sum()), int(t.targets.sum())),
            "recall_iou30_30_80": _ratio(int(t.found_loose.sum()), int(t.targets.sum())),
            "targets_mostly_visible": t.targets_visible,
            "recall_mostly_visible_30_80": _ratio(t.found_visible, t.targets_visible),
            "precision_30_80": _ratio(int(t.det_true_in_bin.sum()), int(t.det_in_bin.sum())),
            "ms_per_frame_median": round(1000 * statistics.median(t.seconds), 1),
            "ms_per_frame_p90": round(1000 * sorted(t.seconds)[int(0.9 * (len(t.seconds) - 1))], 1),
            "thresholds": {"bicycle": card.class_thresholds()[card.classes.index("bicycle")],
                           "ebike": card.class_thresholds()[card.classes.index("ebike")]},
        })
    widths = np.asarray(all_widths)
    return {
        "benchmark": "small_objects",
        "environment": environment(),
        "settings": {
            "frames": n, "seed": seed, "frame_px": list(FRAME_SIZE_PX), "threads": threads, "iou_min": IOU_MIN,
            "loose_iou_min": LOOSE_IOU_MIN,
            "width_bins_px": [list(b) for b in WIDTH_BINS_PX],
            "scenes": "datasets.synth.render_street_scene, real_bike_probability=1, default real-background share",
            "bike_crops": f"BikeCropBank of bicycles-2000 train ({len(assets.bike_bank)} cut-outs)",
            "tiling": "tile = card input (416 px), overlap 0.2, plus one full-frame pass",
            "score_thresholds": "model card per-class thresholds",
            "shared": str(shared_dir()),
        },
        "targets": {"count": int(len(widths)), "per_frame_median": None if not n else round(len(widths) / n, 2),
                    "width_px_median": round(float(np.median(widths)), 1) if len(widths) else None},
        "render_ms_per_frame_median": round(1000 * statistics.median(t_render), 1) if t_render else None,
        "results": rows,
    }


def _timed(iterator, sink: list[float]):
    while True:
        t0 = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        sink.append(time.perf_counter() - t0)
        yield item


def to_markdown(result: dict) -> str:
    env, s = result["environment"], result["settings"]
    bin_names = [_bin_name(lo, hi) for lo, hi in WIDTH_BINS_PX]
    first = result["results"][0]["bins"]
    header = ["configuration", "inputs/frame"] + [f"recall {b} (n={first[b]['targets']})" for b in bin_names] + \
        ["recall 30-80", "any-bike recall 30-80", "recall 30-80 at IoU 0.3",
         f"recall 30-80, ≥ {MOSTLY_VISIBLE:.0%} visible (n={result['results'][0]['targets_mostly_visible']})"] + \
        [f"precision {b}" for b in bin_names] + ["ms/frame (median)"]

    def fmt(v):
        return "–" if v is None else f"{v:.3f}"

    rows = []
    for r in result["results"]:
        rows.append([r["config"], r["network_inputs_per_frame"]]
                    + [fmt(r["bins"][b]["recall"]) for b in bin_names]
                    + [f"**{fmt(r['recall_30_80'])}**", fmt(r["recall_any_bike_30_80"]), fmt(r["recall_iou30_30_80"]),
                       fmt(r["recall_mostly_visible_30_80"])]
                    + [f"{fmt(r['bins'][b]['precision'])} ({r['bins'][b]['detections']})" for b in bin_names]
                    + [r["ms_per_frame_median"]])
    return "\n".join([
        "# Small-object recall: bicycles 30–80 px wide in 1280×720 street frames\n",
        f"{env['date_utc']} · {env['cpu_model']} · {env['cpu_count']} cores · "
        f"onnxruntime {env['onnxruntime']} · {s['threads']} intra-op thread(s)\n",
        f"{s['frames']} synthetic street frames (seed {s['seed']}, never used in training), every bicycle group "
        f"real cut-outs from {s['bike_crops']}; {result['targets']['count']} target bikes (median width "
        f"{result['targets']['width_px_median']} px). Recall: targets matched one-to-one by a `bicycle` detection at "
        f"IoU ≥ {s['iou_min']} at the card's thresholds; any-bike also accepts `ebike`; the IoU 0.3 column "
        "separates loosely boxed bikes (tight rows, partly hidden) from missed ones; the visible column counts only "
        "targets at most 20 % hidden by other objects or the frame edge. Precision: `bicycle` "
        "detections of that width matched to a labelled bicycle (count in brackets). Times: the whole detect "
        "call per frame, median.\n",
        md_table(header, rows), "",
        *_findings(result), "",
        "Modes: `full@416` is the shipped setting (the whole frame letterboxed to the card's 416 px); `full@WxH` "
        "runs the same ONNX file on a larger letterboxed input (dynamic axes); `tiled@416+full` runs 416 px tiles "
        "at native resolution with 20 % overlap plus one full-frame pass (`detect_tiled`).",
        "",
        "Caveat: the cut-outs come from the bicycles-2000 train split, which the street model was trained on (as "
        "photos and as cut-outs in the seed-1 scenes and seed-3 tiles); the scenes, placements and sizes are new, the bike instances "
        "are not, so these recalls are optimistic for bikes the model has never seen.",
    ])


def _findings(result: dict) -> list[str]:
    rows = result["results"]
    shipped = next((r for r in rows if r["config"] == "street full@416"), rows[0])
    best = max(rows, key=lambda r: (r["recall_30_80"] or 0.0, -r["ms_per_frame_median"]))
    smallest = _bin_name(*WIDTH_BINS_PX[0])
    best_small = max(rows, key=lambda r: (r["bins"][smallest]["recall"] or 0.0, -r["ms_per_frame_median"]))
    return [
        f"- Shipped setting ({shipped['config']}): recall {shipped['recall_30_80']:.3f} on 30–80 px bikes, "
        f"{shipped['bins'][smallest]['recall']:.3f} on {smallest}.",
        f"- Best recall 30–80 px: {best['config']} {best['recall_30_80']:.3f} at {best['ms_per_frame_median']} "
        f"ms/frame "
        f"({best['ms_per_frame_median'] / shipped['ms_per_frame_median']:.1f}x the shipped setting's time); best on "
        f"{smallest}: {best_small['config']} {best_small['bins'][smallest]['recall']:.3f}.",
        "- Issue 3 sets no number for \"must be found\". "
        + ("No configuration finds even half of the small bikes: the model needs more training on small bikes "
           "whatever the inference mode." if (best["recall_30_80"] or 0.0) < 0.5 else
           "Most small bikes are found by: "
           + ", ".join(r["config"] for r in rows if (r["recall_30_80"] or 0.0) >= 0.5) + "."),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="frames")
    parser.add_argument("--seed", type=int, default=MIN_SEED)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per model")
    parser.add_argument("--name", default="small_objects", help="results file stem under benchmarks/results/")
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names under models/, or LABEL=PATH (default: street and street-int8)")
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES),
                        help="full, full@WxH, tiled")
    args = parser.parse_args()
    configs = DEFAULT_CONFIGS if args.models is None else parse_configs(args.models, args.modes)
    result = benchmark(args.n, args.seed, args.threads, configs)
    _, md_path = write_results(args.name, result, to_markdown(result))
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
