"""Engines, sessions and schema migration, all made by factory functions from `DatabaseSettings`.

Nothing is created at import. SQLite (a file path) is the embedded default; PostgreSQL is used by URL.

SQLite connections run in WAL mode (readers do not block the writer), with foreign keys on and a busy
timeout, and every transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got in between (the busy handler is not
used for that lock upgrade), whereas an immediate one waits its turn for up to the busy timeout.

Example:
    >>> settings = DatabaseSettings(path="/var/lib/streetwatch/cases.db")  # doctest: +SKIP
    >>> engine = make_engine(settings)                                     # doctest: +SKIP
    >>> upgrade_schema(engine)                                             # doctest: +SKIP
    >>> session_factory = make_session_factory(engine)                     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Base

__all__ = ["DatabaseSettings", "create_schema", "make_engine", "make_session_factory", "run_migrations",
           "upgrade_schema", "MIGRATIONS_DIR"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the case database lives.

    Attributes:
        path: SQLite database file (used when `url` is empty); its folder is created.
        url: SQLAlchemy URL, e.g. ``postgresql+psycopg://user:pw@host/streetwatch``; overrides `path`.
        busy_timeout_s: How long a SQLite writer waits for the lock before failing.
        echo: Log every SQL statement (debugging).
    """

    path: Path | str | None = None
    url: str = ""
    busy_timeout_s: float = 10.0
    echo: bool = False

    def sqlalchemy_url(self) -> str:
        if self.url:
            return self.url
        if self.path is None:
            raise ValueError("DatabaseSettings: set either path (SQLite file) or url")
        return f"sqlite+pysqlite:///{Path(self.path).resolve()}"


def make_engine(settings: DatabaseSettings) -> Engine:
    """A new engine for `settings` (SQLite pragmas and immediate transactions applied on SQLite)."""
    url = settings.sqlalchemy_url()
    if not url.startswith("sqlite"):
        return create_engine(url, echo=settings.echo, pool_pre_ping=True)
    if settings.path is not None and not settings.url:
        Path(settings.path).resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=settings.echo,
                           connect_args={"timeout": settings.busy_timeout_s, "check_same_thread": False})
    busy_timeout_ms = int(settings.busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit: SQLAlchemy's "begin" hook below emits BEGIN itself (pysqlite's own
        # implicit BEGIN would be deferred and would not cover reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a power cut may lose the last commits only
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (they are handed to callers)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    """An alembic Config built in code (no alembic.ini, no dependence on the working directory)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def run_migrations(engine: Engine, action: Literal["upgrade", "downgrade"], revision: str) -> None:
    """``alembic upgrade|downgrade revision`` on `engine`, in one transaction.

    On SQLite, foreign-key enforcement is off while the migrations run and every key is checked before the
    commit (a dangling key fails the migration, which is rolled back). This is SQLite's own procedure for
    rebuilding a table (https://www.sqlite.org/lang_altertable.html#otheralter): ``batch_alter_table``
    rebuilds a table by copying it and dropping the original, and dropping a table that other rows refer to
    (``cases``, referred to by evidence, audit and outbox) fails while enforcement is on. The pragma has no
    effect inside a transaction, so it is set on the driver connection before the transaction begins.

    Raises:
        alembic.util.CommandError: A migration refused (its message says why), or, on SQLite, rows refer to
            missing rows after it (nothing is changed).
    """
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config(engine)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.driver_connection if sqlite else None
        if driver is not None:
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                getattr(command, action)(config, revision)
                if sqlite:
                    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        table, rowid, parent, _ = dangling[0]
                        raise CommandError(f"{action} to {revision}: {len(dangling)} row(s) refer to missing "
                                           f"rows, e.g. {table} rowid {rowid} → {parent}; rolled back")
        finally:
            if driver is not None:
                driver.execute("PRAGMA foreign_keys=ON")


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to `revision` by running the alembic migrations (see `run_migrations`)."""
    run_migrations(engine, "upgrade", revision)


def create_schema(engine: Engine) -> None:
    """Create the tables straight from the models, without migrations (throw-away test databases only)."""
    Base.metadata.create_all(engine)
