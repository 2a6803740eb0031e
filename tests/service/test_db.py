"""The case database: migrations on a real SQLite file and on PostgreSQL (an empty schema per test, see
conftest.py), SQLite settings, UTC times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.util import CommandError
from sqlalchemy import MetaData, Table, inspect, select, text
from sqlalchemy.exc import IntegrityError

from service.db import (Camera, DatabaseSettings, Evidence, create_schema, make_engine, make_session_factory,
                        upgrade_schema)
from service.db.models import Base

TABLES = {"cameras", "cases", "case_violations", "evidence", "audit", "flights", "outbox"}
HEAD = "0005"


def alembic_run(engine, action: str, revision: str) -> None:
    """`alembic upgrade|downgrade revision` on `engine` (as `upgrade_schema` does)."""
    from service.db.session import run_migrations

    run_migrations(engine, action, revision)


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
    alembic_run(engine, "downgrade", "base")
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


def insert_camera_case(conn, t: datetime, violation_id: str = "v1") -> int:
    """A camera, one of its cases and an evidence and audit row, written with the tables as they are now."""
    tables = MetaData()
    cameras, cases, evidence, audit = (Table(name, tables, autoload_with=conn)
                                       for name in ("cameras", "cases", "evidence", "audit"))
    if conn.execute(select(cameras.c.id).where(cameras.c.id == "cam-1")).first() is None:
        conn.execute(cameras.insert().values(id="cam-1", name="Gate", source="", address="", grid_code="",
                                             timezone="UTC", enabled=True, created_at=t, updated_at=t))
    case_id = conn.execute(cases.insert().values(
        violation_id=violation_id, dedupe_key="cam-1|z1|stall_occupation", kind="stall_occupation",
        camera_id="cam-1", zone_id="z1", status="pending", first_seen=t, last_seen=t, dwell_s=0.0, score=0.8,
        boxes=[[1.0, 2.0, 3.0, 4.0]], track_ids=[1], lat_deg=31.2304, lon_deg=121.4737, address="88 Nanjing Rd",
        grid_code="310101-001", created_at=t, updated_at=t, version=1)).inserted_primary_key[0]
    conn.execute(evidence.insert().values(case_id=case_id, violation_id=violation_id, kind="original",
                                          path=f"/ev/{violation_id}.jpg", ts=t))
    conn.execute(audit.insert().values(case_id=case_id, actor="system", action="created", at=t))
    return case_id


def cases_columns(engine) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in inspect(engine).get_columns("cases")}


def test_migration_0003_lets_a_case_come_from_a_flight(engine):
    # A database at 0002 with a camera case (evidence and audit rows refer to it): upgraded, the case and its
    # rows survive unchanged; a case may then come from a flight, but never from both or neither (CHECK), and
    # only from a flight that exists (foreign key). Downgrade refuses while a flight case exists, then goes
    # back to 0002's schema keeping the camera case.
    upgrade_schema(engine, "0002")
    t = datetime(2026, 6, 1, 8, 0)  # naive UTC, as stored
    with engine.begin() as conn:
        camera_case = insert_camera_case(conn, t)
    assert cases_columns(engine)["camera_id"] is False and "flights" not in inspect(engine).get_table_names()
    at_0002 = (cases_columns(engine), {i["name"] for i in inspect(engine).get_indexes("cases")},
               sorted(fk["referred_table"] for fk in inspect(engine).get_foreign_keys("cases")))

    upgrade_schema(engine)
    assert revision_of(engine) == HEAD
    columns = cases_columns(engine)
    assert (columns["camera_id"], columns["flight_id"]) == (True, True)
    assert {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("cases")}["ix_cases_flight_id"] == [
        "flight_id", "id"]
    assert [c["name"] for c in inspect(engine).get_check_constraints("cases")] == ["ck_cases_one_origin"]
    assert {(fk["referred_table"], tuple(fk["constrained_columns"])) for fk in
            inspect(engine).get_foreign_keys("cases")} == {("cameras", ("camera_id",)), ("flights", ("flight_id",)),
                                                           ("cases", ("merged_into",))}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, camera_id, flight_id, address FROM cases")).all() == [
            (camera_case, "cam-1", None, "88 Nanjing Rd")]
        assert conn.execute(text("SELECT count(*) FROM evidence WHERE case_id = :c"), {"c": camera_case}).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM audit WHERE case_id = :c"), {"c": camera_case}).scalar() == 1

    tables = MetaData()
    with engine.begin() as conn:
        flights, cases = (Table(name, tables, autoload_with=conn) for name in ("flights", "cases"))
        conn.execute(flights.insert().values(id="f-1", name="Patrol", source="/data/f1.mp4", status="done",
                                             address="", grid_code="", timezone="Asia/Shanghai", frames_done=0,
                                             created_at=t, updated_at=t))
    flight_case = dict(dedupe_key="flight:f-1|roofs|illegal_structure", kind="illegal_structure", zone_id="roofs",
                       status="pending", first_seen=t, last_seen=t, dwell_s=0.0, score=0.7, boxes=[], track_ids=[],
                       address="", grid_code="310104-017", created_at=t, updated_at=t, version=1)
    with engine.begin() as conn:
        conn.execute(cases.insert().values(violation_id="f/v1", flight_id="f-1", **flight_case))
    for bad_origin in (dict(camera_id="cam-1", flight_id="f-1"), dict(camera_id=None, flight_id=None),
                       dict(flight_id="f-404")):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(cases.insert().values(violation_id="bad", **bad_origin, **flight_case))

    with pytest.raises(CommandError, match=r"1 case\(s\) come from drone flights"):
        alembic_run(engine, "downgrade", "0002")
    assert revision_of(engine) == HEAD and len(cases_columns(engine)) == len(columns)  # rolled back, untouched
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM cases WHERE flight_id IS NOT NULL"))
    alembic_run(engine, "downgrade", "0002")
    assert revision_of(engine) == "0002"
    assert (cases_columns(engine), {i["name"] for i in inspect(engine).get_indexes("cases")},
            sorted(fk["referred_table"] for fk in inspect(engine).get_foreign_keys("cases"))) == at_0002
    assert "flights" not in inspect(engine).get_table_names()
    assert inspect(engine).get_check_constraints("cases") == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, camera_id FROM cases")).all() == [(camera_case, "cam-1")]
        assert conn.execute(text("SELECT count(*) FROM evidence")).scalar() == 1
    upgrade_schema(engine)
    assert revision_of(engine) == HEAD


def test_sqlite_migrations_keep_foreign_keys_enforced_afterwards(tmp_path):
    # run_migrations turns enforcement off for the table rebuild only; the pooled connection gets it back.
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
    upgrade_schema(engine, "0002")
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO evidence (case_id, kind, path, ts) VALUES (4242, 'crop', '/x', '2026-06-01')"))
    engine.dispose()


def test_sqlite_migration_with_a_dangling_key_is_rolled_back(tmp_path):
    # A row that refers to a missing case (written while enforcement was off) fails the rebuild's key check.
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
    upgrade_schema(engine, "0002")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("INSERT INTO evidence (case_id, kind, path, ts) VALUES (4242, 'crop', '/x', '2026-06-01')")
        raw.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(CommandError, match=r"upgrade to head: 1 row\(s\) refer to missing rows, e\.g\. evidence"):
        upgrade_schema(engine)
    assert revision_of(engine) == "0002" and "flights" not in inspect(engine).get_table_names()
    engine.dispose()


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
