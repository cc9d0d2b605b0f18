"""Campaign lifecycle on the store: create from a spreadsheet, start, pause, resume, cancel, retry.

Every function takes a ``sessionmaker`` and returns plain values; the CLI, the web app and the
beat tasks call these and hand the chunk ids they return to the queue (``workers.tasks``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import chunker, keywords, routing, variants, waiting
from dispatcher.config import Settings, validate_window
from dispatcher.contacts import IngestResult, ingest
from dispatcher.contacts.digest import file_sha256
from dispatcher.decisions import CANCELLED
from dispatcher.errors import InputError, NotFoundError, StateError, StoreError
from dispatcher.i18n import N_
from dispatcher.operations.heartbeat import Liveness
from dispatcher.store import (
    TRANSITIONS,
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    NewRecipient,
    OptOut,
    Recipient,
    RecipientState,
    Upload,
    audit,
    transition,
    utcnow,
)
from dispatcher.store.bulk import bind_value, write_rows
from dispatcher.store.campaigns import locked_state, move, refuse
from dispatcher.store.chunks import remember_unknown_requests
from dispatcher.store.recipients import AcceptedColumns, counts_and_segments, insert_upload
from dispatcher.store.stats import extend_status
from dispatcher.store.types import db_now
from dispatcher.vendors.wire import ErrorClass

# Failed chunks that "retry failed" sends again: a transient cause, or an account since fixed.
RETRYABLE_CLASSES = frozenset(
    {ErrorClass.RATE_LIMITED, ErrorClass.RETRY_LATER, ErrorClass.ACCOUNT, ErrorClass.UNKNOWN}
)
_CANCELLED_UNKNOWN = "campaign cancelled; the first, unknown request of this chunk may have been accepted"
OPEN_CHUNKS = (ChunkState.PLANNED.value, ChunkState.QUEUED.value, ChunkState.SENDING.value)


@dataclass(frozen=True)
class Created:
    campaign_id: int
    state: CampaignState
    result: IngestResult
    chunks: list[chunker.PlannedChunk]


def _same_file(path: Path, digest: str) -> bytes:
    """The file's bytes, kept with the upload; refused (nothing stored) when they are not what
    ``digest`` was taken of, before the file was read."""
    try:
        content = path.read_bytes()
    except OSError:
        content = b""
    if hashlib.sha256(content).hexdigest() != digest:
        raise InputError.say(
            N_("%(file)s changed while it was read: nothing was stored; try again once it is written"),
            file=path.name,
        )
    return content


def opt_out_set(session: Session) -> frozenset[str]:
    return frozenset(session.execute(select(OptOut.mobile)).scalars())


def create(  # noqa: PLR0913 (the campaign's settings, keyword-only: a form's fields)
    sessions: sessionmaker[Session],
    settings: Settings,
    path: str | Path,
    template: str,
    account_name: str,
    *,
    actor: str,
    start_at: datetime | None = None,
    window: str | None = None,
    sheet: str | int | None = None,
    phone_column: str | None = None,
    name: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    fallbacks: Sequence[str] = (),
    variant_templates: Sequence[str] = (),
    split: str | None = None,
    transactional: bool = False,
    each_number: bool = False,
) -> Created:
    """Read, validate, render and plan a campaign; store every input row. ``start_at`` schedules it.
    ``fallbacks``: accounts to fail over to, in order (:mod:`dispatcher.failover`); ``variant_templates``:
    more templates for an A/B test, shared by ``split`` (:mod:`dispatcher.variants`)."""
    account = settings.account(account_name)
    fallback_list = routing.check_fallbacks(settings, account_name, fallbacks)  # issue 14
    path = Path(path)
    window_minutes = validate_window(window) if window else settings.send_window
    with sessions() as session:
        opted_out = opt_out_set(session)
        text_rules = keywords.rules(session, account)  # forbidden words, '&' when encrypted, length
    # The file is read once per template, then kept with the upload: its digest before and after says
    # every read saw the bytes kept (a schedule's source may be rewritten meanwhile).
    digest = file_sha256(path) if path.is_file() else ""
    result = ingest(
        path,
        template,
        sheet=sheet,
        phone_column=phone_column,
        opt_outs=opted_out,
        rules=text_rules,
        progress=progress,
        limits=settings.sheet_limits,
        dedupe=not variant_templates,  # an A/B test de-duplicates once each row has its variant
        each_number=each_number,
    )
    # issue 14: A/B variants, every template rendered for the whole list (a row takes its own variant's)
    weights = variants.parse_split(split, 1 + len(variant_templates)) if variant_templates or split else []
    extra = [
        ingest(
            path,
            other,
            sheet=sheet,
            phone_column=phone_column,
            opt_outs=opted_out,
            rules=text_rules,
            limits=settings.sheet_limits,
            dedupe=False,
            each_number=each_number,
        )
        for other in variant_templates
    ]
    if not result.messages.mobiles and not any(e.messages.mobiles for e in extra):
        raise InputError.say(
            N_("%(file)s: no recipient left to send to: all %(rows)s rows were rejected (see `check`)"),
            file=path.name,
            rows=result.rows,
        )
    if start_at is not None and start_at.tzinfo is None:
        raise StoreError.say(N_("the start time needs a time zone (e.g. 2026-11-22T09:00+08:00)"))
    state = CampaignState.SCHEDULED if start_at is not None else CampaignState.DRAFT
    with sessions() as session:
        campaign_id = session.execute(
            insert(Campaign)
            .values(
                name=name or path.stem,
                account=account.name,
                vendor=account.vendor,
                template=template,
                state=state.value,
                start_at=start_at,
                window_start=window_minutes[0],
                window_end=window_minutes[1],
                timezone=settings.timezone,
                created_by=actor,
                fallbacks=fallback_list,
                transactional=transactional,
            )
            .returning(Campaign.id)
        ).scalar_one()
        variant_of: list[int] = []
        if extra:  # issue 14: one variant per chunk
            result, variant_of = variants.merge([result, *extra], campaign_id, weights)
            chunks, _ = variants.plan(result, variant_of, account, campaign_id)
        else:
            chunks = chunker.plan(
                result.messages.mobiles,
                result.messages.texts,
                account.vendor,
                campaign_id=campaign_id,
                separators=account.separators(),
                same_text_max=account.same_text_max,
                encrypted=account.encrypted,
            )
        messages = result.messages
        chunk_of, text_in_chunk = insert_chunks(session, campaign_id, chunks, len(messages), account.name)
        # Split children are numbered after the planned chunks.
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(next_seq=len(chunks)))
        _store_recipients(session, campaign_id, result, chunk_of, text_in_chunk)
        content = _same_file(path, digest)
        if extra:  # issue 14
            variants.tag(session, campaign_id, chunk_of, variant_of)
            described = variants.describe([template, *variant_templates], weights)
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(variants=described))
        session.execute(
            insert(Upload).values(
                campaign_id=campaign_id,
                file_name=path.name,
                sheet=result.sheet,
                phone_column=result.phone_column,
                rows_total=result.rows,
                rows_accepted=len(messages),
                rows_rejected=len(result.rejected),
                size_bytes=path.stat().st_size,
                sha256=digest,
                content=content,  # the export reads each row's own cells from it
                header_row=result.header_row,
                headers=list(result.headers),
                uploaded_by=actor,
            )
        )
        audit(session, actor, "campaign.create", campaign_id, file=path.name, recipients=len(messages))
        if transactional:  # exempt from the frequency caps: said in the log, for whoever asks why
            audit(session, actor, "campaign.transactional", campaign_id)
        session.commit()
    return Created(campaign_id, state, result, chunks)


_CHUNK_COLUMNS = (
    "campaign_id",
    "seq",
    "ref",
    "method",
    "text",
    "recipient_count",
    "state",
    "attempts",
    "created_at",
    "updated_at",
    "account",
)


def insert_chunks(
    session: Session,
    campaign_id: int,
    chunks: Sequence[chunker.PlannedChunk],
    messages: int,
    account: str | None = None,
) -> tuple[list[int], list[bool]]:
    """Insert the planned chunks of a new campaign, packed for ``account``. Returns, for every message
    index, its chunk id and whether that chunk carries its text (a same-text or single request).

    Written in bulk, then their ids read back in ``seq`` order (one SELECT, not a RETURNING per row).
    """
    table = cast(Table, Chunk.__table__)
    now = bind_value(table.c.created_at, utcnow(), session.connection().dialect)
    planned = ChunkState.PLANNED.value
    rows = (
        (campaign_id, c.seq, c.ref, c.method, c.text, len(c.mobiles), planned, 0, now, now, account)
        for c in chunks
    )
    write_rows(session, table, _CHUNK_COLUMNS, rows)
    query = select(table.c.id).where(table.c.campaign_id == campaign_id).order_by(table.c.seq)
    ids = session.connection().execute(query).scalars()  # Core: no ORM work per row
    chunk_of = [0] * messages
    text_in_chunk = [False] * messages
    for chunk, chunk_id in zip(chunks, ids, strict=True):
        indexes = chunk.indexes
        first, last = indexes[0], indexes[-1]
        if last - first + 1 == len(indexes):  # a run of consecutive messages (the usual pool)
            chunk_of[first : last + 1] = repeat(chunk_id, len(indexes))
            if chunk.text is not None:
                text_in_chunk[first : last + 1] = repeat(True, len(indexes))
            continue
        for index in indexes:
            chunk_of[index] = chunk_id
            text_in_chunk[index] = chunk.text is not None
    return chunk_of, text_in_chunk


def _store_recipients(
    session: Session,
    campaign_id: int,
    result: IngestResult,
    chunk_of: list[int],
    text_in_chunk: list[bool],
) -> None:
    """Every input row, accepted or rejected, in spreadsheet order."""
    m = result.messages
    accepted = AcceptedColumns(m.rows, m.mobiles, m.texts, m.segments, chunk_of, text_in_chunk)
    # A rejected row keeps its number whatever the reason (a missing value, a forbidden word ...): the
    # normalised one when it is one, else the phone cell as written.
    phone_column = result.phone_column
    rejected = [
        NewRecipient(
            row_number=r.row,
            position=0,
            mobile=r.mobile,
            raw_value=(r.value if r.column == phone_column else r.mobile or r.value)[:255],
            reject_reason=r.reason[:64],
            reject_code=r.code,
            reject_params={**r.params, "column": r.column} if r.column else dict(r.params),
        )
        for r in result.rejected
    ]
    insert_upload(session, campaign_id, accepted, rejected)


def get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError.say(N_("no campaign %(id)s"), id=campaign_id)
    return campaign


def queue_chunks(session: Session, campaign_id: int, from_states: Sequence[str]) -> list[int]:
    """Chunks of the campaign in ``from_states`` → ``queued`` (and their recipients); returns their ids."""
    ids = list(
        session.execute(
            update(Chunk)
            .where(Chunk.campaign_id == campaign_id, Chunk.state.in_(from_states))
            .values(state=ChunkState.QUEUED.value, not_before=None, updated_at=db_now())
            .returning(Chunk.id),
            execution_options={"synchronize_session": False},
        ).scalars()
    )
    session.execute(
        update(Recipient)
        .where(Recipient.campaign_id == campaign_id, Recipient.state == RecipientState.PLANNED.value)
        .values(state=RecipientState.QUEUED.value),
        execution_options={"synchronize_session": False},
    )
    return sorted(ids)


def queued_chunk_ids(session: Session, campaign_id: int) -> list[int]:
    return list(
        session.execute(
            select(Chunk.id)
            .where(Chunk.campaign_id == campaign_id, Chunk.state == ChunkState.QUEUED.value)
            .order_by(Chunk.seq)
        ).scalars()
    )


def start(sessions: sessionmaker[Session], campaign_id: int, actor: str) -> list[int]:
    """``draft``/``scheduled`` → ``running``: every planned chunk is queued. Returns the chunk ids.
    One transaction under the campaign lock: a cancel or a second start waits, then sees it."""
    with sessions() as session:
        source = _locked_state(session, campaign_id)
        if source == CampaignState.DRAFT:
            # "Start now" is a schedule for now: the lifecycle goes draft → scheduled → running.
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(start_at=utcnow()))
            move(session, campaign_id, source, CampaignState.SCHEDULED, actor, start="now")
            source = CampaignState.SCHEDULED
        if CampaignState.RUNNING not in TRANSITIONS[source] or not move(
            session, campaign_id, source, CampaignState.RUNNING, actor
        ):
            refuse(session, campaign_id, source, CampaignState.RUNNING)
        ids = queue_chunks(session, campaign_id, [ChunkState.PLANNED.value])
        session.commit()
        return ids


def schedule(sessions: sessionmaker[Session], campaign_id: int, actor: str, at: datetime) -> None:
    with sessions() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(start_at=at))
        transition(session, campaign_id, CampaignState.SCHEDULED, actor, start_at=at.isoformat())


def pause(sessions: sessionmaker[Session], campaign_id: int, actor: str) -> None:
    """Takes effect at once for chunks not yet claimed: a claim requires a running campaign."""
    with sessions() as session:
        transition(session, campaign_id, CampaignState.PAUSED, actor)


def resume(sessions: sessionmaker[Session], campaign_id: int, actor: str) -> list[int]:
    """``paused`` → ``running``; its queued chunks go to the workers again. Only a paused campaign: a
    scheduled one "resumed" would run without its planned chunks ever being queued (``start`` does that)."""
    with sessions() as session:
        source = _locked_state(session, campaign_id)
        if source != CampaignState.PAUSED or not move(
            session, campaign_id, source, CampaignState.RUNNING, actor
        ):
            refuse(session, campaign_id, source, CampaignState.RUNNING)
        ids = queued_chunk_ids(session, campaign_id)
        _touch(session, ids)
        session.commit()
        return ids


def cancel(sessions: sessionmaker[Session], campaign_id: int, actor: str) -> int:
    """Nothing more is sent: unsent chunks fail as ``cancelled`` and their recipients become
    ``cancelled`` (never sent), in the transaction that cancels the campaign; a chunk an operator
    re-queued from ``unknown`` is ``unknown`` again (its first request may have been taken). A chunk in flight ends
    when its answer is recorded: accepted or unknown as answered, anything that would send it again
    fails as ``cancelled`` (its recipients ``cancelled``). Returns how many chunks were closed here."""
    with sessions() as session:
        source = _locked_state(session, campaign_id)
        if CampaignState.CANCELLED not in TRANSITIONS[source]:
            refuse(session, campaign_id, source, CampaignState.CANCELLED)
        if not move(session, campaign_id, source, CampaignState.CANCELLED, actor):
            session.rollback()  # cannot happen under the lock; never close chunks of a live campaign
            raise StateError.say(
                N_("campaign %(id)s changed state meanwhile; not moved to %(target)s"),
                id=campaign_id,
                target=CampaignState.CANCELLED,
            )
        waiting = (
            Chunk.campaign_id == campaign_id,
            Chunk.state.in_((ChunkState.PLANNED.value, ChunkState.QUEUED.value)),
        )
        # Re-queued from unknown by an operator: its first request may have been taken. Unknown again,
        # never "not sent".
        again = list(
            session.execute(
                update(Chunk)
                .where(*waiting, Chunk.requeued_from_unknown)
                .values(state=ChunkState.UNKNOWN.value, detail=_CANCELLED_UNKNOWN, updated_at=utcnow())
                .returning(Chunk.id),
                execution_options={"synchronize_session": False},
            ).scalars()
        )
        for start in range(0, len(again), 1000):
            session.execute(
                update(Recipient)
                .where(
                    Recipient.chunk_id.in_(again[start : start + 1000]),
                    Recipient.state == RecipientState.QUEUED.value,
                )
                .values(state=RecipientState.UNKNOWN.value),
                execution_options={"synchronize_session": False},
            )
        ids = list(
            session.execute(
                update(Chunk)
                .where(*waiting)
                .values(state=ChunkState.FAILED.value, error_class=CANCELLED, updated_at=utcnow())
                .returning(Chunk.id),
                execution_options={"synchronize_session": False},
            ).scalars()
        )
        for start in range(0, len(ids), 1000):
            session.execute(
                update(Recipient)
                .where(
                    Recipient.chunk_id.in_(ids[start : start + 1000]),
                    Recipient.state.in_((RecipientState.PLANNED.value, RecipientState.QUEUED.value)),
                )
                .values(state=RecipientState.CANCELLED.value, error_class=CANCELLED),
                execution_options={"synchronize_session": False},
            )
        session.commit()
        return len(ids) + len(again)


def retryable(session: Session, campaign_id: int) -> int:
    """How many recipients a retry (without ``include_unknown``) would queue again: those still failed or
    unknown in a failed chunk whose class allows a retry. The page offers the button only then."""
    classes = [c.value for c in RETRYABLE_CLASSES]
    again = [RecipientState.FAILED.value, RecipientState.UNKNOWN.value]
    return int(
        session.execute(
            select(func.count())
            .select_from(Recipient)
            .join(Chunk, Chunk.id == Recipient.chunk_id)
            .where(
                Recipient.campaign_id == campaign_id,
                Recipient.state.in_(again),
                Chunk.state == ChunkState.FAILED.value,
                Chunk.error_class.in_(classes),
            )
        ).scalar_one()
    )


def retry(
    sessions: sessionmaker[Session], campaign_id: int, actor: str, *, include_unknown: bool = False
) -> list[int]:
    """Re-queue failed chunks whose class allows it (and ``unknown`` ones only when asked).

    One conditional UPDATE re-queues the chunks that are, at that moment, still failed with such a
    class (or unknown), of a campaign not cancelled, with a recipient still failed (or unknown): a
    chunk a report or a late answer settled a moment ago is left alone. Only those recipients go
    back to ``queued``; recipients already accepted or delivered are never touched (and a claim sends
    only recipients still waiting). A sent or completed campaign runs again; a paused one stays paused,
    and its re-queued chunks leave when a person resumes it.
    """
    classes = [c.value for c in RETRYABLE_CLASSES]
    again = [RecipientState.FAILED.value, RecipientState.UNKNOWN.value]
    with sessions() as session:
        state = _locked_state(session, campaign_id)  # a cancel waits for this transaction
        if state == CampaignState.CANCELLED:
            raise StateError.say(
                N_("campaign %(id)s was cancelled: cancelled campaigns are final and cannot be retried"),
                id=campaign_id,
            )
        if state in (CampaignState.DRAFT, CampaignState.SCHEDULED):
            raise StateError.say(
                N_("campaign %(id)s is %(state)s: it has not sent anything to retry"),
                id=campaign_id,
                state=state,
            )
        retryable = (Chunk.state == ChunkState.FAILED.value) & Chunk.error_class.in_(classes)
        if include_unknown:
            retryable = retryable | (Chunk.state == ChunkState.UNKNOWN.value)
        not_cancelled = select(Campaign.id).where(
            Campaign.id == campaign_id, Campaign.state != CampaignState.CANCELLED.value
        )
        # A split parent has no recipients left (its children carry them): nothing to re-queue.
        has_waiting = select(Recipient.id).where(Recipient.chunk_id == Chunk.id, Recipient.state.in_(again))
        unknown = set(
            session.execute(
                select(Chunk.id).where(
                    Chunk.campaign_id == campaign_id, Chunk.state == ChunkState.UNKNOWN.value
                )
            ).scalars()
            if include_unknown
            else ()
        )
        ids = sorted(
            session.execute(
                update(Chunk)
                .where(
                    Chunk.campaign_id == campaign_id, retryable, has_waiting.exists(), not_cancelled.exists()
                )
                .values(
                    state=ChunkState.QUEUED.value,
                    not_before=None,
                    error_class=None,
                    requeued_from_unknown=Chunk.requeued_from_unknown
                    | (Chunk.state == ChunkState.UNKNOWN.value),
                    updated_at=db_now(),
                )
                .returning(Chunk.id),
                execution_options={"synchronize_session": False},
            ).scalars()
        )
        # The requests that may have been taken, with the account each went out on: evidence of them
        # (a report, "already sent") is weighed on that account, wherever the re-send goes.
        remember_unknown_requests(session, unknown.intersection(ids))
        for start in range(0, len(ids), 1000):
            session.execute(
                update(Recipient)
                .where(Recipient.chunk_id.in_(ids[start : start + 1000]), Recipient.state.in_(again))
                .values(state=RecipientState.QUEUED.value, error_class=None, vendor_code=None),
                execution_options={"synchronize_session": False},
            )
        if not ids:
            session.rollback()
            return []
        audit(session, actor, "campaign.retry", campaign_id, chunks=len(ids), include_unknown=include_unknown)
        if state in (CampaignState.SENT, CampaignState.COMPLETED):
            move(session, campaign_id, state, CampaignState.RUNNING, actor, reason="retry")
        session.commit()
        return ids


def _locked_state(session: Session, campaign_id: int) -> CampaignState:
    """The campaign's state under the campaign lock (:func:`store.campaigns.locked_state`): a
    concurrent cancel, retry or resume waits, then sees what this transaction did."""
    state = locked_state(session, campaign_id)
    if state is None:
        raise NotFoundError.say(N_("no campaign %(id)s"), id=campaign_id)
    return state


def _touch(session: Session, ids: Sequence[int]) -> None:
    """Mark chunks as just handed to the queue (the requeue sweep leaves them alone for a while)."""
    for start in range(0, len(ids), 1000):
        session.execute(
            update(Chunk).where(Chunk.id.in_(ids[start : start + 1000])).values(updated_at=db_now()),
            execution_options={"synchronize_session": False},
        )


def status(session: Session, campaign_id: int, liveness: Liveness | None = None) -> dict[str, Any]:
    """The campaign's state, recipient counts and what it waits for (``campaign status --json``);
    ``liveness``: the processes of its store, from their heartbeats (``"workers"`` and ``"beat"``)."""
    campaign = get(session, campaign_id)
    by_state, segments = counts_and_segments(session, campaign_id)
    sendable = sum(v for k, v in by_state.items() if k != RecipientState.REJECTED.value)
    data: dict[str, Any] = {
        "id": campaign.id,
        "name": campaign.name,
        "state": campaign.state,
        "account": campaign.account,
        "vendor": campaign.vendor,
        "start_at": campaign.start_at.isoformat() if campaign.start_at else None,
        "rows": sum(by_state.values()),
        "recipients": sendable,
        "rejected": by_state.get(RecipientState.REJECTED.value, 0),
    }
    for state in RecipientState:
        if state is not RecipientState.REJECTED:
            data[state.value] = by_state.get(state.value, 0)
    chunk_states = dict(
        session.execute(
            select(Chunk.state, func.count()).where(Chunk.campaign_id == campaign_id).group_by(Chunk.state)
        ).all()
    )
    data["chunks"] = {str(k): int(v) for k, v in chunk_states.items()}
    # Re-sent from unknown, and the reports showed both requests reached it (issue 22).
    data["sent_twice"] = session.execute(
        select(func.count()).where(Recipient.campaign_id == campaign_id, Recipient.sent_twice)
    ).scalar_one()
    now = utcnow()
    data.update(
        waiting.waiting(
            campaign,
            waiting.pending(session, campaign, data["chunks"], data["accepted"], now),
            now,
            liveness,
        )
    )
    routing.extend_status(session, campaign, data)  # balance hold, accounts, variants
    return extend_status(session, data, segments=segments)  # delivery, failures, orphans, cost
