"""Database fixtures: the store tests run on a SQLite file and on PostgreSQL.

PostgreSQL comes from ``STREETWATCH_TEST_PG_URL`` (``postgresql+psycopg://...``); scripts/test.sh starts a
throw-away server for it (scripts/pg_test_server.sh) unless it is set. Every test gets a schema of its own
(``search_path`` set through the connection's ``options``), dropped afterwards, so tests do not see each
other's rows and reruns against the same server start clean.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from service.db import DatabaseSettings

PG_URL_ENV = "STREETWATCH_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def url_with_search_path(url: str, schema: str) -> str:
    """`url` with its connections' ``search_path`` set to `schema` (libpq ``options``, kept if present)."""
    parsed = make_url(url)
    options = parsed.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    options = f"{options} -csearch_path={schema}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The PostgreSQL server's URL; skips (with the reason in the summary) only when none is configured.

    A configured server that cannot be reached is an error, not a skip."""
    url = os.environ.get(PG_URL_ENV, "")
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set: no PostgreSQL server (scripts/test.sh starts one with "
                    "scripts/pg_test_server.sh)")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"{PG_URL_ENV}={url} is not reachable: {exc}", pytrace=False)
    finally:
        engine.dispose()
    yield url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema of their own; the schema is dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url_with_search_path(pg_url, schema)
    finally:
        with admin.begin() as conn:
            # A connection the test left open would make DROP wait forever: fail instead.
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_settings(request: pytest.FixtureRequest, tmp_path) -> DatabaseSettings:
    """An empty database on each backend: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return DatabaseSettings(path=tmp_path / "cases.db")
    return DatabaseSettings(url=request.getfixturevalue("pg_schema_url"))
