"""`streetwatch` command line. Each subcommand imports what it needs when it runs, so `streetwatch detect`
never loads the web stack and a broken optional dependency cannot break unrelated commands.

Errors the user can fix (a bad file, a bad card, a bad config) print one line, `streetwatch: error: ...`,
and exit with status 2; they never print a stack trace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK = 0
EXIT_USER_ERROR = 2


def _error(message: str) -> None:
    print(f"streetwatch: error: {message}", file=sys.stderr, flush=True)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr, leave=False)


# --- detect ------------------------------------------------------------------------------------------

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


# --- parser ------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streetwatch",
        description="Street-order violation detection: cameras and drone footage to reviewed cases.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from detector.errors import StreetwatchError

    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "conf", None) is not None and not 0.0 <= args.conf <= 1.0:
        _error(f"--conf must lie within [0, 1], got {args.conf}")
        return EXIT_USER_ERROR
    try:
        return func(args)
    except StreetwatchError as exc:
        _error(str(exc))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
