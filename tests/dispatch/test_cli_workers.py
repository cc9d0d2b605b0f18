"""The CLI contract end to end: `dispatcher campaign ...` and two `dispatcher worker` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from dispatcher.simulator import SimulatorConfig, run_simulator
from tests.stack import cleanup_redis, config_toml, write_contacts

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE = 20.0


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DISPATCHER_DATABASE_URL": database_url,
        "DISPATCHER_REDIS_URL": REDIS_URL,
        "DISPATCHER_BROKER_URL": REDIS_URL,
    }


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
def test_given_two_worker_processes_and_a_vendor_limit_then_the_limit_holds_and_each_number_goes_once(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given a simulator enforcing RATE requests/s per account and an account configured to that rate
    with run_simulator(SimulatorConfig(report_delay=0.0, seed=1, deliver_ratio=1.0, rate_limit=RATE)) as sim:
        toml, names = config_toml(sim.base_url, uuid.uuid4().hex[:8], RATE)
        (tmp_path / "d.toml").write_text('send_window = "00:00-24:00"\n' + toml, encoding="utf-8")
        env["DISPATCHER_CONFIG"] = str(tmp_path / "d.toml")
        rows = [(str(13800000000 + i), f"客户{i}") for i in range(60)]
        path = write_contacts(tmp_path / "list.xlsx", rows)
        created = json.loads(
            cli(
                env,
                "campaign",
                "create",
                str(path),
                "--template",
                "{姓名}您好【测试】",
                "--account",
                names["webservice"],
                "--json",
            )
        )
        assert created["state"] == "draft" and created["messages"] == 60 and created["requests"] == 60
        queue = f"cli-{uuid.uuid4().hex[:8]}"
        env["DISPATCHER_QUEUE"] = queue
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "dispatcher", "worker", "-c", "2", "-l", "WARNING"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            # When the campaign starts
            started = time.monotonic()
            cli(env, "campaign", "start", str(created["id"]))
            deadline = time.monotonic() + 60
            status: dict[str, int] = {}
            while time.monotonic() < deadline:
                status = json.loads(cli(env, "campaign", "status", str(created["id"]), "--json"))
                if status["accepted"] == 60:
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - started
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=30)
            cleanup_redis(REDIS_URL, names, [queue])
        ledger = sim.ledger()
    # Then every number was accepted exactly once, no request was refused as too frequent,
    # and the pace was the vendor's: 60 requests at 20/s take about 3 s, not less.
    assert status["accepted"] == 60
    accepted = Counter(e["mobile"] for e in ledger["accepted"])
    assert accepted == Counter(r[0] for r in rows)
    assert [r for r in ledger["rejected"] if r["code"] == "-16"] == []
    assert elapsed >= 60 / RATE * 0.8


def test_given_a_worker_started_then_its_pool_children_hold_the_sending_library_before_any_task(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given `dispatcher worker` started as shipped, with no task sent to it yet
    (tmp_path / "d.toml").write_text('send_window = "00:00-24:00"\n', encoding="utf-8")
    env.update(DISPATCHER_CONFIG=str(tmp_path / "d.toml"), DISPATCHER_QUEUE=f"cli-{uuid.uuid4().hex[:8]}")
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "worker", "-c", "2", "-l", "INFO"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        children = [
            int(c) for c in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        ]
        # When its pool children's memory is read
        mapped = [Path(f"/proc/{child}/maps").read_text() for child in children]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    # Then aiohttp was imported before the fork: a child's first round does not import it (~0.1 s)
    # after its rate limiter slots were given, which sent those requests late and bunched
    assert len(children) == 2
    assert all("/aiohttp/" in maps for maps in mapped)
    # ... and so was the DES cipher of encrypted accounts (the vendor modules import it when first used)
    assert all("/Crypto/Cipher/_raw_des" in maps for maps in mapped)
