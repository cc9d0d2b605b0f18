"""What a campaign is waiting for, in one word: ``status["waiting"]`` (``campaign status --json``, the API).

    None            nothing: it is sending, or it has ended, or a person paused it
    "schedule"      scheduled; the beat starts it at ``start_at``
    "window"        outside its send window (or the gateway's sending hours): ``window_opens_at``
    "rate_limit"    the gateway said "too frequent" / "try later": ``retry_at``
    "account"       paused by an account error (password, balance ...): ``account_error`` {code, meaning}
    "reports"       every message is sent; delivery reports are due: ``reports_due``
    "workers"       it has requests to send but no live worker of its store consumes their queue (no
                    heartbeat for 3 intervals, 15 s by default), or it needs the beat's tasks and no
                    live worker consumes the beat's queue: ``workers_seen_at`` (null: never seen)
    "beat"          it needs the beat (a due launch, a re-queue, reports, its completion) and the beat of
                    its store has not been seen for 6 intervals (30 s by default): ``beat_seen_at``

    "redis"         it needs the workers or the beat, and Redis (the limiter's, where their heartbeats
                    are) does not answer: nothing can be sent meanwhile

The last three need the processes' heartbeats (``operations.heartbeat.Liveness``): without them (no Redis
to read) they are not said.

Times are UTC ISO-8601 (the API's); pages and the CLI say them in China time. :func:`waiting` is pure;
:func:`pending` reads what it needs from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dispatcher.decisions import in_window, next_window_open
from dispatcher.operations.heartbeat import Liveness
from dispatcher.store import Campaign, CampaignState, Chunk, ChunkState
from dispatcher.store.stats import reports_due_count
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.wire import ErrorClass

SLOWED = (ErrorClass.RATE_LIMITED.value, ErrorClass.RETRY_LATER.value)
# Waits for a time: said as they are; the processes are looked at once the time has come.
TIMED = ("schedule", "window", "rate_limit")


@dataclass(frozen=True)
class Pending:
    """A campaign's open work, as the store has it."""

    to_send: int  # chunks planned or queued
    sending: int
    due_now: int  # queued chunks whose time has come
    next_due: datetime | None  # the earliest time a queued chunk may go
    slowed: bool  # a chunk not yet due was refused "too frequent" / "try later"
    outside_hours: bool  # a chunk not yet due was refused "outside sending hours"
    account_code: str | None  # the code of an account error that sent a chunk back to the queue
    reports_due: int  # accepted recipients awaiting their report


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def account_error(vendor: str, code: str) -> dict[str, str]:
    """The code, with what it means in the vendor's document (Chinese) and in English."""
    out = {"code": code, "meaning": "", "meaning_zh": ""}
    if code.lstrip("-").isdigit():
        info = vendor_module(vendor).classify(int(code))
        out.update(meaning=info.meaning_en, meaning_zh=info.meaning)
    return out


def waiting(
    campaign: Campaign, pending: Pending, now: datetime, liveness: Liveness | None = None
) -> dict[str, Any]:
    """``{"waiting": ...}`` and the details that go with it (see the module's docstring)."""
    found = _waiting(campaign, pending, now)
    due = campaign.start_at is None or campaign.start_at <= now
    if liveness is None or (found["waiting"] in TIMED and not (found["waiting"] == "schedule" and due)):
        return found
    state = campaign.state
    needs_beat = state in (CampaignState.RUNNING, CampaignState.SENT) or (
        state == CampaignState.SCHEDULED and due
    )
    # A worker is needed now when requests wait to go, and a worker on the beat's queue whenever the
    # beat is needed: the beat only schedules its tasks.
    sends_now = state == CampaignState.RUNNING and bool(pending.to_send or pending.sending)
    if not liveness.readable and (sends_now or needs_beat):
        return {"waiting": "redis"}
    if (sends_now and not liveness.workers_alive) or (needs_beat and not liveness.beat_tasks_consumed):
        return {"waiting": "workers", "workers_seen_at": _seen(liveness.workers_seen_at)}
    if needs_beat and not liveness.beat_alive:
        return {"waiting": "beat", "beat_seen_at": _seen(liveness.beat_seen_at)}
    return found


def _seen(at: datetime | None) -> str | None:
    return _iso(at) if at is not None else None


def _waiting(campaign: Campaign, pending: Pending, now: datetime) -> dict[str, Any]:
    state = campaign.state
    if state == CampaignState.SCHEDULED:
        return {"waiting": "schedule"}
    if state == CampaignState.PAUSED and pending.account_code is not None:
        return {"waiting": "account", "account_error": account_error(campaign.vendor, pending.account_code)}
    if state == CampaignState.SENT:
        return {"waiting": "reports", "reports_due": pending.reports_due}
    if state != CampaignState.RUNNING or not pending.to_send:
        return {"waiting": None}
    window = (campaign.window_start, campaign.window_end)
    if not in_window(now, window, campaign.timezone):
        return {
            "waiting": "window",
            "window_opens_at": _iso(next_window_open(now, window, campaign.timezone)),
        }
    if pending.due_now or pending.sending or pending.next_due is None:
        return {"waiting": None}
    if pending.outside_hours:
        return {"waiting": "window", "window_opens_at": _iso(pending.next_due)}
    if pending.slowed:
        return {"waiting": "rate_limit", "retry_at": _iso(pending.next_due)}
    return {"waiting": None}


def pending(
    session: Session, campaign: Campaign, by_state: dict[str, int], accepted: int, now: datetime
) -> Pending:
    """Read :class:`Pending` for ``campaign``; ``by_state``: its chunk counts per state, ``accepted``: its
    accepted recipients, ``now``: UTC."""
    queued = (Chunk.campaign_id == campaign.id, Chunk.state == ChunkState.QUEUED.value)
    later = (*queued, Chunk.not_before > now)
    due_now, next_due = session.execute(
        select(
            func.count().filter(or_(Chunk.not_before.is_(None), Chunk.not_before <= now)),
            func.min(Chunk.not_before),
        ).where(*queued)
    ).one()
    later_codes = {
        (error_class, code)
        for error_class, code in session.execute(
            select(Chunk.error_class, Chunk.code).where(*later).distinct().limit(50)
        )
    }
    module = vendor_module(campaign.vendor)
    outside = any(
        code and code.lstrip("-").isdigit() and module.classify(int(code)).outside_hours
        for _, code in later_codes
    )
    account_code = session.execute(
        select(func.coalesce(Chunk.code, ""))
        .where(*queued, Chunk.error_class == ErrorClass.ACCOUNT.value)
        .limit(1)
    ).scalar_one_or_none()
    return Pending(
        to_send=by_state.get(ChunkState.PLANNED.value, 0) + by_state.get(ChunkState.QUEUED.value, 0),
        sending=by_state.get(ChunkState.SENDING.value, 0),
        due_now=int(due_now),
        next_due=next_due,
        slowed=any(error_class in SLOWED for error_class, _ in later_codes),
        outside_hours=outside,
        account_code=account_code,
        reports_due=reports_due_count(session, campaign, accepted),
    )
