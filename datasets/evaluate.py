"""`streetwatch eval`: accuracy of an ONNX model on a labelled split, computed with our own runtime.

The numbers come from the same `OnnxDetector` the service runs (same letterbox, decode and NMS), so they
describe the shipped file, not a training framework's view of the weights.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from datasets.yolo import LabeledImage, load_dataset, source_stem
from detector.evaluation import EvalReport, GroundTruth, evaluate_detections, remap_detections_by_name
from detector.imageio import read_image
from detector.runtime import OnnxDetector
from detector.runtime.tiling import TilingConfig, detect_tiled

__all__ = ["EvalRun", "evaluate_model", "write_eval_results", "unseen_sources"]

# AP needs the whole precision/recall curve, so predictions down to this score are kept (as `yolo val`).
EVAL_MIN_SCORE = 0.001


@dataclass(frozen=True)
class EvalRun:
    report: EvalReport
    model: str
    data_yaml: Path
    split: str
    n_images: int
    subset: str
    elapsed_s: float
    ms_per_image: float


def unseen_sources(items: list[LabeledImage], seen: Iterable[LabeledImage]) -> list[LabeledImage]:
    """Items whose source photo (Roboflow augmentation suffix removed) appears nowhere in `seen`.

    bicycles-2000 ships augmented copies of many training photos in val and test; this subset measures
    accuracy on photos the model has never seen in any form.
    """
    seen_stems = {source_stem(i.image_path.stem) for i in seen}
    return [i for i in items if source_stem(i.image_path.stem) not in seen_stems]


def evaluate_model(model: OnnxDetector, data_yaml: Path, split: str, conf_threshold: float = 0.25,
                   only_unseen_sources: bool = False, tiled: TilingConfig | None = None,
                   progress: Callable[[Iterable], Iterable] = lambda it: it, multi_label: bool = True) -> EvalRun:
    """Run `model` over one split of a YOLO dataset and compute per-class P, R, AP50, AP50-95.

    With `multi_label` (the default, as `ultralytics val` and COCO evaluation do) every class score of every
    anchor can become a box; tiled evaluation uses the service's one-class-per-anchor decoding.
    """
    ds = load_dataset(Path(data_yaml))
    if split not in ds.splits:
        raise ValueError(f"{data_yaml}: no split {split!r} (has {', '.join(ds.splits)})")
    items = ds.splits[split]
    subset = "all"
    if only_unseen_sources:
        items = unseen_sources(items, ds.splits.get("train", []))
        subset = "source photos absent from train"
    wanted = set(ds.class_names)
    eval_class_ids = [i for i, name in enumerate(model.class_names) if name in wanted]
    predictions, truths = [], []
    started = time.perf_counter()
    for item in progress(items):
        image = read_image(item.image_path)
        h, w = image.shape[:2]
        if tiled is not None:
            det, _ = detect_tiled(model, image, tiled, EVAL_MIN_SCORE)
        elif multi_label:
            det = model.detect_multilabel(image, EVAL_MIN_SCORE, eval_class_ids)
        else:
            det = model.detect(image, EVAL_MIN_SCORE)
        predictions.append(remap_detections_by_name(det, model.class_names, ds.class_names))
        truths.append(GroundTruth.from_cxcywh_norm(item.boxes_cxcywh_norm, item.class_id, w, h))
    elapsed = time.perf_counter() - started
    report = evaluate_detections(predictions, truths, ds.class_names, conf_threshold)
    return EvalRun(report, model.card.name, Path(data_yaml), split, len(items), subset, elapsed,
                   1000 * elapsed / max(1, len(items)))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def write_eval_results(run: EvalRun, results_dir: Path, tag: str | None = None) -> tuple[Path, Path]:
    """Write `eval_<model>_<dataset>_<split>[_<tag>].json` and `.md` under results_dir."""
    dataset = _slug(run.data_yaml.resolve().parent.name)
    name = f"eval_{_slug(run.model)}_{dataset}_{run.split}" + (f"_{_slug(tag)}" if tag else "")
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": run.model,
        "data": str(run.data_yaml),
        "split": run.split,
        "subset": run.subset,
        "n_images": run.n_images,
        "ms_per_image": round(run.ms_per_image, 2),
        **run.report.to_json(),
    }
    json_path = results_dir / f"{name}.json"
    md_path = results_dir / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(
        f"# {run.model} on {dataset} / {run.split} ({run.subset})\n\n"
        f"{run.n_images} images, computed by streetwatch's ONNX runtime "
        f"({run.ms_per_image:.1f} ms per image including decode).\n\n{run.report.to_markdown()}\n"
    )
    return json_path, md_path
