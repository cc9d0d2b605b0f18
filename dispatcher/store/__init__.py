"""The store: the source of truth (SQLAlchemy 2 models, Alembic migrations, state-machine operations).

Operations are plain functions taking a ``Session``. The state-machine steps (``claim_chunk``,
``finish_chunk``, ``sweep_expired_leases``, ``transition``) commit their own transaction; ``audit`` and
``bulk_insert_recipients`` write inside the caller's.
"""

from dispatcher.store.campaigns import TRANSITIONS, audit, transition
from dispatcher.store.chunks import Outcome, claim_chunk, finish_chunk, redact_form, sweep_expired_leases
from dispatcher.store.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    session_factory,
    upgrade,
)
from dispatcher.store.models import (
    AccountDrain,
    AccountError,
    ApiToken,
    Attempt,
    AuditEntry,
    Base,
    Campaign,
    Chunk,
    OptOut,
    RawPull,
    Recipient,
    ReplyRow,
    ReportRow,
    UnknownRequest,
    Upload,
    User,
    VendorKeyword,
    WebSession,
)
from dispatcher.store.recipients import NewRecipient, bulk_insert_recipients, counts
from dispatcher.store.types import CampaignState, ChunkState, RecipientState, Role, UTCDateTime, utcnow

__all__ = [
    "TRANSITIONS",
    "AccountDrain",
    "AccountError",
    "ApiToken",
    "Attempt",
    "AuditEntry",
    "Base",
    "Campaign",
    "CampaignState",
    "Chunk",
    "ChunkState",
    "NewRecipient",
    "OptOut",
    "Outcome",
    "RawPull",
    "Recipient",
    "RecipientState",
    "ReplyRow",
    "ReportRow",
    "Role",
    "UTCDateTime",
    "UnknownRequest",
    "Upload",
    "User",
    "VendorKeyword",
    "WebSession",
    "alembic_config",
    "audit",
    "bulk_insert_recipients",
    "claim_chunk",
    "counts",
    "current_revision",
    "finish_chunk",
    "head_revision",
    "make_engine",
    "redact_form",
    "session_factory",
    "sweep_expired_leases",
    "transition",
    "upgrade",
    "utcnow",
]
