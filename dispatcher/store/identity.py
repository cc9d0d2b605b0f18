"""The store's identity: the random id in ``store_identity`` (migration 0018) and where that row lives
(a SQLite file's real path; a PostgreSQL cluster's system identifier and database name), read once per
process and URL. The place is part of it because the row travels with the data: a copied SQLite file or
a restored dump is another store, whose workers must not pass for this one's. Written at first use if its row is gone; None when the store cannot tell (unreachable, a SQLite file
that does not exist, a schema before 0018): the caller falls back to the URL."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dispatcher.store.engine import make_engine
from dispatcher.store.models import StoreIdentity

logger = logging.getLogger(__name__)
RETRY_SECONDS = 30.0  # a store that could not tell is asked again after this
_known: dict[str, tuple[str | None, float]] = {}  # URL -> (id, monotonic time it stops being trusted)
_lock = threading.Lock()


def store_id(url: str) -> str | None:
    """The store's id, or None when it cannot be read (then asked again after :data:`RETRY_SECONDS`)."""
    with _lock:
        found = _known.get(url)
        if found is not None and found[1] > time.monotonic():
            return found[0]
    value = _read(url)
    with _lock:
        _known[url] = (value, float("inf") if value else time.monotonic() + RETRY_SECONDS)
    return value


def forget() -> None:
    """Forget what was read (tests replace a store at the same URL)."""
    with _lock:
        _known.clear()


def _read(url: str) -> str | None:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, object] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or not Path(database).exists():
            return None  # connecting would create an empty file
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver installed, whatever the URL says
        connect_args["connect_timeout"] = 3
    engine = make_engine(parsed.render_as_string(hide_password=False), connect_args=connect_args)
    try:
        with engine.connect() as connection:
            value = connection.execute(
                select(StoreIdentity.id).order_by(StoreIdentity.id).limit(1)
            ).scalar_one_or_none()
            if value is None:
                try:
                    connection.execute(insert(StoreIdentity).values(id=secrets.token_hex(16)))
                    connection.commit()
                except IntegrityError:
                    connection.rollback()
                # Two processes writing at once leave two rows: both then take the least
                value = connection.execute(
                    select(StoreIdentity.id).order_by(StoreIdentity.id).limit(1)
                ).scalar_one_or_none()
            return f"{value}@{_place(connection, backend, parsed.database)}" if value else None
    except SQLAlchemyError as exc:  # unreachable, or not migrated to 0018: named by type (no URL)
        logger.debug("store identity not readable: %s", type(exc).__name__)
        return None
    finally:
        engine.dispose()


def _place(connection: Connection, backend: str, database: str | None) -> str:
    """Where the store's row lives: what a copy of the data does not share."""
    if backend == "sqlite":
        return str(Path(database or "").resolve())
    name = connection.execute(text("SELECT current_database()")).scalar_one()
    try:  # the cluster's own id (a restore elsewhere is another cluster); a role may not read it
        with connection.begin_nested():
            cluster = connection.execute(
                text("SELECT system_identifier FROM pg_control_system()")
            ).scalar_one()
    except SQLAlchemyError:
        cluster = connection.execute(text("SELECT inet_server_addr() || ':' || inet_server_port()")).scalar()
    return f"{cluster}/{name}"
