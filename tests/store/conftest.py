"""A ``store`` fixture over SQLite (always) and PostgreSQL (when DISPATCHER_TEST_POSTGRES_URL is set).

PostgreSQL tests run in a schema of their own, created for the session and dropped afterwards, so
other suites sharing the database are not disturbed. Each test starts from empty tables.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.store import Campaign, CampaignState, Chunk, ChunkState, NewRecipient, bulk_insert_recipients
from dispatcher.store.engine import make_engine, session_factory, upgrade
from dispatcher.store.models import Base

PG_URL = os.environ.get("DISPATCHER_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


def pg_schema_url(schema: str) -> str:
    assert PG_URL
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """Create a fresh PostgreSQL schema for this session; drop it (and everything in it) afterwards."""
    if not PG_URL:
        pytest.skip("DISPATCHER_TEST_POSTGRES_URL is not set")
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schema: str) -> str:
    url = pg_schema_url(pg_schema)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("DISPATCHER_TEST_POSTGRES_URL is not set")
    name: str = request.param
    return name


@dataclass
class Store:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        return self.sessions()


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on ``backend``."""
    if backend == "sqlite":
        path = tmp_path / "store.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated_url")
    engine = make_engine(url)
    if backend == "postgresql":
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield Store(url, engine, session_factory(engine))
    finally:
        engine.dispose()


# ---- small builders shared by the tests ----

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def make_campaign(session: Session, state: CampaignState = CampaignState.RUNNING) -> int:
    campaign = Campaign(
        name="spring sale", account="main", vendor="yunxin", template="Hi {name}【店】", created_by="ann"
    )
    campaign.state = state.value
    session.add(campaign)
    session.commit()
    return campaign.id


def make_chunk(
    session: Session, campaign_id: int, seq: int, mobiles: list[str], state: ChunkState = ChunkState.QUEUED
) -> int:
    """A chunk with one recipient per mobile, both in ``state`` (recipients queued when it is queued)."""
    chunk = Chunk(campaign_id=campaign_id, seq=seq, ref=f"{campaign_id:06d}{seq:06d}", method="same_text")
    chunk.state = state.value
    chunk.recipient_count = len(mobiles)
    session.add(chunk)
    session.flush()
    start = seq * 1000
    bulk_insert_recipients(
        session,
        campaign_id,
        [NewRecipient(start + i + 2, start + i, m, m, "Hi【店】", 1) for i, m in enumerate(mobiles)],
    )
    session.execute(
        text("UPDATE recipients SET chunk_id = :c, state = :s WHERE campaign_id = :k AND position >= :p0"
             " AND position < :p1"),
        {"c": chunk.id, "s": "queued" if state is ChunkState.QUEUED else "planned", "k": campaign_id,
         "p0": start, "p1": start + len(mobiles)},
    )  # fmt: skip
    session.commit()
    return chunk.id
