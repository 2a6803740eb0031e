"""Turning a trained checkpoint into a shipped model: ONNX export, thresholds chosen on val, the card.

Thresholds come from the validation split only (best F1 per class and the NMS IoU per class, measured by our
own runtime on the exported file); the holdout is evaluated afterwards and only reported, never used to choose
anything.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from datasets.evaluate import evaluate_model
from datasets.progress import Progress, no_progress
from datasets.yolo import load_dataset
from detector.runtime import OnnxDetector
from detector.runtime.card import InputSpec, ModelCard, Thresholds, TilingHints, sha256_of

__all__ = ["release_model", "choose_operating_point", "write_card", "training_facts", "add_metrics",
           "pick_nms_ious", "card_markdown", "metric_imagery", "IMAGERY_KINDS"]

# A class whose best-F1 threshold cannot be measured (no val instances) keeps this default.
DEFAULT_CONF = 0.25
# Thresholds are clamped: below 0.05 a camera floods reviewers, above 0.8 small objects vanish.
MIN_CONF, MAX_CONF = 0.05, 0.8
# NMS IoUs tried per class on val. Bikes parked in a row overlap at IoU 0.45-0.6, so the common 0.45 deletes
# real neighbours; stalls and structures rarely overlap, and a looser IoU only keeps their duplicates.
NMS_IOU_CANDIDATES = (0.45, 0.55, 0.65)
# A class leaves the card's default IoU only for a val AP50 gain above this (smaller gains are noise).
NMS_MIN_GAIN = 0.005


# Weights trained with ultralytics fall under its AGPL-3.0 terms, whatever the code around them is licensed under.
ULTRALYTICS_WEIGHTS_LICENCE = ("AGPL-3.0 (trained with Ultralytics YOLOv8, whose AGPL-3.0 terms cover weights trained "
                               "with it; training data licences in training_data)")

def pick_nms_ious(ap50_by_iou: Mapping[float, Mapping[str, float]], default_iou: float,
                  min_gain: float = NMS_MIN_GAIN) -> dict[str, float]:
    """Per class, the NMS IoU with the best val AP50, where it beats `default_iou` by more than `min_gain`.

    Args:
        ap50_by_iou: {candidate IoU: {class name: AP50 on val at that IoU}}; must hold `default_iou`.

    Returns:
        {class name: IoU} for the classes that leave the default (the card's ``nms_iou_per_class``).

    Example:
        >>> pick_nms_ious({0.45: {"bicycle": 0.50, "stall": 0.60}, 0.6: {"bicycle": 0.53, "stall": 0.58}}, 0.45)
        {'bicycle': 0.6}
    """
    if default_iou not in ap50_by_iou:
        raise ValueError(f"the default NMS IoU {default_iou} must be among the candidates {sorted(ap50_by_iou)}")
    chosen = {}
    for name, base_ap in ap50_by_iou[default_iou].items():
        best_iou, best_ap = default_iou, base_ap
        for iou, by_class in sorted(ap50_by_iou.items()):
            if name in by_class and by_class[name] > best_ap:
                best_iou, best_ap = iou, by_class[name]
        if best_iou != default_iou and best_ap - base_ap > min_gain:
            chosen[name] = best_iou
    return chosen


USE_FIELDS = ("intended_use", "out_of_scope_use", "limitations")
"""The card fields that say where a model may be used, written by people and carried across fine-tunes."""

IMAGERY_KINDS = ("real", "synthetic")
"""What a holdout's images are: real photos or frames, or rendered by the project. Results on the two are never
pooled: a model that is good on its own generator's scenes can still fail on real streets."""


def metric_imagery(key: str, entry: Mapping[str, Any]) -> str:
    """``"real"`` or ``"synthetic"`` for one `metrics` entry of a card (its ``imagery``; ``val`` of a mixed
    training set is ``"mixed"``)."""
    imagery = entry.get("imagery") if isinstance(entry, Mapping) else None
    if imagery in IMAGERY_KINDS or imagery == "mixed":
        return str(imagery)
    return "mixed" if key == "val" else "unknown"


def card_markdown(card: ModelCard) -> str:
    """The card as a page for people (``CARD.md`` beside ``card.yaml``): use, limits, data, then results on real
    and on synthetic holdouts in separate tables.

    Example:
        >>> print(card_markdown(load_card("models/street/card.yaml")))  # doctest: +SKIP
    """
    def para(title: str, text: str) -> list[str]:
        return [f"## {title}", "", text.strip() or "(not stated)", ""]

    lines = [f"# Model card: {card.name} {card.version}", "",
             f"Classes: {', '.join(card.classes)}. Input {card.input.width_px}x{card.input.height_px} px. "
             f"Licence: {card.licence}. Source: {card.source or '(not stated)'}.", ""]
    lines += para("Intended use", card.intended_use)
    lines += para("Out-of-scope use", card.out_of_scope_use)
    lines += para("Limitations", card.limitations)
    lines += para("Training data", card.training_data)
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for key, entry in card.metrics.items():
        if isinstance(entry, Mapping) and "ap50" in entry:
            groups.setdefault(metric_imagery(key, entry), []).append((key, entry))
    titles = {"real": "Results on real holdouts", "synthetic": "Results on synthetic holdouts",
              "mixed": "Validation split of the training data (used to choose thresholds; not a holdout)",
              "unknown": "Other measurements"}
    for imagery in ("real", "synthetic", "mixed", "unknown"):
        if imagery not in groups:
            continue
        lines += [f"## {titles[imagery]}", "", "| measurement | data | images | class | instances | AP50 | AP50-95 |",
                  "|---|---|---:|---|---:|---:|---:|"]
        for key, entry in groups[imagery]:
            per_class = entry.get("per_class") or {}
            rows = [("all", {"instances": sum(int(v.get("instances", 0)) for v in per_class.values()),
                             "ap50": entry.get("ap50"), "ap50_95": entry.get("ap50_95")})]
            rows += list(per_class.items()) if len(per_class) > 1 else []
            for name, r in rows:
                lines.append(f"| {key} | {entry.get('data', '')} | {entry.get('images', '')} | {name} | "
                             f"{r.get('instances', '')} | {r.get('ap50', '')} | {r.get('ap50_95', '')} |")
            if entry.get("note"):
                lines.append(f"| | {entry['note']} | | | | | |")
        lines.append("")
    if card.notes.strip():
        lines += para("Notes", card.notes)
    return "\n".join(lines).rstrip() + "\n"


def write_card(card: ModelCard, folder: Path) -> Path:
    """Write ``card.yaml`` (read by the runtime) and ``CARD.md`` (the same card for people) into `folder`."""
    data = card.model_dump(mode="json", exclude={"card_path"})
    path = folder / "card.yaml"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# Model card for {card.name}: written by `streetwatch release`; edit notes by hand if needed.\n")
        yaml.safe_dump(data, fh, sort_keys=False, allow_unicode=True, width=110)
    (folder / "CARD.md").write_text(card_markdown(card), encoding="utf-8")
    return path


def release_model(weights_pt: Path, data_yaml: Path, name: str, out_root: Path, imgsz_px: int,
                  training: dict[str, Any], training_data: str, licence: str = ULTRALYTICS_WEIGHTS_LICENCE,
                  violation_classes: dict[str, str] | None = None, notes: str = "",
                  keep_weights: bool = True, tiled_full_frame_pass: bool = True,
                  nms_iou_candidates: Sequence[float] = NMS_IOU_CANDIDATES,
                  use: Mapping[str, str] | None = None, progress: Progress = no_progress) -> ModelCard:
    """Export `weights_pt` to `out_root/<name>/<name>.onnx`, choose thresholds on val, write the card.

    `tiled_full_frame_pass` False marks a model trained at tile scale only (card ``tiling.full_frame_pass``).
    `nms_iou_candidates` are tried per class on val (one val pass each); empty keeps the default 0.45 for all.
    `use` gives the card's ``intended_use``, ``out_of_scope_use`` and ``limitations``; by default they are carried
    over from the model of the same name already in `out_root` (a fine-tune is used where its parent was), else
    left empty for a person to write. `progress` wraps the images of each val pass (`choose_operating_point`).
    """
    from datasets.train import export_onnx

    folder = out_root / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(weights_pt, folder / f"{name}.onnx", imgsz_px)
    if keep_weights:
        # The checkpoint is what `streetwatch train` fine-tunes on reviewer feedback; without the optimizer
        # state it is a fifth of the size.
        shutil.copyfile(weights_pt, folder / f"{name}.pt")
        from ultralytics.utils.torch_utils import strip_optimizer

        strip_optimizer(str(folder / f"{name}.pt"))
    ds = load_dataset(Path(data_yaml))
    if use is None:
        use = {}
        previous = folder / "card.yaml"
        if previous.is_file():
            from detector.runtime.card import load_card

            old = load_card(previous)
            use = {k: getattr(old, k) for k in USE_FIELDS}
    card = ModelCard(
        name=name,
        version=datetime.now(timezone.utc).strftime("%Y.%m.%d"),
        file=onnx_path.name,
        sha256=sha256_of(onnx_path),
        format="ultralytics",
        input=InputSpec(width_px=imgsz_px, height_px=imgsz_px, channel_order="rgb", scale=1 / 255),
        classes=ds.class_names,
        licence=licence,
        source="trained by the streetwatch project",
        training_data=training_data,
        training=training,
        violation_classes=violation_classes or {},
        notes=notes,
        card_path=str((folder / "card.yaml").resolve()),
        tiling=TilingHints(full_frame_pass=tiled_full_frame_pass),
        **{k: v for k, v in use.items() if k in USE_FIELDS},
    )
    card = choose_operating_point(card, Path(data_yaml), nms_iou_candidates, progress)
    write_card(card, folder)
    return card


def choose_operating_point(card: ModelCard, data_yaml: Path,
                           nms_iou_candidates: Sequence[float] = NMS_IOU_CANDIDATES,
                           progress: Progress = no_progress) -> ModelCard:
    """The card with NMS IoUs and score thresholds chosen on the val split of `data_yaml`, and its val metrics.

    Per class: the NMS IoU of `nms_iou_candidates` with the best AP50 (`pick_nms_ious`), then the score of best
    F1 at that IoU; `track_score` is the highest per-class threshold. Empty candidates keep one IoU for all.
    `progress` wraps the images of each val pass (one per candidate IoU, then the final card's unless the default
    IoU's pass already is it), labelled ``val nms_iou=<iou>`` or ``val final``.
    """
    default_iou = card.thresholds.nms_iou
    nms_choice: dict[str, Any] = {}
    nms_per_class: dict[str, float] = {}
    trials = {}
    if nms_iou_candidates:
        for iou in sorted({default_iou, *map(float, nms_iou_candidates)}):
            trial = card.model_copy(update={"thresholds": card.thresholds.model_copy(
                update={"nms_iou": iou, "nms_iou_per_class": {}})})
            trials[iou] = evaluate_model(OnnxDetector(trial), data_yaml, "val",
                                         progress=lambda items, d=f"val nms_iou={iou:g}": progress(items, d))
        ap50_by_iou = {iou: {r.name: r.ap50 for r in run.report.classes if r.instances} for iou, run in trials.items()}
        nms_per_class = pick_nms_ious(ap50_by_iou, default_iou)
        nms_choice = {"nms_iou_val_ap50": {str(iou): {k: round(v, 4) for k, v in by_class.items()}
                                           for iou, by_class in ap50_by_iou.items()}}
        card = card.model_copy(update={"thresholds": card.thresholds.model_copy(
            update={"nms_iou_per_class": nms_per_class})})
    if trials and not nms_per_class:
        run = trials[default_iou]  # no class left the default: that trial is the final card's val run
    else:
        run = evaluate_model(OnnxDetector(card), data_yaml, "val",
                             progress=lambda items: progress(items, "val final"))
    per_class = {}
    for row in run.report.classes:
        conf = DEFAULT_CONF if row.best_f1_conf is None else min(MAX_CONF, max(MIN_CONF, row.best_f1_conf))
        per_class[row.name] = round(conf, 3)
    card = card.model_copy(update={
        # Scores of this model separate objects from clutter around its per-class thresholds; the tracker and
        # the rules start from the highest of them so no class is tracked on scores below its own threshold.
        "thresholds": Thresholds(default=DEFAULT_CONF, per_class=per_class, nms_iou=default_iou,
                                 nms_iou_per_class=nms_per_class, track_score=max(per_class.values(), default=None)),
        "metrics": {"val": {"data": str(data_yaml), **_summary(run.report), **nms_choice}},
    })
    return card


def training_facts(weights_pt: Path) -> dict[str, Any]:
    """What the ultralytics run folder of a checkpoint says about its training (args, epochs, time)."""
    run_dir = Path(weights_pt).resolve().parent.parent
    facts: dict[str, Any] = {"weights": str(weights_pt)}
    args_yaml = run_dir / "args.yaml"
    if args_yaml.is_file():
        args = yaml.safe_load(args_yaml.read_text())
        facts.update({k: args.get(k) for k in ("model", "data", "imgsz", "epochs", "batch", "optimizer", "lr0",
                                                "mosaic", "seed", "device") if k in args})
        facts["epochs_planned"] = facts.pop("epochs", None)
    results = run_dir / "results.csv"
    if results.is_file():
        rows = [line.split(",") for line in results.read_text().splitlines() if line.strip()]
        header, last = rows[0], rows[-1]
        facts["epochs_completed"] = int(float(last[header.index("epoch")]))
        if "time" in header:
            facts["train_time_s"] = round(float(last[header.index("time")]), 1)
    return facts


def add_metrics(card_yaml: Path, key: str, report, data: str, note: str = "",
                imagery: str | None = None, tiled: bool = False) -> ModelCard:
    """Add an evaluation (e.g. a holdout) to a card's metrics and write it back.

    Args:
        imagery: ``"real"`` or ``"synthetic"`` (`IMAGERY_KINDS`): the card keeps the two apart.
        tiled: The images were run tiled (as the service runs large drone frames): recorded so that a later
            comparison (`streetwatch retrain`) runs them the same way.
    """
    from detector.runtime.card import load_card

    if imagery is not None and imagery not in IMAGERY_KINDS:
        raise ValueError(f"imagery must be one of {IMAGERY_KINDS}, got {imagery!r}")
    card = load_card(card_yaml)
    metrics = dict(card.metrics)
    metrics[key] = {"data": data, **({"imagery": imagery} if imagery else {}), **({"tiled": True} if tiled else {}),
                    **_summary(report),
                    **({"note": note} if note else {})}
    card = card.model_copy(update={"metrics": metrics})
    write_card(card, Path(card_yaml).parent)
    return card


def _summary(report) -> dict[str, Any]:
    return {
        "images": report.n_images,
        "ap50": round(report.overall.ap50, 4),
        "ap50_95": round(report.overall.ap50_95, 4),
        "per_class": {r.name: {"instances": r.instances, "ap50": round(r.ap50, 4), "ap50_95": round(r.ap50_95, 4),
                               "best_f1_conf": None if r.best_f1_conf is None else round(r.best_f1_conf, 3)}
                      for r in report.classes},
    }
