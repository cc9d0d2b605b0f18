"""Bulk inserts of report and reply rows, below the ORM: a million reports must not pay per-row work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from dispatcher.results.parsing import ReplyRecord, ReportRecord
from dispatcher.store import ReplyRow, ReportRow

_REPORT_COLUMNS = ("account", "batch_id", "mobile", "status", "reported_at", "ref", "raw_pull_id")
_REPLY_COLUMNS = ("account", "mobile", "text", "received_at", "channel", "ref", "is_optout", "raw_pull_id")


@lru_cache(maxsize=8192)
def _sqlite_time(value: datetime) -> str:
    # What SQLAlchemy's SQLite DateTime binds, for the naive-UTC storage UTCDateTime uses.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_reports(session: Session, account: str, raw_pull_id: int, records: Sequence[ReportRecord]) -> int:
    """Insert ``records`` in the caller's transaction; returns how many."""
    if not records:
        return 0
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        st = _sqlite_time
        rows: Iterable[tuple[Any, ...]] = (
            (account, b, m, s, st(at) if at is not None else None, ref, raw_pull_id)
            for b, m, s, at, ref in records
        )
        driver = connection.connection.driver_connection
        assert driver is not None
        sql = f"INSERT INTO reports ({', '.join(_REPORT_COLUMNS)}) VALUES ({', '.join('?' * 7)})"
        cursor = driver.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
        return len(records)
    session.execute(
        insert(ReportRow),
        [
            dict(zip(_REPORT_COLUMNS, (account, b, m, s, at, ref, raw_pull_id), strict=True))
            for b, m, s, at, ref in records
        ],
    )
    return len(records)


def insert_replies(
    session: Session, account: str, raw_pull_id: int, records: Sequence[tuple[ReplyRecord, bool]]
) -> int:
    """Replies are few: plain Core executemany. ``records`` pairs each reply with its opt-out flag."""
    if records:
        session.execute(
            insert(ReplyRow),
            [
                dict(zip(_REPLY_COLUMNS, (account, *r[:5], optout, raw_pull_id), strict=True))
                for r, optout in records
            ],
        )
    return len(records)
