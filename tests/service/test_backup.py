"""`service.backup` and ``streetwatch backup`` / ``restore``: a real SQLite store backed up while a writer keeps
inserting, restored into a new folder; the PostgreSQL path (pg_dump / pg_restore) where the suite has a server;
bad backups, bad targets and a missing pg_dump refused with one clear line."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from service.backup import (MANIFEST_NAME, BackupError, backup_database, libpq_url, pg_dump_command, read_manifest,
                            restore_backup)
from service.cases import CaseSettings, CaseStore
from service.cli import main
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from tests.service.test_cases import FakeClock, make_origin, make_violation

HEAD = "0005"


def make_store(db: DatabaseSettings, revision: str = "head") -> tuple[CaseStore, object]:
    engine = make_engine(db)
    upgrade_schema(engine, revision)
    return CaseStore(make_session_factory(engine), CaseSettings(adapters=("open311",)), clock=FakeClock()), engine


def add_case(store: CaseStore, evidence_dir: Path, n: int, *, confirm: bool = False) -> int:
    """Case `n` in a zone of its own (no dedupe), with one evidence file written under `evidence_dir`."""
    image = evidence_dir / "cam-1" / "2026-06-01" / f"case-{n}.jpg"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\xff\xd8jpeg-" + str(n).encode())
    case = store.ingest(make_violation(f"v{n}", zone_id=f"z{n}"), {"annotated": str(image)}, origin=make_origin())
    if confirm:
        store.confirm(case.id, "alice")  # queues one outbox row (adapter open311)
    return case.id


def rows(db: DatabaseSettings) -> tuple[list[tuple], list[tuple], list[str]]:
    """(cases, outbox rows, evidence paths) of `db`, in id order."""
    engine = make_engine(db)
    try:
        with engine.connect() as c:
            cases = [tuple(r) for r in c.execute(text("SELECT id, dedupe_key, status FROM cases ORDER BY id"))]
            outbox = [tuple(r) for r in c.execute(text("SELECT id, case_id, idempotency_key FROM outbox ORDER BY id"))]
            paths = [r[0] for r in c.execute(text("SELECT path FROM evidence ORDER BY id"))]
    finally:
        engine.dispose()
    return cases, outbox, paths


@pytest.fixture
def source(tmp_path):
    """A SQLite store with 6 cases (3 confirmed: 3 outbox rows) and their evidence files."""
    db = DatabaseSettings(path=tmp_path / "src" / "cases.sqlite3")
    evidence = tmp_path / "src" / "evidence"
    store, engine = make_store(db)
    for n in range(6):
        add_case(store, evidence, n, confirm=n % 2 == 0)
    yield db, evidence, store
    engine.dispose()


def test_backup_while_a_writer_inserts_restores_a_consistent_state(tmp_path, source):
    db, evidence, store = source
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        n = 100
        try:
            while not stop.is_set():
                written.append(add_case(store, evidence, n, confirm=n % 3 == 0))
                n += 1
        except BaseException as exc:  # surfaced below: a writer that died would make the test pass vacuously
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:  # the backup starts while the writer is busy
            stop.wait(0.01)
        manifest = backup_database(db, evidence, tmp_path / "backup")
        during = len(written)
        while len(written) < during + 5:  # and the writer goes on after it
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert not errors
    copy = sqlite3.connect(tmp_path / "backup" / "cases.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()
    assert manifest.backend == "sqlite" and manifest.schema_revision == HEAD
    assert 6 + 5 <= manifest.cases < 6 + len(written)
    assert manifest.evidence_dir == str(evidence.resolve()) and manifest.evidence_files >= manifest.cases

    dest_db = DatabaseSettings(path=tmp_path / "dst" / "cases.sqlite3")
    dest_evidence = tmp_path / "dst" / "evidence"
    report = restore_backup(tmp_path / "backup", dest_db, dest_evidence)
    assert not report.migrated and report.schema_revision == HEAD
    src_cases, src_outbox, _ = rows(db)
    got_cases, got_outbox, got_paths = rows(dest_db)
    # A consistent state: exactly the first cases (and their outbox rows) in commit order, none half-written.
    # The writer inserts a case and confirms it in two transactions, so the backup may fall between them: then
    # the last case is still pending and has no outbox row yet, which is a consistent state too.
    assert len(got_cases) == manifest.cases and got_cases[:-1] == src_cases[:manifest.cases - 1]
    last = src_cases[manifest.cases - 1]
    assert got_cases[-1] in (last, (*last[:2], "pending"))
    assert len(got_outbox) == manifest.outbox_rows and got_outbox == src_outbox[:len(got_outbox)]
    last_case = got_cases[-1][0]
    caught_between = got_cases[-1] != last
    assert all(case_id <= last_case for _, case_id, _ in got_outbox)
    assert [r for r in src_outbox if r[1] < last_case or (r[1] == last_case and not caught_between)] == got_outbox
    # Every evidence row names a file in the new folder, with the bytes the writer wrote.
    assert report.evidence_rows_moved == len(got_paths) >= manifest.cases
    for path in map(Path, got_paths):
        assert path.is_relative_to(dest_evidence.resolve())
        assert path.read_bytes() == (evidence / path.relative_to(dest_evidence.resolve())).read_bytes()


def test_restore_refuses_a_non_empty_database_unless_forced(tmp_path, source):
    db, evidence, store = source
    backup_database(db, evidence, tmp_path / "backup")
    add_case(store, evidence, 50)  # after the backup: gone once restored over
    with pytest.raises(BackupError, match=r"cases.sqlite3: not empty; restore into a new database or give --force"):
        restore_backup(tmp_path / "backup", db, evidence)
    restore_backup(tmp_path / "backup", db, evidence, force=True)
    assert len(rows(db)[0]) == 6


def test_restore_refuses_a_non_empty_evidence_folder_unless_forced(tmp_path, source):
    db, evidence, _ = source
    backup_database(db, evidence, tmp_path / "backup")
    other = tmp_path / "other-evidence"
    other.mkdir()
    (other / "x.jpg").write_bytes(b"x")
    new_db = DatabaseSettings(path=tmp_path / "new.sqlite3")
    with pytest.raises(BackupError, match="other-evidence: not empty; give --force"):
        restore_backup(tmp_path / "backup", new_db, other)
    tables = sqlite3.connect(tmp_path / "new.sqlite3").execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # nothing restored


def test_an_older_backup_is_migrated_up(tmp_path):
    db = DatabaseSettings(path=tmp_path / "old.sqlite3")
    engine = make_engine(db)
    upgrade_schema(engine, "0004")  # a streetwatch before the outbox-attempt columns
    engine.dispose()
    manifest = backup_database(db, None, tmp_path / "backup")
    assert manifest.schema_revision == "0004" and manifest.evidence_dir is None and manifest.evidence_files == 0
    assert not (tmp_path / "backup" / "evidence").exists()
    report = restore_backup(tmp_path / "backup", DatabaseSettings(path=tmp_path / "new.sqlite3"), None)
    assert report.migrated and report.schema_revision == HEAD


# --- bad input -------------------------------------------------------------------------------------------

def _edit_manifest(backup: Path, **changes) -> None:
    path = backup / MANIFEST_NAME
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del raw[key]
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / MANIFEST_NAME).unlink(), "no manifest"),
    (lambda b: (b / MANIFEST_NAME).write_text("{not json"), "not JSON"),
    (lambda b: (b / MANIFEST_NAME).write_text("[1]"), "not a JSON object"),
    (lambda b: _edit_manifest(b, cases=KeyError), "field 'cases' is missing"),
    (lambda b: _edit_manifest(b, cases="7"), r"field 'cases' has the wrong type \(str\)"),
    (lambda b: _edit_manifest(b, format_version=99), "format_version 99 is newer"),
    (lambda b: _edit_manifest(b, backend="mysql"), "backend 'mysql' is neither"),
    (lambda b: _edit_manifest(b, database_file="../cases.sqlite3"), "is not a file in"),
    (lambda b: (b / "cases.sqlite3").write_bytes(b"damaged"), "SHA-256 differs from the manifest's"),
    (lambda b: _edit_manifest(b, backend="postgresql"), "a postgresql backup cannot be restored into SQLite"),
    (lambda b: _edit_manifest(b, schema_revision="9999"), "schema revision '9999' is unknown"),
    (lambda b: _edit_manifest(b, cases=7), "restored 6 cases and 3 outbox rows, the manifest says 7 and 3"),
    (lambda b: shutil.rmtree(b / "evidence"), "evidence: missing, though the manifest lists"),
])
def test_bad_backups_are_refused(tmp_path, source, damage, message):
    db, evidence, _ = source
    backup = tmp_path / "backup"
    backup_database(db, evidence, backup)
    damage(backup)
    with pytest.raises(BackupError, match=message):
        restore_backup(backup, DatabaseSettings(path=tmp_path / "new.sqlite3"), tmp_path / "new-evidence")


@pytest.mark.parametrize("case, message", [
    ("out_not_empty", "backup: not an empty folder"),
    ("no_database", "missing.sqlite3: no such database file"),
    ("no_evidence_dir", "nowhere: no such folder"),
    ("not_streetwatch", "no alembic_version table"),
])
def test_bad_backup_requests_are_refused(tmp_path, source, case, message):
    db, evidence, _ = source
    out = tmp_path / "backup"
    if case == "out_not_empty":
        out.mkdir()
        (out / "old").write_text("x")
    elif case == "no_database":
        db = DatabaseSettings(path=tmp_path / "missing.sqlite3")
    elif case == "no_evidence_dir":
        evidence = tmp_path / "nowhere"
    else:
        other = tmp_path / "other.sqlite3"
        sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
        db = DatabaseSettings(path=other)
    with pytest.raises(BackupError, match=message):
        backup_database(db, evidence, out)


def test_without_pg_dump_the_message_gives_the_command(tmp_path):
    url = "postgresql+psycopg://sw:pw@db.example/streetwatch?options=-csearch_path%3Dcity"
    with pytest.raises(BackupError) as info:
        backup_database(DatabaseSettings(url=url), None, tmp_path / "b", which=lambda _: None)
    assert str(info.value).startswith("pg_dump is not on PATH")
    assert str(info.value).endswith(f"--schema city --dbname '{libpq_url(url)}'")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://sw@db/streetwatch", ["--dbname", "postgresql://sw@db/streetwatch"]),
    ("postgresql://sw:pw@db:5433/sw", ["--dbname", "postgresql://sw:pw@db:5433/sw"]),
    ("postgresql+psycopg://sw@/sw?host=/tmp/pg&options=-csearch_path%3Dt1",
     ["--schema", "t1", "--dbname", "postgresql://sw@/sw?host=%2Ftmp%2Fpg&options=-csearch_path%3Dt1"]),
])
def test_pg_dump_command(url, expected):
    assert pg_dump_command(url, Path("b/cases.pgdump")) == [
        "pg_dump", "-Fc", "--no-owner", "--file", "b/cases.pgdump", *expected]


def test_libpq_url_refuses_other_databases():
    with pytest.raises(BackupError, match="is not a PostgreSQL URL"):
        libpq_url("sqlite:///x.db")


# --- PostgreSQL ------------------------------------------------------------------------------------------

def test_postgresql_backup_and_forced_restore(tmp_path, pg_schema_url):
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not on PATH")
    db = DatabaseSettings(url=pg_schema_url)
    store, engine = make_store(db)
    evidence = tmp_path / "evidence"
    for n in range(4):
        add_case(store, evidence, n, confirm=n < 2)
    manifest = backup_database(db, evidence, tmp_path / "backup")
    assert (manifest.backend, manifest.cases, manifest.outbox_rows, manifest.schema_revision) == (
        "postgresql", 4, 2, HEAD)
    assert read_manifest(tmp_path / "backup") == manifest
    before = rows(db)
    add_case(store, evidence, 9)  # after the backup
    engine.dispose()
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(tmp_path / "backup", db, evidence)
    report = restore_backup(tmp_path / "backup", db, evidence, force=True)
    assert report.schema_revision == HEAD and rows(db) == before


# --- command line ----------------------------------------------------------------------------------------

def test_cli_backup_and_restore(tmp_path, source, capsys):
    db, evidence, _ = source
    data_dir = Path(db.path).parent
    assert main(["backup", "--data-dir", str(data_dir), "--out", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().err)["cases"] == 6
    assert main(["backup", "--data-dir", str(data_dir), "--out", str(tmp_path / "b")]) == 2
    assert "b: not an empty folder" in capsys.readouterr().err
    new_dir = tmp_path / "new"
    assert main(["restore", "--from", str(tmp_path / "b"), "--data-dir", str(new_dir)]) == 0
    assert json.loads(capsys.readouterr().err)["evidence_files"] == 6
    assert rows(DatabaseSettings(path=new_dir / "cases.sqlite3"))[0] == rows(db)[0]
    assert main(["restore", "--from", str(tmp_path / "b"), "--data-dir", str(new_dir)]) == 2
    assert capsys.readouterr().err.startswith("streetwatch: error: database ")
    assert main(["restore", "--from", str(tmp_path / "b"), "--settings", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: no such settings file" in capsys.readouterr().err
