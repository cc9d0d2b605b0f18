"""The store's tables (SQLAlchemy 2 typed models). The Alembic migrations must match these exactly.

States are plain strings checked by the database (see ``types``), so a migration adding a state is a
one-line constraint change rather than an enum type dance on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dispatcher.store.types import (
    BigId,
    CampaignState,
    ChunkState,
    RecipientState,
    Role,
    RunOutcome,
    UTCDateTime,
    check_in,
    utcnow,
)

# Deterministic constraint names on both backends, so migrations can name what they alter.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}  # noqa: RUF012 (SQLAlchemy API)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(check_in("state", CampaignState), name="state"),
        CheckConstraint(
            "window_start >= 0 AND window_start < window_end AND window_end <= 1440", name="window"
        ),
        Index(None, "state", "start_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(64))  # the config's account name
    vendor: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=CampaignState.DRAFT)
    start_at: Mapped[datetime | None]
    # Send window in minutes since local midnight (timezone below); 0-1440 = always.
    window_start: Mapped[int] = mapped_column(SmallInteger, default=8 * 60)
    window_end: Mapped[int] = mapped_column(SmallInteger, default=21 * 60)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    stats: Mapped[dict[str, Any] | None]  # cache of counts(); the recipients table is the truth
    # The seq the next chunk of a split takes: bumped with UPDATE ... RETURNING, so two splits at once
    # never pick the same number (the campaign row is their lock).
    next_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A proof: the first message sent to a few of the sender's own numbers before the real campaign
    # starts. A campaign of its own, so that it never counts in the real one's figures.
    proof: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Routing (migration 0008, dispatcher/failover.py, variants.py, balance_guard.py): the accounts still
    # to fail over to, in order; the A/B templates and shares; the failovers done and the guard's hold.
    fallbacks: Mapped[list[str] | None] = mapped_column(JSON)
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    routing: Mapped[dict[str, Any] | None]
    # Transactional (a password, an order): neither capped nor counted by the frequency caps.
    transactional: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(255))
    sheet: Mapped[str | None] = mapped_column(String(255))
    phone_column: Mapped[str | None] = mapped_column(String(255))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    # The list itself, as read (its digest is sha256), its header row and column names: the export gives
    # each row's own cells back (姓名, 城市 …) after the dispatcher's columns. One write per upload, rather
    # than a row per recipient: a million-row create pays a file's bytes, not another bulk insert.
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    header_row: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list[str] | None] = mapped_column(JSON)


class Chunk(Base):
    """One vendor request: the unit of exactly-once (docs/state-machine.md)."""

    __tablename__ = "chunks"
    __table_args__ = (
        CheckConstraint(check_in("state", ChunkState), name="state"),
        UniqueConstraint("campaign_id", "seq"),
        Index(None, "campaign_id", "state"),
        Index(None, "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # order within the campaign
    # Digits only, at most 18: sent as trigger customerUuid / entinfo rrid to find it again.
    ref: Mapped[str] = mapped_column(String(18), unique=True)
    method: Mapped[str] = mapped_column(String(32))  # "same_text" / "personalised" / "single" / ...
    text: Mapped[str | None] = mapped_column(Text)  # the common text of a same-text chunk
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=ChunkState.PLANNED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    not_before: Mapped[datetime | None]  # backoff: do not send before this
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    error_class: Mapped[str | None] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("chunks.id"), index=True)  # split from
    # An operator re-queued it from ``unknown`` (or it was split from such a chunk): a "duplicate"
    # answer then proves that the earlier, unknown attempt was accepted.
    requeued_from_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The account it was packed for (its vendor's limits and separators): a worker of another account
    # never sends it personalised; the beat re-plans it (failover). Null: planned before this was kept.
    account: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    # When it was queued (or last changed): the queue's age counts from here (or ``not_before``).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    accepted_at: Mapped[datetime | None]
    # When the beat's sweep last handed it to the broker again (scheduler.requeue_stale): its own
    # column, so that re-queueing a lost message does not make a stuck queue look fresh.
    requeued_at: Mapped[datetime | None]
    # ``settle_unknown_after``: when the beat first found it ``unknown`` with nothing saying it was
    # taken (database time); it is sent again only after a report pull that began later (0021).
    settle_marked_at: Mapped[datetime | None]


_HAS_BATCH = text("batch_id IS NOT NULL")
FAILED_STATES = text("state IN ('failed', 'undelivered')")  # stats.failure_codes asks for exactly this


class Recipient(Base):
    """One row per input row, accepted or rejected, so every row of the sheet is accounted for."""

    __tablename__ = "recipients"
    __table_args__ = (
        CheckConstraint(check_in("state", RecipientState), name="state"),
        # Segments beside the state: a campaign's sums by state come from the index alone (migration 0019).
        Index(None, "campaign_id", "state", "segments"),
        # Failures by code (a campaign's page): only failed and undelivered rows (migration 0019).
        Index(
            "ix_recipients_failures",
            "campaign_id",
            "state",
            "report_status",
            "vendor_code",
            "error_class",
            sqlite_where=FAILED_STATES,
            postgresql_where=FAILED_STATES,
        ),
        Index(None, "chunk_id"),
        # The few recipients both requests of a re-send reached (a campaign's status counts them).
        Index(
            "ix_recipients_sent_twice",
            "campaign_id",
            "sent_twice",  # covering: the count reads the index alone
            sqlite_where=text("sent_twice = 1"),
            postgresql_where=text("sent_twice"),
        ),
        # Partial: rows get a batch id only when accepted, so a million-row upload pays nothing here.
        # (No index on position: exports sort by it. Ids do not follow it: rejected rows go in last.)
        Index(None, "batch_id", "mobile", sqlite_where=_HAS_BATCH, postgresql_where=_HAS_BATCH),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # campaigns.id. No foreign key (migration 0011), as chunk_id below: written only with the id of the
    # campaign of the same transaction, and a per-row trigger that cost a bulk upload as much as the row.
    campaign_id: Mapped[int] = mapped_column(BigId)
    row_number: Mapped[int] = mapped_column(Integer)  # as the spreadsheet shows it
    position: Mapped[int] = mapped_column(Integer)  # input order
    mobile: Mapped[str | None] = mapped_column(String(20))  # normalised; null when rejected
    raw_value: Mapped[str | None] = mapped_column(String(255))
    # NULL where the chunk carries the text (same-text or single request): see recipients.recipient_text.
    text: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(SmallInteger, default=0)
    reject_reason: Mapped[str | None] = mapped_column(String(64))  # English, for the CLI and --json
    # The reason as data (``dispatcher.reasons``): pages and exports say it in the reader's language.
    reject_code: Mapped[str | None] = mapped_column(String(32))
    reject_params: Mapped[dict[str, Any] | None]
    state: Mapped[str] = mapped_column(String(16))
    # The planned chunk that carries it. No foreign key (migration 0006): on PostgreSQL each one is a
    # per-row trigger that cost a bulk upload as much as the row itself; ids come from the same transaction.
    chunk_id: Mapped[int | None] = mapped_column(BigId)
    batch_id: Mapped[str | None] = mapped_column(String(32))
    vendor_code: Mapped[str | None] = mapped_column(String(32))
    report_status: Mapped[str | None] = mapped_column(String(32))
    # raw_pulls.id of the body whose report it shows: one from an earlier body never replaces it (0012).
    report_raw_pull_id: Mapped[int | None] = mapped_column(BigId)
    error_class: Mapped[str | None] = mapped_column(String(16))
    submitted_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]  # the report's time
    # The account it was settled on before its campaign failed over (null: the campaign's account).
    account: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(8))  # A/B: its template's name
    # The China day its send was counted on for the frequency caps (contact_counts); null: not counted.
    counted_on: Mapped[date | None] = mapped_column(Date)
    # Re-sent from ``unknown`` and reports came for both requests: the number got the message twice.
    sent_twice: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class ContactCount(Base):
    """Messages sent (in flight or taken by a vendor) to one number on one China calendar day, over every
    campaign and account: what the frequency caps count. Written only when a cap is configured."""

    __tablename__ = "contact_counts"

    mobile: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer)


class StoreIdentity(Base):
    """One row: a random id written once (migration 0018, or at first use if the row is gone), so that
    processes can tell whether they share a store by the database itself, not its URL's text (the same
    SQLite path in two containers is two stores; ``postgresql://`` and ``postgresql+psycopg://`` of one
    database is one). ``operations.fingerprint`` reads it."""

    __tablename__ = "store_identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)


class Attempt(Base):
    """One try of a chunk's request. ``request`` is redacted: no password, pwd or submitInfo."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), index=True)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    request: Mapped[dict[str, Any] | None]
    answer: Mapped[str | None] = mapped_column(Text)  # the raw body
    code: Mapped[str | None] = mapped_column(String(32))
    error_class: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    url_used: Mapped[str | None] = mapped_column(String(500))


class UnknownRequest(Base):
    """A request that carried a recipient and whose outcome nobody knows, kept when an operator sends the
    recipient again (``retry --include-unknown``): the account it went out on, and when. Evidence (a
    report of the number, entinfo's "already sent") is weighed per account that sent: a report of this
    number on this account may be this request's, whatever account the recipient was sent on since."""

    __tablename__ = "unknown_requests"
    __table_args__ = (Index(None, "account", "mobile"), Index(None, "recipient_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys, as recipients.campaign_id: ids read in the same transaction.
    recipient_id: Mapped[int] = mapped_column(BigId)
    campaign_id: Mapped[int] = mapped_column(BigId)
    chunk_id: Mapped[int] = mapped_column(BigId)  # the chunk whose request it was
    ref: Mapped[str] = mapped_column(String(18))  # that chunk's ref (trigger's reports name it)
    mobile: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(64))
    sent_from: Mapped[datetime]  # the request went out between these two instants
    sent_until: Mapped[datetime]
    # Sent again by the beat (the account's ``settle_unknown_after``), not by a person: the export says so.
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class OptOut(Base):
    __tablename__ = "optouts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mobile: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # reply / manual / import
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class RawPull(Base):
    """A pulled or pushed body, committed before it is parsed (a pull consumes it at the vendor)."""

    __tablename__ = "raw_pulls"
    __table_args__ = (
        CheckConstraint("kind IN ('reports', 'replies')", name="kind"),
        CheckConstraint("source IN ('pull', 'push')", name="source"),
        Index(None, "parsed_at"),
        Index(None, "received_at"),  # the first body of the re-match window (migration 0020)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    parsed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # A push's charset (its Content-Type's): its bytes and its form's %-escapes; None = UTF-8.
    charset: Mapped[str | None] = mapped_column(String(32))


_UNMATCHED = text("recipient_id IS NULL")


class ReportRow(Base):
    """A delivery report; ``recipient_id`` is null until reconciliation matches it (or forever: orphan)."""

    __tablename__ = "reports"
    # Partial (migration 0010): every query but by id or raw body asks for the unmatched, and nearly
    # every report is written matched; these then cost it nothing.
    __table_args__ = (
        Index(None, "batch_id", "mobile", sqlite_where=_UNMATCHED, postgresql_where=_UNMATCHED),
        Index(None, "ref", sqlite_where=_UNMATCHED, postgresql_where=_UNMATCHED),
        Index("ix_reports_unmatched", "id", sqlite_where=_UNMATCHED, postgresql_where=_UNMATCHED),
        # The unmatched reports of the bodies received since a time (the re-match window, 0020).
        Index(
            "ix_reports_unmatched_raw", "raw_pull_id", sqlite_where=_UNMATCHED, postgresql_where=_UNMATCHED
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(String(32))
    mobile: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(32))
    reported_at: Mapped[datetime | None]
    ref: Mapped[str | None] = mapped_column(String(60))
    # No foreign keys (migration 0008): a per-row trigger each, for ids read in the same transaction.
    recipient_id: Mapped[int | None] = mapped_column(BigId)  # recipients.id
    matched_at: Mapped[datetime | None]
    raw_pull_id: Mapped[int | None] = mapped_column(BigId, index=True)  # raw_pulls.id


class ReplyRow(Base):
    __tablename__ = "replies"
    __table_args__ = (Index(None, "mobile"), Index(None, "campaign_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    mobile: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(60))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    is_optout: Mapped[bool] = mapped_column(Boolean, default=False)
    raw_pull_id: Mapped[int | None] = mapped_column(ForeignKey("raw_pulls.id"))


class AccountError(Base):
    """An account's current error on its report and reply pulls (wrong password, IP not bound, ...): one
    row per account while the error lasts, gone once a pull succeeds. Its pulls wait for ``retry_at``
    (growing with ``failures``), and every page shows it; a changed configuration (``config_hash``,
    derived with scrypt: no secret in clear) makes it stale."""

    __tablename__ = "account_errors"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # the pull refused: reports / replies
    code: Mapped[int | None] = mapped_column(Integer)
    meaning: Mapped[str] = mapped_column(Text)  # the vendor document's words (Chinese)
    meaning_en: Mapped[str] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retry_at: Mapped[datetime] = mapped_column(UTCDateTime)
    config_hash: Mapped[str] = mapped_column(String(64))


class AccountDrain(Base):
    """When the last drain of an account's reports (or replies) that went on until the vendor had no
    more began (database time): every report the vendor had by then is in ``raw_pulls`` (0021)."""

    __tablename__ = "account_drains"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VendorKeyword(Base):
    """A forbidden word of an account, as its vendor lists it (yunxin ``GetKeyWords``); replaced whole by
    each ``dispatcher keywords pull``. Texts holding one are refused before anything is sent."""

    __tablename__ = "vendor_keywords"
    __table_args__ = (UniqueConstraint("account", "word"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))  # the config's account name
    word: Mapped[str] = mapped_column(String(200))
    pulled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """Append-only: who did what, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "campaign_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any] | None]


class Schedule(Base):
    """A recurring campaign (dispatcher.schedules): a cron rhythm in China time and what each firing
    sends. ``cursor`` is the time up to which firings have been looked at (by the database's clock)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    cron: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(Text)  # a file, a folder or a glob
    template: Mapped[str] = mapped_column(Text)
    account: Mapped[str] = mapped_column(String(64))
    fallbacks: Mapped[list[str] | None] = mapped_column(JSON)
    window: Mapped[str | None] = mapped_column(String(11))  # HH:MM-HH:MM, else the configured window
    workdays: Mapped[bool] = mapped_column(Boolean, default=False)
    grace_seconds: Mapped[int] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()


class ScheduleRun(Base):
    """One firing of a schedule. Unique per (schedule, firing time): however many beats or overlapping
    ticks look at a firing, only the one whose insert wins creates its campaign."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_at"),
        CheckConstraint(check_in("outcome", RunOutcome), name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # English; ``detail`` carries it as data
    detail: Mapped[dict[str, Any] | None]  # {"msgid", "params"}: said in the reader's language
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    source_file: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(check_in("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.VIEWER)
    created_at: Mapped[datetime] = _created()


class WebSession(Base):
    """A signed-in browser. The cookie carries a random id, the store only its SHA-256: signing out,
    removing the user or changing their role deletes the row, and the cookie is worth nothing."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]


class ApiToken(Base):
    """A user's bearer token for the JSON API (one per user; a new one replaces it). Only its SHA-256
    is stored: the token is shown once, by ``dispatcher user token NAME``."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = _created()
