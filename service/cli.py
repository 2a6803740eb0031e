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


def _progress(iterable, total: int | None, desc: str, enabled: bool):
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


# --- eval / train / release ----------------------------------------------------------------------------

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
                    note=f"computed by streetwatch eval; {json_path.name}")
        print(f"recorded as metrics.{args.card_key} in {model.card.card_path}", file=sys.stderr)
    if args.json:
        print(json_path.read_text())
    else:
        print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return EXIT_OK


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
    from datasets.release import release_model

    from datasets.release import training_facts

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


# --- dataset ------------------------------------------------------------------------------------------

def cmd_dataset_stats(args: argparse.Namespace) -> int:
    from datasets.yolo import dataset_stats, stats_to_markdown

    stats = dataset_stats(Path(args.data))
    print(json.dumps(stats, indent=2) if args.json else stats_to_markdown(stats))
    return EXIT_OK


def cmd_dataset_contact_sheet(args: argparse.Namespace) -> int:
    from datasets.yolo import contact_sheet

    out = contact_sheet(Path(args.data), args.split, Path(args.out), args.n, args.seed, args.cell_px)
    print(out)
    return EXIT_OK


def _class_map(pairs: Sequence[str] | None) -> dict | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep:
            raise ValueError(f"--map {pair!r}: expected SOURCE=TARGET (TARGET empty drops the class)")
        mapping[src] = dst or None
    return mapping


def cmd_dataset_merge(args: argparse.Namespace) -> int:
    from datasets.yolo import merge_datasets

    sources = [(Path(p), _class_map(args.map)) for p in args.sources]
    out = merge_datasets(sources, Path(args.out), args.classes, link=not args.copy)
    print(out)
    return EXIT_OK


def cmd_dataset_tile(args: argparse.Namespace) -> int:
    from datasets.tile import tile_dataset

    out = tile_dataset(Path(args.data), Path(args.out), args.tile_px, overlap_frac=args.overlap,
                       min_visible_frac=args.min_visible, keep_empty_frac=args.keep_empty,
                       max_tiles_per_image=args.max_per_image, seed=args.seed, progress=not args.quiet)
    print(out)
    return EXIT_OK


def cmd_dataset_split(args: argparse.Namespace) -> int:
    from datasets.yolo import split_dataset

    out = split_dataset(Path(args.images), Path(args.out), {"train": 1 - args.val, "val": args.val}, args.seed,
                        args.classes, link=not args.copy)
    print(out)
    return EXIT_OK


def cmd_dataset_convert(args: argparse.Namespace) -> int:
    from datasets.convert import coco_to_yolo, voc_to_yolo

    if args.format == "coco":
        out = coco_to_yolo(Path(args.annotations), Path(args.images), Path(args.out), args.split,
                           _class_map(args.map))
    else:
        out = voc_to_yolo(Path(args.annotations), Path(args.images), Path(args.out), args.split, args.classes)
    print(out)
    return EXIT_OK


def _from_reviews_source(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The database (URL or SQLite file) and evidence folder named by --db or --settings."""
    evidence_dir = Path(args.evidence_dir) if args.evidence_dir else None
    if args.db:
        return args.db, evidence_dir
    import yaml
    from pydantic import ValidationError

    from service.settings import Settings

    path = Path(args.settings)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such settings file")
    try:
        settings = Settings.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(map(str, e["loc"])) or "settings"
        raise ValueError(f"{path}: {field}: {e['msg'].removeprefix('Value error, ')}") from None
    db = settings.database_url or str(settings.database_path)
    return db, evidence_dir or settings.evidence_dir


def cmd_dataset_from_reviews(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from datasets.from_reviews import ExportOptions, export_from_reviews
    from datasets.yolo import load_dataset

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise ValueError(f"--since {args.since!r}: not an ISO 8601 time (e.g. 2026-06-01T00:00:00+08:00)") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
    names = args.classes or load_dataset(Path(args.classes_from)).class_names
    kind_classes = {}
    for pair in args.kind_class or []:
        kind, sep, classes = pair.partition("=")
        if not sep or not kind or not classes:
            raise ValueError(f"--kind-class {pair!r}: expected KIND=CLASS[,CLASS...]")
        kind_classes[kind] = tuple(c for c in classes.split(",") if c)
    options = ExportOptions(
        class_names=tuple(names), val_frac=args.val_frac, split_by=args.split_by, seed=args.seed, since=since,
        scope=args.scope, context_frac=args.context, max_box_age_s=args.max_box_age_s, kind_classes=kind_classes,
        class_map=_class_map(args.map) or {}, negative_reason=args.negative_reason, negatives=not args.no_negatives,
        link=not args.copy)
    db, evidence_dir = _from_reviews_source(args)
    out = Path(args.out)
    summary = export_from_reviews(db, out, options, evidence_dir)
    skipped = sum(summary["skipped"].values())
    print(f"{out / summary['data_yaml']}: {summary['positives']} positives, {summary['negatives']} negatives "
          f"({', '.join(f'{k} {v}' for k, v in summary['images'].items())}); boxes "
          f"{', '.join(f'{k} {v}' for k, v in summary['boxes_per_class'].items())}; {skipped} skipped; "
          f"details in {out / 'summary.json'}")
    for warning in summary["warnings"]:
        print(f"streetwatch: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_dataset_from_footage(args: argparse.Namespace) -> int:
    from datasets.footage_labels import LABELS_DIR, build_footage_dataset, load_footage_labels
    from datasets.synth import resolve_shared_dir

    shared = resolve_shared_dir(Path(args.shared) if args.shared else None)
    if shared is None:
        raise ValueError("the shared data folder is not found: pass --shared DIR or set STREETWATCH_SHARED")
    labels_path = Path(args.labels)
    if not labels_path.suffix and not labels_path.exists():
        labels_path = LABELS_DIR / f"{args.labels}.yaml"  # a name: one of the label files shipped with streetwatch
        if not labels_path.is_file():
            shipped = ", ".join(sorted(p.stem for p in LABELS_DIR.glob("*.yaml")))
            raise ValueError(f"{args.labels}: no such label file, and no shipped one of that name (shipped: {shipped})")
    labels = load_footage_labels(labels_path)
    data_yaml = build_footage_dataset(labels, shared, Path(args.out))
    print(f"{data_yaml}: {len(labels.frames)} frames of {labels.source}, {labels.n_boxes} boxes (split test)")
    return EXIT_OK


def cmd_dataset_synth(args: argparse.Namespace) -> int:
    from datasets.synth import generate_dataset

    size = None
    if args.size:
        w, _, h = args.size.lower().partition("x")
        size = (int(w), int(h))
    views = None
    if args.gsd_m is not None or args.oblique is not None:
        from datasets.synth.aerial import AerialViewSampling

        if args.kind != "aerial":
            raise ValueError("--gsd-m and --oblique apply to --kind aerial only")
        default = AerialViewSampling()
        gsd = default.gsd_range_m
        if args.gsd_m is not None:
            lo, sep, hi = args.gsd_m.partition(",")
            try:
                gsd = (float(lo), float(hi if sep else lo))
            except ValueError:
                raise ValueError(f"--gsd-m {args.gsd_m!r}: expected MIN,MAX in metres per pixel, "
                                 "e.g. 0.02,0.05") from None
        views = AerialViewSampling(gsd, default.oblique_probability if args.oblique is None else args.oblique)
    data_yaml = generate_dataset(args.kind, Path(args.out), args.n, args.seed, args.val_fraction, size,
                                 Path(args.shared) if args.shared else None, progress=not args.quiet,
                                 aerial_views=views)
    print(data_yaml)
    return EXIT_OK


def cmd_dataset_scenario(args: argparse.Namespace) -> int:
    from datasets.synth import SCENARIOS, render_scenario

    if args.name not in SCENARIOS:
        _error(f"unknown scenario {args.name!r} (known: {', '.join(SCENARIOS)})")
        return EXIT_USER_ERROR
    bank = None
    if args.shared:
        from datasets.synth import BikeCropBank
        from datasets.synth.dataset import bicycles_train_dir

        train = bicycles_train_dir(Path(args.shared))
        if train is None:
            _error(f"--shared {args.shared}: no data/bicycles-2000/train/images there (the real bicycle cut-outs)")
            return EXIT_USER_ERROR
        bank = BikeCropBank.load_or_build(train, progress=True)
    clip = render_scenario(args.name, Path(args.out), seed=args.seed, fps=args.fps, bike_bank=bank)
    print(json.dumps({"video": str(clip.video_path), "timeline": str(clip.timeline_path)}))
    return EXIT_OK


# --- run ----------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from detector.sources import open_source
    from service.config import load_config
    from service.run import build_pipeline, run_camera

    config = load_config(Path(args.config))
    camera = next((c for c in config.cameras if c.id == args.camera), None)
    if camera is None:
        known = ", ".join(c.id for c in config.cameras)
        _error(f"{args.config}: no camera {args.camera!r} (cameras: {known})")
        return EXIT_USER_ERROR
    options = {"source_id": camera.id}
    if args.start:
        start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        if start.tzinfo is None:
            _error(f"--start {args.start!r}: give a time zone (e.g. 2026-06-01T08:00:00Z)")
            return EXIT_USER_ERROR
        options["start_ts"] = start
    source = open_source(args.source, camera.sample_fps, **options)
    pipeline = build_pipeline(config, camera, threads=args.threads)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    evidence_dir = Path(args.evidence_dir) if args.evidence_dir else out_path.parent / "evidence"
    show = sys.stderr.isatty()
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(desc=f"run {camera.id}", unit="frame", file=sys.stderr)

    def on_frame(summary) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(violations=summary.violations, ts=summary.last_ts.strftime("%H:%M:%S"))

    with source, open(out_path, "w", encoding="utf-8") as out:
        summary = run_camera(config, camera, source, out, evidence_dir, pipeline,
                             Path(args.annotated) if args.annotated else None, on_frame)
    if bar is not None:
        bar.close()
    health = source.health()
    median_ms = sorted(summary.inference_ms)[len(summary.inference_ms) // 2] if summary.inference_ms else 0.0
    print(json.dumps({"camera": camera.id, "frames": summary.frames, "violations": summary.violations,
                      "events": summary.events, "out": str(out_path), "median_inference_ms": round(median_ms, 1),
                      "source": {"state": getattr(health.state, "value", str(health.state)), "frames_rejected": health.frames_rejected,
                                 "last_error": health.last_error}}), file=sys.stderr)
    return EXIT_OK


# --- serve --------------------------------------------------------------------------------------------

def default_serve_dir() -> Path:
    """Where ``serve --config`` keeps its data without ``--settings``: ``$XDG_DATA_HOME/streetwatch/serve``
    (``~/.local/share/streetwatch/serve`` when XDG_DATA_HOME is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "streetwatch" / "serve"


def _serve_settings(args: argparse.Namespace):
    """The service settings of ``serve``: the ``--settings`` file, or defaults around ``--config``.

    Without ``--settings`` the data lives in ``--data-dir``: ``cases.sqlite3``, ``evidence/`` and ``keys.json``
    (an admin and a reviewer key, made once, owner-only), and ``--config`` is the camera configuration. With
    both, ``--config`` replaces the settings' ``config_path``. Returns (settings, keys file or None), or None
    after printing the problems.
    """
    import yaml
    from pydantic import ValidationError

    from service.config import validate_config_file
    from service.settings import Settings, hash_api_key

    config_path = Path(args.config) if args.config else None
    if config_path is not None:
        problems = validate_config_file(config_path)  # every problem, each with its field, as `config validate`
        for problem in problems:
            print(f"{config_path}: {problem}", file=sys.stderr)
        if problems:
            return None
    if args.settings is None:
        from service.demo import ensure_keys

        data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_serve_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        keys_path = data_dir / "keys.json"
        keys = ensure_keys(keys_path, prefix="")
        settings = Settings(
            database_path=data_dir / "cases.sqlite3", evidence_dir=data_dir / "evidence",
            config_path=config_path.resolve(),
            api_keys=[{"name": "admin", "role": "admin", "key_sha256": hash_api_key(keys["admin"])},
                      {"name": "reviewer", "role": "reviewer", "key_sha256": hash_api_key(keys["reviewer"])}])
        return settings, keys_path
    path = Path(args.settings)
    if not path.is_file():
        _error(f"{path}: no such settings file")
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        settings = Settings.model_validate(raw)
    except yaml.YAMLError as exc:
        _error(f"{path}: cannot parse: {str(exc).splitlines()[0]}")
        return None
    except ValidationError as exc:
        for e in exc.errors():
            field = ".".join(map(str, e["loc"])) or "settings"
            print(f"{path}: {field}: {e['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return None
    if config_path is not None:
        settings = settings.model_copy(update={"config_path": config_path.resolve()})
    elif settings.config_path is not None:
        problems = validate_config_file(settings.config_path)
        for problem in problems:
            print(f"{settings.config_path}: {problem}", file=sys.stderr)
        if problems:
            return None
    return settings, None


def cmd_serve(args: argparse.Namespace) -> int:
    if args.settings is None and args.config is None:
        _error("serve needs --config FILE (cameras; defaults for the rest), --settings FILE, or both")
        return EXIT_USER_ERROR
    if args.settings is not None and args.data_dir is not None:
        _error("--data-dir is for serving without --settings (the settings file names the database and evidence)")
        return EXIT_USER_ERROR
    found = _serve_settings(args)
    if found is None:
        return EXIT_USER_ERROR
    settings, keys_path = found
    import uvicorn

    from service.app import create_app

    app = create_app(settings)
    if keys_path is not None:
        print(f"streetwatch: no --settings: cases in {settings.database_path}, evidence in {settings.evidence_dir}, "
              f"an admin and a reviewer key in {keys_path}", file=sys.stderr)
    print(f"streetwatch: serving on http://{args.host}:{args.port}  (review page at /, API docs at /docs)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


# --- demo ---------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from service.demo import DemoOptions, default_data_dir, run_demo

    if args.exit_after_cases is not None and args.exit_after_cases < 1:
        _error("--exit-after-cases must be at least 1")
        return EXIT_USER_ERROR
    if args.timeout_s is not None and not args.timeout_s > 0:
        _error("--timeout-s must be positive")
        return EXIT_USER_ERROR
    if not 0 < args.speed <= 100:
        _error(f"--speed must lie within (0, 100], got {args.speed}")
        return EXIT_USER_ERROR
    options = DemoOptions(data_dir=Path(args.data_dir) if args.data_dir else default_data_dir(), host=args.host,
                          port=args.port, scenario=args.scenario, speed=args.speed, fps=args.fps, seed=args.seed,
                          fresh=args.fresh, exit_after_cases=args.exit_after_cases, timeout_s=args.timeout_s,
                          threads=args.threads)
    return run_demo(options)


# --- config -------------------------------------------------------------------------------------------

def cmd_config_validate(args: argparse.Namespace) -> int:
    from service.config import load_config, validate_config_file

    problems = validate_config_file(Path(args.file))
    for problem in problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USER_ERROR
    cfg = load_config(Path(args.file))
    zones = sum(len(c.zones) for c in cfg.cameras)
    print(f"{args.file}: valid ({len(cfg.cameras)} cameras, {zones} zones)")
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
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

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

    p = sub.add_parser("run", help="run one camera's pipeline over a video, stream or folder, offline")
    p.add_argument("source", metavar="SOURCE", help="video file, rtsp:// or http:// URL, or a folder of images")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--camera", required=True, metavar="ID", help="camera id in the configuration (zones, rules)")
    p.add_argument("--out", default="violations.jsonl", metavar="JSONL", help="one JSON line per violation")
    p.add_argument("--evidence-dir", default=None, metavar="DIR", help="default: evidence/ beside --out")
    p.add_argument("--annotated", default=None, metavar="MP4", help="write the annotated samples as a video")
    p.add_argument("--start", default=None, metavar="ISO_TIME",
                   help="wall-clock time of a file's first frame (UTC, e.g. 2026-06-01T08:00:00Z)")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="run the web service (API; cases; outbox)",
                       description="Run the service: API, review page, one pipeline worker per camera, outbox. "
                                   "Give the camera configuration (--config), the service settings (--settings: "
                                   "database, evidence, keys, outbox; its config_path names the cameras), or both "
                                   "(--config then replaces config_path).")
    p.add_argument("--config", metavar="FILE",
                   help="camera configuration (YAML/JSON, as `config validate` checks); without --settings the "
                        "rest takes defaults: SQLite, evidence and keys.json (an admin and a reviewer key, made "
                        "once) in --data-dir, no outbox")
    p.add_argument("--settings", metavar="FILE", help="service settings (YAML/JSON)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="without --settings: where cases.sqlite3, evidence/ and keys.json live (default: "
                        "$XDG_DATA_HOME/streetwatch/serve, i.e. ~/.local/share/streetwatch/serve)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the whole service on built-in defaults: a scenario camera, cases, review page",
                       description="Run the service (API, review page, one camera, case store) on embedded defaults: "
                                   "a rendered scenario clip plays as a camera in real time, the street model finds "
                                   "what it shows, and cases appear for review. Everything lives in --data-dir.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="SQLite file, evidence, clip, settings and keys (default: "
                        "$XDG_DATA_HOME/streetwatch/demo, i.e. ~/.local/share/streetwatch/demo)")
    p.add_argument("--scenario", default="stall_2min", metavar="NAME",
                   help="scenario clip the camera plays: stall_2min (default; first case after about 40 s), "
                        "mixed_demo, stall_7min, bikes_outside_box_12min, passerby_30s")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="play the clip X times faster than real time (dwell times pass X times faster)")
    p.add_argument("--fps", type=float, default=2.0, help="frame rate the clip is rendered at")
    p.add_argument("--seed", type=int, default=0, help="varies the rendered street and objects")
    p.add_argument("--fresh", action="store_true", help="start with an empty database and no evidence")
    p.add_argument("--exit-after-cases", type=int, default=None, metavar="N",
                   help="exit with status 0 once N new cases were created (headless runs, CI)")
    p.add_argument("--timeout-s", type=float, default=None, metavar="S",
                   help="give up after S seconds: status 1 when --exit-after-cases was not reached, else 0")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    p.set_defaults(func=cmd_demo)

    cfg = sub.add_parser("config", help="configuration tools")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = csub.add_parser("validate", help="check a configuration file; every problem names its field")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_config_validate)

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

    ds = sub.add_parser("dataset", help="dataset tools: stats, contact-sheet, synth, scenario, merge, tile, split, convert, from-reviews, from-footage")
    dsub = ds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    p = dsub.add_parser("stats", help="images, boxes per class, box sizes per split")
    p.add_argument("data", metavar="DATA.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_stats)
    p = dsub.add_parser("contact-sheet", help="a PNG grid of images with their boxes")
    p.add_argument("data", metavar="DATA.yaml")
    p.add_argument("--split", default="train")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cell-px", type=int, default=320)
    p.set_defaults(func=cmd_dataset_contact_sheet)
    p = dsub.add_parser("synth", help="generate a synthetic street or aerial dataset (seeded, deterministic)")
    p.add_argument("--kind", choices=["street", "aerial"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--size", default=None, metavar="WxH")
    p.add_argument("--shared", default=None, help="../shared (real bike crops, footage backgrounds)")
    p.add_argument("--gsd-m", default=None, metavar="MIN,MAX",
                   help="aerial: ground sampling distance range in m/px (default 0.025,0.07)")
    p.add_argument("--oblique", type=float, default=None, metavar="P",
                   help="aerial: share of oblique views, 0..1 (default 0.35)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_dataset_synth)
    p = dsub.add_parser("scenario", help="render a scenario clip (mp4 + ground-truth timeline JSON)")
    p.add_argument("name", help="stall_7min, bikes_outside_box_12min, passerby_30s, mixed_demo, stall_2min, "
                                "far_bikes_4min")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--shared", default=None,
                   help="../shared: far_bikes_4min pastes real bicycle cut-outs from bicycles-2000 train (else drawn)")
    p.set_defaults(func=cmd_dataset_scenario)
    p = dsub.add_parser("merge", help="merge YOLO datasets into one class list")
    p.add_argument("sources", nargs="+", metavar="DATA.yaml")
    p.add_argument("--out", required=True)
    p.add_argument("--classes", nargs="+", required=True, help="the merged class list, in order")
    p.add_argument("--map", nargs="*", metavar="SOURCE=TARGET", help="rename classes (TARGET empty drops)")
    p.add_argument("--copy", action="store_true", help="copy images instead of linking")
    p.set_defaults(func=cmd_dataset_merge)
    p = dsub.add_parser("tile", help="cut a YOLO dataset into native-resolution tiles (small objects stay large)")
    p.add_argument("data", metavar="DATA.yaml")
    p.add_argument("--out", required=True)
    p.add_argument("--tile-px", type=int, required=True, help="tile width and height in source pixels")
    p.add_argument("--overlap", type=float, default=0.2, help="overlap of neighbouring tiles, fraction of a tile")
    p.add_argument("--min-visible", type=float, default=0.5,
                   help="share of a box's area that must lie in a tile for the tile to label it")
    p.add_argument("--keep-empty", type=float, default=0.1, help="share of tiles without boxes kept as background")
    p.add_argument("--max-per-image", type=int, default=None, help="cap on labelled tiles per image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_dataset_tile)
    p = dsub.add_parser("split", help="split a folder of labelled images into train/val by source photo")
    p.add_argument("images", metavar="IMAGES_DIR")
    p.add_argument("--out", required=True)
    p.add_argument("--val", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", nargs="*", default=None)
    p.add_argument("--copy", action="store_true")
    p.set_defaults(func=cmd_dataset_split)
    p = dsub.add_parser("convert", help="COCO json or Pascal VOC xml to YOLO")
    p.add_argument("format", choices=["coco", "voc"])
    p.add_argument("annotations", help="COCO json file, or folder of VOC xml files")
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--map", nargs="*", metavar="SOURCE=TARGET")
    p.add_argument("--classes", nargs="*", default=None)
    p.set_defaults(func=cmd_dataset_convert)
    p = dsub.add_parser(
        "from-footage", help="hand-labelled frames of real footage in ../shared as a YOLO test set",
        description="Decode the labelled frames of a real video in the shared data folder and write them (PNG) "
                    "with their labels as a YOLO dataset with one split, test, for `streetwatch eval`. Label "
                    "files shipped: datasets/labels/footage/ (see datasets/footage_labels.py for the format).")
    p.add_argument("labels", metavar="LABELS", help="a label file, or the name of a shipped one "
                                                    "(e.g. parking-lot-bicycle)")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--shared", metavar="DIR", help="the shared data folder (default: STREETWATCH_SHARED or ../shared)")
    p.set_defaults(func=cmd_dataset_from_footage)
    p = dsub.add_parser(
        "from-reviews", help="a YOLO dataset from reviewed cases (confirmed: positives, rejected: hard negatives)",
        description="Export reviewed cases of the case store as a YOLO dataset for `streetwatch train` (or "
                    "`dataset merge`): confirmed/posted cases are positives labelled with the reviewed class, "
                    "rejected cases are images without labels (hard negatives). Uses each case's original evidence "
                    "frame and its stored boxes; the database is opened read-only. See datasets/from_reviews.py.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="URL_OR_FILE",
                     help="sqlite:///cases.db, postgresql+psycopg://..., or a SQLite file")
    src.add_argument("--settings", metavar="FILE", help="the service's settings (database and evidence_dir)")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", nargs="+", metavar="NAME", help="the target dataset's classes, in order")
    names.add_argument("--classes-from", metavar="DATA.yaml", help="take the classes from this dataset")
    p.add_argument("--since", metavar="ISO", help="only cases decided at or after this time (no zone given: UTC)")
    p.add_argument("--val-frac", type=float, default=0.2, help="expected share of split groups in val (default 0.2)")
    p.add_argument("--split-by", choices=["camera-day", "case"], default="camera-day",
                   help="what stays on one side of the split (default: camera and UTC day of the frame)")
    p.add_argument("--seed", type=int, default=0, help="changes the split assignment as a whole")
    p.add_argument("--scope", choices=["region", "frame"], default="region",
                   help="region (default): keep the boxes plus context, grey (114) elsewhere, so unlabelled objects "
                        "elsewhere in the frame are not learnt as background; frame: the whole original frame")
    p.add_argument("--context", type=float, default=0.5, metavar="FRAC",
                   help="region scope: margin kept around a box, as a share of its longer side (at least 32 px)")
    p.add_argument("--max-box-age-s", type=float, default=600.0, metavar="S",
                   help="only for evidence stored without boxes of its own (before migration 0002): skip a case "
                        "whose stored boxes were seen more than S seconds after its newest original frame "
                        "(default 600)")
    p.add_argument("--kind-class", nargs="*", metavar="KIND=CLASS[,CLASS]",
                   help="classes of a violation kind, first = its default (built in: bike_misparked=bicycle,ebike "
                        "stall_occupation=stall mobile_vendor=stall illegal_structure=illegal_structure)")
    p.add_argument("--map", nargs="*", metavar="SOURCE=TARGET", help="rename classes (TARGET empty drops the case)")
    p.add_argument("--negative-reason", metavar="REGEX",
                   help="only rejections whose reason matches (case-insensitive) become negatives, e.g. "
                        "'not a|false|误报|不是' (a rejection of the rule, such as 'parked in the allowed area', is "
                        "not a detector error)")
    p.add_argument("--no-negatives", action="store_true", help="export confirmed cases only")
    p.add_argument("--evidence-dir", metavar="DIR",
                   help="where relative evidence paths live (default: the working directory, then the settings' "
                        "evidence_dir)")
    p.add_argument("--copy", action="store_true", help="frame scope: copy images instead of hard-linking them")
    p.set_defaults(func=cmd_dataset_from_reviews)
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
    except (StreetwatchError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # ValueError/FileNotFoundError here come from argument values the user gave (paths, KEY=VALUE).
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
