"""Dataset jobs: ``streetwatch dataset ACTION``.

Inspect (stats, contact-sheet), generate (synth, scenario), convert, merge, tile and split YOLO datasets, and
build them from hand-labelled real footage (from-footage) and from reviewers' decisions on cases
(from-reviews: the case store is read by `service.review_export`, the dataset written by
`datasets.from_reviews`), and add distractor classes labelled where two COCO teachers agree (pseudo-label:
`datasets.teacher`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error, progress_bar


_BUILT_IN_KIND_CLASSES = "{built-in kind classes}"
"""Stands in a help text for the kind catalogue's classes (`service.kinds.kind_classes`) until it is printed."""


class _KindCatalogueHelpFormatter(argparse.HelpFormatter):
    """Writes the kind catalogue's classes into help texts when the help is printed.

    The parser of every command holds the ``from-reviews`` options; reading the catalogue only when that
    help is shown keeps the catalogue (and the rules behind it) out of every other command's start.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and _BUILT_IN_KIND_CLASSES in text:
            from service.kinds import kind_classes

            built_in = " ".join(f"{kind}={','.join(classes)}" for kind, classes in kind_classes().items())
            text = text.replace(_BUILT_IN_KIND_CLASSES, built_in.replace("%", "%%"))
        return text


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

    from service.settings import load_settings_file

    settings = load_settings_file(args.settings)
    db = settings.database_url or str(settings.database_path)
    return db, evidence_dir or settings.evidence_dir


def _parse_kind_classes(pairs: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """``--kind-class KIND=CLASS[,CLASS...]`` values as kind → classes."""
    kind_classes = {}
    for pair in pairs or []:
        kind, sep, classes = pair.partition("=")
        if not sep or not kind or not classes:
            raise ValueError(f"--kind-class {pair!r}: expected KIND=CLASS[,CLASS...]")
        kind_classes[kind] = tuple(c for c in classes.split(",") if c)
    return kind_classes


def cmd_dataset_from_reviews(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from datasets.from_reviews import ExportOptions, export_reviewed_cases
    from datasets.yolo import load_dataset
    from service.kinds import kind_classes
    from service.review_export import read_reviewed_cases

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise ValueError(f"--since {args.since!r}: not an ISO 8601 time (e.g. 2026-06-01T00:00:00+08:00)") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
    names = args.classes or load_dataset(Path(args.classes_from)).class_names
    options = ExportOptions(
        class_names=tuple(names), val_frac=args.val_frac, split_by=args.split_by, seed=args.seed, since=since,
        scope=args.scope, context_frac=args.context, max_box_age_s=args.max_box_age_s,
        kind_classes={**kind_classes(), **_parse_kind_classes(args.kind_class)},
        class_map=_class_map(args.map) or {}, negative_reason=args.negative_reason, negatives=not args.no_negatives,
        link=not args.copy)
    db, evidence_dir = _from_reviews_source(args)
    out = Path(args.out)
    found = read_reviewed_cases(db, options.since)  # the service reads the store; datasets/ writes the dataset
    summary = export_reviewed_cases(found.cases, out, options, evidence_dir, found.not_reviewed, found.source,
                                    progress=progress_bar(args.quiet, unit="case"))
    skipped = sum(summary["skipped"].values())
    print(f"{out / summary['data_yaml']}: {summary['positives']} positives, {summary['negatives']} negatives "
          f"({', '.join(f'{k} {v}' for k, v in summary['images'].items())}); boxes "
          f"{', '.join(f'{k} {v}' for k, v in summary['boxes_per_class'].items())}; {skipped} skipped; "
          f"details in {out / 'summary.json'}")
    for warning in summary["warnings"]:
        print(f"streetwatch: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _teacher_classes(pairs: Sequence[str] | None) -> dict[str, str] | None:
    """``--class TEACHER_CLASS[=TARGET]`` values as teacher class → distractor class (None: the defaults)."""
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not src or (sep and not dst):
            raise ValueError(f"--class {pair!r}: expected TEACHER_CLASS or TEACHER_CLASS=TARGET, e.g. truck=car")
        mapping[src] = dst or src
    return mapping


def cmd_dataset_pseudo_label(args: argparse.Namespace) -> int:
    from datasets.teacher import DEFAULT_DISTRACTORS, DEFAULT_MAY_OVERLAP_TRUTH, pseudo_label_dataset
    from detector.runtime import load_model

    if len(args.teacher) != 2:
        raise ValueError(f"--teacher: give exactly two teachers (labels are kept where two agree), "
                         f"got {len(args.teacher)}")
    if len(args.min_score) > 2:
        raise ValueError(f"--min-score: one value for both teachers or one per teacher, got {len(args.min_score)}")
    classes = _teacher_classes(args.classes) or DEFAULT_DISTRACTORS  # a typo fails before the models load
    teachers = [load_model(name) for name in args.teacher]
    result = pseudo_label_dataset(
        Path(args.data), Path(args.out), teachers, classes=classes,
        target_classes=args.target_classes, min_score=args.min_score[0] if len(args.min_score) == 1 else args.min_score,
        min_iou=args.min_iou, splits=tuple(args.split or ["train"]), skip_overlap_with_truth=args.truth_iou,
        may_overlap_truth=frozenset(args.may_overlap) if args.may_overlap is not None else DEFAULT_MAY_OVERLAP_TRUTH,
        max_images=args.max_images, seed=args.seed, sheet_png=Path(args.sheet) if args.sheet else None,
        sheet_n=args.sheet_n, link=not args.copy, progress=not args.quiet)
    s = result.summary
    kept = ", ".join(f"{n} {c['kept']}" for n, c in s["classes"].items())
    a = s["agreement"]
    print(f"{result.data_yaml}: {s['images']} images, {s['images_with_kept']} with teacher boxes; kept {kept}; "
          f"agreement {a['a']} {a['a_confirmed_by_b']}, {a['b']} {a['b_confirmed_by_a']}; {s['elapsed_s']} s; "
          f"details in {result.summary_path}" + (f"; sheet {result.sheet_png}" if result.sheet_png else ""))
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
                                 aerial_views=views, distractors=args.distractors)
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


# ``dataset flight``: option → FlightSpec field, value type, help. One table makes the parser, the mapping onto
# the spec and the option named in an error (FlightSpec's own messages name its fields).
_FLIGHT_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--seed", "seed", int, "seed of the town and of all noise"),
    ("--duration-s", "duration_s", float, "length of the flight, s"),
    ("--fps", "fps", float, "video frame rate"),
    ("--alt-m", "alt_m", float, "altitude above the take-off point, m (SRT rel_alt)"),
    ("--speed-mps", "speed_mps", float, "ground speed, m/s"),
    ("--yaw-deg", "yaw_deg", float, "camera heading, degrees clockwise from north"),
    ("--pitch-deg", "pitch_deg", float, "gimbal pitch, -90 (nadir) .. -20"),
    ("--roll-deg", "roll_deg", float, "gimbal roll, degrees (positive: right side of the image down)"),
    ("--course-deg", "course_deg", float, "direction of flight (default: along the camera heading)"),
    ("--path", "path", str, "line or lawnmower"),
    ("--leg-length-m", "leg_length_m", float, "lawnmower leg length, m"),
    ("--leg-spacing-m", "leg_spacing_m", float, "distance between lawnmower legs, m"),
    ("--gsd-m", "gsd_m", float, "orthophoto ground sampling distance, m/px"),
    ("--lat-deg", "origin_lat_deg", float, "latitude of the take-off point"),
    ("--lon-deg", "origin_lon_deg", float, "longitude of the take-off point"),
    ("--ground-alt-m", "ground_alt_m", float, "ground height above sea level, m (SRT abs_alt - rel_alt)"),
    ("--start-local", "start_local", str, "local wall time of the first frame, ISO 8601 without zone"),
    ("--timezone", "timezone", str, "IANA time zone of the place"),
    ("--mode", "mode", str, "video (MP4 + SRT) or stills (geotagged JPEGs)"),
    ("--telemetry-coverage", "telemetry_coverage", float, "share of the video the SRT covers (its first part)"),
    ("--srt-gimbal", "srt_gimbal", str, "gimbal angles in the SRT: auto, always or never"),
    ("--still-interval-s", "still_interval_s", float, "stills: time between stills, s"),
    ("--xmp-longitude-key", "xmp_longitude_key", str, "stills: GpsLongitude or DJI's misspelt GpsLongtitude"),
    ("--noise-sigma", "noise_sigma", float, "sensor noise, grey levels"),
    ("--max-view-range-m", "max_view_range_m", float, "ground farther than this is haze (oblique views), m"),
    ("--town-half-size-m", "town_half_size_m", float,
     "half the side of the town (default: what the flight sees); give it to fly one town several times"),
    ("--crf", "video_crf", int, "x264 quality (lower is better)"),
    ("--preset", "video_preset", str, "x264 preset"),
)


def _flight_option_of(field_name: str) -> str:
    flags = {f: o for o, f, _, _ in _FLIGHT_OPTIONS}
    flags.update(frame_size_px="--size", still_size_px="--size", stills_without_gps="--stills-without-gps",
                 write_srt="--no-srt", omit_classes="--omit-classes")
    return flags.get(field_name, field_name)


def _flight_spec(args: argparse.Namespace):
    """The `FlightSpec` the options describe; an invalid value is a ValueError naming its option."""
    import re

    from datasets.synth.flight import FlightSpec

    values = {f: getattr(args, f) for _, f, _, _ in _FLIGHT_OPTIONS if getattr(args, f) is not None}
    if args.size:
        w, _, h = args.size.lower().partition("x")
        try:
            size = (int(w), int(h))
        except ValueError:
            raise ValueError(f"--size {args.size!r}: expected WxH in pixels, e.g. 640x360") from None
        values["still_size_px" if values.get("mode") == "stills" else "frame_size_px"] = size
    if args.stills_without_gps:
        try:
            values["stills_without_gps"] = tuple(int(v) for v in args.stills_without_gps.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"--stills-without-gps {args.stills_without_gps!r}: expected 0-based still indices, "
                             "e.g. 0,3") from None
    if args.omit_classes:
        values["omit_classes"] = tuple(c for c in args.omit_classes.split(",") if c)
    if args.no_srt:
        values["write_srt"] = False
    try:
        return FlightSpec(**values)
    except ValueError as exc:
        # FlightSpec names its field ("FlightSpec.alt_m must ..."): the user typed an option
        raise ValueError(re.sub(r"FlightSpec\.(\w+)", lambda m: _flight_option_of(m.group(1)), str(exc))) from None


def write_flight_config(out_dir: Path, spec, layer_paths: dict[str, Path]) -> Path:
    """``drone.yaml`` beside a generated flight: its layers, time zone and (video) the generator's exact lens.

    `streetwatch drone OUT/flight.mp4 --config OUT/drone.yaml --out RUN` then analyses the flight as generated.
    Stills get no camera here: their EXIF model names it, as with a real mapping mission.
    """
    import yaml

    drone: dict = {"telemetry": {"timezone": spec.timezone}}
    if spec.mode == "video":
        drone["camera"] = {"sensor_width_mm": spec.profile.sensor_width_mm, "focal_mm": spec.profile.focal_mm}
    layers = {name: Path(p).name for name, p in layer_paths.items()}
    drone["layers"] = {k: [layers[k]] for k in ("baseline", "bike_parking") if k in layers}
    if "no_vending" in layers:  # each area carries its own schedule property
        drone["layers"]["no_vending"] = [{"path": layers["no_vending"]}]
    config: dict = {"config_version": 1}
    if "grid" in layers:
        config["grid"] = {"path": layers["grid"], "code_property": "code"}
    config["drone"] = drone
    path = Path(out_dir) / "drone.yaml"
    path.write_text("# Written by `streetwatch dataset flight` for the synthetic flight in this folder; paths are "
                    "relative to it.\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def cmd_dataset_flight(args: argparse.Namespace) -> int:
    from datasets.synth.flight import generate_flight

    spec = _flight_spec(args)
    out = Path(args.out)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=0, desc="town", unit="step", file=sys.stderr, leave=False)

    def progress(p) -> None:
        if bar is None:
            return
        if bar.desc != p.stage or bar.total != p.total:  # a new stage: its own count and rate
            bar.reset(total=p.total)
            bar.set_description_str(p.stage, refresh=False)
        bar.n = p.done
        bar.refresh()

    try:
        result = generate_flight(spec, out, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    config = write_flight_config(out, spec, result.layer_paths)
    truth = json.loads(result.truth_path.read_text(encoding="utf-8"))
    classes = ", ".join(f"{n} {c}" for c, n in truth["counts"]["by_class"].items() if n) or "none"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(truth["counts"]["violations"].items())) or "none"
    media = (f"{result.video_path.name} ({result.n_images} frames, {result.video_codec})"
             + (f" + {result.srt_path.name}" if result.srt_path else " without SRT")
             if result.video_path is not None else f"stills/ ({result.n_images} stills, {result.n_telemetry} with GPS)")
    print(f"{out}: {media}; {result.n_objects} objects in view ({classes}); violations: {kinds}; "
          f"{result.truth_path.name}, {config.name}")
    for note in result.notes:
        print(f"note: {note}")
    flight = result.video_path if result.video_path is not None else out / "stills"
    print(f"next: streetwatch drone {flight} --config {config} --out {out / 'run'}")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    ds = sub.add_parser("dataset", help="dataset tools: stats, contact-sheet, synth, scenario, flight, merge, tile, split, convert, from-reviews, from-footage, pseudo-label")
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
    p.add_argument("--distractors", action="store_true",
                   help="street: label the people and cars the scenes draw anyway (classes + person, motorcycle, car)")
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
    p = dsub.add_parser(
        "flight", help="a synthetic drone flight with exact truth: video + DJI SRT (or geotagged stills), layers",
        description="Fly a pinhole camera over a seeded synthetic town (datasets/synth/flight.py) and write, into "
                    "--out: flight.mp4 + flight.SRT (or stills/), the GeoJSON layers, truth.json (every object's "
                    "position and verdict) and drone.yaml for `streetwatch drone`. Options left out take "
                    "FlightSpec's defaults (a 60 s 3840x2160 30 fps flight at 50 m: minutes; tests use e.g. "
                    "--size 640x360 --fps 10 --duration-s 5).")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (files of an earlier flight replaced)")
    for option, field_name, kind, text in _FLIGHT_OPTIONS:
        p.add_argument(option, dest=field_name, type=kind, default=None, help=text)
    p.add_argument("--size", default=None, metavar="WxH", help="video frame size, or still size with --mode stills")
    p.add_argument("--stills-without-gps", default=None, metavar="I,J",
                   help="stills: 0-based indices of stills written without GPS")
    p.add_argument("--omit-classes", default=None, metavar="C,D", help="classes laid out but not drawn")
    p.add_argument("--no-srt", action="store_true", help="write no SRT (a video without telemetry)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dataset_flight)
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
        "pseudo-label", help="add distractor classes (person, motorcycle, car) labelled where two COCO teachers agree",
        description="Run two COCO detectors over a YOLO dataset's images and write a new dataset (images hard-linked) "
                    "whose labels are the source's own boxes plus the distractor boxes both teachers found (same "
                    "class, IoU >= --min-iou, each score >= its --min-score), minus boxes that lie on a true box "
                    "(a motorcycle on a labelled bicycle); people may overlap true boxes. Writes pseudo_labels.json "
                    "(counts, agreement, thresholds, teachers' sha256). See datasets/teacher.py.")
    p.add_argument("data", metavar="DATA.yaml")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder (under var/)")
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="a COCO model name or card, given twice (e.g. yolox-nano-coco and yolov8n-int8-coco)")
    p.add_argument("--class", dest="classes", action="append", metavar="TEACHER_CLASS[=TARGET]",
                   help="a teacher class to label and its class in the dataset, repeatable (default: person, "
                        "motorcycle, car)")
    p.add_argument("--target-classes", nargs="+", metavar="NAME",
                   help="the written class list in id order (default: the source's classes, then the distractors)")
    p.add_argument("--min-score", type=float, nargs="+", default=[0.5], metavar="S",
                   help="each teacher's high threshold: one value, or one per teacher (default 0.5)")
    p.add_argument("--min-iou", type=float, default=0.5, help="IoU at which two teachers' boxes agree (default 0.5)")
    p.add_argument("--split", action="append", metavar="SPLIT", help="split to label, repeatable (default train)")
    p.add_argument("--truth-iou", type=float, default=0.5, metavar="IOU",
                   help="drop a teacher box whose IoU with a true box reaches this (default 0.5)")
    p.add_argument("--may-overlap", nargs="*", metavar="CLASS",
                   help="distractor classes kept on true boxes (default: person)")
    p.add_argument("--max-images", type=int, default=None, metavar="N",
                   help="label a seeded random sample of N images per split (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet", metavar="PNG", help="write a contact sheet of a random sample with the boxes drawn")
    p.add_argument("--sheet-n", type=int, default=25, metavar="N", help="images on the sheet (default 25)")
    p.add_argument("--copy", action="store_true", help="copy images instead of hard-linking them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dataset_pseudo_label)
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
        formatter_class=_KindCatalogueHelpFormatter,
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
                   help=f"classes of a violation kind, first = its default (built in: {_BUILT_IN_KIND_CLASSES})")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dataset_from_reviews)
