"""The drone job of the command line: ``streetwatch drone FLIGHT.mp4|STILLS_DIR --config drone.yaml --out DIR``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error
from service.logging_setup import add_logging_arguments

__all__ = ["add_parsers", "cmd_drone"]


def _flight_id(path: Path) -> str:
    stem = path.name if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.")[:64] or "flight"


def cmd_drone(args: argparse.Namespace) -> int:
    from service.config import AppConfig, load_config
    from service.drone import FlightInput, run_flight
    from service.drone_config import DroneCameraConfig, DroneConfig

    if args.list_cameras:
        from detector.geo.profiles import PROFILES

        for profile in PROFILES.values():
            models = ", ".join(profile.exif_models) if getattr(profile, "exif_models", None) else ""
            print(f"{profile.name}\t{models}")
        return EXIT_OK
    if args.path is None or args.out is None:
        _error("give the flight (a video or a folder of stills) and --out DIR (or --list-cameras)")
        return EXIT_USER_ERROR
    from service.logging_setup import configure_logging

    configure_logging(args.log_level, args.log_format or "text")
    config = load_config(args.config) if args.config else AppConfig(config_version=1)
    drone = config.drone or DroneConfig()
    if args.camera:
        from detector.geo.profiles import get_profile

        get_profile(args.camera)  # an unknown camera: one line listing the known ones (not pydantic's summary)
        drone = drone.model_copy(update={"camera": DroneCameraConfig(profile=args.camera)})
    if args.timezone:
        from detector.schedule import ScheduleError, load_timezone

        try:  # model_copy does not validate: check here so the line names the option
            load_timezone(args.timezone)
        except ScheduleError as exc:
            raise ValueError(f"--timezone: {exc}") from None
        drone = drone.model_copy(update={"telemetry": drone.telemetry.model_copy(update={"timezone": args.timezone})})
    config = config.model_copy(update={"drone": drone})
    inp = FlightInput.from_path(args.path, args.srt)
    flight_id = args.flight_id or _flight_id(Path(args.path))

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=0, desc="frames", unit="frame", file=sys.stderr, leave=False)

    def progress(p) -> None:
        if bar is None:
            return
        if p.frames_total and bar.total != p.frames_total:
            bar.total = p.frames_total
        bar.n = p.frames_done
        bar.set_postfix_str(f"{p.stage}, {p.findings} found" + (f", ETA {p.eta_s:.0f} s" if p.eta_s else ""),
                            refresh=False)
        bar.refresh()

    try:
        result = run_flight(inp, config, Path(args.out), flight_id=flight_id, name=args.name or flight_id,
                            progress=progress, threads=args.threads)
    finally:
        if bar is not None:
            bar.close()
    s = result.summary
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s["by_kind"].items())) or "none"
    print(f"{flight_id}: {s['frames']['processed']} of {s['frames']['total']} frames analysed, "
          f"{s['findings']} findings, violations: {kinds}; {s['timings_s']['total']:.1f} s"
          + (f" (realtime factor {s['realtime_factor']:.2f})" if s.get("realtime_factor") else ""))
    for note in s["notes"]:
        print(f"note: {note}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    p = sub.add_parser(
        "drone", help="analyse a drone flight: findings on the map, violations, evidence, a one-page report",
        description="Analyse a drone flight: a video with its DJI SRT telemetry (FLIGHT.SRT beside FLIGHT.mp4 is "
                    "found by name), or a folder of geotagged stills. Frames are sampled by ground distance, "
                    "detected tiled, georeferenced, merged on the map and checked against the configured GeoJSON "
                    "layers. Writes findings.geojson, track and footprints, evidence/ and report.html to --out.")
    p.add_argument("path", nargs="?", metavar="FLIGHT", help="a video file or a folder of geotagged JPEG stills")
    p.add_argument("--srt", metavar="FILE", help="the DJI SRT telemetry (default: the video's name with .SRT)")
    p.add_argument("--camera", metavar="PROFILE",
                   help="camera profile or EXIF model (overrides the config's drone.camera; --list-cameras)")
    p.add_argument("--config", metavar="FILE", help="configuration with a drone section (layers, rules, camera)")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("--flight-id", metavar="ID", help="id of the flight (default: the file or folder name)")
    p.add_argument("--name", metavar="TEXT", help="human-readable name of the flight")
    p.add_argument("--timezone", metavar="IANA", help="time zone of the drone's clock (overrides the config)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--list-cameras", action="store_true", help="list the known camera profiles and exit")
    add_logging_arguments(p, default_level="warning")
    p.set_defaults(func=cmd_drone)
