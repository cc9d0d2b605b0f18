"""The shared test stack's parts: where Redis and PostgreSQL are, a ``Stack`` (simulator, settings, store,
Celery app), a contacts spreadsheet, a dispatcher config for the simulator's four vendors. The fixtures
that build them are in tests/conftest.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from celery import Celery
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.keys import in_flight_key, rate_key
from dispatcher.simulator import RunningSimulator

REDIS_URL = "redis://127.0.0.1:6379/0"
ENTINFO_SN = "SDK-DEMO-010-00001"
PG_URL = os.environ.get("DISPATCHER_TEST_POSTGRES_URL")
# No skipped tests: PostgreSQL is a parameter only when a server is configured.
DATABASES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def cleanup_redis(redis_url: str, accounts: dict[str, str], queues: list[str]) -> None:
    """Remove what a test left in the shared Redis: its accounts' limiter state and its queues."""
    client: Redis[Any] = Redis.from_url(redis_url)
    try:
        names = accounts.values()
        client.delete(*(rate_key(n) for n in names), *(in_flight_key(n) for n in names), *queues)
    finally:
        client.close()


@dataclass
class Stack:
    sim: RunningSimulator
    settings: Settings
    sessions: sessionmaker[Session]
    app: Celery
    tmp: Path
    accounts: dict[str, str]  # vendor -> account name in the dispatcher config

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")


def write_contacts(
    path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = ("手机号", "姓名")
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def config_toml(
    base_url: str, suffix: str, rate_limit: float, **overrides: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    accounts = {
        "webservice": ("webservice", "demo", "demo"),
        "yunxin": ("yunxin", "demo", "demo"),
        "trigger": ("trigger", "demo", "demo"),
        "entinfo": ("entinfo", ENTINFO_SN, "demo"),
    }
    names: dict[str, str] = {}
    lines = []
    for vendor, (v, user, password) in accounts.items():
        name = f"{vendor}-{suffix}"
        names[vendor] = name
        extra = overrides.get(vendor, {})
        lines += [
            f'[accounts."{name}"]',
            f'vendor = "{v}"',
            f'base_url = "{base_url}"',
            f'user = "{extra.get("user", user)}"',
            f'password = "{extra.get("password", password)}"',
            f'channel = "{37 if v == "yunxin" else ""}"',
            f"rate_limit = {rate_limit}",
            "",
        ]
    return "\n".join(lines), names


class Disposing:
    """Closes an engine's connections when the stack is taken down (before its schema is dropped)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()
