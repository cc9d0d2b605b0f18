"""A worker holding unacknowledged messages survives a Redis restart: it reconnects and goes on.

Two ways the worker used to stop for good ("Unrecoverable error", see ``workers.broker``): putting
back the messages it held when the connection dropped, and acknowledging, after it reconnected, the
message of a task that was running across the restart.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.processes.deployment import AccountSpec, Deployment
from tests.processes.harness import Processes, Redis, Simulator
from workers import tasks
from workers.app import make_celery

PULL_ENDED = re.compile(r"Task dispatcher\.results\[[^\]]+\] (succeeded|raised)")


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
@pytest.mark.serial  # a Redis of its own killed and restarted: alone (it timed out once beside three others)
def test_given_a_worker_holding_unacked_messages_when_redis_restarts_then_it_reconnects_and_works(
    processes: Processes,
) -> None:
    # Given a worker on a Redis of this test's own, and a vendor that takes 4 s to answer
    redis = Redis(processes, extra=["--appendonly", "no", "--save", ""])
    redis.start()
    simulator = Simulator(processes, ["--latency-ms", "4000"])
    simulator.start()
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    Deployment(
        processes,
        f"sqlite:///{processes.tmp / 'store.sqlite3'}",
        redis.url,
        simulator.base_url,
        [AccountSpec("yx", "yunxin", 5.0)],
        settings={"DISPATCHER_QUEUE": queue},
    ).close()
    worker = processes.start("worker", ["dispatcher", "worker", "-c", "2", "-l", "INFO"])
    processes.wait_log(worker, " ready.", timeout=180)
    sender = make_celery(redis.url)
    sender.conf.task_default_queue = queue
    tasks.register(sender)
    # ... holding messages it has not acknowledged: tasks with a countdown wait in the worker, and a
    # results pull runs (its requests take 4 s each)
    for n in range(3):
        sender.send_task("dispatcher.ping", kwargs={"token": str(n)}, countdown=600)
    sender.send_task(tasks.RESULTS)
    processes.wait_for("the worker to hold them", lambda: worker.output().count(" received") == 4, 60)

    # When Redis is killed and comes back a second later, empty
    redis.restart(down_for=1.0)

    # Then the worker reconnects, finishes the pull (it does not stop on an "unrecoverable error"),
    # and runs new tasks
    processes.wait_for("the worker to reconnect", lambda: worker.output().count("Connected to ") >= 2, 120)
    processes.wait_for("the pull to end", lambda: PULL_ENDED.search(worker.output()), 120)
    marker = processes.tmp / "after-restart"
    sender.send_task("dispatcher.ping", kwargs={"marker": str(marker), "token": "back"})
    processes.wait_for("a task sent after the restart to run", marker.exists, timeout=120)
    assert "Unrecoverable error" not in worker.output()
    sender.close()
