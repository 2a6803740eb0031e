"""Detector jobs: ``streetwatch detect``, ``models``, ``eval`` and ``config validate``.

Run a model on images, list the shipped models, measure a model on a labelled split, and check a camera
configuration. Each command imports the detector (onnxruntime, OpenCV) only when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error, _progress


def _expand_inputs(inputs: Sequence[str]) -> list[Path]:
    from detector.imageio import IMAGE_SUFFIXES

    paths: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                _error(f"{path}: directory holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        else:
            paths.append(path)  # a missing file is reported when it is read, in order with the others
    return paths


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from detector.annotate import draw_detections
    from detector.errors import ImageReadError
    from detector.imageio import read_image
    from detector.runtime import RuntimeOptions, TilingConfig, detect_tiled, load_model

    model = load_model(args.model, args.card, RuntimeOptions(intra_op_threads=args.threads))
    paths = _expand_inputs(args.inputs)
    failures = 0 if paths or not args.inputs else 1
    if args.save_annotated:
        Path(args.save_annotated).mkdir(parents=True, exist_ok=True)
    show_progress = len(paths) > 1 and sys.stderr.isatty()
    for path in _progress(paths, len(paths), "detect", show_progress):
        try:
            image = read_image(path)
        except ImageReadError as exc:
            _error(str(exc))
            failures += 1
            continue
        if args.tile:
            detections, _ = detect_tiled(model, image, TilingConfig(overlap_frac=args.tile_overlap), args.conf)
        else:
            detections = model.detect(image, args.conf)
        record = {
            "image": str(path),
            "width_px": int(image.shape[1]),
            "height_px": int(image.shape[0]),
            "model": model.card.name,
            "detections": detections.to_records(model.class_names),
        }
        if args.save_annotated:
            out = Path(args.save_annotated) / f"{path.stem}.jpg"
            cv2.imwrite(str(out), draw_detections(image, detections, model.class_names))
            record["annotated"] = str(out)
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            summary = ", ".join(f"{d['class']} {d['score']:.2f}" for d in record["detections"]) or "nothing"
            print(f"{path}: {len(record['detections'])} detections: {summary}", flush=True)
    return EXIT_USER_ERROR if failures else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from detector.errors import StreetwatchError
    from detector.runtime import available_models, resolve_card

    for name in available_models():
        try:
            card = resolve_card(name)
        except StreetwatchError as exc:
            _error(str(exc))
            continue
        present = "present" if card.resolved_file().is_file() else "MISSING FILE"
        print(f"{name:24s} {card.format:12s} {card.input.width_px}x{card.input.height_px} "
              f"{len(card.classes):3d} classes  {present}  {card.resolved_file()}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from datasets.evaluate import evaluate_model, write_eval_results
    from detector.runtime import RuntimeOptions, TilingConfig, load_model

    if args.split == "test":
        print("streetwatch: note: 'test' is the holdout: report it, never choose thresholds or checkpoints on it",
              file=sys.stderr)
    model = load_model(args.model, args.card, RuntimeOptions(intra_op_threads=args.threads))
    show = sys.stderr.isatty()
    run = evaluate_model(model, Path(args.data), args.split, args.conf, args.unseen_sources,
                         TilingConfig() if args.tile else None,
                         progress=lambda it: _progress(it, None, "eval", show))
    json_path, md_path = write_eval_results(run, Path(args.results_dir), args.tag)
    if args.card_key:
        from datasets.release import add_metrics

        if not model.card.card_path:
            raise ValueError("--card-key needs a model with a card file")
        add_metrics(Path(model.card.card_path), args.card_key, run.report, f"{args.data} ({args.split}, {run.subset})",
                    note=f"computed by streetwatch eval; {json_path.name}", imagery=args.imagery,
                    tiled=bool(args.tile))
        print(f"recorded as metrics.{args.card_key} in {model.card.card_path}", file=sys.stderr)
    if args.json:
        print(json_path.read_text())
    else:
        print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return EXIT_OK


def cmd_config_validate(args: argparse.Namespace) -> int:
    from service.config import load_config
    from service.pipeline import validate_config_file

    problems = validate_config_file(Path(args.file))
    for problem in problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USER_ERROR
    cfg = load_config(Path(args.file))
    zones = sum(len(c.zones) for c in cfg.cameras)
    print(f"{args.file}: valid ({len(cfg.cameras)} cameras, {zones} zones)")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    p = sub.add_parser("detect", help="run a detector on images and print what it finds",
                       description="Run an ONNX detector on images or folders of images.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help="a model name under models/ (see `streetwatch models`), a card file or an .onnx file")
    p.add_argument("--card", metavar="CARD", help="model card to use with an .onnx file given to --model")
    p.add_argument("--json", action="store_true", help="print one JSON line per image")
    p.add_argument("--save-annotated", metavar="DIR", help="write each image with its boxes drawn to DIR")
    p.add_argument("--conf", type=float, default=None, metavar="SCORE",
                   help="one score threshold for all classes (default: the card's per-class thresholds)")
    p.add_argument("--tile", action="store_true", help="tiled inference for large frames (drone footage)")
    p.add_argument("--tile-overlap", type=float, default=0.2, metavar="FRAC", help="tile overlap fraction")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="onnxruntime intra-op threads (0 = all cores)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("models", help="list the models that have a card under models/")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("eval", help="accuracy of a model on a labelled split (P, R, AP50, AP50-95 per class)")
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH")
    p.add_argument("--card", metavar="CARD")
    p.add_argument("--data", required=True, metavar="DATA.yaml", help="a YOLO dataset (ultralytics data.yaml)")
    p.add_argument("--split", required=True, choices=["train", "val", "test"])
    p.add_argument("--conf", type=float, default=0.25, help="score at which precision and recall are reported")
    p.add_argument("--unseen-sources", action="store_true",
                   help="only images whose source photo does not occur in train (Roboflow augmented copies)")
    p.add_argument("--tile", action="store_true", help="tiled inference")
    p.add_argument("--results-dir", default="benchmarks/results", metavar="DIR")
    p.add_argument("--tag", default=None, help="suffix for the result file names")
    p.add_argument("--card-key", default=None, metavar="KEY", help="also record the result in the model card")
    p.add_argument("--imagery", choices=["real", "synthetic"], default=None,
                   help="with --card-key: whether the data is real or rendered (the card keeps them apart)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    cfg = sub.add_parser("config", help="configuration tools")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = csub.add_parser("validate", help="check a configuration file; every problem names its field")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_config_validate)
