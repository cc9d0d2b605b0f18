"""A web stack per test: simulator on loopback, SQLite store, real Redis, the app under uvicorn on a free
loopback port (clients talk real HTTP), and a real Celery worker when a test sends."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import uvicorn
from celery import Celery
from celery.contrib.testing.worker import start_worker
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import runtime
from dispatcher.config import Settings
from dispatcher.keys import KeySpace
from dispatcher.simulator import RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.store import Campaign, make_engine, session_factory, upgrade
from dispatcher.web import create_app
from dispatcher.web.auth import add_user
from tests.stack import Disposing
from workers import tasks
from workers.app import make_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery"
PUSH_TOKEN = "push-secret-0123456789"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Web:
    sim: RunningSimulator
    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery
    app: FastAPI
    tmp: Path
    accounts: dict[str, str]  # vendor -> account name
    base_url: str = ""
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, language: str = "en") -> httpx.Client:
        """A client whose browser asks for ``language`` (the pages' default is Chinese; most tests read
        the English words, tests/web/test_language.py the Chinese ones)."""
        headers = {"Accept-Language": language} if language else {}
        c = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=30, headers=headers)
        self.clients.append(c)
        return c

    def signed_in(self, name: str, language: str = "en") -> httpx.Client:
        c = self.client(language)
        login(c, name)
        return c

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf": token})
    assert r.status_code == 303, r.text


def upload(c: httpx.Client, path: Path) -> str:
    """Upload ``path`` through the page; the compose page's address."""
    token = csrf_of(c.get("/campaigns/new").text)
    r = c.post("/uploads", data={"csrf": token}, files={"file": (path.name, path.read_bytes(), "text/csv")})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def still_up(web: Web) -> None:
    assert web.client().get("/login").status_code == 200


def campaigns(web: Web) -> int:
    with web.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Campaign)).scalar_one())


def write_contacts(
    path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = ("手机号", "姓名")
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "客户"
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    other = book.create_sheet("说明")
    other.append(["这一页不是名单"])
    book.save(path)
    return path


def _toml(base_url: str, suffix: str, threshold: int | None, extra: str) -> tuple[str, dict[str, str]]:
    creds = {"webservice": "demo", "yunxin": "demo", "trigger": "demo", "entinfo": "SDK-DEMO-010-00001"}
    lines = ['send_window = "00:00-24:00"', f'secret_key = "{uuid.uuid4().hex}{suffix}"', extra]
    if threshold is not None:
        lines.append(f"approval_threshold = {threshold}")
    names = {}
    for vendor, user in creds.items():
        name = names[vendor] = f"{vendor}-{suffix}"
        lines += [
            f'[accounts."{name}"]',
            f'vendor = "{vendor}"',
            f'base_url = "{base_url}"',
            f'user = "{user}"',
            'password = "demo"',
            f'channel = "{37 if vendor == "yunxin" else ""}"',
            "rate_limit = 1000",
            "price_per_segment = 0.05",
        ]
        if vendor in ("yunxin", "trigger"):
            lines.append(f'push_token = "{PUSH_TOKEN}"')
        lines.append("")
    return "\n".join(lines), names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def make_web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Web]]:
    contexts: list[Any] = []
    webs: list[Web] = []
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def build(
        *,
        threshold: int | None = None,
        worker: bool = False,
        max_upload_bytes: int = 50 * 1024 * 1024,
        sim_config: SimulatorConfig | None = None,
        settings_toml: str = "",
        forwarded_allow_ips: str | None = None,
        db_url: str | None = None,
    ) -> Web:
        suffix = uuid.uuid4().hex[:8]
        port = _free_port()
        sim_config = sim_config or SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0)
        if sim_config.push_url:  # push to this very app: "{web}" is its address, "{suffix}" the accounts'
            url = sim_config.push_url.replace("{web}", f"http://127.0.0.1:{port}").replace("{suffix}", suffix)
            sim_config = dataclasses.replace(sim_config, push_url=url)
        sim_cm = run_simulator(sim_config)
        sim = sim_cm.__enter__()
        contexts.append(sim_cm)
        toml, names = _toml(sim.base_url, suffix, threshold, settings_toml)
        (tmp_path / "dispatcher.toml").write_text(toml, encoding="utf-8")
        if db_url is None:  # (a test of both stores passes the database_url fixture's, migrated)
            db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
            upgrade(db_url)
        monkeypatch.setenv("DISPATCHER_CONFIG", str(tmp_path / "dispatcher.toml"))
        monkeypatch.setenv("DISPATCHER_DATABASE_URL", db_url)
        monkeypatch.setenv("DISPATCHER_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("DISPATCHER_BROKER_URL", REDIS_URL)
        runtime.reset()
        settings = Settings.load()
        celery = make_celery(REDIS_URL, redis_url=REDIS_URL)
        celery.conf.task_default_queue = f"test-{suffix}"
        tasks.register(celery)
        if worker:
            worker_cm = start_worker(
                celery, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=20
            )
            worker_cm.__enter__()
            contexts.append(worker_cm)
        engine = make_engine(db_url)
        contexts.append(Disposing(engine))
        sessions = session_factory(engine)
        for role in ("viewer", "sender", "admin"):
            with sessions() as session:
                add_user(session, role, PASSWORD, role, actor="test")
        app = create_app(
            settings,
            sessions=sessions,
            celery=celery,
            upload_dir=tmp_path / "uploads",
            max_upload_bytes=max_upload_bytes,
            keys=KeySpace(f"test-web-{suffix}:"),  # sign-in throttling: this test's keys only
        )
        web = Web(sim, settings, sessions, celery, app, tmp_path, names)
        # Always over real HTTP: uvicorn on a free loopback port.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", forwarded_allow_ips=forwarded_allow_ips
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="web", daemon=True)
        thread.start()
        web.wait_for(lambda: server.started, 15)
        servers.append((server, thread))
        web.base_url = f"http://127.0.0.1:{port}"
        webs.append(web)
        return web

    yield build
    for web in webs:
        for c in web.clients:
            c.close()
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
    for cm in reversed(contexts):
        cm.__exit__(None, None, None)
    runtime.reset()
