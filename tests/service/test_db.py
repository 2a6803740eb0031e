"""The case database: migrations on a real SQLite file, SQLite settings, UTC times; PostgreSQL when configured."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select, text

from service.db import (Camera, DatabaseSettings, create_schema, make_engine, make_session_factory,
                        upgrade_schema)
from service.db.models import Base

TABLES = {"cameras", "cases", "case_violations", "evidence", "audit", "outbox"}


def test_migrations_create_every_table_on_a_sqlite_file(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "sub" / "cases.db"))
    upgrade_schema(engine)
    upgrade_schema(engine)  # idempotent: already at head
    names = set(inspect(engine).get_table_names())
    assert TABLES <= names and "alembic_version" in names
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    assert (tmp_path / "sub" / "cases.db").is_file()


def test_migration_matches_the_models(tmp_path):
    # A model change without a migration would make these differ.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
    upgrade_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db", busy_timeout_s=7))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000


def test_times_round_trip_as_aware_utc(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
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


@pytest.mark.skipif(not os.environ.get("STREETWATCH_TEST_PG_URL"), reason="STREETWATCH_TEST_PG_URL not set")
def test_postgresql_migrations():
    engine = make_engine(DatabaseSettings(url=os.environ["STREETWATCH_TEST_PG_URL"]))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS outbox, audit, evidence, case_violations, cases, cameras, "
                          "alembic_version CASCADE"))
    upgrade_schema(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
