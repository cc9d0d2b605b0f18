"""A migrated, empty store for one bench run: a SQLite file in a temporary directory, or a fresh schema
of the PostgreSQL database given (``--database-url``), dropped afterwards as the tests do.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dispatcher.config import redact_url
from dispatcher.store import upgrade


@contextmanager
def scratch_store(database_url: str | None, prefix: str = "bench") -> Iterator[str]:
    """Yields the URL of an empty, migrated store; removes it on exit."""
    if database_url is None or make_url(database_url).get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'store.sqlite3'}"
            upgrade(url)
            yield url
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        upgrade(rendered)
        yield rendered
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def backend_name(database_url: str | None) -> str:
    """What to print for a store: "sqlite" or the redacted URL."""
    if database_url is None or make_url(database_url).get_backend_name() == "sqlite":
        return "sqlite"
    return redact_url(database_url)
