"""Service jobs: ``streetwatch run``, ``serve`` and ``demo``.

One camera's pipeline offline over a file or stream, the web service (API, review page, camera workers,
outbox), and the whole service on built-in defaults. FastAPI and uvicorn are imported only by ``serve`` and
``demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error
from service.logging_setup import add_logging_arguments, configure_logging


def cmd_run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from detector.sources import open_source
    from service.config import load_config
    from service.pipeline import build_pipeline
    from service.run import run_camera

    configure_logging(args.log_level, args.log_format or "text")
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

    from service.pipeline import validate_config_file
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
    # Before the app is made: its start (schema upgrade, keys, workers) logs too. The options override the
    # settings' log section.
    configure_logging(args.log_level or settings.log.level, args.log_format or settings.log.format)
    from service.settings import public_url_problem

    problem = public_url_problem(settings)
    if problem is not None:  # a case system would get evidence links it cannot open
        _error(f"{args.settings or 'settings'}: {problem}")
        return EXIT_USER_ERROR
    import uvicorn

    from service.app import create_app

    app = create_app(settings)
    if keys_path is not None:
        print(f"streetwatch: no --settings: cases in {settings.database_path}, evidence in {settings.evidence_dir}, "
              f"an admin and a reviewer key in {keys_path}", file=sys.stderr)
    print(f"streetwatch: serving on http://{args.host}:{args.port}  (review page at /, API docs at /docs)",
          file=sys.stderr, flush=True)
    from service.serving import uvicorn_config

    # Files this process creates (database, evidence, flight uploads, key files) are its user's only.
    os.umask(0o077)
    uvicorn.Server(uvicorn_config(app, settings, args.host, args.port,
                                  log_level=args.log_level or settings.log.level)).run()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from service.demo import DemoOptions, default_data_dir, run_demo

    if args.exit_after_cases is not None and args.exit_after_cases < 1:
        _error("--exit-after-cases must be at least 1")
        return EXIT_USER_ERROR
    if args.timeout_s is not None and not args.timeout_s > 0:
        _error("--timeout-s must be positive")
        return EXIT_USER_ERROR
    if args.fresh and args.keep:
        _error("--fresh and --keep exclude each other (--fresh removes the cases and rewrites config.yaml)")
        return EXIT_USER_ERROR
    if not 0 < args.speed <= 100:
        _error(f"--speed must lie within (0, 100], got {args.speed}")
        return EXIT_USER_ERROR
    configure_logging(args.log_level, args.log_format or "text")
    options = DemoOptions(data_dir=Path(args.data_dir) if args.data_dir else default_data_dir(), host=args.host,
                          port=args.port, scenario=args.scenario, speed=args.speed, fps=args.fps, seed=args.seed,
                          fresh=args.fresh, keep=args.keep, exit_after_cases=args.exit_after_cases,
                          timeout_s=args.timeout_s,
                          threads=args.threads)
    return run_demo(options)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
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
    add_logging_arguments(p, default_level="warning")
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
    add_logging_arguments(p)
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
    p.add_argument("--fresh", action="store_true",
                   help="also write config.yaml anew (each run starts without cases anyway, unless --keep)")
    p.add_argument("--keep", action="store_true",
                   help="keep the cases of earlier runs: a stall still standing joins its case (without the "
                        "stopped time in its dwell)")
    p.add_argument("--exit-after-cases", type=int, default=None, metavar="N",
                   help="exit with status 0 once N cases were made, or with --keep found again, in this run "
                        "(headless runs, CI)")
    p.add_argument("--timeout-s", type=float, default=None, metavar="S",
                   help="give up after S seconds: status 1 when --exit-after-cases was not reached, else 0")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    add_logging_arguments(p, default_level="warning")
    p.set_defaults(func=cmd_demo)
