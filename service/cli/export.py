"""Export job: ``streetwatch export --from --to --out cases.zip`` (the zip of `service.export`).

Reads the case database and the evidence folder as ``serve`` finds them (``--settings FILE``, or ``--data-dir``
with ``cases.sqlite3`` and ``evidence/``), never changes the database, and writes the same zip as
``GET /api/v1/export``: evidence blurred under the settings' ``privacy`` policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from service.cli.common import EXIT_OK

__all__ = ["add_parsers", "cmd_export", "parse_aware_time"]


def parse_aware_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with its zone (``2026-06-01T00:00+08:00``, ``...Z``).

    Raises:
        ValueError: Not ISO 8601, or no zone (a city's day is not UTC's: the zone must be said).
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: not an ISO 8601 time (e.g. 2026-06-01T00:00+08:00)") from None
    if value.tzinfo is None:
        raise ValueError(f"{option} {text!r}: give the time zone, e.g. {text}+08:00 or {text}Z")
    return value


def _settings(args: argparse.Namespace):
    from service.settings import Settings, load_settings_file

    if args.settings is not None and args.data_dir is not None:
        raise ValueError("give --settings or --data-dir, not both")
    if args.settings is not None:
        settings = load_settings_file(args.settings)
    else:
        from service.cli.serve import default_serve_dir

        data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_serve_dir()
        settings = Settings(database_path=data_dir / "cases.sqlite3", evidence_dir=data_dir / "evidence")
    if not settings.database_url and not Path(settings.database_path).is_file():
        raise FileNotFoundError(f"{settings.database_path}: no such case database")
    return settings


def cmd_export(args: argparse.Namespace) -> int:
    from service.cases import CaseFilter, CaseStore
    from service.db import DatabaseSettings, make_engine, make_session_factory
    from service.db.models import CASE_STATUSES
    from service.export import iter_export_zip, public_evidence_resolver, select_case_ids
    from service.privacy import PrivacyPolicy, PublicCopies

    if args.status is not None and args.status not in CASE_STATUSES:
        raise ValueError(f"--status {args.status!r}: not one of {', '.join(CASE_STATUSES)}")
    seen_from = parse_aware_time(args.seen_from, "--from") if args.seen_from else None
    seen_to = parse_aware_time(args.seen_to, "--to") if args.seen_to else None
    if seen_from is not None and seen_to is not None and seen_to <= seen_from:
        raise ValueError("--to: must be after --from")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out}: exists (use --force to replace it)")
    settings = _settings(args)
    engine = make_engine(DatabaseSettings(path=settings.database_path, url=settings.database_url,
                                          busy_timeout_s=settings.busy_timeout_s))
    try:
        session_factory = make_session_factory(engine)
        filters = CaseFilter(status=args.status, camera_id=args.camera, flight_id=args.flight, kind=args.kind,
                             seen_from=seen_from, seen_to=seen_to)
        ids = select_case_ids(session_factory, filters, args.max_cases or settings.export_max_cases)
        copies = PublicCopies(PrivacyPolicy.from_settings(settings.privacy))
        _ = copies.detectors  # a missing cascade is one error now, not a reason on every image
        resolve = public_evidence_resolver(settings, copies)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside --out and renamed at the end: an interrupted export leaves no half zip under that name.
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                for chunk in iter_export_zip(CaseStore(session_factory), ids, resolve):
                    f.write(chunk)
                    size += len(chunk)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        engine.dispose()
    print(json.dumps({"out": str(out), "cases": len(ids), "bytes": size}), file=sys.stderr)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    p = sub.add_parser("export", help="cases of a time range with their blurred evidence as a zip (CSV, GeoJSON)",
                       description="Write a zip with cases.csv (UTF-8 with BOM), cases.geojson and "
                                   "evidence/<case_id>/<file> (people, faces and plates blurred) for the cases "
                                   "observed in [--from, --to) that match the filters.")
    p.add_argument("--from", dest="seen_from", metavar="TIME", help="observed at or after (ISO 8601 with zone)")
    p.add_argument("--to", dest="seen_to", metavar="TIME", help="observed before (ISO 8601 with zone)")
    # Checked when the command runs: the statuses live in service.db.models, which the parser must not load.
    p.add_argument("--status", help="only cases in this status (pending, confirmed, rejected, posted, post_failed, "
                                    "merged)")
    p.add_argument("--kind", help="only cases of this violation kind")
    p.add_argument("--camera", help="only cases of this camera")
    p.add_argument("--flight", help="only cases of this drone flight")
    p.add_argument("--out", required=True, metavar="ZIP", help="the zip to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--max-cases", type=int, default=None, metavar="N",
                   help="refuse more cases than this (default: export_max_cases of the settings, 5000)")
    p.add_argument("--settings", metavar="FILE", help="service settings (YAML): database, evidence_dir, privacy")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="without --settings: the folder of cases.sqlite3 and evidence/ (as serve --data-dir)")
    p.set_defaults(func=cmd_export)
