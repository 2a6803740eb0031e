"""The street models on hand-labelled real camera footage (`datasets/labels/footage`, videos in ../shared).

Real frames are what the synthetic holdouts cannot show: a real camera's H.264, light and perspective. Two kinds:

* a labelled bicycle (`parking-lot-bicycle`: 11 frames, bike 18-49 px wide): per-frame recall at IoU >= 0.5 and
  AP50 over the set;
* hard negatives (`people-walking`: people standing at a table; `parking-lot-cars`: cars parking), where any
  street-class detection is a false alarm: false detections per frame, by class.

Every model runs at its card's thresholds (the service's operating point), one class per anchor, as `detect`
does; AP50 uses the evaluation's multi-label decoding (`streetwatch eval`). COCO baselines score only on the
classes they share with the labels (bicycle).

Run:  python benchmarks/real_footage.py [--models street street-int8 yolox-nano-coco NAME=CARD ...]
Writes benchmarks/results/real_footage.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import environment, md_table, shared_dir, write_results  # noqa: E402

IOU_MIN = 0.5
DEFAULT_MODELS = ("street", "street-int8", "yolox-nano-coco", "yolov8n-int8-coco")


def _model_spec(spec: str) -> tuple[str, str]:
    label, sep, path = spec.partition("=")
    return (label, path) if sep else (spec, spec)


def tally_frame(truth_xyxy: np.ndarray, truth_names: np.ndarray, det_xyxy: np.ndarray, det_score: np.ndarray,
                det_names: np.ndarray, classes: Sequence[str]) -> tuple[int, int, dict[str, int]]:
    """One frame: (labelled boxes, boxes found, false detections per class) over `classes`.

    A detection is false when it matches no labelled box of its class one-to-one at IoU >= 0.5 (greedy by score).

    Example:
        >>> tally_frame(np.array([[0, 0, 10, 10]]), np.array(["bicycle"]), np.array([[0, 0, 10, 10], [50, 50, 60, 60]]),
        ...             np.array([0.9, 0.8]), np.array(["bicycle", "stall"]), ["bicycle", "stall"])
        (1, 1, {'bicycle': 0, 'stall': 1})
    """
    from benchmarks.small_objects import greedy_match

    boxes = found = 0
    false = {}
    for name in classes:
        mine = det_names == name
        det_matched, gt_matched = greedy_match(det_xyxy[mine].reshape(-1, 4), det_score[mine],
                                               truth_xyxy[truth_names == name].reshape(-1, 4), IOU_MIN)
        boxes += len(gt_matched)
        found += int(gt_matched.sum())
        false[name] = int((~det_matched).sum())
    return boxes, found, false


def score_set(model, data_yaml: Path) -> dict:
    """Per-frame results of one model on one footage set at its card's thresholds."""
    from datasets.evaluate import evaluate_model
    from datasets.yolo import cxcywh_norm_to_xyxy_px, load_dataset

    ds = load_dataset(data_yaml)
    shared_classes = [n for n in ds.class_names if n in model.class_names]
    items = sorted(ds.splits["test"], key=lambda item: item.image_path.name)
    boxes = found = frames_with_false = 0
    false_by_class = {n: 0 for n in shared_classes}
    for item in items:
        image = cv2.imread(str(item.image_path))
        h, w = image.shape[:2]
        truth = cxcywh_norm_to_xyxy_px(item.boxes_cxcywh_norm, w, h)
        truth_names = np.asarray([ds.class_names[int(c)] for c in item.class_id], dtype=object)
        det = model.detect(image)
        names = np.asarray(det.data["class_name"], dtype=object) if len(det) else np.zeros(0, object)
        b, f, false = tally_frame(truth, truth_names, np.asarray(det.xyxy, np.float64).reshape(-1, 4),
                                  np.asarray(det.confidence, np.float64), names, shared_classes)
        boxes, found = boxes + b, found + f
        for name, n in false.items():
            false_by_class[name] += n
        frames_with_false += int(any(false.values()))
    report = evaluate_model(model, data_yaml, "test").report if boxes else None
    ap50 = {r.name: round(r.ap50, 4) for r in report.classes if r.instances} if report else {}
    return {
        "frames": len(items), "boxes": boxes, "found": found, "recall": round(found / boxes, 3) if boxes else None,
        "ap50": ap50, "false_detections": false_by_class,
        "false_per_frame": round(sum(false_by_class.values()) / max(1, len(items)), 3),
        "frames_with_false": frames_with_false, "classes_scored": shared_classes,
    }


def benchmark(models: Sequence[str]) -> dict:
    from datasets.footage_labels import LABELS_DIR, build_footage_dataset, load_footage_labels
    from detector.runtime import load_model

    shared = shared_dir()
    if shared is None:
        raise SystemExit("real_footage: ../shared (or STREETWATCH_SHARED) is needed for the videos")
    loaded = {label: load_model(path) for label, path in map(_model_spec, models)}
    sets = []
    with tempfile.TemporaryDirectory() as tmp:
        for labels_path in sorted(LABELS_DIR.glob("*.yaml")):
            labels = load_footage_labels(labels_path)
            data_yaml = build_footage_dataset(labels, shared, Path(tmp) / labels_path.stem)
            sets.append({
                "set": labels_path.stem, "source": labels.source, "frames": len(labels.frames),
                "boxes": labels.n_boxes, "classes": list(labels.classes),
                "results": {label: score_set(model, data_yaml) for label, model in loaded.items()},
            })
    return {"environment": environment(), "iou_min": IOU_MIN, "models": list(loaded), "sets": sets}


def to_markdown(result: dict) -> str:
    lines = ["# Street models on hand-labelled real footage", "",
             f"{result['environment']['date_utc']} · labels: `datasets/labels/footage/` · videos: ../shared/footage "
             "(Intel IoT DevKit, CC BY 4.0)", "",
             "Each model at its card's thresholds (the service's operating point). Found: labelled boxes matched "
             f"one-to-one at IoU ≥ {result['iou_min']}. False: detections of a labelled class matching no box (on "
             "the hard-negative clips every detection of a street class). AP50: `streetwatch eval`'s method. COCO "
             "models are scored on bicycle only.", "",
             "Caveat: the empty scenes of `people-walking` and `parking-lot-cars` (temporal medians, people and cars "
             "removed) are backgrounds of the synthetic street scenes the street models were trained on; the people "
             "and cars in these frames were never trained on. The bicycle clip is used nowhere in training.", ""]
    for s in result["sets"]:
        lines += [f"## {s['set']} ({s['frames']} frames, {s['boxes']} boxes; {s['source']})", ""]
        rows = []
        for label, r in s["results"].items():
            false = ", ".join(f"{k} {v}" for k, v in r["false_detections"].items())
            rows.append([label, f"{r['found']}/{r['boxes']}" if r["boxes"] else "—",
                         ", ".join(f"{k} {v:.3f}" for k, v in r["ap50"].items()) or "—",
                         false or "—", r["false_per_frame"], f"{r['frames_with_false']}/{r['frames']}"])
        lines += [md_table(["model", "found", "AP50", "false detections", "false per frame", "frames with any false"],
                           rows), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="model names, card files, or LABEL=CARD")
    parser.add_argument("--name", default="real_footage", help="results file stem under benchmarks/results/")
    args = parser.parse_args()
    result = benchmark(args.models)
    json_path, md_path = write_results(args.name, result, to_markdown(result))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
