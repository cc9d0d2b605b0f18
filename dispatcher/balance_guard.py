"""The balance guard: a campaign does not start unless its accounts hold what it will cost.

Before a start (by hand, by the web, or by the beat launching a scheduled campaign) the cost of what is
left to send (its recipients' segments × the account's ``price_per_segment``) is compared with the
account's balance, asked of the vendor through the shared :class:`~dispatcher.ratelimit.BalanceGate`
(never more often than the vendor allows; between two queries the last answer stands). With fallback
accounts, what the first cannot pay for is planned on the next ones (:func:`plan`, pure).

An account without ``price_per_segment`` cannot be costed: the guard says so and does not refuse. A
balance that cannot be read (Redis down, the gateway unreachable) does not refuse either: sending
would meet the same account error, and failover or the account pause handles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.errors import DispatcherError, StateError, UnsupportedMethodError
from dispatcher.i18n import N_
from dispatcher.ratelimit import BalanceGate
from dispatcher.store import Campaign, Recipient, RecipientState
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import for_account as transport_for

# Recipients a start would send: still waiting (a scheduled campaign's are planned).
TO_SEND = (RecipientState.PLANNED.value, RecipientState.QUEUED.value)


@dataclass(frozen=True)
class Reading:
    account: str
    value: str | None  # the vendor's figure, as it answered
    cached: bool  # the last answer: the gate did not allow a query now
    error: str | None
    age: float | None = None  # seconds since the vendor gave ``value``; None: unknown

    @property
    def amount(self) -> Decimal | None:
        try:
            amount = Decimal(self.value) if self.value is not None else None
        except InvalidOperation:
            return None
        return amount if amount is not None and amount.is_finite() else None

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "value": self.value, "cached": self.cached, "error": self.error}


def read_balance(
    settings: Settings,
    redis: Redis[Any] | None,
    account_name: str,
    *,
    wait: float = 0.0,
    max_age: float | None = None,
) -> Reading:
    """The account's balance, asked of the vendor at most once per its interval (the gate is shared by
    every process), else the last answer (one at most ``max_age`` seconds old, when given). Without
    such an answer, waits up to ``wait`` seconds for the gate to open. Never raises: the caller shows
    what it can."""
    account = settings.account(account_name)
    if redis is None:
        return Reading(account.name, None, False, "balance unavailable (no Redis)")
    try:
        gate = BalanceGate(redis, account.name, vendor_module(account.vendor).BALANCE_INTERVAL_S)
        deadline = time.monotonic() + wait
        while not gate.may_query():
            last, age = gate.last(), gate.age()
            recent = last is not None and (max_age is None or (age is not None and age <= max_age))
            if recent or time.monotonic() >= deadline:
                error = None if last else "balance queried too recently"
                return Reading(account.name, last, True, error, age)
            time.sleep(0.25)
    except RedisError:
        return Reading(account.name, None, False, "balance unavailable (Redis does not answer)")
    module = account.vendor_module()
    try:
        try:
            request = module.build_balance(account.credentials(), encrypted=account.encrypted)
        except UnsupportedMethodError:
            request = module.build_balance(account.credentials())
        with transport_for(account, timeout=5.0) as transport:
            answer = module.parse_balance(transport.send(request).text)
    except DispatcherError as exc:  # transport errors name the URL, never the password (POSTed form)
        return Reading(account.name, _last(gate), True, str(exc))
    if answer.ok:
        gate.remember(answer.value)
        return Reading(account.name, answer.value, False, None, 0.0)
    if answer.code is not None:
        info = module.classify(answer.code)
        return Reading(account.name, _last(gate), True, f"{answer.code}: {info.meaning_en}")
    return Reading(account.name, _last(gate), True, "unexpected answer from the gateway")


def _last(gate: BalanceGate) -> str | None:
    try:
        return gate.last()
    except RedisError:
        return None


@dataclass(frozen=True)
class Share:
    """What one account of the plan takes."""

    account: str
    price: Decimal | None
    balance: Decimal | None
    segments: int  # planned on it
    error: str | None = None

    @property
    def cost(self) -> Decimal | None:
        return None if self.price is None else self.price * self.segments


@dataclass(frozen=True)
class Plan:
    segments: int  # what is left to send
    shares: tuple[Share, ...]
    short: int  # segments no account can pay for (0: covered, or not costed)
    costed: bool  # the first account has a price: the guard applies

    @property
    def refused(self) -> bool:
        return self.costed and self.short > 0

    @property
    def cost(self) -> Decimal | None:
        first = self.shares[0] if self.shares else None
        return None if first is None or first.price is None else first.price * self.segments

    def as_dict(self) -> dict[str, Any]:
        first = self.shares[0] if self.shares else None
        return {
            "segments": self.segments,
            "price_per_segment": _s(first.price if first else None),
            "cost": _s(self.cost),
            "balance": _s(first.balance if first else None),
            "short_segments": self.short,
            "costed": self.costed,
            "refused": self.refused,
            "accounts": [
                {
                    "account": s.account,
                    "price_per_segment": _s(s.price),
                    "balance": _s(s.balance),
                    "segments": s.segments,
                    "cost": _s(s.cost),
                    "error": s.error,
                }
                for s in self.shares
            ],
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def plan(segments: int, accounts: Sequence[tuple[str, Decimal | None, Decimal | None, str | None]]) -> Plan:
    """Lay ``segments`` over ``accounts`` (name, price per segment, balance, error), in order: each
    takes what its balance pays for, the last one what is left. An account whose balance or price is
    unknown is assumed to pay for everything left (it is not the guard's to refuse on a guess)."""
    left = segments
    shares = []
    for name, price, balance, error in accounts:
        if price is None or balance is None or price <= 0:
            take = left
        else:
            take = min(left, max(0, int(balance / price)))
        shares.append(Share(name, price, balance, take, error))
        left -= take
    costed = bool(accounts) and accounts[0][1] is not None
    return Plan(segments, tuple(shares), left, costed)


def segments_to_send(session: Session, campaign_id: int) -> int:
    total = session.execute(
        select(func.coalesce(func.sum(Recipient.segments), 0)).where(
            Recipient.campaign_id == campaign_id, Recipient.state.in_(TO_SEND)
        )
    ).scalar_one()
    return int(total)


def check(
    sessions: sessionmaker[Session],
    settings: Settings,
    redis: Redis[Any] | None,
    campaign_id: int,
    *,
    wait: float = 0.0,
    reader: Callable[..., Reading] = read_balance,
) -> Plan:
    """The plan for starting ``campaign_id`` now: its accounts (current, then fallbacks) and balances."""
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise StateError.say(N_("no campaign %(id)s"), id=campaign_id)
        names = [campaign.account, *(campaign.fallbacks or [])]
        segments = segments_to_send(session, campaign_id)
    rows = []
    for name in names:
        price = settings.account(name).price_per_segment
        reading = reader(settings, redis, name, wait=wait) if price is not None else None
        rows.append((name, price, reading.amount if reading else None, reading.error if reading else None))
    return plan(segments, rows)


def refusal(campaign_id: int, p: Plan) -> StateError:
    """The start refused, with the figures (said in the reader's language on the web)."""
    first = p.shares[0]
    return StateError.say(
        N_(
            "campaign %(id)s not started: it costs %(cost)s (%(segments)s segments × %(price)s) but "
            "account %(account)s holds %(balance)s; %(short)s segments are not covered"
        ),
        id=campaign_id,
        cost=_s(p.cost),
        segments=p.segments,
        price=_s(first.price),
        account=first.account,
        balance=_s(first.balance),
        short=p.short,
    )


def ensure(
    sessions: sessionmaker[Session],
    settings: Settings,
    redis: Redis[Any] | None,
    campaign_id: int,
    *,
    wait: float = 0.0,
) -> Plan:
    """Raise :func:`refusal` when the campaign's accounts cannot pay for it; else return the plan."""
    p = check(sessions, settings, redis, campaign_id, wait=wait)
    if p.refused:
        raise refusal(campaign_id, p)
    return p


def redis_for(settings: Settings) -> Redis[Any] | None:
    """A Redis client for the gate (``memory://``: none, the embedded demo)."""
    return None if settings.redis_url.startswith("memory://") else Redis.from_url(settings.redis_url)


def describe(p: Plan) -> str:
    """The plan in one English line (the CLI): cost, balance, and who takes what."""
    if not p.costed:
        return f"{p.segments} segments; no price_per_segment for {p.shares[0].account}: cost not checked"
    parts = [
        f"{s.account} {s.segments} segments"
        + (f" ({s.cost} of {s.balance if s.balance is not None else 'unknown balance'})")
        for s in p.shares
        if s.segments
    ]
    return f"{p.segments} segments, cost {p.cost}: " + ", ".join(parts or ["nothing to send"])


def hold(sessions: sessionmaker[Session], campaign_id: int, p: Plan, actor: str) -> None:
    """Keep a refused start's figures on the campaign (``status["waiting"] == "balance"``), audited once
    per change of figures (the beat asks again every tick)."""
    from dispatcher.store import audit

    figures = p.as_dict()
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return
        routing = dict(campaign.routing or {})
        if routing.get("hold") == figures:
            return
        routing["hold"] = figures
        campaign.routing = routing
        audit(session, actor, "campaign.balance_hold", campaign_id, **figures)
        session.commit()


def release(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Forget a hold once the campaign may start."""
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is not None and campaign.routing and "hold" in campaign.routing:
            campaign.routing = {k: v for k, v in campaign.routing.items() if k != "hold"}
            session.commit()


def beat_guard(
    sessions: sessionmaker[Session], settings: Settings, redis: Redis[Any] | None
) -> Callable[[int], bool]:
    """For the beat's launch: True when the campaign may start; else it stays scheduled, held."""

    def allowed(campaign_id: int) -> bool:
        try:
            p = check(sessions, settings, redis, campaign_id)
        except DispatcherError:  # an account gone from the config: the start itself says what is wrong
            return True
        if p.refused:
            hold(sessions, campaign_id, p, "scheduler")
            return False
        release(sessions, campaign_id)
        return True

    return allowed
