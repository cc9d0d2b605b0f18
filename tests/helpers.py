"""Helpers that several test modules share (a test module never imports another test module).

The web tests' helpers: HTTP Basic headers, a draft campaign, an upload through the pages, the browser.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher import campaigns, runtime
from dispatcher.results import cycle
from dispatcher.store import utcnow
from tests.web.conftest import PASSWORD, Web, csrf_of, write_contacts
from workers.tasks import run_tick

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def basic(name: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def draft(web: Web, rows: int = 3) -> int:
    path = write_contacts(web.tmp / "c.xlsx", [(f"139{i:08d}", f"客户{i}") for i in range(rows)])
    created = campaigns.create(
        web.sessions,
        web.settings,
        path,
        "{姓名}您好，回T退订【测试】",
        web.accounts["yunxin"],
        actor="sender",
    )
    return created.campaign_id


def state(web: Web, campaign_id: int) -> str:
    with web.sessions() as session:
        return campaigns.get(session, campaign_id).state


def upload(web: Web, c: httpx.Client, rows: list[tuple[object, ...]]) -> str:
    path = write_contacts(web.tmp / "名单.xlsx", rows)
    token = csrf_of(c.get("/campaigns/new").text)
    r = c.post("/uploads", data={"csrf": token}, files={"file": ("名单.xlsx", path.read_bytes(), XLSX)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def playwright() -> Any:
    if os.environ.get("CI"):
        # CI installs both (.ci/extra-setup): there a missing browser is a failure, not a skip.
        import playwright.sync_api as sync_api

        assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/extra-setup installs it"
        return sync_api
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/extra-setup installs it)")
    return sync_api


class Beat:
    """The beat's work for the test's store, in a thread: launch, complete (sent, completed), and pull
    and reconcile reports, as `dispatcher beat` would."""

    def __init__(self, web: Web) -> None:
        self.web, self.stop = web, threading.Event()
        self.thread = threading.Thread(target=self.run, name="beat", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            run_tick(self.web.celery)
            cycle.run(runtime.current())

    def __enter__(self) -> Beat:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def table_rows(output: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled ``title`` in ``output``, as lists of cell texts."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows = []
    for line in lines[start + 4 :]:  # the title, the top rule, the header, the rule under it
        if not line.startswith("│"):
            break
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def machine_clock_off(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """This machine's clock is ``by`` off (the database's is right): every ``utcnow`` the beat's
    code can reach says so."""
    real = utcnow
    for name, module in list(sys.modules.items()):
        if name.startswith("dispatcher") and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", lambda: real() + by)


def run_dispatcher(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``dispatcher`` command as a process, with this test's environment (its config and store)."""
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=timeout,
    )


def sent_before(sessions: Any, account: str, vendor: str, mobiles: list[str]) -> int:
    """A campaign of ``account`` that sent to ``mobiles`` (each delivered): a reply of one of them may opt
    it out (the inbox opts out only numbers the account sent to). Returns the campaign's id."""
    from sqlalchemy import insert

    from dispatcher.store import Campaign, Recipient

    with sessions() as session:
        campaign_id = session.execute(
            insert(Campaign)
            .values(name="sent before", account=account, vendor=vendor, template="t【测试】", state="completed",
                    created_by="test")
            .returning(Campaign.id)
        ).scalar_one()  # fmt: skip
        session.execute(
            insert(Recipient),
            [
                {"campaign_id": campaign_id, "row_number": i + 2, "position": i, "mobile": m, "state": "delivered",
                 "batch_id": f"b{i}", "segments": 1}
                for i, m in enumerate(mobiles)
            ],
        )  # fmt: skip
        session.commit()
    return int(campaign_id)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry))
    return found


def forkservers() -> list[int]:
    """The forkserver this process started (the sandbox's children are its children)."""
    servers = []
    for pid in _children(os.getpid()):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"forkserver" in f.read():
                servers.append(pid)
    return servers


def sandbox_children() -> list[int]:
    """The processes reading uploads: children of the forkserver this process started."""
    return [child for server in forkservers() for child in _children(server)]
