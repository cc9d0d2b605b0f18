"""A recurring schedule run by the shipped processes: `dispatcher worker` and `dispatcher beat` (the
Procfile's lines), `dispatcher simulate`, and the schedule added with `dispatcher schedule add`.

The schedule fires every few seconds (a sixth cron field gives seconds) from a folder a CRM drops its
exports in: each firing with a new file creates and sends exactly one campaign from the newest file;
a firing that finds the same file sends nothing and says so; a paused schedule fires no more.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher.store import Campaign
from tests.processes.deployment import AccountSpec, Deployment, ledger_mobiles, mobiles
from tests.processes.harness import Processes, Redis, Simulator, procfile
from tests.stack import write_contacts


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
@pytest.mark.timeout(600)
def test_given_a_schedule_every_few_seconds_then_each_new_export_is_sent_once_by_its_own_campaign(
    processes: Processes, database_url: str
) -> None:
    # Given Redis, the simulator, the Procfile's worker and beat, and a CRM's export folder
    redis = Redis(processes)
    redis.start()
    simulator = Simulator(processes, ["--report-delay", "0", "--deliver-ratio", "1", "--seed", "5"])
    simulator.start()
    deployment = Deployment(
        processes, database_url, redis.url, simulator.base_url, [AccountSpec("yx", "yunxin", 50.0)]
    )
    processes.env["DISPATCHER_SCHEDULES_SECONDS"] = "1"
    lines = procfile()
    worker = processes.shell("worker", lines["worker"])
    beat = processes.shell("beat", lines["beat"])
    exports = processes.tmp / "exports"
    exports.mkdir()
    first = mobiles(13700000000, 40)
    write_contacts(exports / "members-1.xlsx", [(m, f"客户{i}") for i, m in enumerate(first)])
    processes.wait_log(worker, " ready.", timeout=240)
    processes.wait_log(beat, "beat: Starting...", timeout=240)

    # When a schedule is added with the CLI, firing every 3 seconds
    added = json.loads(
        processes.run(
            "schedule", "add", "会员日", "--cron", "* * * * * */3", "--source", str(exports),
            "--template", "{姓名}您好，会员日八折，回T退订【测试】", "--account", "yx", "--grace", "1m", "--json",
        )
    )  # fmt: skip
    assert added["name"] == "会员日" and added["next_fire_at"]

    # Then its first firing's campaign sends the list
    def campaigns() -> list[tuple[int, str, str]]:
        with deployment.sessions() as session:
            rows = session.execute(select(Campaign.id, Campaign.name, Campaign.state).order_by(Campaign.id))
            return [(r.id, r.name, r.state) for r in rows]

    def finished(count: int) -> list[tuple[int, str, str]] | None:
        found = campaigns()
        return found if len(found) == count and all(s == "completed" for _, _, s in found) else None

    (one,) = processes.wait_for("the first firing's campaign to complete", lambda: finished(1), timeout=180)
    assert one[1].startswith("会员日 ")

    # ... later firings find the same file: recorded as unchanged, no new campaign
    def runs() -> list[dict[str, Any]]:
        listed = json.loads(processes.run("schedule", "list", "--json"))
        runs: list[dict[str, Any]] = listed[0]["runs"]
        return runs

    processes.wait_for(
        "a firing recorded as unchanged", lambda: any(r["outcome"] == "unchanged" for r in runs()), timeout=60
    )
    assert len(campaigns()) == 1

    # When the CRM drops a newer export
    second = mobiles(13800000000, 25)
    newer = write_contacts(exports / "members-2.xlsx", [(m, f"客户{i}") for i, m in enumerate(second)])
    os.utime(
        newer, (time.time() + 5, time.time() + 5)
    )  # newer than the first, whatever the file system's clock

    # Then the next firing sends it, once
    processes.wait_for("the second firing's campaign to complete", lambda: finished(2), timeout=180)
    assert ledger_mobiles(simulator.ledger(), "yunxin") == Counter(first + second)

    # When the schedule is paused, it fires no more
    processes.run("schedule", "pause", "会员日")
    newest_before = runs()[0]["fire_at"]
    time.sleep(5)
    assert runs()[0]["fire_at"] == newest_before
    assert len(campaigns()) == 2
    deployment.close()
