"""Column types and state vocabularies shared by the models and the store operations."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Float, Integer, literal
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC.

    PostgreSQL keeps it in ``timestamptz``. SQLite has no time zones, so the value is stored as naive
    UTC (which also keeps text comparisons such as ``lease_until < now`` correct) and comes back with
    ``tzinfo=UTC``. A naive value is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a timezone-aware column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class db_now(FunctionElement[datetime]):
    """The database's clock, plus ``seconds``: leases and backoffs are set and compared with it, so
    that workers, the beat and the web on different machines agree on when a lease has expired.

    SQLite renders the text form ``UTCDateTime`` stores (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so
    text comparisons with stored values stay correct; PostgreSQL uses ``statement_timestamp()``.
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, seconds: float | ColumnElement[float] = 0.0) -> None:
        offset = seconds if isinstance(seconds, ColumnElement) else literal(float(seconds), Float())
        super().__init__(offset)


def _offset(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    (offset,) = element.clauses
    return compiler.process(offset, **kw)


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # %f is seconds with milliseconds; "000" pads to the microseconds the stored text has.
    seconds = _offset(element, compiler, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('%+.6f seconds', {seconds}))"


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = _offset(element, compiler, **kw)
    return f"(statement_timestamp() + CAST({seconds} AS DOUBLE PRECISION) * INTERVAL '1 second')"


@compiles(db_now)
def _db_now_other(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"db_now() is not written for {compiler.dialect.name}")


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    SENT = "sent"  # every chunk final; delivery reports still due
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ChunkState(enum.StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"
    SENDING = "sending"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"


class RecipientState(enum.StrEnum):
    REJECTED = "rejected"  # never sendable: bad number, opt-out, duplicate; see reject_reason
    PLANNED = "planned"
    QUEUED = "queued"
    SENDING = "sending"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # never sent: its campaign was cancelled first
    CAPPED = "capped"  # never sent: the number had its frequency cap's messages already (reject_reason)


class RunOutcome(enum.StrEnum):
    """What became of one firing of a recurring schedule."""

    FIRING = "firing"  # claimed; the campaign is being created (stays so if that process died)
    CREATED = "created"  # its campaign was created and scheduled to start at once
    UNCHANGED = "unchanged"  # the newest file is the one the previous campaign was made from
    MISSED = "missed"  # due while no beat ran, past the schedule's grace: never sent late
    NOT_WORKDAY = "not_workday"  # a --workdays schedule on a weekend or public holiday
    FAILED = "failed"  # no file, a file or template its checks refused, an unknown account ...


class Role(enum.StrEnum):
    VIEWER = "viewer"
    SENDER = "sender"
    ADMIN = "admin"


def check_in(column: str, values: type[enum.StrEnum]) -> str:
    """SQL for a CHECK constraint keeping ``column`` inside an enum's values."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"
