"""The beat's periodic work on the store: launch due campaigns, sweep dead leases, re-queue what the
broker lost, move finished campaigns to ``sent`` and ``completed``. The store is the truth; Redis may be wiped at any time."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import campaigns
from dispatcher.errors import StateError
from dispatcher.store import (
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    Recipient,
    RecipientState,
    sweep_expired_leases,
)
from dispatcher.store.campaigns import move
from dispatcher.store.stats import reports_due
from dispatcher.store.types import db_now

SYSTEM = "scheduler"
# A queued chunk nobody touched for this long has lost its broker message (Redis restart, a purged
# queue, a deferred send): hand it to the queue again. A duplicate message is harmless (the claim).
STALE_QUEUED = timedelta(seconds=30)
STALE_QUEUED_ENV = "DISPATCHER_STALE_QUEUED_SECONDS"  # overrides STALE_QUEUED (tests shorten it)


def stale_queued() -> timedelta:
    """How long a queued chunk may sit untouched: ``DISPATCHER_STALE_QUEUED_SECONDS``, read when called."""
    value = os.environ.get(STALE_QUEUED_ENV)
    return timedelta(seconds=float(value)) if value else STALE_QUEUED


def launch_due(
    sessions: sessionmaker[Session], guard: Callable[[int], bool] | None = None
) -> dict[int, list[int]]:
    """Scheduled campaigns whose start time has come, by the database's clock (a beat whose machine
    clock is ahead would launch early) → running. Returns their queued chunk ids. ``guard`` (the
    balance guard) may hold one back: it stays scheduled, to be asked again next tick."""
    with sessions() as session:
        due = list(
            session.execute(
                select(Campaign.id).where(
                    Campaign.state == CampaignState.SCHEDULED.value, Campaign.start_at <= db_now()
                )
            ).scalars()
        )
    launched: dict[int, list[int]] = {}
    for campaign_id in due:
        if guard is not None and not guard(campaign_id):  # issue 14: balance guard
            continue
        try:
            launched[campaign_id] = campaigns.start(sessions, campaign_id, SYSTEM)
        except StateError:
            continue  # unscheduled or cancelled meanwhile
    return launched


def requeue_stale(
    sessions: sessionmaker[Session], *, older_than: timedelta | None = None, ahead: timedelta = timedelta(0)
) -> list[int]:
    """Queued chunks of running campaigns that are due and were neither queued nor re-queued lately,
    by the database's clock (``ahead``: as if that much later; tests). Claims and records stamp
    ``updated_at`` with the same clock; this sweep stamps ``requeued_at``."""
    older_than = stale_queued() if older_than is None else older_than
    now = db_now(ahead.total_seconds())
    cutoff = db_now((ahead - older_than).total_seconds())
    with sessions() as session:
        running = select(Campaign.id).where(
            Campaign.id == Chunk.campaign_id, Campaign.state == CampaignState.RUNNING.value
        )
        ids = list(
            session.execute(
                update(Chunk)
                .where(
                    Chunk.state == ChunkState.QUEUED.value,
                    Chunk.updated_at < cutoff,
                    Chunk.requeued_at.is_(None) | (Chunk.requeued_at < cutoff),
                    (Chunk.not_before.is_(None)) | (Chunk.not_before <= now),
                    running.exists(),
                )
                # Not ``updated_at`` (kept as it is, against its ``onupdate``): that says when it was
                # queued, the queue's age (operations.metrics)
                .values(requeued_at=db_now(), updated_at=Chunk.updated_at)
                .returning(Chunk.id),
                execution_options={"synchronize_session": False},
            ).scalars()
        )
        session.commit()
    return sorted(ids)


def complete_finished(sessions: sessionmaker[Session]) -> list[int]:
    """Move campaigns to the state their chunks and recipients say; returns the ids now ``completed``.

    A running campaign none of whose chunks is left to send is ``sent`` while some recipient still
    awaits a delivery report (``accepted``, on a vendor that reports), else ``completed``; a sent one is
    ``completed`` once every report has come or expired. Two repairs after a late answer (a swept
    chunk's answer that came after all): a sent or completed campaign holding a chunk to send again runs
    again, and a completed one whose chunk it accepted is ``sent`` again (reports are due).

    Per campaign, one transaction locks its row (a retry or a late answer that re-queues a chunk holds
    that lock while it writes) and moves it only if, in that same UPDATE, the condition still holds: a
    chunk re-queued a moment ago is never left in a finished campaign."""
    open_chunk = (
        select(Chunk.id)
        .where(Chunk.campaign_id == Campaign.id, Chunk.state.in_(campaigns.OPEN_CHUNKS))
        .exists()
    )
    with sessions() as session:
        due = reports_due(session)  # by the vendor that took each (a failover may have changed it)
    awaiting = (
        select(Recipient.id)
        .where(Recipient.campaign_id == Campaign.id, Recipient.state == RecipientState.ACCEPTED.value, due)
        .exists()
    )
    S = CampaignState
    # (from, to, condition), in this order: one campaign may take two steps in one tick.
    moves = (
        (S.SENT, S.RUNNING, open_chunk),
        (S.COMPLETED, S.RUNNING, open_chunk),
        (S.RUNNING, S.SENT, ~open_chunk & awaiting),
        (S.RUNNING, S.COMPLETED, ~open_chunk & ~awaiting),
        (S.SENT, S.COMPLETED, ~open_chunk & ~awaiting),
        (S.COMPLETED, S.SENT, ~open_chunk & awaiting),
    )
    completed = []
    for source, target, condition in moves:
        with sessions() as session:
            candidates = list(
                session.execute(
                    select(Campaign.id).where(Campaign.state == source.value, condition)
                ).scalars()
            )
        for campaign_id in candidates:
            with sessions() as session:
                locked = (
                    select(Campaign.state).where(Campaign.id == campaign_id).with_for_update(key_share=True)
                )
                if session.execute(locked).scalar_one_or_none() != source:
                    continue
                if move(session, campaign_id, source, target, SYSTEM, only_if=condition):
                    session.commit()
                    if target is S.COMPLETED:
                        completed.append(campaign_id)
    return completed


def sweep(sessions: sessionmaker[Session]) -> list[int]:
    """Chunks left in ``sending`` by a dead worker (lease expired, by the database's clock) → ``unknown``."""
    with sessions() as session:
        return sweep_expired_leases(session)
