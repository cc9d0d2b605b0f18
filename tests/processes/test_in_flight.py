"""An entinfo account takes one request at a time (-18 otherwise): two `dispatcher worker` processes,
several threads each, sending several campaigns on it at once, never have two of its requests unanswered.

The simulator (`dispatcher simulate`, answering after 300 ms) holds the account to one request in flight,
as the vendor's gateways do by default; the account's `max_in_flight` (1, entinfo's default) is what
the workers share through Redis.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.processes.deployment import AccountSpec, Deployment, ledger_mobiles, mobiles
from tests.processes.harness import Processes, Redis, Simulator
from tests.stack import write_contacts

SN = "SDK-DEMO-010-00001"
CAMPAIGNS = 3
PER_CAMPAIGN = 2001  # 3 requests each (mdgxsend takes 1,000): a task sends them together, unless held


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
@pytest.mark.timeout(900)
def test_given_two_worker_processes_when_campaigns_share_an_entinfo_account_then_never_minus_18(
    processes: Processes, database_url: str
) -> None:
    # Given a gateway that refuses a second request of the account while one is unanswered
    accounts = processes.tmp / "sim-accounts.toml"
    accounts.write_text(
        f'[[account]]\nvendor = "entinfo"\nuser = "{SN}"\npassword = "demo"\nmax_in_flight = 1\n',
        encoding="utf-8",
    )
    redis = Redis(processes)
    redis.start()
    simulator = Simulator(processes, ["--latency-ms", "300", "--seed", "5", "--accounts-file", str(accounts)])
    simulator.start()
    spec = AccountSpec("en", "entinfo", 100.0, user=SN)
    deployment = Deployment(processes, database_url, redis.url, simulator.base_url, [spec])
    # ... and two worker processes of three pool processes each
    workers = [processes.start(f"worker{i}", ["dispatcher", "worker", "-c", "3"]) for i in (1, 2)]
    for worker in workers:
        processes.wait_log(worker, " ready.", timeout=240)

    # When several campaigns on the account start at once (a task each: every thread has requests to send)
    numbers = mobiles(13600000000, CAMPAIGNS * PER_CAMPAIGN)
    ids = []
    for c in range(CAMPAIGNS):
        part = numbers[c * PER_CAMPAIGN : (c + 1) * PER_CAMPAIGN]
        path = write_contacts(processes.tmp / f"list{c}.xlsx", [(m, f"客户{m[-4:]}") for m in part])
        out = processes.run(
            "campaign", "create", str(path), "--template", "{姓名}您好，会员日全场8折，回T退订【测试】",
            "--account", "en", "--json",
        )  # fmt: skip
        ids.append(json.loads(out)["id"])
    with ThreadPoolExecutor(CAMPAIGNS) as pool:  # started together: their tasks reach both processes
        list(pool.map(lambda i: processes.run("campaign", "start", str(i)), ids))

    # Then every number is taken exactly once, and the gateway never had to refuse one as "busy"
    def all_accepted() -> bool:
        return sum(deployment.state_counts(i)["accepted"] for i in ids) == len(numbers)

    processes.wait_for("every recipient accepted", all_accepted, timeout=300)
    ledger = simulator.ledger()
    assert [r for r in ledger["rejected"] if r["code"] == -18] == []
    assert ledger_mobiles(ledger, "entinfo") == Counter(numbers)
    # ... and both processes sent (the limit held across processes, not within one)
    assert all("Task dispatcher.submit[" in w.output() for w in workers), processes.logs()
    deployment.close()
