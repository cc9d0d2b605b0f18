"""Bulk inserts of report and reply rows, below the ORM: a million reports must not pay per-row work.

Reports go through a per-connection temporary table, ``report_stage``: a batch of bodies is staged
there in one write (no constraints, no index but its arrival order: the cheapest insert there is),
matched to recipients (``reconcile.reconcile_staged``), and then written to ``reports`` once, with
``recipient_id`` and ``matched_at`` already set, by ``INSERT ... SELECT`` (on PostgreSQL a part of the
one statement that matches and applies them). Writing a report row and then updating it to record
its match would cost twice: the row would be written again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    FromClause,
    Insert,
    MetaData,
    String,
    Table,
    case,
    delete,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from dispatcher.results.parsing import ReplyRecord, ReportRecord
from dispatcher.store import ReplyRow, ReportRow
from dispatcher.store.bulk import write_rows
from dispatcher.store.types import BigId, UTCDateTime

_REPORT_COLUMNS = ("account", "batch_id", "mobile", "status", "reported_at", "ref", "raw_pull_id")
_REPLY_COLUMNS = ("account", "mobile", "text", "received_at", "channel", "ref", "is_optout", "raw_pull_id")

# Not part of the models' metadata: it is no table of the schema, and no migration creates it.
stage = Table(
    "report_stage",
    MetaData(),
    Column("seq", BigId, primary_key=True),  # arrival order: the reports' ids follow it
    Column("account", String(64)),
    Column("batch_id", String(32)),
    Column("mobile", String(20)),
    Column("status", String(32)),
    Column("reported_at", UTCDateTime),
    Column("ref", String(60)),
    Column("raw_pull_id", BigId),
    Column("recipient_id", BigId),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
_CREATE_STAGE = CreateTable(stage, if_not_exists=True)


@lru_cache(maxsize=8192)
def _sqlite_time(value: datetime) -> str:
    # What SQLAlchemy's SQLite DateTime binds, for the naive-UTC storage UTCDateTime uses.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def open_stage(session: Session) -> None:
    """An empty ``report_stage`` on the session's connection (created on first use, in the caller's
    transaction: a rollback takes it away, the next call makes it again)."""
    connection = session.connection()
    connection.execute(_CREATE_STAGE)
    connection.execute(delete(stage))


def stage_reports(session: Session, account: str, raw_pull_id: int, records: Sequence[ReportRecord]) -> int:
    """Add ``records`` to the open stage, in order; returns how many."""
    return stage_bodies(session, [(account, raw_pull_id, records)])


# A parsed body: its account, its raw body's id, its report records.
Body = tuple[str, int, Sequence[ReportRecord]]


def stage_bodies(session: Session, bodies: Sequence[Body]) -> int:
    """Add the records of ``bodies`` to the open stage, in order, in one write (one ``COPY`` on
    PostgreSQL: one per body cost ~30 % more at 500 records a body); returns how many."""
    total = sum(len(records) for _, _, records in bodies)
    if not total:
        return 0
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        st = _sqlite_time
        rows: Iterable[tuple[Any, ...]] = (
            (account, b, m, s, st(at) if at is not None else None, ref, raw_pull_id)
            for account, raw_pull_id, records in bodies
            for b, m, s, at, ref in records
        )
        _driver_executemany(connection, "report_stage", _REPORT_COLUMNS, rows)
        return total
    if connection.dialect.name == "postgresql":
        # COPY (psycopg), each time as the column binds it (aware: a naive one is refused there).
        bind = stage.c.reported_at.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
        assert bind is not None
        return write_rows(
            session,
            stage,
            _REPORT_COLUMNS,
            (
                (account, b, m, s, bind(at), ref, raw_pull_id)
                for account, raw_pull_id, records in bodies
                for b, m, s, at, ref in records
            ),
        )
    connection.execute(
        insert(stage),
        [
            dict(zip(_REPORT_COLUMNS, (account, b, m, s, at, ref, raw_pull_id), strict=True))
            for account, raw_pull_id, records in bodies
            for b, m, s, at, ref in records
        ],
    )
    return total


def store_staged(session: Session, now: datetime) -> None:
    """Write every staged report to ``reports`` in arrival order, with its match (if any) and
    ``matched_at = now`` for the matched ones."""
    session.connection().execute(insert_staged(stage, now))


def insert_staged(source: FromClause, now: datetime) -> Insert:
    """The INSERT of :func:`store_staged`, from the stage or from a selection with its columns
    (PostgreSQL's reconcile takes it as a part of one statement)."""
    columns = [source.c[name] for name in _REPORT_COLUMNS]
    recipient_id = source.c.recipient_id
    matched_at = case((recipient_id.is_not(None), literal(now, UTCDateTime)), else_=None)
    return insert(ReportRow).from_select(
        [*_REPORT_COLUMNS, "recipient_id", "matched_at"],
        select(*columns, recipient_id, matched_at).order_by(source.c.seq),
    )


def close_stage(session: Session) -> None:
    session.connection().execute(delete(stage))


def _driver_executemany(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    # The SQLite driver streams the generator in C: no per-row SQLAlchemy work.
    driver = connection.connection.driver_connection
    assert driver is not None
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


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
