"""The parts of ``dispatcher demo`` (``cli/demo.py`` runs them): a whole campaign on one machine with no
server installed.

The simulator on a free loopback port plays two vendors; a generated contact list (with bad rows) goes
through the real pipeline: SQLite store, a real Celery worker process on the embedded SQLite broker (or
Redis with ``--broker``), reports pulled and reconciled, an export written at the end.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook

DEMO_VENDORS = ("yunxin", "trigger")
TEMPLATE = "{姓名}您好，您在{城市}门店的{优惠券}元优惠券本周到期，回T退订【示例商城】"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
# Allocated mainland mobile prefixes: phonenumbers rejects unallocated ones such as 148 or 174.
PREFIXES = (
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "158",
    "177",
    "186",
    "188",
    "199",
)
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京")


@dataclass(frozen=True)
class SampleList:
    path: Path
    rows: int
    bad_rows: int


def write_sample(path: Path, rows: int = 3000, seed: int = 2026) -> SampleList:
    """A contact list as marketing exports it: a title row, numbers in several shapes, some bad rows."""
    rng = random.Random(seed)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("会员名单")
    sheet.append(["2026年11月会员回馈活动名单"])
    sheet.append([])
    sheet.append(["序号", "姓名", "手机号码", "城市", "优惠券"])
    bad = 0
    seen: list[str] = []
    for i in range(1, rows + 1):
        mobile = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.5 else "")
        cell: Any = mobile
        shape = rng.random()
        if shape < 0.2:
            cell = int(mobile)  # a numeric cell, as Excel stores typed digits
        elif shape < 0.3:
            cell = f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
        if i % 97 == 0:
            cell, bad = "1234567", bad + 1  # not a mobile number
        elif i % 89 == 0 and seen:
            cell, bad = rng.choice(seen), bad + 1  # a duplicate
        elif i % 83 == 0:
            name, bad = "", bad + 1  # the template needs a name
        else:
            seen.append(mobile)
        sheet.append([i, name, cell, rng.choice(CITIES), rng.choice((20, 50, 100))])
    book.save(path)
    return SampleList(path, rows, bad)


def demo_config(base_url: str) -> str:
    lines = ['send_window = "00:00-24:00"', ""]
    for vendor in DEMO_VENDORS:
        lines += [
            f"[accounts.demo-{vendor}]",
            f'vendor = "{vendor}"',
            f'base_url = "{base_url}"',
            'user = "demo"',
            'password = "demo"',
            'channel = "37"' if vendor == "yunxin" else 'channel = ""',
            "rate_limit = 100",
            "price_per_segment = 0.05",
            "",
        ]
    return "\n".join(lines)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "worker", "-c", "2", "-l", "WARNING"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def environment(workdir: Path, broker: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["DISPATCHER_CONFIG"] = str(workdir / "dispatcher.toml")
    env["DISPATCHER_DATABASE_URL"] = f"sqlite:///{workdir / 'demo.sqlite3'}"
    env["DISPATCHER_BROKER_URL"] = broker or f"sqla+sqlite:///{workdir / 'demo-broker.sqlite3'}"
    # With Redis as broker it also holds the rate limiters; without, they live in the worker process.
    env["DISPATCHER_REDIS_URL"] = broker if broker and broker.startswith("redis") else "memory://"
    env["DISPATCHER_QUEUE"] = f"demo-{os.getpid()}"
    return env


def wait_until(done: Callable[[], bool], timeout: float, step: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step()
        if done():
            return True
        time.sleep(0.5)
    return False
