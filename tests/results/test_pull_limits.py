"""Report and reply pulls share the account's rate with its sends, and stop at the first error answer:
"too frequent" defers the account's next pull (in Redis), an account error alerts a person."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select
from typer.testing import CliRunner

from dispatcher import campaigns, runtime
from dispatcher.cli import app
from dispatcher.config import Settings
from dispatcher.keys import lock_key, pull_deferred_key, rate_key
from dispatcher.ratelimit import AccountLimiter
from dispatcher.results import cycle, pull
from dispatcher.results.pull import DEFER_SECONDS, drain, pull_account
from dispatcher.runtime import DISPATCH_POLICY, Runtime
from dispatcher.simulator import SimulatorConfig
from dispatcher.simulator.state import SimState
from dispatcher.store import AccountError, AuditEntry, RawPull, account_errors, upgrade, utcnow
from tests.stack import REDIS_URL, write_contacts
from tests.vendors.loopback import Gateway, gateway
from workers.tasks import enqueue

VENDOR_RATE = 5.0  # requests the simulator admits per account in any one second
ACCOUNT_RATE = 3.0  # what the account is configured to: sends and pulls together
WAITING_REPLIES = 3000  # at the vendor: a drain of six 500-record pulls and an empty one


def test_given_a_drain_while_the_account_sends_then_together_they_stay_within_its_rate(
    make_stack: Any,
) -> None:
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, rate_limit=VENDOR_RATE),
        rate_limit=ACCOUNT_RATE,
    )
    name = stack.accounts["webservice"]

    def queue_replies(state: SimState) -> None:
        acct = state.lookup("webservice", "demo")
        assert acct is not None
        for i in range(WAITING_REPLIES):
            state.add_reply(acct, f"139{i:08d}", "好的", time.time())

    stack.sim.call(queue_replies)
    rows = [(str(13700000000 + i), "张三") for i in range(18)]  # 18 one-number requests
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    created = campaigns.create(
        stack.sessions, stack.settings, path, "{姓名}您好，回T退订【测试】", name, actor="t"
    )
    live = Runtime.from_settings(stack.settings)
    try:
        # When the workers send while the account's replies are drained
        enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)
        started = time.monotonic()
        pulled = pull_account(live, stack.settings.account(name), ["replies"])
        drained_in = time.monotonic() - started
    finally:
        live.close()

    def all_accepted() -> bool:
        with stack.sessions() as session:
            return bool(campaigns.status(session, created.campaign_id)["accepted"] == len(rows))

    stack.wait_for(all_accepted, timeout=90)
    # Then the vendor never answered "too frequent": pulls took the account's tokens like sends ...
    assert [r for r in stack.sim.ledger()["rejected"] if r["vendor"] == "webservice"] == []
    # ... the drain went to its end (six bodies stored, then the empty answer) ...
    assert pulled.bodies == {"replies": 6} and not pulled.failures and not pulled.skipped
    with stack.sessions() as session:
        assert len(session.execute(select(RawPull.id).where(RawPull.account == name)).all()) == 6
    # ... and never faster than the account's rate (7 calls, sends beside them: the sends keep priority
    # and the pulls take what they leave, tests/ratelimit/test_pull_share.py)
    assert drained_in >= 6 / ACCOUNT_RATE


# ---- error answers, against a gateway that always answers the same -----------------------------------


class Live:
    def __init__(self, runtime: Runtime, name: str) -> None:
        self.runtime = runtime
        self.name = name
        self.account = runtime.settings.account(name)


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[Runtime] = []
    names: list[str] = []

    def build(vendor: str, base_url: str) -> Live:
        name = f"{vendor}-{uuid.uuid4().hex[:8]}"
        names.append(name)
        channel = 'channel = "37"\n' if vendor == "yunxin" else ""
        toml = (
            f'[accounts."{name}"]\nvendor = "{vendor}"\nbase_url = "{base_url}"\nuser = "demo"\n'
            f'password = "demo"\n{channel}rate_limit = 10\n'
        )
        (tmp_path / "dispatcher.toml").write_text(toml, encoding="utf-8")
        db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        upgrade(db_url)
        monkeypatch.setenv("DISPATCHER_CONFIG", str(tmp_path / "dispatcher.toml"))
        monkeypatch.setenv("DISPATCHER_DATABASE_URL", db_url)
        monkeypatch.setenv("DISPATCHER_REDIS_URL", REDIS_URL)
        runtime.reset()
        made.append(Runtime.from_settings(Settings.load()))
        return Live(made[-1], name)

    yield build
    for r in made:
        r.close()
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    for name in names:
        redis.delete(rate_key(name), rate_key(f"{name}:pulls"), pull_deferred_key(name))
    redis.close()


def refusing(code: str) -> Gateway:
    return Gateway(
        answer=f'<?xml version="1.0"?><string xmlns="http://tempuri.org/">{code}</string>'.encode()
    )


@pytest.mark.parametrize(("vendor", "code"), [("webservice", "-16"), ("yunxin", "-23"), ("trigger", "-16")])
def test_given_too_frequent_when_pulling_then_one_call_and_no_pull_until_the_delay_passed(
    live: Any, vendor: str, code: str
) -> None:
    gw = refusing(code)
    try:
        one = live(vendor, gw.url)
        # When the beat pulls an account that answers "too frequent"
        first = cycle.run(one.runtime)
        # Then one call, not a burst: the drain stopped, and reports and replies both wait
        assert len(gw.seen) == 1
        assert set(first.failures) == {f"{one.name}/reports"}
        assert first.failures[f"{one.name}/reports"].startswith(f"reports pull refused: {code} ")
        redis: Redis[Any] = Redis.from_url(REDIS_URL)
        try:
            assert 0 < redis.pttl(pull_deferred_key(one.name)) <= DEFER_SECONDS * 1000  # recorded in Redis
        finally:
            redis.close()
        # ... the account slowed down for its sends too ...
        shared = AccountLimiter(one.runtime.redis, one.name, 10, policy=DISPATCH_POLICY)  # type: ignore[arg-type]
        assert shared.current_rate() < 10
        # ... and neither the next beat nor a person's `pull` calls the gateway before the delay passed.
        second = cycle.run(one.runtime)
        assert "deferred" in second.skipped[one.name] and not second.failures
        assert "deferred" in pull_account(one.runtime, one.account).skipped
        assert len(gw.seen) == 1
    finally:
        gw.close()


def test_given_an_account_error_when_pulling_then_one_call_a_warning_an_audit_entry_and_an_alert(
    live: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with gateway(answer=b'<string xmlns="http://tempuri.org/">-3</string>') as gw:
        one = live("trigger", gw.url)
        with caplog.at_level(logging.WARNING, logger="dispatcher.results.pull"):
            stats = cycle.run(one.runtime)
        assert len(gw.seen) == 1  # reports refused: replies not tried either
        assert stats.alerts and one.name in stats.alerts[0] and "-3" in stats.alerts[0]
        assert any("-3" in r.getMessage() and one.name in r.getMessage() for r in caplog.records)
        with one.runtime.sessions() as session:
            [entry] = session.execute(
                select(AuditEntry).where(AuditEntry.action == "account.pull_refused")
            ).scalars()
        assert entry.detail == {"account": one.name, "kind": "reports", "code": -3,
                                "meaning": "wrong user name or password"}  # fmt: skip
        # `reports pull` shows it to the person running it, and fails, without calling the gateway
        # again before the account's delay passed (a wrong password tried again and again locks it).
        result = CliRunner().invoke(app, ["reports", "pull"])
        assert result.exit_code == 1
        assert "ALERT" in result.output and "-3" in result.output and "credentials" in result.output
        assert "next pull in" in result.output
        assert len(gw.seen) == 1


def test_given_a_wrong_password_then_the_accounts_pulls_back_off_growing_until_it_is_fixed(live: Any) -> None:
    with gateway(answer=b'<string xmlns="http://tempuri.org/">-3</string>') as gw:
        one = live("trigger", gw.url)
        # When the beat runs its results step more often than it would in a minute (every 5 s)
        for _ in range(20):
            cycle.run(one.runtime)
        # Then the account was pulled at most 3 times (here once), and its error is in the store
        assert len(gw.seen) <= 3 and len(gw.seen) == 1
        with one.runtime.sessions() as session:
            error = account_errors.current(session, one.account)
        assert error is not None and (error.code, error.failures) == (-3, 1)
        assert 55 <= (error.retry_at - utcnow()).total_seconds() <= 60
        # When the delay has passed: one call, refused again, and the next delay is longer
        _due_now(one)
        for _ in range(5):
            cycle.run(one.runtime)
        assert len(gw.seen) == 2
        with one.runtime.sessions() as session:
            error = account_errors.current(session, one.account)
        assert error is not None and error.failures == 2
        assert 115 <= (error.retry_at - utcnow()).total_seconds() <= 120
        # When its configuration changes (a new password), it is pulled at once; a pull that works
        # ends the error
        gw.answer = b'<string xmlns="http://tempuri.org/" />'
        fixed = dataclasses.replace(one.account, password="fixed")  # as a reloaded configuration holds it
        stats = pull_account(one.runtime, fixed)
        assert not stats.skipped and not stats.alert and len(gw.seen) == 4  # reports and replies
        with one.runtime.sessions() as session:
            assert session.get(AccountError, one.name) is None


def _due_now(one: Live) -> None:
    with one.runtime.sessions() as session:
        row = session.get(AccountError, one.name)
        assert row is not None
        row.retry_at = utcnow()
        session.commit()


def test_given_an_html_error_page_as_a_pull_answer_then_the_drain_stops_and_stores_nothing(live: Any) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    with gateway(answer=page, content_type="text/html") as gw:
        one = live("yunxin", gw.url)
        pulled = pull_account(one.runtime, one.account)
        assert len(gw.seen) == 2  # one call per kind, not a thousand
        assert set(pulled.failures) == {"reports", "replies"}
        assert all("unexpected answer" in f for f in pulled.failures.values())
        assert pulled.bodies == {"reports": 0, "replies": 0}
        with one.runtime.sessions() as session:
            assert session.execute(select(RawPull.id)).all() == []


def test_given_a_paced_drain_longer_than_its_lock_then_the_lock_is_held_to_the_end_and_released(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A paced drain of a backlog outlasts the lock (1,000 calls at a quarter of 10/s: 400 s); here a
    # 1 s lock and six calls at 2.5/s.
    monkeypatch.setattr(pull, "LOCK_SECONDS", 1)
    monkeypatch.setattr(pull, "LOCK_RENEW_SECONDS", 0.25)
    records = "2314355899380234221,13900000000,2014/06/10 15:34:11,DELIVRD|"
    with gateway(answer=f'<string xmlns="http://tempuri.org/">{records}</string>'.encode()) as gw:
        one = live("webservice", gw.url)
        key = lock_key(f"pull:{one.name}")
        held: list[bool] = []

        def watch() -> None:
            deadline = time.monotonic() + 60
            while len(gw.seen) < 6 and time.monotonic() < deadline:
                time.sleep(0.01)
            held.append(bool(one.runtime.redis.exists(key)))  # no other drain could start now
            gw.answer = b'<string xmlns="http://tempuri.org/" />'  # the backlog is drained

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            pulled = pull_account(one.runtime, one.account, ["reports"])
        finally:
            watcher.join(timeout=90)
        assert held == [True]
        assert pulled.bodies["reports"] >= 6 and not pulled.failures and not pulled.skipped
        assert not one.runtime.redis.exists(key)  # released at the end


def test_given_http_429_when_pulling_then_one_call_and_the_account_backs_off_as_for_too_frequent(
    live: Any,
) -> None:
    # HTTP 429 is the gateway's (or its proxy's) "too frequent": same as -16.
    with gateway("status", status=429, answer=b"Too Many Requests", content_type="text/plain") as gw:
        one = live("trigger", gw.url)
        first = pull_account(one.runtime, one.account)
        assert len(gw.seen) == 1  # replies not tried either
        assert set(first.failures) == {"reports"} and "429" in first.failures["reports"]
        assert 0 < one.runtime.pulls_deferred(one.name) <= DEFER_SECONDS
        shared = AccountLimiter(one.runtime.redis, one.name, 10, policy=DISPATCH_POLICY)  # type: ignore[arg-type]
        assert shared.current_rate() < 10
        assert "deferred" in pull_account(one.runtime, one.account).skipped
        assert len(gw.seen) == 1


@pytest.mark.parametrize("kind", ["reports", "replies"])
def test_given_a_plain_text_answer_that_holds_no_records_then_the_drain_keeps_it_and_stops(
    live: Any, kind: Any
) -> None:
    # A "busy" page in words, not a code: kept (the call may have consumed records), but not pulled again
    # and again as if it were a list.
    with gateway(answer="系统繁忙，请稍后再试".encode(), content_type="text/plain; charset=utf-8") as gw:
        one = live("trigger", gw.url)
        drained = drain(
            one.runtime.sessions, one.runtime.account(one.name).transport, one.account, kind, max_calls=5
        )
        assert len(gw.seen) == 1
        assert drained.bodies == 1 and drained.unexpected == "系统繁忙，请稍后再试"
        with one.runtime.sessions() as session:
            assert len(session.execute(select(RawPull.id)).all()) == 1


_PULLER = """
import sys
from dispatcher.config import Settings
from dispatcher.results.pull import pull_account
from dispatcher.runtime import Runtime
runtime = Runtime.from_settings(Settings.load())
pull_account(runtime, runtime.settings.account(sys.argv[1]), ["reports"])
"""


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_a_puller_killed_mid_call_then_its_account_is_pulled_again_within_a_minute(live: Any) -> None:
    with gateway("stall", delay=300, answer=b'<string xmlns="http://tempuri.org/" />') as gw:
        one = live("webservice", gw.url)
        # Given a process pulling the account's reports, stuck in a call to the gateway ...
        puller = subprocess.Popen([sys.executable, "-c", _PULLER, one.name], env=dict(os.environ))
        try:
            deadline = time.monotonic() + 30
            while not gw.seen and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gw.seen, "the puller never called the gateway"
            assert "another drain" in pull_account(one.runtime, one.account, ["reports"]).skipped
            # ... when it is killed (no chance to release its lock)
            puller.kill()
            killed_at = time.monotonic()
        finally:
            puller.kill()
            puller.wait()
        gw.behaviour = "ok"
        # Then the account is pulled again within a minute
        while "another drain" in pull_account(one.runtime, one.account, ["reports"]).skipped:
            assert time.monotonic() - killed_at < 60, "the killed puller's lock outlived a minute"
            time.sleep(0.5)
        assert time.monotonic() - killed_at <= pull.LOCK_SECONDS + 1
