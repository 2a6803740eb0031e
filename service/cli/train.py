"""Training jobs: ``streetwatch train``, ``release``, ``quantize`` and ``retrain``.

Train a detector with ultralytics (the ``[train]`` extra), export a checkpoint to ONNX with its model card,
make a static int8 copy of a released model, and retrain a released model on reviewer decisions behind a gate
(``retrain``: the decision logic is `datasets.retrain`; exit status 0 released, 3 not released, 2 error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error, progress_bar


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
                         tiled_full_frame_pass=args.tiled_full_pass, progress=progress_bar(args.quiet))
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
                               float_head_outputs=args.float_head_outputs, progress=progress_bar(args.quiet))
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


EXIT_NOT_RELEASED = 3
"""``streetwatch retrain``: the candidate failed the gate (or there was nothing to retrain on); reasons printed."""

RETRAIN_EXIT_CODES = ("exit status: 0 released (with --dry-run: would be released), 3 not released (the reasons are "
                      "printed; also when no case was reviewed since the last release), 2 error (a bad option, a "
                      "missing holdout, unusable reviews), 130 interrupted")


def _parse_since(text: str):
    from datetime import datetime, timezone

    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: not an ISO 8601 time (e.g. 2026-06-01T00:00:00+08:00)") from None
    return since if since.tzinfo else since.replace(tzinfo=timezone.utc)


def _retrain_holdouts(args: argparse.Namespace, card) -> tuple[list, dict[str, str]]:
    """The card's holdouts less --skip-holdout, plus (replacing by name) the --holdout ones."""
    from datasets.retrain import holdouts_from_card, parse_holdout

    found, skipped = holdouts_from_card(card.metrics)
    unknown = sorted(set(args.skip_holdout) - {h.name for h in found})
    if unknown:
        raise ValueError(f"--skip-holdout {', '.join(unknown)}: not a holdout of {card.name} "
                         f"(its holdouts: {', '.join(h.name for h in found) or 'none'})")
    by_name = {h.name: h for h in found if h.name not in args.skip_holdout}
    for h in map(parse_holdout, args.holdout):
        by_name[h.name] = h
    return list(by_name.values()), skipped


def _step(text: str) -> None:
    print(f"retrain: {text}", file=sys.stderr, flush=True)


def _train_candidate(args: argparse.Namespace, current, weights: Path, since, since_from: str, started,
                     stamp: str):
    """Steps 2-4 of `cmd_retrain`: reviews → dataset, mixed with --base-data, fine-tuned, released into the work
    folder. Returns (candidate folder, reviewed holdout, facts for the card), or None when nothing was reviewed."""
    from datasets.from_reviews import ExportOptions, export_reviewed_cases
    from datasets.release import USE_FIELDS, release_model
    from datasets.retrain import Holdout, RetrainError
    from datasets.train import TrainRequest, describe, train
    from datasets.yolo import merge_datasets, require_empty_dir
    from service.cli.dataset import _from_reviews_source, _parse_kind_classes
    from service.kinds import kind_classes
    from service.review_export import read_reviewed_cases

    work = Path(args.work) if args.work else Path("var/retrain") / f"{current.name}-{stamp}"
    require_empty_dir(work)
    for base in args.base_data:
        if not Path(base).exists():
            raise FileNotFoundError(f"--base-data {base}: no such dataset")
    db, evidence_dir = _from_reviews_source(args)
    found = read_reviewed_cases(db, since)
    if not found.cases:
        return None, found.source
    options = ExportOptions(
        class_names=tuple(current.classes), val_frac=args.val_frac, split_by=args.split_by, seed=args.seed,
        since=since, kind_classes={**kind_classes(), **_parse_kind_classes(args.kind_class)},
        negative_reason=args.negative_reason)
    reviews_dir = work / "reviews"
    summary = export_reviewed_cases(found.cases, reviews_dir, options, evidence_dir, found.not_reviewed, found.source)
    for warning in summary["warnings"]:
        print(f"streetwatch: warning: {warning}", file=sys.stderr)
    if "val" not in summary["images"]:
        raise RetrainError(f"{reviews_dir}: the reviewed data has no val split ({summary['exported']} cases in "
                           f"{sum(summary['groups'].values())} {args.split_by} groups): with few cameras or days use "
                           "--split-by case")
    _step(f"{summary['exported']} reviewed cases exported ({summary['positives']} positives, {summary['negatives']} "
          f"negatives; images {summary['images']}) to {reviews_dir}")

    # The reviews' train split mixed with the original data; the reviews' val split is never trained on.
    merged = merge_datasets([(reviews_dir / "data.yaml", None)] + [(Path(b), None) for b in args.base_data],
                            work / "train-data", list(current.classes))
    imgsz = args.imgsz or current.input.width_px
    req = TrainRequest(data_yaml=merged, model=str(weights), run_dir=work / "runs" / "finetune", imgsz_px=imgsz,
                       epochs=args.epochs, batch=args.batch, workers=args.workers, device=args.device,
                       seed=args.seed, hyp=_parse_hyp(args.hyp))
    _step(f"fine-tuning {weights} for {args.epochs} epochs at {imgsz} px on {merged}")
    result = train(req, progress=not args.quiet)

    facts = {"from": f"{current.name} {current.version}", "from_sha256": current.sha256, "since": since.isoformat(),
             "since_from": since_from, "reviews": found.source, "reviewed_cases": summary["exported"],
             "positives": summary["positives"], "negatives": summary["negatives"], "base_data": list(args.base_data),
             "work": str(work), "epochs": args.epochs, "imgsz_px": imgsz}
    base_note = f" mixed with {', '.join(args.base_data)}" if args.base_data else ""
    release_model(
        result.best_pt, merged, current.name, work / "candidate", imgsz,
        training={**describe(req), "elapsed_s": round(result.elapsed_s, 1), "reviews_read_at": started.isoformat(),
                  "fine_tuned_from": facts["from"]},
        training_data=(f"{current.training_data}; fine-tuned on {summary['exported']} reviewed cases decided since "
                       f"{since.isoformat()} ({summary['positives']} confirmed, {summary['negatives']} rejected)"
                       f"{base_note}"),
        licence=current.licence, violation_classes=dict(current.violation_classes), notes=current.notes,
        tiled_full_frame_pass=current.tiling.full_frame_pass,
        use={k: getattr(current, k) for k in USE_FIELDS})
    reviewed = Holdout(f"reviewed_{stamp}", reviews_dir / "data.yaml", "val", reviewed=True)
    return (work / "candidate" / current.name, reviewed, facts), found.source


def _earlier_candidate(folder: Path, current):
    """A candidate folder an earlier `retrain` wrote (--candidate): (folder, its reviewed holdout, its facts)."""
    from dataclasses import replace

    from datasets.retrain import RetrainError, holdouts_from_card
    from detector.runtime.card import load_card

    card = load_card(folder / "card.yaml")
    earlier = card.training.get("retrain")
    if not isinstance(earlier, dict):
        raise RetrainError(f"{folder}: not a candidate written by streetwatch retrain (its card has no "
                           "training.retrain)")
    if card.name != current.name or earlier.get("from_sha256") != current.sha256:
        raise RetrainError(f"{folder}: fine-tuned from {earlier.get('from')} "
                           f"(sha256 {str(earlier.get('from_sha256'))[:12]}...), not from the current {current.name} "
                           f"{current.version} ({str(current.sha256)[:12]}...): retrain afresh")
    names = [n for n, row in earlier.get("holdouts", {}).items() if row.get("role") == "reviewed"]
    found, _ = holdouts_from_card({n: card.metrics.get(n) for n in names})
    if not found:
        raise RetrainError(f"{folder}/card.yaml: its reviewed data is not recorded in metrics")
    facts = {k: v for k, v in earlier.items() if k not in ("passed", "tolerance_ap50", "min_gain_ap50", "reasons",
                                                            "holdouts", "table")}
    return folder, replace(found[0], reviewed=True), facts


def cmd_retrain(args: argparse.Namespace) -> int:
    """Fine-tune the current model on reviewer decisions and release it only if the gate passes (see
    `datasets.retrain`). Returns 0 (released), `EXIT_NOT_RELEASED`, or raises for an error (exit 2)."""
    os.environ["YOLO_OFFLINE"] = "1"
    import importlib.util

    if not args.candidate and importlib.util.find_spec("ultralytics") is None:
        _error("retraining needs the [train] extra (pip install -e '.[train]'): ultralytics is not installed")
        return EXIT_USER_ERROR
    from datetime import datetime, timezone

    from datasets.release import write_card
    from datasets.retrain import (
        RetrainError,
        check_holdouts,
        compare,
        comparison_markdown,
        install_candidate,
        reviews_since,
        score_holdout,
        summarise_in_card,
        write_comparison,
    )
    from detector.runtime import OnnxDetector, RuntimeOptions
    from detector.runtime.card import load_card
    from service.cli.common import _progress

    # 1. The current model, its checkpoint, the holdouts and the review window: all checked before any work.
    root = _models_root(args)
    card_yaml = root / args.model / "card.yaml"
    if not card_yaml.is_file():
        raise RetrainError(f"{card_yaml}: no such model card (--model names a folder under {root})")
    current = load_card(card_yaml)
    weights = root / args.model / f"{args.model}.pt"
    if not weights.is_file():
        raise RetrainError(f"{weights}: no checkpoint to fine-tune from (`streetwatch release` keeps it beside the "
                           "ONNX file)")
    if current.name != args.model:
        raise RetrainError(f"{card_yaml}: the card names model {current.name!r}, its folder {args.model!r}")
    holdouts, not_holdouts = _retrain_holdouts(args, current)
    check_holdouts(holdouts)
    if args.since:
        since, since_from = _parse_since(args.since), "--since"
    else:
        found_since = reviews_since(current.training, current.version)
        if found_since is None:
            raise RetrainError(f"{card_yaml}: cannot tell when version {current.version!r} was released: pass --since")
        since, since_from = found_since
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    names = ", ".join(h.name for h in holdouts) or "none"
    _step(f"{current.name} {current.version}; {len(holdouts)} holdouts ({names})"
          + (f"; not holdouts: {', '.join(not_holdouts)}" if not_holdouts else ""))
    if not holdouts:
        print("streetwatch: warning: no holdout besides the reviewed data: nothing checks that the model does not "
              "forget what it knew (add --holdout NAME=DATA.yaml:SPLIT)", file=sys.stderr)

    # 2-4. Reviews → dataset → fine-tuned candidate in the work folder; or an earlier run's candidate.
    if args.candidate:
        candidate_dir, reviewed, facts = _earlier_candidate(Path(args.candidate), current)
        _step(f"candidate {candidate_dir} ({facts.get('reviewed_cases', '?')} reviewed cases decided since "
              f"{facts.get('since')})")
    else:
        _step(f"reviews decided since {since.isoformat()} ({since_from})")
        made, source = _train_candidate(args, current, weights, since, since_from, started, stamp)
        if made is None:
            print(f"not released: {source}: no case reviewed since {since.isoformat()} ({since_from}): nothing to "
                  "retrain on", file=sys.stderr)
            return EXIT_NOT_RELEASED
        candidate_dir, reviewed, facts = made

    # 5. Both models on every holdout, in this run on this machine.
    show = not args.quiet and sys.stderr.isatty()
    options = RuntimeOptions(intra_op_threads=args.threads)
    candidate = load_card(candidate_dir / "card.yaml")
    models = {"current": OnnxDetector(current, options), "candidate": OnnxDetector(candidate, options)}
    scores: dict[str, list] = {"current": [], "candidate": []}
    runs = {}
    for holdout in [*holdouts, reviewed]:
        for which, model in models.items():
            score, run = score_holdout(model, holdout, progress=lambda it, h=holdout.name, w=which: _progress(
                it, None, f"{h} ({w})", show))
            scores[which].append(score)
            if which == "candidate":
                runs[holdout.name] = run
    decision = compare(scores["current"], scores["candidate"], args.tolerance, args.min_gain)

    # 6. The table beside the candidate's card, and its summary in the card.
    context = {"model": current.name, "current": f"{current.version} ({card_yaml})",
               "candidate": f"{candidate.version} ({candidate_dir}), fine-tuned for {facts.get('epochs', '?')} "
                            f"epoch(s) at {facts.get('imgsz_px', '?')} px",
               "reviews": f"{facts.get('reviewed_cases', '?')} cases decided since {facts.get('since')} "
                          f"({facts.get('since_from')}) from {facts.get('reviews')}",
               "evaluated": started.isoformat()}
    md_path, _ = write_comparison(decision, candidate_dir, context, title=f"Retraining {current.name}")
    summarise_in_card(candidate_dir / "card.yaml", [*holdouts, reviewed], runs, decision, facts)
    print(comparison_markdown(decision, f"Retraining {current.name}", context))

    if not decision.release:
        print(f"not released: {current.name} stays {current.version}; candidate and table kept in {candidate_dir} "
              f"(release it later, if you must, with --candidate {candidate_dir})", file=sys.stderr)
        for reason in decision.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return EXIT_NOT_RELEASED
    if args.dry_run:
        print(f"dry run: the candidate passes the gate and would be released; it stays in {candidate_dir}",
              file=sys.stderr)
        return EXIT_OK

    # 7. Into place; the replaced model is kept for a rollback.
    card = load_card(candidate_dir / "card.yaml")
    write_card(card.model_copy(update={"training": {**card.training,
                                                    "released_at": datetime.now(timezone.utc).isoformat()}}),
               candidate_dir)
    kept = install_candidate(candidate_dir, root, current.name)
    target = root / current.name
    print(f"released {current.name} to {target} (table: {target / md_path.name}); the replaced {current.version} is "
          f"kept in {kept}; roll back with: mv {target} {target}.rejected && mv {kept} {target}", file=sys.stderr)
    for other in sorted(root.glob(f"{current.name}-*/card.yaml")):
        print(f"note: {other.parent} was made from the replaced model: make it again (e.g. streetwatch quantize "
              f"--model {current.name} --name {other.parent.name} --calib IMAGES)", file=sys.stderr)
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser(
        "retrain", help="fine-tune a model on reviewer decisions; release it only if no holdout gets worse",
        description="Take the cases reviewers decided since the model's last release (its card's "
                    "training.reviews_read_at / released_at, else the day of its version), export them as a dataset "
                    "(dataset from-reviews), mix in --base-data, fine-tune from models/NAME/NAME.pt, release the "
                    "candidate into the work folder, evaluate it and the current model on every holdout (the card's, "
                    "--holdout ones, and the reviewed data's val split) and move it into place only if it is not "
                    "worse than --tolerance AP50 on any holdout and better on the reviewed data. The table "
                    "(retrain.md, retrain.json) lands beside the candidate's card; the replaced model is kept in "
                    "models/NAME.previous/VERSION. See datasets/retrain.py.",
        epilog=RETRAIN_EXIT_CODES)
    p.add_argument("--model", required=True, metavar="NAME", help="the model to retrain (a folder under --models-dir)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="URL_OR_FILE", help="the case database: sqlite:///cases.db, postgresql+psycopg://"
                                                         "..., or a SQLite file")
    src.add_argument("--settings", metavar="FILE", help="the service's settings (database and evidence_dir)")
    src.add_argument("--candidate", metavar="DIR",
                     help="no training: judge (and release, if it passes) the candidate folder an earlier retrain left "
                          "(WORK/candidate/NAME), evaluated afresh against the current model")
    p.add_argument("--evidence-dir", metavar="DIR", help="where relative evidence paths live")
    p.add_argument("--since", metavar="ISO", help="use cases decided at or after this time instead of the card's "
                                                  "(no zone given: UTC)")
    p.add_argument("--base-data", action="append", default=[], metavar="DATA.yaml",
                   help="original training data mixed in so the model does not forget it (repeatable)")
    p.add_argument("--holdout", action="append", default=[], metavar="NAME=DATA.yaml:SPLIT[:tiled][:unseen]",
                   help="a further holdout, or one replacing the card's of that name (repeatable)")
    p.add_argument("--skip-holdout", action="append", default=[], metavar="NAME",
                   help="leave out one of the card's holdouts (e.g. its data is not on this machine; repeatable)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="AP50",
                   help="how much lower the candidate's AP50 may be on any holdout (default 0.01; negative: the gain "
                        "every holdout needs)")
    p.add_argument("--min-gain", type=float, default=0.0, metavar="AP50",
                   help="the candidate's AP50 on the reviewed data must exceed the current model's by more than this "
                        "(default 0: strictly better)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=None, help="training and export size (default: the model's input)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, or a CUDA index such as 0")
    p.add_argument("--seed", type=int, default=0, help="training seed and the reviews' split assignment")
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE", help="further ultralytics arguments")
    p.add_argument("--val-frac", type=float, default=0.2, help="share of the reviews' split groups held out as val")
    p.add_argument("--split-by", choices=["camera-day", "case"], default="camera-day",
                   help="what stays on one side of the reviews' split (default: camera and UTC day)")
    p.add_argument("--kind-class", nargs="*", metavar="KIND=CLASS[,CLASS]",
                   help="classes of a violation kind, first = its default (as dataset from-reviews)")
    p.add_argument("--negative-reason", metavar="REGEX",
                   help="only rejections whose reason matches become hard negatives (as dataset from-reviews)")
    p.add_argument("--work", metavar="DIR", help="a new or empty folder for the data, the run and the candidate "
                                                 "(default var/retrain/NAME-<UTC time>)")
    p.add_argument("--models-dir", default=None, help="where the models are (default: models/)")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="onnxruntime threads for evaluation (0: all)")
    p.add_argument("--dry-run", action="store_true", help="train and compare, but never move the candidate into place")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_retrain)
