"""Campaign actions as the web and the API do them: role and approval checks around ``campaigns``.

The lifecycle itself lives in :mod:`dispatcher.campaigns`; this module adds who may do what, the
approval rule for large campaigns, handing the returned chunk ids to the workers, the progress series
for the chart, and the throttled balance query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, cast, func, select, update
from sqlalchemy.orm import Session

from dispatcher import balance_guard, campaigns, keywords, labels, proofs
from dispatcher.config import Settings, validate_window
from dispatcher.contacts import normalise
from dispatcher.decisions import in_window, next_window_open
from dispatcher.errors import DispatcherError, InputError, NotFoundError, StateError
from dispatcher.i18n import N_, china_time
from dispatcher.results import optout_store
from dispatcher.store import (
    AuditEntry,
    Campaign,
    CampaignState,
    Recipient,
    RecipientState,
    Role,
    audit,
    utcnow,
)
from dispatcher.web import parsing
from dispatcher.web.auth import CurrentUser
from dispatcher.web.context import WebContext

WEB_BALANCE_WAIT = 3.0  # seconds a start may wait for the balance gate when no answer is remembered
SERIES_POINTS = 120  # buckets in the progress chart
SERIES_CACHE_S = 2.0


ACTING = {
    "start": N_("starting a campaign"),
    "pause": N_("pausing a campaign"),
    "resume": N_("resuming a campaign"),
    "cancel": N_("cancelling a campaign"),
    "retry": N_("retrying a campaign"),
}


class Forbidden(DispatcherError):
    """The user's role does not allow the action."""


def require(user: CurrentUser, role: Role, what: str) -> None:
    """``what`` (marked with ``N_``): what the user tried, said in the refusal."""
    if not user.can(role):
        raise Forbidden.say(
            N_("%(what)s needs the %(role)s role (you are %(yours)s)"),
            what=what,
            role=role.value,
            yours=user.role.value,
        )


def sendable(session: Session, campaign_id: int) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Recipient)
            .where(Recipient.campaign_id == campaign_id, Recipient.state != RecipientState.REJECTED.value)
        ).scalar_one()
    )


def needs_approval(ctx: WebContext, session: Session, campaign: Campaign) -> bool:
    threshold = ctx.settings.approval_threshold
    if threshold is None or campaign.approved_by:
        return False
    return sendable(session, campaign.id) > threshold


@dataclass(frozen=True)
class Created:
    """A campaign made from the web: its id, state and the summary of its list (``summary.summary``,
    the rejected rows cut to the first ones, ``rejected_total`` counting them all)."""

    campaign_id: int
    state: CampaignState
    summary: dict[str, Any]


def create(  # noqa: PLR0913 - one parameter per field of the compose form
    ctx: WebContext,
    user: CurrentUser,
    upload_name: str,
    path: Path,
    template: str,
    account: str,
    *,
    sheet: str | None,
    phone_column: str | None,
    start_at: datetime | None,
    window: str | None,
    name: str | None,
    fallbacks: list[str] | None = None,
    variant_templates: list[str] | None = None,
    split: str | None = None,
    each_number: bool = False,
) -> Created:
    """Create (draft, or scheduled at ``start_at``). A large campaign stays a draft until approved.
    The list is read, rendered and stored by a sandboxed child (:func:`parsing.create`): a list that
    would exhaust memory fails there, named by ``upload_name``, and the web process never holds one."""
    require(user, Role.SENDER, N_("creating a campaign"))
    options = {
        "actor": user.name,
        "window": window,
        "sheet": sheet or None,
        "phone_column": phone_column or None,
        "name": name or None,
        "fallbacks": fallbacks or (),
        "variant_templates": variant_templates or (),
        "split": split,
        "each_number": each_number,
    }
    made = ctx.sandbox.run(
        upload_name,
        parsing.create,
        parsing.for_child(ctx.settings),
        path,
        template,
        account,
        options,
        timeout_s=ctx.settings.parse_timeout_s,
    )
    created = Created(int(made["id"]), CampaignState(made["state"]), made["summary"])
    if start_at is not None:
        with ctx.sessions() as session:
            campaign = campaigns.get(session, created.campaign_id)
            if needs_approval(ctx, session, campaign):
                # Keep the wished time on the draft; approval schedules it (the beat only launches
                # scheduled campaigns, so nothing starts before an admin says so).
                session.execute(update(Campaign).where(Campaign.id == campaign.id).values(start_at=start_at))
                session.commit()
                return created
        campaigns.schedule(ctx.sessions, created.campaign_id, user.name, start_at)
        return Created(created.campaign_id, CampaignState.SCHEDULED, created.summary)
    return created


def approve(ctx: WebContext, user: CurrentUser, campaign_id: int) -> None:
    require(user, Role.ADMIN, N_("approving a campaign"))
    with ctx.sessions() as session:
        campaign = campaigns.get(session, campaign_id)
        if campaign.state not in (CampaignState.DRAFT, CampaignState.SCHEDULED):
            raise StateError.say(
                N_("campaign %(id)s is %(state)s: nothing to approve"), id=campaign_id, state=campaign.state
            )
        if campaign.approved_by:
            raise StateError.say(
                N_("campaign %(id)s is already approved by %(name)s"),
                id=campaign_id,
                name=campaign.approved_by,
            )
        wished = campaign.start_at if campaign.state == CampaignState.DRAFT else None
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(approved_by=user.name))
        audit(session, user.name, "campaign.approve", campaign_id, recipients=sendable(session, campaign_id))
        session.commit()
    if wished is not None and wished > datetime.now(wished.tzinfo):
        campaigns.schedule(ctx.sessions, campaign_id, user.name, wished)


def act(ctx: WebContext, user: CurrentUser, campaign_id: int, action: str) -> int:
    """``start``/``pause``/``resume``/``cancel``/``retry`` (or ``approve``); returns chunks queued."""
    if action == "approve":
        approve(ctx, user, campaign_id)
        return 0
    require(user, Role.SENDER, ACTING[action] if action in ACTING else N_("changing a campaign"))
    if action == "start":
        with ctx.sessions() as session:
            campaign = campaigns.get(session, campaign_id)
            if needs_approval(ctx, session, campaign):
                raise Forbidden.say(
                    N_(
                        "campaign %(id)s has more than %(count)s recipients: an admin must approve it before it starts"
                    ),
                    id=campaign_id,
                    count=ctx.settings.approval_threshold,
                )
        # issue 14: the balance guard (refused with the figures, flashed by the page)
        balance_guard.ensure(ctx.sessions, ctx.settings, ctx.redis, campaign_id, wait=WEB_BALANCE_WAIT)
        ids: list[int] = campaigns.start(ctx.sessions, campaign_id, user.name)
    elif action == "pause":
        campaigns.pause(ctx.sessions, campaign_id, user.name)
        ids = []
    elif action == "resume":
        ids = campaigns.resume(ctx.sessions, campaign_id, user.name)
    elif action == "cancel":
        campaigns.cancel(ctx.sessions, campaign_id, user.name)
        ids = []
    elif action == "retry":
        ids = campaigns.retry(ctx.sessions, campaign_id, user.name)
    else:
        raise StateError.say(N_("unknown action %(action)r"), action=action)
    ctx.enqueue(ids)
    return len(ids)


def status(ctx: WebContext, user: CurrentUser, campaign_id: int) -> dict[str, Any]:
    with ctx.sessions() as session:
        data = campaigns.status(session, campaign_id, ctx.liveness())
        campaign = campaigns.get(session, campaign_id)
        data["approved_by"] = campaign.approved_by
        data["created_by"] = campaign.created_by
        data["needs_approval"] = needs_approval(ctx, session, campaign)
        data["template"] = shown_template(user, campaign)
        data["retryable"] = campaigns.retryable(session, campaign_id)
    return data


def history(ctx: WebContext, campaign_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The campaign's latest audit entries, newest first, each also as the page says it (China time,
    who in words, what in words): the page renders them and its script refreshes them."""
    with ctx.sessions() as session:
        entries = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.campaign_id == campaign_id)
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
    return [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "when_shown": china_time(e.at, seconds=True),
            "actor_shown": labels.actor(e.actor),
            "action_shown": labels.history_action(e.action, e.detail),
        }
        for e in entries
    ]


def shown_template(user: CurrentUser, campaign: Campaign) -> str | None:
    """A proof's text is a rendered row of the list (a name, a coupon code): for senders and admins
    only, like the numbers it went to. A campaign's template holds placeholders, not people."""
    if campaign.proof and not user.can(Role.SENDER):
        return None
    return campaign.template


def _epoch(column: Any, dialect: str) -> Any:
    # Whole seconds since 1970 in SQL, so the database buckets a million rows into a few hundred.
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.extract("epoch", column), BigInteger)


def series(ctx: WebContext, campaign_id: int) -> dict[str, Any]:
    """Cumulative accepted and delivered counts over time, from the recipients' own timestamps
    (``submitted_at``, ``delivered_at``): survives restarts. Cached briefly: the page polls each second."""
    now = time.monotonic()
    cached = ctx.series_cache.get(campaign_id)
    if cached is not None and now - cached[0] < SERIES_CACHE_S:
        return cached[1]
    with ctx.sessions() as session:
        dialect = session.get_bind().dialect.name
        out: dict[str, Any] = {}
        for key, column in (("accepted", Recipient.submitted_at), ("delivered", Recipient.delivered_at)):
            at = _epoch(column, dialect)
            where = (Recipient.campaign_id == campaign_id, column.is_not(None))
            low, high = session.execute(select(func.min(at), func.max(at)).where(*where)).one()
            if low is None:
                out[key] = []
                continue
            step = max(1, (int(high) - int(low)) // SERIES_POINTS + 1)
            index = (at - int(low)) // step  # integer division on both backends
            rows = session.execute(
                select(index, func.count()).where(*where).group_by(index).order_by(index)
            ).all()
            total = 0
            points = []
            for bucket, count in rows:
                total += int(count)
                points.append([int(low) + (int(bucket) + 1) * step, total])
            out[key] = [[int(low), 0], *points]
    ctx.series_cache[campaign_id] = (now, out)
    return out


def balance(ctx: WebContext, account_name: str) -> dict[str, Any]:
    """The account's balance: asked of the vendor at most once per its interval (all processes share
    the gate in Redis), otherwise the last answer. Never raises: the page shows what it can."""
    return balance_guard.read_balance(ctx.settings, ctx.redis, account_name).as_dict()


def add_optouts(
    ctx: WebContext, user: CurrentUser, values: list[str], note: str | None
) -> tuple[int, list[str]]:
    """Add numbers (normalised) to the opt-out list through the store's one opt-out path, which also
    withdraws them from every chunk not yet claimed; returns (added, entries that are not numbers)."""
    require(user, Role.ADMIN, N_("editing the opt-out list"))
    good, invalid = optout_store.normalise_all(values)
    with ctx.sessions() as session:
        added = optout_store.add(session, good, source="manual", note=note)
        if added:
            audit(session, user.name, "optout.add", count=added, note=note)
        session.commit()
    return added, [value[:40] for value in invalid]


def remove_optout(ctx: WebContext, user: CurrentUser, value: str) -> None:
    require(user, Role.ADMIN, N_("editing the opt-out list"))
    mobile = normalise(value) or value
    with ctx.sessions() as session:
        if not optout_store.remove(session, [mobile]):
            raise NotFoundError.say(N_("no opt-out for %(mobile)s"), mobile=mobile)
        audit(session, user.name, "optout.remove", mobile=mobile)
        session.commit()


def counting_rules(ctx: WebContext) -> dict[str, dict[str, Any]]:
    """Per account, what the compose page's counter needs: the vendor's length limits (``text``)."""
    out = {}
    for name, account in ctx.settings.accounts.items():
        limits = keywords.vendor_rules(account.vendor).max_chars
        out[name] = {
            "vendor": account.vendor,
            "max_single": limits[0] if limits else 0,
            "max_double": limits[1] if limits else 0,
        }
    return out


def parse_start(value: str | None, timezone: str) -> datetime | None:
    """``2026-11-22T09:00`` from a datetime-local input, read in the campaign's time zone (China time)."""
    if not value or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError.say(
            N_("start time %(value)r is not a date and time (e.g. 2026-11-22T09:00)"), value=value
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(timezone))


def start_window(settings: Settings, window: str | None, start_at: str | None) -> dict[str, Any]:
    """Whether a campaign started now (or at ``start_at``, China time unless zoned) would wait for its
    send window: ``{"waiting": "window", "window_opens_at": UTC ISO}``, else ``{"waiting": None}``."""
    minutes = validate_window(window) if window else settings.send_window
    start = parse_start(start_at, settings.timezone) or utcnow()
    if in_window(start, minutes, settings.timezone):
        return {"waiting": None}
    opens = next_window_open(start, minutes, settings.timezone).astimezone(UTC)
    return {"waiting": "window", "window_opens_at": opens.isoformat(timespec="seconds")}


def send_proof(
    ctx: WebContext, user: CurrentUser, account: str, text: str, numbers: str, source: str
) -> proofs.Proof:
    """Send ``text`` to the typed ``numbers`` (at most five) as a proof campaign, queued for the workers."""
    require(user, Role.SENDER, N_("sending a proof"))
    with ctx.sessions() as session:
        opted_out = campaigns.opt_out_set(session)
    mobiles = proofs.parse_numbers(numbers, opted_out)
    sent = proofs.send(ctx.sessions, ctx.settings, account, text, mobiles, actor=user.name, name=source)
    ctx.enqueue(sent.chunk_ids)
    return sent
