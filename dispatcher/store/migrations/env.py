"""Alembic environment: run online against the URL given by ``dispatcher.store.engine.alembic_config``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from dispatcher.store.engine import make_engine
from dispatcher.store.models import Base
from dispatcher.store.types import UTCDateTime

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL: use dispatcher.store.upgrade(url) or `dispatcher db upgrade`")


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations spell the column's database type, so they never import (and depend on) our Python type.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


engine = make_engine(url)
try:
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A batch migration copies a table and drops the old one: with foreign keys enforced, that
            # DROP would run the ON DELETE actions of the tables referencing it (reports.recipient_id
            # SET NULL). Only effective outside a transaction, so before it begins.
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.commit()  # ends SQLAlchemy's autobegun transaction: Alembic then runs its own
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite alters tables by copying them
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
