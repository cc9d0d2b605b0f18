"""Routing figures on a campaign's status (issue 14): the balance guard's hold, per-account and
per-variant figures. Reads only; the moves themselves are :mod:`dispatcher.failover`, the guard
:mod:`dispatcher.balance_guard`, the A/B split :mod:`dispatcher.variants`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store import Campaign, CampaignState, Recipient, RecipientState

# Per-account figures: recipients in these states (plus their total).
ACCOUNT_STATES = ("accepted", "delivered", "undelivered", "expired", "failed", "unknown", "queued", "planned")
# A recipient counts as accepted by the gateway once it is accepted or has a report.
TAKEN = (
    RecipientState.ACCEPTED.value,
    RecipientState.DELIVERED.value,
    RecipientState.UNDELIVERED.value,
    RecipientState.EXPIRED.value,
)


def check_fallbacks(settings: Settings, account: str, fallbacks: Sequence[str]) -> list[str] | None:
    """The fallback accounts, checked: configured, none repeated, not the account itself."""
    seen = {account}
    out = []
    for name in fallbacks:
        name = name.strip()
        if not name:
            continue
        settings.account(name)  # ConfigError naming the known ones
        if name in seen:
            raise ConfigError(f"fallback account {name!r} is given twice (or is the campaign's own account)")
        seen.add(name)
        out.append(name)
    return out or None


def account_figures(session: Session, campaign: Campaign) -> dict[str, dict[str, int]]:
    """``{account: {"recipients", "accepted" (taken by the gateway), "delivered", ...}}``."""
    name = func.coalesce(Recipient.account, campaign.account)
    rows = session.execute(
        select(name, Recipient.state, func.count())
        .where(Recipient.campaign_id == campaign.id, Recipient.state != RecipientState.REJECTED.value)
        .group_by(name, Recipient.state)
    ).all()
    out: dict[str, dict[str, int]] = {}
    # Every account of the route, in order: those left behind, the current one, the fallbacks.
    left = [m.get("from") for m in (campaign.routing or {}).get("moves", [])]
    for account in [*left, campaign.account, *(campaign.fallbacks or [])]:
        out.setdefault(account, {k: 0 for k in ("recipients", *ACCOUNT_STATES, "cancelled")})
    for account, state, count in rows:
        figures = out.setdefault(account, {k: 0 for k in ("recipients", *ACCOUNT_STATES, "cancelled")})
        figures["recipients"] += int(count)
        if state in TAKEN:
            figures["accepted"] += int(count)
        if state != RecipientState.ACCEPTED.value and state in figures:
            figures[state] += int(count)
    return out


def extend_status(session: Session, campaign: Campaign, data: dict[str, Any]) -> None:
    """Add the routing figures to ``campaigns.status``'s ``data`` (in place)."""
    routing = campaign.routing or {}
    hold = routing.get("hold")
    if hold and campaign.state == CampaignState.SCHEDULED:
        data["waiting"] = "balance"
        data["balance_hold"] = hold
    data["fallbacks"] = list(campaign.fallbacks or [])
    data["failovers"] = list(routing.get("moves", []))
    if campaign.fallbacks or routing.get("moves"):
        data["accounts"] = account_figures(session, campaign)
    else:  # one account: its figures are the campaign's (no second pass over the recipients)
        one = {k: int(data.get(k, 0)) for k in ("recipients", *ACCOUNT_STATES, "cancelled")}
        one["accepted"] = sum(int(data.get(k, 0)) for k in TAKEN)
        data["accounts"] = {campaign.account: one}
    if campaign.variants:
        from dispatcher import variants

        data.update(variants.figures(session, campaign))
