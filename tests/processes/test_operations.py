"""Never silent: real processes, started as the Procfile says, and what the status, `doctor` and
`/metrics` say about them. Heartbeats every half second (``DISPATCHER_HEARTBEAT_SECONDS``), so a worker
counts as gone after 1.5 s and the beat after 3 s: each wait is seconds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.processes.deployment import AccountSpec, Deployment, mobiles
from tests.processes.harness import Processes, Redis, Simulator, free_port, procfile
from tests.stack import write_contacts

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
FAST = {"DISPATCHER_HEARTBEAT_SECONDS": "0.5"}


def deploy(processes: Processes, database_url: str) -> Deployment:
    redis = Redis(processes)
    redis.start()
    simulator = Simulator(processes, ["--report-delay", "1", "--deliver-ratio", "1", "--seed", "5"])
    simulator.start()
    settings = {**FAST, "DISPATCHER_QUEUE": f"ops-{uuid.uuid4().hex[:8]}"}
    return Deployment(
        processes, database_url, redis.url, simulator.base_url, [AccountSpec("yx", "yunxin", 50.0)], settings
    )


def dispatcher(
    processes: Processes, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args], env={**processes.env, **(env or {})}, cwd=processes.cwd,
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def start_campaign(processes: Processes, count: int) -> int:
    path = write_contacts(
        processes.tmp / "list.xlsx", [(m, f"客户{i}") for i, m in enumerate(mobiles(13800000000, count))]
    )
    created = json.loads(
        processes.run("campaign", "create", str(path), "--template", TEMPLATE, "--account", "yx", "--json")
    )
    processes.run("campaign", "start", str(created["id"]))
    return int(created["id"])


def status(processes: Processes, campaign_id: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(processes.run("campaign", "status", str(campaign_id), "--json"))
    return found


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
@pytest.mark.timeout(600)
def test_given_no_worker_when_a_campaign_starts_then_it_says_workers_and_sends_once_one_starts_and_metrics_count_it(
    processes: Processes, database_url: str
) -> None:
    deployment = deploy(processes, database_url)
    # Given no worker: a started campaign says it waits for workers (never seen), within 20 s
    campaign_id = start_campaign(processes, 40)
    started = time.monotonic()
    found = processes.wait_for(
        "waiting: workers",
        lambda: (s := status(processes, campaign_id))["waiting"] == "workers" and s,
        timeout=20,
    )
    assert time.monotonic() - started < 20 and found["workers_seen_at"] is None and found["accepted"] == 0
    # ... and in words
    words = processes.run("campaign", "status", str(campaign_id))
    assert "No sending process is running (none has been seen)" in words

    # When a worker starts, exactly as the Procfile says
    lines = procfile()
    worker = processes.shell("worker", lines["worker"])
    # (read from the store while waiting: each `campaign status` is a process start of its own)
    processes.wait_for(
        "every recipient accepted",
        lambda: deployment.state_counts(campaign_id)["accepted"] == 40,
        timeout=240,
    )
    # Then it sent everything; with no beat, the campaign now says it waits for the beat
    assert status(processes, campaign_id)["waiting"] == "beat"

    # And /metrics, on the web app started as the Procfile says, counts that account's requests
    port = free_port()
    processes.shell("web", lines["web"], extra_env={"PORT": str(port)})
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> str | None:
        try:
            answer = httpx.get(url, timeout=10)
        except httpx.HTTPError:
            return None
        return answer.text if answer.status_code == 200 else None

    text = processes.wait_for("/metrics to answer", scraped, timeout=240)
    accepted = re.search(
        r'dispatcher_requests_total\{account="yx",error_class="",outcome="accepted",vendor="yunxin"\} (\S+)',
        text,
    )
    assert accepted is not None and float(accepted.group(1)) >= 1, text
    assert re.search(
        r'dispatcher_request_duration_seconds_count\{account="yx",vendor="yunxin"\} [1-9]', text
    ), text
    assert "dispatcher_workers_alive 1.0" in text and "dispatcher_beat_alive 0.0" in text
    assert "demo" not in text  # the account's password (the simulator's "demo") appears nowhere

    # When the worker stops, the campaign of a new start says so again, with when it was last seen
    processes.stop(worker)
    second = start_campaign(processes, 3)
    found = processes.wait_for(
        "waiting: workers again",
        lambda: (s := status(processes, second))["waiting"] == "workers" and s,
        timeout=20,
    )
    assert found["workers_seen_at"] is not None
    deployment.close()


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
@pytest.mark.timeout(600)
def test_given_a_worker_on_another_store_then_it_is_not_counted_and_logs_an_error_naming_its_store_and_the_ids(
    processes: Processes, database_url: str
) -> None:
    deployment = deploy(processes, database_url)
    # Given a worker started with another store (as if in another directory), same broker and queue
    other = processes.tmp / "elsewhere"
    other.mkdir()
    worker = processes.shell(
        "worker",
        procfile()["worker"],
        extra_env={"DISPATCHER_DATABASE_URL": f"sqlite:///{other / 'dispatcher.sqlite3'}"},
    )
    processes.wait_log(worker, " ready.", timeout=240)
    # When a campaign starts on the deployment's store
    campaign_id = start_campaign(processes, 5)
    # Then that worker does not count: the campaign waits for workers
    processes.wait_for(
        "waiting: workers", lambda: status(processes, campaign_id)["waiting"] == "workers", timeout=20
    )
    # ... and the worker, handed chunk ids its store lacks, says so naming its store (no secret) and the ids
    processes.wait_log(worker, "are not in this worker's store", timeout=60)
    line = next(x for x in worker.output().splitlines() if "are not in this worker's store" in x)
    assert "ERROR" in line and str(other / "dispatcher.sqlite3") in line and re.search(r"chunks \d+", line)
    assert status(processes, campaign_id)["accepted"] == 0
    deployment.close()


def doctor(processes: Processes) -> tuple[int, dict[str, dict[str, Any]]]:
    done = dispatcher(processes, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    return done.returncode, checks


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
@pytest.mark.timeout(600)
def test_given_worker_and_beat_then_doctor_passes_and_fails_naming_the_beat_once_it_stops(
    processes: Processes, database_url: str
) -> None:
    deployment = deploy(processes, database_url)
    lines = procfile()
    worker = processes.shell("worker", lines["worker"])
    beat = processes.shell("beat", lines["beat"])
    processes.wait_log(worker, " ready.", timeout=240)
    processes.wait_log(beat, "beat: Starting...", timeout=240)

    def passes() -> dict[str, dict[str, Any]] | None:
        code, checks = doctor(processes)
        return checks if code == 0 else None

    checks = processes.wait_for("doctor to pass", passes, timeout=60, interval=1)
    assert all(c["ok"] for c in checks.values())
    assert {
        "store",
        "broker",
        "redis",
        "workers",
        "beat",
        "fingerprints",
        "clock",
        "send_window",
        "account:yx",
    } <= set(checks)
    assert checks["beat"]["detail"].startswith("one alive") and "demo" not in json.dumps(checks)

    # When the beat stops, doctor fails and names it
    processes.stop(beat)
    time.sleep(3.5)  # six heartbeat intervals
    code, checks = doctor(processes)
    assert code == 1 and not checks["beat"]["ok"] and "no beat alive" in checks["beat"]["detail"]
    assert [name for name, c in checks.items() if not c["ok"]] == ["beat"]
    human = dispatcher(processes, "doctor")
    assert human.returncode == 1 and re.search(r"FAIL\s+beat\s+no beat alive", human.stdout)
    deployment.close()


def test_given_a_shared_store_with_one_machine_defaults_then_worker_and_beat_refuse_naming_the_setting(
    processes: Processes,
) -> None:
    # A PostgreSQL store (not even reached: the refusal comes first), no broker or Redis set
    store = {"DISPATCHER_DATABASE_URL": "postgresql+psycopg://app:pa55word@127.0.0.1:1/sms"}
    for command in ("worker", "beat"):
        refused = dispatcher(processes, command, env=store)
        assert refused.returncode == 2 and "broker_url (DISPATCHER_BROKER_URL) is not set" in refused.stderr
    # A shared SQL broker, but the limiter left to its loopback default
    shared_broker = {**store, "DISPATCHER_BROKER_URL": "sqla+postgresql://app:pa55word@127.0.0.1:1/sms"}
    refused = dispatcher(processes, "worker", env=shared_broker)
    assert refused.returncode == 2 and "redis_url (DISPATCHER_REDIS_URL) is not set" in refused.stderr
    assert "loopback" in refused.stderr and "pa55word" not in refused.stderr + refused.stdout
    # --standalone: past the refusal (it then fails to reach the store, which does not exist)
    alone = dispatcher(processes, "worker", "--standalone", env=shared_broker)
    assert "refusing to start" not in alone.stderr


def heartbeats(deployment: Deployment) -> Any:
    from redis import Redis as Client

    from dispatcher.operations import heartbeat

    client: Client[Any] = Client.from_url(deployment.redis_url)
    try:
        return heartbeat.read(client)
    finally:
        client.close()


@pytest.mark.timeout(600)
def test_given_worker_and_beat_stopped_cleanly_then_their_heartbeats_say_gone_at_once_and_a_restarted_beat_is_the_only_one(
    processes: Processes, database_url: str
) -> None:
    deployment = deploy(processes, database_url)
    processes.env["DISPATCHER_HEARTBEAT_SECONDS"] = "5"  # a stopped one would count as alive for 15-30 s
    lines = procfile()
    worker = processes.shell("worker", lines["worker"])
    beat = processes.shell("beat", lines["beat"])
    processes.wait_for(
        "worker and beat heartbeats",
        lambda: (s := heartbeats(deployment)).alive("worker") and s.alive("beat"),
        timeout=240,
    )
    # When both stop as a process manager stops them (SIGTERM)
    assert processes.stop(beat) and processes.stop(worker)
    # Then neither is alive at once; each is still remembered ("last seen")
    snapshot = heartbeats(deployment)
    assert snapshot.alive("worker") == [] and snapshot.alive("beat") == []
    assert len(snapshot.of("worker")) == 1 and len(snapshot.of("beat")) == 1
    # And a beat started again is the only one alive
    processes.shell("beat", lines["beat"])
    processes.wait_for("the new beat", lambda: heartbeats(deployment).alive("beat"), timeout=240)
    assert len(heartbeats(deployment).alive("beat")) == 1
    deployment.close()


@pytest.mark.timeout(600)
def test_given_a_beat_whose_loop_hangs_then_its_heartbeat_says_dead_though_its_thread_still_writes(
    processes: Processes, database_url: str
) -> None:
    deployment = deploy(processes, database_url)
    # A broker that does not answer: the beat's loop hangs in its first publish, retrying the connection
    # for ever, while its heartbeat thread goes on writing to the (answering) limiter's Redis
    broker = f"redis://127.0.0.1:{free_port()}/0"
    beat = processes.shell("beat", procfile()["beat"], extra_env={"DISPATCHER_BROKER_URL": broker})
    processes.wait_log(beat, "beat: Starting...", timeout=240)
    processes.wait_for("a live beat", lambda: heartbeats(deployment).alive("beat"), timeout=60)
    processes.wait_log(beat, "Trying again", timeout=60)  # its first task is due: the loop hangs
    processes.wait_for("the beat dead", lambda: not heartbeats(deployment).alive("beat"), timeout=20)
    snapshot = heartbeats(deployment)
    (record,) = snapshot.of("beat")
    assert record.age(snapshot.now) < 1.5 and not record.stopped  # the thread still writes
    code, checks = doctor(processes)
    assert code == 1 and "no beat alive" in checks["beat"]["detail"]
    deployment.close()
