"""Column types and state vocabularies shared by the models and the store operations."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
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


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
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


class Role(enum.StrEnum):
    VIEWER = "viewer"
    SENDER = "sender"
    ADMIN = "admin"


def check_in(column: str, values: type[enum.StrEnum]) -> str:
    """SQL for a CHECK constraint keeping ``column`` inside an enum's values."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"
