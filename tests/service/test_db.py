"""The case database: migrations on a real SQLite file and on PostgreSQL (an empty schema per test, see
conftest.py), SQLite settings, UTC times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData, Table, inspect, select, text

from service.db import (Camera, DatabaseSettings, Evidence, create_schema, make_engine, make_session_factory,
                        upgrade_schema)
from service.db.models import Base

TABLES = {"cameras", "cases", "case_violations", "evidence", "audit", "outbox"}
HEAD = "0002"


def alembic_run(engine, action: str, revision: str) -> None:
    """`alembic upgrade|downgrade revision` on `engine` (as `upgrade_schema` does)."""
    from alembic import command

    from service.db.session import alembic_config

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def revision_of(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@pytest.fixture
def engine(db_settings):
    engine = make_engine(db_settings)
    yield engine
    engine.dispose()


def test_migrations_create_every_table_on_a_sqlite_file(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "sub" / "cases.db"))
    upgrade_schema(engine)
    assert (tmp_path / "sub" / "cases.db").is_file()


def test_migrations_upgrade_an_empty_database(engine):
    assert inspect(engine).get_table_names() == []
    upgrade_schema(engine)
    upgrade_schema(engine)  # idempotent: already at head
    names = set(inspect(engine).get_table_names())
    assert TABLES <= names and "alembic_version" in names
    assert revision_of(engine) == HEAD


def test_migrations_downgrade_to_nothing_and_upgrade_again(engine):
    upgrade_schema(engine)
    from alembic import command

    from service.db.session import alembic_config

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_schema(engine)
    assert TABLES <= set(inspect(engine).get_table_names())


def test_migration_0002_adds_evidence_boxes_and_keeps_existing_rows(engine):
    # A database at 0001 holding an evidence row: upgraded, the row survives with boxes NULL (not JSON null);
    # downgraded again, the column goes and the row stays.
    upgrade_schema(engine, "0001")
    assert "boxes" not in {c["name"] for c in inspect(engine).get_columns("evidence")}
    t = datetime(2026, 6, 1, 8, 0)  # naive UTC, as stored
    with engine.begin() as conn:
        tables = MetaData()
        cameras, cases, evidence = (Table(name, tables, autoload_with=conn)
                                    for name in ("cameras", "cases", "evidence"))
        conn.execute(cameras.insert().values(id="cam-1", name="Gate", source="", address="", grid_code="",
                                             timezone="UTC", enabled=True, created_at=t, updated_at=t))
        case_id = conn.execute(cases.insert().values(
            violation_id="v1", dedupe_key="cam-1|z1|stall_occupation", kind="stall_occupation", camera_id="cam-1",
            zone_id="z1", status="pending", first_seen=t, last_seen=t, dwell_s=0.0, score=0.8,
            boxes=[[1.0, 2.0, 3.0, 4.0]], track_ids=[1], address="", grid_code="", created_at=t, updated_at=t,
            version=1)).inserted_primary_key[0]
        conn.execute(evidence.insert().values(case_id=case_id, violation_id="v1", kind="original",
                                              path="/ev/v1.orig.jpg", ts=t, sha256="ab" * 32))

    upgrade_schema(engine)
    assert revision_of(engine) == HEAD
    with make_session_factory(engine)() as session:
        row = session.scalars(select(Evidence)).one()
        assert (row.case_id, row.kind, row.path, row.sha256, row.boxes) == (case_id, "original", "/ev/v1.orig.jpg",
                                                                            "ab" * 32, None)
        assert row.ts == t.replace(tzinfo=timezone.utc)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM evidence WHERE boxes IS NULL")).scalar() == 1

    # new rows store their boxes; downgrade drops them with the column and keeps the rows
    boxes = [{"xyxy": [1.0, 2.0, 3.0, 4.0], "class_name": "stall", "track_id": 1}]
    with make_session_factory(engine).begin() as session:
        session.add(Evidence(case_id=case_id, violation_id="v1", kind="crop", path="/ev/v1.crop.jpg",
                             ts=t.replace(tzinfo=timezone.utc), boxes=boxes))
    with make_session_factory(engine)() as session:
        assert [e.boxes for e in session.scalars(select(Evidence).order_by(Evidence.id))] == [None, boxes]
    alembic_run(engine, "downgrade", "0001")
    assert revision_of(engine) == "0001"
    assert "boxes" not in {c["name"] for c in inspect(engine).get_columns("evidence")}
    assert {i["name"] for i in inspect(engine).get_indexes("evidence")} == {"ix_evidence_case_id"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM evidence ORDER BY id")).scalars().all() == [
            "/ev/v1.orig.jpg", "/ev/v1.crop.jpg"]
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM evidence WHERE boxes IS NULL")).scalar() == 2


def test_migration_matches_the_models(engine):
    # A model change without a migration would make these differ (on either backend).
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_postgresql_column_types(pg_schema_url):
    # What the migration makes on PostgreSQL: naive timestamps (UTCDateTime stores UTC), json, integer
    # ids filled by the database, and every table inside the test's own schema (search_path honoured).
    engine = make_engine(DatabaseSettings(url=pg_schema_url))
    try:
        upgrade_schema(engine)
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            assert schema.startswith("test_")
            types = dict(conn.execute(text(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()")).all())
            assert not conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                         "WHERE table_schema = 'public'")).scalar()
            assert conn.execute(text("SELECT pg_get_serial_sequence('cases', 'id')")).scalar()
        assert types["cases.first_seen"] == types["outbox.next_attempt_at"] == "timestamp without time zone"
        assert types["cases.boxes"] == types["evidence.boxes"] == "json"
        assert types["cases.id"] == types["outbox.id"] == "integer"
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db", busy_timeout_s=7))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000


def test_times_round_trip_as_aware_utc(engine):
    create_schema(engine)
    sessions = make_session_factory(engine)
    shanghai = timezone(timedelta(hours=8))
    t = datetime(2026, 6, 1, 16, 0, tzinfo=shanghai)
    with sessions.begin() as s:
        s.add(Camera(id="cam-1", name="", source="", address="", grid_code="", timezone="Asia/Shanghai",
                     enabled=True, created_at=t, updated_at=t))
    with sessions() as s:
        got = s.scalars(select(Camera)).one().created_at
    assert got == t and got.tzinfo == timezone.utc and got.hour == 8
    with sessions.begin() as s, pytest.raises(Exception, match="naive"):
        s.get(Camera, "cam-1").updated_at = datetime(2026, 6, 1)
        s.flush()


def test_settings_need_a_path_or_url():
    with pytest.raises(ValueError, match="path"):
        DatabaseSettings().sqlalchemy_url()
