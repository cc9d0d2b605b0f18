"""Engines, sessions and migrations. One place knows how each backend must be set up."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite: WAL, foreign keys on, a busy timeout so writers queue instead of
    failing. PostgreSQL: ``pool_pre_ping`` so a restarted server does not break the first query."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL lets the web read while workers write; NORMAL sync is durable at checkpoint, safe in WAL.
        _journal_mode_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _journal_mode_wal(cursor: Any) -> None:
    """Switch a new database file to WAL (once; the mode is stored in the file). The switch needs an
    exclusive lock and SQLite answers "database is locked" at once, without its busy handler, while
    another process creates the same file (web, worker and beat starting together): retry meanwhile."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: objects stay readable after the short transactions the workers use.
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """An Alembic config for the packaged migrations (no alembic.ini needed, nor the working directory).

    The URL travels in ``attributes``, not in the ini options, so a ``%`` in a password is not
    interpolated and the password is never written anywhere. A new migration, after changing the models:

        command.revision(alembic_config("sqlite:///scratch.sqlite3"), "what changed", autogenerate=True)

    on a scratch database upgraded to head; then tidy it by hand and keep ``tests/store`` green.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations to the database at ``url`` (creating a SQLite file if needed); the schema
    revision before and after (``None`` before: the database was empty, and its schema was created)."""
    before = current_revision(url)
    command.upgrade(alembic_config(url), revision)
    return before, current_revision(url)


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url``; None when it has none yet (empty)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
