"""Backups of the case database and the evidence folder, and their restore (``streetwatch backup`` / ``restore``).

A backup is a folder::

    manifest.json      written last: a folder without it is an unfinished backup and is refused
    cases.sqlite3      SQLite: a copy made with SQLite's online backup API (consistent while the service runs)
    cases.pgdump       PostgreSQL: ``pg_dump -Fc`` (custom format, read back with ``pg_restore``)
    evidence/          a copy of the evidence folder (absent with ``include_evidence=False``)

SQLite is copied with `sqlite3.Connection.backup` in one step (``pages=-1``): the whole copy is read inside one
read transaction, so it is one consistent state of the database even while camera workers and reviewers keep
writing (in WAL mode a reader does not block writers). A file copy (``cp cases.sqlite3``) is not: it can catch a
page written half-way and misses the commits still in the ``-wal`` file.

PostgreSQL is dumped by ``pg_dump -Fc`` run on an exported snapshot (``pg_export_snapshot`` /
``pg_dump --snapshot``), so the counts in the manifest describe exactly the rows in the dump. Without
``pg_dump`` on PATH, `BackupError` says the command to run by hand.

Example:
    >>> from service.db import DatabaseSettings
    >>> manifest = backup_database(DatabaseSettings(path="var/cases.sqlite3"), Path("var/evidence"),
    ...                            Path("backups/2026-06-01"))                       # doctest: +SKIP
    >>> manifest.cases, manifest.schema_revision                                     # doctest: +SKIP
    (412, '0005')
    >>> restore_backup(Path("backups/2026-06-01"), DatabaseSettings(path="new/cases.sqlite3"),
    ...                Path("new/evidence"))                                         # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, make_url, text

from detector.errors import StreetwatchError
from service.db import DatabaseSettings, make_engine, upgrade_schema
from service.evidence import file_sha256

__all__ = ["BackupError", "BackupManifest", "MANIFEST_NAME", "MANIFEST_VERSION", "RestoreReport", "backup_database",
           "libpq_url", "pg_dump_command", "read_manifest", "restore_backup"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
SQLITE_FILE = "cases.sqlite3"
PG_FILE = "cases.pgdump"
EVIDENCE_FOLDER = "evidence"


class BackupError(StreetwatchError):
    """A backup or restore that cannot be made; the message names the file or setting and the reason."""


@dataclass(frozen=True)
class BackupManifest:
    """What ``manifest.json`` records about one backup.

    Attributes:
        format_version: `MANIFEST_VERSION` of the code that wrote it.
        created_at: When the backup was taken, ISO 8601 UTC.
        backend: ``sqlite`` or ``postgresql``.
        database_file: The database copy's file name within the backup folder.
        database_sha256: Hex SHA-256 of that file.
        schema_revision: The alembic revision of the copied database (None: an unversioned database).
        cases: Rows in ``cases`` in the copy.
        outbox_rows: Rows in ``outbox`` in the copy.
        evidence_dir: The evidence folder backed up, absolute (evidence rows name files under it); None when
            evidence was left out.
        evidence_files: Files copied from it (0 when left out).
    """

    format_version: int
    created_at: str
    backend: str
    database_file: str
    database_sha256: str
    schema_revision: str | None
    cases: int
    outbox_rows: int
    evidence_dir: str | None
    evidence_files: int


@dataclass(frozen=True)
class RestoreReport:
    """What `restore_backup` did.

    Attributes:
        manifest: The backup's manifest.
        schema_revision: The database's revision after the restore (migrated up when the backup was older).
        migrated: Whether migrations ran after the copy was restored.
        evidence_files: Evidence files copied into the evidence folder.
        evidence_rows_moved: Evidence rows whose path was rewritten from the old to the new evidence folder.
    """

    manifest: BackupManifest
    schema_revision: str | None
    migrated: bool
    evidence_files: int
    evidence_rows_moved: int


# --- helpers ---------------------------------------------------------------------------------------------

def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _is_sqlite(db: DatabaseSettings) -> bool:
    return db.sqlalchemy_url().startswith("sqlite")


def _sqlite_path(db: DatabaseSettings) -> Path:
    url = make_url(db.sqlalchemy_url())
    if not url.database or url.database == ":memory:":
        raise BackupError(f"database {db.sqlalchemy_url()!r}: an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq connection URI (what ``pg_dump``/``pg_restore`` take) of a SQLAlchemy PostgreSQL URL.

    Example:
        >>> libpq_url("postgresql+psycopg://sw:pw@db.example/streetwatch")
        'postgresql://sw:pw@db.example/streetwatch'
    """
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() != "postgresql":
        raise BackupError(f"database_url: {url.render_as_string()!r} is not a PostgreSQL URL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_schema(sqlalchemy_url: str) -> str | None:
    """The schema a ``-csearch_path=NAME`` connection option selects (a service using its own schema), if any."""
    options = make_url(sqlalchemy_url).query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    for word in str(options).split():
        if word.startswith("-csearch_path="):
            return word.split("=", 1)[1].split(",")[0].strip('"') or None
    return None


def pg_dump_command(sqlalchemy_url: str, out_file: Path, snapshot: str | None = None) -> list[str]:
    """The ``pg_dump -Fc`` command line that dumps the database of `sqlalchemy_url` into `out_file`.

    Only the schema the URL's ``search_path`` option selects is dumped when it names one.

    Example:
        >>> pg_dump_command("postgresql+psycopg://sw@db/streetwatch", Path("b/cases.pgdump"))
        ['pg_dump', '-Fc', '--no-owner', '--file', 'b/cases.pgdump', '--dbname', 'postgresql://sw@db/streetwatch']
    """
    command = ["pg_dump", "-Fc", "--no-owner", "--file", str(out_file)]
    schema = _pg_schema(sqlalchemy_url)
    if schema:
        command += ["--schema", schema]
    if snapshot:
        command += ["--snapshot", snapshot]
    return command + ["--dbname", libpq_url(sqlalchemy_url)]


def _counts(connection: Any) -> tuple[str | None, int, int]:
    """(alembic revision, cases, outbox rows) seen by `connection` (a SQLAlchemy connection)."""
    try:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # no alembic_version table: a database never migrated
        raise BackupError(f"the database has no alembic_version table (not a streetwatch database, or never "
                          f"migrated): {str(exc).splitlines()[0]}") from exc
    cases = connection.execute(text("SELECT count(*) FROM cases")).scalar_one()
    outbox = connection.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    return revision, int(cases), int(outbox)


def _copy_evidence(source: Path, dest: Path) -> int:
    """Copy the evidence tree `source` to `dest` (which must not exist); returns the number of files copied.

    A file the retention sweep deletes while the copy runs is skipped, not an error: its row is deleted in the
    same sweep, so the backup would not refer to it either way.
    """
    copied = 0

    def copy(src: str, dst: str) -> str:
        nonlocal copied
        try:
            result = shutil.copy2(src, dst)
        except FileNotFoundError:
            return dst
        copied += 1
        return result

    shutil.copytree(source, dest, copy_function=copy)
    return copied


def _write_manifest(out_dir: Path, manifest: BackupManifest) -> None:
    tmp = out_dir / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST_NAME)  # atomic: a manifest is there whole or not at all


# --- backup ----------------------------------------------------------------------------------------------

def backup_database(db: DatabaseSettings, evidence_dir: Path | None, out_dir: Path, *,
                    now: Callable[[], datetime] = _utc_now,
                    which: Callable[[str], str | None] = shutil.which) -> BackupManifest:
    """Back up the database of `db` and (unless `evidence_dir` is None) the evidence folder into `out_dir`.

    Args:
        db: The service's database (a SQLite file or a PostgreSQL URL).
        evidence_dir: The evidence folder, or None to leave the evidence out.
        out_dir: A new or empty folder for the backup.
        now: Clock of the manifest's ``created_at``.
        which: Finds ``pg_dump`` on PATH (tests replace it).

    Returns:
        The manifest, also written to ``out_dir/manifest.json`` once everything else is in place.

    Raises:
        BackupError: `out_dir` is not empty, the database is missing or not a streetwatch database, the evidence
            folder is missing, or (PostgreSQL) ``pg_dump`` is not on PATH (the message gives the command to run)
            or fails.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BackupError(f"--out {out_dir}: not an empty folder (a backup goes into a new or empty folder)")
    if evidence_dir is not None and not Path(evidence_dir).is_dir():
        raise BackupError(f"evidence_dir {evidence_dir}: no such folder (or leave evidence out with --no-evidence)")
    if _is_sqlite(db):
        source = _sqlite_path(db)
        if not source.is_file():
            raise BackupError(f"database_path {source}: no such database file")
        out_dir.mkdir(parents=True, exist_ok=True)
        database_file = out_dir / SQLITE_FILE
        revision, cases, outbox = _backup_sqlite(source, database_file)
        backend = "sqlite"
    else:
        url = db.sqlalchemy_url()
        if which("pg_dump") is None:
            raise BackupError("pg_dump is not on PATH: install the PostgreSQL client (the same major version as the "
                              "server or newer) or run on a machine that has it: "
                              + shlex.join(pg_dump_command(url, out_dir / PG_FILE)))
        out_dir.mkdir(parents=True, exist_ok=True)
        database_file = out_dir / PG_FILE
        revision, cases, outbox = _backup_postgresql(db, database_file)
        backend = "postgresql"
    evidence_files = 0
    if evidence_dir is not None:
        evidence_files = _copy_evidence(Path(evidence_dir), out_dir / EVIDENCE_FOLDER)
    manifest = BackupManifest(
        format_version=MANIFEST_VERSION, created_at=now().astimezone(timezone.utc).isoformat(), backend=backend,
        database_file=database_file.name, database_sha256=file_sha256(database_file), schema_revision=revision,
        cases=cases, outbox_rows=outbox,
        evidence_dir=str(Path(evidence_dir).resolve()) if evidence_dir is not None else None,
        evidence_files=evidence_files)
    _write_manifest(out_dir, manifest)
    return manifest


def _backup_sqlite(source: Path, dest: Path) -> tuple[str | None, int, int]:
    # The service's busy timeout, so a checkpoint in progress is waited for rather than failing the backup.
    src = sqlite3.connect(source, timeout=30.0)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst, pages=-1)  # one step: one read transaction, one consistent state
    except sqlite3.Error as exc:
        raise BackupError(f"database_path {source}: backup failed: {exc}") from exc
    finally:
        dst.close()
        src.close()
    # Counted on the copy, so the manifest describes exactly what was saved; the copy is then made a plain
    # rollback-journal file (no -wal beside it), the single file the manifest's hash covers.
    dst = sqlite3.connect(dest)
    try:
        dst.execute("PRAGMA journal_mode=DELETE")
        try:
            revision = dst.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            raise BackupError(f"database_path {source}: no alembic_version table (not a streetwatch database, or "
                              f"never migrated): {exc}") from exc
        cases = dst.execute("SELECT count(*) FROM cases").fetchone()[0]
        outbox = dst.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        dst.close()
    return (revision[0] if revision else None), int(cases), int(outbox)


def _backup_postgresql(db: DatabaseSettings, dest: Path) -> tuple[str | None, int, int]:
    engine = make_engine(db)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                # pg_dump reads the snapshot this transaction exported while it stays open: the counts and the
                # dump see the same rows even while the service writes.
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                found = _counts(connection)
                command = pg_dump_command(db.sqlalchemy_url(), dest, snapshot)
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                    raise BackupError(f"pg_dump failed (exit {done.returncode}): {last}")
    finally:
        engine.dispose()
    return found


# --- restore ---------------------------------------------------------------------------------------------

def read_manifest(backup_dir: Path) -> BackupManifest:
    """The manifest of the backup in `backup_dir`, checked against the database file it names.

    Raises:
        BackupError: No manifest (not a backup, or an unfinished one), a field missing or of the wrong type, a
            newer format, a missing database file or one whose SHA-256 differs from the manifest's.
    """
    path = Path(backup_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BackupError(f"{path}: no manifest (not a streetwatch backup, or an unfinished one)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BackupError(f"{path}: not a JSON object")
    types: dict[str, tuple[type, ...]] = {
        "format_version": (int,), "created_at": (str,), "backend": (str,), "database_file": (str,),
        "database_sha256": (str,), "schema_revision": (str, type(None)), "cases": (int,), "outbox_rows": (int,),
        "evidence_dir": (str, type(None)), "evidence_files": (int,)}
    for field, allowed in types.items():
        if field not in raw:
            raise BackupError(f"{path}: field {field!r} is missing")
        if not isinstance(raw[field], allowed) or isinstance(raw[field], bool):
            raise BackupError(f"{path}: field {field!r} has the wrong type ({type(raw[field]).__name__})")
    manifest = BackupManifest(**{k: raw[k] for k in types})
    if manifest.format_version > MANIFEST_VERSION:
        raise BackupError(f"{path}: format_version {manifest.format_version} is newer than this streetwatch "
                          f"reads ({MANIFEST_VERSION}); restore with a newer streetwatch")
    if manifest.backend not in ("sqlite", "postgresql"):
        raise BackupError(f"{path}: backend {manifest.backend!r} is neither sqlite nor postgresql")
    database_file = Path(backup_dir) / manifest.database_file
    if Path(manifest.database_file).name != manifest.database_file or not database_file.is_file():
        raise BackupError(f"{path}: database_file {manifest.database_file!r} is not a file in {backup_dir}")
    if file_sha256(database_file) != manifest.database_sha256:
        raise BackupError(f"{database_file}: SHA-256 differs from the manifest's (the file was changed or damaged)")
    return manifest


def _known_revisions(engine: Engine) -> set[str]:
    from alembic.script import ScriptDirectory

    from service.db.session import alembic_config

    return {s.revision for s in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()}


def _has_tables(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(engine).get_table_names())


def restore_backup(backup_dir: Path, db: DatabaseSettings, evidence_dir: Path | None, *,
                   force: bool = False) -> RestoreReport:
    """Restore the backup in `backup_dir` into the database `db` and the evidence folder `evidence_dir`.

    The manifest and the database file's hash are checked first; the schema is then migrated up to this code's
    head when the backup is older, evidence rows are pointed at `evidence_dir` (they name files under the
    backed-up folder), and the restored counts are compared with the manifest's. Stop the service first.

    Args:
        backup_dir: A folder `backup_database` wrote.
        db: Where to restore the database; it must be empty (no tables) unless `force`.
        evidence_dir: Where to copy the evidence; it must be absent or empty unless `force` (files of the
            same name are then replaced). None: leave the evidence out.
        force: Overwrite a non-empty database and evidence folder.

    Raises:
        BackupError: A bad manifest or database file (see `read_manifest`), a backup of the other backend, a
            schema revision this code does not know (a backup from a newer streetwatch), a non-empty target
            without `force`, or counts that differ after the restore.
    """
    backup_dir = Path(backup_dir)
    manifest = read_manifest(backup_dir)
    sqlite = _is_sqlite(db)
    if manifest.backend != ("sqlite" if sqlite else "postgresql"):
        raise BackupError(f"{backup_dir}: a {manifest.backend} backup cannot be restored into "
                          f"{'SQLite' if sqlite else 'PostgreSQL'} (copy the rows across by hand)")
    engine = make_engine(db)
    try:
        if manifest.schema_revision is not None and manifest.schema_revision not in _known_revisions(engine):
            raise BackupError(f"{backup_dir}: schema revision {manifest.schema_revision!r} is unknown to this "
                              f"streetwatch (a backup from a newer version); restore with that version")
        if not force and _has_tables(engine):
            raise BackupError(f"database {_describe(db)}: not empty; restore into a new database or give --force "
                              f"to overwrite it")
        evidence_target = Path(evidence_dir) if evidence_dir is not None else None
        if evidence_target is not None and manifest.evidence_dir is not None and not force \
                and evidence_target.exists() and any(evidence_target.iterdir()):
            raise BackupError(f"evidence_dir {evidence_target}: not empty; give --force to copy over it")
        engine.dispose()  # nothing may hold the database while it is replaced
        database_file = backup_dir / manifest.database_file
        if sqlite:
            _restore_sqlite(database_file, _sqlite_path(db))
        else:
            _restore_postgresql(database_file, db)
        with engine.connect() as connection:
            before = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        upgrade_schema(engine)
        moved = 0
        with engine.begin() as connection:
            after, cases, outbox = _counts(connection)
            if manifest.evidence_dir is not None and evidence_target is not None:
                moved = _move_evidence_rows(connection, Path(manifest.evidence_dir), evidence_target.resolve())
        if (cases, outbox) != (manifest.cases, manifest.outbox_rows):
            raise BackupError(f"{backup_dir}: restored {cases} cases and {outbox} outbox rows, the manifest says "
                              f"{manifest.cases} and {manifest.outbox_rows}")
    finally:
        engine.dispose()
    copied = 0
    source = backup_dir / EVIDENCE_FOLDER
    if evidence_target is not None and manifest.evidence_dir is not None:
        if not source.is_dir():
            raise BackupError(f"{source}: missing, though the manifest lists {manifest.evidence_files} evidence files")
        evidence_target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.rglob("*")):
            if path.is_file():
                target = evidence_target / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied += 1
    return RestoreReport(manifest=manifest, schema_revision=after, migrated=before != after,
                         evidence_files=copied, evidence_rows_moved=moved)


def _describe(db: DatabaseSettings) -> str:
    return str(_sqlite_path(db)) if _is_sqlite(db) else make_url(db.sqlalchemy_url()).render_as_string()


def _restore_sqlite(database_file: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # The backup API again (not a file copy): it replaces the target's pages through SQLite, so a -wal or
    # -shm file left beside an old target cannot be replayed over the restored data.
    src = sqlite3.connect(f"file:{database_file}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30.0)
    try:
        src.backup(dst, pages=-1)
    except sqlite3.Error as exc:
        raise BackupError(f"database_path {target}: restore failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


def _restore_postgresql(database_file: Path, db: DatabaseSettings) -> None:
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not on PATH: install the PostgreSQL client or run: " + shlex.join(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction",
             "--dbname", libpq_url(db.sqlalchemy_url()), str(database_file)]))
    command = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction",
               "--dbname", libpq_url(db.sqlalchemy_url()), str(database_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"pg_restore failed (exit {done.returncode}): {last}")


def _move_evidence_rows(connection: Any, old_root: Path, new_root: Path) -> int:
    """Point evidence rows that name files under `old_root` at the same files under `new_root`."""
    if old_root == new_root:
        return 0
    moved = 0
    rows = connection.execute(text("SELECT id, path FROM evidence")).all()
    for row_id, stored in rows:
        path = Path(stored)
        if not path.is_absolute() or not path.is_relative_to(old_root):
            continue  # relative rows resolve under the evidence folder already; flight evidence lives elsewhere
        connection.execute(text("UPDATE evidence SET path = :path WHERE id = :id"),
                           {"path": str(new_root / path.relative_to(old_root)), "id": row_id})
        moved += 1
    return moved
