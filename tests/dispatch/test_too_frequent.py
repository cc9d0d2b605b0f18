"""Backoff on each vendor's own "too frequent" code: the account is configured faster than the vendor
allows, the vendor refuses with its code, the limiter slows the whole account, and every recipient
still goes exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.ratelimit import AccountLimiter
from dispatcher.runtime import DISPATCH_POLICY
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Attempt
from tests.dispatch.scenario import finished
from tests.stack import REDIS_URL, write_contacts
from workers.tasks import enqueue

VENDOR_RATE = 4.0  # requests/s the simulator admits per account (low: a loaded machine still bursts past it)
CONFIGURED = 16.0  # what the account claims: four times too fast
CAMPAIGNS = 12  # one same-text request each (two numbers); webservice: two requests each
TOO_FREQUENT = {"webservice": -16, "yunxin": -23, "trigger": -16, "entinfo": -8}


@pytest.mark.parametrize("vendor", list(TOO_FREQUENT))
def test_given_an_account_too_fast_when_refused_as_too_frequent_then_it_slows_down_and_sends_once(
    make_stack: Any, vendor: str
) -> None:
    # Given a vendor admitting VENDOR_RATE requests/s and an account configured at four times that,
    # and a dozen small campaigns on the account (a burst of requests well above the vendor's rate)
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=7, deliver_ratio=1.0, rate_limit=VENDOR_RATE),
        rate_limit=CONFIGURED,
    )
    account = stack.accounts[vendor]
    mobiles: list[str] = []
    ids: list[int] = []
    for n in range(CAMPAIGNS):
        rows = [(str(13700000000 + 10 * n + i), "张三") for i in range(2)]
        mobiles += [r[0] for r in rows]
        path = write_contacts(stack.tmp / f"c{n}.xlsx", rows)
        created = campaigns.create(
            stack.sessions, stack.settings, path, "{姓名}您好【测试】", account, actor="t"
        )
        ids += campaigns.start(stack.sessions, created.campaign_id, "t")
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    limiter = AccountLimiter(redis, account, CONFIGURED)  # a view on the account's shared state
    lowest = CONFIGURED
    done = threading.Event()

    def watch_rate() -> None:
        # Often, on a thread of its own: a refusal lowers the rate for the limiter's short pause, then
        # each success raises it again; checking it between the slower store polls missed a lone one.
        nonlocal lowest
        while not done.is_set():
            lowest = min(lowest, limiter.current_rate())
            done.wait(0.01)

    def all_finished() -> bool:
        return all(finished(stack, campaign_id) for campaign_id in range(1, CAMPAIGNS + 1))

    # When the workers send them all at once
    watcher = threading.Thread(target=watch_rate, daemon=True)
    watcher.start()
    enqueue(ids, app=stack.app)
    try:
        stack.wait_for(all_finished, timeout=90)
    finally:
        done.set()
        watcher.join(timeout=10)
        redis.close()

    # Then the vendor refused some with its own "too frequent" code ...
    ledger = stack.sim.ledger()
    refused = [r for r in ledger["rejected"] if r["vendor"] == vendor]
    assert refused and {r["code"] for r in refused} == {TOO_FREQUENT[vendor]}
    with stack.sessions() as session:
        attempts = Counter(session.execute(select(Attempt.code, Attempt.error_class)).all())
    assert attempts[(str(TOO_FREQUENT[vendor]), "rate_limited")] == len(refused)
    # ... the account's shared rate was lowered for every worker (each refusal multiplies it by the
    # workers' decrease factor, 0.85: a lone refusal at the right rate costs little) ...
    assert lowest <= CONFIGURED * DISPATCH_POLICY.decrease_factor
    # ... and in the end every recipient was accepted exactly once.
    accepted = Counter(e["mobile"] for e in ledger["accepted"] if e["vendor"] == vendor)
    assert accepted == Counter(mobiles)
    for campaign_id in range(1, CAMPAIGNS + 1):
        with stack.sessions() as session:
            status = campaigns.status(session, campaign_id)
        assert status["accepted"] == 2 and status["failed"] == 0 and status["unknown"] == 0
