"""``dispatcher web`` as a real process on a free loopback port, for what only the real server shows:
its HTTP protocol (slow and greedy clients), its access log, and its own memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from dispatcher.store import make_engine, session_factory, upgrade
from dispatcher.web.auth import add_user, issue_token
from tests.web.conftest import PASSWORD, REDIS_URL, _free_port, _toml


@dataclass
class WebProcess:
    proc: subprocess.Popen[bytes]
    port: int
    base_url: str
    log: Path  # the process's stdout and stderr (the access log among them)
    accounts: dict[str, str]  # vendor -> account name
    tokens: dict[str, str]  # user name -> API token

    def rss_mb(self) -> float:
        """The web process's resident memory now (its reading children are processes of their own)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def peak_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0


@contextlib.contextmanager
def web_process(tmp_path: Path, settings: str = "", forwarded_allow_ips: str = "") -> Iterator[WebProcess]:
    """The app under ``dispatcher web``, with a viewer, a sender, a second sender and an admin (password
    :data:`PASSWORD`, and an API token each). ``forwarded_allow_ips``: a proxy address other than
    loopback, so that the test's own connections count as clients."""
    suffix = uuid.uuid4().hex[:8]
    toml, names = _toml("http://127.0.0.1:9", suffix, None, settings)
    config = tmp_path / "dispatcher.toml"
    config.write_text(toml, encoding="utf-8")
    db_url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    tokens = {}
    for name, role in (("viewer", "viewer"), ("sender", "sender"), ("sender2", "sender"), ("admin", "admin")):
        with sessions() as session:
            add_user(session, name, PASSWORD, role, actor="test")
        with sessions() as session:
            tokens[name] = issue_token(session, name, actor="test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        DISPATCHER_CONFIG=str(config),
        DISPATCHER_DATABASE_URL=db_url,
        DISPATCHER_BROKER_URL=REDIS_URL,
        DISPATCHER_REDIS_URL=REDIS_URL,
        TMPDIR=str(tmp_path),  # its uploads, apart from every other test's
    )
    port = _free_port()
    log = tmp_path / "web.log"
    command = [sys.executable, "-m", "dispatcher", "web", "--port", str(port)]
    if forwarded_allow_ips:
        command += ["--forwarded-allow-ips", forwarded_allow_ips]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    web = WebProcess(proc, port, f"http://127.0.0.1:{port}", log, names, tokens)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                httpx.get(f"{web.base_url}/login", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "dispatcher web did not answer"
                time.sleep(0.2)
        yield web
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
