"""Backend setup and timezone-aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from dispatcher.store import Campaign, make_engine
from tests.store.conftest import Store, make_campaign


def test_given_sqlite_url_when_make_engine_then_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
    finally:
        engine.dispose()


def test_given_postgres_url_when_make_engine_then_pool_pre_ping() -> None:
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/none")  # never connects
    assert engine.pool._pre_ping


def test_given_store_when_foreign_key_violated_then_refused(store: Store) -> None:
    with store.session() as s, pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        s.execute(text("INSERT INTO uploads (campaign_id, file_name, rows_total, rows_accepted, rows_rejected,"
                       " sha256, uploaded_by, created_at) VALUES (999, 'f', 0, 0, 0, 'x', 'a', '2026-01-01')"))  # fmt: skip
        s.commit()


def test_given_aware_time_in_another_zone_when_stored_then_read_back_as_same_instant_in_utc(
    store: Store,
) -> None:
    # Given a start time in China Standard Time
    cst = timezone(timedelta(hours=8))
    start = datetime(2026, 5, 1, 9, 30, tzinfo=cst)
    with store.session() as s:
        cid = make_campaign(s)
        s.get_one(Campaign, cid).start_at = start
        s.commit()
    # When read back in a new session
    with store.session() as s:
        value = s.execute(select(Campaign.start_at).where(Campaign.id == cid)).scalar_one()
    # Then: aware, UTC, same instant
    assert value == start
    assert value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert value.hour == 1


def test_given_naive_datetime_when_stored_then_refused(store: Store) -> None:
    with store.session() as s:
        cid = make_campaign(s)
        s.get_one(Campaign, cid).start_at = datetime(2026, 5, 1, 9, 30)
        with pytest.raises(StatementError, match="naive datetime"):
            s.commit()


def test_given_times_when_compared_in_sql_then_order_is_by_instant(store: Store) -> None:
    # SQLite stores text: comparisons must still follow the instants, whatever zone they were given in.
    cst = timezone(timedelta(hours=8))
    with store.session() as s:
        cid = make_campaign(s)
        s.get_one(Campaign, cid).start_at = datetime(2026, 5, 1, 9, 0, tzinfo=cst)  # 01:00 UTC
        s.commit()
        later = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
        earlier = datetime(2026, 5, 1, 0, 30, tzinfo=UTC)
        assert s.execute(select(Campaign.id).where(Campaign.start_at < later)).scalar_one_or_none() == cid
        assert s.execute(select(Campaign.id).where(Campaign.start_at < earlier)).scalar_one_or_none() is None
