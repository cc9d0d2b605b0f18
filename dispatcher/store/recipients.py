"""Recipients in bulk: one row per input row, written fast enough for a million-row upload."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from dispatcher.store.models import Recipient
from dispatcher.store.types import RecipientState

BATCH = 10_000
_COLUMNS = (
    "campaign_id",
    "row_number",
    "position",
    "mobile",
    "raw_value",
    "text",
    "segments",
    "reject_reason",
    "state",
    "chunk_id",
)


class NewRecipient(NamedTuple):
    """One input row as the uploader hands it over. A ``reject_reason`` makes it ``rejected``."""

    row_number: int
    position: int
    mobile: str | None
    raw_value: str | None
    text: str | None = None
    segments: int = 0
    reject_reason: str | None = None
    chunk_id: int | None = None  # the planned chunk that will carry it


def bulk_insert_recipients(session: Session, campaign_id: int, rows: Iterable[NewRecipient]) -> int:
    """Insert ``rows`` for a campaign; returns how many. Does not commit (the caller's transaction).

    PostgreSQL gets COPY; SQLite a driver-level executemany in batches. Both skip the ORM, whose
    per-object bookkeeping would cost more than the insert itself.
    """
    tuples = (_as_tuple(campaign_id, r) for r in rows)
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    if dialect == "postgresql" and hasattr(driver, "cursor") and connection.dialect.driver == "psycopg":
        return _copy_postgres(driver, tuples)
    if dialect == "sqlite":
        sql = f"INSERT INTO recipients ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        total = 0
        cursor = connection.connection.cursor()
        try:
            for batch in _batches(tuples):
                cursor.executemany(sql, batch)
                total += len(batch)
        finally:
            cursor.close()
        return total
    total = 0
    for batch in _batches(tuples):
        session.execute(insert(Recipient), [dict(zip(_COLUMNS, row, strict=True)) for row in batch])
        total += len(batch)
    return total


def _as_tuple(campaign_id: int, r: NewRecipient) -> tuple[Any, ...]:
    state = RecipientState.REJECTED if r.reject_reason else RecipientState.PLANNED
    return (campaign_id, r.row_number, r.position, r.mobile, r.raw_value, r.text, r.segments, r.reject_reason,
            state.value, r.chunk_id)  # fmt: skip


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    while batch := list(islice(rows, BATCH)):
        yield batch


def _copy_postgres(driver: Any, rows: Iterator[tuple[Any, ...]]) -> int:
    total = 0
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY recipients ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            total += 1
    return total


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """How many recipients of a campaign are in each state (every state present, zeros included)."""
    result = {state.value: 0 for state in RecipientState}
    query = (
        select(Recipient.state, func.count())
        .where(Recipient.campaign_id == campaign_id)
        .group_by(Recipient.state)
    )
    for state, n in session.execute(query):
        result[state] = n
    return result
