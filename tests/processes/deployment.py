"""A deployment for the process tests: its config file and environment, campaigns created with the CLI,
and what the store says afterwards (read directly: the store is the truth)."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.store import Attempt, AuditEntry, Campaign, Chunk, Recipient, make_engine, session_factory
from tests.processes.harness import Processes
from tests.stack import write_contacts

CST = ZoneInfo("Asia/Shanghai")
# Recipient states that end a recipient's story ("accepted" still waits for its delivery report).
FINAL = frozenset({"delivered", "undelivered", "expired", "failed", "unknown", "rejected"})
# States in which the vendor has the message, as far as the store knows.
VENDOR_HAS_IT = frozenset({"accepted", "delivered", "undelivered", "expired"})


@dataclass(frozen=True)
class AccountSpec:
    name: str
    vendor: str
    rate_limit: float
    user: str = "demo"
    extra: tuple[str, ...] = ()  # more ``key = value`` lines of the account's table


@dataclass
class Deployment:
    """Settings shared by every process of one test, and a view of its store."""

    processes: Processes
    database_url: str
    redis_url: str
    simulator_url: str
    accounts: list[AccountSpec]
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = self.processes.tmp / "dispatcher.toml"
        config.write_text(self.config_toml(), encoding="utf-8")
        self.processes.env.update(
            {
                "DISPATCHER_CONFIG": str(config),
                "DISPATCHER_DATABASE_URL": self.database_url,
                "DISPATCHER_BROKER_URL": self.redis_url,
                "DISPATCHER_REDIS_URL": self.redis_url,
                "DISPATCHER_SECRET_KEY": secrets.token_urlsafe(32),
                **self.settings,
            }
        )
        self.engine: Engine = make_engine(self.database_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)

    def config_toml(self) -> str:
        # Always open: the default window (08:00-21:00 China time) would make the test depend on the hour.
        lines = ['send_window = "00:00-24:00"', ""]
        for a in self.accounts:
            lines += [
                f'[accounts."{a.name}"]',
                f'vendor = "{a.vendor}"',
                f'base_url = "{self.simulator_url}"',
                f'user = "{a.user}"',
                'password = "demo"',
                f'channel = "{37 if a.vendor == "yunxin" else ""}"',
                f"rate_limit = {a.rate_limit}",
                *a.extra,
                "",
            ]
        return "\n".join(lines)

    def create_campaign(
        self, account: str, mobiles: list[str], template: str, *, start_in: float
    ) -> tuple[dict[str, Any], datetime]:
        """``dispatcher campaign create LIST --at <now + start_in>`` (China time, without a zone, as a
        marketer types it); the created campaign's JSON and its start time."""
        rows = [(m, f"客户{i}") for i, m in enumerate(mobiles)]
        path = write_contacts(self.processes.tmp / f"{account}.xlsx", rows)
        at = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=start_in)
        out = self.processes.run(
            "campaign", "create", str(path), "--template", template, "--account", account,
            "--at", at.replace(tzinfo=None).isoformat(), "--json",
        )  # fmt: skip
        created: dict[str, Any] = json.loads(out)
        return created, at

    # ---- the store ------------------------------------------------------------------------------

    def campaign_state(self, campaign_id: int) -> str:
        with self.sessions() as session:
            return str(session.get_one(Campaign, campaign_id).state)

    def recipients(self, campaign_id: int) -> dict[str, str]:
        """mobile -> state of a campaign's sendable recipients."""
        with self.sessions() as session:
            rows = session.execute(
                select(Recipient.mobile, Recipient.state).where(
                    Recipient.campaign_id == campaign_id, Recipient.mobile.is_not(None)
                )
            ).all()
        return {str(m): str(s) for m, s in rows}

    def state_counts(self, campaign_id: int) -> Counter[str]:
        return Counter(self.recipients(campaign_id).values())

    def transitions(self, campaign_id: int) -> list[tuple[str, str, str, datetime]]:
        """(actor, from, to, at) of the campaign's state changes, in order."""
        with self.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail, AuditEntry.at)
                .where(AuditEntry.campaign_id == campaign_id, AuditEntry.action.like("campaign.%"))
                .order_by(AuditEntry.id)
            ).all()
        return [
            (actor, str((detail or {}).get("from_state")), action.removeprefix("campaign."), at)
            for actor, action, detail, at in rows
            if (detail or {}).get("from_state")
        ]

    def unknown_chunks(self, campaign_id: int) -> dict[int, dict[str, Any]]:
        """Each ``unknown`` chunk of a campaign: its ref, mobiles and attempts' outcomes (for reports)."""
        with self.sessions() as session:
            chunks = session.execute(
                select(Chunk.id, Chunk.ref, Chunk.detail).where(
                    Chunk.campaign_id == campaign_id, Chunk.state == "unknown"
                )
            ).all()
            found: dict[int, dict[str, Any]] = {}
            for chunk_id, ref, detail in chunks:
                mobiles = session.execute(
                    select(Recipient.mobile).where(Recipient.chunk_id == chunk_id)
                ).scalars()
                attempts = session.execute(
                    select(Attempt.outcome, Attempt.code, Attempt.error_class)
                    .where(Attempt.chunk_id == chunk_id)
                    .order_by(Attempt.id)
                ).all()
                found[chunk_id] = {
                    "ref": ref,
                    "detail": detail,
                    "mobiles": sorted(str(m) for m in mobiles),
                    "attempts": [tuple(a) for a in attempts],
                }
        return found

    def close(self) -> None:
        self.engine.dispose()


def ledger_mobiles(ledger: dict[str, list[dict[str, Any]]], vendor: str) -> Counter[str]:
    """How many times the simulator accepted each number on ``vendor`` (all accounts are "demo")."""
    return Counter(e["mobile"] for e in ledger["accepted"] if e["vendor"] == vendor)


def mobiles(first: int, count: int) -> list[str]:
    return [str(first + i) for i in range(count)]


def path_exists_any(base: Path) -> bool:
    """``base`` itself or a file named after it with a suffix (dbm adds ``.db``, ``.dat`` ...)."""
    return base.exists() or any(base.parent.glob(base.name + ".*"))
