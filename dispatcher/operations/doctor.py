"""``dispatcher doctor``: what an operator runs after a deploy, or when something looks wrong.

Each check answers ``{"name", "ok", "detail"}``; ``detail`` is English (the CLI's), and carries its msgid
and parameters so that the 系统状态 page says it in the reader's language. The checks: the store
(reachable, at the latest schema), the broker, the limiter's Redis, the workers (how many, on which hosts
and queues, on this store), the beat (exactly one), the fingerprints (a live process whose broker or
limiter differs from this host's, or a worker on this queue with another store), each account's
credentials (a balance read, through the shared gate: never more often than the vendor allows), the
clock difference with the database (over 2 s fails), the send window, and Flower when configured.

Nothing here prints a URL with its password: URLs go through ``redact_url``; errors are named by type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from dispatcher.balance_guard import Reading
from dispatcher.config import Settings, format_window, redact_url
from dispatcher.decisions import in_window
from dispatcher.i18n import N_
from dispatcher.operations import heartbeat
from dispatcher.operations.fingerprint import Fingerprints

CLOCK_TOLERANCE_S = 2.0
BALANCE_SLACK_S = 1.0  # a read answered within the interval, and reported a moment later


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    msgid: str  # English, with %(name)s parameters: said in the reader's language by the web page
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        return self.msgid % self.params if self.params else self.msgid

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _error(exc: BaseException) -> str:
    # A type, not a message: a driver's message may quote a URL (and its password).
    return type(exc).__name__


@dataclass
class Doctor:
    settings: Settings
    queue: str  # the send queue (DISPATCHER_QUEUE)
    redis: Redis[Any] | None = None
    balance: Callable[[str], Reading] | None = None  # account -> its balance (balance_reader)

    def run(self) -> list[Check]:
        checks = [self.store(), self.broker(), self.limiter()]
        snapshot = self._snapshot()
        checks += self.processes(snapshot)
        checks += [self.clock(), self.window()]
        checks += [self.account(name) for name in self.settings.accounts]
        if self.settings.flower_url:
            checks.append(self.flower(self.settings.flower_url))
        return checks

    # ---- the parts ------------------------------------------------------------------------------

    def store(self) -> Check:
        from dispatcher.store import current_revision, head_revision

        where = redact_url(self.settings.database_url)
        try:
            current = current_revision(self.settings.database_url)
        except Exception as exc:  # any driver error: unreachable, refused, unknown database
            return Check(
                "store",
                False,
                N_("%(where)s does not answer (%(error)s)"),
                {"where": where, "error": _error(exc)},
            )
        head = head_revision()
        if current != head:
            return Check(
                "store",
                False,
                N_("%(where)s is at schema %(current)s, not %(head)s: run `dispatcher db upgrade`"),
                {"where": where, "current": current or "none", "head": head},
            )
        return Check("store", True, N_("%(where)s, schema %(head)s"), {"where": where, "head": head})

    def broker(self) -> Check:
        from kombu.connection import Connection

        url = self.settings.broker_url
        where = redact_url(url)
        try:
            with Connection(url, connect_timeout=3) as connection:  # type: ignore[no-untyped-call]
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:
            return Check(
                "broker",
                False,
                N_("%(where)s does not answer (%(error)s)"),
                {"where": where, "error": _error(exc)},
            )
        return Check("broker", True, N_("%(where)s answers"), {"where": where})

    def limiter(self) -> Check:
        where = redact_url(self.settings.redis_url)
        if self.redis is None:
            return Check(
                "redis",
                True,
                N_("%(where)s: limiters live in each process (one machine only)"),
                {"where": where},
            )
        try:
            self.redis.ping()
        except RedisError as exc:
            return Check(
                "redis",
                False,
                N_("%(where)s does not answer (%(error)s)"),
                {"where": where, "error": _error(exc)},
            )
        return Check("redis", True, N_("%(where)s answers"), {"where": where})

    def _snapshot(self) -> heartbeat.Snapshot | None:
        if self.redis is None:
            return None
        try:
            return heartbeat.read(self.redis)
        except RedisError:
            return None

    def processes(self, snapshot: heartbeat.Snapshot | None) -> list[Check]:
        if snapshot is None:
            unread = N_("heartbeats cannot be read (no Redis)")
            return [Check("workers", False, unread), Check("beat", False, unread)]
        mine = Fingerprints.of(self.settings)
        return [
            self.workers(snapshot, mine.store),
            self.beat(snapshot, mine.store, mine.broker),
            self.fingerprints(snapshot, mine),
        ]

    def workers(self, snapshot: heartbeat.Snapshot, store: str) -> Check:
        alive = snapshot.alive(heartbeat.WORKER, store)
        if not alive:
            seen = max((b.seen_at() for b in snapshot.of(heartbeat.WORKER, store)), default=None)
            return Check(
                "workers",
                False,
                N_("no worker alive on this store (last seen: %(seen)s)"),
                {"seen": _when(seen)},
            )
        queues = sorted({q for b in alive for q in b.queues})
        missing = [q for q in (self.queue, self.queue + ".beat") if q not in queues]
        params = {
            "count": len(alive),
            "hosts": ", ".join(sorted({b.host for b in alive})),
            "queues": ", ".join(queues),
            "missing": ", ".join(missing),
        }
        if missing:
            return Check(
                "workers",
                False,
                N_("%(count)s alive on %(hosts)s, consuming %(queues)s; nobody consumes %(missing)s"),
                params,
            )
        return Check("workers", True, N_("%(count)s alive on %(hosts)s, consuming %(queues)s"), params)

    def beat(self, snapshot: heartbeat.Snapshot, store: str, broker: str | None = None) -> Check:
        """Beats of this store scheduling this queue's beat tasks through this broker: one of another
        queue or broker schedules for somebody else (the fingerprints check names it)."""
        queue = self.queue + heartbeat.BEAT_QUEUE_SUFFIX

        def ours(b: heartbeat.Heartbeat) -> bool:
            return broker is None or b.broker == broker

        alive = [b for b in snapshot.alive(heartbeat.BEAT, store, queue) if ours(b)]
        if not alive:
            seen = max(
                (b.seen_at() for b in snapshot.of(heartbeat.BEAT, store, queue) if ours(b)), default=None
            )
            return Check(
                "beat",
                False,
                N_(
                    "no beat alive on this store (last seen: %(seen)s): nothing is launched, re-queued or completed"
                ),
                {"seen": _when(seen)},
            )
        hosts = ", ".join(f"{b.host} (pid {b.pid})" for b in alive)
        if len(alive) > 1:
            return Check(
                "beat",
                False,
                N_("%(count)s beats alive (%(hosts)s): run exactly one"),
                {"count": len(alive), "hosts": hosts},
            )
        return Check("beat", True, N_("one alive: %(hosts)s"), {"hosts": hosts})

    def fingerprints(self, snapshot: heartbeat.Snapshot, mine: Fingerprints) -> Check:
        odd = []
        for b in snapshot.beats:
            if not b.alive(snapshot.now):
                continue
            if b.store == mine.store:
                differs = [part for part in ("broker", "limiter") if getattr(b, part) != getattr(mine, part)]
            elif self.queue in b.queues or self.queue + heartbeat.BEAT_QUEUE_SUFFIX in b.queues:
                # A worker taking this deployment's tasks but looking for their chunks elsewhere; a
                # beat scheduling this queue's tasks from another store's settings
                differs = ["store"]
            else:
                continue
            if differs:
                odd.append(f"{b.kind} {b.host} pid {b.pid}: {'/'.join(differs)}")
        if odd:
            return Check(
                "fingerprints",
                False,
                N_("processes whose settings differ from this host's: %(odd)s"),
                {"odd": "; ".join(odd)},
            )
        return Check(
            "fingerprints", True, N_("every live process uses this host's store, broker and limiter")
        )

    def clock(self) -> Check:
        from sqlalchemy import select

        from dispatcher.store import make_engine
        from dispatcher.store.types import db_now

        engine = make_engine(self.settings.database_url)
        try:
            with engine.connect() as connection:
                before = time.time()
                theirs = connection.execute(select(db_now())).scalar_one()
                mine = (before + time.time()) / 2
        except Exception as exc:
            return Check(
                "clock", False, N_("the database's clock cannot be read (%(error)s)"), {"error": _error(exc)}
            )
        finally:
            engine.dispose()
        if isinstance(theirs, str):
            theirs = datetime.fromisoformat(theirs)
        if theirs.tzinfo is None:
            theirs = theirs.replace(tzinfo=UTC)
        skew = theirs.timestamp() - mine
        params = {"skew": f"{skew:+.2f}"}
        if abs(skew) > CLOCK_TOLERANCE_S:
            return Check(
                "clock",
                False,
                N_("this host's clock is %(skew)s s off the database's (over 2 s): synchronise it (NTP)"),
                params,
            )
        return Check("clock", True, N_("this host's clock is %(skew)s s off the database's"), params)

    def window(self) -> Check:
        now = datetime.now(UTC)
        params = {"window": format_window(self.settings.send_window), "zone": self.settings.timezone}
        if in_window(now, self.settings.send_window, self.settings.timezone):
            return Check("send_window", True, N_("%(window)s (%(zone)s): open now"), params)
        return Check(
            "send_window", True, N_("%(window)s (%(zone)s): closed now; campaigns wait for it"), params
        )

    def account(self, name: str) -> Check:
        """A balance read proves the credentials only if it is recent: within the vendor's balance
        interval (the gate lets one read through per interval, so a fresher one cannot be asked for)."""
        from dispatcher.vendors.registry import get as vendor_module

        if self.balance is None:
            return Check(f"account:{name}", True, N_("not checked"))
        reading = self.balance(name)
        if reading.error is not None:
            return Check(
                f"account:{name}", False, N_("balance read failed: %(error)s"), {"error": reading.error}
            )
        if reading.value is None:
            return Check(
                f"account:{name}", False, N_("balance read failed: %(error)s"), {"error": "no answer yet"}
            )
        interval = vendor_module(self.settings.account(name).vendor).BALANCE_INTERVAL_S
        params = {
            "value": reading.value,
            "age": "?" if reading.age is None else f"{reading.age:.0f}",
            "interval": f"{interval:g}",
        }
        if reading.age is None or reading.age > interval + BALANCE_SLACK_S:
            return Check(
                f"account:{name}",
                False,
                N_(
                    "balance %(value)s was read %(age)s s ago, longer than the vendor's balance interval "
                    "(%(interval)s s): the credentials are not proven now"
                ),
                params,
            )
        return Check(
            f"account:{name}",
            True,
            N_("credentials accepted, balance %(value)s (read %(age)s s ago)"),
            params,
        )

    def flower(self, url: str) -> Check:
        import httpx

        where = redact_url(url)
        try:
            answer = httpx.get(url, timeout=3)
        except httpx.HTTPError as exc:
            return Check(
                "flower",
                False,
                N_("%(where)s does not answer (%(error)s)"),
                {"where": where, "error": _error(exc)},
            )
        if answer.status_code >= 500:
            return Check(
                "flower",
                False,
                N_("%(where)s answers HTTP %(status)s"),
                {"where": where, "status": answer.status_code},
            )
        return Check(
            "flower",
            True,
            N_("%(where)s answers HTTP %(status)s"),
            {"where": where, "status": answer.status_code},
        )


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "never"


def balance_reader(
    settings: Settings, redis: Redis[Any] | None, *, wait: bool = True
) -> Callable[[str], Reading]:
    """Reads an account's balance for :meth:`Doctor.account`: an answer kept from within the vendor's
    interval, else a fresh one (``wait``: for the shared gate to open, 5-10 s, rather than fail)."""
    from dispatcher.balance_guard import read_balance
    from dispatcher.vendors.registry import get as vendor_module

    def balance(name: str) -> Reading:
        interval = vendor_module(settings.account(name).vendor).BALANCE_INTERVAL_S
        return read_balance(settings, redis, name, wait=interval + 1 if wait else 0.0, max_age=interval)

    return balance


def diagnose(settings: Settings, queue: str, *, balance_wait: bool = True) -> list[Check]:
    """Every check, as this host sees them. ``balance_wait``: wait for each account's balance gate to
    open (the vendor's interval, 5-10 s) when no recent answer stands, rather than say "not read"."""
    redis: Redis[Any] | None = None
    if not settings.redis_url.startswith("memory://"):
        redis = Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)

    try:
        return Doctor(settings, queue, redis, balance_reader(settings, redis, wait=balance_wait)).run()
    finally:
        if redis is not None:
            redis.close()
