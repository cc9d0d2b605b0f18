"""Alembic environment: run online against the URL given by ``dispatcher.store.engine.alembic_config``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, Engine, event, text

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


# Any constant: the key of the PostgreSQL advisory lock that serialises concurrent upgrades.
MIGRATION_LOCK_KEY = 0x5D15_0A7C_4E55


def serialise_sqlite(engine: Engine) -> None:
    """Run the whole upgrade in one ``BEGIN IMMEDIATE`` transaction on SQLite (SQLAlchemy's recipe:
    the driver's own transaction handling off, our BEGIN instead), so it holds the write lock from
    reading the version to the last migration."""

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        # A batch migration copies a table and drops the old one: with foreign keys enforced, that
        # DROP would run the ON DELETE actions of the tables referencing it (reports.recipient_id
        # SET NULL, chunks of a copied campaigns table deleted). The pragma only takes effect outside a
        # transaction, so it is set here, before ours begins (after the engine's own ``ON``).
        dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# Web, worker and beat each upgrade the store as they start (docker compose starts them together):
# two upgrades of one database at once would both create the tables and one would fail. So the
# version check and every migration run in one transaction that holds a lock: the next upgrader
# waits for it, then finds the schema at head and does nothing.
engine = make_engine(url)
if engine.dialect.name == "sqlite":
    serialise_sqlite(engine)
try:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite alters tables by copying them
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():  # a no-op inside ours: Alembic sees it is in a transaction
            context.run_migrations()
finally:
    engine.dispose()
