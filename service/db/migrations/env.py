"""Alembic environment: runs on the connection handed in by `service.db.session.upgrade_schema`
(``config.attributes["connection"]``), or on an engine built from ``sqlalchemy.url`` when run by the CLI."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from service.db.models import Base, UTCDateTime

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # Migrations must not import application types: UTCDateTime is a plain DateTime in the database.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _run(connection: Any) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_item=_render_item,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
