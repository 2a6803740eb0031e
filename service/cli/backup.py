"""Backup jobs: ``streetwatch backup`` and ``streetwatch restore`` (the logic is in `service.backup`).

Both find the database and the evidence folder as ``serve`` does: from ``--settings FILE``, or from
``--data-dir`` (``cases.sqlite3`` and ``evidence/`` there; default ``$XDG_DATA_HOME/streetwatch/serve``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from service.cli.common import EXIT_OK

__all__ = ["add_parsers", "cmd_backup", "cmd_restore"]


def _locations(args: argparse.Namespace):
    """(DatabaseSettings, evidence folder) from ``--settings`` or ``--data-dir``."""
    from service.db import DatabaseSettings

    if args.settings is not None and args.data_dir is not None:
        raise ValueError("give --settings or --data-dir, not both")
    if args.settings is None:
        from service.cli.serve import default_serve_dir

        data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_serve_dir()
        return DatabaseSettings(path=data_dir / "cases.sqlite3"), data_dir / "evidence"

    from service.backup import BackupError
    from service.settings import load_settings_file

    try:
        settings = load_settings_file(args.settings)
    except (FileNotFoundError, ValueError) as exc:
        raise BackupError(str(exc)) from None
    return (DatabaseSettings(path=settings.database_path, url=settings.database_url, busy_timeout_s=settings.busy_timeout_s),
            Path(settings.evidence_dir))


def cmd_backup(args: argparse.Namespace) -> int:
    from service.backup import backup_database

    db, evidence_dir = _locations(args)
    manifest = backup_database(db, None if args.no_evidence else evidence_dir, Path(args.out))
    print(json.dumps({"out": str(args.out), **asdict(manifest)}), file=sys.stderr)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from service.backup import restore_backup

    db, evidence_dir = _locations(args)
    report = restore_backup(Path(args.from_dir), db, None if args.no_evidence else evidence_dir, force=args.force)
    print(json.dumps({"from": str(args.from_dir), "cases": report.manifest.cases,
                      "outbox_rows": report.manifest.outbox_rows, "schema_revision": report.schema_revision,
                      "migrated": report.migrated, "evidence_files": report.evidence_files,
                      "evidence_rows_moved": report.evidence_rows_moved}), file=sys.stderr)
    return EXIT_OK


def _add_locations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", metavar="FILE", help="service settings (YAML/JSON): database and evidence_dir")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="without --settings: the folder of cases.sqlite3 and evidence/ (as serve --data-dir; "
                        "default: $XDG_DATA_HOME/streetwatch/serve)")
    p.add_argument("--no-evidence", action="store_true", help="leave the evidence folder out")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this job's commands to the ``streetwatch`` subcommands `sub`."""
    p = sub.add_parser("backup", help="back up the case database and the evidence folder (safe while serving)",
                       description="Copy the case database (SQLite: online backup API; PostgreSQL: pg_dump -Fc) and "
                                   "the evidence folder into --out, with manifest.json (time, schema revision, "
                                   "case and outbox counts, SHA-256 of the database copy).")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    _add_locations(p)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty database (stop the service first)",
                       description="Check the backup's manifest and database hash, restore the database and the "
                                   "evidence, and migrate the schema up when the backup is older.")
    p.add_argument("--from", dest="from_dir", required=True, metavar="DIR", help="a folder `backup` wrote")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty database and evidence folder")
    _add_locations(p)
    p.set_defaults(func=cmd_restore)
