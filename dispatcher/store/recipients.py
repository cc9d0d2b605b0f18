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

    PostgreSQL (psycopg) gets COPY; SQLite a driver-level executemany; others Core executemany in
    batches. All skip the ORM, whose per-object bookkeeping would cost more than the insert itself.
    """
    tuples = _tuples(campaign_id, rows)
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    assert driver is not None
    if dialect == "postgresql" and connection.dialect.driver == "psycopg":
        return _copy_postgres(driver, tuples)
    if dialect == "sqlite":
        # The driver streams the generator in C: no intermediate lists, no per-row SQLAlchemy work.
        sql = f"INSERT INTO recipients ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        cursor = driver.cursor()
        try:
            cursor.executemany(sql, tuples)
            return int(cursor.rowcount)
        finally:
            cursor.close()
    total = 0
    for batch in _batches(tuples):
        session.execute(insert(Recipient), [dict(zip(_COLUMNS, row, strict=True)) for row in batch])
        total += len(batch)
    return total


def _tuples(campaign_id: int, rows: Iterable[NewRecipient]) -> Iterator[tuple[Any, ...]]:
    # Tuple unpacking rather than attribute access: this runs a million times per upload.
    rejected, planned = RecipientState.REJECTED.value, RecipientState.PLANNED.value
    for row_number, position, mobile, raw_value, text, segments, reject_reason, chunk_id in rows:
        state = rejected if reject_reason else planned
        yield (campaign_id, row_number, position, mobile, raw_value, text, segments, reject_reason, state,
               chunk_id)  # fmt: skip


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
