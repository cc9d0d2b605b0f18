"""The Procfile's processes, started exactly as written, run a scheduled campaign that nobody starts.

Redis (docker-compose's command, on a port of this test), the simulator (`dispatcher simulate`) and
the Procfile's `web`, `worker` and `beat` lines run as processes; the campaign is created with
`dispatcher campaign create --at <a few seconds ahead>`. The beat launches it, the worker sends it,
the beat's results task pulls the delivery reports, the beat completes it; the web app shows it.
"""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from dispatcher.config import sqlite_file_dir
from dispatcher.store import RawPull
from tests.processes.deployment import AccountSpec, Deployment, ledger_mobiles, mobiles, path_exists_any
from tests.processes.harness import Processes, Redis, Simulator, free_port, procfile

RECIPIENTS = 300
PASSWORD = "watch-it-" + uuid.uuid4().hex[:8]


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
@pytest.mark.timeout(900)
def test_given_the_procfile_processes_when_a_campaign_is_scheduled_then_it_runs_and_completes_with_reports(
    processes: Processes, database_url: str
) -> None:
    # Given Redis, the simulator, and the Procfile's three processes exactly as written
    redis = Redis(processes)
    redis.start()
    simulator = Simulator(processes, ["--report-delay", "1", "--deliver-ratio", "1", "--seed", "7"])
    simulator.start()
    deployment = Deployment(
        processes, database_url, redis.url, simulator.base_url, [AccountSpec("yx", "yunxin", 20.0)]
    )
    lines = procfile()
    assert sorted(lines) == ["beat", "web", "worker"]
    port = free_port()
    web = processes.shell("web", lines["web"], extra_env={"PORT": str(port)})
    worker = processes.shell("worker", lines["worker"])
    beat = processes.shell("beat", lines["beat"])
    processes.wait_log(worker, " ready.", timeout=240)
    processes.wait_log(beat, "beat: Starting...", timeout=240)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("watcher", PASSWORD), timeout=30)
    processes.wait_for("the web app to answer", lambda: _answers(api, "/login"), timeout=240)
    processes.run("user", "add", "watcher", "--role", "viewer", "--password-stdin", input=PASSWORD + "\n")

    # When a campaign is created to start a few seconds from now (and nobody runs `campaign start`);
    # far enough ahead that the web app is asked before it starts, however busy the machine (the time
    # is taken before the `campaign create` process starts, which took over 8 s on a loaded machine)
    numbers = mobiles(13700000000, RECIPIENTS)
    created, start_at = deployment.create_campaign(
        "yx", numbers, "{姓名}您好，会员日全场8折，回T退订【测试】", start_in=15
    )
    campaign_id = created["id"]
    assert created["state"] == "scheduled"

    # Then the web app shows it go from scheduled to completed, every recipient delivered
    seen: list[str] = []

    def completed() -> dict[str, int] | None:
        response = api.get(f"/api/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        status: dict[str, int] = response.json()
        if not seen or seen[-1] != status["state"]:
            seen.append(str(status["state"]))
        done = status["state"] == "completed" and status["delivered"] == RECIPIENTS
        return status if done else None

    status = processes.wait_for("the campaign to complete with every report", completed, timeout=300)
    assert seen[0] == "scheduled" and seen[-1] == "completed"
    assert status["recipients"] == RECIPIENTS and status["failed"] == status["unknown"] == 0

    # ... the beat launched it on time and completed it: no person moved it
    moves = [(actor, before, after) for actor, before, after, _ in deployment.transitions(campaign_id)]
    # (sent while reports were due, unless they all came before the beat looked)
    launch = ("scheduler", "scheduled", "running")
    assert moves in (
        [launch, ("scheduler", "running", "completed")],
        [launch, ("scheduler", "running", "sent"), ("scheduler", "sent", "completed")],
    )
    launched_at = deployment.transitions(campaign_id)[0][3]
    assert launched_at >= start_at
    # ... every number went exactly once, and the store agrees
    assert ledger_mobiles(simulator.ledger(), "yunxin") == Counter(numbers)
    assert set(deployment.recipients(campaign_id).values()) == {"delivered"}
    # ... the reports came from the beat's results task, which the worker ran
    with deployment.sessions() as session:
        pulls = session.execute(select(RawPull.account, RawPull.kind, RawPull.source)).all()
    assert ("yx", "reports", "pull") in pulls
    assert "Task dispatcher.results[" in worker.output() and "Task dispatcher.tick[" in worker.output()

    # ... the beat kept its state beside the SQLite store, or in the temporary directory; nothing
    # was written to the working directory (which may be read-only)
    state_dir = sqlite_file_dir(database_url) or processes.tmp
    assert path_exists_any(state_dir / "dispatcher-beat-schedule")
    assert list(processes.cwd.iterdir()) == []

    # ... and each process stops cleanly when the process manager asks (SIGTERM)
    for proc in (beat, worker, web):
        assert processes.stop(proc, timeout=90), f"{proc.name} did not stop on SIGTERM\n{processes.logs()}"
    deployment.close()


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False
