"""Training jobs: ``streetwatch train``, ``release`` and ``quantize``.

Train a detector with ultralytics (the ``[train]`` extra), export a checkpoint to ONNX with its model card, and
make a static int8 copy of a released model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error


def _models_root(args: argparse.Namespace) -> Path:
    from detector.runtime import models_dir

    return Path(args.models_dir) if args.models_dir else models_dir()


def _parse_hyp(pairs: Sequence[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hyp {pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    os.environ["YOLO_OFFLINE"] = "1"
    try:
        from datasets.train import TrainRequest, describe, train
    except ImportError as exc:
        _error(f"training needs the [train] extra (pip install -e '.[train]'): {exc}")
        return EXIT_USER_ERROR
    req = TrainRequest(data_yaml=Path(args.data), model=args.model, run_dir=Path(args.runs_dir) / args.name,
                       imgsz_px=args.imgsz, epochs=args.epochs, batch=args.batch, workers=args.workers,
                       device=args.device, resume=args.resume, seed=args.seed, hyp=_parse_hyp(args.hyp))
    result = train(req, progress=True)
    print(json.dumps({"run_dir": str(result.run_dir), "best_pt": str(result.best_pt), "epochs": result.epochs,
                      "elapsed_s": round(result.elapsed_s, 1), "metrics": result.metrics}))
    if args.release:
        from datasets.release import release_model

        card = release_model(result.best_pt, Path(args.data), args.release, _models_root(args), args.imgsz,
                             training={**describe(req), "elapsed_s": round(result.elapsed_s, 1)},
                             training_data=args.training_data or str(args.data),
                             tiled_full_frame_pass=args.tiled_full_pass)
        print(f"released {card.name} to {_models_root(args) / card.name}", file=sys.stderr)
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    from datasets.release import release_model, training_facts

    card = release_model(Path(args.weights), Path(args.data), args.name, _models_root(args), args.imgsz,
                         training=training_facts(Path(args.weights)),
                         training_data=args.training_data or str(args.data),
                         tiled_full_frame_pass=args.tiled_full_pass)
    print(f"released {card.name} to {_models_root(args) / card.name}", file=sys.stderr)
    return EXIT_OK


def cmd_quantize(args: argparse.Namespace) -> int:
    from datasets.quantize import calibration_images, quantize_static_int8
    from datasets.release import write_card
    from detector.runtime import resolve_card
    from detector.runtime.card import sha256_of

    card = resolve_card(args.model)
    name = args.name or f"{card.name}-int8"
    folder = _models_root(args) / name
    out = quantize_static_int8(card, folder / f"{name}.onnx", calibration_images(Path(args.calib), args.n),
                               method=args.calib_method, percentile=args.calib_percentile,
                               float_head_outputs=args.float_head_outputs)
    head = "head and its output convolutions in float" if args.float_head_outputs else "head in float"
    q_card = card.model_copy(update={
        "name": name, "file": out.name, "sha256": sha256_of(out), "card_path": str(folder / "card.yaml"),
        "notes": (f"Static int8 (QDQ, per-channel, {'body ops, ' + head if card.format == 'ultralytics' else 'Conv/MatMul only'}) "
                  f"of {card.name}, calibrated on {args.n} images "
                  f"from {args.calib} ({args.calib_method}"
                  f"{f' {args.calib_percentile:g} %' if args.calib_method == 'percentile' else ''}). "
                  + card.notes).strip(),
        "metrics": {},
    })
    write_card(q_card, folder)
    print(folder / "card.yaml")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    p = sub.add_parser("train", help="train a detector with ultralytics (needs the [train] extra)")
    p.add_argument("--data", required=True, metavar="DATA.yaml")
    p.add_argument("--name", required=True, help="run name (folder under --runs-dir)")
    p.add_argument("--model", default="yolov8n.yaml",
                   help="architecture YAML (from scratch) or a .pt checkpoint made by this project (fine-tune)")
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    p.add_argument("--runs-dir", default="runs/train")
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE", help="further ultralytics arguments")
    p.add_argument("--release", metavar="NAME", help="after training, export and write models/NAME with its card")
    p.add_argument("--models-dir", default=None, help="where --release writes (default: models/)")
    p.add_argument("--training-data", default=None, help="training-data description for the card (with credits)")
    p.add_argument("--tiled-full-pass", action=argparse.BooleanOptionalAction, default=True,
                   help="card: tiled inference also runs the whole frame shrunk (--no-tiled-full-pass for a model "
                        "trained on tile-sized chips only)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("release", help="export a checkpoint to ONNX, choose thresholds on val, write its card")
    p.add_argument("--weights", required=True, metavar="BEST.pt")
    p.add_argument("--data", required=True, metavar="DATA.yaml")
    p.add_argument("--name", required=True)
    p.add_argument("--imgsz", type=int, required=True)
    p.add_argument("--models-dir", default=None)
    p.add_argument("--training-data", default=None)
    p.add_argument("--tiled-full-pass", action=argparse.BooleanOptionalAction, default=True,
                   help="card: tiled inference also runs the whole frame shrunk (--no-tiled-full-pass for a model "
                        "trained on tile-sized chips only)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("quantize", help="static int8 copy of a model, calibrated on training images")
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH")
    p.add_argument("--calib", required=True, metavar="IMAGES_DIR", help="training images (never the holdout)")
    p.add_argument("--n", type=int, default=200, help="calibration images")
    p.add_argument("--calib-method", choices=("minmax", "percentile", "entropy"), default="minmax",
                   help="activation ranges from the calibration outputs: extremes, a percentile, or entropy")
    p.add_argument("--calib-percentile", type=float, default=99.999,
                   help="--calib-method percentile: share (%%) of each tensor's values kept inside the range")
    p.add_argument("--float-head-outputs", action="store_true",
                   help="keep the detection head's output convolutions (box and class logits) in float too")
    p.add_argument("--name", default=None, help="default: <model>-int8")
    p.add_argument("--models-dir", default=None)
    p.set_defaults(func=cmd_quantize)
